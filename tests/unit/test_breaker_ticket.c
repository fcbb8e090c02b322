/* Circuit breaker tickets (permits kept by the breaker, for callers over HTTP), the SLOW
 * outcome, removal from a set and options from JSON; every time on a manual clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/breaker.h>

#include "breaker_fixture.h"

#define MS 1000000LL

static uint64_t take(fdn_breaker_t *b)
{
    uint64_t t = 0;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0);
    return t;
}

static void tickets_count_like_permits(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "t", 2, 1000, 5000);
    uint64_t a = take(b), c = take(b), d = take(b);
    assert_int_not_equal(a, c);
    assert_int_equal(fdn_breaker_report_ticket(b, a, FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_report_ticket(b, a, FDN_BREAKER_SUCCESS, -1), FDN_ENOENT);
    assert_int_equal(fdn_breaker_report_ticket(b, c, FDN_BREAKER_FAILURE, -1), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_breaker_report_ticket(b, d, FDN_BREAKER_FAILURE, 3 * MS), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    uint64_t t;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_report_ticket(b, 12345, FDN_BREAKER_SUCCESS, -1), FDN_ENOENT);
    assert_int_equal(fdn_breaker_report_ticket(b, a, (fdn_breaker_outcome_t)9, -1), FDN_EINVAL);
    assert_int_equal(fdn_breaker_acquire_ticket(NULL, &t), FDN_EINVAL);
    assert_int_equal(fdn_breaker_tickets_settle(b), 0);
}

/* A ticket never reported is a failure once its probe timeout has passed. */
static void unreported_ticket_counts_as_failure(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "lost", 1, 1000, 100);
    uint64_t t = take(b);
    assert_int_equal(fdn_clock_advance(f->clk, 99 * MS), 0);
    assert_int_equal(fdn_breaker_tickets_settle(b), 1); /* not yet */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    assert_int_equal(fdn_clock_advance(f->clk, 1 * MS), 0);
    assert_int_equal(fdn_breaker_tickets_settle(b), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    /* its late report changes nothing: it was already counted */
    assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_SUCCESS, -1), FDN_ENOENT);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* A client that takes the half-open probe and dies cannot hold the breaker half-open. */
static void dead_probe_reopens(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "probe", 1, 1000, 200);
    assert_int_equal(fdn_breaker_report_ticket(b, take(b), FDN_BREAKER_FAILURE, -1), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    (void)take(b); /* the probe; its client dies */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    uint64_t t;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_ECIRCUIT_OPEN); /* slot taken */
    assert_int_equal(fdn_clock_advance(f->clk, 200 * MS), 0);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_ECIRCUIT_OPEN);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN); /* the dead probe failed it */
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.times_opened, 2);
    assert_int_equal(st.probes_in_flight, 0);
    /* and the next probe, reported in time, closes it */
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    assert_int_equal(fdn_breaker_report_ticket(b, take(b), FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
}

static void slow_and_ignore_outcomes(void **state)
{
    test_breaker_fx_t *f = *state;
    /* no rate policy: a slow call is a failure */
    fdn_breaker_t *b = test_breaker_basic(f, "slow", 1, 1000, 5000);
    assert_int_equal(fdn_breaker_report_ticket(b, take(b), FDN_BREAKER_SLOW, -1), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    /* slow_call_ms: a success reported with a long duration is slow */
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 1;
    o.slow_call_ms = 50;
    o.clock = f->clk;
    fdn_breaker_t *s = NULL;
    assert_int_equal(fdn_breaker_create_in(f->set, "dur", &o, &s), 0);
    assert_int_equal(fdn_breaker_report_ticket(s, take(s), FDN_BREAKER_SUCCESS, 49 * MS), 0);
    assert_int_equal(fdn_breaker_state(s), FDN_BREAKER_CLOSED);
    uint64_t t = take(s);
    assert_int_equal(fdn_clock_advance(f->clk, 60 * MS), 0); /* measured from the ticket */
    assert_int_equal(fdn_breaker_report_ticket(s, t, FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_state(s), FDN_BREAKER_OPEN);
    /* IGNORE frees a probe slot and records nothing */
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    uint64_t p = take(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    assert_int_equal(fdn_breaker_report_ticket(b, p, FDN_BREAKER_IGNORE, -1), 0);
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.probes_in_flight, 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
}

static void ticket_table_is_bounded(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "full", 5, 1000, 5000);
    uint64_t first = take(b);
    for (int i = 1; i < FDN_BREAKER_TICKETS_MAX; i++)
        (void)take(b);
    uint64_t t;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_EBUSY);
    assert_int_equal(fdn_breaker_report_ticket(b, first, FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0); /* the head was freed */
    assert_int_equal(fdn_breaker_tickets_settle(b), FDN_BREAKER_TICKETS_MAX);
    assert_int_equal(fdn_clock_advance(f->clk, 5000 * MS), 0);
    assert_int_equal(fdn_breaker_tickets_settle(b), 0); /* every one expired */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
}

/* The bound is on tickets outstanding (breaker.h: taken, neither reported nor expired), not
 * on how many were taken since the oldest outstanding one: one ticket held (a client that died,
 * within its probe timeout) must not make a busy breaker refuse every other client once 1023
 * more were taken and reported. (It did: FDN_EBUSY with 2 outstanding.) */
static void held_ticket_does_not_fill_the_table(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "held", 5, 1000, 5000);
    uint64_t held = take(b);
    for (int i = 0; i < 3 * FDN_BREAKER_TICKETS_MAX; i++) {
        uint64_t t = 0;
        int rc = fdn_breaker_acquire_ticket(b, &t);
        if (rc != 0)
            fail_msg("ticket %d after the held one: %d with %zu outstanding", i + 1, rc,
                     fdn_breaker_tickets_settle(b));
        assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_SUCCESS, -1), 0);
    }
    assert_int_equal(fdn_breaker_tickets_settle(b), 1);
    /* full with the held one and 1023 others; a report of any of them makes room */
    uint64_t mid = 0;
    for (int i = 1; i < FDN_BREAKER_TICKETS_MAX; i++) {
        uint64_t t = take(b);
        if (i == 500)
            mid = t;
    }
    uint64_t t;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_EBUSY);
    assert_int_equal(fdn_breaker_report_ticket(b, mid, FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_report_ticket(b, mid, FDN_BREAKER_SUCCESS, -1), FDN_ENOENT);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), FDN_EBUSY);
    /* expiry still goes in the order taken, and counts each as a failure */
    assert_int_equal(fdn_clock_advance(f->clk, 5000 * MS), 0);
    assert_int_equal(fdn_breaker_tickets_settle(b), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    assert_int_equal(fdn_breaker_report_ticket(b, held, FDN_BREAKER_SUCCESS, -1), FDN_ENOENT);
    fdn_breaker_status_t st;
    assert_int_equal(fdn_breaker_status(b, &st), 0);
    assert_int_equal(st.total_failures, FDN_BREAKER_TICKETS_MAX); /* each expired one */
}

static void removed_breaker_is_unlisted_and_comes_back_fresh(void **state)
{
    test_breaker_fx_t *f = *state;
    fdn_breaker_t *b = test_breaker_basic(f, "gone", 1, 1000, 5000);
    (void)test_breaker_basic(f, "stays", 1, 1000, 5000);
    assert_int_equal(fdn_breaker_report_ticket(b, take(b), FDN_BREAKER_FAILURE, -1), 0);
    assert_int_equal(fdn_breaker_remove(f->set, "gone"), 0);
    assert_int_equal(fdn_breaker_remove(f->set, "gone"), FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(fdn_breaker_remove(f->set, NULL), FDN_EINVAL);
    fdn_breaker_t *x = NULL;
    assert_int_equal(fdn_breaker_get(f->set, "gone", &x), FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(fdn_breakers_count(f->set), 1);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(fdn_breakers_list(f->set, &names, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "stays");
    fdn_free(names);
    /* the old handle still works */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_breaker_reset(b);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_breaker_force_open(b);
    /* created again: the same memory, afresh, with the new options */
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 3;
    o.clock = f->clk;
    assert_int_equal(fdn_breaker_create_in(f->set, "gone", &o, &x), 0);
    assert_ptr_equal(x, b);
    assert_int_equal(fdn_breaker_state(x), FDN_BREAKER_CLOSED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fdn_breaker_report_ticket(x, take(x), FDN_BREAKER_FAILURE, -1), 0);
    assert_int_equal(fdn_breaker_state(x), FDN_BREAKER_CLOSED); /* threshold 3 now */
    assert_int_equal(fdn_breakers_count(f->set), 2);
}

static void options_from_json(void **state)
{
    (void)state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    fdn_error_t err = FDN_ERROR_INIT;
    const char *ok = "{\"failure_threshold\":3,\"recovery_time_ms\":250,\"success_resets\":false,"
                     "\"failure_rate_pct\":50,\"rate_window\":\"time\",\"rate_window_size\":30,"
                     "\"slow_call_ms\":20}";
    assert_int_equal(fdn_breaker_opts_parse(ok, strlen(ok), &o, &err), 0);
    assert_int_equal(o.failure_threshold, 3);
    assert_int_equal(o.recovery_time_ms, 250);
    assert_false(o.success_resets);
    assert_int_equal(o.failure_rate_pct, 50);
    assert_int_equal(o.rate_window_kind, FDN_BREAKER_WINDOW_TIME);
    assert_int_equal(o.rate_window_size, 30);
    assert_int_equal(o.slow_call_ms, 20);
    assert_int_equal(o.window_ms, 60000); /* untouched: the default */

    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"failure_treshold\":3}", "failure_treshold"},
        {"{\"failure_threshold\":\"3\"}", "failure_threshold"},
        {"{\"failure_threshold\":-1}", "failure_threshold"},
        {"{\"failure_threshold\":0}", "failure_threshold"},
        {"{\"success_resets\":1}", "success_resets"},
        {"{\"rate_window\":\"sliding\"}", "rate_window"},
        {"{\"failure_rate_pct\":101}", "failure_rate_pct"},
        {"[1,2]", "object"},
        {"{\"a\":", "not JSON"},
        {"{\"window_ms\":1,\"window_ms\":2}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fdn_breaker_opts_t before = o;
        err = (fdn_error_t)FDN_ERROR_INIT;
        assert_int_equal(fdn_breaker_opts_parse(bad[i].json, strlen(bad[i].json), &o, &err),
                         FDN_EINVAL);
        if (strstr(err.message, bad[i].says) == NULL)
            fail_msg("'%s': message '%s' does not name '%s'", bad[i].json, err.message,
                     bad[i].says);
        assert_memory_equal(&before, &o, sizeof(o)); /* unchanged */
    }
    assert_int_equal(fdn_breaker_opts_parse(NULL, 0, &o, NULL), FDN_EINVAL);
}

/* Threads taking and reporting tickets while another settles: every ticket settles once. */
typedef struct race {
    fdn_breaker_t *b;
    atomic_int taken, reported, stop;
} race_t;

static void *race_main(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 2000; i++) {
        uint64_t t;
        if (fdn_breaker_acquire_ticket(r->b, &t) != 0)
            continue;
        atomic_fetch_add(&r->taken, 1);
        if (fdn_breaker_report_ticket(r->b, t, FDN_BREAKER_SUCCESS, 0) == 0)
            atomic_fetch_add(&r->reported, 1);
    }
    return NULL;
}

static void *settle_main(void *arg)
{
    race_t *r = arg;
    while (!atomic_load(&r->stop))
        (void)fdn_breaker_tickets_settle(r->b);
    return NULL;
}

static void tickets_from_many_threads(void **state)
{
    test_breaker_fx_t *f = *state;
    race_t r = {.b = test_breaker_basic(f, "race", 5, 1000, 60000)};
    pthread_t th[4], st;
    assert_int_equal(pthread_create(&st, NULL, settle_main, &r), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    atomic_store(&r.stop, 1);
    pthread_join(st, NULL);
    /* the clock did not move: nothing expired, so every ticket taken was reported once */
    assert_int_equal(atomic_load(&r.reported), atomic_load(&r.taken));
    assert_int_equal(fdn_breaker_tickets_settle(r.b), 0);
    assert_int_equal(fdn_breaker_state(r.b), FDN_BREAKER_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tickets_count_like_permits, test_breaker_setup_quiet,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(unreported_ticket_counts_as_failure,
                                        test_breaker_setup_quiet, test_breaker_teardown),
        cmocka_unit_test_setup_teardown(dead_probe_reopens, test_breaker_setup_quiet,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(slow_and_ignore_outcomes, test_breaker_setup_quiet,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(ticket_table_is_bounded, test_breaker_setup_quiet,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(held_ticket_does_not_fill_the_table, test_breaker_setup,
                                        test_breaker_teardown),
        cmocka_unit_test_setup_teardown(removed_breaker_is_unlisted_and_comes_back_fresh,
                                        test_breaker_setup_quiet, test_breaker_teardown),
        cmocka_unit_test(options_from_json),
        cmocka_unit_test_setup_teardown(tickets_from_many_threads, test_breaker_setup_quiet,
                                        test_breaker_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
