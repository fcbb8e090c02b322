/*
 * DESIGN: the admin HTTP server (router + libmicrohttpd glue).
 *
 * Files: this one holds the request path (libmicrohttpd's callbacks, routing and dispatch,
 * deferred answers, request telemetry, finishing and sending an answer), all in one translation
 * unit so that the compiler sees it whole; http_impl.h the server's struct, shared by the others:
 * http_reg.c (the route table and what else is registered before start), http_builtin.c
 * (GET /health, GET /metrics), http_resp.c (the helpers handlers call) and http_life.c (create,
 * bind, start, shutdown, destroy). This comment describes the whole server.
 *
 * Threads: libmicrohttpd runs `threads` internal polling threads (MHD_OPTION_THREAD_POOL_SIZE,
 * epoll/poll chosen by MHD_USE_AUTO), each serving many connections; total connections are
 * capped (MHD_OPTION_CONNECTION_LIMIT: by default from the open-file limit, so thousands of
 * idle keep-alive clients do not shut new ones out), optionally per client address, and idle
 * ones time out; a request must arrive whole (headers and body) within request_timeout_s, which
 * http_watch.c enforces from a thread of its own (libmicrohttpd 0.9.75 has no such deadline:
 * a client sending a byte a second was never cut), so the server's resources are bounded
 * whatever clients do. Handlers run on those threads and only call the mounted services'
 * thread-safe public APIs. Locks: `dmu` (a leaf, never held while calling out), on which
 * fdn_admin_shutdown waits for deferred requests, and each server thread's `parked` list mutex
 * (fdn__http_wake_t.mu: held only to list, unlist and walk; telemetry's counter lookup is the
 * one call made under it). The route
 * table, health checks and metric writers are filled before start (thread_safety init) and
 * read-only afterwards; `started` is written before MHD's threads exist and the thread creation
 * orders it. The request counters are relaxed atomics. Per request: the raw target is captured by
 * the URI log callback (before MHD unescapes it) into a heap context that the completion callback
 * frees (a server thread reuses freed contexts; a short target and a short body of known length are
 * kept in the context itself); the headers it reads (Content-Length, Host, Authorization, Accept,
 * X-Correlation-Id, whether Transfer-Encoding came: with a Content-Length, or two that differ,
 * or with another coding than "chunked" once, the request is refused 400 and the connection
 * closed, RFC 9112 6.1) are found in one pass
 * when they are complete and kept in the context; the
 * body is accumulated up to max_body_bytes, in a buffer grown as its bytes arrive (at most
 * 16 KiB reserved from a Content-Length before then, so headers-only clients cannot make the
 * server reserve max_body each); a larger Content-Length is refused with 413 at once,
 * a larger streamed body is drained and refused with 413 at its end. With a token, a request
 * without it is refused (401) on its headers, before any body is read. Such refusals are
 * counted, observed and reported to the request hook as every answer is (send_error_as). Answers go
 * to MHD without a copy: a handler's text is MHD's with the response (freed by its free callback),
 * and GET /metrics hands on telemetry's own immutable text (fdn_telemetry_text_acquire, released by
 * that callback; resp.text_free) when it is the whole body. A handler whose body is shared between
 * answers may also keep libmicrohttpd's response to it (resp.keep: the memo of GET /v1/events
 * answers), which is then queued again as it is. The listen socket is opened by fdn_admin_bind
 * (http_life.c: clear EADDRINUSE/EACCES errors, port 0 support, loopback check), which `fdn serve`
 * calls before creating the runtime so that a busy port fails before anything is written;
 * fdn_admin_start binds if that was not done and hands MHD a duplicate of it (see there for why),
 * which MHD closes on stop.
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
 * writer commits or fails every waiting append, also when the store stops; at the deadline the
 * appends still waiting are answered 503 instead: "Withdrawn answers" below; an answer is written
 * unless its client stops reading: past shutdown_timeout_ms every connection is closed, which
 * ends those). fdn__admin_dispatch (no socket) waits for a deferred answer on a
 * condition variable instead of suspending.
 * Cut calls: a handler or render blocked in a call on the event store's PostgreSQL holds its
 * server thread (and so MHD_stop_daemon, which joins it, or the wait for `deferred`) for up to
 * the store's command_timeout_ms. Every server thread names the server's eventfd `cut_fd` as
 * its cut descriptor (fdn_events_set_thread_cut_fd, before on_request runs a handler or a
 * render: the threads are MHD's, created for this server only, so it is never restored;
 * fdn__admin_dispatch sets and restores it), which
 * fdn_admin_shutdown writes at its deadline (http_life.c): those calls then end at once and
 * their requests answer 503. Nothing is left running: the threads still end before
 * MHD_stop_daemon returns, and a cut call touches only the store, which outlives the server.
 * Once they are joined the shutdown reads the eventfd back: a call that begins after the
 * shutdown returned, e.g. in a fdn__admin_dispatch (same descriptor), is not cut.
 * Resumes: each MHD_resume_connection writes the daemon's eventfd, and one from another thread
 * wakes the server thread; the event store's writer completes a whole commit of requests at
 * once, so it resumed each (a write and often a wake-up per request). Now a completer pushes
 * its PARKED request on the list of the server thread that suspended it (fdn__http_wake_t, one
 * per daemon of MHD's pool, found by MHD_CONNECTION_INFO_DAEMON; a lock-free stack); only a
 * push on an empty list resumes its own connection. That thread, running each resumed request
 * (send_deferred) and ending it (on_done, which runs also when the answer is never sent), takes
 * the whole list and resumes every entry but the bottom one: the bottom entry is the one
 * pushed on an empty list, resumed by its completer. So every entry is resumed exactly once
 * (twice would break MHD: a resume of a connection no longer suspended makes its next suspend
 * a no-op), and none is left: a list that is not empty holds a resumed bottom entry, whose
 * thread takes the list before or when that request ends. A completer touches the request no
 * more once it is pushed (another thread may resume and free it), except the bottom one's,
 * whose connection stays suspended until its completer resumes it. Bodies written by a
 * completer are written by the server thread instead (resp->render), after the completion.
 * Withdrawn answers: a durable append waits for the event store's writer, which is not cut (a
 * commit on a hung PostgreSQL waits up to the store's command timeout per batch), and MHD cannot
 * stop while its request is suspended. So such a request is deferred withdrawable
 * (fdn__http_defer_withdrawable) and the shutdown withdraws its answer at its deadline
 * (fdn__admin_withdraw): the request is answered 503 (FDN_ESHUTDOWN, outcome unknown,
 * "Connection: close") and ends, while the store keeps the events and commits them later.
 * Exactly one of the completion and the withdrawal answers: whichever moves the request's
 * `claim` out of CLAIM_OPEN by compare-and-swap (the completion in fdn__http_claim, before it
 * writes anything into resp; the withdrawal in withdraw_one). The winner then completes as a
 * completer does (sets rc, exchanges `state` to DONE, wakes a PARKED request); the loser
 * touches nothing of the request. The withdrawal finds the requests on its server thread's
 * `parked` list (fdn__http_wake_t, under its mutex, a leaf): a request is listed by its server
 * thread before it is suspended, and unlisted when it ends (on_done, before its context is
 * freed), so the walk under the mutex sees only live requests; a suspended (PARKED) winner is
 * woken after the mutex is released (MHD takes its own locks), still valid since only that wake
 * resumes it. `withdrawing` is set before the walk and read under the mutex when a request is
 * listed: a request that parks after the walk is withdrawn as it parks (its thread sends the 503
 * at once). Such a request is counted from before its deferral until it is listed or ends
 * (`unlisted`, read by the walk after every list), so the walk reports it among the answers to
 * be sent even when it withdrew none itself: the shutdown then waits for those answers before
 * it closes every connection, which otherwise would cut that 503. The context of a withdrawn
 * request is wanted by two parties that do not otherwise meet: the request's end (on_done) and the
 * completion, which comes later (or earlier) from the writer and must still read `claim`; each adds
 * 1 to `left`, and the second frees the context (on_done into its thread's cache, the completion
 * with fdn_free after on_done freed the rest). Its completion must come (the store runs every
 * callback once, also when it stops); a completion that won the claim is the old path, with no cost
 * but that compare-and-swap and, for a request that waits, a lock and unlock of its thread's list
 * mutex at park and at end. fdn__admin_dispatch (no socket, the tests) lists nothing: its
 * completion always wins.
 */
#include "admin/http_impl.h"

#include <fdn/clock.h>
#include <fdn/events.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

/* per-connection memory of libmicrohttpd (request line + headers + its buffers). Requests
 * whose line or headers do not fit are answered by libmicrohttpd itself (414/431, HTML):
 * 16 KiB makes every target up to ~14 KiB reach the router, which answers its own 414 (JSON)
 * beyond FDN__HTTP_MAX_URI (4096), and takes headers of ~14 KiB (nginx's default is 8 KiB).
 * libmicrohttpd zeroes the pool between the requests of a connection: 64 KiB cost 2.5-3.5 us
 * of a durable POST's CPU (~98 k instructions a request, every endpoint), and a keep-alive
 * connection that served one request kept 64 KiB resident. Worst case max_connections *
 * 16 KiB. */
#define CONN_MEMORY (16u * 1024u)

/* ---- finishing an answer -------------------------------------------------------------------- */

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

/* Free what a deferred answer's render holds (resp->render_free), once. */
static void render_release(fdn__http_resp_t *resp)
{
    void (*f)(fdn__http_resp_t *) = resp->render_free;
    resp->render_free = NULL;
    if (f != NULL)
        f(resp);
}

void fdn__http_resp_clear(fdn__http_resp_t *resp)
{
    if (resp == NULL)
        return;
    render_release(resp);
    json_decref(resp->json);
    fdn__http_resp_text_free(resp);
    memset(resp, 0, sizeof *resp);
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

static bool auth_ok(const fdn_admin_t *a, const char *authorization)
{
    if (a->token == NULL)
        return true;
    /* credentials = auth-scheme 1*SP token68 (RFC 7235 2.1): the scheme name is
     * case-insensitive, the token is not; a token68 holds no space, so every space before
     * it is the separator */
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    /* nor does it end in spaces or tabs: trailing OWS around a field value is not part of it
     * (RFC 9110 5.5), whether or not the server in front stripped it */
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    return fdn__http_ct_equal(t, n, a->token, a->token_len);
}

static void count_status(fdn_admin_t *a, unsigned status)
{
    unsigned c = status / 100;
    if (c >= 1 && c <= 5)
        atomic_fetch_add_explicit(&a->by_class[c], 1, memory_order_relaxed);
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

static void request_telemetry(fdn_admin_t *a, int64_t t0, int64_t now, route_t *r,
                              const char *method, unsigned status, const char *cid)
{
    if (a->tm == NULL || a->f_dur == NULL)
        return;
    double secs = (double)(now - t0) / 1e9;
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
/* who answers a request deferred with fdn__http_defer_withdrawable (DESIGN "Withdrawn answers") */
enum { CLAIM_OPEN, CLAIM_TAKEN, CLAIM_WITHDRAWN };

struct fdn__http_async {
    _Atomic int state; /* AS_*: RUNNING -> PARKED (server thread) -> DONE (completer) */
    int rc;            /* the handler's result, written by the completer before DONE */
    bool deferred;     /* the handler called fdn__http_defer (server thread only) */
    /* withdrawable (fdn__http_defer_withdrawable): the completion or the withdrawal answers,
     * whichever moves `claim` out of CLAIM_OPEN; a withdrawn request's context is freed by
     * the second of its end (on_done) and its completion's claim to add 1 to `left` */
    bool withdrawable;     /* server thread, before the completion can run */
    bool listed;           /* on wl->parked (server thread) */
    bool unlisted;         /* counted in a->unlisted (server thread) */
    _Atomic int claim;     /* CLAIM_* */
    _Atomic int left;      /* withdrawn: 0, 1, 2 (see above) */
    const char *withdrawn; /* the message of a withdrawn answer (static) */
    fdn__http_resp_t *resp;
    void (*release)(fdn__http_async_t *as); /* frees a withdrawn request's context, or NULL */
    fdn__http_async_t *pprev, *pnext;       /* wl->parked, under wl->mu */
    fdn__http_async_t *xnext;               /* fdn__admin_withdraw's own list */
    fdn_admin_t *a;
    void (*wake)(fdn__http_async_t *as); /* resumes a PARKED request */
    struct MHD_Connection *con;          /* the server's request */
    fdn__http_wake_t *wl;                /* its server thread's list of completed requests */
    fdn__http_async_t *wnext;            /* next in that list (older), written before the push */
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
    as->withdrawable = false;
    as->listed = false;
    as->unlisted = false;
    atomic_init(&as->claim, CLAIM_OPEN);
    atomic_init(&as->left, 0);
    as->withdrawn = NULL;
    as->resp = NULL;
    as->release = NULL;
    as->pprev = as->pnext = as->xnext = NULL;
    as->a = a;
    as->wake = NULL;
    as->con = NULL;
    as->wl = NULL;
    as->wnext = NULL;
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

int fdn__http_defer_withdrawable(fdn__http_resp_t *resp, const char *withdrawn,
                                 fdn__http_async_t **out)
{
    if (out == NULL || withdrawn == NULL)
        return FDN_EINVAL;
    *out = NULL;
    fdn__http_async_t *as = resp != NULL ? resp->async : NULL;
    if (as == NULL || as->deferred)
        return fdn__http_defer(resp); /* FDN_EINVAL */
    /* a server thread's request (fdn__admin_dispatch's is never listed) is counted in
     * `unlisted` before its deferral, so that a withdrawal that begins after this deferral
     * passed the shutdown's `draining` counts it (sequentially consistent, as in
     * fdn__http_defer) */
    bool server = as->con != NULL;
    if (server)
        atomic_fetch_add(&as->a->unlisted, 1);
    int rc = fdn__http_defer(resp);
    if (rc < 0) {
        if (server)
            atomic_fetch_sub(&as->a->unlisted, 1);
        return rc;
    }
    as->withdrawable = true;
    as->withdrawn = withdrawn;
    as->resp = resp;
    as->unlisted = server;
    *out = as;
    return 0;
}

/* A request counted in a->unlisted is listed now, or ended (server thread). */
static void unlisted_end(fdn__http_async_t *as)
{
    if (as->unlisted) {
        as->unlisted = false;
        atomic_fetch_sub(&as->a->unlisted, 1);
    }
}

fdn__http_resp_t *fdn__http_claim(fdn__http_async_t *t)
{
    int open = CLAIM_OPEN;
    if (atomic_compare_exchange_strong_explicit(&t->claim, &open, CLAIM_TAKEN, memory_order_acq_rel,
                                                memory_order_acquire))
        return t->resp; /* written by the handler before its work started the completion */
    /* withdrawn: the request was answered 503; the second of this and its end frees it */
    void (*release)(fdn__http_async_t *) = t->release;
    if (atomic_fetch_add_explicit(&t->left, 1, memory_order_acq_rel) == 1 && release != NULL)
        release(t);
    return NULL;
}

void fdn__http_complete(fdn__http_resp_t *resp, int rc)
{
    fdn__http_async_t *as = resp->async;
    as->rc = rc;
    if (atomic_exchange_explicit(&as->state, AS_DONE, memory_order_acq_rel) == AS_PARKED)
        as->wake(as); /* the request waits for this: as stays valid until it is woken */
}

/* The result of a completed deferred request, its body written here (resp->render) when it
 * succeeded: on the server thread that sends and frees it. */
static int deferred_result(fdn__http_async_t *as, fdn__http_resp_t *resp)
{
    int rc = as->rc;
    if (rc >= 0 && resp->render != NULL)
        rc = resp->render(resp);
    resp->render = NULL;
    render_release(resp);
    return rc;
}

static void sync_wake(fdn__http_async_t *as)
{
    pthread_mutex_lock(&as->mu);
    as->woken = true;
    pthread_cond_signal(&as->cv);
    pthread_mutex_unlock(&as->mu);
}

/* The list of completed requests of the server thread that runs daemon d (a worker of MHD's
 * pool, or the daemon itself with one thread): found by address, a free slot claimed for a
 * daemon seen first (there are at most threads + 1 daemons and FDN__HTTP_WAKE_SLOTS slots). */
static fdn__http_wake_t *wake_list(fdn_admin_t *a, const void *d)
{
    for (size_t i = 0; i < FDN__HTTP_WAKE_SLOTS; i++) {
        fdn__http_wake_t *w = &a->wakes[i];
        const void *cur = atomic_load_explicit(&w->daemon, memory_order_acquire);
        if (cur == NULL && atomic_compare_exchange_strong_explicit(
                               &w->daemon, &cur, d, memory_order_acq_rel, memory_order_acquire))
            return w;
        if (cur == d)
            return w;
    }
    return NULL; /* unreachable: more daemons than slots */
}

/* Resume a PARKED request (the completer, any thread; see DESIGN, "Resumes"): push it on its
 * server thread's list; the first one pushed on an empty list resumes its own connection,
 * which wakes that thread, and the thread resumes the others when it drains the list. */
static void mhd_wake(fdn__http_async_t *as)
{
    struct MHD_Connection *con = as->con;
    fdn__http_wake_t *w = as->wl;
    if (w == NULL) {
        MHD_resume_connection(con);
        return;
    }
    fdn__http_async_t *old = atomic_load_explicit(&w->head, memory_order_relaxed);
    do
        as->wnext = old;
    while (!atomic_compare_exchange_weak_explicit(&w->head, &old, as, memory_order_release,
                                                  memory_order_relaxed));
    /* pushed on a non-empty list: the drain that takes it resumes it, and as may be gone */
    if (old == NULL)
        MHD_resume_connection(con); /* no drain resumes the bottom entry: still suspended */
}

/* Take the list of completed requests and resume all but its bottom entry (the first pushed,
 * resumed by its completer). On the server thread of the list, by every resumed request:
 * when its deferred answer is sent and when it ends (its answer may never be sent: the
 * client went away). */
static void wake_drain(fdn__http_wake_t *w)
{
    fdn__http_async_t *l = atomic_exchange_explicit(&w->head, NULL, memory_order_acquire);
    while (l != NULL) {
        fdn__http_async_t *next = l->wnext;
        if (next != NULL)
            MHD_resume_connection(l->con);
        l = next;
    }
}

/* ---- withdrawn answers (see DESIGN) -------------------------------------------------------- */

static void count_withdrawn(fdn_admin_t *a, const route_t *r)
{
    atomic_fetch_add_explicit(&a->withdrawn, 1, memory_order_relaxed);
    if (a->f_wd == NULL || r == NULL)
        return;
    const char *v[] = {r->method, r->pattern, "unknown"};
    fdn_counter_t *k = NULL;
    if (fdn_telemetry_family_counter(a->f_wd, &k, v, 3) == 0)
        fdn_counter_inc(k);
}

/* Take the answer of a withdrawable request from its completion, if the completion has not
 * claimed it: true when this did. The request is then DONE with FDN_ESHUTDOWN (its server
 * thread writes the answer: withdrawn_answer); *parked: it was suspended, and the caller must
 * wake it (as a completer would: as stays valid until then). */
static bool withdraw_one(fdn__http_async_t *as, bool *parked)
{
    int open = CLAIM_OPEN;
    *parked = false;
    if (!atomic_compare_exchange_strong_explicit(&as->claim, &open, CLAIM_WITHDRAWN,
                                                 memory_order_acq_rel, memory_order_acquire))
        return false; /* claimed: its completion answers */
    count_withdrawn(as->a, as->route);
    as->rc = FDN_ESHUTDOWN;
    *parked = atomic_exchange_explicit(&as->state, AS_DONE, memory_order_acq_rel) == AS_PARKED;
    return true;
}

/* List a withdrawable request on its server thread's parked list before it is suspended, unless
 * the withdrawal has begun: then withdraw it now (it is RUNNING: its thread sees DONE). */
static void park_list(fdn_admin_t *a, fdn__http_async_t *as)
{
    fdn__http_wake_t *w = as->wl;
    pthread_mutex_lock(&w->mu);
    /* under w->mu: fdn__admin_withdraw sets `withdrawing` before it walks this list */
    bool late = atomic_load(&a->withdrawing);
    if (!late) {
        as->pprev = NULL;
        as->pnext = w->parked;
        if (w->parked != NULL)
            w->parked->pprev = as;
        w->parked = as;
        as->listed = true;
        unlisted_end(as); /* a walk finds it on the list now (fdn__admin_withdraw) */
    }
    pthread_mutex_unlock(&w->mu);
    bool parked;
    if (late)
        (void)withdraw_one(as, &parked); /* never parked: its thread goes on to send */
}

/* Take a listed request off its parked list (its server thread, when the request ends). */
static void park_unlist(fdn__http_async_t *as)
{
    fdn__http_wake_t *w = as->wl;
    pthread_mutex_lock(&w->mu);
    if (as->pprev != NULL)
        as->pprev->pnext = as->pnext;
    else
        w->parked = as->pnext;
    if (as->pnext != NULL)
        as->pnext->pprev = as->pprev;
    pthread_mutex_unlock(&w->mu);
    as->listed = false;
}

size_t fdn__admin_withdraw(fdn_admin_t *a)
{
    if (a == NULL)
        return 0;
    atomic_store(&a->withdrawing, true);
    size_t n = 0;
    for (size_t i = 0; i < FDN__HTTP_WAKE_SLOTS; i++) {
        fdn__http_wake_t *w = &a->wakes[i];
        fdn__http_async_t *wake = NULL;
        pthread_mutex_lock(&w->mu);
        for (fdn__http_async_t *as = w->parked; as != NULL; as = as->pnext) {
            bool parked;
            if (!withdraw_one(as, &parked))
                continue;
            n++;
            if (parked) { /* suspended until woken below: it stays listed and valid */
                as->xnext = wake;
                wake = as;
            }
            /* else RUNNING: its thread resumes itself and may end it once w->mu is free */
        }
        pthread_mutex_unlock(&w->mu);
        while (wake != NULL) { /* not under w->mu: MHD takes its own locks */
            fdn__http_async_t *next = wake->xnext;
            wake->wake(wake); /* as a completer: wake may be gone after this */
            wake = next;
        }
    }
    /* and the requests that were not listed (a handler still running): each is withdrawn as
     * it parks, its 503 sent after this returns; read after every list was walked, so a
     * request is counted here or was found listed above */
    return n + (size_t)atomic_load(&a->unlisted);
}

uint64_t fdn__admin_withdrawn(const fdn_admin_t *a)
{
    return a == NULL ? 0
                     : atomic_load_explicit(&((fdn_admin_t *)(uintptr_t)a)->withdrawn,
                                            memory_order_relaxed);
}

uint64_t fdn__admin_deferred(const fdn_admin_t *a)
{
    return a == NULL ? 0 : atomic_load(&((fdn_admin_t *)(uintptr_t)a)->deferred);
}

/* The answer of a withdrawn request, on the server thread that sends it: 503, FDN_ESHUTDOWN
 * with the handler's message and outcome=unknown, no Retry-After (the client must first look
 * whether the work was done), and the connection closed after it (the server stops). */
static int withdrawn_answer(fdn__http_async_t *as, fdn__http_resp_t *resp)
{
    resp->render = NULL;
    render_release(resp);
    resp->status = 0;
    resp->retry_after_s = 0;
    resp->close = true;
    int rc = fdn_err_set(&resp->err, FDN_ESHUTDOWN, "%s", as->withdrawn);
    fdn_err_add_context(&resp->err, "outcome", "unknown");
    return rc;
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
        route_t *r = &a->routes[k < a->nroutes ? k : k - a->nroutes]; /* no division */
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
                unlisted_end(resp->async);
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
            /* a GET route serves HEAD too (m above): say so */
            if (strcmp(r->method, "GET") == 0 && allow_len + 6 < sizeof resp->allow) {
                memcpy(resp->allow + allow_len, ", HEAD", 7);
                allow_len += 6;
            }
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
    /* one clock read for the duration both of them take */
    int64_t now =
        (a->tm != NULL && a->f_dur != NULL) || a->on_request != NULL ? fdn_clock_mono_ns(NULL) : 0;
    request_telemetry(a, t0, now, route, method, resp->status, resp->correlation_id);
    if (a->on_request != NULL) {
        fdn_admin_request_info_t info = {method, uri, route != NULL ? route->pattern : NULL,
                                         resp->status, now - t0};
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
    int cut = fdn_events_set_thread_cut_fd(a->cut_fd); /* as on a server thread */
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
        rc = deferred_result(&as, resp);
    }
    (void)fdn_events_set_thread_cut_fd(cut);
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

/* ---- libmicrohttpd glue ------------------------------------------------------------------ */

/* A request's target and body are kept in its context when they fit (CTX_URI, CTX_BODY: an
 * event append's are well within), else on the heap: two blocks fewer per request, each of
 * which lived until the request ended, so the 16 requests a server thread answers at once
 * after a group commit outran glibc's per-thread cache (7 blocks a size) and took its slow
 * path. */
#define CTX_URI  256
#define CTX_BODY 512
/* A body's heap buffer: at most BODY_PREALLOC is reserved from its Content-Length before its
 * bytes arrive; one without a Content-Length starts at BODY_FIRST; both grow by doubling. */
#define BODY_PREALLOC (16 * 1024)
#define BODY_FIRST    8192

typedef struct conn_ctx {
    char *uri;              /* uri_buf, or the heap's */
    fdn__admin_text_t body; /* the request body so far (body_buf, or the heap's, or NULL) */
    size_t cl_hint;         /* its Content-Length + 1, or 0 */
    bool seen;
    bool too_large;
    bool parked;  /* a deferred answer: the connection was suspended for it */
    bool counted; /* a deferred answer, counted in `deferred` until the request ends */
    /* headers, read in one pass over them when the headers are complete (MHD keeps their
     * text until the request ends): the first of each name, as MHD_lookup_connection_value */
    const char *h_auth, *h_accept, *h_cid;
    fdn__http_resp_t resp; /* the answer being prepared (heap: a deferred one outlives the call) */
    fdn__http_async_t as;
    char uri_buf[CTX_URI];
    char body_buf[CTX_BODY];
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

/* A request's context is ~2.6 KB (mostly the answer's error detail and the inline target and
 * body): above glibc's thread cache (1 KB), so each request's malloc took the arena's slow path
 * (and consolidated its fast bins). A server thread keeps up to CTX_CACHE freed contexts for
 * its next requests (on_uri and on_done of a request run on the thread of its connection);
 * they are freed when the thread exits. CTX_CACHE covers the requests a thread has in flight:
 * with 8, the 16 durable appends a thread of `fdn serve` holds under 32 clients (each waits for
 * a group commit) freed 8 contexts per commit and allocated them again, each time through
 * malloc_consolidate (perf: _int_malloc + malloc_consolidate 1.6 -> 0.7 us per request). Not
 * under AddressSanitizer, which then still sees a context used after its request ended. */
#if defined(__SANITIZE_ADDRESS__)
#define CTX_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTX_CACHE 0
#endif
#endif
#ifndef CTX_CACHE
#define CTX_CACHE 64
#endif

#if CTX_CACHE > 0
typedef struct ctx_cache {
    size_t n;
    conn_ctx_t *c[CTX_CACHE];
} ctx_cache_t;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static bool ctx_key_ok;

static void ctx_cache_free(void *p)
{
    ctx_cache_t *k = p;
    for (size_t i = 0; i < k->n; i++)
        fdn_free(k->c[i]);
    fdn_free(k);
}

static void ctx_key_init(void)
{
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_cache_free) == 0;
}

static conn_ctx_t *ctx_alloc(void)
{
    (void)pthread_once(&ctx_once, ctx_key_init);
    ctx_cache_t *k = ctx_key_ok ? pthread_getspecific(ctx_key) : NULL;
    if (k != NULL && k->n > 0)
        return k->c[--k->n];
    return fdn_malloc(sizeof(conn_ctx_t));
}

static void ctx_release(conn_ctx_t *c)
{
    if (ctx_key_ok) { /* ctx_alloc ran pthread_once on this path */
        ctx_cache_t *k = pthread_getspecific(ctx_key);
        if (k == NULL) {
            k = fdn_calloc(1, sizeof *k);
            if (k != NULL && pthread_setspecific(ctx_key, k) != 0) {
                fdn_free(k);
                k = NULL;
            }
        }
        if (k != NULL && k->n < CTX_CACHE) {
            k->c[k->n++] = c;
            return;
        }
    }
    fdn_free(c);
}
#else
static conn_ctx_t *ctx_alloc(void)
{
    return fdn_malloc(sizeof(conn_ctx_t));
}

static void ctx_release(conn_ctx_t *c)
{
    fdn_free(c);
}
#endif

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    /* not zeroed whole: resp (kilobytes, mostly its error text) is zeroed when the request is
     * dispatched; until then only what on_done frees must be NULL */
    conn_ctx_t *c = ctx_alloc();
    if (c != NULL) {
        c->body = (fdn__admin_text_t){NULL, 0, 0};
        c->cl_hint = 0;
        c->seen = c->too_large = c->parked = c->counted = false;
        c->h_auth = c->h_accept = c->h_cid = NULL;
        c->as.wl = NULL;
        c->as.withdrawable = c->as.listed = c->as.unlisted = false; /* until dispatched */
        c->resp.json = NULL;
        c->resp.text = NULL;
        c->resp.text_free = NULL;
        c->resp.render_free = NULL;
        const char *u = uri ? origin_form(uri) : "";
        size_t n = strlen(u);
        c->uri = n < sizeof c->uri_buf ? memcpy(c->uri_buf, u, n + 1) : admin_strdup(u);
        if (c->uri == NULL) {
            ctx_release(c);
            c = NULL;
        }
    }
    return c;
}

static void ctx_body_free(conn_ctx_t *c)
{
    if (c->body.p != c->body_buf)
        fdn_free(c->body.p);
    c->body = (fdn__admin_text_t){NULL, 0, 0};
}

/* Append n bytes to the request body (the caller has checked they keep it within max_body):
 * in body_buf while they fit, else on the heap, grown as bytes arrive: doubling from
 * BODY_FIRST, never past the Content-Length (+1, the NUL) while the body keeps to it, nor past
 * max_body + 1. So a client that announces a large body and sends none holds no more than
 * BODY_PREALLOC, and a body of known length ends in a block of its size. */
static int ctx_body_put(conn_ctx_t *c, size_t max_body, const char *s, size_t n)
{
    size_t need = c->body.len + n + 1;
    if (need > c->body.cap) {
        size_t cap = c->body.cap < BODY_FIRST ? BODY_FIRST : c->body.cap * 2;
        size_t limit = c->cl_hint >= need ? c->cl_hint : max_body + 1;
        if (cap > limit)
            cap = limit;
        if (cap < need)
            cap = need;
        bool inside = c->body.p == c->body_buf;
        char *p = fdn_realloc(inside ? NULL : c->body.p, cap);
        if (p == NULL)
            return FDN_ENOMEM;
        if (inside)
            memcpy(p, c->body_buf, c->body.len);
        c->body.p = p;
        c->body.cap = cap;
    }
    memcpy(c->body.p + c->body.len, s, n);
    c->body.len += n;
    c->body.p[c->body.len] = '\0';
    return 0;
}

static void on_done(void *cls, struct MHD_Connection *con, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    fdn__http_watch_done(((fdn_admin_t *)cls)->watch, con);
    conn_ctx_t *c = *req_cls;
    if (c != NULL && c->as.listed) /* withdrawable: off the list before it is freed */
        park_unlist(&c->as);
    if (c != NULL && c->counted) /* withdrawable and never listed: its answer is sent */
        unlisted_end(&c->as);
    if (c != NULL && c->as.wl != NULL) /* resumed (see send_deferred) */
        wake_drain(c->as.wl);
    if (c != NULL && c->counted) /* its answer is sent (or the connection is gone) */
        deferred_done(cls);
    if (c != NULL) {
        render_release(&c->resp);  /* a render that never ran (the connection closed first) */
        json_decref(c->resp.json); /* an answer not sent (the connection closed first) */
        fdn__http_resp_text_free(&c->resp);
        if (c->uri != c->uri_buf)
            fdn_free(c->uri);
        ctx_body_free(c);
        *req_cls = NULL;
        /* withdrawn: its completion still comes (fdn__http_claim), and the second of the two
         * frees the context (ctx_free_withdrawn) */
        if (c->as.withdrawable &&
            atomic_load_explicit(&c->as.claim, memory_order_acquire) == CLAIM_WITHDRAWN &&
            atomic_fetch_add_explicit(&c->as.left, 1, memory_order_acq_rel) == 0)
            return;
        ctx_release(c);
    }
}

/* The release of a withdrawn request's context by its completion, the second to let go of it
 * (on_done freed what it held): on the completer's thread, not into a server thread's cache. */
static void ctx_free_withdrawn(fdn__http_async_t *as)
{
    fdn_free((char *)as - offsetof(conn_ctx_t, as));
}

static void free_body(void *p)
{
    fdn_free(p);
}

void fdn__http_kept_free(void *kept)
{
    if (kept != NULL)
        MHD_destroy_response(kept);
}

static enum MHD_Result send_resp(struct MHD_Connection *con, fdn__http_resp_t *resp)
{
    /* a shared body whose response the handler's side keeps (resp->keep): made once, then
     * queued again as it is (its body, Content-Type and Cache-Control), as a constant
     * answer is; making one and adding its headers costs ~3 k instructions and 7 blocks */
    bool keep = resp->keep != NULL && resp->json == NULL && resp->text != NULL &&
                resp->text_free != NULL && resp->status == 200 && resp->retry_after_s <= 0;
    if (keep && *resp->keep != NULL) {
        fdn__http_resp_text_free(resp); /* the kept response holds a reference of its own */
        return MHD_queue_response(con, resp->status, *resp->keep);
    }
    char *own = NULL; /* a body MHD takes over (freed by it with the response): no copy */
    void (*release)(void *) = free_body;
    const char *ctype;
    size_t len;
    if (resp->json != NULL) {
        if (fdn_json_dumps(resp->json, JSON_COMPACT, &own, &len) != 0)
            return MHD_NO;
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
    if (resp->close) /* MHD closes the connection once the answer is sent */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(con, resp->status, r);
    if (keep)
        *resp->keep = r; /* the slot's now: its owner destroys it (fdn__http_kept_free) */
    else
        MHD_destroy_response(r);
    return ok;
}

/* An answer to a request refused before it is dispatched (its framing, size or token): the
 * error body, and counted, its request telemetry (route "unmatched") and the request hook as
 * for any answer (dispatch_end). Only these refusals take this path, not the request path. */
static enum MHD_Result send_error_as(fdn_admin_t *a, struct MHD_Connection *con, const char *method,
                                     const conn_ctx_t *c, int code, const char *msg, bool close)
{
    int64_t t0 = dispatch_t0(a);
    fdn__http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.close = close;
    if (c->h_cid != NULL)
        fdn__http_set_correlation_id(&resp, c->h_cid, strnlen(c->h_cid, FDN__HTTP_CID_MAX + 1));
    fdn_err_set(&resp.err, code, "%s", msg);
    dispatch_end(a, t0, NULL, method, c->uri, &resp, code);
    enum MHD_Result ok = send_resp(con, &resp);
    fdn__http_resp_clear(&resp);
    return ok;
}

static enum MHD_Result send_error(fdn_admin_t *a, struct MHD_Connection *con, const char *method,
                                  const conn_ctx_t *c, int code, const char *msg)
{
    return send_error_as(a, con, method, c, code, msg, false);
}

/* An error after which the connection is closed (its framing cannot be trusted). */
static enum MHD_Result send_error_close(fdn_admin_t *a, struct MHD_Connection *con,
                                        const char *method, const conn_ctx_t *c, int code,
                                        const char *msg)
{
    return send_error_as(a, con, method, c, code, msg, true);
}

/* Send a deferred answer (the completer has set DONE; on a server thread). */
static enum MHD_Result send_deferred(fdn_admin_t *a, struct MHD_Connection *con, const char *method,
                                     conn_ctx_t *c)
{
    c->parked = false;
    if (c->as.wl != NULL)
        wake_drain(c->as.wl);
    int rc = FDN_EINVAL; /* unreachable: resumed before completion */
    if (atomic_load_explicit(&c->as.state, memory_order_acquire) == AS_DONE)
        rc = c->as.withdrawable &&
                     atomic_load_explicit(&c->as.claim, memory_order_acquire) == CLAIM_WITHDRAWN
                 ? withdrawn_answer(&c->as, &c->resp)
                 : deferred_result(&c->as, &c->resp);
    dispatch_end(a, c->as.t0, c->as.route, method, c->uri, &c->resp, rc);
    enum MHD_Result ok = send_resp(con, &c->resp);
    fdn__http_resp_clear(&c->resp);
    return ok;
}

/* What the server reads of a request's headers, in one pass over them: the Content-Length
 * headers (how many, whether their values differ, the first), whether a Transfer-Encoding
 * header came, and the first Host,
 * Authorization, Accept and X-Correlation-Id (six lookups and a pass before, each a walk of
 * the list with a case-insensitive compare per header). */
typedef struct hdr_scan {
    unsigned n_cl, n_te;
    bool cl_differ, te, te_bad;
    const char *cl, *host, *auth, *accept, *cid;
} hdr_scan_t;

/* Whether a Transfer-Encoding value is "chunked" (case-insensitive; the value as libmicrohttpd
 * keeps it): the one value by which libmicrohttpd frames a body as chunked. */
static bool te_chunked(const char *v)
{
    return v != NULL && strcasecmp(v, "chunked") == 0;
}

static void keep_first(const char **slot, const char *value)
{
    if (*slot == NULL)
        *slot = value != NULL ? value : "";
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    hdr_scan_t *h = cls;
    if (key == NULL)
        return MHD_YES;
    switch (strlen(key)) {
    case 4:
        if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
            keep_first(&h->host, value);
        break;
    case 6:
        if (strcasecmp(key, MHD_HTTP_HEADER_ACCEPT) == 0)
            keep_first(&h->accept, value);
        break;
    case 13:
        if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
            keep_first(&h->auth, value);
        break;
    case 14:
        if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
            break;
        if (h->n_cl++ == 0)
            h->cl = value;
        else if (value == NULL || h->cl == NULL || strcmp(value, h->cl) != 0)
            h->cl_differ = true;
        break;
    case 16:
        if (strcasecmp(key, "X-Correlation-Id") == 0)
            keep_first(&h->cid, value);
        break;
    case 17:
        if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) != 0)
            break;
        h->te = true;
        if (h->n_te++ > 0 || !te_chunked(value))
            h->te_bad = true; /* another coding, or one more: not chunked once, last */
        break;
    default:
        break;
    }
    return MHD_YES;
}

/* A Content-Length value (RFC 9110 8.6: 1*DIGIT, leading zeros as many as come) into *out,
 * UINT64_MAX when it is past 64 bits (too large, not malformed).
 * @return 0, FDN_EINVAL (empty or not digits only) */
static int cl_parse(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return FDN_EINVAL;
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return FDN_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
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
        hdr_scan_t h = {0, 0, false, false, false, NULL, NULL, NULL, NULL, NULL};
        (void)MHD_get_connection_values(con, MHD_HEADER_KIND, scan_header, &h);
        c->h_auth = h.auth;
        c->h_accept = h.accept;
        c->h_cid = h.cid;
        /* two Content-Length headers that disagree make the body's end ambiguous (request
         * smuggling behind a proxy that picks the other one): refuse the request */
        if (h.cl_differ) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error_close(a, con, method, c, FDN_EPARSE,
                                    "conflicting Content-Length headers");
        }
        /* a Transfer-Encoding other than "chunked" once (another coding, codings before it,
         * two headers): the body's length cannot be determined (RFC 9112 6.1: 400, close).
         * libmicrohttpd takes such a body to run until the connection closes, so a request
         * behind it would be read as body while a proxy that ignores the coding forwards it
         * as a request of its own (smuggling) */
        if (h.te_bad) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error_close(a, con, method, c, FDN_EPARSE,
                                    "Transfer-Encoding other than \"chunked\" alone: the body's "
                                    "length cannot be determined");
        }
        /* Transfer-Encoding and Content-Length together: a proxy that frames by the
         * Content-Length sees another request end than we do (libmicrohttpd follows the
         * chunking), so bytes it takes for a body we would run as a request (smuggling).
         * RFC 9112 6.1: refuse it and close the connection */
        if (h.te && h.n_cl > 0) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error_close(a, con, method, c, FDN_EPARSE,
                                    "both Transfer-Encoding and Content-Length headers");
        }
        /* RFC 9112 3.2: an HTTP/1.1 request without Host is answered 400 (libmicrohttpd
         * accepts it unless strict; HTTP/1.0 clients may omit it) */
        if (h.host == NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error(a, con, method, c, FDN_EPARSE,
                              "HTTP/1.1 request without a Host header");
        }
        const char *cl = h.cl;
        uint64_t n = 0;
        if (cl != NULL && cl_parse(cl, &n) != 0) {
            c->too_large = true; /* whatever body arrives is drained, not kept */
            return send_error_close(a, con, method, c, FDN_EPARSE,
                                    "Content-Length is not a number");
        }
        if (cl != NULL && n > a->max_body) {
            c->too_large = true;
            return send_error(a, con, method, c, FDN_ETOO_LARGE, "request body exceeds the limit");
        }
        /* the body's buffer sized by its Content-Length (with the NUL), not a default 8 KiB:
         * in the context when it fits, else a block of its size (an 8 KiB one took glibc's
         * slow path on every POST), but no more than BODY_PREALLOC before the bytes arrive:
         * a client announcing max_body and sending nothing must not make the server reserve
         * it (ctx_body_put grows the buffer as they come). Failure only leaves the growth. */
        if (cl != NULL && n > 0)
            c->cl_hint = (size_t)n + 1;
        if (cl != NULL && n > 0 && n < sizeof c->body_buf) {
            c->body = (fdn__admin_text_t){c->body_buf, 0, sizeof c->body_buf};
            c->body_buf[0] = '\0';
        } else if (cl != NULL && n > 0) {
            size_t first = (size_t)n + 1 <= BODY_PREALLOC ? (size_t)n + 1 : BODY_PREALLOC;
            c->body.p = fdn_malloc(first);
            c->body.cap = c->body.p != NULL ? first : 0;
            if (c->body.p != NULL)
                c->body.p[0] = '\0';
        }
        /* refuse a client without the token on its headers, before its body is read: else
         * anyone who can connect makes the server buffer max_body bytes per connection */
        if (!auth_ok(a, c->h_auth)) {
            c->too_large = true; /* any body that still arrives is drained, not kept */
            return send_error(a, con, method, c, FDN_EACCES, "missing or wrong bearer token");
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
        return ctx_body_put(c, a->max_body, upload_data, n) == 0 ? MHD_YES : MHD_NO;
    }
    /* received whole: no deadline while it is handled; cut meanwhile: not handled */
    if (!fdn__http_watch_handling(con))
        return MHD_NO;
    if (c->too_large)
        return send_error(a, con, method, c, FDN_ETOO_LARGE, "request body exceeds the limit");
    /* handlers and renders run from here. The server's threads are its own: their cut
     * descriptor (fdn_events_set_thread_cut_fd) is the server's, which ends their calls on
     * PostgreSQL at the shutdown deadline (DESIGN "Cut calls") */
    (void)fdn_events_set_thread_cut_fd(a->cut_fd);
    if (c->parked) /* resumed: the deferred answer is ready */
        return send_deferred(a, con, method, c);
    const char *auth = c->h_auth;
    memset(&c->resp, 0, sizeof c->resp);
    const char *accept = c->h_accept;
    c->resp.want_openmetrics =
        accept != NULL && strstr(accept, "application/openmetrics-text") != NULL;
    const char *cid = c->h_cid;
    if (cid != NULL)
        fdn__http_set_correlation_id(&c->resp, cid, strnlen(cid, FDN__HTTP_CID_MAX + 1));
    int64_t t0 = dispatch_t0(a);
    async_init(&c->as, a);
    c->as.con = con;
    c->as.wake = mhd_wake;
    c->as.release = ctx_free_withdrawn;
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
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_DAEMON);
        c->as.wl = ci != NULL ? wake_list(a, ci->daemon) : NULL;
        if (c->as.withdrawable && c->as.wl != NULL) {
            park_list(a, &c->as); /* withdrawn already when the withdrawal has begun */
            if (atomic_load_explicit(&c->as.state, memory_order_acquire) == AS_DONE)
                return send_deferred(a, con, method, c);
        }
        MHD_suspend_connection(con);
        int expect = AS_RUNNING;
        if (!atomic_compare_exchange_strong_explicit(&c->as.state, &expect, AS_PARKED,
                                                     memory_order_acq_rel, memory_order_acquire))
            MHD_resume_connection(con); /* completed meanwhile: answered on the next call */
        return MHD_YES;
    }
    dispatch_end(a, t0, route, method, c->uri, &c->resp, rc);
    enum MHD_Result ok = send_resp(con, &c->resp);
    /* what on_done frees, released now (not the whole ~850 bytes zeroed again: a next request
     * zeroes its own) */
    json_decref(c->resp.json);
    c->resp.json = NULL;
    fdn__http_resp_text_free(&c->resp);
    return ok;
}

struct MHD_Daemon *fdn__admin_mhd_start(fdn_admin_t *a, int fd)
{
    return MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, a,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)a->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)a->max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)a->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)a->per_ip, MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)a,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)a, MHD_OPTION_NOTIFY_CONNECTION,
        fdn__http_watch_notify, (void *)a->watch, MHD_OPTION_END);
}
