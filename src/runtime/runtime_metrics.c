/*
 * DESIGN: the runtime's labelled metric families (docs/telemetry.md, "Catalogue"): what an
 * operator builds dashboards and alerts on, per breaker, per pool, per service, per path.
 *
 * Two kinds of source:
 * - a telemetry collector (run at the start of every scrape or snapshot, on the scraping
 *   thread, no lock held) copies state the components keep anyway into gauges and counters:
 *   breaker states and counts (fdn_breakers_handles + fdn_breaker_status), pool gauges and
 *   counts (fdn_pools_list), the event store (fdn_events_stats, fdn_events_type_stats,
 *   fdn_events_index_status), the limiter's store and backend (fdn_limiter_stats,
 *   fdn_limiter_backend_status, whose fixed round-trip histogram is loaded into a real
 *   histogram family). No hot path pays for it.
 * - the runtime's hooks (supervisor restarts, breaker transitions, config updates) count into
 *   labelled counters; those are rare events, so each resolves its series (a short search
 *   under the telemetry mutex).
 * - two telemetry handlers turn events that carry a duration and a name into labelled
 *   histograms: protected calls by key and outcome, pool checkout waits by pool (a series
 *   resolution per call: microseconds next to an external call or a pool wait); their events
 *   are then kept out of the exposition (fdn_telemetry_unexport_event).
 * Names use the one prefix `fdn_`; a family named like the mapping of an event entry
 * (fdn_supervisor_restarts_total for `foundation.supervisor.restarts`) supersedes that
 * entry in the exposition (the entry stays in the JSON API).
 * Cardinality: every labelled family has a cap (MAX_*); label sets beyond it are counted in
 * fdn_telemetry_series_dropped_total{family} and land in the family's __overflow__ series.
 * Threads: the collector may run on several scraping threads at once; m->mu makes the runs
 * one at a time (taken under telemetry's collector lock, before telemetry's mutex and the
 * components' locks): two runs at once would each read the components' counts and then set
 * them, so an older figure could land after a newer one and a mirrored counter go backwards
 * (Prometheus reads that as a counter reset). One after the other, each run reads counts no
 * older than the last run's, and fdn_counter_set and fdn_histogram_load get the one setter
 * at a time they require.
 * Lifetime: attached in wire() after the breakers exist, detached first thing in unwire()
 * (fdn_telemetry_remove_collector waits for a run under way), freed there.
 * Also here: fdn__rt_telemetry_configure, which gives the telemetry instance the config's
 * telemetry.buckets and telemetry.summaries when the runtime creates it (before any family
 * exists; not updatable at run time, as a histogram's layout is fixed with its first series).
 */
#include "runtime/runtime_metrics.h"

#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/pool.h>
#include <fdn/registry.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/lock.h"
#include "infra/limiter_int.h"
#include "services/telemetry_int.h"
#include "validation/config_telemetry.h"
#ifdef FDN_HAVE_ETCD
#include "runtime/runtime_etcd_metrics.h"
#endif

#define MAX_BREAKERS 256
#define MAX_POOLS    256
#define MAX_TYPES    100
#define MAX_PATHS    256
#define MAX_SERVICES 64
#define MAX_KEYS     512
#define MAX_OUTCOMES 64

/* Names listed by a collector's last run (owned copies). */
typedef struct seen {
    char **v;
    size_t n;
} seen_t;

struct fdn__rt_metrics {
    fdn_runtime_t *rt;
    fdn_telemetry_t *tm;
    fdn__mutex_t mu; /* collect: one run at a time */
    int rc; /* attach: the first failure (a family, its buckets, an unexport) */
    /* breakers */
    fdn_telemetry_family_t *br_state, *br_calls, *br_opened, *br_transitions;
    /* pools */
    fdn_telemetry_family_t *pl_size, *pl_max_overflow, *pl_in_use, *pl_idle, *pl_waiters,
        *pl_overflow, *pl_checkouts, *pl_timeouts, *pl_full, *pl_leaks, *pl_reclaimed;
    /* events */
    fdn_telemetry_family_t *ev_held, *ev_held_type, *ev_appended, *ev_pruned, *ev_backlog;
    fdn_telemetry_family_t *ev_types, *ev_types_max, *ev_refused;
    fdn_telemetry_family_t *ev_be_up, *ev_be_breaker, *ev_spooled, *ev_replay_failures;
    fdn_telemetry_family_t *ev_quarantined, *ev_quarantined_events;
    fdn_telemetry_family_t *ev_ix_behind, *ev_ix_failures;
    /* limiter */
    fdn_telemetry_family_t *lm_identities, *lm_id_refused;
    fdn_telemetry_family_t *lm_keys, *lm_capacity, *lm_evictions, *lm_refused, *lm_up, *lm_breaker,
        *lm_backend_calls, *lm_latency;
    /* hooks */
    fdn_telemetry_family_t *sv_restarts, *sv_escalations, *cf_updates, *cf_dur;
    /* registry */
    fdn_telemetry_family_t *rg_entries;
    /* latency histograms fed by event handlers */
    fdn_telemetry_family_t *pr_dur, *pl_wait;
    uint64_t h_prot, h_pool, h_cfg; /* handler ids (0: not attached) */
    /* the names whose gauges the last run set (under mu): a breaker removed, a pool stopped,
     * an event type released (its last event pruned) is no longer listed, and its gauges fall
     * to 0 instead of keeping their last values (counters keep their counts) */
    seen_t seen_breakers, seen_pools, seen_types;
#ifdef FDN_HAVE_ETCD
    fdn__etcd_metrics_t *etcd; /* the etcd clients' families (runtime/runtime_etcd_metrics.c) */
#endif
};

/* Out of memory while attaching fails the attach (so the runtime's create): a runtime does
 * not start with a family or a handler silently missing. Returns rc. */
static int note(fdn__rt_metrics_t *m, int rc)
{
    if (rc == FDN_ENOMEM && m->rc == 0)
        m->rc = rc;
    return rc;
}

static fdn_telemetry_family_t *fam(fdn__rt_metrics_t *m, const char *name, const char *help,
                                   fdn_telemetry_kind_t kind, const char *l1, const char *l2,
                                   const char *l3, uint32_t cap)
{
    const char *ls[3] = {l1, l2, l3};
    size_t n = l3 != NULL ? 3 : l2 != NULL ? 2 : l1 != NULL ? 1 : 0;
    fdn_telemetry_family_t *f = NULL;
    note(m, fdn_telemetry_family(m->tm, &f, name, help, kind, ls, n, cap));
    return f; /* NULL: that family is not exported (every setter accepts NULL) */
}

static void set_gauge(fdn_telemetry_family_t *f, const char *const *v, size_t n, double x)
{
    fdn_gauge_t *g = NULL;
    if (fdn_telemetry_family_gauge(f, &g, v, n) == 0)
        fdn_gauge_set_double(g, x);
}

static void set_counter(fdn_telemetry_family_t *f, const char *const *v, size_t n, uint64_t x)
{
    fdn_counter_t *c = NULL;
    if (fdn_telemetry_family_counter(f, &c, v, n) == 0)
        fdn_counter_set(c, x);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        fdn__free(s->v[i]);
    fdn__free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* This run listed now[0..n) (sorted here): gone(m, name) for each name s holds that is not
 * among them, then s holds now's names. Out of memory: s keeps its names (those gone are
 * set to 0 again next time, which changes nothing). */
static void seen_update(fdn__rt_metrics_t *m, seen_t *s, const char **now, size_t n,
                        void (*gone)(fdn__rt_metrics_t *, const char *))
{
    if (n > 1)
        qsort(now, n, sizeof(*now), name_cmp);
    for (size_t k = 0; k < s->n; k++)
        if (n == 0 || bsearch(&s->v[k], now, n, sizeof(*now), name_cmp) == NULL)
            gone(m, s->v[k]);
    char **v = n > 0 ? fdn__calloc(n, sizeof(*v)) : NULL;
    if (n > 0 && v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        v[i] = fdn__strdup(now[i]);
        if (v[i] == NULL) {
            seen_t partial = {v, i};
            seen_free(&partial);
            return;
        }
    }
    seen_free(s);
    s->v = v;
    s->n = n;
}

static const fdn_breaker_state_t states[] = {FDN_BREAKER_CLOSED, FDN_BREAKER_OPEN,
                                             FDN_BREAKER_HALF_OPEN};

static void breaker_gone(fdn__rt_metrics_t *m, const char *name)
{
    for (size_t k = 0; k < 3; k++) {
        const char *lv[] = {name, fdn_breaker_state_name(states[k])};
        set_gauge(m->br_state, lv, 2, 0.0);
    }
}

static void pool_gone(fdn__rt_metrics_t *m, const char *name)
{
    const char *v[] = {name};
    fdn_telemetry_family_t *g[] = {m->pl_size, m->pl_max_overflow, m->pl_in_use,
                                   m->pl_idle, m->pl_waiters,      m->pl_overflow};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        set_gauge(g[i], v, 1, 0.0);
}

static void type_gone(fdn__rt_metrics_t *m, const char *type)
{
    const char *v[] = {type};
    set_gauge(m->ev_held_type, v, 1, 0.0);
}

static void collect_breakers(fdn__rt_metrics_t *m)
{
    fdn_breakers_t *set = fdn_runtime_breakers(m->rt);
    fdn_breaker_t **v = NULL;
    size_t n = 0;
    if (set == NULL || fdn_breakers_handles(set, &v, &n) != 0)
        return;
    const char **names = n > 0 ? fdn__calloc(n, sizeof(*names)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = fdn_breaker_name(v[i]);
        if (names != NULL)
            names[i] = name; /* listed, whatever its status says */
        fdn_breaker_status_t st;
        if (fdn_breaker_status(v[i], &st) != 0)
            continue;
        for (size_t k = 0; k < 3; k++) {
            const char *lv[] = {name, fdn_breaker_state_name(states[k])};
            set_gauge(m->br_state, lv, 2, st.state == states[k] ? 1.0 : 0.0);
        }
        const char *rej[] = {name, "rejected"}, *fail[] = {name, "failure"};
        set_counter(m->br_calls, rej, 2, st.total_rejected);
        set_counter(m->br_calls, fail, 2, st.total_failures);
        const char *one[] = {name};
        set_counter(m->br_opened, one, 1, st.times_opened);
    }
    if (names != NULL || n == 0) /* (out of memory: the next run compares) */
        seen_update(m, &m->seen_breakers, names, n, breaker_gone);
    fdn__free(names);
    fdn_free(v);
}

static void collect_pools(fdn__rt_metrics_t *m)
{
    fdn_pools_t *pools = fdn_runtime_pools(m->rt);
    fdn_pool_info_t *info = NULL;
    size_t n = 0;
    if (pools == NULL || fdn_pools_list(pools, &info, &n) != 0)
        return;
    const char **names = n > 0 ? fdn__calloc(n, sizeof(*names)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v[] = {info[i].name};
        if (names != NULL)
            names[i] = info[i].name;
        const fdn_pool_status_t *s = &info[i].status;
        set_gauge(m->pl_size, v, 1, s->size);
        set_gauge(m->pl_max_overflow, v, 1, s->max_overflow);
        set_gauge(m->pl_in_use, v, 1, s->in_use);
        set_gauge(m->pl_idle, v, 1, s->available);
        set_gauge(m->pl_waiters, v, 1, s->waiters);
        set_gauge(m->pl_overflow, v, 1, s->overflow);
        set_counter(m->pl_checkouts, v, 1, s->checkouts);
        set_counter(m->pl_timeouts, v, 1, s->timeouts);
        set_counter(m->pl_full, v, 1, s->full);
        set_counter(m->pl_leaks, v, 1, s->leaks);
        set_counter(m->pl_reclaimed, v, 1, s->reclaimed);
    }
    if (names != NULL || n == 0) /* (out of memory: the next run compares) */
        seen_update(m, &m->seen_pools, names, n, pool_gone);
    fdn__free(names);
    fdn_free(info);
}

static void collect_events(fdn__rt_metrics_t *m)
{
    fdn_events_t *es = fdn_runtime_events(m->rt);
    fdn_events_stats_t st;
    if (es == NULL || fdn_events_stats(es, &st) != 0)
        return;
    set_gauge(m->ev_held, NULL, 0, (double)st.count);
    set_counter(m->ev_appended, NULL, 0, st.events_stored);
    set_counter(m->ev_pruned, NULL, 0, st.events_pruned);
    set_gauge(m->ev_backlog, NULL, 0, (double)st.durable_pending);
    fdn_events_types_status_t ty;
    if (fdn_events_types_status(es, &ty) == 0) {
        set_gauge(m->ev_types, NULL, 0, (double)ty.live);
        set_gauge(m->ev_types_max, NULL, 0, (double)ty.max_types);
        const char *why[] = {"types"};
        set_counter(m->ev_refused, why, 1, ty.refused_events);
    }
    fdn_events_backend_status_t bs;
    if (fdn_events_backend_status(es, &bs) == 0 && bs.backend == FDN_EVENTS_BACKEND_POSTGRES) {
        const char *b[] = {"postgres"};
        set_gauge(m->ev_be_up, b, 1, bs.up && bs.breaker_state == FDN_BREAKER_CLOSED ? 1 : 0);
        for (int k = FDN_BREAKER_CLOSED; k <= FDN_BREAKER_HALF_OPEN; k++) {
            const char *sv[] = {"postgres", fdn_breaker_state_name((fdn_breaker_state_t)k)};
            set_gauge(m->ev_be_breaker, sv, 2, bs.breaker_state == k ? 1 : 0);
        }
        set_gauge(m->ev_spooled, b, 1, (double)bs.spooled_events);
        set_counter(m->ev_replay_failures, b, 1, bs.spool_replay_failures);
        set_gauge(m->ev_quarantined, b, 1, (double)bs.spool_quarantined_batches);
        set_gauge(m->ev_quarantined_events, b, 1, (double)bs.spool_quarantined_events);
    }
    fdn_events_index_status_t ix = FDN_EVENTS_INDEX_STATUS_INIT;
    if (fdn_events_index_status(es, &ix) == 0 && ix.has_index) {
        set_gauge(m->ev_ix_behind, NULL, 0, (double)ix.behind_blocks);
        set_counter(m->ev_ix_failures, NULL, 0, ix.failures);
    }
    fdn_events_type_stat_t *ts = fdn__malloc(MAX_TYPES * sizeof(*ts));
    size_t nt = 0;
    if (ts != NULL && fdn_events_type_stats(es, ts, MAX_TYPES, &nt) == 0) {
        size_t n = nt < MAX_TYPES ? nt : MAX_TYPES;
        for (size_t i = 0; i < n; i++) {
            const char *v[] = {ts[i].type};
            set_gauge(m->ev_held_type, v, 1, (double)ts[i].count);
        }
        /* when every type held was listed (not past the cap), one the last run set and that
         * is not listed now holds no event */
        const char *names[MAX_TYPES];
        for (size_t i = 0; i < n; i++)
            names[i] = ts[i].type;
        if (nt <= MAX_TYPES)
            seen_update(m, &m->seen_types, names, n, type_gone);
    }
    fdn__free(ts);
}

static void collect_limiter(fdn__rt_metrics_t *m)
{
    fdn_limiter_t *l = fdn_runtime_limiter(m->rt);
    fdn_limiter_backend_status_t bs;
    uint64_t evictions = 0;
    if (l == NULL)
        return;
    /* both figures in one pass over the memory store's shards */
    if (fdn__limiter_status_evictions(l, &bs, &evictions) != 0)
        return;
    set_counter(m->lm_evictions, NULL, 0, evictions);
    set_gauge(m->lm_keys, NULL, 0, (double)bs.keys);
    set_gauge(m->lm_capacity, NULL, 0, (double)bs.key_capacity);
    set_counter(m->lm_refused, NULL, 0, bs.new_keys_refused);
    set_gauge(m->lm_identities, NULL, 0, (double)bs.identities);
    set_counter(m->lm_id_refused, NULL, 0, bs.identity_keys_refused);
    if (bs.backend != FDN_LIMITER_BACKEND_REDIS)
        return;
    const char *b[] = {"redis"};
    set_gauge(m->lm_up, b, 1, bs.connected && bs.breaker_state == FDN_BREAKER_CLOSED ? 1 : 0);
    for (int k = FDN_BREAKER_CLOSED; k <= FDN_BREAKER_HALF_OPEN; k++) {
        const char *sv[] = {"redis", fdn_breaker_state_name((fdn_breaker_state_t)k)};
        set_gauge(m->lm_breaker, sv, 2, bs.breaker_state == k ? 1 : 0);
    }
    static const struct {
        const char *what;
        size_t off;
    } calls[] = {
        {"command", offsetof(fdn_limiter_backend_status_t, commands)},
        {"error", offsetof(fdn_limiter_backend_status_t, errors)},
        {"fallback", offsetof(fdn_limiter_backend_status_t, fallbacks)},
        {"local_denial", offsetof(fdn_limiter_backend_status_t, local_denials)},
        {"script_load", offsetof(fdn_limiter_backend_status_t, script_loads)},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&bs + calls[i].off, sizeof v);
        const char *lv[] = {"redis", calls[i].what};
        set_counter(m->lm_backend_calls, lv, 2, v);
    }
    fdn_histogram_t *h = NULL;
    if (fdn_telemetry_family_histogram(m->lm_latency, &h, b, 1) == 0)
        fdn_histogram_load(h, bs.latency_le_us, 8, (double)bs.latency_sum_us / 1e6);
}

static const char *meta_get(const fdn_telemetry_meta_t *meta, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(meta[i].key, key) == 0)
            return meta[i].value;
    return NULL;
}

static double measure_get(const fdn_telemetry_measure_t *ms, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ms[i].key, key) == 0)
            return ms[i].value;
    return -1;
}

/* What the three duration handlers below share: ns nanoseconds (negative: the event did not
 * carry the measure) observed in seconds into f's histogram of labels v[0..n), with a
 * correlation_id exemplar when cid is not NULL. */
static void observe_ns(fdn_telemetry_family_t *f, const char *const *v, size_t n, double ns,
                       const char *cid)
{
    fdn_histogram_t *h = NULL;
    if (ns < 0 || fdn_telemetry_family_histogram(f, &h, v, n) != 0)
        return;
    if (cid != NULL)
        fdn_histogram_observe_exemplar(h, ns / 1e9, "correlation_id", cid);
    else
        fdn_histogram_observe(h, ns / 1e9);
}

/* foundation.infrastructure.execute_stop {duration_ns} {protection_key, result}: a protected
 * call, observed into fdn_protected_call_duration_seconds{key,outcome}. */
static int on_protected(const char *event, const fdn_telemetry_measure_t *ms, size_t nm,
                        const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    fdn__rt_metrics_t *m = user;
    const char *key = meta_get(meta, nmeta, "protection_key");
    const char *res = meta_get(meta, nmeta, "result");
    const char *cid = meta_get(meta, nmeta, "correlation_id"); /* inside an error context */
    double ns = measure_get(ms, nm, "duration_ns");
    const char *v[] = {key, res};
    if (key != NULL && res != NULL)
        observe_ns(m->pr_dur, v, 2, ns, cid);
    return 0;
}

/* foundation.config.update {duration_ns} {path, outcome}: an update attempt, observed into
 * fdn_config_update_duration_seconds{outcome}; a refused one also counts in
 * fdn_config_updates_total{path,outcome} (applied ones are counted when applied, see
 * fdn__rt_metrics_config_update, which also sees the fleet's changes). */
static int on_config_update(const char *event, const fdn_telemetry_measure_t *ms, size_t nm,
                            const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    fdn__rt_metrics_t *m = user;
    const char *path = meta_get(meta, nmeta, "path");
    const char *outcome = meta_get(meta, nmeta, "outcome");
    double ns = measure_get(ms, nm, "duration_ns");
    if (path == NULL || outcome == NULL)
        return 0;
    const char *o[] = {outcome};
    observe_ns(m->cf_dur, o, 1, ns, NULL);
    if (strcmp(outcome, "applied") != 0)
        fdn__rt_metrics_config_update(m, path, outcome);
    return 0;
}

/* foundation.connection_pool.checkout {checkout_time: ns} {pool_name}: the wait for a worker,
 * observed into fdn_pool_checkout_wait_seconds{pool}. */
static int on_checkout(const char *event, const fdn_telemetry_measure_t *ms, size_t nm,
                       const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    fdn__rt_metrics_t *m = user;
    const char *pool = meta_get(meta, nmeta, "pool_name");
    double ns = measure_get(ms, nm, "checkout_time");
    const char *v[] = {pool};
    if (pool != NULL)
        observe_ns(m->pl_wait, v, 1, ns, NULL);
    return 0;
}

static void collect(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    fdn__rt_metrics_t *m = user;
    fdn__mutex_lock(&m->mu);
    fdn_registry_t *reg = fdn_runtime_registry(m->rt);
    if (reg != NULL)
        set_gauge(m->rg_entries, NULL, 0, (double)fdn_registry_count(reg));
    collect_breakers(m);
    collect_pools(m);
    collect_events(m);
    collect_limiter(m);
    fdn__mutex_unlock(&m->mu);
}

int fdn__rt_metrics_attach(fdn_runtime_t *rt, fdn__rt_metrics_t **out)
{
    *out = NULL;
    fdn_telemetry_t *tm = fdn_runtime_telemetry(rt);
    if (tm == NULL)
        return 0;
    fdn__rt_metrics_t *m = fdn__calloc(1, sizeof(*m));
    if (m == NULL)
        return FDN_ENOMEM;
    m->rt = rt;
    m->tm = tm;
    pthread_mutex_init(&m->mu, NULL);
    const fdn_telemetry_kind_t G = FDN_TELEMETRY_GAUGE, C = FDN_TELEMETRY_COUNTER;
    m->br_state = fam(m, "fdn_circuit_breaker_state",
                      "Circuit breaker state: 1 for the breaker's current state, 0 for the others.",
                      G, "breaker", "state", NULL, 3 * MAX_BREAKERS);
    m->br_calls = fam(m, "fdn_circuit_breaker_calls_total",
                      "Calls a breaker recorded as failures or rejected while open, by outcome.", C,
                      "breaker", "outcome", NULL, 2 * MAX_BREAKERS);
    m->br_opened = fam(m, "fdn_circuit_breaker_opened_total", "Times a breaker opened.", C,
                       "breaker", NULL, NULL, MAX_BREAKERS);
    m->br_transitions = fam(m, "fdn_circuit_breaker_state_change_total",
                            "Breaker state transitions, by breaker, from and to state.", C,
                            "breaker", "from", "to", 6 * MAX_BREAKERS);
    m->pl_size = fam(m, "fdn_pool_size", "Configured permanent workers of a pool.", G, "pool", NULL,
                     NULL, MAX_POOLS);
    m->pl_max_overflow =
        fam(m, "fdn_pool_max_overflow", "Configured limit of overflow workers of a pool.", G,
            "pool", NULL, NULL, MAX_POOLS);
    m->pl_in_use = fam(m, "fdn_pool_in_use", "Workers checked out of a pool.", G, "pool", NULL,
                       NULL, MAX_POOLS);
    m->pl_idle = fam(m, "fdn_pool_idle", "Idle workers of a pool ready for checkout.", G, "pool",
                     NULL, NULL, MAX_POOLS);
    m->pl_waiters = fam(m, "fdn_pool_waiters", "Callers waiting for a worker of a pool.", G, "pool",
                        NULL, NULL, MAX_POOLS);
    m->pl_overflow = fam(m, "fdn_pool_overflow", "Workers of a pool beyond its size.", G, "pool",
                         NULL, NULL, MAX_POOLS);
    m->pl_checkouts = fam(m, "fdn_pool_checkouts_total", "Successful checkouts from a pool.", C,
                          "pool", NULL, NULL, MAX_POOLS);
    m->pl_timeouts = fam(m, "fdn_pool_checkout_timeouts_total",
                         "Checkouts from a pool that timed out waiting for a worker.", C, "pool",
                         NULL, NULL, MAX_POOLS);
    m->pl_full = fam(m, "fdn_pool_checkout_full_total",
                     "Checkouts that could not wait refused because the pool was full.", C, "pool",
                     NULL, NULL, MAX_POOLS);
    m->pl_leaks = fam(m, "fdn_pool_leases_leaked_total",
                      "Leases of a pool reported held longer than its leak threshold.", C, "pool",
                      NULL, NULL, MAX_POOLS);
    m->pl_reclaimed = fam(m, "fdn_pool_leases_reclaimed_total",
                          "Leases of a pool reclaimed after its maximum hold time.", C, "pool",
                          NULL, NULL, MAX_POOLS);
    m->ev_held =
        fam(m, "fdn_events_held", "Events the event store holds now.", G, NULL, NULL, NULL, 0);
    m->ev_held_type = fam(m, "fdn_events_held_by_type",
                          "Events the event store holds now, by event type (at most 100 types).", G,
                          "type", NULL, NULL, MAX_TYPES);
    m->ev_appended = fam(m, "fdn_events_appended_total",
                         "Events appended to the event store (a batch counts each event).", C, NULL,
                         NULL, NULL, 0);
    m->ev_pruned = fam(m, "fdn_events_pruned_total", "Events pruned from the event store.", C, NULL,
                       NULL, NULL, 0);
    m->ev_types = fam(m, "fdn_events_types", "Distinct event types the event store holds now.", G,
                      NULL, NULL, NULL, 0);
    m->ev_types_max = fam(m, "fdn_events_types_max",
                          "Cap on the distinct event types held (storage.hot.max_types; 0 = none).",
                          G, NULL, NULL, NULL, 0);
    m->ev_be_up = fam(m, "fdn_events_backend_up",
                      "1 while the event store's engine backend answers and its breaker is "
                      "closed.",
                      G, "backend", NULL, NULL, 2);
    m->ev_be_breaker = fam(m, "fdn_events_backend_breaker_state",
                           "The breaker around the event store's engine backend: 1 for its "
                           "current state, 0 for the others.",
                           G, "backend", "state", NULL, 6);
    m->ev_spooled = fam(m, "fdn_events_backend_spooled_events",
                        "Events in the local spool, waiting for the event store's PostgreSQL.", G,
                        "backend", NULL, NULL, 2);
    m->ev_replay_failures =
        fam(m, "fdn_events_backend_spool_replay_failures_total",
            "Replays of the local spool into the event store's PostgreSQL that failed.", C,
            "backend", NULL, NULL, 2);
    /* gauges, not counters: what the quarantine table holds (earlier runs' batches too; an
     * operator who takes them out makes it fall at the next start) */
    m->ev_quarantined = fam(m, "fdn_events_backend_spool_quarantined_batches",
                            "Batches in the local spool's quarantine: taken out of the replay "
                            "because PostgreSQL can never take them, kept for an operator.",
                            G, "backend", NULL, NULL, 2);
    m->ev_quarantined_events = fam(
        m, "fdn_events_backend_spool_quarantined_events",
        "Events in the local spool's quarantine (fdn_events_backend_spool_quarantined_batches).", G,
        "backend", NULL, NULL, 2);
    m->ev_refused = fam(m, "fdn_events_refused_total",
                        "Events the event store refused, by reason (types: a new type past "
                        "storage.hot.max_types).",
                        C, "reason", NULL, NULL, 4);
    m->ev_backlog =
        fam(m, "fdn_events_durable_backlog",
            "Events appended but not yet committed to the durable file.", G, NULL, NULL, NULL, 0);
    m->ev_ix_behind = fam(m, "fdn_events_correlation_index_behind_blocks",
                          "Complete blocks of 8192 ids the durable file's correlation index does "
                          "not cover yet (0 when current).",
                          G, NULL, NULL, NULL, 0);
    m->ev_ix_failures = fam(m, "fdn_events_correlation_index_failures_total",
                            "Failures of the durable file's correlation index (index work rolled "
                            "back, rebuilds failed) since the file opened.",
                            C, NULL, NULL, NULL, 0);
    m->lm_keys = fam(m, "fdn_rate_limiter_keys", "Live keys in this process's limiter store.", G,
                     NULL, NULL, NULL, 0);
    m->lm_capacity =
        fam(m, "fdn_rate_limiter_keys_capacity",
            "Bound on the live keys of this process's limiter store.", G, NULL, NULL, NULL, 0);
    m->lm_evictions =
        fam(m, "fdn_rate_limiter_evictions_total",
            "Live limiter keys evicted because their shard was full.", C, NULL, NULL, NULL, 0);
    m->lm_identities = fam(m, "fdn_rate_limiter_identities",
                           "Identities holding live keys in this process's limiter store.", G, NULL,
                           NULL, NULL, 0);
    m->lm_id_refused = fam(m, "fdn_rate_limiter_identity_keys_refused_total",
                           "New limiter keys refused because their identity held "
                           "max_keys_per_identity live keys.",
                           C, NULL, NULL, NULL, 0);
    m->lm_refused = fam(m, "fdn_rate_limiter_new_keys_refused_total",
                        "New limiter keys refused because their shard was full of live keys.", C,
                        NULL, NULL, NULL, 0);
    m->lm_up = fam(m, "fdn_rate_limiter_backend_up",
                   "1 while the limiter's engine backend answers and its breaker is closed.", G,
                   "backend", NULL, NULL, 8);
    m->lm_breaker = fam(m, "fdn_rate_limiter_backend_breaker_state",
                        "The breaker around the engine backend: 1 for its current state, 0 for "
                        "the others.",
                        G, "backend", "state", NULL, 24);
    m->lm_backend_calls = fam(m, "fdn_rate_limiter_backend_operations_total",
                              "Limiter backend operations by kind: command (sent), error, "
                              "fallback (answered by the failure policy), local_denial (deny "
                              "cache), script_load.",
                              C, "backend", "operation", NULL, 64);
    m->lm_latency = fam(m, "fdn_rate_limiter_backend_request_duration_seconds",
                        "Limiter checks sent to the engine backend: time including the wait for "
                        "a connection or pipeline.",
                        FDN_TELEMETRY_HISTOGRAM, "backend", NULL, NULL, 8);
    static const double lat_le[7] = {1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1};
    if (m->lm_latency != NULL)
        note(m, fdn_telemetry_family_buckets(m->lm_latency, lat_le, 7));
    m->sv_restarts = fam(m, "fdn_supervisor_restarts_total",
                         "Service restarts by the runtime's supervisor, by service.", C, "service",
                         NULL, NULL, MAX_SERVICES);
    m->sv_escalations = fam(m, "fdn_supervisor_escalations_total",
                            "Escalations of the runtime's supervisor (restart intensity "
                            "exceeded), by the service that caused them.",
                            C, "service", NULL, NULL, MAX_SERVICES);
    m->cf_updates = fam(m, "fdn_config_updates_total",
                        "Configuration updates, by path and outcome: applied (in this process, "
                        "local or from the fleet), or the error that refused a local attempt.",
                        C, "path", "outcome", NULL, MAX_PATHS);
    m->cf_dur = fam(m, "fdn_config_update_duration_seconds",
                    "Configuration update calls (fdn_config_update_*): parse, checks, validation, "
                    "publication; by outcome.",
                    FDN_TELEMETRY_HISTOGRAM, "outcome", NULL, NULL, MAX_OUTCOMES);
    m->pr_dur = fam(m, "fdn_protected_call_duration_seconds",
                    "Protected calls (fdn_protect_execute): duration of the call, by protection "
                    "key and outcome (ok or the error name).",
                    FDN_TELEMETRY_HISTOGRAM, "key", "outcome", NULL, MAX_KEYS);
    m->rg_entries = fam(m, "fdn_registry_entries",
                        "Services registered in the runtime's process-local registry now.", G, NULL,
                        NULL, NULL, 0);
    m->pl_wait =
        fam(m, "fdn_pool_checkout_wait_seconds", "Time a checkout waited for a worker of a pool.",
            FDN_TELEMETRY_HISTOGRAM, "pool", NULL, NULL, MAX_POOLS);
    if (m->rc == 0) {
        int rc = note(m, fdn_telemetry_add_collector(tm, collect, m));
        if (rc != 0 && rc != FDN_ENOMEM) { /* (a stopped telemetry service: no metrics) */
            pthread_mutex_destroy(&m->mu);
            fdn__free(m);
            return 0;
        }
    }
    /* the labelled histograms measure what these events measure: keep the events (JSON)
     * out of the exposition, one family per measured thing */
    if (m->rc == 0 &&
        note(m, fdn_telemetry_attach(tm, &m->h_prot, "foundation.infrastructure.execute_stop",
                                     FDN_TELEMETRY_MATCH_EXACT, on_protected, m)) == 0) {
        note(m, fdn_telemetry_unexport_event(tm, "foundation.infrastructure.execute_stop"));
        note(m, fdn_telemetry_unexport_event(tm, "foundation.infrastructure.execute_exception"));
    }
    if (m->rc == 0 &&
        note(m, fdn_telemetry_attach(tm, &m->h_pool, "foundation.connection_pool.checkout",
                                     FDN_TELEMETRY_MATCH_EXACT, on_checkout, m)) == 0)
        note(m, fdn_telemetry_unexport_event(tm, "foundation.connection_pool.checkout"));
    if (m->rc == 0 &&
        note(m, fdn_telemetry_attach(tm, &m->h_cfg, "foundation.config.update",
                                     FDN_TELEMETRY_MATCH_EXACT, on_config_update, m)) == 0)
        note(m, fdn_telemetry_unexport_event(tm, "foundation.config.update"));
    /* and the events the collector's families count already */
    static const char *const counted[] = {
        "foundation.connection_pool.timeout",       /* fdn_pool_checkout_timeouts_total */
        "foundation.connection_pool.full",          /* fdn_pool_checkout_full_total */
        "foundation.connection_pool.reclaimed",     /* fdn_pool_leases_reclaimed_total */
        "foundation.supervisor.escalations",        /* fdn_supervisor_escalations_total */
        "foundation.circuit_breaker.call_rejected", /* fdn_circuit_breaker_calls_total */
        "foundation.event_store.events_stored",     /* fdn_events_appended_total */
        "foundation.event_store.events_pruned",     /* fdn_events_pruned_total */
    };
    for (size_t i = 0; i < sizeof counted / sizeof counted[0] && m->rc == 0; i++)
        note(m, fdn_telemetry_unexport_event(tm, counted[i]));
#ifdef FDN_HAVE_ETCD
    if (m->rc == 0) {
        m->etcd = fdn__etcd_metrics_attach(tm, rt);
        if (m->etcd == NULL)
            m->rc = FDN_ENOMEM;
    }
#endif
    if (m->rc != 0) {
        int rc = m->rc;
        fdn__rt_metrics_detach(m); /* (the families stay in tm, which the failed create frees) */
        return rc;
    }
    *out = m;
    return 0;
}

void fdn__rt_metrics_detach(fdn__rt_metrics_t *m)
{
    if (m == NULL)
        return;
    (void)fdn_telemetry_remove_collector(m->tm, collect, m);
#ifdef FDN_HAVE_ETCD
    fdn__etcd_metrics_detach(m->etcd);
#endif
    /* the services have stopped (unwire): no protected call or checkout is in flight */
    if (m->h_prot != 0)
        (void)fdn_telemetry_detach(m->tm, m->h_prot);
    if (m->h_pool != 0)
        (void)fdn_telemetry_detach(m->tm, m->h_pool);
    if (m->h_cfg != 0)
        (void)fdn_telemetry_detach(m->tm, m->h_cfg);
    seen_free(&m->seen_breakers);
    seen_free(&m->seen_pools);
    seen_free(&m->seen_types);
    pthread_mutex_destroy(&m->mu);
    fdn__free(m);
}

void fdn__rt_metrics_restart(fdn__rt_metrics_t *m, const char *service)
{
    fdn_counter_t *c = NULL;
    const char *v[] = {service};
    if (m != NULL && fdn_telemetry_family_counter(m->sv_restarts, &c, v, 1) == 0)
        fdn_counter_inc(c);
}

void fdn__rt_metrics_escalation(fdn__rt_metrics_t *m, const char *service)
{
    fdn_counter_t *c = NULL;
    const char *v[] = {service};
    if (m != NULL && fdn_telemetry_family_counter(m->sv_escalations, &c, v, 1) == 0)
        fdn_counter_inc(c);
}

void fdn__rt_metrics_transition(fdn__rt_metrics_t *m, const char *breaker, const char *from,
                                const char *to)
{
    fdn_counter_t *c = NULL;
    const char *v[] = {breaker, from, to};
    if (m != NULL && fdn_telemetry_family_counter(m->br_transitions, &c, v, 3) == 0)
        fdn_counter_inc(c);
}

void fdn__rt_metrics_config_update(fdn__rt_metrics_t *m, const char *path, const char *outcome)
{
    fdn_counter_t *c = NULL;
    const char *v[] = {path, outcome};
    if (m != NULL && fdn_telemetry_family_counter(m->cf_updates, &c, v, 2) == 0)
        fdn_counter_inc(c);
}

/* ---- telemetry.buckets and telemetry.summaries ----------------------------------------- */

/* The config's value at path, parsed; NULL when absent or unreadable (*oom on OOM). */
static json_t *cfg_json(fdn_config_t *cfg, const char *path, bool *oom)
{
    char *text = NULL;
    *oom = false;
    int rc = fdn_config_get_json(cfg, path, &text, NULL);
    if (rc != 0) {
        *oom = rc == FDN_ENOMEM;
        return NULL;
    }
    json_t *v = fdn__json_loadb(text, strlen(text), JSON_DECODE_ANY, NULL, oom);
    fdn_free(text);
    return v;
}

int fdn__rt_telemetry_configure(fdn_telemetry_t *tm, fdn_config_t *cfg, fdn_error_t *err)
{
    if (tm == NULL || cfg == NULL)
        return 0;
    bool oom;
    int rc = 0;
    json_t *b = cfg_json(cfg, "telemetry.buckets", &oom);
    const char *name;
    json_t *arr;
    json_object_foreach(b, name, arr)
    {
        double le[FDN_TELEMETRY_MAX_BUCKETS];
        size_t n = 0;
        const char *why = "refused";
        /* the schema has checked every member: a refusal here is an internal error */
        rc = fdn__cfg_tm_bounds(name, arr, le, &n, &why)
                 ? fdn__tm_configure_buckets(tm, name, le, n)
                 : FDN_EINVAL;
        if (rc != 0) {
            fdn_err_set(err, rc, "telemetry.buckets.%s: %s", name,
                        rc == FDN_EINVAL ? why : fdn_err_name(rc));
            break;
        }
    }
    json_decref(b);
    if (rc == 0 && oom)
        rc = fdn_err_set(err, FDN_ENOMEM, "out of memory reading telemetry.buckets");
    json_t *s = rc == 0 ? cfg_json(cfg, "telemetry.summaries", &oom) : NULL;
    for (size_t i = 0; rc == 0 && i < json_array_size(s); i++) {
        const char *h = json_string_value(json_array_get(s, i));
        rc = fdn__tm_configure_summary(tm, h != NULL ? h : "");
        if (rc != 0)
            fdn_err_set(err, rc, "telemetry.summaries: %s: %s", h != NULL ? h : "(not a string)",
                        fdn_err_name(rc));
    }
    json_decref(s);
    if (rc == 0 && oom)
        rc = fdn_err_set(err, FDN_ENOMEM, "out of memory reading telemetry.summaries");
    return rc;
}
