/* Private interface of the pool manager for the runtime's supervisor. */
#ifndef FDN_INFRA_POOL_INT_H
#define FDN_INFRA_POOL_INT_H

#include "core/supervisor_int.h"

#include <fdn/pool.h>

#include <stdatomic.h>
#include <stdbool.h>

/* Shared between pool.c and pool_manager.c: 0 when size/max_overflow/strategy form a valid
 * pool (size >= 0, max_overflow >= 0, not both 0, lifo or fifo), else FDN_EINVAL. */
int fdn__pool_check_sizes(int size, int max_overflow, fdn_pool_strategy_t s);

/* Read a caller's options of any known version into *out, the current version, with the
 * fields that version lacks at their defaults (FDN_POOL_OPTS_INIT): only the caller's version's
 * fields are read. Shared by fdn_pool_create and fdn_pools_start. Returns 0, or FDN_EINVAL for
 * an unknown version (message in err). opts must not be NULL. */
int fdn__pool_opts_read(fdn_pool_opts_t *out, const fdn_pool_opts_t *opts, fdn_error_t *err);

/* A manager marks a pool retired (under its mutex) before it removes it from its table, so
 * a pool found not retired is still the manager's pool under its name. */
void fdn__pool_retire(fdn_pool_t *p);
bool fdn__pool_retired(const fdn_pool_t *p);

/*
 * fdn_pools_get for a caller that asks for the same name again and again (a protection
 * entry). *cache (NULL-initialised, used with that one name and manager only) holds a pool
 * reference of its own: while that pool is not retired it is returned at once, with no lock
 * and no new reference (*owned = false: do not release it; it stays valid while the cache
 * does). Otherwise the name is looked up as fdn_pools_get does (*owned = true: release it),
 * and an empty cache is filled. A cached pool is never replaced (another thread may be using
 * it), so after a restart under the same name the lookup is simply not cached until the
 * holder replaces the whole cache once no caller can be using it (fdn__pools_cache_stale says
 * when: protect.c then swaps in a new entry, and the old one's last reference drops the
 * retired pool with fdn__pools_cache_drop). Returns as fdn_pools_get. Thread-safe.
 */
typedef _Atomic(fdn_pool_t *) fdn__pool_cache_t;
int fdn__pools_get_cached(fdn_pools_t *m, const char *name, fdn__pool_cache_t *cache,
                          fdn_pool_t **out, bool *owned);

/* Does the cache hold a retired pool (one fdn__pools_get_cached no longer returns)? For a
 * caller that holds the cache alive; only worth asking when that call did not return the
 * cached pool (*owned true, or an error). */
static inline bool fdn__pools_cache_stale(fdn__pool_cache_t *cache)
{
    fdn_pool_t *c = atomic_load_explicit(cache, memory_order_acquire);
    return c != NULL && fdn__pool_retired(c);
}
void fdn__pools_cache_drop(fdn__pool_cache_t *cache);

/* fdn_pool_checkout for a caller that has just read the time: mono_ns (monotonic ns read
 * from `clock`; INT64_MIN: none) becomes the lease's start when the pool runs on the same time
 * source (the system clock), saving the pool its own clock read; otherwise the pool reads its
 * clock as fdn_pool_checkout does. Returns as fdn_pool_checkout. */
int fdn__pool_checkout_at(fdn_pool_t *p, fdn_pool_worker_t **out, int64_t timeout_ms,
                          const fdn_clock_t *clock, int64_t mono_ns, fdn_error_t *err);

/* The calling thread's number for the pools' thread caches (0 before its first checkin or
 * checkout of a pool with thread caches): the smallest number no other live thread holds when
 * it was taken, given back when the thread exits. For tests. */
uint32_t fdn__pool_thread_no(void);

/* The pool manager's supervisor vtable, defined in pool_manager.c, and typed wrappers (see
 * core/supervisor_int.h): start resumes serving calls (pools and their workers survive a
 * stop); while stopped every fdn_pools_* call returns FDN_EUNAVAILABLE at once, pools
 * already held by callers keep working; health is 0 when started, FDN_EUNAVAILABLE when
 * stopped. */
FDN__SERVICE_TYPED_OPS(pools, fdn_pools_t)

#endif
