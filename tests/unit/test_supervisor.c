/* Unit tests: the supervisor. Deterministic: a manual clock drives backoff and health polls;
 * fdn_supervisor_wait_idle and condition waits synchronise with the supervisor thread.
 *
 * Every test runs on a fixture made by fx_setup and freed by fx_teardown (cmocka
 * setup/teardown); the supervisor's options come from the fx_params_t given as the test's
 * initial state (SUP_TEST below), and the ABC variants also add and start services a, b, c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include <fdn/supervisor.h>

#include "threads.h"

#define MS         1000000LL
#define SEC        1000000000LL
#define WAIT_MS    TEST_WAIT_MS
#define BACKOFF_NS (10 * MS)

/* ---- a recording test service ---- */

typedef struct world {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char log[2048];
    int escalations;
    char esc_service[64];
    int esc_code;
    int restarts_cb;
    int last_attempt;
    int64_t last_backoff;
    int events;
    fdn_clock_t *clock;
    fdn_supervisor_t *sup;
    bool shutdown_in_escalation;
    int esc_shutdown_rc;
    int probe_shutdown_rc;
    void (*restart_hook)(struct world *w); /* runs in on_restart (supervisor thread) */
    int64_t hook_restarts;                 /* what hook_read_restarts read */
    atomic_bool go;                        /* tells a test worker loop to act */
    int step;                              /* lock-step handshake with a worker loop (under mu) */
} world_t;

typedef struct tsvc {
    world_t *w;
    char name[16];
    atomic_bool running;
    atomic_int start_rc;
    atomic_int worker_rc; /* worker returns it once non-zero */
    atomic_int health_rc;
    atomic_int starts;
    atomic_int stops;
    atomic_int destroyed;
} tsvc_t;

static void log_add(world_t *w, char sign, const char *name)
{
    pthread_mutex_lock(&w->mu);
    size_t len = strlen(w->log);
    snprintf(w->log + len, sizeof(w->log) - len, "%s%c%s", len ? " " : "", sign, name);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void log_take(world_t *w, char *out, size_t cap)
{
    pthread_mutex_lock(&w->mu);
    snprintf(out, cap, "%s", w->log);
    w->log[0] = '\0';
    pthread_mutex_unlock(&w->mu);
}

#define ASSERT_LOG(w, expect)                                                                      \
    do {                                                                                           \
        char got_[2048];                                                                           \
        log_take((w), got_, sizeof(got_));                                                         \
        assert_string_equal(got_, (expect));                                                       \
    } while (0)

static int t_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    tsvc_t *s = state;
    int rc = atomic_load(&s->start_rc);
    if (rc != 0)
        return fdn_err_set(err, rc, "test service %s refuses to start", s->name);
    atomic_fetch_add(&s->starts, 1);
    log_add(s->w, '+', s->name);
    atomic_store(&s->running, true);
    return 0;
}

static void t_stop(void *state)
{
    tsvc_t *s = state;
    atomic_store(&s->running, false);
    atomic_fetch_add(&s->stops, 1);
    log_add(s->w, '-', s->name);
}

static int t_health(void *state)
{
    tsvc_t *s = state;
    return atomic_load(&s->health_rc);
}

static int t_run(void *state, fdn_service_ctl_t *ctl)
{
    tsvc_t *s = state;
    for (;;) {
        int rc = atomic_exchange(&s->worker_rc, 0);
        if (rc != 0)
            return rc == 1 ? 0 : rc; /* 1 asks for a normal exit */
        if (fdn_service_wait(ctl, INT64_MAX) == FDN_ECANCELED)
            return 0;
    }
}

static void t_destroy(void *state)
{
    tsvc_t *s = state;
    atomic_fetch_add(&s->destroyed, 1);
}

/* A call into the service: answers FDN_EUNAVAILABLE unless running. */
static int t_call(tsvc_t *s)
{
    return atomic_load(&s->running) ? 0 : FDN_EUNAVAILABLE;
}

/* A stop that asks, while it runs, whether shutdown (from another thread: on the lifecycle
 * thread it would only request the stop) reports the supervisor as stopped. */
static void *probe_main(void *p)
{
    tsvc_t *s = p;
    return (void *)(intptr_t)fdn_supervisor_shutdown(s->w->sup, 0);
}

static void t_stop_probe(void *state)
{
    tsvc_t *s = state;
    pthread_t th;
    void *res = NULL;
    int rc = 12345;
    if (pthread_create(&th, NULL, probe_main, s) == 0 && pthread_join(th, &res) == 0)
        rc = (int)(intptr_t)res;
    pthread_mutex_lock(&s->w->mu);
    s->w->probe_shutdown_rc = rc;
    pthread_mutex_unlock(&s->w->mu);
    t_stop(state);
}

/* A worker loop that decides to shut its own supervisor down, then waits to be stopped. */
static int t_run_shutdown(void *state, fdn_service_ctl_t *ctl)
{
    tsvc_t *s = state;
    while (!atomic_load(&s->w->go) && fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    int rc = fdn_supervisor_shutdown(s->w->sup, 300);
    pthread_mutex_lock(&s->w->mu);
    s->w->probe_shutdown_rc = rc;
    pthread_cond_broadcast(&s->w->cv);
    pthread_mutex_unlock(&s->w->mu);
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

/* A worker loop that, once told to stop, tries to add another service (cleanup code that
 * registers a replacement, say). The supervisor is joining it at that moment. */
static tsvc_t g_late_add_svc;
static int t_run_add_when_stopped(void *state, fdn_service_ctl_t *ctl)
{
    tsvc_t *s = state;
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED && !atomic_load(&s->w->go))
        ;
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "late";
    spec.ops = &(const fdn_service_ops_t){t_start, t_stop, NULL, NULL, NULL};
    g_late_add_svc.w = s->w;
    snprintf(g_late_add_svc.name, sizeof(g_late_add_svc.name), "late");
    spec.state = &g_late_add_svc;
    int rc = fdn_supervisor_add(s->w->sup, &spec, NULL);
    pthread_mutex_lock(&s->w->mu);
    s->w->probe_shutdown_rc = rc;
    pthread_mutex_unlock(&s->w->mu);
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

/* A worker loop waiting for application work announced by a clock kick: it checks `go`,
 * then (step 1) lets the test set `go` and kick before it calls fdn_service_wait. */
static int t_run_check_then_wait(void *state, fdn_service_ctl_t *ctl)
{
    tsvc_t *s = state;
    world_t *w = s->w;
    bool first = true;
    while (!atomic_load(&w->go)) {
        if (first) {
            first = false;
            pthread_mutex_lock(&w->mu);
            w->step = 1;
            pthread_cond_broadcast(&w->cv);
            while (w->step != 2)
                pthread_cond_wait(&w->cv, &w->mu);
            pthread_mutex_unlock(&w->mu);
        }
        if (fdn_service_wait(ctl, INT64_MAX) == FDN_ECANCELED)
            return 0;
    }
    pthread_mutex_lock(&w->mu);
    w->step = 3; /* saw the work */
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

/* A start that shuts its supervisor down (a fatal condition found while starting). */
static int t_start_shutdown(void *state, void *ctx, fdn_error_t *err)
{
    tsvc_t *s = state;
    int rc = fdn_supervisor_shutdown(s->w->sup, 300);
    pthread_mutex_lock(&s->w->mu);
    s->w->probe_shutdown_rc = rc;
    pthread_mutex_unlock(&s->w->mu);
    return t_start(state, ctx, err);
}

static const fdn_service_ops_t OPS = {t_start, t_stop, t_health, NULL, t_destroy};
static const fdn_service_ops_t OPS_START_SHUTDOWN = {t_start_shutdown, t_stop, NULL, NULL,
                                                     t_destroy};
static const fdn_service_ops_t OPS_CHECK_WAIT = {t_start, t_stop, NULL, t_run_check_then_wait,
                                                 t_destroy};
static const fdn_service_ops_t OPS_RUN_ADD = {t_start, t_stop, t_health, t_run_add_when_stopped,
                                              t_destroy};
static const fdn_service_ops_t OPS_RUN_SHUTDOWN = {t_start, t_stop, t_health, t_run_shutdown,
                                                   t_destroy};
static const fdn_service_ops_t OPS_PROBE = {t_start, t_stop_probe, t_health, NULL, t_destroy};
static const fdn_service_ops_t OPS_WORKER = {t_start, t_stop, t_health, t_run, t_destroy};

static void on_escalation(const char *service, int code, void *user)
{
    world_t *w = user;
    int src = w->shutdown_in_escalation ? fdn_supervisor_shutdown(w->sup, -1) : 0;
    pthread_mutex_lock(&w->mu);
    w->esc_shutdown_rc = src;
    w->escalations++;
    snprintf(w->esc_service, sizeof(w->esc_service), "%s", service);
    w->esc_code = code;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_restart(const char *service, int attempt, int reason, int64_t backoff, void *user)
{
    (void)service;
    (void)reason;
    world_t *w = user;
    pthread_mutex_lock(&w->mu);
    w->restarts_cb++;
    w->last_attempt = attempt;
    w->last_backoff = backoff;
    pthread_mutex_unlock(&w->mu);
    if (w->restart_hook != NULL)
        w->restart_hook(w);
}

static void on_event(const char *service, void *state, fdn_service_state_t st, int code, void *user)
{
    (void)service;
    (void)state;
    (void)st;
    (void)code;
    world_t *w = user;
    pthread_mutex_lock(&w->mu);
    w->events++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

#define MAXSVC 4
typedef struct fixture {
    world_t w;
    tsvc_t svc[MAXSVC];
    int nsvc;
} fixture_t;

static fixture_t *fx_new(fdn_sup_strategy_t strategy, int max_restarts, int64_t base, int64_t max)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pthread_mutex_init(&f->w.mu, NULL);
    pthread_cond_init(&f->w.cv, NULL);
    assert_int_equal(fdn_clock_manual_create(&f->w.clock, 1 * SEC, 1000 * SEC), 0);
    fdn_supervisor_opts_t o = FDN_SUPERVISOR_OPTS_INIT;
    o.name = "test";
    o.clock = f->w.clock;
    o.strategy = strategy;
    o.max_restarts = max_restarts;
    o.backoff_base_ns = base;
    o.backoff_max_ns = max;
    o.on_escalation = on_escalation;
    o.on_restart = on_restart;
    o.on_event = on_event;
    o.user = &f->w;
    assert_int_equal(fdn_supervisor_create(&f->w.sup, &o), 0);
    return f;
}

/* Adds a recording service named `name` described by spec (name and state filled in here). */
static tsvc_t *fx_add_spec(fixture_t *f, const char *name, fdn_service_spec_t *spec)
{
    assert_true(f->nsvc < MAXSVC);
    tsvc_t *s = &f->svc[f->nsvc++];
    s->w = &f->w;
    snprintf(s->name, sizeof(s->name), "%s", name);
    spec->name = name;
    spec->state = s;
    assert_int_equal(fdn_supervisor_add(f->w.sup, spec, NULL), 0);
    return s;
}

static tsvc_t *fx_add(fixture_t *f, const char *name, fdn_restart_t restart, bool worker,
                      int64_t health_interval)
{
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.ops = worker ? &OPS_WORKER : &OPS;
    spec.restart = restart;
    spec.health_interval_ns = health_interval;
    return fx_add_spec(f, name, &spec);
}

/* Adds a recording service with other callbacks (spec defaults otherwise). */
static tsvc_t *fx_add_ops(fixture_t *f, const char *name, const fdn_service_ops_t *ops)
{
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.ops = ops;
    return fx_add_spec(f, name, &spec);
}

static void fx_free(fixture_t *f)
{
    fdn_supervisor_destroy(f->w.sup);
    for (int i = 0; i < f->nsvc; i++)
        assert_int_equal(atomic_load(&f->svc[i].destroyed), 1);
    fdn_clock_destroy(f->w.clock);
    pthread_mutex_destroy(&f->w.mu);
    pthread_cond_destroy(&f->w.cv);
    free(f);
}

static fdn_service_state_t state_of(fixture_t *f, const char *name)
{
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, name, &st), 0);
    return st.state;
}

static void idle(fixture_t *f)
{
    assert_int_equal(fdn_supervisor_wait_idle(f->w.sup, WAIT_MS), 0);
}

static void advance(fixture_t *f, int64_t ns)
{
    assert_int_equal(fdn_clock_advance(f->w.clock, ns), 0);
    idle(f);
}

/* Wait (condition variable) until a service reaches a state. No wall-clock deadline: the
 * supervisor thread must get there however loaded the machine is; a hang is caught by the
 * test's ctest TIMEOUT. */
static void wait_state(fixture_t *f, const char *name, fdn_service_state_t want)
{
    pthread_mutex_lock(&f->w.mu);
    while (state_of(f, name) != want)
        pthread_cond_wait(&f->w.cv, &f->w.mu);
    pthread_mutex_unlock(&f->w.mu);
}

/* The fixture's parameters: the supervisor's options, and whether to add and start the
 * permanent services a, b, c. */
typedef struct fx_params {
    fdn_sup_strategy_t strategy;
    int max_restarts;
    int64_t backoff_base_ns, backoff_max_ns;
    bool abc;
} fx_params_t;

static int fx_setup(void **state)
{
    const fx_params_t *p = *state;
    fixture_t *f = fx_new(p->strategy, p->max_restarts, p->backoff_base_ns, p->backoff_max_ns);
    if (p->abc) {
        fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
        fx_add(f, "b", FDN_RESTART_PERMANENT, false, 0);
        fx_add(f, "c", FDN_RESTART_PERMANENT, false, 0);
        assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
        ASSERT_LOG(&f->w, "+a +b +c");
        idle(f);
    }
    *state = f;
    return 0;
}

/* Destroys the supervisor (shutting down whatever still runs, in reverse order) and checks
 * that every service's state was destroyed exactly once. */
static int fx_teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* one_for_one, 10 restarts in 5 s, backoff 10 ms doubling up to 1 s, unless named otherwise */
static const fx_params_t P_DEFAULT = {FDN_SUP_ONE_FOR_ONE, 10, BACKOFF_NS, SEC, false};
static const fx_params_t P_FEW = {FDN_SUP_ONE_FOR_ONE, 3, BACKOFF_NS, SEC, false};
static const fx_params_t P_ALL = {FDN_SUP_ONE_FOR_ALL, 10, BACKOFF_NS, SEC, false};
static const fx_params_t P_ABC_ONE = {FDN_SUP_ONE_FOR_ONE, 10, BACKOFF_NS, SEC, true};
static const fx_params_t P_ABC_ALL = {FDN_SUP_ONE_FOR_ALL, 10, BACKOFF_NS, SEC, true};
static const fx_params_t P_ABC_REST = {FDN_SUP_REST_FOR_ONE, 10, BACKOFF_NS, SEC, true};
static const fx_params_t P_WINDOW = {FDN_SUP_ONE_FOR_ONE, 2, 0, 0, false}; /* immediate */
static const fx_params_t P_BACKOFF = {FDN_SUP_ONE_FOR_ONE, 100, 10 * MS, 40 * MS, false};
static const fx_params_t P_ESCALATE = {FDN_SUP_ONE_FOR_ONE, 0, 0, 0, false}; /* 1st escalates */
static const fx_params_t P_HUGE = {FDN_SUP_ONE_FOR_ONE, 3, INT64_MAX, INT64_MAX, false};
static const fx_params_t P_SLOW = {FDN_SUP_ONE_FOR_ONE, 10, 100 * MS, SEC, false};

#define SUP_TEST(fn, params)                                                                       \
    cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, (void *)&(params))

/* ---- tests ---- */

static void one_for_one_restarts_only_the_failed(void **state)
{
    fixture_t *f = *state;
    int64_t t0 = fdn_clock_mono_ns(f->w.clock);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-b");
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "b", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    assert_int_equal(st.restart_due_ns, t0 + BACKOFF_NS);
    assert_int_equal(st.last_error, -EIO);
    assert_int_equal(t_call(&f->svc[1]), FDN_EUNAVAILABLE);
    assert_int_equal(t_call(&f->svc[0]), 0);
    advance(f, BACKOFF_NS - 1);
    assert_int_equal(state_of(f, "b"), FDN_SERVICE_RESTARTING);
    ASSERT_LOG(&f->w, "");
    advance(f, 1);
    ASSERT_LOG(&f->w, "+b");
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "b", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.last_error, -EIO);
    assert_int_equal(t_call(&f->svc[1]), 0);
    assert_int_equal(f->w.restarts_cb, 1);
    assert_int_equal(f->w.last_attempt, 1);
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
    ASSERT_LOG(&f->w, "-c -b -a");
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0); /* idempotent */
    ASSERT_LOG(&f->w, "");
}

/* In on_restart: b's restart count as a status reader sees it while the callback runs. */
static void hook_read_restarts(world_t *w)
{
    fdn_service_status_t st;
    w->hook_restarts =
        fdn_supervisor_service_status(w->sup, "b", &st) == 0 ? (int64_t)st.restarts : -1;
}

/* A restart is counted in the status only after on_restart returned: whoever sees the count
 * (the runtime's tests, a health check) finds what the callback recorded (the runtime's
 * supervisor_restart event and fdn_supervisor_restarts_total). */
static void restart_counted_after_its_callback(void **state)
{
    fixture_t *f = *state;
    f->w.restart_hook = hook_read_restarts;
    f->w.hook_restarts = 99;
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EIO), 0);
    idle(f);
    assert_int_equal(f->w.restarts_cb, 1);
    assert_int_equal(f->w.hook_restarts, 0); /* not yet counted while the callback ran */
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "b", &st), 0);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    advance(f, BACKOFF_NS);
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "b", &st), 0);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.state, FDN_SERVICE_RUNNING);
}

static void one_for_all_restarts_everything_in_order(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-c -b -a");
    for (int i = 0; i < 3; i++)
        assert_int_equal(t_call(&f->svc[i]), FDN_EUNAVAILABLE);
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+a +b +c");
    assert_int_equal(f->w.restarts_cb, 3);
}

static void rest_for_one_restarts_the_rest(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-c -b");
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RUNNING);
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+b +c");
    /* failure of the last one restarts only itself */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "c", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-c");
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+c");
}

static void restart_types(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "perm", FDN_RESTART_PERMANENT, false, 0);
    fx_add(f, "trans", FDN_RESTART_TRANSIENT, false, 0);
    fx_add(f, "temp", FDN_RESTART_TEMPORARY, false, 0);
    fx_add(f, "trans2", FDN_RESTART_TRANSIENT, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+perm +trans +temp +trans2");

    /* permanent: restarted even after a normal exit */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "perm", 0), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-perm");
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+perm");

    /* transient: a normal exit is final */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "trans", 0), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-trans");
    assert_int_equal(state_of(f, "trans"), FDN_SERVICE_STOPPED);
    advance(f, SEC);
    ASSERT_LOG(&f->w, "");

    /* transient: a failure is restarted */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "trans2", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-trans2");
    assert_int_equal(state_of(f, "trans2"), FDN_SERVICE_RESTARTING);
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+trans2");

    /* temporary: never */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "temp", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-temp");
    assert_int_equal(state_of(f, "temp"), FDN_SERVICE_FAILED);
    advance(f, SEC);
    ASSERT_LOG(&f->w, "");
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "temp", -EIO), FDN_EUNAVAILABLE);
    assert_int_equal(f->w.escalations, 0);
}

static void temporary_sibling_not_restarted_by_one_for_all(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    fx_add(f, "t", FDN_RESTART_TEMPORARY, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+a +t");
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-t -a");
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+a");
    assert_int_equal(state_of(f, "t"), FDN_SERVICE_STOPPED);
}

static void intensity_exceeded_escalates_once(void **state)
{
    fixture_t *f = *state; /* 3 in 5 s */
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    fx_add(f, "b", FDN_RESTART_PERMANENT, false, 0);
    fx_add(f, "c", FDN_RESTART_PERMANENT, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+a +b +c");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EIO), 0);
        idle(f);
        advance(f, SEC); /* longest backoff is 40 ms */
        ASSERT_LOG(&f->w, "-b +b");
    }
    assert_false(fdn_supervisor_failed(f->w.sup));
    /* 4th restart within 5 s: escalate */
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "b", -EPIPE), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-c -b -a");
    assert_true(fdn_supervisor_failed(f->w.sup));
    assert_int_equal(f->w.escalations, 1);
    assert_string_equal(f->w.esc_service, "b");
    assert_int_equal(f->w.esc_code, -EPIPE);
    assert_int_equal(state_of(f, "b"), FDN_SERVICE_FAILED);
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_STOPPED);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t_call(&f->svc[i]), FDN_EUNAVAILABLE);
    advance(f, 10 * SEC);
    ASSERT_LOG(&f->w, "");
    assert_int_equal(f->w.escalations, 1);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), FDN_EUNAVAILABLE);
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    tsvc_t extra = {.w = &f->w, .name = "x"};
    spec.name = "x";
    spec.ops = &OPS;
    spec.state = &extra;
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_EESCALATED);
}

static void intensity_window_slides(void **state)
{
    fixture_t *f = *state; /* 2 in 5 s, immediate restarts */
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+a");
    for (int i = 0; i < 6; i++) {
        assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
        idle(f);
        ASSERT_LOG(&f->w, "-a +a");
        advance(f, 3 * SEC); /* never more than 2 restarts within 5 s */
    }
    assert_false(fdn_supervisor_failed(f->w.sup));
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    assert_true(fdn_supervisor_failed(f->w.sup));
    ASSERT_LOG(&f->w, "-a +a -a");
}

static void backoff_doubles_up_to_max(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    const int64_t expect[] = {10 * MS, 20 * MS, 40 * MS, 40 * MS};
    for (size_t i = 0; i < 4; i++) {
        int64_t t = fdn_clock_mono_ns(f->w.clock);
        assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
        idle(f);
        fdn_service_status_t st;
        assert_int_equal(fdn_supervisor_service_status(f->w.sup, "a", &st), 0);
        assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
        assert_int_equal(st.restart_due_ns - t, expect[i]);
        assert_int_equal(f->w.last_backoff, expect[i]);
        assert_int_equal(f->w.last_attempt, (int)i + 1);
        /* one ns early: still gated */
        advance(f, expect[i] - 1);
        assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
        assert_int_equal(t_call(&f->svc[0]), FDN_EUNAVAILABLE);
        advance(f, 1);
        assert_int_equal(state_of(f, "a"), FDN_SERVICE_RUNNING);
    }
    /* a quiet period resets the attempt count */
    advance(f, 6 * SEC);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    assert_int_equal(f->w.last_backoff, 10 * MS);
    assert_int_equal(f->w.last_attempt, 1);
}

static void worker_failure_restarts(void **state)
{
    fixture_t *f = *state;
    tsvc_t *w = fx_add(f, "w", FDN_RESTART_PERMANENT, true, 0);
    tsvc_t *t = fx_add(f, "t", FDN_RESTART_TRANSIENT, true, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+w +t");
    atomic_store(&w->worker_rc, -ECONNREFUSED);
    fdn_clock_kick(f->w.clock);
    wait_state(f, "w", FDN_SERVICE_RESTARTING);
    idle(f);
    ASSERT_LOG(&f->w, "-w");
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "w", &st), 0);
    assert_int_equal(st.last_error, -ECONNREFUSED);
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+w");
    assert_int_equal(t_call(w), 0);
    /* transient worker exiting normally stays stopped */
    atomic_store(&t->worker_rc, 1);
    fdn_clock_kick(f->w.clock);
    wait_state(f, "t", FDN_SERVICE_STOPPED);
    idle(f);
    ASSERT_LOG(&f->w, "-t");
}

/* A worker that fails at once, possibly before its start is complete, is still seen. */
static void worker_failing_at_once_is_seen(void **state)
{
    fixture_t *f = *state;
    tsvc_t *w = fx_add(f, "w", FDN_RESTART_PERMANENT, true, 0);
    atomic_store(&w->worker_rc, -EIO);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    wait_state(f, "w", FDN_SERVICE_RESTARTING);
    idle(f);
    ASSERT_LOG(&f->w, "+w -w");
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+w");
    /* and again after start, through an add */
    tsvc_t *v = &f->svc[f->nsvc];
    atomic_store(&v->worker_rc, -EPIPE);
    fx_add(f, "v", FDN_RESTART_PERMANENT, true, 0);
    wait_state(f, "v", FDN_SERVICE_RESTARTING);
    idle(f);
    ASSERT_LOG(&f->w, "+v -v");
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "v", &st), 0);
    assert_int_equal(st.last_error, -EPIPE);
}

static void health_failure_restarts(void **state)
{
    fixture_t *f = *state;
    tsvc_t *h = fx_add(f, "h", FDN_RESTART_PERMANENT, false, SEC);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+h");
    idle(f);
    advance(f, SEC); /* healthy poll */
    ASSERT_LOG(&f->w, "");
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "h", &st), 0);
    assert_true(st.healthy);
    atomic_store(&h->health_rc, 1); /* positive: FDN_EUNHEALTHY */
    advance(f, SEC - 1);
    ASSERT_LOG(&f->w, "");
    advance(f, 1);
    ASSERT_LOG(&f->w, "-h");
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "h", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    assert_int_equal(st.last_error, FDN_EUNHEALTHY);
    atomic_store(&h->health_rc, 0);
    advance(f, BACKOFF_NS);
    ASSERT_LOG(&f->w, "+h");
}

static void failed_start_rolls_back(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    tsvc_t *b = fx_add(f, "b", FDN_RESTART_PERMANENT, false, 0);
    fx_add(f, "c", FDN_RESTART_PERMANENT, false, 0);
    atomic_store(&b->start_rc, FDN_ECONFIG_INVALID);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_supervisor_start(f->w.sup, &err), FDN_ECONFIG_INVALID);
    assert_non_null(strstr(err.context, "service=b"));
    ASSERT_LOG(&f->w, "+a -a");
    assert_int_equal(state_of(f, "b"), FDN_SERVICE_FAILED);
    assert_int_equal(state_of(f, "c"), FDN_SERVICE_STOPPED);
    /* left as before the call: once b starts, a start succeeds */
    atomic_store(&b->start_rc, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+a +b +c");
    assert_int_equal(state_of(f, "b"), FDN_SERVICE_RUNNING);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), FDN_EBUSY);
}

/* A shutdown after a failed start: nothing left to stop, and no start after it. */
static void failed_start_then_shutdown(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    tsvc_t *b = fx_add(f, "b", FDN_RESTART_PERMANENT, false, 0);
    atomic_store(&b->start_rc, FDN_EIO);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), FDN_EIO);
    ASSERT_LOG(&f->w, "+a -a");
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
    ASSERT_LOG(&f->w, "");
    atomic_store(&b->start_rc, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), FDN_ESHUTDOWN);
    assert_int_equal(fdn_supervisor_wait_idle(f->w.sup, 10), FDN_ESHUTDOWN);
}

/* While a failed start is still stopping the services it started, shutdown must not report
 * the supervisor as stopped: a caller would then destroy it under the rollback's feet. */
static void failed_start_rollback_is_not_reported_finished_early(void **state)
{
    fixture_t *f = *state;
    fx_add_ops(f, "a", &OPS_PROBE);
    tsvc_t *b = fx_add(f, "b", FDN_RESTART_PERMANENT, false, 0);
    atomic_store(&b->start_rc, -EIO);
    f->w.probe_shutdown_rc = 12345;
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), -EIO);
    ASSERT_LOG(&f->w, "+a -a");
    assert_int_equal(f->w.probe_shutdown_rc, FDN_ETIMEDOUT);
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
}

static void failing_restart_counts_toward_intensity(void **state)
{
    fixture_t *f = *state;
    tsvc_t *a = fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    ASSERT_LOG(&f->w, "+a");
    atomic_store(&a->start_rc, -EIO);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-a");
    advance(f, 10 * MS); /* restart 1 fails -> backoff 20 ms */
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
    advance(f, 20 * MS); /* restart 2 fails -> 40 ms */
    assert_false(fdn_supervisor_failed(f->w.sup));
    advance(f, 40 * MS); /* restart 3 fails -> escalation */
    assert_true(fdn_supervisor_failed(f->w.sup));
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_FAILED);
    assert_int_equal(f->w.escalations, 1);
    ASSERT_LOG(&f->w, "");
}

static void add_after_start_and_errors(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "d", FDN_RESTART_PERMANENT, true, 0);
    ASSERT_LOG(&f->w, "+d");
    assert_int_equal(state_of(f, "d"), FDN_SERVICE_RUNNING);
    assert_int_equal(fdn_supervisor_count(f->w.sup), 4);
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_status_at(f->w.sup, 3, &st), 0);
    assert_string_equal(st.name, "d");
    assert_int_equal(fdn_supervisor_status_at(f->w.sup, 4, &st), FDN_ENOENT);

    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    tsvc_t extra = {.w = &f->w, .name = "x"};
    spec.name = "a";
    spec.ops = &OPS;
    spec.state = &extra;
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_EEXIST);
    spec.name = "x";
    atomic_store(&extra.start_rc, -EIO);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, &err), -EIO);
    assert_int_equal(err.code, -EIO);
    assert_int_equal(fdn_supervisor_count(f->w.sup), 4);
    assert_int_equal(atomic_load(&extra.destroyed), 0);
    spec.name = "";
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_EINVAL);
    spec.name = "y";
    spec.ops = NULL;
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_EINVAL);
    assert_int_equal(fdn_supervisor_add(f->w.sup, NULL, NULL), FDN_EINVAL);

    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "nope", -EIO), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", 5), FDN_EINVAL);
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "nope", &st), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), FDN_EBUSY);
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
    ASSERT_LOG(&f->w, "-d -c -b -a");
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_EINVAL);
    spec.ops = &OPS;
    assert_int_equal(fdn_supervisor_add(f->w.sup, &spec, NULL), FDN_ESHUTDOWN);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), FDN_ESHUTDOWN);
    fdn_supervisor_destroy(NULL);
    fdn_supervisor_opts_t bad = FDN_SUPERVISOR_OPTS_INIT;
    fdn_supervisor_t *s = NULL;
    bad.max_restarts = -1;
    assert_int_equal(fdn_supervisor_create(&s, &bad), FDN_EINVAL);
    assert_int_equal(fdn_supervisor_create(NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_supervisor_create(&s, NULL), 0); /* defaults, system clock */
    fdn_supervisor_destroy(s);
}

static void shutdown_from_escalation_callback(void **state)
{
    fixture_t *f = *state; /* first failure escalates */
    f->w.shutdown_in_escalation = true;
    fx_add(f, "a", FDN_RESTART_PERMANENT, true, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    pthread_mutex_lock(&f->w.mu);
    while (f->w.escalations == 0)
        pthread_cond_wait(&f->w.cv, &f->w.mu);
    pthread_mutex_unlock(&f->w.mu);
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
    assert_int_equal(f->w.escalations, 1);
    assert_int_equal(f->w.esc_shutdown_rc, 0);
    ASSERT_LOG(&f->w, "+a -a");
}

/* A worker loop calling shutdown must not wait for the supervisor to join it (it would wait
 * for itself): like a callback on the supervisor thread, it only requests the stop. */
static void shutdown_from_worker_loop(void **state)
{
    fixture_t *f = *state;
    fx_add_ops(f, "a", &OPS_RUN_SHUTDOWN);
    f->w.probe_shutdown_rc = 12345;
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    atomic_store(&f->w.go, true);
    fdn_clock_kick(f->w.clock);
    pthread_mutex_lock(&f->w.mu);
    while (f->w.probe_shutdown_rc == 12345)
        pthread_cond_wait(&f->w.cv, &f->w.mu);
    pthread_mutex_unlock(&f->w.mu);
    assert_int_equal(f->w.probe_shutdown_rc, 0);
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
    ASSERT_LOG(&f->w, "+a -a");
}

/* An add from a worker loop that is being stopped must not wait for the supervisor thread,
 * which is joining that very worker: it fails at once with FDN_ECANCELED. */
static void add_from_stopping_worker_does_not_deadlock(void **state)
{
    fixture_t *f = *state;
    fx_add_ops(f, "a", &OPS_RUN_ADD);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    f->w.probe_shutdown_rc = 12345;
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f); /* the supervisor stopped (joined) the worker */
    assert_int_equal(f->w.probe_shutdown_rc, FDN_ECANCELED);
    assert_int_equal(fdn_supervisor_count(f->w.sup), 1);
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
    ASSERT_LOG(&f->w, "+a -a");
}

/* Supervisor thread, handling a's failure before stopping it: let a's worker post an add and
 * return only once it is posted (the count includes it), so the add is pending while the
 * supervisor joins that worker. */
static void add_during_restart_hook(world_t *w)
{
    w->restart_hook = NULL;
    atomic_store(&w->go, true);
    fdn_clock_kick(w->clock);
    while (fdn_supervisor_count(w->sup) != 2)
        sched_yield();
}

/* The same when the add was already posted before the stop: the supervisor fails it instead
 * of joining a worker that waits for it. */
static void add_pending_from_worker_fails_when_it_is_stopped(void **state)
{
    fixture_t *f = *state;
    fx_add_ops(f, "a", &OPS_RUN_ADD);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    f->w.probe_shutdown_rc = 12345;
    f->w.restart_hook = add_during_restart_hook;
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    assert_int_equal(f->w.probe_shutdown_rc, FDN_ECANCELED);
    assert_int_equal(fdn_supervisor_count(f->w.sup), 1);
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
    ASSERT_LOG(&f->w, "+a -a");
}

/* A kick that lands after the worker checked its condition but before it calls
 * fdn_service_wait must still wake that wait (no lost wake-up). */
static void service_wait_sees_kick_before_the_call(void **state)
{
    fixture_t *f = *state;
    fx_add_ops(f, "a", &OPS_CHECK_WAIT);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    pthread_mutex_lock(&f->w.mu);
    while (f->w.step != 1)
        pthread_cond_wait(&f->w.cv, &f->w.mu);
    atomic_store(&f->w.go, true);
    fdn_clock_kick(f->w.clock);
    f->w.step = 2;
    pthread_cond_broadcast(&f->w.cv);
    while (f->w.step != 3) /* no wall-clock deadline; ctest's TIMEOUT catches a hang */
        pthread_cond_wait(&f->w.cv, &f->w.mu);
    int step = f->w.step;
    pthread_mutex_unlock(&f->w.mu);
    assert_int_equal(step, 3);
}

/* Huge delays mean "practically never", not a signed overflow (UB; in practice a negative
 * due time and an immediate restart or health poll). */
static void huge_backoff_and_health_interval_saturate(void **state)
{
    fixture_t *f = *state;
    tsvc_t *a = fx_add(f, "a", FDN_RESTART_PERMANENT, false, INT64_MAX);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    idle(f);
    advance(f, SEC); /* the health poll is not due */
    assert_int_equal(atomic_load(&a->starts), 1);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    advance(f, SEC);
    fdn_service_status_t st;
    assert_int_equal(fdn_supervisor_service_status(f->w.sup, "a", &st), 0);
    assert_int_equal(st.state, FDN_SERVICE_RESTARTING);
    assert_int_equal(st.restart_due_ns, INT64_MAX);
    assert_int_equal(atomic_load(&a->starts), 1);
    ASSERT_LOG(&f->w, "+a -a");
}

/* fdn_supervisor_start runs the start callbacks on the calling thread (the lifecycle thread
 * until the supervisor thread exists): shutdown from one of them only requests the stop,
 * as from any callback, instead of waiting for the start that called it. */
static void shutdown_from_initial_start_callback(void **state)
{
    fixture_t *f = *state;
    fx_add(f, "a", FDN_RESTART_PERMANENT, false, 0);
    fx_add_ops(f, "b", &OPS_START_SHUTDOWN);
    fx_add(f, "c", FDN_RESTART_PERMANENT, false, 0);
    f->w.probe_shutdown_rc = 12345;
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), FDN_ESHUTDOWN);
    assert_int_equal(f->w.probe_shutdown_rc, 0);
    ASSERT_LOG(&f->w, "+a +b -b -a");
    assert_int_equal(fdn_supervisor_shutdown(f->w.sup, WAIT_MS), 0);
}

/* A caller hammering a service while it is restarting always gets an immediate answer. */
typedef struct caller_arg {
    tsvc_t *s;
    atomic_bool stop;
    atomic_int unavailable;
    atomic_int ok;
} caller_arg_t;

static void *caller_main(void *p)
{
    caller_arg_t *a = p;
    while (!atomic_load(&a->stop)) {
        int rc = t_call(a->s);
        if (rc == 0)
            atomic_fetch_add(&a->ok, 1);
        else if (rc == FDN_EUNAVAILABLE)
            atomic_fetch_add(&a->unavailable, 1);
    }
    return NULL;
}

static void calls_during_restart_are_unavailable(void **state)
{
    fixture_t *f = *state;
    tsvc_t *a = fx_add(f, "a", FDN_RESTART_PERMANENT, true, 0);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    caller_arg_t ca = {.s = a};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, caller_main, &ca), 0);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    int before = atomic_load(&ca.unavailable);
    /* while the backoff is pending the caller keeps getting answers, all unavailable */
    while (atomic_load(&ca.unavailable) < before + 1000)
        ;
    assert_int_equal(state_of(f, "a"), FDN_SERVICE_RESTARTING);
    advance(f, 100 * MS);
    int ok_before = atomic_load(&ca.ok);
    while (atomic_load(&ca.ok) < ok_before + 1000)
        ;
    atomic_store(&ca.stop, true);
    pthread_join(th, NULL);
}

/* ---- review findings (fourth session) ---- */

/* A health check that holds the supervisor thread until the test lets it go (world step 2),
 * after telling it is there (step 1). */
static int t_health_hold(void *state)
{
    tsvc_t *s = state;
    pthread_mutex_lock(&s->w->mu);
    s->w->step = 1;
    pthread_cond_broadcast(&s->w->cv);
    while (s->w->step != 2)
        pthread_cond_wait(&s->w->cv, &s->w->mu);
    pthread_mutex_unlock(&s->w->mu);
    return 0;
}

static const fdn_service_ops_t OPS_HEALTH_HOLD = {t_start, t_stop, t_health_hold, NULL, t_destroy};

static tsvc_t g_added_svc;
static atomic_int g_worker_add_rc;

/* A worker that adds a service once the supervisor thread is held in a health check, so the
 * add stays pending, then waits to be stopped. */
static int t_run_add_while_held(void *state, fdn_service_ctl_t *ctl)
{
    tsvc_t *s = state;
    pthread_mutex_lock(&s->w->mu);
    while (s->w->step != 1)
        pthread_cond_wait(&s->w->cv, &s->w->mu);
    pthread_mutex_unlock(&s->w->mu);
    g_added_svc.w = s->w;
    snprintf(g_added_svc.name, sizeof(g_added_svc.name), "added");
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "added";
    spec.ops = &OPS;
    spec.state = &g_added_svc;
    atomic_store(&g_worker_add_rc, fdn_supervisor_add(s->w->sup, &spec, NULL));
    while (fdn_service_wait(ctl, INT64_MAX) != FDN_ECANCELED)
        ;
    return 0;
}

static const fdn_service_ops_t OPS_RUN_ADD_HELD = {t_start, t_stop, NULL, t_run_add_while_held,
                                                   t_destroy};

typedef struct shutdown_arg {
    fdn_supervisor_t *sup;
    atomic_int rc;
    atomic_bool done;
} shutdown_arg_t;

static void *shutdown_main(void *p)
{
    shutdown_arg_t *a = p;
    atomic_store(&a->rc, fdn_supervisor_shutdown(a->sup, -1));
    atomic_store(&a->done, true);
    return NULL;
}

/* Review finding: a shutdown that fails an add a worker is still waiting for must wake that
 * worker before joining it. Before, the adder slept on (its add was already failed, so the
 * join's own failing of adds found nothing to wake), and the join never returned: shutdown and
 * destroy hung. */
static void shutdown_wakes_a_worker_whose_add_it_fails(void **state)
{
    fixture_t *f = *state;
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.ops = &OPS_HEALTH_HOLD;
    spec.health_interval_ns = MS;
    fx_add_spec(f, "h", &spec);
    fx_add_ops(f, "a", &OPS_RUN_ADD_HELD);
    atomic_store(&g_worker_add_rc, 12345);
    assert_int_equal(fdn_supervisor_start(f->w.sup, NULL), 0);
    /* the health poll holds the supervisor thread; a's worker then posts its add */
    assert_int_equal(fdn_clock_advance(f->w.clock, MS), 0);
    while (fdn_supervisor_count(f->w.sup) != 3)
        sched_yield();
    shutdown_arg_t sa = {.sup = f->w.sup, .rc = 12345};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, shutdown_main, &sa), 0);
    /* the stop is asked for (a fault is refused from then on) while the thread is held */
    while (fdn_supervisor_inject_fault(f->w.sup, "h", -EIO) != FDN_ESHUTDOWN)
        sched_yield();
    pthread_mutex_lock(&f->w.mu);
    f->w.step = 2;
    pthread_cond_broadcast(&f->w.cv);
    pthread_mutex_unlock(&f->w.mu);
    assert_int_equal(pthread_join(th, NULL), 0); /* hung before the fix */
    assert_int_equal(atomic_load(&sa.rc), 0);
    assert_int_equal(atomic_load(&g_worker_add_rc), FDN_ESHUTDOWN);
    assert_int_equal(fdn_supervisor_count(f->w.sup), 2);
}

/* Review finding: a first restart at clock reading 0 counted as "never restarted", so the
 * next failure within the period started the attempts again (attempt 1 twice, the backoff not
 * doubled). */
static void restart_attempts_count_from_a_clock_at_zero(void **state)
{
    (void)state;
    world_t w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    assert_int_equal(fdn_clock_manual_create(&w.clock, 0, 0), 0);
    fdn_supervisor_opts_t o = FDN_SUPERVISOR_OPTS_INIT;
    o.clock = w.clock;
    o.max_restarts = 10;
    o.backoff_base_ns = 10 * MS;
    o.backoff_max_ns = SEC;
    o.on_restart = on_restart;
    o.user = &w;
    assert_int_equal(fdn_supervisor_create(&w.sup, &o), 0);
    tsvc_t a = {.w = &w, .name = "a"};
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "a";
    spec.ops = &OPS;
    spec.state = &a;
    assert_int_equal(fdn_supervisor_add(w.sup, &spec, NULL), 0);
    assert_int_equal(fdn_supervisor_start(w.sup, NULL), 0);
    const int64_t expect[] = {10 * MS, 20 * MS, 40 * MS};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_supervisor_inject_fault(w.sup, "a", -EIO), 0);
        assert_int_equal(fdn_supervisor_wait_idle(w.sup, WAIT_MS), 0);
        assert_int_equal(w.last_attempt, i + 1);
        assert_int_equal(w.last_backoff, expect[i]);
        assert_int_equal(fdn_clock_advance(w.clock, expect[i]), 0);
        assert_int_equal(fdn_supervisor_wait_idle(w.sup, WAIT_MS), 0);
    }
    fdn_supervisor_destroy(w.sup);
    assert_int_equal(atomic_load(&a.destroyed), 1);
    fdn_clock_destroy(w.clock);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

/* Review finding: under one_for_all, a restart of the set that fails part way marks the set
 * again; a sibling whose restart had not run yet was reported and counted a second time,
 * though it is started once. */
static void pending_sibling_restart_counted_once(void **state)
{
    fixture_t *f = *state;
    tsvc_t *b = &f->svc[1];
    atomic_store(&b->start_rc, -EIO);
    assert_int_equal(fdn_supervisor_inject_fault(f->w.sup, "a", -EIO), 0);
    idle(f);
    ASSERT_LOG(&f->w, "-c -b -a");
    advance(f, 10 * MS); /* a starts, b fails: the set is stopped and marked again */
    ASSERT_LOG(&f->w, "+a -a");
    atomic_store(&b->start_rc, 0);
    advance(f, 20 * MS);
    ASSERT_LOG(&f->w, "+a +b +c");
    const uint32_t want[] = {2, 2, 1}; /* a and b ran twice; c started once */
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        fdn_service_status_t st;
        assert_int_equal(fdn_supervisor_service_status(f->w.sup, names[i], &st), 0);
        assert_int_equal(st.state, FDN_SERVICE_RUNNING);
        assert_int_equal(st.restarts, want[i]);
    }
    assert_int_equal(f->w.restarts_cb, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        SUP_TEST(one_for_one_restarts_only_the_failed, P_ABC_ONE),
        SUP_TEST(restart_counted_after_its_callback, P_ABC_ONE),
        SUP_TEST(one_for_all_restarts_everything_in_order, P_ABC_ALL),
        SUP_TEST(rest_for_one_restarts_the_rest, P_ABC_REST),
        SUP_TEST(restart_types, P_DEFAULT),
        SUP_TEST(temporary_sibling_not_restarted_by_one_for_all, P_ALL),
        SUP_TEST(intensity_exceeded_escalates_once, P_FEW),
        SUP_TEST(intensity_window_slides, P_WINDOW),
        SUP_TEST(backoff_doubles_up_to_max, P_BACKOFF),
        SUP_TEST(worker_failure_restarts, P_DEFAULT),
        SUP_TEST(worker_failing_at_once_is_seen, P_DEFAULT),
        SUP_TEST(health_failure_restarts, P_DEFAULT),
        SUP_TEST(failed_start_rolls_back, P_FEW),
        SUP_TEST(failed_start_then_shutdown, P_FEW),
        SUP_TEST(failed_start_rollback_is_not_reported_finished_early, P_FEW),
        SUP_TEST(failing_restart_counts_toward_intensity, P_FEW),
        SUP_TEST(add_after_start_and_errors, P_ABC_ONE),
        SUP_TEST(shutdown_from_escalation_callback, P_ESCALATE),
        SUP_TEST(shutdown_from_worker_loop, P_FEW),
        SUP_TEST(shutdown_from_initial_start_callback, P_FEW),
        SUP_TEST(huge_backoff_and_health_interval_saturate, P_HUGE),
        SUP_TEST(service_wait_sees_kick_before_the_call, P_FEW),
        SUP_TEST(add_from_stopping_worker_does_not_deadlock, P_FEW),
        SUP_TEST(add_pending_from_worker_fails_when_it_is_stopped, P_FEW),
        SUP_TEST(calls_during_restart_are_unavailable, P_SLOW),
        SUP_TEST(shutdown_wakes_a_worker_whose_add_it_fails, P_FEW),
        cmocka_unit_test(restart_attempts_count_from_a_clock_at_zero),
        SUP_TEST(pending_sibling_restart_counted_once, P_ABC_ALL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
