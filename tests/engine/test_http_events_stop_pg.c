/* Engine test of the event endpoints of a store on PostgreSQL while the store or the server
 * stops (src/admin/api_events.c, src/admin/event_wait.c; docs/http-api.md), on a cluster of
 * the test's own (scripts/pg-server.sh):
 *  - a POST to a store that is stopped answers 503 saying the store is stopping, with
 *    Retry-After as before, not that its PostgreSQL is unavailable (which a POST refused by an
 *    open breaker still says: that is PostgreSQL away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>

#include "admin/admin_int.h"
#include "engine.h"
#include "pg_fixture.h"
#include "services/event_store_int.h"

static test_engine_server_t *g_pg;

/* A store on the test's cluster, its calls and connections bounded by call_ms. */
static fdn_events_t *open_store(const char *schema, int64_t call_ms)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, g_pg->url, schema);
    o.postgres.command_timeout_ms = call_ms;
    o.postgres.connect_timeout_ms = call_ms;
    return test_pg_store_open(&o);
}

static fdn_admin_t *admin_on(fdn_events_t *es)
{
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.listen = "127.0.0.1:0";
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, &o, NULL), 0);
    assert_int_equal(fdn_admin_mount_events(a, es), 0);
    return a;
}

/* POST uri with body; the answer in *r (free it with fdn__http_resp_clear). */
static unsigned post(fdn_admin_t *a, const char *uri, const char *body, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", uri, NULL, body, strlen(body), r);
    return r->status;
}

/* The message of an error answer. */
static const char *error_message(const fdn__http_resp_t *r)
{
    json_t *err = json_object_get(r->json, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    return msg;
}

/* A 503 of a store that stops: says so, blames nothing else, Retry-After as before (1 s). */
static void expect_stopping(const fdn__http_resp_t *r)
{
    assert_int_equal(r->status, 503);
    const char *msg = error_message(r);
    if (strstr(msg, "stopping") == NULL || strstr(msg, "PostgreSQL") != NULL)
        fail_msg("the 503 of a stopped store says: %s", msg);
    assert_int_equal(r->retry_after_s, 1);
}

static void a_stopped_store_answers_stopping_not_postgres_away(void **state)
{
    (void)state;
    char schema[64];
    test_pg_schema_name(schema, sizeof schema, "stop503");
    fdn_events_t *es = open_store(schema, TEST_PG_CALL_MS);
    fdn_admin_t *a = admin_on(es);
    static const char one[] = "{\"type\":\"stop.one\",\"data\":{\"k\":1}}";
    static const char batch[] = "{\"events\":[{\"type\":\"stop.b\",\"data\":1},"
                                "{\"type\":\"stop.b\",\"data\":2}]}";
    fdn__http_resp_t r;
    assert_int_equal(post(a, "/v1/events", one, &r), 201);
    fdn__http_resp_clear(&r);

    /* PostgreSQL away (the breaker forced open, no spool): the writer's refusal names it */
    fdn_breaker_t *br = NULL;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    assert_int_equal(fdn_breaker_create(&br, "events.postgres.stop503", &bo), 0);
    assert_int_equal(fdn_events_set_breaker(es, br), 0);
    fdn_breaker_force_open(br);
    assert_int_equal(post(a, "/v1/events", one, &r), 503);
    assert_non_null(strstr(error_message(&r), "the event store's PostgreSQL is unavailable"));
    assert_true(r.retry_after_s >= 1);
    fdn__http_resp_clear(&r);
    assert_int_equal(fdn_events_set_breaker(es, NULL), 0);
    fdn_breaker_destroy(br);

    /* the store stopped (a shutdown, or a restart by its supervisor): the call refuses it */
    fdn__events_service_stop(es);
    post(a, "/v1/events", one, &r);
    expect_stopping(&r);
    fdn__http_resp_clear(&r);
    post(a, "/v1/events/batch", batch, &r);
    expect_stopping(&r);
    fdn__http_resp_clear(&r);

    /* started again, it stores */
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(post(a, "/v1/events", one, &r), 201);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

int main(void)
{
    g_pg = test_engine_server_start("pg-server.sh");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stopped_store_answers_stopping_not_postgres_away),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_engine_server_stop(g_pg);
    return rc;
}
