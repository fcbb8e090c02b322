/* The stop of a store on PostgreSQL is bounded (src/services/event_shared.c, "Stopping";
 * docs/events-postgres.md, "Stopping"), on a cluster of the test's own (scripts/pg-server.sh),
 * which the tests stop (SIGSTOP) so that every call on it hangs; the calls' own bound is 10
 * minutes, past ctest's TIMEOUT, so a stop that waits for the writer (or the follower) hangs
 * the test: that is the failing mode, no wall-clock assertion here. The stop's bound is short
 * (stop_timeout_ms 300):
 *  - with a spool: a synchronous store inside the writer's append and asynchronous stores
 *    queued behind it when the stop begins are all acknowledged (spooled: ids 0) by the time
 *    the stop returns, with PostgreSQL still stopped; the telemetry event
 *    foundation.event_store.stop_deadline and the status (stop_spooled_events) count them;
 *    once PostgreSQL continues, a store
 *    opened on the same spool replays them, and PostgreSQL holds every acknowledged event
 *    exactly once (the cut append's statement may still commit when the server resumes: the
 *    replay finds its events by their UUIDs, or the late statement fails on them);
 *  - without a spool: those stores fail (FDN_EIO, outcome unknown, or FDN_EUNAVAILABLE for the
 *    append in flight; FDN_EUNAVAILABLE for the queued ones), none acknowledged, the event
 *    counts them as failed; PostgreSQL then holds none of the queued ones, and the cut batch
 *    at most once;
 *  - a follower inside a read on the stopped PostgreSQL does not hold the stop either.
 * Waits are on conditions (callbacks under a mutex, the store's status counters polled by
 * test_wait_until), bounded by deadlines only to fail rather than hang. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>
#include <fdn/telemetry.h>

#include "engine.h"
#include "pg_census.h"
#include "pg_fixture.h"
#include "services/event_store_int.h"
#include "tmpdir.h"

enum {
    CALL_MS = 600000, /* a call's bound: past ctest's TIMEOUT */
    STOP_MS = 300,    /* the stop's */
    NASYNC = 10,      /* asynchronous stores queued behind the append in flight */
    PER = 3,          /* events each */
    MAXS = 64,
};

static test_engine_server_t *g_pg;

/* ---- what the store tells: callbacks, the stop's telemetry event ---- */

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned done;
    int rc[NASYNC + 1];
    uint64_t first[NASYNC + 1];
    int calls[NASYNC + 1];
    /* foundation.event_store.stop_deadline */
    int deadlines;
    double spooled, failed;
    char spool[8];
} rec_t;

static rec_t g_rec;
static unsigned g_slot[NASYNC + 1];

static void rec_reset(void)
{
    pthread_mutex_destroy(&g_rec.mu);
    pthread_cond_destroy(&g_rec.cv);
    memset(&g_rec, 0, sizeof g_rec);
    pthread_mutex_init(&g_rec.mu, NULL);
    pthread_cond_init(&g_rec.cv, NULL);
    for (unsigned i = 0; i <= NASYNC; i++)
        g_slot[i] = i;
}

static void stored(int rc, uint64_t first, size_t n, void *user)
{
    unsigned i = *(unsigned *)user;
    (void)n;
    pthread_mutex_lock(&g_rec.mu);
    g_rec.rc[i] = rc;
    g_rec.first[i] = first;
    g_rec.calls[i]++;
    g_rec.done++;
    pthread_cond_broadcast(&g_rec.cv);
    pthread_mutex_unlock(&g_rec.mu);
}

static void wait_done(unsigned want)
{
    pthread_mutex_lock(&g_rec.mu);
    while (g_rec.done < want) /* a callback that never runs is caught by ctest's TIMEOUT */
        pthread_cond_wait(&g_rec.cv, &g_rec.mu);
    pthread_mutex_unlock(&g_rec.mu);
}

static int on_deadline(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                       const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)user;
    pthread_mutex_lock(&g_rec.mu);
    g_rec.deadlines++;
    for (size_t i = 0; i < nm; i++) {
        if (strcmp(m[i].key, "spooled") == 0)
            g_rec.spooled = m[i].value;
        else if (strcmp(m[i].key, "failed") == 0)
            g_rec.failed = m[i].value;
    }
    for (size_t i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "spool") == 0)
            snprintf(g_rec.spool, sizeof g_rec.spool, "%s", meta[i].value);
    pthread_mutex_unlock(&g_rec.mu);
    return 0;
}

/* A telemetry whose foundation.event_store.stop_deadline events go to on_deadline. */
static fdn_telemetry_t *deadline_telemetry(void)
{
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.stop_deadline",
                                          FDN_TELEMETRY_MATCH_EXACT, on_deadline, NULL),
                     0);
    return tm;
}

/* Store events (w, s..s+n-1) asynchronously; slot i records the callback. */
static void store_async(fdn_events_t *es, unsigned i, unsigned w, unsigned s, unsigned n)
{
    fdn_event_t *evs[PER];
    assert_true(n <= PER);
    for (unsigned k = 0; k < n; k++)
        evs[k] = test_pg_event("stop.async", NULL, w, s + k, 0, 0);
    assert_int_equal(
        fdn_events_store_async(es, (const fdn_event_t *const *)evs, n, NULL, stored, &g_slot[i]),
        0);
    for (unsigned k = 0; k < n; k++)
        fdn_event_free(evs[k]);
}

/* ---- a synchronous store on a thread of its own ---- */

typedef struct sync_store {
    fdn_events_t *es;
    pthread_t t;
    int rc;
    uint64_t ids[2];
} sync_store_t;

static void *sync_main(void *arg)
{
    sync_store_t *ss = arg;
    fdn_event_t *evs[2] = {test_pg_event("stop.sync", NULL, 1, 0, 0, 0),
                           test_pg_event("stop.sync", NULL, 1, 1, 0, 0)};
    ss->ids[0] = ss->ids[1] = UINT64_MAX;
    ss->rc = fdn_events_store_batch(ss->es, (const fdn_event_t *const *)evs, 2, ss->ids);
    fdn_event_free(evs[0]);
    fdn_event_free(evs[1]);
    return NULL;
}

static uint64_t calls_of(fdn_events_t *es)
{
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    return st.calls;
}

/* A store and the telemetry its calls are observed in (each when it ends). */
typedef struct traced {
    fdn_events_t *es;
    fdn_telemetry_t *tm;
} traced_t;

static uint64_t ended(fdn_telemetry_t *tm)
{
    return test_pg_backend_calls(tm, "append") + test_pg_backend_calls(tm, "read") +
           test_pg_backend_calls(tm, "replay");
}

/* A call on PostgreSQL has begun and not ended (with PostgreSQL stopped, it hangs there): the
 * ended ones are read first, so a call that ends meanwhile is not taken for one in flight. */
static bool in_flight(void *arg)
{
    traced_t *t = arg;
    uint64_t done = ended(t->tm);
    return calls_of(t->es) > done;
}

static bool follower_read(void *arg)
{
    return test_pg_backend_calls(arg, "read") >= 1;
}

static bool spool_empty(void *arg)
{
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(arg, &st), 0);
    return st.spooled_events == 0;
}

/* ---- the scenario ---- */

/* A store on schema (spool: its path, or NULL) whose follower sleeps (it makes no call of its
 * own while the test counts the writer's), PostgreSQL stopped with a synchronous store of 2
 * events inside the writer's append and NASYNC asynchronous stores of PER queued behind it;
 * then the store is stopped, which returns (the failing mode hangs here). Event (0, 0) was
 * committed before. */
static void stop_with_postgres_hung(const char *schema, const char *spool, fdn_telemetry_t *tm)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.command_timeout_ms = CALL_MS;
    o.postgres.poll_interval_ms = CALL_MS;
    o.postgres.stop_timeout_ms = STOP_MS;
    o.postgres.spool_path = spool;
    o.telemetry = tm;
    fdn_events_t *es = test_pg_store_open(&o);

    fdn_event_t *ev = test_pg_event("stop.first", NULL, 0, 0, 0, 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0); /* the writer's connection is up */
    fdn_event_free(ev);
    assert_true(id > 0);

    /* the follower's first read (once it connected) is done: it calls no more */
    assert_true(test_wait_until(follower_read, tm, 60000));

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    traced_t tr = {es, tm};
    assert_false(in_flight(&tr));
    sync_store_t ss = {.es = es};
    assert_int_equal(pthread_create(&ss.t, NULL, sync_main, &ss), 0);
    /* the only request queued: the writer's next call is its append, which hangs */
    assert_true(test_wait_until(in_flight, &tr, 60000));
    for (unsigned i = 0; i < NASYNC; i++)
        store_async(es, i, 0, 1 + i * PER, PER);

    fdn__events_service_stop(es); /* returns: the writer was cut at its deadline */
    pthread_join(ss.t, NULL);
    wait_done(NASYNC); /* every callback ran before the stop returned */
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    if (spool != NULL) {
        assert_int_equal(ss.rc, 0); /* spooled: acknowledged, no position yet */
        assert_int_equal(ss.ids[0], 0);
        assert_int_equal(ss.ids[1], 0);
        assert_int_equal(st.spooled_events, 2 + NASYNC * PER);
    } else {
        if (ss.rc != FDN_EIO && ss.rc != FDN_EUNAVAILABLE)
            fail_msg("the store in flight at the deadline returned %s", fdn_err_name(ss.rc));
    }
    for (unsigned i = 0; i < NASYNC; i++) {
        assert_int_equal(g_rec.calls[i], 1);
        assert_int_equal(g_rec.rc[i], spool != NULL ? 0 : FDN_EUNAVAILABLE);
        assert_int_equal(g_rec.first[i], 0);
    }
    /* the status keeps the counts after the stop (the runtime's telemetry stops first) */
    assert_int_equal(st.stop_spooled_events, spool != NULL ? 2 + NASYNC * PER : 0);
    assert_int_equal(st.stop_failed_events, spool != NULL ? 0 : 2 + NASYNC * PER);
    pthread_mutex_lock(&g_rec.mu);
    assert_int_equal(g_rec.deadlines, 1);
    assert_string_equal(g_rec.spool, spool != NULL ? "yes" : "no");
    assert_int_equal((int)g_rec.spooled, spool != NULL ? 2 + NASYNC * PER : 0);
    assert_int_equal((int)g_rec.failed, spool != NULL ? 0 : 2 + NASYNC * PER);
    pthread_mutex_unlock(&g_rec.mu);
    print_message("stop with PostgreSQL stopped, %s: the append in flight %s, %d queued events "
                  "%s\n",
                  spool != NULL ? "a spool" : "no spool", fdn_err_name(ss.rc), NASYNC * PER,
                  spool != NULL ? "spooled" : "failed");

    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    fdn_events_destroy(es);
}

static void stop_spools_what_the_writer_had_not_committed(void **state)
{
    (void)state;
    rec_reset();
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopsp");
    test_tmpfile_t f;
    assert_int_equal(test_tmpfile_make(&f, "stop-spool", "spool.db"), 0);
    fdn_telemetry_t *tm = deadline_telemetry();
    stop_with_postgres_hung(schema, f.path, tm);

    /* the next start replays the spool, PostgreSQL running again */
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.spool_path = f.path;
    fdn_events_t *es = test_pg_store_open(&o);
    assert_true(test_wait_until(spool_empty, es, 60000));
    fdn_events_destroy(es);

    test_pg_census_t *cs = test_pg_census_take(g_pg->url, schema, 1000, 2, MAXS);
    assert_int_equal(test_pg_census_count(cs, 0, 0), 1);
    assert_int_equal(test_pg_census_count(cs, 1, 0), 1);
    assert_int_equal(test_pg_census_count(cs, 1, 1), 1);
    for (unsigned s = 1; s <= NASYNC * PER; s++)
        if (test_pg_census_count(cs, 0, s) != 1)
            fail_msg("acknowledged event (0, %u) stored %u times", s,
                     test_pg_census_count(cs, 0, s));
    assert_int_equal(cs->n, 3 + NASYNC * PER);
    test_pg_census_free(cs);
    fdn_telemetry_destroy(tm);
    test_tmpfile_remove(&f);
}

static void stop_without_a_spool_fails_and_counts(void **state)
{
    (void)state;
    rec_reset();
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopns");
    fdn_telemetry_t *tm = deadline_telemetry();
    stop_with_postgres_hung(schema, NULL, tm);

    /* nothing failed is stored, but the cut append's, whose outcome is unknown: once at most */
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    fdn_events_t *es = test_pg_store_open(&o);
    fdn_event_t *mark = test_pg_event("stop.mark", NULL, 0, MAXS - 1, 0, 0);
    assert_int_equal(fdn_events_store(es, mark, NULL), 0); /* after the late COMMIT, if any */
    fdn_event_free(mark);
    fdn_events_destroy(es);
    test_pg_census_t *cs = test_pg_census_take(g_pg->url, schema, 1000, 2, MAXS);
    assert_int_equal(test_pg_census_count(cs, 0, 0), 1);
    assert_true(test_pg_census_count(cs, 1, 0) <= 1);
    assert_int_equal(test_pg_census_count(cs, 1, 1), test_pg_census_count(cs, 1, 0));
    for (unsigned s = 1; s <= NASYNC * PER; s++)
        assert_int_equal(test_pg_census_count(cs, 0, s), 0);
    test_pg_census_free(cs);
    fdn_telemetry_destroy(tm);
}

/* The follower, its poll due every 50 ms, is inside a read on the stopped PostgreSQL (the
 * store's calls count it) when the store stops: the stop cuts it at once. The store has
 * nothing to commit, so no deadline passes and no telemetry event is emitted. */
static void stop_cuts_the_followers_read(void **state)
{
    (void)state;
    rec_reset();
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stopfo");
    fdn_telemetry_t *tm = deadline_telemetry();
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.command_timeout_ms = CALL_MS;
    o.postgres.poll_interval_ms = 50;
    o.postgres.stop_timeout_ms = STOP_MS;
    o.telemetry = tm;
    fdn_events_t *es = test_pg_store_open(&o);
    assert_true(test_wait_until(follower_read, tm, 60000)); /* it has connected */
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    traced_t tr = {es, tm};
    assert_true(test_wait_until(in_flight, &tr, 60000)); /* one of its reads hangs */
    fdn__events_service_stop(es);                        /* returns: the read was cut */
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_int_equal(st.stop_spooled_events + st.stop_failed_events, 0); /* nothing was cut */
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    fdn_events_destroy(es);
    assert_int_equal(g_rec.deadlines, 0);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    pthread_mutex_init(&g_rec.mu, NULL);
    pthread_cond_init(&g_rec.cv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_spools_what_the_writer_had_not_committed),
        cmocka_unit_test(stop_without_a_spool_fails_and_counts),
        cmocka_unit_test(stop_cuts_the_followers_read),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
