/* Unit tests: the config service (reference §1.4-§1.8, §2.1, §11.1-§11.3). No sleeps:
 * subscriber deliveries are awaited on condition variables, time is a manual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/config.h>
#include "logic/config_path.h"
#include "services/config_int.h"
#include "validation/config_keys.h"
#include "threads.h"

static const char *const no_env[] = {NULL};

static fdn_config_t *mk_opts(fdn_config_opts_t *o)
{
    fdn_config_t *c = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (o->envp == NULL)
        o->envp = no_env;
    int rc = fdn_config_create(&c, o, &err);
    if (rc != 0)
        fail_msg("create: %d %s", rc, err.message);
    return c;
}

static fdn_config_t *mk(void)
{
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    return mk_opts(&o);
}

static char *get_json(fdn_config_t *c, const char *path)
{
    char *out = NULL;
    int rc = fdn_config_get_json(c, path, &out, NULL);
    if (rc != 0)
        fail_msg("get_json %s: %d", path, rc);
    return out;
}

/* ---- reads ---- */

static void reads_and_not_found(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    char buf[32];
    assert_int_equal(fdn_config_get_string(c, "ai.provider", buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "mock");
    bool b = true;
    assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &b), 0);
    assert_false(b);
    double d = -1;
    assert_int_equal(fdn_config_get_double(c, "ai.planning.sampling_rate", &d), 0);
    assert_true(d >= 0 && d <= 1);
    int64_t i = 0;
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 1000);
    assert_int_equal(
        fdn_config_get_int(c, "infrastructure.rate_limiting.default_rules.api_calls.limit", &i), 0);
    assert_int_equal(i, 100);
    /* null is distinct from missing */
    bool isnull = false;
    assert_int_equal(fdn_config_is_null(c, "ai.api_key", &isnull), 0);
    assert_true(isnull);
    assert_int_equal(fdn_config_get_string(c, "ai.api_key", buf, sizeof(buf), NULL),
                     FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn_config_is_null(c, "ai.nonexistent", &isnull), FDN_ECONFIG_PATH_NOT_FOUND);
    static const char *missing[] = {"invalid.path",     "nonexistent",
                                    "ai.nonexistent",   "very.deeply.nested.nonexistent.path",
                                    "dev.debug_mode.x", "",
                                    "ai..provider"};
    for (size_t k = 0; k < sizeof(missing) / sizeof(missing[0]); k++) {
        int rc = fdn_config_get_int(c, missing[k], &i);
        if (k == 5)
            assert_int_equal(rc, FDN_ETYPE_MISMATCH); /* "" is the whole tree */
        else
            assert_int_equal(rc, FDN_ECONFIG_PATH_NOT_FOUND);
    }
    fdn_error_t err = FDN_ERROR_INIT;
    char *out = NULL;
    assert_int_equal(fdn_config_get_json(c, "dev.debug_mode.nested_key", &out, &err),
                     FDN_ECONFIG_PATH_NOT_FOUND);
    assert_int_equal(strncmp(err.message, "Configuration path not found", 28), 0);
    assert_int_equal(fdn_config_get_json(c, "ai.__struct__", &out, &err), FDN_EPATH_SECURITY);
    assert_int_equal(fdn_config_get_int(c, "Elixir.System.x", &i), FDN_EPATH_SECURITY);
    char *whole = get_json(c, "");
    assert_non_null(strstr(whole, "\"infrastructure\""));
    assert_non_null(strstr(whole, "\"api_key\":null"));
    assert_int_equal(fdn_config_validate_json(whole, strlen(whole), NULL), 0);
    char *again = get_json(c, "");
    assert_string_equal(whole, again); /* deterministic */
    fdn_free(whole);
    fdn_free(again);
    char *sect = get_json(c, "ai.planning");
    assert_string_equal(sect,
                        "{\"performance_target\":0.01,\"sampling_rate\":1.0,\"default_strategy\":"
                        "\"balanced\"}");
    fdn_free(sect);
    size_t need = 0;
    assert_int_equal(fdn_config_get_string(c, "ai.model", buf, 3, &need), FDN_ENOBUFS);
    assert_int_equal(need, 6);
    fdn_config_destroy(c);
    fdn_config_destroy(NULL);
}

static void key_handles(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    fdn_config_key_t k_rate, k_dbg, k_max;
    assert_int_equal(fdn_config_key_resolve(c, "ai.planning.sampling_rate", &k_rate), 0);
    assert_int_equal(fdn_config_key_resolve(c, "dev.debug_mode", &k_dbg), 0);
    assert_int_equal(fdn_config_key_resolve(c, "interface.max_results", &k_max), 0);
    assert_int_equal(fdn_config_key_resolve(c, "ai.planning", &k_max), FDN_ECONFIG_PATH_NOT_FOUND);
    assert_int_equal(fdn_config_key_resolve(c, "interface.max_results", &k_max), 0);
    double d;
    bool b;
    int64_t i;
    assert_int_equal(fdn_config_key_get_double(c, k_rate, &d), 0);
    assert_true(d == 1.0);
    assert_int_equal(fdn_config_key_get_bool(c, k_dbg, &b), 0);
    assert_false(b);
    assert_int_equal(fdn_config_key_get_int(c, k_max, &i), 0);
    assert_int_equal(i, 1000);
    assert_int_equal(fdn_config_key_get_int(c, k_dbg, &i), FDN_ETYPE_MISMATCH);
    assert_int_equal(fdn_config_key_get_double(c, k_max, &d), 0); /* ints convert */
    assert_int_equal(fdn_config_key_get_int(c, 100000, &i), FDN_EINVAL);
    assert_int_equal(fdn_config_update_double(c, "ai.planning.sampling_rate", 0.25, NULL), 0);
    assert_int_equal(fdn_config_key_get_double(c, k_rate, &d), 0);
    assert_true(d == 0.25);
    fdn_config_destroy(c);
}

/* ---- updates ---- */

typedef struct upd_case {
    const char *path;
    const char *good;
    const char *bad;
    int bad_code;
} upd_case_t;

static const upd_case_t updatable[] = {
    {"ai.planning.sampling_rate", "0.8", "2.0", FDN_ECONFIG_RANGE},
    {"ai.planning.performance_target", "0.5", "-1", FDN_ECONFIG_CONSTRAINT},
    {"capture.processing.batch_size", "7", "0", FDN_ECONFIG_STRUCTURE},
    {"capture.processing.flush_interval", "9", "2.5", FDN_ECONFIG_STRUCTURE},
    {"interface.query_timeout", "86400", "-4", FDN_ECONFIG_STRUCTURE},
    {"interface.max_results", "12", "\"12\"", FDN_ECONFIG_STRUCTURE},
    {"dev.debug_mode", "true", "1", FDN_ECONFIG_STRUCTURE},
    {"dev.verbose_logging", "true", "\"yes\"", FDN_ECONFIG_STRUCTURE},
    {"dev.performance_monitoring", "false", "null", FDN_ECONFIG_STRUCTURE},
    {"infrastructure.rate_limiting.enabled", "false", "[true]", FDN_ECONFIG_STRUCTURE},
    {"infrastructure.circuit_breaker.enabled", "false", "{}", FDN_ECONFIG_STRUCTURE},
    {"infrastructure.connection_pool.enabled", "false", "0", FDN_ECONFIG_STRUCTURE},
    {"infrastructure.rate_limiting.cleanup_interval", "1000", "0", FDN_ECONFIG_STRUCTURE},
};

static void each_updatable_path(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    uint64_t rev = fdn_config_revision(c);
    assert_int_equal(rev, 1);
    for (size_t k = 0; k < sizeof(updatable) / sizeof(updatable[0]); k++) {
        const upd_case_t *u = &updatable[k];
        fdn_error_t err = FDN_ERROR_INIT;
        assert_true(fdn_config_is_updatable(c, u->path));
        char *before = get_json(c, "");
        int rc = fdn_config_update_json(c, u->path, u->bad, &err);
        if (rc != u->bad_code)
            fail_msg("%s=%s: %d %s", u->path, u->bad, rc, err.message);
        char *after = get_json(c, "");
        assert_string_equal(before, after); /* a failed update changes nothing */
        assert_int_equal(fdn_config_revision(c), rev);
        rc = fdn_config_update_json(c, u->path, u->good, &err);
        if (rc != 0)
            fail_msg("%s=%s: %d %s", u->path, u->good, rc, err.message);
        assert_int_equal(fdn_config_revision(c), ++rev);
        char *v = get_json(c, u->path);
        assert_string_equal(v, u->good);
        fdn_free(v);
        fdn_free(before);
        fdn_free(after);
    }
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(c, &st), 0);
    assert_int_equal(st.updates_count, 13);
    assert_true(st.running);
    assert_true(st.uptime_ns >= 0);
    assert_true(st.last_update_ns >= 0);
    fdn_config_destroy(c);
}

/* Review finding: the allowed_paths context of a refused update was cut mid-path (19 paths
 * need 562 bytes; the list buffer and the whole context hold 512), with nothing saying so.
 * Now it lists whole paths only, and says how many did not fit: listed + left out = all. */
static void forbidden_lists_allowed_paths_whole(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    char longp[220];
    memset(longp, 'x', 199);
    longp[199] = '\0';
    const char *paths[] = {"system.node_name", longp};
    for (size_t k = 0; k < 2; k++) {
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_config_update_string(c, paths[k], "v", &err), FDN_ECONFIG_FORBIDDEN);
        const char *a = strstr(err.context, "allowed_paths=");
        assert_non_null(a);
        a += strlen("allowed_paths=");
        if (*a == '"')
            a++;
        char list[FDN_ERR_CONTEXT_MAX];
        snprintf(list, sizeof list, "%s", a);
        size_t n = strlen(list);
        if (n > 0 && list[n - 1] == '"')
            list[n - 1] = '\0';
        size_t listed = 0, more = 0;
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (sscanf(t, "... (%zu more)", &more) == 1)
                break;
            bool known = false;
            for (size_t i = 0; i < fdn__cfg_updatable_count; i++)
                known = known || strcmp(t, fdn__cfg_updatable_paths[i]) == 0;
            if (!known)
                fail_msg("allowed_paths holds '%s', no updatable path (context: %s)", t,
                         err.context);
            listed++;
        }
        assert_true(listed > 0);
        assert_int_equal(listed + more, fdn__cfg_updatable_count);
        assert_true(strlen(err.context) < FDN_ERR_CONTEXT_MAX - 1); /* nothing cut */
    }
    fdn_config_destroy(c);
}

static void non_updatable_paths(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    static const char *paths[] = {
        "ai.provider",
        "ai.api_key",
        "storage.warm.max_size_mb",
        "storage.encryption_key",
        "security",
        "system.node_name",
        "system.env",
        "otp.version",
        "vm.memory",
        "process.count",
        "security.keys",
        "internal.state",
    };
    for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_config_update_string(c, paths[k], "test_value", &err),
                         FDN_ECONFIG_FORBIDDEN);
        assert_int_equal(err.ref_code, 1401);
        assert_non_null(strstr(err.message, "cannot be updated at runtime"));
        assert_non_null(strstr(err.context, "allowed_paths="));
    }
    char buf[16];
    assert_int_equal(fdn_config_get_string(c, "ai.provider", buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "mock");
    assert_int_equal(fdn_config_revision(c), 1);
    fdn_config_destroy(c);
}

static void check_order(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    fdn_error_t err = FDN_ERROR_INIT;
    char deep[200];
    memset(deep, '[', 30);
    memset(deep + 30, ']', 30);
    deep[60] = '\0';
    /* path security beats everything */
    assert_int_equal(fdn_config_update_json(c, "dev.__struct__", deep, &err), FDN_EPATH_SECURITY);
    assert_int_equal(err.ref_code, 1000);
    /* value security before updatable */
    assert_int_equal(fdn_config_update_json(c, "ai.provider", deep, &err), FDN_EVALUE_SECURITY);
    assert_int_equal(err.ref_code, 1005);
    assert_non_null(strstr(err.context, "value_type=list"));
    /* updatable before validation */
    assert_int_equal(fdn_config_update_json(c, "ai.provider", "5", &err), FDN_ECONFIG_FORBIDDEN);
    /* validation last */
    assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", "5.0", &err),
                     FDN_ECONFIG_RANGE);
    assert_string_equal(err.message, "Sampling rate must be between 0 and 1");
    assert_int_equal(err.ref_code, 1203);
    assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", "{", &err), FDN_EPARSE);
    /* 1 000 000-byte string passes security then fails validation; 10 MB fails security */
    char *big = malloc(10000003);
    big[0] = '"';
    memset(big + 1, 'x', 10000000);
    big[10000001] = '"';
    big[10000002] = '\0';
    assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", big, &err),
                     FDN_EVALUE_SECURITY);
    big[1000001] = '"';
    big[1000002] = '\0';
    assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", big, &err),
                     FDN_ECONFIG_RANGE);
    free(big);
    /* invalid values for sampling_rate / debug_mode */
    static const char *bad_rate[] = {"1.2", "-0.2", "\"high\"", "[0.5]", "{\"a\":1}", "null"};
    for (size_t k = 0; k < sizeof(bad_rate) / sizeof(bad_rate[0]); k++)
        assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", bad_rate[k], &err),
                         FDN_ECONFIG_RANGE);
    static const char *bad_bool[] = {"0", "\"true\"", "null", "[]", "1.0"};
    for (size_t k = 0; k < sizeof(bad_bool) / sizeof(bad_bool[0]); k++)
        assert_int_equal(fdn_config_update_json(c, "dev.debug_mode", bad_bool[k], &err),
                         FDN_ECONFIG_STRUCTURE);
    /* update after failures works; integers 0 and 1 are valid numbers */
    assert_int_equal(fdn_config_update_json(c, "ai.planning.sampling_rate", "0.5", &err), 0);
    assert_int_equal(fdn_config_update_int(c, "ai.planning.sampling_rate", 1, &err), 0);
    assert_int_equal(fdn_config_update_double(c, "ai.planning.sampling_rate", 0.0 / 0.0, &err),
                     FDN_EINVAL);
    assert_true(fdn_config_available(c));
    fdn_config_destroy(c);
}

static void same_value_counts(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", false, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", false, NULL), 0);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.updates_count, 2);
    assert_int_equal(st.revision, 3);
    fdn_config_destroy(c);
}

static void snapshots_are_stable(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    const fdn_config_snapshot_t *s = NULL;
    assert_int_equal(fdn_config_acquire(c, &s), 0);
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 5, NULL), 0);
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 6, NULL), 0);
    int64_t i = 0;
    assert_int_equal(fdn_config_snapshot_get_int(s, "interface.max_results", &i), 0);
    assert_int_equal(i, 1000);
    assert_int_equal(fdn_config_snapshot_revision(s), 1);
    bool b;
    assert_int_equal(fdn_config_snapshot_get_bool(s, "dev.debug_mode", &b), 0);
    double d;
    assert_int_equal(fdn_config_snapshot_get_double(s, "ai.planning.sampling_rate", &d), 0);
    char *j = NULL;
    assert_int_equal(fdn_config_snapshot_get_json(s, "interface", &j), 0);
    assert_non_null(strstr(j, "\"max_results\":1000"));
    fdn_free(j);
    fdn_config_release(s);
    fdn_config_release(NULL);
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 6);
    fdn_config_destroy(c);
}

/* ---- layering ---- */

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/fdn_cfg_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int create_with(const char *file, const char *const *envp, fdn_error_t *err,
                       fdn_config_t **out)
{
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.file = file;
    o.envp = envp != NULL ? envp : no_env;
    *out = NULL;
    return fdn_config_create(out, &o, err);
}

static void file_and_env_layering(void **state)
{
    (void)state;
    char *f =
        write_tmp("{\"interface\":{\"max_results\":50,\"query_timeout\":7},"
                  "\"dev\":{\"debug_mode\":true},\"ai\":{\"planning\":{\"sampling_rate\":0.3}}}");
    const char *env[] = {"FDN_INTERFACE__MAX_RESULTS=70", "FDN_SOURCE_DIR=/x", "PATH=/bin",
                         "FDN_AI__API_KEY=secret",        "OTHER__X__Y=1",     NULL};
    fdn_config_t *c = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(create_with(f, env, &err, &c), 0);
    int64_t i;
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 70); /* env over file */
    assert_int_equal(fdn_config_get_int(c, "interface.query_timeout", &i), 0);
    assert_int_equal(i, 7); /* file over defaults */
    bool b;
    assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &b), 0);
    assert_true(b);
    char buf[16];
    assert_int_equal(fdn_config_get_string(c, "ai.api_key", buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "secret");
    /* run-time update over everything; reset -> built-in defaults; reset_to_startup */
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 99, NULL), 0);
    assert_int_equal(fdn_config_reset(c, NULL), 0);
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 1000);
    assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &b), 0);
    assert_false(b);
    assert_int_equal(fdn_config_reset_to_startup(c, NULL), 0);
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 70);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.updates_count, 1); /* resets do not clear it */
    assert_int_equal(st.resets_count, 2);
    fdn_config_destroy(c);
    unlink(f);
    free(f);
}

static void layering_errors_name_source_path_rule(void **state)
{
    (void)state;
    fdn_config_t *c = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    char *f = write_tmp("{\"dev\":{\"debug_mod\":true}}");
    assert_int_equal(create_with(f, NULL, &err, &c), FDN_ECONFIG_STRUCTURE);
    assert_null(c);
    assert_non_null(strstr(err.message, f));
    assert_non_null(strstr(err.message, "dev.debug_mod"));
    assert_non_null(strstr(err.message, "unknown configuration key"));
    unlink(f);
    free(f);
    f = write_tmp("{\"dev\":{\"debug_mode\":\"yes\"}}");
    assert_int_equal(create_with(f, NULL, &err, &c), FDN_ECONFIG_INVALID);
    assert_non_null(strstr(err.message, f));
    assert_non_null(strstr(err.message, "dev.debug_mode: expected bool"));
    unlink(f);
    free(f);
    f = write_tmp("{\"ai\":{\"planning\":{\"sampling_rate\":1.5}}}");
    assert_int_equal(create_with(f, NULL, &err, &c), FDN_ECONFIG_RANGE);
    assert_non_null(strstr(err.message, f));
    assert_non_null(strstr(err.message, "ai.planning.sampling_rate"));
    assert_non_null(strstr(err.message, "Sampling rate must be between 0 and 1"));
    unlink(f);
    free(f);
    f = write_tmp("{\"dev\": 5}");
    assert_int_equal(create_with(f, NULL, &err, &c), FDN_ECONFIG_STRUCTURE);
    unlink(f);
    free(f);
    f = write_tmp("{\"dev\": ");
    assert_int_equal(create_with(f, NULL, &err, &c), FDN_EPARSE);
    unlink(f);
    free(f);
    assert_int_equal(create_with("/nonexistent/fdn.json", NULL, &err, &c), FDN_ENOENT);
    const char *env1[] = {"FDN_AI__PLANNING__SAMPLING_RATE=abc", NULL};
    assert_int_equal(create_with(NULL, env1, &err, &c), FDN_ECONFIG_INVALID);
    assert_non_null(strstr(err.message, "FDN_AI__PLANNING__SAMPLING_RATE"));
    assert_non_null(strstr(err.message, "expected number"));
    const char *env2[] = {"FDN_AI__PLANNING__SAMPLING_RATE=5", NULL};
    assert_int_equal(create_with(NULL, env2, &err, &c), FDN_ECONFIG_RANGE);
    assert_non_null(strstr(err.message, "environment variable FDN_AI__PLANNING__SAMPLING_RATE"));
    const char *env3[] = {"FDN_DEV__NO_SUCH_KEY=1", NULL};
    assert_int_equal(create_with(NULL, env3, &err, &c), FDN_ECONFIG_STRUCTURE);
    assert_non_null(strstr(err.message, "dev.no_such_key"));
    const char *env4[] = {"FDN_AI__PLANNING__SAMPLING_RATE=0.5",
                          "FDN_INFRASTRUCTURE__RATE_LIMITING__DEFAULT_RULES={\"x\":{\"scale\":1,"
                          "\"limit\":2}}",
                          "FDN_STORAGE__COLD__ENABLE=false", NULL};
    assert_int_equal(create_with(NULL, env4, &err, &c), 0);
    int64_t i;
    assert_int_equal(
        fdn_config_get_int(c, "infrastructure.rate_limiting.default_rules.x.limit", &i), 0);
    assert_int_equal(i, 2);
    fdn_config_destroy(c);
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.version = 99;
    assert_int_equal(fdn_config_create(&c, &o, &err), FDN_EINVAL);
}

static void app_sections(void **state)
{
    (void)state;
    static const char *const modes[] = {"a", "b", NULL};
    fdn_config_key_def_t keys[] = {
        {.path = "myapp.workers",
         .type = FDN_CONFIG_INT,
         .default_json = "4",
         .rule = FDN_CONFIG_RULE_POSITIVE,
         .updatable = true,
         .description = "workers"},
        {.path = "myapp.mode",
         .type = FDN_CONFIG_ENUM,
         .default_json = "\"a\"",
         .rule = FDN_CONFIG_RULE_ENUM,
         .enum_values = modes,
         .error_code = FDN_ECONFIG_INVALID,
         .error_message = "Invalid mode"},
        {.path = "myapp.ratio",
         .type = FDN_CONFIG_NUMBER,
         .default_json = "0.5",
         .rule = FDN_CONFIG_RULE_RANGE,
         .min = 0,
         .max = 2,
         .updatable = true,
         .error_code = FDN_ECONFIG_RANGE},
    };
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.keys = keys;
    o.nkeys = 3;
    const char *env[] = {"FDN_MYAPP__MODE=b", NULL};
    o.envp = env;
    fdn_config_t *c = mk_opts(&o);
    int64_t i;
    char buf[8];
    assert_int_equal(fdn_config_get_int(c, "myapp.workers", &i), 0);
    assert_int_equal(i, 4);
    assert_int_equal(fdn_config_get_string(c, "myapp.mode", buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "b");
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(c, "myapp.workers", 0, &err), FDN_ECONFIG_STRUCTURE);
    assert_string_equal(err.message, "Invalid myapp.workers");
    assert_int_equal(fdn_config_update_int(c, "myapp.workers", 8, &err), 0);
    assert_int_equal(fdn_config_update_double(c, "myapp.ratio", 2.5, &err), FDN_ECONFIG_RANGE);
    assert_int_equal(fdn_config_update_string(c, "myapp.mode", "a", &err), FDN_ECONFIG_FORBIDDEN);
    char *j = get_json(c, "myapp");
    assert_string_equal(j, "{\"workers\":8,\"mode\":\"b\",\"ratio\":0.5}");
    fdn_free(j);
    fdn_config_destroy(c);
    const char *env2[] = {"FDN_MYAPP__MODE=z", NULL};
    o.envp = env2;
    assert_int_equal(fdn_config_create(&c, &o, &err), FDN_ECONFIG_INVALID);
    assert_non_null(strstr(err.message, "Invalid mode"));
}

/* ---- subscriptions ---- */

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    fdn_config_change_kind_t kind[64];
    char path[64][64];
    char oldj[64][32];
    char newj[64][32];
    uint64_t rev[64];
    uint64_t dropped[64];
    /* gate: the callback blocks while `hold` is set */
    bool hold, entered;
    fdn_config_t *cfg;
    uint64_t self_id;
    bool unsub_self;
} rec_t;

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_fini(rec_t *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_cb(const fdn_config_change_t *ch, void *user)
{
    rec_t *r = user;
    pthread_mutex_lock(&r->mu);
    r->entered = true;
    pthread_cond_broadcast(&r->cv);
    while (r->hold)
        pthread_cond_wait(&r->cv, &r->mu);
    if (r->n < 64) {
        r->kind[r->n] = ch->kind;
        snprintf(r->path[r->n], 64, "%s", ch->path);
        snprintf(r->oldj[r->n], 32, "%s", ch->old_json);
        snprintf(r->newj[r->n], 32, "%s", ch->new_json);
        r->rev[r->n] = ch->revision;
        r->dropped[r->n] = ch->dropped;
        r->n++;
    }
    pthread_cond_broadcast(&r->cv);
    bool unsub = r->unsub_self;
    pthread_mutex_unlock(&r->mu);
    if (unsub)
        assert_int_equal(fdn_config_unsubscribe(r->cfg, r->self_id), 0);
}

static void rec_wait(rec_t *r, int n)
{
    pthread_mutex_lock(&r->mu);
    while (r->n < n)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void subscribe_prefix_and_order(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    rec_t dev, all;
    rec_init(&dev);
    rec_init(&all);
    uint64_t id_dev, id_all;
    assert_int_equal(fdn_config_subscribe(c, "dev", rec_cb, &dev, &id_dev), 0);
    assert_int_equal(fdn_config_subscribe(c, NULL, rec_cb, &all, &id_all), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 3, NULL), 0);
    assert_int_equal(fdn_config_update_double(c, "ai.planning.sampling_rate", 9, NULL),
                     FDN_ECONFIG_RANGE); /* failed: no notification */
    for (int k = 0; k < 10; k++)
        assert_int_equal(fdn_config_update_bool(c, "dev.verbose_logging", k % 2 == 0, NULL), 0);
    assert_int_equal(fdn_config_reset(c, NULL), 0);
    rec_wait(&dev, 12);
    rec_wait(&all, 13);
    assert_int_equal(dev.kind[0], FDN_CONFIG_CHANGE_UPDATED);
    assert_string_equal(dev.path[0], "dev.debug_mode");
    assert_string_equal(dev.oldj[0], "false");
    assert_string_equal(dev.newj[0], "true");
    assert_int_equal(dev.rev[0], 2);
    assert_string_equal(all.path[1], "interface.max_results");
    assert_string_equal(all.newj[1], "3");
    for (int k = 1; k < 11; k++) {
        assert_string_equal(dev.path[k], "dev.verbose_logging");
        assert_string_equal(dev.newj[k], k % 2 == 1 ? "true" : "false");
        assert_true(dev.rev[k] > dev.rev[k - 1]);
    }
    assert_int_equal(dev.kind[11], FDN_CONFIG_CHANGE_RESET);
    assert_int_equal(all.kind[12], FDN_CONFIG_CHANGE_RESET);
    assert_int_equal(all.rev[12], 14);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.subscribers, 2);
    /* unsubscribe: no more deliveries */
    assert_int_equal(fdn_config_unsubscribe(c, id_dev), 0);
    assert_int_equal(fdn_config_unsubscribe(c, id_dev), FDN_ENOENT);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    rec_wait(&all, 14);
    pthread_mutex_lock(&dev.mu);
    assert_int_equal(dev.n, 12);
    pthread_mutex_unlock(&dev.mu);
    fdn_config_destroy(c);
    rec_fini(&dev);
    rec_fini(&all);
}

static void slow_subscriber_never_blocks_updaters(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.subscriber_queue = 4;
    fdn_config_t *c = mk_opts(&o);
    rec_t slow, fast;
    rec_init(&slow);
    rec_init(&fast);
    slow.hold = true;
    assert_int_equal(fdn_config_subscribe(c, "", rec_cb, &slow, NULL), 0);
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 1, NULL), 0);
    pthread_mutex_lock(&slow.mu);
    while (!slow.entered)
        pthread_cond_wait(&slow.cv, &slow.mu);
    pthread_mutex_unlock(&slow.mu);
    /* the delivery thread is stuck in slow's callback; updates still complete */
    for (int k = 2; k <= 10; k++)
        assert_int_equal(fdn_config_update_int(c, "interface.max_results", k, NULL), 0);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.dropped, 5);
    assert_int_equal(st.revision, 11);
    pthread_mutex_lock(&slow.mu);
    slow.hold = false;
    pthread_cond_broadcast(&slow.cv);
    pthread_mutex_unlock(&slow.mu);
    rec_wait(&slow, 6);
    assert_string_equal(slow.newj[0], "1");
    assert_int_equal(slow.kind[1], FDN_CONFIG_CHANGE_OVERFLOW);
    assert_int_equal(slow.dropped[1], 5);
    for (int k = 2; k < 6; k++) {
        char want[8];
        snprintf(want, sizeof(want), "%d", k + 5);
        assert_string_equal(slow.newj[k], want);
    }
    fdn_config_destroy(c);
    rec_fini(&slow);
    rec_fini(&fast);
}

static void unsubscribe_from_callback(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    rec_t r, all;
    rec_init(&r);
    rec_init(&all);
    r.cfg = c;
    r.unsub_self = true;
    assert_int_equal(fdn_config_subscribe(c, "dev", rec_cb, &r, &r.self_id), 0);
    assert_int_equal(fdn_config_subscribe(c, "", rec_cb, &all, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", false, NULL), 0);
    rec_wait(&all, 2);
    rec_wait(&r, 1);
    /* a fresh subscriber still gets exactly one notification per update */
    rec_t fresh;
    rec_init(&fresh);
    assert_int_equal(fdn_config_subscribe(c, "dev.debug_mode", rec_cb, &fresh, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    rec_wait(&fresh, 1);
    rec_wait(&all, 3);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.subscribers, 2);
    fdn_config_destroy(c);
    assert_int_equal(r.n, 1);
    assert_int_equal(fresh.n, 1);
    rec_fini(&r);
    rec_fini(&all);
    rec_fini(&fresh);
}

static void on_change_hook(void **state)
{
    (void)state;
    rec_t h;
    rec_init(&h);
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.on_change = rec_cb;
    o.on_change_user = &h;
    fdn_config_t *c = mk_opts(&o);
    assert_int_equal(fdn_config_update_int(c, "interface.query_timeout", 4242, NULL), 0);
    assert_int_equal(fdn_config_reset(c, NULL), 0);
    rec_wait(&h, 2);
    assert_string_equal(h.path[0], "interface.query_timeout");
    assert_string_equal(h.oldj[0], "10000");
    assert_string_equal(h.newj[0], "4242");
    assert_int_equal(h.kind[1], FDN_CONFIG_CHANGE_RESET);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.subscribers, 0);
    fdn_config_destroy(c);
    rec_fini(&h);
}

/* ---- service lifecycle and degradation ---- */

static void stop_start_keeps_updates(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    rec_t r;
    rec_init(&r);
    assert_int_equal(fdn_config_subscribe(c, "", rec_cb, &r, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    rec_wait(&r, 1);
    fdn__config_service_stop(c);
    fdn__config_service_stop(c); /* idempotent */
    assert_false(fdn_config_available(c));
    assert_int_equal(fdn__config_service_health(c), FDN_EUNAVAILABLE);
    bool b;
    int64_t i;
    fdn_config_key_t k;
    assert_int_equal(fdn_config_key_resolve(c, "dev.debug_mode", &k), 0);
    assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &b), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_config_key_get_bool(c, k, &b), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), FDN_EUNAVAILABLE);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", false, &err), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_config_reset(c, &err), FDN_EUNAVAILABLE);
    const fdn_config_snapshot_t *s;
    assert_int_equal(fdn_config_acquire(c, &s), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_config_subscribe(c, "", rec_cb, &r, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_config_revision(c), 0);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_false(st.running);
    assert_int_equal(fdn__config_service_start(c), 0);
    assert_int_equal(fdn__config_service_start(c), 0);
    assert_int_equal(fdn__config_service_health(c), 0);
    assert_int_equal(fdn_config_get_bool(c, "dev.debug_mode", &b), 0);
    assert_true(b); /* run-time update survived the restart */
    assert_int_equal(fdn_config_update_bool(c, "dev.verbose_logging", true, NULL), 0);
    rec_wait(&r, 2); /* subscription survived too */
    fdn_config_destroy(c);
    rec_fini(&r);
}

static void fallback_cache_ttl(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 1000), 0);
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.clock = clk;
    fdn_config_t *c = mk_opts(&o);
    char *v = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, &err), 0);
    assert_string_equal(v, "false");
    fdn_free(v);
    assert_int_equal(fdn_clock_advance(clk, 7100LL * 1000000000), 0);
    assert_int_equal(fdn_config_get_with_fallback(c, "interface.max_results", &v, &err), 0);
    fdn_free(v);
    /* not found is not masked by the cache */
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.nope", &v, &err),
                     FDN_ECONFIG_PATH_NOT_FOUND);
    size_t cached = 0, pending = 0;
    fdn_config_fallback_stats(c, &cached, &pending);
    assert_int_equal(cached, 2);
    assert_int_equal(pending, 0);
    /* debug_mode aged 7100 s, max_results fresh */
    assert_int_equal(fdn_clock_advance(clk, 100LL * 1000000000), 0);
    fdn__config_service_stop(c);
    assert_int_equal(fdn_config_get_with_fallback(c, "interface.max_results", &v, &err), 0);
    assert_string_equal(v, "1000");
    fdn_free(v);
    assert_int_equal(fdn_config_get_with_fallback(c, "ai.provider", &v, &err),
                     FDN_ECONFIG_UNAVAILABLE);
    assert_string_equal(err.message, "Configuration not available");
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, &err),
                     FDN_ECONFIG_UNAVAILABLE);
    assert_string_equal(err.message, "Configuration cache expired");
    fdn_config_fallback_stats(c, &cached, NULL);
    assert_int_equal(cached, 1); /* expired entry deleted */
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, &err),
                     FDN_ECONFIG_UNAVAILABLE);
    assert_string_equal(err.message, "Configuration not available");
    assert_int_equal(fdn_clock_advance(clk, 200LL * 1000000000), 0); /* age = TTL: fresh */
    assert_int_equal(fdn_config_fallback_cleanup(c), 0);
    assert_int_equal(fdn_clock_advance(clk, 1), 0);
    assert_int_equal(fdn_config_fallback_cleanup(c), 1);
    fdn_config_destroy(c);
    fdn_clock_destroy(clk);
}

/* The typed updaters run the same checks in the same order as fdn_config_update_json:
 * path security comes first even when the value itself cannot be represented. */
static void typed_updates_check_path_first(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_string(c, "dev.__struct__", "\xff\xfe", &err),
                     FDN_EPATH_SECURITY);
    assert_int_equal(err.ref_code, 1000);
    assert_int_equal(fdn_config_update_double(c, "../etc/passwd", 0.0 / 0.0, &err),
                     FDN_EPATH_SECURITY);
    assert_int_equal(err.ref_code, 1000);
    /* with a harmless path the value errors stay as documented */
    assert_int_equal(fdn_config_update_string(c, "ai.model", "\xff\xfe", &err),
                     FDN_EVALUE_SECURITY);
    assert_int_equal(fdn_config_update_double(c, "ai.planning.sampling_rate", 0.0 / 0.0, &err),
                     FDN_EINVAL);
    assert_int_equal(fdn_config_revision(c), 1);
    fdn_config_destroy(c);
}

/* A very long fallback TTL must not overflow when converted to ns (UBSan aborts on it). */
static void fallback_ttl_huge(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 1000), 0);
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.clock = clk;
    o.fallback_ttl_ms = INT64_MAX;
    fdn_config_t *c = mk_opts(&o);
    char *v = NULL;
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, NULL), 0);
    fdn_free(v);
    assert_int_equal(fdn_clock_advance(clk, 1000000LL * 1000000000), 0);
    fdn__config_service_stop(c);
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, NULL), 0);
    assert_string_equal(v, "false");
    fdn_free(v);
    assert_int_equal(fdn_config_fallback_cleanup(c), 0);
    fdn_config_destroy(c);
    fdn_clock_destroy(clk);
}

/* A prefix that can never match a path (empty component, trailing dot) is refused instead
 * of creating a subscription that silently never fires. */
static void subscribe_rejects_malformed_prefix(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    rec_t r;
    rec_init(&r);
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(c, "dev.", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, ".dev", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "dev..debug_mode", rec_cb, &r, &id), FDN_EINVAL);
    /* prefixes naming neither a key nor a section: nothing below them could ever change */
    assert_int_equal(fdn_config_subscribe(c, "nosuch", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "dev.debug", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "de", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "dev.nosuch", rec_cb, &r, &id), FDN_EINVAL);
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(c, &st), 0);
    assert_int_equal(st.subscribers, 0);
    assert_int_equal(fdn_config_subscribe(c, "dev", rec_cb, &r, &id), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    rec_wait(&r, 1);
    fdn_config_destroy(c);
    rec_fini(&r);
}

static void queued_updates_apply_in_order(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.pending_max = 3;
    fdn_config_t *c = mk_opts(&o);
    rec_t r;
    rec_init(&r);
    assert_int_equal(fdn_config_subscribe(c, "ai", rec_cb, &r, NULL), 0);
    bool queued = false;
    fdn_error_t err = FDN_ERROR_INIT;
    /* running: applied at once */
    assert_int_equal(fdn_config_update_or_queue(c, "dev.debug_mode", "true", &queued, &err), 0);
    assert_false(queued);
    fdn__config_service_stop(c);
    assert_int_equal(
        fdn_config_update_or_queue(c, "ai.planning.sampling_rate", "0.3", &queued, &err), 0);
    assert_true(queued);
    assert_int_equal(
        fdn_config_update_or_queue(c, "ai.planning.sampling_rate", "2.0", &queued, &err),
        FDN_ECONFIG_RANGE);
    assert_false(queued);
    assert_int_equal(fdn_config_update_or_queue(c, "ai.provider", "\"openai\"", &queued, &err),
                     FDN_ECONFIG_FORBIDDEN);
    assert_int_equal(fdn_config_update_or_queue(c, "__info__", "1", &queued, &err),
                     FDN_EPATH_SECURITY);
    assert_int_equal(
        fdn_config_update_or_queue(c, "ai.planning.sampling_rate", "0.4", &queued, &err), 0);
    assert_int_equal(fdn_config_update_or_queue(c, "interface.max_results", "5", &queued, &err), 0);
    assert_int_equal(fdn_config_update_or_queue(c, "interface.max_results", "6", &queued, &err),
                     FDN_ENOSPC);
    size_t pending = 0;
    fdn_config_fallback_stats(c, NULL, &pending);
    assert_int_equal(pending, 3);
    assert_int_equal(fdn__config_service_start(c), 0);
    fdn_config_fallback_stats(c, NULL, &pending);
    assert_int_equal(pending, 0);
    double d;
    int64_t i;
    assert_int_equal(fdn_config_get_double(c, "ai.planning.sampling_rate", &d), 0);
    assert_true(d == 0.4);
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 5);
    rec_wait(&r, 2);
    assert_string_equal(r.newj[0], "0.3");
    assert_string_equal(r.newj[1], "0.4");
    assert_int_equal(r.rev[1], r.rev[0] + 1);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.updates_count, 4);
    assert_int_equal(st.pending_failed, 0);
    fdn_config_destroy(c);
    rec_fini(&r);
}

/* ---- concurrency and properties ---- */

typedef struct tharg {
    fdn_config_t *c;
    int id;
    int fails;
} tharg_t;

static void *toggler(void *p)
{
    tharg_t *a = p;
    for (int k = 0; k < 20; k++) {
        if (fdn_config_update_bool(a->c, "dev.verbose_logging", (k + a->id) % 2 == 0, NULL) != 0)
            a->fails++;
        bool b;
        if (fdn_config_get_bool(a->c, "dev.verbose_logging", &b) != 0)
            a->fails++;
    }
    return NULL;
}

static void *distinct_updater(void *p)
{
    tharg_t *a = p;
    static const char *paths[] = {
        "interface.max_results", "interface.query_timeout", "capture.processing.batch_size",
        "capture.processing.flush_interval", "infrastructure.rate_limiting.cleanup_interval"};
    if (fdn_config_update_int(a->c, paths[a->id], 100 + a->id, NULL) != 0)
        a->fails++;
    return NULL;
}

static void concurrent_updates(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    test_threads_t t;
    tharg_t a[5];
    for (int k = 0; k < 5; k++)
        a[k] = (tharg_t){c, k, 0};
    test_threads_init(&t, 0);
    test_threads_start_n(&t, 5, toggler, a, sizeof(a[0]));
    test_threads_join(&t);
    for (int k = 0; k < 5; k++)
        assert_int_equal(a[k].fails, 0);
    for (int k = 0; k < 5; k++)
        a[k] = (tharg_t){c, k, 0};
    test_threads_init(&t, 0);
    test_threads_start_n(&t, 5, distinct_updater, a, sizeof(a[0]));
    test_threads_join(&t);
    int64_t i;
    assert_int_equal(fdn_config_get_int(c, "interface.max_results", &i), 0);
    assert_int_equal(i, 100);
    assert_int_equal(fdn_config_get_int(c, "infrastructure.rate_limiting.cleanup_interval", &i), 0);
    assert_int_equal(i, 104);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.updates_count, 105);
    assert_int_equal(st.revision, 106);
    fdn_config_destroy(c);
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_update_sequences(void **state)
{
    (void)state;
    static const char *paths[] = {"ai.planning.sampling_rate", "dev.debug_mode",
                                  "dev.verbose_logging",       "dev.performance_monitoring",
                                  "interface.query_timeout",   "storage.warm.max_size_mb"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    fdn_config_t *c = mk();
    for (int round = 0; round < 40; round++) {
        int len = 1 + (int)(xs(&seed) % 20);
        for (int k = 0; k < len; k++) {
            const char *p = paths[xs(&seed) % 6];
            char val[64];
            switch (xs(&seed) % 4) {
            case 0:
                snprintf(val, sizeof(val), "%.6g", (double)(xs(&seed) % 1000001) / 1e6);
                break;
            case 1:
                snprintf(val, sizeof(val), "%s", xs(&seed) % 2 ? "true" : "false");
                break;
            case 2:
                snprintf(val, sizeof(val), "%d", 1 + (int)(xs(&seed) % 86400));
                break;
            default:
                snprintf(val, sizeof(val), "\"s%llx\"", (unsigned long long)xs(&seed));
                break;
            }
            char *before = get_json(c, "");
            uint64_t rev = fdn_config_revision(c);
            int rc = fdn_config_update_json(c, p, val, NULL);
            char *after = get_json(c, "");
            if (rc != 0) {
                assert_string_equal(before, after);
                assert_int_equal(fdn_config_revision(c), rev);
            } else {
                char *got = get_json(c, p);
                assert_string_equal(got, val);
                fdn_free(got);
                assert_int_equal(fdn_config_revision(c), rev + 1);
            }
            assert_int_equal(fdn_config_validate_json(after, strlen(after), NULL), 0);
            fdn_free(before);
            fdn_free(after);
        }
    }
    double d;
    assert_int_equal(fdn_config_get_double(c, "ai.planning.sampling_rate", &d), 0);
    assert_true(d >= 0 && d <= 1);
    assert_true(fdn_config_available(c));
    fdn_config_destroy(c);
}

static void read_paths_twice_identical(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    uint64_t seed = 42;
    static const char *words[] = {"ai",         "dev",           "x",   "planning",
                                  "debug_mode", "__struct__",    "",    "Elixir",
                                  "System",     "sampling_rate", "../", "limit"};
    for (int k = 0; k < 300; k++) {
        char path[512] = "";
        size_t len = 0;
        int n = 1 + (int)(xs(&seed) % 20);
        for (int w = 0; w < n; w++) {
            int m = snprintf(path + len, sizeof(path) - len, "%s%s", w ? "." : "",
                             words[xs(&seed) % 12]);
            assert_true(m >= 0 && (size_t)m < sizeof(path) - len);
            len += (size_t)m;
        }
        char *a = NULL, *b = NULL;
        int r1 = fdn_config_get_json(c, path, &a, NULL);
        int r2 = fdn_config_get_json(c, path, &b, NULL);
        assert_int_equal(r1, r2);
        if (r1 == 0)
            assert_string_equal(a, b);
        else
            assert_true(r1 == FDN_ECONFIG_PATH_NOT_FOUND || r1 == FDN_EPATH_SECURITY);
        fdn_free(a);
        fdn_free(b);
    }
    fdn_config_destroy(c);
}

/* Every refusal of a path's text is check 1, FDN_EPATH_SECURITY (ref 1000), for reads and
 * updates alike: a control byte or an over-long path answered FDN_ECONFIG_INVALID_PATH, a
 * code in none of the header's return lists. */
static void path_refusals_are_path_security(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    char *longp = malloc(FDN__CFG_MAX_PATH_LEN + 2);
    assert_non_null(longp);
    memset(longp, 'a', FDN__CFG_MAX_PATH_LEN + 1);
    longp[FDN__CFG_MAX_PATH_LEN + 1] = '\0';
    const char *const paths[] = {"dev.x\n", "dev.debug_mode\t", "\x7f", longp};
    /* running, then stopped: the answer to a bad path does not depend on the service's state
     * (stopped, the plain reads answered FDN_EUNAVAILABLE) */
    for (size_t i = 0; i < 2 * sizeof(paths) / sizeof(paths[0]); i++) {
        if (i == sizeof(paths) / sizeof(paths[0])) {
            assert_int_equal(fdn_config_revision(c), 1);
            fdn__config_service_stop(c);
        }
        const char *p = paths[i % (sizeof(paths) / sizeof(paths[0]))];
        int64_t iv;
        bool b;
        double d;
        char buf[8], *out = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_config_get_int(c, p, &iv), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_get_double(c, p, &d), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_get_bool(c, p, &b), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_get_string(c, p, buf, sizeof buf, NULL), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_is_null(c, p, &b), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_get_json(c, p, &out, &err), FDN_EPATH_SECURITY);
        assert_int_equal(err.ref_code, 1000);
        assert_int_equal(fdn_config_get_with_fallback(c, p, &out, &err), FDN_EPATH_SECURITY);
        /* the first check of an update, before the value's syntax and security */
        assert_int_equal(fdn_config_update_json(c, p, "not json", &err), FDN_EPATH_SECURITY);
        assert_int_equal(err.ref_code, 1000);
        assert_int_equal(fdn_config_update_bool(c, p, true, &err), FDN_EPATH_SECURITY);
        assert_int_equal(fdn_config_update_int(c, p, 1, &err), FDN_EPATH_SECURITY);
        bool queued = true;
        assert_int_equal(fdn_config_update_or_queue(c, p, "true", &queued, &err),
                         FDN_EPATH_SECURITY);
        assert_false(queued);
    }
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(c, &st), 0);
    assert_int_equal(st.pending, 0);
    free(longp);
    fdn_config_destroy(c);
}

/* While the service is stopped, get_with_fallback still refuses a bad path with its own
 * error and a path the schema cannot have with "not found": the header promises security
 * and not-found errors are never masked, and a stopped service answered both with
 * FDN_ECONFIG_UNAVAILABLE "Configuration not available". */
static void fallback_never_masks_path_errors_while_stopped(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    char *v = NULL;
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, NULL), 0);
    fdn_free(v);
    fdn__config_service_stop(c);
    fdn_error_t err = FDN_ERROR_INIT;
    v = NULL;
    assert_int_equal(fdn_config_get_with_fallback(c, "../etc/passwd", &v, &err),
                     FDN_EPATH_SECURITY);
    assert_int_equal(err.ref_code, 1000);
    assert_null(v);
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.x\n", &v, &err), FDN_EPATH_SECURITY);
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.nope", &v, &err),
                     FDN_ECONFIG_PATH_NOT_FOUND);
    assert_int_equal(fdn_config_get_with_fallback(c, "nope", &v, &err), FDN_ECONFIG_PATH_NOT_FOUND);
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode.x", &v, &err),
                     FDN_ECONFIG_UNAVAILABLE); /* inside a leaf: the value decides */
    assert_null(v);
    /* a known path still answers from the cache, or "not available" */
    assert_int_equal(fdn_config_get_with_fallback(c, "dev.debug_mode", &v, &err), 0);
    assert_string_equal(v, "false");
    fdn_free(v);
    assert_int_equal(fdn_config_get_with_fallback(c, "ai.provider", &v, &err),
                     FDN_ECONFIG_UNAVAILABLE);
    assert_string_equal(err.message, "Configuration not available");
    fdn_config_destroy(c);
}

/* A prefix inside an object- or any-typed leaf (myapp.limits.a) names no path an update can
 * have (updates name leaves): it is refused rather than accepted and never notified. */
static void subscribe_refuses_prefix_inside_a_leaf(void **state)
{
    (void)state;
    fdn_config_key_def_t k = {.path = "myapp.limits",
                              .type = FDN_CONFIG_OBJECT,
                              .default_json = "{\"a\":1}",
                              .updatable = true};
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.keys = &k;
    o.nkeys = 1;
    fdn_config_t *c = mk_opts(&o);
    rec_t r;
    rec_init(&r);
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(c, "myapp.limits.a", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "myapp.limits.a.b", rec_cb, &r, &id), FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "capture.ring_buffer.num_buffers.x", rec_cb, &r, &id),
                     FDN_EINVAL);
    assert_int_equal(fdn_config_subscribe(c, "dev.debug_mode.x", rec_cb, &r, &id), FDN_EINVAL);
    fdn_config_status_t st;
    assert_int_equal(fdn_config_status(c, &st), 0);
    assert_int_equal(st.subscribers, 0);
    /* the leaf itself and its sections are fine, and notified */
    assert_int_equal(fdn_config_subscribe(c, "myapp.limits", rec_cb, &r, &id), 0);
    assert_int_equal(fdn_config_update_json(c, "myapp.limits", "{\"a\":2}", NULL), 0);
    rec_wait(&r, 1);
    assert_string_equal(r.path[0], "myapp.limits");
    assert_string_equal(r.newj[0], "{\"a\":2}");
    fdn_config_destroy(c);
    rec_fini(&r);
}

/* A number from the environment is decimal: strtod's hex floats (0x1p-2 = 0.25) are refused
 * with an error naming the variable, as any other text that is not a number. */
static void env_numbers_are_decimal(void **state)
{
    (void)state;
    const char *env[] = {"FDN_AI__PLANNING__PERFORMANCE_TARGET=0x1p-2", NULL};
    fdn_config_t *c = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(create_with(NULL, env, &err, &c), FDN_ECONFIG_INVALID);
    assert_null(c);
    assert_string_equal(err.message,
                        "environment variable FDN_AI__PLANNING__PERFORMANCE_TARGET: "
                        "ai.planning.performance_target: expected number, got \"0x1p-2\"");
    const char *env2[] = {"FDN_AI__PLANNING__PERFORMANCE_TARGET=2.5e-1", NULL};
    assert_int_equal(create_with(NULL, env2, &err, &c), 0);
    double d = 0;
    assert_int_equal(fdn_config_get_double(c, "ai.planning.performance_target", &d), 0);
    assert_true(d == 0.25);
    fdn_config_destroy(c);
}

/* An update's range check compares integers exactly: 2^53 + 1 rounds to 2^53 as a double. */
static void update_int_past_bound_by_one(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    fdn_error_t err = FDN_ERROR_INIT;
    const int64_t two53 = 9007199254740992LL;
    assert_int_equal(fdn_config_update_int(c, "storage.warm.retention.max_events", two53, &err), 0);
    assert_int_equal(fdn_config_update_int(c, "storage.warm.retention.max_events", two53 + 1, &err),
                     FDN_ECONFIG_STRUCTURE);
    assert_int_equal(fdn_config_update_int(c, "storage.warm.retention.max_events", INT64_MAX, &err),
                     FDN_ECONFIG_STRUCTURE);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(c, "storage.warm.retention.max_events", &v), 0);
    assert_true(v == two53);
    fdn_config_destroy(c);
}

/* ---- the subscription id, and resets that must validate ---- */

/* A subscriber that unsubscribes itself from its first callback by the id subscribe wrote
 * through out_id (into the subscriber's own context, as `subscribe(c, p, cb, ctx, &ctx->id)`
 * does). */
typedef struct selfunsub {
    fdn_config_t *cfg;
    uint64_t id;       /* written by fdn_config_subscribe through out_id */
    uint64_t seen;     /* the id the callback read */
    int rc;            /* what its unsubscribe returned */
    test_waiter_t ran; /* 1 once the callback ran */
} selfunsub_t;

static void selfunsub_cb(const fdn_config_change_t *ch, void *user)
{
    (void)ch;
    selfunsub_t *s = user;
    uint64_t id = s->id; /* first: before this thread synchronises with anything of the test */
    int rc = fdn_config_unsubscribe(s->cfg, id);
    s->seen = id;
    s->rc = rc;
    test_waiter_add(&s->ran, 1);
}

typedef struct churn {
    fdn_config_t *c;
    atomic_bool stop;
} churn_t;

static void *churn_updates(void *p)
{
    churn_t *a = p;
    for (long k = 0; k < 50000000 && !atomic_load_explicit(&a->stop, memory_order_acquire); k++)
        (void)fdn_config_update_int(a->c, "interface.max_results", 1 + (k & 1023), NULL);
    return NULL;
}

/* fdn_config_subscribe writes *out_id before the subscription can be delivered to, and reads
 * nothing of it afterwards: a callback that unsubscribes itself by the id written through
 * out_id finds it set, and the subscription it frees is not touched again by the subscriber.
 * Another thread updates all along, so a notification may reach the new subscription at any
 * point after it is linked. Before, subscribe linked the subscription, released the lock and
 * then wrote *out_id from the subscription: the callback could read an unset id (its
 * unsubscribe then answered FDN_ENOENT) and subscribe could read the freed subscription
 * (ASan: heap-use-after-free). Under TSan the old order fails at every run, whatever the
 * interleaving: the write of the id and the callback's read of it are not ordered (the
 * updater, whose notification the callback serves, never synchronises with the subscriber
 * after the lock was released). */
static void subscribe_writes_id_before_delivery(void **state)
{
    (void)state;
    fdn_config_t *c = mk();
    churn_t ch = {c, false};
    test_threads_t t;
    test_threads_init(&t, 0);
    test_threads_start(&t, churn_updates, &ch);
    for (int round = 0; round < 200; round++) {
        selfunsub_t *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        s->cfg = c;
        test_waiter_init(&s->ran);
        uint64_t id = 0;
        assert_int_equal(fdn_config_subscribe(c, "", selfunsub_cb, s, &s->id), 0);
        id = s->id; /* (the callback only reads it) */
        assert_true(id != 0);
        test_waiter_wait(&s->ran, 1);
        assert_int_equal(s->seen, id);
        assert_int_equal(s->rc, 0);
        assert_int_equal(fdn_config_unsubscribe(c, id), FDN_ENOENT);
        test_waiter_destroy(&s->ran);
        free(s);
    }
    atomic_store_explicit(&ch.stop, true, memory_order_release);
    test_threads_join(&t);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.subscribers, 0);
    fdn_config_destroy(c);
}

/* A key with no default (default_json NULL: the value must come from the file or the
 * environment). The reference's reset (§1.6) is validated: the defaults fail on that key, so
 * fdn_config_reset is refused with the validator's code, naming the key, and changes nothing
 * (value, revision, counters, notifications); the config stays valid, so later updates pass;
 * fdn_config_reset_to_startup (which has the value) succeeds. Before, the reset published
 * null for the key and marked the tree invalid, and every later update failed on that key. */
static void reset_refused_when_defaults_do_not_validate(void **state)
{
    (void)state;
    fdn_config_key_def_t k = {0};
    k.path = "myapp.workers";
    k.type = FDN_CONFIG_INT;
    k.default_json = NULL;
    k.rule = FDN_CONFIG_RULE_POSITIVE;
    k.updatable = true;
    k.description = "workers";
    const char *env[] = {"FDN_MYAPP__WORKERS=4", NULL};
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.keys = &k;
    o.nkeys = 1;
    o.envp = no_env;
    /* the defaults alone do not validate: create says so with this code */
    fdn_config_t *bad = NULL;
    fdn_error_t cerr = FDN_ERROR_INIT;
    int want = fdn_config_create(&bad, &o, &cerr);
    assert_true(want < 0);
    assert_null(bad);
    o.envp = env;
    fdn_config_t *c = mk_opts(&o);
    rec_t r;
    rec_init(&r);
    assert_int_equal(fdn_config_subscribe(c, "", rec_cb, &r, NULL), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    rec_wait(&r, 1);
    char *before = get_json(c, "");
    uint64_t rev = fdn_config_revision(c);
    fdn_config_status_t st0, st1;
    fdn_config_status(c, &st0);

    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_reset(c, &err), want);
    assert_int_equal(err.code, want);
    assert_non_null(strstr(err.message, "myapp.workers"));
    assert_non_null(strstr(err.context, "path=myapp.workers"));
    char *after = get_json(c, "");
    assert_string_equal(before, after);
    assert_int_equal(fdn_config_revision(c), rev);
    fdn_config_status(c, &st1);
    assert_int_equal(st1.resets_count, st0.resets_count);
    int64_t w = 0;
    assert_int_equal(fdn_config_get_int(c, "myapp.workers", &w), 0);
    assert_int_equal(w, 4);

    /* the config is still valid: updates of any key pass */
    assert_int_equal(fdn_config_update_int(c, "interface.max_results", 5, &err), 0);
    assert_int_equal(fdn_config_update_int(c, "myapp.workers", 6, &err), 0);
    /* back to the start-up values: they validate */
    assert_int_equal(fdn_config_reset_to_startup(c, &err), 0);
    assert_int_equal(fdn_config_get_int(c, "myapp.workers", &w), 0);
    assert_int_equal(w, 4);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", false, &err), 0);
    /* the refused reset notified nobody: the subscriber's notifications are the four
     * updates and the one reset, in order */
    rec_wait(&r, 5);
    assert_int_equal(r.kind[3], FDN_CONFIG_CHANGE_RESET);
    assert_int_equal(r.rev[3], rev + 3);
    fdn_free(before);
    fdn_free(after);
    fdn_config_destroy(c);
    assert_int_equal(r.n, 5);
    rec_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_and_not_found),
        cmocka_unit_test(key_handles),
        cmocka_unit_test(each_updatable_path),
        cmocka_unit_test(non_updatable_paths),
        cmocka_unit_test(forbidden_lists_allowed_paths_whole),
        cmocka_unit_test(check_order),
        cmocka_unit_test(same_value_counts),
        cmocka_unit_test(snapshots_are_stable),
        cmocka_unit_test(file_and_env_layering),
        cmocka_unit_test(layering_errors_name_source_path_rule),
        cmocka_unit_test(app_sections),
        cmocka_unit_test(subscribe_prefix_and_order),
        cmocka_unit_test(slow_subscriber_never_blocks_updaters),
        cmocka_unit_test(unsubscribe_from_callback),
        cmocka_unit_test(on_change_hook),
        cmocka_unit_test(stop_start_keeps_updates),
        cmocka_unit_test(fallback_cache_ttl),
        cmocka_unit_test(queued_updates_apply_in_order),
        cmocka_unit_test(concurrent_updates),
        cmocka_unit_test(random_update_sequences),
        cmocka_unit_test(read_paths_twice_identical),
        cmocka_unit_test(typed_updates_check_path_first),
        cmocka_unit_test(fallback_ttl_huge),
        cmocka_unit_test(subscribe_rejects_malformed_prefix),
        cmocka_unit_test(path_refusals_are_path_security),
        cmocka_unit_test(fallback_never_masks_path_errors_while_stopped),
        cmocka_unit_test(subscribe_refuses_prefix_inside_a_leaf),
        cmocka_unit_test(env_numbers_are_decimal),
        cmocka_unit_test(update_int_past_bound_by_one),
        cmocka_unit_test(subscribe_writes_id_before_delivery),
        cmocka_unit_test(reset_refused_when_defaults_do_not_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
