/* DESIGN: temporary directories for tests (see tmpdir.h). Removal walks the tree depth first
 * with nftw, without following symlinks (FTW_PHYS), so a link in a test directory can never
 * make a teardown delete anything outside it. */
#include "tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int test_tmpdir_make(char *buf, size_t n, const char *tag)
{
    const char *base = getenv("TMPDIR");
    int len = snprintf(buf, n, "%s/fdn-%s-XXXXXX", base != NULL && base[0] ? base : "/tmp", tag);
    if (len < 0 || (size_t)len >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(buf) != NULL ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void test_tmpdir_remove(const char *dir)
{
    (void)nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int test_tmpfile_make(test_tmpfile_t *t, const char *tag, const char *name)
{
    if (test_tmpdir_make(t->dir, sizeof t->dir, tag) != 0)
        return -1;
    int len = snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    if (len < 0 || (size_t)len >= sizeof t->path) {
        test_tmpdir_remove(t->dir);
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

void test_tmpfile_remove(const test_tmpfile_t *t)
{
    test_tmpdir_remove(t->dir);
}
