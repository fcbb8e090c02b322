/* Unit test of waiting queries, GET /v1/events?after_id=N&wait_ms=M (src/admin/event_wait.c),
 * through the admin dispatcher on a memory store: a query that finds events answers at once;
 * one that finds none waits for the first event matching its filters and then answers with
 * it (also when that event was stored before the query began to wait, and not for events of
 * another type); a short wait ends with the empty answer (and, its deadline on a manual clock,
 * when the clock is advanced to it); a stopping server answers every
 * waiting query at once; past the cap a query gets 503 with Retry-After; bad parameters get
 * 422 naming the rule.
 *
 * Synchronisation without wall-clock waits: a waiting query's dispatcher thread blocks until
 * the answer, so the test runs each in a thread of its own and knows it waits once the admin
 * counts it (fdn__admin_events_waiting) and the thread sleeps in a futex wait
 * (test_wait_futex: parked on its answer). Waits are 60 s, the most a query may ask: a test
 * that passes never sits them out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sched.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "event_make.h"
#include "threads.h"

#include <fdn/events.h>
#include <fdn/telemetry.h>

typedef struct fixture {
    fdn_events_t *es;
    fdn_admin_t *a;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    assert_int_equal(fdn_events_create(&f->es, &eo, NULL), 0);
    f->a = test_admin_local(NULL, &(test_admin_mounts_t){.events = f->es});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fdn_admin_destroy(f->a);
    fdn_events_destroy(f->es);
    free(f);
    return 0;
}

static uint64_t append(fdn_events_t *es, const char *type)
{
    fdn_event_t *ev = test_small_event(type);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_free(ev);
    return id;
}

static unsigned get(fdn_admin_t *a, const char *uri, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "GET", uri, NULL, NULL, 0, r);
    return r->status;
}

/* The answer's events: their count, and the first one's id and type. */
static size_t answer_events(const fdn__http_resp_t *r, uint64_t *id0, const char **type0)
{
    assert_int_equal(r->status, 200);
    /* the dispatcher's answer: a JSON tree (fdn__admin_dispatch parses a text body) */
    json_t *j = r->json != NULL ? json_incref(r->json) : NULL;
    if (j == NULL && r->text != NULL) {
        json_error_t je;
        j = json_loadb(r->text, r->text_len, 0, &je);
    }
    assert_non_null(j);
    json_t *evs = json_object_get(j, "events");
    assert_true(json_is_array(evs));
    size_t n = json_array_size(evs);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), (json_int_t)n);
    static char type[64];
    if (n > 0) {
        json_t *e = json_array_get(evs, 0);
        *id0 = (uint64_t)json_integer_value(json_object_get(e, "id"));
        snprintf(type, sizeof type, "%s", json_string_value(json_object_get(e, "type")));
        *type0 = type;
    }
    json_decref(j);
    return n;
}

/* A query dispatched on a thread of its own (it blocks while it waits). */
typedef struct waiting {
    fdn_admin_t *a;
    char uri[256];
    fdn__http_resp_t r;
    test_waiter_t started;
    pid_t tid;
} waiting_t;

static void *waiting_main(void *arg)
{
    waiting_t *w = arg;
    w->tid = test_thread_id();
    test_waiter_add(&w->started, 1);
    get(w->a, w->uri, &w->r);
    return NULL;
}

/* The waiting query w was answered with events (n of them; n > 0: the first is id) and is
 * done: its answer and latch are freed. */
static void waited(waiting_t *w, size_t n, uint64_t id)
{
    uint64_t id0 = 0;
    const char *t0 = NULL;
    assert_int_equal(answer_events(&w->r, &id0, &t0), n);
    if (n > 0)
        assert_int_equal(id0, id);
    fdn__http_resp_clear(&w->r);
    test_waiter_destroy(&w->started);
}

/* Start a waiting query and return once it waits: n queries are counted and its thread
 * sleeps on its answer. */
static void start_waiting(test_threads_t *g, waiting_t *w, fdn_admin_t *a, const char *uri,
                          size_t n)
{
    memset(w, 0, sizeof *w);
    w->a = a;
    snprintf(w->uri, sizeof w->uri, "%s", uri);
    test_waiter_init(&w->started);
    test_threads_start(g, waiting_main, w);
    test_waiter_wait(&w->started, 1);
    while (fdn__admin_events_waiting(a) < n)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    test_wait_futex(w->tid);
}

static void events_found_answer_at_once(void **state)
{
    fixture_t *f = *state;
    uint64_t id = append(f->es, "a.x");
    fdn__http_resp_t r;
    get(f->a, "/v1/events?after_id=0&wait_ms=60000", &r);
    uint64_t id0 = 0;
    const char *t0 = NULL;
    assert_int_equal(answer_events(&r, &id0, &t0), 1);
    assert_int_equal(id0, id);
    fdn__http_resp_clear(&r);
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
    /* wait_ms=0: no wait, whatever the other parameters */
    get(f->a, "/v1/events?after_id=5&wait_ms=0&order=desc", &r);
    assert_int_equal(answer_events(&r, &id0, &t0), 0);
    fdn__http_resp_clear(&r);
}

static void a_matching_event_ends_the_wait(void **state)
{
    fixture_t *f = *state;
    uint64_t before = append(f->es, "a.x");
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w;
    char uri[128];
    snprintf(uri, sizeof uri, "/v1/events?after_id=%llu&type=b.y&wait_ms=60000",
             (unsigned long long)before);
    start_waiting(&g, &w, f->a, uri, 1);
    append(f->es, "a.x"); /* another type: not an answer */
    uint64_t id = append(f->es, "b.y");
    test_threads_join(&g);
    waited(&w, 1, id); /* of type b.y: the query's type filter */
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
}

/* Events of other types after the cursor when the query starts waiting do not end the wait;
 * the matching one does. */
static void other_events_after_the_cursor_do_not_end_it(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 5; i++)
        append(f->es, "a.x");
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w;
    start_waiting(&g, &w, f->a, "/v1/events?after_id=0&type=c.z&wait_ms=60000", 1);
    /* a wrong wake answers the empty list, which the check below tells */
    uint64_t id = append(f->es, "c.z");
    test_threads_join(&g);
    waited(&w, 1, id);
}

/* A cursor ahead of the store: the events up to it wake the query's subscription (they are
 * new) but are not after the cursor; only the next one ends the wait. */
static void events_up_to_the_cursor_do_not_end_it(void **state)
{
    fixture_t *f = *state;
    uint64_t last = append(f->es, "a.x");
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w;
    char uri[128];
    snprintf(uri, sizeof uri, "/v1/events?after_id=%llu&wait_ms=60000",
             (unsigned long long)(last + 3));
    start_waiting(&g, &w, f->a, uri, 1);
    for (int i = 0; i < 3; i++)
        append(f->es, "a.x");
    uint64_t id = append(f->es, "a.x");
    test_threads_join(&g);
    assert_int_equal(id, last + 4);
    waited(&w, 1, id);
}

static void a_wait_ends_empty_at_its_deadline(void **state)
{
    fixture_t *f = *state;
    append(f->es, "a.x");
    fdn__http_resp_t r;
    get(f->a, "/v1/events?after_id=1&wait_ms=1", &r);
    uint64_t id0 = 0;
    const char *t0 = NULL;
    assert_int_equal(answer_events(&r, &id0, &t0), 0);
    fdn__http_resp_clear(&r);
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
}

/* With the deadlines on a manual clock (fdn__admin_events_wait_clock, as the engine tests set
 * it), a wait ends when the clock reaches its deadline and the waiters' thread is told
 * (fdn__admin_events_wait_tick), not while the clock stands, however long that takes. */
static void a_deadline_on_a_manual_clock_fires_when_advanced(void **state)
{
    fixture_t *f = *state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(f->a, clk);
    append(f->es, "a.x");
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w;
    /* 60 s: on the system's clock it would outlast ctest's TIMEOUT */
    start_waiting(&g, &w, f->a, "/v1/events?after_id=1&wait_ms=60000", 1);
    fdn__admin_events_wait_tick(f->a); /* the clock stands: it waits on */
    assert_int_equal(fdn_clock_advance(clk, 60000000000LL), 0);
    fdn__admin_events_wait_tick(f->a);
    test_threads_join(&g);
    waited(&w, 0, 0);
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
    fdn_admin_shutdown(f->a); /* no waiter thread reads the clock after this */
    fdn_clock_destroy(clk);
}

static void shutdown_answers_waiting_queries(void **state)
{
    fixture_t *f = *state;
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w[2];
    start_waiting(&g, &w[0], f->a, "/v1/events?after_id=0&wait_ms=60000", 1);
    start_waiting(&g, &w[1], f->a, "/v1/events?after_id=0&type=q.q&wait_ms=60000", 2);
    fdn_admin_shutdown(f->a); /* returns once every deferred request is answered */
    test_threads_join(&g);
    for (int i = 0; i < 2; i++)
        waited(&w[i], 0, 0);
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
    /* after the shutdown a query answers at once */
    fdn__http_resp_t r;
    get(f->a, "/v1/events?after_id=0&wait_ms=60000", &r);
    uint64_t id0 = 0;
    const char *t0 = NULL;
    assert_int_equal(answer_events(&r, &id0, &t0), 0);
    fdn__http_resp_clear(&r);
}

static void past_the_cap_is_503(void **state)
{
    fixture_t *f = *state;
    fdn__admin_events_wait_max(f->a, 2);
    test_threads_t g;
    test_threads_init(&g, 0);
    waiting_t w[2];
    start_waiting(&g, &w[0], f->a, "/v1/events?after_id=0&wait_ms=60000", 1);
    start_waiting(&g, &w[1], f->a, "/v1/events?after_id=0&wait_ms=60000", 2);
    fdn__http_resp_t r;
    assert_int_equal(get(f->a, "/v1/events?after_id=0&wait_ms=60000", &r), 503);
    assert_int_equal(r.retry_after_s, 1);
    const char *msg =
        json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "2 queries wait for events already"));
    fdn__http_resp_clear(&r);
    uint64_t id = append(f->es, "a.x"); /* answers both */
    test_threads_join(&g);
    for (int i = 0; i < 2; i++)
        waited(&w[i], 1, id);
}

/* GET /metrics text of a (the dispatcher's answer). */
static void metrics_has(fdn_admin_t *a, const char *line)
{
    fdn__http_resp_t r;
    assert_int_equal(get(a, "/metrics", &r), 200);
    assert_non_null(r.text);
    if (strstr(r.text, line) == NULL)
        fail_msg("no \"%s\" in /metrics:\n%s", line, r.text);
    fdn__http_resp_clear(&r);
}

/* fdn_http_waiting_queries: the server's own line without telemetry, telemetry's gauge with
 * it; the count of queries waiting at the scrape. */
static void waiting_queries_are_a_gauge(void **state)
{
    fixture_t *f = *state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_admin_t *with_tm =
        test_admin_local(NULL, &(test_admin_mounts_t){.events = f->es, .telemetry = tm});
    fdn_admin_t *admins[2] = {f->a, with_tm};
    for (int k = 0; k < 2; k++) {
        metrics_has(admins[k], "# TYPE fdn_http_waiting_queries gauge\n");
        metrics_has(admins[k], "\nfdn_http_waiting_queries 0\n");
        test_threads_t g;
        test_threads_init(&g, 0);
        waiting_t w;
        start_waiting(&g, &w, admins[k], "/v1/events?after_id=1000&wait_ms=60000", 1);
        metrics_has(admins[k], "\nfdn_http_waiting_queries 1\n");
        fdn_admin_shutdown(admins[k]); /* answers it */
        test_threads_join(&g);
        fdn__http_resp_clear(&w.r);
        test_waiter_destroy(&w.started);
        metrics_has(admins[k], "\nfdn_http_waiting_queries 0\n");
    }
    fdn_admin_destroy(with_tm);
    fdn_telemetry_destroy(tm);
}

static void bad_parameters_are_422(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *uri, *msg;
    } bad[] = {
        {"/v1/events?after_id=0&wait_ms=-1", "'wait_ms' must be an integer in [0, 60000]"},
        {"/v1/events?after_id=0&wait_ms=60001", "'wait_ms' must be an integer in [0, 60000]"},
        {"/v1/events?after_id=0&wait_ms=soon", "'wait_ms' must be an integer in [0, 60000]"},
        {"/v1/events?wait_ms=100", "'wait_ms' needs 'after_id'"},
        {"/v1/events?after_id=0&wait_ms=100&order=desc", "'wait_ms' needs order 'asc'"},
        {"/v1/events?after_id=0&wait_ms=100&since=0", "cannot be combined with 'since'"},
        {"/v1/events?after_id=0&wait_ms=100&until=0", "cannot be combined with 'since'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fdn__http_resp_t r;
        if (get(f->a, bad[i].uri, &r) != 422)
            fail_msg("%s: %u", bad[i].uri, r.status);
        const char *msg =
            json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        if (msg == NULL || strstr(msg, bad[i].msg) == NULL)
            fail_msg("%s: %s", bad[i].uri, msg ? msg : "(no message)");
        fdn__http_resp_clear(&r);
    }
    assert_int_equal(fdn__admin_events_waiting(f->a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(events_found_answer_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_matching_event_ends_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(other_events_after_the_cursor_do_not_end_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(events_up_to_the_cursor_do_not_end_it, setup, teardown),
        cmocka_unit_test_setup_teardown(a_wait_ends_empty_at_its_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(a_deadline_on_a_manual_clock_fires_when_advanced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(shutdown_answers_waiting_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(past_the_cap_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(waiting_queries_are_a_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_parameters_are_422, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
