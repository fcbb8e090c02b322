/* Unit tests: the runtime (namespace, built-in table, start/stop order, registry entries,
 * application services, escalation, health, default runtime) and testing.h. No sleeps: a
 * manual clock and fdn_testing_advance/settle drive everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/runtime.h>
#include <fdn/config.h>
#include <sys/stat.h>
#include <fdn/config.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fdn/testing.h>
#include <fdn/events.h>
#include <fdn/telemetry.h>

#include "runtime/runtime_int.h"
#include "runtime_shut.h"
#include "threads.h" /* TEST_WAIT_MS */

#define MS  1000000LL
#define SEC 1000000000LL

/* ---- a shared order log ---- */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[2048];

static void log_add(char sign, const char *name)
{
    pthread_mutex_lock(&g_mu);
    size_t len = strlen(g_log);
    snprintf(g_log + len, sizeof(g_log) - len, "%s%c%s", len ? " " : "", sign, name);
    pthread_mutex_unlock(&g_mu);
}

#define ASSERT_LOG(expect)                                                                         \
    do {                                                                                           \
        char got_[2048];                                                                           \
        pthread_mutex_lock(&g_mu);                                                                 \
        snprintf(got_, sizeof(got_), "%s", g_log);                                                 \
        g_log[0] = '\0';                                                                           \
        pthread_mutex_unlock(&g_mu);                                                               \
        assert_string_equal(got_, (expect));                                                       \
    } while (0)

/* ---- fake built-in components ---- */
typedef struct comp {
    char name[32];
    atomic_bool running;
    int start_rc;
    atomic_int health_rc;
    fdn_runtime_t *rt;
} comp_t;

static int g_create_fail_slot = -1;
static int g_start_fail_slot = -1;

static int comp_create(fdn_runtime_t *rt, void **out, fdn_error_t *err, int slot, const char *name)
{
    if (slot == g_create_fail_slot)
        return fdn_err_set(err, FDN_ECONFIG_INVALID, "%s: bad configuration", name);
    comp_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->rt = rt;
    c->start_rc = slot == g_start_fail_slot ? FDN_EIO : 0;
    *out = c;
    return 0;
}

static int cfg_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    return comp_create(rt, out, err, FDN__RT_CONFIG, "config_server");
}

static int ev_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    /* a later slot can see the earlier ones */
    assert_non_null(fdn__runtime_slot(rt, FDN__RT_CONFIG));
    return comp_create(rt, out, err, FDN__RT_EVENTS, "event_store");
}

static int tm_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    return comp_create(rt, out, err, FDN__RT_TELEMETRY, "telemetry_service");
}

static void comp_destroy(void *o)
{
    free(o);
}

static int comp_start(void *o, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    comp_t *c = o;
    if (c->start_rc != 0)
        return c->start_rc;
    log_add('+', c->name);
    atomic_store(&c->running, true);
    return 0;
}

static void comp_stop(void *o)
{
    comp_t *c = o;
    atomic_store(&c->running, false);
    log_add('-', c->name);
}

static int comp_health(void *o)
{
    comp_t *c = o;
    return atomic_load(&c->health_rc);
}

static const fdn_service_ops_t COMP_OPS = {comp_start, comp_stop, comp_health, NULL, comp_destroy};
static const fdn_service_ops_t COMP_OPS_NO_HEALTH = {comp_start, comp_stop, NULL, NULL,
                                                     comp_destroy};

static const fdn__rt_slot_def_t TABLE[FDN__RT_SLOT_COUNT] = {
    [FDN__RT_CONFIG] = {"config_server", cfg_create, &COMP_OPS, false, NULL},
    [FDN__RT_EVENTS] = {"event_store", ev_create, &COMP_OPS_NO_HEALTH, false, NULL},
    [FDN__RT_TELEMETRY] = {"telemetry_service", tm_create, &COMP_OPS, false, NULL},
};

/* ---- an application service ---- */
typedef struct app {
    char name[16];
    atomic_bool running;
    void *ctx_seen;
    atomic_int destroyed;
} app_t;

static int app_start(void *s, void *ctx, fdn_error_t *err)
{
    (void)err;
    app_t *a = s;
    a->ctx_seen = ctx;
    log_add('+', a->name);
    atomic_store(&a->running, true);
    return 0;
}

static void app_stop(void *s)
{
    app_t *a = s;
    atomic_store(&a->running, false);
    log_add('-', a->name);
}

static void app_destroy(void *s)
{
    app_t *a = s;
    atomic_fetch_add(&a->destroyed, 1);
}

static int app_run(void *s, fdn_service_ctl_t *ctl)
{
    (void)s;
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

static const fdn_service_ops_t APP_OPS = {app_start, app_stop, NULL, NULL, app_destroy};
static const fdn_service_ops_t APP_OPS_RUN = {app_start, app_stop, NULL, app_run, app_destroy};

static int app_call(app_t *a)
{
    return atomic_load(&a->running) ? 0 : FDN_EUNAVAILABLE;
}

static fdn_service_spec_t app_spec(app_t *a, const char *name, bool worker)
{
    snprintf(a->name, sizeof(a->name), "%s", name);
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = name;
    spec.ops = worker ? &APP_OPS_RUN : &APP_OPS;
    spec.state = a;
    return spec;
}

/* The same, with the config running from create (as the real one, runtime_services.c). */
static const fdn__rt_slot_def_t TABLE_CFG_FROM_CREATE[FDN__RT_SLOT_COUNT] = {
    [FDN__RT_CONFIG] = {"config_server", cfg_create, &COMP_OPS, true, NULL},
    [FDN__RT_EVENTS] = {"event_store", ev_create, &COMP_OPS_NO_HEALTH, false, NULL},
    [FDN__RT_TELEMETRY] = {"telemetry_service", tm_create, &COMP_OPS, false, NULL},
};

static const fdn__rt_slot_def_t *g_table = TABLE;

/* A test runtime built on the fake table (g_table) with a manual clock. */
static fdn_runtime_t *fake_runtime(fdn_clock_t **clock, uint32_t flags, int max_restarts)
{
    assert_int_equal(fdn_clock_manual_create(clock, SEC, SEC), 0);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = "fake";
    o.clock = *clock;
    o.flags = flags;
    o.max_restarts = max_restarts;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__runtime_create_with(&rt, &o, g_table, &err);
    if (rc != 0)
        fail_msg("create: %s", err.message);
    return rt;
}

static void fake_destroy(fdn_runtime_t *rt, fdn_clock_t *clock)
{
    fdn_runtime_destroy(rt);
    fdn_clock_destroy(clock);
}

static bool registered(fdn_runtime_t *rt, const char *name, void **handle)
{
    return fdn_registry_lookup(fdn_runtime_registry(rt), name, handle, NULL) == 0;
}

/* ---- tests ---- */

static void create_destroy_defaults(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, NULL, &err), 0);
    assert_string_equal(fdn_runtime_name(rt), "production");
    assert_null(fdn_runtime_clock(rt));
    assert_null(fdn_runtime_data_dir(rt));
    assert_null(fdn_runtime_config_path(rt));
    assert_non_null(fdn_runtime_tasks(rt));
    assert_string_equal(fdn_registry_name(fdn_runtime_registry(rt)), "production");
    void *h = NULL;
    assert_true(registered(rt, "task_supervisor", &h));
    assert_ptr_equal(h, fdn_runtime_tasks(rt));
    fdn_runtime_health_t hl;
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    assert_string_equal(fdn_runtime_status_name(hl.status), "healthy");
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    assert_false(registered(rt, "task_supervisor", NULL));
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_STOPPED);
    fdn_runtime_destroy(rt);
    fdn_runtime_destroy(NULL);

    /* with a config file and a data directory (created by the runtime) */
    char dir[] = "/tmp/fdn-rt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg_path[64], data[64], db[80];
    snprintf(cfg_path, sizeof(cfg_path), "%s/fdn.json", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(db, sizeof(db), "%s/events.db", data);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs("{\"interface\": {\"max_results\": 7}}", f);
    fclose(f);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = "with-paths";
    o.data_dir = data;
    o.config_path = cfg_path;
    o.ignore_env = true;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), 0);
    assert_string_equal(fdn_runtime_data_dir(rt), data);
    assert_string_equal(fdn_runtime_config_path(rt), cfg_path);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 7);
    fdn_runtime_destroy(rt);
    struct stat st;
    assert_int_equal(stat(db, &st), 0); /* the durable event tier lives in the data dir */

    /* a missing config file fails create with the file named */
    err = (fdn_error_t)FDN_ERROR_INIT;
    o.config_path = "/nonexistent/fdn.json";
    assert_true(fdn_runtime_create(&rt, &o, &err) < 0);
    assert_non_null(strstr(err.message, "/nonexistent/fdn.json"));

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void bad_options(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.version = 99;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), FDN_EINVAL);
    o.version = FDN_RUNTIME_OPTS_VERSION;
    o.task_workers = 0;
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), FDN_EINVAL);
    o.task_workers = 1;
    o.name = "";
    assert_int_equal(fdn_runtime_create(&rt, &o, NULL), FDN_EINVAL);
    o.name = NULL;
    o.period_ns = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, &o, &err), FDN_EINVAL);
    assert_int_equal(err.code, FDN_EINVAL);
    assert_int_equal(fdn_runtime_create(NULL, NULL, NULL), FDN_EINVAL);
}

static void start_order_and_reverse_stop(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    fdn_runtime_t *rt = fake_runtime(&clock, FDN_RUNTIME_NO_START, 3);
    ASSERT_LOG("");
    app_t a1 = {0}, a2 = {0};
    fdn_service_spec_t s1 = app_spec(&a1, "app1", false);
    fdn_service_spec_t s2 = app_spec(&a2, "app2", true);
    assert_int_equal(fdn_runtime_add_service(rt, &s1, NULL), 0);
    fdn_runtime_health_t hl;
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_STOPPED);
    assert_false(registered(rt, "config_server", NULL));

    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    ASSERT_LOG("+config_server +event_store +telemetry_service +app1");
    assert_ptr_equal(a1.ctx_seen, rt);
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_EBUSY);
    /* added after start: started at once */
    assert_int_equal(fdn_runtime_add_service(rt, &s2, NULL), 0);
    ASSERT_LOG("+app2");
    assert_int_equal(fdn_runtime_add_service(rt, &s2, NULL), FDN_EEXIST);

    /* registry entries, handle = the service object */
    void *h = NULL;
    assert_true(registered(rt, "config_server", &h));
    assert_ptr_equal(h, fdn__runtime_slot(rt, FDN__RT_CONFIG));
    assert_true(registered(rt, "app1", &h));
    assert_ptr_equal(h, &a1);
    assert_true(registered(rt, "app2", NULL));
    char kind[16];
    assert_int_equal(
        fdn_registry_meta_get(fdn_runtime_registry(rt), "event_store", "kind", kind, 16, NULL), 0);
    assert_string_equal(kind, "builtin");
    assert_null(fdn__runtime_slot(rt, FDN__RT_LIMITER)); /* absent slot */
    assert_int_equal(fdn_runtime_service_status(rt, "rate_limiter", &(fdn_service_status_t){0}),
                     FDN_ESERVICE_NOT_FOUND);

    size_t n = 0;
    fdn_service_status_t sts[8];
    assert_int_equal(fdn_runtime_health(rt, &hl, sts, 8, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    assert_string_equal(sts[0].name, "config_server");
    assert_string_equal(sts[3].name, "task_supervisor");
    assert_string_equal(sts[5].name, "app2");

    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    ASSERT_LOG("-app2 -app1 -telemetry_service -event_store -config_server");
    assert_int_equal(fdn_registry_count(fdn_runtime_registry(rt)), 0);
    assert_int_equal(fdn_runtime_add_service(rt, &s1, NULL), FDN_EEXIST);
    fake_destroy(rt, clock);
    assert_int_equal(a1.destroyed, 1);
    assert_int_equal(a2.destroyed, 1);
}

static void restart_keeps_registration_and_gates_calls(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    fdn_runtime_t *rt = fake_runtime(&clock, 0, 3);
    ASSERT_LOG("+config_server +event_store +telemetry_service");
    comp_t *ev = fdn__runtime_slot(rt, FDN__RT_EVENTS);
    assert_int_equal(fdn_runtime_inject_fault(rt, "event_store", FDN_EIO), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("-event_store");
    assert_false(atomic_load(&ev->running));
    void *h = NULL;
    assert_true(registered(rt, "event_store", &h)); /* stable handle stays registered */
    assert_ptr_equal(h, ev);
    fdn_runtime_health_t hl;
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_DEGRADED);
    assert_int_equal(hl.restarting, 1);
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, "event_store", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    assert_int_equal(st.last_error, FDN_EIO);
    assert_int_equal(fdn_clock_advance(clock, 10 * MS), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("+event_store");
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    assert_int_equal(fdn_runtime_service_status(rt, "event_store", &st), 0);
    assert_int_equal(st.restarts, 1);
    fake_destroy(rt, clock);
    ASSERT_LOG("-telemetry_service -event_store -config_server");
}

static void health_poll_drives_restart(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    fdn_runtime_t *rt = fake_runtime(&clock, 0, 3);
    ASSERT_LOG("+config_server +event_store +telemetry_service");
    comp_t *tm = fdn__runtime_slot(rt, FDN__RT_TELEMETRY);
    atomic_store(&tm->health_rc, FDN_EUNHEALTHY);
    assert_int_equal(fdn_clock_advance(clock, SEC), 0); /* default poll interval 1 s */
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("-telemetry_service");
    atomic_store(&tm->health_rc, 0);
    assert_int_equal(fdn_clock_advance(clock, 10 * MS), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("+telemetry_service");
    fake_destroy(rt, clock);
    ASSERT_LOG("-telemetry_service -event_store -config_server");
}

typedef struct esc {
    atomic_int calls;
    char service[64];
    int code;
    atomic_int restarts;
    bool shutdown;
    int shutdown_rc;
} esc_t;

static void on_esc(fdn_runtime_t *rt, const char *service, int code, void *user)
{
    esc_t *e = user;
    if (e->shutdown)
        e->shutdown_rc = fdn_runtime_shutdown(rt, 1000);
    snprintf(e->service, sizeof(e->service), "%s", service);
    e->code = code;
    atomic_fetch_add(&e->calls, 1);
}

static void on_rst(fdn_runtime_t *rt, const char *service, int attempt, int reason, void *user)
{
    (void)rt;
    (void)service;
    (void)attempt;
    (void)reason;
    esc_t *e = user;
    atomic_fetch_add(&e->restarts, 1);
}

static void escalation_fails_runtime(void **state)
{
    (void)state;
    esc_t e = {0};
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.on_escalation = on_esc;
    o.on_restart = on_rst;
    o.user = &e;
    o.max_restarts = 1;
    o.flags = FDN_RUNTIME_NO_START;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    app_t a = {0};
    fdn_service_spec_t s = app_spec(&a, "app", true);
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    ASSERT_LOG("+app");
    assert_true(registered(rt, "app", NULL));
    assert_int_equal(fdn_runtime_inject_fault(rt, "app", -ECONNRESET), 0);
    assert_int_equal(fdn_testing_settle(rt), 0);
    assert_int_equal(app_call(&a), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0);
    ASSERT_LOG("-app +app");
    assert_int_equal(atomic_load(&e.restarts), 1);
    assert_int_equal(fdn_runtime_inject_fault(rt, "app", -ECONNRESET), 0);
    assert_int_equal(fdn_testing_settle(rt), 0);
    ASSERT_LOG("-app");
    assert_int_equal(atomic_load(&e.calls), 1);
    assert_string_equal(e.service, "app");
    assert_int_equal(e.code, -ECONNRESET);
    fdn_runtime_health_t hl;
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_FAILED);
    assert_int_equal(hl.running, 0);
    assert_int_equal(fdn_registry_count(fdn_runtime_registry(rt)), 0);
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), FDN_EEXIST);
    app_t b = {0};
    fdn_service_spec_t sb = app_spec(&b, "b", false);
    assert_int_equal(fdn_runtime_add_service(rt, &sb, NULL), FDN_EESCALATED);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    assert_int_equal(a.destroyed, 1);
    assert_int_equal(b.destroyed, 0);
}

static void builtin_failures_leave_nothing(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    assert_int_equal(fdn_clock_manual_create(&clock, SEC, SEC), 0);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.clock = clock;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    g_create_fail_slot = FDN__RT_EVENTS;
    assert_int_equal(fdn__runtime_create_with(&rt, &o, TABLE, &err), FDN_ECONFIG_INVALID);
    assert_non_null(strstr(err.context, "event_store"));
    ASSERT_LOG("");
    g_create_fail_slot = -1;
    g_start_fail_slot = FDN__RT_TELEMETRY;
    assert_int_equal(fdn__runtime_create_with(&rt, &o, TABLE, &err), FDN_EIO);
    assert_non_null(strstr(err.context, "telemetry_service"));
    ASSERT_LOG("+config_server +event_store -event_store -config_server");
    g_start_fail_slot = -1;
    fdn_clock_destroy(clock);
}

/* A start that fails leaves the runtime as before it, not started: once the cause is gone
 * (here a built-in whose start fails once), start again starts everything. Before, the
 * runtime was left shut down (FDN_ESHUTDOWN) and had to be destroyed. */
static void failed_start_can_be_retried(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    g_start_fail_slot = FDN__RT_TELEMETRY;
    fdn_runtime_t *rt = fake_runtime(&clock, FDN_RUNTIME_NO_START, 3);
    g_start_fail_slot = -1;
    ASSERT_LOG("");
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_start(rt, &err), FDN_EIO);
    assert_non_null(strstr(err.context, "telemetry_service"));
    ASSERT_LOG("+config_server +event_store -event_store -config_server");
    fdn_runtime_health_t hl;
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_STOPPED);
    assert_int_equal(hl.uptime_ns, 0);
    assert_int_equal(hl.running, 0);
    assert_false(registered(rt, "config_server", NULL));

    ((comp_t *)fdn__runtime_slot(rt, FDN__RT_TELEMETRY))->start_rc = 0; /* the fault is gone */
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    ASSERT_LOG("+config_server +event_store +telemetry_service");
    assert_int_equal(fdn_runtime_health(rt, &hl, NULL, 0, NULL), 0);
    assert_int_equal(hl.status, FDN_RUNTIME_HEALTHY);
    assert_true(registered(rt, "config_server", NULL));
    assert_true(registered(rt, "telemetry_service", NULL));
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_EBUSY);

    /* after a shutdown, no start */
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0);
    ASSERT_LOG("-telemetry_service -event_store -config_server");
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_ESHUTDOWN);
    fake_destroy(rt, clock);
}

/* A fake runtime with the config running from create (TABLE_CFG_FROM_CREATE), whose start
 * failed (a built-in after the config failed to start): the rollback left the config, *cfg,
 * running (no -config_server). */
static fdn_runtime_t *failed_start_from_create(fdn_clock_t **clock, comp_t **cfg)
{
    g_table = TABLE_CFG_FROM_CREATE;
    g_start_fail_slot = FDN__RT_TELEMETRY;
    fdn_runtime_t *rt = fake_runtime(clock, FDN_RUNTIME_NO_START, 3);
    g_start_fail_slot = -1;
    g_table = TABLE;
    ASSERT_LOG("");
    *cfg = fdn__runtime_slot(rt, FDN__RT_CONFIG);
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_EIO);
    ASSERT_LOG("+config_server +event_store -event_store"); /* no -config_server */
    assert_true(atomic_load(&(*cfg)->running));
    return rt;
}

/* A slot running from create (the config) is not stopped by the rollback of a failed start,
 * which leaves the runtime as before the call; a restart and the shutdown still stop it. */
static void failed_start_keeps_slot_running_from_create(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    comp_t *cfg;
    fdn_runtime_t *rt = failed_start_from_create(&clock, &cfg);
    assert_false(registered(rt, "config_server", NULL)); /* as before the call */

    ((comp_t *)fdn__runtime_slot(rt, FDN__RT_TELEMETRY))->start_rc = 0;
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    ASSERT_LOG("+config_server +event_store +telemetry_service");
    assert_true(registered(rt, "config_server", NULL));

    /* a restart runs on the supervisor's thread: the config is stopped and started again */
    atomic_store(&cfg->health_rc, FDN_EUNHEALTHY);
    assert_int_equal(fdn_clock_advance(clock, SEC), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("-config_server");
    atomic_store(&cfg->health_rc, 0);
    assert_int_equal(fdn_clock_advance(clock, 10 * MS), 0);
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS), 0);
    ASSERT_LOG("+config_server");
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0);
    ASSERT_LOG("-telemetry_service -event_store -config_server");
    assert_false(atomic_load(&cfg->running));
    fake_destroy(rt, clock);
}

/* A runtime whose start failed (or that was never started) runs the slot it started at create
 * (the config): its shutdown stops it too, once, as a started runtime's shutdown does (the
 * supervisor's shutdown stops only what it started). Before, it ran until destroy. */
static void shutdown_unstarted_stops_slot_running_from_create(void **state)
{
    (void)state;
    fdn_clock_t *clock;
    comp_t *cfg;
    fdn_runtime_t *rt = failed_start_from_create(&clock, &cfg);
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0);
    ASSERT_LOG("-config_server");
    assert_false(atomic_load(&cfg->running));
    assert_int_equal(fdn_runtime_shutdown(rt, -1), 0); /* idempotent: not stopped twice */
    ASSERT_LOG("");
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_ESHUTDOWN);
    fake_destroy(rt, clock);
    ASSERT_LOG("");
}

static void default_runtime(void **state)
{
    (void)state;
    assert_null(fdn_runtime_default());
    fdn_runtime_t *a = NULL, *b = NULL;
    assert_int_equal(fdn_testing_runtime_create(&a, NULL, NULL), 0);
    assert_int_equal(fdn_testing_runtime_create(&b, NULL, NULL), 0);
    assert_null(fdn_runtime_set_default(a));
    assert_ptr_equal(fdn_runtime_default(), a);
    assert_int_equal(fdn_testing_runtime_destroy(b, NULL), 0); /* not the default */
    assert_ptr_equal(fdn_runtime_default(), a);
    assert_int_equal(fdn_testing_runtime_destroy(a, NULL), 0);
    assert_null(fdn_runtime_default());
}

static int task_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void testing_runtimes_are_isolated(void **state)
{
    (void)state;
    fdn_runtime_t *a = NULL, *b = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_testing_runtime_create(&a, NULL, &err), 0);
    assert_int_equal(fdn_testing_runtime_create(&b, NULL, &err), 0);
    assert_true(strncmp(fdn_runtime_name(a), "test-", 5) == 0);
    assert_string_not_equal(fdn_runtime_name(a), fdn_runtime_name(b));
    assert_true(fdn_clock_is_manual(fdn_runtime_clock(a)));
    assert_ptr_not_equal(fdn_runtime_clock(a), fdn_runtime_clock(b));
    assert_null(fdn_runtime_data_dir(a));
    int x = 1;
    assert_int_equal(fdn_registry_register(fdn_runtime_registry(a), "mine", &x, 0, NULL, 0, NULL),
                     0);
    assert_true(registered(a, "mine", NULL));
    assert_false(registered(b, "mine", NULL));
    atomic_int ran = 0;
    assert_int_equal(fdn_tasks_submit_wait(fdn_runtime_tasks(a), task_fn, &ran, TEST_WAIT_MS), 0);
    assert_int_equal(fdn_tasks_submit(fdn_runtime_tasks(a), task_fn, &ran), 0);
    int64_t t = fdn_clock_mono_ns(fdn_runtime_clock(a));
    assert_int_equal(fdn_testing_advance(a, SEC), 0);
    assert_int_equal(fdn_clock_mono_ns(fdn_runtime_clock(a)), t + SEC);
    assert_int_equal(fdn_clock_mono_ns(fdn_runtime_clock(b)), t);
    assert_int_equal(fdn_testing_advance(NULL, SEC), FDN_EINVAL);
    /* an app registration that is not the runtime's own does not count as a leak */
    assert_int_equal(fdn_testing_runtime_destroy(a, &err), 0);
    assert_int_equal(atomic_load(&ran), 2); /* shutdown drained the queue */
    assert_int_equal(fdn_testing_runtime_destroy(b, &err), 0);
    assert_int_equal(fdn_testing_runtime_destroy(NULL, NULL), 0);
}

static void task_pool_is_supervised(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    fdn_tasks_t *tp = fdn_runtime_tasks(rt);
    atomic_int ran = 0;
    assert_int_equal(fdn_runtime_inject_fault(rt, "task_supervisor", FDN_EIO), 0);
    assert_int_equal(fdn_testing_settle(rt), 0);
    void *h = NULL;
    assert_true(registered(rt, "task_supervisor", &h)); /* same handle through the restart */
    assert_ptr_equal(h, tp);
    assert_int_equal(fdn_tasks_submit(tp, task_fn, &ran), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0);
    assert_int_equal(fdn_tasks_submit(tp, task_fn, &ran), 0);
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, "task_supervisor", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    assert_int_equal(atomic_load(&ran), 1);
}

static void taken_name_fails_the_start(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    int other = 0;
    assert_int_equal(
        fdn_registry_register(fdn_runtime_registry(rt), "app", &other, 0, NULL, 0, NULL), 0);
    app_t a = {0};
    fdn_service_spec_t s = app_spec(&a, "app", false);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_add_service(rt, &s, &err), FDN_EEXIST);
    ASSERT_LOG("+app -app");
    assert_int_equal(app_call(&a), FDN_EUNAVAILABLE);
    void *h = NULL;
    assert_true(registered(rt, "app", &h));
    assert_ptr_equal(h, &other); /* the existing entry is untouched */
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    assert_int_equal(a.destroyed, 0);
}

static void shutdown_from_escalation_callback(void **state)
{
    (void)state;
    esc_t e = {0};
    e.shutdown = true;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.on_escalation = on_esc;
    o.user = &e;
    o.max_restarts = 0;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    app_t a = {0};
    fdn_service_spec_t s = app_spec(&a, "app", true);
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    ASSERT_LOG("+app");
    assert_int_equal(fdn_runtime_inject_fault(rt, "app", FDN_EIO), 0);
    /* wait_idle returns once the fault was handled: FDN_ESHUTDOWN because the escalation
     * callback asked for the shutdown; a shutdown here then waits for the stop to finish */
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS),
                     FDN_ESHUTDOWN);
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    assert_int_equal(atomic_load(&e.calls), 1);
    assert_int_equal(e.shutdown_rc, 0);
    ASSERT_LOG("-app");
    assert_int_equal(fdn_testing_runtime_destroy(rt, &err), 0);
}

/* An application worker loop that asks its runtime to shut down (a fatal condition it
 * detected): the call only requests the stop (it would otherwise wait for the supervisor,
 * which joins this very thread) and the runtime then stops every service. */
typedef struct shut_app {
    app_t a;
    fdn_runtime_t *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
} shut_app_t;

static int shut_run(void *s, fdn_service_ctl_t *ctl)
{
    shut_app_t *x = s;
    int rc = fdn_runtime_shutdown(x->rt, 300);
    pthread_mutex_lock(&x->mu);
    x->rc = rc;
    x->done = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

static const fdn_service_ops_t SHUT_OPS = {app_start, app_stop, NULL, shut_run, app_destroy};

static void shutdown_from_worker_loop(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    shut_app_t x = {.rt = rt, .rc = 12345};
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    fdn_service_spec_t s = app_spec(&x.a, "app", true);
    s.ops = &SHUT_OPS;
    s.state = &x;
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    pthread_mutex_lock(&x.mu);
    while (!x.done)
        pthread_cond_wait(&x.cv, &x.mu);
    pthread_mutex_unlock(&x.mu);
    assert_int_equal(x.rc, 0);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    fdn_runtime_health_t h;
    assert_int_equal(fdn_runtime_health(rt, &h, NULL, 0, NULL), 0);
    assert_int_equal(h.status, FDN_RUNTIME_STOPPED);
    assert_int_equal(h.running, 0);
    ASSERT_LOG("+app -app");
    assert_int_equal(fdn_testing_runtime_destroy(rt, &err), 0);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv);
}

/* A task of the runtime's pool adds a service while the supervisor stops that pool (a restart
 * of "task_supervisor"): the stop waits for the pool's tasks to finish, so the add must not wait
 * for the supervisor (it once did, forever: each waited for the other). It fails at once with
 * FDN_ECANCELED, as an add from a worker loop being stopped does, and changes nothing. */
typedef struct task_add {
    fdn_runtime_t *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool restarting, done;
    int rc;
    app_t a;
} task_add_t;

static void ta_on_restart(fdn_runtime_t *rt, const char *service, int attempt, int reason,
                          void *user)
{
    (void)rt;
    (void)attempt;
    (void)reason;
    task_add_t *t = user;
    if (strcmp(service, "task_supervisor") != 0)
        return;
    pthread_mutex_lock(&t->mu);
    t->restarting = true; /* the stop of the pool follows on this thread */
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static int ta_task(void *arg)
{
    task_add_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->restarting)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    fdn_service_spec_t s = app_spec(&t->a, "late", false);
    int rc = fdn_runtime_add_service(t->rt, &s, NULL);
    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void add_from_task_while_pool_restarts(void **state)
{
    (void)state;
    task_add_t t = {.rc = 12345};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.flags = FDN_RUNTIME_NO_BUILTINS;
    o.on_restart = ta_on_restart;
    o.user = &t;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    t.rt = rt;
    assert_int_equal(fdn_tasks_submit(fdn_runtime_tasks(rt), ta_task, &t), 0);
    assert_int_equal(fdn_runtime_inject_fault(rt, "task_supervisor", FDN_EIO), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.done)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(t.rc, FDN_ECANCELED);
    assert_int_equal(fdn_testing_settle(rt), 0);
    assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0); /* the pool's restart */
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, "task_supervisor", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(fdn_runtime_service_status(rt, "late", &st), FDN_ESERVICE_NOT_FOUND);
    /* nothing of the refused add is left: the same name adds and starts now */
    fdn_service_spec_t s = app_spec(&t.a, "late", false);
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    ASSERT_LOG("+late");
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    ASSERT_LOG("-late");
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
}

/* A config subscriber that reconfigures the runtime (adds a service on a change) while the
 * supervisor restarts the config service: the config's stop joins the subscriber's delivery
 * thread, so the add must not wait for the supervisor (it once did, forever). It fails at once
 * with FDN_ECANCELED and the config restarts. */
static void ta_on_restart_cfg(fdn_runtime_t *rt, const char *service, int attempt, int reason,
                              void *user)
{
    (void)rt;
    (void)attempt;
    (void)reason;
    task_add_t *t = user;
    if (strcmp(service, "config_server") != 0)
        return;
    pthread_mutex_lock(&t->mu);
    t->restarting = true; /* the stop of the config follows on this thread */
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void ta_on_change(const fdn_config_change_t *c, void *user)
{
    (void)c;
    task_add_t *t = user;
    pthread_mutex_lock(&t->mu);
    bool first = !t->done && t->rc == 12345;
    pthread_mutex_unlock(&t->mu);
    if (first)
        (void)ta_task(t);
}

static void add_from_config_subscriber_while_config_restarts(void **state)
{
    (void)state;
    task_add_t t = {.rc = 12345};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.on_restart = ta_on_restart_cfg;
    o.user = &t;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    t.rt = rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(cfg, "interface.max_results", ta_on_change, &t, &id), 0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 77, NULL), 0);
    assert_int_equal(fdn_runtime_inject_fault(rt, "config_server", FDN_EIO), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.done)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(t.rc, FDN_ECANCELED);
    assert_int_equal(fdn_testing_settle(rt), 0);
    assert_int_equal(fdn_testing_advance(rt, 10 * MS), 0); /* the config's restart */
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, "config_server", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(fdn_runtime_service_status(rt, "late", &st), FDN_ESERVICE_NOT_FOUND);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 77);
    assert_int_equal(fdn_config_unsubscribe(cfg, id), 0);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    ASSERT_LOG("");
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
}

/* fdn_runtime_shutdown from a task of the runtime's own pool: the supervisor's stop of the pool
 * runs the pool's tasks to their end, that one included, so the call only requests the stop and
 * returns 0, as from a supervisor callback (it once waited for the supervisor, which waited for
 * the task: neither returned). A shutdown from another thread then completes it. */
static int ts_task(void *arg)
{
    rt_shut_call(arg);
    return 0;
}

static void shutdown_from_task(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    app_t a = {0};
    fdn_service_spec_t s = app_spec(&a, "app", false);
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    ASSERT_LOG("+app");
    assert_int_equal(fdn_tasks_submit(fdn_runtime_tasks(rt), ts_task, &t), 0);
    rt_shut_complete(&t);
    ASSERT_LOG("-app");
    assert_int_equal(fdn_tasks_submit(fdn_runtime_tasks(rt), ts_task, &t), FDN_ESHUTDOWN);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

/* The same from a subscriber of the runtime's config (its delivery thread, which the config's
 * stop joins): it once waited for the supervisor, which waited for that thread. */
static void ts_on_change(const fdn_config_change_t *c, void *user)
{
    (void)c;
    rt_shut_call(user);
}

static void shutdown_from_config_subscriber(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(cfg, "interface.max_results", ts_on_change, &t, &id), 0);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 77, NULL), 0);
    rt_shut_complete(&t);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

/* The same from a subscriber of the runtime's event store (its delivery thread, which the
 * store's stop joins). */
static void ts_on_event(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    (void)ev;
    (void)skipped;
    ts_on_change(NULL, user);
}

static void shutdown_from_event_subscriber(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.type = "app_stop";
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(fdn_runtime_events(rt), &so, ts_on_event, &t, &sub), 0);
    rt_store_one(rt, "app_stop");
    rt_shut_complete(&t);
    fdn_events_unsubscribe(sub);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

/* The same from a telemetry handler run on the config's hook thread (the runtime's own hook
 * counts each update, foundation.config_updates, on that thread, which the config's stop
 * joins): it once waited for the supervisor, which waited for that thread. */
static void shutdown_from_config_hook_thread(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    uint64_t hid = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(rt), &hid,
                                          "foundation.config_updates", FDN_TELEMETRY_MATCH_EXACT,
                                          rt_shut_on_telemetry, &t),
                     0);
    assert_int_equal(
        fdn_config_update_int(fdn_runtime_config(rt), "interface.max_results", 77, NULL), 0);
    rt_shut_complete(&t);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

/* The same from a telemetry handler run on the event store's pruner thread (its count of the
 * events it pruned), which the store's stop joins. */
static void shutdown_from_event_pruner_thread(void **state)
{
    (void)state;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, NULL, NULL), 0);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    uint64_t hid = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(rt), &hid,
                                          "foundation.event_store.events_pruned",
                                          FDN_TELEMETRY_MATCH_EXACT, rt_shut_on_telemetry, &t),
                     0);
    rt_store_one(rt, "old");
    /* past storage.hot.max_age_seconds (3600) and a prune interval: the pruner prunes it */
    assert_int_equal(fdn_clock_advance(fdn_runtime_clock(rt), 3700 * SEC), 0);
    rt_shut_complete(&t);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

/* The task pool runs from create, as the config does: tasks submitted before the start run. A
 * start that fails after the pool (an application service's start fails) leaves the runtime as
 * before the call, so the pool still takes and runs tasks (the rollback once stopped it: every
 * submit answered FDN_EUNAVAILABLE until a start succeeded); a retry then starts it as usual
 * and the shutdown runs what is queued. */
static int app_start_fails(void *s, void *ctx, fdn_error_t *err)
{
    (void)s;
    (void)ctx;
    return fdn_err_set(err, FDN_EIO, "app: cannot start");
}

static void failed_start_keeps_task_pool_running(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.flags = FDN_RUNTIME_NO_START | FDN_RUNTIME_NO_BUILTINS;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &o, NULL), 0);
    fdn_tasks_t *tp = fdn_runtime_tasks(rt);
    atomic_int ran = 0;
    assert_int_equal(fdn_tasks_submit_wait(tp, task_fn, &ran, TEST_WAIT_MS), 0);
    fdn_service_ops_t ops = APP_OPS;
    ops.start = app_start_fails;
    app_t a = {0};
    fdn_service_spec_t s = app_spec(&a, "app", false);
    s.ops = &ops;
    assert_int_equal(fdn_runtime_add_service(rt, &s, NULL), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), FDN_EIO);
    /* as before the call: the pool takes tasks and runs them, and a task may add a service
     * (appended, as before a start: the pool's rollback, skipped, is no stop that waits for
     * the task) */
    assert_int_equal(fdn_tasks_submit_wait(tp, task_fn, &ran, TEST_WAIT_MS), 0);
    task_add_t t = {.rc = 12345, .restarting = true};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    t.rt = rt;
    assert_int_equal(fdn_tasks_submit(tp, ta_task, &t), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.done)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(t.rc, 0);
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
    ops.start = app_start; /* the fault is gone */
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    ASSERT_LOG("+app +late");
    fdn_service_status_t st;
    assert_int_equal(fdn_runtime_service_status(rt, "task_supervisor", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(fdn_tasks_submit_wait(tp, task_fn, &ran, TEST_WAIT_MS), 0);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    ASSERT_LOG("-late -app");
    assert_int_equal(atomic_load(&ran), 3);
}

/* Applications register their own config sections through the runtime's options, before the
 * config service starts; environment overrides reach them through opts.envp. */
static void app_config_section(void **state)
{
    (void)state;
    static const fdn_config_key_def_t keys[] = {
        {.path = "myapp.workers",
         .type = FDN_CONFIG_INT,
         .default_json = "4",
         .rule = FDN_CONFIG_RULE_POSITIVE,
         .updatable = true,
         .description = "worker threads of the application",
         .error_code = FDN_ECONFIG_RANGE,
         .error_message = "myapp.workers must be positive"},
        {.path = "myapp.name",
         .type = FDN_CONFIG_STRING,
         .default_json = "\"demo\"",
         .updatable = false,
         .description = "application name"},
    };
    static const char *const env[] = {"FDN_MYAPP__WORKERS=8", "PATH=/usr/bin", NULL};
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = "app-section";
    o.config_keys = keys;
    o.config_nkeys = 2;
    o.envp = env;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, &o, &err), 0);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(cfg, "myapp.workers", &v), 0);
    assert_int_equal(v, 8); /* default 4 < environment 8 */
    assert_int_equal(fdn_config_update_int(cfg, "myapp.workers", 3, NULL), 0);
    assert_int_equal(fdn_config_get_int(cfg, "myapp.workers", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(fdn_config_update_int(cfg, "myapp.workers", 0, &err), FDN_ECONFIG_RANGE);
    assert_string_equal(err.message, "myapp.workers must be positive");
    assert_int_equal(fdn_config_update_string(cfg, "myapp.name", "x", &err), FDN_ECONFIG_FORBIDDEN);
    fdn_runtime_destroy(rt);

    /* an environment value of the wrong type fails create, naming the variable */
    static const char *const bad_env[] = {"FDN_MYAPP__WORKERS=many", NULL};
    o.envp = bad_env;
    err = (fdn_error_t)FDN_ERROR_INIT;
    assert_true(fdn_runtime_create(&rt, &o, &err) < 0);
    assert_non_null(strstr(err.message, "FDN_MYAPP__WORKERS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_destroy_defaults),
        cmocka_unit_test(app_config_section),
        cmocka_unit_test(bad_options),
        cmocka_unit_test(start_order_and_reverse_stop),
        cmocka_unit_test(failed_start_can_be_retried),
        cmocka_unit_test(failed_start_keeps_slot_running_from_create),
        cmocka_unit_test(shutdown_unstarted_stops_slot_running_from_create),
        cmocka_unit_test(restart_keeps_registration_and_gates_calls),
        cmocka_unit_test(health_poll_drives_restart),
        cmocka_unit_test(escalation_fails_runtime),
        cmocka_unit_test(builtin_failures_leave_nothing),
        cmocka_unit_test(default_runtime),
        cmocka_unit_test(testing_runtimes_are_isolated),
        cmocka_unit_test(task_pool_is_supervised),
        cmocka_unit_test(taken_name_fails_the_start),
        cmocka_unit_test(shutdown_from_escalation_callback),
        cmocka_unit_test(shutdown_from_worker_loop),
        cmocka_unit_test(add_from_task_while_pool_restarts),
        cmocka_unit_test(add_from_config_subscriber_while_config_restarts),
        cmocka_unit_test(shutdown_from_task),
        cmocka_unit_test(shutdown_from_config_subscriber),
        cmocka_unit_test(shutdown_from_event_subscriber),
        cmocka_unit_test(shutdown_from_config_hook_thread),
        cmocka_unit_test(shutdown_from_event_pruner_thread),
        cmocka_unit_test(failed_start_keeps_task_pool_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
