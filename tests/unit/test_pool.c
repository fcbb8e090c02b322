/* Unit tests: connection pool and pool manager (reference §5.3, §11.8). All timing runs on a
 * manual clock; threads are synchronised through pool status and fdn_clock_waiters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/pool.h>
#include <fdn/telemetry.h>
#include "infra/pool_int.h"

#define MS 1000000LL

typedef struct conn {
    int id;
    bool dead;
} conn_t;

typedef struct ctx {
    _Atomic int next_id;
    _Atomic int live;
    _Atomic int destroyed;
    _Atomic int validations;
    _Atomic int resets;
    _Atomic int fail_create; /* fail the next N creates */
    bool validate_fails;
    bool reset_fails;
    _Atomic int leaks;
    int64_t leak_age;
    int leak_bt;
    _Atomic int in_reset, reset_overlap; /* reset calls running now; ones that overlapped */
    /* Run once inside the next validate / reset call (cleared first), with no pool lock held:
     * a test's way to make another call at that exact point. */
    void (*validate_hook)(struct ctx *c);
    void (*reset_hook)(struct ctx *c);
    fdn_pool_t *hook_pool;
    fdn_clock_t *hook_clk;
    fdn_pool_worker_t *hook_lease;
    int hook_rc;
} ctx_t;

static int c_create(void **out, void *user)
{
    ctx_t *c = user;
    if (atomic_load(&c->fail_create) > 0) {
        atomic_fetch_sub(&c->fail_create, 1);
        return FDN_ECONNREFUSED;
    }
    conn_t *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return FDN_ENOMEM;
    k->id = atomic_fetch_add(&c->next_id, 1) + 1;
    atomic_fetch_add(&c->live, 1);
    *out = k;
    return 0;
}

static void c_destroy(void *conn, void *user)
{
    ctx_t *c = user;
    atomic_fetch_sub(&c->live, 1);
    atomic_fetch_add(&c->destroyed, 1);
    free(conn);
}

static int c_validate(void *conn, void *user)
{
    ctx_t *c = user;
    atomic_fetch_add(&c->validations, 1);
    void (*hook)(ctx_t *) = c->validate_hook;
    c->validate_hook = NULL;
    if (hook != NULL)
        hook(c);
    return ((conn_t *)conn)->dead || c->validate_fails ? FDN_EIO : 0;
}

static int c_reset(void *conn, void *user)
{
    ctx_t *c = user;
    atomic_fetch_add(&c->resets, 1);
    if (atomic_fetch_add(&c->in_reset, 1) != 0)
        atomic_fetch_add(&c->reset_overlap, 1);
    void (*hook)(ctx_t *) = c->reset_hook;
    c->reset_hook = NULL;
    if (hook != NULL)
        hook(c);
    atomic_fetch_sub(&c->in_reset, 1);
    return ((conn_t *)conn)->dead || c->reset_fails ? FDN_EIO : 0;
}

static void c_leak(const fdn_pool_leak_t *leak, void *user)
{
    ctx_t *c = user;
    atomic_fetch_add(&c->leaks, 1);
    c->leak_age = leak->age_ns;
    c->leak_bt = leak->backtrace_len;
}

typedef struct fixture {
    ctx_t ctx;
    fdn_clock_t *clk;
    fdn_pool_t *pool;        /* destroyed by teardown */
    fdn_pool_worker_t *held; /* setup_one_held: the pool's only worker, lent */
    fdn_pools_t *pools;      /* setup_manager: destroyed by teardown */
} fixture_t;

static fdn_pool_opts_t base_opts(fixture_t *f, int size, int overflow)
{
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.name = "test";
    o.size = size;
    o.max_overflow = overflow;
    o.create = c_create;
    o.destroy = c_destroy;
    o.user = &f->ctx;
    o.clock = f->clk;
    return o;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fdn_clock_manual_create(&f->clk, 1000 * MS, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fdn_pools_destroy(f->pools);
    fdn_pool_destroy(f->pool);
    assert_int_equal(atomic_load(&f->ctx.live), 0);
    fdn_clock_destroy(f->clk);
    free(f);
    return 0;
}

static fdn_pool_t *mkpool(fixture_t *f, const fdn_pool_opts_t *o)
{
    assert_int_equal(fdn_pool_create(&f->pool, o, NULL), 0);
    return f->pool;
}

/* The fixture with f->pool a size-1 pool (no overflow, default options). */
static int setup_one(void **state)
{
    (void)setup(state);
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    (void)mkpool(f, &o);
    return 0;
}

/* setup_one with the only worker lent (f->held): the next checkout waits in line. The test
 * checks f->held in (or hands it on) before teardown. */
static int setup_one_held(void **state)
{
    (void)setup_one(state);
    fixture_t *f = *state;
    assert_int_equal(fdn_pool_checkout(f->pool, &f->held, 0, NULL), 0);
    return 0;
}

/* The fixture with f->pools a pool manager on the system clock. */
static int setup_manager(void **state)
{
    (void)setup(state);
    fixture_t *f = *state;
    assert_int_equal(fdn_pools_create(&f->pools, NULL), 0);
    return 0;
}

static conn_t *cw(fdn_pool_worker_t *w)
{
    return fdn_pool_worker_conn(w);
}

static fdn_pool_status_t st(fdn_pool_t *p)
{
    fdn_pool_status_t s;
    assert_int_equal(fdn_pool_status(p, &s), 0);
    return s;
}

/* Spin (yielding) until the pool has n waiters. */
static void wait_waiters(fdn_pool_t *p, int n)
{
    for (;;) {
        fdn_pool_status_t s = st(p);
        if (s.waiters == n)
            return;
        sched_yield();
    }
}

/* ---------------------------------------------------------------------------------------- */

static void create_validates_options(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_pool_opts_t o = base_opts(f, 2, 1);
    o.create = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_EINVAL);
    o = base_opts(f, -1, 1);
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "size must be a non-negative integer"));
    o = base_opts(f, 1, -1);
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "max_overflow"));
    o = base_opts(f, 0, 0);
    assert_int_equal(fdn_pool_create(&p, &o, NULL), FDN_EINVAL);
    o = base_opts(f, 1, 0);
    o.strategy = (fdn_pool_strategy_t)7;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), FDN_EINVAL);
    o = base_opts(f, 1, 0);
    o.name = "";
    assert_int_equal(fdn_pool_create(&p, &o, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_create(NULL, &o, NULL), FDN_EINVAL);
    assert_int_equal(atomic_load(&f->ctx.live), 0);

    /* Defaults are the config tree's: 10 / 5 / lifo. */
    o = base_opts(f, FDN_POOL_DEFAULT, FDN_POOL_DEFAULT);
    p = mkpool(f, &o);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.size, 10);
    assert_int_equal(s.max_overflow, 5);
    assert_int_equal(s.available, 10);
    assert_int_equal(s.workers, 10);
    assert_int_equal(atomic_load(&f->ctx.live), 10);
    assert_string_equal(fdn_pool_name(p), "test");
    fdn_pool_destroy(NULL);
}

/* size + max_overflow is the pool's capacity, an int: a pair whose sum passes INT_MAX is
 * refused. (It was accepted, the capacity wrapped negative, and no checkout ever made a worker:
 * a checkout that could not wait got FDN_EBUSY from an empty pool.) */
static void capacity_past_int_max_is_refused(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_pool_opts_t o = base_opts(f, INT_MAX, 1);
    o.prefill = false;
    int rc = fdn_pool_create(&p, &o, &err);
    if (rc == 0) { /* show what such a pool did before failing */
        fdn_pool_worker_t *w = NULL;
        int co = fdn_pool_checkout(p, &w, 0, NULL);
        if (co == 0)
            fdn_pool_checkin(p, w);
        fdn_pool_destroy(p);
        fail_msg("size INT_MAX + max_overflow 1 accepted; a checkout then returned %d", co);
    }
    assert_int_equal(rc, FDN_EINVAL);
    assert_non_null(strstr(err.message, "size + max_overflow"));
    o = base_opts(f, 1, INT_MAX);
    o.prefill = false;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), FDN_EINVAL);

    /* the manager's defaults too */
    fdn_pools_t *m = NULL;
    assert_int_equal(fdn_pools_create(&m, NULL), 0);
    assert_int_equal(fdn_pools_set_defaults(m, INT_MAX, 1, FDN_POOL_LIFO), FDN_EINVAL);
    assert_int_equal(fdn_pools_set_defaults(m, INT_MAX - 1, 1, FDN_POOL_LIFO), 0);
    fdn_pools_destroy(m);
    fdn_pools_opts_t mo = FDN_POOLS_OPTS_INIT;
    mo.default_size = INT_MAX;
    mo.default_max_overflow = 1;
    assert_int_equal(fdn_pools_create(&m, &mo), FDN_EINVAL);

    /* the largest capacity works */
    o = base_opts(f, INT_MAX - 1, 1);
    o.prefill = false;
    p = mkpool(f, &o);
    fdn_pool_worker_t *w = NULL;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(st(p).state, FDN_POOL_READY);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

static void strategy_names(void **state)
{
    (void)state;
    fdn_pool_strategy_t s;
    assert_int_equal(fdn_pool_strategy_parse("fifo", 4, &s), 0);
    assert_int_equal(s, FDN_POOL_FIFO);
    assert_int_equal(fdn_pool_strategy_parse("lifo", 4, &s), 0);
    assert_int_equal(s, FDN_POOL_LIFO);
    assert_int_equal(fdn_pool_strategy_parse("lif", 3, &s), FDN_EINVAL);
    assert_string_equal(fdn_pool_strategy_name(FDN_POOL_FIFO), "fifo");
    assert_string_equal(fdn_pool_state_name(FDN_POOL_FULL), "full");
}

static void order_case(fixture_t *f, fdn_pool_strategy_t strat, int expect_first)
{
    fdn_pool_opts_t o = base_opts(f, 3, 0);
    o.strategy = strat;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_pool_checkout(p, &w[i], 0, NULL), 0);
    /* Return in order a, b, c. */
    int ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = cw(w[i])->id;
        assert_int_equal(fdn_pool_checkin(p, w[i]), 0);
    }
    fdn_pool_worker_t *x;
    assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), 0);
    assert_int_equal(cw(x)->id, ids[expect_first]);
    assert_int_equal(fdn_pool_checkin(p, x), 0);
    /* Double checkin is refused. */
    assert_int_equal(fdn_pool_checkin(p, x), FDN_EINVAL);
}

static void lifo_reuses_last_returned(void **state)
{
    order_case(*state, FDN_POOL_LIFO, 2);
}

static void fifo_reuses_first_returned(void **state)
{
    order_case(*state, FDN_POOL_FIFO, 0);
}

static void overflow_created_then_destroyed_on_checkin(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 2);
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_pool_checkout(p, &w[i], 0, NULL), 0);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.workers, 3);
    assert_int_equal(s.overflow, 2);
    assert_int_equal(s.in_use, 3);
    assert_int_equal(s.available, 0);
    assert_int_equal(s.state, FDN_POOL_FULL);

    fdn_pool_worker_t *x = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    /* not waiting on a full pool: poolboy's `full`, not a timeout */
    assert_int_equal(fdn_pool_checkout(p, &x, 0, &err), FDN_EBUSY);
    assert_int_equal(err.code, FDN_EBUSY);
    assert_non_null(strstr(err.message, "full: 3 of 3"));
    assert_non_null(strstr(err.context, "in_use=3"));
    assert_int_equal(st(p).full, 1);
    assert_int_equal(st(p).timeouts, 0);

    assert_int_equal(fdn_pool_checkin(p, w[2]), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1);
    s = st(p);
    assert_int_equal(s.overflow, 1);
    assert_int_equal(s.state, FDN_POOL_OVERFLOW);
    assert_int_equal(fdn_pool_checkin(p, w[1]), 0);
    assert_int_equal(fdn_pool_checkin(p, w[0]), 0);
    s = st(p);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.available, 1);
    assert_int_equal(s.overflow, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.state, FDN_POOL_READY);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 2);
}

typedef struct waiter_arg {
    fdn_pool_t *p;
    int64_t timeout_ms;
    int id;
    int rc;
    fdn_error_t err;
    _Atomic int done;
    _Atomic int *order;
    int *slots;
    bool checkin;
    fdn_pool_worker_t *got; /* the lease, when kept (checkin false) */
} waiter_arg_t;

static void *waiter_main(void *arg)
{
    waiter_arg_t *a = arg;
    fdn_pool_worker_t *w = NULL;
    a->rc = fdn_pool_checkout(a->p, &w, a->timeout_ms, &a->err);
    if (a->rc == 0) {
        if (a->order != NULL)
            a->slots[atomic_fetch_add(a->order, 1)] = a->id;
        if (a->checkin)
            fdn_pool_checkin(a->p, w);
        else
            a->got = w;
    }
    atomic_store(&a->done, 1);
    return NULL;
}

/* Start a thread checking out of p with timeout_ms (and checking the worker in again when
 * `checkin`, else keeping it in a->got); return once it waits in line. */
static pthread_t start_waiter(waiter_arg_t *a, fdn_pool_t *p, int64_t timeout_ms, bool checkin)
{
    memset(a, 0, sizeof(*a));
    a->p = p;
    a->timeout_ms = timeout_ms;
    a->checkin = checkin;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, a), 0);
    wait_waiters(p, 1);
    return t;
}

static void waiters_served_in_fifo_order(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;

    enum { N = 4 };
    pthread_t t[N];
    waiter_arg_t a[N];
    _Atomic int order = 0;
    int slots[N] = {0};
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].p = p;
        a[i].timeout_ms = FDN_POOL_WAIT_FOREVER;
        a[i].id = i + 1;
        a[i].order = &order;
        a[i].slots = slots;
        a[i].checkin = true;
        assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &a[i]), 0);
        wait_waiters(p, i + 1); /* queue in a known order */
    }
    assert_int_equal(fdn_pool_checkin(p, held), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(slots[i], i + 1);
    }
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);
    assert_int_equal(s.checkouts, N + 1);
    assert_int_equal(s.created, 1);
}

/* A checkout arriving right after a checkin handed the worker over, before the waiter it went
 * to has run (the test thread checks in and at once checks out; whether the waiter ran in
 * between is the scheduler's choice, and either way the newcomer must get nothing): the
 * checkin gave the worker to the oldest waiter under the lock, so it was never idle nor parked
 * in the checking-in thread's cache, and the newcomer (timeout 0) gets FDN_EBUSY. The waiters
 * are served in their order: W1 has the worker while W2 still waits, then W2 has it. */
static void newcomer_does_not_take_a_worker_handed_to_a_waiter(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;
    void *conn = fdn_pool_worker_conn(held);

    enum { N = 2 };
    pthread_t t[N];
    waiter_arg_t a[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].p = p;
        a[i].timeout_ms = FDN_POOL_WAIT_FOREVER;
        a[i].id = i + 1;
        assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &a[i]), 0);
        wait_waiters(p, i + 1); /* queue in a known order */
    }
    assert_int_equal(fdn_pool_checkin(p, held), 0); /* handed to W1 */
    fdn_pool_worker_t *x = NULL;
    assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), FDN_EBUSY);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.waiters, 1); /* W2 */
    assert_int_equal(s.available, 0);

    pthread_join(t[0], NULL);
    assert_int_equal(a[0].rc, 0);
    assert_ptr_equal(fdn_pool_worker_conn(a[0].got), conn);
    assert_int_equal(atomic_load(&a[1].done), 0);
    assert_int_equal(st(p).waiters, 1);
    assert_int_equal(fdn_pool_checkin(p, a[0].got), 0); /* handed to W2 */
    pthread_join(t[1], NULL);
    assert_int_equal(a[1].rc, 0);
    assert_ptr_equal(fdn_pool_worker_conn(a[1].got), conn);
    assert_int_equal(fdn_pool_checkin(p, a[1].got), 0);
    s = st(p);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);
    assert_int_equal(s.created, 1);
}

static void timeout_is_exact_on_manual_clock(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;

    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, 100, false);
    assert_int_equal(fdn_clock_advance(f->clk, 99 * MS), 0);
    /* The waiter re-parks: it is still queued and not done. */
    while (fdn_clock_waiters(f->clk) < 1)
        sched_yield();
    assert_int_equal(st(p).waiters, 1);
    assert_int_equal(atomic_load(&a.done), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 1 * MS), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, FDN_ETIMEDOUT);
    assert_int_equal(a.err.ref_code, 4301);
    assert_non_null(strstr(a.err.context, "in_use=1"));
    assert_non_null(strstr(a.err.context, "oldest_lease_age_ms=100"));
    assert_non_null(strstr(a.err.context, "pool=test"));
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.timeouts, 1);
    assert_int_equal(s.oldest_lease_age_ns, 100 * MS);
    assert_int_equal(fdn_pool_checkin(p, held), 0);
}

/* A second checkin of a lease that already ended (its worker was handed to a waiter, went
 * idle, or was lent again) is refused with FDN_EINVAL and changes nothing: the worker is
 * never held by two callers. */
static void double_checkin_is_refused(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reset = c_reset;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *held;
    assert_int_equal(fdn_pool_checkout(p, &held, 0, NULL), 0);
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, 100, false);
    assert_int_equal(fdn_pool_checkin(p, held), 0); /* handed to the waiter */
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_non_null(a.got);
    assert_int_equal(atomic_load(&f->ctx.resets), 1);

    /* the old holder checks in again: refused, the waiter keeps it, reset not run */
    assert_int_equal(fdn_pool_checkin(p, held), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin_broken(p, held), FDN_EINVAL);
    assert_int_equal(atomic_load(&f->ctx.resets), 1);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.available, 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 0);
    fdn_pool_worker_t *other = NULL;
    assert_int_equal(fdn_pool_checkout(p, &other, 0, NULL), FDN_EBUSY);
    assert_int_equal(fdn_pool_worker_conn(a.got), fdn_pool_worker_conn(held));

    /* the waiter's lease ends normally; then both handles are stale */
    assert_int_equal(fdn_pool_checkin(p, a.got), 0);
    assert_int_equal(fdn_pool_checkin(p, a.got), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin(p, held), FDN_EINVAL);
    assert_int_equal(st(p).available, 1);
    assert_int_equal(fdn_pool_checkout(p, &other, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkin(p, a.got), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin(p, held), FDN_EINVAL);
    s = st(p);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(atomic_load(&f->ctx.resets), 2);
    assert_int_equal(fdn_pool_checkin(p, other), 0);
    assert_int_equal(st(p).available, 1);
}

static void waiter_gets_worker_before_deadline(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;
    int id = cw(held)->id;
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, 100, true);
    assert_int_equal(fdn_clock_advance(f->clk, 50 * MS), 0);
    assert_int_equal(fdn_pool_checkin(p, held), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(st(p).available, 1);
    assert_int_equal(atomic_load(&f->ctx.next_id), id);
}

static int fn_fail(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return FDN_EIO;
}

static int fn_broken(void *conn, void *arg)
{
    *(int *)arg = ((conn_t *)conn)->id;
    return FDN_EPOOL_BROKEN;
}

static int fn_ping(void *conn, void *arg)
{
    (void)conn;
    *(int *)arg += 1;
    return 0;
}

static void with_connection_always_checks_in(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    int n = 0;
    /* size 1, overflow 0: four sequential calls all succeed. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(fdn_pool_with(p, fn_ping, &n, 100, NULL), 0);
    assert_int_equal(n, 4);
    assert_int_equal(fdn_pool_with(p, fn_fail, NULL, 100, NULL), FDN_EIO);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);
    assert_int_equal(fdn_pool_with(p, fn_ping, &n, 100, NULL), 0);
    assert_int_equal(fdn_pool_with(p, NULL, NULL, 100, NULL), FDN_EINVAL);
}

static void broken_worker_is_replaced(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    fdn_pool_t *p = mkpool(f, &o);
    int id = 0;
    assert_int_equal(fdn_pool_with(p, fn_broken, &id, 100, NULL), FDN_EPOOL_BROKEN);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.broken, 1);
    assert_int_equal(s.workers, 2);
    assert_int_equal(s.available, 2);
    assert_int_equal(s.created, 3);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1);

    /* checkin_broken and a failing reset do the same. */
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_not_equal(cw(w)->id, id);
    assert_int_equal(fdn_pool_checkin_broken(p, w), 0);
    assert_int_equal(st(p).broken, 2);
    assert_int_equal(st(p).workers, 2);
    assert_int_equal(atomic_load(&f->ctx.live), 2);
}

static void reset_failure_counts_as_broken(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reset = c_reset;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    int id = cw(w)->id;
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(atomic_load(&f->ctx.resets), 1);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(cw(w)->id, id);
    cw(w)->dead = true;
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(st(p).broken, 1);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_not_equal(cw(w)->id, id);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

static void broken_worker_replacement_goes_to_waiter(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, FDN_POOL_WAIT_FOREVER, true);
    assert_int_equal(fdn_pool_checkin_broken(p, held), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.broken, 1);
}

static void validate_after_idle(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.validate = c_validate;
    o.validate_after_idle_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    int id = cw(w)->id;
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 999 * MS), 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(atomic_load(&f->ctx.validations), 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(atomic_load(&f->ctx.validations), 1);
    assert_int_equal(cw(w)->id, id);
    assert_int_equal(fdn_pool_checkin(p, w), 0);

    /* A worker failing validation is dropped and a fresh one lent instead. */
    f->ctx.validate_fails = true;
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_not_equal(cw(w)->id, id);
    assert_int_equal(st(p).broken, 1);
    assert_int_equal(st(p).workers, 1);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

static void max_lifetime_with_jitter(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 4, 0);
    o.max_lifetime_ms = 1000;
    o.lifetime_jitter_ms = 500;
    fdn_pool_t *p = mkpool(f, &o);
    assert_int_equal(fdn_clock_advance(f->clk, 499 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 501 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 4);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 4);
    /* Refilled to size. */
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.workers, 4);
    assert_int_equal(s.available, 4);
    assert_int_equal(atomic_load(&f->ctx.live), 4);
}

/* max_lifetime_with_jitter passes with the jitter ignored (every lifetime in [500, 1000] ms
 * looks the same at 499 and 1000 ms). Here the lifetimes must actually be spread: at 750 ms
 * each of 64 workers has expired with probability 1/2, so "none" or "all" (the result
 * without jitter) has probability 2^-63. */
static void jitter_spreads_lifetimes(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 64, 0);
    o.max_lifetime_ms = 1000;
    o.lifetime_jitter_ms = 500;
    fdn_pool_t *p = mkpool(f, &o);
    assert_int_equal(fdn_clock_advance(f->clk, 750 * MS), 0);
    int dropped = fdn_pool_reap(p);
    assert_true(dropped > 0 && dropped < 64);
}

/* A jitter too large for ns saturates to INT64_MAX; drawing the jitter must not overflow
 * (jitter_ns + 1 was signed-overflow UB), and a lifetime never drops below 1 ns. */
static void huge_jitter_no_overflow(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.max_lifetime_ms = 1000;
    o.lifetime_jitter_ms = INT64_MAX;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(atomic_load(&f->ctx.live), 1);
}

static void max_lifetime_lazy_on_checkout_and_checkin(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.max_lifetime_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    int id1 = cw(w)->id;
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    /* Expired while lent: destroyed at checkin and replaced. */
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    int id2 = cw(w)->id;
    assert_int_not_equal(id1, id2);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    /* Expired while idle: dropped at checkout. */
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_not_equal(cw(w)->id, id2);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 2);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

/* A checkout that finds several expired idle workers drops them all (collected under the
 * lock, destroyed after it) before it creates one: the destroy chain holds more than one. */
static void checkout_drops_every_expired_idle_worker(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 3, 0);
    o.max_lifetime_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(cw(w)->id, 4);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 3);
    assert_int_equal(atomic_load(&f->ctx.live), 1);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.destroyed, 3);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.available, 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(st(p).available, 1);
}

static void idle_timeout_shrinks_pool(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 3, 0);
    o.idle_timeout_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_clock_advance(f->clk, 600 * MS), 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 400 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 2); /* the two never used */
    assert_int_equal(st(p).workers, 1);
    assert_int_equal(fdn_clock_advance(f->clk, 600 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    assert_int_equal(st(p).workers, 0);
    /* Refilled on demand. */
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(st(p).workers, 1);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

static void overflow_ttl_keeps_overflow_idle(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 2);
    o.overflow_ttl_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_pool_checkout(p, &w[i], 0, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_pool_checkin(p, w[i]), 0);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.workers, 3);
    assert_int_equal(s.available, 3);
    assert_int_equal(s.overflow, 2);
    assert_int_equal(fdn_clock_advance(f->clk, 999 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 1 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 2);
    s = st(p);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.overflow, 0);
}

static void leak_reported_once_with_backtrace(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    o.leak_threshold_ms = 1000;
    o.on_leak = c_leak;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 999 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 501 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    assert_int_equal(atomic_load(&f->ctx.leaks), 1);
    assert_int_equal(f->ctx.leak_age, 1500 * MS);
    assert_true(f->ctx.leak_bt > 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(st(p).leaks, 1);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

/* A lease held reclaim_after_ms is reclaimed by maintenance: its slot is refilled at once,
 * the holder's connection is left alone (no reset, no destroy) until the holder checks it
 * in, and then it is destroyed instead of reused. */
static void reclaim_refills_and_destroys_on_late_checkin(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reset = c_reset;
    o.reclaim_after_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *old, *fresh;
    assert_int_equal(fdn_pool_checkout(p, &old, 0, NULL), 0);
    conn_t *old_conn = fdn_pool_worker_conn(old);
    assert_int_equal(fdn_clock_advance(f->clk, 999 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 1 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.reclaimed, 1);
    assert_int_equal(s.reclaimed_out, 1);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.workers, 1); /* the refill */
    assert_int_equal(s.available, 1);
    assert_int_equal(s.oldest_lease_age_ns, 0);
    assert_int_equal(atomic_load(&f->ctx.live), 2);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 0);
    assert_int_equal(fdn_pool_reap(p), 0); /* reclaimed once */

    assert_int_equal(fdn_pool_checkout(p, &fresh, 0, NULL), 0);
    assert_ptr_not_equal(fdn_pool_worker_conn(fresh), old_conn);
    assert_int_equal(old_conn->id, 1); /* still the holder's, untouched */

    assert_int_equal(fdn_pool_checkin(p, old), 0);
    assert_int_equal(atomic_load(&f->ctx.resets), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1);
    s = st(p);
    assert_int_equal(s.reclaimed_out, 0);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.destroyed, 1);
    assert_int_equal(fdn_pool_checkin(p, fresh), 0);
    assert_int_equal(atomic_load(&f->ctx.resets), 1);
    assert_int_equal(st(p).available, 1);
}

/* A caller waiting for a full pool gets the reclaimed slot; an owner's reclaimed lease is
 * still given back by fdn_pool_release_owner. */
static void reclaim_serves_waiter_and_release_owner(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reclaim_after_ms = 500;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *old;
    assert_int_equal(fdn_pool_checkout_owned(p, &old, 0, 42, NULL), 0);
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, 5000, false);
    assert_int_equal(fdn_clock_advance(f->clk, 500 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_ptr_not_equal(fdn_pool_worker_conn(a.got), fdn_pool_worker_conn(old));
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.reclaimed_out, 1);
    assert_int_equal(fdn_pool_release_owner(p, 42, false), 1);
    assert_int_equal(st(p).reclaimed_out, 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1);
    assert_int_equal(fdn_pool_checkin(p, a.got), 0);
}

/* Shutdown does not wait for reclaimed leases, and the pool's memory outlives its last
 * reference until the reclaimed lease comes back (LeakSanitizer and ASan check both). */
static void reclaimed_lease_outlives_pool(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    o.reclaim_after_ms = 100;
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    fdn_pool_worker_t *old;
    assert_int_equal(fdn_pool_checkout(p, &old, 0, NULL), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 100 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    fdn_pool_destroy(p);
    assert_int_equal(atomic_load(&f->ctx.live), 1);
    assert_int_equal(fdn_pool_checkin(p, old), 0); /* frees the pool */
    assert_int_equal(atomic_load(&f->ctx.live), 0);
}

static void reclaim_option_checked(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reclaim_after_ms = -1;
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "negative time option"));
    o = base_opts(f, 1, 0);
    o.version = 0;
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "version"));
    /* a version 1 caller's struct ends before reclaim_after_ms: it is not read */
    o = base_opts(f, 1, 0);
    o.version = 1;
    o.reclaim_after_ms = 1;
    p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 10 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(st(p).reclaimed, 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(atomic_load(&f->ctx.live), 1);
}

/* Thread caches: a worker returned by one thread is parked in that thread's cache slot, and
 * still lent to another thread (stolen) rather than a new one being made; status counts a
 * parked worker as available, and a stale handle of a parked worker is refused. */
typedef struct steal_arg {
    fdn_pool_t *p;
    int rc;
    void *conn;
} steal_arg_t;

static void *steal_main(void *arg)
{
    steal_arg_t *a = arg;
    fdn_pool_worker_t *w = NULL;
    a->rc = fdn_pool_checkout(a->p, &w, 0, NULL);
    if (a->rc == 0) {
        a->conn = fdn_pool_worker_conn(w);
        a->rc = fdn_pool_checkin(a->p, w);
    }
    return NULL;
}

static void thread_cache_parks_and_other_threads_steal(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.reset = c_reset;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    void *conn = fdn_pool_worker_conn(w);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.available, 0);
    assert_int_equal(s.state, FDN_POOL_FULL);
    assert_int_equal(fdn_pool_checkin(p, w), 0); /* parked */
    assert_int_equal(atomic_load(&f->ctx.resets), 1);
    assert_int_equal(fdn_pool_checkin(p, w), FDN_EINVAL); /* the lease ended */
    s = st(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.state, FDN_POOL_READY);
    assert_int_equal(s.checkouts, 1);

    steal_arg_t a = {.p = p};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, steal_main, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_ptr_equal(a.conn, conn); /* the parked worker, not a new one */
    s = st(p);
    assert_int_equal(s.created, 1);
    assert_int_equal(s.checkouts, 2);
    assert_int_equal(s.available, 1);

    /* and this thread still finds it (parked in the other thread's slot now) */
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_ptr_equal(fdn_pool_worker_conn(w), conn);
    assert_int_equal(st(p).checkouts, 3);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 1); /* the parked worker too */
    assert_int_equal(st(p).available, 0);
}

/* A pool with no callback to run at checkin parks and lends without p->mu; those checkouts
 * are counted (in the worker lent) and stay counted after the workers are gone. */
static void thread_cache_plain_checkouts_counted(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *a, *b;
    assert_int_equal(fdn_pool_checkout(p, &a, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkout(p, &b, 0, NULL), 0);
    void *conn_a = fdn_pool_worker_conn(a);
    assert_int_equal(fdn_pool_checkin(p, b), 0); /* parked */
    assert_int_equal(fdn_pool_checkin(p, a), 0); /* parked; b moves to the idle list */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_pool_checkout(p, &a, 0, NULL), 0);
        assert_ptr_equal(fdn_pool_worker_conn(a), conn_a); /* LIFO: the last one returned */
        assert_int_equal(fdn_pool_checkin(p, a), 0);
        assert_int_equal(fdn_pool_checkin(p, a), FDN_EINVAL); /* that lease ended */
    }
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.checkouts, 5);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.available, 2);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    s = st(p);
    assert_int_equal(s.destroyed, 2);
    assert_int_equal(s.checkouts, 5);
}

/* Thread numbers of the caches: threads alive together hold different numbers, and a thread
 * that exits gives its number back (the next thread takes the smallest free one). */
typedef struct tno_arg {
    fdn_pool_t *p;
    pthread_barrier_t *both; /* NULL: none */
    int rc;
    uint32_t no;
} tno_arg_t;

static void *tno_main(void *arg)
{
    tno_arg_t *a = arg;
    fdn_pool_worker_t *w = NULL;
    a->rc = fdn_pool_checkout(a->p, &w, 0, NULL);
    if (a->rc == 0)
        a->rc = fdn_pool_checkin(a->p, w);
    a->no = fdn__pool_thread_no();
    if (a->both != NULL) /* both numbers are held at once */
        pthread_barrier_wait(a->both);
    return NULL;
}

static void thread_numbers_are_recycled(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 3, 0);
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    uint32_t mine = fdn__pool_thread_no();
    assert_true(mine != 0);

    tno_arg_t a = {.p = p}, b = {.p = p};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, tno_main, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_true(a.no != 0 && a.no != mine);
    assert_int_equal(pthread_create(&t, NULL, tno_main, &b), 0);
    pthread_join(t, NULL);
    assert_int_equal(b.rc, 0);
    assert_true(b.no != 0 && b.no != mine);
    assert_true(b.no <= a.no); /* a's number was free again when b took one */

    pthread_barrier_t both;
    assert_int_equal(pthread_barrier_init(&both, NULL, 2), 0);
    tno_arg_t c = {.p = p, .both = &both}, d = {.p = p, .both = &both};
    pthread_t tc, td;
    assert_int_equal(pthread_create(&tc, NULL, tno_main, &c), 0);
    assert_int_equal(pthread_create(&td, NULL, tno_main, &d), 0);
    pthread_join(tc, NULL);
    pthread_join(td, NULL);
    pthread_barrier_destroy(&both);
    assert_int_equal(c.rc, 0);
    assert_int_equal(d.rc, 0);
    assert_true(c.no != 0 && d.no != 0 && c.no != d.no && c.no != mine && d.no != mine);
    assert_int_equal(fdn__pool_thread_no(), mine);
}

/* fdn__pool_checkout_at: the caller's time is the lease's start on the system clock, and is
 * ignored by a pool on a manual clock. */
static void checkout_at_uses_callers_time(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    fdn_pool_t *p = mkpool(f, &o); /* manual clock */
    fdn_pool_worker_t *w;
    assert_int_equal(fdn__pool_checkout_at(p, &w, 0, NULL, 123, NULL), 0);
    assert_int_equal(st(p).oldest_lease_age_ns, 0);
    assert_int_equal(fdn_clock_advance(f->clk, 5 * MS), 0);
    assert_int_equal(st(p).oldest_lease_age_ns, 5 * MS);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    /* a manual caller clock with a system-clock pool: ignored too */
    fdn_pool_opts_t so = base_opts(f, 1, 0);
    so.clock = NULL;
    fdn_pool_t *sp = NULL;
    assert_int_equal(fdn_pool_create(&sp, &so, NULL), 0);
    assert_int_equal(fdn__pool_checkout_at(sp, &w, 0, f->clk, 123, NULL), 0);
    assert_true(st(sp).oldest_lease_age_ns < 3600 * 1000 * MS);
    assert_int_equal(fdn_pool_checkin(sp, w), 0);
    /* both on the system clock: the lease starts at the caller's time, from the idle list
     * (first) and from the thread cache (then) */
    for (int i = 0; i < 2; i++) {
        int64_t then = fdn_clock_mono_ns(NULL) - (7 + i) * 1000 * MS;
        assert_int_equal(fdn__pool_checkout_at(sp, &w, 0, NULL, then, NULL), 0);
        assert_true(st(sp).oldest_lease_age_ns >= (7 + i) * 1000 * MS);
        assert_int_equal(fdn_pool_checkin(sp, w), 0);
    }
    /* no time given: the pool reads its own */
    assert_int_equal(fdn__pool_checkout_at(sp, &w, 0, NULL, INT64_MIN, NULL), 0);
    assert_true(st(sp).oldest_lease_age_ns < 3600 * 1000 * MS);
    assert_int_equal(fdn_pool_checkin(sp, w), 0);
    fdn_pool_destroy(sp);
}

static void reaper_thread_runs_on_manual_clock(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    o.idle_timeout_ms = 500;
    o.reap_interval_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    while (fdn_clock_waiters(f->clk) < 1)
        sched_yield();
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    /* Destroy callbacks run after the pool lock is dropped: wait for them. */
    while (atomic_load(&f->ctx.destroyed) != 2)
        sched_yield();
    assert_int_equal(st(p).workers, 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0); /* idempotent */
}

static void shutdown_releases_waiters_and_outlives_leases(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *held = f->held;
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, FDN_POOL_WAIT_FOREVER, false);
    assert_int_equal(fdn_pool_shutdown(p, 0), FDN_ETIMEDOUT); /* a lease is still out */
    pthread_join(t, NULL);
    assert_int_equal(a.rc, FDN_ESHUTDOWN);
    fdn_pool_worker_t *x;
    assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), FDN_ESHUTDOWN);
    assert_true(st(p).closed);
    /* Drop the last reference while the lease is out; the checkin frees the pool. */
    fdn_pool_destroy(p);
    f->pool = NULL;
    assert_int_equal(atomic_load(&f->ctx.live), 1);
    assert_int_equal(fdn_pool_checkin(p, held), 0);
    assert_int_equal(atomic_load(&f->ctx.live), 0);
}

static void create_failure_is_reported(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 3, 1);
    fdn_pool_t *p = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    atomic_store(&f->ctx.fail_create, 1);
    atomic_store(&f->ctx.next_id, 0);
    /* Fails on the first worker. */
    assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_ECONNREFUSED);
    assert_non_null(strstr(err.message, "creating worker 1 of 3"));
    assert_int_equal(atomic_load(&f->ctx.live), 0);
    o.prefill = false;
    p = mkpool(f, &o);
    atomic_store(&f->ctx.fail_create, 1);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, &err), FDN_ECONNREFUSED);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.create_failures, 1);
    assert_int_equal(s.workers, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(fdn_pool_checkout(p, &w, 0, &err), 0);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

static void default_timeout_and_bad_arguments(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.checkout_timeout_ms = 50;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *held;
    assert_int_equal(fdn_pool_checkout(p, &held, FDN_POOL_TIMEOUT_DEFAULT, NULL), 0);
    assert_int_equal(fdn_pool_checkout(NULL, &held, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkout(p, NULL, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkout(p, &held, -3, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin(NULL, held), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin(p, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_status(NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_pool_reap(NULL), FDN_EINVAL);

    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, FDN_POOL_TIMEOUT_DEFAULT, false);
    assert_int_equal(fdn_clock_advance(f->clk, 50 * MS), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, FDN_ETIMEDOUT);
    assert_non_null(strstr(a.err.message, "after 50 ms"));
    assert_int_equal(fdn_pool_checkin(p, held), 0);
}

static void validate_every_checkout(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.validate = c_validate;
    o.validate_after_idle_ms = 0;
    fdn_pool_t *p = mkpool(f, &o);
    int n = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_pool_with(p, fn_ping, &n, 0, NULL), 0);
    assert_int_equal(atomic_load(&f->ctx.validations), 3);
}

static void pool_from_another_pool_is_refused(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    fdn_pool_t *q = NULL;
    assert_int_equal(fdn_pool_create(&q, &o, NULL), 0);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(q, &w, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkin(p, w), FDN_EINVAL);
    assert_int_equal(fdn_pool_checkin(q, w), 0);
    fdn_pool_destroy(q);
}

/* ---------------------------------------------------------------------------------------- */
/* Manager (§11.8) */

static void manager_start_stop_list(void **state)
{
    fixture_t *f = *state;
    fdn_pools_t *m = NULL;
    fdn_pools_opts_t mo = FDN_POOLS_OPTS_INIT;
    mo.clock = f->clk;
    assert_int_equal(fdn_pools_create(&m, &mo), 0);
    fdn_pool_opts_t o = base_opts(f, 3, 2);
    fdn_pool_t *h = NULL;
    assert_int_equal(fdn_pools_start(m, "alpha", &o, &h, NULL), 0);
    assert_non_null(h);
    assert_string_equal(fdn_pool_name(h), "alpha");
    fdn_pool_release(h);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_pools_start(m, "alpha", &o, NULL, &err), FDN_EEXIST);
    o.create = NULL;
    assert_int_equal(fdn_pools_start(m, "nocreate", &o, NULL, NULL), FDN_EINVAL);
    o = base_opts(f, -1, 0);
    assert_int_equal(fdn_pools_start(m, "neg", &o, NULL, NULL), FDN_EINVAL);
    o = base_opts(f, 1, 0);
    o.strategy = FDN_POOL_FIFO;
    assert_int_equal(fdn_pools_start(m, "fifo", &o, NULL, NULL), 0);
    o.strategy = FDN_POOL_LIFO;
    assert_int_equal(fdn_pools_start(m, "lifo", &o, NULL, NULL), 0);
    o = base_opts(f, FDN_POOL_DEFAULT, FDN_POOL_DEFAULT);
    assert_int_equal(fdn_pools_start(m, "defaults", &o, NULL, NULL), 0);

    fdn_pool_status_t s;
    assert_int_equal(fdn_pools_status(m, "defaults", &s), 0);
    assert_int_equal(s.size, 10);
    assert_int_equal(s.available, 10);
    assert_int_equal(fdn_pools_status(m, "alpha", &s), 0);
    assert_int_equal(s.size, 3);
    assert_int_equal(s.available, 3);

    fdn_pool_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(fdn_pools_list(m, &list, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].name, "alpha");
    assert_string_equal(list[1].name, "defaults");
    assert_string_equal(list[2].name, "fifo");
    assert_string_equal(list[3].name, "lifo");
    assert_int_equal(list[0].status.available, 3);
    fdn_free(list);

    int cnt = 0;
    assert_int_equal(fdn_pools_with(m, "alpha", fn_ping, &cnt, 100, NULL), 0);
    assert_int_equal(fdn_pools_with(m, "alpha", fn_fail, NULL, 100, NULL), FDN_EIO);
    assert_int_equal(fdn_pools_with(m, "alpha", fn_ping, &cnt, 100, NULL), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(fdn_pools_with(m, "missing", fn_ping, &cnt, 100, &err), FDN_ENOENT);
    assert_non_null(strstr(err.message, "pool_not_found"));

    assert_int_equal(fdn_pools_stop(m, "alpha"), 0);
    assert_int_equal(fdn_pools_status(m, "alpha", &s), FDN_ENOENT);
    assert_int_equal(fdn_pools_stop(m, "alpha"), FDN_ENOENT);
    assert_int_equal(fdn_pools_list(m, &list, &n), 0);
    assert_int_equal(n, 3);
    fdn_free(list);

    /* Defaults set by the runtime from the config tree. */
    assert_int_equal(fdn_pools_set_defaults(m, 2, 1, FDN_POOL_FIFO), 0);
    assert_int_equal(fdn_pools_set_defaults(m, -1, 1, FDN_POOL_FIFO), FDN_EINVAL);
    o = base_opts(f, FDN_POOL_DEFAULT, FDN_POOL_DEFAULT);
    assert_int_equal(fdn_pools_start(m, "d2", &o, NULL, NULL), 0);
    assert_int_equal(fdn_pools_status(m, "d2", &s), 0);
    assert_int_equal(s.size, 2);
    assert_int_equal(s.max_overflow, 1);

    /* Service stop: calls answer unavailable at once; pools survive a restart. */
    fdn__pools_service_stop(m);
    assert_int_equal(fdn__pools_service_health(m), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_pools_status(m, "d2", &s), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_pools_with(m, "d2", fn_ping, &cnt, 100, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_pools_start(m, "x", &o, NULL, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn__pools_service_start(m), 0);
    assert_int_equal(fdn__pools_service_health(m), 0);
    assert_int_equal(fdn_pools_status(m, "d2", &s), 0);
    assert_int_equal(s.available, 2);
    fdn_pools_destroy(m);
    fdn_pools_destroy(NULL);
}

typedef struct conc_arg {
    fdn_pools_t *m;
    int i;
    int rc;
    int out;
    pthread_barrier_t *bar;
} conc_arg_t;

static int fn_work(void *conn, void *arg)
{
    (void)conn;
    conc_arg_t *a = arg;
    a->out = a->i;
    return 0;
}

static void *conc_with(void *arg)
{
    conc_arg_t *a = arg;
    pthread_barrier_wait(a->bar);
    a->rc = fdn_pools_with(a->m, "work", fn_work, a, FDN_POOL_WAIT_FOREVER, NULL);
    return NULL;
}

static void manager_concurrent_use(void **state)
{
    fixture_t *f = *state;
    fdn_pools_t *m = f->pools;
    fdn_pool_opts_t o = base_opts(f, 5, 3);
    o.clock = NULL;
    assert_int_equal(fdn_pools_start(m, "work", &o, NULL, NULL), 0);
    enum { N = 10 };
    pthread_t t[N];
    conc_arg_t a[N];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, N);
    for (int i = 0; i < N; i++) {
        a[i] = (conc_arg_t){.m = m, .i = i, .rc = -1, .out = -1, .bar = &bar};
        assert_int_equal(pthread_create(&t[i], NULL, conc_with, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(a[i].out, i);
    }
    pthread_barrier_destroy(&bar);
    fdn_pool_status_t s;
    assert_int_equal(fdn_pools_status(m, "work", &s), 0);
    assert_int_equal(s.in_use, 0);
    assert_true(s.workers >= 5 && s.workers <= 8);
    assert_int_equal(s.overflow, 0); /* overflow destroyed at checkin */
}

typedef struct start_arg {
    fdn_pools_t *m;
    int i;
    int rc;
    ctx_t *ctx;
    pthread_barrier_t *bar;
    bool stop;
} start_arg_t;

static void *start_main(void *arg)
{
    start_arg_t *a = arg;
    char name[16];
    snprintf(name, sizeof(name), "p%d", a->i);
    pthread_barrier_wait(a->bar);
    if (a->stop) {
        a->rc = fdn_pools_stop(a->m, name);
        return NULL;
    }
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = 2;
    o.max_overflow = 1;
    o.create = c_create;
    o.destroy = c_destroy;
    o.user = a->ctx;
    a->rc = fdn_pools_start(a->m, name, &o, NULL, NULL);
    return NULL;
}

static void manager_concurrent_start_stop(void **state)
{
    fixture_t *f = *state;
    fdn_pools_t *m = f->pools;
    enum { N = 5 };
    for (int round = 0; round < 2; round++) {
        pthread_t t[N];
        start_arg_t a[N];
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, N);
        for (int i = 0; i < N; i++) {
            a[i] = (start_arg_t){
                .m = m, .i = i, .rc = -1, .ctx = &f->ctx, .bar = &bar, .stop = round == 1};
            assert_int_equal(pthread_create(&t[i], NULL, start_main, &a[i]), 0);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(a[i].rc, 0);
        }
        pthread_barrier_destroy(&bar);
        fdn_pool_info_t *list = NULL;
        size_t n = 0;
        assert_int_equal(fdn_pools_list(m, &list, &n), 0);
        assert_int_equal(n, round == 0 ? N : 0);
        fdn_free(list);
    }
    assert_int_equal(atomic_load(&f->ctx.live), 0);
}

/* Owner tokens: every lease of an owner given back at once (a request that failed half-way),
 * the others untouched; broken ones replaced. */
static void release_owner_gives_back_its_leases(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 4, 1);
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *a1, *a2, *b1, *free1, *gone;
    assert_int_equal(fdn_pool_checkout_owned(p, &a1, 0, 0xA, NULL), 0);
    assert_int_equal(fdn_pool_checkout_owned(p, &a2, 0, 0xA, NULL), 0);
    assert_int_equal(fdn_pool_checkout_owned(p, &b1, 0, 0xB, NULL), 0);
    assert_int_equal(fdn_pool_checkout(p, &free1, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkout_owned(p, &gone, 0, 0xA, NULL), 0); /* the overflow one */
    assert_int_equal(fdn_pool_checkin(p, gone), 0); /* given back by its holder: not counted */
    assert_int_equal(st(p).in_use, 4);
    assert_int_equal(fdn_pool_release_owner(p, 0xA, false), 2);
    assert_int_equal(st(p).in_use, 2);
    assert_int_equal(fdn_pool_release_owner(p, 0xA, false), 0); /* nothing left */
    int destroyed = atomic_load(&f->ctx.destroyed);
    uint64_t broken = st(p).broken;
    assert_int_equal(fdn_pool_release_owner(p, 0xB, true), 1);
    assert_int_equal(st(p).broken, broken + 1);
    assert_int_equal(atomic_load(&f->ctx.destroyed), destroyed + 1);
    assert_int_equal(st(p).in_use, 1);
    assert_int_equal(fdn_pool_release_owner(p, 0, false), FDN_EINVAL);
    assert_int_equal(fdn_pool_release_owner(NULL, 1, false), FDN_EINVAL);
    /* the unowned lease was never touched, and a token does not outlive its lease */
    assert_int_equal(fdn_pool_checkin(p, free1), 0);
    fdn_pool_worker_t *again;
    assert_int_equal(fdn_pool_checkout(p, &again, 0, NULL), 0);
    assert_int_equal(fdn_pool_release_owner(p, 0xA, false), 0);
    assert_int_equal(fdn_pool_checkin(p, again), 0);
    assert_int_equal(st(p).in_use, 0);
}

/* Owners on several threads take and release concurrently: each gets back exactly its own. */
typedef struct owner_arg {
    fdn_pool_t *p;
    uint64_t owner;
    int bad;
} owner_arg_t;

static void *owner_main(void *arg)
{
    owner_arg_t *a = arg;
    for (int i = 0; i < 300; i++) {
        fdn_pool_worker_t *w1, *w2;
        if (fdn_pool_checkout_owned(a->p, &w1, FDN_POOL_WAIT_FOREVER, a->owner, NULL) != 0 ||
            fdn_pool_checkout_owned(a->p, &w2, FDN_POOL_WAIT_FOREVER, a->owner, NULL) != 0) {
            a->bad++;
            return NULL;
        }
        if (fdn_pool_release_owner(a->p, a->owner, i % 7 == 0) != 2)
            a->bad++;
    }
    return NULL;
}

static void release_owner_from_many_threads(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 8, 0);
    fdn_pool_t *p = mkpool(f, &o);
    enum { T = 4 };
    pthread_t th[T];
    owner_arg_t a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (owner_arg_t){p, (uint64_t)i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, owner_main, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    assert_int_equal(st(p).in_use, 0);
}

/* A lease handed to a waiter at checkin is the waiter's, without the old holder's token:
 * releasing that owner afterwards gives back nothing, and above all does not destroy (broken)
 * or take back the connection the waiter is using. */
static void handover_to_waiter_drops_the_owner_token(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *a;
    assert_int_equal(fdn_pool_checkout_owned(p, &a, 0, 42, NULL), 0);
    void *conn = fdn_pool_worker_conn(a);
    waiter_arg_t wa;
    pthread_t t = start_waiter(&wa, p, FDN_POOL_WAIT_FOREVER, false);
    assert_int_equal(fdn_pool_checkin(p, a), 0); /* handed to the waiter */
    pthread_join(t, NULL);
    assert_int_equal(wa.rc, 0);
    assert_ptr_equal(fdn_pool_worker_conn(wa.got), conn);
    assert_int_equal(fdn_pool_release_owner(p, 42, true), 0);
    assert_int_equal(fdn_pool_release_owner(p, 42, false), 0);
    assert_int_equal(atomic_load(&f->ctx.destroyed), 0);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.broken, 0);
    assert_int_equal(fdn_pool_checkin(p, wa.got), 0); /* still the waiter's lease */
    s = st(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);
}

/* The holder of an owned lease and fdn_pool_release_owner end it at the same time, in both
 * orders, made exact with the reset callback (it runs between the two give-backs' checks and
 * their ends): exactly one give-back wins, the reset callback runs once and never while it
 * runs already, and the counts balance. With and without thread caches. */
static void release_owner_in_holders_reset(ctx_t *c)
{
    c->hook_rc = fdn_pool_release_owner(c->hook_pool, 7, false);
}

static void holder_checkin_in_release_owners_reset(ctx_t *c)
{
    c->hook_rc = fdn_pool_checkin(c->hook_pool, c->hook_lease);
}

static void owned_lease_ended_once_when_holder_and_release_owner_race(void **state)
{
    fixture_t *f = *state;
    fdn_pool_strategy_t strats[] = {FDN_POOL_FIFO, FDN_POOL_LIFO};
    for (size_t i = 0; i < 2; i++) {
        fdn_pool_opts_t o = base_opts(f, 1, 0);
        o.strategy = strats[i];
        o.reset = c_reset;
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        f->ctx.hook_pool = p;
        atomic_store(&f->ctx.resets, 0);

        /* the holder first: release_owner, inside the holder's reset, finds nothing */
        fdn_pool_worker_t *h;
        assert_int_equal(fdn_pool_checkout_owned(p, &h, 0, 7, NULL), 0);
        f->ctx.hook_rc = -1;
        f->ctx.reset_hook = release_owner_in_holders_reset;
        assert_int_equal(fdn_pool_checkin(p, h), 0);
        assert_int_equal(f->ctx.hook_rc, 0);
        assert_int_equal(atomic_load(&f->ctx.resets), 1);
        assert_int_equal(atomic_load(&f->ctx.reset_overlap), 0);
        fdn_pool_status_t s = st(p);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.available, 1);

        /* release_owner first: the holder's checkin, inside release_owner's reset, is refused */
        assert_int_equal(fdn_pool_checkout_owned(p, &h, 0, 7, NULL), 0);
        f->ctx.hook_rc = -1;
        f->ctx.hook_lease = h;
        f->ctx.reset_hook = holder_checkin_in_release_owners_reset;
        assert_int_equal(fdn_pool_release_owner(p, 7, false), 1);
        assert_int_equal(f->ctx.hook_rc, FDN_EINVAL);
        assert_int_equal(atomic_load(&f->ctx.resets), 2);
        assert_int_equal(atomic_load(&f->ctx.reset_overlap), 0);
        s = st(p);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.available, 1);
        assert_int_equal(s.workers, 1);
        assert_int_equal(fdn_pool_checkin(p, h), FDN_EINVAL); /* and later too */

        /* one worker, lent once at a time */
        fdn_pool_worker_t *x, *y;
        assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), 0);
        assert_int_equal(fdn_pool_checkout(p, &y, 0, NULL), FDN_EBUSY);
        assert_int_equal(fdn_pool_checkin(p, x), 0);
        fdn_pool_destroy(p);
        assert_int_equal(atomic_load(&f->ctx.live), 0);
    }
}

/* fdn_pool_checkout_owned refuses the token 0 (it means "no owner": release_owner could never
 * give such a lease back) and lends nothing. */
static void checkout_owned_refuses_owner_zero(void **state)
{
    fixture_t *f = *state;
    fdn_pool_t *p = f->pool;
    fdn_pool_worker_t *w = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_pool_checkout_owned(p, &w, 0, 0, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "owner"));
    assert_null(w);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.checkouts, 0);
}

/* Maintenance reclaims nothing of a lease whose checkout is still validating the worker
 * (validate runs without the pool's lock; here it lets the clock pass reclaim_after and reaps
 * meanwhile): a failed validation then replaces the worker within the pool's capacity, a
 * successful one lends it with its age counted from the end of the validation. */
static void reap_in_validate(ctx_t *c)
{
    assert_int_equal(fdn_clock_advance(c->hook_clk, 20 * MS), 0);
    c->hook_rc = fdn_pool_reap(c->hook_pool);
}

static void reap_in_failing_validate(ctx_t *c)
{
    reap_in_validate(c);
    c->validate_fails = true;
}

static void reclaim_leaves_a_validating_checkout_alone(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.validate = c_validate;
    o.validate_after_idle_ms = 0;
    o.reclaim_after_ms = 10;
    fdn_pool_t *p = mkpool(f, &o);
    f->ctx.hook_pool = p;
    f->ctx.hook_clk = f->clk;

    /* validation fails while a reap runs */
    f->ctx.hook_rc = -1;
    f->ctx.validate_hook = reap_in_failing_validate;
    fdn_pool_worker_t *w, *x;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(f->ctx.hook_rc, 0);
    f->ctx.validate_fails = false;
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.reclaimed, 0);
    assert_int_equal(s.reclaimed_out, 0);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.broken, 1);
    assert_int_equal(atomic_load(&f->ctx.live), 1); /* size 1, max_overflow 0 */
    assert_int_equal(fdn_pool_checkout(p, &x, 0, NULL), FDN_EBUSY);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    s = st(p);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.available, 1);

    /* validation passes while a reap runs: lent, and reclaimed only reclaim_after later */
    f->ctx.hook_rc = -1;
    f->ctx.validate_hook = reap_in_validate;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(f->ctx.hook_rc, 0);
    assert_int_equal(st(p).reclaimed, 0);
    assert_int_equal(fdn_pool_reap(p), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 10 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 1);
    s = st(p);
    assert_int_equal(s.reclaimed, 1);
    assert_int_equal(s.reclaimed_out, 1);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    s = st(p);
    assert_int_equal(s.reclaimed_out, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(atomic_load(&f->ctx.live), 1); /* the refill */
}

/* A checkout whose worker fails validation while the pool shuts down creates no worker and
 * fails with FDN_ESHUTDOWN, its slot given back (shutdown's drain sees nothing out). */
static void shutdown_in_failing_validate(ctx_t *c)
{
    (void)fdn_pool_shutdown(c->hook_pool, 0); /* FDN_ETIMEDOUT: the checkout's lease is out */
    c->validate_fails = true;
}

static void validation_failing_during_shutdown_fails_the_checkout(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.validate = c_validate;
    o.validate_after_idle_ms = 0;
    fdn_pool_t *p = mkpool(f, &o);
    f->ctx.hook_pool = p;
    f->ctx.validate_hook = shutdown_in_failing_validate;
    fdn_pool_worker_t *w = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, &err), FDN_ESHUTDOWN);
    assert_null(w);
    fdn_pool_status_t s = st(p);
    assert_true(s.closed);
    assert_int_equal(s.created, 1);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.workers, 0);
    assert_int_equal(atomic_load(&f->ctx.live), 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0); /* nothing left to wait for */
}

/* A worker failing validation is replaced by the next idle worker (validated in turn) before
 * a new one is created. */
static void validation_failure_takes_the_next_idle_worker(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 2, 0);
    o.validate = c_validate;
    o.validate_after_idle_ms = 1000;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *a, *b;
    assert_int_equal(fdn_pool_checkout(p, &a, 0, NULL), 0);
    assert_int_equal(fdn_pool_checkout(p, &b, 0, NULL), 0);
    int good = cw(a)->id;
    cw(b)->dead = true;
    assert_int_equal(fdn_pool_checkin(p, a), 0);
    assert_int_equal(fdn_pool_checkin(p, b), 0); /* LIFO: b is lent next */
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(cw(w)->id, good);
    assert_int_equal(atomic_load(&f->ctx.validations), 2);
    fdn_pool_status_t s = st(p);
    assert_int_equal(s.created, 2); /* none made for it */
    assert_int_equal(s.broken, 1);
    assert_int_equal(s.destroyed, 1);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.checkouts, 3);
    assert_int_equal(fdn_pool_checkin(p, w), 0);
}

/* checkout_timeout_ms takes FDN_POOL_WAIT_FOREVER: a checkout with FDN_POOL_TIMEOUT_DEFAULT
 * then waits without a deadline. */
static void default_timeout_may_be_wait_forever(void **state)
{
    fixture_t *f = *state;
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.checkout_timeout_ms = FDN_POOL_WAIT_FOREVER;
    fdn_pool_t *p = mkpool(f, &o);
    fdn_pool_worker_t *held;
    assert_int_equal(fdn_pool_checkout(p, &held, 0, NULL), 0);
    waiter_arg_t a;
    pthread_t t = start_waiter(&a, p, FDN_POOL_TIMEOUT_DEFAULT, false);
    assert_int_equal(fdn_clock_advance(f->clk, 1000000000 * MS), 0); /* 11.5 days */
    while (fdn_clock_waiters(f->clk) < 1) /* back asleep: it did not time out */
        sched_yield();
    assert_int_equal(st(p).waiters, 1);
    assert_int_equal(atomic_load(&a.done), 0);
    assert_int_equal(fdn_pool_checkin(p, held), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(fdn_pool_checkin(p, a.got), 0);
    fdn_pool_t *q = NULL;
    o.checkout_timeout_ms = -3; /* other negative values stay refused */
    assert_int_equal(fdn_pool_create(&q, &o, NULL), FDN_EINVAL);
}

/* A caller built against options version 1 passes a struct that ends before reclaim_after_ms:
 * fdn_pools_start reads only that much (ASan reports a read past the heap block otherwise). */
static void manager_start_reads_only_the_callers_options_version(void **state)
{
    fixture_t *f = *state;
    size_t v1 = offsetof(fdn_pool_opts_t, reclaim_after_ms);
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    o.version = 1;
    fdn_pool_opts_t *heap = malloc(v1);
    assert_non_null(heap);
    memcpy(heap, &o, v1);
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pools_start(f->pools, "v1", heap, &p, NULL), 0);
    free(heap);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_clock_advance(f->clk, 10 * MS), 0);
    assert_int_equal(fdn_pool_reap(p), 0); /* no reclaim: version 1 has none */
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    fdn_pool_release(p);
    o.version = FDN_POOL_OPTS_VERSION + 1;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_pools_start(f->pools, "v3", &o, NULL, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "version"));
    assert_int_equal(fdn_pools_get(f->pools, "v3", &p), FDN_ENOENT);
}

/* ---------------------------------------------------------------------------------------- */
/* Telemetry ("Connection Pool Flow"): checkout, checkin, timeout, pool_started/stopped. */

typedef struct tm_seen {
    _Atomic int checkout, checkin, timeout, full, started, stopped, bad_meta, has_checkout_time;
} tm_seen_t;

static int tm_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                      const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    tm_seen_t *t = user;
    if (nmeta < 1 || strcmp(meta[0].key, "pool_name") != 0 || strcmp(meta[0].value, "tp") != 0)
        atomic_fetch_add(&t->bad_meta, 1);
    if (strcmp(event, "foundation.connection_pool.checkout") == 0) {
        atomic_fetch_add(&t->checkout, 1);
        if (nm == 1 && strcmp(m[0].key, "checkout_time") == 0 && m[0].value >= 0)
            atomic_fetch_add(&t->has_checkout_time, 1);
    } else if (strcmp(event, "foundation.connection_pool.checkin") == 0) {
        atomic_fetch_add(&t->checkin, 1);
    } else if (strcmp(event, "foundation.connection_pool.timeout") == 0) {
        atomic_fetch_add(&t->timeout, 1);
    } else if (strcmp(event, "foundation.connection_pool.full") == 0) {
        atomic_fetch_add(&t->full, 1);
    } else if (strcmp(event, "foundation.connection_pool.pool_started") == 0) {
        atomic_fetch_add(&t->started, 1);
    } else if (strcmp(event, "foundation.connection_pool.pool_stopped") == 0) {
        atomic_fetch_add(&t->stopped, 1);
    }
    return 0;
}

static void telemetry_events(void **state)
{
    fixture_t *f = *state;
    fdn_telemetry_t *tm = NULL;
    fdn_telemetry_opts_t to = FDN_TELEMETRY_OPTS_INIT;
    to.clock = f->clk;
    assert_int_equal(fdn_telemetry_create(&tm, &to), 0);
    tm_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.connection_pool",
                                          FDN_TELEMETRY_MATCH_PREFIX, tm_handler, &seen),
                     0);
    fdn_pools_t *m = NULL;
    fdn_pools_opts_t mo = FDN_POOLS_OPTS_INIT;
    mo.clock = f->clk;
    mo.telemetry = tm;
    assert_int_equal(fdn_pools_create(&m, &mo), 0);
    fdn_pool_opts_t o = base_opts(f, 1, 0);
    assert_int_equal(fdn_pools_start(m, "tp", &o, NULL, NULL), 0);
    assert_int_equal(atomic_load(&seen.started), 1);
    int n = 0;
    assert_int_equal(fdn_pools_with(m, "tp", fn_ping, &n, 100, NULL), 0);
    assert_int_equal(fdn_pools_with(m, "tp", fn_fail, NULL, 100, NULL), FDN_EIO);
    assert_int_equal(atomic_load(&seen.checkout), 2);
    assert_int_equal(atomic_load(&seen.has_checkout_time), 2);
    assert_int_equal(atomic_load(&seen.checkin), 2);
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pools_get(m, "tp", &p), 0);
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
    assert_int_equal(fdn_pools_with(m, "tp", fn_ping, &n, 0, NULL), FDN_EBUSY); /* full */
    assert_int_equal(atomic_load(&seen.full), 1);
    assert_int_equal(atomic_load(&seen.timeout), 0); /* a refusal, not a wait that ran out */
    assert_int_equal(fdn_pool_checkin(p, w), 0);
    fdn_pool_release(p);
    assert_int_equal(fdn_pools_stop(m, "tp"), 0);
    assert_int_equal(atomic_load(&seen.stopped), 1);
    assert_int_equal(atomic_load(&seen.bad_meta), 0);
    fdn_pools_destroy(m);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_validates_options, setup, teardown),
        cmocka_unit_test_setup_teardown(release_owner_gives_back_its_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(release_owner_from_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(handover_to_waiter_drops_the_owner_token, setup_one,
                                        teardown),
        cmocka_unit_test_setup_teardown(owned_lease_ended_once_when_holder_and_release_owner_race,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(checkout_owned_refuses_owner_zero, setup_one, teardown),
        cmocka_unit_test_setup_teardown(reclaim_leaves_a_validating_checkout_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(validation_failing_during_shutdown_fails_the_checkout,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(validation_failure_takes_the_next_idle_worker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(default_timeout_may_be_wait_forever, setup, teardown),
        cmocka_unit_test_setup_teardown(manager_start_reads_only_the_callers_options_version,
                                        setup_manager, teardown),
        cmocka_unit_test_setup_teardown(capacity_past_int_max_is_refused, setup, teardown),
        cmocka_unit_test(strategy_names),
        cmocka_unit_test_setup_teardown(lifo_reuses_last_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(double_checkin_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(fifo_reuses_first_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(overflow_created_then_destroyed_on_checkin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(waiters_served_in_fifo_order, setup_one_held, teardown),
        cmocka_unit_test_setup_teardown(newcomer_does_not_take_a_worker_handed_to_a_waiter,
                                        setup_one_held, teardown),
        cmocka_unit_test_setup_teardown(timeout_is_exact_on_manual_clock, setup_one_held, teardown),
        cmocka_unit_test_setup_teardown(waiter_gets_worker_before_deadline, setup_one_held,
                                        teardown),
        cmocka_unit_test_setup_teardown(with_connection_always_checks_in, setup_one, teardown),
        cmocka_unit_test_setup_teardown(broken_worker_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_failure_counts_as_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_worker_replacement_goes_to_waiter, setup_one_held,
                                        teardown),
        cmocka_unit_test_setup_teardown(validate_after_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(max_lifetime_with_jitter, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_jitter_no_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(jitter_spreads_lifetimes, setup, teardown),
        cmocka_unit_test_setup_teardown(max_lifetime_lazy_on_checkout_and_checkin, setup, teardown),
        cmocka_unit_test_setup_teardown(checkout_drops_every_expired_idle_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_timeout_shrinks_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(overflow_ttl_keeps_overflow_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(leak_reported_once_with_backtrace, setup, teardown),
        cmocka_unit_test_setup_teardown(reclaim_refills_and_destroys_on_late_checkin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reclaim_serves_waiter_and_release_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(reclaimed_lease_outlives_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(reclaim_option_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(thread_cache_parks_and_other_threads_steal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(thread_cache_plain_checkouts_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(thread_numbers_are_recycled, setup, teardown),
        cmocka_unit_test_setup_teardown(checkout_at_uses_callers_time, setup, teardown),
        cmocka_unit_test_setup_teardown(reaper_thread_runs_on_manual_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_releases_waiters_and_outlives_leases,
                                        setup_one_held, teardown),
        cmocka_unit_test_setup_teardown(create_failure_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(default_timeout_and_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(validate_every_checkout, setup, teardown),
        cmocka_unit_test_setup_teardown(pool_from_another_pool_is_refused, setup_one, teardown),
        cmocka_unit_test_setup_teardown(manager_start_stop_list, setup, teardown),
        cmocka_unit_test_setup_teardown(manager_concurrent_use, setup_manager, teardown),
        cmocka_unit_test_setup_teardown(manager_concurrent_start_stop, setup_manager, teardown),
        cmocka_unit_test_setup_teardown(telemetry_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
