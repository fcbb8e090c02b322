/*
 * Private interface of the admin HTTP surface (src/admin/).
 *
 * Three parts:
 *  - pure request parsing (http_parse.c): request target -> decoded path segments and query
 *    pairs, route patterns with {param} segments, query value validation, error -> status;
 *  - the router/server: http.c (request path: libmicrohttpd glue, dispatch, deferred answers),
 *    http_reg.c (route table and other registrations), http_builtin.c (GET /health, /metrics),
 *    http_resp.c (helpers for handlers) and http_life.c (create/bind/start/shutdown), sharing
 *    the server's struct through http_impl.h;
 *  - handler files, one per service (api_*.c), which register their routes with
 *    fdn__admin_route_add() from a public fdn_admin_mount_<service>() function, and their
 *    helpers (event_body.c, event_json.c: the bodies of the event endpoints; event_wait.c:
 *    the waiting queries of GET /v1/events; limiter_req.c).
 */
#ifndef FDN_ADMIN_INT_H
#define FDN_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <fdn/admin.h>
#include <fdn/clock.h>
#include <fdn/error.h>

/* ---- limits of a request target --------------------------------------------------------- */
#define FDN__HTTP_MAX_URI    4096 /**< raw request target bytes */
#define FDN__HTTP_MAX_SEGS   32   /**< path segments */
#define FDN__HTTP_MAX_QUERY  32   /**< query pairs */
#define FDN__HTTP_MAX_PARAMS 8    /**< {param} captures of one route */

/** A decoded key/value pair (query argument or path parameter). */
typedef struct fdn__http_kv {
    const char *key;
    const char *val;
} fdn__http_kv_t;

/**
 * A parsed request target. All strings point into buf (NUL-separated, decoded), so the
 * struct is self-contained and may be copied with memcpy only if pointers are rebased:
 * treat it as immovable.
 */
typedef struct fdn__http_target {
    /* decoded parts: a query key without '=' takes two NULs (key, empty value) for one raw
     * separator, so the worst case is MAX_URI + MAX_QUERY + 1 bytes */
    char buf[FDN__HTTP_MAX_URI + FDN__HTTP_MAX_QUERY + 8];
    const char *segs[FDN__HTTP_MAX_SEGS];
    size_t nsegs;
    fdn__http_kv_t query[FDN__HTTP_MAX_QUERY];
    size_t nquery;
} fdn__http_target_t;

/**
 * Parse a raw request target ("/v1/events?type=a&limit=10"): split the path on '/', percent-
 * decode each segment (a decoded '/' is refused), split the query on '&' and '=',
 * decode '+' and %XX. One trailing '/' is ignored; empty segments ("//" anywhere), "." and "..",
 * bad escapes, decoded NUL or control bytes, and duplicate query keys are rejected.
 * @return 0, FDN_EINVAL (malformed), FDN_ETOO_LARGE (too long / too many parts)
 */
int fdn__http_target_parse(fdn__http_target_t *t, const char *uri, size_t len);

/** Value of query key, or NULL. */
const char *fdn__http_query_get(const fdn__http_target_t *t, const char *key);

/**
 * Check that every query key is one of allowed (NULL-terminated list).
 * @return 0 or FDN_EINVAL; *bad names the first unknown key.
 */
int fdn__http_query_only(const fdn__http_target_t *t, const char *const *allowed, const char **bad);

/**
 * Match a route pattern ("/v1/config/{path}") against the parsed path. Captures of
 * "{name}" segments go to params: val points into t, key points at "name}" inside the
 * pattern (use fdn__http_param to look a capture up). Literal segments compare exactly.
 * @return true on a match
 */
bool fdn__http_route_match(const char *pattern, const fdn__http_target_t *t, fdn__http_kv_t *params,
                           size_t max_params, size_t *nparams);

/**
 * Strict decimal integer in [min, max]: optional '-', digits only, no spaces, no '+'.
 * @return 0 or FDN_EINVAL
 */
int fdn__http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/** Strict unsigned decimal integer in [0, max]. @return 0 or FDN_EINVAL */
int fdn__http_parse_u64(const char *s, uint64_t max, uint64_t *out);

/** "asc" -> 0, "desc" -> 1. @return 0 or FDN_EINVAL */
int fdn__http_parse_order(const char *s, int *desc);

/** A non-empty string of at most max bytes without control bytes. @return 0 or FDN_EINVAL */
int fdn__http_check_string(const char *s, size_t max);

/** HTTP status for an FDN_E* code (0 -> 200). */
unsigned fdn__http_status_for(int code);

/**
 * The error body {"error":{"code","type","category","severity","message"}} for an error.
 * err may carry a message; when err is NULL or its code differs, the default message is used.
 * @return a new reference, or NULL on OOM
 */
json_t *fdn__http_error_json(int code, const fdn_error_t *err);

/** Constant-time equality of two byte strings (time depends only on the lengths). */
bool fdn__http_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

/**
 * Parse "host:port" / "[v6]:port" into host (NUL-terminated) and port.
 * @return 0 or FDN_EINVAL
 */
int fdn__http_parse_listen(const char *s, char *host, size_t hostsz, uint16_t *port);

/* ---- handlers ------------------------------------------------------------------------ */

/** A request as a handler sees it. */
typedef struct fdn__http_req {
    const char *method;
    const fdn__http_target_t *target;
    const fdn__http_kv_t *params;
    size_t nparams;
    const char *body; /**< NUL-terminated copy of the body (may be "") */
    size_t body_len;
} fdn__http_req_t;

/** The dispatcher's record of a request whose handler answers later (http.c). */
typedef struct fdn__http_async fdn__http_async_t;

/** Longest correlation id kept for an exemplar (FDN_TELEMETRY_EXEMPLAR_VALUE_MAX). */
#define FDN__HTTP_CID_MAX 64

/** A handler's answer. */
typedef struct fdn__http_resp {
    unsigned status; /**< 0 = derive from the handler's return code */
    json_t *json;    /**< owned; serialized as the body */
    char *text;      /**< owned (fdn_malloc, or see text_free), used when json is NULL */
    size_t text_len;
    /** releases text instead of fdn_free (a body shared between answers, e.g.
     *  fdn__admin_body_release), or NULL; any thread may call it */
    void (*text_free)(void *text);
    const char *content_type;
    int64_t retry_after_s; /**< >= 0 adds Retry-After */
    char allow[64];        /**< Allow header for 405 */
    fdn_error_t err;       /**< detail when the handler fails */
    bool want_openmetrics; /**< in: the request's Accept names application/openmetrics-text */
    /** in: the request's X-Correlation-Id header when it fits (else ""); a handler may set it
     *  (POST /v1/events: the event's correlation_id). Becomes the exemplar of the request's
     *  fdn_http_request_duration_seconds observation. */
    char correlation_id[FDN__HTTP_CID_MAX + 1];
    fdn__http_async_t *async; /**< in: set by the dispatcher (see fdn__http_defer) */
    /** a deferred answer's body written on the server thread: set by the completer (with
     *  render_arg) instead of the body, run there with the request's result once it is >= 0
     *  (its return replaces it: 0, or a negative code, answered as a handler's error). A body
     *  allocated by the thread that sends and frees it keeps the allocator's per-thread caches
     *  balanced (a body made on the event store's writer and freed on a server thread cost
     *  both threads glibc's slow path on every request); a render may also do the work whose
     *  result it writes (a waiting query's answer on PostgreSQL: admin/event_wait.c). NULL:
     *  none. */
    int (*render)(struct fdn__http_resp *resp);
    uint64_t render_arg[2];
    /** what render_arg holds is freed by this, once: after the render ran, or when it never
     *  will (the request's result is an error, or its connection closed before the answer was
     *  sent). Set with render by the completer; NULL: nothing to free. */
    void (*render_free)(struct fdn__http_resp *resp);
    /** a slot for libmicrohttpd's response to this very answer, owned by the handler's side
     *  (the memo of GET /v1/events answers): on a 200 whose body is a shared text (text_free
     *  set), the server sends the response the slot holds instead of making one (the same
     *  body and headers; it releases resp's text), or keeps there the one it makes. The
     *  slot's owner frees what it holds with fdn__http_kept_free, on the server thread that
     *  filled it. NULL: none. */
    void **keep;
    /** the server closes the connection once this answer is sent (a withdrawn answer: the
     *  server stops) */
    bool close;
} fdn__http_resp_t;

/** Drop a response kept in a fdn__http_resp_t.keep slot (NULL does nothing): requests still
 *  sending it keep it alive until they are done. */
void fdn__http_kept_free(void *kept);

/** Free resp->text the way it was allocated (text_free or fdn_free) and clear it. */
void fdn__http_resp_text_free(fdn__http_resp_t *resp);

/** Keep cid (len bytes) as resp's correlation id unless one is set already or it is too long
 * or empty. */
void fdn__http_set_correlation_id(fdn__http_resp_t *resp, const char *cid, size_t len);

/** A handler: fill resp and return 0, or return a negative code (optionally with resp->err). */
typedef int (*fdn__http_handler_fn)(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user);

/**
 * Returned by a handler that answers later: it called fdn__http_defer, then started work whose
 * completion calls fdn__http_complete(resp, rc) exactly once, from any thread; after starting
 * it the handler touches resp no more. Meanwhile the server thread serves other connections
 * (the request's connection is suspended). A handler that called fdn__http_defer but could not
 * start its work returns its error code instead, and answers at once as usual.
 */
#define FDN__HTTP_PENDING 1

/**
 * Announce that this request will be answered later (before starting the work that completes
 * it). The server then waits for the completion before it stops.
 * @return 0; FDN_EUNAVAILABLE (the server is stopping: answer now); FDN_EINVAL (resp did not
 *         come from the dispatcher)
 */
int fdn__http_defer(fdn__http_resp_t *resp);

/**
 * Complete a request whose handler returned FDN__HTTP_PENDING: resp holds the answer
 * (fdn__http_reply, or resp->err with rc < 0), rc is what the handler would have returned.
 * Any thread, exactly once; resp must not be touched afterwards. Cheap: the answer is sent,
 * counted and reported by a server thread.
 */
void fdn__http_complete(fdn__http_resp_t *resp, int rc);

/**
 * As fdn__http_defer, for a request whose answer the server may withdraw at its shutdown
 * deadline instead of waiting for the completion (a durable event append whose commit waits on
 * a hung PostgreSQL): the request is then answered 503 with FDN_ESHUTDOWN, the message
 * `withdrawn` (a static string: what the client must know, e.g. that the outcome is unknown)
 * and the context outcome=unknown, and its connection is closed. The completion runs as
 * usual, but with *out as its handle: it first calls fdn__http_claim(*out), which gives it resp
 * (then it completes as after fdn__http_defer) or NULL (withdrawn: it touches nothing of the
 * request). Exactly one of the completion and the withdrawal answers the request.
 * @param[out] out the completion's handle (valid until the completion's fdn__http_claim)
 * @return as fdn__http_defer
 */
int fdn__http_defer_withdrawable(fdn__http_resp_t *resp, const char *withdrawn,
                                 fdn__http_async_t **out);

/**
 * The completion's first step for a request deferred with fdn__http_defer_withdrawable: claim
 * its answer. Any thread, exactly once per handle.
 * @return the request's resp, which the caller then fills and completes (fdn__http_complete);
 *         or NULL: the server withdrew the answer (it answered 503 itself); the handle is gone
 *         and nothing of the request may be touched
 */
fdn__http_resp_t *fdn__http_claim(fdn__http_async_t *t);

/** A JSON string of s, which need not be UTF-8 (a name a program gave a service): each byte
 *  that is not part of valid UTF-8 becomes U+FFFD, as in every text answer (fdn__jw_str).
 *  @return a new reference, or NULL (out of memory, or s NULL) */
json_t *fdn__http_json_string(const char *s);

/** Path parameter by name, or NULL. */
const char *fdn__http_param(const fdn__http_req_t *req, const char *name);

/**
 * Parse the body as JSON into *out (new reference).
 * @return 0, FDN_EPARSE (resp->err filled with line/column), FDN_EINVAL (valid JSON with a
 *         number beyond what jansson holds: int64, double), FDN_ENOMEM
 */
int fdn__http_body_json(const fdn__http_req_t *req, fdn__http_resp_t *resp, json_t **out);

/**
 * For an endpoint that takes no body: none, or an empty JSON object `{}`. Anything else is
 * refused before the endpoint acts, not ignored.
 * @return 0, FDN_EPARSE (not JSON: 400), FDN_EINVAL (JSON but not `{}`: 422), FDN_ENOMEM;
 *         resp->err says which
 */
int fdn__http_body_none(const fdn__http_req_t *req, fdn__http_resp_t *resp);

/**
 * For a body a service refused as unparsable (FDN_EPARSE) that it parsed itself: whether the
 * reason is a number beyond what jansson holds (valid JSON: an out-of-range value, 422, as
 * fdn__http_body_json answers). If so resp->err says so and FDN_EINVAL is returned; else
 * `rc` is returned and resp->err is left alone.
 */
int fdn__http_json_overflow(const char *s, size_t n, fdn__http_resp_t *resp, int rc);

/** Set a JSON answer (steals json; NULL json -> FDN_ENOMEM). @return 0 or FDN_ENOMEM */
int fdn__http_reply(fdn__http_resp_t *resp, unsigned status, json_t *json);

/**
 * Register a route. Only before fdn_admin_start().
 * @return 0, FDN_EINVAL (bad pattern / already started), FDN_EEXIST, FDN_ENOMEM
 */
int fdn__admin_route_add(fdn_admin_t *a, const char *method, const char *pattern,
                         fdn__http_handler_fn fn, void *user);
/* As fdn__admin_route_add, for an endpoint that takes query parameters: `params` (a static
 * NULL-terminated list) names them. The dispatcher refuses any other parameter with 422 before
 * the handler runs; a route added without a list takes none. */
int fdn__admin_route_add_q(fdn_admin_t *a, const char *method, const char *pattern,
                           fdn__http_handler_fn fn, void *user, const char *const *params);

/**
 * Run one request through auth, routing and the handler, without a socket (the server and
 * the unit tests both use it). resp must be zeroed by the caller and freed with
 * fdn__http_resp_clear().
 */
void fdn__admin_dispatch(fdn_admin_t *a, const char *method, const char *uri,
                         const char *authorization, const char *body, size_t body_len,
                         fdn__http_resp_t *resp);

/**
 * A health check that may also say "degraded": returns as fdn_admin_health_fn (0 healthy, a
 * negative FDN_E* code unhealthy); healthy, it may set *degraded to a negative FDN_E* code: it
 * works but wants an operator's attention (e.g. the event store's quarantined spool records).
 * GET /health shows it as "name":{"status":"degraded","code":...,"error":...} and does not
 * count it as a failure (the top-level "status" and the HTTP status stay "ok" and 200 when
 * nothing else fails). Only before start; as fdn_admin_add_health otherwise.
 */
typedef int (*fdn__admin_health_deg_fn)(void *user, int *degraded);
int fdn__admin_add_health_deg(fdn_admin_t *a, const char *name, fdn__admin_health_deg_fn fn,
                              void *user);

typedef struct fdn__jw fdn__jw_t; /* http_jw.h */
/**
 * Extra section of GET /health (set by fdn_admin_mount_runtime), in two steps, so that the
 * server can reuse the text it wrote from the same state (http_builtin.c, "reuse"):
 * - `read` copies every value the section is written from into `in` (room for in_size bytes)
 *   and sets *len to the bytes it filled: the same state gives the same bytes (fixed-size
 *   fields, strings zero-padded, no pointers, no padding left unset). The one value that
 *   changes all the time (the runtime's uptime) goes to *live instead. It returns 0 when
 *   healthy or a negative code (also part of the state).
 * - `write` writes members of the body object and of its "services" object as JSON text, each
 *   member followed by ',', from in[0..len) and live alone (and what never changes in user),
 *   with live as the decimal digits starting at body offset *live_at.
 * Only before start.
 */
typedef struct fdn__admin_health_ext {
    size_t in_size;
    int (*read)(void *in, size_t *len, int64_t *live, void *user);
    void (*write)(fdn__jw_t *body, fdn__jw_t *services, const void *in, size_t len, int64_t live,
                  size_t *live_at, void *user);
} fdn__admin_health_ext_t;
int fdn__admin_set_health_ext(fdn_admin_t *a, const fdn__admin_health_ext_t *ext, void *user);

/* What a mount has registered so far, so that a mount that fails part way takes back what it
 * added (routes, health checks, metrics sources, the telemetry and health hooks) and leaves
 * the server as it was: a failed mount can be made again. Only before start. */
typedef struct fdn__admin_mark {
    size_t nroutes, nhealth, nmetrics, nstops;
    bool tm, health_ext;
} fdn__admin_mark_t;
void fdn__admin_mark(const fdn_admin_t *a, fdn__admin_mark_t *m);
/* Undo what was registered since fdn__admin_mark; returns rc (for `return rollback(..)`).
 * Once the server has started (a mount refused, FDN_EINVAL, having added nothing) it writes
 * nothing: the server's threads read the registrations without a lock. */
int fdn__admin_rollback(fdn_admin_t *a, const fdn__admin_mark_t *m, int rc);

/* A mount's own deferred work, e.g. waiting queries: at shutdown, once no new request can be
 * deferred, drain(user) must complete every request it deferred (the server then waits for
 * them); at destroy, release(user) frees it. Either may be NULL. A rollback releases the
 * ones it undoes. Before start. @return 0, FDN_EINVAL, FDN_ENOSPC (4 of them already) */
int fdn__admin_add_stop(fdn_admin_t *a, void (*drain)(void *), void (*release)(void *), void *user);

/* Undo what fdn__admin_set_telemetry registered in the telemetry instance that outlives the
 * server (the collector of fdn_http_waiting_queries): rollback and destroy. */
void fdn__admin_unset_telemetry(fdn_admin_t *a);

/* The user pointer a route was added with (method and pattern as given), or NULL. */
void *fdn__admin_route_user(const fdn_admin_t *a, const char *method, const char *pattern);

/* Waiting queries of GET /v1/events (api_events.c; the tests): how many wait now, and the
 * most that may (FDN__EVWAIT_MAX unless set; before any waits). 0 / no effect without the
 * events mounted. */
size_t fdn__admin_events_waiting(const fdn_admin_t *a);

/* Answers the server withdrew at its shutdown deadline so far (fdn__http_defer_withdrawable;
 * the tests). */
uint64_t fdn__admin_withdrawn(const fdn_admin_t *a);

/* Deferred requests not ended yet (fdn__http_defer; the tests). */
uint64_t fdn__admin_deferred(const fdn_admin_t *a);

/* Withdraw the answer of every request that waits suspended for a completion that may be
 * withdrawn (fdn__http_defer_withdrawable: a durable event append waiting for its commit), and
 * of every such request that parks from now on: each is answered 503 (its outcome unknown) by
 * its server thread and resumed, and its completion, when it comes, finds it withdrawn
 * (http.c, DESIGN "Withdrawn answers"). On the shutdown's thread, at its deadline; the tests.
 * @return the answers to be sent for it: how many this call withdrew, plus the withdrawable
 *         requests of the server's threads not parked yet (a handler still running), each
 *         withdrawn as it parks (or answered by its completion, if that came first); 0: none
 *         (the shutdown then closes every connection at once) */
size_t fdn__admin_withdraw(fdn_admin_t *a);
void fdn__admin_events_wait_max(fdn_admin_t *a, size_t max);
/* The clock of the waiting queries' deadlines (fdn__evwait_set_clock: NULL, CLOCK_MONOTONIC,
 * unless set; before any waits; the tests), and the tick that makes the waiters' thread read
 * a manual one again after an advance (fdn__evwait_tick). No effect without the events
 * mounted. */
void fdn__admin_events_wait_clock(fdn_admin_t *a, fdn_clock_t *clock);
void fdn__admin_events_wait_tick(fdn_admin_t *a);
/* The user of the route GET /v1/events (fdn__admin_route_user), or NULL; once the server has
 * started (its routes final) without the search by name. */
void *fdn__admin_events_api(const fdn_admin_t *a);

/* True when descriptor `other` is open and refers to the same socket (inode) as `mine`:
 * how fdn_admin_start tells whether libmicrohttpd closed the duplicate it was given. */
bool fdn__admin_fd_same_socket(int mine, int other);

/** As fdn_admin_add_metrics, for a writer whose figures telemetry also exports when it is
 * mounted (the runtime's collector): GET /metrics calls it only while the server has no
 * telemetry, so no family is written twice. */
int fdn__admin_add_metrics_fallback(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user);

/** As fdn_admin_add_metrics, for telemetry's Prometheus writer fn of tm
 * (fdn_admin_mount_telemetry): GET /metrics writes tm's exposition into its body directly
 * (fn stays the writer of record, e.g. for a failed mount's rollback). */
int fdn__admin_add_metrics_telemetry(fdn_admin_t *a, fdn_admin_metrics_fn fn, fdn_telemetry_t *tm);

/** Register the status page, GET / (api_status.c; called by fdn_admin_create).
 *  @return as fdn__admin_route_add */
int fdn__admin_mount_status(fdn_admin_t *a);

/** Emit per-request telemetry to tm (set by fdn_admin_mount_telemetry). Only before start.
 *  @return 0, FDN_EINVAL, FDN_EEXIST */
int fdn__admin_set_telemetry(fdn_admin_t *a, fdn_telemetry_t *tm);

/**
 * The admin's growable text buffer (request bodies, the telemetry's Prometheus text, the body
 * of GET /metrics). The admin library is built on libfdn's public API only
 * (docs/architecture.md), so it has this one buffer of its own instead of core's fdn__buf:
 * memory comes from fdn_realloc, the owner frees p with fdn_free. Zero-initialise it; the
 * text stays NUL-terminated after every append.
 */
typedef struct fdn__admin_text {
    char *p;
    size_t len, cap;
} fdn__admin_text_t;

/** Append n bytes (capacity doubles from 8 KiB). @return 0 or FDN_ENOMEM (text unchanged) */
int fdn__admin_text_put(fdn__admin_text_t *t, const char *s, size_t n);

/** Append printf-formatted text, however long. @return 0, FDN_ENOMEM or FDN_EINVAL (an
 *  encoding error); on failure the text is unchanged */
int fdn__admin_text_printf(fdn__admin_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Free what resp owns and zero it. */
void fdn__http_resp_clear(fdn__http_resp_t *resp);

/**
 * Finalize resp for sending: fills an error body when the handler failed.
 * Sets resp->status.
 */
void fdn__http_resp_finish(fdn__http_resp_t *resp, int rc);

#endif /* FDN_ADMIN_INT_H */
