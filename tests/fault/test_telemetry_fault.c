/* Fault tests: telemetry under a failing allocator. Allocation k fails (k = 1, 2, ... in
 * turn): every call returns FDN_ENOMEM or succeeds, leaves the instance usable, and nothing
 * leaks (live allocation count back to zero after destroy; ASan checks too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "fail_alloc.h"

static int null_sink(const char *d, size_t n, void *u)
{
    (void)d;
    (void)n;
    (void)u;
    return 0;
}

static void create_sweep(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    for (long k = 1;; k++) {
        fdn_telemetry_t *tm = NULL;
        fail_alloc_at(k);
        int rc = fdn_telemetry_create(&tm, NULL);
        fail_alloc_at(0);
        if (rc == 0) {
            assert_true(k > 5);
            fdn_telemetry_destroy(tm);
            assert_int_equal(fail_alloc_live(), 0);
            break;
        }
        assert_int_equal(rc, FDN_ENOMEM);
        assert_null(tm);
        assert_int_equal(fail_alloc_live(), 0);
    }
    fail_alloc_uninstall();
}

static void operations_sweep(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    for (long k = 1; k < 400; k++) {
        fdn_telemetry_t *tm = NULL;
        fail_alloc_at(0);
        assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
        fail_alloc_at(k);
        /* family + series */
        const char *ln[] = {"kind"};
        const char *lv[] = {"a"};
        fdn_telemetry_family_t *f = NULL;
        fdn_counter_t *c = NULL;
        int rc = fdn_telemetry_family(tm, &f, "ops_total", "ops", FDN_TELEMETRY_COUNTER, ln, 1, 0);
        assert_true(rc == 0 || rc == FDN_ENOMEM);
        if (rc == 0) {
            rc = fdn_telemetry_family_counter(f, &c, lv, 1);
            assert_true(rc == 0 || rc == FDN_ENOMEM);
            fdn_counter_inc(c); /* NULL after ENOMEM: a no-op */
        }
        /* first emission creates the entry */
        size_t before = fdn_telemetry_event_count(tm);
        fdn_telemetry_meta_t md = {"k", "v"};
        rc = fdn_telemetry_emit_counter(tm, "first.event", &md, 1);
        assert_true(rc == 0 || rc == FDN_ENOMEM);
        if (rc == FDN_ENOMEM)
            assert_int_equal(fdn_telemetry_event_count(tm), before);
        (void)fdn_telemetry_emit_histogram(tm, "first.event", 3.0, NULL, 0);
        uint64_t id = 0;
        rc = fdn_telemetry_attach(tm, &id, "first", FDN_TELEMETRY_MATCH_PREFIX, NULL, NULL);
        assert_int_equal(rc, FDN_EINVAL);
        /* readers */
        fdn_telemetry_snapshot_t *s = NULL;
        rc = fdn_telemetry_snapshot(tm, &s);
        assert_true(rc == 0 || rc == FDN_ENOMEM);
        fdn_telemetry_snapshot_free(s);
        char *json = NULL;
        rc = fdn_telemetry_metrics_json(tm, &json);
        assert_true(rc == 0 || rc == FDN_ENOMEM);
        fdn_free(json);
        rc = fdn_telemetry_write_prometheus(tm, null_sink, NULL);
        assert_true(rc == 0 || rc == FDN_ENOMEM);
        /* after the fault everything works */
        fail_alloc_at(0);
        assert_int_equal(fdn_telemetry_emit_counter(tm, "first.event", NULL, 0), 0);
        assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
        fdn_telemetry_snapshot_free(s);
        fdn_telemetry_destroy(tm);
        assert_int_equal(fail_alloc_live(), 0);
    }
    fail_alloc_uninstall();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sweep),
        cmocka_unit_test(operations_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
