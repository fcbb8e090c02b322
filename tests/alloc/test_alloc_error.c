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
    SWEEP(sw, fdn_errctx_push_root, 0)
    {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_push_root("alloc", "root", NULL)))
            fdn_errctx_pop();
    }
    assert_int_equal(fdn_errctx_push_root("alloc", "root", "corr-1"), 0);
    SWEEP(sw, fdn_errctx_push, 0)
    {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_push("alloc", "child")))
            fdn_errctx_pop();
    }
    SWEEP(sw, fdn_errctx_set_metadata, 0)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_set_metadata("user", "%d", 42));
    }
    SWEEP(sw, fdn_errctx_add_breadcrumb, 0)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_add_breadcrumb("alloc", "crumb"));
    }
    SWEEP(sw, fdn_errctx_capture, 0)
    {
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
    SWEEP(sw, fdn_errctx_adopt, 0)
    {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_errctx_adopt(cap)))
            fdn_errctx_pop();
    }
    fdn_errctx_capture_free(cap);
    SWEEP(sw, fdn_errctx_run, 0)
    {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_run("alloc", "run", ok_fn, NULL, &err));
    }
    int hooked = 0;
    SWEEP(sw, fdn_errctx_run_hooked, 0)
    {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        int rc = fdn_errctx_run_hooked("alloc", "run", failing_fn, NULL, &err, hook, &hooked);
        sweep_failed_vs(&sw, rc, FDN_EIO); /* fn's own failure, reported with its context */
        assert_int_equal(err.code, FDN_EIO);
    }
    assert_true(hooked > 0);
    SWEEP(sw, fdn_errctx_enhance, 0)
    {
        fdn_error_t err = FDN_ERROR_INIT;
        fdn_err_set(&err, FDN_EIO, "disk");
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_errctx_enhance(&err));
    }
    SWEEP(sw, fdn_err_set, 0)
    {
        fdn_error_t err = FDN_ERROR_INIT;
        sweep_arm(&sw);
        sweep_failed_vs(&sw, fdn_err_set(&err, FDN_ETIMEDOUT, "waited %d ms", 5), FDN_ETIMEDOUT);
        fdn_err_add_context(&err, "k", "%s", "v");
        char buf[256];
        assert_true(fdn_err_to_json(&err, buf, sizeof(buf)) > 0);
    }
    SWEEP(sw, fdn_uuid4, 0)
    {
        char id[FDN_UUID_STR_LEN + 1];
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_uuid4(id));
    }
    fdn_errctx_pop();
}

static fdn_error_t errv(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static fdn_error_t errv(int code, const char *fmt, ...)
{
    fdn_error_t e = FDN_ERROR_INIT;
    va_list ap;
    va_start(ap, fmt);
    NOALLOC_SWEEP(fdn_err_setv, fdn_err_setv(&e, code, fmt, ap));
    va_end(ap);
    return e;
}

static void noop_hook(const fdn_error_t *err, void *user)
{
    (void)err;
    (void)user;
}

/* The taxonomy, formatting and the context's readers allocate nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    char buf[512], corr[FDN_UUID_STR_LEN + 1];
    const char *acts[8];
    fdn_error_t e = errv(FDN_EIO, "disk %d", 1);
    NOALLOC_SWEEP(fdn_err_add_context, fdn_err_add_context(&e, "k", "%s", "v"));
    NOALLOC_SWEEP(fdn_err_format, fdn_err_format(&e, buf, sizeof(buf)));
    {
        const char *pos = e.context;
        char key[64];
        NOALLOC_SWEEP(fdn_err_context_next,
                      fdn_err_context_next(&pos, key, sizeof(key), buf, sizeof(buf), NULL));
    }
    NOALLOC_SWEEP(fdn_err_to_json, fdn_err_to_json(&e, buf, sizeof(buf)));
    NOALLOC_SWEEP(fdn_err_metric_name, fdn_err_metric_name(&e, buf, sizeof(buf)));
    NOALLOC_SWEEP(fdn_err_info, fdn_err_info(FDN_EIO));
    NOALLOC_SWEEP(fdn_strerror, fdn_strerror(FDN_EIO));
    NOALLOC_SWEEP(fdn_err_name, fdn_err_name(FDN_EIO));
    NOALLOC_SWEEP(fdn_err_count, fdn_err_count());
    NOALLOC_SWEEP(fdn_err_at, fdn_err_at(0));
    NOALLOC_SWEEP(fdn_severity_name, fdn_severity_name(FDN_SEV_HIGH));
    NOALLOC_SWEEP(fdn_retry_name, fdn_retry_name(FDN_RETRY_FIXED_DELAY));
    NOALLOC_SWEEP(fdn_retry_rule, fdn_retry_rule("timeout", FDN_SEV_HIGH));
    NOALLOC_SWEEP(fdn_retry_delay_ms, fdn_retry_delay_ms(FDN_RETRY_FIXED_DELAY, 1));
    NOALLOC_SWEEP(fdn_err_retryable, fdn_err_retryable(FDN_EIO));
    NOALLOC_SWEEP(fdn_err_should_escalate, fdn_err_should_escalate(FDN_EIO));
    NOALLOC_SWEEP(fdn_err_recovery_actions,
                  fdn_err_recovery_actions(FDN_EIO, "op", acts, 8, buf, sizeof(buf)));
    assert_int_equal(fdn_errctx_push_root("alloc", "acc", NULL), 0);
    assert_int_equal(fdn_errctx_add_breadcrumb("alloc", "c"), 0);
    assert_int_equal(fdn_errctx_set_metadata("k", "%s", "v"), 0);
    NOALLOC_SWEEP(fdn_errctx_depth, fdn_errctx_depth());
    NOALLOC_SWEEP(fdn_errctx_operation_id, fdn_errctx_operation_id());
    NOALLOC_SWEEP(fdn_errctx_correlation_id, fdn_errctx_correlation_id(corr));
    NOALLOC_SWEEP(fdn_errctx_duration_ns, fdn_errctx_duration_ns());
    NOALLOC_SWEEP(fdn_errctx_breadcrumb_count, fdn_errctx_breadcrumb_count());
    NOALLOC_SWEEP(fdn_errctx_breadcrumbs_dropped, fdn_errctx_breadcrumbs_dropped());
    NOALLOC_SWEEP(fdn_errctx_format_breadcrumbs, fdn_errctx_format_breadcrumbs(buf, sizeof(buf)));
    NOALLOC_SWEEP(fdn_errctx_get_metadata, fdn_errctx_get_metadata("k", buf, sizeof(buf)));
    NOALLOC_SWEEP(fdn_errctx_metadata_count, fdn_errctx_metadata_count());
    NOALLOC_SWEEP(fdn_errctx_set_context_hook, fdn_errctx_set_context_hook(noop_hook, NULL));
    NOALLOC_SWEEP(fdn_errctx_set_context_hook, fdn_errctx_set_context_hook(NULL, NULL));
    NOALLOC_SWEEP(fdn_errctx_set_error_hook, fdn_errctx_set_error_hook(NULL, NULL));
    fdn_errctx_capture_t *cap = NULL;
    assert_int_equal(fdn_errctx_capture(&cap), 0);
    NOALLOC_SWEEP(fdn_errctx_capture_free, fdn_errctx_capture_free(cap));
    NOALLOC_SWEEP(fdn_errctx_pop, fdn_errctx_pop());
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_context),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
