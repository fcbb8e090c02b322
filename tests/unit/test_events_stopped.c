/* Unit tests: reads of a write-behind store's file (the ids its memory tier evicted) while the
 * store is stopped, or stops during the read (a supervisor restart closes the file). Such a
 * read fails with FDN_EUNAVAILABLE: it never answers with the memory part alone, never says
 * FDN_ENOENT for an event the file holds, and a from-position fd subscription keeps its
 * position (its descriptor turns readable again at the start, and it then gets every event
 * after the position). The HTTP API answers 503 saying the store is stopped. The races are
 * made deterministic with the test hook fdn__evs_disk_read_hook, which stops the store after
 * the read checked that the store runs and before it reads the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "services/event_store_int.h"
#include "tmpdir.h"

#define N   100 /* events stored: all in the file */
#define HOT 10  /* the memory tier keeps the newest HOT: ids N-HOT+1..N */

typedef struct fx {
    test_tmpfile_t tf;
    fdn_events_t *es;
} fx_t;

/* A store on a file holding ids 1..N, its memory tier ids N-HOT+1..N; event i (id i) is of
 * type "odd" or "even" as i is, every one of correlation id "c". */
static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL || test_tmpfile_make(&f->tf, "evstop", "events.db") != 0)
        return -1;
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = f->tf.path;
    o.max_events = HOT;
    o.prune_interval_ns = 0; /* retention only when the test asks */
    if (fdn_events_create(&f->es, &o, NULL) != 0)
        return -1;
    for (unsigned i = 1; i <= N; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = i % 2 ? "odd" : "even";
        sp.correlation_id = "c";
        sp.data = "{}";
        sp.data_len = 2;
        if (fdn_events_store_specs(f->es, &sp, 1, NULL, NULL) != 0) /* durable: in the file */
            return -1;
    }
    fdn_events_stats_t st;
    if (fdn_events_enforce_retention(f->es, NULL) != 0 || fdn_events_stats(f->es, &st) != 0 ||
        st.oldest_id != N - HOT + 1)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fdn__evs_disk_read_hook = NULL;
    fdn_events_destroy(f->es);
    test_tmpfile_remove(&f->tf);
    free(f);
    return 0;
}

/* fdn__evs_disk_read_hook: the store stops (as its supervisor does on a restart) once the read
 * has checked that it runs, before it reads the file; once. */
static int stops;
static void stop_once(fdn_events_t *es, void *user)
{
    (void)user;
    fdn__evs_disk_read_hook = NULL;
    stops++;
    fdn__events_service_stop(es);
}

static void arm_stop(void)
{
    stops = 0;
    fdn__evs_disk_read_hook = stop_once;
}

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

/* Read s, 7 at a time, until a read returns nothing (bounded): the ids must be first,
 * first + step, ... up to last, in order, nothing skipped. */
static void drain_expect(fdn_events_sub_t *s, uint64_t step, uint64_t first, uint64_t last)
{
    uint64_t next = first;
    for (int round = 0; round < 1000; round++) {
        fdn_event_list_t *l = NULL;
        uint64_t sk = 99;
        assert_int_equal(fdn_events_sub_read(s, 7, &l, &sk), 0);
        assert_int_equal(sk, 0);
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++, next += step)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), next);
        fdn_event_list_free(l);
        if (n == 0)
            break;
    }
    assert_int_equal(next, last + step); /* every one of them, up to the last */
    assert_int_equal(fdn_events_sub_overflow(s), 0);
}

/* The reviewer's case: a from-position fd subscriber (from 0) reads while the store is
 * stopped. The file's part of its page is not there: the read fails, again and again, its
 * position kept (it moved past ids 1..90 and delivered 10 of 100 before, none counted
 * skipped); its descriptor is not left readable meanwhile (a poller does not spin), turns
 * readable when the store starts, and the subscriber then gets all 100. With a type filter,
 * and with two types (a page per type, merged), the same. */
static void fd_sub_read_while_stopped_keeps_its_position(void **state)
{
    fx_t *f = *state;
    static const char *const both[] = {"odd", "even"};
    for (int variant = 0; variant < 3; variant++) {
        fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
        so.after_id = 0;
        so.from_position = true;
        if (variant == 1)
            so.type = "even";
        if (variant == 2) {
            so.types = both;
            so.ntypes = 2;
        }
        fdn_events_sub_t *s = NULL;
        assert_int_equal(fdn_events_subscribe_fd(f->es, &so, &s), 0);
        int fd = fdn_events_sub_fd(s);
        fdn__events_service_stop(f->es);
        for (int k = 0; k < 3; k++) {
            fdn_event_list_t *l = NULL;
            uint64_t sk = 99;
            assert_int_equal(fdn_events_sub_read(s, 1000, &l, &sk), FDN_EUNAVAILABLE);
            assert_null(l);
            assert_false(fd_readable(fd, 0));
        }
        assert_int_equal(fdn_events_sub_overflow(s), 0);
        assert_int_equal(fdn__events_service_start(f->es), 0);
        assert_true(fd_readable(fd, 10000)); /* the start makes it readable again */
        if (variant == 1)
            drain_expect(s, 2, 2, N);
        else
            drain_expect(s, 1, 1, N);
        fdn_events_unsubscribe(s);
    }
}

/* A read that found the store running and stops it before the file's part (the hook): it
 * fails, the position kept; after the start, every event from it. */
static void fd_sub_read_racing_a_stop_keeps_its_position(void **state)
{
    fx_t *f = *state;
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 20;
    so.from_position = true;
    fdn_events_sub_t *s = NULL;
    assert_int_equal(fdn_events_subscribe_fd(f->es, &so, &s), 0);
    arm_stop();
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_sub_read(s, 1000, &l, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(stops, 1);
    assert_null(l);
    assert_int_equal(fdn__events_service_start(f->es), 0);
    assert_true(fd_readable(fdn_events_sub_fd(s), 10000));
    drain_expect(s, 1, 21, N);
    fdn_events_unsubscribe(s);
}

/* Queries reaching below the memory tier, racing a stop: each fails (they answered 0 with the
 * memory part alone: 10 events instead of 100); after the start, they answer in full. */
static void query_racing_a_stop_fails(void **state)
{
    fx_t *f = *state;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 1000;
    for (int variant = 0; variant < 4; variant++) {
        q.descending = variant == 1;
        q.correlation_id = variant == 2 ? "c" : NULL;
        q.type = variant == 3 ? "odd" : NULL;
        size_t want = variant == 3 ? N / 2 : N;
        fdn_event_list_t *l = NULL;
        arm_stop();
        assert_int_equal(fdn_events_query(f->es, &q, &l), FDN_EUNAVAILABLE);
        assert_int_equal(stops, 1);
        assert_null(l);
        assert_int_equal(fdn__events_service_start(f->es), 0);
        arm_stop();
        size_t same = 0;
        assert_int_equal(fdn_events_query_same(f->es, &q, NULL, 0, &l, &same), FDN_EUNAVAILABLE);
        assert_int_equal(stops, 1);
        assert_int_equal(fdn__events_service_start(f->es), 0);
        fdn__evs_disk_read_hook = NULL;
        assert_int_equal(fdn_events_query(f->es, &q, &l), 0);
        assert_int_equal(fdn_event_list_count(l), want);
        fdn_event_list_free(l);
    }
}

/* A lookup by correlation id racing a stop fails, and leaves the store's memo of what the file
 * holds alone: it remembered "the file has none of c below memory" from the empty part of the
 * closed file, and every later lookup, after the start too, answered memory's 10 of 100. The
 * query by correlation id (which shares the memo) likewise. */
static void correlation_lookup_racing_a_stop_fails_and_forgets_nothing(void **state)
{
    fx_t *f = *state;
    fdn_event_list_t *l = NULL;
    arm_stop();
    assert_int_equal(fdn_events_get_by_correlation(f->es, "c", &l), FDN_EUNAVAILABLE);
    assert_int_equal(stops, 1);
    assert_null(l);
    assert_int_equal(fdn__events_service_start(f->es), 0);
    assert_int_equal(fdn_events_get_by_correlation(f->es, "c", &l), 0);
    assert_int_equal(fdn_event_list_count(l), N);
    fdn_event_list_free(l);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = "c";
    q.limit = 1000;
    assert_int_equal(fdn_events_query(f->es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), N);
    fdn_event_list_free(l);
}

/* fdn_events_get of an id only the file holds, racing a stop: FDN_EUNAVAILABLE, not
 * FDN_ENOENT (the event exists). The file's read itself on a stopped store says so too. */
static void get_racing_a_stop_fails(void **state)
{
    fx_t *f = *state;
    fdn_event_t *ev = NULL;
    fdn__events_service_stop(f->es);
    assert_int_equal(fdn__evs_disk_get(f->es, 5, &ev), FDN_EUNAVAILABLE);
    assert_null(ev);
    assert_int_equal(fdn__events_service_start(f->es), 0);
    arm_stop();
    assert_int_equal(fdn_events_get(f->es, 5, &ev), FDN_EUNAVAILABLE);
    assert_int_equal(stops, 1);
    assert_null(ev);
    assert_int_equal(fdn__events_service_start(f->es), 0);
    assert_int_equal(fdn_events_get(f->es, 5, &ev), 0);
    assert_int_equal(fdn_event_id(ev), 5);
    fdn_event_free(ev);
    /* ids memory holds, and ids never given, are answered as before */
    assert_int_equal(fdn_events_get(f->es, N, &ev), 0);
    fdn_event_free(ev);
    assert_int_equal(fdn_events_get(f->es, N + 1, &ev), FDN_ENOENT);
}

static unsigned http_get(fdn_admin_t *a, const char *uri, fdn__http_resp_t *r, const char *want)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "GET", uri, NULL, NULL, 0, r);
    if (want != NULL) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
        if (msg == NULL || strstr(msg, want) == NULL)
            fail_msg("%s: %u, message '%s' lacks '%s'", uri, r->status, msg ? msg : "(none)", want);
    }
    unsigned st = r->status;
    if (st == 503)
        assert_int_equal(r->retry_after_s, 1);
    fdn__http_resp_clear(r);
    return st;
}

/* The HTTP API: a get or query racing a stop answers 503 saying the store is stopped (the get
 * answered 404 "no event with id 5", the query 200 with 10 events); so does one on a stopped
 * store; after the start, 200 in full. */
static void http_read_of_a_stopped_store_is_503(void **state)
{
    fx_t *f = *state;
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = f->es});
    fdn__http_resp_t r;
    static const char *const uris[] = {"/v1/events/5", "/v1/events?after_id=0&limit=1000"};
    for (size_t i = 0; i < 2; i++) {
        arm_stop();
        assert_int_equal(http_get(a, uris[i], &r, "the event store is stopped"), 503);
        assert_int_equal(stops, 1);
        assert_int_equal(http_get(a, uris[i], &r, "the event store is stopped"), 503);
        assert_int_equal(fdn__events_service_start(f->es), 0);
        assert_int_equal(http_get(a, uris[i], &r, NULL), 200);
    }
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", uris[1], NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "count")), N);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fd_sub_read_while_stopped_keeps_its_position, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(fd_sub_read_racing_a_stop_keeps_its_position, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(query_racing_a_stop_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(correlation_lookup_racing_a_stop_fails_and_forgets_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(get_racing_a_stop_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(http_read_of_a_stopped_store_is_503, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
