/*
 * DESIGN: the etcd client (storage/etcd_client.h) over libcurl's easy API (calls) and multi API
 * (the watch stream, so that a stop from another thread wakes it at once: curl_multi_wakeup).
 *
 * A call: build the JSON body with jansson (keys and values base64, 64-bit numbers as
 * strings, logic/etcd_codec.c; a member whose allocation failed fails the whole request, and
 * so does a failed allocation of the dump, which jansson 2.14 goes on past), POST it to
 * /v3/<path> with CURLOPT_TIMEOUT_MS = the client's timeout (connect included; a call may ask
 * for a shorter bound: a lease keepalive, whose lease may expire sooner), read the
 * answer into a buffer capped at MAX_ANSWER, and check it: a transport failure, an HTTP status
 * other than 200, an answer that is not JSON or an {"error": ...} answer each become one FDN_E*
 * code with a message. Nothing is ever resent: a put that timed out may or may not have been
 * applied, and the caller decides.
 *
 * Handles: idle curl easy handles (each keeps its connection to etcd alive) wait on a small
 * stack under `mu`; a call pops one (or makes one), uses it without the lock and pushes it
 * back. Locks: `mu` only, never held during I/O.
 *
 * The watch: one POST /v3/watch whose answer never ends; the write callback appends to a
 * line buffer and hands every complete line to the pure parser, then to the caller's
 * function, on the thread running fdn__etcd_watch_run.
 *
 * Protection (fdn__etcd_set_guard; infra/etcd_guard.c installs an fdn_breaker there for the
 * registry's and the runtime config's clients, this layer cannot link the breaker itself):
 * every call asks the guard first. A call it rejects makes no request and answers the
 * transport error that opened it, so callers see one kind of "etcd unreachable" either way.
 * Only transport failures (refused, timed out, network) are reported as failures; an answer
 * from etcd, even a refusal, is a success. The guard is published once (an atomic pointer): a
 * call made before sees none.
 * Every call is timed into a fixed histogram per (operation, outcome) (atomic counters, read by
 * the runtime's metrics collector as fdn_etcd_request_duration_seconds).
 *
 * curl_global_init runs once per process (pthread_once) before the first handle.
 */
#include "storage/etcd_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/lock.h"

#define MAX_ANSWER (64u << 20) /* 64 MiB: a range of a big prefix */
#define IDLE_MAX   8

struct fdn__etcd {
    char url[512];
    int64_t timeout_ms;
    fdn__mutex_t mu;
    CURL *idle[IDLE_MAX] FDN_MEMBER_GUARDED_BY(mu);
    int nidle FDN_MEMBER_GUARDED_BY(mu);
    struct curl_slist *headers; /* immutable after create */
    _Atomic(struct guard *) guard; /* fdn__etcd_set_guard; NULL: unprotected (tests, tools) */
    _Atomic int last_failure;      /* the transport error the guard was told last */
    /* latency: per (operation, outcome), cumulative counts per bound then the total */
    _Atomic uint64_t lat[FDN__ETCD_OPS][FDN__ETCD_OUTCOMES][FDN__ETCD_LAT_BOUNDS + 1];
    _Atomic uint64_t lat_sum_us[FDN__ETCD_OPS][FDN__ETCD_OUTCOMES];
};

static const int64_t LAT_BOUNDS_US[FDN__ETCD_LAT_BOUNDS] = {1000,  2500,   5000,   10000,
                                                            25000, 100000, 1000000};

static const char *const OP_PATHS[FDN__ETCD_OPS] = {
    "kv/range",      "kv/put",      "kv/txn",          "kv/deleterange",
    "kv/compaction", "lease/grant", "lease/keepalive", "lease/revoke",
};
static const char *const OP_NAMES[FDN__ETCD_OPS] = {
    "range", "put", "txn", "delete", "compaction", "lease_grant", "lease_keepalive", "lease_revoke",
};
static const char *const OUTCOME_NAMES[FDN__ETCD_OUTCOMES] = {"ok", "refused", "timeout",
                                                              "unreachable", "rejected"};

struct guard {
    fdn__etcd_guard_ops_t ops;
    void *g;
};

struct fdn__etcd_watch {
    CURLM *multi;
    _Atomic bool stop;      /* sticky: every run returns FDN_ECANCELED */
    _Atomic bool interrupt; /* one-shot: the current (or next) run returns FDN_ECANCELED */
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_ready(fdn_error_t *err)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return fdn_err_set(err, FDN_EINIT, "libcurl: %s", curl_easy_strerror(g_curl_init_rc));
    return 0;
}

int fdn__etcd_create(fdn__etcd_t **out, const char *url, int64_t timeout_ms, fdn_error_t *err)
{
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "out is NULL");
    *out = NULL;
    if (timeout_ms < 1)
        return fdn_err_set(err, FDN_EINVAL, "etcd timeout must be >= 1 ms");
    int rc = curl_ready(err);
    if (rc < 0)
        return rc;
    fdn__etcd_t *c = fdn__calloc(1, sizeof(*c));
    if (c == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd client");
    rc = fdn__etcd_url_check(url, c->url, sizeof(c->url), err);
    if (rc < 0) {
        fdn__free(c);
        return rc;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    if (h2 == NULL) {
        curl_slist_free_all(h);
        fdn__free(c);
        return fdn_err_set(err, FDN_ENOMEM, "etcd client");
    }
    c->headers = h2;
    c->timeout_ms = timeout_ms;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void fdn__etcd_destroy(fdn__etcd_t *c)
{
    if (c == NULL)
        return;
    fdn__mutex_lock(&c->mu);
    for (int i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    c->nidle = 0;
    fdn__mutex_unlock(&c->mu);
    curl_slist_free_all(c->headers);
    struct guard *g = atomic_load_explicit(&c->guard, memory_order_acquire);
    if (g != NULL) {
        g->ops.destroy(g->g);
        fdn__free(g);
    }
    pthread_mutex_destroy(&c->mu);
    fdn__free(c);
}

int fdn__etcd_set_guard(fdn__etcd_t *c, const fdn__etcd_guard_ops_t *ops, void *g)
{
    struct guard *n = fdn__malloc(sizeof(*n));
    if (n == NULL)
        return FDN_ENOMEM;
    n->ops = *ops;
    n->g = g;
    struct guard *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&c->guard, &none, n, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        fdn__free(n);
        return FDN_EBUSY;
    }
    return 0;
}

int fdn__etcd_guard_state(const fdn__etcd_t *c)
{
    struct guard *g = atomic_load_explicit(&((fdn__etcd_t *)c)->guard, memory_order_acquire);
    return g != NULL ? g->ops.state(g->g) : -1;
}

void *fdn__etcd_guard(const fdn__etcd_t *c, const fdn__etcd_guard_ops_t **ops)
{
    struct guard *g = atomic_load_explicit(&((fdn__etcd_t *)c)->guard, memory_order_acquire);
    if (ops != NULL)
        *ops = g != NULL ? &g->ops : NULL;
    return g != NULL ? g->g : NULL;
}

const char *fdn__etcd_op_name(int op)
{
    return op >= 0 && op < FDN__ETCD_OPS ? OP_NAMES[op] : "?";
}

const char *fdn__etcd_outcome_name(int outcome)
{
    return outcome >= 0 && outcome < FDN__ETCD_OUTCOMES ? OUTCOME_NAMES[outcome] : "?";
}

void fdn__etcd_latency(fdn__etcd_t *c, int op, int outcome, fdn__etcd_lat_t *out)
{
    for (int i = 0; i <= FDN__ETCD_LAT_BOUNDS; i++)
        out->le[i] = atomic_load_explicit(&c->lat[op][outcome][i], memory_order_relaxed);
    out->sum_us = atomic_load_explicit(&c->lat_sum_us[op][outcome], memory_order_relaxed);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void record_latency(fdn__etcd_t *c, int op, int outcome, int64_t us)
{
    _Atomic uint64_t *le = c->lat[op][outcome];
    for (int i = 0; i < FDN__ETCD_LAT_BOUNDS; i++)
        if (us <= LAT_BOUNDS_US[i])
            atomic_fetch_add_explicit(&le[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&le[FDN__ETCD_LAT_BOUNDS], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->lat_sum_us[op][outcome], (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
}

/* Is rc a transport failure (etcd did not answer)? */
static bool transport_failure(int rc)
{
    return rc == FDN_ECONNREFUSED || rc == FDN_ETIMEDOUT || rc == FDN_ENETWORK;
}

static int outcome_of(int rc)
{
    return rc == 0                 ? FDN__ETCD_OK
           : rc == FDN_ETIMEDOUT   ? FDN__ETCD_TIMEOUT
           : transport_failure(rc) ? FDN__ETCD_UNREACHABLE
                                   : FDN__ETCD_REFUSED;
}

const char *fdn__etcd_url(const fdn__etcd_t *c)
{
    return c->url;
}

int64_t fdn__etcd_timeout_ms(const fdn__etcd_t *c)
{
    return c->timeout_ms;
}

static CURL *handle_get(fdn__etcd_t *c)
{
    CURL *h = NULL;
    fdn__mutex_lock(&c->mu);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    fdn__mutex_unlock(&c->mu);
    return h ? h : curl_easy_init();
}

static void handle_put(fdn__etcd_t *c, CURL *h, bool reuse)
{
    if (reuse) {
        fdn__mutex_lock(&c->mu);
        if (c->nidle < IDLE_MAX) {
            c->idle[c->nidle++] = h;
            h = NULL;
        }
        fdn__mutex_unlock(&c->mu);
    }
    if (h != NULL)
        curl_easy_cleanup(h);
}

typedef struct answer {
    fdn__buf_t b;
    bool too_large;
} answer_t;

static size_t on_answer(char *data, size_t size, size_t nmemb, void *user)
{
    answer_t *a = user;
    size_t n = size * nmemb;
    if (a->b.len + n > MAX_ANSWER) {
        a->too_large = true;
        return 0;
    }
    fdn__buf_put(&a->b, data, n);
    return a->b.oom ? 0 : n;
}

/* A libcurl failure as a code and message. */
static int transport_error(fdn_error_t *err, CURLcode cc, const char *url, const char *ebuf)
{
    const char *detail = ebuf[0] ? ebuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return fdn_err_set(err, FDN_ECONNREFUSED, "etcd at %s: connection refused (%s)", url,
                           detail);
    case CURLE_OPERATION_TIMEDOUT:
        return fdn_err_set(err, FDN_ETIMEDOUT, "etcd at %s: timed out (%s)", url, detail);
    case CURLE_OUT_OF_MEMORY:
        return fdn_err_set(err, FDN_ENOMEM, "etcd at %s: out of memory", url);
    default:
        return fdn_err_set(err, FDN_ENETWORK, "etcd at %s: %s", url, detail);
    }
}

/* A JSON string of a 64-bit number, as the gateway expects. */
static json_t *num(int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%lld", (long long)v);
    return json_string(s);
}

/* A JSON string of the base64 of b[0..n). */
static json_t *b64(const char *b, size_t n)
{
    size_t cap = fdn__b64_encoded_len(n) + 1;
    char stackbuf[512];
    char *s = cap <= sizeof(stackbuf) ? stackbuf : fdn__malloc(cap);
    if (s == NULL)
        return NULL;
    size_t len = fdn__b64_encode(s, cap, b, n);
    json_t *j = json_stringn(s, len);
    if (s != stackbuf)
        fdn__free(s);
    return j;
}

/* v's compact JSON text (free with fdn__free), or NULL when memory ran out (fdn_json_dumps:
 * never a text with a member left out). */
static char *dump(const json_t *v)
{
    char *text = NULL;
    (void)fdn_json_dumps(v, JSON_COMPACT, &text, NULL);
    return text;
}

/* Does the message say the request was too large? */
static bool says_too_large(const char *msg)
{
    return strstr(msg, "too large") != NULL || strstr(msg, "larger than max") != NULL ||
           strstr(msg, "exceeds") != NULL;
}

/* Set member name of the request being built to v (consumed; NULL after an allocation
 * failure). false when it could not be set: the caller drops the whole request, since a
 * request without one of its members is another request that etcd may well accept (a put
 * without its lease or value, a delete of one key instead of a range). */
static bool set(json_t *o, const char *name, json_t *v)
{
    return v != NULL && json_object_set_new(o, name, v) == 0;
}

/* o, or NULL (o freed) when !ok. */
static json_t *built(json_t *o, bool ok)
{
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

/* {"key": key, "range_end": range_end} (no range_end when it is NULL); NULL on OOM. */
static json_t *key_range(const char *key, size_t keylen, const char *range_end, size_t relen)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = set(o, "key", b64(key, keylen));
    if (ok && range_end != NULL)
        ok = set(o, "range_end", b64(range_end, relen));
    return built(o, ok);
}

/* {"key": key, "value": value, "lease": lease} (no lease when it is 0); NULL on OOM. */
static json_t *put_request(const char *key, size_t keylen, const char *value, size_t valuelen,
                           int64_t lease)
{
    json_t *o = key_range(key, keylen, NULL, 0);
    if (o == NULL)
        return NULL;
    bool ok = set(o, "value", b64(value, valuelen));
    if (ok && lease != 0)
        ok = set(o, "lease", num(lease));
    return built(o, ok);
}

/* {name: inner} (inner consumed); NULL when either is NULL. */
static json_t *wrap(const char *name, json_t *inner)
{
    json_t *o = inner ? json_object() : NULL;
    if (o == NULL) {
        json_decref(inner);
        return NULL;
    }
    return built(o, set(o, name, inner));
}

/* {name: v}, v as the gateway writes 64-bit numbers; NULL on OOM. */
static json_t *number_body(const char *name, int64_t v)
{
    json_t *o = json_object();
    return o != NULL ? built(o, set(o, name, num(v))) : NULL;
}

/* The options of a POST of text to url, answered into fn(data), that every request shares;
 * connect_ms bounds the connect. */
static void post_setup(CURL *h, const fdn__etcd_t *c, const char *url, const char *text,
                       curl_write_callback fn, void *data, char *ebuf, int64_t connect_ms)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, data);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
}

/* POST body (consumed, may be NULL after an OOM) to /v3/<path>, bounded by timeout_ms (connect
 * included); *out gets the answer object. */
static int call_raw(fdn__etcd_t *c, const char *path, json_t *body, int64_t timeout_ms,
                    json_t **out, fdn_error_t *err)
{
    *out = NULL;
    if (body == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd %s: building the request", path);
    char *text = dump(body);
    json_decref(body);
    if (text == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd %s: building the request", path);
    char url[600];
    snprintf(url, sizeof(url), "%s/v3/%s", c->url, path);
    CURL *h = handle_get(c);
    if (h == NULL) {
        fdn__free(text);
        return fdn_err_set(err, FDN_ENOMEM, "etcd %s: no curl handle", path);
    }
    char ebuf[CURL_ERROR_SIZE];
    ebuf[0] = '\0';
    answer_t a = {FDN__BUF_INIT, false};
    post_setup(h, c, url, text, on_answer, &a, ebuf, timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    handle_put(c, h, cc == CURLE_OK);
    fdn__free(text);
    int rc = 0;
    if (a.too_large) {
        rc = fdn_err_set(err, FDN_ETOO_LARGE, "etcd %s: answer larger than %u bytes", path,
                         MAX_ANSWER);
    } else if (a.b.oom) {
        rc = fdn_err_set(err, FDN_ENOMEM, "etcd %s: reading the answer", path);
    } else if (cc != CURLE_OK) {
        rc = transport_error(err, cc, c->url, ebuf);
    } else {
        json_error_t jerr;
        bool oom = false;
        json_t *root = a.b.len ? fdn__json_loadb(a.b.p, a.b.len, 0, &jerr, &oom) : NULL;
        const json_t *m = root ? json_object_get(root, "message") : NULL;
        const json_t *e = root ? json_object_get(root, "error") : NULL;
        if (oom) {
            rc = fdn_err_set(err, FDN_ENOMEM, "etcd %s: parsing the answer", path);
        } else if (root == NULL || !json_is_object(root)) {
            rc = fdn_err_set(err, status == 200 ? FDN_EPARSE : FDN_EEXTERNAL,
                             "etcd %s at %s: HTTP %ld, the answer is not a JSON object: %.80s",
                             path, c->url, status, a.b.p ? a.b.p : "(empty)");
        } else if (status != 200 || e != NULL) {
            const char *msg = json_is_string(m)   ? json_string_value(m)
                              : json_is_string(e) ? json_string_value(e)
                                                  : "(no message)";
            rc = fdn_err_set(err, says_too_large(msg) ? FDN_ETOO_LARGE : FDN_EEXTERNAL,
                             "etcd %s: HTTP %ld: %.180s", path, status, msg);
        }
        if (rc == 0)
            *out = root;
        else
            json_decref(root);
    }
    fdn__free(a.b.p);
    return rc;
}

/* How one call is made (call_with). */
typedef struct call_opts {
    int64_t timeout_ms; /* its bound: 1..the client's timeout (0: the client's) */
    bool unguarded;     /* past the guard: not asked, not told */
} call_opts_t;

/* call_raw through the guard (when protected and not o->unguarded), bounded by o->timeout_ms
 * when shorter than the client's timeout, timed into the latency histogram. */
static int call_with(fdn__etcd_t *c, const char *path, json_t *body, const call_opts_t *o,
                     json_t **out, fdn_error_t *err)
{
    int op = 0;
    while (op < FDN__ETCD_OPS - 1 && strcmp(OP_PATHS[op], path) != 0)
        op++;
    int64_t t0 = mono_us();
    struct guard *g = o->unguarded ? NULL : atomic_load_explicit(&c->guard, memory_order_acquire);
    int64_t timeout_ms =
        o->timeout_ms > 0 && o->timeout_ms < c->timeout_ms ? o->timeout_ms : c->timeout_ms;
    fdn__etcd_permit_t permit = {0, 0};
    if (g != NULL && g->ops.admit(g->g, &permit) != 0) {
        *out = NULL;
        json_decref(body);
        int last = atomic_load_explicit(&c->last_failure, memory_order_relaxed);
        record_latency(c, op, FDN__ETCD_REJECTED, mono_us() - t0);
        return fdn_err_set(err, last ? last : FDN_ENETWORK,
                           "etcd at %s: not called, its circuit breaker is open after %s", c->url,
                           fdn_err_name(last ? last : FDN_ENETWORK));
    }
    int rc = call_raw(c, path, body, timeout_ms, out, err);
    if (g != NULL) {
        bool failed = transport_failure(rc);
        if (failed)
            atomic_store_explicit(&c->last_failure, rc, memory_order_relaxed);
        g->ops.done(g->g, &permit, failed ? rc : 0);
    }
    record_latency(c, op, outcome_of(rc), mono_us() - t0);
    return rc;
}

/* call_with the client's bound, through its guard. */
static int call(fdn__etcd_t *c, const char *path, json_t *body, json_t **out, fdn_error_t *err)
{
    static const call_opts_t PLAIN = {0, false};
    return call_with(c, path, body, &PLAIN, out, err);
}

int fdn__etcd_range(fdn__etcd_t *c, const char *key, size_t keylen, const char *range_end,
                    size_t relen, fdn__etcd_range_t *out, fdn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    json_t *ans = NULL;
    int rc = call(c, "kv/range", key_range(key, keylen, range_end, relen), &ans, err);
    if (rc < 0)
        return rc;
    /* reuse the pure parser (the one the fuzzer covers) on the answer's text */
    char *text = dump(ans);
    json_decref(ans);
    if (text == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd range");
    rc = fdn__etcd_range_parse(text, strlen(text), out, err);
    fdn__free(text);
    return rc;
}

static int answer_revision(const json_t *ans, int64_t *rev)
{
    const json_t *h = json_object_get(ans, "header");
    return fdn__etcd_json_i64(json_is_object(h) ? json_object_get(h, "revision") : NULL, rev);
}

int fdn__etcd_put(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                  size_t valuelen, int64_t lease, int64_t *revision, fdn_error_t *err)
{
    json_t *ans = NULL;
    int rc = call(c, "kv/put", put_request(key, keylen, value, valuelen, lease), &ans, err);
    if (rc < 0)
        return rc;
    int64_t rev = 0;
    rc = answer_revision(ans, &rev);
    json_decref(ans);
    if (rc < 0 || rev <= 0)
        return fdn_err_set(err, FDN_EPARSE, "etcd put: no revision in the answer");
    if (revision != NULL)
        *revision = rev;
    return 0;
}

/* {"key": k, "target": target, field: value} */
static json_t *compare(const char *key, size_t keylen, const char *target, const char *field,
                       int64_t v)
{
    json_t *cmp = json_object();
    if (cmp == NULL)
        return NULL;
    bool ok = set(cmp, "key", b64(key, keylen)) && set(cmp, "target", json_string(target)) &&
              set(cmp, "result", json_string("EQUAL")) && set(cmp, field, num(v));
    return built(cmp, ok);
}

/* {"compare": [cmp], "success": ops[0..nops), "failure": [failure] (none when NULL)}; takes
 * every argument over (NULL after an allocation failure, and every part is freed) */
static json_t *txn_body(json_t *cmp, json_t *const *ops, size_t nops, json_t *failure)
{
    json_t *body = json_object();
    json_t *c = json_array(), *s = json_array(), *f = json_array();
    bool ok = body != NULL && c != NULL && s != NULL && f != NULL && cmp != NULL;
    for (size_t i = 0; i < nops; i++)
        ok = ok && ops[i] != NULL;
    if (!ok) {
        json_decref(body);
        json_decref(c);
        json_decref(s);
        json_decref(f);
        json_decref(cmp);
        for (size_t i = 0; i < nops; i++)
            json_decref(ops[i]);
        json_decref(failure);
        return NULL;
    }
    /* each append and set consumes its value, also when it fails */
    ok = json_array_append_new(c, cmp) == 0;
    for (size_t i = 0; i < nops; i++)
        ok = json_array_append_new(s, ops[i]) == 0 && ok;
    if (failure != NULL)
        ok = json_array_append_new(f, failure) == 0 && ok;
    ok = set(body, "compare", c) && ok;
    ok = set(body, "success", s) && ok;
    ok = set(body, "failure", f) && ok;
    return built(body, ok);
}

/* The compare-and-put transactions: if cmp holds, run ops (the put of key, maybe with deletes
 * before it); if not, read key, whose record goes to *existing (may be NULL; key NULL when
 * the key does not exist). *done tells which; *revision (may be NULL) gets the answer's
 * revision. Takes cmp and ops over. timeout_ms: as call_opts_t's. */
static int cas_txn(fdn__etcd_t *c, const char *key, size_t keylen, json_t *cmp, json_t *const *ops,
                   size_t nops, int64_t timeout_ms, bool *done, fdn__etcd_kv_t *existing,
                   int64_t *revision, fdn_error_t *err)
{
    *done = false;
    if (existing != NULL)
        memset(existing, 0, sizeof(*existing));
    json_t *get = wrap("request_range", key_range(key, keylen, NULL, 0));
    if (get == NULL) { /* (txn_body would take it for "no failure branch") */
        json_decref(cmp);
        for (size_t i = 0; i < nops; i++)
            json_decref(ops[i]);
        return fdn_err_set(err, FDN_ENOMEM, "etcd kv/txn: building the request");
    }
    json_t *body = txn_body(cmp, ops, nops, get);
    json_t *ans = NULL;
    call_opts_t o = {timeout_ms, false};
    int rc = call_with(c, "kv/txn", body, &o, &ans, err);
    if (rc < 0)
        return rc;
    int64_t rev = 0;
    rc = answer_revision(ans, &rev);
    bool ok = json_is_true(json_object_get(ans, "succeeded"));
    if (rc == 0 && !ok && existing != NULL) {
        /* responses[0].response_range.kvs[0] (absent when the key does not exist) */
        const json_t *r0 = json_array_get(json_object_get(ans, "responses"), 0);
        const json_t *rr0 = json_object_get(r0, "response_range");
        const json_t *kv0 = json_array_get(json_object_get(rr0, "kvs"), 0);
        if (kv0 != NULL)
            rc = fdn__etcd_kv_from_json(kv0, existing);
    }
    json_decref(ans);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(err, rc, "etcd txn");
    if (rc < 0 || rev <= 0)
        return fdn_err_set(err, FDN_EPARSE, "etcd txn: malformed answer");
    *done = ok;
    if (revision != NULL)
        *revision = rev;
    return 0;
}

int fdn__etcd_put_if_absent(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                            size_t valuelen, int64_t lease, bool *created, fdn__etcd_kv_t *existing,
                            int64_t *revision, fdn_error_t *err)
{
    return fdn__etcd_put_if_absent_within(c, 0, key, keylen, value, valuelen, lease, created,
                                          existing, revision, err);
}

int fdn__etcd_put_if_absent_within(fdn__etcd_t *c, int64_t timeout_ms, const char *key,
                                   size_t keylen, const char *value, size_t valuelen, int64_t lease,
                                   bool *created, fdn__etcd_kv_t *existing, int64_t *revision,
                                   fdn_error_t *err)
{
    json_t *put = wrap("request_put", put_request(key, keylen, value, valuelen, lease));
    return cas_txn(c, key, keylen, compare(key, keylen, "CREATE", "create_revision", 0), &put, 1,
                   timeout_ms, created, existing, revision, err);
}

int fdn__etcd_put_if_mod(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                         size_t valuelen, int64_t mod_revision, bool *done,
                         fdn__etcd_kv_t *existing, int64_t *revision, fdn_error_t *err)
{
    json_t *put = wrap("request_put", put_request(key, keylen, value, valuelen, 0));
    return cas_txn(c, key, keylen, compare(key, keylen, "MOD", "mod_revision", mod_revision), &put,
                   1, 0, done, existing, revision, err);
}

int fdn__etcd_put_if_mod_clearing(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                                  size_t valuelen, int64_t mod_revision, const char *from,
                                  size_t fromlen, const char *range_end, size_t relen, bool *done,
                                  fdn__etcd_kv_t *existing, int64_t *revision, fdn_error_t *err)
{
    *done = false;
    if (existing != NULL)
        memset(existing, 0, sizeof(*existing));
    if (fromlen > keylen || memcmp(from, key, fromlen) != 0)
        return fdn_err_set(err, FDN_EINVAL, "etcd txn: the key is not in the range it clears");
    /* [from, key) and [key + "\0", range_end): etcd refuses a txn whose put and delete overlap */
    char *after = fdn__malloc(keylen + 1);
    if (after == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd txn");
    memcpy(after, key, keylen);
    after[keylen] = '\0';
    json_t *ops[3] = {
        wrap("request_delete_range", key_range(from, fromlen, key, keylen)),
        wrap("request_delete_range", key_range(after, keylen + 1, range_end, relen)),
        wrap("request_put", put_request(key, keylen, value, valuelen, 0)),
    };
    fdn__free(after);
    return cas_txn(c, key, keylen, compare(key, keylen, "MOD", "mod_revision", mod_revision), ops,
                   3, 0, done, existing, revision, err);
}

/* Delete key only if its `target` (`field`) is v: one txn. *deleted tells whether it was. */
static int delete_if(fdn__etcd_t *c, const char *key, size_t keylen, const char *target,
                     const char *field, int64_t v, bool *deleted, fdn_error_t *err)
{
    *deleted = false;
    json_t *del = wrap("request_delete_range", key_range(key, keylen, NULL, 0));
    json_t *body = txn_body(compare(key, keylen, target, field, v), &del, 1, NULL);
    json_t *ans = NULL;
    int rc = call(c, "kv/txn", body, &ans, err);
    if (rc < 0)
        return rc;
    *deleted = json_is_true(json_object_get(ans, "succeeded"));
    json_decref(ans);
    return 0;
}

int fdn__etcd_delete_if_created(fdn__etcd_t *c, const char *key, size_t keylen, int64_t create_rev,
                                bool *deleted, fdn_error_t *err)
{
    return delete_if(c, key, keylen, "CREATE", "create_revision", create_rev, deleted, err);
}

int fdn__etcd_delete_if_lease(fdn__etcd_t *c, const char *key, size_t keylen, int64_t lease,
                              bool *deleted, fdn_error_t *err)
{
    return delete_if(c, key, keylen, "LEASE", "lease", lease, deleted, err);
}

int fdn__etcd_delete(fdn__etcd_t *c, const char *key, size_t keylen, const char *range_end,
                     size_t relen, int64_t *deleted, fdn_error_t *err)
{
    json_t *ans = NULL;
    int rc = call(c, "kv/deleterange", key_range(key, keylen, range_end, relen), &ans, err);
    if (rc < 0)
        return rc;
    int64_t n = 0;
    rc = fdn__etcd_json_i64(json_object_get(ans, "deleted"), &n);
    json_decref(ans);
    if (rc < 0)
        return fdn_err_set(err, FDN_EPARSE, "etcd deleterange: malformed answer");
    if (deleted != NULL)
        *deleted = n;
    return 0;
}

int fdn__etcd_compact(fdn__etcd_t *c, int64_t revision, fdn_error_t *err)
{
    json_t *body = number_body("revision", revision);
    if (body != NULL && !set(body, "physical", json_true()))
        body = built(body, false);
    json_t *ans = NULL;
    fdn_error_t e = FDN_ERROR_INIT;
    int rc = call(c, "kv/compaction", body, &ans, &e);
    json_decref(ans);
    /* Another client compacted past `revision` first: the history up to it is gone, which is
     * what was asked (etcd refuses a compaction at or below the current compact revision). */
    if (rc == FDN_EEXTERNAL && strstr(e.message, "required revision has been compacted") != NULL)
        return 0;
    if (rc != 0 && err != NULL)
        *err = e;
    return rc;
}

int fdn__etcd_lease_grant(fdn__etcd_t *c, int64_t ttl_s, int64_t *id, int64_t *ttl_granted,
                          fdn_error_t *err)
{
    json_t *ans = NULL;
    int rc = call(c, "lease/grant", number_body("TTL", ttl_s), &ans, err);
    if (rc < 0)
        return rc;
    int64_t lid = 0, ttl = 0;
    rc = fdn__etcd_json_i64(json_object_get(ans, "ID"), &lid);
    if (rc == 0)
        rc = fdn__etcd_json_i64(json_object_get(ans, "TTL"), &ttl);
    const json_t *e = json_object_get(ans, "error");
    json_decref(ans);
    if (rc < 0 || lid == 0 || ttl <= 0 || e != NULL)
        return fdn_err_set(err, FDN_EPARSE, "etcd lease grant: no lease in the answer");
    *id = lid;
    if (ttl_granted != NULL)
        *ttl_granted = ttl;
    return 0;
}

int fdn__etcd_lease_keepalive(fdn__etcd_t *c, int64_t id, int64_t timeout_ms, int64_t *ttl,
                              fdn_error_t *err)
{
    json_t *ans = NULL;
    call_opts_t o = {timeout_ms, false};
    int rc = call_with(c, "lease/keepalive", number_body("ID", id), &o, &ans, err);
    if (rc < 0)
        return rc;
    /* a stream endpoint: one {"result": {...}} for our one request */
    const json_t *r = json_object_get(ans, "result");
    int64_t t = 0;
    rc = json_is_object(r) ? fdn__etcd_json_i64(json_object_get(r, "TTL"), &t) : FDN_EPARSE;
    json_decref(ans);
    if (rc < 0)
        return fdn_err_set(err, FDN_EPARSE, "etcd lease keepalive: malformed answer");
    *ttl = t > 0 ? t : 0;
    return 0;
}

int fdn__etcd_lease_revoke(fdn__etcd_t *c, int64_t id, bool unguarded, fdn_error_t *err)
{
    json_t *ans = NULL;
    call_opts_t o = {0, unguarded};
    int rc = call_with(c, "lease/revoke", number_body("ID", id), &o, &ans, err);
    json_decref(ans);
    return rc;
}

/* ---- watch -------------------------------------------------------------------------------- */

int fdn__etcd_watch_create(fdn__etcd_watch_t **out)
{
    int rc = curl_ready(NULL);
    if (rc < 0)
        return rc;
    fdn__etcd_watch_t *w = fdn__calloc(1, sizeof(*w));
    if (w == NULL)
        return FDN_ENOMEM;
    w->multi = curl_multi_init();
    if (w->multi == NULL) {
        fdn__free(w);
        return FDN_ENOMEM;
    }
    atomic_init(&w->stop, false);
    atomic_init(&w->interrupt, false);
    *out = w;
    return 0;
}

void fdn__etcd_watch_destroy(fdn__etcd_watch_t *w)
{
    if (w == NULL)
        return;
    curl_multi_cleanup(w->multi);
    fdn__free(w);
}

void fdn__etcd_watch_stop(fdn__etcd_watch_t *w)
{
    if (w == NULL)
        return;
    atomic_store_explicit(&w->stop, true, memory_order_release);
    curl_multi_wakeup(w->multi);
}

void fdn__etcd_watch_interrupt(fdn__etcd_watch_t *w)
{
    atomic_store_explicit(&w->interrupt, true, memory_order_release);
    curl_multi_wakeup(w->multi);
}

/* Stop or interrupt asked for? (An interrupt is consumed.) */
static bool cancelled(fdn__etcd_watch_t *w)
{
    return atomic_load_explicit(&w->stop, memory_order_acquire) ||
           atomic_exchange_explicit(&w->interrupt, false, memory_order_acq_rel);
}

typedef struct wstate {
    fdn__buf_t line;
    size_t max_line;
    fdn__etcd_watch_fn fn;
    void *user;
    int rc;         /* why the write callback ended the transfer (0: fn asked) */
    bool ended;     /* the write callback ended it */
    bool confirmed; /* a message came (etcd's confirmation of the watch is the first) */
    fdn_error_t *err;
} wstate_t;

static size_t on_stream(char *data, size_t size, size_t nmemb, void *user)
{
    wstate_t *s = user;
    size_t n = size * nmemb;
    fdn__buf_put(&s->line, data, n);
    if (s->line.oom) {
        s->rc = fdn_err_set(s->err, FDN_ENOMEM, "etcd watch: line buffer");
        s->ended = true;
        return 0;
    }
    size_t off = 0, l;
    while ((l = fdn__etcd_line_len(s->line.p + off, s->line.len - off)) > 0) {
        fdn__etcd_watch_msg_t m;
        int rc = fdn__etcd_watch_msg_parse(s->line.p + off, l, &m, s->err);
        off += l;
        s->confirmed = true;
        if (rc < 0) {
            s->rc = rc;
            s->ended = true;
            return 0;
        }
        int stop = s->fn(&m, s->user);
        fdn__etcd_watch_msg_clear(&m);
        if (stop) {
            s->rc = 0;
            s->ended = true;
            return 0;
        }
    }
    if (off > 0) {
        memmove(s->line.p, s->line.p + off, s->line.len - off);
        s->line.len -= off;
        s->line.p[s->line.len] = '\0';
    }
    if (s->line.len > s->max_line) {
        s->rc = fdn_err_set(s->err, FDN_ETOO_LARGE, "etcd watch: a message passed %zu bytes",
                            s->max_line);
        s->ended = true;
        return 0;
    }
    return n;
}

int fdn__etcd_watch_run(fdn__etcd_watch_t *w, fdn__etcd_t *c, const char *key, size_t keylen,
                        const char *range_end, size_t relen, int64_t start_revision,
                        size_t max_line, fdn__etcd_watch_fn fn, void *user, fdn_error_t *err)
{
    if (cancelled(w))
        return fdn_err_set(err, FDN_ECANCELED, "etcd watch stopped");
    json_t *cr = key_range(key, keylen, range_end, relen);
    if (cr != NULL && start_revision > 0 && !set(cr, "start_revision", num(start_revision)))
        cr = built(cr, false); /* a watch without its start would miss the changes before now */
    json_t *body = wrap("create_request", cr);
    if (body == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd watch");
    char *text = dump(body);
    json_decref(body);
    CURL *h = curl_easy_init();
    if (text == NULL || h == NULL) {
        fdn__free(text);
        if (h != NULL)
            curl_easy_cleanup(h);
        return fdn_err_set(err, FDN_ENOMEM, "etcd watch");
    }
    char url[600];
    snprintf(url, sizeof(url), "%s/v3/watch", c->url);
    char ebuf[CURL_ERROR_SIZE];
    ebuf[0] = '\0';
    wstate_t s = {FDN__BUF_INIT, max_line, fn, user, 0, false, false, err};
    /* the connect and etcd's confirmation are bounded by the timeout: a server that accepts
     * and never answers (a stopped etcd, a proxy without a backend) is a failed watch */
    int64_t confirm_by = mono_us() + c->timeout_ms * 1000;
    post_setup(h, c, url, text, on_stream, &s, ebuf, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    int rc = 0;
    if (curl_multi_add_handle(w->multi, h) != CURLM_OK) {
        rc = fdn_err_set(err, FDN_ENOMEM, "etcd watch: curl_multi_add_handle");
        goto out;
    }
    for (;;) {
        if (cancelled(w)) {
            rc = fdn_err_set(err, FDN_ECANCELED, "etcd watch stopped");
            break;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(w->multi, &running);
        if (mc != CURLM_OK) {
            rc = fdn_err_set(err, FDN_ENETWORK, "etcd watch: %s", curl_multi_strerror(mc));
            break;
        }
        CURLMsg *msg;
        int left;
        bool done = false;
        while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            done = true;
            CURLcode cc = msg->data.result;
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (s.ended)
                rc = s.rc;
            else if (cc != CURLE_OK)
                rc = transport_error(err, cc, c->url, ebuf);
            else if (status != 200)
                rc = fdn_err_set(err, FDN_EEXTERNAL, "etcd watch: HTTP %ld", status);
            else
                rc = fdn_err_set(err, FDN_ENETWORK, "etcd watch: the stream ended");
        }
        if (done)
            break;
        int wait_ms = 1000;
        if (!s.confirmed) {
            int64_t left_us = confirm_by - mono_us();
            if (left_us <= 0) {
                rc = fdn_err_set(err, FDN_ETIMEDOUT,
                                 "etcd at %s: timed out (the watch was not confirmed within %lld "
                                 "ms)",
                                 c->url, (long long)c->timeout_ms);
                break;
            }
            if (left_us / 1000 + 1 < wait_ms)
                wait_ms = (int)(left_us / 1000 + 1);
        }
        mc = curl_multi_poll(w->multi, NULL, 0, wait_ms, NULL);
        if (mc != CURLM_OK) {
            rc = fdn_err_set(err, FDN_ENETWORK, "etcd watch: %s", curl_multi_strerror(mc));
            break;
        }
    }
    curl_multi_remove_handle(w->multi, h);
out:
    curl_easy_cleanup(h);
    fdn__free(text);
    fdn__free(s.line.p);
    return rc;
}
