/* DESIGN: the breaker tests' fixture (see breaker_fixture.h). State lives in the fixture the
 * test owns; the transition callback writes it without a lock, so only single-threaded tests
 * ask for it (test_breaker_setup). */
#include "breaker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#define MS 1000000LL

static int setup(void **state, bool record)
{
    test_breaker_fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fdn_clock_manual_create(&f->clk, 1000 * MS, 1700000000000LL * MS), 0);
    assert_int_equal(fdn_breakers_create(&f->set, NULL), 0);
    f->record = record;
    *state = f;
    return 0;
}

int test_breaker_setup(void **state)
{
    return setup(state, true);
}

int test_breaker_setup_quiet(void **state)
{
    return setup(state, false);
}

int test_breaker_teardown(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breakers_destroy(f->set);
    fdn_clock_destroy(f->clk);
    free(f);
    return 0;
}

static void on_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                          void *user)
{
    test_breaker_fx_t *f = user;
    (void)name;
    f->transitions++;
    f->last_from = from;
    f->last_to = to;
}

fdn_breaker_t *test_breaker_make(test_breaker_fx_t *f, const char *name, fdn_breaker_opts_t *o)
{
    fdn_breaker_t *b = NULL;
    o->clock = f->clk;
    if (f->record) {
        o->on_transition = on_transition;
        o->transition_user = f;
    }
    assert_int_equal(fdn_breaker_create_in(f->set, name, o, &b), 0);
    return b;
}

fdn_breaker_t *test_breaker_basic(test_breaker_fx_t *f, const char *name,
                                  uint32_t failure_threshold, int64_t recovery_time_ms,
                                  int64_t probe_timeout_ms)
{
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = failure_threshold;
    if (recovery_time_ms > 0)
        o.recovery_time_ms = recovery_time_ms;
    if (probe_timeout_ms > 0)
        o.probe_timeout_ms = probe_timeout_ms;
    return test_breaker_make(f, name, &o);
}
