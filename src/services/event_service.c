/*
 * DESIGN: the event store as a service: lifecycle, the durable writer, retention and
 * subscriptions, and the replay of the stores buffered while stopped (the memory tier and
 * the public store entry points are in event_store.c, the intern tables in event_intern.c,
 * the query engine in event_query.c).
 *
 * Threads, all started by create/start and joined by stop/destroy:
 *  - writer (durable_path only): waits on wcv for published > persisted, copies the
 *    unpersisted events out of memory (plock read), writes them through the durable
 *    backend's table (storage/event_backend.h; SQLite: one transaction)
 *    (group commit of about 8192 events, extended to the end of a store_batch so a batch
 *    is never split between commits; after a commit that released 8 or more waiting
 *    callers it first gathers the next batch for a bounded time, see writer_linger) and
 *    broadcasts wdone. In durable mode a store call waits on
 * wdone until persisted >= its last id; in fast mode it returns at once unless more than
 *    fast_queue_max events wait (then it waits: bounded queue). An explicit prune
 *    (fdn_events_prune_before) is applied to the file in the next transaction. An I/O
 *    error is latched in io_error (health reports it, waiting callers get FDN_EIO) and the
 *    writer stops writing until restarted.
 *    Asynchronous stores (fdn_events_store_async) are queued in id order under amu+wmu with
 *    the id they wait for; after each commit the writer detaches the acknowledged prefix
 *    (all of the queue on an error) and runs their callbacks with no lock held. Stop runs
 *    the callbacks still queued after the writer's final drain with FDN_EUNAVAILABLE.
 *  - retention: waits on the injected clock (fdn_clock_wait_until) for prune_interval and
 *    applies the memory tier's max_events / max_age (evicting from memory only, and on SQLite
 *    only committed events: the file keeps them), then the durable tier's own retention
 *    (event_disk.c); setters kick the clock to re-arm it.
 *  - delivery (started with the first subscription): waits on scv for new events some
 *    subscription matches (dmark; any new event while one without a filter exists), then
 *    for each subscriber with events of its filter waiting copies the next ones out (plock
 *    read, no lock held afterwards) and runs the callback with no store lock held; fd
 *    subscribers get an eventfd write instead. The append path marks the subscriptions each
 *    batch matches (see "Subscriptions and the append path" below), so a filtered
 *    subscription costs nothing for other events. Writers only signal scv when a
 *    subscription is concerned and the thread waits (dwaiting, announced before its last
 *    look at dmark and published).
 * Lock order: plock -> amu -> wmu; smu, rmu are leaves (never held while taking another,
 * except that the delivery thread takes plock (read) with no other lock held). Subscribe and
 * unsubscribe take amu (the append path's set of subscriptions) and smu one after the
 * other, never both.
 *  - with a shared backend (PostgreSQL), the writer and a follower of event_shared.c run
 *    instead of the writer above: ids come from the backend (see event_shared.c).
 * Stop sets running = 0 under amu, so no append starts afterwards; then it joins the
 * threads (the writer first drains everything published). Stores while stopped either fail
 * with FDN_EUNAVAILABLE or go to a bounded buffer with pre-assigned ids, replayed on start.
 */
#include <fdn/events.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/sync.h"
#include "core/tsan.h"
#include "services/event_store_int.h"

struct fdn_events_sub {
    fdn_events_t *es;
    evs_sub_t *next;  /* smu: es->subs */
    evs_sub_t *fnext; /* amu: es->fsubs (filtered subscriptions) */
    fdn_events_sub_cb cb;
    void *user;
    int efd;
    _Atomic uint64_t cursor; /* last id examined */
    char **types;            /* type filter: any of these (ntypes 0: any type) */
    size_t *tlens;
    size_t ntypes;
    char *corr;
    size_t corr_len;
    bool filtered;   /* a type or correlation filter */
    bool registered; /* amu: in the append path's set (sub_register) */
    /* Written by the append path (amu), for filtered subscriptions: mark is the last id of
     * the newest batch holding an event the subscription matches (at first the published id
     * when it registered); since is a matching event appended when the subscription had
     * examined every earlier one (0: none): no event of its filter lies between its cursor
     * and since. Read by the cursor's owner and the delivery thread. */
    _Atomic uint64_t mark;
    _Atomic uint64_t since;
    uint64_t poked; /* smu: the id an fd subscriber's descriptor was last made readable for */
    _Atomic uint64_t overflow;
    uint64_t pending_skip; /* delivery thread (callback subscriptions) */
    bool from_pos;         /* from_position: never skip for backlog; catch up from the backend */
    uint64_t round;        /* smu: delivery round this subscriber was last served in */
    bool paging;           /* smu: its pager thread catches it up (the delivery thread skips it) */
    _Atomic bool pstop;    /* its pager must stop (unsubscribe, destroy) */
};

/* Most types one subscription may name (fdn_events_sub_opts_t.types). */
#define SUB_MAX_TYPES 64

/* The cursor is written by one thread (delivery thread or the fd reader) and read by the
 * delivery thread: relaxed atomics are enough (no data is published through it). */
#define CUR(s)        atomic_load_explicit(&(s)->cursor, memory_order_relaxed)
#define SET_CUR(s, v) atomic_store_explicit(&(s)->cursor, (v), memory_order_relaxed)

/* ------------------------------------------------------------------- prune ---- */

int fdn_events_prune_before(fdn_events_t *es, int64_t ts, uint64_t *out_count)
{
    if (es == NULL)
        return FDN_EINVAL;
    if (!fdn__evs_running(es))
        return FDN_EUNAVAILABLE;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t cut = fdn__evs_id_at_time(es, ts, snap);
    fdn__rwlock_rdunlock(&es->plock);
    uint64_t n = fdn__evs_prune_ids(es, cut, true);
    fdn_telemetry_t *tm = atomic_load_explicit(&es->tm, memory_order_acquire);
    if (tm != NULL && n > 0)
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_pruned", n, NULL, 0);
    if (out_count)
        *out_count = n;
    return 0;
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

int fdn__evs_async_queue(fdn_events_t *es, evs_async_t *w, uint64_t last_id)
{
    if (es->durable_path == NULL)
        return 0;
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
    int rc = atomic_load_explicit(&es->io_error, memory_order_acquire);
    if (rc == 0 && atomic_load_explicit(&es->persisted, memory_order_acquire) < need) {
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
 * next one: as PostgreSQL's commit_delay with commit_siblings. The callers counted are the
 * synchronous ones asleep on the commit word and the asynchronous stores the commit
 * acknowledges (fdn_events_store_async: e.g. HTTP requests, whose clients send their next
 * event once answered; with 32 of them in flight the writer used to start each commit with
 * the ~10 that were quick, every commit released a few). An append below the size the writer
 * waits for does not wake it. An idle or lightly used store (fewer callers per commit) never
 * waits; every commit is still fsynced before its callers are acknowledged. */
#define LINGER_MIN    8u
#define LINGER_MAX_NS 2000000

/* Wait (wmu held) until published reaches want, the deadline passes, or the writer must
 * stop or delete. */
static void writer_linger(fdn_events_t *es, uint64_t want, int64_t wait_ns) FDN_REQUIRES(es->wmu)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ns / 1000000000;
    dl.tv_nsec += wait_ns % 1000000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    atomic_store(&es->writer_want, want);
    atomic_store(&es->writer_idle, true); /* seq_cst, as in writer_main's idle wait */
    while (!es->wstop && es->wdelete == 0 && atomic_load(&es->published) < want &&
           atomic_load_explicit(&es->io_error, memory_order_relaxed) == 0)
        if (pthread_cond_timedwait(&es->wcv, &es->wmu, &dl) == ETIMEDOUT)
            break;
    atomic_store_explicit(&es->writer_idle, false, memory_order_relaxed);
    atomic_store(&es->writer_want, 0);
}

static void *writer_main(void *arg)
{
    fdn_events_t *es = arg;
    fdn_error_t err;
    uint64_t linger_want = 0; /* gather the next commit up to this id (0: no) */
    int64_t linger_ns = 0;
    fdn__mutex_lock(&es->wmu);
    for (;;) {
        if (linger_want != 0) {
            writer_linger(es, linger_want, linger_ns);
            linger_want = 0;
        }
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        uint64_t done = atomic_load_explicit(&es->persisted, memory_order_relaxed);
        bool failed = atomic_load_explicit(&es->io_error, memory_order_relaxed) != 0;
        if (failed || (pub <= done && es->wdelete == 0)) {
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
        uint64_t del = es->wdelete;
        es->wdelete = 0;
        uint64_t to = pub > done ? FDN_MIN(pub, done + 8192) : done;
        fdn__mutex_unlock(&es->wmu);
        if (to > done)
            to = fdn__evs_batch_end(es, to); /* never split a store_batch across commits */
        fdn_event_list_t *l = NULL;
        int rc = 0;
        if (to > done)
            rc = fdn__evs_copy_range(es, done + 1, to, &l);
        /* a prune that finished before the copy made it skip ids: its cut must go into this
         * transaction too, or the file would hold the pruned prefix next to a hole until the
         * next commit (a crash there reloads pruned events and a gap that breaks the
         * time-order binary searches) */
        fdn__mutex_lock(&es->wmu);
        if (es->wdelete > del)
            del = es->wdelete;
        es->wdelete = 0;
        fdn__mutex_unlock(&es->wmu);
        int64_t t0 = fdn_clock_mono_ns(NULL);
        if (rc == 0) {
            fdn__evb_batch_t b = {.evs = (const fdn_event_t *const *)(l ? l->items : NULL),
                                  .n = l ? l->n : 0,
                                  .prune_below = del,
                                  .next_id = to + 1};
            rc = es->be.ops->append(es->be.state, &b, &err);
        }
        fdn_event_list_free(l);
        int64_t took = fdn_clock_mono_ns(NULL) - t0;
        fdn_telemetry_t *tm = atomic_load_explicit(&es->tm, memory_order_acquire);
        if (rc == 0 && tm != NULL) {
            /* the durable commit (one transaction, fsynced), timed: exported as the
             * histogram fdn_event_store_commit_duration_seconds */
            fdn_telemetry_measure_t m = {"duration", (double)took};
            (void)fdn_telemetry_execute(tm, "foundation.event_store.commit", &m, 1, NULL, 0);
        }
        if (rc != 0 && tm != NULL)
            fdn_telemetry_emit_counter(tm, "foundation.event_store.writer_errors", NULL, 0);
        fdn__mutex_lock(&es->wmu);
        int latched = rc == FDN_ENOMEM ? FDN_ENOMEM : FDN_EIO;
        if (rc != 0) {
            atomic_store_explicit(&es->io_error, latched, memory_order_release);
            if (del > es->wdelete)
                es->wdelete = del;
        } else {
            atomic_store_explicit(&es->persisted, to, memory_order_release);
        }
        pthread_cond_broadcast(&es->wdone);
        /* seq_cst pair with the sleepers' count (fdn__evs_after_append): a caller counted
         * after this load sees the new word and does not sleep */
        atomic_fetch_add(&es->commit_seq, 1);
        uint32_t sleepers = atomic_load(&es->commit_sleepers);
        if (sleepers != 0)
            fdn__word_wake_all(&es->commit_seq);
        /* the durability ack of asynchronous stores: every one covered by this commit (all of
         * them on a failure), their callbacks run here with no lock held */
        uint32_t nacked = 0;
        evs_async_t *acked = async_take(es, rc == 0 ? to : UINT64_MAX, &nacked);
        /* the callers this commit releases, synchronous (asleep on the commit word) and
         * asynchronous (acknowledged by a callback, e.g. HTTP requests: their clients send
         * the next event once answered) */
        if (rc == 0 && es->mode == FDN_EVENTS_DURABLE && to - done >= LINGER_MIN &&
            sleepers + nacked >= LINGER_MIN && took > 0) {
            linger_want = to + (to - done) * 3 / 4;
            linger_ns = FDN_MIN(took, (int64_t)LINGER_MAX_NS);
        }
        if (acked != NULL) {
            fdn__mutex_unlock(&es->wmu);
            async_run(es, acked, rc == 0 ? 0 : latched);
            fdn__mutex_lock(&es->wmu);
        }
    }
    fdn__mutex_unlock(&es->wmu);
    return NULL;
}

int fdn__evs_after_append(fdn_events_t *es, uint64_t last_id)
{
    int rc = 0;
    /* durable_path is immutable; the writer runs whenever appends can happen (it is started
     * before running is set and joined after it is cleared, after draining) */
    if (es->durable_path != NULL) {
        /* published was stored before (store_batch); the fence orders it before reading the
         * writer's flag, which the writer sets before reading published (see writer_main) */
        fdn__full_fence();
        /* acquire: a writer_want older than the flag read is never seen (a stale, higher
         * want would skip the signal of a writer that now waits for any event) */
        if (atomic_load_explicit(&es->writer_idle, memory_order_acquire) &&
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
                rc = atomic_load_explicit(&es->io_error, memory_order_acquire);
                if (rc != 0)
                    break;
                atomic_fetch_add(&es->commit_sleepers, 1);
                fdn__word_wait(&es->commit_seq, seen);
                atomic_fetch_sub(&es->commit_sleepers, 1);
            }
        } else {
            fdn__mutex_lock(&es->wmu);
            while (last_id > atomic_load_explicit(&es->persisted, memory_order_acquire) +
                                 es->fast_queue_max &&
                   atomic_load_explicit(&es->io_error, memory_order_acquire) == 0)
                pthread_cond_wait(&es->wdone, &es->wmu);
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
    uint64_t n = fdn__evs_prune_ids(es, cut, false);
    fdn_telemetry_t *tm = atomic_load_explicit(&es->tm, memory_order_acquire);
    if (tm != NULL && n > 0)
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_pruned", n, NULL, 0);
    return n;
}

static void *pruner_main(void *arg)
{
    fdn_events_t *es = arg;
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

void fdn__events_set_telemetry(fdn_events_t *es, fdn_telemetry_t *tm)
{
    if (es != NULL) {
        atomic_store_explicit(&es->tm, tm, memory_order_release);
        atomic_fetch_add_explicit(&es->tm_gen, 1, memory_order_release);
    }
}

int fdn_events_set_max_age(fdn_events_t *es, int64_t max_age_ns)
{
    if (es == NULL || max_age_ns < 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_age_ns, max_age_ns, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

int fdn_events_set_prune_interval(fdn_events_t *es, int64_t interval_ns)
{
    if (es == NULL || interval_ns < 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->prune_interval_ns, interval_ns, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

/* ------------------------------------------------------------ subscriptions ---- */

/* Subscriptions and the append path. A subscription costs nothing for the events its filter
 * does not match. Each subscription is registered with the append path (sub_register,
 * under amu); for each batch, append_locked (event_store.c) finds the filtered
 * subscriptions it concerns: a type entry caches, per subscription set (sub_gen), whether
 * some type filter names it (sub_hit), so an event of another type costs one compare; a
 * correlation filter without a type one is compared per event that has a correlation id.
 * A matching subscription gets its mark (and, when it had examined everything before, its
 * since) set before published; the batch sets dmark after it, and only such a batch signals
 * the delivery thread (fdn__evs_notify_subs), unless a subscription without a filter exists
 * (then every batch does, and the thread watches published too, as before filters cost
 * nothing). The delivery thread serves a filtered subscriber only when its mark is past its
 * cursor (unfiltered ones: when published is), and makes an fd subscriber's descriptor
 * readable only then.
 * Skips count only events a subscriber would have received: a subscriber with nothing of
 * its filter after its cursor moves it to published without counting (sub_fetch), one with
 * waiting events first moves to just before since (nothing of its filter lies between), and
 * the backlog is counted in its own events (sub_count: the type's posting lists, or the
 * correlation's chain), so a skip steps over its oldest waiting events only. */

static bool sub_type_in(const evs_sub_t *s, const char *name, size_t len)
{
    if (s->ntypes == 0)
        return true;
    for (size_t i = 0; i < s->ntypes; i++)
        if (s->tlens[i] == len && memcmp(s->types[i], name, len) == 0)
            return true;
    return false;
}

void fdn__evs_sub_type_hit(fdn_events_t *es, evs_sym_t *t)
{
    bool hit = false;
    for (evs_sub_t *s = es->fsubs; s != NULL && !hit; s = s->fnext)
        hit = s->ntypes > 0 && sub_type_in(s, t->name, t->len);
    t->sub_hit = hit;
    t->sub_gen = es->sub_gen;
}

bool fdn__evs_sub_match(fdn_events_t *es, const evs_sym_t *t, const evs_corr_t *c, uint64_t id,
                        uint64_t last)
{
    bool any = false;
    for (evs_sub_t *s = es->fsubs; s != NULL; s = s->fnext) {
        if (!sub_type_in(s, t->name, t->len))
            continue;
        if (s->corr != NULL &&
            (c == NULL || c->len != s->corr_len || memcmp(c->name, s->corr, s->corr_len) != 0))
            continue;
        any = true;
        uint64_t m = atomic_load_explicit(&s->mark, memory_order_relaxed);
        if (m >= last)
            continue; /* an earlier event of this batch matched already */
        /* every matching event up to m is examined (the cursor only grows, so a stale
         * read errs towards not setting since) and none lies between m and id */
        if (m <= CUR(s))
            atomic_store_explicit(&s->since, id, memory_order_relaxed);
        atomic_store_explicit(&s->mark, last, memory_order_release);
    }
    return any;
}

/* Add s to the append path's set: from now on appends mark it. */
static void sub_register(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->amu);
    atomic_store_explicit(&s->mark, atomic_load_explicit(&es->published, memory_order_relaxed),
                          memory_order_relaxed);
    if (s->filtered) {
        s->fnext = es->fsubs;
        es->fsubs = s;
        if (s->ntypes == 0)
            es->sub_corr++;
    } else {
        atomic_fetch_add_explicit(&es->sub_all, 1, memory_order_relaxed);
    }
    es->sub_gen++;
    s->registered = true;
    fdn__mutex_unlock(&es->amu);
}

static void sub_unregister(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->amu);
    if (s->registered) {
        if (s->filtered) {
            for (evs_sub_t **pp = &es->fsubs; *pp != NULL; pp = &(*pp)->fnext)
                if (*pp == s) {
                    *pp = s->fnext;
                    break;
                }
            if (s->ntypes == 0)
                es->sub_corr--;
        } else {
            atomic_fetch_sub_explicit(&es->sub_all, 1, memory_order_relaxed);
        }
        es->sub_gen++;
        s->registered = false;
    }
    fdn__mutex_unlock(&es->amu);
}

static void sub_free(evs_sub_t *s)
{
    if (s->efd >= 0)
        close(s->efd);
    for (size_t i = 0; i < s->ntypes; i++)
        fdn__free(s->types[i]);
    fdn__free(s->types);
    fdn__free(s->tlens);
    fdn__free(s->corr);
    fdn__free(s);
}

/* The newest id up to which s may have events waiting, published being pub. */
static uint64_t sub_avail(const evs_sub_t *s, uint64_t pub)
{
    if (!s->filtered)
        return pub;
    uint64_t m = atomic_load_explicit(&s->mark, memory_order_acquire);
    return m < pub ? m : pub;
}

/* Count skip events as skipped by s (its overflow and the telemetry counter); returns skip. */
static uint64_t sub_count_skip(evs_sub_t *s, uint64_t skip)
{
    if (skip) {
        atomic_fetch_add_explicit(&s->overflow, skip, memory_order_relaxed);
        fdn_telemetry_t *tm = atomic_load_explicit(&s->es->tm, memory_order_acquire);
        if (tm != NULL)
            fdn_telemetry_emit_counter_n(tm, "foundation.event_store.subscriber_skipped", skip,
                                         NULL, 0);
    }
    return skip;
}

/* How many events of s's filter the memory tier holds with ids in [lo, hi] (its backlog):
 * the correlation's chain, or the type's posting lists. */
static uint64_t sub_count(fdn_events_t *es, const evs_sub_t *s, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return 0;
    if (!s->filtered)
        return hi - lo + 1;
    uint64_t n = 0;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    if (lo < first)
        lo = first;
    if (lo > hi) {
        /* all pruned meanwhile */
    } else if (s->corr != NULL) {
        evs_corr_t *c = fdn__evs_tab_find(atomic_load_explicit(&es->corrs, memory_order_acquire),
                                          s->corr, s->corr_len, fdn__hash(s->corr, s->corr_len),
                                          offsetof(evs_corr_t, name));
        uint64_t id = c != NULL ? atomic_load_explicit(&c->last_id, memory_order_acquire) : 0;
        evs_seg_t *hint = NULL;
        while (id != 0 && id >= lo) {
            const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                break;
            if (id <= hi && sub_type_in(s, r->type->name, r->type->len))
                n++;
            id = r->corr_prev ? id - r->corr_prev : 0;
        }
    } else {
        evs_tab_t *tab = atomic_load_explicit(&es->types, memory_order_acquire);
        for (size_t k = 0; k < s->ntypes; k++) {
            evs_sym_t *t =
                fdn__evs_tab_find(tab, s->types[k], s->tlens[k],
                                  fdn__hash(s->types[k], s->tlens[k]), offsetof(evs_sym_t, name));
            if (t == NULL)
                continue;
            evs_posting_t *p = &t->post;
            size_t pn = atomic_load_explicit(&p->n, memory_order_acquire);
            uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_acquire);
            size_t ph = atomic_load_explicit(&p->head, memory_order_acquire);
            if (dir == NULL)
                continue;
            size_t a = fdn__evs_post_lower(p, dir, ph, pn, lo);
            n += fdn__evs_post_lower(p, dir, a, pn, hi + 1) - a;
        }
    }
    fdn__rwlock_rdunlock(&es->plock);
    return n;
}

/* Merge k lists of distinct events in id order, each complete up to bound[k] (the lists are
 * freed): the events up to the smallest bound, at most max of them. *upto: the id the merged
 * list is complete up to. */
static int sub_merge(fdn_event_list_t **part, const uint64_t *bound, size_t k, size_t max,
                     fdn_event_list_t **out, uint64_t *upto)
{
    uint64_t b = UINT64_MAX;
    for (size_t i = 0; i < k; i++)
        b = FDN_MIN(b, bound[i]);
    size_t idx[SUB_MAX_TYPES] = {0};
    size_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += part[i]->n;
    const fdn_event_t **v = fdn__malloc((FDN_MIN(total, max) + 1) * sizeof(*v));
    int rc = v != NULL ? 0 : FDN_ENOMEM;
    size_t n = 0;
    while (rc == 0 && n < max) {
        size_t best = k;
        for (size_t i = 0; i < k; i++)
            if (idx[i] < part[i]->n && part[i]->items[idx[i]]->id <= b &&
                (best == k || part[i]->items[idx[i]]->id < part[best]->items[idx[best]]->id))
                best = i;
        if (best == k)
            break;
        v[n++] = part[best]->items[idx[best]++];
    }
    if (rc == 0 && n == max)
        b = v[n - 1]->id;
    if (rc == 0)
        rc = fdn__event_list_build(v, n, out);
    fdn__free(v);
    for (size_t i = 0; i < k; i++)
        fdn_event_list_free(part[i]);
    *upto = b;
    return rc;
}

/* Up to max events of s's filter after `after` in memory, in id order; *upto: the id they
 * are complete up to (the query's snapshot, or the last event when max came back). Several
 * types: one query per type, merged. */
static int sub_query(fdn_events_t *es, const evs_sub_t *s, uint64_t after, size_t max,
                     fdn_event_list_t **out, uint64_t *upto)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = s->corr;
    q.after_id = after;
    fdn_event_list_t *part[SUB_MAX_TYPES];
    uint64_t bound[SUB_MAX_TYPES];
    size_t k = s->ntypes > 0 ? s->ntypes : 1;
    for (size_t i = 0; i < k; i++) {
        q.type = s->ntypes > 0 ? s->types[i] : NULL;
        uint64_t snap = 0;
        int rc = fdn__evs_query(es, &q, max, &part[i], &snap);
        if (rc != 0) {
            while (i > 0)
                fdn_event_list_free(part[--i]);
            return rc;
        }
        bound[i] = part[i]->n == max ? part[i]->items[max - 1]->id : snap;
    }
    if (k == 1) {
        *out = part[0];
        *upto = bound[0];
        return 0;
    }
    return sub_merge(part, bound, k, max, out, upto);
}

/* Up to max events of s's filter with after < id < before from the durable backend (shared:
 * PostgreSQL; else the file), in id order; *upto as sub_query; *skipped: ids the file's
 * retention deleted there (fdn__evs_disk_page). */
static int sub_page(fdn_events_t *es, const evs_sub_t *s, bool shared, uint64_t after,
                    uint64_t before, size_t max, fdn_event_list_t **out, uint64_t *upto,
                    uint64_t *skipped)
{
    fdn_event_list_t *part[SUB_MAX_TYPES];
    uint64_t bound[SUB_MAX_TYPES];
    size_t k = s->ntypes > 0 ? s->ntypes : 1;
    *skipped = UINT64_MAX;
    for (size_t i = 0; i < k; i++) {
        const char *type = s->ntypes > 0 ? s->types[i] : NULL;
        uint64_t sk = 0;
        int rc = shared ? fdn__evs_shared_page(es, type, s->corr, after, before, max, &part[i])
                        : fdn__evs_disk_page(es, type, s->corr, after, before, max, &part[i], &sk);
        if (rc != 0) {
            while (i > 0)
                fdn_event_list_free(part[--i]);
            return rc;
        }
        bound[i] = part[i]->n == max ? part[i]->items[max - 1]->id : before - 1;
        *skipped = FDN_MIN(*skipped, sk); /* each page counts the same deleted ids */
    }
    if (k == 1) {
        *out = part[0];
        *upto = bound[0];
        return 0;
    }
    return sub_merge(part, bound, k, max, out, upto);
}

/* Fetch the next events of s after its cursor (no lock held by the caller; the cursor's
 * owner: the delivery thread, or the fd subscription's reader). */
static int sub_fetch(evs_sub_t *s, size_t max, fdn_event_list_t **out, uint64_t *skipped)
{
    fdn_events_t *es = s->es;
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t skip = 0;
    uint64_t cur = CUR(s);
    *skipped = 0;
    if (s->filtered) {
        /* read after published: every matching batch up to pub has set mark */
        uint64_t m = atomic_load_explicit(&s->mark, memory_order_acquire);
        if (m <= cur) { /* nothing of its filter after the cursor up to pub */
            if (pub > cur)
                SET_CUR(s, pub);
            return fdn__event_list_build(NULL, 0, out);
        }
        uint64_t sn = atomic_load_explicit(&s->since, memory_order_relaxed);
        if (sn > cur + 1) { /* nothing of its filter before since */
            cur = sn - 1;
            SET_CUR(s, cur);
        }
    }
    uint64_t upto = 0;
    if (s->from_pos && cur + 1 < first && (es->sh != NULL || es->durable_path != NULL)) {
        /* behind the memory tier: page from the shared backend, which holds every event, or
         * from the file of a write-behind store, which holds every id below first_id that its
         * retention kept */
        int rc = sub_page(es, s, es->sh != NULL, cur, first, max, out, &upto, &skip);
        if (rc != 0)
            return rc;
        SET_CUR(s, FDN_MAX(cur, upto));
        *skipped = sub_count_skip(s, skip);
        return 0;
    }
    if (cur + 1 < first) { /* pruned before delivery */
        skip += first - (cur + 1);
        cur = first - 1;
    }
    uint64_t bl = es->sub_max_backlog;
    if (!s->from_pos && pub > cur && pub - cur > bl) {
        /* more than bl of its events wait (with a filter, fewer ids may hold that many): it
         * skips the oldest, to the last bl */
        uint64_t have = s->filtered ? sub_count(es, s, cur + 1, pub) : pub - cur;
        if (have > bl && !s->filtered) {
            skip += pub - bl - cur;
            cur = pub - bl;
        } else if (have > bl) {
            /* the smallest hi with at most bl of its events in (hi, pub]: count(lo+1..pub)
             * stays above bl, count(hi+1..pub) at most bl */
            uint64_t lo = cur, hi = pub;
            while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (sub_count(es, s, mid + 1, pub) > bl)
                    lo = mid;
                else
                    hi = mid;
            }
            skip += have - sub_count(es, s, hi + 1, pub);
            cur = hi;
        }
    }
    SET_CUR(s, cur);
    int rc = sub_query(es, s, cur, max, out, &upto);
    if (rc != 0)
        return rc;
    if (upto > cur)
        SET_CUR(s, upto);
    *skipped = sub_count_skip(s, skip);
    return 0;
}

static uint64_t efd_poke(int fd)
{
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof(one));
    return w == (ssize_t)sizeof(one) ? 1 : 0;
}

/* A from-position subscriber behind the memory tier of a shared store catches up on a thread
 * of its own: it pages from the backend and runs its callback there, so a slow backend (or a
 * slow callback) delays only this subscriber, never the others on the delivery thread. It
 * ends when the subscriber reached the memory tier (the delivery thread takes it over) or on
 * pstop; it clears `paging` last and never touches s afterwards (unsubscribe waits for it). */
static void *pager_main(void *arg)
{
    evs_sub_t *s = arg;
    fdn_events_t *es = s->es;
    while (!atomic_load_explicit(&s->pstop, memory_order_acquire)) {
        uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
        uint64_t cur = CUR(s);
        if (cur + 1 >= first)
            break;
        fdn_event_list_t *l = NULL;
        uint64_t upto = 0, sk = 0;
        if (sub_page(es, s, true, cur, first, 256, &l, &upto, &sk) != 0) {
            /* the backend is away: try again after 100 ms (or the stop) */
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 100000000;
            if (dl.tv_nsec >= 1000000000) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000;
            }
            fdn__mutex_lock(&es->smu);
            if (!atomic_load_explicit(&s->pstop, memory_order_acquire))
                (void)pthread_cond_timedwait(&es->sdone, &es->smu, &dl);
            fdn__mutex_unlock(&es->smu);
            continue;
        }
        for (size_t i = 0; i < l->n && !atomic_load_explicit(&s->pstop, memory_order_acquire);
             i++) {
            s->cb(l->items[i], 0, s->user);
            SET_CUR(s, l->items[i]->id);
        }
        /* nothing else of its filter below upto (first - 1 for a short page) */
        if (!atomic_load_explicit(&s->pstop, memory_order_acquire) && upto > CUR(s))
            SET_CUR(s, upto);
        fdn_event_list_free(l);
    }
    fdn__mutex_lock(&es->smu);
    s->paging = false;
    pthread_cond_broadcast(&es->sdone);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
    return NULL;
}

/* Start s's pager (under smu); false when no thread could be made. */
static bool pager_start(fdn_events_t *es, evs_sub_t *s) FDN_REQUIRES(es->smu)
{
    (void)es;
    pthread_attr_t at;
    pthread_t t;
    if (pthread_attr_init(&at) != 0)
        return false;
    (void)pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    s->paging = true;
    bool ok = pthread_create(&t, &at, pager_main, s) == 0;
    pthread_attr_destroy(&at);
    if (!ok)
        s->paging = false;
    return ok;
}

/* Stop s's pager and wait until it let s go (under smu). */
static void pager_stop(fdn_events_t *es, evs_sub_t *s) FDN_REQUIRES(es->smu)
{
    atomic_store_explicit(&s->pstop, true, memory_order_release);
    pthread_cond_broadcast(&es->sdone);
    while (s->paging)
        pthread_cond_wait(&es->sdone, &es->smu);
}

static void *deliver_main(void *arg)
{
    fdn_events_t *es = arg;
    fdn__mutex_lock(&es->smu);
    for (;;) {
        if (es->dstop)
            break;
        /* dmark first: published is at least it (stored before it, release) */
        uint64_t dm = atomic_load_explicit(&es->dmark, memory_order_acquire);
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        /* an fd subscriber's descriptor becomes readable once per id it may have events up
         * to (it is cleared by the read, which then fetches at least that far) */
        for (evs_sub_t *s = es->subs; s != NULL; s = s->next) {
            if (s->cb != NULL)
                continue;
            uint64_t a = sub_avail(s, pub);
            if (a > CUR(s) && a != s->poked) {
                efd_poke(s->efd);
                s->poked = a;
            }
        }
        /* round robin: each subscriber that is behind gets one batch per round, so a busy
         * subscriber cannot starve the others */
        evs_sub_t *pick = NULL;
        bool behind = false;
        for (evs_sub_t *s = es->subs; s != NULL; s = s->next) {
            if (s->cb == NULL || s->paging || sub_avail(s, pub) <= CUR(s))
                continue;
            behind = true;
            if (s->round != es->dround) {
                pick = s;
                break;
            }
        }
        if (pick == NULL) {
            if (behind) {
                es->dround++;
                continue;
            }
            /* announce the wait, then look at dmark (and, with a subscriber without a
             * filter, published) again (seq_cst, as the writer's idle wait): an append that
             * concerns a subscriber either sees the flag and signals under smu, or it shows
             * here. sub_all changes only before a subscription is linked (under smu) or
             * after it is unlinked. */
            atomic_store(&es->dwaiting, true);
            if (atomic_load(&es->dmark) == dm &&
                (atomic_load(&es->sub_all) == 0 || atomic_load(&es->published) == pub))
                pthread_cond_wait(&es->scv, &es->smu);
            atomic_store_explicit(&es->dwaiting, false, memory_order_relaxed);
            continue;
        }
        pick->round = es->dround;
        if (pick->from_pos && es->sh != NULL &&
            CUR(pick) + 1 < atomic_load_explicit(&es->first_id, memory_order_acquire) &&
            pager_start(es, pick))
            continue; /* behind the memory tier: its pager catches it up */
        es->delivering = pick;
        fdn__mutex_unlock(&es->smu);
        fdn_event_list_t *l = NULL;
        uint64_t skipped = 0;
        bool fetch_failed = false;
        if (sub_fetch(pick, 256, &l, &skipped) == 0) {
            pick->pending_skip += skipped;
            for (size_t i = 0; i < l->n; i++) {
                pick->cb(l->items[i], pick->pending_skip, pick->user);
                pick->pending_skip = 0;
            }
            fdn_event_list_free(l);
        } else {
            fetch_failed = true;
        }
        fdn__mutex_lock(&es->smu);
        es->delivering = NULL;
        pthread_cond_broadcast(&es->sdone);
        if (fetch_failed && !es->dstop) { /* the backend is away: retry after a while */
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 100000000;
            if (dl.tv_nsec >= 1000000000) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000;
            }
            (void)pthread_cond_timedwait(&es->scv, &es->smu, &dl);
        }
    }
    fdn__mutex_unlock(&es->smu);
    return NULL;
}

void fdn__evs_notify_subs(fdn_events_t *es, uint64_t last_id)
{
    /* only a batch some filtered subscription matches (or a later one) moved dmark this
     * far (this thread stored its own dmark, under amu); without a subscriber without a
     * filter, the others need no delivery */
    if (atomic_load_explicit(&es->dmark, memory_order_relaxed) < last_id &&
        atomic_load_explicit(&es->sub_all, memory_order_relaxed) == 0)
        return;
    /* dmark and published were stored before; the fence orders them before reading the
     * flag, which the delivery thread sets before its last look at them (deliver_main). A
     * thread busy
     * delivering needs no signal: it looks at dmark again before it waits. Without this,
     * every append took smu and woke the thread, which then contended for smu with the next
     * appender (fdn serve's own subscription: ~4 us of CPU per appended event). */
    fdn__full_fence();
    if (!atomic_load_explicit(&es->dwaiting, memory_order_relaxed))
        return;
    fdn__mutex_lock(&es->smu);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
}

/* Copy o's filter into s (types deduplicated). 0, FDN_EINVAL, FDN_ENOMEM. */
static int sub_filter_copy(evs_sub_t *s, const fdn_events_sub_opts_t *o)
{
    const char *one[1];
    const char *const *types = NULL;
    size_t nt = 0;
    if (o != NULL && o->version >= 3 && o->ntypes > 0) {
        if (o->types == NULL || o->type != NULL || o->ntypes > SUB_MAX_TYPES)
            return FDN_EINVAL;
        for (size_t i = 0; i < o->ntypes; i++)
            if (o->types[i] == NULL)
                return FDN_EINVAL;
        types = o->types;
        nt = o->ntypes;
    } else if (o != NULL && o->type != NULL) {
        one[0] = o->type;
        types = one;
        nt = 1;
    }
    if (nt > 0) {
        s->types = fdn__calloc(nt, sizeof(char *));
        s->tlens = fdn__calloc(nt, sizeof(size_t));
        if (s->types == NULL || s->tlens == NULL)
            return FDN_ENOMEM;
        for (size_t i = 0; i < nt; i++) {
            bool dup = false;
            for (size_t j = 0; j < s->ntypes && !dup; j++)
                dup = strcmp(s->types[j], types[i]) == 0;
            if (dup)
                continue;
            if ((s->types[s->ntypes] = fdn__strdup(types[i])) == NULL)
                return FDN_ENOMEM;
            s->tlens[s->ntypes] = strlen(types[i]);
            s->ntypes++;
        }
    }
    if (o != NULL && o->correlation_id != NULL) {
        if ((s->corr = fdn__strdup(o->correlation_id)) == NULL)
            return FDN_ENOMEM;
        s->corr_len = strlen(s->corr);
    }
    s->filtered = s->ntypes > 0 || s->corr != NULL;
    return 0;
}

static int sub_new(fdn_events_t *es, const fdn_events_sub_opts_t *o, evs_sub_t **out)
{
    if (o != NULL && (o->version < 1 || o->version > FDN_EVENTS_SUB_OPTS_VERSION))
        return FDN_EINVAL;
    if (o != NULL && o->version >= 3 && o->ntypes > 0 &&
        (o->types == NULL || o->type != NULL || o->ntypes > SUB_MAX_TYPES))
        return FDN_EINVAL;
    if (!atomic_load_explicit(&es->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    evs_sub_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return FDN_ENOMEM;
    s->es = es;
    s->efd = -1;
    s->from_pos = o != NULL && o->version >= 2 && o->from_position;
    atomic_init(&s->overflow, 0);
    atomic_init(&s->mark, 0);
    atomic_init(&s->since, 0);
    uint64_t after = o ? o->after_id : UINT64_MAX;
    atomic_init(&s->cursor, after == UINT64_MAX
                                ? atomic_load_explicit(&es->published, memory_order_acquire)
                                : after);
    int rc = sub_filter_copy(s, o);
    if (rc != 0) {
        sub_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void sub_link(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->smu);
    s->next = es->subs;
    es->subs = s;
    atomic_fetch_add_explicit(&es->nsubs, 1, memory_order_release);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
}

static int deliverer_start(fdn_events_t *es)
{
    fdn__mutex_lock(&es->smu);
    int rc = 0;
    if (!es->deliverer_on) {
        es->dstop = false;
        if (pthread_create(&es->deliverer, NULL, deliver_main, es) != 0)
            rc = FDN_EAGAIN;
        else
            es->deliverer_on = true;
    }
    fdn__mutex_unlock(&es->smu);
    return rc;
}

static void deliverer_stop(fdn_events_t *es)
{
    fdn__mutex_lock(&es->smu);
    bool on = es->deliverer_on;
    es->dstop = true;
    pthread_cond_broadcast(&es->scv);
    fdn__mutex_unlock(&es->smu);
    if (on)
        pthread_join(es->deliverer, NULL);
    fdn__mutex_lock(&es->smu);
    es->deliverer_on = false;
    fdn__mutex_unlock(&es->smu);
}

int fdn_events_subscribe(fdn_events_t *es, const fdn_events_sub_opts_t *opts, fdn_events_sub_cb cb,
                         void *user, fdn_events_sub_t **out)
{
    if (es == NULL || cb == NULL || out == NULL)
        return FDN_EINVAL;
    evs_sub_t *s = NULL;
    int rc = sub_new(es, opts, &s);
    if (rc != 0)
        return rc;
    s->cb = cb;
    s->user = user;
    if ((rc = deliverer_start(es)) != 0) {
        sub_free(s);
        return rc;
    }
    sub_register(es, s);
    sub_link(es, s);
    *out = s;
    return 0;
}

int fdn_events_subscribe_fd(fdn_events_t *es, const fdn_events_sub_opts_t *opts,
                            fdn_events_sub_t **out)
{
    if (es == NULL || out == NULL)
        return FDN_EINVAL;
    evs_sub_t *s = NULL;
    int rc = sub_new(es, opts, &s);
    if (rc != 0)
        return rc;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0 || (rc = deliverer_start(es)) != 0) {
        sub_free(s);
        return rc ? rc : FDN_EIO;
    }
    sub_register(es, s);
    /* events up to the registration may wait (after_id in the past) */
    uint64_t m = atomic_load_explicit(&s->mark, memory_order_relaxed);
    if (CUR(s) < m) {
        efd_poke(s->efd);
        s->poked = m;
    }
    sub_link(es, s);
    *out = s;
    return 0;
}

int fdn_events_sub_fd(const fdn_events_sub_t *sub)
{
    return sub ? sub->efd : -1;
}

int fdn_events_sub_read(fdn_events_sub_t *s, size_t max, fdn_event_list_t **out, uint64_t *skipped)
{
    if (s == NULL || out == NULL || max == 0 || s->efd < 0)
        return FDN_EINVAL;
    uint64_t v;
    ssize_t r = read(s->efd, &v, sizeof(v)); /* clear readiness first: no lost wake-up */
    (void)r;
    uint64_t sk = 0;
    int rc = sub_fetch(s, max, out, &sk);
    if (rc != 0)
        return rc;
    if ((*out)->n == max)
        efd_poke(s->efd); /* more may wait */
    if (skipped)
        *skipped = sk;
    return 0;
}

uint64_t fdn_events_sub_overflow(const fdn_events_sub_t *sub)
{
    return sub ? atomic_load_explicit(&((fdn_events_sub_t *)sub)->overflow, memory_order_relaxed)
               : 0;
}

void fdn_events_unsubscribe(fdn_events_sub_t *s)
{
    if (s == NULL)
        return;
    fdn_events_t *es = s->es;
    fdn__mutex_lock(&es->smu);
    for (evs_sub_t **pp = &es->subs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    while (es->delivering == s)
        pthread_cond_wait(&es->sdone, &es->smu);
    pager_stop(es, s);
    atomic_fetch_sub_explicit(&es->nsubs, 1, memory_order_release);
    fdn__mutex_unlock(&es->smu);
    sub_unregister(es, s); /* no append marks it after this */
    sub_free(s);
}

/* ---------------------------------------------------------------- lifecycle ---- */

typedef struct load_ctx {
    fdn_events_t *es;
    int64_t min_ts; /* the memory tier's max_age: older events stay in the file only */
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
    if (ev->ts < lc->min_ts) { /* past the memory tier's age limit: read from the file */
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
    if (!load)
        return 0;
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
        return deliverer_start(es);
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
    deliverer_stop(es);
    if (es->sh != NULL) {
        fdn__evs_shared_stop(es); /* the shared backend stays open until destroy */
    } else {
        fdn__mutex_lock(&es->dmu); /* no read of the file is under way */
        fdn__evb_close(&es->be);
        fdn__mutex_unlock(&es->dmu);
    }
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_events_t *es = state;
    (void)ctx;
    (void)err;
    if (es == NULL)
        return FDN_EINVAL;
    if (atomic_load_explicit(&es->running, memory_order_acquire))
        return 0;
    int rc = 0;
    if (es->durable_path != NULL && !fdn__evb_open(&es->be))
        rc = db_open_load(es, false, NULL);
    if (rc == 0)
        rc = start_threads(es);
    if (rc != 0) {
        stop_threads(es);
        return rc;
    }
    fdn__mutex_lock(&es->amu);
    size_t done = 0;
    for (; done < es->nbuf && rc == 0; done++) {
        const fdn_event_t *one = es->buf[done];
        rc = fdn__evs_append_locked(es, &one, 1, NULL);
        if (rc == 0)
            fdn_event_free(es->buf[done]);
    }
    if (rc != 0)
        done--;
    if (done > 0) {
        memmove(es->buf, es->buf + done, (es->nbuf - done) * sizeof(fdn_event_t *));
        es->nbuf -= done;
    }
    if (rc == 0)
        atomic_store_explicit(&es->running, 1, memory_order_release);
    fdn__mutex_unlock(&es->amu);
    if (rc != 0) {
        stop_threads(es);
        return rc;
    }
    if (done > 0)
        rc = fdn__evs_after_append(es, atomic_load_explicit(&es->published, memory_order_acquire));
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
    atomic_init(&es->persisted, 0);
    atomic_init(&es->commit_seq, 0);
    atomic_init(&es->commit_sleepers, 0);
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
    pthread_condattr_t mono; /* the writer's group-commit deadline is on CLOCK_MONOTONIC */
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&es->wcv, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&es->wdone, NULL);
    pthread_mutex_init(&es->rmu, NULL);
    pthread_cond_init(&es->rcv, NULL);
    pthread_mutex_init(&es->smu, NULL);
    pthread_cond_init(&es->scv, NULL);
    pthread_cond_init(&es->sdone, NULL);
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
    rc = fdn__events_service_start(es);
    if (rc != 0) {
        fdn_events_destroy(es);
        return fdn_err_set(err, rc, "events: cannot start the store's threads");
    }
    *out = es;
    return 0;
}

void fdn_events_destroy(fdn_events_t *es)
{
    if (es == NULL)
        return;
    fdn__events_service_stop(es);
    while (es->subs != NULL) {
        evs_sub_t *s = es->subs;
        es->subs = s->next;
        fdn__mutex_lock(&es->smu);
        pager_stop(es, s);
        fdn__mutex_unlock(&es->smu);
        sub_unregister(es, s);
        sub_free(s);
    }
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
