/* Failing-allocator sweep of include/fdn/error.h (tests/alloc/README.md): the error context
 * lives in fixed thread-local frames; a capture is its one allocation. The calls that build
 * or run contexts are swept too, to show they need no memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/error.h>

#include "alloc_sweep.h"

static int ok_fn(void *arg)
{
    (void)arg;
    return fdn_errctx_set_metadata("step", "%s", "inner");
}

static int failing_fn(void *arg)
{
    (void)arg;
    return FDN_EIO;
}

static void hook(const fdn_error_t *err, void *user)
{
    (void)err;
    (*(int *)user)++;
}

static void sweep_context(void **state)
{
    (void)state;
    SWEEP(sw, fdn_errctx_push_root, 0) {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_push_root("alloc", "root", NULL)))
            fdn_errctx_pop();
    }
    assert_int_equal(fdn_errctx_push_root("alloc", "root", "corr-1"), 0);
    SWEEP(sw, fdn_errctx_push, 0) {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_push("alloc", "child")))
            fdn_errctx_pop();
    }
    SWEEP(sw, fdn_errctx_set_metadata, 0) {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_set_metadata("user", "%d", 42));
    }
    SWEEP(sw, fdn_errctx_add_breadcrumb, 0) {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_add_breadcrumb("alloc", "crumb"));
    }
    SWEEP(sw, fdn_errctx_capture, 0) {
        fdn_errctx_capture_t *cap = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_errctx_capture(&cap))) {
            assert_null(cap);
        } else {
            /* a capture carries the context to another place */
            assert_int_equal(fdn_errctx_adopt(cap), 0);
            char buf[16];
            assert_int_equal(fdn_errctx_get_metadata("user", buf, sizeof(buf)), 0);
            assert_string_equal(buf, "42");
            fdn_errctx_pop();
            fdn_errctx_capture_free(cap);
        }
    }
    fdn_errctx_capture_t *cap = NULL;
    assert_int_equal(fdn_errctx_capture(&cap), 0);
    SWEEP(sw, fdn_errctx_adopt, 0) {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_adopt(cap)))
            fdn_errctx_pop();
    }
    fdn_errctx_capture_free(cap);
    SWEEP(sw, fdn_errctx_run, 0) {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_run("alloc", "run", ok_fn, NULL, &err));
    }
    int hooked = 0;
    SWEEP(sw, fdn_errctx_run_hooked, 0) {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        int rc = fdn_errctx_run_hooked("alloc", "run", failing_fn, NULL, &err, hook, &hooked);
        sweep_failed_vs(&sw, rc, FDN_EIO); /* fn's own failure, reported with its context */
        assert_int_equal(err.code, FDN_EIO);
    }
    assert_true(hooked > 0);
    SWEEP(sw, fdn_errctx_enhance, 0) {
        fdn_error_t err = FDN_ERROR_INIT;
        fdn_err_set(&err, FDN_EIO, "disk");
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_enhance(&err));
    }
    SWEEP(sw, fdn_err_set, 0) {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        sweep_failed_vs(&sw, fdn_err_set(&err, FDN_ETIMEDOUT, "waited %d ms", 5), FDN_ETIMEDOUT);
        fdn_err_add_context(&err, "k", "%s", "v");
        char buf[256];
        assert_true(fdn_err_to_json(&err, buf, sizeof(buf)) > 0);
    }
    SWEEP(sw, fdn_uuid4, 0) {
        char id[FDN_UUID_STR_LEN + 1];
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_uuid4(id));
    }
    fdn_errctx_pop();
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
