/* DESIGN: one failing allocator shared by the fault tests (see fail_alloc.h). Threads: any
 * thread may allocate; every counter is a C11 atomic, no locks. The decision for allocation
 * n is taken from g_fail_at/g_fail_from as loaded at that moment, so arming between test
 * steps (while the library is idle) is exact. Per-thread arming stores the arming thread's
 * token (the address of a thread-local, unique among live threads) in g_owner; allocations
 * of any other thread then skip the counting and never fail (g_except inverts that: only
 * the other threads count). */
#include "fail_alloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <fdn/common.h>

static atomic_long g_count;     /* allocations since arming, 1-based */
static atomic_long g_fail_at;   /* fail exactly this one; 0 = none */
static atomic_long g_fail_from; /* fail this one and later; 0 = none */
static atomic_long g_failures;  /* injected since arming */
static atomic_long g_total;     /* injected over the whole run (reported at exit) */
static atomic_long g_live;
static void (*_Atomic g_hook)(long n);
static atomic_uintptr_t g_owner; /* 0: every thread counts; else the arming thread's token */
static atomic_bool g_except;     /* with g_owner: count every thread but that one */
static _Thread_local char t_token;

static uintptr_t my_token(void)
{
    return (uintptr_t)&t_token;
}

static bool should_fail(void)
{
    uintptr_t owner = atomic_load_explicit(&g_owner, memory_order_acquire);
    if (owner != 0 &&
        (owner == my_token()) == atomic_load_explicit(&g_except, memory_order_acquire))
        return false;
    long n = atomic_fetch_add_explicit(&g_count, 1, memory_order_acq_rel) + 1;
    void (*hook)(long) = atomic_load_explicit(&g_hook, memory_order_acquire);
    if (hook != NULL)
        hook(n);
    long at = atomic_load_explicit(&g_fail_at, memory_order_acquire);
    long from = atomic_load_explicit(&g_fail_from, memory_order_acquire);
    if ((at > 0 && n == at) || (from > 0 && n >= from)) {
        atomic_fetch_add_explicit(&g_failures, 1, memory_order_acq_rel);
        atomic_fetch_add_explicit(&g_total, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

static void *fa_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n);
    if (p != NULL)
        atomic_fetch_add_explicit(&g_live, 1, memory_order_relaxed);
    return p;
}

static void *fa_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    void *q = realloc(p, n);
    if (q != NULL && p == NULL)
        atomic_fetch_add_explicit(&g_live, 1, memory_order_relaxed);
    return q;
}

static void fa_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub_explicit(&g_live, 1, memory_order_relaxed);
    free(p);
}

static const fdn_allocator_t k_failing = {fa_malloc, fa_realloc, fa_free};

static void report(void)
{
    fprintf(stderr, "fail_alloc: %ld allocation failures injected\n",
            atomic_load_explicit(&g_total, memory_order_relaxed));
}

int fail_alloc_install(void)
{
    static atomic_flag reported = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&reported))
        atexit(report);
    return fdn_set_allocator(&k_failing);
}

void fail_alloc_uninstall(void)
{
    fdn_set_allocator(NULL);
}

static void arm(long at, long from, uintptr_t owner, bool except)
{
    atomic_store_explicit(&g_fail_at, 0, memory_order_release);
    atomic_store_explicit(&g_fail_from, 0, memory_order_release);
    atomic_store_explicit(&g_count, 0, memory_order_release);
    atomic_store_explicit(&g_failures, 0, memory_order_release);
    atomic_store_explicit(&g_except, except, memory_order_release);
    atomic_store_explicit(&g_owner, owner, memory_order_release);
    atomic_store_explicit(&g_fail_at, at > 0 ? at : 0, memory_order_release);
    atomic_store_explicit(&g_fail_from, from > 0 ? from : 0, memory_order_release);
}

void fail_alloc_at(long n)
{
    arm(n, 0, 0, false);
}

void fail_alloc_from(long n)
{
    arm(0, n, 0, false);
}

void fail_alloc_at_this_thread(long n)
{
    arm(n, 0, my_token(), false);
}

void fail_alloc_from_this_thread(long n)
{
    arm(0, n, my_token(), false);
}

void fail_alloc_at_other_threads(long n)
{
    arm(n, 0, my_token(), true);
}

void fail_alloc_off(void)
{
    atomic_store_explicit(&g_fail_at, 0, memory_order_release);
    atomic_store_explicit(&g_fail_from, 0, memory_order_release);
}

long fail_alloc_count(void)
{
    return atomic_load_explicit(&g_count, memory_order_acquire);
}

long fail_alloc_failures(void)
{
    return atomic_load_explicit(&g_failures, memory_order_acquire);
}

long fail_alloc_live(void)
{
    return atomic_load_explicit(&g_live, memory_order_acquire);
}

void fail_alloc_set_hook(void (*fn)(long n))
{
    atomic_store_explicit(&g_hook, fn, memory_order_release);
}
