/* Failing-allocator sweep of include/fdn/runtime.h (tests/alloc/README.md): the composition
 * root (create without starting, start, add a service before and after start). The calling
 * thread's allocations are failed; tests/fault/test_runtime_fault.c sweeps the runtime's own
 * threads. Every pass builds and destroys its runtime: the balance at the end of the pass
 * covers what the threads allocated. A pass costs tens of ms (most of it the teardown), so
 * create and start fail every 8th allocation unless FDN_SWEEP_FULL=1 (see alloc_sweep.h);
 * the full sweep (1326 allocations of create) takes about 47 s under ASan, nearly all of it
 * waiting: each fdn_runtime_destroy waits for five RCU barriers (telemetry twice, config,
 * registry, limiter), and liburcu's call_rcu thread batches with a 10 ms sleep. Create
 * absorbs nothing (SWEEP_NO_ABSORB); start's absorbed failures are its telemetry events,
 * which are dropped and counted (fdn_telemetry_dropped_events_total / _measurements_total). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>

#include <fdn/error.h>
#include <fdn/runtime.h>

#include "alloc_sweep.h"
#include "flag_service.h"
#include "threads.h" /* TEST_WAIT_MS */

static const char *const no_env[] = {NULL};


static fdn_runtime_opts_t opts(void)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.flags = FDN_RUNTIME_NO_START;
    o.task_workers = 1;
    o.envp = no_env;
    o.health_interval_ns = 0;
    return o;
}

static void sweep_runtime(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = opts();
    SWEEP(sw, fdn_runtime_create, SWEEP_NO_CALL_LEAK | SWEEP_SLOW | SWEEP_NO_ABSORB)
    {
        fdn_runtime_t *rt = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_runtime_create(&rt, &o, NULL))) {
            assert_null(rt);
        } else {
            assert_non_null(fdn_runtime_config(rt));
            fdn_runtime_destroy(rt);
        }
    }
    SWEEP(sw, fdn_runtime_start, SWEEP_NO_CALL_LEAK | SWEEP_SLOW)
    {
        fdn_runtime_t *rt = NULL;
        assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
        sweep_arm(&sw);
        int rc = fdn_runtime_start(rt, NULL);
        fdn_runtime_health_t h;
        size_t n = 0;
        assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, &n), 0);
        sweep_failed(&sw, rc);
        assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
        fdn_runtime_destroy(rt);
    }
    /* teardown detaches the runtime's telemetry handlers, which copies the handler set: a
     * detach without memory detaches in place, the teardown completes, nothing leaks (the
     * end-of-pass balance; before, the handler stayed attached to freed state) */
    SWEEP(sw, fdn_runtime_destroy, SWEEP_NO_CALL_LEAK)
    {
        fdn_runtime_t *rt = NULL;
        assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
        assert_int_equal(fdn_runtime_start(rt, NULL), 0);
        assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
        sweep_arm(&sw);
        fdn_runtime_destroy(rt);
        assert_false(sweep_failed(&sw, 0));
    }
    SWEEP(sw, fdn_runtime_add_service, SWEEP_NO_CALL_LEAK)
    {
        fdn_runtime_t *rt = NULL;
        assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
        assert_int_equal(fdn_runtime_start(rt, NULL), 0);
        svc_t a = {0};
        fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
        spec.name = "app";
        spec.ops = &test_flag_service_ops;
        spec.state = &a;
        sweep_arm(&sw);
        int rc = fdn_runtime_add_service(rt, &spec, NULL);
        fdn_service_status_t st;
        if (sweep_failed(&sw, rc)) {
            assert_false(atomic_load(&a.running));
            assert_int_not_equal(fdn_runtime_service_status(rt, "app", &st), 0);
        } else {
            assert_true(atomic_load(&a.running));
            assert_int_equal(fdn_runtime_service_status(rt, "app", &st), 0);
        }
        assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
        fdn_runtime_destroy(rt);
    }
}

/* The runtime's error hook counts an error in telemetry: making the counter's entry may
 * fail, and is then dropped and counted (fdn_telemetry_dropped_events_total; the hook has no
 * error code): each pass reports a new subcategory (the counter's name), so each makes its
 * entry. */
static void sweep_error_hook(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_runtime_opts_t o = opts();
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    SWEEP(sw, fdn_runtime_error_hook, SWEEP_KEEP)
    {
        char sub[32];
        snprintf(sub, sizeof(sub), "sweep%ld", sw.n);
        fdn_error_t e = FDN_ERROR_INIT;
        (void)fdn_err_set(&e, FDN_EINVAL, "pass %ld", sw.n);
        e.subcategory = sub;
        sweep_arm(&sw);
        fdn_runtime_error_hook(&e, rt);
        sweep_failed(&sw, 0);
    }
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    fdn_runtime_destroy(rt);
    assert_int_equal(sweep_live(), base);
}

/* A runtime's component getters, fields, health and statuses, the process default, and a
 * fault posted to a running service allocate nothing on the caller's thread. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_runtime_opts_t o = opts();
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    svc_t a = {0};
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "app";
    spec.ops = &test_flag_service_ops;
    spec.state = &a;
    assert_int_equal(fdn_runtime_add_service(rt, &spec, NULL), 0);
    void *p = NULL;
    NOALLOC_SWEEP(fdn_runtime_breakers, p = fdn_runtime_breakers(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_clock, p = fdn_runtime_clock(rt)); /* NULL: the system clock */
    NOALLOC_SWEEP(fdn_runtime_config, p = fdn_runtime_config(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_events, p = fdn_runtime_events(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_limiter, p = fdn_runtime_limiter(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_pools, p = fdn_runtime_pools(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_protect, p = fdn_runtime_protect(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_registry, p = fdn_runtime_registry(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_supervisor, p = fdn_runtime_supervisor(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_tasks, p = fdn_runtime_tasks(rt));
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_runtime_telemetry, p = fdn_runtime_telemetry(rt));
    assert_non_null(p);
    const char *s = NULL;
    NOALLOC_SWEEP(fdn_runtime_name, s = fdn_runtime_name(rt));
    assert_non_null(s);
    NOALLOC_SWEEP(fdn_runtime_config_path, s = fdn_runtime_config_path(rt));
    NOALLOC_SWEEP(fdn_runtime_data_dir, s = fdn_runtime_data_dir(rt));
    NOALLOC_SWEEP(fdn_runtime_status_name, s = fdn_runtime_status_name(FDN_RUNTIME_HEALTHY));
    assert_non_null(s);
    fdn_runtime_t *prev = NULL;
    NOALLOC_SWEEP(fdn_runtime_set_default, prev = fdn_runtime_set_default(rt));
    NOALLOC_SWEEP(fdn_runtime_default, p = fdn_runtime_default());
    assert_ptr_equal(p, rt);
    (void)fdn_runtime_set_default(prev);
    fdn_runtime_health_t h;
    fdn_service_status_t sv[16];
    size_t n = 0;
    int rc = -1;
    NOALLOC_SWEEP(fdn_runtime_health, rc = fdn_runtime_health(rt, &h, sv, 16, &n));
    assert_int_equal(rc, 0);
    assert_true(n >= 1 && n <= 16);
    fdn_service_status_t st;
    NOALLOC_SWEEP(fdn_runtime_service_status, rc = fdn_runtime_service_status(rt, "app", &st));
    assert_int_equal(rc, 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    NOALLOC_SWEEP(fdn_runtime_inject_fault, rc = fdn_runtime_inject_fault(rt, "app", FDN_EIO));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_runtime_shutdown, rc = fdn_runtime_shutdown(rt, TEST_WAIT_MS));
    assert_int_equal(rc, 0);
    fdn_runtime_destroy(rt);
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_runtime),
        cmocka_unit_test(sweep_error_hook),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
