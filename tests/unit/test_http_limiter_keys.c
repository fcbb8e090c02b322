/* Unit test of the busiest limiter keys (issue 19, the status page's panel):
 * fdn_limiter_top_keys ranks live keys by requests in their current window (ties by key),
 * leaves out expired keys and keys with no request, splits the identity off, reports the rule
 * of the key's last check; GET /v1/limiter/keys?top=N answers the same, with N checked
 * (1..100, default 10) and unknown parameters refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "limiter_ns.h"

#include <stdio.h>

#define MS 1000000LL

static void hit(fdn_limiter_t *l, const char *key, int64_t limit, int64_t window_ms, int times)
{
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, window_ms, 0};
    for (int i = 0; i < times; i++) {
        fdn_limit_result_t res;
        int rc = fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res);
        assert_true(rc == 0 || rc == FDN_ERATE_LIMITED);
    }
}

/* An empty limiter on a manual clock (*clk, the caller destroys it after the limiter) at a
 * window boundary: every fixed window starts now. */
static fdn_limiter_t *manual_limiter(fdn_clock_t **clk)
{
    assert_int_equal(fdn_clock_manual_create(clk, 5000 * MS, 1800000000000LL * MS), 0);
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.clock = *clk;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &lo), 0);
    return l;
}

static fdn_limiter_t *filled(fdn_clock_t **clk)
{
    fdn_limiter_t *l = manual_limiter(clk);
    char key[16];
    for (int i = 1; i <= 30; i++) { /* k01 once ... k30 thirty times */
        snprintf(key, sizeof key, "k%02d", i);
        hit(l, key, 100, 60000, i);
    }
    hit(l, "short", 100, 1000, 50); /* expires before the report */
    hit(l, "tenant-7\x1fsearch", 1000, 60000, 28);
    hit(l, "twin-b", 100, 60000, 27); /* ties with twin-a: by key */
    hit(l, "twin-a", 100, 60000, 27);
    hit(l, "relimited", 10, 60000, 3);
    hit(l, "relimited", 20, 60000, 1); /* its last check's rule is reported */
    assert_int_equal(fdn_clock_advance(*clk, 2000 * MS), 0);
    return l;
}

static void ranks_live_keys(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    fdn_limiter_t *l = filled(&clk);
    fdn_limit_key_info_t k[6];
    size_t n = 99;
    uint64_t scanned = 0;
    assert_int_equal(fdn_limiter_top_keys(l, k, 6, &n, &scanned), 0);
    assert_int_equal(n, 6);
    assert_int_equal(scanned, 30 + 5); /* every cell (short still in the table) */
    const char *keys[] = {"k30", "k29", "k28", "search", "k27", "twin-a"}; /* ties: by key */
    const int64_t counts[] = {30, 29, 28, 28, 27, 27};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(k[i].key, keys[i]);
        assert_int_equal(k[i].count, counts[i]);
    }
    assert_string_equal(k[3].identity, "tenant-7");
    assert_int_equal(k[3].limit, 1000);
    assert_int_equal(k[3].remaining, 1000 - 28);
    assert_string_equal(k[0].identity, "");
    assert_int_equal(k[0].rule.algo, FDN_LIMIT_FIXED_WINDOW);
    assert_int_equal(k[0].rule.period_ms, 60000);
    assert_int_equal(k[0].limit, 100);
    assert_int_equal(k[0].remaining, 70);
    assert_true(k[0].reset_ns > 0 && k[0].reset_ns <= 60000 * MS);

    /* every key with requests: the expired one is left out; the re-limited one reports its
     * last rule */
    fdn_limit_key_info_t all[64];
    assert_int_equal(fdn_limiter_top_keys(l, all, 64, &n, NULL), 0);
    assert_int_equal(n, 30 + 4);
    bool relimited = false;
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(all[i].key, "short");
        if (i > 0)
            assert_true(all[i - 1].count >= all[i].count);
        if (strcmp(all[i].key, "relimited") == 0) {
            relimited = true;
            assert_int_equal(all[i].rule.limit, 20);
            assert_int_equal(all[i].count, 4);
        }
    }
    assert_true(relimited);
    assert_int_equal(fdn_limiter_top_keys(l, NULL, 0, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fdn_limiter_top_keys(NULL, k, 6, &n, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limiter_top_keys(l, NULL, 6, &n, NULL), FDN_EINVAL);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

static unsigned get(fdn_admin_t *a, const char *uri, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "GET", uri, NULL, "", 0, r);
    return r->status;
}

static void keys_over_http(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    fdn_limiter_t *l = filled(&clk);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = l});

    fdn__http_resp_t r;
    assert_int_equal(get(a, "/v1/limiter/keys?top=4", &r), 200);
    json_t *keys = json_object_get(r.json, "keys");
    assert_int_equal(json_array_size(keys), 4);
    json_t *first = json_array_get(keys, 0);
    assert_string_equal(json_string_value(json_object_get(first, "key")), "k30");
    assert_int_equal(json_integer_value(json_object_get(first, "count")), 30);
    assert_int_equal(json_integer_value(json_object_get(first, "remaining")), 70);
    assert_int_equal(json_integer_value(json_object_get(first, "limit")), 100);
    json_t *rule = json_object_get(first, "rule");
    assert_string_equal(json_string_value(json_object_get(rule, "algorithm")), "fixed_window");
    assert_int_equal(json_integer_value(json_object_get(rule, "window_ms")), 60000);
    json_t *fourth = json_array_get(keys, 3);
    assert_string_equal(json_string_value(json_object_get(fourth, "key")), "search");
    assert_string_equal(json_string_value(json_object_get(fourth, "identity")), "tenant-7");
    assert_int_equal(json_integer_value(json_object_get(r.json, "live_keys")), 35);
    assert_string_equal(json_string_value(json_object_get(r.json, "backend")), "memory");
    fdn__http_resp_clear(&r);

    assert_int_equal(get(a, "/v1/limiter/keys", &r), 200); /* default 10 */
    assert_int_equal(json_array_size(json_object_get(r.json, "keys")), 10);
    assert_int_equal(json_integer_value(json_object_get(r.json, "top")), 10);
    fdn__http_resp_clear(&r);
    assert_int_equal(get(a, "/v1/limiter/keys?top=100", &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "keys")), 34);
    fdn__http_resp_clear(&r);
    const char *bad[] = {"/v1/limiter/keys?top=0", "/v1/limiter/keys?top=101",
                         "/v1/limiter/keys?top=x", "/v1/limiter/keys?limit=3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(get(a, bad[i], &r), 422);
        fdn__http_resp_clear(&r);
    }
    fdn_admin_destroy(a);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* Keys a program checked need not be UTF-8 (fdn_limiter_check takes bytes), and a key longer
 * than fdn_limit_key_info_t.key is cut, maybe inside a UTF-8 sequence: such a key made the
 * whole answer 500 "System resources exhausted" (json_pack refuses the string), so one key
 * emptied the status page's panel. Each is listed with its bad bytes as U+FFFD. */
static void keys_not_utf8_over_http(void **state)
{
    (void)state;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, NULL), 0);
    hit(l, "bin\xff\xfe", 100, 60000, 3);
    hit(l, "t\xff\x1fk", 100, 60000, 2); /* identity "t\xff", key "k" */
    char lk[301];
    for (size_t i = 0; i < 300; i += 2)
        memcpy(lk + i, "\xc3\xa9", 2); /* 150 x U+00E9: cut after 259 bytes, mid-sequence */
    lk[300] = '\0';
    hit(l, lk, 100, 60000, 1);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = l});

    fdn__http_resp_t r;
    assert_int_equal(get(a, "/v1/limiter/keys", &r), 200);
    json_t *keys = json_object_get(r.json, "keys");
    assert_int_equal(json_array_size(keys), 3);
    json_t *k0 = json_array_get(keys, 0), *k1 = json_array_get(keys, 1),
           *k2 = json_array_get(keys, 2);
    assert_string_equal(json_string_value(json_object_get(k0, "key")),
                        "bin\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(k1, "key")), "k");
    assert_string_equal(json_string_value(json_object_get(k1, "identity")), "t\xef\xbf\xbd");
    const char *cut = json_string_value(json_object_get(k2, "key"));
    assert_non_null(cut);
    assert_int_equal(strlen(cut), 258 + 3); /* 129 x U+00E9, then U+FFFD for the lone byte */
    assert_memory_equal(cut, lk, 258);
    assert_string_equal(cut + 258, "\xef\xbf\xbd");
    assert_true(json_is_true(json_object_get(k2, "key_truncated")));
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
    fdn_limiter_destroy(l);
}

static unsigned post(fdn_admin_t *a, const char *uri, const char *body, fdn__http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    fdn__admin_dispatch(a, "POST", uri, NULL, body, strlen(body), r);
    return r->status;
}

/* Review finding (security): a client's raw key {"key":"api_calls:victim"} named the very cell
 * of the named rule api_calls for identifier "victim", so POST /v1/limiter/check spent (or,
 * under another algorithm, reset) the victim's quota. Each maker now has its own leading
 * byte: the client's key has a cell of its own, and the listing shows both keys as their
 * makers know them, the rule's with "namespace": "rule". */
static void namespaces_apart_over_http(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    fdn_limiter_t *l = manual_limiter(&clk);
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 2, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "api_calls", &rule), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = l});

    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", "victim", 1, &res), 0);
    fdn__http_resp_t r;
    const char *body = "{\"key\":\"api_calls:victim\",\"limit\":5,\"window_ms\":60000,"
                       "\"cost\":4}";
    assert_int_equal(post(a, "/v1/limiter/check", body, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "remaining")), 1);
    fdn__http_resp_clear(&r);
    assert_int_equal(get(a, "/v1/limiter/keys?top=10", &r), 200);
    json_t *keys = json_object_get(r.json, "keys");
    assert_int_equal(json_array_size(keys), 2);
    int seen_http = 0, seen_rule = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *k = json_array_get(keys, i);
        assert_string_equal(json_string_value(json_object_get(k, "key")), "api_calls:victim");
        json_t *ns = json_object_get(k, "namespace");
        if (ns == NULL) {
            seen_http++; /* a key of this API: the entry is as before */
        } else {
            assert_string_equal(json_string_value(ns), "rule");
            assert_int_equal(json_integer_value(json_object_get(k, "count")), 1);
            seen_rule++;
        }
    }
    assert_int_equal(seen_http, 1);
    assert_int_equal(seen_rule, 1);
    fdn__http_resp_clear(&r);
    /* another algorithm on the same raw key: its own cell again, the victim's count stays */
    assert_int_equal(post(a, "/v1/limiter/set",
                          "{\"key\":\"api_calls:victim\",\"limit\":5,\"window_ms\":60000,"
                          "\"algorithm\":\"gcra\",\"count\":0}",
                          &r),
                     200);
    fdn__http_resp_clear(&r);
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", "victim", 1, &res), 0);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(fdn_limiter_check_named(l, "api_calls", "victim", 1, &res), FDN_ERATE_LIMITED);

    fdn_admin_destroy(a);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* The HTTP API passes its keys (FDN_LIMIT_KEY_NS_HTTP) to the key calls, which refuse that
 * namespace from a program: inc, set (count 0), get and check over HTTP still work, and the
 * key stays out of a program's reach (tests/support/limiter_ns_http.c; Redis:
 * tests/engine/test_limiter_redis.c). */
static void library_namespace_calls_over_http(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    fdn_limiter_t *l = manual_limiter(&clk);
    test_limiter_ns_http(l, "mem");
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranks_live_keys),
        cmocka_unit_test(keys_over_http),
        cmocka_unit_test(keys_not_utf8_over_http),
        cmocka_unit_test(namespaces_apart_over_http),
        cmocka_unit_test(library_namespace_calls_over_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
