/* The connection pool's internals, shared by its files (infra layer, private): pool.c (leases,
 * thread caches, checkout and checkin; its DESIGN comment describes the whole pool),
 * pool_life.c (create, shutdown, references) and pool_maint.c (reap, reclaim, status). */
#ifndef FDN_INFRA_POOL_IMPL_H
#define FDN_INFRA_POOL_IMPL_H

#include <fdn/pool.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "core/lock.h"
#include "infra/pool_int.h"

#include <fdn/telemetry.h>

#define NS_PER_MS   1000000LL
#define BT_MAX      24
#define LEASE_SLOTS 32u
#define CACHE_SLOTS 16u
#define PENDING     ((uintptr_t)1)
#define LEAK_BATCH  16

#if defined(__GNUC__)
#define FDN_POOL_COLD __attribute__((cold, noinline))
#define FDN_POOL_SLOW __attribute__((noinline))
#else
#define FDN_POOL_COLD
#define FDN_POOL_SLOW
#endif

enum grant { GRANT_NONE = 0, GRANT_WORKER, GRANT_CREATE, GRANT_SHUTDOWN };

typedef struct waiter {
    struct cds_list_head link; /* in p->waiters while queued */
    pthread_cond_t cv;
    bool has_cv;
    int grant;
    fdn_pool_worker_t *worker;
} waiter_t;

/* A lease handle: points back to its worker (see "Leases" above). */
typedef struct lease_slot {
    fdn_pool_worker_t *w;
} lease_slot_t;

struct fdn_pool_worker {
    void *conn;
    fdn_pool_t *pool;
    struct cds_list_head link;     /* p->idle while idle */
    struct cds_list_head all_link; /* p->all while the worker exists */
    fdn_pool_worker_t *drop_next;  /* a caller's local chain of unlinked workers to destroy */
    int64_t created_ns;
    int64_t expires_ns; /* INT64_MAX: no lifetime */
    int64_t last_used_ns;
    _Atomic int64_t checkout_ns; /* lease start; relaxed: the holder sets it on a parked
                                    worker's new lease without p->mu */
    bool in_use;
    bool leak_reported;
    bool reclaimed;             /* p->mu; the lease was reclaimed: the worker is on p->reclaimed */
    bool validating;            /* p->mu; checkout runs validate on it: reclaim leaves it alone */
    _Atomic uint64_t owner;     /* the current lease's owner token (fdn_pool_checkout_owned), 0:
                                   none; written under p->mu (release), read by the holder
                                   without it (acquire; see "Owners" in pool.c) */
    _Atomic uint32_t lease_gen; /* odd while lent; the current lease's slot is
                                   lease_gen % LEASE_SLOTS (see "Leases") */
    _Atomic uint64_t cached_checkouts; /* checkouts of this worker from a thread cache: only
                                          the thread that took it writes it (load + store) */
    int bt_len;
    void *bt[BT_MAX];
    lease_slot_t slots[LEASE_SLOTS];
};

/* Lease generations: only the worker's owner of the moment writes them (see "Leases"; an owned
 * lease is taken over only under p->mu, see "Owners"), so relaxed accesses do; they are atomic
 * because a stale checkin may read one meanwhile. */
static inline uint32_t gen_of(const fdn_pool_worker_t *w)
{
    return atomic_load_explicit(&w->lease_gen, memory_order_relaxed);
}

static inline void gen_add(fdn_pool_worker_t *w, uint32_t d)
{
    atomic_store_explicit(&w->lease_gen, gen_of(w) + d, memory_order_relaxed);
}

/* The handle of w's current lease (p->mu held, or the caller holds that lease). */
static inline fdn_pool_worker_t *lease_handle(fdn_pool_worker_t *w)
{
    return (fdn_pool_worker_t *)(void *)&w->slots[gen_of(w) % LEASE_SLOTS];
}

static inline int64_t co_get(const fdn_pool_worker_t *w)
{
    return atomic_load_explicit(&w->checkout_ns, memory_order_relaxed);
}

/* Is h the handle of the lease w is lent under now? */
static inline bool lease_is(const fdn_pool_worker_t *w, const fdn_pool_worker_t *h)
{
    uint32_t g = gen_of(w);
    return (g & 1u) != 0 && (const void *)h == (const void *)&w->slots[g % LEASE_SLOTS];
}

/* A thread-cache slot (see "Thread caches"), padded so that two slots never share a line. */
typedef struct cache_slot {
    _Atomic uintptr_t w; /* a parked worker, PENDING-tagged while being parked, or 0 */
    char pad_[2 * FDN_CACHELINE - sizeof(uintptr_t)];
} cache_slot_t;

/* The worker behind a handle (the handle must come from a checkout of a live worker). */
static inline fdn_pool_worker_t *lease_worker(const fdn_pool_worker_t *h)
{
    return ((const lease_slot_t *)(const void *)h)->w;
}

struct fdn_pool {
    fdn__mutex_t mu;
    char name[FDN_POOL_NAME_MAX];
    int size;
    int max_overflow;
    fdn_pool_strategy_t strategy;
    int64_t checkout_timeout_ns;
    int (*create)(void **conn, void *user);
    void (*destroy)(void *conn, void *user);
    int (*validate)(void *conn, void *user);
    int (*reset)(void *conn, void *user);
    void (*on_leak)(const fdn_pool_leak_t *leak, void *user);
    void *user;
    int64_t validate_after_ns; /* < 0: never */
    int64_t max_lifetime_ns;
    int64_t jitter_ns;
    int64_t idle_timeout_ns;
    int64_t overflow_ttl_ns;
    int64_t leak_threshold_ns;
    int64_t reap_interval_ns;
    int64_t reclaim_after_ns; /* 0: off */
    bool checkin_needs_now;
    fdn_clock_t *clock;
    bool manual;
    fdn_telemetry_t *tm;

    /* state under mu */
    struct cds_list_head idle; /* idle workers (link), lent from the front */
    int idle_n;
    struct cds_list_head all;       /* every worker (all_link) */
    struct cds_list_head reclaimed; /* workers of reclaimed leases still out (all_link) */
    int reclaimed_out;
    _Atomic int live; /* written under mu; read without it by the parking checkin */
    int in_use;
    int creating;
    int busy; /* threads still using p after dropping the lock (see give_back) */
    struct cds_list_head waiters; /* waiter records (link), oldest first */
    int nwait;
    bool closed;
    bool released;
    bool reaper_started;
    bool reaper_joined;
    _Atomic int refs;
    _Atomic bool retired; /* removed from its manager (fdn__pool_retire) */
    uint64_t rng;
    uint64_t n_checkouts, n_timeouts, n_full, n_created, n_destroyed, n_broken, n_create_fail,
        n_leaks, n_reclaimed;
    pthread_cond_t drain_cv;

    pthread_t reaper;
    _Atomic bool reaper_stop;

    bool fast;            /* thread caches on (see "Thread caches"); set at creation */
    _Atomic bool closing; /* set by shutdown before it empties the caches */
    _Atomic int nwait_a;  /* nwait, published before a waiter scans the caches */
    /* The slots are written on every cached checkout and checkin, while every other field
     * the fast path reads (fast, closing, nwait_a, live, ...) is only read there: a line of
     * padding keeps slot 0 off the line of the fields above (p is only 16-byte aligned). */
    char pad_cache_[FDN_CACHELINE];
    cache_slot_t cache[CACHE_SLOTS];
};

/* ---- small helpers (p->mu held where the name says _locked) ---- */

static inline int64_t now_ns(const fdn_pool_t *p)
{
    return fdn_clock_mono_ns(p->clock);
}

static inline int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

static inline int64_t ms_to_ns(int64_t ms)
{
    if (ms <= 0)
        return ms;
    if (ms > INT64_MAX / NS_PER_MS)
        return INT64_MAX;
    return ms * NS_PER_MS;
}

/* all list */
static inline void all_add(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    cds_list_add(&w->all_link, &p->all);
}

/* w leaves p->all (p->mu held, w owned by the caller): its cached checkouts move to the
 * pool's count. */
static inline void all_remove(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    cds_list_del(&w->all_link);
    p->n_checkouts += atomic_load_explicit(&w->cached_checkouts, memory_order_relaxed);
    atomic_store_explicit(&w->cached_checkouts, 0, memory_order_relaxed);
}

static inline void idle_remove(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    cds_list_del(&w->link);
    p->idle_n--;
}

static inline void idle_push(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    if (p->strategy == FDN_POOL_FIFO)
        cds_list_add_tail(&w->link, &p->idle);
    else
        cds_list_add(&w->link, &p->idle);
    p->idle_n++;
}

static inline bool idle_any_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    return !cds_list_empty(&p->idle);
}

/* The idle worker lent next (p->idle not empty). */
static inline fdn_pool_worker_t *idle_first_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    return fdn__list_first_entry(&p->idle, fdn_pool_worker_t, link);
}

/* Unlink the idle worker w from the idle and all lists under p->mu and push it on the
 * caller's local chain *drop (destroyed newest first by destroy_chain after unlocking). */
static inline void idle_drop_locked(fdn_pool_t *p, fdn_pool_worker_t *w, fdn_pool_worker_t **drop)
    FDN_REQUIRES(p->mu)
{
    idle_remove(p, w);
    all_remove(p, w);
    w->drop_next = *drop;
    *drop = w;
}

static inline void wq_remove(fdn_pool_t *p, waiter_t *wt)
{
    cds_list_del(&wt->link);
    p->nwait--;
    atomic_store_explicit(&p->nwait_a, p->nwait, memory_order_relaxed);
}

static inline bool waiting_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    return !cds_list_empty(&p->waiters);
}

/* Grant the oldest waiter under p->mu. Returns true when the clock must be kicked. */
static inline bool grant_oldest(fdn_pool_t *p, int grant, fdn_pool_worker_t *w)
{
    waiter_t *wt = fdn__list_first_entry(&p->waiters, waiter_t, link);
    wq_remove(p, wt);
    wt->grant = grant;
    wt->worker = w;
    if (wt->has_cv)
        pthread_cond_signal(&wt->cv);
    return p->manual;
}

static inline bool can_free_locked(const fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    return p->released && p->in_use == 0 && p->creating == 0 && p->nwait == 0 && p->busy == 0 &&
           p->reclaimed_out == 0;
}

/* Wake fdn_pool_shutdown when the last lease or creation of a closed pool is done. */
static inline void drain_check_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    if (p->closed && p->in_use == 0 && p->creating == 0)
        pthread_cond_broadcast(&p->drain_cv);
}

/* ---- defined in pool.c, used by pool_life.c and pool_maint.c too ---- */

/* Create a worker (calls p->create; no lock held): 0, or the create callback's failure. */
int fdn__pool_make_worker(fdn_pool_t *p, fdn_pool_worker_t **out);
/* Free a pool whose last reference, lease, creation and post-unlock work are gone. */
void fdn__pool_free(fdn_pool_t *p);
/* Stamp a new worker's creation, lifetime (with jitter) and last use at now. */
void fdn__pool_worker_init_times_locked(fdn_pool_t *p, fdn_pool_worker_t *w, int64_t now)
    FDN_REQUIRES(p->mu);
/* Take the worker parked in a thread-cache slot, waiting out a PENDING tag (NULL: none). */
fdn_pool_worker_t *fdn__pool_slot_take_settled(cache_slot_t *c);
/* Destroy a caller's local chain of unlinked workers (no lock held). */
void fdn__pool_destroy_chain(fdn_pool_t *p, fdn_pool_worker_t *chain);
/* A telemetry event of the pool, with one measurement (mkey NULL: none). */
void fdn__pool_tm_event(fdn_pool_t *p, const char *event, const char *mkey, double mval);
/* Create n refill workers whose slots are reserved already (live and creating counted). */
void fdn__pool_refill(fdn_pool_t *p, int n);
/* The age at now of the oldest lease not parked (0: none). */
int64_t fdn__pool_oldest_lease_age_locked(const fdn_pool_t *p, int64_t now) FDN_REQUIRES(p->mu);
/* Destroy a worker unlinked from every list: its connection, then its memory. */
void fdn__pool_worker_destroy(fdn_pool_t *p, fdn_pool_worker_t *w);

#endif
