/*
 * The benchmark harness used by every bench/bench_<module>.c file.
 *
 * A case registers itself with BENCH_REGISTER at load time. The harness runs each case
 * once as a warm-up and then at least 5 times, each run on `threads` threads started
 * together behind a barrier, and reports the median. Every case names a baseline case
 * measured in the same run, so results read as ratios on any machine.
 *
 * A baseline with `paired` set (one that talks to a server or a disk: PostgreSQL, Redis,
 * etcd, SQLite) is not measured on its own: its runs are interleaved with the runs of the
 * cases that name it, B C1 C2 .. B C1 C2 .. B (one more baseline run than case runs), and
 * each case run's ratio is taken against the baseline interpolated, by time, between the
 * baseline runs just before and just after it. The case's ratio is the median of those
 * per-run ratios, so drift of the server slower than one round cancels out. In-process
 * baselines (atomics, mutex, malloc, ...) are measured once, alone, as before: they do not
 * drift that way and pairing would only add runs. See bench/README.md. A case may also name a
 * `ceiling`, a second baseline printed as a second ratio (same pairing), not judged.
 *
 * Goals (from the issues) are checked by kind:
 *   BENCH_GOAL_NS_MAX      ns_per_op <= goal
 *   BENCH_GOAL_RATIO_MAX   ns_per_op / baseline ns_per_op <= goal
 *   BENCH_GOAL_SPEEDUP_MIN ops_per_s / baseline ops_per_s >= goal (for thread scaling:
 *                          baseline = the 1-thread case; for "70% of raw SQLite": 0.7)
 *   BENCH_GOAL_VALUE_MAX   the case's `value` callback (e.g. bytes per event) <= goal
 *   BENCH_GOAL_NONE        informational
 */
#ifndef FDN_BENCH_H
#define FDN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most threads a case may ask for (a 50-connection case runs 50). */
#define BENCH_MAX_THREADS 64

typedef enum bench_goal_kind {
    BENCH_GOAL_NONE = 0,
    BENCH_GOAL_NS_MAX,
    BENCH_GOAL_RATIO_MAX,
    BENCH_GOAL_SPEEDUP_MIN,
    BENCH_GOAL_VALUE_MAX,
} bench_goal_kind_t;

typedef struct bench_case {
    const char *name;     /* "config.get.key"; unique; --filter matches substrings */
    int threads;          /* threads running `run` at once, 1..BENCH_MAX_THREADS */
    uint64_t iters;       /* operations per thread per run (the harness may scale down
                             with --quick) */
    const char *baseline; /* name of the baseline case, NULL for baselines themselves */
    bench_goal_kind_t goal_kind;
    double goal;           /* threshold for goal_kind */
    const char *goal_text; /* e.g. "<= 10 ns" */
    /* Shared state for all threads of one run; may return NULL. Called outside timing. */
    void *(*setup)(int threads);
    /* Run `iters` operations on thread `tid` (0-based). Timed. */
    void (*run)(void *state, int tid, uint64_t iters);
    /* Free the state. Called outside timing. */
    void (*teardown)(void *state);
    /* For BENCH_GOAL_VALUE_MAX: the measured value (called after a run, before teardown). */
    double (*value)(void *state);
    const char *value_unit; /* e.g. "bytes/event" */
    /* Optional: NULL when the case can run here, else why not (e.g. no redis-server); the
     * case (and every case whose baseline it is) is then reported as skipped. */
    const char *(*unavailable)(void);
    /* For a baseline (no baseline of its own): measure the cases that name it interleaved
     * with it, and their ratios from those pairs (see the comment at the top). */
    bool paired;
    /* Optional: a second baseline, the best any implementation could do here (e.g. raw
     * SQLite committing as few rows at a time as the case can), printed as a second ratio
     * ("ceiling"), not checked against the goal. A paired one is interleaved with the case's
     * group: B Ceil C1 .. Ck, each round. */
    const char *ceiling;
} bench_case_t;

void bench_register(const bench_case_t *c);

#define BENCH_REGISTER(var)                                                                        \
    static void bench_reg_##var(void) __attribute__((constructor));                                \
    static void bench_reg_##var(void)                                                              \
    {                                                                                              \
        bench_register(&(var));                                                                    \
    }

/* Define and register a case in one go: BENCH_CASE(c_x, .name = "x.y", .threads = 1, ...).
 * A file whose cases share fields names them once in a macro of its own. */
#define BENCH_CASE(var, ...)                                                                       \
    static const bench_case_t var = {__VA_ARGS__};                                                 \
    BENCH_REGISTER(var)

/* Keep the compiler from optimising a value or a memory write away. */
#define BENCH_USE(x)    __asm__ volatile("" : : "g"(x) : "memory")
#define BENCH_CLOBBER() __asm__ volatile("" : : : "memory")

#endif
