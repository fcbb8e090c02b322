/* DESIGN: the engine tests' helpers (see engine.h). The run id is set once (pthread_once) and
 * the name counter is atomic, so any thread may name things; the rest keeps no state. */
#include "engine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/clock.h>

extern char **environ;

static pthread_once_t g_run_once = PTHREAD_ONCE_INIT;
static unsigned g_run;

static void run_init(void)
{
    g_run = (unsigned)getpid() ^ (unsigned)fdn_clock_wall_ns(NULL);
}

void test_engine_url_of(const char *dir, char *url, size_t cap)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/url", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(url, (int)cap, f));
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
}

void test_engine_fixture_url(const char *env, char *url, size_t cap)
{
    const char *dir = getenv(env);
    assert_non_null(dir);
    test_engine_url_of(dir, url, cap);
    pthread_once(&g_run_once, run_init);
}

char test_etcd_url[128];

int test_engine_etcd_setup(void **state)
{
    (void)state;
    test_engine_fixture_url("FDN_TEST_ETCD_DIR", test_etcd_url, sizeof(test_etcd_url));
    return 0;
}

void test_engine_script(const char *script, const char *cmd, const char *dir)
{
    const char *src = getenv("FDN_SOURCE_DIR");
    assert_non_null(src);
    char line[1400];
    snprintf(line, sizeof(line), "bash %s/scripts/%s %s %s >/dev/null", src, script, cmd, dir);
    assert_int_equal(system(line), 0);
}

/* The watchdog of s (see engine.h): a shell reading one line from its end of a socket pair;
 * "q" means the test stops the server itself, an end of file that the test process is gone.
 * Started by `setsid -f` (util-linux), which forks it into a session of its own and exits at
 * once (waited for here), so the watchdog is an orphan, adopted by init: outside the test's
 * process group and outside its process tree. ctest's TIMEOUT kills the tree, not the group:
 * it stops the test and SIGKILLs every process whose parent chain leads to it, found in /proc
 * (kwsys's kwsysProcessKill), which took the watchdog, when it was the test's child, before
 * it could stop the server: PostgreSQL servers of timed-out tests were left running. Spawned
 * (posix_spawn: no fork of a test process that may have threads, which ThreadSanitizer
 * refuses) before the server starts, so no server runs unwatched. */
static void watch_start(test_engine_server_t *s)
{
    const char *src = getenv("FDN_SOURCE_DIR");
    assert_non_null(src);
    char line[1400];
    snprintf(line, sizeof(line),
             "read -r c; [ \"$c\" = q ] && exit 0; exec bash %s/scripts/%s stop %s", src, s->script,
             s->dir);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, sv[0], 0), 0);
    /* nothing of the test's output held open (ctest reads it to its end) */
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
    assert_int_equal(posix_spawnattr_init(&at), 0);
    char setsid[] = "setsid", fork[] = "-f", sh[] = "sh", dash_c[] = "-c";
    char *argv[] = {setsid, fork, sh, dash_c, line, NULL};
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, "setsid", &fa, &at, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[0]);
    s->watch_fd = sv[1];
    /* setsid has forked the watchdog (which holds its end of the pair) and exited */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

test_engine_server_t *test_engine_server_start(const char *script)
{
    test_engine_server_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->script = script;
    snprintf(s->dir, sizeof(s->dir), "/tmp/fdn-test-engine-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    watch_start(s);
    test_engine_script(script, "start", s->dir);
    test_engine_url_of(s->dir, s->url, sizeof(s->url));
    return s;
}

void test_engine_server_stop(test_engine_server_t *s)
{
    if (s == NULL)
        return;
    /* the watchdog leaves (it reads the "q" whenever it gets to it, before the end of file):
     * the server is stopped here */
    (void)send(s->watch_fd, "q\n", 2, MSG_NOSIGNAL); /* (it may be gone: no SIGPIPE) */
    close(s->watch_fd);
    test_engine_script(s->script, "stop", s->dir);
    free(s);
}

unsigned test_engine_run(void)
{
    pthread_once(&g_run_once, run_init);
    return g_run;
}

void test_engine_unique_name(char *buf, size_t cap, const char *what)
{
    static atomic_uint seq;
    snprintf(buf, cap, "%s-%u-%u", what, test_engine_run(), atomic_fetch_add(&seq, 1));
}

int64_t test_now_ms(void)
{
    return fdn_clock_mono_ns(NULL) / 1000000;
}

void test_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool test_wait_until(bool (*f)(void *), void *arg, int ms)
{
    int64_t end = test_now_ms() + ms;
    while (!f(arg)) {
        if (test_now_ms() > end)
            return false;
        test_pause_ms(5);
    }
    return true;
}
