/* Failing-allocator sweep of include/fdn/config.h (tests/alloc/README.md): creation (file,
 * environment overrides, application keys), reads that return JSON, every update and reset,
 * the pure validators, subscriptions, the fallback cache and the queued updates. A failed
 * update or reset leaves the document and the revision as they were. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/config.h>
#include <fdn/error.h>

#include "alloc_sweep.h"

static const char *const no_env[] = {NULL};
static const char *const with_env[] = {"FDN_DEV__DEBUG_MODE=true", NULL};

static const fdn_config_key_def_t keys[] = {
    {"app.workers", FDN_CONFIG_INT, "4", FDN_CONFIG_RULE_POSITIVE, 0, 0, NULL, true, "w", 0, NULL},
    {"app.on", FDN_CONFIG_BOOL, "false", FDN_CONFIG_RULE_NONE, 0, 0, NULL, true, "o", 0, NULL},
    {"app.name", FDN_CONFIG_STRING, "\"a\"", FDN_CONFIG_RULE_NONE, 0, 0, NULL, true, "n", 0, NULL},
    {"app.rate", FDN_CONFIG_NUMBER, "0.5", FDN_CONFIG_RULE_RANGE, 0, 1, NULL, true, "r", 0, NULL},
};

static fdn_config_t *mk(bool stopped)
{
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.keys = keys;
    o.nkeys = sizeof(keys) / sizeof(keys[0]);
    o.start_stopped = stopped;
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    return c;
}

static char *dump(fdn_config_t *c)
{
    char *s = NULL;
    assert_int_equal(fdn_config_get_json(c, "", &s, NULL), 0);
    return s;
}

static void sweep_create(void **state)
{
    (void)state;
    char path[] = "/tmp/fdn-alloc-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char doc[] = "{\"ai\": {\"provider\": \"anthropic\"}, \"app\": {\"workers\": 7}}";
    assert_int_equal(write(fd, doc, sizeof(doc) - 1), (ssize_t)(sizeof(doc) - 1));
    close(fd);
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.file = path;
    o.envp = with_env;
    o.keys = keys;
    o.nkeys = sizeof(keys) / sizeof(keys[0]);
    SWEEP(sw, fdn_config_create, 0)
    {
        fdn_config_t *c = NULL;
        sweep_arm(&sw);
        int rc = fdn_config_create(&c, &o, NULL);
        if (sweep_failed(&sw, rc)) {
            assert_null(c);
        } else {
            int64_t w = 0;
            bool dbg = false;
            assert_int_equal(fdn_config_get_int(c, "app.workers", &w), 0);
            assert_int_equal(w, 7);
            assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &dbg), 0);
            assert_true(dbg);
            fdn_config_destroy(c);
        }
    }
    unlink(path);
}

static void sweep_reads(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    SWEEP(sw, fdn_config_get_json, 0)
    {
        char *out = NULL;
        sweep_arm(&sw);
        int rc = fdn_config_get_json(c, "app", &out, NULL);
        if (sweep_failed(&sw, rc))
            assert_null(out);
        else
            assert_non_null(strstr(out, "\"workers\""));
        fdn_free(out);
    }
    SWEEP(sw, fdn_config_snapshot_get_json, 0)
    {
        const fdn_config_snapshot_t *snap = NULL;
        assert_int_equal(fdn_config_acquire(c, &snap), 0);
        char *out = NULL;
        sweep_arm(&sw);
        int rc = fdn_config_snapshot_get_json(snap, "app.name", &out);
        if (sweep_failed(&sw, rc))
            assert_null(out);
        else
            assert_string_equal(out, "\"a\"");
        fdn_free(out);
        fdn_config_release(snap);
    }
    SWEEP(sw, fdn_config_get_string, 0)
    {
        char buf[16];
        sweep_arm(&sw);
        int rc = fdn_config_get_string(c, "app.name", buf, sizeof(buf), NULL);
        if (!sweep_failed(&sw, rc))
            assert_string_equal(buf, "a");
    }
    fdn_config_destroy(c);
}

/* One update sweep: a failed call changes neither the document nor the revision; a call that
 * succeeds (the warm-up and the last pass) is undone by a reset, so that every pass starts
 * from the defaults and the failing passes write nothing. */
#define UPDATE_SWEEP(fname, call)                                                                  \
    SWEEP(sw, fname, SWEEP_KEEP)                                                                   \
    {                                                                                              \
        char *before = dump(c);                                                                    \
        uint64_t rev = fdn_config_revision(c);                                                     \
        sweep_arm(&sw);                                                                            \
        int rc = call;                                                                             \
        bool failed = sweep_failed(&sw, rc);                                                       \
        char *after = dump(c);                                                                     \
        if (failed) {                                                                              \
            assert_string_equal(before, after);                                                    \
            assert_int_equal(fdn_config_revision(c), rev);                                         \
        } else {                                                                                   \
            assert_string_not_equal(before, after);                                                \
            assert_int_equal(fdn_config_revision(c), rev + 1);                                     \
            assert_int_equal(fdn_config_reset(c, NULL), 0);                                        \
        }                                                                                          \
        fdn_free(before);                                                                          \
        fdn_free(after);                                                                           \
    }

static void noop_cb(const fdn_config_change_t *ch, void *user)
{
    (void)ch;
    (void)user;
}

static void sweep_updates(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    UPDATE_SWEEP(fdn_config_update_json, fdn_config_update_json(c, "app.name", "\"zz\"", NULL));
    UPDATE_SWEEP(fdn_config_update_int, fdn_config_update_int(c, "app.workers", 9, NULL));
    UPDATE_SWEEP(fdn_config_update_double, fdn_config_update_double(c, "app.rate", 0.25, NULL));
    UPDATE_SWEEP(fdn_config_update_bool, fdn_config_update_bool(c, "app.on", true, NULL));
    UPDATE_SWEEP(fdn_config_update_string, fdn_config_update_string(c, "app.name", "x", NULL));
    UPDATE_SWEEP(fdn_config_update_or_queue,
                 fdn_config_update_or_queue(c, "app.workers", "3", NULL, NULL));
    UPDATE_SWEEP(fdn_config_update_json,
                 fdn_config_update_json(c, "ai.planning.sampling_rate", "0.75", NULL));
    /* the same with a subscriber, whose notification is queued by the update */
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(c, "app", noop_cb, NULL, &id), 0);
    UPDATE_SWEEP(fdn_config_update_int, fdn_config_update_int(c, "app.workers", 11, NULL));
    assert_int_equal(fdn_config_unsubscribe(c, id), 0);
    fdn_config_destroy(c);
}

/* A reset sweep: app.workers is 5 before each pass (set again only after a reset succeeded);
 * a failed reset leaves it, the document and the revision as they were. */
#define RESET_SWEEP(fname)                                                                         \
    SWEEP(sw, fname, SWEEP_KEEP)                                                                   \
    {                                                                                              \
        int64_t w = 0;                                                                             \
        assert_int_equal(fdn_config_get_int(c, "app.workers", &w), 0);                             \
        if (w != 5)                                                                                \
            assert_int_equal(fdn_config_update_int(c, "app.workers", 5, NULL), 0);                 \
        char *before = dump(c);                                                                    \
        uint64_t rev = fdn_config_revision(c);                                                     \
        sweep_arm(&sw);                                                                            \
        int rc = fname(c, NULL);                                                                   \
        assert_int_equal(fdn_config_get_int(c, "app.workers", &w), 0);                             \
        if (sweep_failed(&sw, rc)) {                                                               \
            char *after = dump(c);                                                                 \
            assert_string_equal(before, after);                                                    \
            assert_int_equal(fdn_config_revision(c), rev);                                         \
            assert_int_equal(w, 5);                                                                \
            fdn_free(after);                                                                       \
        } else {                                                                                   \
            assert_int_equal(w, 4);                                                                \
        }                                                                                          \
        fdn_free(before);                                                                          \
    }

static void sweep_resets(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    RESET_SWEEP(fdn_config_reset);
    RESET_SWEEP(fdn_config_reset_to_startup);
    fdn_config_destroy(c);
}

/* A subscriber held in its first callback (so that no notification is freed by the delivery
 * thread while a pass counts live blocks), counting the RESET notifications it gets. */
typedef struct held {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold, entered;
    long resets;
    uint64_t last_rev;
} held_t;

static void held_cb(const fdn_config_change_t *ch, void *user)
{
    held_t *h = user;
    pthread_mutex_lock(&h->mu);
    h->entered = true;
    pthread_cond_broadcast(&h->cv);
    while (h->hold)
        pthread_cond_wait(&h->cv, &h->mu);
    if (ch->kind == FDN_CONFIG_CHANGE_RESET)
        h->resets++;
    h->last_rev = ch->revision;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Every reset that succeeds reaches the subscriber or is counted as dropped
 * (fdn_config_status_t.dropped), whichever allocation failed: making the reset's tree
 * (fdn__cfg_build_tree) included. Before, a reset whose tree could not be made was published
 * and notified nobody, uncounted. */
static void sweep_reset_notified_or_dropped(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.keys = keys;
    o.nkeys = sizeof(keys) / sizeof(keys[0]);
    o.subscriber_queue = 1 << 20; /* nothing dropped for want of room */
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    held_t h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, true, false, 0, 0};
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(c, "", held_cb, &h, &id), 0);
    assert_int_equal(fdn_config_update_int(c, "app.workers", 5, NULL), 0);
    pthread_mutex_lock(&h.mu);
    while (!h.entered)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    fdn_config_status_t st0, st1;
    assert_int_equal(fdn_config_status(c, &st0), 0);
    long ok = 0;
    SWEEP(sw, fdn_config_reset, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_config_reset(c, NULL);
        if (!sweep_failed(&sw, rc))
            ok++;
    }
    /* the last notification: every reset's comes before it */
    assert_int_equal(fdn_config_update_int(c, "app.workers", 6, NULL), 0);
    uint64_t last = fdn_config_revision(c);
    pthread_mutex_lock(&h.mu);
    h.hold = false;
    pthread_cond_broadcast(&h.cv);
    while (h.last_rev < last)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    assert_int_equal(fdn_config_status(c, &st1), 0);
    assert_true(ok > 0);
    assert_true(st1.dropped > st0.dropped); /* some pass failed the tree */
    assert_int_equal(h.resets + (long)(st1.dropped - st0.dropped), ok);
    assert_int_equal(fdn_config_unsubscribe(c, id), 0);
    fdn_config_destroy(c);
}

static void count_problem(const char *path, const char *message, int code, void *user)
{
    (void)path;
    (void)message;
    (void)code;
    (*(int *)user)++;
}

static void sweep_validators(void **state)
{
    (void)state;
    static const char good[] = "{\"ai\": {\"provider\": \"anthropic\"}, \"dev\": {}}";
    static const char bad[] = "{\"ai\": {\"provider\": 5, \"nope\": 1}, \"x\": []}";
    /* validate_json wants a whole document: the built-in defaults as get_json gives them */
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    char *whole = dump(c);
    fdn_config_destroy(c);
    SWEEP(sw, fdn_config_validate_json, 0)
    {
        sweep_arm(&sw);
        int rc = fdn_config_validate_json(whole, strlen(whole), NULL);
        sweep_failed(&sw, rc);
    }
    fdn_free(whole);
    SWEEP(sw, fdn_config_check_json, 0)
    {
        int problems = 0;
        sweep_arm(&sw);
        int rc = fdn_config_check_json(good, sizeof(good) - 1, count_problem, &problems);
        if (!sweep_failed(&sw, rc))
            assert_int_equal(problems, 0);
    }
    /* a document with problems: the call's answer is a problem code; out of memory it may
     * only be FDN_ENOMEM, and then no problem may have been invented */
    SWEEP(sw, fdn_config_check_json, 0)
    {
        int problems = 0;
        sweep_arm(&sw);
        int rc = fdn_config_check_json(bad, sizeof(bad) - 1, count_problem, &problems);
        if (!sweep_failed_vs(&sw, rc, FDN_ECONFIG_INVALID))
            assert_true(problems >= 2);
    }
}

static void sweep_subscribe(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    SWEEP(sw, fdn_config_subscribe, 0)
    {
        fdn_config_status_t st;
        uint64_t id = 0;
        sweep_arm(&sw);
        int rc = fdn_config_subscribe(c, "app", noop_cb, NULL, &id);
        assert_int_equal(fdn_config_status(c, &st), 0);
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(st.subscribers, 0);
        } else {
            assert_int_equal(st.subscribers, 1);
            assert_int_equal(fdn_config_unsubscribe(c, id), 0);
        }
    }
    fdn_config_destroy(c);
}

static void sweep_fallback(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    SWEEP(sw, fdn_config_get_with_fallback, SWEEP_KEEP)
    {
        char *out = NULL;
        sweep_arm(&sw);
        int rc = fdn_config_get_with_fallback(c, "app.workers", &out, NULL);
        if (sweep_failed(&sw, rc))
            assert_null(out);
        else
            assert_string_equal(out, "4");
        fdn_free(out);
    }
    fdn_config_destroy(c);
    /* a stopped service queues the update (checked against the current document) */
    c = mk(true);
    SWEEP(sw, fdn_config_update_or_queue, SWEEP_KEEP)
    {
        size_t cached = 0, pending = 0, pending_after = 0;
        fdn_config_fallback_stats(c, &cached, &pending);
        bool queued = false;
        sweep_arm(&sw);
        int rc = fdn_config_update_or_queue(c, "app.workers", "6", &queued, NULL);
        fdn_config_fallback_stats(c, &cached, &pending_after);
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(pending_after, pending);
        } else {
            assert_true(queued);
            assert_int_equal(pending_after, pending + 1);
        }
    }
    fdn_config_destroy(c);
}

/* The readers of scalars, snapshots and status make no allocation. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_config_t *c = mk(false);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    size_t n = 0, cached = 0, pending = 0;
    fdn_config_key_t k;
    fdn_config_status_t st;
    const fdn_config_snapshot_t *snap = NULL;
    NOALLOC_SWEEP(fdn_config_available, fdn_config_available(c));
    NOALLOC_SWEEP(fdn_config_get_int, fdn_config_get_int(c, "app.workers", &i));
    NOALLOC_SWEEP(fdn_config_get_double, fdn_config_get_double(c, "app.rate", &d));
    NOALLOC_SWEEP(fdn_config_get_bool, fdn_config_get_bool(c, "app.on", &b));
    NOALLOC_SWEEP(fdn_config_is_null, fdn_config_is_null(c, "app.name", &b));
    NOALLOC_SWEEP(fdn_config_revision, fdn_config_revision(c));
    NOALLOC_SWEEP(fdn_config_key_resolve, fdn_config_key_resolve(c, "app.workers", &k));
    NOALLOC_SWEEP(fdn_config_key_get_int, fdn_config_key_get_int(c, k, &i));
    assert_int_equal(fdn_config_key_resolve(c, "app.rate", &k), 0);
    NOALLOC_SWEEP(fdn_config_key_get_double, fdn_config_key_get_double(c, k, &d));
    assert_int_equal(fdn_config_key_resolve(c, "app.on", &k), 0);
    NOALLOC_SWEEP(fdn_config_key_get_bool, fdn_config_key_get_bool(c, k, &b));
    NOALLOC_SWEEP(fdn_config_acquire, fdn_config_acquire(c, &snap));
    NOALLOC_SWEEP(fdn_config_snapshot_revision, fdn_config_snapshot_revision(snap));
    NOALLOC_SWEEP(fdn_config_snapshot_get_int,
                  fdn_config_snapshot_get_int(snap, "app.workers", &i));
    NOALLOC_SWEEP(fdn_config_snapshot_get_double,
                  fdn_config_snapshot_get_double(snap, "app.rate", &d));
    NOALLOC_SWEEP(fdn_config_snapshot_get_bool, fdn_config_snapshot_get_bool(snap, "app.on", &b));
    NOALLOC_SWEEP(fdn_config_release, fdn_config_release(snap));
    NOALLOC_SWEEP(fdn_config_is_updatable, fdn_config_is_updatable(c, "app.workers"));
    NOALLOC_SWEEP(fdn_config_updatable_paths, fdn_config_updatable_paths(&n));
    NOALLOC_SWEEP(fdn_config_status, fdn_config_status(c, &st));
    NOALLOC_SWEEP(fdn_config_fallback_stats, fdn_config_fallback_stats(c, &cached, &pending));
    NOALLOC_SWEEP(fdn_config_fallback_cleanup, fdn_config_fallback_cleanup(c));
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(c, "app", noop_cb, NULL, &id), 0);
    NOALLOC_SWEEP(fdn_config_unsubscribe, fdn_config_unsubscribe(c, id));
    NOALLOC_SWEEP(fdn_config_destroy, fdn_config_destroy(c)); /* teardown allocates nothing */
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_create),
        cmocka_unit_test(sweep_reads),
        cmocka_unit_test(sweep_updates),
        cmocka_unit_test(sweep_resets),
        cmocka_unit_test(sweep_validators),
        cmocka_unit_test(sweep_subscribe),
        cmocka_unit_test(sweep_fallback),
        cmocka_unit_test(accessors_allocate_nothing),
        cmocka_unit_test(sweep_reset_notified_or_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
