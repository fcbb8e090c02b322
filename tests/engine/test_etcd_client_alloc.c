/* The etcd client's requests under allocation failure, on a real etcd (the ctest fixture
 * "etcd"): each allocation of a call fails in turn (tests/support/fail_alloc.h, this thread's
 * only), and a call that answers 0 must have sent the whole request. A request builder that
 * dropped a member whose allocation failed sent a different request that etcd accepted: a put
 * without its lease (an entry that never expires), without its value, a delete of one key
 * instead of a range; and a dump that jansson 2.14 went on with past a failed allocation (an
 * object key left out) sent text that is not the request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "storage/etcd_client.h"
#include "engine.h"
#include "fail_alloc.h"

#define ETCD_TIMEOUT_MS 30000
#define MAX_STEPS       400

/* The record of key (n: how many there are, 0 or 1), allocations not failing. */
static int get(fdn__etcd_t *c, const char *key, fdn__etcd_kv_t *kv)
{
    fdn__etcd_range_t rg;
    assert_int_equal(fdn__etcd_range(c, key, strlen(key), NULL, 0, &rg, NULL), 0);
    int n = (int)rg.n;
    memset(kv, 0, sizeof(*kv));
    if (n == 1) {
        *kv = rg.kvs[0];
        memset(&rg.kvs[0], 0, sizeof(rg.kvs[0]));
    }
    fdn__etcd_range_clear(&rg);
    return n;
}

static void put_sends_its_lease_and_value(void **state)
{
    (void)state;
    char key[128];
    test_engine_unique_name(key, sizeof(key), "/fdn/test/alloc-put");
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    int64_t lease = 0;
    assert_int_equal(fdn__etcd_lease_grant(c, 60, &lease, NULL, NULL), 0);
    const char *value = "{\"endpoint\":\"http://10.0.0.1:80\"}";
    int ok = 0;
    for (long n = 1; n <= MAX_STEPS; n++) {
        fail_alloc_at_this_thread(n);
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn__etcd_put(c, key, strlen(key), value, strlen(value), lease, NULL, &err);
        long failed = fail_alloc_failures();
        fail_alloc_off();
        fdn__etcd_kv_t kv;
        int have = get(c, key, &kv);
        if (rc == 0) {
            ok++;
            assert_int_equal(have, 1);
            if (kv.lease != lease || kv.valuelen != strlen(value))
                fprintf(stderr,
                        "allocation %ld failed: put answered 0, wrote lease %lld, %zu "
                        "value bytes\n",
                        n, (long long)kv.lease, kv.valuelen);
            assert_int_equal(kv.lease, lease);
            assert_int_equal(kv.valuelen, strlen(value));
            assert_memory_equal(kv.value, value, kv.valuelen);
        } else {
            assert_int_equal(rc, FDN_ENOMEM); /* (when the answer's parse failed, it was written) */
        }
        fdn__etcd_kv_clear(&kv);
        assert_int_equal(fdn__etcd_delete(c, key, strlen(key), NULL, 0, NULL, NULL), 0);
        if (failed == 0)
            break; /* the call made fewer than n allocations: every one was failed once */
    }
    assert_true(ok >= 1);
    assert_int_equal(fdn__etcd_lease_revoke(c, lease, false, NULL), 0);
    fdn__etcd_destroy(c);
}

static void delete_sends_its_range(void **state)
{
    (void)state;
    char prefix[128], end[128];
    test_engine_unique_name(prefix, sizeof(prefix), "/fdn/test/alloc-del");
    size_t plen = strlen(prefix);
    prefix[plen++] = '/';
    prefix[plen] = '\0';
    size_t elen = fdn__etcd_prefix_end(end, sizeof(end), prefix, plen);
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    char k1[160], k2[160];
    snprintf(k1, sizeof(k1), "%sa", prefix);
    snprintf(k2, sizeof(k2), "%sb", prefix);
    for (long n = 1; n <= MAX_STEPS; n++) {
        assert_int_equal(fdn__etcd_put(c, k1, strlen(k1), "1", 1, 0, NULL, NULL), 0);
        assert_int_equal(fdn__etcd_put(c, k2, strlen(k2), "2", 1, 0, NULL, NULL), 0);
        fail_alloc_at_this_thread(n);
        int64_t deleted = -1;
        int rc = fdn__etcd_delete(c, prefix, plen, end, elen, &deleted, NULL);
        long failed = fail_alloc_failures();
        fail_alloc_off();
        fdn__etcd_kv_t kv;
        int left = get(c, k1, &kv);
        fdn__etcd_kv_clear(&kv);
        left += get(c, k2, &kv);
        fdn__etcd_kv_clear(&kv);
        if (rc == 0) {
            if (deleted != 2 || left != 0)
                fprintf(stderr, "allocation %ld failed: delete answered 0, deleted %lld\n", n,
                        (long long)deleted);
            assert_int_equal(deleted, 2);
            assert_int_equal(left, 0);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
        }
        if (failed == 0)
            break;
    }
    assert_int_equal(fdn__etcd_delete(c, prefix, plen, end, elen, NULL, NULL), 0);
    fdn__etcd_destroy(c);
}

/* The registry's registration (a txn: compare, put with the lease, or read the holder). */
static void put_if_absent_sends_its_lease_and_reads_the_holder(void **state)
{
    (void)state;
    char key[128];
    test_engine_unique_name(key, sizeof(key), "/fdn/test/alloc-txn");
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    int64_t lease = 0;
    assert_int_equal(fdn__etcd_lease_grant(c, 60, &lease, NULL, NULL), 0);
    const char *value = "{\"endpoint\":\"http://10.0.0.1:80\"}";
    for (int present = 0; present < 2; present++) {
        for (long n = 1; n <= MAX_STEPS; n++) {
            if (present)
                assert_int_equal(fdn__etcd_put(c, key, strlen(key), "x", 1, 0, NULL, NULL), 0);
            fail_alloc_at_this_thread(n);
            bool created = false;
            fdn__etcd_kv_t ex;
            fdn_error_t err = FDN_ERROR_INIT;
            int rc = fdn__etcd_put_if_absent(c, key, strlen(key), value, strlen(value), lease,
                                             &created, &ex, NULL, &err);
            long failed = fail_alloc_failures();
            fail_alloc_off();
            fdn__etcd_kv_t kv;
            int have = get(c, key, &kv);
            if (rc == 0 && !present) {
                assert_true(created);
                assert_int_equal(have, 1);
                assert_int_equal(kv.lease, lease);
                assert_int_equal(kv.valuelen, strlen(value));
            } else if (rc == 0) {
                assert_false(created);
                assert_non_null(ex.key); /* the holder's record, read in the same txn */
                assert_int_equal(ex.valuelen, 1);
            } else {
                if (rc != FDN_ENOMEM)
                    fprintf(stderr, "allocation %ld failed: %s\n", n, err.message);
                assert_int_equal(rc, FDN_ENOMEM);
            }
            fdn__etcd_kv_clear(&kv);
            fdn__etcd_kv_clear(&ex);
            assert_int_equal(fdn__etcd_delete(c, key, strlen(key), NULL, 0, NULL, NULL), 0);
            if (failed == 0)
                break;
        }
    }
    assert_int_equal(fdn__etcd_lease_revoke(c, lease, false, NULL), 0);
    fdn__etcd_destroy(c);
}

static int setup(void **state)
{
    int rc = test_engine_etcd_setup(state);
    if (rc == 0)
        rc = fail_alloc_install();
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    fail_alloc_uninstall();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_sends_its_lease_and_value),
        cmocka_unit_test(delete_sends_its_range),
        cmocka_unit_test(put_if_absent_sends_its_lease_and_reads_the_holder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
