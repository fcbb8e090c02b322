/*
 * DESIGN: the event store as a service: lifecycle, the durable writer, retention, and the
 * replay of the stores buffered while stopped (the memory tier and
 * the public store entry points are in event_store.c, the intern tables in event_intern.c,
 * the query engine in event_query.c, subscriptions in event_subs.c).
 *
 * Threads, all started by create/start and joined by stop/destroy:
 *  - writer (durable_path only): waits on wcv for published > persisted, encodes the
 *    unpersisted events' records straight from memory (plock read; no event copies, one
 *    buffer kept between commits), writes them through the durable
 *    backend's table (storage/event_backend.h; SQLite: one transaction)
 *    (group commit of about 8192 events, extended to the end of a store_batch so a batch
 *    is never split between commits; after a commit that released 8 or more waiting
 *    callers it first gathers the next batch for a bounded time, see writer_linger) and
 *    broadcasts wdone. A synchronous durable caller whose batch leaves 256 or more events to
 *    commit and finds the writer idle runs that commit on its own thread (lead_commit; the
 *    writer waits meanwhile, so one commit runs at a time). In durable mode a store call
 *    waits on the commit word (commit_bit) until persisted >= its last id; in fast mode it
 *    returns at once unless more than fast_queue_max events wait (then it waits on wdone:
 *    bounded queue) or the writer has failed (then the error: writer_failed, which answers
 *    fdn_events_store_async's calls and callbacks alike). An explicit prune
 *    (fdn_events_prune_before) deletes from the file itself, on the backend's read
 *    connection, after waiting for the writer to commit what it removes (see "prune"). An I/O
 *    error is latched in io_error (health reports it, waiting callers get FDN_EIO) and the
 *    writer stops writing until restarted. A failed commit's outcome is unknown (a COMMIT
 *    can fail after its transaction reached the WAL: the file recovers it when reopened);
 *    the failed events stay in memory, and a restart reopens the file and counts what it
 *    holds past persisted as committed (persisted_from_file), so no id is inserted twice.
 *    Asynchronous stores (fdn_events_store_async) are queued in id order under amu+wmu with
 *    the id they wait for; after each commit the writer detaches the acknowledged prefix
 *    (all of the queue on an error: those the file holds get 0, the rest the error) and
 *    runs their callbacks with no lock held. Stop runs
 *    the callbacks still queued after the writer's final drain with FDN_EUNAVAILABLE.
 *  - retention: waits on the injected clock (fdn_clock_wait_until) for prune_interval and
 *    applies the memory tier's max_events / max_age (evicting from memory only, and on SQLite
 *    only committed events: the file keeps them), then the durable tier's own retention
 *    (event_disk.c); setters kick the clock to re-arm it.
 *    A create that opens a file fills memory the same way (db_open_load, load_cb): the newest
 *    max_events rows, less the longest prefix of them older than max_age. Memory always holds
 *    a contiguous range of ids, [first_id, published], because every read of the file
 *    (event_disk.c) covers only ids below first_id. Ages are cut as a prefix, never event by
 *    event: timestamps rebuilt from wall time (another boot's events, a caller's wall_ns) are
 *    not in id order, and an old event between newer ones stays in memory with the newer
 *    timestamp before it (the append's clamp), as it would on a store that never stopped.
 *  - delivery (started with the first subscription) and the pagers of from-position
 *    subscriptions: event_subs.c.
 * Lock order: plock -> amu -> wmu; smu, rmu are leaves (never held while taking another,
 * except that the delivery thread takes plock (read) with no other lock held). Subscribe and
 * unsubscribe take amu (the append path's set of subscriptions) and smu one after the
 * other, never both.
 *  - with a shared backend (PostgreSQL), the writer and a follower of event_shared.c run
 *    instead of the writer above: ids come from the backend (see event_shared.c), and their
 *    stop is bounded (stop_timeout_ms: event_shared.c, "Stopping").
 * Stop sets running = 0 under amu, so no append starts afterwards; then it joins the
 * threads (the writer first drains everything published). Stores while stopped either fail
 * with FDN_EUNAVAILABLE or go to a bounded buffer with pre-assigned ids, replayed on start,
 * which waits for their commit. A start that fails leaves the store stopped; when the
 * replay's commit is what failed, the replayed events stay in the memory tier (not the
 * buffer), unpersisted like a failed store's, and the next start's writer commits them.
 */
#include <fdn/events.h>

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sync.h"
#include "core/tsan.h"
#include "services/event_store_int.h"

/* ------------------------------------------------------------------- prune ---- */

/* fdn_events_prune_before on a write-behind store (SQLite). Memory and the file each hold a
 * contiguous range of ids (event_disk.c: reads of the file go by id bounds, a page counts the
 * ids below the file's first as deleted, retention by count takes newest - oldest + 1 as the
 * rows), so the prune, like both tiers' retention, cuts only a prefix of ids: from the file's
 * oldest id up to (not including) the first event that is not older than the cut. Below
 * memory's first id that event is found by reading the file from its oldest id up, by the
 * timestamp a read of the file gives each event (fdn__evs_disk_old_prefix, the scan durable
 * retention's age cut uses: bounded reads, dmu released between them); wall time, and with it
 * a rebuilt timestamp, is not in id order (another boot, a caller's wall time), so an old
 * event after a newer one stays until the newer one goes (deleting it alone left a hole in
 * the file). When the file's part reaches memory's first id, memory's events older than the
 * cut are a prefix of its ids (time order is id order in memory). The file goes first: memory
 * then drops [first, cut), so a read never finds below memory's first id an event the file
 * should not hold any more. A commit in flight may hold events being pruned (the writer
 * copied them before the prune): before memory's part the call waits for the writer to commit
 * up to the cut
 * (bounded by a commit; not on the writer's own thread, an asynchronous store's callback,
 * where no commit is in flight and the next ones skip ids memory no longer holds), so every
 * event it removes from memory is either deleted from the file by the call itself or never
 * written. Deleted in transactions of a bounded number of rows (event_sqlite.c), so the writer
 * waits for one at most. */

/* The store whose writer runs on this thread (NULL: none): asynchronous stores' callbacks run
 * there, and a prune from one must not wait for the writer. */
static _Thread_local fdn_events_t *writer_of;
static _Thread_local const fdn_events_t *pruner_of; /* the store whose pruner this thread is */

static bool busy_since(fdn_events_t *es, uint32_t seen, uint64_t last_id);
#define BUSY_PAUSE_NS 10000000 /* the writer's pause after a busy commit (10 ms; "Busy") */
static int writer_failed(fdn_events_t *es, uint64_t last_id);

/* Wait until the writer has committed every id up to upto: 0; the writer's latched error;
 * FDN_ETIMEDOUT (a commit attempt covering upto found the file's write lock held past
 * busy_timeout since busy0 was read). The writer commits everything published before it
 * stops, or fails, so the wait ends. */
static int wait_committed(fdn_events_t *es, uint64_t upto, uint32_t busy0)
{
    int rc = 0;
    fdn__mutex_lock(&es->wmu);
    while (atomic_load_explicit(&es->persisted, memory_order_acquire) < upto) {
        if ((rc = writer_failed(es, upto)) != 0)
            break;
        if (busy_since(es, busy0, upto)) {
            rc = FDN_ETIMEDOUT;
            break;
        }
        pthread_cond_wait(&es->wdone, &es->wmu);
    }
    fdn__mutex_unlock(&es->wmu);
    return rc;
}

/* Raise disk_first (the oldest id the file may still hold) to `to`. */
static void disk_first_raise(fdn_events_t *es, uint64_t to)
{
    uint64_t d = atomic_load_explicit(&es->disk_first, memory_order_relaxed);
    while (d < to && !atomic_compare_exchange_weak(&es->disk_first, &d, to)) {
    }
}

/* The file's part of a prune by time (see above): *cut, memory's cut, is lowered to what may
 * leave memory (first: nothing, when the file's prefix ends below first at an event that is
 * not older, or the file part failed); *count gets the rows deleted below first (events
 * memory did not hold). */
static int prune_file(fdn_events_t *es, int64_t ts, uint64_t first, uint64_t *cut, uint64_t *count)
{
    uint32_t busy0 = atomic_load_explicit(&es->busy_seq, memory_order_acquire);
    int64_t off = fdn__evs_clock_offset(es);
    int frc = 0;
    bool newer = false; /* the prefix ended below first, at an event not older than the cut */
    /* below memory: from the file's oldest id, each part of the prefix deleted as it is found
     * (a part is at most the scan's bound of ids) */
    fdn__mutex_lock(&es->dmu);
    uint64_t lo = atomic_load_explicit(&es->disk_first, memory_order_acquire);
    while (frc == 0 && lo < first) {
        uint64_t end = lo;
        bool ended = false;
        frc = fdn__evs_disk_old_prefix(es, lo, first, ts, off, &end, &ended);
        if (frc == 0 && end > lo) {
            uint64_t n = 0;
            if (es->be.ops->prune_where == NULL)
                frc = FDN_EUNAVAILABLE;
            else
                frc = es->be.ops->prune_where(es->be.state, lo, end, &n, NULL);
            *count += n; /* a failure leaves its committed chunks deleted, and counted */
            if (frc == 0)
                disk_first_raise(es, end);
        }
        if (frc == 0 && ended && end < first)
            newer = true;
        if (ended)
            break;
        lo = end;
    }
    fdn__mutex_unlock(&es->dmu);
    if (frc != 0 || newer) {
        *cut = first; /* memory keeps its events: the file holds older ones than its cut */
        return frc;
    }
    /* memory's [first, cut): all older than the cut */
    int rc = 0;
    if (*cut > first && writer_of != es)
        rc = wait_committed(es, *cut - 1, busy0);
    uint64_t held = atomic_load_explicit(&es->persisted, memory_order_acquire);
    if (rc != 0 && *cut > held + 1)
        *cut = FDN_MAX(first, held + 1); /* only what the file holds: the rest stays */
    uint64_t upto = FDN_MIN(*cut, held + 1);
    if (upto > first) {
        fdn__mutex_lock(&es->dmu);
        if (!fdn__evb_open(&es->be) || es->be.ops->prune_where == NULL)
            frc = FDN_EUNAVAILABLE; /* the file is closed: the store stopped */
        else
            frc = es->be.ops->prune_where(es->be.state, first, upto, NULL, NULL);
        if (frc == 0)
            disk_first_raise(es, upto);
        fdn__mutex_unlock(&es->dmu);
    }
    if (frc != 0) {
        *cut = first; /* memory keeps every event the file may still hold */
        return frc;
    }
    return rc;
}

int fdn_events_prune_before(fdn_events_t *es, int64_t ts, uint64_t *out_count)
{
    if (es == NULL)
        return FDN_EINVAL;
    if (!fdn__evs_running(es))
        return FDN_EUNAVAILABLE;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t cut = fdn__evs_id_at_time(es, ts, snap);
    fdn__rwlock_rdunlock(&es->plock);
    uint64_t n = 0;
    int rc = 0;
    if (es->durable_path != NULL && es->sh == NULL)
        rc = prune_file(es, ts, first, &cut, &n);
    n += fdn__evs_prune_ids(es, cut);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = n > 0 ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm != NULL) {
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_pruned", n, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    if (out_count)
        *out_count = n;
    return rc;
}

/* ------------------------------------------------------------------ writer ---- */

/* Detach the queued asynchronous stores acknowledged once `upto` is persisted. */
static evs_async_t *async_take(fdn_events_t *es, uint64_t upto, uint32_t *count)
    FDN_REQUIRES(es->wmu)
{
    evs_async_t *head = es->aq_head, **pp = &es->aq_head;
    *count = 0;
    while (*pp != NULL && (*pp)->need <= upto) {
        pp = &(*pp)->next;
        (*count)++;
    }
    if (pp == &es->aq_head)
        return NULL;
    es->aq_head = *pp;
    *pp = NULL;
    if (es->aq_head == NULL)
        es->aq_tail = &es->aq_head;
    return head;
}

/* Run and free a detached list of asynchronous stores (no lock held). */
static void async_run(fdn_events_t *es, evs_async_t *w, int rc)
{
    while (w != NULL) {
        evs_async_t *next = w->next;
        atomic_fetch_sub_explicit(&es->aq_events, w->n, memory_order_relaxed);
        w->cb(rc, w->first_id, w->n, w->user);
        fdn__free(w);
        w = next;
    }
}

/* Run the stores a failure detached: those whose events the file holds already (a commit
 * before the failed one covered them) with 0, the rest with the error, as writer_failed answers
 * the synchronous calls; in id order. wmu held on entry and return, released for the
 * callbacks. */
static void async_run_failed(fdn_events_t *es, evs_async_t *w, int rc) FDN_REQUIRES(es->wmu)
{
    uint64_t held = atomic_load_explicit(&es->persisted, memory_order_relaxed);
    evs_async_t *ok = NULL, **tail = &ok;
    while (w != NULL && w->first_id + w->n - 1 <= held) {
        *tail = w;
        tail = &w->next;
        w = w->next;
    }
    *tail = NULL;
    fdn__mutex_unlock(&es->wmu);
    async_run(es, ok, 0);
    async_run(es, w, rc);
    fdn__mutex_lock(&es->wmu);
}

/* The answer to a store whose last id is last_id, as far as the writer's failure goes (both
 * modes, fdn_events_store and fdn_events_store_async alike): the latched error while the
 * batch is not in the file, else 0. io_error is read first: once it is set, persisted moves
 * no more until a restart, so a batch not committed then is not committed by this writer. */
static int writer_failed(fdn_events_t *es, uint64_t last_id)
{
    int rc = atomic_load_explicit(&es->io_error, memory_order_acquire);
    if (rc != 0 && atomic_load_explicit(&es->persisted, memory_order_acquire) >= last_id)
        rc = 0;
    return rc;
}

void (*fdn__evs_async_queue_hook)(fdn_events_t *es, uint64_t last_id);

int fdn__evs_async_queue(fdn_events_t *es, evs_async_t *w, uint64_t last_id)
{
    if (es->durable_path == NULL)
        return 0;
    if (fdn__evs_async_queue_hook != NULL)
        fdn__evs_async_queue_hook(es, last_id);
    uint64_t need = last_id;
    if (es->mode == FDN_EVENTS_FAST) /* acknowledged once at most fast_queue_max wait */
        need = last_id > es->fast_queue_max ? last_id - es->fast_queue_max : 0;
    fdn__mutex_lock(&es->wmu);
    /* the writer checks published and sets writer_idle / writer_want under wmu, so under it
     * they are stable: wake it only when it waits for this id (while it gathers a group
     * commit, waking it per append only costs a context switch each) */
    if (atomic_load_explicit(&es->writer_idle, memory_order_relaxed) &&
        last_id >= atomic_load_explicit(&es->writer_want, memory_order_relaxed))
        pthread_cond_signal(&es->wcv);
    /* the writer has failed: the error, unless the batch is in the file (then as below) */
    int rc = writer_failed(es, last_id);
    /* durable mode: always queued, also when a commit covered the batch since its append
     * (the writer took no amu for it): the callback runs on the writer thread, after those
     * of the earlier stores that commit acknowledged (its next look at the queue) */
    if (rc == 0 && (es->mode == FDN_EVENTS_DURABLE ||
                    atomic_load_explicit(&es->persisted, memory_order_acquire) < need)) {
        w->need = need;
        w->next = NULL;
        *es->aq_tail = w;
        es->aq_tail = &w->next;
        rc = 1;
    }
    fdn__mutex_unlock(&es->wmu);
    return rc;
}

/* Group commit of durable callers. A commit releases the callers whose events it holds; on
 * a busy store they come back with their next events while the writer is already starting
 * the next commit, which then holds only the few that were quick (measured with 64 threads
 * each storing one event at a time: a third of the commits held fewer than 16 events, 40
 * on average where 64 were waiting). So after a commit that released at least LINGER_MIN
 * waiting callers, the writer waits for the next batch to reach 3/4 of that commit's size,
 * for at most that commit's duration (never more than LINGER_MAX_NS), before it starts the
 * next one: as PostgreSQL's commit_delay with commit_siblings. When the commit released
 * mostly asynchronous stores, the wait is for the events appended meanwhile plus 3/4 of the
 * commit, for at most twice its duration: waiting for 3/4 of the commit alone let 32 HTTP
 * clients settle into two halves that took turns (each commit released one half while the
 * other was already waiting, 11-14 events a commit; now 22-26), where a client's round trip
 * is longer than a commit. (For 64 synchronous threads that longer wait cost a third of the
 * throughput of events.append.durable_64t: they come back at once, and the writer idled.) The
 * callers counted are the synchronous ones asleep on the commit word and the asynchronous stores
 * the commit acknowledges (fdn_events_store_async: e.g. HTTP requests, whose clients send their
 * next event once answered; with 32 of them in flight the writer used to start each commit with the
 * ~10 that were quick, every commit released a few). An append below the size the writer waits for
 * does not wake it. An idle or lightly used store (fewer callers per commit) never waits; every
 * commit is still fsynced before its callers are acknowledged. */
#define LINGER_MIN    8u
#define LINGER_MAX_NS 2000000

/* Wait (wmu held) until published reaches want, the deadline passes, or the writer must
 * stop. */
static void writer_linger(fdn_events_t *es, uint64_t want, int64_t wait_ns) FDN_REQUIRES(es->wmu)
{
    int64_t dl = fdn__mono_now_ns() + wait_ns; /* wait_ns <= LINGER_MAX_NS */
    atomic_store(&es->writer_want, want);
    atomic_store(&es->writer_idle, true); /* seq_cst, as in writer_main's idle wait */
    while (!es->wstop && atomic_load(&es->published) < want &&
           atomic_load_explicit(&es->io_error, memory_order_relaxed) == 0)
        if (fdn__cond_wait_until(&es->wcv, &es->wmu, dl) == FDN_ETIMEDOUT)
            break;
    atomic_store_explicit(&es->writer_idle, false, memory_order_relaxed);
    atomic_store(&es->writer_want, 0);
}

/* The writer's record buffer is kept between commits up to this size (a commit of 8192
 * events of 100 bytes encodes to about 1.6 MB). */
#define RECBUF_KEEP ((size_t)4 << 20)

/* Durable callers wake per commit, not all per commit. With 64 callers and one event each in
 * flight, a commit of ~40 events ended with ~57 of them asleep: those whose events came after
 * its range was taken woke for nothing and slept again, 0.39 extra sleeps and wake-ups per
 * event (7 400 of 26 600, counted). Each commit has a number; the writer announces the one in
 * flight with the last id it covers (commit_cover) before copying its range, and wakes, when
 * it ends, the sleepers of its number's bit (of 32) only. A caller sleeps on the bit of the
 * commit that covers its id: the one announced if its id is within that commit's range, else
 * the next (which takes every id published before it starts, up to its size cap). A stale
 * announcement only costs a wake-up: the caller read the commit word before it, and a commit
 * that ended since changed the word, so the caller does not sleep; a later commit sharing
 * the bit (32 numbers on) wakes it early, it checks and sleeps again. Ids past 2^59 (never:
 * a store appends far fewer) sleep on every bit, as a failed commit wakes every bit. */
#define COVER_BITS 5u

static uint64_t cover_pack(uint64_t to, uint32_t num)
{
    return to < ((uint64_t)1 << (64 - COVER_BITS)) ? to << COVER_BITS | (num & 31u) : UINT64_MAX;
}

/* The bit a caller whose last event is last_id sleeps on, from an announcement. */
static uint32_t commit_bit(uint64_t cover, uint64_t last_id)
{
    if (cover == UINT64_MAX || last_id >= ((uint64_t)1 << (64 - COVER_BITS)))
        return FDN__WORD_ALL_BITS;
    uint32_t num = (uint32_t)(cover & 31u);
    if (last_id > cover >> COVER_BITS)
        num = (num + 1) & 31u;
    return 1u << num;
}

/* One commit: the range after `done` up to about 8 192 events (never splitting a store_batch),
 * encoded, appended, then the callers it covers released. Run by
 * the writer, or by a synchronous caller leading its own batch (lead_commit: then `ack` is
 * false and the asynchronous acknowledgements are left to the writer, whose thread runs their
 * callbacks). wmu held on entry and return, released for the work. For the writer, after a
 * commit that released LINGER_MIN callers, *linger_want and *linger_ns: the next gathering. */
static void commit_once(fdn_events_t *es, uint64_t pub, uint64_t done, bool ack,
                        uint64_t *linger_want, int64_t *linger_ns) FDN_REQUIRES(es->wmu)
{
    fdn_error_t err;
    evs_recbuf_t *rb = &es->wrb;
    uint64_t to = pub > done ? FDN_MIN(pub, done + 8192) : done;
    fdn__mutex_unlock(&es->wmu);
    if (to > done)
        to = fdn__evs_batch_end(es, to); /* never split a store_batch across commits */
    /* announced before the copy: whoever reads it sleeps on this commit's bit or the next's
     * (commit_bit); seq_cst, as the commit word */
    uint32_t num = es->commit_num = (es->commit_num + 1) & 31u;
    atomic_store(&es->commit_cover, cover_pack(to, num));
    int rc = 0;
    rb->n = 0;
    unsigned enc = es->compress ? FDN_EVENT_ENC_ZSTD : 0; /* as the backend was opened */
    if (to > done)
        rc = fdn__evs_encode_range(es, done + 1, to, enc, rb);
    int64_t t0 = fdn_clock_mono_ns(NULL);
    if (rc == 0) {
        fdn__evb_batch_t b = {.n = rb->n,
                              .prune_below = 0,
                              .next_id = to + 1,
                              .recs = rb->n > 0 ? rb->buf : NULL,
                              .rec_off = rb->off};
        rc = es->be.ops->append(es->be.state, &b, &err);
    }
    if (rb->cap > RECBUF_KEEP) { /* a commit of large events: its memory is not kept */
        fdn__free(rb->buf);
        rb->buf = NULL;
        rb->cap = 0;
    }
    int64_t took = fdn_clock_mono_ns(NULL) - t0;
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (rc == 0 && tm != NULL) {
        /* the durable commit (one transaction, fsynced), timed: exported as the
         * histogram fdn_event_store_commit_duration_seconds */
        fdn_telemetry_measure_t m = {"duration", (double)took};
        (void)fdn_telemetry_execute(tm, "foundation.event_store.commit", &m, 1, NULL, 0);
    }
    if (rc != 0 && tm != NULL)
        fdn_telemetry_emit_counter(tm, "foundation.event_store.writer_errors", NULL, 0);
    if (tm != NULL)
        fdn__evs_tm_leave(&tp);
    fdn__mutex_lock(&es->wmu);
    /* Busy: the file's write lock was held by another connection past busy_timeout. Nothing
     * was written, and the next attempt may succeed: not latched, unless the writer is
     * stopping (then FDN_EUNAVAILABLE: the store stopped before the commit could be made, a
     * stop waits for one attempt at most). */
    bool busy = rc == FDN_EBUSY && !es->wstop;
    int latched = rc == FDN_ENOMEM ? FDN_ENOMEM : rc == FDN_EBUSY ? FDN_EUNAVAILABLE : FDN_EIO;
    if (rc != 0) {
        if (busy) {
            atomic_store_explicit(&es->busy_to, to, memory_order_relaxed);
            atomic_fetch_add_explicit(&es->busy_seq, 1, memory_order_release);
        } else {
            atomic_store_explicit(&es->io_error, latched, memory_order_release);
        }
        /* the failed range is not on disk: announce what is, so that a caller reading the
         * announcement after a restart cleared io_error (before the new writer announces)
         * sleeps on the next commit's bit, not on this one's (it would wait 32 commits) */
        atomic_store(&es->commit_cover,
                     cover_pack(atomic_load_explicit(&es->persisted, memory_order_relaxed), num));
    } else {
        atomic_store_explicit(&es->persisted, to, memory_order_release);
    }
    pthread_cond_broadcast(&es->wdone);
    /* seq_cst pair with the sleepers' count (fdn__evs_after_append): a caller counted
     * after this load sees the new word and does not sleep */
    atomic_fetch_add(&es->commit_seq, 1);
    uint32_t sleepers = atomic_load(&es->commit_sleepers);
    if (sleepers != 0) /* a failure wakes every caller: each returns the error */
        fdn__word_wake_bits(&es->commit_seq, rc == 0 ? 1u << num : FDN__WORD_ALL_BITS);
    if (!ack || busy) /* busy: the asynchronous stores stay queued for the next attempt */
        return;
    /* the durability ack of asynchronous stores: every one covered by this commit (all of
     * them on a failure), their callbacks run here with no lock held */
    uint32_t nacked = 0;
    evs_async_t *acked = async_take(es, rc == 0 ? to : UINT64_MAX, &nacked);
    /* the callers this commit releases, synchronous (asleep on the commit word) and
     * asynchronous (acknowledged by a callback, e.g. HTTP requests: their clients send
     * the next event once answered) */
    if (rc == 0 && es->mode == FDN_EVENTS_DURABLE && to - done >= LINGER_MIN &&
        sleepers + nacked >= LINGER_MIN && took > 0) {
        /* asynchronous callers (HTTP clients): what is appended already, then 3/4 of the
         * released ones; synchronous callers: 3/4 of the commit (see LINGER_MIN) */
        bool async = nacked >= sleepers;
        uint64_t ahead =
            async ? atomic_load_explicit(&es->published, memory_order_acquire) - to : 0;
        *linger_want = to + ahead + (to - done) * 3 / 4;
        *linger_ns = FDN_MIN(async ? 2 * took : took, (int64_t)LINGER_MAX_NS);
    }
    if (acked != NULL && rc != 0) {
        async_run_failed(es, acked, latched);
    } else if (acked != NULL) {
        fdn__mutex_unlock(&es->wmu);
        async_run(es, acked, 0);
        fdn__mutex_lock(&es->wmu);
    }
}

static void *writer_main(void *arg)
{
    fdn_events_t *es = arg;
    writer_of = es;
    /* a restarted writer (stop, start): what it announced last may cover ids the file it
     * reopened does not (callers of those would sleep on a bit no commit wakes) */
    uint64_t held = atomic_load_explicit(&es->persisted, memory_order_acquire);
    atomic_store(&es->commit_cover, cover_pack(held, es->commit_num));
    uint64_t linger_want = 0; /* gather the next commit up to this id (0: no) */
    int64_t linger_ns = 0;
    fdn__mutex_lock(&es->wmu);
    for (;;) {
        if (linger_want != 0) {
            writer_linger(es, linger_want, linger_ns);
            linger_want = 0;
        }
        if (es->lead) { /* a caller commits its batch (lead_commit): wait for it to end */
            atomic_store(&es->writer_want, 0);
            atomic_store(&es->writer_idle, true);
            pthread_cond_wait(&es->wcv, &es->wmu);
            atomic_store_explicit(&es->writer_idle, false, memory_order_relaxed);
            continue;
        }
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        uint64_t done = atomic_load_explicit(&es->persisted, memory_order_relaxed);
        bool failed = atomic_load_explicit(&es->io_error, memory_order_relaxed) != 0;
        /* the acknowledgements of asynchronous stores a caller's commit covered (or failed) */
        if (es->aq_head != NULL && (failed || es->aq_head->need <= done)) {
            uint32_t nacked = 0;
            evs_async_t *acked = async_take(es, failed ? UINT64_MAX : done, &nacked);
            int arc = atomic_load_explicit(&es->io_error, memory_order_relaxed);
            if (arc != 0) {
                async_run_failed(es, acked, arc);
                continue;
            }
            fdn__mutex_unlock(&es->wmu);
            async_run(es, acked, 0);
            fdn__mutex_lock(&es->wmu);
            continue;
        }
        if (failed || pub <= done) {
            if (es->wstop)
                break;
            /* announce the wait, then look again (seq_cst): an append either sees the flag
             * and signals under wmu, or published already shows its events here */
            atomic_store(&es->writer_want, 0);
            atomic_store(&es->writer_idle, true);
            if (!failed && atomic_load(&es->published) > done) {
                atomic_store_explicit(&es->writer_idle, false, memory_order_relaxed);
                continue;
            }
            pthread_cond_wait(&es->wcv, &es->wmu);
            atomic_store_explicit(&es->writer_idle, false, memory_order_relaxed);
            continue;
        }
        uint32_t busy0 = atomic_load_explicit(&es->busy_seq, memory_order_relaxed);
        commit_once(es, pub, done, true, &linger_want, &linger_ns);
        /* a busy file ("Busy"): each attempt waits busy_timeout in SQLite, but should one come
         * back at once, the next is still BUSY_PAUSE_NS away (no spinning); a stop ends it */
        if (atomic_load_explicit(&es->busy_seq, memory_order_relaxed) != busy0 && !es->wstop)
            (void)fdn__cond_wait_until(&es->wcv, &es->wmu, fdn__mono_now_ns() + BUSY_PAUSE_NS);
    }
    fdn__mutex_unlock(&es->wmu);
    fdn__free(es->wrb.buf);
    fdn__free(es->wrb.off);
    es->wrb = (evs_recbuf_t){0};
    return NULL;
}

/* A synchronous durable caller whose batch leaves at least LEAD_MIN events to commit, finding
 * the writer idle (parked, not gathering), commits them itself instead of waking the writer
 * and sleeping until it has: a store_batch of 1 000 cost two thread hand-offs per commit (the
 * writer woken, then the caller; each an idle CPU's wake-up, 5-50 us measured on the shared
 * VM) and the records were encoded on the other core from the one that had just written
 * them. The writer keeps every other commit: the group commits of many small callers (fewer
 * than LEAD_MIN events waiting never lead), prunes, and the acknowledgements of asynchronous
 * stores (a caller's commit leaves them to the writer's thread: their callbacks run there).
 * Only one commit runs at a time: es->lead, under wmu, is set only while the writer waits on
 * wcv with nothing to do, and the writer commits nothing while it is set (nor stops). */
#define LEAD_MIN 256u

static bool lead_commit(fdn_events_t *es, uint64_t last_id)
{
    if (last_id - atomic_load_explicit(&es->persisted, memory_order_acquire) < LEAD_MIN)
        return false;
    fdn__mutex_lock(&es->wmu);
    uint64_t done = atomic_load_explicit(&es->persisted, memory_order_relaxed);
    bool ok = atomic_load_explicit(&es->writer_idle, memory_order_relaxed) &&
              atomic_load_explicit(&es->writer_want, memory_order_relaxed) == 0 && !es->lead &&
              !es->wstop && es->aq_head == NULL &&
              atomic_load_explicit(&es->io_error, memory_order_relaxed) == 0 && last_id > done &&
              last_id - done >= LEAD_MIN;
    if (ok) {
        es->lead = true;
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        commit_once(es, pub, done, false, NULL, NULL);
        es->lead = false;
        /* the writer looks again when there is something for it: others' appends (their
         * signals came while it waited for this commit; or this commit was busy), acks, a
         * stop */
        if (atomic_load_explicit(&es->published, memory_order_acquire) >
                atomic_load_explicit(&es->persisted, memory_order_relaxed) ||
            es->aq_head != NULL || es->wstop ||
            atomic_load_explicit(&es->io_error, memory_order_relaxed) != 0)
            pthread_cond_signal(&es->wcv);
    }
    fdn__mutex_unlock(&es->wmu);
    return ok;
}

/* Busy. A commit that failed with FDN_EBUSY (the file's write lock held by another connection
 * past busy_timeout, 5 s) wrote nothing; the writer tries again at once (each attempt waits
 * busy_timeout), and its events stay in memory, published, as before. A caller waiting for
 * its commit (durable mode, or fast mode past fast_queue_max) whose id an attempt that
 * failed so since its append covered returns FDN_ETIMEDOUT: it waited busy_timeout, its
 * events are stored in memory under their ids and commit when the lock is free (they are
 * not refused: a later store's commit covers them). Asynchronous stores stay queued: their
 * callbacks run when a retry commits, or with FDN_EUNAVAILABLE at a stop. Only a stop turns a
 * busy commit into a failure (FDN_EUNAVAILABLE, latched until the next start): a stop waits
 * for one attempt at most. The memory of it: busy_seq (attempts that failed so) and busy_to
 * (the last id the last of them covered); a caller reads busy_seq when it starts waiting.
 * The writer pauses BUSY_PAUSE_NS after such an attempt (an attempt that came back at once
 * would otherwise be retried in a loop). */
static bool busy_since(fdn_events_t *es, uint32_t seen, uint64_t last_id)
{
    return atomic_load_explicit(&es->busy_seq, memory_order_acquire) != seen &&
           atomic_load_explicit(&es->busy_to, memory_order_relaxed) >= last_id;
}

int fdn__evs_after_append(fdn_events_t *es, uint64_t last_id)
{
    int rc = 0;
    uint32_t busy0 = atomic_load_explicit(&es->busy_seq, memory_order_acquire);
    /* durable_path is immutable; the writer runs whenever appends can happen (it is started
     * before running is set and joined after it is cleared, after draining) */
    if (es->durable_path != NULL) {
        /* published was stored before (store_batch); the fence orders it before reading the
         * writer's flag, which the writer sets before reading published (see writer_main) */
        fdn__full_fence();
        /* a large batch on an idle writer: committed here (then the writer is not woken) */
        bool led = es->mode == FDN_EVENTS_DURABLE && lead_commit(es, last_id);
        /* acquire: a writer_want older than the flag read is never seen (a stale, higher
         * want would skip the signal of a writer that now waits for any event) */
        if (!led && atomic_load_explicit(&es->writer_idle, memory_order_acquire) &&
            last_id >= atomic_load_explicit(&es->writer_want, memory_order_relaxed)) {
            fdn__mutex_lock(&es->wmu);
            pthread_cond_signal(&es->wcv);
            fdn__mutex_unlock(&es->wmu);
        }
        if (es->mode == FDN_EVENTS_DURABLE) {
            /* Many callers share each commit: they wait on the commit word, not on wmu, so
             * a commit's wake-up is not followed by each of them taking the writer's lock. */
            for (;;) {
                uint32_t seen = atomic_load_explicit(&es->commit_seq, memory_order_acquire);
                if (atomic_load_explicit(&es->persisted, memory_order_acquire) >= last_id)
                    break;
                rc = writer_failed(es, last_id);
                if (rc == 0 && busy_since(es, busy0, last_id))
                    rc = FDN_ETIMEDOUT;
                if (rc != 0)
                    break;
                /* read after the word: a commit announced since is either seen here or
                 * changes the word first (commit_bit) */
                uint32_t bit = commit_bit(atomic_load(&es->commit_cover), last_id);
                atomic_fetch_add(&es->commit_sleepers, 1);
                fdn__word_wait_bits(&es->commit_seq, seen, bit);
                atomic_fetch_sub(&es->commit_sleepers, 1);
            }
        } else {
            fdn__mutex_lock(&es->wmu);
            /* past the bound: wait for the writer. When it has failed, the error, also within
             * the bound (as fdn_events_store_async answers: its callers' 0 would acknowledge
             * events nothing will commit until a restart, lost at a destroy without one) */
            while ((rc = writer_failed(es, last_id)) == 0 &&
                   last_id > atomic_load_explicit(&es->persisted, memory_order_acquire) +
                                 es->fast_queue_max) {
                if (busy_since(es, busy0, last_id - es->fast_queue_max)) {
                    rc = FDN_ETIMEDOUT;
                    break;
                }
                pthread_cond_wait(&es->wdone, &es->wmu);
            }
            fdn__mutex_unlock(&es->wmu);
        }
    }
    if (atomic_load_explicit(&es->nsubs, memory_order_acquire) > 0)
        fdn__evs_notify_subs(es, last_id);
    return rc;
}

/* ---------------------------------------------------------------- retention ---- */

uint64_t fdn__evs_retention_memory(fdn_events_t *es)
{
    uint64_t max_events = atomic_load_explicit(&es->max_events, memory_order_relaxed);
    int64_t max_age = atomic_load_explicit(&es->max_age_ns, memory_order_relaxed);
    uint64_t cut = 0;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    if (max_events > 0 && snap >= first && snap - first + 1 > max_events)
        cut = snap - max_events + 1;
    if (max_age > 0) {
        int64_t now = fdn_clock_mono_ns(es->clock);
        uint64_t c = fdn__evs_id_at_time(es, now - max_age, snap);
        cut = FDN_MAX(cut, c);
    }
    fdn__rwlock_rdunlock(&es->plock);
    /* the memory tier evicts; on a write-behind backend (SQLite) only what the writer has
     * committed, so every evicted event is in the file (a shared backend committed first) */
    if (es->durable_path != NULL && es->sh == NULL)
        cut = FDN_MIN(cut, atomic_load_explicit(&es->persisted, memory_order_acquire) + 1);
    if (cut <= first)
        return 0;
    uint64_t n = fdn__evs_prune_ids(es, cut);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = n > 0 ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm != NULL) {
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_pruned", n, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    return n;
}

bool fdn__events_on_own_thread(const fdn_events_t *es)
{
    return es != NULL && (writer_of == es || pruner_of == es || fdn__evs_on_delivery_thread(es) ||
                          (es->sh != NULL && fdn__evs_shared_on_thread(es)));
}

static void *pruner_main(void *arg)
{
    fdn_events_t *es = arg;
    pruner_of = es;
    uint64_t kick = fdn_clock_kick_seq(es->clock);
    int64_t last = es->prune_base;
    while (!atomic_load_explicit(&es->pstop, memory_order_acquire)) {
        int64_t iv = atomic_load_explicit(&es->prune_interval_ns, memory_order_relaxed);
        int64_t now = fdn_clock_mono_ns(es->clock);
        int64_t deadline = iv > 0 ? (last > INT64_MAX - iv ? INT64_MAX : last + iv) : INT64_MAX;
        if (iv > 0 && now >= deadline) {
            fdn__evs_retention_memory(es);
            fdn__evs_durable_retention(es);
            last = now;
            fdn__mutex_lock(&es->rmu);
            es->prune_runs++;
            pthread_cond_broadcast(&es->rcv);
            fdn__mutex_unlock(&es->rmu);
            continue;
        }
        fdn_clock_wait_until(es->clock, deadline, &kick);
    }
    return NULL;
}

void fdn__events_wait_prune_runs(fdn_events_t *es, uint64_t n)
{
    fdn__mutex_lock(&es->rmu);
    while (es->prune_runs < n)
        pthread_cond_wait(&es->rcv, &es->rmu);
    fdn__mutex_unlock(&es->rmu);
}

int fdn_events_enforce_retention(fdn_events_t *es, uint64_t *out_count)
{
    if (es == NULL)
        return FDN_EINVAL;
    if (!atomic_load_explicit(&es->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    uint64_t n = fdn__evs_retention_memory(es);
    fdn__evs_durable_retention(es);
    if (out_count)
        *out_count = n;
    return 0;
}

int fdn_events_set_max_events(fdn_events_t *es, uint64_t max_events)
{
    if (es == NULL)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_events, max_events, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

int fdn__events_set_telemetry(fdn_events_t *es, fdn_telemetry_t *tm)
{
    if (es == NULL)
        return FDN_EINVAL;
    int rc = fdn__gate_change_begin(&es->tm_gate);
    if (rc != 0)
        return rc; /* from a handler of one of this store's reports, on this thread */
    atomic_store_explicit(&es->tm, tm, memory_order_release);
    atomic_fetch_add_explicit(&es->tm_gen, 1, memory_order_release);
    /* every report that may have read the old telemetry has finished (handlers included) */
    fdn__gate_change_end(&es->tm_gate);
    /* the per-type counters are the old telemetry's until an append (under amu) sees the new
     * generation: one that read the old one is done once amu is free */
    fdn__mutex_lock(&es->amu);
    fdn__mutex_unlock(&es->amu);
    if (es->sh != NULL)
        fdn__evs_shared_tm_changed(es);
    return 0;
}

int fdn_events_set_max_age(fdn_events_t *es, int64_t max_age_ns)
{
    if (es == NULL || fdn__events_check_ns(max_age_ns) != 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_age_ns, max_age_ns, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

int fdn_events_set_prune_interval(fdn_events_t *es, int64_t interval_ns)
{
    if (es == NULL || fdn__events_check_ns(interval_ns) != 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->prune_interval_ns, interval_ns, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

/* ---------------------------------------------------------------- lifecycle ---- */

typedef struct load_ctx {
    fdn_events_t *es;
    int64_t min_ts; /* the memory tier's max_age: the oldest events older than it stay in the
                       file only (a prefix of ids: load_cb) */
    int64_t now_mono, now_wall;
    int64_t epoch; /* the clock's wall time at monotonic 0 (now_wall - now_mono) */
} load_ctx_t;

/* Was the event stamped by the clock of now? A clock's epoch (wall time at monotonic 0) is
 * fixed for a boot, moving only with wall-clock adjustments (1 s tolerated). After a reboot,
 * or under another clock, it differs — also when the new clock has already run longer than
 * the old one did, which a "timestamp in the future" test would miss. Checked per record,
 * because a file holds records of several boots. */
static bool same_clock(const load_ctx_t *lc, const fdn_event_t *ev)
{
    int64_t epoch, d;
    if (__builtin_sub_overflow(ev->wall, ev->ts, &epoch) ||
        __builtin_sub_overflow(epoch, lc->epoch, &d))
        return false;
    return d >= -1000000000 && d <= 1000000000;
}

/* Runs while the store is created, before any other thread can see it: it appends without
 * amu, which the analysis cannot know from a callback. */
static int load_cb(fdn_event_t *ev, void *user) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    load_ctx_t *lc = user;
    fdn_events_t *es = lc->es;
    if (!same_clock(lc, ev)) {
        /* the event is ours (freshly decoded): give it the monotonic time that is as far
         * before now as its wall time is before the wall clock now */
        int64_t age;
        if (__builtin_sub_overflow(lc->now_wall, ev->wall, &age)) /* caller-chosen wall time */
            age = ev->wall < 0 ? INT64_MAX : INT64_MIN;
        if (age <= 0)
            ev->ts = lc->now_mono;
        else if (__builtin_sub_overflow(lc->now_mono, age, &ev->ts))
            ev->ts = INT64_MIN;
    }
    /* The memory tier's age limit cuts a prefix of ids, as its retention does on a running
     * store: memory holds every id from its first one on (reads go to the file only below
     * first_id). Timestamps rebuilt from wall time (another boot's, or a caller's wall_ns) are
     * not in id order, so an event past the age is dropped only while none is kept yet; from
     * the first one within it on every event is kept, an earlier timestamp raised to the
     * newest by the append, as for any store. (Dropping each old one left a hole in memory
     * above first_id that no read looked for in the file.) */
    if (ev->ts < lc->min_ts && atomic_load_explicit(&es->count, memory_order_relaxed) == 0) {
        fdn_event_free(ev);
        return 0;
    }
    if (ev->id >= es->next_id) /* keep the stored id (rows are in id order) */
        es->next_id = ev->id;
    if (atomic_load_explicit(&es->count, memory_order_relaxed) == 0)
        atomic_store_explicit(&es->first_id, es->next_id, memory_order_release);
    const fdn_event_t *one = ev;
    int rc = fdn__evs_append_locked(es, &one, 1, NULL);
    fdn_event_free(ev);
    return rc;
}

/* A restart (the file reopened, the memory tier kept): what the file holds past `persisted`.
 * A failed commit's outcome is unknown: SQLite can report an error for a COMMIT whose frames,
 * its commit marker included, reached the WAL (an fsync that failed after the writes), and the
 * file recovers that transaction when it is opened again. Its rows are the memory tier's
 * events under the same ids (the writer is the file's only writer of rows, and encodes them
 * from memory), so they are committed: persisted moves up to the file's newest id and the new
 * writer starts after it. (It inserted them again: a primary key conflict, latched as FDN_EIO
 * at every restart.) Callers asleep on a commit are woken: their events may be among them. A
 * newest id past every id this store gave (published) was written by someone else: the start
 * is refused (FDN_ECORRUPT), never an id given twice. The writer is not running. */
static int persisted_from_file(fdn_events_t *es, fdn_error_t *err)
{
    fdn__evb_stats_t st = {0};
    int rc = es->be.ops->stats != NULL ? es->be.ops->stats(es->be.state, &st, err) : 0;
    if (rc != 0 || st.count == 0)
        return rc;
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
    if (st.newest > pub)
        return fdn_err_set(err, FDN_ECORRUPT,
                           "event store file: it holds id %llu, past the newest this store gave "
                           "(%llu): another writer?",
                           (unsigned long long)st.newest, (unsigned long long)pub);
    fdn__mutex_lock(&es->wmu);
    if (st.newest > atomic_load_explicit(&es->persisted, memory_order_relaxed)) {
        atomic_store_explicit(&es->persisted, st.newest, memory_order_release);
        pthread_cond_broadcast(&es->wdone);
        atomic_fetch_add(&es->commit_seq, 1); /* seq_cst, as commit_once */
        if (atomic_load(&es->commit_sleepers) != 0)
            fdn__word_wake_bits(&es->commit_seq, FDN__WORD_ALL_BITS);
    }
    fdn__mutex_unlock(&es->wmu);
    return 0;
}

static int db_open_load(fdn_events_t *es, bool load, fdn_error_t *err)
{
    fdn__evb_t be = {NULL, NULL};
    int rc = fdn__evb_sqlite_open(&be, es->durable_path, es->mode == FDN_EVENTS_DURABLE,
                                  es->compress, err);
    if (rc != 0)
        return rc;
    fdn__mutex_lock(&es->dmu); /* a late reader of the file (event_disk.c) may look at it */
    es->be = be;
    fdn__mutex_unlock(&es->dmu);
    if (!load) {
        rc = persisted_from_file(es, err);
        if (rc != 0) {
            fdn__mutex_lock(&es->dmu);
            fdn__evb_close(&es->be);
            fdn__mutex_unlock(&es->dmu);
        }
        return rc;
    }
    uint64_t next = 1;
    load_ctx_t lc = {.es = es,
                     .now_mono = fdn_clock_mono_ns(es->clock),
                     .now_wall = fdn_clock_wall_ns(es->clock)};
    if (__builtin_sub_overflow(lc.now_wall, lc.now_mono, &lc.epoch))
        lc.epoch = lc.now_mono < 0 ? INT64_MAX : INT64_MIN;
    /* the memory tier is filled up to its limits, not with the whole file */
    int64_t max_age = atomic_load_explicit(&es->max_age_ns, memory_order_relaxed);
    uint64_t keep = atomic_load_explicit(&es->max_events, memory_order_relaxed);
    lc.min_ts =
        max_age > 0 && lc.now_mono > INT64_MIN + max_age ? lc.now_mono - max_age : INT64_MIN;
    fdn__mutex_lock(&es->amu);
    if (es->be.ops->load_newest != NULL)
        rc = es->be.ops->load_newest(es->be.state, keep, load_cb, &lc, &next, err);
    else
        rc = es->be.ops->load(es->be.state, load_cb, &lc, &next, err);
    if (rc == 0) {
        if (next > es->next_id)
            es->next_id = next;
        if (atomic_load_explicit(&es->count, memory_order_relaxed) == 0)
            atomic_store_explicit(&es->first_id, es->next_id, memory_order_release);
        atomic_store_explicit(&es->published, es->next_id - 1, memory_order_release);
        atomic_store_explicit(&es->persisted, es->next_id - 1, memory_order_release);
        atomic_store_explicit(&es->stored_total, 0, memory_order_relaxed);
    }
    fdn__mutex_unlock(&es->amu);
    fdn__evb_stats_t st = {0};
    if (rc == 0 && es->be.ops->stats != NULL &&
        (rc = es->be.ops->stats(es->be.state, &st, err)) == 0)
        atomic_store_explicit(&es->disk_first, st.count > 0 ? st.oldest : es->next_id,
                              memory_order_release);
    if (rc != 0) {
        fdn__mutex_lock(&es->dmu);
        fdn__evb_close(&es->be);
        fdn__mutex_unlock(&es->dmu);
    }
    return rc;
}

static int start_threads(fdn_events_t *es)
{
    if (es->sh != NULL) {
        int rc = fdn__evs_shared_start(es);
        if (rc != 0)
            return rc;
    } else if (fdn__evb_open(&es->be) && !es->writer_on) {
        es->wstop = false;
        atomic_store_explicit(&es->io_error, 0, memory_order_relaxed);
        if (pthread_create(&es->writer, NULL, writer_main, es) != 0)
            return FDN_EAGAIN;
        es->writer_on = true;
    }
    if (!es->pruner_on) {
        atomic_store_explicit(&es->pstop, false, memory_order_relaxed);
        es->prune_base = fdn_clock_mono_ns(es->clock);
        if (pthread_create(&es->pruner, NULL, pruner_main, es) != 0)
            return FDN_EAGAIN;
        es->pruner_on = true;
    }
    if (atomic_load_explicit(&es->nsubs, memory_order_acquire) > 0)
        return fdn__evs_deliverer_start(es);
    return 0;
}

static void stop_threads(fdn_events_t *es)
{
    if (es->pruner_on) {
        atomic_store_explicit(&es->pstop, true, memory_order_release);
        fdn_clock_kick(es->clock);
        pthread_join(es->pruner, NULL);
        es->pruner_on = false;
    }
    if (es->writer_on) {
        fdn__mutex_lock(&es->wmu);
        es->wstop = true;
        pthread_cond_broadcast(&es->wcv);
        fdn__mutex_unlock(&es->wmu);
        pthread_join(es->writer, NULL);
        es->writer_on = false;
        /* the writer drained every commit it could; what still waits cannot be committed */
        fdn__mutex_lock(&es->wmu);
        uint32_t nleft = 0;
        evs_async_t *left = async_take(es, UINT64_MAX, &nleft);
        fdn__mutex_unlock(&es->wmu);
        async_run(es, left, FDN_EUNAVAILABLE);
    }
    fdn__evs_deliverer_stop(es);
    if (es->sh != NULL) {
        fdn__evs_shared_stop(es); /* the shared backend stays open until destroy */
    } else {
        fdn__mutex_lock(&es->dmu); /* no read of the file is under way */
        fdn__evb_close(&es->be);
        fdn__mutex_unlock(&es->dmu);
    }
}

static void service_stop(void *state);

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_events_t *es = state;
    (void)ctx;
    if (es == NULL)
        return fdn_err_set(err, FDN_EINVAL, "events: no store to start");
    if (atomic_load_explicit(&es->running, memory_order_acquire))
        return 0;
    int rc = 0;
    if (es->durable_path != NULL && !fdn__evb_open(&es->be))
        rc = db_open_load(es, false, err); /* its message says why the file was refused */
    if (rc == 0 && (rc = start_threads(es)) != 0)
        fdn_err_set(err, rc, "events: cannot start the store's threads");
    if (rc != 0) {
        stop_threads(es);
        return rc;
    }
    fdn__mutex_lock(&es->amu);
    /* one append of the whole buffer: every store_batch in it stays whole (all or nothing;
     * the writer never splits a batch between commits), the ids are those given */
    size_t done = es->nbuf, buffered = done;
    if (done > 0)
        rc = fdn__evs_append_locked(es, (const fdn_event_t *const *)es->buf, done, NULL);
    if (rc != 0)
        done = 0; /* nothing appended: the buffer is kept for the next start */
    for (size_t i = 0; i < done; i++)
        fdn_event_free(es->buf[i]);
    es->nbuf -= done;
    if (rc == 0)
        atomic_store_explicit(&es->running, 1, memory_order_release);
    fdn__mutex_unlock(&es->amu);
    if (rc != 0) {
        stop_threads(es);
        return fdn_err_set(
            err, rc, "events: cannot replay the %zu events stored while it was stopped", buffered);
    }
    if (done > 0)
        rc = fdn__evs_after_append(es, atomic_load_explicit(&es->published, memory_order_acquire));
    if (rc != 0) {
        fdn_err_set(err, rc, "events: the %zu events stored while it was stopped did not commit",
                    done);
        /* the replay's commit failed (FDN_EIO, latched by the writer): a failed start leaves
         * the store stopped, as it found it, so the next start starts it again (it answered
         * "already running" with a writer that had given up). The replayed events stay in
         * the memory tier with their ids, not persisted, as a failed store leaves its
         * events: the next start's writer commits them. */
        service_stop(es);
    }
    return rc;
}

static void service_stop(void *state)
{
    fdn_events_t *es = state;
    if (es == NULL)
        return;
    fdn__mutex_lock(&es->amu);
    atomic_store_explicit(&es->running, 0, memory_order_release);
    fdn__mutex_unlock(&es->amu);
    stop_threads(es);
}

static int service_health(void *state)
{
    fdn_events_t *es = state;
    if (es == NULL)
        return FDN_EINVAL;
    if (!atomic_load_explicit(&es->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    return atomic_load_explicit(&es->io_error, memory_order_acquire);
}

int fdn_events_create(fdn_events_t **out, const fdn_events_opts_t *opts, fdn_error_t *err)
{
    fdn_events_opts_t def = FDN_EVENTS_OPTS_INIT;
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "events: out is NULL");
    const fdn_events_opts_t *o = opts ? opts : &def;
    if (o->version < 1 || o->version > FDN_EVENTS_OPTS_VERSION ||
        (o->version >= 2 && o->backend != FDN_EVENTS_BACKEND_SQLITE &&
         o->backend != FDN_EVENTS_BACKEND_POSTGRES) ||
        (o->mode != FDN_EVENTS_DURABLE && o->mode != FDN_EVENTS_FAST) || o->max_age_ns < 0 ||
        o->prune_interval_ns < 0)
        return fdn_err_set(err, FDN_EINVAL, "events: invalid options");
    fdn_events_t *es = fdn__calloc(1, sizeof(*es));
    if (es == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
    es->clock = o->clock ? o->clock : fdn_clock_system();
    atomic_init(&es->tm, o->telemetry);
    atomic_init(&es->tm_gen, 1);
    fdn__gate_init(&es->tm_gate);
    es->mode = o->mode;
    es->compress = o->compress;
    es->fast_queue_max = o->fast_queue_max ? o->fast_queue_max : 65536;
    es->buffer_max = o->unavailable_buffer;
    es->sub_max_backlog = o->sub_max_backlog ? o->sub_max_backlog : 65536;
    es->created_ns = fdn_clock_mono_ns(es->clock);
    atomic_init(&es->max_results, o->max_results ? o->max_results : 1000);
    atomic_init(&es->max_events, o->max_events);
    atomic_init(&es->max_age_ns, o->max_age_ns);
    atomic_init(&es->prune_interval_ns, o->prune_interval_ns);
    atomic_init(&es->running, 0);
    atomic_init(&es->io_error, 0);
    atomic_init(&es->busy_seq, 0);
    atomic_init(&es->busy_to, 0);
    atomic_init(&es->persisted, 0);
    atomic_init(&es->commit_seq, 0);
    atomic_init(&es->commit_sleepers, 0);
    atomic_init(&es->commit_cover, 0);
    atomic_init(&es->dwaiting, false);
    atomic_init(&es->writer_idle, false);
    atomic_init(&es->writer_want, 0);
    atomic_init(&es->aq_events, 0);
    es->aq_tail = &es->aq_head;
    atomic_init(&es->nsubs, 0);
    atomic_init(&es->dmark, 0);
    atomic_init(&es->sub_all, 0);
    es->sub_gen = 1; /* a new type entry (sub_gen 0) resolves its sub_hit first */
    atomic_init(&es->pstop, false);
    atomic_init(&es->disk_first, 0);
    atomic_init(&es->warm_max_events, 0);
    atomic_init(&es->warm_max_age_ns, 0);
    atomic_init(&es->durable_pruned_total, 0);
    pthread_mutex_init(&es->dmu, NULL);
    pthread_mutex_init(&es->cmu, NULL);
    atomic_init(&es->disk_reads, 0);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&es->plock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&es->amu, NULL);
    pthread_mutex_init(&es->wmu, NULL);
    /* timed waits (the writer's group-commit deadline, the subscription side's retries of a
     * backend that was away) are on CLOCK_MONOTONIC (core/sync.h) */
    (void)fdn__cond_init_mono(&es->wcv);
    pthread_cond_init(&es->wdone, NULL);
    pthread_mutex_init(&es->rmu, NULL);
    pthread_cond_init(&es->rcv, NULL);
    pthread_mutex_init(&es->smu, NULL);
    (void)fdn__cond_init_mono(&es->scv);
    (void)fdn__cond_init_mono(&es->sdone);
    int rc = fdn__evs_init(es);
    if (rc != 0) {
        fdn__free(es);
        return fdn_err_set(err, rc, "events: out of memory");
    }
    if (es->buffer_max > 0) {
        es->buf = fdn__calloc(es->buffer_max, sizeof(fdn_event_t *));
        if (es->buf == NULL) {
            fdn_events_destroy(es);
            return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
        }
    }
    if (o->version >= 2 && o->backend == FDN_EVENTS_BACKEND_POSTGRES) {
        rc = fdn__evs_shared_open(es, o, err);
        if (rc != 0) {
            fdn_events_destroy(es);
            return rc;
        }
    } else if (o->durable_path != NULL) {
        es->durable_path = fdn__strdup(o->durable_path);
        if (es->durable_path == NULL) {
            fdn_events_destroy(es);
            return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
        }
        rc = db_open_load(es, true, err);
        if (rc != 0) {
            fdn_events_destroy(es);
            return rc;
        }
    }
    rc = fdn__events_service_ops.start(es, NULL, err);
    if (rc != 0) {
        fdn_events_destroy(es);
        return rc;
    }
    *out = es;
    return 0;
}

void fdn_events_destroy(fdn_events_t *es)
{
    if (es == NULL)
        return;
    fdn__events_service_stop(es);
    fdn__evs_subs_free_all(es);
    for (size_t i = 0; i < es->nbuf; i++)
        fdn_event_free(es->buf[i]);
    fdn__free(es->buf);
    fdn__evs_shared_free(es);
    fdn__evs_fini(es);
    pthread_rwlock_destroy(&es->plock);
    pthread_mutex_destroy(&es->amu);
    pthread_mutex_destroy(&es->wmu);
    pthread_cond_destroy(&es->wcv);
    pthread_cond_destroy(&es->wdone);
    pthread_mutex_destroy(&es->rmu);
    pthread_mutex_destroy(&es->dmu);
    fdn__evs_corr_memo_free(es);
    pthread_mutex_destroy(&es->cmu);
    pthread_cond_destroy(&es->rcv);
    pthread_mutex_destroy(&es->smu);
    pthread_cond_destroy(&es->scv);
    pthread_cond_destroy(&es->sdone);
    fdn__free(es->durable_path);
    fdn__free(es);
}

static void service_destroy(void *state)
{
    fdn_events_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__events_service_ops = {service_start, service_stop, service_health,
                                                   NULL, service_destroy};
