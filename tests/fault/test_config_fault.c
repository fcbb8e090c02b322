/* Fault test: failing-allocator sweep over the config service. Allocation number k fails in
 * turn; each call must return FDN_ENOMEM (or succeed once k passes its last allocation),
 * leave the object unchanged, and leak nothing (ASan/LSan). jansson's own allocations are
 * not routed through the hook; only the library's are swept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/config.h>

#include "fail_alloc.h"

static const char *const no_env[] = {NULL};

static void create_sweep(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.on_change = (fdn_config_change_cb)NULL;
    int ok = 0;
    for (long k = 1; k < 5000 && !ok; k++) {
        fdn_config_t *c = NULL;
        fail_alloc_at(k);
        int rc = fdn_config_create(&c, &o, NULL);
        fail_alloc_off();
        if (rc == 0) {
            ok = 1;
            fdn_config_destroy(c);
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
            assert_null(c);
        }
    }
    assert_true(ok);
}

static void noop_cb(const fdn_config_change_t *ch, void *user)
{
    (void)ch;
    (void)user;
}

static void update_and_read_sweep(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    assert_int_equal(fdn_config_subscribe(c, "", noop_cb, NULL, NULL), 0);
    int ok = 0;
    for (long k = 1; k < 500 && !ok; k++) {
        char *before = NULL;
        assert_int_equal(fdn_config_get_json(c, "", &before, NULL), 0);
        uint64_t rev = fdn_config_revision(c);
        fail_alloc_at(k);
        int rc = fdn_config_update_double(c, "ai.planning.sampling_rate", 0.5, NULL);
        fail_alloc_off();
        if (rc == 0) {
            ok = 1;
        } else {
            assert_int_equal(rc, FDN_ENOMEM);
            char *after = NULL;
            assert_int_equal(fdn_config_get_json(c, "", &after, NULL), 0);
            assert_string_equal(before, after);
            assert_int_equal(fdn_config_revision(c), rev);
            fdn_free(after);
        }
        fdn_free(before);
    }
    assert_true(ok);
    for (long k = 1; k < 50; k++) {
        char *out = NULL;
        fail_alloc_at(k);
        int rc = fdn_config_get_json(c, "ai", &out, NULL);
        fail_alloc_off();
        fdn_free(out);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    for (long k = 1; k < 50; k++) {
        uint64_t id = 0;
        fail_alloc_at(k);
        int rc = fdn_config_subscribe(c, "dev", noop_cb, NULL, &id);
        fail_alloc_off();
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    for (long k = 1; k < 50; k++) {
        fail_alloc_at(k);
        int rc = fdn_config_reset(c, NULL);
        fail_alloc_off();
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    fdn_config_destroy(c);
}

int main(void)
{
    fail_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sweep),
        cmocka_unit_test(update_and_read_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
