/**
 * @file clock.h
 * @brief The injectable clock: every component that measures time takes one, so tests
 *        drive time by hand instead of sleeping.
 *
 * Units: all times are int64 nanoseconds. `mono` is a monotonic clock (arbitrary origin),
 * `wall` is nanoseconds since the Unix epoch (UTC).
 *
 * The system clock is CLOCK_MONOTONIC / CLOCK_REALTIME. On x86 with an invariant TSC, while
 * the kernel's clocksource is "tsc", it is read from the CPU's time-stamp counter (about 11 ns
 * instead of clock_gettime's 29 on our VMs), re-anchored to both kernel clocks every
 * millisecond: it agrees with CLOCK_MONOTONIC to within 100 us (a few us in practice), follows
 * a CLOCK_REALTIME step within 1 ms, and never decreases within a thread; across threads a
 * read that happens after another may be lower by at most 1 us (the counter is read without
 * a serialising fence). FDN_CLOCK_TSC=0 in the environment turns the counter off.
 *
 * A manual clock starts at the values given and moves only when fdn_clock_advance() or
 * fdn_clock_set_mono() is called. Code that must wait for a time (a backoff, a deadline) uses
 * fdn_clock_wait_until(), which a manual clock wakes when it is advanced, so tests never
 * sleep.
 *
 * @since 0.1.0
 */
#ifndef FDN_CLOCK_H
#define FDN_CLOCK_H

#include "common.h"

FDN_BEGIN_DECLS

/** Opaque handle: a clock object, used through the fdn_clock_* functions. */
typedef struct fdn_clock fdn_clock_t;

/**
 * The process-wide system clock (CLOCK_MONOTONIC and CLOCK_REALTIME). Passing NULL wherever a
 * clock is expected means the same clock.
 * @return a static clock, never NULL; fdn_clock_destroy ignores it.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API fdn_clock_t *fdn_clock_system(void);

/**
 * Create a manual clock starting at the given times.
 * @param[out] out   the new clock
 * @param[in]  mono_ns  initial monotonic time (ns)
 * @param[in]  wall_ns  initial wall time (ns since the epoch)
 * @return 0 or FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_clock_manual_create(fdn_clock_t **out, int64_t mono_ns, int64_t wall_ns);

/**
 * Destroy a manual clock. No thread may be waiting on it and no component using it may
 * still exist: a thread still waiting on it (fdn_clock_wait_until) makes this print that on
 * stderr and abort the process, in every build.
 * @param[in] c  the clock; NULL and the system clock are ignored
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_clock_destroy(fdn_clock_t *c);

/**
 * Whether a clock is a manual one.
 * @param[in] c  the clock (NULL: the system clock)
 * @return true for a clock made by fdn_clock_manual_create, false otherwise.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_clock_is_manual(const fdn_clock_t *c);

/**
 * Current monotonic time.
 * @param[in] c  the clock (NULL: the system clock)
 * @return monotonic nanoseconds (arbitrary origin, never decreasing within a thread; see the
 *         file's description for reads across threads).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_clock_mono_ns(const fdn_clock_t *c);

/**
 * Current wall-clock time.
 * @param[in] c  the clock (NULL: the system clock)
 * @return nanoseconds since the Unix epoch (UTC).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_clock_wall_ns(const fdn_clock_t *c);

/**
 * Move a manual clock forward by delta_ns (both mono and wall) and wake every waiter.
 * @param[in] c         a manual clock
 * @param[in] delta_ns  how far to move, >= 0
 * @return 0, or FDN_EINVAL for the system clock or a negative delta.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_clock_advance(fdn_clock_t *c, int64_t delta_ns);

/**
 * Set a manual clock's monotonic time (must not go backwards) and wake every waiter.
 * The wall time moves by the same amount.
 * @param[in] c        a manual clock
 * @param[in] mono_ns  the new monotonic time, >= the current one
 * @return 0, or FDN_EINVAL for the system clock or a time in the past.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_clock_set_mono(fdn_clock_t *c, int64_t mono_ns);

/**
 * Block until the clock's monotonic time reaches deadline_ns, or until
 * fdn_clock_kick() is called, whichever comes first. With the system clock this is a
 * timed wait; with a manual clock it returns when an advance reaches the deadline.
 * Spurious returns are allowed: callers re-check their condition.
 * @param[in] c          the clock (NULL: system)
 * @param[in] deadline_ns monotonic deadline; INT64_MAX waits for a kick only
 * @param[in,out] kick_seq the caller's last seen kick sequence number: read it with
 *                        fdn_clock_kick_seq() before checking the condition you wait for
 *                        (0 returns FDN_ECANCELED at once if the clock was ever kicked, as
 *                        the shared system clock usually was); the wait returns at once
 *                        when a kick happened after that value, and stores the new value.
 *                        NULL: ignore kicks.
 * @return 0 when the deadline was reached, FDN_ECANCELED when kicked.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_clock_wait_until(fdn_clock_t *c, int64_t deadline_ns, uint64_t *kick_seq);

/**
 * Wake every thread blocked in fdn_clock_wait_until on this clock (used to deliver
 * shutdown and new work to threads that wait for time).
 * @param[in] c  the clock (NULL: the system clock)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_clock_kick(fdn_clock_t *c);

/**
 * The current kick sequence number. Read it before checking for work, then pass it to
 * fdn_clock_wait_until so a kick that comes in between is not lost.
 * @param[in] c  the clock (NULL: the system clock)
 * @return the number of fdn_clock_kick calls so far.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint64_t fdn_clock_kick_seq(fdn_clock_t *c);

/**
 * Number of threads currently blocked in fdn_clock_wait_until on this clock. Tests use it
 * to know that a background thread is parked before they advance a manual clock.
 * @param[in] c  the clock (NULL: the system clock)
 * @return the number of parked threads (a snapshot).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_clock_waiters(fdn_clock_t *c);

FDN_END_DECLS

#endif /* FDN_CLOCK_H */
