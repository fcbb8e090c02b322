/*
 * DESIGN: the shared registry's etcd backend (include/fdn/registry.h, "The shared registry"),
 * over the gateway client of storage/etcd_client.c.
 *
 * Keys: `<prefix>/<namespace>/<service>/<instance>`; values: {"endpoint", "owner", "meta"}
 * JSON. This process's entries carry its one lease.
 *
 * Cache: an immutable array of entry snapshots sorted by (service, instance) with a hash
 * index on the pair, published with RCU (`table`); a lookup is a read-side section, a probe
 * (a binary search when no instance is named) and a reference count increment: no lock, no
 * network. Each table holds one reference on each of its entries and
 * drops them when it is retired after a grace period. Only the watch thread (and create,
 * before it starts) publishes tables.
 *
 * Threads:
 *   - the watch thread (storage/etcd_watch.c): range the namespace at revision R (a fresh
 *     table), then watch from R + 1 and apply each message's events to a copy of the table. A
 *     watch cancelled by compaction (R + 1 is gone from etcd's history) is followed by a new
 *     range at once, which replaces the whole table, so no delete is missed. A watch that
 *     ended otherwise (etcd away) marks the cache stale and is made again from the cache's
 *     revision + 1 after a backoff (100 ms doubling to 1 s); stale is cleared when etcd
 *     confirms a watch. When etcd answers a watch with a revision below the cache's (it lost
 *     its data), the namespace is ranged again.
 *   - the lease thread: keepalive every TTL/3 (without own_mu: a registration that holds it
 *     across a slow etcd call does not delay the keepalive); on a failure it retries every
 *     RETRY_MS. Each keepalive is bounded by TTL/3, or by the time left before the lease
 *     expires when shorter (keepalive_bound_ms), whatever request_timeout_ms says: one stalled
 *     keepalive gives up in time for a retry instead of outwaiting the lease; the writes of a
 *     re-registration are bounded the same way, with the keepalives that fall due between
 *     them (keepalive_if_due). When
 *     etcd says the lease is gone (expired during an outage, revoked) it grants a new one and
 *     registers this process's entries again (create-if-absent: a name another process took in
 *     the meantime is given up and counted in `lost`).
 *   - this process is the source of truth for its entries while it lives: when the watch shows
 *     one of them (an entry under this process's lease) deleted or replaced (another tool, or
 *     etcd expiring the lease), or after a relist (which replaces deletes the watch missed),
 *     the watch thread wakes the lease thread with `verify`; its round (keepalive first: a
 *     lease found gone is granted again as above) writes again, create-if-absent, each entry
 *     the cache does not show under the lease with its create revision (reregister_all with
 *     only_missing). A registration of an entry this process holds does the same for that
 *     entry at once when the cache follows etcd and does not show it (register_again).
 *
 * Start while etcd is away (start_unreachable): the first range and the lease grant may fail
 * with a transport error; the cache is then empty at revision 0 (the watcher starts stale and
 * ranges first), the lease thread starts at its retry period, and a registration without a
 * lease is kept in the owned list with create_revision 0 (rereg_pending), to be written by the
 * lease thread's re-registration once a lease is granted.
 *
 * Every etcd call goes through the client's breaker (infra/etcd_guard.c).
 *
 * Locks, in order: own_mu -> mu. `own_mu` guards the lease id and the list of this process's
 * entries; it is held across the network calls of register, unregister and the lease
 * thread's grant and re-registration, so a registration never lands on a lease that is being
 * replaced (calls are bounded by the request timeout). The keepalive takes no lock: it needs only
 * the lease id, which only the lease thread changes once it runs (`lease_pub`); while the lease
 * lives the lease thread only tries own_mu (lease_round); a registration
 * that races with the loss of the lease gets etcd's "lease not found", answered as
 * FDN_EUNAVAILABLE. `mu` guards `stopping`, `kick`, `verify` and the
 * condition variable that the lease thread sleeps on and that register waits on for its own
 * write to reach the cache (`revision`). No lock is held while the watch thread parses or
 * publishes, and no user callback exists.
 *
 * Fork: the state is the opening process's (`pid`). A child of fork(2) has none of its threads
 * and does not own its lease: destroy there returns at once (a join would hang, a revoke would
 * delete the parent's entries, a lock a parent's thread held stays held), register and
 * unregister refuse, and the cache, which nothing follows there, is stale.
 *
 * Shutdown (fdn__regetcd_destroy): set stopping, wake the lease thread, stop and join the
 * watcher (fdn__etcd_watcher_destroy) and the lease thread, revoke the lease (one call bounded
 * by the timeout, made whatever the breaker's state; its entries disappear at once), free
 * everything.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"
#include "core/lock.h"
#include "core/rcu.h"
#include "core/sync.h"
#include "infra/etcd_guard.h"
#include "infra/registry_shared.h"
#include "logic/etcd_codec.h"
#include "storage/etcd_client.h"
#include "storage/etcd_watch.h"

#define DEFAULT_PREFIX     "/fdn/registry"
#define DEFAULT_TTL_MS     10000
#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_MAX_VALUE  65536
#define RETRY_MS           200

typedef struct table {
    struct rcu_head rcu;
    size_t n;
    size_t mask;                  /* index slots - 1 (a power of two >= 2 * capacity) */
    int64_t revision;             /* the etcd revision this table reflects (set by publish) */
    uint32_t *slots;              /* open-addressing index: 0 empty, else position + 1 */
    fdn_registry_instance_t *v[]; /* sorted by (service, instance); slots follow */
} table_t;

/* An entry this process registered. */
typedef struct owned {
    char *service;
    char *instance;
    char *value; /* the JSON written */
    size_t valuelen;
    int64_t create_revision;
} owned_t;

struct fdn__regetcd {
    fdn__etcd_t *cli;
    fdn__etcd_watcher_t *watcher;
    char *key_prefix; /* "<prefix>/<ns>/" */
    size_t key_prefixlen;
    char *range_end;
    size_t range_endlen;
    char owner[300];
    int64_t ttl_s;
    int64_t timeout_ms;
    size_t max_value;
    bool keep_when_down; /* start_unreachable: a registration without a lease waits for one */
    pid_t pid;           /* the process that opened it (a child of fork(2) is another) */

    _Atomic(table_t *) table;
    _Atomic int64_t revision;

    fdn__mutex_t own_mu;
    int64_t lease_id FDN_MEMBER_GUARDED_BY(own_mu);
    bool rereg_pending FDN_MEMBER_GUARDED_BY(own_mu);
    owned_t *owned FDN_MEMBER_GUARDED_BY(own_mu);
    size_t nowned FDN_MEMBER_GUARDED_BY(own_mu);
    size_t capowned FDN_MEMBER_GUARDED_BY(own_mu);
    _Atomic int64_t lease_pub; /* lease_id, for lock-free stats and the keepalive */
    _Atomic bool rereg_pub;    /* rereg_pending, for the keepalive's lock-free path */
    _Atomic bool lease_ok;
    _Atomic size_t nowned_pub;

    fdn__mutex_t mu;
    pthread_cond_t cv;
    bool stopping FDN_MEMBER_GUARDED_BY(mu);
    bool kick FDN_MEMBER_GUARDED_BY(mu); /* run a lease round now (lease_wake) */
    /* that round also checks this process's entries against the cache (lease_wake) */
    bool verify FDN_MEMBER_GUARDED_BY(mu);

    pthread_t lease_thr;
    bool lease_started;
    /* when the lease expires at the latest as far as this process knows (CLOCK_MONOTONIC ns):
     * the send time of the last keepalive (or grant) etcd answered + the TTL it answered. The
     * lease thread's (create's before it starts). */
    int64_t lease_expiry_ns;
    int64_t ka_sent_ns; /* the send time of the last keepalive or grant etcd answered (same) */

    _Atomic uint64_t bad_values, relists, lease_grants, reregistrations, lost, keepalive_errors;
};

/* The lease thread's period: a third of the TTL, so a keepalive that fails leaves two more
 * tries before the lease expires. */
static int64_t keepalive_interval_ms(int64_t ttl_s)
{
    return ttl_s * 1000 / 3;
}

/* The bound of a keepalive sent at now_ns: the keepalive interval, or the time left before the
 * lease expires when that is shorter, whatever request_timeout_ms says (the client bounds
 * every call by it too): a keepalive stalled on a slow etcd gives up while the lease still
 * has time for a retry, instead of waiting past the lease's expiry. When the time left is
 * gone (the lease expired, unless etcd extended it: a new leader does), the interval: etcd's
 * answer tells. */
static int64_t keepalive_bound_ms(const fdn__regetcd_t *r, int64_t now_ns)
{
    int64_t bound = keepalive_interval_ms(r->ttl_s);
    int64_t left_ms = (r->lease_expiry_ns - now_ns) / 1000000;
    if (left_ms > 0 && left_ms < bound)
        bound = left_ms;
    return bound;
}

/* When a lease that etcd answered with a TTL of ttl_s seconds (clamped: the number comes off
 * the network) for a request sent at sent_ns expires at the latest. */
static int64_t expiry_after(int64_t sent_ns, int64_t ttl_s)
{
    const int64_t year_s = 366LL * 86400;
    return sent_ns + (ttl_s < 0 ? 0 : ttl_s > year_s ? year_s : ttl_s) * 1000000000LL;
}

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Wake the lease thread for a round now rather than at its next period; verify: that round
 * also writes again this process's entries that the cache does not show (deleted by another
 * tool, or by etcd with a lost lease). Any thread; takes mu (own_mu may be held). */
static void lease_wake(fdn__regetcd_t *r, bool verify)
{
    fdn__mutex_lock(&r->mu);
    r->kick = true;
    r->verify = r->verify || verify;
    pthread_cond_broadcast(&r->cv);
    fdn__mutex_unlock(&r->mu);
}

/* Is this a child of fork(2) of the process that opened r? It has none of r's threads and r's
 * lease is its parent's. */
static bool forked(const fdn__regetcd_t *r)
{
    return getpid() != r->pid;
}

/* ---- entries ---------------------------------------------------------------------------- */

static int cmp_pair(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(x[0], y[0]);
}

int fdn__registry_instance_from_kv(const char *prefix, size_t prefixlen, const fdn__etcd_kv_t *kv,
                                   size_t max_value, fdn_registry_instance_t **out)
{
    *out = NULL;
    if (kv->keylen <= prefixlen || memcmp(kv->key, prefix, prefixlen) != 0 ||
        kv->valuelen > max_value)
        return FDN_EPARSE;
    const char *name = kv->key + prefixlen;
    size_t namelen = kv->keylen - prefixlen;
    if (memchr(name, '\0', namelen) != NULL)
        return FDN_EPARSE;
    const char *slash = memchr(name, '/', namelen);
    if (slash == NULL || slash == name || (size_t)(slash - name) + 1 == namelen)
        return FDN_EPARSE;
    size_t slen = (size_t)(slash - name), ilen = namelen - slen - 1;
    if (slen > FDN_REGISTRY_NAME_MAX || ilen > FDN_REGISTRY_NAME_MAX ||
        memchr(slash + 1, '/', ilen) != NULL)
        return FDN_EPARSE;
    json_error_t jerr;
    bool oom;
    json_t *root = fdn__json_loadb(kv->value, kv->valuelen, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (root == NULL)
        return oom ? FDN_ENOMEM : FDN_EPARSE;
    int rc = FDN_EPARSE;
    const json_t *ep = json_object_get(root, "endpoint");
    const json_t *ow = json_object_get(root, "owner");
    const json_t *meta = json_object_get(root, "meta");
    const char *pairs[2 * FDN_REGISTRY_META_MAX];
    size_t np = 0;
    if (!json_is_object(root) || !json_is_string(ep) || (ow != NULL && !json_is_string(ow)) ||
        (meta != NULL && !json_is_object(meta)) ||
        (meta != NULL && json_object_size(meta) > FDN_REGISTRY_META_MAX))
        goto out;
    size_t size = sizeof(fdn_registry_instance_t) + slen + 1 + ilen + 1;
    size += json_string_length(ep) + 1 + (ow ? json_string_length(ow) : 0) + 1;
    if (meta != NULL) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)meta, k, v)
        {
            if (!json_is_string(v) || k[0] == '\0')
                goto out;
            pairs[2 * np] = k;
            pairs[2 * np + 1] = json_string_value(v);
            size += strlen(k) + 1 + json_string_length(v) + 1;
            np++;
        }
    }
    /* strings with an embedded NUL would be cut: refuse them */
    if (strlen(json_string_value(ep)) != json_string_length(ep) ||
        (ow && strlen(json_string_value(ow)) != json_string_length(ow)))
        goto out;
    for (size_t k = 0; k < np; k++)
        if (strlen(pairs[2 * k + 1]) != json_string_length(json_object_get(meta, pairs[2 * k])))
            goto out;
    qsort(pairs, np, 2 * sizeof(pairs[0]), cmp_pair);
    size += 2 * np * sizeof(char *);
    fdn_registry_instance_t *i = fdn__malloc(size);
    if (i == NULL) {
        rc = FDN_ENOMEM;
        goto out;
    }
    atomic_init(&i->refs, 1);
    i->lease = kv->lease;
    i->create_revision = kv->create_revision;
    i->mod_revision = kv->mod_revision;
    i->hash = fdn__registry_instance_hash(name, slen, slash + 1, ilen);
    i->nmeta = np;
    i->meta = (const char **)(void *)(i + 1);
    char *p = (char *)(i->meta + 2 * np);
#define PUT(dst, s, n)                                                                             \
    do {                                                                                           \
        memcpy(p, (s), (n));                                                                       \
        p[(n)] = '\0';                                                                             \
        (dst) = p;                                                                                 \
        p += (n) + 1;                                                                              \
    } while (0)
    PUT(i->service, name, slen);
    PUT(i->instance, slash + 1, ilen);
    PUT(i->endpoint, json_string_value(ep), json_string_length(ep));
    PUT(i->owner, ow ? json_string_value(ow) : "", ow ? json_string_length(ow) : 0);
    for (size_t k = 0; k < np; k++) {
        PUT(i->meta[2 * k], pairs[2 * k], strlen(pairs[2 * k]));
        PUT(i->meta[2 * k + 1], pairs[2 * k + 1], strlen(pairs[2 * k + 1]));
    }
#undef PUT
    *out = i;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int fdn__registry_value_json(const char *endpoint, const char *owner,
                             const fdn_registry_meta_t *meta, size_t nmeta, char **out, size_t *len)
{
    *out = NULL;
    fdn__json_oom_clear(); /* json_string answers NULL for text that is not UTF-8 and on OOM */
    json_t *o = json_object(), *m = json_object();
    if (o == NULL || m == NULL) {
        json_decref(o);
        json_decref(m);
        return FDN_ENOMEM;
    }
    int bad = json_object_set_new(o, "endpoint", json_string(endpoint));
    bad |= json_object_set_new(o, "owner", json_string(owner));
    for (size_t i = 0; i < nmeta; i++) /* a later duplicate key wins */
        bad |= json_object_set_new(m, meta[i].key, json_string(meta[i].value));
    bad |= json_object_set_new(o, "meta", m);
    char *s = NULL;
    int rc = bad ? (fdn__json_oom() ? FDN_ENOMEM : FDN_EINVAL)
                 : fdn_json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS, &s, len);
    json_decref(o);
    *out = s;
    return rc;
}

/* ---- the cache ---------------------------------------------------------------------------- */

static int cmp_names(const char *s1, const char *i1, const char *s2, const char *i2)
{
    int c = strcmp(s1, s2);
    return c != 0 ? c : strcmp(i1, i2);
}

/* First index whose entry is >= (service, instance). */
static size_t lower_bound(fdn_registry_instance_t *const *v, size_t n, const char *service,
                          const char *instance)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_names(v[mid]->service, v[mid]->instance, service, instance) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static table_t *table_alloc(size_t cap)
{
    size_t nslots = 8;
    while (nslots < 2 * cap + 2)
        nslots *= 2;
    table_t *t = fdn__malloc(sizeof(*t) + cap * sizeof(t->v[0]) + nslots * sizeof(uint32_t));
    if (t != NULL) {
        t->n = 0;
        t->revision = 0;
        t->mask = nslots - 1;
        t->slots = (uint32_t *)(void *)(t->v + cap);
    }
    return t;
}

/* Fill the index of t (its entries are final). */
static void table_index(table_t *t)
{
    memset(t->slots, 0, (t->mask + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < t->n; i++) {
        size_t at = (size_t)t->v[i]->hash & t->mask;
        while (t->slots[at] != 0)
            at = (at + 1) & t->mask;
        t->slots[at] = (uint32_t)i + 1;
    }
}

/* The entry (service, instance) of t, or NULL. */
static fdn_registry_instance_t *table_find(const table_t *t, const char *service,
                                           const char *instance)
{
    uint64_t h = fdn__registry_instance_hash(service, strlen(service), instance, strlen(instance));
    for (size_t at = (size_t)h & t->mask;; at = (at + 1) & t->mask) {
        uint32_t s = t->slots[at];
        if (s == 0)
            return NULL;
        fdn_registry_instance_t *e = t->v[s - 1];
        if (e->hash == h && strcmp(e->service, service) == 0 && strcmp(e->instance, instance) == 0)
            return e;
    }
}

static void table_free_now(table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        fdn__registry_instance_unref(t->v[i]);
    fdn__free(t);
}

static void table_retire_cb(struct rcu_head *head)
{
    fdn__rcu_retired();
    _Static_assert(offsetof(table_t, rcu) == 0, "rcu head first");
    table_free_now((table_t *)(void *)head);
    fdn__rcu_done();
}

/* Publish t (watch thread or create) at revision rev and wake waiters on `revision`. The table
 * carries its revision: `revision` is stored after the table (a waiter that sees it finds the
 * table), so a reader that finds an entry may still read the previous `revision`, and the
 * stats take the table's. */
static void publish(fdn__regetcd_t *r, table_t *t, int64_t rev)
{
    table_t *cur = atomic_load_explicit(&r->table, memory_order_relaxed);
    t->revision = rev > 0 ? rev : cur != NULL ? cur->revision : 0;
    table_t *old = atomic_exchange_explicit(&r->table, t, memory_order_acq_rel);
    if (old != NULL)
        fdn__rcu_retire(&old->rcu, table_retire_cb);
    if (rev > 0) {
        atomic_store_explicit(&r->revision, rev, memory_order_release);
        fdn__mutex_lock(&r->mu);
        pthread_cond_broadcast(&r->cv);
        fdn__mutex_unlock(&r->mu);
    }
}

static int cmp_inst(const void *a, const void *b)
{
    const fdn_registry_instance_t *x = *(fdn_registry_instance_t *const *)a;
    const fdn_registry_instance_t *y = *(fdn_registry_instance_t *const *)b;
    return cmp_names(x->service, x->instance, y->service, y->instance);
}

/* Range the namespace and publish a fresh table. */
static int relist(fdn__regetcd_t *r, fdn_error_t *err)
{
    fdn__etcd_range_t rg;
    int rc = fdn__etcd_range(r->cli, r->key_prefix, r->key_prefixlen, r->range_end, r->range_endlen,
                             &rg, err);
    if (rc < 0)
        return rc;
    table_t *t = table_alloc(rg.n);
    if (t == NULL) {
        fdn__etcd_range_clear(&rg);
        return fdn_err_set(err, FDN_ENOMEM, "registry cache");
    }
    for (size_t i = 0; i < rg.n; i++) {
        fdn_registry_instance_t *inst = NULL;
        rc = fdn__registry_instance_from_kv(r->key_prefix, r->key_prefixlen, &rg.kvs[i],
                                            r->max_value, &inst);
        if (rc == FDN_ENOMEM) {
            table_free_now(t);
            fdn__etcd_range_clear(&rg);
            return fdn_err_set(err, FDN_ENOMEM, "registry cache");
        }
        if (rc < 0) {
            count(&r->bad_values);
            continue;
        }
        t->v[t->n++] = inst;
    }
    int64_t rev = rg.revision;
    fdn__etcd_range_clear(&rg);
    if (t->n > 1) /* etcd returns keys sorted by bytes; sort by (service, instance) anyway */
        qsort(t->v, t->n, sizeof(t->v[0]), cmp_inst);
    table_index(t);
    count(&r->relists); /* before the table: whoever sees it sees the relist counted */
    publish(r, t, rev);
    /* a delete this relist replaced a watch for (after an outage, a compaction) may have
     * been of this process's entries: the lease thread checks them against the new table */
    if (atomic_load_explicit(&r->nowned_pub, memory_order_relaxed) > 0)
        lease_wake(r, true);
    return 0;
}

/* Apply one watch message's events to a copy of the table. */
static int apply_events(fdn__regetcd_t *r, const fdn__etcd_watch_msg_t *m)
{
    table_t *cur = atomic_load_explicit(&r->table, memory_order_acquire);
    table_t *t = table_alloc(cur->n + m->nevents);
    if (t == NULL)
        return FDN_ENOMEM;
    memcpy(t->v, cur->v, cur->n * sizeof(t->v[0]));
    t->n = cur->n;
    for (size_t i = 0; i < t->n; i++)
        fdn__registry_instance_ref(t->v[i]);
    /* this process's lease: an entry under it that an event deletes or replaces (another
     * tool, or etcd expiring the lease) makes the lease thread check this process's entries */
    int64_t mine = atomic_load_explicit(&r->lease_pub, memory_order_relaxed);
    bool mine_gone = false;
    for (size_t e = 0; e < m->nevents; e++) {
        const fdn__etcd_kv_t *kv = &m->events[e].kv;
        fdn_registry_instance_t *inst = NULL;
        int rc = FDN_EPARSE;
        if (m->events[e].type == FDN__ETCD_PUT) {
            rc = fdn__registry_instance_from_kv(r->key_prefix, r->key_prefixlen, kv, r->max_value,
                                                &inst);
            if (rc == FDN_ENOMEM) {
                table_free_now(t);
                return rc;
            }
            if (rc < 0)
                count(&r->bad_values);
        }
        /* the key's names, to find what it replaces or deletes */
        const char *name = kv->key + r->key_prefixlen;
        size_t namelen = kv->keylen > r->key_prefixlen ? kv->keylen - r->key_prefixlen : 0;
        const char *slash = namelen ? memchr(name, '/', namelen) : NULL;
        /* not an entry's key (no '/', or a NUL that would cut the names short and find another
         * entry): nothing of it is in the cache */
        if (slash == NULL || memchr(name, '\0', namelen) != NULL)
            continue;
        char svc[FDN_REGISTRY_NAME_MAX + 1], ins[FDN_REGISTRY_NAME_MAX + 1];
        size_t slen = (size_t)(slash - name), ilen = namelen - slen - 1;
        if (slen > FDN_REGISTRY_NAME_MAX || ilen > FDN_REGISTRY_NAME_MAX) {
            fdn__registry_instance_unref(inst);
            continue;
        }
        memcpy(svc, name, slen);
        svc[slen] = '\0';
        memcpy(ins, slash + 1, ilen);
        ins[ilen] = '\0';
        size_t at = lower_bound(t->v, t->n, svc, ins);
        bool found = at < t->n && cmp_names(t->v[at]->service, t->v[at]->instance, svc, ins) == 0;
        if (found && mine != 0 && t->v[at]->lease == mine &&
            (inst == NULL || inst->lease != mine ||
             inst->create_revision != t->v[at]->create_revision))
            mine_gone = true;
        if (inst != NULL && found) {
            fdn__registry_instance_unref(t->v[at]);
            t->v[at] = inst;
        } else if (inst != NULL) {
            memmove(&t->v[at + 1], &t->v[at], (t->n - at) * sizeof(t->v[0]));
            t->v[at] = inst;
            t->n++;
        } else if (found) { /* a delete, or a put of a value that is no entry */
            fdn__registry_instance_unref(t->v[at]);
            memmove(&t->v[at], &t->v[at + 1], (t->n - at - 1) * sizeof(t->v[0]));
            t->n--;
        }
    }
    table_index(t);
    publish(r, t, m->revision);
    if (mine_gone) /* after the publish: the lease thread checks against this table */
        lease_wake(r, true);
    return 0;
}

/* ---- the watch thread (storage/etcd_watch.c) ----------------------------------------------- */

static int watch_relist(void *user)
{
    return relist(user, NULL);
}

static int watch_message(void *user, const fdn__etcd_watch_msg_t *m)
{
    if (m->nevents > 0 && apply_events(user, m) < 0)
        return FDN__ETCD_WATCHER_RELIST; /* out of memory: this message is lost to the cache */
    return FDN__ETCD_WATCHER_GO_ON;
}

static int64_t watch_revision(void *user)
{
    fdn__regetcd_t *r = user;
    return atomic_load_explicit(&r->revision, memory_order_acquire);
}

static const fdn__etcd_watcher_ops_t WATCH_OPS = {watch_relist, watch_message, watch_revision};

void fdn__regetcd_pause_watch(fdn__regetcd_t *r, bool pause)
{
    fdn__etcd_watcher_pause(r->watcher, pause);
}

/* ---- the lease thread ---------------------------------------------------------------------- */

static char *key_of(const fdn__regetcd_t *r, const char *service, const char *instance, size_t *len)
{
    size_t sl = strlen(service), il = strlen(instance);
    size_t n = r->key_prefixlen + sl + 1 + il;
    char *k = fdn__malloc(n + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, r->key_prefix, r->key_prefixlen);
    memcpy(k + r->key_prefixlen, service, sl);
    k[r->key_prefixlen + sl] = '/';
    memcpy(k + r->key_prefixlen + sl + 1, instance, il);
    k[n] = '\0';
    *len = n;
    return k;
}

static void owned_clear(owned_t *o)
{
    fdn__free(o->service);
    fdn__free(o->instance);
    fdn__free(o->value);
}

static void owned_remove(fdn__regetcd_t *r, size_t i) FDN_REQUIRES(r->own_mu)
{
    owned_clear(&r->owned[i]);
    r->owned[i] = r->owned[--r->nowned];
    atomic_store_explicit(&r->nowned_pub, r->nowned, memory_order_relaxed);
}

/* Keep a registration of this process (the caller made room: nowned < capowned): service and
 * instance copied, value (vlen bytes) taken. false when out of memory: nothing kept, and value
 * is still the caller's. */
static bool owned_add(fdn__regetcd_t *r, const char *service, const char *instance, char *value,
                      size_t vlen, int64_t create_revision) FDN_REQUIRES(r->own_mu)
{
    owned_t *o = &r->owned[r->nowned];
    o->service = fdn__strdup(service);
    o->instance = fdn__strdup(instance);
    if (o->service == NULL || o->instance == NULL) {
        fdn__free(o->service);
        fdn__free(o->instance);
        return false;
    }
    o->value = value;
    o->valuelen = vlen;
    o->create_revision = create_revision;
    r->nowned++;
    atomic_store_explicit(&r->nowned_pub, r->nowned, memory_order_relaxed);
    return true;
}

/* Does the cache show owned entry o as this process wrote it (under lease, with o's create
 * revision)? A cache that lags behind etcd may still show an entry just deleted: its watch
 * then tells (apply_events). */
static bool cache_shows(fdn__regetcd_t *r, const owned_t *o, int64_t lease)
{
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&r->table, memory_order_acquire);
    const fdn_registry_instance_t *e = table_find(t, o->service, o->instance);
    bool yes =
        e != NULL && lease != 0 && e->lease == lease && e->create_revision == o->create_revision;
    fdn__rcu_read_end();
    return yes;
}

/* Write owned entry i again under the current lease, if absent (the put bounded by timeout_ms
 * when shorter than the request timeout; 0: that). 1: it is in etcd now (written:
 * *rev gets its revision and it is counted in reregistrations; or found under this lease, *rev
 * 0); 0: another process holds the name: given up (removed from the list, counted in lost),
 * its record in *holder (may be NULL; else the caller clears it); < 0: an etcd error (err),
 * nothing changed. */
static int rewrite_owned(fdn__regetcd_t *r, size_t i, int64_t timeout_ms, int64_t *rev,
                         fdn__etcd_kv_t *holder, fdn_error_t *err) FDN_REQUIRES(r->own_mu)
{
    owned_t *o = &r->owned[i];
    *rev = 0;
    size_t klen;
    char *key = key_of(r, o->service, o->instance, &klen);
    if (key == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "registering %s/%s", o->service, o->instance);
    bool created = false;
    fdn__etcd_kv_t ex;
    int rc = fdn__etcd_put_if_absent_within(r->cli, timeout_ms, key, klen, o->value, o->valuelen,
                                            r->lease_id, &created, &ex, rev, err);
    fdn__free(key);
    if (rc < 0)
        return rc;
    if (created) {
        o->create_revision = *rev;
        count(&r->reregistrations);
        rc = 1;
    } else if (ex.key != NULL && ex.lease == r->lease_id) {
        o->create_revision = ex.create_revision;
        *rev = 0;
        rc = 1;
    } else {
        count(&r->lost);
        owned_remove(r, i);
        *rev = 0;
        rc = 0;
    }
    if (rc == 0 && holder != NULL)
        *holder = ex;
    else
        fdn__etcd_kv_clear(&ex);
    return rc;
}

/* Between the writes of a re-registration (lease thread): the keepalive, when one is due, so
 * that a long re-registration (many entries, a slow etcd) does not outlast the lease it writes
 * under. 0, or < 0: the keepalive failed (counted) or found the lease gone (FDN_EUNAVAILABLE):
 * the re-registration stops there, and the next round (RETRY_MS) sees to the lease. */
static int keepalive_if_due(fdn__regetcd_t *r) FDN_REQUIRES(r->own_mu)
{
    int64_t now = fdn__mono_now_ns();
    if (now - r->ka_sent_ns < keepalive_interval_ms(r->ttl_s) * 1000000)
        return 0;
    int64_t ttl = 0;
    int rc = fdn__etcd_lease_keepalive(r->cli, r->lease_id, keepalive_bound_ms(r, now), &ttl, NULL);
    if (rc < 0)
        count(&r->keepalive_errors);
    if (rc < 0 || ttl == 0) {
        atomic_store_explicit(&r->lease_ok, false, memory_order_relaxed);
        return rc < 0 ? rc : FDN_EUNAVAILABLE;
    }
    r->lease_expiry_ns = expiry_after(now, ttl);
    r->ka_sent_ns = now;
    return 0;
}

/* Register the owned entries again under the current lease: every one, or (only_missing) those
 * the cache does not show. Each write is bounded as a keepalive is (keepalive_bound_ms), and
 * keepalives go out between them when due: the lease thread sends no other meanwhile. Returns 0
 * or the first etcd error (the rest stay pending). */
static int reregister_all(fdn__regetcd_t *r, bool only_missing) FDN_REQUIRES(r->own_mu)
{
    for (size_t i = 0; i < r->nowned;) {
        if (only_missing && cache_shows(r, &r->owned[i], r->lease_id)) {
            i++;
            continue;
        }
        int rc = keepalive_if_due(r);
        if (rc < 0)
            return rc;
        int64_t rev;
        rc = rewrite_owned(r, i, keepalive_bound_ms(r, fdn__mono_now_ns()), &rev, NULL, NULL);
        if (rc < 0)
            return rc;
        if (rc == 1)
            i++; /* (else the entry was removed: the last one moved to i) */
    }
    return 0;
}

/* Keep a round's check of this process's entries (verify) for the next round, which runs at
 * its time (no wake-up). */
static void verify_later(fdn__regetcd_t *r)
{
    fdn__mutex_lock(&r->mu);
    r->verify = true;
    fdn__mutex_unlock(&r->mu);
}

/* One round of the lease thread; returns when to run the next one (ms). The keepalive is sent
 * without own_mu, which register and unregister hold across their etcd calls; own_mu is taken
 * only when the lease is gone, entries wait to be registered again or are to be checked
 * (verify), and while the lease lives only if it is free (else the round is made again at
 * RETRY_MS): waiting for it would stall the keepalives behind a stalled registration. */
static int64_t lease_round(fdn__regetcd_t *r, bool verify)
{
    int64_t period = keepalive_interval_ms(r->ttl_s);
    /* only this thread changes the lease once it runs */
    int64_t id = atomic_load_explicit(&r->lease_pub, memory_order_relaxed);
    bool gone = false;
    if (id != 0) {
        int64_t ttl = 0;
        int64_t sent = fdn__mono_now_ns();
        int rc = fdn__etcd_lease_keepalive(r->cli, id, keepalive_bound_ms(r, sent), &ttl, NULL);
        if (rc < 0) {
            count(&r->keepalive_errors);
            atomic_store_explicit(&r->lease_ok, false, memory_order_relaxed);
            if (verify) /* the entries are checked at the retry */
                verify_later(r);
            return RETRY_MS;
        }
        gone = ttl == 0; /* expired while etcd was away, or revoked */
        if (!gone) {
            r->lease_expiry_ns = expiry_after(sent, ttl);
            r->ka_sent_ns = sent;
        }
        atomic_store_explicit(&r->lease_ok, !gone, memory_order_relaxed);
        if (!gone && !verify && !atomic_load_explicit(&r->rereg_pub, memory_order_relaxed))
            return period;
    }
    if (id != 0 && !gone) {
        /* the lease lives (a round to register entries again or to check them): never wait
         * for own_mu, which a registration may hold across a stalled etcd call, or the
         * keepalives would stall with it; the round is made again at the retry period */
        if (!fdn__mutex_trylock(&r->own_mu)) {
            if (verify)
                verify_later(r);
            return RETRY_MS;
        }
    } else {
        fdn__mutex_lock(&r->own_mu);
    }
    if (gone) {
        r->lease_id = 0;
        atomic_store_explicit(&r->lease_pub, 0, memory_order_relaxed);
    }
    if (r->lease_id == 0) {
        int64_t nid = 0, granted = 0, sent = fdn__mono_now_ns();
        if (fdn__etcd_lease_grant(r->cli, r->ttl_s, &nid, &granted, NULL) < 0) {
            fdn__mutex_unlock(&r->own_mu);
            return RETRY_MS;
        }
        r->lease_expiry_ns = expiry_after(sent, granted);
        r->ka_sent_ns = sent;
        r->lease_id = nid;
        atomic_store_explicit(&r->lease_pub, nid, memory_order_relaxed);
        atomic_store_explicit(&r->lease_ok, true, memory_order_relaxed);
        count(&r->lease_grants);
        r->rereg_pending = r->nowned > 0;
    }
    if (r->rereg_pending && reregister_all(r, false) == 0)
        r->rereg_pending = false;
    else if (!r->rereg_pending && verify && reregister_all(r, true) < 0)
        r->rereg_pending = true; /* etcd failed: all of them again at the retry */
    atomic_store_explicit(&r->rereg_pub, r->rereg_pending, memory_order_relaxed);
    bool retry = r->rereg_pending;
    fdn__mutex_unlock(&r->own_mu);
    return retry ? RETRY_MS : period;
}

/* Sleep ms unless stopping or kicked. Returns true when stopping; *verify: the round is to
 * check this process's entries (lease_wake). */
static bool lease_nap(fdn__regetcd_t *r, int64_t ms, bool *verify)
{
    int64_t dl = fdn__deadline_after_ms(ms);
    fdn__mutex_lock(&r->mu);
    while (!r->stopping && !r->kick && fdn__cond_wait_until(&r->cv, &r->mu, dl) == 0) {
    }
    bool stop = r->stopping;
    r->kick = false;
    *verify = r->verify;
    r->verify = false;
    fdn__mutex_unlock(&r->mu);
    return stop;
}

void fdn__regetcd_keepalive_now(fdn__regetcd_t *r)
{
    lease_wake(r, false);
}

static void *lease_main(void *arg)
{
    fdn__regetcd_t *r = arg;
    int64_t next_ms = atomic_load_explicit(&r->lease_pub, memory_order_relaxed) != 0
                          ? keepalive_interval_ms(r->ttl_s)
                          : RETRY_MS;
    bool verify = false;
    while (!lease_nap(r, next_ms, &verify))
        next_ms = lease_round(r, verify);
    return NULL;
}

/* ---- create / destroy ------------------------------------------------------------------ */

/* Does rc say that etcd did not answer (rather than answered wrongly)? */
static bool unreachable(int rc)
{
    return rc == FDN_ECONNREFUSED || rc == FDN_ETIMEDOUT || rc == FDN_ENETWORK;
}

void fdn__regetcd_destroy(void *state)
{
    fdn__regetcd_t *r = state;
    if (r == NULL)
        return;
    /* a child of fork: joining threads it does not have would hang, revoking the lease would
     * delete the parent's entries, and a lock a parent's thread held at the fork stays held:
     * nothing of it is touched (its memory is left to the child's exit) */
    if (forked(r))
        return;
    fdn__cond_raise(&r->cv, &r->mu, &r->stopping);
    fdn__etcd_watcher_destroy(r->watcher);
    if (r->lease_started)
        pthread_join(r->lease_thr, NULL);
    fdn__mutex_lock(&r->own_mu);
    /* one revoke, past the breaker (unguarded): an open breaker would reject it, and this
     * process's entries would stay visible to the fleet until the TTL ends although it is
     * going away. One call bounded by the request timeout does not pile up on a dead etcd
     * (what the breaker is for), and the breaker is not told (it is destroyed with the
     * client). */
    if (r->lease_id != 0 && r->cli != NULL)
        (void)fdn__etcd_lease_revoke(r->cli, r->lease_id, true, NULL);
    for (size_t i = 0; i < r->nowned; i++)
        owned_clear(&r->owned[i]);
    fdn__free(r->owned);
    r->owned = NULL;
    r->nowned = 0;
    fdn__mutex_unlock(&r->own_mu);
    /* no reader can hold the table now (the registry is being destroyed) */
    table_free_now(atomic_load_explicit(&r->table, memory_order_acquire));
    fdn__etcd_destroy(r->cli);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->own_mu);
    fdn__free(r->key_prefix);
    fdn__free(r->range_end);
    fdn__free(r);
}

int fdn__regetcd_create(fdn__regetcd_t **out, const char *ns, const fdn_registry_etcd_opts_t *o,
                        fdn_error_t *err)
{
    *out = NULL;
    int64_t ttl_ms = o->lease_ttl_ms ? o->lease_ttl_ms : DEFAULT_TTL_MS;
    int64_t timeout = o->request_timeout_ms ? o->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    if (ttl_ms < 1000 || ttl_ms > 86400000LL)
        return fdn_err_set(err, FDN_EINVAL, "lease_ttl_ms must be 1000..86400000 (got %lld)",
                           (long long)ttl_ms);
    if (timeout < 1 || timeout > 600000)
        return fdn_err_set(err, FDN_EINVAL, "request_timeout_ms must be 1..600000 (got %lld)",
                           (long long)timeout);
    const char *prefix = o->prefix ? o->prefix : DEFAULT_PREFIX;
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen > 1024)
        return fdn_err_set(err, FDN_EINVAL, "etcd key prefix is longer than 1024 bytes");
    fdn__regetcd_t *r = fdn__calloc(1, sizeof(*r));
    if (r == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd registry");
    pthread_mutex_init(&r->own_mu, NULL);
    pthread_mutex_init(&r->mu, NULL);
    (void)fdn__cond_init_mono(&r->cv);
    r->pid = getpid();
    r->ttl_s = (ttl_ms + 999) / 1000;
    r->timeout_ms = timeout;
    r->max_value = o->max_value_bytes ? o->max_value_bytes : DEFAULT_MAX_VALUE;
    if (o->owner != NULL) {
        snprintf(r->owner, sizeof(r->owner), "%s", o->owner);
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0)
            snprintf(host, sizeof(host), "unknown");
        host[sizeof(host) - 1] = '\0';
        snprintf(r->owner, sizeof(r->owner), "%s:%ld", host, (long)getpid());
    }
    int rc = fdn__etcd_ns_keys(prefix, plen, ns, &r->key_prefix, &r->key_prefixlen, &r->range_end,
                               &r->range_endlen);
    if (rc < 0) {
        fdn_err_set(err, rc, "etcd registry");
        goto fail;
    }
    FDN_ASSERT(r->range_endlen > 0); /* the prefix ends in '/' */
    rc = fdn__etcd_create(&r->cli, o->url, timeout, err);
    if (rc == 0 && fdn__etcd_guard_breaker(r->cli, "registry") != 0)
        rc = fdn_err_set(err, FDN_ENOMEM, "etcd registry: breaker");
    if (rc < 0)
        goto fail;
    table_t *empty = table_alloc(0);
    if (empty == NULL) {
        rc = fdn_err_set(err, FDN_ENOMEM, "etcd registry");
        goto fail;
    }
    table_index(empty);
    atomic_init(&r->table, empty);
    /* etcd not answering: an error, or (start_unreachable) an empty stale cache and no lease,
     * which the watch thread and the lease thread fill in once etcd answers */
    bool degraded = o->version >= 2 && o->start_unreachable;
    r->keep_when_down = degraded;
    rc = relist(r, err);
    int64_t id = 0, granted = 0, sent = fdn__mono_now_ns();
    if (rc == 0)
        rc = fdn__etcd_lease_grant(r->cli, r->ttl_s, &id, &granted, err);
    if (rc < 0 && !(degraded && unreachable(rc)))
        goto fail;
    if (rc == 0) {
        count(&r->lease_grants);
        fdn__mutex_lock(&r->own_mu);
        r->lease_id = id;
        fdn__mutex_unlock(&r->own_mu);
        r->lease_expiry_ns = expiry_after(sent, granted);
        r->ka_sent_ns = sent;
        atomic_store_explicit(&r->lease_pub, id, memory_order_relaxed);
        atomic_store_explicit(&r->lease_ok, true, memory_order_relaxed);
    }
    rc =
        fdn__etcd_watcher_create(&r->watcher, r->cli, r->key_prefix, r->key_prefixlen, r->range_end,
                                 r->range_endlen, &WATCH_OPS, r, "fdn-reg-watch", err);
    if (rc < 0)
        goto fail;
    if (pthread_create(&r->lease_thr, NULL, lease_main, r) != 0) {
        rc = fdn_err_set(err, FDN_EAGAIN, "etcd registry: cannot start the lease thread");
        goto fail;
    }
    r->lease_started = true;
    pthread_setname_np(r->lease_thr, "fdn-reg-lease");
    *out = r;
    return 0;
fail:
    fdn__regetcd_destroy(r);
    return rc;
}

/* ---- operations ------------------------------------------------------------------------------ */

/* Wait (bounded by the request timeout) until the cache reflects revision rev. */
static void wait_revision(fdn__regetcd_t *r, int64_t rev)
{
    int64_t dl = fdn__deadline_after_ms(r->timeout_ms);
    fdn__mutex_lock(&r->mu);
    while (!r->stopping && atomic_load_explicit(&r->revision, memory_order_acquire) < rev) {
        if (fdn__cond_wait_until(&r->cv, &r->mu, dl) != 0)
            break;
    }
    fdn__mutex_unlock(&r->mu);
}

static ssize_t owned_find(const fdn__regetcd_t *r, const char *service, const char *instance)
    FDN_REQUIRES(r->own_mu)
{
    for (size_t i = 0; i < r->nowned; i++)
        if (strcmp(r->owned[i].service, service) == 0 &&
            strcmp(r->owned[i].instance, instance) == 0)
            return (ssize_t)i;
    return -1;
}

/* The answer to a registration whose put etcd refused with "lease not found": the lease
 * expired or was revoked, and the lease thread has not granted a new one yet: a gap, not a
 * refusal. The lease thread is woken to learn it from its keepalive now (not up to TTL/3
 * later), grant a new lease and register this process's entries again; the caller retries. */
static int lease_gap(fdn__regetcd_t *r, const char *service, const char *instance, int64_t lease,
                     fdn_error_t *err)
{
    lease_wake(r, false);
    return fdn_err_set(err, FDN_EUNAVAILABLE,
                       "registering %s/%s: this process's etcd lease %lld is gone (expired or "
                       "revoked) and a new one is not granted yet: retry",
                       service, instance, (long long)lease);
}

/* The answer to a registration of a name that ex (the key's record) shows another process
 * holds: FDN_EEXIST naming the holder. */
static int held_by_another(const fdn__regetcd_t *r, const char *service, const char *instance,
                           const fdn__etcd_kv_t *ex, fdn_error_t *err)
{
    fdn_registry_instance_t *holder = NULL;
    const char *who = "another process";
    if (ex->key != NULL &&
        fdn__registry_instance_from_kv(r->key_prefix, r->key_prefixlen, ex, SIZE_MAX, &holder) == 0)
        who = holder->owner;
    int rc = fdn_err_set(err, FDN_EEXIST, "%s/%s is already registered by %s (lease %lld)", service,
                         instance, who, (long long)ex->lease);
    fdn_err_add_context(err, "service", "%s", service);
    fdn_err_add_context(err, "instance", "%s", instance);
    fdn__registry_instance_unref(holder);
    return rc;
}

/* Registering again owned entry i (same value), which the cache, following etcd, does not show
 * (deleted by another tool, or with a lost lease): write it again now, as the lease thread would
 * once the watch tells it. 0 (in etcd now; *rev: its revision when written), FDN_EEXIST
 * (another process took the name: given up), or an etcd error. */
static int register_again(fdn__regetcd_t *r, size_t i, const char *service, const char *instance,
                          int64_t *rev, fdn_error_t *err) FDN_REQUIRES(r->own_mu)
{
    fdn__etcd_kv_t ex;
    memset(&ex, 0, sizeof(ex));
    fdn_error_t perr = FDN_ERROR_INIT;
    int rc = rewrite_owned(r, i, 0, rev, &ex, &perr);
    if (rc == 1)
        return 0;
    if (rc == 0) {
        rc = held_by_another(r, service, instance, &ex, err);
        fdn__etcd_kv_clear(&ex);
        return rc;
    }
    if (rc == FDN_EEXTERNAL && strstr(perr.message, "lease not found") != NULL)
        return lease_gap(r, service, instance, r->lease_id, err);
    if (err != NULL)
        *err = perr;
    return rc;
}

int fdn__regetcd_register(fdn__regetcd_t *r, const char *service, const char *instance,
                          const char *endpoint, const fdn_registry_meta_t *meta, size_t nmeta,
                          fdn_error_t *err)
{
    if (forked(r))
        return fdn_err_set(err, FDN_EINVAL,
                           "registering %s/%s: this shared registry was opened by process %ld, "
                           "not by this child of fork(2) (its lease is the parent's)",
                           service, instance, (long)r->pid);
    char *value = NULL;
    size_t vlen = 0;
    int rc = fdn__registry_value_json(endpoint, r->owner, meta, nmeta, &value, &vlen);
    if (rc == FDN_EINVAL)
        return fdn_err_set(err, rc, "endpoint or metadata of %s/%s is not UTF-8", service,
                           instance);
    if (rc < 0)
        return fdn_err_set(err, rc, "registering %s/%s", service, instance);
    if (vlen > r->max_value) {
        fdn__free(value);
        return fdn_err_set(err, FDN_ETOO_LARGE,
                           "entry %s/%s is %zu bytes, more than max_value_bytes (%zu)", service,
                           instance, vlen, r->max_value);
    }
    size_t klen = 0;
    char *key = key_of(r, service, instance, &klen);
    if (key == NULL) {
        fdn__free(value);
        return fdn_err_set(err, FDN_ENOMEM, "registering %s/%s", service, instance);
    }
    int64_t rev = 0;
    fdn__mutex_lock(&r->own_mu);
    ssize_t mine = owned_find(r, service, instance);
    if (mine >= 0) {
        bool same =
            r->owned[mine].valuelen == vlen && memcmp(r->owned[mine].value, value, vlen) == 0;
        bool pending = r->owned[mine].create_revision == 0; /* kept while etcd is away */
        if (same && !pending && r->lease_id != 0 && !fdn__etcd_watcher_stale(r->watcher) &&
            !cache_shows(r, &r->owned[mine], r->lease_id)) {
            rc = register_again(r, (size_t)mine, service, instance, &rev, err);
            fdn__mutex_unlock(&r->own_mu);
            if (rc == 0 && rev > 0 && !fdn__etcd_watcher_stale(r->watcher))
                wait_revision(r, rev);
            goto out;
        }
        fdn__mutex_unlock(&r->own_mu);
        if (!same)
            rc = fdn_err_set(err, FDN_EEXIST,
                             "%s/%s is already registered by this process with another "
                             "endpoint or metadata (unregister it first)",
                             service, instance);
        else if (pending)
            rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                             "etcd unreachable: %s/%s is kept and registered once etcd answers",
                             service, instance);
        else
            rc = 0;
        goto out;
    }
    if (r->lease_id == 0 && !r->keep_when_down) {
        fdn__mutex_unlock(&r->own_mu);
        rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                         "registering %s/%s: no etcd lease now (etcd unreachable)", service,
                         instance);
        goto out;
    }
    if (r->nowned == r->capowned) {
        size_t cap = r->capowned ? 2 * r->capowned : 8;
        owned_t *n = fdn__realloc(r->owned, cap * sizeof(*n));
        if (n == NULL) {
            fdn__mutex_unlock(&r->own_mu);
            rc = fdn_err_set(err, FDN_ENOMEM, "registering %s/%s", service, instance);
            goto out;
        }
        r->owned = n;
        r->capowned = cap;
    }
    if (r->lease_id == 0) { /* keep_when_down: kept, registered once a lease is granted */
        if (!owned_add(r, service, instance, value, vlen, 0)) {
            rc = fdn_err_set(err, FDN_ENOMEM, "registering %s/%s", service, instance);
        } else {
            value = NULL; /* owned now */
            r->rereg_pending = true;
            atomic_store_explicit(&r->rereg_pub, true, memory_order_relaxed);
            rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                             "etcd unreachable: %s/%s is kept and registered once etcd answers",
                             service, instance);
        }
        fdn__mutex_unlock(&r->own_mu);
        goto out;
    }
    bool created = false;
    fdn__etcd_kv_t ex;
    fdn_error_t perr = FDN_ERROR_INIT;
    rc = fdn__etcd_put_if_absent(r->cli, key, klen, value, vlen, r->lease_id, &created, &ex, &rev,
                                 &perr);
    if (rc == FDN_EEXTERNAL && strstr(perr.message, "lease not found") != NULL) {
        rc = lease_gap(r, service, instance, r->lease_id, err);
    } else if (rc < 0 && err != NULL) {
        *err = perr;
    }
    if (rc == 0 && (created || (ex.key != NULL && ex.lease == r->lease_id))) {
        int64_t crev = created ? rev : ex.create_revision;
        if (owned_add(r, service, instance, value, vlen, crev)) {
            value = NULL; /* owned now */
        } else {
            /* registered in etcd but not remembered: it would not come back after a lease
             * loss. Give it up rather than keep an entry this process cannot restore. */
            (void)fdn__etcd_delete_if_created(r->cli, key, klen, crev, &created, NULL);
            rc = fdn_err_set(err, FDN_ENOMEM, "registering %s/%s", service, instance);
        }
    } else if (rc == 0) {
        rc = held_by_another(r, service, instance, &ex, err);
    }
    fdn__mutex_unlock(&r->own_mu);
    fdn__etcd_kv_clear(&ex);
    if (rc == 0 && rev > 0 && !fdn__etcd_watcher_stale(r->watcher))
        wait_revision(r, rev); /* this process's lookups see its own registration */
out:
    fdn__free(value);
    fdn__free(key);
    return rc;
}

int fdn__regetcd_unregister(fdn__regetcd_t *r, const char *service, const char *instance,
                            fdn_error_t *err)
{
    if (forked(r))
        return fdn_err_set(err, FDN_EINVAL,
                           "unregistering %s/%s: this shared registry was opened by process %ld, "
                           "not by this child of fork(2) (its lease is the parent's)",
                           service, instance, (long)r->pid);
    int rc = 0;
    fdn__mutex_lock(&r->own_mu);
    ssize_t i = owned_find(r, service, instance);
    if (i >= 0 && r->owned[i].create_revision == 0) {
        owned_remove(r, (size_t)i); /* kept while etcd was away: never written */
    } else if (i >= 0) {
        size_t klen;
        char *key = key_of(r, service, instance, &klen);
        bool deleted = false;
        rc = key ? fdn__etcd_delete_if_created(r->cli, key, klen, r->owned[i].create_revision,
                                               &deleted, err)
                 : fdn_err_set(err, FDN_ENOMEM, "unregistering %s/%s", service, instance);
        fdn__free(key);
        if (rc == 0)
            owned_remove(r, (size_t)i);
    } else if (i < 0 && r->lease_id != 0) {
        /* not in the list, but maybe under this process's lease: a registration whose answer
         * was lost (it timed out after etcd applied it), kept alive by the keepalives */
        size_t klen;
        char *key = key_of(r, service, instance, &klen);
        bool deleted = false;
        rc = key ? fdn__etcd_delete_if_lease(r->cli, key, klen, r->lease_id, &deleted, err)
                 : fdn_err_set(err, FDN_ENOMEM, "unregistering %s/%s", service, instance);
        fdn__free(key);
    }
    fdn__mutex_unlock(&r->own_mu);
    return rc;
}

int fdn__regetcd_lookup(fdn__regetcd_t *r, const char *service, const char *instance,
                        fdn_registry_instance_t **out)
{
    fdn_registry_instance_t *found = NULL;
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&r->table, memory_order_acquire);
    if (instance != NULL) {
        found = table_find(t, service, instance);
    } else {
        size_t at = lower_bound(t->v, t->n, service, "");
        if (at < t->n && strcmp(t->v[at]->service, service) == 0)
            found = t->v[at];
    }
    if (found != NULL)
        fdn__registry_instance_ref(found);
    fdn__rcu_read_end();
    *out = found;
    return found ? 0 : FDN_ESERVICE_NOT_FOUND;
}

int fdn__regetcd_list(fdn__regetcd_t *r, const char *service, fdn_registry_instance_t ***out,
                      size_t *n)
{
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&r->table, memory_order_acquire);
    size_t lo = 0, hi = t->n;
    if (service != NULL) {
        lo = lower_bound(t->v, t->n, service, "");
        hi = lo;
        while (hi < t->n && strcmp(t->v[hi]->service, service) == 0)
            hi++;
    }
    fdn_registry_instance_t **v = NULL;
    if (hi > lo) {
        v = fdn__malloc((hi - lo) * sizeof(*v));
        if (v == NULL) {
            fdn__rcu_read_end();
            return FDN_ENOMEM;
        }
        for (size_t i = lo; i < hi; i++) {
            v[i - lo] = t->v[i];
            fdn__registry_instance_ref(t->v[i]);
        }
    }
    fdn__rcu_read_end();
    *out = v;
    *n = hi - lo;
    return 0;
}

void fdn__regetcd_stats(fdn__regetcd_t *r, fdn_registry_shared_stats_t *s)
{
    s->stale = fdn__regetcd_stale(r);
    s->lease_ok = atomic_load_explicit(&r->lease_ok, memory_order_relaxed);
    s->lease_id = atomic_load_explicit(&r->lease_pub, memory_order_relaxed);
    s->lease_ttl_s = r->ttl_s;
    fdn__rcu_read_begin();
    const table_t *t = atomic_load_explicit(&r->table, memory_order_acquire);
    s->entries = t->n;
    s->revision = t->revision; /* the revision of those entries */
    fdn__rcu_read_end();
    s->owned = atomic_load_explicit(&r->nowned_pub, memory_order_relaxed);
    s->bad_values = atomic_load_explicit(&r->bad_values, memory_order_relaxed);
    s->relists = atomic_load_explicit(&r->relists, memory_order_relaxed);
    s->compactions = fdn__etcd_watcher_compactions(r->watcher);
    s->watch_errors = fdn__etcd_watcher_errors(r->watcher);
    s->lease_grants = atomic_load_explicit(&r->lease_grants, memory_order_relaxed);
    s->reregistrations = atomic_load_explicit(&r->reregistrations, memory_order_relaxed);
    s->lost = atomic_load_explicit(&r->lost, memory_order_relaxed);
    s->keepalive_errors = atomic_load_explicit(&r->keepalive_errors, memory_order_relaxed);
}

bool fdn__regetcd_stale(fdn__regetcd_t *r)
{
    return forked(r) || fdn__etcd_watcher_stale(r->watcher); /* a child's cache follows nothing */
}

fdn__etcd_t *fdn__regetcd_client(fdn__regetcd_t *r)
{
    return r->cli;
}
