/*
 * DESIGN: protected execution.
 *
 * Threads: none of its own; fdn_execute_protected runs entirely on the caller's thread
 * (the pool checkout waits there too).
 *
 * Locks: `wmu` (a mutex) serialises the writers (configure, unconfigure, entry_renew). The
 * sorted array of configuration entries is a table published through an atomic pointer and
 * never changed once published: a writer copies it with its change, publishes the copy and
 * retires the old one after an RCU grace period (core/rcu.h, liburcu-bp). A call finds its
 * entry inside an RCU read-side section and takes a reference (atomic refcount) before it
 * leaves the section; every layer, fn and the event hook run outside it, with no lock of ours
 * held. The published table holds one reference on each of its entries; a writer drops it for
 * an entry it took out right after publishing the table without it. The entry's memory (its
 * key included, which a search of an old table still reads) is freed only a grace period
 * after its count reached zero, so a call searching an old table may find an entry whose
 * count is already zero: it takes a reference only while the count is above zero and,
 * failing that, searches the table published now, which no longer holds it. (A
 * pthread_rwlock's read lock here cost 12-15 ns of protect.call.all_layers' 90-115, liburcu-bp's
 * read-side section 3-4: bench/README.md, "Protection: the entry found under RCU".) A change
 * copies the table: O(keys) time and memory each, and the old copies wait for a grace period;
 * meant for the tens to thousands of keys a service protects, configured at start or now and
 * then, not for a key per request.
 *
 * Invariants: a table's entries are sorted by key and unique; an entry is immutable once
 * published, except for `rule_cache` (the limiter's lock-free copy of the named rule, checked
 * against the limiter's rule-table generation at every call so rule updates apply at once),
 * `pool_cache` (the pool manager's lock-free handle on the named pool, holding a pool
 * reference released when the entry's count reaches zero; used only while that pool is not retired,
 * so a stopped or restarted pool is looked up again, see Retired pools below) and `opt_breaker`, an
 * atomic cache of the breaker last resolved for a call option (opts->breaker) on that key, so a
 * call naming a breaker does not search the set (and take its mutex) each time; it is checked by
 * name, and for being still listed in the set (a removed breaker is missing for a call option, as
 * for a lookup), before use. Breaker pointers in an entry stay valid because a breaker's memory
 * lives as long as its set (removal only unlists it), and the set outlives this registry.
 * Rejections by the limiter or the pool never record a breaker outcome (the permit is released).
 *
 * Retired pools: a call that finds its entry's cached pool retired (stopped, or replaced under
 * its name; asked only when the cache did not serve the call) publishes, under wmu, a table
 * holding a copy of the entry with an empty pool cache (entry_renew) and drops the old table's
 * reference on the old entry. The calls still holding the old entry may be using the cached
 * pool without a reference of their own (the cache's is theirs); the last of them releases the
 * cache's reference as the count reaches zero, so the retired pool is freed after that grace
 * period instead of living as long as the entry. The entry's reference count, which every call
 * takes anyway, is the grace period: the pool is used outside the read-side section, which
 * cannot cover it (a checkout may wait for its timeout, and fn runs in between). A copy that
 * cannot be allocated leaves the entry as it is; the next call tries again.
 *
 * Destroy: no call runs any more, so the current table's entries are freed at once. Only
 * earlier changes' retirements can still be pending; fdn_protect_destroy waits for them (a
 * liburcu barrier, some milliseconds) only when this registry retired something, so that its
 * memory is all returned when it returns.
 */
#include <fdn/protect.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/rcu.h"
#include "infra/breaker_int.h"
#include "infra/limiter_int.h"
#include "infra/pool_int.h"
#include "infra/protect_int.h"

#define NS_PER_MS 1000000LL
#define KEY_MAX   1024u

#if defined(__GNUC__)
#define FDN_PROTECT_COLD __attribute__((noinline))
#else
#define FDN_PROTECT_COLD
#endif

typedef struct entry {
    struct rcu_head rcu; /* its memory is freed a grace period after refs reached zero */
    _Atomic int refs;
    char *key;
    fdn_breaker_t *breaker;
    _Atomic(fdn_breaker_t *) opt_breaker; /* cache for opts->breaker, see DESIGN */
    char *rule_name;
    fdn__limiter_rule_cache_t rule_cache; /* rule_name as last found in the limiter */
    bool has_inline;
    fdn_limit_rule_t inline_rule;
    char *pool;
    fdn__pool_cache_t pool_cache; /* the pool `pool` names, with a reference of its own */
    int64_t timeout_ms;
} entry_t;

/* A published table of entries: immutable, replaced as a whole (see Locks in DESIGN). */
typedef struct table {
    struct rcu_head rcu;
    size_t n;
    entry_t *v[]; /* sorted by key, unique; the table holds a reference on each */
} table_t;

struct fdn_protect {
    fdn_breakers_t *breakers;
    fdn_limiter_t *limiter;
    fdn_pools_t *pools;
    fdn_clock_t *clock;
    fdn_telemetry_t *telemetry;
    fdn_protect_event_fn on_event;
    void *event_user;
    _Atomic bool on_limiter, on_breaker, on_pool;
    _Atomic int64_t default_timeout_ms;
    fdn__mutex_t wmu;       /* writers of tab */
    _Atomic(table_t *) tab; /* NULL: no entry; read in RCU read-side sections */
    _Atomic bool retired;   /* some table or entry of p went to fdn__rcu_retire */
};

/* The memory of e (never published, or a grace period after its count reached zero). */
static void entry_free_mem(entry_t *e)
{
    fdn__free(e->key);
    fdn__free(e->rule_name);
    fdn__free(e->pool);
    fdn__free(e);
}

/* An entry that was never published (nobody else can see it): freed at once. */
static void entry_free(entry_t *e)
{
    if (!e)
        return;
    fdn__pools_cache_drop(&e->pool_cache);
    entry_free_mem(e);
}

static void entry_free_cb(struct rcu_head *head)
{
    fdn__rcu_retired();
    _Static_assert(offsetof(entry_t, rcu) == 0, "rcu head first");
    entry_free_mem((entry_t *)(void *)head);
    fdn__rcu_done();
}

/* Drop a reference. The last one releases the pool cache at once (only reference holders use
 * it) and retires the memory, which a search of an old table may still read (DESIGN). */
static void entry_unref(entry_t *e)
{
    if (e == NULL)
        return;
    int prev = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    FDN_ASSERT(prev >= 1); /* a count never goes below zero */
    if (prev == 1) {
        fdn__pools_cache_drop(&e->pool_cache);
        fdn__rcu_retire(&e->rcu, entry_free_cb);
    }
}

/* A reference on e, found in a table inside a read-side section, unless its count already
 * reached zero (it left the table published now). */
static bool entry_tryref(entry_t *e)
{
    int r = atomic_load_explicit(&e->refs, memory_order_acquire);
    while (r > 0) {
        if (atomic_compare_exchange_weak_explicit(&e->refs, &r, r + 1, memory_order_acquire,
                                                  memory_order_acquire))
            return true;
    }
    return false;
}

static void table_free_cb(struct rcu_head *head)
{
    fdn__rcu_retired();
    _Static_assert(offsetof(table_t, rcu) == 0, "rcu head first");
    fdn__free(head);
    fdn__rcu_done();
}

/* A table of n entries (uninitialised), or NULL when out of memory. */
static table_t *table_new(size_t n)
{
    table_t *t = fdn__malloc(sizeof(*t) + n * sizeof(t->v[0]));
    if (t != NULL)
        t->n = n;
    return t;
}

/* Publish next (under wmu) and retire the table it replaces. */
static void publish(fdn_protect_t *p, table_t *next) FDN_REQUIRES(p->wmu)
{
    table_t *old = atomic_load_explicit(&p->tab, memory_order_relaxed);
    atomic_store_explicit(&p->tab, next, memory_order_release);
    if (old != NULL) {
        /* every entry retirement follows a table's (its table reference goes after one) */
        atomic_store_explicit(&p->retired, true, memory_order_relaxed);
        fdn__rcu_retire(&old->rcu, table_free_cb);
    }
}

/* Binary search of t (NULL: empty). Returns the index of key or where it would go. */
static size_t table_find(const table_t *t, const char *key, bool *found);

/* A copy of e's configuration with empty caches, or NULL when out of memory. */
static entry_t *entry_clone(const entry_t *e)
{
    entry_t *n = fdn__calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    atomic_init(&n->refs, 1);
    atomic_init(&n->opt_breaker, atomic_load_explicit(&e->opt_breaker, memory_order_acquire));
    fdn__limiter_rule_cache_init(&n->rule_cache);
    atomic_init(&n->pool_cache, NULL);
    n->key = fdn__strdup(e->key);
    n->breaker = e->breaker;
    n->rule_name = e->rule_name != NULL ? fdn__strdup(e->rule_name) : NULL;
    n->has_inline = e->has_inline;
    n->inline_rule = e->inline_rule;
    n->pool = e->pool != NULL ? fdn__strdup(e->pool) : NULL;
    n->timeout_ms = e->timeout_ms;
    if (n->key == NULL || (e->rule_name != NULL && n->rule_name == NULL) ||
        (e->pool != NULL && n->pool == NULL)) {
        entry_free(n);
        return NULL;
    }
    return n;
}

/* e's cached pool is retired (see DESIGN, Retired pools): publish a copy of e with an empty
 * pool cache in its place, unless e was replaced already. The caller holds a reference on e.
 * Out of memory: nothing changes (the next call tries again). */
static FDN_PROTECT_COLD void entry_renew(fdn_protect_t *p, entry_t *e)
{
    entry_t *n = entry_clone(e);
    if (n == NULL)
        return;
    bool swapped = false;
    fdn__mutex_lock(&p->wmu);
    const table_t *t = atomic_load_explicit(&p->tab, memory_order_relaxed);
    bool found;
    size_t i = table_find(t, e->key, &found);
    if (found && t->v[i] == e) {
        table_t *nt = table_new(t->n);
        if (nt != NULL) {
            memcpy(nt->v, t->v, t->n * sizeof(t->v[0]));
            nt->v[i] = n;
            publish(p, nt);
            swapped = true;
        }
    }
    fdn__mutex_unlock(&p->wmu);
    if (swapped)
        entry_unref(e); /* the table's reference */
    else
        entry_free(n); /* unused */
}

int fdn_protect_create(fdn_protect_t **out, const fdn_protect_opts_t *opts)
{
    fdn_protect_opts_t d = FDN_PROTECT_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (opts == NULL)
        opts = &d;
    if (opts->version < 1)
        return FDN_EINVAL;
    fdn__rcu_setup();
    fdn_protect_t *p = fdn__calloc(1, sizeof(*p));
    if (!p)
        return FDN_ENOMEM;
    if (pthread_mutex_init(&p->wmu, NULL) != 0) {
        fdn__free(p);
        return FDN_ENOMEM;
    }
    atomic_init(&p->tab, NULL);
    atomic_init(&p->retired, false);
    p->breakers = opts->breakers;
    p->limiter = opts->limiter;
    p->pools = opts->pools;
    p->clock = opts->clock;
    p->telemetry = opts->telemetry;
    p->on_event = opts->on_event;
    p->event_user = opts->event_user;
    atomic_init(&p->on_limiter, true);
    atomic_init(&p->on_breaker, true);
    atomic_init(&p->on_pool, true);
    atomic_init(&p->default_timeout_ms, (int64_t)FDN_POOL_DEFAULT_TIMEOUT_MS);
    *out = p;
    return 0;
}

void fdn_protect_destroy(fdn_protect_t *p)
{
    if (p == NULL)
        return;
    /* no call runs any more (DESIGN, Destroy): nobody reads the table or its entries */
    table_t *t = atomic_load_explicit(&p->tab, memory_order_acquire);
    if (t != NULL) {
        for (size_t i = 0; i < t->n; i++) {
            int prev = atomic_fetch_sub_explicit(&t->v[i]->refs, 1, memory_order_acq_rel);
            FDN_ASSERT(prev == 1); /* the table's reference was the last */
            entry_free(t->v[i]);
        }
        fdn__free(t);
    }
    /* the tables and entries p retired earlier are freed once the pending callbacks ran */
    if (atomic_load_explicit(&p->retired, memory_order_relaxed))
        fdn__rcu_barrier();
    pthread_mutex_destroy(&p->wmu);
    fdn__free(p);
}

void fdn_protect_set_layer_enabled(fdn_protect_t *p, fdn_protect_layer_t layer, bool enabled)
{
    if (p == NULL)
        return;
    switch (layer) {
    case FDN_PROTECT_LIMITER:
        atomic_store_explicit(&p->on_limiter, enabled, memory_order_relaxed);
        break;
    case FDN_PROTECT_BREAKER:
        atomic_store_explicit(&p->on_breaker, enabled, memory_order_relaxed);
        break;
    case FDN_PROTECT_POOL:
        atomic_store_explicit(&p->on_pool, enabled, memory_order_relaxed);
        break;
    case FDN_PROTECT_NONE:
        break;
    }
}

int fdn_protect_set_default_timeout(fdn_protect_t *p, int64_t timeout_ms)
{
    if (p == NULL || timeout_ms <= 0)
        return FDN_EINVAL;
    atomic_store_explicit(&p->default_timeout_ms, timeout_ms, memory_order_relaxed);
    return 0;
}

static size_t table_find(const table_t *t, const char *key, bool *found)
{
    size_t lo = 0, hi = t != NULL ? t->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid]->key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int fdn_protect_configure(fdn_protect_t *p, const char *key, const fdn_protect_config_t *cfg,
                          fdn_error_t *err)
{
    if (p == NULL || key == NULL || key[0] == '\0' || strlen(key) > KEY_MAX)
        return fdn_err_set(err, FDN_EINVAL, "invalid protection key");
    if (cfg == NULL || cfg->version < 1)
        return fdn_err_set(err, FDN_EINVAL, "invalid_config_format");
    if (cfg->pool_timeout_ms < -1)
        return fdn_err_set(err, FDN_EINVAL, "invalid_connection_pool_config: timeout < -1");
    if (cfg->breaker) {
        if (p->breakers == NULL)
            return fdn_err_set(err, FDN_EINVAL, "invalid_circuit_breaker_config: no breaker set");
        if (cfg->breaker_opts) {
            int rc = fdn_breaker_opts_validate(cfg->breaker_opts, err);
            if (rc) {
                fdn_err_add_context(err, "layer", "circuit_breaker");
                return rc;
            }
        }
    }
    if (cfg->limit || cfg->limiter_rule) {
        if (p->limiter == NULL)
            return fdn_err_set(err, FDN_EINVAL, "invalid_rate_limiter_config: no limiter");
        if (cfg->limit) {
            int rc = fdn_limit_rule_validate(cfg->limit, err);
            if (rc) {
                fdn_err_add_context(err, "layer", "rate_limiter");
                return rc;
            }
        } else {
            fdn_limit_rule_t r;
            if (fdn_limiter_get_rule(p->limiter, cfg->limiter_rule, &r) != 0)
                return fdn_err_set(err, FDN_EINVAL, "invalid_rate_limiter_config: unknown rule %s",
                                   cfg->limiter_rule);
        }
    }
    if (cfg->pool && p->pools == NULL)
        return fdn_err_set(err, FDN_EINVAL, "invalid_connection_pool_config: no pool manager");

    /* The breaker is made in the set last of the checks, and taken out of the set again when
     * the configure fails after all (out of memory): a failed configure changes nothing
     * (found by the allocation sweep, tests/alloc/test_alloc_protect.c). */
    fdn_breaker_t *b = NULL;
    bool made = false;
    if (cfg->breaker) {
        int rc = fdn_breaker_create_in(p->breakers, cfg->breaker, cfg->breaker_opts, &b);
        if (rc != 0 && rc != FDN_EEXIST)
            return fdn_err_set(err, rc, "invalid_circuit_breaker_config: %s", fdn_strerror(rc));
        made = rc == 0;
    }
    entry_t *e = fdn__calloc(1, sizeof(*e));
    if (!e) {
        if (made)
            (void)fdn_breaker_remove(p->breakers, cfg->breaker);
        return FDN_ENOMEM;
    }
    atomic_init(&e->refs, 1);
    atomic_init(&e->opt_breaker, NULL);
    fdn__limiter_rule_cache_init(&e->rule_cache);
    atomic_init(&e->pool_cache, NULL);
    e->key = fdn__strdup(key);
    e->breaker = b;
    e->rule_name = cfg->limiter_rule && !cfg->limit ? fdn__strdup(cfg->limiter_rule) : NULL;
    e->has_inline = cfg->limit != NULL;
    if (cfg->limit)
        e->inline_rule = *cfg->limit;
    e->pool = cfg->pool ? fdn__strdup(cfg->pool) : NULL;
    e->timeout_ms = cfg->pool_timeout_ms;
    if (!e->key || (cfg->limiter_rule && !cfg->limit && !e->rule_name) || (cfg->pool && !e->pool)) {
        entry_free(e);
        if (made)
            (void)fdn_breaker_remove(p->breakers, cfg->breaker);
        return FDN_ENOMEM;
    }
    entry_t *old = NULL;
    int rc = 0;
    fdn__mutex_lock(&p->wmu);
    const table_t *t = atomic_load_explicit(&p->tab, memory_order_relaxed);
    size_t n = t != NULL ? t->n : 0;
    bool found;
    size_t i = table_find(t, key, &found);
    table_t *nt = table_new(found ? n : n + 1);
    if (nt == NULL) {
        rc = FDN_ENOMEM;
        goto out;
    }
    if (n > 0)
        memcpy(nt->v, t->v, i * sizeof(t->v[0]));
    nt->v[i] = e;
    if (found) {
        old = t->v[i];
        memcpy(&nt->v[i + 1], &t->v[i + 1], (n - i - 1) * sizeof(t->v[0]));
    } else if (n > 0) {
        memcpy(&nt->v[i + 1], &t->v[i], (n - i) * sizeof(t->v[0]));
    }
    /* entries stay sorted by key and unique */
    FDN_ASSERT(i == 0 || strcmp(nt->v[i - 1]->key, key) < 0);
    FDN_ASSERT(i + 1 >= nt->n || strcmp(key, nt->v[i + 1]->key) < 0);
    publish(p, nt);
out:
    fdn__mutex_unlock(&p->wmu);
    if (rc)
        entry_free(e);
    if (rc && made)
        (void)fdn_breaker_remove(p->breakers, cfg->breaker);
    entry_unref(old);
    return rc;
}

int fdn_protect_unconfigure(fdn_protect_t *p, const char *key)
{
    if (p == NULL || key == NULL)
        return FDN_EINVAL;
    entry_t *old = NULL;
    int rc = FDN_ENOENT;
    fdn__mutex_lock(&p->wmu);
    const table_t *t = atomic_load_explicit(&p->tab, memory_order_relaxed);
    bool found;
    size_t i = table_find(t, key, &found);
    if (found) {
        table_t *nt = t->n > 1 ? table_new(t->n - 1) : NULL;
        if (nt != NULL || t->n == 1) {
            if (nt != NULL) {
                memcpy(nt->v, t->v, i * sizeof(t->v[0]));
                memcpy(&nt->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
            }
            old = t->v[i];
            publish(p, nt);
            rc = 0;
        } else {
            rc = FDN_ENOMEM;
        }
    }
    fdn__mutex_unlock(&p->wmu);
    entry_unref(old); /* the table's reference */
    return rc;
}

int fdn_protect_has(fdn_protect_t *p, const char *key)
{
    if (p == NULL || key == NULL)
        return FDN_EINVAL;
    bool found;
    fdn__rcu_read_begin();
    (void)table_find(atomic_load_explicit(&p->tab, memory_order_acquire), key, &found);
    fdn__rcu_read_end();
    return found ? 0 : FDN_ENOENT;
}

/* A table's key i (in a read-side section). */
static const char *key_at(const void *tab, size_t i)
{
    return ((const table_t *)tab)->v[i]->key;
}

int fdn_protect_list(fdn_protect_t *p, char ***out, size_t *n)
{
    if (p == NULL || out == NULL || n == NULL)
        return FDN_EINVAL;
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&p->tab, memory_order_acquire);
    int rc = fdn__strv_pack(t, t != NULL ? t->n : 0, key_at, out, n);
    fdn__rcu_read_end();
    return rc;
}

void (*fdn__protect_test_found)(fdn_protect_t *p, const char *key);

static entry_t *lookup_ref(fdn_protect_t *p, const char *key)
{
    entry_t *e;
    fdn__rcu_read_begin();
    for (;;) {
        const table_t *t = atomic_load_explicit(&p->tab, memory_order_acquire);
        bool found;
        size_t i = table_find(t, key, &found);
        e = found ? t->v[i] : NULL;
        if (FDN_UNLIKELY(fdn__protect_test_found != NULL) && e != NULL)
            fdn__protect_test_found(p, key);
        /* a count at zero: e left the table; the one published now no longer holds it (its
         * writer published that table before dropping the reference this load saw go) */
        if (e == NULL || entry_tryref(e))
            break;
    }
    fdn__rcu_read_end();
    return e;
}

static const char *layer_name(fdn_protect_layer_t l)
{
    switch (l) {
    case FDN_PROTECT_LIMITER:
        return "rate_limit";
    case FDN_PROTECT_BREAKER:
        return "circuit_breaker";
    case FDN_PROTECT_POOL:
        return "connection_pool";
    case FDN_PROTECT_NONE:
        break;
    }
    return "none";
}

/*
 * Telemetry: foundation.infrastructure.<event> with metadata {protection_key} (+
 * protection_type for protection_triggered, + result code name for execute_stop and
 * execute_exception) and, for execute_stop / execute_exception, a duration_ns measurement.
 * (The reference put the key in measurements and the duration in metadata; §12 item 32.)
 */
static void copy_name(char *dst, size_t cap, const char *src)
{
    size_t l = strlen(src);
    if (l >= cap)
        l = cap - 1;
    memcpy(dst, src, l);
    dst[l] = '\0';
}

int fdn_protect_status(fdn_protect_t *p, const char *key, fdn_protect_status_t *out)
{
    if (p == NULL || key == NULL || out == NULL)
        return FDN_EINVAL;
    entry_t *e = lookup_ref(p, key);
    if (e == NULL)
        return FDN_ENOENT;
    memset(out, 0, sizeof(*out));
    if (e->breaker) {
        out->has_breaker = true;
        copy_name(out->breaker_name, sizeof(out->breaker_name), fdn_breaker_name(e->breaker));
        fdn_breaker_status(e->breaker, &out->breaker);
    }
    if (e->has_inline) {
        out->has_limiter = true;
        out->rule = e->inline_rule;
    } else if (e->rule_name) {
        out->has_limiter = true;
        copy_name(out->rule_name, sizeof(out->rule_name), e->rule_name);
        fdn_limiter_get_rule(p->limiter, e->rule_name, &out->rule);
    }
    if (e->pool) {
        out->has_pool = true;
        copy_name(out->pool_name, sizeof(out->pool_name), e->pool);
        out->pool_found = fdn_pools_status(p->pools, e->pool, &out->pool) == 0;
        out->pool_timeout_ms = e->timeout_ms;
    }
    entry_unref(e);
    return 0;
}

static FDN_PROTECT_COLD void emit_slow(fdn_protect_t *p, const char *ev, const char *key,
                                       fdn_protect_layer_t layer, int rc, int64_t dur)
{
    if (p->telemetry) {
        char name[64];
        snprintf(name, sizeof(name), "foundation.infrastructure.%s", ev);
        fdn_telemetry_meta_t meta[4] = {{"protection_key", key},
                                        {"protection_type", layer_name(layer)},
                                        {"result", rc ? fdn_err_name(rc) : "ok"},
                                        {"correlation_id", NULL}};
        fdn_telemetry_measure_t m[1] = {{"duration_ns", (double)dur}};
        bool timed = strcmp(ev, "execute_stop") == 0 || strcmp(ev, "execute_exception") == 0;
        /* a timed call made inside an error context carries its correlation id (the
         * runtime keeps it as the exemplar of fdn_protected_call_duration_seconds) */
        char cid[FDN_UUID_STR_LEN + 1];
        size_t nmeta = 3;
        if (timed && fdn_errctx_correlation_id(cid) == 0 && cid[0] != '\0') {
            meta[3].value = cid;
            nmeta = 4;
        }
        fdn_telemetry_execute(p->telemetry, name, m, timed ? 1 : 0, meta, nmeta);
    }
    if (p->on_event)
        p->on_event(ev, key, layer, rc, dur, p->event_user);
}

/* Most registries have neither telemetry nor an event hook: then an event costs one test. */
static inline void emit(fdn_protect_t *p, const char *ev, const char *key,
                        fdn_protect_layer_t layer, int rc, int64_t dur)
{
    if (p->telemetry != NULL || p->on_event != NULL)
        emit_slow(p, ev, key, layer, rc, dur);
}

/*
 * Inline-rule limiter check. The limiter key is "\0protect:<len(key)>:<key>:<identifier>"
 * (FDN_LIMIT_KEY_NS_PROTECT): named-rule keys ("\x02<rule>:<identifier>"), entity keys
 * ("\x03foundation:...") and HTTP keys ("\x01...") start with their own byte (include/fdn/
 * limiter.h, key namespaces), so an inline rule never shares cells
 * with a named rule even when the protection key equals a rule name, and the length prefix
 * keeps (key "a:b", id "c") apart from (key "a", id "b:c").
 */
static int check_inline(fdn_protect_t *p, const char *key, const char *id,
                        const fdn_limit_rule_t *rule, int64_t cost, fdn_limit_result_t *res)
{
    static const char prefix[] = "\0protect:";
    const size_t pl = sizeof(prefix) - 1;
    size_t kl = strlen(key), il = strlen(id);
    char num[24];
    int nn = snprintf(num, sizeof(num), "%zu:", kl);
    size_t nl = (size_t)nn;
    size_t total = pl + nl + kl + 1 + il;
    char buf[256];
    char *k = total <= sizeof(buf) ? buf : fdn__malloc(total);
    if (!k)
        return FDN_ENOMEM;
    size_t o = 0;
    memcpy(k, prefix, pl);
    o += pl;
    memcpy(k + o, num, nl);
    o += nl;
    memcpy(k + o, key, kl);
    o += kl;
    k[o++] = ':';
    memcpy(k + o, id, il);
    int rc = fdn_limiter_check(p->limiter, k, total, rule, cost, FDN_LIMIT_RESERVED_NS, res);
    if (k != buf)
        fdn__free(k);
    return rc;
}

int fdn_execute_protected(fdn_protect_t *p, const char *key, const fdn_protect_call_opts_t *opts,
                          fdn_protected_fn fn, void *arg, fdn_protect_result_t *result,
                          fdn_error_t *err)
{
    fdn_protect_call_opts_t dopts = FDN_PROTECT_CALL_OPTS_INIT;
    fdn_protect_result_t tmp;
    /* the duration costs two clock reads: only when someone will see it */
    const bool timed = result != NULL || p == NULL || p->on_event != NULL || p->telemetry != NULL;
    if (result == NULL)
        result = &tmp;
    memset(result, 0, sizeof(*result));
    if (p == NULL || key == NULL || fn == NULL)
        return fdn_err_set(err, FDN_EINVAL, "execute_protected: NULL argument");
    if (opts == NULL)
        opts = &dopts;
    const int64_t t0 = timed ? fdn_clock_mono_ns(p->clock) : 0;
    emit(p, "execute_start", key, FDN_PROTECT_NONE, 0, 0);

    int rc = 0;
    entry_t *e = lookup_ref(p, key);
    fdn_breaker_t *b = NULL;
    fdn_pool_t *pool = NULL;
    bool pool_owned = false; /* we hold a reference on pool (else the entry's cache does) */
    fdn_pool_worker_t *w = NULL;
    fdn_breaker_permit_t permit;
    bool have_permit = false;

    /* 1. rate limiter */
    if (p->limiter && atomic_load_explicit(&p->on_limiter, memory_order_relaxed)) {
        const char *id = opts->identifier ? opts->identifier : "";
        int64_t cost = opts->cost > 0 ? opts->cost : 1;
        fdn_limit_result_t lr;
        bool limited = false;
        if (opts->limiter_rule) {
            rc = fdn_limiter_check_named(p->limiter, opts->limiter_rule, id, cost, &lr);
            limited = true;
        } else if (e && e->has_inline) {
            rc = check_inline(p, key, id, &e->inline_rule, cost, &lr);
            limited = true;
        } else if (e && e->rule_name) {
            /* the call's start time doubles as the limiter's time when it was read */
            rc = fdn__limiter_check_named_cached(p->limiter, e->rule_name, id, cost, &lr,
                                                 &e->rule_cache, p->clock,
                                                 timed ? t0 : FDN__NOW_UNSET);
            limited = true;
        }
        if (limited && rc != 0) {
            if (rc == FDN_ERATE_LIMITED) {
                result->rejected_by = FDN_PROTECT_LIMITER;
                result->retry_after_ns = lr.retry_after_ns;
                emit(p, "protection_triggered", key, FDN_PROTECT_LIMITER, rc, 0);
                fdn_err_set(err, rc, "Rate limit exceeded for %s:%s", key, id);
                fdn_err_add_context(err, "retry_after_ms", "%lld",
                                    (long long)(lr.retry_after_ns / NS_PER_MS));
            } else if (rc == FDN_ELIMITER) {
                /* the limiter is full of live keys and refuses new ones (overflow_policy) */
                result->rejected_by = FDN_PROTECT_LIMITER;
                result->retry_after_ns = lr.retry_after_ns;
                emit(p, "protection_triggered", key, FDN_PROTECT_LIMITER, rc, 0);
                fdn_err_set(err, rc, "rate limiter full: new key refused for %s:%s", key, id);
                fdn_err_add_context(err, "retry_after_ms", "%lld",
                                    (long long)(lr.retry_after_ns / NS_PER_MS));
            } else {
                fdn_err_set(err, rc, "rate limiter error for %s", key);
            }
            goto done;
        }
        rc = 0;
    } else if (p->limiter == NULL && opts->limiter_rule &&
               atomic_load_explicit(&p->on_limiter, memory_order_relaxed)) {
        /* a named rule that cannot be applied is missing, as a missing breaker is (only
         * reached without a limiter: a call through a limiter pays nothing for this) */
        rc = fdn_err_set(err, FDN_ENOENT, "no rate limiter: rule %s cannot be applied",
                         opts->limiter_rule);
        goto done;
    }

    /* 2. circuit breaker */
    if (atomic_load_explicit(&p->on_breaker, memory_order_relaxed)) {
        if (opts->breaker) {
            if (p->breakers == NULL) {
                rc = fdn_err_set(err, FDN_EBREAKER_NOT_FOUND, "no breaker set");
                goto done;
            }
            if (e) {
                b = e->breaker;
                if (b == NULL || strcmp(fdn_breaker_name(b), opts->breaker) != 0)
                    b = atomic_load_explicit(&e->opt_breaker, memory_order_acquire);
                /* a cached breaker that was removed since is missing, as for a lookup */
                if (b != NULL &&
                    (strcmp(fdn_breaker_name(b), opts->breaker) != 0 || !fdn__breaker_listed(b)))
                    b = NULL;
            }
            if (b == NULL) {
                rc = fdn_breaker_get(p->breakers, opts->breaker, &b);
                if (rc) {
                    fdn_err_set(err, rc, "Circuit breaker %s not found", opts->breaker);
                    goto done;
                }
                if (e)
                    atomic_store_explicit(&e->opt_breaker, b, memory_order_release);
            }
        } else if (e) {
            b = e->breaker;
        }
        if (b) {
            rc = fdn_breaker_acquire(b, &permit);
            if (rc) {
                result->rejected_by = FDN_PROTECT_BREAKER;
                emit(p, "protection_triggered", key, FDN_PROTECT_BREAKER, rc, 0);
                fdn_err_set(err, rc, "Circuit breaker is open for %s", fdn_breaker_name(b));
                goto done;
            }
            have_permit = true;
        }
    }

    /* 3. pool checkout */
    const char *pool_name = opts->pool ? opts->pool : (e ? e->pool : NULL);
    if (pool_name && atomic_load_explicit(&p->on_pool, memory_order_relaxed)) {
        if (p->pools == NULL) {
            /* only a call option can name a pool here (configure refuses one without a pool
             * manager): missing, as a missing breaker is */
            rc = fdn_err_set(err, FDN_ENOENT, "no pool manager: connection pool %s not found",
                             pool_name);
            goto release;
        }
        if (opts->pool == NULL && e != NULL) {
            rc = fdn__pools_get_cached(p->pools, pool_name, &e->pool_cache, &pool, &pool_owned);
            /* not served from the cache: is it holding a retired pool? (DESIGN) */
            if (FDN_UNLIKELY(rc != 0 || pool_owned) && fdn__pools_cache_stale(&e->pool_cache))
                entry_renew(p, e);
        } else {
            rc = fdn_pools_get(p->pools, pool_name, &pool);
            pool_owned = true;
        }
        if (rc) {
            fdn_err_set(err, rc, "connection pool %s not found", pool_name);
            goto release;
        }
        int64_t to = opts->timeout_ms >= 0 ? opts->timeout_ms : (e ? e->timeout_ms : -1);
        if (to < 0)
            to = atomic_load_explicit(&p->default_timeout_ms, memory_order_relaxed);
        /* a timed call read the time already: it is the lease's start too (untimed, the
         * pool reads its coarse clock: cheaper than a precise read here) */
        rc = timed ? fdn__pool_checkout_at(pool, &w, to, p->clock, t0, err)
                   : fdn_pool_checkout(pool, &w, to, err);
        if (rc) {
            result->rejected_by = FDN_PROTECT_POOL;
            emit(p, "protection_triggered", key, FDN_PROTECT_POOL, rc, 0);
            goto release;
        }
    }

    /* 4. fn */
    rc = fn(w ? fdn_pool_worker_conn(w) : NULL, arg);
    result->ran = true;
    result->fn_rc = rc;
    if (w) {
        if (rc == FDN_EPOOL_BROKEN)
            fdn_pool_checkin_broken(pool, w);
        else
            fdn_pool_checkin(pool, w);
    }
    if (have_permit)
        fdn_breaker_record(b, &permit, rc);
    have_permit = false;

release:
    if (have_permit)
        fdn_breaker_release(b, &permit);
    if (pool_owned)
        fdn_pool_release(pool);
done:
    entry_unref(e);
    result->duration_ns = timed ? fdn_clock_mono_ns(p->clock) - t0 : 0;
    if (!result->ran && result->rejected_by == FDN_PROTECT_NONE && rc != 0)
        emit(p, "execute_exception", key, FDN_PROTECT_NONE, rc, result->duration_ns);
    emit(p, "execute_stop", key, FDN_PROTECT_NONE, rc, result->duration_ns);
    return rc;
}
