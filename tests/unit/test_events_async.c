/* Unit tests: fdn_events_store_async, the event store's asynchronous append. Its callback runs
 * once per accepted call: on the writer thread after the commit (durable mode, in id order),
 * at once for a memory store, fast mode under its bound or a buffering stopped store; errors
 * are returned and never reach the callback; the queue is bounded (FDN_EBUSY); stopping or
 * destroying the store drains the queue; a writer's I/O error reaches every waiting callback.
 * Writer-thread progress is held deterministically by a callback that blocks on a gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/events.h>

#include "fail_alloc.h"
#include "services/event_store_int.h"
#include "event_make.h"
#include "fsize_limit.h"
#include "threads.h"

#define MAXCALLS 4096

/* What the callbacks saw (the writer thread appends, the test thread reads after a wait). */
typedef struct seen {
    pthread_mutex_t mu;
    int n;
    int rc[MAXCALLS];
    uint64_t first[MAXCALLS];
    size_t count[MAXCALLS];
    uint64_t committed[MAXCALLS]; /* the store's durable_committed_id during the callback */
    pthread_t thread[MAXCALLS];
    fdn_events_t *es;
    test_waiter_t done;    /* callbacks run */
    test_waiter_t entered; /* the blocking callback started */
    test_waiter_t release; /* opens the blocking callback */
} seen_t;

static void seen_init(seen_t *s, fdn_events_t *es)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    test_waiter_init(&s->done);
    test_waiter_init(&s->entered);
    test_waiter_init(&s->release);
    s->es = es;
}

static void seen_fini(seen_t *s)
{
    pthread_mutex_destroy(&s->mu);
    test_waiter_destroy(&s->done);
    test_waiter_destroy(&s->entered);
    test_waiter_destroy(&s->release);
}

static void record(int rc, uint64_t first, size_t n, void *user)
{
    seen_t *s = user;
    fdn_events_stats_t st;
    st.durable_committed_id = 0;
    if (s->es != NULL)
        (void)fdn_events_stats(s->es, &st);
    pthread_mutex_lock(&s->mu);
    int i = s->n++;
    if (i < MAXCALLS) {
        s->rc[i] = rc;
        s->first[i] = first;
        s->count[i] = n;
        s->committed[i] = st.durable_committed_id;
        s->thread[i] = pthread_self();
    }
    pthread_mutex_unlock(&s->mu);
    test_waiter_add(&s->done, 1);
}

/* Records, then holds the writer thread until the test opens `release`. */
static void record_and_block(int rc, uint64_t first, size_t n, void *user)
{
    seen_t *s = user;
    test_waiter_add(&s->entered, 1);
    test_waiter_wait(&s->release, 1);
    record(rc, first, n, user);
}

static char g_dir[256];
static char g_path[300];

static int dir_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/fdn_evasync_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof(g_path), "%s/store.db", g_dir);
    return 0;
}

static int dir_teardown(void **state)
{
    (void)state;
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static fdn_events_t *durable(fdn_events_mode_t mode, uint32_t queue_max)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_path;
    o.mode = mode;
    if (queue_max)
        o.fast_queue_max = queue_max;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    return es;
}

static uint64_t reopened_count(void)
{
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    fdn_events_destroy(es);
    return st.count;
}

/* A memory store acknowledges at once: the callback runs on the caller's thread before the
 * call returns, with the ids the call reported. */
static void memory_store_acknowledges_inline(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    seen_t s;
    seen_init(&s, NULL);
    fdn_event_t *evs[3] = {test_small_event("a"), test_small_event("b"), test_small_event("c")};
    uint64_t ids[3] = {0, 0, 0};
    assert_int_equal(
        fdn_events_store_async(es, (const fdn_event_t *const *)evs, 3, ids, record, &s), 0);
    assert_int_equal(s.n, 1); /* already ran */
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.first[0], ids[0]);
    assert_int_equal(s.count[0], 3);
    assert_int_equal(ids[1], ids[0] + 1);
    assert_int_equal(ids[2], ids[0] + 2);
    assert_true(pthread_equal(s.thread[0], pthread_self()));
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, ids[2], &got), 0);
    assert_string_equal(fdn_event_type(got), "c");
    fdn_event_free(got);
    /* n == 0: the callback runs at once with an empty batch */
    assert_int_equal(fdn_events_store_async(es, NULL, 0, NULL, record, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.count[1], 0);
    for (int i = 0; i < 3; i++)
        fdn_event_free(evs[i]);
    fdn_events_destroy(es);
    seen_fini(&s);
}

/* Invalid calls return FDN_EINVAL and never run the callback; a stopped store without a
 * buffer refuses with FDN_EUNAVAILABLE; with a buffer it acknowledges at once. */
static void invalid_and_stopped(void **state)
{
    (void)state;
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    seen_t s;
    seen_init(&s, NULL);
    fdn_event_t *ev = test_small_event("x");
    const fdn_event_t *one[1] = {ev};
    const fdn_event_t *holes[2] = {ev, NULL};
    assert_int_equal(fdn_events_store_async(NULL, one, 1, NULL, record, &s), FDN_EINVAL);
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, NULL, &s), FDN_EINVAL);
    assert_int_equal(fdn_events_store_async(es, NULL, 1, NULL, record, &s), FDN_EINVAL);
    assert_int_equal(fdn_events_store_async(es, holes, 2, NULL, record, &s), FDN_EINVAL);
    fdn__events_service_stop(es);
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, record, &s), FDN_EUNAVAILABLE);
    assert_int_equal(s.n, 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 0);
    fdn_events_destroy(es);

    o.unavailable_buffer = 2;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn__events_service_stop(es);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store_async(es, one, 1, &id, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rc[0], 0);
    assert_int_equal(s.first[0], id);
    assert_int_equal(fdn__events_service_start(es), 0);
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, id, &got), 0);
    fdn_event_free(got);
    fdn_events_destroy(es);
    fdn_event_free(ev);
    seen_fini(&s);
}

/* Durable mode: every callback runs on the writer thread, after its batch is committed (the
 * store's committed id covers it during the callback), in id order, once; the file holds
 * every acknowledged event. */
static void durable_callbacks_after_commit_in_id_order(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 0);
    seen_t s;
    seen_init(&s, es);
    fdn_event_t *evs[4] = {test_small_event("d"), test_small_event("d"), test_small_event("d"),
                           test_small_event("d")};
    enum { CALLS = 300 };
    uint64_t firsts[CALLS];
    size_t total = 0;
    for (int i = 0; i < CALLS; i++) {
        size_t n = (size_t)(i % 4) + 1;
        uint64_t ids[4];
        assert_int_equal(
            fdn_events_store_async(es, (const fdn_event_t *const *)evs, n, ids, record, &s), 0);
        firsts[i] = ids[0];
        total += n;
    }
    test_waiter_wait(&s.done, CALLS);
    assert_int_equal(s.n, CALLS);
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(s.rc[i], 0);
        assert_int_equal(s.first[i], firsts[i]); /* the order of the calls = id order */
        assert_int_equal(s.count[i], (size_t)(i % 4) + 1);
        assert_true(s.committed[i] >= s.first[i] + s.count[i] - 1);
        assert_false(pthread_equal(s.thread[i], pthread_self()));
    }
    fdn_events_destroy(es);
    assert_int_equal(reopened_count(), total);
    for (int i = 0; i < 4; i++)
        fdn_event_free(evs[i]);
    seen_fini(&s);
}

/* The queue is bounded by fast_queue_max events: past it, FDN_EBUSY and nothing stored. The
 * writer is held inside a callback, so the queued stores cannot be acknowledged meanwhile. */
static void bounded_queue_refuses_with_ebusy(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 4);
    seen_t s;
    seen_init(&s, es);
    fdn_event_t *evs[5] = {test_small_event("q"), test_small_event("q"), test_small_event("q"),
                           test_small_event("q"), test_small_event("q")};
    const fdn_event_t *const *e = (const fdn_event_t *const *)evs;
    assert_int_equal(fdn_events_store_async(es, e, 5, NULL, record, &s), FDN_EBUSY);
    assert_int_equal(fdn_events_store_async(es, e, 1, NULL, record_and_block, &s), 0);
    test_waiter_wait(&s.entered, 1); /* the writer is inside the callback: it commits no more */
    assert_int_equal(fdn_events_store_async(es, e, 3, NULL, record, &s), 0);
    assert_int_equal(fdn_events_store_async(es, e, 1, NULL, record, &s), 0);
    fdn_events_stats_t before, after;
    assert_int_equal(fdn_events_stats(es, &before), 0);
    assert_int_equal(fdn_events_store_async(es, e, 1, NULL, record, &s), FDN_EBUSY);
    assert_int_equal(fdn_events_stats(es, &after), 0);
    assert_int_equal(after.count, before.count); /* refused: nothing stored */
    assert_int_equal(after.next_id, before.next_id);
    test_waiter_add(&s.release, 1);
    test_waiter_wait(&s.done, 3);
    /* room again once acknowledged */
    assert_int_equal(fdn_events_store_async(es, e, 4, NULL, record, &s), 0);
    test_waiter_wait(&s.done, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.rc[i], 0);
    fdn_events_destroy(es);
    assert_int_equal(reopened_count(), 1 + 3 + 1 + 4);
    for (int i = 0; i < 5; i++)
        fdn_event_free(evs[i]);
    seen_fini(&s);
}

typedef struct destroyer {
    fdn_events_t *es;
} destroyer_t;

static void *destroy_main(void *arg)
{
    destroyer_t *d = arg;
    fdn_events_destroy(d->es);
    return NULL;
}

/* Destroy with callbacks still queued (the writer held in an earlier callback while destroy
 * starts): destroy commits them and runs every callback with 0 before it returns. */
static void destroy_runs_pending_callbacks(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 0);
    seen_t s;
    seen_init(&s, NULL); /* no stats call from callbacks: the store is being destroyed */
    fdn_event_t *ev = test_small_event("p");
    const fdn_event_t *one[1] = {ev};
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, record_and_block, &s), 0);
    test_waiter_wait(&s.entered, 1);
    enum { PENDING = 50 };
    for (int i = 0; i < PENDING; i++)
        assert_int_equal(fdn_events_store_async(es, one, 1, NULL, record, &s), 0);
    assert_int_equal(s.n, 0);
    test_threads_t th;
    test_threads_init(&th, 0);
    destroyer_t d = {es};
    test_threads_start(&th, destroy_main, &d);
    while (fdn__evs_running(es)) /* destroy has begun: it stopped accepting calls */
        sched_yield();
    test_waiter_add(&s.release, 1);
    test_threads_join(&th);
    assert_int_equal(s.n, PENDING + 1); /* all ran before destroy returned */
    for (int i = 0; i <= PENDING; i++)
        assert_int_equal(s.rc[i], 0);
    assert_int_equal(reopened_count(), PENDING + 1);
    fdn_event_free(ev);
    seen_fini(&s);
}

/* Fast mode acknowledges at once under its bound, like the synchronous call. */
static void fast_mode_acknowledges_inline(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_FAST, 0);
    seen_t s;
    seen_init(&s, NULL);
    fdn_event_t *ev = test_small_event("f");
    const fdn_event_t *one[1] = {ev};
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_true(pthread_equal(s.thread[0], pthread_self()));
    fdn_events_destroy(es);
    assert_int_equal(reopened_count(), 1);
    fdn_event_free(ev);
    seen_fini(&s);
}

/* A callback may start another asynchronous store (from the writer thread). */
typedef struct chain {
    fdn_events_t *es;
    fdn_event_t *ev;
    int left;
    test_waiter_t done;
} chain_t;

static void chain_cb(int rc, uint64_t first, size_t n, void *user)
{
    (void)first;
    (void)n;
    chain_t *c = user;
    if (rc == 0 && --c->left > 0) {
        const fdn_event_t *one[1] = {c->ev};
        if (fdn_events_store_async(c->es, one, 1, NULL, chain_cb, c) == 0)
            return;
    }
    test_waiter_add(&c->done, 1);
}

static void callback_may_store_again(void **state)
{
    (void)state;
    chain_t c;
    c.es = durable(FDN_EVENTS_DURABLE, 0);
    c.ev = test_small_event("chain");
    c.left = 20;
    test_waiter_init(&c.done);
    const fdn_event_t *one[1] = {c.ev};
    assert_int_equal(fdn_events_store_async(c.es, one, 1, NULL, chain_cb, &c), 0);
    test_waiter_wait(&c.done, 1);
    assert_int_equal(c.left, 0);
    fdn_events_destroy(c.es);
    assert_int_equal(reopened_count(), 20);
    fdn_event_free(c.ev);
    test_waiter_destroy(&c.done);
}

/* Closed-loop clients, as HTTP connections: each of 16 threads keeps one asynchronous store
 * in flight and stores its next event once the callback (on the writer thread) acknowledged
 * the last one. Commits then release many asynchronous callers at once, so the writer
 * gathers the next commit before starting it (writer_linger), and the clients' appends below
 * the size it waits for do not signal it (fdn__evs_async_queue): every store is still
 * acknowledged, each only once the commit holding it is done, and all are in the file. */
enum { LOOP_CLIENTS = 16, LOOP_EVENTS = 40 };

typedef struct loop_client {
    fdn_events_t *es;
    fdn_event_t *ev;
    test_waiter_t acked;
    int rc;
    uint64_t first, committed;
    int bad; /* acknowledgements before their commit, or failed */
    fdn_events_stored_cb cb; /* loop_cb, or a check around it */
} loop_client_t;

static void loop_cb(int rc, uint64_t first, size_t n, void *user)
{
    (void)n;
    loop_client_t *c = user;
    fdn_events_stats_t st;
    st.durable_committed_id = 0;
    (void)fdn_events_stats(c->es, &st);
    c->rc = rc;
    c->first = first;
    c->committed = st.durable_committed_id;
    test_waiter_add(&c->acked, 1);
}

static void *loop_main(void *arg)
{
    loop_client_t *c = arg;
    const fdn_event_t *one[1] = {c->ev};
    for (int k = 0; k < LOOP_EVENTS; k++) {
        uint64_t id = 0;
        if (fdn_events_store_async(c->es, one, 1, &id, c->cb, c) != 0) {
            c->bad++;
            break;
        }
        test_waiter_wait(&c->acked, (uint64_t)k + 1);
        if (c->rc != 0 || c->first != id || c->committed < id)
            c->bad++;
    }
    return NULL;
}

static void closed_loop_clients_acknowledged_after_commit(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 0);
    loop_client_t cl[LOOP_CLIENTS];
    pthread_t th[LOOP_CLIENTS];
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        cl[i].es = es;
        cl[i].ev = test_small_event("loop");
        cl[i].cb = loop_cb;
        test_waiter_init(&cl[i].acked);
        assert_int_equal(pthread_create(&th[i], NULL, loop_main, &cl[i]), 0);
    }
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(cl[i].bad, 0);
    }
    fdn_events_destroy(es);
    assert_int_equal(reopened_count(), LOOP_CLIENTS * LOOP_EVENTS);
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        fdn_event_free(cl[i].ev);
        test_waiter_destroy(&cl[i].acked);
    }
}

/* A synchronous store_batch large enough to be committed on its caller's thread (the writer
 * idle: event_service.c, lead_commit) next to closed-loop asynchronous clients: each batch
 * returns committed, each acknowledgement comes after its commit and on the writer thread,
 * never on the batch's (a caller's commit leaves them to the writer), and the file holds
 * every event. */
enum { BIG_BATCH = 600, BIG_ROUNDS = 12 };

typedef struct big_batcher {
    fdn_events_t *es;
    fdn_event_t *ev;
    int bad;
} big_batcher_t;

static pthread_t g_batch_thread;

static void big_cb(int rc, uint64_t first, size_t n, void *user)
{
    loop_client_t *c = user;
    if (pthread_equal(pthread_self(), g_batch_thread))
        c->bad++;
    loop_cb(rc, first, n, user);
}

static void *big_batch_main(void *arg)
{
    big_batcher_t *b = arg;
    const fdn_event_t **evs = malloc(BIG_BATCH * sizeof(*evs));
    for (int i = 0; i < BIG_BATCH; i++)
        evs[i] = b->ev;
    uint64_t *ids = malloc(BIG_BATCH * sizeof(*ids));
    for (int r = 0; r < BIG_ROUNDS; r++) {
        fdn_events_stats_t st;
        if (fdn_events_store_batch(b->es, evs, BIG_BATCH, ids) != 0 ||
            fdn_events_stats(b->es, &st) != 0 || st.durable_committed_id < ids[BIG_BATCH - 1])
            b->bad++;
    }
    free(ids);
    free(evs);
    return NULL;
}

static void large_batches_beside_asynchronous_clients(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 0);
    big_batcher_t b = {.es = es, .ev = test_small_event("big")};
    loop_client_t cl[4];
    pthread_t th[4];
    /* the batch thread's id is known before any callback can compare with it */
    assert_int_equal(pthread_create(&g_batch_thread, NULL, big_batch_main, &b), 0);
    for (int i = 0; i < 4; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        cl[i].es = es;
        cl[i].ev = test_small_event("loop");
        cl[i].cb = big_cb;
        test_waiter_init(&cl[i].acked);
        assert_int_equal(pthread_create(&th[i], NULL, loop_main, &cl[i]), 0);
    }
    assert_int_equal(pthread_join(g_batch_thread, NULL), 0);
    assert_int_equal(b.bad, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(cl[i].bad, 0);
    }
    fdn_events_destroy(es);
    assert_int_equal(reopened_count(), BIG_BATCH * BIG_ROUNDS + 4 * LOOP_EVENTS);
    for (int i = 0; i < 4; i++) {
        fdn_event_free(cl[i].ev);
        test_waiter_destroy(&cl[i].acked);
    }
    fdn_event_free(b.ev);
}

/* Every allocation of the call failing in turn: FDN_ENOMEM, nothing stored, no callback, and
 * the queue's reservation is given back (a store of the whole bound succeeds afterwards). */
static void out_of_memory_changes_nothing(void **state)
{
    (void)state;
    fdn_events_t *es = durable(FDN_EVENTS_DURABLE, 8);
    seen_t s;
    seen_init(&s, NULL);
    fdn_event_t *evs[8];
    for (int i = 0; i < 8; i++)
        evs[i] = test_small_event(i % 2 ? "oom.a" : "oom.b");
    const fdn_event_t *const *e = (const fdn_event_t *const *)evs;
    assert_int_equal(fail_alloc_install(), 0);
    int failed = 0;
    for (long k = 1; k < 200; k++) {
        fdn_events_stats_t before, after;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        fail_alloc_at_this_thread(k);
        int rc = fdn_events_store_async(es, e, 8, NULL, record, &s);
        fail_alloc_off();
        if (rc == 0)
            break;
        failed++;
        assert_int_equal(rc, FDN_ENOMEM);
        assert_int_equal(fdn_events_stats(es, &after), 0);
        assert_int_equal(after.count, before.count);
        assert_int_equal(after.next_id, before.next_id);
    }
    assert_true(failed >= 1); /* at least the queue entry's allocation was failed */
    test_waiter_wait(&s.done, 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rc[0], 0);
    fdn_events_destroy(es);
    fail_alloc_uninstall();
    assert_int_equal(reopened_count(), 8);
    for (int i = 0; i < 8; i++)
        fdn_event_free(evs[i]);
    seen_fini(&s);
}

/* A real I/O failure (the file size limit) reaches the waiting callbacks as FDN_EIO, and a
 * later call fails with FDN_EIO at once without running its callback. In a child process:
 * the limit is process-wide. */
static void io_error_reaches_callbacks(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int step = test_capped_store(g_path, NULL, &es, &ev);
        if (step != 0)
            _exit(step);
        static seen_t s;
        seen_init(&s, NULL);
        const fdn_event_t *one[1] = {ev};
        int calls = 0, rc = 0;
        for (; calls < 200; calls++) {
            rc = fdn_events_store_async(es, one, 1, NULL, record, &s);
            if (rc != 0)
                break;
            test_waiter_wait(&s.done, calls + 1);
            if (s.rc[calls] != 0)
                break;
        }
        if (calls == 200 || rc != 0)
            _exit(13); /* the failure must reach a callback first */
        if (s.rc[calls] != FDN_EIO)
            _exit(14);
        if (fdn_events_store_async(es, one, 1, NULL, record, &s) != FDN_EIO)
            _exit(15);
        if (s.n != calls + 1) /* that refused call ran no callback */
            _exit(16);
        fdn_event_free(ev);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_store_acknowledges_inline),
        cmocka_unit_test(invalid_and_stopped),
        cmocka_unit_test_setup_teardown(durable_callbacks_after_commit_in_id_order, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(bounded_queue_refuses_with_ebusy, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(destroy_runs_pending_callbacks, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(fast_mode_acknowledges_inline, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(callback_may_store_again, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(closed_loop_clients_acknowledged_after_commit, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(large_batches_beside_asynchronous_clients, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(out_of_memory_changes_nothing, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(io_error_reaches_callbacks, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
