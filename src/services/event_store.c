/*
 * DESIGN: the event store's memory tier: append, indexes, queries, prune, statistics.
 *
 * Layout. Events live in segments: each segment holds up to 4096 consecutive ids, their
 * records packed in one arena (record = fixed header + data) and a table of arena offsets,
 * so id -> record is a binary search over the segment directory plus an index. Ids are
 * dense (ids are assigned only to events that are stored), and time order equals id order
 * (a timestamp earlier than the newest one is raised to it), so a time bound is a binary
 * search over ids. Indexes: per type a posting list of ids (chunked array, binary search
 * for cursors and time bounds); per correlation id an entry holding its newest id, each
 * record linking to the previous id of its correlation (walked newest first); names (types,
 * nodes, correlation ids) are interned in open-addressing tables.
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
 *    posting chunks, correlation entries and retired memory.
 * Invariants: first_id <= published + 1; every id in [first_id, published] has a record;
 * posting lists and correlation chains hold only ids in that range once published.
 */
#include <fdn/events.h>

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "services/event_store_int.h"

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)
#define REC_HDR   offsetof(evs_rec_t, data)
#define ARENA_MIN (64u * 1024u)
#define ARENA_MAX (4u * 1024u * 1024u)
#define TAB_INIT  64u

static char k_tomb;
#define TOMB ((void *)&k_tomb)

static void account(fdn_events_t *es, int64_t delta)
{
    atomic_fetch_add_explicit(&es->bytes_alloc, (uint64_t)delta, memory_order_relaxed);
}

/* Remember p to free once no reader can hold it. Caller holds amu. */
static int retire(fdn_events_t *es, void *p)
{
    if (es->nretired == es->capretired) {
        size_t nc = es->capretired ? es->capretired * 2 : 16;
        void **n = fdn__realloc(es->retired, nc * sizeof(void *));
        if (n == NULL)
            return FDN_ENOMEM;
        es->retired = n;
        es->capretired = nc;
    }
    es->retired[es->nretired++] = p;
    return 0;
}

/* ---- interning tables ---- */

typedef struct hkey {
    uint64_t hash;
    uint32_t len;
} hkey_t;

static evs_tab_t *tab_new(size_t size)
{
    evs_tab_t *t = fdn__calloc(1, sizeof(evs_tab_t) + size * sizeof(void *));
    if (t == NULL)
        return NULL;
    t->mask = size - 1;
    for (size_t i = 0; i < size; i++)
        atomic_init(&t->slots[i], NULL);
    return t;
}

/* Reader-safe lookup. name_off: offset of the name in the entry type. */
static void *tab_find(evs_tab_t *t, const char *s, size_t n, uint64_t h, size_t name_off)
{
    for (size_t i = h & t->mask, probes = 0; probes <= t->mask; i = (i + 1) & t->mask, probes++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (e == NULL)
            return NULL;
        if (e == TOMB)
            continue;
        const hkey_t *k = e;
        if (k->hash == h && k->len == n && memcmp((char *)e + name_off, s, n) == 0)
            return e;
    }
    return NULL;
}

static void tab_put(evs_tab_t *t, void *e)
{
    const hkey_t *k = e;
    size_t i = k->hash & t->mask;
    for (;;) {
        void *cur = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (cur == NULL) {
            atomic_store_explicit(&t->slots[i], e, memory_order_release);
            t->used++;
            return;
        }
        i = (i + 1) & t->mask;
    }
}

/* Make room for one insert (writer, under amu). */
static int tab_reserve(fdn_events_t *es, _Atomic(evs_tab_t *) *tp)
{
    evs_tab_t *t = atomic_load_explicit(tp, memory_order_relaxed);
    if ((t->used + 1) * 2 <= t->mask + 1)
        return 0;
    size_t live = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        live += e != NULL && e != TOMB;
    }
    size_t size = t->mask + 1;
    while ((live + 1) * 4 > size)
        size *= 2;
    evs_tab_t *nt = tab_new(size);
    if (nt == NULL)
        return FDN_ENOMEM;
    if (retire(es, t) != 0) {
        fdn__free(nt);
        return FDN_ENOMEM;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e != NULL && e != TOMB)
            tab_put(nt, e);
    }
    account(es, (int64_t)(size * sizeof(void *)) - (int64_t)((t->mask + 1) * sizeof(void *)));
    atomic_store_explicit(tp, nt, memory_order_release);
    return 0;
}

static int sym_intern_slow(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s, size_t n,
                           evs_sym_t **out);

static int sym_intern(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s, size_t n,
                      evs_sym_t **out)
{
    evs_sym_t **cache = tp == &es->types ? &es->last_type : &es->last_node;
    evs_sym_t *c = *cache;
    if (c != NULL && c->len == n && memcmp(c->name, s, n) == 0) {
        *out = c;
        return 0;
    }
    int rc = sym_intern_slow(es, tp, s, n, out);
    if (rc == 0)
        *cache = *out;
    return rc;
}

static int sym_intern_slow(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s, size_t n,
                           evs_sym_t **out)
{
    uint64_t h = fdn__hash(s, n);
    evs_sym_t *e = tab_find(atomic_load_explicit(tp, memory_order_relaxed), s, n, h,
                            offsetof(evs_sym_t, name));
    if (e != NULL) {
        *out = e;
        return 0;
    }
    if (tab_reserve(es, tp) != 0)
        return FDN_ENOMEM;
    e = fdn__calloc(1, sizeof(*e) + n + 1);
    if (e == NULL)
        return FDN_ENOMEM;
    e->hash = h;
    e->len = (uint32_t)n;
    memcpy(e->name, s, n);
    atomic_init(&e->post.dir, NULL);
    atomic_init(&e->post.head, 0);
    atomic_init(&e->post.n, 0);
    atomic_init(&e->count, 0);
    atomic_init(&e->bytes, 0);
    account(es, (int64_t)(sizeof(*e) + n + 1));
    if (tp == &es->types)
        atomic_fetch_add_explicit(&es->ntypes, 1, memory_order_relaxed);
    tab_put(atomic_load_explicit(tp, memory_order_relaxed), e);
    *out = e;
    return 0;
}

static int corr_intern(fdn_events_t *es, const char *s, size_t n, evs_corr_t **out)
{
    evs_corr_t *lc = es->last_corr;
    if (lc != NULL && lc->len == n && memcmp(lc->name, s, n) == 0) {
        *out = lc;
        return 0;
    }
    uint64_t h = fdn__hash(s, n);
    evs_corr_t *e = tab_find(atomic_load_explicit(&es->corrs, memory_order_relaxed), s, n, h,
                             offsetof(evs_corr_t, name));
    if (e != NULL) {
        *out = es->last_corr = e;
        return 0;
    }
    if (tab_reserve(es, &es->corrs) != 0)
        return FDN_ENOMEM;
    e = fdn__malloc(sizeof(*e) + n + 1);
    if (e == NULL)
        return FDN_ENOMEM;
    e->hash = h;
    e->len = (uint32_t)n;
    atomic_init(&e->last_id, 0);
    memcpy(e->name, s, n);
    e->name[n] = '\0';
    account(es, (int64_t)(sizeof(*e) + n + 1));
    tab_put(atomic_load_explicit(&es->corrs, memory_order_relaxed), e);
    *out = es->last_corr = e;
    return 0;
}

/* ---- posting lists ---- */

static uint64_t post_at(const evs_posting_t *p, uint64_t **dir, size_t i)
{
    return dir[i / EVS_PCHUNK - p->base_chunk][i % EVS_PCHUNK];
}

/* Ensure room for n + resv entries (writer). */
static int post_reserve(fdn_events_t *es, evs_posting_t *p)
{
    size_t need = atomic_load_explicit(&p->n, memory_order_relaxed) + p->resv;
    size_t chunks = (need + EVS_PCHUNK - 1) / EVS_PCHUNK - p->base_chunk;
    while (p->nchunks < chunks) {
        uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
        if (p->nchunks == p->dir_cap) {
            size_t nc = p->dir_cap ? p->dir_cap * 2 : 4;
            uint64_t **nd = fdn__calloc(nc, sizeof(uint64_t *));
            if (nd == NULL)
                return FDN_ENOMEM;
            if (dir != NULL && retire(es, dir) != 0) {
                fdn__free(nd);
                return FDN_ENOMEM;
            }
            if (dir != NULL)
                memcpy(nd, dir, p->nchunks * sizeof(uint64_t *));
            account(es, (int64_t)((nc - p->dir_cap) * sizeof(uint64_t *)));
            p->dir_cap = nc;
            atomic_store_explicit(&p->dir, nd, memory_order_release);
            dir = nd;
        }
        uint64_t *c = fdn__malloc(EVS_PCHUNK * sizeof(uint64_t));
        if (c == NULL)
            return FDN_ENOMEM;
        account(es, EVS_PCHUNK * sizeof(uint64_t));
        dir[p->nchunks++] = c;
    }
    return 0;
}

/* First global index in [lo, hi) whose id >= id. */
static size_t post_lower(const evs_posting_t *p, uint64_t **dir, size_t lo, size_t hi, uint64_t id)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (post_at(p, dir, mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- segments ---- */

/* The segment whose id range contains id (NULL when none). */
static evs_seg_t *seg_find(fdn_events_t *es, uint64_t id)
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

static evs_rec_t *seg_rec(evs_seg_t *s, uint64_t id)
{
    uint64_t idx = id - s->first_id;
    if (idx >= atomic_load_explicit(&s->count, memory_order_acquire))
        return NULL;
    return (evs_rec_t *)(void *)(s->arena + s->offs[idx]);
}

static evs_rec_t *rec_lookup(fdn_events_t *es, uint64_t id)
{
    if (id < atomic_load_explicit(&es->first_id, memory_order_acquire))
        return NULL;
    evs_seg_t *s = seg_find(es, id);
    return s ? seg_rec(s, id) : NULL;
}

/* rec_lookup with a cached segment: consecutive lookups in one segment skip the search. */
static evs_rec_t *rec_lookup_hint(fdn_events_t *es, uint64_t id, evs_seg_t **hint)
{
    if (id < atomic_load_explicit(&es->first_id, memory_order_acquire))
        return NULL;
    evs_seg_t *s = *hint;
    if (s != NULL && id >= s->first_id) {
        evs_rec_t *r = seg_rec(s, id);
        if (r != NULL)
            return r;
    }
    s = seg_find(es, id);
    if (s == NULL)
        return NULL;
    *hint = s;
    return seg_rec(s, id);
}

static size_t rec_size(size_t data_len)
{
    return ALIGN8(REC_HDR + data_len);
}

static evs_seg_t *seg_new(fdn_events_t *es, size_t arena)
{
    evs_seg_t *s = fdn__malloc(sizeof(*s) + arena);
    if (s == NULL)
        return NULL;
    s->first_id = 0;
    atomic_init(&s->count, 0);
    s->arena_cap = arena;
    s->arena_used = 0;
    s->arena = (uint8_t *)(s + 1);
    account(es, (int64_t)(sizeof(*s) + arena));
    return s;
}

static void seg_free(fdn_events_t *es, evs_seg_t *s)
{
    account(es, -(int64_t)(sizeof(*s) + s->arena_cap));
    fdn__free(s);
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

static int segdir_push(fdn_events_t *es, evs_seg_t *s)
{
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    if (d == NULL || n == d->cap) {
        size_t nc = d ? d->cap * 2 : 16;
        evs_segdir_t *nd = fdn__malloc(sizeof(*nd) + nc * sizeof(evs_segent_t));
        if (nd == NULL)
            return FDN_ENOMEM;
        if (d != NULL && retire(es, d) != 0) {
            fdn__free(nd);
            return FDN_ENOMEM;
        }
        nd->cap = nc;
        if (d != NULL)
            memcpy(nd->segs, d->segs, n * sizeof(evs_segent_t));
        account(es, (int64_t)((nc - (d ? d->cap : 0)) * sizeof(evs_segent_t)));
        atomic_store_explicit(&es->segdir, nd, memory_order_release);
        d = nd;
    }
    d->segs[n].first_id = s->first_id;
    d->segs[n].seg = s;
    atomic_store_explicit(&es->seg_n, n + 1, memory_order_release);
    return 0;
}

/* ---- init / fini ---- */

int fdn__evs_init(fdn_events_t *es)
{
    evs_tab_t *a = tab_new(TAB_INIT), *b = tab_new(TAB_INIT), *c = tab_new(TAB_INIT);
    if (a == NULL || b == NULL || c == NULL) {
        fdn__free(a);
        fdn__free(b);
        fdn__free(c);
        return FDN_ENOMEM;
    }
    atomic_init(&es->types, a);
    atomic_init(&es->nodes, b);
    atomic_init(&es->corrs, c);
    atomic_init(&es->segdir, NULL);
    atomic_init(&es->seg_head, 0);
    atomic_init(&es->seg_n, 0);
    atomic_init(&es->published, 0);
    atomic_init(&es->first_id, 1);
    es->next_id = 1;
    es->last_ts = INT64_MIN;
    account(es, 3 * TAB_INIT * sizeof(void *));
    return 0;
}

static void free_tab(evs_tab_t *t, bool syms)
{
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e == NULL || e == TOMB)
            continue;
        if (syms) {
            evs_sym_t *s = e;
            uint64_t **dir = atomic_load_explicit(&s->post.dir, memory_order_relaxed);
            for (size_t k = 0; k < s->post.nchunks; k++)
                fdn__free(dir[k]);
            fdn__free(dir);
        }
        fdn__free(e);
    }
    fdn__free(t);
}

void fdn__evs_fini(fdn_events_t *es)
{
    evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
    for (size_t i = atomic_load_explicit(&es->seg_head, memory_order_relaxed); i < n; i++)
        fdn__free(d->segs[i].seg);
    fdn__free(d);
    free_tab(atomic_load_explicit(&es->types, memory_order_relaxed), true);
    free_tab(atomic_load_explicit(&es->nodes, memory_order_relaxed), true);
    free_tab(atomic_load_explicit(&es->corrs, memory_order_relaxed), false);
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

int fdn__evs_append_locked(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, uint64_t *ids)
{
    prep_t one[1] = {{NULL, NULL, NULL}};
    prep_t *pr = n == 1 ? one : fdn__calloc(n, sizeof(prep_t));
    evs_seg_t *spare[8];
    evs_seg_t **newsegs = spare;
    size_t nnew = 0, capnew = 8;
    int rc = 0;
    if (pr == NULL)
        return FDN_ENOMEM;
    /* the rollback below reads every entry, also those the loop did not reach */
    for (size_t i = 0; i < n; i++)
        pr[i] = (prep_t){NULL, NULL, NULL};
    /* 1. reserve everything the batch needs */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdn_event_t *ev = evs[i];
        rc = sym_intern(es, &es->types, ev->type, ev->type_len, &pr[i].type);
        if (rc == 0)
            rc = sym_intern(es, &es->nodes, ev->node, ev->node_len, &pr[i].node);
        if (rc == 0 && ev->corr_len > 0)
            rc = corr_intern(es, ev->corr, ev->corr_len, &pr[i].corr);
        if (rc == 0) {
            pr[i].type->post.resv++;
            rc = post_reserve(es, &pr[i].type->post);
        }
    }
    if (rc == 0) {
        size_t sn = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
        size_t sh = atomic_load_explicit(&es->seg_head, memory_order_relaxed);
        evs_seg_t *cur =
            sn > sh ? atomic_load_explicit(&es->segdir, memory_order_relaxed)->segs[sn - 1].seg
                    : NULL;
        size_t used = cur ? cur->arena_used : 0,
               cnt = cur ? atomic_load_explicit(&cur->count, memory_order_relaxed) : 0;
        size_t cap = cur ? cur->arena_cap : 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            size_t sz = rec_size(evs[i]->data_len);
            bool gap = i == 0 && cur != NULL && cur->first_id + cnt != es->next_id;
            if (cur != NULL && !gap && cnt < EVS_SEG_EVENTS && used + sz <= cap) {
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
            cap = cur->arena_cap;
        }
        /* directory room for the new segments */
        evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
        while (rc == 0 && nnew > 0 && (d == NULL || sn + nnew > d->cap)) {
            size_t nc = d ? d->cap * 2 : 16;
            while (sn + nnew > nc)
                nc *= 2;
            evs_segdir_t *nd = fdn__malloc(sizeof(*nd) + nc * sizeof(evs_segent_t));
            if (nd == NULL || (d != NULL && retire(es, d) != 0)) {
                fdn__free(nd);
                rc = FDN_ENOMEM;
                break;
            }
            nd->cap = nc;
            if (d != NULL)
                memcpy(nd->segs, d->segs, sn * sizeof(evs_segent_t));
            account(es, (int64_t)((nc - (d ? d->cap : 0)) * sizeof(evs_segent_t)));
            atomic_store_explicit(&es->segdir, nd, memory_order_release);
            d = nd;
        }
    }
    if (rc != 0) {
        for (size_t i = 0; i < nnew; i++)
            seg_free(es, newsegs[i]);
        for (size_t i = 0; i < n; i++)
            if (pr[i].type != NULL)
                pr[i].type->post.resv = 0;
        goto out;
    }
    /* 2. commit (cannot fail) */
    size_t used_new = 0;
    uint64_t first = es->next_id;
    for (size_t i = 0; i < n; i++) {
        const fdn_event_t *ev = evs[i];
        uint64_t id = es->next_id++;
        size_t sz = rec_size(ev->data_len);
        size_t sn = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
        size_t sh = atomic_load_explicit(&es->seg_head, memory_order_relaxed);
        evs_seg_t *cur =
            sn > sh ? atomic_load_explicit(&es->segdir, memory_order_relaxed)->segs[sn - 1].seg
                    : NULL;
        uint32_t cnt = cur ? atomic_load_explicit(&cur->count, memory_order_relaxed) : 0;
        if (cur == NULL || cnt >= EVS_SEG_EVENTS || cur->arena_used + sz > cur->arena_cap ||
            cur->first_id + cnt != id) {
            cur = newsegs[used_new++];
            cur->first_id = id;
            cnt = 0;
            segdir_push(es, cur); /* room reserved above */
        }
        evs_rec_t *r = (evs_rec_t *)(void *)(cur->arena + cur->arena_used);
        int64_t ts = ev->ts < es->last_ts ? es->last_ts : ev->ts;
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
        atomic_store_explicit(&cur->count, cnt + 1, memory_order_release);
        evs_posting_t *p = &pr[i].type->post;
        size_t pi = atomic_load_explicit(&p->n, memory_order_relaxed);
        atomic_load_explicit(
            &p->dir, memory_order_relaxed)[pi / EVS_PCHUNK - p->base_chunk][pi % EVS_PCHUNK] = id;
        atomic_store_explicit(&p->n, pi + 1, memory_order_release);
        p->resv = 0;
        if (r->corr != NULL)
            atomic_store_explicit(&r->corr->last_id, id, memory_order_release);
        size_t bytes = sz + sizeof(uint32_t);
        atomic_fetch_add_explicit(&pr[i].type->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&pr[i].type->bytes, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&es->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&es->bytes, bytes, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&es->stored_total, n, memory_order_relaxed);
    atomic_store_explicit(&es->published, es->next_id - 1, memory_order_release);
    if (ids != NULL)
        for (size_t i = 0; i < n; i++)
            ids[i] = first + i;
out:
    if (newsegs != spare)
        fdn__free(newsegs);
    if (pr != one)
        fdn__free(pr);
    return rc;
}

/* ---- prune ---- */

static void post_prune(fdn_events_t *es, evs_posting_t *p, uint64_t cut)
{
    uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
    size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    size_t head = atomic_load_explicit(&p->head, memory_order_relaxed);
    if (dir == NULL)
        return;
    head = post_lower(p, dir, head, n, cut);
    atomic_store_explicit(&p->head, head, memory_order_relaxed);
    size_t dead = head / EVS_PCHUNK - p->base_chunk;
    if (dead == 0)
        return;
    for (size_t k = 0; k < dead; k++)
        fdn__free(dir[k]);
    memmove(dir, dir + dead, (p->nchunks - dead) * sizeof(uint64_t *));
    p->nchunks -= dead;
    p->base_chunk += dead;
    account(es, -(int64_t)(dead * EVS_PCHUNK * sizeof(uint64_t)));
}

static void corr_remove(fdn_events_t *es, evs_corr_t *c)
{
    if (es->last_corr == c)
        es->last_corr = NULL;
    evs_tab_t *t = atomic_load_explicit(&es->corrs, memory_order_relaxed);
    for (size_t i = c->hash & t->mask;; i = (i + 1) & t->mask) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e == NULL)
            break;
        if (e == c) {
            atomic_store_explicit(&t->slots[i], TOMB, memory_order_relaxed);
            break;
        }
    }
    account(es, -(int64_t)(sizeof(*c) + c->len + 1));
    fdn__free(c);
}

uint64_t fdn__evs_prune_ids(fdn_events_t *es, uint64_t cut)
{
    pthread_rwlock_wrlock(&es->plock);
    pthread_mutex_lock(&es->amu);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_relaxed);
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_relaxed);
    if (cut > pub + 1)
        cut = pub + 1;
    uint64_t removed = 0;
    if (cut > first) {
        evs_seg_t *hint = NULL;
        for (uint64_t id = first; id < cut; id++) {
            evs_rec_t *r = rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                continue;
            size_t bytes = rec_size(r->data_len) + sizeof(uint32_t);
            atomic_fetch_sub_explicit(&r->type->count, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&r->type->bytes, bytes, memory_order_relaxed);
            atomic_fetch_sub_explicit(&es->count, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&es->bytes, bytes, memory_order_relaxed);
            if (r->corr != NULL &&
                atomic_load_explicit(&r->corr->last_id, memory_order_relaxed) == id)
                corr_remove(es, r->corr);
            removed++;
        }
        atomic_store_explicit(&es->first_id, cut, memory_order_release);
        /* postings */
        evs_tab_t *t = atomic_load_explicit(&es->types, memory_order_relaxed);
        for (size_t i = 0; i <= t->mask; i++) {
            evs_sym_t *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
            if (s != NULL && (void *)s != TOMB)
                post_prune(es, &s->post, cut);
        }
        /* whole dead segments (keep the current one) */
        evs_segdir_t *d = atomic_load_explicit(&es->segdir, memory_order_relaxed);
        size_t h = atomic_load_explicit(&es->seg_head, memory_order_relaxed);
        size_t n = atomic_load_explicit(&es->seg_n, memory_order_relaxed);
        while (h + 1 < n && d->segs[h + 1].first_id <= cut)
            seg_free(es, d->segs[h++].seg);
        if (h > 0) {
            memmove(d->segs, d->segs + h, (n - h) * sizeof(evs_segent_t));
            atomic_store_explicit(&es->seg_n, n - h, memory_order_relaxed);
            atomic_store_explicit(&es->seg_head, 0, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&es->pruned_total, removed, memory_order_relaxed);
    }
    for (size_t i = 0; i < es->nretired; i++)
        fdn__free(es->retired[i]);
    es->nretired = 0;
    if (removed > 0 && es->durable_path != NULL) {
        /* the writer deletes them from the file in its next transaction */
        pthread_mutex_lock(&es->wmu);
        if (cut > es->wdelete)
            es->wdelete = cut;
        pthread_cond_signal(&es->wcv);
        pthread_mutex_unlock(&es->wmu);
    }
    pthread_mutex_unlock(&es->amu);
    pthread_rwlock_unlock(&es->plock);
    return removed;
}

uint64_t fdn__evs_id_at_time(fdn_events_t *es, int64_t ts, uint64_t snap)
{
    uint64_t lo = atomic_load_explicit(&es->first_id, memory_order_acquire), hi = snap + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        evs_rec_t *r = rec_lookup(es, mid);
        if (r == NULL || r->ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- reading ---- */

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

static int build_list(const hit_t *h, size_t n, fdn_event_list_t **out)
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
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        rec_fields(h[i].rec, h[i].id, &f);
        l->items[i] = fdn__event_place(fdn__event_list_mem(l, off), &f);
        off += fdn__event_alloc_size(&f);
    }
    *out = l;
    return 0;
}

typedef struct hits {
    hit_t *v;
    size_t n, cap;
} hits_t;

static int hits_push(hits_t *h, uint64_t id, const evs_rec_t *r)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        hit_t *nv = fdn__realloc(h->v, nc * sizeof(hit_t));
        if (nv == NULL)
            return FDN_ENOMEM;
        h->v = nv;
        h->cap = nc;
    }
    h->v[h->n].id = id;
    h->v[h->n].rec = r;
    h->n++;
    return 0;
}

static bool matches(const evs_rec_t *r, const fdn_events_query_t *q, const evs_sym_t *type)
{
    if (type != NULL && r->type != type)
        return false;
    if (q->parent_id != 0 && r->parent != q->parent_id)
        return false;
    return true;
}

/* One candidate of a scan: appends record id to out when it exists and matches q (type
 * already known to match), unless *skip matches are still to be passed over (q->offset). */
static int take_hit(fdn_events_t *es, const fdn_events_query_t *q, uint64_t id, evs_seg_t **hint,
                    size_t *skip, hits_t *out)
{
    const evs_rec_t *r = rec_lookup_hint(es, id, hint);
    if (r == NULL || !matches(r, q, NULL))
        return 0;
    if (*skip > 0) {
        (*skip)--;
        return 0;
    }
    return hits_push(out, id, r);
}

/* Caller holds plock (read). limit 0 = no limit. */
static int query_locked(fdn_events_t *es, const fdn_events_query_t *q, size_t limit, hits_t *out,
                        uint64_t *snap_out)
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
    if (q->time_start != INT64_MIN)
        lo = FDN_MAX(lo, fdn__evs_id_at_time(es, q->time_start, snap));
    if (q->time_end != INT64_MAX) {
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
        type = tab_find(atomic_load_explicit(&es->types, memory_order_acquire), q->type, n,
                        fdn__hash(q->type, n), offsetof(evs_sym_t, name));
        if (type == NULL)
            return 0;
    }
    size_t skip = (size_t)q->offset;
    size_t want = limit ? limit : SIZE_MAX;
    int rc = 0;
    if (q->correlation_id != NULL) {
        size_t n = strlen(q->correlation_id);
        evs_corr_t *c =
            tab_find(atomic_load_explicit(&es->corrs, memory_order_acquire), q->correlation_id, n,
                     fdn__hash(q->correlation_id, n), offsetof(evs_corr_t, name));
        if (c == NULL)
            return 0;
        uint64_t id = atomic_load_explicit(&c->last_id, memory_order_acquire);
        hits_t all = {0};
        evs_seg_t *hint = NULL;
        if (q->descending) {
            /* the chain runs newest first: stop once offset + limit matches are found */
            while (id != 0 && id >= lo && out->n < want && rc == 0) {
                const evs_rec_t *r = rec_lookup_hint(es, id, &hint);
                if (r == NULL)
                    break;
                if (id <= hi && matches(r, q, type)) {
                    if (skip > 0)
                        skip--;
                    else
                        rc = hits_push(out, id, r);
                }
                id = r->corr_prev ? id - r->corr_prev : 0;
            }
            return rc;
        }
        while (id != 0 && id >= lo) {
            const evs_rec_t *r = rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                break;
            if (id <= hi && matches(r, q, type) && (rc = hits_push(&all, id, r)) != 0)
                break;
            id = r->corr_prev ? id - r->corr_prev : 0;
        }
        /* all is newest first */
        for (size_t k = 0; rc == 0 && k < all.n; k++) {
            size_t i = all.n - 1 - k;
            if (skip > 0) {
                skip--;
                continue;
            }
            if (out->n >= want)
                break;
            rc = hits_push(out, all.v[i].id, all.v[i].rec);
        }
        fdn__free(all.v);
        return rc;
    }
    if (type != NULL) {
        evs_posting_t *p = &type->post;
        size_t pn = atomic_load_explicit(&p->n, memory_order_acquire);
        uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_acquire);
        size_t ph = atomic_load_explicit(&p->head, memory_order_acquire);
        if (dir == NULL)
            return 0;
        size_t a = post_lower(p, dir, ph, pn, lo);
        size_t b = post_lower(p, dir, a, pn, hi == UINT64_MAX ? hi : hi + 1);
        evs_seg_t *hint = NULL;
        for (size_t k = 0; k < b - a && out->n < want && rc == 0; k++)
            rc = take_hit(es, q, post_at(p, dir, q->descending ? b - 1 - k : a + k), &hint, &skip,
                          out);
        return rc;
    }
    evs_seg_t *hint = NULL;
    for (uint64_t k = 0; k <= hi - lo && out->n < want && rc == 0; k++)
        rc = take_hit(es, q, q->descending ? hi - k : lo + k, &hint, &skip, out);
    return rc;
}

int fdn__evs_query(fdn_events_t *es, const fdn_events_query_t *q, size_t limit,
                   fdn_event_list_t **out, uint64_t *snap)
{
    hits_t h = {0};
    pthread_rwlock_rdlock(&es->plock);
    int rc = query_locked(es, q, limit, &h, snap);
    if (rc == 0)
        rc = build_list(h.v, h.n, out);
    pthread_rwlock_unlock(&es->plock);
    fdn__free(h.v);
    return rc;
}

uint64_t fdn__evs_batch_end(fdn_events_t *es, uint64_t id)
{
    evs_seg_t *hint = NULL;
    pthread_rwlock_rdlock(&es->plock);
    for (const evs_rec_t *r = rec_lookup_hint(es, id, &hint); r != NULL && r->more;
         r = rec_lookup_hint(es, id, &hint))
        id++;
    pthread_rwlock_unlock(&es->plock);
    return id;
}

int fdn__evs_copy_range(fdn_events_t *es, uint64_t from, uint64_t to, fdn_event_list_t **out)
{
    hits_t h = {0};
    int rc = 0;
    evs_seg_t *hint = NULL;
    pthread_rwlock_rdlock(&es->plock);
    for (uint64_t id = from; id <= to && rc == 0; id++) {
        const evs_rec_t *r = rec_lookup_hint(es, id, &hint);
        if (r != NULL)
            rc = hits_push(&h, id, r);
    }
    if (rc == 0)
        rc = build_list(h.v, h.n, out);
    pthread_rwlock_unlock(&es->plock);
    fdn__free(h.v);
    return rc;
}

/* ---- public API ---- */

static bool running(fdn_events_t *es)
{
    return atomic_load_explicit(&es->running, memory_order_acquire) != 0;
}

int fdn_events_get(fdn_events_t *es, uint64_t id, fdn_event_t **out)
{
    if (es == NULL || out == NULL || id == 0)
        return FDN_EINVAL;
    if (!running(es))
        return FDN_EUNAVAILABLE;
    int rc = FDN_ENOENT;
    pthread_rwlock_rdlock(&es->plock);
    if (id <= atomic_load_explicit(&es->published, memory_order_acquire)) {
        const evs_rec_t *r = rec_lookup(es, id);
        if (r != NULL) {
            fdn__event_fields_t f;
            rec_fields(r, id, &f);
            fdn_event_t *ev = fdn__event_from_fields(&f);
            rc = ev ? 0 : FDN_ENOMEM;
            if (ev)
                *out = ev;
        }
    }
    pthread_rwlock_unlock(&es->plock);
    return rc;
}

int fdn_events_stats(fdn_events_t *es, fdn_events_stats_t *o)
{
    if (es == NULL || o == NULL)
        return FDN_EINVAL;
    memset(o, 0, sizeof(*o));
    o->version = 1;
    pthread_rwlock_rdlock(&es->plock);
    uint64_t snap = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    o->count = atomic_load_explicit(&es->count, memory_order_relaxed);
    o->bytes = atomic_load_explicit(&es->bytes, memory_order_relaxed);
    o->bytes_allocated = atomic_load_explicit(&es->bytes_alloc, memory_order_relaxed);
    if (first <= snap) {
        const evs_rec_t *a = rec_lookup(es, first), *b = rec_lookup(es, snap);
        o->oldest_id = first;
        o->newest_id = snap;
        o->oldest_ts = a ? a->ts : 0;
        o->newest_ts = b ? b->ts : 0;
    }
    pthread_rwlock_unlock(&es->plock);
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
    pthread_rwlock_rdlock(&es->plock);
    evs_tab_t *t = atomic_load_explicit(&es->types, memory_order_acquire);
    for (size_t i = 0; i <= t->mask; i++) {
        evs_sym_t *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (s == NULL || (void *)s == TOMB)
            continue;
        if (k < cap) {
            memcpy(out[k].type, s->name, s->len + 1);
            out[k].count = atomic_load_explicit(&s->count, memory_order_relaxed);
            out[k].bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed);
        }
        k++;
    }
    pthread_rwlock_unlock(&es->plock);
    *out_n = k;
    return 0;
}

int fdn_events_set_max_results(fdn_events_t *es, uint32_t max_results)
{
    if (es == NULL || max_results == 0)
        return FDN_EINVAL;
    atomic_store_explicit(&es->max_results, max_results, memory_order_relaxed);
    return 0;
}
