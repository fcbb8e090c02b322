/* The SIGPIPE guard (core/sigpipe.h): a write to a pipe whose reader is gone fails with EPIPE
 * inside the guard, the process lives on, and nothing is left pending or blocked after. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/sigpipe.h"

static bool pipe_pending(void)
{
    sigset_t p;
    assert_int_equal(sigpending(&p), 0);
    return sigismember(&p, SIGPIPE) == 1;
}

static bool pipe_blocked(void)
{
    sigset_t m;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &m), 0);
    return sigismember(&m, SIGPIPE) == 1;
}

/* Write to a pipe with no reader: EPIPE, and SIGPIPE raised for this thread. */
static int broken_write(void)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    close(fd[0]);
    errno = 0;
    ssize_t n = write(fd[1], "x", 1);
    int e = errno;
    close(fd[1]);
    assert_int_equal(n, -1);
    return e;
}

static void the_signal_is_taken_and_the_mask_restored(void **state)
{
    (void)state;
    assert_false(pipe_blocked());
    fdn__sigpipe_guard_t g;
    for (int i = 0; i < 3; i++) { /* the default action would end this test at once */
        fdn__sigpipe_block(&g);
        assert_true(pipe_blocked());
        assert_int_equal(broken_write(), EPIPE);
        assert_true(pipe_pending());
        fdn__sigpipe_restore(&g);
        assert_false(pipe_pending());
        assert_false(pipe_blocked());
    }
}

/* A caller that blocks SIGPIPE itself keeps its mask and its pending signal. */
static void a_caller_blocked_signal_is_left_alone(void **state)
{
    (void)state;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    fdn__sigpipe_guard_t g;
    fdn__sigpipe_block(&g);
    assert_int_equal(broken_write(), EPIPE);
    fdn__sigpipe_restore(&g);
    assert_true(pipe_blocked());
    assert_true(pipe_pending()); /* the caller's to handle */
    int sig = 0;
    assert_int_equal(sigwait(&set, &sig), 0);
    assert_int_equal(sig, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_signal_is_taken_and_the_mask_restored),
        cmocka_unit_test(a_caller_blocked_signal_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
