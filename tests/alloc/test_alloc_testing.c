/* Failing-allocator sweep of include/fdn/testing.h (tests/alloc/README.md): the test runtime
 * (a runtime on a manual clock) and its clock and settle helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/error.h>
#include <fdn/runtime.h>
#include <fdn/testing.h>

#include "alloc_sweep.h"

static const char *const no_env[] = {NULL};

static void sweep_testing(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.task_workers = 1;
    o.envp = no_env;
    SWEEP(sw, fdn_testing_runtime_create, SWEEP_NO_CALL_LEAK | SWEEP_SLOW)
    {
        fdn_runtime_t *rt = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_testing_runtime_create(&rt, &o, NULL))) {
            assert_null(rt);
        } else {
            assert_int_equal(fdn_testing_settle(rt), 0);
            assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
        }
    }
    long base = sweep_live();
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    SWEEP(sw, fdn_testing_advance, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_testing_advance(rt, 1000000));
    }
    SWEEP(sw, fdn_testing_settle, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_testing_settle(rt));
    }
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    assert_int_equal(sweep_live(), base);
    /* the teardown of a started runtime records what stops (telemetry events): an allocation
     * that fails there drops that record (counted by telemetry), the teardown completes and
     * leaks nothing (the end-of-pass balance) */
    SWEEP(sw, fdn_testing_runtime_destroy, SWEEP_NO_CALL_LEAK)
    {
        fdn_runtime_t *r2 = NULL;
        assert_int_equal(fdn_testing_runtime_create(&r2, &o, NULL), 0);
        assert_int_equal(fdn_testing_settle(r2), 0);
        sweep_arm(&sw);
        assert_false(sweep_failed(&sw, fdn_testing_runtime_destroy(r2, NULL)));
    }
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_testing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
