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

static const char *const no_env[] = {NULL};

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int hook_calls;
    int sub_calls;
} gate_t;

/* The hook blocks until the gate opens (a slow hook, e.g. an fsync per recorded event). */
static void slow_hook(const fdn_config_change_t *c, void *user)
{
    (void)c;
    gate_t *g = user;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->hook_calls++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void subscriber(const fdn_config_change_t *c, void *user)
{
    (void)c;
    gate_t *g = user;
    pthread_mutex_lock(&g->mu);
    g->sub_calls++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void slow_hook_does_not_delay_subscribers_and_drains(void **state)
{
    (void)state;
    gate_t g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
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
    pthread_mutex_lock(&g.mu);
    while (g.sub_calls < 5)
        pthread_cond_wait(&g.cv, &g.mu);
    assert_int_equal(g.hook_calls, 0);
    pthread_mutex_unlock(&g.mu);

    /* drain waits for the hook: a bounded wait times out while it is blocked */
    assert_int_equal(fdn__config_hook_drain(cfg, 20), FDN_ETIMEDOUT);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(fdn__config_hook_drain(cfg, 10000), 0);
    pthread_mutex_lock(&g.mu);
    assert_int_equal(g.hook_calls, 5); /* drained means every queued notification handled */
    pthread_mutex_unlock(&g.mu);

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
