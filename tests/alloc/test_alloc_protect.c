/* Failing-allocator sweep of include/fdn/protect.h (tests/alloc/README.md): the registry of
 * protected keys (create, configure with a breaker that is made in the set and an inline
 * limit, list, status) and protected calls. A failed configure leaves the key unconfigured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include <fdn/breaker.h>
#include <fdn/common.h>
#include <fdn/error.h>
#include <fdn/limiter.h>
#include <fdn/protect.h>

#include "alloc_sweep.h"

static int work(void *conn, void *arg)
{
    (void)conn;
    (*(int *)arg)++;
    return 0;
}

static void sweep_protect(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_breakers_t *set = NULL;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    assert_int_equal(fdn_breakers_create(&set, &bo), 0);
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    fdn_limiter_t *lim = NULL;
    assert_int_equal(fdn_limiter_create(&lim, &lo), 0);
    fdn_protect_opts_t po = FDN_PROTECT_OPTS_INIT;
    po.breakers = set;
    po.limiter = lim;
    SWEEP(sw, fdn_protect_create, 0)
    {
        fdn_protect_t *p = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_protect_create(&p, &po)))
            assert_null(p);
        else
            fdn_protect_destroy(p);
    }
    fdn_protect_t *p = NULL;
    assert_int_equal(fdn_protect_create(&p, &po), 0);
    static const fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 1000, 60000, 0};
    /* a breaker a failed configure made is taken out of the set again (its memory stays on
     * the set's removed list until the set goes: no per-call balance, the end one holds) */
    SWEEP(sw, fdn_protect_configure, SWEEP_KEEP | SWEEP_NO_CALL_LEAK)
    {
        char key[32], br[32];
        snprintf(key, sizeof(key), "svc-%ld", sw.n);
        snprintf(br, sizeof(br), "br-%ld", sw.n);
        fdn_protect_config_t c = FDN_PROTECT_CONFIG_INIT;
        c.breaker = br;
        c.limit = &rule;
        size_t nb = fdn_breakers_count(set);
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_protect_configure(p, key, &c, NULL))) {
            assert_int_equal(fdn_protect_has(p, key), FDN_ENOENT);
            assert_int_equal(fdn_breakers_count(set), nb);
        } else
            assert_int_equal(fdn_protect_has(p, key), 0);
    }
    SWEEP(sw, fdn_protect_list, 0)
    {
        char **keys = NULL;
        size_t n = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_protect_list(p, &keys, &n))) {
            assert_null(keys);
        } else {
            assert_int_equal(n, 2); /* the warm-up pass's key and the last pass's */
            fdn_free(keys);
        }
    }
    int runs = 0;
    SWEEP(sw, fdn_execute_protected, SWEEP_KEEP)
    {
        fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
        fdn_protect_result_t res;
        int before = runs;
        sweep_arm(&sw);
        int rc = fdn_execute_protected(p, "svc-0", &co, work, &runs, &res, NULL);
        if (sweep_failed(&sw, rc))
            assert_int_equal(runs, before);
    }
    SWEEP(sw, fdn_protect_status, 0)
    {
        fdn_protect_status_t st;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_protect_status(p, "svc-0", &st));
    }
    SWEEP(sw, fdn_protect_unconfigure, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_protect_unconfigure(p, "svc-0");
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_protect_has(p, "svc-0"), 0);
        } else {
            assert_int_equal(fdn_protect_has(p, "svc-0"), FDN_ENOENT);
            fdn_protect_config_t c = FDN_PROTECT_CONFIG_INIT; /* again, for the next pass */
            assert_int_equal(fdn_protect_configure(p, "svc-0", &c, NULL), 0);
        }
    }
    /* lookups and the settings that store a value allocate nothing */
    int rc = -1;
    NOALLOC_SWEEP(fdn_protect_has, rc = fdn_protect_has(p, "svc-0"));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_protect_has, rc = fdn_protect_has(p, "nope"));
    assert_int_equal(rc, FDN_ENOENT);
    NOALLOC_SWEEP(fdn_protect_set_default_timeout, rc = fdn_protect_set_default_timeout(p, 250));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_protect_set_layer_enabled,
                  fdn_protect_set_layer_enabled(p, FDN_PROTECT_LIMITER, false));
    NOALLOC_SWEEP(fdn_protect_destroy, fdn_protect_destroy(p));
    fdn_limiter_destroy(lim);
    fdn_breakers_destroy(set);
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_protect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
