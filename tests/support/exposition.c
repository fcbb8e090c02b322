/* DESIGN: the exposition tests' helpers (see exposition.h). No state; promtool runs on a
 * temporary file, removed after. */
#include "exposition.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/error.h>

size_t test_count_lines(const char *text, const char *prefix)
{
    size_t n = 0, k = strlen(prefix);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, k) == 0)
            n++;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return n;
}

int test_text_sink(const char *data, size_t len, void *user)
{
    test_text_t *t = user;
    if (t->len + len >= sizeof(t->buf))
        return FDN_ENOBUFS;
    memcpy(t->buf + t->len, data, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return 0;
}

int test_promtool_check(const char *text, size_t len)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return 1;
    char path[] = "/tmp/fdn_prom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_true(write(fd, text, len) == (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    unlink(path);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail_msg("promtool rejected the exposition:\n%s\n--- the exposition:\n%.*s", out, (int)len,
                 text);
    return 0;
}
