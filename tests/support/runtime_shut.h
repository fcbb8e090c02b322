/* A runtime shut down from one of its own threads (a task of its pool, a subscriber of its
 * config or event store, a telemetry handler run on a built-in's thread): that call only
 * requests the stop and returns 0 (fdn_runtime_shutdown, runtime.h); the test's thread then
 * completes it. Shared by tests/unit/test_runtime.c and tests/engine/test_runtime_pg.c. */
#ifndef FDN_TEST_RUNTIME_SHUT_H
#define FDN_TEST_RUNTIME_SHUT_H

#include <pthread.h>
#include <stdbool.h>

#include <fdn/events.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

typedef struct rt_shut {
    fdn_runtime_t *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started; /* the first call began: later ones (more changes, events) do nothing */
    bool done;    /* the call returned, with rc */
    int rc;
} rt_shut_t;

void rt_shut_init(rt_shut_t *t, fdn_runtime_t *rt);
void rt_shut_fini(rt_shut_t *t);

/* On the runtime's own thread: fdn_runtime_shutdown(t->rt, -1) the first time, its result
 * recorded; nothing on later calls. */
void rt_shut_call(rt_shut_t *t);

/* A telemetry handler (user: the rt_shut_t) that calls rt_shut_call: attached to a count a
 * built-in emits on its own thread. */
int rt_shut_on_telemetry(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                         const fdn_telemetry_meta_t *meta, size_t nmeta, void *user);

/* Store one event of type (data {}) in the runtime's event store, on the runtime's clock. */
void rt_store_one(fdn_runtime_t *rt, const char *type);

/* On the test's thread: wait until the call returned (no bound of its own: a hang is the
 * defect, which the test's timeout reports), check it returned 0, then complete the shutdown
 * here (TEST_WAIT_MS) and check that every service stopped. */
void rt_shut_complete(rt_shut_t *t);

#endif
