/* Benchmarks: config reads by resolved key and by dotted path, and updates. */
#include <stdlib.h>

#include "bench.h"
#include <fdn/config.h>

typedef struct cfg_state {
    fdn_config_t *c;
    fdn_config_key_t key;
} cfg_state_t;

static void *cfg_setup(int threads)
{
    (void)threads;
    cfg_state_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.ignore_env = true;
    if (fdn_config_create(&s->c, &o, NULL) != 0 ||
        fdn_config_key_resolve(s->c, "ai.planning.sampling_rate", &s->key) != 0) {
        fdn_config_destroy(s->c);
        free(s);
        return NULL;
    }
    return s;
}

static void cfg_teardown(void *p)
{
    cfg_state_t *s = p;
    if (s != NULL)
        fdn_config_destroy(s->c);
    free(s);
}

static void run_get_key(void *p, int tid, uint64_t iters)
{
    cfg_state_t *s = p;
    (void)tid;
    double d = 0, sum = 0;
    for (uint64_t i = 0; i < iters; i++) {
        fdn_config_key_get_double(s->c, s->key, &d);
        sum += d;
    }
    BENCH_USE(sum);
}

static void run_get_path(void *p, int tid, uint64_t iters)
{
    cfg_state_t *s = p;
    (void)tid;
    double d = 0, sum = 0;
    for (uint64_t i = 0; i < iters; i++) {
        fdn_config_get_double(s->c, "ai.planning.sampling_rate", &d);
        sum += d;
    }
    BENCH_USE(sum);
}

static void run_update(void *p, int tid, uint64_t iters)
{
    cfg_state_t *s = p;
    (void)tid;
    for (uint64_t i = 0; i < iters; i++)
        fdn_config_update_double(s->c, "ai.planning.sampling_rate", (i & 1) ? 0.25 : 0.75, NULL);
}

static const bench_case_t get_key_1 = {
    .name = "config.get.key",
    .threads = 1,
    .iters = 10000000,
    .baseline = "baseline.atomic_private",
    .goal_kind = BENCH_GOAL_NS_MAX,
    .goal = 10,
    .goal_text = "<= 10 ns",
    .setup = cfg_setup,
    .run = run_get_key,
    .teardown = cfg_teardown,
};
BENCH_REGISTER(get_key_1)

static const bench_case_t get_key_2 = {
    .name = "config.get.key_2t",
    .threads = 2,
    .iters = 10000000,
    .baseline = "config.get.key",
    .goal_kind = BENCH_GOAL_SPEEDUP_MIN,
    .goal = 1.6,
    .goal_text = ">= 1.6x of 1 thread (scales)",
    .setup = cfg_setup,
    .run = run_get_key,
    .teardown = cfg_teardown,
};
BENCH_REGISTER(get_key_2)

static const bench_case_t get_path = {
    .name = "config.get.path",
    .threads = 1,
    .iters = 5000000,
    .baseline = "baseline.hash_lookup_10k",
    .goal_kind = BENCH_GOAL_NS_MAX,
    .goal = 60,
    .goal_text = "<= 60 ns",
    .setup = cfg_setup,
    .run = run_get_path,
    .teardown = cfg_teardown,
};
BENCH_REGISTER(get_path)

static const bench_case_t update = {
    .name = "config.update",
    .threads = 1,
    .iters = 50000,
    .baseline = "baseline.malloc64",
    .goal_kind = BENCH_GOAL_NS_MAX,
    .goal = 5000,
    .goal_text = "<= 5 us (the new snapshot shares every value but the updated one)",
    .setup = cfg_setup,
    .run = run_update,
    .teardown = cfg_teardown,
};
BENCH_REGISTER(update)
