/* Library-internal interface of the supervisor (src/core/supervisor.c). */
#ifndef FDN_CORE_SUPERVISOR_INT_H
#define FDN_CORE_SUPERVISOR_INT_H

#include <fdn/supervisor.h>

/* Threads the supervisor created and has not joined yet (its own thread and the worker
 * threads of running services). 0 after fdn_supervisor_shutdown returned 0. Used by the
 * leak check of testing.h. */
size_t fdn__supervisor_live_threads(fdn_supervisor_t *sup);

/* True when called on the supervisor's own thread (i.e. from one of its callbacks), inside
 * its fdn_supervisor_start (a start/stop callback run there) or on one of its worker threads:
 * a call that waits for the supervisor to stop would deadlock. */
bool fdn__supervisor_on_thread(fdn_supervisor_t *sup);

#endif
