/*
 * DESIGN: the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 writers of a
 * telemetry instance.
 *
 * Part of libfdn (not of the optional fdn_admin library), so a program that does not serve
 * HTTP can still write the exposition, e.g. to a file. Built only on the public snapshot
 * iterator and core's text buffer. Threads: any; the writer owns its snapshot and buffers,
 * takes no lock of its own and calls the sink on the calling thread with no telemetry lock
 * held (the snapshot is taken and released first).
 *
 * Naming (docs/telemetry.md has the catalogue): one prefix, `fdn_`, for the library's own
 * metrics. Families keep their names (validated at registration). Event entries are exported
 * once each, by their measurement keys; an event `foundation.x.y` (the reference's names, also
 * `foundation.foundation.x`) becomes base `fdn_x_y`, any other event keeps its sanitised name,
 * and `vm.*` events (the reference's Erlang poller) stay in the JSON API only, as do events
 * under a prefix given to fdn_telemetry_unexport_event (a labelled family measures them):
 *   counter key → counter `<base>_total`; gauge key → gauge `<base>`; the `histogram` key
 *   → histogram `<base>` (decade buckets);
 *   a time key (`duration`, `*_ns`, `*_time`: ns) → histogram `<base>_<key>_seconds`
 *   (`duration` → `<base>_duration_seconds`), `le` from 10 us to 10 s;
 *   any other key → histogram `<base>_<key>` (decade buckets);
 *   the emission count → counter `<base>_total`, only for an entry with no measurement key
 *   (otherwise it would export the same events twice).
 * Characters outside [a-zA-Z0-9_:] become '_', a leading digit gets a '_' prefix. Each metric
 * family is written once (HELP, TYPE, samples); when two sources map to the same name, or a
 * family is named like a written histogram's own series (<H>_bucket, <H>_sum, <H>_count), the
 * first in sorted order wins and the others are skipped (listed in a comment line), so the
 * output is always valid. Histograms are real Prometheus histograms: cumulative `le` buckets
 * (exact counts of observations <= bound), `+Inf`, `_sum`, `_count`.
 * The process collector (process_*, telemetry_process.c) and `fdn_build_info` are appended.
 * OpenMetrics differs in: a counter family's TYPE/HELP name has no `_total` (its samples keep
 * it), and the text ends with `# EOF`.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/utf8.h"
#include "services/telemetry_int.h"
#include "services/telemetry_process.h"

/* fdn__buf_put with the common case (it fits) inline: a scrape makes thousands of small
 * appends. */
static inline void bput(fdn__buf_t *b, const char *s, size_t n)
{
    if (!b->oom && b->cap - b->len > n) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return;
    }
    fdn__buf_put(b, s, n);
}

static inline void bputs(fdn__buf_t *b, const char *s)
{
    bput(b, s, strlen(s));
}

/* Decimal digits of v, ending at end; returns where they start. */
static char *u64_digits(char *end, uint64_t v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

static void b_fmt_u64(fdn__buf_t *b, uint64_t v)
{
    char t[24];
    char *p = u64_digits(t + sizeof t, v);
    bput(b, p, (size_t)(t + sizeof t - p));
}

static void b_fmt_dbl(fdn__buf_t *b, double v)
{
    if (isnan(v)) {
        bputs(b, "NaN");
    } else if (isinf(v)) {
        bputs(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char t[40];
        int n = snprintf(t, sizeof(t), "%.17g", v);
        bput(b, t, (size_t)n);
    }
}

/* escape: label values escape \ " and newline; help escapes \ and newline */
static void b_escaped(fdn__buf_t *b, const char *s, bool quote)
{
    size_t len = strlen(s);
    for (const char *end = s + len; *s; s++) {
        const char *run = s; /* plain bytes go out in one append */
        while (*s != '\0' && (unsigned char)*s < 0x80 && *s != '\\' && *s != '\n' &&
               !(quote && *s == '"'))
            s++;
        if (s > run)
            bput(b, run, (size_t)(s - run));
        if (*s == '\0')
            break;
        if ((unsigned char)*s >= 0x80) {
            /* keep valid UTF-8, replace anything else: the format requires UTF-8 */
            size_t n = fdn__utf8_seq((const unsigned char *)s, (size_t)(end - s));
            if (n == 0) {
                bputs(b, "\xef\xbf\xbd"); /* U+FFFD */
            } else {
                bput(b, s, n);
                s += n - 1;
            }
            continue;
        }
        if (*s == '\\')
            bputs(b, "\\\\");
        else if (*s == '\n')
            bputs(b, "\\n");
        else if (quote && *s == '"')
            bputs(b, "\\\"");
        else
            bput(b, s, 1);
    }
}

/* s with characters outside [a-zA-Z0-9_:] replaced by '_' (and, with lead, a '_' before a
 * leading digit). */
static void b_sanitized(fdn__buf_t *b, const char *s, bool lead)
{
    if (lead && s[0] >= '0' && s[0] <= '9')
        bputs(b, "_");
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == ':';
        bput(b, ok ? s : "_", 1);
    }
}

/* One metric family's text, keyed by its name for sorting and de-duplication. */
typedef struct rec {
    char *name;
    char *text;
    bool histogram; /* also owns <name>_bucket, <name>_sum and <name>_count */
    bool family;    /* a family (wins over an event entry of the same name) */
    bool skipped;
} rec_t;

typedef struct recs {
    rec_t *r;
    size_t n, cap;
    bool oom;
    bool om;            /* OpenMetrics */
    bool adding_family; /* the records being added are families */
} recs_t;

static void recs_add(recs_t *rs, fdn__buf_t *name, fdn__buf_t *text, bool histogram)
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
    rs->r[rs->n].histogram = histogram;
    rs->r[rs->n].family = rs->adding_family;
    rs->r[rs->n].skipped = false;
    rs->n++;
}

/* The shortest "%.*g" form of a finite v that is not whole (or >= 1e15) that reads back as the
 * same double, into t (40 bytes); returns its length. Whether a precision reads back is
 * monotonic in it (the nearest p+1-digit decimal is at least as near as the nearest p-digit
 * one), so a binary search over 1..17 finds the least in 4 or 5 tries instead of up to 17. */
static size_t fmt_short_g(char *t, double v)
{
    int lo = 1, hi = 17; /* 17 always reads back */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        (void)snprintf(t, 40, "%.*g", mid, v);
        if (strtod(t, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (size_t)snprintf(t, 40, "%.*g", lo, v);
}

/* Per-thread memo of fmt_short_g: the search costs up to 17 snprintf + strtod pairs, and a
 * scrape formats the same few bucket bounds for every series of a histogram family. */
#define SHORT_MEMO 64
static _Thread_local struct {
    uint64_t bits;
    unsigned char len; /* 0: empty */
    char t[31];
} short_memo[SHORT_MEMO];

/* A bound or value in the shortest form that reads back as the same double, into t (40
 * bytes); returns its length. Whole numbers below 1e15 are written without an exponent
 * ("10", as "%.0f" did); the others as the shortest round-tripping "%g". */
static size_t fmt_short(char *t, double v)
{
    if (v == nearbyint(v) && fabs(v) < 1e15) {
        if (v == 0) {
            size_t k = 0;
            if (signbit(v))
                t[k++] = '-';
            t[k++] = '0';
            t[k] = '\0';
            return k;
        }
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char d[24];
        char *p = u64_digits(d + sizeof d, u);
        size_t n = (size_t)(d + sizeof d - p);
        size_t k = 0;
        if (i < 0)
            t[k++] = '-';
        memcpy(t + k, p, n);
        t[k + n] = '\0';
        return k + n;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    size_t slot = (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 58); /* 6 bits: SHORT_MEMO */
    if (short_memo[slot].len != 0 && short_memo[slot].bits == bits) {
        memcpy(t, short_memo[slot].t, short_memo[slot].len + 1u);
        return short_memo[slot].len;
    }
    size_t n = fmt_short_g(t, v);
    if (n > 0 && n < sizeof short_memo[slot].t) {
        short_memo[slot].bits = bits;
        short_memo[slot].len = (unsigned char)n;
        memcpy(short_memo[slot].t, t, n + 1);
    }
    return n;
}

static void b_fmt_short(fdn__buf_t *b, double v)
{
    if (!isfinite(v)) {
        b_fmt_dbl(b, v);
        return;
    }
    char t[40];
    size_t n = fmt_short(t, v);
    bput(b, t, n);
}

static void labels(fdn__buf_t *b, const fdn_telemetry_sample_t *x, const char *extra_k,
                   const char *extra_v)
{
    if (x->nlabels == 0 && extra_k == NULL)
        return;
    bputs(b, "{");
    for (size_t i = 0; i < x->nlabels; i++) {
        if (i > 0)
            bputs(b, ",");
        bputs(b, x->label_names[i]);
        bputs(b, "=\"");
        b_escaped(b, x->label_values[i], true);
        bputs(b, "\"");
    }
    if (extra_k != NULL) {
        if (x->nlabels > 0)
            bputs(b, ",");
        bputs(b, extra_k);
        bputs(b, "=\"");
        bputs(b, extra_v);
        bputs(b, "\"");
    }
    bputs(b, "}");
}

static const char *type_name(fdn_telemetry_kind_t k)
{
    switch (k) {
    case FDN_TELEMETRY_COUNTER:
        return "counter";
    case FDN_TELEMETRY_HISTOGRAM:
        return "histogram";
    default:
        return "gauge";
    }
}

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);
    return n > k && memcmp(s + n - k, sfx, k) == 0;
}

/* OpenMetrics: the exemplar of a bucket line, if it has one: ` # {name="value"} v ts`. */
static void exemplar(fdn__buf_t *b, const fdn_telemetry_sample_t *x, size_t i)
{
    const fdn_telemetry_exemplar_t *e = x->bucket_exemplar != NULL ? &x->bucket_exemplar[i] : NULL;
    if (e == NULL || e->label_name == NULL)
        return;
    bputs(b, " # {");
    bputs(b, e->label_name);
    bputs(b, "=\"");
    b_escaped(b, e->label_value, true);
    bputs(b, "\"} ");
    b_fmt_short(b, e->value);
    char t[40];
    int n = snprintf(t, sizeof t, " %.3f", e->timestamp_s);
    bput(b, t, (size_t)n);
}

/* Write one sample's lines. name: the sample name (for OpenMetrics counters, with _total);
 * om: OpenMetrics (histogram buckets carry their exemplars). */
static void sample_lines(fdn__buf_t *b, const char *name, const fdn_telemetry_sample_t *x, bool om)
{
    if (x->kind == FDN_TELEMETRY_COUNTER) {
        bputs(b, name);
        labels(b, x, NULL, NULL);
        bputs(b, " ");
        b_fmt_u64(b, x->counter);
        bputs(b, "\n");
    } else if (x->kind == FDN_TELEMETRY_HISTOGRAM) {
        double div = x->hist_div > 0.0 ? x->hist_div : 1.0;
        for (size_t i = 0; i < x->nbuckets; i++) {
            char le[40];
            if (isfinite(x->bucket_le[i]))
                (void)fmt_short(le, x->bucket_le[i]);
            else
                memcpy(le,
                       x->bucket_le[i] > 0      ? "+Inf"
                       : isnan(x->bucket_le[i]) ? "NaN"
                                                : "-Inf",
                       5);
            bputs(b, name);
            bputs(b, "_bucket");
            labels(b, x, "le", le);
            bputs(b, " ");
            b_fmt_u64(b, x->bucket_le_count[i]);
            if (om)
                exemplar(b, x, i);
            bputs(b, "\n");
        }
        bputs(b, name);
        bputs(b, "_bucket");
        labels(b, x, "le", "+Inf");
        bputs(b, " ");
        b_fmt_u64(b, x->hist.count);
        if (om && x->nbuckets > 0)
            exemplar(b, x, x->nbuckets);
        bputs(b, "\n");
        bputs(b, name);
        bputs(b, "_sum");
        labels(b, x, NULL, NULL);
        bputs(b, " ");
        b_fmt_short(b, div == 1.0 ? x->hist.sum : x->hist.sum / div);
        bputs(b, "\n");
        bputs(b, name);
        bputs(b, "_count");
        labels(b, x, NULL, NULL);
        bputs(b, " ");
        b_fmt_u64(b, x->hist.count);
        bputs(b, "\n");
    } else {
        bputs(b, name);
        labels(b, x, NULL, NULL);
        bputs(b, " ");
        if (x->kind == FDN_TELEMETRY_GAUGE_INT) {
            char t[32];
            int n = snprintf(t, sizeof(t), "%lld", (long long)x->gauge_int);
            bput(b, t, (size_t)n);
        } else {
            b_fmt_short(b, x->gauge);
        }
        bputs(b, "\n");
    }
}

static void header(fdn__buf_t *b, const char *name, const char *help, fdn_telemetry_kind_t kind)
{
    bputs(b, "# HELP ");
    bputs(b, name);
    bputs(b, " ");
    /* promtool's lint rejects an empty HELP ("no help text"): fall back to the name */
    b_escaped(b, help[0] != '\0' ? help : name, false);
    bputs(b, "\n# TYPE ");
    bputs(b, name);
    bputs(b, " ");
    bputs(b, type_name(kind));
    bputs(b, "\n");
}

/* Family name (for HELP/TYPE) and sample name of a metric called `name` (its full sample
 * name for counters, e.g. x_total): OpenMetrics types counter x with samples x_total. */
static void names_for(const recs_t *rs, const char *name, fdn_telemetry_kind_t kind,
                      fdn__buf_t *fam, fdn__buf_t *sample)
{
    if (rs->om && kind == FDN_TELEMETRY_COUNTER) {
        if (ends_with(name, "_total")) {
            bput(fam, name, strlen(name) - 6);
            bputs(sample, name);
        } else {
            bputs(fam, name);
            bputs(sample, name);
            bputs(sample, "_total");
        }
        return;
    }
    bputs(fam, name);
    bputs(sample, name);
}

/* One record from a metric named `name` with these samples (contiguous, same kind). */
static void add_metric(recs_t *rs, const char *name, const char *help,
                       const fdn_telemetry_sample_t *const *xs, size_t n)
{
    fdn__buf_t fam = {0}, sample = {0}, text = {0};
    fdn_telemetry_kind_t kind = xs[0]->kind;
    names_for(rs, name, kind, &fam, &sample);
    if (fam.oom || sample.oom) {
        rs->oom = true;
        fdn__free(fam.p);
        fdn__free(sample.p);
        return;
    }
    header(&text, fam.p, help, kind);
    for (size_t i = 0; i < n; i++)
        sample_lines(&text, sample.p, xs[i], rs->om);
    fdn__free(sample.p);
    recs_add(rs, &fam, &text, kind == FDN_TELEMETRY_HISTOGRAM);
}

/* Base name of an event (see the DESIGN comment); false: not exported (vm.*). */
static bool event_base(fdn__buf_t *b, const char *event)
{
    if (strncmp(event, "vm.", 3) == 0)
        return false;
    const char *e = event;
    bool lib = false;
    while (strncmp(e, "foundation.", 11) == 0) {
        e += 11;
        lib = true;
    }
    if (lib)
        bputs(b, "fdn_");
    b_sanitized(b, e, !lib);
    return true;
}

static void event_metric(recs_t *rs, const fdn_telemetry_sample_t *x)
{
    fdn__buf_t name = {0}, help = {0};
    const char *what;
    if (!event_base(&name, x->name))
        return;
    if (x->key[0] == '\0') {
        bputs(&name, "_total");
        what = "events";
    } else if (strcmp(x->key, "counter") == 0) {
        bputs(&name, "_total");
        what = "counter sum";
    } else if (strcmp(x->key, "gauge") == 0) {
        what = "gauge";
    } else if (strcmp(x->key, "histogram") == 0) {
        what = "histogram";
    } else if (x->kind == FDN_TELEMETRY_HISTOGRAM && x->hist_div != 1.0) {
        /* a time key: observed in ns, exported in seconds */
        size_t kl = strlen(x->key);
        if (ends_with(x->key, "_ns"))
            kl -= 3;
        bputs(&name, "_");
        fdn__buf_t k = {0};
        bput(&k, x->key, kl);
        b_sanitized(&name, k.oom ? "" : k.p, false);
        fdn__free(k.p);
        bputs(&name, "_seconds");
        what = "duration (seconds)";
    } else {
        bputs(&name, "_");
        b_sanitized(&name, x->key, false);
        what = x->key;
    }
    bputs(&help, "Telemetry event ");
    bputs(&help, x->name);
    bputs(&help, ": ");
    bputs(&help, what);
    if (name.oom || help.oom) {
        rs->oom = true;
    } else {
        const fdn_telemetry_sample_t *xs[1] = {x};
        add_metric(rs, name.p, help.p, xs, 1);
    }
    fdn__free(help.p);
    fdn__free(name.p);
}

static int rec_cmp(const void *pa, const void *pb)
{
    const rec_t *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    if (c != 0)
        return c;
    return (int)b->family - (int)a->family; /* families first */
}

/* True when record i (sorted) names a series of an earlier histogram that is written:
 * <H>_bucket, <H>_sum or <H>_count. Such a family would be a second HELP/TYPE for H's
 * series, which the text format (and promtool) rejects, so it is skipped like an exact
 * duplicate. */
static bool shadowed_by_histogram(const recs_t *rs, size_t i)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    const char *n = rs->r[i].name;
    size_t len = strlen(n);
    for (size_t k = 0; k < 3; k++) {
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
            rs->r[lo].histogram && !rs->r[lo].skipped)
            return true;
    }
    return false;
}

/* The process collector's and build info's records. */
static void process_records(recs_t *rs)
{
    fdn__tm_process_t p;
    fdn__tm_process_read(&p);
    static const struct {
        const char *name, *help;
        fdn_telemetry_kind_t kind;
        size_t off;
    } m[] = {
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         FDN_TELEMETRY_COUNTER, offsetof(fdn__tm_process_t, cpu_seconds)},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", FDN_TELEMETRY_GAUGE,
         offsetof(fdn__tm_process_t, resident_bytes)},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", FDN_TELEMETRY_GAUGE,
         offsetof(fdn__tm_process_t, virtual_bytes)},
        {"process_open_fds", "Number of open file descriptors.", FDN_TELEMETRY_GAUGE,
         offsetof(fdn__tm_process_t, open_fds)},
        {"process_max_fds", "Maximum number of open file descriptors.", FDN_TELEMETRY_GAUGE,
         offsetof(fdn__tm_process_t, max_fds)},
        {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         FDN_TELEMETRY_GAUGE, offsetof(fdn__tm_process_t, start_time_seconds)},
        {"process_threads", "Number of OS threads in the process.", FDN_TELEMETRY_GAUGE,
         offsetof(fdn__tm_process_t, threads)},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        double v;
        memcpy(&v, (const char *)&p + m[i].off, sizeof v);
        if (v < 0)
            continue; /* not available on this system */
        fdn__buf_t fam = {0}, sample = {0}, text = {0};
        names_for(rs, m[i].name, m[i].kind, &fam, &sample);
        header(&text, fam.oom ? "" : fam.p, m[i].help, m[i].kind);
        bputs(&text, sample.oom ? "" : sample.p);
        bputs(&text, " ");
        b_fmt_short(&text, v);
        bputs(&text, "\n");
        fdn__free(sample.p);
        recs_add(rs, &fam, &text, false);
    }
    fdn__buf_t fam = {0}, text = {0};
    bputs(&fam, "fdn_build_info");
    header(&text, "fdn_build_info", "Foundation for C library build: version label, value 1.",
           FDN_TELEMETRY_GAUGE);
    bputs(&text, "fdn_build_info{version=\"");
    b_escaped(&text, fdn_version(), true);
    bputs(&text, "\"} 1\n");
    recs_add(rs, &fam, &text, false);
}

static int write_exposition(fdn_telemetry_t *tm, bool om, fdn_telemetry_write_fn write, void *user)
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
    rs.om = om;
    size_t it = 0, nxs = 0, capxs = 0;
    const fdn_telemetry_sample_t **xs = NULL;
    const fdn_telemetry_sample_t *x = fdn_telemetry_snapshot_next(sn, &it);
    while (x != NULL && !rs.oom) {
        if (x->is_event) {
            /* an event's samples are contiguous, its emission count (key "") first */
            const char *ev = x->name;
            const fdn_telemetry_sample_t *emissions = NULL;
            bool keyed = false;
            if (!fdn__tm_event_exported(tm, ev)) {
                while (x != NULL && x->is_event && strcmp(x->name, ev) == 0)
                    x = fdn_telemetry_snapshot_next(sn, &it);
                continue;
            }
            while (x != NULL && x->is_event && strcmp(x->name, ev) == 0) {
                if (x->key[0] == '\0') {
                    emissions = x;
                } else {
                    keyed = true;
                    event_metric(&rs, x);
                }
                x = fdn_telemetry_snapshot_next(sn, &it);
            }
            if (!keyed && emissions != NULL)
                event_metric(&rs, emissions);
            continue;
        }
        /* a family: its series are contiguous */
        const char *fname = x->name, *fhelp = x->help;
        nxs = 0;
        while (x != NULL && !x->is_event && strcmp(x->name, fname) == 0) {
            if (nxs == capxs) {
                size_t cap = capxs ? capxs * 2 : 16;
                const fdn_telemetry_sample_t **n = fdn__realloc(xs, cap * sizeof(*n));
                if (n == NULL) {
                    rs.oom = true;
                    break;
                }
                xs = n;
                capxs = cap;
            }
            xs[nxs++] = x;
            x = fdn_telemetry_snapshot_next(sn, &it);
        }
        rs.adding_family = true;
        if (!rs.oom && nxs > 0)
            add_metric(&rs, fname, fhelp, xs, nxs);
        rs.adding_family = false;
    }
    fdn__free(xs);
    if (!rs.oom)
        process_records(&rs);
    if (!rs.oom && rs.n > 1)
        qsort(rs.r, rs.n, sizeof(*rs.r), rec_cmp);
    rc = rs.oom ? FDN_ENOMEM : 0;
    for (size_t i = 0; i < rs.n; i++) {
        if (rc == 0) {
            bool dup = i > 0 && strcmp(rs.r[i].name, rs.r[i - 1].name) == 0;
            if (dup && rs.r[i - 1].family && !rs.r[i].family) {
                /* a family supersedes the event entry of the same name (e.g. the runtime's
                 * fdn_supervisor_restarts_total{service}): not a conflict, nothing to say */
                rs.r[i].skipped = true;
            } else if (dup || shadowed_by_histogram(&rs, i)) {
                rs.r[i].skipped = true;
                fdn__buf_t c = {0};
                bputs(&c, "# skipped duplicate metric name ");
                bputs(&c, rs.r[i].name);
                bputs(&c, "\n");
                /* OpenMetrics allows no comment but HELP/TYPE/UNIT/EOF: say nothing there */
                rc = c.oom ? FDN_ENOMEM : om ? 0 : write(c.p, c.len, user);
                fdn__free(c.p);
            } else {
                rc = write(rs.r[i].text, strlen(rs.r[i].text), user);
            }
        }
    }
    if (rc == 0 && om)
        rc = write("# EOF\n", 6, user);
    for (size_t i = 0; i < rs.n; i++) {
        fdn__free(rs.r[i].name);
        fdn__free(rs.r[i].text);
    }
    fdn__free(rs.r);
    fdn_telemetry_snapshot_free(sn);
    return rc;
}

int fdn_telemetry_write_prometheus(fdn_telemetry_t *tm, fdn_telemetry_write_fn write, void *user)
{
    return write_exposition(tm, false, write, user);
}

int fdn_telemetry_write_openmetrics(fdn_telemetry_t *tm, fdn_telemetry_write_fn write, void *user)
{
    return write_exposition(tm, true, write, user);
}
