/*
 * DESIGN: the injectable clock.
 *
 * The system clock reads CLOCK_MONOTONIC / CLOCK_REALTIME. A manual clock holds both times
 * in atomics (readers take no lock) and a mutex + condition variable for waiters.
 * Waiters: fdn_clock_wait_until() sleeps on the clock's condition variable until the
 * monotonic time reaches the deadline or the kick sequence moves. advance/set/kick update
 * under the mutex and broadcast, so no wake-up is lost: a waiter checks the time and the
 * kick sequence under the same mutex it sleeps on.
 * The system clock's waiters use a CLOCK_MONOTONIC timed wait on one process-wide
 * condition variable; kicks there are rare (shutdown, new timed work), so the shared
 * condition variable costs nothing on hot paths.
 * Lock order: the clock mutex is a leaf; nothing else is taken while holding it.
 */
#include <fdn/clock.h>
#include <fdn/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"

struct fdn_clock {
    bool manual;
    _Atomic int64_t mono;
    _Atomic int64_t wall;
    _Atomic uint64_t kick_seq;
    _Atomic int waiters;
    fdn__mutex_t mu;
    pthread_cond_t cv;
};

static fdn_clock_t g_system = {
    .manual = false,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static pthread_once_t g_system_once = PTHREAD_ONCE_INIT;

static void system_init(void)
{
    (void)fdn__cond_init_mono(&g_system.cv);
}

fdn_clock_t *fdn_clock_system(void)
{
    pthread_once(&g_system_once, system_init);
    return &g_system;
}

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fdn_clock_manual_create(fdn_clock_t **out, int64_t mono_ns, int64_t wall_ns)
{
    if (out == NULL)
        return FDN_EINVAL;
    fdn_clock_t *c = fdn__calloc(1, sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    c->manual = true;
    atomic_init(&c->mono, mono_ns);
    atomic_init(&c->wall, wall_ns);
    atomic_init(&c->kick_seq, 0);
    atomic_init(&c->waiters, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    *out = c;
    return 0;
}

void fdn_clock_destroy(fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    fdn__free(c);
}

bool fdn_clock_is_manual(const fdn_clock_t *c)
{
    return c != NULL && c->manual;
}

int64_t fdn_clock_mono_ns(const fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return read_ns(CLOCK_MONOTONIC);
    return atomic_load_explicit(&c->mono, memory_order_acquire);
}

int64_t fdn_clock_wall_ns(const fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return read_ns(CLOCK_REALTIME);
    return atomic_load_explicit(&c->wall, memory_order_acquire);
}

static fdn_clock_t *resolve(fdn_clock_t *c)
{
    return c != NULL ? c : fdn_clock_system();
}

int fdn_clock_advance(fdn_clock_t *c, int64_t delta_ns)
{
    if (c == NULL || !c->manual || delta_ns < 0)
        return FDN_EINVAL;
    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->mono, delta_ns, memory_order_acq_rel);
    atomic_fetch_add_explicit(&c->wall, delta_ns, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
    return 0;
}

int fdn_clock_set_mono(fdn_clock_t *c, int64_t mono_ns)
{
    if (c == NULL || !c->manual)
        return FDN_EINVAL;
    fdn__mutex_lock(&c->mu);
    int64_t now = atomic_load_explicit(&c->mono, memory_order_relaxed);
    if (mono_ns < now) {
        fdn__mutex_unlock(&c->mu);
        return FDN_EINVAL;
    }
    atomic_store_explicit(&c->mono, mono_ns, memory_order_release);
    atomic_fetch_add_explicit(&c->wall, mono_ns - now, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
    return 0;
}

void fdn_clock_kick(fdn_clock_t *c)
{
    c = resolve(c);
    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->kick_seq, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
}

uint64_t fdn_clock_kick_seq(fdn_clock_t *c)
{
    c = resolve(c);
    return atomic_load_explicit(&c->kick_seq, memory_order_acquire);
}

int fdn_clock_waiters(fdn_clock_t *c)
{
    c = resolve(c);
    return atomic_load_explicit(&c->waiters, memory_order_acquire);
}

int fdn_clock_wait_until(fdn_clock_t *c, int64_t deadline_ns, uint64_t *kick_seq)
{
    c = resolve(c);
    uint64_t seen = kick_seq != NULL ? *kick_seq : 0;
    int rc = 0;

    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_acq_rel);
    for (;;) {
        uint64_t seq = atomic_load_explicit(&c->kick_seq, memory_order_acquire);
        if (kick_seq != NULL && seq != seen) {
            *kick_seq = seq;
            rc = FDN_ECANCELED;
            break;
        }
        int64_t now = fdn_clock_mono_ns(c);
        if (now >= deadline_ns)
            break;
        if (c->manual)
            pthread_cond_wait(&c->cv, &c->mu);
        else
            (void)fdn__cond_wait_until(&c->cv, &c->mu, deadline_ns);
    }
    int was = atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_acq_rel);
    FDN_ASSERT(was > 0); /* every waiter counted itself in */
    fdn__mutex_unlock(&c->mu);
    return rc;
}
