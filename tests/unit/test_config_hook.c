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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_hook_does_not_delay_subscribers_and_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
