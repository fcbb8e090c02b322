/* Unit tests: the labelled families the components feed themselves (issue 18):
 * - limiter decisions by rule (fdn_rate_limiter_request_{allowed,denied}_total{rule}), never
 *   by key, with a cap whose overflow is counted;
 * - events appended by type (fdn_events_appended_by_type_total{type}): a type's series
 *   outlives the type, the cap sends later types to __overflow__, the sum stays exact;
 * - breaker call durations (fdn_circuit_breaker_call_duration_seconds{breaker,outcome}) on a
 *   manual clock, for permits and tickets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/telemetry.h>

/* The sample of family `name` whose label values are v[0..n) (NULL: absent). Copied out of a
 * fresh snapshot: counter value, histogram count and sum. */
typedef struct found {
    bool ok;
    uint64_t counter;
    uint64_t count;
    double sum;
} found_t;

static found_t series(fdn_telemetry_t *tm, const char *name, const char *const *v, size_t n)
{
    found_t r = {false, 0, 0, 0.0};
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL) {
        if (x->is_event || strcmp(x->name, name) != 0 || x->nlabels != n)
            continue;
        bool same = true;
        for (size_t i = 0; i < n && same; i++)
            same = strcmp(x->label_values[i], v[i]) == 0;
        if (!same)
            continue;
        r.ok = true;
        r.counter = x->counter;
        r.count = x->hist.count;
        r.sum = x->hist.sum;
    }
    fdn_telemetry_snapshot_free(s);
    return r;
}

/* Number of series of family `name`, and the sum of their counters. */
static size_t family_series(fdn_telemetry_t *tm, const char *name, uint64_t *sum)
{
    size_t k = 0;
    *sum = 0;
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        if (!x->is_event && strcmp(x->name, name) == 0) {
            k++;
            *sum += x->counter;
        }
    fdn_telemetry_snapshot_free(s);
    return k;
}

static uint64_t dropped(fdn_telemetry_t *tm, const char *family)
{
    const char *v[] = {family};
    found_t f = series(tm, "fdn_telemetry_series_dropped_total", v, 1);
    assert_true(f.ok);
    return f.counter;
}

static uint64_t rule_count(fdn_telemetry_t *tm, bool allowed, const char *rule)
{
    const char *v[] = {rule};
    found_t f = series(tm,
                       allowed ? "fdn_rate_limiter_request_allowed_total"
                               : "fdn_rate_limiter_request_denied_total",
                       v, 1);
    return f.ok ? f.counter : UINT64_MAX;
}

static void limiter_decisions_by_rule(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.telemetry = tm;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_rule_t two = {FDN_LIMIT_FIXED_WINDOW, 2, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "login", &two), 0);
    /* the default rules and the unnamed series exist from the start, at 0 */
    assert_int_equal(rule_count(tm, true, "api_calls"), 0);
    assert_int_equal(rule_count(tm, false, "(unnamed)"), 0);
    fdn_limit_result_t res;
    for (int i = 0; i < 5; i++) {
        int rc = fdn_limiter_check_named(l, "login", "alice", 1, &res);
        assert_int_equal(rc, i < 2 ? 0 : FDN_ERATE_LIMITED);
    }
    assert_int_equal(fdn_limiter_check_named(l, "login", "bob", 1, &res), 0);
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", "alice", 1, &res), 0);
    assert_int_equal(rule_count(tm, true, "login"), 3);
    assert_int_equal(rule_count(tm, false, "login"), 3);
    assert_int_equal(rule_count(tm, true, "api_calls"), 1);
    assert_int_equal(rule_count(tm, false, "api_calls"), 0);
    /* a peek decides nothing; a caller's rule counts as (unnamed); keys are never labels */
    assert_int_equal(fdn_limiter_check(l, "k", 1, &two, 1, FDN_LIMIT_PEEK, &res), 0);
    assert_int_equal(fdn_limiter_check(l, "k", 1, &two, 1, 0, &res), 0);
    assert_int_equal(fdn_limiter_check_rate(l, "k", 60000, 2, &res), 0);
    assert_int_equal(fdn_limiter_check(l, "k", 1, &two, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_int_equal(rule_count(tm, true, "(unnamed)"), 2);
    assert_int_equal(rule_count(tm, false, "(unnamed)"), 1);
    assert_int_equal(rule_count(tm, true, "alice"), UINT64_MAX);
    assert_int_equal(rule_count(tm, true, "login:alice"), UINT64_MAX);
    /* shadow mode: a denial still counts as denied (the caller is let through) */
    fdn_limiter_set_shadow(l, true);
    assert_int_equal(fdn_limiter_check_named(l, "login", "alice", 1, &res), 0);
    assert_true(res.shadow_denied);
    assert_int_equal(rule_count(tm, false, "login"), 4);
    fdn_limiter_set_shadow(l, false);
    /* a removed rule's series stays; setting it again continues it */
    assert_int_equal(fdn_limiter_remove_rule(l, "login"), 0);
    assert_int_equal(rule_count(tm, true, "login"), 3);
    assert_int_equal(fdn_limiter_set_rule(l, "login", &two), 0);
    assert_int_equal(fdn_limiter_check_named(l, "login", "carol", 1, &res), 0);
    assert_int_equal(rule_count(tm, true, "login"), 4);
    /* the sums equal the events' counts (the JSON API keeps the events) */
    uint64_t sum = 0;
    family_series(tm, "fdn_rate_limiter_request_allowed_total", &sum);
    assert_int_equal(sum, 4 + 1 + 2);
    /* names churn past the cap (256 series per family): later names share __overflow__,
     * counted as dropped series */
    assert_int_equal(dropped(tm, "fdn_rate_limiter_request_allowed_total"), 0);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "r%03d", i);
        assert_int_equal(fdn_limiter_set_rule(l, name, &two), 0);
        assert_int_equal(fdn_limiter_check_named(l, name, "x", 1, &res), 0);
        assert_int_equal(fdn_limiter_remove_rule(l, name), 0);
    }
    size_t k = family_series(tm, "fdn_rate_limiter_request_allowed_total", &sum);
    assert_int_equal(k, 256 + 1); /* the cap, then the overflow series */
    assert_int_equal(sum, 7 + 300);
    assert_true(dropped(tm, "fdn_rate_limiter_request_allowed_total") > 0);
    const char *ov[] = {"__overflow__"};
    assert_true(series(tm, "fdn_rate_limiter_request_allowed_total", ov, 1).counter > 0);
    fdn_limiter_destroy(l);
    fdn_telemetry_destroy(tm);
}

static fdn_event_t *mkev(const char *type)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.flags |= FDN_EVENT_NO_CORRELATION;
    s.data = "{}";
    s.data_len = 2;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static void put(fdn_events_t *es, const char *type)
{
    fdn_event_t *ev = mkev(type);
    assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    fdn_event_free(ev);
}

static uint64_t type_count(fdn_telemetry_t *tm, const char *type)
{
    const char *v[] = {type};
    found_t f = series(tm, "fdn_events_appended_by_type_total", v, 1);
    return f.ok ? f.counter : UINT64_MAX;
}

static void events_appended_by_type(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.telemetry = tm;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    put(es, "order.created");
    put(es, "order.created");
    put(es, "order.paid");
    fdn_event_t *a = mkev("order.paid"), *b = mkev("order.shipped");
    const fdn_event_t *v[2] = {a, b};
    assert_int_equal(fdn_events_store_batch(es, v, 2, NULL), 0); /* a batch counts each */
    fdn_event_free(a);
    fdn_event_free(b);
    assert_int_equal(type_count(tm, "order.created"), 2);
    assert_int_equal(type_count(tm, "order.paid"), 2);
    assert_int_equal(type_count(tm, "order.shipped"), 1);
    /* every event pruned: the types are released, their series stay (a counter series
     * never disappears) and continue when the type comes back */
    uint64_t n = 0;
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
    assert_int_equal(n, 5);
    fdn_events_types_status_t st;
    assert_int_equal(fdn_events_types_status(es, &st), 0);
    assert_int_equal(st.live, 0);
    assert_int_equal(type_count(tm, "order.created"), 2);
    put(es, "order.created");
    assert_int_equal(type_count(tm, "order.created"), 3);
    /* the cap (256 types): later types count in __overflow__; the sum stays exact */
    char type[32];
    for (int i = 0; i < 300; i++) {
        snprintf(type, sizeof type, "t.%03d", i);
        put(es, type);
    }
    uint64_t sum = 0;
    size_t k = family_series(tm, "fdn_events_appended_by_type_total", &sum);
    assert_int_equal(k, 256 + 1);
    assert_int_equal(sum, 6 + 300);
    fdn_events_stats_t es_st;
    assert_int_equal(fdn_events_stats(es, &es_st), 0);
    assert_int_equal(es_st.events_stored, sum);
    const char *ov[] = {"__overflow__"};
    assert_int_equal(series(tm, "fdn_events_appended_by_type_total", ov, 1).counter, 300 - 253);
    assert_int_equal(dropped(tm, "fdn_events_appended_by_type_total"), 300 - 253);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

static found_t dur(fdn_telemetry_t *tm, const char *breaker, const char *outcome)
{
    const char *v[] = {breaker, outcome};
    return series(tm, "fdn_circuit_breaker_call_duration_seconds", v, 2);
}

static int fail_call(void *arg)
{
    fdn_clock_advance(arg, 2000000); /* 2 ms */
    return FDN_EIO;
}

static void breaker_call_durations(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000000000, 1000000000), 0);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.clock = clk;
    o.failure_threshold = 100;
    fdn_breaker_t *plain = NULL;
    assert_int_equal(fdn_breaker_create(&plain, "plain", &o), 0); /* no telemetry */
    o.telemetry = tm;
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create(&b, "db", &o), 0);
    /* both series exist from the start */
    assert_true(dur(tm, "db", "success").ok);
    assert_int_equal(dur(tm, "db", "failure").count, 0);
    fdn_breaker_permit_t p;
    assert_int_equal(fdn_breaker_acquire(b, &p), 0);
    fdn_clock_advance(clk, 5000000); /* 5 ms */
    fdn_breaker_record(b, &p, 0);
    int fn_rc = 0;
    assert_int_equal(fdn_breaker_call(b, fail_call, clk, &fn_rc), FDN_EIO);
    found_t s = dur(tm, "db", "success"), f = dur(tm, "db", "failure");
    assert_int_equal(s.count, 1);
    assert_true(s.sum > 0.004999 && s.sum < 0.005001);
    assert_int_equal(f.count, 1);
    assert_true(f.sum > 0.001999 && f.sum < 0.002001);
    /* a ticket: timed from its acquisition, or by the duration reported */
    uint64_t t = 0;
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0);
    fdn_clock_advance(clk, 7000000);
    assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_SUCCESS, -1), 0);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0);
    assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_FAILURE, 3000000), 0);
    assert_int_equal(fdn_breaker_acquire_ticket(b, &t), 0);
    assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_IGNORE, 1000000), 0);
    s = dur(tm, "db", "success");
    f = dur(tm, "db", "failure");
    assert_int_equal(s.count, 2);
    assert_true(s.sum > 0.011999 && s.sum < 0.012001);
    assert_int_equal(f.count, 2);
    assert_true(f.sum > 0.004999 && f.sum < 0.005001);
    /* a breaker without telemetry exports nothing */
    assert_int_equal(fdn_breaker_acquire(plain, &p), 0);
    fdn_breaker_record(plain, &p, 0);
    assert_false(dur(tm, "plain", "success").ok);
    /* a set re-installs options in place: the series keep the breaker's name */
    fdn_breakers_t *set = NULL;
    assert_int_equal(fdn_breakers_create(&set, &o), 0);
    fdn_breaker_t *x = NULL;
    assert_int_equal(fdn_breaker_create_in(set, "cache", &o, &x), 0);
    o.failure_threshold = 3;
    assert_int_equal(fdn_breaker_install(set, "cache", &o, &x), 0);
    assert_int_equal(fdn_breaker_acquire(x, &p), 0);
    fdn_clock_advance(clk, 1000000);
    fdn_breaker_record(x, &p, 0);
    assert_int_equal(dur(tm, "cache", "success").count, 1);
    fdn_breakers_destroy(set);
    fdn_breaker_destroy(b);
    fdn_breaker_destroy(plain);
    fdn_clock_destroy(clk);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limiter_decisions_by_rule),
        cmocka_unit_test(events_appended_by_type),
        cmocka_unit_test(breaker_call_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
