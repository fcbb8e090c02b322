/* DESIGN: fdn config: `defaults` prints the default tree, `check FILE` validates a file.
 * The structural check (readable, JSON, an object) is here; the schema validation (paths,
 * types, ranges, with each problem's path and rule) plugs in from the config service in
 * config_validate() once it is merged. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/config.h>

#define CONFIG_FILE_MAX (4u << 20)

/* Schema validation by the config service: the file is layered over the defaults (as
 * `fdn serve --config` does, environment ignored) and the whole tree validated. Prints
 * "<file>: <message naming the path and rule>" and returns the number of problems (the
 * service reports the first failure in reference order). */
static int config_validate(const char *path, json_t *tree, FILE *out)
{
    (void)tree;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.file = path;
    o.ignore_env = true;
    o.start_stopped = true;
    fdn_config_t *cfg = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_config_create(&cfg, &o, &err);
    fdn_config_destroy(cfg);
    if (rc == 0)
        return 0;
    fprintf(out, "%s: %s [%s, code %d]\n", path, err.message[0] ? err.message : fdn_strerror(rc),
            fdn_err_info(rc)->type, fdn_err_info(rc)->ref_code);
    return 1;
}

int cli_config_check_file(const char *path, FILE *out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, CONFIG_FILE_MAX, &buf, &len);
    if (rc == -EFBIG) {
        fprintf(out, "%s: file larger than %u bytes\n", path, CONFIG_FILE_MAX);
        return -1;
    }
    if (rc < 0) {
        fprintf(out, "%s: cannot read: %s\n", path,
                rc == -ENOENT   ? "no such file"
                : rc == -EACCES ? "permission denied"
                                : "I/O error");
        return -1;
    }
    json_error_t je;
    json_t *tree = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (tree == NULL) {
        fprintf(out, "%s:%d:%d: malformed JSON: %s\n", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(tree)) {
        fprintf(out, "%s: the configuration must be a JSON object\n", path);
        json_decref(tree);
        return -1;
    }
    int problems = config_validate(path, tree, out);
    json_decref(tree);
    return problems == 0 ? 0 : -1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fdn config defaults\n"
                 "       fdn config check FILE\n"
                 "\n"
                 "defaults  print the default configuration tree as JSON\n"
                 "check     validate FILE; each problem is printed with its path and rule;\n"
                 "          exit status 0 when valid, 1 when not\n");
}

int cmd_config(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "check") == 0) {
        if (argc == 3 && cli_is_help(argv[2])) {
            usage(stdout);
            return CLI_OK;
        }
        if (argc != 3) {
            fprintf(stderr, "fdn config check: expected exactly one FILE\n");
            return CLI_USAGE;
        }
        if (cli_config_check_file(argv[2], stdout) != 0)
            return CLI_FAIL;
        printf("%s: ok\n", argv[2]);
        return CLI_OK;
    }
    if (strcmp(argv[1], "defaults") == 0) {
        if (argc == 3 && cli_is_help(argv[2])) {
            usage(stdout);
            return CLI_OK;
        }
        if (argc != 2) {
            fprintf(stderr, "fdn config defaults: unexpected argument '%s'\n", argv[2]);
            return CLI_USAGE;
        }
        fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
        o.ignore_env = true;
        fdn_config_t *cfg = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        char *json = NULL;
        int rc = fdn_config_create(&cfg, &o, &err);
        if (rc == 0)
            rc = fdn_config_get_json(cfg, "", &json, &err);
        if (rc < 0) {
            fprintf(stderr, "fdn config defaults: %s\n",
                    err.message[0] ? err.message : fdn_strerror(rc));
            fdn_config_destroy(cfg);
            return CLI_FAIL;
        }
        json_t *tree = json_loads(json, 0, NULL);
        char *pretty = tree ? json_dumps(tree, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        printf("%s\n", pretty ? pretty : json);
        free(pretty);
        json_decref(tree);
        fdn_free(json);
        fdn_config_destroy(cfg);
        return CLI_OK;
    }
    fprintf(stderr, "fdn config: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
