/*
 * DESIGN: the event store's two tiers on a write-behind backend (SQLite): reads of what the
 * memory tier evicted, and the durable tier's own retention (also on a shared backend).
 *
 * Tiers. The memory tier keeps the newest events up to its limits (storage.hot.*); its
 * retention only evicts from memory, and only events the writer has committed (on a
 * write-behind backend every id below `persisted` + 1 is in the file). The durable tier
 * keeps every committed event until its own retention (storage.warm.retention.*, 0 = keep)
 * drops it through the backend's `prune`. So an id below the memory tier's first_id and at
 * or above `disk_first` (the oldest id the file may still hold) is read from the file.
 *
 * Reads (write-behind only; a shared backend has event_shared.c):
 *  - get: memory, then the file when the id is below first_id.
 *  - query / correlation: when the file may hold matches below first_id, the memory part runs
 *    first (under plock, so first_id is fixed during it), then B = first_id is read again and
 *    the file part covers ids < B. Prunes only raise first_id, and every id below it is in the
 *    file, so the two parts together miss nothing: results below B come from the file and
 *    those at or above B from memory (memory results below B are duplicates and dropped).
 *    Offset and limit apply to the merged, ordered list. Time bounds apply to the timestamp
 *    the answer reports (below): the file is asked for wall times that hold every such event
 *    (the bounds plus the clock offset, widened by the 1 s a kept timestamp may be off it),
 *    and what it returns outside the bounds once remapped is dropped, the next page read
 *    while that leaves the part short of its limit. (Filtering the file on wall time alone
 *    listed an event whose kept timestamp lay past time_end, and missed one just inside.)
 *    A time_start past the first memory event's timestamp keeps a query in memory (the file
 *    has no time index: without this a query of the last minutes would scan it whole). That
 *    takes the file's timestamps to be at most memory's first, true of those kept (this
 *    clock's, clamped in id order) but not always of those rebuilt from a wall time out of id
 *    order (a caller's wall_ns, an earlier boot's clock that stepped): such an event is not
 *    found by a query starting past memory's first timestamp.
 *    When one part is empty and nothing is skipped, the other part is the result as it is
 *    (merge_take: no copy). With lists to compare the result with (fdn_events_query_same),
 *    the memory part is compared in place where it is the whole result (no offset, and the
 *    memo says the file has none of the correlation below B, or a descending query that
 *    memory fills; for ascending also no match below B); else the merged list is compared.
 *  - a lookup by correlation id remembers when the file held none of the id's events below
 *    B (a memo of FDN__EVS_CORR_MEMO ids, by hash): every id below B was committed when B was
 *    read, so no event of that correlation can appear there later, and the next lookup reads
 *    the file only from that B on, or not at all when memory still starts there. A lookup of
 *    a correlation whose events are all in memory then costs no file read (it cost a read of
 *    the correlation index of every block: 0.2 ms at 1 M events). Only an unfiltered read of
 *    the whole range below B sets the memo; retention only deletes, so it never goes stale.
 *  - a from-position subscription behind the memory tier pages through the file
 *    (fdn__evs_disk_page); ids the file's own retention deleted are stepped over and counted.
 *  - a stopped store's file is closed (stop closes it under dmu), and a read checks that the
 *    store runs only on entry: a read that meets the closed file (get, a query's or lookup's
 *    file part, a page) fails with FDN_EUNAVAILABLE, the whole read with it. A closed file is
 *    never read as an empty one: that answered the memory part alone, FDN_ENOENT for events the
 *    file holds, moved a subscription's position past them, and set the correlation memo.
 *  - events read from the file get their timestamp on the store's monotonic clock as a
 *    reloaded file's do (kept when stamped by this clock, else rebuilt from wall time). A
 *    read takes the clock offset once (fdn__evs_clock_offset) and makes both its file part's
 *    wall-time bounds and those timestamps with it, and filters on those timestamps, so an
 *    event is never listed under a timestamp outside the read's bounds, a step of the wall
 *    clock during the read included.
 *    (Memory's part of a read on this backend uses no offset: its records keep the
 *    timestamps they were put with.)
 * Retention of the durable tier: run by the pruner thread after the memory tier's; it deletes
 * a prefix of ids (the file, like memory, holds a contiguous range: reads go to it by id
 * bounds), cut by count (newest - max_events) and by age: the longest prefix whose events are
 * all older than max_age (wall time), found by reading from the oldest id up to the first
 * event within the age (old_prefix; at most RETAIN_SCAN ids a run, dmu let go between
 * reads: a longer old prefix goes over several runs). Wall times come from callers (wall_ns)
 * and a clock that steps, and on a shared backend from many processes, so they are not in
 * id order: a binary search over ids took the recent events before an old one with it. An
 * old event after recent ones stays until they go. The memory tier then drops what the file
 * no longer holds (it caches the file). fdn_events_prune_before cuts the file the same way
 * (event_service.c): a prefix, ended by the first event not older than its cut by the
 * timestamp a read reports, found by the same scan (old_prefix, fdn__evs_disk_old_prefix).
 * Locks: `dmu` is held around every backend read and prune of this file (a stopping store
 * closes a SQLite backend under it); it is a leaf apart from the memory prune after it.
 */
#include <fdn/events.h>

#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "services/event_store_int.h"

/* Slots of the correlation memo (see above). */
#define FDN__EVS_CORR_MEMO 256

typedef struct evs_corr_memo {
    uint64_t hash;
    uint64_t below; /* no event of cid in the file has an id below this (0: empty slot) */
    char *cid;
} evs_corr_memo_t;

/* What the memo knows of cid: the file has none of its events below the id returned (0:
 * nothing known). */
static uint64_t memo_below(fdn_events_t *es, const char *cid, uint64_t h)
{
    uint64_t below = 0;
    fdn__mutex_lock(&es->cmu);
    if (es->cmemo != NULL) {
        const evs_corr_memo_t *m = &es->cmemo[h % FDN__EVS_CORR_MEMO];
        if (m->below != 0 && m->hash == h && strcmp(m->cid, cid) == 0)
            below = m->below;
    }
    fdn__mutex_unlock(&es->cmu);
    return below;
}

/* Remember that the file has none of cid's events below `below` (best effort: nothing is
 * remembered when memory is short). */
static void memo_none_below(fdn_events_t *es, const char *cid, uint64_t h, uint64_t below)
{
    fdn__mutex_lock(&es->cmu);
    if (es->cmemo == NULL)
        es->cmemo = fdn__calloc(FDN__EVS_CORR_MEMO, sizeof(*es->cmemo));
    if (es->cmemo != NULL) {
        evs_corr_memo_t *m = &es->cmemo[h % FDN__EVS_CORR_MEMO];
        if (m->below != 0 && m->hash == h && strcmp(m->cid, cid) == 0) {
            if (below > m->below)
                m->below = below;
        } else {
            char *c = fdn__strdup(cid);
            if (c != NULL) {
                fdn__free(m->cid);
                *m = (evs_corr_memo_t){h, below, c};
            }
        }
    }
    fdn__mutex_unlock(&es->cmu);
}

void fdn__evs_corr_memo_free(fdn_events_t *es)
{
    if (es->cmemo != NULL)
        for (size_t i = 0; i < FDN__EVS_CORR_MEMO; i++)
            fdn__free(es->cmemo[i].cid);
    fdn__free(es->cmemo);
    es->cmemo = NULL;
}

/* How far an event's epoch (wall - ts) may be from the clock offset for its timestamp to count
 * as stamped by this clock (kept by remap_ev), as a reloaded file's (event_service.c). */
#define SAME_CLOCK_NS 1000000000

/* Timestamps of events read from the file on the store's monotonic clock. */
static int64_t remapped_ts(const fdn_event_t *ev, int64_t off)
{
    int64_t epoch, d;
    if (!__builtin_sub_overflow(ev->wall, ev->ts, &epoch) &&
        !__builtin_sub_overflow(epoch, off, &d) && d >= -SAME_CLOCK_NS && d <= SAME_CLOCK_NS)
        return ev->ts; /* stamped by this clock */
    return fdn__evs_sat_add(ev->wall, off == INT64_MIN ? INT64_MAX : -off);
}

static void remap_ev(fdn_event_t *ev, int64_t off)
{
    ev->ts = remapped_ts(ev, off);
}

bool fdn__evs_disk_behind(fdn_events_t *es)
{
    return es->durable_path != NULL && es->sh == NULL &&
           atomic_load_explicit(&es->disk_first, memory_order_acquire) <
               atomic_load_explicit(&es->first_id, memory_order_acquire);
}

int fdn__evs_disk_get(fdn_events_t *es, uint64_t id, fdn_event_t **out)
{
    if (es->durable_path == NULL || es->sh != NULL ||
        id < atomic_load_explicit(&es->disk_first, memory_order_acquire) ||
        id >= atomic_load_explicit(&es->first_id, memory_order_acquire))
        return FDN_ENOENT;
    if (fdn__evs_disk_read_hook != NULL)
        fdn__evs_disk_read_hook(es, fdn__evs_disk_read_user);
    int rc = FDN_ENOENT;
    fdn__mutex_lock(&es->dmu);
    if (!fdn__evb_open(&es->be))
        rc = FDN_EUNAVAILABLE; /* stopped: the file is closed, not without the event */
    else if (es->be.ops->get != NULL)
        rc = es->be.ops->get(es->be.state, id, out, NULL);
    fdn__mutex_unlock(&es->dmu);
    if (rc == 0)
        remap_ev(*out, fdn__evs_clock_offset(es));
    return rc;
}

void (*fdn__evs_disk_read_hook)(fdn_events_t *es, void *user);
void *fdn__evs_disk_read_user;

static int merge(const fdn_event_list_t *first, const fdn_event_list_t *second, size_t skip,
                 size_t keep, fdn_event_list_t **out);

/* A time range [lo, hi] of timestamps as the file's query bounds: wall times that hold every
 * event a read would list with a timestamp in it (remap_ev with offset off): wall - off for
 * a rebuilt timestamp, within SAME_CLOCK_NS of it for a kept one. */
static void wall_query_bounds(int64_t lo, int64_t hi, int64_t off, fdn__evb_query_t *bq)
{
    bq->wall_start =
        lo == INT64_MIN ? INT64_MIN : fdn__evs_sat_add(fdn__evs_sat_add(lo, off), -SAME_CLOCK_NS);
    bq->wall_end =
        hi == INT64_MAX ? INT64_MAX : fdn__evs_sat_add(fdn__evs_sat_add(hi, off), SAME_CLOCK_NS);
}

/* The file's part of a read: ids in (q->after, before) with the query's filters, their
 * timestamps remapped with off, the clock offset the read took once (the one its time bounds
 * were made with). FDN_EUNAVAILABLE when the backend is closed (the store stopped after the
 * read checked that it runs): never an empty part, which the callers would take for the
 * file's answer (a query's result without it, a subscription's position past it, the
 * correlation memo). */
static int disk_part(fdn_events_t *es, const fdn__evb_query_t *bq, int64_t off,
                     fdn_event_list_t **out)
{
    int rc = 0;
    *out = NULL;
    if (fdn__evs_disk_read_hook != NULL)
        fdn__evs_disk_read_hook(es, fdn__evs_disk_read_user);
    atomic_fetch_add_explicit(&es->disk_reads, 1, memory_order_relaxed);
    fdn__mutex_lock(&es->dmu);
    if (!fdn__evb_open(&es->be))
        rc = FDN_EUNAVAILABLE;
    else if (es->be.ops->query != NULL)
        rc = es->be.ops->query(es->be.state, bq, out, NULL);
    fdn__mutex_unlock(&es->dmu);
    if (rc != 0)
        return rc;
    if (*out == NULL)
        return fdn__event_list_build(NULL, 0, out);
    for (size_t i = 0; i < (*out)->n; i++)
        remap_ev((*out)->items[i], off);
    return 0;
}

/* disk_part keeping only the events whose timestamp (remapped) lies in [ts_lo, ts_hi]. bq's
 * wall bounds (wall_query_bounds) hold every such event and a few more near the ends, dropped
 * here; while that leaves fewer than bq's limit after a full page, the next page is read. */
static int disk_part_in(fdn_events_t *es, const fdn__evb_query_t *bq, int64_t off, int64_t ts_lo,
                        int64_t ts_hi, fdn_event_list_t **out)
{
    fdn__evb_query_t q = *bq;
    fdn_event_list_t *acc = NULL;
    int rc;
    for (;;) {
        fdn_event_list_t *l = NULL;
        if ((rc = disk_part(es, &q, off, &l)) != 0)
            break;
        size_t got = l->n, k = 0;
        uint64_t last = got > 0 ? l->items[got - 1]->id : 0;
        for (size_t i = 0; i < got; i++)
            if (l->items[i]->ts >= ts_lo && l->items[i]->ts <= ts_hi)
                l->items[k++] = l->items[i];
        l->n = k; /* the dropped events stay in the list's block until it is freed */
        if (acc == NULL) {
            acc = l;
        } else {
            fdn_event_list_t *m = NULL;
            rc = merge(acc, l, 0, SIZE_MAX, &m);
            fdn_event_list_free(l);
            if (rc != 0)
                break;
            fdn_event_list_free(acc);
            acc = m;
        }
        if (got < q.limit || k == got || acc->n >= bq->limit)
            break; /* the file has no more, or nothing was dropped, or enough */
        q.limit = bq->limit - acc->n;
        if (q.descending)
            q.before = last; /* the rows below the page */
        else
            q.after = last;
    }
    if (rc != 0) {
        fdn_event_list_free(acc);
        return rc;
    }
    *out = acc;
    return 0;
}

int fdn__evs_disk_page(fdn_events_t *es, const char *type, const char *cid, uint64_t after,
                       uint64_t before, size_t max, fdn_event_list_t **out, uint64_t *skipped)
{
    *skipped = 0;
    *out = NULL;
    if (es->durable_path == NULL || es->sh != NULL)
        return fdn__event_list_build(NULL, 0, out);
    fdn__evb_query_t bq = fdn__evs_page_query(type, cid, after, before, max);
    int rc = disk_part(es, &bq, fdn__evs_clock_offset(es), out);
    if (rc != 0)
        return rc;
    /* ids below the file's oldest (read after the query: a prune may have run meanwhile)
     * that the page did not return are gone */
    uint64_t dfirst = atomic_load_explicit(&es->disk_first, memory_order_acquire);
    uint64_t upto = (*out)->n > 0 ? (*out)->items[0]->id : before;
    if (dfirst < upto)
        upto = dfirst;
    if (upto > after + 1)
        *skipped = upto - (after + 1);
    return 0;
}

int fdn__event_list_build(const fdn_event_t *const *evs, size_t n, fdn_event_list_t **out)
{
    size_t bytes = 0;
    fdn__event_fields_t f;
    for (size_t i = 0; i < n; i++) {
        fdn__event_to_fields(evs[i], &f);
        bytes += fdn__event_alloc_size(&f);
    }
    fdn_event_list_t *l = fdn__event_list_alloc(n, bytes);
    if (l == NULL)
        return FDN_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        fdn__event_to_fields(evs[i], &f);
        l->items[i] = fdn__event_place(fdn__event_list_mem(l, off), &f);
        off += fdn__event_alloc_size(&f);
    }
    *out = l;
    return 0;
}

/* first, then second, skipping `skip` events and keeping at most `keep`. */
static int merge(const fdn_event_list_t *first, const fdn_event_list_t *second, size_t skip,
                 size_t keep, fdn_event_list_t **out)
{
    size_t total = first->n + second->n;
    size_t from = skip < total ? skip : total;
    size_t n = total - from < keep ? total - from : keep;
    const fdn_event_t **v = fdn__malloc((n ? n : 1) * sizeof(*v));
    if (v == NULL)
        return FDN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t k = from + i;
        v[i] = k < first->n ? first->items[k] : second->items[k - first->n];
    }
    int rc = fdn__event_list_build(v, n, out);
    fdn__free(v);
    return rc;
}

/* Drop, in place, the events of l outside [lo, hi). */
static void keep_range(fdn_event_list_t *l, uint64_t lo, uint64_t hi)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i]->id >= lo && l->items[i]->id < hi)
            l->items[k++] = l->items[i];
    l->n = k; /* the dropped events stay in the list's block until it is freed */
}

/* first, then second, as merge does; when one of them is empty (or NULL: empty) and nothing
 * is skipped, the other is the result itself, taken without a copy (set to NULL). */
static int merge_take(fdn_event_list_t **first, fdn_event_list_t **second, size_t skip, size_t keep,
                      fdn_event_list_t **out)
{
    fdn_event_list_t **whole = *second == NULL || (*second)->n == 0 ? first
                               : *first == NULL || (*first)->n == 0 ? second
                                                                    : NULL;
    if (skip == 0 && whole != NULL && *whole != NULL) {
        *out = *whole;
        *whole = NULL;
        if ((*out)->n > keep)
            (*out)->n = keep; /* the rest stays in the list's block until it is freed */
        return 0;
    }
    fdn_event_list_t none = {0, NULL};
    return merge(*first ? *first : &none, *second ? *second : &none, skip, keep, out);
}

/* Whether the events of l all lie at or above b (l is in id order, either way). */
static bool all_from(const fdn_event_list_t *l, uint64_t b)
{
    return l->n == 0 || FDN_MIN(l->items[0]->id, l->items[l->n - 1]->id) >= b;
}

int fdn__evs_disk_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                        evs_same_t *same, fdn_event_list_t **out, bool *handled)
{
    *handled = false;
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t dfirst = atomic_load_explicit(&es->disk_first, memory_order_acquire);
    if (q->after_id + 1 >= first || (q->before_id != 0 && q->before_id <= dfirst))
        return 0; /* the range lies in memory, or below the file's oldest id */
    if (q->time_start != INT64_MIN) {
        /* time order is id order: nothing older than memory's oldest event can match */
        fdn__rwlock_rdlock(&es->plock);
        const evs_rec_t *r = fdn__evs_rec_lookup(es, atomic_load(&es->first_id));
        bool in_memory = r != NULL && q->time_start > r->ts;
        fdn__rwlock_rdunlock(&es->plock);
        if (in_memory)
            return 0;
    }
    *handled = true;
    uint64_t want64 = (uint64_t)limit + (uint64_t)q->offset;
    size_t want = want64 > SIZE_MAX ? SIZE_MAX : (size_t)want64;
    fdn_events_query_t q2 = *q;
    q2.offset = 0;
    fdn_event_list_t *mem = NULL, *disk = NULL;
    uint64_t snap = 0;
    /* by correlation id: the file only from where the memo knows nothing (module comment).
     * Read before the memory part: whatever it says holds at any later time too. */
    bool by_corr = q->correlation_id != NULL && q->correlation_id[0] != '\0';
    uint64_t h = by_corr ? fdn__hash_str(q->correlation_id) : 0;
    uint64_t known = by_corr ? memo_below(es, q->correlation_id, h) : 0;
    /* the memory part compared with same's lists in place where the result may be that part
     * as it is (no offset; the file known to hold none of it, or a descending query that
     * memory fills); else the merged result is compared at the end */
    evs_same_t *msame =
        same != NULL && q->offset == 0 && (known > 0 || q->descending) ? same : NULL;
    /* one clock offset for the file's time bounds and its events' timestamps */
    int64_t off = fdn__evs_clock_offset(es);
    if (same != NULL)
        same->which = SIZE_MAX;
    int rc;
again:
    rc = fdn__evs_query_same(es, &q2, want, NULL, msame, &mem, &snap);
    if (rc != 0)
        return rc;
    /* every id below B is in the file (memory evicts only committed events) */
    uint64_t b = atomic_load_explicit(&es->first_id, memory_order_acquire);
    const fdn_event_list_t *hit = msame != NULL && msame->which != SIZE_MAX
                                      ? msame->prev[msame->which]
                                      : NULL; /* memory's part, equal to this list */
    if (q->descending && (hit != NULL ? hit->n : mem->n) >= want) {
        if (hit != NULL)
            return 0; /* the result is memory's part */
        rc = merge_take(&mem, &disk, (size_t)q->offset, limit, out);
        fdn_event_list_free(mem);
        goto compare;
    }
    fdn__evb_query_t bq = {.type = q->type,
                           .correlation_id = q->correlation_id,
                           .after = q->after_id,
                           .before = q->before_id != 0 && q->before_id < b ? q->before_id : b,
                           .limit = want,
                           .descending = q->descending,
                           .parent_id = q->parent_id};
    wall_query_bounds(q->time_start, q->time_end, off, &bq);
    if (hit != NULL) {
        /* the file has none of the result below B, and memory's part holds nothing below B
         * (ascending drops those): the result is that part */
        if (known >= bq.before && (q->descending || all_from(hit, b)))
            return 0;
        msame->which = SIZE_MAX; /* rare: run it again with a list to merge */
        msame = NULL;
        goto again;
    }
    bool whole = by_corr && q->type == NULL && q->parent_id == 0 && q->time_start == INT64_MIN &&
                 q->time_end == INT64_MAX && bq.before == b && q->after_id + 1 <= FDN_MAX(known, 1);
    if (known > 0 && known - 1 > bq.after)
        bq.after = known - 1;
    if (known >= bq.before)
        disk = NULL; /* the file has none of them there: an empty part */
    else if ((rc = disk_part_in(es, &bq, off, q->time_start, q->time_end, &disk)) == 0 &&
             disk->n == 0 && whole)
        memo_none_below(es, q->correlation_id, h, b);
    if (rc != 0) {
        fdn_event_list_free(mem);
        return rc;
    }
    if (!q->descending) {
        keep_range(mem, b, UINT64_MAX); /* below B: the file's */
        rc = merge_take(&disk, &mem, (size_t)q->offset, limit, out);
    } else {
        /* memory returned every match it holds (fewer than want): the file's part is what
         * lies below memory's smallest result and below B */
        uint64_t lowest = mem->n > 0 ? mem->items[mem->n - 1]->id : UINT64_MAX;
        if (disk != NULL)
            keep_range(disk, 0, lowest < b ? lowest : b);
        rc = merge_take(&mem, &disk, (size_t)q->offset, limit, out);
    }
    fdn_event_list_free(mem);
    fdn_event_list_free(disk);
compare:
    for (size_t k = 0; rc == 0 && same != NULL && k < same->n; k++)
        if (fdn__evs_lists_equal(*out, same->prev[k])) {
            same->which = k;
            fdn_event_list_free(*out);
            *out = NULL;
            break;
        }
    return rc;
}

int fdn__evs_disk_correlation(fdn_events_t *es, const char *cid, fdn_event_list_t **out,
                              bool *handled)
{
    *handled = false;
    if (!fdn__evs_disk_behind(es))
        return 0;
    *handled = true;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = cid;
    fdn_event_list_t *mem = NULL, *disk = NULL;
    uint64_t snap = 0;
    int rc = fdn__evs_query(es, &q, 0, NULL, &mem, &snap);
    if (rc != 0)
        return rc;
    uint64_t b = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t h = fdn__hash_str(cid), known = cid[0] != '\0' ? memo_below(es, cid, h) : 0;
    fdn__evb_query_t bq = {.correlation_id = cid,
                           .wall_start = INT64_MIN,
                           .wall_end = INT64_MAX,
                           .after = known > 0 ? known - 1 : 0,
                           .before = b,
                           .limit = SIZE_MAX};
    if (known >= b)
        disk = NULL; /* the file has none of them there: an empty part */
    else if ((rc = disk_part(es, &bq, fdn__evs_clock_offset(es), &disk)) == 0 && disk->n == 0 &&
             cid[0] != '\0')
        memo_none_below(es, cid, h, b);
    if (rc == 0) {
        keep_range(mem, b, UINT64_MAX);
        rc = merge_take(&disk, &mem, 0, SIZE_MAX, out);
    }
    fdn_event_list_free(mem);
    fdn_event_list_free(disk);
    return rc;
}

/* ---- the durable tier's retention ---- */

/* Retention by age reads at most this many ids per run (in reads of RETAIN_READ ids, dmu
 * released between them); an older prefix that is longer is deleted over several runs.
 * fdn_events_prune_before scans with the same bound per call of old_prefix, and calls it
 * again until its prefix ends. */
#define RETAIN_READ 65536u
#define RETAIN_SCAN (16u * RETAIN_READ)
/* Events one read of old_prefix judges with its `old` (a read ends early at a recent one). */
#define OLD_READ 256u

/* The end of the longest prefix of the ids in [lo, hi) whose events are all old: the first id
 * whose event is not (hi when none; ids the backend no longer holds count as old: they are a
 * pruned prefix), read from lo up and at most RETAIN_SCAN ids: when the prefix goes on past
 * them, *out is where the reading stopped (*ended false; true when *out is a recent event's
 * id or hi). An event is recent when its wall time is >= wall and, with `old`, old(ev, user)
 * is false (old NULL: the wall time decides; with old, wall is a lower bound of every recent
 * event's wall time, which the backend's query applies). Read with the backend's query (the
 * wall bound; one event, or OLD_READ with `old`). Wall times are not in id order (a caller's
 * wall_ns, a wall clock that steps, other processes' commits on a shared backend), so this is
 * a scan, not a binary search: one old event after newer ones must not take them with it.
 * Caller holds dmu; it is released between reads, and the backend may close meanwhile
 * (FDN_EUNAVAILABLE). Rows are never changed, only deleted from the oldest, so a prefix found
 * old stays old whatever ran between the reads. */
static int old_prefix(fdn_events_t *es, uint64_t lo, uint64_t hi, int64_t wall,
                      bool (*old)(const fdn_event_t *ev, void *user), void *user, uint64_t *out,
                      bool *ended) FDN_REQUIRES(es->dmu)
{
    uint64_t end = hi - lo > RETAIN_SCAN ? lo + RETAIN_SCAN : hi;
    size_t limit = old != NULL ? OLD_READ : 1;
    while (lo < end) {
        uint64_t to = end - lo > RETAIN_READ ? lo + RETAIN_READ : end;
        fdn__evb_query_t q = {.wall_start = wall,
                              .wall_end = INT64_MAX,
                              .after = lo > 0 ? lo - 1 : 0,
                              .before = to,
                              .limit = limit};
        fdn_event_list_t *l = NULL;
        int rc = es->be.ops->query(es->be.state, &q, &l, NULL);
        if (rc != 0)
            return rc;
        uint64_t found = 0, next = to;
        size_t n = l != NULL ? l->n : 0;
        for (size_t i = 0; i < n && found == 0; i++)
            if (old == NULL || !old(l->items[i], user))
                found = l->items[i]->id;
        if (found == 0 && n == limit) /* all old, and more may follow in [lo, to) */
            next = l->items[n - 1]->id + 1;
        fdn_event_list_free(l);
        if (found != 0) {
            *out = found;
            *ended = true;
            return 0;
        }
        lo = next;
        if (lo < end) { /* let the file's readers in between */
            fdn__mutex_unlock(&es->dmu);
            fdn__mutex_lock(&es->dmu);
            if (!fdn__evb_open(&es->be))
                return FDN_EUNAVAILABLE;
        }
    }
    *out = end;
    *ended = end == hi;
    return 0;
}

typedef struct ts_cut {
    int64_t ts;  /* old: timestamp < ts */
    int64_t off; /* the clock offset the timestamps are made with */
} ts_cut_t;

/* Whether ev is older than the cut by the timestamp a read of the file reports (remap_ev). */
static bool older_than_cut(const fdn_event_t *ev, void *user)
{
    const ts_cut_t *c = user;
    return remapped_ts(ev, c->off) < c->ts;
}

int fdn__evs_disk_old_prefix(fdn_events_t *es, uint64_t lo, uint64_t hi, int64_t ts, int64_t off,
                             uint64_t *out, bool *ended)
{
    if (!fdn__evb_open(&es->be) || es->be.ops->query == NULL)
        return FDN_EUNAVAILABLE;
    /* an event older than ts by its read timestamp may have a wall time up to ts + off + 1 s
     * (kept timestamps are up to SAME_CLOCK_NS off their wall time): every recent one has a
     * wall time >= ts + off - 1 s */
    ts_cut_t c = {ts, off};
    int64_t wall = fdn__evs_sat_add(fdn__evs_sat_add(ts, off), -SAME_CLOCK_NS);
    return old_prefix(es, lo, hi, wall, older_than_cut, &c, out, ended);
}

uint64_t fdn__evs_durable_retention(fdn_events_t *es)
{
    uint64_t max_events = atomic_load_explicit(&es->warm_max_events, memory_order_relaxed);
    int64_t max_age = atomic_load_explicit(&es->warm_max_age_ns, memory_order_relaxed);
    if (max_events == 0 && max_age == 0)
        return 0;
    uint64_t removed = 0, cut = 0;
    fdn__mutex_lock(&es->dmu);
    const fdn__evb_ops_t *ops = es->be.ops;
    if (ops == NULL || ops->prune == NULL || ops->query == NULL) {
        fdn__mutex_unlock(&es->dmu);
        return 0;
    }
    uint64_t oldest = 0, newest = 0;
    if (es->sh != NULL) { /* shared: the whole log, every process's events */
        fdn__evb_stats_t st = {0};
        if (ops->stats == NULL || ops->stats(es->be.state, &st, NULL) != 0) {
            fdn__mutex_unlock(&es->dmu);
            return 0;
        }
        oldest = st.oldest;
        newest = st.newest;
        if (st.count == 0) /* pruned empty (by any process): memory keeps none of it */
            oldest = atomic_load_explicit(&es->published, memory_order_acquire) + 1;
    } else { /* write-behind: the file holds [disk_first, persisted] */
        oldest = atomic_load_explicit(&es->disk_first, memory_order_acquire);
        newest = atomic_load_explicit(&es->persisted, memory_order_acquire);
    }
    int rc = 0;
    if (newest >= oldest && newest > 0) {
        if (max_events > 0 && newest - oldest + 1 > max_events)
            cut = newest - max_events + 1;
        if (max_age > 0) {
            int64_t wall = fdn_clock_wall_ns(es->clock);
            uint64_t c = 0;
            bool ended = false;
            rc = old_prefix(es, FDN_MAX(oldest, cut), newest + 1,
                            wall > INT64_MIN + max_age ? wall - max_age : INT64_MIN, NULL, NULL, &c,
                            &ended);
            if (rc == 0)
                cut = FDN_MAX(cut, c);
        }
        if (rc == 0 && cut > oldest)
            rc = es->be.ops->prune(es->be.state, cut, &removed, NULL); /* open: old_prefix */
        else
            cut = 0;
    }
    if (rc == 0 && cut > 0) {
        uint64_t d = atomic_load_explicit(&es->disk_first, memory_order_relaxed);
        while (d < cut && !atomic_compare_exchange_weak(&es->disk_first, &d, cut)) {
        }
        atomic_fetch_add_explicit(&es->durable_pruned_total, removed, memory_order_relaxed);
    }
    fdn__mutex_unlock(&es->dmu);
    fdn__gate_pass_t tp;
    fdn_telemetry_t *tm = removed > 0 ? fdn__evs_tm_enter(es, &tp) : NULL;
    if (tm != NULL) {
        fdn_telemetry_emit_counter_n(tm, "foundation.event_store.durable_pruned", removed, NULL, 0);
        fdn__evs_tm_leave(&tp);
    }
    /* the memory tier caches the durable one: it does not keep what the durable tier dropped
     * (here, or in another process sharing the log) */
    uint64_t gone = rc == 0 ? FDN_MAX(cut, oldest) : 0;
    if (gone > atomic_load_explicit(&es->first_id, memory_order_acquire))
        (void)fdn__evs_prune_ids(es, FDN_MIN(gone, atomic_load(&es->published) + 1));
    return removed;
}

int fdn_events_set_durable_retention(fdn_events_t *es, uint64_t max_events, int64_t max_age_ns)
{
    if (es == NULL || fdn__events_check_ns(max_age_ns) != 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->warm_max_events, max_events, memory_order_relaxed);
    atomic_store_explicit(&es->warm_max_age_ns, max_age_ns, memory_order_relaxed);
    fdn_clock_kick(es->clock);
    return 0;
}

int fdn_events_durable_status(fdn_events_t *es, fdn_events_durable_status_t *out)
{
    if (es == NULL || out == NULL)
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    out->max_events = atomic_load_explicit(&es->warm_max_events, memory_order_relaxed);
    out->max_age_ns = atomic_load_explicit(&es->warm_max_age_ns, memory_order_relaxed);
    out->pruned = atomic_load_explicit(&es->durable_pruned_total, memory_order_relaxed);
    out->enabled = es->durable_path != NULL || es->sh != NULL;
    if (!out->enabled)
        return 0;
    fdn__evb_stats_t st = {0};
    int rc = FDN_EUNAVAILABLE;
    fdn__mutex_lock(&es->dmu);
    if (fdn__evb_open(&es->be) && es->be.ops->stats != NULL)
        rc = es->be.ops->stats(es->be.state, &st, NULL);
    fdn__mutex_unlock(&es->dmu);
    if (rc != 0)
        return rc;
    out->count = st.count;
    out->oldest_id = st.oldest;
    out->newest_id = st.newest;
    return 0;
}

enum { IX_SEEN = 1u, IX_HAS = 2u, IX_CURRENT = 4u };

/* The status as the last call that took dmu read it (false: none did yet). */
static bool index_status_seen(fdn_events_t *es, fdn_events_index_status_t *st)
{
    unsigned f = atomic_load_explicit(&es->ix_seen_flags, memory_order_acquire);
    if ((f & IX_SEEN) == 0)
        return false;
    st->has_index = (f & IX_HAS) != 0;
    if (st->has_index) {
        st->current = (f & IX_CURRENT) != 0;
        st->behind_blocks = atomic_load_explicit(&es->ix_seen_behind, memory_order_relaxed);
        st->failures = atomic_load_explicit(&es->ix_seen_failures, memory_order_relaxed);
        st->last_error = atomic_load_explicit(&es->ix_seen_error, memory_order_relaxed);
    }
    return true;
}

int fdn_events_index_status(fdn_events_t *es, fdn_events_index_status_t *st)
{
    if (es == NULL || st == NULL || st->version != FDN_EVENTS_INDEX_STATUS_VERSION)
        return FDN_EINVAL;
    memset(st, 0, sizeof(*st));
    st->version = FDN_EVENTS_INDEX_STATUS_VERSION;
    if (es->durable_path == NULL || es->sh != NULL)
        return 0; /* memory only, or a shared backend (no index of its own that lags) */
    /* dmu only keeps the backend from closing under the read (the status itself is atomics),
     * but every read and prune of the file holds it, and a durable prune of many rows holds it
     * for as long as the delete takes: /metrics asks on every scrape and must not wait for
     * that. So while dmu is busy, the answer is the status the last call read. */
    if (!fdn__mutex_trylock(&es->dmu)) {
        if (index_status_seen(es, st))
            return 0;
        fdn__mutex_lock(&es->dmu); /* nothing read yet: wait this once */
    }
    fdn__evb_index_t ix = {0};
    int rc = FDN_EUNAVAILABLE;
    if (fdn__evb_open(&es->be)) {
        rc = 0;
        st->has_index = es->be.ops->index != NULL;
        if (st->has_index)
            es->be.ops->index(es->be.state, &ix);
    }
    fdn__mutex_unlock(&es->dmu);
    if (rc != 0)
        return rc;
    st->current = st->has_index && ix.current;
    st->behind_blocks = ix.behind;
    st->failures = ix.failures;
    st->last_error = ix.last_error;
    atomic_store_explicit(&es->ix_seen_behind, ix.behind, memory_order_relaxed);
    atomic_store_explicit(&es->ix_seen_failures, ix.failures, memory_order_relaxed);
    atomic_store_explicit(&es->ix_seen_error, ix.last_error, memory_order_relaxed);
    atomic_store_explicit(&es->ix_seen_flags,
                          IX_SEEN | (st->has_index ? IX_HAS : 0u) | (st->current ? IX_CURRENT : 0u),
                          memory_order_release);
    return 0;
}
