/* See limiter_ns.h (test_limiter_ns_http). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "limiter_ns.h"

/* POST path {"key":key,"limit":5,"window_ms":3600000<extra>} (identity: "identity" too):
 * the status, and the answer's count and allowed in *count and *allowed. */
static unsigned post(fdn_admin_t *a, const char *path, const char *identity, const char *key,
                     const char *extra, int64_t *count, bool *allowed)
{
    char body[512], idpart[128] = "";
    if (identity != NULL)
        snprintf(idpart, sizeof idpart, "\"identity\":\"%s\",", identity);
    snprintf(body, sizeof body, "{%s\"key\":\"%s\",\"limit\":5,\"window_ms\":3600000%s}", idpart,
             key, extra);
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "POST", path, NULL, body, strlen(body), &r);
    unsigned status = r.status;
    json_t *c = json_object_get(r.json, "count");
    if (!json_is_integer(c))
        fail_msg("%s %s: %u without a count", path, body, status);
    *count = (int64_t)json_integer_value(c);
    *allowed = json_is_true(json_object_get(r.json, "allowed"));
    fdn__http_resp_clear(&r);
    return status;
}

void test_limiter_ns_http(fdn_limiter_t *l, const char *id)
{
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = l});
    const fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 5, 3600000, 0};
    char key[96], hkey[96];
    snprintf(key, sizeof key, "h-%s", id);
    int n = snprintf(hkey, sizeof hkey, "%c%s", FDN_LIMIT_KEY_NS_HTTP, key);
    int64_t count = -1;
    bool allowed = false;
    assert_int_equal(post(a, "/v1/limiter/inc", NULL, key, ",\"cost\":2", &count, &allowed), 200);
    assert_int_equal(count, 2);
    assert_int_equal(post(a, "/v1/limiter/get", NULL, key, "", &count, &allowed), 200);
    assert_int_equal(count, 2);
    assert_true(allowed);
    assert_int_equal(post(a, "/v1/limiter/check", NULL, key, "", &count, &allowed), 200);
    assert_int_equal(count, 3);
    /* set 0: the key's allowance back (the HTTP API's reset) */
    assert_int_equal(post(a, "/v1/limiter/set", NULL, key, ",\"count\":0", &count, &allowed), 200);
    assert_int_equal(count, 0);
    assert_int_equal(post(a, "/v1/limiter/get", NULL, key, "", &count, &allowed), 200);
    assert_int_equal(count, 0);
    /* over the limit: get still answers 200 with the count, check 429 */
    assert_int_equal(post(a, "/v1/limiter/inc", NULL, key, ",\"cost\":5", &count, &allowed), 200);
    assert_int_equal(post(a, "/v1/limiter/get", NULL, key, "", &count, &allowed), 200);
    assert_int_equal(count, 5);
    assert_false(allowed);
    assert_int_equal(post(a, "/v1/limiter/check", NULL, key, "", &count, &allowed), 429);
    assert_true(count >= 5); /* 6; Redis's deny cache may answer with the limit */

    /* the key lives in the HTTP namespace: a program's calls do not reach it (neither by its
     * bare name, another key, nor by its namespace byte, refused); the flag reads it */
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_get(l, key, strlen(key), &rule, &res), 0);
    assert_int_equal(res.count, 0);
    assert_int_equal(fdn_limiter_get(l, hkey, (size_t)n, &rule, &res), FDN_EINVAL);
    assert_int_equal(fdn_limiter_reset(l, hkey, (size_t)n), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check(l, hkey, (size_t)n, &rule, 1,
                                       FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS, &res),
                     FDN_ERATE_LIMITED);
    assert_true(res.count >= 5);

    /* an HTTP identity and the same identity in C count separately (limiter.h,
     * FDN_LIMIT_IDENTITY_SEP): two cells, each with its own count */
    char ident[64], ckey[160];
    snprintf(ident, sizeof ident, "t-%s", id);
    n = snprintf(ckey, sizeof ckey, "%s%csearch", ident, FDN_LIMIT_IDENTITY_SEP);
    assert_int_equal(post(a, "/v1/limiter/check", ident, "search", "", &count, &allowed), 200);
    assert_int_equal(post(a, "/v1/limiter/check", ident, "search", "", &count, &allowed), 200);
    assert_int_equal(count, 2);
    assert_int_equal(fdn_limiter_check(l, ckey, (size_t)n, &rule, 1, 0, &res), 0);
    assert_int_equal(res.count, 1);
    fdn_admin_destroy(a);
}
