/* Engine test of the event endpoints of a store on PostgreSQL while the store or the server
 * stops (src/admin/api_events.c, src/admin/event_wait.c; docs/http-api.md), on a cluster of
 * the test's own (scripts/pg-server.sh), which one test stops (SIGSTOP), so the shared fixture
 * is never disturbed:
 *  - a POST to a store that is stopped answers 503 saying the store is stopping, with
 *    Retry-After as before, not that its PostgreSQL is unavailable (which a POST refused by an
 *    open breaker still says: that is PostgreSQL away);
 *  - the server's shutdown answers its waiting queries (GET /v1/events?after_id=N&wait_ms=M)
 *    without a call on PostgreSQL: with PostgreSQL stopped and N queries waiting, the
 *    shutdown makes no query on it (fdn_events_backend_request_duration_seconds{op="query"}
 *    counts none; its time is printed, where a query per waiter took N call bounds, one
 *    after the other); each waiter gets the empty answer and resumes from its cursor;
 *  - calls on a hung PostgreSQL that server threads make (a handed-off waiter's render, a
 *    plain GET) are cut at the server's shutdown deadline (the server threads' cut
 *    descriptor, fdn_events_set_thread_cut_fd): the shutdown returns while PostgreSQL is
 *    still stopped, both requests answer 503, both calls count as cancelled, not as failures;
 *  - so is a server thread's call waiting for the store's only pooled connection, which a call
 *    of another thread holds on the stopped PostgreSQL: the shutdown does not wait for it.
 * A waiting query's thread blocks in the dispatcher until it is answered; the test goes on
 * once the server counts the waiters (no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fdn/admin.h>
#include <fdn/breaker.h>
#include <fdn/events.h>
#include <fdn/telemetry.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "engine.h"
#include "pg_fixture.h"
#include "services/event_store_int.h"

static test_engine_server_t *g_pg;

/* A store on the test's cluster, its calls and connections bounded by call_ms. */
/* The options of a store on schema whose PostgreSQL calls and connects are bounded by
 * call_ms. */
static void bounded_opts(fdn_events_opts_t *o, const char *schema, int64_t call_ms)
{
    test_pg_store_opts(o, g_pg->url, schema);
    o->postgres.command_timeout_ms = call_ms;
    o->postgres.connect_timeout_ms = call_ms;
}

static fdn_events_t *open_store(const char *schema, int64_t call_ms)
{
    fdn_events_opts_t o;
    bounded_opts(&o, schema, call_ms);
    return test_pg_store_open_short(&o); /* bounds down to 1 s: see pg_fixture.h */
}

/* A telemetry set as es's (its PostgreSQL calls counted there); traced_end takes it off and
 * destroys the store, then the telemetry. */
static fdn_telemetry_t *traced(fdn_events_t *es)
{
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    return tm;
}

static void traced_end(fdn_events_t *es, fdn_telemetry_t *tm)
{
    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

static fdn_admin_t *admin_on(fdn_events_t *es)
{
    return test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
}

/* POST uri with body; the answer in *r (free it with fdn__http_resp_clear). */
static unsigned post(fdn_admin_t *a, const char *uri, const char *body, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", uri, NULL, body, strlen(body), r);
    return r->status;
}

/* The message of an error answer. */
static const char *error_message(const fdn__http_resp_t *r)
{
    json_t *err = json_object_get(r->json, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    return msg;
}

/* A 503 of a store that stops: says so, blames nothing else, Retry-After as before (1 s). */
static void expect_stopping(const fdn__http_resp_t *r)
{
    assert_int_equal(r->status, 503);
    const char *msg = error_message(r);
    if (strstr(msg, "stopping") == NULL || strstr(msg, "PostgreSQL") != NULL)
        fail_msg("the 503 of a stopped store says: %s", msg);
    assert_int_equal(r->retry_after_s, 1);
}

static void a_stopped_store_answers_stopping_not_postgres_away(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stop503");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS);
    fdn_admin_t *a = admin_on(es);
    static const char one[] = "{\"type\":\"stop.one\",\"data\":{\"k\":1}}";
    static const char batch[] = "{\"events\":[{\"type\":\"stop.b\",\"data\":1},"
                                "{\"type\":\"stop.b\",\"data\":2}]}";
    fdn__http_resp_t r;
    assert_int_equal(post(a, "/v1/events", one, &r), 201);
    fdn__http_resp_clear(&r);

    /* PostgreSQL away (the breaker forced open, no spool): the writer's refusal names it */
    fdn_breaker_t *br = NULL;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    assert_int_equal(fdn_breaker_create(&br, "events.postgres.stop503", &bo), 0);
    assert_int_equal(fdn_events_set_breaker(es, br), 0);
    fdn_breaker_force_open(br);
    assert_int_equal(post(a, "/v1/events", one, &r), 503);
    assert_non_null(strstr(error_message(&r), "the event store's PostgreSQL is unavailable"));
    assert_true(r.retry_after_s >= 1);
    fdn__http_resp_clear(&r);
    assert_int_equal(fdn_events_set_breaker(es, NULL), 0);
    fdn_breaker_destroy(br);

    /* the store stopped (a shutdown, or a restart by its supervisor): the call refuses it */
    fdn__events_service_stop(es);
    post(a, "/v1/events", one, &r);
    expect_stopping(&r);
    fdn__http_resp_clear(&r);
    post(a, "/v1/events/batch", batch, &r);
    expect_stopping(&r);
    fdn__http_resp_clear(&r);

    /* started again, it stores */
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(post(a, "/v1/events", one, &r), 201);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

/* ---- waiting queries at shutdown ---- */

typedef struct query {
    fdn_admin_t *a;
    char uri[160];
    fdn__http_resp_t r;
} query_t;

static void *query_main(void *arg)
{
    query_t *q = arg;
    memset(&q->r, 0, sizeof q->r);
    fdn__admin_dispatch(q->a, "GET", q->uri, NULL, NULL, 0, &q->r);
    return NULL;
}

/* Queries the store made on PostgreSQL so far (both outcomes). */
static uint64_t pg_queries(fdn_telemetry_t *tm)
{
    return test_pg_backend_calls(tm, "query");
}

static void shutdown_answers_waiters_without_postgres(void **state)
{
    (void)state;
    /* CALL_MS bounds the waiters' own queries too, made with PostgreSQL up: 10 s, as a loaded
     * machine may stall one past 2 s (a query per waiter at shutdown took N x CALL_MS) */
    enum { N = 6, CALL_MS = 10000 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopwait");
    fdn_events_t *es = open_store(schema, CALL_MS);
    fdn_telemetry_t *tm = traced(es);
    fdn_admin_t *a = admin_on(es);
    fdn_clock_t *clk = NULL; /* stands still: only the shutdown ends the waits */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);

    /* N queries wait (each ran once on PostgreSQL, found nothing: an empty log) */
    static query_t q[N];
    pthread_t th[N];
    for (unsigned i = 0; i < N; i++) {
        q[i].a = a;
        snprintf(q[i].uri, sizeof q[i].uri, "/v1/events?after_id=0&type=stop.w%u&wait_ms=60000", i);
        assert_int_equal(pthread_create(&th[i], NULL, query_main, &q[i]), 0);
    }
    while (fdn__admin_events_waiting(a) < N)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    uint64_t before = pg_queries(tm);
    assert_true(before >= N);

    /* PostgreSQL hangs: a query on it would take CALL_MS before it fails */
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    int64_t t0 = test_now_ms();
    fdn_admin_shutdown(a); /* returns once every deferred request is answered */
    int64_t took = test_now_ms() - t0;
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    uint64_t after = pg_queries(tm);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    print_message("shutdown with %d waiters, PostgreSQL stopped: %lld ms, %llu queries on it\n", N,
                  (long long)took, (unsigned long long)(after - before));

    if (after != before)
        fail_msg("the shutdown made %llu queries on PostgreSQL for %d waiters (in %lld ms)",
                 (unsigned long long)(after - before), N, (long long)took);
    /* (the time is printed, not asserted: the count above is the check; a query per waiter
     * took N x CALL_MS here) */
    for (unsigned i = 0; i < N; i++) {
        if (q[i].r.status != 200)
            fail_msg("waiter %u answered %u at shutdown", i, q[i].r.status);
        json_t *evs = json_object_get(q[i].r.json, "events");
        assert_true(json_is_array(evs));
        assert_int_equal(json_array_size(evs), 0); /* nothing yet: resume from after_id */
        assert_int_equal(json_integer_value(json_object_get(q[i].r.json, "count")), 0);
        fdn__http_resp_clear(&q[i].r);
    }
    assert_int_equal(fdn__admin_events_waiting(a), 0);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    traced_end(es, tm);
}

/* ---- calls on a hung PostgreSQL cut at the shutdown deadline ---- */

/* Calls of the store on PostgreSQL of operation op that ended with outcome. */
static uint64_t pg_calls(fdn_telemetry_t *tm, const char *op, const char *outcome)
{
    static const char *const labels[] = {"op", "outcome"};
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "fdn_events_backend_request_duration_seconds",
                                          NULL, FDN_TELEMETRY_HISTOGRAM, labels, 2, 64),
                     0);
    const char *v[] = {op, outcome};
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, v, 2), 0);
    fdn_telemetry_hist_stats_t st;
    fdn_histogram_stats(h, &st);
    return st.count;
}

/* The scrape's HELP line of the calls' histogram names every outcome it carries, "cancelled"
 * too (it named only ok and error). */
static void expect_help_names_cancelled(fdn_telemetry_t *tm)
{
    const char *text = NULL;
    size_t len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(tm, false, &text, &len), 0);
    const char *help = strstr(text, "# HELP fdn_events_backend_request_duration_seconds ");
    assert_non_null(help);
    const char *eol = strchr(help, '\n');
    assert_non_null(eol);
    print_message("%.*s\n", (int)(eol - help), help);
    const char *c = strstr(help, "cancelled");
    assert_true(c != NULL && c < eol);
    fdn_telemetry_text_release(text);
}

/* n events of type `type` stored through es. */
static void store_n(fdn_events_t *es, const char *type, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        fdn_event_t *ev = test_pg_event(type, NULL, 0, i, 0, 0);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        fdn_event_free(ev);
    }
}

/* The statuses the server answered on GET /v1/events (its request hook, on server threads). */
typedef struct answered {
    pthread_mutex_t mu;
    unsigned ok, unavailable, other;
} answered_t;

static void on_answer(const fdn_admin_request_info_t *info, void *user)
{
    answered_t *an = user;
    if (info->route == NULL || strcmp(info->route, "/v1/events") != 0)
        return;
    pthread_mutex_lock(&an->mu);
    if (info->status == 200)
        an->ok++;
    else if (info->status == 503)
        an->unavailable++;
    else
        an->other++;
    pthread_mutex_unlock(&an->mu);
}

/* With PostgreSQL hung and its calls bounded by far more than the server's shutdown_timeout_ms,
 * two server threads are blocked in a query on it: a handed-off waiter's render (memory evicted
 * its positions during its wait; a deferred request) and a plain GET /v1/events (not deferred:
 * MHD_stop_daemon joins its thread). fdn_admin_shutdown cuts both calls at its deadline (the
 * server threads' cut descriptor): it returns while PostgreSQL is still stopped (were it not
 * cut, it would return after CALL_MS, past ctest's TIMEOUT), both requests answered 503, both
 * queries counted as cancelled (not as failures of PostgreSQL). The cut ends with the shutdown:
 * a request dispatched in process after it is answered by PostgreSQL. The store, which outlives
 * the server, then serves queries again on other threads, on fresh connections. */
static void shutdown_cuts_postgres_calls_of_its_threads(void **state)
{
    (void)state;
    enum { CALL_MS = 600000 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopcut");
    fdn_events_opts_t eo;
    bounded_opts(&eo, schema, CALL_MS);
    /* the follower reads once a second: its read (op "read", not cut: not a server thread)
     * may be one of the calls counted below */
    eo.postgres.poll_interval_ms = 1000;
    fdn_events_t *es = test_pg_store_open(&eo);
    fdn_telemetry_t *tm = traced(es);
    static answered_t an = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.shutdown_timeout_ms = 300;
    ao.threads = 4; /* the plain GET is read while the render holds another thread */
    ao.on_request = on_answer;
    ao.request_user = &an;
    fdn_admin_t *a = test_admin_local(&ao, &(test_admin_mounts_t){.events = es});
    fdn_clock_t *clk = NULL; /* the waiter's deadline fires when the test advances it */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = fdn_admin_port(a);

    store_n(es, "cut.old", 3);
    int cw = test_admin_raw_get(port, "/v1/events?after_id=3&type=cut.quiet&wait_ms=2000");
    while (fdn__admin_events_waiting(a) < 1)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    /* positions 4..6, then memory keeps only the newest: the waiter's answer needs PostgreSQL */
    store_n(es, "cut.noise", 3);
    assert_int_equal(fdn_events_set_max_events(es, 1), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    uint64_t errors0 = pg_calls(tm, "query", "error");
    uint64_t cut0 = pg_calls(tm, "query", "cancelled");

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    fdn_events_backend_status_t bs = {0};
    assert_int_equal(fdn_events_backend_status(es, &bs), 0);
    uint64_t calls0 = bs.calls;
    assert_int_equal(fdn__admin_events_waiting(a), 1); /* no deadline fired: the clock stands */
    int cp = test_admin_raw_get(port, "/v1/events?type=cut.plain"); /* a query on PostgreSQL */
    assert_int_equal(fdn_clock_advance(clk, 2000000000LL), 0);
    fdn__admin_events_wait_tick(a);
    /* the waiter expires and is handed off: both queries are begun on PostgreSQL, and hang
     * (the plain GET, sent before, was read by then; a query not yet begun at the deadline
     * would be cut when it begins) */
    do {
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        assert_int_equal(fdn_events_backend_status(es, &bs), 0);
    } while (fdn__admin_events_waiting(a) > 0 || bs.calls < calls0 + 2);

    fdn_admin_shutdown(a); /* returns: both calls were cut (else it would wait CALL_MS) */
    uint64_t cut = pg_calls(tm, "query", "cancelled") - cut0;
    uint64_t errors = pg_calls(tm, "query", "error") - errors0;
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    print_message("shutdown with two queries held by a stopped PostgreSQL: %llu cut, %u answered "
                  "503\n",
                  (unsigned long long)cut, an.unavailable);
    assert_int_equal(cut, 2);
    assert_int_equal(errors, 0); /* a cut is no failure of PostgreSQL (nor of its breaker) */
    expect_help_names_cancelled(tm);
    pthread_mutex_lock(&an.mu);
    assert_int_equal(an.unavailable, 2);
    assert_int_equal(an.other, 0);
    pthread_mutex_unlock(&an.mu);
    close(cw);
    close(cp);

    /* the cut ends with the shutdown: an in-process request after it (the dispatcher names
     * the server's cut descriptor on its thread, as a server thread does) is answered by
     * PostgreSQL again, not cut (before, the descriptor stayed readable: 503, cancelled) */
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/v1/events?type=cut.old", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 3);
    fdn__http_resp_clear(&r);
    assert_int_equal(pg_calls(tm, "query", "cancelled") - cut0, 2);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);

    /* the store outlives the server, and its calls from other threads are not cut */
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "cut.old";
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(l->n, 3);
    fdn_event_list_free(l);
    traced_end(es, tm);
}

/* The store's pool: connections open, idle, callers waiting for one, and of those the ones
 * whose thread has a cut descriptor (a server thread's). */
static void pool_counts(fdn_events_t *es, size_t *open, size_t *idle, size_t *waiting,
                        size_t *cut_waiting)
{
    fdn__evb_pg_test_pool(&es->be, open, idle, waiting, cut_waiting);
}

/* A call of another thread (not a server thread: not cut) on the store: the events of one
 * correlation id, always read on PostgreSQL. */
typedef struct corr_call {
    fdn_events_t *es;
    const char *corr;
    int rc;
} corr_call_t;

static void *corr_main(void *arg)
{
    corr_call_t *c = arg;
    fdn_event_list_t *l = NULL;
    c->rc = fdn_events_get_by_correlation(c->es, c->corr, &l);
    fdn_event_list_free(l);
    return NULL;
}

/* A store whose pool has one connection, held by a call of another thread (not a server
 * thread: not cut) on a hung PostgreSQL, bounded by CALL_MS; a GET /v1/events on a server
 * thread waits for that connection. fdn_admin_shutdown cuts the wait at its deadline: it
 * returns while PostgreSQL is still stopped and the connection still held, the request
 * answered 503, its query counted as cancelled (no failure of PostgreSQL). Before, the wait
 * ended only when the holder put the connection back (after CALL_MS: past ctest's TIMEOUT).
 * PostgreSQL resumed, the holder's call is served, and the pool is its one connection, idle. */
static void shutdown_cuts_a_wait_for_a_pooled_connection(void **state)
{
    (void)state;
    enum { CALL_MS = 600000 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "poolcut");
    fdn_events_opts_t eo;
    bounded_opts(&eo, schema, CALL_MS);
    eo.postgres.pool_size = 1;
    eo.postgres.poll_interval_ms = CALL_MS; /* the follower reads only when notified: never */
    fdn_telemetry_t *tm = NULL; /* from the open on: the follower's first read is counted */
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    eo.telemetry = tm;
    fdn_events_t *es = test_pg_store_open(&eo);
    static answered_t an = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.shutdown_timeout_ms = 300;
    ao.threads = 2;
    ao.on_request = on_answer;
    ao.request_user = &an;
    fdn_admin_t *a = test_admin_local(&ao, &(test_admin_mounts_t){.events = es});
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = fdn_admin_port(a);
    size_t open = 0, idle = 0, waiting = 0, cut_waiting = 0;
    /* the store's first reads are done: its head, and the follower's first page (once its
     * listener connected; its only "read": it reads no more, its poll being CALL_MS). Not
     * waited for, that read could begin after the SIGSTOP below and wait for the held
     * connection as a cut waiter (the follower's thread names the store's stop descriptor),
     * counted as the server thread's wait (a failure of this test seen once in CI) */
    do {
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        pool_counts(es, &open, &idle, &waiting, &cut_waiting);
    } while (test_pg_backend_calls(tm, "read") == 0 || idle != open || waiting != 0);
    uint64_t errors0 = pg_calls(tm, "query", "error");
    uint64_t cut0 = pg_calls(tm, "query", "cancelled");

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    corr_call_t held = {.es = es, .corr = "poolcut-c", .rc = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, corr_main, &held), 0);
    do { /* a call not cut (the holder's, or the follower's) holds the only connection */
        sched_yield();
        pool_counts(es, &open, &idle, &waiting, &cut_waiting);
    } while (open != 1 || idle != 0);
    int cp = test_admin_raw_get(port, "/v1/events?type=poolcut.plain"); /* a query */
    do { /* the server thread's query waits for the connection (in poll: its thread has a cut
          * descriptor; the follower's thread names one too, but waits on its listener) */
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        pool_counts(es, &open, &idle, &waiting, &cut_waiting);
    } while (cut_waiting != 1);

    fdn_admin_shutdown(a); /* returns: the wait was cut (else it would wait CALL_MS) */
    uint64_t cut = pg_calls(tm, "query", "cancelled") - cut0;
    uint64_t errors = pg_calls(tm, "query", "error") - errors0;
    pool_counts(es, &open, &idle, &waiting, &cut_waiting);
    assert_int_equal(open, 1); /* still held: the cut took nothing from its holder */
    assert_int_equal(idle, 0);
    assert_int_equal(cut_waiting, 0);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    pthread_join(th, NULL);
    assert_int_equal(held.rc, 0); /* served once PostgreSQL answered */
    assert_int_equal(cut, 1);
    assert_int_equal(errors, 0); /* a cut is no failure of PostgreSQL */
    pthread_mutex_lock(&an.mu);
    assert_int_equal(an.unavailable, 1);
    assert_int_equal(an.other, 0);
    pthread_mutex_unlock(&an.mu);
    close(cp);
    do {               /* no slot leaked: the pool comes back to its one connection, idle */
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        pool_counts(es, &open, &idle, &waiting, &cut_waiting);
    } while (idle != 1 || waiting != 0);
    assert_int_equal(open, 1);
    fdn_admin_destroy(a);
    traced_end(es, tm);
}

/* ---- a breaker removed while its calls are in flight ---- */

/* fdn_events_set_breaker returns once every call the old breaker admitted has reported to it,
 * so its caller may free it at once (events.h). It returned at once: a TSan run of the test
 * above caught the follower's call reading the breaker the test had just destroyed. With
 * PostgreSQL stopped, a call admitted by the breaker hangs until its bound (CALL_MS) and then
 * records its failure on it: that failure must be on the breaker when the removal returns. */
static void removing_the_breaker_waits_for_its_calls(void **state)
{
    (void)state;
    enum { CALL_MS = 1000 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "unguard");
    fdn_events_t *es = open_store(schema, CALL_MS);
    fdn_breaker_t *br = NULL;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 1000; /* stays closed: every call is admitted */
    assert_int_equal(fdn_breaker_create(&br, "events.postgres.unguard", &bo), 0);
    assert_int_equal(fdn_events_set_breaker(es, br), 0);
    fdn_events_backend_status_t st = {0};
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    uint64_t calls0 = st.calls;

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    static corr_call_t c;
    c.es = es;
    c.corr = "unguard-c";
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, corr_main, &c), 0);
    /* a call admitted by the breaker (this one, or the follower's poll) hangs on PostgreSQL */
    do {
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
        assert_int_equal(fdn_events_backend_status(es, &st), 0);
    } while (st.calls == calls0);
    assert_int_equal(fdn_events_set_breaker(es, NULL), 0);
    fdn_breaker_status_t bs;
    assert_int_equal(fdn_breaker_status(br, &bs), 0);
    if (bs.total_failures == 0)
        fail_msg("the breaker was removed with a call it admitted still in flight");
    fdn_breaker_destroy(br); /* nothing reads it now (TSan and ASan would say so) */
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    pthread_join(th, NULL);
    print_message("the correlation call answered %d\n", c.rc);
    fdn_events_destroy(es);
}

/* ---- durable appends waiting on a hung PostgreSQL at the shutdown deadline ---- */

/* A raw client of the server on 127.0.0.1:port: sends `POST uri` with body and reads nothing
 * yet. Returns its socket. */
static int raw_post(uint16_t port, const char *uri, const char *body)
{
    int fd = test_admin_raw_connect(port);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     uri, strlen(body), body);
    assert_true(n > 0 && (size_t)n < sizeof req);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    return fd;
}

/* The whole answer on fd, up to the server's close (a withdrawn answer closes it). */
static void read_to_close(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = recv(fd, buf + got, cap - 1 - got, 0)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
}

/* Answers of route withdrawn at the shutdown deadline (fdn_http_requests_withdrawn_total). */
static uint64_t withdrawn_metric(fdn_telemetry_t *tm, const char *route)
{
    static const char *const labels[] = {"method", "route", "outcome"};
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "fdn_http_requests_withdrawn_total", NULL,
                                          FDN_TELEMETRY_COUNTER, labels, 3, 64),
                     0);
    const char *v[] = {"POST", route, "unknown"};
    fdn_counter_t *k = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &k, v, 3), 0);
    return fdn_counter_value(k);
}

/* Events the store holds with correlation id cid (on PostgreSQL). */
static size_t stored_with(fdn_events_t *es, const char *cid)
{
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, cid, &l), 0);
    size_t n = l->n;
    fdn_event_list_free(l);
    return n;
}

/* With PostgreSQL hung (SIGSTOP) and its calls bounded by far more than the server's
 * shutdown_timeout_ms, durable appends (two POST /v1/events, one POST /v1/events/batch of two)
 * wait for the writer's commit, which hangs: fdn_admin_shutdown withdraws their answers at its
 * deadline and returns while PostgreSQL is still stopped (before, it waited for the writer: a
 * CALL_MS per batch, past ctest's TIMEOUT). Each client gets 503 saying the outcome is unknown
 * (outcome=unknown in the error's context), and its connection closed; the withdrawals are
 * counted. The events are not lost by the store: once PostgreSQL continues, the writer commits
 * them, each exactly once, and its completions find their requests withdrawn (the server is
 * destroyed by then: AddressSanitizer and ThreadSanitizer watch that they touch no freed
 * memory). */
static void shutdown_withdraws_appends_waiting_for_their_commit(void **state)
{
    (void)state;
    enum { CALL_MS = 600000, N = 3 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopapp");
    fdn_events_opts_t eo;
    bounded_opts(&eo, schema, CALL_MS);
    eo.postgres.poll_interval_ms = 1000;
    fdn_events_t *es = test_pg_store_open(&eo);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.shutdown_timeout_ms = 300;
    fdn_admin_t *a = test_admin_local(&ao, &(test_admin_mounts_t){.events = es, .telemetry = tm});
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = fdn_admin_port(a);
    char id[64];
    snprintf(id, sizeof id, "%s", schema); /* unique to this run: the correlation ids' stem */
    char cid[4][96], body[N][512];
    for (unsigned i = 0; i < 4; i++)
        snprintf(cid[i], sizeof cid[i], "%s-%u", id, i);
    snprintf(body[0], sizeof body[0],
             "{\"type\":\"wd.one\",\"data\":{\"k\":0},\"correlation_id\":\"%s\"}", cid[0]);
    snprintf(body[1], sizeof body[1],
             "{\"type\":\"wd.one\",\"data\":{\"k\":1},\"correlation_id\":\"%s\"}", cid[1]);
    snprintf(body[2], sizeof body[2],
             "{\"events\":[{\"type\":\"wd.b\",\"data\":2,\"correlation_id\":\"%s\"},"
             "{\"type\":\"wd.b\",\"data\":3,\"correlation_id\":\"%s\"}]}",
             cid[2], cid[3]);

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    int fd[N];
    fd[0] = raw_post(port, "/v1/events", body[0]);
    fd[1] = raw_post(port, "/v1/events", body[1]);
    fd[2] = raw_post(port, "/v1/events/batch", body[2]);
    /* all three wait for the writer, which waits for PostgreSQL */
    while (fdn__admin_deferred(a) < N)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */

    fdn_admin_shutdown(a); /* returns: the answers were withdrawn (else it waits CALL_MS) */
    uint64_t withdrawn = fdn__admin_withdrawn(a);
    for (unsigned i = 0; i < N; i++) {
        char ans[4096];
        read_to_close(fd[i], ans, sizeof ans);
        close(fd[i]);
        if (strncmp(ans, "HTTP/1.1 503", 12) != 0 || strstr(ans, "outcome is unknown") == NULL ||
            strstr(ans, "\"outcome\":\"unknown\"") == NULL ||
            strstr(ans, "Connection: close") == NULL)
            fail_msg("append %u at the shutdown deadline answered: %s", i, ans);
        if (strstr(ans, "Retry-After") != NULL)
            fail_msg("a withdrawn answer says when to retry (the client must check first): %s",
                     ans);
    }
    assert_int_equal(withdrawn, N);
    assert_int_equal(withdrawn_metric(tm, "/v1/events"), 2);
    assert_int_equal(withdrawn_metric(tm, "/v1/events/batch"), 1);
    fdn_admin_destroy(a); /* before the writer's completions: they must not need the server */

    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    /* a synchronous store is committed after the batches queued before it */
    fdn_event_t *mark = test_pg_event("wd.mark", NULL, 0, 0, 0, 0);
    assert_int_equal(fdn_events_store(es, mark, NULL), 0);
    fdn_event_free(mark);
    for (unsigned i = 0; i < 4; i++)
        if (stored_with(es, cid[i]) != 1)
            fail_msg("event %s stored %zu times after PostgreSQL continued", cid[i],
                     stored_with(es, cid[i]));
    print_message("shutdown with %d appends held by a stopped PostgreSQL: %llu withdrawn, their "
                  "4 events stored once each after SIGCONT\n",
                  N, (unsigned long long)withdrawn);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stopped_store_answers_stopping_not_postgres_away),
        cmocka_unit_test(shutdown_answers_waiters_without_postgres),
        cmocka_unit_test(removing_the_breaker_waits_for_its_calls),
        cmocka_unit_test(shutdown_cuts_postgres_calls_of_its_threads),
        cmocka_unit_test(shutdown_cuts_a_wait_for_a_pooled_connection),
        cmocka_unit_test(shutdown_withdraws_appends_waiting_for_their_commit),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
