/**
 * @file pool.h
 * @brief Connection pools: the reference's ConnectionManager (poolboy) without its
 *        serialisation. Checkout and checkin run in the caller's thread under a per-pool
 *        mutex; waiters queue in strict FIFO order with a deadline.
 *
 * A pool holds up to `size` permanent workers and up to `max_overflow` temporary extra
 * workers. A worker is an opaque `void *conn` made by the `create` callback and released by
 * `destroy`. Checkout takes an idle worker (LIFO: the most recently returned; FIFO: the one
 * returned longest ago); with none idle it creates one while fewer than size + max_overflow
 * exist; otherwise it waits, first come first served, until a worker is returned or the
 * deadline passes (FDN_ETIMEDOUT). Checkin hands the worker straight to the oldest waiter;
 * with no waiter, an overflow worker is destroyed (poolboy) unless `overflow_ttl_ms` keeps it
 * idle for a while, and a permanent one goes back to the idle set.
 *
 * Timed maintenance (validate after idle, max lifetime with jitter, idle timeout, overflow
 * TTL, leak detection) uses the injected clock. It runs lazily on checkout/checkin (for the
 * worker being handled), on fdn_pool_reap(), and on an optional reaper thread
 * (`reap_interval_ms` > 0) that waits with fdn_clock_wait_until().
 *
 * Named pools live in a pool manager (`fdn_pools_t`), one per runtime.
 *
 * See docs/pool.md for the full semantics.
 *
 * @since 0.1.0
 */
#ifndef FDN_POOL_H
#define FDN_POOL_H

#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** A pool. Opaque, reference-counted (see fdn_pool_retain). */
typedef struct fdn_pool fdn_pool_t;
/** A checked-out worker: the lease returned by fdn_pool_checkout. */
typedef struct fdn_pool_worker fdn_pool_worker_t;
/** The per-runtime manager of named pools. */
typedef struct fdn_pools fdn_pools_t;
/** Telemetry sink (include/fdn/telemetry.h). NULL disables telemetry. */
typedef struct fdn_telemetry fdn_telemetry_t;

/** Order in which idle workers are reused. */
typedef enum fdn_pool_strategy {
    FDN_POOL_LIFO = 0,              /**< returned workers are reused first (default) */
    FDN_POOL_FIFO = 1,              /**< returned workers go to the back of the idle queue */
    FDN_POOL_STRATEGY_DEFAULT = -1, /**< inherit the default (lifo, or the manager's) */
} fdn_pool_strategy_t;

/**
 * Poolboy's state, a function of `in_use` (leases out, counting a checkout whose worker is
 * still being created) alone:
 * - FDN_POOL_FULL when in_use == size + max_overflow: a checkout waits (or times out);
 * - FDN_POOL_OVERFLOW when size <= in_use < size + max_overflow: every permanent slot is lent
 *   and a checkout is served by overflow (an idle overflow worker kept by `overflow_ttl_ms`, or
 *   a new one). With size 0 a pool is never READY: nothing lent is already OVERFLOW;
 * - FDN_POOL_READY when in_use < size.
 * Idle workers do not change it: with size > 0 a prefilled pool and one not yet filled are
 * both READY.
 */
typedef enum fdn_pool_state {
    FDN_POOL_READY = 0,
    FDN_POOL_OVERFLOW = 1,
    FDN_POOL_FULL = 2,
} fdn_pool_state_t;

/** Sentinel for int options (size, max_overflow): use the default. */
#define FDN_POOL_DEFAULT INT32_MIN
/** checkout timeout: wait without a deadline. */
#define FDN_POOL_WAIT_FOREVER ((int64_t)-1)
/** checkout timeout: use the pool's `checkout_timeout_ms`. */
#define FDN_POOL_TIMEOUT_DEFAULT ((int64_t)-2)

/** Built-in defaults (the config tree's infrastructure.connection_pool.default_config). */
#define FDN_POOL_DEFAULT_SIZE         10
/** Default max_overflow: connections allowed past size under load. */
#define FDN_POOL_DEFAULT_MAX_OVERFLOW 5
/** Default checkout timeout in milliseconds. */
#define FDN_POOL_DEFAULT_TIMEOUT_MS   5000
/** Capacity of a pool name, NUL included. */
#define FDN_POOL_NAME_MAX             64

/** What a leak report carries (valid only during the callback). */
typedef struct fdn_pool_leak {
    const char *pool_name; /**< the pool's name */
    void *conn;            /**< the leaked worker's connection (do not use it) */
    int64_t age_ns;        /**< how long it has been checked out */
    char **backtrace;      /**< symbolised frames of the borrower (may be NULL) */
    int backtrace_len;     /**< number of frames */
} fdn_pool_leak_t;

/**
 * Pool options. Set with FDN_POOL_OPTS_INIT, then change fields. Fields are only appended.
 * Times are milliseconds; 0 disables a timed feature unless noted.
 */
typedef struct fdn_pool_opts {
    uint32_t version;             /**< FDN_POOL_OPTS_VERSION */
    const char *name;             /**< pool name for status/telemetry (copied); NULL = "pool" */
    int size;                     /**< permanent workers, >= 0 (FDN_POOL_DEFAULT: 10) */
    int max_overflow;             /**< extra temporary workers, >= 0 (FDN_POOL_DEFAULT: 5) */
    fdn_pool_strategy_t strategy; /**< lifo / fifo (FDN_POOL_STRATEGY_DEFAULT: lifo) */
    /** Used by FDN_POOL_TIMEOUT_DEFAULT: ms, or FDN_POOL_WAIT_FOREVER (no deadline); default
     * 5000. */
    int64_t checkout_timeout_ms;
    /** Make a worker: store it in *conn, return 0 or a negative FDN_E* code (a positive value
     * is reported as FDN_EDEPENDENCY). Required. Runs in the thread that needs the worker,
     * never under a pool lock. */
    int (*create)(void **conn, void *user);
    /** Release a worker. Optional. Runs in the thread that drops it, no lock held. */
    void (*destroy)(void *conn, void *user);
    /** Check a worker before it is lent after being idle for validate_after_idle_ms;
     * return 0 if healthy. Optional. Runs in the checking-out thread, no lock held. A failing
     * worker is destroyed (counted in status.broken) and the checkout goes on with the next
     * idle worker (validated in turn), or creates one when none is left; if the pool is shut
     * down meanwhile, the checkout fails with FDN_ESHUTDOWN. */
    int (*validate)(void *conn, void *user);
    /** Prepare a returned worker for reuse; return 0 if reusable, otherwise it is destroyed
     * and replaced. Optional. Runs in the thread checking it in, no lock held. */
    int (*reset)(void *conn, void *user);
    /** Passed to every callback. Never freed by the pool. */
    void *user;
    /** Validate a worker idle longer than this before lending it; 0 = every checkout;
     * -1 (default) = never. */
    int64_t validate_after_idle_ms;
    /** Destroy a worker older than this (minus a random jitter) when it is next idle. */
    int64_t max_lifetime_ms;
    /** Up to this much is subtracted at random from each worker's max lifetime. */
    int64_t lifetime_jitter_ms;
    /** Destroy a worker idle longer than this (the pool refills on demand). */
    int64_t idle_timeout_ms;
    /** Keep a returned overflow worker idle for this long instead of destroying it at
     * checkin (0 = poolboy: destroy at once). */
    int64_t overflow_ttl_ms;
    /** Report a lease older than this (0 = off). Turning it on captures the borrower's
     * backtrace at every checkout. */
    int64_t leak_threshold_ms;
    /** Leak report callback (optional; counts are kept either way). Runs in the thread
     * running the reaper or fdn_pool_reap(), no lock held; once per lease. */
    void (*on_leak)(const fdn_pool_leak_t *leak, void *user);
    /** Period of the reaper thread; 0 (default) = no thread (maintenance is lazy and on
     * fdn_pool_reap()). */
    int64_t reap_interval_ms;
    /** Create the `size` permanent workers at creation (default true, as poolboy). */
    bool prefill;
    /** Clock for every timed feature and checkout deadlines (NULL: system clock). */
    fdn_clock_t *clock;
    /** Telemetry sink (NULL: none): checkout, checkin, timeout events. */
    fdn_telemetry_t *telemetry;
    /** Reclaim a lease held longer than this (0 = off; version >= 2): maintenance
     * (fdn_pool_reap, the reaper thread) takes its slot back for a new worker, so a borrower
     * that never returns cannot shrink the pool for good. The connection itself is never
     * touched while its holder may use it: it is destroyed (not reused) when the holder
     * finally checks it in, and the pool's memory is freed only after that. Counted in
     * status.reclaimed and status.reclaimed_out. @since 0.2.0 */
    int64_t reclaim_after_ms;
} fdn_pool_opts_t;

/** Current version of fdn_pool_opts_t, set by the matching _INIT initialiser. Version 2
 * adds reclaim_after_ms. */
#define FDN_POOL_OPTS_VERSION 2
/** Initialiser of fdn_pool_opts_t with every default. */
#define FDN_POOL_OPTS_INIT                                                                         \
    {                                                                                              \
        .version = FDN_POOL_OPTS_VERSION, .name = NULL, .size = FDN_POOL_DEFAULT,                  \
        .max_overflow = FDN_POOL_DEFAULT, .strategy = FDN_POOL_STRATEGY_DEFAULT,                   \
        .checkout_timeout_ms = FDN_POOL_DEFAULT_TIMEOUT_MS, .create = NULL, .destroy = NULL,       \
        .validate = NULL, .reset = NULL, .user = NULL, .validate_after_idle_ms = -1,               \
        .max_lifetime_ms = 0, .lifetime_jitter_ms = 0, .idle_timeout_ms = 0, .overflow_ttl_ms = 0, \
        .leak_threshold_ms = 0, .on_leak = NULL, .reap_interval_ms = 0, .prefill = true,           \
        .clock = NULL, .telemetry = NULL, .reclaim_after_ms = 0                                    \
    }

/** A pool's status. Fields are only appended. */
typedef struct fdn_pool_status {
    int size;                    /**< configured permanent workers */
    int max_overflow;            /**< configured overflow limit */
    int workers;                 /**< workers that exist now (available + in_use) */
    int available;               /**< idle workers ready for checkout */
    int in_use;                  /**< workers checked out */
    int overflow;                /**< workers beyond size: max(0, workers - size) */
    int waiters;                 /**< callers waiting for a worker */
    fdn_pool_state_t state;      /**< poolboy state from in_use (see fdn_pool_state_t) */
    bool closed;                 /**< shut down */
    int64_t oldest_lease_age_ns; /**< age of the oldest checkout, 0 when none */
    uint64_t checkouts;          /**< successful checkouts */
    uint64_t timeouts;           /**< checkouts that timed out */
    uint64_t created;            /**< workers created */
    uint64_t destroyed;          /**< workers destroyed */
    uint64_t broken;             /**< workers reported broken or failing reset/validate */
    uint64_t create_failures;    /**< failed create callbacks */
    uint64_t leaks;              /**< leases reported as leaked */
    uint64_t full;               /**< checkouts that could not wait (timeout 0) refused with
                                      FDN_EBUSY because the pool was full (since 0.2.0) */
    uint64_t reclaimed;          /**< leases reclaimed after reclaim_after_ms (since 0.2.0) */
    int reclaimed_out;           /**< reclaimed leases whose holder has not checked them in
                                      yet; not counted in in_use or workers (since 0.2.0) */
} fdn_pool_status_t;

/* ------------------------------------------------------------------------------------------
 * Standalone pools
 * ------------------------------------------------------------------------------------------ */

/**
 * Create a pool. With `prefill` the `size` permanent workers are created now; if one fails,
 * those already made are destroyed and the create error is returned.
 * @param[out] out  the pool (one reference, released by fdn_pool_destroy)
 * @param[in]  opts options (create callback required)
 * @param[out] err  optional detail
 * @return 0, FDN_EINVAL (bad option: unknown options version, negative size/overflow, both
 *         0, a sum over INT_MAX, bad strategy, a negative time other than
 *         checkout_timeout_ms = FDN_POOL_WAIT_FOREVER, no create callback, name too long),
 *         FDN_ENOMEM, FDN_EAGAIN (the reaper thread could not be started), or, with prefill,
 *         the create callback's error (FDN_EDEPENDENCY when it returned a positive value)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pool_create(fdn_pool_t **out, const fdn_pool_opts_t *opts, fdn_error_t *err);

/**
 * Stop the pool: new checkouts fail with FDN_ESHUTDOWN, waiters are released with
 * FDN_ESHUTDOWN, idle workers are destroyed, the reaper thread is joined, and the call waits
 * up to timeout_ms (real time) for leases to be returned; later checkins destroy their
 * worker. Idempotent.
 * @return 0, or FDN_ETIMEDOUT when leases were still out at the timeout
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pool_shutdown(fdn_pool_t *p, int64_t timeout_ms);

/**
 * Shut the pool down (without waiting for leases) and drop the caller's reference. Memory
 * is freed when the last reference is dropped and the last lease returned. NULL accepted.
 * @thread_safety owner of this reference: no other call may use it; leases may still be
 *                checked in concurrently from other threads (the last checkin frees).
 * @since 0.1.0
 */
FDN_API void fdn_pool_destroy(fdn_pool_t *p);

/** Take another reference to a pool (e.g. one obtained from fdn_pools_get).
 * @thread_safety any @since 0.1.0 */
FDN_API void fdn_pool_retain(fdn_pool_t *p);

/** Drop a reference taken by fdn_pool_retain or fdn_pools_get. NULL accepted.
 * @thread_safety any @since 0.1.0 */
FDN_API void fdn_pool_release(fdn_pool_t *p);

/**
 * Check a worker out, waiting in FIFO order until timeout_ms.
 * @param[in]  p          the pool
 * @param[out] out        the lease; give it back with fdn_pool_checkin or
 *                        fdn_pool_checkin_broken exactly once
 * @param[in]  timeout_ms ms to wait (0: do not wait), FDN_POOL_WAIT_FOREVER or
 *                        FDN_POOL_TIMEOUT_DEFAULT
 * @param[out] err        optional; on FDN_ETIMEDOUT or FDN_EBUSY its context holds pool,
 *                        in_use and oldest_lease_age_ms
 * @return 0; FDN_EBUSY when timeout_ms is 0 and the pool is full (no idle worker, no room for
 *         another, or callers already waiting: poolboy's `full`, counted in status.full);
 *         FDN_ETIMEDOUT when a wait ran out; FDN_ESHUTDOWN (also when the pool shut down while
 *         the checkout validated a worker that failed), FDN_EINVAL, FDN_ENOMEM, or the create
 *         callback's error (FDN_EDEPENDENCY for a positive value) when a new worker could not
 *         be made
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pool_checkout(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                              fdn_error_t *err);

/** The connection of a lease. @thread_safety any (by the lease holder) @since 0.1.0 */
FDN_API void *fdn_pool_worker_conn(const fdn_pool_worker_t *w);

/**
 * Check a worker out for an owner: as fdn_pool_checkout, and the lease carries `owner` (any
 * non-zero token the caller chooses: a request id, a thread's, a pointer's bits), so that
 * fdn_pool_release_owner can give back every lease of that owner at once, for instance when a
 * request fails half-way (poolboy monitors the borrower process for the same reason). The
 * token belongs to this lease only: once the lease ends (checked in, also when the worker goes
 * straight to a waiter) release_owner no longer finds it.
 * @return as fdn_pool_checkout, and FDN_EINVAL for owner 0 (nothing is checked out)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_pool_checkout_owned(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                                    uint64_t owner, fdn_error_t *err);

/**
 * Give back every lease `owner` still holds (fdn_pool_checkout_owned): checked in as by
 * fdn_pool_checkin, or, with `broken`, destroyed and replaced as by fdn_pool_checkin_broken.
 * The owner must not use those leases afterwards. A lease given back meanwhile by its holder
 * is not counted: when the holder's checkin and this call end the same lease at once, exactly
 * one of them gives it back (the reset callback runs once); if it is this call, the holder's
 * checkin returns FDN_EINVAL.
 * @return how many leases were given back (>= 0), or FDN_EINVAL (p NULL, owner 0)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_pool_release_owner(fdn_pool_t *p, uint64_t owner, bool broken);

/**
 * Return a lease. The reset callback runs first (a failure counts as broken). The worker
 * goes to the oldest waiter, else is destroyed (overflow, expired, pool closed) or becomes
 * idle. A lease that was reclaimed (reclaim_after_ms) is accepted too: its worker is destroyed
 * without the reset callback.
 * @return 0, or FDN_EINVAL (NULL, a worker not checked out from this pool, or a lease that
 * already ended, e.g. a second checkin after the worker went to a waiter: refused before the
 * reset callback, nothing changes)
 * @thread_safety any (by the lease holder)
 * @since 0.1.0
 */
FDN_API int fdn_pool_checkin(fdn_pool_t *p, fdn_pool_worker_t *w);

/**
 * Return a lease whose connection is broken: it is destroyed and, while the pool has fewer
 * than `size` workers or a caller waits, a replacement is created in this thread.
 * @return 0, or FDN_EINVAL (as fdn_pool_checkin)
 * @thread_safety any (by the lease holder)
 * @since 0.1.0
 */
FDN_API int fdn_pool_checkin_broken(fdn_pool_t *p, fdn_pool_worker_t *w);

/** Function run with a pooled connection. Returning FDN_EPOOL_BROKEN marks the worker
 * broken (destroyed and replaced). */
typedef int (*fdn_pool_fn)(void *conn, void *arg);

/**
 * Check out, run fn(conn, arg), and always check the worker back in (as broken when fn
 * returns FDN_EPOOL_BROKEN). Emits checkout/checkin/timeout telemetry.
 * @return fn's return value, or the checkout's error (FDN_ETIMEDOUT, FDN_ESHUTDOWN, ...)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pool_with(fdn_pool_t *p, fdn_pool_fn fn, void *arg, int64_t timeout_ms,
                          fdn_error_t *err);

/**
 * Run maintenance now: destroy idle workers past their lifetime or idle timeout and idle
 * overflow workers past the overflow TTL, refill to `size` after expiries, report leases
 * older than the leak threshold, and reclaim leases held reclaim_after_ms or longer.
 * @return the number of workers destroyed plus leaks reported plus leases reclaimed (>= 0), or
 *         FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pool_reap(fdn_pool_t *p);

/** Fill *out with the pool's status. @return 0 or FDN_EINVAL @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_pool_status(fdn_pool_t *p, fdn_pool_status_t *out);

/** The pool's name (static for the pool's lifetime). @thread_safety any @since 0.1.0 */
FDN_API const char *fdn_pool_name(const fdn_pool_t *p);

/** "lifo" / "fifo"; parse returns 0 or FDN_EINVAL. @thread_safety any @since 0.1.0 */
FDN_API const char *fdn_pool_strategy_name(fdn_pool_strategy_t s);
/** Parse "lifo"/"fifo" (len bytes). @return 0 or FDN_EINVAL @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_pool_strategy_parse(const char *s, size_t len, fdn_pool_strategy_t *out);
/** "ready" / "overflow" / "full". @thread_safety any @since 0.1.0 */
FDN_API const char *fdn_pool_state_name(fdn_pool_state_t s);

/* ------------------------------------------------------------------------------------------
 * The pool manager (named pools, one manager per runtime)
 * ------------------------------------------------------------------------------------------ */

/** Manager options. */
typedef struct fdn_pools_opts {
    uint32_t version;                     /**< FDN_POOLS_OPTS_VERSION */
    fdn_clock_t *clock;                   /**< default clock for pools that do not set one */
    fdn_telemetry_t *telemetry;           /**< default telemetry (pool_started/pool_stopped too) */
    int default_size;                     /**< FDN_POOL_DEFAULT = 10 */
    int default_max_overflow;             /**< FDN_POOL_DEFAULT = 5 */
    fdn_pool_strategy_t default_strategy; /**< FDN_POOL_STRATEGY_DEFAULT = lifo */
} fdn_pools_opts_t;

/** Current version of fdn_pools_opts_t, set by the matching _INIT initialiser. */
#define FDN_POOLS_OPTS_VERSION 1
/** Initialiser of fdn_pools_opts_t with every default. */
#define FDN_POOLS_OPTS_INIT                                                                        \
    {                                                                                              \
        .version = FDN_POOLS_OPTS_VERSION, .clock = NULL, .telemetry = NULL,                       \
        .default_size = FDN_POOL_DEFAULT, .default_max_overflow = FDN_POOL_DEFAULT,                \
        .default_strategy = FDN_POOL_STRATEGY_DEFAULT                                              \
    }

/** One entry of fdn_pools_list. */
typedef struct fdn_pool_info {
    char name[FDN_POOL_NAME_MAX]; /**< the pool's name */
    fdn_pool_status_t status;     /**< its status */
} fdn_pool_info_t;

/** Create a manager. @return 0, FDN_EINVAL, FDN_ENOMEM @thread_safety any @since 0.1.0 */
FDN_API int fdn_pools_create(fdn_pools_t **out, const fdn_pools_opts_t *opts);

/** Stop every pool and free the manager. NULL accepted. @thread_safety owner @since 0.1.0 */
FDN_API void fdn_pools_destroy(fdn_pools_t *m);

/**
 * Set the defaults used for FDN_POOL_DEFAULT fields of pools started later (the runtime
 * calls this from infrastructure.connection_pool.default_config).
 * @return 0, or FDN_EINVAL (size < 0, max_overflow < 0, both 0, a sum over INT_MAX, bad
 *         strategy)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pools_set_defaults(fdn_pools_t *m, int size, int max_overflow,
                                   fdn_pool_strategy_t strategy);

/**
 * Start a named pool. opts->name is ignored (the pool takes `name`); FDN_POOL_DEFAULT
 * fields take the manager's defaults, a NULL clock/telemetry the manager's. Only the fields of
 * opts->version are read, as by fdn_pool_create.
 * @param[out] out optional: a new reference to the pool (release with fdn_pool_release)
 * @return 0, FDN_EEXIST, FDN_EINVAL (bad name or options), FDN_ENOMEM, FDN_EUNAVAILABLE
 *         (manager stopped), or fdn_pool_create's other errors (FDN_EAGAIN, the create
 *         callback's)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pools_start(fdn_pools_t *m, const char *name, const fdn_pool_opts_t *opts,
                            fdn_pool_t **out, fdn_error_t *err);

/** Stop and forget a named pool (fdn_pool_shutdown without waiting, then release).
 * @return 0, FDN_ENOENT, FDN_EUNAVAILABLE @thread_safety any @since 0.1.0 */
FDN_API int fdn_pools_stop(fdn_pools_t *m, const char *name);

/** Look a pool up: *out gets a new reference (release with fdn_pool_release).
 * @return 0, FDN_ENOENT, FDN_EUNAVAILABLE @thread_safety any @since 0.1.0 */
FDN_API int fdn_pools_get(fdn_pools_t *m, const char *name, fdn_pool_t **out);

/** fdn_pool_with on a named pool. @return fn's value, FDN_ENOENT (no such pool),
 * FDN_EUNAVAILABLE, or checkout errors @thread_safety any @since 0.1.0 */
FDN_API int fdn_pools_with(fdn_pools_t *m, const char *name, fdn_pool_fn fn, void *arg,
                           int64_t timeout_ms, fdn_error_t *err);

/** Status of a named pool. @return 0, FDN_ENOENT, FDN_EUNAVAILABLE @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_pools_status(fdn_pools_t *m, const char *name, fdn_pool_status_t *out);

/**
 * Every managed pool with its status, sorted by name.
 * @param[out] out array (free with fdn_free; NULL when n is 0)
 * @param[out] n   number of entries
 * @return 0, FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_pools_list(fdn_pools_t *m, fdn_pool_info_t **out, size_t *n);

FDN_END_DECLS

#endif /* FDN_POOL_H */
