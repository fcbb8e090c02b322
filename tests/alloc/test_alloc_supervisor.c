/* Failing-allocator sweep of include/fdn/supervisor.h (tests/alloc/README.md): create, add
 * (before and after start) and start. Only the calling thread's allocations are failed (the
 * supervisor's own thread is swept by tests/fault/test_runtime_fault.c); every pass builds
 * and destroys its supervisor, so the end-of-pass balance covers the threads too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/supervisor.h>

#include "alloc_sweep.h"
#include "flag_service.h"
#include "threads.h" /* TEST_WAIT_MS */

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
    spec.ops = &test_flag_service_ops;
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
        spec.ops = &test_flag_service_ops;
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
        assert_int_equal(fdn_supervisor_shutdown(s, TEST_WAIT_MS), 0);
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
        spec.ops = &test_flag_service_ops;
        spec.state = &b;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_supervisor_add(s, &spec, NULL))) {
            assert_int_equal(fdn_supervisor_count(s), 1);
            assert_false(atomic_load(&b.running));
        } else {
            assert_true(atomic_load(&b.running));
        }
        assert_true(atomic_load(&a.running)); /* the others run on */
        assert_int_equal(fdn_supervisor_shutdown(s, TEST_WAIT_MS), 0);
        fdn_supervisor_destroy(s);
    }
}

/* The service side: a running service's calls on its control block, made on the service's
 * thread (the count is taken there, the assertions here, once it has signalled). */
typedef struct probe {
    sem_t done;
    long allocs[4]; /* should_stop, name, clock, wait */
    bool stop_seen;
    bool name_ok;
} probe_t;

static int p_run(void *st, fdn_service_ctl_t *ctl)
{
    probe_t *p = st;
    bool stop = true;
    const char *name = NULL;
    NOALLOC_COUNT(fdn_service_should_stop, p->allocs[0], stop = fdn_service_should_stop(ctl));
    NOALLOC_COUNT(fdn_service_name, p->allocs[1], name = fdn_service_name(ctl));
    fdn_clock_t *c = NULL;
    NOALLOC_COUNT(fdn_service_clock, p->allocs[2], c = fdn_service_clock(ctl));
    /* a deadline already passed: returns at once */
    NOALLOC_COUNT(fdn_service_wait, p->allocs[3], (void)fdn_service_wait(ctl, 0));
    p->stop_seen = stop;
    (void)c; /* NULL: the system clock */
    p->name_ok = name != NULL && strcmp(name, "probe") == 0;
    sem_post(&p->done);
    while (!fdn_service_should_stop(ctl))
        (void)fdn_service_wait(ctl, INT64_MAX);
    return 0;
}

static int p_start(void *st, void *ctx, fdn_error_t *err)
{
    (void)st;
    (void)ctx;
    (void)err;
    return 0;
}

static void p_stop(void *st)
{
    (void)st;
}

static const fdn_service_ops_t PROBE_OPS = {p_start, p_stop, NULL, p_run, NULL};

static void accessors_allocate_nothing(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_supervisor_t *s = mk();
    svc_t a = {0};
    add(s, "a", &a);
    probe_t pr = {0};
    assert_int_equal(sem_init(&pr.done, 0, 0), 0);
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "probe";
    spec.ops = &PROBE_OPS;
    spec.state = &pr;
    assert_int_equal(fdn_supervisor_add(s, &spec, NULL), 0);
    assert_int_equal(fdn_supervisor_start(s, NULL), 0);
    while (sem_wait(&pr.done) != 0)
        ;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pr.allocs[i], 0);
    assert_false(pr.stop_seen);
    assert_true(pr.name_ok);

    size_t n = 0;
    bool failed = true;
    fdn_clock_t *c = NULL;
    fdn_service_status_t st;
    int rc = -1;
    NOALLOC_SWEEP(fdn_supervisor_count, n = fdn_supervisor_count(s));
    assert_int_equal(n, 2);
    NOALLOC_SWEEP(fdn_supervisor_failed, failed = fdn_supervisor_failed(s));
    assert_false(failed);
    NOALLOC_SWEEP(fdn_supervisor_clock, c = fdn_supervisor_clock(s));
    (void)c; /* NULL: the system clock */
    NOALLOC_SWEEP(fdn_supervisor_service_status, rc = fdn_supervisor_service_status(s, "a", &st));
    assert_int_equal(rc, 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    NOALLOC_SWEEP(fdn_supervisor_status_at, rc = fdn_supervisor_status_at(s, 0, &st));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_supervisor_wait_idle, rc = fdn_supervisor_wait_idle(s, TEST_WAIT_MS));
    assert_int_equal(rc, 0);
    const char *sn = NULL;
    NOALLOC_SWEEP(fdn_service_state_name, sn = fdn_service_state_name(FDN_SERVICE_RUNNING));
    assert_non_null(sn);
    /* a fault posted to a running service: a flag and a kick (the restart that follows runs
     * on the supervisor's thread) */
    NOALLOC_SWEEP(fdn_supervisor_inject_fault, rc = fdn_supervisor_inject_fault(s, "a", -5));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_supervisor_shutdown, rc = fdn_supervisor_shutdown(s, TEST_WAIT_MS));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_supervisor_destroy, fdn_supervisor_destroy(s));
    sem_destroy(&pr.done);
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_supervisor),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
