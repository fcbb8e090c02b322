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
 *     exec'd child is a new process that ThreadSanitizer follows whole. Such a program's
 *     main() first hands a "child ROLE ARG..." command line to the role's code
 *     (test_child_main); the parent waits for the child with test_child_wait_ok. */
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

/* A part the test program plays in a child started by test_spawn_self: the command line
 * "PROG child NAME ARG..." with exactly nargs ARGs runs run(the ARGs), whose return value is
 * the child's exit status. A role reports its failures on stderr (the test's, which the child
 * inherits) and returns non-zero. */
typedef struct test_child_role {
    const char *name;
    const char *usage; /* its ARGs, for the usage message ("URL NS INSTANCE READY") */
    int nargs;
    int (*run)(char **args);
} test_child_role_t;

/* main()'s dispatch, its first statement in a program that starts children with
 * test_spawn_self:
 *     int rc = test_child_main(argc, argv, roles, sizeof(roles) / sizeof(roles[0]));
 *     if (rc >= 0)
 *         return rc;
 * Returns -1 when argv[1] is not "child" (a run of the tests). Otherwise the exit status of
 * the role argv[2] names; 2 with the roles' usage on stderr when no role has that name and
 * that number of arguments. */
int test_child_main(int argc, char **argv, const test_child_role_t *roles, size_t nroles);

/* A child role's integer argument (a descriptor, a count), whole and in [min, max]. Anything
 * else is a broken command line: a message on stderr and exit status 2 (in the child, which
 * nothing else runs in). */
long long test_child_int(const char *arg, long long min, long long max);

/* Wait for the child pid (what names it in the message) and fail the test, at the caller's
 * line, unless it exited with status 0; the message says how it ended (exit status or signal;
 * a sanitizer's report ends it with its exitcode, 66 by default), the child's own messages
 * are above it. */
#define test_child_wait_ok(pid, what) test_child_wait_ok_at((pid), (what), __FILE__, __LINE__)
void test_child_wait_ok_at(pid_t pid, const char *what, const char *file, int line);

#endif
