/*
 * DESIGN: admin endpoints of the runtime: the runtime part of GET /health and
 * GET /v1/registry. When the runtime's registry has a shared part (etcd), /v1/registry adds the
 * fleet's entries from its local cache ("shared") and /health its state ("registry": stale,
 * lease); neither touches the network.
 * Threads: runs on the admin server's threads; only calls the runtime's and registry's
 * thread-safe public API (fdn_runtime_health copies statuses; the registry hands out
 * immutable snapshots). No locks, no state of its own besides the runtime pointer.
 */
#include "admin/admin_int.h"

#include <string.h>

#define MAX_SVC 64

static int health_ext(json_t *body, json_t *services, void *user)
{
    fdn_runtime_t *rt = user;
    fdn_runtime_health_t h;
    fdn_service_status_t st[MAX_SVC];
    size_t n = 0;
    int rc = fdn_runtime_health(rt, &h, st, MAX_SVC, &n);
    if (rc < 0)
        return rc;
    json_object_set_new(body, "runtime",
                        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name",
                                  fdn_runtime_name(rt), "status", fdn_runtime_status_name(h.status),
                                  "uptime_ms", (json_int_t)(h.uptime_ns / 1000000), "services",
                                  (json_int_t)h.services, "running", (json_int_t)h.running,
                                  "restarting", (json_int_t)h.restarting, "failed",
                                  (json_int_t)h.failed));
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    if (fdn_registry_is_shared(reg)) {
        fdn_registry_shared_stats_t ss;
        memset(&ss, 0, sizeof(ss));
        ss.version = FDN_REGISTRY_SHARED_STATS_VERSION;
        if (fdn_registry_shared_stats(reg, &ss) == 0)
            json_object_set_new(body, "registry",
                                json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:I}", "backend", "etcd",
                                          "stale", (int)ss.stale, "lease_ok", (int)ss.lease_ok,
                                          "revision", (json_int_t)ss.revision, "entries",
                                          (json_int_t)ss.entries, "owned", (json_int_t)ss.owned,
                                          "lease_ttl_s", (json_int_t)ss.lease_ttl_s));
    }
    fdn_config_etcd_stats_t cs;
    memset(&cs, 0, sizeof(cs));
    cs.version = FDN_CONFIG_ETCD_STATS_VERSION;
    if (fdn_config_etcd_stats(fdn_runtime_config(rt), &cs) == 0) /* the config follows etcd */
        json_object_set_new(body, "config_etcd",
                            json_pack("{s:b, s:I, s:I}", "stale", (int)cs.stale, "revision",
                                      (json_int_t)cs.revision, "refused", (json_int_t)cs.refused));
    for (size_t i = 0; i < n && i < MAX_SVC; i++) {
        json_t *s = json_pack("{s:s, s:s, s:b, s:I}", "status", st[i].healthy ? "ok" : "unhealthy",
                              "state", fdn_service_state_name(st[i].state), "healthy",
                              (int)st[i].healthy, "restarts", (json_int_t)st[i].restarts);
        if (s != NULL && st[i].last_error != 0)
            json_object_set_new(s, "last_error", json_string(fdn_err_name(st[i].last_error)));
        json_object_set_new(services, st[i].name, s);
    }
    return h.status == FDN_RUNTIME_HEALTHY ? 0 : FDN_EUNHEALTHY;
}

/* The shared part: {"stale", "revision", "lease_id", "count", "entries": [...]} from the cache. */
static json_t *shared_json(fdn_registry_t *reg)
{
    fdn_registry_shared_stats_t ss;
    memset(&ss, 0, sizeof(ss));
    ss.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    fdn_registry_instance_t **v = NULL;
    size_t n = 0;
    if (fdn_registry_shared_stats(reg, &ss) != 0 ||
        fdn_registry_list_shared(reg, NULL, &v, &n) != 0)
        return NULL;
    char *entries = NULL;
    json_t *arr = NULL; /* out of memory: the part goes without its entries, as before */
    if (fdn_registry_instances_json(v, n, &entries) == 0)
        (void)fdn_json_loadb(entries, strlen(entries), 0, &arr, NULL);
    fdn_free(entries);
    fdn_registry_instances_free(v, n);
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:o*}", "backend", "etcd", "stale", (int)ss.stale,
                     "revision", (json_int_t)ss.revision, "lease_id", (json_int_t)ss.lease_id,
                     "count", (json_int_t)n, "entries", arr);
}

static int h_registry(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_runtime_t *rt = user;
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    if (reg == NULL)
        return FDN_EUNAVAILABLE;
    char **names = NULL;
    size_t n = 0;
    int rc = fdn_registry_list(reg, &names, &n);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        fdn_registry_entry_t *e = NULL;
        if (fdn_registry_acquire(reg, names[i], &e, NULL) != 0)
            continue; /* unregistered since the listing */
        json_t *meta = json_object();
        for (size_t k = 0; meta != NULL && k < fdn_registry_entry_meta_count(e); k++) {
            const char *key, *val;
            if (fdn_registry_entry_meta_at(e, k, &key, &val) == 0)
                json_object_set_new(meta, key, json_string(val));
        }
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:o*}", "name", fdn_registry_entry_service(e), "owner",
                           (json_int_t)fdn_registry_entry_owner(e), "registered_ns",
                           (json_int_t)fdn_registry_entry_registered_ns(e), "meta", meta));
        fdn_registry_entry_release(e);
    }
    fdn_free(names);
    json_t *body = json_pack("{s:s, s:I, s:o*}", "namespace", fdn_registry_name(reg), "count",
                             (json_int_t)n, "services", arr);
    if (body != NULL && fdn_registry_is_shared(reg))
        json_object_set_new(body, "shared", shared_json(reg));
    return fdn__http_reply(resp, 200, body);
}

int fdn_admin_mount_runtime(fdn_admin_t *a, fdn_runtime_t *rt)
{
    if (a == NULL || rt == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    int rc = fdn__admin_set_health_ext(a, health_ext, rt);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "GET", "/v1/registry", h_registry, rt);
    return rc < 0 ? fdn__admin_rollback(a, &m, rc) : rc;
}
