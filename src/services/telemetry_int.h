/* Private: the telemetry instance layout shared by telemetry.c (events, handlers, service,
 * retention), telemetry_family.c (families) and telemetry_snapshot.c (snapshots, JSON), plus the
 * service hooks the runtime's supervisor calls. */
#ifndef FDN_SERVICES_TELEMETRY_INT_H
#define FDN_SERVICES_TELEMETRY_INT_H

#include "core/supervisor_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#include <fdn/telemetry.h>

#include "core/buf.h"
#include "core/lock.h"
#include "core/tsan.h"
#include "services/telemetry_metrics.h"

/* ThreadSanitizer cannot see liburcu's grace periods (core/tsan.h). Readers release this
 * token as they leave a read-side section (tm_read_unlock), writers release it before they
 * hand memory to call_rcu, and every deferred free acquires it first: the happens-before
 * edge the grace period guarantees. Without it every retired entry or handler set is a
 * (suppressed) race report, and symbolising those made the telemetry stress test run for
 * minutes under TSan. Compiles to nothing in other builds. */
extern char fdn__tm_tsan_grace;

static inline void tm_read_unlock(void)
{
    fdn__tsan_release(&fdn__tm_tsan_grace);
    rcu_read_unlock();
}

/* container_of through void * (no -Wcast-align: the member sits inside an aligned struct). */
#define TM_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Measurement keys one event entry keeps (further keys are dropped and counted). */
#define TM_MAX_KEYS 16
/* Measurements accepted per execute. */
#define TM_MAX_MEASURES 16
/* Metadata pairs kept from the first emission, and the longest value kept. */
#define TM_MAX_META     16
#define TM_META_VAL_MAX 256
/* Collectors per instance. */
#define TM_MAX_COLLECTORS 16

typedef struct tm_slot {
    char *key;
    fdn_telemetry_kind_t
        kind; /* FDN_TELEMETRY_COUNTER, FDN_TELEMETRY_GAUGE or FDN_TELEMETRY_HISTOGRAM */
    union {
        fdn_counter_t *c;
        fdn_gauge_t *g;
        fdn_histogram_t *h;
    } u;
} tm_slot_t;

typedef struct tm_entry {
    struct cds_lfht_node node;
    struct rcu_head rcu;
    unsigned long hash;
    size_t len;
    char *name;
    fdn_counter_t *count; /* emissions */
    _Atomic(tm_slot_t *) slots[TM_MAX_KEYS];
    _Atomic unsigned nslots;
    fdn_telemetry_meta_t *meta; /* immutable after creation */
    size_t nmeta;
    /* under tm->mu: activity sampling for retention */
    int64_t last_active;
    uint64_t seen_count;
    struct tm_entry *next_dead;
    /* Release-stored once initialised, acquire-loaded by readers that found the entry in
     * the hash table: urcu publishes with its own fences, which TSan cannot see. */
    _Atomic int published;
} tm_entry_t;

typedef struct tm_handler {
    uint64_t id;
    char *pattern;
    size_t plen;
    unsigned long hash;
    fdn_telemetry_match_t match;
    fdn_telemetry_handler_fn fn;
    void *user;
    _Atomic int detached;
    _Atomic uint32_t consecutive;
    _Atomic uint64_t failures;
    struct tm_handler *next_dead;
} tm_handler_t;

typedef struct tm_hset {
    struct rcu_head rcu;
    tm_handler_t *dead; /* handlers removed when this set was replaced */
    size_t n;
    tm_handler_t *h[];
} tm_hset_t;

/* The operator's settings of one histogram, by its exported name (a family's name, or the
 * name an event measurement is exported under): telemetry.buckets and telemetry.summaries of
 * the runtime's config (docs/telemetry.md, "Configured layouts and summaries"). */
typedef struct tm_layout {
    char *name;
    unsigned nle; /* `le` bounds replacing the code's layout; 0: the code's layout */
    double le[FDN_TELEMETRY_MAX_BUCKETS];
    bool summary; /* also written as a summary (quantiles) next to the histogram */
} tm_layout_t;

typedef struct tm_series {
    char **values;
    void *metric; /* fdn_counter_t / fdn_gauge_t / fdn_histogram_t */
} tm_series_t;

struct fdn_telemetry_family {
    fdn_telemetry_t *tm;
    char *name;
    char *help;
    fdn_telemetry_kind_t kind;
    size_t nlabels;
    char *labels[FDN_TELEMETRY_MAX_LABELS];
    uint32_t max_series;
    unsigned nle; /* histogram families: `le` bounds (under tm->mu until a series exists) */
    double le[FDN_TELEMETRY_MAX_BUCKETS];
    bool le_configured; /* le is the operator's (tm_layout_t): fdn_telemetry_family_buckets
                         * leaves it */
    _Atomic uint64_t overflows;
    fdn_counter_t *overflow_counter; /* child of the built-in overflow family, or NULL */
    /* nlabels == 0: the one series' metric once it exists, published with release (series
     * live as long as their family): resolve returns it without tm->mu */
    _Atomic(void *) unlabelled;
    /* under tm->mu */
    tm_series_t **series;
    size_t nseries, cap;
    tm_series_t *overflow;
};

struct fdn_telemetry {
    fdn_telemetry_opts_t opts;
    fdn_clock_t *clock;
    _Atomic int running;
    _Atomic uint64_t epoch; /* changes whenever an entry is unlinked (cache validation) */
    fdn__mutex_t mu;        /* writers: entries, slots, families, handler sets */
    /* bumped (under mu) whenever what the exposition lists changes: a family, a series, an
     * event entry or a measurement key added, entries removed, an event prefix unexported, a
     * layout or summary configured (telemetry_expo.c keys its cache by it) */
    uint64_t shape FDN_MEMBER_GUARDED_BY(mu);
    /* the Prometheus and OpenMetrics writers' caches (telemetry_expo.c), under expo_mu,
     * which is taken before mu */
    fdn__mutex_t expo_mu;
    struct tm_expo *expo[2] FDN_MEMBER_GUARDED_BY(expo_mu);
    /* their CPU time (process_cpu_seconds_total), shared by the scrapes less than
     * FDN__TM_PROCESS_CPU_MAX_AGE_NS (tm->clock) after its read, under expo_mu */
    struct {
        bool valid;
        int64_t at_ns;
        double v;
    } cpu FDN_MEMBER_GUARDED_BY(expo_mu);
    struct cds_lfht *ht;
    _Atomic size_t nentries;
    _Atomic(tm_hset_t *) handlers; /* RCU-published (release store, acquire load) */
    uint64_t next_handler_id;
    fdn_telemetry_family_t **fams;
    size_t nfams, capfams;
    /* collectors: the list under coll_lock (write to change it, read while running them) */
    pthread_rwlock_t coll_lock;
    struct {
        fdn_telemetry_collector_fn fn;
        void *user;
    } coll[TM_MAX_COLLECTORS];
    size_t ncoll;
    /* event prefixes kept out of the exposition (under mu) */
    char *unexported[TM_MAX_COLLECTORS];
    size_t nunexported;
    /* the operator's histogram layouts and summaries (under mu; set before use) */
    tm_layout_t *layouts;
    size_t nlayouts;
    /* built-in metrics */
    fdn_telemetry_family_t *f_overflow;
    fdn_counter_t *c_dropped_events;
    fdn_counter_t *c_dropped_keys;
    fdn_counter_t *c_handler_failures;
    fdn_counter_t *c_handler_detached;
    /* cleanup thread */
    fdn__mutex_t life_mu; /* serialises start/stop */
    pthread_t thread;
    bool thread_started;
    _Atomic int thread_stop;
    _Atomic int thread_alive;
};

/* The service's supervisor vtable, defined in telemetry.c, and typed wrappers (see
 * core/supervisor_int.h): start the cleanup thread and accept events; stop rejects
 * snapshots / handler changes with FDN_EUNAVAILABLE and drops events, keeping every metric;
 * health is 0 when running (and the cleanup thread alive when configured). */
FDN__SERVICE_TYPED_OPS(telemetry, fdn_telemetry_t)

/* telemetry_family.c */
int fdn__tm_family_create(fdn_telemetry_t *tm, fdn_telemetry_family_t **out, const char *name,
                          const char *help, fdn_telemetry_kind_t kind, const char *const *labels,
                          size_t nlabels, uint32_t max_series, bool builtin);
void fdn__tm_families_free(fdn_telemetry_t *tm);
void fdn__tm_families_reset(fdn_telemetry_t *tm);
/* False when the event is kept out of the exposition (fdn_telemetry_unexport_event). */
bool fdn__tm_event_exported(fdn_telemetry_t *tm, const char *event);
/* Free the unexported prefixes (destroy). */
void fdn__tm_unexported_free(fdn_telemetry_t *tm);
/* Run every collector (no lock held by the caller). */
void fdn__tm_run_collectors(fdn_telemetry_t *tm);
/* The histogram of an event measurement key: `le` bounds in ns for time keys (`duration`,
 * `*_ns`, `*_time`: FDN_TELEMETRY_DEFAULT_BUCKETS x 1e9, exported in seconds), decades
 * 0.001 .. 1e9 for others; the operator's layout for the name it is exported under, when one
 * is configured (fdn__tm_configure_buckets). NULL on OOM. */
fdn_histogram_t *fdn__tm_event_histogram_new(fdn_telemetry_t *tm, const char *event,
                                             const char *key) FDN_REQUIRES(tm->mu);
/* The operator's `le` bounds for the histogram exported as `name` (telemetry.buckets): they
 * replace the code's layout (fdn_telemetry_family_buckets then leaves it) of a family
 * registered later, or of one without series, and of event histograms made later (a time
 * key's histogram gets them x 1e9, in ns, rounded). Bounds positive, finite, strictly
 * increasing, 1..FDN_TELEMETRY_MAX_BUCKETS. 0, FDN_EINVAL (bad name or bounds: nothing
 * changed), FDN_EBUSY (the family has series already: nothing changed), FDN_ENOMEM. */
int fdn__tm_configure_buckets(fdn_telemetry_t *tm, const char *name, const double *le, size_t n);
/* Write the histogram exported as `name` also as a summary (telemetry.summaries): see
 * fdn__tm_summary_name. 0, FDN_EINVAL (bad name), FDN_ENOMEM. */
int fdn__tm_configure_summary(fdn_telemetry_t *tm, const char *name);
/* The summary's name of histogram `name`: `_quantiles` before a trailing `_seconds` or
 * `_bytes` (fdn_x_duration_seconds -> fdn_x_duration_quantiles_seconds), else appended. */
void fdn__tm_summary_name(fdn__buf_t *out, const char *name);
/* Free the configured layouts (destroy). */
void fdn__tm_layouts_free(fdn_telemetry_t *tm);
/* The name event `event`'s histogram key `key` is exported under (telemetry_expo_plan.c):
 * `histogram` -> <base>, a time key -> <base>_<key>_seconds, another -> <base>_<key>, where
 * `foundation.x.y` has base fdn_x_y. False: not exported (vm.*). */
bool fdn__tm_event_hist_name(fdn__buf_t *out, const char *event, const char *key);
/* True when an event measurement key holds a duration in ns. */
bool fdn__tm_key_is_ns(const char *key);
/* Resolve a built-in single counter (no labels). NULL on OOM. */
fdn_counter_t *fdn__tm_builtin_counter(fdn_telemetry_t *tm, const char *name, const char *help);

/* telemetry_family.c: as fdn__tm_event_exported, with tm->mu held. */
bool fdn__tm_event_exported_locked(fdn_telemetry_t *tm, const char *event) FDN_REQUIRES(tm->mu);

/* telemetry_snapshot.c: the order of a snapshot's samples (families by name and label values,
 * then events by name and key). */
int fdn__tm_sample_cmp(const void *pa, const void *pb);

/* telemetry_prometheus.c: free the exposition caches (destroy). */
void fdn__tm_expo_free(fdn_telemetry_t *tm);
/* telemetry_prometheus.c, for tests: the Prometheus (om false) or OpenMetrics text rendered
 * afresh, as a first scrape would, without reading or changing the cache. */
int fdn__tm_write_uncached(fdn_telemetry_t *tm, bool om, fdn_telemetry_write_fn write, void *user);

/* telemetry.c: entry helpers used by telemetry_snapshot.c (call with tm->mu held) */
void fdn__tm_entry_sample_activity(fdn_telemetry_t *tm, tm_entry_t *e, int64_t now)
    FDN_REQUIRES(tm->mu);

/* The TYPE name of a kind, as the exposition and the JSON snapshot write it. */
static inline const char *fdn__tm_kind_name(fdn_telemetry_kind_t k)
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

#endif
