/*
 * DESIGN: config schema and validator (reference §1.1, §1.3).
 * Pure module: no locks, no I/O, no mutable globals but one: the built-in schema of
 * fdn_config_validate_json and fdn_config_check_json, built on their first call and kept for
 * the process (published with one compare-and-swap; building it cost several times more than
 * checking a document). The built-in keys are constant data in
 * config_keys.c; this file builds a schema from them plus the application's keys and checks
 * values against it. A schema is built once per config service and is immutable afterwards,
 * so any thread may read it without synchronisation. Values are jansson json_t references
 * held in a flat array (one per leaf, schema order); the validator walks that array in
 * schema order, which is the key table's order and the reference's validation order (ai:
 * provider, analysis, planning; capture; storage; interface; dev; infrastructure), so
 * "first failure" matches the reference. A leaf's verdict depends on its own value and its
 * only_if gate's only, so an update of a tree that passed checks just the changed leaf, the
 * leaves it gates and the cross-key rule (fdn__cfg_validate_change), in the same order.
 * A JSON document is gone through by one walk (walk_tree): depth first in document order, it
 * classifies each key against the schema (leaf, unknown, section that is not an object, path
 * too long, dotted key) and hands it to a visitor, going down itself into sections that are
 * objects. A key holding a '.' is refused by all three visitors: a key has one spelling, the
 * nested one, which the rule pass of validate_json reads (json_at) and JSON_REJECT_DUPLICATES
 * guards.
 * Three visitors use it: merging a file into leaf values (first problem stops),
 * validate_json's unknown-key pass after the value rules (first problem stops), and
 * check_json (every problem reported). The rule pass over the leaf values runs in schema
 * order, not document order. Bounds are met exactly (num_cmp): an integer is compared with
 * the bound's floor as an int64, never rounded to a double.
 * Invariants: every schema path passes the path-security rule; no leaf path is a prefix
 * section of another leaf; each default passes its own type check.
 */
#include "validation/config_schema.h"

#include <fdn/breaker.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/json.h"
#include "logic/config_path.h"
#include "logic/limit_algo.h"
#include "validation/config_telemetry.h"

/* the sentences of the rate-rule bounds below name these values */
_Static_assert(FDN__LIMIT_MAX == 2147483648LL, "rate rule limit bound");
_Static_assert(FDN__LIMIT_PERIOD_MAX_MS == 8589934592LL, "rate rule scale bound");

int32_t fdn__cfg_schema_find(const fdn__cfg_schema_t *s, const char *path, size_t len)
{
    uint32_t h = (uint32_t)fdn__hash(path, len);
    for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
        int32_t idx = s->slots[i];
        if (idx < 0)
            return -1;
        const fdn__cfg_entry_t *e = &s->e[idx];
        if (e->hash == h && e->path_len == len && memcmp(e->path, path, len) == 0)
            return idx;
    }
}

bool fdn__cfg_schema_is_section(const fdn__cfg_schema_t *s, const char *path, size_t len)
{
    if (len == 0)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        const fdn__cfg_entry_t *e = &s->e[i];
        if (e->path_len > len && e->path[len] == '.' && memcmp(e->path, path, len) == 0)
            return true;
    }
    return false;
}

int32_t fdn__cfg_schema_leaf_above(const fdn__cfg_schema_t *s, const char *path, size_t len)
{
    for (size_t cut = len; cut > 0; cut--) {
        if (path[cut - 1] != '.')
            continue;
        int32_t idx = fdn__cfg_schema_find(s, path, cut - 1);
        if (idx >= 0)
            return idx;
    }
    return -1;
}

const char *fdn__cfg_type_name(fdn_config_type_t t)
{
    switch (t) {
    case FDN_CONFIG_BOOL:
        return "bool";
    case FDN_CONFIG_INT:
        return "int";
    case FDN_CONFIG_NUMBER:
        return "number";
    case FDN_CONFIG_STRING:
        return "string";
    case FDN_CONFIG_STRING_OR_NULL:
        return "string or null";
    case FDN_CONFIG_ENUM:
        return "enum";
    case FDN_CONFIG_OBJECT:
        return "object";
    case FDN_CONFIG_ANY:
        return "any";
    }
    return "?";
}

bool fdn__cfg_type_ok(fdn_config_type_t t, const json_t *v)
{
    if (v == NULL)
        return false;
    switch (t) {
    case FDN_CONFIG_BOOL:
        return json_is_boolean(v);
    case FDN_CONFIG_INT:
        return json_is_integer(v);
    case FDN_CONFIG_NUMBER:
        return json_is_number(v);
    case FDN_CONFIG_STRING:
    case FDN_CONFIG_ENUM:
        return json_is_string(v);
    case FDN_CONFIG_STRING_OR_NULL:
        return json_is_string(v) || json_is_null(v);
    case FDN_CONFIG_OBJECT:
        return json_is_object(v);
    case FDN_CONFIG_ANY:
        return true;
    }
    return false;
}

static void entry_free(fdn__cfg_entry_t *e)
{
    fdn__free(e->path);
    if (e->enums != NULL) {
        for (char **p = e->enums; *p != NULL; p++)
            fdn__free(*p);
        fdn__free(e->enums);
    }
    fdn__free(e->description);
    fdn__free(e->message);
    fdn__free(e->missing_message);
    json_decref(e->def);
}

void fdn__cfg_schema_destroy(fdn__cfg_schema_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_free(&s->e[i]);
    fdn__free(s->e);
    fdn__free(s->slots);
    fdn__free(s);
}

static char *dup_or_null(const char *p, bool *oom)
{
    if (p == NULL)
        return NULL;
    char *d = fdn__strdup(p);
    if (d == NULL)
        *oom = true;
    return d;
}

static bool enum_has(char *const *en, const char *v)
{
    if (en == NULL)
        return false;
    for (; *en != NULL; en++) {
        if (strcmp(*en, v) == 0)
            return true;
    }
    return false;
}

static bool rule_ok(const fdn__cfg_entry_t *e, const json_t *v, const char **bad_rule);

/* Set by rule_ok when it could not decide because an allocation failed (the breaker specs are
 * parsed through JSON text): the value is not bad, the caller answers FDN_ENOMEM. Read and
 * cleared with rule_oom(); thread-local, as rule_ok runs on the caller's thread. */
static _Thread_local bool t_rule_oom;

static bool rule_oom(void)
{
    bool oom = t_rule_oom;
    t_rule_oom = false;
    return oom;
}

/* Set by rule_ok when a rule explains why a member was refused (the telemetry rules): a
 * constant sentence, read and cleared with rule_why(). */
static _Thread_local const char *t_rule_why;
static _Thread_local char t_bound_why[64]; /* the sentence of a bounded key's refusal */

static double num(const json_t *v);
static int num_cmp(const json_t *v, double b);

/* A bounded key (fdn__cfg_entry_t.bounded) whose value passed its rule: above the bound? */
static bool over_bound(const fdn__cfg_entry_t *e, const json_t *v)
{
    if (!e->bounded || num_cmp(v, e->max) <= 0)
        return false;
    snprintf(t_bound_why, sizeof t_bound_why, "must be at most %.0f", e->max);
    t_rule_why = t_bound_why;
    return true;
}

static const char *rule_why(void)
{
    const char *why = t_rule_why;
    t_rule_why = NULL;
    return why;
}

static bool private_rule(fdn_config_rule_t r)
{
    return r == FDN__CFG_RULE_TM_BUCKETS || r == FDN__CFG_RULE_TM_SUMMARIES;
}

static int entry_init(fdn__cfg_entry_t *e, const fdn_config_key_def_t *d, const char *missing,
                      bool builtin, fdn_error_t *err)
{
    bool oom = false;
    memset(e, 0, sizeof(*e));
    e->only_if = -1;
    if (d->path == NULL || d->path[0] == '\0' || d->type < FDN_CONFIG_BOOL ||
        d->type > FDN_CONFIG_ANY ||
        (d->rule > FDN_CONFIG_RULE_BREAKERS && !(builtin && private_rule(d->rule))))
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Invalid key definition: %s",
                           d->path != NULL ? d->path : "(null)");
    if (fdn__cfg_path_check(d->path, err) != 0)
        return FDN_ECONFIG_STRUCTURE;
    size_t len = strlen(d->path);
    if (d->path[len - 1] == '.' || strstr(d->path, "..") != NULL || d->path[0] == '.')
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Invalid key path: %s", d->path);
    e->path = dup_or_null(d->path, &oom);
    e->path_len = len;
    e->hash = (uint32_t)fdn__hash(d->path, len);
    e->type = d->type;
    e->rule = d->rule;
    e->min = d->min;
    e->max = d->max;
    e->bounded = builtin && d->max > 0 &&
                 (d->rule == FDN_CONFIG_RULE_POSITIVE || d->rule == FDN_CONFIG_RULE_NON_NEGATIVE);
    e->updatable = d->updatable;
    e->description = dup_or_null(d->description != NULL ? d->description : "", &oom);
    e->code = d->error_code != 0 ? d->error_code : FDN_ECONFIG_STRUCTURE;
    if (d->error_message != NULL) {
        e->message = dup_or_null(d->error_message, &oom);
    } else {
        char buf[FDN__CFG_MAX_PATH_LEN + 16];
        snprintf(buf, sizeof(buf), "Invalid %s", d->path);
        e->message = dup_or_null(buf, &oom);
    }
    e->missing_message = dup_or_null(missing != NULL ? missing : e->message, &oom);
    if (d->enum_values != NULL) {
        size_t k = 0;
        while (d->enum_values[k] != NULL)
            k++;
        e->enums = fdn__calloc(k + 1, sizeof(char *));
        if (e->enums == NULL) {
            oom = true;
        } else {
            /* stop at the first failure: the list stays NULL-terminated for entry_free */
            for (size_t i = 0; i < k && !oom; i++)
                e->enums[i] = dup_or_null(d->enum_values[i], &oom);
        }
    }
    if (oom)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if ((d->type == FDN_CONFIG_ENUM || d->rule == FDN_CONFIG_RULE_ENUM) && e->enums == NULL)
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Key %s: enum without enum_values", d->path);
    json_error_t jerr; /* (oom is false here) */
    e->def = d->default_json != NULL
                 ? fdn__json_loadb(d->default_json, strlen(d->default_json),
                                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr, &oom)
                 : json_null();
    if (oom)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (e->def == NULL)
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Key %s: default is not valid JSON",
                           d->path);
    const char *bad = NULL;
    bool null_ok = json_is_null(e->def) && d->default_json == NULL;
    if (!null_ok && (!fdn__cfg_type_ok(e->type, e->def) || !rule_ok(e, e->def, &bad))) {
        (void)rule_why();
        if (rule_oom())
            return fdn_err_set(err, FDN_ENOMEM, NULL);
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Key %s: default breaks its own rule",
                           d->path);
    }
    return 0;
}

static int insert_slot(fdn__cfg_schema_t *s, int32_t idx)
{
    const fdn__cfg_entry_t *e = &s->e[idx];
    for (size_t i = e->hash & s->mask;; i = (i + 1) & s->mask) {
        int32_t cur = s->slots[i];
        if (cur < 0) {
            s->slots[i] = idx;
            return 0;
        }
        if (s->e[cur].path_len == e->path_len && memcmp(s->e[cur].path, e->path, e->path_len) == 0)
            return FDN_EEXIST;
    }
}

#define POOL_SIZE_KEY     "infrastructure.connection_pool.default_config.size"
#define POOL_OVERFLOW_KEY "infrastructure.connection_pool.default_config.max_overflow"

/* The indexes of the cross-key rule's built-in keys (s->n: absent), once per schema. */
static void cross_keys(fdn__cfg_schema_t *s)
{
    s->pool_size = s->pool_overflow = s->n;
    for (size_t i = 0; i < s->nbuiltin; i++) {
        if (strcmp(s->e[i].path, POOL_SIZE_KEY) == 0)
            s->pool_size = i;
        else if (strcmp(s->e[i].path, POOL_OVERFLOW_KEY) == 0)
            s->pool_overflow = i;
    }
}

int fdn__cfg_schema_create(fdn__cfg_schema_t **out, const fdn_config_key_def_t *extra,
                           size_t nextra, fdn_error_t *err)
{
    *out = NULL;
    if (nextra > 0 && extra == NULL)
        return fdn_err_set(err, FDN_EINVAL, "keys is NULL");
    size_t nb = fdn__cfg_builtin_count;
    if (nextra > 100000)
        return fdn_err_set(err, FDN_EINVAL, "too many keys");
    fdn__cfg_schema_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    size_t total = nb + nextra;
    s->e = fdn__calloc(total, sizeof(fdn__cfg_entry_t));
    size_t cap = 16;
    while (cap < total * 2)
        cap <<= 1;
    s->slots = fdn__malloc(cap * sizeof(int32_t));
    if (s->e == NULL || s->slots == NULL) {
        fdn__cfg_schema_destroy(s);
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    }
    s->mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        s->slots[i] = -1;
    s->nbuiltin = nb;
    int rc = 0;
    for (size_t i = 0; i < total && rc == 0; i++) {
        const fdn__cfg_builtin_t *b = i < nb ? &fdn__cfg_builtins[i] : NULL;
        const fdn_config_key_def_t *d = b != NULL ? &b->d : &extra[i - nb];
        rc = entry_init(&s->e[i], d, b != NULL ? b->missing : NULL, b != NULL, err);
        s->n = i + 1;
        if (rc == 0 && insert_slot(s, (int32_t)i) != 0)
            rc =
                fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Duplicate configuration key: %s", d->path);
        if (rc == 0 && b != NULL && b->only_if != NULL)
            s->e[i].only_if = fdn__cfg_schema_find(s, b->only_if, strlen(b->only_if));
    }
    /* no leaf may be a section of another leaf */
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        if (fdn__cfg_schema_is_section(s, s->e[i].path, s->e[i].path_len))
            rc = fdn_err_set(err, FDN_ECONFIG_STRUCTURE,
                             "Configuration key %s is both a value and a section", s->e[i].path);
    }
    if (rc != 0) {
        fdn__cfg_schema_destroy(s);
        return rc;
    }
    cross_keys(s);
    *out = s;
    return 0;
}

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* The number v against the bound b: -1, 0 or 1, exactly. An integer is not converted to a
 * double (2^53 + 1 would round to 2^53 and pass "at most 2^53"): it is compared with floor(b),
 * which is exact once b is inside the int64 range. */
static int num_cmp(const json_t *v, double b)
{
    if (!json_is_integer(v)) {
        double d = json_real_value(v);
        return d < b ? -1 : d > b ? 1 : 0;
    }
    int64_t x = (int64_t)json_integer_value(v);
    if (b >= 9223372036854775808.0) /* 2^63: above every int64 */
        return -1;
    if (b < -9223372036854775808.0)
        return 1;
    double fl = floor(b); /* in [-2^63, 2^63): converts exactly */
    int64_t bi = (int64_t)fl;
    if (x != bi)
        return x < bi ? -1 : 1; /* x > floor(b) means x >= floor(b) + 1 > b */
    return fl == b ? 0 : -1;
}

static bool rule_ok(const fdn__cfg_entry_t *e, const json_t *v, const char **bad_rule)
{
    const char *why = NULL;
    if (e->rule == FDN__CFG_RULE_TM_BUCKETS || e->rule == FDN__CFG_RULE_TM_SUMMARIES) {
        bool ok = e->rule == FDN__CFG_RULE_TM_BUCKETS ? fdn__cfg_tm_buckets_ok(v, bad_rule, &why)
                                                      : fdn__cfg_tm_summaries_ok(v, bad_rule, &why);
        t_rule_why = ok ? NULL : why;
        return ok;
    }
    switch (e->rule) {
    case FDN_CONFIG_RULE_NONE:
        break;
    case FDN_CONFIG_RULE_POSITIVE:
        return json_is_number(v) && num_cmp(v, 0) > 0 && !over_bound(e, v);
    case FDN_CONFIG_RULE_NON_NEGATIVE:
        return json_is_number(v) && num_cmp(v, 0) >= 0 && !over_bound(e, v);
    case FDN_CONFIG_RULE_RANGE:
        return json_is_number(v) && num_cmp(v, e->min) >= 0 && num_cmp(v, e->max) <= 0;
    case FDN_CONFIG_RULE_ENUM:
        return json_is_string(v) && enum_has(e->enums, json_string_value(v));
    case FDN_CONFIG_RULE_FALSE_ONLY:
        return json_is_false(v);
    case FDN_CONFIG_RULE_RATE_RULES: {
        if (!json_is_object(v))
            return false;
        const char *name;
        json_t *r;
        json_object_foreach((json_t *)(uintptr_t)v, name, r)
        {
            json_t *sc = json_object_get(r, "scale");
            json_t *li = json_object_get(r, "limit");
            json_t *be = json_object_get(r, "backend");        /* optional: memory keeps it local */
            json_t *fp = json_object_get(r, "failure_policy"); /* optional, Redis only */
            static const char *const policies[] = {"local", "fail_open", "fail_closed", NULL};
            if (name[0] == '\0' || !json_is_object(r) || !json_is_integer(sc) ||
                !json_is_integer(li) || json_integer_value(sc) <= 0 ||
                json_integer_value(li) <= 0 ||
                (be != NULL &&
                 !(json_is_string(be) && (strcmp(json_string_value(be), "memory") == 0 ||
                                          strcmp(json_string_value(be), "redis") == 0))) ||
                (fp != NULL && !(json_is_string(fp) && enum_has((char *const *)(uintptr_t)policies,
                                                                json_string_value(fp))))) {
                *bad_rule = name;
                return false;
            }
            /* the limiter's own bounds (fdn_limit_rule_validate): a rule past them would be
             * accepted here and then refused, silently, when the runtime sets it */
            const char *bound =
                strchr(name, ':') != NULL ? "a rule name must not contain ':' (rule \"a\" with "
                                            "identifier \"b:c\" and rule \"a:b\" with identifier "
                                            "\"c\" would share one key)"
                : json_integer_value(li) > FDN__LIMIT_MAX ? "limit must be at most 2147483648"
                : json_integer_value(sc) > FDN__LIMIT_PERIOD_MAX_MS
                    ? "scale must be at most 8589934592 (ms)"
                    : NULL;
            if (bound != NULL) {
                t_rule_why = bound;
                *bad_rule = name;
                return false;
            }
        }
        break;
    }
    case FDN_CONFIG_RULE_BREAKERS: {
        if (!json_is_object(v))
            return false;
        const char *name;
        json_t *b;
        json_object_foreach((json_t *)(uintptr_t)v, name, b)
        {
            fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
            char *text = NULL;
            size_t tlen = 0;
            if (json_is_object(b))
                (void)fdn_json_dumps(b, JSON_COMPACT, &text, &tlen);
            int rc = text ? fdn_breaker_opts_parse(text, tlen, &o, NULL) : FDN_EINVAL;
            fdn__free(text);
            if ((json_is_object(b) && text == NULL) || rc == FDN_ENOMEM) {
                t_rule_oom = true; /* undecided, not bad */
                return false;
            }
            if (name[0] == '\0' || strlen(name) > 255 || rc != 0) {
                *bad_rule = name;
                return false;
            }
        }
        break;
    }
    }
    if (e->type == FDN_CONFIG_ENUM &&
        !(json_is_string(v) && enum_has(e->enums, json_string_value(v))))
        return false;
    return true;
}

static void rule_words(const fdn__cfg_entry_t *e, char *buf, size_t cap);

/* The reference's message for e; the context names the path, the rule that failed (the
 * expected type, or the value rule in words) and the value's JSON type (the HTTP API shows
 * the context with the message). */
/* What a bad member of an object-of-specs key is called in messages. */
static const char *member_words(const fdn__cfg_entry_t *e)
{
    if (e->rule == FDN__CFG_RULE_TM_BUCKETS)
        return "Invalid histogram buckets";
    if (e->rule == FDN__CFG_RULE_TM_SUMMARIES)
        return "Invalid summary";
    return e->rule == FDN_CONFIG_RULE_BREAKERS ? "Invalid circuit breaker"
                                               : "Invalid rate limiting rule";
}

static int fail_entry(const fdn__cfg_entry_t *e, const json_t *v, const char *bad_rule,
                      fdn_error_t *err)
{
    const char *why = rule_why();
    if (bad_rule != NULL && why != NULL)
        fdn_err_set(err, e->code, "%s: %.120s: %s", member_words(e), bad_rule, why);
    else if (bad_rule != NULL)
        fdn_err_set(err, e->code, "%s: %.120s", member_words(e), bad_rule);
    else if (e->bounded && why != NULL)
        fdn_err_set(err, e->code, "%s: %s", e->message, why);
    else
        fdn_err_set(err, e->code, "%s", e->message);
    fdn_err_add_context(err, "path", "%s", e->path);
    if (why != NULL)
        fdn_err_add_context(err, "reason", "%s", why);
    if (v != NULL && !fdn__cfg_type_ok(e->type, v)) {
        fdn_err_add_context(err, "rule", "type %s", fdn__cfg_type_name(e->type));
    } else {
        char words[256];
        rule_words(e, words, sizeof words);
        if (words[0] != '\0')
            fdn_err_add_context(err, "rule", "%s", words);
    }
    if (v != NULL)
        fdn_err_add_context(err, "value_type", "%s", fdn__cfg_json_type_name(v));
    if (e->enums != NULL && v != NULL && json_is_string(v)) {
        char list[200];
        size_t o = 0;
        list[0] = '\0';
        for (char **p = e->enums; *p != NULL && o < sizeof(list); p++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", o ? "," : "", *p);
        fdn_err_add_context(err, "value", "%.60s", json_string_value(v));
        fdn_err_add_context(err, "valid", "%s", list);
    }
    return e->code;
}

/* Bounds across keys, checked after every value passed its own rules: the pool defaults'
 * size + max_overflow is the pools' capacity, an int (fdn_pools_set_defaults refuses more, and
 * the runtime would drop the refusal). Returns the index of the key to blame (max_overflow)
 * with the reason, or s->n. */
static size_t cross_bad(const fdn__cfg_schema_t *s, json_t *const *vals, const char **why)
{
    size_t is = s->pool_size, io = s->pool_overflow;
    /* each within its own bounds (else already reported), their sum past INT_MAX */
    if (is == s->n || io == s->n || !json_is_number(vals[is]) || !json_is_number(vals[io]) ||
        num(vals[is]) <= 0 || num(vals[is]) > INT_MAX || num(vals[io]) < 0 ||
        num(vals[io]) > INT_MAX || num(vals[is]) + num(vals[io]) <= (double)INT_MAX)
        return s->n;
    *why = "size + max_overflow must be at most 2147483647";
    return io;
}

/* cross_bad as an error (0: none) */
static int cross_fail(const fdn__cfg_schema_t *s, json_t *const *vals, size_t *bad,
                      fdn_error_t *err)
{
    const char *why = NULL;
    size_t i = cross_bad(s, vals, &why);
    if (i == s->n)
        return 0;
    if (bad != NULL)
        *bad = i;
    fdn_err_set(err, s->e[i].code, "%s: %s", s->e[i].message, why);
    fdn_err_add_context(err, "path", "%s", s->e[i].path);
    fdn_err_add_context(err, "reason", "%s", why);
    return s->e[i].code;
}

/* Leaf i against its type and rule (skipped while its only_if gate is off): 0, its error, or
 * FDN_ENOMEM (with *bad = i on a rule's failure). */
static int leaf_check(const fdn__cfg_schema_t *s, json_t *const *vals, size_t i, size_t *bad,
                      fdn_error_t *err)
{
    const fdn__cfg_entry_t *e = &s->e[i];
    if (e->only_if >= 0 && !json_is_true(vals[e->only_if]))
        return 0;
    const json_t *v = vals[i];
    const char *bad_rule = NULL;
    if (fdn__cfg_type_ok(e->type, v) && rule_ok(e, v, &bad_rule))
        return 0;
    if (rule_oom())
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (bad != NULL)
        *bad = i;
    return fail_entry(e, v, bad_rule, err);
}

int fdn__cfg_validate(const fdn__cfg_schema_t *s, json_t *const *vals, size_t *bad,
                      fdn_error_t *err)
{
    for (size_t i = 0; i < s->n; i++) {
        int rc = leaf_check(s, vals, i, bad, err);
        if (rc != 0)
            return rc;
    }
    return cross_fail(s, vals, bad, err);
}

int fdn__cfg_validate_change(const fdn__cfg_schema_t *s, json_t *const *vals, size_t changed,
                             fdn_error_t *err)
{
    /* A leaf's verdict depends on its own value and its gate's only (leaf_check), so in a tree
     * that passed as a whole only the changed leaf and the leaves it gates can fail now; they
     * are checked in schema order, so the first failure is the one fdn__cfg_validate would
     * report. The cross-key rule reads several leaves: it always runs. */
    for (size_t i = 0; i < s->n; i++) {
        if (i != changed && s->e[i].only_if != (int)changed)
            continue;
        int rc = leaf_check(s, vals, i, NULL, err);
        if (rc != 0)
            return rc;
    }
    return cross_fail(s, vals, NULL, err);
}

/* set obj[path components] = v, creating sections */
static int tree_put(json_t *root, const char *rel, json_t *v)
{
    json_t *cur = root;
    const char *p = rel;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (dot == NULL) {
            json_t *copy = json_deep_copy(v); /* never share a snapshot's values */
            return copy != NULL && json_object_set_new(cur, p, copy) == 0 ? 0 : FDN_ENOMEM;
        }
        char key[FDN__CFG_MAX_PATH_LEN + 1];
        size_t kl = (size_t)(dot - p);
        memcpy(key, p, kl);
        key[kl] = '\0';
        json_t *next = json_object_get(cur, key);
        if (next == NULL) {
            next = json_object();
            if (next == NULL || json_object_set_new(cur, key, next) != 0)
                return FDN_ENOMEM;
        }
        cur = next;
        p = dot + 1;
    }
}

json_t *fdn__cfg_build_tree(const fdn__cfg_schema_t *s, json_t *const *vals, const char *prefix,
                            bool *oom)
{
    size_t plen = strlen(prefix);
    *oom = false;
    int32_t idx = fdn__cfg_schema_find(s, prefix, plen);
    if (idx >= 0) {
        json_t *copy = json_deep_copy(vals[idx]);
        *oom = copy == NULL;
        return copy;
    }
    if (!fdn__cfg_schema_is_section(s, prefix, plen))
        return NULL;
    json_t *root = json_object();
    if (root == NULL) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        const fdn__cfg_entry_t *e = &s->e[i];
        const char *rel;
        if (plen == 0)
            rel = e->path;
        else if (e->path_len > plen && e->path[plen] == '.' && memcmp(e->path, prefix, plen) == 0)
            rel = e->path + plen + 1;
        else
            continue;
        if (tree_put(root, rel, vals[i]) != 0) {
            json_decref(root);
            *oom = true;
            return NULL;
        }
    }
    return root;
}

/* ---- the one walk over a JSON document against the schema ------------------------------ */

/* What the walk found at one key of the document. A key that names a section and holds an
 * object is not visited: the walk goes down into it. */
typedef enum walk_kind {
    WALK_LEAF,       /* the key's path is a schema leaf: idx is its entry */
    WALK_NOT_OBJECT, /* the path is a section but the value is not an object */
    WALK_UNKNOWN,    /* the path is neither a leaf nor a section */
    WALK_TOO_LONG,   /* the key would make the path longer than FDN__CFG_MAX_PATH_LEN; path
                      * holds the parent's path */
    WALK_DOTTED,     /* the key holds a '.' ("dev.debug_mode" written flat): refused by every
                      * visitor, whatever the joined path names, so that a key has one
                      * spelling (its nested form) and JSON_REJECT_DUPLICATES catches a key
                      * given twice */
} walk_kind_t;

/* Visit of one key: path is the key's dotted path (NUL-terminated, valid during the call),
 * key its last component, v its value. Returns 0 to go on, anything else to stop the walk,
 * which then returns that value. */
typedef int (*walk_visit_fn)(void *ctx, walk_kind_t kind, const char *path, const char *key,
                             int32_t idx, json_t *v);

typedef struct walk {
    const fdn__cfg_schema_t *s;
    char *path; /* FDN__CFG_MAX_PATH_LEN + 2 bytes, owned by the caller */
    walk_visit_fn visit;
    void *ctx;
} walk_t;

/* Visit obj's keys in document order, depth first; path[0..plen) is obj's own path. */
static int walk_obj(const walk_t *w, const json_t *obj, size_t plen)
{
    char *path = w->path;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        size_t kl = strlen(key);
        size_t nl = plen + (plen ? 1 : 0) + kl;
        int rc;
        if (nl > FDN__CFG_MAX_PATH_LEN) {
            path[plen] = '\0';
            rc = w->visit(w->ctx, WALK_TOO_LONG, path, key, -1, v);
        } else {
            if (plen)
                path[plen] = '.';
            memcpy(path + plen + (plen ? 1 : 0), key, kl);
            path[nl] = '\0';
            int32_t idx = fdn__cfg_schema_find(w->s, path, nl);
            if (memchr(key, '.', kl) != NULL)
                rc = w->visit(w->ctx, WALK_DOTTED, path, key, -1, v);
            else if (idx >= 0)
                rc = w->visit(w->ctx, WALK_LEAF, path, key, idx, v);
            else if (!fdn__cfg_schema_is_section(w->s, path, nl))
                rc = w->visit(w->ctx, WALK_UNKNOWN, path, key, -1, v);
            else if (!json_is_object(v))
                rc = w->visit(w->ctx, WALK_NOT_OBJECT, path, key, -1, v);
            else
                rc = walk_obj(w, v, nl);
        }
        if (rc != 0)
            return rc;
        path[plen] = '\0';
    }
    return 0;
}

/* Walk the object root against schema s, calling visit for every key that is not a section
 * holding an object. path: a caller's buffer of FDN__CFG_MAX_PATH_LEN + 2 bytes. */
static int walk_tree(const fdn__cfg_schema_t *s, const json_t *root, char *path,
                     walk_visit_fn visit, void *ctx)
{
    const walk_t w = {s, path, visit, ctx};
    path[0] = '\0';
    return walk_obj(&w, root, 0);
}

/* The refusal of a dotted key (WALK_DOTTED), in the words of every walk's visitor. */
#define DOTTED_WHY  "dotted key: write one nested object per component"
#define DOTTED_RULE "no '.' in keys"

/* ---- merge of a document into leaf values: the first problem stops it ------------------ */

typedef struct merge {
    const fdn__cfg_schema_t *s;
    json_t **vals;
    const char *source;
    uint8_t *marks;
    uint8_t mark;
    fdn_error_t *err;
} merge_t;

/* The merge's error for a key it does not take: a leaf of the wrong type, an unknown key, a
 * section that is not an object, a path too long. */
static int merge_fail(const merge_t *m, walk_kind_t kind, const char *path, int32_t idx,
                      const json_t *v)
{
    fdn_error_t *err = m->err;
    switch (kind) {
    case WALK_TOO_LONG:
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s: configuration path too long",
                           m->source);
    case WALK_LEAF: {
        fdn_config_type_t t = m->s->e[idx].type;
        fdn_err_set(err, FDN_ECONFIG_INVALID, "%s: %s: expected %s, got %s", m->source, path,
                    fdn__cfg_type_name(t), fdn__cfg_json_type_name(v));
        fdn_err_add_context(err, "source", "%s", m->source);
        fdn_err_add_context(err, "path", "%s", path);
        fdn_err_add_context(err, "rule", "type %s", fdn__cfg_type_name(t));
        return FDN_ECONFIG_INVALID;
    }
    case WALK_NOT_OBJECT:
        fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s: %s: expected an object (section)", m->source,
                    path);
        fdn_err_add_context(err, "source", "%s", m->source);
        fdn_err_add_context(err, "path", "%s", path);
        return FDN_ECONFIG_STRUCTURE;
    case WALK_DOTTED:
        fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s: %s: " DOTTED_WHY, m->source, path);
        fdn_err_add_context(err, "source", "%s", m->source);
        fdn_err_add_context(err, "path", "%s", path);
        fdn_err_add_context(err, "rule", DOTTED_RULE);
        return FDN_ECONFIG_STRUCTURE;
    case WALK_UNKNOWN:
        break;
    }
    fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s: %s: unknown configuration key", m->source, path);
    fdn_err_add_context(err, "source", "%s", m->source);
    fdn_err_add_context(err, "path", "%s", path);
    fdn_err_add_context(err, "rule", "known keys only");
    return FDN_ECONFIG_STRUCTURE;
}

/* A well-typed leaf replaces its value and is marked; anything else is the merge's error. */
static int merge_visit(void *ctx, walk_kind_t kind, const char *path, const char *key, int32_t idx,
                       json_t *v)
{
    merge_t *m = ctx;
    (void)key;
    if (kind != WALK_LEAF || !fdn__cfg_type_ok(m->s->e[idx].type, v))
        return merge_fail(m, kind, path, idx, v);
    json_decref(m->vals[idx]);
    m->vals[idx] = json_incref(v);
    if (m->marks != NULL)
        m->marks[idx] = m->mark;
    return 0;
}

int fdn__cfg_merge_json(const fdn__cfg_schema_t *s, json_t **vals, const json_t *root,
                        const char *source, uint8_t *marks, uint8_t mark, fdn_error_t *err)
{
    if (!json_is_object(root))
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s: top level must be an object", source);
    char *path = fdn__malloc(FDN__CFG_MAX_PATH_LEN + 2);
    if (path == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    merge_t m = {s, vals, source, marks, mark, err};
    int rc = walk_tree(s, root, path, merge_visit, &m);
    fdn__free(path);
    return rc;
}

/* ---- validation of a whole tree given as JSON (pure, reference validate/1) ------------- */

/* Borrowed value at dotted path in root, or NULL; *depth = component index that failed. */
static json_t *json_at(json_t *root, const char *path, size_t *fail_depth)
{
    json_t *cur = root;
    const char *p = path;
    size_t depth = 0;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t kl = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(cur)) {
            *fail_depth = depth;
            return NULL;
        }
        cur = json_object_getn(cur, p, kl);
        if (cur == NULL) {
            *fail_depth = depth + 1;
            return NULL;
        }
        if (dot == NULL)
            return cur;
        p = dot + 1;
        depth++;
    }
}

/* After every value passed its rules: the first key that is no leaf and no section (or a
 * section that is not an object) is unknown, and a dotted key is refused (the rule pass read
 * the nested values only, so a dotted key's value was never checked). Leaves are not looked
 * at again. */
static int unknown_visit(void *ctx, walk_kind_t kind, const char *path, const char *key,
                         int32_t idx, json_t *v)
{
    fdn_error_t *err = ctx;
    (void)key;
    (void)idx;
    (void)v;
    switch (kind) {
    case WALK_LEAF:
        return 0;
    case WALK_TOO_LONG:
        return fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Unknown configuration key");
    case WALK_DOTTED:
        fdn_err_set(err, FDN_ECONFIG_STRUCTURE,
                    "Dotted configuration key: %.160s (write one nested object per component)",
                    path);
        fdn_err_add_context(err, "path", "%.160s", path);
        fdn_err_add_context(err, "rule", DOTTED_RULE);
        return FDN_ECONFIG_STRUCTURE;
    case WALK_NOT_OBJECT:
    case WALK_UNKNOWN:
        break;
    }
    fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Unknown configuration key: %.160s", path);
    fdn_err_add_context(err, "path", "%.160s", path);
    return FDN_ECONFIG_STRUCTURE;
}

/* The built-in schema (no application keys), shared by every call of validate_json and
 * check_json: immutable once published. Two first calls may both build it; the one that loses
 * the compare-and-swap frees its copy. A build that fails (out of memory) is tried again by
 * the next call. Never freed: it stays reachable until the process exits. */
static _Atomic(fdn__cfg_schema_t *) g_builtin;

static int builtin_schema(const fdn__cfg_schema_t **out, fdn_error_t *err)
{
    fdn__cfg_schema_t *s = atomic_load_explicit(&g_builtin, memory_order_acquire);
    if (s == NULL) {
        int rc = fdn__cfg_schema_create(&s, NULL, 0, err);
        if (rc != 0)
            return rc;
        fdn__cfg_schema_t *none = NULL;
        if (!atomic_compare_exchange_strong_explicit(&g_builtin, &none, s, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            fdn__cfg_schema_destroy(s);
            s = none;
        }
    }
    *out = s;
    return 0;
}

int fdn_config_validate_json(const char *json, size_t len, fdn_error_t *err)
{
    if (json == NULL)
        return fdn_err_set(err, FDN_EINVAL, "json is NULL");
    json_error_t jerr;
    bool oom = false;
    json_t *root = fdn__json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (oom) /* out of memory, not bad text */
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (root == NULL)
        return fdn_err_set(err, FDN_EPARSE, "Invalid JSON at line %d: %.120s", jerr.line,
                           jerr.text);
    const fdn__cfg_schema_t *s = NULL;
    int rc = builtin_schema(&s, err);
    json_t **vals = NULL;
    char *path = NULL;
    if (rc != 0)
        goto out;
    if (!json_is_object(root)) {
        rc = fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "Invalid configuration");
        goto out;
    }
    vals = fdn__calloc(s->n, sizeof(json_t *));
    path = fdn__malloc(FDN__CFG_MAX_PATH_LEN + 2);
    if (vals == NULL || path == NULL) {
        rc = fdn_err_set(err, FDN_ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        const fdn__cfg_entry_t *e = &s->e[i];
        if (e->only_if >= 0 && !json_is_true(vals[e->only_if]))
            continue;
        size_t depth = 0;
        vals[i] = json_at(root, e->path, &depth);
        if (vals[i] == NULL) {
            const char *dot = strchr(e->path, '.');
            size_t toplen = dot != NULL ? (size_t)(dot - e->path) : e->path_len;
            const char *msg =
                depth <= 1 ? fdn__cfg_section_message(e->path, toplen) : e->missing_message;
            rc = fdn_err_set(err, FDN_ECONFIG_STRUCTURE, "%s", msg);
            fdn_err_add_context(err, "path", "%s", e->path);
            break;
        }
        const char *bad_rule = NULL;
        if (!fdn__cfg_type_ok(e->type, vals[i]) || !rule_ok(e, vals[i], &bad_rule))
            rc = rule_oom() ? fdn_err_set(err, FDN_ENOMEM, NULL)
                            : fail_entry(e, vals[i], bad_rule, err);
    }
    if (rc == 0)
        rc = cross_fail(s, vals, NULL, err);
    if (rc == 0)
        rc = walk_tree(s, root, path, unknown_visit, err);
out:
    fdn__free(path);
    fdn__free(vals);
    json_decref(root);
    return rc;
}

/* ---- check of a config file's content: every problem, not only the first --------------- */

typedef struct chk {
    const fdn__cfg_schema_t *s;
    json_t **vals; /* borrowed: defaults, replaced by the document's well-typed values */
    fdn_config_problem_fn cb;
    void *user;
    int first;
} chk_t;

static void chk_report(chk_t *c, const char *path, const char *msg, int code)
{
    if (c->first == 0)
        c->first = code;
    if (c->cb != NULL)
        c->cb(path, msg, code, c->user);
}

/* The rule of an entry in words, for the message of a value that breaks it. */
static void rule_words(const fdn__cfg_entry_t *e, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (e->rule == FDN__CFG_RULE_TM_BUCKETS) {
        snprintf(buf, cap,
                 "an object of at most 64 histogram names, each an array of 1 to 32 bounds, "
                 "> 0 and strictly increasing (seconds for a _seconds family, >= 1e-9)");
        return;
    }
    if (e->rule == FDN__CFG_RULE_TM_SUMMARIES) {
        snprintf(buf, cap, "an array of at most 64 distinct histogram names");
        return;
    }
    switch (e->rule) {
    case FDN_CONFIG_RULE_NONE:
    case FDN_CONFIG_RULE_ENUM:
        break;
    case FDN_CONFIG_RULE_POSITIVE:
    case FDN_CONFIG_RULE_NON_NEGATIVE: {
        /* a bounded key (over_bound) names its bound, the reason a value above it fails */
        const char *lo = e->rule == FDN_CONFIG_RULE_POSITIVE ? "must be > 0" : "must be >= 0";
        if (e->bounded)
            snprintf(buf, cap, "%s and at most %.0f", lo, e->max);
        else
            snprintf(buf, cap, "%s", lo);
        return;
    }
    case FDN_CONFIG_RULE_RANGE:
        snprintf(buf, cap, "must be between %g and %g", e->min, e->max);
        return;
    case FDN_CONFIG_RULE_FALSE_ONLY:
        snprintf(buf, cap, "must be false");
        return;
    case FDN_CONFIG_RULE_BREAKERS:
        snprintf(buf, cap,
                 "each breaker an object of options (failure_threshold, window_ms, "
                 "recovery_time_ms, half_open_max_calls, probe_timeout_ms, success_resets, "
                 "failure_rate_pct, slow_rate_pct, rate_window, rate_window_size, "
                 "minimum_calls, slow_call_ms) with valid values");
        return;
    case FDN_CONFIG_RULE_RATE_RULES:
        snprintf(buf, cap,
                 "each rule {\"scale\": int > 0, \"limit\": int > 0, optional "
                 "\"backend\": \"memory\" | \"redis\", optional \"failure_policy\": "
                 "\"local\" | \"fail_open\" | \"fail_closed\"}");
        return;
    }
    if (e->enums != NULL) {
        size_t o = (size_t)snprintf(buf, cap, "one of ");
        for (char **p = e->enums; *p != NULL && o < cap; p++)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", p == e->enums ? "" : ",", *p);
    }
}

/* Every problem of the document's keys; well-typed leaf values replace the defaults. */
static int chk_visit(void *ctx, walk_kind_t kind, const char *path, const char *key, int32_t idx,
                     json_t *v)
{
    chk_t *c = ctx;
    char msg[256];
    switch (kind) {
    case WALK_TOO_LONG:
        snprintf(msg, sizeof msg, "key '%.60s' makes the path too long (max %d bytes)", key,
                 FDN__CFG_MAX_PATH_LEN);
        chk_report(c, path, msg, FDN_ECONFIG_STRUCTURE);
        break;
    case WALK_LEAF: {
        const fdn__cfg_entry_t *e = &c->s->e[idx];
        if (fdn__cfg_type_ok(e->type, v)) {
            c->vals[idx] = v;
        } else {
            snprintf(msg, sizeof msg, "expected %s, got %s (rule: type %s)",
                     fdn__cfg_type_name(e->type), fdn__cfg_json_type_name(v),
                     fdn__cfg_type_name(e->type));
            chk_report(c, path, msg, FDN_ECONFIG_INVALID);
        }
        break;
    }
    case WALK_NOT_OBJECT:
        chk_report(c, path, "expected an object (rule: section)", FDN_ECONFIG_STRUCTURE);
        break;
    case WALK_UNKNOWN:
        chk_report(c, path, "unknown configuration key (rule: known keys only)",
                   FDN_ECONFIG_STRUCTURE);
        break;
    case WALK_DOTTED:
        chk_report(c, path, DOTTED_WHY " (rule: " DOTTED_RULE ")", FDN_ECONFIG_STRUCTURE);
        break;
    }
    return 0; /* never stop: every problem is reported */
}

int fdn_config_check_json(const char *json, size_t len, fdn_config_problem_fn cb, void *user)
{
    if (json == NULL)
        return FDN_EINVAL;
    chk_t c = {NULL, NULL, cb, user, 0};
    json_error_t jerr;
    bool oom = false;
    json_t *root = fdn__json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (oom) /* out of memory: not a problem of the document */
        return FDN_ENOMEM;
    if (root == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %.160s", jerr.line,
                 jerr.column, jerr.text);
        chk_report(&c, "", msg, FDN_EPARSE);
        return FDN_EPARSE;
    }
    const fdn__cfg_schema_t *s = NULL;
    char *path = NULL;
    int rc = builtin_schema(&s, NULL);
    if (rc != 0)
        goto out;
    if (!json_is_object(root)) {
        chk_report(&c, "", "the configuration must be a JSON object (rule: top level object)",
                   FDN_ECONFIG_STRUCTURE);
        goto out;
    }
    c.s = s;
    c.vals = fdn__calloc(s->n, sizeof(json_t *));
    path = fdn__malloc(FDN__CFG_MAX_PATH_LEN + 2);
    if (c.vals == NULL || path == NULL) {
        rc = FDN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->n; i++)
        c.vals[i] = s->e[i].def;
    (void)walk_tree(s, root, path, chk_visit, &c);
    for (size_t i = 0; i < s->n; i++) {
        const fdn__cfg_entry_t *e = &s->e[i];
        if (e->only_if >= 0 && !json_is_true(c.vals[e->only_if]))
            continue;
        const char *bad_rule = NULL;
        if (!fdn__cfg_type_ok(e->type, c.vals[i]) || !rule_ok(e, c.vals[i], &bad_rule)) {
            if (rule_oom()) {
                rc = FDN_ENOMEM;
                break;
            }
            char words[256], msg[400];
            const char *why = rule_why();
            rule_words(e, words, sizeof words);
            if (bad_rule != NULL && why != NULL)
                snprintf(msg, sizeof msg, "%s: %.80s: %s (rule: %s)", member_words(e), bad_rule,
                         why, words);
            else if (bad_rule != NULL)
                snprintf(msg, sizeof msg, "%s: %.80s (rule: %s)", member_words(e), bad_rule, words);
            else if (e->bounded && why != NULL)
                snprintf(msg, sizeof msg, "%s: %s", e->message, why);
            else if (words[0] != '\0')
                snprintf(msg, sizeof msg, "%s (rule: %s)", e->message, words);
            else
                snprintf(msg, sizeof msg, "%s", e->message);
            chk_report(&c, e->path, msg, e->code);
        }
    }
    if (rc == 0) {
        const char *why = NULL;
        size_t i = cross_bad(s, c.vals, &why);
        if (i < s->n) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s: %s", s->e[i].message, why);
            chk_report(&c, s->e[i].path, msg, s->e[i].code);
        }
    }
out:
    fdn__free(path);
    fdn__free(c.vals);
    json_decref(root);
    return rc != 0 ? rc : c.first;
}
