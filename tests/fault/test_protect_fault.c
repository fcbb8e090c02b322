/* Fault injection: a failing allocator swept over breaker, limiter and protected-execution
 * operations. Expect FDN_ENOMEM, unchanged objects and no leaks (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/protect.h>

#include "fail_alloc.h"

/* The sweeps count k from 0: k allocations succeed and allocation k + 1 fails. */

static void breaker_sweep(void **state)
{
    (void)state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    o.failure_rate_pct = 50;
    for (long k = 0;; k++) {
        fdn_breaker_t *b = NULL;
        fail_alloc_at(k + 1);
        int rc = fdn_breaker_create(&b, "x", &o);
        fail_alloc_off();
        if (rc == 0) {
            fdn_breaker_destroy(b);
            break;
        }
        assert_int_equal(rc, FDN_ENOMEM);
        assert_true(k < 50);
    }
    fdn_breakers_t *set = NULL;
    assert_int_equal(fdn_breakers_create(&set, NULL), 0);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "b%d", i);
        for (long k = 0;; k++) {
            fail_alloc_at(k + 1);
            int rc = fdn_breaker_create_in(set, name, NULL, NULL);
            fail_alloc_off();
            if (rc == 0)
                break;
            assert_int_equal(rc, FDN_ENOMEM);
            fdn_breaker_t *b;
            assert_int_equal(fdn_breaker_get(set, name, &b), FDN_EBREAKER_NOT_FOUND);
            assert_true(k < 50);
        }
    }
    assert_int_equal(fdn_breakers_count(set), 20);
    fdn_breakers_destroy(set);
}

static void limiter_sweep(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 4;
    fdn_limiter_t *l = NULL;
    for (long k = 0;; k++) {
        fail_alloc_at(k + 1);
        int rc = fdn_limiter_create(&l, &o);
        fail_alloc_off();
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
        assert_true(k < 50);
    }
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 3, 1000, 0};
    /* new keys (including shard growth) under failing allocation */
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        for (long k = 0;; k++) {
            fail_alloc_at(k + 1);
            int rc = fdn_limiter_check(l, key, strlen(key), &rule, 1, 0, NULL);
            fail_alloc_off();
            if (rc == 0)
                break;
            assert_int_equal(rc, FDN_ENOMEM);
            assert_true(k < 10);
        }
    }
    fdn_limiter_stats_t st;
    fdn_limiter_stats(l, &st);
    assert_int_equal(st.keys, 200);
    assert_int_equal(st.allowed, 200);
    /* a long named-rule key goes through a heap buffer */
    char id[600];
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    fail_alloc_at(1);
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", id, 1, NULL), FDN_ENOMEM);
    fail_alloc_off();
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", id, 1, NULL), 0);
    fdn_limiter_destroy(l);
}

static void protect_sweep(void **state)
{
    (void)state;
    fdn_breakers_t *brk;
    fdn_limiter_t *lim;
    assert_int_equal(fdn_breakers_create(&brk, NULL), 0);
    assert_int_equal(fdn_limiter_create(&lim, NULL), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.breakers = brk;
    o.limiter = lim;
    fdn_protect_t *p = NULL;
    for (long k = 0;; k++) {
        fail_alloc_at(k + 1);
        int rc = fdn_protect_create(&p, &o);
        fail_alloc_off();
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
        assert_true(k < 20);
    }
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "b";
    cfg.limiter_rule = "api_calls";
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%02d", i);
        for (long k = 0;; k++) {
            fail_alloc_at(k + 1);
            int rc = fdn_protect_configure(p, key, &cfg, NULL);
            fail_alloc_off();
            if (rc == 0)
                break;
            assert_int_equal(rc, FDN_ENOMEM);
            assert_int_equal(fdn_protect_has(p, key), FDN_ENOENT);
            assert_true(k < 20);
        }
    }
    char **keys;
    size_t n;
    fail_alloc_at(1);
    assert_int_equal(fdn_protect_list(p, &keys, &n), FDN_ENOMEM);
    fail_alloc_off();
    assert_int_equal(fdn_protect_list(p, &keys, &n), 0);
    assert_int_equal(n, 20);
    fdn_free(keys);
    fdn_protect_destroy(p);
    fdn_limiter_destroy(lim);
    fdn_breakers_destroy(brk);
}

int main(void)
{
    fail_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(breaker_sweep),
        cmocka_unit_test(limiter_sweep),
        cmocka_unit_test(protect_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
