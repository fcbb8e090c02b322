/* Stress: 4 submitters push tasks (half of them inside an error context) through a small
 * queue to 3 workers; every accepted task runs exactly once, in its submitter's context.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_submitters_exact_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
