/*
 * DESIGN: the rate limiter's in-memory key store, one backend behind fdn__limiter_backend_t
 * (limiter_int.h): a sharded hash table of keys -> cells, each cell holding one key's
 * algorithm state (logic/limit_algo.h), which this file applies under the shard lock.
 *
 * Threads: none of its own. Sweeping is amortised: an operation that finds its shard's
 * next_sweep in the past sweeps that shard (O(cells in shard)) before its own update;
 * the backend's sweep (fdn_limiter_sweep) sweeps all shards. next_sweep is always the shard's
 * last sweep plus the interval: set_interval re-plans every shard (one lock at a time), so a
 * shorter interval applies to the sweeps already planned, and the checks' path reads only what
 * it read before.
 *
 * Locks: one mutex per shard (cache-line aligned) guards that shard's slots, LRU list,
 * counters and cells; an operation holds exactly one shard lock for a lookup + update, and
 * takes no other lock. No callback runs under it.
 *
 * Hashing: fdn__hash (core/hash.h, keyed with a per-process random secret), so a client that
 * chooses its keys (they come from HTTP requests) cannot aim them at one shard or slot. The
 * low bits pick the shard, bits 32.. the home slot. Each shard counts lookups and compared cells
 * (fdn__limiter_mem_probes) so a test can check that probe runs stay short by counted work.
 *
 * Table: per shard, an open-addressing array of 128-byte slots (linear probing, at most 5/8
 * full, doubled before an insert would pass that, halved by a sweep that leaves it under 1/8
 * full). A slot holds the key's whole cell inline: hash, algorithm state, LRU links, rule and
 * the key itself when it is at most KEY_INLINE bytes. A check of an existing key among many
 * therefore reads one slot (two adjacent cache lines whose addresses the hash gives at once)
 * instead of a bucket, then a cell, then its key. Both lines are prefetched right after the
 * hash, before the shard lock (each shard publishes its table's address and size in `where`
 * for that), so in a table far larger than the caches the miss overlaps the locking. Removal
 * shifts the following cells of the probe run back (no tombstones); a cell that moves
 * (removal, resize) takes its LRU links along and repoints its two neighbours, so cell
 * pointers are valid only until the next insert or removal in the shard. A table of 2 MiB or
 * more (16 384 slots) comes from fdn__table_alloc (core/alloc.h): a mapping of its own,
 * 2 MiB-aligned and advised MADV_HUGEPAGE, so that where the kernel allows transparent huge
 * pages a random slot's translation is one of few TLB entries: 1 M keys on 4 KiB pages span
 * far more than a TLB maps, and a check also walked the page tables (357-481 -> 245-288 ns of
 * CPU per check, bench/README.md). Growing such a table faults in fresh huge pages instead; a
 * smaller table, or any table under a custom allocator, comes from the allocator.
 *
 * Invariants: per shard, count <= cap (max_keys / shards, at least 1) and count < nslots; every
 * cell is in exactly one slot, reachable from its home slot without crossing a free slot, and
 * in the shard's LRU list (urcu/list.h; most recently used first under
 * EVICT_LRU, the only policy that reads the order; newest first otherwise, so a check does not
 * write its list neighbours' cache lines); a cell whose
 * state has expired is equivalent to no cell, so sweeping never changes a decision. A cell
 * holds one algorithm's state: a check, inc or set under another algorithm starts it afresh,
 * while a peek or a cancel under another algorithm leaves it as it is (a peek is answered as
 * for a new key, a cancel finds nothing to give back). A cell also keeps the rule its state is
 * in the units of (`rule`): an operation under the same algorithm with another limit, period or
 * burst first converts the state (fdn__limit_convert: tokens, TAT and window counts carry over)
 * and keeps the new rule; a peek converts a copy and changes nothing.
 * Table size: a shard holds at most FDN__LIMITER_SHARD_KEYS_MAX keys (checked at create), so
 * its table (at most 5/8 full, at most SLOTS_MAX slots) always has a free slot: every probe
 * loop ends.
 * `expires` is wall ns for FIXED_WINDOW cells (the only clock a fixed-window check reads)
 * and monotonic ns for the others; each shard keeps a sweep deadline on both clocks, and a
 * lower bound of its cells' `expires` per clock (min_exp_*: lowered whenever a cell's
 * expiry is set, made exact by every sweep).
 *
 * Overflow: a new key in a full shard first sweeps the shard, but only when min_exp_* says
 * some cell may have expired (so a flood of new keys into a shard of live keys costs O(1)
 * per refused key, not a scan); if still full, the policy refuses the new key (DENY_NEW,
 * default: live state is never dropped, so no key's count can be reset by a flood) or evicts
 * the LRU tail (EVICT_LRU).
 *
 * Status: fdn_limiter_backend_status and fdn_limiter_stats (GET /metrics, every scrape) take
 * no lock; GET /health reads only last_refusal_mono (fdn_limiter_refusal_age_ns). Each shard
 * mirrors its key count and keeps its refusals and decision counts in relaxed atomics (`live`,
 * `overflow_denied`, `allowed`...) stored under the shard lock right after the change, and the
 * identity table its size
 * (`nidents_pub`, under idmu); status sums them with relaxed loads. A sum taken while keys come
 * and go may mix shards seen at different moments, but each term is a count that really was;
 * once no operation is running it is exact (tests compare it with the locked count of
 * fdn_limiter_stats). The per-shard stores hit the cache line the shard lock already holds.
 *
 * Identities: a key holding FDN_LIMIT_IDENTITY_SEP belongs to the identity before it (the
 * HTTP API puts a request's `identity` there). `idtab` counts each identity's live keys (an
 * entry per identity holding keys, freed with its last key, so it is bounded by the live
 * keys); a new key whose identity already holds `id_quota` keys is refused with FDN_ENOSPC
 * (counted in id_refused) before it takes a slot, so one caller cannot fill the table. Keys
 * without the separator have no identity and no quota. Expired keys count until swept, so a
 * refusal first sweeps every shard (at most once a second) and tries again. `idmu` guards
 * idtab and is taken under a shard lock (insert, remove), never the other way round; checks
 * of existing keys do not touch it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/lock.h"
#include "infra/limiter_int.h"
#include "logic/limit_algo.h"

/* A key's slot: 128 bytes on a 128-byte boundary, the first line what a check reads first
 * (hash, state, length, LRU links), the second the rule and the key (inline up to
 * KEY_INLINE bytes, else a pointer to a heap copy). */
#define KEY_INLINE 32
#define SLOT_ALIGN (2 * FDN_CACHELINE)
#define SLOTS_MIN  8u
#define SLOTS_MAX  (1u << 30) /* a table never grows past this (nslots is uint32_t) */
typedef struct cell {
    uint64_t hash;
    fdn__limit_state_t st; /* st.expires: wall ns (fixed window) or monotonic ns (others) */
    uint32_t keylen;       /* 0: a free slot (keys are never empty) */
    uint8_t algo;
    struct cds_list_head lru; /* shard LRU list */
    fdn_limit_rule_t rule;    /* the rule of the last operation: the units of st (converted when
                                 it changes) and the busiest keys' report */
    union {
        char in[KEY_INLINE]; /* keylen <= KEY_INLINE */
        char *ext;           /* a heap copy of a longer key */
    } k;
} cell_t;
_Static_assert(sizeof(cell_t) == SLOT_ALIGN, "a slot is two cache lines");

typedef struct shard {
    _Alignas(FDN_CACHELINE) fdn__mutex_t mu;
    cell_t *slots;        /* open addressing, linear probing; SLOT_ALIGN-aligned */
    fdn__table_mem_t mem; /* their allocation (huge pages from 2 MiB: see Table in DESIGN) */
    uint32_t nslots; /* power of two, > count */
    uint32_t count;
    struct cds_list_head lru; /* most recently used first */
    int64_t next_sweep;       /* monotonic: last_sweep + interval_ns */
    int64_t next_sweep_wall;  /* wall */
    int64_t min_exp_mono;     /* <= every monotonic-clock cell's expires (INT64_MAX: none) */
    int64_t min_exp_wall;     /* <= every fixed-window cell's expires */
    /* fdn_limiter_stats's counts: written only under mu, read with no lock (as live below) */
    _Atomic uint64_t allowed, denied, evictions, expired;
    uint64_t lookups, probes; /* shard_find calls and cells compared (fdn__limiter_mem_probes) */
    /* Mirrors for fdn_limiter_backend_status, which reads them with no shard lock (see
     * Status in DESIGN): written only under mu, each store right after the change. */
    _Atomic uint32_t live;            /* == count */
    _Atomic uint64_t overflow_denied; /* new keys refused by a full shard */
    /* slots | log2(nslots) (slots is SLOT_ALIGN-aligned), stored under mu whenever they
     * change: an operation reads it before taking the lock to prefetch its home slot */
    _Atomic uintptr_t where;
    /* Cold (a sweep, set_interval), after every field a check touches, so that those stay on
     * the cache lines they had (a check touches three lines of its shard, not four). */
    int64_t last_sweep;      /* monotonic: the last sweep (or the store's creation) */
    int64_t last_sweep_wall; /* wall */
} shard_t;

/* Add n to a count only its shard's lock holder writes (a plain add on x86, no lock prefix). */
static inline void count_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* last_quota_sweep before the first such sweep: any (manual) clock time may follow it. */
#define QUOTA_SWEEP_NEVER INT64_MIN

/* The live keys of one identity (see DESIGN). */
typedef struct ident {
    struct ident *next;
    uint64_t hash;
    uint64_t keys;
    uint32_t len;
    char name[];
} ident_t;

typedef struct membe {
    fdn__mutex_t idmu;
    ident_t **idtab FDN_MEMBER_GUARDED_BY(idmu); /* chained; nidbuckets a power of two */
    uint32_t nidbuckets FDN_MEMBER_GUARDED_BY(idmu);
    uint64_t nidents FDN_MEMBER_GUARDED_BY(idmu);
    _Atomic uint64_t nidents_pub;     /* == nidents, stored under idmu after each change */
    _Atomic uint32_t id_quota;        /* live keys per identity; 0 = none */
    _Atomic uint64_t id_refused;      /* new keys refused by id_quota */
    _Atomic int64_t last_quota_sweep; /* monotonic ns of the last sweep a refusal ran, or
                                         QUOTA_SWEEP_NEVER */
    void *shards_raw;
    shard_t *shards;  /* cache-line aligned */
    uint32_t nshards; /* power of two */
    uint32_t cap;     /* per shard */
    fdn_limit_overflow_t policy;
    _Atomic int64_t interval_ns;
    _Atomic int64_t last_refusal_mono; /* monotonic ns of the last new key refused, 0: never */
} membe_t;

/* The identity of a key: the bytes before FDN_LIMIT_IDENTITY_SEP (false: none). */
static bool key_identity(const char *key, size_t keylen, size_t *idlen)
{
    const char *sep = memchr(key, FDN_LIMIT_IDENTITY_SEP, keylen);
    if (sep == NULL)
        return false;
    *idlen = (size_t)(sep - key);
    return true;
}

static ident_t **ident_slot(membe_t *m, const char *id, size_t len, uint64_t h)
    FDN_REQUIRES(m->idmu)
{
    ident_t **pp = &m->idtab[h & (m->nidbuckets - 1)];
    while (*pp != NULL &&
           ((*pp)->hash != h || (*pp)->len != len || memcmp((*pp)->name, id, len) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void ident_grow(membe_t *m) FDN_REQUIRES(m->idmu)
{
    uint32_t nb = m->nidbuckets * 2;
    ident_t **b = fdn__calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* longer chains */
    for (uint32_t i = 0; i < m->nidbuckets; i++)
        for (ident_t *e = m->idtab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    fdn__free(m->idtab);
    m->idtab = b;
    m->nidbuckets = nb;
}

/* Count a new key of its identity. 0; FDN_ENOSPC (the identity holds id_quota keys);
 * FDN_ENOMEM. Keys without an identity: 0. */
static int ident_acquire(membe_t *m, const char *key, size_t keylen)
{
    size_t len;
    if (!key_identity(key, keylen, &len))
        return 0;
    uint64_t h = fdn__hash(key, len);
    uint32_t quota = atomic_load_explicit(&m->id_quota, memory_order_relaxed);
    int rc = 0;
    fdn__mutex_lock(&m->idmu);
    ident_t **pp = ident_slot(m, key, len, h);
    if (*pp != NULL) {
        if (quota > 0 && (*pp)->keys >= quota)
            rc = FDN_ENOSPC;
        else
            (*pp)->keys++;
    } else {
        ident_t *e = fdn__malloc(sizeof(*e) + len);
        if (e == NULL) {
            rc = FDN_ENOMEM;
        } else {
            e->next = NULL;
            e->hash = h;
            e->keys = 1;
            e->len = (uint32_t)len;
            memcpy(e->name, key, len);
            *pp = e;
            atomic_store_explicit(&m->nidents_pub, ++m->nidents, memory_order_relaxed);
            if (m->nidents > m->nidbuckets && m->nidbuckets < (1u << 24))
                ident_grow(m);
        }
    }
    fdn__mutex_unlock(&m->idmu);
    if (rc == FDN_ENOSPC)
        atomic_fetch_add_explicit(&m->id_refused, 1, memory_order_relaxed);
    return rc;
}

/* A key of the identity went (key without an identity: nothing). */
static void ident_release(membe_t *m, const char *key, size_t keylen)
{
    size_t len;
    if (!key_identity(key, keylen, &len))
        return;
    uint64_t h = fdn__hash(key, len);
    fdn__mutex_lock(&m->idmu);
    ident_t **pp = ident_slot(m, key, len, h);
    ident_t *e = *pp;
    FDN_ASSERT(e != NULL && e->keys > 0); /* every identity key was acquired */
    if (e != NULL && --e->keys == 0) {
        *pp = e->next;
        atomic_store_explicit(&m->nidents_pub, --m->nidents, memory_order_relaxed);
        fdn__free(e);
    }
    fdn__mutex_unlock(&m->idmu);
}

/* t + iv (iv >= 0), stopping at INT64_MAX: a sweep's next time on a clock near the end of
 * int64 (a manual clock); only run when a sweep is scheduled, never per check. */
static inline int64_t sweep_at(int64_t t, int64_t iv)
{
    return t > INT64_MAX - iv ? INT64_MAX : t + iv;
}

/* Plan shard s's next sweep interval iv after its last one (set_interval: the new interval
 * applies to sweeps already planned). */
static inline void shard_plan_sweep(shard_t *s, int64_t iv) FDN_REQUIRES(s->mu)
{
    s->next_sweep = sweep_at(s->last_sweep, iv);
    s->next_sweep_wall = sweep_at(s->last_sweep_wall, iv);
}

/* a - b, stopping at INT64_MIN / INT64_MAX: the distance between two times of a manual clock
 * that may sit anywhere in int64 (off the check path: refusals, status, quota sweeps). */
static inline int64_t time_diff(int64_t a, int64_t b)
{
    int64_t d;
    if (__builtin_sub_overflow(a, b, &d))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return d;
}

/* The time of op on rule r's clock. */
static int64_t algo_now(fdn_limit_algo_t algo, const fdn__limit_now_t *now)
{
    return fdn__limit_wall_clock(algo) ? now->wall_ns : now->mono_ns;
}

static inline const char *cell_key(const cell_t *c)
{
    return c->keylen <= KEY_INLINE ? c->k.in : c->k.ext;
}

static inline uint32_t cell_home(const cell_t *c, uint32_t mask)
{
    return (uint32_t)(c->hash >> 32) & mask;
}

/* Move the cell at src into the free slot dst, LRU links and all; src becomes free. */
static void cell_move(cell_t *dst, cell_t *src)
{
    *dst = *src;
    dst->lru.prev->next = &dst->lru;
    dst->lru.next->prev = &dst->lru;
    memset(src, 0, sizeof(*src));
}

/* Free slot i, shifting the rest of its probe run back so that every cell stays reachable
 * from its home slot (backward-shift deletion). */
static void slot_clear(shard_t *s, uint32_t i) FDN_REQUIRES(s->mu)
{
    const uint32_t mask = s->nslots - 1;
    memset(&s->slots[i], 0, sizeof(s->slots[i]));
    for (uint32_t j = (i + 1) & mask; s->slots[j].keylen != 0; j = (j + 1) & mask) {
        uint32_t home = cell_home(&s->slots[j], mask);
        /* the cell at j stays when its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        cell_move(&s->slots[i], &s->slots[j]);
        i = j;
    }
}

static void shard_publish_where(shard_t *s)
{
    atomic_store_explicit(&s->where, (uintptr_t)s->slots | (uintptr_t)__builtin_ctz(s->nslots),
                          memory_order_relaxed);
}

/* Start loading key hash h's home slot (both lines) before the shard lock is taken, so the
 * miss of a table larger than the caches overlaps the lock and what comes before the lookup.
 * `where` may be stale by the time the lock is held (a resize): a prefetch of the old table's
 * address is only a wasted load, never a fault. */
static inline void slot_prefetch(shard_t *s, uint64_t h)
{
    uintptr_t w = atomic_load_explicit(&s->where, memory_order_relaxed);
    uint32_t mask = (1u << (w & (SLOT_ALIGN - 1))) - 1;
    const char *c = (const char *)((w & ~(uintptr_t)(SLOT_ALIGN - 1)) +
                                   (uintptr_t)(((uint32_t)(h >> 32) & mask)) * sizeof(cell_t));
    __builtin_prefetch(c, 1);
    __builtin_prefetch(c + FDN_CACHELINE, 1);
}

/* Rebuild the table with n slots (a power of two > count); false when out of memory (the
 * table is unchanged). */
static bool shard_resize(shard_t *s, uint32_t n) FDN_REQUIRES(s->mu)
{
    fdn__table_mem_t mem;
    cell_t *slots = fdn__table_alloc(&mem, (size_t)n * sizeof(cell_t), SLOT_ALIGN);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; i < s->nslots; i++) {
        cell_t *c = &s->slots[i];
        if (c->keylen == 0)
            continue;
        uint32_t j = cell_home(c, n - 1);
        while (slots[j].keylen != 0)
            j = (j + 1) & (n - 1);
        cell_move(&slots[j], c);
    }
    fdn__table_free(&s->mem);
    s->mem = mem;
    s->slots = slots;
    s->nslots = n;
    shard_publish_where(s);
    return true;
}

static void cell_init(cell_t *c, const fdn_limit_rule_t *r, const fdn__limit_now_t *now)
{
    c->algo = (uint8_t)r->algo;
    c->rule = *r;
    fdn__limit_init(&c->st, r, algo_now(r->algo, now));
}

/* Remove c from the table and the LRU list (other cells of its probe run may move). */
static void cell_remove(membe_t *m, shard_t *s, cell_t *c) FDN_REQUIRES(s->mu)
{
    ident_release(m, cell_key(c), c->keylen);
    if (c->keylen > KEY_INLINE)
        fdn__free(c->k.ext);
    cds_list_del(&c->lru);
    FDN_ASSERT(s->count > 0);
    s->count--;
    atomic_store_explicit(&s->live, s->count, memory_order_relaxed);
    slot_clear(s, (uint32_t)(c - s->slots));
}

static bool cell_expired(const cell_t *c, const fdn__limit_now_t *now)
{
    int64_t t = algo_now((fdn_limit_algo_t)c->algo, now);
    return t != FDN__NOW_UNSET && c->st.expires <= t;
}

/* Fill both times (sweeping compares cells of both kinds). */
static void now_full(const fdn__limit_now_t *in, fdn__limit_now_t *out)
{
    *out = *in;
    if (out->mono_ns == FDN__NOW_UNSET)
        out->mono_ns = fdn_clock_mono_ns(in->clock);
    if (out->wall_ns == FDN__NOW_UNSET)
        out->wall_ns = fdn_clock_wall_ns(in->clock);
}

/* Lower the shard's expiry bound for c's clock (after c's expiry was set). */
static void note_expiry(shard_t *s, const cell_t *c) FDN_REQUIRES(s->mu)
{
    if (fdn__limit_wall_clock((fdn_limit_algo_t)c->algo)) {
        if (c->st.expires < s->min_exp_wall)
            s->min_exp_wall = c->st.expires;
    } else if (c->st.expires < s->min_exp_mono) {
        s->min_exp_mono = c->st.expires;
    }
}

/* now must be full (both clocks). Also makes min_exp_* exact, and halves the table while it
 * is under 1/8 full. */
static size_t shard_sweep(membe_t *m, shard_t *s, const fdn__limit_now_t *now) FDN_REQUIRES(s->mu)
{
    size_t n = 0;
    s->min_exp_mono = s->min_exp_wall = INT64_MAX;
    /* In slot order: a removal shifts later cells of the run back into slot i, so slot i is
     * looked at again; a cell looked at twice (one that wrapped round the end) only lowers
     * min_exp_* to the same value again. */
    for (uint32_t i = 0; i < s->nslots;) {
        cell_t *c = &s->slots[i];
        if (c->keylen != 0 && cell_expired(c, now)) {
            cell_remove(m, s, c);
            n++;
            continue;
        }
        if (c->keylen != 0)
            note_expiry(s, c);
        i++;
    }
    count_add(&s->expired, n);
    uint32_t size = s->nslots;
    while (size > SLOTS_MIN && (uint64_t)s->count * 8 < size / 2)
        size /= 2;
    if (size != s->nslots)
        (void)shard_resize(s, size); /* out of memory: stays larger */
    return n;
}

/* A full shard and a new key: make room or refuse. Returns 0 when a slot is free, or
 * FDN_ELIMITER with res filled (lock held). */
static int shard_make_room(membe_t *m, shard_t *s, const fdn__limit_now_t *now,
                           fdn_limit_result_t *res) FDN_REQUIRES(s->mu)
{
    fdn__limit_now_t full;
    now_full(now, &full);
    if (full.mono_ns >= s->min_exp_mono || full.wall_ns >= s->min_exp_wall)
        shard_sweep(m, s, &full);
    if (s->count < m->cap)
        return 0;
    if (m->policy == FDN_LIMIT_OVERFLOW_EVICT_LRU) {
        count_add(&s->evictions, 1);
        cell_remove(m, s, fdn__list_entry(s->lru.prev, cell_t, lru));
        return 0;
    }
    atomic_store_explicit(&s->overflow_denied,
                          atomic_load_explicit(&s->overflow_denied, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* 0 means never (limiter_int.h): a refusal at mono 0 is noted 1 ns later; a negative
     * (manual) time is kept as it is, so its age is right too */
    atomic_store_explicit(&m->last_refusal_mono, full.mono_ns != 0 ? full.mono_ns : 1,
                          memory_order_relaxed);
    int64_t wait = INT64_MAX;
    if (s->min_exp_mono != INT64_MAX)
        wait = time_diff(s->min_exp_mono, full.mono_ns);
    if (s->min_exp_wall != INT64_MAX && time_diff(s->min_exp_wall, full.wall_ns) < wait)
        wait = time_diff(s->min_exp_wall, full.wall_ns);
    memset(res, 0, sizeof(*res));
    res->retry_after_ns = wait > 0 ? wait : 0;
    return FDN_ELIMITER;
}

static inline __attribute__((always_inline)) cell_t *shard_find(shard_t *s, uint64_t h,
                                                                const char *key, size_t keylen)
    FDN_REQUIRES(s->mu)
{
    const uint32_t mask = s->nslots - 1;
    cell_t *slots = s->slots;
    uint32_t i = (uint32_t)(h >> 32) & mask;
    s->lookups++;
    /* a free slot has hash 0 and keylen 0: the hash test comes first (a hit in the home slot,
     * the common case, takes one compare), then keylen says whether the run ended */
    for (;; i = (i + 1) & mask) {
        cell_t *c = &slots[i];
        if (c->hash == h && c->keylen == keylen) {
            s->probes++;
            if (fdn__bytes_eq(cell_key(c), key, keylen))
                return c;
        } else if (c->keylen == 0) {
            return NULL;
        } else {
            s->probes++;
        }
    }
}

/* A new cell for key in the table and at the head of the LRU list (the shard is under its
 * cap); NULL when out of memory. */
static cell_t *cell_insert(shard_t *s, uint64_t h, const char *key, size_t keylen)
    FDN_REQUIRES(s->mu)
{
    /* at most 5/8 full; a table that cannot grow (out of memory, or at SLOTS_MAX) takes keys
     * up to one free slot, so the probe loops below and in shard_find always end. The cap
     * (at most FDN__LIMITER_SHARD_KEYS_MAX, fdn__limiter_mem_create) keeps a shard under 5/8 of
     * SLOTS_MAX */
    if ((uint64_t)(s->count + 1) * 8 > (uint64_t)s->nslots * 5 &&
        (s->nslots >= SLOTS_MAX || !shard_resize(s, s->nslots * 2)) && s->count + 2 > s->nslots)
        return NULL;
    char *ext = NULL;
    if (keylen > KEY_INLINE && (ext = fdn__malloc(keylen)) == NULL)
        return NULL;
    const uint32_t mask = s->nslots - 1;
    uint32_t i = (uint32_t)(h >> 32) & mask;
    while (s->slots[i].keylen != 0)
        i = (i + 1) & mask;
    cell_t *c = &s->slots[i];
    c->hash = h;
    c->keylen = (uint32_t)keylen;
    if (ext != NULL) {
        memcpy(ext, key, keylen);
        c->k.ext = ext;
    } else {
        memcpy(c->k.in, key, keylen);
    }
    cds_list_add(&c->lru, &s->lru);
    s->count++;
    atomic_store_explicit(&s->live, s->count, memory_order_relaxed);
    return c;
}

/* Inlined into mem_apply (twice: the retry is rare), which saves a call of ten arguments. */
static inline __attribute__((always_inline)) int
mem_apply_once(membe_t *m, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
               int64_t cost, fdn__limit_op_t op, const fdn__limit_now_t *now,
               fdn_limit_result_t *res, fdn_limit_reservation_t *rsv)
{
    uint64_t h = fdn__hash(key, keylen);
    shard_t *s = &m->shards[h & (m->nshards - 1)];
    slot_prefetch(s, h);
    const int64_t t = algo_now(rule->algo, now);
    int64_t *epoch = rsv ? &rsv->epoch : NULL;
    int rc = 0;
    fdn__mutex_lock(&s->mu);
    bool due = fdn__limit_wall_clock(rule->algo) ? t >= s->next_sweep_wall : t >= s->next_sweep;
    if (FDN_UNLIKELY(due)) {
        fdn__limit_now_t full;
        now_full(now, &full);
        shard_sweep(m, s, &full);
        s->last_sweep = full.mono_ns;
        s->last_sweep_wall = full.wall_ns;
        shard_plan_sweep(s, atomic_load_explicit(&m->interval_ns, memory_order_relaxed));
    }
    cell_t *c = shard_find(s, h, key, keylen);
    if (c && (cell_expired(c, now) || c->algo != (uint8_t)rule->algo)) {
        /* expired state == fresh state; state of another algorithm: a peek answers as for a
         * fresh key and a cancel finds nothing to give back, both leaving it alone */
        if (c->algo != (uint8_t)rule->algo && (op == FDN__LIMIT_PEEK || op == FDN__LIMIT_CANCEL))
            c = NULL;
        else
            cell_init(c, rule, now);
    }
    fdn__limit_state_t tmp;
    fdn__limit_state_t *st;
    if (c != NULL) {
        /* recency only matters to EVICT_LRU; moving a cell touches its neighbours' lines */
        if (m->policy == FDN_LIMIT_OVERFLOW_EVICT_LRU && s->lru.next != &c->lru)
            cds_list_move(&c->lru, &s->lru);
        st = &c->st;
    } else if (op == FDN__LIMIT_CANCEL) {
        fdn__mutex_unlock(&s->mu);
        return FDN_ENOENT;
    } else if (op == FDN__LIMIT_PEEK) {
        /* evaluate on a fresh state without storing it */
        fdn__limit_init(&tmp, rule, t);
        st = &tmp;
    } else {
        /* the identity's quota first (nothing to undo), then room in the shard */
        rc = ident_acquire(m, key, keylen);
        if (rc == 0 && s->count >= m->cap && (rc = shard_make_room(m, s, now, res)) != 0)
            ident_release(m, key, keylen);
        if (rc == 0 && (c = cell_insert(s, h, key, keylen)) == NULL) {
            ident_release(m, key, keylen);
            rc = FDN_ENOMEM;
        }
        if (rc != 0) {
            fdn__mutex_unlock(&s->mu);
            if (rc == FDN_ENOSPC)
                memset(res, 0, sizeof(*res));
            return rc;
        }
        FDN_ASSERT(s->count <= m->cap); /* room was made (or refused) first */
        cell_init(c, rule, now);
        st = &c->st;
    }
    if (c != NULL &&
        FDN_UNLIKELY(c->rule.limit != rule->limit || c->rule.period_ms != rule->period_ms ||
                     c->rule.burst != rule->burst)) {
        /* same algorithm (else cell_init ran): another rule for the key. Its state is kept in
         * the old rule's units (tokens scaled by P...): converted before the new rule reads it.
         * A peek converts a copy and leaves the cell and its rule alone */
        const fdn_limit_rule_t old = c->rule;
        if (op == FDN__LIMIT_PEEK) {
            tmp = c->st;
            st = &tmp;
        } else {
            c->rule = *rule;
        }
        fdn__limit_convert(st, &old, rule, t);
    }
    rc = fdn__limit_apply(st, rule, cost, op, t, epoch, res);
    if (c != NULL)
        note_expiry(s, c);
    if (op == FDN__LIMIT_CHECK) {
        count_add(res->allowed ? &s->allowed : &s->denied, 1);
    }
    fdn__mutex_unlock(&s->mu);
    return rc;
}

static size_t mem_sweep(void *self, const fdn__limit_now_t *now);

static int mem_apply(void *self, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                     unsigned rule_flags, int64_t cost, fdn__limit_op_t op,
                     const fdn__limit_now_t *now, fdn_limit_result_t *res,
                     fdn_limit_reservation_t *rsv)
{
    (void)rule_flags; /* every key of this store is local */
    membe_t *m = self;
    int rc = mem_apply_once(m, key, keylen, rule, cost, op, now, res, rsv);
    if (FDN_LIKELY(rc != FDN_ENOSPC))
        return rc;
    /* the identity's quota: its expired keys count until swept, so sweep every shard (at
     * most once a second, whoever asks) and try once more */
    fdn__limit_now_t full;
    now_full(now, &full);
    int64_t last = atomic_load_explicit(&m->last_quota_sweep, memory_order_relaxed);
    if ((last != QUOTA_SWEEP_NEVER && time_diff(full.mono_ns, last) < 1000000000LL) ||
        !atomic_compare_exchange_strong_explicit(&m->last_quota_sweep, &last, full.mono_ns,
                                                 memory_order_relaxed, memory_order_relaxed))
        return rc;
    atomic_fetch_sub_explicit(&m->id_refused, 1, memory_order_relaxed); /* counted again */
    mem_sweep(m, &full);
    return mem_apply_once(m, key, keylen, rule, cost, op, now, res, rsv);
}

static int mem_forget(void *self, const char *key, size_t keylen)
{
    membe_t *m = self;
    uint64_t h = fdn__hash(key, keylen);
    shard_t *s = &m->shards[h & (m->nshards - 1)];
    fdn__mutex_lock(&s->mu);
    cell_t *c = shard_find(s, h, key, keylen);
    if (c)
        cell_remove(m, s, c);
    fdn__mutex_unlock(&s->mu);
    return c ? 0 : FDN_ENOENT;
}

static size_t mem_sweep(void *self, const fdn__limit_now_t *now)
{
    membe_t *m = self;
    size_t n = 0;
    fdn__limit_now_t full;
    now_full(now, &full);
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        int64_t iv = atomic_load_explicit(&m->interval_ns, memory_order_relaxed);
        fdn__mutex_lock(&s->mu);
        n += shard_sweep(m, s, &full);
        s->last_sweep = full.mono_ns;
        s->last_sweep_wall = full.wall_ns;
        shard_plan_sweep(s, iv);
        fdn__mutex_unlock(&s->mu);
    }
    return n;
}

static void mem_stats(void *self, fdn_limiter_stats_t *out)
{
    membe_t *m = self;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        /* no shard lock (GET /metrics asks on every scrape): each count is one that was */
        out->keys += atomic_load_explicit(&s->live, memory_order_relaxed);
        out->allowed += atomic_load_explicit(&s->allowed, memory_order_relaxed);
        out->denied += atomic_load_explicit(&s->denied, memory_order_relaxed);
        out->evictions += atomic_load_explicit(&s->evictions, memory_order_relaxed);
        out->expired += atomic_load_explicit(&s->expired, memory_order_relaxed);
        out->overflow_denied += atomic_load_explicit(&s->overflow_denied, memory_order_relaxed);
    }
}

/* The new interval also moves the sweeps already planned (one was 300 s away: made 1 ms, the
 * next operation on each shard past its last sweep + 1 ms sweeps it). One lock per shard, each
 * held for two stores; the checks' path is unchanged (it reads next_sweep under the lock it
 * holds anyway). Two calls at once: each shard ends with the interval of whichever plans it
 * last, and interval_ns with whichever stores last; both are one of the two. */
static void mem_set_interval(void *self, int64_t interval_ns)
{
    membe_t *m = self;
    atomic_store_explicit(&m->interval_ns, interval_ns, memory_order_relaxed);
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        fdn__mutex_lock(&s->mu);
        shard_plan_sweep(s, interval_ns);
        fdn__mutex_unlock(&s->mu);
    }
}

/* No lock: the counts are the shards' mirrors (see Status in DESIGN). evictions: also the
 * shards' evictions, summed in the same pass (NULL: not wanted). */
static void mem_status_ev(void *self, fdn_limiter_backend_status_t *out, uint64_t *evictions)
{
    membe_t *m = self;
    memset(out, 0, sizeof(*out));
    out->backend = FDN_LIMITER_BACKEND_MEMORY;
    out->connected = true;
    uint64_t ev = 0;
    for (uint32_t i = 0; i < m->nshards; i++) {
        const shard_t *s = &m->shards[i];
        out->keys += atomic_load_explicit(&s->live, memory_order_relaxed);
        out->new_keys_refused += atomic_load_explicit(&s->overflow_denied, memory_order_relaxed);
        if (evictions != NULL)
            ev += atomic_load_explicit(&s->evictions, memory_order_relaxed);
    }
    if (evictions != NULL)
        *evictions = ev;
    out->key_capacity = (uint64_t)m->cap * m->nshards;
    out->identity_keys_refused = atomic_load_explicit(&m->id_refused, memory_order_relaxed);
    out->max_keys_per_identity = atomic_load_explicit(&m->id_quota, memory_order_relaxed);
    out->identities = atomic_load_explicit(&m->nidents_pub, memory_order_relaxed);
    /* a monotonic time here; fdn_limiter_backend_status turns it into an age (limiter_int.h) */
    out->since_refusal_ns = atomic_load_explicit(&m->last_refusal_mono, memory_order_relaxed);
}

static void mem_status(void *self, fdn_limiter_backend_status_t *out)
{
    mem_status_ev(self, out, NULL);
}

void fdn__limiter_mem_status_evictions(void *self, fdn_limiter_backend_status_t *out,
                                       uint64_t *evictions)
{
    mem_status_ev(self, out, evictions);
}

int64_t fdn__limiter_mem_last_refusal(void *self)
{
    const membe_t *m = self;
    return atomic_load_explicit(&m->last_refusal_mono, memory_order_relaxed);
}

static void mem_destroy(void *self)
{
    membe_t *m = self;
    if (!m)
        return;
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        for (uint32_t j = 0; j < s->nslots; j++)
            if (s->slots[j].keylen > KEY_INLINE)
                fdn__free(s->slots[j].k.ext);
        fdn__table_free(&s->mem);
        pthread_mutex_destroy(&s->mu);
    }
    for (uint32_t i = 0; m->idtab != NULL && i < m->nidbuckets; i++)
        for (ident_t *e = m->idtab[i], *nx; e != NULL; e = nx) {
            nx = e->next;
            fdn__free(e);
        }
    fdn__free(m->idtab);
    pthread_mutex_destroy(&m->idmu);
    fdn__free(m->shards_raw);
    fdn__free(m);
}

const fdn__limiter_backend_t fdn__limiter_mem_backend = {
    FDN__LIMITER_BACKEND_VERSION,
    mem_apply,
    mem_forget,
    mem_sweep,
    mem_stats,
    mem_set_interval,
    mem_status,
    mem_destroy,
    NULL, /* apply_many: no round trips to save; the limiter runs apply for each item */
};

void fdn__limiter_mem_set_identity_quota(void *self, uint32_t max_keys)
{
    membe_t *m = self;
    atomic_store_explicit(&m->id_quota, max_keys, memory_order_relaxed);
}

void fdn__limiter_mem_probes(void *self, uint64_t *lookups, uint64_t *probes)
{
    membe_t *m = self;
    *lookups = *probes = 0;
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        fdn__mutex_lock(&s->mu);
        *lookups += s->lookups;
        *probes += s->probes;
        fdn__mutex_unlock(&s->mu);
    }
}

int fdn__limiter_mem_create(void **out, uint32_t nshards, uint32_t max_keys,
                            fdn_limit_overflow_t policy, int64_t interval_ns, int64_t mono_ns,
                            int64_t wall_ns)
{
    /* the caller (fdn_limiter_open) refuses these with a message */
    if (nshards == 0 || (nshards & (nshards - 1)) != 0 || max_keys == 0 ||
        max_keys / nshards > FDN__LIMITER_SHARD_KEYS_MAX)
        return FDN_EINVAL;
    membe_t *m = fdn__calloc(1, sizeof(*m));
    if (!m)
        return FDN_ENOMEM;
    m->shards_raw = fdn__calloc(1, (size_t)nshards * sizeof(shard_t) + FDN_CACHELINE - 1);
    m->nidbuckets = 16;
    m->idtab = fdn__calloc(m->nidbuckets, sizeof(ident_t *));
    if (!m->shards_raw || !m->idtab || pthread_mutex_init(&m->idmu, NULL) != 0) {
        fdn__free(m->idtab);
        fdn__free(m->shards_raw);
        fdn__free(m);
        return FDN_ENOMEM;
    }
    atomic_init(&m->id_quota, 0);
    atomic_init(&m->id_refused, 0);
    atomic_init(&m->last_quota_sweep, QUOTA_SWEEP_NEVER);
    atomic_init(&m->nidents_pub, 0);
    m->shards = (shard_t *)(((uintptr_t)m->shards_raw + FDN_CACHELINE - 1) &
                            ~(uintptr_t)(FDN_CACHELINE - 1));
    m->cap = max_keys / nshards ? max_keys / nshards : 1;
    m->policy = policy;
    atomic_init(&m->interval_ns, interval_ns);
    for (uint32_t i = 0; i < nshards; i++) {
        shard_t *s = &m->shards[i];
        s->slots = fdn__table_alloc(&s->mem, SLOTS_MIN * sizeof(cell_t), SLOT_ALIGN);
        s->nslots = s->slots != NULL ? SLOTS_MIN : 0;
        atomic_init(&s->where, 0);
        if (s->slots != NULL)
            shard_publish_where(s);
        CDS_INIT_LIST_HEAD(&s->lru);
        s->last_sweep = mono_ns;
        s->last_sweep_wall = wall_ns;
        s->next_sweep = sweep_at(mono_ns, interval_ns);
        s->next_sweep_wall = sweep_at(wall_ns, interval_ns);
        s->min_exp_mono = s->min_exp_wall = INT64_MAX;
        atomic_init(&s->live, 0);
        atomic_init(&s->overflow_denied, 0);
        atomic_init(&s->allowed, 0);
        atomic_init(&s->denied, 0);
        atomic_init(&s->evictions, 0);
        atomic_init(&s->expired, 0);
        if (!s->slots || pthread_mutex_init(&s->mu, NULL) != 0) {
            fdn__table_free(&s->mem);
            m->nshards = i;
            mem_destroy(m);
            return FDN_ENOMEM;
        }
        m->nshards = i + 1;
    }
    *out = m;
    return 0;
}

/* ---- the busiest keys (fdn_limiter_top_keys) ---- */

/* Whether a ranks below b: fewer requests in the window, then the greater key. */
static bool top_less(const fdn_limit_key_info_t *a, const fdn_limit_key_info_t *b)
{
    if (a->count != b->count)
        return a->count < b->count;
    return strcmp(a->key, b->key) > 0;
}

static void top_sift_down(fdn_limit_key_info_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && top_less(&h[l], &h[m]))
            m = l;
        if (r < n && top_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        fdn_limit_key_info_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void top_sift_up(fdn_limit_key_info_t *h, size_t i)
{
    while (i > 0 && top_less(&h[i], &h[(i - 1) / 2])) {
        fdn_limit_key_info_t t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void key_info(const cell_t *c, const fdn__limit_now_t *now, fdn_limit_key_info_t *o)
{
    fdn__limit_state_t tmp = c->st;
    fdn_limit_result_t r;
    memset(&r, 0, sizeof r);
    (void)fdn__limit_apply(&tmp, &c->rule, 1, FDN__LIMIT_PEEK,
                           algo_now((fdn_limit_algo_t)c->algo, now), NULL, &r);
    memset(o, 0, sizeof(*o));
    size_t idlen = 0, kl = c->keylen;
    const char *k = cell_key(c);
    /* a key the library built: shown without its namespace byte (FDN_LIMIT_KEY_NS_*) */
    if (kl > 0 && (unsigned char)k[0] < FDN_LIMIT_KEY_NS_FIRST_FREE) {
        o->key_ns = (uint8_t)(FDN_LIMIT_NS_PROTECT + (unsigned char)k[0]);
        k++;
        kl--;
    }
    if (key_identity(k, kl, &idlen)) {
        size_t n = idlen < sizeof(o->identity) - 1 ? idlen : sizeof(o->identity) - 1;
        memcpy(o->identity, k, n);
        k += idlen + 1;
        kl -= idlen + 1;
    }
    size_t n = kl < sizeof(o->key) - 1 ? kl : sizeof(o->key) - 1;
    memcpy(o->key, k, n);
    o->key_truncated = n < kl;
    o->rule = c->rule;
    o->count = r.count;
    o->limit = r.limit;
    o->remaining = r.remaining;
    o->reset_ns = r.reset_ns;
}

size_t fdn__limiter_mem_top(void *self, const fdn__limit_now_t *now_in, fdn_limit_key_info_t *out,
                            size_t cap, size_t scan_max, uint64_t *scanned)
{
    membe_t *m = self;
    fdn__limit_now_t now;
    now_full(now_in, &now);
    size_t n = 0;
    uint64_t seen = 0;
    fdn_limit_key_info_t cur;
    /* one shard lock at a time, for that shard's cells only: checks of other shards go on */
    for (uint32_t i = 0; i < m->nshards && seen < scan_max; i++) {
        shard_t *s = &m->shards[i];
        fdn__mutex_lock(&s->mu);
        struct cds_list_head *pos;
        cds_list_for_each(pos, &s->lru)
        {
            if (seen >= scan_max)
                break;
            cell_t *c = fdn__list_entry(pos, cell_t, lru);
            seen++;
            if (cell_expired(c, &now))
                continue;
            key_info(c, &now, &cur);
            if (cur.count <= 0 || cap == 0)
                continue;
            if (n < cap) {
                out[n] = cur;
                top_sift_up(out, n++);
            } else if (top_less(&out[0], &cur)) {
                out[0] = cur;
                top_sift_down(out, n, 0);
            }
        }
        fdn__mutex_unlock(&s->mu);
    }
    /* the min-heap into descending order */
    for (size_t k = n; k > 1; k--) {
        fdn_limit_key_info_t t = out[0];
        out[0] = out[k - 1];
        out[k - 1] = t;
        top_sift_down(out, k - 1, 0);
    }
    if (scanned != NULL)
        *scanned = seen;
    return n;
}
