/*
 * DESIGN: the event store's intern tables: type names, node names and correlation ids are
 * stored once each, and records point at their entry (evs_sym_t for types and nodes, which
 * also carries the type's posting list and counters; evs_corr_t for correlation ids, which
 * carries the newest id of its chain). Split out of event_store.c, which appends and prunes
 * through the functions here; the query engine (event_query.c) looks names up with
 * fdn__evs_tab_find.
 *
 * Tables are open-addressing arrays of entry pointers with linear probing, kept at most half
 * full (used counts tombstones) and rebuilt at least four times larger than the live entries
 * when an insert would pass that. Every entry starts with its hash and name length (hkey_t),
 * so one probe loop serves both entry types. Every entry is removed when its last event
 * goes: types and node names count their events (evs_sym_t.count), a correlation entry
 * knows its newest id (last_id) and goes with it. The prune removes them (node names too:
 * spec.node is a client's field, so node names are client input like correlation ids, and
 * were kept for good before), leaving a tombstone (EVS_TOMB) so probe chains stay intact,
 * and a rebuild sizes the table from its live entries, so it shrinks again after a burst of
 * names: at an insert past half full, and after a prune that leaves the node or correlation
 * table at most an eighth live (fdn__evs_tabs_shrink; a burst of 200 000 node names kept an
 * 8 MB table after every one was pruned). A batch that fails after interning (the type cap, no
 * memory) takes out again the entries it added: they hold no event (count 0, last_id 0). Live types
 * are capped (max_types): a client's store that would add one more is refused with FDN_ENOSPC; node
 * names and correlation ids live only as long as the events that name them.
 *
 * Threads and locks: inserts, rebuilds and removals run under amu (the one writer);
 * removals also under plock (write). Readers (plock read, never amu) probe without locks:
 * a slot is published with a release store after its entry is fully written, and a rebuilt
 * table is published with a release store of the table pointer while the old table is
 * retired (fdn__evs_retire) and freed only at the next prune, when no reader can hold it.
 * An entry added by a batch that then failed is taken out under amu alone: readers may hold
 * it, so it is retired too (fdn__evs_type_remove, fdn__evs_node_remove,
 * fdn__evs_corr_remove with under_plock false).
 * The writer caches entries it used recently, because events usually repeat a few names:
 * types in a small direct-mapped cache (type_cache, by a cheap mix of the name; type_remove
 * clears the entry's slot), nodes and correlation ids in one entry each (last_node,
 * last_corr; node_remove and corr_remove clear them). Short names compare as two words
 * (fdn__bytes_eq).
 * Invariants: a table's slot count is a power of two and used * 2 <= slots after every
 * insert; an entry is in exactly one slot of the current table.
 */
#include <fdn/events.h>

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "services/event_store_int.h"

#define TAB_INIT 64u

char fdn__evs_tomb;

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
void *fdn__evs_tab_find(evs_tab_t *t, const char *s, size_t n, uint64_t h, size_t name_off)
{
    for (size_t i = h & t->mask, probes = 0; probes <= t->mask; i = (i + 1) & t->mask, probes++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (e == NULL)
            return NULL;
        if (e == EVS_TOMB)
            continue;
        const hkey_t *k = e;
        if (k->hash == h && k->len == n && fdn__bytes_eq((char *)e + name_off, s, n))
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
            t->live++;
            return;
        }
        i = (i + 1) & t->mask;
    }
}

/* The slots a rebuilt table gets for `live` entries and one insert. */
static size_t tab_size_for(size_t live)
{
    size_t size = TAB_INIT;
    while ((live + 1) * 4 > size)
        size *= 2;
    return size;
}

/* Make room for one insert (writer, under amu). */
static int tab_reserve(fdn_events_t *es, _Atomic(evs_tab_t *) *tp) FDN_REQUIRES(es->amu)
{
    evs_tab_t *t = atomic_load_explicit(tp, memory_order_relaxed);
    if ((t->used + 1) * 2 <= t->mask + 1)
        return 0;
    size_t live = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        live += e != NULL && e != EVS_TOMB;
    }
    size_t size = tab_size_for(live); /* from the live entries: an emptied table shrinks */
    evs_tab_t *nt = tab_new(size);
    if (nt == NULL)
        return FDN_ENOMEM;
    if (fdn__evs_retire(es, t) != 0) {
        fdn__free(nt);
        return FDN_ENOMEM;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e != NULL && e != EVS_TOMB)
            tab_put(nt, e);
    }
    fdn__evs_account(es,
                     (int64_t)(size * sizeof(void *)) - (int64_t)((t->mask + 1) * sizeof(void *)));
    atomic_store_explicit(tp, nt, memory_order_release);
    return 0;
}

int fdn__evs_sym_intern_slow(fdn_events_t *es, _Atomic(evs_tab_t *) *tp, const char *s, size_t n,
                             bool cap, evs_sym_t **cache, evs_sym_t **out) FDN_REQUIRES(es->amu)
{
    uint64_t h = fdn__hash(s, n);
    evs_sym_t *e = fdn__evs_tab_find(atomic_load_explicit(tp, memory_order_relaxed), s, n, h,
                                     offsetof(evs_sym_t, name));
    if (e != NULL) {
        *out = *cache = e;
        return 0;
    }
    if (cap && tp == &es->types) {
        uint64_t max = atomic_load_explicit(&es->max_types, memory_order_relaxed);
        if (max > 0 && atomic_load_explicit(&es->ntypes, memory_order_relaxed) >= max)
            return FDN_ENOSPC;
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
    fdn__evs_account(es, (int64_t)(sizeof(*e) + n + 1));
    if (tp == &es->types)
        atomic_fetch_add_explicit(&es->ntypes, 1, memory_order_relaxed);
    tab_put(atomic_load_explicit(tp, memory_order_relaxed), e);
    *out = *cache = e;
    return 0;
}

int fdn__evs_corr_intern_slow(fdn_events_t *es, const char *s, size_t n, evs_corr_t **out)
    FDN_REQUIRES(es->amu)
{
    uint64_t h = fdn__hash(s, n);
    evs_corr_t *e = fdn__evs_tab_find(atomic_load_explicit(&es->corrs, memory_order_relaxed), s, n,
                                      h, offsetof(evs_corr_t, name));
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
    fdn__evs_account(es, (int64_t)(sizeof(*e) + n + 1));
    tab_put(atomic_load_explicit(&es->corrs, memory_order_relaxed), e);
    *out = es->last_corr = e;
    return 0;
}

/* Take entry e out of table t (a tombstone keeps probe chains intact). */
static void tab_unlink(evs_tab_t *t, const void *e)
{
    const hkey_t *k = e;
    for (size_t i = k->hash & t->mask;; i = (i + 1) & t->mask) {
        void *cur = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (cur == NULL)
            break;
        if (cur == e) {
            atomic_store_explicit(&t->slots[i], EVS_TOMB, memory_order_release);
            t->live--;
            break;
        }
    }
}

/* Free entry e now (under plock write: no reader holds it) or retire it (amu only); false
 * when it cannot be retired (no memory): then nothing is changed. */
static bool entry_release(fdn_events_t *es, void *e, bool under_plock) FDN_REQUIRES(es->amu)
{
    if (under_plock) {
        fdn__free(e);
        return true;
    }
    return fdn__evs_retire(es, e) == 0;
}

bool fdn__evs_corr_remove(fdn_events_t *es, evs_corr_t *c, bool under_plock) FDN_REQUIRES(es->amu)
{
    if (!under_plock && fdn__evs_retire_reserve(es, 1) != 0)
        return false;
    if (es->last_corr == c)
        es->last_corr = NULL;
    tab_unlink(atomic_load_explicit(&es->corrs, memory_order_relaxed), c);
    fdn__evs_account(es, -(int64_t)(sizeof(*c) + c->len + 1));
    (void)entry_release(es, c, under_plock); /* reserved above */
    return true;
}

bool fdn__evs_node_remove(fdn_events_t *es, evs_sym_t *s, bool under_plock) FDN_REQUIRES(es->amu)
{
    FDN_ASSERT(atomic_load_explicit(&s->count, memory_order_relaxed) == 0);
    if (!under_plock && fdn__evs_retire_reserve(es, 1) != 0)
        return false;
    if (es->last_node == s)
        es->last_node = NULL;
    tab_unlink(atomic_load_explicit(&es->nodes, memory_order_relaxed), s);
    fdn__evs_account(es, -(int64_t)(sizeof(*s) + s->len + 1));
    (void)entry_release(es, s, under_plock); /* reserved above */
    return true;
}

/* Bytes of the k-th allocated chunk of a posting list (global chunk 0 may be small). */
static size_t chunk_bytes(const evs_posting_t *p, size_t k)
{
    return (p->base_chunk + k == 0 ? p->cap0 : EVS_PCHUNK) * sizeof(uint64_t);
}

void fdn__evs_type_remove(fdn_events_t *es, evs_sym_t *s, bool under_plock) FDN_REQUIRES(es->amu)
{
    FDN_ASSERT(atomic_load_explicit(&s->count, memory_order_relaxed) == 0);
    evs_posting_t *p = &s->post;
    uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_relaxed);
    if (!under_plock && fdn__evs_retire_reserve(es, 2 + p->nchunks) != 0)
        return; /* stays, with no event: the next prune removes it */
    size_t slot = fdn__evs_name_mix(s->name, s->len);
    if (es->type_cache[slot] == s)
        es->type_cache[slot] = NULL;
    tab_unlink(atomic_load_explicit(&es->types, memory_order_relaxed), s);
    int64_t bytes = (int64_t)(sizeof(*s) + s->len + 1 + p->dir_cap * sizeof(uint64_t *));
    for (size_t k = 0; k < p->nchunks; k++) {
        bytes += (int64_t)chunk_bytes(p, k);
        if (under_plock)
            fdn__free(dir[k]);
        else
            (void)fdn__evs_retire(es, dir[k]); /* reserved above */
    }
    if (under_plock) {
        fdn__free(dir);
        fdn__free(s);
    } else {
        if (dir != NULL)
            (void)fdn__evs_retire(es, dir);
        (void)fdn__evs_retire(es, s);
    }
    fdn__evs_account(es, -bytes);
    atomic_fetch_sub_explicit(&es->ntypes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&es->types_released, 1, memory_order_relaxed);
}

void fdn__evs_tabs_shrink(fdn_events_t *es) FDN_REQUIRES(es->amu)
{
    _Atomic(evs_tab_t *) *tabs[] = {&es->nodes, &es->corrs};
    for (size_t k = 0; k < 2; k++) {
        evs_tab_t *t = atomic_load_explicit(tabs[k], memory_order_relaxed);
        size_t size = tab_size_for(t->live);
        if (t->mask + 1 <= TAB_INIT || t->live * 8 > t->mask + 1 || size >= t->mask + 1)
            continue;
        evs_tab_t *nt = tab_new(size);
        if (nt == NULL)
            continue; /* stays as it is: the next prune tries again */
        for (size_t i = 0; i <= t->mask; i++) {
            void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
            if (e != NULL && e != EVS_TOMB)
                tab_put(nt, e);
        }
        fdn__evs_account(es, (int64_t)(size * sizeof(void *)) -
                                 (int64_t)((t->mask + 1) * sizeof(void *)));
        atomic_store_explicit(tabs[k], nt, memory_order_release);
        fdn__free(t); /* plock (write): no reader holds it */
    }
}

static void free_tab(evs_tab_t *t, bool syms)
{
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e == NULL || e == EVS_TOMB)
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

int fdn__evs_intern_init(fdn_events_t *es)
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
    fdn__evs_account(es, 3 * TAB_INIT * sizeof(void *));
    return 0;
}

void fdn__evs_intern_fini(fdn_events_t *es)
{
    free_tab(atomic_load_explicit(&es->types, memory_order_relaxed), true);
    free_tab(atomic_load_explicit(&es->nodes, memory_order_relaxed), true);
    free_tab(atomic_load_explicit(&es->corrs, memory_order_relaxed), false);
}
