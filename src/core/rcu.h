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

#include <urcu/urcu-bp.h>

#include "core/tsan.h"

extern char fdn__rcu_tsan_sync;

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
    fdn__tsan_release(&fdn__rcu_tsan_sync);
    urcu_bp_call_rcu(head, cb);
}

/* First statement of a retire callback. */
static inline void fdn__rcu_retired(void)
{
    fdn__tsan_acquire(&fdn__rcu_tsan_sync);
}

/* Wait until every callback retired so far has run. */
static inline void fdn__rcu_barrier(void)
{
    urcu_bp_barrier();
}

#endif
