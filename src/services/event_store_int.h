/* Private interface of the event store, shared by its files:
 *  - event_store.c: the memory tier's core: segments and records, posting lists, append
 *    (fdn_events_store, fdn_events_store_batch), prune, statistics;
 *  - event_intern.c: the intern tables (type and node names, correlation ids);
 *  - event_query.c: the query engine: every read that copies events out (queries,
 *    correlation lookups, get by id, the range copies of the writer);
 *  - event_service.c: lifecycle, durable writer, retention;
 *  - event_subs.c: subscriptions, the delivery thread and the pagers;
 *  - event_disk.c: the SQLite file's part of reads and the durable tier's retention;
 *  - event_shared.c: the store on a shared backend (PostgreSQL);
 * and the supervision hooks used by the runtime. */
#ifndef FDN_SERVICES_EVENT_STORE_INT_H
#define FDN_SERVICES_EVENT_STORE_INT_H

#include "core/alloc.h"
#include "core/hash.h"
#include "core/lock.h"
#include "core/supervisor_int.h"
#include "core/sync.h"

#include <fdn/events.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "logic/event_int.h"
#include "storage/event_backend.h"

/* ---- the settings' refusals (runtime) ---- */

/* What fdn_events_set_max_age, _prune_interval and _durable_retention refuse of a duration (a
 * negative one) and fdn_events_set_max_results of a cap (0): the setters answer with these, and
 * the runtime asks them to check a config update before it is written to etcd, pushing
 * nothing (runtime_services.c, apply_settings' check). */
static inline int fdn__events_check_ns(int64_t ns)
{
    return ns < 0 ? FDN_EINVAL : 0;
}

static inline int fdn__events_check_max_results(uint32_t max_results)
{
    return max_results == 0 ? FDN_EINVAL : 0;
}

/* ---- supervision hooks (runtime) ---- */

/* The store's supervisor vtable, defined in event_service.c, and typed wrappers (see
 * core/supervisor_int.h):
 * - start: open the durable file again (when configured), start the writer and retention
 *   threads, replay stores buffered while stopped (in order, with the ids they were given),
 *   then accept calls. Returns 0, FDN_EIO, FDN_ECORRUPT, FDN_ENOMEM.
 * - stop: refuse new calls (FDN_EUNAVAILABLE, or buffer them), flush and close the durable
 *   file, join the writer, retention and delivery threads. Stored events stay in memory.
 * - health: 0 healthy; FDN_EUNAVAILABLE when stopped; FDN_EIO when the writer met an I/O
 *   error. */
FDN__SERVICE_TYPED_OPS(events, fdn_events_t)
/* Set (or clear with NULL) the telemetry the store reports into, at any time: the runtime
 * creates the event store before its telemetry service and wires them afterwards.
 * Returns only once every report into the telemetry it replaces has finished (each of the
 * store's uses of its telemetry runs in a pass of es->tm_gate: fdn__evs_tm_enter), handlers
 * that report ran included, and the per-type counters of the old telemetry are no longer
 * used: the caller may then destroy that telemetry, or free what its handlers use. So it
 * waits for handlers already running (as long as they run), and must not be called from a
 * handler that one of the store's reports runs on this thread: that would wait for itself,
 * and returns FDN_EBUSY, changing nothing. Nor from a handler another thread waits for
 * while this one waits: a deadlock no check can see.
 * Returns 0, FDN_EINVAL (es NULL), FDN_EBUSY. Threads: any; changes are serialised. */
int fdn__events_set_telemetry(fdn_events_t *es, fdn_telemetry_t *tm);
/* Test hook: block until the retention thread has completed at least n runs. */
void fdn__events_wait_prune_runs(fdn_events_t *es, uint64_t n);
/* Store n of the runtime's own events: as fdn_events_store_batch (all or nothing, one commit),
 * never refused by the cap on live types (storage.hot.max_types). */
int fdn__events_store_system(fdn_events_t *es, const fdn_event_t *const *evs, size_t n);

/* ---- internal structures ---- */

#define EVS_SEG_EVENTS 4096u
#define EVS_PCHUNK     1024u
/* large segments a prune keeps for reuse instead of freeing them (event_store.c) */
#define EVS_SPARE_SEGS 2u
/* the writer's cache of recently stored types (slots, a power of two) */
#define EVS_TYPE_CACHE_BITS 6
#define EVS_TYPE_CACHE      (1u << EVS_TYPE_CACHE_BITS)

typedef struct evs_posting {
    _Atomic(uint64_t **) dir; /* chunk pointers; dir[k] holds global chunk base_chunk + k */
    size_t dir_cap;           /* writer */
    size_t nchunks;           /* writer: dir entries allocated */
    size_t base_chunk;        /* changed only under the prune (write) lock */
    _Atomic size_t head;      /* first live global index */
    _Atomic size_t n;         /* entries appended (global index of the next one) */
    size_t resv;              /* writer: entries reserved by the batch being prepared */
    size_t cap0; /* writer: entries global chunk 0 holds; it starts small (a type with few
                    events costs little) and is replaced by larger copies up to EVS_PCHUNK;
                    every later chunk has EVS_PCHUNK entries */
    size_t room; /* writer: global index the allocated chunks end at (n + resv <= room: no
                    allocation needed). A prune frees chunks below head only, so it stays. */
} evs_posting_t;

typedef struct evs_sym { /* interned type or node name */
    uint64_t hash;
    uint32_t len;
    evs_posting_t post; /* types only */
    _Atomic uint64_t count; /* events held that name it (types and nodes) */
    _Atomic uint64_t bytes; /* types only */
    /* types only, writer (amu): fdn_events_appended_by_type_total{type} of this type, resolved
     * for telemetry generation appended_gen (event_store.c, type_counter) */
    fdn_counter_t *appended;
    uint64_t appended_gen;
    /* types only, writer (amu): whether a subscription's type filter names this type
     * (sub_hit), resolved for subscription generation sub_gen (fdn__evs_sub_type_hit) */
    uint64_t sub_gen;
    bool sub_hit;
    char name[];
} evs_sym_t;

typedef struct evs_corr {
    uint64_t hash;
    uint32_t len;
    _Atomic uint64_t last_id; /* newest event with this id (0 = none yet) */
    char name[];
} evs_corr_t;

typedef struct evs_tab { /* open addressing, insert-only for readers */
    size_t mask;
    size_t used; /* live + tombstones (writer) */
    size_t live; /* live entries (writer) */
    _Atomic(void *) slots[];
} evs_tab_t;

typedef struct evs_rec {
    int64_t ts;
    int64_t wall;
    uint64_t parent;
    evs_sym_t *type;
    evs_sym_t *node;
    evs_corr_t *corr;
    uint32_t corr_prev; /* id delta to the previous event of the correlation (0 = none) */
    uint32_t data_len;
    uint32_t pid;
    uint32_t tid;
    uint8_t ctype;
    uint8_t more; /* 1: not the last event of its store_batch (the writer commits whole batches) */
    uint8_t data[];
} evs_rec_t;

typedef struct evs_seg {
    uint64_t first_id;
    _Atomic uint32_t count;
    size_t arena_cap;
    size_t arena_used;  /* writer */
    size_t arena_ready; /* writer: arena bytes below this are faulted in (event_store.c) */
    uint8_t *arena;
    uint32_t offs[EVS_SEG_EVENTS];
} evs_seg_t;

typedef struct evs_segent { /* first ids kept in the directory: the search stays in it */
    uint64_t first_id;
    evs_seg_t *seg;
} evs_segent_t;

typedef struct evs_segdir {
    size_t cap;
    evs_segent_t segs[];
} evs_segdir_t;

typedef struct fdn_events_sub evs_sub_t;

/* An asynchronous store (fdn_events_store_async) waiting for the writer's acknowledgement. */
typedef struct evs_async {
    struct evs_async *next;
    uint64_t need; /* acknowledged once persisted >= need */
    uint64_t first_id;
    size_t n;
    fdn_events_stored_cb cb;
    void *user;
} evs_async_t;

/* The durable writer's records: ids [from, to] still held, encoded back to back
 * (docs/event-format.md, with flags) into a buffer the writer keeps between commits. */
typedef struct evs_recbuf {
    uint8_t *buf;
    size_t cap;
    size_t *off; /* record i at buf + off[i], off[n]: the end */
    size_t off_cap;
    size_t n;
} evs_recbuf_t;

struct fdn_events {
    fdn_clock_t *clock;
    _Atomic(fdn_telemetry_t *) tm; /* may be set after create (fdn__events_set_telemetry) */
    fdn__gate_t tm_gate;           /* every use of tm runs in a pass (fdn__evs_tm_enter) */
    _Atomic uint64_t tm_gen;       /* +1 whenever tm is set (from 1): type counters re-resolve */
    /* amu: the family fdn_events_appended_by_type_total of telemetry generation by_type_gen */
    fdn_telemetry_family_t *by_type;
    uint64_t by_type_gen;
    char *durable_path;
    fdn_events_mode_t mode;
    bool compress; /* durable records: zstd payloads (opts.compress) */
    uint32_t fast_queue_max;
    uint32_t buffer_max;
    uint32_t sub_max_backlog;
    int64_t created_ns;

    /* lock order: plock (write) -> amu -> wmu; smu and rmu are leaves. Readers take plock
     * for reading only. */
    fdn__rwlock_t plock;
    fdn__mutex_t amu;

    /* memory tier; published = newest fully visible id (release/acquire) */
    _Atomic uint64_t published;
    _Atomic uint64_t first_id; /* oldest live id (ids below are pruned) */
    uint64_t next_id;          /* amu */
    int64_t last_ts;           /* amu */
    /* amu: the latest timestamp stored without reading the clock (event_store.c, ts_bound) */
    int64_t ts_ceiling;
    _Atomic(evs_segdir_t *) segdir;
    _Atomic size_t seg_head; /* plock write */
    _Atomic size_t seg_n;
    size_t next_arena; /* amu */
    /* amu: large segments freed by a prune, kept for the next appends (their pages are
     * resident already); still counted in bytes_alloc (event_store.c, seg_release) */
    evs_seg_t *spare_seg[EVS_SPARE_SEGS];
    size_t nspare;
    _Atomic(evs_tab_t *) types;
    _Atomic(evs_tab_t *) nodes;
    _Atomic(evs_tab_t *) corrs;
    evs_sym_t *type_cache[EVS_TYPE_CACHE]; /* amu: intern cache, by fdn__evs_name_mix */
    evs_sym_t *last_node;                  /* amu: intern cache */
    evs_corr_t *last_corr;                 /* amu: reset when the entry is freed */
    void **retired;                        /* amu: freed after the next prune or at destroy */
    size_t nretired, capretired;
    _Atomic uint64_t count, bytes, bytes_alloc, stored_total, pruned_total, ntypes;
    /* cap on live types (0 = none); stores refused by it (events); types released */
    _Atomic uint64_t max_types, types_refused, types_released;
    _Atomic uint32_t max_results;

    /* lifecycle */
    _Atomic int running; /* written under amu */
    fdn_event_t **buf;   /* amu: stores accepted while stopped */
    size_t nbuf;

    /* durable writer; be: the durable tier's backend (storage/event_backend.h), open while
     * the store runs (SQLite) or from create to destroy (shared: sh != NULL) */
    fdn__evb_t be;
    struct evs_shared *sh; /* event_shared.c: a shared backend (PostgreSQL); NULL otherwise */
    fdn__mutex_t wmu;
    pthread_cond_t wcv;   /* writer wakes */
    pthread_cond_t wdone; /* commits happened */
    pthread_t writer;
    bool writer_on;
    bool wstop;                 /* wmu */
    uint64_t wtarget;           /* wmu: persist up to this id */
    _Atomic uint64_t persisted; /* committed up to this id */
    /* durable callers wait for their commit on this word (core/sync.h) without wmu: the
     * writer bumps it after each commit (or failure) and wakes them only when some sleep */
    _Atomic uint32_t commit_seq;
    _Atomic uint32_t commit_sleepers;
    /* the writer's commit in flight, or its last one: (last id it covers << 5) | (its number
     * & 31). A caller sleeps on the bit of the commit that will cover its id (this one, or
     * the next), and a commit wakes only its bit's sleepers (event_service.c, commit_bit) */
    _Atomic uint64_t commit_cover;
    /* whoever commits (the writer, or a caller leading its batch: event_service.c,
     * lead_commit): the number of the last commit and the records' buffer */
    uint32_t commit_num;
    evs_recbuf_t wrb;
    bool lead; /* wmu: a caller commits (the writer neither commits nor stops meanwhile) */
    _Atomic bool writer_idle; /* the writer waits on wcv: an append must signal it */
    /* while writer_idle: an append whose last id is below this need not signal (the writer
     * gathers a group commit until this id or its deadline; 0: every append signals) */
    _Atomic uint64_t writer_want;
    _Atomic int io_error;
    /* the writer's commits that failed with FDN_EBUSY (another connection held the file's
     * write lock past busy_timeout: transient, not latched): how many, and the last id the
     * last of them would have committed (event_service.c, "Busy") */
    _Atomic uint32_t busy_seq;
    _Atomic uint64_t busy_to;
    /* asynchronous stores waiting for their commit, in id order (queued under amu) */
    evs_async_t *aq_head;       /* wmu */
    evs_async_t **aq_tail;      /* wmu */
    _Atomic uint64_t aq_events; /* events of the queued stores (bound: fast_queue_max) */

    /* the durable tier (event_disk.c): oldest id the file may hold (write-behind); its own
     * retention (0 = keep); dmu guards backend reads and prunes against a closing backend */
    _Atomic uint64_t disk_first;
    _Atomic uint64_t warm_max_events, durable_pruned_total;
    _Atomic int64_t warm_max_age_ns;
    fdn__mutex_t dmu;
    /* the file index's status as fdn_events_index_status last read it under dmu (event_disk.c),
     * answered while dmu is busy (a long durable prune holds it): flags bit 0 read once, bit 1
     * has_index, bit 2 current; relaxed, a status and not a snapshot */
    _Atomic unsigned ix_seen_flags;
    _Atomic uint64_t ix_seen_behind, ix_seen_failures;
    _Atomic int ix_seen_error;
    /* correlation ids known to have no event in the file below an id (event_disk.c: a
     * table allocated when first needed); under cmu */
    struct evs_corr_memo *cmemo;
    fdn__mutex_t cmu;
    _Atomic uint64_t disk_reads; /* query reads of the file (tests) */

    /* retention */
    pthread_t pruner;
    bool pruner_on;
    _Atomic bool pstop;
    _Atomic uint64_t max_events;
    _Atomic int64_t max_age_ns, prune_interval_ns;
    fdn__mutex_t rmu;
    pthread_cond_t rcv;
    uint64_t prune_runs; /* rmu */
    int64_t prune_base;  /* first interval starts here (set before the thread starts) */

    /* subscriptions */
    fdn__mutex_t smu;
    pthread_cond_t scv;    /* delivery thread wakes */
    pthread_cond_t sdone;  /* a delivery round ended */
    evs_sub_t *subs;       /* smu */
    evs_sub_t *delivering; /* smu */
    _Atomic int nsubs;
    pthread_t deliverer;
    bool deliverer_on;
    bool dstop;      /* smu */
    uint64_t dround; /* smu: delivery round (round-robin between subscribers) */
    /* the delivery thread waits on scv for new events (set under smu before it looks at
     * dmark a last time): only then does an append signal it (fdn__evs_notify_subs) */
    _Atomic bool dwaiting;
    /* Subscription interest, read by the append path (event_subs.c, "Subscriptions and
     * the append path"). amu: the filtered subscriptions (linked by fnext) and how many of
     * them have a correlation filter without a type one (sub_corr); sub_gen changes with the
     * set (type entries re-resolve sub_hit). sub_all: subscriptions without a filter
     * (written under amu; read by notify and the delivery thread, which then also wakes for
     * every append). dmark: last id of the newest published batch that some filtered
     * subscription matches (stored after published, release); without sub_all the delivery
     * thread sleeps while it does not change. */
    evs_sub_t *fsubs;
    uint32_t sub_corr;
    _Atomic uint32_t sub_all;
    uint64_t sub_gen;
    _Atomic uint64_t dmark;
};

/* An intern table slot whose entry was removed (correlation ids only): readers skip it. */
extern char fdn__evs_tomb;
#define EVS_TOMB ((void *)&fdn__evs_tomb)

/* wall - monotonic of the store's clock now (0 when that overflows): what turns the wall-clock
 * times of events read back from a file or a backend into the store's monotonic ones, and a
 * query's monotonic time range into wall-clock bounds (event_disk.c, event_shared.c). */
static inline int64_t fdn__evs_clock_offset(fdn_events_t *es)
{
    int64_t mono = fdn_clock_mono_ns(es->clock), wall = fdn_clock_wall_ns(es->clock);
    int64_t off;
    if (__builtin_sub_overflow(wall, mono, &off))
        off = 0;
    return off;
}

/* a + b, saturated at INT64_MIN and INT64_MAX. */
static inline int64_t fdn__evs_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The timestamp of an event of wall time `wall` on a store whose clock offset is off
 * (fdn__evs_clock_offset): wall - off, saturated. What a read of a shared backend gives every
 * event, from PostgreSQL or from memory (event_shared.c "Timestamps"). */
static inline int64_t fdn__evs_rebuilt_ts(int64_t wall, int64_t off)
{
    int64_t ts;
    if (__builtin_sub_overflow(wall, off, &ts))
        ts = wall < 0 ? INT64_MIN : INT64_MAX;
    return ts;
}

/* A query's time bounds as wall-time bounds, with the store's clock offset off: what the
 * backend compares its wall_ns with (an open bound stays open), and memory its records' wall
 * time on a shared backend, so both list the same events. */
static inline void fdn__evs_wall_bounds(const fdn_events_query_t *q, int64_t off, int64_t *lo,
                                        int64_t *hi)
{
    *lo = q->time_start == INT64_MIN ? INT64_MIN : fdn__evs_sat_add(q->time_start, off);
    *hi = q->time_end == INT64_MAX ? INT64_MAX : fdn__evs_sat_add(q->time_end, off);
}

/* Whether the store accepts calls (written under amu by start and stop). */
static inline bool fdn__evs_running(fdn_events_t *es)
{
    return atomic_load_explicit(&es->running, memory_order_acquire) != 0;
}

/* Heap bytes held by the memory tier (stats.bytes_allocated). */
static inline void fdn__evs_account(fdn_events_t *es, int64_t delta)
{
    atomic_fetch_add_explicit(&es->bytes_alloc, (uint64_t)delta, memory_order_relaxed);
}

/* A slot of the writer's type cache for a name: a cheap mix of its length and its first and
 * last bytes (a cache only: names that collide just miss it, so it needs no secret). */
static inline size_t fdn__evs_name_mix(const char *s, size_t n)
{
    uint64_t x = n;
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        x ^= a ^ (b << 1);
    } else {
        for (size_t i = 0; i < n; i++)
            x = (x << 8) ^ (unsigned char)s[i];
    }
    x *= 0x9e3779b97f4a7c15ULL;
    x ^= x >> 32;
    x *= 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> (64 - EVS_TYPE_CACHE_BITS));
}

/* Add d (two's complement for a decrement) to a counter written only under amu (the event
 * and byte counts of the store and of each type, stored_total): one writer at a time, so a
 * relaxed load and store is the whole update and readers still see whole values, without the
 * locked read-modify-write that would cost the append path ~20 cycles per counter. */
static inline void fdn__evs_amu_add(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

/* ---- record and posting lookups (readers under plock read, or the writer) ----
 * Inline: they are the inner loop of every query scan. */

/* The segment whose id range contains id (NULL when none). */
static inline evs_seg_t *fdn__evs_seg_find(fdn_events_t *es, uint64_t id)
{
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_acquire);
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_acquire);
    size_t lo = atomic_load_explicit(&es->seg_head, memory_order_acquire), hi = n;
    if (lo >= hi)
        return NULL;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->segs[mid].first_id <= id)
            lo = mid;
        else
            hi = mid;
    }
    evs_seg_t *s = d->segs[lo].seg;
    return id >= s->first_id ? s : NULL;
}

static inline evs_rec_t *fdn__evs_seg_rec(evs_seg_t *s, uint64_t id)
{
    uint64_t idx = id - s->first_id;
    if (idx >= atomic_load_explicit(&s->count, memory_order_acquire))
        return NULL;
    return (evs_rec_t *)(void *)(s->arena + s->offs[idx]);
}

/* The record of id (NULL when pruned or not yet written). */
static inline evs_rec_t *fdn__evs_rec_lookup(fdn_events_t *es, uint64_t id)
{
    if (id < atomic_load_explicit(&es->first_id, memory_order_acquire))
        return NULL;
    evs_seg_t *s = fdn__evs_seg_find(es, id);
    return s ? fdn__evs_seg_rec(s, id) : NULL;
}

/* fdn__evs_rec_lookup with a cached segment: consecutive lookups in one segment skip the
 * search. */
static inline evs_rec_t *fdn__evs_rec_lookup_hint(fdn_events_t *es, uint64_t id, evs_seg_t **hint)
{
    if (id < atomic_load_explicit(&es->first_id, memory_order_acquire))
        return NULL;
    evs_seg_t *s = *hint;
    if (s != NULL && id >= s->first_id) {
        evs_rec_t *r = fdn__evs_seg_rec(s, id);
        if (r != NULL)
            return r;
    }
    s = fdn__evs_seg_find(es, id);
    if (s == NULL)
        return NULL;
    *hint = s;
    return fdn__evs_seg_rec(s, id);
}

/* Entry i (global index) of a posting list whose directory is dir. */
static inline uint64_t fdn__evs_post_at(const evs_posting_t *p, uint64_t **dir, size_t i)
{
    return dir[i / EVS_PCHUNK - p->base_chunk][i % EVS_PCHUNK];
}

/* First global index in [lo, hi) whose id >= id. */
static inline size_t fdn__evs_post_lower(const evs_posting_t *p, uint64_t **dir, size_t lo,
                                         size_t hi, uint64_t id)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fdn__evs_post_at(p, dir, mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- memory tier core (event_store.c) ---- */

int fdn__evs_init(fdn_events_t *es);
void fdn__evs_fini(fdn_events_t *es);
/* Append n events with consecutive ids (all or nothing). Caller holds amu. Loading the durable
 * file and replaying buffered stores use it: it never refuses a type (what was acknowledged
 * is kept); a client's store, refused with FDN_ENOSPC while max_types types are live, goes
 * through event_store.c's append_batch. */
int fdn__evs_append_locked(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids)
    FDN_REQUIRES(es->amu);
/* Remember p (a replaced directory or table) to free once no reader can hold it: after the
 * next prune or at destroy. Caller holds amu. Returns 0 or FDN_ENOMEM. */
int fdn__evs_retire(fdn_events_t *es, void *p) FDN_REQUIRES(es->amu);
/* Make room for k more fdn__evs_retire calls that then cannot fail. Caller holds amu.
 * Returns 0 or FDN_ENOMEM. */
int fdn__evs_retire_reserve(fdn_events_t *es, size_t k) FDN_REQUIRES(es->amu);
/* Remove ids < cut from memory; returns how many. Memory only: fdn_events_prune_before
 * deletes from the durable file first (event_service.c). Works in
 * steps of at most PRUNE_STEP ids, each under plock (write) and amu, released between steps:
 * a retention run that evicts millions of events (a default store keeps 100 000 in memory and
 * runs every minute) would otherwise hold every query and append for a second or more. Each
 * step leaves a consistent store (first_id at the step's cut), so a reader between steps sees
 * a store pruned part of the way. */
#define PRUNE_STEP 8192u
uint64_t fdn__evs_prune_ids(fdn_events_t *es, uint64_t cut);
/* Test hook: called by fdn__evs_prune_ids between two steps, with no lock held (NULL: none).
 * Set before the store is used, from one thread. */
extern void (*fdn__evs_prune_step_hook)(fdn_events_t *es, void *user);
extern void *fdn__evs_prune_step_user;
/* The memory tier's retention once (max_events, max_age; on a write-behind backend only
 * committed events are evicted); returns how many. */
uint64_t fdn__evs_retention_memory(fdn_events_t *es);
/* First id with timestamp >= ts (published+1 when none). Caller holds plock (read). */
uint64_t fdn__evs_id_at_time(fdn_events_t *es, int64_t ts, uint64_t snap);
/* Last id of the store_batch that id belongs to (id itself when it is pruned or the last
 * of its batch; takes plock read). Batches are published whole, so the result is <= the
 * published id whenever id is. */
uint64_t fdn__evs_batch_end(fdn_events_t *es, uint64_t id);

/* Set err to the type cap's refusal (FDN_ENOSPC), naming the cap and the live count.
 * Returns FDN_ENOSPC. */
int fdn__evs_types_error(fdn_events_t *es, fdn_error_t *err);

/* ---- intern tables (event_intern.c) ---- */

/* Create the three tables (types, nodes, correlation ids). Returns 0 or FDN_ENOMEM. */
int fdn__evs_intern_init(fdn_events_t *es);
/* Free the tables, their entries and the posting chunks of the type entries. */
void fdn__evs_intern_fini(fdn_events_t *es);
/* Reader-safe lookup of the entry named (s, n) with hash h; name_off is the offset of the
 * name in the entry type (evs_sym_t or evs_corr_t). NULL when absent. */
void *fdn__evs_tab_find(evs_tab_t *t, const char *s, size_t n, uint64_t h, size_t name_off);
/* fdn__evs_sym_intern past its cache: the table, then a new entry; *cache gets the entry. */
int fdn__evs_sym_intern_slow(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s, size_t n,
                             bool cap, evs_sym_t **cache, evs_sym_t **out) FDN_REQUIRES(es->amu);
/* The entry of a type (tp == &es->types) or node name (tp == &es->nodes), added when new.
 * With cap set, a new type is refused while max_types types are live. Caller holds amu.
 * Returns 0, FDN_ENOMEM or FDN_ENOSPC (the cap; nothing added). Inline: the writer's cache
 * answers most calls of the append path. */
static inline int fdn__evs_sym_intern(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s,
                                      size_t n, bool cap, evs_sym_t **out) FDN_REQUIRES(es->amu)
{
    evs_sym_t **cache =
        tp == &es->types ? &es->type_cache[fdn__evs_name_mix(s, n)] : &es->last_node;
    evs_sym_t *c = *cache;
    if (FDN_LIKELY(c != NULL && c->len == n && fdn__bytes_eq(c->name, s, n))) {
        *out = c;
        return 0;
    }
    return fdn__evs_sym_intern_slow(es, tp, s, n, cap, cache, out);
}
/* Remove a type entry that holds no event (count 0) and free it, its posting chunks and
 * directory. under_plock: the caller holds plock (write), so no reader can hold the entry
 * and it is freed at once; else (amu only: a batch that failed after adding the type) it
 * is retired, or left for the next prune when retiring fails. Caller holds amu. */
void fdn__evs_type_remove(fdn_events_t *es, evs_sym_t *s, bool under_plock) FDN_REQUIRES(es->amu);
/* fdn__evs_corr_intern past its one-entry cache. */
int fdn__evs_corr_intern_slow(fdn_events_t *es, const char *s, size_t n, evs_corr_t **out)
    FDN_REQUIRES(es->amu);
/* The entry of a correlation id, added when new. Caller holds amu. Returns 0 or
 * FDN_ENOMEM. */
static inline int fdn__evs_corr_intern(fdn_events_t *es, const char *s, size_t n, evs_corr_t **out)
    FDN_REQUIRES(es->amu)
{
    evs_corr_t *lc = es->last_corr;
    if (FDN_LIKELY(lc != NULL && lc->len == n && fdn__bytes_eq(lc->name, s, n))) {
        *out = lc;
        return 0;
    }
    return fdn__evs_corr_intern_slow(es, s, n, out);
}
/* Remove a correlation entry whose events are all pruned (or that a failed batch added:
 * last_id 0). under_plock: the caller holds plock (write), the entry is freed at once; else it
 * is retired, and false is returned (nothing changed) when that needs memory there is not.
 * Caller holds amu. */
bool fdn__evs_corr_remove(fdn_events_t *es, evs_corr_t *c, bool under_plock) FDN_REQUIRES(es->amu);
/* After a prune (plock write and amu held): the node and correlation tables rebuilt smaller
 * when at most an eighth of their slots hold live entries (the old one freed at once). */
void fdn__evs_tabs_shrink(fdn_events_t *es) FDN_REQUIRES(es->amu);
/* Remove a node name entry whose events are all pruned (count 0), as fdn__evs_corr_remove. */
bool fdn__evs_node_remove(fdn_events_t *es, evs_sym_t *s, bool under_plock) FDN_REQUIRES(es->amu);

/* ---- query engine (event_query.c) ---- */

/* Encode ids [from, to] that are still held into rb (its n records; takes plock read, as
 * a copy would: no record is freed under it, and lets it go between every 64 records: a
 * prune between them makes the later ids missing, as for a copy taken after it). 0,
 * FDN_ENOMEM, FDN_ESERIALIZE. */
int fdn__evs_encode_range(fdn_events_t *es, uint64_t from, uint64_t to, unsigned flags,
                          evs_recbuf_t *rb);
/* Query core: *snap receives the published id the query saw. off: NULL, or on a shared
 * backend the store's clock offset the read took once (fdn__evs_clock_offset): then time bounds
 * compare each record's wall time with fdn__evs_wall_bounds(q, *off), and every event listed
 * gets the timestamp fdn__evs_rebuilt_ts(wall, *off), as the backend's reads give. */
int fdn__evs_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit, const int64_t *off,
                   fdn_event_list_t **out, uint64_t *snap);
/* Lists a query's result is compared with (fdn_events_query_same): `which` is set to the
 * index of the first one equal to the result (fdn_event_equal, one for one, in order), and
 * then no list is made; SIZE_MAX (and a list) when none is. */
typedef struct evs_same {
    const fdn_event_list_t *const *prev;
    size_t n;
    size_t which;
} evs_same_t;
/* fdn__evs_query, comparing the matches with same's lists in place (under plock, before any
 * copy) when same is not NULL: *out is set only when none is equal. */
int fdn__evs_query_same(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        const int64_t *off, evs_same_t *same, fdn_event_list_t **out,
                        uint64_t *snap);
/* Whether l holds exactly the events of m (fdn_event_equal, one for one). */
bool fdn__evs_lists_equal(const fdn_event_list_t *l, const fdn_event_list_t *m);

/* ---- service (event_service.c) ---- */

/* ---- shared backend (event_shared.c): ids from the backend, memory as its cache ---- */

/* Open the backend of o (PostgreSQL) and start memory at its head. 0, FDN_ENOTSUP (not
 * built), or the backend's code. es->sh is set even on failure (fdn__evs_shared_free). */
int fdn__evs_shared_open(fdn_events_t *es, const fdn_events_opts_t *o, fdn_error_t *err);
/* Start / stop (draining queued stores) the writer and follower threads. */
int fdn__evs_shared_start(fdn_events_t *es);
void fdn__evs_shared_stop(fdn_events_t *es);
/* Stop, close the backend, free (destroy). */
void fdn__evs_shared_free(fdn_events_t *es);
/* Store n events through the writer; returns after the commit with their positions in ids
 * (may be NULL). 0, FDN_EUNAVAILABLE, FDN_EIO, FDN_ETOO_LARGE, FDN_ENOMEM. */
int fdn__evs_shared_store(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids);
/* Queue n events (copied) for the writer and return at once: 0 (queued), FDN_EUNAVAILABLE
 * (stopped), FDN_ENOMEM; nothing is queued on an error. Once queued, the writer runs
 * cb(rc, first, n, user) exactly once, with no store lock held, in queue order: after the
 * commit (first = the first position), after the spool took the batch (first 0), or with the
 * error; it first subtracts n from es->aq_events (the caller reserved them). */
int fdn__evs_shared_store_async(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                fdn_events_stored_cb cb, void *user);
/* get from the backend (an id outside memory); off: the read's clock offset (its timestamp
 * fdn__evs_rebuilt_ts(wall, off)). */
int fdn__evs_shared_get(fdn_events_t *es, uint64_t id, int64_t off, fdn_event_t **out);
/* A query the memory tier cannot answer alone runs in the backend (*handled = true), its time
 * bounds and timestamps both from off (the read's clock offset); *handled = false: memory
 * answers. */
int fdn__evs_shared_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit, int64_t off,
                          fdn_event_list_t **out, bool *handled);
/* Every event of a correlation id, from the backend. */
int fdn__evs_shared_correlation(fdn_events_t *es, const char *cid, fdn_event_list_t **out);
/* Up to max events with after < id < before (and the filters) from the backend, in id order:
 * the catch-up of a from-position subscription behind the memory tier; timestamps from off. */
int fdn__evs_shared_page(fdn_events_t *es, const char *type, const char *cid, uint64_t after,
                         uint64_t before, size_t max, int64_t off, fdn_event_list_t **out);
/* The backend query of such a catch-up page (fdn__evs_shared_page, fdn__evs_disk_page): up to
 * max events of type and cid (NULL: any) with after < id < before, oldest first, any wall
 * time. */
static inline fdn__evb_query_t fdn__evs_page_query(const char *type, const char *cid,
                                                   uint64_t after, uint64_t before, size_t max)
{
    fdn__evb_query_t q = {.type = type,
                          .correlation_id = cid,
                          .wall_start = INT64_MIN,
                          .wall_end = INT64_MAX,
                          .after = after,
                          .before = before,
                          .limit = max,
                          .descending = false};
    return q;
}

/* ---- the durable tier (event_disk.c) ---- */

/* A list holding copies of n events. 0 or FDN_ENOMEM. */
int fdn__event_list_build(const fdn_event_t *const *evs, size_t n, fdn_event_list_t **out);
/* Whether the file (write-behind) may hold events below the memory tier's first id. */
bool fdn__evs_disk_behind(fdn_events_t *es);
/* The catch-up of a from-position subscription behind the memory tier of a write-behind
 * store: up to max events with after < id < before (and the filters) from the file, in id
 * order. *skipped: ids after `after` the file's retention already deleted (a count of ids,
 * filters aside), which the page steps over. An empty page when the store has no file;
 * FDN_EUNAVAILABLE when the file is closed (the store stopped): no page. */
int fdn__evs_disk_page(fdn_events_t *es, const char *type, const char *cid, uint64_t after,
                       uint64_t before, size_t max, fdn_event_list_t **out, uint64_t *skipped);
/* fdn_events_prune_before's scan of the file (event_disk.c, the one durable retention's age
 * cut uses): the end of the longest prefix of the ids in [lo, hi) whose events are all older
 * than ts by the timestamp a read reports (made with the clock offset off), into *out; *ended
 * true when *out is the first event that is not older, or hi; false when the scan stopped at
 * its bound of ids for one call (call again from *out). Caller holds dmu, which is released
 * between reads; FDN_EUNAVAILABLE when the file is closed (the store stopped), or a read's
 * error. */
int fdn__evs_disk_old_prefix(fdn_events_t *es, uint64_t lo, uint64_t hi, int64_t ts, int64_t off,
                             uint64_t *out, bool *ended) FDN_REQUIRES(es->dmu);
/* An id below the memory tier from the file: 0, FDN_ENOENT, FDN_EIO, FDN_ECORRUPT,
 * FDN_EUNAVAILABLE (the file is closed: the store stopped). */
int fdn__evs_disk_get(fdn_events_t *es, uint64_t id, fdn_event_t **out);
/* A query whose range reaches below the memory tier: memory and file merged (*handled);
 * *handled = false: memory answers alone. With same (may be NULL), as fdn__evs_query_same:
 * when the merged result equals one of its lists, same->which says which and *out is not
 * set (compared in place when the file holds none of the result). */
int fdn__evs_disk_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        evs_same_t *same, fdn_event_list_t **out, bool *handled);
/* Test hook: called by fdn_events_query (and fdn_events_query_same, and
 * fdn_events_get_by_correlation) once it has decided that the memory tier answers a read on a
 * store with a file or a shared backend, before memory's scan, with no lock held (NULL: none).
 * Set before the store is used, from one thread. */
extern void (*fdn__evs_query_check_hook)(fdn_events_t *es, void *user);
extern void *fdn__evs_query_check_user;
/* Test hook: called by a read of the file's part of a merged read (event_disk.c: queries,
 * correlation lookups, catch-up pages) and by a get of an id only the file may hold, before
 * the file is read, with no lock held (NULL: none). Set before the store is used, from one
 * thread. */
extern void (*fdn__evs_disk_read_hook)(fdn_events_t *es, void *user);
extern void *fdn__evs_disk_read_user;
/* Every event of a correlation id, from the file and memory (*handled as above). */
int fdn__evs_disk_correlation(fdn_events_t *es, const char *cid, fdn_event_list_t **out,
                              bool *handled);
/* Free the correlation memo (event_disk.c; destroy). */
void fdn__evs_corr_memo_free(fdn_events_t *es);
/* The durable tier's retention once; returns how many events it deleted there. */
uint64_t fdn__evs_durable_retention(fdn_events_t *es);

/* A guard around the calls on a shared backend: a circuit breaker, set by a higher layer
 * (src/infra/event_breaker.c: fdn_events_set_breaker), since this layer cannot call it.
 * admit: 0 (the call may go; *permit filled) or < 0 (refused: the store fails it at once);
 * record: the call's outcome (0 success, < 0 the engine failed); state: fdn_breaker_state_t
 * and *retry_ms (ms until a call is let through while open, else -1). */
typedef struct fdn__evs_guard_ops {
    int (*admit)(void *g, uint64_t permit[2]);
    void (*record)(void *g, const uint64_t permit[2], int rc);
    int (*state)(void *g, int64_t *retry_ms);
} fdn__evs_guard_ops_t;
/* Set (ops NULL: remove) the guard of a store on a shared backend; FDN_EINVAL otherwise
 * ignored: a store on SQLite has nothing to guard (returns 0). Returns once every call the
 * old guard admitted has reported to it; FDN_EBUSY (nothing changed) when called from one of
 * those calls (the guard's own callbacks), which it would wait for. */
int fdn__evs_set_guard(fdn_events_t *es, const fdn__evs_guard_ops_t *ops, void *g);
/* fdn_events_backend_status for a shared backend. */
void fdn__evs_shared_status(fdn_events_t *es, fdn_events_backend_status_t *out);

/* The store's telemetry for one report, in a pass of es->tm_gate: NULL (no telemetry, and
 * no pass to leave), or the telemetry, to be used until fdn__evs_tm_leave(p), which must
 * follow on this thread (p stays where it is meanwhile). Without telemetry it costs one
 * load: a report that saw none uses nothing fdn__events_set_telemetry must wait for. */
static inline fdn_telemetry_t *fdn__evs_tm_enter(fdn_events_t *es, fdn__gate_pass_t *p)
{
    if (atomic_load_explicit(&es->tm, memory_order_acquire) == NULL)
        return NULL;
    fdn__gate_enter(&es->tm_gate, p);
    fdn_telemetry_t *tm = atomic_load_explicit(&es->tm, memory_order_acquire);
    if (tm == NULL)
        fdn__gate_leave(p);
    return tm;
}

static inline void fdn__evs_tm_leave(fdn__gate_pass_t *p)
{
    fdn__gate_leave(p);
}
/* A shared backend's store forgets what it resolved in a telemetry it no longer reports into
 * (fdn__events_set_telemetry, once no report uses it). */
void fdn__evs_shared_tm_changed(fdn_events_t *es);

/* Called after a successful append (outside amu). */
int fdn__evs_after_append(fdn_events_t *es, uint64_t last_id);
/* Subscriptions (event_subs.c): start and stop the delivery thread (start/stop of the
 * service), and end every subscription still open (destroy). */
int fdn__evs_deliverer_start(fdn_events_t *es);
void fdn__evs_deliverer_stop(fdn_events_t *es);
/* True when called on es's delivery thread (from a subscription's callback). */
bool fdn__evs_on_delivery_thread(const fdn_events_t *es);
/* True when called on one of es's own threads that its stop joins: the delivery thread, the
 * writer (a shared backend's writer and follower too), the pruner (from a subscription's callback,
 * or a telemetry handler of a count they emit). (The runtime: a shutdown or an add from there must
 * not wait for that stop.) */
bool fdn__events_on_own_thread(const fdn_events_t *es);
/* True when called on the writer or the follower of es on a shared backend (event_shared.c). */
bool fdn__evs_shared_on_thread(const fdn_events_t *es);
void fdn__evs_subs_free_all(fdn_events_t *es);
/* Wake the delivery thread for the batch ending at last_id, when it (or a later one)
 * matched some subscription and the thread waits. */
void fdn__evs_notify_subs(fdn_events_t *es, uint64_t last_id);
/* Resolve t->sub_hit for the current subscription set (writer). */
void fdn__evs_sub_type_hit(fdn_events_t *es, evs_sym_t *t) FDN_REQUIRES(es->amu);
/* Mark the filtered subscriptions the event (type t, correlation c, id id) matches as having
 * events up to last (the batch's last id); returns whether any matched (writer). */
bool fdn__evs_sub_match(fdn_events_t *es, const evs_sym_t *t, const evs_corr_t *c, uint64_t id,
                        uint64_t last) FDN_REQUIRES(es->amu);
/* Queue w, an asynchronous store whose last event is last_id, for the writer's
 * acknowledgement. Caller holds amu (so the queue stays in id order). Returns 1 (queued: the
 * writer runs its callback), 0 (acknowledged already: the caller runs it; a memory store, or
 * fast mode within fast_queue_max, never durable mode) or the writer's latched error (not
 * queued). */
int fdn__evs_async_queue(fdn_events_t *es, evs_async_t *w, uint64_t last_id) FDN_REQUIRES(es->amu);
/* Test hook: called by fdn__evs_async_queue on a store with a durable_path (amu held, wmu
 * not) with the store's last id (NULL: none). Set before the store is used, from one thread. */
extern void (*fdn__evs_async_queue_hook)(fdn_events_t *es, uint64_t last_id);

#endif
