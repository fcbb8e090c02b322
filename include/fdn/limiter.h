/**
 * @file limiter.h
 * @brief Rate limiter: fixed window (Hammer-compatible), token bucket, GCRA, sliding-window
 * counter; per-key state in a sharded, bounded hash.
 *
 * Algorithms and their admission bounds (limit L per period P, cost c per call):
 *  - FIXED_WINDOW: windows are epoch-aligned on the wall clock in ms (window index =
 *    floor(wall_ms / P)), as the reference (Hammer). The counter is incremented by c on every
 *    check, denied ones included (Hammer compatibility), and a call is allowed iff the new
 *    count <= L. At most L per window; up to 2L across a window boundary.
 *  - TOKEN_BUCKET: capacity `burst` (default L) tokens, refilled at L per P (monotonic
 *    clock). At most burst + L*t/P in any interval t. A denied call consumes nothing.
 *  - GCRA: emission interval T = ceil(P/L) ns (rounded up, so never more than L per P in
 *    the long run) and burst tolerance (burst-1)*T. Same bound as the token bucket.
 *  - SLIDING_WINDOW: counter of the current and previous windows (aligned on the monotonic
 *    clock); estimate = prev*(P-elapsed)/P + cur; allowed iff estimate + c <= L. At most L
 *    in any window-aligned interval, and about L in any sliding one. A denied call consumes
 *    nothing.
 * All arithmetic is integer nanoseconds (128-bit intermediates); no floating point.
 *
 * Backends: the in-memory store below (default), or Redis (fdn_limiter_redis_opts_t) so that
 * many processes share one limit.
 *
 * Keys: any byte string. State lives in `shards` hash shards, each with its own mutex (a
 * check is a lookup plus an update of the key's cell under that shard's lock), bounded by
 * `max_keys`. Expired cells are swept per shard every `cleanup_interval_ms` (amortised on
 * the checks that hit the shard, or by fdn_limiter_sweep()). When a shard is full and a NEW
 * key arrives, the shard's expired cells are removed first (counted in `expired`); if none
 * has expired, `overflow_policy` decides: FDN_LIMIT_OVERFLOW_DENY_NEW (default) refuses the
 * new key with FDN_ELIMITER (counted in `overflow_denied`) and never touches live state, so
 * a flood of distinct keys cannot reset another key's count; FDN_LIMIT_OVERFLOW_EVICT_LRU
 * evicts the least recently used live cell (counted in `evictions`), which restarts that
 * key's count. Either way memory stays bounded by `max_keys`.
 */
#ifndef FDN_LIMITER_H
#define FDN_LIMITER_H

#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** Opaque handle: a telemetry object, used through the fdn_telemetry_* functions. */
typedef struct fdn_telemetry fdn_telemetry_t;

/** A rate limiter. Opaque. */
typedef struct fdn_limiter fdn_limiter_t;

/** Algorithms. */
typedef enum fdn_limit_algo {
    FDN_LIMIT_FIXED_WINDOW = 0,
    FDN_LIMIT_TOKEN_BUCKET = 1,
    FDN_LIMIT_GCRA = 2,
    FDN_LIMIT_SLIDING_WINDOW = 3,
} fdn_limit_algo_t;

/** A rule: L per P, plus burst for the bucket algorithms. */
typedef struct fdn_limit_rule {
    fdn_limit_algo_t algo; /**< algorithm */
    int64_t limit;         /**< L, 1..2^31 */
    int64_t period_ms;     /**< P in ms, 1..2^33 (~100 days) */
    int64_t burst;         /**< bucket capacity (TOKEN_BUCKET, GCRA); 0 = limit */
} fdn_limit_rule_t;

/** The result of a check (always filled, also when denied). */
typedef struct fdn_limit_result {
    bool allowed;           /**< the call may proceed (true in shadow mode) */
    bool shadow_denied;     /**< shadow mode: the call would have been denied */
    int64_t count;          /**< used in the current window (fixed/sliding) or
                                 limit - remaining (buckets) */
    int64_t limit;          /**< L (or burst for the buckets) */
    int64_t remaining;      /**< calls of cost 1 still allowed now */
    int64_t reset_ns;       /**< ns until the state is fully reset (window end / bucket
                                 full) */
    int64_t retry_after_ns; /**< denied: ns until a call of this cost could pass; else 0 */
} fdn_limit_result_t;

/** What fdn_limiter_reserve() took, for fdn_limiter_cancel(). */
typedef struct fdn_limit_reservation {
    int64_t cost;  /**< cost taken */
    int64_t epoch; /**< window index / state tag at reservation */
    bool active;   /**< false after cancel or when nothing was taken */
} fdn_limit_reservation_t;

/** Check flags. */
/** Evaluate without consuming or creating state: the answer a check of that cost would get now,
 * shadow mode included (0 with allowed and shadow_denied where a check would be denied; since
 * 0.3.0, before which a shadow-mode peek returned FDN_ERATE_LIMITED). Peeks are not counted. */
#define FDN_LIMIT_PEEK 0x1u
/**
 * The key starts with a reserved namespace byte (below FDN_LIMIT_KEY_NS_FIRST_FREE) on purpose:
 * accepted by fdn_limiter_check, fdn_limiter_check_many (a request's flags),
 * fdn_limiter_inc_flags, fdn_limiter_set_flags and fdn_limit_key_validate. For the library's
 * own front ends, which build such keys (fdn_admin's HTTP API: FDN_LIMIT_KEY_NS_HTTP), and a
 * program that means to act on one of the library's cells (for example give a named rule's
 * identifier its allowance back: fdn_limiter_set_flags with count 0 on "\x02<rule>:<id>").
 * Without it every key call refuses such a key with FDN_EINVAL (see FDN_LIMIT_KEY_NS_PROTECT).
 * @since 0.3.0
 */
#define FDN_LIMIT_RESERVED_NS 0x2u

/** What a full shard does with a new key when none of its cells has expired. */
typedef enum fdn_limit_overflow {
    FDN_LIMIT_OVERFLOW_DENY_NEW = 0,  /**< refuse the new key (FDN_ELIMITER); default */
    FDN_LIMIT_OVERFLOW_EVICT_LRU = 1, /**< evict the least recently used live key (its count
                                           restarts: a key flood can reset a victim key) */
} fdn_limit_overflow_t;

/** Where a limiter keeps its keys' state. */
typedef enum fdn_limiter_backend_kind {
    FDN_LIMITER_BACKEND_MEMORY = 0, /**< this process's sharded in-memory store (default) */
    FDN_LIMITER_BACKEND_REDIS = 1,  /**< a Redis server shared by every process (see below) */
} fdn_limiter_backend_kind_t;

/** What a Redis-backed check answers while Redis is slow, down, or its breaker is open. */
typedef enum fdn_limit_failure_policy {
    FDN_LIMIT_FAIL_LOCAL = 0,  /**< check this process's in-memory store with the rule's limit
                                    (and burst) divided by fleet_size, rounded up (default) */
    FDN_LIMIT_FAIL_OPEN = 1,   /**< allow the call */
    FDN_LIMIT_FAIL_CLOSED = 2, /**< deny the call; retry_after_ns = time until Redis is tried
                                    again */
} fdn_limit_failure_policy_t;

/**
 * Redis backend options (used when backend is FDN_LIMITER_BACKEND_REDIS).
 *
 * Every check runs one Lua script on the server (loaded once, called with EVALSHA; on NOSCRIPT
 * it is loaded and called once more), atomically, with the time read from Redis (TIME): hosts
 * whose clocks disagree share one window edge, and the limiter's own clock is not used for
 * these checks. One key per (key, algorithm), "<key_prefix>{<key>}:<algorithm digit>", expiring
 * with its window. Arithmetic on the server is in microseconds with Lua numbers (doubles); the
 * admission bounds of the header's top comment hold to within a microsecond.
 *
 * A check is never sent twice: a command that failed or timed out is not resent (a resent
 * increment would count twice); the connection is dropped and the failure policy answers.
 * Nothing is queued while Redis is away. A circuit breaker around Redis opens after
 * 3 failures within 10 s and tries Redis again after 500 ms, so with the breaker open a check
 * costs what a local check costs and Redis is used again within about a second of returning.
 * While a key is known to be over its limit (a denial with a finite retry time) further checks
 * of that key are denied locally until the retry time, without a round trip.
 */
typedef struct fdn_limiter_redis_opts {
    const char *url;            /**< redis://[[user]:password@]host[:port][/db] (default port
                                     6379, db 0); required; copied */
    uint32_t pool_size;         /**< connections, 1..1024 (default 4) */
    int64_t connect_timeout_ms; /**< 1..60 000 (default 1 000): bound on the connect, cut to
                                     command_timeout_ms when longer; a connection made on
                                     demand during a check is made (connect, AUTH, SELECT,
                                     script load) within what is left of the check's
                                     command_timeout_ms */
    int64_t command_timeout_ms; /**< 1..60 000 (default 250): bound on a check's wait for a
                                     connection and for its reply */
    const char *key_prefix;     /**< prepended to every key (default "fdn:rl:"); copied */
    fdn_limit_failure_policy_t failure_policy; /**< default FDN_LIMIT_FAIL_LOCAL */
    uint32_t fleet_size; /**< processes sharing the limits, for FDN_LIMIT_FAIL_LOCAL (default 1) */
    uint32_t pipeline_max; /**< (options version >= 4) most checks sent together in one
                                write, 1..256 (default 32; 1 = each check its own write). A
                                connection carries up to 4 such pipelines at once; while every
                                connection carries 4, checks wait in a queue, and the next
                                pipeline takes the waiting ones in (each still bounded by
                                command_timeout_ms) */
} fdn_limiter_redis_opts_t;

/** The default of fdn_limiter_redis_opts_t.pipeline_max. */
#define FDN_LIMITER_REDIS_PIPELINE_DEFAULT 32

/** Initialiser of fdn_limiter_redis_opts_t with every default. */
#define FDN_LIMITER_REDIS_OPTS_INIT                                                                \
    {                                                                                              \
        NULL, 4, 1000, 250, "fdn:rl:", FDN_LIMIT_FAIL_LOCAL, 1, FDN_LIMITER_REDIS_PIPELINE_DEFAULT \
    }

/** Limiter options. */
typedef struct fdn_limiter_opts {
    uint32_t version;                     /**< FDN_LIMITER_OPTS_VERSION */
    uint32_t shards;                      /**< hash shards, power of two (default 64) */
    uint32_t max_keys;                    /**< bound on live keys (default 1 048 576); at most
                                               2^29 per shard (max_keys / shards), else
                                               FDN_EINVAL */
    int64_t cleanup_interval_ms;          /**< sweep period per shard (default 300 000, the config's
                                               infrastructure.rate_limiting.cleanup_interval) */
    bool shadow;                          /**< dry run: denials are reported, never enforced */
    fdn_clock_t *clock;                   /**< NULL = system clock; not owned */
    fdn_telemetry_t *telemetry;           /**< NULL = off; not owned. With it: the events
                                               foundation.rate_limiter.request_allowed /
                                               request_denied and the families
                                               fdn_rate_limiter_request_{allowed,denied}_total
                                               {rule} (docs/telemetry.md) */
    fdn_limit_overflow_t overflow_policy; /**< full shard, new key, nothing expired (version >= 2;
                                               default FDN_LIMIT_OVERFLOW_DENY_NEW) */
    fdn_limiter_backend_kind_t backend;   /**< version >= 3; default memory. With Redis, the
                                               in-memory store (shards, max_keys, ...) serves
                                               FDN_LIMIT_FAIL_LOCAL and the deny cache */
    fdn_limiter_redis_opts_t redis;       /**< version >= 3; used by the Redis backend */
    uint32_t max_keys_per_identity;       /**< version >= 5: most live keys of one identity in the
                                               in-memory store (FDN_LIMIT_IDENTITY_SEP); 0 = no
                                               quota (default) */
} fdn_limiter_opts_t;

/** Current version of fdn_limiter_opts_t, set by the matching _INIT initialiser. */
#define FDN_LIMITER_OPTS_VERSION 5
/** Initialiser of fdn_limiter_opts_t with every default. */
#define FDN_LIMITER_OPTS_INIT                                                                      \
    {                                                                                              \
        FDN_LIMITER_OPTS_VERSION, 64, 1048576, 300000, false, NULL, NULL,                          \
            FDN_LIMIT_OVERFLOW_DENY_NEW, FDN_LIMITER_BACKEND_MEMORY, FDN_LIMITER_REDIS_OPTS_INIT,  \
            0                                                                                      \
    }

/**
 * Identities: a key holding this byte belongs to the identity made of the bytes before its
 * first occurrence (the HTTP API builds "<identity>\x1f<key>" from a request's `identity`).
 * With a quota (max_keys_per_identity, fdn_limiter_set_max_keys_per_identity), a NEW key of an
 * identity that already holds that many live keys in the in-memory store is refused with
 * FDN_ENOSPC (res->allowed false; in shadow mode allowed with shadow_denied), so one caller
 * cannot take the whole table; its existing keys are checked as usual, and other identities
 * are not affected. A key without the byte has no identity and no quota. Expired keys count
 * until swept: a refusal sweeps the store first (at most once a second) and tries again. The
 * quota governs this process's store (with Redis: the keys it keeps locally).
 * An identity lives in its key's namespace (FDN_LIMIT_KEY_NS_PROTECT): the HTTP API's
 * `identity` "t7" makes keys "\x01t7\x1f<key>", a program's own "t7\x1f<key>" is another
 * identity, on purpose. An HTTP identity and the same identity in C count separately: their
 * keys never share a cell (the same key over HTTP and in C are two counts), each holds its
 * own quota (a caller using both may hold twice the quota), and fdn_limiter_backend_status
 * counts two identities (fdn_limiter_top_keys shows both as "t7", told apart by key_ns). A
 * program that wants one count for a caller sends all its checks for that caller through one
 * front end.
 */
#define FDN_LIMIT_IDENTITY_SEP '\x1f'

/**
 * Key namespaces: every key the library builds starts with a reserved byte naming who made
 * it, so keys of different makers never share a cell (in memory or in Redis, whose key names
 * "<prefix>{<key>}:<digit>" carry the byte):
 * FDN_LIMIT_KEY_NS_PROTECT inline rules of fdn_execute_protected ("\0protect:..."),
 * FDN_LIMIT_KEY_NS_HTTP keys of the HTTP API (POST /v1/limiter/...),
 * FDN_LIMIT_KEY_NS_RULE named rules ("\x02<rule>:<identifier>", fdn_limiter_check_named),
 * FDN_LIMIT_KEY_NS_ENTITY fdn_limiter_check_entity ("\x03foundation:...").
 * A program's own keys must not start with a byte below 0x04: those are reserved. Since 0.3.0
 * (before, HTTP, named-rule and entity keys had no leading byte and could collide). Every key
 * call refuses such a key with FDN_EINVAL and changes nothing (no cell is read, made, counted
 * or cleared): fdn_limiter_check, check_many, inc, set, get, reserve, cancel, reset and
 * check_rate; fdn_limit_key_validate says why in an fdn_error_t. The calls that take flags
 * accept one on purpose with FDN_LIMIT_RESERVED_NS: fdn_limiter_check (fdn_limiter_get is
 * fdn_limiter_check with FDN_LIMIT_PEEK, a denial read as 0), fdn_limiter_check_many (per
 * request), fdn_limiter_inc_flags and fdn_limiter_set_flags; reserve, cancel, reset and
 * check_rate never do (the library's own makers reach their cells inside the library). The
 * test is one byte compare on each call's path.
 */
#define FDN_LIMIT_KEY_NS_PROTECT '\x00'
/** The first byte of a key made by the HTTP API (see FDN_LIMIT_KEY_NS_PROTECT). */
#define FDN_LIMIT_KEY_NS_HTTP '\x01'
/** The first byte of a named rule's key (see FDN_LIMIT_KEY_NS_PROTECT). */
#define FDN_LIMIT_KEY_NS_RULE '\x02'
/** The first byte of an entity's key (see FDN_LIMIT_KEY_NS_PROTECT). */
#define FDN_LIMIT_KEY_NS_ENTITY '\x03'
/** The lowest byte a program's key may start with (see FDN_LIMIT_KEY_NS_PROTECT). */
#define FDN_LIMIT_KEY_NS_FIRST_FREE 0x04

/** The namespace of a key listed by fdn_limiter_top_keys. */
typedef enum fdn_limit_key_ns {
    FDN_LIMIT_NS_PROGRAM = 0, /**< a program's own key, shown as it was given */
    FDN_LIMIT_NS_PROTECT,     /**< FDN_LIMIT_KEY_NS_PROTECT, shown without the byte */
    FDN_LIMIT_NS_HTTP,        /**< FDN_LIMIT_KEY_NS_HTTP, shown without the byte */
    FDN_LIMIT_NS_RULE,        /**< FDN_LIMIT_KEY_NS_RULE, shown without the byte */
    FDN_LIMIT_NS_ENTITY       /**< FDN_LIMIT_KEY_NS_ENTITY, shown without the byte */
} fdn_limit_key_ns_t;

/** Counters (a copy). */
typedef struct fdn_limiter_stats {
    uint64_t keys;            /**< live cells */
    uint64_t allowed;         /**< checks allowed */
    uint64_t denied;          /**< checks denied (incl. shadow denials) */
    uint64_t evictions;       /**< live cells evicted because a shard was full (EVICT_LRU) */
    uint64_t expired;         /**< expired cells removed (sweeps, and a full shard making room) */
    uint64_t overflow_denied; /**< new keys refused because their shard was full (DENY_NEW) */
} fdn_limiter_stats_t;

/** The backend's state (a copy), for health checks and metrics. */
typedef struct fdn_limiter_backend_status {
    fdn_limiter_backend_kind_t backend; /**< memory or Redis */
    bool connected;            /**< memory: true; Redis: the last command got a reply (true
                                    before the first command) */
    int breaker_state;         /**< Redis: an fdn_breaker_state_t; memory: 0 (closed) */
    uint64_t commands;         /**< Redis: scripts sent */
    uint64_t errors;           /**< Redis: commands that failed (I/O, timeout, bad reply) */
    uint64_t fallbacks;        /**< checks the failure policy answered */
    uint64_t local_denials;    /**< checks the deny cache answered without a round trip */
    uint64_t script_loads;     /**< SCRIPT LOAD sent (first use, NOSCRIPT after a restart) */
    uint64_t latency_le_us[8]; /**< checks sent to Redis taking <= 100, 250, 500, 1000, 2500,
                                    10 000, 100 000 us, and all (cumulative); a check's time
                                    includes its wait for a connection or a pipeline */
    uint64_t latency_sum_us;   /**< sum of those times */
    uint64_t keys;             /**< live keys in this process's store */
    uint64_t key_capacity;     /**< its bound (max_keys rounded to whole shards) */
    uint64_t new_keys_refused; /**< new keys refused because their shard was full */
    int64_t since_refusal_ns;  /**< ns since the last refusal (limiter clock); -1: never */
    uint64_t identities;       /**< identities holding live keys in this process's store */
    uint64_t identity_keys_refused; /**< new keys refused by max_keys_per_identity */
    uint32_t max_keys_per_identity; /**< the quota (0 = none) */
} fdn_limiter_backend_status_t;

/** Round-trip bucket bounds of fdn_limiter_backend_status_t.latency_le_us (the last is +Inf). */
#define FDN_LIMITER_LATENCY_BOUNDS_US                                                              \
    {                                                                                              \
        100, 250, 500, 1000, 2500, 10000, 100000                                                   \
    }

/**
 * Create a limiter with the default rules api_calls (100 / 60 000 ms), db_queries
 * (500 / 60 000 ms), file_operations (10 / 1 000 ms), all fixed window.
 * @return 0, FDN_EINVAL, FDN_ENOMEM  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_create(fdn_limiter_t **out, const fdn_limiter_opts_t *opts);

/**
 * As fdn_limiter_create, with a message in err saying which option is wrong (a Redis URL that
 * does not parse, a timeout out of range, ...). No connection is made: an unreachable Redis
 * is answered by the failure policy at check time.
 * @return 0, FDN_EINVAL, FDN_ENOMEM  @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_open(fdn_limiter_t **out, const fdn_limiter_opts_t *opts, fdn_error_t *err);

/** Free the limiter (NULL ok). @thread_safety owner  @since 0.1.0 */
FDN_API void fdn_limiter_destroy(fdn_limiter_t *l);

/**
 * Check a rule for a key, consuming `cost` when allowed (and, for FIXED_WINDOW, also when
 * denied, as Hammer does).
 * @param[in] key bytes, @param keylen length (> 0, <= 4096)
 * @param flags 0 or FDN_LIMIT_PEEK, with FDN_LIMIT_RESERVED_NS for a key in a library namespace
 * @param[out] res may be NULL
 * @return 0 (allowed, or shadow mode), FDN_ERATE_LIMITED, FDN_EINVAL (bad rule/key/cost, or
 * a key whose first byte is below FDN_LIMIT_KEY_NS_FIRST_FREE without FDN_LIMIT_RESERVED_NS:
 * those namespaces belong to the library, see FDN_LIMIT_KEY_NS_PROTECT; since 0.3.0),
 * FDN_ENOMEM (new key could not be stored), FDN_ELIMITER (new key, its shard is full of live
 * keys and overflow_policy is DENY_NEW; res->allowed false, retry_after_ns = time until a
 * cell of that shard expires; in shadow mode the call is allowed with shadow_denied set),
 * FDN_ENOSPC (new key of an identity at its quota, FDN_LIMIT_IDENTITY_SEP; same shadow rule),
 * FDN_EUNAVAILABLE (service stopped)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_check(fdn_limiter_t *l, const char *key, size_t keylen,
                              const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                              fdn_limit_result_t *res);

/**
 * Count without deciding (Hammer's `inc`): add cost to the key's count as a check would, but
 * whether or not it fits. Fixed and sliding windows count past the limit; a token bucket goes
 * into debt (at most one full bucket: tokens refill before anything is admitted again); GCRA
 * moves its theoretical arrival time past the burst (at most 2^62 ns ahead). No telemetry, no
 * shadow mode (nothing is enforced); with the limiter disabled nothing is counted.
 * @param[out] res the state after (may be NULL); res->allowed says whether a check of this
 * cost would have been allowed
 * @return 0, FDN_EINVAL (bad key, rule or cost: 1..2^31; a key in a library namespace, see
 * FDN_LIMIT_KEY_NS_PROTECT), FDN_ENOMEM, FDN_ELIMITER (new key, full store), FDN_EUNAVAILABLE
 * (stopped; Redis backend: Redis away, nothing counted)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_inc(fdn_limiter_t *l, const char *key, size_t keylen,
                            const fdn_limit_rule_t *rule, int64_t cost, fdn_limit_result_t *res);

/**
 * fdn_limiter_inc with flags: 0 (exactly fdn_limiter_inc) or FDN_LIMIT_RESERVED_NS (the key is
 * in a library namespace on purpose; the HTTP API's POST /v1/limiter/inc).
 * @return as fdn_limiter_inc; FDN_EINVAL also for an unknown flag
 * @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_limiter_inc_flags(fdn_limiter_t *l, const char *key, size_t keylen,
                                  const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                                  fdn_limit_result_t *res);

/**
 * Set the key's count (Hammer's `set`), 0..2^31: the current window's count (fixed and
 * sliding window; a sliding window keeps its previous window), `burst - count` tokens (token
 * bucket; a debt past the burst, at most one bucket), `count` emission intervals ahead of now
 * (GCRA). Set 0 to give a key its full allowance back in the current window.
 * @param[out] res the state after (may be NULL); res->allowed: count within the limit
 * @return as fdn_limiter_inc
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_set(fdn_limiter_t *l, const char *key, size_t keylen,
                            const fdn_limit_rule_t *rule, int64_t count, fdn_limit_result_t *res);

/**
 * fdn_limiter_set with flags: 0 (exactly fdn_limiter_set) or FDN_LIMIT_RESERVED_NS (the key is
 * in a library namespace on purpose; the HTTP API's POST /v1/limiter/set).
 * @return as fdn_limiter_set; FDN_EINVAL also for an unknown flag
 * @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_limiter_set_flags(fdn_limiter_t *l, const char *key, size_t keylen,
                                  const fdn_limit_rule_t *rule, int64_t count, unsigned flags,
                                  fdn_limit_result_t *res);

/**
 * Read the key's count without consuming or storing anything (Hammer's `get`): res->count,
 * remaining, reset_ns; res->allowed: whether a check of cost 1 would be allowed now. It is
 * fdn_limiter_check with FDN_LIMIT_PEEK, FDN_ERATE_LIMITED read as 0: for a key in a library
 * namespace, call that with FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS.
 * @return 0 (whatever the count), FDN_EINVAL (bad key or rule, res NULL; a key in a library
 * namespace, see FDN_LIMIT_KEY_NS_PROTECT), FDN_EUNAVAILABLE
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_get(fdn_limiter_t *l, const char *key, size_t keylen,
                            const fdn_limit_rule_t *rule, fdn_limit_result_t *res);

/** One check of fdn_limiter_check_many: what to check, and (out) what came of it. */
typedef struct fdn_limit_request {
    const char *key;              /**< bytes */
    size_t keylen;                /**< 1..4096 */
    const fdn_limit_rule_t *rule; /**< not NULL */
    int64_t cost;                 /**< >= 1 */
    unsigned flags;               /**< 0 or FDN_LIMIT_PEEK, with FDN_LIMIT_RESERVED_NS for a key
                                       in a library namespace (as fdn_limiter_check) */
    int rc;                       /**< out: what fdn_limiter_check returns for this request */
    fdn_limit_result_t res;       /**< out: as fdn_limiter_check's res */
} fdn_limit_request_t;

/** The most requests of one fdn_limiter_check_many call. */
#define FDN_LIMIT_MANY_MAX 256

/**
 * Several checks in one call, each exactly as fdn_limiter_check would make it, in array order
 * (for example a per-user and a per-address limit of one request). On the Redis backend their
 * scripts travel as one pipeline, so n checks cost one round trip and share one
 * command_timeout_ms; on the memory backend they run one after the other. Each request is
 * decided on its own: a denied one does not undo the others (for all or nothing, check with
 * FDN_LIMIT_PEEK first, or reserve each and cancel on a denial).
 * @return 0 when every request was allowed; FDN_ERATE_LIMITED when at least one was denied
 * and none failed; otherwise the first failure's code (each request's rc tells which).
 * FDN_EINVAL, with nothing checked or counted, when l or reqs is NULL, n is 0 or above
 * FDN_LIMIT_MANY_MAX, or any request is invalid, a key in a library namespace without
 * FDN_LIMIT_RESERVED_NS included (that request's rc is FDN_EINVAL, the others' 0). FDN_ENOMEM
 * (nothing checked) when the scratch space for n > 8 cannot be made.
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_check_many(fdn_limiter_t *l, fdn_limit_request_t *reqs, size_t n);

/**
 * Hammer-compatible fixed window: `limit` hits per `scale_ms`, epoch-aligned, cost 1. key is a
 * NUL-terminated string; one starting with a byte below FDN_LIMIT_KEY_NS_FIRST_FREE is refused
 * with FDN_EINVAL (there is no flag to pass it).
 * @return as fdn_limiter_check  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_check_rate(fdn_limiter_t *l, const char *key, int64_t scale_ms,
                                   int64_t limit, fdn_limit_result_t *res);

/**
 * The reference's check_rate(entity, operation, limit, window_ms): Hammer fixed window on
 * the key "\x03foundation:<len(entity)>:<entity>:<operation>" (FDN_LIMIT_KEY_NS_ENTITY). The
 * length prefix keeps the
 * reference's collisions away (("a:b", "c") and ("a", "b:c") are distinct keys here).
 * NULL entity or operation is "".
 * @return as fdn_limiter_check_rate  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_check_entity(fdn_limiter_t *l, const char *entity, const char *operation,
                                     int64_t limit, int64_t window_ms, fdn_limit_result_t *res);

/**
 * Check a named rule for an identifier; the key is "\x02<rule>:<identifier>"
 * (FDN_LIMIT_KEY_NS_RULE: no raw, HTTP or entity key names it; rule names hold no ':').
 * @return as fdn_limiter_check, plus FDN_ENOENT (unknown rule)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                                    int64_t cost, fdn_limit_result_t *res);

/**
 * Consume `cost` now and remember it so that fdn_limiter_cancel() can give it back.
 * rsv->active says whether anything was taken: when the call was allowed, and for
 * FIXED_WINDOW also when it was denied (it counts denied calls), shadow mode or not (a shadow
 * denial on a fixed window is active; on the other algorithms nothing was taken). Nothing is
 * taken when the limiter is disabled or the key could not be stored (FDN_ELIMITER,
 * FDN_ENOSPC, also when shadow mode allows the call), nor for a denial the Redis backend's
 * deny cache answered without asking Redis (inactive, even on a fixed window). A key in a
 * library namespace is refused (FDN_EINVAL, rsv inactive; no flag passes it).
 * @return as fdn_limiter_check  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_reserve(fdn_limiter_t *l, const char *key, size_t keylen,
                                const fdn_limit_rule_t *rule, int64_t cost,
                                fdn_limit_reservation_t *rsv, fdn_limit_result_t *res);

/**
 * Give back a reservation if its window (fixed/sliding) is still current; buckets get the
 * tokens back (capped at the burst). Idempotent.
 * @return 0, FDN_ENOENT (key gone or window over: nothing to give back), FDN_EINVAL (also a
 * key in a library namespace, whatever rsv says: nothing is given back, rsv unchanged)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_cancel(fdn_limiter_t *l, const char *key, size_t keylen,
                               const fdn_limit_rule_t *rule, fdn_limit_reservation_t *rsv);

/** Forget a key's state (unlike the reference's reset, which did nothing, this clears it).
 * A key in a library namespace is refused and kept (FDN_EINVAL; see FDN_LIMIT_KEY_NS_PROTECT).
 * @return 0, FDN_ENOENT, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limiter_reset(fdn_limiter_t *l, const char *key, size_t keylen);

/** Remove every expired cell now. @return cells removed  @thread_safety any @since 0.1.0 */
FDN_API size_t fdn_limiter_sweep(fdn_limiter_t *l);

/** Validate a rule. @return 0, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limit_rule_validate(const fdn_limit_rule_t *rule, fdn_error_t *err);

/**
 * Validate a key as the key calls do, with a message in err saying why one is refused: NULL,
 * not 1..4096 bytes, or starting with a byte below FDN_LIMIT_KEY_NS_FIRST_FREE (naming the
 * library namespace it is in) without FDN_LIMIT_RESERVED_NS. The key calls return a bare
 * FDN_EINVAL (no fdn_error_t on the hot path); this tells a program which of its inputs it was.
 * @param flags 0, FDN_LIMIT_PEEK and/or FDN_LIMIT_RESERVED_NS, as the call would get them
 * @return 0, FDN_EINVAL (also an unknown flag)  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_limit_key_validate(const char *key, size_t keylen, unsigned flags,
                                   fdn_error_t *err);

/**
 * Add or replace a named rule (the runtime loads infrastructure.rate_limiting.default_rules
 * through this). Name: 1..63 bytes, without ':' (FDN_EINVAL: rule "a" with identifier "b:c"
 * and rule "a:b" with identifier "c" would name one key).
 * @return 0, FDN_EINVAL, FDN_ENOMEM  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_limiter_set_rule(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule);

/** Named-rule flag: keep this rule's state in this process even when the limiter's backend
 * is Redis (a per-process limit, at local cost; the memory backend ignores it). */
#define FDN_LIMIT_RULE_LOCAL 0x1u
/** Named-rule flags: this rule's failure policy while Redis is away, instead of the limiter's
 * (at most one; config: "failure_policy" in its default_rules entry). */
#define FDN_LIMIT_RULE_FAIL_LOCAL  0x2u
/** Failure policy of a rule: allow the request when the backend fails. */
#define FDN_LIMIT_RULE_FAIL_OPEN   0x4u
/** Failure policy of a rule: deny the request when the backend fails. */
#define FDN_LIMIT_RULE_FAIL_CLOSED 0x8u

/**
 * fdn_limiter_set_rule with flags: FDN_LIMIT_RULE_LOCAL (with the Redis backend, the rule stays
 * local; config "backend": "memory" in its default_rules entry) and at most one
 * FDN_LIMIT_RULE_FAIL_* (the rule's own failure policy).
 * @return 0, FDN_EINVAL (also unknown or conflicting flags), FDN_ENOMEM
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_limiter_set_rule_flags(fdn_limiter_t *l, const char *name,
                                       const fdn_limit_rule_t *rule, unsigned flags);

/** Copy a named rule. @return 0, FDN_ENOENT  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limiter_get_rule(fdn_limiter_t *l, const char *name, fdn_limit_rule_t *out);

/** Remove a named rule. @return 0, FDN_ENOENT  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limiter_remove_rule(fdn_limiter_t *l, const char *name);

/** Change the sweep period (infrastructure.rate_limiting.cleanup_interval). Sweeps already
 * planned move too: each shard's next sweep is its last sweep plus the new period (so a shorter
 * period applies at once, not after the old one ran out).
 * @return 0, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limiter_set_cleanup_interval(fdn_limiter_t *l, int64_t ms);

/** Switch shadow (dry-run) mode. @thread_safety any  @since 0.1.0 */
FDN_API void fdn_limiter_set_shadow(fdn_limiter_t *l, bool shadow);

/**
 * Switch enforcement on or off (config `infrastructure.rate_limiting.enabled`). While off,
 * every check, reservation and named check is allowed without touching any state or backend
 * (res: allowed, count 0, remaining = limit, nothing to reset or retry), and cancel finds
 * nothing to give back; on again, keys continue from the state they had.
 * @thread_safety any  @since 0.2.0
 */
FDN_API void fdn_limiter_set_enabled(fdn_limiter_t *l, bool enabled);

/** Whether enforcement is on (default true). @thread_safety any  @since 0.2.0 */
FDN_API bool fdn_limiter_enabled(const fdn_limiter_t *l);

/**
 * Change the quota of live keys per identity (see FDN_LIMIT_IDENTITY_SEP; config
 * `infrastructure.rate_limiting.max_keys_per_identity`); 0 = none. Keys already held stay; a
 * lower quota refuses only new keys of the identities above it.
 * @return 0, FDN_EINVAL (NULL)  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_limiter_set_max_keys_per_identity(fdn_limiter_t *l, uint32_t max_keys);

/** Counters. @return 0, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_limiter_stats(fdn_limiter_t *l, fdn_limiter_stats_t *out);

/** The backend's state. @return 0, FDN_EINVAL  @thread_safety any  @since 0.2.0 */
FDN_API int fdn_limiter_backend_status(fdn_limiter_t *l, fdn_limiter_backend_status_t *out);

/**
 * Nanoseconds (limiter clock) since this process's store last refused a new key because its
 * shard was full: fdn_limiter_backend_status_t.since_refusal_ns, read alone (a few loads,
 * without fdn_limiter_backend_status's pass over the shards), for a check made often (the
 * admin server's GET /health).
 * @param[in] l the limiter
 * @return the age (>= 0), or -1: never refused, or l NULL
 * @thread_safety any  @since 0.3.0
 */
FDN_API int64_t fdn_limiter_refusal_age_ns(fdn_limiter_t *l);

/**
 * Whether the backend answers: memory, always; Redis, its last command got a reply and the
 * breaker around Redis is closed (fdn_limiter_backend_status_t.connected and .breaker_state ==
 * FDN_BREAKER_CLOSED, read alone, as fdn_limiter_refusal_age_ns reads its field). While not,
 * the limiter's failure policy answers the checks.
 * @param[in] l the limiter
 * @return true or false (false for l NULL)
 * @thread_safety any  @since 0.3.0
 */
FDN_API bool fdn_limiter_backend_available(fdn_limiter_t *l);

/** One live key of fdn_limiter_top_keys: a key the library built (FDN_LIMIT_KEY_NS_*) is
 * shown without its namespace byte, named by key_ns. */
typedef struct fdn_limit_key_info {
    char key[260];         /**< the key (after its identity), NUL-terminated */
    char identity[68];     /**< the identity before FDN_LIMIT_IDENTITY_SEP ("" when none) */
    bool key_truncated;    /**< the key was longer than key[] holds */
    uint8_t key_ns;        /**< its namespace (fdn_limit_key_ns_t), since 0.3.0 */
    fdn_limit_rule_t rule; /**< the rule of the key's last operation */
    int64_t count;         /**< requests in the current window (buckets: limit - remaining) */
    int64_t limit;         /**< L (or the burst for the buckets) */
    int64_t remaining;     /**< calls of cost 1 still allowed now */
    int64_t reset_ns;      /**< ns until the window ends / the bucket is full */
} fdn_limit_key_info_t;

/** Most cells fdn_limiter_top_keys visits in one call (the scan's bound). */
#define FDN_LIMITER_TOP_SCAN_MAX 262144u

/**
 * The busiest live keys of this process's in-memory store (a Redis limiter: its local store,
 * used by the local failure policy), most requests in the current window first (ties: by key);
 * keys with no request in their window are left out. A bounded scan: at most
 * FDN_LIMITER_TOP_SCAN_MAX cells, one shard lock at a time, so checks of other shards are not
 * held up and a check is never slowed otherwise (no bookkeeping on the check path).
 * @param[out] out at least cap entries  @param[out] out_n how many were written
 * @param[out] scanned cells visited (may be NULL; < live keys when the bound cut the scan)
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_limiter_top_keys(fdn_limiter_t *l, fdn_limit_key_info_t *out, size_t cap,
                                 size_t *out_n, uint64_t *scanned);

/** "memory", "redis" ("unknown" otherwise). @thread_safety any  @since 0.2.0 */
FDN_API const char *fdn_limiter_backend_name(fdn_limiter_backend_kind_t b);

/** "local", "fail_open", "fail_closed" ("unknown" otherwise). @thread_safety any @since 0.2.0 */
FDN_API const char *fdn_limit_failure_policy_name(fdn_limit_failure_policy_t p);

/** Parse a failure policy name. @return 0, FDN_EINVAL  @thread_safety any  @since 0.2.0 */
FDN_API int fdn_limit_failure_policy_parse(const char *s, fdn_limit_failure_policy_t *out);

/** "fixed_window", "token_bucket", "gcra", "sliding_window" ("unknown" otherwise).
 * @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_limit_algo_name(fdn_limit_algo_t a);

FDN_END_DECLS

#endif /* FDN_LIMITER_H */
