/**
 * @file runtime.h
 * @brief The runtime: one isolated namespace (the reference's `:production` or
 *        `{:test, ref}`) owning a registry, the built-in services, a task pool and a
 *        one-for-one supervisor (docs/threading.md).
 *
 * Start order (docs/threading.md): registry, config server, event store, telemetry,
 * connection manager, rate limiter, task pool, then the application's services in the order
 * they were added. Shutdown goes in reverse, from the last service to the first; the task
 * pool runs its queued tasks when it stops. Built-in services whose module is not part of the build
 * yet are simply absent.
 *
 * Every supervised service is registered in the runtime's registry under its name (handle =
 * its state object) when it starts (if the name is already taken there, its start fails with
 * FDN_EEXIST); the entry stays through a restart (the object is
 * stable; calls answer FDN_EUNAVAILABLE meanwhile) and is removed when the service stops for
 * good (shutdown, normal exit, not restarted). The task pool is registered as
 * "task_supervisor".
 *
 * Past the restart intensity the runtime escalates: all services stop, the runtime is
 * marked failed (fdn_runtime_health gives FDN_RUNTIME_FAILED) and `on_escalation` runs.
 *
 * No mutable global state other than the optional default runtime pointer.
 *
 * @since 0.1.0
 */
#ifndef FDN_RUNTIME_H
#define FDN_RUNTIME_H

#include "common.h"
#include "clock.h"
#include "error.h"
#include "registry.h"
#include "supervisor.h"
#include "tasks.h"

FDN_BEGIN_DECLS

/** Opaque handle: a runtime object, used through the fdn_runtime_* functions. */
typedef struct fdn_runtime fdn_runtime_t;

/** Flags for fdn_runtime_opts_t.flags. */
#define FDN_RUNTIME_NO_START (1u << 0) /**< create without starting: call fdn_runtime_start */
#define FDN_RUNTIME_NO_BUILTINS                                                                    \
    (1u << 1) /**< no built-in services (registry and task pool                                    \
                   still exist): for tests of app services */

/**
 * Called once when the runtime escalates (restart intensity exceeded), after every service
 * was stopped. Runs on the supervisor thread with no lock held; it may call
 * fdn_runtime_shutdown but not fdn_runtime_destroy.
 * @param service the service whose failure exceeded the intensity; code its failure code
 */
typedef void (*fdn_runtime_escalation_fn)(fdn_runtime_t *rt, const char *service, int code,
                                          void *user);

/**
 * Called for every restart the supervisor decides (see fdn_sup_restart_fn), on the
 * supervisor thread with no lock held.
 */
typedef void (*fdn_runtime_restart_fn)(fdn_runtime_t *rt, const char *service, int attempt,
                                       int reason, void *user);

/** Runtime options. New fields are only appended. */
typedef struct fdn_runtime_opts {
    uint32_t version;                        /**< FDN_RUNTIME_OPTS_VERSION */
    const char *name;                        /**< namespace name; NULL: "production". Copied. */
    const char *config_path;                 /**< JSON config file; NULL: defaults + environment */
    const char *data_dir; /**< durable data directory; NULL: in-memory storage. Created if
                               missing and locked for the runtime's lifetime (an exclusive
                               flock on data_dir/lock): a second runtime on it, in any process,
                               fails with FDN_EBUSY naming the owner's pid */
    fdn_clock_t *clock;                      /**< NULL: system clock; must outlive the runtime */
    fdn_runtime_escalation_fn on_escalation; /**< optional */
    fdn_runtime_restart_fn on_restart;       /**< optional */
    void *user;                              /**< passed to the callbacks */
    int max_restarts;                        /**< restart intensity: N restarts ... (default 3) */
    int64_t period_ns;                       /**< ... within this period (default 5 s) */
    int64_t backoff_base_ns;                 /**< first restart delay (default 10 ms) */
    int64_t backoff_max_ns;                  /**< cap of the doubling delay (default 1 s) */
    int64_t health_interval_ns; /**< health poll period of built-in services (default 1 s;
                                     0: no polling) */
    unsigned task_workers;      /**< task pool threads (default 2) */
    size_t task_queue;          /**< task pool queue capacity (default 1024) */
    uint32_t flags;             /**< FDN_RUNTIME_* flags */
    /** Application config sections: keys registered in the config schema before the
     *  config service starts (copied; see config.h). */
    const struct fdn_config_key_def *config_keys;
    size_t config_nkeys;     /**< number of config_keys */
    const char *const *envp; /**< environment for config overrides ("NAME=value",
                                  NULL-terminated); NULL: the process environment */
    bool ignore_env;         /**< true: no environment overrides */
    bool events_fast;        /**< durable event tier in `fast` mode (default durable) */
    /** version >= 2: when not NULL, the runtime's registry is made by fdn_registry_open with
     *  these options (a shared part on etcd, namespace = the runtime's name), and its config
     *  service follows the same etcd (fdn_config_follow_etcd, same namespace); etcd must
     *  answer at create unless start_unreachable is set (then both start stale and follow
     *  once etcd answers). A lease_ttl_ms of 0 takes the config's
     *  infrastructure.registry.lease_ttl_ms, a request_timeout_ms of 0 the config's
     *  infrastructure.registry.request_timeout_ms (the bound on each etcd call of both the
     *  registry and the config follower). NULL: in-process only. Read during create only. */
    const fdn_registry_etcd_opts_t *registry_etcd;
} fdn_runtime_opts_t;

/** Current version of fdn_runtime_opts_t, set by the matching _INIT initialiser. 2:
 * registry_etcd (0.3.0); version 1 structures are still accepted. */
#define FDN_RUNTIME_OPTS_VERSION 2
/** Initialiser of fdn_runtime_opts_t with every default. */
#define FDN_RUNTIME_OPTS_INIT                                                                      \
    {                                                                                              \
        FDN_RUNTIME_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, 5000000000LL,       \
            10000000LL, 1000000000LL, 1000000000LL, 2, 1024, 0, NULL, 0, NULL, false, false, NULL  \
    }

/** Overall status (reference `health().status`, plus failed/stopped). */
typedef enum fdn_runtime_status {
    FDN_RUNTIME_HEALTHY = 0, /**< every service that should run is running and healthy */
    FDN_RUNTIME_DEGRADED,    /**< some service is restarting, failed or unhealthy */
    FDN_RUNTIME_FAILED,      /**< escalated: restart intensity exceeded, services stopped */
    FDN_RUNTIME_STOPPED,     /**< not started yet, or shut down */
} fdn_runtime_status_t;

/** Summary filled by fdn_runtime_health. */
typedef struct fdn_runtime_health {
    fdn_runtime_status_t status; /**< overall status */
    size_t services;             /**< supervised services */
    size_t running;              /**< of which RUNNING */
    size_t restarting;           /**< of which RESTARTING */
    size_t failed;               /**< of which FAILED */
    int64_t timestamp_ns;        /**< runtime clock, monotonic */
    int64_t uptime_ns;           /**< since fdn_runtime_start (0 if not started) */
} fdn_runtime_health_t;

/**
 * Create a runtime: its registry, built-in services and task pool, then start it (unless
 * FDN_RUNTIME_NO_START).
 * @param[out] out   the runtime
 * @param[in]  opts  options (copied), NULL for defaults
 * @param[out] err   optional detail
 * @return 0, FDN_EINVAL (bad options), FDN_ENOMEM, FDN_EAGAIN (threads), FDN_EBUSY (the
 *         data directory is another runtime's), FDN_EACCES / FDN_EIO (the data directory
 *         cannot be made or locked), or the code of a built-in service that failed to create
 *         or start (e.g. FDN_ECONFIG_*); on error nothing is left behind.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_create(fdn_runtime_t **out, const fdn_runtime_opts_t *opts,
                               fdn_error_t *err);

/**
 * Start the supervised services in order (only after FDN_RUNTIME_NO_START). If one fails
 * to start, those already started are stopped in reverse order and the runtime is left as
 * before the call, not started: once the cause is fixed, call start again (or destroy it).
 * That includes the config service, which runs from create and keeps running: reads and
 * updates of fdn_runtime_config() work between the failed start and the retry as they did
 * before the first start (not FDN_EUNAVAILABLE, not queued); so does the task pool, which
 * also runs from create (fdn_runtime_tasks() takes and runs tasks).
 * @return 0, FDN_EBUSY (already started), FDN_ESHUTDOWN, a service's start code
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_start(fdn_runtime_t *rt, fdn_error_t *err);

/**
 * Stop the runtime: stop the services in reverse start order (application services, then
 * the task pool, which runs its queued tasks first, then the built-ins), then shut the task
 * pool down for good. Idempotent and thread-safe. From a task of the runtime's own pool
 * (whose stop runs that task to its end), a subscriber of fdn_runtime_config() or
 * fdn_runtime_events() (whose stop joins the delivery thread), a telemetry handler run on a
 * thread of theirs (the config's hook thread, the event store's writer, pruner or PostgreSQL
 * follower: what they count), a service's start/stop/health, its worker loop or a supervisor
 * callback it only requests the stop and returns 0; a later call from another thread, or destroy,
 * completes it. Once every service has stopped, the config changes the runtime's config hook had
 * not recorded are counted in fdn_config_status_t.dropped (docs/config.md). On a runtime never
 * started (FDN_RUNTIME_NO_START) or whose start failed, it stops the config service, which runs
 * from create, as it does on a started one: the calls of fdn_runtime_config() then answer as on a
 * stopped config service (FDN_EUNAVAILABLE, config.h).
 * @param[in] timeout_ms  bound for each of the two steps (real time); < 0: no limit. Before
 *            them the config changes the runtime's hook still has queued are recorded, for
 *            at most 5 s and no longer than timeout_ms (what is left is counted as dropped).
 * @return 0, FDN_ETIMEDOUT (still stopping: call again or destroy, which waits)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_shutdown(fdn_runtime_t *rt, int64_t timeout_ms);

/**
 * Shut down without a time limit and free everything the runtime owns (services' destroy
 * in reverse order, task pool, registry). Clears the default runtime if it was this one.
 * NULL accepted.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_runtime_destroy(fdn_runtime_t *rt);

/**
 * Add an application service, supervised like the built-ins (one_for_one, the runtime's
 * intensity). Before start it starts with the others, after the built-ins; after start it is
 * started at once. `spec->ops->start` receives the runtime as its `ctx`.
 * @return 0, FDN_EINVAL, FDN_EEXIST, FDN_ENOMEM, the service's start code, FDN_ESHUTDOWN,
 *         FDN_EESCALATED, FDN_ECANCELED (called from a task of the runtime's pool, or from a
 *         subscriber of fdn_runtime_config() or fdn_runtime_events(), while the supervisor
 *         stops that service: a restart or an escalation; the stop waits for the caller, so
 *         the add does not wait for the stop). On error the caller keeps spec->state.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_add_service(fdn_runtime_t *rt, const fdn_service_spec_t *spec,
                                    fdn_error_t *err);

/**
 * Fault hook: make the named supervised service fail as if its worker had returned `code`
 * (see fdn_supervisor_inject_fault). For tests and fault drills.
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EUNAVAILABLE, FDN_EINVAL, FDN_ESHUTDOWN
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_inject_fault(fdn_runtime_t *rt, const char *service, int code);

/**
 * Status of one supervised service (state, restarts, last error).
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_service_status(fdn_runtime_t *rt, const char *service,
                                       fdn_service_status_t *out);

/**
 * Overall health and, optionally, each service's status in start order.
 * @param[out] out       summary (required)
 * @param[out] services  optional array receiving up to `cap` statuses
 * @param[in]  cap       capacity of `services`
 * @param[out] n_out     optional: number of services (may exceed cap)
 * @return 0 or FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_runtime_health(fdn_runtime_t *rt, fdn_runtime_health_t *out,
                               fdn_service_status_t *services, size_t cap, size_t *n_out);

/** Static name of a status ("healthy", ...). @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_runtime_status_name(fdn_runtime_status_t s);

/** The runtime's registry (its namespace). Valid until destroy. @thread_safety any
 * @since 0.1.0 */
FDN_API fdn_registry_t *fdn_runtime_registry(fdn_runtime_t *rt);
/** The runtime's task pool. Valid until destroy. @thread_safety any  @since 0.1.0 */
FDN_API fdn_tasks_t *fdn_runtime_tasks(fdn_runtime_t *rt);

/* Built-in services. Each accessor returns a handle that is stable for the runtime's life
 * (a supervisor restart stops and starts the same object; while it is stopped its calls
 * answer FDN_EUNAVAILABLE), or NULL for a runtime created without built-ins. */
/** Opaque handle: a config service, used through the fdn_config_* functions. */
typedef struct fdn_config fdn_config_t;
/** Opaque handle: an event store, used through the fdn_events_* functions. */
typedef struct fdn_events fdn_events_t;
/** Opaque handle: a telemetry object, used through the fdn_telemetry_* functions. */
typedef struct fdn_telemetry fdn_telemetry_t;
/** Opaque handle: the connection manager (named pools), used through the fdn_pools_* functions. */
typedef struct fdn_pools fdn_pools_t;
/** Opaque handle: a limiter object, used through the fdn_limiter_* functions. */
typedef struct fdn_limiter fdn_limiter_t;
/** Opaque handle: a set of named circuit breakers, used through the fdn_breakers_* functions. */
typedef struct fdn_breakers fdn_breakers_t;
/** Opaque handle: a protected-execution object, used through the fdn_protect_* functions. */
typedef struct fdn_protect fdn_protect_t;

/** The config service ("config_server"). @thread_safety any  @since 0.1.0 */
FDN_API fdn_config_t *fdn_runtime_config(fdn_runtime_t *rt);
/** The event store ("event_store"); durable on SQLite under data_dir/events.db when the
 * runtime has a data directory, or under storage.warm.path when storage.warm.enable is
 * true. @thread_safety any  @since 0.1.0 */
FDN_API fdn_events_t *fdn_runtime_events(fdn_runtime_t *rt);
/** The telemetry service ("telemetry_service"). @thread_safety any  @since 0.1.0 */
FDN_API fdn_telemetry_t *fdn_runtime_telemetry(fdn_runtime_t *rt);
/** The connection manager ("connection_manager"). @thread_safety any  @since 0.1.0 */
FDN_API fdn_pools_t *fdn_runtime_pools(fdn_runtime_t *rt);
/** The rate limiter ("rate_limiter"). @thread_safety any  @since 0.1.0 */
FDN_API fdn_limiter_t *fdn_runtime_limiter(fdn_runtime_t *rt);
/** The runtime's named circuit breakers (defaults from
 * infrastructure.circuit_breaker.default_config). @thread_safety any  @since 0.1.0 */
FDN_API fdn_breakers_t *fdn_runtime_breakers(fdn_runtime_t *rt);
/** Protected execution over the runtime's limiter, breakers and pools, with its layers
 * switched by infrastructure.*.enabled. @thread_safety any  @since 0.1.0 */
FDN_API fdn_protect_t *fdn_runtime_protect(fdn_runtime_t *rt);

/**
 * Count an error in the runtime's telemetry as the reference does: counter
 * `foundation.errors.<category>.<subcategory>` with metadata error_type, severity and code.
 * Its signature is fdn_errctx_hook_fn, so it can be installed as an error-context hook:
 * `fdn_errctx_set_context_hook(fdn_runtime_error_hook, rt)`. The runtime does not know where
 * it was installed: remove it (or end those contexts) before fdn_runtime_destroy, as an error
 * after that would count into the freed runtime.
 * @param[in] err  the error (NULL ignored)
 * @param[in] rt   the runtime (as void *; NULL ignored)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_runtime_error_hook(const fdn_error_t *err, void *rt);
/** The runtime's supervisor (for fdn_supervisor_wait_idle and status). Valid until destroy.
 * @thread_safety any  @since 0.1.0 */
FDN_API fdn_supervisor_t *fdn_runtime_supervisor(fdn_runtime_t *rt);
/** The runtime's clock (NULL for the system clock). @thread_safety any  @since 0.1.0 */
FDN_API fdn_clock_t *fdn_runtime_clock(const fdn_runtime_t *rt);
/** The runtime's name. Valid until destroy. @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_runtime_name(const fdn_runtime_t *rt);
/** Data directory, or NULL for in-memory storage. @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_runtime_data_dir(const fdn_runtime_t *rt);
/** Config file path, or NULL. @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_runtime_config_path(const fdn_runtime_t *rt);

/**
 * The process default runtime, or NULL. Programs that want one set it after creating their
 * runtime; libraries never set it.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API fdn_runtime_t *fdn_runtime_default(void);

/**
 * Set (or clear with NULL) the process default runtime.
 * @return the previous default
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API fdn_runtime_t *fdn_runtime_set_default(fdn_runtime_t *rt);

FDN_END_DECLS

#endif /* FDN_RUNTIME_H */
