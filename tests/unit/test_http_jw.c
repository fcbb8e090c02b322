/* The admin's JSON text writer (src/admin/http_jw.c) and GET /health written with it: strings
 * come out as jansson's compact dump writes them (every byte value, valid and invalid UTF-8),
 * integers at their limits, and a health check named like a runtime service replaces that
 * service in place as json_object_set did. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin/http_jw.h"

static char *jw_string(const char *s)
{
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__jw_str(&w, s);
    assert_int_equal(w.rc, 0);
    return w.t.p;
}

/* every single byte and every pair of bytes: the writer's text equals jansson's dump when
 * jansson holds the string (valid UTF-8), and is valid JSON whose value replaces each bad byte
 * by U+FFFD otherwise */
static void test_strings_as_jansson(void **state)
{
    (void)state;
    unsigned char s[4];
    for (unsigned a = 1; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            s[0] = (unsigned char)a;
            s[1] = (unsigned char)b;
            s[2] = 0;
            char *mine = jw_string((const char *)s);
            json_t *j = json_string((const char *)s);
            if (j != NULL) {
                char *dump = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
                assert_non_null(dump);
                if (strcmp(mine, dump) != 0)
                    fail_msg("bytes %02x %02x: mine %s jansson %s", a, b, mine, dump);
                fdn_free(dump);
                json_decref(j);
            } else {
                json_t *back = json_loads(mine, JSON_DECODE_ANY, NULL);
                if (back == NULL || !json_is_string(back))
                    fail_msg("bytes %02x %02x: %s is not a JSON string", a, b, mine);
                assert_non_null(strstr(json_string_value(back), "\xef\xbf\xbd"));
                json_decref(back);
            }
            fdn_free(mine);
        }
    }
    char *n = jw_string(NULL);
    assert_string_equal(n, "null");
    fdn_free(n);
    /* a 4-byte sequence and a truncated one */
    char *e = jw_string("\xf0\x9f\x98\x80x\xf0\x9f");
    assert_string_equal(e, "\"\xf0\x9f\x98\x80x\\ufffd\\ufffd\"");
    fdn_free(e);
}

static void test_numbers_and_growth(void **state)
{
    (void)state;
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__jw_i64(&w, INT64_MIN);
    fdn__jw_raw(&w, ",", 1);
    fdn__jw_i64(&w, INT64_MAX);
    fdn__jw_raw(&w, ",", 1);
    fdn__jw_i64(&w, 0);
    fdn__jw_raw(&w, ",", 1);
    fdn__jw_u64(&w, UINT64_MAX);
    fdn__jw_raw(&w, ",", 1);
    fdn__jw_bool(&w, true);
    fdn__jw_raw(&w, ",", 1);
    fdn__jw_bool(&w, false);
    assert_int_equal(w.rc, 0);
    assert_string_equal(w.t.p, "-9223372036854775808,9223372036854775807,0,18446744073709551615,"
                               "true,false");
    /* past the first allocation, many small appends keep the text whole */
    size_t before = w.t.len;
    for (int i = 0; i < 10000; i++)
        fdn__jw_key(&w, "k");
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.t.len, before + 10000 * 4);
    assert_int_equal(strlen(w.t.p), w.t.len);
    fdn_free(w.t.p);
}

static int ok_fn(void *user)
{
    (void)user;
    return 0;
}

static int bad_fn(void *user)
{
    (void)user;
    return FDN_EUNAVAILABLE;
}

/* a health extension like the runtime's: two services */
static int ext(fdn__jw_t *body, fdn__jw_t *services, void *user)
{
    (void)user;
    fdn__jw_lit(body, "\"runtime\":{\"name\":\"t\"},");
    fdn__jw_lit(services, "\"alpha\":{\"status\":\"ok\",\"restarts\":0},"
                          "\"beta\":{\"status\":\"ok\",\"restarts\":2},");
    return 0;
}

static void test_health_text(void **state)
{
    (void)state;
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, NULL, NULL), 0);
    assert_int_equal(fdn__admin_set_health_ext(a, ext, NULL), 0);
    assert_int_equal(fdn_admin_add_health(a, "gamma", ok_fn, NULL), 0);
    assert_int_equal(fdn_admin_add_health(a, "alpha", bad_fn, NULL), 0); /* a service's name */
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/health", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(r.json);
    char *got = json_dumps(r.json, JSON_COMPACT);
    /* what the jansson version gave: alpha replaced in its place, then beta, then gamma */
    char want[512];
    snprintf(want, sizeof want,
             "{\"runtime\":{\"name\":\"t\"},\"status\":\"degraded\",\"services\":{\"alpha\":{"
             "\"status\":\"unhealthy\",\"code\":%d,\"error\":\"%s\"},\"beta\":{\"status\":\"ok\","
             "\"restarts\":2},\"gamma\":{\"status\":\"ok\"}}}",
             fdn_err_info(FDN_EUNAVAILABLE)->ref_code, fdn_err_name(FDN_EUNAVAILABLE));
    assert_string_equal(got, want);
    fdn_free(got);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_as_jansson),
        cmocka_unit_test(test_numbers_and_growth),
        cmocka_unit_test(test_health_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
