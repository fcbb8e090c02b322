/* Unit test of the event store's type cap through a runtime and its admin surface:
 * storage.hot.max_types from the environment layer reaches the store, a POST of a new type
 * past the cap answers 503 with a message naming the cap, a held type is still accepted, and
 * /metrics counts the refusal (fdn_events_refused_total{reason="types"}) next to the live
 * types and their cap (issue 21). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"

#include <fdn/events.h>
#include <fdn/runtime.h>

#include <stdio.h>

static unsigned post_event(fdn_admin_t *a, const char *type, fdn__http_resp_t *r)
{
    char body[128];
    int n = snprintf(body, sizeof body, "{\"type\":\"%s\",\"data\":{\"k\":1}}", type);
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", "/v1/events", NULL, body, (size_t)n, r);
    return r->status;
}

static unsigned post_batch(fdn_admin_t *a, const char *body, size_t len, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", "/v1/events/batch", NULL, body, len, r);
    return r->status;
}

static void new_type_past_cap_is_503_and_counted(void **state)
{
    (void)state;
    static const char *const env[] = {"FDN_STORAGE__HOT__MAX_TYPES=6", NULL};
    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.envp = env;
    ro.health_interval_ns = 0;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &ro, NULL), 0);
    fdn_events_t *es = fdn_runtime_events(rt);
    fdn_admin_t *a = test_admin_local(
        NULL, &(test_admin_mounts_t){
                  .runtime = rt, .events = es, .telemetry = fdn_runtime_telemetry(rt)});

    fdn_events_types_status_t st;
    assert_int_equal(fdn_events_types_status(es, &st), 0);
    assert_int_equal(st.max_types, 6); /* the config key reached the store */
    assert_true(st.live < 6);          /* the runtime's own event types, if any */
    uint64_t room = 6 - st.live;
    fdn__http_resp_t r;
    char type[32];
    for (uint64_t i = 0; i < room; i++) {
        snprintf(type, sizeof type, "client.t%llu", (unsigned long long)i);
        assert_int_equal(post_event(a, type, &r), 201);
        fdn__http_resp_clear(&r);
    }
    assert_int_equal(post_event(a, "client.one_too_many", &r), 503);
    json_t *err = json_object_get(r.json, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "storage.hot.max_types is 6"));
    assert_non_null(strstr(msg, "6 distinct event types held"));
    fdn__http_resp_clear(&r);
    /* a batch with a new type: refused whole */
    static const char batch[] =
        "{\"events\":[{\"type\":\"client.t0\",\"data\":1},{\"type\":\"client.new\",\"data\":2}]}";
    assert_int_equal(post_batch(a, batch, sizeof batch - 1, &r), 503);
    fdn__http_resp_clear(&r);
    /* a held type is still accepted */
    assert_int_equal(post_event(a, "client.t0", &r), 201);
    fdn__http_resp_clear(&r);

    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.text);
    assert_non_null(strstr(r.text, "\nfdn_events_refused_total{reason=\"types\"} 3\n"));
    assert_non_null(strstr(r.text, "\nfdn_events_types 6\n"));
    assert_non_null(strstr(r.text, "\nfdn_events_types_max 6\n"));
    fdn__http_resp_clear(&r);

    fdn_admin_destroy(a);
    fdn_runtime_destroy(rt);
}

/* GET /v1/events: a type or correlation id whose decoded bytes are not UTF-8 (no stored event
 * can have one: they are JSON strings) is a bad value, 422 naming the parameter, as a bad
 * value of any other parameter; before, it answered 200 with no events. */
static void query_values_not_utf8_are_422(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
    static const struct {
        const char *uri, *name;
    } bad[] = {
        {"/v1/events?type=%FF", "'type'"},
        {"/v1/events?type=a%C3", "'type'"},                          /* cut short */
        {"/v1/events?type=%C0%AF", "'type'"},                        /* overlong */
        {"/v1/events?correlation_id=%ED%A0%80", "'correlation_id'"}, /* a surrogate */
        {"/v1/events?type=a.b&correlation_id=x%FE", "'correlation_id'"},
    };
    fdn__http_resp_t r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&r, 0, sizeof r);
        fdn__admin_dispatch(a, "GET", bad[i].uri, NULL, NULL, 0, &r);
        if (r.status != 422)
            fail_msg("%s: %u", bad[i].uri, r.status);
        const char *msg =
            json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        assert_non_null(msg);
        assert_non_null(strstr(msg, bad[i].name));
        assert_non_null(strstr(msg, "UTF-8"));
        fdn__http_resp_clear(&r);
    }
    /* UTF-8 values are taken as before */
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/v1/events?type=caf%C3%A9&correlation_id=%E2%82%AC", NULL, NULL,
                        0, &r);
    assert_int_equal(r.status, 200);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

/* GET /v1/events/stats lists every type held under "types", also past the 64 that fit the
 * handler's first buffer (it listed 64 of them, silently): one event of a type, then a batch
 * of 200 types, that one among them. */
static void stats_lists_every_type(void **state)
{
    (void)state;
    enum { NTYPES = 200 };
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
    static char batch[NTYPES * 40 + 32];
    size_t len = (size_t)snprintf(batch, sizeof batch, "{\"events\":[");
    for (int i = 0; i < NTYPES; i++)
        len += (size_t)snprintf(batch + len, sizeof batch - len, "%s{\"type\":\"many.t%03d\"}",
                                i > 0 ? "," : "", i);
    len += (size_t)snprintf(batch + len, sizeof batch - len, "]}");
    assert_true(len < sizeof batch - 1);
    fdn__http_resp_t r;
    assert_int_equal(post_event(a, "many.t007", &r), 201); /* then once more in the batch */
    fdn__http_resp_clear(&r);
    assert_int_equal(post_batch(a, batch, len, &r), 201);
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/v1/events/stats", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "types_seen")), NTYPES);
    assert_int_equal(json_integer_value(json_object_get(r.json, "count")), NTYPES + 1);
    json_t *types = json_object_get(r.json, "types");
    assert_int_equal(json_object_size(types), NTYPES);
    for (int i = 0; i < NTYPES; i++) {
        char t[16];
        snprintf(t, sizeof t, "many.t%03d", i);
        json_t *c = json_object_get(json_object_get(types, t), "count");
        if (!json_is_integer(c) || json_integer_value(c) != (i == 7 ? 2 : 1))
            fail_msg("types.%s.count: %lld", t, (long long)json_integer_value(c));
        assert_true(json_integer_value(json_object_get(json_object_get(types, t), "bytes")) > 0);
    }
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_type_past_cap_is_503_and_counted),
        cmocka_unit_test(query_values_not_utf8_are_422),
        cmocka_unit_test(stats_lists_every_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
