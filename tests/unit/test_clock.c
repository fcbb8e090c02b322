/* Unit tests: the injectable clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/clock.h>
#include <fdn/error.h>

#include "child.h"

static void manual_clock_moves_only_when_advanced(void **state)
{
    (void)state;
    fdn_clock_t *c = NULL;
    assert_int_equal(fdn_clock_manual_create(&c, 1000, 5000), 0);
    assert_true(fdn_clock_is_manual(c));
    assert_int_equal(fdn_clock_mono_ns(c), 1000);
    assert_int_equal(fdn_clock_wall_ns(c), 5000);
    assert_int_equal(fdn_clock_advance(c, 500), 0);
    assert_int_equal(fdn_clock_mono_ns(c), 1500);
    assert_int_equal(fdn_clock_wall_ns(c), 5500);
    assert_int_equal(fdn_clock_advance(c, -1), FDN_EINVAL);
    assert_int_equal(fdn_clock_set_mono(c, 1400), FDN_EINVAL);
    assert_int_equal(fdn_clock_set_mono(c, 2000), 0);
    assert_int_equal(fdn_clock_wall_ns(c), 6000);
    fdn_clock_destroy(c);
    fdn_clock_destroy(NULL);
}

static void system_clock_is_monotonic(void **state)
{
    (void)state;
    fdn_clock_t *s = fdn_clock_system();
    assert_false(fdn_clock_is_manual(s));
    int64_t a = fdn_clock_mono_ns(s);
    int64_t b = fdn_clock_mono_ns(NULL);
    assert_true(b >= a);
    assert_true(fdn_clock_wall_ns(NULL) > (int64_t)1600000000 * 1000000000);
    assert_int_equal(fdn_clock_advance(s, 1), FDN_EINVAL);
}

typedef struct waiter_arg {
    fdn_clock_t *c;
    int64_t deadline;
    int rc;
    int64_t woke_at;
} waiter_arg_t;

static void *waiter(void *p)
{
    waiter_arg_t *a = p;
    a->rc = fdn_clock_wait_until(a->c, a->deadline, NULL);
    a->woke_at = fdn_clock_mono_ns(a->c);
    return NULL;
}

static void manual_wait_wakes_on_advance_past_deadline(void **state)
{
    (void)state;
    fdn_clock_t *c = NULL;
    assert_int_equal(fdn_clock_manual_create(&c, 0, 0), 0);
    waiter_arg_t a = {c, 100, -99, 0};
    pthread_t t;
    pthread_create(&t, NULL, waiter, &a);
    while (fdn_clock_waiters(c) != 1)
        sched_yield();
    fdn_clock_advance(c, 50); /* not yet */
    fdn_clock_advance(c, 50); /* reaches 100 */
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_true(a.woke_at >= 100);
    fdn_clock_destroy(c);
}

typedef struct kick_arg {
    fdn_clock_t *c;
    uint64_t seq;
    int rc;
} kick_arg_t;

static void *kick_waiter(void *p)
{
    kick_arg_t *a = p;
    a->rc = fdn_clock_wait_until(a->c, INT64_MAX, &a->seq);
    return NULL;
}

static void kick_interrupts_wait(void **state)
{
    (void)state;
    fdn_clock_t *c = NULL;
    assert_int_equal(fdn_clock_manual_create(&c, 0, 0), 0);
    kick_arg_t a = {c, fdn_clock_kick_seq(c), -99};
    pthread_t t;
    pthread_create(&t, NULL, kick_waiter, &a);
    while (fdn_clock_waiters(c) != 1)
        sched_yield();
    fdn_clock_kick(c);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, FDN_ECANCELED);
    assert_int_equal(a.seq, fdn_clock_kick_seq(c));
    fdn_clock_destroy(c);
}

static void system_wait_returns_at_deadline(void **state)
{
    (void)state;
    int64_t now = fdn_clock_mono_ns(NULL);
    assert_int_equal(fdn_clock_wait_until(NULL, now + 1000000, NULL), 0);
    assert_true(fdn_clock_mono_ns(NULL) >= now + 1000000);
}

/* Destroying a manual clock under a waiting thread aborts, saying so (a hang before). */
static void destroy_under_a_waiter_body(void)
{
    fdn_clock_t *c = NULL;
    if (fdn_clock_manual_create(&c, 0, 0) != 0)
        _exit(3);
    kick_arg_t a = {c, fdn_clock_kick_seq(c), -99};
    pthread_t t;
    if (pthread_create(&t, NULL, kick_waiter, &a) != 0)
        _exit(4);
    while (fdn_clock_waiters(c) != 1)
        sched_yield();
    fdn_clock_destroy(c);
    _exit(5); /* not reached */
}

static void destroy_under_a_waiter_aborts(void **state)
{
    (void)state;
    char err[1024];
    int st = test_run_child(destroy_under_a_waiter_body, err, sizeof err);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("child status %#x, stderr: %s", st, err);
    assert_non_null(strstr(err, "fdn_clock_destroy: 1 thread(s) still wait on this manual clock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: it forks, before this process has run a thread (ThreadSanitizer) */
        cmocka_unit_test(destroy_under_a_waiter_aborts),
        cmocka_unit_test(manual_clock_moves_only_when_advanced),
        cmocka_unit_test(system_clock_is_monotonic),
        cmocka_unit_test(manual_wait_wakes_on_advance_past_deadline),
        cmocka_unit_test(kick_interrupts_wait),
        cmocka_unit_test(system_wait_returns_at_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
