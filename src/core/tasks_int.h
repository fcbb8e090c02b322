/* Library-internal interface of the task pool (src/core/tasks.c) for the runtime's
 * supervisor. A pool is running after fdn_tasks_create. */
#ifndef FDN_CORE_TASKS_INT_H
#define FDN_CORE_TASKS_INT_H

#include <fdn/supervisor.h>

#include <fdn/tasks.h>

/* Restart the workers after fdn__tasks_service_stop. 0 when running (also when it already
 * was), FDN_ESHUTDOWN after fdn_tasks_shutdown, FDN_EBUSY while a stop is in progress,
 * FDN_EAGAIN when a thread cannot start (the pool is then stopped again). */
/* The service's vtable (start, stop, health), defined in its module; the typed
 * wrappers below call it. */
extern const fdn_service_ops_t fdn__tasks_service_ops;

static inline int fdn__tasks_service_start(fdn_tasks_t *tp)
{
    return fdn__tasks_service_ops.start(tp, NULL, NULL);
}

/* Stop accepting (submits answer FDN_EUNAVAILABLE at once), run every queued task, join the
 * workers. Counters survive; a later start resumes. No-op from a worker of this pool. */
static inline void fdn__tasks_service_stop(fdn_tasks_t *tp)
{
    fdn__tasks_service_ops.stop(tp);
}

/* 0 when running, FDN_EUNAVAILABLE when stopped, FDN_EUNHEALTHY if a worker has exited. */
static inline int fdn__tasks_service_health(fdn_tasks_t *tp)
{
    return fdn__tasks_service_ops.health(tp);
}

#endif
