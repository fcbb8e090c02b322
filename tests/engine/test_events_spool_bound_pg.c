/* The event store's spool (storage/event_spool.c) and PostgreSQL's bound on one append's
 * payload (FDN__PG_BATCH_BYTES_MAX, 64 MiB; the backend's batch_bytes_max): on the fixture's
 * server ("postgres"), PostgreSQL made "away" by a circuit breaker forced open, so nothing
 * else is disturbed.
 *  - spooled batches that fit the bound one by one but not together are replayed, in their
 *    order (a replay that took them in one transaction was refused by the bound for ever:
 *    acknowledged events never reached PostgreSQL and every later store queued behind them);
 *  - a batch over the bound (or over the 65 536 events one append takes) is refused with
 *    FDN_ETOO_LARGE, as without a spool, not spooled and acknowledged (its replay could never
 *    succeed);
 *  - a spool record that cannot be replayed (damaged on disk) is reported: the backend status
 *    counts the failed replays and gives the last one's error, the telemetry event
 *    foundation.event_store.spool_replay_failed carries its message (it used to be dropped,
 *    so a spool stuck behind such a record said nothing of why). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>

#include <pthread.h>

#include <fdn/telemetry.h>

#include "engine.h"
#include "event_make.h"
#include "pg_census.h"
#include "pg_fixture.h"
#include "services/event_store_int.h"
#include "sqlite_file.h"
#include "tmpdir.h"

#define BIG_PAD  990000u /* letters of pad: an event of about 990 kB */
#define PER_HALF 35u     /* 35 such events: ~34.7 MB, two of them ~69.3 MB > 64 MiB */

typedef struct fx {
    test_tmpfile_t spool;
    char schema[64];
    fdn_events_t *es;
    fdn_breaker_t *br;
} fx_t;

static int setup(void **state)
{
    static fx_t f;
    memset(&f, 0, sizeof f);
    if (test_tmpfile_make(&f.spool, "spoolbound", "spool.db") != 0)
        return -1;
    test_pg_schema_name(f.schema, sizeof f.schema, "spoolbound");
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, f.schema);
    o.postgres.spool_path = f.spool.path;
    o.postgres.spool_max_bytes = (uint64_t)512 << 20;
    f.es = test_pg_store_open(&o);
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    if (fdn_breaker_create(&f.br, "events.postgres.spoolbound", &bo) != 0 ||
        fdn_events_set_breaker(f.es, f.br) != 0)
        return -1;
    fdn_breaker_force_open(f.br); /* PostgreSQL "away": stores go to the spool */
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fdn_events_destroy(f->es);
    fdn_breaker_destroy(f->br);
    test_tmpfile_remove(&f->spool);
    return 0;
}

/* n events (w, s0..s0+n) of pad letters each, stored as one batch: its rc; *id the first id. */
static int store_run(fdn_events_t *es, unsigned w, unsigned s0, unsigned n, size_t pad,
                     uint64_t *id)
{
    fdn_event_t **evs = calloc(n, sizeof(*evs));
    uint64_t *ids = calloc(n, sizeof(*ids));
    assert_non_null(evs);
    assert_non_null(ids);
    for (unsigned i = 0; i < n; i++)
        evs[i] = test_pg_event("big", NULL, w, s0 + i, pad, 0);
    for (unsigned i = 0; i < n; i++)
        ids[i] = 1;
    int rc = fdn_events_store_batch(es, (const fdn_event_t *const *)evs, n, ids);
    *id = ids[0];
    for (unsigned i = 0; i < n; i++)
        fdn_event_free(evs[i]);
    free(evs);
    free(ids);
    return rc;
}

static uint64_t spooled(fdn_events_t *es)
{
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    return st.spooled_events;
}

static bool spool_empty(void *arg)
{
    return spooled(arg) == 0;
}

/* Wait until f(arg) holds, at most ms; returns whether it did. */
static bool wait_until(bool (*f)(void *), void *arg, int ms)
{
    int64_t end = test_now_ms() + ms;
    while (!f(arg)) {
        if (test_now_ms() > end)
            return false;
        test_pause_ms(10);
    }
    return true;
}

/* What the schema holds, read from PostgreSQL by a fresh store (pg_census.h), 16 events of
 * up to ~1 MB a page. */
static test_pg_census_t *take_census(const char *schema)
{
    return test_pg_census_take(NULL, schema, 16, 4, 4 * PER_HALF);
}

/* PostgreSQL holds one event: the first small one (writer 0) the tests spool. */
static void expect_only_the_first(const char *schema)
{
    test_pg_census_t *c = take_census(schema);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->w[0], 0);
    test_pg_census_free(c);
}

static void spooled_batches_over_the_bound_together_are_replayed(void **state)
{
    fx_t *f = *state;
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 0, &id), 0); /* a small one first */
    assert_int_equal(id, 0);                                /* spooled */
    assert_int_equal(store_run(f->es, 1, 0, PER_HALF, BIG_PAD, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(store_run(f->es, 2, 0, PER_HALF, BIG_PAD, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(spooled(f->es), 1 + 2 * PER_HALF);
    fdn_breaker_reset(f->br); /* PostgreSQL back */
    if (!wait_until(spool_empty, f->es, 60000)) {
        fprintf(stderr, "the spool still holds %llu events a minute after PostgreSQL came back\n",
                (unsigned long long)spooled(f->es));
        fail();
    }
    test_pg_census_t *c = take_census(f->schema);
    assert_int_equal(c->n, 1 + 2 * PER_HALF); /* each once */
    for (unsigned i = 0; i < c->n; i++) {
        assert_int_equal(c->id[i], i + 1); /* gap-free, in the order they were spooled */
        unsigned w = i == 0 ? 0 : 1 + (i - 1) / PER_HALF;
        unsigned s = i == 0 ? 0 : (i - 1) % PER_HALF;
        assert_int_equal(c->w[i], w);
        assert_int_equal(c->s[i], s);
    }
    test_pg_census_free(c);
}

static void a_batch_over_the_bound_is_refused_not_spooled(void **state)
{
    fx_t *f = *state;
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 0, &id), 0); /* the spool holds one */
    assert_int_equal(id, 0);
    /* ~69.3 MB in one store: over the bound alone, with the spool holding batches */
    assert_int_equal(store_run(f->es, 1, 0, 2 * PER_HALF, BIG_PAD, &id), FDN_ETOO_LARGE);
    assert_int_equal(spooled(f->es), 1);
    fdn_breaker_reset(f->br);
    /* and with the spool empty (breaker open: the backend is not asked) */
    assert_true(wait_until(spool_empty, f->es, 60000));
    fdn_breaker_force_open(f->br);
    assert_int_equal(store_run(f->es, 2, 0, 2 * PER_HALF, BIG_PAD, &id), FDN_ETOO_LARGE);
    assert_int_equal(spooled(f->es), 0);
    fdn_breaker_reset(f->br);
    expect_only_the_first(f->schema);
}

/* The same for the bound on events: 65 537 small events in one store, over the 65 536 one
 * append takes. */
static void a_batch_over_the_event_bound_is_refused_not_spooled(void **state)
{
    fx_t *f = *state;
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 0, &id), 0); /* the spool holds one */
    assert_int_equal(id, 0);
    assert_int_equal(store_run(f->es, 1, 0, 65537, 0, &id), FDN_ETOO_LARGE);
    assert_int_equal(spooled(f->es), 1);
    fdn_breaker_reset(f->br);
    assert_true(wait_until(spool_empty, f->es, 60000));
    expect_only_the_first(f->schema);
}

/* The first foundation.event_store.spool_replay_failed a handler saw (the writer's thread). */
typedef struct seen {
    pthread_mutex_t mu;
    bool got;
    char error[64], message[256];
} seen_t;

static int on_replay_failed(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                            const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    seen_t *sn = user;
    pthread_mutex_lock(&sn->mu);
    if (!sn->got) {
        for (size_t i = 0; i < nmeta; i++) {
            if (strcmp(meta[i].key, "error") == 0)
                snprintf(sn->error, sizeof sn->error, "%s", meta[i].value);
            else if (strcmp(meta[i].key, "message") == 0)
                snprintf(sn->message, sizeof sn->message, "%s", meta[i].value);
        }
        sn->got = true;
    }
    pthread_mutex_unlock(&sn->mu);
    return 0;
}

static bool seen_one(void *arg)
{
    seen_t *sn = arg;
    pthread_mutex_lock(&sn->mu);
    bool got = sn->got;
    pthread_mutex_unlock(&sn->mu);
    return got;
}

static void a_damaged_spool_record_is_reported(void **state)
{
    fx_t *f = *state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    static seen_t sn = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.spool_replay_failed",
                                          FDN_TELEMETRY_MATCH_EXACT, on_replay_failed, &sn),
                     0);
    fdn__events_set_telemetry(f->es, tm);
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 0, &id), 0);
    assert_int_equal(store_run(f->es, 1, 0, 1, 0, &id), 0);
    assert_int_equal(spooled(f->es), 2);
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_int_equal(st.spool_replay_failures, 0);
    assert_int_equal(st.spool_replay_error, 0);
    /* the oldest batch's records damaged on disk (the spool's own connection reads them anew) */
    test_sqlite_exec(
        f->spool.path,
        "UPDATE spool SET body = x'0102030405' WHERE seq = (SELECT min(seq) FROM spool)");
    fdn_breaker_reset(f->br); /* PostgreSQL back: the writer replays, and fails */
    if (!wait_until(seen_one, &sn, 60000)) {
        fprintf(stderr, "no foundation.event_store.spool_replay_failed a minute after "
                        "PostgreSQL came back\n");
        fail();
    }
    assert_string_equal(sn.error, fdn_err_name(FDN_ECORRUPT));
    assert_non_null(strstr(sn.message, "events spool: batch"));
    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_true(st.spool_replay_failures >= 1);
    assert_int_equal(st.spool_replay_error, FDN_ECORRUPT);
    assert_true(st.up);                     /* PostgreSQL answers: the spool is what is stuck */
    assert_int_equal(st.spooled_events, 2); /* the second batch waits behind the first */
    fdn__events_set_telemetry(f->es, NULL);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spooled_batches_over_the_bound_together_are_replayed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_batch_over_the_bound_is_refused_not_spooled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_batch_over_the_event_bound_is_refused_not_spooled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_damaged_spool_record_is_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, test_pg_setup, NULL);
}
