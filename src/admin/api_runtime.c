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
#include "admin/http_jw.h"

#include <string.h>

#define MAX_SVC 64

/* "key":v, with key a literal that needs no escape (sizeof includes the NUL: not written) */
#define JW_KEY(w, k) fdn__jw_raw(w, "\"" k "\":", sizeof k + 2)

static void jw_i64_sep(fdn__jw_t *w, int64_t v, bool last)
{
    char b[24];
    size_t n = fdn__jw_fmt_i64(b, v);
    memcpy(b + n, last ? "}," : ",", last ? 2 : 1);
    fdn__jw_raw(w, b, n + (last ? 2 : 1));
}

#define JW_MEMBER_I64(w, k, v, last)                                                               \
    do {                                                                                           \
        JW_KEY(w, k);                                                                              \
        jw_i64_sep(w, v, last);                                                                    \
    } while (0)

#define JW_MEMBER_BOOL(w, k, v)                                                                    \
    do {                                                                                           \
        JW_KEY(w, k);                                                                              \
        if (v)                                                                                     \
            fdn__jw_raw(w, "true,", 5);                                                            \
        else                                                                                       \
            fdn__jw_raw(w, "false,", 6);                                                           \
    } while (0)

/* Written as text (GET /health is polled): the members and their order are those the jansson
 * version gave; constant keys go out as literals, names and state strings escaped. */
static int health_ext(fdn__jw_t *body, fdn__jw_t *services, void *user)
{
    fdn_runtime_t *rt = user;
    fdn_runtime_health_t h;
    fdn_service_status_t st[MAX_SVC];
    size_t n = 0;
    int rc = fdn_runtime_health(rt, &h, st, MAX_SVC, &n);
    if (rc < 0)
        return rc;
    fdn__jw_lit(body, "\"runtime\":{\"name\":");
    fdn__jw_str(body, fdn_runtime_name(rt));
    fdn__jw_lit(body, ",\"status\":");
    fdn__jw_str(body, fdn_runtime_status_name(h.status));
    fdn__jw_raw(body, ",", 1);
    JW_MEMBER_I64(body, "uptime_ms", h.uptime_ns / 1000000, false);
    JW_MEMBER_I64(body, "services", (int64_t)h.services, false);
    JW_MEMBER_I64(body, "running", (int64_t)h.running, false);
    JW_MEMBER_I64(body, "restarting", (int64_t)h.restarting, false);
    JW_MEMBER_I64(body, "failed", (int64_t)h.failed, true);
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    if (fdn_registry_is_shared(reg)) {
        fdn_registry_shared_stats_t ss;
        memset(&ss, 0, sizeof(ss));
        ss.version = FDN_REGISTRY_SHARED_STATS_VERSION;
        if (fdn_registry_shared_stats(reg, &ss) == 0) {
            fdn__jw_lit(body, "\"registry\":{\"backend\":\"etcd\",");
            JW_MEMBER_BOOL(body, "stale", ss.stale);
            JW_MEMBER_BOOL(body, "lease_ok", ss.lease_ok);
            JW_MEMBER_I64(body, "revision", (int64_t)ss.revision, false);
            JW_MEMBER_I64(body, "entries", (int64_t)ss.entries, false);
            JW_MEMBER_I64(body, "owned", (int64_t)ss.owned, false);
            JW_MEMBER_I64(body, "lease_ttl_s", (int64_t)ss.lease_ttl_s, true);
        }
    }
    fdn_config_etcd_stats_t cs;
    memset(&cs, 0, sizeof(cs));
    cs.version = FDN_CONFIG_ETCD_STATS_VERSION;
    if (fdn_config_etcd_stats(fdn_runtime_config(rt), &cs) == 0) { /* the config follows etcd */
        fdn__jw_lit(body, "\"config_etcd\":{");
        JW_MEMBER_BOOL(body, "stale", cs.stale);
        JW_MEMBER_I64(body, "revision", (int64_t)cs.revision, false);
        JW_MEMBER_I64(body, "refused", (int64_t)cs.refused, true);
    }
    for (size_t i = 0; i < n && i < MAX_SVC; i++) {
        fdn__jw_key(services, st[i].name);
        if (st[i].healthy)
            fdn__jw_lit(services, "{\"status\":\"ok\",\"state\":");
        else
            fdn__jw_lit(services, "{\"status\":\"unhealthy\",\"state\":");
        fdn__jw_str(services, fdn_service_state_name(st[i].state));
        fdn__jw_raw(services, ",", 1);
        JW_MEMBER_BOOL(services, "healthy", st[i].healthy);
        JW_MEMBER_I64(services, "restarts", (int64_t)st[i].restarts, st[i].last_error == 0);
        if (st[i].last_error != 0) {
            fdn__jw_lit(services, "\"last_error\":");
            fdn__jw_str(services, fdn_err_name(st[i].last_error));
            fdn__jw_raw(services, "},", 2);
        }
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
            continue; /* unregistered since the listing (not counted) */
        /* a program's names and metadata need not be UTF-8: written with U+FFFD */
        json_t *meta = json_object();
        for (size_t k = 0; meta != NULL && k < fdn_registry_entry_meta_count(e); k++) {
            const char *key, *val;
            if (fdn_registry_entry_meta_at(e, k, &key, &val) != 0)
                continue;
            json_t *jk = fdn__http_json_string(key);
            if (jk == NULL ||
                json_object_set_new(meta, json_string_value(jk), fdn__http_json_string(val)) != 0) {
                json_decref(meta);
                meta = NULL;
            }
            json_decref(jk);
        }
        json_t *one = json_pack("{s:o, s:I, s:I, s:o}", "name",
                                fdn__http_json_string(fdn_registry_entry_service(e)), "owner",
                                (json_int_t)fdn_registry_entry_owner(e), "registered_ns",
                                (json_int_t)fdn_registry_entry_registered_ns(e), "meta", meta);
        fdn_registry_entry_release(e);
        if (json_array_append_new(arr, one) != 0) {
            json_decref(arr); /* an entry left out would disagree with "count" */
            arr = NULL;
        }
    }
    fdn_free(names);
    if (arr == NULL)
        return FDN_ENOMEM;
    json_t *body =
        json_pack("{s:o, s:I, s:o}", "namespace", fdn__http_json_string(fdn_registry_name(reg)),
                  "count", (json_int_t)json_array_size(arr), "services", arr);
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
