/* libFuzzer target: the admin's error body (fdn__http_error_json, src/admin/http_parse.c),
 * whose "context" object is parsed back from the error's context text ("key=value
 * key2=\"a value\"", as fdn_err_add_context writes it) by context_object: the one parser of
 * the admin with no target of its own (the dispatch target reaches it only with the contexts
 * the services write). Input: byte 0 picks the code; byte 1 bit 0 the mode:
 *  - raw (0): the rest up to a NUL is the message, the bytes after it the context text, both
 *    copied into the error as they are (cut to its fields; any bytes, not UTF-8 too);
 *  - pairs (1): the rest is lines, each a key (its first byte picks one of KEYS, each used
 *    once) and a value (the line's other bytes), added with fdn_err_add_context.
 * Oracles: the body is {"error":{code, type, category, severity, message, name[, context]}}
 * with strings where strings belong, dumps and parses back; a context is an object of
 * strings; in pairs mode the context holds exactly the pairs added, each value that is UTF-8
 * equal to what was added (also one holding '"' or '\\', which the context text escapes inside
 * quotes: a client's config path cannot forge another key) and the others left out, as
 * context_object documents. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin_int.h"
#include "admin/http_jw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int CODES[] = {FDN_EINVAL,
                            FDN_ENOENT,
                            FDN_ECONFIG_FORBIDDEN,
                            FDN_ECONFIG_STRUCTURE,
                            FDN_ETOO_LARGE,
                            FDN_ERATE_LIMITED,
                            FDN_ENOSPC,
                            FDN_EPARSE,
                            FDN_EACCES,
                            FDN_EUNAVAILABLE,
                            FDN_EINTERNAL,
                            -99999};
#define NCODES (sizeof CODES / sizeof CODES[0])

static const char *const KEYS[] = {"path", "rule", "value_type", "reason", "max_types", "file"};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static bool is_string_member(json_t *o, const char *k)
{
    return json_is_string(json_object_get(o, k));
}

/* What pairs mode added: the value of each key (NULL: not added). */
typedef struct added {
    char val[NKEYS][FDN_ERR_CONTEXT_MAX];
    bool set[NKEYS];
} added_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int code = CODES[data[0] % NCODES];
    bool pairs = (data[1] & 1) != 0;
    const char *in = (const char *)data + 2;
    size_t n = size - 2;
    fdn_error_t err = FDN_ERROR_INIT;
    (void)fdn_err_set(&err, code, "fuzz");
    static added_t add;
    memset(add.set, 0, sizeof add.set);
    if (!pairs) {
        const char *nul = memchr(in, '\0', n);
        size_t ml = nul != NULL ? (size_t)(nul - in) : n;
        if (ml > 0) {
            size_t cut = ml < sizeof err.message ? ml : sizeof err.message - 1;
            memcpy(err.message, in, cut);
            err.message[cut] = '\0';
        }
        if (nul != NULL) {
            size_t cl = n - ml - 1;
            if (cl >= sizeof err.context)
                cl = sizeof err.context - 1;
            memcpy(err.context, nul + 1, cl);
            err.context[cl] = '\0';
        }
    } else {
        size_t used = 0; /* bytes of context the pairs take, kept below the field's size */
        for (size_t i = 0; i < n;) {
            const char *nl = memchr(in + i, '\n', n - i);
            size_t ll = nl != NULL ? (size_t)(nl - (in + i)) : n - i;
            const char *line = in + i;
            i += ll + 1;
            if (ll == 0)
                continue;
            size_t k = (unsigned char)line[0] % NKEYS;
            if (add.set[k])
                continue;
            char v[128];
            size_t vl = 0, esc = 0;
            for (size_t j = 1; j < ll && vl < sizeof v - 1; j++) {
                char c = line[j];
                if (c == '\0')
                    break;
                esc += c == '"' || c == '\\';
                v[vl++] = c;
            }
            v[vl] = '\0';
            /* key, '=', value and its escapes, two quotes, a space: only pairs that fit whole */
            if (used + strlen(KEYS[k]) + vl + esc + 4 >= sizeof err.context)
                break;
            used += strlen(KEYS[k]) + vl + esc + 4;
            fdn_err_add_context(&err, KEYS[k], "%s", v);
            memcpy(add.val[k], v, vl + 1);
            add.set[k] = true;
        }
    }

    json_t *j = fdn__http_error_json(code, &err);
    if (j == NULL)
        abort(); /* (no allocation fails here) */
    json_t *e = json_object_get(j, "error");
    if (!json_is_object(e) || json_object_size(j) != 1 ||
        !json_is_integer(json_object_get(e, "code")) || !is_string_member(e, "type") ||
        !is_string_member(e, "category") || !is_string_member(e, "severity") ||
        !is_string_member(e, "message") || !is_string_member(e, "name"))
        abort();
    json_t *ctx = json_object_get(e, "context");
    if (ctx != NULL) {
        const char *key;
        json_t *v;
        if (!json_is_object(ctx) || json_object_size(ctx) == 0)
            abort();
        json_object_foreach(ctx, key, v)
        {
            if (!json_is_string(v) || key[0] == '\0' || strlen(key) >= 64 ||
                strchr(key, ' ') != NULL)
                abort();
        }
    }
    if (pairs) {
        size_t want = 0;
        for (size_t k = 0; k < NKEYS; k++) {
            json_t *v = json_object_get(ctx, KEYS[k]);
            bool utf8 = add.set[k] && fdn__jw_utf8_valid(add.val[k]);
            want += utf8;
            if (utf8 != (v != NULL))
                abort(); /* a UTF-8 value read back, the others left out */
            if (utf8 && strcmp(json_string_value(v), add.val[k]) != 0)
                abort();
        }
        if (json_object_size(ctx) != want)
            abort();
    }
    char *text = json_dumps(j, JSON_COMPACT);
    if (text == NULL)
        abort();
    json_t *back = json_loads(text, 0, NULL);
    if (back == NULL || !json_equal(back, j))
        abort();
    json_decref(back);
    fdn_free(text); /* jansson allocates through the library allocator */
    json_decref(j);
    return 0;
}
