/*
 * Benchmarks of the limiter's Redis backend against a Redis the bench starts itself
 * (scripts/redis-server.sh on a free loopback port, stopped at exit; the cases are skipped,
 * saying why, when it cannot start).
 *
 *   baseline.redis.evalsha[.8t|.50c]  the same Lua script called with raw hiredis EVALSHA,
 *                                one connection per thread (50c: 50 threads, 50 connections):
 *                                what the network and Redis cost
 *   limiter.redis.check[.8t|.50c]  fdn_limiter_check on the Redis backend with a pool of one
 *                                connection per thread, distinct keys per thread, a token
 *                                bucket that always allows (no deny-cache answers). With as
 *                                many connections as threads a check never queues, so this is
 *                                the per-check cost of the backend.
 *   limiter.redis.check.8t.pool2, .50c.pool8  the same load on fewer connections than
 *                                threads: checks queue while every connection is busy and go
 *                                to Redis as pipelines (pipeline_max 32)
 *   limiter.redis.check.p50      one thread alternating a raw EVALSHA and a limiter check on
 *                                their own connections; the value is the limiter's median
 *                                latency minus the raw median (us added to a check's p50)
 * Goals (the Redis issue): >= 0.8x the raw EVALSHA rate at the same concurrency; <= 20 us
 * added to a check's p50.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <fdn/limiter.h>

#include "bench.h"
#include "storage/redis_limit.h"

#ifndef FDN_SOURCE_DIR
#define FDN_SOURCE_DIR "."
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_dir[64];
static char g_url[128];
static int g_port;
static const char *g_why = "not started";
static char g_sha[41];

static void stop_server(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/redis-server.sh stop %s >/dev/null 2>&1",
             FDN_SOURCE_DIR, g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fdn-bench: could not stop the Redis in %s\n", g_dir);
}

static void start_server(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/fdn-bench-redis-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        g_why = "mkdtemp failed";
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/redis-server.sh start %s 2>/dev/null",
             FDN_SOURCE_DIR, g_dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL || fgets(g_url, sizeof(g_url), p) == NULL) {
        if (p)
            pclose(p);
        g_why = "redis-server could not be started (scripts/deps.sh installs it)";
        return;
    }
    if (pclose(p) != 0) {
        g_why = "redis-server could not be started";
        return;
    }
    atexit(stop_server);
    g_url[strcspn(g_url, "\n")] = '\0';
    const char *colon = strrchr(g_url, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0; /* our own script's output */
    g_port = port > 0 && port < 65536 ? (int)port : 0;
    if (g_port == 0) {
        g_why = "scripts/redis-server.sh printed no port";
        return;
    }
    redisContext *c = redisConnect("127.0.0.1", g_port);
    size_t len;
    const char *script = fdn__rl_script_text(&len);
    redisReply *r = c && !c->err ? redisCommand(c, "SCRIPT LOAD %b", script, len) : NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(g_sha, r->str, 40);
        g_why = NULL;
    } else {
        g_why = "SCRIPT LOAD failed";
    }
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
}

static const char *unavailable(void)
{
    pthread_once(&g_once, start_server);
    return g_why;
}

/* ---- raw EVALSHA ------------------------------------------------------------------------- */

typedef struct raw {
    redisContext *c[BENCH_MAX_THREADS];
} raw_t;

static void *raw_setup(int threads)
{
    raw_t *s = calloc(1, sizeof(*s));
    for (int i = 0; s && i < threads; i++)
        s->c[i] = redisConnect("127.0.0.1", g_port);
    return s;
}

static void raw_run(void *state, int tid, uint64_t iters)
{
    raw_t *s = state;
    char key[48];
    snprintf(key, sizeof(key), "fdn:bench:{raw-%d}:1", tid);
    for (uint64_t i = 0; i < iters; i++) {
        redisReply *r =
            redisCommand(s->c[tid], "EVALSHA %s 1 %s 1 0 1 1000000000 1000 0 0", g_sha, key);
        BENCH_USE(r);
        if (r)
            freeReplyObject(r);
    }
}

static void raw_teardown(void *state)
{
    raw_t *s = state;
    for (int i = 0; s && i < BENCH_MAX_THREADS; i++)
        if (s->c[i])
            redisFree(s->c[i]);
    free(s);
}

/* ---- the limiter ------------------------------------------------------------------------- */

typedef struct lim {
    fdn_limiter_t *l;
} lim_t;

static lim_t *lim_open(uint32_t pool_size)
{
    lim_t *s = calloc(1, sizeof(*s));
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.backend = FDN_LIMITER_BACKEND_REDIS;
    o.redis.url = g_url;
    o.redis.pool_size = pool_size;
    o.redis.command_timeout_ms = 5000;
    o.redis.key_prefix = "fdn:bench:";
    if (s && fdn_limiter_create(&s->l, &o) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void *lim_setup(int threads)
{
    return lim_open((uint32_t)threads);
}

static void *lim_setup_pool2(int threads)
{
    (void)threads;
    return lim_open(2);
}

static void *lim_setup_pool8(int threads)
{
    (void)threads;
    return lim_open(8);
}

static void lim_run(void *state, int tid, uint64_t iters)
{
    lim_t *s = state;
    if (s == NULL)
        return;
    static const fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 1000000000, 1000, 0};
    char key[32];
    int kl = snprintf(key, sizeof(key), "lim-%d", tid);
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_limiter_check(s->l, key, (size_t)kl, &rule, 1, 0, NULL);
        BENCH_USE(rc);
    }
}

static void lim_teardown(void *state)
{
    lim_t *s = state;
    if (s)
        fdn_limiter_destroy(s->l);
    free(s);
}

#define REDIS_CASES(var, suffix, nthreads, iters_)                                                 \
    static const bench_case_t var##_raw = {.name = "baseline.redis.evalsha" suffix,                \
                                           .threads = nthreads,                                    \
                                           .iters = iters_,                                        \
                                           .setup = raw_setup,                                     \
                                           .run = raw_run,                                         \
                                           .teardown = raw_teardown,                               \
                                           .unavailable = unavailable,                             \
                                           .paired = true};                                        \
    BENCH_REGISTER(var##_raw)                                                                      \
    static const bench_case_t var##_lim = {.name = "limiter.redis.check" suffix,                   \
                                           .threads = nthreads,                                    \
                                           .iters = iters_,                                        \
                                           .baseline = "baseline.redis.evalsha" suffix,            \
                                           .goal_kind = BENCH_GOAL_SPEEDUP_MIN,                    \
                                           .goal = 0.8,                                            \
                                           .goal_text = ">= 0.8x",                                 \
                                           .setup = lim_setup,                                     \
                                           .run = lim_run,                                         \
                                           .teardown = lim_teardown,                               \
                                           .unavailable = unavailable};                            \
    BENCH_REGISTER(var##_lim)

REDIS_CASES(redis1, "", 1, 20000)
REDIS_CASES(redis8, ".8t", 8, 5000)
REDIS_CASES(redis50, ".50c", 50, 1000)

#define PIPELINED_CASE(var, name_, nthreads, iters_, base, setup_)                                 \
    static const bench_case_t var = {.name = name_,                                                \
                                     .threads = nthreads,                                          \
                                     .iters = iters_,                                              \
                                     .baseline = base,                                             \
                                     .goal_kind = BENCH_GOAL_SPEEDUP_MIN,                          \
                                     .goal = 0.8,                                                  \
                                     .goal_text = ">= 0.8x",                                       \
                                     .setup = setup_,                                              \
                                     .run = lim_run,                                               \
                                     .teardown = lim_teardown,                                     \
                                     .unavailable = unavailable};                                  \
    BENCH_REGISTER(var)

PIPELINED_CASE(redis8_pool2, "limiter.redis.check.8t.pool2", 8, 5000, "baseline.redis.evalsha.8t",
               lim_setup_pool2)
PIPELINED_CASE(redis50_pool8, "limiter.redis.check.50c.pool8", 50, 1000,
               "baseline.redis.evalsha.50c", lim_setup_pool8)

/* ---- added latency ------------------------------------------------------------------------ */

#define P50_ITERS 20000u

typedef struct p50 {
    raw_t *raw;
    lim_t *lim;
    uint32_t n;
    int64_t *raw_ns, *lim_ns;
} p50_t;

static void p50_teardown(void *state);

static void *p50_setup(int threads)
{
    (void)threads;
    p50_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->raw = raw_setup(1);
    s->lim = lim_open(1);
    s->raw_ns = calloc(P50_ITERS, sizeof(int64_t));
    s->lim_ns = calloc(P50_ITERS, sizeof(int64_t));
    if (!s->raw || !s->lim || !s->raw_ns || !s->lim_ns) {
        p50_teardown(s);
        return NULL;
    }
    return s;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void p50_run(void *state, int tid, uint64_t iters)
{
    p50_t *s = state;
    if (s == NULL)
        return;
    (void)tid;
    static const fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 1000000000, 1000, 0};
    for (uint64_t i = 0; i < iters && s->n < P50_ITERS; i++, s->n++) {
        int64_t t0 = now_ns();
        raw_run(s->raw, 0, 1);
        int64_t t1 = now_ns();
        int rc = fdn_limiter_check(s->lim->l, "p50", 3, &rule, 1, 0, NULL);
        BENCH_USE(rc);
        int64_t t2 = now_ns();
        s->raw_ns[s->n] = t1 - t0;
        s->lim_ns[s->n] = t2 - t1;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* us added to the median: the limiter's median check minus the raw median EVALSHA */
static double p50_value(void *state)
{
    p50_t *s = state;
    if (s == NULL || s->n == 0)
        return 0.0;
    qsort(s->raw_ns, s->n, sizeof(int64_t), cmp_i64);
    qsort(s->lim_ns, s->n, sizeof(int64_t), cmp_i64);
    return (double)(s->lim_ns[s->n / 2] - s->raw_ns[s->n / 2]) / 1000.0;
}

static void p50_teardown(void *state)
{
    p50_t *s = state;
    if (s == NULL)
        return;
    if (s->raw)
        raw_teardown(s->raw);
    if (s->lim)
        lim_teardown(s->lim);
    free(s->raw_ns);
    free(s->lim_ns);
    free(s);
}

static const bench_case_t redis_p50 = {.name = "limiter.redis.check.p50",
                                       .threads = 1,
                                       .iters = 5000,
                                       .baseline = "baseline.redis.evalsha",
                                       .goal_kind = BENCH_GOAL_VALUE_MAX,
                                       .goal = 20.0,
                                       .goal_text = "<= 20 us added to p50",
                                       .setup = p50_setup,
                                       .run = p50_run,
                                       .teardown = p50_teardown,
                                       .value = p50_value,
                                       .value_unit = "us added to p50",
                                       .unavailable = unavailable};
BENCH_REGISTER(redis_p50)
