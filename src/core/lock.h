/* Locks that clang's thread-safety analysis (-Wthread-safety) can follow, and the annotation
 * macros. Every macro is empty for compilers other than clang, and the lock functions are
 * static inline calls of the pthread functions: no cost and no behaviour of their own.
 *
 * pthread_mutex_t and pthread_rwlock_t are not capability types, so the analysis cannot see
 * them. fdn__mutex_t and fdn__rwlock_t are the same types under a capability typedef: they are
 * initialised, destroyed and waited on (pthread_cond_wait, fdn__cond_wait_until) exactly as
 * before, but taken and released through fdn__mutex_lock/unlock, fdn__rwlock_rdlock/wrlock
 * and their unlocks, which tell the analysis what they do. A function that needs a lock held
 * says so with FDN_REQUIRES(obj->mu) (FDN_REQUIRES_SHARED for a read lock); the analysis then
 * checks every caller, and checks that each function releases what it takes on every path.
 *
 * Struct members: clang's C front end resolves a guarded_by(mu) naming a sibling member only
 * from clang 19 on, and even there it does not bind it to the accessed object (`s->count`
 * asks for a free `mu`, never `s->mu`: measured with clang 19.1). So FDN_GUARDED_BY and
 * FDN_PT_GUARDED_BY are for file-scope variables guarded by a file-scope lock, which C clang
 * does check, and FDN_MEMBER_GUARDED_BY(mu) marks a struct member's lock for the reader and
 * for grep: it expands to nothing until the compiler can check it.
 *
 * FDN_ASSERT_HELD(m): in FDN_ASSERT builds, aborts when nobody holds m (a trylock succeeds;
 * it cannot tell which thread holds it). Use it at the top of FDN_REQUIRES functions reached
 * through paths the analysis does not see (callbacks, function pointers).
 * Threads: any.
 */
#ifndef FDN_CORE_LOCK_H
#define FDN_CORE_LOCK_H

#include <pthread.h>
#include <stdbool.h>

#include "core/assert.h"

#if defined(__clang__)
#define FDN__TSA(x) __attribute__((x))
#else
#define FDN__TSA(x)
#endif

#define FDN_CAPABILITY(name)          FDN__TSA(capability(name))
#define FDN_GUARDED_BY(m)             FDN__TSA(guarded_by(m))
#define FDN_PT_GUARDED_BY(m)          FDN__TSA(pt_guarded_by(m))
#define FDN_MEMBER_GUARDED_BY(m)      /* checked once C clang binds members: see above */
#define FDN_REQUIRES(...)             FDN__TSA(requires_capability(__VA_ARGS__))
#define FDN_REQUIRES_SHARED(...)      FDN__TSA(requires_shared_capability(__VA_ARGS__))
#define FDN_ACQUIRE(...)              FDN__TSA(acquire_capability(__VA_ARGS__))
#define FDN_ACQUIRE_SHARED(...)       FDN__TSA(acquire_shared_capability(__VA_ARGS__))
#define FDN_RELEASE(...)              FDN__TSA(release_capability(__VA_ARGS__))
#define FDN_RELEASE_SHARED(...)       FDN__TSA(release_shared_capability(__VA_ARGS__))
#define FDN_TRY_ACQUIRE(...)          FDN__TSA(try_acquire_capability(__VA_ARGS__))
#define FDN_EXCLUDES(...)             FDN__TSA(locks_excluded(__VA_ARGS__))
#define FDN_NO_THREAD_SAFETY_ANALYSIS FDN__TSA(no_thread_safety_analysis)

typedef pthread_mutex_t FDN_CAPABILITY("mutex") fdn__mutex_t;
typedef pthread_rwlock_t FDN_CAPABILITY("rwlock") fdn__rwlock_t;

static inline void fdn__mutex_lock(fdn__mutex_t *m) FDN_ACQUIRE(*m);
static inline void fdn__mutex_unlock(fdn__mutex_t *m) FDN_RELEASE(*m);
static inline bool fdn__mutex_trylock(fdn__mutex_t *m) FDN_TRY_ACQUIRE(true, *m);
static inline void fdn__rwlock_rdlock(fdn__rwlock_t *l) FDN_ACQUIRE_SHARED(*l);
static inline void fdn__rwlock_rdunlock(fdn__rwlock_t *l) FDN_RELEASE_SHARED(*l);
static inline void fdn__rwlock_wrlock(fdn__rwlock_t *l) FDN_ACQUIRE(*l);
static inline void fdn__rwlock_wrunlock(fdn__rwlock_t *l) FDN_RELEASE(*l);

/* The bodies are where the analysis is told, not checked. */
static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__mutex_lock(fdn__mutex_t *m)
{
    pthread_mutex_lock(m);
}

static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__mutex_unlock(fdn__mutex_t *m)
{
    pthread_mutex_unlock(m);
}

/* true: m taken (the caller releases it); false: someone holds it, nothing done. */
static inline FDN_NO_THREAD_SAFETY_ANALYSIS bool fdn__mutex_trylock(fdn__mutex_t *m)
{
    return pthread_mutex_trylock(m) == 0;
}

static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__rwlock_rdlock(fdn__rwlock_t *l)
{
    pthread_rwlock_rdlock(l);
}

static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__rwlock_rdunlock(fdn__rwlock_t *l)
{
    pthread_rwlock_unlock(l);
}

static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__rwlock_wrlock(fdn__rwlock_t *l)
{
    pthread_rwlock_wrlock(l);
}

static inline FDN_NO_THREAD_SAFETY_ANALYSIS void fdn__rwlock_wrunlock(fdn__rwlock_t *l)
{
    pthread_rwlock_unlock(l);
}

#if FDN_ASSERT_ENABLED
/* 1 when m is free (the trylock took it; released again at once), 0 when someone holds it. */
static inline FDN_NO_THREAD_SAFETY_ANALYSIS int fdn__mutex_is_free(fdn__mutex_t *m)
{
    if (pthread_mutex_trylock(m) != 0)
        return 0;
    pthread_mutex_unlock(m);
    return 1;
}
#define FDN_ASSERT_HELD(m) FDN_ASSERT(!fdn__mutex_is_free(m))
#else
#define FDN_ASSERT_HELD(m) ((void)sizeof(m))
#endif

#endif
