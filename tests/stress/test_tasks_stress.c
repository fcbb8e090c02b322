/* Stress: 4 submitters push tasks (half of them inside an error context) through a small
 * queue to 3 workers; every accepted task runs exactly once, in its submitter's context. Then
 * the same while another thread stops and restarts the pool (the runtime's supervisor) in a
 * loop: accepted tasks run once, refused ones (FDN_EUNAVAILABLE, FDN_EAGAIN) never.
 * Iterations per submitter: test_stress_iters(3000) (tests/support/stress.h). Runs under TSan
 * in CI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/tasks.h>

#include "stress.h"
#include "threads.h"

#include "core/tasks_int.h"

#define SUBMITTERS 4

typedef struct sub sub_t;

typedef struct job {
    sub_t *s;
    bool with_ctx;
} job_t;

struct sub {
    fdn_tasks_t *tp;
    test_threads_t *threads;
    long iters;
    long accepted;
    long eagain;
    char corr[FDN_UUID_STR_LEN + 1];
    atomic_long ran;        /* tasks of this submitter that ran */
    atomic_long ctx_wrong;  /* tasks that saw a different correlation id */
    atomic_long ctx_absent; /* context tasks that saw none */
    job_t with, without;    /* task arguments (live until the pool is shut down) */
};

static int job_fn(void *p)
{
    job_t *j = p;
    char c[FDN_UUID_STR_LEN + 1];
    int rc = fdn_errctx_correlation_id(c);
    if (j->with_ctx) {
        if (rc != 0)
            atomic_fetch_add_explicit(&j->s->ctx_absent, 1, memory_order_relaxed);
        else if (strcmp(c, j->s->corr) != 0)
            atomic_fetch_add_explicit(&j->s->ctx_wrong, 1, memory_order_relaxed);
    } else if (rc == 0) {
        atomic_fetch_add_explicit(&j->s->ctx_wrong, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&j->s->ran, 1, memory_order_relaxed);
    return 0;
}

static void *submitter(void *p)
{
    sub_t *s = p;
    job_t *jw = &s->with, *jo = &s->without;
    jw->s = s;
    jw->with_ctx = true;
    jo->s = s;
    jo->with_ctx = false;
    void *result = NULL;
    if (fdn_errctx_push("Stress", "submit") == 0) {
        fdn_errctx_correlation_id(s->corr);
        fdn_errctx_pop();
    } else {
        result = p;
    }
    test_threads_gate(s->threads); /* always reached, so the test never hangs */
    for (long i = 0; result == NULL && i < s->iters; i++) {
        int rc;
        if (i % 2 == 0) {
            fdn_errctx_push_root("Stress", "submit", s->corr);
            rc = (i % 4 == 0) ? fdn_tasks_submit(s->tp, job_fn, jw)
                              : fdn_tasks_submit_wait(s->tp, job_fn, jw, -1);
            fdn_errctx_pop();
        } else {
            rc = fdn_tasks_submit_wait(s->tp, job_fn, jo, -1);
        }
        if (rc == 0)
            s->accepted++;
        else if (rc == FDN_EAGAIN)
            s->eagain++;
        else
            result = p;
    }
    test_threads_gate(s->threads);
    return result;
}

static void many_submitters_exact_counts(void **state)
{
    (void)state;
    long iters = test_stress_iters(3000, 0);
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 3;
    o.queue_capacity = 8;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    test_threads_t threads;
    test_threads_init(&threads, SUBMITTERS + 1);
    static sub_t subs[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        memset(&subs[i], 0, sizeof(subs[i]));
        subs[i].tp = tp;
        subs[i].threads = &threads;
        subs[i].iters = iters;
    }
    test_threads_start_n(&threads, SUBMITTERS, submitter, subs, sizeof(subs[0]));
    test_threads_gate(&threads); /* start */
    test_threads_gate(&threads); /* all submitted */
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    test_threads_join(&threads);
    long accepted = 0, eagain = 0;
    for (int i = 0; i < SUBMITTERS; i++) {
        assert_null(threads.ret[i]);
        accepted += subs[i].accepted;
        eagain += subs[i].eagain;
        assert_int_equal(atomic_load(&subs[i].ran), subs[i].accepted);
        assert_int_equal(atomic_load(&subs[i].ctx_wrong), 0);
        assert_int_equal(atomic_load(&subs[i].ctx_absent), 0);
    }
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.completed, (uint64_t)accepted);
    assert_int_equal(st.rejected, (uint64_t)eagain);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.running, 0);
    assert_int_equal(accepted + eagain, SUBMITTERS * iters);
    fdn_tasks_destroy(tp);
}

/* ---- submits racing the runtime's stop/start of the pool, then a shutdown ---- */

typedef struct cycler {
    fdn_tasks_t *tp;
    test_threads_t *threads;
    atomic_bool done; /* the submitters finished */
    long cycles;
    int bad_start; /* a start that answered neither 0 nor FDN_EBUSY */
} cycler_t;

typedef struct rsub {
    fdn_tasks_t *tp;
    test_threads_t *threads;
    long iters;
    long accepted, refused;
    int bad_rc; /* a submit that answered what the header does not list */
    atomic_long ran;
    test_waiter_t *finished; /* +1 when this submitter is done */
} rsub_t;

static int rjob(void *p)
{
    atomic_fetch_add_explicit(&((rsub_t *)p)->ran, 1, memory_order_relaxed);
    return 0;
}

static void *rsubmitter(void *p)
{
    rsub_t *s = p;
    test_threads_gate(s->threads);
    for (long i = 0; i < s->iters; i++) {
        int rc = (i % 2 == 0) ? fdn_tasks_submit(s->tp, rjob, s)
                              : fdn_tasks_submit_wait(s->tp, rjob, s, TEST_WAIT_MS);
        if (rc == 0)
            s->accepted++;
        else if (rc == FDN_EAGAIN || rc == FDN_EUNAVAILABLE)
            s->refused++;
        else
            s->bad_rc = rc;
    }
    test_waiter_add(s->finished, 1);
    test_threads_gate(s->threads);
    return NULL;
}

static void *cycler_main(void *p)
{
    cycler_t *c = p;
    test_threads_gate(c->threads);
    do {                                /* at least once, however the threads are scheduled */
        fdn__tasks_service_stop(c->tp); /* drains and joins */
        int rc = fdn__tasks_service_start(c->tp);
        if (rc != 0)
            c->bad_start = rc;
        c->cycles++;
    } while (!atomic_load_explicit(&c->done, memory_order_acquire));
    test_threads_gate(c->threads);
    return NULL;
}

/* Every accepted task runs exactly once across any number of stops and restarts (the
 * runtime's supervisor restarting the pool) and the final shutdown; a refused one never
 * does; the counters agree. */
static void submits_across_restarts_run_once(void **state)
{
    (void)state;
    long iters = test_stress_iters(3000, 0);
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 2;
    o.queue_capacity = 4;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    test_threads_t threads;
    test_threads_init(&threads, SUBMITTERS + 2);
    static rsub_t subs[SUBMITTERS];
    static cycler_t cyc;
    static test_waiter_t finished = TEST_WAITER_INIT;
    finished.value = 0;
    memset(&cyc, 0, sizeof cyc);
    cyc.tp = tp;
    cyc.threads = &threads;
    for (int i = 0; i < SUBMITTERS; i++) {
        memset(&subs[i], 0, sizeof(subs[i]));
        subs[i].tp = tp;
        subs[i].threads = &threads;
        subs[i].iters = iters;
        subs[i].finished = &finished;
    }
    test_threads_start_n(&threads, SUBMITTERS, rsubmitter, subs, sizeof(subs[0]));
    test_threads_start(&threads, cycler_main, &cyc);
    test_threads_gate(&threads);             /* start */
    test_waiter_wait(&finished, SUBMITTERS); /* then stop the cycler (it restarted the pool) */
    atomic_store_explicit(&cyc.done, true, memory_order_release);
    test_threads_gate(&threads); /* all submitted, cycler stopped */
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    test_threads_join(&threads);
    assert_int_equal(cyc.bad_start, 0);
    assert_true(cyc.cycles > 0);
    long accepted = 0, refused = 0;
    for (int i = 0; i < SUBMITTERS; i++) {
        assert_int_equal(subs[i].bad_rc, 0);
        assert_int_equal(atomic_load(&subs[i].ran), subs[i].accepted);
        accepted += subs[i].accepted;
        refused += subs[i].refused;
    }
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.completed, (uint64_t)accepted);
    assert_int_equal(st.rejected, (uint64_t)refused);
    assert_int_equal(st.queued, 0);
    assert_int_equal(accepted + refused, SUBMITTERS * iters);
    fdn_tasks_destroy(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_submitters_exact_counts),
        cmocka_unit_test(submits_across_restarts_run_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
