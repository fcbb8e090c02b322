/* libFuzzer target: the startup config loader, a JSON file layered over the defaults and then
 * the environment's FDN_* overrides (services/config.c: build_startup), as `fdn serve` loads
 * it. Input: the file's text, then NUL-separated environment entries ("NAME=value", at most
 * ENV_MAX). Every input goes through the loader's layers without a service (the file text
 * parsed as json_load_file does, fdn__cfg_merge_json, fdn__cfg_apply_env, fdn__cfg_validate)
 * over a built-in schema made once. Oracles: the result is 0 or a documented code, with a
 * message naming the source; on success every override that maps to a key holds the value
 * its text parses to (the last entry for a key wins), whatever the file said.
 * One input in FULL_EVERY (by a hash of its bytes) and every input under the ctest replay
 * also runs the real loader, fdn_config_create with the text written to a file under
 * /dev/shm (or TMPDIR) and envp, which must return the same code and, on success, give the
 * same values through fdn_config_get_json. A service costs ~0.7 ms to create and destroy
 * under ASan (its schema, snapshot and RCU teardown), so on every input it would cap the
 * target near 1.3 k/s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <fdn/config.h>
#include "logic/config_path.h"
#include "services/config_int.h"
#include "validation/config_schema.h"

#include "fuzz_config_schema.h"
#include "fuzz_util.h"

#define ENV_MAX    8
#define FULL_EVERY 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_file[256];

static void remove_file(void)
{
    if (g_file[0] != '\0')
        unlink(g_file);
}

/* The path of the config file the full path writes (one per process). */
static const char *file_path(void)
{
    if (g_file[0] == '\0') {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(g_file, sizeof g_file, "%s/fdn-fuzz-config-env-%ld.json",
                 dir != NULL ? dir : "/tmp", (long)getpid());
        atexit(remove_file);
    }
    return g_file;
}

static bool allowed_code(int rc)
{
    return rc == 0 || rc == FDN_EPARSE || rc == FDN_ECONFIG_STRUCTURE ||
           rc == FDN_ECONFIG_INVALID || rc == FDN_ECONFIG_RANGE || rc == FDN_ECONFIG_CONSTRAINT;
}

/* The real loader on the same file text and environment: same code, same values. */
static void full_path(const char *file, size_t flen, const char *const *envp, int fast_rc,
                      const fdn__cfg_schema_t *s, json_t *const *vals)
{
    FILE *f = fopen(file_path(), "wb");
    if (f == NULL || fwrite(file, 1, flen, f) != flen || fclose(f) != 0)
        abort();
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.file = file_path();
    o.envp = envp;
    o.start_stopped = true;
    fdn_config_t *cfg = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_config_create(&cfg, &o, &err);
    if (rc == FDN_ENOMEM)
        return;
    if (rc != fast_rc || (rc != 0 && err.message[0] == '\0'))
        abort(); /* the loader and its layers disagree */
    if (rc != 0)
        return;
    if (fdn__config_service_start(cfg) != 0)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        char *got = NULL;
        char *want = json_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
        if (want == NULL || fdn_config_get_json(cfg, s->e[i].path, &got, NULL) != 0 ||
            strcmp(got, want) != 0)
            abort(); /* the service does not hold what its layers computed */
        fdn_free(got);
        free(want);
    }
    fdn_config_destroy(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* split: file text, then up to ENV_MAX environment entries */
    const char *envp[ENV_MAX + 1];
    size_t nenv = 0;
    size_t flen = strlen(buf);
    for (size_t off = flen + 1; off < size && nenv < ENV_MAX; off += strlen(buf + off) + 1)
        envp[nenv++] = buf + off;
    envp[nenv] = NULL;

    const fdn__cfg_schema_t *s = fdn_fuzz_config_schema();
    json_t **vals = calloc(s->n, sizeof(json_t *));
    uint8_t *marks = calloc(s->n, 1);
    const char **src = calloc(s->n, sizeof(char *));
    if (vals == NULL || marks == NULL || src == NULL)
        abort();
    for (size_t i = 0; i < s->n; i++)
        vals[i] = json_incref(s->e[i].def);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc;
    json_error_t jerr;
    json_t *root = json_loadb(buf, flen, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        rc = fdn_err_set(&err, FDN_EPARSE, "file: %s", jerr.text);
    else
        rc = fdn__cfg_merge_json(s, vals, root, "file", marks, 1, &err);
    json_decref(root);
    if (rc == 0)
        rc = fdn__cfg_apply_env(s, vals, marks, src, envp, &err);
    if (rc == 0)
        rc = fdn__cfg_validate(s, vals, NULL, &err);
    if (rc == FDN_ENOMEM)
        goto out;
    if (!allowed_code(rc) || (rc != 0 && err.message[0] == '\0'))
        abort();
    if (rc == 0) {
        /* every override that names a key holds its parsed value: the last one wins */
        for (size_t e = 0; e < nenv; e++) {
            const char *eq = strchr(envp[e], '=');
            char path[FDN__CFG_MAX_PATH_LEN + 1];
            if (eq == NULL ||
                fdn__cfg_env_name_to_path(envp[e], (size_t)(eq - envp[e]), path, sizeof path))
                continue;
            int32_t idx = fdn__cfg_schema_find(s, path, strlen(path));
            if (idx < 0)
                continue;
            if (src[idx] == NULL || marks[idx] != 2)
                abort();
            if (src[idx] != envp[e])
                continue; /* a later entry names the same key */
            json_t *v = NULL;
            if (fdn__cfg_parse_text(s->e[idx].type, eq + 1, &v) != 0 || !json_equal(v, vals[idx]))
                abort();
            json_decref(v);
        }
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    if (h % FULL_EVERY == 0 || FDN_FUZZ_REPLAYING())
        full_path(buf, flen, envp, rc, s, vals);
out:
    for (size_t i = 0; i < s->n; i++)
        json_decref(vals[i]);
    free(vals);
    free(marks);
    free((void *)src);
    free(buf);
    return 0;
}
