/* Stress: calls through a breaker while another thread re-installs it with different options
 * (fdn_breaker_install). The options are published as an immutable snapshot, so under TSan
 * this runs race-free; afterwards the breaker is consistent and keeps one options block per
 * re-install. */
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

#include <fdn/breaker.h>
#include "infra/breaker_int.h"

#define MS       1000000LL
#define NCALLERS 2

static long iters(void)
{
    const char *s = getenv("FDN_STRESS_ITERS");
    long n = s ? strtol(s, NULL, 10) : 0;
    return n > 0 ? n : 20000;
}

typedef struct sctx {
    fdn_breakers_t *set;
    fdn_breaker_t *b;
    fdn_clock_t *clk;
    long n;
    int installs;
    _Atomic int running;
    _Atomic long transitions;
    pthread_barrier_t bar;
} sctx_t;

static fdn_breaker_outcome_t classify(int rc, int64_t dur, void *user)
{
    (void)dur;
    (void)user;
    return rc < 0 ? FDN_BREAKER_FAILURE : FDN_BREAKER_SUCCESS;
}

static void on_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                          void *user)
{
    (void)name;
    (void)from;
    (void)to;
    atomic_fetch_add(&((sctx_t *)user)->transitions, 1);
}

static fdn_breaker_opts_t opts_variant(sctx_t *c, int i)
{
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.clock = c->clk;
    o.on_transition = on_transition;
    o.transition_user = c;
    o.recovery_time_ms = 1 + i % 3;
    o.probe_timeout_ms = 5;
    o.half_open_max_calls = (uint32_t)(1 + i % 4);
    switch (i % 4) {
    case 0:
        o.failure_threshold = 3;
        o.window_ms = 10;
        break;
    case 1:
        o.failure_threshold = 50;
        o.classify = classify;
        break;
    case 2:
        o.failure_threshold = 1000;
        o.failure_rate_pct = 50;
        o.minimum_calls = 4;
        o.rate_window_kind = FDN_BREAKER_WINDOW_COUNT;
        o.rate_window_size = (uint32_t)(8 + i % 32);
        o.slow_call_ms = 2;
        break;
    default:
        o.failure_threshold = 7;
        o.failure_rate_pct = 60;
        o.minimum_calls = 2;
        o.rate_window_kind = FDN_BREAKER_WINDOW_TIME;
        o.rate_window_size = (uint32_t)(2 + i % 5);
        break;
    }
    return o;
}

static int work(void *arg)
{
    long *k = arg;
    return (*k % 3 == 0) ? FDN_EIO : 0;
}

static void *caller(void *arg)
{
    sctx_t *c = arg;
    pthread_barrier_wait(&c->bar);
    for (long i = 0; i < c->n; i++) {
        int fn_rc = 0;
        int rc = fdn_breaker_call(c->b, work, &i, &fn_rc);
        assert_true(rc == 0 || rc == FDN_EIO || rc == FDN_ECIRCUIT_OPEN);
        if (i % 64 == 0) {
            fdn_breaker_status_t st;
            assert_int_equal(fdn_breaker_status(c->b, &st), 0);
        }
    }
    atomic_fetch_sub(&c->running, 1);
    return NULL;
}

static void *installer(void *arg)
{
    sctx_t *c = arg;
    pthread_barrier_wait(&c->bar);
    int i = 0;
    while (atomic_load(&c->running) > 0 || i < 4) {
        fdn_breaker_opts_t o = opts_variant(c, i);
        fdn_breaker_t *got = NULL;
        assert_int_equal(fdn_breaker_install(c->set, "svc", &o, &got), 0);
        assert_ptr_equal(got, c->b);
        i++;
        fdn_clock_advance(c->clk, 1 * MS);
    }
    c->installs = i;
    return NULL;
}

static void install_races_with_calls(void **state)
{
    (void)state;
    sctx_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fdn_clock_manual_create(&c.clk, 1000 * MS, 0), 0);
    assert_int_equal(fdn_breakers_create(&c.set, NULL), 0);
    fdn_breaker_opts_t o = opts_variant(&c, 0);
    assert_int_equal(fdn_breaker_create_in(c.set, "svc", &o, &c.b), 0);
    c.n = iters();
    atomic_store(&c.running, NCALLERS);
    pthread_barrier_init(&c.bar, NULL, NCALLERS + 1);
    pthread_t t[NCALLERS + 1];
    for (int i = 0; i < NCALLERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, caller, &c), 0);
    assert_int_equal(pthread_create(&t[NCALLERS], NULL, installer, &c), 0);
    for (int i = 0; i <= NCALLERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&c.bar);

    /* each re-install retired exactly one options block, all kept until destroy */
    assert_int_equal(fdn__breaker_cfg_count(c.b), (size_t)c.installs + 1);
    /* the last install is in force and the breaker works normally */
    fdn_breaker_reset(c.b);
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(c.b, &st), 0);
    assert_int_equal(st.state, FDN_BREAKER_CLOSED);
    assert_int_equal(st.failures, 0);
    fdn_breaker_opts_t last = opts_variant(&c, 0);
    assert_int_equal(fdn_breaker_install(c.set, "svc", &last, NULL), 0);
    long bad = 0;
    for (int i = 0; i < 3; i++)
        fdn_breaker_call(c.b, work, &bad, NULL);
    assert_int_equal(fdn_breaker_state(c.b), FDN_BREAKER_OPEN);
    fdn_breakers_destroy(c.set);
    fdn_clock_destroy(c.clk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(install_races_with_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
