/**
 * @file supervisor.h
 * @brief Supervised services (docs/threading.md): a service is a
 *        value with a small vtable; a supervisor starts services in order, restarts failed
 *        ones by strategy within a restart intensity, with exponential backoff, and escalates
 *        when the intensity is exceeded.
 *
 * A service is a stable object (`state`): a restart is `stop(state)` then `start(state)` on
 * the same object, so handles held by callers never dangle (a known defect of the reference,
 * fixed here). While a
 * service is stopped or waiting to be restarted, its public calls must answer
 * FDN_EUNAVAILABLE at once: each service keeps its own "running" flag, set by `start` and
 * cleared by `stop`, and checks it on entry. The supervisor calls `stop` as soon as it
 * handles a failure, before the backoff delay, so calls are gated for the whole restart.
 *
 * Failures come from three sources: a worker loop (`run`) returning a negative code (or 0
 * when nobody asked it to stop), a health check (`health`, polled on the supervisor clock)
 * returning non-zero, and the fault hook fdn_supervisor_inject_fault().
 *
 * Restart decision (OTP semantics): permanent services are always restarted; transient ones
 * only after a failure (negative code), not after a normal exit (worker returned 0);
 * temporary ones never, not even when a sibling's failure stops them under one_for_all or
 * rest_for_one. Every restart counts toward the intensity: more than `max_restarts` restarts
 * within `period_ns` escalates: the supervisor stops every service in reverse order, marks
 * itself failed (fdn_supervisor_failed) and calls `on_escalation` once.
 *
 * Time: all waits use the supervisor's clock (fdn_clock_wait_until), so with a manual clock
 * tests drive backoff and health polling by advancing the clock, never by sleeping.
 *
 * Threads: one supervisor thread per started supervisor (restarts, health polls), plus one
 * thread per service that has a worker loop. Callbacks never run under the supervisor's
 * lock. See docs/threading.md.
 *
 * @since 0.1.0
 */
#ifndef FDN_SUPERVISOR_H
#define FDN_SUPERVISOR_H

#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** Opaque handle: a supervisor object, used through the fdn_supervisor_* functions. */
typedef struct fdn_supervisor fdn_supervisor_t;
/** Control block handed to a service's worker loop. Valid while the loop runs. */
typedef struct fdn_service_ctl fdn_service_ctl_t;

/** Longest service name, in bytes (without the NUL). */
#define FDN_SERVICE_NAME_MAX 63

/** Restart strategies (which services a failure restarts). */
typedef enum fdn_sup_strategy {
    FDN_SUP_ONE_FOR_ONE = 0, /**< only the failed service (reference default) */
    FDN_SUP_ONE_FOR_ALL,     /**< every service: stop all in reverse, start all in order */
    FDN_SUP_REST_FOR_ONE,    /**< the failed service and every service started after it */
} fdn_sup_strategy_t;

/** Restart types of a service. */
typedef enum fdn_restart {
    FDN_RESTART_PERMANENT = 0, /**< always restarted (reference default) */
    FDN_RESTART_TRANSIENT,     /**< restarted only after a failure (negative code) */
    FDN_RESTART_TEMPORARY,     /**< never restarted */
} fdn_restart_t;

/** Life-cycle state of one supervised service. */
typedef enum fdn_service_state {
    FDN_SERVICE_STOPPED = 0, /**< not started yet, or stopped (shutdown, normal exit) */
    FDN_SERVICE_STARTING,    /**< its start callback is running */
    FDN_SERVICE_RUNNING,     /**< started; calls are served */
    FDN_SERVICE_RESTARTING,  /**< stopped after a failure, restart pending (backoff) */
    FDN_SERVICE_FAILED,      /**< failed and will not be restarted (temporary, escalation) */
} fdn_service_state_t;

/**
 * A service's vtable. Every callback receives the `state` pointer given in the spec.
 * Callbacks never run under a supervisor lock; start/stop/health of one supervisor's services
 * are never called concurrently with each other (they are serialised by the supervisor).
 */
typedef struct fdn_service_ops {
    /** Start (or restart) the service: set its running flag last. Required.
     * @param ctx the supervisor's opts.ctx (the runtime passes itself)
     * @return 0, or a negative FDN_E* code (err filled when useful). */
    int (*start)(void *state, void *ctx, fdn_error_t *err);
    /** Stop the service: clear its running flag first, so new calls answer FDN_EUNAVAILABLE,
     * then release what start acquired; state that must survive a restart is kept. The
     * worker loop, if any, has already returned. Required. */
    void (*stop)(void *state);
    /** Optional health check, polled every spec.health_interval_ns on the supervisor
     * thread: 0 healthy, anything else is a failure (negative codes are kept as the
     * reason; other values become FDN_EUNHEALTHY). */
    int (*health)(void *state);
    /** Optional worker loop, run on its own thread after a successful start. It must return
     * 0 promptly once fdn_service_should_stop(ctl) is true (wait with fdn_service_wait);
     * returning a negative code reports a failure; returning 0 unasked is a normal exit. */
    int (*run)(void *state, fdn_service_ctl_t *ctl);
    /** Optional: free `state` when the supervisor is destroyed. */
    void (*destroy)(void *state);
} fdn_service_ops_t;

/** Describes a service to add. New fields are only appended. */
typedef struct fdn_service_spec {
    uint32_t version;             /**< FDN_SERVICE_SPEC_VERSION */
    const char *name;             /**< unique within the supervisor, 1..FDN_SERVICE_NAME_MAX
                                       bytes; copied */
    const fdn_service_ops_t *ops; /**< vtable; must outlive the supervisor (usually static) */
    void *state;                  /**< the service object (owned by the supervisor after a
                                       successful add if ops->destroy is set) */
    fdn_restart_t restart;        /**< default permanent */
    int64_t health_interval_ns;   /**< health poll period; 0: never polled */
} fdn_service_spec_t;

/** Current version of fdn_service_spec_t, set by the matching _INIT initialiser. */
#define FDN_SERVICE_SPEC_VERSION 1
/** Initialiser of fdn_service_spec_t with every default. */
#define FDN_SERVICE_SPEC_INIT                                                                      \
    {                                                                                              \
        FDN_SERVICE_SPEC_VERSION, NULL, NULL, NULL, FDN_RESTART_PERMANENT, 0                       \
    }

/**
 * Called once when the restart intensity is exceeded, after every service was stopped.
 * Runs on the supervisor thread, no lock held. It may call fdn_supervisor_shutdown (which
 * then completes asynchronously) but not fdn_supervisor_destroy.
 * @param service the service whose failure exceeded the intensity
 * @param code    that failure's code
 */
typedef void (*fdn_sup_escalation_fn)(const char *service, int code, void *user);

/**
 * Called for each service the supervisor decides to restart, when it decides (before the
 * backoff delay). Supervisor thread, no lock held. A sibling whose restart is still pending
 * when its set is restarted again (one_for_all, rest_for_one: a restart of the set failed
 * before reaching it) is restarted once and reported once.
 * @param service  the service being restarted
 * @param attempt  1 for the first restart of this service within the intensity period,
 *                 then 2, 3...
 * @param reason   the code of the failure that caused the restart
 * @param backoff_ns delay before the restart
 */
typedef void (*fdn_sup_restart_fn)(const char *service, int attempt, int reason, int64_t backoff_ns,
                                   void *user);

/**
 * Called after every state change of a service, on the thread that made it (the supervisor
 * thread, or the caller of start/add/shutdown), no lock held. The runtime uses it to
 * register RUNNING services in its registry and remove STOPPED/FAILED ones.
 * @param state  the service's state pointer (its stable handle)
 * @param code   failure code for RESTARTING/FAILED, else 0
 */
typedef void (*fdn_sup_event_fn)(const char *service, void *state, fdn_service_state_t st, int code,
                                 void *user);

/** Supervisor options. New fields are only appended. */
typedef struct fdn_supervisor_opts {
    uint32_t version;                    /**< FDN_SUPERVISOR_OPTS_VERSION */
    const char *name;                    /**< used in thread names/messages; NULL: "supervisor" */
    fdn_clock_t *clock;                  /**< NULL: system clock; must outlive the supervisor */
    fdn_sup_strategy_t strategy;         /**< default one_for_one */
    int max_restarts;                    /**< intensity: restarts allowed per period (default 3;
                                              0: the first restart escalates) */
    int64_t period_ns;                   /**< intensity period (default 5 s) */
    int64_t backoff_base_ns;             /**< first restart delay (default 10 ms; 0: immediate) */
    int64_t backoff_max_ns;              /**< cap of the doubling delay (default 1 s) */
    void *ctx;                           /**< passed to every ops->start */
    fdn_sup_escalation_fn on_escalation; /**< optional */
    fdn_sup_restart_fn on_restart;       /**< optional */
    fdn_sup_event_fn on_event;           /**< optional */
    void *user;                          /**< passed to the callbacks */
    /** optional: called once when the intensity is exceeded, BEFORE the services are
     *  stopped (they still answer), so the escalation can be recorded in them; then the
     *  services stop and `on_escalation` runs. Same thread and rules as on_escalation. */
    fdn_sup_escalation_fn on_escalating;
} fdn_supervisor_opts_t;

/** Current version of fdn_supervisor_opts_t, set by the matching _INIT initialiser. */
#define FDN_SUPERVISOR_OPTS_VERSION 1
/** Initialiser of fdn_supervisor_opts_t with every default. */
#define FDN_SUPERVISOR_OPTS_INIT                                                                   \
    {                                                                                              \
        FDN_SUPERVISOR_OPTS_VERSION, NULL, NULL, FDN_SUP_ONE_FOR_ONE, 3, 5000000000LL, 10000000LL, \
            1000000000LL, NULL, NULL, NULL, NULL, NULL, NULL                                       \
    }

/** Status of one service (a copy; see fdn_supervisor_service_status). */
typedef struct fdn_service_status {
    char name[FDN_SERVICE_NAME_MAX + 1]; /**< the service's name */
    fdn_service_state_t state;           /**< current state */
    fdn_restart_t restart;               /**< its restart type */
    uint32_t restarts;                   /**< restarts since the supervisor was created */
    int last_error;                      /**< code of the last failure, 0 if none */
    int64_t last_error_ns;               /**< clock time of the last failure, 0 if none */
    int64_t restart_due_ns;              /**< RESTARTING: clock time of the pending restart */
    bool healthy;                        /**< RUNNING and the last health poll passed */
} fdn_service_status_t;

/**
 * Create a supervisor with no services, not started.
 * @param[out] out  the supervisor
 * @param[in]  opts options (copied), NULL for defaults
 * @return 0, FDN_EINVAL (bad version, negative intensity/period/backoff, unknown strategy),
 *         FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_create(fdn_supervisor_t **out, const fdn_supervisor_opts_t *opts);

/**
 * Add a service. Before fdn_supervisor_start it is only appended (started by start, in add
 * order); afterwards it is started at once (by the supervisor thread; the call waits) and
 * added only if its start succeeds.
 * @param[in]  sup   the supervisor
 * @param[in]  spec  the service (name copied)
 * @param[out] err   optional detail (the start callback's error when it fails)
 * @return 0; FDN_EINVAL (bad spec); FDN_EEXIST (name taken); FDN_ENOMEM; the start
 *         callback's code; FDN_ESHUTDOWN (shut down); FDN_EESCALATED (failed supervisor);
 *         FDN_ECANCELED (called from a worker loop that the supervisor is stopping).
 *         On error nothing is kept and destroy is not called: the caller keeps the state.
 * @thread_safety any (also from a service callback on the supervisor thread)
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_add(fdn_supervisor_t *sup, const fdn_service_spec_t *spec,
                               fdn_error_t *err);

/**
 * Start every added service in order on the calling thread, then the supervisor thread.
 * If a start fails, the services already started are stopped in reverse order and the
 * error is returned (like an application whose child fails to start); the supervisor is
 * then as before the call (not started, every service stopped, the failed one FAILED), so
 * start may be called again once the cause is fixed (unless it was shut down meanwhile).
 * @return 0, the failing start's code (err filled, with context service=\<name\>),
 *         FDN_EBUSY (already started), FDN_ESHUTDOWN, FDN_ENOMEM/FDN_EAGAIN (thread)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_start(fdn_supervisor_t *sup, fdn_error_t *err);

/**
 * Stop supervising and stop every service in reverse order (the supervisor thread does it,
 * then exits). Idempotent and thread-safe. Called from a service callback (on the supervisor
 * thread, or on the caller of fdn_supervisor_start while it starts the services) or from a
 * service's worker loop it only requests the stop and returns 0; destroy completes it.
 * @param[in] timeout_ms  how long to wait for the services to stop (real time); < 0: forever
 * @return 0, FDN_ETIMEDOUT (still stopping; destroy will wait)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_shutdown(fdn_supervisor_t *sup, int64_t timeout_ms);

/**
 * Shut down (waiting as long as needed), call each service's destroy in reverse order and
 * free the supervisor. NULL accepted.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_supervisor_destroy(fdn_supervisor_t *sup);

/**
 * Fault hook for tests and drills: make a running service fail as if its worker loop had
 * returned `code` (a negative code is a failure, 0 a normal exit). The supervisor thread
 * handles it like a real failure (strategy, intensity, backoff, escalation).
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EUNAVAILABLE (service not running), FDN_EINVAL
 *         (code > 0), FDN_ESHUTDOWN (supervisor not running)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_inject_fault(fdn_supervisor_t *sup, const char *service, int code);

/**
 * Copy the status of one service.
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_service_status(fdn_supervisor_t *sup, const char *service,
                                          fdn_service_status_t *out);

/** Number of services. @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_supervisor_count(fdn_supervisor_t *sup);

/**
 * Copy the status of the i-th service (start order).
 * @return 0, FDN_ENOENT (i out of range), FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_status_at(fdn_supervisor_t *sup, size_t i, fdn_service_status_t *out);

/** True once the restart intensity was exceeded (the supervisor escalated).
 * @thread_safety any  @since 0.1.0 */
FDN_API bool fdn_supervisor_failed(fdn_supervisor_t *sup);

/**
 * Block until the supervisor thread has handled every pending failure, command, due restart
 * and due health poll, and is parked waiting for a later clock time. Tests call it after
 * injecting a fault or advancing a manual clock. It waits on a condition variable, bounded
 * by timeout_ms of real time.
 * @return 0, FDN_ETIMEDOUT, FDN_ESHUTDOWN (no supervisor thread running)
 * @thread_safety any (not from the supervisor thread)
 * @since 0.1.0
 */
FDN_API int fdn_supervisor_wait_idle(fdn_supervisor_t *sup, int64_t timeout_ms);

/** The supervisor's clock. @thread_safety any  @since 0.1.0 */
FDN_API fdn_clock_t *fdn_supervisor_clock(const fdn_supervisor_t *sup);

/** Static name of a state ("running", ...). @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_service_state_name(fdn_service_state_t st);

/** True once the supervisor asked this worker loop to return. @thread_safety any
 * @since 0.1.0 */
FDN_API bool fdn_service_should_stop(const fdn_service_ctl_t *ctl);

/**
 * Wait on the supervisor's clock until deadline_ns, a stop request, or a clock kick.
 * A kick that happened since the previous wait returned (or since the start, for the first)
 * makes it return FDN_EAGAIN at once, so work announced by "update state, then
 * fdn_clock_kick" is never missed by a loop that checks its work and then waits.
 * @param[in] deadline_ns monotonic deadline on the supervisor clock; INT64_MAX: until stop
 * @return 0 (deadline reached), FDN_ECANCELED (stop requested: return from run),
 *         FDN_EAGAIN (woken early: re-check your work and wait again)
 * @thread_safety serial (the worker thread that owns ctl)
 * @since 0.1.0
 */
FDN_API int fdn_service_wait(fdn_service_ctl_t *ctl, int64_t deadline_ns);

/** The clock workers should use. @thread_safety any  @since 0.1.0 */
FDN_API fdn_clock_t *fdn_service_clock(const fdn_service_ctl_t *ctl);

/** The service's name. @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_service_name(const fdn_service_ctl_t *ctl);

FDN_END_DECLS

#endif /* FDN_SUPERVISOR_H */
