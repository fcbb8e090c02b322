/* See limiter_ns.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "limiter_ns.h"

static const fdn_limit_rule_t NS_RULE = {FDN_LIMIT_FIXED_WINDOW, 5, 3600000, 0};

/* The count of a key in any namespace, read as the library may read it. */
static int64_t count_of(fdn_limiter_t *l, const char *key, size_t keylen)
{
    fdn_limit_result_t res;
    memset(&res, 0, sizeof res);
    int rc = fdn_limiter_check(l, key, keylen, &NS_RULE, 1, FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS,
                               &res);
    if (rc != 0 && rc != FDN_ERATE_LIMITED)
        fail_msg("peek of a reserved key: %s", fdn_err_name(rc));
    return res.count;
}

/* Every key call on key (a program's, without FDN_LIMIT_RESERVED_NS): FDN_EINVAL. prog is a
 * program key of the same rule whose reservation lends its window to a forged one. */
static void refused_everywhere(fdn_limiter_t *l, const char *key, size_t keylen, const char *prog)
{
    fdn_limit_result_t res;
    fdn_limit_reservation_t rsv;
    const size_t pl = strlen(prog);
    assert_int_equal(fdn_limiter_check(l, key, keylen, &NS_RULE, 1, 0, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check(l, key, keylen, &NS_RULE, 1, FDN_LIMIT_PEEK, &res),
                     FDN_EINVAL);
    assert_int_equal(fdn_limiter_inc(l, key, keylen, &NS_RULE, 1, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_inc_flags(l, key, keylen, &NS_RULE, 1, 0, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set(l, key, keylen, &NS_RULE, 5, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set(l, key, keylen, &NS_RULE, 0, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_flags(l, key, keylen, &NS_RULE, 0, 0, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_get(l, key, keylen, &NS_RULE, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_reserve(l, key, keylen, &NS_RULE, 1, &rsv, &res), FDN_EINVAL);
    assert_false(rsv.active);
    /* a reservation forged from a real one of the same window: nothing is given back */
    fdn_limit_reservation_t real, forged;
    assert_int_equal(fdn_limiter_reserve(l, prog, pl, &NS_RULE, 1, &real, &res), 0);
    assert_true(real.active);
    forged = real;
    assert_int_equal(fdn_limiter_cancel(l, key, keylen, &NS_RULE, &forged), FDN_EINVAL);
    assert_true(forged.active);
    assert_int_equal(fdn_limiter_cancel(l, prog, pl, &NS_RULE, &real), 0);
    assert_int_equal(fdn_limiter_reset(l, key, keylen), FDN_EINVAL);
    /* check_many: refused as a whole, nothing counted (the program key's request neither) */
    fdn_limit_request_t q[2];
    memset(q, 0, sizeof q);
    q[0] = (fdn_limit_request_t){prog, pl, &NS_RULE, 1, 0, 0, {0}};
    q[1] = (fdn_limit_request_t){key, keylen, &NS_RULE, 1, 0, 0, {0}};
    int64_t prog_before = count_of(l, prog, pl);
    assert_int_equal(fdn_limiter_check_many(l, q, 2), FDN_EINVAL);
    assert_int_equal(q[0].rc, 0);
    assert_int_equal(q[1].rc, FDN_EINVAL);
    q[1].flags = FDN_LIMIT_PEEK;
    assert_int_equal(fdn_limiter_check_many(l, q, 2), FDN_EINVAL);
    assert_int_equal(q[1].rc, FDN_EINVAL);
    assert_int_equal(count_of(l, prog, pl), prog_before);
    if (key[0] != '\0' && memchr(key, '\0', keylen) == NULL) { /* a C string */
        char z[160];
        assert_true(keylen < sizeof z);
        memcpy(z, key, keylen);
        z[keylen] = '\0';
        assert_int_equal(fdn_limiter_check_rate(l, z, 3600000, 5, &res), FDN_EINVAL);
    }
    /* the message names the namespace; with the flag the key is valid */
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_limit_key_validate(key, keylen, 0, &err), FDN_EINVAL);
    assert_int_equal(err.code, FDN_EINVAL);
    static const char *const owner[4] = {"FDN_LIMIT_KEY_NS_PROTECT", "FDN_LIMIT_KEY_NS_HTTP",
                                         "FDN_LIMIT_KEY_NS_RULE", "FDN_LIMIT_KEY_NS_ENTITY"};
    if (strstr(err.message, owner[(unsigned char)key[0]]) == NULL ||
        strstr(err.message, "reserved") == NULL)
        fail_msg("message does not name the namespace: %s", err.message);
    assert_int_equal(fdn_limit_key_validate(key, keylen, FDN_LIMIT_RESERVED_NS, NULL), 0);
}

void test_limiter_ns_refusals(fdn_limiter_t *l, const char *id)
{
    assert_int_equal(fdn_limiter_set_rule(l, "nsr", &NS_RULE), 0);
    fdn_limit_result_t res;
    /* one cell per namespace, each made by its maker (or as its maker makes it) and counted
     * once: [0] an inline rule's ("\0protect:...", as fdn_execute_protected builds it),
     * [1] an HTTP key's, [2] the named rule's, [3] the entity's */
    char keys[4][128];
    size_t lens[4];
    int n = snprintf(keys[0] + 1, sizeof keys[0] - 1, "protect:2:pk:%s", id);
    keys[0][0] = FDN_LIMIT_KEY_NS_PROTECT;
    lens[0] = 1 + (size_t)n;
    n = snprintf(keys[1], sizeof keys[1], "%chttp-%s", FDN_LIMIT_KEY_NS_HTTP, id);
    lens[1] = (size_t)n;
    n = snprintf(keys[2], sizeof keys[2], "%cnsr:%s", FDN_LIMIT_KEY_NS_RULE, id);
    lens[2] = (size_t)n;
    n = snprintf(keys[3], sizeof keys[3], "%cfoundation:%zu:%s:op", FDN_LIMIT_KEY_NS_ENTITY,
                 strlen(id), id);
    lens[3] = (size_t)n;
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            fdn_limiter_check(l, keys[i], lens[i], &NS_RULE, 1, FDN_LIMIT_RESERVED_NS, &res), 0);
    assert_int_equal(fdn_limiter_check_named(l, "nsr", id, 1, &res), 0);
    assert_int_equal(fdn_limiter_check_entity(l, id, "op", 5, 3600000, &res), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(count_of(l, keys[i], lens[i]), 1);
    char prog[96], fresh[128];
    snprintf(prog, sizeof prog, "prog-%s", id);
    assert_int_equal(fdn_limiter_check(l, prog, strlen(prog), &NS_RULE, 1, 0, &res), 0);
    fdn_limiter_stats_t st0, st1;
    assert_int_equal(fdn_limiter_stats(l, &st0), 0);
    for (int i = 0; i < 4; i++) {
        refused_everywhere(l, keys[i], lens[i], prog);
        assert_int_equal(count_of(l, keys[i], lens[i]), 1); /* untouched, and still there */
        /* a reserved key never seen is not made */
        n = snprintf(fresh + 1, sizeof fresh - 1, "fresh-%s", id);
        fresh[0] = (char)i;
        refused_everywhere(l, fresh, 1 + (size_t)n, prog);
        assert_int_equal(count_of(l, fresh, 1 + (size_t)n), 0);
    }
    assert_int_equal(fdn_limiter_stats(l, &st1), 0);
    assert_int_equal(st1.keys, st0.keys);
    /* the first free byte is a program's; an unknown flag is refused */
    char free_key[96];
    n = snprintf(free_key, sizeof free_key, "%cfree-%s", FDN_LIMIT_KEY_NS_FIRST_FREE, id);
    assert_int_equal(fdn_limiter_inc(l, free_key, (size_t)n, &NS_RULE, 1, &res), 0);
    assert_int_equal(fdn_limiter_reset(l, free_key, (size_t)n), 0);
    assert_int_equal(fdn_limiter_inc_flags(l, prog, strlen(prog), &NS_RULE, 1, 0x4u, &res),
                     FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_flags(l, prog, strlen(prog), &NS_RULE, 0, 0x1u, &res),
                     FDN_EINVAL);
    assert_int_equal(fdn_limit_key_validate(prog, strlen(prog), 0x4u, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limit_key_validate(NULL, 1, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limit_key_validate(prog, 0, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limit_key_validate(prog, strlen(prog), FDN_LIMIT_PEEK, NULL), 0);

    /* the library's own paths on those cells still work */
    assert_int_equal(fdn_limiter_check_named(l, "nsr", id, 1, &res), 0);
    assert_int_equal(res.count, 2);
    assert_int_equal(fdn_limiter_check_entity(l, id, "op", 5, 3600000, &res), 0);
    assert_int_equal(res.count, 2);
    assert_int_equal(
        fdn_limiter_inc_flags(l, keys[1], lens[1], &NS_RULE, 3, FDN_LIMIT_RESERVED_NS, &res), 0);
    assert_int_equal(res.count, 4);
    fdn_limit_request_t q = {keys[1], lens[1], &NS_RULE, 1, FDN_LIMIT_RESERVED_NS, 0, {0}};
    assert_int_equal(fdn_limiter_check_many(l, &q, 1), 0);
    assert_int_equal(q.res.count, 5);
    assert_int_equal(
        fdn_limiter_check(l, keys[1], lens[1], &NS_RULE, 1, FDN_LIMIT_RESERVED_NS, &res),
        FDN_ERATE_LIMITED);
    /* a named rule's identifier gets its allowance back, on purpose */
    assert_int_equal(
        fdn_limiter_set_flags(l, keys[2], lens[2], &NS_RULE, 0, FDN_LIMIT_RESERVED_NS, &res), 0);
    assert_int_equal(fdn_limiter_check_named(l, "nsr", id, 1, &res), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(
        fdn_limiter_check(l, keys[0], lens[0], &NS_RULE, 1, FDN_LIMIT_RESERVED_NS, &res), 0);
    assert_int_equal(res.count, 2);
}
