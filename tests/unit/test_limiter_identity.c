/* Unit tests: the limiter's quota of live keys per identity (issue 21: one caller with a
 * million unique keys took the whole table). A key "<identity>\x1f<rest>" belongs to the
 * identity; past max_keys_per_identity its new keys are refused with FDN_ENOSPC while other
 * identities and plain keys are served, expired keys stop counting, evicted and forgotten
 * keys give their slot back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <fdn/clock.h>
#include <fdn/limiter.h>
#include <fdn/runtime.h>

#include "threads.h"

static const fdn_limit_rule_t RULE = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 0};

/* "<id>\x1f<rest>" in buf */
static size_t idkey(char *buf, size_t cap, const char *id, const char *rest)
{
    int n = snprintf(buf, cap, "%s%c%s", id, FDN_LIMIT_IDENTITY_SEP, rest);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static int check(fdn_limiter_t *l, const char *id, const char *rest, fdn_limit_result_t *res)
{
    char k[128];
    size_t n =
        id != NULL ? idkey(k, sizeof k, id, rest) : (size_t)snprintf(k, sizeof k, "%s", rest);
    return fdn_limiter_check(l, k, n, &RULE, 1, 0, res);
}

static fdn_limiter_t *make(fdn_clock_t *clk, uint32_t quota, uint32_t max_keys, uint32_t shards,
                           fdn_limit_overflow_t policy)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    assert_int_equal(o.version, 5);
    assert_int_equal(o.max_keys_per_identity, 0); /* no quota by default */
    o.clock = clk;
    o.max_keys_per_identity = quota;
    o.max_keys = max_keys;
    o.shards = shards;
    o.overflow_policy = policy;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    return l;
}

static fdn_limiter_backend_status_t status(fdn_limiter_t *l)
{
    fdn_limiter_backend_status_t st;
    assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
    return st;
}

static void quota_refuses_new_keys_of_one_identity(void **state)
{
    (void)state;
    fdn_limiter_t *l = make(NULL, 3, 1024, 4, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_result_t r;
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(check(l, "alice", "k2", &r), 0);
    assert_int_equal(check(l, "alice", "k3", &r), 0);
    r.allowed = true;
    assert_int_equal(check(l, "alice", "k4", &r), FDN_ENOSPC);
    assert_false(r.allowed);
    /* her held keys still work, others are served, plain keys have no quota */
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(check(l, "bob", "k1", &r), 0);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "plain%d", i);
        assert_int_equal(check(l, NULL, k, &r), 0);
    }
    /* an empty identity is an identity too */
    assert_int_equal(check(l, "", "e1", &r), 0);
    fdn_limiter_backend_status_t st = status(l);
    assert_int_equal(st.identities, 3);
    assert_int_equal(st.identity_keys_refused, 1);
    assert_int_equal(st.max_keys_per_identity, 3);
    assert_int_equal(st.keys, 3 + 1 + 10 + 1);
    assert_int_equal(st.new_keys_refused, 0); /* the table was not full */
    /* a forgotten key gives its slot back */
    char k[64];
    size_t n = idkey(k, sizeof k, "alice", "k2");
    assert_int_equal(fdn_limiter_reset(l, k, n), 0);
    assert_int_equal(check(l, "alice", "k4", &r), 0);
    assert_int_equal(check(l, "alice", "k5", &r), FDN_ENOSPC);
    /* the quota changes at run time: lower refuses, 0 lifts it */
    assert_int_equal(fdn_limiter_set_max_keys_per_identity(NULL, 1), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_max_keys_per_identity(l, 1), 0);
    assert_int_equal(check(l, "bob", "k2", &r), FDN_ENOSPC);
    assert_int_equal(check(l, "bob", "k1", &r), 0);
    assert_int_equal(fdn_limiter_set_max_keys_per_identity(l, 0), 0);
    assert_int_equal(check(l, "bob", "k2", &r), 0);
    assert_int_equal(check(l, "alice", "k5", &r), 0);
    assert_int_equal(status(l).identity_keys_refused, 3);
    /* shadow mode: reported, not enforced */
    assert_int_equal(fdn_limiter_set_max_keys_per_identity(l, 1), 0);
    fdn_limiter_set_shadow(l, true);
    assert_int_equal(check(l, "bob", "k3", &r), 0);
    assert_true(r.allowed);
    assert_true(r.shadow_denied);
    fdn_limiter_destroy(l);
}

/* Expired keys count until swept; a refusal sweeps first, so an identity whose keys expired
 * gets its new key, and a sweep leaves no identity behind. */
static void expired_keys_stop_counting(void **state)
{
    (void)state;
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000000000, 1700000000000000000LL), 0);
    fdn_limiter_t *l = make(clk, 2, 1024, 4, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_result_t r;
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(check(l, "alice", "k2", &r), 0);
    assert_int_equal(check(l, "alice", "k3", &r), FDN_ENOSPC);
    assert_int_equal(status(l).keys, 2);
    fdn_clock_advance(clk, 5LL * 1000000000); /* both buckets full again: state expired */
    assert_int_equal(check(l, "alice", "k3", &r), 0);
    fdn_limiter_backend_status_t st = status(l);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.identities, 1);
    assert_int_equal(st.identity_keys_refused, 1);
    fdn_clock_advance(clk, 5LL * 1000000000);
    assert_int_equal(fdn_limiter_sweep(l), 1);
    st = status(l);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.identities, 0);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* A key evicted by EVICT_LRU leaves its identity's count; a table full of live keys still
 * answers FDN_ELIMITER (DENY_NEW) and the refused key takes no identity slot. */
static void eviction_and_full_table(void **state)
{
    (void)state;
    fdn_limiter_t *l = make(NULL, 0, 2, 1, FDN_LIMIT_OVERFLOW_EVICT_LRU);
    fdn_limit_result_t r;
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(check(l, "bob", "k1", &r), 0);
    assert_int_equal(check(l, "carol", "k1", &r), 0); /* evicts alice's */
    fdn_limiter_backend_status_t st = status(l);
    assert_int_equal(st.identities, 2);
    assert_int_equal(st.keys, 2);
    fdn_limiter_destroy(l);

    l = make(NULL, 5, 2, 1, FDN_LIMIT_OVERFLOW_DENY_NEW);
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(check(l, "alice", "k2", &r), 0);
    assert_int_equal(check(l, "bob", "k1", &r), FDN_ELIMITER);
    st = status(l);
    assert_int_equal(st.identities, 1);
    assert_int_equal(st.new_keys_refused, 1);
    assert_int_equal(st.identity_keys_refused, 0);
    fdn_limiter_destroy(l);
}

/* A version-4 caller's options end before max_keys_per_identity: no quota. */
static void version4_opts_have_no_quota(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.version = 4;
    o.max_keys_per_identity = 1; /* not read */
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_result_t r;
    assert_int_equal(check(l, "alice", "k1", &r), 0);
    assert_int_equal(check(l, "alice", "k2", &r), 0);
    assert_int_equal(status(l).max_keys_per_identity, 0);
    fdn_limiter_destroy(l);
}

/* Threads add, check, forget and sweep keys of a few identities at once; afterwards the
 * identity counts agree with the keys (all expire and are swept: nothing is left). */
typedef struct warg {
    fdn_limiter_t *l;
    test_threads_t *g;
    int k;
    int bad;
} warg_t;

static void *worker(void *p)
{
    warg_t *a = p;
    test_threads_gate(a->g);
    char k[64];
    for (int i = 0; i < 3000; i++) {
        char id[8], rest[16];
        snprintf(id, sizeof id, "id%d", (a->k + i) % 5);
        snprintf(rest, sizeof rest, "k%d", i % 40);
        size_t n = idkey(k, sizeof k, id, rest);
        fdn_limit_result_t r;
        int rc = fdn_limiter_check(a->l, k, n, &RULE, 1, 0, &r);
        if (rc != 0 && rc != FDN_ERATE_LIMITED && rc != FDN_ENOSPC && rc != FDN_ELIMITER)
            a->bad++;
        if (i % 7 == 0)
            (void)fdn_limiter_reset(a->l, k, n);
        if (i % 500 == 0)
            (void)fdn_limiter_sweep(a->l);
    }
    return NULL;
}

static void concurrent_identities_stay_consistent(void **state)
{
    (void)state;
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000000000, 1700000000000000000LL), 0);
    fdn_limiter_t *l = make(clk, 25, 128, 4, FDN_LIMIT_OVERFLOW_EVICT_LRU);
    test_threads_t g;
    warg_t args[4];
    test_threads_init(&g, 4);
    for (int i = 0; i < 4; i++) {
        args[i] = (warg_t){l, &g, i, 0};
        test_threads_start(&g, worker, &args[i]);
    }
    test_threads_join(&g);
    for (int i = 0; i < 4; i++)
        assert_int_equal(args[i].bad, 0);
    fdn_limiter_backend_status_t st = status(l);
    assert_true(st.keys <= 128);
    assert_true(st.identities <= 5);
    assert_true(st.identities > 0);
    fdn_clock_advance(clk, 10LL * 1000000000);
    fdn_limiter_sweep(l);
    st = status(l);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.identities, 0);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* The runtime applies infrastructure.rate_limiting.max_keys_per_identity (default 65536). */
static void runtime_config_sets_quota(void **state)
{
    (void)state;
    static const char *const env[] = {"FDN_INFRASTRUCTURE__RATE_LIMITING__MAX_KEYS_PER_IDENTITY=7",
                                      NULL};
    for (int k = 0; k < 2; k++) {
        fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
        ro.ignore_env = k == 0;
        ro.envp = k == 1 ? env : NULL;
        ro.health_interval_ns = 0;
        fdn_runtime_t *rt = NULL;
        assert_int_equal(fdn_runtime_create(&rt, &ro, NULL), 0);
        assert_int_equal(status(fdn_runtime_limiter(rt)).max_keys_per_identity, k == 0 ? 65536 : 7);
        fdn_runtime_destroy(rt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quota_refuses_new_keys_of_one_identity),
        cmocka_unit_test(expired_keys_stop_counting),
        cmocka_unit_test(eviction_and_full_table),
        cmocka_unit_test(version4_opts_have_no_quota),
        cmocka_unit_test(concurrent_identities_stay_consistent),
        cmocka_unit_test(runtime_config_sets_quota),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
