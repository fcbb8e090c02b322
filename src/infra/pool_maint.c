/* Connection pools: maintenance (reap, reclaim, leak reports) and status (see the DESIGN
 * comment in pool.c). */
#include <fdn/pool.h>

#include <execinfo.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/list.h"
#include "core/lock.h"
#include "infra/pool_impl.h"

#include <fdn/telemetry.h>

/* ------------------------------------------------------------------------------------------
 * Maintenance
 * ------------------------------------------------------------------------------------------ */

/* Parked workers (p->mu held; an estimate while parking checkins run). */
static int parked_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    int n = 0;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        uintptr_t v = atomic_load_explicit(&p->cache[i].w, memory_order_relaxed);
        n += v != 0 && (v & PENDING) == 0;
    }
    return n;
}

/* Checkouts from thread caches of the workers that exist (p->mu held; those of destroyed
 * workers are in n_checkouts already). */
static uint64_t fast_checkouts_locked(fdn_pool_t *p) FDN_REQUIRES(p->mu)
{
    uint64_t n = 0;
    const fdn_pool_worker_t *w;
    fdn__list_for_each_entry(w, &p->all, all_link)
    {
        n += atomic_load_explicit(&w->cached_checkouts, memory_order_relaxed);
    }
    return n;
}

typedef struct leak_rec {
    void *conn;
    int64_t age;
    int bt_len;
    void *bt[BT_MAX];
} leak_rec_t;

/* Reclaim the leases held reclaim_after or longer (see "Reclaim" above); their slots go to
 * the oldest waiters, and refill creations are reserved for the rest up to `size`. Returns
 * how many were reclaimed; *kick is set when the clock must be kicked. */
static int reclaim_locked(fdn_pool_t *p, int64_t now, bool *kick, int *refill_n) FDN_REQUIRES(p->mu)
{
    int n = 0;
    fdn_pool_worker_t *w, *next;
    fdn__list_for_each_entry_safe(w, next, &p->all, all_link)
    {
        if (!w->in_use || w->validating || now - co_get(w) < p->reclaim_after_ns)
            continue; /* a checkout validating w decides its fate (see "Reclaim") */
        all_remove(p, w);
        cds_list_add(&w->all_link, &p->reclaimed);
        w->reclaimed = true;
        p->live--;
        p->in_use--;
        p->reclaimed_out++;
        p->n_reclaimed++;
        n++;
        if (p->closed)
            continue;
        if (waiting_locked(p)) {
            p->live++;
            p->in_use++;
            *kick |= grant_oldest(p, GRANT_CREATE, NULL);
        } else if (p->live < p->size) {
            /* reserved here, made by the caller after unlocking */
            p->live++;
            p->creating++;
            (*refill_n)++;
        }
    }
    drain_check_locked(p);
    return n;
}

int fdn_pool_reap(fdn_pool_t *p)
{
    if (p == NULL)
        return FDN_EINVAL;
    leak_rec_t leaks[LEAK_BATCH];
    int nleaks = 0;
    int expired_n = 0;
    int destroyed = 0;
    fdn_pool_worker_t *dropped = NULL;
    int refill_n = 0;
    int reclaimed = 0;
    bool kick = false;

    fdn__mutex_lock(&p->mu);
    int64_t now = now_ns(p);
    fdn_pool_worker_t *w, *n;
    fdn__list_for_each_entry_safe(w, n, &p->idle, link)
    {
        bool drop = false;
        if (now >= w->expires_ns) {
            drop = true;
            expired_n++;
        } else if (p->idle_timeout_ns > 0 && now - w->last_used_ns >= p->idle_timeout_ns) {
            drop = true;
        } else if (p->overflow_ttl_ns > 0 && p->live > p->size &&
                   now - w->last_used_ns >= p->overflow_ttl_ns) {
            drop = true;
        }
        if (drop) {
            idle_drop_locked(p, w, &dropped);
            p->live--;
            p->n_destroyed++;
            destroyed++;
        }
    }
    if (p->leak_threshold_ns > 0) {
        fdn_pool_worker_t *a;
        fdn__list_for_each_entry(a, &p->all, all_link)
        {
            if (nleaks == LEAK_BATCH)
                break;
            if (!a->in_use || a->leak_reported || now - co_get(a) < p->leak_threshold_ns)
                continue;
            a->leak_reported = true;
            p->n_leaks++;
            leak_rec_t *r = &leaks[nleaks++];
            r->conn = a->conn;
            r->age = now - co_get(a);
            r->bt_len = a->bt_len;
            if (a->bt_len > 0)
                memcpy(r->bt, a->bt, (size_t)a->bt_len * sizeof(a->bt[0]));
        }
    }
    if (p->reclaim_after_ns > 0)
        reclaimed = reclaim_locked(p, now, &kick, &refill_n);
    if (!p->closed && expired_n > 0 && p->live < p->size) {
        int more = FDN_MIN(expired_n, p->size - p->live);
        p->live += more;
        p->creating += more;
        refill_n += more;
    }
    fdn__mutex_unlock(&p->mu);

    if (kick)
        fdn_clock_kick(p->clock);
    for (int i = 0; i < reclaimed; i++)
        fdn__pool_tm_event(p, "foundation.connection_pool.reclaimed", NULL, 0);
    fdn__pool_destroy_chain(p, dropped);
    for (int i = 0; i < nleaks; i++) {
        if (p->on_leak == NULL)
            continue;
        char **sym = leaks[i].bt_len > 0 ? backtrace_symbols(leaks[i].bt, leaks[i].bt_len) : NULL;
        fdn_pool_leak_t info = {.pool_name = p->name,
                                .conn = leaks[i].conn,
                                .age_ns = leaks[i].age,
                                .backtrace = sym,
                                .backtrace_len = sym != NULL ? leaks[i].bt_len : 0};
        p->on_leak(&info, p->user);
        free(sym); /* allocated by libc's backtrace_symbols */
    }
    if (refill_n > 0)
        fdn__pool_refill(p, refill_n);
    return destroyed + nleaks + reclaimed;
}

int fdn_pool_status(fdn_pool_t *p, fdn_pool_status_t *out)
{
    if (p == NULL || out == NULL)
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    fdn__mutex_lock(&p->mu);
    FDN_ASSERT(p->in_use >= 0 && p->in_use <= p->live && p->idle_n <= p->live);
    int64_t now = now_ns(p);
    out->size = p->size;
    out->max_overflow = p->max_overflow;
    int parked = p->fast ? parked_locked(p) : 0;
    out->available = p->idle_n + parked;
    out->in_use = p->in_use - parked;
    out->workers = p->live - p->creating;
    out->overflow = FDN_MAX(p->live - p->size, 0);
    out->waiters = p->nwait;
    out->closed = p->closed;
    out->oldest_lease_age_ns = fdn__pool_oldest_lease_age_locked(p, now);
    out->checkouts = p->n_checkouts + (p->fast ? fast_checkouts_locked(p) : 0);
    out->timeouts = p->n_timeouts;
    out->full = p->n_full;
    out->created = p->n_created;
    out->destroyed = p->n_destroyed;
    out->broken = p->n_broken;
    out->create_failures = p->n_create_fail;
    out->leaks = p->n_leaks;
    out->reclaimed = p->n_reclaimed;
    out->reclaimed_out = p->reclaimed_out;
    /* Poolboy's state, from the leases out alone (fdn_pool_state_t): idle workers or
     * workers still to be created do not change it. */
    if (out->in_use >= p->size + p->max_overflow)
        out->state = FDN_POOL_FULL;
    else if (out->in_use >= p->size)
        out->state = FDN_POOL_OVERFLOW;
    else
        out->state = FDN_POOL_READY;
    fdn__mutex_unlock(&p->mu);
    return 0;
}

const char *fdn_pool_name(const fdn_pool_t *p)
{
    return p != NULL ? p->name : "";
}

const char *fdn_pool_strategy_name(fdn_pool_strategy_t s)
{
    switch (s) {
    case FDN_POOL_LIFO:
        return "lifo";
    case FDN_POOL_FIFO:
        return "fifo";
    default:
        return "default";
    }
}

int fdn_pool_strategy_parse(const char *s, size_t len, fdn_pool_strategy_t *out)
{
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    if (len == 4 && memcmp(s, "lifo", 4) == 0) {
        *out = FDN_POOL_LIFO;
        return 0;
    }
    if (len == 4 && memcmp(s, "fifo", 4) == 0) {
        *out = FDN_POOL_FIFO;
        return 0;
    }
    return FDN_EINVAL;
}

const char *fdn_pool_state_name(fdn_pool_state_t s)
{
    switch (s) {
    case FDN_POOL_READY:
        return "ready";
    case FDN_POOL_OVERFLOW:
        return "overflow";
    case FDN_POOL_FULL:
        return "full";
    default:
        return "unknown";
    }
}
