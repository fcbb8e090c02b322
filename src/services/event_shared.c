/*
 * DESIGN: the event store on a shared backend (storage/event_backend.h with assigns_ids:
 * PostgreSQL), where many processes append to one log and the backend assigns the ids
 * (global positions, gap-free, in commit order).
 *
 * The memory tier becomes a cache of a contiguous run of the log, from the head at open up to
 * `published`, holding every process's events: it is filled in position order, under `imu`
 * (the ingest mutex), by two threads only:
 *  - the writer: takes queued store requests (whole requests, up to batch_max events and the
 *    backend's batch_bytes_max of payload, so that one caller's large request never makes
 *    another's fail as part of an append over the bound; with flush_interval_ms it waits that
 *    long for a fuller batch), appends them through the table
 *    (one transaction; the backend retries unknown outcomes idempotently), then reads from the
 *    backend the positions between `published` and its batch's first (other processes'
 *    commits), puts them and its own batch into memory at their positions, and wakes the
 *    callers, which return the positions as ids. So a store returns after its COMMIT (in both
 *    modes: an id does not exist before it) and what it stored is readable at once. An
 *    asynchronous store (fdn_events_store_async without out_ids) is queued with copies of its
 *    events and its callback and not awaited: the writer collects the finished ones under qmu
 *    and runs their callbacks after unlocking, in queue order (finish_requests). Stop drains
 *    the queue before the writer ends, so every queued request is committed or fails.
 *  - the follower: waits for the backend's hint (NOTIFY) or poll_interval_ms, whichever comes
 *    first, and reads the positions after `published` into memory. A lost hint only delays.
 *    Stop wakes that wait at once: the follower names `wake_fd` (an eventfd that stop writes
 *    as it begins) as its thread's cut descriptor (core/cancel.h), which the backend polls
 *    beside its socket, in its wait and in its reads into memory alike: a stop never waits for
 *    a follower's read on a hung PostgreSQL (up to command_timeout_ms, holding imu, which the
 *    writer's own ingest then waited for). Start empties it again.
 * Both skip positions already in memory, so each event enters memory once, whoever reads it
 * first. A position the backend no longer has (pruned there) leaves a hole in memory; the
 * memory tier's lookups treat a hole as a missing record.
 *
 * Timestamps. Events read from the backend were stamped by another process's monotonic clock:
 * their timestamp is rebuilt from their wall time (wall - (wall now - monotonic now) of the
 * store's clock), as a reloaded SQLite file's events from an earlier boot are. Every read of
 * memory gives the same rebuilt form (get, queries, fdn_events_query_memory, subscriptions,
 * fdn_events_stats: fdn__evs_rebuilt_ts at read time), and a query's time bounds there
 * compare the records' wall times, as the backend's query does (event_query.c), so an event
 * reads the same whoever put it into memory and whichever tier answers. Each read takes the
 * clock offset once and uses it for all it answers (bounds and timestamps; every part of a
 * subscription's merged page): a step of the wall clock never splits one answer between two
 * offsets. Memory itself holds the writer's events with the producer's
 * timestamp and the follower's with the rebuilt one, each raised to the previous record's
 * (the time index needs them in id order); rebuilding them at put time instead would not
 * make reads agree by construction, since that clamp still changes some (commit order is not
 * wall-time order across processes).
 *
 * Reads: get by id, queries and correlation lookups run in memory when memory holds their
 * whole range, else in the backend (cursors and time bounds map to positions and wall time):
 *  - get: memory, then the backend when the id is outside memory;
 *  - query: memory when its cursors lie inside [first_id, published] (after_id and before_id
 *    both set), or with a parent_id filter (the backend has no parent index); else backend;
 *  - correlation: always the backend (a correlation spans processes and time).
 * Subscriptions run on memory as before; a from-position subscription behind the memory
 * tier pages from the backend (fdn__evs_shared_page).
 *
 * Failure policy (docs/events-postgres.md): every backend call goes through the guard (a
 * circuit breaker set from above, fdn__evs_set_guard) and is observed into
 * fdn_events_backend_request_duration_seconds{op,outcome}; the backend bounds each call by
 * command_timeout_ms. With a spool (storage/event_spool.h), the writer draws each event's
 * UUID first; a batch the backend cannot take (unavailable, breaker open, COMMIT outcome
 * unknown) is fsynced to the spool with them and acknowledged with ids 0; while the spool
 * holds anything, later batches queue behind it there (this process's order), and the writer
 * replays it oldest first with replay = true (exactly once), before each new batch and on a
 * backoff while idle. A spooled batch no replay can ever take (it does not decode, or the
 * backend refuses its rows for good: batch.refused) is moved to the spool's quarantine table
 * instead of blocking the spool and every batch behind it (replay_spool). A store called from
 * the writer or follower thread itself (a breaker transition hook) is queued detached, not
 * awaited.
 *
 * A call its caller's thread cut short (FDN_ECANCELED from the backend: the thread's cut
 * descriptor, fdn_events_set_thread_cut_fd, written by the admin server at its shutdown
 * deadline) is observed with outcome "cancelled", released from the breaker unrecorded, not
 * counted as a failure nor as PostgreSQL down, and returned as FDN_EUNAVAILABLE (the code
 * every read documents for PostgreSQL not answering).
 *
 * Stopping (docs/events-postgres.md, "Stopping"). Stop sets qstop (no store is queued after
 * it), stops the follower at once (above), and waits for the writer to drain the queue, up to
 * stop_ms (fdn_events_pg_opts_t.stop_timeout_ms). At that deadline it sets `cut` and writes
 * cut_fd, the writer thread's cut descriptor for its whole life (core/cancel.h, the one the
 * admin server's threads use; unreadable before, so nothing else changes): the writer's call
 * on PostgreSQL ends at once, the connection dropped (pgb_append tries no more attempts once
 * cut), counted as "cancelled" (not a failure, not on the breaker). The batch it held then
 * goes where an outage sends it: with a spool, to the spool with the UUIDs the live attempt
 * used, acknowledged (ids 0), and replayed at the next start with replay = true, which finds
 * the events a COMMIT that PostgreSQL ran after all had stored (event_id is UNIQUE: a late
 * COMMIT of the cut statement after the replay fails on it instead), so each is stored once;
 * the requests still queued follow it into the spool without a call on PostgreSQL (the
 * writer, once cut, tries PostgreSQL no more: no replay, no append). Without a spool (or with
 * a full one) they fail: the cut batch with FDN_EIO (outcome unknown) or FDN_EUNAVAILABLE
 * (nothing sent that could commit), the others with FDN_EUNAVAILABLE; a waiting caller gets
 * that code, an asynchronous one its callback. Nothing acknowledged is lost (on PostgreSQL
 * only a commit or the spool acknowledges). The counts (spooled, failed) go to the telemetry
 * event foundation.event_store.stop_deadline, emitted by the stop once the writer ended, and
 * stay in the status (stop_spooled_events, stop_failed_events) after it: under the runtime
 * the telemetry service stops before the store, and fdn serve logs them from there.
 * Then the writer ends within the spool's fsyncs; the stop joins it.
 *
 * Lock order: imu -> plock -> amu (the put); qmu and fmu are leaves. No lock is held during a
 * backend call except imu (the writer's and follower's reads while filling memory).
 */
#include <fdn/events.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/cancel.h"
#include "core/sync.h"
#include "services/event_store_int.h"
#include "storage/event_spool.h"

#define HIST_NAME   "fdn_events_backend_request_duration_seconds"
#define REPLAY_ROWS 4 /* replay transactions (of up to batch_max events) per writer round */

typedef struct sh_req {
    const fdn_event_t *const *evs;
    size_t n;
    uint64_t bytes; /* the events' payload bytes (the backend's batch_bytes_max) */
    uint64_t *ids; /* may be NULL */
    int rc;
    bool done;
    bool detached; /* nobody waits: the writer frees it and its copied events */
    /* an asynchronous store's (detached): run by the writer once the request is done */
    fdn_events_stored_cb cb;
    void *user;
    uint64_t first; /* its first position once committed (0: spooled) */
    struct sh_req *next;
} sh_req_t;

/* The store whose writer or follower runs on this thread (NULL elsewhere): a store called
 * from there (a breaker transition hook records an event while the writer admits a call)
 * must not wait for the writer, which is itself or waits for its ingest lock. */
static _Thread_local fdn_events_t *tl_own;

struct evs_shared {
    uint32_t batch_max;
    int64_t flush_ms;
    int64_t poll_ms;

    fdn__mutex_t qmu;
    pthread_cond_t qcv;   /* writer wakes */
    pthread_cond_t qdone; /* requests completed */
    sh_req_t *qhead;      /* qmu */
    sh_req_t **qtail;     /* qmu */
    size_t queued;        /* qmu: events queued */
    uint64_t qbytes;      /* qmu: their payload bytes */
    bool qstop;           /* qmu */
    bool wended;          /* qmu: the writer has drained the queue and is ending */
    pthread_cond_t wend;  /* wended turned true (monotonic clock: the stop's timed wait) */
    pthread_t writer;
    bool writer_on;
    /* the stop's deadline (DESIGN, "Stopping"): stop_ms after the stop began (< 0: none), the
     * writer's calls on PostgreSQL are cut through cut_fd, the writer thread's cut descriptor
     * (an eventfd stop writes), and `cut` tells the writer to try PostgreSQL no more */
    int64_t stop_ms;
    int cut_fd;
    _Atomic bool cut;
    uint64_t cut_spooled, cut_failed;           /* writer: events it spooled / failed once cut */
    _Atomic uint64_t stop_spooled, stop_failed; /* the last stop's (the status) */

    fdn__mutex_t fmu;
    pthread_cond_t fcv; /* follower stop */
    bool fstop;         /* fmu */
    int wake_fd;        /* eventfd: readable once stop began (the follower's backend wait) */
    pthread_t follower;
    bool follower_on;

    fdn__mutex_t imu; /* ingest: the writer and the follower fill memory in turn */

    /* the guard (a circuit breaker, set from above: fdn__evs_set_guard). A call holds the
     * guard it was admitted by until it has reported to it (g_begin .. g_end): a pass of
     * ggate (core/sync.h), which a change of guard waits for, so the caller may free the old
     * breaker as soon as fdn_events_set_breaker returns. The guard in force is *gcur (NULL:
     * none), one of the two slots: a change fills the one not in force (no call reads it:
     * the change before drained its calls) and publishes it. */
    fdn__gate_t ggate;
    struct gslot {
        const fdn__evs_guard_ops_t *ops;
        void *g;
    } gslot[2];                         /* written by a change only, before it publishes one */
    _Atomic(const struct gslot *) gcur; /* the guard in force, or NULL */
    /* the latency histogram, resolved for the telemetry it was made in */
    fdn__mutex_t hmu;
    fdn_telemetry_t *hist_tm;     /* hmu */
    fdn_telemetry_family_t *hist; /* hmu */
    _Atomic uint64_t calls, failures, rejected, replayed;
    _Atomic uint64_t replay_failures; /* replays of the spool that failed */
    _Atomic int replay_error;         /* the last replay's error, 0 when it succeeded */
    _Atomic bool up;

    /* the spool (writer thread only, besides the counters) */
    fdn__spool_t *spool;
    uint64_t spool_max;
    int64_t replay_at; /* writer: monotonic ns of the next replay attempt */
    int64_t replay_backoff_ms;
    int64_t replay_one_upto; /* writer: replay one batch at a time up to this key (0: off) */
    int64_t drop_pending;    /* writer: batches up to this key committed by a replay, their drop
                                failed: dropped before the next peek, not replayed (0: none) */
    _Atomic uint64_t sp_batches, sp_events, sp_bytes; /* sp_batches: the replay has work */
    _Atomic uint64_t q_batches, q_events, q_bytes; /* the spool's quarantine */
    _Atomic int q_error;                           /* the newest quarantined batch's error */
};

#define READ_PAGE 512u

static const fdn__evb_ops_t *ops(fdn_events_t *es)
{
    return es->be.ops;
}

/* Give events read from the backend timestamps on the store's monotonic clock: from their
 * wall time with the clock offset off, which the read took once (fdn__evs_clock_offset). */
static void remap(fdn_event_list_t *l, int64_t off)
{
    for (size_t i = 0; l != NULL && i < l->n; i++)
        l->items[i]->ts = fdn__evs_rebuilt_ts(l->items[i]->wall, off);
}

/* ---- the guard and the latency histogram around every backend call ---- */

typedef struct gcall {
    const fdn__evs_guard_ops_t *ops;
    void *g;
    uint64_t permit[2];
    int64_t t0;
    fdn__gate_pass_t pass; /* in the guard's gate (sh->ggate) from g_begin (ops != NULL) */
} gcall_t;

static int64_t mono(void)
{
    return fdn_clock_mono_ns(NULL);
}

/* A call is done with the guard it took in g_begin: a change of guard may free it. */
static void g_release(gcall_t *c)
{
    if (c->ops != NULL)
        fdn__gate_leave(&c->pass);
}

/* Admit a call: 0, or FDN_EUNAVAILABLE when the guard (the breaker) refuses it. Every call
 * admitted ends with g_end. */
static int g_begin(fdn_events_t *es, gcall_t *c)
{
    struct evs_shared *sh = es->sh;
    c->ops = NULL;
    c->g = NULL;
    if (atomic_load_explicit(&sh->gcur, memory_order_acquire) != NULL) {
        fdn__gate_enter(&sh->ggate, &c->pass);
        const struct gslot *s = atomic_load_explicit(&sh->gcur, memory_order_acquire);
        if (s != NULL) {
            c->ops = s->ops;
            c->g = s->g;
        } else {
            fdn__gate_leave(&c->pass); /* removed meanwhile */
        }
    }
    if (c->ops != NULL && c->ops->admit(c->g, c->permit) != 0) {
        g_release(c);
        atomic_fetch_add_explicit(&sh->rejected, 1, memory_order_relaxed);
        return FDN_EUNAVAILABLE;
    }
    atomic_fetch_add_explicit(&sh->calls, 1, memory_order_relaxed);
    c->t0 = mono();
    return 0;
}

/* A code that says the engine did not answer (a failure for the breaker). */
static bool engine_failed(int rc)
{
    return rc == FDN_EUNAVAILABLE || rc == FDN_EIO || rc == FDN_ECONNREFUSED;
}

static void observe(fdn_events_t *es, const char *op, const char *outcome, double secs)
{
    struct evs_shared *sh = es->sh;
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (tm == NULL)
        return;
    fdn__mutex_lock(&sh->hmu);
    if (sh->hist_tm != tm) {
        static const char *const labels[] = {"op", "outcome"};
        fdn_telemetry_family_t *f = NULL;
        if (fdn_telemetry_family(tm, &f, HIST_NAME,
                                 "Calls of the event store on its PostgreSQL backend, by "
                                 "operation and outcome (ok; error: unreachable or timed out; "
                                 "cancelled: cut short by its caller, e.g. at the HTTP "
                                 "server's shutdown deadline).",
                                 FDN_TELEMETRY_HISTOGRAM, labels, 2, 64) != 0)
            f = NULL;
        sh->hist = f;
        sh->hist_tm = tm;
    }
    fdn_telemetry_family_t *f = sh->hist;
    fdn__mutex_unlock(&sh->hmu);
    const char *v[] = {op, outcome};
    fdn_histogram_t *h = NULL;
    if (f != NULL && fdn_telemetry_family_histogram(f, &h, v, 2) == 0)
        fdn_histogram_observe(h, secs);
    fdn__evs_tm_leave(&tp);
}

void fdn__evs_shared_tm_changed(fdn_events_t *es)
{
    /* no report uses the old telemetry any more: forget its family, so that a new telemetry
     * made at the old one's address (freed by then) does not find it */
    struct evs_shared *sh = es->sh;
    fdn__mutex_lock(&sh->hmu);
    sh->hist_tm = NULL;
    sh->hist = NULL;
    fdn__mutex_unlock(&sh->hmu);
}

int fdn_events_set_thread_cut_fd(int fd)
{
    return fdn__cut_set(fd < 0 ? -1 : fd);
}

/* Report a call admitted by g_begin; returns rc (a cut call's FDN_ECANCELED as
 * FDN_EUNAVAILABLE). */
static int g_end(fdn_events_t *es, gcall_t *c, const char *op, int rc)
{
    struct evs_shared *sh = es->sh;
    bool failed = engine_failed(rc);
    /* cut short by its caller's thread (core/cancel.h: the admin server stopping): says
     * nothing about PostgreSQL (not a failure, `up` unchanged); the caller gets 503's code */
    bool cut = rc == FDN_ECANCELED;
    if (c->ops != NULL)
        c->ops->record(c->g, c->permit, cut ? FDN_ECANCELED : failed ? FDN_EUNAVAILABLE : 0);
    g_release(c);
    if (failed)
        atomic_fetch_add_explicit(&sh->failures, 1, memory_order_relaxed);
    if (!cut)
        atomic_store_explicit(&sh->up, !failed, memory_order_relaxed);
    observe(es, op, cut ? "cancelled" : failed ? "error" : "ok", (double)(mono() - c->t0) / 1e9);
    return cut ? FDN_EUNAVAILABLE : rc;
}

/* ---- filling memory (under imu) ---- */

/* Put a run of events at consecutive positions first.. into memory, skipping those it holds
 * already. Runs under imu: nothing else appends. */
static int put_run(fdn_events_t *es, const fdn_event_t *const *evs, uint64_t first,
                   size_t n) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    fdn__mutex_lock(&es->amu);
    uint64_t next = es->next_id;
    size_t skip = first < next ? (size_t)FDN_MIN((uint64_t)n, next - first) : 0;
    int rc = 0;
    if (skip < n) {
        uint64_t at = first + skip;
        if (at > next) { /* a hole: those positions are gone from the backend */
            es->next_id = at;
            if (atomic_load_explicit(&es->count, memory_order_relaxed) == 0)
                atomic_store_explicit(&es->first_id, at, memory_order_release);
        }
        rc = fdn__evs_append_locked(es, evs + skip, n - skip, NULL);
        if (rc != 0)
            es->next_id = next;
        else
            atomic_store_explicit(&es->persisted, at + (n - skip) - 1, memory_order_release);
    }
    uint64_t last = es->next_id - 1;
    fdn__mutex_unlock(&es->amu);
    if (rc == 0 && skip < n)
        (void)fdn__evs_after_append(es, last); /* wakes subscribers (no durable_path) */
    return rc;
}

/* Put a list in position order, split into runs of consecutive positions. */
static int put_list(fdn_events_t *es, const fdn_event_list_t *l)
{
    size_t i = 0;
    int rc = 0;
    while (i < l->n && rc == 0) {
        size_t j = i + 1;
        while (j < l->n && l->items[j]->id == l->items[j - 1]->id + 1)
            j++;
        rc = put_run(es, (const fdn_event_t *const *)l->items + i, l->items[i]->id, j - i);
        i = j;
    }
    return rc;
}

/* Read the positions after `published` up to upto (UINT64_MAX: all) into memory. */
static int fill_to(fdn_events_t *es, uint64_t upto)
{
    int64_t off = fdn__evs_clock_offset(es); /* one offset for the pages of this fill */
    for (;;) {
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        if (pub >= upto)
            return 0;
        fdn_event_list_t *l = NULL;
        size_t max = upto - pub < READ_PAGE ? (size_t)(upto - pub) : READ_PAGE;
        gcall_t gc;
        int rc = g_begin(es, &gc);
        if (rc != 0)
            return rc;
        rc = g_end(es, &gc, "read", ops(es)->read_after(es->be.state, pub, max, &l, NULL));
        if (rc != 0)
            return rc;
        size_t n = l->n;
        remap(l, off);
        rc = put_list(es, l);
        fdn_event_list_free(l);
        if (rc != 0 || n < max)
            return rc;
    }
}

/* ---- the writer ---- */

/* Put a committed batch (positions pos) into memory, after the other processes' events below
 * it. On a failed read memory is not filled here: the follower reads these later, and reads
 * of them go to the backend meanwhile. */
static void ingest_committed(fdn_events_t *es, const fdn_event_t *const *evs, const uint64_t *pos,
                             size_t total)
{
    fdn__mutex_lock(&es->sh->imu);
    size_t i = 0;
    while (i < total) {
        size_t j = i + 1;
        while (j < total && pos[j] == pos[j - 1] + 1)
            j++;
        if (pos[i] > 0 && fill_to(es, pos[i] - 1) == 0)
            (void)put_run(es, evs + i, pos[i], j - i);
        i = j;
    }
    fdn__mutex_unlock(&es->sh->imu);
}

/* Append one batch through the guard, within the command timeout. */
static int guarded_append(fdn_events_t *es, fdn__evb_batch_t *b, bool *refused, fdn_error_t *err)
{
    gcall_t gc;
    int rc = g_begin(es, &gc);
    *refused = rc != 0;
    if (rc != 0)
        return fdn_err_set(err, rc, "events: PostgreSQL: the circuit breaker is open");
    rc = ops(es)->append(es->be.state, b, err);
    /* cut by the stop's deadline: says nothing about PostgreSQL (g_end's "cancelled"), and the
     * caller keeps the append's own code (FDN_EIO: the outcome is unknown) */
    if (rc != 0 && atomic_load_explicit(&es->sh->cut, memory_order_acquire)) {
        (void)g_end(es, &gc, b->replay ? "replay" : "append", FDN_ECANCELED);
        return rc;
    }
    return g_end(es, &gc, b->replay ? "replay" : "append", rc);
}

static void spool_counts(struct evs_shared *sh)
{
    uint64_t e = 0, by = 0, qb = 0;
    int qerr = 0;
    fdn__spool_usage(sh->spool, &e, &by);
    atomic_store_explicit(&sh->sp_batches, fdn__spool_batches(sh->spool), memory_order_relaxed);
    atomic_store_explicit(&sh->sp_events, e, memory_order_relaxed);
    atomic_store_explicit(&sh->sp_bytes, by, memory_order_relaxed);
    fdn__spool_quarantine_usage(sh->spool, &qb, &e, &by, &qerr);
    atomic_store_explicit(&sh->q_batches, qb, memory_order_relaxed);
    atomic_store_explicit(&sh->q_events, e, memory_order_relaxed);
    atomic_store_explicit(&sh->q_bytes, by, memory_order_relaxed);
    atomic_store_explicit(&sh->q_error, qerr, memory_order_relaxed);
}

/* A replay of the spool failed with rc (not one the open breaker refused: that is no new
 * news, and it comes every backoff while PostgreSQL is away): said in the backend status and
 * to telemetry (the event foundation.event_store.spool_replay_failed, its error and message as
 * metadata). Such failures are PostgreSQL away again (or a COMMIT's outcome unknown, the
 * spool file failing), retried after the backoff; a batch no replay can take is quarantined
 * instead (quarantined), and reported here only when the quarantine cannot take it (full),
 * when it keeps the spool, and every store queued behind it, from draining. Writer thread. */
static void replay_failed(fdn_events_t *es, int rc, const fdn_error_t *err)
{
    struct evs_shared *sh = es->sh;
    atomic_store_explicit(&sh->replay_error, rc, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->replay_failures, 1, memory_order_relaxed);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (tm == NULL)
        return;
    fdn_telemetry_meta_t meta[] = {{"error", fdn_err_name(rc)},
                                   {"message", err->message[0] != '\0' ? err->message : ""}};
    fdn_telemetry_measure_t m = {"count", 1};
    (void)fdn_telemetry_execute(tm, "foundation.event_store.spool_replay_failed", &m, 1, meta, 2);
    fdn__evs_tm_leave(&tp);
}

/* A batch (key seq, events, the error and message that made it unreplayable) was moved to
 * the spool's quarantine: said in the backend status (spool_quarantined_*) and to telemetry
 * (the event foundation.event_store.spool_quarantined, its events as the measure, its error
 * and message as metadata). Writer thread. */
static void quarantined(fdn_events_t *es, int rc, const fdn_error_t *err, uint64_t events)
{
    spool_counts(es->sh);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (tm == NULL)
        return;
    fdn_telemetry_meta_t meta[] = {{"error", fdn_err_name(rc)},
                                   {"message", err->message[0] != '\0' ? err->message : ""}};
    fdn_telemetry_measure_t m = {"events", (double)events};
    (void)fdn_telemetry_execute(tm, "foundation.event_store.spool_quarantined", &m, 1, meta, 2);
    fdn__evs_tm_leave(&tp);
}

/* Replay up to REPLAY_ROWS transactions of spooled batches (whole batches, up to batch_max
 * events and the backend's batch_bytes_max each), oldest first, with their own ids (replay=true:
 * the events a lost-COMMIT attempt stored keep their positions); stop at the first transient
 * failure and try again after a backoff (100 ms doubling to 1 s).
 * Permanent failures (docs/events-postgres.md, "Quarantine"): the oldest batch does not decode
 * (the peek's FDN_ECORRUPT), or the backend refused the rows for good (batch.refused: a data
 * exception or integrity violation on them, over its bounds). A single batch that fails so is
 * moved to the spool's quarantine, and the replay goes on behind it at once. When the attempt
 * held several batches, the bad one(s) are not known: they are replayed one at a time up to
 * the last of them (replay_one_upto), so the good ones are stored and only the bad ones
 * quarantined. Everything else (away, timed out, breaker open, a COMMIT's outcome unknown, the
 * spool file failing) is transient. A replay committed on PostgreSQL whose drop then fails
 * is not replayed again: only the drop is retried (drop_pending), after the backoff, so its
 * events count in replayed once (they counted twice when the whole replay was repeated).
 * Writer thread. */
static void replay_spool(fdn_events_t *es)
{
    struct evs_shared *sh = es->sh;
    if (sh->spool == NULL || atomic_load_explicit(&sh->sp_batches, memory_order_relaxed) == 0 ||
        mono() < sh->replay_at || atomic_load_explicit(&sh->cut, memory_order_acquire))
        return; /* once cut (the stop's deadline), the next start replays */
    if (sh->drop_pending != 0) {
        /* committed already (and counted in replayed): only the drop is retried, so a batch is
         * replayed, and counted, once */
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn__spool_drop(sh->spool, sh->drop_pending, &err);
        spool_counts(sh);
        if (rc != 0) {
            replay_failed(es, rc, &err);
            sh->replay_backoff_ms = FDN_MIN(FDN_MAX(sh->replay_backoff_ms * 2, 100), 1000);
            sh->replay_at = mono() + sh->replay_backoff_ms * 1000000;
            return;
        }
        if (sh->replay_one_upto != 0 && sh->drop_pending >= sh->replay_one_upto)
            sh->replay_one_upto = 0;
        sh->drop_pending = 0;
        atomic_store_explicit(&sh->replay_error, 0, memory_order_relaxed);
        sh->replay_backoff_ms = 0;
    }
    for (int row = 0; row < REPLAY_ROWS; row++) {
        int64_t seq = 0;
        fdn_event_t **evs = NULL;
        fdn__spool_uid_t *uids = NULL;
        size_t n = 0;
        fdn_error_t err = FDN_ERROR_INIT;
        bool refused = false; /* by the open breaker, nothing tried */
        bool one = sh->replay_one_upto != 0;
        bool permanent = false;
        /* within the backend's payload bound too: batches that fit it one by one may not
         * together, and a replay it refuses would be refused again for ever */
        int rc = fdn__spool_peek(sh->spool, one ? 1 : sh->batch_max, ops(es)->batch_bytes_max, &seq,
                                 &evs, &uids, &n, &err);
        if (rc == FDN_ENOENT) { /* empty: its counts are 0 (fdn__spool_peek) */
            sh->replay_one_upto = 0;
            spool_counts(sh);
            break;
        }
        bool damaged = rc == FDN_ECORRUPT; /* the oldest batch, seq, does not decode */
        permanent = damaged;
        uint64_t *pos = rc == 0 ? fdn__malloc(n * sizeof(*pos)) : NULL;
        if (rc == 0 && pos == NULL)
            rc = FDN_ENOMEM;
        if (rc == 0) {
            fdn__evb_batch_t b = {.evs = (const fdn_event_t *const *)evs,
                                  .n = n,
                                  .pos = pos,
                                  .uids = (const char(*)[FDN_UUID_STR_LEN + 1]) uids,
                                  .replay = true};
            rc = guarded_append(es, &b, &refused, &err);
            permanent = rc != 0 && !refused && b.refused;
            if (rc == 0) {
                ingest_committed(es, (const fdn_event_t *const *)evs, pos, n);
                atomic_fetch_add_explicit(&sh->replayed, n, memory_order_relaxed);
                rc = fdn__spool_drop(sh->spool, seq, &err);
                if (rc != 0)
                    sh->drop_pending = seq; /* retried alone: not replayed (counted) again */
                spool_counts(sh);
            }
        }
        for (size_t i = 0; i < n; i++)
            fdn_event_free(evs[i]);
        fdn__free(evs);
        fdn__free(uids);
        fdn__free(pos);
        if (permanent && !one && !damaged) {
            /* which of the batches taken together is bad is not known: one at a time */
            sh->replay_one_upto = seq;
            continue;
        }
        if (permanent) {
            uint64_t moved = 0;
            fdn_error_t qerr = FDN_ERROR_INIT;
            int64_t at_ms = fdn_clock_wall_ns(es->clock) / 1000000;
            int qrc = fdn__spool_quarantine(sh->spool, seq, at_ms, rc, err.message, &moved, &qerr);
            if (qrc == 0) {
                quarantined(es, rc, &err, moved);
                rc = 0;
            } else { /* kept in the spool: it blocks as before, and says why */
                snprintf(qerr.message + strlen(qerr.message),
                         sizeof qerr.message - strlen(qerr.message), " (%s: %s)", fdn_err_name(rc),
                         err.message);
                err = qerr;
                rc = qrc == FDN_ENOSPC ? rc : qrc;
            }
        }
        if (rc != 0) {
            /* not when the stop's deadline cut it: PostgreSQL did not fail (DESIGN) */
            if (!refused && !atomic_load_explicit(&sh->cut, memory_order_acquire))
                replay_failed(es, rc, &err);
            sh->replay_backoff_ms =
                sh->replay_backoff_ms == 0 ? 100 : FDN_MIN(sh->replay_backoff_ms * 2, 1000);
            sh->replay_at = mono() + sh->replay_backoff_ms * 1000000;
            return;
        }
        if (one && seq >= sh->replay_one_upto)
            sh->replay_one_upto = 0; /* past the batches of the failed attempt */
        atomic_store_explicit(&sh->replay_error, 0, memory_order_relaxed);
        sh->replay_backoff_ms = 0;
    }
}

/* Free a detached request and its copied events. */
static void req_free(sh_req_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        fdn_event_free((fdn_event_t *)r->evs[i]);
    fdn__free((void *)r->evs);
    fdn__free(r);
}

/* Run the callbacks of a list of finished asynchronous requests, in order, and free them.
 * No lock held: a callback may store again (queued: this thread never waits for itself). */
static void run_callbacks(fdn_events_t *es, sh_req_t *r)
{
    while (r != NULL) {
        sh_req_t *next = r->next;
        atomic_fetch_sub_explicit(&es->aq_events, r->n, memory_order_relaxed);
        r->cb(r->rc, r->rc == 0 ? r->first : 0, r->n, r->user);
        req_free(r);
        r = next;
    }
}

/* Finish a list of requests with rc: wake their waiters, free the detached ones, then run the
 * asynchronous ones' callbacks (collected under qmu, run after it). */
static void finish_requests(fdn_events_t *es, sh_req_t *reqs, int rc)
{
    sh_req_t *cbs = NULL, **cbt = &cbs;
    fdn__mutex_lock(&es->sh->qmu);
    for (sh_req_t *r = reqs; r != NULL;) {
        sh_req_t *next = r->next;
        r->rc = rc;
        r->done = true; /* a waiter's request is its own from here: not touched again */
        if (r->cb != NULL) {
            r->next = NULL;
            *cbt = r;
            cbt = &r->next;
        } else if (r->detached) {
            req_free(r);
        }
        r = next;
    }
    pthread_cond_broadcast(&es->sh->qdone);
    fdn__mutex_unlock(&es->sh->qmu);
    run_callbacks(es, cbs);
}

static void commit_requests(fdn_events_t *es, sh_req_t *reqs, size_t total)
{
    struct evs_shared *sh = es->sh;
    const fdn_event_t **evs = fdn__malloc(total * sizeof(*evs));
    uint64_t *pos = fdn__malloc(total * sizeof(*pos));
    fdn__spool_uid_t *uids = sh->spool != NULL ? fdn__malloc(total * sizeof(*uids)) : NULL;
    int rc = evs && pos && (sh->spool == NULL || uids != NULL) ? 0 : FDN_ENOMEM;
    bool spooled = false;
    if (rc == 0) {
        size_t k = 0;
        for (sh_req_t *r = reqs; r != NULL; r = r->next)
            for (size_t i = 0; i < r->n; i++)
                evs[k++] = r->evs[i];
        /* with a spool, the ids are drawn here: a batch that goes to the spool keeps them */
        for (size_t i = 0; uids != NULL && i < total && rc == 0; i++)
            rc = fdn_uuid4(uids[i]) == 0 ? 0 : FDN_EIO;
    }
    if (rc == 0) {
        fdn__evb_batch_t b = {
            .evs = evs, .n = total, .pos = pos, .uids = (const char(*)[FDN_UUID_STR_LEN + 1]) uids};
        int64_t t0 = fdn_clock_mono_ns(NULL);
        fdn_error_t err = FDN_ERROR_INIT;
        /* while the spool holds batches, later ones queue behind them (order); past the
         * stop's deadline PostgreSQL is tried no more (DESIGN, "Stopping") */
        if ((sh->spool != NULL &&
             atomic_load_explicit(&sh->sp_batches, memory_order_relaxed) > 0) ||
            atomic_load_explicit(&sh->cut, memory_order_acquire))
            rc = FDN_EUNAVAILABLE;
        else
            rc = guarded_append(es, &b, &(bool){false}, &err);
        uint64_t bytes = 0, bmax = ops(es)->batch_bytes_max;
        uint32_t nmax = ops(es)->batch_events_max;
        for (sh_req_t *r = reqs; r != NULL; r = r->next)
            bytes += r->bytes;
        if (engine_failed(rc) && sh->spool != NULL &&
            ((bmax != 0 && bytes > bmax) || (nmax != 0 && total > nmax))) {
            /* not tried (breaker open, or behind the spool): over the backend's bounds (a
             * request that big goes alone), it refuses it whenever it answers, so a spooled
             * copy could never be replayed and would block the spool: refused, as it is
             * without a spool */
            rc = FDN_ETOO_LARGE;
        } else if (engine_failed(rc) && sh->spool != NULL) {
            /* PostgreSQL is away (or a COMMIT's outcome unknown): fsync the batch to the
             * spool with its ids and acknowledge it; it is replayed in order later */
            fdn_error_t serr = FDN_ERROR_INIT;
            int src = fdn__spool_put(sh->spool, evs, (const fdn__spool_uid_t *)uids, total, &serr);
            if (src == 0) {
                spooled = true;
                rc = 0;
                spool_counts(sh);
            } else if (rc != FDN_EIO) {
                rc = src == FDN_EIO ? FDN_EIO : FDN_EUNAVAILABLE; /* full: unavailable */
            }
        }
        fdn__gate_pass_t tp;
        fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
        if (rc == 0 && !spooled && tm != NULL) {
            fdn_telemetry_measure_t m = {"duration", (double)(fdn_clock_mono_ns(NULL) - t0)};
            (void)fdn_telemetry_execute(tm, "foundation.event_store.commit", &m, 1, NULL, 0);
            fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_stored", total, NULL,
                                         0);
        }
        if (rc != 0 && tm != NULL)
            fdn_telemetry_emit_counter(tm, "foundation.event_store.writer_errors", NULL, 0);
        if (tm != NULL)
            fdn__evs_tm_leave(&tp);
    }
    if (rc == 0) {
        /* committed: the positions are the ids, whatever memory manages below; spooled: no
         * position yet (ids 0), the events enter memory when they are replayed */
        if (!spooled)
            ingest_committed(es, evs, pos, total);
        size_t k = 0;
        for (sh_req_t *r = reqs; r != NULL; r = r->next) {
            r->first = spooled ? 0 : pos[k];
            if (r->ids != NULL && spooled)
                memset(r->ids, 0, r->n * sizeof(*pos));
            else if (r->ids != NULL)
                memcpy(r->ids, pos + k, r->n * sizeof(*pos));
            k += r->n;
        }
    }
    if (atomic_load_explicit(&sh->cut, memory_order_acquire)) {
        if (spooled)
            sh->cut_spooled += total;
        else if (rc != 0)
            sh->cut_failed += total;
    }
    fdn__free(evs);
    fdn__free(pos);
    fdn__free(uids);
    finish_requests(es, reqs, rc);
}

static void *writer_main(void *arg)
{
    fdn_events_t *es = arg;
    struct evs_shared *sh = es->sh;
    tl_own = es;
    (void)fdn__cut_set(sh->cut_fd); /* readable from the stop's deadline on (DESIGN) */
    fdn__mutex_lock(&sh->qmu);
    for (;;) {
        bool spool_due =
            sh->spool != NULL && atomic_load_explicit(&sh->sp_batches, memory_order_relaxed) > 0;
        if (sh->qhead == NULL) {
            if (sh->qstop)
                break;
            if (!spool_due) {
                pthread_cond_wait(&sh->qcv, &sh->qmu);
                continue;
            }
            /* the spool waits for PostgreSQL: try it when due, or sooner for a store */
            int64_t wait_ms = (sh->replay_at - mono()) / 1000000;
            if (wait_ms > 0) {
                (void)fdn__cond_wait_until(&sh->qcv, &sh->qmu, fdn__deadline_after_ms(wait_ms));
                if (sh->qhead != NULL || sh->qstop)
                    continue;
            }
            fdn__mutex_unlock(&sh->qmu);
            replay_spool(es);
            fdn__mutex_lock(&sh->qmu);
            continue;
        }
        /* a batch is full at batch_max events or at the backend's payload bound */
        uint64_t bmax = ops(es)->batch_bytes_max;
        if (sh->flush_ms > 0 && sh->queued < sh->batch_max && (bmax == 0 || sh->qbytes < bmax) &&
            !sh->qstop) {
            int64_t dl = fdn__deadline_after_ms(sh->flush_ms);
            while (sh->queued < sh->batch_max && (bmax == 0 || sh->qbytes < bmax) && !sh->qstop &&
                   fdn__cond_wait_until(&sh->qcv, &sh->qmu, dl) == 0) {
            }
        }
        /* whole requests, up to batch_max events and the backend's payload bound (a bigger
         * request goes alone: an append over the bound fails only that request) */
        sh_req_t *take = sh->qhead, *last = take;
        size_t total = take->n;
        uint64_t bytes = take->bytes;
        while (last->next != NULL && total + last->next->n <= sh->batch_max &&
               (bmax == 0 || bytes + last->next->bytes <= bmax)) {
            last = last->next;
            total += last->n;
            bytes += last->bytes;
        }
        sh->qhead = last->next;
        if (sh->qhead == NULL)
            sh->qtail = &sh->qhead;
        last->next = NULL;
        sh->queued -= total;
        sh->qbytes -= bytes;
        fdn__mutex_unlock(&sh->qmu);
        /* spooled batches go first, so a store never overtakes an older spooled one */
        replay_spool(es);
        commit_requests(es, take, total);
        fdn__mutex_lock(&sh->qmu);
    }
    sh->wended = true;
    pthread_cond_broadcast(&sh->wend);
    fdn__mutex_unlock(&sh->qmu);
    (void)fdn__cut_set(-1);
    return NULL;
}

/* ---- the follower ---- */

static void *follower_main(void *arg)
{
    fdn_events_t *es = arg;
    struct evs_shared *sh = es->sh;
    tl_own = es;
    (void)fdn__cut_set(sh->wake_fd); /* its wait and its reads: readable once stop began */
    for (;;) {
        fdn__mutex_lock(&sh->fmu);
        bool stop = sh->fstop;
        fdn__mutex_unlock(&sh->fmu);
        if (stop)
            break;
        uint64_t head = 0;
        int w = ops(es)->wait(es->be.state, sh->poll_ms, &head);
        fdn__mutex_lock(&sh->fmu);
        stop = sh->fstop;
        fdn__mutex_unlock(&sh->fmu);
        if (stop)
            break;
        if (w < 0) { /* the backend is away: wait a poll interval (or the stop) */
            fdn__mutex_lock(&sh->fmu);
            int64_t dl = fdn__deadline_after_ms(sh->poll_ms);
            while (!sh->fstop && fdn__cond_wait_until(&sh->fcv, &sh->fmu, dl) == 0) {
            }
            fdn__mutex_unlock(&sh->fmu);
        }
        fdn__mutex_lock(&sh->imu);
        (void)fill_to(es, UINT64_MAX);
        fdn__mutex_unlock(&sh->imu);
    }
    (void)fdn__cut_set(-1);
    return NULL;
}

/* ---- lifecycle ---- */

int fdn__evs_shared_open(fdn_events_t *es, const fdn_events_opts_t *o,
                         fdn_error_t *err) FDN_NO_THREAD_SAFETY_ANALYSIS
{
#ifdef FDN_HAVE_POSTGRES
    struct evs_shared *sh = fdn__calloc(1, sizeof(*sh));
    if (sh == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
    sh->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    sh->cut_fd = sh->wake_fd < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sh->cut_fd < 0) {
        int e = errno;
        if (sh->wake_fd >= 0)
            close(sh->wake_fd);
        fdn__free(sh);
        return fdn_err_set(err, e == ENOMEM ? FDN_ENOMEM : FDN_EIO,
                           "events: cannot create an eventfd (errno %d)", e);
    }
    /* version-2 options end before command_timeout_ms, version 3 before stop_timeout_ms: copy
     * what they hold */
    fdn_events_pg_opts_t pgo = FDN_EVENTS_PG_OPTS_INIT;
    memcpy(&pgo, &o->postgres,
           o->version >= 4   ? sizeof(pgo)
           : o->version == 3 ? offsetof(fdn_events_pg_opts_t, stop_timeout_ms)
                             : offsetof(fdn_events_pg_opts_t, command_timeout_ms));
    if (pgo.command_timeout_ms <= 0)
        pgo.command_timeout_ms = 5000;
    sh->stop_ms = pgo.stop_timeout_ms == 0 ? 5000 : pgo.stop_timeout_ms;
    const fdn_events_pg_opts_t *po = &pgo;
    sh->batch_max = po->batch_max > 0 ? po->batch_max : 1000;
    sh->flush_ms = po->flush_interval_ms > 0 ? po->flush_interval_ms : 0;
    sh->poll_ms = po->poll_interval_ms > 0 ? po->poll_interval_ms : 100;
    pthread_mutex_init(&sh->qmu, NULL);
    (void)fdn__cond_init_mono(&sh->qcv); /* timed waits: CLOCK_MONOTONIC (core/sync.h) */
    pthread_cond_init(&sh->qdone, NULL);
    (void)fdn__cond_init_mono(&sh->wend);
    atomic_init(&sh->cut, false);
    atomic_init(&sh->stop_spooled, 0);
    atomic_init(&sh->stop_failed, 0);
    pthread_mutex_init(&sh->fmu, NULL);
    (void)fdn__cond_init_mono(&sh->fcv);
    pthread_mutex_init(&sh->imu, NULL);
    fdn__gate_init(&sh->ggate);
    atomic_init(&sh->gcur, NULL);
    pthread_mutex_init(&sh->hmu, NULL);
    atomic_init(&sh->up, true);
    sh->qtail = &sh->qhead;
    es->sh = sh;
    if (po->spool_path != NULL && po->spool_path[0] != '\0') {
        sh->spool_max = po->spool_max_bytes > 0 ? po->spool_max_bytes : (64u << 20);
        int src = fdn__spool_open(&sh->spool, po->spool_path, sh->spool_max, err);
        if (src != 0)
            return src;
        spool_counts(sh); /* a spool left by an earlier run is replayed by the writer */
    }
    int rc = fdn__evb_pg_open(&es->be, po, err);
    uint64_t head = 0;
    if (rc == 0 && (rc = es->be.ops->head(es->be.state, &head, err)) != 0)
        fdn__evb_close(&es->be);
    if (rc != 0)
        return rc;
    /* the writer merges requests up to batch_max events: never past what one append takes
     * (a merged batch over it would fail requests that each fit) */
    uint32_t nmax = es->be.ops->batch_events_max;
    if (nmax != 0 && sh->batch_max > nmax)
        sh->batch_max = nmax;
    /* memory starts empty at the head: older events are read from the backend */
    es->next_id = head + 1;
    atomic_store_explicit(&es->first_id, head + 1, memory_order_release);
    atomic_store_explicit(&es->published, head, memory_order_release);
    atomic_store_explicit(&es->persisted, head, memory_order_release);
    return 0;
#else
    (void)es;
    (void)o;
    return fdn_err_set(err, FDN_ENOTSUP,
                       "events: this build has no PostgreSQL backend (FDN_WITH_POSTGRES=OFF)");
#endif
}

int fdn__evs_shared_start(fdn_events_t *es)
{
    struct evs_shared *sh = es->sh;
    if (!sh->writer_on) {
        fdn__mutex_lock(&sh->qmu);
        sh->qstop = false;
        sh->wended = false;
        fdn__mutex_unlock(&sh->qmu);
        uint64_t drained;
        while (read(sh->cut_fd, &drained, sizeof(drained)) > 0) { /* a stop's deadline before */
        }
        atomic_store_explicit(&sh->cut, false, memory_order_relaxed);
        sh->cut_spooled = sh->cut_failed = 0;
        if (pthread_create(&sh->writer, NULL, writer_main, es) != 0)
            return FDN_EAGAIN;
        sh->writer_on = true;
    }
    if (!sh->follower_on) {
        fdn__mutex_lock(&sh->fmu);
        sh->fstop = false;
        uint64_t drained;
        while (read(sh->wake_fd, &drained, sizeof(drained)) > 0) { /* a stop before */
        }
        fdn__mutex_unlock(&sh->fmu);
        if (pthread_create(&sh->follower, NULL, follower_main, es) != 0)
            return FDN_EAGAIN;
        sh->follower_on = true;
    }
    return 0;
}

/* The writer was cut at the stop's deadline (DESIGN, "Stopping"): tell telemetry what became
 * of the requests it had not committed. Stop's thread, the writer joined. */
static void report_cut(fdn_events_t *es)
{
    struct evs_shared *sh = es->sh;
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (tm == NULL)
        return;
    fdn_telemetry_measure_t m[] = {{"spooled", (double)sh->cut_spooled},
                                   {"failed", (double)sh->cut_failed}};
    fdn_telemetry_meta_t meta[] = {{"spool", sh->spool != NULL ? "yes" : "no"}};
    (void)fdn_telemetry_execute(tm, "foundation.event_store.stop_deadline", m, 2, meta, 1);
    fdn__evs_tm_leave(&tp);
}

void fdn__evs_shared_stop(fdn_events_t *es)
{
    struct evs_shared *sh = es->sh;
    if (sh == NULL)
        return;
    /* the follower first, at once: its calls on PostgreSQL are cut (wake_fd), so it holds
     * neither imu nor the stop */
    if (sh->follower_on) {
        fdn__mutex_lock(&sh->fmu);
        sh->fstop = true;
        pthread_cond_broadcast(&sh->fcv);
        uint64_t one = 1;
        (void)!write(sh->wake_fd, &one, sizeof(one)); /* wakes its backend wait */
        fdn__mutex_unlock(&sh->fmu);
    }
    if (sh->writer_on) { /* drains the queue first, up to the stop's deadline */
        int64_t dl = fdn__deadline_after_ms(sh->stop_ms); /* < 0: INT64_MAX, none */
        fdn__mutex_lock(&sh->qmu);
        sh->qstop = true;
        pthread_cond_broadcast(&sh->qcv);
        bool cut = false;
        while (!sh->wended && !cut)
            cut = fdn__cond_wait_until(&sh->wend, &sh->qmu, dl) != 0 && !sh->wended;
        fdn__mutex_unlock(&sh->qmu);
        if (cut) { /* the deadline: the writer's call ends, the rest is spooled or fails */
            atomic_store_explicit(&sh->cut, true, memory_order_seq_cst);
            uint64_t one = 1;
            (void)!write(sh->cut_fd, &one, sizeof(one));
        }
        pthread_join(sh->writer, NULL);
        sh->writer_on = false;
        atomic_store_explicit(&sh->stop_spooled, cut ? sh->cut_spooled : 0, memory_order_relaxed);
        atomic_store_explicit(&sh->stop_failed, cut ? sh->cut_failed : 0, memory_order_relaxed);
        if (cut)
            report_cut(es);
    }
    /* the writer drained the queue before it ended; requests still queued had no writer
     * (its start failed): they fail, their callbacks run */
    fdn__mutex_lock(&sh->qmu);
    sh->qstop = true;
    sh_req_t *left = sh->qhead;
    sh->qhead = NULL;
    sh->qtail = &sh->qhead;
    sh->queued = 0;
    sh->qbytes = 0;
    fdn__mutex_unlock(&sh->qmu);
    if (left != NULL)
        finish_requests(es, left, FDN_EUNAVAILABLE);
    if (sh->follower_on) {
        pthread_join(sh->follower, NULL);
        sh->follower_on = false;
    }
}

void fdn__evs_shared_free(fdn_events_t *es)
{
    struct evs_shared *sh = es->sh;
    if (sh == NULL)
        return;
    fdn__evs_shared_stop(es);
    fdn__evb_close(&es->be);
    pthread_mutex_destroy(&sh->qmu);
    pthread_cond_destroy(&sh->qcv);
    pthread_cond_destroy(&sh->qdone);
    pthread_cond_destroy(&sh->wend);
    pthread_mutex_destroy(&sh->fmu);
    pthread_cond_destroy(&sh->fcv);
    pthread_mutex_destroy(&sh->imu);
    pthread_mutex_destroy(&sh->hmu);
    fdn__spool_close(sh->spool);
    close(sh->wake_fd);
    close(sh->cut_fd);
    fdn__free(sh);
    es->sh = NULL;
}

/* ---- calls ---- */

/* The payload bytes of n events (what the backend's batch_bytes_max bounds). */
static uint64_t payload_bytes(const fdn_event_t *const *evs, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        (void)fdn_event_data(evs[i], &len);
        b += len;
    }
    return b;
}

/* A store queued with copies of its events, not awaited: from the store's own writer or
 * follower thread (its ids are 0: not known yet; its outcome is the writer's to report), or
 * an asynchronous store (cb set: the writer reports its outcome to cb). */
static int store_detached(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids,
                          fdn_events_stored_cb cb, void *user)
{
    struct evs_shared *sh = es->sh;
    sh_req_t *r = fdn__calloc(1, sizeof(*r));
    fdn_event_t **copy = fdn__calloc(n, sizeof(*copy));
    int rc = r != NULL && copy != NULL ? 0 : FDN_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fdn_event_copy(&copy[i], evs[i]);
    fdn__mutex_lock(&sh->qmu);
    if (rc == 0 && (!fdn__evs_running(es) || sh->qstop))
        rc = FDN_EUNAVAILABLE;
    if (rc == 0) {
        r->evs = (const fdn_event_t *const *)copy;
        r->n = n;
        r->bytes = payload_bytes(r->evs, n);
        r->detached = true;
        r->cb = cb;
        r->user = user;
        *sh->qtail = r;
        sh->qtail = &r->next;
        sh->queued += n;
        sh->qbytes += r->bytes;
        pthread_cond_signal(&sh->qcv);
    }
    fdn__mutex_unlock(&sh->qmu);
    if (rc != 0) {
        for (size_t i = 0; copy != NULL && i < n; i++)
            fdn_event_free(copy[i]);
        fdn__free(copy);
        fdn__free(r);
        return rc;
    }
    if (ids != NULL)
        memset(ids, 0, n * sizeof(*ids));
    return 0;
}

bool fdn__evs_shared_on_thread(const fdn_events_t *es)
{
    return es != NULL && tl_own == es;
}

int fdn__evs_shared_store(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids)
{
    struct evs_shared *sh = es->sh;
    if (tl_own == es)
        return store_detached(es, evs, n, ids, NULL, NULL);
    sh_req_t r = {.evs = evs, .n = n, .bytes = payload_bytes(evs, n), .ids = ids};
    fdn__mutex_lock(&sh->qmu);
    if (!fdn__evs_running(es) || sh->qstop) {
        fdn__mutex_unlock(&sh->qmu);
        return FDN_EUNAVAILABLE;
    }
    *sh->qtail = &r;
    sh->qtail = &r.next;
    sh->queued += n;
    sh->qbytes += r.bytes;
    pthread_cond_signal(&sh->qcv);
    while (!r.done)
        pthread_cond_wait(&sh->qdone, &sh->qmu);
    fdn__mutex_unlock(&sh->qmu);
    return r.rc;
}

int fdn__evs_shared_store_async(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                fdn_events_stored_cb cb, void *user)
{
    return store_detached(es, evs, n, NULL, cb, user);
}

int fdn__evs_shared_get(fdn_events_t *es, uint64_t id, int64_t off, fdn_event_t **out)
{
    gcall_t gc;
    int rc = g_begin(es, &gc);
    if (rc != 0)
        return rc;
    rc = g_end(es, &gc, "get", ops(es)->get(es->be.state, id, out, NULL));
    if (rc == 0)
        (*out)->ts = fdn__evs_rebuilt_ts((*out)->wall, off);
    return rc;
}

static void to_backend(const fdn_events_query_t *q, int64_t off, fdn__evb_query_t *bq)
{
    bq->type = q->type;
    bq->correlation_id = q->correlation_id;
    fdn__evs_wall_bounds(q, off, &bq->wall_start, &bq->wall_end);
    bq->after = q->after_id;
    bq->before = q->before_id;
    bq->descending = q->descending;
}

int fdn__evs_shared_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit, int64_t off,
                          fdn_event_list_t **out, bool *handled)
{
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
    *handled = false;
    if (q->parent_id != 0 ||
        (q->after_id + 1 >= first && q->before_id != 0 && q->before_id - 1 <= pub))
        return 0; /* memory answers */
    *handled = true;
    fdn__evb_query_t bq;
    to_backend(q, off, &bq);
    uint64_t want = (uint64_t)limit + (uint64_t)q->offset;
    bq.limit = want > SIZE_MAX ? SIZE_MAX : (size_t)want;
    gcall_t gc;
    int rc = g_begin(es, &gc);
    if (rc != 0)
        return rc;
    rc = g_end(es, &gc, "query", ops(es)->query(es->be.state, &bq, out, NULL));
    if (rc != 0)
        return rc;
    fdn_event_list_t *l = *out;
    size_t skip = (uint64_t)q->offset < l->n ? (size_t)q->offset : l->n;
    if (skip > 0) { /* the skipped events stay in the list's block until it is freed */
        memmove(l->items, l->items + skip, (l->n - skip) * sizeof(*l->items));
        l->n -= skip;
    }
    remap(l, off);
    return 0;
}

int fdn__evs_shared_correlation(fdn_events_t *es, const char *cid, fdn_event_list_t **out)
{
    gcall_t gc;
    int rc = g_begin(es, &gc);
    if (rc != 0)
        return rc;
    rc = g_end(es, &gc, "correlation", ops(es)->correlation(es->be.state, cid, out, NULL));
    if (rc == 0)
        remap(*out, fdn__evs_clock_offset(es));
    return rc;
}

int fdn__evs_shared_page(fdn_events_t *es, const char *type, const char *cid, uint64_t after,
                         uint64_t before, size_t max, int64_t off, fdn_event_list_t **out)
{
    fdn__evb_query_t bq = fdn__evs_page_query(type, cid, after, before, max);
    gcall_t gc;
    int rc = g_begin(es, &gc);
    if (rc != 0)
        return rc;
    rc = g_end(es, &gc, "page", ops(es)->query(es->be.state, &bq, out, NULL));
    if (rc == 0)
        remap(*out, off);
    return rc;
}

int fdn__evs_set_guard(fdn_events_t *es, const fdn__evs_guard_ops_t *gops, void *g)
{
    struct evs_shared *sh = es->sh;
    if (sh == NULL)
        return 0;
    int rc = fdn__gate_change_begin(&sh->ggate);
    if (rc != 0)
        return rc; /* from a call the old guard admitted (its callback): it would wait for itself */
    const struct gslot *cur = atomic_load_explicit(&sh->gcur, memory_order_relaxed);
    struct gslot *s = NULL;
    if (gops != NULL && g != NULL) {
        s = cur == &sh->gslot[0] ? &sh->gslot[1] : &sh->gslot[0];
        s->ops = gops;
        s->g = g;
    }
    atomic_store_explicit(&sh->gcur, s, memory_order_release);
    /* the calls admitted by the old guard report to it first (at most one backend call's
     * bound, command_timeout_ms): then the caller may free it */
    fdn__gate_change_end(&sh->ggate);
    return 0;
}

void fdn__evs_shared_status(fdn_events_t *es, fdn_events_backend_status_t *out)
{
    struct evs_shared *sh = es->sh;
    out->backend = FDN_EVENTS_BACKEND_POSTGRES;
    out->up = atomic_load_explicit(&sh->up, memory_order_relaxed);
    out->breaker_state = 0;
    out->retry_after_ms = -1;
    if (atomic_load_explicit(&sh->gcur, memory_order_acquire) != NULL) {
        fdn__gate_pass_t p;
        fdn__gate_enter(&sh->ggate, &p);
        const struct gslot *s = atomic_load_explicit(&sh->gcur, memory_order_acquire);
        if (s != NULL)
            out->breaker_state = s->ops->state(s->g, &out->retry_after_ms);
        fdn__gate_leave(&p);
    }
    out->spooled_events = atomic_load_explicit(&sh->sp_events, memory_order_relaxed);
    out->spooled_bytes = atomic_load_explicit(&sh->sp_bytes, memory_order_relaxed);
    out->spool_max_bytes = sh->spool != NULL ? sh->spool_max : 0;
    out->replayed_events = atomic_load_explicit(&sh->replayed, memory_order_relaxed);
    out->calls = atomic_load_explicit(&sh->calls, memory_order_relaxed);
    out->failures = atomic_load_explicit(&sh->failures, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&sh->rejected, memory_order_relaxed);
    out->spool_replay_failures = atomic_load_explicit(&sh->replay_failures, memory_order_relaxed);
    out->spool_replay_error = atomic_load_explicit(&sh->replay_error, memory_order_relaxed);
    out->spool_quarantined_batches = atomic_load_explicit(&sh->q_batches, memory_order_relaxed);
    out->spool_quarantined_events = atomic_load_explicit(&sh->q_events, memory_order_relaxed);
    out->spool_quarantined_bytes = atomic_load_explicit(&sh->q_bytes, memory_order_relaxed);
    out->spool_quarantine_error = atomic_load_explicit(&sh->q_error, memory_order_relaxed);
    out->stop_spooled_events = atomic_load_explicit(&sh->stop_spooled, memory_order_relaxed);
    out->stop_failed_events = atomic_load_explicit(&sh->stop_failed, memory_order_relaxed);
}
