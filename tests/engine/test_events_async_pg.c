/* fdn_events_store_async on a store on PostgreSQL (out_ids NULL, as the HTTP API calls it):
 * the call queues the batch for the store's writer and returns at once; the writer runs the
 * callback after the commit. On a cluster of the test's own (scripts/pg-server.sh), which the
 * tests stop (SIGSTOP) to hold every commit, so the shared fixture is never disturbed:
 *  - with PostgreSQL stopped the call returns 0 and no callback has run (nothing can commit);
 *    once it runs again, the callbacks run on the writer thread with their first positions,
 *    and the batches' ids are contiguous; a callback that stores again is queued, not awaited;
 *  - 1200 stores from 4 threads each get exactly one callback, ids contiguous per batch, and
 *    PostgreSQL holds every event once at the positions the callbacks gave;
 *  - destroying the store with requests queued runs every callback exactly once: committed
 *    (rc 0) with PostgreSQL up, failed with PostgreSQL stopped;
 *  - past fast_queue_max events waiting, FDN_EBUSY, and nothing of that call is stored.
 * Waits are on conditions (the callbacks' count, under a mutex) bounded by deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fdn/events.h>

#include "engine.h"
#include "event_make.h"
#include "pg_census.h"
#include "pg_fixture.h"

static test_engine_server_t *g_pg;

/* A store on the test's cluster, its calls bounded by timeout_ms; fast_queue_max when > 0.
 * Its first connection, at open, keeps the fixture's TEST_PG_CALL_MS (the tests bound calls,
 * not the open); a call's reconnection stays within the call's bound. */
static fdn_events_t *open_store(const char *schema, int64_t timeout_ms, uint32_t queue_max)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.command_timeout_ms = timeout_ms;
    if (queue_max > 0)
        o.fast_queue_max = queue_max;
    /* the open's first call (the head) has the command bound: a short one may pass it on a
     * loaded machine (pg_fixture.h) */
    return timeout_ms < TEST_PG_CALL_MS ? test_pg_store_open_short(&o) : test_pg_store_open(&o);
}

/* ---- the callbacks' record ---- */

enum { MAXW = 4, PER_W = 300, MAXCALLS = MAXW * PER_W + 64 };

typedef struct call {
    unsigned w, s, n; /* events (w, s) .. (w, s + n - 1) */
    int calls;        /* callbacks run (exactly one expected) */
    int rc;
    uint64_t first;
    pthread_t thread;
} call_t;

typedef struct col {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    call_t calls[MAXCALLS];
    unsigned ncalls; /* slots taken */
    unsigned done;   /* callbacks run */
    fdn_events_t *es;
    unsigned restore_s; /* > 0: the first callback stores (MAXW - 1, restore_s) again */
} col_t;

static col_t *col_new(fdn_events_t *es)
{
    col_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->es = es;
    return c;
}

static void col_free(col_t *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

typedef struct slot_ref {
    col_t *c;
    unsigned i;
} slot_ref_t;

static slot_ref_t g_refs[MAXCALLS]; /* the user pointers (one per slot) */

static int store_async(col_t *c, unsigned w, unsigned s, unsigned n);

static void stored(int rc, uint64_t first_id, size_t n, void *user)
{
    slot_ref_t *ref = user;
    col_t *c = ref->c;
    pthread_mutex_lock(&c->mu);
    call_t *k = &c->calls[ref->i];
    k->calls++;
    k->rc = rc;
    k->first = first_id;
    k->thread = pthread_self();
    if (n != k->n)
        k->calls += 1000; /* fails the count check */
    unsigned again = c->restore_s;
    c->restore_s = 0;
    c->done++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    /* a callback that stores again (on the writer thread): queued, not awaited */
    if (again > 0 && rc == 0)
        assert_int_equal(store_async(c, MAXW - 1, again, 1), 0);
}

/* Store events (w, s..s+n-1) asynchronously, recorded in a new slot; returns the call's code
 * (the slot is dropped when it fails). */
static int store_async(col_t *c, unsigned w, unsigned s, unsigned n)
{
    fdn_event_t *evs[8];
    assert_true(n <= 8);
    for (unsigned i = 0; i < n; i++)
        evs[i] = test_pg_event("async", NULL, w, s + i, 0, 0);
    pthread_mutex_lock(&c->mu);
    assert_true(c->ncalls < MAXCALLS);
    unsigned slot = c->ncalls++;
    c->calls[slot] = (call_t){.w = w, .s = s, .n = n};
    g_refs[slot] = (slot_ref_t){c, slot};
    pthread_mutex_unlock(&c->mu);
    int rc = fdn_events_store_async(c->es, (const fdn_event_t *const *)evs, n, NULL, stored,
                                    &g_refs[slot]);
    for (unsigned i = 0; i < n; i++)
        fdn_event_free(evs[i]);
    if (rc != 0) { /* no callback: the slot means nothing (n 0) */
        pthread_mutex_lock(&c->mu);
        c->calls[slot].n = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* Wait until want callbacks ran, at most ms; returns whether they did. */
static bool col_wait(col_t *c, unsigned want, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    pthread_mutex_lock(&c->mu);
    int w = 0;
    while (c->done < want && w != ETIMEDOUT)
        w = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    bool ok = c->done >= want;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static unsigned col_done(col_t *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned d = c->done;
    pthread_mutex_unlock(&c->mu);
    return d;
}

/* ---- what PostgreSQL holds ---- */

enum { MAXS = 2048 };

/* Every event of the schema, read by a fresh store (from PostgreSQL; pg_census.h): asserts
 * positions 1..n, gap-free. */
static test_pg_census_t *take_census(const char *schema)
{
    return test_pg_census_take(g_pg->url, schema, 1000, MAXW, MAXS);
}

/* Each committed call's events are stored once, at first .. first + n - 1. Returns the events
 * of the committed calls. */
static size_t check_committed(col_t *c, const test_pg_census_t *cs)
{
    size_t total = 0;
    for (unsigned i = 0; i < c->ncalls; i++) {
        call_t *k = &c->calls[i];
        if (k->n == 0 || k->rc != 0)
            continue;
        assert_int_equal(k->calls, 1);
        assert_true(k->first > 0);
        for (unsigned j = 0; j < k->n; j++) {
            assert_int_equal(test_pg_census_count(cs, k->w, k->s + j), 1);
            assert_int_equal(test_pg_census_pos(cs, k->w, k->s + j), k->first + j); /* contiguous */
        }
        total += k->n;
    }
    return total;
}

/* ---- the tests ---- */

/* The call returns before the commit: while PostgreSQL is stopped, nothing can commit and no
 * callback has run; once it runs, the callbacks run on the writer thread with the batches'
 * first positions, and one that stores again is queued rather than awaited. */
static void returns_before_the_commit(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "early");
    /* a call's bound far beyond the stop: the commit waits for PostgreSQL, it does not fail */
    fdn_events_t *es = open_store(schema, 120000, 0);
    col_t *c = col_new(es);
    assert_int_equal(store_async(c, 0, 0, 1), 0); /* the writer's connection is up */
    assert_true(col_wait(c, 1, 60000));

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    pthread_mutex_lock(&c->mu);
    c->restore_s = 100; /* the next callback stores (3, 100) from the writer thread */
    pthread_mutex_unlock(&c->mu);
    assert_int_equal(store_async(c, 0, 1, 1), 0);
    assert_int_equal(store_async(c, 1, 0, 3), 0);
    assert_int_equal(store_async(c, 2, 0, 8), 0);
    assert_int_equal(col_done(c), 1); /* returned; PostgreSQL, stopped, committed nothing */
    test_pg_signal_cluster(g_pg->dir, SIGCONT);

    assert_true(col_wait(c, 5, 60000)); /* 4, and the one a callback stored */
    fdn_events_destroy(es);
    assert_int_equal(c->ncalls, 5);
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < c->ncalls; i++) {
        assert_int_equal(c->calls[i].calls, 1);
        assert_int_equal(c->calls[i].rc, 0);
        assert_false(pthread_equal(c->calls[i].thread, self)); /* the writer's */
    }
    /* in queue order: positions increase with the calls */
    for (unsigned i = 1; i < 4; i++)
        assert_true(c->calls[i].first >= c->calls[i - 1].first + c->calls[i - 1].n);
    test_pg_census_t *cs = take_census(schema);
    assert_int_equal(check_committed(c, cs), 1 + 1 + 3 + 8 + 1);
    assert_int_equal(cs->n, 14);
    test_pg_census_free(cs);
    col_free(c);
}

typedef struct loader {
    col_t *c;
    unsigned w;
    int failures;
} loader_t;

static void *loader_main(void *arg)
{
    loader_t *ld = arg;
    unsigned s = 0;
    for (unsigned i = 0; i < PER_W; i++) {
        unsigned n = 1 + i % 3; /* batches of 1, 2, 3 */
        if (store_async(ld->c, ld->w, s, n) != 0)
            ld->failures++;
        s += n;
    }
    return NULL;
}

/* 1200 stores from 4 threads: each gets exactly one callback, ids contiguous per batch, every
 * event stored once at the positions the callbacks gave. */
static void many_stores_one_callback_each(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "many");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, 0);
    col_t *c = col_new(es);
    pthread_t th[MAXW];
    loader_t ld[MAXW];
    for (unsigned w = 0; w < MAXW; w++) {
        ld[w] = (loader_t){c, w, 0};
        assert_int_equal(pthread_create(&th[w], NULL, loader_main, &ld[w]), 0);
    }
    for (unsigned w = 0; w < MAXW; w++) {
        pthread_join(th[w], NULL);
        assert_int_equal(ld[w].failures, 0);
    }
    assert_true(col_wait(c, MAXW * PER_W, 120000));
    fdn_events_destroy(es);
    assert_int_equal(c->done, MAXW * PER_W); /* no callback ran twice */
    for (unsigned i = 0; i < c->ncalls; i++) {
        assert_int_equal(c->calls[i].calls, 1);
        assert_int_equal(c->calls[i].rc, 0);
    }
    test_pg_census_t *cs = take_census(schema);
    size_t want = (size_t)MAXW * (PER_W / 3) * (1 + 2 + 3);
    assert_int_equal(check_committed(c, cs), want);
    assert_int_equal(cs->n, want);
    test_pg_census_free(cs);
    col_free(c);
}

/* Destroy with requests queued: with PostgreSQL up, every one is committed first; with it
 * stopped, every one fails. Either way each callback runs exactly once. */
static void destroy_runs_every_callback(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "destroy");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, 0);
    col_t *c = col_new(es);
    for (unsigned s = 0; s < 500; s++)
        assert_int_equal(store_async(c, 0, s, 1), 0);
    fdn_events_destroy(es); /* at once: most are queued still */
    assert_int_equal(c->done, 500);
    for (unsigned i = 0; i < c->ncalls; i++) {
        assert_int_equal(c->calls[i].calls, 1);
        assert_int_equal(c->calls[i].rc, 0);
    }
    test_pg_census_t *cs = take_census(schema);
    assert_int_equal(check_committed(c, cs), 500);
    assert_int_equal(cs->n, 500);
    test_pg_census_free(cs);
    col_free(c);

    /* PostgreSQL stopped: the drain's commits fail within the (short) bound */
    test_pg_schema_name(schema, sizeof(schema), "destroyd");
    es = open_store(schema, 500, 0);
    c = col_new(es);
    assert_int_equal(store_async(c, 1, 0, 1), 0);
    assert_true(col_wait(c, 1, 60000));
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    for (unsigned s = 1; s < 201; s++)
        assert_int_equal(store_async(c, 1, s, 1), 0);
    fdn_events_destroy(es);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    assert_int_equal(c->done, 201);
    for (unsigned i = 1; i < c->ncalls; i++) {
        assert_int_equal(c->calls[i].calls, 1);
        assert_true(c->calls[i].rc == FDN_EUNAVAILABLE || c->calls[i].rc == FDN_EIO);
    }
    col_free(c);
}

/* Past fast_queue_max events waiting for their commit: FDN_EBUSY, nothing stored. */
static void busy_past_the_queue_bound(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "busy");
    fdn_events_t *es = open_store(schema, 120000, 8);
    col_t *c = col_new(es);
    assert_int_equal(store_async(c, 0, 0, 1), 0); /* the writer's connection is up */
    assert_true(col_wait(c, 1, 60000));

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    assert_int_equal(store_async(c, 0, 1, 5), 0);
    assert_int_equal(store_async(c, 0, 6, 3), 0); /* 8 wait: the bound */
    assert_int_equal(store_async(c, 0, 9, 1), FDN_EBUSY);
    assert_int_equal(store_async(c, 0, 9, 2), FDN_EBUSY);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    assert_true(col_wait(c, 3, 60000));
    assert_int_equal(store_async(c, 0, 20, 8), 0); /* room again */
    assert_true(col_wait(c, 4, 60000));
    fdn_events_destroy(es);
    test_pg_census_t *cs = take_census(schema);
    assert_int_equal(check_committed(c, cs), 1 + 5 + 3 + 8);
    assert_int_equal(cs->n, 17);
    assert_int_equal(test_pg_census_count(cs, 0, 9), 0);
    assert_int_equal(test_pg_census_count(cs, 0, 10), 0);
    test_pg_census_free(cs);
    col_free(c);
}

/* A store whose follower polls every 10 minutes is destroyed at once: its stop wakes the
 * follower's wait for a notification (the store's eventfd, polled beside the LISTEN socket).
 * Without that, fdn_events_destroy waits out the poll interval: this test then hangs until
 * ctest's TIMEOUT kills it (the failing mode; no wall-time assertion here). The follower is
 * known to have LISTENed and filled memory first: another store committed an event and this
 * store's memory holds it (read by its follower: it did not store it itself); it then goes
 * back to its 10-minute wait. */
static void destroy_wakes_the_follower(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "wake");
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.poll_interval_ms = 600000;
    fdn_events_t *es = test_pg_store_open(&o);
    fdn_events_t *other = open_store(schema, TEST_PG_CALL_MS, 0);
    fdn_event_t *ev = test_pg_event("wake.other", NULL, 0, 0, 0, 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(other, ev, &id), 0);
    fdn_event_free(ev);
    fdn_events_stats_t st;
    do {
        sched_yield(); /* a follower that never reads it is caught by ctest's TIMEOUT */
        assert_int_equal(fdn_events_stats(es, &st), 0);
    } while (st.newest_id < id);
    fdn_events_destroy(es); /* returns: the follower's wait was woken */
    fdn_events_destroy(other);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(returns_before_the_commit),
        cmocka_unit_test(many_stores_one_callback_each),
        cmocka_unit_test(destroy_runs_every_callback),
        cmocka_unit_test(busy_past_the_queue_bound),
        cmocka_unit_test(destroy_wakes_the_follower),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
