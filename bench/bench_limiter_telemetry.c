/*
 * Benchmarks of the limiter and the breaker with telemetry on, as the runtime runs them: a
 * named-rule check (its event plus its per-rule decision counter, a sharded counter whose
 * handle the rule carries: no lookup, no shared atomic) on 1 and 2 threads, and a closed
 * breaker's call (timed into its call-duration histogram). The cases without telemetry are
 * limiter.check.* and breaker.call.closed (bench_protect.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/limiter.h>
#include <fdn/telemetry.h>

#include "bench.h"

typedef struct tl_state {
    fdn_telemetry_t *tm;
    fdn_limiter_t *l;
    fdn_breaker_t *b;
} tl_state_t;

static void *tl_setup(int threads)
{
    (void)threads;
    tl_state_t *s = calloc(1, sizeof(*s));
    if (s == NULL || fdn_telemetry_create(&s->tm, NULL) != 0) {
        free(s);
        return NULL;
    }
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 1024;
    o.telemetry = s->tm;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.telemetry = s->tm;
    /* a huge limit: every check takes the full admission path and passes */
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, (int64_t)1 << 31, 1000, 0};
    if (fdn_limiter_create(&s->l, &o) != 0 || fdn_limiter_set_rule(s->l, "bench", &rule) != 0 ||
        fdn_breaker_create(&s->b, "bench", &bo) != 0) {
        fdn_limiter_destroy(s->l);
        fdn_telemetry_destroy(s->tm);
        free(s);
        return NULL;
    }
    return s;
}

static void tl_teardown(void *state)
{
    tl_state_t *s = state;
    fdn_breaker_destroy(s->b);
    fdn_limiter_destroy(s->l);
    fdn_telemetry_destroy(s->tm);
    free(s);
}

static void named_run(void *state, int tid, uint64_t iters)
{
    tl_state_t *s = state;
    const char *id = tid == 0 ? "user-1" : "user-2"; /* distinct keys per thread */
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_limiter_check_named(s->l, "bench", id, 1, NULL);
        BENCH_USE(rc);
    }
}

static const bench_case_t named_1t = {.name = "limiter.check_named.telemetry",
                                      .threads = 1,
                                      .iters = 2000000,
                                      .goal_kind = BENCH_GOAL_NONE,
                                      .goal_text = "informational",
                                      .setup = tl_setup,
                                      .run = named_run,
                                      .teardown = tl_teardown};
BENCH_REGISTER(named_1t)

static const bench_case_t named_2t = {.name = "limiter.check_named.telemetry.2t",
                                      .threads = 2,
                                      .iters = 2000000,
                                      .baseline = "limiter.check_named.telemetry",
                                      .goal_kind = BENCH_GOAL_NONE,
                                      .goal_text = "informational",
                                      .setup = tl_setup,
                                      .run = named_run,
                                      .teardown = tl_teardown};
BENCH_REGISTER(named_2t)

static int tl_noop(void *arg)
{
    BENCH_USE(arg);
    return 0;
}

static void brk_tm_run(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tl_state_t *s = state;
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_breaker_call(s->b, tl_noop, s, NULL);
        BENCH_USE(rc);
    }
}

static const bench_case_t brk_tm = {.name = "breaker.call.telemetry",
                                    .threads = 1,
                                    .iters = 5000000,
                                    .baseline = "breaker.call.closed",
                                    .goal_kind = BENCH_GOAL_NONE,
                                    .goal_text = "informational",
                                    .setup = tl_setup,
                                    .run = brk_tm_run,
                                    .teardown = tl_teardown};
BENCH_REGISTER(brk_tm)
