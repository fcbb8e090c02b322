/* Limiter and breaker under concurrency: admitted counts never exceed the algorithm's bound;
 * breaker state is consistent under concurrent calls. Runs under TSan. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/breaker.h>
#include <fdn/limiter.h>
#include <fdn/protect.h>

#include "infra/limiter_int.h"
#include "stress.h"
#include "threads.h"

#define MS       1000000LL
#define NTHREADS 4

static long iters(void)
{
    return test_stress_iters(3000, 0);
}

typedef struct lctx {
    fdn_limiter_t *l;
    fdn_clock_t *clk;
    fdn_limit_rule_t rule;
    test_threads_t threads;
    _Atomic long admitted;
    _Atomic int done;
    long n;
} lctx_t;

static void *hammer(void *arg)
{
    lctx_t *c = arg;
    long ok = 0;
    test_threads_gate(&c->threads);
    for (long i = 0; i < c->n; i++)
        if (fdn_limiter_check(c->l, "hot", 3, &c->rule, 1, 0, NULL) == 0)
            ok++;
    atomic_fetch_add_explicit(&c->admitted, ok, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->done, 1, memory_order_release);
    return NULL;
}

static void *ticker(void *arg)
{
    lctx_t *c = arg;
    test_threads_gate(&c->threads);
    while (atomic_load_explicit(&c->done, memory_order_acquire) < NTHREADS)
        fdn_clock_advance(c->clk, 1 * MS);
    return NULL;
}

static long run_hammer(fdn_limit_algo_t algo, bool tick, int64_t *elapsed_ns)
{
    lctx_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fdn_clock_manual_create(&c.clk, 0, 1700000040000LL * MS), 0);
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.clock = c.clk;
    assert_int_equal(fdn_limiter_create(&c.l, &o), 0);
    c.rule = (fdn_limit_rule_t){algo, 200, 100, 50};
    c.n = iters();
    test_threads_init(&c.threads, NTHREADS + (tick ? 1 : 0));
    test_threads_start_n(&c.threads, NTHREADS, hammer, &c, 0);
    if (tick)
        test_threads_start(&c.threads, ticker, &c);
    test_threads_join(&c.threads);
    *elapsed_ns = fdn_clock_mono_ns(c.clk);
    long a = atomic_load(&c.admitted);
    fdn_limiter_destroy(c.l);
    fdn_clock_destroy(c.clk);
    return a;
}

/* Frozen time: exactly the bound is admitted. */
static void frozen_clock_exact(void **state)
{
    (void)state;
    int64_t el;
    assert_int_equal(run_hammer(FDN_LIMIT_FIXED_WINDOW, false, &el), 200);
    assert_int_equal(run_hammer(FDN_LIMIT_TOKEN_BUCKET, false, &el), 50);
    assert_int_equal(run_hammer(FDN_LIMIT_GCRA, false, &el), 50);
    assert_int_equal(run_hammer(FDN_LIMIT_SLIDING_WINDOW, false, &el), 200);
}

/* Moving time: admitted <= the algorithm's bound over the elapsed time. */
static void moving_clock_bounded(void **state)
{
    (void)state;
    const int64_t P = 100 * MS, L = 200, B = 50;
    int64_t el;
    long a = run_hammer(FDN_LIMIT_FIXED_WINDOW, true, &el);
    long windows = (long)(el / P) + 1; /* wall starts on a window boundary */
    assert_true(a <= L * windows);
    a = run_hammer(FDN_LIMIT_TOKEN_BUCKET, true, &el);
    assert_true(a <= B + (L * el + P - 1) / P);
    a = run_hammer(FDN_LIMIT_GCRA, true, &el);
    assert_true(a <= B + (L * el + P - 1) / P);
    a = run_hammer(FDN_LIMIT_SLIDING_WINDOW, true, &el);
    assert_true(a <= L * ((long)(el / P) + 1));
}

/* ---- breaker ------------------------------------------------------------------------- */

typedef struct bctx {
    fdn_breaker_t *b;
    test_threads_t threads;
    int rc_fn;
    int calls;
    _Atomic long ran, rejected, other;
} bctx_t;

static int bfn(void *arg)
{
    bctx_t *c = arg;
    atomic_fetch_add_explicit(&c->ran, 1, memory_order_relaxed);
    return c->rc_fn;
}

static void *bworker(void *arg)
{
    bctx_t *c = arg;
    test_threads_gate(&c->threads);
    for (int i = 0; i < c->calls; i++) {
        int rc = fdn_breaker_call(c->b, bfn, c, NULL);
        if (rc == FDN_ECIRCUIT_OPEN)
            atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
        else if (rc != c->rc_fn)
            atomic_fetch_add_explicit(&c->other, 1, memory_order_relaxed);
    }
    return NULL;
}

static void run_breaker(bctx_t *c)
{
    test_threads_init(&c->threads, NTHREADS);
    test_threads_start_n(&c->threads, NTHREADS, bworker, c, 0);
    test_threads_join(&c->threads);
}

static void breaker_concurrent(void **state)
{
    (void)state;
    fdn_clock_t *clk;
    fdn_clock_manual_create(&clk, 0, 0);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 6;
    o.recovery_time_ms = 1000;
    o.clock = clk;
    bctx_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fdn_breaker_create(&c.b, "s", &o), 0);
    /* concurrent failures: every call errors, the breaker ends open */
    c.rc_fn = FDN_EIO;
    c.calls = 10;
    run_breaker(&c);
    assert_int_equal(fdn_breaker_state(c.b), FDN_BREAKER_OPEN);
    assert_int_equal(atomic_load(&c.other), 0);
    assert_int_equal(atomic_load(&c.ran) + atomic_load(&c.rejected), NTHREADS * 10);
    assert_true(atomic_load(&c.ran) >= 6);
    /* half-open under contention: exactly one probe gets in */
    fdn_clock_advance(clk, 1000 * MS);
    atomic_store(&c.ran, 0);
    atomic_store(&c.rejected, 0);
    c.rc_fn = 0;
    c.calls = 1;
    fdn_breaker_permit_t p;
    assert_int_equal(fdn_breaker_acquire(c.b, &p), 0); /* hold the probe */
    run_breaker(&c);
    assert_int_equal(atomic_load(&c.ran), 0);
    assert_int_equal(atomic_load(&c.rejected), NTHREADS);
    fdn_breaker_record(c.b, &p, 0);
    assert_int_equal(fdn_breaker_state(c.b), FDN_BREAKER_CLOSED);
    /* many successes: stays closed, nothing rejected */
    atomic_store(&c.ran, 0);
    atomic_store(&c.rejected, 0);
    c.calls = (int)iters();
    run_breaker(&c);
    assert_int_equal(fdn_breaker_state(c.b), FDN_BREAKER_CLOSED);
    assert_int_equal(atomic_load(&c.rejected), 0);
    assert_int_equal(atomic_load(&c.ran), (long)NTHREADS * c.calls);
    /* mixed outcomes with state changes racing: no probe slot leaks */
    fdn_breaker_reset(c.b);
    fdn_breaker_destroy(c.b);
    fdn_clock_destroy(clk);
}

/* Mixed outcomes while a ticker moves time through open -> half-open -> closed cycles: every
 * permit is recorded or released, so no probe slot may leak. */
typedef struct mctx {
    fdn_breaker_t *b;
    fdn_clock_t *clk;
    test_threads_t threads;
    _Atomic int done;
    int n;
} mctx_t;

static void *mworker(void *arg)
{
    mctx_t *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    test_threads_gate(&c->threads);
    for (int i = 0; i < c->n; i++) {
        fdn_breaker_permit_t p;
        if (fdn_breaker_acquire(c->b, &p) != 0)
            continue;
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 4) {
        case 0:
            fdn_breaker_record(c->b, &p, -1);
            break;
        case 1:
            fdn_breaker_release(c->b, &p);
            break;
        default:
            fdn_breaker_record(c->b, &p, 0);
            break;
        }
    }
    atomic_fetch_add_explicit(&c->done, 1, memory_order_release);
    return NULL;
}

static void *mticker(void *arg)
{
    mctx_t *c = arg;
    test_threads_gate(&c->threads);
    while (atomic_load_explicit(&c->done, memory_order_acquire) < NTHREADS)
        fdn_clock_advance(c->clk, 1 * MS);
    return NULL;
}

static void breaker_mixed_no_leaks(void **state)
{
    (void)state;
    mctx_t c;
    memset(&c, 0, sizeof(c));
    fdn_clock_manual_create(&c.clk, 0, 0);
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_threshold = 3;
    o.recovery_time_ms = 5;
    o.half_open_max_calls = 2;
    o.probe_timeout_ms = 1000000; /* only real reports free slots */
    o.clock = c.clk;
    assert_int_equal(fdn_breaker_create(&c.b, "mixed", &o), 0);
    c.n = (int)iters();
    test_threads_init(&c.threads, NTHREADS + 1);
    test_threads_start_n(&c.threads, NTHREADS, mworker, &c, 0);
    test_threads_start(&c.threads, mticker, &c);
    test_threads_join(&c.threads);
    fdn_breaker_status_t s;
    assert_int_equal(fdn_breaker_status(c.b, &s), 0);
    assert_int_equal(s.probes_in_flight, 0);
    assert_true(s.times_opened >= 1);
    /* it still works: reach half-open and close with a probe */
    fdn_clock_advance(c.clk, 10 * MS);
    fdn_breaker_permit_t p;
    if (fdn_breaker_state(c.b) != FDN_BREAKER_CLOSED) {
        fdn_breaker_force_open(c.b);
        fdn_breaker_reset(c.b);
    }
    assert_int_equal(fdn_breaker_acquire(c.b, &p), 0);
    fdn_breaker_record(c.b, &p, 0);
    assert_int_equal(fdn_breaker_state(c.b), FDN_BREAKER_CLOSED);
    fdn_breaker_destroy(c.b);
    fdn_clock_destroy(c.clk);
}

/* ---- protected execution through a size-1 pool ---------------------------------------- */

typedef struct pctx {
    fdn_protect_t *p;
    test_threads_t threads;
    _Atomic int holders;
    _Atomic long bad, ok;
    int n;
} pctx_t;

static int pfn(void *conn, void *arg)
{
    pctx_t *c = arg;
    (void)conn;
    if (atomic_fetch_add_explicit(&c->holders, 1, memory_order_acq_rel) != 0)
        atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->holders, 1, memory_order_acq_rel);
    return 0;
}

static void *pworker(void *arg)
{
    pctx_t *c = arg;
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.timeout_ms = 60000;
    test_threads_gate(&c->threads);
    for (int i = 0; i < c->n; i++)
        if (fdn_execute_protected(c->p, "k", &co, pfn, c, NULL, NULL) == 0)
            atomic_fetch_add_explicit(&c->ok, 1, memory_order_relaxed);
    return NULL;
}

static int mkconn(void **conn, void *user)
{
    (void)user;
    *conn = (void *)1;
    return 0;
}

static void protect_concurrent(void **state)
{
    (void)state;
    fdn_breakers_t *brk;
    fdn_limiter_t *lim;
    fdn_pools_t *pools;
    assert_int_equal(fdn_breakers_create(&brk, NULL), 0);
    assert_int_equal(fdn_limiter_create(&lim, NULL), 0);
    assert_int_equal(fdn_pools_create(&pools, NULL), 0);
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 1;
    po.max_overflow = 0;
    po.create = mkconn;
    assert_int_equal(fdn_pools_start(pools, "db", &po, NULL, NULL), 0);
    fdn_limit_rule_t r = {FDN_LIMIT_TOKEN_BUCKET, 1000000000, 1000, 0};
    fdn_limiter_set_rule(lim, "big", &r);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.breakers = brk;
    o.limiter = lim;
    o.pools = pools;
    pctx_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fdn_protect_create(&c.p, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "b";
    cfg.limiter_rule = "big";
    cfg.pool = "db";
    assert_int_equal(fdn_protect_configure(c.p, "k", &cfg, NULL), 0);
    c.n = (int)iters() / 4;
    test_threads_init(&c.threads, NTHREADS);
    test_threads_start_n(&c.threads, NTHREADS, pworker, &c, 0);
    /* reconfigure while calls run: entries are refcounted */
    for (int i = 0; i < 50; i++)
        fdn_protect_configure(c.p, "k", &cfg, NULL);
    test_threads_join(&c.threads);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_int_equal(atomic_load(&c.ok), (long)NTHREADS * c.n);
    fdn_protect_destroy(c.p);
    fdn_pools_destroy(pools);
    fdn_limiter_destroy(lim);
    fdn_breakers_destroy(brk);
}

/* A flood of distinct keys from several threads while another thread hammers a victim key:
 * with the default overflow policy the victim never gets more than its limit (its cell is
 * never evicted), the store never exceeds max_keys, and refusals are counted. */
typedef struct fctx {
    fdn_limiter_t *l;
    test_threads_t threads;
    _Atomic long victim_ok;
    _Atomic long refused;
    _Atomic int flooding;
    _Atomic long next; /* flood keys issued */
    long n;
} fctx_t;

static const fdn_limit_rule_t flood_rule = {FDN_LIMIT_FIXED_WINDOW, 50, 3600000, 0};

static void *flooder(void *arg)
{
    fctx_t *c = arg;
    char key[48];
    test_threads_gate(&c->threads);
    while (atomic_load(&c->flooding) > 0) {
        long k = atomic_fetch_add(&c->next, 1);
        int len = snprintf(key, sizeof(key), "flood-%ld", k);
        int rc = fdn_limiter_check(c->l, key, (size_t)len, &flood_rule, 1, 0, NULL);
        if (rc == FDN_ELIMITER)
            atomic_fetch_add(&c->refused, 1);
        else
            assert_int_equal(rc, 0);
    }
    return NULL;
}

static void *victim(void *arg)
{
    fctx_t *c = arg;
    long last = 0;
    test_threads_gate(&c->threads);
    for (long v = 0; v < c->n; v++) {
        /* let enough new keys arrive between two checks that, with LRU eviction, the
         * victim's cell would be pushed out of its shard */
        while (atomic_load(&c->next) < last + 512)
            sched_yield();
        last = atomic_load(&c->next);
        int rc = fdn_limiter_check(c->l, "victim", 6, &flood_rule, 1, 0, NULL);
        assert_true(rc == 0 || rc == FDN_ERATE_LIMITED);
        if (rc == 0)
            atomic_fetch_add(&c->victim_ok, 1);
    }
    atomic_store(&c->flooding, 0);
    return NULL;
}

static void flood_keeps_victim_limited(void **state)
{
    (void)state;
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 0, 1700000040000LL * MS), 0);
    fctx_t c;
    memset(&c, 0, sizeof(c));
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.clock = clk;
    o.shards = 4;
    o.max_keys = 256;
    assert_int_equal(fdn_limiter_create(&c.l, &o), 0);
    /* the victim's cell exists before the flood */
    assert_int_equal(fdn_limiter_check(c.l, "victim", 6, &flood_rule, 1, 0, NULL), 0);
    atomic_store(&c.victim_ok, 1);
    c.n = 2 * flood_rule.limit + 20; /* victim checks, each after >= 512 new flood keys */
    atomic_store(&c.flooding, 1);
    test_threads_init(&c.threads, 3);
    test_threads_start_n(&c.threads, 2, flooder, &c, 0);
    test_threads_start(&c.threads, victim, &c);
    test_threads_join(&c.threads);
    assert_int_equal(atomic_load(&c.victim_ok), flood_rule.limit);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(c.l, &st), 0);
    assert_true(st.keys <= 256);
    assert_int_equal(st.evictions, 0);
    assert_int_equal((long)st.overflow_denied, atomic_load(&c.refused));
    assert_true(st.overflow_denied > 0);
    fdn_limiter_destroy(c.l);
    fdn_clock_destroy(clk);
}

/* ---- cached named-rule reads race with rule updates ------------------------------------ */

/* Two rules the writer swaps in and out of slot "r"; a reader of a torn mix of both would
 * report a limit neither has (fixed window with limit 5000, or burst 7000 with algo fixed). */
static const fdn_limit_rule_t RULE_A = {FDN_LIMIT_FIXED_WINDOW, 1000000, 60000, 0};
static const fdn_limit_rule_t RULE_B = {FDN_LIMIT_TOKEN_BUCKET, 5000, 60000, 7000};

typedef struct rctx {
    fdn_limiter_t *l;
    fdn__limiter_rule_cache_t cache;
    test_threads_t threads;
    _Atomic int done;
    _Atomic long bad;
    long n;
} rctx_t;

static void *rule_reader(void *arg)
{
    rctx_t *c = arg;
    test_threads_gate(&c->threads);
    for (long i = 0; i < c->n; i++) {
        fdn_limit_result_t res;
        int rc = fdn__limiter_check_named_cached(c->l, "r", "id", 1, &res, &c->cache, NULL,
                                                 FDN__NOW_UNSET);
        if (rc == FDN_ENOENT)
            continue; /* between the writer's remove and set */
        if ((rc != 0 && rc != FDN_ERATE_LIMITED) || (res.limit != 1000000 && res.limit != 7000))
            atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *rule_writer(void *arg)
{
    rctx_t *c = arg;
    test_threads_gate(&c->threads);
    for (long i = 0; i < c->n; i++) {
        /* moves "r" between slots too: removing "pad" moves the last rule into its slot */
        fdn_limiter_set_rule(c->l, "pad", &RULE_A);
        fdn_limiter_set_rule(c->l, "r", (i & 1) ? &RULE_B : &RULE_A);
        if (i % 3 == 0)
            fdn_limiter_remove_rule(c->l, "pad");
        if (i % 5 == 0) {
            fdn_limiter_remove_rule(c->l, "r");
            fdn_limiter_set_rule(c->l, "r", &RULE_A);
        }
    }
    return NULL;
}

static void cached_rule_vs_updates(void **state)
{
    (void)state;
    rctx_t c;
    memset(&c, 0, sizeof(c));
    fdn__limiter_rule_cache_init(&c.cache);
    c.n = iters();
    assert_int_equal(fdn_limiter_create(&c.l, NULL), 0);
    assert_int_equal(fdn_limiter_set_rule(c.l, "r", &RULE_A), 0);
    test_threads_init(&c.threads, 3);
    test_threads_start_n(&c.threads, 2, rule_reader, &c, 0);
    test_threads_start(&c.threads, rule_writer, &c);
    test_threads_join(&c.threads);
    assert_int_equal(atomic_load(&c.bad), 0);
    /* quiescent: the cached path sees the final rule */
    fdn_limit_rule_t last;
    assert_int_equal(fdn_limiter_set_rule(c.l, "r", &RULE_B), 0);
    assert_int_equal(fdn_limiter_get_rule(c.l, "r", &last), 0);
    fdn_limit_result_t res;
    assert_int_equal(
        fdn__limiter_check_named_cached(c.l, "r", "q", 1, &res, &c.cache, NULL, FDN__NOW_UNSET), 0);
    assert_int_equal(res.limit, 7000);
    fdn_limiter_destroy(c.l);
}

/* ---- cached pool handles race with pool stop / restart --------------------------------- */

/* The restarter and the callers are coupled by counters the test owns, not by timing:
 * - the restarter stops the pool only after a call has succeeded since its last restart
 *   (or once every caller is done), so calls run on every generation of the pool whatever
 *   the scheduler does;
 * - a caller keeps calling past its n calls until some call succeeded on a restarted pool,
 *   which must happen: the restarter leaves the pool started after its last round.
 * Both loops are bounded in work: n calls per caller, n / 8 restarts. */
typedef struct pcctx {
    fdn_pools_t *pools;
    fdn_protect_t *p;
    test_threads_t threads;
    _Atomic long bad;
    _Atomic long ran;               /* successful calls */
    _Atomic long ran_after_restart; /* successful calls begun after a restart */
    _Atomic long restarts;          /* completed stop + start rounds */
    _Atomic int callers_done;
    long n;
} pcctx_t;

static int pc_create(void **conn, void *user)
{
    (void)user;
    *conn = malloc(8); /* a real allocation: ASan sees a use after the pool freed it */
    return *conn ? 0 : FDN_ENOMEM;
}

static void pc_destroy(void *conn, void *user)
{
    (void)user;
    free(conn);
}

static int pc_fn(void *conn, void *arg)
{
    (void)arg;
    *(volatile char *)conn = 1;
    return 0;
}

static int pc_start(fdn_pools_t *m)
{
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 4;
    po.max_overflow = 0;
    po.create = pc_create;
    po.destroy = pc_destroy;
    return fdn_pools_start(m, "db", &po, NULL, NULL);
}

static void *pc_caller(void *arg)
{
    pcctx_t *c = arg;
    test_threads_gate(&c->threads);
    for (long i = 0;
         i < c->n || atomic_load_explicit(&c->ran_after_restart, memory_order_acquire) == 0; i++) {
        bool restarted = atomic_load_explicit(&c->restarts, memory_order_acquire) > 0;
        int rc = fdn_execute_protected(c->p, "k", NULL, pc_fn, NULL, NULL, NULL);
        if (rc == 0) {
            atomic_fetch_add_explicit(&c->ran, 1, memory_order_release);
            if (restarted)
                atomic_fetch_add_explicit(&c->ran_after_restart, 1, memory_order_release);
        } else if (rc != FDN_ENOENT && rc != FDN_ESHUTDOWN) {
            atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
        }
    }
    atomic_fetch_add_explicit(&c->callers_done, 1, memory_order_release);
    return NULL;
}

static void *pc_restarter(void *arg)
{
    pcctx_t *c = arg;
    test_threads_gate(&c->threads);
    long seen = 0;
    for (long i = 0; i < c->n / 8; i++) {
        /* Latch: a call has run on this generation of the pool, or nobody calls any more. */
        while (atomic_load_explicit(&c->ran, memory_order_acquire) == seen &&
               atomic_load_explicit(&c->callers_done, memory_order_acquire) < 2)
            sched_yield();
        seen = atomic_load_explicit(&c->ran, memory_order_acquire);
        fdn_pools_stop(c->pools, "db");
        if (pc_start(c->pools) != 0)
            atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->restarts, 1, memory_order_release);
    }
    return NULL;
}

static void cached_pool_vs_restarts(void **state)
{
    (void)state;
    pcctx_t c;
    memset(&c, 0, sizeof(c));
    c.n = iters();
    assert_int_equal(fdn_pools_create(&c.pools, NULL), 0);
    assert_int_equal(pc_start(c.pools), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.pools = c.pools;
    assert_int_equal(fdn_protect_create(&c.p, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.pool = "db";
    assert_int_equal(fdn_protect_configure(c.p, "k", &cfg, NULL), 0);
    test_threads_init(&c.threads, 3);
    test_threads_start_n(&c.threads, 2, pc_caller, &c, 0);
    test_threads_start(&c.threads, pc_restarter, &c);
    test_threads_join(&c.threads);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_int_equal(atomic_load(&c.restarts), c.n / 8);
    /* Guaranteed by the latch and the callers' exit condition, not by luck. */
    assert_true(atomic_load(&c.ran) >= 1);
    assert_true(atomic_load(&c.ran_after_restart) >= 1);
    /* quiescent: the latest pool serves the call */
    assert_int_equal(fdn_execute_protected(c.p, "k", NULL, pc_fn, NULL, NULL, NULL), 0);
    fdn_protect_destroy(c.p);
    fdn_pools_destroy(c.pools);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frozen_clock_exact),     cmocka_unit_test(moving_clock_bounded),
        cmocka_unit_test(breaker_concurrent),     cmocka_unit_test(breaker_mixed_no_leaks),
        cmocka_unit_test(protect_concurrent),     cmocka_unit_test(flood_keeps_victim_limited),
        cmocka_unit_test(cached_rule_vs_updates), cmocka_unit_test(cached_pool_vs_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
