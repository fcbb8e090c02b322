/* The admin HTTP server's internals, shared by its files (admin layer, private): http.c (the
 * request path: libmicrohttpd glue, dispatch, deferred answers, request telemetry; its DESIGN
 * comment describes the whole server), http_reg.c (routes, health checks, metrics writers and
 * hooks, registered before start), http_builtin.c (GET /health, GET /metrics), http_resp.c (what
 * handlers call: path parameters, the JSON body, answers, the text buffer) and http_life.c
 * (create, bind, start, shutdown, destroy). */
#ifndef FDN_ADMIN_HTTP_IMPL_H
#define FDN_ADMIN_HTTP_IMPL_H

#include "admin/admin_int.h"
#include "admin/http_watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <fdn/telemetry.h>

#define MAX_METRICS 8
#define MAX_HEALTH  32
#define MAX_STOPS   4

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
    fdn__admin_health_deg_fn deg; /* instead of fn: a check that may say "degraded" */
    void *user;
} health_check_t;

/* A server thread's completed deferred requests (http.c, DESIGN "Resumes"): pushed by their
 * completers, taken by that thread. One per libmicrohttpd daemon (the workers of its pool; at
 * most 64 threads, and the daemon itself). */
#define FDN__HTTP_WAKE_SLOTS 65
typedef struct fdn__http_wake {
    _Atomic(const void *) daemon;      /* the daemon (NULL: free slot), set once */
    _Atomic(fdn__http_async_t *) head; /* newest first; linked by wnext */
    /* that thread's suspended requests whose answer the shutdown may withdraw (http.c, DESIGN
     * "Withdrawn answers"): added before the suspension, removed when the request ends */
    pthread_mutex_t mu;
    fdn__http_async_t *parked; /* mu; linked by pprev/pnext */
} fdn__http_wake_t;

/* One remembered GET /health answer (http_builtin.c, "reuse"): the state it was written from
 * (the extension's bytes and code, every check's result) and its text, with where the live
 * value's digits are. A server thread holds a slot while it answers (`busy`, a try-lock); a
 * thread that finds its slot busy answers without one. */
#define FDN__HEALTH_MEMO_SLOTS 4
typedef struct fdn__admin_health_memo {
    atomic_flag busy;
    bool valid;
    uint64_t reg_gen;          /* the registrations it was written with (fdn_admin_t.reg_gen) */
    unsigned char *in, *fresh; /* the state written from; the request's own (ext->in_size) */
    size_t in_len;
    int ext_rc;
    int res[MAX_HEALTH][2]; /* each check's code and degraded code */
    char *body;             /* the text, body_len bytes (body_cap allocated) */
    size_t body_len, body_cap;
    size_t live_at, live_len; /* the live value's digits (live_len 0: none) */
    char pad[64]; /* the next slot's `busy`, written by another thread, on another line */
} fdn__admin_health_memo_t;

struct fdn_admin {
    char host[256];
    uint16_t want_port;
    char *token;
    size_t token_len;
    size_t max_body;
    unsigned threads, max_conns, timeout_s, per_ip, request_timeout_s;
    unsigned shutdown_timeout_ms; /* fdn_admin_shutdown's wait for answers being sent */
    fdn__http_watch_t *watch; /* the request deadline, from start to shutdown */

    route_t *routes;
    size_t nroutes, cap_routes;
    health_check_t health[MAX_HEALTH];
    size_t nhealth;
    struct {
        fdn_admin_metrics_fn fn;
        void *user;
        bool fallback;  /* only without telemetry (fdn__admin_add_metrics_fallback) */
        bool telemetry; /* telemetry's writer: GET /metrics writes it into its body directly */
    } metrics[MAX_METRICS];
    _Atomic size_t metrics_len; /* the last GET /metrics body's length: the next one's capacity */
    size_t nmetrics;
    fdn_telemetry_t *tm;                   /* optional: request telemetry */
    fdn_telemetry_family_t *f_dur, *f_req; /* fdn_http_request_duration_seconds, _requests_total */
    bool req_taken;      /* tm has a family fdn_http_requests_total not the server's (f_req NULL) */
    fdn_gauge_t *g_wait; /* fdn_http_waiting_queries, set by a collector at each scrape */
    _Atomic(void *) ev_api; /* GET /v1/events' user once started (NULL: look it up) */
    fdn_admin_request_fn on_request;       /* optional: request hook (opts version >= 3) */
    void *request_user;
    const fdn__admin_health_ext_t *health_ext;
    void *health_ext_user;
    fdn__admin_health_memo_t hmemo[FDN__HEALTH_MEMO_SLOTS]; /* GET /health's reuse */
    uint64_t reg_gen; /* +1 at each change of the health checks or extension (before start) */
    struct { /* a mounted service's own deferred work (fdn__admin_add_stop) */
        void (*drain)(void *), (*release)(void *);
        void *user;
    } stops[MAX_STOPS];
    size_t nstops;

    bool started;
    int listen_fd; /* bound by fdn_admin_bind, owned here until MHD starts; else -1 */
    _Atomic bool stopped;
    _Atomic bool draining;     /* shutdown started: no new deferred request */
    _Atomic uint64_t deferred; /* deferred requests not completed yet */
    _Atomic bool withdrawing;  /* the shutdown deadline passed: parked appends are withdrawn */
    _Atomic uint64_t withdrawn; /* answers withdrawn (fdn__admin_withdraw) */
    /* withdrawable requests of the server's threads deferred, not listed on a `parked` list
     * and not ended (a handler still running, or one withdrawn as it parked): the withdrawal
     * counts them, as their 503 comes after its walk (http.c, DESIGN "Withdrawn answers") */
    _Atomic uint64_t unlisted;
    fdn_telemetry_family_t *f_wd; /* fdn_http_requests_withdrawn_total (with telemetry) */
    pthread_mutex_t dmu;       /* shutdown waits on dcv for deferred == 0 */
    pthread_cond_t dcv;
    bool shut;  /* dmu: fdn_admin_shutdown has stopped the server (a concurrent call waits on dcv
                 * for it) */
    int cut_fd; /* eventfd, written at the shutdown deadline and read back once the server
                 * threads are joined: their cut descriptor (core/cancel.h), which ends their
                 * event store PostgreSQL calls */
    struct MHD_Daemon *mhd;
    fdn__http_wake_t wakes[FDN__HTTP_WAKE_SLOTS];
    _Atomic uint16_t port;
    _Atomic uint64_t by_class[6]; /* index = status / 100 (1..5), 0 unused */
};

/* A copy of s from fdn_malloc (the admin library uses libfdn's public API only), or NULL. */
static inline char *admin_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fdn_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Free a GET /health slot's buffers (http_builtin.c; fdn_admin_destroy). */
void fdn__admin_health_memo_free(fdn__admin_health_memo_t *m);

/* Register GET /health and GET /metrics (http_builtin.c; called by fdn_admin_create).
 * @return as fdn__admin_route_add */
int fdn__admin_mount_builtin(fdn_admin_t *a);

/* Start libmicrohttpd on listen socket fd (which it then owns; see fdn_admin_start) with the
 * server's options and the request path's callbacks (http.c). @return the daemon, or NULL */
struct MHD_Daemon *fdn__admin_mhd_start(fdn_admin_t *a, int fd);

#endif /* FDN_ADMIN_HTTP_IMPL_H */
