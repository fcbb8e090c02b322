/*
 * DESIGN: the admin server's built-in endpoints, GET /health and GET /metrics (see the DESIGN
 * comment in http.c for the server). Both run on the server's threads, many at once: they read
 * the health checks and metrics writers registered before start (read-only afterwards), call
 * them (thread-safe by contract), and write their answers as text. Shared state: the
 * relaxed atomics `metrics_len` (a capacity hint) and `by_class` (the server's counts);
 * GET /health's remembered bodies (`hmemo`, see "Reuse" below),
 * each slot owned by the thread that took its `busy` flag (acquire; cleared with release), a
 * thread that finds every slot taken answering without one. No locks, no waits.
 */
#include "admin/http_impl.h"
#include "admin/http_jw.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Where the member "name":{...} (followed by ',') starts in the services text, or NULL. Check
 * names are [A-Za-z0-9_.-] and a member's values never hold `":{`, so the match is a key. */
static const char *find_member(const fdn__admin_text_t *t, const char *name, size_t *span)
{
    char pat[64];
    size_t nl = strlen(name);
    if (nl + 4 > sizeof pat || t->p == NULL)
        return NULL;
    pat[0] = '"';
    memcpy(pat + 1, name, nl);
    memcpy(pat + 1 + nl, "\":{", 3);
    size_t n = nl + 4;
    const char *m = memmem(t->p, t->len, pat, n);
    if (m == NULL)
        return NULL;
    const char *e = strchr(m + n, '}'); /* the member's object holds no nested object */
    if (e == NULL)
        return NULL;
    *span = (size_t)(e - m) + 2; /* with its '}' and ',' */
    return m;
}

/* The body of GET /health, written as text in one pass (no jansson tree: this endpoint is
 * polled) from what the extension read (in[0..in_len), live) and the checks' results res. Its
 * form is the one jansson gave: {runtime..., "status", "services": {the runtime's services,
 * then the health checks}}; a check named like a runtime service replaces it in place, as
 * json_object_set did. *live_at: where the live value's digits are (SIZE_MAX: none). */
static int write_health(const fdn_admin_t *a, const void *in, size_t in_len, int64_t live,
                        const int (*res)[2], bool ok, fdn__admin_text_t *out, size_t *live_at)
{
    fdn__jw_t body = {{NULL, 0, 0}, 0}, svcs = {{NULL, 0, 0}, 0};
    *live_at = SIZE_MAX;
    fdn__jw_raw(&body, "{", 1);
    /* members of both are written with a trailing ',' (dropped at the end) */
    if (a->health_ext != NULL)
        a->health_ext->write(&body, &svcs, in, in_len, live, live_at, a->health_ext_user);
    for (size_t i = 0; i < a->nhealth; i++) {
        int rc = res[i][0], deg = res[i][1];
        bool degraded = rc == 0 && deg < 0; /* works, wants attention: not a failure */
        /* "name":{"status":"ok"}, or the unhealthy form with the error's code and name (the
         * degraded form: the same with "degraded") */
        char m[160];
        size_t nl = strlen(a->health[i].name), n = 0;
        if (nl + 120 > sizeof m) {
            svcs.rc = FDN_ENOMEM; /* (cannot happen: names are short, error names constant) */
            break;
        }
        m[n++] = '"';
        memcpy(m + n, a->health[i].name, nl);
        n += nl;
        if (rc == 0 && !degraded) {
            static const char okm[] = "\":{\"status\":\"ok\"},";
            memcpy(m + n, okm, sizeof okm - 1);
            n += sizeof okm - 1;
        } else {
            int code = degraded ? deg : rc;
            const char *en = fdn_err_name(code);
            size_t el = strlen(en);
            if (n + el + 64 > sizeof m) {
                svcs.rc = FDN_ENOMEM; /* (cannot happen either) */
                break;
            }
            static const char bad[] = "\":{\"status\":\"unhealthy\",\"code\":";
            static const char dgd[] = "\":{\"status\":\"degraded\",\"code\":";
            size_t sl = degraded ? sizeof dgd - 1 : sizeof bad - 1;
            memcpy(m + n, degraded ? dgd : bad, sl);
            n += sl;
            n += fdn__jw_fmt_i64(m + n, fdn_err_info(code)->ref_code);
            memcpy(m + n, ",\"error\":\"", 10);
            n += 10;
            memcpy(m + n, en, el);
            n += el;
            memcpy(m + n, "\"},", 3);
            n += 3;
        }
        size_t span = 0;
        const char *dup = svcs.rc == 0 ? find_member(&svcs.t, a->health[i].name, &span) : NULL;
        if (dup == NULL) {
            fdn__jw_raw(&svcs, m, (size_t)n);
            continue;
        }
        /* splice: text before the old member, the new one, the rest */
        size_t at = (size_t)(dup - svcs.t.p);
        fdn__jw_t x = {{NULL, 0, 0}, 0};
        fdn__jw_raw(&x, svcs.t.p, at);
        fdn__jw_raw(&x, m, (size_t)n);
        fdn__jw_raw(&x, svcs.t.p + at + span, svcs.t.len - at - span);
        fdn_free(svcs.t.p);
        svcs = x;
    }
    fdn__jw_lit(&body,
                ok ? "\"status\":\"ok\",\"services\":{" : "\"status\":\"degraded\",\"services\":{");
    if (svcs.t.len > 0)
        fdn__jw_raw(&body, svcs.t.p, svcs.t.len - 1); /* without the last ',' */
    fdn__jw_raw(&body, "}}", 2);
    int rc = body.rc != 0 ? body.rc : svcs.rc;
    fdn_free(svcs.t.p);
    if (rc != 0) {
        fdn_free(body.t.p);
        return FDN_ENOMEM;
    }
    *out = body.t;
    return 0;
}

/* Reuse (issue 16: GET /health at the cost of GET /v1/config). Writing the body was most of
 * a GET /health (~10 k instructions of ~15 k in the handler, with the runtime's six services),
 * and the body is a function of a small state alone: the extension's bytes and code
 * (fdn__admin_health_ext_t) and each check's code, with the live value (the uptime) written
 * where it goes. A slot (fdn__admin_health_memo_t) remembers the last body it wrote and that
 * state; a request whose state is byte for byte the same answers that body with its own live
 * value's digits put in place: the bytes a fresh write gives for that state. Every check and
 * the extension's read still run on every request, so nothing shown is older than the
 * request; only the writing is saved. A thread keeps to one slot (memo_take), so the two
 * server threads do not share one (a slot's lines stay in its thread's cache). */
static _Atomic unsigned memo_next;
static _Thread_local unsigned memo_mine = UINT_MAX;

static fdn__admin_health_memo_t *memo_take(fdn_admin_t *a)
{
    if (memo_mine == UINT_MAX)
        memo_mine = atomic_fetch_add_explicit(&memo_next, 1, memory_order_relaxed);
    for (unsigned k = 0; k < FDN__HEALTH_MEMO_SLOTS; k++) {
        fdn__admin_health_memo_t *m = &a->hmemo[(memo_mine + k) % FDN__HEALTH_MEMO_SLOTS];
        if (!atomic_flag_test_and_set_explicit(&m->busy, memory_order_acquire))
            return m;
    }
    return NULL; /* all busy: answer without one */
}

static void memo_give(fdn__admin_health_memo_t *m)
{
    if (m != NULL)
        atomic_flag_clear_explicit(&m->busy, memory_order_release);
}

void fdn__admin_health_memo_free(fdn__admin_health_memo_t *m)
{
    fdn_free(m->in);
    fdn_free(m->fresh);
    fdn_free(m->body);
    m->in = m->fresh = NULL;
    m->body = NULL;
    m->body_cap = m->body_len = m->in_len = 0;
    m->valid = false;
}

/* The slot's buffers for the registrations of now (which change only before start). false:
 * out of memory (the request goes without the slot). */
static bool memo_ready(const fdn_admin_t *a, fdn__admin_health_memo_t *m)
{
    if (m->reg_gen != a->reg_gen || (m->in == NULL && a->health_ext != NULL)) {
        fdn__admin_health_memo_free(m);
        m->reg_gen = a->reg_gen;
        if (a->health_ext != NULL) {
            m->in = fdn_malloc(a->health_ext->in_size);
            m->fresh = fdn_malloc(a->health_ext->in_size);
            if (m->in == NULL || m->fresh == NULL) {
                fdn__admin_health_memo_free(m);
                return false;
            }
        }
    }
    return true;
}

/* Remember the body b (written from m->fresh, ext_rc and res; live at live_at) in m. */
static void memo_keep(fdn__admin_health_memo_t *m, const fdn_admin_t *a, const fdn__admin_text_t *b,
                      size_t in_len, int ext_rc, const int (*res)[2], int64_t live, size_t live_at)
{
    m->valid = false;
    if (b->len + 1 > m->body_cap) {
        char *p = fdn_malloc(b->len + 1);
        if (p == NULL)
            return; /* next time */
        fdn_free(m->body);
        m->body = p;
        m->body_cap = b->len + 1;
    }
    memcpy(m->body, b->p, b->len);
    m->body_len = b->len;
    unsigned char *t = m->in; /* the state written from becomes the remembered one */
    m->in = m->fresh;
    m->fresh = t;
    m->in_len = in_len;
    m->ext_rc = ext_rc;
    memcpy(m->res, res, a->nhealth * sizeof res[0]);
    char d[24];
    m->live_at = live_at;
    m->live_len = live_at == SIZE_MAX ? 0 : fdn__jw_fmt_i64(d, live);
    m->valid = true;
}

/* Whether m holds the body for this state. */
static bool memo_same(const fdn__admin_health_memo_t *m, const fdn_admin_t *a, const void *in,
                      size_t in_len, int ext_rc, const int (*res)[2])
{
    return m->valid && m->reg_gen == a->reg_gen && m->ext_rc == ext_rc && m->in_len == in_len &&
           (in_len == 0 || memcmp(m->in, in, in_len) == 0) &&
           (a->nhealth == 0 || memcmp(m->res, res, a->nhealth * sizeof res[0]) == 0);
}

/* m's body with live's digits in their place, into out (from fdn_malloc). */
static int memo_body(const fdn__admin_health_memo_t *m, int64_t live, fdn__admin_text_t *out)
{
    char d[24];
    size_t dl = m->live_len > 0 ? fdn__jw_fmt_i64(d, live) : 0;
    size_t at = m->live_len > 0 ? m->live_at : m->body_len;
    size_t rest = m->body_len - at - m->live_len, n = at + dl + rest;
    char *p = fdn_malloc(n + 1);
    if (p == NULL)
        return FDN_ENOMEM;
    memcpy(p, m->body, at);
    memcpy(p + at, d, dl);
    memcpy(p + at + dl, m->body + at + m->live_len, rest);
    p[n] = '\0';
    out->p = p;
    out->len = n;
    out->cap = n + 1;
    return 0;
}

/* GET /health: the extension's state and every check read now, the body written from them or
 * reused (above). */
static int h_health(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_admin_t *a = user;
    const fdn__admin_health_ext_t *ext = a->health_ext;
    fdn__admin_health_memo_t *m = memo_take(a);
    if (m != NULL && !memo_ready(a, m)) {
        memo_give(m);
        m = NULL;
    }
    void *in = NULL, *own = NULL;
    size_t in_len = 0;
    int64_t live = 0;
    int ext_rc = 0;
    if (ext != NULL) {
        in = m != NULL ? m->fresh : (own = fdn_malloc(ext->in_size));
        if (in == NULL)
            return FDN_ENOMEM; /* (m is NULL here) */
        ext_rc = ext->read(in, &in_len, &live, a->health_ext_user);
    }
    int res[MAX_HEALTH][2];
    bool ok = ext_rc == 0;
    for (size_t i = 0; i < a->nhealth; i++) {
        res[i][1] = 0;
        res[i][0] = a->health[i].deg != NULL ? a->health[i].deg(a->health[i].user, &res[i][1])
                                             : a->health[i].fn(a->health[i].user);
        if (res[i][0] != 0)
            ok = false;
    }
    fdn__admin_text_t b = {NULL, 0, 0};
    int rc;
    if (m != NULL && memo_same(m, a, in, in_len, ext_rc, (const int(*)[2])res)) {
        rc = memo_body(m, live, &b);
    } else {
        size_t live_at = SIZE_MAX;
        rc = write_health(a, in, in_len, live, (const int(*)[2])res, ok, &b, &live_at);
        if (rc == 0 && m != NULL)
            memo_keep(m, a, &b, in_len, ext_rc, (const int(*)[2])res, live, live_at);
    }
    memo_give(m);
    fdn_free(own);
    if (rc != 0)
        return rc;
    resp->text = b.p;
    resp->text_len = b.len;
    resp->content_type = "application/json";
    resp->status = ok ? 200 : 503;
    return 0;
}

#define CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define CT_PROMETHEUS  "text/plain; version=0.0.4; charset=utf-8"

static int om_sink(const char *data, size_t len, void *user)
{
    return fdn__admin_text_put(user, data, len);
}

/* resp.text_free of a text from fdn_telemetry_text_acquire */
static void release_telemetry_text(void *p)
{
    fdn_telemetry_text_release(p);
}

/* GET /metrics whose body is one telemetry instance's text alone: that text itself, handed to
 * libmicrohttpd without a copy (a reference, released with the response). 1: not so (the
 * text does not end a line, and the body would add a newline); else 0 or a negative code. */
static int metrics_tm_text(fdn_telemetry_t *tm, bool om, fdn__http_resp_t *resp)
{
    const char *t = NULL;
    size_t len = 0;
    int rc = fdn_telemetry_text_acquire(tm, om, &t, &len);
    if (rc < 0)
        return fdn_err_set(&resp->err, rc, "metrics writer failed: %s", fdn_strerror(rc));
    if (len > 0 && t[len - 1] != '\n') {
        fdn_telemetry_text_release(t);
        return 1;
    }
    resp->text = (char *)(uintptr_t)t;
    resp->text_len = len;
    resp->text_free = release_telemetry_text;
    resp->content_type = om ? CT_OPENMETRICS : CT_PROMETHEUS;
    resp->status = 200;
    return 0;
}

/* The body b becomes the answer (200, ctype); its length is the next body's capacity. */
static int metrics_answer(fdn_admin_t *a, fdn__admin_text_t *b, const char *ctype,
                          fdn__http_resp_t *resp)
{
    atomic_store_explicit(&a->metrics_len, b->len, memory_order_relaxed);
    resp->text = b->p;
    resp->text_len = b->len;
    resp->content_type = ctype;
    resp->status = 200;
    return 0;
}

static int h_metrics(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_admin_t *a = user;
    /* the usual case: telemetry's text is the whole body (its own fdn_http_requests_total
     * replaces the server's count by status class, a fallback writer is not called) */
    size_t writers = 0, tm_at = 0;
    for (size_t i = 0; i < a->nmetrics; i++) {
        if (a->metrics[i].fallback && a->tm != NULL)
            continue;
        writers++;
        tm_at = i;
    }
    bool om_only = resp->want_openmetrics && a->tm != NULL;
    for (size_t i = 0; i < a->nmetrics && om_only; i++)
        if (a->metrics[i].user != (void *)a->tm && !a->metrics[i].fallback)
            om_only = false;
    if (om_only || (writers == 1 && a->metrics[tm_at].telemetry && a->metrics[tm_at].user != NULL &&
                    a->f_req != NULL)) {
        int rc = metrics_tm_text(om_only ? a->tm : a->metrics[tm_at].user, om_only, resp);
        if (rc <= 0)
            return rc;
    }
    fdn__admin_text_t b = {NULL, 0, 0};
    int rc = 0;
    /* one allocation for the body: the capacity the last one needed (bodies grow slowly) */
    size_t hint = atomic_load_explicit(&a->metrics_len, memory_order_relaxed);
    if (hint > 0 && hint < ((size_t)1 << 30)) {
        b.cap = hint + hint / 8 + 256;
        b.p = fdn_malloc(b.cap);
        if (b.p == NULL)
            b.cap = 0;
        else
            b.p[0] = '\0';
    }
    /* OpenMetrics when asked for and telemetry's writer is the only one called (other
     * writers produce the 0.0.4 text, which is not valid OpenMetrics) */
    size_t others = 0;
    for (size_t i = 0; i < a->nmetrics; i++)
        if (a->metrics[i].user != (void *)a->tm && !(a->tm != NULL && a->metrics[i].fallback))
            others++;
    if (resp->want_openmetrics && a->tm != NULL && others == 0) {
        rc = fdn_telemetry_write_openmetrics(a->tm, om_sink, &b);
        if (rc < 0) {
            fdn_free(b.p);
            return fdn_err_set(&resp->err, rc, "metrics writer failed: %s", fdn_strerror(rc));
        }
        return metrics_answer(a, &b, CT_OPENMETRICS, resp);
    }
    for (size_t i = 0; i < a->nmetrics && rc == 0; i++) {
        if (a->metrics[i].fallback && a->tm != NULL)
            continue;
        if (a->metrics[i].telemetry) { /* straight into the body, no intermediate copy */
            size_t at = b.len;
            int wrc = fdn_telemetry_write_prometheus(a->metrics[i].user, om_sink, &b);
            if (wrc < 0) {
                fdn_free(b.p);
                return fdn_err_set(&resp->err, wrc, "metrics writer failed: %s", fdn_strerror(wrc));
            }
            if (b.len > at && b.p[b.len - 1] != '\n')
                rc = fdn__admin_text_put(&b, "\n", 1);
            continue;
        }
        char *out = NULL;
        size_t len = 0;
        int wrc = a->metrics[i].fn(&out, &len, a->metrics[i].user);
        if (wrc < 0) {
            fdn_free(b.p);
            return fdn_err_set(&resp->err, wrc, "metrics writer failed: %s", fdn_strerror(wrc));
        }
        if (out != NULL) {
            rc = fdn__admin_text_put(&b, out, len);
            if (rc == 0 && len > 0 && out[len - 1] != '\n')
                rc = fdn__admin_text_put(&b, "\n", 1);
        }
        fdn_free(out);
    }
    /* without telemetry (whose fdn_http_requests_total has route and method too), the
     * server's own count by status class; not when telemetry's text has another family of
     * that name */
    static const char hdr[] =
        "# HELP fdn_http_requests_total Admin HTTP requests answered, by status class.\n"
        "# TYPE fdn_http_requests_total counter\n";
    bool own = a->f_req == NULL && !a->req_taken;
    if (rc == 0 && own)
        rc = fdn__admin_text_put(&b, hdr, sizeof hdr - 1);
    for (unsigned c = 1; c <= 5 && rc == 0 && own; c++)
        rc = fdn__admin_text_printf(
            &b, "fdn_http_requests_total{status_class=\"%uxx\"} %llu\n", c,
            (unsigned long long)atomic_load_explicit(&a->by_class[c], memory_order_relaxed));
    /* and, without telemetry, the waiting queries of GET /v1/events when it is mounted */
    if (rc == 0 && a->tm == NULL && fdn__admin_route_user(a, "GET", "/v1/events") != NULL)
        rc = fdn__admin_text_printf(&b,
                                    "# HELP fdn_http_waiting_queries Event queries waiting for "
                                    "their first match now (GET /v1/events?wait_ms=).\n"
                                    "# TYPE fdn_http_waiting_queries gauge\n"
                                    "fdn_http_waiting_queries %zu\n",
                                    fdn__admin_events_waiting(a));
    if (rc < 0) {
        fdn_free(b.p);
        return rc;
    }
    return metrics_answer(a, &b, CT_PROMETHEUS, resp);
}

int fdn__admin_mount_builtin(fdn_admin_t *a)
{
    int rc = fdn__admin_route_add(a, "GET", "/health", h_health, a);
    if (rc < 0)
        return rc;
    return fdn__admin_route_add(a, "GET", "/metrics", h_metrics, a);
}
