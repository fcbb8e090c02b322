/* fdn: the command-line program (subcommands grow with the services). */
#include <stdio.h>
#include <string.h>

#include <fdn/common.h>
#include <fdn/version.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: fdn <command> [options]\n\n"
                 "commands:\n"
                 "  version    print the library version\n"
                 "  help       show this help\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("fdn %s (reference Foundation %s)\n", fdn_version(), FDN_REFERENCE_VERSION);
        return 0;
    }
    fprintf(stderr, "fdn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
