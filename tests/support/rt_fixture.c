/* DESIGN: the runtime fixture (see rt_fixture.h). Owned by the test thread; the only other
 * thread involved is the runtime's config hook, which calls on_config_counted through the
 * telemetry handler and touches nothing but the waiter (mutex + condition variable). */
#include "rt_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>
#include <fdn/telemetry.h>
#include <fdn/testing.h>

static int on_config_counted(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                             const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    test_rt_t *f = user;
    for (size_t i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "revision") == 0)
            test_waiter_raise(&f->revision, (int64_t)strtoull(meta[i].value, NULL, 10));
    return 0;
}

test_rt_t *test_rt_new(const fdn_runtime_opts_t *base, bool watch_config)
{
    test_rt_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_waiter_init(&f->revision);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    if (base != NULL)
        o = *base;
    else
        o.ignore_env = true;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_testing_runtime_create(&f->rt, &o, &err);
    if (rc != 0) {
        test_waiter_destroy(&f->revision);
        free(f);
        fail_msg("test runtime create: %s %s", fdn_err_name(rc), err.message);
    }
    f->clock = fdn_runtime_clock(f->rt);
    if (watch_config) {
        rc = fdn_telemetry_attach(fdn_runtime_telemetry(f->rt), &f->handler,
                                  "foundation.config_updates", FDN_TELEMETRY_MATCH_EXACT,
                                  on_config_counted, f);
        if (rc != 0) {
            test_rt_free(f);
            fail_msg("config watcher: %s", fdn_err_name(rc));
        }
        f->watching = true;
    }
    return f;
}

void test_rt_free(test_rt_t *f)
{
    if (f == NULL)
        return;
    if (f->watching)
        (void)fdn_telemetry_detach(fdn_runtime_telemetry(f->rt), f->handler);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_testing_runtime_destroy(f->rt, &err);
    test_waiter_destroy(&f->revision);
    free(f);
    if (rc != 0)
        fail_msg("test runtime destroy: %s %s", fdn_err_name(rc), err.message);
}

void test_rt_wait_config(test_rt_t *f, uint64_t rev)
{
    assert_true(f->watching);
    test_waiter_wait(&f->revision, (int64_t)rev);
}

void test_rt_settle_config(test_rt_t *f)
{
    fdn_config_t *cfg = fdn_runtime_config(f->rt);
    bool v = false;
    assert_int_equal(fdn_config_get_bool(cfg, "dev.verbose_logging", &v), 0);
    assert_int_equal(fdn_config_update_bool(cfg, "dev.verbose_logging", !v, NULL), 0);
    test_rt_wait_config(f, fdn_config_revision(cfg));
}

int test_rt_setup(void **state)
{
    *state = test_rt_new(NULL, false);
    return 0;
}

int test_rt_setup_watched(void **state)
{
    *state = test_rt_new(NULL, true);
    return 0;
}

int test_rt_teardown(void **state)
{
    test_rt_free(*state);
    *state = NULL;
    return 0;
}
