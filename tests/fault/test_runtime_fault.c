/* Fault tests: a failing-allocator sweep over runtime creation (registry, supervisor, task
 * pool, wrappers), adding services before and after start, and the supervisor API. Every
 * allocation 1..N fails in turn: the call returns FDN_ENOMEM, leaves nothing behind (ASan's
 * leak check) and the next attempt with a working allocator succeeds.
 *
 * Two sweeps, so that "allocation n" names the same allocation in every run however the
 * threads are scheduled: first the allocations of the test's own thread (the calls it
 * makes), then those of the runtime's threads (supervisor, workers) while the test thread's
 * pass untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>

#include <fdn/runtime.h>
#include <fdn/testing.h>

#include "fail_alloc.h"
#include "flag_service.h"

/* One full scenario; returns the first error. */
static int scenario(svc_t *a, svc_t *b)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.flags = FDN_RUNTIME_NO_START;
    o.task_workers = 1;
    fdn_runtime_t *rt = NULL;
    int rc = fdn_testing_runtime_create(&rt, &o, NULL);
    if (rc != 0)
        return rc;
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.ops = &test_flag_service_ops;
    spec.name = "a";
    spec.state = a;
    rc = fdn_runtime_add_service(rt, &spec, NULL);
    if (rc == 0)
        rc = fdn_runtime_start(rt, NULL);
    if (rc == 0) {
        spec.name = "b";
        spec.state = b;
        rc = fdn_runtime_add_service(rt, &spec, NULL);
    }
    if (rc == 0)
        rc = fdn_runtime_inject_fault(rt, "a", FDN_EIO);
    if (rc == 0)
        rc = fdn_testing_settle(rt);
    if (rc == 0)
        rc = fdn_testing_advance(rt, 10000000);
    fdn_error_t derr = FDN_ERROR_INIT;
    int drc = fdn_testing_runtime_destroy(rt, &derr);
    if (drc != 0)
        fprintf(stderr, "destroy: %s\n", derr.message);
    return rc != 0 ? rc : drc;
}

/* Fails allocation n = 1, 2, ... (as arm(n) counts them) until a run has no failure; returns
 * the number of allocations swept. */
static long sweep(void (*arm)(long n))
{
    long n = 1;
    for (;; n++) {
        svc_t a = {0}, b = {0};
        arm(n);
        int rc = scenario(&a, &b);
        if (fail_alloc_failures() == 0) {
            assert_int_equal(rc, 0);
            break;
        }
        /* a failed allocation surfaces as ENOMEM, or the registration of a service that is
         * otherwise fine is skipped (the runtime keeps running) */
        if (rc != 0 && rc != FDN_ENOMEM)
            fail_msg("allocation %ld: unexpected %s", n, fdn_err_name(rc));
        assert_false(atomic_load(&a.running));
        assert_false(atomic_load(&b.running));
    }
    fail_alloc_at(0);
    return n - 1;
}

static void runtime_survives_every_allocation_failure(void **state)
{
    (void)state;
    assert_true(sweep(fail_alloc_at_this_thread) > 10);
}

static void runtime_survives_allocation_failures_in_its_threads(void **state)
{
    (void)state;
    assert_true(sweep(fail_alloc_at_other_threads) > 0);
}

int main(void)
{
    if (fail_alloc_install() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runtime_survives_every_allocation_failure),
        cmocka_unit_test(runtime_survives_allocation_failures_in_its_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
