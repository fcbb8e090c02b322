/* Unit tests: the monotonic timed-wait helpers (src/core/sync.c). No test sleeps: a timeout
 * is only asserted for deadlines already in the past, and a wake-up by a signal that was
 * sent before the wait could time out (the deadline is far away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>

#include <fdn/error.h>

#include "core/sync.h"

static void deadlines_saturate_and_order(void **state)
{
    (void)state;
    assert_int_equal(fdn__deadline_after_ms(-1), INT64_MAX);
    assert_int_equal(fdn__deadline_after_ms(INT64_MAX), INT64_MAX);
    assert_int_equal(fdn__deadline_after_ms(INT64_MAX / 1000), INT64_MAX);
    int64_t a = fdn__mono_now_ns();
    int64_t d0 = fdn__deadline_after_ms(0);
    int64_t d1 = fdn__deadline_after_ms(1000);
    int64_t b = fdn__mono_now_ns();
    assert_true(a <= d0 && d0 <= b);
    assert_true(d1 >= a + 1000000000LL && d1 <= b + 1000000000LL);
}

static void past_deadline_times_out_at_once(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    assert_int_equal(fdn__cond_init_mono(&cv), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, fdn__deadline_after_ms(0)), FDN_ETIMEDOUT);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, 0), FDN_ETIMEDOUT);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, -5), FDN_ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}

typedef struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool flag;
    int64_t deadline;
    int woken_rc;
} shared_t;

static void *waiter(void *arg)
{
    shared_t *s = arg;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (!s->flag && rc == 0)
        rc = fdn__cond_wait_until(&s->cv, &s->mu, s->deadline);
    s->woken_rc = s->flag ? 0 : rc;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The waiter sees the flag whichever thread runs first: set under the mutex and signalled,
 * it is either seen before waiting or wakes the wait. Checked with a far deadline and with
 * no deadline at all. */
static void signal_wakes_before_the_deadline(void **state)
{
    (void)state;
    int64_t deadlines[] = {fdn__deadline_after_ms(3600 * 1000), INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        shared_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .deadline = deadlines[i], .woken_rc = -1};
        assert_int_equal(fdn__cond_init_mono(&s.cv), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, waiter, &s), 0);
        pthread_mutex_lock(&s.mu);
        s.flag = true;
        pthread_cond_signal(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(t, NULL);
        assert_int_equal(s.woken_rc, 0);
        pthread_cond_destroy(&s.cv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadlines_saturate_and_order),
        cmocka_unit_test(past_deadline_times_out_at_once),
        cmocka_unit_test(signal_wakes_before_the_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
