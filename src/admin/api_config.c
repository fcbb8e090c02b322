/*
 * DESIGN: admin endpoints of the config service: GET /v1/config, GET/PUT
 * /v1/config/{dotted.path}, POST /v1/config/reset (?to= or a body {"to":...}, checked whole
 * before the reset).
 * Threads: runs on the admin server's threads; reads are lock-free snapshot reads of the
 * config service, updates go through its serialised, validating writer. The body of a PUT is
 * handed to the service as JSON text, so its check order (path security, JSON syntax, value
 * security, updatable, whole-tree validation) and codes are the service's own, but for one:
 * valid JSON holding a number beyond int64 or double, which the service finds unparsable
 * (FDN_EPARSE), is an out-of-range value here (422), as on every endpoint
 * (fdn__http_json_overflow).
 */
#include "admin/admin_int.h"
#include "admin/event_json.h"
#include "admin/http_jw.h"

#include <string.h>

static int value_at(fdn_config_t *cfg, const char *path, fdn__http_resp_t *resp, json_t **out)
{
    char *s = NULL;
    int rc = fdn_config_get_json(cfg, path, &s, &resp->err);
    if (rc < 0)
        return rc;
    rc = fdn_json_loadb(s, strlen(s), JSON_DECODE_ANY, out, NULL);
    fdn_free(s);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(&resp->err, FDN_ENOMEM, "out of memory");
    if (rc < 0)
        return fdn_err_set(&resp->err, FDN_EINTERNAL, "config service produced invalid JSON");
    return 0;
}

static int path_param(const fdn__http_req_t *req, fdn__http_resp_t *resp, const char **out)
{
    /* any length and bytes: the service's path rules answer (an unknown path, however long,
     * is 404 on GET and 403 on PUT; past 4096 bytes or with a control byte, 403: its security
     * rule), not a bound of this layer's own (255 bytes answered 422) */
    const char *p = fdn__http_param(req, "path");
    if (p == NULL || *p == '\0')
        return fdn_err_set(&resp->err, FDN_ECONFIG_INVALID_PATH, "bad configuration path");
    *out = p;
    return 0;
}

static int h_all(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    json_t *v = NULL;
    int rc = value_at(user, "", resp, &v);
    if (rc < 0)
        return rc;
    return fdn__http_reply(resp, 200, v);
}

static int h_get(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    const char *path = NULL;
    int rc = path_param(req, resp, &path);
    if (rc < 0)
        return rc;
    /* {"path":..., "value":...} as text when the service's text of the value is already what
     * parsing and dumping it gives (admin/event_json.c: integers, strings, objects...; a real
     * is written at another precision there, so it takes the jansson path) and the path is
     * ASCII: no tree, no parse, no dump */
    char *s = NULL;
    rc = fdn_config_get_json(user, path, &s, &resp->err);
    if (rc < 0)
        return rc;
    size_t sl = strlen(s);
    bool ascii = true;
    for (const char *c = path; *c != '\0' && ascii; c++)
        ascii = (unsigned char)*c < 0x80;
    /* (U+0000 in a string: the jansson path refuses it, keep that answer) */
    if (ascii && fdn__admin_json_is_canonical(s, sl) && memmem(s, sl, "\\u0000", 6) == NULL) {
        fdn__jw_t w = {{NULL, 0, 0}, 0};
        fdn__jw_raw(&w, "{\"path\":", 8);
        fdn__jw_str(&w, path);
        fdn__jw_raw(&w, ",\"value\":", 9);
        fdn__jw_raw(&w, s, sl);
        fdn__jw_raw(&w, "}", 1);
        fdn_free(s);
        if (w.rc != 0) {
            fdn_free(w.t.p);
            return w.rc;
        }
        resp->text = w.t.p;
        resp->text_len = w.t.len;
        resp->content_type = "application/json";
        resp->status = 200;
        return 0;
    }
    json_t *v = NULL;
    rc = fdn_json_loadb(s, sl, JSON_DECODE_ANY, &v, NULL);
    fdn_free(s);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(&resp->err, FDN_ENOMEM, "out of memory");
    if (rc < 0)
        return fdn_err_set(&resp->err, FDN_EINTERNAL, "config service produced invalid JSON");
    return fdn__http_reply(resp, 200, json_pack("{s:s, s:o}", "path", path, "value", v));
}

static int h_put(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_config_t *cfg = user;
    const char *path = NULL;
    int rc = path_param(req, resp, &path);
    if (rc < 0)
        return rc;
    if (req->body_len == 0 || strlen(req->body) != req->body_len)
        return fdn_err_set(&resp->err, FDN_EPARSE,
                           "the body must be one JSON value (without NUL bytes)");
    rc = fdn_config_update_json(cfg, path, req->body, &resp->err);
    if (rc == FDN_EPARSE) /* a number beyond int64 or double: 422, as on every endpoint */
        rc = fdn__http_json_overflow(req->body, req->body_len, resp, rc);
    if (rc < 0)
        return rc;
    json_t *v = NULL;
    if ((rc = value_at(cfg, path, resp, &v)) < 0)
        return rc;
    return fdn__http_reply(resp, 200,
                           json_pack("{s:s, s:o, s:I}", "path", path, "value", v, "revision",
                                     (json_int_t)fdn_config_revision(cfg)));
}

static const char *const RESET_PARAMS[] = {"to", NULL}; /* POST /v1/config/reset?to= */

/* POST /v1/config/reset's body: none, or a JSON object with an optional "to" (as the query's,
 * which it must then match), into *body (to be released) and *to. Checked before anything is
 * reset: a malformed body is refused (400), not ignored. */
static int reset_body(const fdn__http_req_t *req, fdn__http_resp_t *resp, json_t **body,
                      const char **to)
{
    *body = NULL;
    if (req->body_len == 0)
        return 0;
    int rc = fdn__http_body_json(req, resp, body);
    if (rc < 0)
        return rc;
    if (!json_is_object(*body))
        return fdn_err_set(
            &resp->err, FDN_EINVAL,
            "the body must be a JSON object: {} or {\"to\":\"defaults\"|\"startup\"}");
    const char *k;
    json_t *v;
    json_object_foreach(*body, k, v)
    {
        if (strcmp(k, "to") != 0)
            return fdn_err_set(&resp->err, FDN_EINVAL, "unknown field '%s' (only 'to')", k);
    }
    json_t *t = json_object_get(*body, "to");
    if (t == NULL)
        return 0;
    if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t))
        return fdn_err_set(&resp->err, FDN_EINVAL, "field 'to' must be 'defaults' or 'startup'");
    if (*to != NULL && strcmp(*to, json_string_value(t)) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL, "'to' differs between the query and the body");
    *to = json_string_value(t);
    return 0;
}

static int reset_to(fdn_config_t *cfg, const char *to, fdn__http_resp_t *resp)
{
    int rc;
    if (to == NULL || strcmp(to, "defaults") == 0)
        rc = fdn_config_reset(cfg, &resp->err);
    else if (strcmp(to, "startup") == 0)
        rc = fdn_config_reset_to_startup(cfg, &resp->err);
    else
        return fdn_err_set(&resp->err, FDN_EINVAL, "'to' must be 'defaults' or 'startup'");
    if (rc < 0)
        return rc;
    return fdn__http_reply(resp, 200,
                           json_pack("{s:b, s:s, s:I}", "reset", 1, "to", to ? to : "defaults",
                                     "revision", (json_int_t)fdn_config_revision(cfg)));
}

static int h_reset(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_config_t *cfg = user;
    const char *to = fdn__http_query_get(req->target, "to");
    json_t *body = NULL;
    int rc = reset_body(req, resp, &body, &to);
    if (rc == 0)
        rc = reset_to(cfg, to, resp);
    json_decref(body);
    return rc;
}

int fdn_admin_mount_config(fdn_admin_t *a, fdn_config_t *cfg)
{
    if (a == NULL || cfg == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    int rc;
    if ((rc = fdn__admin_route_add(a, "GET", "/v1/config", h_all, cfg)) < 0 ||
        (rc = fdn__admin_route_add_q(a, "POST", "/v1/config/reset", h_reset, cfg, RESET_PARAMS)) <
            0 ||
        (rc = fdn__admin_route_add(a, "GET", "/v1/config/{path}", h_get, cfg)) < 0 ||
        (rc = fdn__admin_route_add(a, "PUT", "/v1/config/{path}", h_put, cfg)) < 0)
        return fdn__admin_rollback(a, &m, rc);
    return 0;
}
