/*
 * DESIGN: the admin HTTP server (router + libmicrohttpd glue).
 *
 * Threads: libmicrohttpd runs `threads` internal polling threads (MHD_OPTION_THREAD_POOL_SIZE,
 * epoll/poll chosen by MHD_USE_AUTO), each serving many connections; total connections are
 * capped (MHD_OPTION_CONNECTION_LIMIT: by default from the open-file limit, so thousands of
 * idle keep-alive clients do not shut new ones out), optionally per client address, and idle
 * ones time out; a request must arrive whole (headers and body) within request_timeout_s, which
 * http_watch.c enforces from a thread of its own (libmicrohttpd 0.9.75 has no such deadline:
 * a client sending a byte a second was never cut), so the server's resources are bounded
 * whatever clients do. Handlers run on those threads and only call the mounted services'
 * thread-safe public APIs. Locks: only `dmu` (a leaf, never held while calling out), on which
 * fdn_admin_shutdown waits for deferred requests. The route
 * table, health checks and metric writers are filled before start (thread_safety init) and
 * read-only afterwards; `started` is written before MHD's threads exist and the thread creation
 * orders it. The request counters are relaxed atomics. Per request: the raw target is captured by
 * the URI log callback (before MHD unescapes it) into a heap context that the completion callback
 * frees; the body is accumulated up to max_body_bytes; a larger Content-Length is refused with 413
 * at once, a larger streamed body is drained and refused with 413 at its end. With a token, a
 * request without it is refused (401) on its headers, before any body is read. Answers go to MHD
 * without a copy: a handler's text is MHD's with the response (freed by its free callback), and
 * GET /metrics hands on telemetry's own immutable text (fdn_telemetry_text_acquire, released by
 * that callback; resp.text_free) when it is the whole body. The listen socket is
 * opened here by fdn_admin_bind (clear EADDRINUSE/EACCES errors, port 0 support, loopback check),
 * which `fdn serve` calls before creating the runtime so that a busy port fails before anything is
 * written; fdn_admin_start binds if that was not done and hands MHD a duplicate of it (see there
 * for why), which MHD closes on stop.
 * Deferred answers (a handler returned FDN__HTTP_PENDING, e.g. a durable event append waiting for
 * the writer's group commit): the request's context (conn_ctx_t, heap) holds the response and a
 * small state machine, RUNNING -> PARKED -> DONE, in one atomic. The server thread suspends the
 * connection (MHD_suspend_connection, the daemon has MHD_ALLOW_SUSPEND_RESUME) and moves
 * RUNNING -> PARKED by compare-and-swap; the completer (any thread) fills the response and
 * exchanges the state to DONE: if it was PARKED, it resumes the connection (MHD_resume_connection
 * is callable from any thread), and MHD calls the access handler again, which sends the prepared
 * answer; if the completion came first (the CAS fails), the server thread resumes the connection
 * itself, or sends at once when it sees DONE before suspending. Whoever comes second owns the
 * next step, and the completer touches the context no more after its exchange. MHD must not stop
 * with a suspended connection (it aborts), and a stop cuts answers not yet written, so every
 * deferral is counted (`deferred`) until its request ends (MHD's completion callback, on_done,
 * after the answer is sent) and fdn_admin_shutdown first refuses new deferrals (`draining`, 503)
 * and waits for the count to reach zero (the services complete their work: the event store's
 * writer commits or fails every waiting append, also when the store stops; the answers are a few
 * bytes, written at once). fdn__admin_dispatch (no socket) waits for a deferred answer on a
 * condition variable instead of suspending.
 */
#include "admin/admin_int.h"
#include "admin/http_jw.h"
#include "admin/http_watch.h"

#include <fdn/clock.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_METRICS 8
/* per-connection memory of libmicrohttpd (request line + headers + its buffers). Requests
 * whose line or headers do not fit are answered by libmicrohttpd itself (414/431, HTML):
 * 64 KiB makes every target up to ~60 KiB reach the router, which answers its own 414 (JSON)
 * beyond FDN__HTTP_MAX_URI. Worst case max_connections * 64 KiB. */
#define CONN_MEMORY (64u * 1024u)
#define MAX_HEALTH  32
/* request_timeout_s when the options leave it 0 */
#define FDN__ADMIN_DEFAULT_REQUEST_TIMEOUT_S 10u

typedef struct route {
    char method[8];
    char *pattern;
    fdn__http_handler_fn fn;
    void *user;
    const char *const *params; /* query parameters it takes (NULL-terminated), or NULL: none */
    bool literal;              /* no {param} segment */
    size_t nsegs;              /* path segments: a target with another count never matches */
    /* request telemetry of this route (resolved on its first request; resolving twice gives
     * the same handle, so a race only repeats the lookup) */
    _Atomic(fdn_histogram_t *) h_dur;
    _Atomic(fdn_counter_t *) c_class[6];
} route_t;

typedef struct health_check {
    char name[48];
    fdn_admin_health_fn fn;
    void *user;
} health_check_t;

struct fdn_admin {
    char host[256];
    uint16_t want_port;
    char *token;
    size_t token_len;
    size_t max_body;
    unsigned threads, max_conns, timeout_s, per_ip, request_timeout_s;
    fdn__http_watch_t *watch; /* the request deadline, from start to shutdown */

    route_t *routes;
    size_t nroutes, cap_routes;
    health_check_t health[MAX_HEALTH];
    size_t nhealth;
    struct {
        fdn_admin_metrics_fn fn;
        void *user;
        bool fallback; /* only without telemetry (fdn__admin_add_metrics_fallback) */
        bool telemetry; /* telemetry's writer: GET /metrics writes it into its body directly */
    } metrics[MAX_METRICS];
    _Atomic size_t metrics_len; /* the last GET /metrics body's length: the next one's capacity */
    size_t nmetrics;
    fdn_telemetry_t *tm; /* optional: request telemetry */
    fdn_telemetry_family_t *f_dur, *f_req; /* fdn_http_request_duration_seconds, _requests_total */
    fdn_admin_request_fn on_request;       /* optional: request hook (opts version >= 3) */
    void *request_user;
    fdn__admin_health_ext_fn health_ext;
    void *health_ext_user;

    bool started;
    int listen_fd; /* bound by fdn_admin_bind, owned here until MHD starts; else -1 */
    _Atomic bool stopped;
    _Atomic bool draining;     /* shutdown started: no new deferred request */
    _Atomic uint64_t deferred; /* deferred requests not completed yet */
    pthread_mutex_t dmu;       /* shutdown waits on dcv for deferred == 0 */
    pthread_cond_t dcv;
    struct MHD_Daemon *mhd;
    _Atomic uint16_t port;
    _Atomic uint64_t by_class[6]; /* index = status / 100 (1..5), 0 unused */
};

/* ---- responses ----------------------------------------------------------------------- */

void fdn__http_resp_text_free(fdn__http_resp_t *resp)
{
    if (resp->text_free != NULL)
        resp->text_free(resp->text);
    else
        fdn_free(resp->text);
    resp->text = NULL;
    resp->text_len = 0;
    resp->text_free = NULL;
}

void fdn__http_resp_clear(fdn__http_resp_t *resp)
{
    if (resp == NULL)
        return;
    json_decref(resp->json);
    fdn__http_resp_text_free(resp);
    memset(resp, 0, sizeof *resp);
}

int fdn__http_reply(fdn__http_resp_t *resp, unsigned status, json_t *json)
{
    if (json == NULL)
        return FDN_ENOMEM;
    json_decref(resp->json);
    resp->json = json;
    resp->status = status;
    return 0;
}

void fdn__http_resp_finish(fdn__http_resp_t *resp, int rc)
{
    if (rc < 0) {
        unsigned keep = resp->status >= 400 ? resp->status : 0;
        json_decref(resp->json);
        fdn__http_resp_text_free(resp);
        resp->json = fdn__http_error_json(rc, &resp->err);
        resp->status = keep ? keep : fdn__http_status_for(rc);
        if (rc == FDN_ERATE_LIMITED && resp->retry_after_s <= 0)
            resp->retry_after_s = 1;
        if (rc != FDN_ERATE_LIMITED && resp->status != 503)
            resp->retry_after_s = 0;
        return;
    }
    if (resp->status == 0)
        resp->status = 200;
    if (resp->json == NULL && resp->text == NULL)
        resp->json = json_object();
}

const char *fdn__http_param(const fdn__http_req_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nparams; i++)
        if (strncmp(req->params[i].key, name, n) == 0 && req->params[i].key[n] == '}')
            return req->params[i].val;
    return NULL;
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
    if (rc < 0)
        return fdn_err_set(&resp->err, FDN_EPARSE, "malformed JSON at line %d column %d: %s",
                           je.line, je.column, je.text);
    *out = j;
    return 0;
}

/* ---- route table --------------------------------------------------------------------- */

static bool pattern_valid(const char *p)
{
    if (p == NULL || p[0] != '/' || strlen(p) > 200)
        return false;
    for (const char *s = p + 1; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0)
            return false;
        bool open = s[0] == '{', close = s[n - 1] == '}';
        if (open != close || (open && n < 3))
            return false;
        for (size_t i = open ? 1 : 0; i < (open ? n - 1 : n); i++)
            if (s[i] == '{' || s[i] == '}')
                return false;
        s += n;
        if (*s == '/')
            s++;
    }
    return true;
}

/* ---- allocation helpers (public API only: fdn_malloc and fdn_realloc) ------------------- */

static char *admin_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fdn_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

int fdn__admin_text_put(fdn__admin_text_t *t, const char *s, size_t n)
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
    if (n > 0)
        memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return 0;
}

int fdn__admin_route_add(fdn_admin_t *a, const char *method, const char *pattern,
                         fdn__http_handler_fn fn, void *user)
{
    return fdn__admin_route_add_q(a, method, pattern, fn, user, NULL);
}

int fdn__admin_route_add_q(fdn_admin_t *a, const char *method, const char *pattern,
                           fdn__http_handler_fn fn, void *user, const char *const *params)
{
    if (a == NULL || method == NULL || fn == NULL || a->started || strlen(method) >= 8 ||
        !pattern_valid(pattern))
        return FDN_EINVAL;
    for (size_t i = 0; i < a->nroutes; i++)
        if (strcmp(a->routes[i].method, method) == 0 && strcmp(a->routes[i].pattern, pattern) == 0)
            return FDN_EEXIST;
    if (a->nroutes == a->cap_routes) {
        size_t nc = a->cap_routes ? a->cap_routes * 2 : 16;
        route_t *r = fdn_realloc(a->routes, nc * sizeof *r);
        if (r == NULL)
            return FDN_ENOMEM;
        a->routes = r;
        a->cap_routes = nc;
    }
    char *pc = admin_strdup(pattern);
    if (pc == NULL)
        return FDN_ENOMEM;
    route_t *r = &a->routes[a->nroutes++];
    memset(r, 0, sizeof *r);
    memcpy(r->method, method, strlen(method) + 1);
    r->pattern = pc;
    r->fn = fn;
    r->user = user;
    r->params = params;
    r->literal = strchr(pattern, '{') == NULL;
    for (const char *c = pattern; *c != '\0'; c++) /* "/a/b": 2; "/": 0 */
        r->nsegs += *c == '/' && c[1] != '\0';
    return 0;
}

static bool auth_ok(const fdn_admin_t *a, const char *authorization)
{
    if (a->token == NULL)
        return true;
    /* the scheme name is case-insensitive (RFC 7235 2.1); the token is not */
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *t = authorization + 7;
    return fdn__http_ct_equal(t, strlen(t), a->token, a->token_len);
}

static void count_status(fdn_admin_t *a, unsigned status)
{
    unsigned c = status / 100;
    if (c >= 1 && c <= 5)
        atomic_fetch_add_explicit(&a->by_class[c], 1, memory_order_relaxed);
}

void fdn__admin_mark(const fdn_admin_t *a, fdn__admin_mark_t *m)
{
    m->nroutes = a->nroutes;
    m->nhealth = a->nhealth;
    m->nmetrics = a->nmetrics;
    m->tm = a->tm != NULL;
    m->health_ext = a->health_ext != NULL;
}

int fdn__admin_rollback(fdn_admin_t *a, const fdn__admin_mark_t *m, int rc)
{
    while (a->nroutes > m->nroutes)
        fdn_free(a->routes[--a->nroutes].pattern);
    a->nhealth = m->nhealth;
    a->nmetrics = m->nmetrics;
    if (!m->tm) /* (its two families stay in the telemetry instance, which owns them) */
        a->tm = NULL, a->f_dur = a->f_req = NULL;
    if (!m->health_ext)
        a->health_ext = NULL, a->health_ext_user = NULL;
    return rc;
}

int fdn__admin_set_telemetry(fdn_admin_t *a, fdn_telemetry_t *tm)
{
    if (a == NULL || a->started)
        return FDN_EINVAL;
    if (a->tm != NULL)
        return FDN_EEXIST;
    static const char *const dl[] = {"method", "route"};
    static const char *const rl[] = {"method", "route", "status_class"};
    /* routes are a fixed set; unmatched requests share route="unmatched": bounded, the caps
     * only guard against a program adding routes by the hundred */
    if (fdn_telemetry_family(tm, &a->f_dur, "fdn_http_request_duration_seconds",
                             "Admin HTTP requests: time from routing to the handler's answer, by "
                             "route template and method.",
                             FDN_TELEMETRY_HISTOGRAM, dl, 2, 256) < 0 ||
        fdn_telemetry_family(tm, &a->f_req, "fdn_http_requests_total",
                             "Admin HTTP requests answered, by route template, method and status "
                             "class (2xx, 4xx, ...).",
                             FDN_TELEMETRY_COUNTER, rl, 3, 1024) < 0) {
        a->f_dur = a->f_req = NULL;
    }
    a->tm = tm;
    return 0;
}

/* Request telemetry: fdn_http_request_duration_seconds{method,route} (route = the matched
 * pattern, e.g. /v1/breakers/{name}, never the raw path) and
 * fdn_http_requests_total{method,route,status_class}. A matched route keeps its handles; an
 * unmatched request (404, 405, 401, 414) resolves route="unmatched" each time. */
void fdn__http_set_correlation_id(fdn__http_resp_t *resp, const char *cid, size_t len)
{
    if (resp != NULL && cid != NULL && len > 0 && len <= FDN__HTTP_CID_MAX &&
        resp->correlation_id[0] == '\0') {
        memcpy(resp->correlation_id, cid, len);
        resp->correlation_id[len] = '\0';
    }
}

/* The duration, with the request's correlation id (if any) as the bucket's exemplar (an id
 * that is not UTF-8 keeps no exemplar; the value still counts). */
static void observe_request(fdn_histogram_t *h, double secs, const char *cid)
{
    if (cid != NULL && cid[0] != '\0')
        fdn_histogram_observe_exemplar(h, secs, "correlation_id", cid);
    else
        fdn_histogram_observe(h, secs);
}

static void request_telemetry(fdn_admin_t *a, int64_t t0, route_t *r, const char *method,
                              unsigned status, const char *cid)
{
    if (a->tm == NULL || a->f_dur == NULL)
        return;
    double secs = (double)(fdn_clock_mono_ns(NULL) - t0) / 1e9;
    unsigned c = status / 100;
    if (c < 1 || c > 5)
        c = 5;
    char cls[4] = {(char)('0' + c), 'x', 'x', '\0'};
    if (r != NULL) {
        fdn_histogram_t *h = atomic_load_explicit(&r->h_dur, memory_order_acquire);
        if (h == NULL) {
            const char *v[] = {r->method, r->pattern};
            (void)fdn_telemetry_family_histogram(a->f_dur, &h, v, 2);
            atomic_store_explicit(&r->h_dur, h, memory_order_release);
        }
        fdn_counter_t *k = atomic_load_explicit(&r->c_class[c], memory_order_acquire);
        if (k == NULL) {
            const char *v[] = {r->method, r->pattern, cls};
            (void)fdn_telemetry_family_counter(a->f_req, &k, v, 3);
            atomic_store_explicit(&r->c_class[c], k, memory_order_release);
        }
        observe_request(h, secs, cid);
        fdn_counter_inc(k);
        return;
    }
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
    const char *m = "other";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i]) == 0)
            m = methods[i];
    fdn_histogram_t *h = NULL;
    fdn_counter_t *k = NULL;
    const char *dv[] = {m, "unmatched"}, *rv[] = {m, "unmatched", cls};
    (void)fdn_telemetry_family_histogram(a->f_dur, &h, dv, 2);
    (void)fdn_telemetry_family_counter(a->f_req, &k, rv, 3);
    observe_request(h, secs, cid);
    fdn_counter_inc(k);
}

/* ---- deferred answers (see DESIGN) --------------------------------------------------------- */

enum { AS_RUNNING, AS_PARKED, AS_DONE };

struct fdn__http_async {
    _Atomic int state; /* AS_*: RUNNING -> PARKED (server thread) -> DONE (completer) */
    int rc;            /* the handler's result, written by the completer before DONE */
    bool deferred;     /* the handler called fdn__http_defer (server thread only) */
    fdn_admin_t *a;
    void (*wake)(fdn__http_async_t *as); /* resumes a PARKED request */
    struct MHD_Connection *con;          /* the server's request */
    pthread_mutex_t mu;                  /* fdn__admin_dispatch's wait */
    pthread_cond_t cv;
    bool woken; /* mu */
    route_t *route;
    int64_t t0;
};

static void async_init(fdn__http_async_t *as, fdn_admin_t *a)
{
    atomic_init(&as->state, AS_RUNNING);
    as->rc = 0;
    as->deferred = false;
    as->a = a;
    as->wake = NULL;
    as->con = NULL;
    as->woken = false;
    as->route = NULL;
    as->t0 = 0;
}

/* One deferral fewer; wakes fdn_admin_shutdown when it waits for the last one. */
static void deferred_done(fdn_admin_t *a)
{
    if (atomic_fetch_sub(&a->deferred, 1) == 1 && atomic_load(&a->draining)) {
        pthread_mutex_lock(&a->dmu);
        pthread_cond_broadcast(&a->dcv);
        pthread_mutex_unlock(&a->dmu);
    }
}

int fdn__http_defer(fdn__http_resp_t *resp)
{
    fdn__http_async_t *as = resp != NULL ? resp->async : NULL;
    if (as == NULL || as->deferred)
        return FDN_EINVAL;
    fdn_admin_t *a = as->a;
    /* sequentially consistent with shutdown's store of draining and load of deferred: either
     * this sees draining, or shutdown sees this deferral and waits for it */
    atomic_fetch_add(&a->deferred, 1);
    if (atomic_load(&a->draining)) {
        deferred_done(a);
        return fdn_err_set(&resp->err, FDN_EUNAVAILABLE, "the server is stopping");
    }
    as->deferred = true;
    return 0;
}

void fdn__http_complete(fdn__http_resp_t *resp, int rc)
{
    fdn__http_async_t *as = resp->async;
    as->rc = rc;
    if (atomic_exchange_explicit(&as->state, AS_DONE, memory_order_acq_rel) == AS_PARKED)
        as->wake(as); /* the request waits for this: as stays valid until it is woken */
}

static void sync_wake(fdn__http_async_t *as)
{
    pthread_mutex_lock(&as->mu);
    as->woken = true;
    pthread_cond_signal(&as->cv);
    pthread_mutex_unlock(&as->mu);
}

/* Route the request and run its handler: returns the handler's result (FDN__HTTP_PENDING when
 * it answers later), *route_out the matched route. */
static int dispatch_run(fdn_admin_t *a, const char *method, const char *uri,
                        const char *authorization, const char *body, size_t body_len,
                        fdn__http_resp_t *resp, route_t **route_out)
{
    int rc;
    route_t *route = NULL;
    /* on the stack (~5 KB; handlers run on threads of default stack size): a heap block of
     * this size took glibc's slow path (no thread cache above 1 KB) on every request */
    fdn__http_target_t tb, *t = &tb;
    if (!auth_ok(a, authorization)) {
        rc = fdn_err_set(&resp->err, FDN_EACCES, "missing or wrong bearer token");
        goto out;
    }
    rc = fdn__http_target_parse(t, uri, strlen(uri));
    if (rc == FDN_ETOO_LARGE) {
        resp->status = 414;
        rc = fdn_err_set(&resp->err, FDN_ETOO_LARGE, "request target too long or too complex");
        goto out;
    }
    if (rc < 0) {
        rc = fdn_err_set(&resp->err, FDN_EPARSE, "malformed request target");
        goto out;
    }
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    fdn__http_kv_t params[FDN__HTTP_MAX_PARAMS];
    size_t np = 0;
    size_t allow_len = 0;
    bool path_matched = false;
    /* literal patterns first: a path that names an endpoint ("/v1/config/reset") is that
     * endpoint for every method (a wrong method gets 405), never a {param} of another route */
    for (size_t k = 0; k < 2 * a->nroutes && !(k == a->nroutes && path_matched); k++) {
        route_t *r = &a->routes[k % a->nroutes];
        if (r->literal != (k < a->nroutes) || r->nsegs != t->nsegs ||
            !fdn__http_route_match(r->pattern, t, params, FDN__HTTP_MAX_PARAMS, &np))
            continue;
        if (strcmp(r->method, m) == 0) {
            route = r;
            /* every endpoint refuses query parameters it does not take */
            static const char *const none[] = {NULL};
            const char *bad = NULL;
            if (fdn__http_query_only(t, r->params != NULL ? r->params : none, &bad) != 0) {
                rc = fdn_err_set(&resp->err, FDN_EINVAL, "unknown query parameter '%s'", bad);
                goto out;
            }
            fdn__http_req_t req = {m, t, params, np, body ? body : "", body ? body_len : 0};
            rc = r->fn(&req, resp, r->user);
            if (rc != FDN__HTTP_PENDING && resp->async != NULL && resp->async->deferred) {
                resp->async->deferred = false; /* deferred, then answered at once after all */
                deferred_done(a);
            }
            goto out;
        }
        path_matched = true;
        size_t ml = strlen(r->method);
        if (!strstr(resp->allow, r->method) && allow_len + ml + 2 < sizeof resp->allow) {
            if (allow_len) {
                memcpy(resp->allow + allow_len, ", ", 2);
                allow_len += 2;
            }
            memcpy(resp->allow + allow_len, r->method, ml + 1);
            allow_len += ml;
        }
    }
    if (path_matched)
        rc = fdn_err_set(&resp->err, FDN_ENOTSUP, "method %s not allowed here (allowed: %s)",
                         method, resp->allow);
    else
        rc = fdn_err_set(&resp->err, FDN_ENOENT, "no such endpoint");
out:
    *route_out = route;
    return rc;
}

/* The answer is final: error body, counters, request telemetry and the request hook (on a
 * server thread, also for a deferred answer). */
static void dispatch_end(fdn_admin_t *a, int64_t t0, route_t *route, const char *method,
                         const char *uri, fdn__http_resp_t *resp, int rc)
{
    resp->async = NULL;
    fdn__http_resp_finish(resp, rc);
    count_status(a, resp->status);
    request_telemetry(a, t0, route, method, resp->status, resp->correlation_id);
    if (a->on_request != NULL) {
        fdn_admin_request_info_t info = {method, uri, route != NULL ? route->pattern : NULL,
                                         resp->status, fdn_clock_mono_ns(NULL) - t0};
        a->on_request(&info, a->request_user);
    }
}

static int64_t dispatch_t0(const fdn_admin_t *a)
{
    return a->tm != NULL || a->on_request != NULL ? fdn_clock_mono_ns(NULL) : 0;
}

void fdn__admin_dispatch(fdn_admin_t *a, const char *method, const char *uri,
                         const char *authorization, const char *body, size_t body_len,
                         fdn__http_resp_t *resp)
{
    int64_t t0 = dispatch_t0(a);
    fdn__http_async_t as;
    async_init(&as, a);
    pthread_mutex_init(&as.mu, NULL);
    pthread_cond_init(&as.cv, NULL);
    as.wake = sync_wake;
    resp->async = &as;
    route_t *route = NULL;
    int rc = dispatch_run(a, method, uri, authorization, body, body_len, resp, &route);
    if (rc == FDN__HTTP_PENDING) {
        int expect = AS_RUNNING;
        if (atomic_compare_exchange_strong_explicit(&as.state, &expect, AS_PARKED,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            pthread_mutex_lock(&as.mu);
            while (!as.woken)
                pthread_cond_wait(&as.cv, &as.mu);
            pthread_mutex_unlock(&as.mu);
        }
        rc = as.rc;
    }
    dispatch_end(a, t0, route, method, uri, resp, rc);
    if (as.deferred)
        deferred_done(a);
    pthread_cond_destroy(&as.cv);
    pthread_mutex_destroy(&as.mu);
    /* The hot handlers write their JSON answers as text, the others build a tree: to a caller
     * without a socket (the tests, the fuzz targets) both look alike, a tree in resp->json. A
     * JSON text that does not parse is a bug of its handler and answers 500 here, so the tests
     * check every text answer too. (Out of memory while parsing: the text stays.) */
    if (resp->json == NULL && resp->text != NULL && resp->content_type != NULL &&
        strcmp(resp->content_type, "application/json") == 0) {
        json_t *j = NULL;
        int prc = fdn_json_loadb(resp->text, resp->text_len, JSON_DECODE_ANY, &j, NULL);
        if (prc == FDN_ENOMEM)
            return;
        fdn__http_resp_text_free(resp);
        resp->content_type = NULL;
        if (prc < 0) {
            resp->status = 0;
            fdn_err_set(&resp->err, FDN_EINTERNAL, "a handler's JSON answer does not parse");
            fdn__http_resp_finish(resp, FDN_EINTERNAL);
            return;
        }
        resp->json = j;
    }
}

/* ---- built-in endpoints: /health, /metrics ---------------------------------------------- */

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

/* Which GET /health this thread is answering (0: none yet): checks that read the same state
 * (the limiter's two) read it once per request (fdn__admin_health_gen). */
static _Thread_local uint64_t health_gen;

uint64_t fdn__admin_health_gen(void)
{
    return health_gen;
}

/* GET /health, written as text in one pass (no jansson tree: this endpoint is polled). The
 * body's form is the one jansson gave: {runtime..., "status", "services": {the runtime's
 * services, then the health checks}}; a check named like a runtime service replaces it in
 * place, as json_object_set did. */
static int h_health(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_admin_t *a = user;
    fdn__jw_t body = {{NULL, 0, 0}, 0}, svcs = {{NULL, 0, 0}, 0};
    bool ok = true;
    health_gen++;
    fdn__jw_raw(&body, "{", 1);
    /* members of both are written with a trailing ',' (dropped at the end) */
    if (a->health_ext != NULL && a->health_ext(&body, &svcs, a->health_ext_user) != 0)
        ok = false;
    for (size_t i = 0; i < a->nhealth; i++) {
        int rc = a->health[i].fn(a->health[i].user);
        /* "name":{"status":"ok"}, or the unhealthy form with the error's code and name */
        char m[160];
        size_t nl = strlen(a->health[i].name), n = 0;
        if (nl + 120 > sizeof m) {
            svcs.rc = FDN_ENOMEM; /* (cannot happen: names are short, error names constant) */
            break;
        }
        m[n++] = '"';
        memcpy(m + n, a->health[i].name, nl);
        n += nl;
        if (rc == 0) {
            static const char okm[] = "\":{\"status\":\"ok\"},";
            memcpy(m + n, okm, sizeof okm - 1);
            n += sizeof okm - 1;
        } else {
            const char *en = fdn_err_name(rc);
            size_t el = strlen(en);
            if (n + el + 64 > sizeof m) {
                svcs.rc = FDN_ENOMEM; /* (cannot happen either) */
                break;
            }
            static const char bad[] = "\":{\"status\":\"unhealthy\",\"code\":";
            memcpy(m + n, bad, sizeof bad - 1);
            n += sizeof bad - 1;
            n += fdn__jw_fmt_i64(m + n, fdn_err_info(rc)->ref_code);
            memcpy(m + n, ",\"error\":\"", 10);
            n += 10;
            memcpy(m + n, en, el);
            n += el;
            memcpy(m + n, "\"},", 3);
            n += 3;
        }
        if (rc != 0)
            ok = false;
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
    resp->text = body.t.p;
    resp->text_len = body.t.len;
    resp->content_type = "application/json";
    resp->status = ok ? 200 : 503;
    return 0;
}

int fdn__admin_set_health_ext(fdn_admin_t *a, fdn__admin_health_ext_fn fn, void *user)
{
    if (a == NULL || a->started)
        return FDN_EINVAL;
    if (a->health_ext != NULL)
        return FDN_EEXIST;
    a->health_ext = fn;
    a->health_ext_user = user;
    return 0;
}

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
    resp->content_type = om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                            : "text/plain; version=0.0.4; charset=utf-8";
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
        atomic_store_explicit(&a->metrics_len, b.len, memory_order_relaxed);
        resp->text = b.p;
        resp->text_len = b.len;
        resp->content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        resp->status = 200;
        return 0;
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
     * server's own count by status class */
    static const char hdr[] =
        "# HELP fdn_http_requests_total Admin HTTP requests answered, by status class.\n"
        "# TYPE fdn_http_requests_total counter\n";
    bool own = a->f_req == NULL;
    if (rc == 0 && own)
        rc = fdn__admin_text_put(&b, hdr, sizeof hdr - 1);
    for (unsigned c = 1; c <= 5 && rc == 0 && own; c++) {
        char line[96];
        int n = snprintf(
            line, sizeof line, "fdn_http_requests_total{status_class=\"%uxx\"} %llu\n", c,
            (unsigned long long)atomic_load_explicit(&a->by_class[c], memory_order_relaxed));
        if (n > 0)
            rc = fdn__admin_text_put(&b, line, (size_t)n);
    }
    if (rc < 0) {
        fdn_free(b.p);
        return rc;
    }
    atomic_store_explicit(&a->metrics_len, b.len, memory_order_relaxed);
    resp->text = b.p;
    resp->text_len = b.len;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->status = 200;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static bool name_ok(const char *s, size_t max)
{
    if (s == NULL || *s == '\0' || strlen(s) >= max)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static int resolve(const char *host, uint16_t port, struct addrinfo **out, fdn_error_t *err)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int g = getaddrinfo(host, ps, &hints, out);
    if (g != 0 || *out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "cannot resolve listen address '%s': %s", host,
                           gai_strerror(g));
    return 0;
}

/* The connection limit when none is given: the open-file limit, less what the rest of the
 * process needs (its database, logs, engine connections), at most 65 536, at least 16. Idle
 * keep-alive clients then cannot shut new ones out long before the process runs out of file
 * descriptors (with a fixed 64, sixty-four idle clients did). */
static unsigned connections_from_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    rlim_t n = rl.rlim_cur > 256 + 16 ? rl.rlim_cur - 256 : 16;
    return n > 65536 ? 65536u : (unsigned)n;
}

unsigned fdn_admin_max_connections(const fdn_admin_t *a)
{
    return a ? a->max_conns : 0;
}

int fdn_admin_create(fdn_admin_t **out, const fdn_admin_opts_t *opts, fdn_error_t *err)
{
    fdn_admin_opts_t def = FDN_ADMIN_OPTS_INIT;
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "out is NULL");
    *out = NULL;
    if (opts == NULL)
        opts = &def;
    if (opts->version < 1 || opts->version > FDN_ADMIN_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "unknown admin options version %u",
                           (unsigned)opts->version);
    if (opts->threads == 0 || opts->threads > 64 || opts->max_connections > 1000000 ||
        opts->max_body_bytes == 0 || opts->max_body_bytes > ((size_t)1 << 30))
        return fdn_err_set(err, FDN_EINVAL, "admin options out of range");
    fdn_admin_t *a = fdn_calloc(1, sizeof *a);
    if (a == NULL)
        return FDN_ENOMEM;
    const char *listen = opts->listen ? opts->listen : FDN_ADMIN_DEFAULT_LISTEN;
    if (fdn__http_parse_listen(listen, a->host, sizeof a->host, &a->want_port) != 0) {
        fdn_free(a);
        return fdn_err_set(err, FDN_EINVAL,
                           "bad listen address '%s' (expected ADDR:PORT or [V6ADDR]:PORT)", listen);
    }
    struct addrinfo *ai = NULL;
    int rc = resolve(a->host, a->want_port, &ai, err);
    if (rc < 0) {
        fdn_free(a);
        return rc;
    }
    bool loop = addr_is_loopback(ai->ai_addr);
    freeaddrinfo(ai);
    if (opts->token != NULL && opts->token[0] != '\0') {
        a->token = admin_strdup(opts->token);
        if (a->token == NULL) {
            fdn_free(a);
            return FDN_ENOMEM;
        }
        a->token_len = strlen(a->token);
    } else if (!loop) {
        fdn_free(a);
        return fdn_err_set(err, FDN_EPERM,
                           "listening on non-loopback address '%s' requires a bearer token "
                           "(--token-file)",
                           listen);
    }
    a->listen_fd = -1;
    pthread_mutex_init(&a->dmu, NULL);
    pthread_cond_init(&a->dcv, NULL);
    a->max_body = opts->max_body_bytes;
    a->threads = opts->threads;
    a->max_conns = opts->max_connections ? opts->max_connections : connections_from_fd_limit();
    a->timeout_s = opts->idle_timeout_s;
    a->per_ip = opts->version >= 2 ? opts->max_connections_per_ip : 0;
    if (opts->version >= 3) {
        a->on_request = opts->on_request;
        a->request_user = opts->request_user;
    }
    a->request_timeout_s = opts->version >= 4 && opts->request_timeout_s > 0
                               ? opts->request_timeout_s
                               : FDN__ADMIN_DEFAULT_REQUEST_TIMEOUT_S;
    if (fdn__admin_route_add(a, "GET", "/health", h_health, a) < 0 ||
        fdn__admin_route_add(a, "GET", "/metrics", h_metrics, a) < 0 ||
        fdn__admin_mount_status(a) < 0) {
        fdn_admin_destroy(a);
        return FDN_ENOMEM;
    }
    *out = a;
    return 0;
}

int fdn_admin_add_health(fdn_admin_t *a, const char *name, fdn_admin_health_fn fn, void *user)
{
    if (a == NULL || fn == NULL || a->started || !name_ok(name, sizeof a->health[0].name))
        return FDN_EINVAL;
    for (size_t i = 0; i < a->nhealth; i++)
        if (strcmp(a->health[i].name, name) == 0)
            return FDN_EEXIST;
    if (a->nhealth == MAX_HEALTH)
        return FDN_ENOBUFS;
    health_check_t *h = &a->health[a->nhealth++];
    memcpy(h->name, name, strlen(name) + 1);
    h->fn = fn;
    h->user = user;
    return 0;
}

int fdn_admin_add_metrics(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user)
{
    if (a == NULL || fn == NULL || a->started)
        return FDN_EINVAL;
    if (a->nmetrics == MAX_METRICS)
        return FDN_ENOBUFS;
    a->metrics[a->nmetrics].fn = fn;
    a->metrics[a->nmetrics].user = user;
    a->metrics[a->nmetrics].fallback = false;
    a->metrics[a->nmetrics].telemetry = false;
    a->nmetrics++;
    return 0;
}

int fdn__admin_add_metrics_telemetry(fdn_admin_t *a, fdn_admin_metrics_fn fn, fdn_telemetry_t *tm)
{
    int rc = fdn_admin_add_metrics(a, fn, tm);
    if (rc == 0)
        a->metrics[a->nmetrics - 1].telemetry = true;
    return rc;
}

int fdn__admin_add_metrics_fallback(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user)
{
    int rc = fdn_admin_add_metrics(a, fn, user);
    if (rc == 0)
        a->metrics[a->nmetrics - 1].fallback = true;
    return rc;
}

/* ---- libmicrohttpd glue ------------------------------------------------------------------ */

typedef struct conn_ctx {
    char *uri;
    fdn__admin_text_t body; /* the request body so far */
    bool seen;
    bool too_large;
    bool parked;           /* a deferred answer: the connection was suspended for it */
    bool counted;          /* a deferred answer, counted in `deferred` until the request ends */
    fdn__http_resp_t resp; /* the answer being prepared (heap: a deferred one outlives the call) */
    fdn__http_async_t as;
} conn_ctx_t;

/* The origin-form part of an absolute-form target ("http://host:port/path?q" -> "/path?q",
 * "http://host" -> "/"): a server must accept the absolute form (RFC 9112 3.2.2); the
 * authority is not checked (a sidecar answers whatever name it is reached by). */
static const char *origin_form(const char *uri)
{
    size_t skip = strncasecmp(uri, "http://", 7) == 0    ? 7
                  : strncasecmp(uri, "https://", 8) == 0 ? 8
                                                         : 0;
    if (skip == 0)
        return uri;
    const char *p = uri + skip + strcspn(uri + skip, "/?#");
    return *p == '/' ? p : *p == '\0' ? "/" : uri; /* "http://h?q": left malformed */
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    /* not zeroed whole: resp (kilobytes, mostly its error text) is zeroed when the request is
     * dispatched; until then only what on_done frees must be NULL */
    conn_ctx_t *c = fdn_malloc(sizeof *c);
    if (c != NULL) {
        c->body = (fdn__admin_text_t){NULL, 0, 0};
        c->seen = c->too_large = c->parked = c->counted = false;
        c->resp.json = NULL;
        c->resp.text = NULL;
        c->resp.text_free = NULL;
        c->uri = admin_strdup(uri ? origin_form(uri) : "");
        if (c->uri == NULL) {
            fdn_free(c);
            c = NULL;
        }
    }
    return c;
}

static void on_done(void *cls, struct MHD_Connection *con, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    fdn__http_watch_done(((fdn_admin_t *)cls)->watch, con);
    conn_ctx_t *c = *req_cls;
    if (c != NULL && c->counted) /* its answer is sent (or the connection is gone) */
        deferred_done(cls);
    if (c != NULL) {
        json_decref(c->resp.json); /* an answer not sent (the connection closed first) */
        fdn__http_resp_text_free(&c->resp);
        fdn_free(c->uri);
        fdn_free(c->body.p);
        fdn_free(c);
        *req_cls = NULL;
    }
}

static void free_body(void *p)
{
    fdn_free(p);
}

static enum MHD_Result send_resp(struct MHD_Connection *con, fdn__http_resp_t *resp)
{
    char *own = NULL; /* a body MHD takes over (freed by it with the response): no copy */
    void (*release)(void *) = free_body;
    const char *ctype;
    size_t len;
    if (resp->json != NULL) {
        own = json_dumps(resp->json, JSON_COMPACT); /* the library allocator (core/json.h) */
        if (own == NULL)
            return MHD_NO;
        len = strlen(own);
        ctype = "application/json";
    } else {
        own = resp->text;
        len = resp->text_len;
        ctype = resp->content_type ? resp->content_type : "text/plain; charset=utf-8";
        if (resp->text_free != NULL)
            release = resp->text_free;
    }
    struct MHD_Response *r =
        own != NULL
            ? MHD_create_response_from_buffer_with_free_callback(len, own, release)
            : MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        if (own != resp->text)
            fdn_free(own);
        return MHD_NO; /* resp's text, if own, is freed with resp */
    }
    if (own != NULL && own == resp->text) {
        resp->text = NULL; /* MHD's now */
        resp->text_len = 0;
        resp->text_free = NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (resp->retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)resp->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (resp->status == 405 && resp->allow[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    if (resp->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ok = MHD_queue_response(con, resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(fdn_admin_t *a, struct MHD_Connection *con, int code,
                                  const char *msg)
{
    fdn__http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    fdn_err_set(&resp.err, code, "%s", msg);
    fdn__http_resp_finish(&resp, code);
    count_status(a, resp.status);
    enum MHD_Result ok = send_resp(con, &resp);
    fdn__http_resp_clear(&resp);
    return ok;
}

static void mhd_wake(fdn__http_async_t *as)
{
    MHD_resume_connection(as->con);
}

/* Send a deferred answer (the completer has set DONE; on a server thread). */
static enum MHD_Result send_deferred(fdn_admin_t *a, struct MHD_Connection *con, const char *method,
                                     conn_ctx_t *c)
{
    c->parked = false;
    int rc = atomic_load_explicit(&c->as.state, memory_order_acquire) == AS_DONE
                 ? c->as.rc
                 : FDN_EINVAL; /* unreachable: resumed before completion */
    dispatch_end(a, c->as.t0, c->as.route, method, c->uri, &c->resp, rc);
    enum MHD_Result ok = send_resp(con, &c->resp);
    fdn__http_resp_clear(&c->resp);
    return ok;
}

/* Counts the Content-Length headers of a request and whether their values differ. */
typedef struct cl_count {
    unsigned n;
    bool differ;
    const char *first;
} cl_count_t;

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    cl_count_t *c = cls;
    if (key == NULL || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (c->n++ == 0)
        c->first = value;
    else if (value == NULL || c->first == NULL || strcmp(value, c->first) != 0)
        c->differ = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)url;
    fdn_admin_t *a = cls;
    conn_ctx_t *c = *req_cls;
    if (c == NULL)
        return MHD_NO; /* context allocation failed: drop the connection */
    if (!c->seen) {
        c->seen = true;
        /* two Content-Length headers that disagree make the body's end ambiguous (request
         * smuggling behind a proxy that picks the other one): refuse the request */
        cl_count_t clc = {0, false, NULL};
        (void)MHD_get_connection_values(con, MHD_HEADER_KIND, count_content_length, &clc);
        if (clc.differ) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error(a, con, FDN_EPARSE, "conflicting Content-Length headers");
        }
        /* RFC 9112 3.2: an HTTP/1.1 request without Host is answered 400 (libmicrohttpd
         * accepts it unless strict; HTTP/1.0 clients may omit it) */
        if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
            MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error(a, con, FDN_EPARSE, "HTTP/1.1 request without a Host header");
        }
        const char *cl =
            MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n;
        if (cl != NULL && (fdn__http_parse_u64(cl, UINT64_MAX, &n) != 0 || n > a->max_body)) {
            c->too_large = true;
            return send_error(a, con, FDN_ETOO_LARGE, "request body exceeds the limit");
        }
        /* the body's buffer sized by its Content-Length (with the NUL), not the text's
         * default 8 KiB: a small block comes from glibc's thread cache, an 8 KiB one took its
         * slow path on every POST. Failure only leaves the default growth. */
        if (cl != NULL && n > 0) {
            c->body.p = fdn_malloc((size_t)n + 1);
            c->body.cap = c->body.p != NULL ? (size_t)n + 1 : 0;
            if (c->body.p != NULL)
                c->body.p[0] = '\0';
        }
        /* refuse a client without the token on its headers, before its body is read: else
         * anyone who can connect makes the server buffer max_body bytes per connection */
        if (!auth_ok(a, MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION))) {
            c->too_large = true; /* any body that still arrives is drained, not kept */
            return send_error(a, con, FDN_EACCES, "missing or wrong bearer token");
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->too_large || c->body.len + n > a->max_body) {
            c->too_large = true; /* drain, answer 413 at the end */
            return MHD_YES;
        }
        return fdn__admin_text_put(&c->body, upload_data, n) == 0 ? MHD_YES : MHD_NO;
    }
    /* received whole: no deadline while it is handled; cut meanwhile: not handled */
    if (!fdn__http_watch_handling(con))
        return MHD_NO;
    if (c->too_large)
        return send_error(a, con, FDN_ETOO_LARGE, "request body exceeds the limit");
    if (c->parked) /* resumed: the deferred answer is ready */
        return send_deferred(a, con, method, c);
    const char *auth =
        MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    memset(&c->resp, 0, sizeof c->resp);
    const char *accept = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    c->resp.want_openmetrics =
        accept != NULL && strstr(accept, "application/openmetrics-text") != NULL;
    const char *cid = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Correlation-Id");
    if (cid != NULL)
        fdn__http_set_correlation_id(&c->resp, cid, strnlen(cid, FDN__HTTP_CID_MAX + 1));
    int64_t t0 = dispatch_t0(a);
    async_init(&c->as, a);
    c->as.con = con;
    c->as.wake = mhd_wake;
    c->as.t0 = t0;
    c->resp.async = &c->as;
    route_t *route = NULL;
    int rc = dispatch_run(a, method, c->uri, auth, c->body.p ? c->body.p : "", c->body.len,
                          &c->resp, &route);
    if (rc == FDN__HTTP_PENDING) {
        c->as.route = route;
        c->parked = true;
        c->counted = true;
        if (atomic_load_explicit(&c->as.state, memory_order_acquire) == AS_DONE)
            return send_deferred(a, con, method, c); /* completed already: no suspension */
        MHD_suspend_connection(con);
        int expect = AS_RUNNING;
        if (!atomic_compare_exchange_strong_explicit(&c->as.state, &expect, AS_PARKED,
                                                     memory_order_acq_rel, memory_order_acquire))
            MHD_resume_connection(con); /* completed meanwhile: answered on the next call */
        return MHD_YES;
    }
    dispatch_end(a, t0, route, method, c->uri, &c->resp, rc);
    enum MHD_Result ok = send_resp(con, &c->resp);
    fdn__http_resp_clear(&c->resp);
    return ok;
}

static int open_listener(fdn_admin_t *a, int *out_fd, fdn_error_t *err)
{
    struct addrinfo *ai = NULL;
    int rc = resolve(a->host, a->want_port, &ai, err);
    if (rc < 0)
        return rc;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        return fdn_err_set(err, FDN_EIO, "socket: errno %d", e);
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* a deep accept queue: with 64, a burst of a few thousand connects overflowed it and the
     * kernel dropped handshakes, which clients retry only after 1, 3, 7 s (a connect storm
     * looked like a stall); the kernel caps it at net.core.somaxconn */
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        freeaddrinfo(ai);
        close(fd);
        if (e == EADDRINUSE)
            return fdn_err_set(err, FDN_EBUSY, "address %s:%u is already in use", a->host,
                               (unsigned)a->want_port);
        if (e == EACCES)
            return fdn_err_set(err, FDN_EACCES, "permission denied binding %s:%u", a->host,
                               (unsigned)a->want_port);
        if (e == EADDRNOTAVAIL)
            return fdn_err_set(err, FDN_EINVAL, "address %s is not available on this host",
                               a->host);
        return fdn_err_set(err, FDN_EIO, "cannot listen on %s:%u (errno %d)", a->host,
                           (unsigned)a->want_port, e);
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    uint16_t port = a->want_port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    }
    atomic_store_explicit(&a->port, port, memory_order_release);
    *out_fd = fd;
    return 0;
}

int fdn_admin_bind(fdn_admin_t *a, fdn_error_t *err)
{
    if (a == NULL || a->started)
        return fdn_err_set(err, FDN_EINVAL, "admin server is NULL or already started");
    if (a->listen_fd >= 0)
        return 0;
    return open_listener(a, &a->listen_fd, err);
}

bool fdn__admin_fd_same_socket(int mine, int other)
{
    struct stat m, o;
    return other >= 0 && fstat(mine, &m) == 0 && fstat(other, &o) == 0 && m.st_dev == o.st_dev &&
           m.st_ino == o.st_ino;
}

int fdn_admin_start(fdn_admin_t *a, fdn_error_t *err)
{
    if (a == NULL || a->started)
        return fdn_err_set(err, FDN_EINVAL, "admin server is NULL or already started");
    int rc = fdn_admin_bind(a, err);
    if (rc < 0)
        return rc;
    /* libmicrohttpd closes a socket given with MHD_OPTION_LISTEN_SOCKET when it stops, and
     * on SOME of its start failures (not on those of option parsing): ownership after a
     * failed start is unknowable. It gets a duplicate; ours keeps the socket alive, so after
     * a failure the duplicate's number still names this very socket (same inode) only if
     * MHD did not close it, and a number reused meanwhile by another thread is left alone. */
    rc = fdn__http_watch_start(&a->watch, a->request_timeout_s, a->timeout_s);
    if (rc < 0)
        return fdn_err_set(err, rc, "cannot start the request deadline thread");
    int fd = fcntl(a->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        fdn__http_watch_free(a->watch);
        a->watch = NULL;
        return fdn_err_set(err, FDN_EIO, "cannot duplicate the listen socket (errno %d)", errno);
    }
    a->started = true;
    a->mhd = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, a,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)a->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)a->max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)a->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)a->per_ip, MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)a,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)a, MHD_OPTION_NOTIFY_CONNECTION,
        fdn__http_watch_notify, (void *)a->watch, MHD_OPTION_END);
    if (a->mhd == NULL) {
        if (fdn__admin_fd_same_socket(a->listen_fd, fd))
            close(fd);
        fdn__http_watch_free(a->watch);
        a->watch = NULL;
        a->started = false; /* the bound socket stays ours: start may be retried */
        return fdn_err_set(err, FDN_EIO, "the HTTP server (libmicrohttpd) failed to start");
    }
    close(a->listen_fd); /* MHD's duplicate keeps the socket open until MHD_stop_daemon */
    a->listen_fd = -1;
    return 0;
}

uint16_t fdn_admin_port(const fdn_admin_t *a)
{
    if (a == NULL)
        return 0;
    return atomic_load_explicit(&((fdn_admin_t *)(uintptr_t)a)->port, memory_order_acquire);
}

void fdn_admin_shutdown(fdn_admin_t *a)
{
    if (a == NULL)
        return;
    if (atomic_exchange_explicit(&a->stopped, true, memory_order_acq_rel))
        return;
    /* MHD must not stop with a suspended connection: let every deferred answer complete */
    atomic_store(&a->draining, true);
    pthread_mutex_lock(&a->dmu);
    while (atomic_load(&a->deferred) > 0)
        pthread_cond_wait(&a->dcv, &a->dmu);
    pthread_mutex_unlock(&a->dmu);
    fdn__http_watch_stop(a->watch); /* no connection is cut while the server stops */
    if (a->mhd != NULL)
        MHD_stop_daemon(a->mhd); /* joins the server threads, closes the listen socket */
    fdn__http_watch_free(a->watch); /* every connection closed and unregistered */
    a->watch = NULL;
}

void fdn_admin_destroy(fdn_admin_t *a)
{
    if (a == NULL)
        return;
    fdn_admin_shutdown(a);
    if (a->listen_fd >= 0)
        close(a->listen_fd); /* bound but never handed to a started server */
    for (size_t i = 0; i < a->nroutes; i++)
        fdn_free(a->routes[i].pattern);
    fdn_free(a->routes);
    if (a->token != NULL) {
        volatile char *t = a->token;
        for (size_t i = 0; i < a->token_len; i++)
            t[i] = 0;
    }
    fdn_free(a->token);
    pthread_cond_destroy(&a->dcv);
    pthread_mutex_destroy(&a->dmu);
    fdn_free(a);
}
