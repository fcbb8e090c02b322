/*
 * DESIGN: the monotonic timed-wait helpers and the futex word (sync.h). Stateless: every
 * function works on the caller's objects, so any thread may call any of them.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fdn/error.h>

#include "core/lock.h"
#include "core/sync.h"

int fdn__cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

int64_t fdn__mono_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fdn__deadline_after_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return INT64_MAX;
    int64_t now = fdn__mono_now_ns();
    if (timeout_ms > (INT64_MAX - now) / 1000000)
        return INT64_MAX;
    return now + timeout_ms * 1000000;
}

int fdn__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        pthread_cond_wait(cv, mu);
        return 0;
    }
    if (deadline_ns <= fdn__mono_now_ns())
        return FDN_ETIMEDOUT;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000),
                          .tv_nsec = (long)(deadline_ns % 1000000000)};
    return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT ? FDN_ETIMEDOUT : 0;
}

void fdn__word_wait(_Atomic uint32_t *word, uint32_t seen)
{
    /* the kernel compares *word with seen atomically with going to sleep: a change made
     * before the call returns at once (EAGAIN); EINTR and spurious returns are the
     * caller's loop's business */
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

void fdn__word_wake_all(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void fdn__word_wait_bits(_Atomic uint32_t *word, uint32_t seen, uint32_t bits)
{
    /* no timeout (NULL); bits != 0 (the kernel refuses 0 with EINVAL: the caller's loop
     * would spin) */
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, seen, NULL, NULL,
                  bits != 0 ? bits : FDN__WORD_ALL_BITS);
}

void fdn__word_wake_bits(_Atomic uint32_t *word, uint32_t bits)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL,
                  bits != 0 ? bits : FDN__WORD_ALL_BITS);
}

bool fdn__cond_nap(pthread_cond_t *cv, pthread_mutex_t *mu, const bool *stop, int64_t ms)
{
    int64_t dl = fdn__deadline_after_ms(ms);
    fdn__mutex_lock(mu);
    while (!*stop) {
        if (fdn__cond_wait_until(cv, mu, dl) != 0)
            break;
    }
    bool s = *stop;
    fdn__mutex_unlock(mu);
    return s;
}

void fdn__cond_raise(pthread_cond_t *cv, pthread_mutex_t *mu, bool *flag)
{
    fdn__mutex_lock(mu);
    *flag = true;
    pthread_cond_broadcast(cv);
    fdn__mutex_unlock(mu);
}
