/* Unit tests: the task pool (bounded queue, drain on shutdown, blocking submit, stats).
 * Synchronisation uses a gate (mutex + condition variable), never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <fdn/tasks.h>

#include "core/tasks_int.h"

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int entered; /* blockers that reached the gate */
} gate_t;

#define GATE_INIT                                                                                  \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0                              \
    }

static int blocker(void *p)
{
    gate_t *g = p;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_wait_entered(gate_t *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->entered < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static atomic_int g_counter;

static int count_task(void *p)
{
    (void)p;
    atomic_fetch_add_explicit(&g_counter, 1, memory_order_relaxed);
    return 0;
}

static int fail_task(void *p)
{
    (void)p;
    return FDN_EIO;
}

static void create_options_and_lifecycle(void **state)
{
    (void)state;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, NULL), 0);
    assert_int_equal(fdn_tasks_workers(tp), 4);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, 0), 0); /* idempotent */
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), FDN_ESHUTDOWN);
    fdn_tasks_destroy(tp);
    fdn_tasks_destroy(NULL);

    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 0;
    assert_int_equal(fdn_tasks_create(&tp, &o), FDN_EINVAL);
    o.workers = 2;
    o.queue_capacity = 0;
    assert_int_equal(fdn_tasks_create(&tp, &o), FDN_EINVAL);
    o.queue_capacity = 8;
    o.version = 0;
    assert_int_equal(fdn_tasks_create(&tp, &o), FDN_EINVAL);
    assert_int_equal(fdn_tasks_create(NULL, NULL), FDN_EINVAL);

    /* destroy without shutdown drains and joins */
    o.version = FDN_TASKS_OPTS_VERSION;
    o.name = "a-very-long-thread-name";
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    atomic_store(&g_counter, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(fdn_tasks_submit_wait(tp, count_task, NULL, -1), 0);
    fdn_tasks_destroy(tp);
    assert_int_equal(atomic_load(&g_counter), 8);
    assert_int_equal(fdn_tasks_submit(NULL, count_task, NULL), FDN_EINVAL);
    assert_int_equal(fdn_tasks_shutdown(NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_tasks_stats(NULL, NULL), FDN_EINVAL);
}

static void full_queue_rejects(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    o.queue_capacity = 2;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    gate_t g = GATE_INIT;
    assert_int_equal(fdn_tasks_submit(tp, blocker, &g), 0);
    gate_wait_entered(&g, 1); /* the only worker is busy */
    atomic_store(&g_counter, 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), FDN_EAGAIN);
    assert_int_equal(fdn_tasks_submit_wait(tp, count_task, NULL, 0), FDN_ETIMEDOUT);
    assert_int_equal(fdn_tasks_submit(tp, NULL, NULL), FDN_EINVAL);
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.queued, 2);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.completed, 0);
    assert_int_equal(st.rejected, 2);
    gate_open(&g);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.completed, 3);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(atomic_load(&g_counter), 2);
    fdn_tasks_destroy(tp);
}

static void shutdown_drains_queue(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    o.queue_capacity = 100;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    gate_t g = GATE_INIT;
    assert_int_equal(fdn_tasks_submit(tp, blocker, &g), 0);
    assert_int_equal(fdn_tasks_submit(tp, blocker, &g), 0);
    gate_wait_entered(&g, 2);
    atomic_store(&g_counter, 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_tasks_submit(tp, fail_task, NULL), 0);
    /* shutdown begins; workers are blocked so it cannot finish yet */
    assert_int_equal(fdn_tasks_shutdown(tp, 0), FDN_ETIMEDOUT);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), FDN_ESHUTDOWN);
    assert_int_equal(fdn_tasks_submit_wait(tp, count_task, NULL, -1), FDN_ESHUTDOWN);
    assert_int_equal(atomic_load(&g_counter), 0);
    gate_open(&g);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&g_counter), 50);
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.completed, 57);
    assert_int_equal(st.failed, 5);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.rejected, 2);
    fdn_tasks_destroy(tp);
}

typedef struct waiter_arg {
    fdn_tasks_t *tp;
    int rc;
} waiter_arg_t;

static void *blocking_submitter(void *p)
{
    waiter_arg_t *a = p;
    a->rc = fdn_tasks_submit_wait(a->tp, count_task, NULL, -1);
    return NULL;
}

static void blocking_submit_waits_for_room(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    o.queue_capacity = 1;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    gate_t g = GATE_INIT;
    assert_int_equal(fdn_tasks_submit(tp, blocker, &g), 0);
    gate_wait_entered(&g, 1);
    atomic_store(&g_counter, 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0); /* queue now full */
    waiter_arg_t a = {tp, 99};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocking_submitter, &a), 0);
    gate_open(&g); /* room appears; the waiter gets in */
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&g_counter), 2);
    fdn_tasks_destroy(tp);

    /* shutdown wakes a blocked submitter with FDN_ESHUTDOWN */
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    gate_t g2 = GATE_INIT;
    assert_int_equal(fdn_tasks_submit(tp, blocker, &g2), 0);
    gate_wait_entered(&g2, 1);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    waiter_arg_t b = {tp, 99};
    assert_int_equal(pthread_create(&th, NULL, blocking_submitter, &b), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, 0), FDN_ETIMEDOUT);
    pthread_join(th, NULL);
    assert_int_equal(b.rc, FDN_ESHUTDOWN);
    gate_open(&g2);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    fdn_tasks_destroy(tp);
}

typedef struct self_arg {
    fdn_tasks_t *tp;
    atomic_int rc;
} self_arg_t;

static int shutdown_from_task(void *p)
{
    self_arg_t *a = p;
    atomic_store(&a->rc, fdn_tasks_shutdown(a->tp, -1));
    return 0;
}

static void *shutdown_caller(void *p)
{
    fdn_tasks_t *tp = p;
    return fdn_tasks_shutdown(tp, -1) == 0 ? NULL : p;
}

static void shutdown_from_task_and_concurrently(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    self_arg_t a = {tp, 1};
    assert_int_equal(fdn_tasks_submit(tp, shutdown_from_task, &a), 0);
    atomic_store(&g_counter, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, shutdown_caller, tp), 0);
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    assert_int_equal(atomic_load(&a.rc), FDN_EBUSY);
    assert_int_equal(atomic_load(&g_counter), 20);
    fdn_tasks_destroy(tp);
}

static int leaky_task(void *p)
{
    (void)p;
    fdn_errctx_push("Leaky", "forgot_to_pop");
    fdn_errctx_push("Leaky", "again");
    return 0;
}

static int depth_probe(void *p)
{
    atomic_int *d = p;
    atomic_store(d, (int)fdn_errctx_depth());
    return 0;
}

static void leaked_contexts_do_not_reach_next_task(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    atomic_int d = 99;
    assert_int_equal(fdn_tasks_submit(tp, leaky_task, NULL), 0);
    assert_int_equal(fdn_tasks_submit(tp, depth_probe, &d), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&d), 0);
    fdn_tasks_destroy(tp);
}

static void service_stop_and_restart(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    assert_int_equal(fdn__tasks_service_health(tp), 0);
    assert_int_equal(fdn__tasks_service_start(tp), 0); /* already running */
    atomic_store(&g_counter, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    fdn__tasks_service_stop(tp); /* drains */
    assert_int_equal(atomic_load(&g_counter), 10);
    assert_int_equal(fdn__tasks_service_health(tp), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_tasks_submit_wait(tp, count_task, NULL, -1), FDN_EUNAVAILABLE);
    fdn__tasks_service_stop(tp); /* twice is fine */
    assert_int_equal(fdn__tasks_service_start(tp), 0);
    assert_int_equal(fdn__tasks_service_health(tp), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&g_counter), 15);
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.completed, 15); /* counters survive the restart */
    assert_int_equal(st.rejected, 2);
    assert_int_equal(fdn__tasks_service_start(tp), FDN_ESHUTDOWN);
    assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), FDN_ESHUTDOWN);
    fdn_tasks_destroy(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_options_and_lifecycle),
        cmocka_unit_test(full_queue_rejects),
        cmocka_unit_test(shutdown_drains_queue),
        cmocka_unit_test(blocking_submit_waits_for_room),
        cmocka_unit_test(shutdown_from_task_and_concurrently),
        cmocka_unit_test(service_stop_and_restart),
        cmocka_unit_test(leaked_contexts_do_not_reach_next_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
