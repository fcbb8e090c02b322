/* Connection pools: create, shutdown and references (see the DESIGN comment in pool.c). */
#include <fdn/pool.h>

#include <execinfo.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
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
 * Create / shutdown / lifetime
 * ------------------------------------------------------------------------------------------ */

/* A pool that failed to be created (never published, so no lock): destroy its idle workers. */
static void destroy_unpublished_idle(fdn_pool_t *p)
{
    fdn_pool_worker_t *w, *n;
    fdn__list_for_each_entry_safe(w, n, &p->idle, link) fdn__pool_worker_destroy(p, w);
    CDS_INIT_LIST_HEAD(&p->idle);
}

static void *reaper_main(void *arg);

int fdn__pool_check_sizes(int size, int max_overflow, fdn_pool_strategy_t s)
{
    if (size < 0 || max_overflow < 0 || (size == 0 && max_overflow == 0))
        return FDN_EINVAL;
    if (size > INT_MAX - max_overflow) /* the capacity size + max_overflow is an int */
        return FDN_EINVAL;
    if (s != FDN_POOL_LIFO && s != FDN_POOL_FIFO)
        return FDN_EINVAL;
    return 0;
}

int fdn__pool_opts_read(fdn_pool_opts_t *out, const fdn_pool_opts_t *opts, fdn_error_t *err)
{
    if (opts->version < 1 || opts->version > FDN_POOL_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "pool: options version %u unknown (1..%d)",
                           (unsigned)opts->version, FDN_POOL_OPTS_VERSION);
    /* the size of each version's struct: fields are only appended */
    size_t n = opts->version == 1 ? offsetof(fdn_pool_opts_t, reclaim_after_ms) : sizeof(*opts);
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    memcpy(&o, opts, n);
    o.version = FDN_POOL_OPTS_VERSION;
    *out = o;
    return 0;
}

int fdn_pool_create(fdn_pool_t **out, const fdn_pool_opts_t *opts_in, fdn_error_t *err)
{
    if (out == NULL || opts_in == NULL)
        return fdn_err_set(err, FDN_EINVAL, "pool: options with a create callback required");
    fdn_pool_opts_t o;
    int vrc = fdn__pool_opts_read(&o, opts_in, err);
    if (vrc != 0)
        return vrc;
    const fdn_pool_opts_t *opts = &o;
    if (opts->create == NULL)
        return fdn_err_set(err, FDN_EINVAL, "pool: options with a create callback required");
    int64_t reclaim_ms = opts->reclaim_after_ms;
    const char *name = opts->name != NULL ? opts->name : "pool";
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= FDN_POOL_NAME_MAX)
        return fdn_err_set(err, FDN_EINVAL, "pool: name must be 1..%d bytes",
                           FDN_POOL_NAME_MAX - 1);
    int size = opts->size == FDN_POOL_DEFAULT ? FDN_POOL_DEFAULT_SIZE : opts->size;
    int ovf =
        opts->max_overflow == FDN_POOL_DEFAULT ? FDN_POOL_DEFAULT_MAX_OVERFLOW : opts->max_overflow;
    fdn_pool_strategy_t strat =
        opts->strategy == FDN_POOL_STRATEGY_DEFAULT ? FDN_POOL_LIFO : opts->strategy;
    if (size < 0)
        return fdn_err_set(err, FDN_EINVAL, "pool %s: size must be a non-negative integer", name);
    if (ovf < 0)
        return fdn_err_set(err, FDN_EINVAL, "pool %s: max_overflow must be a non-negative integer",
                           name);
    if (size > INT_MAX - ovf)
        return fdn_err_set(err, FDN_EINVAL, "pool %s: size + max_overflow must be at most %d", name,
                           INT_MAX);
    if (fdn__pool_check_sizes(size, ovf, strat) != 0)
        return fdn_err_set(err, FDN_EINVAL,
                           "pool %s: size + max_overflow must be > 0 and "
                           "strategy lifo or fifo",
                           name);
    if ((opts->checkout_timeout_ms < 0 && opts->checkout_timeout_ms != FDN_POOL_WAIT_FOREVER) ||
        opts->max_lifetime_ms < 0 || opts->lifetime_jitter_ms < 0 || opts->idle_timeout_ms < 0 ||
        opts->overflow_ttl_ms < 0 || opts->leak_threshold_ms < 0 || opts->reap_interval_ms < 0 ||
        reclaim_ms < 0)
        return fdn_err_set(err, FDN_EINVAL, "pool %s: negative time option", name);

    fdn_pool_t *p = fdn__calloc(1, sizeof(*p));
    if (p == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "pool %s: out of memory", name);
    memcpy(p->name, name, nlen + 1);
    p->size = size;
    p->max_overflow = ovf;
    p->strategy = strat;
    p->checkout_timeout_ns = opts->checkout_timeout_ms == FDN_POOL_WAIT_FOREVER
                                 ? INT64_MAX
                                 : ms_to_ns(opts->checkout_timeout_ms);
    p->create = opts->create;
    p->destroy = opts->destroy;
    p->validate = opts->validate;
    p->reset = opts->reset;
    p->on_leak = opts->on_leak;
    p->user = opts->user;
    p->validate_after_ns =
        opts->validate_after_idle_ms < 0 ? -1 : ms_to_ns(opts->validate_after_idle_ms);
    p->max_lifetime_ns = ms_to_ns(opts->max_lifetime_ms);
    p->jitter_ns = ms_to_ns(opts->lifetime_jitter_ms);
    p->idle_timeout_ns = ms_to_ns(opts->idle_timeout_ms);
    p->overflow_ttl_ns = ms_to_ns(opts->overflow_ttl_ms);
    p->leak_threshold_ns = ms_to_ns(opts->leak_threshold_ms);
    p->reap_interval_ns = ms_to_ns(opts->reap_interval_ms);
    p->reclaim_after_ns = ms_to_ns(reclaim_ms);
    p->checkin_needs_now = p->max_lifetime_ns > 0 || p->idle_timeout_ns > 0 ||
                           p->overflow_ttl_ns > 0 ||
                           (p->validate != NULL && p->validate_after_ns >= 0);
    p->fast = strat == FDN_POOL_LIFO && !p->checkin_needs_now && p->leak_threshold_ns == 0 &&
              p->reclaim_after_ns == 0;
    p->clock = opts->clock != NULL ? opts->clock : fdn_clock_system();
    p->manual = fdn_clock_is_manual(p->clock);
    p->tm = opts->telemetry;
    atomic_init(&p->refs, 1);
    atomic_init(&p->retired, false);
    p->rng = (uint64_t)(uintptr_t)p ^ (uint64_t)fdn_clock_mono_ns(NULL);
    atomic_init(&p->reaper_stop, false);
    CDS_INIT_LIST_HEAD(&p->idle);
    CDS_INIT_LIST_HEAD(&p->all);
    CDS_INIT_LIST_HEAD(&p->reclaimed);
    CDS_INIT_LIST_HEAD(&p->waiters);
    pthread_mutex_init(&p->mu, NULL);
    (void)fdn__cond_init_mono(&p->drain_cv);

    if (opts->prefill) {
        int64_t now = now_ns(p);
        for (int i = 0; i < size; i++) {
            fdn_pool_worker_t *w = NULL;
            int rc = fdn__pool_make_worker(p, &w);
            if (rc != 0) {
                destroy_unpublished_idle(p);
                fdn__pool_free(p);
                return fdn_err_set(err, rc, "pool %s: creating worker %d of %d failed: %s", name,
                                   i + 1, size, fdn_strerror(rc));
            }
            /* p is not published yet; the lock only keeps the rule that p->mu guards them */
            fdn__mutex_lock(&p->mu);
            fdn__pool_worker_init_times_locked(p, w, now);
            all_add(p, w);
            idle_push(p, w);
            p->live++;
            p->n_created++;
            fdn__mutex_unlock(&p->mu);
        }
    }
    if (p->reap_interval_ns > 0) {
        if (pthread_create(&p->reaper, NULL, reaper_main, p) != 0) {
            destroy_unpublished_idle(p);
            fdn__pool_free(p);
            return fdn_err_set(err, FDN_EAGAIN, "pool %s: cannot start the reaper thread", name);
        }
        p->reaper_started = true;
    }
    *out = p;
    return 0;
}

static void *reaper_main(void *arg)
{
    fdn_pool_t *p = arg;
    uint64_t seq = fdn_clock_kick_seq(p->clock);
    while (!atomic_load_explicit(&p->reaper_stop, memory_order_acquire)) {
        int64_t deadline = add_sat(now_ns(p), p->reap_interval_ns);
        while (!atomic_load_explicit(&p->reaper_stop, memory_order_acquire) && now_ns(p) < deadline)
            (void)fdn_clock_wait_until(p->clock, deadline, &seq);
        if (atomic_load_explicit(&p->reaper_stop, memory_order_acquire))
            break;
        (void)fdn_pool_reap(p);
    }
    return NULL;
}

int fdn_pool_shutdown(fdn_pool_t *p, int64_t timeout_ms)
{
    if (p == NULL)
        return FDN_EINVAL;
    bool kick = false;
    bool join = false;
    atomic_store(&p->closing, true); /* seq_cst: before the caches are emptied */
    fdn__mutex_lock(&p->mu);
    fdn_pool_worker_t *drop = NULL;
    if (!p->closed) {
        p->closed = true;
        for (unsigned i = 0; p->fast && i < CACHE_SLOTS; i++) {
            fdn_pool_worker_t *w = fdn__pool_slot_take_settled(&p->cache[i]);
            if (w == NULL)
                continue;
            w->in_use = false;
            all_remove(p, w);
            w->drop_next = drop;
            drop = w;
            p->live--;
            p->in_use--;
            p->n_destroyed++;
        }
        while (idle_any_locked(p)) {
            idle_drop_locked(p, idle_first_locked(p), &drop);
            p->live--;
            p->n_destroyed++;
        }
        while (waiting_locked(p))
            kick |= grant_oldest(p, GRANT_SHUTDOWN, NULL);
    }
    if (p->reaper_started && !p->reaper_joined) {
        p->reaper_joined = true;
        join = true;
    }
    fdn__mutex_unlock(&p->mu);
    if (kick)
        fdn_clock_kick(p->clock);
    if (join) {
        atomic_store_explicit(&p->reaper_stop, true, memory_order_release);
        fdn_clock_kick(p->clock);
        pthread_join(p->reaper, NULL);
    }
    fdn__pool_destroy_chain(p, drop);

    int rc = 0;
    fdn__mutex_lock(&p->mu);
    if (p->in_use > 0 || p->creating > 0) {
        if (timeout_ms <= 0) {
            rc = FDN_ETIMEDOUT;
        } else {
            int64_t dl = fdn__deadline_after_ms(timeout_ms);
            while ((p->in_use > 0 || p->creating > 0) && rc == 0)
                if (fdn__cond_wait_until(&p->drain_cv, &p->mu, dl) != 0)
                    rc = (p->in_use > 0 || p->creating > 0) ? FDN_ETIMEDOUT : 0;
        }
    }
    fdn__mutex_unlock(&p->mu);
    return rc;
}

void fdn__pool_retire(fdn_pool_t *p)
{
    atomic_store_explicit(&p->retired, true, memory_order_release);
}

bool fdn__pool_retired(const fdn_pool_t *p)
{
    return atomic_load_explicit(&p->retired, memory_order_acquire);
}

void fdn_pool_retain(fdn_pool_t *p)
{
    if (p == NULL)
        return;
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void fdn_pool_release(fdn_pool_t *p)
{
    if (p == NULL)
        return;
    /* acq_rel: the thread that drops the last reference sees every other holder's work */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    (void)fdn_pool_shutdown(p, 0);
    fdn__mutex_lock(&p->mu);
    p->released = true;
    bool f = can_free_locked(p);
    fdn__mutex_unlock(&p->mu);
    if (f)
        fdn__pool_free(p);
}

void fdn_pool_destroy(fdn_pool_t *p)
{
    if (p == NULL)
        return;
    (void)fdn_pool_shutdown(p, 0);
    fdn_pool_release(p);
}
