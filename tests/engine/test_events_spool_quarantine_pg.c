/* The spool's quarantine (storage/event_spool.c, services/event_shared.c; docs/events-postgres.md,
 * "Quarantine") against PostgreSQL, on a cluster of the test's own (scripts/pg-server.sh),
 * which one test stops (SIGSTOP), so the shared fixture is never disturbed:
 *  - a spooled batch that decodes but that PostgreSQL refuses for good (two of its events
 *    with one id: 23505 on events.event_id, whatever the attempt) is quarantined, its bytes
 *    as they were; the replay that took it together with good batches is split, so the good
 *    ones before and after it are stored once each, in order (it used to fail for ever and
 *    block them, and every store behind them);
 *  - a transient failure (PostgreSQL stopped: replays time out) quarantines nothing: the
 *    replays fail, are reported and retried, and once PostgreSQL runs again every batch is
 *    stored once, in order.
 *  - a replay committed on PostgreSQL whose drop from the spool file then fails (the WAL's
 *    fsync failing: sqlite_fault.h) counts its events in replayed_events once, and they are
 *    stored once (the whole replay was repeated until the drop succeeded, counted each time).
 * Waits are on the store's status, bounded by deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>

#include "engine.h"
#include "pg_census.h"
#include "pg_fixture.h"
#include "sqlite_fault.h"
#include "sqlite_file.h"
#include "tmpdir.h"

static test_engine_server_t *g_pg;

typedef struct fx {
    test_tmpfile_t spool;
    char schema[64];
    fdn_events_t *es;
    fdn_breaker_t *br;
} fx_t;

/* A store with a spool on the test's cluster, its calls bounded by 1 s (its open keeps the
 * fixture's bound); with a breaker forced open (PostgreSQL "away": stores go to the spool)
 * when `away`. */
static void open_fx(fx_t *f, const char *what, bool away)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(test_tmpfile_make(&f->spool, what, "spool.db"), 0);
    test_pg_schema_name(f->schema, sizeof f->schema, what);
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, f->schema);
    o.postgres.spool_path = f->spool.path;
    o.postgres.spool_max_bytes = (uint64_t)64 << 20;
    o.postgres.command_timeout_ms = 1000;
    f->es = test_pg_store_open_short(&o); /* a 1 s bound: see pg_fixture.h */
    if (away) {
        fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
        assert_int_equal(fdn_breaker_create(&f->br, "events.postgres.quarantine", &bo), 0);
        assert_int_equal(fdn_events_set_breaker(f->es, f->br), 0);
        fdn_breaker_force_open(f->br);
    }
}

static void close_fx(fx_t *f)
{
    fdn_events_destroy(f->es);
    fdn_breaker_destroy(f->br);
    test_tmpfile_remove(&f->spool);
}

/* n events (w, 0..n-1) stored as one batch: its rc; *id the first id. */
static int store_run(fdn_events_t *es, unsigned w, unsigned n, uint64_t *id)
{
    fdn_event_t *evs[8];
    uint64_t ids[8];
    assert_true(n <= 8);
    for (unsigned i = 0; i < n; i++) {
        evs[i] = test_pg_event("quarantine", NULL, w, i, 0, 0);
        ids[i] = 1;
    }
    int rc = fdn_events_store_batch(es, (const fdn_event_t *const *)evs, n, ids);
    *id = ids[0];
    for (unsigned i = 0; i < n; i++)
        fdn_event_free(evs[i]);
    return rc;
}

static fdn_events_backend_status_t status_of(fdn_events_t *es)
{
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    return st;
}

static bool spool_empty(void *es)
{
    return status_of(es).spooled_events == 0;
}

static bool replays_failed(void *es)
{
    return status_of(es).spool_replay_failures >= 2;
}

/* PostgreSQL holds, in this order at positions 1.. (pg_census.h asserts them), the events
 * (w[i], s[i]) and no other. */
static void expect_stored(const char *schema, const unsigned *w, const unsigned *s, unsigned n)
{
    test_pg_census_t *c = test_pg_census_take(g_pg->url, schema, 16, 4, 4);
    assert_int_equal(c->n, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(c->w[i], w[i]);
        assert_int_equal(c->s[i], s[i]);
    }
    test_pg_census_free(c);
}

static void rows_postgresql_refuses_for_good_are_quarantined(void **state)
{
    (void)state;
    fx_t f;
    open_fx(&f, "qrefused", true);
    uint64_t id = 1;
    assert_int_equal(store_run(f.es, 0, 1, &id), 0);
    assert_int_equal(id, 0); /* spooled */
    assert_int_equal(store_run(f.es, 1, 2, &id), 0);
    assert_int_equal(store_run(f.es, 2, 1, &id), 0);
    assert_int_equal(store_run(f.es, 3, 1, &id), 0);
    /* the second batch's two events given one id: it decodes, PostgreSQL refuses it
     * (events.event_id is unique) every time */
    int64_t seq =
        test_sqlite_int(f.spool.path, "SELECT seq FROM spool ORDER BY seq LIMIT 1 OFFSET 1");
    assert_true(seq > 0);
    char sql[256], body[2048], got[4096], want[4096];
    snprintf(sql, sizeof sql,
             "UPDATE spool SET uids = substr(uids, 1, 36) || substr(uids, 1, 36) WHERE seq = %lld",
             (long long)seq);
    test_sqlite_exec(f.spool.path, sql);
    snprintf(sql, sizeof sql, "SELECT hex(body) || ' ' || uids FROM spool WHERE seq = %lld",
             (long long)seq);
    assert_true(test_sqlite_text(f.spool.path, sql, body, sizeof body));
    assert_true(strlen(body) + 1 < sizeof body); /* whole */

    fdn_breaker_reset(f.br); /* PostgreSQL back: the four batches go as one replay, refused */
    if (!test_wait_until(spool_empty, f.es, 60000)) {
        fdn_events_backend_status_t st = status_of(f.es);
        fprintf(stderr,
                "the spool still holds %llu events a minute after PostgreSQL came back "
                "(last replay: %s)\n",
                (unsigned long long)st.spooled_events, fdn_err_name(st.spool_replay_error));
        fail();
    }
    static const unsigned w[] = {0, 2, 3}, s[] = {0, 0, 0};
    expect_stored(f.schema, w, s, 3);
    snprintf(sql, sizeof sql,
             "SELECT hex(body) || ' ' || uids || ' ' || error || ' ' || error_name FROM quarantine"
             " WHERE seq = %lld AND message LIKE '%%events_event_id_key%%'",
             (long long)seq);
    assert_true(test_sqlite_text(f.spool.path, sql, got, sizeof got));
    snprintf(want, sizeof want, "%s %d %s", body, FDN_EEXIST, fdn_err_name(FDN_EEXIST));
    assert_string_equal(got, want);
    assert_int_equal(test_sqlite_int(f.spool.path, "SELECT count(*) FROM quarantine"), 1);
    fdn_events_backend_status_t st = status_of(f.es);
    assert_int_equal(st.spool_quarantined_batches, 1);
    assert_int_equal(st.spool_quarantined_events, 2);
    assert_int_equal(st.spool_quarantine_error, FDN_EEXIST);
    assert_int_equal(st.spool_replay_error, 0);
    assert_int_equal(st.replayed_events, 3);
    close_fx(&f);
}

static void a_stopped_postgresql_quarantines_nothing(void **state)
{
    (void)state;
    fx_t f;
    open_fx(&f, "qstopped", false);
    uint64_t id = 0;
    assert_int_equal(store_run(f.es, 0, 1, &id), 0);
    assert_int_equal(id, 1); /* PostgreSQL up: stored */
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    /* away: each store meets the 1 s bound, goes to the spool, and is acknowledged */
    assert_int_equal(store_run(f.es, 1, 2, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(store_run(f.es, 2, 1, &id), 0);
    assert_int_equal(id, 0);
    /* the replays fail (timed out), are reported and retried: transient, nothing moved */
    bool failed = test_wait_until(replays_failed, f.es, 60000);
    fdn_events_backend_status_t st = status_of(f.es);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    assert_true(failed);
    assert_true(st.spool_replay_error == FDN_EUNAVAILABLE || st.spool_replay_error == FDN_EIO);
    assert_int_equal(st.spooled_events, 3);
    assert_int_equal(st.spool_quarantined_batches, 0);
    assert_int_equal(test_sqlite_int(f.spool.path, "SELECT count(*) FROM quarantine"), 0);
    assert_true(test_wait_until(spool_empty, f.es, 60000));
    static const unsigned w[] = {0, 1, 1, 2}, s[] = {0, 0, 1, 0};
    expect_stored(f.schema, w, s, 4);
    st = status_of(f.es);
    assert_int_equal(st.spool_quarantined_batches, 0);
    assert_int_equal(st.spool_quarantine_error, 0);
    close_fx(&f);
}

static void a_failed_drop_counts_the_replay_once(void **state)
{
    (void)state;
    assert_int_equal(test_sqlite_fault_install(), 0); /* before the spool's open */
    fx_t f;
    open_fx(&f, "qdrop", true);
    uint64_t id = 1;
    assert_int_equal(store_run(f.es, 0, 2, &id), 0);
    assert_int_equal(id, 0);          /* spooled */
    test_sqlite_fault_wal_sync(true); /* every drop's COMMIT fails from here */
    fdn_breaker_reset(f.br);          /* PostgreSQL back: the replay commits, its drop fails */
    bool failed = test_wait_until(replays_failed, f.es, 60000);
    test_sqlite_fault_wal_sync(false);
    assert_true(failed);
    assert_true(test_wait_until(spool_empty, f.es, 60000));
    fdn_events_backend_status_t st = status_of(f.es);
    assert_int_equal(st.replayed_events, 2);
    assert_int_equal(st.spool_replay_error, 0);
    static const unsigned w[] = {0, 0}, s[] = {0, 1};
    expect_stored(f.schema, w, s, 2);
    close_fx(&f);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_postgresql_refuses_for_good_are_quarantined),
        cmocka_unit_test(a_stopped_postgresql_quarantines_nothing),
        cmocka_unit_test(a_failed_drop_counts_the_replay_once),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
