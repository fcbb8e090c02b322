/* Unit test of the status page route (src/admin/api_status.c) through the in-process
 * dispatcher: GET / and HEAD / answer the embedded page (the whole of src/admin/status.html,
 * byte for byte, as text/html), other methods get 405, a path below / is not the page, and
 * with a token the page follows the API's rule (401 without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_int.h"
#include "admin_local.h"

/* the source tree's path, compiled in (CMakeLists.txt): the test needs no environment */
static char *read_source_page(size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/src/admin/status.html", FDN_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(*len > 0 && *len < sizeof buf);
    return buf;
}

static fdn_admin_t *server(const char *token)
{
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.token = token;
    return test_admin_local(&o, NULL);
}

static void page_served(void **state)
{
    (void)state;
    size_t len = 0;
    const char *want = read_source_page(&len);
    fdn_admin_t *a = server(NULL);
    const char *methods[] = {"GET", "HEAD"};
    for (size_t i = 0; i < 2; i++) {
        fdn__http_resp_t r;
        memset(&r, 0, sizeof r);
        fdn__admin_dispatch(a, methods[i], "/", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_null(r.json);
        assert_string_equal(r.content_type, "text/html; charset=utf-8");
        assert_int_equal(r.text_len, len);
        assert_memory_equal(r.text, want, len);
        assert_non_null(strstr(r.text, "<title>fdn status</title>"));
        fdn__http_resp_clear(&r);
    }
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "POST", "/", NULL, "{}", 2, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, HEAD"); /* HEAD is served for every GET route */
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/index.html", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/?x=1", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 422);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
}

static void page_needs_the_token(void **state)
{
    (void)state;
    fdn_admin_t *a = server("0123456789abcdef-token");
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    assert_null(r.text);
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/", "Bearer wrong-token-0123456", NULL, 0, &r);
    assert_int_equal(r.status, 401);
    fdn__http_resp_clear(&r);
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/", "Bearer 0123456789abcdef-token", NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.text);
    fdn__http_resp_clear(&r);
    fdn_admin_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_served),
        cmocka_unit_test(page_needs_the_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
