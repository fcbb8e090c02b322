/* Temporary directories for tests: made under $TMPDIR (or /tmp) with a name that says which
 * test made them, and removed with everything in them. */
#ifndef FDN_TEST_TMPDIR_H
#define FDN_TEST_TMPDIR_H

#include <stddef.h>

/* Creates "<$TMPDIR or /tmp>/fdn-<tag>-XXXXXX" into buf (size n). Returns 0, or -1 when the
 * name does not fit or mkdtemp fails (errno set). */
int test_tmpdir_make(char *buf, size_t n, const char *tag);

/* Removes dir and everything below it (symlinks are removed, not followed). Errors are
 * ignored: a test's teardown must not fail over a file it could not remove. */
void test_tmpdir_remove(const char *dir);

/* A temporary directory and the path of one file in it: the fixture of a test of a store on
 * a file (an event file, a spool). */
typedef struct test_tmpfile {
    char dir[128];
    char path[192];
} test_tmpfile_t;

/* test_tmpdir_make(t->dir, tag), and t->path = "<dir>/<name>". Returns 0, or -1 when the
 * directory cannot be made or the path does not fit (errno set). */
int test_tmpfile_make(test_tmpfile_t *t, const char *tag, const char *name);

/* test_tmpdir_remove(t->dir). */
void test_tmpfile_remove(const test_tmpfile_t *t);

#endif
