/* Unit tests: config schema rules (§1.1/§1.3), path and value security (§1.5.1/§1.5.2),
 * environment-name mapping. Pure functions, no service threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>
#include "core/alloc.h"
#include "logic/config_path.h"
#include "validation/config_schema.h"

/* The default tree as a jansson object. */
static json_t *default_tree(void)
{
    fdn__cfg_schema_t *s = NULL;
    assert_int_equal(fdn__cfg_schema_create(&s, NULL, 0, NULL), 0);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    for (size_t i = 0; i < s->n; i++)
        vals[i] = s->e[i].def;
    bool oom = false;
    json_t *t = fdn__cfg_build_tree(s, vals, "", &oom);
    assert_non_null(t);
    free(vals);
    fdn__cfg_schema_destroy(s);
    return t;
}

static void tree_set(json_t *root, const char *path, json_t *v)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = root;
    char *p = buf;
    for (;;) {
        char *dot = strchr(p, '.');
        if (dot == NULL) {
            if (v == NULL)
                json_object_del(cur, p);
            else
                json_object_set_new(cur, p, v);
            return;
        }
        *dot = '\0';
        json_t *next = json_object_get(cur, p);
        if (next == NULL) {
            next = json_object();
            json_object_set_new(cur, p, next);
        }
        cur = next;
        p = dot + 1;
    }
}

static int validate_tree(json_t *t, fdn_error_t *err)
{
    char *txt = json_dumps(t, JSON_COMPACT);
    int rc = fdn_config_validate_json(txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* Validate the default tree with one path replaced by value_json. */
static int validate_with(const char *path, const char *value_json, fdn_error_t *err)
{
    json_t *t = default_tree();
    tree_set(t, path, value_json ? json_loads(value_json, JSON_DECODE_ANY, NULL) : NULL);
    int rc = validate_tree(t, err);
    json_decref(t);
    return rc;
}

static void defaults_validate(void **state)
{
    (void)state;
    json_t *t = default_tree();
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(validate_tree(t, &err), 0);
    json_decref(t);
}

typedef struct rule_case {
    const char *path;
    const char *good;
    const char *bad;
    int code;
    const char *msg;
} rule_case_t;

#define S FDN_ECONFIG_STRUCTURE
#define I FDN_ECONFIG_INVALID
static const rule_case_t rules[] = {
    {"ai.provider", "\"openai\"", "\"invalid_provider\"", I, "Invalid AI provider"},
    {"ai.provider", "\"gemini\"", "3", I, "Invalid AI provider"},
    {"ai.api_key", "\"sk-1\"", NULL, 0, NULL},
    {"ai.analysis.max_file_size", "1", "0", S, "Invalid AI analysis configuration"},
    {"ai.analysis.timeout", "5000", "-5", S, "Invalid AI analysis configuration"},
    {"ai.analysis.cache_ttl", "60", "1.5", S, "Invalid AI analysis configuration"},
    {"ai.planning.performance_target", "0", "-0.1", FDN_ECONFIG_CONSTRAINT,
     "Performance target must be a non-negative number"},
    {"ai.planning.performance_target", "0.5", "\"x\"", FDN_ECONFIG_CONSTRAINT, NULL},
    {"ai.planning.sampling_rate", "0", "1.5", FDN_ECONFIG_RANGE,
     "Sampling rate must be between 0 and 1"},
    {"ai.planning.sampling_rate", "1", "-0.01", FDN_ECONFIG_RANGE, NULL},
    {"ai.planning.sampling_rate", "0.5", "true", FDN_ECONFIG_RANGE, NULL},
    {"ai.planning.default_strategy", "\"thorough\"", "\"invalid\"", I, "Invalid planning strategy"},
    {"capture.ring_buffer.size", "1", "-1", S, "Invalid ring buffer configuration"},
    {"capture.ring_buffer.max_events", "10", "0", S, "Invalid ring buffer configuration"},
    {"capture.ring_buffer.overflow_strategy", "\"block\"", "\"error\"", I,
     "Invalid overflow strategy"},
    {"capture.ring_buffer.num_buffers", "8", NULL, 0, NULL},
    {"capture.processing.batch_size", "10", "0", S, "Invalid processing configuration"},
    {"capture.processing.flush_interval", "10", "\"10\"", S, "Invalid processing configuration"},
    {"capture.processing.max_queue_size", "100", "-1", S, "Invalid processing configuration"},
    {"capture.vm_tracing.enable_spawn_trace", "false", "1", S, "Invalid VM tracing configuration"},
    {"capture.vm_tracing.enable_exit_trace", "false", "\"true\"", S, NULL},
    {"capture.vm_tracing.enable_message_trace", "true", "null", S, NULL},
    {"capture.vm_tracing.trace_children", "false", "0", S, NULL},
    {"storage.hot.max_events", "5", "0", S, "Invalid hot storage configuration"},
    {"storage.hot.max_age_seconds", "5", "-3", S, "Invalid hot storage configuration"},
    {"storage.hot.prune_interval", "5", "2.5", S, "Invalid hot storage configuration"},
    {"storage.hot.max_types", "5", "0", S, "Invalid hot storage configuration"},
    {"storage.warm.enable", "false", "\"yes\"", S, "Invalid warm storage configuration"},
    {"storage.cold.enable", "false", "true", S, "Invalid cold storage configuration"},
    {"interface.query_timeout", "1", "0", S, "Invalid interface configuration"},
    {"interface.max_results", "1", "-1", S, "Invalid interface configuration"},
    {"interface.enable_streaming", "false", "1", S, "Invalid interface configuration"},
    {"dev.debug_mode", "true", "\"true\"", S, "Invalid development configuration"},
    {"dev.verbose_logging", "true", "1", S, "Invalid development configuration"},
    {"dev.performance_monitoring", "false", "null", S, "Invalid development configuration"},
    {"infrastructure.rate_limiting.default_rules", "{\"x\":{\"scale\":1,\"limit\":1}}",
     "{\"bad\":{\"scale\":0,\"limit\":1}}", S, "Invalid rate limiting rule: bad"},
    {"infrastructure.rate_limiting.default_rules", "{}", "[1]", S,
     "Invalid rate limiting configuration"},
    /* a rule the limiter refuses (fdn_limit_rule_validate) is refused here, not dropped later:
     * limit at most 2^31, scale at most 2^33 ms */
    {"infrastructure.rate_limiting.default_rules",
     "{\"x\":{\"scale\":8589934592,\"limit\":2147483648}}",
     "{\"big\":{\"scale\":60000,\"limit\":2147483649}}", S,
     "Invalid rate limiting rule: big: limit must be at most 2147483648"},
    {"infrastructure.rate_limiting.default_rules", "{\"x\":{\"scale\":1,\"limit\":1}}",
     "{\"yearly\":{\"scale\":31536000000,\"limit\":1000}}", S,
     "Invalid rate limiting rule: yearly: scale must be at most 8589934592 (ms)"},
    /* a rule name with ':' would share keys with another rule (limiter key "<rule>:<id>") */
    {"infrastructure.rate_limiting.default_rules", "{\"a-b_c.d\":{\"scale\":1,\"limit\":1}}",
     "{\"a:b\":{\"scale\":1,\"limit\":1}}", S,
     "Invalid rate limiting rule: a:b: a rule name must not contain ':' (rule \"a\" with "
     "identifier \"b:c\" and rule \"a:b\" with identifier \"c\" would share one key)"},
    {"infrastructure.circuit_breaker.breakers", "{\"db\":{\"failure_threshold\":2}}",
     "{\"db\":{\"failure_treshold\":2}}", S, "Invalid circuit breaker: db"},
    {"infrastructure.circuit_breaker.breakers", "{}", "{\"db\":3}", S,
     "Invalid circuit breaker: db"},
    {"infrastructure.circuit_breaker.breakers", "{}", "[]", S,
     "Invalid circuit breaker configuration"},
    {"infrastructure.rate_limiting.enabled", "false", "0", S,
     "Invalid rate limiting configuration"},
    {"infrastructure.rate_limiting.max_keys_per_identity", "0", "-1", S,
     "Invalid rate limiting configuration"},
    {"infrastructure.rate_limiting.cleanup_interval", "1", "0", S,
     "Invalid rate limiting configuration"},
    {"infrastructure.circuit_breaker.default_config.failure_threshold", "1", "0", S,
     "Invalid circuit breaker default configuration"},
    {"infrastructure.circuit_breaker.default_config.recovery_time", "1", "-1", S, NULL},
    {"infrastructure.circuit_breaker.default_config.call_timeout", "1", "0.5", S, NULL},
    {"infrastructure.circuit_breaker.enabled", "false", "\"no\"", S,
     "Invalid circuit breaker configuration"},
    {"infrastructure.connection_pool.default_config.size", "1", "0", S,
     "Invalid connection pool default configuration"},
    {"infrastructure.connection_pool.default_config.max_overflow", "0", "-1", S,
     "Invalid connection pool default configuration"},
    /* values the component refuses (and the runtime dropped silently) are refused here, with
     * the bound: the event store's 32-bit cap on query results, 2^63-1 / 10^6 / 4 ms (limiter,
     * breaker), 10^6 failures, an int pool capacity (size + max_overflow; the other one at its
     * default: size 10, max_overflow 5) */
    {"interface.max_results", "4294967295", "4294967296", S,
     "Invalid interface configuration: must be at most 4294967295"},
    {"infrastructure.rate_limiting.cleanup_interval", "2305843009213", "2305843009214", S,
     "Invalid rate limiting configuration: must be at most 2305843009213"},
    {"infrastructure.circuit_breaker.default_config.failure_threshold", "1000000", "1000001", S,
     "Invalid circuit breaker default configuration: must be at most 1000000"},
    {"infrastructure.circuit_breaker.default_config.recovery_time", "2305843009213",
     "2305843009214", S,
     "Invalid circuit breaker default configuration: must be at most 2305843009213"},
    {"infrastructure.circuit_breaker.default_config.call_timeout", "2305843009213",
     "9223372036854775807", S,
     "Invalid circuit breaker default configuration: must be at most 2305843009213"},
    {"infrastructure.connection_pool.default_config.size", "2147483642", "2147483643", S,
     "Invalid connection pool default configuration: size + max_overflow must be at most "
     "2147483647"},
    {"infrastructure.connection_pool.default_config.size", "1", "2147483648", S,
     "Invalid connection pool default configuration: must be at most 2147483647"},
    {"infrastructure.connection_pool.default_config.max_overflow", "2147483637", "2147483638", S,
     "Invalid connection pool default configuration: size + max_overflow must be at most "
     "2147483647"},
    {"infrastructure.connection_pool.default_config.strategy", "\"fifo\"", "\"random\"", S,
     "Invalid connection pool default configuration"},
    {"infrastructure.connection_pool.enabled", "false", "2", S,
     "Invalid connection pool configuration"},
};

static void every_rule_good_and_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const rule_case_t *c = &rules[i];
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = validate_with(c->path, c->good, &err);
        if (rc != 0)
            fail_msg("%s=%s should pass: %s", c->path, c->good, err.message);
        if (c->bad == NULL)
            continue;
        rc = validate_with(c->path, c->bad, &err);
        if (rc != c->code)
            fail_msg("%s=%s: got %d (%s), want %d", c->path, c->bad, rc, err.message, c->code);
        if (c->msg != NULL)
            assert_string_equal(err.message, c->msg);
        assert_string_equal(err.category, "config");
    }
}

static void reference_codes(void **state)
{
    (void)state;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(validate_with("ai.provider", "\"invalid_provider\"", &err),
                     FDN_ECONFIG_INVALID);
    assert_int_equal(err.ref_code, 1201);
    assert_non_null(strstr(err.context, "valid="));
    assert_int_equal(validate_with("ai.planning.sampling_rate", "1.5", &err), FDN_ECONFIG_RANGE);
    assert_int_equal(err.ref_code, 1203);
    assert_int_equal(validate_with("ai.planning.performance_target", "-1", &err),
                     FDN_ECONFIG_CONSTRAINT);
    assert_int_equal(err.ref_code, 1202);
    assert_int_equal(validate_with("capture.ring_buffer.size", "-1", &err), FDN_ECONFIG_STRUCTURE);
    assert_int_equal(err.ref_code, 1101);
}

static void validation_order_first_failure(void **state)
{
    (void)state;
    json_t *t = default_tree();
    fdn_error_t err = FDN_ERROR_INIT;
    /* planning: performance_target before sampling_rate before strategy */
    tree_set(t, "ai.planning.default_strategy", json_string("zzz"));
    tree_set(t, "ai.planning.sampling_rate", json_real(3.0));
    tree_set(t, "ai.planning.performance_target", json_integer(-1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_CONSTRAINT);
    tree_set(t, "ai.planning.performance_target", json_integer(1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_RANGE);
    /* ring buffer: size before overflow strategy; ai before capture */
    tree_set(t, "capture.ring_buffer.overflow_strategy", json_string("x"));
    tree_set(t, "capture.ring_buffer.size", json_integer(0));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_RANGE);
    tree_set(t, "ai.planning.sampling_rate", json_real(0.5));
    tree_set(t, "ai.planning.default_strategy", json_string("fast"));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid ring buffer configuration");
    tree_set(t, "capture.ring_buffer.size", json_integer(1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_INVALID);
    assert_string_equal(err.message, "Invalid overflow strategy");
    json_decref(t);
}

static void warm_rule(void **state)
{
    (void)state;
    json_t *t = default_tree();
    fdn_error_t err = FDN_ERROR_INIT;
    tree_set(t, "storage.warm.compression", json_string("lz4"));
    tree_set(t, "storage.warm.max_size_mb", json_integer(0));
    assert_int_equal(validate_tree(t, &err), 0); /* disabled: not checked */
    tree_set(t, "storage.warm.enable", json_true());
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid warm storage configuration");
    tree_set(t, "storage.warm.max_size_mb", json_integer(10));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_INVALID);
    assert_string_equal(err.message, "Invalid compression type");
    tree_set(t, "storage.warm.compression", json_string("gzip"));
    assert_int_equal(validate_tree(t, &err), 0);
    tree_set(t, "storage.warm.path", NULL);
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    json_decref(t);
}

static void malformed_sections_are_1001(void **state)
{
    (void)state;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(validate_with("ai.provider", NULL, &err), FDN_ECONFIG_STRUCTURE);
    assert_int_equal(validate_with("capture.processing", NULL, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid processing configuration");
    assert_int_equal(validate_with("ai.planning.sampling_rate", NULL, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid AI planning configuration");
    assert_int_equal(validate_with("infrastructure", "5", &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid infrastructure configuration");
    assert_int_equal(validate_with("dev.extra_key", "1", &err), FDN_ECONFIG_STRUCTURE);
    assert_non_null(strstr(err.message, "dev.extra_key"));
    assert_int_equal(fdn_config_validate_json("[1,2]", 5, &err), FDN_ECONFIG_STRUCTURE);
    assert_int_equal(fdn_config_validate_json("{", 1, &err), FDN_EPARSE);
    assert_int_equal(fdn_config_validate_json("{}", 2, &err), FDN_ECONFIG_STRUCTURE);
}

static void path_security(void **state)
{
    (void)state;
    static const char *bad[] = {
        "__struct__",         "ai.__info__", "Elixir.System", "ai.Elixir.File.x", "Elixir.Code",
        "x.Elixir.Process",   "Elixir.Node", "Elixir.Kernel", "a.../b",           "etc/passwd.x",
        "x.drop table users", "<SCRIPT>",    "eval_string",
    };
    fdn_error_t err = FDN_ERROR_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fdn__cfg_path_check(bad[i], &err), FDN_EPATH_SECURITY);
        assert_int_equal(err.ref_code, 1000);
        assert_non_null(
            strstr(err.message, "Configuration path contains potentially malicious components"));
        assert_non_null(strstr(err.context, "reason=malicious_path"));
    }
    char path[4096];
    size_t o = 0;
    for (int i = 0; i < 50; i++)
        o += (size_t)snprintf(path + o, sizeof(path) - o, "%sa", i ? "." : "");
    assert_int_equal(fdn__cfg_path_check(path, &err), 0); /* 50 components */
    snprintf(path + o, sizeof(path) - o, ".a");
    assert_int_equal(fdn__cfg_path_check(path, &err), FDN_EPATH_SECURITY);
    char *huge = malloc(2000);
    for (int i = 0; i < 1999; i++)
        huge[i] = (i % 2) ? '.' : 'a';
    huge[1999] = '\0';
    assert_int_equal(fdn__cfg_path_check(huge, &err), FDN_EPATH_SECURITY); /* 1000 comps */
    free(huge);
    assert_int_equal(fdn__cfg_path_check("", &err), 0);
    assert_int_equal(fdn__cfg_path_check("ai.planning.sampling_rate", &err), 0);
    /* a control byte or a path over FDN__CFG_MAX_PATH_LEN bytes is check 1 too: the same
     * code as every other path refusal (the header's), not FDN_ECONFIG_INVALID_PATH */
    assert_int_equal(fdn__cfg_path_check("a\001b", &err), FDN_EPATH_SECURITY);
    assert_int_equal(err.ref_code, 1000);
    assert_string_equal(err.message, "Configuration path contains a control character");
    assert_non_null(strstr(err.context, "reason=control_character"));
    assert_int_equal(fdn__cfg_path_check("dev.x\x7f", &err), FDN_EPATH_SECURITY);
    char *longp = malloc(FDN__CFG_MAX_PATH_LEN + 2);
    memset(longp, 'a', FDN__CFG_MAX_PATH_LEN + 1);
    longp[FDN__CFG_MAX_PATH_LEN + 1] = '\0';
    assert_int_equal(fdn__cfg_path_check(longp, &err), FDN_EPATH_SECURITY);
    assert_string_equal(err.message, "Configuration path too long");
    assert_non_null(strstr(err.context, "reason=path_too_long"));
    longp[FDN__CFG_MAX_PATH_LEN] = '\0';
    assert_int_equal(fdn__cfg_path_check(longp, &err), 0); /* exactly the limit */
    free(longp);
}

/* fdn__cfg_validate_change (an update's check when its base tree passed) must answer as
 * fdn__cfg_validate does on the whole tree: the changed leaf's own rule, the leaves it gates
 * (a gate turned on exposes values its rule never checked while it was off), and the
 * cross-key rule, whose other key did not change. */
static void validate_change_answers_as_whole(void **state)
{
    (void)state;
    fdn__cfg_schema_t *s = NULL;
    assert_int_equal(fdn__cfg_schema_create(&s, NULL, 0, NULL), 0);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    for (size_t i = 0; i < s->n; i++)
        vals[i] = json_incref(s->e[i].def);
    const char *gate = "storage.warm.enable", *gated = "storage.warm.max_size_mb";
    const char *psize = "infrastructure.connection_pool.default_config.size";
    const char *povf = "infrastructure.connection_pool.default_config.max_overflow";
    int32_t ig = fdn__cfg_schema_find(s, gate, strlen(gate));
    int32_t id = fdn__cfg_schema_find(s, gated, strlen(gated));
    int32_t is = fdn__cfg_schema_find(s, psize, strlen(psize));
    int32_t io = fdn__cfg_schema_find(s, povf, strlen(povf));
    assert_true(ig >= 0 && id >= 0 && is >= 0 && io >= 0);
    assert_int_equal(s->e[id].only_if, ig);
    fdn_error_t whole = FDN_ERROR_INIT, part = FDN_ERROR_INIT;
    assert_int_equal(fdn__cfg_validate(s, vals, NULL, &whole), 0);

    /* a bad value under a gate that is off passes; turning the gate on must not */
    json_decref(vals[id]);
    vals[id] = json_integer(-1);
    assert_int_equal(fdn__cfg_validate(s, vals, NULL, &whole), 0);
    json_decref(vals[ig]);
    vals[ig] = json_true();
    int rc = fdn__cfg_validate(s, vals, NULL, &whole);
    assert_int_not_equal(rc, 0);
    assert_int_equal(fdn__cfg_validate_change(s, vals, (size_t)ig, &part), rc);
    assert_string_equal(part.message, whole.message);
    json_decref(vals[ig]);
    vals[ig] = json_false();
    json_decref(vals[id]);
    vals[id] = json_integer(100);

    /* the changed leaf's own rule */
    json_decref(vals[is]);
    vals[is] = json_integer(0);
    rc = fdn__cfg_validate(s, vals, NULL, &whole);
    assert_int_not_equal(rc, 0);
    assert_int_equal(fdn__cfg_validate_change(s, vals, (size_t)is, &part), rc);
    assert_string_equal(part.message, whole.message);

    /* the cross-key rule: size + max_overflow past INT_MAX, only size changed */
    json_decref(vals[is]);
    vals[is] = json_integer(2147483647);
    rc = fdn__cfg_validate(s, vals, NULL, &whole);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(whole.message, "size + max_overflow"));
    assert_int_equal(fdn__cfg_validate_change(s, vals, (size_t)is, &part), rc);
    assert_string_equal(part.message, whole.message);

    /* and a change that keeps the tree valid passes both ways */
    json_decref(vals[io]);
    vals[io] = json_integer(0);
    assert_int_equal(fdn__cfg_validate(s, vals, NULL, &whole), 0);
    assert_int_equal(fdn__cfg_validate_change(s, vals, (size_t)io, &part), 0);

    for (size_t i = 0; i < s->n; i++)
        json_decref(vals[i]);
    free(vals);
    fdn__cfg_schema_destroy(s);
}

/* validate_change against validate on random walks: from the default tree (built-in keys and
 * an application's, with rules of every kind), each step replaces one leaf with a value drawn
 * from its default, its enum, values past each rule and of other types, the gate's flips and
 * the pool keys' extremes; whenever the base passed, the short check must give validate's code,
 * message and context. A step that passes becomes the next base, so the walk reaches trees that
 * hold bad values under a gate that is off, and cross-key sums near INT_MAX. */
static uint64_t walk_rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static json_t *walk_value(const fdn__cfg_entry_t *e, uint64_t r)
{
    switch (r % 14) {
    case 0:
    case 1:
        return json_deep_copy(e->def);
    case 2:
        /* one of the leaf's enum values (the first or the second) */
        if (e->enums == NULL || e->enums[0] == NULL)
            return json_integer(1);
        return json_string(e->enums[r / 14 % 2 == 1 && e->enums[1] != NULL ? 1 : 0]);
    case 3:
        return json_integer(-1);
    case 4:
        return json_integer(0);
    case 5:
        return json_integer(2147483647);
    case 6:
        return json_integer(2147483648);
    case 7:
        return json_real(0.5);
    case 8:
        return json_string("x");
    case 9:
        return json_true();
    case 10:
        return json_false();
    case 11:
        return json_null();
    case 12:
        return json_pack("{s:{s:i,s:i}}", "api", "scale", 1000, "limit", (json_int_t)(r % 3) - 1);
    default:
        return json_integer((json_int_t)(r % 200));
    }
}

static void validate_change_random_walks(void **state)
{
    (void)state;
    static const char *const colours[] = {"red", "green", NULL};
    const fdn_config_key_def_t app[] = {
        {.path = "app.workers",
         .type = FDN_CONFIG_INT,
         .default_json = "4",
         .rule = FDN_CONFIG_RULE_POSITIVE,
         .updatable = true},
        {.path = "app.ratio",
         .type = FDN_CONFIG_NUMBER,
         .default_json = "0.5",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = 0,
         .max = 1,
         .updatable = true,
         .error_code = FDN_ECONFIG_INVALID,
         .error_message = "ratio out of range"},
        {.path = "app.colour",
         .type = FDN_CONFIG_ENUM,
         .default_json = "\"red\"",
         .rule = FDN_CONFIG_RULE_ENUM,
         .enum_values = colours,
         .updatable = true},
        {.path = "app.limits",
         .type = FDN_CONFIG_OBJECT,
         .default_json = "{}",
         .rule = FDN_CONFIG_RULE_RATE_RULES,
         .updatable = true},
        {.path = "app.off",
         .type = FDN_CONFIG_BOOL,
         .default_json = "false",
         .rule = FDN_CONFIG_RULE_FALSE_ONLY,
         .updatable = true},
        {.path = "app.any", .type = FDN_CONFIG_ANY, .updatable = true},
    };
    fdn__cfg_schema_t *s = NULL;
    assert_int_equal(fdn__cfg_schema_create(&s, app, sizeof(app) / sizeof(app[0]), NULL), 0);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    assert_non_null(vals);
    for (size_t i = 0; i < s->n; i++)
        vals[i] = json_incref(s->e[i].def);
    fdn_error_t whole = FDN_ERROR_INIT, part = FDN_ERROR_INIT;
    assert_int_equal(fdn__cfg_validate(s, vals, NULL, &whole), 0);
    /* the leaves a walk favours: the gate, what it gates, the cross-key rule's keys */
    size_t hot[16], nhot = 0;
    for (size_t i = 0; i < s->n && nhot < 14; i++)
        if (s->e[i].only_if >= 0)
            hot[nhot++] = (size_t)s->e[i].only_if, hot[nhot++] = i;
    hot[nhot++] = s->pool_size;
    hot[nhot++] = s->pool_overflow;
    assert_true(s->pool_size < s->n && s->pool_overflow < s->n && nhot > 2);
    uint64_t x = 0x9e3779b97f4a7c15u;
    size_t compared = 0, failed = 0;
    for (int step = 0; step < 20000; step++) {
        uint64_t r = walk_rng(&x);
        size_t i = r % 2 == 0 ? hot[(r >> 1) % nhot] : (size_t)((r >> 1) % s->n);
        json_t *v = walk_value(&s->e[i], walk_rng(&x));
        assert_non_null(v);
        json_t *was = vals[i];
        vals[i] = v;
        memset(&whole, 0, sizeof whole);
        memset(&part, 0, sizeof part);
        int rc = fdn__cfg_validate(s, vals, NULL, &whole);
        int rc2 = fdn__cfg_validate_change(s, vals, i, &part);
        assert_int_equal(rc2, rc);
        assert_string_equal(part.message, whole.message);
        assert_string_equal(part.context, whole.context);
        compared++;
        if (rc == 0) {
            json_decref(was);
        } else {
            failed++;
            json_decref(v);
            vals[i] = was;
        }
    }
    /* both answers were met many times */
    assert_true(failed > 1000 && compared - failed > 1000);
    for (size_t i = 0; i < s->n; i++)
        json_decref(vals[i]);
    free(vals);
    fdn__cfg_schema_destroy(s);
}

static json_t *nest(int levels)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < levels; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "k", v);
        v = o;
    }
    return v;
}

static void value_security(void **state)
{
    (void)state;
    fdn_error_t err = FDN_ERROR_INIT;
    json_t *v = nest(20); /* deepest element at level 20 */
    assert_int_equal(fdn__cfg_value_check(v, &err), 0);
    json_decref(v);
    v = nest(21);
    assert_int_equal(fdn__cfg_value_check(v, &err), FDN_EVALUE_SECURITY);
    assert_int_equal(err.ref_code, 1005);
    assert_string_equal(err.message, "Configuration value contains potentially dangerous content");
    assert_non_null(strstr(err.context, "value_type=map"));
    json_decref(v);
    v = nest(100);
    assert_int_equal(fdn__cfg_value_check(v, &err), FDN_EVALUE_SECURITY);
    json_decref(v);
    char *big = malloc(1000002);
    memset(big, 'x', 1000001);
    big[1000001] = '\0';
    v = json_string(big);
    assert_int_equal(fdn__cfg_value_check(v, &err), FDN_EVALUE_SECURITY);
    assert_non_null(strstr(err.context, "value_type=binary"));
    json_decref(v);
    big[1000000] = '\0';
    v = json_string(big);
    assert_int_equal(fdn__cfg_value_check(v, &err), 0); /* exactly 1 000 000 passes */
    json_decref(v);
    free(big);
}

static void env_names(void **state)
{
    (void)state;
    char out[128];
    const char *n = "FDN_AI__PLANNING__SAMPLING_RATE";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), 0);
    assert_string_equal(out, "ai.planning.sampling_rate");
    n = "FDN_SOURCE_DIR";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    n = "FDN_AI____X";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    n = "FDN_AI__";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    n = "PATH";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    n = "FDN_A__B-C";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    /* letters outside ASCII are refused whatever the locale calls them (Latin-1 'E' acute) */
    n = "FDN_CAF\xc9__X";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), FDN_EINVAL);
    n = "FDN_QUIT__INIT"; /* every ASCII capital lowers to its own small letter (Turkish 'I') */
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, sizeof(out)), 0);
    assert_string_equal(out, "quit.init");
    n = "FDN_AI__PLANNING__SAMPLING_RATE";
    assert_int_equal(fdn__cfg_env_name_to_path(n, strlen(n), out, 8), FDN_ENOBUFS);
}

static void parse_text_by_type(void **state)
{
    (void)state;
    json_t *v = NULL;
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_BOOL, "TRUE", &v), 0);
    assert_true(json_is_true(v));
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_BOOL, "maybe", &v), FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_INT, "42", &v), 0);
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_INT, "4.2", &v), FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_INT, "99999999999999999999", &v),
                     FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_NUMBER, "0.5", &v), 0);
    assert_true(json_is_real(v));
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_NUMBER, "1", &v), 0);
    assert_true(json_is_integer(v));
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_NUMBER, "nan", &v), FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_NUMBER, "", &v), FDN_ETYPE_MISMATCH);
    /* decimal only: strtod would take hex floats, hex integers, inf and leading blanks */
    static const char *const not_decimal[] = {"0x1p-2",    "0X1P-2", "0x10", "-0x1.8p1", "inf",
                                              "-infinity", " 1",     "1 ",   "1e",       ".",
                                              "-",         "1e+",    "1.5x", "0b1"};
    for (size_t i = 0; i < sizeof(not_decimal) / sizeof(not_decimal[0]); i++) {
        if (fdn__cfg_parse_text(FDN_CONFIG_NUMBER, not_decimal[i], &v) != FDN_ETYPE_MISMATCH)
            fail_msg("number \"%s\" accepted", not_decimal[i]);
    }
    static const char *const decimal[] = {"-2.5", "+1.5", "1e3", "1E-3", ".5", "5.", "-0"};
    for (size_t i = 0; i < sizeof(decimal) / sizeof(decimal[0]); i++) {
        if (fdn__cfg_parse_text(FDN_CONFIG_NUMBER, decimal[i], &v) != 0)
            fail_msg("number \"%s\" refused", decimal[i]);
        json_decref(v);
    }
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_STRING_OR_NULL, "null", &v), 0);
    assert_true(json_is_null(v));
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_OBJECT, "{\"a\":1}", &v), 0);
    json_decref(v);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_OBJECT, "[1]", &v), FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn__cfg_parse_text(FDN_CONFIG_ANY, "schedulers", &v), 0);
    assert_true(json_is_string(v));
    json_decref(v);
}

static void schema_rejects_bad_app_keys(void **state)
{
    (void)state;
    fdn__cfg_schema_t *s = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_config_key_def_t dup = {
        .path = "dev.debug_mode", .type = FDN_CONFIG_BOOL, .default_json = "false"};
    assert_int_equal(fdn__cfg_schema_create(&s, &dup, 1, &err), FDN_ECONFIG_STRUCTURE);
    fdn_config_key_def_t sect = {.path = "dev", .type = FDN_CONFIG_BOOL, .default_json = "false"};
    assert_int_equal(fdn__cfg_schema_create(&s, &sect, 1, &err), FDN_ECONFIG_STRUCTURE);
    fdn_config_key_def_t baddef = {.path = "app.n",
                                   .type = FDN_CONFIG_INT,
                                   .default_json = "0",
                                   .rule = FDN_CONFIG_RULE_POSITIVE};
    assert_int_equal(fdn__cfg_schema_create(&s, &baddef, 1, &err), FDN_ECONFIG_STRUCTURE);
    fdn_config_key_def_t evil = {
        .path = "app.__struct__", .type = FDN_CONFIG_INT, .default_json = "1"};
    assert_int_equal(fdn__cfg_schema_create(&s, &evil, 1, &err), FDN_ECONFIG_STRUCTURE);
    fdn_config_key_def_t ok = {.path = "app.n",
                               .type = FDN_CONFIG_INT,
                               .default_json = "3",
                               .rule = FDN_CONFIG_RULE_POSITIVE};
    assert_int_equal(fdn__cfg_schema_create(&s, &ok, 1, &err), 0);
    assert_true(fdn__cfg_schema_find(s, "app.n", 5) >= 0);
    assert_true(fdn__cfg_schema_is_section(s, "app", 3));
    fdn__cfg_schema_destroy(s);
}

static void updatable_list(void **state)
{
    (void)state;
    size_t n = 0;
    const char *const *p = fdn_config_updatable_paths(&n);
    assert_int_equal(n, 19);
    assert_string_equal(p[0], "ai.planning.sampling_rate");
    assert_string_equal(p[12], "infrastructure.rate_limiting.cleanup_interval");
    /* the event store's retention, both tiers (issue 21) */
    assert_string_equal(p[13], "storage.hot.max_events");
    assert_string_equal(p[18], "storage.warm.retention.max_age_seconds");
    assert_null(p[19]);
}

/* The reference's updatable list names exactly the key table's rows flagged updatable. */
static void updatable_list_matches_key_table(void **state)
{
    (void)state;
    size_t flagged = 0;
    for (size_t i = 0; i < fdn__cfg_builtin_count; i++) {
        const fdn_config_key_def_t *d = &fdn__cfg_builtins[i].d;
        bool listed = false;
        for (size_t k = 0; k < fdn__cfg_updatable_count; k++)
            listed = listed || strcmp(fdn__cfg_updatable_paths[k], d->path) == 0;
        if (listed != d->updatable)
            fail_msg("%s: flagged updatable %d, listed %d", d->path, d->updatable, listed);
        flagged += d->updatable ? 1 : 0;
    }
    assert_int_equal(flagged, fdn__cfg_updatable_count);
    assert_null(fdn__cfg_updatable_paths[fdn__cfg_updatable_count]);
}

/* ---- the walks over a JSON document: merge (first problem), validate's unknown-key pass,
 * check (every problem). These pin each walk's codes, messages, context and order. ---- */

typedef struct merged {
    fdn__cfg_schema_t *s;
    json_t **vals;
    uint8_t *marks;
} merged_t;

/* Built-in schema plus one application key five levels deep; vals hold the defaults. */
static void merge_setup(merged_t *m)
{
    fdn_config_key_def_t app = {.path = "app.deep.er.est.n",
                                .type = FDN_CONFIG_INT,
                                .default_json = "3",
                                .rule = FDN_CONFIG_RULE_POSITIVE};
    m->s = NULL;
    assert_int_equal(fdn__cfg_schema_create(&m->s, &app, 1, NULL), 0);
    m->vals = calloc(m->s->n, sizeof(json_t *));
    m->marks = calloc(m->s->n, 1);
    assert_non_null(m->vals);
    assert_non_null(m->marks);
    for (size_t i = 0; i < m->s->n; i++)
        m->vals[i] = json_incref(m->s->e[i].def);
}

static void merge_teardown(merged_t *m)
{
    for (size_t i = 0; i < m->s->n; i++)
        json_decref(m->vals[i]);
    free(m->vals);
    free(m->marks);
    fdn__cfg_schema_destroy(m->s);
}

static int merge_text(merged_t *m, const char *doc, fdn_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loads(doc, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        fail_msg("test document does not parse: %s", jerr.text);
    int rc = fdn__cfg_merge_json(m->s, m->vals, root, "f.json", m->marks, 7, err);
    json_decref(root);
    return rc;
}

static size_t at(const fdn__cfg_schema_t *s, const char *path)
{
    int32_t i = fdn__cfg_schema_find(s, path, strlen(path));
    assert_true(i >= 0);
    return (size_t)i;
}

/* n copies of c, NUL-terminated (caller frees). */
static char *repeat(char c, size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

static void merge_sets_leaves_at_any_depth(void **state)
{
    (void)state;
    merged_t m;
    merge_setup(&m);
    fdn_error_t err = FDN_ERROR_INIT;
    const char *doc =
        "{\"infrastructure\":{\"circuit_breaker\":{\"default_config\":{\"failure_threshold\":9}},"
        "\"rate_limiting\":{\"default_rules\":{\"x\":{\"scale\":1,\"limit\":2}}}},"
        "\"app\":{\"deep\":{\"er\":{\"est\":{\"n\":4}}}},"
        "\"capture\":{\"ring_buffer\":{\"num_buffers\":{\"any\":\"thing\"}}},"
        "\"ai\":{\"planning\":{\"sampling_rate\":5}}}";
    assert_int_equal(merge_text(&m, doc, &err), 0);
    size_t ft = at(m.s, "infrastructure.circuit_breaker.default_config.failure_threshold");
    size_t rr = at(m.s, "infrastructure.rate_limiting.default_rules");
    size_t n = at(m.s, "app.deep.er.est.n");
    size_t nb = at(m.s, "capture.ring_buffer.num_buffers");
    size_t sr = at(m.s, "ai.planning.sampling_rate");
    assert_int_equal(json_integer_value(m.vals[ft]), 9);
    assert_int_equal(json_integer_value(m.vals[n]), 4);
    /* an object-typed leaf and an "any" leaf take the object whole: no walk below them */
    assert_non_null(json_object_get(m.vals[rr], "x"));
    assert_int_equal(json_object_size(m.vals[rr]), 1);
    assert_string_equal(json_string_value(json_object_get(m.vals[nb], "any")), "thing");
    /* merge checks types only: a well-typed value that breaks its rule merges */
    assert_int_equal(json_integer_value(m.vals[sr]), 5);
    for (size_t i = 0; i < m.s->n; i++) {
        bool set = i == ft || i == rr || i == n || i == nb || i == sr;
        assert_int_equal(m.marks[i], set ? 7 : 0);
        if (!set && !json_equal(m.vals[i], m.s->e[i].def))
            fail_msg("%s changed", m.s->e[i].path);
    }
    /* a NULL marks array is allowed */
    json_t *root = json_loads("{\"dev\":{\"debug_mode\":true}}", 0, NULL);
    assert_int_equal(fdn__cfg_merge_json(m.s, m.vals, root, "f.json", NULL, 1, &err), 0);
    json_decref(root);
    assert_true(json_is_true(m.vals[at(m.s, "dev.debug_mode")]));
    assert_int_equal(m.marks[at(m.s, "dev.debug_mode")], 0);
    merge_teardown(&m);
}

static void merge_errors_name_source_path_rule(void **state)
{
    (void)state;
    merged_t m;
    merge_setup(&m);
    fdn_error_t err = FDN_ERROR_INIT;

    assert_int_equal(merge_text(&m, "{\"app\":{\"deep\":{\"er\":{\"est\":{\"n\":\"x\"}}}}}", &err),
                     FDN_ECONFIG_INVALID);
    assert_string_equal(err.message, "f.json: app.deep.er.est.n: expected int, got string");
    assert_non_null(strstr(err.context, "source=f.json"));
    assert_non_null(strstr(err.context, "path=app.deep.er.est.n"));
    assert_non_null(strstr(err.context, "rule=\"type int\""));

    assert_int_equal(
        merge_text(
            &m, "{\"infrastructure\":{\"connection_pool\":{\"default_config\":{\"strategy\":1}}}}",
            &err),
        FDN_ECONFIG_INVALID);
    assert_string_equal(err.message, "f.json: infrastructure.connection_pool.default_config."
                                     "strategy: expected enum, got integer");

    assert_int_equal(
        merge_text(&m,
                   "{\"infrastructure\":{\"connection_pool\":{\"default_config\":{\"nope\":1}}}}",
                   &err),
        FDN_ECONFIG_STRUCTURE);
    assert_string_equal(
        err.message,
        "f.json: infrastructure.connection_pool.default_config.nope: unknown configuration key");
    assert_non_null(strstr(err.context, "source=f.json"));
    assert_non_null(strstr(err.context, "path=infrastructure.connection_pool.default_config.nope"));
    assert_non_null(strstr(err.context, "rule=\"known keys only\""));

    /* an unknown key is named by its first unknown component */
    assert_int_equal(merge_text(&m, "{\"dev\":{\"extra\":{\"deeper\":1}}}", &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "f.json: dev.extra: unknown configuration key");

    assert_int_equal(merge_text(&m, "{\"capture\":{\"ring_buffer\":[1]}}", &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "f.json: capture.ring_buffer: expected an object (section)");
    assert_non_null(strstr(err.context, "path=capture.ring_buffer"));
    assert_null(strstr(err.context, "rule="));

    assert_int_equal(merge_text(&m, "[1]", &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "f.json: top level must be an object");

    /* a key that makes the path longer than FDN__CFG_MAX_PATH_LEN; one byte shorter is only
     * unknown */
    char *k = repeat('k', FDN__CFG_MAX_PATH_LEN - 3);
    json_t *root = json_pack("{s:{s:i}}", "dev", k, 1);
    assert_int_equal(fdn__cfg_merge_json(m.s, m.vals, root, "f.json", m.marks, 7, &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "f.json: configuration path too long");
    json_decref(root);
    k[FDN__CFG_MAX_PATH_LEN - 4] = '\0';
    root = json_pack("{s:{s:i}}", "dev", k, 1);
    assert_int_equal(fdn__cfg_merge_json(m.s, m.vals, root, "f.json", m.marks, 7, &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_null(strstr(err.message, "too long"));
    assert_non_null(strstr(err.message, "f.json: dev.kkkk"));
    json_decref(root);
    free(k);

    /* the first problem in document order stops the merge; leaves before it are merged */
    for (size_t i = 0; i < m.s->n; i++)
        m.marks[i] = 0;
    assert_int_equal(
        merge_text(&m,
                   "{\"dev\":{\"debug_mode\":true,\"verbose_logging\":\"x\",\"nope\":1},"
                   "\"interface\":{\"max_results\":5}}",
                   &err),
        FDN_ECONFIG_INVALID);
    assert_string_equal(err.message, "f.json: dev.verbose_logging: expected bool, got string");
    assert_true(json_is_true(m.vals[at(m.s, "dev.debug_mode")]));
    assert_int_equal(m.marks[at(m.s, "dev.debug_mode")], 7);
    assert_int_equal(m.marks[at(m.s, "dev.verbose_logging")], 0);
    assert_int_equal(m.marks[at(m.s, "interface.max_results")], 0);
    assert_int_equal(json_integer_value(m.vals[at(m.s, "interface.max_results")]), 1000);
    merge_teardown(&m);
}

static void validate_rejects_unknown_keys_after_values(void **state)
{
    (void)state;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(validate_with("infrastructure.connection_pool.default_config.nope", "1", &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: "
                                     "infrastructure.connection_pool.default_config.nope");
    assert_non_null(strstr(err.context, "path=infrastructure.connection_pool.default_config.nope"));
    /* named by the first unknown component; an unknown section is not walked */
    assert_int_equal(validate_with("dev.extra.deeper", "1", &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: dev.extra");
    assert_int_equal(validate_with("nope", "{}", &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: nope");
    /* object-typed and "any" leaves are values, not sections: nothing below them is a key */
    assert_int_equal(validate_with("capture.ring_buffer.num_buffers", "{\"a\":{\"b\":1}}", &err),
                     0);
    assert_int_equal(validate_with("infrastructure.rate_limiting.default_rules",
                                   "{\"zz\":{\"scale\":1,\"limit\":1}}", &err),
                     0);

    json_t *t = default_tree();
    /* every value rule runs before the unknown-key walk */
    tree_set(t, "dev.nope", json_integer(1));
    tree_set(t, "capture.ring_buffer.size", json_integer(0));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid ring buffer configuration");
    tree_set(t, "capture.ring_buffer.size", json_integer(1));
    /* unknown keys: the first in document order */
    tree_set(t, "zzz", json_integer(1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: dev.nope");
    tree_set(t, "dev.nope", NULL);
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: zzz");
    tree_set(t, "zzz", NULL);
    /* keys of a gated section are not required, its unknown keys still are unknown */
    tree_set(t, "storage.warm.path", NULL);
    assert_int_equal(validate_tree(t, &err), 0);
    tree_set(t, "storage.warm.bogus", json_integer(1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key: storage.warm.bogus");
    tree_set(t, "storage.warm.bogus", NULL);
    /* a key too long for a path */
    char *k = repeat('k', FDN__CFG_MAX_PATH_LEN + 1);
    json_object_set_new(t, k, json_integer(1));
    assert_int_equal(validate_tree(t, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Unknown configuration key");
    free(k);
    json_decref(t);
}

typedef struct problem_log {
    int n;
    char paths[16][FDN__CFG_MAX_PATH_LEN + 1];
    char msgs[16][512];
    int codes[16];
} problem_log_t;

static void log_problem(const char *path, const char *message, int code, void *user)
{
    problem_log_t *p = user;
    if (p->n < 16) {
        snprintf(p->paths[p->n], sizeof p->paths[0], "%s", path);
        snprintf(p->msgs[p->n], sizeof p->msgs[0], "%s", message);
        p->codes[p->n] = code;
    }
    p->n++;
}

static void expect_problem(const problem_log_t *p, int i, const char *path, const char *msg,
                           int code)
{
    assert_true(i < p->n);
    assert_string_equal(p->paths[i], path);
    assert_string_equal(p->msgs[i], msg);
    assert_int_equal(p->codes[i], code);
}

static int check_text(const char *doc, problem_log_t *p)
{
    memset(p, 0, sizeof(*p));
    return fdn_config_check_json(doc, strlen(doc), log_problem, p);
}

static void check_reports_every_problem_in_order(void **state)
{
    (void)state;
    problem_log_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    /* walk problems in document order, then rule problems in schema order over the defaults
     * with the document's well-typed values */
    const char *doc =
        "{\"nope\":1,"
        "\"infrastructure\":{\"connection_pool\":{\"default_config\":{\"size\":\"ten\","
        "\"extra\":{}}}},"
        "\"capture\":{\"ring_buffer\":5},"
        "\"storage\":{\"warm\":{\"enable\":true,\"compression\":\"lz4\"}},"
        "\"ai\":{\"planning\":{\"sampling_rate\":5}},"
        "\"dev\":{\"debug_mode\":\"yes\"}}";
    assert_int_equal(check_text(doc, p), FDN_ECONFIG_STRUCTURE);
    assert_int_equal(p->n, 7);
    int S_ = FDN_ECONFIG_STRUCTURE;
    expect_problem(p, 0, "nope", "unknown configuration key (rule: known keys only)", S_);
    expect_problem(p, 1, "infrastructure.connection_pool.default_config.size",
                   "expected int, got string (rule: type int)", FDN_ECONFIG_INVALID);
    expect_problem(p, 2, "infrastructure.connection_pool.default_config.extra",
                   "unknown configuration key (rule: known keys only)", S_);
    expect_problem(p, 3, "capture.ring_buffer", "expected an object (rule: section)", S_);
    expect_problem(p, 4, "dev.debug_mode", "expected bool, got string (rule: type bool)",
                   FDN_ECONFIG_INVALID);
    expect_problem(p, 5, "ai.planning.sampling_rate",
                   "Sampling rate must be between 0 and 1 (rule: must be between 0 and 1)",
                   FDN_ECONFIG_RANGE);
    expect_problem(p, 6, "storage.warm.compression",
                   "Invalid compression type (rule: one of none,gzip,zstd)", FDN_ECONFIG_INVALID);

    /* the return value is the first problem's code */
    assert_int_equal(check_text("{\"ai\":{\"planning\":{\"sampling_rate\":5}},\"x\":1}", p),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(p->n, 2);
    expect_problem(p, 0, "x", "unknown configuration key (rule: known keys only)", S_);
    assert_int_equal(check_text("{\"ai\":{\"planning\":{\"sampling_rate\":5}}}", p),
                     FDN_ECONFIG_RANGE);

    /* gated keys are checked only when their switch is on, in the document or by default */
    assert_int_equal(check_text("{\"storage\":{\"warm\":{\"compression\":\"lz4\"}}}", p), 0);
    assert_int_equal(p->n, 0);

    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"ok\":{\"scale\":1,\"limit\":1},\"bad\":{\"scale\":0,"
                                "\"limit\":1}}}}}",
                                p),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(p->n, 1);
    expect_problem(p, 0, "infrastructure.rate_limiting.default_rules",
                   "Invalid rate limiting rule: bad (rule: each rule {\"scale\": int > 0, "
                   "\"limit\": int > 0, optional \"backend\": \"memory\" | \"redis\", optional "
                   "\"failure_policy\": \"local\" | \"fail_open\" | \"fail_closed\"})",
                   S_);
    /* a rule may choose its backend: memory or redis, nothing else */
    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"a\":{\"scale\":1,\"limit\":1,\"backend\":\"memory\"},"
                                "\"b\":{\"scale\":1,\"limit\":1,\"backend\":\"redis\"}}}}}",
                                p),
                     0);
    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"c\":{\"scale\":1,\"limit\":1,\"backend\":\"disk\"}}}}}",
                                p),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"d\":{\"scale\":1,\"limit\":1,\"backend\":7}}}}}",
                                p),
                     FDN_ECONFIG_STRUCTURE);
    /* and its failure policy while Redis is away */
    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"e\":{\"scale\":1,\"limit\":1,\"failure_policy\":"
                                "\"fail_open\"}}}}}",
                                p),
                     0);
    assert_int_equal(check_text("{\"infrastructure\":{\"rate_limiting\":{\"default_rules\":"
                                "{\"f\":{\"scale\":1,\"limit\":1,\"failure_policy\":"
                                "\"maybe\"}}}}}",
                                p),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(check_text("{\"storage\":{\"cold\":{\"enable\":true}},"
                                "\"app\":{\"deep\":1}}",
                                p),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(p->n, 2);
    expect_problem(p, 0, "app", "unknown configuration key (rule: known keys only)", S_);
    expect_problem(p, 1, "storage.cold.enable",
                   "Invalid cold storage configuration (rule: must be false)", S_);

    /* a key too long for a path is reported at its parent and the walk goes on */
    char *k = repeat('k', FDN__CFG_MAX_PATH_LEN - 3);
    json_t *root = json_pack("{s:{s:i,s:i}}", "dev", k, 1, "nope", 2);
    char *txt = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    assert_non_null(txt);
    assert_int_equal(check_text(txt, p), FDN_ECONFIG_STRUCTURE);
    free(txt);
    assert_int_equal(p->n, 2);
    char want[256];
    snprintf(want, sizeof want, "key '%.60s' makes the path too long (max %d bytes)", k,
             FDN__CFG_MAX_PATH_LEN);
    expect_problem(p, 0, "dev", want, S_);
    expect_problem(p, 1, "dev.nope", "unknown configuration key (rule: known keys only)", S_);
    free(k);
    free(p);
}

/* A top-level or nested key holding a '.' ("dev.debug_mode" beside or instead of
 * {"dev":{"debug_mode":...}}) is refused the same way by the three readers of a document:
 * validate_json, check_json and the file merge of create. Before, validate_json skipped it
 * unread (any value passed), check_json and the merge took it as the leaf, and a key given
 * both ways silently overwrote the other despite JSON_REJECT_DUPLICATES. */
static void dotted_keys_refused_everywhere(void **state)
{
    (void)state;
    static const struct {
        const char *key; /* the dotted key, as added to the document's top level or section */
        const char *section;
        const char *value;
        const char *path; /* the path the refusal names */
    } cases[] = {
        {"dev.debug_mode", NULL, "\"not a bool\"", "dev.debug_mode"},
        {"dev.debug_mode", NULL, "true", "dev.debug_mode"}, /* well typed */
        {"rate_limiting.enabled", "infrastructure", "false",
         "infrastructure.rate_limiting.enabled"},
        {"planning.nope", "ai", "1", "ai.planning.nope"},
    };
    problem_log_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *t = default_tree();
        json_t *at_obj = cases[i].section != NULL ? json_object_get(t, cases[i].section) : t;
        json_object_set_new(at_obj, cases[i].key,
                            json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        char *doc = json_dumps(t, JSON_COMPACT);
        json_decref(t);
        fdn_error_t err = FDN_ERROR_INIT;
        /* validate_json */
        assert_int_equal(fdn_config_validate_json(doc, strlen(doc), &err), FDN_ECONFIG_STRUCTURE);
        char want[256];
        snprintf(want, sizeof want,
                 "Dotted configuration key: %s (write one nested object per component)",
                 cases[i].path);
        assert_string_equal(err.message, want);
        snprintf(want, sizeof want, "path=%s", cases[i].path);
        assert_non_null(strstr(err.context, want));
        /* check_json: the same code, the key named */
        assert_int_equal(check_text(doc, p), FDN_ECONFIG_STRUCTURE);
        assert_int_equal(p->n, 1);
        expect_problem(p, 0, cases[i].path,
                       "dotted key: write one nested object per component (rule: no '.' in "
                       "keys)",
                       FDN_ECONFIG_STRUCTURE);
        /* the file merge of fdn_config_create */
        merged_t m;
        merge_setup(&m);
        err = (fdn_error_t)FDN_ERROR_INIT;
        assert_int_equal(merge_text(&m, doc, &err), FDN_ECONFIG_STRUCTURE);
        snprintf(want, sizeof want, "f.json: %s: dotted key: write one nested object per component",
                 cases[i].path);
        assert_string_equal(err.message, want);
        merge_teardown(&m);
        free(doc);
    }
    /* given both ways, the flat form no longer overwrites the nested one */
    const char *both = "{\"dev\":{\"debug_mode\":false},\"dev.debug_mode\":true}";
    merged_t m;
    merge_setup(&m);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(merge_text(&m, both, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(
        err.message, "f.json: dev.debug_mode: dotted key: write one nested object per component");
    merge_teardown(&m);
    assert_int_equal(check_text(both, p), FDN_ECONFIG_STRUCTURE);
    assert_int_equal(p->n, 1);
    /* a dot inside an object-typed value is the value's business, not a key of the schema */
    json_t *t = default_tree();
    json_object_set_new(json_object_get(json_object_get(t, "capture"), "ring_buffer"),
                        "num_buffers", json_pack("{s:i}", "a.b", 1));
    char *doc = json_dumps(t, JSON_COMPACT);
    assert_int_equal(fdn_config_validate_json(doc, strlen(doc), &err), 0);
    assert_int_equal(check_text(doc, p), 0);
    free(doc);
    json_decref(t);
    free(p);
}

/* Integer values meet their bounds exactly: 2^53 + 1 is not "at most 2^53" although both
 * are the same double; bounds beyond the int64 range and fractional bounds too. */
static void integer_bounds_compare_exactly(void **state)
{
    (void)state;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(validate_with("storage.warm.retention.max_events", "9007199254740992", &err),
                     0);
    assert_int_equal(validate_with("storage.warm.retention.max_events", "9007199254740993", &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_non_null(strstr(err.context, "path=storage.warm.retention.max_events"));
    /* a bounded positive key (over_bound): interface.max_results <= 4294967295 */
    assert_int_equal(validate_with("interface.max_results", "4294967295", &err), 0);
    assert_int_equal(validate_with("interface.max_results", "4294967296", &err),
                     FDN_ECONFIG_STRUCTURE);
    /* application RANGE keys: bounds past int64, fractional bounds, large bounds */
    static const char *const big = "9223372036854775807", *const small = "-9223372036854775808";
    fdn_config_key_def_t keys[] = {
        {.path = "app.wide",
         .type = FDN_CONFIG_INT,
         .default_json = "0",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = -1e19,
         .max = 1e19},
        {.path = "app.frac",
         .type = FDN_CONFIG_INT,
         .default_json = "0",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = -0.5,
         .max = 2.5},
        {.path = "app.big",
         .type = FDN_CONFIG_INT,
         .default_json = "0",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = 0,
         .max = 9223372036854775807.0 /* 2^63 */},
        {.path = "app.num",
         .type = FDN_CONFIG_NUMBER,
         .default_json = "0",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = 0,
         .max = 9007199254740992.0},
    };
    fdn__cfg_schema_t *s = NULL;
    assert_int_equal(fdn__cfg_schema_create(&s, keys, 4, &err), 0);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    assert_non_null(vals);
    for (size_t i = 0; i < s->n; i++)
        vals[i] = s->e[i].def;
    static const struct {
        const char *path, *value;
        bool ok;
    } cases[] = {
        {"app.wide", big, true},
        {"app.wide", small, true},
        {"app.frac", "2", true},
        {"app.frac", "3", false},
        {"app.frac", "0", true},
        {"app.frac", "-1", false},
        {"app.big", big, true},
        {"app.big", "-1", false},
        {"app.num", "9007199254740993", false},
        {"app.num", "9007199254740992", true},
        {"app.num", "9007199254740992.0", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t k = at(s, cases[i].path);
        json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        vals[k] = v;
        int rc = fdn__cfg_validate(s, vals, NULL, &err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("%s = %s: rc %d, expected %s", cases[i].path, cases[i].value, rc,
                     cases[i].ok ? "accepted" : "refused");
        vals[k] = s->e[k].def;
        json_decref(v);
    }
    free(vals);
    fdn__cfg_schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_validate),
        cmocka_unit_test(every_rule_good_and_bad),
        cmocka_unit_test(reference_codes),
        cmocka_unit_test(validation_order_first_failure),
        cmocka_unit_test(warm_rule),
        cmocka_unit_test(malformed_sections_are_1001),
        cmocka_unit_test(path_security),
        cmocka_unit_test(validate_change_answers_as_whole),
        cmocka_unit_test(validate_change_random_walks),
        cmocka_unit_test(value_security),
        cmocka_unit_test(env_names),
        cmocka_unit_test(parse_text_by_type),
        cmocka_unit_test(schema_rejects_bad_app_keys),
        cmocka_unit_test(updatable_list),
        cmocka_unit_test(updatable_list_matches_key_table),
        cmocka_unit_test(merge_sets_leaves_at_any_depth),
        cmocka_unit_test(merge_errors_name_source_path_rule),
        cmocka_unit_test(validate_rejects_unknown_keys_after_values),
        cmocka_unit_test(check_reports_every_problem_in_order),
        cmocka_unit_test(dotted_keys_refused_everywhere),
        cmocka_unit_test(integer_bounds_compare_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
