/*
 * DESIGN: connection pools (the manager of named pools is in pool_manager.c).
 *
 * Files: this one holds leases, thread caches, checkout and checkin (the hot paths, one
 * translation unit so their helpers inline); pool_life.c create, shutdown and references;
 * pool_maint.c reap, reclaim and status; pool_impl.h the structures and helpers they share.
 *
 * Threads. Checkout, checkin and maintenance run in the caller's thread. An optional reaper
 * thread per pool (reap_interval_ms > 0) is started by fdn_pool_create and joined by
 * fdn_pool_shutdown; it waits with fdn_clock_wait_until (kicked to stop) and calls
 * fdn_pool_reap.
 *
 * Locks. One mutex per pool (p->mu) guards every mutable field of the pool and of its
 * workers' bookkeeping (lists, in_use, times, backtrace). The manager has its own mutex
 * (m->mu, pool_manager.c). Order: m->mu before p->mu; never the reverse. No user callback (create,
 * destroy, validate, reset, on_leak) and no telemetry call runs with either lock held: work that
 * needs a callback is decided under the lock (a worker is unlinked, or a slot is reserved by
 * incrementing `live`) and done after unlocking.
 *
 * Waiters. A checkout that finds no idle worker and no capacity appends a waiter record (on
 * its own stack) to a FIFO queue. A checkin hands the returned worker directly to the oldest
 * waiter (grant WORKER); a freed slot (worker destroyed) is granted to the oldest waiter as a
 * reserved slot it fills by calling create itself (grant CREATE). So the oldest waiter is
 * always served first and new arrivals never overtake queued ones (invariant: waiters exist
 * => no idle worker and live == size + max_overflow, except transiently while a reserved
 * slot is being filled). A waiter is handed its worker, not woken to go and look for one, so
 * a checkout arriving between the hand-over and the waiter's run finds nothing to take (the
 * worker is neither idle nor parked: a checkin parks only while nobody waits), and a waiter
 * never loses its place in the queue (test newcomer_does_not_take_a_worker_handed_to_a_waiter).
 * With the system clock a waiter sleeps on its own condition variable (CLOCK_MONOTONIC timed wait,
 * signalled under p->mu so the record is still live). With a manual clock it sleeps in
 * fdn_clock_wait_until; the granter kicks the clock after unlocking, and advancing the clock past
 * the deadline releases it, so tests never sleep.
 *
 * Lists. Three plain (non-RCU) doubly linked lists (core/list.h: liburcu's urcu/list.h), all under
 * p->mu: p->idle holds the idle workers through their `link` (lent next from the front; LIFO
 * adds returned workers at the front, FIFO at the back); p->all holds every worker that exists
 * through `all_link` (leak sweep, oldest lease); p->waiters is the FIFO queue of waiter records
 * (their `link`). Workers unlinked under p->mu to be destroyed after unlocking (checkout,
 * shutdown, reap) go on a chain local to the caller through their own field `drop_next`, so
 * no list link is used for two things.
 *
 * Counters. `live` counts workers that exist plus slots reserved for creation; `in_use`
 * counts leases (including reserved slots that a checkout is filling); `creating` counts
 * refill creations not tied to a lease. available = idle_n.
 *
 * Lifetime. A pool is reference-counted (refs, atomic: taking and dropping a reference is on
 * every protected call, so it takes no lock). Dropping the last reference
 * shuts it down; the memory is freed once it is released and no lease, creation or
 * post-unlock work (`busy`) is outstanding: a lease may outlive the pool's references, and
 * whichever thread brings the last of these counts to zero frees it.
 *
 * Leases. The handle a checkout returns (fdn_pool_worker_t * in the API) is not the worker
 * itself but one of LEASE_SLOTS slots inside it, chosen by the worker's lease generation
 * (lease_gen: odd while lent, even otherwise; changed by whoever owns the worker: the holder,
 * or p->mu's holder for a worker not lent or an owned lease it takes over, see "Owners"),
 * which every new lease, every end of a lease and every hand-over to a waiter bumps. A checkin
 * is accepted only for the current slot of a worker lent, so a second checkin of a lease that
 * already ended (the worker went idle, to a waiter or to a new borrower) is refused with
 * FDN_EINVAL and changes nothing. A stale handle is only mistaken for the current one after a
 * multiple of LEASE_SLOTS / 2 further leases of the same worker, and (as for any
 * use-after-checkin) never after the worker was destroyed.
 *
 * Owners. A lease taken with fdn_pool_checkout_owned carries a non-zero token (`owner`) so that
 * fdn_pool_release_owner can end it from another thread; two threads may then end the same
 * lease at once, so an owned lease is ended only under p->mu, by whoever clears the token there
 * first: the holder's checkin (give_back_slow) clears it while its lease is current and goes on
 * as with an unowned lease; release_owner takes the lease over (lease_gen += 2: a new lease of
 * its own, as a hand-over to a waiter, the token cleared) and checks that one in, so the
 * holder's handle is stale and its checkin is refused (FDN_EINVAL) without the reset callback.
 * The lock-free park never ends an owned lease: it reads the token first (acquire) and leaves a
 * non-zero one to the slow path. Every store of the token is a release made after the lease_gen
 * change it goes with, so a holder that reads 0 where its token was reads the new lease_gen too
 * and fails lease_is. Every new lease and every hand-over starts with no token: a token never
 * outlives its lease.
 *
 * Thread caches. A plain pool (`fast`: LIFO, no timed feature that needs the clock at checkin, no
 * leak threshold, no reclaim) parks a returned worker in one of CACHE_SLOTS slots chosen by the
 * calling thread's number (the smallest number no live thread holds, see my_slot), without taking
 * p->mu, and the same thread's next checkout takes it back from there, so threads that each borrow
 * one worker at a time share no written cache line (HikariCP's bag does the same with thread-local
 * lists): the slots are padded apart and from the fields the fast path reads, and such a checkout
 * is counted in the worker it lends (cached_checkouts, folded into n_checkouts when the worker
 * goes), not in a shared counter. A parked worker stays counted in `in_use` (status reports it as
 * available) and stays in p->all. The slot is the only place that moves it: whoever exchanges it
 * out of the slot owns it, so a checkout with no idle worker steals parked ones before creating or
 * waiting, and shutdown takes them all. Parking races with a caller about to wait and with
 * shutdown; both sides write first and read the other's flag second (seq_cst): the parker
 * publishes its worker tagged PENDING, then reads nwait_a and closing, and either withdraws it
 * (and checks in through p->mu) or clears the tag; the waiter publishes nwait_a, shutdown
 * `closing`, and then each scans the slots, waiting out a PENDING tag. Nothing touches p after the
 * tag is cleared, so a pool freed right after (its last lease gone) is never read. In one thread,
 * parking keeps LIFO exact: a checkin that finds the slot taken moves the older parked worker to
 * the front of the idle list under p->mu and parks itself.
 *
 * Timed maintenance (all on the injected clock) is lazy: the worker being lent is checked
 * for lifetime and idle timeout and validated when idle too long; the worker being returned
 * is checked for lifetime. fdn_pool_reap (and the reaper thread) sweeps idle workers
 * (lifetime, idle timeout, overflow TTL), refills slots lost to lifetime expiry, and
 * reports leases older than the leak threshold with the borrower's backtrace.
 *
 * Reclaim. A lease held longer than reclaim_after (opts v2) is reclaimed by fdn_pool_reap:
 * its worker moves from p->all to p->reclaimed (same all_link) and leaves the counts (`live`,
 * `in_use`), so its slot is granted to the oldest waiter or refilled as after a broken
 * checkin. The worker itself stays as it is (lease_gen unchanged, in_use still true): its
 * holder may be using the connection, so only the holder's own checkin (or
 * fdn_pool_release_owner) ends the lease, and that checkin destroys the worker instead of
 * reusing it. `reclaimed_out` counts such leases; the pool's memory is not freed while any is
 * out, since that checkin still takes p->mu. Shutdown does not wait for them. A lease whose
 * checkout is still validating its worker (`validating`: the validate callback runs without
 * p->mu) is not reclaimed: the checkout still decides what becomes of that worker and its slot,
 * and the lease's age counts from the end of the validation.
 *
 * Validation. A checkout that takes an idle worker due for validation lends it first (the
 * slot counted in live and in_use), then runs validate without p->mu. A worker that fails is
 * destroyed and its slot stays reserved for the same caller, who takes the next idle (or
 * parked) worker instead, validating it in turn, and creates a worker only when none is left;
 * a pool shut down meanwhile gives the slot back and the checkout fails with FDN_ESHUTDOWN.
 */
#include <fdn/pool.h>

#include <execinfo.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/list.h"
#include "core/lock.h"
#include "infra/pool_impl.h"

#include <fdn/telemetry.h>

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------ */

/* Timestamp for leases and idle bookkeeping. With the system clock this reads
 * CLOCK_MONOTONIC_COARSE (same time base as CLOCK_MONOTONIC, a few ms resolution, several
 * times cheaper), which is ample for lease ages, idle times and lifetimes; deadlines always
 * use the precise clock. A manual clock is read as is. */
static int64_t stamp_ns(const fdn_pool_t *p)
{
    if (p->manual)
        return fdn_clock_mono_ns(p->clock);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t next_rand(fdn_pool_t *p)
{
    /* splitmix64 */
    uint64_t z = (p->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void fdn__pool_tm_event(fdn_pool_t *p, const char *event, const char *mkey, double mval)
{
    if (p->tm == NULL)
        return;
    fdn_telemetry_measure_t m = {mkey, mval};
    fdn_telemetry_meta_t meta = {"pool_name", p->name};
    (void)fdn_telemetry_execute(p->tm, event, &m, mkey != NULL ? 1 : 0, &meta, 1);
}

/* idle list */
/* The checkout_time event; the clock is read only when there is a sink to report to. */
static void tm_checkout(fdn_pool_t *p, int64_t start)
{
    if (p->tm != NULL)
        fdn__pool_tm_event(p, "foundation.connection_pool.checkout", "checkout_time",
                           (double)(now_ns(p) - start));
}

/* waiter queue */
static void wq_push(fdn_pool_t *p, waiter_t *wt)
{
    cds_list_add_tail(&wt->link, &p->waiters);
    p->nwait++;
    atomic_store(&p->nwait_a, p->nwait); /* seq_cst: before the caller scans the caches */
}

void fdn__pool_free(fdn_pool_t *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->drain_cv);
#ifndef NDEBUG
    memset(p, 0xdd, sizeof(*p));
#endif
    fdn__free(p);
}

/* Worker that is unlinked from every list: destroy its connection and free it. */
void fdn__pool_worker_destroy(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    if (w == NULL)
        return;
    if (p->destroy != NULL)
        p->destroy(w->conn, p->user);
    fdn__free(w);
}

/* Destroy a local chain of unlinked workers (linked through drop_next); no lock held. */
void fdn__pool_destroy_chain(fdn_pool_t *p, fdn_pool_worker_t *chain)
{
    while (chain != NULL) {
        fdn_pool_worker_t *n = chain->drop_next;
        fdn__pool_worker_destroy(p, chain);
        chain = n;
    }
}

void fdn__pool_worker_init_times_locked(fdn_pool_t *p, fdn_pool_worker_t *w, int64_t now)
    FDN_REQUIRES(p->mu)
{
    w->created_ns = now;
    w->last_used_ns = now;
    atomic_store_explicit(&w->checkout_ns, now, memory_order_relaxed);
    if (p->max_lifetime_ns > 0) {
        int64_t jitter = 0;
        if (p->jitter_ns > 0)
            jitter = (int64_t)(next_rand(p) % ((uint64_t)p->jitter_ns + 1u));
        int64_t life = p->max_lifetime_ns - jitter;
        if (life < 1)
            life = 1;
        w->expires_ns = add_sat(now, life);
    } else {
        w->expires_ns = INT64_MAX;
    }
}

/* Make a worker: allocate the record and call create (no lock held). */
int fdn__pool_make_worker(fdn_pool_t *p, fdn_pool_worker_t **out)
{
    fdn_pool_worker_t *w = fdn__calloc(1, sizeof(*w));
    if (w == NULL)
        return FDN_ENOMEM;
    void *conn = NULL;
    int rc = p->create(&conn, p->user);
    if (rc != 0) {
        fdn__free(w);
        return rc < 0 ? rc : FDN_EDEPENDENCY;
    }
    w->conn = conn;
    w->pool = p;
    for (unsigned i = 0; i < LEASE_SLOTS; i++)
        w->slots[i].w = w;
    *out = w;
    return 0;
}

static void capture_bt(const fdn_pool_t *p, void **bt, int *n)
{
    *n = 0;
    if (p->leak_threshold_ns > 0)
        *n = backtrace(bt, BT_MAX);
}

/* Is h the handle of w's current lease? */
static bool lease_current_locked(const fdn_pool_t *p, const fdn_pool_worker_t *w,
                                 const fdn_pool_worker_t *h) FDN_REQUIRES(p->mu)
{
    FDN_ASSERT(w->pool == p);
    return w->in_use && lease_is(w, h);
}

static void set_lease_locked(fdn_pool_t *p, fdn_pool_worker_t *w, int64_t now, void *const *bt,
                             int bt_len) FDN_REQUIRES(p->mu)
{
    FDN_ASSERT(w->pool == p);
    FDN_ASSERT((gen_of(w) & 1u) == 0);
    w->in_use = true;
    gen_add(w, 1);
    atomic_store_explicit(&w->owner, 0, memory_order_release); /* after gen (see "Owners") */
    atomic_store_explicit(&w->checkout_ns, now, memory_order_relaxed);
    w->leak_reported = false;
    w->bt_len = bt_len;
    if (bt_len > 0)
        memcpy(w->bt, bt, (size_t)bt_len * sizeof(bt[0]));
}

/* ---- thread caches (see "Thread caches") ---- */

/* Thread numbers (the cache slot is number % CACHE_SLOTS): a thread takes the smallest number
 * no live thread holds on its first use of a pool and gives it back when it exits (a pthread
 * key's destructor), so threads that come and go (a benchmark's, a task pool's) reuse the low
 * numbers and two live threads share a slot only when more than CACHE_SLOTS of them use pools.
 * Past TNO_MAX live threads the numbers are not recycled. Once per thread, under tno_mu. */
#define TNO_MAX 1024u
static pthread_once_t tno_once = PTHREAD_ONCE_INIT;
static pthread_key_t tno_key;
static bool tno_key_ok;
static fdn__mutex_t tno_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tno_used[TNO_MAX / 64] FDN_GUARDED_BY(tno_mu); /* bit n-1: number n held */
static uint32_t tno_next_big FDN_GUARDED_BY(tno_mu) = TNO_MAX + 1;
static _Thread_local uint32_t thread_no FDN_TLS_IE; /* 0: not numbered yet */

static void tno_release(void *v)
{
    uint32_t n = (uint32_t)(uintptr_t)v;
    if (n >= 1 && n <= TNO_MAX) {
        fdn__mutex_lock(&tno_mu);
        tno_used[(n - 1) / 64] &= ~((uint64_t)1 << ((n - 1) % 64));
        fdn__mutex_unlock(&tno_mu);
    }
    thread_no = 0;
}

static void tno_init(void)
{
    tno_key_ok = pthread_key_create(&tno_key, tno_release) == 0;
}

static FDN_POOL_COLD uint32_t tno_take(void)
{
    pthread_once(&tno_once, tno_init);
    uint32_t n = 0;
    fdn__mutex_lock(&tno_mu);
    for (uint32_t i = 0; i < TNO_MAX / 64 && n == 0 && tno_key_ok; i++) {
        if (tno_used[i] != UINT64_MAX) {
            unsigned b = (unsigned)__builtin_ctzll(~tno_used[i]);
            tno_used[i] |= (uint64_t)1 << b;
            n = i * 64 + b + 1;
        }
    }
    if (n == 0) {
        n = tno_next_big;
        tno_next_big = n == UINT32_MAX ? TNO_MAX + 1 : n + 1;
    }
    fdn__mutex_unlock(&tno_mu);
    if (n <= TNO_MAX && pthread_setspecific(tno_key, (void *)(uintptr_t)n) != 0)
        tno_release((void *)(uintptr_t)n); /* not given back at exit: do not hold it */
    return n;
}

uint32_t fdn__pool_thread_no(void)
{
    return thread_no;
}

/* The calling thread's slot in p's cache. */
static cache_slot_t *my_slot(fdn_pool_t *p)
{
    uint32_t n = thread_no;
    if (FDN_UNLIKELY(n == 0)) {
        n = tno_take();
        thread_no = n;
    }
    return &p->cache[(n - 1) % CACHE_SLOTS];
}

/* Take the worker parked in slot c, if any (a PENDING one is not there yet). The caller owns
 * it then: parked, still counted in in_use, lease_gen even. */
static fdn_pool_worker_t *slot_take(cache_slot_t *c)
{
    uintptr_t v = atomic_load_explicit(&c->w, memory_order_relaxed);
    if (v == 0 || (v & PENDING) != 0)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&c->w, &v, 0, memory_order_acquire,
                                                 memory_order_relaxed))
        return NULL;
    return (fdn_pool_worker_t *)v;
}

/* As slot_take, but wait out a worker being parked there (p->mu held: the parker never takes
 * it, so the wait is a few of its instructions, or its time slice if it was preempted). */
fdn_pool_worker_t *fdn__pool_slot_take_settled(cache_slot_t *c)
{
    for (;;) {
        uintptr_t v = atomic_load(&c->w); /* seq_cst: after nwait_a or closing (see above) */
        if (v == 0)
            return NULL;
        if ((v & PENDING) != 0) {
            sched_yield();
            continue;
        }
        if (atomic_compare_exchange_strong(&c->w, &v, 0))
            return (fdn_pool_worker_t *)v;
    }
}

/* Checkout without p->mu: the worker this thread parked last. Returns its new lease or NULL. */
static fdn_pool_worker_t *unpark(fdn_pool_t *p, int64_t stamp)
{
    if (atomic_load_explicit(&p->closing, memory_order_relaxed))
        return NULL;
    cache_slot_t *c = my_slot(p);
    fdn_pool_worker_t *w = slot_take(c);
    if (w == NULL)
        return NULL;
    gen_add(w, 1);
    atomic_store_explicit(&w->checkout_ns, stamp, memory_order_relaxed);
    /* the worker is ours: a load and a store count it (no shared read-modify-write) */
    atomic_store_explicit(&w->cached_checkouts,
                          atomic_load_explicit(&w->cached_checkouts, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return lease_handle(w);
}

/* Checkin without p->mu of the lease h of w: park w in this thread's slot. Returns false
 * (nothing changed, the lease still held) when the slow path must do it. */
static bool park(fdn_pool_t *p, fdn_pool_worker_t *w, const fdn_pool_worker_t *h)
{
    /* the token before the generation (acquire; see "Owners") */
    if (atomic_load_explicit(&w->owner, memory_order_acquire) != 0 || !lease_is(w, h) ||
        atomic_load_explicit(&p->live, memory_order_relaxed) > p->size)
        return false; /* an owned lease (p->mu), a stale handle, or an overflow worker */
    cache_slot_t *c = my_slot(p);
    uintptr_t expect = 0;
    if (atomic_load_explicit(&c->w, memory_order_relaxed) != 0)
        return false; /* taken: the slow path moves the older one to the idle list */
    gen_add(w, 1);    /* the lease ends before anyone can take the worker */
    if (!atomic_compare_exchange_strong(&c->w, &expect, (uintptr_t)w | PENDING)) {
        gen_add(w, UINT32_MAX); /* back to the lease: still ours */
        return false;
    }
    if (atomic_load(&p->nwait_a) != 0 || atomic_load(&p->closing)) {
        /* a caller waits, or the pool shuts down: withdraw (no one takes a PENDING worker) */
        atomic_store_explicit(&c->w, 0, memory_order_relaxed);
        gen_add(w, UINT32_MAX);
        return false;
    }
    /* release: the next owner sees every write of this lease; p is not touched after this */
    atomic_store_explicit(&c->w, (uintptr_t)w, memory_order_release);
    return true;
}

/* Under p->mu, in the slow checkin, park the lease's worker w (whose lease has not ended yet;
 * its token cleared already) if the slot is free or holds a settled older worker, which then
 * goes to the front of the idle list (LIFO: it was returned before w). Returns false when
 * nothing was done. */
static bool park_locked(fdn_pool_t *p, fdn_pool_worker_t *w) FDN_REQUIRES(p->mu)
{
    cache_slot_t *c = my_slot(p);
    uintptr_t v = atomic_load_explicit(&c->w, memory_order_relaxed);
    if ((v & PENDING) != 0)
        return false;
    FDN_ASSERT(atomic_load_explicit(&w->owner, memory_order_relaxed) == 0);
    gen_add(w, 1);
    if (!atomic_compare_exchange_strong_explicit(&c->w, &v, (uintptr_t)w, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        gen_add(w, UINT32_MAX);
        return false;
    }
    if (v != 0) {
        fdn_pool_worker_t *old = (fdn_pool_worker_t *)v;
        old->in_use = false;
        old->bt_len = 0;
        p->in_use--;
        idle_push(p, old);
    }
    return true;
}

/* Steal a parked worker from any slot (p->mu held) and make it the caller's lease. */
static fdn_pool_worker_t *steal_locked(fdn_pool_t *p, int64_t now, void *const *bt, int bt_len)
    FDN_REQUIRES(p->mu)
{
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        fdn_pool_worker_t *w = fdn__pool_slot_take_settled(&p->cache[i]);
        if (w != NULL) {
            set_lease_locked(p, w, now, bt, bt_len); /* in_use: counted while parked */
            p->n_checkouts++;
            return lease_handle(w);
        }
    }
    return NULL;
}

/* Make w idle under p->mu. In a pool with thread caches, the parked workers go to the idle
 * list first, so that w, returned or made after them, is lent before them (LIFO). */
static void idle_add_locked(fdn_pool_t *p, fdn_pool_worker_t *w) FDN_REQUIRES(p->mu)
{
    for (unsigned i = 0; p->fast && i < CACHE_SLOTS; i++) {
        fdn_pool_worker_t *x = fdn__pool_slot_take_settled(&p->cache[i]);
        if (x != NULL) {
            x->in_use = false;
            x->bt_len = 0;
            p->in_use--;
            idle_push(p, x);
        }
    }
    idle_push(p, w);
}

int64_t fdn__pool_oldest_lease_age_locked(const fdn_pool_t *p, int64_t now) FDN_REQUIRES(p->mu)
{
    int64_t oldest = INT64_MAX;
    const fdn_pool_worker_t *w;
    fdn__list_for_each_entry(w, &p->all, all_link)
    {
        if (w->in_use && (gen_of(w) & 1u) != 0 && co_get(w) < oldest) /* not parked */
            oldest = co_get(w);
    }
    return oldest == INT64_MAX ? 0 : FDN_MAX(now - oldest, (int64_t)0);
}

/* Add a freshly made worker (created for a refill, not for a lease) under p->mu: hand it
 * to the oldest waiter, or make it idle; when the pool is closed return it to be destroyed.
 * *kick is set when the clock must be kicked. */
static fdn_pool_worker_t *place_new_locked(fdn_pool_t *p, fdn_pool_worker_t *w, int64_t now,
                                           bool *kick) FDN_REQUIRES(p->mu)
{
    fdn__pool_worker_init_times_locked(p, w, now);
    p->n_created++;
    if (p->closed) {
        p->live--;
        p->n_destroyed++;
        return w;
    }
    all_add(p, w);
    if (waiting_locked(p)) {
        p->in_use++;
        set_lease_locked(p, w, now, NULL, 0);
        *kick |= grant_oldest(p, GRANT_WORKER, w);
    } else {
        idle_add_locked(p, w);
    }
    return NULL;
}

/* Create `n` refill workers whose slots are already reserved (live and creating counted). */
void fdn__pool_refill(fdn_pool_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        fdn_pool_worker_t *w = NULL;
        int rc = fdn__pool_make_worker(p, &w);
        bool kick = false;
        bool f;
        fdn__mutex_lock(&p->mu);
        p->creating--;
        fdn_pool_worker_t *drop = NULL;
        if (rc != 0) {
            p->live--;
            p->n_create_fail++;
            /* The slot is free again: let the oldest waiter try to fill it. */
            if (waiting_locked(p) && !p->closed) {
                p->live++;
                p->in_use++;
                kick = grant_oldest(p, GRANT_CREATE, NULL);
            }
        } else {
            drop = place_new_locked(p, w, now_ns(p), &kick);
        }
        drain_check_locked(p);
        p->busy++; /* pins p while the clock is kicked and `drop` destroyed */
        fdn__mutex_unlock(&p->mu);
        if (kick)
            fdn_clock_kick(p->clock);
        fdn__pool_worker_destroy(p, drop);
        fdn__mutex_lock(&p->mu);
        p->busy--;
        f = can_free_locked(p);
        fdn__mutex_unlock(&p->mu);
        if (f) {
            fdn__pool_free(p);
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Checkout / checkin
 * ------------------------------------------------------------------------------------------ */

static bool idle_expired(const fdn_pool_t *p, const fdn_pool_worker_t *w, int64_t now)
{
    if (now >= w->expires_ns)
        return true;
    if (p->idle_timeout_ns > 0 && now - w->last_used_ns >= p->idle_timeout_ns)
        return true;
    return false;
}

static int timeout_error(fdn_pool_t *p, fdn_error_t *err, int64_t timeout_ns, int in_use,
                         int64_t oldest)
{
    fdn__pool_tm_event(p, "foundation.connection_pool.timeout", "timeout",
                       (double)(timeout_ns / NS_PER_MS));
    if (err == NULL)
        return FDN_ETIMEDOUT;
    fdn_err_set(err, FDN_ETIMEDOUT, "pool %s: checkout timed out after %lld ms", p->name,
                (long long)(timeout_ns / NS_PER_MS));
    fdn_err_add_context(err, "pool", "%s", p->name);
    fdn_err_add_context(err, "in_use", "%d", in_use);
    fdn_err_add_context(err, "oldest_lease_age_ms", "%lld", (long long)(oldest / NS_PER_MS));
    return FDN_ETIMEDOUT;
}

/* A checkout that may not wait found every worker lent (or callers already waiting). */
static int full_error(fdn_pool_t *p, fdn_error_t *err, int in_use, int cap, int64_t oldest)
{
    fdn__pool_tm_event(p, "foundation.connection_pool.full", "in_use", (double)in_use);
    if (err == NULL)
        return FDN_EBUSY;
    fdn_err_set(err, FDN_EBUSY, "pool %s is full: %d of %d workers lent", p->name, in_use, cap);
    fdn_err_add_context(err, "pool", "%s", p->name);
    fdn_err_add_context(err, "in_use", "%d", in_use);
    fdn_err_add_context(err, "oldest_lease_age_ms", "%lld", (long long)(oldest / NS_PER_MS));
    return FDN_EBUSY;
}

/* Fill a reserved slot (live and in_use already counted) for the caller. */
static int fill_slot(fdn_pool_t *p, fdn_pool_worker_t **out, void **bt, int bt_len,
                     fdn_error_t *err)
{
    fdn_pool_worker_t *w = NULL;
    int rc = fdn__pool_make_worker(p, &w);
    bool kick = false;
    fdn__mutex_lock(&p->mu);
    int64_t now = now_ns(p);
    if (rc != 0) {
        p->live--;
        p->in_use--;
        p->n_create_fail++;
        if (waiting_locked(p) && !p->closed) {
            p->live++;
            p->in_use++;
            kick = grant_oldest(p, GRANT_CREATE, NULL);
        }
        drain_check_locked(p);
        fdn__mutex_unlock(&p->mu);
        if (kick)
            fdn_clock_kick(p->clock);
        return fdn_err_set(err, rc, "pool %s: creating a worker failed: %s", p->name,
                           fdn_strerror(rc));
    }
    fdn__pool_worker_init_times_locked(p, w, now);
    all_add(p, w);
    set_lease_locked(p, w, now, bt, bt_len);
    p->n_created++;
    p->n_checkouts++;
    *out = lease_handle(w);
    fdn__mutex_unlock(&p->mu);
    return 0;
}

/* fdn_pool_checkout with the lease's timestamp `stamp` (NO_STAMP: read it here). */
#define NO_STAMP INT64_MIN
static FDN_POOL_SLOW int checkout_slow(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                                       int64_t start, int64_t stamp, fdn_error_t *err);

static int checkout_impl(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms, int64_t stamp,
                         fdn_error_t *err)
{
    if (FDN_UNLIKELY(p == NULL || out == NULL || timeout_ms < FDN_POOL_TIMEOUT_DEFAULT))
        return fdn_err_set(err, FDN_EINVAL, "pool checkout: bad arguments");
    /* Precise start only when telemetry reports the checkout time. */
    int64_t start = p->tm != NULL ? now_ns(p) : 0;
    if (stamp == NO_STAMP)
        stamp = stamp_ns(p);
    if (p->fast) {
        fdn_pool_worker_t *h = unpark(p, stamp);
        if (FDN_LIKELY(h != NULL)) {
            *out = h;
            tm_checkout(p, start);
            return 0;
        }
    }
    return checkout_slow(p, out, timeout_ms, start, stamp, err);
}

/* The rest of a checkout (arguments checked, the thread cache tried): start is the
 * telemetry's start time, stamp the lease's timestamp. */
static int checkout_slow(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms, int64_t start,
                         int64_t stamp, fdn_error_t *err)
{
    int64_t timeout_ns = timeout_ms == FDN_POOL_TIMEOUT_DEFAULT ? p->checkout_timeout_ns
                         : timeout_ms == FDN_POOL_WAIT_FOREVER  ? INT64_MAX
                                                                : ms_to_ns(timeout_ms);
    void *bt[BT_MAX];
    int bt_len = 0;
    capture_bt(p, bt, &bt_len);

    fdn_pool_worker_t *drop = NULL; /* expired idle workers to destroy */
    int rc;
    /* A slot (counted in live and in_use) is held for this caller: the worker it was lent
     * failed validation (see "Validation"). It comes before any waiter, as a lease would. */
    bool reserved = false;
    fdn__mutex_lock(&p->mu);
    for (;;) {
        if (p->closed) {
            if (reserved) {
                p->live--;
                p->in_use--;
                drain_check_locked(p);
            }
            fdn__mutex_unlock(&p->mu);
            fdn__pool_destroy_chain(p, drop);
            return fdn_err_set(err, FDN_ESHUTDOWN, "pool %s is shut down", p->name);
        }
        if ((reserved || !waiting_locked(p)) && idle_any_locked(p)) {
            fdn_pool_worker_t *w = idle_first_locked(p);
            int64_t now = stamp;
            if (idle_expired(p, w, now)) {
                idle_drop_locked(p, w, &drop);
                p->live--;
                p->n_destroyed++;
                continue;
            }
            idle_remove(p, w);
            bool check = p->validate != NULL && p->validate_after_ns >= 0 &&
                         now - w->last_used_ns >= p->validate_after_ns;
            set_lease_locked(p, w, now, bt, bt_len);
            if (reserved) { /* w exists already: the reserved slot's lease is w's */
                p->live--;
                reserved = false;
            } else {
                p->in_use++;
            }
            p->n_checkouts++;
            fdn_pool_worker_t *h = lease_handle(w);
            if (check)
                w->validating = true;
            fdn__mutex_unlock(&p->mu);
            fdn__pool_destroy_chain(p, drop);
            drop = NULL;
            if (!check) {
                *out = h;
                tm_checkout(p, start);
                return 0;
            }
            int vrc = p->validate(w->conn, p->user);
            fdn__mutex_lock(&p->mu);
            w->validating = false;
            if (vrc == 0) {
                /* the lease counts from here for reclaim (see "Reclaim") */
                atomic_store_explicit(&w->checkout_ns, stamp_ns(p), memory_order_relaxed);
                fdn__mutex_unlock(&p->mu);
                *out = h;
                tm_checkout(p, start);
                return 0;
            }
            /* Failed validation: destroy w after unlocking; its slot (still counted in live
             * and in_use, so no waiter can take it) stays this caller's, for the next idle
             * worker or a new one (see "Validation"). */
            w->in_use = false;
            all_remove(p, w);
            w->drop_next = drop;
            drop = w;
            p->n_checkouts--;
            p->n_broken++;
            p->n_destroyed++;
            reserved = true;
            continue;
        }
        if (p->fast && (reserved || !waiting_locked(p))) {
            fdn_pool_worker_t *h = steal_locked(p, stamp, bt, bt_len);
            if (h != NULL) {
                if (reserved) { /* a parked worker is counted in live and in_use already */
                    p->live--;
                    p->in_use--;
                }
                fdn__mutex_unlock(&p->mu);
                fdn__pool_destroy_chain(p, drop);
                *out = h;
                tm_checkout(p, start);
                return 0;
            }
        }
        if (reserved || (!waiting_locked(p) && p->live < p->size + p->max_overflow)) {
            if (!reserved) {
                p->live++;
                p->in_use++;
            }
            fdn__mutex_unlock(&p->mu);
            fdn__pool_destroy_chain(p, drop);
            rc = fill_slot(p, out, bt, bt_len, err);
            if (rc == 0)
                tm_checkout(p, start);
            return rc;
        }
        if (drop != NULL) {
            fdn__mutex_unlock(&p->mu);
            fdn__pool_destroy_chain(p, drop);
            drop = NULL;
            fdn__mutex_lock(&p->mu);
            continue;
        }
        break;
    }

    /* Wait in line; the deadline counts from here. */
    int64_t now = now_ns(p);
    int64_t deadline = add_sat(now, timeout_ns);
    if (timeout_ns == 0) { /* a checkout that does not wait: poolboy's `full` */
        p->n_full++;
        int in_use = p->in_use, cap = p->size + p->max_overflow;
        int64_t oldest = fdn__pool_oldest_lease_age_locked(p, now);
        fdn__mutex_unlock(&p->mu);
        return full_error(p, err, in_use, cap, oldest);
    }
    waiter_t wt = {0};
    wt.has_cv = !p->manual;
    if (wt.has_cv)
        (void)fdn__cond_init_mono(&wt.cv);
    wq_push(p, &wt);
    if (p->fast) {
        /* a worker parked before this waiter was visible (see "Thread caches") */
        fdn_pool_worker_t *h = steal_locked(p, now, bt, bt_len);
        if (h != NULL) {
            wq_remove(p, &wt);
            if (wt.has_cv)
                pthread_cond_destroy(&wt.cv);
            fdn__mutex_unlock(&p->mu);
            *out = h;
            tm_checkout(p, start);
            return 0;
        }
    }
    while (wt.grant == GRANT_NONE) {
        if (p->manual) {
            uint64_t seq = fdn_clock_kick_seq(p->clock);
            fdn__mutex_unlock(&p->mu);
            (void)fdn_clock_wait_until(p->clock, deadline, &seq);
            fdn__mutex_lock(&p->mu);
        } else {
            (void)fdn__cond_wait_until(&wt.cv, &p->mu, deadline);
        }
        if (wt.grant != GRANT_NONE)
            break;
        if (now_ns(p) >= deadline)
            break;
    }
    if (wt.grant == GRANT_NONE)
        wq_remove(p, &wt);
    if (wt.has_cv)
        pthread_cond_destroy(&wt.cv);

    switch (wt.grant) {
    case GRANT_WORKER: {
        fdn_pool_worker_t *w = wt.worker;
        w->bt_len = bt_len;
        if (bt_len > 0)
            memcpy(w->bt, bt, (size_t)bt_len * sizeof(bt[0]));
        p->n_checkouts++;
        *out = lease_handle(w);
        fdn__mutex_unlock(&p->mu);
        tm_checkout(p, start);
        return 0;
    }
    case GRANT_CREATE:
        fdn__mutex_unlock(&p->mu);
        rc = fill_slot(p, out, bt, bt_len, err);
        if (rc == 0)
            tm_checkout(p, start);
        return rc;
    case GRANT_SHUTDOWN:
        fdn__mutex_unlock(&p->mu);
        return fdn_err_set(err, FDN_ESHUTDOWN, "pool %s is shut down", p->name);
    default: {
        p->n_timeouts++;
        now = now_ns(p);
        int in_use = p->in_use;
        int64_t oldest = fdn__pool_oldest_lease_age_locked(p, now);
        fdn__mutex_unlock(&p->mu);
        return timeout_error(p, err, timeout_ns, in_use, oldest);
    }
    }
}

int fdn_pool_checkout(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms, fdn_error_t *err)
{
    return checkout_impl(p, out, timeout_ms, NO_STAMP, err);
}

int fdn__pool_checkout_at(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                          const fdn_clock_t *clock, int64_t mono_ns, fdn_error_t *err)
{
    /* the caller's time is a lease stamp only on the same time source as the pool's */
    if (mono_ns == NO_STAMP || p == NULL || p->manual || fdn_clock_is_manual(clock))
        mono_ns = NO_STAMP;
    return checkout_impl(p, out, timeout_ms, mono_ns, err);
}

void *fdn_pool_worker_conn(const fdn_pool_worker_t *h)
{
    return h != NULL ? lease_worker(h)->conn : NULL;
}

static FDN_POOL_SLOW int give_back_slow(fdn_pool_t *p, fdn_pool_worker_t *w, fdn_pool_worker_t *h,
                                        bool broken, bool tried);

static int give_back(fdn_pool_t *p, fdn_pool_worker_t *h, bool broken)
{
    if (p == NULL || h == NULL)
        return FDN_EINVAL;
    fdn_pool_worker_t *w = lease_worker(h);
    if (w == NULL || w->pool != p)
        return FDN_EINVAL;
    /* the common case first: nothing to call or report before parking */
    bool plain = p->fast && !broken && p->reset == NULL && p->tm == NULL;
    if (FDN_LIKELY(plain) && park(p, w, h))
        return 0;
    return give_back_slow(p, w, h, broken, plain);
}

/* The rest of give_back; tried: park was tried already (and nothing was to be called or
 * reported before it). */
static int give_back_slow(fdn_pool_t *p, fdn_pool_worker_t *w, fdn_pool_worker_t *h, bool broken,
                          bool tried)
{
    bool reset_done = false, reported = false;
    if (atomic_load_explicit(&w->owner, memory_order_acquire) != 0) {
        /* An owned lease: fdn_pool_release_owner may be ending it too. Clearing the token
         * under p->mu while the lease is current makes it the caller's alone (see "Owners"). */
        fdn__mutex_lock(&p->mu);
        bool current = lease_current_locked(p, w, h);
        if (current)
            atomic_store_explicit(&w->owner, 0, memory_order_release);
        fdn__mutex_unlock(&p->mu);
        if (!current)
            return FDN_EINVAL; /* release_owner has it, or a stale handle */
        tried = false;         /* park refused it for its token only */
    }
    if (p->fast && !broken && lease_is(w, h)) {
        /* the caller's own lease (a stale handle fails lease_is; see "Leases") */
        reset_done = true;
        if (p->reset != NULL && p->reset(w->conn, p->user) != 0) {
            broken = true;
        } else {
            if (p->tm != NULL) { /* now, while the lease still pins p */
                fdn__pool_tm_event(p, "foundation.connection_pool.checkin", NULL, 0);
                reported = true;
            }
            if (!tried && park(p, w, h))
                return 0;
        }
    }
    if (!broken && !reset_done && p->reset != NULL) {
        /* the reset callback must only ever see a connection the caller really holds */
        fdn__mutex_lock(&p->mu);
        bool current = lease_current_locked(p, w, h);
        bool reclaimed = w->reclaimed;
        fdn__mutex_unlock(&p->mu);
        if (!current)
            return FDN_EINVAL;
        if (!reclaimed && p->reset(w->conn, p->user) != 0)
            broken = true;
    }
    int64_t now = p->checkin_needs_now ? stamp_ns(p) : 0;
    bool kick = false;
    int refill_n = 0;
    fdn_pool_worker_t *drop = NULL;

    fdn__mutex_lock(&p->mu);
    if (!lease_current_locked(p, w, h)) {
        /* a second checkin of an ended lease: the worker is idle or someone else's now */
        fdn__mutex_unlock(&p->mu);
        return FDN_EINVAL;
    }
    if (!p->checkin_needs_now)
        now = co_get(w);
    bool expired = now >= w->expires_ns;
    if (w->reclaimed) {
        /* Its slot was given away when it was reclaimed: only the worker is left to destroy. */
        w->in_use = false;
        all_remove(p, w);
        p->reclaimed_out--;
        p->n_destroyed++;
        if (broken)
            p->n_broken++;
        drop = w;
    } else if (!broken && !expired && !p->closed && waiting_locked(p)) {
        /* Hand over to the oldest waiter; the lease continues. */
        if (!p->checkin_needs_now)
            now = stamp_ns(p);
        atomic_store_explicit(&w->checkout_ns, now, memory_order_relaxed);
        w->leak_reported = false;
        w->bt_len = 0;
        gen_add(w, 2); /* a new lease: the old handle no longer checks in */
        /* the waiter's lease has no owner (cleared at the start already: kept explicit) */
        atomic_store_explicit(&w->owner, 0, memory_order_release);
        kick = grant_oldest(p, GRANT_WORKER, w);
    } else if (broken || expired || p->closed || (p->live > p->size && p->overflow_ttl_ns == 0)) {
        w->in_use = false;
        all_remove(p, w);
        p->live--;
        p->in_use--;
        p->n_destroyed++;
        if (broken)
            p->n_broken++;
        drop = w;
        if (!p->closed && (broken || expired)) {
            if (waiting_locked(p)) {
                p->live++;
                p->in_use++;
                kick = grant_oldest(p, GRANT_CREATE, NULL);
            } else if (p->live < p->size) {
                p->live++;
                p->creating++;
                refill_n = 1;
            }
        }
    } else if (!(p->fast && park_locked(p, w))) {
        w->in_use = false;
        gen_add(w, 1); /* the lease ended */
        w->last_used_ns = now;
        w->bt_len = 0;
        p->in_use--;
        idle_add_locked(p, w);
    }
    drain_check_locked(p);
    /* Work left after unlocking touches p: pin it with `busy` so that a concurrent final
     * checkin of an orphaned pool cannot free it under us. */
    bool post = drop != NULL || refill_n > 0 || (p->tm != NULL && !reported);
    if (post)
        p->busy++;
    bool f = !post && can_free_locked(p);
    fdn_clock_t *clock = p->clock;
    fdn__mutex_unlock(&p->mu);
    if (kick)
        fdn_clock_kick(clock);
    if (!post) {
        if (f)
            fdn__pool_free(p);
        return 0;
    }
    if (!reported)
        fdn__pool_tm_event(p, "foundation.connection_pool.checkin", NULL, 0);
    fdn__pool_worker_destroy(p, drop);
    if (refill_n > 0)
        fdn__pool_refill(p, refill_n);
    fdn__mutex_lock(&p->mu);
    p->busy--;
    f = can_free_locked(p);
    fdn__mutex_unlock(&p->mu);
    if (f)
        fdn__pool_free(p);
    return 0;
}

int fdn_pool_checkout_owned(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                            uint64_t owner, fdn_error_t *err)
{
    if (owner == 0) /* 0 means "no owner": fdn_pool_release_owner could never find the lease */
        return fdn_err_set(err, FDN_EINVAL, "pool checkout_owned: owner token must be non-zero");
    int rc = fdn_pool_checkout(p, out, timeout_ms, err);
    if (rc == 0) {
        fdn__mutex_lock(&p->mu);
        atomic_store_explicit(&lease_worker(*out)->owner, owner, memory_order_release);
        fdn__mutex_unlock(&p->mu);
    }
    return rc;
}

int fdn_pool_release_owner(fdn_pool_t *p, uint64_t owner, bool broken)
{
    if (p == NULL || owner == 0)
        return FDN_EINVAL;
    int n = 0;
    for (;;) { /* one lease at a time: give_back takes the lock itself */
        fdn_pool_worker_t *h = NULL, *w;
        fdn__mutex_lock(&p->mu);
        struct cds_list_head *lists[] = {&p->all, &p->reclaimed};
        for (size_t i = 0; i < 2 && h == NULL; i++) {
            fdn__list_for_each_entry(w, lists[i], all_link)
            {
                if (w->in_use && (gen_of(w) & 1u) != 0 &&
                    atomic_load_explicit(&w->owner, memory_order_relaxed) == owner) {
                    /* Take the lease over (see "Owners"): a new lease of ours, as a
                     * hand-over, so the holder's handle is stale and its checkin refused;
                     * the token cleared after, so no other release_owner takes it too. */
                    gen_add(w, 2);
                    atomic_store_explicit(&w->owner, 0, memory_order_release);
                    h = lease_handle(w);
                    break;
                }
            }
        }
        fdn__mutex_unlock(&p->mu);
        if (h == NULL)
            return n;
        int rc = give_back(p, h, broken);
        FDN_ASSERT(rc == 0); /* the lease is ours alone */
        n += rc == 0;
    }
}

int fdn_pool_checkin(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    return give_back(p, w, false);
}

int fdn_pool_checkin_broken(fdn_pool_t *p, fdn_pool_worker_t *w)
{
    return give_back(p, w, true);
}

int fdn_pool_with(fdn_pool_t *p, fdn_pool_fn fn, void *arg, int64_t timeout_ms, fdn_error_t *err)
{
    if (fn == NULL)
        return fdn_err_set(err, FDN_EINVAL, "pool with: fn required");
    fdn_pool_worker_t *w = NULL;
    int rc = fdn_pool_checkout(p, &w, timeout_ms, err);
    if (rc != 0)
        return rc;
    rc = fn(fdn_pool_worker_conn(w), arg);
    (void)give_back(p, w, rc == FDN_EPOOL_BROKEN);
    return rc;
}
