/*
 * DESIGN: the monotonic timed-wait helpers, the futex word and the gate (sync.h). Stateless
 * but for each thread's list of the gate passes it is inside (tl_passes, read and written by
 * that thread only): every function works on the caller's objects, so any thread may call any
 * of them. The gate's protocol and its proof are in sync.h; every gate atomic is seq_cst, as
 * the two store-then-load pairs (a pass: count, then confirm gen; a change: bump gen, then
 * read the count; and waiting/count for the wake-up) need a single order to be right.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fdn/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/sync.h"

int fdn__cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

int64_t fdn__mono_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fdn__deadline_after_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return INT64_MAX;
    int64_t now = fdn__mono_now_ns();
    if (timeout_ms > (INT64_MAX - now) / 1000000)
        return INT64_MAX;
    return now + timeout_ms * 1000000;
}

/* A deadline (CLOCK_MONOTONIC ns, >= 0) as the timespec of an absolute timed wait. */
static struct timespec mono_ts(int64_t deadline_ns)
{
    return (struct timespec){.tv_sec = (time_t)(deadline_ns / 1000000000),
                             .tv_nsec = (long)(deadline_ns % 1000000000)};
}

int fdn__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        pthread_cond_wait(cv, mu);
        return 0;
    }
    if (deadline_ns <= fdn__mono_now_ns())
        return FDN_ETIMEDOUT;
    struct timespec ts = mono_ts(deadline_ns);
    return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT ? FDN_ETIMEDOUT : 0;
}

void fdn__word_wait(_Atomic uint32_t *word, uint32_t seen)
{
    /* the kernel compares *word with seen atomically with going to sleep: a change made
     * before the call returns at once (EAGAIN); EINTR and spurious returns are the
     * caller's loop's business */
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

int fdn__word_wait_until(_Atomic uint32_t *word, uint32_t seen, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        fdn__word_wait(word, seen);
        return 0;
    }
    if (deadline_ns <= fdn__mono_now_ns())
        return FDN_ETIMEDOUT;
    /* FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC (FUTEX_WAIT a relative
     * one): a spurious return re-waits against the same deadline */
    struct timespec ts = mono_ts(deadline_ns);
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, seen, &ts, NULL,
                FUTEX_BITSET_MATCH_ANY) != 0 &&
        errno == ETIMEDOUT)
        return FDN_ETIMEDOUT;
    return 0;
}

void fdn__word_wake_all(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void fdn__word_wait_bits(_Atomic uint32_t *word, uint32_t seen, uint32_t bits)
{
    /* no timeout (NULL); bits != 0 (the kernel refuses 0 with EINVAL: the caller's loop
     * would spin) */
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, seen, NULL, NULL,
                  bits != 0 ? bits : FDN__WORD_ALL_BITS);
}

void fdn__word_wake_bits(_Atomic uint32_t *word, uint32_t bits)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL,
                  bits != 0 ? bits : FDN__WORD_ALL_BITS);
}

bool fdn__cond_nap(pthread_cond_t *cv, pthread_mutex_t *mu, const bool *stop, int64_t ms)
{
    int64_t dl = fdn__deadline_after_ms(ms);
    fdn__mutex_lock(mu);
    while (!*stop) {
        if (fdn__cond_wait_until(cv, mu, dl) != 0)
            break;
    }
    bool s = *stop;
    fdn__mutex_unlock(mu);
    return s;
}

void fdn__cond_raise(pthread_cond_t *cv, pthread_mutex_t *mu, bool *flag)
{
    fdn__mutex_lock(mu);
    *flag = true;
    pthread_cond_broadcast(cv);
    fdn__mutex_unlock(mu);
}

/* ---- the gate ---- */

/* initial-exec: a pass reads and writes it twice (core/alloc.h: FDN_TLS_IE) */
static _Thread_local fdn__gate_pass_t *tl_passes FDN_TLS_IE;

void fdn__gate_init(fdn__gate_t *g)
{
    atomic_init(&g->gen, 0);
    atomic_init(&g->users[0], 0);
    atomic_init(&g->users[1], 0);
    atomic_init(&g->waiting, 0);
    atomic_init(&g->changing, 0);
}

static void gate_uncount(fdn__gate_t *g, uint32_t par)
{
    if (atomic_fetch_sub_explicit(&g->users[par], 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&g->waiting, memory_order_seq_cst) != 0)
        fdn__word_wake_all(&g->users[par]);
}

void fdn__gate_enter(fdn__gate_t *g, fdn__gate_pass_t *p)
{
    for (;;) {
        uint32_t gen = atomic_load_explicit(&g->gen, memory_order_seq_cst);
        uint32_t par = gen & 1u;
        atomic_fetch_add_explicit(&g->users[par], 1, memory_order_seq_cst);
        if (atomic_load_explicit(&g->gen, memory_order_seq_cst) == gen) {
            p->par = par;
            break;
        }
        gate_uncount(g, par); /* a change came between: count under its gen */
    }
    p->gate = g;
    p->prev = tl_passes;
    tl_passes = p;
}

void fdn__gate_leave(fdn__gate_pass_t *p)
{
    fdn__gate_pass_t **at = &tl_passes;
    while (*at != NULL && *at != p)
        at = &(*at)->prev;
    FDN_ASSERT(*at == p && "a gate pass is left on the thread that entered it");
    if (*at == p)
        *at = p->prev;
    gate_uncount(p->gate, p->par);
}

int fdn__gate_change_begin(fdn__gate_t *g)
{
    for (const fdn__gate_pass_t *p = tl_passes; p != NULL; p = p->prev)
        if (p->gate == g)
            return FDN_EBUSY;
    uint32_t zero = 0;
    while (!atomic_compare_exchange_strong_explicit(&g->changing, &zero, 1, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
        fdn__word_wait(&g->changing, 1);
        zero = 0;
    }
    return 0;
}

void fdn__gate_change_end(fdn__gate_t *g)
{
    uint32_t old = atomic_fetch_add_explicit(&g->gen, 1, memory_order_seq_cst) & 1u;
    atomic_store_explicit(&g->waiting, 1, memory_order_seq_cst);
    uint32_t u;
    while ((u = atomic_load_explicit(&g->users[old], memory_order_seq_cst)) != 0)
        fdn__word_wait(&g->users[old], u);
    atomic_store_explicit(&g->waiting, 0, memory_order_seq_cst);
    atomic_store_explicit(&g->changing, 0, memory_order_seq_cst);
    fdn__word_wake_all(&g->changing);
}
