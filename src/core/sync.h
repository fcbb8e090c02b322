/* Condition variables timed on CLOCK_MONOTONIC, and deadlines on it: the library's one way
 * to wait with a timeout. A monotonic deadline is immune to wall-clock steps (NTP, an admin's
 * `date -s`), which would otherwise stretch or cut every timed wait.
 *
 * Deadlines are absolute CLOCK_MONOTONIC times in nanoseconds; INT64_MAX means "no deadline".
 * Threads: any; the functions keep no state.
 */
#ifndef FDN_CORE_SYNC_H
#define FDN_CORE_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Initialise cv so that its timed waits measure CLOCK_MONOTONIC. 0 or a pthread error. */
int fdn__cond_init_mono(pthread_cond_t *cv);

/* The CLOCK_MONOTONIC time now, in nanoseconds. */
int64_t fdn__mono_now_ns(void);

/* The deadline timeout_ms from now: INT64_MAX when timeout_ms < 0 or when the sum would
 * overflow; now when timeout_ms is 0. */
int64_t fdn__deadline_after_ms(int64_t timeout_ms);

/* Wait on cv (mu held by the caller; cv made by fdn__cond_init_mono) until it is signalled or
 * deadline_ns passes (INT64_MAX: no deadline). Returns 0 when woken (a signal or a spurious
 * wake-up: callers re-check their condition) and FDN_ETIMEDOUT once the deadline has passed. */
int fdn__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns);

/* A word many threads wait on without a mutex (Linux futex, process-private): wait returns
 * when *word no longer holds `seen` (at once if it already does not), when woken, or
 * spuriously, so callers re-check their condition in a loop; wake_all wakes every thread
 * waiting on word. The writer changes the word first and then wakes. */
void fdn__word_wait(_Atomic uint32_t *word, uint32_t seen);
void fdn__word_wake_all(_Atomic uint32_t *word);
/* The same with classes of waiters (a futex bitset): a waiter sleeps with a non-zero mask of
 * bits, and fdn__word_wake_bits wakes only the waiters whose mask shares a bit with `bits`
 * (fdn__word_wait and fdn__word_wake_all: every bit). So a writer can wake only the waiters
 * its change is for, where waking all of them costs a context switch for each woken waiter
 * who then finds nothing for it and sleeps again. */
#define FDN__WORD_ALL_BITS 0xffffffffu
void fdn__word_wait_bits(_Atomic uint32_t *word, uint32_t seen, uint32_t bits);
void fdn__word_wake_bits(_Atomic uint32_t *word, uint32_t bits);
/* Sleep ms on cv (made by fdn__cond_init_mono) unless *stop, read under mu (which the caller
 * does not hold), is or becomes true: a worker thread's pause that a shutdown cuts short (the
 * shutdown sets *stop under mu and broadcasts cv). Returns *stop. */
bool fdn__cond_nap(pthread_cond_t *cv, pthread_mutex_t *mu, const bool *stop, int64_t ms);

/* Set *flag under mu and wake every waiter on cv: the shutdown side of fdn__cond_nap. */
void fdn__cond_raise(pthread_cond_t *cv, pthread_mutex_t *mu, bool *flag);

#endif
