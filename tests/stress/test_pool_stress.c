/* Stress: N threads checking workers out and in (some as broken, some with short deadlines),
 * and in one case a thread reclaiming leases past a 1 ms hold time on a manual clock it keeps
 * advancing. Invariants: no worker is ever held by two callers (a per-connection atomic owner
 * flag), every caller is eventually served, and at the end the counts balance. Runs under
 * TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include <fdn/pool.h>

typedef struct sconn {
    _Atomic int owner;
    _Atomic long uses;
} sconn_t;

static _Atomic int g_live;

static int s_create(void **out, void *user)
{
    (void)user;
    sconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    atomic_fetch_add(&g_live, 1);
    *out = c;
    return 0;
}

static void s_destroy(void *conn, void *user)
{
    (void)user;
    sconn_t *c = conn;
    assert_int_equal(atomic_load(&c->owner), 0);
    atomic_fetch_sub(&g_live, 1);
    free(c);
}

typedef struct targ {
    fdn_pool_t *p;
    int tid;
    long iters;
    long ok, timeouts, broken, double_owner;
    pthread_barrier_t *bar;
    _Atomic int *done; /* incremented when the thread ends */
} targ_t;

static long iters_from_env(void)
{
    const char *s = getenv("FDN_STRESS_ITERS");
    if (s != NULL) {
        long v = strtol(s, NULL, 10);
        if (v > 0)
            return v;
    }
    return 20000;
}

static void *worker(void *arg)
{
    targ_t *a = arg;
    uint64_t r = (uint64_t)a->tid * 0x9E3779B97F4A7C15ULL + 1;
    pthread_barrier_wait(a->bar);
    for (long i = 0; i < a->iters; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int64_t timeout = (r % 8 == 0) ? 0 : FDN_POOL_WAIT_FOREVER;
        fdn_pool_worker_t *w = NULL;
        int rc = fdn_pool_checkout(a->p, &w, timeout, NULL);
        if (rc == FDN_EBUSY) { /* timeout 0 on a full pool */
            a->timeouts++;
            continue;
        }
        assert_int_equal(rc, 0);
        sconn_t *c = fdn_pool_worker_conn(w);
        int expect = 0;
        if (!atomic_compare_exchange_strong(&c->owner, &expect, a->tid + 1))
            a->double_owner++;
        atomic_fetch_add_explicit(&c->uses, 1, memory_order_relaxed);
        atomic_store(&c->owner, 0);
        if (r % 97 == 0) {
            a->broken++;
            assert_int_equal(fdn_pool_checkin_broken(a->p, w), 0);
        } else {
            assert_int_equal(fdn_pool_checkin(a->p, w), 0);
        }
        a->ok++;
    }
    if (a->done != NULL)
        atomic_fetch_add(a->done, 1);
    return NULL;
}

/* The reclaiming thread of run(): advance the clock 1 ms and reap until the workers are done
 * (a bounded loop: each round is one reap), at least once: a loaded machine may run this
 * thread only after the workers have finished, and the run still checks a reclaim. */
typedef struct rarg {
    fdn_pool_t *p;
    fdn_clock_t *clk;
    _Atomic int *done;
    int workers;
} rarg_t;

static void *reclaimer(void *arg)
{
    rarg_t *a = arg;
    do {
        assert_int_equal(fdn_clock_advance(a->clk, 1000000), 0);
        assert_true(fdn_pool_reap(a->p) >= 0);
        sched_yield();
    } while (atomic_load(a->done) < a->workers);
    return NULL;
}

static void run_with(fdn_pool_strategy_t strat, int size, int overflow, bool reclaim)
{
    enum { T = 4 };
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = size;
    o.max_overflow = overflow;
    o.strategy = strat;
    o.create = s_create;
    o.destroy = s_destroy;
    fdn_clock_t *clk = NULL;
    if (reclaim) {
        assert_int_equal(fdn_clock_manual_create(&clk, 0, 0), 0);
        o.clock = clk;
        o.reclaim_after_ms = 1;
    }
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    /* a lease held through the whole run: the first reap after 1 ms reclaims it for sure */
    fdn_pool_worker_t *held = NULL;
    if (reclaim)
        assert_int_equal(fdn_pool_checkout(p, &held, 0, NULL), 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T);
    pthread_t th[T], rth;
    targ_t a[T];
    _Atomic int done = 0;
    rarg_t ra = {.p = p, .clk = clk, .done = &done, .workers = T};
    if (reclaim)
        assert_int_equal(pthread_create(&rth, NULL, reclaimer, &ra), 0);
    long iters = iters_from_env();
    for (int i = 0; i < T; i++) {
        a[i] = (targ_t){.p = p, .tid = i, .iters = iters, .bar = &bar, .done = &done};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    long ok = 0, broken = 0, timeouts = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].double_owner, 0);
        ok += a[i].ok;
        broken += a[i].broken;
        timeouts += a[i].timeouts;
    }
    pthread_barrier_destroy(&bar);
    fdn_pool_status_t s;
    if (reclaim) {
        pthread_join(rth, NULL);
        assert_int_equal(fdn_pool_status(p, &s), 0);
        assert_true(s.reclaimed >= 1);
        assert_int_equal(s.reclaimed_out, 1); /* `held` */
        assert_int_equal(fdn_pool_checkin(p, held), 0);
        ok++; /* its checkout counts */
    }
    assert_int_equal(fdn_pool_status(p, &s), 0);
    assert_int_equal(s.reclaimed_out, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.waiters, 0);
    assert_int_equal((long)s.checkouts, ok);
    assert_int_equal((long)s.full, timeouts); /* only checkouts that may not wait fail */
    assert_int_equal((long)s.timeouts, 0);
    assert_int_equal((long)s.broken, broken);
    assert_int_equal(s.available, s.workers);
    assert_true(s.workers <= size + overflow);
    assert_true(s.workers >= size); /* broken permanent workers were replaced */
    assert_int_equal((long)(s.created - s.destroyed), s.workers);
    assert_int_equal(atomic_load(&g_live), s.workers);
    assert_int_equal(ok + timeouts, iters * T + (reclaim ? 1 : 0));
    fdn_pool_destroy(p);
    assert_int_equal(atomic_load(&g_live), 0);
    fdn_clock_destroy(clk);
}

static void run(fdn_pool_strategy_t strat, int size, int overflow)
{
    run_with(strat, size, overflow, false);
}

static void reclaim_under_load(void **state)
{
    (void)state;
    run_with(FDN_POOL_LIFO, 2, 1, true);
}

static void lifo_contended(void **state)
{
    (void)state;
    run(FDN_POOL_LIFO, 2, 1);
}

static void fifo_contended(void **state)
{
    (void)state;
    run(FDN_POOL_FIFO, 1, 0);
}

static void wide_pool(void **state)
{
    (void)state;
    run(FDN_POOL_LIFO, 4, 4);
}

static void cached_contended(void **state)
{
    (void)state;
    run(FDN_POOL_LIFO, 2, 0); /* no overflow: every checkin may park in a thread cache */
}

/* Shutdown while threads park workers in their thread caches and take them back: every worker
 * is destroyed exactly once (s_destroy checks nobody holds it), whether it was parked, idle or
 * lent when the pool closed, and the pool is freed by whoever comes last. */
typedef struct sarg {
    fdn_pool_t *p;
    _Atomic long *progress;
    pthread_barrier_t *bar;
} sarg_t;

static void *until_shutdown(void *arg)
{
    sarg_t *a = arg;
    pthread_barrier_wait(a->bar);
    for (;;) {
        fdn_pool_worker_t *w = NULL;
        int rc = fdn_pool_checkout(a->p, &w, FDN_POOL_WAIT_FOREVER, NULL);
        if (rc == FDN_ESHUTDOWN)
            return NULL;
        assert_int_equal(rc, 0);
        sconn_t *c = fdn_pool_worker_conn(w);
        int expect = 0;
        assert_true(atomic_compare_exchange_strong(&c->owner, &expect, 1));
        atomic_store(&c->owner, 0);
        atomic_fetch_add(a->progress, 1);
        assert_int_equal(fdn_pool_checkin(a->p, w), 0);
    }
}

static void shutdown_races_thread_caches(void **state)
{
    (void)state;
    enum { T = 4, ROUNDS = 20 };
    for (int r = 0; r < ROUNDS; r++) {
        fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
        o.size = 2;
        o.max_overflow = 0;
        o.create = s_create;
        o.destroy = s_destroy;
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        fdn_pool_retain(p); /* the threads' reference, dropped after they are joined */
        _Atomic long progress = 0;
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, T + 1);
        pthread_t th[T];
        sarg_t a = {.p = p, .progress = &progress, .bar = &bar};
        for (int i = 0; i < T; i++)
            assert_int_equal(pthread_create(&th[i], NULL, until_shutdown, &a), 0);
        pthread_barrier_wait(&bar);
        while (atomic_load(&progress) < 1000) /* the threads are cycling */
            sched_yield();
        fdn_pool_destroy(p); /* shutdown without waiting + our reference */
        for (int i = 0; i < T; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        fdn_pool_status_t s;
        assert_int_equal(fdn_pool_status(p, &s), 0);
        assert_true(s.closed);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.available, 0);
        assert_int_equal(s.workers, 0);
        fdn_pool_release(p);
        assert_int_equal(atomic_load(&g_live), 0);
    }
}

/* Waiters are served in the order they queued: rounds of N callers queued one after the
 * other (each confirmed queued through the status before the next starts), then released by
 * one checkin; each hands the worker on at once. */
typedef struct oarg {
    fdn_pool_t *p;
    int id;
    _Atomic int *next_slot;
    int *slots;
} oarg_t;

static void *ordered(void *arg)
{
    oarg_t *a = arg;
    fdn_pool_worker_t *w = NULL;
    assert_int_equal(fdn_pool_checkout(a->p, &w, FDN_POOL_WAIT_FOREVER, NULL), 0);
    a->slots[atomic_fetch_add(a->next_slot, 1)] = a->id;
    assert_int_equal(fdn_pool_checkin(a->p, w), 0);
    return NULL;
}

static void waiters_in_order_rounds(void **state)
{
    (void)state;
    enum { N = 6, ROUNDS = 40 };
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = 1;
    o.max_overflow = 0;
    o.create = s_create;
    o.destroy = s_destroy;
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    for (int r = 0; r < ROUNDS; r++) {
        fdn_pool_worker_t *held = NULL;
        assert_int_equal(fdn_pool_checkout(p, &held, 0, NULL), 0);
        pthread_t t[N];
        oarg_t a[N];
        _Atomic int next = 0;
        int slots[N] = {0};
        for (int i = 0; i < N; i++) {
            a[i] = (oarg_t){.p = p, .id = i + 1, .next_slot = &next, .slots = slots};
            assert_int_equal(pthread_create(&t[i], NULL, ordered, &a[i]), 0);
            for (;;) {
                fdn_pool_status_t s;
                assert_int_equal(fdn_pool_status(p, &s), 0);
                if (s.waiters == i + 1)
                    break;
                sched_yield();
            }
        }
        assert_int_equal(fdn_pool_checkin(p, held), 0);
        for (int i = 0; i < N; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < N; i++)
            assert_int_equal(slots[i], i + 1);
    }
    fdn_pool_status_t s;
    assert_int_equal(fdn_pool_status(p, &s), 0);
    assert_int_equal((long)s.checkouts, (long)ROUNDS * (N + 1));
    assert_int_equal(s.created, 1);
    fdn_pool_destroy(p);
}

/* A pool whose last reference is dropped while leases are out is freed by whichever checkin
 * comes last, while the others may still be finishing (ASan/TSan catch a use after free). */
typedef struct orphan_arg {
    fdn_pool_t *p;
    fdn_pool_worker_t *w;
    bool broken;
    pthread_barrier_t *bar;
} orphan_arg_t;

static void *orphan_checkin(void *arg)
{
    orphan_arg_t *a = arg;
    pthread_barrier_wait(a->bar);
    if (a->broken)
        assert_int_equal(fdn_pool_checkin_broken(a->p, a->w), 0);
    else
        assert_int_equal(fdn_pool_checkin(a->p, a->w), 0);
    return NULL;
}

static void orphaned_pool_freed_by_last_checkin(void **state)
{
    (void)state;
    enum { N = 4, ROUNDS = 200 };
    for (int r = 0; r < ROUNDS; r++) {
        fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
        o.size = 2;
        o.max_overflow = 2;
        o.create = s_create;
        o.destroy = s_destroy;
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        orphan_arg_t a[N];
        pthread_t t[N];
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, N + 1);
        for (int i = 0; i < N; i++) {
            a[i] = (orphan_arg_t){.p = p, .broken = (i + r) % 3 == 0, .bar = &bar};
            assert_int_equal(fdn_pool_checkout(p, &a[i].w, 0, NULL), 0);
            assert_int_equal(pthread_create(&t[i], NULL, orphan_checkin, &a[i]), 0);
        }
        pthread_barrier_wait(&bar);
        fdn_pool_destroy(p); /* races with the checkins */
        for (int i = 0; i < N; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&bar);
        assert_int_equal(atomic_load(&g_live), 0);
    }
}

/* fdn_pool_release_owner on one thread against the holder's own checkin of the same owned
 * lease on another, the two let go together and then apart by a sliding number of spins, round
 * after round: exactly one of the two gives the lease back (the other is refused or finds
 * nothing), the reset callback never runs twice at once on the connection, and the counts stay
 * those of a one-worker pool. With thread caches (the checkin's lock-free park) and without (a
 * FIFO pool with a reset callback). */
typedef struct race_arg {
    fdn_pool_t *p;
    long rounds;
    _Atomic long go, done; /* the round released; the round release_owner finished */
    _Atomic int released;  /* release_owner's count in the last round */
    _Atomic bool stop;     /* the test ends early (failed) */
} race_arg_t;

static _Atomic int g_in_reset, g_reset_overlap;

static int s_reset(void *conn, void *user)
{
    (void)conn;
    (void)user;
    if (atomic_fetch_add(&g_in_reset, 1) != 0)
        atomic_fetch_add(&g_reset_overlap, 1);
    for (volatile int i = 0; i < 64; i++) {
    }
    atomic_fetch_sub(&g_in_reset, 1);
    return 0;
}

static void spin(long n)
{
    for (volatile long i = 0; i < n; i++) {
    }
}

/* Run the calling thread on CPU `cpu` alone (*old: its affinity before, when not NULL):
 * the race needs the two threads on two CPUs at once, which a loaded machine's scheduler
 * otherwise rarely gives two threads that hand rounds to each other. False when it cannot
 * (one CPU: the test still runs, it just seldom meets the race). */
static bool pin(int cpu, cpu_set_t *old)
{
    if (old != NULL && pthread_getaffinity_np(pthread_self(), sizeof(*old), old) != 0)
        return false;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static void *releaser(void *arg)
{
    race_arg_t *a = arg;
    (void)pin(1, NULL);
    for (long r = 1; r <= a->rounds; r++) {
        for (long n = 1; atomic_load(&a->go) != r; n++) {
            if (atomic_load(&a->stop))
                return NULL;
            if (n % 1024 == 0) /* poll hot (the race needs it), yield now and then */
                sched_yield();
        }
        atomic_store(&a->released, fdn_pool_release_owner(a->p, 7, false));
        atomic_store(&a->done, r);
    }
    return NULL;
}

static void owner_race_with(fdn_pool_strategy_t strat, bool reset)
{
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = 1;
    o.max_overflow = 0;
    o.strategy = strat;
    o.create = s_create;
    o.destroy = s_destroy;
    if (reset)
        o.reset = s_reset;
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    /* a tenth of the iterations, at least 100: each round is two hand-offs between the
     * threads, slow under TSan (the old code failed within 10 rounds with thread caches, and
     * in about one round in four with the reset callback) */
    long rounds = iters_from_env() / 10;
    race_arg_t a = {.p = p, .rounds = rounds < 100 ? 100 : rounds};
    pthread_t t;
    cpu_set_t oldset;
    bool pinned = pin(0, &oldset);
    assert_int_equal(pthread_create(&t, NULL, releaser, &a), 0);
    long by_holder = 0, by_release = 0, both = 0, neither = 0;
    for (long r = 1; r <= a.rounds; r++) {
        fdn_pool_worker_t *h;
        int rc = fdn_pool_checkout_owned(p, &h, 0, 7, NULL);
        if (rc != 0) { /* the worker was lent twice or lost: stop the releaser and fail */
            atomic_store(&a.stop, true);
            pthread_join(t, NULL);
            if (pinned)
                (void)pthread_setaffinity_np(pthread_self(), sizeof(oldset), &oldset);
            assert_int_equal(rc, 0);
        }
        atomic_store(&a.go, r);
        spin(r % 512); /* sweep the holder's start across release_owner's */
        int mine = fdn_pool_checkin(p, h);
        for (long n = 1; atomic_load(&a.done) != r; n++)
            if (n % 1024 == 0)
                sched_yield();
        int theirs = atomic_load(&a.released);
        if (mine == 0 && theirs == 1)
            both++;
        else if (mine == 0 && theirs == 0)
            by_holder++;
        else if (mine == FDN_EINVAL && theirs == 1)
            by_release++;
        else
            neither++;
        if (both != 0 || neither != 0)
            break;
    }
    atomic_store(&a.stop, true);
    pthread_join(t, NULL);
    if (pinned)
        (void)pthread_setaffinity_np(pthread_self(), sizeof(oldset), &oldset);
    assert_int_equal(both, 0);
    assert_int_equal(neither, 0);
    assert_int_equal(by_holder + by_release, a.rounds);
    assert_int_equal(atomic_load(&g_reset_overlap), 0);
    fdn_pool_status_t s;
    assert_int_equal(fdn_pool_status(p, &s), 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.available, 1);
    assert_int_equal((long)s.checkouts, a.rounds);
    fdn_pool_worker_t *x, *y;
    assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkout(p, &y, 0, NULL), FDN_EBUSY);
    assert_int_equal(fdn_pool_checkin(p, x), 0);
    fdn_pool_destroy(p);
    assert_int_equal(atomic_load(&g_live), 0);
}

static void owner_release_races_cached_checkin(void **state)
{
    (void)state;
    owner_race_with(FDN_POOL_LIFO, false);
}

static void owner_release_races_checkin_with_reset(void **state)
{
    (void)state;
    owner_race_with(FDN_POOL_FIFO, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lifo_contended),
        cmocka_unit_test(fifo_contended),
        cmocka_unit_test(wide_pool),
        cmocka_unit_test(reclaim_under_load),
        cmocka_unit_test(cached_contended),
        cmocka_unit_test(shutdown_races_thread_caches),
        cmocka_unit_test(waiters_in_order_rounds),
        cmocka_unit_test(orphaned_pool_freed_by_last_checkin),
        cmocka_unit_test(owner_release_races_cached_checkin),
        cmocka_unit_test(owner_release_races_checkin_with_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
