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
/* fdn__word_wait bounded by deadline_ns (CLOCK_MONOTONIC; INT64_MAX: none). Returns
 * FDN_ETIMEDOUT once the deadline has passed, else 0 (the word changed, a wake-up, or a
 * spurious return: re-check). */
int fdn__word_wait_until(_Atomic uint32_t *word, uint32_t seen, int64_t deadline_ns);
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

/* A gate: a setting (a pointer or a few, kept by the caller in its own atomics) that readers
 * use for a while after reading it, and that a change may free as soon as the change
 * returns. A reader wraps each use in a pass (fdn__gate_enter .. fdn__gate_leave) and reads
 * the setting inside it; a change (fdn__gate_change_begin, store the new setting,
 * fdn__gate_change_end) returns only once every pass that may have read the old setting has
 * left. Readers never block or take a lock: a pass is two atomic read-modify-writes on
 * entering (one more when it races a change) and one on leaving, plus a futex wake when it is
 * the last pass a waiting change waits for. Changes are serialised among themselves.
 *
 * How: passes count themselves in users[gen & 1] and confirm gen after counting (else count
 * again under the new one); a change publishes the new setting, bumps gen, and waits until
 * users[old parity] is 0. A pass that confirmed the new gen reads the new setting (published
 * before the bump); a pass that confirmed the old one is counted where the change looks. With
 * changes one at a time, the passes of the generation before the old one were drained by the
 * previous change, so one parity bit is enough. A pass that stalled between reading gen and
 * counting (across any number of changes, even a wrap of gen) is no exception: it is
 * confirmed only if gen, read after counting, still equals what it counted under, so it is
 * counted in the parity of the gen in force then, where the next change looks.
 *
 * A change made on a thread that is inside a pass of the same gate would wait for itself:
 * fdn__gate_change_begin refuses it (FDN_EBUSY). Each thread keeps its passes in a
 * thread-local list for that check, so a pass must stay where it was entered (no copies)
 * until it leaves. A change made while another thread's pass waits for this thread still
 * deadlocks: the caller's rule (setters say it in their documentation).
 * Threads: any. A gate is plain atomics: all zero (fdn__gate_init or a zeroed allocation)
 * is a gate with no pass and no change; it needs no destroy.
 * Not async-signal-safe (a change waits; the pass list is plain thread-local memory). Fork:
 * the child keeps the counts of the parent's other threads' passes (and a change under way
 * there), which never leave: a change in the child waits for ever, as a mutex held by another
 * thread at the fork would. A child uses the gate's owner only if no other thread could be in
 * a pass or a change at the fork (or it execs). */
typedef struct fdn__gate {
    _Atomic uint32_t gen;      /* changes so far */
    _Atomic uint32_t users[2]; /* passes in progress, by the parity of the gen they entered in */
    _Atomic uint32_t waiting;  /* 1 while a change waits for the old parity's passes */
    _Atomic uint32_t changing; /* 1 while a change is under way: changes are serialised */
} fdn__gate_t;

typedef struct fdn__gate_pass {
    fdn__gate_t *gate;
    uint32_t par;                /* the users[] slot it counts in */
    struct fdn__gate_pass *prev; /* the thread's enclosing pass (any gate) */
} fdn__gate_pass_t;

void fdn__gate_init(fdn__gate_t *g);
/* Enter a pass of g (p: the caller's, on its stack, until fdn__gate_leave). Never blocks. */
void fdn__gate_enter(fdn__gate_t *g, fdn__gate_pass_t *p);
/* Leave the pass p (entered by this thread). */
void fdn__gate_leave(fdn__gate_pass_t *p);
/* Start a change of g's setting: 0 (store the new setting, then fdn__gate_change_end), or
 * FDN_EBUSY when this thread is inside a pass of g (the change would wait for itself);
 * waits for a change already under way on another thread. */
int fdn__gate_change_begin(fdn__gate_t *g);
/* End the change: return once every pass that may have read the setting the change
 * replaced has left. */
void fdn__gate_change_end(fdn__gate_t *g);

#endif
