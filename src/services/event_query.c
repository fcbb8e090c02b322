/*
 * DESIGN: the event store's query engine: every read that copies events out of the memory
 * tier. fdn_events_query and fdn_events_get_by_correlation (public), fdn__evs_query (also
 * used by subscriptions), fdn_events_get, and fdn__evs_encode_range (the durable writer's
 * records, encoded straight from memory: no event copies). Split out of event_store.c, which
 * owns the records and indexes read here.
 *
 * Evaluation. A query is first narrowed to an id range [lo, hi]: the live range, cut by
 * after_id / before_id, then by the time bounds (time order is id order, so each bound is
 * a binary search over ids, fdn__evs_id_at_time; not on a shared backend: below). Then one
 * of three scans runs, in order of selectivity: a correlation id walks that correlation's chain
 * (newest first, each record linking to its predecessor; ascending results are collected and
 * reversed); else a type walks that type's posting list between two binary-searched bounds; else
 * every id of the range is visited. Each candidate is checked against the remaining filters (type,
 * parent_id); offset matches are skipped, and the scan stops after limit matches. The hits
 * (id + record pointer; the first 32 in the scan's own struct, more in a heap block) are then
 * copied into one fdn_event_list_t allocation, unless the caller gave lists to compare them
 * with (fdn_events_query_same): each is compared with the records in place, under plock, and
 * an equal one is named instead of copying anything.
 *
 * Threads and locks: readers take plock for reading only, for the whole scan and copy, so
 * no prune can free a record they point at; they never take amu. Each query loads
 * `published` once (acquire) and ignores ids above it, so it sees a consistent prefix even
 * while writers append; the snapshot id is returned to the caller (subscriptions advance
 * their cursor to it). A query on a store with a file or a shared backend decides from
 * first_id, outside plock, that memory holds its whole range; a prune may raise first_id
 * before the scan takes plock, so first_id is read again after the scan and, when it moved,
 * the decision is made again (covered_since). Names are looked up in the intern tables
 * without locks (fdn__evs_tab_find); an unknown type or correlation id matches nothing.
 * Invariants: results are in id order (descending when asked); every returned id is in
 * [first_id, snapshot] and its record matched every filter of the query.
 * With a shared backend (PostgreSQL, event_shared.c), get, queries and correlation lookups
 * whose range the memory tier does not hold are answered by the backend instead; with a
 * write-behind one (SQLite) the file answers for the ids memory evicted (event_disk.c).
 *
 * Timestamps on a shared backend. A read there shows every event with the timestamp the
 * backend's reads give it, rebuilt from its wall time with the store's clock offset
 * (event_shared.c "Timestamps"), not the one memory's record holds. Each read takes that
 * offset once (fdn__evs_clock_offset, two clock reads) and uses it for everything it answers:
 * the timestamps it lists (written by build_list, compared by rec_is) and its time bounds,
 * which become bounds on the records' wall time (fdn__evs_wall_bounds, as the backend's query
 * has them), checked per record (matches): the records' wall times are not in id order (commit
 * order across processes is not wall-time order), so the time index's binary search, which
 * memory's own timestamps allow, cannot narrow the range there. Memory answers a shared
 * backend's query only inside a range of ids its cursors bound (or with a parent_id filter), so
 * the scan is that range. A wall-clock step during a read thus changes nothing in its answer;
 * the next read uses the new offset.
 */
#include <fdn/events.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "services/event_store_int.h"

static void rec_fields(const evs_rec_t *r, uint64_t id, fdn__event_fields_t *f)
{
    f->id = id;
    f->ts = r->ts;
    f->wall = r->wall;
    f->parent = r->parent;
    f->pid = r->pid;
    f->tid = r->tid;
    f->ctype = r->ctype;
    f->type = r->type->name;
    f->type_len = r->type->len;
    f->node = r->node->name;
    f->node_len = r->node->len;
    f->corr = r->corr ? r->corr->name : "";
    f->corr_len = r->corr ? r->corr->len : 0;
    f->data = r->data;
    f->data_len = r->data_len;
}

typedef struct hit {
    uint64_t id;
    const evs_rec_t *rec;
} hit_t;

/* The timestamp a read shows for record r: its own, or on a shared backend (clock offset
 * *off) the one rebuilt from its wall time (DESIGN, "Timestamps on a shared backend"). */
static int64_t rec_ts(const evs_rec_t *r, const int64_t *off)
{
    return off != NULL ? fdn__evs_rebuilt_ts(r->wall, *off) : r->ts;
}

static int build_list(const hit_t *h, size_t n, const int64_t *off, fdn_event_list_t **out)
{
    size_t bytes = 0;
    fdn__event_fields_t f;
    for (size_t i = 0; i < n; i++) {
        rec_fields(h[i].rec, h[i].id, &f);
        bytes += fdn__event_alloc_size(&f);
    }
    fdn_event_list_t *l = fdn__event_list_alloc(n, bytes);
    if (l == NULL)
        return FDN_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        rec_fields(h[i].rec, h[i].id, &f);
        l->items[i] = fdn__event_place(fdn__event_list_mem(l, at), &f);
        at += fdn__event_alloc_size(&f);
    }
    /* a pass of its own: nothing added to the copy of a store without a shared backend */
    for (size_t i = 0; off != NULL && i < n; i++)
        l->items[i]->ts = fdn__evs_rebuilt_ts(l->items[i]->wall, *off);
    *out = l;
    return 0;
}

/* A scan's matches: the first HITS_INLINE in the struct itself (a correlation's or a page's
 * results mostly fit, so no block is allocated), more in a heap block. Not movable. */
#define HITS_INLINE 32

typedef struct hits {
    hit_t *v;
    size_t n, cap;
    hit_t inl[HITS_INLINE];
} hits_t;

static void hits_init(hits_t *h)
{
    h->v = h->inl;
    h->n = 0;
    h->cap = HITS_INLINE;
}

static void hits_free(hits_t *h)
{
    if (h->v != h->inl)
        fdn__free(h->v);
}

static int hits_push(hits_t *h, uint64_t id, const evs_rec_t *r)
{
    if (h->n == h->cap) {
        size_t nc = h->cap * 2;
        hit_t *nv = h->v == h->inl ? fdn__malloc(nc * sizeof(hit_t))
                                   : fdn__realloc(h->v, nc * sizeof(hit_t));
        if (nv == NULL)
            return FDN_ENOMEM;
        if (h->v == h->inl)
            memcpy(nv, h->inl, h->n * sizeof(hit_t));
        h->v = nv;
        h->cap = nc;
    }
    h->v[h->n].id = id;
    h->v[h->n].rec = r;
    h->n++;
    return 0;
}

/* The filters a scan checks on each candidate: the query's parent_id, and on a shared backend
 * its time bounds as bounds on the record's wall time (wall: elsewhere the id range has
 * them). */
typedef struct filt {
    uint64_t parent;
    bool wall;
    int64_t wall_lo, wall_hi;
} filt_t;

static bool matches(const evs_rec_t *r, const filt_t *f, const evs_sym_t *type)
{
    if (type != NULL && r->type != type)
        return false;
    if (f->parent != 0 && r->parent != f->parent)
        return false;
    return !f->wall || (r->wall >= f->wall_lo && r->wall <= f->wall_hi);
}

/* One candidate of a scan: appends record id to out when it exists and matches f (type
 * already known to match), unless *skip matches are still to be passed over (q->offset). */
static int take_hit(fdn_events_t *es, const filt_t *f, uint64_t id, evs_seg_t **hint, size_t *skip,
                    hits_t *out)
{
    const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, hint);
    if (r == NULL || !matches(r, f, NULL))
        return 0;
    if (*skip > 0) {
        (*skip)--;
        return 0;
    }
    return hits_push(out, id, r);
}

/* Caller holds plock (read). limit 0 = no limit. off: NULL, or a shared backend's read's clock
 * offset (its time bounds on wall time, DESIGN). */
static int query_locked(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        const int64_t *off, hits_t *out, uint64_t *snap_out)
    FDN_REQUIRES_SHARED(es->plock)
{
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t lo = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t hi = snap;
    *snap_out = snap;
    if (q->after_id >= lo)
        lo = q->after_id == UINT64_MAX ? UINT64_MAX : q->after_id + 1;
    if (q->before_id != 0 && q->before_id - 1 < hi)
        hi = q->before_id - 1;
    if (lo > hi)
        return 0;
    filt_t f = {q->parent_id, false, INT64_MIN, INT64_MAX};
    if (off != NULL && (q->time_start != INT64_MIN || q->time_end != INT64_MAX)) {
        f.wall = true; /* per record, on wall time (DESIGN) */
        fdn__evs_wall_bounds(q, *off, &f.wall_lo, &f.wall_hi);
    }
    if (off == NULL && q->time_start != INT64_MIN)
        lo = FDN_MAX(lo, fdn__evs_id_at_time(es, q->time_start, snap));
    if (off == NULL && q->time_end != INT64_MAX) {
        uint64_t e =
            q->time_end == INT64_MAX ? snap + 1 : fdn__evs_id_at_time(es, q->time_end + 1, snap);
        if (e == 0)
            return 0;
        hi = FDN_MIN(hi, e - 1);
    }
    if (lo > hi)
        return 0;
    evs_sym_t *type = NULL;
    if (q->type != NULL) {
        size_t n = strlen(q->type);
        type = fdn__evs_tab_find(atomic_load_explicit(&es->types, memory_order_acquire), q->type, n,
                                 fdn__hash(q->type, n), offsetof(evs_sym_t, name));
        if (type == NULL)
            return 0;
    }
    size_t skip = (size_t)q->offset;
    size_t want = limit ? limit : SIZE_MAX;
    int rc = 0;
    if (q->correlation_id != NULL) {
        size_t n = strlen(q->correlation_id);
        evs_corr_t *c = fdn__evs_tab_find(atomic_load_explicit(&es->corrs, memory_order_acquire),
                                          q->correlation_id, n, fdn__hash(q->correlation_id, n),
                                          offsetof(evs_corr_t, name));
        if (c == NULL)
            return 0;
        uint64_t id = atomic_load_explicit(&c->last_id, memory_order_acquire);
        evs_seg_t *hint = NULL;
        if (q->descending) {
            /* the chain runs newest first: stop once offset + limit matches are found */
            while (id != 0 && id >= lo && out->n < want && rc == 0) {
                const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
                if (r == NULL)
                    break;
                if (id <= hi && matches(r, &f, type)) {
                    if (skip > 0)
                        skip--;
                    else
                        rc = hits_push(out, id, r);
                }
                id = r->corr_prev ? id - r->corr_prev : 0;
            }
            return rc;
        }
        /* every match, newest first, then turned around in place and cut to offset + limit */
        size_t base = out->n;
        while (id != 0 && id >= lo) {
            const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                break;
            if (id <= hi && matches(r, &f, type) && (rc = hits_push(out, id, r)) != 0)
                return rc;
            id = r->corr_prev ? id - r->corr_prev : 0;
        }
        for (size_t i = base, j = out->n; i + 1 < j; i++, j--) {
            hit_t t = out->v[i];
            out->v[i] = out->v[j - 1];
            out->v[j - 1] = t;
        }
        size_t got = out->n - base;
        size_t from = skip < got ? skip : got;
        size_t room = want > base ? want - base : 0;
        size_t keep = got - from < room ? got - from : room;
        if (from > 0 && keep > 0)
            memmove(out->v + base, out->v + base + from, keep * sizeof(hit_t));
        out->n = base + keep;
        return 0;
    }
    if (type != NULL) {
        evs_posting_t *p = &type->post;
        size_t pn = atomic_load_explicit(&p->n, memory_order_acquire);
        uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_acquire);
        size_t ph = atomic_load_explicit(&p->head, memory_order_acquire);
        if (dir == NULL)
            return 0;
        size_t a = fdn__evs_post_lower(p, dir, ph, pn, lo);
        size_t b = fdn__evs_post_lower(p, dir, a, pn, hi == UINT64_MAX ? hi : hi + 1);
        evs_seg_t *hint = NULL;
        for (size_t k = 0; k < b - a && out->n < want && rc == 0; k++)
            rc = take_hit(es, &f, fdn__evs_post_at(p, dir, q->descending ? b - 1 - k : a + k),
                          &hint, &skip, out);
        return rc;
    }
    evs_seg_t *hint = NULL;
    for (uint64_t k = 0; k <= hi - lo && out->n < want && rc == 0; k++)
        rc = take_hit(es, &f, q->descending ? hi - k : lo + k, &hint, &skip, out);
    return rc;
}

/* Whether the record matched as id is the event e as a read shows it (timestamps: rec_ts):
 * every field fdn_event_equal compares. */
static bool rec_is(const evs_rec_t *r, uint64_t id, const fdn_event_t *e, const int64_t *off)
{
    size_t cl = r->corr ? r->corr->len : 0;
    return e->id == id && e->ts == rec_ts(r, off) && e->wall == r->wall && e->parent == r->parent &&
           e->pid == r->pid && e->tid == r->tid && e->ctype == r->ctype &&
           e->type_len == r->type->len && e->node_len == r->node->len && e->corr_len == cl &&
           e->data_len == r->data_len && memcmp(e->type, r->type->name, e->type_len) == 0 &&
           memcmp(e->node, r->node->name, e->node_len) == 0 &&
           (cl == 0 || memcmp(e->corr, r->corr->name, cl) == 0) &&
           (r->data_len == 0 || memcmp(e->data, r->data, r->data_len) == 0);
}

static bool hits_are(const hit_t *h, size_t n, const fdn_event_list_t *l, const int64_t *off)
{
    if (l == NULL || l->n != n)
        return false;
    /* the ids of both ends first: a different result is usually told there */
    if (n > 0 && (l->items[0]->id != h[0].id || l->items[n - 1]->id != h[n - 1].id))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!rec_is(h[i].rec, h[i].id, l->items[i], off))
            return false;
    return true;
}

int fdn__evs_query_same(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        const int64_t *off, evs_same_t *same, fdn_event_list_t **out,
                        uint64_t *snap)
{
    hits_t h;
    hits_init(&h);
    if (same != NULL)
        same->which = SIZE_MAX;
    fdn__rwlock_rdlock(&es->plock);
    int rc = query_locked(es, q, limit, off, &h, snap);
    /* compared while plock keeps the records: an equal list needs no copy */
    for (size_t k = 0; rc == 0 && same != NULL && k < same->n; k++)
        if (hits_are(h.v, h.n, same->prev[k], off)) {
            same->which = k;
            break;
        }
    if (rc == 0 && (same == NULL || same->which == SIZE_MAX))
        rc = build_list(h.v, h.n, off, out);
    fdn__rwlock_rdunlock(&es->plock);
    hits_free(&h);
    return rc;
}

int fdn__evs_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit, const int64_t *off,
                   fdn_event_list_t **out, uint64_t *snap)
{
    return fdn__evs_query_same(es, q, limit, off, NULL, out, snap);
}

/* fdn_events_query_memory's scan: fdn__evs_query, or FDN_ENOENT when something behind the
 * memory tier (the shared backend, or a file holding ids memory evicted) may hold ids after
 * q->after_id that memory does not. Checked under plock, with the scan: a prune between a
 * check and the scan would move first_id past the cursor, and the scan would leave out the
 * ids between them without a word. off as fdn__evs_query's. */
static int query_memory(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        const int64_t *off, fdn_event_list_t **out)
{
    hits_t h;
    hits_init(&h);
    uint64_t snap;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    bool behind = es->sh != NULL || fdn__evs_disk_behind(es);
    int rc = behind && first > 0 && q->after_id < first - 1 ? FDN_ENOENT : 0;
    if (rc == 0)
        rc = query_locked(es, q, limit, off, &h, &snap);
    if (rc == 0)
        rc = build_list(h.v, h.n, off, out);
    fdn__rwlock_rdunlock(&es->plock);
    hits_free(&h);
    return rc;
}

bool fdn__evs_lists_equal(const fdn_event_list_t *l, const fdn_event_list_t *m)
{
    if (l == NULL || m == NULL || l->n != m->n)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (!fdn_event_equal(l->items[i], m->items[i]))
            return false;
    return true;
}

/* Records encoded per hold of plock: the encoding (zstd for large payloads of a store that
 * compresses) runs under the lock, which a prune waiting for it would make every reader
 * wait for too (plock prefers writers); a prune between two holds only makes later ids of
 * the range missing, as it would for a copy (the writer takes its cut into the commit). */
#define ENCODE_HOLD 64u

int fdn__evs_encode_range(fdn_events_t *es, uint64_t from, uint64_t to, unsigned flags,
                          evs_recbuf_t *rb)
{
    int rc = 0;
    evs_seg_t *hint = NULL;
    fdn__event_fields_t f;
    rb->n = 0;
    size_t at = 0;
    fdn__rwlock_rdlock(&es->plock);
    for (uint64_t id = from; id <= to && rc == 0; id++) {
        if ((id - from) % ENCODE_HOLD == ENCODE_HOLD - 1) {
            fdn__rwlock_rdunlock(&es->plock);
            fdn__rwlock_rdlock(&es->plock);
            hint = NULL; /* its segment may be gone */
        }
        const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
        if (r == NULL)
            continue;
        if (rb->n + 2 > rb->off_cap) {
            size_t nc = rb->off_cap ? rb->off_cap * 2 : 1024;
            size_t *no = fdn__realloc(rb->off, nc * sizeof(*no));
            if (no == NULL) {
                rc = FDN_ENOMEM;
                break;
            }
            rb->off = no;
            rb->off_cap = nc;
        }
        rec_fields(r, id, &f);
        size_t len = 0;
        rc = fdn__event_encode_fields_at(&f, flags, &rb->buf, &rb->cap, at, &len);
        if (rc == 0) {
            rb->off[rb->n++] = at;
            at += len;
        }
    }
    fdn__rwlock_rdunlock(&es->plock);
    if (rb->off != NULL)
        rb->off[rb->n] = at;
    return rc;
}

/* ---- public API ---- */

void (*fdn__evs_query_check_hook)(fdn_events_t *es, void *user);
void *fdn__evs_query_check_user;

/* Whether an answer from memory alone, decided while first_id was `first` (read before the
 * decision), still holds after memory's scan. Memory answers when it holds the query's whole
 * range: from first_id on; what is below first_id is in the file or on the shared backend.
 * A prune (retention) between the decision and the scan, which takes plock on its own, raises
 * first_id past ids the query needs, and the scan leaves them out without a word. first_id
 * only rises while the store runs, so the same value after the scan means it held during the
 * decision and the scan; else the caller decides again (the file or the backend answers then,
 * or memory again). Costs one load on the path where nothing was pruned. always_memory: the
 * query runs on memory whatever it holds (a parent_id filter on a shared backend). */
static bool covered_since(fdn_events_t *es, uint64_t first, bool always_memory)
{
    return always_memory || atomic_load_explicit(&es->first_id, memory_order_acquire) == first;
}

/* Forget an answer fdn__evs_query_same gave (a list, or the index of an equal one in same). */
static void drop_answer(evs_same_t *same, fdn_event_list_t **out)
{
    if (same != NULL && same->which != SIZE_MAX)
        same->which = SIZE_MAX;
    else
        fdn_event_list_free(*out);
    *out = NULL;
}

/* The checks fdn_events_query and fdn_events_query_memory share, and the query's limit
 * capped by max_results: 0, FDN_EINVAL, FDN_EUNAVAILABLE (the store is stopped). */
static int query_args(fdn_events_t *es, const fdn_events_query_t *q, fdn_event_list_t **out,
                      size_t *limit)
{
    if (es == NULL || q == NULL || out == NULL || q->version != 1 || q->limit <= 0 ||
        q->offset < 0 || q->time_start > q->time_end)
        return FDN_EINVAL;
    if (!fdn__evs_running(es))
        return FDN_EUNAVAILABLE;
    uint32_t cap = atomic_load_explicit(&es->max_results, memory_order_relaxed);
    *limit = (uint64_t)q->limit > cap ? cap : (size_t)q->limit;
    return 0;
}

/* fdn_events_query and fdn_events_query_same: same may be NULL */
static int events_query(fdn_events_t *es, const fdn_events_query_t *q, evs_same_t *same,
                        fdn_event_list_t **out)
{
    size_t limit = 0;
    int arc = query_args(es, q, out, &limit);
    if (arc != 0)
        return arc;
    uint64_t snap;
    bool timed = atomic_load_explicit(&es->tm, memory_order_relaxed) != NULL;
    if (!timed && es->sh == NULL && es->durable_path == NULL)
        return fdn__evs_query_same(es, q, limit, NULL, same, out, &snap); /* memory is the store */
    /* timed as `foundation.event_store.query` {duration: ns}, exported as the histogram
     * fdn_event_store_query_duration_seconds */
    int64_t t0 = timed ? fdn_clock_mono_ns(NULL) : 0;
    /* on a shared backend, the one clock offset of this answer: its time bounds and its
     * timestamps, whichever tier answers (DESIGN, "Timestamps on a shared backend") */
    int64_t off = es->sh != NULL ? fdn__evs_clock_offset(es) : 0;
    const int64_t *offp = es->sh != NULL ? &off : NULL;
    int rc = 0;
    for (;;) {
        /* read before the decision that memory covers the query (from first_id), checked
         * again after memory's scan (covered_since) */
        uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
        bool handled = false;
        if (es->sh != NULL) { /* a shared backend: memory may hold only part of the range */
            rc = fdn__evs_shared_query(es, q, limit, off, out, &handled);
            for (size_t k = 0; handled && rc == 0 && same != NULL && k < same->n; k++)
                if (fdn__evs_lists_equal(*out, same->prev[k])) {
                    same->which = k;
                    fdn_event_list_free(*out);
                    *out = NULL;
                    break;
                }
        } else if (fdn__evs_disk_behind(es)) { /* write-behind: memory and the file merged */
            rc = fdn__evs_disk_query(es, q, limit, same, out, &handled);
        }
        if (handled)
            break;
        if (fdn__evs_query_check_hook != NULL)
            fdn__evs_query_check_hook(es, fdn__evs_query_check_user);
        rc = fdn__evs_query_same(es, q, limit, offp, same, out, &snap);
        bool always = es->sh != NULL ? q->parent_id != 0 : es->durable_path == NULL;
        if (rc != 0 || covered_since(es, first, always))
            break;
        drop_answer(same, out); /* a prune ran meanwhile: decide again */
    }
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = timed ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm == NULL)
        return rc;
    fdn_telemetry_measure_t m = {"duration", (double)(fdn_clock_mono_ns(NULL) - t0)};
    (void)fdn_telemetry_execute(tm, "foundation.event_store.query", &m, 1, NULL, 0);
    fdn__evs_tm_leave(&tp);
    return rc;
}

int fdn_events_query(fdn_events_t *es, const fdn_events_query_t *q, fdn_event_list_t **out)
{
    return events_query(es, q, NULL, out);
}

int fdn_events_query_memory(fdn_events_t *es, const fdn_events_query_t *q, fdn_event_list_t **out)
{
    size_t limit = 0;
    int arc = query_args(es, q, out, &limit);
    if (arc != 0)
        return arc;
    bool timed = atomic_load_explicit(&es->tm, memory_order_relaxed) != NULL;
    int64_t t0 = timed ? fdn_clock_mono_ns(NULL) : 0;
    /* a shared backend's answer: bounds and timestamps from one clock offset, as there */
    int64_t off = es->sh != NULL ? fdn__evs_clock_offset(es) : 0;
    int rc = query_memory(es, q, limit, es->sh != NULL ? &off : NULL, out);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = timed && rc != FDN_ENOENT ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm != NULL) { /* timed as fdn_events_query is */
        fdn_telemetry_measure_t m = {"duration", (double)(fdn_clock_mono_ns(NULL) - t0)};
        (void)fdn_telemetry_execute(tm, "foundation.event_store.query", &m, 1, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    return rc;
}

int fdn_events_query_same(fdn_events_t *es, const fdn_events_query_t *q,
                          const fdn_event_list_t *const *prev, size_t nprev, fdn_event_list_t **out,
                          size_t *same)
{
    if (same == NULL || (prev == NULL && nprev > 0))
        return FDN_EINVAL;
    evs_same_t sm = {prev, nprev, SIZE_MAX};
    *same = SIZE_MAX;
    int rc = events_query(es, q, &sm, out);
    if (rc == 0)
        *same = sm.which;
    return rc;
}

int fdn_events_get_by_correlation(fdn_events_t *es, const char *cid, fdn_event_list_t **out)
{
    if (es == NULL || cid == NULL || out == NULL)
        return FDN_EINVAL;
    if (!fdn__evs_running(es))
        return FDN_EUNAVAILABLE;
    if (es->sh != NULL) /* a correlation spans processes: the shared backend has them all */
        return fdn__evs_shared_correlation(es, cid, out);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = cid;
    for (;;) { /* memory alone only while it holds every id the file does (covered_since) */
        uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
        bool handled = false;
        int rc = fdn__evs_disk_correlation(es, cid, out, &handled);
        if (handled)
            return rc;
        if (fdn__evs_query_check_hook != NULL)
            fdn__evs_query_check_hook(es, fdn__evs_query_check_user);
        uint64_t snap;
        rc = fdn__evs_query(es, &q, 0, NULL, out, &snap);
        if (rc != 0 || covered_since(es, first, es->durable_path == NULL))
            return rc;
        drop_answer(NULL, out);
    }
}

int fdn_events_get(fdn_events_t *es, uint64_t id, fdn_event_t **out)
{
    if (es == NULL || out == NULL || id == 0)
        return FDN_EINVAL;
    if (!fdn__evs_running(es))
        return FDN_EUNAVAILABLE;
    int rc = FDN_ENOENT;
    /* on a shared backend the timestamp is rebuilt from the wall time, as PostgreSQL's reads
     * do (event_shared.c "Timestamps"), with one offset whichever tier answers */
    int64_t off = es->sh != NULL ? fdn__evs_clock_offset(es) : 0;
    if (es->sh != NULL && (id > atomic_load_explicit(&es->published, memory_order_acquire) ||
                           id < atomic_load_explicit(&es->first_id, memory_order_acquire)))
        return fdn__evs_shared_get(es, id, off, out); /* outside the memory tier */
    fdn__rwlock_rdlock(&es->plock);
    if (id <= atomic_load_explicit(&es->published, memory_order_acquire)) {
        const evs_rec_t *r = fdn__evs_rec_lookup(es, id);
        if (r != NULL) {
            fdn__event_fields_t f;
            rec_fields(r, id, &f);
            if (es->sh != NULL)
                f.ts = fdn__evs_rebuilt_ts(f.wall, off);
            fdn_event_t *ev = fdn__event_from_fields(&f);
            rc = ev ? 0 : FDN_ENOMEM;
            if (ev)
                *out = ev;
        }
    }
    fdn__rwlock_rdunlock(&es->plock);
    /* evicted from memory (also by a prune since the check above): the backend may have it */
    if (rc == FDN_ENOENT && es->sh != NULL &&
        id < atomic_load_explicit(&es->first_id, memory_order_acquire))
        return fdn__evs_shared_get(es, id, off, out);
    if (rc == FDN_ENOENT) /* the file may have it */
        rc = fdn__evs_disk_get(es, id, out);
    return rc;
}

int fdn_events_set_max_results(fdn_events_t *es, uint32_t max_results)
{
    if (es == NULL || fdn__events_check_max_results(max_results) != 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_results, max_results, memory_order_relaxed);
    return 0;
}
