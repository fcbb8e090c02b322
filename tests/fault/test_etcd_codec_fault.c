/* Fault test: failing-allocator sweep over the etcd gateway's parsers (logic/etcd_codec.c) and
 * the shared registry's entry values (infra/registry_etcd.c). Allocation k fails in turn
 * (jansson's included: it allocates through the library allocator); each call must answer
 * FDN_ENOMEM, never a parse error, until k passes its last allocation, and leave nothing
 * allocated either way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/error.h>

#include "fail_alloc.h"
#include "infra/registry_shared.h"
#include "logic/etcd_codec.h"

static const char RANGE[] =
    "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"L2EveA==\",\"create_revision\":\"2\","
    "\"mod_revision\":\"5\",\"version\":\"3\",\"value\":\"aGVsbG8=\",\"lease\":\"66\"},"
    "{\"key\":\"L2Evew==\"}],\"count\":\"2\"}";

static const char WATCH[] =
    "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"kv\":{\"key\":\"L2EveQ==\","
    "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"value\":\"djE=\"}},{\"type\":\"DELETE\","
    "\"kv\":{\"key\":\"L2EveA==\",\"mod_revision\":\"4\"}}]}}\n";

static void range_sweep(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    bool ok = false;
    long ooms = 0;
    for (long k = 1; k < 200 && !ok; k++) {
        fdn__etcd_range_t r;
        fail_alloc_at_this_thread(k);
        int rc = fdn__etcd_range_parse(RANGE, strlen(RANGE), &r, NULL);
        fail_alloc_off();
        if (rc == 0) {
            ok = true;
            assert_int_equal(r.n, 2);
            fdn__etcd_range_clear(&r);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
            ooms++;
        }
        assert_int_equal(fail_alloc_live(), 0);
    }
    assert_true(ok);
    assert_true(ooms >= 3); /* jansson's values, the array, the records */
    fail_alloc_uninstall();
}

static void watch_sweep(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    bool ok = false;
    for (long k = 1; k < 200 && !ok; k++) {
        fdn__etcd_watch_msg_t m;
        fail_alloc_at_this_thread(k);
        int rc = fdn__etcd_watch_msg_parse(WATCH, strlen(WATCH), &m, NULL);
        fail_alloc_off();
        if (rc == 0) {
            ok = true;
            assert_int_equal(m.nevents, 2);
            fdn__etcd_watch_msg_clear(&m);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
        }
        assert_int_equal(fail_alloc_live(), 0);
    }
    assert_true(ok);
    fail_alloc_uninstall();
}

static void entry_sweep(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    char key[] = "/p/ns/svc/i";
    char value[] = "{\"endpoint\":\"http://h\",\"owner\":\"o\",\"meta\":{\"a\":\"1\",\"b\":\"2\"}}";
    fdn__etcd_kv_t kv = {key, strlen(key), value, strlen(value), 1, 2, 1, 0};
    bool ok = false;
    for (long k = 1; k < 200 && !ok; k++) {
        fdn_registry_instance_t *i = NULL;
        fail_alloc_at_this_thread(k);
        int rc = fdn__registry_instance_from_kv("/p/ns/", 6, &kv, 4096, &i);
        fail_alloc_off();
        if (rc == 0) {
            ok = true;
            assert_string_equal(fdn_registry_instance_meta(i, "b"), "2");
            fdn_registry_instance_release(i);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
            assert_null(i);
        }
        assert_int_equal(fail_alloc_live(), 0);
    }
    assert_true(ok);
    ok = false;
    fdn_registry_meta_t meta[] = {{"a", "1"}};
    const char *want = "{\"endpoint\":\"http://h\",\"meta\":{\"a\":\"1\"},\"owner\":\"o\"}";
    for (long k = 1; k < 200 && !ok; k++) {
        char *v = NULL;
        size_t len = 0;
        fail_alloc_at_this_thread(k);
        int rc = fdn__registry_value_json("http://h", "o", meta, 1, &v, &len);
        fail_alloc_off();
        if (rc == 0) {
            ok = true;
            /* the whole value, not a dump that went on past a failed allocation */
            assert_string_equal(v, want);
            assert_int_equal(len, strlen(want));
            fdn_free(v);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
        }
        assert_int_equal(fail_alloc_live(), 0);
    }
    assert_true(ok);
    fail_alloc_uninstall();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_sweep),
        cmocka_unit_test(watch_sweep),
        cmocka_unit_test(entry_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
