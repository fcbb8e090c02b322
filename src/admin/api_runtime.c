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

#include <stddef.h>
#include <stdint.h>
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

/* GET /health's runtime part, read (health_read) apart from written (health_write) so that the
 * server can reuse the text while nothing in here changed (fdn__admin_health_ext_t): every
 * value the text shows, in fixed-size fields with no padding (the two asserts below), names
 * zero-padded, so that the same state gives the same bytes. The uptime is the live value. */
typedef struct svc_in {
    char name[FDN_SERVICE_NAME_MAX + 1];
    int32_t state, healthy, last_error;
    uint32_t restarts;
} svc_in_t;

typedef struct rt_in {
    int64_t status, services, running, restarting, failed;
    int64_t shared; /* 1: the registry's shared part (etcd), the six values after it */
    int64_t reg_stale, reg_lease_ok, reg_revision, reg_entries, reg_owned, reg_lease_ttl_s;
    int64_t cfg; /* 1: the config follows etcd, the three values after it */
    int64_t cfg_stale, cfg_revision, cfg_refused;
    int64_t nsvc; /* services listed below (at most MAX_SVC) */
    svc_in_t svc[MAX_SVC];
} rt_in_t;

_Static_assert(sizeof(svc_in_t) == FDN_SERVICE_NAME_MAX + 1 + 16, "svc_in_t has padding");
_Static_assert(offsetof(rt_in_t, svc) == 17 * sizeof(int64_t), "rt_in_t has padding");

static int health_read(void *in_, size_t *len, int64_t *live, void *user)
{
    fdn_runtime_t *rt = user;
    rt_in_t *in = in_;
    fdn_runtime_health_t h;
    fdn_service_status_t st[MAX_SVC];
    size_t n = 0;
    *len = 0;
    *live = 0;
    int rc = fdn_runtime_health(rt, &h, st, MAX_SVC, &n);
    if (rc < 0)
        return rc; /* nothing written: no runtime part */
    n = n < MAX_SVC ? n : MAX_SVC;
    in->status = (int64_t)h.status;
    in->services = (int64_t)h.services;
    in->running = (int64_t)h.running;
    in->restarting = (int64_t)h.restarting;
    in->failed = (int64_t)h.failed;
    *live = h.uptime_ns / 1000000;
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    fdn_registry_shared_stats_t ss;
    memset(&ss, 0, sizeof(ss));
    ss.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    in->shared = fdn_registry_is_shared(reg) && fdn_registry_shared_stats(reg, &ss) == 0;
    if (!in->shared)
        memset(&ss, 0, sizeof(ss));
    in->reg_stale = ss.stale;
    in->reg_lease_ok = ss.lease_ok;
    in->reg_revision = (int64_t)ss.revision;
    in->reg_entries = (int64_t)ss.entries;
    in->reg_owned = (int64_t)ss.owned;
    in->reg_lease_ttl_s = (int64_t)ss.lease_ttl_s;
    fdn_config_etcd_stats_t cs;
    memset(&cs, 0, sizeof(cs));
    cs.version = FDN_CONFIG_ETCD_STATS_VERSION;
    in->cfg = fdn_config_etcd_stats(fdn_runtime_config(rt), &cs) == 0; /* follows etcd */
    in->cfg_stale = in->cfg && cs.stale;
    in->cfg_revision = in->cfg ? (int64_t)cs.revision : 0;
    in->cfg_refused = in->cfg ? (int64_t)cs.refused : 0;
    in->nsvc = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        svc_in_t *v = &in->svc[i];
        size_t nl = strnlen(st[i].name, sizeof v->name - 1);
        memcpy(v->name, st[i].name, nl);
        memset(v->name + nl, 0, sizeof v->name - nl);
        v->state = (int32_t)st[i].state;
        v->healthy = st[i].healthy;
        v->last_error = st[i].last_error;
        v->restarts = st[i].restarts;
    }
    *len = offsetof(rt_in_t, svc) + n * sizeof(svc_in_t);
    return h.status == FDN_RUNTIME_HEALTHY ? 0 : FDN_EUNHEALTHY;
}

/* Written as text (GET /health is polled): the members and their order are those the jansson
 * version gave; constant keys go out as literals, names and state strings escaped. */
static void health_write(fdn__jw_t *body, fdn__jw_t *services, const void *in_, size_t len,
                         int64_t live, size_t *live_at, void *user)
{
    fdn_runtime_t *rt = user; /* only its name, which never changes */
    const rt_in_t *in = in_;
    *live_at = SIZE_MAX;
    if (len < offsetof(rt_in_t, svc))
        return; /* the read failed: no runtime part */
    fdn__jw_lit(body, "\"runtime\":{\"name\":");
    fdn__jw_str(body, fdn_runtime_name(rt));
    fdn__jw_lit(body, ",\"status\":");
    fdn__jw_str(body, fdn_runtime_status_name((fdn_runtime_status_t)in->status));
    fdn__jw_raw(body, ",", 1);
    JW_KEY(body, "uptime_ms");
    *live_at = body->t.len;
    jw_i64_sep(body, live, false);
    JW_MEMBER_I64(body, "services", in->services, false);
    JW_MEMBER_I64(body, "running", in->running, false);
    JW_MEMBER_I64(body, "restarting", in->restarting, false);
    JW_MEMBER_I64(body, "failed", in->failed, true);
    if (in->shared) {
        fdn__jw_lit(body, "\"registry\":{\"backend\":\"etcd\",");
        JW_MEMBER_BOOL(body, "stale", in->reg_stale);
        JW_MEMBER_BOOL(body, "lease_ok", in->reg_lease_ok);
        JW_MEMBER_I64(body, "revision", in->reg_revision, false);
        JW_MEMBER_I64(body, "entries", in->reg_entries, false);
        JW_MEMBER_I64(body, "owned", in->reg_owned, false);
        JW_MEMBER_I64(body, "lease_ttl_s", in->reg_lease_ttl_s, true);
    }
    if (in->cfg) {
        fdn__jw_lit(body, "\"config_etcd\":{");
        JW_MEMBER_BOOL(body, "stale", in->cfg_stale);
        JW_MEMBER_I64(body, "revision", in->cfg_revision, false);
        JW_MEMBER_I64(body, "refused", in->cfg_refused, true);
    }
    for (int64_t i = 0; i < in->nsvc; i++) {
        const svc_in_t *v = &in->svc[i];
        fdn__jw_key(services, v->name);
        if (v->healthy)
            fdn__jw_lit(services, "{\"status\":\"ok\",\"state\":");
        else
            fdn__jw_lit(services, "{\"status\":\"unhealthy\",\"state\":");
        fdn__jw_str(services, fdn_service_state_name((fdn_service_state_t)v->state));
        fdn__jw_raw(services, ",", 1);
        JW_MEMBER_BOOL(services, "healthy", v->healthy);
        JW_MEMBER_I64(services, "restarts", (int64_t)v->restarts, v->last_error == 0);
        if (v->last_error != 0) {
            fdn__jw_lit(services, "\"last_error\":");
            fdn__jw_str(services, fdn_err_name(v->last_error));
            fdn__jw_raw(services, "},", 2);
        }
    }
}

static const fdn__admin_health_ext_t health_ext = {sizeof(rt_in_t), health_read, health_write};

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
    int rc = fdn__admin_set_health_ext(a, &health_ext, rt);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "GET", "/v1/registry", h_registry, rt);
    return rc < 0 ? fdn__admin_rollback(a, &m, rc) : rc;
}
