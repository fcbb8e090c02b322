/* DESIGN: a test's own server (tests/support/engine.h) does not outlive a test that is killed.
 * A child, a fresh run of this program (test_spawn_self), starts a PostgreSQL server of its own
 * with test_engine_server_start and pauses the cluster (SIGSTOP, as the stop tests do:
 * test_pg_signal_cluster), says where it is on a pipe, and waits to be killed; the test kills
 * it as ctest's TIMEOUT does (kwsys's kwsysProcessKill: the process stopped, then every process
 * whose parent chain leads to it SIGKILLed, found in /proc, then the process itself), or with
 * its process group (a kill by hand), and waits until the server's directory and its
 * postmaster are gone. Before, the watchdog that stops the server was a child of the test:
 * ctest's kill took it with the test, and the paused server ran on (five were found after one
 * session). The wait is bounded by two minutes, only to catch a server left behind (the
 * watchdog's stop takes a few seconds); the teardown stops a server the test finds left, so a
 * failure leaks nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "engine.h"
#include "pg_fixture.h"

/* The child's server: its directory and postmaster, as the child said. */
typedef struct left {
    char dir[64];
    long pm;
} left_t;

static left_t g_left;

/* child ROLE serve FD GROUP: a server of its own, paused; "DIR PM\n" on FD; then waits to be
 * killed. GROUP 1: in a process group of its own first (so that the test can kill the group
 * without taking itself). */
static int serve_main(char **args)
{
    int fd = (int)test_child_int(args[0], 0, 1 << 20);
    if (test_child_int(args[1], 0, 1) == 1 && setpgid(0, 0) != 0) {
        fprintf(stderr, "setpgid: errno %d\n", errno);
        return 1;
    }
    test_engine_server_t *s = test_engine_server_start("pg-server.sh");
    char path[128];
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", s->dir);
    FILE *f = fopen(path, "r");
    long pm = 0;
    if (f == NULL || fscanf(f, "%ld", &pm) != 1) {
        fprintf(stderr, "no postmaster.pid in %s\n", s->dir);
        return 1;
    }
    fclose(f);
    test_pg_signal_cluster(s->dir, SIGSTOP);
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %ld\n", s->dir, pm);
    if (write(fd, line, (size_t)n) != n) {
        fprintf(stderr, "write: errno %d\n", errno);
        return 1;
    }
    for (;;)
        pause();
}

/* The parent of pid, from /proc/pid/stat (0 when it is gone). */
static long parent_of(long pid)
{
    char sp[64], buf[512];
    snprintf(sp, sizeof(sp), "/proc/%ld/stat", pid);
    FILE *f = fopen(sp, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
    char state;
    long ppid = 0;
    if (rp == NULL || sscanf(rp + 1, " %c %ld", &state, &ppid) != 2)
        return 0;
    return ppid;
}

/* What ctest does to a test past its TIMEOUT (cmProcess::OnTimeout -> cmsysProcess_KillPID ->
 * kwsysProcessKill): stop pid, kill each of its children the same way (found in /proc by their
 * parent), then SIGKILL pid. */
static void kill_tree(long pid)
{
    (void)kill((pid_t)pid, SIGSTOP);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end = NULL;
        long c = strtol(de->d_name, &end, 10);
        if (end != de->d_name && *end == '\0' && parent_of(c) == pid)
            kill_tree(c);
    }
    closedir(d);
    (void)kill((pid_t)pid, SIGKILL);
}

/* Whether the server the child started is gone: its directory removed and its postmaster
 * ended (or its pid now another program's). */
static bool server_gone(void *arg)
{
    const left_t *l = arg;
    struct stat st;
    if (stat(l->dir, &st) == 0)
        return false;
    char path[64], cmd[256] = "";
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", l->pm);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = '\0';
    return strstr(cmd, "postgres") == NULL;
}

/* Spawns the child (in a group of its own when group), reads where its server is. */
static pid_t spawn_server(bool group)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", p[1]);
    const char *args[] = {"child", "serve", fd, group ? "1" : "0", NULL};
    pid_t pid = test_spawn_self(args, &p[1], 1);
    close(p[1]);
    char line[128];
    size_t n = 0;
    ssize_t r;
    /* the child's line, or the end of the pipe when it failed (its reason on stderr) */
    while (n < sizeof(line) - 1 && (r = read(p[0], line + n, sizeof(line) - 1 - n)) != 0) {
        if (r < 0) {
            assert_int_equal(errno, EINTR);
            continue;
        }
        n += (size_t)r;
        if (line[n - 1] == '\n')
            break;
    }
    close(p[0]);
    line[n] = '\0';
    assert_int_equal(sscanf(line, "%63s %ld", g_left.dir, &g_left.pm), 2);
    return pid;
}

static void reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void killed_as_ctest_kills_on_timeout(void **state)
{
    (void)state;
    pid_t pid = spawn_server(false);
    kill_tree(pid);
    reap(pid);
    assert_true(test_wait_until(server_gone, &g_left, 120000));
}

static void killed_with_its_process_group(void **state)
{
    (void)state;
    pid_t pid = spawn_server(true);
    assert_int_equal(kill(-pid, SIGKILL), 0);
    reap(pid);
    assert_true(test_wait_until(server_gone, &g_left, 120000));
}

/* A server the watchdog did not stop (the test failed) is stopped here: none is left. */
static int stop_left(void **state)
{
    (void)state;
    if (g_left.dir[0] != '\0' && !server_gone(&g_left)) {
        struct stat st;
        if (stat(g_left.dir, &st) == 0)
            test_engine_script("pg-server.sh", "stop", g_left.dir);
        else
            kill_tree(g_left.pm); /* (and its backends, which a pause keeps from exiting) */
    }
    memset(&g_left, 0, sizeof(g_left));
    return 0;
}

int main(int argc, char **argv)
{
    static const test_child_role_t roles[] = {{"serve", "FD GROUP", 2, serve_main}};
    int rc = test_child_main(argc, argv, roles, sizeof(roles) / sizeof(roles[0]));
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(killed_as_ctest_kills_on_timeout, stop_left),
        cmocka_unit_test_teardown(killed_with_its_process_group, stop_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
