/* The event store on PostgreSQL when PostgreSQL or the writer fails, on a cluster of the
 * test's own (scripts/pg-server.sh with fsync on: the crash test needs it; the shared fixture
 * must not be killed under the other tests):
 *  - the writer process SIGKILLed while it appends: every event it acknowledged is stored
 *    exactly once, positions stay gap-free;
 *  - PostgreSQL SIGKILLed during appends and restarted: the same;
 *  - PostgreSQL stopped (SIGSTOP) without a spool: a store fails within command_timeout_ms
 *    with FDN_EUNAVAILABLE, the breaker opens (later stores are refused without trying) and
 *    reports a retry time; once PostgreSQL runs again the store recovers;
 *  - PostgreSQL away for 5 s under load with the spool on: every store is acknowledged,
 *    nothing acknowledged is lost, the writer's order is kept, the spool drains, and a
 *    from-position subscriber sees every position once, in order;
 *  - a spool that is full answers FDN_EUNAVAILABLE.
 * Waits are on conditions (process exit, a status read, a counter) bounded by deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/breaker.h>
#include <fdn/clock.h>
#include <fdn/events.h>

#include "engine.h"
#include "event_make.h"
#include "pg_census.h"
#include "pg_fixture.h"

static test_engine_server_t *g_pg;

/* A store on the test's own cluster, its calls bounded by timeout_ms, with a spool when given.
 * Its first connection, at open (with the migration), keeps the fixture's TEST_PG_CALL_MS:
 * the tests bound calls, not the open (slow_connections_do_not_refuse_the_start has its own),
 * and 300 ms was too short for it with both cores busy (a_full_spool_answers_unavailable:
 * "cannot connect: no answer within 300 ms"). A call's reconnection stays within the call's
 * bound. */
static fdn_events_t *open_store(const char *schema, int64_t timeout_ms, const char *spool,
                                uint64_t spool_max)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.command_timeout_ms = timeout_ms;
    o.postgres.spool_path = spool;
    if (spool_max > 0)
        o.postgres.spool_max_bytes = spool_max;
    return test_pg_store_open_short(&o); /* bounds down to 300 ms: see pg_fixture.h */
}

static fdn_event_t *make_event(unsigned w, unsigned s)
{
    return test_pg_event("chaos", NULL, w, s, 0, 0);
}

enum { MAXW = 4, MAXS = 20000 };

/* Every event of the schema, read by a fresh store (from PostgreSQL; pg_census.h): asserts
 * positions 1..n, gap-free; test_pg_census_count(c, w, s) is how often (w, s) is stored and
 * test_pg_census_pos(c, w, s) where. */
static test_pg_census_t *take_census(const char *schema)
{
    return test_pg_census_take(g_pg->url, schema, 1000, MAXW, MAXS);
}

/* ---- the writer process killed ---- */

/* A child: stores (0, s) one by one and writes s to fd after each acknowledged store, until
 * killed. */
static void child_writer(const char *schema, int fd)
{
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS, NULL, 0);
    for (unsigned s = 0; s < MAXS; s++) {
        fdn_event_t *ev = make_event(0, s);
        uint64_t id = 0;
        if (fdn_events_store(es, ev, &id) == 0 && write(fd, &s, sizeof(s)) != sizeof(s))
            _exit(3);
        fdn_event_free(ev);
    }
    _exit(0);
}

static void writer_process_killed(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "wkill");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(fds[0]);
        child_writer(schema, fds[1]);
    }
    close(fds[1]);
    /* kill it once it acknowledged 300 stores, while it appends */
    unsigned s = 0;
    size_t acked = 0;
    static uint8_t ack[MAXS];
    memset(ack, 0, sizeof(ack));
    while (read(fds[0], &s, sizeof(s)) == sizeof(s)) {
        assert_true(s < MAXS);
        ack[s] = 1;
        if (++acked == 300)
            assert_int_equal(kill(kid, SIGKILL), 0);
    }
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    test_pg_census_t *c = take_census(schema);
    for (unsigned i = 0; i < MAXS; i++) {
        if (ack[i])
            assert_int_equal(test_pg_census_count(c, 0, i), 1); /* acknowledged: exactly once */
        else
            assert_true(test_pg_census_count(c, 0, i) <= 1); /* the one in flight: at most once */
    }
    assert_true(c->n >= acked && c->n <= acked + 1);
    test_pg_census_free(c);
}

/* ---- PostgreSQL killed ---- */

typedef struct loader {
    fdn_events_t *es;
    unsigned w;
    atomic_uint next;  /* stores attempted */
    atomic_uint acked; /* of which acknowledged */
    atomic_bool stop;
    /* Acknowledged stores the loader may reach before it waits for more: the
     * tests grant them phase by phase so that a fast phase (the spool takes
     * stores at local-disk speed) cannot use up the MAXS stores it has. */
    unsigned budget;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t ok[MAXS];   /* 1: acknowledged */
    uint64_t ids[MAXS]; /* the id each acknowledged store got (0: spooled) */
    int last_rc;
} loader_t;

static loader_t *loader_new(fdn_events_t *es, unsigned w, unsigned budget)
{
    loader_t *ld = calloc(1, sizeof(loader_t));
    assert_non_null(ld);
    ld->es = es;
    ld->w = w;
    ld->budget = budget;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    return ld;
}

static void loader_free(loader_t *ld)
{
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    free(ld);
}

/* Let the loader have n more stores acknowledged. */
static void loader_grant(loader_t *ld, unsigned n)
{
    pthread_mutex_lock(&ld->mu);
    ld->budget = ld->budget + n > MAXS ? MAXS : ld->budget + n;
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
}

static void loader_stop(loader_t *ld)
{
    pthread_mutex_lock(&ld->mu);
    atomic_store(&ld->stop, true);
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
}

/* Whether another store may be attempted: waits for budget, false once stopped. */
static bool loader_may(loader_t *ld)
{
    pthread_mutex_lock(&ld->mu);
    while (atomic_load(&ld->acked) >= ld->budget && !atomic_load(&ld->stop))
        pthread_cond_wait(&ld->cv, &ld->mu);
    bool go = !atomic_load(&ld->stop);
    pthread_mutex_unlock(&ld->mu);
    return go;
}

static void *loader_main(void *arg)
{
    loader_t *ld = arg;
    for (unsigned s = 0; s < MAXS && loader_may(ld); s++) {
        fdn_event_t *ev = make_event(ld->w, s);
        uint64_t id = 0;
        int rc = fdn_events_store(ld->es, ev, &id);
        fdn_event_free(ev);
        if (rc == 0) {
            ld->ok[s] = 1;
            ld->ids[s] = id;
            atomic_fetch_add(&ld->acked, 1);
        } else {
            ld->last_rc = rc;
        }
        atomic_store(&ld->next, s + 1);
    }
    return NULL;
}

typedef struct want {
    loader_t *ld;
    unsigned n;
} want_t;

static bool attempted(void *arg)
{
    want_t *w = arg;
    return atomic_load(&w->ld->next) >= w->n;
}

static bool acked_at_least(void *arg)
{
    want_t *w = arg;
    return atomic_load(&w->ld->acked) >= w->n;
}

static void postgres_killed_during_appends(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "pgkill");
    fdn_events_t *es = open_store(schema, 2000, NULL, 0);
    loader_t *ld[2];
    pthread_t th[2];
    for (unsigned w = 0; w < 2; w++) {
        ld[w] = loader_new(es, w, 1000); /* granted phase by phase, see the spool test */
        assert_int_equal(pthread_create(&th[w], NULL, loader_main, ld[w]), 0);
    }
    want_t w0 = {ld[0], 200};
    assert_true(test_wait_until(acked_at_least, &w0, 30000));
    test_engine_script("pg-server.sh", "kill", g_pg->dir); /* SIGKILL, during appends */
    for (unsigned w = 0; w < 2; w++)
        loader_grant(ld[w], 2000);
    want_t f0 = {ld[0], atomic_load(&ld[0]->next) + 5};
    assert_true(test_wait_until(attempted, &f0, 30000)); /* stores fail or wait meanwhile */
    test_engine_script("pg-server.sh", "restart", g_pg->dir);
    for (unsigned w = 0; w < 2; w++)
        loader_grant(ld[w], 3000);
    want_t w1 = {ld[0], atomic_load(&ld[0]->acked) + 200};
    assert_true(test_wait_until(acked_at_least, &w1, 30000)); /* and succeed again */
    for (unsigned w = 0; w < 2; w++) {
        loader_stop(ld[w]);
        pthread_join(th[w], NULL);
    }
    fdn_events_destroy(es);
    test_pg_census_t *c = take_census(schema);
    size_t acked = 0;
    for (unsigned w = 0; w < 2; w++) {
        uint64_t last = 0;
        for (unsigned s = 0; s < MAXS; s++) {
            if (ld[w]->ok[s]) {
                acked++;
                assert_int_equal(test_pg_census_count(c, w, s), 1); /* exactly once */
                /* where it was acknowledged */
                assert_int_equal(test_pg_census_pos(c, w, s), ld[w]->ids[s]);
                assert_true(ld[w]->ids[s] > last);             /* in the writer's order */
                last = ld[w]->ids[s];
            } else {
                assert_true(test_pg_census_count(c, w, s) <= 1); /* a failed store: at most once */
            }
        }
    }
    assert_true(c->n >= acked);
    test_pg_census_free(c);
    loader_free(ld[0]);
    loader_free(ld[1]);
}

/* ---- PostgreSQL stopped, no spool: fail within the timeout, breaker opens ---- */

static bool store_succeeds(void *arg)
{
    fdn_events_t *es = arg;
    fdn_event_t *ev = make_event(1, 1);
    int rc = fdn_events_store(es, ev, NULL);
    fdn_event_free(ev);
    return rc == 0;
}

static void postgres_stopped_without_spool(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof(schema), "down");
    /* a call's bound. A call without one would hang until SIGCONT, which never comes: the
     * test then fails at ctest's timeout. No ceiling on the time taken is asserted (a loaded
     * machine may deschedule the caller for any time); the floor is the bound itself, the
     * sign that the store waited for the server rather than failing at once */
    enum { TIMEOUT_MS = 400 };
    fdn_events_t *es = open_store(schema, TIMEOUT_MS, NULL, 0);
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 2;
    bo.window_ms = 60000;
    bo.recovery_time_ms = 600000; /* stays open until the test resets it */
    bo.probe_timeout_ms = 5000;
    fdn_breaker_t *br = NULL;
    assert_int_equal(fdn_breaker_create(&br, "events.postgres.test", &bo), 0);
    assert_int_equal(fdn_events_set_breaker(es, br), 0);
    /* PostgreSQL up, but a loaded machine may stall a store past the 400 ms bound: store until
     * one succeeds (a bounded poll), then forget those failures */
    assert_true(test_wait_until(store_succeeds, es, 60000));
    fdn_breaker_reset(br);

    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    /* the first store is admitted (nothing failed yet) and fails within its bound; the
     * follower's reads fail too, so the breaker opens after two failures in all */
    fdn_event_t *ev = make_event(1, 2);
    int64_t t0 = test_now_ms();
    int rc = fdn_events_store(es, ev, NULL);
    int64_t took = test_now_ms() - t0;
    assert_int_equal(rc, FDN_EUNAVAILABLE);
    assert_true(took >= TIMEOUT_MS / 2);
    for (int i = 0; i < 3 && fdn_breaker_state(br) != FDN_BREAKER_OPEN; i++)
        assert_int_equal(fdn_events_store(es, ev, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_breaker_state(br), FDN_BREAKER_OPEN);
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_int_equal(st.backend, FDN_EVENTS_BACKEND_POSTGRES);
    assert_false(st.up);
    assert_true(st.failures >= 2);
    assert_int_equal(st.breaker_state, FDN_BREAKER_OPEN);
    assert_true(st.retry_after_ms > 0);
    /* open: refused without trying */
    uint64_t rejected = st.rejected;
    assert_int_equal(fdn_events_store(es, ev, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_true(st.rejected > rejected);
    fdn_event_free(ev);
    fdn_breaker_status_t bs;
    assert_int_equal(fdn_breaker_status(br, &bs), 0);
    assert_true(bs.times_opened >= 1);

    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    fdn_breaker_reset(br);
    assert_true(test_wait_until(store_succeeds, es, 30000)); /* recovers */
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_true(st.up);
    assert_int_equal(st.breaker_state, FDN_BREAKER_CLOSED);
    fdn_events_destroy(es);
    fdn_breaker_destroy(br);
}

/* ---- the spool: PostgreSQL away for 5 s under load ---- */

typedef struct sub_col {
    pthread_mutex_t mu;
    uint64_t *ids;
    size_t n, cap;
    uint64_t skipped;
} sub_col_t;

static void sub_collect(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    sub_col_t *c = user;
    pthread_mutex_lock(&c->mu);
    if (c->n < c->cap)
        c->ids[c->n] = fdn_event_id(ev);
    c->n++;
    c->skipped += skipped;
    pthread_mutex_unlock(&c->mu);
}

static bool spool_empty(void *arg)
{
    fdn_events_backend_status_t st;
    return fdn_events_backend_status(arg, &st) == 0 && st.spooled_events == 0;
}

typedef struct spooled_want {
    fdn_events_t *es;
    uint64_t n;
    int64_t until_ms;
} spooled_want_t;

static bool spooled_enough(void *arg)
{
    spooled_want_t *w = arg;
    fdn_events_backend_status_t st;
    return fdn_events_backend_status(w->es, &st) == 0 && st.spooled_events >= w->n &&
           test_now_ms() >= w->until_ms;
}

typedef struct seen_want {
    sub_col_t *c;
    size_t n;
} seen_want_t;

static bool seen_all(void *arg)
{
    seen_want_t *w = arg;
    pthread_mutex_lock(&w->c->mu);
    bool ok = w->c->n >= w->n;
    pthread_mutex_unlock(&w->c->mu);
    return ok;
}

static void spool_keeps_everything_while_postgres_is_away(void **state)
{
    (void)state;
    char schema[64], spool[256];
    test_pg_schema_name(schema, sizeof(schema), "spool");
    snprintf(spool, sizeof(spool), "%s/spool-%s.db", g_pg->dir, schema);
    fdn_events_t *es = open_store(schema, 1000, spool, 0);
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 3;
    bo.window_ms = 10000;
    bo.recovery_time_ms = 200;
    fdn_breaker_t *br = NULL;
    assert_int_equal(fdn_breaker_create(&br, "events.postgres.spool", &bo), 0);
    assert_int_equal(fdn_events_set_breaker(es, br), 0);
    sub_col_t col = {.cap = MAXS};
    pthread_mutex_init(&col.mu, NULL);
    col.ids = calloc(col.cap, sizeof(uint64_t));
    assert_non_null(col.ids);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    so.from_position = true;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, sub_collect, &col, &sub), 0);

    /* The stores are granted phase by phase (1000 before the kill, 5000 while
     * PostgreSQL is away, 3000 after), so the loader cannot run out of its
     * MAXS stores however fast the spool takes them. */
    loader_t *ld = loader_new(es, 2, 1000);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, loader_main, ld), 0);
    want_t w0 = {ld, 200};
    assert_true(test_wait_until(acked_at_least, &w0, 30000));
    test_engine_script("pg-server.sh", "kill", g_pg->dir);
    /* away 5 s, and long enough for stores to go to the spool */
    loader_grant(ld, 5000);
    spooled_want_t sw = {es, 100, test_now_ms() + 5000};
    assert_true(test_wait_until(spooled_enough, &sw, 60000));
    test_engine_script("pg-server.sh", "restart", g_pg->dir);
    loader_grant(ld, 3000);
    want_t w1 = {ld, atomic_load(&ld->acked) + 300};
    if (!test_wait_until(acked_at_least, &w1, 60000)) {
        fdn_events_backend_status_t ds;
        (void)fdn_events_backend_status(es, &ds);
        fprintf(stderr,
                "spool test: acked %u of %u attempted (want %u), last rc %d; backend up %d "
                "breaker %d spooled %llu replayed %llu calls %llu failures %llu rejected %llu\n",
                (unsigned)atomic_load(&ld->acked), (unsigned)atomic_load(&ld->next), w1.n,
                ld->last_rc, ds.up, ds.breaker_state, (unsigned long long)ds.spooled_events,
                (unsigned long long)ds.replayed_events, (unsigned long long)ds.calls,
                (unsigned long long)ds.failures, (unsigned long long)ds.rejected);
        fail();
    }
    loader_stop(ld);
    pthread_join(th, NULL);
    assert_true(test_wait_until(spool_empty, es, 120000)); /* the spool drains */
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_true(st.replayed_events >= 100);

    unsigned n = atomic_load(&ld->next);
    size_t spooled = 0;
    for (unsigned s = 0; s < n; s++) {
        assert_true(ld->ok[s]); /* every store acknowledged, to PostgreSQL or the spool */
        spooled += ld->ids[s] == 0;
    }
    assert_true(spooled >= 100);
    test_pg_census_t *c = take_census(schema);
    assert_int_equal(c->n, n);
    uint64_t last = 0;
    for (unsigned s = 0; s < n; s++) {
        assert_int_equal(test_pg_census_count(c, 2, s), 1); /* nothing lost, nothing twice */
        /* the writer's order kept through the spool */
        assert_true(test_pg_census_pos(c, 2, s) > last);
        last = test_pg_census_pos(c, 2, s);
        if (ld->ids[s] != 0)
            assert_int_equal(test_pg_census_pos(c, 2, s), ld->ids[s]);
    }
    /* the subscriber saw every position once, in order */
    seen_want_t sv = {&col, n};
    assert_true(test_wait_until(seen_all, &sv, 60000));
    fdn_events_unsubscribe(sub);
    pthread_mutex_lock(&col.mu);
    assert_int_equal(col.n, n);
    assert_int_equal(col.skipped, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(col.ids[i], i + 1);
    pthread_mutex_unlock(&col.mu);
    test_pg_census_free(c);
    loader_free(ld);
    free(col.ids);
    pthread_mutex_destroy(&col.mu);
    fdn_events_destroy(es);
    fdn_breaker_destroy(br);
}

static void a_full_spool_answers_unavailable(void **state)
{
    (void)state;
    char schema[64], spool[256];
    test_pg_schema_name(schema, sizeof(schema), "full");
    snprintf(spool, sizeof(spool), "%s/spool-%s.db", g_pg->dir, schema);
    fdn_events_t *es = open_store(schema, 300, spool, 4096);
    test_pg_signal_cluster(g_pg->dir, SIGSTOP);
    int rc = 0;
    unsigned s = 0;
    for (; s < 1000 && rc == 0; s++) { /* about 100 bytes each: full within 4 KiB */
        fdn_event_t *ev = make_event(3, s);
        uint64_t id = 1;
        rc = fdn_events_store(es, ev, &id);
        fdn_event_free(ev);
        if (rc == 0)
            assert_int_equal(id, 0); /* spooled: no position yet */
    }
    test_pg_signal_cluster(g_pg->dir, SIGCONT);
    assert_int_equal(rc, FDN_EUNAVAILABLE);
    assert_true(s > 1);
    fdn_events_backend_status_t st;
    assert_int_equal(fdn_events_backend_status(es, &st), 0);
    assert_true(st.spooled_bytes <= 4096);
    assert_int_equal(st.spooled_events, s - 1);
    assert_true(test_wait_until(spool_empty, es, 60000));
    fdn_events_destroy(es);
    test_pg_census_t *c = take_census(schema);
    assert_int_equal(c->n, s - 1);
    test_pg_census_free(c);
}

/* ---- a slow connection set-up ---- */

/* A loopback TCP forwarder to the cluster whose every new connection reaches PostgreSQL only
 * after delay_ms: the set-up a loaded server (forking a backend), TLS or a distant host makes
 * slow, while commands on an open connection are quick. Each connection is forwarded by a
 * thread of its own, which ends when either side closes; stop joins them all (a thread still
 * in its delay finds the client gone afterwards and ends). */
enum { SLOW_CONNS = 256 };
typedef struct slow_conn {
    int cfd;
    uint16_t pg_port;
    int64_t delay_ms;
} slow_conn_t;

typedef struct slow_proxy {
    int lfd;
    uint16_t port;    /* where clients connect */
    uint16_t pg_port; /* the cluster's */
    int64_t delay_ms;
    pthread_t th;
    pthread_t conns[SLOW_CONNS]; /* the accept thread's; read by stop after joining it */
    slow_conn_t args[SLOW_CONNS];
    unsigned accepted;
} slow_proxy_t;

static void *slow_conn_main(void *arg)
{
    const slow_conn_t *sc = arg;
    /* the slow set-up itself, not a synchronisation: nothing waits for this thread */
    struct timespec d = {sc->delay_ms / 1000, (sc->delay_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    int sfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(sc->pg_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sfd >= 0 && connect(sfd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        struct pollfd pf[2] = {{.fd = sc->cfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        char buf[16384];
        for (bool open = true; open && poll(pf, 2, -1) > 0;)
            for (int i = 0; i < 2 && open; i++) {
                if (pf[i].revents == 0)
                    continue;
                ssize_t n = read(pf[i].fd, buf, sizeof(buf));
                open = n > 0 && write(pf[1 - i].fd, buf, (size_t)n) == n;
            }
    }
    if (sfd >= 0)
        close(sfd);
    close(sc->cfd);
    return NULL;
}

static void *slow_proxy_main(void *arg)
{
    slow_proxy_t *p = arg;
    for (;;) {
        int cfd = accept(p->lfd, NULL, NULL);
        if (cfd < 0)
            return NULL; /* the listening socket was shut down */
        if (p->accepted == SLOW_CONNS) {
            close(cfd); /* more than the test makes: refused */
            continue;
        }
        slow_conn_t *sc = &p->args[p->accepted];
        *sc = (slow_conn_t){cfd, p->pg_port, p->delay_ms};
        if (pthread_create(&p->conns[p->accepted], NULL, slow_conn_main, sc) != 0) {
            close(cfd);
            continue;
        }
        p->accepted++;
    }
}

static void slow_proxy_start(slow_proxy_t *p, int64_t delay_ms)
{
    memset(p, 0, sizeof(*p));
    p->delay_ms = delay_ms;
    const char *colon = strrchr(g_pg->url, ':'); /* postgresql://fdn@127.0.0.1:PORT/postgres */
    assert_non_null(colon);
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    assert_true(end != colon + 1 && port > 0 && port < 65536);
    p->pg_port = (uint16_t)port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->lfd, 64), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->th, NULL, slow_proxy_main, p), 0);
}

/* After every client closed: no new connection, then every forwarding thread ended. Returns
 * the connections accepted. */
static unsigned slow_proxy_stop(slow_proxy_t *p)
{
    shutdown(p->lfd, SHUT_RDWR); /* ends accept */
    pthread_join(p->th, NULL);
    close(p->lfd);
    for (unsigned i = 0; i < p->accepted; i++)
        pthread_join(p->conns[i], NULL);
    return p->accepted;
}

/* A short command bound does not refuse a start whose connections are slow to set up: the
 * open makes its connections within connect_timeout_ms (the writer's and the pool's first),
 * and its first call (the head) needs the command bound for its command only. (Before, that
 * call opened the pool's connection within the command bound and the start failed: "no
 * answer within ... ms".) The bound still holds for the calls after it. */
static void slow_connections_do_not_refuse_the_start(void **state)
{
    (void)state;
    enum { SETUP_MS = 2000, COMMAND_MS = 1000 };
    slow_proxy_t p;
    slow_proxy_start(&p, SETUP_MS);
    char url[128], schema[64];
    snprintf(url, sizeof(url), "postgresql://fdn@127.0.0.1:%u/postgres", (unsigned)p.port);
    test_pg_schema_name(schema, sizeof(schema), "slow");
    fdn_events_opts_t o;
    test_pg_store_opts(&o, url, schema);
    o.postgres.command_timeout_ms = COMMAND_MS;
    o.postgres.connect_timeout_ms = 4 * SETUP_MS;
    fdn_events_t *es = test_pg_store_open(&o);
    assert_true(store_succeeds(es)); /* the writer's connection, set up at open */
    fdn_events_destroy(es);
    assert_true(slow_proxy_stop(&p) >= 2); /* the writer's connection and the pool's at least */
}

int main(void)
{
    setenv("FDN_PG_FSYNC", "on", 1); /* the crash test's cluster keeps fsync */
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        /* first: forks before any thread (ThreadSanitizer follows such a fork, and the child
         * starts threads of its own) */
        cmocka_unit_test(writer_process_killed),
        cmocka_unit_test(postgres_stopped_without_spool),
        cmocka_unit_test(a_full_spool_answers_unavailable),
        cmocka_unit_test(postgres_killed_during_appends),
        cmocka_unit_test(spool_keeps_everything_while_postgres_is_away),
        cmocka_unit_test(slow_connections_do_not_refuse_the_start),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
