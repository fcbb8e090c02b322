/* liburcu-bp helpers for the lock-free readers of the library (the service registry, the
 * limiter's rule table): read-side sections, retiring an object after a grace period, and the
 * fork handlers liburcu-bp needs.
 *
 * ThreadSanitizer cannot see a grace period (core/tsan.h): a reader releases one shared sync
 * object as it leaves its read-side section, a writer releases it before retiring, and the
 * retire callback acquires it first thing (fdn__rcu_retired). Other builds compile the
 * annotations to nothing.
 *
 * Threads: every function may be called from any thread; fdn__rcu_barrier must not be called
 * inside a read-side section or a retire callback. */
#ifndef FDN_CORE_RCU_H
#define FDN_CORE_RCU_H

#include <stdatomic.h>

#include <urcu/urcu-bp.h>

#include "core/tsan.h"

extern char fdn__rcu_tsan_sync;
extern char fdn__rcu_tsan_done; /* retire callbacks -> a barrier's return (TSan only) */

/* Retirements whose callbacks have not finished yet, process-wide: fdn__rcu_retire counts one,
 * fdn__rcu_done (the last statement of every retire callback) discounts it. fdn__rcu_barrier
 * returns at once when none is pending: a liburcu barrier costs a grace period and a round of
 * the call_rcu thread (which naps 10 ms after each wake-up) even with nothing to wait for, and
 * every destroy of a registry, limiter, config or telemetry waits on one. */
extern _Atomic long fdn__rcu_pending;

/* Register liburcu-bp's fork handlers (once per process; cheap after the first call). Call it
 * before the first fdn__rcu_retire of an object type, e.g. when its owner is created. */
void fdn__rcu_setup(void);

static inline void fdn__rcu_read_begin(void)
{
    urcu_bp_read_lock();
}

static inline void fdn__rcu_read_end(void)
{
    fdn__tsan_release(&fdn__rcu_tsan_sync);
    urcu_bp_read_unlock();
}

/* Call cb(head) after every read-side section that may still see the object has ended. */
static inline void fdn__rcu_retire(struct rcu_head *head, void (*cb)(struct rcu_head *))
{
    atomic_fetch_add_explicit(&fdn__rcu_pending, 1, memory_order_relaxed);
    fdn__tsan_release(&fdn__rcu_tsan_sync);
    urcu_bp_call_rcu(head, cb);
}

/* First statement of a retire callback. */
static inline void fdn__rcu_retired(void)
{
    fdn__tsan_acquire(&fdn__rcu_tsan_sync);
}

/* Last statement of a retire callback: nothing after it may touch memory that a barrier
 * protects (the callback's work happens before a barrier that sees the count drop). */
static inline void fdn__rcu_done(void)
{
    fdn__tsan_release(&fdn__rcu_tsan_done);
    atomic_fetch_sub_explicit(&fdn__rcu_pending, 1, memory_order_release);
}

/* Wait until every callback retired so far (by this thread, or by one it synchronised with)
 * has run. */
static inline void fdn__rcu_barrier(void)
{
    if (atomic_load_explicit(&fdn__rcu_pending, memory_order_acquire) != 0) {
        urcu_bp_barrier();
        /* liburcu's barrier is invisible to TSan: the callbacks it waited for happen before */
        fdn__tsan_acquire(&fdn__rcu_tsan_done);
    }
}

#endif
