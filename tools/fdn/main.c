/* DESIGN: fdn, the command-line program: dispatches to one file per subcommand (cmd_*.c).
 * Single-threaded except `serve` (see cmd_serve.c). Exit codes: 0 ok, 1 failure, 2 usage.
 * `serve` exists only when the build has the fdn_admin library (FDN_CLI_SERVE, CMake option
 * FDN_BUILD_ADMIN); the other commands are offline and need libfdn alone. */
#include "cli.h"

#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: fdn <command> [options]\n"
                 "\n"
                 "commands:\n"
#ifdef FDN_CLI_SERVE
                 "  serve            run a runtime with the admin HTTP API (127.0.0.1:9568)\n"
#endif
                 "  config defaults  print the default configuration tree as JSON\n"
                 "  config check F   validate a configuration file\n"
                 "  events query     read stored events from a data directory (offline)\n"
                 "  events quarantine  list a PostgreSQL store's quarantined spool batches\n"
                 "  registry list    list the fleet-wide registry on etcd (--etcd URL)\n"
                 "  version          print the version\n"
                 "  help             show this help\n"
                 "\n"
                 "Run 'fdn <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    bool help = cli_is_help(cmd) || strcmp(cmd, "help") == 0;
    if ((help || strcmp(cmd, "--version") == 0) && argc > 2) {
        fprintf(stderr, "fdn %s: unexpected argument '%s'\n", cmd, argv[2]);
        return CLI_USAGE;
    }
    if (help) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0)
        return cmd_version(1, argv + 1);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
#ifdef FDN_CLI_SERVE
        {"serve", cmd_serve},
#endif
        {"config", cmd_config},
        {"events", cmd_events},
        {"registry", cmd_registry},
        {"version", cmd_version}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fdn: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
