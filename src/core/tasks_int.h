/* Library-internal interface of the task pool (src/core/tasks.c) for the runtime's
 * supervisor. A pool is running after fdn_tasks_create. */
#ifndef FDN_CORE_TASKS_INT_H
#define FDN_CORE_TASKS_INT_H

#include "core/supervisor_int.h"

#include <fdn/tasks.h>

/* The pool's supervisor vtable, defined in tasks.c (no destroy: the runtime destroys the pool
 * itself), and typed wrappers (see core/supervisor_int.h):
 * - start: restart the workers after a stop. 0 when running (also when it already was),
 *   FDN_ESHUTDOWN after fdn_tasks_shutdown, FDN_EBUSY while a stop is in progress, FDN_EAGAIN
 *   when a thread cannot start (the pool is then stopped again).
 * - stop: stop accepting (submits answer FDN_EUNAVAILABLE at once), run every queued task,
 *   join the workers. Counters survive; a later start resumes. No-op from a worker.
 * - health: 0 when running, FDN_EUNAVAILABLE when stopped, FDN_EUNHEALTHY if a worker has
 *   exited. */
FDN__SERVICE_TYPED_OPS(tasks, fdn_tasks_t)

/* True when called from a task of tp (on one of its workers): the pool's stop waits for the
 * caller. */
bool fdn__tasks_on_worker(const fdn_tasks_t *tp);

#endif
