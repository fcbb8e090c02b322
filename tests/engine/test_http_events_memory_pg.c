/* Engine test of the answers of waiting queries (GET /v1/events?after_id=N&wait_ms=M) of a
 * store on PostgreSQL (src/admin/event_wait.c, fdn_events_query_memory in
 * src/services/event_query.c; docs/http-api.md, docs/events-postgres.md), on a cluster of the
 * test's own (scripts/pg-server.sh), which one test stops (SIGSTOP):
 *  - memory answers as PostgreSQL does: on a log written by two stores (one opened before the
 *    other, so part of the log is older than the second's memory), every cursor, type,
 *    correlation id and limit (and the max_results cap, and memory's own retention) gives
 *    from fdn_events_query_memory the list fdn_events_query reads from PostgreSQL (each of
 *    those a query on it, counted), event for event and byte for byte in the answer's JSON,
 *    or FDN_ENOENT exactly when the cursor is older than memory; the stores' clock is a
 *    manual one, so the timestamps PostgreSQL's reads rebuild from wall times are exact;
 *    with time bounds too, memory filtering on the timestamps its answer shows (through
 *    fdn_events_query_memory, fdn_events_query with both cursors inside memory, and a
 *    parent_id filter); fdn_events_stats's oldest_ts and newest_ts are PostgreSQL's
 *    timestamps of those events;
 *  - one clock offset per answer: a step of the wall clock during a query answered from
 *    memory changes neither its bounds nor its timestamps (fdn__clock_step_wall, from
 *    fdn__evs_query_check_hook); the reads after it all use the new offset;
 *  - woken waiters are answered without a query on PostgreSQL: N waiters (cursors in memory,
 *    and cursors older than it, on filters nothing matched since) woken by one batch stored
 *    through the store each get their event, and the store made N queries on PostgreSQL (the
 *    N queries the server threads ran before the waits), where a query per answer made 2N;
 *  - expired waiters are answered while PostgreSQL is stopped, without a query on it: N
 *    waiters on filters nothing matches expire with PostgreSQL stopped and each answers the
 *    empty result (200), the store again making only the N queries of before the waits (a
 *    query per answer made N more, each failing after the call bound: 503);
 *  - a waiter whose events memory evicted during its wait is answered by a query on
 *    PostgreSQL on its request's own thread, not the waiter thread: with PostgreSQL stopped,
 *    another waiter expiring after it is answered while that query waits for PostgreSQL.
 * Appends cannot commit while PostgreSQL is stopped, so no event can wake a waiter then: the
 * woken test runs with PostgreSQL up; the waiter tests count queries on PostgreSQL
 * (fdn_events_backend_request_duration_seconds{op="query"}), never time: the waiters'
 * deadlines are on a manual clock (fdn__admin_events_wait_clock), so a deadline fires when the
 * test advances it (fdn__admin_events_wait_tick), never during a slow set-up. A waiting
 * query's thread blocks in the dispatcher until it is answered; the test goes on once the
 * server counts the waiters (no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fdn/events.h>
#include <fdn/telemetry.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "admin/event_json.h"
#include "admin/http_jw.h"
#include "core/clock_int.h"
#include "engine.h"
#include "pg_fixture.h"
#include "services/event_store_int.h"

static test_engine_server_t *g_pg;

/* Options of a store on the test's cluster, its calls and connections bounded by call_ms;
 * clock NULL: the system's. */
static void store_opts(fdn_events_opts_t *o, const char *schema, int64_t call_ms,
                       fdn_clock_t *clock)
{
    test_pg_store_opts(o, g_pg->url, schema);
    o->postgres.command_timeout_ms = call_ms;
    o->postgres.connect_timeout_ms = call_ms;
    o->clock = clock;
}

/* A store with store_opts's options. */
static fdn_events_t *open_store(const char *schema, int64_t call_ms, fdn_clock_t *clock)
{
    fdn_events_opts_t o;
    store_opts(&o, schema, call_ms, clock);
    return test_pg_store_open(&o);
}

static fdn_admin_t *admin_on(fdn_events_t *es)
{
    return test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
}

static uint64_t pg_queries(fdn_telemetry_t *tm)
{
    return test_pg_backend_calls(tm, "query");
}

/* n events of type `type` stored through es (positions from PostgreSQL), data {"w":w,"s":i}. */
static void store_n(fdn_events_t *es, const char *type, unsigned w, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        fdn_event_t *ev = test_pg_event(type, NULL, w, i, 0, 0);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        fdn_event_free(ev);
    }
}

/* test_pg_history_fn: *(unsigned *)user events of type mem.old (store_n, writer 0). */
static void old_history(fdn_events_t *first, void *user)
{
    store_n(first, "mem.old", 0, *(const unsigned *)user);
}

/* The newest position es's memory holds. */
static uint64_t newest(fdn_events_t *es)
{
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    return st.next_id - 1;
}

/* ---- memory answers as PostgreSQL does ---- */

/* An event on the manual clock c (advanced a microsecond first, so time order is id order):
 * type, correlation id (NULL: none), parent, data; content type JSON unless text. */
static fdn_event_t *clock_event(fdn_clock_t *c, const char *type, const char *corr, uint64_t parent,
                                const char *data, bool text)
{
    assert_int_equal(fdn_clock_advance(c, 1000), 0);
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.correlation_id = corr;
    sp.flags = corr == NULL ? FDN_EVENT_NO_CORRELATION : 0;
    sp.parent_id = parent;
    sp.data = data;
    sp.data_len = strlen(data);
    sp.content_type = text ? FDN_EVENT_CT_TEXT : FDN_EVENT_CT_JSON;
    sp.clock = c;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    return ev;
}

/* Store k varied events through es (types a, b, c; correlations c-1, c-2, none; parents; JSON
 * and text data). */
static void store_varied(fdn_events_t *es, fdn_clock_t *c, unsigned base, unsigned k)
{
    static const char *const types[] = {"mem.a", "mem.b", "mem.a", "mem.c", "mem.b"};
    static const char *const corrs[] = {"c-1", NULL, "c-2", "c-1", "c-2", NULL, "c-1"};
    for (unsigned i = 0; i < k; i++) {
        unsigned n = base + i;
        char data[64];
        snprintf(data, sizeof data, n % 4 == 3 ? "line %u" : "{\"n\":%u,\"x\":[1,\"two\"]}", n);
        fdn_event_t *ev =
            clock_event(c, types[n % 5], corrs[n % 7], n % 3 == 0 ? n / 2 : 0, data, n % 4 == 3);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        fdn_event_free(ev);
    }
}

/* store_varied's arguments, as a test_pg_history_fn's user. */
typedef struct varied {
    fdn_clock_t *c;
    unsigned base, k;
} varied_t;

/* test_pg_history_fn: store_varied through the first store. */
static void varied_history(fdn_events_t *first, void *user)
{
    const varied_t *v = user;
    store_varied(first, v->c, v->base, v->k);
}

/* Two stores on schema, on the stores' clock of *ck (made here, with the producers'), opened
 * in `order` around 12 varied events (store_varied 0..11 on the producers' clock) stored
 * through the first. */
static void two_stores(const char *schema, test_pg_order_t order, test_pg_clocks_t *ck,
                       fdn_events_t **first, fdn_events_t **second)
{
    test_pg_clocks_init(ck);
    fdn_events_opts_t o;
    store_opts(&o, schema, TEST_PG_CALL_MS, ck->store);
    test_pg_two_stores(&o, order, varied_history, &(varied_t){ck->prod, 0, 12}, first, second);
}

/* GET /v1/events's body for l, as a waiter's or a server thread's answer writes it. */
static char *body_of(const fdn_event_list_t *l)
{
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__admin_events_body(&w, l);
    assert_int_equal(w.rc, 0);
    return w.t.p;
}

static void describe(const fdn_events_query_t *q, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "after_id=%llu before_id=%llu type=%s correlation_id=%s parent_id=%llu limit=%lld "
             "since=%lld until=%lld %s",
             (unsigned long long)q->after_id, (unsigned long long)q->before_id,
             q->type ? q->type : "-", q->correlation_id ? q->correlation_id : "-",
             (unsigned long long)q->parent_id, (long long)q->limit, (long long)q->time_start,
             (long long)q->time_end, q->descending ? "desc" : "asc");
}

/* got (how: which read) lists want's events, equal one for one. */
static void expect_list(const char *what, const char *how, const fdn_event_list_t *got,
                        const fdn_event_t *const *want, size_t n)
{
    if (got->n != n)
        fail_msg("%s: %s lists %zu events, PostgreSQL %zu", what, how, got->n, n);
    for (size_t i = 0; i < n; i++)
        if (!fdn_event_equal(got->items[i], want[i]))
            fail_msg("%s: %s, event %zu differs (ids %llu, %llu; timestamps %lld, %lld)", what, how,
                     i, (unsigned long long)got->items[i]->id, (unsigned long long)want[i]->id,
                     (long long)got->items[i]->ts, (long long)want[i]->ts);
}

/* One query both ways, described by `what`: PostgreSQL's answer (fdn_events_query, one query
 * on PostgreSQL) and memory's (fdn_events_query_memory), which is FDN_ENOENT when after_id is
 * older than memory (memory's oldest position `first`), else PostgreSQL's list, event for
 * event and in JSON (GET /v1/events's body). Returns PostgreSQL's list for the caller's
 * further reads to compare (it frees it), or NULL after the FDN_ENOENT. */
static fdn_event_list_t *query_both(fdn_events_t *es, const fdn_events_query_t *q, uint64_t first,
                                    const char *what)
{
    fdn_event_list_t *p = NULL, *m = NULL;
    assert_int_equal(fdn_events_query(es, q, &p), 0);
    int mrc = fdn_events_query_memory(es, q, &m);
    if (q->after_id + 1 < first) {
        if (mrc != FDN_ENOENT)
            fail_msg("%s: memory (oldest %llu) answered %s, not FDN_ENOENT", what,
                     (unsigned long long)first, fdn_err_name(mrc));
        fdn_event_list_free(p);
        return NULL;
    }
    if (mrc != 0)
        fail_msg("%s: memory answered %s", what, fdn_err_name(mrc));
    expect_list(what, "fdn_events_query_memory", m, (const fdn_event_t *const *)p->items, p->n);
    char *mb = body_of(m), *pb = body_of(p);
    if (strcmp(mb, pb) != 0)
        fail_msg("%s: the answers differ:\n memory:     %s\n PostgreSQL: %s", what, mb, pb);
    fdn_free(mb);
    fdn_free(pb);
    fdn_event_list_free(m);
    return p;
}

/* One query both ways (query_both). Returns the queries it made on PostgreSQL (1). */
static unsigned compare(fdn_events_t *es, const fdn_events_query_t *q, uint64_t first)
{
    char what[256];
    describe(q, what, sizeof what);
    fdn_event_list_free(query_both(es, q, first, what));
    return 1;
}

/* Every cursor from 0 to the head, each filter, each limit. Returns the queries made. */
static unsigned compare_all(fdn_events_t *es, uint64_t head, uint64_t first)
{
    static const char *const types[] = {NULL, "mem.a", "mem.b", "mem.none"};
    static const char *const corrs[] = {NULL, "c-1", "c-2"};
    static const int64_t limits[] = {1, 2, 5, 1000};
    unsigned n = 0;
    for (uint64_t after = 0; after <= head + 1; after++)
        for (size_t t = 0; t < 4; t++)
            for (size_t c = 0; c < 3; c++)
                for (size_t k = 0; k < 4; k++) {
                    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
                    q.after_id = after;
                    q.type = types[t];
                    q.correlation_id = corrs[c];
                    q.limit = limits[k];
                    n += compare(es, &q, first);
                }
    return n;
}

/* Each position's timestamp as PostgreSQL's reads give it (ts[1..head]). */
static void pg_timestamps(fdn_events_t *es, uint64_t head, int64_t *ts)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0); /* one cursor: PostgreSQL */
    assert_int_equal(fdn_event_list_count(l), head);
    for (size_t i = 0; i < l->n; i++) {
        assert_int_equal(l->items[i]->id, i + 1);
        ts[i + 1] = fdn_event_timestamp(l->items[i]);
    }
    fdn_event_list_free(l);
}

/* fdn_events_stats's oldest and newest timestamps are those PostgreSQL's reads give. */
static void expect_stats_ts(fdn_events_t *es, const int64_t *ts)
{
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    if (st.oldest_ts != ts[st.oldest_id] || st.newest_ts != ts[st.newest_id])
        fail_msg("stats: oldest_ts %lld (id %llu), newest_ts %lld (id %llu); PostgreSQL's %lld, "
                 "%lld",
                 (long long)st.oldest_ts, (unsigned long long)st.oldest_id, (long long)st.newest_ts,
                 (unsigned long long)st.newest_id, (long long)ts[st.oldest_id],
                 (long long)ts[st.newest_id]);
}

/* One time-bounded query (q: one cursor, so PostgreSQL answers fdn_events_query) against the
 * reads memory answers: fdn_events_query_memory (query_both: FDN_ENOENT when the cursor is
 * older than memory), fdn_events_query with both cursors inside memory, and, on a whole answer
 * (limit 1000), a parent_id query (memory's) against PostgreSQL's events of that parent.
 * Returns the queries it made on PostgreSQL (1). */
static unsigned compare_timed(fdn_events_t *es, const fdn_events_query_t *q, uint64_t first,
                              uint64_t head)
{
    char what[256];
    describe(q, what, sizeof what);
    fdn_event_list_t *p = query_both(es, q, first, what), *m = NULL;
    if (p == NULL)
        return 1;
    const fdn_event_t *const *pv = (const fdn_event_t *const *)p->items;
    fdn_events_query_t q2 = *q;
    q2.before_id = head + 1; /* both cursors inside memory: memory answers */
    assert_int_equal(fdn_events_query(es, &q2, &m), 0);
    expect_list(what, "the query with before_id (memory)", m, pv, p->n);
    fdn_event_list_free(m);
    static const uint64_t parents[] = {6, 10, 13, 19};
    for (size_t k = 0; q->limit == 1000 && k < 4; k++) {
        const fdn_event_t *want[64];
        size_t n = 0;
        for (size_t i = 0; i < p->n && n < 64; i++)
            if (p->items[i]->parent == parents[k])
                want[n++] = p->items[i];
        q2 = *q;
        q2.parent_id = parents[k]; /* memory answers */
        assert_int_equal(fdn_events_query(es, &q2, &m), 0);
        expect_list(what, "the parent_id query (memory)", m, want, n);
        fdn_event_list_free(m);
    }
    fdn_event_list_free(p);
    return 1;
}

/* Time bounds around PostgreSQL's timestamps (ts[id]), with cursors before and inside memory
 * (its oldest: first), filters, limits and both orders. Returns the queries made. */
static unsigned compare_timed_all(fdn_events_t *es, uint64_t head, uint64_t first,
                                  const int64_t *ts)
{
    const int64_t bounds[][2] = {
        {ts[first], ts[head]},      {ts[first] + 1, ts[head] - 1}, {ts[first + 2], ts[head - 4]},
        {INT64_MIN, ts[first + 5]}, {ts[first + 3], INT64_MAX},    {ts[first + 1], ts[first + 1]},
        {ts[1], ts[first - 1]},     {ts[head] + 1, INT64_MAX},
    };
    const uint64_t afters[] = {0, first - 2, first - 1, first + 1, head - 3, head};
    static const char *const types[] = {NULL, "mem.a"};
    static const char *const corrs[] = {NULL, "c-1"};
    static const int64_t limits[] = {2, 1000};
    unsigned n = 0;
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
        for (size_t a = 0; a < sizeof afters / sizeof afters[0]; a++)
            for (size_t t = 0; t < 2; t++)
                for (size_t c = 0; c < 2; c++)
                    for (size_t k = 0; k < 2; k++)
                        for (int d = 0; d < 2; d++) {
                            fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
                            q.after_id = afters[a];
                            q.type = types[t];
                            q.correlation_id = corrs[c];
                            q.limit = limits[k];
                            q.time_start = bounds[b][0];
                            q.time_end = bounds[b][1];
                            q.descending = d != 0;
                            n += compare_timed(es, &q, first, head);
                        }
    return n;
}

static void memory_answers_as_postgres(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memeq");
    /* the stores' clock, and the producers': another monotonic origin, as another process's
     * (PostgreSQL's reads give an event the timestamp of its wall time on the store's clock,
     * not the producer's; memory keeps this store's events with the producer's) */
    test_pg_clocks_t ck;
    /* the other store writes the log's start; ours opens after it (its memory starts at the
     * head), then both append, ours last: its writer reads the other's positions into memory
     * before it puts its own there, so memory ends at the head */
    fdn_events_t *other = NULL, *es = NULL;
    two_stores(schema, TEST_PG_HISTORY_THEN_SECOND, &ck, &other, &es);
    fdn_clock_t *prod = ck.prod;
    uint64_t first = newest(es) + 1;
    assert_int_equal(first, 13);
    store_varied(es, prod, 12, 10);
    store_varied(other, prod, 22, 10);
    store_varied(es, prod, 32, 8);
    uint64_t head = newest(es);
    assert_int_equal(head, 40);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    int64_t ts[64];
    pg_timestamps(es, head, ts);
    expect_stats_ts(es, ts);

    uint64_t q0 = pg_queries(tm);
    unsigned made = compare_all(es, head, first);
    /* and with time bounds */
    made += compare_timed_all(es, head, first, ts);
    /* each fdn_events_query above was a query on PostgreSQL, none of memory's */
    assert_int_equal(pg_queries(tm) - q0, made);

    /* the max_results cap cuts both the same */
    assert_int_equal(fdn_events_set_max_results(es, 3), 0);
    q0 = pg_queries(tm);
    made = 0;
    for (uint64_t after = first - 1; after <= head; after++) {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.after_id = after;
        q.limit = 100;
        made += compare(es, &q, first);
        q.type = "mem.b";
        made += compare(es, &q, first);
    }
    assert_int_equal(pg_queries(tm) - q0, made);
    assert_int_equal(fdn_events_set_max_results(es, 100000), 0);

    /* memory's own retention (storage.hot.max_events) evicts its oldest: cursors before the
     * new oldest are FDN_ENOENT, the others still answered as PostgreSQL does */
    assert_int_equal(fdn_events_set_max_events(es, 10), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, head - 9);
    q0 = pg_queries(tm);
    made = compare_all(es, head, st.oldest_id);
    assert_int_equal(pg_queries(tm) - q0, made);
    expect_stats_ts(es, ts);

    /* time bounds: memory filters on the timestamps its answer shows (PostgreSQL's), so every
     * cursor, filter, order and limit lists what PostgreSQL lists between them */
    q0 = pg_queries(tm);
    made = compare_timed_all(es, head, st.oldest_id, ts);
    assert_int_equal(pg_queries(tm) - q0, made);

    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_events_destroy(other);
    fdn_telemetry_destroy(tm);
    test_pg_clocks_destroy(&ck);
}

/* id's event as `es` reads it: get (memory), a query with both cursors (memory), a parent_id
 * query (memory), and a query after id - 1 (PostgreSQL); each must equal want (NULL: the
 * first read sets it). */
static fdn_event_t *dup_of(const fdn_event_t *ev)
{
    fdn_event_t *c = NULL;
    assert_int_equal(fdn_event_copy(&c, ev), 0);
    return c;
}

static void expect_reads(fdn_events_t *es, const char *name, uint64_t id, fdn_event_t **want)
{
    fdn_event_t *got[4] = {NULL, NULL, NULL, NULL};
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get(es, id, &got[0]), 0);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.after_id = id - 1;
    q.before_id = id + 1;
    q.limit = 1;
    assert_int_equal(fdn_events_query(es, &q, &l), 0); /* both cursors in memory: memory */
    assert_int_equal(fdn_event_list_count(l), 1);
    got[1] = dup_of(fdn_event_list_at(l, 0));
    fdn_event_list_free(l);
    q.before_id = 0;
    assert_int_equal(fdn_events_query(es, &q, &l), 0); /* one cursor: PostgreSQL */
    assert_int_equal(fdn_event_list_count(l), 1);
    got[2] = dup_of(fdn_event_list_at(l, 0));
    fdn_event_list_free(l);
    uint64_t parent = fdn_event_parent_id(got[0]);
    if (parent != 0) { /* a parent_id filter runs on memory */
        q.parent_id = parent;
        q.after_id = id - 1;
        q.before_id = id + 1;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
        assert_int_equal(fdn_event_list_count(l), 1);
        got[3] = dup_of(fdn_event_list_at(l, 0));
        fdn_event_list_free(l);
    }
    static const char *const how[] = {"get", "query in memory", "query on PostgreSQL",
                                      "parent_id query"};
    if (*want == NULL)
        *want = dup_of(got[2]);
    for (size_t i = 0; i < 4; i++) {
        if (got[i] == NULL)
            continue;
        if (!fdn_event_equal(got[i], *want))
            fail_msg("%s, id %llu, %s: timestamp %lld, PostgreSQL's %lld", name,
                     (unsigned long long)id, how[i], (long long)fdn_event_timestamp(got[i]),
                     (long long)fdn_event_timestamp(*want));
        fdn_event_free(got[i]);
    }
}

/* A subscription's deliveries: each event's timestamp, by id. */
typedef struct ts_sub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t ts[32];
    size_t n;
} ts_sub_t;

static void ts_collect(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    (void)skipped;
    ts_sub_t *c = user;
    pthread_mutex_lock(&c->mu);
    uint64_t id = fdn_event_id(ev);
    if (id < 32)
        c->ts[id] = fdn_event_timestamp(ev);
    c->n++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Subscribe to es from position 0 and collect the timestamps of its first n events (a
 * 60 s bound on the wait is a failure, not a synchronisation). */
static void subscribed_ts(fdn_events_t *es, ts_sub_t *c, size_t n)
{
    memset(c->ts, 0, sizeof c->ts);
    c->n = 0;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    so.from_position = true;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, ts_collect, c, &sub), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (c->n < n && pthread_cond_timedwait(&c->cv, &c->mu, &dl) == 0) {
    }
    size_t got = c->n;
    pthread_mutex_unlock(&c->mu);
    fdn_events_unsubscribe(sub);
    assert_true(got >= n);
}

/* An event reads the same through every read of every store on the log: the store whose
 * writer put it into memory (with the producer's timestamp), another whose follower or writer
 * read it from PostgreSQL (rebuilt from its wall time), and PostgreSQL itself. */
static void every_read_gives_postgres_timestamps(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memts");
    test_pg_clocks_t ck;
    /* both open first: es's writer puts the history into its memory */
    fdn_events_t *es = NULL, *other = NULL;
    two_stores(schema, TEST_PG_BOTH_THEN_HISTORY, &ck, &es, &other);
    fdn_clock_t *prod = ck.prod;
    store_varied(other, prod, 12, 4); /* other's writer reads es's into memory first */
    uint64_t head = newest(other);
    assert_int_equal(head, 16);
    store_varied(es, prod, 16, 1); /* es's memory up to the head too */
    ts_sub_t subs[2];
    subscribed_ts(es, &subs[0], head);
    subscribed_ts(other, &subs[1], head);
    for (uint64_t id = 1; id <= head; id++) {
        fdn_event_t *want = NULL;
        expect_reads(es, "writer's store", id, &want);
        expect_reads(other, "other store", id, &want);
        for (size_t k = 0; k < 2; k++)
            if (subs[k].ts[id] != fdn_event_timestamp(want))
                fail_msg("%s, id %llu, subscription: timestamp %lld, PostgreSQL's %lld",
                         k == 0 ? "writer's store" : "other store", (unsigned long long)id,
                         (long long)subs[k].ts[id], (long long)fdn_event_timestamp(want));
        fdn_event_free(want);
    }
    for (size_t k = 0; k < 2; k++) {
        pthread_mutex_destroy(&subs[k].mu);
        pthread_cond_destroy(&subs[k].cv);
    }
    fdn_events_destroy(es);
    fdn_events_destroy(other);
    test_pg_clocks_destroy(&ck);
}

/* ---- one clock offset per answer ---- */

static fdn_clock_t *g_step_clock;
static int64_t g_step_ns;

/* fdn__evs_query_check_hook: once memory was chosen to answer, before its scan, the wall
 * clock steps (once) */
static void step_wall_once(fdn_events_t *es, void *user)
{
    (void)es;
    (void)user;
    if (g_step_ns != 0)
        assert_int_equal(fdn__clock_step_wall(g_step_clock, g_step_ns), 0);
    g_step_ns = 0;
}

/* A time-bounded query answered from memory reads the store's clock offset (wall - monotonic)
 * once: a step of the wall clock during it changes neither its bounds nor its timestamps; the
 * reads after it give every event the new offset's timestamp (PostgreSQL's and memory's, and
 * the stats, alike). */
static void one_offset_per_answer(void **state)
{
    (void)state;
    const int64_t STEP = 5000000000;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memoff");
    test_pg_clocks_t ck;
    test_pg_clocks_init(&ck);
    fdn_clock_t *clk = ck.store, *prod = ck.prod;
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, clk);
    store_varied(es, prod, 0, 12);
    uint64_t head = newest(es);
    assert_int_equal(head, 12);
    int64_t ts[64];
    pg_timestamps(es, head, ts);

    fdn_events_query_t qp = FDN_EVENTS_QUERY_INIT; /* one cursor: PostgreSQL */
    qp.limit = 1000;
    qp.time_start = ts[3];
    qp.time_end = ts[9];
    fdn_event_list_t *p = NULL, *m = NULL;
    assert_int_equal(fdn_events_query(es, &qp, &p), 0);
    assert_int_equal(fdn_event_list_count(p), 7);
    fdn_events_query_t qm = qp; /* both cursors inside memory: memory */
    qm.before_id = head + 1;
    g_step_clock = clk;
    g_step_ns = STEP;
    fdn__evs_query_check_hook = step_wall_once;
    int rc = fdn_events_query(es, &qm, &m);
    fdn__evs_query_check_hook = NULL;
    assert_int_equal(rc, 0);
    assert_int_equal(g_step_ns, 0); /* the wall clock stepped during the query */
    expect_list("wall clock stepped during the query", "memory", m,
                (const fdn_event_t *const *)p->items, p->n);
    fdn_event_list_free(m);

    /* from now on the timestamps are STEP earlier (the offset is STEP larger), and so are the
     * bounds that list the same events */
    for (uint64_t id = 1; id <= head; id++)
        ts[id] -= STEP;
    qp.time_start -= STEP;
    qp.time_end -= STEP;
    qm.time_start -= STEP;
    qm.time_end -= STEP;
    fdn_event_list_t *p2 = NULL;
    assert_int_equal(fdn_events_query(es, &qp, &p2), 0);
    assert_int_equal(fdn_events_query(es, &qm, &m), 0);
    assert_int_equal(fdn_event_list_count(p2), 7);
    for (size_t i = 0; i < p2->n; i++) {
        assert_int_equal(p2->items[i]->id, p->items[i]->id);
        assert_int_equal(p2->items[i]->ts, p->items[i]->ts - STEP);
    }
    expect_list("after the step", "memory", m, (const fdn_event_t *const *)p2->items, p2->n);
    expect_stats_ts(es, ts);
    fdn_event_list_free(m);
    fdn_event_list_free(p2);
    fdn_event_list_free(p);
    fdn_events_destroy(es);
    test_pg_clocks_destroy(&ck);
}

/* ---- waiters answered without a query on PostgreSQL ---- */

typedef struct query {
    fdn_admin_t *a;
    char uri[160];
    fdn__http_resp_t r;
    atomic_bool done;
} query_t;

static void *query_main(void *arg)
{
    query_t *q = arg;
    memset(&q->r, 0, sizeof q->r);
    fdn__admin_dispatch(q->a, "GET", q->uri, NULL, NULL, 0, &q->r);
    atomic_store(&q->done, true);
    return NULL;
}

/* Start n waiting queries q[i] (uri set) on a; return once each waits or was answered. */
static void start_waiters(fdn_admin_t *a, query_t *q, pthread_t *th, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        q[i].a = a;
        atomic_init(&q[i].done, false);
        assert_int_equal(pthread_create(&th[i], NULL, query_main, &q[i]), 0);
    }
    for (;;) { /* a hang is caught by ctest's TIMEOUT */
        size_t settled = fdn__admin_events_waiting(a);
        for (unsigned i = 0; i < n; i++)
            settled += atomic_load(&q[i].done);
        if (settled >= n)
            break;
        sched_yield();
    }
}

static void woken_waiters_are_answered_from_memory(void **state)
{
    (void)state;
    enum { N = 6 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memwake");
    /* positions 1..4 are older than the server's store (its memory starts at 5) */
    fdn_events_opts_t o;
    store_opts(&o, schema, TEST_PG_CALL_MS, NULL);
    fdn_events_t *other = NULL, *es = NULL;
    test_pg_two_stores(&o, TEST_PG_HISTORY_THEN_SECOND, old_history, &(unsigned){4}, &other, &es);
    assert_int_equal(newest(es), 4);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    fdn_admin_t *a = admin_on(es);
    fdn_clock_t *clk = NULL; /* stands still: no waiter expires, however slow the machine */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);

    uint64_t before = pg_queries(tm);
    /* even waiters after the head, odd ones after 0 (older than memory), on types and a
     * correlation id nothing matched yet */
    static query_t q[N];
    pthread_t th[N];
    for (unsigned i = 0; i < N; i++)
        snprintf(q[i].uri, sizeof q[i].uri, "/v1/events?after_id=%u&%s=mem.w%u&wait_ms=60000",
                 i % 2 == 0 ? 4 : 0, i == N - 1 ? "correlation_id" : "type", i);
    start_waiters(a, q, th, N);
    assert_int_equal(fdn__admin_events_waiting(a), N);

    /* one batch wakes them all: an event for each, between events of no waiter's */
    fdn_event_t *evs[2 * N];
    uint64_t ids[2 * N];
    for (unsigned i = 0; i < N; i++) {
        char t[32];
        snprintf(t, sizeof t, "mem.w%u", i);
        evs[2 * i] = test_pg_event("mem.noise", NULL, 9, i, 0, 0);
        evs[2 * i + 1] = i == N - 1 ? test_pg_event("mem.any", t, 1, i, 0, 0)
                                    : test_pg_event(t, NULL, 1, i, 0, 0);
    }
    assert_int_equal(fdn_events_store_batch(es, (const fdn_event_t *const *)evs, 2 * N, ids), 0);
    for (unsigned i = 0; i < 2 * N; i++)
        fdn_event_free(evs[i]);
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    uint64_t after = pg_queries(tm);
    print_message("%d woken waiters: %llu queries on PostgreSQL (their %d before the waits)\n", N,
                  (unsigned long long)(after - before), N);

    for (unsigned i = 0; i < N; i++) {
        if (q[i].r.status != 200)
            fail_msg("waiter %u answered %u", i, q[i].r.status);
        json_t *list = json_object_get(q[i].r.json, "events");
        if (json_array_size(list) != 1)
            fail_msg("waiter %u (%s): %zu events", i, q[i].uri, json_array_size(list));
        json_t *e = json_array_get(list, 0);
        assert_int_equal(json_integer_value(json_object_get(e, "id")), (json_int_t)ids[2 * i + 1]);
        json_t *data = json_object_get(e, "data");
        assert_int_equal(json_integer_value(json_object_get(data, "w")), 1);
        assert_int_equal(json_integer_value(json_object_get(data, "s")), (json_int_t)i);
        fdn__http_resp_clear(&q[i].r);
    }
    if (after - before != N)
        fail_msg("%d woken waiters made %llu queries on PostgreSQL, not the %d of before their "
                 "waits",
                 N, (unsigned long long)(after - before), N);
    assert_int_equal(fdn__admin_events_waiting(a), 0);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_events_destroy(other);
    fdn_telemetry_destroy(tm);
}

static void expired_waiters_are_answered_while_postgres_is_stopped(void **state)
{
    (void)state;
    /* CALL_MS bounds the waiters' own queries too, made with PostgreSQL up: 10 s, as a loaded
     * machine may stall one past 2 s (a query per answer failed after it: 503) */
    enum { N = 4, CALL_MS = 10000 };
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memexp");
    fdn_events_t *other = open_store(schema, TEST_PG_CALL_MS, NULL);
    store_n(other, "mem.old", 0, 3);
    fdn_events_t *es = open_store(schema, CALL_MS, NULL);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    fdn_admin_t *a = admin_on(es);
    fdn_clock_t *clk = NULL; /* the waiters' deadlines fire when the test advances it */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);

    uint64_t before = pg_queries(tm);
    /* waiters on filters nothing matches: after the head, and after 0 (older than memory) */
    static query_t q[N];
    pthread_t th[N];
    for (unsigned i = 0; i < N; i++)
        snprintf(q[i].uri, sizeof q[i].uri, "/v1/events?after_id=%u&%s=mem.quiet%u&wait_ms=1500",
                 i % 2 == 0 ? 3 : 0, i == N - 1 ? "correlation_id" : "type", i);
    start_waiters(a, q, th, N);
    assert_int_equal(fdn__admin_events_waiting(a), N); /* no deadline fired: the clock stands */
    /* PostgreSQL stops: a query on it would fail after CALL_MS; the waiters expire */
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    assert_int_equal(fdn_clock_advance(clk, 1500000000LL), 0);
    fdn__admin_events_wait_tick(a);
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    uint64_t after = pg_queries(tm);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    print_message("%d expired waiters, PostgreSQL stopped: %llu queries on it (their %d before "
                  "the waits)\n",
                  N, (unsigned long long)(after - before), N);

    for (unsigned i = 0; i < N; i++) {
        if (q[i].r.status != 200)
            fail_msg("waiter %u (%s) answered %u", i, q[i].uri, q[i].r.status);
        json_t *list = json_object_get(q[i].r.json, "events");
        assert_true(json_is_array(list));
        assert_int_equal(json_array_size(list), 0); /* nothing yet: resume from after_id */
        assert_int_equal(json_integer_value(json_object_get(q[i].r.json, "count")), 0);
        fdn__http_resp_clear(&q[i].r);
    }
    if (after - before != N)
        fail_msg("%d expired waiters made %llu queries on PostgreSQL, not the %d of before "
                 "their waits",
                 N, (unsigned long long)(after - before), N);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_events_destroy(other);
    fdn_telemetry_destroy(tm);
}

/* A waiter whose events memory evicted during its wait (its own retention) is answered by a
 * query on PostgreSQL, which runs on its request's thread (the server thread that sends the
 * answer), not on the waiter thread: another waiter expiring while PostgreSQL is stopped is
 * answered at its deadline, while the first one's query waits for PostgreSQL; that query
 * answers once PostgreSQL resumes. The deadlines are on a manual clock (fdn__evwait_set_clock):
 * each fires when the test advances it, however long the set-up took. */
static void evicted_waiter_is_answered_off_the_waiter_thread(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memevict");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, NULL);
    store_n(es, "mem.old", 0, 3);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    fdn_admin_t *a = admin_on(es);
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);

    /* A waits after position 3, on a type nothing matches: its deadline at 5 s */
    static query_t qa, qb;
    pthread_t ta, tb;
    snprintf(qa.uri, sizeof qa.uri, "/v1/events?after_id=3&type=mem.quiet.a&wait_ms=5000");
    start_waiters(a, &qa, &ta, 1);
    /* positions 4..6, then memory keeps only the newest: A's answer needs PostgreSQL */
    store_n(es, "mem.noise", 1, 3);
    assert_int_equal(fdn_events_set_max_events(es, 1), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, 6);
    /* B waits after the head, which memory holds; its deadline (6 s) is after A's */
    snprintf(qb.uri, sizeof qb.uri, "/v1/events?after_id=6&type=mem.quiet.b&wait_ms=6000");
    qb.a = a;
    atomic_init(&qb.done, false);
    assert_int_equal(pthread_create(&tb, NULL, query_main, &qb), 0);
    while (fdn__admin_events_waiting(a) + atomic_load(&qa.done) + atomic_load(&qb.done) < 2)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    assert_int_equal(fdn__admin_events_waiting(a), 2); /* no deadline fired: the clock stands */
    uint64_t before = pg_queries(tm);
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    /* A expires: memory no longer holds its answer, so its query runs on PostgreSQL */
    assert_int_equal(fdn_clock_advance(clk, 5000000000LL), 0);
    fdn__admin_events_wait_tick(a);
    while (fdn__admin_events_waiting(a) > 1)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    /* B expires: answered from memory while A's query waits for PostgreSQL (up to
     * TEST_PG_CALL_MS) */
    assert_int_equal(fdn_clock_advance(clk, 1000000000LL), 0);
    fdn__admin_events_wait_tick(a);
    pthread_join(tb, NULL);
    bool a_done = atomic_load(&qa.done);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    pthread_join(ta, NULL);
    if (a_done)
        fail_msg("B was answered after A (status %u): A's query on PostgreSQL held the waiter "
                 "thread",
                 qa.r.status);
    assert_int_equal(qb.r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(qb.r.json, "count")), 0);
    if (qa.r.status != 200)
        fail_msg("A answered %u", qa.r.status);
    assert_int_equal(json_integer_value(json_object_get(qa.r.json, "count")), 0);
    assert_int_equal(json_array_size(json_object_get(qa.r.json, "events")), 0);
    assert_int_equal(pg_queries(tm) - before, 1); /* A's, on PostgreSQL */
    assert_int_equal(fdn__admin_events_waiting(a), 0);
    fdn__http_resp_clear(&qa.r);
    fdn__http_resp_clear(&qb.r);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

typedef struct shut {
    fdn_admin_t *a;
    atomic_bool done;
} shut_t;

static void *shutdown_main(void *arg)
{
    shut_t *s = arg;
    fdn_admin_shutdown(s->a);
    atomic_store(&s->done, true);
    return NULL;
}

/* Waiters handed off to their server threads (memory evicted their positions) whose clients
 * are gone, over a real server: client A closes once its waiter has been handed off and its
 * query is held by a stopped PostgreSQL, client B while its query still waits; the server
 * shuts down while PostgreSQL is still stopped. Whatever the server does with each answer
 * (the render runs and the send fails, or the request ends without it), what the render holds
 * (the waiter, its query) is freed once: ASan reports a leak or a double free, and the
 * shutdown completes once PostgreSQL resumes, with at most one query per waiter on it. */
static void handed_off_waiters_of_closed_connections(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "memclose");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, NULL);
    store_n(es, "mem.old", 0, 3);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn__events_set_telemetry(es, tm);
    fdn_admin_t *a = admin_on(es);
    fdn_clock_t *clk = NULL; /* the waiters' deadlines fire when the test advances it */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
    fdn__admin_events_wait_clock(a, clk);
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = fdn_admin_port(a);

    int ca = test_admin_raw_get(port, "/v1/events?after_id=3&type=mem.gone.a&wait_ms=4000");
    int cb = test_admin_raw_get(port, "/v1/events?after_id=3&type=mem.gone.b&wait_ms=4000");
    while (fdn__admin_events_waiting(a) < 2)
        sched_yield(); /* a hang is caught by ctest's TIMEOUT */
    /* positions 4..6, then memory keeps only the newest: both answers need PostgreSQL */
    store_n(es, "mem.noise", 1, 3);
    assert_int_equal(fdn_events_set_max_events(es, 1), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    uint64_t before = pg_queries(tm);
    close(cb); /* B leaves while its query waits */
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    assert_int_equal(fdn__admin_events_waiting(a), 2); /* no deadline fired: the clock stands */
    /* both expire and are handed off: their queries wait for PostgreSQL on server threads */
    assert_int_equal(fdn_clock_advance(clk, 4000000000LL), 0);
    fdn__admin_events_wait_tick(a);
    while (fdn__admin_events_waiting(a) > 0)
        sched_yield();
    close(ca); /* A leaves while its query is held */
    shut_t sh = {a, false};
    pthread_t st;
    assert_int_equal(pthread_create(&st, NULL, shutdown_main, &sh), 0);
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    pthread_join(st, NULL);
    assert_true(atomic_load(&sh.done));
    assert_true(pg_queries(tm) - before <= 2);
    assert_int_equal(fdn__admin_events_waiting(a), 0);
    fdn_admin_destroy(a);
    fdn_clock_destroy(clk);
    fdn__events_set_telemetry(es, NULL);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_answers_as_postgres),
        cmocka_unit_test(every_read_gives_postgres_timestamps),
        cmocka_unit_test(woken_waiters_are_answered_from_memory),
        cmocka_unit_test(expired_waiters_are_answered_while_postgres_is_stopped),
        cmocka_unit_test(one_offset_per_answer),
        cmocka_unit_test(evicted_waiter_is_answered_off_the_waiter_thread),
        cmocka_unit_test(handed_off_waiters_of_closed_connections),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
