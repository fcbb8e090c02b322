/*
 * DESIGN: the telemetry service: event entries, handlers, measure/span, retention, service
 * lifecycle. Families live in telemetry_family.c, snapshots and JSON in telemetry_snapshot.c, the
 * metric primitives in metrics.c, the Prometheus writer in telemetry_prometheus.c.
 *
 * Threads: any thread may call any function; execute runs entirely on the caller's thread
 * (aggregation and handlers), so an emit followed by a snapshot from the same thread always
 * sees it. One optional background thread (started by the service start hook) runs
 * retention every cleanup_interval_ns, waiting on the injected clock.
 *
 * Locks: tm->mu serialises writers (entry insertion and removal, new measurement slots,
 * families, handler sets, snapshots). tm->life_mu serialises start/stop. Order: life_mu →
 * mu. No user handler ever runs with either held.
 *
 * Hot path (execute): no lock. Event entries live in an RCU lock-free hash table (urcu-bp
 * flavour, so user threads need no registration). A thread-local direct-mapped cache keyed
 * by (tm, the caller's name pointer) remembers the entry; a hit is confirmed by strcmp and by
 * tm->epoch, which changes whenever an entry is unlinked, so a stale pointer is never used
 * (the epoch is read inside the read-side section, and unlinked entries are freed by
 * call_rcu only after epoch changed). A miss hashes the name and looks it up; the first
 * emission of a name validates it and inserts the entry under tm->mu (bounded by
 * max_events; names beyond are counted in dropped_events). Aggregation writes only
 * thread-sharded metrics. Handlers are an immutable RCU-published array; execute calls the
 * matching ones inside the read-side section, which is not a lock: writers never wait for
 * readers (all frees go through call_rcu, so a handler may attach, detach or run cleanup).
 *
 * Handler failure policy: a handler returning < 0 increments
 * fdn_telemetry_handler_failures_total and its consecutive-failure count and emits
 * `foundation.telemetry.handler_failure` (not re-emitted for failures while dispatching that
 * event on the same thread, so a failing catch-all handler cannot recurse). At
 * opts.handler_max_failures consecutive failures the handler is detached (reported with
 * detached=true and counted in fdn_telemetry_handlers_detached_total). A success
 * resets the consecutive count.
 *
 * Retention: an entry's activity is sampled (emission count compared with the last seen
 * value) at each cleanup and snapshot; entries whose count did not move for retention_ns are
 * unlinked and freed after a grace period. So idle time is measured on the injected clock
 * with the precision of the cleanup interval, and the hot path reads no clock.
 *
 * Fork: create registers liburcu-bp's fork handlers (fdn__rcu_setup), so a child keeps
 * running retire callbacks and its destroy returns.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <fdn/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "services/telemetry_int.h"
#include "services/telemetry_process.h"
#include "core/rcu.h" /* after telemetry_int.h: <urcu-bp.h> first, for its rcu_* names */

#define TM_CACHE_SIZE 32u

typedef struct tm_cache_slot {
    const fdn_telemetry_t *tm;
    uint64_t epoch;
    const char *ptr;
    tm_entry_t *e;
} tm_cache_slot_t;

static _Thread_local tm_cache_slot_t tcache[TM_CACHE_SIZE];
static _Thread_local int tls_in_failure;
static _Atomic uint64_t g_epoch = 1;

static uint64_t new_epoch(void)
{
    return atomic_fetch_add_explicit(&g_epoch, 1, memory_order_relaxed) + 1;
}

/* now - then for two readings of one monotonic clock (then <= now), without the signed
 * overflow of a plain subtraction: a manual clock may start anywhere and move far (the exact
 * difference of two int64 values always fits a uint64). 0 when then > now. */
static uint64_t elapsed_ns(int64_t now, int64_t then)
{
    return now > then ? (uint64_t)now - (uint64_t)then : 0;
}

bool fdn_telemetry_event_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > FDN_TELEMETRY_NAME_MAX)
        return false;
    bool prev_dot = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c >= 0x80) {
            size_t n = fdn__utf8_seq((const unsigned char *)name + i, len - i);
            if (n == 0)
                return false;
            i += n - 1;
            prev_dot = false;
            continue;
        }
        if (c == '.') {
            if (prev_dot)
                return false;
            prev_dot = true;
        } else {
            prev_dot = false;
        }
    }
    return !prev_dot;
}

/* ------------------------------------------------------------------------------------ */
/* Entries                                                                               */

static void slot_free(tm_slot_t *s)
{
    if (s == NULL)
        return;
    switch (s->kind) {
    case FDN_TELEMETRY_COUNTER:
        fdn__counter_free(s->u.c);
        break;
    case FDN_TELEMETRY_HISTOGRAM:
        fdn__histogram_free(s->u.h);
        break;
    default:
        fdn__gauge_free(s->u.g);
        break;
    }
    fdn__free(s->key);
    fdn__free(s);
}

static void entry_free(tm_entry_t *e)
{
    if (e == NULL)
        return;
    for (unsigned i = 0; i < TM_MAX_KEYS; i++)
        slot_free(atomic_load_explicit(&e->slots[i], memory_order_relaxed));
    for (size_t i = 0; i < e->nmeta; i++) {
        fdn__free((char *)e->meta[i].key);
        fdn__free((char *)e->meta[i].value);
    }
    fdn__free(e->meta);
    fdn__counter_free(e->count);
    fdn__free(e->name);
    fdn__free(e);
}

char fdn__tm_tsan_grace;

static void entry_free_rcu(struct rcu_head *h)
{
    fdn__rcu_retired(); /* what the retiring thread did before fdn__rcu_retire */
    fdn__tsan_acquire(&fdn__tm_tsan_grace);
    entry_free(TM_CONTAINER_OF(h, tm_entry_t, rcu));
    fdn__rcu_done();
}

static int entry_match(struct cds_lfht_node *node, const void *key)
{
    tm_entry_t *e = TM_CONTAINER_OF(node, tm_entry_t, node);
    fdn__tsan_acquire(e); /* pairs with the release before cds_lfht_add (uninstrumented) */
    return strcmp(e->name, (const char *)key) == 0;
}

/* The length of s cut to at most max bytes, at the start of a UTF-8 character (a cut inside
 * one would keep a broken sequence, shown as U+FFFD in JSON). */
static size_t cut_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == max && s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
            n--;
    return n;
}

static tm_entry_t *entry_new(fdn_telemetry_t *tm, const char *name, size_t len, unsigned long hash,
                             const fdn_telemetry_meta_t *meta, size_t nmeta) FDN_REQUIRES(tm->mu)
{
    tm_entry_t *e = fdn__calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->name = fdn__strndup(name, len);
    e->count = fdn__counter_new();
    if (e->name == NULL || e->count == NULL)
        goto oom;
    e->len = len;
    e->hash = hash;
    size_t nm = 0;
    for (size_t i = 0; i < nmeta; i++)
        if (meta[i].key != NULL && meta[i].value != NULL)
            nm++;
    nm = FDN_MIN(nm, (size_t)TM_MAX_META);
    if (nm > 0) {
        e->meta = fdn__calloc(nm, sizeof(*e->meta));
        if (e->meta == NULL)
            goto oom;
        for (size_t i = 0; i < nmeta && e->nmeta < nm; i++) {
            if (meta[i].key == NULL || meta[i].value == NULL)
                continue;
            char *k = fdn__strndup(meta[i].key, cut_len(meta[i].key, FDN_TELEMETRY_NAME_MAX));
            char *v = fdn__strndup(meta[i].value, cut_len(meta[i].value, TM_META_VAL_MAX));
            if (k == NULL || v == NULL) {
                fdn__free(k);
                fdn__free(v);
                goto oom;
            }
            e->meta[e->nmeta].key = k;
            e->meta[e->nmeta].value = v;
            e->nmeta++;
        }
    }
    e->last_active = fdn_clock_mono_ns(tm->clock);
    e->seen_count = 1; /* the emission that creates the entry */
    cds_lfht_node_init(&e->node);
    atomic_store_explicit(&e->published, 1, memory_order_release);
    return e;
oom:
    entry_free(e);
    return NULL;
}

/* Called inside a read-side section. Returns the entry for name, creating it; NULL with
 * *rc set when the name is invalid, on OOM, or when max_events is reached (rc 0). */
static tm_entry_t *entry_get(fdn_telemetry_t *tm, const char *name,
                             const fdn_telemetry_meta_t *meta, size_t nmeta, int *rc)
{
    uintptr_t p = (uintptr_t)name;
    tm_cache_slot_t *cs = &tcache[((p >> 3) ^ (p >> 9)) & (TM_CACHE_SIZE - 1u)];
    uint64_t epoch = atomic_load_explicit(&tm->epoch, memory_order_acquire);
    if (FDN_LIKELY(cs->tm == tm && cs->ptr == name && cs->epoch == epoch) &&
        strcmp(cs->e->name, name) == 0)
        return cs->e;

    size_t len = strnlen(name, FDN_TELEMETRY_NAME_MAX + 1);
    if (!fdn_telemetry_event_name_valid(name, len)) {
        *rc = FDN_EINVAL;
        return NULL;
    }
    unsigned long hash = (unsigned long)fdn__hash(name, len);
    struct cds_lfht_iter it;
    cds_lfht_lookup(tm->ht, hash, entry_match, name, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    tm_entry_t *e = NULL;
    if (node != NULL) {
        e = TM_CONTAINER_OF(node, tm_entry_t, node);
        (void)atomic_load_explicit(&e->published, memory_order_acquire);
    } else {
        fdn__mutex_lock(&tm->mu);
        cds_lfht_lookup(tm->ht, hash, entry_match, name, &it);
        node = cds_lfht_iter_get_node(&it);
        if (node != NULL) {
            e = TM_CONTAINER_OF(node, tm_entry_t, node);
        } else if (atomic_load_explicit(&tm->nentries, memory_order_relaxed) >=
                   tm->opts.max_events) {
            fdn__mutex_unlock(&tm->mu);
            fdn_counter_inc(tm->c_dropped_events);
            *rc = 0;
            return NULL;
        } else {
            e = entry_new(tm, name, len, hash, meta, nmeta);
            if (e == NULL) { /* reported to the caller, and counted: callers that emit
                                best-effort (the library's own events) ignore the code */
                fdn__mutex_unlock(&tm->mu);
                fdn_counter_inc(tm->c_dropped_events);
                *rc = FDN_ENOMEM;
                return NULL;
            }
            fdn__tsan_release(e);
            cds_lfht_add(tm->ht, hash, &e->node);
            tm->shape++;
            size_t was = atomic_fetch_add_explicit(&tm->nentries, 1, memory_order_relaxed);
            FDN_ASSERT(was < tm->opts.max_events); /* bounded by max_events, under mu */
        }
        fdn__mutex_unlock(&tm->mu);
    }
    cs->tm = tm;
    cs->ptr = name;
    cs->epoch = epoch;
    cs->e = e;
    return e;
}

static fdn_telemetry_kind_t kind_for_key(const char *key)
{
    if (strcmp(key, "counter") == 0)
        return FDN_TELEMETRY_COUNTER;
    if (strcmp(key, "gauge") == 0)
        return FDN_TELEMETRY_GAUGE;
    return FDN_TELEMETRY_HISTOGRAM;
}

static tm_slot_t *slot_add(fdn_telemetry_t *tm, tm_entry_t *e, const char *key)
{
    tm_slot_t *found = NULL;
    fdn__mutex_lock(&tm->mu);
    unsigned n = atomic_load_explicit(&e->nslots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        tm_slot_t *s = atomic_load_explicit(&e->slots[i], memory_order_acquire);
        if (strcmp(s->key, key) == 0) {
            found = s;
            break;
        }
    }
    if (found == NULL && n < TM_MAX_KEYS) {
        tm_slot_t *s = fdn__calloc(1, sizeof(*s));
        if (s != NULL) {
            s->key = fdn__strdup(key); /* at most FDN_TELEMETRY_NAME_MAX bytes (execute) */
            s->kind = kind_for_key(key);
            void *m = NULL;
            if (s->kind == FDN_TELEMETRY_COUNTER)
                m = s->u.c = fdn__counter_new();
            else if (s->kind == FDN_TELEMETRY_GAUGE)
                m = s->u.g = fdn__gauge_new(true);
            else
                m = s->u.h = fdn__tm_event_histogram_new(tm, e->name, key);
            if (s->key == NULL || m == NULL) {
                slot_free(s);
            } else {
                atomic_store_explicit(&e->slots[n], s, memory_order_release);
                atomic_store_explicit(&e->nslots, n + 1, memory_order_release);
                tm->shape++;
                found = s;
            }
        }
    }
    fdn__mutex_unlock(&tm->mu);
    if (found == NULL)
        fdn_counter_inc(tm->c_dropped_keys);
    return found;
}

/* exact0: when not NULL, the exact value of m[0] (a counter; emit_counter_n's u64, which the
 * double m[0].value rounds above 2^53). */
static void aggregate(fdn_telemetry_t *tm, tm_entry_t *e, const fdn_telemetry_measure_t *m,
                      size_t nm, const uint64_t *exact0)
{
    for (size_t i = 0; i < nm; i++) {
        tm_slot_t *s = NULL;
        unsigned n = atomic_load_explicit(&e->nslots, memory_order_acquire);
        for (unsigned k = 0; k < n; k++) {
            tm_slot_t *c = atomic_load_explicit(&e->slots[k], memory_order_acquire);
            if (c->key == m[i].key || strcmp(c->key, m[i].key) == 0) {
                s = c;
                break;
            }
        }
        if (FDN_UNLIKELY(s == NULL)) {
            s = slot_add(tm, e, m[i].key);
            if (s == NULL)
                continue;
        }
        switch (s->kind) {
        case FDN_TELEMETRY_COUNTER:
            if (i == 0 && exact0 != NULL)
                fdn_counter_add(s->u.c, *exact0);
            else
                fdn_counter_add(s->u.c, m[i].value >= 1.8446744073709552e19
                                            ? UINT64_MAX
                                            : (uint64_t)(m[i].value + 0.5));
            break;
        case FDN_TELEMETRY_GAUGE:
            fdn_gauge_set_double(s->u.g, m[i].value);
            break;
        default:
            fdn_histogram_observe(s->u.h, m[i].value);
            break;
        }
    }
    fdn_counter_inc(e->count);
}

void fdn__tm_entry_sample_activity(fdn_telemetry_t *tm, tm_entry_t *e, int64_t now)
    FDN_REQUIRES(tm->mu)
{
    (void)tm;
    uint64_t c = fdn_counter_value(e->count);
    if (c != e->seen_count) {
        e->seen_count = c;
        e->last_active = now;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Handlers                                                                              */

static bool handler_matches(const tm_handler_t *h, const tm_entry_t *e)
{
    if (h->match == FDN_TELEMETRY_MATCH_EXACT)
        return h->hash == e->hash && h->plen == e->len && memcmp(h->pattern, e->name, e->len) == 0;
    if (h->plen == 0)
        return true;
    return e->len >= h->plen && memcmp(e->name, h->pattern, h->plen) == 0 &&
           (e->len == h->plen || e->name[h->plen] == '.');
}

static void hset_free(tm_hset_t *s)
{
    tm_handler_t *d = s->dead;
    while (d != NULL) {
        tm_handler_t *n = d->next_dead;
        fdn__free(d->pattern);
        fdn__free(d);
        d = n;
    }
    fdn__free(s);
}

static void hset_free_rcu(struct rcu_head *h)
{
    fdn__tsan_acquire(&fdn__tm_tsan_grace);
    hset_free(TM_CONTAINER_OF(h, tm_hset_t, rcu));
    fdn__rcu_done();
}

/* A handler detached in place (fdn_telemetry_detach out of memory): still in the set, skipped
 * by dispatch, dropped by the next replacement of the set (or freed with it at destroy). */
static bool handler_gone(const tm_handler_t *h)
{
    return atomic_load_explicit(&h->detached, memory_order_acquire) != 0;
}

/* Replace the handler set (tm->mu held). remove: handlers to drop (marked detached); handlers
 * detached in place are dropped as well. */
static int hset_publish(fdn_telemetry_t *tm, tm_handler_t *add, tm_handler_t **remove,
                        size_t nremove) FDN_REQUIRES(tm->mu)
{
    tm_hset_t *old = atomic_load_explicit(&tm->handlers, memory_order_relaxed);
    size_t oldn = old != NULL ? old->n : 0;
    size_t n = (add != NULL ? 1 : 0);
    for (size_t i = 0; i < oldn; i++) {
        bool drop = handler_gone(old->h[i]);
        for (size_t r = 0; r < nremove; r++)
            drop = drop || old->h[i] == remove[r];
        n += drop ? 0 : 1;
    }
    tm_hset_t *s = fdn__calloc(1, sizeof(*s) + n * sizeof(tm_handler_t *));
    if (s == NULL)
        return FDN_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < oldn; i++) {
        bool drop = handler_gone(old->h[i]);
        for (size_t r = 0; r < nremove; r++)
            drop = drop || old->h[i] == remove[r];
        if (!drop) {
            s->h[k++] = old->h[i];
        } else { /* freed with the old set, after a grace period */
            atomic_store_explicit(&old->h[i]->detached, 1, memory_order_release);
            old->h[i]->next_dead = old->dead;
            old->dead = old->h[i];
        }
    }
    if (add != NULL)
        s->h[k++] = add;
    FDN_ASSERT(k == n);
    s->n = k;
    atomic_store_explicit(&tm->handlers, s, memory_order_release);
    if (old != NULL) {
        fdn__tsan_release(&fdn__tm_tsan_grace);
        fdn__rcu_retire(&old->rcu, hset_free_rcu);
    }
    return 0;
}

int fdn_telemetry_attach(fdn_telemetry_t *tm, uint64_t *out_id, const char *pattern,
                         fdn_telemetry_match_t match, fdn_telemetry_handler_fn fn, void *user)
{
    if (tm == NULL)
        return 0;
    if (pattern == NULL || fn == NULL ||
        (match != FDN_TELEMETRY_MATCH_EXACT && match != FDN_TELEMETRY_MATCH_PREFIX))
        return FDN_EINVAL;
    size_t len = strnlen(pattern, FDN_TELEMETRY_NAME_MAX + 1);
    if (!(match == FDN_TELEMETRY_MATCH_PREFIX && len == 0) &&
        !fdn_telemetry_event_name_valid(pattern, len))
        return FDN_EINVAL;
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    tm_handler_t *h = fdn__calloc(1, sizeof(*h));
    if (h == NULL)
        return FDN_ENOMEM;
    h->pattern = fdn__strndup(pattern, len);
    if (h->pattern == NULL) {
        fdn__free(h);
        return FDN_ENOMEM;
    }
    h->plen = len;
    h->hash = (unsigned long)fdn__hash(pattern, len);
    h->match = match;
    h->fn = fn;
    h->user = user;
    fdn__mutex_lock(&tm->mu);
    h->id = ++tm->next_handler_id;
    int rc = hset_publish(tm, h, NULL, 0);
    fdn__mutex_unlock(&tm->mu);
    if (rc < 0) {
        fdn__free(h->pattern);
        fdn__free(h);
        return rc;
    }
    if (out_id != NULL)
        *out_id = h->id;
    return 0;
}

int fdn_telemetry_detach(fdn_telemetry_t *tm, uint64_t id)
{
    if (tm == NULL)
        return 0;
    int rc = FDN_ENOENT;
    fdn__mutex_lock(&tm->mu);
    tm_hset_t *s = atomic_load_explicit(&tm->handlers, memory_order_relaxed);
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (s->h[i]->id == id && !handler_gone(s->h[i])) {
            tm_handler_t *h = s->h[i];
            rc = hset_publish(tm, NULL, &h, 1);
            if (rc == FDN_ENOMEM) {
                /* a detach does not fail (teardown detaches): without memory for a new set
                 * the handler is detached in place, and leaves the set at its next change */
                atomic_store_explicit(&h->detached, 1, memory_order_release);
                rc = 0;
            }
            break;
        }
    }
    fdn__mutex_unlock(&tm->mu);
    return rc;
}

int fdn_telemetry_detach_pattern(fdn_telemetry_t *tm, const char *pattern)
{
    if (tm == NULL || pattern == NULL)
        return 0;
    int count = 0;
    for (;;) {
        uint64_t id = 0;
        fdn__mutex_lock(&tm->mu);
        tm_hset_t *s = atomic_load_explicit(&tm->handlers, memory_order_relaxed);
        for (size_t i = 0; s != NULL && i < s->n; i++)
            if (strcmp(s->h[i]->pattern, pattern) == 0 && !handler_gone(s->h[i])) {
                id = s->h[i]->id;
                break;
            }
        fdn__mutex_unlock(&tm->mu);
        if (id == 0)
            break;
        if (fdn_telemetry_detach(tm, id) == 0) /* (no failure for lack of memory) */
            count++; /* FDN_ENOENT: another thread detached it first; look again */
    }
    return count;
}

size_t fdn_telemetry_handler_count(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return 0;
    fdn__mutex_lock(&tm->mu);
    tm_hset_t *s = atomic_load_explicit(&tm->handlers, memory_order_relaxed);
    size_t n = 0;
    for (size_t i = 0; s != NULL && i < s->n; i++)
        n += handler_gone(s->h[i]) ? 0 : 1;
    fdn__mutex_unlock(&tm->mu);
    return n;
}

static void handler_failed(fdn_telemetry_t *tm, tm_handler_t *h, const char *event, int rc)
    FDN_EXCLUDES(tm->mu)
{
    fdn_counter_inc(tm->c_handler_failures);
    atomic_fetch_add_explicit(&h->failures, 1, memory_order_relaxed);
    uint32_t c = atomic_fetch_add_explicit(&h->consecutive, 1, memory_order_relaxed) + 1;
    bool detached = false;
    if (tm->opts.handler_max_failures > 0 && c >= tm->opts.handler_max_failures &&
        fdn_telemetry_detach(tm, h->id) == 0) {
        detached = true;
        fdn_counter_inc(tm->c_handler_detached);
    }
    if (tls_in_failure)
        return;
    char idbuf[24], errbuf[64];
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)h->id);
    snprintf(errbuf, sizeof(errbuf), "%s", fdn_err_name(rc));
    fdn_telemetry_meta_t meta[4] = {{"handler_id", idbuf},
                                    {"event", event},
                                    {"error", errbuf},
                                    {"detached", detached ? "true" : "false"}};
    fdn_telemetry_measure_t m = {"counter", 1.0};
    tls_in_failure = 1;
    (void)fdn_telemetry_execute(tm, "foundation.telemetry.handler_failure", &m, 1, meta, 4);
    tls_in_failure = 0;
}

static void dispatch(fdn_telemetry_t *tm, tm_entry_t *e, const char *event,
                     const fdn_telemetry_measure_t *m, size_t nm, const fdn_telemetry_meta_t *meta,
                     size_t nmeta) FDN_EXCLUDES(tm->mu)
{
    tm_hset_t *s = atomic_load_explicit(&tm->handlers, memory_order_acquire);
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        tm_handler_t *h = s->h[i];
        if (!handler_matches(h, e) || atomic_load_explicit(&h->detached, memory_order_acquire))
            continue;
        int rc = h->fn(event, m, nm, meta, nmeta, h->user);
        if (FDN_UNLIKELY(rc < 0))
            handler_failed(tm, h, event, rc);
        else if (atomic_load_explicit(&h->consecutive, memory_order_relaxed) != 0)
            atomic_store_explicit(&h->consecutive, 0, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Execute and emits                                                                     */

static int execute(fdn_telemetry_t *tm, const char *event, const fdn_telemetry_measure_t *m,
                   size_t nm, const fdn_telemetry_meta_t *meta, size_t nmeta,
                   const uint64_t *exact0)
{
    if (tm == NULL)
        return 0;
    if (FDN_UNLIKELY(event == NULL || (nm > 0 && m == NULL) || nm > TM_MAX_MEASURES ||
                     (nmeta > 0 && meta == NULL)))
        return FDN_EINVAL;
    for (size_t i = 0; i < nm; i++) {
        /* a key is kept whole (slot_add), so one beyond the bound is refused here: cut to
         * the bound it would no longer match itself, and each emission took a new slot */
        if (FDN_UNLIKELY(m[i].key == NULL || m[i].key[0] == '\0' || !isfinite(m[i].value) ||
                         strnlen(m[i].key, FDN_TELEMETRY_NAME_MAX + 1) > FDN_TELEMETRY_NAME_MAX))
            return FDN_EINVAL;
        if (FDN_UNLIKELY(m[i].key[0] == 'c' && m[i].value < 0.0 &&
                         strcmp(m[i].key, "counter") == 0))
            return FDN_EINVAL;
    }
    if (FDN_UNLIKELY(!atomic_load_explicit(&tm->running, memory_order_acquire)))
        return 0;
    int rc = 0;
    rcu_read_lock();
    tm_entry_t *e = entry_get(tm, event, meta, nmeta, &rc);
    if (FDN_LIKELY(e != NULL)) {
        aggregate(tm, e, m, nm, exact0);
        dispatch(tm, e, event, m, nm, meta, nmeta);
    }
    tm_read_unlock();
    return rc;
}

int fdn_telemetry_execute(fdn_telemetry_t *tm, const char *event, const fdn_telemetry_measure_t *m,
                          size_t nm, const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    return execute(tm, event, m, nm, meta, nmeta, NULL);
}

int fdn_telemetry_emit_counter(fdn_telemetry_t *tm, const char *event,
                               const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    fdn_telemetry_measure_t m = {"counter", 1.0};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}

int fdn_telemetry_emit_counter_n(fdn_telemetry_t *tm, const char *event, uint64_t n,
                                 const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    fdn_telemetry_measure_t m = {"counter", (double)n}; /* (what handlers see) */
    return execute(tm, event, &m, 1, meta, nmeta, &n);
}

int fdn_telemetry_emit_gauge(fdn_telemetry_t *tm, const char *event, double value,
                             const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    fdn_telemetry_measure_t m = {"gauge", value};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}

int fdn_telemetry_emit_histogram(fdn_telemetry_t *tm, const char *event, double value,
                                 const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    fdn_telemetry_measure_t m = {"histogram", value};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}

static int emit_prefixed(fdn_telemetry_t *tm, const char *prefix, const char *name, const char *key,
                         double value, const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    if (tm == NULL)
        return 0;
    if (name == NULL)
        return FDN_EINVAL;
    char full[FDN_TELEMETRY_NAME_MAX + 2];
    int n = snprintf(full, sizeof(full), "%s.%s", prefix, name);
    if (n < 0 || (size_t)n > FDN_TELEMETRY_NAME_MAX)
        return FDN_EINVAL;
    fdn_telemetry_measure_t m = {key, value};
    return fdn_telemetry_execute(tm, full, &m, 1, meta, nmeta);
}

int fdn_telemetry_emit_performance(fdn_telemetry_t *tm, const char *metric, double value,
                                   const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    return emit_prefixed(tm, "foundation.performance", metric, "gauge", value, meta, nmeta);
}

int fdn_telemetry_emit_system_event(fdn_telemetry_t *tm, const char *type,
                                    const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    return emit_prefixed(tm, "foundation.system", type, "counter", 1.0, meta, nmeta);
}

/* ------------------------------------------------------------------------------------ */
/* Spans and measure                                                                     */

#define TM_SUFFIX_MAX 10 /* strlen(".exception") */

int fdn_telemetry_span_start(fdn_telemetry_t *tm, fdn_telemetry_span_t *span, const char *event,
                             const fdn_telemetry_meta_t *meta, size_t nmeta)
{
    if (span == NULL || event == NULL)
        return FDN_EINVAL;
    size_t len = strnlen(event, FDN_TELEMETRY_NAME_MAX + 1);
    if (len + TM_SUFFIX_MAX > FDN_TELEMETRY_NAME_MAX || !fdn_telemetry_event_name_valid(event, len))
        return FDN_EINVAL;
    span->tm = tm;
    memcpy(span->event, event, len + 1);
    char name[FDN_TELEMETRY_NAME_MAX + 16];
    snprintf(name, sizeof(name), "%s.start", event);
    span->start_ns = fdn_clock_mono_ns(tm != NULL ? tm->clock : NULL);
    return fdn_telemetry_execute(tm, name, NULL, 0, meta, nmeta);
}

int fdn_telemetry_span_end(fdn_telemetry_span_t *span, int rc, const fdn_telemetry_meta_t *meta,
                           size_t nmeta)
{
    if (span == NULL)
        return FDN_EINVAL;
    fdn_telemetry_t *tm = span->tm;
    if (tm == NULL)
        return 0;
    uint64_t dur = elapsed_ns(fdn_clock_mono_ns(tm->clock), span->start_ns);
    fdn_telemetry_measure_t m = {"duration", (double)dur};
    char name[FDN_TELEMETRY_NAME_MAX + 16];
    if (rc >= 0) {
        snprintf(name, sizeof(name), "%s.stop", span->event);
        return fdn_telemetry_execute(tm, name, &m, 1, meta, nmeta);
    }
    snprintf(name, sizeof(name), "%s.exception", span->event);
    fdn_telemetry_meta_t md[TM_MAX_META + 1];
    size_t n = 0;
    for (size_t i = 0; meta != NULL && i < nmeta && n < TM_MAX_META; i++)
        md[n++] = meta[i];
    md[n].key = "error";
    md[n].value = fdn_err_name(rc);
    n++;
    return fdn_telemetry_execute(tm, name, &m, 1, md, n);
}

int fdn_telemetry_measure(fdn_telemetry_t *tm, const char *event, const fdn_telemetry_meta_t *meta,
                          size_t nmeta, fdn_telemetry_measured_fn fn, void *user)
{
    if (fn == NULL)
        return FDN_EINVAL;
    fdn_telemetry_span_t span;
    int rc = fdn_telemetry_span_start(tm, &span, event, meta, nmeta);
    if (rc == FDN_EINVAL)
        return rc;
    rc = fn(user);
    (void)fdn_telemetry_span_end(&span, rc, meta, nmeta);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Retention and reset                                                                   */

/* Unlink entries (all when now < 0, else the idle ones); returns how many. */
static int sweep(fdn_telemetry_t *tm, bool all)
{
    int dropped = 0;
    tm_entry_t *dead = NULL;
    fdn__mutex_lock(&tm->mu);
    int64_t now = fdn_clock_mono_ns(tm->clock);
    rcu_read_lock();
    struct cds_lfht_iter it;
    cds_lfht_first(tm->ht, &it);
    struct cds_lfht_node *node;
    while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
        tm_entry_t *e = TM_CONTAINER_OF(node, tm_entry_t, node);
        cds_lfht_next(tm->ht, &it);
        fdn__tm_entry_sample_activity(tm, e, now);
        bool drop = all || (tm->opts.retention_ns > 0 &&
                            elapsed_ns(now, e->last_active) >= (uint64_t)tm->opts.retention_ns);
        if (drop && cds_lfht_del(tm->ht, &e->node) == 0) {
            e->next_dead = dead;
            dead = e;
            dropped++;
            atomic_fetch_sub_explicit(&tm->nentries, 1, memory_order_relaxed);
        }
    }
    tm_read_unlock();
    if (dead != NULL) {
        atomic_store_explicit(&tm->epoch, new_epoch(), memory_order_seq_cst);
        tm->shape++;
    }
    fdn__mutex_unlock(&tm->mu);
    if (dead != NULL)
        fdn__tsan_release(&fdn__tm_tsan_grace);
    while (dead != NULL) {
        tm_entry_t *n = dead->next_dead;
        fdn__rcu_retire(&dead->rcu, entry_free_rcu);
        dead = n;
    }
    return dropped;
}

int fdn_telemetry_cleanup(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return 0;
    return sweep(tm, false);
}

int fdn_telemetry_reset_metrics(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return 0;
    (void)sweep(tm, true);
    fdn__tm_families_reset(tm);
    return 0;
}

size_t fdn_telemetry_event_count(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return 0;
    return atomic_load_explicit(&tm->nentries, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------ */
/* Lifecycle                                                                             */

int fdn_telemetry_create(fdn_telemetry_t **out, const fdn_telemetry_opts_t *opts)
{
    if (out == NULL)
        return FDN_EINVAL;
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    if (opts != NULL) {
        if (opts->version < 1 || opts->retention_ns < 0 || opts->cleanup_interval_ns < 0)
            return FDN_EINVAL;
        o = *opts;
    }
    if (o.max_events == 0)
        o.max_events = 10000;
    if (o.max_series_per_family == 0)
        o.max_series_per_family = 1000;
    /* entries and handler sets are retired through call_rcu: without liburcu-bp's fork
     * handlers a child of a process that retired one never runs another retire callback, and
     * its destroy (which waits for them) hangs */
    fdn__rcu_setup();
    fdn_telemetry_t *tm = fdn__calloc(1, sizeof(*tm));
    if (tm == NULL)
        return FDN_ENOMEM;
    tm->opts = o;
    tm->clock = o.clock;
    atomic_init(&tm->running, 1);
    atomic_init(&tm->epoch, new_epoch());
    atomic_init(&tm->nentries, 0);
    pthread_mutex_init(&tm->mu, NULL);
    {
        /* scrapes hold it a few microseconds: a second one spins a little before it sleeps
         * (glibc's adaptive mutex) */
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
        pthread_mutex_init(&tm->expo_mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    pthread_mutex_init(&tm->life_mu, NULL);
    pthread_rwlock_init(&tm->coll_lock, NULL);
    tm->ht = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
    if (tm->ht == NULL)
        goto oom;
    static const char *const fam_label[] = {"family"};
    if (fdn__tm_family_create(tm, &tm->f_overflow, "fdn_telemetry_series_dropped_total",
                              "New label sets a family's cardinality cap refused (counted in its "
                              "__overflow__ series)",
                              FDN_TELEMETRY_COUNTER, fam_label, 1, 0, true) < 0)
        goto oom;
    tm->c_dropped_events = fdn__tm_builtin_counter(
        tm, "fdn_telemetry_dropped_events_total",
        "Events dropped because max_events distinct names are already kept, or for lack of "
        "memory");
    tm->c_dropped_keys = fdn__tm_builtin_counter(
        tm, "fdn_telemetry_dropped_measurements_total",
        "Measurements dropped because their event already has the maximum number of keys, or "
        "for lack of memory");
    tm->c_handler_failures = fdn__tm_builtin_counter(tm, "fdn_telemetry_handler_failures_total",
                                                     "Handler calls that returned an error");
    tm->c_handler_detached =
        fdn__tm_builtin_counter(tm, "fdn_telemetry_handlers_detached_total",
                                "Handlers detached after too many consecutive failures");
    if (tm->c_dropped_events == NULL || tm->c_dropped_keys == NULL ||
        tm->c_handler_failures == NULL || tm->c_handler_detached == NULL)
        goto oom;
    *out = tm;
    return 0;
oom:
    fdn_telemetry_destroy(tm);
    return FDN_ENOMEM;
}

void fdn_telemetry_destroy(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return;
    fdn__telemetry_service_stop(tm);
    if (tm->ht != NULL) {
        (void)sweep(tm, true);
        fdn__rcu_barrier();
        cds_lfht_destroy(tm->ht, NULL);
    }
    tm_hset_t *hs = atomic_load_explicit(&tm->handlers, memory_order_relaxed);
    if (hs != NULL) {
        tm_hset_t *s = hs;
        for (size_t i = 0; i < s->n; i++) {
            s->h[i]->next_dead = s->dead;
            s->dead = s->h[i];
        }
        hset_free(s);
    }
    fdn__rcu_barrier(); /* handler sets and entries freed by call_rcu from other calls */
    fdn__tm_families_free(tm);
    fdn__tm_unexported_free(tm);
    fdn__tm_layouts_free(tm);
    fdn__tm_expo_free(tm);
    pthread_mutex_destroy(&tm->expo_mu);
    pthread_mutex_destroy(&tm->life_mu);
    pthread_mutex_destroy(&tm->mu);
    pthread_rwlock_destroy(&tm->coll_lock);
    fdn__free(tm);
}

/* now + interval, saturated: any interval >= 0 is accepted, INT64_MAX means "never". */
static int64_t next_cleanup(int64_t now, int64_t interval)
{
    return now > INT64_MAX - interval ? INT64_MAX : now + interval;
}

static void *cleanup_main(void *arg)
{
    fdn_telemetry_t *tm = arg;
    uint64_t kick = fdn_clock_kick_seq(tm->clock);
    int64_t next = next_cleanup(fdn_clock_mono_ns(tm->clock), tm->opts.cleanup_interval_ns);
    while (!atomic_load_explicit(&tm->thread_stop, memory_order_acquire)) {
        (void)fdn_clock_wait_until(tm->clock, next, &kick);
        if (atomic_load_explicit(&tm->thread_stop, memory_order_acquire))
            break;
        int64_t now = fdn_clock_mono_ns(tm->clock);
        if (now >= next) {
            (void)sweep(tm, false);
            next = next_cleanup(now, tm->opts.cleanup_interval_ns);
        }
    }
    atomic_store_explicit(&tm->thread_alive, 0, memory_order_release);
    return NULL;
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_telemetry_t *tm = state;
    (void)ctx;
    (void)err;
    if (tm == NULL)
        return FDN_EINVAL;
    int rc = 0;
    fdn__mutex_lock(&tm->life_mu);
    if (!tm->thread_started && tm->opts.cleanup_interval_ns > 0) {
        atomic_store_explicit(&tm->thread_stop, 0, memory_order_relaxed);
        atomic_store_explicit(&tm->thread_alive, 1, memory_order_relaxed);
        if (pthread_create(&tm->thread, NULL, cleanup_main, tm) != 0) {
            atomic_store_explicit(&tm->thread_alive, 0, memory_order_relaxed);
            rc = FDN_ENOMEM;
        } else {
            tm->thread_started = true;
        }
    }
    bool was_running =
        atomic_exchange_explicit(&tm->running, rc == 0 ? 1 : 0, memory_order_acq_rel) != 0;
    (void)was_running;
    fdn__mutex_unlock(&tm->life_mu);
    if (rc == 0 && tm->opts.emit_vm_gauges) {
        /* the reference's start-up gauges (its value 1 stood for nothing), with this
         * process's figures at start: resident bytes, the machine's run queue, OS threads;
         * a figure that cannot be read stays the reference's 1 */
        fdn__tm_process_t p;
        fdn__tm_process_read(&p);
        const double v[] = {p.resident_bytes, fdn__tm_run_queue(), p.threads};
        static const char *const vm[] = {"vm.memory", "vm.total_run_queue_lengths",
                                         "vm.system_counts"};
        fdn_telemetry_meta_t meta = {"source", "vm"};
        for (size_t i = 0; i < FDN_ARRAY_LEN(vm); i++)
            (void)fdn_telemetry_emit_gauge(tm, vm[i], v[i] >= 0 ? v[i] : 1.0, &meta, 1);
    }
    return rc;
}

static void service_stop(void *state)
{
    fdn_telemetry_t *tm = state;
    if (tm == NULL)
        return;
    fdn__mutex_lock(&tm->life_mu);
    atomic_store_explicit(&tm->running, 0, memory_order_release);
    if (tm->thread_started) {
        atomic_store_explicit(&tm->thread_stop, 1, memory_order_release);
        fdn_clock_kick(tm->clock);
        pthread_join(tm->thread, NULL);
        tm->thread_started = false;
    }
    fdn__mutex_unlock(&tm->life_mu);
}

static int service_health(void *state)
{
    fdn_telemetry_t *tm = state;
    if (tm == NULL)
        return FDN_EINVAL;
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    fdn__mutex_lock(&tm->life_mu);
    int rc = 0;
    if (tm->thread_started && !atomic_load_explicit(&tm->thread_alive, memory_order_acquire))
        rc = FDN_EUNAVAILABLE;
    fdn__mutex_unlock(&tm->life_mu);
    return rc;
}

static void service_destroy(void *state)
{
    fdn_telemetry_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__telemetry_service_ops = {service_start, service_stop, service_health,
                                                      NULL, service_destroy};
