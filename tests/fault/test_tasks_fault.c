/* Fault injection for the task pool: worker threads that cannot be created, at create and at
 * a service restart (src/core/tasks.c, tasks_int.h). pthread_create and pthread_mutex_unlock
 * are wrapped with the linker's --wrap (CMakeLists.txt): the wrapper fails the armed
 * pthread_create call with EAGAIN and, when asked, parks the thread that made it right after
 * its next mutex unlock, so the test can act in the window between the pool releasing its
 * lock and taking it again. Expect: the call fails with FDN_EAGAIN, the pool is stopped (a
 * submit is refused with FDN_EUNAVAILABLE and its function never runs), every thread that
 * did start is joined, nothing leaks (ASan), and a later restart works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <fdn/tasks.h>

#include "threads.h"

#include "core/tasks_int.h"

int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __real_pthread_mutex_unlock(pthread_mutex_t *mu);
int __wrap_pthread_mutex_unlock(pthread_mutex_t *mu);

static atomic_int g_calls;            /* pthread_create calls since arm() */
static atomic_int g_fail_at = -1;     /* the call (counted from 0) that fails; -1: none */
static atomic_bool g_pause_in_window; /* park the failing thread after its next unlock */
static _Thread_local bool t_pause_after_unlock;
static test_waiter_t g_in_window = TEST_WAITER_INIT; /* 1: a thread is parked */
static test_waiter_t g_resume = TEST_WAITER_INIT;    /* 1: the parked thread goes on */

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (atomic_fetch_add(&g_calls, 1) == atomic_load(&g_fail_at)) {
        if (atomic_load(&g_pause_in_window))
            t_pause_after_unlock = true;
        return EAGAIN;
    }
    return __real_pthread_create(th, attr, fn, arg);
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *mu)
{
    int rc = __real_pthread_mutex_unlock(mu);
    if (t_pause_after_unlock) {
        t_pause_after_unlock = false;
        test_waiter_add(&g_in_window, 1);
        test_waiter_wait(&g_resume, 1);
    }
    return rc;
}

/* Fail the pthread_create call number `at` from now (0: the next one). */
static void arm(int at, bool pause)
{
    atomic_store(&g_pause_in_window, pause);
    atomic_store(&g_calls, 0);
    atomic_store(&g_fail_at, at);
}

static void disarm(void)
{
    atomic_store(&g_fail_at, -1);
    atomic_store(&g_pause_in_window, false);
}

static int count_task(void *p)
{
    atomic_fetch_add_explicit((atomic_int *)p, 1, memory_order_relaxed);
    return 0;
}

static fdn_tasks_t *new_pool(unsigned workers)
{
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = workers;
    o.queue_capacity = 8;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    return tp;
}

/* create: the first, a middle or the last worker cannot start: FDN_EAGAIN, *out NULL, the
 * workers already started are joined (no thread or memory leaks under ASan). */
static void create_fails_when_a_worker_cannot_start(void **state)
{
    (void)state;
    for (int at = 0; at < 3; at++) {
        fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
        o.workers = 3;
        fdn_tasks_t *tp = NULL;
        arm(at, false);
        assert_int_equal(fdn_tasks_create(&tp, &o), FDN_EAGAIN);
        disarm();
        assert_null(tp);
    }
}

typedef struct restart_arg {
    fdn_tasks_t *tp;
    int rc;
} restart_arg_t;

static void *restart_main(void *p)
{
    restart_arg_t *a = p;
    a->rc = fdn__tasks_service_start(a->tp);
    return NULL;
}

/* A restart whose workers cannot start fails and leaves the pool stopped: a submit made
 * while the failed start is between releasing the pool's lock and stopping the pool again
 * must be refused (FDN_EUNAVAILABLE), not accepted into a queue that no worker will ever run
 * (the old code accepted it: fdn_tasks_submit returned 0 and the task never ran, shutdown
 * and destroy included). Then a restart that can start its workers runs new tasks. */
static void failed_restart_refuses_submits(void **state)
{
    (void)state;
    fdn_tasks_t *tp = new_pool(2);
    fdn__tasks_service_stop(tp);
    assert_int_equal(fdn__tasks_service_health(tp), FDN_EUNAVAILABLE);

    atomic_int ran = 0;
    restart_arg_t a = {tp, 99};
    test_threads_t th;
    test_threads_init(&th, 0);
    /* call 0 starts the restarting thread, call 1 is the restart's first worker */
    arm(1, true);
    test_threads_start(&th, restart_main, &a);
    test_waiter_wait(&g_in_window, 1); /* the restart released the lock after the failure */
    int rc = fdn_tasks_submit(tp, count_task, &ran);
    test_waiter_raise(&g_resume, 1);
    test_threads_join(&th);
    disarm();
    assert_int_equal(a.rc, FDN_EAGAIN);
    assert_int_equal(rc, FDN_EUNAVAILABLE);
    assert_int_equal(fdn__tasks_service_health(tp), FDN_EUNAVAILABLE);
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.rejected, 1);

    /* the next restart works */
    assert_int_equal(fdn__tasks_service_start(tp), 0);
    assert_int_equal(fdn__tasks_service_health(tp), 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, &ran), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.completed, 1);
    fdn_tasks_destroy(tp);
}

/* A restart where some workers start and one cannot: FDN_EAGAIN, the ones started are
 * joined, the pool is stopped, and a submit is refused. */
static void partial_restart_joins_started_workers(void **state)
{
    (void)state;
    fdn_tasks_t *tp = new_pool(3);
    fdn__tasks_service_stop(tp);
    arm(2, false); /* the third worker */
    assert_int_equal(fdn__tasks_service_start(tp), FDN_EAGAIN);
    disarm();
    assert_int_equal(fdn__tasks_service_health(tp), FDN_EUNAVAILABLE);
    atomic_int ran = 0;
    assert_int_equal(fdn_tasks_submit(tp, count_task, &ran), FDN_EUNAVAILABLE);
    assert_int_equal(fdn__tasks_service_start(tp), 0);
    assert_int_equal(fdn_tasks_submit(tp, count_task, &ran), 0);
    fdn_tasks_destroy(tp);
    assert_int_equal(atomic_load(&ran), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_fails_when_a_worker_cannot_start),
        cmocka_unit_test(failed_restart_refuses_submits),
        cmocka_unit_test(partial_restart_joins_started_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
