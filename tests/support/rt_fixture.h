/* Runtime fixture for tests that drive a whole runtime: a test runtime from
 * fdn_testing_runtime_create (its own "test-<uuid>" name, registry, services and task pool,
 * an injected manual clock, no data directory), torn down with the leak check of
 * fdn_testing_runtime_destroy. Any failure fails the running test with the error's text.
 *
 * Optionally it watches the config hook: a telemetry handler on foundation.config_updates
 * records the highest revision the hook has counted. The hook handles changes in revision
 * order and counts revision r only after it has applied r - 1, so test_rt_settle_config
 * (one barrier update, then a wait for it) returns once every earlier change is recorded,
 * counted and applied to the services.
 *
 * cmocka use:
 *   cmocka_unit_test_setup_teardown(fn, test_rt_setup, test_rt_teardown)
 * and in fn: test_rt_t *f = *state; ... f->rt ... */
#ifndef FDN_TEST_RT_FIXTURE_H
#define FDN_TEST_RT_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <fdn/runtime.h>

#include "threads.h"

typedef struct test_rt {
    fdn_runtime_t *rt;
    fdn_clock_t *clock;     /* the runtime's manual clock (owned by the runtime) */
    bool watching;          /* the config watcher below is attached */
    uint64_t handler;       /* its telemetry handler */
    test_waiter_t revision; /* highest revision counted by foundation.config_updates */
} test_rt_t;

/* A started test runtime. base NULL: default options with ignore_env set. watch_config:
 * attach the config watcher. */
test_rt_t *test_rt_new(const fdn_runtime_opts_t *base, bool watch_config);

/* Detaches the watcher, destroys the runtime (failing the test if it leaked), frees f.
 * NULL accepted. */
void test_rt_free(test_rt_t *f);

/* Blocks until the config hook has counted revision rev (no wall-clock deadline). */
void test_rt_wait_config(test_rt_t *f, uint64_t rev);

/* Barrier: flips dev.verbose_logging and waits for that revision (needs the watcher). */
void test_rt_settle_config(test_rt_t *f);

/* cmocka fixtures: *state becomes a test_rt_t (default options; _watched also attaches the
 * config watcher); teardown frees it. */
int test_rt_setup(void **state);
int test_rt_setup_watched(void **state);
int test_rt_teardown(void **state);

#endif
