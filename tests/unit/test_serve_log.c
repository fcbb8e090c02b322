/* Unit tests of fdn serve's log lines (tools/fdn/serve_log.c, compiled into this test): the
 * values of a line come from clients too (the access log's request target is the client's
 * bytes), so whatever a value holds, a json line parses as JSON (strict UTF-8, as jansson
 * reads it) and a text line holds no raw control byte (no terminal escape sequence) and stays
 * UTF-8, each on one line. stderr is redirected to a temporary file and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../tools/fdn/serve_log.c"

/* The values logged: well-formed UTF-8 kept, the rest made safe. */
static const char *const HOSTILE[] = {
    "/\xff\xfe?a=1",                              /* bytes that are never UTF-8 */
    "/\x1b[31mred\x1b[0m",                        /* a terminal escape sequence */
    "/x\x7f\x01\x02",                             /* DEL and control characters */
    "/\xc0\xaf",                                  /* an overlong '/' */
    "/\xed\xa0\x80",                              /* a UTF-16 surrogate */
    "/\xf4\x90\x80\x80",                          /* past U+10FFFF */
    "/cut\xe2\x82",                               /* a sequence cut short by the end */
    "/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* well-formed: kept as it is */
};

#define WELL_FORMED 7 /* the index of the well-formed value */

/* Logs one line with `value` under key "target" and returns it (malloc'd, '\n' included). */
static char *log_line(const char *format, const char *value)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    FILE *tf = tmpfile();
    assert_non_null(tf);
    assert_true(dup2(fileno(tf), STDERR_FILENO) >= 0);
    assert_int_equal(serve_log_set_format(format), 0);
    serve_log_always(SERVE_LOG_INFO, "request", "request", "target", value, (const char *)NULL);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    long n = ftell(tf);
    assert_true(n > 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(tf);
    assert_int_equal(fread(buf, 1, (size_t)n, tf), (size_t)n);
    fclose(tf);
    return buf;
}

/* Well-formed UTF-8 from start to end (utf8_seq is the code under test: check it apart). */
static int is_utf8(const unsigned char *p)
{
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0)
            return 0;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n;
    }
    return 1;
}

static void json_lines_stay_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof HOSTILE / sizeof HOSTILE[0]; i++) {
        char *line = log_line("json", HOSTILE[i]);
        size_t len = strlen(line);
        assert_true(len > 1 && line[len - 1] == '\n');
        assert_null(memchr(line, '\n', len - 1)); /* one line */
        assert_true(is_utf8((const unsigned char *)line));
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (j == NULL)
            fail_msg("value %zu: not JSON (%s): %s", i, je.text, line);
        const char *t = json_string_value(json_object_get(j, "target"));
        assert_non_null(t);
        if (is_utf8((const unsigned char *)HOSTILE[i]))
            assert_string_equal(t, HOSTILE[i]);
        else
            assert_non_null(strstr(t, "\xef\xbf\xbd")); /* U+FFFD where the bad bytes were */
        json_decref(j);
        free(line);
    }
}

static void text_lines_hold_no_control_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof HOSTILE / sizeof HOSTILE[0]; i++) {
        char *line = log_line("text", HOSTILE[i]);
        size_t len = strlen(line);
        assert_true(len > 1 && line[len - 1] == '\n');
        for (size_t k = 0; k + 1 < len; k++)
            if ((unsigned char)line[k] < 0x20 || line[k] == 0x7f)
                fail_msg("value %zu: raw byte 0x%02x at %zu: %s", i, (unsigned char)line[k], k,
                         line);
        assert_true(is_utf8((const unsigned char *)line));
        if (i == WELL_FORMED)
            assert_non_null(strstr(line, "target=\"/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
        free(line);
    }
    char *esc = log_line("text", HOSTILE[1]);
    assert_non_null(strstr(esc, "target=\"/\\x1b[31mred\\x1b[0m\""));
    free(esc);
    char *plain = log_line("text", "/health");
    assert_non_null(strstr(plain, " target=/health\n"));
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_lines_stay_json),
        cmocka_unit_test(text_lines_hold_no_control_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
