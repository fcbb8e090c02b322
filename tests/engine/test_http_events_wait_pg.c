/* Engine test of waiting queries on PostgreSQL (GET /v1/events?after_id=N&wait_ms=M,
 * src/admin/event_wait.c; docs/http-api.md): a server's waiting query is answered by an event
 * another store (another process, in production) appends to the shared log. That event
 * reaches the server's store through its follower (src/services/event_shared.c), which appends
 * it to memory as positions arrive, and so wakes the query's subscription like a local append.
 *
 * Each round the query waits first (its thread blocks in the dispatcher; the test goes on once
 * the server counts it), then the other store appends: the answer must be that event, at its
 * global position, and nothing else. Ten rounds. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "pg_fixture.h"

#include <fdn/events.h>

typedef struct query {
    fdn_admin_t *a;
    char uri[128];
    fdn__http_resp_t r;
} query_t;

static void *query_main(void *arg)
{
    query_t *q = arg;
    memset(&q->r, 0, sizeof q->r);
    fdn__admin_dispatch(q->a, "GET", q->uri, NULL, NULL, 0, &q->r);
    return NULL;
}

static void another_stores_event_answers_a_waiting_query(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "wait");
    fdn_events_t *mine = test_pg_store(schema), *other = test_pg_store(schema);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = mine});
    fdn_clock_t *clk = NULL; /* stands still: only the event ends a wait, however slow */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);
    uint64_t last = 0; /* the log is empty: a new schema */
    for (unsigned round = 0; round < 10; round++) {
        query_t q = {.a = a};
        snprintf(q.uri, sizeof q.uri, "/v1/events?after_id=%llu&type=pg.wait&wait_ms=60000",
                 (unsigned long long)last);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, query_main, &q), 0);
        while (fdn__admin_events_waiting(a) < 1)
            sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        fdn_event_t *ev = test_pg_event("pg.wait", NULL, 1, round, 0, 0);
        uint64_t pos = 0;
        assert_int_equal(fdn_events_store(other, ev, &pos), 0);
        fdn_event_free(ev);
        assert_true(pos > last);
        pthread_join(th, NULL);
        assert_int_equal(q.r.status, 200);
        json_t *evs = json_object_get(q.r.json, "events");
        if (json_array_size(evs) != 1)
            fail_msg("round %u: %zu events after position %llu", round, json_array_size(evs),
                     (unsigned long long)last);
        json_t *e = json_array_get(evs, 0);
        assert_int_equal(json_integer_value(json_object_get(e, "id")), (json_int_t)pos);
        assert_string_equal(json_string_value(json_object_get(e, "type")), "pg.wait");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "s")),
                         (json_int_t)round);
        fdn__http_resp_clear(&q.r);
        last = pos;
    }
    assert_int_equal(fdn__admin_events_waiting(a), 0);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    fdn_events_destroy(other);
    fdn_events_destroy(mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(another_stores_event_answers_a_waiting_query),
    };
    return cmocka_run_group_tests(tests, test_pg_setup, NULL);
}
