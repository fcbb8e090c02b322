/* Children of a test (child.h). */
#include "child.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

int test_run_child(void (*body)(void), char *err, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        body();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], err + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    err[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

pid_t test_spawn_self(const char *const args[], const int *keep, size_t nkeep)
{
    static const char self[] = "/proc/self/exe";
    char *argv[32];
    size_t n = 0;
    while (args[n] != NULL)
        n++;
    assert_true(n + 2 <= sizeof(argv) / sizeof(argv[0]));
    argv[0] = (char *)self;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    argv[n + 1] = NULL;
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    /* dup2 of a descriptor onto itself clears its FD_CLOEXEC in the child (POSIX 2024; glibc
     * 2.29 on) */
    for (size_t i = 0; i < nkeep; i++)
        assert_int_equal(posix_spawn_file_actions_adddup2(&fa, keep[i], keep[i]), 0);
    fflush(stdout);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fprintf(stderr, "posix_spawn %s: errno %d\n", self, rc);
    assert_int_equal(rc, 0);
    return pid;
}

int test_child_main(int argc, char **argv, const test_child_role_t *roles, size_t nroles)
{
    if (argc < 2 || strcmp(argv[1], "child") != 0)
        return -1;
    for (size_t i = 0; i < nroles; i++)
        if (argc == 3 + roles[i].nargs && strcmp(argv[2], roles[i].name) == 0)
            return roles[i].run(argv + 3);
    fprintf(stderr, "%s: a child's command line is one of\n", argv[0]);
    for (size_t i = 0; i < nroles; i++)
        fprintf(stderr, "  %s child %s %s\n", argv[0], roles[i].name, roles[i].usage);
    return 2;
}

long long test_child_int(const char *arg, long long min, long long max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "child: '%s' is not an integer in [%lld, %lld]\n", arg, min, max);
        exit(2);
    }
    return v;
}

void test_child_wait_ok_at(pid_t pid, const char *what, const char *file, int line)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    if (WIFEXITED(st))
        print_error("ERROR: %s (pid %d) exited with status %d\n", what, (int)pid, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        print_error("ERROR: %s (pid %d) was killed by signal %d\n", what, (int)pid, WTERMSIG(st));
    else
        print_error("ERROR: %s (pid %d) ended with wait status 0x%x\n", what, (int)pid,
                    (unsigned)st);
    _fail(file, line);
}
