/* libFuzzer target: metric, label and event name validation, and the Prometheus writer on
 * whatever names pass. Input: byte 0 selects the mode (the family's kind), the rest is the
 * name; a second part after a NUL byte is used as a label value. Invariants checked: the
 * validators agree with an independent character-class check, families/events accepted by
 * validation are accepted by the API, and every exposition line is a comment or starts with
 * a valid metric name.
 * Every input runs the validators against the oracle (a few microseconds). One input in
 * FULL_EVERY, chosen by a hash of all its bytes (a mutation of a full-path input is again
 * one in FULL_EVERY, so the corpus cannot drift to full-path inputs only), and every input
 * of the ctest replay also run the full path: family, series, events, exposition, JSON. That
 * costs about a millisecond under ASan whatever the name (the exposition alone samples the
 * process: ~250 us), so on every input it would cap the target near 1 k/s.
 * The full path shares one telemetry instance: creating and destroying one per input cost
 * two RCU barriers (~22 ms: 46 inputs a second before). After each full-path input its event
 * entries are cleared (fdn_telemetry_reset_metrics); the families it declared stay (they
 * cannot be removed), and the harness remembers each one's kind: a name declared again must
 * give the same family for the same kind and FDN_EEXIST for another, as the API promises.
 * After FAMILIES_MAX names the instance is replaced by a fresh one, which bounds the
 * exposition written per input. The telemetry's built-in families (docs/telemetry.md: always
 * present, no labels or the label "family") are declared by every instance, so one of their
 * names declared here (with the label "k") must give FDN_EEXIST whatever the kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "fuzz_util.h"

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

#define FULL_EVERY 512 /* one input in FULL_EVERY runs the full path */

/* Its state outlives inputs (families stay; event entries are freed after an RCU grace
 * period), so libFuzzer's per-input leak check would scan the heap on every full-path input. */
FDN_FUZZ_NO_PER_INPUT_LEAK_CHECK()

#ifndef FAMILIES_MAX
#define FAMILIES_MAX 16
#endif

typedef struct known {
    char *name;
    fdn_telemetry_kind_t kind;
    fdn_telemetry_family_t *fam;
} known_t;

static const char *const g_builtin[] = {
    "fdn_telemetry_dropped_events_total", "fdn_telemetry_dropped_measurements_total",
    "fdn_telemetry_handler_failures_total", "fdn_telemetry_handlers_detached_total",
    "fdn_telemetry_series_dropped_total"};

static bool is_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof g_builtin / sizeof g_builtin[0]; i++)
        if (strcmp(name, g_builtin[i]) == 0)
            return true;
    return false;
}

static fdn_telemetry_t *g_tm;
static known_t g_known[FAMILIES_MAX];
static size_t g_nknown;

/* The shared instance, replaced by a fresh one when it holds FAMILIES_MAX families and name
 * (a family about to be declared; NULL: none) is not one of them. *k: the name's record. */
static fdn_telemetry_t *instance(const char *name, known_t **k)
{
    *k = NULL;
    for (size_t i = 0; i < g_nknown && name != NULL; i++)
        if (strcmp(g_known[i].name, name) == 0)
            *k = &g_known[i];
    if (g_tm == NULL || (name != NULL && *k == NULL && g_nknown == FAMILIES_MAX)) {
        fdn_telemetry_destroy(g_tm);
        g_tm = NULL;
        for (size_t i = 0; i < g_nknown; i++)
            free(g_known[i].name);
        g_nknown = 0;
        if (fdn_telemetry_create(&g_tm, NULL) != 0)
            abort();
    }
    return g_tm;
}

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
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    if (h % FULL_EVERY != 0 && !FDN_FUZZ_REPLAYING()) { /* the ctest replay runs every path */
        free(name);
        free(value);
        return 0;
    }

    bool family = fdn_telemetry_name_valid(name, nlen, false);
    bool builtin = family && is_builtin(name);
    known_t *k = NULL;
    fdn_telemetry_t *tm = instance(family && !builtin ? name : NULL, &k);
    fdn_telemetry_kind_t kind = (fdn_telemetry_kind_t)(1 + mode % 4);
    if (builtin || (family && k != NULL && k->kind != kind)) {
        fdn_telemetry_family_t *f = NULL;
        if (fdn_telemetry_family(tm, &f, name, value, kind, (const char *[]){"k"}, 1, 4) !=
            FDN_EEXIST)
            abort(); /* a name declared with another kind (or other labels: a built-in) */
    } else if (family) {
        fdn_telemetry_family_t *f = NULL;
        const char *ln[] = {"k"};
        if (fdn_telemetry_family(tm, &f, name, value, kind, ln, 1, 4) != 0 || f == NULL ||
            (k != NULL && f != k->fam))
            abort();
        if (k == NULL) {
            k = &g_known[g_nknown++];
            if ((k->name = strdup(name)) == NULL)
                abort();
            k->kind = kind;
            k->fam = f;
        }
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
    (void)fdn_telemetry_reset_metrics(tm); /* the next input sees no event entry of this one */
    free(name);
    free(value);
    return 0;
}
