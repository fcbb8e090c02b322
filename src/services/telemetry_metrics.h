/* Private: sharded metric primitives shared by telemetry.c and the unit/stress tests.
 * See the DESIGN comment of metrics.c. */
#ifndef FDN_SERVICES_TELEMETRY_METRICS_H
#define FDN_SERVICES_TELEMETRY_METRICS_H

#include "core/utf8.h"
#include <stdatomic.h>
#include <fdn/telemetry.h>

/* Shards per metric (power of two). A live thread owns one slot; slot % TM_SHARDS is its
 * shard, so up to TM_SHARDS live threads never share a cache line. */
#define TM_SHARDS 16
/* Histogram layout: per sign TM_HIST_EXPS powers of two × 2^FDN_TELEMETRY_HIST_SUB_BITS. */
#define TM_HIST_SUB     (1u << FDN_TELEMETRY_HIST_SUB_BITS)
#define TM_HIST_EXP_MIN (-8)
#define TM_HIST_EXPS    64u
#define TM_HIST_HALF    (TM_HIST_EXPS * TM_HIST_SUB)
#define TM_HIST_BUCKETS (2u * TM_HIST_HALF + 1u) /* negatives, zero, positives */

/* Calling thread's shard (claims a slot on first use). */
unsigned fdn__tm_shard(void);

/* Allocation of cache-line-aligned objects (zeroed). NULL on OOM. */
void *fdn__tm_aligned_calloc(size_t size);
void fdn__tm_aligned_free(void *p);

fdn_counter_t *fdn__counter_new(void);
void fdn__counter_free(fdn_counter_t *c);
void fdn__counter_reset(fdn_counter_t *c);

fdn_gauge_t *fdn__gauge_new(bool is_double);
void fdn__gauge_free(fdn_gauge_t *g);
void fdn__gauge_reset(fdn_gauge_t *g);
int64_t fdn__gauge_int(const fdn_gauge_t *g);

/* Most `le` bounds of a histogram (FDN_TELEMETRY_MAX_BUCKETS). */
#define TM_LE_MAX FDN_TELEMETRY_MAX_BUCKETS

fdn_histogram_t *fdn__histogram_new(void);
/* A histogram that also counts observations per `le` bound: bounds strictly increasing and
 * finite, 0 < n <= TM_LE_MAX (n == 0 gives a histogram without bounds). div divides the
 * bounds and the sum when they are written (1e9: observed in ns, exported in seconds). */
fdn_histogram_t *fdn__histogram_new_le(const double *bounds, unsigned n, double div);
/* True when bounds[0..n) are finite, strictly increasing, 0 < n <= TM_LE_MAX. */
bool fdn__le_bounds_valid(const double *bounds, size_t n);
/* Index of the first bound >= v (n when v exceeds every bound): v's `le` bucket. */
unsigned fdn__le_index(const double *bounds, unsigned n, double v);
void fdn__histogram_free(fdn_histogram_t *h);
void fdn__histogram_reset(fdn_histogram_t *h);

/* A merged, consistent copy of a histogram (each shard copied under its lock). */
typedef struct tm_hist_copy {
    uint64_t count;
    double sum, min, max;
    uint64_t buckets[TM_HIST_BUCKETS];
    unsigned nle;             /* `le` bounds (0: none) */
    double le_div;            /* export divisor of the bounds and sum */
    double le[TM_LE_MAX];     /* the bounds */
    uint64_t le_n[TM_LE_MAX]; /* observations in (le[i-1], le[i]] (not cumulative) */
} tm_hist_copy_t;
void fdn__histogram_copy(const fdn_histogram_t *h, tm_hist_copy_t *out);
/* The same without the log-linear buckets (out->buckets left as they were, so no quantile):
 * count, sum, min, max and the `le` counts. */
void fdn__histogram_copy_le(const fdn_histogram_t *h, tm_hist_copy_t *out);
/* A bucket's exemplar (fdn_histogram_observe_exemplar), value in the observed unit. */
typedef struct tm_exemplar {
    bool set;
    double v;
    int64_t wall_ns;
    char name[FDN_TELEMETRY_EXEMPLAR_NAME_MAX + 1];
    char value[FDN_TELEMETRY_EXEMPLAR_VALUE_MAX + 1];
} tm_exemplar_t;
/* Copy h's exemplars (nle + 1 entries) into out; false when it has none. */
bool fdn__histogram_exemplars(const fdn_histogram_t *h, tm_exemplar_t out[TM_LE_MAX + 1]);
/* What identifies a histogram's contents without copying them: between two equal versions
 * no observation, exemplar, reset or load completed (each shard's count only grows between
 * resets, so an equal total means every shard is unchanged). Cost: one lock per shard used. */
typedef struct tm_hist_version {
    uint64_t resets, count, exemplars;
} tm_hist_version_t;
/* The divisor of h's exported bounds and sum (1 without `le` bounds), as copies report it. */
double fdn__histogram_div(const fdn_histogram_t *h);
/* False when a reset or load ran meanwhile (the version then matches nothing reliably). */
bool fdn__histogram_version(const fdn_histogram_t *h, tm_hist_version_t *out);
void fdn__hist_copy_stats(const tm_hist_copy_t *c, fdn_telemetry_hist_stats_t *out);
double fdn__hist_copy_quantile(const tm_hist_copy_t *c, double q);
/* Bucket index of v (finite) and the bucket's midpoint. */
unsigned fdn__hist_bucket(double v);
double fdn__hist_mid(unsigned b);

#endif
