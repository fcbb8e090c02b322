/* Fault test: failing-allocator sweep over the event store. Allocation number k fails, for
 * every k until a whole scenario runs without failure. Each call either succeeds or
 * returns FDN_ENOMEM; a failed store or batch changes nothing (count, next id, queries);
 * nothing leaks (LeakSanitizer at exit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/events.h>

#include "fail_alloc.h"

static fdn_event_t *mkev(const char *type, const char *corr)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.correlation_id = corr;
    s.data = "{\"x\":1}";
    s.data_len = 7;
    fdn_event_t *ev = NULL;
    return fdn_event_new(&ev, &s, NULL) == 0 ? ev : NULL;
}

/* One scenario with allocation k failing. Returns true when nothing failed. */
static bool scenario(long k)
{
    fdn_event_t *evs[40];
    char type[16], corr[16];
    for (int i = 0; i < 40; i++) {
        snprintf(type, sizeof(type), "t%d", i % 7);
        snprintf(corr, sizeof(corr), "c%d", i);
        evs[i] = mkev(type, corr);
        assert_non_null(evs[i]);
    }
    fail_alloc_at(k + 1); /* k allocations succeed, the next one fails */
    fdn_events_t *es = NULL;
    int rc = fdn_events_create(&es, NULL, NULL);
    if (rc != 0) {
        assert_int_equal(rc, FDN_ENOMEM);
        goto out;
    }
    uint64_t stored = 0;
    for (int round = 0; round < 30; round++) {
        fdn_events_stats_t before, after;
        fdn_events_stats(es, &before);
        uint64_t ids[40];
        size_t n = round % 3 == 0 ? 40 : 1;
        rc = fdn_events_store_batch(
            es, (const fdn_event_t *const *)evs + (round % 3 == 0 ? 0 : round), n, ids);
        fdn_events_stats(es, &after);
        if (rc != 0) {
            assert_int_equal(rc, FDN_ENOMEM);
            assert_int_equal(after.count, before.count);
            assert_int_equal(after.next_id, before.next_id);
        } else {
            stored += n;
            assert_int_equal(after.count, stored);
            assert_int_equal(ids[0], before.next_id);
        }
    }
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "t3";
    fdn_event_list_t *l = NULL;
    rc = fdn_events_query(es, &q, &l);
    assert_true(rc == 0 || rc == FDN_ENOMEM);
    if (rc == 0) {
        for (size_t i = 0; i < fdn_event_list_count(l); i++)
            assert_string_equal(fdn_event_type(fdn_event_list_at(l, i)), "t3");
        fdn_event_list_free(l);
    }
    rc = fdn_events_get_by_correlation(es, "c5", &l);
    assert_true(rc == 0 || rc == FDN_ENOMEM);
    fdn_event_list_free(rc == 0 ? l : NULL);
    fdn_event_t *got = NULL;
    rc = fdn_events_get(es, 1, &got);
    assert_true(rc == 0 || rc == FDN_ENOMEM || rc == FDN_ENOENT);
    fdn_event_free(rc == 0 ? got : NULL);
    uint64_t pruned;
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &pruned), 0);
    assert_int_equal(pruned, stored);
    fdn_events_destroy(es);
out:
    fail_alloc_off();
    for (int i = 0; i < 40; i++)
        fdn_event_free(evs[i]);
    return fail_alloc_failures() == 0;
}

static void allocation_failures_change_nothing(void **state)
{
    (void)state;
    long k = 0;
    while (!scenario(k)) {
        k++;
        assert_true(k < 100000);
    }
    print_message("sweep covered %ld allocation points\n", k);
    assert_true(k > 10); /* the sweep did cover allocations */
}

int main(void)
{
    if (fail_alloc_install() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocation_failures_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
