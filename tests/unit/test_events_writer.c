/* The durable writer's hand-offs (src/services/event_service.c) in the cases the other event
 * tests do not reach:
 *  - a caller whose events were in a commit that failed, reading the store's state after a
 *    restart cleared io_error but before the new writer ran, must still be woken by the commit
 *    that stores its events (a failed commit used to leave its announcement claiming its
 *    range, so the caller slept on that commit's number while the next commit, one number on,
 *    woke another; found by review). The window is widened: the test clears io_error itself
 *    between stop and start, as start_threads does first, and the late caller is
 *    fdn__evs_after_append for the failed store's last id (a store_batch preempted between its
 *    append and its wait);
 *  - a stop, and a small durable store, while a caller commits its own large batch (a lead):
 *    the writer commits nothing meanwhile, the stop waits for the lead, and afterwards both
 *    calls return 0 with every event in the file;
 *  - a fast store past fast_queue_max, waiting for the writer when its commit fails, returns
 *    the error (it returned 0, as did every later store);
 *  - a start whose replay of the stores buffered while stopped fails to commit leaves the
 *    store stopped (it was left running), and a second start works once the disk recovers;
 *  - a fast store within fast_queue_max after the writer failed: fdn_events_store and
 *    fdn_events_store_async both return FDN_EIO (the first returned 0); and a durable batch
 *    committed before the writer failed is acknowledged by both (the second returned FDN_EIO).
 * No sleeps: the test waits until the other threads are asleep in a futex (test_wait_futex)
 * before it checks what they must not have done; a caller that never wakes ends the first
 * test's child process by its alarm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/events.h>

#include "core/sync.h"
#include "services/event_store_int.h"

#include "event_make.h"
#include "fsize_limit.h"
#include "threads.h"
#include "tmpdir.h"

static test_tmpfile_t g_tf; /* the test's directory and event file (store.db) in it */

typedef struct late_caller {
    fdn_events_t *es;
    uint64_t last_id;
    _Atomic pid_t tid;
    _Atomic int done;
    int rc;
} late_caller_t;

static void *late_main(void *arg)
{
    late_caller_t *c = arg;
    atomic_store(&c->tid, test_thread_id());
    c->rc = fdn__evs_after_append(c->es, c->last_id);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Wait for child pid, remove the test's directory (its data), and check that the child exited 0
 * (its exit code names the check that failed). */
static void reap(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    test_tmpfile_remove(&g_tf);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void restart_after_failed_commit_wakes_caller(void **state)
{
    (void)state;
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a caller that never wakes ends the child here, a failure the parent sees (and no
         * process left behind when ctest's TIMEOUT stops the parent) */
        alarm(45);
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int rc = test_capped_store(g_tf.path, NULL, &es, &ev);
        if (rc != 0)
            _exit(rc);
        uint64_t id = 0;
        for (int i = 0; i < 200 && rc == 0; i++)
            rc = fdn_events_store(es, ev, &id);
        if (rc != FDN_EIO)
            _exit(13);
        uint64_t cover = atomic_load(&es->commit_cover);
        uint64_t persisted = atomic_load(&es->persisted);
        fprintf(stderr, "failed store id %llu, persisted %llu, cover to %llu num %llu\n",
                (unsigned long long)id, (unsigned long long)persisted,
                (unsigned long long)(cover >> 5), (unsigned long long)(cover & 31));
        if (id <= persisted) /* not the situation under test */
            _exit(14);
        /* the disk "recovers" */
        if (test_fsize_limit(UINT64_MAX) != 0)
            _exit(15);
        fdn__events_service_stop(es);
        /* what start_threads does first; the writer is not running yet */
        atomic_store(&es->io_error, 0);
        static late_caller_t c;
        c.es = es;
        c.last_id = id;
        pthread_t th;
        if (pthread_create(&th, NULL, late_main, &c) != 0)
            _exit(16);
        /* the caller asleep on the commit word (nothing can wake it before the start) */
        pid_t tid;
        while ((tid = atomic_load(&c.tid)) == 0)
            sched_yield();
        test_wait_futex(tid);
        if (atomic_load(&c.done) || atomic_load(&es->commit_sleepers) == 0)
            _exit(17);
        if (fdn__events_service_start(es) != 0)
            _exit(18);
        /* the restarted writer commits the caller's events: it must return (the old code
         * left it asleep here until the alarm ended the process) */
        pthread_join(th, NULL);
        if (c.rc != 0)
            _exit(22);
        fdn_events_destroy(es);
        fdn_event_free(ev);
        _exit(0);
    }
    reap(pid);
}

/* ---- 7cf9fdf: a stop (and a small durable store) while a caller leads a commit ---- */
#include <fdn/telemetry.h>

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, release;
    pthread_t batch_thread;
    _Atomic int armed;
    _Atomic int commits_on_batch_thread;
} gate_t;

static gate_t g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0};

static int commit_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                          const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)m, (void)nm, (void)meta, (void)nmeta, (void)user;
    if (strcmp(event, "foundation.event_store.commit") != 0)
        return 0;
    pthread_mutex_lock(&g_gate.mu);
    int mine = pthread_equal(pthread_self(), g_gate.batch_thread);
    pthread_mutex_unlock(&g_gate.mu);
    if (!mine)
        return 0;
    atomic_fetch_add(&g_gate.commits_on_batch_thread, 1);
    if (!atomic_exchange(&g_gate.armed, 0))
        return 0;
    pthread_mutex_lock(&g_gate.mu);
    g_gate.entered = 1;
    pthread_cond_broadcast(&g_gate.cv);
    while (!g_gate.release)
        pthread_cond_wait(&g_gate.cv, &g_gate.mu);
    pthread_mutex_unlock(&g_gate.mu);
    return 0;
}

typedef struct caller {
    fdn_events_t *es;
    const fdn_event_t **evs;
    size_t n;
    uint64_t last;
    int rc;
    int is_batch;
    _Atomic pid_t tid;
    _Atomic int done; /* set under g_gate.mu, which is then broadcast */
} caller_t;

static void set_done(caller_t *c)
{
    pthread_mutex_lock(&g_gate.mu);
    atomic_store(&c->done, 1);
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
}

static void *caller_main(void *arg)
{
    caller_t *c = arg;
    atomic_store(&c->tid, test_thread_id());
    if (c->is_batch) {
        pthread_mutex_lock(&g_gate.mu);
        g_gate.batch_thread = pthread_self();
        pthread_mutex_unlock(&g_gate.mu);
    }
    uint64_t *ids = malloc(c->n * sizeof(*ids));
    c->rc = fdn_events_store_batch(c->es, c->evs, c->n, ids);
    c->last = ids[c->n - 1];
    free(ids);
    set_done(c);
    return NULL;
}

static void *stopper_main(void *arg)
{
    caller_t *c = arg;
    atomic_store(&c->tid, test_thread_id());
    fdn__events_service_stop(c->es);
    set_done(c);
    return NULL;
}

static void stop_while_caller_leads(void **state)
{
    (void)state;
    enum { BIG = 600 };
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store.commit",
                                          FDN_TELEMETRY_MATCH_PREFIX, commit_handler, NULL),
                     0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_tf.path;
    o.telemetry = tm;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_event_t *ev = test_small_event("big"), *small = test_small_event("small");
    const fdn_event_t **evs = malloc(BIG * sizeof(*evs));
    for (int i = 0; i < BIG; i++)
        evs[i] = ev;
    const fdn_event_t *one[1] = {small};
    /* the writer parks after its start */
    while (!atomic_load(&es->writer_idle))
        sched_yield();
    caller_t b = {.es = es, .evs = evs, .n = BIG, .is_batch = 1};
    atomic_store(&g_gate.armed, 1);
    pthread_t tb, ts, tx;
    assert_int_equal(pthread_create(&tb, NULL, caller_main, &b), 0);
    pthread_mutex_lock(&g_gate.mu);
    while (!g_gate.entered && !atomic_load(&b.done))
        pthread_cond_wait(&g_gate.cv, &g_gate.mu);
    int entered = g_gate.entered;
    pthread_mutex_unlock(&g_gate.mu);
    if (!entered)
        fail_msg("the batch was not committed on its own thread (no lead)");
    /* held mid-commit: its transaction is done, persisted not yet moved, es->lead set */
    assert_true(es->lead);
    uint64_t p0 = atomic_load(&es->persisted);
    caller_t s = {.es = es, .evs = one, .n = 1};
    assert_int_equal(pthread_create(&ts, NULL, caller_main, &s), 0);
    /* the small store asleep (on the commit word, or on the way to it) */
    pid_t tid;
    while ((tid = atomic_load(&s.tid)) == 0)
        sched_yield();
    test_wait_futex(tid);
    assert_int_equal(atomic_load(&es->persisted), p0); /* the writer did not commit meanwhile */
    assert_false(atomic_load(&s.done));
    caller_t x = {.es = es};
    assert_int_equal(pthread_create(&tx, NULL, stopper_main, &x), 0);
    while ((tid = atomic_load(&x.tid)) == 0)
        sched_yield();
    test_wait_futex(tid);
    assert_false(atomic_load(&x.done)); /* the stop waits for the lead */
    pthread_mutex_lock(&g_gate.mu);
    g_gate.release = 1;
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
    pthread_join(tb, NULL);
    pthread_join(ts, NULL);
    pthread_join(tx, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(s.rc, 0);
    assert_true(atomic_load(&es->persisted) >= s.last);
    assert_true(atomic_load(&es->persisted) >= b.last);
    assert_false(es->lead);
    fdn_events_destroy(es);
    /* everything is in the file */
    o.telemetry = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, BIG + 1);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
    free(evs);
    fdn_event_free(ev);
    fdn_event_free(small);
    test_tmpfile_remove(&g_tf);
}

/* ---- fast mode: a store past the bound when the writer fails ---- */

/* A fast store past fast_queue_max waits for the writer; when the writer's commit fails
 * meanwhile, the store is not acknowledged (it returned 0, and so did every later store:
 * the latched error ended the wait at once, so the events acknowledged and not in the file
 * grew without bound while the writer could commit nothing; found by review). Every store
 * acknowledged with 0 must be within fast_queue_max of what the file holds. */
static void fast_store_past_bound_after_failed_commit(void **state)
{
    (void)state;
    enum { BOUND = 2, STORES = 100 };
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(45);
        fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
        o.mode = FDN_EVENTS_FAST;
        o.fast_queue_max = BOUND;
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int rc = test_capped_store(g_tf.path, &o, &es, &ev);
        if (rc != 0)
            _exit(rc);
        uint64_t acked = 0;
        int failed = 0;
        for (int i = 0; i < STORES; i++) {
            uint64_t id = 0;
            rc = fdn_events_store(es, ev, &id);
            if (rc == 0)
                acked = id;
            else if (rc == FDN_EIO)
                failed++;
            else
                _exit(13);
        }
        uint64_t persisted = atomic_load(&es->persisted);
        fprintf(stderr, "fast: last acknowledged id %llu, persisted %llu, %d stores failed\n",
                (unsigned long long)acked, (unsigned long long)persisted, failed);
        if (atomic_load(&es->io_error) == 0) /* the cap was never reached: not the case */
            _exit(14);
        if (acked > persisted + BOUND)
            _exit(20); /* acknowledged past the bound while the writer had failed */
        if (failed == 0)
            _exit(21);
        fdn_events_destroy(es);
        fdn_event_free(ev);
        _exit(0);
    }
    reap(pid);
}

/* ---- fast mode within the bound: both entry points answer alike after a failure ---- */

/* Wait until the writer has committed everything published, or has failed. */
static void wait_writer(fdn_events_t *es) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    fdn__mutex_lock(&es->wmu);
    while (atomic_load(&es->io_error) == 0 &&
           atomic_load(&es->persisted) < atomic_load(&es->published))
        pthread_cond_wait(&es->wdone, &es->wmu);
    fdn__mutex_unlock(&es->wmu);
}

static void count_cb(int rc, uint64_t first, size_t n, void *user)
{
    (void)first, (void)n;
    atomic_int *calls = user;
    atomic_fetch_add(calls, rc == 0 ? 1 : 1000);
}

/* In fast mode, within fast_queue_max, once the writer has latched an I/O error,
 * fdn_events_store returned 0 (an acknowledgement of an event nothing would commit until a
 * restart, lost at a destroy without one) while fdn_events_store_async, for the same event,
 * returned FDN_EIO (found by review). Both answer FDN_EIO now (include/fdn/events.h). */
static void fast_store_within_bound_after_failed_commit(void **state)
{
    (void)state;
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(45);
        fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
        o.mode = FDN_EVENTS_FAST; /* the default bound, 65536: every store here is within it */
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int rc = test_capped_store(g_tf.path, &o, &es, &ev);
        if (rc != 0)
            _exit(rc);
        const fdn_event_t *one[1] = {ev};
        static atomic_int calls;
        /* before the failure: both acknowledge at once */
        if (fdn_events_store_async(es, one, 1, NULL, count_cb, &calls) != 0 ||
            atomic_load(&calls) != 1)
            _exit(13);
        for (int i = 0; i < 200 && atomic_load(&es->io_error) == 0; i++) {
            int src = fdn_events_store(es, ev, NULL);
            /* the writer may commit this very event, and fail on the cap, before the call
             * looks at the writer's state: then the call's answer is already the error */
            if (src == FDN_EIO && atomic_load(&es->io_error) == FDN_EIO)
                break;
            if (src != 0)
                _exit(14); /* no failure known: acknowledged after enqueue */
            wait_writer(es);
        }
        if (atomic_load(&es->io_error) != FDN_EIO) /* the cap was never reached */
            _exit(15);
        uint64_t id = 0;
        int sync_rc = fdn_events_store(es, ev, &id);
        int async_rc = fdn_events_store_async(es, one, 1, NULL, count_cb, &calls);
        fprintf(stderr, "fast, writer failed: store %d, store_async %d (id %llu, persisted %llu)\n",
                sync_rc, async_rc, (unsigned long long)id,
                (unsigned long long)atomic_load(&es->persisted));
        if (sync_rc != FDN_EIO)
            _exit(20);
        if (async_rc != FDN_EIO || atomic_load(&calls) != 1) /* refused: no callback */
            _exit(21);
        fdn_events_destroy(es);
        fdn_event_free(ev);
        _exit(0);
    }
    reap(pid);
}

/* ---- a store_batch buffered while stopped, replayed on start ---- */

/* A batch accepted into unavailable_buffer is replayed on start as one batch: the writer,
 * which never splits a store_batch between two commits (its records' `more` flags), commits
 * it whole. The replay appended the buffered events one at a time, so each became a batch of
 * its own: the writer, running during the replay, could commit a prefix of the batch, and a
 * crash then left part of an atomic batch in the file (found by review). Checked on the
 * memory tier's batch boundaries, which the writer's commits follow (fdn__evs_batch_end). */
static void buffered_batch_replayed_whole(void **state)
{
    (void)state;
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_tf.path;
    o.unavailable_buffer = 8;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_event_t *ev = test_small_event("buffered");
    const fdn_event_t *evs[3] = {ev, ev, ev};
    fdn__events_service_stop(es);
    uint64_t ids[3] = {0};
    assert_int_equal(fdn_events_store_batch(es, evs, 3, ids), 0);
    assert_int_equal(ids[2], ids[0] + 2);
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_true(atomic_load(&es->persisted) >= ids[2]);
    /* the batch's first events say that it goes on, up to its last */
    assert_true(fdn__evs_batch_end(es, ids[0]) >= ids[2]);
    assert_true(fdn__evs_batch_end(es, ids[1]) >= ids[2]);
    fdn_events_destroy(es);
    o.unavailable_buffer = 0;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 3);
    fdn_events_destroy(es);
    fdn_event_free(ev);
    test_tmpfile_remove(&g_tf);
}

/* ---- a start whose replay of the buffered stores fails ---- */

/* Start replays the stores buffered while stopped and waits for their commit; when that
 * commit fails, start fails, and a start that fails must change nothing: the store stays
 * stopped (it was left running, with a writer that had given up, and the next start returned
 * 0 at once: "already running"). Once the disk has recovered, a second start works and the
 * buffered events, and one buffered after the failed start, reach the file. In a child
 * process: the cap on the file size is process-wide. */
static void failed_replay_leaves_store_stopped(void **state)
{
    (void)state;
    enum { BUFFERED = 24 }; /* 24 x 20 kB, uncompressed: past the 256 KiB cap */
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(45);
        fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
        o.unavailable_buffer = BUFFERED + 1;
        o.compress = false; /* (zstd shrinks the test's "incompressible" event about 3 times) */
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int rc = test_capped_store(g_tf.path, &o, &es, &ev);
        if (rc != 0)
            _exit(rc);
        fdn__events_service_stop(es);
        uint64_t last = 0;
        for (int i = 0; i < BUFFERED; i++)
            if (fdn_events_store(es, ev, &last) != 0)
                _exit(13);
        rc = fdn__events_service_start(es);
        if (rc != FDN_EIO) {
            fprintf(stderr, "start with the disk full: %s\n", fdn_err_name(rc));
            _exit(14);
        }
        /* stopped, as before the start: not running, stores buffered again */
        if (fdn__evs_running(es))
            _exit(15);
        if (fdn__events_service_health(es) != FDN_EUNAVAILABLE)
            _exit(16);
        uint64_t after = 0;
        if (fdn_events_store(es, ev, &after) != 0 || after != last + 1)
            _exit(17);
        /* the disk recovers: a second start works and commits every buffered event */
        if (test_fsize_limit(UINT64_MAX) != 0)
            _exit(18);
        rc = fdn__events_service_start(es);
        if (rc != 0) {
            fprintf(stderr, "second start: %s\n", fdn_err_name(rc));
            _exit(19);
        }
        if (!fdn__evs_running(es) || fdn__events_service_health(es) != 0)
            _exit(20);
        if (atomic_load(&es->persisted) < after)
            _exit(21);
        fdn_events_destroy(es);
        fdn_events_opts_t ro = FDN_EVENTS_OPTS_INIT;
        ro.durable_path = g_tf.path;
        if (fdn_events_create(&es, &ro, NULL) != 0)
            _exit(22);
        fdn_events_stats_t st;
        if (fdn_events_stats(es, &st) != 0 || st.count != BUFFERED + 1)
            _exit(23);
        fdn_events_destroy(es);
        fdn_event_free(ev);
        _exit(0);
    }
    reap(pid);
}

/* ---- durable mode: an asynchronous store committed before it is queued ---- */

/* In durable mode the callback of fdn_events_store_async runs on the writer thread, in id
 * order (include/fdn/events.h): a caller may hold a lock around the call that its callback
 * takes. A commit that covered the batch between its append and its queueing (both under
 * amu, which the writer does not take) made the call acknowledge it at once on the calling
 * thread: a self-deadlock for such a caller, and out of order with the stores the same
 * commit acknowledged on the writer thread (found by review). The hook widens the window:
 * it wakes the writer and waits for the commit of the batch before the queueing goes on. */
static void commit_wait_hook(fdn_events_t *es, uint64_t last_id) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    fdn__mutex_lock(&es->wmu);
    pthread_cond_signal(&es->wcv);
    while (atomic_load(&es->persisted) < last_id)
        pthread_cond_wait(&es->wdone, &es->wmu);
    fdn__mutex_unlock(&es->wmu);
}

typedef struct ack {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, rc;
    pthread_t thread;
} ack_t;

static void ack_cb(int rc, uint64_t first, size_t n, void *user)
{
    (void)first, (void)n;
    ack_t *a = user;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->rc = rc;
    a->thread = pthread_self();
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* A durable store on a new file, one event stored with fdn_events_store_async while hook
 * runs in the queueing (fdn__evs_async_queue_hook), and the callback's first answer: *es,
 * *ev, *id and *a for the test's further checks (it destroys the store and frees the event).
 * Returns the callback's rc; *on_caller when it ran on the calling thread. */
static int async_one_with_hook(void (*hook)(fdn_events_t *, uint64_t), fdn_events_t **es,
                               fdn_event_t **ev, uint64_t *id, ack_t *a, bool *on_caller)
{
    assert_int_equal(test_tmpfile_make(&g_tf, "writer", "store.db"), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_tf.path;
    assert_int_equal(fdn_events_create(es, &o, NULL), 0);
    *ev = test_small_event("async");
    const fdn_event_t *one[1] = {*ev};
    fdn__evs_async_queue_hook = hook;
    int rc = fdn_events_store_async(*es, one, 1, id, ack_cb, a);
    fdn__evs_async_queue_hook = NULL;
    assert_int_equal(rc, 0);
    pthread_mutex_lock(&a->mu);
    while (a->calls == 0)
        pthread_cond_wait(&a->cv, &a->mu);
    int calls = a->calls, arc = a->rc;
    *on_caller = pthread_equal(a->thread, pthread_self());
    pthread_mutex_unlock(&a->mu);
    assert_int_equal(calls, 1);
    return arc;
}

static void async_committed_before_queued_acks_on_writer(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_event_t *ev = NULL;
    uint64_t id = 0;
    ack_t a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, pthread_self()};
    bool inline_ack = true;
    assert_int_equal(async_one_with_hook(commit_wait_hook, &es, &ev, &id, &a, &inline_ack), 0);
    assert_true(atomic_load(&es->persisted) >= id);
    assert_false(inline_ack); /* on the writer thread, not the caller's */
    fdn_events_destroy(es);
    assert_int_equal(a.calls, 1); /* once */
    fdn_event_free(ev);
    test_tmpfile_remove(&g_tf);
}

/* ---- durable mode: a batch committed before the writer failed ---- */

/* The batch is committed (the hook waits for that), then the writer "fails" before the store
 * is queued: io_error latched as commit_once latches it (a later commit failed). */
static void commit_then_fail_hook(fdn_events_t *es, uint64_t last_id) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    commit_wait_hook(es, last_id);
    fdn__mutex_lock(&es->wmu);
    atomic_store(&es->io_error, FDN_EIO);
    fdn__mutex_unlock(&es->wmu);
}

/* A batch the file holds is acknowledged (0) by both entry points although the writer failed
 * afterwards: fdn_events_store_batch's wait sees it committed, and fdn_events_store_async
 * returned FDN_EIO for it (with no callback), answering "failed" for committed events. */
static void async_committed_then_writer_failed(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_event_t *ev = NULL;
    uint64_t id = 0;
    ack_t a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, pthread_self()};
    bool inline_ack = true;
    /* committed: acknowledged, not failed */
    assert_int_equal(async_one_with_hook(commit_then_fail_hook, &es, &ev, &id, &a, &inline_ack), 0);
    assert_int_equal(atomic_load(&es->io_error), FDN_EIO);
    /* the synchronous call's wait for the same id answers the same */
    assert_int_equal(fdn__evs_after_append(es, id), 0);
    /* and one not committed gets the error from both */
    const fdn_event_t *one[1] = {ev};
    uint64_t id2 = 0;
    assert_int_equal(fdn_events_store(es, ev, &id2), FDN_EIO);
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, ack_cb, &a), FDN_EIO);
    fdn_events_destroy(es);
    assert_int_equal(a.calls, 1);
    fdn_event_free(ev);
    test_tmpfile_remove(&g_tf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* the tests that fork first: ThreadSanitizer refuses a fork once threads ran */
        cmocka_unit_test(restart_after_failed_commit_wakes_caller),
        cmocka_unit_test(fast_store_past_bound_after_failed_commit),
        cmocka_unit_test(failed_replay_leaves_store_stopped),
        cmocka_unit_test(fast_store_within_bound_after_failed_commit),
        cmocka_unit_test(stop_while_caller_leads),
        cmocka_unit_test(buffered_batch_replayed_whole),
        cmocka_unit_test(async_committed_before_queued_acks_on_writer),
        cmocka_unit_test(async_committed_then_writer_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
