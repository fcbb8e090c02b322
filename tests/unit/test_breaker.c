/* Circuit breaker: every transition on a manual clock (no sleeps), reference §11.6. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/breaker.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "breaker_fixture.h"
#include "infra/breaker_int.h"
#include "threads.h"

#define MS 1000000LL

static int ok_fn(void *arg)
{
    int *n = arg;
    if (n)
        (*n)++;
    return 7;
}

static int fail_fn(void *arg)
{
    int *n = arg;
    if (n)
        (*n)++;
    return FDN_EIO;
}

static void run_fail(fdn_breaker_t *b)
{
    fdn_breaker_permit_t p;
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_breaker_record(b, &p, -5);
}

static void run_ok(fdn_breaker_t *b)
{
    fdn_breaker_permit_t p;
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_breaker_record(b, &p, 0);
}

static void closed_to_open_on_threshold(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "db", 3, 0, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b); /* the 3rd failure opens */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    assert_int_equal(f->transitions, 1);
    assert_int_equal(f->last_to, FDN_BREAKER_OPEN);
    int ran = 0, rc = 0;
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), FDN_ECIRCUIT_OPEN);
    assert_int_equal(ran, 0);
    fdn_breaker_status_t s;
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.state, FDN_BREAKER_OPEN);
    assert_int_equal(s.ms_until_half_open, 30000);
    assert_int_equal(s.total_rejected, 1);
    assert_int_equal(s.total_failures, 3);
    assert_int_equal(s.times_opened, 1);
    fdn_clock_advance(f->clk, 10000 * MS);
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.ms_until_half_open, 20000);
}

static void success_resets_consecutive(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "x", 3, 0, 0);
    run_fail(b);
    run_fail(b);
    run_ok(b);
    run_fail(b);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.failures, 2);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void failures_age_out_of_window(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 3;
    o.window_ms = 1000;
    fdn_breaker_t *b = test_breaker_make(f, "w", &o);
    run_fail(b);
    fdn_clock_advance(f->clk, 600 * MS);
    run_fail(b);
    fdn_clock_advance(f->clk, 400 * MS); /* first failure is now exactly 1000 ms old */
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* status.failures is "failures currently counted toward the threshold" (breaker.h): failures
 * older than window_ms no longer count, even before the next failure drops them. (It read the
 * failures recorded, however old, until the next failure.) */
static void status_failures_age_out_too(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 3;
    o.window_ms = 1000;
    fdn_breaker_t *b = test_breaker_make(f, "ws", &o);
    fdn_breaker_status_t s;
    run_fail(b);
    fdn_clock_advance(f->clk, 600 * MS);
    run_fail(b);
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.failures, 2);
    fdn_clock_advance(f->clk, 400 * MS); /* the first is exactly 1000 ms old: out */
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.failures, 1);
    fdn_clock_advance(f->clk, 600 * MS); /* both out */
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.total_failures, 2);
    /* reading the status changed nothing: two more failures do not open it */
    run_fail(b);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_status(b, &s), 0);
    assert_int_equal(s.failures, 2);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void open_half_open_close(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "h", 1, 100, 0);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_permit_t p, p2;
    fdn_clock_advance(f->clk, 99 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), 0); /* the probe */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    assert_int_equal(fdn_breaker_acquire(b, &p2), FDN_ECIRCUIT_OPEN); /* one probe only */
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.probes_in_flight, 1);
    assert_int_equal(s.ms_until_half_open, -1);
    fdn_breaker_record(b, &p, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(f->last_from, FDN_BREAKER_HALF_OPEN);
    assert_int_equal(f->last_to, FDN_BREAKER_CLOSED);
    assert_int_equal(f->transitions, 3);
}

static void half_open_failure_reopens(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    o.recovery_time_ms = 100;
    o.half_open_max_calls = 2;
    fdn_breaker_t *b = test_breaker_make(f, "h2", &o);
    run_fail(b);
    fdn_clock_advance(f->clk, 100 * MS);
    fdn_breaker_permit_t p1, p2, p3;
    assert_int_equal(fdn_breaker_acquire(b, &p1), 0);
    assert_int_equal(fdn_breaker_acquire(b, &p2), 0);
    assert_int_equal(fdn_breaker_acquire(b, &p3), FDN_ECIRCUIT_OPEN);
    fdn_breaker_record(b, &p1, -1);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    /* the late second probe belongs to a finished phase: ignored */
    fdn_breaker_record(b, &p2, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.times_opened, 2);
    assert_int_equal(s.ms_until_half_open, 100);
}

static void probe_timeout_never_sticks(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "pt", 1, 100, 50);
    run_fail(b);
    fdn_clock_advance(f->clk, 100 * MS);
    fdn_breaker_permit_t lost, p;
    assert_int_equal(fdn_breaker_acquire(b, &lost), 0); /* never reported */
    fdn_clock_advance(f->clk, 49 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN); /* timed-out probe = failure */
    fdn_clock_advance(f->clk, 100 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_breaker_record(b, &lost, 0); /* stale: ignored, slot of the new phase untouched */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    fdn_breaker_record(b, &p, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    /* a probe that succeeds but takes longer than probe_timeout is a failure */
    run_fail(b);
    fdn_clock_advance(f->clk, 100 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_clock_advance(f->clk, 60 * MS);
    fdn_breaker_record(b, &p, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* The probe timeout is per probe: a probe taken after an earlier one was released must get
 * its own probe_timeout_ms, not what is left of the time since half-open began (it was
 * timed out early and its success ignored, reopening a healthy dependency). */
static void probe_timeout_counts_from_the_probe(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "pt2", 1, 100, 50);
    run_fail(b);
    fdn_clock_advance(f->clk, 100 * MS);
    fdn_breaker_permit_t p1, p2, p;
    assert_int_equal(fdn_breaker_acquire(b, &p1), 0); /* half-open begins, first probe */
    fdn_clock_advance(f->clk, 40 * MS);
    fdn_breaker_release(b, &p1);                      /* e.g. rejected by the pool: slot returned */
    assert_int_equal(fdn_breaker_acquire(b, &p2), 0); /* second probe at +40 ms */
    fdn_clock_advance(f->clk, 20 * MS);               /* +60 ms: p2 is 20 ms old */
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    fdn_breaker_record(b, &p2, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    /* and a probe that really exceeds its timeout still reopens on the next call */
    run_fail(b);
    fdn_clock_advance(f->clk, 100 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p1), 0);
    fdn_clock_advance(f->clk, 50 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void release_frees_probe_slot(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "rel", 1, 10, 0);
    run_fail(b);
    fdn_clock_advance(f->clk, 10 * MS);
    fdn_breaker_permit_t p;
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_breaker_release(b, &p);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_breaker_record(b, &p, 1);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
}

static fdn_breaker_outcome_t classify_odd(int rc, int64_t dur, void *user)
{
    (void)dur;
    (void)user;
    if (rc == FDN_EINVAL)
        return FDN_BREAKER_IGNORE;
    return (rc & 1) ? FDN_BREAKER_FAILURE : FDN_BREAKER_SUCCESS;
}

static void classify_callback(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    o.classify = classify_odd;
    fdn_breaker_t *b = test_breaker_make(f, "cl", &o);
    fdn_breaker_permit_t p;
    fdn_breaker_acquire(b, &p);
    fdn_breaker_record(b, &p, 3);
    fdn_breaker_acquire(b, &p);
    fdn_breaker_record(b, &p, FDN_EINVAL); /* ignored: does not reset, does not count */
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.failures, 1);
    fdn_breaker_acquire(b, &p);
    fdn_breaker_record(b, &p, 5);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void rate_policy_count_window(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1000;
    o.failure_rate_pct = 50;
    o.rate_window_size = 10;
    o.minimum_calls = 4;
    fdn_breaker_t *b = test_breaker_make(f, "rate", &o);
    run_fail(b);
    run_fail(b);
    run_ok(b); /* 2/3 = 66% but only 3 calls */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_ok(b); /* 2/4 = 50% -> open */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_reset(b);
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.window_calls, 0);
    for (int i = 0; i < 10; i++)
        run_ok(b);
    for (int i = 0; i < 4; i++)
        run_fail(b); /* window of 10: 4 fail / 10 */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_breaker_status(b, &s);
    assert_int_equal(s.window_calls, 10);
    assert_int_equal(s.window_failures, 4);
    run_fail(b); /* 5 / 10 */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void rate_policy_time_window(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1000;
    o.failure_rate_pct = 50;
    o.rate_window_kind = FDN_BREAKER_WINDOW_TIME;
    o.rate_window_size = 2; /* seconds */
    o.minimum_calls = 4;
    fdn_breaker_t *b = test_breaker_make(f, "trate", &o);
    run_fail(b);
    run_fail(b);
    run_fail(b);
    fdn_clock_advance(f->clk, 3000 * MS); /* those age out */
    run_fail(b);
    run_ok(b);
    run_ok(b);
    run_ok(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b); /* 2/5 */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b); /* 3/6 */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static fdn_clock_t *g_clk;
static int slow_fn(void *arg)
{
    (void)arg;
    fdn_clock_advance(g_clk, 200 * MS);
    return 0;
}

static void slow_calls(void **state)
{
    test_breaker_fx_t *f = *state;
    g_clk = f->clk;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    o.slow_call_ms = 200;
    fdn_breaker_t *b = test_breaker_make(f, "slow", &o);
    int rc;
    assert_int_equal(fdn_breaker_call(b, slow_fn, NULL, &rc), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_call(b, slow_fn, NULL, &rc), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN); /* slow counted as failure */

    fdn_breaker_opts_t o2 = FDN_BREAKER_OPTS_INIT;
    o2.slow_call_ms = 100;
    o2.slow_rate_pct = 60;
    o2.minimum_calls = 3;
    o2.rate_window_size = 5;
    fdn_breaker_t *b2 = test_breaker_make(f, "slow2", &o2);
    assert_int_equal(fdn_breaker_call(b2, ok_fn, NULL, &rc), 7);
    assert_int_equal(fdn_breaker_call(b2, slow_fn, NULL, &rc), 0);
    assert_int_equal(fdn_breaker_state(b2), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_call(b2, slow_fn, NULL, &rc), 0); /* 2/3 = 66% slow */
    assert_int_equal(fdn_breaker_state(b2), FDN_BREAKER_OPEN);
    fdn_breaker_status_t s;
    fdn_breaker_status(b2, &s);
    assert_int_equal(s.total_failures, 0);
}

static void force_open_disable_reset(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "m", 1, 0, 0);
    int ran = 0, rc;
    fdn_breaker_force_open(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_FORCED_OPEN);
    fdn_clock_advance(f->clk, 3600000 * MS);
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), FDN_ECIRCUIT_OPEN);
    assert_int_equal(ran, 0);
    fdn_breaker_disable(b);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_breaker_call(b, fail_fn, &ran, &rc), FDN_EIO);
    assert_int_equal(ran, 5);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_DISABLED);
    fdn_breaker_reset(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_call(b, fail_fn, &ran, &rc), FDN_EIO);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_reset(b);
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), 7);
    assert_string_equal(fdn_breaker_state_name(FDN_BREAKER_HALF_OPEN), "half_open");
}

/* §11.6: default tolerance 5 (threshold 6): 6 failures -> blown; reset -> ok. */
static void ref_default_tolerance(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o;
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 5, 60000), 0);
    assert_int_equal(o.failure_threshold, 6);
    fdn_breaker_t *b = test_breaker_make(f, "ref", &o);
    int ran = 0, rc;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fdn_breaker_call(b, fail_fn, &ran, &rc), FDN_EIO);
        assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    }
    /* with the reference's semantics successes do not reset */
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), 7);
    assert_int_equal(fdn_breaker_call(b, fail_fn, &ran, &rc), FDN_EIO);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    ran = 0;
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), FDN_ECIRCUIT_OPEN);
    assert_int_equal(ran, 0);
    fdn_breaker_reset(b);
    assert_int_equal(fdn_breaker_call(b, ok_fn, &ran, &rc), 7);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, -1, 10), FDN_EINVAL);
}

/* Review finding: options the conversion returned 0 for then failed fdn_breaker_opts_validate
 * (threshold T + 1 above 1000000, refresh_ms above the ns range). Refused up front now, and
 * *opts is left alone. */
static void from_tolerance_refuses_what_validation_refuses(void **state)
{
    (void)state;
    fdn_breaker_opts_t o;
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 999999, 10), 0);
    assert_int_equal(o.failure_threshold, 1000000);
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), 0);
    fdn_breaker_opts_t before = o;
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 1000000, 10), FDN_EINVAL);
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, UINT32_MAX - 3, 10), FDN_EINVAL);
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 5, INT64_MAX / 1000000), FDN_EINVAL);
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 5, 0), FDN_EINVAL);
    assert_memory_equal(&o, &before, sizeof(o));
    /* the largest refresh the validation takes converts */
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 5, INT64_MAX / 1000000 / 4), 0);
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), 0);
}

/* fdn_breaker_opts_from_tolerance_ex says why it refused: the argument and its range in err,
 * the same codes as fdn_breaker_opts_from_tolerance, *opts and err left alone on success. */
static void from_tolerance_ex_says_why(void **state)
{
    (void)state;
    fdn_breaker_opts_t o, plain;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, 5, 60000, &err), 0);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.message, "");
    assert_int_equal(fdn_breaker_opts_from_tolerance(&plain, 5, 60000), 0);
    assert_int_equal(o.failure_threshold, 6);
    assert_int_equal(o.failure_threshold, plain.failure_threshold);
    assert_int_equal(o.window_ms, plain.window_ms);
    assert_int_equal(o.recovery_time_ms, plain.recovery_time_ms);
    assert_false(o.success_resets);
    fdn_breaker_opts_t before = o;
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, 1000000, 10, &err), FDN_EINVAL);
    assert_int_equal(err.code, FDN_EINVAL);
    assert_string_equal(err.message, "tolerance 1000000 is outside 0..999999 (failures "
                                     "tolerated before the breaker opens)");
    fdn_error_t e2 = FDN_ERROR_INIT;
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, -1, 10, &e2), FDN_EINVAL);
    assert_non_null(strstr(e2.message, "tolerance -1 is outside 0..999999"));
    fdn_error_t e3 = FDN_ERROR_INIT;
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, 5, 0, &e3), FDN_EINVAL);
    assert_string_equal(e3.message, "refresh_ms 0 is outside 1..2305843009213");
    fdn_error_t e4 = FDN_ERROR_INIT;
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(NULL, 5, 10, &e4), FDN_EINVAL);
    assert_non_null(strstr(e4.message, "opts is NULL"));
    assert_memory_equal(&o, &before, sizeof(o));
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, 5, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_breaker_opts_from_tolerance_ex(&o, 5, INT64_MAX / 1000000 / 4, NULL), 0);
}

/* §11.6: T=2, R=100: 2 failures closed, 3rd opens; after 150 ms closed again (via probe). */
static void ref_exact_options(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o;
    fdn_breaker_opts_from_tolerance(&o, 2, 100);
    fdn_breaker_t *b = test_breaker_make(f, "t2", &o);
    run_fail(b);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_clock_advance(f->clk, 150 * MS);
    run_ok(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
}

static void ref_many_successes_and_independence(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o;
    fdn_breaker_opts_from_tolerance(&o, 2, 60000);
    fdn_breaker_t *a = test_breaker_make(f, "a", &o);
    fdn_breaker_t *c = test_breaker_make(f, "c", &o);
    int rc;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fdn_breaker_call(a, ok_fn, NULL, &rc), 7);
    assert_int_equal(fdn_breaker_state(a), FDN_BREAKER_CLOSED);
    for (int i = 0; i < 10; i++)
        fdn_breaker_call(c, ok_fn, NULL, &rc);
    fdn_breaker_call(c, fail_fn, NULL, &rc);
    fdn_breaker_call(c, fail_fn, NULL, &rc);
    assert_int_equal(fdn_breaker_state(c), FDN_BREAKER_CLOSED);
    fdn_breaker_call(c, fail_fn, NULL, &rc);
    assert_int_equal(fdn_breaker_state(c), FDN_BREAKER_OPEN);
    assert_int_equal(fdn_breaker_state(a), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_call(a, ok_fn, NULL, &rc), 7);
}

/* A success of a closed call through fdn_breaker_call (decided inline when the options
 * neither time nor classify calls): it clears the failure count when success_resets is on and
 * leaves it when off (the reference's fuse); a classify callback is still asked. */
static void closed_success_through_call(void **state)
{
    test_breaker_fx_t *f = *state;
    int rc;
    fdn_breaker_t *r = test_breaker_basic(f, "resets", 3, 0, 0);
    fdn_breaker_t *k = NULL;
    fdn_breaker_opts_t o;
    assert_int_equal(fdn_breaker_opts_from_tolerance(&o, 2, 60000), 0);
    k = test_breaker_make(f, "keeps", &o);
    fdn_breaker_t *both[2] = {r, k};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fdn_breaker_call(both[i], fail_fn, NULL, &rc), FDN_EIO);
        assert_int_equal(fdn_breaker_call(both[i], fail_fn, NULL, &rc), FDN_EIO);
        assert_int_equal(fdn_breaker_call(both[i], ok_fn, NULL, &rc), 7);
    }
    fdn_breaker_status_t s;
    assert_int_equal(fdn_breaker_status(r, &s), 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(fdn_breaker_status(k, &s), 0);
    assert_int_equal(s.failures, 2);
    assert_int_equal(fdn_breaker_call(k, fail_fn, NULL, &rc), FDN_EIO);
    assert_int_equal(fdn_breaker_state(k), FDN_BREAKER_OPEN);
    /* with classify, a success return may count as a failure */
    fdn_breaker_opts_t c = FDN_BREAKER_OPTS_INIT;
    c.failure_threshold = 2;
    c.classify = classify_odd;
    fdn_breaker_t *cl = test_breaker_make(f, "classified", &c);
    int n = 0;
    for (int i = 0; i < 2; i++)
        assert_int_equal(fdn_breaker_call(cl, ok_fn, &n, &rc), 7); /* 7: odd */
    assert_int_equal(fdn_breaker_status(cl, &s), 0);
    assert_int_equal(s.total_failures, 2);
    assert_int_equal(fdn_breaker_state(cl), FDN_BREAKER_OPEN);
}

static void set_lookup_and_install(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = NULL, *b2 = NULL;
    assert_int_equal(fdn_breaker_get(f->set, "nope", &b), FDN_EBREAKER_NOT_FOUND);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    b = test_breaker_make(f, "svc", &o);
    assert_int_equal(fdn_breaker_create_in(f->set, "svc", &o, &b2), FDN_EEXIST);
    assert_ptr_equal(b, b2);
    assert_int_equal(fdn_breaker_get(f->set, "svc", &b2), 0);
    assert_ptr_equal(b, b2);
    assert_string_equal(fdn_breaker_name(b), "svc");
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    o.failure_threshold = 2;
    assert_int_equal(fdn_breaker_install(f->set, "svc", &o, &b2), 0); /* reinstall resets */
    assert_ptr_equal(b, b2);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breakers_count(f->set), 1);
    /* validation */
    o.failure_threshold = 0;
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_breaker_opts_validate(&o, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "failure_threshold"));
    assert_int_equal(fdn_breaker_create_in(f->set, "bad", &o, NULL), FDN_EINVAL);
    o.failure_threshold = 1;
    o.recovery_time_ms = 0;
    assert_int_equal(fdn_breaker_create_in(f->set, "bad", &o, NULL), FDN_EINVAL);
    assert_int_equal(fdn_breaker_create_in(f->set, "", NULL, NULL), FDN_EINVAL);
    /* defaults */
    fdn_breaker_opts_t d = FDN_BREAKER_OPTS_INIT;
    d.failure_threshold = 2;
    d.clock = f->clk;
    assert_int_equal(fdn_breakers_set_defaults(f->set, &d), 0);
    assert_int_equal(fdn_breaker_create_in(f->set, "dflt", NULL, &b), 0);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breakers_destroy(NULL);
    fdn_breaker_destroy(NULL);
}

/* The set holds at most max distinct names (listed and removed): past it a new name is
 * refused with FDN_ENOSPC and nothing changes; a removed name comes back without counting
 * again; lookups by name stay exact across index growth; handles come in creation order. */
static void set_bound_index_and_handles(void **state)
{
    test_breaker_fx_t *f = *state;
    enum { N = 300 };
    char name[32];
    assert_int_equal(fdn_breakers_set_max(NULL, 4), FDN_EINVAL);
    assert_int_equal(fdn_breakers_set_max(f->set, 0), FDN_EINVAL);
    assert_int_equal(fdn_breakers_set_max(f->set, N), 0);
    fdn_breaker_t *made[N];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        assert_int_equal(fdn_breaker_create_in(f->set, name, NULL, &made[i]), 0);
    }
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "one-too-many", NULL, &b), FDN_ENOSPC);
    assert_null(b);
    assert_int_equal(fdn_breaker_install(f->set, "one-too-many", NULL, &b), FDN_ENOSPC);
    assert_int_equal(fdn_breaker_get(f->set, "one-too-many", &b), FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(fdn_breakers_count(f->set), N);
    /* an existing name is still answered (EEXIST, re-install) at the bound */
    assert_int_equal(fdn_breaker_create_in(f->set, "svc-7", NULL, &b), FDN_EEXIST);
    assert_ptr_equal(b, made[7]);
    assert_int_equal(fdn_breaker_install(f->set, "svc-7", NULL, &b), 0);
    /* every name found, through several index growths */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        assert_int_equal(fdn_breaker_get(f->set, name, &b), 0);
        assert_ptr_equal(b, made[i]);
    }
    /* a removal frees no room (the memory is kept), and the name comes back as it was */
    assert_int_equal(fdn_breaker_remove(f->set, "svc-0"), 0);
    assert_int_equal(fdn_breaker_create_in(f->set, "new", NULL, NULL), FDN_ENOSPC);
    assert_int_equal(fdn_breaker_get(f->set, "svc-0", &b), FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(fdn_breaker_create_in(f->set, "svc-0", NULL, &b), 0);
    assert_ptr_equal(b, made[0]);
    /* handles: creation order, a revived name at the end */
    fdn_breaker_t **v = NULL;
    size_t n = 0;
    assert_int_equal(fdn_breakers_handles(f->set, &v, &n), 0);
    assert_int_equal(n, N);
    assert_ptr_equal(v[0], made[1]);
    assert_ptr_equal(v[N - 2], made[N - 1]);
    assert_ptr_equal(v[N - 1], made[0]);
    fdn_free(v);
    assert_int_equal(fdn_breakers_handles(f->set, NULL, &n), FDN_EINVAL);
    /* a higher bound makes room; a lower one removes nothing */
    assert_int_equal(fdn_breakers_set_max(f->set, N + 1), 0);
    assert_int_equal(fdn_breaker_create_in(f->set, "new", NULL, &b), 0);
    assert_int_equal(fdn_breakers_set_max(f->set, 2), 0);
    assert_int_equal(fdn_breakers_count(f->set), N + 1);
    assert_int_equal(fdn_breaker_get(f->set, "new", &b), 0);
}

/* Transition reports come in the order of the transitions, even when two threads make them
 * concurrently. Thread A forces the breaker open (closed -> forced_open) and is held inside
 * that transition's report (a telemetry handler of state_change, which runs before
 * on_transition, blocks on a latch); meanwhile the test's thread resets it (forced_open ->
 * closed). The reset returns without reporting (A is reporting this breaker's transitions),
 * and once A is released on_transition sees closed -> forced_open, then forced_open ->
 * closed, both on A's thread. */
typedef struct order_fx {
    test_waiter_t entered, release;
    _Atomic int handler_calls;
    _Atomic int n;
    fdn_breaker_state_t from[4], to[4];
    pid_t tid[4];
    fdn_breaker_t *b;
} order_fx_t;

static int order_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                         const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    order_fx_t *x = user;
    if (atomic_fetch_add(&x->handler_calls, 1) == 0) {
        test_waiter_add(&x->entered, 1);
        test_waiter_wait(&x->release, 1);
    }
    return 0;
}

static void order_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                             void *user)
{
    (void)name;
    order_fx_t *x = user;
    int i = atomic_load(&x->n);
    if (i < 4) {
        x->from[i] = from;
        x->to[i] = to;
        x->tid[i] = test_thread_id();
    }
    atomic_store(&x->n, i + 1);
}

static pid_t order_a_tid;

static void *order_force_open(void *p)
{
    order_fx_t *x = p;
    order_a_tid = test_thread_id();
    fdn_breaker_force_open(x->b);
    return NULL;
}

/* A telemetry whose foundation.circuit_breaker.state_change events go to handler(user), and
 * o (FDN_BREAKER_OPTS_INIT) reporting on it, with every transition to tr(user). The caller
 * destroys the telemetry after the breaker. */
static fdn_telemetry_t *reported_opts(fdn_breaker_opts_t *o, fdn_telemetry_handler_fn handler,
                                      fdn_breaker_transition_fn tr, void *user)
{
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.circuit_breaker.state_change",
                                          FDN_TELEMETRY_MATCH_EXACT, handler, user),
                     0);
    *o = (fdn_breaker_opts_t)FDN_BREAKER_OPTS_INIT;
    o->telemetry = tm;
    o->on_transition = tr;
    o->transition_user = user;
    return tm;
}

static void transitions_reported_in_order(void **state)
{
    (void)state;
    order_fx_t x = {0};
    test_waiter_init(&x.entered);
    test_waiter_init(&x.release);
    fdn_breaker_opts_t o;
    fdn_telemetry_t *tm = reported_opts(&o, order_handler, order_transition, &x);
    assert_int_equal(fdn_breaker_create(&x.b, "ordered", &o), 0);
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, order_force_open, &x), 0);
    test_waiter_wait(&x.entered, 1); /* A made closed -> forced_open and is reporting it */
    fdn_breaker_reset(x.b);          /* forced_open -> closed, while A reports */
    assert_int_equal(fdn_breaker_state(x.b), FDN_BREAKER_CLOSED);
    assert_int_equal(atomic_load(&x.n), 0); /* not reported before the transition before it */
    test_waiter_add(&x.release, 1);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_int_equal(atomic_load(&x.n), 2);
    assert_int_equal(x.from[0], FDN_BREAKER_CLOSED);
    assert_int_equal(x.to[0], FDN_BREAKER_FORCED_OPEN);
    assert_int_equal(x.from[1], FDN_BREAKER_FORCED_OPEN);
    assert_int_equal(x.to[1], FDN_BREAKER_CLOSED);
    assert_int_equal(x.tid[0], order_a_tid);
    assert_int_equal(x.tid[1], order_a_tid);
    assert_int_equal(atomic_load(&x.handler_calls), 2);
    /* alone again, a transition is reported on its own thread before its call returns */
    fdn_breaker_force_open(x.b);
    assert_int_equal(atomic_load(&x.n), 3);
    assert_int_equal(x.tid[2], test_thread_id());
    fdn_breaker_destroy(x.b);
    fdn_telemetry_destroy(tm);
    test_waiter_destroy(&x.entered);
    test_waiter_destroy(&x.release);
}

/* A callback that makes transitions of its own breaker (more than the report queue holds)
 * does not recurse: they are reported after it returns, in order, merged into the newest
 * waiting report once the queue is full, so the states reported stay a continuous chain
 * ending in the breaker's state. The only report with from == to is the first force_open's,
 * made on a forced-open breaker (reported as made); no merge makes one. */
typedef struct chain_fx {
    fdn_breaker_t *b;
    int calls;
    fdn_breaker_state_t last_to;
    bool continuous;
    int same, same_at; /* reports with from == to; the index of the last one */
    int depth, max_depth;
} chain_fx_t;

static void chain_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                             void *user)
{
    (void)name;
    chain_fx_t *x = user;
    x->depth++;
    if (x->depth > x->max_depth)
        x->max_depth = x->depth;
    if (x->calls > 0 && from != x->last_to)
        x->continuous = false;
    if (from == to) {
        x->same++;
        x->same_at = x->calls;
    }
    x->last_to = to;
    if (x->calls++ == 0)
        for (int i = 0; i < 20; i++) { /* 40 transitions from inside the first report */
            fdn_breaker_force_open(x->b);
            fdn_breaker_reset(x->b);
        }
    x->depth--;
}

static void transition_reports_from_a_callback_do_not_recurse(void **state)
{
    (void)state;
    chain_fx_t x = {.continuous = true};
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.on_transition = chain_transition;
    o.transition_user = &x;
    assert_int_equal(fdn_breaker_create(&x.b, "chain", &o), 0);
    fdn_breaker_force_open(x.b);
    assert_int_equal(x.max_depth, 1);
    assert_true(x.continuous);
    /* the first, then 16 queued (forced_open -> forced_open, forced_open -> closed,
     * closed -> forced_open, ...); past that each force_open undoes the newest waiting
     * forced_open -> closed (both dropped) and each reset is queued again */
    assert_int_equal(x.calls, 1 + 16);
    assert_int_equal(x.same, 1);
    assert_int_equal(x.same_at, 1);
    assert_int_equal(x.last_to, FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_state(x.b), FDN_BREAKER_CLOSED);
    fdn_breaker_destroy(x.b);
}

/* A full report queue never reports a non-change. Thread A forces the breaker open and is
 * held inside that report (its on_transition blocks on a latch); meanwhile the test's thread
 * makes more transitions than the queue holds (16), each a real change, and each call returns
 * at once. Once A is let go it reports them on its own thread: the first 15 as they were made,
 * then nothing more, as every later transition either merged into the newest waiting report
 * or undid it (both dropped). So no report has from == to, each report's from is the previous
 * report's to, the last one ends in the breaker's state, and the state_change counter (a
 * telemetry handler) sees the same reports. Two scripts: forced_open <-> closed, where every
 * other transition past the 16th undoes the newest waiting report (before: merged into
 * closed -> closed, the last report), and a cycle closed -> disabled -> forced_open, where a
 * merge spans three states (forced_open -> disabled) and the next transition undoes it
 * (before: forced_open -> forced_open, the last report). */
#define FULL_MAX 64

typedef struct full_fx {
    test_waiter_t entered, release;
    int n; /* on_transition calls */
    fdn_breaker_state_t from[FULL_MAX], to[FULL_MAX];
    pid_t tid[FULL_MAX];
    int events; /* state_change counters */
    char ev_from[FULL_MAX][16], ev_to[FULL_MAX][16];
} full_fx_t;

static int full_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                        const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    full_fx_t *x = user;
    if (x->events < FULL_MAX)
        for (size_t i = 0; i < nmeta; i++) {
            if (strcmp(meta[i].key, "from") == 0)
                snprintf(x->ev_from[x->events], sizeof(x->ev_from[0]), "%s", meta[i].value);
            else if (strcmp(meta[i].key, "new_state") == 0)
                snprintf(x->ev_to[x->events], sizeof(x->ev_to[0]), "%s", meta[i].value);
        }
    x->events++;
    return 0;
}

static void full_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                            void *user)
{
    (void)name;
    full_fx_t *x = user;
    if (x->n < FULL_MAX) {
        x->from[x->n] = from;
        x->to[x->n] = to;
        x->tid[x->n] = test_thread_id();
    }
    if (++x->n == 1) { /* A's own report: hold it while the test makes its transitions */
        test_waiter_add(&x->entered, 1);
        test_waiter_wait(&x->release, 1);
    }
}

typedef struct full_a {
    fdn_breaker_t *b;
    pid_t tid;
} full_a_t;

static void *full_force_open(void *p)
{
    full_a_t *a = p;
    a->tid = test_thread_id();
    fdn_breaker_force_open(a->b);
    return NULL;
}

/* Runs `ops` (r reset, f force_open, d disable; each a change from the state before it) while
 * A is held in the report of closed -> forced_open, then checks what was reported. */
static void full_queue_script(const char *ops, int want_reports)
{
    full_fx_t x = {.n = 0};
    test_waiter_init(&x.entered);
    test_waiter_init(&x.release);
    fdn_breaker_opts_t o;
    fdn_telemetry_t *tm = reported_opts(&o, full_handler, full_transition, &x);
    full_a_t a = {0};
    assert_int_equal(fdn_breaker_create(&a.b, "full", &o), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, full_force_open, &a), 0);
    test_waiter_wait(&x.entered, 1); /* A made closed -> forced_open and is reporting it */
    int nops = (int)strlen(ops);
    assert_true(nops > 16 && nops < FULL_MAX);
    fdn_breaker_state_t made_from[FULL_MAX], made_to[FULL_MAX];
    for (int i = 0; i < nops; i++) {
        made_from[i] = fdn_breaker_state(a.b);
        if (ops[i] == 'r')
            fdn_breaker_reset(a.b);
        else if (ops[i] == 'f')
            fdn_breaker_force_open(a.b);
        else
            fdn_breaker_disable(a.b);
        made_to[i] = fdn_breaker_state(a.b);
        assert_int_not_equal(made_from[i], made_to[i]); /* the script makes real changes */
    }
    assert_int_equal(x.n, 1); /* only queued: A reports them */
    test_waiter_add(&x.release, 1);
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_true(x.n >= 1 && x.n <= FULL_MAX);
    assert_int_equal(x.events, x.n);
    assert_int_equal(x.from[0], FDN_BREAKER_CLOSED);
    assert_int_equal(x.to[0], FDN_BREAKER_FORCED_OPEN);
    for (int i = 0; i < x.n; i++) {
        assert_int_not_equal(x.from[i], x.to[i]);
        if (i > 0)
            assert_int_equal(x.from[i], x.to[i - 1]);
        assert_int_equal(x.tid[i], a.tid);
        assert_string_equal(x.ev_from[i], fdn_breaker_state_name(x.from[i]));
        assert_string_equal(x.ev_to[i], fdn_breaker_state_name(x.to[i]));
    }
    for (int i = 1; i < x.n && i < 16; i++) { /* the queue's first 15 as made */
        assert_int_equal(x.from[i], made_from[i - 1]);
        assert_int_equal(x.to[i], made_to[i - 1]);
    }
    assert_int_equal(x.to[x.n - 1], fdn_breaker_state(a.b));
    assert_int_equal(fdn_breaker_state(a.b), made_to[nops - 1]);
    assert_int_equal(x.n, want_reports);
    fdn_breaker_destroy(a.b);
    fdn_telemetry_destroy(tm);
    test_waiter_destroy(&x.entered);
    test_waiter_destroy(&x.release);
}

static void full_report_queue_never_reports_a_non_change(void **state)
{
    (void)state;
    /* 41 transitions from forced_open: 16 queued, then each reset undoes the newest waiting
     * closed -> forced_open (15 left) and each force_open is queued again (16) */
    full_queue_script("rfrfrfrfrfrfrfrfrfrfrfrfrfrfrfrfrfrfrfrfr", 1 + 15);
    /* 30 transitions, closed -> disabled -> forced_open -> closed ...: 16 queued (the last
     * forced_open -> closed), then closed -> disabled merges (forced_open -> disabled),
     * disabled -> forced_open undoes that (15 left), forced_open -> closed is queued again */
    full_queue_script("rdfrdfrdfrdfrdfrdfrdfrdfrdfrdf", 1 + 15);
}

/* Stress: threads force a breaker open and reset it concurrently. Reports run one at a time
 * (plain fields, checked by TSan), never nested, as a continuous chain from closed, and none
 * is left undelivered: once the threads are joined the last report ends in the breaker's
 * state (a transition queued just as the reporter found the queue empty is reported by
 * someone). Bounded: STRESS_TQ_THREADS x STRESS_TQ_ITERS transitions. */
#define STRESS_TQ_THREADS 3
#define STRESS_TQ_ITERS   2000

typedef struct tq_stress_fx {
    fdn_breaker_t *b;
    long reports;
    fdn_breaker_state_t last_to;
    bool continuous;
    int depth, max_depth;
} tq_stress_fx_t;

static void tq_stress_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                                 void *user)
{
    (void)name;
    tq_stress_fx_t *x = user;
    if (++x->depth > x->max_depth)
        x->max_depth = x->depth;
    if (from != x->last_to)
        x->continuous = false;
    x->last_to = to;
    x->reports++;
    x->depth--;
}

static void *tq_stress_thread(void *p)
{
    tq_stress_fx_t *x = p;
    for (int i = 0; i < STRESS_TQ_ITERS; i++) {
        if (i & 1)
            fdn_breaker_reset(x->b);
        else
            fdn_breaker_force_open(x->b);
    }
    return NULL;
}

static void transition_reports_stress_none_lost(void **state)
{
    (void)state;
    tq_stress_fx_t x = {.continuous = true, .last_to = FDN_BREAKER_CLOSED};
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.on_transition = tq_stress_transition;
    o.transition_user = &x;
    assert_int_equal(fdn_breaker_create(&x.b, "tq", &o), 0);
    pthread_t t[STRESS_TQ_THREADS];
    for (int i = 0; i < STRESS_TQ_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, tq_stress_thread, &x), 0);
    for (int i = 0; i < STRESS_TQ_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_true(x.continuous);
    assert_int_equal(x.max_depth, 1);
    assert_true(x.reports >= 1 && x.reports <= STRESS_TQ_THREADS * STRESS_TQ_ITERS);
    assert_int_equal(x.last_to, fdn_breaker_state(x.b));
    fdn_breaker_destroy(x.b);
}

/* A removed breaker that comes back (create_in of its name) is made afresh before anyone
 * finds it by name: while the revive runs (its reset's report, with the new options'
 * on_transition) the name is not found, and once create_in returns it is, closed, with the
 * new options. Before, it was listed first and made afresh after, so a reader could find it
 * in the state it was removed in (open here). */
typedef struct revive_fx {
    fdn_breakers_t *set;
    int reports;
    int get_rc;
} revive_fx_t;

static void revive_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                              void *user)
{
    (void)from;
    (void)to;
    revive_fx_t *x = user;
    fdn_breaker_t *found = NULL;
    x->get_rc = fdn_breaker_get(x->set, name, &found);
    x->reports++;
}

static void revived_breaker_found_only_afresh(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    fdn_breaker_t *b = NULL, *b2 = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "rev", &o, &b), 0);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    assert_int_equal(fdn_breaker_remove(f->set, "rev"), 0);
    revive_fx_t x = {.set = f->set, .get_rc = 1};
    fdn_breaker_opts_t o2 = FDN_BREAKER_OPTS_INIT;
    o2.failure_threshold = 3;
    o2.on_transition = revive_transition;
    o2.transition_user = &x;
    assert_int_equal(fdn_breaker_create_in(f->set, "rev", &o2, &b2), 0);
    assert_ptr_equal(b2, b);
    assert_int_equal(x.reports, 1); /* the revive's reset: open -> closed */
    assert_int_equal(x.get_rc, FDN_EBREAKER_NOT_FOUND);
    fdn_breaker_t *found = NULL;
    assert_int_equal(fdn_breaker_get(f->set, "rev", &found), 0);
    assert_ptr_equal(found, b);
    assert_int_equal(fdn_breaker_state(found), FDN_BREAKER_CLOSED);
    run_fail(found);
    run_fail(found);
    assert_int_equal(fdn_breaker_state(found), FDN_BREAKER_CLOSED); /* threshold 3 now */
    assert_int_equal(fdn_breaker_create_in(f->set, "rev", &o2, &b2), FDN_EEXIST);
}

/* A create or install of a name that another thread is reviving waits for the revive, so
 * that a call answering FDN_EEXIST or 0 is followed by a get that finds the name, and an
 * install's options are not overwritten afterwards by the revive it raced. Thread A revives
 * "rw" and is held inside the revive's reset report (its on_transition blocks on a latch); B
 * installs the name meanwhile: it must not return while A's revive is under way (before, it
 * answered at once, and its get found nothing; A's options, made afresh after, could replace
 * B's). From inside the revive's own report, a create of the name answers FDN_EEXIST at once
 * (it would wait for itself). */
/* The two races below share a fixture: A revives the name (threshold 5) and is held inside
 * the revive's reset report (its on_transition), B installs it (threshold 2) and parks once
 * done, so that test_wait_futex sees B asleep either way. */
typedef struct revive_race {
    fdn_breakers_t *set;
    const char *name;
    bool self_create; /* A's report also creates the name from inside the revive */
    test_waiter_t in_window, go, entered, release, b_started, park;
    _Atomic int hooks, calls;
    int self_rc;
    int a_rc, b_rc, b_get_rc;
    _Atomic int b_done;
    pid_t b_tid;
    fdn_breaker_t *ba, *bb, *b_found;
} revive_race_t;

static void race_init(revive_race_t *x, fdn_breakers_t *set, const char *name, bool self_create)
{
    *x = (revive_race_t){
        .set = set, .name = name, .self_create = self_create, .self_rc = 1, .b_get_rc = 1};
    test_waiter_t *w[] = {&x->in_window, &x->go, &x->entered, &x->release, &x->b_started, &x->park};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        test_waiter_init(w[i]);
}

static void race_destroy(revive_race_t *x)
{
    test_waiter_t *w[] = {&x->in_window, &x->go, &x->entered, &x->release, &x->b_started, &x->park};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        test_waiter_destroy(w[i]);
}

static void race_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                            void *user)
{
    (void)from;
    (void)to;
    revive_race_t *x = user;
    if (atomic_fetch_add(&x->calls, 1) != 0)
        return;
    if (x->self_create) {
        fdn_breaker_t *same = NULL;
        x->self_rc = fdn_breaker_create_in(x->set, name, NULL, &same);
    }
    test_waiter_add(&x->entered, 1);
    test_waiter_wait(&x->release, 1);
}

static void *race_revive(void *p)
{
    revive_race_t *x = p;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 5;
    o.on_transition = race_transition;
    o.transition_user = x;
    x->a_rc = fdn_breaker_create_in(x->set, x->name, &o, &x->ba);
    return NULL;
}

static void *race_install(void *p)
{
    revive_race_t *x = p;
    x->b_tid = test_thread_id();
    test_waiter_add(&x->b_started, 1);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    x->b_rc = fdn_breaker_install(x->set, x->name, &o, &x->bb);
    x->b_get_rc = fdn_breaker_get(x->set, x->name, &x->b_found);
    atomic_store(&x->b_done, 1);
    test_waiter_wait(&x->park, 1); /* asleep once done: seen by test_wait_futex */
    return NULL;
}

/* B waits for A's revive (or, wrongly, is done and parked); then both are let go and joined:
 * both found the one breaker b, B's get finds it, and B's install, after the revive, is in
 * force (threshold 2, from a closed breaker). */
static void race_finish(revive_race_t *x, pthread_t a, pthread_t bt, fdn_breaker_t *b)
{
    test_wait_futex(x->b_tid);
    assert_int_equal(atomic_load(&x->b_done), 0);
    test_waiter_add(&x->release, 1);
    assert_int_equal(pthread_join(a, NULL), 0);
    test_waiter_add(&x->park, 1);
    assert_int_equal(pthread_join(bt, NULL), 0);
    assert_int_equal(x->a_rc, 0);
    assert_ptr_equal(x->ba, b);
    assert_int_equal(x->b_rc, 0);
    assert_ptr_equal(x->bb, b);
    assert_int_equal(x->b_get_rc, 0);
    assert_ptr_equal(x->b_found, b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

static void create_during_revive_waits_for_it(void **state)
{
    test_breaker_fx_t *f = *state;
    revive_race_t x;
    race_init(&x, f->set, "rw", true);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "rw", &o, &b), 0);
    run_fail(b);
    assert_int_equal(fdn_breaker_remove(f->set, "rw"), 0);
    pthread_t a, bt;
    assert_int_equal(pthread_create(&a, NULL, race_revive, &x), 0);
    test_waiter_wait(&x.entered, 1); /* A is in the revive's reset report */
    assert_int_equal(x.self_rc, FDN_EEXIST);
    assert_int_equal(pthread_create(&bt, NULL, race_install, &x), 0);
    test_waiter_wait(&x.b_started, 1);
    race_finish(&x, a, bt, b);
    race_destroy(&x);
}

/* An install that found its name listed, racing a remove and a revive of that name on other
 * threads before it applies its options (fdn__breakers_set_install_hook holds it there): its
 * options must not land on the breaker while the revive is making it afresh. B installs "ri"
 * (threshold 2) and is held between finding it listed and applying; the name is removed and A
 * revives it (threshold 5), held inside the revive's reset report; B is let go and must wait
 * for the revive, then apply its options to the listed breaker: B's get finds the name and
 * B's threshold is in force, as in the serial order remove, revive, install. Before, B applied
 * its options to the breaker being revived and returned at once: its get found nothing (as if
 * a remove came after the install), yet its options were in force after the revive, an order
 * no serial execution gives. */
static void iwin_hook(fdn_breakers_t *s, fdn_breaker_t *b, void *user)
{
    (void)s;
    (void)b;
    revive_race_t *x = user;
    if (atomic_fetch_add(&x->hooks, 1) != 0)
        return;
    test_waiter_add(&x->in_window, 1);
    test_waiter_wait(&x->go, 1);
}

static void install_racing_remove_and_revive(void **state)
{
    test_breaker_fx_t *f = *state;
    revive_race_t x;
    race_init(&x, f->set, "ri", false);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "ri", &o, &b), 0);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn__breakers_set_install_hook(f->set, iwin_hook, &x);
    pthread_t a, bt;
    assert_int_equal(pthread_create(&bt, NULL, race_install, &x), 0);
    test_waiter_wait(&x.in_window, 1); /* B found "ri" listed, has not applied */
    assert_int_equal(fdn_breaker_remove(f->set, "ri"), 0);
    assert_int_equal(pthread_create(&a, NULL, race_revive, &x), 0);
    test_waiter_wait(&x.entered, 1); /* A is in the revive's reset report */
    test_waiter_add(&x.go, 1);
    race_finish(&x, a, bt, b);
    fdn__breakers_set_install_hook(f->set, NULL, NULL);
    race_destroy(&x);
}

/* A remove waiting for an install's claim is not starved by installs that come meanwhile:
 * A's install is held inside its claim (fdn__breakers_set_claim_hook); R's remove waits for
 * it; then B installs the name: B must wait for R (before, B took a claim beside A's, so the
 * count of claims that R waits for to reach 0 could stay above it for as long as installs
 * overlapped). A is let go: R removes the name, then B, coming after R, makes it afresh with
 * its options (threshold 3). */
typedef struct istarve_fx {
    fdn_breakers_t *set;
    test_waiter_t in_claim, go, park;
    _Atomic int claims;
    _Atomic int b_done;
    int a_rc, r_rc, b_rc;
    _Atomic pid_t r_tid, b_tid;
} istarve_fx_t;

static void istarve_claim_hook(fdn_breakers_t *s, fdn_breaker_t *b, void *user)
{
    (void)s;
    (void)b;
    istarve_fx_t *x = user;
    if (atomic_fetch_add(&x->claims, 1) != 0)
        return;
    test_waiter_add(&x->in_claim, 1);
    test_waiter_wait(&x->go, 1);
}

static void *istarve_a(void *p)
{
    istarve_fx_t *x = p;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    x->a_rc = fdn_breaker_install(x->set, "st", &o, NULL);
    return NULL;
}

static void *istarve_r(void *p)
{
    istarve_fx_t *x = p;
    atomic_store(&x->r_tid, test_thread_id());
    x->r_rc = fdn_breaker_remove(x->set, "st");
    return NULL;
}

static void *istarve_b(void *p)
{
    istarve_fx_t *x = p;
    atomic_store(&x->b_tid, test_thread_id());
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 3;
    x->b_rc = fdn_breaker_install(x->set, "st", &o, NULL);
    atomic_store(&x->b_done, 1);
    test_waiter_wait(&x->park, 1); /* asleep once done: seen by test_wait_futex */
    return NULL;
}

static void install_waits_for_a_waiting_remove(void **state)
{
    test_breaker_fx_t *f = *state;
    istarve_fx_t x = {.set = f->set, .a_rc = 1, .r_rc = 1, .b_rc = 1};
    test_waiter_init(&x.in_claim);
    test_waiter_init(&x.go);
    test_waiter_init(&x.park);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    fdn_breaker_t *b = NULL, *found = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "st", &o, &b), 0);
    fdn__breakers_set_claim_hook(f->set, istarve_claim_hook, &x);
    pthread_t ta, tr, tb;
    assert_int_equal(pthread_create(&ta, NULL, istarve_a, &x), 0);
    test_waiter_wait(&x.in_claim, 1); /* A holds its claim */
    assert_int_equal(pthread_create(&tr, NULL, istarve_r, &x), 0);
    while (atomic_load(&x.r_tid) == 0)
        sched_yield();
    test_wait_futex(atomic_load(&x.r_tid)); /* R waits for A's claim */
    assert_int_equal(pthread_create(&tb, NULL, istarve_b, &x), 0);
    while (atomic_load(&x.b_tid) == 0)
        sched_yield();
    test_wait_futex(atomic_load(&x.b_tid));    /* B waits for R (or, wrongly, is done and parked) */
    int b_done_early = atomic_load(&x.b_done); /* checked once every thread is joined */
    test_waiter_add(&x.go, 1);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tr, NULL), 0);
    test_waiter_add(&x.park, 1);
    assert_int_equal(pthread_join(tb, NULL), 0);
    fdn__breakers_set_claim_hook(f->set, NULL, NULL);
    assert_int_equal(b_done_early, 0);
    assert_int_equal(x.a_rc, 0);
    assert_int_equal(x.r_rc, 0);
    assert_int_equal(x.b_rc, 0);
    /* B came after R: the name is listed again, with B's threshold (3) */
    assert_int_equal(fdn_breaker_get(f->set, "st", &found), 0);
    assert_ptr_equal(found, b);
    run_fail(b);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    test_waiter_destroy(&x.in_claim);
    test_waiter_destroy(&x.go);
    test_waiter_destroy(&x.park);
}

/* An install that found its name listed, then saw it removed before applying its options
 * (the hook removes it): the install comes after the removal, so it makes the name afresh
 * with its options (a revive) and the name is found when it returns. Before, it applied its
 * options to the removed breaker and the name stayed absent. */
static void iremove_hook(fdn_breakers_t *s, fdn_breaker_t *b, void *user)
{
    (void)b;
    _Atomic int *n = user;
    if (atomic_fetch_add(n, 1) == 0)
        assert_int_equal(fdn_breaker_remove(s, "rm"), 0);
}

static void install_after_remove_in_its_window_revives(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    fdn_breaker_t *b = NULL, *got = NULL, *found = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "rm", &o, &b), 0);
    run_fail(b);
    _Atomic int hooks = 0;
    fdn__breakers_set_install_hook(f->set, iremove_hook, &hooks);
    o.failure_threshold = 2;
    assert_int_equal(fdn_breaker_install(f->set, "rm", &o, &got), 0);
    fdn__breakers_set_install_hook(f->set, NULL, NULL);
    assert_int_equal(atomic_load(&hooks), 1);
    assert_ptr_equal(got, b);
    assert_int_equal(fdn_breaker_get(f->set, "rm", &found), 0);
    assert_ptr_equal(found, b);
    assert_int_equal(fdn_breakers_count(f->set), 1);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* A call admitted before fdn_breaker_install reports while the install runs: it must be
 * ignored (breaker.h), never counted under the new options. The breaker's test hook runs the
 * old call's failure on the install's own thread right after the install applied its options
 * (FDN__BREAKER_AT_APPLIED), where the new options used to be in force while the reset's new
 * generation was not yet: the failure, counted under the new threshold 1, opened the breaker
 * (a CLOSED -> OPEN report, times_opened + 1) and the install's reset closed it again. The same
 * for a revive (create of a removed name), which applies its options the same way. */
typedef struct inst_old {
    fdn_breaker_permit_t permit; /* admitted before the install */
    int hooks, reports, opened;
} inst_old_t;

static void inst_old_transition(const char *name, fdn_breaker_state_t from, fdn_breaker_state_t to,
                                void *user)
{
    (void)name;
    (void)from;
    inst_old_t *x = user;
    x->reports++;
    if (to == FDN_BREAKER_OPEN)
        x->opened++;
}

static void inst_old_hook(fdn_breaker_t *b, fdn__breaker_at_t at, void *user)
{
    inst_old_t *x = user;
    if (at != FDN__BREAKER_AT_APPLIED || x->hooks++ != 0)
        return;
    fdn_breaker_record(b, &x->permit, FDN_EIO); /* the old call's failure, now */
}

static void install_ignores_calls_admitted_before(void **state)
{
    test_breaker_fx_t *f = *state;
    inst_old_t x;
    memset(&x, 0, sizeof(x));
    fdn_breaker_opts_t o2 = FDN_BREAKER_OPTS_INIT;
    o2.clock = f->clk;
    o2.failure_threshold = 2;
    o2.on_transition = inst_old_transition;
    o2.transition_user = &x;
    fdn_breaker_opts_t o1 = o2;
    o1.failure_threshold = 1;
    fdn_breaker_t *b = NULL, *got = NULL;
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_create_in(f->set, "io", &o2, &b), 0);
    for (int round = 0; round < 2; round++) {
        /* round 0: an install of the listed name; round 1: a revive of the removed name */
        assert_int_equal(fdn_breaker_status(b, &st), 0);
        uint64_t opened_before = st.times_opened;
        assert_int_equal(fdn_breaker_acquire(b, &x.permit), 0); /* threshold 2, closed */
        x.hooks = x.reports = x.opened = 0;
        fdn__breaker_test_hook(b, inst_old_hook, &x);
        if (round == 0) {
            assert_int_equal(fdn_breaker_install(f->set, "io", &o1, &got), 0);
        } else {
            assert_int_equal(fdn_breaker_remove(f->set, "io"), 0);
            assert_int_equal(fdn_breaker_create_in(f->set, "io", &o1, &got), 0);
        }
        fdn__breaker_test_hook(b, NULL, NULL);
        assert_ptr_equal(got, b);
        assert_int_equal(x.hooks, 1);
        assert_int_equal(x.opened, 0);  /* was 1: CLOSED -> OPEN, then the reset's -> CLOSED */
        assert_int_equal(x.reports, 1); /* the install's reset only (CLOSED -> CLOSED) */
        assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
        assert_int_equal(fdn_breaker_status(b, &st), 0);
        assert_int_equal(st.times_opened, opened_before);
        assert_int_equal(st.failures, 0);
        /* the new options are in force: one failure of a call admitted after opens it */
        run_fail(b);
        assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
        assert_int_equal(x.opened, 1);
        /* threshold 2 again, closed, for the next round */
        assert_int_equal(fdn_breaker_install(f->set, "io", &o2, NULL), 0);
        assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    }
}

/* Tests below hold one thread in a half-open acquire right after it read the clock
 * (FDN__BREAKER_AT_PROBE_CLOCK): the thread that sets hold_here, on its first pass there. */
static _Thread_local bool hold_here;

typedef struct held {
    fdn_breaker_t *b;
    atomic_int hooks;
    test_waiter_t in_hook, go;
    int rc; /* the held thread's acquire */
} held_t;

static void held_init(held_t *x, fdn_breaker_t *b)
{
    x->b = b;
    atomic_init(&x->hooks, 0);
    test_waiter_init(&x->in_hook);
    test_waiter_init(&x->go);
    x->rc = 1;
}

static void held_hook(fdn_breaker_t *b, fdn__breaker_at_t at, void *user)
{
    (void)b;
    held_t *x = user;
    if (at != FDN__BREAKER_AT_PROBE_CLOCK || !hold_here || atomic_fetch_add(&x->hooks, 1) != 0)
        return;
    test_waiter_add(&x->in_hook, 1);
    test_waiter_wait(&x->go, 1);
}

static void *held_acquire(void *p)
{
    held_t *x = p;
    hold_here = true;
    fdn_breaker_permit_t permit;
    x->rc = fdn_breaker_acquire(x->b, &permit);
    if (x->rc == 0)
        fdn_breaker_release(x->b, &permit);
    return NULL;
}

/* Starts the held thread and waits until it is held (it read the clock in half-open). */
static pthread_t held_start(held_t *x)
{
    pthread_t t;
    fdn__breaker_test_hook(x->b, held_hook, x);
    assert_int_equal(pthread_create(&t, NULL, held_acquire, x), 0);
    test_waiter_wait(&x->in_hook, 1);
    return t;
}

static void held_finish(held_t *x, pthread_t t)
{
    test_waiter_add(&x->go, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    fdn__breaker_test_hook(x->b, NULL, NULL);
    test_waiter_destroy(&x->in_hook);
    test_waiter_destroy(&x->go);
}

/* A half-open acquire that read the clock (T0) and is delayed while a newer probe starts (T0 +
 * 5 ms) must not move the probe's start back to T0: it stored probe_at = T0 before its slot
 * CAS failed, and at T0 + 11 ms the next caller finding the slot taken judged the probe, 6 ms
 * old (probe_timeout 10 ms), lost and reopened the breaker; the probe's success was then
 * ignored. probe_at now only moves forward. */
static void probe_start_not_moved_back_by_a_late_caller(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "late", 1, 10, 10);
    run_fail(b);
    fdn_clock_advance(f->clk, 10 * MS);
    fdn_breaker_permit_t p1, p2, p;
    assert_int_equal(fdn_breaker_acquire(b, &p1), 0); /* half-open at T0, then the slot free */
    fdn_breaker_release(b, &p1);
    held_t x;
    held_init(&x, b);
    pthread_t t = held_start(&x); /* it read T0 with the slot free */
    fdn_clock_advance(f->clk, 5 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p2), 0); /* the probe, at T0 + 5 */
    held_finish(&x, t);
    assert_int_equal(x.rc, FDN_ECIRCUIT_OPEN); /* its slot CAS failed; then the slot was taken */
    assert_int_equal(atomic_load(&x.hooks), 2);
    fdn_clock_advance(f->clk, 6 * MS); /* T0 + 11: the probe is 6 ms old */
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN); /* was OPEN */
    fdn_breaker_record(b, &p2, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.times_opened, 1);
    /* a probe that really is past its timeout still reopens on the next call */
    run_fail(b);
    fdn_clock_advance(f->clk, 10 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p1), 0);
    fdn_clock_advance(f->clk, 10 * MS);
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* A lost probe is one failure, however many callers see it past its timeout: one caller is
 * held after reading the clock with the probe timed out, another reopens the breaker
 * meanwhile; the held one then finds the same timeout. It counted a second failure
 * (total_failures + 2) though its transition found the phase gone. */
static void lost_probe_counted_once(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "lost", 1, 10, 10);
    run_fail(b);
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.total_failures, 1);
    fdn_clock_advance(f->clk, 10 * MS);
    fdn_breaker_permit_t lost, p;
    assert_int_equal(fdn_breaker_acquire(b, &lost), 0); /* never reported */
    fdn_clock_advance(f->clk, 10 * MS);                 /* past its timeout */
    held_t x;
    held_init(&x, b);
    pthread_t t = held_start(&x); /* it read the clock: the probe is lost */
    assert_int_equal(fdn_breaker_acquire(b, &p), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    held_finish(&x, t);
    assert_int_equal(x.rc, FDN_ECIRCUIT_OPEN);
    assert_int_equal(atomic_load(&x.hooks), 1);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.total_failures, 2); /* was 3 */
    assert_int_equal(st.times_opened, 2);
    assert_int_equal(st.total_rejected, 2);
}

static void empty_set_has_no_handles(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t **v = (fdn_breaker_t **)&v;
    size_t n = 9;
    assert_int_equal(fdn_breakers_handles(f->set, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);
}

/* window_ms is multiplied into ns: a window whose ns value does not fit in int64 must be
 * rejected, not overflow (UBSan) when the first failure is recorded; the largest accepted
 * window still counts failures. */
static void huge_window_no_overflow(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 2;
    o.window_ms = INT64_MAX / 2;
    o.clock = f->clk;
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), FDN_EINVAL);
    assert_int_equal(fdn_breaker_create_in(f->set, "huge", &o, NULL), FDN_EINVAL);
    o.window_ms = INT64_MAX / MS / 4;
    fdn_breaker_t *b = test_breaker_make(f, "big", &o);
    run_fail(b);
    fdn_clock_advance(f->clk, 1000000 * MS);
    run_fail(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* A count window holds at most rate_window_size calls: with minimum_calls above that, the rate
 * policy could never decide, and the breaker would silently never open on a rate. Such options
 * are refused (they were accepted). */
static void rate_window_smaller_than_minimum_calls_is_refused(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT; /* minimum_calls 10 */
    o.failure_threshold = 1000;
    o.failure_rate_pct = 50;
    o.rate_window_size = 5;
    fdn_error_t e = FDN_ERROR_INIT;
    if (fdn_breaker_opts_validate(&o, NULL) == 0) { /* show what such a breaker did */
        fdn_breaker_t *b = test_breaker_make(f, "never", &o);
        for (int i = 0; i < 50; i++)
            run_fail(b);
        fail_msg("accepted; after 50 failures out of 50 calls the breaker is %s",
                 fdn_breaker_state_name(fdn_breaker_state(b)));
    }
    assert_int_equal(fdn_breaker_opts_validate(&o, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "minimum_calls"));
    const char *json = "{\"failure_rate_pct\":50,\"rate_window_size\":5}";
    fdn_breaker_opts_t p = FDN_BREAKER_OPTS_INIT;
    assert_int_equal(fdn_breaker_opts_parse(json, strlen(json), &p, NULL), FDN_EINVAL);
    /* equal is fine, and so is a time window (any number of calls per second) */
    o.minimum_calls = 5;
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), 0);
    o.minimum_calls = 10;
    o.rate_window_kind = FDN_BREAKER_WINDOW_TIME;
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), 0);
    /* without a rate policy the window is unused */
    o.rate_window_kind = FDN_BREAKER_WINDOW_COUNT;
    o.failure_rate_pct = 0;
    assert_int_equal(fdn_breaker_opts_validate(&o, NULL), 0);
}

static void standalone(void **state)
{
    (void)state;
    fdn_breaker_t *b;
    assert_int_equal(fdn_breaker_create(&b, NULL, NULL), 0);
    assert_string_equal(fdn_breaker_name(b), "");
    int rc;
    assert_int_equal(fdn_breaker_call(b, ok_fn, NULL, &rc), 7);
    assert_int_equal(fdn_breaker_call(b, NULL, NULL, &rc), FDN_EINVAL);
    fdn_breaker_destroy(b);
}

/* fdn_breaker_ask answers what acquire would, with none of its effects (fuse's ask). */
static void ask_has_no_side_effects(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "asked", 2, 1000, 0);
    assert_int_equal(fdn_breaker_ask(NULL), FDN_EINVAL);
    assert_int_equal(fdn_breaker_ask(b), 0);
    for (int i = 0; i < 2; i++) {
        fdn_breaker_permit_t pm;
        assert_int_equal(fdn_breaker_acquire(b, &pm), 0);
        fdn_breaker_record(b, &pm, FDN_EIO);
    }
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_status_t st0, st1;
    assert_int_equal(fdn_breaker_status(b, &st0), 0);
    assert_int_equal(fdn_breaker_ask(b), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_status(b, &st1), 0);
    assert_int_equal(st1.total_rejected, st0.total_rejected); /* asking is not a rejection */
    /* past the recovery time: acquire would admit a probe; ask says so and moves nothing */
    assert_int_equal(fdn_clock_advance(f->clk, 1001 * MS), 0);
    int before = f->transitions;
    assert_int_equal(fdn_breaker_ask(b), 0);
    assert_int_equal(fdn_breaker_ask(b), 0);
    assert_int_equal(f->transitions, before);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    /* the probe is taken by acquire; with its one slot taken, ask says no */
    fdn_breaker_permit_t probe;
    assert_int_equal(fdn_breaker_acquire(b, &probe), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    assert_int_equal(fdn_breaker_ask(b), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_status(b, &st1), 0);
    assert_int_equal(st1.probes_in_flight, 1);
    fdn_breaker_record(b, &probe, 0);
    assert_int_equal(fdn_breaker_ask(b), 0); /* closed again */
    fdn_breaker_force_open(b);
    assert_int_equal(fdn_breaker_ask(b), FDN_ECIRCUIT_OPEN);
    fdn_breaker_disable(b);
    assert_int_equal(fdn_breaker_ask(b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(closed_to_open_on_threshold, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(ask_has_no_side_effects, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(success_resets_consecutive, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(failures_age_out_of_window, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(status_failures_age_out_too, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(open_half_open_close, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(half_open_failure_reopens, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(probe_timeout_never_sticks, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(probe_timeout_counts_from_the_probe, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(release_frees_probe_slot, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(closed_success_through_call, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(classify_callback, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(rate_policy_count_window, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(rate_policy_time_window, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(slow_calls, test_breaker_setup, test_breaker_teardown),
        cmocka_unit_test_setup_teardown(force_open_disable_reset, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test(from_tolerance_refuses_what_validation_refuses),
        cmocka_unit_test(from_tolerance_ex_says_why),
        cmocka_unit_test_setup_teardown(ref_default_tolerance, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(ref_exact_options, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(ref_many_successes_and_independence, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(set_lookup_and_install, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(set_bound_index_and_handles, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(empty_set_has_no_handles, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(huge_window_no_overflow, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(rate_window_smaller_than_minimum_calls_is_refused,
                                        test_breaker_setup, test_breaker_teardown),
        cmocka_unit_test(standalone),
        cmocka_unit_test(transitions_reported_in_order),
        cmocka_unit_test(transition_reports_from_a_callback_do_not_recurse),
        cmocka_unit_test(full_report_queue_never_reports_a_non_change),
        cmocka_unit_test(transition_reports_stress_none_lost),
        cmocka_unit_test_setup_teardown(revived_breaker_found_only_afresh, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(create_during_revive_waits_for_it, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(install_racing_remove_and_revive, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(install_waits_for_a_waiting_remove, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(install_after_remove_in_its_window_revives,
                                        test_breaker_setup, test_breaker_teardown),
        cmocka_unit_test_setup_teardown(install_ignores_calls_admitted_before,
                                        test_breaker_setup_quiet, test_breaker_teardown),
        cmocka_unit_test_setup_teardown(probe_start_not_moved_back_by_a_late_caller,
                                        test_breaker_setup_quiet, test_breaker_teardown),
        cmocka_unit_test_setup_teardown(lost_probe_counted_once, test_breaker_setup_quiet,
                                        test_breaker_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
