/* Failing-allocator sweep of include/fdn/limiter.h (tests/alloc/README.md): the memory
 * limiter (create, open, the checks that insert a new key, named rules). A check that fails
 * counts nothing: the key's count is as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/limiter.h>

#include "alloc_sweep.h"

static const fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 100, 60000, 0};

static void sweep_create(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    SWEEP(sw, fdn_limiter_create, 0)
    {
        fdn_limiter_t *l = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_limiter_create(&l, &o))) {
            assert_null(l);
        } else {
            fdn_limit_result_t res;
            assert_int_equal(fdn_limiter_check(l, "k", 1, &rule, 1, 0, &res), 0);
            fdn_limiter_destroy(l);
        }
    }
    SWEEP(sw, fdn_limiter_open, 0)
    {
        fdn_limiter_t *l = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_limiter_open(&l, &o, NULL)))
            assert_null(l);
        else
            fdn_limiter_destroy(l);
    }
}

/* The count of `key` now (0 when absent), without counting. */
static int64_t count_of(fdn_limiter_t *l, const char *key)
{
    fdn_limit_result_t res;
    memset(&res, 0, sizeof(res));
    int rc = fdn_limiter_get(l, key, strlen(key), &rule, &res);
    assert_true(rc == 0 || rc == FDN_ENOENT);
    return rc == 0 ? res.count : 0;
}

/* Each pass checks a key never seen (so the call must insert it); a failed call leaves it
 * uncounted. */
#define CHECK_SWEEP(fname, call)                                                                   \
    SWEEP(sw, fname, SWEEP_KEEP)                                                                   \
    {                                                                                              \
        char key[32];                                                                              \
        snprintf(key, sizeof(key), "%s-%ld", #fname, sw.n);                                        \
        fdn_limit_result_t res;                                                                    \
        sweep_arm(&sw);                                                                            \
        int rc = call;                                                                             \
        if (sweep_failed(&sw, rc))                                                                 \
            assert_int_equal(count_of(l, key), 0);                                                 \
    }

static void sweep_checks(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    CHECK_SWEEP(fdn_limiter_check, fdn_limiter_check(l, key, strlen(key), &rule, 1, 0, &res));
    CHECK_SWEEP(fdn_limiter_inc, fdn_limiter_inc(l, key, strlen(key), &rule, 2, &res));
    CHECK_SWEEP(fdn_limiter_set, fdn_limiter_set(l, key, strlen(key), &rule, 5, &res));
    CHECK_SWEEP(fdn_limiter_inc_flags,
                fdn_limiter_inc_flags(l, key, strlen(key), &rule, 2, 0, &res));
    CHECK_SWEEP(fdn_limiter_set_flags,
                fdn_limiter_set_flags(l, key, strlen(key), &rule, 5, 0, &res));
    CHECK_SWEEP(fdn_limiter_check_rate, fdn_limiter_check_rate(l, key, 60000, 100, &res));
    CHECK_SWEEP(fdn_limiter_check_entity, fdn_limiter_check_entity(l, key, "op", 100, 60000, &res));
    SWEEP(sw, fdn_limiter_check_many, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        char k1[32], k2[32];
        snprintf(k1, sizeof(k1), "many-a-%ld", sw.n);
        snprintf(k2, sizeof(k2), "many-b-%ld", sw.n);
        fdn_limit_request_t reqs[2];
        memset(reqs, 0, sizeof(reqs));
        reqs[0].key = k1;
        reqs[0].keylen = strlen(k1);
        reqs[0].rule = &rule;
        reqs[0].cost = 1;
        reqs[1] = reqs[0];
        reqs[1].key = k2;
        reqs[1].keylen = strlen(k2);
        sweep_arm(&sw);
        int rc = fdn_limiter_check_many(l, reqs, 2);
        /* each request stands alone (limiter.h): the one that failed counted nothing, the
         * other may have counted (so no per-call balance here) */
        if (sweep_failed(&sw, rc)) {
            assert_true(reqs[0].rc == FDN_ENOMEM || reqs[1].rc == FDN_ENOMEM);
            if (reqs[0].rc == FDN_ENOMEM)
                assert_int_equal(count_of(l, k1), 0);
            if (reqs[1].rc == FDN_ENOMEM)
                assert_int_equal(count_of(l, k2), 0);
        }
    }
    SWEEP(sw, fdn_limiter_reserve, SWEEP_KEEP)
    {
        char key[32];
        snprintf(key, sizeof(key), "rsv-%ld", sw.n);
        fdn_limit_reservation_t rsv;
        fdn_limit_result_t res;
        sweep_arm(&sw);
        int rc = fdn_limiter_reserve(l, key, strlen(key), &rule, 1, &rsv, &res);
        if (sweep_failed(&sw, rc))
            assert_int_equal(count_of(l, key), 0);
        else
            assert_int_equal(fdn_limiter_cancel(l, key, strlen(key), &rule, &rsv), 0);
    }
    SWEEP(sw, fdn_limiter_set_rule, SWEEP_KEEP)
    {
        char name[32];
        snprintf(name, sizeof(name), "rule-%ld", sw.n);
        fdn_limit_rule_t got;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_limiter_set_rule(l, name, &rule)))
            assert_int_not_equal(fdn_limiter_get_rule(l, name, &got), 0);
        else
            assert_int_equal(fdn_limiter_get_rule(l, name, &got), 0);
    }
    SWEEP(sw, fdn_limiter_set_rule_flags, SWEEP_KEEP)
    {
        char name[32];
        snprintf(name, sizeof(name), "flagged-%ld", sw.n);
        fdn_limit_rule_t got;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_limiter_set_rule_flags(l, name, &rule, FDN_LIMIT_RULE_LOCAL)))
            assert_int_not_equal(fdn_limiter_get_rule(l, name, &got), 0);
    }
    assert_int_equal(fdn_limiter_set_rule(l, "named", &rule), 0);
    SWEEP(sw, fdn_limiter_check_named, SWEEP_KEEP)
    {
        char id[32];
        snprintf(id, sizeof(id), "user-%ld", sw.n);
        fdn_limit_result_t res;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_limiter_check_named(l, "named", id, 1, &res));
    }
    SWEEP(sw, fdn_limiter_remove_rule, SWEEP_KEEP)
    {
        fdn_limit_rule_t got;
        sweep_arm(&sw);
        int rc = fdn_limiter_remove_rule(l, "named");
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_limiter_get_rule(l, "named", &got), 0);
        } else {
            assert_int_not_equal(fdn_limiter_get_rule(l, "named", &got), 0);
            assert_int_equal(fdn_limiter_set_rule(l, "named", &rule), 0);
        }
    }
    NOALLOC_SWEEP(fdn_limiter_destroy, fdn_limiter_destroy(l)); /* allocates nothing */
    assert_int_equal(sweep_live(), base);
}

/* Reads, settings and the calls that only drop state make no allocation. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check(l, "k", 1, &rule, 1, 0, &res), 0);
    fdn_limit_reservation_t rsv;
    assert_int_equal(fdn_limiter_reserve(l, "k", 1, &rule, 1, &rsv, &res), 0);
    fdn_limit_rule_t got;
    assert_int_equal(fdn_limiter_set_rule(l, "r", &rule), 0);
    fdn_limiter_stats_t st;
    fdn_limiter_backend_status_t bs;
    fdn_limit_failure_policy_t fp;
    NOALLOC_SWEEP(fdn_limiter_get, fdn_limiter_get(l, "k", 1, &rule, &res));
    NOALLOC_SWEEP(fdn_limiter_cancel, fdn_limiter_cancel(l, "k", 1, &rule, &rsv));
    NOALLOC_SWEEP(fdn_limiter_get_rule, fdn_limiter_get_rule(l, "r", &got));
    NOALLOC_SWEEP(fdn_limit_rule_validate, fdn_limit_rule_validate(&rule, NULL));
    NOALLOC_SWEEP(fdn_limit_key_validate, fdn_limit_key_validate("\002k", 2, 0, NULL));
    NOALLOC_SWEEP(fdn_limiter_stats, fdn_limiter_stats(l, &st));
    NOALLOC_SWEEP(fdn_limiter_backend_status, fdn_limiter_backend_status(l, &bs));
    NOALLOC_SWEEP(fdn_limiter_refusal_age_ns, fdn_limiter_refusal_age_ns(l));
    NOALLOC_SWEEP(fdn_limiter_backend_available, fdn_limiter_backend_available(l));
    fdn_limit_key_info_t top[4];
    size_t ntop = 0;
    NOALLOC_SWEEP(fdn_limiter_top_keys, fdn_limiter_top_keys(l, top, 4, &ntop, NULL));
    NOALLOC_SWEEP(fdn_limiter_set_cleanup_interval, fdn_limiter_set_cleanup_interval(l, 1000));
    NOALLOC_SWEEP(fdn_limiter_set_shadow, fdn_limiter_set_shadow(l, false));
    NOALLOC_SWEEP(fdn_limiter_set_enabled, fdn_limiter_set_enabled(l, true));
    NOALLOC_SWEEP(fdn_limiter_enabled, fdn_limiter_enabled(l));
    NOALLOC_SWEEP(fdn_limiter_set_max_keys_per_identity,
                  fdn_limiter_set_max_keys_per_identity(l, 100));
    NOALLOC_SWEEP(fdn_limiter_reset, fdn_limiter_reset(l, "k", 1));
    NOALLOC_SWEEP(fdn_limiter_sweep, fdn_limiter_sweep(l));
    NOALLOC_SWEEP(fdn_limiter_backend_name, fdn_limiter_backend_name(FDN_LIMITER_BACKEND_MEMORY));
    NOALLOC_SWEEP(fdn_limit_failure_policy_name, fdn_limit_failure_policy_name(fp = 0));
    NOALLOC_SWEEP(fdn_limit_failure_policy_parse, fdn_limit_failure_policy_parse("open", &fp));
    NOALLOC_SWEEP(fdn_limit_algo_name, fdn_limit_algo_name(FDN_LIMIT_GCRA));
    fdn_limiter_destroy(l);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_create),
        cmocka_unit_test(sweep_checks),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
