/* Unit tests: the system clock's TSC path (src/core/clock.c) against clock_gettime.
 *
 * Every comparison brackets the read being checked between two clock_gettime calls, so a
 * preemption anywhere only widens the bracket: the checks cannot fail because the machine is
 * loaded, only because the clock is wrong by more than FDN__CLOCK_TSC_ERROR_NS. On a machine
 * where the TSC is not used the same checks run against clock_gettime itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <fdn/clock.h>

#include "core/clock_int.h"

static int64_t ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads for at least `ms` of CLOCK_MONOTONIC and at least `reads` reads. */
static void agrees_for(int64_t ms, long reads)
{
    const int64_t tol = FDN__CLOCK_TSC_ERROR_NS;
    int64_t start = ns_of(CLOCK_MONOTONIC), prev = INT64_MIN;
    for (long n = 0; n < reads || ns_of(CLOCK_MONOTONIC) - start < ms * 1000000; n++) {
        int64_t a = ns_of(CLOCK_MONOTONIC);
        int64_t b = fdn_clock_mono_ns(NULL);
        int64_t c = ns_of(CLOCK_MONOTONIC);
        if (b < a - tol || b > c + tol)
            fail_msg("read %ld: mono %lld not within %lld ns of [%lld, %lld]", n, (long long)b,
                     (long long)tol, (long long)a, (long long)c);
        if (b < prev)
            fail_msg("read %ld: mono went back from %lld to %lld", n, (long long)prev,
                     (long long)b);
        prev = b;
    }
}

static void mono_agrees_with_clock_gettime(void **state)
{
    (void)state;
    uint64_t pieces = fdn__clock_tsc_pieces();
    agrees_for(50, 200000); /* 50 ms: about 50 pieces */
    if (fdn__clock_tsc_active())
        assert_true(fdn__clock_tsc_pieces() >= pieces + 10); /* re-anchored meanwhile */
    else
        assert_int_equal(fdn__clock_tsc_pieces(), 0);
}

/* Reads far apart: each one finds its piece long expired and makes the next. */
static void mono_agrees_across_idle_gaps(void **state)
{
    (void)state;
    const int64_t tol = FDN__CLOCK_TSC_ERROR_NS;
    int64_t prev = INT64_MIN;
    for (int i = 0; i < 20; i++) {
        int64_t until = ns_of(CLOCK_MONOTONIC) + 3000000; /* spin 3 ms without reading it */
        while (ns_of(CLOCK_MONOTONIC) < until)
            ;
        int64_t a = ns_of(CLOCK_MONOTONIC);
        int64_t b = fdn_clock_mono_ns(NULL);
        int64_t c = ns_of(CLOCK_MONOTONIC);
        assert_true(b >= a - tol);
        assert_true(b <= c + tol);
        assert_true(b >= prev);
        prev = b;
    }
}

/* Wall time against CLOCK_REALTIME. A step of the system's clock during the test (an NTP
 * step) shows within FDN__CLOCK_WALL_LAG_NS: a read that disagrees is retried until that much
 * CLOCK_MONOTONIC time has passed, and only then fails. */
static void wall_agrees_with_clock_gettime(void **state)
{
    (void)state;
    const int64_t tol = FDN__CLOCK_TSC_ERROR_NS;
    int64_t start = ns_of(CLOCK_MONOTONIC);
    for (long n = 0; n < 100000 || ns_of(CLOCK_MONOTONIC) - start < 20000000; n++) {
        int64_t first_miss = 0;
        for (;;) {
            int64_t a = ns_of(CLOCK_REALTIME);
            int64_t b = fdn_clock_wall_ns(NULL);
            int64_t c = ns_of(CLOCK_REALTIME);
            if (b >= a - tol && b <= c + tol)
                break;
            int64_t now = ns_of(CLOCK_MONOTONIC);
            if (first_miss == 0)
                first_miss = now;
            else if (now - first_miss > 2 * FDN__CLOCK_WALL_LAG_NS + tol)
                fail_msg("read %ld: wall %lld not within %lld ns of [%lld, %lld]", n, (long long)b,
                         (long long)tol, (long long)a, (long long)c);
        }
    }
}

/* Two threads: each read must not be below the largest value any thread had read before it
 * started (published through an atomic, so "before" is a real happens-before). Reads of one
 * thread never go back; across threads a TSC read may run a few cycles early, so the check
 * allows the cross-thread bound the header documents. */
typedef struct race {
    _Atomic int64_t max_seen;
    _Atomic int failures;
    _Atomic int64_t worst;
} race_t;

static void *reader(void *p)
{
    race_t *r = p;
    int64_t mine = INT64_MIN, start = ns_of(CLOCK_MONOTONIC);
    for (long n = 0; n < 200000 || ns_of(CLOCK_MONOTONIC) - start < 30000000; n++) {
        int64_t seen = atomic_load_explicit(&r->max_seen, memory_order_acquire);
        int64_t t = fdn_clock_mono_ns(NULL);
        if (t < mine)
            atomic_fetch_add(&r->failures, 1); /* this thread's own reads: never back */
        if (seen - t > atomic_load(&r->worst))
            atomic_store(&r->worst, seen - t);
        mine = t;
        int64_t cur = atomic_load_explicit(&r->max_seen, memory_order_relaxed);
        while (cur < t && !atomic_compare_exchange_weak_explicit(
                              &r->max_seen, &cur, t, memory_order_release, memory_order_relaxed))
            ;
    }
    return NULL;
}

static void reads_never_go_back(void **state)
{
    (void)state;
    race_t r;
    atomic_init(&r.max_seen, 0); /* monotonic times are positive */
    atomic_init(&r.failures, 0);
    atomic_init(&r.worst, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.failures), 0);
    print_message("worst cross-thread step back: %lld ns\n", (long long)atomic_load(&r.worst));
    assert_true(atomic_load(&r.worst) <= FDN__CLOCK_CROSS_THREAD_NS);
}

/* A deadline on the system clock is a CLOCK_MONOTONIC deadline: the wait ends after it. */
static void wait_until_matches_clock_monotonic(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        int64_t deadline = fdn_clock_mono_ns(NULL) + 2000000;
        assert_int_equal(fdn_clock_wait_until(NULL, deadline, NULL), 0);
        assert_true(fdn_clock_mono_ns(NULL) >= deadline);
        assert_true(ns_of(CLOCK_MONOTONIC) >= deadline - FDN__CLOCK_TSC_ERROR_NS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mono_agrees_with_clock_gettime),
        cmocka_unit_test(mono_agrees_across_idle_gaps),
        cmocka_unit_test(wall_agrees_with_clock_gettime),
        cmocka_unit_test(reads_never_go_back),
        cmocka_unit_test(wait_until_matches_clock_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
