/*
 * DESIGN: config graceful degradation (reference §2.1, "Config Graceful Degradation Flow").
 * A per-service cache of values read through fdn_config_get_with_fallback (path -> JSON text
 * + revision of the snapshot it was read from + monotonic time of the read) and a bounded FIFO of
 * updates accepted while the service was stopped. Unlike the reference the cache belongs to the
 * config handle (no caller-owned global table), serves only when the service is unavailable (a "not
 * found" is never masked by a stale value), is bounded (oldest entry evicted), and only updates
 * that pass all four checks are queued; the queue is applied in order by fdn__config_service_start.
 * An entry is replaced only by a value read from a snapshot at least as new (readers of two
 * snapshots store in either order; the cache never goes back to an older revision).
 * Path-security and not-found errors are decided before the service is asked (the schema is
 * immutable), so a stopped service reports them too instead of "not available".
 * Lock: fb->mu, a leaf lock (taken after the service's wmu, never with smu). No callbacks.
 */
#include "services/config_int.h"
#include "core/assert.h"
#include "logic/config_path.h"

#include <string.h>

typedef struct cache_ent {
    char *path;
    char *json;
    uint64_t rev; /* revision of the snapshot the value was read from */
    int64_t at;
} cache_ent_t;

typedef struct pending {
    char *path;
    char *json;
} pending_t;

struct fdn__cfg_fb {
    fdn__mutex_t mu;
    cache_ent_t *cache FDN_MEMBER_GUARDED_BY(mu);
    size_t ncache, max;
    int64_t ttl_ns;
    pending_t *pending FDN_MEMBER_GUARDED_BY(mu); /* ring */
    size_t phead, npending, pmax;
    uint64_t failed FDN_MEMBER_GUARDED_BY(mu);
};

fdn__cfg_fb_t *fdn__cfg_fb_create(int64_t ttl_ms, size_t max_entries, size_t pending_max)
{
    fdn__cfg_fb_t *fb = fdn__calloc(1, sizeof(*fb));
    if (fb == NULL)
        return NULL;
    fb->cache = fdn__calloc(max_entries, sizeof(cache_ent_t));
    fb->pending = fdn__calloc(pending_max, sizeof(pending_t));
    if (fb->cache == NULL || fb->pending == NULL) {
        fdn__free(fb->cache);
        fdn__free(fb->pending);
        fdn__free(fb);
        return NULL;
    }
    pthread_mutex_init(&fb->mu, NULL);
    fb->max = max_entries;
    fb->pmax = pending_max;
    fb->ttl_ns = ttl_ms > INT64_MAX / 1000000 ? INT64_MAX : ttl_ms * 1000000; /* no overflow */
    return fb;
}

static void ent_free(cache_ent_t *e)
{
    fdn__free(e->path);
    fdn__free(e->json);
}

void fdn__cfg_fb_destroy(fdn__cfg_fb_t *fb)
{
    if (fb == NULL)
        return;
    for (size_t i = 0; i < fb->ncache; i++)
        ent_free(&fb->cache[i]);
    for (size_t i = 0; i < fb->npending; i++) {
        pending_t *p = &fb->pending[(fb->phead + i) % fb->pmax];
        fdn__free(p->path);
        fdn__free(p->json);
    }
    fdn__free(fb->cache);
    fdn__free(fb->pending);
    pthread_mutex_destroy(&fb->mu);
    fdn__free(fb);
}

static void remove_at(fdn__cfg_fb_t *fb, size_t i) FDN_REQUIRES(fb->mu)
{
    FDN_ASSERT(i < fb->ncache);
    ent_free(&fb->cache[i]);
    fb->cache[i] = fb->cache[fb->ncache - 1];
    fb->ncache--;
}

static long find(const fdn__cfg_fb_t *fb, const char *path) FDN_REQUIRES(fb->mu)
{
    for (size_t i = 0; i < fb->ncache; i++) {
        if (strcmp(fb->cache[i].path, path) == 0)
            return (long)i;
    }
    return -1;
}

/* Remember path's value as read from the snapshot of revision rev. An entry read from a newer
 * snapshot is kept: two readers store in any order, and the one that read the older snapshot
 * may come last. */
static void cache_store(fdn__cfg_fb_t *fb, const char *path, const char *json, uint64_t rev,
                        int64_t now)
{
    char *j = fdn__strdup(json);
    if (j == NULL)
        return; /* caching is best effort */
    fdn__mutex_lock(&fb->mu);
    long i = find(fb, path);
    if (i >= 0) {
        if (fb->cache[i].rev <= rev) {
            fdn__free(fb->cache[i].json);
            fb->cache[i].json = j;
            fb->cache[i].rev = rev;
            fb->cache[i].at = now;
        } else {
            fdn__free(j);
        }
    } else {
        char *p = fdn__strdup(path);
        if (p == NULL) {
            fdn__free(j);
        } else {
            if (fb->ncache == fb->max) { /* evict the oldest */
                size_t old = 0;
                for (size_t k = 1; k < fb->ncache; k++) {
                    if (fb->cache[k].at < fb->cache[old].at)
                        old = k;
                }
                remove_at(fb, old);
            }
            FDN_ASSERT(fb->ncache < fb->max);
            fb->cache[fb->ncache++] = (cache_ent_t){p, j, rev, now};
        }
    }
    fdn__mutex_unlock(&fb->mu);
}

static int not_found(const char *path, fdn_error_t *err)
{
    fdn_err_set(err, FDN_ECONFIG_PATH_NOT_FOUND, "Configuration path not found: %.200s", path);
    fdn_err_add_context(err, "path", "%.200s", path);
    return FDN_ECONFIG_PATH_NOT_FOUND;
}

int fdn_config_get_with_fallback(fdn_config_t *cfg, const char *path, char **out, fdn_error_t *err)
{
    if (cfg == NULL || path == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, NULL);
    /* the errors the cache never masks come first, running or not: path security, and a path
     * the schema cannot have (no leaf, no section, not inside a leaf; the schema is immutable) */
    int rc = fdn__cfg_path_check(path, err);
    if (rc != 0)
        return rc;
    const fdn__cfg_schema_t *s = cfg->schema;
    size_t len = strlen(path);
    if (fdn__cfg_schema_find(s, path, len) < 0 && !fdn__cfg_schema_is_section(s, path, len) &&
        fdn__cfg_schema_leaf_above(s, path, len) < 0)
        return not_found(path, err);
    /* read one snapshot, so the value is cached with that snapshot's revision */
    const fdn_config_snapshot_t *snap = NULL;
    rc = fdn_config_acquire(cfg, &snap);
    fdn__cfg_fb_t *fb = cfg->fb;
    if (rc == 0) {
        uint64_t rev = fdn_config_snapshot_revision(snap);
        rc = fdn_config_snapshot_get_json(snap, path, out);
        fdn_config_release(snap);
        if (rc == FDN_ECONFIG_PATH_NOT_FOUND)
            return not_found(path, err);
        if (rc != 0)
            return fdn_err_set(err, rc, NULL);
        cache_store(fb, path, *out, rev, fdn_clock_mono_ns(cfg->clock));
        return 0;
    }
    if (rc != FDN_EUNAVAILABLE)
        return fdn_err_set(err, rc, NULL);
    int64_t now = fdn_clock_mono_ns(cfg->clock);
    fdn__mutex_lock(&fb->mu);
    long i = find(fb, path);
    if (i < 0) {
        rc = fdn_err_set(err, FDN_ECONFIG_UNAVAILABLE, "Configuration not available");
    } else if (now - fb->cache[i].at > fb->ttl_ns) {
        remove_at(fb, (size_t)i);
        rc = fdn_err_set(err, FDN_ECONFIG_UNAVAILABLE, "Configuration cache expired");
    } else {
        *out = fdn__strdup(fb->cache[i].json);
        rc = *out != NULL ? 0 : fdn_err_set(err, FDN_ENOMEM, NULL);
    }
    fdn__mutex_unlock(&fb->mu);
    if (rc == FDN_ECONFIG_UNAVAILABLE)
        fdn_err_add_context(err, "path", "%.200s", path);
    return rc;
}

size_t fdn_config_fallback_cleanup(fdn_config_t *cfg)
{
    if (cfg == NULL)
        return 0;
    fdn__cfg_fb_t *fb = cfg->fb;
    int64_t now = fdn_clock_mono_ns(cfg->clock);
    size_t removed = 0;
    fdn__mutex_lock(&fb->mu);
    for (size_t i = 0; i < fb->ncache;) {
        if (now - fb->cache[i].at > fb->ttl_ns) {
            remove_at(fb, i);
            removed++;
        } else {
            i++;
        }
    }
    fdn__mutex_unlock(&fb->mu);
    return removed;
}

static int queue_push(void *ctx, const char *path, const char *json)
{
    fdn__cfg_fb_t *fb = ctx;
    int rc = 0;
    fdn__mutex_lock(&fb->mu);
    if (fb->npending == fb->pmax) {
        rc = FDN_ENOSPC;
    } else {
        char *p = fdn__strdup(path);
        char *j = fdn__strdup(json);
        if (p == NULL || j == NULL) {
            fdn__free(p);
            fdn__free(j);
            rc = FDN_ENOMEM;
        } else {
            fb->pending[(fb->phead + fb->npending) % fb->pmax] = (pending_t){p, j};
            fb->npending++;
        }
    }
    fdn__mutex_unlock(&fb->mu);
    return rc;
}

bool fdn__cfg_fb_pop_pending(fdn__cfg_fb_t *fb, char **path, char **json)
{
    bool got = false;
    fdn__mutex_lock(&fb->mu);
    if (fb->npending > 0) {
        *path = fb->pending[fb->phead].path;
        *json = fb->pending[fb->phead].json;
        fb->phead = (fb->phead + 1) % fb->pmax;
        fb->npending--;
        got = true;
    }
    fdn__mutex_unlock(&fb->mu);
    return got;
}

void fdn__cfg_fb_count_failed(fdn__cfg_fb_t *fb)
{
    fdn__mutex_lock(&fb->mu);
    fb->failed++;
    fdn__mutex_unlock(&fb->mu);
}

void fdn__cfg_fb_counts(fdn__cfg_fb_t *fb, size_t *cached, size_t *pending, uint64_t *failed)
{
    fdn__mutex_lock(&fb->mu);
    if (cached != NULL)
        *cached = fb->ncache;
    if (pending != NULL)
        *pending = fb->npending;
    if (failed != NULL)
        *failed = fb->failed;
    fdn__mutex_unlock(&fb->mu);
}

void fdn_config_fallback_stats(fdn_config_t *cfg, size_t *cached, size_t *pending)
{
    if (cfg == NULL) {
        if (cached != NULL)
            *cached = 0;
        if (pending != NULL)
            *pending = 0;
        return;
    }
    fdn__cfg_fb_counts(cfg->fb, cached, pending, NULL);
}

int fdn_config_update_or_queue(fdn_config_t *cfg, const char *path, const char *value_json,
                               bool *queued, fdn_error_t *err)
{
    if (queued != NULL)
        *queued = false;
    if (cfg == NULL)
        return fdn_err_set(err, FDN_EINVAL, NULL);
    int rc = fdn__config_check_and_queue(cfg, path, value_json, queue_push, cfg->fb, err);
    if (rc == 1) { /* running */
        rc = fdn_config_update_json(cfg, path, value_json, err);
        if (rc != FDN_EUNAVAILABLE)
            return rc;
        /* stopped between the check and the update: queue it, as the header promises */
        rc = fdn__config_check_and_queue(cfg, path, value_json, queue_push, cfg->fb, err);
        if (rc == 1) /* restarted meanwhile */
            return fdn_config_update_json(cfg, path, value_json, err);
    }
    if (rc == 0 && queued != NULL)
        *queued = true;
    return rc;
}
