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
