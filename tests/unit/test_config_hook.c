/* Unit tests: the config service's runtime hook runs on its own thread and can be drained. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include <fdn/config.h>

#include "services/config_int.h"
#include "threads.h"

static const char *const no_env[] = {NULL};

typedef struct gate {
    test_waiter_t open; /* 1 once open */
    test_waiter_t hook_calls;
    test_waiter_t sub_calls;
    int more[8]; /* the hook's fdn_config_change_t.more, call by call (hook thread only) */
} gate_t;

/* The hook blocks until the gate opens (a slow hook, e.g. an fsync per recorded event). */
static void slow_hook(const fdn_config_change_t *c, void *user)
{
    gate_t *g = user;
    test_waiter_wait(&g->open, 1);
    int64_t call = test_waiter_value(&g->hook_calls);
    if (call < 8)
        g->more[call] = c->more;
    test_waiter_add(&g->hook_calls, 1);
}

static void subscriber(const fdn_config_change_t *c, void *user)
{
    (void)c;
    gate_t *g = user;
    test_waiter_add(&g->sub_calls, 1);
}

static void slow_hook_does_not_delay_subscribers_and_drains(void **state)
{
    (void)state;
    gate_t g = {TEST_WAITER_INIT, TEST_WAITER_INIT, TEST_WAITER_INIT, {0}};
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.on_change = slow_hook;
    o.on_change_user = &g;
    fdn_config_t *cfg = NULL;
    assert_int_equal(fdn_config_create(&cfg, &o, NULL), 0);
    uint64_t sub = 0;
    assert_int_equal(fdn_config_subscribe(cfg, "dev", subscriber, &g, &sub), 0);

    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_config_update_bool(cfg, "dev.debug_mode", i % 2 == 0, NULL), 0);
    /* the subscriber gets all five while the hook is still blocked on its first */
    test_waiter_wait(&g.sub_calls, 5);
    assert_int_equal(test_waiter_value(&g.hook_calls), 0);

    /* drain waits for the hook: a bounded wait times out while it is blocked */
    assert_int_equal(fdn__config_hook_drain(cfg, 20), FDN_ETIMEDOUT);
    test_waiter_raise(&g.open, 1);
    assert_int_equal(fdn__config_hook_drain(cfg, TEST_WAIT_MS), 0);
    /* drained means every queued notification handled */
    assert_int_equal(test_waiter_value(&g.hook_calls), 5);
    /* the four held behind the first were delivered with more set on all but the last */
    assert_int_equal(g.more[1] + g.more[2] + g.more[3], 3);
    assert_int_equal(g.more[4], 0);

    assert_int_equal(fdn_config_unsubscribe(cfg, sub), 0);
    fdn_config_destroy(cfg);
    assert_int_equal(fdn__config_hook_drain(NULL, 0), FDN_EINVAL);
}

/* ---- the apply hook (config_int.h) ---- */

/* Refuses interface.max_results 7; counts the refusals reported. */
typedef struct refuser {
    int applied;
    int reported;
} refuser_t;

static int refuse_seven(const fdn_config_snapshot_t *cur, const fdn_config_snapshot_t *next,
                        const char *path, void *user, fdn_error_t *err)
{
    (void)cur;
    refuser_t *r = user;
    r->applied++;
    int64_t v = 0;
    if (strcmp(path, "interface.max_results") == 0 &&
        fdn_config_snapshot_get_int(next, path, &v) == 0 && v == 7)
        return fdn_err_set(err, FDN_EINVAL, "seven refused");
    return 0;
}

static void refusal_reported(const char *path, const char *value_json, const fdn_error_t *why,
                             void *user)
{
    (void)path;
    (void)value_json;
    (void)why;
    ((refuser_t *)user)->reported++;
}

/* An update queued while stopped and refused by the apply hook when the start applies it is
 * counted as a failed pending update, and reported nowhere else: a later update that fails
 * because the service is stopped is not reported as a refusal of the hook. Before, the mark
 * the start's refusal left made that update report the old refusal (an event
 * config_update_refused and a foundation.config.service_refused count in a runtime). */
static void queued_refusal_not_reported_again(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    fdn_config_t *cfg = NULL;
    assert_int_equal(fdn_config_create(&cfg, &o, NULL), 0);
    refuser_t r = {0, 0};
    fdn__cfg_apply_hook_t hook = {.apply = refuse_seven, .refused = refusal_reported, .user = &r};
    fdn__config_set_apply_hook(cfg, &hook);

    fdn__config_service_stop(cfg);
    bool queued = false;
    assert_int_equal(fdn_config_update_or_queue(cfg, "interface.max_results", "7", &queued, NULL),
                     0);
    assert_true(queued);
    assert_int_equal(fdn__config_service_start(cfg), 0);
    assert_int_equal(r.applied, 1);
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(cfg, &st), 0);
    assert_int_equal(st.pending_failed, 1);
    assert_int_equal(r.reported, 0); /* queued updates: counted in pending_failed only */

    fdn__config_service_stop(cfg);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 8, NULL),
                     FDN_EUNAVAILABLE);
    assert_int_equal(r.reported, 0);

    /* running again: a refusal is reported once, a taken value not at all */
    assert_int_equal(fdn__config_service_start(cfg), 0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 7, NULL), FDN_EINVAL);
    assert_int_equal(r.reported, 1);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 8, NULL), 0);
    assert_int_equal(r.reported, 1);
    fdn__config_set_apply_hook(cfg, NULL);
    fdn_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_hook_does_not_delay_subscribers_and_drains),
        cmocka_unit_test(queued_refusal_not_reported_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
