/* DESIGN: fdn config: `defaults` prints the default tree, `check FILE` validates a file.
 * The structural check (readable, JSON, an object) is here; the schema validation (paths,
 * types, ranges, each problem with its path and rule) is fdn_config_check_json of the
 * config service, which reports every problem, not only the first. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/common.h>
#include <fdn/config.h>
#include <fdn/error.h>

#define CONFIG_FILE_MAX (4u << 20)

typedef struct check_ctx {
    const char *file;
    FILE *out;
    int problems;
} check_ctx_t;

static void on_problem(const char *path, const char *message, int code, void *user)
{
    check_ctx_t *c = user;
    c->problems++;
    fprintf(c->out, "%s: %s%s%s [%s, code %d]\n", c->file, path, path[0] ? ": " : "", message,
            fdn_err_info(code)->type, fdn_err_info(code)->ref_code);
}

/* Schema validation by the config service: the file is layered over the defaults (as
 * `fdn serve --config` does, environment ignored) and every problem is printed as
 * "<file>: <path>: <message naming the rule> [type, code N]". Returns the number of
 * problems (-1 on allocation failure). */
static int config_validate(const char *path, const char *buf, size_t len, FILE *out)
{
    check_ctx_t c = {path, out, 0};
    int rc = fdn_config_check_json(buf, len, on_problem, &c);
    if (rc == FDN_ENOMEM) {
        fprintf(out, "%s: out of memory\n", path);
        return -1;
    }
    return c.problems;
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
        fprintf(out, "%s: cannot read: %s\n", path, cli_read_error(rc));
        return -1;
    }
    json_error_t je;
    json_t *tree = NULL;
    int prc = fdn_json_loadb(buf, len, JSON_REJECT_DUPLICATES, &tree, &je);
    if (prc != 0) {
        free(buf);
        if (prc == FDN_EPARSE)
            fprintf(out, "%s:%d:%d: malformed JSON: %s\n", path, je.line, je.column, je.text);
        else
            fprintf(out, "%s: cannot parse: %s\n", path, fdn_strerror(prc));
        return -1;
    }
    bool is_obj = json_is_object(tree);
    json_decref(tree);
    if (!is_obj) {
        free(buf);
        fprintf(out, "%s: the configuration must be a JSON object\n", path);
        return -1;
    }
    int problems = config_validate(path, buf, len, out);
    free(buf);
    if (problems > 1)
        fprintf(out, "%s: %d problems\n", path, problems);
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
        json_t *tree = NULL;
        (void)fdn_json_loadb(json, strlen(json), 0, &tree, NULL);
        char *pretty = NULL;
        if (tree != NULL)
            (void)fdn_json_dumps(tree, JSON_INDENT(2) | JSON_SORT_KEYS, &pretty, NULL);
        printf("%s\n", pretty ? pretty : json);
        fdn_free(pretty);
        json_decref(tree);
        fdn_free(json);
        fdn_config_destroy(cfg);
        return CLI_OK;
    }
    fprintf(stderr, "fdn config: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
