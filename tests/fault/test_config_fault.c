/* Fault test: failing-allocator sweep over the config service. Allocation number k fails in
 * turn; each call must return FDN_ENOMEM (or succeed once k passes its last allocation),
 * leave the object unchanged, and leak nothing (ASan/LSan). jansson's own allocations are
 * not routed through the hook; only the library's are swept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <fdn/config.h>
#include "services/config_int.h"

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

/* ---- the fallback cache never goes back to an older value ----------------------------- */

/* Reader A reads revision 2 and is stalled at its first allocation (the read's text, after
 * it took its snapshot and before it stores into the cache), an update publishes revision 3
 * and reader B reads and caches it, then A goes on. A stored last and used to overwrite the
 * newer entry, so a stopped service served the older value (the review's f_fallback: 32 of
 * 200 random trials). Deterministic: the stall is an allocator hook on A's thread only. */
typedef struct stall {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stalled, go;
} stall_t;

static stall_t g_stall = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void stall_first(long n)
{
    if (n != 1)
        return;
    pthread_mutex_lock(&g_stall.mu);
    g_stall.stalled = true;
    pthread_cond_broadcast(&g_stall.cv);
    while (!g_stall.go)
        pthread_cond_wait(&g_stall.cv, &g_stall.mu);
    pthread_mutex_unlock(&g_stall.mu);
}

typedef struct reader {
    fdn_config_t *c;
    int rc;
    char text[32];
} reader_t;

static void *stalled_reader(void *p)
{
    reader_t *r = p;
    fail_alloc_at_this_thread(0); /* count (and hook) this thread's allocations, fail none */
    char *out = NULL;
    r->rc = fdn_config_get_with_fallback(r->c, "capture.processing.batch_size", &out, NULL);
    fail_alloc_off();
    if (r->rc == 0)
        snprintf(r->text, sizeof r->text, "%s", out);
    fdn_free(out);
    return NULL;
}

static void fallback_keeps_the_newest_value(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    assert_int_equal(fdn_config_update_int(c, "capture.processing.batch_size", 2, NULL), 0);
    g_stall.stalled = g_stall.go = false;
    fail_alloc_set_hook(stall_first);
    reader_t a = {c, -1, ""};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stalled_reader, &a), 0);
    pthread_mutex_lock(&g_stall.mu);
    while (!g_stall.stalled)
        pthread_cond_wait(&g_stall.cv, &g_stall.mu);
    pthread_mutex_unlock(&g_stall.mu);
    /* A holds revision 2's value; publish 3 and cache it from this thread */
    assert_int_equal(fdn_config_update_int(c, "capture.processing.batch_size", 3, NULL), 0);
    char *out = NULL;
    assert_int_equal(fdn_config_get_with_fallback(c, "capture.processing.batch_size", &out, NULL),
                     0);
    assert_string_equal(out, "3");
    fdn_free(out);
    pthread_mutex_lock(&g_stall.mu);
    g_stall.go = true;
    pthread_cond_broadcast(&g_stall.cv);
    pthread_mutex_unlock(&g_stall.mu);
    assert_int_equal(pthread_join(t, NULL), 0);
    fail_alloc_set_hook(NULL);
    assert_int_equal(a.rc, 0);
    assert_string_equal(a.text, "2"); /* A did read the older revision */
    fdn__config_service_stop(c);
    out = NULL;
    assert_int_equal(fdn_config_get_with_fallback(c, "capture.processing.batch_size", &out, NULL),
                     0);
    assert_string_equal(out, "3");
    fdn_free(out);
    fdn_config_destroy(c);
}

int main(void)
{
    fail_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sweep),
        cmocka_unit_test(update_and_read_sweep),
        cmocka_unit_test(fallback_keeps_the_newest_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
