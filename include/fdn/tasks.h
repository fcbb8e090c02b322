/**
 * @file tasks.h
 * @brief Task pool (the reference's TaskSupervisor): fixed worker threads, a bounded FIFO
 *        queue, error-context propagation into tasks, and a shutdown that drains.
 *
 * A task is `int fn(void *arg)`. Submitting captures the caller's current error context (if
 * any); the worker adopts it while the task runs, so errors raised in the task carry the
 * submitter's correlation id and breadcrumbs (the reference's spawn_with_context). A task
 * that returns a negative code counts as failed.
 *
 * @since 0.1.0
 */
#ifndef FDN_TASKS_H
#define FDN_TASKS_H

#include "common.h"
#include "error.h"

FDN_BEGIN_DECLS

/** Opaque handle: a task pool, used through the fdn_tasks_* functions. */
typedef struct fdn_tasks fdn_tasks_t;

/** A task: returns ≥ 0 on success, a negative FDN_E* code on failure. Runs on a worker. */
typedef int (*fdn_task_fn)(void *arg);

/** Options for fdn_tasks_create. New fields are only appended. */
typedef struct fdn_tasks_opts {
    uint32_t version;      /**< FDN_TASKS_OPTS_VERSION */
    unsigned workers;      /**< worker threads, 1..256 (default 4) */
    size_t queue_capacity; /**< queued (not yet running) tasks, 1..1<<20 (default 1024) */
    const char *name;      /**< thread name prefix (≤ 10 chars used); NULL: "fdn-task" */
} fdn_tasks_opts_t;

/** Current version of fdn_tasks_opts_t, set by the matching _INIT initialiser. */
#define FDN_TASKS_OPTS_VERSION 1
/** Initialiser of fdn_tasks_opts_t with every default. */
#define FDN_TASKS_OPTS_INIT                                                                        \
    {                                                                                              \
        FDN_TASKS_OPTS_VERSION, 4, 1024, NULL                                                      \
    }

/** Counters of a pool (see fdn_tasks_stats). */
typedef struct fdn_tasks_stats {
    uint64_t queued;    /**< tasks waiting in the queue now */
    uint64_t running;   /**< tasks running now */
    uint64_t completed; /**< tasks finished (success or failure) */
    uint64_t failed;    /**< of completed, those that returned < 0 */
    uint64_t rejected;  /**< submits refused (full queue, timeout, shut down) */
} fdn_tasks_stats_t;

/**
 * Create a pool and start its workers.
 * @param[out] out   the pool
 * @param[in]  opts  options, NULL for defaults
 * @return 0, FDN_EINVAL (bad options), FDN_ENOMEM, FDN_EAGAIN (a thread could not start)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_tasks_create(fdn_tasks_t **out, const fdn_tasks_opts_t *opts);

/**
 * Queue fn(arg) without waiting. The caller's current error context is captured and
 * adopted by the worker while fn runs.
 * @param[in] tp the task pool
 * @param[in] fn the function
 * @param[in] arg passed to fn
 * @return 0; FDN_EAGAIN when the queue is full; FDN_ESHUTDOWN after shutdown began;
 *         FDN_EUNAVAILABLE while the runtime has the pool stopped (restartable);
 *         FDN_EINVAL (NULL pool or fn); FDN_ENOMEM (context capture).
 *         On any error fn is never called.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_tasks_submit(fdn_tasks_t *tp, fdn_task_fn fn, void *arg);

/**
 * Like fdn_tasks_submit, but when the queue is full wait up to timeout_ms (system monotonic
 * clock) for room. timeout_ms < 0 waits without limit (until room or shutdown).
 * @param[in] tp the task pool
 * @param[in] fn the function
 * @param[in] arg passed to fn
 * @param[in] timeout_ms how long to wait in ms; < 0: no limit
 * @return 0, FDN_ETIMEDOUT, FDN_ESHUTDOWN, FDN_EUNAVAILABLE, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_tasks_submit_wait(fdn_tasks_t *tp, fdn_task_fn fn, void *arg, int64_t timeout_ms);

/**
 * Stop accepting tasks, let the workers run every task already queued, and join them.
 * Idempotent and thread-safe: concurrent and repeated calls all wait for the same end.
 * Must not be called from a task of this pool (returns FDN_EBUSY).
 * @param[in] timeout_ms  how long to wait for the drain; < 0: no limit
 * @param[in] tp the task pool
 * @return 0 when every worker has been joined; FDN_ETIMEDOUT when tasks are still running
 *         (call again to keep waiting); FDN_EBUSY from a worker thread; FDN_EINVAL.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_tasks_shutdown(fdn_tasks_t *tp, int64_t timeout_ms);

/**
 * Shut down (without a time limit) if not done, and free the pool. NULL accepted.
 * Must not be called from a task of this pool (misuse: asserts in debug builds; without
 * assertions it returns and leaves the pool allocated).
 * @param[in] tp the task pool
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_tasks_destroy(fdn_tasks_t *tp);

/**
 * Read the pool's counters (each read atomically; together a near-consistent view).
 * @param[in] tp the task pool
 * @param[out] out receives the counters
 * @return 0 or FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_tasks_stats(fdn_tasks_t *tp, fdn_tasks_stats_t *out);

/** Number of worker threads. @param[in] tp the task pool @thread_safety any  @since 0.1.0 */
FDN_API unsigned fdn_tasks_workers(const fdn_tasks_t *tp);

FDN_END_DECLS

#endif /* FDN_TASKS_H */
