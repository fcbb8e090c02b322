/*
 * DESIGN: admin endpoints of the rate limiter: POST /v1/limiter/check, and Hammer's inc, set
 * and get as POST /v1/limiter/{inc,set,get} (no decision, always 200); GET /v1/limiter/keys
 * (the busiest live keys, a bounded scan: the status page's panel); and the limiter's
 * backend in GET /health ("rate_limiter_backend") and GET /metrics (fdn_rate_limiter_*; the
 * backend_* ones for Redis only). With telemetry mounted on the server, the runtime's
 * collector (src/runtime/runtime_metrics.c) exports the same families through telemetry
 * (also in OpenMetrics), and this writer is not called (fdn__admin_add_metrics_fallback).
 * Threads: runs on the admin server's threads; calls only the limiter's key calls (lock-free
 * per key). Keys: every key it makes is in the HTTP namespace (FDN_LIMIT_KEY_NS_HTTP), which
 * the key calls refuse from a program, so each call here says FDN_LIMIT_RESERVED_NS:
 * fdn_limiter_check (a get is its peek), fdn_limiter_inc_flags, fdn_limiter_set_flags (public
 * entry points: fdn_admin links libfdn's exports only, no fdn__ internal).
 * A denied check answers 429 with Retry-After (whole seconds, rounded up) and the
 * same result fields as an allowed one, plus the error object. Refused with 422 before the
 * limiter is touched: a key over 256 bytes, and a cost above what the rule ever admits at
 * once (it could never succeed, so a 429 with a Retry-After would mislead the client).
 * The bodies are read by admin/limiter_req.c (pure, fuzzed by fuzz/fuzz_limiter_req.c).
 * Identities: a request's optional `identity` (1..64 bytes) makes the limiter key
 * "<identity>\x1f<key>" (FDN_LIMIT_IDENTITY_SEP), so the limiter counts that caller's live
 * keys; past max_keys_per_identity a new key of that identity answers 429 (FDN_ENOSPC) while
 * other callers are served. The identity is declared by the client: the quota keeps apart
 * callers that say who they are; the table's own bound (503, /health) covers the others.
 */
#include "admin/admin_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fdn/breaker.h>

#include "admin/http_jw.h"
#include "admin/limiter_req.h"

/* ceil(ns / unit) without overflow (the limiter reports INT64_MAX for "never") */
static int64_t ceil_div(int64_t ns, int64_t unit)
{
    if (ns <= 0)
        return 0;
    return ns / unit + (ns % unit != 0);
}

/* Parse the request body for op (admin/limiter_req.c: key, rule, the op's integer field).
 * 0 with *body to json_decref, or a negative code with resp->err set (*body may be set). */
static int parse_lreq(const fdn__http_req_t *req, fdn__http_resp_t *resp, fdn__limiter_req_op_t op,
                      json_t **body, fdn__limiter_req_t *q)
{
    /* the common body (flat, plain strings and integers, valid) without jansson: its parse
     * was half a check's cost; anything else, and every refusal, takes the full path */
    *body = NULL;
    if (fdn__limiter_req_fast(req->body, req->body_len, op, q) == 0)
        return 0;
    int rc = fdn__http_body_json(req, resp, body);
    if (rc < 0)
        return rc;
    return fdn__limiter_req_parse(*body, op, q, &resp->err);
}

static json_t *result_json(bool allowed, const fdn_limit_result_t *r)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "allowed", allowed, "count",
                     (json_int_t)r->count, "limit", (json_int_t)r->limit, "remaining",
                     (json_int_t)r->remaining, "reset_ms",
                     (json_int_t)ceil_div(r->reset_ns, 1000000), "retry_after_ms",
                     (json_int_t)ceil_div(r->retry_after_ns, 1000000));
}

/* result_json's object as JSON text, the same bytes json_dumps gave (JSON_COMPACT), for a
 * 200 answer: building and dumping the tree was a third of a check's cost. */
static int result_reply(fdn__http_resp_t *resp, bool allowed, const fdn_limit_result_t *r)
{
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__jw_lit(&w, allowed ? "{\"allowed\":true,\"count\":" : "{\"allowed\":false,\"count\":");
    fdn__jw_i64(&w, r->count);
    fdn__jw_lit(&w, ",\"limit\":");
    fdn__jw_i64(&w, r->limit);
    fdn__jw_lit(&w, ",\"remaining\":");
    fdn__jw_i64(&w, r->remaining);
    fdn__jw_lit(&w, ",\"reset_ms\":");
    fdn__jw_i64(&w, ceil_div(r->reset_ns, 1000000));
    fdn__jw_lit(&w, ",\"retry_after_ms\":");
    fdn__jw_i64(&w, ceil_div(r->retry_after_ns, 1000000));
    fdn__jw_raw(&w, "}", 1);
    if (w.rc != 0) {
        fdn_free(w.t.p);
        return FDN_ENOMEM;
    }
    resp->text = w.t.p;
    resp->text_len = w.t.len;
    resp->content_type = "application/json";
    resp->status = 200;
    return 0;
}

/* A new key refused because the table is full: the server is full for now (503). */
static int full_reply(fdn__http_resp_t *resp, const fdn_limit_result_t *r)
{
    int rc = fdn_err_set(&resp->err, FDN_ELIMITER,
                         "rate limiter full: no room for a new key, retry later");
    resp->status = 503;
    resp->retry_after_s = ceil_div(r->retry_after_ns, 1000000000);
    if (resp->retry_after_s < 1)
        resp->retry_after_s = 1;
    return rc;
}

/* A new key refused because its identity holds its quota of live keys: 429, for that caller
 * only. */
static int quota_reply(fdn_limiter_t *l, fdn__http_resp_t *resp, const fdn__limiter_req_t *q)
{
    fdn_limiter_backend_status_t st;
    if (fdn_limiter_backend_status(l, &st) != 0)
        st.max_keys_per_identity = 0;
    int rc = fdn_err_set(&resp->err, FDN_ENOSPC,
                         "identity '%s' holds %u live rate limiter keys, the most one identity "
                         "may hold (infrastructure.rate_limiting.max_keys_per_identity): no new "
                         "key until some of them expire",
                         q->identity ? q->identity : "", st.max_keys_per_identity);
    fdn_err_add_context(&resp->err, "max_keys_per_identity", "%u", st.max_keys_per_identity);
    resp->status = 429;
    return rc;
}

static int h_check(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_limiter_t *l = user;
    json_t *body = NULL;
    fdn__limiter_req_t q;
    int rc = parse_lreq(req, resp, FDN__LREQ_CHECK, &body, &q);
    if (rc < 0)
        goto out;
    fdn_limit_result_t r;
    memset(&r, 0, sizeof r);
    rc = fdn_limiter_check(l, q.key, q.keylen, &q.rule, q.value, FDN_LIMIT_RESERVED_NS, &r);
    if (rc == FDN_ELIMITER) {
        rc = full_reply(resp, &r);
        goto out;
    }
    if (rc == FDN_ENOSPC) {
        rc = quota_reply(l, resp, &q);
        goto out;
    }
    if (rc < 0 && rc != FDN_ERATE_LIMITED)
        goto out;
    if (rc == 0) {
        rc = result_reply(resp, true, &r);
        goto out;
    }
    json_t *j = result_json(false, &r);
    if (j != NULL && rc == FDN_ERATE_LIMITED) {
        fdn_err_set(&resp->err, rc, "rate limit of %lld per %lld ms exceeded for this key",
                    (long long)q.rule.limit, (long long)q.rule.period_ms);
        json_t *e = fdn__http_error_json(rc, &resp->err);
        if (e != NULL)
            json_object_update(j, e);
        json_decref(e);
        resp->retry_after_s = ceil_div(r.retry_after_ns, 1000000000);
        if (resp->retry_after_s < 1)
            resp->retry_after_s = 1;
    }
    rc = fdn__http_reply(resp, 429, j);
out:
    json_decref(body);
    return rc;
}

/* POST /v1/limiter/inc {.., "cost"?}, /set {.., "count"}, /get {..}: Hammer's inc, set and
 * get. No decision: 200 with the state after ("allowed": for inc, whether a check of that
 * cost would have been allowed; for set and get, whether the key is within its limit). */
typedef enum { L_INC, L_SET, L_GET } lop_t;

static int count_request(const fdn__http_req_t *req, fdn__http_resp_t *resp, fdn_limiter_t *l,
                         lop_t op)
{
    static const fdn__limiter_req_op_t ops[] = {FDN__LREQ_INC, FDN__LREQ_SET, FDN__LREQ_GET};
    json_t *body = NULL;
    fdn__limiter_req_t q;
    int rc = parse_lreq(req, resp, ops[op], &body, &q);
    if (rc < 0)
        goto out;
    fdn_limit_result_t r;
    memset(&r, 0, sizeof r);
    /* the key is in the HTTP namespace (FDN_LIMIT_KEY_NS_HTTP): each call is told so, as
     * fdn_limiter_get is not (it peeks as fdn_limiter_get does, a denial being the answer) */
    if (op == L_INC)
        rc = fdn_limiter_inc_flags(l, q.key, q.keylen, &q.rule, q.value, FDN_LIMIT_RESERVED_NS, &r);
    else if (op == L_SET)
        rc = fdn_limiter_set_flags(l, q.key, q.keylen, &q.rule, q.value, FDN_LIMIT_RESERVED_NS, &r);
    else {
        rc = fdn_limiter_check(l, q.key, q.keylen, &q.rule, 1,
                               FDN_LIMIT_PEEK | FDN_LIMIT_RESERVED_NS, &r);
        if (rc == FDN_ERATE_LIMITED) /* a read: the count is the answer */
            rc = 0;
        /* "allowed" is the key's state (within its limit), not shadow mode's decision: a
         * shadow-mode peek answers allowed with shadow_denied */
        if (r.shadow_denied)
            r.allowed = false;
    }
    if (rc == FDN_ELIMITER) {
        rc = full_reply(resp, &r);
        goto out;
    }
    if (rc == FDN_ENOSPC) {
        rc = quota_reply(l, resp, &q);
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = result_reply(resp, r.allowed, &r);
out:
    json_decref(body);
    return rc;
}

static int h_inc(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    return count_request(req, resp, user, L_INC);
}

static int h_set(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    return count_request(req, resp, user, L_SET);
}

static int h_get(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    return count_request(req, resp, user, L_GET);
}

/* GET /v1/limiter/keys?top=N: the busiest live keys (most requests in their current window
 * first; N 1..LIMITER_TOP_MAX, default 10), by a bounded scan of the store
 * (fdn_limiter_top_keys): the status page's panel. */
#define LIMITER_TOP_MAX 100
static const char *const KEYS_PARAMS[] = {"top", NULL};

static int h_keys(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_limiter_t *l = user;
    int64_t top = 10;
    const char *v = fdn__http_query_get(req->target, "top");
    if (v != NULL && fdn__http_parse_i64(v, 1, LIMITER_TOP_MAX, &top) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL,
                           "query parameter 'top' must be an integer in [1, %d]", LIMITER_TOP_MAX);
    fdn_limit_key_info_t *k = fdn_malloc((size_t)top * sizeof(*k));
    if (k == NULL)
        return fdn_err_set(&resp->err, FDN_ENOMEM, "out of memory");
    size_t n = 0;
    uint64_t scanned = 0;
    int rc = fdn_limiter_top_keys(l, k, (size_t)top, &n, &scanned);
    fdn_limiter_backend_status_t st;
    if (rc == 0)
        rc = fdn_limiter_backend_status(l, &st);
    if (rc != 0) {
        fdn_free(k);
        return fdn_err_set(&resp->err, rc, "rate limiter: %s", fdn_strerror(rc));
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr != NULL; i++) {
        const fdn_limit_key_info_t *e = &k[i];
        /* a program's key need not be UTF-8, and one cut to key[] may end inside a sequence */
        json_t *o = json_pack("{s:o, s:o, s:b, s:{s:s, s:I, s:I, s:I}, s:I, s:I, s:I, s:I}", "key",
                              fdn__http_json_string(e->key), "identity",
                              fdn__http_json_string(e->identity), "key_truncated", e->key_truncated,
                              "rule", "algorithm", fdn_limit_algo_name(e->rule.algo), "limit",
                              (json_int_t)e->rule.limit, "window_ms", (json_int_t)e->rule.period_ms,
                              "burst", (json_int_t)e->rule.burst, "count", (json_int_t)e->count,
                              "limit", (json_int_t)e->limit, "remaining", (json_int_t)e->remaining,
                              "reset_ms", (json_int_t)ceil_div(e->reset_ns, 1000000));
        /* keys made through this API (the usual case) as before; any other maker is named */
        static const char *const ns_names[] = {"program", "protect", "http", "rule", "entity"};
        if (o != NULL && e->key_ns != FDN_LIMIT_NS_HTTP && e->key_ns <= FDN_LIMIT_NS_ENTITY &&
            json_object_set_new(o, "namespace", json_string(ns_names[e->key_ns])) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    fdn_free(k);
    json_t *j = arr != NULL
                    ? json_pack("{s:o, s:I, s:s, s:I, s:I, s:I}", "keys", arr, "top",
                                (json_int_t)top, "backend", fdn_limiter_backend_name(st.backend),
                                "live_keys", (json_int_t)st.keys, "key_capacity",
                                (json_int_t)st.key_capacity, "scanned", (json_int_t)scanned)
                    : NULL;
    return fdn__http_reply(resp, 200, j);
}

/* GET /health: "rate_limiter_keys" is unhealthy for a minute after a new key was refused
 * because the key table (its shard) was full: clients are being turned away with 503. */
#define REFUSAL_DEGRADED_NS (60LL * 1000000000)

/* Each check reads only its own field (fdn_limiter_refusal_age_ns, fdn_limiter_backend_available:
 * a few loads), not the backend's whole status, whose sums over the memory store's shards
 * neither uses (that read was ~0.9 k of GET /health's ~3.0 k instructions in the handler). */
static int keys_health(void *user)
{
    int64_t age = fdn_limiter_refusal_age_ns(user);
    return age < 0 || age >= REFUSAL_DEGRADED_NS ? 0 : FDN_ELIMITER;
}

/* GET /health: "rate_limiter_backend" is unhealthy while a Redis backend cannot reach Redis
 * (its failure policy answers the checks meanwhile). */
static int backend_health(void *user)
{
    return fdn_limiter_backend_available(user) ? 0 : FDN_EUNAVAILABLE;
}

/* GET /metrics: the store's keys, capacity and refusals; the Redis backend's state. */
static int backend_metrics(char **out, size_t *len, void *user)
{
    fdn_limiter_backend_status_t st;
    int rc = fdn_limiter_backend_status(user, &st);
    *out = NULL;
    *len = 0;
    if (rc != 0)
        return rc;
    fdn__admin_text_t t = {NULL, 0, 0};
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (rc == 0)                                                                               \
            rc = fdn__admin_text_printf(&t, __VA_ARGS__);                                          \
    } while (0)
    PUT("# HELP fdn_rate_limiter_keys Live keys in this process's limiter store.\n"
        "# TYPE fdn_rate_limiter_keys gauge\nfdn_rate_limiter_keys %llu\n",
        (unsigned long long)st.keys);
    PUT("# HELP fdn_rate_limiter_keys_capacity Bound on the live keys of this process's limiter "
        "store.\n# TYPE fdn_rate_limiter_keys_capacity gauge\n"
        "fdn_rate_limiter_keys_capacity %llu\n",
        (unsigned long long)st.key_capacity);
    PUT("# HELP fdn_rate_limiter_new_keys_refused_total New limiter keys refused because their "
        "shard was full of live keys.\n"
        "# TYPE fdn_rate_limiter_new_keys_refused_total counter\n"
        "fdn_rate_limiter_new_keys_refused_total %llu\n",
        (unsigned long long)st.new_keys_refused);
    PUT("# HELP fdn_rate_limiter_identities Identities holding live keys in this process's "
        "limiter store.\n# TYPE fdn_rate_limiter_identities gauge\n"
        "fdn_rate_limiter_identities %llu\n",
        (unsigned long long)st.identities);
    PUT("# HELP fdn_rate_limiter_identity_keys_refused_total New limiter keys refused because "
        "their identity held max_keys_per_identity live keys.\n"
        "# TYPE fdn_rate_limiter_identity_keys_refused_total counter\n"
        "fdn_rate_limiter_identity_keys_refused_total %llu\n",
        (unsigned long long)st.identity_keys_refused);
    if (st.backend != FDN_LIMITER_BACKEND_REDIS)
        goto done;
    PUT("# HELP fdn_rate_limiter_backend_up 1 while the limiter's engine backend answers and "
        "its breaker is closed.\n# TYPE fdn_rate_limiter_backend_up gauge\n");
    PUT("fdn_rate_limiter_backend_up{backend=\"redis\"} %d\n",
        st.connected && st.breaker_state == FDN_BREAKER_CLOSED);
    PUT("# HELP fdn_rate_limiter_backend_breaker_state The breaker around the engine backend: 1 "
        "for its current state, 0 for the others.\n"
        "# TYPE fdn_rate_limiter_backend_breaker_state gauge\n");
    for (int k = FDN_BREAKER_CLOSED; k <= FDN_BREAKER_HALF_OPEN; k++)
        PUT("fdn_rate_limiter_backend_breaker_state{backend=\"redis\",state=\"%s\"} %d\n",
            fdn_breaker_state_name((fdn_breaker_state_t)k), st.breaker_state == k);
    static const struct {
        const char *name;
        size_t off;
    } ops[] = {
        {"command", offsetof(fdn_limiter_backend_status_t, commands)},
        {"error", offsetof(fdn_limiter_backend_status_t, errors)},
        {"fallback", offsetof(fdn_limiter_backend_status_t, fallbacks)},
        {"local_denial", offsetof(fdn_limiter_backend_status_t, local_denials)},
        {"script_load", offsetof(fdn_limiter_backend_status_t, script_loads)},
    };
    PUT("# HELP fdn_rate_limiter_backend_operations_total Limiter backend operations by kind: "
        "command (sent), error, fallback (answered by the failure policy), local_denial (deny "
        "cache), script_load.\n# TYPE fdn_rate_limiter_backend_operations_total counter\n");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + ops[i].off, sizeof v);
        PUT("fdn_rate_limiter_backend_operations_total{backend=\"redis\",operation=\"%s\"} %llu\n",
            ops[i].name, (unsigned long long)v);
    }
    static const int64_t bounds[7] = FDN_LIMITER_LATENCY_BOUNDS_US;
    PUT("# HELP fdn_rate_limiter_backend_request_duration_seconds Limiter checks sent to the "
        "engine backend: time including the wait for a connection or pipeline.\n"
        "# TYPE fdn_rate_limiter_backend_request_duration_seconds histogram\n");
    for (int i = 0; i < 7; i++)
        PUT("fdn_rate_limiter_backend_request_duration_seconds_bucket{backend=\"redis\",le=\"%g\"} "
            "%llu\n",
            (double)bounds[i] / 1e6, (unsigned long long)st.latency_le_us[i]);
    PUT("fdn_rate_limiter_backend_request_duration_seconds_bucket{backend=\"redis\",le=\"+Inf\"} "
        "%llu\n",
        (unsigned long long)st.latency_le_us[7]);
    PUT("fdn_rate_limiter_backend_request_duration_seconds_sum{backend=\"redis\"} %.6f\n",
        (double)st.latency_sum_us / 1e6);
    PUT("fdn_rate_limiter_backend_request_duration_seconds_count{backend=\"redis\"} %llu\n",
        (unsigned long long)st.latency_le_us[7]);
done:
#undef PUT
    if (rc != 0) {
        fdn_free(t.p);
        return rc;
    }
    *out = t.p;
    *len = t.len;
    return 0;
}

int fdn_admin_mount_limiter(fdn_admin_t *a, fdn_limiter_t *l)
{
    if (a == NULL || l == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    int rc = fdn__admin_route_add(a, "POST", "/v1/limiter/check", h_check, l);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "POST", "/v1/limiter/inc", h_inc, l);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "POST", "/v1/limiter/set", h_set, l);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "POST", "/v1/limiter/get", h_get, l);
    if (rc == 0)
        rc = fdn__admin_route_add_q(a, "GET", "/v1/limiter/keys", h_keys, l, KEYS_PARAMS);
    if (rc == 0)
        rc = fdn_admin_add_health(a, "rate_limiter_backend", backend_health, l);
    if (rc == 0)
        rc = fdn_admin_add_health(a, "rate_limiter_keys", keys_health, l);
    if (rc == 0)
        rc = fdn__admin_add_metrics_fallback(a, backend_metrics, l);
    return rc < 0 ? fdn__admin_rollback(a, &m, rc) : rc;
}
