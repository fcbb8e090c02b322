/* Death tests: run a function in a forked child whose stderr goes to a pipe, and return how
 * the child ended and what it wrote. Fork before the test's process has started threads
 * (ThreadSanitizer refuses a fork once threads have run): the child may start its own. */
#ifndef FDN_TEST_CHILD_H
#define FDN_TEST_CHILD_H

#include <stddef.h>

/* Run body() in a child (then _exit(0)); wait for it. Returns its wait status; err gets
 * what it wrote to stderr (at most cap - 1 bytes, NUL-terminated). Fails the test when the
 * pipe or the fork fails. */
int test_run_child(void (*body)(void), char *err, size_t cap);

#endif
