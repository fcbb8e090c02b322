/*
 * Benchmarks for the protection layer: closed-breaker overhead, limiter checks per algorithm
 * on an existing key (1 thread, and 2 threads on distinct keys for scaling), a limiter check
 * spread over 1 M distinct keys, and a protected call through all three layers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/limiter.h>
#include <fdn/protect.h>

#include "bench.h"

/* ---- breaker.call.closed -------------------------------------------------------------- */

static int noop(void *arg)
{
    BENCH_USE(arg);
    return 0;
}

static void *brk_setup(int threads)
{
    (void)threads;
    fdn_breaker_t *b = NULL;
    if (fdn_breaker_create(&b, "bench", NULL) != 0)
        return NULL;
    return b;
}

static void brk_run(void *state, int tid, uint64_t iters)
{
    (void)tid;
    fdn_breaker_t *b = state;
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_breaker_call(b, noop, b, NULL);
        BENCH_USE(rc);
    }
}

static void brk_teardown(void *state)
{
    fdn_breaker_destroy(state);
}

static const bench_case_t brk_closed = {.name = "breaker.call.closed",
                                        .threads = 1,
                                        .iters = 20000000,
                                        .baseline = "baseline.atomic_private",
                                        .goal_kind = BENCH_GOAL_NS_MAX,
                                        .goal = 10,
                                        .goal_text = "<= 10 ns",
                                        .setup = brk_setup,
                                        .run = brk_run,
                                        .teardown = brk_teardown};
BENCH_REGISTER(brk_closed)

/* ---- limiter.check.<algo> ----------------------------------------------------------- */

typedef struct lim_state {
    fdn_limiter_t *l;
    fdn_limit_rule_t rule;
    char keys[2][32];
    char **many; /* 1m_keys */
    size_t nmany;
} lim_state_t;

/* shards 0: the library's default (64) */
static lim_state_t *lim_new(fdn_limit_algo_t algo, uint32_t max_keys, uint32_t shards)
{
    lim_state_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    if (shards != 0)
        o.shards = shards;
    o.max_keys = max_keys;
    if (fdn_limiter_create(&s->l, &o) != 0) {
        free(s);
        return NULL;
    }
    /* a huge limit: every check takes the full admission path and passes */
    s->rule = (fdn_limit_rule_t){algo, (int64_t)1 << 31, 1000, 0};
    for (int i = 0; i < 2; i++) {
        snprintf(s->keys[i], sizeof(s->keys[i]), "bench:user-%d", i * 7919);
        fdn_limiter_check(s->l, s->keys[i], strlen(s->keys[i]), &s->rule, 1, 0, NULL);
    }
    return s;
}

static void lim_free(void *state)
{
    lim_state_t *s = state;
    if (!s)
        return;
    fdn_limiter_destroy(s->l);
    if (s->many) {
        for (size_t i = 0; i < s->nmany; i++)
            free(s->many[i]);
        free(s->many);
    }
    free(s);
}

static void *fw_setup(int t)
{
    (void)t;
    return lim_new(FDN_LIMIT_FIXED_WINDOW, 1u << 20, 1024);
}
static void *tb_setup(int t)
{
    (void)t;
    return lim_new(FDN_LIMIT_TOKEN_BUCKET, 1u << 20, 1024);
}
static void *gcra_setup(int t)
{
    (void)t;
    return lim_new(FDN_LIMIT_GCRA, 1u << 20, 1024);
}
static void *sw_setup(int t)
{
    (void)t;
    return lim_new(FDN_LIMIT_SLIDING_WINDOW, 1u << 20, 1024);
}

static void lim_run(void *state, int tid, uint64_t iters)
{
    lim_state_t *s = state;
    const char *k = s->keys[tid & 1];
    size_t kl = strlen(k);
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_limiter_check(s->l, k, kl, &s->rule, 1, 0, NULL);
        BENCH_USE(rc);
    }
}

#define LIM_CASES(var, algo, setupfn)                                                              \
    static const bench_case_t var##_1t = {.name = "limiter.check." algo,                           \
                                          .threads = 1,                                            \
                                          .iters = 3000000,                                        \
                                          .baseline = "baseline.mutex",                            \
                                          .goal_kind = BENCH_GOAL_NS_MAX,                          \
                                          .goal = 50,                                              \
                                          .goal_text = "<= 50 ns",                                 \
                                          .setup = setupfn,                                        \
                                          .run = lim_run,                                          \
                                          .teardown = lim_free};                                   \
    BENCH_REGISTER(var##_1t)                                                                       \
    static const bench_case_t var##_2t = {.name = "limiter.check." algo ".2t",                     \
                                          .threads = 2,                                            \
                                          .iters = 3000000,                                        \
                                          .baseline = "limiter.check." algo,                       \
                                          .goal_kind = BENCH_GOAL_SPEEDUP_MIN,                     \
                                          .goal = 1.7,                                             \
                                          .goal_text = ">= 1.7x",                                  \
                                          .setup = setupfn,                                        \
                                          .run = lim_run,                                          \
                                          .teardown = lim_free};                                   \
    BENCH_REGISTER(var##_2t)

LIM_CASES(fw, "fixed_window", fw_setup)
LIM_CASES(tb, "token_bucket", tb_setup)
LIM_CASES(gcra, "gcra", gcra_setup)
LIM_CASES(sw, "sliding_window", sw_setup)

/* ---- limiter.check.1m_keys, limiter.check.new_keys ------------------------------------- */

/* 1m_keys: checks of keys that already exist, spread over a table holding 1 M of them (the
 * setup inserts them, untimed). The keys sit in one flat array of fixed slots read in order,
 * as a server's key arrives in a request buffer that is already in cache; the table's own
 * accesses stay random because the key hash is. new_keys: each check creates its key.
 * The keys stay live for the whole case: a one-hour fixed window with a huge limit (the
 * single-key cases' token bucket refills within a nanosecond, so its cells are expired at the
 * next check and a shard that overflows sweeps them all away; that made most "existing" keys
 * new ones again), and room for twice the keys (shards hold max_keys / shards each, and a
 * shard's share of 1 M random keys varies). The limiter has the library's default 64 shards,
 * as a server's has: each holds 16 384 keys give or take ~130 (cap 32 768), all in tables of
 * 32 768 slots (reached at 10 241 keys, doubled past 20 480), 4 MiB each, past the 2 MiB
 * from which a table sits on transparent huge pages (limiter_store.c). With the 1 024 shards
 * it had, every table was 256 KiB and on 4 KiB pages: 256 MiB of them, far past what a TLB
 * maps with 4 KiB pages (a few MiB), so nearly every check also walked the page tables
 * (bench/README.md has the timings). */

#define MANY (1u << 20)
#define KEYSLOT 16

typedef struct many_state {
    lim_state_t *lim;
    char *keys; /* MANY slots of KEYSLOT bytes */
    uint8_t *lens;
} many_state_t;

static void many_free(void *state)
{
    many_state_t *m = state;
    if (!m)
        return;
    lim_free(m->lim);
    free(m->keys);
    free(m->lens);
    free(m);
}

static many_state_t *many_new(bool populate)
{
    many_state_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->lim = lim_new(FDN_LIMIT_FIXED_WINDOW, 2 * MANY, 0);
    m->keys = malloc((size_t)MANY * KEYSLOT);
    m->lens = malloc(MANY);
    if (!m->lim || !m->keys || !m->lens) {
        many_free(m);
        return NULL;
    }
    m->lim->rule.period_ms = 3600000;
    for (size_t i = 0; i < MANY; i++) {
        char *k = m->keys + i * KEYSLOT;
        int n = snprintf(k, KEYSLOT, "tenant-%zu", i);
        m->lens[i] = (uint8_t)n;
        if (populate)
            fdn_limiter_check(m->lim->l, k, (size_t)n, &m->lim->rule, 1, 0, NULL);
    }
    return m;
}

static void *many_setup(int t)
{
    (void)t;
    return many_new(true);
}

static void *new_keys_setup(int t)
{
    (void)t;
    return many_new(false);
}

static void many_run(void *state, int tid, uint64_t iters)
{
    (void)tid;
    many_state_t *m = state;
    size_t j = 0;
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_limiter_check(m->lim->l, m->keys + j * KEYSLOT, m->lens[j], &m->lim->rule, 1,
                                   0, NULL);
        BENCH_USE(rc);
        j = (j + 1) & (MANY - 1);
    }
}

static const bench_case_t many_keys = {.name = "limiter.check.1m_keys",
                                       .threads = 1,
                                       .iters = 2000000,
                                       .baseline = "baseline.random_access_128mb",
                                       .goal_kind = BENCH_GOAL_RATIO_MAX,
                                       .goal = 1.5,
                                       .goal_text = "<= 1.5x one random access",
                                       .setup = many_setup,
                                       .run = many_run,
                                       .teardown = many_free};
BENCH_REGISTER(many_keys)

static const bench_case_t new_keys = {.name = "limiter.check.new_keys",
                                      .threads = 1,
                                      .iters = MANY,
                                      .baseline = "limiter.check.1m_keys",
                                      .goal_kind = BENCH_GOAL_NONE,
                                      .goal_text = "informational",
                                      .setup = new_keys_setup,
                                      .run = many_run,
                                      .teardown = many_free};
BENCH_REGISTER(new_keys)

/* ---- protect.call.all_layers ---------------------------------------------------------- */

typedef struct prot_state {
    fdn_breakers_t *brk;
    fdn_limiter_t *lim;
    fdn_pools_t *pools;
    fdn_protect_t *p;
} prot_state_t;

static int mkconn(void **conn, void *user)
{
    (void)user;
    *conn = (void *)1;
    return 0;
}

static int pfn(void *conn, void *arg)
{
    BENCH_USE(conn);
    BENCH_USE(arg);
    return 0;
}

static void prot_teardown(void *state)
{
    prot_state_t *s = state;
    if (!s)
        return;
    fdn_protect_destroy(s->p);
    fdn_pools_destroy(s->pools);
    fdn_limiter_destroy(s->lim);
    fdn_breakers_destroy(s->brk);
    free(s);
}

static void *prot_setup(int t)
{
    (void)t;
    prot_state_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (fdn_breakers_create(&s->brk, NULL) || fdn_limiter_create(&s->lim, NULL) ||
        fdn_pools_create(&s->pools, NULL)) {
        prot_teardown(s);
        return NULL;
    }
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 2;
    po.max_overflow = 0;
    po.create = mkconn;
    fdn_limit_rule_t r = {FDN_LIMIT_TOKEN_BUCKET, (int64_t)1 << 31, 1000, 0};
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.breakers = s->brk;
    o.limiter = s->lim;
    o.pools = s->pools;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "b";
    cfg.limiter_rule = "bench";
    cfg.pool = "db";
    if (fdn_pools_start(s->pools, "db", &po, NULL, NULL) ||
        fdn_limiter_set_rule(s->lim, "bench", &r) || fdn_protect_create(&s->p, &o) ||
        fdn_protect_configure(s->p, "k", &cfg, NULL)) {
        prot_teardown(s);
        return NULL;
    }
    return s;
}

static void prot_run(void *state, int tid, uint64_t iters)
{
    (void)tid;
    prot_state_t *s = state;
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "user-1";
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_execute_protected(s->p, "k", &co, pfn, s, NULL, NULL);
        BENCH_USE(rc);
    }
}

static const bench_case_t prot_all = {.name = "protect.call.all_layers",
                                      .threads = 1,
                                      .iters = 1000000,
                                      .baseline = "baseline.mutex",
                                      .goal_kind = BENCH_GOAL_NS_MAX,
                                      .goal = 90,
                                      .goal_text = "<= 90 ns",
                                      .setup = prot_setup,
                                      .run = prot_run,
                                      .teardown = prot_teardown};
BENCH_REGISTER(prot_all)

/* ---- protect.call.all_layers_timed: the same call asking for its result (and duration) -- */

static void prot_run_timed(void *state, int tid, uint64_t iters)
{
    (void)tid;
    prot_state_t *s = state;
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "user-1";
    fdn_protect_result_t r;
    for (uint64_t i = 0; i < iters; i++) {
        int rc = fdn_execute_protected(s->p, "k", &co, pfn, s, &r, NULL);
        BENCH_USE(rc);
        BENCH_USE(r.duration_ns);
    }
}

static const bench_case_t prot_timed = {.name = "protect.call.all_layers_timed",
                                        .threads = 1,
                                        .iters = 1000000,
                                        .baseline = "protect.call.all_layers",
                                        .goal_kind = BENCH_GOAL_NONE,
                                        .goal_text = "informational",
                                        .setup = prot_setup,
                                        .run = prot_run_timed,
                                        .teardown = prot_teardown};
BENCH_REGISTER(prot_timed)
