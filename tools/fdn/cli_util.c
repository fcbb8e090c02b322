/* DESIGN: fdn argument and file helpers shared by the subcommands. Single-threaded, no state. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        (*i)++;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fdn: option %s needs a value\n", name);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

/* Applies def to argv[*i] when it names it: 1 (applied, *i advanced), 0 (another
 * argument), -1 (error printed). */
static int apply_opt(int argc, char **argv, int *i, const char *cmd, const cli_optdef_t *def)
{
    const char *v = NULL;
    if (def->str == NULL && def->num == NULL) {
        if (strcmp(argv[*i], def->name) != 0)
            return 0;
        (*i)++;
    } else {
        int r = cli_opt(argc, argv, i, def->name, &v);
        if (r <= 0)
            return r;
        if (def->str != NULL)
            *def->str = v;
        else if (cli_int(cmd, def->name, v, def->min, def->max, def->num) < 0)
            return -1;
    }
    if (def->seen != NULL)
        *def->seen = true;
    return 1;
}

int cli_parse(int argc, char **argv, const char *cmd, const cli_optdef_t *defs, size_t ndefs,
              void (*usage)(FILE *out))
{
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 1;
        }
        int r = 0;
        for (size_t d = 0; d < ndefs && r == 0; d++)
            r = apply_opt(argc, argv, &i, cmd, &defs[d]);
        if (r < 0)
            return -1;
        if (r == 0) {
            fprintf(stderr, "fdn %s: unknown argument '%s' (see fdn %s --help)\n", cmd, argv[i],
                    cmd);
            return -1;
        }
    }
    return 0;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_int(const char *cmd, const char *name, const char *s, int64_t min, int64_t max,
            int64_t *out)
{
    const char *d = (*s == '-') ? s + 1 : s;
    bool ok = *d != '\0' && strlen(s) <= 20;
    for (const char *c = d; ok && *c; c++)
        ok = *c >= '0' && *c <= '9';
    long long v = 0;
    if (ok) {
        errno = 0;
        char *end = NULL;
        v = strtoll(s, &end, 10);
        ok = errno == 0 && end != NULL && *end == '\0' && v >= min && v <= max;
    }
    if (!ok) {
        fprintf(stderr, "fdn %s: %s: '%s' is not an integer in [%lld, %lld]\n", cmd, name, s,
                (long long)min, (long long)max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) { /* fopen opens one, fread fails */
        fclose(f);
        return -EISDIR;
    }
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -EIO;
    }
    if (n > max) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

const char *cli_read_error(int rc)
{
    switch (rc) {
    case -ENOENT:
        return "no such file";
    case -EACCES:
        return "permission denied";
    case -EISDIR:
        return "is a directory";
    case -ENOMEM:
        return "out of memory";
    default:
        return "I/O error";
    }
}
