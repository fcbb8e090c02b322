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
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/registry.h>

#include "bench.h"
#include "storage/etcd_client.h"

#ifndef FDN_SOURCE_DIR
#define FDN_SOURCE_DIR "."
#endif

#define NENTRIES 1000

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_dir[64];
static char g_url[128];
static const char *g_why = "not started";
static fdn_registry_t *g_reg;
static fdn__etcd_t *g_cli;
static char g_names[NENTRIES][24];

static void stop_server(void)
{
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
           .run = put_run)

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
           .run = range_run)

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
