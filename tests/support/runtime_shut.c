/* See runtime_shut.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime_shut.h"
#include "threads.h"

void rt_shut_init(rt_shut_t *t, fdn_runtime_t *rt)
{
    *t = (rt_shut_t){.rt = rt};
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
}

void rt_shut_fini(rt_shut_t *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

void rt_shut_call(rt_shut_t *t)
{
    pthread_mutex_lock(&t->mu);
    bool first = !t->started;
    t->started = true;
    pthread_mutex_unlock(&t->mu);
    if (!first)
        return;
    int rc = fdn_runtime_shutdown(t->rt, -1);
    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

int rt_shut_on_telemetry(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                         const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    rt_shut_call(user);
    return 0;
}

void rt_store_one(fdn_runtime_t *rt, const char *type)
{
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = type;
    spec.data = "{}";
    spec.data_len = 2;
    spec.clock = fdn_runtime_clock(rt);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    fdn_event_free(ev);
}

void rt_shut_complete(rt_shut_t *t)
{
    pthread_mutex_lock(&t->mu);
    while (!t->done)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    assert_int_equal(t->rc, 0);
    assert_int_equal(fdn_runtime_shutdown(t->rt, TEST_WAIT_MS), 0);
    fdn_runtime_health_t h;
    assert_int_equal(fdn_runtime_health(t->rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.status, FDN_RUNTIME_STOPPED);
    assert_int_equal(h.running, 0);
}
