/*
 * fdn-bench: the benchmark harness.
 *
 * DESIGN: cases register themselves at load time (BENCH_REGISTER). For each selected case the
 * harness runs a warm-up and then `runs` (>= 5) timed runs; each run starts `threads`
 * threads behind a barrier and times from the earliest start to the latest finish. The
 * median run gives ns_per_op (per-thread time per operation) and ops_per_s (all threads).
 * A case's baseline is always measured in the same process run (selected automatically when
 * a filter picks the case), so every figure is also printed as a ratio.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define MAX_CASES 256

typedef struct result {
    bool done;
    const char *skipped; /* why the case did not run, or NULL */
    double ns_per_op;
    double ops_per_s;
    double value;
} result_t;

static const bench_case_t *g_cases[MAX_CASES];
static result_t g_results[MAX_CASES];
static size_t g_ncases;

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

typedef struct worker {
    const bench_case_t *c;
    void *state;
    int tid;
    uint64_t iters;
    pthread_barrier_t *barrier;
    int64_t start, stop;
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    pthread_barrier_wait(w->barrier);
    w->start = now_ns();
    w->c->run(w->state, w->tid, w->iters);
    w->stop = now_ns();
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

/* One timed run; returns elapsed ns and fills *value. */
static int64_t run_once(const bench_case_t *c, double *value)
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
    for (int i = 1; i < threads; i++) {
        if (w[i].start < start)
            start = w[i].start;
        if (w[i].stop > stop)
            stop = w[i].stop;
    }
    if (value != NULL)
        *value = c->value ? c->value(state) : 0.0;
    if (c->teardown)
        c->teardown(state);
    return stop - start;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int find_case(const char *name)
{
    for (size_t i = 0; i < g_ncases; i++)
        if (strcmp(g_cases[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static void measure(size_t idx)
{
    const bench_case_t *c = g_cases[idx];
    if (g_results[idx].done)
        return;
    const char *why = c->unavailable ? c->unavailable() : NULL;
    int b = c->baseline ? find_case(c->baseline) : -1;
    if (why == NULL && b >= 0 && g_results[b].skipped != NULL)
        why = g_results[b].skipped;
    if (why != NULL) {
        g_results[idx].skipped = why;
        g_results[idx].done = true;
        return;
    }
    double value = 0;
    run_once(c, NULL); /* warm-up */
    int runs = g_opt.runs < 5 && !g_opt.quick ? 5 : g_opt.runs;
    if (g_opt.quick)
        runs = 1;
    double ns[64], vals[64];
    if (runs > 64)
        runs = 64;
    int threads = case_threads(c);
    uint64_t iters = case_iters(c);
    for (int r = 0; r < runs; r++) {
        int64_t el = run_once(c, &value);
        ns[r] = (double)el / (double)iters;
        vals[r] = value;
    }
    qsort(ns, (size_t)runs, sizeof(double), cmp_double);
    qsort(vals, (size_t)runs, sizeof(double), cmp_double);
    g_results[idx].ns_per_op = ns[runs / 2];
    g_results[idx].ops_per_s = ns[runs / 2] > 0 ? 1e9 * threads / ns[runs / 2] : 0;
    g_results[idx].value = vals[runs / 2];
    g_results[idx].done = true;
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
    if (b >= 0) {
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
        printf(",\"met\":%s}\n", has_goal ? (met ? "true" : "false") : "null");
    } else {
        char extra[64] = "";
        if (c->goal_kind == BENCH_GOAL_VALUE_MAX)
            snprintf(extra, sizeof(extra), " [%.1f %s]", r->value,
                     c->value_unit ? c->value_unit : "");
        printf("%-34s %2d %14.0f %11.2f  %-26s %7.2f  %-22s %s%s\n", c->name, threads, r->ops_per_s,
               r->ns_per_op, c->baseline ? c->baseline : "-", ratio,
               c->goal_text ? c->goal_text : "-", has_goal ? (met ? "met" : "NOT met") : "", extra);
    }
    fflush(stdout);
}

static void usage(void)
{
    printf("usage: fdn-bench [--json] [--filter PATTERN] [--runs N] [--quick] [--list]\n"
           "  --json     one JSON object per case and line\n"
           "  --filter   run only cases whose name contains PATTERN (and their baselines)\n"
           "  --runs N   timed runs per case (median reported; at least 5)\n"
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
        /* A case's baseline is measured before the case itself. */
        int bi = g_cases[i]->baseline ? find_case(g_cases[i]->baseline) : -1;
        if (bi >= 0)
            measure((size_t)bi);
        measure(i);
        report(i, &met, &goals);
        ran++;
    }
    if (!g_opt.json)
        printf("\n%d cases run; this machine meets %d of %d goals%s\n", ran, met, goals,
               g_opt.quick ? " (quick mode: figures are not meaningful)" : "");
    return ran > 0 ? 0 : 1;
}
