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
 * Key namespaces (include/fdn/limiter.h): keys starting with a byte below
 * FDN_LIMIT_KEY_NS_FIRST_FREE are the library's. Every public key call refuses one from a
 * program (reserved_key: one byte compare) unless the call takes flags and was given
 * FDN_LIMIT_RESERVED_NS (check, check_many, inc_flags, set_flags: the HTTP API and protected
 * execution use those); named-rule and entity checks build their keys here and reach run_op
 * without the test. The test comes before the backend, so memory and Redis refuse alike.
 *
 * Threads: none of its own. Locks: `rules_mu` serialises the writers of the rule table and is
 * never held with a backend lock; no callback runs under any lock.
 *
 * Rule table: an immutable array published with RCU (core/rcu.h), as the registry's table
 * is. A change (set, remove; rare) copies the current table under `rules_mu` with a
 * generation one higher, publishes the copy with a release store and retires the old one
 * after a grace period. Readers (every named check, fdn_limiter_get_rule) take no lock: one
 * read-side section, one acquire load, a search by name. fdn__limiter_check_named_cached
 * keeps a copy of the rule (with its flags and counters) and the generation it was found in
 * in the caller's cache, behind a sequence count (a seqlock whose fields are all atomics), and
 * uses it without a read-side section while `rules_gen` (stored after each publish) still
 * equals that generation, so any rule update or removal applies to the very next check.
 * Generations are unique per limiter (they only grow), so a copy never outlives its rule.
 */
#include <fdn/breaker.h>
#include <fdn/limiter.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/rcu.h"
#include "infra/limiter_int.h"

#define NS_PER_MS     1000000LL
#define MAX_KEYLEN    4096u
#define MAX_RULES     64
#define RULE_NAME_MAX 64
#define RULE_FAIL_FLAGS                                                                            \
    (FDN_LIMIT_RULE_FAIL_LOCAL | FDN_LIMIT_RULE_FAIL_OPEN | FDN_LIMIT_RULE_FAIL_CLOSED)
#define RULE_FLAGS (FDN_LIMIT_RULE_LOCAL | RULE_FAIL_FLAGS)

/* Telemetry (opts.telemetry): counters foundation.rate_limiter.request_allowed and
 * foundation.rate_limiter.request_denied {algorithm} per consuming check (keys are not put in
 * metadata: their cardinality is unbounded). Emitted after the backend returned.
 * The same decisions by rule: the families fdn_rate_limiter_request_allowed_total{rule} and
 * fdn_rate_limiter_request_denied_total{rule} (they supersede the two events' entries in the
 * exposition). A named rule carries its two series handles in the rule table (resolved when
 * the rule is set, under no limiter lock), so a check adds one sharded counter increment (the
 * calling thread's own cache line, no shared atomic) and no lookup; checks with a caller's
 * rule count under rule="(unnamed)". Rules are capped (MAX_RULES live), names are not: the
 * families' cap (DECISION_SERIES) sends later names to the __overflow__ series, counted in
 * fdn_telemetry_series_dropped_total{family}. A removed rule's series stay (a counter series
 * never disappears while the process lives). */
#define DECISION_SERIES 256
#define UNNAMED_RULE    "(unnamed)"

/* A rule's decision counters: [0] allowed, [1] denied (NULL without telemetry). */
typedef struct rule_ctr {
    fdn_counter_t *c[2];
} rule_ctr_t;

typedef struct named_rule {
    char name[RULE_NAME_MAX];
    fdn_limit_rule_t rule;
    unsigned flags; /* FDN_LIMIT_RULE_* */
    rule_ctr_t ctr; /* its decision counters (see Telemetry above) */
} named_rule_t;

/* An immutable rule table (see DESIGN). */
typedef struct rule_table {
    struct rcu_head rcu; /* first: the retire callback casts back */
    uint64_t gen;        /* 1 for the first table of a limiter, +1 per change */
    size_t n;
    named_rule_t rules[];
} rule_table_t;

struct fdn_limiter {
    const fdn__limiter_backend_t *be;
    void *be_self;
    void *mem; /* the in-memory store: be_self, or the Redis backend's local store */
    fdn_clock_t *clock;
    fdn_telemetry_t *telemetry;
    fdn_telemetry_family_t *f_decision[2]; /* allowed, denied (NULL without telemetry) */
    rule_ctr_t unnamed;                    /* checks with a caller's rule */
    _Atomic bool shadow;
    _Atomic bool running;
    _Atomic bool enabled;          /* fdn_limiter_set_enabled */
    fdn__mutex_t rules_mu;         /* serialises rule-table writers */
    _Atomic(rule_table_t *) rules; /* the published table, never NULL */
    _Atomic uint64_t rules_gen;    /* its generation, stored after it is published */
    bool rules_retired;            /* under rules_mu: some table went to fdn__rcu_retire */
};

static int rules_change_locked(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule,
                               unsigned flags, const rule_ctr_t *ctr, bool shared)
    FDN_REQUIRES(l->rules_mu);

/* The decision counters of rule `name` (setup time: a search under the telemetry mutex).
 * Returns 0 or FDN_ENOMEM (a series made before the failure stays in its family, where a
 * retry finds it). */
static int rule_counters(fdn_limiter_t *l, const char *name, rule_ctr_t *out)
{
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        out->c[i] = NULL;
        const char *v[] = {name};
        if (l->f_decision[i] != NULL && rc == 0 &&
            fdn_telemetry_family_counter(l->f_decision[i], &out->c[i], v, 1) == FDN_ENOMEM)
            rc = FDN_ENOMEM;
    }
    return rc;
}

/* Returns 0 or FDN_ENOMEM (the limiter's open fails: no decision counter goes missing). */
static int decision_families(fdn_limiter_t *l)
{
    static const char *const names[2] = {"fdn_rate_limiter_request_allowed_total",
                                         "fdn_rate_limiter_request_denied_total"};
    static const char *const help[2] = {
        "Rate limiter checks allowed, by named rule ((unnamed): a caller-supplied rule).",
        "Rate limiter checks denied (shadow mode included), by named rule ((unnamed): a "
        "caller-supplied rule)."};
    static const char *const label[] = {"rule"};
    for (int i = 0; i < 2; i++) {
        int rc = fdn_telemetry_family(l->telemetry, &l->f_decision[i], names[i], help[i],
                                      FDN_TELEMETRY_COUNTER, label, 1, DECISION_SERIES);
        if (rc == FDN_ENOMEM)
            return rc;
        if (rc != 0)
            l->f_decision[i] = NULL;
    }
    return rule_counters(l, UNNAMED_RULE, &l->unnamed);
}

void fdn__limiter_probes(fdn_limiter_t *l, uint64_t *lookups, uint64_t *probes)
{
    *lookups = *probes = 0;
    if (l != NULL && l->be == &fdn__limiter_mem_backend)
        fdn__limiter_mem_probes(l->be_self, lookups, probes);
}

void fdn__limiter_redis_pipeline_stats(const fdn_limiter_t *l, fdn__redis_pipe_stats_t *out)
{
    *out = (fdn__redis_pipe_stats_t){0, 0, 0, 0, 0, 0};
#ifdef FDN_HAVE_REDIS
    if (l != NULL && l->be == &fdn__limiter_redis_backend)
        fdn__limiter_redis_pipeline_counts(l->be_self, out);
#endif
}

void fdn__limiter_redis_test_depth(fdn_limiter_t *l, uint32_t depth)
{
#ifdef FDN_HAVE_REDIS
    if (l != NULL && l->be == &fdn__limiter_redis_backend)
        fdn__limiter_redis_set_depth(l->be_self, depth);
#else
    (void)l;
    (void)depth;
#endif
}

void fdn__limiter_redis_test_hold(fdn_limiter_t *l, void (*fn)(void *arg), void *arg)
{
#ifdef FDN_HAVE_REDIS
    if (l != NULL && l->be == &fdn__limiter_redis_backend)
        fdn__limiter_redis_set_hold(l->be_self, fn, arg);
#else
    (void)l;
    (void)fn;
    (void)arg;
#endif
}

int fdn_limiter_open(fdn_limiter_t **out, const fdn_limiter_opts_t *opts, fdn_error_t *err)
{
    fdn_limiter_opts_t d = FDN_LIMITER_OPTS_INIT;
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "limiter: out is NULL");
    if (opts == NULL)
        opts = &d;
    if (opts->version < 1 || opts->version > FDN_LIMITER_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "limiter options: version %u not in 1..%u",
                           opts->version, FDN_LIMITER_OPTS_VERSION);
    if (opts->shards == 0 || (opts->shards & (opts->shards - 1)) != 0 || opts->shards > 65536)
        return fdn_err_set(err, FDN_EINVAL, "limiter shards must be a power of two <= 65536");
    if (opts->max_keys == 0)
        return fdn_err_set(err, FDN_EINVAL, "limiter max_keys must be >= 1");
    if (opts->max_keys / opts->shards > FDN__LIMITER_SHARD_KEYS_MAX)
        return fdn_err_set(err, FDN_EINVAL,
                           "limiter max_keys / shards must be <= %u keys per shard (got %u / %u): "
                           "raise shards",
                           FDN__LIMITER_SHARD_KEYS_MAX, opts->max_keys, opts->shards);
    if (fdn__limiter_check_cleanup_interval(opts->cleanup_interval_ms) != 0)
        return fdn_err_set(err, FDN_EINVAL, "limiter cleanup_interval_ms out of range");
    fdn_limit_overflow_t policy = FDN_LIMIT_OVERFLOW_DENY_NEW;
    if (opts->version >= 2) {
        if (opts->overflow_policy != FDN_LIMIT_OVERFLOW_DENY_NEW &&
            opts->overflow_policy != FDN_LIMIT_OVERFLOW_EVICT_LRU)
            return fdn_err_set(err, FDN_EINVAL, "unknown limiter overflow policy %d",
                               (int)opts->overflow_policy);
        policy = opts->overflow_policy;
    }
    fdn_limiter_backend_kind_t kind = FDN_LIMITER_BACKEND_MEMORY;
    if (opts->version >= 3) {
        kind = opts->backend;
        if (kind != FDN_LIMITER_BACKEND_MEMORY && kind != FDN_LIMITER_BACKEND_REDIS)
            return fdn_err_set(err, FDN_EINVAL, "unknown limiter backend %d", (int)kind);
    }
    fdn_limiter_t *l = fdn__calloc(1, sizeof(*l));
    if (!l)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    l->clock = opts->clock;
    l->telemetry = opts->telemetry;
    if (l->telemetry != NULL && decision_families(l) != 0) {
        fdn__free(l);
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    }
    void *m;
    int rc = fdn__limiter_mem_create(
        &m, opts->shards, opts->max_keys, policy, opts->cleanup_interval_ms * NS_PER_MS,
        fdn_clock_mono_ns(opts->clock), fdn_clock_wall_ns(opts->clock));
    if (rc == 0 && opts->version >= 5)
        fdn__limiter_mem_set_identity_quota(m, opts->max_keys_per_identity);
    l->mem = m;
    const fdn__limiter_backend_t *be = &fdn__limiter_mem_backend;
    if (rc == 0 && kind == FDN_LIMITER_BACKEND_REDIS) {
#ifdef FDN_HAVE_REDIS
        void *r;
        /* a version-3 caller's struct ends before pipeline_max */
        uint32_t pipeline_max =
            opts->version >= 4 ? opts->redis.pipeline_max : FDN_LIMITER_REDIS_PIPELINE_DEFAULT;
        rc = fdn__limiter_redis_create(&r, &opts->redis, pipeline_max, m, opts->clock, err);
        if (rc)
            fdn__limiter_mem_backend.destroy(m);
        else {
            m = r;
            be = &fdn__limiter_redis_backend;
        }
#else
        fdn__limiter_mem_backend.destroy(m);
        rc = fdn_err_set(err, FDN_ENOTSUP,
                         "this libfdn was built without the Redis backend (FDN_WITH_REDIS=OFF)");
#endif
    }
    if (rc) {
        fdn__free(l);
        return rc == FDN_ENOMEM ? fdn_err_set(err, rc, "out of memory") : rc;
    }
    rule_table_t *t = fdn__calloc(1, sizeof(*t));
    if (t == NULL || pthread_mutex_init(&l->rules_mu, NULL) != 0) {
        fdn__free(t);
        be->destroy(m);
        fdn__free(l);
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    }
    fdn__rcu_setup();
    t->gen = 1;
    atomic_init(&l->rules, t);
    atomic_init(&l->rules_gen, t->gen);
    l->be = be;
    l->be_self = m;
    atomic_init(&l->shadow, opts->shadow);
    atomic_init(&l->running, true);
    atomic_init(&l->enabled, true);
    static const struct {
        const char *name;
        int64_t period_ms, limit;
    } defaults[] = {
        {"api_calls", 60000, 100}, {"db_queries", 60000, 500}, {"file_operations", 1000, 10}};
    fdn__mutex_lock(&l->rules_mu); /* l is not shared yet, but the writers' rule holds */
    for (size_t i = 0; i < FDN_ARRAY_LEN(defaults); i++) {
        fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, defaults[i].limit, defaults[i].period_ms, 0};
        rule_ctr_t ctr;
        /* l is not shared yet: each replaced table is freed at once */
        if (rule_counters(l, defaults[i].name, &ctr) != 0 ||
            rules_change_locked(l, defaults[i].name, &r, 0, &ctr, false) != 0) {
            fdn__mutex_unlock(&l->rules_mu);
            fdn_limiter_destroy(l);
            return fdn_err_set(err, FDN_ENOMEM, "out of memory");
        }
    }
    fdn__mutex_unlock(&l->rules_mu);
    *out = l;
    return 0;
}

int fdn_limiter_create(fdn_limiter_t **out, const fdn_limiter_opts_t *opts)
{
    return fdn_limiter_open(out, opts, NULL);
}

void fdn_limiter_set_enabled(fdn_limiter_t *l, bool enabled)
{
    if (l)
        atomic_store_explicit(&l->enabled, enabled, memory_order_relaxed);
}

bool fdn_limiter_enabled(const fdn_limiter_t *l)
{
    return l == NULL || atomic_load_explicit(&l->enabled, memory_order_relaxed);
}

int fdn_limiter_set_max_keys_per_identity(fdn_limiter_t *l, uint32_t max_keys)
{
    if (l == NULL)
        return FDN_EINVAL;
    fdn__limiter_mem_set_identity_quota(l->mem, max_keys);
    return 0;
}

/* A backend's since_refusal_ns (a monotonic time, see limiter_int.h) made an age. */
static int64_t refusal_age_of(fdn_limiter_t *l, int64_t at)
{
    int64_t age;
    if (at == 0)
        return -1;
    /* a manual clock may sit anywhere in int64: the age stops at INT64_MAX */
    if (__builtin_sub_overflow(fdn_clock_mono_ns(l->clock), at, &age))
        age = at < 0 ? INT64_MAX : 0;
    return age < 0 ? 0 : age;
}

static void refusal_age(fdn_limiter_t *l, fdn_limiter_backend_status_t *out)
{
    out->since_refusal_ns = refusal_age_of(l, out->since_refusal_ns);
}

/* fdn_limiter_refusal_age_ns and fdn_limiter_backend_available read the one or two fields
 * they answer with, not the backend's whole status (whose pass over the memory store's shards,
 * summing key and refusal counts, is most of its cost: ~0.9 k instructions with 64 shards);
 * GET /health's two limiter checks call them on every request. */
int64_t fdn_limiter_refusal_age_ns(fdn_limiter_t *l)
{
    if (l == NULL)
        return -1;
    int64_t at;
    if (l->be == &fdn__limiter_mem_backend) {
        at = fdn__limiter_mem_last_refusal(l->be_self);
#ifdef FDN_HAVE_REDIS
    } else if (l->be == &fdn__limiter_redis_backend) {
        at = fdn__limiter_redis_last_refusal(l->be_self);
#endif
    } else { /* (no other backend today) */
        fdn_limiter_backend_status_t st;
        l->be->status(l->be_self, &st);
        at = st.since_refusal_ns;
    }
    return refusal_age_of(l, at);
}

bool fdn_limiter_backend_available(fdn_limiter_t *l)
{
    if (l == NULL)
        return false;
    if (l->be == &fdn__limiter_mem_backend)
        return true;
#ifdef FDN_HAVE_REDIS
    if (l->be == &fdn__limiter_redis_backend)
        return fdn__limiter_redis_available(l->be_self);
#endif
    fdn_limiter_backend_status_t st; /* (no other backend today) */
    l->be->status(l->be_self, &st);
    return st.connected && st.breaker_state == FDN_BREAKER_CLOSED;
}

int fdn_limiter_backend_status(fdn_limiter_t *l, fdn_limiter_backend_status_t *out)
{
    if (l == NULL || out == NULL)
        return FDN_EINVAL;
    l->be->status(l->be_self, out);
    refusal_age(l, out);
    return 0;
}

int fdn__limiter_status_evictions(fdn_limiter_t *l, fdn_limiter_backend_status_t *out,
                                  uint64_t *evictions)
{
    if (l == NULL || out == NULL || evictions == NULL)
        return FDN_EINVAL;
    if (l->be == &fdn__limiter_mem_backend) {
        fdn__limiter_mem_status_evictions(l->be_self, out, evictions);
    } else {
        fdn_limiter_stats_t ls;
        l->be->stats(l->be_self, &ls);
        *evictions = ls.evictions;
        l->be->status(l->be_self, out);
    }
    refusal_age(l, out);
    return 0;
}

const char *fdn_limiter_backend_name(fdn_limiter_backend_kind_t b)
{
    switch (b) {
    case FDN_LIMITER_BACKEND_MEMORY:
        return "memory";
    case FDN_LIMITER_BACKEND_REDIS:
        return "redis";
    }
    return "unknown";
}

static const char *const POLICY_NAMES[] = {"local", "fail_open", "fail_closed"};

const char *fdn_limit_failure_policy_name(fdn_limit_failure_policy_t p)
{
    return (unsigned)p < FDN_ARRAY_LEN(POLICY_NAMES) ? POLICY_NAMES[p] : "unknown";
}

int fdn_limit_failure_policy_parse(const char *s, fdn_limit_failure_policy_t *out)
{
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    for (size_t i = 0; i < FDN_ARRAY_LEN(POLICY_NAMES); i++)
        if (strcmp(s, POLICY_NAMES[i]) == 0) {
            *out = (fdn_limit_failure_policy_t)i;
            return 0;
        }
    return FDN_EINVAL;
}

void fdn_limiter_destroy(fdn_limiter_t *l)
{
    if (l == NULL)
        return;
    l->be->destroy(l->be_self);
    if (l->rules_retired)
        fdn__rcu_barrier(); /* the retired tables are freed before l goes */
    fdn__free(atomic_load_explicit(&l->rules, memory_order_relaxed));
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

/* A key in a library namespace (its first byte below FDN_LIMIT_KEY_NS_FIRST_FREE: protect,
 * HTTP, named rule, entity; include/fdn/limiter.h): a program's key call refuses it unless told
 * FDN_LIMIT_RESERVED_NS, so no program can read, spend, reset or poison the library's cells.
 * The NULL and length tests are op_valid's own (the compiler merges them where both are
 * inlined), so the namespace costs one byte compare on a call's path. */
static inline bool reserved_key(const char *key, size_t keylen)
{
    return FDN_UNLIKELY(key != NULL && keylen > 0 &&
                        (unsigned char)key[0] < FDN_LIMIT_KEY_NS_FIRST_FREE);
}

/* reserved_key of a key op_valid accepted (not NULL, not empty): the compare alone. */
static inline bool reserved_valid_key(const char *key)
{
    return FDN_UNLIKELY((unsigned char)key[0] < FDN_LIMIT_KEY_NS_FIRST_FREE);
}

/* What each namespace byte belongs to, for fdn_limit_key_validate's message. */
static const char *const NS_OWNER[FDN_LIMIT_KEY_NS_FIRST_FREE] = {
    "fdn_execute_protected's inline rules (FDN_LIMIT_KEY_NS_PROTECT)",
    "the HTTP API's keys (FDN_LIMIT_KEY_NS_HTTP)",
    "named rules (FDN_LIMIT_KEY_NS_RULE)",
    "fdn_limiter_check_entity (FDN_LIMIT_KEY_NS_ENTITY)",
};

int fdn_limit_key_validate(const char *key, size_t keylen, unsigned flags, fdn_error_t *err)
{
    if (flags & ~(FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS))
        return fdn_err_set(err, FDN_EINVAL, "unknown limiter key flags 0x%x",
                           flags & ~(FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS));
    if (key == NULL)
        return fdn_err_set(err, FDN_EINVAL, "limiter key is NULL");
    if (keylen == 0 || keylen > MAX_KEYLEN)
        return fdn_err_set(err, FDN_EINVAL, "limiter key must be 1..%u bytes (got %zu)", MAX_KEYLEN,
                           keylen);
    if (reserved_key(key, keylen) && !(flags & FDN_LIMIT_RESERVED_NS))
        return fdn_err_set(err, FDN_EINVAL,
                           "limiter key starts with byte 0x%02x, reserved for %s: a program's "
                           "key must start with a byte >= 0x%02x (FDN_LIMIT_KEY_NS_FIRST_FREE)",
                           (unsigned char)key[0], NS_OWNER[(unsigned char)key[0]],
                           FDN_LIMIT_KEY_NS_FIRST_FREE);
    return 0;
}

/* rule_ok: the rule comes from the rule table, which only holds validated rules.
 * mono: the monotonic time of this call already read by the caller on the limiter's own
 * time source, or FDN__NOW_UNSET. */
static bool op_valid(const char *key, size_t keylen, const fdn_limit_rule_t *rule, bool rule_ok,
                     int64_t cost)
{
    return key != NULL && keylen > 0 && keylen <= MAX_KEYLEN && cost >= 1 &&
           cost <= FDN__LIMIT_MAX &&
           (rule_ok || (rule != NULL && fdn__limit_rule_fault(rule) == FDN__LIMIT_RULE_OK));
}

/* Enforcement off: allowed, nothing counted or stored. */
static int op_disabled(const fdn_limit_rule_t *rule, fdn__limit_op_t op, fdn_limit_result_t *res)
{
    if (res != NULL) {
        int64_t cap = (rule->algo == FDN_LIMIT_TOKEN_BUCKET || rule->algo == FDN_LIMIT_GCRA) &&
                              rule->burst > 0
                          ? rule->burst
                          : rule->limit;
        *res = (fdn_limit_result_t){.allowed = true, .limit = cap, .remaining = cap};
    }
    return op == FDN__LIMIT_CANCEL ? FDN_ENOENT : 0;
}

/* The caller's answer from the backend's: shadow mode, telemetry, FDN_ERATE_LIMITED. */
static int op_finish(fdn_limiter_t *l, const fdn_limit_rule_t *rule, fdn__limit_op_t op, int rc,
                     fdn_limit_result_t *res, const rule_ctr_t *ctr)
{
    if ((rc == FDN_ELIMITER || rc == FDN_ENOSPC) && op == FDN__LIMIT_CHECK &&
        atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
        /* dry run: the key cannot be stored, but nothing is enforced */
        res->allowed = true;
        res->shadow_denied = true;
        return 0;
    }
    if (rc)
        return rc;
    if (op != FDN__LIMIT_CHECK) {
        if (res->allowed || op == FDN__LIMIT_CANCEL)
            return 0;
        /* a peek answers as the check would: in shadow mode a denial is reported, not
         * enforced (so "peek first" does not enforce either); peeks are not counted */
        if (op == FDN__LIMIT_PEEK && atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
            res->allowed = true;
            res->shadow_denied = true;
            return 0;
        }
        return FDN_ERATE_LIMITED;
    }
    if (l->telemetry) {
        fdn_telemetry_meta_t meta[1] = {{"algorithm", fdn_limit_algo_name(rule->algo)}};
        fdn_telemetry_emit_counter(l->telemetry,
                                   res->allowed ? "foundation.rate_limiter.request_allowed"
                                                : "foundation.rate_limiter.request_denied",
                                   meta, 1);
        /* ctr NULL: a caller's rule (resolved here, off the path without telemetry) */
        fdn_counter_inc((ctr != NULL ? ctr : &l->unnamed)->c[res->allowed ? 0 : 1]);
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

/* The backend's answer to op (before op_finish: res->allowed is the backend's own decision,
 * not shadow mode's), *done false; or, *done true, the final code of an op that never reached
 * the backend (invalid, stopped, disabled). */
static inline __attribute__((always_inline)) int
run_apply(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
          unsigned rule_flags, bool rule_ok, int64_t mono, int64_t cost, fdn__limit_op_t op,
          fdn_limit_result_t *res, fdn_limit_reservation_t *rsv, bool *done)
{
    *done = true;
    if (l == NULL || !op_valid(key, keylen, rule, rule_ok, cost))
        return FDN_EINVAL;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->running, memory_order_acquire)))
        return FDN_EUNAVAILABLE;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->enabled, memory_order_relaxed)))
        return op_disabled(rule, op, res);
    *done = false;
    fdn__limit_now_t now;
    now.clock = l->clock;
    if (rule->algo == FDN_LIMIT_FIXED_WINDOW) {
        now.wall_ns = fdn_clock_wall_ns(l->clock);
        now.mono_ns = FDN__NOW_UNSET;
    } else {
        now.mono_ns = mono != FDN__NOW_UNSET ? mono : fdn_clock_mono_ns(l->clock);
        now.wall_ns = FDN__NOW_UNSET;
    }
    return l->be->apply(l->be_self, key, keylen, rule, rule_flags, cost, op, &now, res, rsv);
}

static int run_op_v(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    const rule_ctr_t *ctr, unsigned rule_flags, bool rule_ok, int64_t mono,
                    int64_t cost, fdn__limit_op_t op, fdn_limit_result_t *res,
                    fdn_limit_reservation_t *rsv)
{
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    bool done;
    int rc = run_apply(l, key, keylen, rule, rule_flags, rule_ok, mono, cost, op, res, rsv, &done);
    return done ? rc : op_finish(l, rule, op, rc, res, ctr);
}

static int run_op(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                  int64_t cost, fdn__limit_op_t op, fdn_limit_result_t *res,
                  fdn_limit_reservation_t *rsv)
{
    return run_op_v(l, key, keylen, rule, NULL, 0, false, FDN__NOW_UNSET, cost, op, res, rsv);
}

int fdn_limiter_check(fdn_limiter_t *l, const char *key, size_t keylen,
                      const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                      fdn_limit_result_t *res)
{
    if (flags & ~(FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS))
        return FDN_EINVAL;
    if (reserved_key(key, keylen) && !(flags & FDN_LIMIT_RESERVED_NS))
        return FDN_EINVAL;
    return run_op(l, key, keylen, rule, cost,
                  (flags & FDN_LIMIT_PEEK) ? FDN__LIMIT_PEEK : FDN__LIMIT_CHECK, res, NULL);
}

int fdn_limiter_check_many(fdn_limiter_t *l, fdn_limit_request_t *reqs, size_t n)
{
    if (l == NULL || reqs == NULL || n == 0 || n > FDN_LIMIT_MANY_MAX)
        return FDN_EINVAL;
    bool bad = false; /* every request is checked before any is run: bad input changes nothing */
    for (size_t i = 0; i < n; i++) {
        const fdn_limit_request_t *q = &reqs[i];
        reqs[i].rc = (q->flags & ~(FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS)) || q->rule == NULL ||
                             !op_valid(q->key, q->keylen, q->rule, false, q->cost) ||
                             (reserved_valid_key(q->key) && !(q->flags & FDN_LIMIT_RESERVED_NS))
                         ? FDN_EINVAL
                         : 0;
        bad |= reqs[i].rc != 0;
    }
    if (bad)
        return FDN_EINVAL;
    int stopped = !atomic_load_explicit(&l->running, memory_order_acquire);
    bool off = !atomic_load_explicit(&l->enabled, memory_order_relaxed);
    fdn__limit_item_t stack[8];
    fdn__limit_item_t *it = n <= 8 ? stack : fdn__malloc(n * sizeof(*it));
    if (!stopped && !off && it == NULL)
        return FDN_ENOMEM;
    if (!stopped && !off) {
        fdn__limit_now_t now = {fdn_clock_mono_ns(l->clock), fdn_clock_wall_ns(l->clock), l->clock};
        for (size_t i = 0; i < n; i++) {
            fdn_limit_request_t *q = &reqs[i];
            it[i] = (fdn__limit_item_t){
                q->key,  q->keylen,
                q->rule, 0,
                q->cost, (q->flags & FDN_LIMIT_PEEK) ? FDN__LIMIT_PEEK : FDN__LIMIT_CHECK,
                &q->res, NULL,
                0};
        }
        if (l->be->apply_many != NULL) {
            l->be->apply_many(l->be_self, it, n, &now);
        } else {
            for (size_t i = 0; i < n; i++)
                it[i].rc = l->be->apply(l->be_self, it[i].key, it[i].keylen, it[i].rule, 0,
                                        it[i].cost, it[i].op, &now, it[i].res, NULL);
        }
    }
    int out = 0;
    for (size_t i = 0; i < n; i++) {
        fdn_limit_request_t *q = &reqs[i];
        fdn__limit_op_t op = (q->flags & FDN_LIMIT_PEEK) ? FDN__LIMIT_PEEK : FDN__LIMIT_CHECK;
        if (stopped)
            q->rc = FDN_EUNAVAILABLE;
        else if (off)
            q->rc = op_disabled(q->rule, op, &q->res);
        else
            q->rc = op_finish(l, q->rule, op, it[i].rc, &q->res, NULL);
        if (q->rc != 0 && (out == 0 || (out == FDN_ERATE_LIMITED && q->rc != FDN_ERATE_LIMITED)))
            out = q->rc;
    }
    if (it != stack)
        fdn__free(it);
    return out;
}

/* inc and set: no decision, no telemetry, no shadow (nothing is enforced). flags: 0 or
 * FDN_LIMIT_RESERVED_NS. */
static int count_op(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    int64_t value, fdn__limit_op_t op, unsigned flags, fdn_limit_result_t *res)
{
    bool ok_value = op == FDN__LIMIT_SET ? value >= 0 && value <= FDN__LIMIT_MAX
                                         : value >= 1 && value <= FDN__LIMIT_MAX;
    if (l == NULL || rule == NULL || !ok_value || !op_valid(key, keylen, rule, false, 1) ||
        (reserved_valid_key(key) && !(flags & FDN_LIMIT_RESERVED_NS)))
        return FDN_EINVAL;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->running, memory_order_acquire)))
        return FDN_EUNAVAILABLE;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->enabled, memory_order_relaxed)))
        return op_disabled(rule, op, res);
    fdn__limit_now_t now = {FDN__NOW_UNSET, FDN__NOW_UNSET, l->clock};
    if (rule->algo == FDN_LIMIT_FIXED_WINDOW)
        now.wall_ns = fdn_clock_wall_ns(l->clock);
    else
        now.mono_ns = fdn_clock_mono_ns(l->clock);
    fdn_limit_result_t tmp;
    int rc =
        l->be->apply(l->be_self, key, keylen, rule, 0, value, op, &now, res ? res : &tmp, NULL);
    return rc == FDN_ENOENT ? 0 : rc;
}

int fdn_limiter_inc(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    int64_t cost, fdn_limit_result_t *res)
{
    return count_op(l, key, keylen, rule, cost, FDN__LIMIT_INC, 0, res);
}

int fdn_limiter_inc_flags(fdn_limiter_t *l, const char *key, size_t keylen,
                          const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                          fdn_limit_result_t *res)
{
    if (flags & ~FDN_LIMIT_RESERVED_NS)
        return FDN_EINVAL;
    return count_op(l, key, keylen, rule, cost, FDN__LIMIT_INC, flags, res);
}

int fdn_limiter_set(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    int64_t count, fdn_limit_result_t *res)
{
    return count_op(l, key, keylen, rule, count, FDN__LIMIT_SET, 0, res);
}

int fdn_limiter_set_flags(fdn_limiter_t *l, const char *key, size_t keylen,
                          const fdn_limit_rule_t *rule, int64_t count, unsigned flags,
                          fdn_limit_result_t *res)
{
    if (flags & ~FDN_LIMIT_RESERVED_NS)
        return FDN_EINVAL;
    return count_op(l, key, keylen, rule, count, FDN__LIMIT_SET, flags, res);
}

int fdn_limiter_get(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    fdn_limit_result_t *res)
{
    if (res == NULL)
        return FDN_EINVAL;
    /* without FDN_LIMIT_RESERVED_NS: a program reads no library cell (the HTTP API's get
     * peeks with the flag itself) */
    int rc = fdn_limiter_check(l, key, keylen, rule, 1, FDN_LIMIT_PEEK, res);
    return rc == FDN_ERATE_LIMITED ? 0 : rc; /* a read: the count is the answer */
}

int fdn_limiter_check_rate(fdn_limiter_t *l, const char *key, int64_t scale_ms, int64_t limit,
                           fdn_limit_result_t *res)
{
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, scale_ms, 0};
    if (key == NULL || (unsigned char)key[0] < FDN_LIMIT_KEY_NS_FIRST_FREE) /* "" too */
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
    if (reserved_key(key, keylen))
        return FDN_EINVAL;
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    bool done;
    int rc = run_apply(l, key, keylen, rule, 0, false, FDN__NOW_UNSET, cost, FDN__LIMIT_CHECK, res,
                       rsv, &done);
    if (done) /* invalid, stopped or disabled: nothing taken */
        return rc;
    /* The backend took the cost when it allowed the call, and a fixed window also when it
     * denied it (as a check does), shadow mode or not: shadow mode only changes the answer
     * (op_finish), so a shadow denial on a fixed window is a reservation too. A refused new
     * key (FDN_ELIMITER, FDN_ENOSPC, even when shadow mode then allows the call) and any other
     * failure took nothing, and so did a denial the backend answered without counting it (the
     * Redis deny cache: FDN__RSV_NOTHING_TAKEN). */
    if (rsv->cost == FDN__RSV_NOTHING_TAKEN)
        rsv->cost = 0;
    else if (rc == 0 && (res->allowed || rule->algo == FDN_LIMIT_FIXED_WINDOW)) {
        rsv->cost = cost;
        rsv->active = true;
    }
    return op_finish(l, rule, FDN__LIMIT_CHECK, rc, res, NULL);
}

int fdn_limiter_cancel(fdn_limiter_t *l, const char *key, size_t keylen,
                       const fdn_limit_rule_t *rule, fdn_limit_reservation_t *rsv)
{
    if (rsv == NULL || reserved_key(key, keylen))
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
    if (l == NULL || key == NULL || keylen == 0 || keylen > MAX_KEYLEN ||
        (unsigned char)key[0] < FDN_LIMIT_KEY_NS_FIRST_FREE)
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

int fdn__limiter_check_cleanup_interval(int64_t ms)
{
    return ms <= 0 || ms > INT64_MAX / NS_PER_MS / 4 ? FDN_EINVAL : 0;
}

int fdn_limiter_set_cleanup_interval(fdn_limiter_t *l, int64_t ms)
{
    if (l == NULL || fdn__limiter_check_cleanup_interval(ms) != 0)
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

/* The slot of name in t, or t->n. */
static size_t rule_index(const rule_table_t *t, const char *name)
{
    size_t i = 0;
    while (i < t->n && strcmp(t->rules[i].name, name) != 0)
        i++;
    return i;
}

static void rule_table_free_cb(struct rcu_head *head)
{
    fdn__rcu_retired();
    fdn__free((rule_table_t *)(void *)head);
    fdn__rcu_done();
}

/*
 * rules_mu held (or l not shared yet): publish a copy of the table with name set to *rule, or
 * removed when rule is NULL. The old table is retired after a grace period when `shared`,
 * freed at once otherwise. Returns 0, FDN_ENOENT (remove of an absent name) or FDN_ENOMEM
 * (no memory, or MAX_RULES names already); the table is unchanged on error.
 */
static int rules_change_locked(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule,
                               unsigned flags, const rule_ctr_t *ctr, bool shared)
    FDN_REQUIRES(l->rules_mu)
{
    rule_table_t *old = atomic_load_explicit(&l->rules, memory_order_relaxed);
    size_t at = rule_index(old, name);
    bool found = at < old->n;
    if (rule == NULL && !found)
        return FDN_ENOENT;
    if (rule != NULL && !found && old->n == MAX_RULES)
        return FDN_ENOMEM;
    size_t n = rule == NULL ? old->n - 1 : (found ? old->n : old->n + 1);
    rule_table_t *t = fdn__malloc(sizeof(*t) + n * sizeof(t->rules[0]));
    if (t == NULL)
        return FDN_ENOMEM;
    memset(&t->rcu, 0, sizeof(t->rcu));
    t->gen = old->gen + 1;
    t->n = 0;
    for (size_t i = 0; i < old->n; i++)
        if (i != at || rule != NULL)
            t->rules[t->n++] = old->rules[i];
    if (rule != NULL) {
        if (!found) {
            at = t->n++;
            memcpy(t->rules[at].name, name, strlen(name) + 1);
        }
        t->rules[at].rule = *rule;
        t->rules[at].flags = flags;
        t->rules[at].ctr = *ctr;
    }
    FDN_ASSERT(t->n <= MAX_RULES && t->gen > old->gen);
    atomic_store_explicit(&l->rules, t, memory_order_release);
    atomic_store_explicit(&l->rules_gen, t->gen, memory_order_release);
    if (shared) {
        l->rules_retired = true;
        fdn__rcu_retire(&old->rcu, rule_table_free_cb);
    } else {
        fdn__free(old);
    }
    return 0;
}

int fdn_limiter_set_rule(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule)
{
    return fdn_limiter_set_rule_flags(l, name, rule, 0);
}

int fdn_limiter_set_rule_flags(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule,
                               unsigned flags)
{
    if (l == NULL || name == NULL || name[0] == '\0' || strlen(name) >= RULE_NAME_MAX ||
        strchr(name, ':') != NULL || fdn_limit_rule_validate(rule, NULL) != 0 ||
        (flags & ~RULE_FLAGS) != 0)
        return FDN_EINVAL;
    unsigned fail = flags & RULE_FAIL_FLAGS;
    if ((fail & (fail - 1)) != 0) /* two failure policies */
        return FDN_EINVAL;
    rule_ctr_t ctr; /* resolved before rules_mu: no telemetry lock under it */
    if (rule_counters(l, name, &ctr) != 0)
        return FDN_ENOMEM;
    fdn__mutex_lock(&l->rules_mu);
    int rc = rules_change_locked(l, name, rule, flags, &ctr, true);
    fdn__mutex_unlock(&l->rules_mu);
    return rc;
}

int fdn_limiter_remove_rule(fdn_limiter_t *l, const char *name)
{
    if (l == NULL || name == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&l->rules_mu);
    int rc = rules_change_locked(l, name, NULL, 0, NULL, true);
    fdn__mutex_unlock(&l->rules_mu);
    return rc;
}

void fdn__limiter_rule_cache_init(fdn__limiter_rule_cache_t *cache)
{
    atomic_init(&cache->seq, 0);
    atomic_init(&cache->gen, 0);
    atomic_init(&cache->limit, 0);
    atomic_init(&cache->period_ms, 0);
    atomic_init(&cache->burst, 0);
    atomic_init(&cache->algo, 0);
    atomic_init(&cache->flags, 0);
    atomic_init(&cache->ctr[0], NULL);
    atomic_init(&cache->ctr[1], NULL);
}

/* The cached copy, when it is whole and of the published generation (see limiter_int.h). Every
 * field is an atomic, so a copy racing with a filler is only ever discarded, never a race. */
static bool rule_cache_read(fdn_limiter_t *l, fdn__limiter_rule_cache_t *cache,
                            fdn_limit_rule_t *out, unsigned *flags, rule_ctr_t *ctr)
{
    uint64_t s1 = atomic_load_explicit(&cache->seq, memory_order_acquire);
    if (s1 == 0 || (s1 & 1) != 0)
        return false;
    uint64_t gen = atomic_load_explicit(&cache->gen, FDN_SEQ_LD);
    fdn_limit_rule_t r;
    r.algo = (fdn_limit_algo_t)atomic_load_explicit(&cache->algo, FDN_SEQ_LD);
    r.limit = atomic_load_explicit(&cache->limit, FDN_SEQ_LD);
    r.period_ms = atomic_load_explicit(&cache->period_ms, FDN_SEQ_LD);
    r.burst = atomic_load_explicit(&cache->burst, FDN_SEQ_LD);
    unsigned fl = atomic_load_explicit(&cache->flags, FDN_SEQ_LD);
    void *c0 = atomic_load_explicit(&cache->ctr[0], FDN_SEQ_LD);
    void *c1 = atomic_load_explicit(&cache->ctr[1], FDN_SEQ_LD);
    FDN_SEQ_FENCE(memory_order_acquire); /* the loads above before the second seq load */
    if (atomic_load_explicit(&cache->seq, memory_order_relaxed) != s1 ||
        gen != atomic_load_explicit(&l->rules_gen, memory_order_acquire))
        return false;
    *out = r;
    *flags = fl;
    ctr->c[0] = c0;
    ctr->c[1] = c1;
    return true;
}

/* Fill the cache with rule slot i of table t (read inside a read-side section). A cache
 * another caller is filling is left to it. */
static void rule_cache_fill(fdn__limiter_rule_cache_t *cache, const rule_table_t *t, size_t i)
{
    uint64_t s = atomic_load_explicit(&cache->seq, memory_order_relaxed);
    if ((s & 1) != 0 || !atomic_compare_exchange_strong_explicit(
                            &cache->seq, &s, s + 1, memory_order_acquire, memory_order_relaxed))
        return;
    FDN_SEQ_FENCE(memory_order_release); /* odd before any field changes */
    const named_rule_t *nr = &t->rules[i];
    atomic_store_explicit(&cache->gen, t->gen, FDN_SEQ_ST);
    atomic_store_explicit(&cache->algo, (uint32_t)nr->rule.algo, FDN_SEQ_ST);
    atomic_store_explicit(&cache->limit, nr->rule.limit, FDN_SEQ_ST);
    atomic_store_explicit(&cache->period_ms, nr->rule.period_ms, FDN_SEQ_ST);
    atomic_store_explicit(&cache->burst, nr->rule.burst, FDN_SEQ_ST);
    atomic_store_explicit(&cache->flags, nr->flags, FDN_SEQ_ST);
    atomic_store_explicit(&cache->ctr[0], (void *)nr->ctr.c[0], FDN_SEQ_ST);
    atomic_store_explicit(&cache->ctr[1], (void *)nr->ctr.c[1], FDN_SEQ_ST);
    atomic_store_explicit(&cache->seq, s + 2, memory_order_release);
}

/* Resolve name into *out, through *cache (may be NULL) when it is still current (DESIGN). */
static int rule_resolve(fdn_limiter_t *l, const char *name, fdn__limiter_rule_cache_t *cache,
                        fdn_limit_rule_t *out, unsigned *flags, rule_ctr_t *ctr)
{
    if (cache != NULL && flags != NULL && ctr != NULL && rule_cache_read(l, cache, out, flags, ctr))
        return 0;
    int rc = FDN_ENOENT;
    fdn__rcu_read_begin();
    const rule_table_t *t = atomic_load_explicit(&l->rules, memory_order_acquire);
    size_t i = rule_index(t, name);
    if (i < t->n) {
        *out = t->rules[i].rule;
        if (flags != NULL)
            *flags = t->rules[i].flags;
        if (ctr != NULL)
            *ctr = t->rules[i].ctr; /* the handles outlive the table (telemetry owns them) */
        if (cache != NULL)
            rule_cache_fill(cache, t, i);
        rc = 0;
    }
    fdn__rcu_read_end();
    return rc;
}

int fdn_limiter_get_rule(fdn_limiter_t *l, const char *name, fdn_limit_rule_t *out)
{
    if (l == NULL || name == NULL || out == NULL)
        return FDN_EINVAL;
    return rule_resolve(l, name, NULL, out, NULL, NULL);
}

static int check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                       int64_t cost, fdn_limit_result_t *res, fdn__limiter_rule_cache_t *cache,
                       int64_t mono)
{
    if (l == NULL || rule_name == NULL)
        return FDN_EINVAL;
    fdn_limit_rule_t rule;
    unsigned flags = 0;
    rule_ctr_t ctr;
    int rc = rule_resolve(l, rule_name, cache, &rule, &flags, &ctr);
    if (rc)
        return rc;
    if (identifier == NULL)
        identifier = "";
    /* "\x02<rule>:<identifier>" (FDN_LIMIT_KEY_NS_RULE; names hold no ':') */
    size_t nl = strlen(rule_name), il = strlen(identifier), kl = 1 + nl + 1 + il;
    if (kl > MAX_KEYLEN)
        return FDN_EINVAL;
    char buf[256];
    char *key = kl <= sizeof(buf) ? buf : fdn__malloc(kl);
    if (!key)
        return FDN_ENOMEM;
    key[0] = FDN_LIMIT_KEY_NS_RULE;
    memcpy(key + 1, rule_name, nl);
    key[1 + nl] = ':';
    memcpy(key + 2 + nl, identifier, il);
    rc = run_op_v(l, key, kl, &rule, &ctr, flags, true, mono, cost, FDN__LIMIT_CHECK, res, NULL);
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
    int n = snprintf(key, cap, "%cfoundation:%zu:", FDN_LIMIT_KEY_NS_ENTITY, el);
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

int fdn_limiter_top_keys(fdn_limiter_t *l, fdn_limit_key_info_t *out, size_t cap, size_t *out_n,
                         uint64_t *scanned)
{
    if (l == NULL || out_n == NULL || (out == NULL && cap > 0))
        return FDN_EINVAL;
    fdn__limit_now_t now = {FDN__NOW_UNSET, FDN__NOW_UNSET, l->clock};
    *out_n = fdn__limiter_mem_top(l->mem, &now, out, cap, FDN_LIMITER_TOP_SCAN_MAX, scanned);
    return 0;
}

static void service_destroy(void *state)
{
    fdn_limiter_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__limiter_service_ops = {service_start, service_stop, service_health,
                                                    NULL, service_destroy};
