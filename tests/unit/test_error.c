/* Unit tests: the error table, retry rules, formatting, UUIDs, and the thread-local error
 * context (stack, breadcrumbs, run helper, capture/adopt, task propagation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <fdn/clock.h>
#include <fdn/error.h>
#include <fdn/tasks.h>

#include "distinct.h"
#include "threads.h"

/* ---------------------------------------------------------------- table */

static void every_code_has_name_message_and_row(void **state)
{
    (void)state;
    size_t n = fdn_err_count();
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const fdn_err_info_t *r = fdn_err_at(i);
        assert_non_null(r);
        assert_true(r->code < 0);
        assert_true(r->ref_code > 0);
        assert_non_null(r->name);
        assert_int_equal(strncmp(r->name, "FDN_E", 5), 0);
        assert_true(strlen(r->type) > 0);
        assert_true(strlen(r->category) > 0);
        assert_true(strlen(r->subcategory) > 0);
        assert_true(strlen(r->message) > 0);
        assert_string_equal(fdn_err_name(r->code), r->name);
        assert_string_equal(fdn_strerror(r->code), r->message);
        assert_ptr_equal(fdn_err_info(r->code), r);
        /* codes are unique */
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(r->code, fdn_err_at(j)->code);
        /* POSIX-valued codes are -errno, project codes below -1000 */
        assert_true(r->code > -1000 || r->code <= -1001);
    }
    assert_null(fdn_err_at(n));
    assert_string_equal(fdn_err_name(0), "FDN_OK");
    assert_string_equal(fdn_strerror(0), "Success");
    assert_string_equal(fdn_err_name(-99999), "FDN_EUNKNOWN");
    assert_string_equal(fdn_err_name(7), "FDN_EUNKNOWN");
    assert_int_equal(fdn_err_info(-99999)->ref_code, 9999);
    assert_int_equal(FDN_ENOMEM, -ENOMEM);
    assert_int_equal(FDN_EINVAL, -EINVAL);
    assert_int_equal(FDN_EAGAIN, -EAGAIN);
}

static void table_retry_column_agrees_with_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < fdn_err_count(); i++) {
        const fdn_err_info_t *r = fdn_err_at(i);
        if (fdn_retry_rule(r->type, r->severity) != r->retry)
            fail_msg("%s: table retry %s, rule gives %s", r->name, fdn_retry_name(r->retry),
                     fdn_retry_name(fdn_retry_rule(r->type, r->severity)));
    }
    /* the reference's named strategies (§11.11) */
    assert_int_equal(fdn_err_info(FDN_ENETWORK)->retry, FDN_RETRY_EXPONENTIAL_BACKOFF);
    assert_int_equal(fdn_err_info(FDN_ETIMEDOUT)->retry, FDN_RETRY_EXPONENTIAL_BACKOFF);
    assert_int_equal(fdn_err_info(FDN_EEXTERNAL)->retry, FDN_RETRY_FIXED_DELAY);
    assert_int_equal(fdn_err_info(FDN_ECONFIG_INVALID)->retry, FDN_RETRY_NO_RETRY);
    assert_int_equal(fdn_err_info(FDN_ECORRUPT)->retry, FDN_RETRY_NO_RETRY);
    assert_int_equal(fdn_err_info(FDN_ENOMEM)->retry, FDN_RETRY_IMMEDIATE);
    assert_int_equal(fdn_err_info(FDN_EINTERNAL)->retry, FDN_RETRY_NO_RETRY);
    assert_int_equal(fdn_err_info(FDN_EINTERNAL)->severity, FDN_SEV_CRITICAL);
    assert_int_equal(fdn_err_info(FDN_ECONFIG_FORBIDDEN)->ref_code, 1401);
    assert_int_equal(fdn_err_info(FDN_ESERVICE_NOT_FOUND)->ref_code, 5001);
    assert_false(fdn_err_retryable(FDN_ECORRUPT));
    assert_true(fdn_err_retryable(FDN_ETIMEDOUT));
    assert_true(fdn_err_should_escalate(FDN_EINTERNAL));
    assert_true(fdn_err_should_escalate(FDN_EUNAVAILABLE));
    assert_false(fdn_err_should_escalate(FDN_EINVAL));
}

static void retry_delays(void **state)
{
    (void)state;
    fdn_retry_t eb = FDN_RETRY_EXPONENTIAL_BACKOFF;
    assert_int_equal(fdn_retry_delay_ms(eb, 0), 1000);
    assert_int_equal(fdn_retry_delay_ms(eb, 1), 2000);
    assert_int_equal(fdn_retry_delay_ms(eb, 2), 4000);
    assert_int_equal(fdn_retry_delay_ms(eb, 3), 8000);
    assert_int_equal(fdn_retry_delay_ms(eb, 4), 16000);
    for (int a = 5; a <= 100; a++)
        assert_int_equal(fdn_retry_delay_ms(eb, a), 30000);
    assert_int_equal(fdn_retry_delay_ms(eb, -3), 1000);
    for (int a = 0; a <= 100; a++) {
        assert_int_equal(fdn_retry_delay_ms(FDN_RETRY_FIXED_DELAY, a), 1000);
        assert_int_equal(fdn_retry_delay_ms(FDN_RETRY_IMMEDIATE, a), 0);
        assert_true(fdn_retry_delay_ms(FDN_RETRY_NO_RETRY, a) == FDN_RETRY_NEVER);
        for (size_t i = 0; i < fdn_err_count(); i++)
            assert_true(fdn_retry_delay_ms(fdn_err_at(i)->retry, a) >= 0);
    }
    for (int a = 0; a <= 20; a++)
        assert_true(fdn_retry_delay_ms(eb, a) <= 30000);
}

static void format_reference_to_string(void **state)
{
    (void)state;
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_err_set(&e, FDN_ECONFIG_FORBIDDEN, "path %s is locked", "a.b"),
                     FDN_ECONFIG_FORBIDDEN);
    char buf[512];
    size_t n = fdn_err_format(&e, buf, sizeof(buf));
    assert_string_equal(buf,
                        "[1401:config_update_forbidden] path a.b is locked | Severity: medium");
    assert_int_equal(n, strlen(buf));
    fdn_err_add_context(&e, "path", "%s", "a.b");
    fdn_err_add_context(&e, "reason", "%s", "not updatable");
    fdn_err_format(&e, buf, sizeof(buf));
    assert_string_equal(buf, "[1401:config_update_forbidden] path a.b is locked | Context: "
                             "path=a.b reason=\"not updatable\" | Severity: medium");
    /* truncated output stays terminated and reports the full length */
    char small[10];
    size_t need = fdn_err_format(&e, small, sizeof(small));
    assert_int_equal(need, strlen(buf));
    assert_int_equal(strlen(small), 9);
    /* default message when fmt is NULL; NULL err just returns the code */
    fdn_err_set(&e, FDN_EUNKNOWN, NULL);
    fdn_err_format(&e, buf, sizeof(buf));
    assert_string_equal(buf, "[9999:unknown] Unknown error | Severity: medium");
    assert_int_equal(fdn_err_set(NULL, FDN_EIO, "x"), FDN_EIO);
    assert_true(e.timestamp_ns > 0);
}

/* Quoted values escape '"' and '\\' (logfmt style), so a value cannot end its quotes early;
 * values that need no quotes are written as they are. */
static void context_escapes_quotes_and_backslashes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\" rule=forged", "path=\"a\\\" rule=forged\""},
        {"a\"b", "path=\"a\\\"b\""},
        {"a b\\c", "path=\"a b\\\\c\""},
        {"C:\\dir", "path=C:\\dir"}, /* unquoted: as it is */
        {"a b", "path=\"a b\""},
        {"", "path=\"\""},
        {"plain", "path=plain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fdn_error_t e = FDN_ERROR_INIT;
        fdn_err_set(&e, FDN_EINVAL, NULL);
        fdn_err_add_context(&e, "path", "%s", cases[i].in);
        assert_string_equal(e.context, cases[i].want);
    }
    /* a long value of quotes: escaped, cut at the field's end, still terminated */
    char big[FDN_ERR_CONTEXT_MAX];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EINVAL, NULL);
    fdn_err_add_context(&e, "k", "%s", big);
    assert_true(strlen(e.context) < FDN_ERR_CONTEXT_MAX);
    assert_string_equal(e.context + strlen(e.context) - 3, "...");
    assert_int_equal(strncmp(e.context, "k=\"\\\"\\\"", 7), 0);
}

/* fdn_err_context_next reads back what fdn_err_add_context wrote, item by item: a key is
 * matched whole (the runtime once looked for a setting's path with strstr("path="), which
 * found it inside config_path= and took that value), quotes and escapes are undone, and text
 * the library does not write ends the walk. */
static void context_items_read_back(void **state)
{
    (void)state;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_add_context(&e, "config_path", "%s", "/etc/x.json");
    fdn_err_add_context(&e, "note", "%s", "a path=wrong \"q\"");
    fdn_err_add_context(&e, "path", "%s", "infrastructure.rate_limiting.default_rules");
    fdn_err_add_context(&e, "empty", "%s", "");
    const char *pos = e.context;
    char key[64], val[FDN_ERR_CONTEXT_MAX];
    size_t n = 99;
    assert_true(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, &n));
    assert_string_equal(key, "config_path");
    assert_string_equal(val, "/etc/x.json");
    assert_int_equal(n, strlen("/etc/x.json"));
    assert_true(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, NULL));
    assert_string_equal(key, "note");
    assert_string_equal(val, "a path=wrong \"q\"");
    assert_true(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, NULL));
    assert_string_equal(key, "path");
    assert_string_equal(val, "infrastructure.rate_limiting.default_rules");
    assert_true(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, &n));
    assert_string_equal(key, "empty");
    assert_int_equal(n, 0);
    assert_false(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, NULL));
    /* a key longer than the caller's buffer, text without '=', a value too long: false */
    pos = "abcdefgh=1";
    assert_false(fdn_err_context_next(&pos, key, 8, val, sizeof val, NULL));
    pos = "no equals sign";
    assert_false(fdn_err_context_next(&pos, key, sizeof key, val, sizeof val, NULL));
    pos = "k=123456";
    assert_false(fdn_err_context_next(&pos, key, sizeof key, val, 4, NULL));
    assert_string_equal(pos, "k=123456"); /* not moved */
}

/* A value that does not fit is cut and ends with "...", whatever the key's length: it is
 * never dropped whole (the item's worst-case size is not a reason to lose what fits). */
static void context_long_key_value_cut_not_dropped(void **state)
{
    (void)state;
    char key[81];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    char val[600];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int quoted = 0; quoted < 2; quoted++) {
        if (quoted)
            val[3] = ' ';
        fdn_error_t e = FDN_ERROR_INIT;
        fdn_err_set(&e, FDN_EINVAL, NULL);
        fdn_err_add_context(&e, key, "%s", val);
        size_t len = strlen(e.context);
        assert_true(len < FDN_ERR_CONTEXT_MAX && len > 400);
        assert_int_equal(strncmp(e.context, key, strlen(key)), 0);
        const char *start = quoted ? "=\"vvv v" : "=vvvv";
        assert_int_equal(strncmp(e.context + strlen(key), start, strlen(start)), 0);
        assert_string_equal(e.context + len - 3, "...");
    }
}

static void json_parses_with_every_field(void **state)
{
    (void)state;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EVALIDATION, "bad \"quote\" \\ and\nnewline \xc3\xa9");
    fdn_err_add_context(&e, "field", "%s", "name");
    char buf[2048];
    size_t n = fdn_err_to_json(&e, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    if (j == NULL)
        fail_msg("json: %s in %s", je.text, buf);
    assert_int_equal(json_integer_value(json_object_get(j, "code")), FDN_EVALIDATION);
    assert_int_equal(json_integer_value(json_object_get(j, "ref_code")), 3203);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "validation_failed");
    assert_string_equal(json_string_value(json_object_get(j, "category")), "data");
    assert_string_equal(json_string_value(json_object_get(j, "subcategory")), "validation");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "medium");
    assert_string_equal(json_string_value(json_object_get(j, "retry_strategy")), "fixed_delay");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "bad \"quote\" \\ and\nnewline \xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(j, "context")), "field=name");
    assert_non_null(json_object_get(j, "correlation_id"));
    assert_non_null(json_object_get(j, "breadcrumbs"));
    assert_int_equal(json_integer_value(json_object_get(j, "timestamp_ns")), e.timestamp_ns);
    json_decref(j);
    /* a cut buffer is still terminated */
    char small[16];
    assert_int_equal(fdn_err_to_json(&e, small, sizeof(small)), n);
    assert_int_equal(strlen(small), 15);
}

/* Messages and context may hold any bytes (file names, HTTP input): the JSON stays valid and
 * every invalid byte becomes U+FFFD while valid text is kept as it is. */
static void json_replaces_invalid_utf8(void **state)
{
    (void)state;
#define R "\xef\xbf\xbd" /* U+FFFD */
    static const struct {
        const char *in, *want, *want_ctx; /* want_ctx: in the context text, if not want */
    } cases[] = {
        {"\xff\xfe", R R, NULL},                  /* bytes never in UTF-8 */
        {"a\x80z", "a" R "z", NULL},              /* stray continuation byte */
        {"\xc0\xaf", R R, NULL},                  /* overlong '/' */
        {"\xe0\x80\xaf", R R R, NULL},            /* overlong, three bytes */
        {"\xed\xa0\x80", R R R, NULL},            /* surrogate U+D800 */
        {"\xf4\x90\x80\x80x", R R R R "x", NULL}, /* above U+10FFFF */
        {"end \xe2\x82", "end " R R, NULL},       /* truncated at the end */
        {"\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9", "\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9", NULL},
        {"tab\t\x01\"q\\", "tab\t\x01\"q\\",
         "tab\t\x01\\\"q\\\\"}, /* escapes: in the context's quotes, '"' and '\\' too */
    };
#undef R
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fdn_error_t e = FDN_ERROR_INIT;
        fdn_err_set(&e, FDN_EINVAL, "%s", cases[i].in);
        fdn_err_add_context(&e, "file", "%s", cases[i].in);
        char buf[2048];
        size_t n = fdn_err_to_json(&e, buf, sizeof(buf));
        assert_true(n < sizeof(buf));
        json_error_t je;
        json_t *j = json_loads(buf, 0, &je);
        if (j == NULL)
            fail_msg("case %zu: invalid JSON (%s): %s", i, je.text, buf);
        assert_string_equal(json_string_value(json_object_get(j, "message")), cases[i].want);
        /* the context quotes values with spaces: file=v or file="v" */
        const char *ctx = json_string_value(json_object_get(j, "context"));
        assert_non_null(ctx);
        assert_true(strncmp(ctx, "file=", 5) == 0);
        assert_non_null(strstr(ctx, cases[i].want_ctx ? cases[i].want_ctx : cases[i].want));
        json_decref(j);
    }
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80         ? 1
                  : (*p >> 5) == 6  ? 2
                  : (*p >> 4) == 14 ? 3
                  : (*p >> 3) == 30 ? 4
                                    : 0;
        if (len == 0)
            return false;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

static void message_cut_at_utf8_boundary(void **state)
{
    (void)state;
    /* 300 × "é" (2 bytes each) does not fit in 256 bytes */
    char big[700];
    size_t o = 0;
    for (int i = 0; i < 300; i++) {
        big[o++] = (char)0xC3;
        big[o++] = (char)0xA9;
    }
    big[o] = '\0';
    for (int shift = 0; shift < 3; shift++) {
        fdn_error_t e = FDN_ERROR_INIT;
        fdn_err_set(&e, FDN_EINVAL, "%.*s%s", shift, "xx", big);
        assert_true(strlen(e.message) < FDN_ERR_MSG_MAX);
        assert_true(strlen(e.message) > 200);
        assert_true(valid_utf8(e.message));
        assert_string_equal(e.message + strlen(e.message) - 3, "...");
    }
    /* context cut too */
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EINVAL, NULL);
    for (int i = 0; i < 5; i++)
        fdn_err_add_context(&e, "k", "%s", big);
    assert_true(strlen(e.context) < FDN_ERR_CONTEXT_MAX);
    assert_true(valid_utf8(e.context));
}

/* The wrapping idiom: the new message may quote the error's own old message or context (the
 * reference's wrap_error keeps the wrapped text). */
static void set_may_quote_the_errors_own_text(void **state)
{
    (void)state;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_ENOENT, "no such file: %s", "a.json");
    fdn_err_add_context(&e, "path", "%s", "a.json");
    assert_int_equal(
        fdn_err_set(&e, FDN_ECONFIG_NOT_FOUND, "loading config: %s (%s)", e.message, e.context),
        FDN_ECONFIG_NOT_FOUND);
    assert_string_equal(e.message, "loading config: no such file: a.json (path=a.json)");
    assert_string_equal(e.context, ""); /* cleared, as documented */
    assert_int_equal(e.ref_code, 1301);
    /* a message that quotes itself past the field is cut as any other */
    for (int i = 0; i < 20; i++)
        fdn_err_set(&e, FDN_EIO, "%s; %s", e.message, e.message);
    assert_true(strlen(e.message) < FDN_ERR_MSG_MAX);
    assert_true(strncmp(e.message, "loading config: no such file", 28) == 0);
}

static void uuid4_format_unique_unsorted(void **state)
{
    (void)state;
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                             "[0-9a-f]{12}$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char ids[100][FDN_UUID_STR_LEN + 1];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(fdn_uuid4(ids[i]), 0);
        assert_int_equal(strlen(ids[i]), 36);
        assert_int_equal(regexec(&re, ids[i], 0, NULL, 0), 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    bool sorted = true;
    for (int i = 1; i < 100; i++)
        if (strcmp(ids[i - 1], ids[i]) > 0)
            sorted = false;
    assert_false(sorted);
    /* correlation ids made by the context stack match too */
    for (int i = 0; i < 50; i++) {
        char c[FDN_UUID_STR_LEN + 1];
        assert_int_equal(fdn_errctx_push("M", "f"), 0);
        assert_int_equal(fdn_errctx_correlation_id(c), 0);
        assert_int_equal(regexec(&re, c, 0, NULL, 0), 0);
        fdn_errctx_pop();
    }
    regfree(&re);
}

static void recovery_actions_by_type(void **state)
{
    (void)state;
    const char *a[8];
    char op[64];
    size_t n = fdn_err_recovery_actions(FDN_ECONFIG_NOT_FOUND, NULL, a, 8, NULL, 0);
    assert_int_equal(n, 2);
    assert_string_equal(a[0], "Check configuration file");
    assert_string_equal(a[1], "Verify configuration path");
    n = fdn_err_recovery_actions(FDN_ETIMEDOUT, NULL, a, 8, NULL, 0);
    assert_int_equal(n, 3);
    assert_string_equal(a[0], "Increase timeout value");
    n = fdn_err_recovery_actions(FDN_EPARSE, "user_registration", a, 8, op, sizeof(op));
    assert_int_equal(n, 4);
    assert_string_equal(a[0], "Check logs for details");
    assert_string_equal(a[3], "Review user_registration implementation");
    for (size_t i = 0; i < fdn_err_count(); i++) {
        n = fdn_err_recovery_actions(fdn_err_at(i)->code, NULL, a, 8, NULL, 0);
        assert_true(n >= 2 && n <= 3);
        for (size_t k = 0; k < n; k++)
            assert_true(strlen(a[k]) > 0);
    }
    /* count only */
    assert_int_equal(fdn_err_recovery_actions(FDN_ENOMEM, NULL, NULL, 0, NULL, 0), 3);
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_ECONFIG_FORBIDDEN, NULL);
    char m[64];
    assert_int_equal(fdn_err_metric_name(&e, m, sizeof(m)),
                     strlen("foundation.errors.config.runtime"));
    assert_string_equal(m, "foundation.errors.config.runtime");
}

/* Every action counted is stored: an operation without opbuf to write its text into adds no
 * action (the caller reads out[0..n) when n <= cap), and a cut operation text stays UTF-8. */
static void recovery_actions_all_stored(void **state)
{
    (void)state;
    const char *a[8];
    for (size_t i = 0; i < 8; i++)
        a[i] = NULL;
    size_t n = fdn_err_recovery_actions(FDN_EPARSE, "user_registration", a, 8, NULL, 0);
    assert_int_equal(n, 3);
    for (size_t k = 0; k < n; k++)
        assert_non_null(a[k]);
    char op[4];
    n = fdn_err_recovery_actions(FDN_EPARSE, "user_registration", a, 8, op, 0);
    assert_int_equal(n, 3);
    /* a count query with opbuf counts it, as the filling call then stores it */
    char big[64];
    assert_int_equal(fdn_err_recovery_actions(FDN_EPARSE, "x", NULL, 0, big, sizeof(big)), 4);
    /* "Review " + "\xc3\xa9\xc3\xa9" cut in 9 bytes: no half character */
    char small[9];
    n = fdn_err_recovery_actions(FDN_EPARSE, "\xc3\xa9\xc3\xa9", a, 8, small, sizeof(small));
    assert_int_equal(n, 4);
    assert_ptr_equal(a[3], small);
    assert_true(valid_utf8(small));
}

/* ---------------------------------------------------------------- context */

static void no_context_by_default(void **state)
{
    (void)state;
    char c[FDN_UUID_STR_LEN + 1];
    assert_int_equal(fdn_errctx_depth(), 0);
    assert_int_equal(fdn_errctx_operation_id(), 0);
    assert_int_equal(fdn_errctx_correlation_id(c), FDN_ENOENT);
    assert_string_equal(c, "");
    assert_int_equal(fdn_errctx_add_breadcrumb("a", "b"), FDN_ENOENT);
    assert_int_equal(fdn_errctx_set_metadata("k", "v"), FDN_ENOENT);
    char buf[8] = "x";
    assert_int_equal(fdn_errctx_format_breadcrumbs(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    fdn_errctx_pop(); /* no-op */
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EINVAL, NULL);
    assert_string_equal(e.correlation_id, "");
    assert_string_equal(e.breadcrumbs, "");
    assert_int_equal(e.duration_ns, 0);
}

/* A NULL out buffer is bad input: a clear error, with or without a context, never a crash. */
static void correlation_id_null_out(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_correlation_id(NULL), FDN_EINVAL);
    assert_int_equal(fdn_errctx_push("M", "f"), 0);
    assert_int_equal(fdn_errctx_correlation_id(NULL), FDN_EINVAL);
    fdn_errctx_pop();
}

static void nesting_restores_outer(void **state)
{
    (void)state;
    char c1[37], c2[37], c3[37];
    assert_int_equal(fdn_errctx_push("Outer", "run"), 0);
    uint64_t op1 = fdn_errctx_operation_id();
    fdn_errctx_correlation_id(c1);
    assert_int_equal(fdn_errctx_set_metadata("user", "%d", 42), 0);
    assert_int_equal(fdn_errctx_set_metadata("tier", "gold"), 0);

    assert_int_equal(fdn_errctx_push("Inner", "step"), 0);
    assert_int_equal(fdn_errctx_depth(), 2);
    uint64_t op2 = fdn_errctx_operation_id();
    assert_true(op2 != op1 && op2 != 0);
    fdn_errctx_correlation_id(c2);
    assert_string_equal(c1, c2); /* child inherits */
    assert_int_equal(fdn_errctx_breadcrumb_count(), 2);
    char v[16];
    assert_int_equal(fdn_errctx_get_metadata("user", v, sizeof(v)), 0);
    assert_string_equal(v, "42");
    assert_int_equal(fdn_errctx_set_metadata("tier", "silver"), 0); /* child wins */
    assert_int_equal(fdn_errctx_set_metadata("extra", "1"), 0);
    assert_int_equal(fdn_errctx_metadata_count(), 3);

    /* an explicit root inside: fresh correlation id, then back */
    assert_int_equal(fdn_errctx_push_root("Root", "new", NULL), 0);
    fdn_errctx_correlation_id(c3);
    assert_string_not_equal(c3, c1);
    assert_int_equal(fdn_errctx_breadcrumb_count(), 1);
    assert_int_equal(fdn_errctx_metadata_count(), 0);
    fdn_errctx_pop();
    assert_int_equal(fdn_errctx_push_root("Root", "given", "my-corr"), 0);
    fdn_errctx_correlation_id(c3);
    assert_string_equal(c3, "my-corr");
    fdn_errctx_pop();

    fdn_errctx_pop();
    /* outer context is back, untouched */
    assert_int_equal(fdn_errctx_depth(), 1);
    assert_int_equal(fdn_errctx_operation_id(), op1);
    assert_int_equal(fdn_errctx_breadcrumb_count(), 1);
    assert_int_equal(fdn_errctx_get_metadata("tier", v, sizeof(v)), 0);
    assert_string_equal(v, "gold");
    assert_int_equal(fdn_errctx_get_metadata("extra", v, sizeof(v)), FDN_ENOENT);
    assert_int_equal(fdn_errctx_get_metadata("user", v, 2), FDN_ENOBUFS);
    fdn_errctx_pop();
    assert_int_equal(fdn_errctx_depth(), 0);
}

static void metadata_bounded(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("M", "f"), 0);
    for (int i = 0; i < FDN_ERRCTX_META_MAX; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(fdn_errctx_set_metadata(k, "%d", i), 0);
    }
    assert_int_equal(fdn_errctx_set_metadata("one_more", "x"), FDN_ENOSPC);
    assert_int_equal(fdn_errctx_set_metadata("k0", "updated"), 0);
    assert_int_equal(fdn_errctx_set_metadata("", "x"), FDN_EINVAL);
    assert_int_equal(fdn_errctx_metadata_count(), FDN_ERRCTX_META_MAX);
    fdn_errctx_pop();
}

/* Metadata keys become keys of an error's context text (fdn_errctx_enhance): a key that is not
 * a plain word (a space, '=', '"', a control byte) could forge other keys there, so it is
 * refused and nothing changes. */
static void metadata_key_must_be_a_plain_word(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("M", "f"), 0);
    static const char *const bad[] = {
        "x path", "path=/etc/shadow", "a\"b", "a\nb", "a\tb", "a\x7f", " lead", "trail "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fdn_errctx_set_metadata(bad[i], "%s", "v"), FDN_EINVAL);
    assert_int_equal(fdn_errctx_metadata_count(), 0);
    assert_int_equal(fdn_errctx_set_metadata("tenant.id", "%s", "a b"), 0);
    assert_int_equal(fdn_errctx_set_metadata("caf\xc3\xa9-k_2", "%s", "v"), 0);
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EIO, NULL);
    assert_int_equal(fdn_errctx_enhance(&e), 0);
    assert_non_null(strstr(e.context, " tenant.id=\"a b\" caf\xc3\xa9-k_2=v"));
    assert_null(strstr(e.context, "path"));
    fdn_errctx_pop();
}

static void depth_bounded(void **state)
{
    (void)state;
    for (int i = 0; i < FDN_ERRCTX_DEPTH_MAX; i++)
        assert_int_equal(fdn_errctx_push("D", "f"), 0);
    assert_int_equal(fdn_errctx_push("D", "f"), FDN_ENOSPC);
    assert_int_equal(fdn_errctx_push_root("D", "f", NULL), FDN_ENOSPC);
    assert_int_equal(fdn_errctx_depth(), FDN_ERRCTX_DEPTH_MAX);
    for (int i = 0; i < FDN_ERRCTX_DEPTH_MAX; i++)
        fdn_errctx_pop();
    assert_int_equal(fdn_errctx_depth(), 0);
}

static void breadcrumbs_bounded_and_formatted(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("FirstModule", "first_function"), 0);
    assert_int_equal(fdn_errctx_add_breadcrumb("SecondModule", "second_function"), 0);
    assert_int_equal(fdn_errctx_add_breadcrumb("ThirdModule", "third_function"), 0);
    char buf[512];
    size_t n = fdn_errctx_format_breadcrumbs(buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "FirstModule.first_function ("));
    assert_non_null(strstr(buf, " -> SecondModule.second_function ("));
    assert_non_null(strstr(buf, " -> ThirdModule.third_function ("));
    assert_non_null(strstr(buf, "ms ago)"));
    assert_null(strstr(buf, "dropped"));

    for (int i = 0; i < 100; i++) {
        char fn[16];
        snprintf(fn, sizeof(fn), "f%d", i);
        assert_int_equal(fdn_errctx_add_breadcrumb("Loop", fn), 0);
    }
    assert_int_equal(fdn_errctx_breadcrumb_count(), FDN_ERRCTX_CRUMBS_MAX);
    assert_int_equal(fdn_errctx_breadcrumbs_dropped(), 103 - FDN_ERRCTX_CRUMBS_MAX);
    n = fdn_errctx_format_breadcrumbs(buf, sizeof(buf));
    /* the newest crumbs survive, oldest first, the oldest ones are gone */
    assert_non_null(strstr(buf, "Loop.f99 ("));
    assert_null(strstr(buf, "FirstModule"));
    assert_null(strstr(buf, "Loop.f83 ("));
    assert_non_null(strstr(buf, "Loop.f84 ("));
    assert_true(strstr(buf, "Loop.f84") < strstr(buf, "Loop.f99"));
    assert_int_equal(strncmp(buf, "... (87 dropped) -> ", 20), 0);
    /* a child inherits the full ring and the dropped count */
    assert_int_equal(fdn_errctx_push("Child", "c"), 0);
    assert_int_equal(fdn_errctx_breadcrumb_count(), FDN_ERRCTX_CRUMBS_MAX);
    assert_int_equal(fdn_errctx_breadcrumbs_dropped(), 88);
    fdn_errctx_pop();
    /* a small buffer is cut, terminated, and the needed length reported */
    char small[20];
    size_t need = fdn_errctx_format_breadcrumbs(small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    /* the ages may have gained a digit since the first call */
    assert_true(need + 32 >= n && need <= n + 32);
    fdn_errctx_pop();
}

static void long_names_cut_at_utf8_boundary(void **state)
{
    (void)state;
    char name[200];
    size_t o = 0;
    while (o + 2 < sizeof(name)) {
        name[o++] = (char)0xC3;
        name[o++] = (char)0xA9;
    }
    name[o] = '\0';
    assert_int_equal(fdn_errctx_push(name, name), 0);
    char buf[512];
    fdn_errctx_format_breadcrumbs(buf, sizeof(buf));
    assert_true(valid_utf8(buf));
    /* every cut point of a small buffer leaves whole characters only */
    for (size_t cap = 1; cap < 80; cap++) {
        char small[80];
        memset(small, 0xA9, sizeof(small)); /* garbage that looks like continuation bytes */
        size_t need = fdn_errctx_format_breadcrumbs(small, cap);
        assert_true(strlen(small) < cap);
        assert_true(valid_utf8(small));
        /* whole text, or cut losing at most one partial 2-byte character */
        assert_true(strlen(small) == need || strlen(small) + 2 >= cap);
    }
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EINVAL, NULL);
    assert_true(valid_utf8(e.breadcrumbs));
    fdn_errctx_pop();
}

static void duration_increases(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("T", "d"), 0);
    int64_t a = fdn_errctx_duration_ns();
    /* Spin (no sleep) until the library's monotonic clock, the one the context measures with,
     * has moved by 1 ms. Not CLOCK_MONOTONIC: the library's clock may read from the TSC and
     * then agrees with clock_gettime only within FDN__CLOCK_TSC_ERROR_NS (100 us), so 1 ms of
     * CLOCK_MONOTONIC could show as a little less (seen once in CI under ASan and load). The
     * library's clock never goes back within a thread, so this bound is exact. */
    int64_t t0 = fdn_clock_mono_ns(NULL);
    while (fdn_clock_mono_ns(NULL) - t0 < 1000000)
        ;
    int64_t b = fdn_errctx_duration_ns();
    assert_true(a > 0);
    assert_true(b >= a + 1000000);
    fdn_errctx_pop();
    assert_int_equal(fdn_errctx_duration_ns(), 0);
}

static void err_set_fills_context(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("Config", "update"), 0);
    char c[37];
    fdn_errctx_correlation_id(c);
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_ECONFIG_FORBIDDEN, NULL);
    assert_string_equal(e.correlation_id, c);
    assert_non_null(strstr(e.breadcrumbs, "Config.update ("));
    assert_true(e.duration_ns > 0);
    fdn_errctx_pop();
}

static void enhance_keeps_code_and_message(void **state)
{
    (void)state;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EEXTERNAL, "upstream said no");
    fdn_err_add_context(&e, "status", "%d", 503);
    assert_int_equal(fdn_errctx_enhance(&e), FDN_ENOENT);
    assert_string_equal(e.context, "status=503");
    assert_int_equal(fdn_errctx_push("Client", "call"), 0);
    fdn_errctx_set_metadata("host", "api.example");
    char c[37];
    fdn_errctx_correlation_id(c);
    assert_int_equal(fdn_errctx_enhance(&e), 0);
    assert_int_equal(e.code, FDN_EEXTERNAL);
    assert_string_equal(e.message, "upstream said no");
    assert_string_equal(e.correlation_id, c);
    assert_non_null(strstr(e.breadcrumbs, "Client.call ("));
    assert_int_equal(strncmp(e.context, "status=503 module=Client function=call operation_id=", 52),
                     0);
    assert_non_null(strstr(e.context, " host=api.example"));
    assert_true(e.duration_ns > 0);
    assert_int_equal(fdn_errctx_enhance(NULL), FDN_EINVAL);
    fdn_errctx_pop();
}

typedef struct hook_rec {
    int calls;
    int code;
    char metric[96];
    char corr[37];
} hook_rec_t;

static void record_hook(const fdn_error_t *err, void *user)
{
    hook_rec_t *r = user;
    r->calls++;
    r->code = err->code;
    fdn_err_metric_name(err, r->metric, sizeof(r->metric));
    memcpy(r->corr, err->correlation_id, sizeof(r->corr));
}

typedef struct run_arg {
    int ret;
    fdn_error_t *fill; /* when set, the function fills it itself */
    uint64_t seen_op;
    size_t seen_depth;
} run_arg_t;

static int run_fn(void *p)
{
    run_arg_t *a = p;
    a->seen_op = fdn_errctx_operation_id();
    a->seen_depth = fdn_errctx_depth();
    fdn_errctx_set_metadata("attempt", "%d", 3);
    if (a->fill != NULL && a->ret < 0)
        fdn_err_set(a->fill, a->ret, "own message");
    return a->ret;
}

/* A function that leaves contexts pushed (a missing pop on an early return). */
static int leaky_fn(void *p)
{
    int ret = *(int *)p;
    (void)fdn_errctx_push("Leak", "one");
    (void)fdn_errctx_push("Leak", "two");
    return ret;
}

static void run_restores_outer_context_when_fn_leaks(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("Outer", "op"), 0);
    uint64_t outer_op = fdn_errctx_operation_id();
    for (int i = 0; i < 2; i++) {
        int ret = i == 0 ? 0 : FDN_EIO;
        fdn_error_t e = FDN_ERROR_INIT;
        assert_int_equal(fdn_errctx_run("Mod", "leaky", leaky_fn, &ret, &e), ret);
        assert_int_equal(fdn_errctx_depth(), 1);
        assert_int_equal(fdn_errctx_operation_id(), outer_op);
    }
    fdn_errctx_pop();
    assert_int_equal(fdn_errctx_depth(), 0);
}

static void run_passes_values_and_fills_only_on_failure(void **state)
{
    (void)state;
    hook_rec_t rec = {0};
    fdn_errctx_set_error_hook(record_hook, &rec);

    fdn_error_t e = FDN_ERROR_INIT;
    e.code = 12345; /* sentinel: untouched on success */
    run_arg_t a = {.ret = 7};
    assert_int_equal(fdn_errctx_run("Mod", "ok", run_fn, &a, &e), 7);
    assert_int_equal(e.code, 12345);
    assert_int_equal(rec.calls, 0);
    assert_true(a.seen_op != 0);
    assert_int_equal(a.seen_depth, 1);
    assert_int_equal(fdn_errctx_depth(), 0); /* popped */
    a.ret = 0;
    assert_int_equal(fdn_errctx_run("Mod", "ok", run_fn, &a, &e), 0);
    assert_int_equal(e.code, 12345);

    /* failure: default message, context, crumbs, duration, correlation, hook */
    assert_int_equal(fdn_errctx_push("Outer", "caller"), 0);
    char outer_corr[37];
    fdn_errctx_correlation_id(outer_corr);
    a.ret = FDN_ETIMEDOUT;
    assert_int_equal(fdn_errctx_run("Mod", "slow", run_fn, &a, &e), FDN_ETIMEDOUT);
    assert_int_equal(fdn_errctx_depth(), 1); /* outer restored */
    assert_int_equal(a.seen_depth, 2);
    assert_int_equal(e.code, FDN_ETIMEDOUT);
    assert_string_equal(e.message, "Operation timeout");
    assert_string_equal(e.correlation_id, outer_corr);
    assert_non_null(strstr(e.breadcrumbs, "Outer.caller ("));
    assert_non_null(strstr(e.breadcrumbs, " -> Mod.slow ("));
    assert_non_null(strstr(e.context, "module=Mod function=slow operation_id="));
    assert_non_null(strstr(e.context, "attempt=3"));
    assert_true(e.duration_ns > 0);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.code, FDN_ETIMEDOUT);
    assert_string_equal(rec.metric, "foundation.errors.external.timeout");
    assert_string_equal(rec.corr, outer_corr);
    fdn_errctx_pop();

    /* fn fills err itself: its message is kept */
    fdn_error_t e2 = FDN_ERROR_INIT;
    run_arg_t b = {.ret = FDN_EIO, .fill = &e2};
    assert_int_equal(fdn_errctx_run("Mod", "io", run_fn, &b, &e2), FDN_EIO);
    assert_string_equal(e2.message, "own message");
    assert_non_null(strstr(e2.context, "function=io"));
    assert_int_equal(rec.calls, 2);

    /* err NULL: hook still called; per-call hook wins over the process hook */
    hook_rec_t mine = {0};
    b.fill = NULL;
    assert_int_equal(fdn_errctx_run_hooked("Mod", "x", run_fn, &b, NULL, record_hook, &mine),
                     FDN_EIO);
    assert_int_equal(mine.calls, 1);
    assert_int_equal(rec.calls, 2);

    /* context hook wins over the process hook, and is inherited */
    hook_rec_t ctxh = {0};
    assert_int_equal(fdn_errctx_push("H", "h"), 0);
    assert_int_equal(fdn_errctx_set_context_hook(record_hook, &ctxh), 0);
    assert_int_equal(fdn_errctx_run("Mod", "y", run_fn, &b, NULL), FDN_EIO);
    assert_int_equal(ctxh.calls, 1);
    assert_int_equal(rec.calls, 2);
    fdn_errctx_pop();

    fdn_errctx_set_error_hook(NULL, NULL);
    assert_int_equal(fdn_errctx_run("Mod", "z", run_fn, &b, NULL), FDN_EIO);
    assert_int_equal(rec.calls, 2);
    assert_int_equal(fdn_errctx_run("Mod", "z", NULL, NULL, &e), FDN_EINVAL);
}

/* A function that pushes a root context of another operation and fails without popping it:
 * the run's error carries the run's correlation id and crumbs, not the leaked context's. */
#define OTHER_CORR "00000000-0000-4000-8000-000000000000"
static int leaks_root_fn(void *p)
{
    (void)p;
    (void)fdn_errctx_push_root("Other", "op", OTHER_CORR);
    (void)fdn_errctx_push("Other", "deeper");
    return FDN_EIO;
}

static void run_failure_reports_its_own_context_when_fn_leaks(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("Outer", "op"), 0);
    char corr[37];
    assert_int_equal(fdn_errctx_correlation_id(corr), 0);
    for (int with_err = 0; with_err < 2; with_err++) {
        fdn_error_t e = FDN_ERROR_INIT;
        hook_rec_t mine = {0};
        assert_int_equal(fdn_errctx_run_hooked("Mod", "leaky", leaks_root_fn, NULL,
                                               with_err ? &e : NULL, record_hook, &mine),
                         FDN_EIO);
        assert_int_equal(fdn_errctx_depth(), 1);
        assert_int_equal(mine.calls, 1);
        assert_string_equal(mine.corr, corr); /* what the hook saw */
        if (with_err) {
            assert_string_equal(e.correlation_id, corr);
            assert_null(strstr(e.breadcrumbs, "Other."));
            assert_non_null(strstr(e.breadcrumbs, "Outer.op ("));
            assert_non_null(strstr(e.breadcrumbs, " -> Mod.leaky ("));
            assert_non_null(strstr(e.context, "module=Mod function=leaky operation_id="));
        }
    }
    fdn_errctx_pop();
}

/* A function that pops one context too many (the run's own) and then runs a step whose name
 * lives on its own stack: the run must not read its popped frame (whose slot now holds the
 * step's names, dead once fn returned); the error gets the caller's context. */
static int step_ok(void *p)
{
    (void)p;
    return 0;
}

static int overpops_fn(void *p)
{
    (void)p;
    fdn_errctx_pop();
    char name[16];
    snprintf(name, sizeof(name), "Step%d", 1);
    (void)fdn_errctx_run(name, name, step_ok, NULL, NULL);
    return FDN_EIO;
}

static void run_failure_after_fn_popped_its_context(void **state)
{
    (void)state;
    assert_int_equal(fdn_errctx_push("Outer", "op"), 0);
    char corr[37];
    assert_int_equal(fdn_errctx_correlation_id(corr), 0);
    fdn_error_t e = FDN_ERROR_INIT;
    hook_rec_t mine = {0};
    assert_int_equal(
        fdn_errctx_run_hooked("Mod", "overpop", overpops_fn, NULL, &e, record_hook, &mine),
        FDN_EIO);
    assert_int_equal(fdn_errctx_depth(), 1); /* the caller's context is still there */
    assert_int_equal(mine.calls, 1);
    assert_int_equal(e.code, FDN_EIO);
    assert_null(strstr(e.context, "Step"));
    assert_null(strstr(e.breadcrumbs, "Step"));
    assert_string_equal(e.correlation_id, corr);
    fdn_errctx_pop();
}

/* The per-call hook of fdn_errctx_run_hooked is the hook "while fn runs": its user may live
 * on the caller's stack. A capture made inside fn (a task submitted from fn) may be adopted
 * after the call returned, so it carries the hook the context had without the call's. */
static void count_hook(const fdn_error_t *err, void *user)
{
    (void)err;
    (*(int *)user)++;
}

static int capture_fn(void *p)
{
    return fdn_errctx_capture((fdn_errctx_capture_t **)p);
}

static int capture_in_child_fn(void *p)
{
    return fdn_errctx_run("Mod", "child", capture_fn, p, NULL);
}

static void __attribute__((noinline))
run_with_local_hook(fdn_errctx_fn fn, fdn_errctx_capture_t **cap)
{
    int calls = 0; /* dead once this returns */
    assert_int_equal(fdn_errctx_run_hooked("Mod", "submit", fn, cap, NULL, count_hook, &calls), 0);
    assert_int_equal(calls, 0);
}

static void capture_does_not_carry_the_call_hook(void **state)
{
    (void)state;
    hook_rec_t ctxh = {0};
    assert_int_equal(fdn_errctx_push("Outer", "op"), 0);
    assert_int_equal(fdn_errctx_set_context_hook(record_hook, &ctxh), 0);
    fdn_errctx_fn fns[] = {capture_fn, capture_in_child_fn};
    for (int i = 0; i < 2; i++) {
        fdn_errctx_capture_t *cap = NULL;
        run_with_local_hook(fns[i], &cap);
        assert_non_null(cap);
        assert_int_equal(fdn_errctx_adopt(cap), 0);
        run_arg_t a = {.ret = FDN_EIO};
        assert_int_equal(fdn_errctx_run("Task", "later", run_fn, &a, NULL), FDN_EIO);
        assert_int_equal(ctxh.calls, i + 1); /* the context's own hook */
        fdn_errctx_pop();
        fdn_errctx_capture_free(cap);
    }
    fdn_errctx_pop();
}

/* fdn_errctx_run makes its frame only when read: what the run's function reads is what an
 * eager push would have given (names, crumbs, a correlation id that stays put, the parent's
 * metadata), at every depth of nested runs. */
typedef struct lazy_seen {
    char corr[2][37];
    size_t crumbs_outer, crumbs_inner;
    char meta[32];
    char trail[512];
} lazy_seen_t;

static int lazy_inner(void *p)
{
    lazy_seen_t *s = p;
    s->crumbs_inner = fdn_errctx_breadcrumb_count();
    (void)fdn_errctx_get_metadata("tenant", s->meta, sizeof(s->meta));
    fdn_errctx_format_breadcrumbs(s->trail, sizeof(s->trail));
    return fdn_errctx_correlation_id(s->corr[1]);
}

static int lazy_outer(void *p)
{
    lazy_seen_t *s = p;
    /* nothing read yet: a nested run and an explicit push over the lazy frame */
    assert_int_equal(fdn_errctx_push("Explicit", "push"), 0);
    fdn_errctx_pop();
    assert_int_equal(fdn_errctx_set_metadata("tenant", "t%d", 7), 0);
    s->crumbs_outer = fdn_errctx_breadcrumb_count();
    assert_int_equal(fdn_errctx_correlation_id(s->corr[0]), 0);
    return fdn_errctx_run("Inner", "step", lazy_inner, s, NULL);
}

static void lazy_frames_read_as_eager_ones(void **state)
{
    (void)state;
    lazy_seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(fdn_errctx_run("Outer", "job", lazy_outer, &s, NULL), 0);
    assert_int_equal(fdn_errctx_depth(), 0);
    assert_int_equal(strlen(s.corr[0]), 36);
    assert_string_equal(s.corr[0], s.corr[1]); /* one operation, one id */
    assert_int_equal(s.crumbs_outer, 1);
    assert_int_equal(s.crumbs_inner, 2);
    assert_string_equal(s.meta, "t7"); /* inherited from the outer frame */
    assert_non_null(strstr(s.trail, "Outer.job ("));
    assert_non_null(strstr(s.trail, " -> Inner.step ("));
    /* the next root run is another operation */
    lazy_seen_t t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(fdn_errctx_run("Outer", "job", lazy_outer, &t, NULL), 0);
    assert_string_not_equal(t.corr[0], s.corr[0]);
}

/* Two contexts, even in different threads, never share operation or correlation ids. */
#define ID_THREADS 4
#define ID_PER     200
typedef struct ids {
    uint64_t op[ID_PER];
    char corr[ID_PER][37];
} ids_t;

static void *ids_thread(void *p)
{
    ids_t *ids = p;
    for (int i = 0; i < ID_PER; i++) {
        if (fdn_errctx_push("T", "ids") != 0)
            return p;
        ids->op[i] = fdn_errctx_operation_id();
        fdn_errctx_correlation_id(ids->corr[i]);
        fdn_errctx_pop();
    }
    return NULL;
}

static int cmp_corr(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void ids_never_shared(void **state)
{
    (void)state;
    static ids_t ids[ID_THREADS];
    test_threads_t th;
    test_threads_init(&th, 0);
    test_threads_start_n(&th, ID_THREADS, ids_thread, ids, sizeof(ids[0]));
    test_threads_join(&th);
    for (int i = 0; i < ID_THREADS; i++)
        assert_null(th.ret[i]);
    static uint64_t ops[ID_THREADS * ID_PER];
    static char corrs[ID_THREADS * ID_PER][37];
    for (int t = 0; t < ID_THREADS; t++)
        for (int i = 0; i < ID_PER; i++) {
            ops[t * ID_PER + i] = ids[t].op[i];
            memcpy(corrs[t * ID_PER + i], ids[t].corr[i], 37);
        }
    test_expect_distinct_u64(ops, ID_THREADS * ID_PER, "operation id");
    qsort(corrs, ID_THREADS * ID_PER, 37, cmp_corr);
    for (int i = 1; i < ID_THREADS * ID_PER; i++)
        assert_string_not_equal(corrs[i], corrs[i - 1]);
    assert_true(ops[0] != 0);
}

typedef struct seen {
    size_t depth;
    uint64_t op;
    char corr[37];
    char meta[16];
    size_t crumbs;
    char err_corr[37];
} seen_t;

static void *adopt_thread(void *p)
{
    void **args = p;
    const fdn_errctx_capture_t *cap = args[0];
    seen_t *s = args[1];
    if (fdn_errctx_depth() != 0)
        return p;
    if (fdn_errctx_adopt(cap) != 0)
        return p;
    s->depth = fdn_errctx_depth();
    s->op = fdn_errctx_operation_id();
    fdn_errctx_correlation_id(s->corr);
    fdn_errctx_get_metadata("request", s->meta, sizeof(s->meta));
    s->crumbs = fdn_errctx_breadcrumb_count();
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EIO, NULL);
    memcpy(s->err_corr, e.correlation_id, 37);
    fdn_errctx_pop();
    return fdn_errctx_depth() == 0 ? NULL : p;
}

static void context_travels_to_thread(void **state)
{
    (void)state;
    fdn_errctx_capture_t *cap = NULL;
    assert_int_equal(fdn_errctx_capture(&cap), FDN_ENOENT);
    assert_null(cap);
    assert_int_equal(fdn_errctx_adopt(NULL), FDN_EINVAL);

    assert_int_equal(fdn_errctx_push("Api", "handle"), 0);
    fdn_errctx_set_metadata("request", "r-17");
    fdn_errctx_add_breadcrumb("Api", "parse");
    char corr[37];
    fdn_errctx_correlation_id(corr);
    uint64_t op = fdn_errctx_operation_id();
    assert_int_equal(fdn_errctx_capture(&cap), 0);
    fdn_errctx_pop();

    seen_t s1 = {0}, s2 = {0};
    void *a1[2] = {cap, &s1}, *a2[2] = {cap, &s2};
    test_threads_t th;
    test_threads_init(&th, 0);
    test_threads_start(&th, adopt_thread, a1);
    test_threads_start(&th, adopt_thread, a2);
    test_threads_join(&th);
    assert_null(th.ret[0]);
    assert_null(th.ret[1]);
    seen_t *ss[2] = {&s1, &s2};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ss[i]->depth, 1);
        assert_int_equal(ss[i]->op, op);
        assert_string_equal(ss[i]->corr, corr);
        assert_string_equal(ss[i]->err_corr, corr);
        assert_string_equal(ss[i]->meta, "r-17");
        assert_int_equal(ss[i]->crumbs, 2);
    }
    fdn_errctx_capture_free(cap);
    fdn_errctx_capture_free(NULL);
}

typedef struct task_seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    char corr[37];
    char err_corr[37];
    size_t crumbs;
    size_t depth_after;
} task_seen_t;

static int ctx_task(void *p)
{
    task_seen_t *s = p;
    fdn_errctx_add_breadcrumb("Worker", "task");
    char c[37];
    fdn_errctx_correlation_id(c);
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_err_set(&e, FDN_EINTERNAL, "task failed");
    pthread_mutex_lock(&s->mu);
    memcpy(s->corr, c, 37);
    memcpy(s->err_corr, e.correlation_id, 37);
    s->crumbs = fdn_errctx_breadcrumb_count();
    s->done++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return FDN_EINTERNAL;
}

static int depth_task(void *p)
{
    task_seen_t *s = p;
    pthread_mutex_lock(&s->mu);
    s->depth_after = fdn_errctx_depth();
    s->done++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void context_travels_into_task(void **state)
{
    (void)state;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    o.workers = 1;
    o.queue_capacity = 4;
    fdn_tasks_t *tp = NULL;
    assert_int_equal(fdn_tasks_create(&tp, &o), 0);
    task_seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

    assert_int_equal(fdn_errctx_push("Submitter", "go"), 0);
    char corr[37];
    fdn_errctx_correlation_id(corr);
    assert_int_equal(fdn_tasks_submit(tp, ctx_task, &s), 0);
    fdn_errctx_pop();
    /* without a context the worker runs with an empty stack (the adopted one was popped) */
    assert_int_equal(fdn_tasks_submit(tp, depth_task, &s), 0);

    pthread_mutex_lock(&s.mu);
    while (s.done < 2)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    assert_string_equal(s.corr, corr);
    assert_string_equal(s.err_corr, corr);
    assert_int_equal(s.crumbs, 2);
    assert_int_equal(s.depth_after, 0);
    assert_int_equal(fdn_tasks_shutdown(tp, -1), 0);
    fdn_tasks_stats_t st;
    assert_int_equal(fdn_tasks_stats(tp, &st), 0);
    assert_int_equal(st.completed, 2);
    assert_int_equal(st.failed, 1);
    fdn_tasks_destroy(tp);
}

/* A failed assertion longjmps out of a test: never let its contexts leak into the next. */
static int clear_ctx(void **state)
{
    (void)state;
    while (fdn_errctx_depth() > 0)
        fdn_errctx_pop();
    fdn_errctx_set_error_hook(NULL, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(every_code_has_name_message_and_row, clear_ctx),
        cmocka_unit_test_teardown(table_retry_column_agrees_with_rule, clear_ctx),
        cmocka_unit_test_teardown(retry_delays, clear_ctx),
        cmocka_unit_test_teardown(format_reference_to_string, clear_ctx),
        cmocka_unit_test_teardown(context_escapes_quotes_and_backslashes, clear_ctx),
        cmocka_unit_test_teardown(context_long_key_value_cut_not_dropped, clear_ctx),
        cmocka_unit_test(context_items_read_back),
        cmocka_unit_test_teardown(json_parses_with_every_field, clear_ctx),
        cmocka_unit_test_teardown(json_replaces_invalid_utf8, clear_ctx),
        cmocka_unit_test_teardown(message_cut_at_utf8_boundary, clear_ctx),
        cmocka_unit_test_teardown(set_may_quote_the_errors_own_text, clear_ctx),
        cmocka_unit_test_teardown(uuid4_format_unique_unsorted, clear_ctx),
        cmocka_unit_test_teardown(recovery_actions_by_type, clear_ctx),
        cmocka_unit_test_teardown(recovery_actions_all_stored, clear_ctx),
        cmocka_unit_test_teardown(no_context_by_default, clear_ctx),
        cmocka_unit_test_teardown(correlation_id_null_out, clear_ctx),
        cmocka_unit_test_teardown(nesting_restores_outer, clear_ctx),
        cmocka_unit_test_teardown(metadata_bounded, clear_ctx),
        cmocka_unit_test_teardown(metadata_key_must_be_a_plain_word, clear_ctx),
        cmocka_unit_test_teardown(depth_bounded, clear_ctx),
        cmocka_unit_test_teardown(breadcrumbs_bounded_and_formatted, clear_ctx),
        cmocka_unit_test_teardown(long_names_cut_at_utf8_boundary, clear_ctx),
        cmocka_unit_test_teardown(duration_increases, clear_ctx),
        cmocka_unit_test_teardown(err_set_fills_context, clear_ctx),
        cmocka_unit_test_teardown(enhance_keeps_code_and_message, clear_ctx),
        cmocka_unit_test_teardown(run_passes_values_and_fills_only_on_failure, clear_ctx),
        cmocka_unit_test_teardown(ids_never_shared, clear_ctx),
        cmocka_unit_test_teardown(context_travels_to_thread, clear_ctx),
        cmocka_unit_test_teardown(context_travels_into_task, clear_ctx),
        cmocka_unit_test_teardown(run_restores_outer_context_when_fn_leaks, clear_ctx),
        cmocka_unit_test_teardown(lazy_frames_read_as_eager_ones, clear_ctx),
        cmocka_unit_test_teardown(run_failure_reports_its_own_context_when_fn_leaks, clear_ctx),
        cmocka_unit_test_teardown(run_failure_after_fn_popped_its_context, clear_ctx),
        cmocka_unit_test_teardown(capture_does_not_carry_the_call_hook, clear_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
