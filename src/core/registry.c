/*
 * DESIGN: the service registry (reference §6), one object per runtime (= one namespace).
 *
 * Data: `table` is an immutable open-addressing hash of entry pointers, published with RCU
 * (liburcu-bp). Entries are immutable once published and ref-counted: the current table
 * holds one reference on each of its entries ("membership"); fdn_registry_acquire takes
 * another.
 *
 * Threads and locks:
 *   - Readers (lookup, meta_get, acquire, count, list) take no lock: urcu_bp_read_lock, one
 *     acquire load of `table`, probe, copy out, urcu_bp_read_unlock.
 *   - Writers (register, unregister, release_owner) serialise on `wmu`, build a new table
 *     from the current one (O(n); registrations are rare), publish it with a release store,
 *     and hand the old table to call_rcu together with the entries it lost. After the grace
 *     period the callback drops those entries' membership references and frees the old
 *     table. No user callback runs under `wmu` (the event hook is called after unlocking).
 *   - fdn_registry_acquire increments an entry's count inside the read-side section; that is
 *     safe because membership is dropped only after a grace period, so the count is ≥ 1
 *     while any reader can still see the entry.
 *   - destroy waits for pending callbacks (urcu_bp_barrier) and frees the last table.
 *
 *   - fdn_registry_wait sleeps on the futex word `published` (core/sync.h, fdn__word_*),
 *     which a successful register bumps after publishing its table and releasing `wmu`,
 *     then wakes the word when `waiters` says someone sleeps on it. A waiter counts itself
 *     in `waiters`, reads `published`, looks the name up, and sleeps only while `published`
 *     still holds what it read, so no wake-up is lost (all four accesses seq_cst: a register
 *     that reads no waiter bumped before the waiter read `published`, and its table is then
 *     visible to the waiter's lookup). A futex word takes no lock and needs no destroy: a
 *     child of fork(2) whose parent had a thread waiting can still destroy the registry (a
 *     pthread condition counts its waiters, and pthread_cond_destroy in the child waited for
 *     ever for the parent's).
 *
 * Fork: liburcu-bp's registry lock and its call_rcu thread do not survive fork(2) by
 *   themselves (a child's deferred frees never ran and destroy's barrier hung). The first
 *   create registers, once per process, the fork handlers of core/rcu.c.
 *
 * Shared part (fdn_registry_open, infra/registry_shared.c): an opaque state and its destroy
 *   function, set once right after create; destroy calls it first (it stops its threads).
 *   The core never looks inside.
 *
 * Invariants: one store, insert-if-absent under `wmu` (no check-then-insert race); a name
 * appears at most once in a table; table->n ≤ table->cap / 2.
 */
#include <fdn/registry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/hash.h"
#include "core/rcu.h"
#include "core/registry_int.h"

struct fdn_registry_entry {
    _Atomic uint64_t refs;
    uint64_t hash;
    void *handle;
    uint64_t owner;
    int64_t registered_ns;
    size_t nmeta;
    const char **meta; /* 2 * nmeta pointers: key, value, sorted by key */
    char *service;
    /* pointer array and strings follow in the same allocation */
};

typedef struct table {
    struct rcu_head rcu;
    size_t cap; /* power of two */
    size_t n;
    fdn_registry_entry_t **dropped; /* entries to unref when this table is retired */
    size_t ndropped;
    fdn_registry_entry_t *slots[]; /* cap slots */
} table_t;

struct fdn_registry {
    _Atomic(table_t *) table;
    fdn__mutex_t wmu;
    _Atomic uint32_t published; /* registrations published (fdn_registry_wait's futex word) */
    _Atomic uint32_t waiters;   /* threads in fdn_registry_wait */
    fdn_clock_t *clock;
    fdn_registry_event_fn on_event;
    void *event_user;
    char *name;
    void *shared;                        /* the shared part's state, or NULL */
    void (*shared_destroy)(void *state); /* stops and frees it */
};

static _Atomic uint64_t g_next_owner = 1;

static void entry_unref(fdn_registry_entry_t *e)
{
    if (e == NULL)
        return;
    uint64_t prev = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    FDN_ASSERT(prev >= 1); /* a count never goes below zero */
    if (prev == 1)
        fdn__free(e);
}

static table_t *table_new(size_t cap)
{
    table_t *t = fdn__calloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
    if (t != NULL)
        t->cap = cap;
    return t;
}

static void table_insert(table_t *t, fdn_registry_entry_t *e)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)e->hash & mask;
    while (t->slots[i] != NULL)
        i = (i + 1) & mask;
    t->slots[i] = e;
    t->n++;
    FDN_ASSERT(t->n <= t->cap / 2); /* cap_for sized it: at most half full */
}

static fdn_registry_entry_t *table_find(const table_t *t, const char *name, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        fdn_registry_entry_t *e = t->slots[i];
        if (e == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->service, name) == 0)
            return e;
    }
}

static size_t cap_for(size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n + 2)
        cap *= 2;
    return cap;
}

static void retire_cb(struct rcu_head *head)
{
    fdn__rcu_retired();
    _Static_assert(offsetof(table_t, rcu) == 0, "rcu head first");
    table_t *t = (table_t *)(void *)head;
    for (size_t i = 0; i < t->ndropped; i++)
        entry_unref(t->dropped[i]);
    fdn__free(t->dropped);
    fdn__free(t);
    fdn__rcu_done();
}

/* Publish next (writer, under wmu) and retire the old table with the entries it dropped
 * (the array `dropped` is taken over). */
static void publish(fdn_registry_t *reg, table_t *next, fdn_registry_entry_t **dropped,
                    size_t ndropped) FDN_REQUIRES(reg->wmu)
{
    table_t *old = atomic_load_explicit(&reg->table, memory_order_relaxed);
    atomic_store_explicit(&reg->table, next, memory_order_release);
    old->dropped = dropped;
    old->ndropped = ndropped;
    fdn__rcu_retire(&old->rcu, retire_cb);
}

static int64_t now_ns(const fdn_registry_t *reg)
{
    return fdn_clock_mono_ns(reg->clock);
}

int fdn_registry_create(fdn_registry_t **out, const fdn_registry_opts_t *opts)
{
    fdn__rcu_setup();
    if (out == NULL)
        return FDN_EINVAL;
    *out = NULL;
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    if (opts != NULL) {
        if (opts->version == 0 || opts->version > FDN_REGISTRY_OPTS_VERSION)
            return FDN_EINVAL;
        o = *opts;
    }
    fdn_registry_t *reg = fdn__calloc(1, sizeof(*reg));
    if (reg == NULL)
        return FDN_ENOMEM;
    reg->name = fdn__strdup(o.name ? o.name : "default");
    table_t *t = table_new(8);
    if (reg->name == NULL || t == NULL) {
        fdn__free(reg->name);
        fdn__free(t);
        fdn__free(reg);
        return FDN_ENOMEM;
    }
    pthread_mutex_init(&reg->wmu, NULL);
    atomic_init(&reg->published, 0);
    atomic_init(&reg->waiters, 0);
    reg->clock = o.clock;
    reg->on_event = o.on_event;
    reg->event_user = o.event_user;
    atomic_init(&reg->table, t);
    *out = reg;
    return 0;
}

void fdn_registry_destroy(fdn_registry_t *reg)
{
    if (reg == NULL)
        return;
    if (reg->shared != NULL)
        reg->shared_destroy(reg->shared);
    /* every retired table of this registry is freed once pending callbacks ran */
    fdn__rcu_barrier();
    table_t *t = atomic_load_explicit(&reg->table, memory_order_acquire);
    for (size_t i = 0; i < t->cap; i++)
        entry_unref(t->slots[i]);
    fdn__free(t);
    pthread_mutex_destroy(&reg->wmu);
    fdn__free(reg->name);
    fdn__free(reg);
}

void fdn__registry_set_shared(fdn_registry_t *reg, void *state, void (*destroy)(void *state))
{
    FDN_ASSERT(reg->shared == NULL && state != NULL && destroy != NULL);
    reg->shared = state;
    reg->shared_destroy = destroy;
}

void *fdn__registry_shared(const fdn_registry_t *reg)
{
    return reg != NULL ? reg->shared : NULL;
}

bool fdn_registry_is_shared(const fdn_registry_t *reg)
{
    return fdn__registry_shared(reg) != NULL;
}

const char *fdn_registry_name(const fdn_registry_t *reg)
{
    return reg ? reg->name : "";
}

uint64_t fdn_registry_owner_new(void)
{
    return atomic_fetch_add_explicit(&g_next_owner, 1, memory_order_relaxed);
}

static int cmp_meta(const void *a, const void *b)
{
    const fdn_registry_meta_t *x = a, *y = b;
    return strcmp(x->key, y->key);
}

/* Build an entry in one allocation. Metadata is sorted by key; for duplicate keys the last
 * given wins. */
static int entry_build(fdn_registry_entry_t **out, const char *service, uint64_t h, void *handle,
                       uint64_t owner, const fdn_registry_meta_t *meta, size_t nmeta, int64_t now)
{
    fdn_registry_meta_t sorted[FDN_REGISTRY_META_MAX];
    size_t k = 0;
    /* keep the last occurrence of each key */
    for (size_t i = 0; i < nmeta; i++) {
        bool later = false;
        for (size_t j = i + 1; j < nmeta; j++)
            if (strcmp(meta[i].key, meta[j].key) == 0)
                later = true;
        if (!later)
            sorted[k++] = meta[i];
    }
    if (k > 1)
        qsort(sorted, k, sizeof(sorted[0]), cmp_meta);
    size_t slen = strlen(service) + 1;
    size_t size = sizeof(fdn_registry_entry_t) + 2 * k * sizeof(char *) + slen;
    for (size_t i = 0; i < k; i++)
        size += strlen(sorted[i].key) + 1 + strlen(sorted[i].value) + 1;
    fdn_registry_entry_t *e = fdn__malloc(size);
    if (e == NULL)
        return FDN_ENOMEM;
    atomic_init(&e->refs, 1);
    e->hash = h;
    e->handle = handle;
    e->owner = owner;
    e->registered_ns = now;
    e->nmeta = k;
    e->meta = (const char **)(void *)(e + 1);
    char *p = (char *)(e->meta + 2 * k);
    e->service = p;
    memcpy(p, service, slen);
    p += slen;
    for (size_t i = 0; i < k; i++) {
        size_t kl = strlen(sorted[i].key) + 1, vl = strlen(sorted[i].value) + 1;
        memcpy(p, sorted[i].key, kl);
        e->meta[2 * i] = p;
        p += kl;
        memcpy(p, sorted[i].value, vl);
        e->meta[2 * i + 1] = p;
        p += vl;
    }
    *out = e;
    return 0;
}

static bool name_ok(const char *service)
{
    return service != NULL && service[0] != '\0' &&
           strnlen(service, FDN_REGISTRY_NAME_MAX + 1) <= FDN_REGISTRY_NAME_MAX;
}

static void emit(fdn_registry_t *reg, fdn_registry_op_t op, const char *service, int rc, int64_t d)
    FDN_EXCLUDES(reg->wmu)
{
    if (reg->on_event != NULL)
        reg->on_event(op, reg->name, service ? service : "", rc, d, reg->event_user);
}

int fdn_registry_register(fdn_registry_t *reg, const char *service, void *handle, uint64_t owner,
                          const fdn_registry_meta_t *meta, size_t nmeta, fdn_error_t *err)
{
    if (reg == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry is NULL");
    int rc = 0;
    if (!name_ok(service)) {
        rc =
            fdn_err_set(err, FDN_EINVAL, "service name must be 1..%d bytes", FDN_REGISTRY_NAME_MAX);
        goto out;
    }
    if (handle == NULL) {
        rc = fdn_err_set(err, FDN_EINVAL, "handle for service %s is NULL", service);
        goto out;
    }
    if (nmeta > FDN_REGISTRY_META_MAX) {
        rc = fdn_err_set(err, FDN_EINVAL, "at most %d metadata pairs, not %zu",
                         FDN_REGISTRY_META_MAX, nmeta);
        goto out;
    }
    if (nmeta > 0 && meta == NULL) {
        rc = fdn_err_set(err, FDN_EINVAL, "metadata is NULL but nmeta is %zu", nmeta);
        goto out;
    }
    for (size_t i = 0; i < nmeta; i++) {
        if (meta[i].key == NULL || meta[i].key[0] == '\0' || meta[i].value == NULL) {
            rc = fdn_err_set(err, FDN_EINVAL, "metadata pair %zu has no key or value", i);
            goto out;
        }
    }
    uint64_t h = fdn__hash_str(service);
    fdn_registry_entry_t *e = NULL;
    rc = entry_build(&e, service, h, handle, owner, meta, nmeta, now_ns(reg));
    if (rc < 0) {
        fdn_err_set(err, rc, "registering service %s", service);
        goto out;
    }
    fdn__mutex_lock(&reg->wmu);
    table_t *cur = atomic_load_explicit(&reg->table, memory_order_relaxed);
    fdn_registry_entry_t *old = table_find(cur, service, h);
    if (old != NULL) {
        void *oh = old->handle;
        uint64_t oo = old->owner;
        fdn__mutex_unlock(&reg->wmu);
        fdn__free(e);
        if (oh == handle && oo == owner) {
            rc = 0;
        } else {
            rc = fdn_err_set(err, FDN_EEXIST,
                             "Service %s already registered in namespace %s (handle %p)", service,
                             reg->name, oh);
            fdn_err_add_context(err, "namespace", "%s", reg->name);
            fdn_err_add_context(err, "service", "%s", service);
            fdn_err_add_context(err, "existing_owner", "%llu", (unsigned long long)oo);
        }
        goto out;
    }
    table_t *next = table_new(cap_for(cur->n + 1));
    if (next == NULL) {
        fdn__mutex_unlock(&reg->wmu);
        fdn__free(e);
        rc = fdn_err_set(err, FDN_ENOMEM, "registering service %s", service);
        goto out;
    }
    for (size_t i = 0; i < cur->cap; i++)
        if (cur->slots[i] != NULL)
            table_insert(next, cur->slots[i]);
    FDN_ASSERT(table_find(next, service, h) == NULL); /* a name appears at most once */
    table_insert(next, e);
    publish(reg, next, NULL, 0);
    fdn__mutex_unlock(&reg->wmu);
    atomic_fetch_add_explicit(&reg->published, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&reg->waiters, memory_order_seq_cst) != 0)
        fdn__word_wake_all(&reg->published);
out:
    emit(reg, FDN_REGISTRY_OP_REGISTER, service, rc, 0);
    return rc;
}

static int not_found(fdn_registry_t *reg, const char *service, fdn_error_t *err)
{
    if (err == NULL)
        return FDN_ESERVICE_NOT_FOUND;
    fdn_err_set(err, FDN_ESERVICE_NOT_FOUND, "Service %s not found in namespace %s", service,
                reg->name);
    fdn_err_add_context(err, "namespace", "%s", reg->name);
    fdn_err_add_context(err, "service", "%s", service);
    return FDN_ESERVICE_NOT_FOUND;
}

/* The lock-free read path: true when found (handle copied into *out when out != NULL). */
static bool find_handle(fdn_registry_t *reg, const char *service, void **out)
{
    uint64_t h = fdn__hash_str(service);
    void *handle = NULL;
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&reg->table, memory_order_acquire);
    const fdn_registry_entry_t *e = table_find(t, service, h);
    if (e != NULL)
        handle = e->handle;
    fdn__rcu_read_end();
    if (e != NULL && out != NULL)
        *out = handle;
    return e != NULL;
}

int fdn_registry_lookup(fdn_registry_t *reg, const char *service, void **out, fdn_error_t *err)
{
    if (reg == NULL || service == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry or service is NULL");
    int64_t t0 = reg->on_event ? now_ns(reg) : 0;
    int rc = find_handle(reg, service, out) ? 0 : not_found(reg, service, err);
    if (reg->on_event != NULL) {
        int64_t d = now_ns(reg) - t0;
        emit(reg, FDN_REGISTRY_OP_LOOKUP, service, rc, d > 0 ? d : 1);
    }
    return rc;
}

int fdn_registry_wait(fdn_registry_t *reg, const char *service, int64_t timeout_ms, void **out,
                      fdn_error_t *err)
{
    if (reg == NULL || service == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry or service is NULL");
    if (!name_ok(service)) /* no registration can have it: waiting would never end */
        return fdn_err_set(err, FDN_EINVAL, "service name must be 1..%d bytes",
                           FDN_REGISTRY_NAME_MAX);
    if (find_handle(reg, service, out))
        return 0;
    int rc = FDN_ETIMEDOUT;
    if (timeout_ms != 0) {
        int64_t dl = fdn__deadline_after_ms(timeout_ms);
        atomic_fetch_add_explicit(&reg->waiters, 1, memory_order_seq_cst);
        for (;;) {
            /* read before the lookup: a registration the lookup misses changes it */
            uint32_t seen = atomic_load_explicit(&reg->published, memory_order_seq_cst);
            if (find_handle(reg, service, out)) {
                rc = 0;
                break;
            }
            if (fdn__word_wait_until(&reg->published, seen, dl) != 0) {
                rc = find_handle(reg, service, out) ? 0 : FDN_ETIMEDOUT;
                break;
            }
        }
        atomic_fetch_sub_explicit(&reg->waiters, 1, memory_order_relaxed);
    }
    if (rc == 0)
        return 0;
    fdn_err_set(err, FDN_ETIMEDOUT, "Service %s not registered in namespace %s within %lld ms",
                service, reg->name, (long long)timeout_ms);
    fdn_err_add_context(err, "namespace", "%s", reg->name);
    fdn_err_add_context(err, "service", "%s", service);
    return FDN_ETIMEDOUT;
}

int fdn_registry_meta_get(fdn_registry_t *reg, const char *service, const char *key, char *buf,
                          size_t cap, size_t *needed)
{
    if (reg == NULL || service == NULL || key == NULL)
        return FDN_EINVAL;
    int rc = FDN_ESERVICE_NOT_FOUND;
    uint64_t h = fdn__hash_str(service);
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&reg->table, memory_order_acquire);
    const fdn_registry_entry_t *e = table_find(t, service, h);
    if (e != NULL) {
        rc = FDN_ENOENT;
        for (size_t i = 0; i < e->nmeta; i++) {
            if (strcmp(e->meta[2 * i], key) != 0)
                continue;
            const char *v = e->meta[2 * i + 1];
            size_t need = strlen(v) + 1;
            if (needed != NULL)
                *needed = need;
            if (buf != NULL && cap >= need) {
                memcpy(buf, v, need);
                rc = 0;
            } else {
                if (buf != NULL && cap > 0)
                    buf[0] = '\0';
                rc = FDN_ENOBUFS;
            }
            break;
        }
    }
    fdn__rcu_read_end();
    return rc;
}

int fdn_registry_acquire(fdn_registry_t *reg, const char *service, fdn_registry_entry_t **out,
                         fdn_error_t *err)
{
    if (out != NULL)
        *out = NULL;
    if (reg == NULL || service == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry, service or out is NULL");
    uint64_t h = fdn__hash_str(service);
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&reg->table, memory_order_acquire);
    fdn_registry_entry_t *e = table_find(t, service, h);
    if (e != NULL)
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    fdn__rcu_read_end();
    *out = e;
    return e ? 0 : not_found(reg, service, err);
}

void fdn_registry_entry_release(fdn_registry_entry_t *e)
{
    entry_unref(e);
}

const char *fdn_registry_entry_service(const fdn_registry_entry_t *e)
{
    return e ? e->service : "";
}

void *fdn_registry_entry_handle(const fdn_registry_entry_t *e)
{
    return e ? e->handle : NULL;
}

uint64_t fdn_registry_entry_owner(const fdn_registry_entry_t *e)
{
    return e ? e->owner : 0;
}

int64_t fdn_registry_entry_registered_ns(const fdn_registry_entry_t *e)
{
    return e ? e->registered_ns : 0;
}

size_t fdn_registry_entry_meta_count(const fdn_registry_entry_t *e)
{
    return e ? e->nmeta : 0;
}

int fdn_registry_entry_meta_at(const fdn_registry_entry_t *e, size_t i, const char **key,
                               const char **value)
{
    if (e == NULL || i >= e->nmeta)
        return FDN_ENOENT;
    if (key != NULL)
        *key = e->meta[2 * i];
    if (value != NULL)
        *value = e->meta[2 * i + 1];
    return 0;
}

const char *fdn_registry_entry_meta(const fdn_registry_entry_t *e, const char *key)
{
    if (e == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < e->nmeta; i++)
        if (strcmp(e->meta[2 * i], key) == 0)
            return e->meta[2 * i + 1];
    return NULL;
}

/* Writer: publish a table without the entries matching (service) or (owner). Returns the
 * number removed or FDN_ENOMEM. */
static int remove_where(fdn_registry_t *reg, const char *service, uint64_t owner,
                        fdn_registry_entry_t ***held_out, size_t *nheld)
{
    fdn__mutex_lock(&reg->wmu);
    table_t *cur = atomic_load_explicit(&reg->table, memory_order_relaxed);
    size_t nrm = 0;
    for (size_t i = 0; i < cur->cap; i++) {
        fdn_registry_entry_t *e = cur->slots[i];
        if (e != NULL && (service ? strcmp(e->service, service) == 0 : e->owner == owner))
            nrm++;
    }
    if (nrm == 0) {
        fdn__mutex_unlock(&reg->wmu);
        return 0;
    }
    table_t *next = table_new(cap_for(cur->n - nrm));
    fdn_registry_entry_t **dropped = fdn__malloc(nrm * sizeof(*dropped));
    if (next == NULL || dropped == NULL) {
        fdn__mutex_unlock(&reg->wmu);
        fdn__free(next);
        fdn__free(dropped);
        return FDN_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < cur->cap; i++) {
        fdn_registry_entry_t *e = cur->slots[i];
        if (e == NULL)
            continue;
        if (service ? strcmp(e->service, service) == 0 : e->owner == owner)
            dropped[k++] = e;
        else
            table_insert(next, e);
    }
    FDN_ASSERT(k == nrm && next->n == cur->n - nrm);
    if (held_out != NULL) {
        /* references the caller reports the removals with, after wmu (best effort: without
         * memory for them the removal stands, unreported) */
        fdn_registry_entry_t **held = fdn__malloc(k * sizeof(*held));
        for (size_t i = 0; held != NULL && i < k; i++) {
            atomic_fetch_add_explicit(&dropped[i]->refs, 1, memory_order_relaxed);
            held[i] = dropped[i];
        }
        *held_out = held;
        *nheld = held != NULL ? k : 0;
    }
    publish(reg, next, dropped, k);
    fdn__mutex_unlock(&reg->wmu);
    return (int)k;
}

int fdn_registry_unregister(fdn_registry_t *reg, const char *service)
{
    if (reg == NULL || service == NULL)
        return FDN_EINVAL;
    int rc = remove_where(reg, service, 0, NULL, NULL);
    rc = rc < 0 ? rc : 0;
    emit(reg, FDN_REGISTRY_OP_UNREGISTER, service, rc, 0);
    return rc;
}

int fdn_registry_release_owner(fdn_registry_t *reg, uint64_t owner)
{
    if (reg == NULL)
        return FDN_EINVAL;
    if (owner == 0)
        return 0;
    fdn_registry_entry_t **held = NULL;
    size_t nheld = 0;
    int rc = remove_where(reg, NULL, owner, reg->on_event != NULL ? &held : NULL, &nheld);
    /* one unregister event per entry removed, as fdn_registry_unregister reports its own */
    for (size_t i = 0; i < nheld; i++) {
        emit(reg, FDN_REGISTRY_OP_UNREGISTER, held[i]->service, 0, 0);
        entry_unref(held[i]);
    }
    fdn__free(held);
    return rc;
}

size_t fdn_registry_count(fdn_registry_t *reg)
{
    if (reg == NULL)
        return 0;
    fdn__rcu_read_begin();
    size_t n = atomic_load_explicit(&reg->table, memory_order_acquire)->n;
    fdn__rcu_read_end();
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Inside a read-side section. */
static const char *slot_name_at(const void *table, size_t i)
{
    const fdn_registry_entry_t *e = ((const table_t *)table)->slots[i];
    return e != NULL ? e->service : NULL;
}

int fdn_registry_list(fdn_registry_t *reg, char ***out_names, size_t *out_count)
{
    if (out_names != NULL)
        *out_names = NULL;
    if (out_count != NULL)
        *out_count = 0;
    if (reg == NULL || out_names == NULL || out_count == NULL)
        return FDN_EINVAL;
    char **names = NULL;
    size_t n = 0;
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&reg->table, memory_order_acquire);
    int rc = fdn__strv_pack(t, t->cap, slot_name_at, &names, &n);
    fdn__rcu_read_end();
    if (rc < 0)
        return rc;
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_str);
    *out_names = names;
    *out_count = n;
    return 0;
}
