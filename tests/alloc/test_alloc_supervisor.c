/* Failing-allocator sweep of include/fdn/supervisor.h (tests/alloc/README.md): create, add
 * (before and after start) and start. Only the calling thread's allocations are failed (the
 * supervisor's own thread is swept by tests/fault/test_runtime_fault.c); every pass builds
 * and destroys its supervisor, so the end-of-pass balance covers the threads too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>

#include <fdn/error.h>
#include <fdn/supervisor.h>

#include "alloc_sweep.h"

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

static fdn_supervisor_t *mk(void)
{
    fdn_supervisor_opts_t o = FDN_SUPERVISOR_OPTS_INIT;
    fdn_supervisor_t *s = NULL;
    assert_int_equal(fdn_supervisor_create(&s, &o), 0);
    return s;
}

static void add(fdn_supervisor_t *s, const char *name, svc_t *st)
{
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = name;
    spec.ops = &OPS;
    spec.state = st;
    assert_int_equal(fdn_supervisor_add(s, &spec, NULL), 0);
}

static void sweep_supervisor(void **state)
{
    (void)state;
    fdn_supervisor_opts_t o = FDN_SUPERVISOR_OPTS_INIT;
    SWEEP(sw, fdn_supervisor_create, 0)
    {
        fdn_supervisor_t *s = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_supervisor_create(&s, &o)))
            assert_null(s);
        else
            fdn_supervisor_destroy(s);
    }
    SWEEP(sw, fdn_supervisor_add, 0)
    {
        fdn_supervisor_t *s = mk();
        svc_t a = {0};
        fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
        spec.name = "a";
        spec.ops = &OPS;
        spec.state = &a;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_supervisor_add(s, &spec, NULL)))
            assert_int_equal(fdn_supervisor_count(s), 0);
        else
            assert_int_equal(fdn_supervisor_count(s), 1);
        fdn_supervisor_destroy(s);
    }
    SWEEP(sw, fdn_supervisor_start, SWEEP_NO_CALL_LEAK)
    {
        fdn_supervisor_t *s = mk();
        svc_t a = {0};
        add(s, "a", &a);
        sweep_arm(&sw);
        int rc = fdn_supervisor_start(s, NULL);
        if (sweep_failed(&sw, rc))
            assert_false(atomic_load(&a.running));
        else
            assert_true(atomic_load(&a.running));
        assert_int_equal(fdn_supervisor_shutdown(s, 5000), 0);
        fdn_supervisor_destroy(s);
    }
    /* a service added to a running supervisor is started by the add */
    SWEEP(sw, fdn_supervisor_add, SWEEP_NO_CALL_LEAK)
    {
        fdn_supervisor_t *s = mk();
        svc_t a = {0}, b = {0};
        add(s, "a", &a);
        assert_int_equal(fdn_supervisor_start(s, NULL), 0);
        fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
        spec.name = "b";
        spec.ops = &OPS;
        spec.state = &b;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_supervisor_add(s, &spec, NULL))) {
            assert_int_equal(fdn_supervisor_count(s), 1);
            assert_false(atomic_load(&b.running));
        } else {
            assert_true(atomic_load(&b.running));
        }
        assert_true(atomic_load(&a.running)); /* the others run on */
        assert_int_equal(fdn_supervisor_shutdown(s, 5000), 0);
        fdn_supervisor_destroy(s);
    }
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_supervisor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
