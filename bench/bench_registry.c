/* Benchmarks: registry lookups (lock-free RCU read path) and a call run inside an error
 * context. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

#include <fdn/error.h>
#include <fdn/registry.h>

/* 1000 services: registration copies the table (O(n) per write), so a 10k setup would
 * dominate the run; the probe cost does not depend on the size. */
#define NSERVICES 1000

typedef struct reg_state {
    fdn_registry_t *reg;
    char names[NSERVICES][24];
    int handles[NSERVICES];
} reg_state_t;

static void *reg_setup(int threads)
{
    (void)threads;
    reg_state_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    o.name = "bench";
    if (fdn_registry_create(&s->reg, &o) != 0) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < NSERVICES; i++) {
        snprintf(s->names[i], sizeof(s->names[i]), "service_%04d", i);
        fdn_registry_register(s->reg, s->names[i], &s->handles[i], 0, NULL, 0, NULL);
    }
    return s;
}

static void reg_run(void *state, int tid, uint64_t iters)
{
    reg_state_t *s = state;
    unsigned idx = (unsigned)tid * 7919u;
    for (uint64_t i = 0; i < iters; i++) {
        void *h = NULL;
        idx = (idx + 613u) % NSERVICES;
        int rc = fdn_registry_lookup(s->reg, s->names[idx], &h, NULL);
        BENCH_USE(rc);
        BENCH_USE(h);
    }
}

static void reg_teardown(void *state)
{
    reg_state_t *s = state;
    if (s == NULL)
        return;
    fdn_registry_destroy(s->reg);
    free(s);
}

static const bench_case_t registry_lookup = {
    .name = "registry.lookup",
    .threads = 1,
    .iters = 2000000,
    .baseline = "baseline.hash_lookup_10k",
    .goal_kind = BENCH_GOAL_RATIO_MAX,
    .goal = 3.0,
    .goal_text = "<= 3x a plain hash lookup",
    .setup = reg_setup,
    .run = reg_run,
    .teardown = reg_teardown,
};
BENCH_REGISTER(registry_lookup)

static const bench_case_t registry_lookup_2t = {
    .name = "registry.lookup.2t",
    .threads = 2,
    .iters = 2000000,
    .baseline = "registry.lookup",
    .goal_kind = BENCH_GOAL_SPEEDUP_MIN,
    .goal = 1.5,
    .goal_text = ">= 1.5x the 1-thread throughput (readers never wait)",
    .setup = reg_setup,
    .run = reg_run,
    .teardown = reg_teardown,
};
BENCH_REGISTER(registry_lookup_2t)

static int ok_fn(void *arg)
{
    int *x = arg;
    return *x;
}

static void errctx_run(void *state, int tid, uint64_t iters)
{
    (void)state;
    (void)tid;
    int zero = 0;
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_errctx_run("Bench", "call", ok_fn, &zero, NULL);
        BENCH_USE(rc);
    }
}

static const bench_case_t errctx_run_case = {
    .name = "errctx.run",
    .threads = 1,
    .iters = 1000000,
    .baseline = "baseline.atomic_private",
    .goal_kind = BENCH_GOAL_NS_MAX,
    .goal = 30.0,
    .goal_text = "<= 30 ns per call (push, run, pop; ids made when read)",
    .run = errctx_run,
};
BENCH_REGISTER(errctx_run_case)
