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
 *  - a spool record that cannot be replayed (damaged on disk) between good ones is moved to
 *    the spool file's quarantine table, its bytes as they were, and the good batches before
 *    and after it are stored, once each, in order (it used to block them, and every store
 *    behind it, for ever: reported since 58f87d9, but stuck); the backend status, the
 *    telemetry event foundation.event_store.spool_quarantined and GET /health (events_backend
 *    degraded, the answer 200) say so; quarantined batches are counted at open; past the
 *    quarantine's own bound a damaged batch stays in the spool and the failed replay says so;
 *    a row whose count was damaged (negative) does not make the spool look empty. */
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

#include "admin/admin_int.h"
#include "admin_local.h"
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

/* What the schema holds, read from PostgreSQL by a fresh store (pg_census.h), 16 events of
 * up to ~1 MB a page. */
static test_pg_census_t *take_census(const char *schema)
{
    return test_pg_census_take(NULL, schema, 16, 8, 4 * PER_HALF);
}

/* PostgreSQL holds one event, writer w's. */
static void expect_only_w(const char *schema, unsigned w)
{
    test_pg_census_t *c = take_census(schema);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->w[0], w);
    test_pg_census_free(c);
}

/* PostgreSQL holds one event: the first small one (writer 0) the tests spool. */
static void expect_only_the_first(const char *schema)
{
    expect_only_w(schema, 0);
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
    if (!test_wait_until(spool_empty, f->es, 60000)) {
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
    assert_true(test_wait_until(spool_empty, f->es, 60000));
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
    assert_true(test_wait_until(spool_empty, f->es, 60000));
    expect_only_the_first(f->schema);
}

/* The first telemetry event of a name a handler saw (the writer's thread): its error and
 * message, its first measure. */
typedef struct seen {
    pthread_mutex_t mu;
    bool got;
    char error[64], message[256];
    double measure;
} seen_t;

static int on_seen(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                   const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    seen_t *sn = user;
    pthread_mutex_lock(&sn->mu);
    if (!sn->got) {
        sn->measure = nm > 0 ? m[0].value : -1;
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

/* GET /health's services member for the check name, as compact JSON in its order, into buf
 * ("" without one); the answer's HTTP status, negative when its top-level status is not
 * "ok". (The dispatcher hands the answer's text over parsed, as it does to every test.) */
static long health_of(fdn_admin_t *a, const char *name, char *buf, size_t cap)
{
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/health", NULL, NULL, 0, &r);
    long status = r.status;
    assert_non_null(r.json);
    json_t *m = json_object_get(json_object_get(r.json, "services"), name);
    char *t = m != NULL ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    snprintf(buf, cap, "%s", t != NULL ? t : "");
    free(t);
    const char *top = json_string_value(json_object_get(r.json, "status"));
    if (top == NULL || strcmp(top, "ok") != 0)
        status = -status;
    fdn__http_resp_clear(&r);
    return status;
}

/* Five spooled batches, the third (two events) damaged on disk: the first two, then the last
 * two, are stored once each, in order; the third is in the quarantine table with its bytes as
 * they were, and said so by the status, telemetry and /health (degraded, 200). */
static void a_damaged_spool_record_is_quarantined(void **state)
{
    fx_t *f = *state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    static seen_t sq = {.mu = PTHREAD_MUTEX_INITIALIZER}, sf = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.spool_quarantined",
                                          FDN_TELEMETRY_MATCH_EXACT, on_seen, &sq),
                     0);
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.spool_replay_failed",
                                          FDN_TELEMETRY_MATCH_EXACT, on_seen, &sf),
                     0);
    fdn__events_set_telemetry(f->es, tm);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = f->es});
    uint64_t id = 1;
    for (unsigned w = 0; w < 5; w++)
        assert_int_equal(store_run(f->es, w, 0, w == 2 ? 2 : 1, 0, &id), 0);
    assert_int_equal(spooled(f->es), 6);
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_int_equal(st.spool_quarantined_batches, 0);
    assert_int_equal(st.spool_quarantine_error, 0);
    /* the third batch's records damaged on disk (the spool's own connection reads them anew) */
    static const char third[] = "SELECT seq FROM spool ORDER BY seq LIMIT 1 OFFSET 2";
    char sql[256], body[64], uids[256], got[512];
    int64_t seq = test_sqlite_int(f->spool.path, third);
    assert_true(seq > 0);
    snprintf(sql, sizeof sql, "UPDATE spool SET body = x'0102030405' WHERE seq = %lld",
             (long long)seq);
    test_sqlite_exec(f->spool.path, sql);
    snprintf(sql, sizeof sql, "SELECT hex(body) FROM spool WHERE seq = %lld", (long long)seq);
    assert_true(test_sqlite_text(f->spool.path, sql, body, sizeof body));
    assert_string_equal(body, "0102030405");
    snprintf(sql, sizeof sql, "SELECT uids FROM spool WHERE seq = %lld", (long long)seq);
    assert_true(test_sqlite_text(f->spool.path, sql, uids, sizeof uids));
    assert_int_equal(strlen(uids), 2 * FDN_UUID_STR_LEN);

    fdn_breaker_reset(f->br); /* PostgreSQL back: the writer replays around the damage */
    if (!test_wait_until(spool_empty, f->es, 60000)) {
        fprintf(stderr, "the spool still holds %llu events a minute after PostgreSQL came back\n",
                (unsigned long long)spooled(f->es));
        fail();
    }
    test_pg_census_t *c = take_census(f->schema);
    assert_int_equal(c->n, 4); /* each once, gap-free, in the order they were spooled */
    static const unsigned want_w[] = {0, 1, 3, 4};
    for (unsigned i = 0; i < c->n; i++) {
        assert_int_equal(c->id[i], i + 1);
        assert_int_equal(c->w[i], want_w[i]);
        assert_int_equal(c->s[i], 0);
    }
    test_pg_census_free(c);

    /* the damaged batch, as it was, in the quarantine table: with when and why */
    assert_int_equal(test_sqlite_int(f->spool.path, "SELECT count(*) FROM quarantine"), 1);
    snprintf(sql, sizeof sql,
             "SELECT hex(body) || ' ' || uids || ' ' || n || ' ' || error || ' ' || error_name"
             " FROM quarantine WHERE seq = %lld AND quarantined_at > 1600000000000"
             " AND message LIKE 'events spool: batch %lld%%'",
             (long long)seq, (long long)seq);
    assert_true(test_sqlite_text(f->spool.path, sql, got, sizeof got));
    char want[512];
    snprintf(want, sizeof want, "%s %s 2 %d %s", body, uids, FDN_ECORRUPT,
             fdn_err_name(FDN_ECORRUPT));
    assert_string_equal(got, want);
    assert_int_equal(test_sqlite_int(f->spool.path, "SELECT count(*) FROM spool"), 0);
    /* `fdn events quarantine` lists it (read-only) */
    const char *bin = getenv("FDN_BINARY_DIR");
    assert_non_null(bin);
    char cmd[600], line[1024] = "";
    snprintf(cmd, sizeof cmd, "'%s/bin/fdn' events quarantine --spool '%s' --json", bin,
             f->spool.path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool one = fgets(line, sizeof line, p) != NULL;
    char extra[64];
    bool more = fgets(extra, sizeof extra, p) != NULL;
    assert_int_equal(pclose(p), 0);
    assert_true(one);
    assert_false(more);
    snprintf(want, sizeof want, "{\"seq\":%lld,", (long long)seq);
    assert_true(strstr(line, want) == line);
    snprintf(want, sizeof want, "\"error\":%d,\"error_name\":\"%s\",\"events\":2,", FDN_ECORRUPT,
             fdn_err_name(FDN_ECORRUPT));
    assert_non_null(strstr(line, want));
    snprintf(want, sizeof want, "\"uids\":\"%s\"}", uids);
    assert_non_null(strstr(line, want));

    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_int_equal(st.spool_quarantined_batches, 1);
    assert_int_equal(st.spool_quarantined_events, 2);
    assert_true(st.spool_quarantined_bytes > 0);
    assert_int_equal(st.spool_quarantine_error, FDN_ECORRUPT);
    assert_int_equal(st.spool_replay_error, 0); /* the spool drained: nothing is stuck */
    assert_int_equal(st.spooled_bytes, 0);
    assert_true(st.up);
    assert_true(seen_one(&sq));
    assert_string_equal(sq.error, fdn_err_name(FDN_ECORRUPT));
    assert_non_null(strstr(sq.message, "events spool: batch"));
    assert_true(sq.measure == 2.0); /* events */
    assert_false(seen_one(&sf));    /* quarantined, not a replay that failed */

    /* the store works: /health says degraded for the check, ok (200) for the whole */
    char member[256];
    long hs = health_of(a, "events_backend", member, sizeof member);
    snprintf(want, sizeof want, "{\"status\":\"degraded\",\"code\":%d,\"error\":\"%s\"}",
             fdn_err_info(FDN_ECORRUPT)->ref_code, fdn_err_name(FDN_ECORRUPT));
    assert_string_equal(member, want);
    assert_int_equal(hs, 200);
    /* and a new store goes straight to PostgreSQL */
    assert_int_equal(store_run(f->es, 5, 0, 1, 0, &id), 0);
    assert_int_equal(id, 5);
    fdn_admin_destroy(a);
    /* the store's threads end before its telemetry goes (set_telemetry(NULL) does not wait
     * for a writer already in a handler) */
    fdn_events_destroy(f->es);
    f->es = NULL;
    fdn_telemetry_destroy(tm);
}

/* A spool left with quarantined batches by an earlier run: a store opened on it counts them
 * (the status, /health degraded) before it quarantines anything itself. */
static void quarantined_batches_are_counted_at_open(void **state)
{
    fx_t *f = *state;
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 3, 0, &id), 0);
    assert_int_equal(store_run(f->es, 1, 0, 1, 0, &id), 0);
    fdn_events_destroy(f->es);
    f->es = NULL;
    /* the first batch damaged while the process was away */
    test_sqlite_exec(f->spool.path, "UPDATE spool SET body = x'00' WHERE seq = "
                                    "(SELECT min(seq) FROM spool)");
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, f->schema);
    o.postgres.spool_path = f->spool.path;
    o.postgres.spool_max_bytes = (uint64_t)512 << 20;
    f->es = test_pg_store_open(&o); /* no breaker: the writer replays at once */
    assert_true(test_wait_until(spool_empty, f->es, 60000));
    expect_only_w(f->schema, 1);
    fdn_events_destroy(f->es);
    f->es = NULL;
    f->es = test_pg_store_open(&o);
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_int_equal(st.spool_quarantined_batches, 1);
    assert_int_equal(st.spool_quarantined_events, 3);
    assert_int_equal(st.spool_quarantine_error, FDN_ECORRUPT);
    assert_int_equal(st.spooled_events, 0);
}

static bool one_quarantined(void *arg)
{
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(arg, &st), 0);
    return st.spool_quarantined_batches == 1 && st.spooled_events == 0;
}

/* A spool left by an earlier run whose oldest row's count was damaged (n = -1, beside a good
 * batch of one event: the counts summed to 0): the store replays the good batch and
 * quarantines the damaged one. It took the spool for empty before: the acknowledged batch
 * never reached PostgreSQL, and later stores were sent past it. */
static void a_damaged_count_does_not_hide_the_spool(void **state)
{
    fx_t *f = *state;
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 0, &id), 0);
    assert_int_equal(store_run(f->es, 1, 0, 1, 0, &id), 0);
    assert_int_equal(id, 0); /* spooled */
    fdn_events_destroy(f->es);
    f->es = NULL;
    test_sqlite_exec(f->spool.path, "UPDATE spool SET n = -1 WHERE seq = "
                                    "(SELECT min(seq) FROM spool)");
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, f->schema);
    o.postgres.spool_path = f->spool.path;
    o.postgres.spool_max_bytes = (uint64_t)512 << 20;
    f->es = test_pg_store_open(&o); /* no breaker: the writer replays at once */
    if (!test_wait_until(one_quarantined, f->es, 60000)) {
        fprintf(stderr, "the damaged batch not quarantined a minute after the open\n");
        fail();
    }
    expect_only_w(f->schema, 1);
    assert_int_equal(test_sqlite_int(f->spool.path, "SELECT count(*) FROM spool"), 0);
}

/* Damage the oldest spooled batch's records. */
static void damage_oldest(const char *path)
{
    test_sqlite_exec(path, "UPDATE spool SET body = x'0102030405' WHERE seq = "
                           "(SELECT min(seq) FROM spool)");
}

/* The quarantine's own bound (the spool's, 4000 bytes here): a second damaged batch of ~2.5 kB
 * does not fit beside the first, so it stays in the spool, blocking the one behind it as
 * before the quarantine existed, and the failed replay says why (/health unhealthy); nothing
 * is deleted. */
static void a_full_quarantine_keeps_the_batch_in_the_spool(void **state)
{
    fx_t *f = *state;
    fdn_events_destroy(f->es);
    f->es = NULL;
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, f->schema);
    o.postgres.spool_path = f->spool.path;
    o.postgres.spool_max_bytes = 4000;
    f->es = test_pg_store_open(&o);
    assert_int_equal(fdn_events_set_breaker(f->es, f->br), 0);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    static seen_t sf = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.spool_replay_failed",
                                          FDN_TELEMETRY_MATCH_EXACT, on_seen, &sf),
                     0);
    fdn__events_set_telemetry(f->es, tm);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = f->es});
    uint64_t id = 1;
    assert_int_equal(store_run(f->es, 0, 0, 1, 2500, &id), 0); /* the breaker is open */
    assert_int_equal(id, 0);
    damage_oldest(f->spool.path);
    fdn_breaker_reset(f->br);
    assert_true(test_wait_until(one_quarantined, f->es, 60000));
    fdn_breaker_force_open(f->br);
    assert_int_equal(store_run(f->es, 1, 0, 1, 2500, &id), 0);
    assert_int_equal(store_run(f->es, 2, 0, 1, 0, &id), 0);
    damage_oldest(f->spool.path);
    fdn_breaker_reset(f->br);
    if (!test_wait_until(seen_one, &sf, 60000)) {
        fprintf(stderr, "no foundation.event_store.spool_replay_failed a minute after "
                        "PostgreSQL came back\n");
        fail();
    }
    assert_string_equal(sf.error, fdn_err_name(FDN_ECORRUPT));
    assert_non_null(strstr(sf.message, "quarantine full"));
    assert_non_null(strstr(sf.message, "events spool: batch"));
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(f->es, &st), 0);
    assert_int_equal(st.spool_quarantined_batches, 1);
    assert_int_equal(st.spool_replay_error, FDN_ECORRUPT);
    assert_int_equal(st.spooled_events, 2); /* the damaged one and the one behind it */
    assert_int_equal(test_sqlite_int(f->spool.path, "SELECT count(*) FROM spool"), 2);
    assert_int_equal(test_sqlite_int(f->spool.path, "SELECT count(*) FROM quarantine"), 1);
    char member[256], want[256];
    long hs = health_of(a, "events_backend", member, sizeof member);
    snprintf(want, sizeof want, "{\"status\":\"unhealthy\",\"code\":%d,\"error\":\"%s\"}",
             fdn_err_info(FDN_ECORRUPT)->ref_code, fdn_err_name(FDN_ECORRUPT));
    assert_string_equal(member, want);
    assert_int_equal(hs, -503);
    fdn_admin_destroy(a);
    test_pg_census_t *c = take_census(f->schema);
    assert_int_equal(c->n, 0); /* the good one waits behind the damaged one */
    test_pg_census_free(c);
    /* the writer keeps retrying (and reporting): it ends before its telemetry goes */
    fdn_events_destroy(f->es);
    f->es = NULL;
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
        cmocka_unit_test_setup_teardown(a_damaged_spool_record_is_quarantined, setup, teardown),
        cmocka_unit_test_setup_teardown(quarantined_batches_are_counted_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_count_does_not_hide_the_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_quarantine_keeps_the_batch_in_the_spool, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, test_pg_setup, NULL);
}
