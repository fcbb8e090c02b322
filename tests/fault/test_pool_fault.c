/* Fault injection: a failing allocator swept over pool and manager operations, and failing
 * create callbacks. Expect clean errors (FDN_ENOMEM or the callback's code), unchanged
 * objects and no leaks (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include <fdn/pool.h>

#include "fail_alloc.h"

/* The sweeps count k from 0: k allocations succeed and allocation k + 1 fails. */

static int g_live;
static int g_fail_create_at = -1; /* fail the create call with this index */
static int g_create_calls;

static int k_create(void **out, void *user)
{
    (void)user;
    if (g_create_calls++ == g_fail_create_at)
        return FDN_ECONNREFUSED;
    int *c = malloc(sizeof(int));
    if (c == NULL)
        return FDN_ENOMEM;
    g_live++;
    *out = c;
    return 0;
}

static void k_destroy(void *conn, void *user)
{
    (void)user;
    g_live--;
    free(conn);
}

static fdn_pool_opts_t opts(int size, int overflow)
{
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = size;
    o.max_overflow = overflow;
    o.create = k_create;
    o.destroy = k_destroy;
    return o;
}

static void create_sweep(void **state)
{
    (void)state;
    fdn_pool_opts_t o = opts(3, 2);
    for (long k = 0;; k++) {
        fdn_pool_t *p = NULL;
        fail_alloc_at(k + 1);
        int rc = fdn_pool_create(&p, &o, NULL);
        fail_alloc_off();
        if (rc == 0) {
            fdn_pool_destroy(p);
            assert_int_equal(g_live, 0);
            break;
        }
        assert_int_equal(rc, FDN_ENOMEM);
        assert_null(p);
        assert_int_equal(g_live, 0);
        assert_true(k < 100);
    }
}

static void checkout_sweep(void **state)
{
    (void)state;
    fdn_pool_opts_t o = opts(0, 2); /* every checkout creates */
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    for (long k = 0;; k++) {
        fdn_pool_worker_t *w = NULL;
        fail_alloc_at(k + 1);
        int rc = fdn_pool_checkout(p, &w, 0, NULL);
        fail_alloc_off();
        fdn_pool_status_t s;
        assert_int_equal(fdn_pool_status(p, &s), 0);
        if (rc == 0) {
            assert_int_equal(s.in_use, 1);
            assert_int_equal(fdn_pool_checkin(p, w), 0);
            break;
        }
        assert_int_equal(rc, FDN_ENOMEM);
        assert_int_equal(s.in_use, 0);
        assert_int_equal(s.workers, 0);
        assert_int_equal(g_live, 0);
        assert_true(k < 100);
    }
    fdn_pool_destroy(p);
    assert_int_equal(g_live, 0);
}

static void manager_sweep(void **state)
{
    (void)state;
    fdn_pool_opts_t o = opts(2, 1);
    for (long k = 0;; k++) {
        fdn_pools_t *m = NULL;
        fail_alloc_at(k + 1);
        int rc = fdn_pools_create(&m, NULL);
        bool b_failed = false;
        if (rc == 0) {
            rc = fdn_pools_start(m, "a", &o, NULL, NULL);
            if (rc == 0) {
                rc = fdn_pools_start(m, "b", &o, NULL, NULL);
                b_failed = rc != 0;
            }
            if (rc == 0) {
                fdn_pool_info_t *list = NULL;
                size_t n = 0;
                rc = fdn_pools_list(m, &list, &n);
                if (rc == 0)
                    assert_int_equal(n, 2);
                fdn_free(list);
            }
        }
        fail_alloc_off();
        if (m != NULL) {
            /* A failed start leaves no trace. */
            fdn_pool_status_t s;
            if (b_failed)
                assert_int_equal(fdn_pools_status(m, "b", &s), FDN_ENOENT);
            fdn_pools_destroy(m);
        }
        assert_int_equal(g_live, 0);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
        assert_true(k < 200);
    }
}

static void failing_create_callback(void **state)
{
    (void)state;
    fdn_pool_opts_t o = opts(4, 1);
    for (int at = 0; at < 4; at++) {
        g_create_calls = 0;
        g_fail_create_at = at;
        fdn_pool_t *p = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_pool_create(&p, &o, &err), FDN_ECONNREFUSED);
        assert_int_equal(err.code, FDN_ECONNREFUSED);
        assert_int_equal(g_live, 0);
    }
    /* Overflow creation failing at checkout: an error, the slot is released. */
    g_create_calls = 0;
    g_fail_create_at = 4;
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    fdn_pool_worker_t *w[5];
    for (int i = 0; i < 4; i++)
        assert_int_equal(fdn_pool_checkout(p, &w[i], 0, NULL), 0);
    assert_int_equal(fdn_pool_checkout(p, &w[4], 0, NULL), FDN_ECONNREFUSED);
    assert_int_equal(fdn_pool_checkout(p, &w[4], 0, NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_pool_checkin(p, w[i]), 0);
    fdn_pool_status_t s;
    assert_int_equal(fdn_pool_status(p, &s), 0);
    assert_int_equal(s.workers, 4);
    assert_int_equal(s.create_failures, 1);
    g_fail_create_at = -1;
    fdn_pool_destroy(p);
    assert_int_equal(g_live, 0);
}

static void destroy_null_and_double_shutdown(void **state)
{
    (void)state;
    fdn_pool_destroy(NULL);
    fdn_pools_destroy(NULL);
    fdn_pool_release(NULL);
    fdn_pool_opts_t o = opts(1, 0);
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    assert_int_equal(fdn_pool_shutdown(p, 0), 0);
    assert_int_equal(fdn_pool_shutdown(NULL, 0), FDN_EINVAL);
    fdn_pool_destroy(p);
    assert_int_equal(g_live, 0);
}

int main(void)
{
    fail_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sweep),
        cmocka_unit_test(checkout_sweep),
        cmocka_unit_test(manager_sweep),
        cmocka_unit_test(failing_create_callback),
        cmocka_unit_test(destroy_null_and_double_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
