/*
 * DESIGN: rate limiter: the public API, the named-rule table, shadow mode, the running flag
 * and time.
 *
 * Layers: the per-key arithmetic is pure (logic/limit_algo.c); the keys live in a storage
 * backend reached through fdn__limiter_backend_t (limiter_int.h), today the in-memory store
 * (limiter_store.c). This file reads the clock once per call (the clock the rule's algorithm
 * needs), validates, picks the backend operation and turns its result into a return code,
 * shadow mode and telemetry.
 *
 * Threads: none of its own. Locks: the rule table has its own mutex, never held with a
 * backend lock; no callback runs under any lock.
 * Every change to the rule table (under its mutex) also runs the sequence counter
 * `rules_seq` odd then even (a seqlock) and mirrors each slot's rule into atomic fields, so
 * fdn__limiter_check_named_cached reads a rule it resolved before with no lock: it keeps
 * (rules_seq, slot) in the caller's cache and uses the slot only while rules_seq is still
 * that value, so any rule update or removal applies to the very next check.
 */
#include <fdn/limiter.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/tsan.h"
#include "infra/limiter_int.h"

#define NS_PER_MS     1000000LL
#define MAX_KEYLEN    4096u
#define MAX_RULES     64
#define RULE_NAME_MAX 64

/* Telemetry (opts.telemetry): counters foundation.rate_limiter.request_allowed and
 * foundation.rate_limiter.request_denied {algorithm} per consuming check (keys are not put in
 * metadata: their cardinality is unbounded). Emitted after the backend returned. */

typedef struct named_rule {
    char name[RULE_NAME_MAX];
    fdn_limit_rule_t rule;
    /* the same rule for lock-free readers (see DESIGN): algo, limit, period_ms, burst */
    _Atomic int64_t mirror[4];
} named_rule_t;

struct fdn_limiter {
    const fdn__limiter_backend_t *be;
    void *be_self;
    fdn_clock_t *clock;
    fdn_telemetry_t *telemetry;
    _Atomic bool shadow;
    _Atomic bool running;
    pthread_mutex_t rules_mu;
    named_rule_t rules[MAX_RULES];
    size_t nrules;
    _Atomic uint64_t rules_seq; /* odd while rules_mu's holder changes the table */
};

void fdn__limiter_probes(fdn_limiter_t *l, uint64_t *lookups, uint64_t *probes)
{
    *lookups = *probes = 0;
    if (l != NULL && l->be == &fdn__limiter_mem_backend)
        fdn__limiter_mem_probes(l->be_self, lookups, probes);
}

int fdn_limiter_create(fdn_limiter_t **out, const fdn_limiter_opts_t *opts)
{
    fdn_limiter_opts_t d = FDN_LIMITER_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (opts == NULL)
        opts = &d;
    if (opts->version < 1 || opts->shards == 0 || (opts->shards & (opts->shards - 1)) != 0 ||
        opts->shards > 65536 || opts->max_keys == 0 || opts->cleanup_interval_ms <= 0 ||
        opts->cleanup_interval_ms > INT64_MAX / NS_PER_MS / 4)
        return FDN_EINVAL;
    fdn_limit_overflow_t policy = FDN_LIMIT_OVERFLOW_DENY_NEW;
    if (opts->version >= 2) {
        if (opts->overflow_policy != FDN_LIMIT_OVERFLOW_DENY_NEW &&
            opts->overflow_policy != FDN_LIMIT_OVERFLOW_EVICT_LRU)
            return FDN_EINVAL;
        policy = opts->overflow_policy;
    }
    fdn_limiter_t *l = fdn__calloc(1, sizeof(*l));
    if (!l)
        return FDN_ENOMEM;
    l->clock = opts->clock;
    l->telemetry = opts->telemetry;
    void *m;
    int rc = fdn__limiter_mem_create(&m, opts->shards, opts->max_keys, policy,
                                     opts->cleanup_interval_ms * NS_PER_MS,
                                     fdn_clock_mono_ns(opts->clock), fdn_clock_wall_ns(opts->clock));
    if (rc) {
        fdn__free(l);
        return rc;
    }
    if (pthread_mutex_init(&l->rules_mu, NULL) != 0) {
        fdn__limiter_mem_backend.destroy(m);
        fdn__free(l);
        return FDN_ENOMEM;
    }
    l->be = &fdn__limiter_mem_backend;
    l->be_self = m;
    atomic_init(&l->shadow, opts->shadow);
    atomic_init(&l->running, true);
    static const struct {
        const char *name;
        int64_t period_ms, limit;
    } defaults[] = {
        {"api_calls", 60000, 100}, {"db_queries", 60000, 500}, {"file_operations", 1000, 10}};
    for (size_t i = 0; i < FDN_ARRAY_LEN(defaults); i++) {
        fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, defaults[i].limit, defaults[i].period_ms, 0};
        fdn_limiter_set_rule(l, defaults[i].name, &r);
    }
    *out = l;
    return 0;
}

void fdn_limiter_destroy(fdn_limiter_t *l)
{
    if (l == NULL)
        return;
    l->be->destroy(l->be_self);
    pthread_mutex_destroy(&l->rules_mu);
    fdn__free(l);
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_limiter_t *l = state;
    (void)ctx;
    (void)err;
    if (l == NULL)
        return FDN_EINVAL;
    atomic_store_explicit(&l->running, true, memory_order_release);
    return 0;
}

static void service_stop(void *state)
{
    fdn_limiter_t *l = state;
    if (l)
        atomic_store_explicit(&l->running, false, memory_order_release);
}

static int service_health(void *state)
{
    fdn_limiter_t *l = state;
    if (l == NULL)
        return FDN_EINVAL;
    return atomic_load_explicit(&l->running, memory_order_acquire) ? 0 : FDN_EUNAVAILABLE;
}

/* rule_ok: the rule comes from the rule table, which only holds validated rules.
 * mono: the monotonic time of this call already read by the caller on the limiter's own
 * time source, or FDN__NOW_UNSET. */
static int run_op_v(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    bool rule_ok, int64_t mono, int64_t cost, fdn__limit_op_t op,
                    fdn_limit_result_t *res, fdn_limit_reservation_t *rsv)
{
    if (l == NULL || key == NULL || keylen == 0 || keylen > MAX_KEYLEN || cost < 1 ||
        cost > FDN__LIMIT_MAX || (!rule_ok && fdn_limit_rule_validate(rule, NULL) != 0))
        return FDN_EINVAL;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->running, memory_order_acquire)))
        return FDN_EUNAVAILABLE;
    fdn__limit_now_t now;
    now.clock = l->clock;
    if (rule->algo == FDN_LIMIT_FIXED_WINDOW) {
        now.wall_ns = fdn_clock_wall_ns(l->clock);
        now.mono_ns = FDN__NOW_UNSET;
    } else {
        now.mono_ns = mono != FDN__NOW_UNSET ? mono : fdn_clock_mono_ns(l->clock);
        now.wall_ns = FDN__NOW_UNSET;
    }
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    int rc = l->be->apply(l->be_self, key, keylen, rule, cost, op, &now, res, rsv);
    if (rc == FDN_ELIMITER && op == FDN__LIMIT_CHECK &&
        atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
        /* dry run: the key cannot be stored, but nothing is enforced */
        res->allowed = true;
        res->shadow_denied = true;
        return 0;
    }
    if (rc)
        return rc;
    if (op != FDN__LIMIT_CHECK)
        return res->allowed || op == FDN__LIMIT_CANCEL ? 0 : FDN_ERATE_LIMITED;
    if (l->telemetry) {
        fdn_telemetry_meta_t meta[1] = {{"algorithm", fdn_limit_algo_name(rule->algo)}};
        fdn_telemetry_emit_counter(l->telemetry,
                                   res->allowed ? "foundation.rate_limiter.request_allowed"
                                                : "foundation.rate_limiter.request_denied",
                                   meta, 1);
    }
    if (res->allowed)
        return 0;
    if (atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
        res->allowed = true;
        res->shadow_denied = true;
        return 0;
    }
    return FDN_ERATE_LIMITED;
}

static int run_op(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                  int64_t cost, fdn__limit_op_t op, fdn_limit_result_t *res,
                  fdn_limit_reservation_t *rsv)
{
    return run_op_v(l, key, keylen, rule, false, FDN__NOW_UNSET, cost, op, res, rsv);
}

int fdn_limiter_check(fdn_limiter_t *l, const char *key, size_t keylen,
                      const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                      fdn_limit_result_t *res)
{
    if (flags & ~FDN_LIMIT_PEEK)
        return FDN_EINVAL;
    return run_op(l, key, keylen, rule, cost,
                  (flags & FDN_LIMIT_PEEK) ? FDN__LIMIT_PEEK : FDN__LIMIT_CHECK, res, NULL);
}

int fdn_limiter_check_rate(fdn_limiter_t *l, const char *key, int64_t scale_ms, int64_t limit,
                           fdn_limit_result_t *res)
{
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, scale_ms, 0};
    if (key == NULL)
        return FDN_EINVAL;
    return run_op(l, key, strlen(key), &r, 1, FDN__LIMIT_CHECK, res, NULL);
}

int fdn_limiter_reserve(fdn_limiter_t *l, const char *key, size_t keylen,
                        const fdn_limit_rule_t *rule, int64_t cost, fdn_limit_reservation_t *rsv,
                        fdn_limit_result_t *res)
{
    if (rsv == NULL)
        return FDN_EINVAL;
    memset(rsv, 0, sizeof(*rsv));
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    int rc = run_op(l, key, keylen, rule, cost, FDN__LIMIT_CHECK, res, rsv);
    /* something was taken when allowed, and for a fixed window also when denied */
    if ((rc == 0 || rc == FDN_ERATE_LIMITED) &&
        (res->allowed || rule->algo == FDN_LIMIT_FIXED_WINDOW) && !res->shadow_denied) {
        rsv->cost = cost;
        rsv->active = true;
    }
    return rc;
}

int fdn_limiter_cancel(fdn_limiter_t *l, const char *key, size_t keylen,
                       const fdn_limit_rule_t *rule, fdn_limit_reservation_t *rsv)
{
    if (rsv == NULL)
        return FDN_EINVAL;
    if (!rsv->active)
        return FDN_ENOENT;
    int rc = run_op(l, key, keylen, rule, rsv->cost, FDN__LIMIT_CANCEL, NULL, rsv);
    if (rc == 0 || rc == FDN_ENOENT)
        rsv->active = false;
    return rc;
}

int fdn_limiter_reset(fdn_limiter_t *l, const char *key, size_t keylen)
{
    if (l == NULL || key == NULL || keylen == 0 || keylen > MAX_KEYLEN)
        return FDN_EINVAL;
    return l->be->forget(l->be_self, key, keylen);
}

size_t fdn_limiter_sweep(fdn_limiter_t *l)
{
    if (l == NULL)
        return 0;
    fdn__limit_now_t now = {FDN__NOW_UNSET, FDN__NOW_UNSET, l->clock};
    return l->be->sweep(l->be_self, &now);
}

int fdn_limiter_set_cleanup_interval(fdn_limiter_t *l, int64_t ms)
{
    if (l == NULL || ms <= 0 || ms > INT64_MAX / NS_PER_MS / 4)
        return FDN_EINVAL;
    l->be->set_interval(l->be_self, ms * NS_PER_MS);
    return 0;
}

void fdn_limiter_set_shadow(fdn_limiter_t *l, bool shadow)
{
    if (l)
        atomic_store_explicit(&l->shadow, shadow, memory_order_relaxed);
}

int fdn_limiter_stats(fdn_limiter_t *l, fdn_limiter_stats_t *out)
{
    if (l == NULL || out == NULL)
        return FDN_EINVAL;
    l->be->stats(l->be_self, out);
    return 0;
}

/* ---- named rules ------------------------------------------------------------------------ */

static named_rule_t *rule_find_locked(fdn_limiter_t *l, const char *name)
{
    for (size_t i = 0; i < l->nrules; i++)
        if (strcmp(l->rules[i].name, name) == 0)
            return &l->rules[i];
    return NULL;
}

/* rules_mu held: open and close a change of the table (seqlock writer side) */
static uint64_t rules_write_begin(fdn_limiter_t *l)
{
    uint64_t s = atomic_load_explicit(&l->rules_seq, memory_order_relaxed);
    atomic_store_explicit(&l->rules_seq, s + 1, memory_order_relaxed);
    FDN_SEQ_FENCE(memory_order_release);
    return s;
}

static void rules_write_end(fdn_limiter_t *l, uint64_t s)
{
    atomic_store_explicit(&l->rules_seq, s + 2, memory_order_release);
}

/* rules_mu held, inside a write: set slot r's rule and its mirror */
static void rule_store_locked(named_rule_t *r, const fdn_limit_rule_t *rule)
{
    r->rule = *rule;
    atomic_store_explicit(&r->mirror[0], (int64_t)rule->algo, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[1], rule->limit, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[2], rule->period_ms, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[3], rule->burst, FDN_SEQ_ST);
}

int fdn_limiter_set_rule(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule)
{
    if (l == NULL || name == NULL || name[0] == '\0' || strlen(name) >= RULE_NAME_MAX ||
        fdn_limit_rule_validate(rule, NULL) != 0)
        return FDN_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&l->rules_mu);
    uint64_t seq = rules_write_begin(l);
    named_rule_t *r = rule_find_locked(l, name);
    if (r == NULL) {
        if (l->nrules == MAX_RULES) {
            rc = FDN_ENOMEM;
        } else {
            r = &l->rules[l->nrules++];
            memcpy(r->name, name, strlen(name) + 1);
        }
    }
    if (r)
        rule_store_locked(r, rule);
    rules_write_end(l, seq);
    pthread_mutex_unlock(&l->rules_mu);
    return rc;
}

int fdn_limiter_get_rule(fdn_limiter_t *l, const char *name, fdn_limit_rule_t *out)
{
    if (l == NULL || name == NULL || out == NULL)
        return FDN_EINVAL;
    pthread_mutex_lock(&l->rules_mu);
    named_rule_t *r = rule_find_locked(l, name);
    if (r)
        *out = r->rule;
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

int fdn_limiter_remove_rule(fdn_limiter_t *l, const char *name)
{
    if (l == NULL || name == NULL)
        return FDN_EINVAL;
    pthread_mutex_lock(&l->rules_mu);
    uint64_t seq = rules_write_begin(l);
    named_rule_t *r = rule_find_locked(l, name);
    if (r) {
        const named_rule_t *last = &l->rules[l->nrules - 1];
        if (r != last) {
            memcpy(r->name, last->name, sizeof(r->name));
            rule_store_locked(r, &last->rule);
        }
        l->nrules--;
    }
    rules_write_end(l, seq);
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

/* A rule cache holds (rules_seq << 8) | CACHE_VALID | slot; 0 is empty. */
#define CACHE_VALID 0x80u
#define CACHE_SLOT  0x3fu
_Static_assert(MAX_RULES <= CACHE_SLOT + 1, "slot index fits the cache");

/* Resolve rule_name into *out, through *cache when it is still current (see DESIGN). */
static int rule_resolve(fdn_limiter_t *l, const char *name, fdn__limiter_rule_cache_t *cache,
                        fdn_limit_rule_t *out)
{
    if (cache != NULL) {
        uint64_t c = atomic_load_explicit(cache, memory_order_relaxed);
        uint64_t s1 = atomic_load_explicit(&l->rules_seq, memory_order_acquire);
        if ((c & CACHE_VALID) != 0 && (c >> 8) == s1) {
            const named_rule_t *r = &l->rules[c & CACHE_SLOT];
            int64_t v[4];
            for (int i = 0; i < 4; i++)
                v[i] = atomic_load_explicit(&r->mirror[i], FDN_SEQ_LD);
            FDN_SEQ_FENCE(memory_order_acquire);
            if (atomic_load_explicit(&l->rules_seq, memory_order_relaxed) == s1) {
                *out = (fdn_limit_rule_t){(fdn_limit_algo_t)v[0], v[1], v[2], v[3]};
                return 0;
            }
        }
    }
    pthread_mutex_lock(&l->rules_mu);
    named_rule_t *r = rule_find_locked(l, name);
    if (r) {
        *out = r->rule;
        if (cache != NULL) {
            /* rules_seq is stable (and even) under rules_mu */
            uint64_t s = atomic_load_explicit(&l->rules_seq, memory_order_relaxed);
            atomic_store_explicit(cache, (s << 8) | CACHE_VALID | (uint64_t)(r - l->rules),
                                  memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

static int check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                       int64_t cost, fdn_limit_result_t *res, fdn__limiter_rule_cache_t *cache,
                       int64_t mono)
{
    if (l == NULL || rule_name == NULL)
        return FDN_EINVAL;
    fdn_limit_rule_t rule;
    int rc = rule_resolve(l, rule_name, cache, &rule);
    if (rc)
        return rc;
    if (identifier == NULL)
        identifier = "";
    size_t nl = strlen(rule_name), il = strlen(identifier);
    if (nl + 1 + il > MAX_KEYLEN)
        return FDN_EINVAL;
    char buf[256];
    char *key = nl + 1 + il <= sizeof(buf) ? buf : fdn__malloc(nl + 1 + il);
    if (!key)
        return FDN_ENOMEM;
    memcpy(key, rule_name, nl);
    key[nl] = ':';
    memcpy(key + nl + 1, identifier, il);
    rc = run_op_v(l, key, nl + 1 + il, &rule, true, mono, cost, FDN__LIMIT_CHECK, res, NULL);
    if (key != buf)
        fdn__free(key);
    return rc;
}

int fdn_limiter_check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                            int64_t cost, fdn_limit_result_t *res)
{
    return check_named(l, rule_name, identifier, cost, res, NULL, FDN__NOW_UNSET);
}

/* The system clock is the one non-manual clock; a manual clock is its own time source. */
static bool same_time_source(const fdn_clock_t *a, const fdn_clock_t *b)
{
    return a == b || (!fdn_clock_is_manual(a) && !fdn_clock_is_manual(b));
}

int fdn__limiter_check_named_cached(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                                    int64_t cost, fdn_limit_result_t *res,
                                    fdn__limiter_rule_cache_t *cache, const fdn_clock_t *clock,
                                    int64_t mono_ns)
{
    int64_t mono = FDN__NOW_UNSET;
    if (l != NULL && mono_ns != FDN__NOW_UNSET && same_time_source(clock, l->clock))
        mono = mono_ns;
    return check_named(l, rule_name, identifier, cost, res, cache, mono);
}

int fdn_limiter_check_entity(fdn_limiter_t *l, const char *entity, const char *operation,
                             int64_t limit, int64_t window_ms, fdn_limit_result_t *res)
{
    if (entity == NULL)
        entity = "";
    if (operation == NULL)
        operation = "";
    size_t el = strlen(entity), ol = strlen(operation);
    if (el + ol + 40 > MAX_KEYLEN)
        return FDN_EINVAL;
    char buf[256];
    size_t cap = el + ol + 40;
    char *key = cap <= sizeof(buf) ? buf : fdn__malloc(cap);
    if (!key)
        return FDN_ENOMEM;
    int n = snprintf(key, cap, "foundation:%zu:", el);
    size_t kl = (size_t)n;
    memcpy(key + kl, entity, el);
    kl += el;
    key[kl++] = ':';
    memcpy(key + kl, operation, ol);
    kl += ol;
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, window_ms, 0};
    int rc = run_op(l, key, kl, &r, 1, FDN__LIMIT_CHECK, res, NULL);
    if (key != buf)
        fdn__free(key);
    return rc;
}

static void service_destroy(void *state)
{
    fdn_limiter_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__limiter_service_ops = {service_start, service_stop, service_health,
                                                    NULL, service_destroy};
