/* Unit tests: the task pool (bounded queue, drain on shutdown, blocking submit, stats).
 * Synchronisation uses a gate (two waiters from tests/support/threads.h), never sleeps.
 * Most tests run on a pool made by pool_setup from the pool_params_t given as their initial
 * state and destroyed by pool_teardown (POOL_TEST below). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/tasks.h>

#include "child.h"
#include "threads.h"

#include "core/tasks_int.h"

typedef struct gate {
    test_waiter_t entered; /* blockers that reached the gate */
    test_waiter_t open;    /* 1 once opened */
} gate_t;

#define GATE_INIT                                                                                  \
    {                                                                                              \
        TEST_WAITER_INIT, TEST_WAITER_INIT                                                         \
    }

static int blocker(void *p)
{
    gate_t *g = p;
    test_waiter_add(&g->entered, 1);
    test_waiter_wait(&g->open, 1);
    return 0;
}

static void gate_wait_entered(gate_t *g, int n)
{
    test_waiter_wait(&g->entered, n);
}

static void gate_open(gate_t *g)
{
    test_waiter_raise(&g->open, 1);
}

/* ---- the pool fixture ---- */

typedef struct pool_params {
    int workers;
    size_t queue_capacity; /* 0: the default */
} pool_params_t;

static fdn_tasks_t *new_pool(const pool_params_t *p)
{
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = p->workers;
    if (p->queue_capacity > 0)
        o.queue_capacity = p->queue_capacity;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    return tp;
}

typedef struct pool_fx {
    const pool_params_t *params;
    fdn_tasks_t *tp; /* destroyed at teardown (a test may replace it) */
} pool_fx_t;

static int pool_setup(void **state)
{
    pool_fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->params = *state;
    f->tp = new_pool(f->params);
    *state = f;
    return 0;
}

static int pool_teardown(void **state)
{
    pool_fx_t *f = *state;
    fdn_tasks_destroy(f->tp);
    free(f);
    return 0;
}

static const pool_params_t P_1x2 = {1, 2};
static const pool_params_t P_1x1 = {1, 1};
static const pool_params_t P_2x100 = {2, 100};
static const pool_params_t P_1 = {1, 0};
static const pool_params_t P_2 = {2, 0};

#define POOL_TEST(fn, params)                                                                      \
    cmocka_unit_test_prestate_setup_teardown(fn, pool_setup, pool_teardown, (void *)&(params))

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
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
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
}

static void shutdown_drains_queue(void **state)
{
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
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
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
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
    f->tp = NULL;

    /* shutdown wakes a blocked submitter with FDN_ESHUTDOWN (on a fresh pool) */
    f->tp = tp = new_pool(f->params);
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
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
    self_arg_t a = {tp, 1};
    assert_int_equal(fdn_tasks_submit(tp, shutdown_from_task, &a), 0);
    atomic_store(&g_counter, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(fdn_tasks_submit(tp, count_task, NULL), 0);
    test_threads_t th;
    test_threads_init(&th, 0);
    test_threads_start_n(&th, 3, shutdown_caller, tp, 0);
    test_threads_join(&th);
    for (int i = 0; i < 3; i++)
        assert_null(th.ret[i]);
    assert_int_equal(atomic_load(&a.rc), FDN_EBUSY);
    assert_int_equal(atomic_load(&g_counter), 20);
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
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
    atomic_int d = 99;
    assert_int_equal(fdn_tasks_submit(tp, leaky_task, NULL), 0);
    assert_int_equal(fdn_tasks_submit(tp, depth_probe, &d), 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    assert_int_equal(atomic_load(&d), 0);
}

static void service_stop_and_restart(void **state)
{
    pool_fx_t *f = *state;
    fdn_tasks_t *tp = f->tp;
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
}

/* ---- misuse: destroy from one of the pool's own tasks (a death test, in a child) ---- */

static int destroy_own_pool(void *p)
{
    fdn_tasks_destroy(p); /* the worker goes on using the pool after this returns */
    return 0;
}

static test_waiter_t g_after_destroy = TEST_WAITER_INIT;

static int after_destroy(void *p)
{
    (void)p;
    test_waiter_add(&g_after_destroy, 1);
    return 0;
}

/* The child: the pool's only worker runs a task that destroys the pool, then (if still
 * alive) the next task; the child waits for that one and exits 0 without touching the pool
 * again (whatever the worker did to it). */
static void destroy_from_own_task_body(void)
{
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    fdn_tasks_t *tp = NULL;
    if (fdn_tasks_create(&tp, &o) != 0)
        _exit(3);
    if (fdn_tasks_submit(tp, destroy_own_pool, tp) != 0 ||
        fdn_tasks_submit(tp, after_destroy, NULL) != 0)
        _exit(4);
    test_waiter_wait(&g_after_destroy, 1);
    _exit(0);
}

/* Runs first (test_run_child forks before this process has started any thread): the pool
 * names the misuse and aborts, instead of freeing itself under its running worker (the old
 * code: freed, then read by worker_main, a heap-use-after-free under ASan). */
static void destroy_from_own_task_is_refused(void **state)
{
    (void)state;
    char err[4096];
    int st = test_run_child(destroy_from_own_task_body, err, sizeof err);
    if (strstr(err, "fdn_tasks_destroy called from a task of the same pool") == NULL)
        fail_msg("child status %d, stderr: %s", st, err);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_null(strstr(err, "use-after-free"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(destroy_from_own_task_is_refused),
        cmocka_unit_test(create_options_and_lifecycle),
        POOL_TEST(full_queue_rejects, P_1x2),
        POOL_TEST(shutdown_drains_queue, P_2x100),
        POOL_TEST(blocking_submit_waits_for_room, P_1x1),
        POOL_TEST(shutdown_from_task_and_concurrently, P_2),
        POOL_TEST(service_stop_and_restart, P_2),
        POOL_TEST(leaked_contexts_do_not_reach_next_task, P_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
