/*
 * DESIGN: the Prometheus text exposition format 0.0.4 writer for a telemetry instance.
 *
 * Part of libfdn (not of the optional fdn_admin library), so a program that does not serve
 * HTTP can still write the exposition, e.g. to a file. Built only on the public snapshot
 * iterator and core's text buffer. Threads: any; the writer owns its snapshot and buffers,
 * takes no lock of its own and calls the sink on the calling thread with no telemetry lock
 * held (the snapshot is taken and released first).
 *
 * Naming: families keep their names (validated at registration). An event entry `a.b` with
 * measurement key k becomes: k == "counter" → counter `a_b_total`; k == "gauge" → gauge
 * `a_b`; k == "histogram" → summary `a_b`; k == "duration" → summary `a_b_duration_seconds` (ns /
 * 1e9); any other key → summary `a_b_<k>`; the emission count → counter `a_b_emissions_total`.
 * Characters outside [a-zA-Z0-9_:] become '_', a leading digit gets a '_' prefix. Each metric
 * family is written once (HELP, TYPE, samples); when two sources map to the same name, or a family
 * is named like a written summary's own series (<S>_sum, <S>_count), the first in sorted order wins
 * and the others are skipped (listed in a comment line), so the output is always valid. Histograms
 * are exposed as summaries (quantiles 0.5, 0.9, 0.99, 0.999, _sum, _count).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/utf8.h"

static void b_fmt_u64(fdn__buf_t *b, uint64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    fdn__buf_put(b, t, (size_t)n);
}

static void b_fmt_dbl(fdn__buf_t *b, double v)
{
    if (isnan(v)) {
        fdn__buf_puts(b, "NaN");
    } else if (isinf(v)) {
        fdn__buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char t[40];
        int n = snprintf(t, sizeof(t), "%.17g", v);
        fdn__buf_put(b, t, (size_t)n);
    }
}

/* escape: label values escape \ " and newline; help escapes \ and newline */
static void b_escaped(fdn__buf_t *b, const char *s, bool quote)
{
    size_t len = strlen(s);
    for (const char *end = s + len; *s; s++) {
        if ((unsigned char)*s >= 0x80) {
            /* keep valid UTF-8, replace anything else: the format requires UTF-8 */
            size_t n = fdn__utf8_seq((const unsigned char *)s, (size_t)(end - s));
            if (n == 0) {
                fdn__buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            } else {
                fdn__buf_put(b, s, n);
                s += n - 1;
            }
            continue;
        }
        if (*s == '\\')
            fdn__buf_puts(b, "\\\\");
        else if (*s == '\n')
            fdn__buf_puts(b, "\\n");
        else if (quote && *s == '"')
            fdn__buf_puts(b, "\\\"");
        else
            fdn__buf_put(b, s, 1);
    }
}

/* Sanitised metric name of an event (+ suffix). */
static void b_event_name(fdn__buf_t *b, const char *event, const char *suffix)
{
    if (event[0] >= '0' && event[0] <= '9')
        fdn__buf_puts(b, "_");
    for (const char *s = event; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == ':';
        fdn__buf_put(b, ok ? s : "_", 1);
    }
    if (suffix != NULL)
        for (const char *s = suffix; *s; s++) {
            char c = *s;
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == ':';
            fdn__buf_put(b, ok ? s : "_", 1);
        }
}

/* One metric family's text, keyed by its name for sorting and de-duplication. */
typedef struct rec {
    char *name;
    char *text;
    bool summary; /* also owns <name>_sum and <name>_count */
    bool skipped;
} rec_t;

typedef struct recs {
    rec_t *r;
    size_t n, cap;
    bool oom;
} recs_t;

static void recs_add(recs_t *rs, fdn__buf_t *name, fdn__buf_t *text, bool summary)
{
    if (name->oom || text->oom || rs->oom) {
        rs->oom = true;
        fdn__free(name->p);
        fdn__free(text->p);
        return;
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        rec_t *nr = fdn__realloc(rs->r, cap * sizeof(*nr));
        if (nr == NULL) {
            rs->oom = true;
            fdn__free(name->p);
            fdn__free(text->p);
            return;
        }
        rs->r = nr;
        rs->cap = cap;
    }
    rs->r[rs->n].name = name->p;
    rs->r[rs->n].text = text->p;
    rs->r[rs->n].summary = summary;
    rs->r[rs->n].skipped = false;
    rs->n++;
}

static void labels(fdn__buf_t *b, const fdn_telemetry_sample_t *x, const char *extra_k,
                   const char *extra_v)
{
    if (x->nlabels == 0 && extra_k == NULL)
        return;
    fdn__buf_puts(b, "{");
    for (size_t i = 0; i < x->nlabels; i++) {
        if (i > 0)
            fdn__buf_puts(b, ",");
        fdn__buf_puts(b, x->label_names[i]);
        fdn__buf_puts(b, "=\"");
        b_escaped(b, x->label_values[i], true);
        fdn__buf_puts(b, "\"");
    }
    if (extra_k != NULL) {
        if (x->nlabels > 0)
            fdn__buf_puts(b, ",");
        fdn__buf_puts(b, extra_k);
        fdn__buf_puts(b, "=\"");
        fdn__buf_puts(b, extra_v);
        fdn__buf_puts(b, "\"");
    }
    fdn__buf_puts(b, "}");
}

static const char *type_name(fdn_telemetry_kind_t k)
{
    switch (k) {
    case FDN_TELEMETRY_COUNTER:
        return "counter";
    case FDN_TELEMETRY_HISTOGRAM:
        return "summary";
    default:
        return "gauge";
    }
}

/* Write one sample's lines (scale: multiply histogram values, e.g. 1e-9 for ns → s). */
static void sample_lines(fdn__buf_t *b, const char *name, const fdn_telemetry_sample_t *x,
                         double scale)
{
    if (x->kind == FDN_TELEMETRY_COUNTER) {
        fdn__buf_puts(b, name);
        labels(b, x, NULL, NULL);
        fdn__buf_puts(b, " ");
        b_fmt_u64(b, x->counter);
        fdn__buf_puts(b, "\n");
    } else if (x->kind == FDN_TELEMETRY_HISTOGRAM) {
        static const char *const qs[] = {"0.5", "0.9", "0.99", "0.999"};
        const double qv[] = {x->hist.p50, x->hist.p90, x->hist.p99, x->hist.p999};
        for (size_t i = 0; i < 4; i++) {
            fdn__buf_puts(b, name);
            labels(b, x, "quantile", qs[i]);
            fdn__buf_puts(b, " ");
            b_fmt_dbl(b, x->hist.count > 0 ? qv[i] * scale : NAN);
            fdn__buf_puts(b, "\n");
        }
        fdn__buf_puts(b, name);
        fdn__buf_puts(b, "_sum");
        labels(b, x, NULL, NULL);
        fdn__buf_puts(b, " ");
        b_fmt_dbl(b, x->hist.sum * scale);
        fdn__buf_puts(b, "\n");
        fdn__buf_puts(b, name);
        fdn__buf_puts(b, "_count");
        labels(b, x, NULL, NULL);
        fdn__buf_puts(b, " ");
        b_fmt_u64(b, x->hist.count);
        fdn__buf_puts(b, "\n");
    } else {
        fdn__buf_puts(b, name);
        labels(b, x, NULL, NULL);
        fdn__buf_puts(b, " ");
        if (x->kind == FDN_TELEMETRY_GAUGE_INT) {
            char t[32];
            int n = snprintf(t, sizeof(t), "%lld", (long long)x->gauge_int);
            fdn__buf_put(b, t, (size_t)n);
        } else {
            b_fmt_dbl(b, x->gauge);
        }
        fdn__buf_puts(b, "\n");
    }
}

static void header(fdn__buf_t *b, const char *name, const char *help, fdn_telemetry_kind_t kind)
{
    fdn__buf_puts(b, "# HELP ");
    fdn__buf_puts(b, name);
    fdn__buf_puts(b, " ");
    /* promtool's lint rejects an empty HELP ("no help text"): fall back to the name */
    b_escaped(b, help[0] != '\0' ? help : name, false);
    fdn__buf_puts(b, "\n# TYPE ");
    fdn__buf_puts(b, name);
    fdn__buf_puts(b, " ");
    fdn__buf_puts(b, type_name(kind));
    fdn__buf_puts(b, "\n");
}

static void event_record(recs_t *rs, const fdn_telemetry_sample_t *x)
{
    fdn__buf_t name = {0}, text = {0}, help = {0};
    double scale = 1.0;
    const char *what;
    if (x->key[0] == '\0') {
        b_event_name(&name, x->name, "_emissions_total");
        what = "emissions";
    } else if (strcmp(x->key, "counter") == 0) {
        b_event_name(&name, x->name, "_total");
        what = "counter sum";
    } else if (strcmp(x->key, "gauge") == 0) {
        b_event_name(&name, x->name, NULL);
        what = "gauge";
    } else if (strcmp(x->key, "histogram") == 0) {
        b_event_name(&name, x->name, NULL);
        what = "histogram";
    } else if (strcmp(x->key, "duration") == 0) {
        b_event_name(&name, x->name, "_duration_seconds");
        what = "duration (seconds)";
        scale = 1e-9;
    } else {
        fdn__buf_t suffix = {0};
        fdn__buf_puts(&suffix, "_");
        fdn__buf_puts(&suffix, x->key);
        b_event_name(&name, x->name, suffix.oom ? "" : suffix.p);
        fdn__free(suffix.p);
        what = x->key;
    }
    fdn__buf_puts(&help, "Telemetry event ");
    fdn__buf_puts(&help, x->name);
    fdn__buf_puts(&help, ": ");
    fdn__buf_puts(&help, what);
    if (name.oom || help.oom) {
        fdn__free(help.p);
        fdn__free(text.p);
        rs->oom = true;
        fdn__free(name.p);
        return;
    }
    header(&text, name.p, help.p, x->kind);
    sample_lines(&text, name.p, x, scale);
    fdn__free(help.p);
    recs_add(rs, &name, &text, x->kind == FDN_TELEMETRY_HISTOGRAM);
}

static int rec_cmp(const void *a, const void *b)
{
    return strcmp(((const rec_t *)a)->name, ((const rec_t *)b)->name);
}

/* True when record i (sorted) names a series of an earlier summary that is written: <S>_sum
 * or <S>_count for a summary S. Such a family would be a second HELP/TYPE for S's series,
 * which the text format (and promtool) rejects, so it is skipped like an exact duplicate. */
static bool shadowed_by_summary(const recs_t *rs, size_t i)
{
    static const char *const sfx[] = {"_sum", "_count"};
    const char *n = rs->r[i].name;
    size_t len = strlen(n);
    for (size_t k = 0; k < 2; k++) {
        size_t sl = strlen(sfx[k]);
        if (len <= sl || memcmp(n + len - sl, sfx[k], sl) != 0)
            continue;
        size_t blen = len - sl;
        /* first record (of those before i) whose name is >= n[0..blen) */
        size_t lo = 0, hi = i;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const char *m = rs->r[mid].name;
            int c = strncmp(m, n, blen);
            if (c == 0)
                c = m[blen] == '\0' ? 0 : 1;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < i && strncmp(rs->r[lo].name, n, blen) == 0 && rs->r[lo].name[blen] == '\0' &&
            rs->r[lo].summary && !rs->r[lo].skipped)
            return true;
    }
    return false;
}

int fdn_telemetry_write_prometheus(fdn_telemetry_t *tm, fdn_telemetry_write_fn write, void *user)
{
    if (write == NULL)
        return FDN_EINVAL;
    if (tm == NULL)
        return 0;
    fdn_telemetry_snapshot_t *sn = NULL;
    int rc = fdn_telemetry_snapshot(tm, &sn);
    if (rc < 0)
        return rc;
    recs_t rs = {0};
    size_t it = 0;
    const fdn_telemetry_sample_t *x = fdn_telemetry_snapshot_next(sn, &it);
    while (x != NULL && !rs.oom) {
        if (x->is_event) {
            event_record(&rs, x);
            x = fdn_telemetry_snapshot_next(sn, &it);
            continue;
        }
        /* a family: its series are contiguous */
        fdn__buf_t name = {0}, text = {0};
        fdn__buf_puts(&name, x->name);
        header(&text, x->name, x->help, x->kind);
        const char *fname = x->name;
        fdn_telemetry_kind_t kind = x->kind;
        while (x != NULL && !x->is_event && strcmp(x->name, fname) == 0) {
            sample_lines(&text, fname, x, 1.0);
            x = fdn_telemetry_snapshot_next(sn, &it);
        }
        recs_add(&rs, &name, &text, kind == FDN_TELEMETRY_HISTOGRAM);
    }
    fdn_telemetry_snapshot_free(sn);
    if (!rs.oom && rs.n > 1)
        qsort(rs.r, rs.n, sizeof(*rs.r), rec_cmp);
    rc = rs.oom ? FDN_ENOMEM : 0;
    for (size_t i = 0; i < rs.n; i++) {
        if (rc == 0) {
            if ((i > 0 && strcmp(rs.r[i].name, rs.r[i - 1].name) == 0) ||
                shadowed_by_summary(&rs, i)) {
                rs.r[i].skipped = true;
                fdn__buf_t c = {0};
                fdn__buf_puts(&c, "# skipped duplicate metric name ");
                fdn__buf_puts(&c, rs.r[i].name);
                fdn__buf_puts(&c, "\n");
                rc = c.oom ? FDN_ENOMEM : write(c.p, c.len, user);
                fdn__free(c.p);
            } else {
                rc = write(rs.r[i].text, strlen(rs.r[i].text), user);
            }
        }
    }
    for (size_t i = 0; i < rs.n; i++) {
        fdn__free(rs.r[i].name);
        fdn__free(rs.r[i].text);
    }
    fdn__free(rs.r);
    return rc;
}
