/* Failing-allocator sweep of include/fdn/runtime.h (tests/alloc/README.md): the composition
 * root (create without starting, start, add a service before and after start). The calling
 * thread's allocations are failed; tests/fault/test_runtime_fault.c sweeps the runtime's own
 * threads. Every pass builds and destroys its runtime: the balance at the end of the pass
 * covers what the threads allocated. A pass costs tens of ms (most of it the teardown), so
 * create and start fail every 8th allocation unless FDN_SWEEP_FULL=1 (see alloc_sweep.h);
 * the full sweep (1154 allocations of create) takes about 50 s under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>

#include <fdn/error.h>
#include <fdn/runtime.h>

#include "alloc_sweep.h"

static const char *const no_env[] = {NULL};

typedef struct svc {
    atomic_bool running;
} svc_t;

static int s_start(void *st, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    atomic_store(&((svc_t *)st)->running, true);
    return 0;
}

static void s_stop(void *st)
{
    atomic_store(&((svc_t *)st)->running, false);
}

static const fdn_service_ops_t OPS = {s_start, s_stop, NULL, NULL, NULL};

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
    SWEEP(sw, fdn_runtime_create, SWEEP_NO_CALL_LEAK | SWEEP_SLOW)
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
        assert_int_equal(fdn_runtime_shutdown(rt, 5000), 0);
        fdn_runtime_destroy(rt);
    }
    SWEEP(sw, fdn_runtime_add_service, SWEEP_NO_CALL_LEAK)
    {
        fdn_runtime_t *rt = NULL;
        assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
        assert_int_equal(fdn_runtime_start(rt, NULL), 0);
        svc_t a = {0};
        fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
        spec.name = "app";
        spec.ops = &OPS;
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
        assert_int_equal(fdn_runtime_shutdown(rt, 5000), 0);
        fdn_runtime_destroy(rt);
    }
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
