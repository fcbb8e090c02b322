/*
 * DESIGN: the event store's memory tier: append (fdn_events_store, fdn_events_store_batch),
 * segments and records, posting lists, prune, statistics. The intern tables are in
 * event_intern.c, the query engine in event_query.c, lifecycle, the durable writer,
 * retention in event_service.c, subscriptions in event_subs.c; event_store_int.h holds what they
 * share.
 *
 * Layout. Events live in segments: each segment holds up to 4096 consecutive ids, their
 * records packed in one arena (record = fixed header + data) and a table of arena offsets,
 * so id -> record is a binary search over the segment directory plus an index. Ids are
 * dense (ids are assigned only to events that are stored), and time order equals id order
 * (a timestamp earlier than the newest one is raised to it, and one more than 1 s past the
 * store's clock is lowered to the clock's now, so that raise never goes past the clock:
 * ts_bound; wall times, which callers give and the wall clock steps, are not in id order,
 * and nothing searches on them), so a time bound is a binary
 * search over ids. Indexes: per type a posting list of ids (chunked array, binary search
 * for cursors and time bounds); per correlation id an entry holding its newest id, each
 * record linking to the previous id of its correlation (walked newest first); names (types,
 * nodes, correlation ids) are interned in open-addressing tables (event_intern.c).
 * Arenas larger than 64 KB are faulted in 256 KB ahead of the writes (arena_ready), and a
 * prune keeps up to two large freed segments for reuse (seg_release).
 *
 * Threads and locks (order: plock -> amu -> wmu):
 *  - Writers serialise on `amu` (a short critical section: intern, copy the record, append
 *    to the postings) and publish the newest id with a release store of `published`.
 *    Memory needed by a batch is reserved before anything is published, so a batch is all
 *    or nothing.
 *  - Readers take `plock` for reading only (never amu): they load `published` (acquire)
 *    and ignore every id above it, so each reader sees a consistent prefix. Structures that
 *    grow (directories, hash tables) are replaced, never moved in place; the old copies are
 *    "retired" and freed only when no reader can hold them (under plock for writing).
 *  - Pruning takes plock for writing and amu: it cuts a prefix of ids, frees dead segments,
 *    posting chunks, the correlation entries, node names and types whose last event went,
 *    and retired memory. Live types are capped (max_types): a client's store adding a type past the
 * cap is refused with FDN_ENOSPC, after one retention run when retention is due. Invariants:
 * first_id <= published + 1; every id in [first_id, published] has a record; posting lists and
 * correlation chains hold only ids in that range once published.
 */
#include <fdn/events.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "services/event_store_int.h"

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)
#define REC_HDR   offsetof(evs_rec_t, data)
#define ARENA_MIN (64u * 1024u)
#define ARENA_MAX (4u * 1024u * 1024u)

int fdn__evs_retire_reserve(fdn_events_t *es, size_t k)
{
    if (es->nretired + k <= es->capretired)
        return 0;
    size_t nc = es->capretired ? es->capretired * 2 : 16;
    while (nc < es->nretired + k)
        nc *= 2;
    void **n = fdn__realloc(es->retired, nc * sizeof(void *));
    if (n == NULL)
        return FDN_ENOMEM;
    es->retired = n;
    es->capretired = nc;
    return 0;
}

/* Remember p to free once no reader can hold it. Caller holds amu. */
int fdn__evs_retire(fdn_events_t *es, void *p)
{
    if (fdn__evs_retire_reserve(es, 1) != 0)
        return FDN_ENOMEM;
    es->retired[es->nretired++] = p;
    return 0;
}

/* ---- posting lists ---- */

#define PCHUNK0_MIN 8u /* entries of a new type's first chunk */

/* Grow global chunk 0 to hold need entries: a larger copy replaces it, in a new directory
 * (a reader keeps the directory and chunk it loaded; both are retired). Readers load n
 * before dir, and the writer publishes n after this, so a reader that sees an entry written
 * into the copy also sees the copy. */
static int post_grow0(fdn_events_t *es, evs_posting_t *p, size_t need) FDN_REQUIRES(es->amu)
{
    size_t nc = p->cap0 * 2;
    while (nc < need && nc < EVS_PCHUNK)
        nc *= 2;
    uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
    uint64_t *c = fdn__malloc(nc * sizeof(uint64_t));
    uint64_t **nd = fdn__calloc(p->dir_cap, sizeof(uint64_t *));
    if (c == NULL || nd == NULL || fdn__evs_retire_reserve(es, 2) != 0) {
        fdn__free(c);
        fdn__free(nd);
        return FDN_ENOMEM;
    }
    memcpy(c, dir[0], atomic_load_explicit(&p->n, memory_order_relaxed) * sizeof(uint64_t));
    memcpy(nd, dir, p->nchunks * sizeof(uint64_t *));
    nd[0] = c;
    (void)fdn__evs_retire(es, dir[0]); /* reserved above */
    (void)fdn__evs_retire(es, dir);
    fdn__evs_account(es, (int64_t)((nc - p->cap0) * sizeof(uint64_t)));
    p->cap0 = nc;
    atomic_store_explicit(&p->dir, nd, memory_order_release);
    return 0;
}

/* post_reserve past its test: allocate the chunks (or the larger chunk 0) n + resv entries
 * need, then note the new room. */
static FDN_NOINLINE int post_grow(fdn_events_t *es, evs_posting_t *p) FDN_REQUIRES(es->amu)
{
    size_t need = atomic_load_explicit(&p->n, memory_order_relaxed) + p->resv;
    if (p->base_chunk == 0 && p->nchunks > 0 && p->cap0 < EVS_PCHUNK && need > p->cap0) {
        int rc = post_grow0(es, p, need);
        if (rc != 0)
            return rc;
    }
    size_t chunks = (need + EVS_PCHUNK - 1) / EVS_PCHUNK - p->base_chunk;
    while (p->nchunks < chunks) {
        uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
        if (p->nchunks == p->dir_cap) {
            size_t nc = p->dir_cap ? p->dir_cap * 2 : 4;
            uint64_t **nd = fdn__calloc(nc, sizeof(uint64_t *));
            if (nd == NULL)
                return FDN_ENOMEM;
            if (dir != NULL && fdn__evs_retire(es, dir) != 0) {
                fdn__free(nd);
                return FDN_ENOMEM;
            }
            if (dir != NULL)
                memcpy(nd, dir, p->nchunks * sizeof(uint64_t *));
            fdn__evs_account(es, (int64_t)((nc - p->dir_cap) * sizeof(uint64_t *)));
            p->dir_cap = nc;
            atomic_store_explicit(&p->dir, nd, memory_order_release);
            dir = nd;
        }
        size_t cap = EVS_PCHUNK;
        if (p->base_chunk + p->nchunks == 0) { /* a new type: start small */
            cap = PCHUNK0_MIN;
            while (cap < need && cap < EVS_PCHUNK)
                cap *= 2;
        }
        uint64_t *c = fdn__malloc(cap * sizeof(uint64_t));
        if (c == NULL)
            return FDN_ENOMEM;
        if (p->base_chunk + p->nchunks == 0)
            p->cap0 = cap;
        fdn__evs_account(es, (int64_t)(cap * sizeof(uint64_t)));
        dir[p->nchunks++] = c;
    }
    p->room =
        p->base_chunk == 0 && p->nchunks == 1 ? p->cap0 : (p->base_chunk + p->nchunks) * EVS_PCHUNK;
    return 0;
}

/* Ensure room for n + resv entries (writer): one compare while the allocated chunks hold
 * them. */
static inline int post_reserve(fdn_events_t *es, evs_posting_t *p) FDN_REQUIRES(es->amu)
{
    if (FDN_LIKELY(atomic_load_explicit(&p->n, memory_order_relaxed) + p->resv <= p->room))
        return 0;
    return post_grow(es, p);
}

/* ---- segments ---- */

static size_t rec_size(size_t data_len)
{
    return ALIGN8(REC_HDR + data_len);
}

/* A store with retention frees whole segments as it prunes and allocates new ones as it
 * appends, each a fresh large block whose pages fault in again. Up to EVS_SPARE_SEGS large
 * segments freed by a prune are kept instead and reused by the next appends that want an
 * arena of about their size (between half of it and all of it). A kept segment stays in the
 * store's bytes_allocated, and the number kept is bounded, so the memory a store holds is
 * at most EVS_SPARE_SEGS segments more than its live events need. */

static evs_seg_t *seg_spare_take(fdn_events_t *es, size_t arena) FDN_REQUIRES(es->amu)
{
    for (size_t i = 0; i < es->nspare; i++) {
        evs_seg_t *s = es->spare_seg[i];
        if (s->arena_cap >= arena && s->arena_cap / 2 <= arena) {
            es->spare_seg[i] = es->spare_seg[--es->nspare];
            s->first_id = 0;
            atomic_store_explicit(&s->count, 0, memory_order_relaxed);
            s->arena_used = 0; /* arena_ready stays: those pages are resident */
            return s;
        }
    }
    return NULL;
}

static evs_seg_t *seg_new(fdn_events_t *es, size_t arena) FDN_REQUIRES(es->amu)
{
    evs_seg_t *s = seg_spare_take(es, arena);
    if (s != NULL)
        return s;
    s = fdn__malloc(sizeof(*s) + arena);
    if (s == NULL)
        return NULL;
    s->first_id = 0;
    atomic_init(&s->count, 0);
    s->arena_cap = arena;
    s->arena_used = 0;
    /* a small arena (a store with few events) is left to fault in page by page: only the
     * pages it uses become resident */
    s->arena_ready = arena > ARENA_MIN ? 0 : arena;
    s->arena = (uint8_t *)(s + 1);
    fdn__evs_account(es, (int64_t)(sizeof(*s) + arena));
    return s;
}

/* Fault in the next window of a large arena before the append writes into it: one
 * MADV_POPULATE_WRITE call (Linux 5.14) maps ARENA_AHEAD bytes at once, where the writes
 * would take one page fault per 4 KB page (expensive under virtualisation: ~40% of a memory
 * append's time was the fault path). Only the window ahead of the writes is made resident,
 * so memory follows use as before. A kernel without it (EINVAL) or any other failure just
 * leaves the pages to fault in as they are written; the call is not tried again. */
#define ARENA_AHEAD (256u * 1024u)

#ifdef MADV_POPULATE_WRITE
static _Atomic int populate_off; /* 1: the kernel refused MADV_POPULATE_WRITE */

static void arena_ready(evs_seg_t *s, size_t end)
{
    if (FDN_LIKELY(end <= s->arena_ready))
        return;
    size_t to = FDN_MIN(FDN_MAX(end, s->arena_ready + ARENA_AHEAD), s->arena_cap);
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    /* the first window also takes the segment's header (its table of offsets) */
    uintptr_t a =
        (s->arena_ready == 0 ? (uintptr_t)s : (uintptr_t)(s->arena + s->arena_ready)) & ~(pg - 1);
    uintptr_t b = ((uintptr_t)(s->arena + to) + pg - 1) & ~(pg - 1);
    s->arena_ready = to;
    if (atomic_load_explicit(&populate_off, memory_order_relaxed))
        return;
    /* [a, b) lies in pages that hold bytes of the segment: mapped, and ours to write */
    int saved = errno;
    if (madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        atomic_store_explicit(&populate_off, 1, memory_order_relaxed);
    errno = saved;
}
#else
static void arena_ready(evs_seg_t *s, size_t end)
{
    (void)s;
    (void)end;
}
#endif

static void seg_free(fdn_events_t *es, evs_seg_t *s)
{
    fdn__evs_account(es, -(int64_t)(sizeof(*s) + s->arena_cap));
    fdn__free(s);
}

/* A segment a prune removed (plock write: no reader holds it): kept as a spare when large
 * and there is room, else freed. Caller holds amu. */
static void seg_release(fdn_events_t *es, evs_seg_t *s) FDN_REQUIRES(es->amu)
{
    if (s->arena_cap > ARENA_MIN && es->nspare < EVS_SPARE_SEGS) {
        es->spare_seg[es->nspare++] = s;
        return;
    }
    seg_free(es, s);
}

static size_t next_arena_size(fdn_events_t *es, size_t need)
{
    uint64_t cnt = atomic_load_explicit(&es->count, memory_order_relaxed);
    size_t want = ARENA_MIN;
    if (cnt >= 64) {
        uint64_t avg = atomic_load_explicit(&es->bytes, memory_order_relaxed) / cnt;
        uint64_t w = avg * EVS_SEG_EVENTS + avg * EVS_SEG_EVENTS / 64;
        want = (size_t)FDN_MIN(FDN_MAX(w, (uint64_t)ARENA_MIN), (uint64_t)ARENA_MAX);
    }
    return FDN_MAX(want, need);
}

/* Room in the segment directory for want segments: a larger copy replaces a full one (a
 * reader keeps the copy it loaded; the old one is retired). */
static int segdir_reserve(fdn_events_t *es, size_t want) FDN_REQUIRES(es->amu)
{
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
    if (d != NULL && want <= d->cap)
        return 0;
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    size_t nc = d ? d->cap * 2 : 16;
    while (want > nc)
        nc *= 2;
    evs_segdir_t *nd = fdn__malloc(sizeof(*nd) + nc * sizeof(evs_segent_t));
    if (nd == NULL || (d != NULL && fdn__evs_retire(es, d) != 0)) {
        fdn__free(nd);
        return FDN_ENOMEM;
    }
    nd->cap = nc;
    if (d != NULL)
        memcpy(nd->segs, d->segs, n * sizeof(evs_segent_t));
    fdn__evs_account(es, (int64_t)((nc - (d ? d->cap : 0)) * sizeof(evs_segent_t)));
    atomic_store_explicit(&es->segdir, nd, memory_order_release);
    return 0;
}

/* Add s to the directory, in room segdir_reserve made. */
static void segdir_push(fdn_events_t *es, evs_seg_t *s) FDN_REQUIRES(es->amu)
{
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    d->segs[n].first_id = s->first_id;
    d->segs[n].seg = s;
    atomic_store_explicit(&es->seg_n, n + 1, memory_order_release);
}

/* ---- init / fini ---- */

int fdn__evs_init(fdn_events_t *es)
{
    int rc = fdn__evs_intern_init(es);
    if (rc != 0)
        return rc;
    atomic_init(&es->segdir, NULL);
    atomic_init(&es->seg_head, 0);
    atomic_init(&es->seg_n, 0);
    atomic_init(&es->published, 0);
    atomic_init(&es->first_id, 1);
    es->next_id = 1;
    es->last_ts = INT64_MIN;
    es->ts_ceiling = INT64_MIN; /* the first append reads the clock */
    atomic_init(&es->max_types, FDN_EVENTS_MAX_TYPES_DEFAULT);
    return 0;
}

void fdn__evs_fini(fdn_events_t *es)
{
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    for (size_t i = atomic_load_explicit(&es->seg_head, memory_order_relaxed); i < n; i++)
        fdn__free(d->segs[i].seg);
    fdn__free(d);
    for (size_t i = 0; i < es->nspare; i++)
        fdn__free(es->spare_seg[i]);
    fdn__evs_intern_fini(es);
    for (size_t i = 0; i < es->nretired; i++)
        fdn__free(es->retired[i]);
    fdn__free(es->retired);
}

/* ---- append ---- */

typedef struct prep {
    evs_sym_t *type;
    evs_sym_t *node;
    evs_corr_t *corr;
} prep_t;

static int append_locked(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids,
                         bool cap_types) FDN_REQUIRES(es->amu);

int fdn__evs_append_locked(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids)
    FDN_REQUIRES(es->amu)
{
    return append_locked(es, evs, n, ids, false);
}

/* Series of fdn_events_appended_by_type_total: a type's series outlives the type (a counter
 * series never disappears while the process lives, and a type released with its last event
 * may come back), so series are bounded by this cap, not by storage.hot.max_types: the first
 * TYPE_SERIES types seen get their own series, later ones count in type="__overflow__" (and
 * in fdn_telemetry_series_dropped_total{family}). The sum over types stays exact. */
#define TYPE_SERIES 256

/* The appended counter of type t (writer, under amu). Resolved once per type entry and
 * telemetry generation (a search under the telemetry mutex: amu -> telemetry mutex, which
 * never waits for amu); after that one load and compare per event. NULL without telemetry.
 * Not in a pass of tm_gate: the counter is used under amu, and fdn__events_set_telemetry
 * takes amu once after its change, so no append still uses the old telemetry's counter
 * when it returns. */
static fdn_counter_t *type_counter(fdn_events_t *es, evs_sym_t *t) FDN_REQUIRES(es->amu)
{
    uint64_t gen = atomic_load_explicit(&es->tm_gen, memory_order_acquire);
    if (FDN_LIKELY(t->appended_gen == gen))
        return t->appended;
    fdn_telemetry_t *tm = atomic_load_explicit(&es->tm, memory_order_acquire);
    if (es->by_type_gen != gen) {
        static const char *const label[] = {"type"};
        es->by_type = NULL;
        es->by_type_gen = gen;
        if (tm != NULL &&
            fdn_telemetry_family(tm, &es->by_type, "fdn_events_appended_by_type_total",
                                 "Events appended to the event store, by event type (the first "
                                 "256 types seen; later types count in type=\"__overflow__\").",
                                 FDN_TELEMETRY_COUNTER, label, 1, TYPE_SERIES) != 0)
            es->by_type = NULL;
    }
    t->appended = NULL;
    t->appended_gen = gen;
    const char *v[] = {t->name};
    if (es->by_type != NULL)
        (void)fdn_telemetry_family_counter(es->by_type, &t->appended, v, 1);
    return t->appended;
}

/* Mark the filtered subscriptions the batch's events (ids first..) match; whether any did
 * (event_subs.c: "Subscriptions and the append path"). A type no filter names costs one
 * compare per event. Out of line: the append path without filtered subscriptions does not
 * carry it. */
static FDN_NOINLINE bool subs_match(fdn_events_t *es, const prep_t *pr, size_t n, uint64_t first)
    FDN_REQUIRES(es->amu)
{
    bool wake = false;
    uint64_t last = first + n - 1;
    for (size_t i = 0; i < n; i++) {
        evs_sym_t *t = pr[i].type;
        if (t->sub_gen != es->sub_gen)
            fdn__evs_sub_type_hit(es, t);
        if (t->sub_hit || (es->sub_corr != 0 && pr[i].corr != NULL))
            wake |= fdn__evs_sub_match(es, t, pr[i].corr, first + i, last);
    }
    return wake;
}

/* The segment the next id can go into: the newest one, when it ends right below next_id
 * (NULL when there is none, or when ids jumped past it: the next id starts a segment). */
static evs_seg_t *seg_tail(fdn_events_t *es) FDN_REQUIRES(es->amu)
{
    size_t sn = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    if (sn == atomic_load_explicit(&es->seg_head, memory_order_relaxed))
        return NULL;
    evs_seg_t *s = atomic_load_explicit(&es->segdir, memory_order_relaxed)->segs[sn - 1].seg;
    return s->first_id + atomic_load_explicit(&s->count, memory_order_relaxed) == es->next_id
               ? s
               : NULL;
}

/* Whether segment s, holding cnt records in used bytes, takes a record of sz bytes more. Both
 * passes of append_locked ask it, so the second puts each record where the first made room. */
static inline bool seg_takes(const evs_seg_t *s, size_t cnt, size_t used, size_t sz)
{
    return s != NULL && cnt < EVS_SEG_EVENTS && used + sz <= s->arena_cap;
}

/* How far past the store's clock a timestamp may be. The clamp raises every later event to
 * the newest timestamp, so one far in the future (a caller's timestamp_ns, or another clock's)
 * would stamp every later event with it: memory's retention by age would keep them all, and
 * time bounds around now would find none. So a timestamp more than TS_AHEAD_NS past the
 * store's clock is stored as the clock's now. The clock is read only for a timestamp past
 * ts_ceiling (the last reading + TS_AHEAD_NS): once per batch of fresh events at most, about
 * once a second on a busy store; every timestamp stored is at most TS_AHEAD_NS past the clock
 * as it was then. */
#define TS_AHEAD_NS 1000000000

/* ts (past ts_ceiling) as stored: itself if within TS_AHEAD_NS of the clock's now, else now
 * (never below last_ts: the clamp's order holds). */
static FDN_NOINLINE int64_t ts_bound(fdn_events_t *es, int64_t ts) FDN_REQUIRES(es->amu)
{
    int64_t now = fdn_clock_mono_ns(es->clock);
    int64_t lim = fdn__evs_sat_add(now, TS_AHEAD_NS);
    if (lim > es->ts_ceiling)
        es->ts_ceiling = lim;
    if (ts <= es->ts_ceiling)
        return ts;
    return FDN_MAX(now, es->last_ts);
}

/* Append a batch in two passes: the first reserves everything (names interned, posting room,
 * new segments and directory room) and can fail, undoing its reservations; the second writes
 * the records and cannot fail; then one release store of published shows the whole batch.
 * A batch of one event (most stores) takes the same steps without their batch set-up: its
 * prep entry is on the stack, and a batch that fits in the newest segment allocates nothing.
 * Expanded in append_locked twice, for n == 1 and for any n: the compiler drops the loops and
 * the batch-only branches from the first. */
static FDN_ALWAYS_INLINE int append_run(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                        uint64_t *ids, bool cap_types) FDN_REQUIRES(es->amu)
{
    prep_t one[1] = {{NULL, NULL, NULL}};
    /* zeroed: the rollback below reads every entry, also those the loop did not reach */
    prep_t *pr = n == 1 ? one : fdn__calloc(n, sizeof(prep_t));
    evs_seg_t *spare[8] = {NULL}; /* zeroed for the compiler: pass 2 reads only what pass 1 set */
    evs_seg_t **newsegs = spare;
    size_t nnew = 0, capnew = 8;
    int rc = 0;
    if (pr == NULL)
        return FDN_ENOMEM;
    /* 1. reserve everything the batch needs: every type first, so a batch the type cap
     * refuses interns no other name */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdn_event_t *ev = evs[i];
        rc = fdn__evs_sym_intern(es, &es->types, ev->type, ev->type_len, cap_types, &pr[i].type);
        if (rc == 0) {
            pr[i].type->post.resv++;
            rc = post_reserve(es, &pr[i].type->post);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdn_event_t *ev = evs[i];
        rc = fdn__evs_sym_intern(es, &es->nodes, ev->node, ev->node_len, false, &pr[i].node);
        if (rc == 0 && ev->corr_len > 0)
            rc = fdn__evs_corr_intern(es, ev->corr, ev->corr_len, &pr[i].corr);
    }
    /* the segments: the newest one takes what fits, new ones (in newsegs) the rest */
    evs_seg_t *const tail = seg_tail(es);
    if (rc == 0) {
        evs_seg_t *cur = tail;
        size_t used = cur ? cur->arena_used : 0,
               cnt = cur ? atomic_load_explicit(&cur->count, memory_order_relaxed) : 0;
        for (size_t i = 0; i < n; i++) {
            size_t sz = rec_size(evs[i]->data_len);
            if (seg_takes(cur, cnt, used, sz)) {
                used += sz;
                cnt++;
                continue;
            }
            if (nnew == capnew) {
                evs_seg_t **g = fdn__malloc(capnew * 2 * sizeof(*g));
                if (g == NULL) {
                    rc = FDN_ENOMEM;
                    break;
                }
                memcpy(g, newsegs, nnew * sizeof(*g));
                if (newsegs != spare)
                    fdn__free(newsegs);
                newsegs = g;
                capnew *= 2;
            }
            cur = seg_new(es, next_arena_size(es, sz));
            if (cur == NULL) {
                rc = FDN_ENOMEM;
                break;
            }
            newsegs[nnew++] = cur;
            used = sz;
            cnt = 1;
        }
        if (rc == 0 && nnew > 0)
            rc = segdir_reserve(es, atomic_load_explicit(&es->seg_n, memory_order_relaxed) + nnew);
    }
    if (rc != 0) {
        for (size_t i = 0; i < nnew; i++)
            seg_free(es, newsegs[i]);
        for (size_t i = 0; i < n; i++)
            if (pr[i].type != NULL)
                pr[i].type->post.resv = 0;
        /* names this batch added hold no event: take them out again (types and nodes with
         * count 0, correlation entries with last_id 0; duplicates in pr are skipped once the
         * entry is gone). Refused batches (the type cap) come from clients, over HTTP too:
         * their correlation ids and node names were kept for good before. */
        for (size_t i = 0; i < n; i++) {
            evs_sym_t *t = pr[i].type, *nd = pr[i].node;
            evs_corr_t *c = pr[i].corr;
            for (size_t j = i + 1; j < n; j++) {
                if (t != NULL && pr[j].type == t)
                    pr[j].type = NULL;
                if (nd != NULL && pr[j].node == nd)
                    pr[j].node = NULL;
                if (c != NULL && pr[j].corr == c)
                    pr[j].corr = NULL;
            }
            if (t != NULL && atomic_load_explicit(&t->count, memory_order_relaxed) == 0)
                fdn__evs_type_remove(es, t, false);
            if (nd != NULL && atomic_load_explicit(&nd->count, memory_order_relaxed) == 0)
                (void)fdn__evs_node_remove(es, nd, false);
            if (c != NULL && atomic_load_explicit(&c->last_id, memory_order_relaxed) == 0)
                (void)fdn__evs_corr_remove(es, c, false);
        }
        goto out;
    }
    /* 2. commit (cannot fail): the same walk over the segments as above */
    size_t used_new = 0, total_bytes = 0;
    uint64_t first = es->next_id;
    evs_seg_t *cur = tail;
    uint32_t cnt = cur ? atomic_load_explicit(&cur->count, memory_order_relaxed) : 0;
    for (size_t i = 0; i < n; i++) {
        const fdn_event_t *ev = evs[i];
        uint64_t id = es->next_id++;
        size_t sz = rec_size(ev->data_len);
        if (!seg_takes(cur, cnt, cur ? cur->arena_used : 0, sz)) {
            cur = newsegs[used_new++];
            cur->first_id = id;
            cnt = 0;
            segdir_push(es, cur); /* room reserved above */
        }
        arena_ready(cur, cur->arena_used + sz);
        evs_rec_t *r = (evs_rec_t *)(void *)(cur->arena + cur->arena_used);
        int64_t ts = ev->ts < es->last_ts ? es->last_ts : ev->ts;
        if (FDN_UNLIKELY(ts > es->ts_ceiling))
            ts = ts_bound(es, ts);
        es->last_ts = ts;
        r->ts = ts;
        r->wall = ev->wall;
        r->parent = ev->parent;
        r->type = pr[i].type;
        r->node = pr[i].node;
        r->corr = pr[i].corr;
        r->corr_prev = 0;
        if (r->corr != NULL) {
            uint64_t prev = atomic_load_explicit(&r->corr->last_id, memory_order_relaxed);
            if (prev != 0 && id - prev <= UINT32_MAX)
                r->corr_prev = (uint32_t)(id - prev);
        }
        r->data_len = ev->data_len;
        r->pid = ev->pid;
        r->tid = ev->tid;
        r->ctype = ev->ctype;
        r->more = i + 1 < n;
        if (ev->data_len)
            memcpy(r->data, ev->data, ev->data_len);
        cur->offs[cnt] = (uint32_t)cur->arena_used;
        cur->arena_used += sz;
        atomic_store_explicit(&cur->count, ++cnt, memory_order_release);
        evs_posting_t *p = &pr[i].type->post;
        size_t pi = atomic_load_explicit(&p->n, memory_order_relaxed);
        atomic_load_explicit(
            &p->dir, memory_order_relaxed)[pi / EVS_PCHUNK - p->base_chunk][pi % EVS_PCHUNK] = id;
        atomic_store_explicit(&p->n, pi + 1, memory_order_release);
        p->resv = 0;
        if (r->corr != NULL)
            atomic_store_explicit(&r->corr->last_id, id, memory_order_release);
        size_t bytes = sz + sizeof(uint32_t);
        fdn__evs_amu_add(&pr[i].type->count, 1);
        fdn__evs_amu_add(&pr[i].type->bytes, bytes);
        fdn__evs_amu_add(&pr[i].node->count, 1);
        fdn_counter_t *by_type = type_counter(es, pr[i].type);
        if (by_type != NULL) /* no call without telemetry */
            fdn_counter_inc(by_type);
        total_bytes += bytes;
    }
    fdn__evs_amu_add(&es->count, n);
    fdn__evs_amu_add(&es->bytes, total_bytes);
    fdn__evs_amu_add(&es->stored_total, n);
    /* filtered subscriptions: which of them this batch concerns (nothing to do without any;
     * those without a filter watch published) */
    bool wake = false;
    if (FDN_UNLIKELY(es->fsubs != NULL))
        wake = subs_match(es, pr, n, first);
    atomic_store_explicit(&es->published, es->next_id - 1, memory_order_release);
    if (FDN_UNLIKELY(wake)) /* after published: a delivery thread that sees it sees them */
        atomic_store_explicit(&es->dmark, es->next_id - 1, memory_order_release);
    for (size_t i = 0; ids != NULL && i < n; i++)
        ids[i] = first + i;
out:
    if (newsegs != spare)
        fdn__free(newsegs);
    if (pr != one)
        fdn__free(pr);
    return rc;
}

static int append_locked(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids,
                         bool cap_types) FDN_REQUIRES(es->amu)
{
    if (n == 1) /* the same steps, specialised: most stores are of one event */
        return append_run(es, evs, 1, ids, cap_types);
    return append_run(es, evs, n, ids, cap_types);
}

/* ---- prune ---- */

static void post_prune(fdn_events_t *es, evs_posting_t *p, uint64_t cut)
{
    uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    size_t head = atomic_load_explicit(&p->head, memory_order_relaxed);
    if (dir == NULL)
        return;
    head = fdn__evs_post_lower(p, dir, head, n, cut);
    atomic_store_explicit(&p->head, head, memory_order_relaxed);
    size_t dead = head / EVS_PCHUNK - p->base_chunk;
    if (dead == 0)
        return;
    for (size_t k = 0; k < dead; k++)
        fdn__free(dir[k]);
    memmove(dir, dir + dead, (p->nchunks - dead) * sizeof(uint64_t *));
    p->nchunks -= dead;
    p->base_chunk += dead;
    fdn__evs_account(es, -(int64_t)(dead * EVS_PCHUNK * sizeof(uint64_t)));
}

void (*fdn__evs_prune_step_hook)(fdn_events_t *es, void *user);
void *fdn__evs_prune_step_user;

/* One step of fdn__evs_prune_ids: ids < cut, at most PRUNE_STEP of them, under plock (write)
 * and amu. *more: ids below cut are left for another step. */
static uint64_t prune_step(fdn_events_t *es, uint64_t cut, bool *more)
{
    fdn__rwlock_wrlock(&es->plock);
    fdn__mutex_lock(&es->amu);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_relaxed);
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_relaxed);
    if (cut > pub + 1)
        cut = pub + 1;
    *more = cut > first && cut - first > PRUNE_STEP;
    if (*more)
        cut = first + PRUNE_STEP;
    uint64_t removed = 0;
    if (cut > first) {
        evs_seg_t *hint = NULL;
        for (uint64_t id = first; id < cut; id++) {
            evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                continue;
            size_t bytes = rec_size(r->data_len) + sizeof(uint32_t);
            fdn__evs_amu_add(&r->type->count, (uint64_t)-1);
            fdn__evs_amu_add(&r->type->bytes, -(uint64_t)bytes);
            fdn__evs_amu_add(&es->count, (uint64_t)-1);
            fdn__evs_amu_add(&es->bytes, -(uint64_t)bytes);
            fdn__evs_amu_add(&r->node->count, (uint64_t)-1);
            if (atomic_load_explicit(&r->node->count, memory_order_relaxed) == 0)
                (void)fdn__evs_node_remove(es, r->node, true);
            if (r->corr != NULL &&
                atomic_load_explicit(&r->corr->last_id, memory_order_relaxed) == id)
                (void)fdn__evs_corr_remove(es, r->corr, true);
            removed++;
        }
        atomic_store_explicit(&es->first_id, cut, memory_order_release);
        /* postings; a type whose last event went is removed (no reader runs: plock write) */
        evs_tab_t *t = atomic_load_explicit(&es->types, memory_order_relaxed);
        for (size_t i = 0; i <= t->mask; i++) {
            evs_sym_t *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
            if (s == NULL || (void *)s == EVS_TOMB)
                continue;
            if (atomic_load_explicit(&s->count, memory_order_relaxed) == 0)
                fdn__evs_type_remove(es, s, true);
            else
                post_prune(es, &s->post, cut);
        }
        /* whole dead segments (keep the current one) */
        evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
        size_t h = atomic_load_explicit(&es->seg_head, memory_order_relaxed);
        size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
        while (h + 1 < n && d->segs[h + 1].first_id <= cut)
            seg_release(es, d->segs[h++].seg);
        if (h > 0) {
            memmove(d->segs, d->segs + h, (n - h) * sizeof(evs_segent_t));
            atomic_store_explicit(&es->seg_n, n - h, memory_order_relaxed);
            atomic_store_explicit(&es->seg_head, 0, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&es->pruned_total, removed, memory_order_relaxed);
        fdn__evs_tabs_shrink(es);
    }
    for (size_t i = 0; i < es->nretired; i++)
        fdn__free(es->retired[i]);
    es->nretired = 0;
    fdn__mutex_unlock(&es->amu);
    fdn__rwlock_wrunlock(&es->plock);
    return removed;
}

uint64_t fdn__evs_prune_ids(fdn_events_t *es, uint64_t cut)
{
    uint64_t removed = 0;
    for (bool more = true; more;) {
        removed += prune_step(es, cut, &more);
        if (more && fdn__evs_prune_step_hook != NULL)
            fdn__evs_prune_step_hook(es, fdn__evs_prune_step_user);
    }
    return removed;
}

uint64_t fdn__evs_id_at_time(fdn_events_t *es, int64_t ts, uint64_t snap)
{
    uint64_t lo = atomic_load_explicit(&es->first_id, memory_order_acquire), hi = snap + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        evs_rec_t *r = fdn__evs_rec_lookup(es, mid);
        if (r == NULL || r->ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t fdn__evs_batch_end(fdn_events_t *es, uint64_t id)
{
    evs_seg_t *hint = NULL;
    fdn__rwlock_rdlock(&es->plock);
    for (const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint); r != NULL && r->more;
         r = fdn__evs_rec_lookup_hint(es, id, &hint))
        id++;
    fdn__rwlock_rdunlock(&es->plock);
    return id;
}

/* ---- public API ---- */

static int check_batch(fdn_events_t *es, const fdn_event_t *const *evs, size_t n)
{
    if (es == NULL || (evs == NULL && n > 0))
        return FDN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (evs[i] == NULL)
            return FDN_EINVAL;
    return 0;
}

/* A batch stored while the store is stopped: copies kept for its start to append (ids
 * next_id + nbuf.. promised), or FDN_EUNAVAILABLE past buffer_max. Caller holds amu. Out of
 * line: the append path does not carry it. */
static FDN_NOINLINE int buffer_stopped(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                       uint64_t *out_ids, evs_async_t *w) FDN_REQUIRES(es->amu)
{
    if (es->nbuf + n > es->buffer_max)
        return FDN_EUNAVAILABLE;
    int rc = 0;
    size_t k = 0;
    for (; k < n && rc == 0; k++)
        rc = fdn_event_copy(&es->buf[es->nbuf + k], evs[k]);
    if (rc != 0) {
        for (size_t j = 0; j + 1 < k; j++)
            fdn_event_free(es->buf[es->nbuf + j]);
        return rc;
    }
    uint64_t first = es->next_id + es->nbuf;
    es->nbuf += n;
    if (out_ids)
        for (size_t i = 0; i < n; i++)
            out_ids[i] = first + i;
    if (w != NULL)
        w->first_id = first;
    return 0;
}

/* Append a checked, non-empty batch under amu, or buffer it while the store is stopped (then
 * *last stays 0). With w (an asynchronous store), an appended batch is also queued for the
 * writer's acknowledgement before amu is released, so the queue stays in id order: *queued
 * gets fdn__evs_async_queue's answer (not a field of w: once queued, w is the writer's). With
 * cap (a client's store), a batch that would add a type past the cap is refused with
 * FDN_ENOSPC, and tried once more after due retention. Inline: its two callers pass constants
 * for w, and the call cost more than its work. */
static inline int append_batch(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                               uint64_t *out_ids, uint64_t *last, evs_async_t *w, int *queued,
                               bool cap)
{
    *last = 0;
    for (bool retry = cap;; retry = false) {
        fdn__mutex_lock(&es->amu);
        if (FDN_UNLIKELY(!fdn__evs_running(es))) {
            int rc = buffer_stopped(es, evs, n, out_ids, w);
            fdn__mutex_unlock(&es->amu);
            return rc;
        }
        uint64_t first = es->next_id;
        int rc = append_locked(es, evs, n, out_ids, cap);
        if (rc == 0) {
            *last = first + n - 1;
            if (w != NULL) {
                w->first_id = first;
                *queued = fdn__evs_async_queue(es, w, *last);
            }
        }
        fdn__mutex_unlock(&es->amu);
        if (FDN_LIKELY(rc == 0))
            break;
        /* the type cap: when retention is due (more events than max_events, or too old),
         * prune now instead of at the next interval, and try once more */
        if (rc == FDN_ENOSPC && retry && fdn__evs_running(es) && fdn__evs_retention_memory(es) > 0)
            continue;
        if (rc == FDN_ENOSPC)
            atomic_fetch_add_explicit(&es->types_refused, n, memory_order_relaxed);
        return rc;
    }
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = fdn__evs_tm_enter(es, &tp);
    if (tm != NULL) {
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_stored", n, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    return 0;
}

static int store_batch(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *out_ids,
                       bool cap)
{
    int rc = check_batch(es, evs, n);
    if (rc != 0 || n == 0)
        return rc;
    if (es->sh != NULL) /* a shared backend assigns the ids: the writer stores first */
        return fdn__evs_shared_store(es, evs, n, out_ids);
    uint64_t last = 0;
    rc = append_batch(es, evs, n, out_ids, &last, NULL, NULL, cap);
    if (rc != 0 || last == 0)
        return rc;
    /* in memory with no subscriber, fdn__evs_after_append has nothing to wait for nor wake: its
     * two tests made here save its call (its frame cost more than its work, every append) */
    if (es->durable_path == NULL && atomic_load_explicit(&es->nsubs, memory_order_acquire) == 0)
        return 0;
    return fdn__evs_after_append(es, last);
}

int fdn_events_store_async(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                           uint64_t *out_ids, fdn_events_stored_cb cb, void *user)
{
    int rc = check_batch(es, evs, n);
    if (rc != 0 || cb == NULL)
        return FDN_EINVAL;
    if (n == 0) {
        cb(0, 0, 0, user);
        return 0;
    }
    if (es->sh != NULL && out_ids == NULL) {
        /* a shared backend gives the ids at commit: queued for the writer, which runs cb
         * after it (bounded as below; a refused store stores nothing) */
        uint64_t had = atomic_fetch_add_explicit(&es->aq_events, n, memory_order_relaxed);
        if (had + n > es->fast_queue_max) {
            atomic_fetch_sub_explicit(&es->aq_events, n, memory_order_relaxed);
            return FDN_EBUSY;
        }
        rc = fdn__evs_shared_store_async(es, evs, n, cb, user);
        if (rc != 0)
            atomic_fetch_sub_explicit(&es->aq_events, n, memory_order_relaxed);
        return rc;
    }
    if (es->sh != NULL) {
        /* ids wanted now: the call waits for the commit, as the synchronous one does, then
         * acknowledges on this thread */
        rc = fdn__evs_shared_store(es, evs, n, out_ids);
        if (rc == 0)
            cb(0, out_ids[0], n, user);
        return rc;
    }
    /* reserve room in the bounded queue first: a refused store stores nothing */
    uint64_t had = atomic_fetch_add_explicit(&es->aq_events, n, memory_order_relaxed);
    if (had + n > es->fast_queue_max) {
        atomic_fetch_sub_explicit(&es->aq_events, n, memory_order_relaxed);
        return FDN_EBUSY;
    }
    evs_async_t *w = fdn__malloc(sizeof(*w));
    if (w == NULL) {
        atomic_fetch_sub_explicit(&es->aq_events, n, memory_order_relaxed);
        return FDN_ENOMEM;
    }
    w->next = NULL;
    w->n = n;
    w->cb = cb;
    w->user = user;
    w->first_id = 0;
    uint64_t last = 0;
    int queued = 0;
    rc = append_batch(es, evs, n, out_ids, &last, w, &queued, true);
    if (rc == 0 && last != 0 && atomic_load_explicit(&es->nsubs, memory_order_acquire) > 0)
        fdn__evs_notify_subs(es, last);
    if (rc == 0 && queued < 0)
        rc = queued; /* appended, but the writer has failed: as the synchronous call */
    if (rc != 0 || queued != 1) {
        uint64_t first = w->first_id;
        atomic_fetch_sub_explicit(&es->aq_events, n, memory_order_relaxed);
        fdn__free(w);
        if (rc != 0)
            return rc;
        cb(0, first, n, user); /* acknowledged already (memory, fast mode, buffered) */
    }
    return 0;
}

/* With telemetry, each append is timed (monotonic clock) as `foundation.event_store.append`
 * {duration: ns}, exported as the histogram fdn_event_store_append_duration_seconds. */
static int timed_store(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *out_ids,
                       bool cap)
{
    if (es == NULL || atomic_load_explicit(&es->tm, memory_order_relaxed) == NULL)
        return store_batch(es, evs, n, out_ids, cap);
    int64_t t0 = fdn_clock_mono_ns(NULL);
    int rc = store_batch(es, evs, n, out_ids, cap);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = rc == 0 && n > 0 ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm != NULL) {
        fdn_telemetry_measure_t m = {"duration", (double)(fdn_clock_mono_ns(NULL) - t0)};
        (void)fdn_telemetry_execute(tm, "foundation.event_store.append", &m, 1, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    return rc;
}

int fdn_events_store_batch(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                           uint64_t *out_ids)
{
    return timed_store(es, evs, n, out_ids, true);
}

int fdn_events_store(fdn_events_t *es, const fdn_event_t *ev, uint64_t *out_id)
{
    return timed_store(es, &ev, 1, out_id, true); /* fdn_events_store_batch's, one call less */
}

/* The runtime's own events (config_updated, supervisor_escalation, ...): a fixed, small set
 * of types, never refused by the cap on live types, so a client that filled the type table
 * cannot silence the runtime's records. */
int fdn__events_store_system(fdn_events_t *es, const fdn_event_t *const *evs, size_t n)
{
    return timed_store(es, evs, n, NULL, false);
}

int fdn_events_store_specs(fdn_events_t *es, const fdn_event_spec_t *specs, size_t n,
                           uint64_t *out_ids, fdn_error_t *err)
{
    if (es == NULL || (specs == NULL && n > 0))
        return fdn_err_set(err, FDN_EINVAL, "events: NULL store or specs");
    if (n == 0)
        return 0;
    fdn_event_t **evs = fdn__calloc(n, sizeof(*evs));
    if (evs == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory for a batch of %zu", n);
    int rc = 0;
    size_t built = 0;
    for (; built < n; built++) {
        fdn_error_t one = FDN_ERROR_INIT;
        rc = fdn_event_new(&evs[built], &specs[built], &one);
        if (rc != 0) { /* the first bad spec: nothing is stored */
            fdn_err_set(err, rc, "events[%zu]: %s", built,
                        one.message[0] ? one.message : fdn_strerror(rc));
            fdn_err_add_context(err, "index", "%zu", built);
            break;
        }
    }
    if (rc == 0) {
        rc = fdn_events_store_batch(es, (const fdn_event_t *const *)evs, n, out_ids);
        if (rc == FDN_ENOSPC)
            fdn__evs_types_error(es, err);
        else if (rc != 0)
            fdn_err_set(err, rc, "events: the batch of %zu was not stored: %s", n,
                        fdn_strerror(rc));
    }
    for (size_t i = 0; i < built && i < n; i++)
        fdn_event_free(evs[i]);
    fdn__free(evs);
    return rc;
}

int fdn_events_backend_status(fdn_events_t *es, fdn_events_backend_status_t *out)
{
    if (es == NULL || out == NULL)
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    if (es->sh != NULL) {
        fdn__evs_shared_status(es, out);
        return 0;
    }
    out->backend = FDN_EVENTS_BACKEND_SQLITE;
    out->up = true;
    return 0;
}

int fdn_events_stats(fdn_events_t *es, fdn_events_stats_t *o)
{
    if (es == NULL || o == NULL)
        return FDN_EINVAL;
    memset(o, 0, sizeof(*o));
    o->version = 1;
    /* on a shared backend the timestamps its reads give (event_shared.c "Timestamps") */
    int64_t off = es->sh != NULL ? fdn__evs_clock_offset(es) : 0;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    o->count = atomic_load_explicit(&es->count, memory_order_relaxed);
    o->bytes = atomic_load_explicit(&es->bytes, memory_order_relaxed);
    o->bytes_allocated = atomic_load_explicit(&es->bytes_alloc, memory_order_relaxed);
    if (first <= snap) {
        const evs_rec_t *a = fdn__evs_rec_lookup(es, first), *b = fdn__evs_rec_lookup(es, snap);
        o->oldest_id = first;
        o->newest_id = snap;
        o->oldest_ts = a == NULL ? 0 : es->sh != NULL ? fdn__evs_rebuilt_ts(a->wall, off) : a->ts;
        o->newest_ts = b == NULL ? 0 : es->sh != NULL ? fdn__evs_rebuilt_ts(b->wall, off) : b->ts;
    }
    fdn__rwlock_rdunlock(&es->plock);
    o->next_id = snap + 1;
    o->events_stored = atomic_load_explicit(&es->stored_total, memory_order_relaxed);
    o->events_pruned = atomic_load_explicit(&es->pruned_total, memory_order_relaxed);
    o->types = atomic_load_explicit(&es->ntypes, memory_order_relaxed);
    uint64_t persisted = atomic_load_explicit(&es->persisted, memory_order_acquire);
    o->durable_committed_id = persisted;
    o->durable_pending = es->durable_path && snap > persisted ? snap - persisted : 0;
    o->uptime_ns = fdn_clock_mono_ns(es->clock) - es->created_ns;
    return 0;
}

int fdn_events_type_stats(fdn_events_t *es, fdn_events_type_stat_t *out, size_t cap, size_t *out_n)
{
    if (es == NULL || out_n == NULL || (out == NULL && cap > 0))
        return FDN_EINVAL;
    size_t k = 0;
    fdn__rwlock_rdlock(&es->plock);
    evs_tab_t *t = atomic_load_explicit(&es->types, memory_order_acquire);
    for (size_t i = 0; i <= t->mask; i++) {
        evs_sym_t *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (s == NULL || (void *)s == EVS_TOMB)
            continue;
        if (k < cap) {
            memcpy(out[k].type, s->name, s->len + 1);
            out[k].count = atomic_load_explicit(&s->count, memory_order_relaxed);
            out[k].bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed);
        }
        k++;
    }
    fdn__rwlock_rdunlock(&es->plock);
    *out_n = k;
    return 0;
}

/* ---- the cap on live types ---- */

int fdn_events_set_max_types(fdn_events_t *es, uint64_t max_types)
{
    if (es == NULL)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_types, max_types, memory_order_relaxed);
    return 0;
}

int fdn_events_types_status(fdn_events_t *es, fdn_events_types_status_t *o)
{
    if (es == NULL || o == NULL)
        return FDN_EINVAL;
    memset(o, 0, sizeof(*o));
    o->version = 1;
    o->live = atomic_load_explicit(&es->ntypes, memory_order_relaxed);
    o->max_types = atomic_load_explicit(&es->max_types, memory_order_relaxed);
    o->refused_events = atomic_load_explicit(&es->types_refused, memory_order_relaxed);
    o->released = atomic_load_explicit(&es->types_released, memory_order_relaxed);
    fdn__rwlock_rdlock(&es->plock);
    evs_tab_t *t = atomic_load_explicit(&es->types, memory_order_acquire);
    o->table_slots = t->mask + 1;
    fdn__rwlock_rdunlock(&es->plock);
    return 0;
}

int fdn__evs_types_error(fdn_events_t *es, fdn_error_t *err)
{
    fdn_events_types_status_t st;
    (void)fdn_events_types_status(es, &st);
    int rc = fdn_err_set(err, FDN_ENOSPC,
                         "event store: %" PRIu64 " distinct event types held, the cap "
                         "storage.hot.max_types is %" PRIu64
                         "; a new type is refused until the last events of older types are pruned",
                         st.live, st.max_types);
    fdn_err_add_context(err, "max_types", "%" PRIu64, st.max_types);
    return rc;
}
