/* Failing-allocator sweep of include/fdn/common.h (tests/alloc/README.md): the public
 * allocation functions fail as their allocator does, and a failed resize keeps the block;
 * fdn_json_loadb answers FDN_ENOMEM, never a value from truncated text or a parse error;
 * fdn_json_dumps answers FDN_ENOMEM, never a text with a member left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include <fdn/common.h>
#include <fdn/error.h>

#include "alloc_sweep.h"

static void sweep_malloc_calloc(void **state)
{
    (void)state;
    SWEEP(sw, fdn_malloc, 0)
    {
        sweep_arm(&sw);
        char *p = fdn_malloc(32);
        if (!sweep_failed(&sw, p == NULL ? FDN_ENOMEM : 0)) {
            memset(p, 'x', 32);
            fdn_free(p);
        }
    }
    SWEEP(sw, fdn_calloc, 0)
    {
        sweep_arm(&sw);
        unsigned char *p = fdn_calloc(8, 4);
        if (!sweep_failed(&sw, p == NULL ? FDN_ENOMEM : 0)) {
            for (size_t i = 0; i < 32; i++)
                assert_int_equal(p[i], 0);
            fdn_free(p);
        }
    }
}

static void sweep_realloc(void **state)
{
    (void)state;
    SWEEP(sw, fdn_realloc, 0)
    {
        char *p = fdn_malloc(4);
        assert_non_null(p);
        memcpy(p, "abc", 4);
        sweep_arm(&sw);
        char *q = fdn_realloc(p, 1 << 16);
        if (sweep_failed(&sw, q == NULL ? FDN_ENOMEM : 0)) {
            assert_string_equal(p, "abc"); /* the block is kept as it was */
            fdn_free(p);
        } else {
            assert_string_equal(q, "abc");
            fdn_free(q);
        }
    }
}

/* Long tokens, so that jansson's lexer grows its token buffer (the growth jansson 2.14 ignores
 * when it fails: a truncated key, or a read past the buffer). */
static const char doc[] = "{\"a-key-long-enough-to-grow-the-lexer-buffer-twice-over-000000\": "
                          "\"a string value that is long enough to grow it as well, 0123456789"
                          "abcdefghijklmnopqrstuvwxyz\", \"n\": [1, 2.5, true, null]}";

static void sweep_json_loadb(void **state)
{
    (void)state;
    SWEEP(sw, fdn_json_loadb, 0)
    {
        json_t *v = (json_t *)1;
        json_error_t je;
        sweep_arm(&sw);
        int rc = fdn_json_loadb(doc, sizeof(doc) - 1, JSON_REJECT_DUPLICATES, &v, &je);
        if (sweep_failed(&sw, rc)) {
            assert_null(v);
        } else {
            /* never a value from cut-short text */
            assert_int_equal(json_object_size(v), 2);
            const char *s = json_string_value(
                json_object_get(v, "a-key-long-enough-to-grow-the-lexer-buffer-twice-over-000000"));
            assert_non_null(s);
            assert_int_equal(strlen(s), 91);
            assert_int_equal(json_array_size(json_object_get(v, "n")), 4);
            json_decref(v);
        }
    }
    SWEEP(sw, fdn_json_loadb, 0) /* bad text: FDN_EPARSE normally, FDN_ENOMEM when short */
    {
        json_t *v = (json_t *)1;
        json_error_t je;
        sweep_arm(&sw);
        int rc = fdn_json_loadb(doc, sizeof(doc) - 2, 0, &v, &je); /* the closing brace cut */
        sweep_failed_vs(&sw, rc, FDN_EPARSE);
        assert_null(v);
    }
}

/* fdn_json_dumps gives the whole text or FDN_ENOMEM: jansson 2.14's json_dumps, failed in
 * the same places, returned texts with object keys left out (`{":1,...`). */
static void sweep_json_dumps(void **state)
{
    (void)state;
    static const size_t flags[] = {JSON_COMPACT, JSON_COMPACT | JSON_SORT_KEYS,
                                   JSON_INDENT(2) | JSON_PRESERVE_ORDER};
    json_error_t je;
    json_t *v = json_loads(doc, 0, &je); /* (the test's own parse: no sweep armed) */
    assert_non_null(v);
    assert_int_equal(
        json_object_set_new(v, "nested",
                            json_pack("{s:[{s:s},{s:i}], s:{}}", "k", "a-longer-key-for-the-buffer",
                                      "value", "n", 7, "empty")),
        0);
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        char *want = NULL;
        size_t want_len = 0;
        assert_int_equal(fdn_json_dumps(v, flags[f], &want, &want_len), 0);
        assert_int_equal(strlen(want), want_len);
        SWEEP(sw, fdn_json_dumps, 0)
        {
            char *out = (char *)1;
            size_t len = 1;
            sweep_arm(&sw);
            int rc = fdn_json_dumps(v, flags[f], &out, &len);
            if (sweep_failed(&sw, rc)) {
                assert_null(out);
                assert_int_equal(len, 0);
            } else {
                assert_int_equal(len, want_len);
                assert_string_equal(out, want);
                fdn_free(out);
            }
        }
        fdn_free(want);
    }
    /* what it refuses: no value, nowhere to put the text, a scalar without JSON_ENCODE_ANY */
    char *out = (char *)1;
    assert_int_equal(fdn_json_dumps(NULL, 0, &out, NULL), FDN_EINVAL);
    assert_null(out);
    assert_int_equal(fdn_json_dumps(v, 0, NULL, NULL), FDN_EINVAL);
    json_t *n = json_integer(5);
    assert_int_equal(fdn_json_dumps(n, JSON_COMPACT, &out, NULL), FDN_EINVAL);
    assert_int_equal(fdn_json_dumps(n, JSON_ENCODE_ANY, &out, NULL), 0);
    assert_string_equal(out, "5");
    fdn_free(out);
    json_decref(n);
    json_decref(v);
}

/* The version, and fdn_free, allocate nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    const char *v = NULL;
    uint32_t hex = 0;
    NOALLOC_SWEEP(fdn_version, v = fdn_version());
    NOALLOC_SWEEP(fdn_version_hex, hex = fdn_version_hex());
    assert_non_null(v);
    assert_int_not_equal(hex, 0);
    void *p = fdn_malloc(8);
    assert_non_null(p);
    NOALLOC_SWEEP(fdn_free, fdn_free(p));
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_malloc_calloc),        cmocka_unit_test(sweep_realloc),
        cmocka_unit_test(sweep_json_loadb),           cmocka_unit_test(sweep_json_dumps),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
