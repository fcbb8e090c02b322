/* Unit tests: cached process and thread ids and buffered randomness (src/core/ident.c), and
 * what the caching must not change: fdn_uuid4 and events report the truth after fork(2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/error.h>
#include <fdn/events.h>

#include "core/ident.h"

static void ids_are_the_kernels(void **state)
{
    (void)state;
    assert_int_equal(fdn__pid(), (uint32_t)getpid());
    assert_int_equal(fdn__pid(), (uint32_t)getpid()); /* cached: the same */
    assert_int_equal(fdn__tid(), (uint32_t)syscall(SYS_gettid));
    assert_int_equal(fdn__tid(), (uint32_t)syscall(SYS_gettid));
}

static void *thread_tid(void *arg)
{
    uint32_t *out = arg;
    out[0] = fdn__tid();
    out[1] = (uint32_t)syscall(SYS_gettid);
    out[2] = fdn__pid();
    return NULL;
}

static void each_thread_its_own_tid(void **state)
{
    (void)state;
    uint32_t main_tid = fdn__tid();
    uint32_t got[3] = {0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_tid, got), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(got[0], got[1]);
    assert_true(got[0] != main_tid);
    assert_int_equal(got[2], (uint32_t)getpid());
}

/* 40 draws (more than one buffer of 32) are all different, and no draw is all zeroes (the
 * buffer zeroes what it handed out: a byte given twice would show as zeroes). */
static void random_bytes_never_repeat(void **state)
{
    (void)state;
    unsigned char seen[40][16];
    static const unsigned char zero[16];
    for (int i = 0; i < 40; i++) {
        assert_int_equal(fdn__random16(seen[i]), 0);
        assert_memory_not_equal(seen[i], zero, 16);
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(seen[i], seen[j], 16);
    }
    char a[FDN_UUID_STR_LEN + 1], b[FDN_UUID_STR_LEN + 1];
    assert_int_equal(fdn_uuid4(a), 0);
    assert_int_equal(fdn_uuid4(b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4'); /* version 4 */
}

/* After fork the child reports its own pid and tid (in events too), and its random bytes are
 * not the ones the parent draws next from the buffer both inherited. */
static void fork_child_gets_its_own(void **state)
{
    (void)state;
    unsigned char warm[16];
    assert_int_equal(fdn__random16(warm), 0); /* the buffer holds unread bytes now */
    uint32_t parent_pid = fdn__pid(), parent_tid = fdn__tid();
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(pipefd[0]);
        struct {
            uint32_t pid, real_pid, tid, real_tid, ev_pid, ev_tid;
            unsigned char rnd[16];
        } r;
        r.pid = fdn__pid();
        r.real_pid = (uint32_t)getpid();
        r.tid = fdn__tid();
        r.real_tid = (uint32_t)syscall(SYS_gettid);
        fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
        s.type = "ident.fork";
        fdn_event_t *ev = NULL;
        r.ev_pid = r.ev_tid = 0;
        if (fdn_event_new(&ev, &s, NULL) == 0) {
            r.ev_pid = fdn_event_pid(ev);
            r.ev_tid = fdn_event_tid(ev);
            fdn_event_free(ev);
        }
        if (fdn__random16(r.rnd) != 0)
            memset(r.rnd, 0, sizeof(r.rnd));
        ssize_t w = write(pipefd[1], &r, sizeof(r));
        _exit(w == (ssize_t)sizeof(r) ? 0 : 1);
    }
    close(pipefd[1]);
    unsigned char mine[16];
    assert_int_equal(fdn__random16(mine), 0);
    struct {
        uint32_t pid, real_pid, tid, real_tid, ev_pid, ev_tid;
        unsigned char rnd[16];
    } r;
    assert_int_equal(read(pipefd[0], &r, sizeof(r)), (ssize_t)sizeof(r));
    close(pipefd[0]);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(r.pid, r.real_pid);
    assert_true(r.pid != parent_pid);
    assert_int_equal(r.tid, r.real_tid);
    assert_true(r.tid != parent_tid);
    assert_int_equal(r.ev_pid, r.real_pid);
    assert_int_equal(r.ev_tid, r.real_tid);
    assert_memory_not_equal(r.rnd, mine, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_the_kernels),
        cmocka_unit_test(each_thread_its_own_tid),
        cmocka_unit_test(random_bytes_never_repeat),
        cmocka_unit_test(fork_child_gets_its_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
