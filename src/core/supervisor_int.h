/* Library-internal interface of the supervisor (src/core/supervisor.c). */
#ifndef FDN_CORE_SUPERVISOR_INT_H
#define FDN_CORE_SUPERVISOR_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <fdn/supervisor.h>

/* Threads the supervisor created and has not joined yet (its own thread and the worker
 * threads of running services). 0 after fdn_supervisor_shutdown returned 0. Used by the
 * leak check of testing.h. */
size_t fdn__supervisor_live_threads(fdn_supervisor_t *sup);

/* True when called on the supervisor's own thread (i.e. from one of its callbacks), inside
 * its fdn_supervisor_start (a start/stop callback run there) or on one of its worker threads:
 * a call that waits for the supervisor to stop would deadlock. */
bool fdn__supervisor_on_thread(fdn_supervisor_t *sup);

/* True when called on the thread running this supervisor's fdn_supervisor_start, while it
 * runs: from a service's start, or from its stop when the start failed (that start's own
 * stop, or the rollback of the services it had started). Never on the supervisor's own
 * thread, so a stop for a restart or at shutdown answers false. */
bool fdn__supervisor_starting(fdn_supervisor_t *sup);

/* fdn_supervisor_add from a thread that the stop of the service named `owner` waits for, one
 * of the service's own threads that the supervisor did not create (a task pool's worker, whose
 * stop runs the queued tasks and joins the workers). While that stop waits for the caller, the
 * lifecycle thread cannot start the added service, so the add is treated as one from the
 * owner's worker loop: once the owner's stop has begun (until its next start), it fails with
 * FDN_ECANCELED instead of waiting, including an add posted just before. owner NULL, or no
 * such service: fdn_supervisor_add. */
int fdn__supervisor_add_from(fdn_supervisor_t *sup, const fdn_service_spec_t *spec,
                             const char *owner, fdn_error_t *err);

/* The status of every service in one pass under the supervisor's lock (fdn_supervisor_status_at
 * takes it once per service): the first min(count, cap) into out[], in order. Returns the
 * count. (fdn_runtime_health: GET /health reads it on every request.) */
size_t fdn__supervisor_statuses(fdn_supervisor_t *sup, fdn_service_status_t *out, size_t cap);

/* A module that is a built-in service exports its supervisor vtable,
 *     extern const fdn_service_ops_t fdn__<m>_service_ops;
 * and its private header declares typed wrappers for tests and in-module callers with
 *     FDN__SERVICE_TYPED_OPS(<m>, <type>)
 * which defines fdn__<m>_service_start(x), fdn__<m>_service_stop(x) and
 * fdn__<m>_service_health(x), each a call through the vtable. */
#define FDN__SERVICE_TYPED_OPS(m, type)                                                            \
    extern const fdn_service_ops_t fdn__##m##_service_ops;                                         \
    static inline int fdn__##m##_service_start(type *x)                                            \
    {                                                                                              \
        return fdn__##m##_service_ops.start(x, NULL, NULL);                                        \
    }                                                                                              \
    static inline void fdn__##m##_service_stop(type *x)                                            \
    {                                                                                              \
        fdn__##m##_service_ops.stop(x);                                                            \
    }                                                                                              \
    static inline int fdn__##m##_service_health(type *x)                                           \
    {                                                                                              \
        return fdn__##m##_service_ops.health(x);                                                   \
    }

#endif
