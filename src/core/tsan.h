/* ThreadSanitizer support shared by the liburcu users (registry, config).
 *
 * FDN_TSAN is defined in ThreadSanitizer builds (gcc: __SANITIZE_THREAD__, clang:
 * __has_feature(thread_sanitizer)).
 *
 * TSan cannot see liburcu's grace-period synchronisation (an uninstrumented library using
 * membarrier and fences). A reader "releases" a sync object just before leaving its
 * read-side section and the deferred-free callback "acquires" it: exactly the happens-before
 * edge the grace period guarantees. fdn__tsan_release/acquire add that edge on addr under
 * TSan and compile to nothing in other builds. */
#ifndef FDN_CORE_TSAN_H
#define FDN_CORE_TSAN_H

#include <stdatomic.h>

#if defined(__SANITIZE_THREAD__)
#define FDN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FDN_TSAN 1
#endif
#endif

#ifdef FDN_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

/* Seqlock-style publication (the config latch). Writers: bump the sequence,
 * FDN_SEQ_FENCE(release or seq_cst), then store the data with FDN_SEQ_ST; readers: load the
 * data with FDN_SEQ_LD, FDN_SEQ_FENCE(acquire), then re-check the sequence. ThreadSanitizer
 * does not model stand-alone fences (gcc rejects them under -fsanitize=thread), so its builds
 * put the same ordering on the accesses instead: release stores (ordered after the sequence
 * bump) and acquire loads (ordered before the re-check). Other builds keep the cheaper fences
 * and relaxed accesses. */
#ifdef FDN_TSAN
#define FDN_SEQ_FENCE(mo) ((void)0)
#define FDN_SEQ_ST        memory_order_release
#define FDN_SEQ_LD        memory_order_acquire
#else
#define FDN_SEQ_FENCE(mo) atomic_thread_fence(mo)
#define FDN_SEQ_ST        memory_order_relaxed
#define FDN_SEQ_LD        memory_order_relaxed
#endif

/* A full fence between a store and a later load of other locations (the Dekker pattern of a
 * waiter's flag: store mine, fence, load theirs). gcc rejects atomic_thread_fence under
 * -fsanitize=thread; there a seq_cst read-modify-write of a dummy does instead (on x86 the
 * same locked instruction orders every earlier store before every later load). */
#ifdef FDN_TSAN
static inline void fdn__full_fence(void)
{
    static _Atomic unsigned dummy;
    (void)atomic_fetch_add_explicit(&dummy, 0, memory_order_seq_cst);
}
#else
static inline void fdn__full_fence(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}
#endif

static inline void fdn__tsan_release(void *addr)
{
#ifdef FDN_TSAN
    __tsan_release(addr);
#else
    (void)addr;
#endif
}

static inline void fdn__tsan_acquire(void *addr)
{
#ifdef FDN_TSAN
    __tsan_acquire(addr);
#else
    (void)addr;
#endif
}

#endif
