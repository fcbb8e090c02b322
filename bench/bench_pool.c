/* Benchmarks: pool checkout + checkin. Goals: uncontended <= 60 ns (issue 6); two threads on
 * one pool >= 1.6x one thread (issue 16: each thread's worker stays in its thread cache). */
#include <stdlib.h>

#include <fdn/pool.h>

#include "bench.h"

static int b_create(void **out, void *user)
{
    (void)user;
    *out = malloc(16);
    return *out != NULL ? 0 : FDN_ENOMEM;
}

static void b_destroy(void *conn, void *user)
{
    (void)user;
    free(conn);
}

static void *pool_setup(int threads)
{
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = threads + 2;
    o.max_overflow = 0;
    o.create = b_create;
    o.destroy = b_destroy;
    fdn_pool_t *p = NULL;
    if (fdn_pool_create(&p, &o, NULL) != 0)
        return NULL;
    return p;
}

static void pool_run(void *state, int tid, uint64_t iters)
{
    (void)tid;
    fdn_pool_t *p = state;
    for (uint64_t i = 0; i < iters; i++) {
        fdn_pool_worker_t *w = NULL;
        if (fdn_pool_checkout(p, &w, FDN_POOL_WAIT_FOREVER, NULL) == 0) {
            BENCH_USE(fdn_pool_worker_conn(w));
            fdn_pool_checkin(p, w);
        }
    }
}

static void pool_teardown(void *state)
{
    fdn_pool_destroy(state);
}

static const bench_case_t pool_1t = {
    .name = "pool.checkout_checkin",
    .threads = 1,
    .iters = 2000000,
    .baseline = "baseline.mutex",
    .goal_kind = BENCH_GOAL_NS_MAX,
    .goal = 60,
    .goal_text = "<= 60 ns",
    .setup = pool_setup,
    .run = pool_run,
    .teardown = pool_teardown,
};
BENCH_REGISTER(pool_1t)

static const bench_case_t pool_2t = {
    .name = "pool.checkout_checkin_2t",
    .threads = 2,
    .iters = 2000000,
    .baseline = "pool.checkout_checkin",
    .goal_kind = BENCH_GOAL_SPEEDUP_MIN,
    .goal = 1.6,
    .goal_text = ">= 1.6x of 1 thread (thread caches)",
    .setup = pool_setup,
    .run = pool_run,
    .teardown = pool_teardown,
};
BENCH_REGISTER(pool_2t)
