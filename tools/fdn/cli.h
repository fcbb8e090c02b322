/* fdn command-line program: shared declarations of the subcommand files. */
#ifndef FDN_CLI_H
#define FDN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/pool.h>

/** Event store file inside a data directory (shared by `serve` and `events query`). */
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
int cmd_version(int argc, char **argv);

/* Argument helpers. argv[*i] is the current argument; options take "--opt VALUE" or
 * "--opt=VALUE". Returns 1 when argv[*i] is `name` (value stored, *i advanced past it),
 * 0 when it is another argument, -1 after printing an error (missing value). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* True when argv[i] is -h or --help. */
bool cli_is_help(const char *arg);
/* Strict integer option value; prints "fdn <cmd>: --name: ..." and returns -1 on error. */
int cli_int(const char *cmd, const char *name, const char *s, int64_t min, int64_t max,
            int64_t *out);
/* Read a whole small file (≤ max bytes) into a NUL-terminated malloc'd buffer. */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);
/* Check a config file: JSON object, and (once the config service is in) the validator.
 * Prints each problem to out prefixed with the file name. Returns 0 when valid. */
int cli_config_check_file(const char *path, FILE *out);

/* serve_wiring.c: the configuration drives the services `fdn serve` runs. */
typedef struct serve_wiring {
    fdn_config_t *cfg;
    fdn_events_t *es;
    fdn_pools_t *pools;
    uint64_t sub; /* config subscription, 0 = none */
} serve_wiring_t;
/* Apply the config paths that drive the services. */
void serve_apply_config(fdn_config_t *cfg, fdn_events_t *es, fdn_pools_t *pools);
/* Apply now and on every change (w must outlive the subscription). */
int serve_wire_config(serve_wiring_t *w);

#endif
