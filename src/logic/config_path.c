/*
 * DESIGN: config path logic (reference §1.5.1, §1.5.2, env overrides).
 * Pure functions: no locks, no globals beyond constant tables, no I/O. Threads: any.
 * Paths are dotted strings; a component is the text between dots. The reference's symbol
 * rules (module names, __struct__) and string rules (../, DROP TABLE...) are both applied to
 * the raw path text, case-insensitively (ASCII), so "Elixir.System" is caught even though the dot
 * splits it into two components.
 */
#include "logic/config_path.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* The forbidden strings, lower case, with their lengths, matched case-insensitively (ASCII) in
 * one pass over the path: at each position whose byte (lower-cased) starts some needle
 * (first_byte), the needles starting with that byte are compared in place. Path checks run for
 * every key of every schema built and on every update: 13 memmem passes over a lower-cased copy
 * cost ~3 500 instructions for a 25-byte path (bench config.update), this pass a few hundred. */
typedef struct needle {
    const char *s;
    size_t len;
} needle_t;

#define N(x) {x, sizeof(x) - 1}
static const needle_t forbidden_lc[] = {
    N("elixir.system"), N("elixir.file"), N("elixir.code"), N("elixir.process"), N("elixir.node"),
    N("elixir.kernel"), N("__struct__"),  N("__info__"),    N("../"),            N("etc/passwd"),
    N("drop table"),    N("<script>"),    N("eval_string"),
};
#undef N

/* ASCII lower case: the needles are ASCII, and a locale's tolower() may map an ASCII letter
 * elsewhere (Turkish 'I'), which would let "ELIXIR.SYSTEM" through. */
static inline unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Whether c (lower case) is the first byte of a needle above: a needle added with another first
 * byte is added here too (test_config_schema's path_security checks each needle). */
static inline bool first_byte(unsigned char c)
{
    switch (c) {
    case 'e': /* elixir.*, etc/passwd, eval_string */
    case '_': /* __struct__, __info__ */
    case '.': /* ../ */
    case 'd': /* drop table */
    case '<': /* <script> */
        return true;
    default:
        return false;
    }
}

/* Whether the path (len <= FDN__CFG_MAX_PATH_LEN) contains a forbidden string, ignoring case. */
static bool has_forbidden(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = ascii_lower((unsigned char)path[i]);
        if (!first_byte(c))
            continue;
        for (size_t k = 0; k < sizeof(forbidden_lc) / sizeof(forbidden_lc[0]); k++) {
            const needle_t *n = &forbidden_lc[k];
            if ((unsigned char)n->s[0] != c || n->len > len - i)
                continue;
            size_t j = 1;
            while (j < n->len && ascii_lower((unsigned char)path[i + j]) == (unsigned char)n->s[j])
                j++;
            if (j == n->len)
                return true;
        }
    }
    return false;
}

static int malicious(const char *path, fdn_error_t *err)
{
    fdn_err_set(err, FDN_EPATH_SECURITY,
                "Configuration path contains potentially malicious components: %.160s", path);
    fdn_err_add_context(err, "path", "%.160s", path);
    fdn_err_add_context(err, "reason", "malicious_path");
    return FDN_EPATH_SECURITY;
}

/* The path's own text is refused (too long, a control byte): check 1 as the reference's rule,
 * one code for every refusal of a path (the header's FDN_EPATH_SECURITY), its own message and
 * reason; the path is not echoed (it may be huge or hold the control byte). */
static int refused(fdn_error_t *err, const char *msg, const char *reason)
{
    fdn_err_set(err, FDN_EPATH_SECURITY, "%s", msg);
    fdn_err_add_context(err, "reason", "%s", reason);
    return FDN_EPATH_SECURITY;
}

int fdn__cfg_path_check(const char *path, fdn_error_t *err)
{
    if (path == NULL)
        return fdn_err_set(err, FDN_EINVAL, "Configuration path is NULL");
    size_t len = strnlen(path, FDN__CFG_MAX_PATH_LEN + 1);
    size_t comps = len > 0 ? 1 : 0;
    for (size_t i = 0; i < len; i++) {
        if (path[i] == '.')
            comps++;
    }
    if (comps > FDN__CFG_MAX_COMPONENTS)
        return malicious(path, err);
    if (len > FDN__CFG_MAX_PATH_LEN)
        return refused(err, "Configuration path too long", "path_too_long");
    if (has_forbidden(path, len))
        return malicious(path, err);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
            return refused(err, "Configuration path contains a control character",
                           "control_character");
    }
    return 0;
}

const char *fdn__cfg_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

const char *fdn__cfg_value_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "map";
    case JSON_ARRAY:
        return "list";
    case JSON_STRING:
        return "binary";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return "atom";
    }
    return "unknown";
}

/* true when v (at nesting level `level`) breaks a rule */
static bool dangerous(const json_t *v, int level)
{
    if (level > FDN__CFG_MAX_DEPTH)
        return true;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) > FDN__CFG_MAX_STRING;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (dangerous(json_array_get(v, i), level + 1))
                return true;
        }
        return false;
    case JSON_OBJECT: {
        const char *key;
        const json_t *val;
        void *it = json_object_iter((json_t *)(uintptr_t)v);
        while (it != NULL) {
            key = json_object_iter_key(it);
            val = json_object_iter_value(it);
            /* a key's own nesting restarts at level 0: a string key is a leaf */
            if (strlen(key) > FDN__CFG_MAX_STRING)
                return true;
            if (dangerous(val, level + 1))
                return true;
            it = json_object_iter_next((json_t *)(uintptr_t)v, it);
        }
        return false;
    }
    default:
        return false;
    }
}

int fdn__cfg_value_check(const json_t *v, fdn_error_t *err)
{
    if (v == NULL)
        return fdn_err_set(err, FDN_EINVAL, "Configuration value is NULL");
    if (!dangerous(v, 0))
        return 0;
    fdn_err_set(err, FDN_EVALUE_SECURITY,
                "Configuration value contains potentially dangerous content");
    fdn_err_add_context(err, "value_type", "%s", fdn__cfg_value_type_name(v));
    fdn_err_add_context(err, "reason", "dangerous_value");
    return FDN_EVALUE_SECURITY;
}

int fdn__cfg_env_name_to_path(const char *name, size_t name_len, char *out, size_t cap)
{
    if (name == NULL || out == NULL || cap == 0)
        return FDN_EINVAL;
    if (name_len < 5 || memcmp(name, "FDN_", 4) != 0)
        return FDN_EINVAL;
    const char *p = name + 4;
    size_t n = name_len - 4;
    size_t o = 0;
    bool sep = false;
    size_t seg = 0; /* length of the current segment */
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '_' && i + 1 < n && p[i + 1] == '_') {
            if (seg == 0)
                return FDN_EINVAL;
            if (o + 1 >= cap)
                return FDN_ENOBUFS;
            out[o++] = '.';
            sep = true;
            seg = 0;
            i++;
            continue;
        }
        /* ASCII only, whatever the locale: a single-byte locale's isalnum() accepts letters
         * above 0x7f, and its tolower() may map an ASCII letter elsewhere (Turkish 'I') */
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!(alnum || c == '_'))
            return FDN_EINVAL;
        if (o + 1 >= cap)
            return FDN_ENOBUFS;
        out[o++] = (char)ascii_lower((unsigned char)c);
        seg++;
    }
    if (!sep || seg == 0)
        return FDN_EINVAL;
    out[o] = '\0';
    return 0;
}

static bool ieq(const char *a, const char *b)
{
    while (*a && *b) {
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return false;
        a++;
        b++;
    }
    return *a == *b;
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether text is a whole decimal number: [+-] digits [. digits] [(e|E) [+-] digits], with at
 * least one digit before the exponent (".5" and "5." are numbers, "." is not). */
static bool decimal(const char *p)
{
    size_t nd = 0;
    if (*p == '+' || *p == '-')
        p++;
    for (; digit(*p); p++)
        nd++;
    if (*p == '.') {
        for (p++; digit(*p); p++)
            nd++;
    }
    if (nd == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!digit(*p))
            return false;
        while (digit(*p))
            p++;
    }
    return *p == '\0';
}

int fdn__cfg_parse_text(fdn_config_type_t type, const char *text, json_t **out)
{
    json_t *v = NULL;
    bool oom = false;
    *out = NULL;
    if (text == NULL)
        return FDN_EINVAL;
    switch (type) {
    case FDN_CONFIG_BOOL:
        if (ieq(text, "true") || ieq(text, "1") || ieq(text, "yes") || ieq(text, "on"))
            v = json_true();
        else if (ieq(text, "false") || ieq(text, "0") || ieq(text, "no") || ieq(text, "off"))
            v = json_false();
        else
            return FDN_ETYPE_MISMATCH;
        break;
    case FDN_CONFIG_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || isspace((unsigned char)*text))
            return FDN_ETYPE_MISMATCH;
        v = json_integer((json_int_t)x);
        break;
    }
    case FDN_CONFIG_NUMBER: {
        char *end = NULL;
        errno = 0;
        bool is_int = text[0] != '\0' && strpbrk(text, ".eE") == NULL;
        if (is_int) {
            long long x = strtoll(text, &end, 10);
            if (errno == 0 && end != text && *end == '\0' && !isspace((unsigned char)*text)) {
                v = json_integer((json_int_t)x);
                break;
            }
            errno = 0;
        }
        if (!decimal(text)) /* strtod also takes hex floats (0x1p-2), inf, nan */
            return FDN_ETYPE_MISMATCH;
        double d = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !isfinite(d))
            return FDN_ETYPE_MISMATCH;
        v = json_real(d);
        break;
    }
    case FDN_CONFIG_STRING:
    case FDN_CONFIG_ENUM:
        v = json_string(text);
        if (v == NULL)
            return FDN_ETYPE_MISMATCH; /* invalid UTF-8 */
        break;
    case FDN_CONFIG_STRING_OR_NULL:
        v = strcmp(text, "null") == 0 ? json_null() : json_string(text);
        if (v == NULL)
            return FDN_ETYPE_MISMATCH;
        break;
    case FDN_CONFIG_OBJECT:
        v = fdn__json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, NULL, &oom);
        if (oom)
            return FDN_ENOMEM;
        if (v == NULL || !json_is_object(v)) {
            json_decref(v);
            return FDN_ETYPE_MISMATCH;
        }
        break;
    case FDN_CONFIG_ANY:
        v = fdn__json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL,
                            &oom);
        if (oom)
            return FDN_ENOMEM;
        if (v == NULL)
            v = json_string(text);
        if (v == NULL)
            return FDN_ETYPE_MISMATCH;
        break;
    default:
        return FDN_EINVAL;
    }
    if (v == NULL)
        return FDN_ENOMEM;
    *out = v;
    return 0;
}
