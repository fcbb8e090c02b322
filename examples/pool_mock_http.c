/*
 * Example: a pool of mock HTTP workers (the reference's example HTTP worker, §5.3.3) used
 * through a named pool in a pool manager. No network: responses are simulated from the URL,
 * and there is no simulated latency.
 *
 *   worker config: base_url (required, http:// or https://), timeout_ms (30 000),
 *   headers (User-Agent: Foundation/1.0), max_redirects (5).
 *
 * Run: ./example_pool_mock_http   (exits 0 when every check passes)
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/pool.h>

/* ---------------------------------------------------------------------------------------- */
/* The mock HTTP worker */

typedef struct header {
    const char *name;
    const char *value;
} header_t;

typedef struct http_config {
    const char *base_url;
    long timeout_ms;
    int max_redirects;
} http_config_t;

typedef struct http_response {
    int status;
    char content_type[40];
    char *body;
    size_t body_len;
} http_response_t;

typedef struct http_worker {
    char base_url[256];
    long timeout_ms;
    int max_redirects;
    header_t headers[8];
    size_t nheaders;
    _Atomic long requests_made;
    _Atomic long errors;
    long last_request_seq; /* the reference keeps a timestamp; a sequence number here */
    uint64_t rng;
} http_worker_t;

enum http_err { HTTP_OK = 0, HTTP_ERR_TIMEOUT = -1, HTTP_ERR_INVALID_URL = -2, HTTP_ERR_404 = -3 };

/* Start checks in the reference's order; returns NULL and sets *reason on failure. */
static http_worker_t *http_start(const http_config_t *cfg, const char **reason)
{
    if (cfg == NULL || cfg->base_url == NULL) {
        *reason = "missing_base_url";
        return NULL;
    }
    if (cfg->base_url[0] == '\0') {
        *reason = "empty_base_url";
        return NULL;
    }
    if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0) {
        *reason = "invalid_scheme";
        return NULL;
    }
    http_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        *reason = "out_of_memory";
        return NULL;
    }
    snprintf(w->base_url, sizeof(w->base_url), "%s", cfg->base_url);
    w->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    w->max_redirects = cfg->max_redirects > 0 ? cfg->max_redirects : 5;
    w->headers[0] = (header_t){"User-Agent", "Foundation/1.0"};
    w->nheaders = 1;
    w->rng = (uint64_t)(uintptr_t)w | 1;
    atomic_init(&w->requests_made, 0);
    atomic_init(&w->errors, 0);
    return w;
}

static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

/* Percent-encode s into out (RFC 3986 unreserved characters kept). */
static void url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (; *s != '\0' && j + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[j++] = (char)c;
        } else {
            out[j++] = '%';
            out[j++] = hex[c >> 4];
            out[j++] = hex[c & 15];
        }
    }
    out[j] = '\0';
}

/* URL = base without trailing '/' + '/' + path without leading '/' + encoded params. */
static void build_url(const http_worker_t *w, const char *path, const header_t *params,
                      size_t nparams, char *url, size_t cap)
{
    size_t blen = strlen(w->base_url);
    while (blen > 0 && w->base_url[blen - 1] == '/')
        blen--;
    while (*path == '/')
        path++;
    size_t len = 0;
    int n = snprintf(url, cap, "%.*s/%s", (int)blen, w->base_url, path);
    len = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < nparams; i++) {
        char k[128], v[256];
        url_encode(params[i].name, k, sizeof(k));
        url_encode(params[i].value, v, sizeof(v));
        append(url, cap, &len, "%s", strchr(url, '?') != NULL ? "&" : "?");
        append(url, cap, &len, "%s=", k);
        append(url, cap, &len, "%s", v);
    }
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int set_body(http_response_t *r, int status, const char *ctype, const char *text)
{
    r->status = status;
    snprintf(r->content_type, sizeof(r->content_type), "%s", ctype);
    r->body_len = strlen(text);
    r->body = malloc(r->body_len + 1);
    if (r->body == NULL)
        return -1;
    memcpy(r->body, text, r->body_len + 1);
    return 0;
}

/* Simulated request: first matching URL substring wins (§5.3.3). */
static int http_request(http_worker_t *w, const char *method, const char *path,
                        const header_t *params, size_t nparams, const header_t *headers,
                        size_t nheaders, const char *body, http_response_t *resp)
{
    char url[1024];
    build_url(w, path, params, nparams, url, sizeof(url));
    atomic_fetch_add(&w->requests_made, 1);
    w->last_request_seq = atomic_load(&w->requests_made);
    memset(resp, 0, sizeof(*resp));
    const char *m;
    if ((m = strstr(url, "/delay/")) != NULL) {
        long n = strtol(m + 7, NULL, 10);
        if (n * 1000 > w->timeout_ms) {
            atomic_fetch_add(&w->errors, 1);
            return HTTP_ERR_TIMEOUT;
        }
        return set_body(resp, 200, "application/json", "{\"delayed\":true}");
    }
    if ((m = strstr(url, "/status/")) != NULL) {
        char txt[32];
        long code = strtol(m + 8, NULL, 10);
        snprintf(txt, sizeof(txt), "{\"status\":%ld}", code);
        return set_body(resp, (int)code, "application/json", txt);
    }
    if ((m = strstr(url, "/bytes/")) != NULL) {
        long n = strtol(m + 7, NULL, 10);
        if (n < 0 || n > 1 << 20)
            n = 0;
        resp->status = 200;
        snprintf(resp->content_type, sizeof(resp->content_type), "application/octet-stream");
        resp->body = malloc((size_t)n + 1);
        if (resp->body == NULL)
            return -1;
        for (long i = 0; i < n; i++)
            resp->body[i] = (char)(xorshift(&w->rng) & 0xff);
        resp->body_len = (size_t)n;
        return 0;
    }
    if (strstr(url, "/xml") != NULL)
        return set_body(resp, 200, "application/xml", "<?xml version=\"1.0\"?><slideshow/>");
    if (strstr(url, "/nonexistent") != NULL)
        return set_body(resp, 404, "text/plain", "Not Found");
    if (strstr(url, "invalid://") != NULL) {
        atomic_fetch_add(&w->errors, 1);
        return HTTP_ERR_INVALID_URL;
    }
    if (strstr(url, "definitely-will-cause-error") != NULL) {
        atomic_fetch_add(&w->errors, 1);
        return HTTP_ERR_404;
    }
    if (strstr(url, "invalid-network-request") != NULL) {
        atomic_fetch_add(&w->errors, 1);
        return HTTP_ERR_TIMEOUT;
    }
    /* httpbin-style echo: args, headers (request headers override defaults by name), url. */
    char out[2048];
    size_t len = 0;
    append(out, sizeof(out), &len, "%s", "{\"args\":{");
    for (size_t i = 0; i < nparams; i++) {
        append(out, sizeof(out), &len, i ? ",\"%s\":" : "\"%s\":", params[i].name);
        append(out, sizeof(out), &len, "\"%s\"", params[i].value);
    }
    append(out, sizeof(out), &len, "%s", "},\"headers\":{");
    size_t emitted = 0;
    for (size_t i = 0; i < w->nheaders; i++) {
        const char *v = w->headers[i].value;
        for (size_t j = 0; j < nheaders; j++)
            if (strcmp(headers[j].name, w->headers[i].name) == 0)
                v = headers[j].value;
        append(out, sizeof(out), &len, emitted++ ? ",\"%s\":" : "\"%s\":", w->headers[i].name);
        append(out, sizeof(out), &len, "\"%s\"", v);
    }
    for (size_t j = 0; j < nheaders; j++) {
        bool known = false;
        for (size_t i = 0; i < w->nheaders; i++)
            known |= strcmp(headers[j].name, w->headers[i].name) == 0;
        if (known)
            continue;
        append(out, sizeof(out), &len, emitted++ ? ",\"%s\":" : "\"%s\":", headers[j].name);
        append(out, sizeof(out), &len, "\"%s\"", headers[j].value);
    }
    append(out, sizeof(out), &len, "%s", "},\"origin\":\"127.0.0.1\",\"url\":\"");
    append(out, sizeof(out), &len, "%s\"", url);
    if (strcmp(method, "POST") == 0 && body != NULL) {
        append(out, sizeof(out), &len, "%s", ",\"data\":");
        append(out, sizeof(out), &len, "%s", body);
        append(out, sizeof(out), &len, "%s", ",\"files\":{},\"form\":{}");
    }
    append(out, sizeof(out), &len, "%s", "}");
    return set_body(resp, 200, "application/json", out);
}

/* ---------------------------------------------------------------------------------------- */
/* Pool callbacks */

static int mk_worker(void **conn, void *user)
{
    const char *reason = NULL;
    http_worker_t *w = http_start(user, &reason);
    if (w == NULL) {
        fprintf(stderr, "worker start failed: %s\n", reason);
        return FDN_EINVAL;
    }
    *conn = w;
    return 0;
}

static void rm_worker(void *conn, void *user)
{
    (void)user;
    free(conn);
}

static _Atomic int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed at line %d: %s\n", __LINE__, #cond);                     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

typedef struct call {
    const char *method;
    const char *path;
    const char *body;
    const header_t *params;
    size_t nparams;
    const header_t *headers;
    size_t nheaders;
    int rc;
    http_response_t resp;
} call_t;

static int do_call(void *conn, void *arg)
{
    call_t *c = arg;
    c->rc = http_request(conn, c->method, c->path, c->params, c->nparams, c->headers, c->nheaders,
                         c->body, &c->resp);
    return 0;
}

static int do_status(void *conn, void *arg)
{
    http_worker_t *w = conn;
    char *out = arg;
    snprintf(out, 512, "{base_url: %s, timeout: %ld, requests_made: %ld, errors: %ld}", w->base_url,
             w->timeout_ms, atomic_load(&w->requests_made), atomic_load(&w->errors));
    return 0;
}

static call_t run(fdn_pools_t *m, const char *method, const char *path, const char *body)
{
    call_t c = {.method = method, .path = path, .body = body};
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_pools_with(m, "http", do_call, &c, 1000, &err);
    CHECK(rc == 0);
    return c;
}

static void *client(void *arg)
{
    fdn_pools_t *m = arg;
    for (int i = 0; i < 20; i++) {
        call_t c = run(m, "GET", "/get", NULL);
        CHECK(c.rc == 0 && c.resp.status == 200);
        free(c.resp.body);
    }
    return NULL;
}

int main(void)
{
    /* Start validation in the reference's order. */
    const char *reason = NULL;
    http_config_t bad[] = {{NULL, 0, 0}, {"", 0, 0}, {"not-a-url", 0, 0}};
    const char *expect[] = {"missing_base_url", "empty_base_url", "invalid_scheme"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(http_start(&bad[i], &reason) == NULL);
        CHECK(strcmp(reason, expect[i]) == 0);
        printf("config %zu rejected: %s\n", i, reason);
    }

    fdn_pools_t *m = NULL;
    if (fdn_pools_create(&m, NULL) != 0)
        return 1;
    http_config_t cfg = {"https://httpbin.org/", 0, 0};
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.size = 2;
    o.max_overflow = 1;
    o.create = mk_worker;
    o.destroy = rm_worker;
    o.user = &cfg;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_pools_start(m, "http", &o, NULL, &err) != 0) {
        fprintf(stderr, "start_pool: %s\n", err.message);
        return 1;
    }
    fdn_pool_status_t s;
    CHECK(fdn_pools_status(m, "http", &s) == 0 && s.available == 2 && s.size == 2);

    char status[512];
    CHECK(fdn_pools_with(m, "http", do_status, status, 1000, NULL) == 0);
    printf("worker status: %s\n", status);
    CHECK(strstr(status, "timeout: 30000") != NULL);

    header_t params[] = {{"q", "pool test"}, {"n", "1"}};
    header_t hdrs[] = {{"User-Agent", "example/1.0"}, {"X-Trace", "abc"}};
    call_t c = {.method = "GET",
                .path = "/test",
                .params = params,
                .nparams = 2,
                .headers = hdrs,
                .nheaders = 2};
    CHECK(fdn_pools_with(m, "http", do_call, &c, 1000, NULL) == 0);
    printf("GET /test -> %d %s\n", c.resp.status, c.resp.body);
    CHECK(c.resp.status == 200 && strstr(c.resp.body, "\"q\":\"pool test\"") != NULL);
    CHECK(strstr(c.resp.body, "q=pool%20test&n=1") != NULL);
    CHECK(strstr(c.resp.body, "example/1.0") != NULL && strstr(c.resp.body, "abc") != NULL);
    free(c.resp.body);

    c = run(m, "GET", "/status/418", NULL);
    printf("GET /status/418 -> %d\n", c.resp.status);
    CHECK(c.resp.status == 418);
    free(c.resp.body);
    c = run(m, "GET", "/nonexistent", NULL);
    CHECK(c.resp.status == 404);
    free(c.resp.body);
    c = run(m, "GET", "/bytes/10000", NULL);
    printf("GET /bytes/10000 -> %zu bytes (%s)\n", c.resp.body_len, c.resp.content_type);
    CHECK(c.resp.body_len == 10000);
    free(c.resp.body);
    c = run(m, "POST", "/post", "{\"key\":\"value\"}");
    printf("POST /post -> %s\n", c.resp.body);
    CHECK(strstr(c.resp.body, "\"data\":{\"key\":\"value\"}") != NULL);
    free(c.resp.body);
    c = run(m, "GET", "/delay/60", NULL);
    CHECK(c.rc == HTTP_ERR_TIMEOUT);
    c = run(m, "GET", "/definitely-will-cause-error", NULL);
    CHECK(c.rc == HTTP_ERR_404);

    /* Five concurrent clients through a pool of 2 (+1 overflow). */
    pthread_t t[5];
    for (int i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, client, m);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);

    CHECK(fdn_pools_status(m, "http", &s) == 0);
    printf("pool: size=%d workers=%d available=%d in_use=%d overflow=%d waiters=%d "
           "checkouts=%llu\n",
           s.size, s.workers, s.available, s.in_use, s.overflow, s.waiters,
           (unsigned long long)s.checkouts);
    CHECK(s.in_use == 0 && s.waiters == 0 && s.workers == 2);
    CHECK(fdn_pools_stop(m, "http") == 0);
    CHECK(fdn_pools_status(m, "http", &s) == FDN_ENOENT);
    fdn_pools_destroy(m);
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", atomic_load(&failures));
        return 1;
    }
    printf("ok\n");
    return 0;
}
