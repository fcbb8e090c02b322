/*
 * DESIGN: the helpers the admin server's handlers call (api_*.c, http_builtin.c): path
 * parameters, the request body as JSON, a JSON answer, and the admin's growable text buffer
 * (request bodies, GET /metrics). Pure functions on the caller's request and answer: no
 * threads, locks or shared state of their own (see the DESIGN comment in http.c for the
 * server).
 */
#include "admin/http_impl.h"
#include "admin/http_jw.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int fdn__http_reply(fdn__http_resp_t *resp, unsigned status, json_t *json)
{
    if (json == NULL)
        return FDN_ENOMEM;
    json_decref(resp->json);
    resp->json = json;
    resp->status = status;
    return 0;
}

json_t *fdn__http_json_string(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL || s == NULL || fdn__jw_utf8_valid(s))
        return j; /* NULL: out of memory */
    /* jansson holds only UTF-8: the text fdn__jw_str writes (bad bytes as \ufffd), parsed */
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__jw_str(&w, s);
    if (w.rc == 0)
        (void)fdn_json_loadb(w.t.p, w.t.len, JSON_DECODE_ANY, &j, NULL);
    fdn_free(w.t.p);
    return j;
}

const char *fdn__http_param(const fdn__http_req_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nparams; i++)
        if (strncmp(req->params[i].key, name, n) == 0 && req->params[i].key[n] == '}')
            return req->params[i].val;
    return NULL;
}

static int overflow_error(fdn__http_resp_t *resp, const json_error_t *je)
{
    return fdn_err_set(&resp->err, FDN_EINVAL, "number out of range at line %d column %d: %s",
                       je->line, je->column, je->text);
}

int fdn__http_json_overflow(const char *s, size_t n, fdn__http_resp_t *resp, int rc)
{
    json_error_t je;
    json_t *j = NULL;
    int prc = fdn_json_loadb(s, n, JSON_DECODE_ANY, &j, &je);
    json_decref(j);
    if (prc < 0 && prc != FDN_ENOMEM && json_error_code(&je) == json_error_numeric_overflow)
        return overflow_error(resp, &je);
    return rc;
}

int fdn__http_body_json(const fdn__http_req_t *req, fdn__http_resp_t *resp, json_t **out)
{
    json_error_t je;
    *out = NULL;
    if (req->body_len == 0)
        return fdn_err_set(&resp->err, FDN_EPARSE, "request body must be JSON, got nothing");
    json_t *j = NULL;
    int rc =
        fdn_json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &j, &je);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(&resp->err, FDN_ENOMEM, "out of memory reading the request body");
    /* valid JSON with a number jansson cannot hold (an integer beyond 64 bits, a real beyond
     * a double): an out-of-range value (422), not malformed JSON (400) */
    if (rc < 0 && json_error_code(&je) == json_error_numeric_overflow)
        return overflow_error(resp, &je);
    if (rc < 0)
        return fdn_err_set(&resp->err, FDN_EPARSE, "malformed JSON at line %d column %d: %s",
                           je.line, je.column, je.text);
    *out = j;
    return 0;
}

int fdn__http_body_none(const fdn__http_req_t *req, fdn__http_resp_t *resp)
{
    if (req->body_len == 0)
        return 0;
    json_t *j = NULL;
    int rc = fdn__http_body_json(req, resp, &j);
    if (rc == 0 && !(json_is_object(j) && json_object_size(j) == 0))
        rc = fdn_err_set(&resp->err, FDN_EINVAL, "this endpoint takes no body (or {})");
    json_decref(j);
    return rc;
}

/* ---- the text buffer (public API only: fdn_realloc) ---------------------------------------- */

/* Room for n more bytes and the NUL. */
static int text_reserve(fdn__admin_text_t *t, size_t n)
{
    if (n > SIZE_MAX - t->len - 1)
        return FDN_ENOMEM;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 8192;
        while (cap < t->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? t->len + n + 1 : cap * 2;
        char *p = fdn_realloc(t->p, cap);
        if (p == NULL)
            return FDN_ENOMEM;
        t->p = p;
        t->cap = cap;
    }
    return 0;
}

int fdn__admin_text_printf(fdn__admin_text_t *t, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    int rc = n < 0 ? FDN_EINVAL : text_reserve(t, (size_t)n);
    if (rc == 0) {
        vsnprintf(t->p + t->len, (size_t)n + 1, fmt, aq);
        t->len += (size_t)n;
    }
    va_end(aq);
    return rc;
}

int fdn__admin_text_put(fdn__admin_text_t *t, const char *s, size_t n)
{
    int rc = text_reserve(t, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return 0;
}
