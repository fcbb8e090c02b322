/* Fault test: failing-allocator sweep over the config service. Allocation number k fails in
 * turn; each call must return FDN_ENOMEM (or succeed once k passes its last allocation),
 * leave the object unchanged, and leak nothing (ASan/LSan). jansson's own allocations are
 * not routed through the hook; only the library's are swept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>

static atomic_long g_count;
static atomic_long g_fail_at; /* 0 = never */

static void *f_malloc(size_t n)
{
    long c = atomic_fetch_add(&g_count, 1) + 1;
    long f = atomic_load(&g_fail_at);
    if (f != 0 && c == f)
        return NULL;
    return malloc(n);
}

static void *f_realloc(void *p, size_t n)
{
    long c = atomic_fetch_add(&g_count, 1) + 1;
    long f = atomic_load(&g_fail_at);
    if (f != 0 && c == f)
        return NULL;
    return realloc(p, n);
}

static void arm(long k)
{
    atomic_store(&g_fail_at, k == 0 ? 0 : atomic_load(&g_count) + k);
}

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
        arm(k);
        int rc = fdn_config_create(&c, &o, NULL);
        arm(0);
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
        arm(k);
        int rc = fdn_config_update_double(c, "ai.planning.sampling_rate", 0.5, NULL);
        arm(0);
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
        arm(k);
        int rc = fdn_config_get_json(c, "ai", &out, NULL);
        arm(0);
        fdn_free(out);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    for (long k = 1; k < 50; k++) {
        uint64_t id = 0;
        arm(k);
        int rc = fdn_config_subscribe(c, "dev", noop_cb, NULL, &id);
        arm(0);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    for (long k = 1; k < 50; k++) {
        arm(k);
        int rc = fdn_config_reset(c, NULL);
        arm(0);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDN_ENOMEM);
    }
    fdn_config_destroy(c);
}

int main(void)
{
    static const fdn_allocator_t a = {f_malloc, f_realloc, free};
    fdn_set_allocator(&a);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sweep),
        cmocka_unit_test(update_and_read_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
