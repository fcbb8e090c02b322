/* Private limiter interface: the storage backend vtable and the in-memory store
 * (limiter_store.c), the cached named-rule check used by protected execution, the probe
 * counter tests read, and the supervision hooks. The per-key arithmetic itself is pure and
 * lives in logic/limit_algo.h. */
#ifndef FDN_INFRA_LIMITER_INT_H
#define FDN_INFRA_LIMITER_INT_H

#include "core/supervisor_int.h"

#include <fdn/limiter.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "logic/limit_algo.h"

/* Time of one operation: monotonic ns (buckets, sliding window) and wall ns (fixed window).
 * A check reads only the clock its algorithm needs; the other is FDN__NOW_UNSET and a backend
 * that needs it (sweeping) reads it from `clock`. */
#define FDN__NOW_UNSET INT64_MIN
typedef struct fdn__limit_now {
    int64_t mono_ns;
    int64_t wall_ns;
    fdn_clock_t *clock;
} fdn__limit_now_t;

/*
 * Storage backend (memory now; a Redis backend would run the same per-key arithmetic,
 * logic/limit_algo.h, in a server-side script). Every function is thread-safe.
 *  apply: run op for key under rule (rule_flags: FDN_LIMIT_RULE_* of a named rule, 0
 *         otherwise; FDN_LIMIT_RULE_LOCAL keeps the key in this process); fills res (and rsv->epoch
 * for CHECK); returns 0 or a negative code (FDN_ENOMEM, FDN_ENOENT for a CANCEL with nothing to
 * give back, FDN_ELIMITER for a new key refused by a full store; res is filled then). The
 * allowed/denied decision is res->allowed, not the return code. forget: drop a key (FDN_ENOENT if
 * absent). sweep: drop expired keys, return how many. set_interval: how often apply sweeps on its
 * own (ns; a backend whose keys expire by themselves ignores it). status: the backend's state for
 * health and metrics, with since_refusal_ns holding the monotonic time of the last refusal (0:
 * never), which fdn_limiter_backend_status turns into an age on the limiter's clock. apply_many
 * (version >= 2; may be NULL: the limiter runs apply for each item): run items[0..n) in order, each
 * as apply would, its return code in items[i].rc; a backend with round trips sends them together
 * (Redis: one pipeline). A CHECK with rsv that a backend answers without taking what the
 * algorithm would take (the Redis deny cache answering a fixed-window denial) sets rsv->cost to
 * FDN__RSV_NOTHING_TAKEN, so that fdn_limiter_reserve leaves the reservation inactive.
 */
#define FDN__RSV_NOTHING_TAKEN       INT64_C(-1)
#define FDN__LIMITER_BACKEND_VERSION 2

/* One operation of apply_many. */
typedef struct fdn__limit_item {
    const char *key;
    size_t keylen;
    const fdn_limit_rule_t *rule;
    unsigned rule_flags;
    int64_t cost;
    fdn__limit_op_t op;
    fdn_limit_result_t *res;      /* never NULL */
    fdn_limit_reservation_t *rsv; /* may be NULL */
    int rc;                       /* out: what apply would return */
} fdn__limit_item_t;

typedef struct fdn__limiter_backend {
    uint32_t version; /* FDN__LIMITER_BACKEND_VERSION: functions are only appended */
    int (*apply)(void *self, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                 unsigned rule_flags, int64_t cost, fdn__limit_op_t op,
                 const fdn__limit_now_t *now, fdn_limit_result_t *res,
                 fdn_limit_reservation_t *rsv);
    int (*forget)(void *self, const char *key, size_t keylen);
    size_t (*sweep)(void *self, const fdn__limit_now_t *now);
    void (*stats)(void *self, fdn_limiter_stats_t *out);
    void (*set_interval)(void *self, int64_t interval_ns);
    void (*status)(void *self, fdn_limiter_backend_status_t *out);
    void (*destroy)(void *self);
    void (*apply_many)(void *self, fdn__limit_item_t *items, size_t n, const fdn__limit_now_t *now);
} fdn__limiter_backend_t;

/* The most keys one shard of the in-memory store holds (max_keys / shards): its open-addressing
 * table (at most 5/8 full) then never needs more than its largest size, 2^30 slots, and always
 * keeps a free slot that ends every probe run. */
#define FDN__LIMITER_SHARD_KEYS_MAX (1u << 29)

/* The in-memory store (limiter_store.c): `nshards` (a power of two) shards of at most
 * max(max_keys / nshards, 1) keys each (max_keys / nshards <= FDN__LIMITER_SHARD_KEYS_MAX),
 * `policy` when a shard is full, a sweep every interval_ns from (mono_ns, wall_ns). Returns 0,
 * FDN_EINVAL (bad shards or max_keys) or FDN_ENOMEM. */
extern const fdn__limiter_backend_t fdn__limiter_mem_backend;
int fdn__limiter_mem_create(void **out, uint32_t nshards, uint32_t max_keys,
                            fdn_limit_overflow_t policy, int64_t interval_ns, int64_t mono_ns,
                            int64_t wall_ns);
/* The Redis backend (limiter_redis.c). `local` is an in-memory store (fdn__limiter_mem_create)
 * it takes over on success (the failure policy LOCAL checks it); clock: the limiter's (the
 * breaker around Redis and the deny cache run on it). Returns 0, FDN_EINVAL (bad options or
 * URL, with a message in err) or FDN_ENOMEM. No connection is made here: the first check
 * connects, and an unreachable Redis is answered by the failure policy. pipeline_max is the
 * options' (read by the caller, as the options' version says). */
extern const fdn__limiter_backend_t fdn__limiter_redis_backend;
int fdn__limiter_redis_create(void **out, const fdn_limiter_redis_opts_t *opts,
                              uint32_t pipeline_max, void *local, fdn_clock_t *clock,
                              fdn_error_t *err);

/* The Redis backend's pipelines (tests, benchmarks): pipelines sent so far, the checks they
 * carried, the most in one; checks leading (sending) and waiting in the queue now. */
typedef struct fdn__redis_pipe_stats {
    uint64_t batches, calls, max_batch;
    uint64_t give_ups; /* pipelines whose deadline passed while they waited for their turn */
    uint32_t leaders, queued;
} fdn__redis_pipe_stats_t;
/* Of the Redis backend `self`, or of the limiter l (all 0 when its backend is not Redis). */
void fdn__limiter_redis_pipeline_counts(void *self, fdn__redis_pipe_stats_t *out);
void fdn__limiter_redis_pipeline_stats(const fdn_limiter_t *l, fdn__redis_pipe_stats_t *out);
/* Tests: the most pipelines one connection of the Redis backend `self` (of the limiter l)
 * carries at once (default 4); set before the first check. */
void fdn__limiter_redis_set_depth(void *self, uint32_t depth);
void fdn__limiter_redis_test_depth(fdn_limiter_t *l, uint32_t depth);
/* Tests: fn(arg) runs in every pipeline's leader once it holds room on a connection and
 * before it writes (fn NULL: none), so a test can hold one there; set before the checks. */
void fdn__limiter_redis_set_hold(void *self, void (*fn)(void *arg), void *arg);
void fdn__limiter_redis_test_hold(fdn_limiter_t *l, void (*fn)(void *arg), void *arg);

/* The in-memory store's status (as its `status`) and its evictions (as `stats` counts them),
 * in one pass over the shards. */
void fdn__limiter_mem_status_evictions(void *self, fdn_limiter_backend_status_t *out,
                                       uint64_t *evictions);
/* fdn_limiter_backend_status and fdn_limiter_stats's evictions together, in one pass over
 * the shards of the in-memory store (GET /metrics' collector reads both on every scrape).
 * Returns 0 or FDN_EINVAL. */
int fdn__limiter_status_evictions(fdn_limiter_t *l, fdn_limiter_backend_status_t *out,
                                  uint64_t *evictions);

/* The in-memory store's last refusal of a new key (monotonic ns; 0: never), as its `status`
 * has it in since_refusal_ns, without its pass over the shards (fdn_limiter_refusal_age_ns). */
int64_t fdn__limiter_mem_last_refusal(void *self);
/* Of the Redis backend: whether it is available (connected and its breaker closed, as its
 * `status` has them; fdn_limiter_backend_available), and its local store's last refusal
 * (fdn__limiter_mem_last_refusal). */
bool fdn__limiter_redis_available(void *self);
int64_t fdn__limiter_redis_last_refusal(void *self);

/* The in-memory store's quota of live keys per identity (0 = none; see limiter_store.c). */
void fdn__limiter_mem_set_identity_quota(void *self, uint32_t max_keys);

/* Lookups and compared cells so far, summed over the shards (fdn__limiter_probes). */
void fdn__limiter_mem_probes(void *self, uint64_t *lookups, uint64_t *probes);

/* The in-memory store's busiest live keys (most requests in their current window first; keys
 * with none are left out): at most cap into out, visiting at most scan_max cells (one shard
 * lock at a time); *scanned (may be NULL) receives the cells visited. Returns how many. */
size_t fdn__limiter_mem_top(void *self, const fdn__limit_now_t *now, fdn_limit_key_info_t *out,
                            size_t cap, size_t scan_max, uint64_t *scanned);

/*
 * Named-rule check for a caller that checks the same rule name again and again (a protection
 * entry): *cache (set up with fdn__limiter_rule_cache_init, used only with that one rule name
 * and limiter) holds a copy of the rule as found in one generation of the rule table, so later
 * checks read it with no lock and no read-side section: a sequence count (odd while a caller
 * fills it) makes a torn copy impossible to use, and the copy is used only while the limiter's
 * published generation is still the one it was taken from. Any fdn_limiter_set_rule /
 * fdn_limiter_remove_rule makes the cache stale and the next check looks the name up again.
 * mono_ns, when not FDN__NOW_UNSET, is fdn_clock_mono_ns(clock) read by the caller during this
 * call: the limiter uses it instead of reading the clock again when `clock` is the same time source
 * as its own (the same manual clock, or both the system clock); a fixed-window rule reads the wall
 * clock as always. Otherwise as fdn_limiter_check_named. Thread-safe; the cache may be shared by
 * concurrent callers.
 */
typedef struct fdn__limiter_rule_cache {
    _Atomic uint64_t seq; /* even: stable (0: empty); odd: a caller is filling it */
    _Atomic uint64_t gen; /* the rule table generation the copy was taken from */
    _Atomic int64_t limit, period_ms, burst;
    _Atomic uint32_t algo, flags;
    _Atomic(void *) ctr[2]; /* the rule's decision counters (fdn_counter_t *) */
} fdn__limiter_rule_cache_t;
void fdn__limiter_rule_cache_init(fdn__limiter_rule_cache_t *cache);
int fdn__limiter_check_named_cached(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                                    int64_t cost, fdn_limit_result_t *res,
                                    fdn__limiter_rule_cache_t *cache, const fdn_clock_t *clock,
                                    int64_t mono_ns);

/* Key lookups in the in-memory store and the cells they compared, summed over the shards
 * (0, 0 for another backend). A test that floods the store with keys crafted to share a
 * bucket reads them to check that lookups stay short: counted work, not time. */
void fdn__limiter_probes(fdn_limiter_t *l, uint64_t *lookups, uint64_t *probes);

/* The limiter's supervisor vtable, defined in limiter.c, and typed wrappers (see
 * core/supervisor_int.h): while stopped every check returns FDN_EUNAVAILABLE; state
 * survives a stop/start. */
FDN__SERVICE_TYPED_OPS(limiter, fdn_limiter_t)

/* What fdn_limiter_set_cleanup_interval (and the create's cleanup_interval_ms) refuses: a
 * period out of 1..INT64_MAX/4 ns, in ms. 0 or FDN_EINVAL. The runtime asks it to check a config
 * update before it is written to etcd, pushing nothing (runtime_services.c). */
int fdn__limiter_check_cleanup_interval(int64_t ms);

#endif
