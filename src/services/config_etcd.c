/*
 * DESIGN: the config service following etcd (include/fdn/config.h, fdn_config_follow_etcd),
 * over the gateway client of storage/etcd_client.c.
 *
 * Keys: `<prefix>/<ns>/<path>`, value: the path's JSON value. One thread (the watcher of
 * storage/etcd_watch.c) applies changes to the config service in etcd's order: first a range
 * of the namespace (its records applied by mod_revision), then a watch from the range's
 * revision + 1; a watch cancelled by compaction ranges again; a watch that broke (etcd away)
 * is made again from the last revision seen after a backoff (100 ms doubling to 1 s), the
 * config marked stale meanwhile. Each change goes through fdn__cfg_apply_remote, i.e. the
 * same checks as a local update (allow-list, path and value security, schema validation): a
 * refused value is counted (and its reason kept), never applied. A record is applied once:
 * `mods` remembers, per path, the mod_revision applied (or refused) last, and a range skips
 * records not newer.
 *
 * A reset (fdn_config_reset*, reset_remote): one txn, a compare-and-swap on the marker key
 * `<prefix>/<ns>/!reset` (its mod_revision as `reset_rev` has it) that deletes every other key
 * of the namespace and writes the marker ({"to": "defaults"|"startup"}), so the whole fleet
 * applies the reset at one revision, in order with the updates; the watch applies the marker
 * as one reset (fdn__cfg_reset_remote) and the deletes of that revision are not applied one by
 * one. A range applies a marker newer than `reset_rev` in its mod_revision order, so a process
 * that starts later applies the fleet's last reset too.
 *
 * While the config service is stopped (a supervisor restart), or when applying a change runs
 * out of memory (here or in the service: FDN_ENOMEM, a component's push included), a change
 * cannot be applied now: it is neither counted as refused nor remembered in `mods`, the rest of
 * the message (or range) is left, so changes stay in etcd's order, and the namespace is ranged
 * again (after a backoff) until it goes in. Any other failure is the change's own: refused for
 * good at that revision.
 *
 * A local update (update_remote, on the updater's thread), once the config service has run
 * its checks and its apply hook's check (a runtime's services asked, nothing pushed: a value
 * they refuse is refused there and never comes here): a compare-and-swap txn on the key's
 * mod_revision as `mods` has it; when another process won, wait until the watch has brought
 * `mods` up to the winner's revision and try again (at most MAX_CAS times); after a success,
 * wait until the watch has applied the change here, so the caller reads its own write. If
 * this process refused its own record when the watch brought it (mods[path] at that revision
 * with rc < 0: e.g. a component's push refused although its check passed), the update returns
 * that refusal: the value is in etcd, the rest of the fleet has it, this process does not.
 *
 * Locks: `mu` guards mods, the revision seen, stopping and last_refused; no lock is held
 * during a network call or while the config service applies a change (which takes its own
 * wmu and may notify subscribers through its delivery thread: no callback runs here).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/lock.h"
#include "core/sync.h"
#include "logic/etcd_codec.h"
#include "services/config_etcd.h"
#include "services/config_int.h"
#include "storage/etcd_client.h"
#include "storage/etcd_watch.h"

#define DEFAULT_PREFIX     "/fdn/config"
#define DEFAULT_TIMEOUT_MS 2000
#define MAX_CAS            1000
/* The reset marker, `<prefix>/<ns>/!reset`: '!' sorts before every config path and is no path
 * character. Its value is {"to": "defaults"} or {"to": "startup"}. */
#define RESET_NAME "!reset"

typedef struct mod {
    char *path;
    int64_t rev; /* revision of the record applied or refused last (a delete's too) */
    int64_t cas; /* the key's mod_revision for a compare-and-swap: 0 when it does not exist */
    int rc;      /* 0: the record at rev was applied; < 0: refused here, why in `why` */
    char why[200];
} mod_t;

typedef struct cfgetcd {
    fdn_config_t *cfg;
    fdn__etcd_t *cli;
    fdn__etcd_watcher_t *watcher;
    char *key_prefix;
    size_t key_prefixlen;
    char *range_end;
    size_t range_endlen;
    int64_t timeout_ms;

    fdn__mutex_t mu;
    pthread_cond_t cv;
    bool stopping FDN_MEMBER_GUARDED_BY(mu);
    int64_t seen FDN_MEMBER_GUARDED_BY(mu); /* the etcd revision applied up to */
    mod_t *mods FDN_MEMBER_GUARDED_BY(mu);
    size_t nmods FDN_MEMBER_GUARDED_BY(mu);
    size_t capmods FDN_MEMBER_GUARDED_BY(mu);
    char last_refused[256] FDN_MEMBER_GUARDED_BY(mu);
    int64_t reset_rev FDN_MEMBER_GUARDED_BY(mu); /* mod_revision of the last reset applied */

    /* a change could not be applied now (the service stopped, or out of memory): range again
     * (once it runs); missed_rc says why (FDN_EUNAVAILABLE or FDN_ENOMEM) */
    _Atomic bool missed;
    _Atomic int missed_rc;
    _Atomic uint64_t applied, refused, cas_conflicts, relists;
} cfgetcd_t;

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static mod_t *mod_find(cfgetcd_t *r, const char *path) FDN_REQUIRES(r->mu)
{
    for (size_t i = 0; i < r->nmods; i++)
        if (strcmp(r->mods[i].path, path) == 0)
            return &r->mods[i];
    return NULL;
}

/* Remember rev (and the key's mod_revision cas) for path (NULL on out of memory). */
static mod_t *mod_set(cfgetcd_t *r, const char *path, int64_t rev, int64_t cas) FDN_REQUIRES(r->mu)
{
    mod_t *m = mod_find(r, path);
    if (m == NULL) {
        if (r->nmods == r->capmods) {
            size_t cap = r->capmods ? 2 * r->capmods : 16;
            mod_t *n = fdn__realloc(r->mods, cap * sizeof(*n));
            if (n == NULL)
                return NULL;
            r->mods = n;
            r->capmods = cap;
        }
        char *p = fdn__strdup(path);
        if (p == NULL)
            return NULL;
        m = &r->mods[r->nmods++];
        m->path = p;
    }
    m->rev = rev;
    m->cas = cas;
    m->rc = 0;
    m->why[0] = '\0';
    return m;
}

static int64_t mod_get(cfgetcd_t *r, const char *path)
{
    fdn__mutex_lock(&r->mu);
    mod_t *m = mod_find(r, path);
    int64_t cas = m ? m->cas : 0;
    fdn__mutex_unlock(&r->mu);
    return cas;
}

static bool is_marker(const cfgetcd_t *r, const fdn__etcd_kv_t *kv)
{
    return kv->keylen == r->key_prefixlen + sizeof(RESET_NAME) - 1 &&
           memcmp(kv->key + r->key_prefixlen, RESET_NAME, sizeof(RESET_NAME) - 1) == 0;
}

/* A failure to apply a change that is not the change's fault: the service is stopped (a
 * restart), or memory ran out (here or in the service). The change is not recorded (neither
 * applied nor refused) and the namespace is ranged again, after a backoff, until it goes in. */
static bool transient(int rc)
{
    return rc == FDN_EUNAVAILABLE || rc == FDN_ENOMEM;
}

static void mark_missed(cfgetcd_t *r, int rc)
{
    atomic_store_explicit(&r->missed_rc, rc, memory_order_relaxed);
    atomic_store_explicit(&r->missed, true, memory_order_relaxed);
}

static bool missed(cfgetcd_t *r)
{
    return atomic_load_explicit(&r->missed, memory_order_relaxed);
}

/* Apply a reset marker written at kv->mod_revision unless already applied: the config goes to
 * its defaults or start-up values, and every path whose key the reset's txn deleted is
 * remembered as deleted at that revision. */
static void apply_reset(cfgetcd_t *r, const fdn__etcd_kv_t *kv)
{
    fdn__mutex_lock(&r->mu);
    bool done = kv->mod_revision <= r->reset_rev;
    fdn__mutex_unlock(&r->mu);
    if (done)
        return;
    fdn_error_t err = FDN_ERROR_INIT;
    json_error_t jerr;
    bool oom;
    json_t *v = fdn__json_loadb(kv->value, kv->valuelen, JSON_REJECT_DUPLICATES, &jerr, &oom);
    const char *to = json_string_value(json_object_get(v, "to"));
    int rc;
    if (oom)
        rc = fdn_err_set(&err, FDN_ENOMEM, "out of memory reading the reset marker in etcd");
    else if (to == NULL || (strcmp(to, "defaults") != 0 && strcmp(to, "startup") != 0))
        rc = fdn_err_set(&err, FDN_EPARSE,
                         "reset marker in etcd is not {\"to\": \"defaults\"|\"startup\"}");
    else
        rc = fdn__cfg_reset_remote(r->cfg, strcmp(to, "startup") == 0, (uint64_t)kv->mod_revision,
                                   &err);
    json_decref(v);
    if (transient(rc)) { /* stopped (a restart) or out of memory: applied by the next range */
        mark_missed(r, rc);
        return;
    }
    fdn__mutex_lock(&r->mu);
    r->reset_rev = kv->mod_revision;
    for (size_t i = 0; i < r->nmods; i++) {
        if (r->mods[i].rev < kv->mod_revision) { /* its key was deleted by the reset */
            r->mods[i].rev = kv->mod_revision;
            r->mods[i].cas = 0;
        }
    }
    if (rc < 0)
        snprintf(r->last_refused, sizeof(r->last_refused), "reset at revision %lld: %.150s",
                 (long long)kv->mod_revision, err.message[0] ? err.message : fdn_strerror(rc));
    fdn__mutex_unlock(&r->mu);
    count(rc < 0 ? &r->refused : &r->applied);
    if (rc < 0)
        fdn__cfg_report_remote_refused(r->cfg, RESET_NAME, rc);
}

/* Remember path's key as deleted at rev without applying it (a reset at rev covers it). */
static void covered_by_reset(cfgetcd_t *r, const fdn__etcd_kv_t *kv)
{
    if (kv->keylen <= r->key_prefixlen || memchr(kv->key, '\0', kv->keylen) != NULL)
        return;
    fdn__mutex_lock(&r->mu);
    mod_t *m = mod_find(r, kv->key + r->key_prefixlen);
    if (m != NULL && m->rev < kv->mod_revision) {
        m->rev = kv->mod_revision;
        m->cas = 0;
    }
    fdn__mutex_unlock(&r->mu);
}

/* Apply one record (a put, or a delete when del) unless already applied. */
static void apply_kv(cfgetcd_t *r, const fdn__etcd_kv_t *kv, bool del)
{
    if (kv->keylen <= r->key_prefixlen || memchr(kv->key, '\0', kv->keylen) != NULL)
        return;
    if (is_marker(r, kv)) {
        if (!del) /* (a deleted marker changes nothing) */
            apply_reset(r, kv);
        return;
    }
    const char *path = kv->key + r->key_prefixlen;
    fdn__mutex_lock(&r->mu);
    mod_t *m = mod_find(r, path);
    bool done = m != NULL && m->rev >= kv->mod_revision;
    fdn__mutex_unlock(&r->mu);
    if (done)
        return;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = 0;
    json_t *v = NULL;
    if (!del) {
        json_error_t jerr;
        bool oom;
        v = fdn__json_loadb(kv->value, kv->valuelen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                            &jerr, &oom);
        if (oom)
            rc = fdn_err_set(&err, FDN_ENOMEM, "out of memory reading %.120s from etcd", path);
        else if (v == NULL)
            rc = fdn_err_set(&err, FDN_EPARSE, "value of %.120s in etcd is not JSON: %.100s", path,
                             jerr.text);
    }
    if (rc == 0)
        rc = fdn__cfg_apply_remote(r->cfg, path, v, (uint64_t)kv->mod_revision, &err);
    json_decref(v);
    if (transient(rc)) { /* stopped (a restart) or out of memory: not refused, applied later */
        mark_missed(r, rc);
        return;
    }
    fdn__mutex_lock(&r->mu);
    /* applied or refused: never again (a local update of this record reads why: update_remote) */
    mod_t *m2 = mod_set(r, path, kv->mod_revision, del ? 0 : kv->mod_revision);
    const char *why = err.message[0] ? err.message : fdn_strerror(rc);
    if (rc < 0)
        snprintf(r->last_refused, sizeof(r->last_refused), "%.60s at revision %lld: %.150s", path,
                 (long long)kv->mod_revision, why);
    if (rc < 0 && m2 != NULL) {
        m2->rc = rc;
        snprintf(m2->why, sizeof(m2->why), "%.190s", why);
    }
    fdn__mutex_unlock(&r->mu);
    count(rc < 0 ? &r->refused : &r->applied);
    if (rc < 0)
        fdn__cfg_report_remote_refused(r->cfg, path, rc);
}

/* The watch has applied everything up to rev. */
static void seen_up_to(cfgetcd_t *r, int64_t rev)
{
    fdn__mutex_lock(&r->mu);
    if (rev > r->seen)
        r->seen = rev;
    pthread_cond_broadcast(&r->cv);
    fdn__mutex_unlock(&r->mu);
}

static int cmp_mod(const void *a, const void *b)
{
    const fdn__etcd_kv_t *x = a, *y = b;
    return x->mod_revision < y->mod_revision ? -1 : x->mod_revision > y->mod_revision;
}

static int relist(cfgetcd_t *r, fdn_error_t *err)
{
    atomic_store_explicit(&r->missed, false, memory_order_relaxed);
    fdn__etcd_range_t rg;
    int rc = fdn__etcd_range(r->cli, r->key_prefix, r->key_prefixlen, r->range_end, r->range_endlen,
                             &rg, err);
    if (rc < 0)
        return rc;
    if (rg.n > 1)
        qsort(rg.kvs, rg.n, sizeof(rg.kvs[0]), cmp_mod);
    /* in mod_revision order, up to the first change that could not be applied now (the rest
     * waits for the next range, so changes are never applied out of order) */
    for (size_t i = 0; i < rg.n && !missed(r); i++)
        apply_kv(r, &rg.kvs[i], false);
    /* a path whose key is gone since goes back to its start-up value */
    fdn__mutex_lock(&r->mu);
    size_t nm = missed(r) ? 0 : r->nmods;
    char **gone = nm ? fdn__calloc(nm, sizeof(char *)) : NULL;
    size_t ng = 0;
    for (size_t i = 0; gone != NULL && i < nm; i++) {
        bool present = false;
        for (size_t k = 0; k < rg.n && !present; k++)
            present = strcmp(rg.kvs[k].key + r->key_prefixlen, r->mods[i].path) == 0;
        if (!present && r->mods[i].cas > 0)
            gone[ng++] = fdn__strdup(r->mods[i].path);
    }
    fdn__mutex_unlock(&r->mu);
    if (nm > 0 && gone == NULL)
        mark_missed(r, FDN_ENOMEM); /* the deletes are found by the next range */
    for (size_t i = 0; i < ng; i++) {
        if (gone[i] == NULL || missed(r)) {
            if (gone[i] == NULL)
                mark_missed(r, FDN_ENOMEM);
            fdn__free(gone[i]);
            continue;
        }
        size_t pl = strlen(gone[i]);
        char *key = fdn__malloc(r->key_prefixlen + pl + 1);
        if (key != NULL) {
            memcpy(key, r->key_prefix, r->key_prefixlen);
            memcpy(key + r->key_prefixlen, gone[i], pl + 1);
            fdn__etcd_kv_t kv = {key, r->key_prefixlen + pl, NULL, 0, 0, rg.revision, 0, 0};
            apply_kv(r, &kv, true);
            fdn__free(key);
        } else {
            mark_missed(r, FDN_ENOMEM);
        }
        fdn__free(gone[i]);
    }
    fdn__free(gone);
    int64_t rev = rg.revision;
    fdn__etcd_range_clear(&rg);
    count(&r->relists);
    if (missed(r)) {
        int mrc = atomic_load_explicit(&r->missed_rc, memory_order_relaxed);
        return fdn_err_set(err, mrc,
                           mrc == FDN_ENOMEM
                               ? "out of memory applying a change from etcd (ranged again)"
                               : "Configuration service not started");
    }
    seen_up_to(r, rev);
    return 0;
}

/* ---- the watch thread (storage/etcd_watch.c) --------------------------------------------- */

static int watch_relist(void *user)
{
    return relist(user, NULL);
}

static int watch_message(void *user, const fdn__etcd_watch_msg_t *m)
{
    cfgetcd_t *r = user;
    /* a reset's txn deletes the namespace's keys and writes the marker at one revision: its
     * deletes are not applied one by one (each would be a change), the reset covers them */
    int64_t resets[8];
    size_t nresets = 0;
    for (size_t i = 0; i < m->nevents && nresets < 8; i++)
        if (m->events[i].type == FDN__ETCD_PUT && is_marker(r, &m->events[i].kv))
            resets[nresets++] = m->events[i].kv.mod_revision;
    for (size_t i = 0; i < m->nevents && !missed(r); i++) {
        const fdn__etcd_kv_t *kv = &m->events[i].kv;
        bool del = m->events[i].type == FDN__ETCD_DELETE, covered = false;
        for (size_t k = 0; del && k < nresets && !covered; k++)
            covered = kv->mod_revision == resets[k];
        if (covered)
            covered_by_reset(r, kv);
        else
            apply_kv(r, kv, del);
    }
    /* the service was stopped, or memory ran out: the rest of the message is not applied, the
     * namespace is ranged again (once the service runs) */
    if (missed(r))
        return FDN__ETCD_WATCHER_RELIST_LATER;
    if (m->revision > 0 && !m->created)
        seen_up_to(r, m->revision);
    return FDN__ETCD_WATCHER_GO_ON;
}

static int64_t watch_revision(void *user)
{
    cfgetcd_t *r = user;
    fdn__mutex_lock(&r->mu);
    int64_t seen = r->seen;
    fdn__mutex_unlock(&r->mu);
    return seen;
}

static const fdn__etcd_watcher_ops_t WATCH_OPS = {watch_relist, watch_message, watch_revision};

/* ---- updates ---------------------------------------------------------------------------- */

/* Wait (bounded) until pred holds: the watch applied up to rev (path NULL), or path's
 * mod_revision reached rev. */
static bool wait_for(cfgetcd_t *r, const char *path, int64_t rev)
{
    int64_t dl = fdn__deadline_after_ms(r->timeout_ms);
    bool ok = false;
    fdn__mutex_lock(&r->mu);
    for (;;) {
        const mod_t *m = path ? mod_find(r, path) : NULL;
        ok = path ? (m != NULL && m->rev >= rev) : r->seen >= rev;
        if (ok || r->stopping)
            break;
        if (fdn__cond_wait_until(&r->cv, &r->mu, dl) != 0) {
            m = path ? mod_find(r, path) : NULL;
            ok = path ? (m != NULL && m->rev >= rev) : r->seen >= rev;
            break;
        }
    }
    fdn__mutex_unlock(&r->mu);
    return ok;
}

/* The watch has gone past rev: 0 when this process applied path's record at rev (or a later
 * record of path replaced it), else the refusal it met here (the value is in etcd: the other
 * processes have it; this one kept its value and counted the refusal). */
static int applied_here(cfgetcd_t *r, const char *path, int64_t rev, fdn_error_t *err)
{
    int rc = 0;
    fdn__mutex_lock(&r->mu);
    const mod_t *m = mod_find(r, path);
    if (m != NULL && m->rev == rev && m->rc < 0)
        rc = fdn_err_set(err, m->rc,
                         "%s was written to etcd (revision %lld) but refused here when applied: "
                         "%s",
                         path, (long long)rev, m->why);
    fdn__mutex_unlock(&r->mu);
    return rc;
}

static int update_remote(void *remote, const char *path, const json_t *v, fdn_error_t *err)
{
    cfgetcd_t *r = remote;
    char *value = NULL;
    (void)fdn_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY, &value, NULL);
    size_t pl = strlen(path);
    char *key = fdn__malloc(r->key_prefixlen + pl + 1);
    if (value == NULL || key == NULL) {
        fdn__free(value);
        fdn__free(key);
        return fdn_err_set(err, FDN_ENOMEM, "updating %s in etcd", path);
    }
    memcpy(key, r->key_prefix, r->key_prefixlen);
    memcpy(key + r->key_prefixlen, path, pl + 1);
    size_t klen = r->key_prefixlen + pl;
    int rc = FDN_EBUSY;
    for (int attempt = 0; attempt < MAX_CAS; attempt++) {
        int64_t known = mod_get(r, path);
        bool done = false;
        fdn__etcd_kv_t ex;
        int64_t rev = 0;
        rc = fdn__etcd_put_if_mod(r->cli, key, klen, value, strlen(value), known, &done, &ex, &rev,
                                  err);
        if (rc < 0)
            break;
        if (done) {
            fdn__etcd_kv_clear(&ex);
            if (!wait_for(r, NULL, rev))
                rc = fdn_err_set(err, FDN_ETIMEDOUT,
                                 "%s was written to etcd (revision %lld) but not applied here "
                                 "within %lld ms",
                                 path, (long long)rev, (long long)r->timeout_ms);
            else
                rc = applied_here(r, path, rev, err);
            break;
        }
        /* another process wrote the key since this one saw it: catch up, then try again */
        count(&r->cas_conflicts);
        bool exists = ex.key != NULL;
        int64_t winner = exists ? ex.mod_revision : rev;
        fdn__etcd_kv_clear(&ex);
        (void)wait_for(r, exists ? path : NULL, winner);
        rc = fdn_err_set(err, FDN_EBUSY, "%s: compare-and-swap lost %d times", path, attempt + 1);
    }
    fdn__free(key);
    fdn__free(value);
    return rc;
}

static int reset_remote(void *remote, bool to_startup, fdn_error_t *err)
{
    cfgetcd_t *r = remote;
    const char *value = to_startup ? "{\"to\":\"startup\"}" : "{\"to\":\"defaults\"}";
    size_t klen = r->key_prefixlen + sizeof(RESET_NAME) - 1;
    char *key = fdn__malloc(klen + 1);
    if (key == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "resetting the config in etcd");
    memcpy(key, r->key_prefix, r->key_prefixlen);
    memcpy(key + r->key_prefixlen, RESET_NAME, sizeof(RESET_NAME));
    int rc = FDN_EBUSY;
    for (int attempt = 0; attempt < MAX_CAS; attempt++) {
        fdn__mutex_lock(&r->mu);
        int64_t known = r->reset_rev;
        fdn__mutex_unlock(&r->mu);
        bool done = false;
        fdn__etcd_kv_t ex;
        int64_t rev = 0;
        rc = fdn__etcd_put_if_mod_clearing(r->cli, key, klen, value, strlen(value), known,
                                           r->key_prefix, r->key_prefixlen, r->range_end,
                                           r->range_endlen, &done, &ex, &rev, err);
        if (rc < 0)
            break;
        if (done) {
            fdn__etcd_kv_clear(&ex);
            if (!wait_for(r, NULL, rev))
                rc = fdn_err_set(err, FDN_ETIMEDOUT,
                                 "the reset was written to etcd (revision %lld) but not applied "
                                 "here within %lld ms",
                                 (long long)rev, (long long)r->timeout_ms);
            break;
        }
        /* another process reset since this one saw it: catch up, then try again */
        count(&r->cas_conflicts);
        int64_t winner = ex.key != NULL ? ex.mod_revision : rev;
        fdn__etcd_kv_clear(&ex);
        (void)wait_for(r, NULL, winner);
        rc = fdn_err_set(err, FDN_EBUSY, "reset: compare-and-swap lost %d times", attempt + 1);
    }
    fdn__free(key);
    return rc;
}

/* ---- create / destroy ---------------------------------------------------------------- */

static void destroy(void *remote)
{
    cfgetcd_t *r = remote;
    if (r == NULL)
        return;
    fdn__cond_raise(&r->cv, &r->mu, &r->stopping);
    fdn__etcd_watcher_destroy(r->watcher);
    fdn__mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nmods; i++)
        fdn__free(r->mods[i].path);
    fdn__free(r->mods);
    r->mods = NULL;
    r->nmods = 0;
    fdn__mutex_unlock(&r->mu);
    fdn__etcd_destroy(r->cli);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    fdn__free(r->key_prefix);
    fdn__free(r->range_end);
    fdn__free(r);
}

static const fdn__cfg_remote_ops_t OPS = {
    .update = update_remote, .destroy = destroy, .reset = reset_remote};

int fdn__config_etcd_follow(fdn_config_t *cfg, const fdn_config_etcd_opts_t *o, fdn_error_t *err)
{
    const char *ns = o->ns ? o->ns : "default";
    if (ns[0] == '\0' || strchr(ns, '/') != NULL)
        return fdn_err_set(err, FDN_EINVAL, "config namespace \"%s\" must be non-empty without '/'",
                           ns);
    int64_t timeout = o->request_timeout_ms ? o->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    if (timeout < 1 || timeout > 600000)
        return fdn_err_set(err, FDN_EINVAL, "request_timeout_ms must be 1..600000");
    const char *prefix = o->prefix ? o->prefix : DEFAULT_PREFIX;
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen > 1024 || strlen(ns) > 255)
        return fdn_err_set(err, FDN_EINVAL, "etcd key prefix or namespace too long");
    if (fdn__cfg_remote(cfg) != NULL)
        return fdn_err_set(err, FDN_EBUSY, "this config already follows etcd");
    cfgetcd_t *r = fdn__calloc(1, sizeof(*r));
    if (r == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "config on etcd");
    pthread_mutex_init(&r->mu, NULL);
    (void)fdn__cond_init_mono(&r->cv);
    r->cfg = cfg;
    r->timeout_ms = timeout;
    int rc = fdn__etcd_ns_keys(prefix, plen, ns, &r->key_prefix, &r->key_prefixlen, &r->range_end,
                               &r->range_endlen);
    if (rc < 0) {
        fdn_err_set(err, rc, "config on etcd");
        goto fail;
    }
    rc = fdn__etcd_create(&r->cli, o->url, timeout, err);
    if (rc < 0)
        goto fail;
    rc = relist(r, err);
    /* etcd not answering: an error, or (start_unreachable) follow from the local values, stale,
     * until the watcher's first range succeeds */
    if (rc < 0 && !(o->version >= 2 && o->start_unreachable &&
                    (rc == FDN_ECONNREFUSED || rc == FDN_ETIMEDOUT || rc == FDN_ENETWORK)))
        goto fail;
    rc =
        fdn__etcd_watcher_create(&r->watcher, r->cli, r->key_prefix, r->key_prefixlen, r->range_end,
                                 r->range_endlen, &WATCH_OPS, r, "fdn-cfg-watch", err);
    if (rc < 0)
        goto fail;
    rc = fdn__cfg_set_remote(cfg, r, &OPS);
    if (rc < 0) {
        fdn_err_set(err, rc, "this config already follows etcd");
        goto fail;
    }
    return 0;
fail:
    destroy(r);
    return rc;
}

fdn__etcd_t *fdn__config_etcd_client(fdn_config_t *cfg)
{
    cfgetcd_t *r = fdn__cfg_remote(cfg);
    return r != NULL ? r->cli : NULL;
}

int fdn__config_etcd_stats(fdn_config_t *cfg, fdn_config_etcd_stats_t *out)
{
    cfgetcd_t *r = fdn__cfg_remote(cfg);
    if (r == NULL)
        return FDN_ENOTSUP;
    out->stale = fdn__etcd_watcher_stale(r->watcher);
    out->applied = atomic_load_explicit(&r->applied, memory_order_relaxed);
    out->refused = atomic_load_explicit(&r->refused, memory_order_relaxed);
    out->cas_conflicts = atomic_load_explicit(&r->cas_conflicts, memory_order_relaxed);
    out->relists = atomic_load_explicit(&r->relists, memory_order_relaxed);
    fdn__mutex_lock(&r->mu);
    out->revision = r->seen;
    snprintf(out->last_refused, sizeof(out->last_refused), "%s", r->last_refused);
    fdn__mutex_unlock(&r->mu);
    return 0;
}
