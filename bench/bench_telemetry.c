/* Benchmarks: telemetry hot paths (counter add, gauge set, histogram observe, execute with
 * one attached handler). Goals from issue 5. */
#include <stdlib.h>

#include <fdn/telemetry.h>

#include "bench.h"

typedef struct tstate {
    fdn_telemetry_t *tm;
    fdn_counter_t *c;
    fdn_gauge_t *g;
    fdn_histogram_t *h;
    uint64_t handled;
} tstate_t;

static int bench_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                         const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    ((tstate_t *)user)->handled++;
    return 0;
}

static void *setup(int threads)
{
    (void)threads;
    tstate_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    fdn_telemetry_family_t *f = NULL;
    if (fdn_telemetry_create(&s->tm, NULL) != 0)
        goto fail;
    if (fdn_telemetry_family(s->tm, &f, "bench_ops_total", "ops", FDN_TELEMETRY_COUNTER, NULL, 0,
                             0) != 0 ||
        fdn_telemetry_family_counter(f, &s->c, NULL, 0) != 0)
        goto fail;
    if (fdn_telemetry_family(s->tm, &f, "bench_level", "level", FDN_TELEMETRY_GAUGE_INT, NULL, 0,
                             0) != 0 ||
        fdn_telemetry_family_gauge(f, &s->g, NULL, 0) != 0)
        goto fail;
    if (fdn_telemetry_family(s->tm, &f, "bench_latency_seconds", "lat", FDN_TELEMETRY_HISTOGRAM,
                             NULL, 0, 0) != 0 ||
        fdn_telemetry_family_histogram(f, &s->h, NULL, 0) != 0)
        goto fail;
    if (fdn_telemetry_attach(s->tm, NULL, "bench.event", FDN_TELEMETRY_MATCH_EXACT, bench_handler,
                             s) != 0)
        goto fail;
    return s;
fail:
    fdn_telemetry_destroy(s->tm);
    free(s);
    return NULL;
}

static void teardown(void *state)
{
    tstate_t *s = state;
    if (s == NULL)
        return;
    fdn_telemetry_destroy(s->tm);
    free(s);
}

static void run_counter(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tstate_t *s = state;
    for (uint64_t i = 0; i < iters; i++)
        fdn_counter_inc(s->c);
    BENCH_CLOBBER();
}

static void run_gauge(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tstate_t *s = state;
    for (uint64_t i = 0; i < iters; i++)
        fdn_gauge_set(s->g, (int64_t)i);
    BENCH_CLOBBER();
}

static void run_hist(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tstate_t *s = state;
    for (uint64_t i = 0; i < iters; i++)
        fdn_histogram_observe(s->h, (double)(i & 4095) + 1.0);
    BENCH_CLOBBER();
}

static void run_execute(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tstate_t *s = state;
    fdn_telemetry_measure_t m = {"duration", 1000.0};
    for (uint64_t i = 0; i < iters; i++) {
        m.value = (double)(i & 1023);
        (void)fdn_telemetry_execute(s->tm, "bench.event", &m, 1, NULL, 0);
    }
    BENCH_USE(s->handled);
}

static void run_emit_counter(void *state, int tid, uint64_t iters)
{
    (void)tid;
    tstate_t *s = state;
    for (uint64_t i = 0; i < iters; i++)
        (void)fdn_telemetry_emit_counter(s->tm, "bench.plain", NULL, 0);
    BENCH_CLOBBER();
}

static const bench_case_t counter_add = {.name = "telemetry.counter.add",
                                         .threads = 1,
                                         .iters = 20000000,
                                         .baseline = "baseline.atomic_private",
                                         .goal_kind = BENCH_GOAL_RATIO_MAX,
                                         .goal = 2.0,
                                         .goal_text = "<= 2x relaxed atomic add",
                                         .setup = setup,
                                         .run = run_counter,
                                         .teardown = teardown};
BENCH_REGISTER(counter_add)

static const bench_case_t counter_add_2t = {.name = "telemetry.counter.add_2t",
                                            .threads = 2,
                                            .iters = 20000000,
                                            .baseline = "telemetry.counter.add",
                                            .goal_kind = BENCH_GOAL_SPEEDUP_MIN,
                                            .goal = 1.8,
                                            .goal_text = ">= 1.8x the 1-thread rate",
                                            .setup = setup,
                                            .run = run_counter,
                                            .teardown = teardown};
BENCH_REGISTER(counter_add_2t)

static const bench_case_t gauge_set = {.name = "telemetry.gauge.set",
                                       .threads = 1,
                                       .iters = 20000000,
                                       .baseline = "baseline.atomic_private",
                                       .goal_kind = BENCH_GOAL_NONE,
                                       .goal_text = "informational",
                                       .setup = setup,
                                       .run = run_gauge,
                                       .teardown = teardown};
BENCH_REGISTER(gauge_set)

static const bench_case_t hist_observe = {.name = "telemetry.histogram.observe",
                                          .threads = 1,
                                          .iters = 10000000,
                                          .baseline = "baseline.atomic_private",
                                          .goal_kind = BENCH_GOAL_NS_MAX,
                                          .goal = 15.0,
                                          .goal_text = "<= 15 ns",
                                          .setup = setup,
                                          .run = run_hist,
                                          .teardown = teardown};
BENCH_REGISTER(hist_observe)

static const bench_case_t execute_one = {.name = "telemetry.execute.one_handler",
                                         .threads = 1,
                                         .iters = 5000000,
                                         .baseline = "baseline.atomic_private",
                                         .goal_kind = BENCH_GOAL_NS_MAX,
                                         .goal = 50.0,
                                         .goal_text = "<= 50 ns",
                                         .setup = setup,
                                         .run = run_execute,
                                         .teardown = teardown};
BENCH_REGISTER(execute_one)

static const bench_case_t emit_counter = {.name = "telemetry.emit_counter.no_handler",
                                          .threads = 1,
                                          .iters = 5000000,
                                          .baseline = "baseline.atomic_private",
                                          .goal_kind = BENCH_GOAL_NONE,
                                          .goal_text = "informational",
                                          .setup = setup,
                                          .run = run_emit_counter,
                                          .teardown = teardown};
BENCH_REGISTER(emit_counter)
