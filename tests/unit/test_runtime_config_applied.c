/* DESIGN: an update of the runtime's config is in force in the services by the time it is
 * counted (foundation.config_updates) and recorded (config_updated): whoever waits for the
 * count, as the runtime fixture's test_rt_wait_config does, sees the new settings. A
 * telemetry handler on the count, called on the config hook thread at the moment the count is
 * emitted, queries the event store: the query must already be capped by the new
 * interface.max_results. (The hook once counted first and applied after; a waiter could then
 * run with the old cap, which made stress_test_runtime_services_stress see a query exceed
 * every cap it had set.) Deterministic: the handler's query and the waiter need no
 * scheduling assumption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include <sched.h>
#include <unistd.h>

#include "refusing_hook.h"
#include "rt_fixture.h"
#include "services/config_int.h"
#include "services/event_store_int.h"
#include "threads.h"

#define STORED 12
#define UPDATES_IN_BURST 20000u

typedef struct probe {
    fdn_runtime_t *rt;
    atomic_int_fast64_t seen; /* events the handler's query returned (-1: the query failed) */
    test_waiter_t counted;    /* highest revision the handler saw counted */
} probe_t;

static int on_counted(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                      const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    probe_t *p = user;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "cap_probe";
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    int64_t n = -1;
    if (fdn_events_query(fdn_runtime_events(p->rt), &q, &l) == 0) {
        n = (int64_t)fdn_event_list_count(l);
        fdn_event_list_free(l);
    }
    atomic_store(&p->seen, n);
    for (size_t i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "revision") == 0)
            test_waiter_raise(&p->counted, (int64_t)strtoull(meta[i].value, NULL, 10));
    return 0;
}

/* Sets interface.max_results to cap; returns what the handler's query saw when counted. */
/* STORED events of type cap_probe into rt's event store. */
static void store_probes(fdn_runtime_t *rt)
{
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "cap_probe";
    spec.data = "{}";
    spec.data_len = 2;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    for (int i = 0; i < STORED; i++)
        assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    fdn_event_free(ev);
}

static int64_t update_cap(probe_t *p, int64_t cap)
{
    fdn_config_t *cfg = fdn_runtime_config(p->rt);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", cap, NULL), 0);
    test_waiter_wait(&p->counted, (int64_t)fdn_config_revision(cfg));
    return atomic_load(&p->seen);
}

static void cap_in_force_when_counted(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    test_rt_t *f = test_rt_new(&o, false);
    probe_t p;
    memset(&p, 0, sizeof(p));
    p.rt = f->rt;
    atomic_init(&p.seen, -2);
    test_waiter_init(&p.counted);

    store_probes(f->rt);

    uint64_t h = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(f->rt), &h,
                                          "foundation.config_updates", FDN_TELEMETRY_MATCH_EXACT,
                                          on_counted, &p),
                     0);
    /* from the default (1000) down, up, and down again: each count sees its own cap */
    assert_int_equal(update_cap(&p, 3), 3);
    assert_int_equal(update_cap(&p, 7), 7);
    assert_int_equal(update_cap(&p, 5), 5);
    assert_int_equal(update_cap(&p, 1000), STORED);

    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(f->rt), h), 0);
    test_rt_free(f);
    test_waiter_destroy(&p.counted);
}

/* A refused update of interface.max_results changed nothing: the tree still holds 1000 at
 * revision rev; n refusals by a service were counted (*refused) and recorded (events
 * config_update_refused, the first's data into data). */
static void expect_unchanged(fdn_runtime_t *rt, uint64_t rev, atomic_int *refused, int n,
                             char *data, size_t cap)
{
    fdn_config_t *cfg = fdn_runtime_config(rt);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(fdn_config_revision(cfg), rev);
    assert_int_equal(atomic_load(refused), n);
    assert_int_equal(test_refusal_events(rt, false, data, cap), (size_t)n);
}

/* A service refusing the value of an update refuses the update: the updater gets the
 * service's error, the tree keeps its value and revision, so the tree never holds a setting
 * the services do not run with; the refusal is recorded (event config_update_refused) and
 * counted (foundation.config.service_refused). Before, the update returned 0, the tree showed
 * the new value and the service silently kept the old one. No value the schema accepts is
 * refused by a service any more (its bounds are the services' own: interface.max_results
 * above 4294967295, the event store's cap, was the last), so the refused value is the
 * test's: its apply hook wraps the runtime's and hands it interface.max_results 4242 as
 * 4294967296, which the store refuses (tests/support/refusing_hook.h). The refusal and what
 * follows it (the config's and the runtime's recording) are the real ones. */
static void service_refusal_refuses_the_update(void **state)
{
    (void)state;
    test_rt_t *f = test_rt_new(NULL, false);
    fdn_config_t *cfg = fdn_runtime_config(f->rt);
    static test_refusing_hook_t r;
    test_refusing_hook_install(&r, cfg, 4242);
    atomic_int refused;
    uint64_t h = test_refusals_counted(f->rt, &refused);
    uint64_t rev = fdn_config_revision(cfg);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4242, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "event_store"));
    assert_non_null(strstr(err.message, "interface.max_results"));
    assert_non_null(strstr(err.context, "service=event_store"));
    char data[512];
    expect_unchanged(f->rt, rev, &refused, 1, data, sizeof(data));
    assert_non_null(strstr(data, "\"path\":\"interface.max_results\""));
    assert_non_null(strstr(data, "\"value\":4242"));
    char want[64];
    snprintf(want, sizeof(want), "\"error\":\"%s\"", fdn_err_name(FDN_EINVAL));
    assert_non_null(strstr(data, want));

    /* a value the service takes goes through, in force when the update returns */
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4243, NULL), 0);
    assert_int_equal(fdn_config_revision(cfg), rev + 1);
    assert_int_equal(atomic_load(&refused), 1);

    assert_int_equal(atomic_load(&r.applied_refusals), 1);
    assert_int_equal(atomic_load(&r.checks), 0); /* (asked only of a config on etcd) */
    test_refusing_hook_remove(&r);
    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(f->rt), h), 0);
    test_rt_free(f);
}

/* Events of type cap_probe the store returns for a query asking 1000 (STORED are stored):
 * min(the store's interface.max_results, STORED). */
static int64_t probe_count(fdn_runtime_t *rt)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "cap_probe";
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(fdn_runtime_events(rt), &q, &l), 0);
    int64_t n = (int64_t)fdn_event_list_count(l);
    fdn_event_list_free(l);
    return n;
}

/* A reset's settings go through the config's apply hook (path NULL) before it is published,
 * so they are in force when it returns, as an update's are; but a reset is not refused: a
 * service that refuses its setting keeps the one it had, the others take theirs, the tree
 * has the reset's values, and that is recorded (event config_apply_failed {path, revision,
 * code, error, message}) and counted (foundation.config.service_refused {path, error})
 * before the reset returns, in the resetter's thread. Before, the reset was pushed later by
 * the hook thread alone, outside the hook tests wrap, and no value reached that refusal.
 * The refused value is the test's (refusing_hook.h): the default interface.max_results,
 * 1000, handed to the event store as 4294967296. */
static void reset_refused_by_a_service_is_recorded(void **state)
{
    (void)state;
    test_rt_t *f = test_rt_new(NULL, true);
    fdn_config_t *cfg = fdn_runtime_config(f->rt);
    store_probes(f->rt);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 5, NULL), 0);
    assert_int_equal(
        fdn_config_update_bool(cfg, "infrastructure.rate_limiting.enabled", false, NULL), 0);
    assert_int_equal(probe_count(f->rt), 5);
    assert_false(fdn_limiter_enabled(fdn_runtime_limiter(f->rt)));
    /* the hook thread's own passes for these updates done (each pushes the live revision's
     * setting of its path, which would be the reset's, not through the test's hook) */
    test_rt_wait_config(f, fdn_config_revision(cfg));

    static test_refusing_hook_t r;
    test_refusing_hook_install(&r, cfg, 1000);
    atomic_int refused;
    uint64_t h = test_refusals_counted(f->rt, &refused);
    uint64_t rev = fdn_config_revision(cfg);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_reset(cfg, &err), 0);
    assert_int_equal(err.code, 0);
    /* the tree has the reset's values; the limiter took its, the store kept its cap */
    assert_int_equal(fdn_config_revision(cfg), rev + 1);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 1000);
    assert_true(fdn_limiter_enabled(fdn_runtime_limiter(f->rt)));
    assert_int_equal(probe_count(f->rt), 5);
    /* said when the reset returns: recorded and counted once, not as a refused update */
    assert_int_equal(atomic_load(&r.applied_refusals), 1);
    assert_int_equal(atomic_load(&refused), 1);
    char data[512];
    assert_int_equal(test_events_of(f->rt, "config_apply_failed", false, data, sizeof(data)), 1);
    assert_non_null(strstr(data, "\"path\":\"interface.max_results\""));
    char want[96];
    snprintf(want, sizeof(want), "\"revision\":%" PRIu64, rev + 1);
    assert_non_null(strstr(data, want));
    snprintf(want, sizeof(want), "\"error\":\"%s\"", fdn_err_name(FDN_EINVAL));
    assert_non_null(strstr(data, want));
    snprintf(want, sizeof(want), "\"code\":%d", fdn_err_info(FDN_EINVAL)->ref_code);
    assert_non_null(strstr(data, want));
    assert_non_null(strstr(data, "event_store refused the setting interface.max_results"));
    assert_null(strstr(data, "\"value\""));
    assert_int_equal(test_refusal_events(f->rt, false, data, sizeof(data)), 0);

    /* the hook thread, given the reset's notification, does not push (nor report) again */
    assert_int_equal(fdn_config_update_int(cfg, "storage.hot.max_events", 5000, NULL), 0);
    test_rt_wait_config(f, fdn_config_revision(cfg));
    assert_int_equal(atomic_load(&refused), 1);
    assert_int_equal(test_events_of(f->rt, "config_apply_failed", false, data, sizeof(data)), 1);
    assert_int_equal(probe_count(f->rt), 5);

    test_refusing_hook_remove(&r);
    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(f->rt), h), 0);
    test_rt_free(f);
}

/* interface.max_results above 4294967295 (the event store's cap is 32 bits) is refused by
 * the schema itself, with its own validation error (1101, the reference's "int > 0" rule's
 * code, and the bound), before any service sees it: not a service's refusal (no
 * config_update_refused event, no foundation.config.service_refused count), the tree and
 * the store unchanged. Before, the schema took it and the event store refused it
 * (FDN_EINVAL, service=event_store). The cap itself is taken and in force. */
static void schema_bounds_max_results_by_the_store_cap(void **state)
{
    (void)state;
    test_rt_t *f = test_rt_new(NULL, false);
    fdn_config_t *cfg = fdn_runtime_config(f->rt);
    atomic_int refused;
    uint64_t h = test_refusals_counted(f->rt, &refused);
    uint64_t rev = fdn_config_revision(cfg);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4294967296LL, &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(err.ref_code, 1101);
    assert_string_equal(err.message, "Invalid interface configuration: must be at most 4294967295");
    assert_non_null(strstr(err.context, "path=interface.max_results"));
    assert_null(strstr(err.context, "service="));
    fdn_error_t jerr = FDN_ERROR_INIT; /* the same through the JSON text an HTTP PUT gives */
    assert_int_equal(fdn_config_update_json(cfg, "interface.max_results", "4294967296", &jerr),
                     FDN_ECONFIG_STRUCTURE);
    assert_string_equal(jerr.message, err.message);
    char data[512];
    expect_unchanged(f->rt, rev, &refused, 0, data, sizeof(data));

    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4294967295LL, NULL), 0);
    assert_int_equal(fdn_config_revision(cfg), rev + 1);
    assert_int_equal(atomic_load(&refused), 0);

    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(f->rt), h), 0);
    test_rt_free(f);
}

/* A setting of the config file past the event store's cap fails the runtime's create with the
 * schema's error naming the path (before: the store's refusal, service=event_store; before
 * that, created, and the event store ran with its default cap while the tree showed the
 * file's). */
static void file_setting_past_the_store_cap_fails_create(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn-rtcfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/fdn.json", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"interface\": {\"max_results\": 4294967296}}", fp);
    fclose(fp);
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.config_path = path;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_runtime_create(&rt, &o, &err), FDN_ECONFIG_STRUCTURE);
    assert_null(rt);
    assert_non_null(strstr(err.message, "must be at most 4294967295"));
    assert_non_null(strstr(err.context, "path=interface.max_results"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- the hook stopping for good in the middle of a burst ---- */

#define BURST 300 /* more than the hook's batch (HOOK_BATCH_MAX, 256) */

typedef struct holder {
    fdn_config_t *cfg;
    test_waiter_t calls; /* counts foundation.config_updates saw */
    test_waiter_t gate;  /* opens the first count */
} holder_t;

static bool hook_told_to_stop(fdn_config_t *cfg)
{
    fdn__mutex_lock(&cfg->smu);
    bool stop = cfg->thr_stop;
    fdn__mutex_unlock(&cfg->smu);
    return stop;
}

/* On the config hook thread. First count: held until the test has queued its burst. Second
 * (the first of the batch the hook stores when its batch is full): held until the hook is
 * told to stop, so that the hook stops with one change of the burst taken and not stored,
 * and the rest of the burst still queued. */
static int hold_counts(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                       const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    holder_t *h = user;
    int64_t call = test_waiter_add(&h->calls, 1);
    if (call == 1)
        test_waiter_wait(&h->gate, 1);
    else if (call == 2)
        while (!hook_told_to_stop(h->cfg))
            sched_yield(); /* the supervisor thread sets it, then joins this thread */
    return 0;
}

/* On the supervisor thread: the shutdown a supervisor callback requests does not drain the
 * hook (it cannot wait for it there). */
static void shut_down_on_restart(fdn_runtime_t *rt, const char *service, int attempt, int reason,
                                 void *user)
{
    (void)service;
    (void)attempt;
    (void)reason;
    (void)user;
    assert_int_equal(fdn_runtime_shutdown(rt, 0), 0);
}

/* The changes the config hook had not recorded when the runtime's services stopped for good
 * (here: a shutdown requested from a supervisor callback, which does not drain the hook) are
 * counted in the config's status (dropped), not lost silently: the change of the burst the hook
 * had taken but not stored (1) and those still queued for it (BURST - 257). Before, the open
 * burst was freed uncounted at destroy and the queued notifications with the config. */
static void hook_stopped_for_good_counts_what_it_left(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.on_restart = shut_down_on_restart;
    test_rt_t *f = test_rt_new(&o, false);
    holder_t h = {fdn_runtime_config(f->rt), TEST_WAITER_INIT, TEST_WAITER_INIT};
    uint64_t id = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(f->rt), &id,
                                          "foundation.config_updates", FDN_TELEMETRY_MATCH_EXACT,
                                          hold_counts, &h),
                     0);
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(h.cfg, &st), 0);
    uint64_t dropped0 = st.dropped;

    /* one update: its count holds the hook */
    assert_int_equal(fdn_config_update_bool(h.cfg, "dev.debug_mode", true, NULL), 0);
    test_waiter_wait(&h.calls, 1);
    /* a burst queued behind it (the hook's queue holds 4096) */
    for (int i = 0; i < BURST; i++)
        assert_int_equal(fdn_config_update_bool(h.cfg, "dev.debug_mode", i % 2 == 0, NULL), 0);
    test_waiter_add(&h.gate, 1);
    /* the hook took 256 changes of the burst, stored them and counts the first */
    test_waiter_wait(&h.calls, 2);
    /* a service fails; the restart callback requests the shutdown; the services stop for good
     * (the config, last, tells the hook to stop and joins it) */
    assert_int_equal(fdn_runtime_inject_fault(f->rt, "rate_limiter", FDN_EIO), 0);
    assert_int_equal(fdn_runtime_shutdown(f->rt, -1), 0);

    assert_int_equal(fdn_config_status(h.cfg, &st), 0);
    assert_int_equal(st.dropped - dropped0, 1 + (BURST - 257));
    /* once: a second shutdown counts nothing more */
    assert_int_equal(fdn_runtime_shutdown(f->rt, -1), 0);
    assert_int_equal(fdn_config_status(h.cfg, &st), 0);
    assert_int_equal(st.dropped - dropped0, 1 + (BURST - 257));

    test_rt_free(f);
    test_waiter_destroy(&h.calls);
    test_waiter_destroy(&h.gate);
}

/* An update's setting is in force in the service when the update returns, also while the
 * config hook thread is busy with the previous updates: here the event store's cap after
 * each update of interface.max_results, read right after it returned, in a burst. The
 * hook thread used to push each change's settings again from the snapshot live when it got
 * to the change, so an older revision's cap could land after a newer update had pushed its
 * own and returned (the service then ran with a value the tree no longer had, until the hook
 * got to the newer change). */
static void update_in_force_when_it_returns(void **state)
{
    (void)state;
    test_rt_t *f = test_rt_new(NULL, false);
    fdn_config_t *cfg = fdn_runtime_config(f->rt);
    fdn_events_t *es = fdn_runtime_events(f->rt);
    unsigned stale = 0, first = 0;
    uint32_t first_seen = 0;
    for (unsigned i = 0; i < UPDATES_IN_BURST; i++) {
        uint32_t v = 2 + (i % 1000);
        assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", v, NULL), 0);
        uint32_t seen = atomic_load_explicit(&es->max_results, memory_order_relaxed);
        if (seen != v && stale++ == 0) {
            first = i;
            first_seen = seen;
        }
    }
    if (stale > 0)
        fail_msg("%u of %u updates not in force when they returned (first: update %u set %u, "
                 "the store had %u)",
                 stale, (unsigned)UPDATES_IN_BURST, first, 2 + (first % 1000), first_seen);
    test_rt_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_in_force_when_counted),
        cmocka_unit_test(service_refusal_refuses_the_update),
        cmocka_unit_test(reset_refused_by_a_service_is_recorded),
        cmocka_unit_test(schema_bounds_max_results_by_the_store_cap),
        cmocka_unit_test(file_setting_past_the_store_cap_fails_create),
        cmocka_unit_test(hook_stopped_for_good_counts_what_it_left),
        cmocka_unit_test(update_in_force_when_it_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
