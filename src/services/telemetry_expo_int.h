/* Private: the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 writers of a
 * telemetry instance, shared by their four files:
 *   telemetry_prometheus.c  the cache of each format's text and the public writers (DESIGN
 *                           comment there: what a scrape does, threads and locks);
 *   telemetry_expo_plan.c   the plan: which records (metric families) the text lists, their
 *                           names, order and de-duplication;
 *   telemetry_expo_lines.c  the lines of a record: HELP/TYPE, samples, labels, exemplars;
 *   telemetry_numfmt.c      numbers as the text writes them (shortest round-trip doubles).
 */
#ifndef FDN_SERVICES_TELEMETRY_EXPO_INT_H
#define FDN_SERVICES_TELEMETRY_EXPO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <fdn/telemetry.h>

#include "core/buf.h"
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
static inline char *u64_digits(char *end, uint64_t v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* The process collector's metrics (fdn__tm_proc_metrics). */
#define TM_NPROC 7

/* Scratch for one series' values (a histogram's copy, its cumulative `le` counts and its
 * exemplars): the sample being rendered points into it. */
typedef struct fill {
    tm_hist_copy_t copy;
    double le[TM_LE_MAX];
    uint64_t cum[TM_LE_MAX];
    tm_exemplar_t ex[TM_LE_MAX + 1];
    fdn_telemetry_exemplar_t exo[TM_LE_MAX + 1];
} fill_t;

enum { PART_SERIES, PART_SUMMARY, PART_PROCESS };

/* One series' lines in a record (or a process metric's one line), kept with the value key
 * they were rendered from: a counter's value, a gauge's bits, a histogram's version. */
/* A histogram series' lines as the text before each value, made once per series (and again
 * only if its bounds change): `<name>_bucket{<labels>,le="<b>"} ` per bound and +Inf, then
 * `<name>_sum<labels> ` and `<name>_count<labels> `, line i ending at end[i]. A scrape that
 * renders the series again appends these and the numbers. */
typedef struct tm_hist_pre {
    unsigned nle;
    double le[TM_LE_MAX];
    uint32_t end[TM_LE_MAX + 3];
    fdn__buf_t text;
} tm_hist_pre_t;

typedef struct part {
    unsigned char what; /* PART_* */
    bool valid;         /* text and key hold a rendering */
    const void *metric; /* the series' counter, gauge or histogram (tm's; PART_PROCESS: none) */
    size_t proc;        /* PART_PROCESS: index in fdn__tm_proc_metrics */
    fdn_telemetry_sample_t x; /* labels, kind, hist_div; values filled when rendered */
    uint64_t key[3];
    fdn__buf_t lab; /* fdn__tm_label_text of the series */
    fdn__buf_t text;
    tm_hist_pre_t *pre; /* a histogram's line prefixes (NULL until rendered) */
    uint64_t at;        /* the assembly (tm_expo_t.serial) that first shows this rendering */
    uint64_t len_at;    /* ... that first shows the text's length as it is now */
} part_t;

/* One metric family's text: HELP and TYPE, then its parts; keyed by its name for sorting and
 * de-duplication. */
typedef struct rec {
    char *name;
    char *sname;     /* the name the parts' samples carry */
    fdn__buf_t head; /* HELP and TYPE (fdn_build_info: its whole text) */
    part_t *parts;
    size_t nparts, capparts;
    bool histogram; /* also owns <name>_bucket, <name>_sum and <name>_count */
    bool counter;   /* a counter (OpenMetrics: its samples are <name>_total) */
    bool family;    /* a family (wins over an event entry of the same name) */
    bool skipped;
    bool comment; /* skipped, said in a comment line (the 0.0.4 text only) */
} rec_t;

/* A text handed to sinks: immutable while anyone but the cache holds it, freed by its last
 * reference. The cache may write again a block only it holds (refs == 1 under expo_mu). */
typedef struct blob {
    _Atomic size_t refs;
    size_t len;
    size_t cap;      /* bytes at p */
    uint64_t serial; /* the assembly whose text it holds */
    char p[];
} blob_t;

/* Texts the cache keeps after they were replaced, to write the next ones into once nobody
 * else holds them (telemetry_prometheus.c: assemble). */
#define TM_EXPO_SPARES 3

/* One format's cache (tm->expo[om], under tm->expo_mu). */
typedef struct tm_expo {
    bool om;             /* OpenMetrics */
    bool built;          /* the records below list tm as of `shape` */
    bool oom;            /* building or rendering ran out of memory */
    bool adding_family;  /* the records being added are families */
    uint64_t shape;      /* tm->shape when built */
    unsigned proc_avail; /* process metrics available when built (bit i: fdn__tm_proc_metrics[i]) */
    rec_t *r;
    size_t n, cap;
    tm_entry_t **entries; /* the event entries listed (retention's activity sampling) */
    size_t nentries, capentries;
    blob_t *out; /* the last text (this holds one reference) */
    blob_t *spare[TM_EXPO_SPARES]; /* earlier texts (one reference each), or NULL */
    uint64_t serial;               /* assemblies made (out->serial) */
    uint64_t layout_at;            /* the first assembly of the current plan */
    fill_t *fill;
    /* the process metrics' parts written (not skipped), and their records: a scrape's second
     * refresh visits only these */
    struct {
        rec_t *r;
        part_t *p;
    } procs[TM_NPROC];
    size_t nprocs;
} tm_expo_t;

/* The process collector's metrics (telemetry_process.c): name, help, kind and the offset of
 * the value in fdn__tm_process_t (a double; negative: not available). */
typedef struct fdn__tm_proc_metric {
    const char *name, *help;
    fdn_telemetry_kind_t kind;
    size_t off;
} fdn__tm_proc_metric_t;

extern const fdn__tm_proc_metric_t fdn__tm_proc_metrics[TM_NPROC];

/* telemetry_expo_plan.c: process metric i of p. */
double fdn__tm_proc_value(const fdn__tm_process_t *p, size_t i);
/* telemetry_expo_plan.c: list the records of tm's current shape into c (no text rendered
 * yet; out of memory: c->oom); avail: the process metrics available (bit i:
 * fdn__tm_proc_metrics[i]). */
void fdn__tm_plan_build(tm_expo_t *c, fdn_telemetry_t *tm, unsigned avail) FDN_REQUIRES(tm->mu);
/* telemetry_expo_plan.c: free c's records (c stays usable). */
void fdn__tm_plan_clear(tm_expo_t *c);

/* telemetry_numfmt.c: v as the text writes a bound or value, the shortest form that reads
 * back as the same double, into t (40 bytes); returns its length. v finite. */
size_t fdn__tm_fmt_short(char *t, double v);
/* telemetry_numfmt.c: the shortest "%.*g" form of v (finite, not whole below 1e15) that reads
 * back, into t (40 bytes): the first of "%.15g", "%.16g", "%.17g" that does (subnormals: the
 * fewest digits). Returns its length. */
size_t fdn__tm_fmt_short_g(char *t, double v);
/* telemetry_numfmt.c: the same text by its definition, with snprintf and strtod: the fallback
 * of fdn__tm_fmt_short_g where its integer arithmetic does not reach, and the reference the
 * tests compare it with. */
size_t fdn__tm_fmt_short_g_libc(char *t, double v);

/* telemetry_expo_lines.c: s escaped for a label value or an OpenMetrics HELP text (quote:
 * also '"') or a 0.0.4 HELP text. */
void fdn__tm_put_escaped(fdn__buf_t *b, const char *s, bool quote);
/* telemetry_expo_lines.c: v as fdn__tm_fmt_short writes it, NaN and +-Inf included. */
void fdn__tm_put_short(fdn__buf_t *b, double v);
/* telemetry_expo_lines.c: the label pairs of series x as text (`k="v",k2="v2"`). */
void fdn__tm_label_text(fdn__buf_t *b, const fdn_telemetry_sample_t *x);
/* telemetry_expo_lines.c: a family's HELP and TYPE lines (om: OpenMetrics, whose HELP text
 * escapes '"' too). */
void fdn__tm_header(fdn__buf_t *b, const char *name, const char *help, fdn_telemetry_kind_t kind,
                    bool om);
/* telemetry_expo_lines.c: one series' sample lines (name: the sample name; lab: its label
 * text; om: OpenMetrics, buckets carry their exemplars); pre: a histogram's line prefixes,
 * made on first use and kept there (NULL: none kept). */
void fdn__tm_sample_lines(fdn__buf_t *b, const char *name, const fdn__buf_t *lab,
                          const fdn_telemetry_sample_t *x, bool om, tm_hist_pre_t **pre);
/* telemetry_expo_lines.c: free line prefixes (NULL accepted). */
void fdn__tm_hist_pre_free(tm_hist_pre_t *h);
/* telemetry_expo_lines.c: one series' summary lines (quantiles, _sum, _count) under fam. */
void fdn__tm_summary_lines(fdn__buf_t *b, const char *fam, const fdn__buf_t *lab,
                           const fdn_telemetry_sample_t *x);

#endif
