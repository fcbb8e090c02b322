/* Failing-allocator sweep of include/fdn/tasks.h (tests/alloc/README.md): creating a pool,
 * submitting to it (the task's captured error context), waiting for a task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>

#include <fdn/error.h>
#include <fdn/tasks.h>

#include "alloc_sweep.h"
#include "threads.h" /* TEST_WAIT_MS */

static int bump(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void sweep_create(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    o.queue_capacity = 8;
    SWEEP(sw, fdn_tasks_create, 0)
    {
        fdn_tasks_t *tp = NULL;
        sweep_arm(&sw);
        int rc = fdn_tasks_create(&tp, &o);
        if (sweep_failed(&sw, rc)) {
            assert_null(tp);
        } else {
            atomic_int hits = 0;
            assert_int_equal(fdn_tasks_submit_wait(tp, bump, &hits, TEST_WAIT_MS), 0);
            assert_int_equal(fdn_tasks_shutdown(tp, TEST_WAIT_MS), 0); /* runs what is queued */
            assert_int_equal(atomic_load(&hits), 1);
            fdn_tasks_destroy(tp);
        }
    }
}

static void sweep_submit(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    /* inside an error context, so that the task captures it */
    assert_int_equal(fdn_errctx_push("alloc", "sweep_submit"), 0);
    assert_int_equal(fdn_errctx_set_metadata("k", "%s", "v"), 0);
    /* every task a call accepted runs (shutdown drains the queue), and no other: the count
     * of runs at the end is the count of successful submits */
    atomic_int hits = 0;
    int accepted = 0;
    SWEEP(sw, fdn_tasks_submit, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        sweep_arm(&sw);
        int rc = fdn_tasks_submit(tp, bump, &hits);
        if (!sweep_failed(&sw, rc))
            accepted++;
    }
    SWEEP(sw, fdn_tasks_submit_wait, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        sweep_arm(&sw);
        int rc = fdn_tasks_submit_wait(tp, bump, &hits, TEST_WAIT_MS);
        if (!sweep_failed(&sw, rc))
            accepted++;
    }
    assert_int_equal(fdn_tasks_shutdown(tp, TEST_WAIT_MS), 0);
    assert_int_equal(atomic_load(&hits), accepted);
    fdn_errctx_pop();
    fdn_tasks_destroy(tp);
    assert_int_equal(sweep_live(), base); /* nothing the passes made is left */
}

/* Reading a pool's counters and size, and shutting it down, allocate nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    atomic_int hits = 0;
    assert_int_equal(fdn_tasks_submit_wait(tp, bump, &hits, TEST_WAIT_MS), 0);
    unsigned w = 0;
    fdn_tasks_stats_t st;
    int rc = -1;
    NOALLOC_SWEEP(fdn_tasks_workers, w = fdn_tasks_workers(tp));
    assert_int_equal(w, 2);
    NOALLOC_SWEEP(fdn_tasks_stats, rc = fdn_tasks_stats(tp, &st));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_tasks_shutdown, rc = fdn_tasks_shutdown(tp, TEST_WAIT_MS));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_tasks_destroy, fdn_tasks_destroy(tp));
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_create),
        cmocka_unit_test(sweep_submit),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
