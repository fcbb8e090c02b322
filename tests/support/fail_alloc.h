/* Failing allocator for fault tests: counts every allocation the library makes through the
 * fdn_set_allocator hook and makes a chosen one (or every one from a chosen point) return
 * NULL, so a test can sweep k = 1, 2, ... and fail each allocation point in turn.
 *
 * Counting is 1-based and restarts at every fail_alloc_at / fail_alloc_from call. All state
 * is atomic, so allocations from library threads are counted and failed too.
 *
 * fail_alloc_at / fail_alloc_from count the allocations of every thread: with library threads
 * running (workers, a supervisor, a hook thread) "allocation n" then depends on scheduling.
 * A test that means "the n-th allocation made by this call" arms with the _this_thread
 * variants: only the arming thread's allocations are counted (and can fail); every other
 * thread's pass untouched and uncounted until the next arming. */
#ifndef FDN_TEST_FAIL_ALLOC_H
#define FDN_TEST_FAIL_ALLOC_H

#include <stdbool.h>

/* Installs the failing allocator (initially failing nothing). Returns fdn_set_allocator's
 * result. */
int fail_alloc_install(void);

/* Restores the default allocator. */
void fail_alloc_uninstall(void);

/* Restarts counting and the failure count; allocation number n (1-based, counted from now)
 * fails, and only that one. n <= 0: nothing fails. */
void fail_alloc_at(long n);

/* Restarts counting and the failure count; allocation number n and every later one fail. */
void fail_alloc_from(long n);

/* As fail_alloc_at / fail_alloc_from, counting and failing only the calling thread's
 * allocations (fail_alloc_count, fail_alloc_failures and the hook see only those). */
void fail_alloc_at_this_thread(long n);
void fail_alloc_from_this_thread(long n);

/* The complement: counts and fails only the allocations of threads other than the caller
 * (the library's own threads while the caller drives it). */
void fail_alloc_at_other_threads(long n);

/* Nothing fails from now on; counts are kept (fail_alloc_failures still reports the run). */
void fail_alloc_off(void);

/* Allocations counted since the last fail_alloc_at/fail_alloc_from. */
long fail_alloc_count(void);

/* Allocations failed on purpose since the last fail_alloc_at/fail_alloc_from. */
long fail_alloc_failures(void);

/* Blocks allocated through the hook and not yet freed through it (malloc, and realloc of
 * NULL, add one; free of non-NULL removes one). */
long fail_alloc_live(void);

/* Calls fn(n) with each allocation's number before deciding whether it fails (NULL: none).
 * Lets a test stall a chosen allocation. */
void fail_alloc_set_hook(void (*fn)(long n));

#endif
