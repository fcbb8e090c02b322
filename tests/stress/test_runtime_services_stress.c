/* Stress: the config drives a running runtime while it is in use. Two threads update
 * interface.max_results and infrastructure.rate_limiting.enabled continuously, two threads
 * store events, query them and run protected calls, and one thread restarts the rate limiter
 * and the connection manager through the supervisor. At the end every successful update has
 * exactly one `config_updated` event and one foundation.config_updates count, every query
 * respected a cap that was in force, and the final settings are the ones applied. Runs under
 * ASan and TSan. No sleeps: waiting for the config hook uses the runtime fixture's config
 * watcher (tests/support/rt_fixture.h). The work is bounded: each user thread makes USER_ROUNDS
 * rounds, paced by the updaters' progress so that they overlap the updates however the
 * threads are scheduled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/protect.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>
#include <fdn/testing.h>

#include "rt_fixture.h"
#include "threads.h"

#define MS      1000000LL
#define SEC     1000000000LL
#define UPDATES 300
#define LOW     5
#define HIGH    50
#define USER_ROUNDS 150

typedef struct shared {
    fdn_runtime_t *rt;
    test_waiter_t updates_done; /* updates attempted by both updaters */
    atomic_uint_fast64_t ok_updates;
    atomic_uint_fast64_t queries;
    atomic_uint_fast64_t calls;
    atomic_int bad; /* a failed invariant (reported by the main thread) */
    char why[160];
    test_threads_t threads; /* the five threads start together */
} shared_t;

static void set_bad(shared_t *s, const char *why)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&s->bad, &expected, 1))
        snprintf(s->why, sizeof(s->why), "%s", why);
}

static void *max_results_updater(void *arg)
{
    shared_t *s = arg;
    test_threads_gate(&s->threads);
    fdn_config_t *cfg = fdn_runtime_config(s->rt);
    for (int i = 0; i < UPDATES; i++) {
        int rc = fdn_config_update_int(cfg, "interface.max_results", (i & 1) ? HIGH : LOW, NULL);
        if (rc == 0)
            atomic_fetch_add(&s->ok_updates, 1);
        else
            set_bad(s, "max_results update failed");
        test_waiter_add(&s->updates_done, 1);
    }
    return NULL;
}

static void *switch_updater(void *arg)
{
    shared_t *s = arg;
    test_threads_gate(&s->threads);
    fdn_config_t *cfg = fdn_runtime_config(s->rt);
    for (int i = 0; i < UPDATES; i++) {
        int rc =
            fdn_config_update_bool(cfg, "infrastructure.rate_limiting.enabled", (i & 1) != 0, NULL);
        if (rc == 0)
            atomic_fetch_add(&s->ok_updates, 1);
        else
            set_bad(s, "rate_limiting.enabled update failed");
        test_waiter_add(&s->updates_done, 1);
    }
    return NULL;
}

static int fn_ok(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

static void *user_thread(void *arg)
{
    shared_t *s = arg;
    test_threads_gate(&s->threads);
    fdn_events_t *es = fdn_runtime_events(s->rt);
    fdn_protect_t *p = fdn_runtime_protect(s->rt);
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "stress_test";
    spec.data = "{}";
    spec.data_len = 2;
    fdn_event_t *ev = NULL;
    if (fdn_event_new(&ev, &spec, NULL) != 0) {
        set_bad(s, "event_new");
        return NULL;
    }
    for (int it = 0; it < USER_ROUNDS; it++) {
        /* round it starts once the updaters are it/USER_ROUNDS of the way (always reached) */
        test_waiter_wait(&s->updates_done, (int64_t)it * 2 * UPDATES / USER_ROUNDS);
        if (fdn_events_store(es, ev, NULL) != 0)
            set_bad(s, "store failed");
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = "stress_test";
        q.limit = 1000;
        fdn_event_list_t *l = NULL;
        if (fdn_events_query(es, &q, &l) != 0) {
            set_bad(s, "query failed");
        } else {
            size_t n = fdn_event_list_count(l);
            if (n > HIGH)
                set_bad(s, "a query returned more than any cap in force");
            fdn_event_list_free(l);
            atomic_fetch_add(&s->queries, 1);
        }
        int rc = fdn_execute_protected(p, "stress", NULL, fn_ok, NULL, NULL, NULL);
        if (rc != 0 && rc != FDN_ERATE_LIMITED && rc != FDN_EUNAVAILABLE)
            set_bad(s, "unexpected protected-call result");
        atomic_fetch_add(&s->calls, 1);
    }
    fdn_event_free(ev);
    return NULL;
}

static void *restarter(void *arg)
{
    shared_t *s = arg;
    test_threads_gate(&s->threads);
    static const char *const svcs[] = {"rate_limiter", "connection_manager"};
    for (int i = 0; i < 6; i++) {
        if (fdn_runtime_inject_fault(s->rt, svcs[i & 1], FDN_EIO) != 0)
            set_bad(s, "inject failed");
        if (fdn_testing_settle(s->rt) != 0)
            set_bad(s, "settle failed");
        if (fdn_testing_advance(s->rt, 2 * SEC) != 0)
            set_bad(s, "advance failed");
    }
    return NULL;
}

static void config_drives_busy_runtime(void **state)
{
    (void)state;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.max_restarts = 1000;
    shared_t s;
    memset(&s, 0, sizeof(s));
    test_waiter_init(&s.updates_done);
    test_rt_t *f = test_rt_new(&o, true);
    fdn_runtime_t *rt = f->rt;
    s.rt = rt;
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 50, 60000, 0};
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.limit = &rule;
    assert_int_equal(fdn_protect_configure(fdn_runtime_protect(rt), "stress", &pc, NULL), 0);
    /* the cap starts at HIGH so that no query can legitimately exceed it */
    fdn_config_t *cfg = fdn_runtime_config(rt);
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", HIGH, NULL), 0);
    test_rt_wait_config(f, fdn_config_revision(cfg));
    uint64_t base_rev = fdn_config_revision(cfg);

    test_threads_init(&s.threads, 5);
    test_threads_start(&s.threads, max_results_updater, &s);
    test_threads_start(&s.threads, switch_updater, &s);
    test_threads_start_n(&s.threads, 2, user_thread, &s, 0);
    test_threads_start(&s.threads, restarter, &s);
    test_threads_join(&s.threads);
    if (atomic_load(&s.bad))
        fail_msg("%s", s.why);
    assert_int_equal(atomic_load(&s.queries), 2 * USER_ROUNDS);
    assert_int_equal(atomic_load(&s.calls), 2 * USER_ROUNDS);
    assert_int_equal(atomic_load(&s.ok_updates), 2 * UPDATES);
    assert_int_equal(fdn_config_revision(cfg), base_rev + 2 * UPDATES);

    /* barrier: after it every update was recorded, counted and applied */
    assert_int_equal(fdn_config_update_bool(cfg, "dev.verbose_logging", true, NULL), 0);
    test_rt_wait_config(f, fdn_config_revision(cfg));

    fdn_events_type_stat_t ts[16];
    size_t nt = 0;
    assert_int_equal(fdn_events_type_stats(fdn_runtime_events(rt), ts, 16, &nt), 0);
    uint64_t recorded = 0;
    for (size_t i = 0; i < nt && i < 16; i++)
        if (strcmp(ts[i].type, "config_updated") == 0)
            recorded = ts[i].count;
    /* the initial HIGH update, 2 * UPDATES, the barrier */
    assert_int_equal(recorded, 2 * UPDATES + 2);

    /* final settings: max_results HIGH (last odd i), limiter layer on (last odd i) */
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "stress_test";
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(fdn_runtime_events(rt), &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), HIGH);
    fdn_event_list_free(l);
    /* the 50-per-minute inline rule is enforced again: at most 50 more calls pass */
    int passed = 0;
    for (int i = 0; i < 60; i++)
        if (fdn_execute_protected(fdn_runtime_protect(rt), "stress", NULL, fn_ok, NULL, NULL,
                                  NULL) == 0)
            passed++;
    assert_true(passed <= 50);
    assert_true(passed < 60);

    test_rt_free(f);
    test_waiter_destroy(&s.updates_done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_drives_busy_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
