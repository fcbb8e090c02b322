/* Stress: 32 test runtimes created, used and destroyed concurrently by 4 threads. Each runtime
 * gets a supervised worker service and a registration; every thread then checks that each of
 * the 32 registrations is visible only in its own runtime, drives restarts on its runtimes
 * with their manual clocks, and destroys them with the leak check. Runs under ASan and TSan.
 * The whole round repeats test_stress_iters(2, 100) times (tests/support/stress.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/runtime.h>
#include <fdn/testing.h>

#include "stress.h"
#include "threads.h"

#define THREADS  4
#define PER      8
#define RUNTIMES (THREADS * PER)
#define MS       1000000LL

typedef struct svc {
    atomic_bool running;
    atomic_int starts;
} svc_t;

static int s_start(void *st, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    svc_t *s = st;
    atomic_fetch_add(&s->starts, 1);
    atomic_store(&s->running, true);
    return 0;
}

static void s_stop(void *st)
{
    svc_t *s = st;
    atomic_store(&s->running, false);
}

static int s_run(void *st, fdn_service_ctl_t *ctl)
{
    (void)st;
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

static const fdn_service_ops_t OPS = {s_start, s_stop, NULL, s_run, NULL};

typedef struct shared {
    test_threads_t threads;
    fdn_runtime_t *rts[RUNTIMES];
    svc_t svcs[RUNTIMES];
    atomic_int task_runs[RUNTIMES];
    atomic_int errors;
} shared_t;

typedef struct targ {
    shared_t *sh;
    int id;
} targ_t;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed line %d: %s\n", __LINE__, #cond);                        \
            atomic_fetch_add(&sh->errors, 1);                                                      \
        }                                                                                          \
    } while (0)

static int task_inc(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void *worker(void *p)
{
    targ_t *a = p;
    shared_t *sh = a->sh;
    int lo = a->id * PER;
    /* phase 1: create, add a service, register a private name */
    for (int i = lo; i < lo + PER; i++) {
        fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
        o.task_workers = 1;
        o.max_restarts = 100;
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_testing_runtime_create(&sh->rts[i], &o, &err);
        CHECK(rc == 0);
        if (rc != 0)
            continue;
        fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
        spec.name = "worker";
        spec.ops = &OPS;
        spec.state = &sh->svcs[i];
        CHECK(fdn_runtime_add_service(sh->rts[i], &spec, NULL) == 0);
        char name[32];
        snprintf(name, sizeof(name), "svc-%d", i);
        CHECK(fdn_registry_register(fdn_runtime_registry(sh->rts[i]), name, &sh->svcs[i], 0, NULL,
                                    0, NULL) == 0);
    }
    test_threads_gate(&sh->threads);
    /* phase 2: isolation, seen from every thread at once */
    for (int j = 0; j < RUNTIMES; j++) {
        char name[32];
        snprintf(name, sizeof(name), "svc-%d", j);
        for (int k = 0; k < RUNTIMES; k++) {
            if (sh->rts[k] == NULL)
                continue;
            void *h = NULL;
            int rc = fdn_registry_lookup(fdn_runtime_registry(sh->rts[k]), name, &h, NULL);
            if (k == j)
                CHECK(rc == 0 && h == &sh->svcs[j]);
            else
                CHECK(rc == FDN_ESERVICE_NOT_FOUND);
        }
    }
    /* use our runtimes: restart the worker through the fault hook, run a task */
    for (int i = lo; i < lo + PER; i++) {
        fdn_runtime_t *rt = sh->rts[i];
        if (rt == NULL)
            continue;
        CHECK(fdn_runtime_inject_fault(rt, "worker", -EIO) == 0);
        CHECK(fdn_testing_settle(rt) == 0);
        CHECK(!atomic_load(&sh->svcs[i].running));
        CHECK(fdn_testing_advance(rt, 10 * MS) == 0);
        CHECK(atomic_load(&sh->svcs[i].running));
        CHECK(atomic_load(&sh->svcs[i].starts) == 2);
        CHECK(fdn_tasks_submit_wait(fdn_runtime_tasks(rt), task_inc, &sh->task_runs[i],
                                    TEST_WAIT_MS) == 0);
    }
    test_threads_gate(&sh->threads);
    /* phase 3: destroy concurrently, with the leak check */
    for (int i = lo; i < lo + PER; i++) {
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_testing_runtime_destroy(sh->rts[i], &err);
        if (rc != 0)
            fprintf(stderr, "destroy: %s\n", err.message);
        CHECK(rc == 0);
        CHECK(atomic_load(&sh->task_runs[i]) == 1); /* shutdown drained the pool */
    }
    return NULL;
}

static void many_runtimes_concurrently(void **state)
{
    (void)state;
    long iters = test_stress_iters(2, 100);
    for (long it = 0; it < iters; it++) {
        shared_t *sh = calloc(1, sizeof(*sh));
        assert_non_null(sh);
        test_threads_init(&sh->threads, THREADS);
        targ_t args[THREADS];
        for (int t = 0; t < THREADS; t++) {
            args[t].sh = sh;
            args[t].id = t;
        }
        test_threads_start_n(&sh->threads, THREADS, worker, args, sizeof(args[0]));
        test_threads_join(&sh->threads);
        assert_int_equal(atomic_load(&sh->errors), 0);
        free(sh);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_runtimes_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
