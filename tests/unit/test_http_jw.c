/* The admin's JSON text writer (src/admin/http_jw.c) and GET /health written with it: strings
 * come out as jansson's compact dump writes them (every byte value, valid and invalid UTF-8),
 * integers at their limits, and a health check named like a runtime service replaces that
 * service in place as json_object_set did. */
#include <setjmp.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"
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

/* a health extension like the runtime's: two services, beta's restarts and the live value
 * ("up") from the variables below, and the code the read returns */
static uint32_t beta_restarts = 2;
static int64_t ext_live = 5;
static int ext_code;

static int ext_read(void *in, size_t *len, int64_t *live, void *user)
{
    (void)user;
    memcpy(in, &beta_restarts, sizeof beta_restarts);
    *len = sizeof beta_restarts;
    *live = ext_live;
    return ext_code;
}

static void ext_write(fdn__jw_t *body, fdn__jw_t *services, const void *in, size_t len,
                      int64_t live, size_t *live_at, void *user)
{
    (void)user;
    uint32_t r;
    assert_int_equal(len, sizeof r);
    memcpy(&r, in, sizeof r);
    fdn__jw_lit(body, "\"runtime\":{\"name\":\"t\",\"up\":");
    *live_at = body->t.len;
    fdn__jw_i64(body, live);
    fdn__jw_lit(body, "},");
    fdn__jw_lit(services,
                "\"alpha\":{\"status\":\"ok\",\"restarts\":0},\"beta\":{\"status\":\"ok\","
                "\"restarts\":");
    fdn__jw_u64(services, r);
    fdn__jw_lit(services, "},");
}

static const fdn__admin_health_ext_t ext = {sizeof(uint32_t), ext_read, ext_write};

static void test_health_text(void **state)
{
    (void)state;
    beta_restarts = 2, ext_live = 5, ext_code = 0;
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, NULL, NULL), 0);
    assert_int_equal(fdn__admin_set_health_ext(a, &ext, NULL), 0);
    assert_int_equal(fdn_admin_add_health(a, "gamma", ok_fn, NULL), 0);
    assert_int_equal(fdn_admin_add_health(a, "alpha", bad_fn, NULL), 0); /* a service's name */
    unsigned status = 0;
    char *got = test_admin_health(a, &status);
    assert_int_equal(status, 503);
    /* what the jansson version gave: alpha replaced in its place, then beta, then gamma */
    char want[512];
    snprintf(want, sizeof want,
             "{\"runtime\":{\"name\":\"t\",\"up\":5},\"status\":\"degraded\",\"services\":{"
             "\"alpha\":{\"status\":\"unhealthy\",\"code\":%d,\"error\":\"%s\"},\"beta\":{"
             "\"status\":\"ok\",\"restarts\":2},\"gamma\":{\"status\":\"ok\"}}}",
             fdn_err_info(FDN_EUNAVAILABLE)->ref_code, fdn_err_name(FDN_EUNAVAILABLE));
    assert_string_equal(got, want);
    fdn_free(got);
    fdn_admin_destroy(a);
}

/* A check whose answer the test sets */
static int gamma_code;
static int gamma_deg;
static int gamma_fn(void *user, int *degraded)
{
    (void)user;
    *degraded = gamma_deg;
    return gamma_code;
}

/* The body expected for the state in the variables above, written here from scratch. */
static void want_body(char *out, size_t cap)
{
    char g[128];
    if (gamma_code == 0 && gamma_deg == 0)
        snprintf(g, sizeof g, "{\"status\":\"ok\"}");
    else
        snprintf(g, sizeof g, "{\"status\":\"%s\",\"code\":%d,\"error\":\"%s\"}",
                 gamma_code == 0 ? "degraded" : "unhealthy",
                 fdn_err_info(gamma_code != 0 ? gamma_code : gamma_deg)->ref_code,
                 fdn_err_name(gamma_code != 0 ? gamma_code : gamma_deg));
    snprintf(out, cap,
             "{\"runtime\":{\"name\":\"t\",\"up\":%lld},\"status\":\"%s\",\"services\":{"
             "\"alpha\":{\"status\":\"ok\",\"restarts\":0},\"beta\":{\"status\":\"ok\","
             "\"restarts\":%u},\"gamma\":%s}}",
             (long long)ext_live, gamma_code == 0 && ext_code == 0 ? "ok" : "degraded",
             (unsigned)beta_restarts, g);
}

/* GET /health reuses the body it wrote while nothing it shows changed (http_builtin.c,
 * "Reuse"): every answer must still be the body written from scratch for the state of that
 * moment. Each step changes one input (the extension's state, its code, the live value across
 * digit counts, a check's code and its degraded code) and then asks twice (a fresh write, then
 * a reuse); a remembered body served after its state changed fails the comparison. */
static void test_health_reuse(void **state)
{
    (void)state;
    beta_restarts = 2, ext_live = 5, ext_code = 0, gamma_code = 0, gamma_deg = 0;
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, NULL, NULL), 0);
    assert_int_equal(fdn__admin_set_health_ext(a, &ext, NULL), 0);
    assert_int_equal(fdn__admin_add_health_deg(a, "gamma", gamma_fn, NULL), 0);
    static const struct {
        uint32_t restarts;
        int64_t live;
        int ext_code, code, deg;
    } steps[] = {
        {2, 5, 0, 0, 0},
        {2, 9, 0, 0, 0},                      /* the live value alone */
        {2, 10, 0, 0, 0},                     /* ... one digit longer */
        {3, 10, 0, 0, 0},                     /* the extension's state */
        {3, 10, FDN_EUNHEALTHY, 0, 0},        /* its code */
        {3, 10, 0, 0, 0},                     /* back */
        {3, 1234567, 0, FDN_EUNAVAILABLE, 0}, /* a check fails */
        {3, 7, 0, 0, FDN_EUNAVAILABLE},       /* ... then says degraded */
        {3, 7, 0, 0, FDN_ELIMITER},           /* ... for another reason */
        {3, 7, 0, 0, 0},                      /* healthy again */
        {2, 0, 0, 0, 0},                      /* every value as at the first step */
        {2, INT64_MAX / 1000000, 0, 0, 0},    /* the longest live value */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        beta_restarts = steps[i].restarts, ext_live = steps[i].live, ext_code = steps[i].ext_code;
        gamma_code = steps[i].code, gamma_deg = steps[i].deg;
        char want[768];
        want_body(want, sizeof want);
        for (int k = 0; k < 2; k++) {
            unsigned status = 0;
            char *got = test_admin_health(a, &status);
            if (strcmp(got, want) != 0)
                fail_msg("step %zu, ask %d:\n got %s\nwant %s", i, k, got, want);
            assert_int_equal(status, gamma_code == 0 && ext_code == 0 ? 200 : 503);
            fdn_free(got);
        }
    }
    /* a check added after answers were remembered (before start) is in the next one */
    assert_int_equal(fdn_admin_add_health(a, "zeta", bad_fn, NULL), 0);
    unsigned status = 0;
    char *got = test_admin_health(a, &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(got, "\"zeta\":{\"status\":\"unhealthy\""));
    fdn_free(got);
    fdn_admin_destroy(a);
}

/* A check that flips between healthy and unavailable with the variable below. */
static atomic_int flip_code;
static int flip_fn(void *user)
{
    (void)user;
    return atomic_load_explicit(&flip_code, memory_order_relaxed);
}

enum { N = 6 };

typedef struct asker {
    fdn_admin_t *a;
    int id;
    int bad; /* answers whose status and body disagree */
} asker_t;

static void *ask_loop(void *arg)
{
    asker_t *k = arg;
    for (int i = 0; i < 300; i++) {
        /* each asker flips the check before it asks: the state changes under the others */
        atomic_store_explicit(&flip_code, (i + k->id) % 2 ? FDN_EUNAVAILABLE : 0,
                              memory_order_relaxed);
        unsigned status = 0;
        char *got = test_admin_health(k->a, &status);
        bool ok_body = strstr(got, "\"flip\":{\"status\":\"ok\"}") != NULL;
        if ((status == 200) != ok_body)
            k->bad++;
        fdn_free(got);
    }
    return NULL;
}

/* Server threads answer GET /health at once (more threads than remembered bodies, so some
 * answer without one) while a check flips (each thread flips it before it asks): each
 * answer's status agrees with its own body (a body remembered for the other state would not),
 * and under TSan the slots' hand-over is checked. */
static void test_health_reuse_threads(void **state)
{
    (void)state;
    beta_restarts = 2, ext_live = 5, ext_code = 0;
    atomic_store(&flip_code, 0);
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, NULL, NULL), 0);
    assert_int_equal(fdn__admin_set_health_ext(a, &ext, NULL), 0);
    assert_int_equal(fdn_admin_add_health(a, "flip", flip_fn, NULL), 0);
    asker_t k[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        k[i] = (asker_t){a, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, ask_loop, &k[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(k[i].bad, 0);
    }
    fdn_admin_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_as_jansson),   cmocka_unit_test(test_numbers_and_growth),
        cmocka_unit_test(test_health_text),          cmocka_unit_test(test_health_reuse),
        cmocka_unit_test(test_health_reuse_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
