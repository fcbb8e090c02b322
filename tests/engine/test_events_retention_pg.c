/* The durable tier's own retention on the PostgreSQL backend (issue 21), on a real server
 * (scripts/pg-server.sh, ctest fixture "postgres"; URL in $FDN_TEST_PG_DIR/url): two stores on
 * one schema stand for two processes sharing the log. Retention by count deletes the oldest
 * positions of the shared log, whichever process runs it, and running it from both (at once
 * or one after the other) is safe: the second run deletes nothing more. By age (wall time) a
 * tiny age deletes every position, and an old position after a recent one is kept with it
 * (only a prefix all older than the age goes). Memory drops what the log no longer holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/clock.h>
#include <fdn/events.h>

#include "pg_fixture.h"

static fdn_events_t *open_store(const char *schema)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, schema);
    o.prune_interval_ns = 0; /* retention when the test asks */
    return test_pg_store_open(&o);
}

static void store_n(fdn_events_t *es, int n)
{
    for (int i = 0; i < n; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = "pg.retention";
        assert_int_equal(fdn_events_store_specs(es, &sp, 1, NULL, NULL), 0);
    }
}

static fdn_events_durable_status_t disk(fdn_events_t *es)
{
    fdn_events_durable_status_t d;
    assert_int_equal(fdn_events_durable_status(es, &d), 0);
    assert_true(d.enabled);
    return d;
}

typedef struct run_arg {
    fdn_events_t *es;
    int rc;
} run_arg_t;

static void *run_retention(void *p)
{
    run_arg_t *a = p;
    a->rc = fdn_events_enforce_retention(a->es, NULL);
    return NULL;
}

static void shared_log_retention(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "ret");
    fdn_events_t *a = open_store(schema), *b = open_store(schema);
    store_n(a, 50);
    store_n(b, 50);
    assert_int_equal(disk(a).count, 100);
    assert_int_equal(disk(b).max_events, 0); /* default: keep */

    /* by count, from both processes at once: the newest 30 positions stay */
    assert_int_equal(fdn_events_set_durable_retention(a, 30, 0), 0);
    assert_int_equal(fdn_events_set_durable_retention(b, 30, 0), 0);
    run_arg_t ra = {a, -1}, rb = {b, -1};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_retention, &ra), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_retention, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(ra.rc, 0);
    assert_int_equal(rb.rc, 0);
    fdn_events_durable_status_t d = disk(a);
    assert_int_equal(d.count, 30);
    assert_int_equal(d.oldest_id, 71);
    assert_int_equal(d.newest_id, 100);
    fdn_events_durable_status_t da = disk(a), db = disk(b);
    assert_int_equal(da.pruned + db.pruned, 70); /* each position deleted once */
    /* again: nothing more */
    assert_int_equal(fdn_events_enforce_retention(b, NULL), 0);
    assert_int_equal(disk(b).count, 30);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(a, 1, &ev), FDN_ENOENT); /* gone from memory too */
    assert_int_equal(fdn_events_get(b, 70, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(b, 71, &ev), 0);
    fdn_event_free(ev);

    /* by age (wall time): 1 ns keeps nothing older than now */
    assert_int_equal(fdn_events_set_durable_retention(a, 0, 1), 0);
    assert_int_equal(fdn_events_enforce_retention(a, NULL), 0);
    assert_int_equal(disk(b).count, 0);

    /* by age, the log's wall times out of position order (a caller's wall_ns): an event two
     * days old after a recent one stays, and takes nothing with it (a binary search on wall
     * time deleted the recent one before it) */
    int64_t now = fdn_clock_wall_ns(NULL);
    uint64_t pos[3];
    for (int i = 0; i < 3; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = "pg.retention";
        sp.wall_ns = i == 1 ? now - 2 * 86400 * 1000000000LL : 0;
        assert_int_equal(fdn_events_store_specs(a, &sp, 1, &pos[i], NULL), 0);
    }
    assert_int_equal(fdn_events_set_durable_retention(a, 0, 3600 * 1000000000LL), 0);
    assert_int_equal(fdn_events_enforce_retention(a, NULL), 0);
    d = disk(b);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.oldest_id, pos[0]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_events_get(b, pos[i], &ev), 0);
        fdn_event_free(ev);
    }
    fdn_events_destroy(a);
    fdn_events_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_log_retention),
    };
    return cmocka_run_group_tests(tests, test_pg_setup, NULL);
}
