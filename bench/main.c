/*
 * fdn-bench: the benchmark harness.
 *
 * DESIGN: cases register themselves at load time (BENCH_REGISTER). For each selected case the
 * harness runs a warm-up and then `runs` (>= 5) timed runs; each run starts `threads`
 * threads behind a barrier and times from the earliest start to the latest finish. The
 * median run gives ns_per_op (per-thread time per operation) and ops_per_s (all threads).
 * A case's baseline is always measured in the same process run (selected automatically when
 * a filter picks the case), so every figure is also printed as a ratio.
 *
 * Paired baselines (bench_case_t.paired: the ones that measure a server or a disk) are not
 * measured minutes away from their cases: when the table reaches such a baseline B, the
 * harness measures B and every selected case Ci that names it together. After one warm-up
 * run of each, it runs rounds B C1 .. Ck, `runs` of them, and one last B, so every case run
 * lies between two baseline runs. A case run's ratio is computed against the baseline's
 * ns/op linearly interpolated at the midpoint (in time) of the case run between those two
 * baseline runs, and the case's ratio is the median of its `runs` per-run ratios. Why this:
 *  - a server's speed drifts over tens of seconds to minutes (checkpoints, autovacuum, cache
 *    state, other load on the machine); within one round it is nearly constant, and the
 *    interpolation also cancels a linear drift across the round, whatever the case's place
 *    in it (always running B first and C second would bias every ratio by the drift of one
 *    run);
 *  - the median of per-run ratios drops a round hit by a hiccup in either run, where the
 *    ratio of two medians can mix runs from different server states;
 *  - B runs runs+1 times in all however many cases name it, where measuring B alone first
 *    ran it runs+1 times too (warm-up included): pairing costs about one warm-up run per
 *    paired baseline, so `make bench` takes the same time.
 * The baseline's own row is the median of all its interleaved runs. A case's ns/op and ops/s
 * stay the median of its own runs; its ratio therefore need not equal the quotient of the two
 * printed medians. In-process baselines (atomics, mutex, malloc, hash lookup) are measured
 * once, alone, before their cases, as before: they move with CPU frequency and load, not with
 * a server's state, and interleaving them would add runs for nothing.
 * A case's `ceiling` (a second baseline: what the best implementation could reach, e.g. raw
 * SQLite committing 64 rows at a time for 64 callers with one event each in flight) is printed
 * as a second ratio and never judged. A paired ceiling runs in the group of the case's
 * baseline, after it in each round (B E C1 .. Ck), its per-run ratios taken the same way; one
 * measured already (another group's), or not paired, gives the ratio of the two medians.
 *
 * Steady runs: a thread-scaling goal (`_2t` >= 1.8x its 1-thread case) compares two rates that
 * each assume every thread had a CPU for its whole run. On a machine with as many CPUs as the
 * case has threads, any other work (a kernel thread, a timer, the hypervisor, a build) that
 * takes a CPU for part of a run stretches that run and moves the ratio either way: the 2-thread
 * case reads low, its 1-thread case high. So for such cases (an in-process case with a
 * speed-up goal and threads <= online CPUs) and the case they are compared with, each thread
 * reads its own CPU time (CLOCK_THREAD_CPUTIME_ID, outside the timed span) and a run in which
 * a thread spent more than STEADY_OFF_MAX of its span off its CPU is redone, up to
 * STEADY_TRIES runs; the last counts whatever it was. The counts are printed ("redone",
 * "disturbed kept"). A case that sleeps by design (a lock handed over through the kernel)
 * would show up as every run disturbed and kept: the figure is then what it measured, with
 * that said beside it. Cases with more threads than CPUs, or on a server or a disk, sleep by
 * design and are not checked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_CASES 256

typedef struct result {
    bool done;
    const char *skipped; /* why the case did not run, or NULL */
    double ns_per_op;
    double ops_per_s;
    double value;
    bool paired;      /* ratio measured against interleaved baseline runs */
    int pairs;        /* how many per-run ratios */
    double ratio;     /* median of them */
    double ratio_min; /* their spread */
    double ratio_max;
    /* against the case's ceiling (bench_case_t.ceiling), when it has one */
    bool ceil_paired; /* per-run ratios from interleaved runs, as above */
    double ceil_ratio, ceil_min, ceil_max;
    /* steady cases: runs redone because a thread was off its CPU, and runs counted although
     * they were (the last try) */
    int redone, disturbed_kept;
} result_t;

static const bench_case_t *g_cases[MAX_CASES];
static result_t g_results[MAX_CASES];
static size_t g_ncases;
static bool g_steady[MAX_CASES]; /* runs checked for other work (mark_steady) */

#define STEADY_OFF_MAX 0.10 /* share of its run a thread may spend off its CPU */
#define STEADY_TRIES   5    /* runs at most, the first included */

static struct {
    bool json;
    bool quick;
    bool list;
    int runs;
    const char *filter;
} g_opt = {false, false, false, 5, NULL};

void bench_register(const bench_case_t *c)
{
    if (g_ncases < MAX_CASES)
        g_cases[g_ncases++] = c;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This thread's CPU time, ns. */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct worker {
    const bench_case_t *c;
    void *state;
    int tid;
    uint64_t iters;
    pthread_barrier_t *barrier;
    int64_t start, stop;
    int64_t cpu; /* CPU time of the thread over its run (read outside the timed span) */
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    pthread_barrier_wait(w->barrier);
    int64_t cpu0 = thread_cpu_ns();
    w->start = now_ns();
    w->c->run(w->state, w->tid, w->iters);
    w->stop = now_ns();
    w->cpu = thread_cpu_ns() - cpu0;
    return NULL;
}

static uint64_t case_iters(const bench_case_t *c)
{
    uint64_t n = c->iters ? c->iters : 1000000;
    if (g_opt.quick) {
        n /= 1000;
        if (n < 10)
            n = n < 1 ? 1 : n;
    }
    return n;
}

/* The threads a case runs on: its own count, within 1..BENCH_MAX_THREADS. */
static int case_threads(const bench_case_t *c)
{
    return c->threads < 1 ? 1 : c->threads > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : c->threads;
}

/* One timed run; returns elapsed ns and fills *value and *mid (the run's midpoint, ns on
 * CLOCK_MONOTONIC), either of which may be NULL, and *on_cpu: the least share of its run that
 * any thread spent on a CPU (its CPU time over its wall time). */
static int64_t run_attempt(const bench_case_t *c, double *value, int64_t *mid, double *on_cpu)
{
    int threads = case_threads(c);
    void *state = c->setup ? c->setup(threads) : NULL;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    worker_t w[BENCH_MAX_THREADS];
    pthread_t th[BENCH_MAX_THREADS];
    uint64_t iters = case_iters(c);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker_t){c, state, i, iters, &barrier, 0, 0};
        if (i > 0)
            pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    worker_main(&w[0]);
    for (int i = 1; i < threads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    int64_t start = w[0].start, stop = w[0].stop;
    *on_cpu = 1.0;
    for (int i = 0; i < threads; i++) {
        if (w[i].start < start)
            start = w[i].start;
        if (w[i].stop > stop)
            stop = w[i].stop;
        /* (the CPU time also counts the two clock reads around the span: a share may pass 1) */
        double share =
            w[i].stop > w[i].start ? (double)w[i].cpu / (double)(w[i].stop - w[i].start) : 1.0;
        if (share < *on_cpu)
            *on_cpu = share;
    }
    if (value != NULL)
        *value = c->value ? c->value(state) : 0.0;
    if (mid != NULL)
        *mid = start + (stop - start) / 2;
    if (c->teardown)
        c->teardown(state);
    return stop - start;
}

static int find_case(const char *name)
{
    for (size_t i = 0; i < g_ncases; i++)
        if (strcmp(g_cases[i]->name, name) == 0)
            return (int)i;
    return -1;
}

/* One run of case c (see "Steady runs" in the DESIGN comment): a steady case's run in which a
 * thread was off its CPU for more than STEADY_OFF_MAX of its span is redone, at most
 * STEADY_TRIES runs in all; the last one counts whatever it was. */
static int64_t run_once(const bench_case_t *c, double *value, int64_t *mid)
{
    int idx = find_case(c->name);
    bool steady = idx >= 0 && g_steady[idx];
    for (int attempt = 1;; attempt++) {
        double on_cpu = 1.0;
        int64_t el = run_attempt(c, value, mid, &on_cpu);
        if (!steady || on_cpu >= 1.0 - STEADY_OFF_MAX)
            return el;
        if (attempt == STEADY_TRIES) {
            g_results[idx].disturbed_kept++;
            return el;
        }
        g_results[idx].redone++;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The timed runs per case: at least 5, one with --quick, at most 64. */
static int runs_per_case(void)
{
    int runs = g_opt.runs < 5 && !g_opt.quick ? 5 : g_opt.runs;
    if (g_opt.quick)
        runs = 1;
    return runs > 64 ? 64 : runs;
}

/* Fill a result from n (<= 64) runs' ns/op and values. Sorts both arrays. */
static void set_medians(const bench_case_t *c, result_t *res, double *ns, double *vals, int n)
{
    qsort(ns, (size_t)n, sizeof(double), cmp_double);
    qsort(vals, (size_t)n, sizeof(double), cmp_double);
    res->ns_per_op = ns[n / 2];
    res->ops_per_s = ns[n / 2] > 0 ? 1e9 * case_threads(c) / ns[n / 2] : 0;
    res->value = vals[n / 2];
    res->done = true;
}

/* Why a case cannot run (its own reason, or its baseline's), or NULL. */
static const char *why_skipped(const bench_case_t *c)
{
    const char *why = c->unavailable ? c->unavailable() : NULL;
    int b = c->baseline ? find_case(c->baseline) : -1;
    if (why == NULL && b >= 0 && g_results[b].skipped != NULL)
        why = g_results[b].skipped;
    return why;
}

static void measure(size_t idx)
{
    const bench_case_t *c = g_cases[idx];
    if (g_results[idx].done)
        return;
    const char *why = why_skipped(c);
    if (why != NULL) {
        g_results[idx].skipped = why;
        g_results[idx].done = true;
        return;
    }
    double value = 0;
    run_once(c, NULL, NULL); /* warm-up */
    int runs = runs_per_case();
    double ns[64], vals[64];
    uint64_t iters = case_iters(c);
    for (int r = 0; r < runs; r++) {
        int64_t el = run_once(c, &value, NULL);
        ns[r] = (double)el / (double)iters;
        vals[r] = value;
    }
    set_medians(c, &g_results[idx], ns, vals, runs);
}

/* A case run's ratio to baseline b, whose runs r and r + 1 bracket it: b's ns/op
 * interpolated, by time, at the case run's midpoint (see the header comment). */
static double pair_ratio(const bench_case_t *c, const bench_case_t *b, const double *b_ns,
                         const int64_t *b_mid, int r, double c_ns, int64_t c_mid)
{
    double span = (double)(b_mid[r + 1] - b_mid[r]);
    double t = span > 0 ? (double)(c_mid - b_mid[r]) / span : 0.5;
    double bi = b_ns[r] + t * (b_ns[r + 1] - b_ns[r]);
    if (c->goal_kind == BENCH_GOAL_SPEEDUP_MIN) /* ops/s over ops/s */
        return c_ns > 0 ? (double)case_threads(c) * bi / ((double)case_threads(b) * c_ns) : 0;
    return bi > 0 ? c_ns / bi : 0;
}

/* The median and spread of n (<= 64) per-run ratios (sorts them). */
static void ratio_stats(double *ratio, int n, double *med, double *lo, double *hi)
{
    qsort(ratio, (size_t)n, sizeof(double), cmp_double);
    *med = ratio[n / 2];
    *lo = ratio[0];
    *hi = ratio[n - 1];
}

/* A paired baseline has no baseline of its own. */
static bool is_paired_baseline(const bench_case_t *c)
{
    return c->paired && c->baseline == NULL;
}

#define MAX_GROUP 16

/* Measure the paired baseline `bidx` interleaved with every wanted case that names it (see
 * the header comment); a baseline none of whose cases is wanted is measured alone. */
static void measure_group(size_t bidx, const bool *want)
{
    const bench_case_t *b = g_cases[bidx];
    if (g_results[bidx].done)
        return;
    const char *why = why_skipped(b);
    if (why != NULL) { /* its cases inherit the reason in measure() */
        g_results[bidx].skipped = why;
        g_results[bidx].done = true;
        return;
    }
    size_t m[MAX_GROUP];
    int k = 0;
    for (size_t i = 0; i < g_ncases && k < MAX_GROUP; i++) {
        const bench_case_t *c = g_cases[i];
        if (!want[i] || g_results[i].done || c->baseline == NULL ||
            strcmp(c->baseline, b->name) != 0 || is_paired_baseline(c))
            continue;
        if ((why = why_skipped(c)) != NULL) {
            g_results[i].skipped = why;
            g_results[i].done = true;
            continue;
        }
        m[k++] = i;
    }
    if (k == 0) {
        measure(bidx);
        return;
    }
    /* the ceilings of those cases not measured yet, paired: run in each round after b */
    size_t e[MAX_GROUP];
    int ke = 0;
    for (int j = 0; j < k; j++) {
        const char *cn = g_cases[m[j]]->ceiling;
        int ei = cn != NULL ? find_case(cn) : -1;
        if (ei < 0 || (size_t)ei == bidx || g_results[ei].done || !is_paired_baseline(g_cases[ei]))
            continue;
        bool dup = false;
        for (int q = 0; q < ke; q++)
            dup |= e[q] == (size_t)ei;
        if (!dup && ke < MAX_GROUP && (why = why_skipped(g_cases[ei])) == NULL)
            e[ke++] = (size_t)ei;
    }
    int runs = runs_per_case();
    /* b_* and e_* hold runs + 1 entries: no more than 65 */
    double b_ns[65], b_sorted[65], b_vals[65], c_ns[MAX_GROUP][64], c_vals[MAX_GROUP][64];
    int64_t b_mid[65], c_mid[MAX_GROUP][64];
    static double e_ns[MAX_GROUP][65], e_vals[MAX_GROUP][65];
    static int64_t e_mid[MAX_GROUP][65];
    double value = 0;
    run_once(b, NULL, NULL); /* warm-ups */
    for (int q = 0; q < ke; q++)
        run_once(g_cases[e[q]], NULL, NULL);
    for (int j = 0; j < k; j++)
        run_once(g_cases[m[j]], NULL, NULL);
    uint64_t b_iters = case_iters(b);
    for (int r = 0; r <= runs; r++) {
        b_ns[r] = (double)run_once(b, &value, &b_mid[r]) / (double)b_iters;
        b_vals[r] = value;
        for (int q = 0; q < ke; q++) {
            const bench_case_t *ec = g_cases[e[q]];
            e_ns[q][r] = (double)run_once(ec, &value, &e_mid[q][r]) / (double)case_iters(ec);
            e_vals[q][r] = value;
        }
        if (r == runs)
            break;
        for (int j = 0; j < k; j++) {
            const bench_case_t *c = g_cases[m[j]];
            c_ns[j][r] = (double)run_once(c, &value, &c_mid[j][r]) / (double)case_iters(c);
            c_vals[j][r] = value;
        }
    }
    for (int j = 0; j < k; j++) {
        const bench_case_t *c = g_cases[m[j]];
        result_t *res = &g_results[m[j]];
        double ratio[64];
        for (int r = 0; r < runs; r++)
            ratio[r] = pair_ratio(c, b, b_ns, b_mid, r, c_ns[j][r], c_mid[j][r]);
        res->paired = true;
        res->pairs = runs;
        ratio_stats(ratio, runs, &res->ratio, &res->ratio_min, &res->ratio_max);
        for (int q = 0; q < ke; q++) {
            if (c->ceiling == NULL || strcmp(c->ceiling, g_cases[e[q]]->name) != 0)
                continue;
            const bench_case_t *ec = g_cases[e[q]];
            for (int r = 0; r < runs; r++)
                ratio[r] = pair_ratio(c, ec, e_ns[q], e_mid[q], r, c_ns[j][r], c_mid[j][r]);
            res->ceil_paired = true;
            ratio_stats(ratio, runs, &res->ceil_ratio, &res->ceil_min, &res->ceil_max);
        }
        set_medians(c, res, c_ns[j], c_vals[j], runs);
    }
    for (int q = 0; q < ke; q++)
        set_medians(g_cases[e[q]], &g_results[e[q]], e_ns[q], e_vals[q], runs + 1);
    memcpy(b_sorted, b_ns, sizeof(double) * (size_t)(runs + 1));
    set_medians(b, &g_results[bidx], b_sorted, b_vals, runs + 1);
}

static bool selected(const bench_case_t *c)
{
    return g_opt.filter == NULL || strstr(c->name, g_opt.filter) != NULL;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void report(size_t idx, int *met_count, int *goal_count)
{
    const bench_case_t *c = g_cases[idx];
    result_t *r = &g_results[idx];
    if (r->skipped != NULL) {
        if (g_opt.json) {
            printf("{\"case\":");
            json_str(c->name);
            printf(",\"skipped\":");
            json_str(r->skipped);
            printf("}\n");
        } else {
            printf("%-34s skipped: %s\n", c->name, r->skipped);
        }
        fflush(stdout);
        return;
    }
    int b = c->baseline ? find_case(c->baseline) : -1;
    double ratio = 0;
    bool has_goal = c->goal_kind != BENCH_GOAL_NONE;
    bool met = false;
    if (r->paired) {
        ratio = r->ratio;
    } else if (b >= 0) {
        result_t *br = &g_results[b];
        if (c->goal_kind == BENCH_GOAL_SPEEDUP_MIN)
            ratio = br->ops_per_s > 0 ? r->ops_per_s / br->ops_per_s : 0;
        else
            ratio = br->ns_per_op > 0 ? r->ns_per_op / br->ns_per_op : 0;
    }
    switch (c->goal_kind) {
    case BENCH_GOAL_NS_MAX:
        met = r->ns_per_op <= c->goal;
        break;
    case BENCH_GOAL_RATIO_MAX:
        met = b >= 0 && ratio <= c->goal;
        break;
    case BENCH_GOAL_SPEEDUP_MIN:
        met = b >= 0 && ratio >= c->goal;
        break;
    case BENCH_GOAL_VALUE_MAX:
        met = r->value <= c->goal;
        break;
    case BENCH_GOAL_NONE:
        break;
    }
    if (has_goal) {
        (*goal_count)++;
        if (met)
            (*met_count)++;
    }
    /* the ceiling's ratio: paired (measure_group), else from the two medians */
    int ci = c->ceiling ? find_case(c->ceiling) : -1;
    double ceil = r->ceil_ratio;
    if (ci >= 0 && !r->ceil_paired && g_results[ci].done && g_results[ci].skipped == NULL) {
        result_t *cr = &g_results[ci];
        if (c->goal_kind == BENCH_GOAL_SPEEDUP_MIN)
            ceil = cr->ops_per_s > 0 ? r->ops_per_s / cr->ops_per_s : 0;
        else
            ceil = cr->ns_per_op > 0 ? r->ns_per_op / cr->ns_per_op : 0;
    } else if (!r->ceil_paired) {
        ci = -1;
    }
    int threads = case_threads(c);
    if (g_opt.json) {
        printf("{\"case\":");
        json_str(c->name);
        printf(",\"threads\":%d,\"ops_per_s\":%.1f,\"ns_per_op\":%.3f,\"baseline\":", threads,
               r->ops_per_s, r->ns_per_op);
        json_str(c->baseline ? c->baseline : "");
        printf(",\"ratio\":%.3f,\"goal\":", ratio);
        json_str(c->goal_text ? c->goal_text : "");
        if (c->goal_kind == BENCH_GOAL_VALUE_MAX) {
            printf(",\"value\":%.2f,\"unit\":", r->value);
            json_str(c->value_unit ? c->value_unit : "");
        }
        printf(",\"met\":%s,\"paired\":%s", has_goal ? (met ? "true" : "false") : "null",
               r->paired ? "true" : "false");
        if (r->paired)
            printf(",\"pairs\":%d,\"ratio_min\":%.3f,\"ratio_max\":%.3f", r->pairs, r->ratio_min,
                   r->ratio_max);
        if (g_steady[idx])
            printf(",\"steady\":true,\"redone\":%d,\"disturbed_kept\":%d", r->redone,
                   r->disturbed_kept);
        if (ci >= 0) {
            printf(",\"ceiling\":");
            json_str(c->ceiling);
            printf(",\"ceiling_ratio\":%.3f", ceil);
            if (r->ceil_paired)
                printf(",\"ceiling_ratio_min\":%.3f,\"ceiling_ratio_max\":%.3f", r->ceil_min,
                       r->ceil_max);
        }
        printf("}\n");
    } else {
        char extra[256] = "";
        int o = 0;
        if (c->goal_kind == BENCH_GOAL_VALUE_MAX)
            o = snprintf(extra, sizeof(extra), " [%.1f %s]", r->value,
                         c->value_unit ? c->value_unit : "");
        if (r->paired && o >= 0 && (size_t)o < sizeof(extra))
            o += snprintf(extra + o, sizeof(extra) - (size_t)o, " [paired x%d: %.2f-%.2f]",
                          r->pairs, r->ratio_min, r->ratio_max);
        if (r->redone + r->disturbed_kept > 0 && o >= 0 && (size_t)o < sizeof(extra))
            o += snprintf(extra + o, sizeof(extra) - (size_t)o, " [redone %d, disturbed kept %d]",
                          r->redone, r->disturbed_kept);
        if (ci >= 0 && o >= 0 && (size_t)o < sizeof(extra)) {
            if (r->ceil_paired)
                snprintf(extra + o, sizeof(extra) - (size_t)o, " [%s: %.2f (%.2f-%.2f)]",
                         c->ceiling, ceil, r->ceil_min, r->ceil_max);
            else
                snprintf(extra + o, sizeof(extra) - (size_t)o, " [%s: %.2f]", c->ceiling, ceil);
        }
        printf("%-34s %2d %14.0f %11.2f  %-26s %7.2f  %-22s %s%s\n", c->name, threads, r->ops_per_s,
               r->ns_per_op, c->baseline ? c->baseline : "-", ratio,
               c->goal_text ? c->goal_text : "-", has_goal ? (met ? "met" : "NOT met") : "", extra);
    }
    fflush(stdout);
}

/* Steady cases (DESIGN, "Steady runs"): an in-process case whose goal is a speed-up over
 * threads, when each of its threads can have a CPU of its own, and the case it is compared
 * with. */
static void mark_steady(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (size_t i = 0; i < g_ncases; i++) {
        const bench_case_t *c = g_cases[i];
        int b = c->baseline ? find_case(c->baseline) : -1;
        if (c->goal_kind != BENCH_GOAL_SPEEDUP_MIN || case_threads(c) < 2 ||
            case_threads(c) > ncpu || b < 0 || is_paired_baseline(g_cases[b]))
            continue;
        g_steady[i] = true;
        g_steady[b] = true;
    }
}

static void usage(void)
{
    printf("usage: fdn-bench [--json] [--filter PATTERN] [--runs N] [--quick] [--list]\n"
           "  --json     one JSON object per case and line\n"
           "  --filter   run only cases whose name contains PATTERN (and their baselines)\n"
           "  --runs N   timed runs per case (median reported; at least 5); a paired\n"
           "             baseline runs N + 1 times, between its cases' runs\n"
           "  --quick    tiny counts, one run: a smoke test, figures meaningless\n"
           "  --list     list the cases\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            g_opt.json = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            g_opt.quick = true;
        } else if (strcmp(argv[i], "--list") == 0) {
            g_opt.list = true;
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            g_opt.filter = argv[++i];
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            long n = strtol(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != '\0' || n < 1 || n > 64) {
                fprintf(stderr, "fdn-bench: --runs takes 1..64\n");
                return 2;
            }
            g_opt.runs = (int)n;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "fdn-bench: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    mark_steady();
    if (g_opt.list) {
        for (size_t i = 0; i < g_ncases; i++)
            printf("%s (threads %d)%s%s\n", g_cases[i]->name, case_threads(g_cases[i]),
                   g_cases[i]->goal_text ? "  goal " : "",
                   g_cases[i]->goal_text ? g_cases[i]->goal_text : "");
        return 0;
    }
    /* Baselines first, in registration order, so the table reads top-down. */
    size_t order[MAX_CASES], n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < g_ncases; i++)
            if ((g_cases[i]->baseline == NULL) == (pass == 0))
                order[n++] = i;
    bool want[MAX_CASES] = {false};
    for (size_t i = 0; i < g_ncases; i++) {
        if (!selected(g_cases[i]))
            continue;
        want[i] = true;
        int ce = g_cases[i]->ceiling ? find_case(g_cases[i]->ceiling) : -1;
        if (ce >= 0)
            want[ce] = true;
        const char *b = g_cases[i]->baseline;
        for (int depth = 0; b != NULL && depth < 4; depth++) {
            int bi = find_case(b);
            if (bi < 0)
                break;
            want[bi] = true;
            b = g_cases[bi]->baseline;
        }
    }
    if (!g_opt.json)
        printf("%-34s %2s %14s %11s  %-26s %7s  %-22s %s\n", "case", "th", "ops/s", "ns/op",
               "baseline", "ratio", "goal", "met");
    int met = 0, goals = 0, ran = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (!want[i])
            continue;
        /* A case's baseline is measured before the case itself; a paired baseline together
         * with its cases. */
        int bi = g_cases[i]->baseline ? find_case(g_cases[i]->baseline) : -1;
        if (bi >= 0 && is_paired_baseline(g_cases[bi]))
            measure_group((size_t)bi, want);
        else if (bi >= 0)
            measure((size_t)bi);
        if (is_paired_baseline(g_cases[i]))
            measure_group(i, want);
        else
            measure(i);
        report(i, &met, &goals);
        ran++;
    }
    if (!g_opt.json)
        printf("\n%d cases run; this machine meets %d of %d goals%s\n", ran, met, goals,
               g_opt.quick ? " (quick mode: figures are not meaningful)" : "");
    return ran > 0 ? 0 : 1;
}
