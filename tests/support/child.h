/* Children of a test:
 *   - death tests: run a function in a forked child whose stderr goes to a pipe, and return
 *     how the child ended and what it wrote (test_run_child). Fork before the test's process
 *     has started threads (ThreadSanitizer refuses a fork once threads have run): the child
 *     may start its own.
 *   - a child that starts threads in a test whose process has some already: a fresh run of
 *     the test program itself (test_spawn_self), whose main() hands it to the child's code.
 *     ThreadSanitizer kills the child of a fork(2) taken while other threads are alive when
 *     that child starts a thread ("starting new threads after multi-threaded fork is not
 *     supported"), and a process has a thread for good once anything in it used liburcu's
 *     call_rcu (its worker thread is never joined); the library's fork handler (core/rcu.c)
 *     then starts a new one in the child, so such a child dies inside fork() itself. An
 *     exec'd child is a new process that ThreadSanitizer follows whole. */
#ifndef FDN_TEST_CHILD_H
#define FDN_TEST_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* Run body() in a child (then _exit(0)); wait for it. Returns its wait status; err gets
 * what it wrote to stderr (at most cap - 1 bytes, NUL-terminated). Fails the test when the
 * pipe or the fork fails. */
int test_run_child(void (*body)(void), char *err, size_t cap);

/* Start the running test program again (/proc/self/exe) with the arguments args[0..] (NULL-
 * terminated; the child's argv[1..]) and this environment; returns its pid, which the caller
 * waits for. The child inherits keep[0..nkeep) (their FD_CLOEXEC cleared in the child only)
 * and every other descriptor opened without O_CLOEXEC: open the ones it must not hold, such as
 * the parent's ends of its pipes, with O_CLOEXEC (pipe2). stdout is flushed first. Fails the
 * test when the spawn fails. */
pid_t test_spawn_self(const char *const args[], const int *keep, size_t nkeep);

#endif
