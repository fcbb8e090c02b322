/* Breaker fixture for the breaker's unit tests (test_breaker.c, test_breaker_ticket.c): a
 * manual clock and a breaker set, and breakers made in that set on that clock. With
 * test_breaker_setup the fixture also records their transitions (from the calling thread of
 * whatever causes them: for single-threaded tests); test_breaker_setup_quiet leaves
 * on_transition alone.
 *
 * cmocka use:
 *   cmocka_unit_test_setup_teardown(fn, test_breaker_setup, test_breaker_teardown)
 * and in fn: test_breaker_fx_t *f = *state; */
#ifndef FDN_TEST_BREAKER_FIXTURE_H
#define FDN_TEST_BREAKER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <fdn/breaker.h>

typedef struct test_breaker_fx {
    fdn_clock_t *clk; /* manual, at 1000 ms monotonic */
    fdn_breakers_t *set;
    bool record; /* breakers made here report their transitions below */
    int transitions;
    fdn_breaker_state_t last_from, last_to;
} test_breaker_fx_t;

int test_breaker_setup(void **state);
int test_breaker_setup_quiet(void **state);
int test_breaker_teardown(void **state);

/* Creates breaker name in f->set with o, on f's clock (and, when f records, with f's
 * transition callback); fails the test when it cannot. */
fdn_breaker_t *test_breaker_make(test_breaker_fx_t *f, const char *name, fdn_breaker_opts_t *o);

/* The same with default options but these three (0: keep the default). */
fdn_breaker_t *test_breaker_basic(test_breaker_fx_t *f, const char *name,
                                  uint32_t failure_threshold, int64_t recovery_time_ms,
                                  int64_t probe_timeout_ms);

#endif
