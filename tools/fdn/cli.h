/* fdn command-line program: shared declarations of the subcommand files. */
#ifndef FDN_CLI_H
#define FDN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Event store file inside a data directory: the runtime keeps its durable events there
 *  (`<data_dir>/events.db`) and `events query` reads it offline. */
#define FDN_CLI_EVENTS_FILE "events.db"
/** Default data directory of `fdn serve`. */
#define FDN_CLI_DEFAULT_DATA_DIR "./foundation_data"

/* Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

int cmd_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* Argument helpers. argv[*i] is the current argument; options take "--opt VALUE" or
 * "--opt=VALUE". Returns 1 when argv[*i] is `name` (value stored, *i advanced past it),
 * 0 when it is another argument, -1 after printing an error (missing value). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* One option of a subcommand, for cli_parse. Exactly one kind:
 *  - str != NULL: "--name VALUE", the value is stored in *str;
 *  - num != NULL: an integer in [min, max] (checked by cli_int), stored in *num;
 *  - neither: a flag without a value.
 * seen (optional) is set to true when the option is given. */
typedef struct cli_optdef {
    const char *name;
    const char **str;
    int64_t *num;
    int64_t min, max;
    bool *seen;
} cli_optdef_t;
/* Parses argv[1..argc-1] against defs. cmd names the subcommand in messages ("serve").
 * Returns 0; 1 after printing usage to stdout for -h/--help; -1 after printing an error
 * (unknown argument, missing or bad value). */
int cli_parse(int argc, char **argv, const char *cmd, const cli_optdef_t *defs, size_t ndefs,
              void (*usage)(FILE *out));
/* True when argv[i] is -h or --help. */
bool cli_is_help(const char *arg);
/* Strict integer option value; prints "fdn <cmd>: --name: ..." and returns -1 on error. */
int cli_int(const char *cmd, const char *name, const char *s, int64_t min, int64_t max,
            int64_t *out);
/* Read a whole small file (≤ max bytes) into a NUL-terminated malloc'd buffer. 0, or
 * -errno: -ENOENT, -EACCES, -EISDIR (a directory), -EFBIG (larger than max), -ENOMEM, -EIO. */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);
/* What a cli_read_file error means, for a message ("no such file", "is a directory", ...). */
const char *cli_read_error(int rc);
/* Check a config file: readable, a JSON object, then fdn_config_check_json (every problem
 * printed with its path and rule).
 * Prints each problem to out prefixed with the file name. Returns 0 when valid. */
int cli_config_check_file(const char *path, FILE *out);

#endif
