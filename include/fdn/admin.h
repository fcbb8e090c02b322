/**
 * @file admin.h
 * @brief The admin HTTP surface: a small JSON/HTTP server (libmicrohttpd) that exposes a
 *        runtime's services (health, Prometheus metrics, config, events, limiter, breakers,
 *        pools, registry) to operators and sidecar clients.
 *
 * This header is the optional fdn_admin library's (libfdn_admin, pkg-config `fdn-admin`,
 * CMake `find_package(fdn COMPONENTS admin)` + `fdn::fdn_admin`), built on libfdn's public API;
 * libfdn itself does not link libmicrohttpd. Not included by <fdn/fdn.h>.
 *
 * Lifecycle: fdn_admin_create() -> [fdn_admin_bind()] -> mount services and add health checks /
 * metric writers -> fdn_admin_start() -> ... -> fdn_admin_shutdown() -> fdn_admin_destroy().
 * Everything that configures the server (mounts, health checks, metric writers) happens before
 * start; after start the server's tables are immutable and requests run concurrently on a fixed
 * pool of server threads, calling the mounted services' thread-safe public APIs.
 *
 * Errors answer `{"error":{"code":<reference code>,"type":...,"category":...,"severity":...,
 * "message":...,"name":...}}` with a status derived from the FDN_E* code (400 malformed JSON,
 * 401 missing/wrong token, 403 forbidden/security, 404 unknown, 405 wrong method, 409 exists,
 * 413 body too large, 422 invalid value, 429 rate limited + Retry-After, 503 unavailable).
 *
 * Security: the server binds loopback by default. Binding any other address requires a bearer
 * token; then every request must carry `Authorization: Bearer <token>` (compared in constant
 * time; the scheme is case-insensitive and one or more spaces precede the token, RFC 7235
 * `auth-scheme 1*SP token68`, so a token that starts with a space never matches) or gets 401
 * on its headers, before any of its body is read.
 *
 * @since 0.1.0
 */
#ifndef FDN_ADMIN_H
#define FDN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "error.h"
#include "breaker.h"
#include "config.h"
#include "events.h"
#include "limiter.h"
#include "pool.h"
#include "runtime.h"
#include "telemetry.h"

FDN_BEGIN_DECLS

/** An admin HTTP server. */
typedef struct fdn_admin fdn_admin_t;

/**
 * A health check: 0 when healthy, a negative FDN_E* code otherwise.
 * Runs on a server thread, concurrently with other requests.
 */
typedef int (*fdn_admin_health_fn)(void *user);

/**
 * A Prometheus text writer: stores a buffer allocated with fdn_malloc(), fdn_calloc() or
 * fdn_realloc() (freed by the server with fdn_free()) in *out and its length in *len. Returns
 * 0 or a negative code.
 * Runs on a server thread, concurrently with other requests.
 */
typedef int (*fdn_admin_metrics_fn)(char **out, size_t *len, void *user);

/** One finished request, as passed to fdn_admin_opts_t.on_request. Pointers are valid
 * during the call only. */
typedef struct fdn_admin_request_info {
    const char *method;  /**< as received ("GET", ...) */
    const char *target;  /**< request target: path and query string */
    const char *route;   /**< matched route pattern ("/v1/events/{id}"), or NULL */
    unsigned status;     /**< HTTP status sent */
    int64_t duration_ns; /**< from dispatch to the response being ready (monotonic) */
} fdn_admin_request_info_t;

/**
 * Request hook: runs on the server thread that handled the request, after the response was
 * composed, concurrently with other requests; it should return promptly (an access log).
 */
typedef void (*fdn_admin_request_fn)(const fdn_admin_request_info_t *info, void *user);

/** Server options. */
typedef struct fdn_admin_opts {
    uint32_t version;      /**< FDN_ADMIN_OPTS_VERSION */
    const char *listen;    /**< "ADDR:PORT" ("[v6]:PORT"); NULL = "127.0.0.1:9568"; port 0 = any */
    const char *token;     /**< bearer token (copied); NULL = none; required off loopback */
    size_t max_body_bytes; /**< request body cap; larger bodies get 413 (default 1 MiB) */
    unsigned threads;      /**< server threads (default 2) */
    unsigned max_connections;        /**< concurrent connections (suspended ones included: a durable
                                          append or a waiting query); past them a new connection waits
                                          in the listen socket's backlog, unanswered, until one closes;
                                          0 = as many as the process's open-file limit allows
                                          (RLIMIT_NOFILE, less 256 kept for the rest of the process,
                                          at most 65 536; the default) */
    unsigned idle_timeout_s;         /**< idle connection timeout in seconds (default 10); 0 = none:
                                          an idle keep-alive connection stays open, and a later request
                                          on it has no request_timeout_s deadline */
    unsigned max_connections_per_ip; /**< (version >= 2) concurrent connections from one
                                          address; 0 = no such limit (the default: a loopback
                                          sidecar's clients all share 127.0.0.1) */
    fdn_admin_request_fn on_request; /**< (version >= 3) optional, called once per request
                                          the server answers, those it refuses on their headers
                                          or framing too (400, 401, 413); not for the answers
                                          libmicrohttpd gives itself (docs/http-api.md) */
    void *request_user;              /**< (version >= 3) passed to on_request */
    unsigned request_timeout_s;      /**< (version >= 4) time a client has to send a whole request,
                                          headers and body (slowloris, bodies that never end),
                                          from the connection's start, or for a later request on a
                                          keep-alive connection from the end of the previous
                                          response plus idle_timeout_s; a late connection is closed.
                                          0 = the default, 10 s */
    unsigned shutdown_timeout_ms;    /**< (version >= 5) how long fdn_admin_shutdown waits for
                                          requests in flight (a client that does not read its
                                          answer, even with idle_timeout_s 0; a handler or a
                                          deferred answer waiting on the event store's
                                          PostgreSQL); then the server threads' calls on
                                          PostgreSQL are cut (503), durable appends still
                                          waiting for their commit are answered 503 with their
                                          outcome unknown, and every connection is closed,
                                          cutting the answers not yet sent: see
                                          fdn_admin_shutdown. 0 = the default,
                                          FDN_ADMIN_DEFAULT_SHUTDOWN_TIMEOUT_MS */
} fdn_admin_opts_t;

/** Default of fdn_admin_opts_t.shutdown_timeout_ms: 5 s. */
#define FDN_ADMIN_DEFAULT_SHUTDOWN_TIMEOUT_MS 5000

/** Current version of fdn_admin_opts_t, set by the matching _INIT initialiser. */
#define FDN_ADMIN_OPTS_VERSION 5
/** Default listen address of the admin server. */
#define FDN_ADMIN_DEFAULT_LISTEN "127.0.0.1:9568"
/** Initialiser of fdn_admin_opts_t with every default. */
#define FDN_ADMIN_OPTS_INIT                                                                        \
    {                                                                                              \
        FDN_ADMIN_OPTS_VERSION, NULL, NULL, 1u << 20, 2, 0, 10, 0, NULL, NULL, 0, 0                \
    }

/** The connection limit in force (max_connections, or the one derived from the open-file
 * limit when it was 0). @thread_safety any  @since 0.2.0 */
FDN_API unsigned fdn_admin_max_connections(const fdn_admin_t *a);

/**
 * Create a server (not listening yet). Validates the listen address and the token rule.
 * @param[out] out  the server
 * @param[in]  opts options, NULL = defaults
 * @param[out] err  optional detail
 * @return 0, FDN_EINVAL (bad listen address, bad option), FDN_EPERM (non-loopback address
 *         without a token), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_admin_create(fdn_admin_t **out, const fdn_admin_opts_t *opts, fdn_error_t *err);

/**
 * Add a named health check reported by `GET /health` (`{"status":"ok"|"degraded",
 * "services":{name:{"status":...,"code":...}}}`, 200 when all are healthy, 503 otherwise).
 * Every check is called on every `GET /health`, on a server thread, so an answer is never
 * older than its request (the server reuses the text of an earlier answer only when every
 * check's result and the runtime's state are the same, and then writes the same bytes).
 * @return 0, FDN_EINVAL (NULL, started, name not a short identifier), FDN_EEXIST, FDN_ENOBUFS
 *         (32 checks already)
 * @thread_safety init: before fdn_admin_start, serialised by the caller
 * @since 0.1.0
 */
FDN_API int fdn_admin_add_health(fdn_admin_t *a, const char *name, fdn_admin_health_fn fn,
                                 void *user);

/**
 * Add a Prometheus text writer to `GET /metrics` (outputs are concatenated; without telemetry
 * mounted they are followed by the server's own `fdn_http_requests_total{status_class}`).
 * With telemetry mounted and no other writer, a scraper asking for OpenMetrics (`Accept:
 * application/openmetrics-text`) gets fdn_telemetry_write_openmetrics's text.
 * @return 0, FDN_EINVAL (NULL, started), FDN_ENOBUFS (more than 8 writers)
 * @thread_safety init: before fdn_admin_start, serialised by the caller
 * @since 0.1.0
 */
FDN_API int fdn_admin_add_metrics(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user);

/**
 * Bind and listen on the listen address now, without starting the server threads (requests
 * wait in the backlog until fdn_admin_start). Lets a program fail on a busy or forbidden
 * address before it creates anything else (`fdn serve` calls it before creating the
 * runtime). fdn_admin_port() is valid afterwards. Idempotent; optional (fdn_admin_start
 * binds when it was not called). The socket is closed by fdn_admin_destroy.
 * @param a   the server (created, not started)
 * @param err optional detail (names the address and the cause)
 * @return 0, FDN_EBUSY (address in use), FDN_EACCES (permission denied), FDN_EINVAL
 *         (NULL, already started or shut down, address not available), FDN_EIO (other socket
 *         error)
 * @thread_safety serial: before fdn_admin_start, serialised by the caller
 * @since 0.1.0
 */
FDN_API int fdn_admin_bind(fdn_admin_t *a, fdn_error_t *err);

/**
 * Start the server threads on the listen address (bound first if fdn_admin_bind was not
 * called). After a failure the bound socket is kept and start may be retried. A server that
 * was shut down (fdn_admin_shutdown) cannot be started: create another.
 * @return 0, FDN_EBUSY (address in use), FDN_EACCES (permission denied), FDN_EINVAL
 *         (already started, shut down, address not resolvable), FDN_EIO (other socket or server
 *         error)
 * @thread_safety serial: one start per server
 * @since 0.1.0
 */
FDN_API int fdn_admin_start(fdn_admin_t *a, fdn_error_t *err);

/**
 * The bound TCP port (the actual one when the listen port was 0), 0 before bind/start.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint16_t fdn_admin_port(const fdn_admin_t *a);

/**
 * Stop accepting connections, finish in-flight requests and join the server threads.
 * Deferred answers (a durable append, a waiting query) are completed and sent first (waiting
 * queries are answered at once with the empty result). At shutdown_timeout_ms from the call:
 * every call on the event store's PostgreSQL made on a server thread (a GET /v1/events,
 * /v1/events/{id} or correlation lookup that PostgreSQL answers, a waiting query whose events
 * memory evicted) ends at once and its request answers 503 (fdn_events_set_thread_cut_fd:
 * the server's threads name a descriptor written then; a call that begins later ends at once
 * too, until the shutdown returns: with every server thread joined, it resets the descriptor,
 * so no call after the shutdown is cut), and answers still not sent (a client that stops
 * reading) are cut by closing every connection. A durable append (POST /v1/events,
 * /v1/events/batch) still waiting at the deadline for its commit, which the store's writer makes
 * and which is not cut, has its answer withdrawn: the request is answered 503 (code FDN_ESHUTDOWN,
 * an error saying the outcome is unknown, context outcome=unknown, no Retry-After, "Connection:
 * close") and ends, and the writer's later completion finds it withdrawn. The events are not
 * dropped: the store commits them (or spools or fails them, by its own policy) when its writer can
 * (its own stop cuts the writer at its deadline, fdn_events_pg_opts_t.stop_timeout_ms);
 * the client must look them up (e.g. by correlation id) before posting them again. Withdrawn
 * answers are counted in fdn_http_requests_withdrawn_total{method,route,outcome="unknown"} (with
 * telemetry mounted). When answers were withdrawn, connections are closed once those answers are
 * sent, or at most another shutdown_timeout_ms later (a client that does not read them). So with
 * PostgreSQL hung, the call returns about shutdown_timeout_ms after it began, not after
 * storage.warm.postgres.command_timeout_ms (per batch). Nothing is abandoned: the server
 * threads are joined, and a cut call or a withdrawn append's completion touches only the
 * store, which the caller destroys after the server (as fdn serve does). A server-thread call
 * that waits for a free pooled connection of the store (all held by calls of other threads,
 * such as the runtime's, which are not cut) ends at the deadline too, without waiting for them
 * to put one back. Idempotent: a call made while another is stopping the server returns once
 * that one has (so either caller may then destroy the mounted services).
 * @thread_safety any (not from a handler)
 * @since 0.1.0
 */
FDN_API void fdn_admin_shutdown(fdn_admin_t *a);

/**
 * Shut down (if needed) and free the server. Accepts NULL.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_admin_destroy(fdn_admin_t *a);

/* ---- mounting services: each adds the routes of one service, before fdn_admin_start ----
 * The service must outlive the server: shut the server down before destroying it. */

/**
 * `GET /health` also reports the runtime (status, uptime, each supervised service; 503 when
 * it is not healthy) and `GET /v1/registry` lists the runtime's registry.
 * @param[in] a  the server (not started)
 * @param[in] rt the runtime
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (a runtime is already mounted),
 * FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_runtime(fdn_admin_t *a, fdn_runtime_t *rt);

/**
 * `POST /v1/events` (`{"type","data","correlation_id"?,"parent_id"?}` → 201 `{"id"}`),
 * `POST /v1/events/batch`, `GET /v1/events/{id}`,
 * `GET /v1/events?type=&correlation_id=&since=&until=&after_id=&limit=&order=`,
 * `DELETE /v1/events?before=TS` → `{"removed"}`, `GET /v1/events/stats`.
 * @param[in] a  the server (not started)
 * @param[in] es the event store
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_events(fdn_admin_t *a, fdn_events_t *es);

/**
 * `GET /v1/config` (the whole tree), `GET /v1/config/{dotted.path}` → `{"path","value"}`,
 * `PUT /v1/config/{dotted.path}` with a JSON value as the body →
 * `{"path","value","revision"}`, `POST /v1/config/reset[?to=defaults|startup]`.
 * @param[in] a  the server (not started)
 * @param[in] cfg the config service
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_config(fdn_admin_t *a, fdn_config_t *cfg);

/**
 * `GET /v1/breakers`, `GET /v1/breakers/{name}`, `POST /v1/breakers/{name}/reset`.
 * @param[in] a  the server (not started)
 * @param[in] set the breaker set
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_breakers(fdn_admin_t *a, fdn_breakers_t *set);

/**
 * `POST /v1/limiter/check` with `{"key","limit","window_ms","algorithm"?,"cost"?,"burst"?}`
 * → 200 `{"allowed","count","limit","remaining","reset_ms","retry_after_ms"}`, or when
 * denied the same fields plus "error" with 429 and Retry-After. Algorithms: fixed_window
 * (default), token_bucket, gcra, sliding_window.
 * @param[in] a  the server (not started)
 * @param[in] l the rate limiter
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_limiter(fdn_admin_t *a, fdn_limiter_t *l);

/**
 * Telemetry's Prometheus text joins `GET /metrics`; `GET /v1/telemetry` answers the JSON
 * metrics tree.
 * @param[in] a  the server (not started)
 * @param[in] tm the telemetry service
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOBUFS (too many
 * metric writers), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_telemetry(fdn_admin_t *a, fdn_telemetry_t *tm);

/**
 * `GET /v1/pools`: every managed pool with its status.
 * @param[in] a  the server (not started)
 * @param[in] m the pool manager
 * @return 0, FDN_EINVAL (NULL, already started), FDN_EEXIST (mounted twice), FDN_ENOMEM
 * @thread_safety init
 * @since 0.1.0
 */
FDN_API int fdn_admin_mount_pools(fdn_admin_t *a, fdn_pools_t *m);

FDN_END_DECLS

#endif /* FDN_ADMIN_H */
