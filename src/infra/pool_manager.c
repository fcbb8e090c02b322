/*
 * DESIGN: the per-runtime manager of named pools (the reference's ConnectionManager, §5.3.2,
 * without its serialisation).
 *
 * An unsorted array of (name, pool) entries under one mutex (m->mu); lists are sorted on
 * output. The manager only finds pools; every pool operation runs on the pool itself in the
 * caller's thread, so a slow function on one pool never blocks another pool or the manager.
 *
 * Locks: m->mu, then (inside fdn_pool_retain/status) the pool's mutex; never the reverse.
 * No user callback runs under m->mu: fdn_pools_start reserves the name with a placeholder
 * entry (pool == NULL, invisible to get/list/stop), creates the pool (which calls the
 * create callback) without the lock, then fills or removes the entry.
 *
 * References: fdn_pools_get and fdn_pools_start(&out) hand out a new pool reference; stop
 * shuts the pool down (without waiting) and drops the manager's reference, so callers still
 * holding one see FDN_ESHUTDOWN, never freed memory.
 *
 * Retiring: stop and destroy mark a pool retired (fdn__pool_retire) under m->mu before
 * removing it, so fdn__pools_get_cached can trust a cached pool that is not retired to be
 * the one registered under its name without taking m->mu.
 *
 * Service state: an atomic `stopped` flag; while set every call returns FDN_EUNAVAILABLE.
 * Pools survive a stop/start cycle.
 */
#include <fdn/pool.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "infra/pool_int.h"

/* ------------------------------------------------------------------------------------------
 * The manager
 * ------------------------------------------------------------------------------------------ */

typedef struct pool_entry {
    char name[FDN_POOL_NAME_MAX];
    fdn_pool_t *pool;    /* NULL while starting */
    fdn_telemetry_t *tm; /* the pool's telemetry sink, for pool_stopped */
} pool_entry_t;

struct fdn_pools {
    fdn__mutex_t mu;
    pool_entry_t *v FDN_MEMBER_GUARDED_BY(mu);
    size_t n FDN_MEMBER_GUARDED_BY(mu);
    size_t cap FDN_MEMBER_GUARDED_BY(mu);
    int def_size FDN_MEMBER_GUARDED_BY(mu);
    int def_overflow FDN_MEMBER_GUARDED_BY(mu);
    fdn_pool_strategy_t def_strategy FDN_MEMBER_GUARDED_BY(mu);
    fdn_clock_t *clock;
    fdn_telemetry_t *tm;
    _Atomic bool stopped;
};

int fdn_pools_create(fdn_pools_t **out, const fdn_pools_opts_t *opts)
{
    if (out == NULL)
        return FDN_EINVAL;
    fdn_pools_opts_t d = FDN_POOLS_OPTS_INIT;
    if (opts == NULL)
        opts = &d;
    int size = opts->default_size == FDN_POOL_DEFAULT ? FDN_POOL_DEFAULT_SIZE : opts->default_size;
    int ovf = opts->default_max_overflow == FDN_POOL_DEFAULT ? FDN_POOL_DEFAULT_MAX_OVERFLOW
                                                             : opts->default_max_overflow;
    fdn_pool_strategy_t s = opts->default_strategy == FDN_POOL_STRATEGY_DEFAULT
                                ? FDN_POOL_LIFO
                                : opts->default_strategy;
    if (fdn__pool_check_sizes(size, ovf, s) != 0)
        return FDN_EINVAL;
    fdn_pools_t *m = fdn__calloc(1, sizeof(*m));
    if (m == NULL)
        return FDN_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->def_size = size;
    m->def_overflow = ovf;
    m->def_strategy = s;
    m->clock = opts->clock;
    m->tm = opts->telemetry;
    atomic_init(&m->stopped, false);
    *out = m;
    return 0;
}

void fdn_pools_destroy(fdn_pools_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        if (m->v[i].pool != NULL) {
            fdn__pool_retire(m->v[i].pool);
            (void)fdn_pool_shutdown(m->v[i].pool, 0);
            fdn_pool_release(m->v[i].pool);
        }
    }
    fdn__free(m->v);
    pthread_mutex_destroy(&m->mu);
    fdn__free(m);
}

int fdn_pools_set_defaults(fdn_pools_t *m, int size, int max_overflow, fdn_pool_strategy_t strategy)
{
    if (m == NULL || fdn__pool_check_sizes(size, max_overflow, strategy) != 0)
        return FDN_EINVAL;
    fdn__mutex_lock(&m->mu);
    m->def_size = size;
    m->def_overflow = max_overflow;
    m->def_strategy = strategy;
    fdn__mutex_unlock(&m->mu);
    return 0;
}

static bool stopped(fdn_pools_t *m)
{
    return atomic_load_explicit(&m->stopped, memory_order_acquire);
}

static pool_entry_t *find_locked(fdn_pools_t *m, const char *name) FDN_REQUIRES(m->mu)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0)
            return &m->v[i];
    return NULL;
}

static void remove_entry_locked(fdn_pools_t *m, pool_entry_t *e) FDN_REQUIRES(m->mu)
{
    FDN_ASSERT(e >= m->v && e < m->v + m->n); /* an entry of this manager */
    size_t i = (size_t)(e - m->v);
    memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(m->v[0]));
    m->n--;
}

/* Checks the arguments, locks m->mu and finds the started pool called name. Returns 0 with
 * m->mu held and *out set; on any error (FDN_EINVAL, FDN_EUNAVAILABLE, FDN_ENOENT) m->mu is
 * not held. */
static int lock_started(fdn_pools_t *m, const char *name, pool_entry_t **out)
    FDN_TRY_ACQUIRE(0, m->mu)
{
    if (m == NULL || name == NULL)
        return FDN_EINVAL;
    if (stopped(m))
        return FDN_EUNAVAILABLE;
    fdn__mutex_lock(&m->mu);
    pool_entry_t *e = find_locked(m, name);
    if (e == NULL || e->pool == NULL) {
        fdn__mutex_unlock(&m->mu);
        return FDN_ENOENT;
    }
    *out = e;
    return 0;
}

/* foundation.connection_pool.<what> with the pool's name; tm NULL: nothing. */
static void emit_pool_event(fdn_telemetry_t *tm, const char *event, const char *name)
{
    if (tm == NULL)
        return;
    fdn_telemetry_meta_t meta = {"pool_name", name};
    (void)fdn_telemetry_execute(tm, event, NULL, 0, &meta, 1);
}

int fdn_pools_start(fdn_pools_t *m, const char *name, const fdn_pool_opts_t *opts, fdn_pool_t **out,
                    fdn_error_t *err)
{
    if (m == NULL || name == NULL || opts == NULL)
        return fdn_err_set(err, FDN_EINVAL, "start_pool: manager, name and options required");
    if (stopped(m))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "connection manager is stopped");
    size_t len = strlen(name);
    if (len == 0 || len >= FDN_POOL_NAME_MAX)
        return fdn_err_set(err, FDN_EINVAL, "start_pool: name must be 1..%d bytes",
                           FDN_POOL_NAME_MAX - 1);
    fdn_pool_opts_t o; /* only the fields of the caller's version are read */
    int vrc = fdn__pool_opts_read(&o, opts, err);
    if (vrc != 0)
        return vrc;
    o.name = name;

    fdn__mutex_lock(&m->mu);
    if (find_locked(m, name) != NULL) {
        fdn__mutex_unlock(&m->mu);
        return fdn_err_set(err, FDN_EEXIST, "pool %s already exists", name);
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        pool_entry_t *nv = fdn__realloc(m->v, nc * sizeof(*nv));
        if (nv == NULL) {
            fdn__mutex_unlock(&m->mu);
            return fdn_err_set(err, FDN_ENOMEM, "start_pool %s: out of memory", name);
        }
        m->v = nv;
        m->cap = nc;
    }
    pool_entry_t *e = &m->v[m->n++];
    memcpy(e->name, name, len + 1);
    e->pool = NULL;
    if (o.size == FDN_POOL_DEFAULT)
        o.size = m->def_size;
    if (o.max_overflow == FDN_POOL_DEFAULT)
        o.max_overflow = m->def_overflow;
    if (o.strategy == FDN_POOL_STRATEGY_DEFAULT)
        o.strategy = m->def_strategy;
    if (o.clock == NULL)
        o.clock = m->clock;
    if (o.telemetry == NULL)
        o.telemetry = m->tm;
    fdn__mutex_unlock(&m->mu);

    fdn_pool_t *p = NULL;
    int rc = fdn_pool_create(&p, &o, err);

    fdn__mutex_lock(&m->mu);
    e = find_locked(m, name);
    if (rc != 0) {
        remove_entry_locked(m, e);
    } else {
        e->pool = p;
        e->tm = o.telemetry;
    }
    if (rc == 0 && out != NULL)
        fdn_pool_retain(p);
    fdn__mutex_unlock(&m->mu);
    if (rc != 0)
        return rc;
    if (out != NULL)
        *out = p;
    emit_pool_event(o.telemetry, "foundation.connection_pool.pool_started", name);
    return 0;
}

int fdn_pools_stop(fdn_pools_t *m, const char *name)
{
    pool_entry_t *e;
    int rc = lock_started(m, name, &e);
    if (rc != 0)
        return rc;
    fdn_pool_t *p = e->pool;
    fdn_telemetry_t *tm = e->tm;
    fdn__pool_retire(p);
    remove_entry_locked(m, e);
    fdn__mutex_unlock(&m->mu);
    emit_pool_event(tm, "foundation.connection_pool.pool_stopped", fdn_pool_name(p));
    (void)fdn_pool_shutdown(p, 0);
    fdn_pool_release(p);
    return 0;
}

int fdn_pools_get(fdn_pools_t *m, const char *name, fdn_pool_t **out)
{
    if (out == NULL)
        return FDN_EINVAL;
    pool_entry_t *e;
    int rc = lock_started(m, name, &e);
    if (rc != 0)
        return rc;
    fdn_pool_retain(e->pool);
    *out = e->pool;
    fdn__mutex_unlock(&m->mu);
    return 0;
}

int fdn__pools_get_cached(fdn_pools_t *m, const char *name, fdn__pool_cache_t *cache,
                          fdn_pool_t **out, bool *owned)
{
    if (m == NULL || name == NULL || cache == NULL || out == NULL || owned == NULL)
        return FDN_EINVAL;
    if (stopped(m))
        return FDN_EUNAVAILABLE;
    fdn_pool_t *c = atomic_load_explicit(cache, memory_order_acquire);
    if (c != NULL && !fdn__pool_retired(c)) {
        *out = c;
        *owned = false;
        return 0;
    }
    int rc = fdn_pools_get(m, name, out);
    if (rc != 0)
        return rc;
    *owned = true;
    if (c == NULL) {
        fdn_pool_t *expected = NULL;
        fdn_pool_retain(*out); /* the cache's own reference */
        if (!atomic_compare_exchange_strong_explicit(cache, &expected, *out, memory_order_acq_rel,
                                                     memory_order_acquire))
            fdn_pool_release(*out);
    }
    return 0;
}

void fdn__pools_cache_drop(fdn__pool_cache_t *cache)
{
    if (cache == NULL)
        return;
    fdn_pool_release(atomic_exchange_explicit(cache, NULL, memory_order_acq_rel));
}

int fdn_pools_with(fdn_pools_t *m, const char *name, fdn_pool_fn fn, void *arg, int64_t timeout_ms,
                   fdn_error_t *err)
{
    fdn_pool_t *p = NULL;
    int rc = fdn_pools_get(m, name, &p);
    if (rc != 0)
        return fdn_err_set(err, rc, "pool %s: %s", name != NULL ? name : "(null)",
                           rc == FDN_ENOENT ? "pool_not_found" : fdn_strerror(rc));
    rc = fdn_pool_with(p, fn, arg, timeout_ms, err);
    fdn_pool_release(p);
    return rc;
}

int fdn_pools_status(fdn_pools_t *m, const char *name, fdn_pool_status_t *out)
{
    if (out == NULL)
        return FDN_EINVAL;
    fdn_pool_t *p = NULL;
    int rc = fdn_pools_get(m, name, &p);
    if (rc != 0)
        return rc;
    rc = fdn_pool_status(p, out);
    fdn_pool_release(p);
    return rc;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const fdn_pool_info_t *)a)->name, ((const fdn_pool_info_t *)b)->name);
}

int fdn_pools_list(fdn_pools_t *m, fdn_pool_info_t **out, size_t *n)
{
    if (m == NULL || out == NULL || n == NULL)
        return FDN_EINVAL;
    if (stopped(m))
        return FDN_EUNAVAILABLE;
    fdn__mutex_lock(&m->mu);
    size_t cnt = 0;
    for (size_t i = 0; i < m->n; i++)
        cnt += m->v[i].pool != NULL;
    fdn_pool_info_t *v = NULL;
    if (cnt > 0) {
        v = fdn__calloc(cnt, sizeof(*v));
        if (v == NULL) {
            fdn__mutex_unlock(&m->mu);
            return FDN_ENOMEM;
        }
        size_t j = 0;
        for (size_t i = 0; i < m->n; i++) {
            if (m->v[i].pool == NULL)
                continue;
            memcpy(v[j].name, m->v[i].name, sizeof(v[j].name));
            (void)fdn_pool_status(m->v[i].pool, &v[j].status);
            j++;
        }
    }
    fdn__mutex_unlock(&m->mu);
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_info);
    *out = v;
    *n = cnt;
    return 0;
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_pools_t *m = state;
    (void)ctx;
    (void)err;
    if (m == NULL)
        return FDN_EINVAL;
    atomic_store_explicit(&m->stopped, false, memory_order_release);
    return 0;
}

static void service_stop(void *state)
{
    fdn_pools_t *m = state;
    if (m != NULL)
        atomic_store_explicit(&m->stopped, true, memory_order_release);
}

static int service_health(void *state)
{
    fdn_pools_t *m = state;
    if (m == NULL)
        return FDN_EINVAL;
    return stopped(m) ? FDN_EUNAVAILABLE : 0;
}

static void service_destroy(void *state)
{
    fdn_pools_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__pools_service_ops = {service_start, service_stop, service_health, NULL,
                                                  service_destroy};
