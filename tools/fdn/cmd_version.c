/* DESIGN: fdn version: library and reference versions. Single-threaded, no state. */
#include "cli.h"

#include <string.h>

#include <fdn/common.h>
#include <fdn/version.h>

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: fdn version\n\nPrint the fdn version and the reference version.\n");
        return CLI_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "fdn version: unexpected argument '%s'\n", argv[1]);
        return CLI_USAGE;
    }
    printf("fdn %s (reference Foundation %s)\n", fdn_version(), FDN_REFERENCE_VERSION);
    return CLI_OK;
}
