/* Integration test: the runtime's labelled families in the exposition of its telemetry
 * (src/runtime/runtime_metrics.c): protected calls by key and outcome, pool checkout waits
 * and gauges by pool, breaker state per breaker flipping to open with its transition
 * counted; the events those families replace kept out of the exposition (still in the
 * snapshot); the result accepted by `promtool check metrics`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/error.h>
#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/pool.h>
#include <fdn/protect.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "exposition.h"
#include "rt_fixture.h"

static int conn_create(void **conn, void *user)
{
    (void)user;
    static int token;
    *conn = &token;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)conn;
    (void)user;
}

static int ok_fn(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

static int failing_fn(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return FDN_EIO;
}

static void expose(fdn_runtime_t *rt, test_text_t *m)
{
    m->len = 0;
    m->buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_prometheus(fdn_runtime_telemetry(rt), test_text_sink, m),
                     0);
}

static void want(const test_text_t *m, const char *s)
{
    if (strstr(m->buf, s) == NULL) {
        fputs(m->buf, stderr); /* fail_msg cuts long messages */
        fail_msg("missing %s in the exposition above", s);
    }
}

static void unwanted(const test_text_t *m, const char *s)
{
    if (strstr(m->buf, s) != NULL) {
        fputs(m->buf, stderr);
        fail_msg("unexpected %s in the exposition above", s);
    }
}

static void runtime_families(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_error_t err = FDN_ERROR_INIT;
    static test_text_t m;

    /* a pool of 2 and a breaker opening on its first failure, behind one protection key */
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 2;
    po.max_overflow = 0;
    po.create = conn_create;
    po.destroy = conn_destroy;
    po.telemetry = fdn_runtime_telemetry(rt);
    assert_int_equal(fdn_pools_start(fdn_runtime_pools(rt), "p1", &po, NULL, &err), 0);
    fdn_breaker_opts_t bo;
    assert_int_equal(fdn_breakers_get_defaults(fdn_runtime_breakers(rt), &bo), 0);
    bo.failure_threshold = 1;
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.breaker = "db";
    pc.breaker_opts = &bo;
    pc.pool = "p1";
    assert_int_equal(fdn_protect_configure(fdn_runtime_protect(rt), "db.read", &pc, &err), 0);

    expose(rt, &m);
    want(&m, "fdn_circuit_breaker_state{breaker=\"db\",state=\"closed\"} 1\n");
    want(&m, "fdn_circuit_breaker_state{breaker=\"db\",state=\"open\"} 0\n");
    want(&m, "fdn_pool_size{pool=\"p1\"} 2\n");

    fdn_protect_t *p = fdn_runtime_protect(rt);
    assert_int_equal(fdn_execute_protected(p, "db.read", NULL, ok_fn, NULL, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(p, "db.read", NULL, ok_fn, NULL, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(p, "db.read", NULL, failing_fn, NULL, NULL, NULL),
                     FDN_EIO);
    assert_int_equal(fdn_execute_protected(p, "db.read", NULL, ok_fn, NULL, NULL, NULL),
                     FDN_ECIRCUIT_OPEN);

    expose(rt, &m);
    /* protected calls by key and outcome, as histograms */
    want(&m, "# TYPE fdn_protected_call_duration_seconds histogram\n");
    want(&m, "fdn_protected_call_duration_seconds_count{key=\"db.read\",outcome=\"ok\"} 2\n");
    want(&m, "fdn_protected_call_duration_seconds_count{key=\"db.read\",outcome=\"FDN_EIO\"} 1\n");
    want(&m, "fdn_protected_call_duration_seconds_bucket{key=\"db.read\",outcome=\"ok\","
             "le=\"+Inf\"} 2\n");
    /* pool checkout waits by pool: three calls got a worker */
    want(&m, "fdn_pool_checkout_wait_seconds_count{pool=\"p1\"} 3\n");
    want(&m, "fdn_pool_checkouts_total{pool=\"p1\"} 3\n");
    want(&m, "fdn_pool_in_use{pool=\"p1\"} 0\n");
    want(&m, "fdn_pool_checkout_timeouts_total{pool=\"p1\"} 0\n");
    /* the breaker's state series flipped, its transition and rejection counted */
    want(&m, "fdn_circuit_breaker_state{breaker=\"db\",state=\"closed\"} 0\n");
    want(&m, "fdn_circuit_breaker_state{breaker=\"db\",state=\"open\"} 1\n");
    want(&m, "fdn_circuit_breaker_state_change_total{breaker=\"db\",from=\"closed\",to=\"open\"} "
             "1\n");
    want(&m, "fdn_circuit_breaker_opened_total{breaker=\"db\"} 1\n");
    want(&m, "fdn_circuit_breaker_calls_total{breaker=\"db\",outcome=\"rejected\"} 1\n");
    /* the calls the breaker admitted, timed by outcome (the rejected one is not) */
    want(&m, "fdn_circuit_breaker_call_duration_seconds_count{breaker=\"db\",outcome=\"success\"} "
             "2\n");
    want(&m, "fdn_circuit_breaker_call_duration_seconds_count{breaker=\"db\",outcome=\"failure\"} "
             "1\n");
    /* one family per measured thing: the events they replace are not exported */
    unwanted(&m, "fdn_infrastructure_execute_stop");
    unwanted(&m, "fdn_infrastructure_execute_exception");
    unwanted(&m, "fdn_connection_pool_checkout_checkout_time_seconds");
    unwanted(&m, "fdn_circuit_breaker_call_rejected_total"); /* calls_total{outcome} has it */
    unwanted(&m, "\nvm_");
    unwanted(&m, "\nfoundation_");

    /* ... but they stay in the snapshot (JSON API) */
    fdn_telemetry_snapshot_t *sn = NULL;
    assert_int_equal(fdn_telemetry_snapshot(fdn_runtime_telemetry(rt), &sn), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    bool seen = false;
    while ((x = fdn_telemetry_snapshot_next(sn, &it)) != NULL)
        if (x->is_event && strcmp(x->name, "foundation.infrastructure.execute_stop") == 0)
            seen = true;
    fdn_telemetry_snapshot_free(sn);
    assert_true(seen);

    /* event store appends and queries are timed */
    fdn_event_spec_t es = FDN_EVENT_SPEC_INIT;
    es.type = "order.created";
    es.data = "{}";
    es.data_len = 2;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &es, &err), 0);
    assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    fdn_event_free(ev);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(fdn_runtime_events(rt), &q, &l), 0);
    fdn_event_list_free(l);
    expose(rt, &m);
    want(&m, "# TYPE fdn_event_store_append_duration_seconds histogram\n");
    /* 3: the runtime recorded the breaker's transition as an event too */
    want(&m, "fdn_event_store_append_duration_seconds_count 3\n");
    want(&m, "fdn_event_store_query_duration_seconds_count 1\n");
    want(&m, "fdn_events_held_by_type{type=\"order.created\"} 2\n");
    want(&m, "fdn_events_held_by_type{type=\"circuit_breaker_state_change\"} 1\n");
    want(&m, "fdn_events_appended_total 3\n");
    unwanted(&m, "fdn_event_store_events_stored_total"); /* fdn_events_appended_total has it */

    (void)test_promtool_check(m.buf, m.len); /* (passed over without promtool) */
    assert_int_equal(fdn_pools_stop(fdn_runtime_pools(rt), "p1"), 0);
}

/* Config update attempts: every call timed by outcome; refused ones counted by path (the
 * schema's, or "other") and the error's name; escalations would count by service. */
static void config_update_families(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    static test_text_t m;

    assert_int_equal(fdn_config_update_double(cfg, "ai.planning.sampling_rate", 0.5, NULL), 0);
    assert_int_equal(fdn_config_update_json(cfg, "ai.planning.sampling_rate", "2.0", NULL),
                     FDN_ECONFIG_RANGE);
    assert_int_equal(fdn_config_update_int(cfg, "no.such.path", 1, NULL), FDN_ECONFIG_FORBIDDEN);
    assert_int_equal(fdn_config_update_int(cfg, "no.such.path", 2, NULL), FDN_ECONFIG_FORBIDDEN);

    expose(rt, &m);
    want(&m, "# TYPE fdn_config_update_duration_seconds histogram\n");
    want(&m, "fdn_config_update_duration_seconds_count{outcome=\"applied\"} 1\n");
    want(&m, "fdn_config_update_duration_seconds_count{outcome=\"FDN_ECONFIG_RANGE\"} 1\n");
    want(&m, "fdn_config_update_duration_seconds_count{outcome=\"FDN_ECONFIG_FORBIDDEN\"} 2\n");
    want(&m, "fdn_config_updates_total{path=\"ai.planning.sampling_rate\","
             "outcome=\"FDN_ECONFIG_RANGE\"} 1\n");
    want(&m, "fdn_config_updates_total{path=\"other\",outcome=\"FDN_ECONFIG_FORBIDDEN\"} 2\n");
    unwanted(&m, "no.such.path");
    unwanted(&m, "fdn_config_update_duration_ns");
}

/* A protected call made inside an error context leaves its correlation id as the exemplar of
 * its latency bucket (OpenMetrics); one made outside any context leaves none. */
static void protected_call_exemplar(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_error_t err = FDN_ERROR_INIT;
    static test_text_t m;
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.breaker = "ex";
    fdn_protect_t *p = fdn_runtime_protect(rt);
    assert_int_equal(fdn_protect_configure(p, "with.cid", &pc, &err), 0);
    assert_int_equal(fdn_protect_configure(p, "without.cid", &pc, &err), 0);
    assert_int_equal(fdn_errctx_push_root("test", "protected_call_exemplar", "rt-cid-7"), 0);
    assert_int_equal(fdn_execute_protected(p, "with.cid", NULL, ok_fn, NULL, NULL, NULL), 0);
    fdn_errctx_pop();
    assert_int_equal(fdn_execute_protected(p, "without.cid", NULL, ok_fn, NULL, NULL, NULL), 0);
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_openmetrics(fdn_runtime_telemetry(rt), test_text_sink, &m),
                     0);
    const char *line = strstr(m.buf, "fdn_protected_call_duration_seconds_bucket{key=\"with.cid\"");
    assert_non_null(line);
    line = strstr(line, " # {correlation_id=\"rt-cid-7\"} ");
    if (line == NULL || strstr(m.buf, "key=\"with.cid\",outcome=\"ok\",le=\"+Inf\"} 1") == NULL) {
        fputs(m.buf, stderr);
        fail_msg("no exemplar with the error context's correlation id");
    }
    /* the exemplar sits on a with.cid line; no without.cid line carries one */
    const char *eol = line;
    while (eol > m.buf && eol[-1] != '\n')
        eol--;
    assert_int_equal(
        strncmp(eol, "fdn_protected_call_duration_seconds_bucket{key=\"with.cid\"", 57), 0);
    for (const char *q = strstr(m.buf, "key=\"without.cid\""); q != NULL;
         q = strstr(q + 1, "key=\"without.cid\"")) {
        const char *nl = strchr(q, '\n');
        const char *hash = strstr(q, " # {");
        assert_true(hash == NULL || (nl != NULL && hash > nl));
    }
    /* the 0.0.4 text carries no exemplar */
    expose(rt, &m);
    unwanted(&m, "rt-cid-7");
}

/* fdn_events_held_by_type follows the store: a type whose last event is pruned is released
 * (no longer listed by fdn_events_type_stats), and its series falls to 0 rather than keeping
 * the count it had. */
static void held_by_type_falls_to_zero(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_error_t err = FDN_ERROR_INIT;
    static test_text_t m;
    fdn_event_spec_t es = FDN_EVENT_SPEC_INIT;
    es.type = "gone.soon";
    es.data = "{}";
    es.data_len = 2;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &es, &err), 0);
    assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    assert_int_equal(fdn_events_store(fdn_runtime_events(rt), ev, NULL), 0);
    fdn_event_free(ev);
    expose(rt, &m);
    want(&m, "fdn_events_held_by_type{type=\"gone.soon\"} 2\n");
    uint64_t pruned = 0;
    assert_int_equal(fdn_events_prune_before(fdn_runtime_events(rt), INT64_MAX, &pruned), 0);
    assert_true(pruned >= 2);
    expose(rt, &m);
    want(&m, "fdn_events_held_by_type{type=\"gone.soon\"} 0\n");
    want(&m, "fdn_events_held 0\n");
}

static int failing_call(void *arg)
{
    (void)arg;
    return FDN_EIO;
}

/* A breaker removed (fdn_breaker_remove) and a pool stopped are no longer listed: their
 * state and pool gauges fall to 0 rather than keep their last values (an open breaker's
 * state{state="open"} 1 would keep the documented alert firing forever); their counters
 * keep their counts. */
static void removed_breaker_and_stopped_pool_fall_to_zero(void **state)
{
    test_rt_t *f = *state;
    fdn_runtime_t *rt = f->rt;
    fdn_error_t err = FDN_ERROR_INIT;
    static test_text_t m;
    fdn_breaker_opts_t bo;
    assert_int_equal(fdn_breakers_get_defaults(fdn_runtime_breakers(rt), &bo), 0);
    bo.failure_threshold = 1;
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(fdn_runtime_breakers(rt), "gone", &bo, &b), 0);
    int fn_rc = 0;
    (void)fdn_breaker_call(b, failing_call, NULL, &fn_rc); /* opens it */
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 2;
    po.max_overflow = 1;
    po.create = conn_create;
    po.destroy = conn_destroy;
    assert_int_equal(fdn_pools_start(fdn_runtime_pools(rt), "p2", &po, NULL, &err), 0);
    expose(rt, &m);
    want(&m, "fdn_circuit_breaker_state{breaker=\"gone\",state=\"open\"} 1\n");
    want(&m, "fdn_pool_size{pool=\"p2\"} 2\n");
    want(&m, "fdn_pool_max_overflow{pool=\"p2\"} 1\n");
    assert_int_equal(fdn_breaker_remove(fdn_runtime_breakers(rt), "gone"), 0);
    assert_int_equal(fdn_pools_stop(fdn_runtime_pools(rt), "p2"), 0);
    expose(rt, &m);
    want(&m, "fdn_circuit_breaker_state{breaker=\"gone\",state=\"open\"} 0\n");
    want(&m, "fdn_circuit_breaker_state{breaker=\"gone\",state=\"closed\"} 0\n");
    want(&m, "fdn_pool_size{pool=\"p2\"} 0\n");
    want(&m, "fdn_pool_max_overflow{pool=\"p2\"} 0\n");
    want(&m, "fdn_pool_idle{pool=\"p2\"} 0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(runtime_families, test_rt_setup, test_rt_teardown),
        cmocka_unit_test_setup_teardown(held_by_type_falls_to_zero, test_rt_setup,
                                        test_rt_teardown),
        cmocka_unit_test_setup_teardown(removed_breaker_and_stopped_pool_fall_to_zero,
                                        test_rt_setup, test_rt_teardown),
        cmocka_unit_test_setup_teardown(config_update_families, test_rt_setup, test_rt_teardown),
        cmocka_unit_test_setup_teardown(protected_call_exemplar, test_rt_setup, test_rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
