/* Unit tests: the wiring of the runtime's built-in services (src/runtime/runtime_services.c).
 * The config drives the services (issue 3), the runtime's own events land in its event store
 * and survive service and runtime restarts (issue 4), and the runtime reports the reference's
 * telemetry (issue 5).
 *
 * No sleeps. The asynchronous part is the config hook thread (it records `config_updated`,
 * counts the update, then re-applies the settings). A telemetry handler on
 * foundation.config_updates tells the test which revision the hook has reached; because the
 * hook handles changes in revision order, once it has counted revision r+1 it has finished
 * applying revision r. test_rt_settle_config() makes such a barrier update (dev.verbose_logging)
 * and waits for it (tests/support/rt_fixture.h). Supervisor restarts are driven by the manual
 * clock and fdn_testing_advance / fdn_supervisor_wait_idle.
 *
 * Fixtures (cmocka setup/teardown): test_rt_setup (a test runtime), test_rt_setup_watched (one
 * with the config watcher), dir_setup (a temporary directory and a manual clock, for tests that
 * build their own runtimes on a data directory or a config file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <fdn/breaker.h>
#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/pool.h>
#include <fdn/protect.h>
#include <fdn/runtime.h>
#include <fdn/supervisor.h>
#include <fdn/telemetry.h>
#include <fdn/testing.h>

#include "rt_fixture.h"
#include "tmpdir.h"

#define MS  1000000LL
#define SEC 1000000000LL

/* ---- helpers ----------------------------------------------------------------------------- */

/* A test runtime (tests/support/rt_fixture.h) reading a config file. */
static test_rt_t *config_runtime(const char *config_path)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.config_path = config_path;
    return test_rt_new(&o, false);
}

/* Sets a boolean setting and waits until the services have applied it. */
static void set_bool_settled(test_rt_t *f, const char *key, bool value)
{
    assert_int_equal(fdn_config_update_bool(fdn_runtime_config(f->rt), key, value, NULL), 0);
    test_rt_settle_config(f);
}

/* A runtime on a data directory with its own manual clock. */
/* The dir fixture: a fresh temporary directory (removed with its contents at teardown) and
 * a manual clock for the runtimes a test builds on it. The runtimes a test makes are tracked
 * (dir_track, dir_destroy): a test that fails between making and destroying one leaves it
 * running on the clock, and the teardown destroys it first (destroying the clock under its
 * waiting threads would block for ever, turning the failure into a ctest timeout). */
typedef struct dirfx {
    char dir[256];
    fdn_clock_t *clock;
    fdn_runtime_t *live[4];
} dirfx_t;

static dirfx_t *g_dirfx; /* the running dir test's fixture */

static void dir_track(fdn_runtime_t *rt)
{
    for (size_t i = 0; i < 4; i++)
        if (g_dirfx->live[i] == NULL) {
            g_dirfx->live[i] = rt;
            return;
        }
    fail_msg("more than 4 runtimes alive in one dir test");
}

/* fdn_runtime_destroy of a runtime made in a dir test. */
static void dir_destroy(fdn_runtime_t *rt)
{
    for (size_t i = 0; i < 4; i++)
        if (g_dirfx->live[i] == rt)
            g_dirfx->live[i] = NULL;
    fdn_runtime_destroy(rt);
}

static fdn_runtime_t *dir_runtime(const char *dir, fdn_clock_t *clock)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "wiring";
    o.data_dir = dir;
    o.clock = clock;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_runtime_create(&rt, &o, &err);
    if (rc != 0)
        fail_msg("runtime create on %s: %s %s", dir, fdn_err_name(rc), err.message);
    dir_track(rt);
    return rt;
}

static int dir_setup(void **state)
{
    dirfx_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    assert_int_equal(test_tmpdir_make(d->dir, sizeof(d->dir), "wiring"), 0);
    assert_int_equal(fdn_clock_manual_create(&d->clock, SEC, SEC), 0);
    g_dirfx = d;
    *state = d;
    return 0;
}

static int dir_teardown(void **state)
{
    dirfx_t *d = *state;
    for (size_t i = 0; i < 4; i++) /* left by a failed test */
        if (d->live[i] != NULL)
            fdn_runtime_destroy(d->live[i]);
    g_dirfx = NULL;
    fdn_clock_destroy(d->clock);
    test_tmpdir_remove(d->dir);
    free(d);
    return 0;
}

/* Store one event stamped with the runtime's clock (the store keeps the event's own time). */
static uint64_t store_one(fdn_runtime_t *rt, const char *type, int expect_rc)
{
    fdn_events_t *es = fdn_runtime_events(rt);
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = type;
    spec.clock = fdn_runtime_clock(rt);
    spec.data = "{\"n\":1}";
    spec.data_len = 7;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), expect_rc);
    fdn_event_free(ev);
    return id;
}

/* Events of a type (NULL: any), up to `limit`. */
static fdn_event_list_t *query_type(fdn_events_t *es, const char *type, int64_t limit)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = type;
    q.limit = limit;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    return l;
}

static size_t count_type(fdn_events_t *es, const char *type)
{
    fdn_event_list_t *l = query_type(es, type, 1000);
    size_t n = fdn_event_list_count(l);
    fdn_event_list_free(l);
    return n;
}

static json_t *event_json(const fdn_event_t *ev)
{
    size_t len = 0;
    const void *d = fdn_event_data(ev, &len);
    json_t *j = json_loadb(d, len, 0, NULL);
    assert_non_null(j);
    return j;
}

/* Emission count of a telemetry event (0 when absent). */
static uint64_t tm_count(fdn_runtime_t *rt, const char *name)
{
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(fdn_runtime_telemetry(rt), &s), 0);
    uint64_t n = 0;
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        if (x->is_event && strcmp(x->name, name) == 0 && x->key != NULL && x->key[0] == '\0')
            n = x->counter;
    fdn_telemetry_snapshot_free(s);
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int fn_ok(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

static int fn_fail(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return FDN_EIO;
}

static int breaker_fail(void *arg)
{
    (void)arg;
    return FDN_EIO;
}

static int conn_create(void **conn, void *user)
{
    (void)user;
    *conn = (void *)(uintptr_t)1;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)conn;
    (void)user;
}

/* ---- 1. accessors, registry, health --------------------------------------------------------- */

static void accessors_registry_health(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    assert_non_null(fdn_runtime_config(rt));
    assert_non_null(fdn_runtime_events(rt));
    assert_non_null(fdn_runtime_telemetry(rt));
    assert_non_null(fdn_runtime_pools(rt));
    assert_non_null(fdn_runtime_limiter(rt));
    assert_non_null(fdn_runtime_breakers(rt));
    assert_non_null(fdn_runtime_protect(rt));
    /* stable handles */
    assert_ptr_equal(fdn_runtime_protect(rt), fdn_runtime_protect(rt));

    static const char *const names[] = {"config_server",      "event_store",  "telemetry_service",
                                        "connection_manager", "rate_limiter", "task_supervisor"};
    void *handles[] = {fdn_runtime_config(rt), fdn_runtime_events(rt),  fdn_runtime_telemetry(rt),
                       fdn_runtime_pools(rt),  fdn_runtime_limiter(rt), fdn_runtime_tasks(rt)};
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    assert_int_equal(fdn_registry_count(reg), 6);
    for (size_t i = 0; i < 6; i++) {
        void *h = NULL;
        assert_int_equal(fdn_registry_lookup(reg, names[i], &h, NULL), 0);
        assert_ptr_equal(h, handles[i]);
    }

    fdn_runtime_health_t hl;
    fdn_service_status_t sts[8];
    size_t n = 0;
    assert_int_equal(fdn_runtime_health(rt, &hl, sts, 8, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    assert_int_equal(hl.running, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(sts[i].name, names[i]);
        assert_int_equal(sts[i].state, FDN_SERVICE_RUNNING);
    }
    /* a health poll passes for every built-in */
    assert_int_equal(fdn_testing_advance(rt, SEC), 0);
    assert_int_equal(fdn_runtime_health(rt, &hl, sts, 8, &n), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    for (size_t i = 0; i < 5; i++)
        assert_true(sts[i].healthy);
}

/* ---- 2. config_updated event and telemetry ---------------------------------------------- */

static void config_update_recorded_and_counted(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_events_t *es = fdn_runtime_events(rt);
    assert_int_equal(count_type(es, "config_updated"), 0);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 0);

    uint64_t rev0 = fdn_config_revision(cfg);
    assert_int_equal(fdn_config_update_double(cfg, "ai.planning.sampling_rate", 0.5, NULL), 0);
    uint64_t rev = fdn_config_revision(cfg);
    assert_int_equal(rev, rev0 + 1);
    test_rt_wait_config(f, rev);

    fdn_event_list_t *l = query_type(es, "config_updated", 100);
    assert_int_equal(fdn_event_list_count(l), 1);
    json_t *d = event_json(fdn_event_list_at(l, 0));
    assert_string_equal(json_string_value(json_object_get(d, "path")), "ai.planning.sampling_rate");
    assert_true(json_is_number(json_object_get(d, "old_value")));
    assert_true(json_number_value(json_object_get(d, "old_value")) == 1.0);
    assert_true(json_number_value(json_object_get(d, "new_value")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(d, "revision")), (json_int_t)rev);
    json_decref(d);
    fdn_event_list_free(l);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 1);

    /* the nested get_metrics tree holds the count too */
    char *js = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(fdn_runtime_telemetry(rt), &js), 0);
    json_t *m = json_loads(js, 0, NULL);
    fdn_free(js);
    assert_non_null(m);
    json_t *cu = json_object_get(json_object_get(m, "foundation"), "config_updates");
    assert_true(json_is_integer(cu));
    assert_int_equal(json_integer_value(cu), 1);
    json_decref(m);

    /* forbidden and invalid updates store nothing and count nothing */
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "storage.warm.max_size_mb", 10, &err),
                     FDN_ECONFIG_FORBIDDEN);
    assert_int_not_equal(fdn_config_update_double(cfg, "ai.planning.sampling_rate", 7.0, NULL), 0);
    assert_int_equal(fdn_config_revision(cfg), rev);
    test_rt_settle_config(f); /* one more update: the barrier */
    l = query_type(es, "config_updated", 100);
    assert_int_equal(fdn_event_list_count(l), 2);
    d = event_json(fdn_event_list_at(l, 1));
    assert_string_equal(json_string_value(json_object_get(d, "path")), "dev.verbose_logging");
    json_decref(d);
    fdn_event_list_free(l);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 2);
}

/* A burst of updates is recorded in one batch. The hook thread is held inside the store
 * call of the first update's record (a handler of foundation.event_store.append runs on
 * the storing thread, after the store); the next 40 updates queue behind it. Once released,
 * the hook stores all 40 in one call: 2 store calls in all, where one per change made 41. */
typedef struct append_gate {
    test_waiter_t entered; /* store calls that reached the handler */
    test_waiter_t open;    /* 1: the first call may return */
} append_gate_t;

static int hold_first_append(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                             const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event, (void)m, (void)nm, (void)meta, (void)nmeta;
    append_gate_t *g = user;
    if (test_waiter_add(&g->entered, 1) == 1)
        test_waiter_wait(&g->open, 1);
    return 0;
}

static void config_burst_recorded_in_one_batch(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    append_gate_t g = {TEST_WAITER_INIT, TEST_WAITER_INIT};
    uint64_t hid = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(rt), &hid,
                                          "foundation.event_store.append",
                                          FDN_TELEMETRY_MATCH_EXACT, hold_first_append, &g),
                     0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 100, NULL), 0);
    test_waiter_wait(&g.entered, 1); /* the hook thread is held in the first record's store */
    for (int i = 1; i <= 40; i++)
        assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 100 + i, NULL), 0);
    test_waiter_add(&g.open, 1);
    test_rt_wait_config(f, fdn_config_revision(cfg));
    assert_int_equal(test_waiter_value(&g.entered), 2);
    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(rt), hid), 0);

    /* every change is stored, in revision order, and counted */
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "config_updated", 100);
    assert_int_equal(fdn_event_list_count(l), 41);
    for (size_t i = 0; i < 41; i++) {
        json_t *d = event_json(fdn_event_list_at(l, i));
        assert_int_equal(json_integer_value(json_object_get(d, "new_value")), 100 + (int)i);
        json_decref(d);
    }
    fdn_event_list_free(l);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 41);
}

/* ---- 3. interface.max_results caps queries at once ---------------------------------------- */

static void max_results_caps_queries(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_events_t *es = fdn_runtime_events(rt);
    for (int i = 0; i < 12; i++)
        store_one(rt, "wiring_test", 0);
    fdn_event_list_t *l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 12);
    fdn_event_list_free(l);

    assert_int_equal(
        fdn_config_update_int(fdn_runtime_config(rt), "interface.max_results", 5, NULL), 0);
    test_rt_settle_config(f);
    /* a larger limit is clamped to the cap (events.h: "clamped to max_results") */
    l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 5);
    fdn_event_list_free(l);
    l = query_type(es, "wiring_test", 3);
    assert_int_equal(fdn_event_list_count(l), 3);
    fdn_event_list_free(l);
    /* a limit ≤ 0 is still refused */
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 0;
    fdn_event_list_t *none = NULL;
    assert_int_equal(fdn_events_query(es, &q, &none), FDN_EINVAL);

    /* raised again: the cap follows */
    assert_int_equal(
        fdn_config_update_int(fdn_runtime_config(rt), "interface.max_results", 1000, NULL), 0);
    test_rt_settle_config(f);
    l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 12);
    fdn_event_list_free(l);
}

/* ---- 4. *.enabled switches the protection layers ------------------------------------------ */

static void enabled_switches_layers(void **state)
{
    test_rt_t *f = *state;
    fdn_protect_t *p = fdn_runtime_protect(f->rt);

    fdn_limit_rule_t one = {FDN_LIMIT_FIXED_WINDOW, 1, 60000, 0};
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.limit = &one;
    assert_int_equal(fdn_protect_configure(p, "lim", &pc, NULL), 0);
    fdn_protect_result_t r;
    assert_int_equal(fdn_execute_protected(p, "lim", NULL, fn_ok, NULL, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(p, "lim", NULL, fn_ok, NULL, &r, NULL),
                     FDN_ERATE_LIMITED);
    assert_int_equal(r.rejected_by, FDN_PROTECT_LIMITER);
    assert_false(r.ran);

    set_bool_settled(f, "infrastructure.rate_limiting.enabled", false);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_execute_protected(p, "lim", NULL, fn_ok, NULL, &r, NULL), 0);
        assert_true(r.ran);
    }
    set_bool_settled(f, "infrastructure.rate_limiting.enabled", true);
    assert_int_equal(fdn_execute_protected(p, "lim", NULL, fn_ok, NULL, &r, NULL),
                     FDN_ERATE_LIMITED);

    /* breaker layer */
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 1;
    fdn_protect_config_t bc = FDN_PROTECT_CONFIG_INIT;
    bc.breaker = "wiring_breaker";
    bc.breaker_opts = &bo;
    assert_int_equal(fdn_protect_configure(p, "brk", &bc, NULL), 0);
    assert_int_equal(fdn_execute_protected(p, "brk", NULL, fn_fail, NULL, &r, NULL), FDN_EIO);
    assert_int_equal(fdn_execute_protected(p, "brk", NULL, fn_ok, NULL, &r, NULL),
                     FDN_ECIRCUIT_OPEN);
    assert_int_equal(r.rejected_by, FDN_PROTECT_BREAKER);
    set_bool_settled(f, "infrastructure.circuit_breaker.enabled", false);
    assert_int_equal(fdn_execute_protected(p, "brk", NULL, fn_ok, NULL, &r, NULL), 0);
    assert_true(r.ran);
    set_bool_settled(f, "infrastructure.circuit_breaker.enabled", true);
    assert_int_equal(fdn_execute_protected(p, "brk", NULL, fn_ok, NULL, &r, NULL),
                     FDN_ECIRCUIT_OPEN);

    /* pool layer: a key whose pool does not exist fails while the layer is on */
    fdn_protect_config_t pl = FDN_PROTECT_CONFIG_INIT;
    pl.pool = "no_such_pool";
    assert_int_equal(fdn_protect_configure(p, "pl", &pl, NULL), 0);
    assert_int_not_equal(fdn_execute_protected(p, "pl", NULL, fn_ok, NULL, &r, NULL), 0);
    assert_false(r.ran);
    set_bool_settled(f, "infrastructure.connection_pool.enabled", false);
    assert_int_equal(fdn_execute_protected(p, "pl", NULL, fn_ok, NULL, &r, NULL), 0);
    assert_true(r.ran);
    set_bool_settled(f, "infrastructure.connection_pool.enabled", true);
    assert_int_not_equal(fdn_execute_protected(p, "pl", NULL, fn_ok, NULL, &r, NULL), 0);
}

/* ---- an update touches only what its path drives ----------------------------------------- */

/* infrastructure.rate_limiting.default_rules is not updatable; an application that changed a
 * rule through the limiter keeps it when some unrelated path is updated. */
static void unrelated_update_keeps_overrides(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_limiter_t *lim = fdn_runtime_limiter(rt);
    fdn_limit_rule_t mine = {FDN_LIMIT_FIXED_WINDOW, 3, 2000, 0};
    assert_int_equal(fdn_limiter_set_rule(lim, "api_calls", &mine), 0);
    assert_int_equal(
        fdn_config_update_double(fdn_runtime_config(rt), "ai.planning.sampling_rate", 0.75, NULL),
        0);
    test_rt_settle_config(f);
    fdn_limit_rule_t got;
    assert_int_equal(fdn_limiter_get_rule(lim, "api_calls", &got), 0);
    assert_int_equal(got.limit, 3);
    assert_int_equal(got.period_ms, 2000);
    /* a reset to the defaults does bring the config's rules back */
    assert_int_equal(fdn_config_reset(fdn_runtime_config(rt), NULL), 0);
    test_rt_settle_config(f);
    assert_int_equal(fdn_limiter_get_rule(lim, "api_calls", &got), 0);
    assert_int_equal(got.limit, 100);
    /* the reset itself is recorded and counted */
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "config_reset", 10);
    assert_int_equal(fdn_event_list_count(l), 1);
    fdn_event_list_free(l);
    assert_int_equal(tm_count(rt, "foundation.config_resets"), 1);
}

/* ---- 5. the config file reaches the services ------------------------------------------------ */

static void config_file_reaches_services(void **state)
{
    const char *dir = ((dirfx_t *)*state)->dir;
    char path[320];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_file(path, "{\"storage\":{\"hot\":{\"max_events\":5,\"max_age_seconds\":10}},"
                     "\"infrastructure\":{"
                     "\"connection_pool\":{\"default_config\":{\"size\":3}},"
                     "\"rate_limiting\":{\"default_rules\":"
                     "{\"api_calls\":{\"scale\":1000,\"limit\":7}}},"
                     "\"circuit_breaker\":{\"default_config\":{\"failure_threshold\":2},"
                     "\"max_breakers\":3,\"breakers\":{\"declared\":{\"failure_threshold\":1,"
                     "\"recovery_time_ms\":60000}}}}}");
    test_rt_t *f = config_runtime(path);
    fdn_runtime_t *rt = f->rt;

    /* pool defaults */
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.create = conn_create;
    po.destroy = conn_destroy;
    fdn_pool_status_t ps;
    assert_int_equal(fdn_pools_start(fdn_runtime_pools(rt), "wp", &po, NULL, NULL), 0);
    assert_int_equal(fdn_pools_status(fdn_runtime_pools(rt), "wp", &ps), 0);
    assert_int_equal(ps.size, 3);
    assert_int_equal(ps.max_overflow, 5);
    assert_int_equal(fdn_pools_stop(fdn_runtime_pools(rt), "wp"), 0);

    /* limiter rule */
    fdn_limit_rule_t rule;
    assert_int_equal(fdn_limiter_get_rule(fdn_runtime_limiter(rt), "api_calls", &rule), 0);
    assert_int_equal(rule.limit, 7);
    assert_int_equal(rule.period_ms, 1000);

    /* breaker defaults: NULL opts open after the file's threshold */
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(fdn_runtime_breakers(rt), "wb", NULL, &b), 0);
    int frc = 0;
    (void)fdn_breaker_call(b, breaker_fail, NULL, &frc);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    (void)fdn_breaker_call(b, breaker_fail, NULL, &frc);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    /* a breaker declared in the file exists, with its own options over the defaults */
    fdn_breaker_t *declared = NULL;
    assert_int_equal(fdn_breaker_get(fdn_runtime_breakers(rt), "declared", &declared), 0);
    (void)fdn_breaker_call(declared, breaker_fail, NULL, &frc);
    assert_int_equal(fdn_breaker_state(declared), FDN_BREAKER_OPEN); /* threshold 1 */
    fdn_breaker_status_t bst;
    assert_int_equal(fdn_breaker_status(declared, &bst), 0);
    assert_int_equal(bst.ms_until_half_open, 60000); /* the runtime's (manual) clock */
    fdn_breaker_reset(declared);
    /* and its transitions are recorded in the event store (the set's default hook) */
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "circuit_breaker_state_change", 10);
    assert_int_equal(fdn_event_list_count(l), 3); /* declared: open, closed; wb: open */
    int wb_open = 0, declared_events = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *d = event_json(fdn_event_list_at(l, i));
        const char *who = json_string_value(json_object_get(d, "breaker"));
        const char *to = json_string_value(json_object_get(d, "to"));
        wb_open += strcmp(who, "wb") == 0 && strcmp(to, "open") == 0;
        declared_events += strcmp(who, "declared") == 0;
        json_decref(d);
    }
    assert_int_equal(wb_open, 1);
    assert_int_equal(declared_events, 2);
    fdn_event_list_free(l);
    /* max_breakers: "declared" and "wb" hold two of the three names */
    assert_int_equal(fdn_breaker_create_in(fdn_runtime_breakers(rt), "third", NULL, NULL), 0);
    assert_int_equal(fdn_breaker_create_in(fdn_runtime_breakers(rt), "fourth", NULL, NULL),
                     FDN_ENOSPC);

    /* retention */
    fdn_events_t *es = fdn_runtime_events(rt);
    uint64_t last = 0;
    for (int i = 0; i < 9; i++)
        last = store_one(rt, "wiring_test", 0);
    uint64_t removed = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &removed), 0);
    assert_true(removed >= 5);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 5);
    assert_int_equal(st.newest_id, last);

    /* max_age_seconds: events stamped with the runtime's clock age out after 10 s */
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "wiring_aged";
    spec.clock = fdn_runtime_clock(rt);
    fdn_event_t *aged = NULL;
    assert_int_equal(fdn_event_new(&aged, &spec, NULL), 0);
    assert_int_equal(fdn_events_store(es, aged, NULL), 0);
    fdn_event_free(aged);
    assert_int_equal(fdn_testing_advance(rt, 5 * SEC), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(count_type(es, "wiring_aged"), 1);
    assert_int_equal(fdn_testing_advance(rt, 6 * SEC), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(count_type(es, "wiring_aged"), 0);

    test_rt_free(f);
}

/* A bad config file or data directory fails fdn_runtime_create cleanly, naming the culprit. */
static void bad_file_or_dir_fails_create(void **state)
{
    const char *dir = ((dirfx_t *)*state)->dir;
    char path[320];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_file(path, "{\"storage\":{\"hot\":{\"no_such_key\":1}}}");
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.config_path = path;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, &o, &err), FDN_ECONFIG_STRUCTURE);
    assert_null(rt);
    char text[2048];
    fdn_err_format(&err, text, sizeof(text));
    assert_non_null(strstr(text, "no_such_key"));
    assert_non_null(strstr(text, "config.json"));

    /* data directory below a regular file */
    char bad[400];
    snprintf(bad, sizeof(bad), "%s/sub", path);
    fdn_runtime_opts_t o2 = FDN_RUNTIME_OPTS_INIT;
    o2.ignore_env = true;
    o2.data_dir = bad;
    fdn_error_t err2 = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, &o2, &err2), FDN_EIO);
    assert_null(rt);
    fdn_err_format(&err2, text, sizeof(text));
    assert_non_null(strstr(text, bad));
}

/* ---- 6. event_store restart ----------------------------------------------------------------- */

/* Drive one restart of `service`: inject, check the window, advance past the backoff. */
static void restart_service(fdn_runtime_t *rt, const char *service, bool test_rt)
{
    fdn_supervisor_t *sup = fdn_runtime_supervisor(rt);
    assert_int_equal(fdn_runtime_inject_fault(rt, service, FDN_EIO), 0);
    assert_int_equal(fdn_supervisor_wait_idle(sup, TEST_WAIT_MS), 0);
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, service, &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    assert_int_equal(st.last_error, FDN_EIO);
    if (strcmp(service, "event_store") == 0) {
        fdn_events_t *es = fdn_runtime_events(rt);
        store_one(rt, "wiring_test", FDN_EUNAVAILABLE);
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &l), FDN_EUNAVAILABLE);
        fdn_event_t *ev = NULL;
        assert_int_equal(fdn_events_get(es, 1, &ev), FDN_EUNAVAILABLE);
    }
    if (strcmp(service, "config_server") == 0)
        assert_int_equal(
            fdn_config_update_int(fdn_runtime_config(rt), "interface.max_results", 7, NULL),
            FDN_EUNAVAILABLE);
    if (test_rt) {
        assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0);
    } else {
        assert_int_equal(fdn_clock_advance(fdn_runtime_clock(rt), 10 * MS), 0);
        assert_int_equal(fdn_supervisor_wait_idle(sup, TEST_WAIT_MS), 0);
    }
    assert_int_equal(fdn_runtime_service_status(rt, service, &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(st.restarts, 1);
}

static void event_store_restart_body(fdn_runtime_t *rt, bool test_rt)
{
    fdn_events_t *es = fdn_runtime_events(rt);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = store_one(rt, "wiring_test", 0);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);

    restart_service(rt, "event_store", test_rt);
    assert_ptr_equal(fdn_runtime_events(rt), es); /* stable handle */

    fdn_event_list_t *l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), ids[i]);
    fdn_event_list_free(l);

    l = query_type(es, "supervisor_restart", 100);
    assert_int_equal(fdn_event_list_count(l), 1);
    const fdn_event_t *rev = fdn_event_list_at(l, 0);
    assert_true(fdn_event_id(rev) > ids[2]);
    json_t *d = event_json(rev);
    assert_string_equal(json_string_value(json_object_get(d, "service")), "event_store");
    assert_int_equal(json_integer_value(json_object_get(d, "attempt")), 1);
    assert_string_equal(json_string_value(json_object_get(d, "reason")), fdn_err_name(FDN_EIO));
    uint64_t restart_id = fdn_event_id(rev);
    json_decref(d);
    fdn_event_list_free(l);

    uint64_t next = store_one(rt, "wiring_test", 0);
    assert_true(next > restart_id);
    assert_true(tm_count(rt, "foundation.supervisor.restarts") >= 1);
}

static void event_store_restart_in_memory(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    event_store_restart_body(rt, true);
}

static void event_store_restart_with_data_dir(void **state)
{
    dirfx_t *fx = *state;
    const char *dir = fx->dir;
    fdn_clock_t *clock = fx->clock;
    fdn_runtime_t *rt = dir_runtime(dir, clock);
    event_store_restart_body(rt, false);
    dir_destroy(rt);
}

/* Another service's restart is recorded too. */
static void limiter_restart_recorded(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    restart_service(rt, "rate_limiter", true);
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "supervisor_restart", 100);
    assert_int_equal(fdn_event_list_count(l), 1);
    json_t *d = event_json(fdn_event_list_at(l, 0));
    assert_string_equal(json_string_value(json_object_get(d, "service")), "rate_limiter");
    json_decref(d);
    fdn_event_list_free(l);
    /* the default rules are still there after the restart */
    fdn_limit_rule_t rule;
    assert_int_equal(fdn_limiter_get_rule(fdn_runtime_limiter(rt), "api_calls", &rule), 0);
    assert_int_equal(rule.limit, 100);
}

/* storage.warm.enable + storage.warm.path from the config file make the store durable when
 * the runtime has no data directory. */
static void warm_path_from_config(void **state)
{
    const char *dir = ((dirfx_t *)*state)->dir;
    char path[320], cfgtext[1024], db[400];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    snprintf(cfgtext, sizeof(cfgtext),
             "{\"storage\":{\"warm\":{\"enable\":true,\"path\":\"%s/warm/sub\"}}}", dir);
    write_file(path, cfgtext);
    snprintf(db, sizeof(db), "%s/warm/sub/events.db", dir);

    test_rt_t *f = config_runtime(path);
    fdn_runtime_t *rt = f->rt;
    uint64_t id = store_one(rt, "wiring_test", 0);
    test_rt_free(f);
    assert_int_equal(access(db, F_OK), 0);

    f = config_runtime(path);
    rt = f->rt;
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "wiring_test", 10);
    assert_int_equal(fdn_event_list_count(l), 1);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), id);
    fdn_event_list_free(l);
    test_rt_free(f);
}

/* An update made while the event store restarts succeeds at once; its event cannot be stored
 * (the store answers FDN_EUNAVAILABLE) and the drop is counted, never silent. */
static void update_while_store_restarts(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    assert_int_equal(fdn_runtime_inject_fault(rt, "event_store", FDN_EIO), 0);
    assert_int_equal(fdn_testing_settle(rt), 0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 3, NULL), 0);
    test_rt_wait_config(f, fdn_config_revision(cfg));
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 1);
    assert_int_equal(tm_count(rt, "foundation.runtime.event_dropped"), 1);
    assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0);
    test_rt_settle_config(f); /* also: the max_results change was applied while it was down */
    fdn_events_t *es = fdn_runtime_events(rt);
    assert_int_equal(count_type(es, "config_updated"), 1); /* the barrier's only */
    for (int i = 0; i < 5; i++)
        store_one(rt, "wiring_test", 0);
    assert_int_equal(count_type(es, "wiring_test"), 3);
}

/* ---- 7. config updates survive a config_server restart ------------------------------------- */

static void config_survives_restart(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    assert_int_equal(fdn_config_update_double(cfg, "ai.planning.sampling_rate", 0.25, NULL), 0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4, NULL), 0);
    test_rt_settle_config(f);

    restart_service(rt, "config_server", true);
    double v = 0;
    assert_int_equal(fdn_config_get_double(cfg, "ai.planning.sampling_rate", &v), 0);
    assert_true(v == 0.25);
    int64_t mr = 0;
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &mr), 0);
    assert_int_equal(mr, 4);

    /* the hook still runs after the restart: updates are recorded and applied */
    size_t before = count_type(fdn_runtime_events(rt), "config_updated");
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 2, NULL), 0);
    test_rt_settle_config(f);
    assert_int_equal(count_type(fdn_runtime_events(rt), "config_updated"), 2);
    (void)before;
    fdn_events_t *es = fdn_runtime_events(rt);
    for (int i = 0; i < 4; i++)
        store_one(rt, "wiring_test", 0);
    fdn_event_list_t *l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 2);
    fdn_event_list_free(l);
}

/* After a telemetry_service restart the runtime still counts into it (same handle, the
 * handlers and counts kept). */
static void telemetry_restart_keeps_counting(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    test_rt_settle_config(f);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 1);
    restart_service(rt, "telemetry_service", true);
    test_rt_settle_config(f);
    assert_int_equal(tm_count(rt, "foundation.config_updates"), 2);
    assert_true(tm_count(rt, "foundation.supervisor.restarts") >= 1);
}

/* The event store reports into the runtime's telemetry (issue 5: event store operations). */
static void event_store_telemetry(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    uint64_t before = tm_count(rt, "foundation.event_store.events_stored");
    store_one(rt, "wiring_test", 0);
    store_one(rt, "wiring_test", 0);
    assert_int_equal(tm_count(rt, "foundation.event_store.events_stored"), before + 2);
    /* and the reference's get_metrics shape shows it as foundation.events_stored */
    char *js = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(fdn_runtime_telemetry(rt), &js), 0);
    json_t *m = json_loads(js, 0, NULL);
    fdn_free(js);
    assert_non_null(json_object_get(json_object_get(m, "foundation"), "events_stored"));
    json_decref(m);
}

/* ---- 8. registry lookups are counted -------------------------------------------------------- */

static void registry_lookup_telemetry(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    uint64_t before = tm_count(rt, "foundation.registry.lookup");
    void *h = NULL;
    assert_int_equal(fdn_registry_lookup(fdn_runtime_registry(rt), "event_store", &h, NULL), 0);
    assert_int_not_equal(fdn_registry_lookup(fdn_runtime_registry(rt), "no_such_service", &h, NULL),
                         0);
    assert_int_equal(tm_count(rt, "foundation.registry.lookup"), before + 2);
}

/* ---- 9. durable events survive the runtime --------------------------------------------------- */

static void events_survive_runtime(void **state)
{
    dirfx_t *fx = *state;
    const char *dir = fx->dir;
    fdn_clock_t *clock = fx->clock;
    fdn_runtime_t *rt = dir_runtime(dir, clock);
    uint64_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = store_one(rt, "wiring_test", 0);
    dir_destroy(rt);

    rt = dir_runtime(dir, clock);
    fdn_events_t *es = fdn_runtime_events(rt);
    fdn_event_list_t *l = query_type(es, "wiring_test", 100);
    assert_int_equal(fdn_event_list_count(l), 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), ids[i]);
    fdn_event_list_free(l);
    uint64_t next = store_one(rt, "wiring_test", 0);
    assert_true(next > ids[3]);
    dir_destroy(rt);
}

/* An escalation is recorded while the store still answers: a runtime whose first restart
 * escalates (max_restarts 0) stores `supervisor_escalation` before stopping its services;
 * the event is found after reopening the data directory. */
static void escalation_recorded(void **state)
{
    dirfx_t *fx = *state;
    const char *dir = fx->dir;
    fdn_clock_t *clock = fx->clock;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "escalating";
    o.data_dir = dir;
    o.clock = clock;
    o.max_restarts = 0;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    dir_track(rt);
    assert_int_equal(fdn_runtime_inject_fault(rt, "rate_limiter", FDN_EIO), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    assert_true(fdn_supervisor_failed(fdn_runtime_supervisor(rt)));
    fdn_runtime_health_t h;
    assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.status, FDN_RUNTIME_FAILED);
    dir_destroy(rt);

    rt = dir_runtime(dir, clock);
    fdn_event_list_t *l = query_type(fdn_runtime_events(rt), "supervisor_escalation", 10);
    assert_int_equal(fdn_event_list_count(l), 1);
    json_t *d = event_json(fdn_event_list_at(l, 0));
    assert_string_equal(json_string_value(json_object_get(d, "service")), "rate_limiter");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "FDN_EIO");
    json_decref(d);
    fdn_event_list_free(l);
    dir_destroy(rt);
}

/* Shutting down right after a burst of updates still records every config_updated event:
 * the runtime drains the config hook before it stops the event store. End to end only: on a
 * fast disk the hook often finishes before the store stops even without the drain, so the
 * drain itself is checked deterministically (a blocked hook) in test_config_hook.c. */
static void last_updates_recorded_at_shutdown(void **state)
{
    dirfx_t *fx = *state;
    const char *dir = fx->dir;
    fdn_clock_t *clock = fx->clock;
    fdn_runtime_t *rt = dir_runtime(dir, clock);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    /* the hook lags behind the updates: while it commits one burst (an fsync), the next
     * queues and goes in one commit. The drain is bounded at 5 s of real time
     * (runtime_services.c, before_shutdown): with one commit per update, 200 of them once
     * passed that under another suite's disk load (a commit then took 25 ms and more) */
    for (int i = 0; i < 200; i++)
        assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 100 + i, NULL), 0);
    dir_destroy(rt); /* no wait for the hook: destroy drains it */

    rt = dir_runtime(dir, clock);
    assert_int_equal(count_type(fdn_runtime_events(rt), "config_updated"), 200);
    dir_destroy(rt);
}

/* ---- 9b. a failed start retried with the real services ------------------------------------ */

/* An application service whose start fails the first `fail` times (counted in `starts`). */
typedef struct flaky {
    _Atomic int starts;
    int fail;
} flaky_t;

static int flaky_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    flaky_t *f = state;
    int n = atomic_fetch_add(&f->starts, 1);
    return n < f->fail ? fdn_err_set(err, FDN_EIO, "flaky start %d", n) : 0;
}

static void flaky_stop(void *state)
{
    (void)state;
}

static const fdn_service_ops_t flaky_ops = {flaky_start, flaky_stop, NULL, NULL, NULL};

static fdn_runtime_t *flaky_runtime(const char *dir, fdn_clock_t *clock, flaky_t *fl)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "flaky";
    o.data_dir = dir;
    o.clock = clock;
    o.flags = FDN_RUNTIME_NO_START;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    dir_track(rt);
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "flaky";
    spec.ops = &flaky_ops;
    spec.state = fl;
    assert_int_equal(fdn_runtime_add_service(rt, &spec, NULL), 0);
    return rt;
}

/* Every built-in (the durable event store, telemetry, pools, limiter, task pool) starts, is
 * stopped by the rollback when the application service after them fails, and starts again at
 * the retry: nothing is leaked or started twice (ASan, TSan), the durable store reopens its
 * log, and the runtime works and shuts down cleanly. The config, running since create, is
 * left running by the rollback: updates work before, between and after the starts. */
static void failed_start_retried_with_real_services(void **state)
{
    dirfx_t *fx = *state;
    flaky_t fl = {0, 1};
    fdn_runtime_t *rt = flaky_runtime(fx->dir, fx->clock, &fl);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_config_status_t cs;
    int64_t v = 0;
    /* before the first start the config runs (since create): an update applies at once */
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 55, NULL), 0);
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 55);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_start(rt, &err), FDN_EIO);
    assert_int_equal(atomic_load(&fl.starts), 1);
    fdn_runtime_health_t h;
    assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.status, FDN_RUNTIME_STOPPED);
    assert_int_equal(h.running, 0);
    store_one(rt, "retry_test", FDN_EUNAVAILABLE);
    /* ... and still after the failed start: the rollback left the config as it was, running,
     * so an update applies at once (not FDN_EUNAVAILABLE, not queued) */
    assert_int_equal(fdn_config_status(cfg, &cs), 0);
    assert_true(cs.running);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 66, NULL), 0);
    assert_int_equal(fdn_config_status(cfg, &cs), 0);
    assert_int_equal(cs.pending, 0);
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 66);

    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    assert_int_equal(atomic_load(&fl.starts), 2);
    assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.status, FDN_RUNTIME_HEALTHY);
    uint64_t id = store_one(rt, "retry_test", 0);
    assert_true(id > 0);
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 66);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 77, NULL), 0);
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_ESHUTDOWN);
    dir_destroy(rt);

    /* the event stored after the retry is in the log */
    rt = dir_runtime(fx->dir, fx->clock);
    assert_int_equal(count_type(fdn_runtime_events(rt), "retry_test"), 1);
    dir_destroy(rt);
}

/* A shutdown from another thread while a start is failing (requested from inside the failing
 * start, so it lands during the start or its rollback): the shutdown returns 0 with every
 * service stopped, no start is possible after it, and nothing leaks (ASan) or races (TSan). */
typedef struct shut_ctx {
    fdn_runtime_t *rt;
    pthread_t thr;
    bool spawned;
    int rc;
} shut_ctx_t;

static void *shutdown_main(void *arg)
{
    shut_ctx_t *c = arg;
    c->rc = fdn_runtime_shutdown(c->rt, -1);
    return NULL;
}

static shut_ctx_t g_shut;

static int shutting_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)state;
    g_shut.rt = ctx;
    g_shut.spawned = pthread_create(&g_shut.thr, NULL, shutdown_main, &g_shut) == 0;
    return fdn_err_set(err, FDN_EIO, "failing while a shutdown comes");
}

static const fdn_service_ops_t shutting_ops = {shutting_start, flaky_stop, NULL, NULL, NULL};

static void shutdown_during_failed_start(void **state)
{
    dirfx_t *fx = *state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "shutting";
    o.data_dir = fx->dir;
    o.clock = fx->clock;
    o.flags = FDN_RUNTIME_NO_START;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    dir_track(rt);
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "shutting";
    spec.ops = &shutting_ops;
    assert_int_equal(fdn_runtime_add_service(rt, &spec, NULL), 0);
    memset(&g_shut, 0, sizeof(g_shut));
    g_shut.rc = -1;
    int rc = fdn_runtime_start(rt, NULL);
    assert_true(rc == FDN_EIO || rc == FDN_ESHUTDOWN);
    assert_true(g_shut.spawned);
    pthread_join(g_shut.thr, NULL);
    assert_int_equal(g_shut.rc, 0);
    fdn_runtime_health_t h;
    assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.running, 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_ESHUTDOWN);
    dir_destroy(rt);
}

/* The config of a runtime never started runs from create (updates apply at once); the
 * runtime's shutdown stops it as a started runtime's does: its calls then answer
 * FDN_EUNAVAILABLE, its hook thread is joined. */
static void shutdown_unstarted_stops_config(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.flags = FDN_RUNTIME_NO_START;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_config_status_t cs;
    assert_int_equal(fdn_config_status(cfg, &cs), 0);
    assert_true(cs.running);
    assert_int_equal(fdn_config_update_bool(cfg, "dev.debug_mode", true, NULL), 0);
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0);
    assert_int_equal(fdn_config_status(cfg, &cs), 0);
    assert_false(cs.running);
    assert_int_equal(fdn_config_update_bool(cfg, "dev.debug_mode", false, NULL), FDN_EUNAVAILABLE);
    fdn_runtime_destroy(rt);
}

/* ---- 10. the error hook ---------------------------------------------------------------------- */

static void error_hook_counts(void **state)
{
    fdn_runtime_t *rt = ((test_rt_t *)*state)->rt;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_ECONFIG_FORBIDDEN, "test");
    char name[128];
    assert_true(fdn_err_metric_name(&e, name, sizeof(name)) > 0);
    assert_true(strncmp(name, "foundation.errors.", 18) == 0);
    assert_int_equal(tm_count(rt, name), 0);
    fdn_runtime_error_hook(&e, rt);
    fdn_runtime_error_hook(&e, rt);
    fdn_runtime_error_hook(NULL, rt);
    fdn_runtime_error_hook(&e, NULL);
    assert_int_equal(tm_count(rt, name), 2);
}

#define RT_TEST(fn) cmocka_unit_test_setup_teardown(fn, test_rt_setup, test_rt_teardown)
#define WATCHED_TEST(fn)                                                                           \
    cmocka_unit_test_setup_teardown(fn, test_rt_setup_watched, test_rt_teardown)
#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, dir_setup, dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT_TEST(accessors_registry_health),
        WATCHED_TEST(config_update_recorded_and_counted),
        WATCHED_TEST(config_burst_recorded_in_one_batch),
        WATCHED_TEST(max_results_caps_queries),
        WATCHED_TEST(enabled_switches_layers),
        WATCHED_TEST(unrelated_update_keeps_overrides),
        DIR_TEST(config_file_reaches_services),
        DIR_TEST(bad_file_or_dir_fails_create),
        RT_TEST(event_store_restart_in_memory),
        DIR_TEST(event_store_restart_with_data_dir),
        RT_TEST(limiter_restart_recorded),
        DIR_TEST(warm_path_from_config),
        WATCHED_TEST(update_while_store_restarts),
        WATCHED_TEST(config_survives_restart),
        WATCHED_TEST(telemetry_restart_keeps_counting),
        RT_TEST(event_store_telemetry),
        RT_TEST(registry_lookup_telemetry),
        DIR_TEST(events_survive_runtime),
        DIR_TEST(escalation_recorded),
        DIR_TEST(last_updates_recorded_at_shutdown),
        DIR_TEST(failed_start_retried_with_real_services),
        DIR_TEST(shutdown_during_failed_start),
        cmocka_unit_test(shutdown_unstarted_stops_config),
        RT_TEST(error_hook_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
