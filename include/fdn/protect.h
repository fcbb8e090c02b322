/**
 * @file protect.h
 * @brief Protected execution: rate limiter -> circuit breaker -> pool checkout -> fn ->
 * checkin, each layer optional (docs/protection.md).
 *
 * A protection key names a stored configuration (fdn_protect_configure): a breaker, a limiter
 * rule and a pool. Unlike the reference, the stored configuration is what
 * fdn_execute_protected() applies; call options may name layers too (they win), so a key
 * that was never configured runs with the call's layers only, or unprotected.
 *
 * Outcomes (the return value; details in fdn_protect_result_t):
 *  - FDN_ERATE_LIMITED: the limiter denied the call (retry_after_ns set); fn not run.
 *  - FDN_ELIMITER: the limiter is full of live keys and refused this new one (its default
 *    overflow_policy; rejected_by LIMITER, retry_after_ns set); fn not run.
 *  - FDN_ECIRCUIT_OPEN: the breaker rejected the call; fn not run.
 *  - FDN_ETIMEDOUT (or another checkout error) from the pool; fn not run.
 *  - otherwise fn's own return value (result.ran == true).
 * Rate-limit and pool-checkout rejections are never breaker failures (the breaker permit is
 * released without a record). fn's result is classified by the breaker's classify callback
 * (default: negative = failure); unlike the reference, fn failures do count.
 */
#ifndef FDN_PROTECT_H
#define FDN_PROTECT_H

#include "common.h"
#include "clock.h"
#include "error.h"
#include "breaker.h"
#include "limiter.h"
#include "pool.h"

FDN_BEGIN_DECLS

/** The protected-execution registry. Opaque. */
typedef struct fdn_protect fdn_protect_t;

/** Layers, for results and switches. */
typedef enum fdn_protect_layer {
    FDN_PROTECT_NONE = 0,
    FDN_PROTECT_LIMITER = 1,
    FDN_PROTECT_BREAKER = 2,
    FDN_PROTECT_POOL = 3,
} fdn_protect_layer_t;

/**
 * Event hook (until telemetry is wired in): event is one of "execute_start",
 * "execute_stop", "execute_exception", "protection_triggered"; layer is the triggering layer
 * (protection_triggered) or NONE; rc the outcome (execute_stop / execute_exception);
 * duration_ns the call's duration (execute_stop). Runs on the calling thread, no lock held.
 */
typedef void (*fdn_protect_event_fn)(const char *event, const char *key, fdn_protect_layer_t layer,
                                     int rc, int64_t duration_ns, void *user);

/** Options. The components are borrowed (not owned) and must outlive the registry. */
typedef struct fdn_protect_opts {
    uint32_t version;              /**< FDN_PROTECT_OPTS_VERSION */
    fdn_breakers_t *breakers;      /**< breaker set (NULL: no breaker layer) */
    fdn_limiter_t *limiter;        /**< limiter (NULL: no limiter layer) */
    fdn_pools_t *pools;            /**< pool manager (NULL: no pool layer) */
    fdn_clock_t *clock;            /**< durations; NULL = system clock */
    fdn_telemetry_t *telemetry;    /**< NULL = off */
    fdn_protect_event_fn on_event; /**< optional */
    void *event_user;              /**< passed to on_event */
} fdn_protect_opts_t;

/** Current version of fdn_protect_opts_t, set by the matching _INIT initialiser. */
#define FDN_PROTECT_OPTS_VERSION 1
/** Initialiser of fdn_protect_opts_t with every default. */
#define FDN_PROTECT_OPTS_INIT                                                                      \
    {                                                                                              \
        FDN_PROTECT_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL                         \
    }

/** A protection configuration (copied by fdn_protect_configure). */
typedef struct fdn_protect_config {
    uint32_t version;                       /**< FDN_PROTECT_CONFIG_VERSION */
    const char *breaker;                    /**< breaker name, NULL = none. Created in the set
                                                 if missing (with breaker_opts). */
    const fdn_breaker_opts_t *breaker_opts; /**< NULL = the set's defaults */
    const char *limiter_rule;               /**< named limiter rule, NULL = none; resolved at
                                                 each call so rule updates apply at once */
    const fdn_limit_rule_t *limit;          /**< or an inline rule for this key (wins); its
                                                 limiter key is "\0protect:<len>:<key>:<id>",
                                                 never shared with a named rule */
    const char *pool;                       /**< pool name, NULL = none; looked up per call */
    int64_t pool_timeout_ms;                /**< checkout timeout ms; 0 = do not wait;
                                                 -1 = the registry default (5 000) */
} fdn_protect_config_t;

/** Current version of fdn_protect_config_t, set by the matching _INIT initialiser. */
#define FDN_PROTECT_CONFIG_VERSION 1
/** Initialiser of fdn_protect_config_t with every default. */
#define FDN_PROTECT_CONFIG_INIT                                                                    \
    {                                                                                              \
        FDN_PROTECT_CONFIG_VERSION, NULL, NULL, NULL, NULL, NULL, -1                               \
    }

/** Per-call options (all optional). */
typedef struct fdn_protect_call_opts {
    uint32_t version;         /**< FDN_PROTECT_CALL_OPTS_VERSION */
    const char *identifier;   /**< limiter identity (user, tenant...); NULL = "" */
    int64_t cost;             /**< limiter cost; <= 0 = 1 */
    int64_t timeout_ms;       /**< pool checkout timeout override (0 = do not wait);
                                   -1 = the config's */
    const char *breaker;      /**< override / add a breaker layer (must exist) */
    const char *limiter_rule; /**< override / add a named limiter rule */
    const char *pool;         /**< override / add a pool layer */
} fdn_protect_call_opts_t;

/** Current version of fdn_protect_call_opts_t, set by the matching _INIT initialiser. */
#define FDN_PROTECT_CALL_OPTS_VERSION 1
/** Initialiser of fdn_protect_call_opts_t with every default. */
#define FDN_PROTECT_CALL_OPTS_INIT                                                                 \
    {                                                                                              \
        FDN_PROTECT_CALL_OPTS_VERSION, NULL, 0, -1, NULL, NULL, NULL                               \
    }

/** What happened (always filled). */
typedef struct fdn_protect_result {
    bool ran;                        /**< fn ran */
    int fn_rc;                       /**< fn's return value when ran */
    fdn_protect_layer_t rejected_by; /**< layer that stopped the call, or NONE */
    int64_t retry_after_ns;          /**< FDN_ERATE_LIMITED / FDN_ELIMITER: from the limiter */
    int64_t duration_ns;             /**< whole call (measured when result or an event hook is
                                          given) */
} fdn_protect_result_t;

/** The function run under protection; conn is the pooled connection (NULL without a pool).
 * Returning FDN_EPOOL_BROKEN marks the pooled worker broken. */
typedef int (*fdn_protected_fn)(void *conn, void *arg);

/**
 * Create a registry.
 * @return 0, FDN_EINVAL, FDN_ENOMEM  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_protect_create(fdn_protect_t **out, const fdn_protect_opts_t *opts);

/** Free the registry (NULL ok; not the borrowed components). When configure or unconfigure
 * replaced anything, it waits for the grace period of what they replaced (freed by liburcu's
 * call_rcu thread), so it must not be called from a telemetry handler (docs/threading.md).
 * @thread_safety owner  @since 0.1.0 */
FDN_API void fdn_protect_destroy(fdn_protect_t *p);

/**
 * Validate and store (or replace) the configuration of a key: breaker options valid (and the
 * breaker created if missing; an existing breaker keeps its options, use
 * fdn_breaker_install to change them), the named rule known to the limiter or the inline rule
 * valid, the timeout not negative, a layer named only when its component was given.
 * @return 0, FDN_EINVAL (message in err says which part), FDN_ENOMEM
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_protect_configure(fdn_protect_t *p, const char *key,
                                  const fdn_protect_config_t *cfg, fdn_error_t *err);

/** Remove a key's configuration. @return 0, FDN_ENOENT, FDN_ENOMEM (the table of keys is
 * copied with the change; out of memory, the key stays configured) @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_protect_unconfigure(fdn_protect_t *p, const char *key);

/**
 * Names of the configured keys, sorted.
 * @param[out] out array of strings, one fdn_free() for all; NULL when n is 0
 * @return 0, FDN_ENOMEM  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_protect_list(fdn_protect_t *p, char ***out, size_t *n);

/** Is the key configured? @return 0, FDN_ENOENT @thread_safety any @since 0.1.0 */
FDN_API int fdn_protect_has(fdn_protect_t *p, const char *key);

/**
 * Run fn(conn, arg) under the key's protection layers.
 * @param[in] opts NULL = defaults; @param[out] result may be NULL
 * @return fn's return value, or FDN_ERATE_LIMITED, FDN_ELIMITER (limiter full, new key
 * refused), FDN_ECIRCUIT_OPEN, FDN_ETIMEDOUT /
 * FDN_ESHUTDOWN (pool), FDN_EBREAKER_NOT_FOUND / FDN_ENOENT (a call option names a missing
 * breaker / rule / pool, or one the registry has no breaker set / limiter / pool manager for;
 * a layer turned off with fdn_protect_set_layer_enabled ignores its call option), FDN_EINVAL;
 * err gets a message when a layer rejected the call.
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_execute_protected(fdn_protect_t *p, const char *key,
                                  const fdn_protect_call_opts_t *opts, fdn_protected_fn fn,
                                  void *arg, fdn_protect_result_t *result, fdn_error_t *err);

/** A key's layers and their live state (the reference's get_protection_status returned nothing
 * real). */
typedef struct fdn_protect_status {
    bool has_breaker;             /**< a breaker layer is configured */
    char breaker_name[64];        /**< its name (truncated) */
    fdn_breaker_status_t breaker; /**< its status */
    bool has_limiter;             /**< a limiter layer is configured */
    char rule_name[64];           /**< named rule ("" for an inline rule) */
    fdn_limit_rule_t rule;        /**< the rule in force now */
    bool has_pool;                /**< a pool layer is configured */
    char pool_name[64];           /**< its name (truncated) */
    bool pool_found;              /**< the pool exists now */
    fdn_pool_status_t pool;       /**< its status when found */
    int64_t pool_timeout_ms;      /**< configured checkout timeout (-1 = default) */
} fdn_protect_status_t;

/**
 * Status of a configured key.
 * @return 0, FDN_ENOENT (not configured), FDN_EINVAL
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_protect_status(fdn_protect_t *p, const char *key, fdn_protect_status_t *out);

/** Switch a layer on or off for every call (infrastructure.rate_limiting.enabled,
 * .circuit_breaker.enabled, .connection_pool.enabled). @thread_safety any @since 0.1.0 */
FDN_API void fdn_protect_set_layer_enabled(fdn_protect_t *p, fdn_protect_layer_t layer,
                                           bool enabled);

/** Default pool checkout timeout for configs that leave it -1.
 * @return 0, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_protect_set_default_timeout(fdn_protect_t *p, int64_t timeout_ms);

FDN_END_DECLS

#endif /* FDN_PROTECT_H */
