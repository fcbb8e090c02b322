/* Unit test of the limiter's identity quota over HTTP: POST /v1/limiter/{check,inc,set,get}
 * take an optional `identity`; past max_keys_per_identity a new key of that identity answers
 * 429 naming the quota while other identities and plain keys are served; bad identities are
 * 422; /metrics counts identities and refusals; /health stays ok (the table is not full). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"

#include <stdio.h>

static unsigned post(fdn_admin_t *a, const char *path, const char *body, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", path, NULL, body, strlen(body), r);
    return r->status;
}

static unsigned check(fdn_admin_t *a, const char *identity, const char *key)
{
    char body[512];
    if (identity != NULL)
        snprintf(body, sizeof body,
                 "{\"identity\":\"%s\",\"key\":\"%s\",\"limit\":5,\"window_ms\":60000}", identity,
                 key);
    else
        snprintf(body, sizeof body, "{\"key\":\"%s\",\"limit\":5,\"window_ms\":60000}", key);
    fdn__http_resp_t r;
    unsigned st = post(a, "/v1/limiter/check", body, &r);
    fdn__http_resp_clear(&r);
    return st;
}

static void identity_quota_over_http(void **state)
{
    (void)state;
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.max_keys_per_identity = 2;
    fdn_limiter_t *lim = NULL;
    assert_int_equal(fdn_limiter_create(&lim, &lo), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = lim});

    assert_int_equal(check(a, "tenant-a", "k1"), 200);
    assert_int_equal(check(a, "tenant-a", "k2"), 200);
    assert_int_equal(check(a, "tenant-a", "k1"), 200); /* held: counted as usual */
    fdn__http_resp_t r;
    assert_int_equal(post(a, "/v1/limiter/check",
                          "{\"identity\":\"tenant-a\",\"key\":\"k3\",\"limit\":5,"
                          "\"window_ms\":60000}",
                          &r),
                     429);
    json_t *err = json_object_get(r.json, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "identity 'tenant-a' holds 2 live rate limiter keys"));
    assert_non_null(strstr(msg, "max_keys_per_identity"));
    fdn__http_resp_clear(&r);
    /* inc and set create keys too: refused alike; get creates nothing */
    assert_int_equal(post(a, "/v1/limiter/inc",
                          "{\"identity\":\"tenant-a\",\"key\":\"k4\",\"limit\":5,"
                          "\"window_ms\":60000}",
                          &r),
                     429);
    fdn__http_resp_clear(&r);
    assert_int_equal(post(a, "/v1/limiter/get",
                          "{\"identity\":\"tenant-a\",\"key\":\"k4\",\"limit\":5,"
                          "\"window_ms\":60000}",
                          &r),
                     200);
    fdn__http_resp_clear(&r);
    /* other callers are served: another identity, and keys without one */
    assert_int_equal(check(a, "tenant-b", "k3"), 200);
    assert_int_equal(check(a, NULL, "k3"), 200);
    assert_int_equal(check(a, NULL, "k4"), 200);
    assert_int_equal(check(a, NULL, "k5"), 200);
    /* the identity is part of the key: tenant-b's k1 is not tenant-a's */
    for (int i = 0; i < 3; i++) /* its 3rd..5th */
        assert_int_equal(check(a, "tenant-a", "k1"), 200);
    assert_int_equal(check(a, "tenant-a", "k1"), 429); /* its 6th: the rate limit */
    assert_int_equal(check(a, "tenant-b", "k1"), 200);

    /* bad identities */
    static const char *const bad[] = {
        "{\"identity\":\"\",\"key\":\"k\",\"limit\":1,\"window_ms\":1000}",
        "{\"identity\":7,\"key\":\"k\",\"limit\":1,\"window_ms\":1000}",
        "{\"identity\":\"a\\u001fb\",\"key\":\"k\",\"limit\":1,\"window_ms\":1000}",
        ("{\"identity\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"key\":\"k\",\"limit\":1,\"window_ms\":1000}"), /* 65 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(post(a, "/v1/limiter/check", bad[i], &r), 422);
        fdn__http_resp_clear(&r);
    }

    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.text);
    assert_non_null(strstr(r.text, "\nfdn_rate_limiter_identity_keys_refused_total 2\n"));
    assert_non_null(strstr(r.text, "\nfdn_rate_limiter_identities 2\n"));
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/health", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    fdn__http_resp_clear(&r);

    fdn_admin_destroy(a);
    fdn_limiter_destroy(lim);
}

/* A key holding U+001F, the separator of identity and key, is refused (422): without it a
 * key "tenant-7\u001fsearch" sent with no identity was tenant-7's key "search" and spent its
 * quota. */
static void key_with_separator_is_422(void **state)
{
    (void)state;
    fdn_limiter_t *lim = NULL;
    assert_int_equal(fdn_limiter_create(&lim, NULL), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = lim});
    static const char own[] =
        "{\"identity\":\"tenant-7\",\"key\":\"search\",\"limit\":2,\"window_ms\":60000}";
    static const char *const forged[] = {
        "{\"key\":\"tenant-7\\u001fsearch\",\"limit\":2,\"window_ms\":60000}",
        "{\"identity\":\"x\",\"key\":\"a\\u001fb\",\"limit\":2,\"window_ms\":60000}",
        "{\"key\":\"\\u001f\",\"limit\":2,\"window_ms\":60000}",
    };
    static const char *const paths[] = {"/v1/limiter/check", "/v1/limiter/inc", "/v1/limiter/set",
                                        "/v1/limiter/get"};
    fdn__http_resp_t r;
    assert_int_equal(post(a, "/v1/limiter/check", own, &r), 200); /* 1 of tenant-7's 2 */
    fdn__http_resp_clear(&r);
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            if (post(a, paths[p], forged[i], &r) != 422)
                fail_msg("%s %s: %u", paths[p], forged[i], r.status);
            const char *msg =
                json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
            assert_non_null(msg);
            assert_non_null(strstr(msg, "U+001F"));
            fdn__http_resp_clear(&r);
        }
    assert_int_equal(post(a, "/v1/limiter/check", own, &r), 200); /* 2 of 2: not spent */
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_limiter_destroy(lim);
}

/* A shadow-mode peek answers as the check would (allowed, shadow_denied); POST /v1/limiter/get
 * reports the key's state, so "allowed" stays false for a key over its limit in shadow mode. */
static void get_in_shadow_mode_reports_the_key_state(void **state)
{
    (void)state;
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.shadow = true;
    fdn_limiter_t *lim = NULL;
    assert_int_equal(fdn_limiter_create(&lim, &lo), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = lim});
    static const char body[] = "{\"key\":\"s1\",\"limit\":1,\"window_ms\":60000}";
    fdn__http_resp_t r;
    for (int i = 0; i < 2; i++) { /* the 2nd is over the limit: allowed in shadow mode */
        assert_int_equal(post(a, "/v1/limiter/check", body, &r), 200);
        fdn__http_resp_clear(&r);
    }
    assert_int_equal(post(a, "/v1/limiter/get", body, &r), 200);
    assert_true(json_is_false(json_object_get(r.json, "allowed")));
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_limiter_destroy(lim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_quota_over_http),
        cmocka_unit_test(key_with_separator_is_422),
        cmocka_unit_test(get_in_shadow_mode_reports_the_key_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
