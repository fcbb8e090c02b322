/* libFuzzer target: metric, label and event name validation, and the Prometheus writer on
 * whatever names pass. Input: byte 0 selects the mode, the rest is the name; a second part
 * after a NUL byte is used as a label value. Invariants checked: the validators agree with
 * an independent character-class check, families/events accepted by validation are
 * accepted by the API, and every exposition line is a comment or starts with a valid
 * metric name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/telemetry.h>

static int is_name_char(char c, int first, int label)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (c == ':' && !label)
        return 1;
    return !first && c >= '0' && c <= '9';
}

typedef struct lines {
    int bad;
    int at_line_start;
} lines_t;

static int check_sink(const char *data, size_t len, void *user)
{
    lines_t *l = user;
    for (size_t i = 0; i < len; i++) {
        if (l->at_line_start && data[i] != '#' && !is_name_char(data[i], 1, 0))
            l->bad = 1;
        l->at_line_start = data[i] == '\n';
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    unsigned mode = data[0];
    const char *rest = (const char *)data + 1;
    size_t rlen = size - 1;
    const char *nul = memchr(rest, '\0', rlen);
    size_t nlen = nul != NULL ? (size_t)(nul - rest) : rlen;
    char *name = malloc(nlen + 1);
    char *value = malloc(rlen - nlen + 1);
    if (name == NULL || value == NULL)
        abort();
    memcpy(name, rest, nlen);
    name[nlen] = '\0';
    size_t vlen = nul != NULL ? rlen - nlen - 1 : 0;
    memcpy(value, nul != NULL ? nul + 1 : "", vlen);
    value[vlen] = '\0';

    for (int label = 0; label < 2; label++) {
        int expect = nlen > 0 && nlen <= FDN_TELEMETRY_NAME_MAX;
        for (size_t i = 0; expect && i < nlen; i++)
            expect = is_name_char(name[i], i == 0, label);
        if (label && expect && nlen >= 2 && name[0] == '_' && name[1] == '_')
            expect = 0;
        if (label && expect && (strcmp(name, "le") == 0 || strcmp(name, "quantile") == 0))
            expect = 0;
        if (fdn_telemetry_name_valid(name, nlen, label != 0) != (expect != 0))
            abort();
    }
    bool ev_ok = fdn_telemetry_event_name_valid(name, nlen);

    fdn_telemetry_t *tm = NULL;
    if (fdn_telemetry_create(&tm, NULL) != 0)
        abort();
    if (fdn_telemetry_name_valid(name, nlen, false)) {
        fdn_telemetry_family_t *f = NULL;
        const char *ln[] = {"k"};
        fdn_telemetry_kind_t kind = (fdn_telemetry_kind_t)(1 + mode % 4);
        if (fdn_telemetry_family(tm, &f, name, value, kind, ln, 1, 4) != 0)
            abort();
        const char *v[] = {value};
        if (kind == FDN_TELEMETRY_COUNTER) {
            fdn_counter_t *c = NULL;
            if (fdn_telemetry_family_counter(f, &c, v, 1) != 0)
                abort();
            fdn_counter_add(c, mode);
        } else if (kind == FDN_TELEMETRY_HISTOGRAM) {
            fdn_histogram_t *h = NULL;
            if (fdn_telemetry_family_histogram(f, &h, v, 1) != 0)
                abort();
            fdn_histogram_observe(h, (double)mode - 100.0);
        } else {
            fdn_gauge_t *g = NULL;
            if (fdn_telemetry_family_gauge(f, &g, v, 1) != 0)
                abort();
            fdn_gauge_set(g, (int64_t)mode);
        }
    }
    int rc = fdn_telemetry_emit_histogram(tm, name, (double)mode, NULL, 0);
    if ((rc == 0) != (ev_ok && strlen(name) == nlen))
        abort();
    if (ev_ok) {
        fdn_telemetry_measure_t m = {value[0] != '\0' ? value : "k", 1.0};
        (void)fdn_telemetry_execute(tm, name, &m, 1, NULL, 0);
    }
    lines_t l = {0, 1};
    if (fdn_telemetry_write_prometheus(tm, check_sink, &l) != 0 || l.bad)
        abort();
    char *json = NULL;
    if (fdn_telemetry_metrics_json(tm, &json) != 0 || json == NULL)
        abort();
    fdn_free(json);
    fdn_telemetry_destroy(tm);
    free(name);
    free(value);
    return 0;
}
