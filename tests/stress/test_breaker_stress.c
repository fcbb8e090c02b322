/* Stress: calls through a breaker while another thread re-installs it with different options
 * (fdn_breaker_install). The options are published as an immutable snapshot, so under TSan
 * this runs race-free; afterwards the breaker is consistent and keeps one options block per
 * re-install. The number of installs is fixed in advance and paced by the callers' progress
 * (one install per few chunks of calls), so they interleave with the calls however the
 * threads are scheduled, and the retained options blocks stay bounded on a loaded machine. */
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
#include "stress.h"
#include "threads.h"

#define MS       1000000LL
#define NCALLERS 2
#define CHUNK    64 /* calls per progress step */


typedef struct sctx {
    fdn_breakers_t *set;
    fdn_breaker_t *b;
    fdn_clock_t *clk;
    long n;
    long chunks;   /* progress steps the callers make in all */
    long installs; /* re-installs the installer makes, paced by the progress */
    _Atomic long transitions;
    test_waiter_t progress; /* chunks of calls done by all callers */
    test_threads_t threads;
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
    test_threads_gate(&c->threads);
    for (long i = 0; i < c->n; i++) {
        int fn_rc = 0;
        int rc = fdn_breaker_call(c->b, work, &i, &fn_rc);
        assert_true(rc == 0 || rc == FDN_EIO || rc == FDN_ECIRCUIT_OPEN);
        if (i % 64 == 0) {
            fdn_breaker_status_t st;
            assert_int_equal(fdn_breaker_status(c->b, &st), 0);
        }
        if (i % CHUNK == CHUNK - 1)
            test_waiter_add(&c->progress, 1);
    }
    return NULL;
}

static void *installer(void *arg)
{
    sctx_t *c = arg;
    test_threads_gate(&c->threads);
    for (long i = 0; i < c->installs; i++) {
        /* install i once the callers are i/installs of the way through (always reached) */
        test_waiter_wait(&c->progress, i * c->chunks / c->installs);
        fdn_breaker_opts_t o = opts_variant(c, (int)(i % 1024));
        fdn_breaker_t *got = NULL;
        assert_int_equal(fdn_breaker_install(c->set, "svc", &o, &got), 0);
        assert_ptr_equal(got, c->b);
        fdn_clock_advance(c->clk, 1 * MS);
    }
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
    c.n = test_stress_iters(20000, 0);
    c.chunks = NCALLERS * (c.n / CHUNK);
    c.installs = 4 + c.chunks / 2;
    test_waiter_init(&c.progress);
    test_threads_init(&c.threads, NCALLERS + 1);
    test_threads_start_n(&c.threads, NCALLERS, caller, &c, 0);
    test_threads_start(&c.threads, installer, &c);
    test_threads_join(&c.threads);
    assert_int_equal(test_waiter_value(&c.progress), c.chunks);
    test_waiter_destroy(&c.progress);

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

/* Installs, removes and creates (revives) of one name on three threads, with an on_transition
 * that looks the name up and removes it from inside the reports (install's and revive's
 * resets): under TSan no race, no deadlock (an install's claim spans no callback), every call
 * answers one of its documented codes, and the set stays consistent: afterwards the name is
 * listed at most once and an install makes it work with its options. */
typedef struct mix {
    fdn_breakers_t *set;
    long n;
    test_threads_t threads;
    _Atomic long installed, removed, created;
} mix_t;

static void mix_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                           void *user)
{
    (void)from;
    (void)to;
    mix_t *m = user;
    fdn_breaker_t *b = NULL;
    int rc = fdn_breaker_get(m->set, name, &b);
    assert_true(rc == 0 || rc == FDN_EBREAKER_NOT_FOUND);
    if (atomic_load(&m->installed) % 7 == 0) {
        rc = fdn_breaker_remove(m->set, name);
        assert_true(rc == 0 || rc == FDN_EBREAKER_NOT_FOUND);
    }
}

static fdn_breaker_opts_t mix_opts(mix_t *m, long i)
{
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1 + (uint32_t)(i % 5);
    o.on_transition = mix_transition;
    o.transition_user = m;
    return o;
}

static void *mix_installer(void *arg)
{
    mix_t *m = arg;
    test_threads_gate(&m->threads);
    for (long i = 0; i < m->n; i++) {
        fdn_breaker_opts_t o = mix_opts(m, i);
        fdn_breaker_t *got = NULL;
        assert_int_equal(fdn_breaker_install(m->set, "mix", &o, &got), 0);
        assert_non_null(got);
        atomic_fetch_add(&m->installed, 1);
    }
    return NULL;
}

static void *mix_remover(void *arg)
{
    mix_t *m = arg;
    test_threads_gate(&m->threads);
    for (long i = 0; i < m->n; i++) {
        int rc = fdn_breaker_remove(m->set, "mix");
        assert_true(rc == 0 || rc == FDN_EBREAKER_NOT_FOUND);
        if (rc == 0)
            atomic_fetch_add(&m->removed, 1);
    }
    return NULL;
}

static void *mix_creator(void *arg)
{
    mix_t *m = arg;
    test_threads_gate(&m->threads);
    for (long i = 0; i < m->n; i++) {
        fdn_breaker_opts_t o = mix_opts(m, i + 2);
        int rc = fdn_breaker_create_in(m->set, "mix", &o, NULL);
        assert_true(rc == 0 || rc == FDN_EEXIST);
        if (rc == 0)
            atomic_fetch_add(&m->created, 1);
    }
    return NULL;
}

static void install_remove_revive_mix(void **state)
{
    (void)state;
    mix_t m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(fdn_breakers_create(&m.set, NULL), 0);
    m.n = test_stress_iters(3000, 0);
    test_threads_init(&m.threads, 3);
    test_threads_start(&m.threads, mix_installer, &m);
    test_threads_start(&m.threads, mix_remover, &m);
    test_threads_start(&m.threads, mix_creator, &m);
    test_threads_join(&m.threads);
    assert_int_equal(atomic_load(&m.installed), m.n);
    assert_true(fdn_breakers_count(m.set) <= 1);
    /* a last install, alone: listed, closed, with its threshold (2) */
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    fdn_breaker_t *b = NULL, *found = NULL;
    assert_int_equal(fdn_breaker_install(m.set, "mix", &o, &b), 0);
    assert_int_equal(fdn_breaker_get(m.set, "mix", &found), 0);
    assert_ptr_equal(found, b);
    assert_int_equal(fdn_breakers_count(m.set), 1);
    long bad = 0;
    fdn_breaker_call(b, work, &bad, NULL);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_breaker_call(b, work, &bad, NULL);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breakers_destroy(m.set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(install_races_with_calls),
        cmocka_unit_test(install_remove_revive_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
