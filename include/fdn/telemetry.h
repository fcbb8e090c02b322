/**
 * @file telemetry.h
 * @brief Telemetry: the reference's event model (execute / emit / measure / handlers /
 *        get_metrics) over sharded metrics (counters, gauges, log-linear histograms),
 *        labelled metric families with resolved child handles, a JSON snapshot shaped as the
 *        reference's nested tree and Prometheus text-format 0.0.4 / OpenMetrics writers.
 *
 * Two ways to record:
 * - **Events** (docs/telemetry.md): fdn_telemetry_execute(tm, "a.b.c", measurements,
 *   metadata). One entry per event name aggregates the measurements: key `counter` sums,
 *   key `gauge` is replaced by the newest value, every other numeric key (`histogram`,
 *   `duration`, ...) feeds a histogram (count, sum, min, max, quantiles) instead of the
 *   reference's pairwise average (a known bug of the reference). Metadata of the first
 *   emission is kept.
 *   Attached handlers run synchronously on the caller's thread.
 * - **Families**: named Prometheus-style metrics with optional labels; a family hands out
 *   one child handle per label set, so the hot path does no lookup.
 *
 * Every function accepts `tm == NULL` (and NULL handles) as a no-op returning 0, so
 * components whose `telemetry` option is NULL can call them unconditionally.
 *
 * Histogram error bound: values are bucketed by their binary exponent and the top
 * FDN_TELEMETRY_HIST_SUB_BITS (4) mantissa bits; a reported quantile is the midpoint of the bucket
 * holding the exact quantile, clamped to [min, max], so its relative error is at most
 * 2^-(4+1) = 3.125 % for |v| in [2^-8, 2^56). Count, sum, min and max are exact.
 *
 * @since 0.1.0
 */
#ifndef FDN_TELEMETRY_H
#define FDN_TELEMETRY_H

#include "common.h"
#include "clock.h"

FDN_BEGIN_DECLS

/** A telemetry instance (one per runtime). */
typedef struct fdn_telemetry fdn_telemetry_t;
/** A metric family (name, type, label names). Lives as long as its telemetry instance. */
typedef struct fdn_telemetry_family fdn_telemetry_family_t;
/** A counter series (u64, monotonic). Valid until the telemetry instance is destroyed. */
typedef struct fdn_counter fdn_counter_t;
/** A gauge series (int64 or double). Valid until the telemetry instance is destroyed. */
typedef struct fdn_gauge fdn_gauge_t;
/** A histogram series. Valid until the telemetry instance is destroyed. */
typedef struct fdn_histogram fdn_histogram_t;
/** An immutable snapshot of every metric (see fdn_telemetry_snapshot). */
typedef struct fdn_telemetry_snapshot fdn_telemetry_snapshot_t;

/** One measurement of an event: a key and a number. */
typedef struct fdn_telemetry_measure {
    const char *key; /**< measurement name ("duration", "count", ...) */
    double value;    /**< its value */
} fdn_telemetry_measure_t;

/** One metadata pair of an event. */
typedef struct fdn_telemetry_meta {
    const char *key;   /**< metadata key */
    const char *value; /**< its value */
} fdn_telemetry_meta_t;

/** Histogram sub-bucket bits: 2^4 sub-buckets per power of two. */
#define FDN_TELEMETRY_HIST_SUB_BITS 4
/** Maximum labels per family. */
#define FDN_TELEMETRY_MAX_LABELS 8
/** Longest event or metric name accepted (bytes, without the NUL). */
#define FDN_TELEMETRY_NAME_MAX 200
/** Most `le` bounds a histogram family carries (the +Inf bucket not counted). @since 0.2.0 */
#define FDN_TELEMETRY_MAX_BUCKETS 32
/** Default `le` bounds of histogram families, in seconds: 10 us to 10 s, 1-2.5-5 steps
 *  (19 bounds). @since 0.2.0 */
#define FDN_TELEMETRY_DEFAULT_BUCKETS                                                              \
    {                                                                                              \
        1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25,  \
            0.5, 1.0, 2.5, 5.0, 10.0                                                               \
    }
/** Number of FDN_TELEMETRY_DEFAULT_BUCKETS. @since 0.2.0 */
#define FDN_TELEMETRY_DEFAULT_NBUCKETS 19

/** Metric kinds. */
typedef enum fdn_telemetry_kind {
    FDN_TELEMETRY_COUNTER = 1,
    FDN_TELEMETRY_GAUGE = 2,     /**< gauge holding a double */
    FDN_TELEMETRY_GAUGE_INT = 3, /**< gauge holding an int64 */
    FDN_TELEMETRY_HISTOGRAM = 4,
} fdn_telemetry_kind_t;

/** Telemetry options. Initialise with FDN_TELEMETRY_OPTS_INIT. */
typedef struct fdn_telemetry_opts {
    uint32_t version; /**< set by FDN_TELEMETRY_OPTS_INIT */
    /** Clock for timestamps, durations and retention (NULL = system clock). Not owned. */
    fdn_clock_t *clock;
    /** Event entries idle longer than this are dropped by cleanup (ns; 0 = never, the
     *  default: a counter series never disappears while the process lives, and memory is
     *  bounded by max_events instead). */
    int64_t retention_ns;
    /** Period of the background cleanup while the service runs (ns; 0 = no thread). */
    int64_t cleanup_interval_ns;
    /** Most distinct event names kept; further names are counted in
     *  `foundation.telemetry.dropped_events` and not recorded. */
    uint32_t max_events;
    /** Default per-family cardinality limit (series beyond it go to the overflow series). */
    uint32_t max_series_per_family;
    /** A handler failing this many times in a row is detached (0 = never detach). */
    uint32_t handler_max_failures;
    /** Emit the reference's start-up gauges vm.* on service start (reference default on). */
    bool emit_vm_gauges;
} fdn_telemetry_opts_t;

/** Defaults: system clock, no retention (entries kept; the reference dropped them after 5 min
 *  idle, which made scraped series vanish), 60 s cleanup, 10 000 events, 1 000 series per
 *  family, detach after 10 consecutive handler failures, vm gauges on. */
#define FDN_TELEMETRY_OPTS_INIT                                                                    \
    {                                                                                              \
        1u, NULL, 0, 60000000000LL, 10000u, 1000u, 10u, true                                       \
    }

/**
 * Create a telemetry instance. It starts in the running state (execute records) without its
 * cleanup thread; the runtime's supervisor calls the service start hook to start that thread.
 * @param[out] out   the new instance
 * @param[in]  opts  options (NULL = defaults)
 * @return 0, FDN_EINVAL (bad options), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_create(fdn_telemetry_t **out, const fdn_telemetry_opts_t *opts);

/**
 * Stop the cleanup thread (if any) and free everything, including every family and handle.
 * @param[in] tm  the instance; NULL is accepted
 * @thread_safety owner: no concurrent call on tm, no handler running.
 * @since 0.1.0
 */
FDN_API void fdn_telemetry_destroy(fdn_telemetry_t *tm);

/* ---------------------------------------------------------------------------------------- */
/* Events (docs/telemetry.md)                                                              */

/**
 * Record an event: aggregate its measurements into the entry named `event` and run the
 * handlers attached to that name (exact or prefix), synchronously on this thread.
 * Measurement keys: `counter` adds, `gauge` replaces, any other key feeds a histogram.
 * NaN and infinite values are rejected. While the service is stopped the event is dropped and
 * 0 returned (the reference drops silently).
 * @param[in] tm     instance (NULL = no-op returning 0)
 * @param[in] event  dotted name, 1..FDN_TELEMETRY_NAME_MAX bytes of UTF-8, no empty component
 * @param[in] m      measurements (may be NULL when nm == 0); keys 1..FDN_TELEMETRY_NAME_MAX
 *                   bytes
 * @param[in] nm     number of measurements (at most 16)
 * @param[in] meta   metadata (may be NULL when nmeta == 0); copied on the first emission only
 * @param[in] nmeta  number of metadata pairs
 * @return 0, FDN_EINVAL (bad name, NULL, empty or too long key, non-finite value, negative
 *         counter; nothing recorded), FDN_ENOMEM (no memory for a new event's entry: not
 *         recorded, counted in fdn_telemetry_dropped_events_total)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_execute(fdn_telemetry_t *tm, const char *event,
                                  const fdn_telemetry_measure_t *m, size_t nm,
                                  const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * execute(event, {counter: 1}, meta).
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_counter(fdn_telemetry_t *tm, const char *event,
                                       const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * execute(event, {counter: n}, meta) (the reference's service-level variant). The counter
 * adds n exactly (handlers see it as a double, rounded above 2^53).
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_counter_n(fdn_telemetry_t *tm, const char *event, uint64_t n,
                                         const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * execute(event, {gauge: value}, meta).
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_gauge(fdn_telemetry_t *tm, const char *event, double value,
                                     const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * execute(event, {histogram: value}, meta). Any finite value is accepted (0, negatives).
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_histogram(fdn_telemetry_t *tm, const char *event, double value,
                                         const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * The reference's emit_performance: gauge `foundation.performance.<metric>` = value.
 * @return 0, FDN_EINVAL (bad metric name or non-finite value)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_performance(fdn_telemetry_t *tm, const char *metric, double value,
                                           const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * The reference's emit_system_event: counter `foundation.system.<type>` + 1.
 * @return 0, FDN_EINVAL (bad type name)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_emit_system_event(fdn_telemetry_t *tm, const char *type,
                                            const fdn_telemetry_meta_t *meta, size_t nmeta);

/** A measured function: returns >= 0 on success or a negative FDN_E* code. */
typedef int (*fdn_telemetry_measured_fn)(void *user);

/**
 * Run fn(user) and time it with the instance's clock. Emits `<event>.start` (no
 * measurements) before, then `<event>.stop` with {duration: ns} when fn returns >= 0, or
 * `<event>.exception` with {duration: ns} and metadata + {error: fdn_err_name(rc)} when it
 * returns < 0. With tm == NULL fn still runs.
 * @return fn's return value, or FDN_EINVAL (bad name or NULL fn; fn not run)
 * @thread_safety any; fn runs on the calling thread.
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_measure(fdn_telemetry_t *tm, const char *event,
                                  const fdn_telemetry_meta_t *meta, size_t nmeta,
                                  fdn_telemetry_measured_fn fn, void *user);

/** A started span (a value; no allocation). */
typedef struct fdn_telemetry_span {
    fdn_telemetry_t *tm;                    /**< the instance that emits */
    int64_t start_ns;                       /**< start time on its clock */
    char event[FDN_TELEMETRY_NAME_MAX + 1]; /**< event name prefix */
} fdn_telemetry_span_t;

/**
 * Start a span: emits `<event>.start` and records the start time.
 * @param[out] span  the span (caller storage)
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_span_start(fdn_telemetry_t *tm, fdn_telemetry_span_t *span,
                                     const char *event, const fdn_telemetry_meta_t *meta,
                                     size_t nmeta);

/**
 * End a span: emits `<event>.stop` ({duration: ns}) when rc >= 0, else `<event>.exception`
 * with {duration} and metadata + {error: fdn_err_name(rc)}.
 * @return 0, FDN_EINVAL (NULL span)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_span_end(fdn_telemetry_span_t *span, int rc,
                                   const fdn_telemetry_meta_t *meta, size_t nmeta);

/**
 * A handler. Runs synchronously on the thread that called execute, never under an internal
 * lock; it may call any telemetry function (including detach of itself). Return < 0 to report
 * a failure: failures are counted (`foundation.telemetry.handler_failures`) and reported
 * through the event `foundation.telemetry.handler_failure` (metadata handler_id, event,
 * error, detached); after opts.handler_max_failures consecutive failures the handler is
 * detached (the failure event then carries detached=true). The arrays are valid only during
 * the call.
 */
typedef int (*fdn_telemetry_handler_fn)(const char *event, const fdn_telemetry_measure_t *m,
                                        size_t nm, const fdn_telemetry_meta_t *meta, size_t nmeta,
                                        void *user);

/** How a handler's name matches events. */
typedef enum fdn_telemetry_match {
    FDN_TELEMETRY_MATCH_EXACT = 0,  /**< the event name equals the pattern */
    FDN_TELEMETRY_MATCH_PREFIX = 1, /**< the pattern is a whole-component prefix ("a.b" matches
                                  "a.b" and "a.b.c", not "a.bc"); "" matches every event */
} fdn_telemetry_match_t;

/**
 * Attach a handler.
 * @param[out] out_id  handler id (> 0) for fdn_telemetry_detach; may be NULL
 * @param[in]  pattern event name or prefix (copied)
 * @return 0, FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE (service stopped)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_attach(fdn_telemetry_t *tm, uint64_t *out_id, const char *pattern,
                                 fdn_telemetry_match_t match, fdn_telemetry_handler_fn fn,
                                 void *user);

/**
 * Detach a handler. Once this returns the handler is not started again; a call already
 * running on another thread may finish.
 * Does not fail for lack of memory (without memory for a new handler set the handler is
 * marked detached in place and leaves the set at its next change).
 * @return 0, FDN_ENOENT (unknown id)
 * @thread_safety any (may be called from inside a handler)
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_detach(fdn_telemetry_t *tm, uint64_t id);

/**
 * Detach every handler whose pattern equals `pattern` (the reference's detach_handlers).
 * @return the number of handlers detached (>= 0); never fails for lack of memory (see
 *         fdn_telemetry_detach)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_detach_pattern(fdn_telemetry_t *tm, const char *pattern);

/** Number of attached handlers. @thread_safety any @since 0.1.0 */
FDN_API size_t fdn_telemetry_handler_count(fdn_telemetry_t *tm);

/* ---------------------------------------------------------------------------------------- */
/* Families and series                                                                      */

/**
 * Register (or find) a family. Registering the same name again with the same kind and label
 * names returns the existing family; a different kind or labels gives FDN_EEXIST.
 * @param[out] out          the family (owned by tm)
 * @param[in]  name         Prometheus metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters should
 *                          end in `_total`
 * @param[in]  help         help text (NULL = "")
 * @param[in]  kind         metric kind
 * @param[in]  label_names  label names `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with "__",
 *                          not "le"/"quantile"; may be NULL when nlabels == 0
 * @param[in]  nlabels      0..FDN_TELEMETRY_MAX_LABELS
 * @param[in]  max_series   cardinality limit (0 = opts.max_series_per_family)
 * @return 0, FDN_EINVAL, FDN_EEXIST, FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_family(fdn_telemetry_t *tm, fdn_telemetry_family_t **out,
                                 const char *name, const char *help, fdn_telemetry_kind_t kind,
                                 const char *const *label_names, size_t nlabels,
                                 uint32_t max_series);

/**
 * Resolve the counter series of a label set (created on first use). When the family is at its
 * cardinality limit, the overflow series (every label value "__overflow__") is returned and
 * the family's overflow count incremented. A label set of every value "__overflow__" is that
 * series too (made if need be, not counted as an overflow): a family never has two series
 * with the same labels.
 * @param[out] out     the series handle, valid until fdn_telemetry_destroy
 * @param[in]  values  label values (any UTF-8 text; copied), n == the family's label count
 * @return 0, FDN_EINVAL (wrong kind or count, out NULL: nothing made), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_family_counter(fdn_telemetry_family_t *fam, fdn_counter_t **out,
                                         const char *const *values, size_t n);
/**
 * As fdn_telemetry_family_counter, for gauge families (FDN_TELEMETRY_GAUGE or
 * FDN_TELEMETRY_GAUGE_INT).
 * @param[out] out     the series handle, valid until fdn_telemetry_destroy
 * @param[in]  values  label values, n == the family's label count
 * @return 0, FDN_EINVAL (wrong kind or count), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_family_gauge(fdn_telemetry_family_t *fam, fdn_gauge_t **out,
                                       const char *const *values, size_t n);
/**
 * As fdn_telemetry_family_counter, for histogram families.
 * @param[out] out     the series handle, valid until fdn_telemetry_destroy
 * @param[in]  values  label values, n == the family's label count
 * @return 0, FDN_EINVAL (wrong kind or count), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_family_histogram(fdn_telemetry_family_t *fam, fdn_histogram_t **out,
                                           const char *const *values, size_t n);

/**
 * Set the `le` bucket bounds of a histogram family (default FDN_TELEMETRY_DEFAULT_BUCKETS, in
 * the family's unit: seconds for `*_seconds`). Call it after fdn_telemetry_family and before
 * the first series is resolved; the bounds are copied.
 * @param[in] bounds  finite, strictly increasing; +Inf is implicit
 * @param[in] n       1..FDN_TELEMETRY_MAX_BUCKETS
 * @return 0, FDN_EINVAL (not a histogram family, bad bounds), FDN_EBUSY (a series exists)
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_telemetry_family_buckets(fdn_telemetry_family_t *fam, const double *bounds,
                                         size_t n);

/** Number of label sets refused by the cardinality limit. @thread_safety any @since 0.1.0 */
FDN_API uint64_t fdn_telemetry_family_overflows(const fdn_telemetry_family_t *fam);

/**
 * Add n to a counter: one relaxed atomic compare-and-swap on the calling thread's cache line.
 * The counter saturates at UINT64_MAX (it never wraps to a small value).
 * @param[in] c  the counter (NULL = no-op)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_counter_add(fdn_counter_t *c, uint64_t n);
/**
 * Set a counter to v: for collectors that mirror a monotonic count kept elsewhere (a pool's
 * timeouts, a breaker's rejections) into a family. Not atomic with a concurrent add.
 * @param[in] c  the counter (NULL = no-op)
 * @thread_safety any (one setter at a time)
 * @since 0.2.0
 */
FDN_API void fdn_counter_set(fdn_counter_t *c, uint64_t v);
/** fdn_counter_add(c, 1). @thread_safety any @since 0.1.0 */
FDN_API void fdn_counter_inc(fdn_counter_t *c);
/** Sum of every shard, UINT64_MAX when it would exceed it (0 for NULL). @thread_safety any
 *  @since 0.1.0 */
FDN_API uint64_t fdn_counter_value(const fdn_counter_t *c);

/**
 * Set a gauge to v (a double gauge stores (double)v). One relaxed atomic store.
 * @param[in] g  the gauge (NULL = no-op)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_gauge_set(fdn_gauge_t *g, int64_t v);
/**
 * Add delta (may be negative) to a gauge atomically.
 * @param[in] g  the gauge (NULL = no-op)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_gauge_add(fdn_gauge_t *g, int64_t delta);
/**
 * Set a gauge to v (an int64 gauge stores v rounded toward zero, saturated). NaN/inf ignored.
 * @param[in] g  the gauge (NULL = no-op)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_gauge_set_double(fdn_gauge_t *g, double v);
/**
 * Add delta to a gauge atomically (a CAS loop for double gauges). NaN/inf ignored.
 * @param[in] g  the gauge (NULL = no-op)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_gauge_add_double(fdn_gauge_t *g, double delta);
/** Current value as a double (0 for NULL). @thread_safety any @since 0.1.0 */
FDN_API double fdn_gauge_value(const fdn_gauge_t *g);

/**
 * Record one value (any finite double; NaN/inf are ignored). Writes only the calling thread's
 * shard.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_histogram_observe(fdn_histogram_t *h, double v);

/** Longest exemplar label name, in bytes (fdn_histogram_observe_exemplar). */
#define FDN_TELEMETRY_EXEMPLAR_NAME_MAX 32
/** Longest exemplar label value, in bytes (fdn_histogram_observe_exemplar). */
#define FDN_TELEMETRY_EXEMPLAR_VALUE_MAX 64

/**
 * Record one value as fdn_histogram_observe does, and keep it as the exemplar of the `le`
 * bucket it falls in (OpenMetrics: written after that bucket's line, with the label and the
 * wall-clock time of the observation), replacing the bucket's previous exemplar. Used with a
 * correlation id, an exemplar leads from a latency bucket to one request that landed there.
 * The exemplar is not kept (the value still counts) when the histogram has no `le` bounds,
 * when label_name is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, at most
 * FDN_TELEMETRY_EXEMPLAR_NAME_MAX bytes) or when label_value is NULL, longer than
 * FDN_TELEMETRY_EXEMPLAR_VALUE_MAX bytes or not UTF-8.
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API void fdn_histogram_observe_exemplar(fdn_histogram_t *h, double v, const char *label_name,
                                            const char *label_value);

/**
 * Replace a histogram's contents with counts kept elsewhere (for collectors mirroring a
 * histogram another component keeps, e.g. the Redis limiter backend's round trips).
 * @param[in] h        a histogram of a family with `le` bounds (NULL = no-op)
 * @param[in] cum      cumulative counts per bound, then the +Inf count (the total)
 * @param[in] n        the family's bound count + 1; anything else is ignored
 * @param[in] sum      sum of the observations, in the family's unit (finite; else ignored)
 * @thread_safety any (one loader at a time; not mixed with fdn_histogram_observe)
 * @since 0.2.0
 */
FDN_API void fdn_histogram_load(fdn_histogram_t *h, const uint64_t *cum, size_t n, double sum);

/** Summary statistics of a histogram. */
typedef struct fdn_telemetry_hist_stats {
    uint64_t count; /**< observations */
    double sum;     /**< their sum */
    double min;     /**< smallest; 0 when count == 0 */
    double max;     /**< largest; 0 when count == 0 */
    double p50;     /**< median estimate */
    double p90;     /**< 90th percentile estimate */
    double p99;     /**< 99th percentile estimate */
    double p999;    /**< 99.9th percentile estimate */
} fdn_telemetry_hist_stats_t;

/**
 * Consistent statistics of one histogram (each shard copied under its lock, so count always
 * equals the sum of the buckets).
 * @param[out] out  the statistics
 * @param[in]  h    the histogram (NULL gives all zeros)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_histogram_stats(const fdn_histogram_t *h, fdn_telemetry_hist_stats_t *out);

/**
 * Estimated quantile q in [0, 1] of a histogram (see the error bound in the file comment).
 * @return the estimate (0 when empty or h is NULL)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API double fdn_histogram_quantile(const fdn_histogram_t *h, double q);

/* ---------------------------------------------------------------------------------------- */
/* Snapshots, JSON, Prometheus                                                              */

/** A histogram bucket's exemplar in a snapshot (fdn_histogram_observe_exemplar). */
typedef struct fdn_telemetry_exemplar {
    const char *label_name;  /**< NULL: the bucket has no exemplar */
    const char *label_value; /**< the label's value */
    double value;            /**< the observation, in the exported unit */
    double timestamp_s;      /**< wall-clock time of the observation, seconds since the epoch */
} fdn_telemetry_exemplar_t;

/** One series in a snapshot (read-only view; valid until fdn_telemetry_snapshot_free). */
typedef struct fdn_telemetry_sample {
    const char *name; /**< family name, or event name for event entries */
    const char *help; /**< family help ("" for events) */
    const char *key;  /**< measurement key for event entries ("counter", "gauge",
                           "duration", ...; "" for the emission count); NULL for families */
    fdn_telemetry_kind_t kind; /**< counter, gauge or histogram */
    bool is_event; /**< an event entry (true) or a family series (false) */
    size_t nlabels;                  /**< labels of a family series */
    const char *const *label_names;  /**< their names */
    const char *const *label_values; /**< their values */
    uint64_t counter; /**< FDN_TELEMETRY_COUNTER value (event emission count for key "") */
    double gauge;     /**< FDN_TELEMETRY_GAUGE / FDN_TELEMETRY_GAUGE_INT value */
    fdn_telemetry_hist_stats_t hist; /**< FDN_TELEMETRY_HISTOGRAM statistics */
    int64_t last_active_ns;    /**< events: last time the entry was seen to change (clock) */
    const fdn_telemetry_meta_t *meta; /**< events: metadata of the first emission */
    size_t nmeta;                     /**< entries in meta */
    int64_t gauge_int; /**< FDN_TELEMETRY_GAUGE_INT value, exact (`gauge` rounds beyond
                            2^53) */
    size_t nbuckets;   /**< histograms with `le` bounds: their number (0: none) */
    const double *bucket_le;         /**< the bounds, in the exported unit (+Inf not included) */
    const uint64_t *bucket_le_count; /**< cumulative: observations <= bucket_le[i] (exact);
                                          the +Inf bucket is hist.count */
    double hist_div; /**< divisor from observed values (hist) to the exported unit (1, or 1e9
                          for event durations observed in ns) */
    /** histograms with `le` bounds: nbuckets + 1 exemplars (the last for +Inf), or NULL when
     * no bucket has one (since 0.2.0) */
    const fdn_telemetry_exemplar_t *bucket_exemplar;
} fdn_telemetry_sample_t;

/**
 * Take a snapshot of every family series and event entry. Returns FDN_EUNAVAILABLE while the
 * service is stopped (reference: "Telemetry service not started").
 * @param[out] out  the snapshot; free with fdn_telemetry_snapshot_free
 * @return 0, FDN_ENOMEM, FDN_EUNAVAILABLE, FDN_EINVAL (tm NULL)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_snapshot(fdn_telemetry_t *tm, fdn_telemetry_snapshot_t **out);

/**
 * Iterate a snapshot: samples are sorted by (is_event, name, labels, key).
 * @param[in,out] iter  start at 0
 * @return the next sample, or NULL at the end
 * @thread_safety any (the snapshot is immutable)
 * @since 0.1.0
 */
FDN_API const fdn_telemetry_sample_t *fdn_telemetry_snapshot_next(const fdn_telemetry_snapshot_t *s,
                                                                  size_t *iter);

/**
 * Monotonic time at which the snapshot was taken (ns, the instance's clock).
 * @return the time, 0 for NULL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_telemetry_snapshot_time(const fdn_telemetry_snapshot_t *s);

/** Free a snapshot (NULL accepted). @thread_safety owner @since 0.1.0 */
FDN_API void fdn_telemetry_snapshot_free(fdn_telemetry_snapshot_t *s);

/**
 * get_metrics as JSON text: the reference's nested tree. Each event `a.b.c` sits at
 * path a → b → c as {"timestamp", "count", "measurements", "metadata"}; the special names
 * foundation.event_store.events_stored → foundation.events_stored, and
 * foundation.config_updates / config_resets / config_operations hold only the integer
 * emission count; "retrieved_at" is the snapshot time; families sit under "families".
 * @param[out] out  NUL-terminated JSON, free with fdn_free
 * @return 0, FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_metrics_json(fdn_telemetry_t *tm, char **out);

/** Sink for text writers: write len bytes; return 0 or a negative code to stop. */
typedef int (*fdn_telemetry_write_fn)(const char *data, size_t len, void *user);

/**
 * Write every metric in the Prometheus text exposition format 0.0.4 (docs/telemetry.md):
 * families keep their names, histograms as cumulative `le` buckets + `_sum` + `_count`; each
 * event entry once, `foundation.x` → `fdn_x`: counter key → `<base>_total`, gauge key →
 * `<base>`, `histogram` key → histogram `<base>`, a time key (`duration`, `*_ns`, `*_time`;
 * ns) → histogram `<base>_<key>_seconds`, another key → histogram `<base>_<key>`, the
 * emission count → `<base>_total` only for an event without measurements; `vm.*` and
 * unexported events are left out. Then the process collector (`process_*`) and
 * `fdn_build_info`. The instance keeps each series' rendered lines with the value they show
 * and renders again only the series whose value changed (a few hundred bytes a series and up
 * to four copies of the text, per format, freed with the instance); the text is the same as
 * a fresh rendering, and shows every value as of a read made after the call began, except
 * `process_cpu_seconds_total`: the scrapes of one instance share a CPU-time read for up to
 * 1 ms of the instance's clock (so a scrape may show the CPU time as of up to 1 ms before it
 * began; the value never decreases from one scrape to the next). The sink is called with no
 * telemetry lock held.
 * @return 0, a negative code returned by the sink, FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_write_prometheus(fdn_telemetry_t *tm, fdn_telemetry_write_fn write,
                                           void *user);

/**
 * Write every metric in the OpenMetrics 1.0 text format (`application/openmetrics-text;
 * version=1.0.0`): as fdn_telemetry_write_prometheus, with counter families typed by their
 * name without `_total`, and a final `# EOF`.
 * @return 0, a negative code returned by the sink, FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_telemetry_write_openmetrics(fdn_telemetry_t *tm, fdn_telemetry_write_fn write,
                                            void *user);

/**
 * The text fdn_telemetry_write_prometheus (openmetrics false) or
 * fdn_telemetry_write_openmetrics (true) would write now, without a copy: a reference to the
 * instance's immutable text, which stays valid and unchanged until released whatever other
 * scrapes and updates do (a server can hand it to the network as it is).
 * @param[in]  tm           the instance
 * @param[in]  openmetrics  the OpenMetrics text, else the 0.0.4 one
 * @param[out] out          the text (NUL-terminated); release with fdn_telemetry_text_release
 * @param[out] out_len      its length, the NUL not counted
 * @return 0, FDN_EINVAL (tm, out or out_len NULL), FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @ownership the caller holds one reference to *out
 * @since 0.3.0
 */
FDN_API int fdn_telemetry_text_acquire(fdn_telemetry_t *tm, bool openmetrics, const char **out,
                                       size_t *out_len);

/**
 * Release a text from fdn_telemetry_text_acquire (NULL accepted); the last reference frees it.
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API void fdn_telemetry_text_release(const char *text);

/**
 * Keep the event entries named `prefix` or below it (whole components: "a.b" covers "a.b" and
 * "a.b.c") out of the Prometheus / OpenMetrics exposition; they stay in snapshots and the JSON
 * API. For events a labelled family already measures (at most 16 prefixes).
 * @return 0, FDN_EINVAL, FDN_ENOBUFS, FDN_ENOMEM
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_telemetry_unexport_event(fdn_telemetry_t *tm, const char *prefix);

/** A collector: runs at the start of every snapshot (scrape, JSON, iterator), on the
 *  snapshotting thread with no telemetry lock held, to refresh families from state kept
 *  elsewhere (gauges of pools, breaker states). It may resolve series and set values, and take
 *  a snapshot or scrape (which then does not run the collectors again); adding or removing a
 *  collector of the same instance from inside one fails with FDN_EBUSY. */
typedef void (*fdn_telemetry_collector_fn)(fdn_telemetry_t *tm, void *user);

/**
 * Register a collector (at most 16).
 * @return 0, FDN_EINVAL, FDN_ENOBUFS, FDN_EEXIST (same fn and user), FDN_EBUSY (called from
 *         a collector of tm: nothing changed)
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_telemetry_add_collector(fdn_telemetry_t *tm, fdn_telemetry_collector_fn fn,
                                        void *user);

/**
 * Remove a collector; once this returns it is not started again (a run already under way on
 * another thread finishes first: this waits for it).
 * @return 0, FDN_ENOENT, FDN_EBUSY (called from a collector of tm: nothing changed)
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_telemetry_remove_collector(fdn_telemetry_t *tm, fdn_telemetry_collector_fn fn,
                                           void *user);

/**
 * Run retention now: drop event entries idle longer than opts.retention_ns (an entry's
 * activity is sampled at each cleanup or snapshot, so idleness is known to within one
 * cleanup interval).
 * @return number of entries dropped (>= 0)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_cleanup(fdn_telemetry_t *tm);

/**
 * Clear every event entry and reset every family series to zero (the reference's
 * reset_metrics). Handles stay valid.
 * @return 0
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_telemetry_reset_metrics(fdn_telemetry_t *tm);

/** Number of event entries currently kept. @thread_safety any @since 0.1.0 */
FDN_API size_t fdn_telemetry_event_count(fdn_telemetry_t *tm);

/**
 * Validate a metric name (`label == false`: `[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name
 * (`label == true`: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved) of len bytes.
 * @return true when valid
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_telemetry_name_valid(const char *name, size_t len, bool label);

/**
 * Validate a dotted event name of len bytes: 1..FDN_TELEMETRY_NAME_MAX bytes of valid UTF-8,
 * components non-empty, no control characters.
 * @return true when valid
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_telemetry_event_name_valid(const char *name, size_t len);

FDN_END_DECLS

#endif /* FDN_TELEMETRY_H */
