/*
 * Benchmarks of the shared registry on etcd against an etcd the bench starts itself
 * (scripts/etcd-server.sh on free loopback ports, stopped at exit; the cases are skipped,
 * saying why, when it cannot start).
 *
 *   baseline.etcd.put / .range     one raw gateway call (storage/etcd_client.c): what HTTP,
 *                                  JSON and etcd cost per call
 *   registry.etcd.lookup           fdn_registry_lookup_shared + release over 1000 cached
 *                                  entries: no network; goal <= 2x the local
 *                                  registry.lookup
 *   registry.etcd.register         fdn_registry_register_shared of a new name: the
 *                                  create-if-absent txn and the wait until this process's
 *                                  watch has delivered it to the cache (registration to
 *                                  cache propagation)
 *   baseline.etcd.put.16t / .range.16t  the raw calls on 16 threads, a client each
 *   registry.etcd.propagation.8w   p99 (ms) of the time from the start of a registration
 *                                  on one registry until 8 other registries (8 watches of
 *                                  the namespace, as 8 processes would have) all have it in
 *                                  their caches; goal p99 <= 100 ms
 *   config.etcd.propagation.8w     the same for a config update (compare-and-swap on one
 *                                  config) until 8 other configs following the namespace read
 *                                  the new value; goal p99 <= 100 ms
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fdn/config.h>
#include <fdn/registry.h>

#include "bench.h"
#include "storage/etcd_client.h"

#ifndef FDN_SOURCE_DIR
#define FDN_SOURCE_DIR "."
#endif

#define NENTRIES 1000
#define NWATCH   8    /* watchers of the propagation cases */
#define NRAW     16   /* threads of the raw .16t cases */
#define NSAMPLES 4096 /* latency samples kept per run */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_dir[64];
static char g_url[128];
static const char *g_why = "not started";
static fdn_registry_t *g_reg;
static fdn__etcd_t *g_cli;
static char g_names[NENTRIES][24];
static fdn__etcd_t *g_clis[NRAW];
static fdn_registry_t *g_watch_reg[NWATCH + 1]; /* [0] registers, the others watch */
static fdn_config_t *g_watch_cfg[NWATCH + 1];   /* [0] updates, the others follow */

static void stop_server(void)
{
    for (int i = 0; i <= NWATCH; i++) {
        fdn_registry_destroy(g_watch_reg[i]);
        fdn_config_destroy(g_watch_cfg[i]);
    }
    for (int i = 0; i < NRAW; i++)
        fdn__etcd_destroy(g_clis[i]);
    fdn_registry_destroy(g_reg);
    fdn__etcd_destroy(g_cli);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/etcd-server.sh stop %s >/dev/null 2>&1",
             FDN_SOURCE_DIR, g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fdn-bench: could not stop the etcd in %s\n", g_dir);
}

static void start_server(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/fdn-bench-etcd-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        g_why = "mkdtemp failed";
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/etcd-server.sh start %s 2>/dev/null",
             FDN_SOURCE_DIR, g_dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL || fgets(g_url, sizeof(g_url), p) == NULL) {
        if (p)
            pclose(p);
        g_why = "etcd could not be started (scripts/deps.sh installs etcd-server)";
        return;
    }
    if (pclose(p) != 0) {
        g_why = "etcd could not be started";
        return;
    }
    atexit(stop_server);
    g_url[strcspn(g_url, "\n")] = '\0';
    if (fdn__etcd_create(&g_cli, g_url, 5000, NULL) != 0) {
        g_why = "etcd client";
        return;
    }
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = "bench";
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = g_url;
    eo.request_timeout_ms = 5000;
    if (fdn_registry_open(&g_reg, &ro, &eo, NULL) != 0) {
        g_why = "fdn_registry_open failed";
        return;
    }
    for (int i = 0; i < NENTRIES; i++) {
        snprintf(g_names[i], sizeof(g_names[i]), "service_%04d", i);
        if (fdn_registry_register_shared(g_reg, g_names[i], "i0", "http://10.0.0.1:80", NULL, 0,
                                         NULL) != 0) {
            g_why = "registering the entries failed";
            return;
        }
    }
    for (int i = 0; i < NRAW; i++) {
        if (fdn__etcd_create(&g_clis[i], g_url, 5000, NULL) != 0) {
            g_why = "etcd client";
            return;
        }
    }
    ro.name = "bench-propagation";
    static const char *const no_env[] = {NULL};
    for (int i = 0; i <= NWATCH; i++) {
        if (fdn_registry_open(&g_watch_reg[i], &ro, &eo, NULL) != 0) {
            g_why = "fdn_registry_open (propagation) failed";
            return;
        }
        fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
        co.envp = no_env;
        co.ignore_env = true;
        fdn_config_etcd_opts_t ceo = FDN_CONFIG_ETCD_OPTS_INIT;
        ceo.url = g_url;
        ceo.ns = "bench-propagation";
        ceo.request_timeout_ms = 5000;
        if (fdn_config_create(&g_watch_cfg[i], &co, NULL) != 0 ||
            fdn_config_follow_etcd(g_watch_cfg[i], &ceo, NULL) != 0) {
            g_why = "fdn_config_follow_etcd (propagation) failed";
            return;
        }
    }
    g_why = NULL;
}

static const char *unavailable(void)
{
    pthread_once(&g_once, start_server);
    return g_why;
}

static void *setup(int threads)
{
    (void)threads;
    return unavailable() == NULL ? g_reg : NULL;
}

/* What every case of this file shares: one thread on the bench's etcd (skipped, saying why,
 * without it). */
#define ETCD_SHARED .threads = 1, .setup = setup, .unavailable = unavailable

static void lookup_run(void *state, int tid, uint64_t iters)
{
    fdn_registry_t *reg = state;
    unsigned idx = (unsigned)tid * 7919u;
    for (uint64_t i = 0; i < iters; i++) {
        fdn_registry_instance_t *inst = NULL;
        idx = (idx + 613u) % NENTRIES;
        int rc = fdn_registry_lookup_shared(reg, g_names[idx], "i0", &inst, NULL);
        BENCH_USE(rc);
        BENCH_USE(inst);
        fdn_registry_instance_release(inst);
    }
}

BENCH_CASE(etcd_lookup, ETCD_SHARED, .name = "registry.etcd.lookup", .iters = 2000000,
           .baseline = "registry.lookup", .goal_kind = BENCH_GOAL_RATIO_MAX, .goal = 2.0,
           .goal_text = "<= 2x the local registry lookup (cached, no network)", .run = lookup_run)

static void put_run(void *state, int tid, uint64_t iters)
{
    (void)state;
    char key[64];
    snprintf(key, sizeof(key), "/bench/raw/%d", tid);
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn__etcd_put(g_cli, key, strlen(key), "v", 1, 0, NULL, NULL);
        BENCH_USE(rc);
    }
}

BENCH_CASE(etcd_put, ETCD_SHARED, .name = "baseline.etcd.put", .iters = 2000,
           .goal_kind = BENCH_GOAL_NONE, .goal_text = "raw gateway put (HTTP + JSON + raft commit)",
           .run = put_run, .paired = true)

static void range_run(void *state, int tid, uint64_t iters)
{
    (void)state;
    (void)tid;
    const char *key = "/bench/raw/0";
    for (uint64_t i = 0; i < iters; i++) {
        fdn__etcd_range_t r;
        int rc = fdn__etcd_range(g_cli, key, strlen(key), NULL, 0, &r, NULL);
        BENCH_USE(rc);
        if (rc == 0)
            fdn__etcd_range_clear(&r);
    }
}

BENCH_CASE(etcd_range, ETCD_SHARED, .name = "baseline.etcd.range", .iters = 2000,
           .goal_kind = BENCH_GOAL_NONE, .goal_text = "raw gateway range of one key",
           .run = range_run, .paired = true)

static void register_run(void *state, int tid, uint64_t iters)
{
    fdn_registry_t *reg = state;
    static unsigned run;
    unsigned r = __atomic_fetch_add(&run, 1, __ATOMIC_RELAXED);
    for (uint64_t i = 0; i < iters; i++) {
        char inst[48];
        snprintf(inst, sizeof(inst), "r%u-t%d-%llu", r, tid, (unsigned long long)i);
        int rc = fdn_registry_register_shared(reg, "registered", inst, "http://x", NULL, 0, NULL);
        BENCH_USE(rc);
    }
}

BENCH_CASE(etcd_register, ETCD_SHARED, .name = "registry.etcd.register", .iters = 500,
           .baseline = "baseline.etcd.put", .goal_kind = BENCH_GOAL_NONE,
           .goal_text = "create-if-absent txn + watch delivery to this process's cache",
           .run = register_run)

/* ---- raw calls on 16 threads ------------------------------------------------------------ */

static void put16_run(void *state, int tid, uint64_t iters)
{
    (void)state;
    char key[64];
    snprintf(key, sizeof(key), "/bench/raw16/%d", tid);
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn__etcd_put(g_clis[tid], key, strlen(key), "v", 1, 0, NULL, NULL);
        BENCH_USE(rc);
    }
}

BENCH_CASE(etcd_put16, .threads = NRAW, .setup = setup, .unavailable = unavailable,
           .name = "baseline.etcd.put.16t", .iters = 300, .baseline = "baseline.etcd.put",
           .goal_kind = BENCH_GOAL_NONE, .goal_text = "raw gateway put, 16 threads, a client each",
           .run = put16_run)

static void range16_run(void *state, int tid, uint64_t iters)
{
    (void)state;
    const char *key = "/bench/raw/0";
    for (uint64_t i = 0; i < iters; i++) {
        fdn__etcd_range_t r;
        int rc = fdn__etcd_range(g_clis[tid], key, strlen(key), NULL, 0, &r, NULL);
        BENCH_USE(rc);
        if (rc == 0)
            fdn__etcd_range_clear(&r);
    }
}

BENCH_CASE(etcd_range16, .threads = NRAW, .setup = setup, .unavailable = unavailable,
           .name = "baseline.etcd.range.16t", .iters = 300, .baseline = "baseline.etcd.range",
           .goal_kind = BENCH_GOAL_NONE,
           .goal_text = "raw gateway range, 16 threads, a client each", .run = range16_run)

/* ---- propagation to 8 watchers ------------------------------------------------------------ */

typedef struct prop {
    size_t n;
    int64_t ns[NSAMPLES];
} prop_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *prop_setup(int threads)
{
    (void)threads;
    if (unavailable() != NULL)
        return NULL;
    return calloc(1, sizeof(prop_t));
}

static void prop_teardown(void *state)
{
    free(state);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p99 of the run's samples, in ms */
static double prop_p99_ms(void *state)
{
    prop_t *p = state;
    if (p == NULL || p->n == 0)
        return 0.0;
    qsort(p->ns, p->n, sizeof(p->ns[0]), cmp_i64);
    size_t at = (p->n * 99 + 99) / 100;
    return (double)p->ns[(at > 0 ? at : 1) - 1] / 1e6;
}

static bool seen_by(fdn_registry_t *r, const char *inst)
{
    fdn_registry_instance_t *i = NULL;
    int rc = fdn_registry_lookup_shared(r, "prop", inst, &i, NULL);
    fdn_registry_instance_release(i);
    return rc == 0;
}

static void reg_prop_run(void *state, int tid, uint64_t iters)
{
    prop_t *p = state;
    static unsigned run;
    unsigned r = __atomic_fetch_add(&run, 1, __ATOMIC_RELAXED);
    for (uint64_t i = 0; p != NULL && i < iters && p->n < NSAMPLES; i++) {
        char inst[48];
        snprintf(inst, sizeof(inst), "r%u-t%d-%llu", r, tid, (unsigned long long)i);
        int64_t t0 = now_ns();
        if (fdn_registry_register_shared(g_watch_reg[0], "prop", inst, "http://x", NULL, 0, NULL) !=
            0)
            continue;
        int64_t dl = t0 + 5000000000LL; /* a lost one shows as 5 s */
        for (int w = 1; w <= NWATCH; w++)
            while (!seen_by(g_watch_reg[w], inst) && now_ns() < dl)
                sched_yield();
        p->ns[p->n++] = now_ns() - t0;
        (void)fdn_registry_unregister_shared(g_watch_reg[0], "prop", inst, NULL);
    }
}

BENCH_CASE(etcd_reg_prop, .threads = 1, .setup = prop_setup, .teardown = prop_teardown,
           .unavailable = unavailable, .name = "registry.etcd.propagation.8w", .iters = 200,
           .baseline = "baseline.etcd.put", .goal_kind = BENCH_GOAL_VALUE_MAX, .goal = 100.0,
           .goal_text = "p99 <= 100 ms from register to 8 watchers' caches", .run = reg_prop_run,
           .value = prop_p99_ms, .value_unit = "ms p99")

static void cfg_prop_run(void *state, int tid, uint64_t iters)
{
    prop_t *p = state;
    (void)tid;
    static int64_t next = 1;
    for (uint64_t i = 0; p != NULL && i < iters && p->n < NSAMPLES; i++) {
        int64_t want = ++next;
        int64_t t0 = now_ns();
        if (fdn_config_update_int(g_watch_cfg[0], "interface.max_results", want, NULL) != 0)
            continue;
        int64_t dl = t0 + 5000000000LL;
        for (int w = 1; w <= NWATCH; w++) {
            int64_t v = 0;
            while ((fdn_config_get_int(g_watch_cfg[w], "interface.max_results", &v) != 0 ||
                    v != want) &&
                   now_ns() < dl)
                sched_yield();
        }
        p->ns[p->n++] = now_ns() - t0;
    }
}

BENCH_CASE(etcd_cfg_prop, .threads = 1, .setup = prop_setup, .teardown = prop_teardown,
           .unavailable = unavailable, .name = "config.etcd.propagation.8w", .iters = 200,
           .baseline = "baseline.etcd.put", .goal_kind = BENCH_GOAL_VALUE_MAX, .goal = 100.0,
           .goal_text = "p99 <= 100 ms from update to 8 followers' reads", .run = cfg_prop_run,
           .value = prop_p99_ms, .value_unit = "ms p99")
