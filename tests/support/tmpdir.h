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

#endif
