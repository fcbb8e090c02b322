/*
 * DESIGN: waiting queries of GET /v1/events (`?after_id=N&wait_ms=M`), as a follower of the
 * log reads it over HTTP: a query after a cursor that finds nothing does not answer an empty
 * list at once (the client would ask again and again) but waits, up to wait_ms, for the first
 * event that matches it, then answers with the query's result, as without wait_ms.
 *
 * Each waiting query holds an fd subscription of the store (fdn_events_subscribe_fd) with
 * the query's filters and cursor: its descriptor turns readable for a matching event after
 * the cursor (also one stored between the query and the subscription: the subscription
 * starts at the cursor, so no event can slip between them). It may also turn readable when
 * none matches (at the start, when the store holds events after the cursor), so a readable
 * descriptor is read (fdn_events_sub_read, one event) and only a match wakes the query. The
 * request is
 * deferred (fdn__http_defer: its connection suspended, no server thread held) and answered by
 * this file's thread, which waits in epoll_wait for the descriptors, an eventfd (a new waiter,
 * the drain, a tick) and the earliest deadline (CLOCK_MONOTONIC, the epoll timeout rounded up
 * to the millisecond, so a wait never ends early). The tests may set a clock instead
 * (fdn__evwait_set_clock): the deadlines are then on it, and with a manual clock the thread
 * waits for no time at all but reads the clock again when told to (fdn__evwait_tick, after an
 * advance), so a deadline fires when the test says so, however long its set-up took. A woken
 * or expired waiter is answered with its query's result (below; no memo of answers: that is a
 * server thread's) by completing the request (fdn__http_complete); its subscription ends
 * first.
 *
 * Answers come from the store's memory tier (fdn_events_query_memory), without I/O. Running
 * each query again as the server thread runs it (fdn_events_query) cost a store on PostgreSQL
 * one round trip per answer, one after the other on this one thread: with PostgreSQL hung,
 * every waiter's answer waited one command_timeout_ms per waiter ahead of it. A breaker
 * around the store's calls (the runtime attaches events.postgres: 3 failures in 10 s open it
 * for 1 s; a bare store has none) cut that short after its threshold, but then answered the
 * waiters behind with 503 instead of their events, and let one probe through a second later:
 * another command_timeout_ms on this thread. Why memory and not more threads for the queries
 * (the task pool, or a few of our own): threads would stop one slow query from holding the
 * others, but every answer would still be a round trip to PostgreSQL for events memory holds,
 * on the path of every follower, and a hung PostgreSQL would still hold each thread for a
 * timeout; memory needs neither I/O nor threads, and leaves PostgreSQL the server threads'
 * queries.
 * The answer is the query's: memory (on PostgreSQL, a contiguous run of the log, from the
 * head at open up to the newest position read, filled in position order: event_shared.c)
 * answers exactly as PostgreSQL does when it holds every position after the cursor (the same
 * events, order, limit and timestamps: tests/engine/test_http_events_memory_pg.c compares the
 * two), as of its newest position; events other processes committed that the store's
 * follower has not read yet are not listed (a wake comes from memory, so the events that woke
 * a waiter are), so an answer lists every matching event after the cursor, in order, up to
 * the limit or to the newest one memory holds: nothing is skipped, the client resumes from
 * the last id it got. A waiter also knows more than its cursor: the query the server thread
 * ran before it waited found nothing after the cursor up to `known`, the newest id the store
 * had then (fdn_events_stats, read before that query), and no position at or below it can
 * appear later (positions are gap-free, in commit order). So memory answers it after
 * max(cursor, known), the same events, whenever it holds every position after that: a cursor
 * older than memory too (a follower resuming across a restart of the server, whose memory
 * starts at the log's head, on a filter nothing has matched since), and an expired waiter
 * with nothing new answers the empty result without asking PostgreSQL. Only when memory
 * evicted positions after that point meanwhile (its own retention, storage.hot.*: memory
 * evicting, within one wait of at most 60 s, events newer than the store's newest when the
 * query began) does the query run on the backend (fdn_events_query, FDN_ENOENT from memory),
 * and not on this thread: the waiter completes its request with a render (resp->render,
 * admin_int.h) that runs the query on the server thread that sends the answer, as a query
 * without wait_ms runs there, and writes its answer (hand_off). So no waiter's answer waits
 * for another's call on PostgreSQL (a hung one held this thread a command_timeout_ms per such
 * answer), and no pool of threads is needed for it: the server's own threads are that pool,
 * and the server's shutdown waits for that answer as for any request being answered, up to
 * shutdown_timeout_ms: then the query on PostgreSQL is cut and the answer is 503 (the
 * server threads' cut descriptor, http.c "Cut calls"). The
 * waiter (its query and strings) goes with the render, freed by render_free once it ran or
 * when it never will (its connection closed first).
 *
 * Bounds: at most FDN__EVWAIT_MAX waiting queries (the next gets 503 with Retry-After), each
 * at most FDN__EVWAIT_MAX_MS. A client that leaves while its query waits is noticed by the
 * server only when the answer is sent: its waiter lives until then (at most its wait_ms).
 *
 * Shutdown: fdn__evwait_drain (the server's shutdown, before it waits for its deferred
 * requests) answers every waiting query at once with the empty result, {"events":[],
 * "count":0}, without running its query: the wait ended without a match, as at its deadline,
 * and the client asks again from the same after_id (the position it resumes from, which it
 * holds; nothing is skipped). Running each query, as a woken waiter does, cost a store on
 * PostgreSQL one round trip per waiter, one after the other on this thread: with PostgreSQL
 * hung, a shutdown took waiters x command_timeout_ms (6 waiters, 2 s: 12 s). Now the drain
 * does no I/O: it unsubscribes (an fd subscription has no pager or delivery to wait for) and
 * completes each request. This thread never does I/O on the store: answers come from memory
 * (or are handed to the request's server thread: above), and the reads of the descriptors
 * that turned readable read memory only (a waiter's subscription is not a from-position one,
 * so fdn_events_sub_read reads memory; behind it, it skips). A
 * waiter woken just before the drain also gets the empty result; its client finds the event
 * when it asks again.
 *
 * Threads: one, started by the first wait, stopped by fdn__evwait_drain, which answers every
 * waiting query first (above). Adds run on the server threads. `mu` guards the list, the count
 * and the flags; the thread alone unlinks, answers and frees waiters, so an epoll event's
 * pointer is valid for the pass that returned it (the waiter's descriptor leaves the epoll set
 * before it is freed, in that same pass).
 */
#include "admin/event_wait.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "admin/event_json.h"

typedef struct waiter {
    struct waiter *prev, *next;
    fdn__http_resp_t *resp;
    fdn_events_t *es; /* the store (the query of a waiter handed off: hand_off) */
    fdn_events_sub_t *sub;
    int64_t deadline_ns;  /* CLOCK_MONOTONIC, or the set's clock */
    uint64_t known;       /* nothing matches q in (q.after_id, known] (fdn__evwait_add) */
    fdn_events_query_t q; /* type and correlation_id point into str */
    bool ready;           /* its descriptor was readable in this pass */
    char str[];           /* the query's type and correlation id, NUL-terminated */
} waiter_t;

struct fdn__evwait {
    fdn_events_t *es;
    pthread_mutex_t mu;
    waiter_t *head;       /* mu */
    size_t n, max;        /* mu: waiting now, the most that may */
    bool started, ending; /* mu: the thread runs; drain asked it to end */
    bool drained;         /* mu: the thread ended; adds answer at once */
    fdn_clock_t *clock;   /* mu: the deadlines' clock; NULL: CLOCK_MONOTONIC */
    int ep, wake;         /* epoll set, eventfd (a new waiter, the drain, a tick) */
    pthread_t th;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The deadlines' time now (mu held). */
static int64_t now_ns(const fdn__evwait_t *ws)
{
    return ws->clock != NULL ? fdn_clock_mono_ns(ws->clock) : mono_ns();
}

static void poke(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one); /* EAGAIN: the counter is set already */
    (void)r;
}

int fdn__evwait_create(fdn__evwait_t **out, fdn_events_t *es)
{
    fdn__evwait_t *w = fdn_calloc(1, sizeof *w);
    if (w == NULL)
        return FDN_ENOMEM;
    w->es = es;
    w->max = FDN__EVWAIT_MAX;
    w->ep = w->wake = -1;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        fdn_free(w);
        return FDN_ENOMEM;
    }
    *out = w;
    return 0;
}

size_t fdn__evwait_count(const fdn__evwait_t *w)
{
    fdn__evwait_t *m = (fdn__evwait_t *)(uintptr_t)w;
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void fdn__evwait_set_max(fdn__evwait_t *w, size_t max)
{
    pthread_mutex_lock(&w->mu);
    w->max = max;
    pthread_mutex_unlock(&w->mu);
}

void fdn__evwait_set_clock(fdn__evwait_t *w, fdn_clock_t *clock)
{
    pthread_mutex_lock(&w->mu);
    w->clock = clock;
    pthread_mutex_unlock(&w->mu);
}

void fdn__evwait_tick(fdn__evwait_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->started && !w->ending)
        poke(w->wake);
    pthread_mutex_unlock(&w->mu);
}

/* w's query's result now from memory, after max(cursor, known): FDN_ENOENT when memory does not
 * hold every id after that (see Answers above). */
static int memory_query(const waiter_t *w, fdn_event_list_t **l)
{
    fdn_events_query_t q = w->q;
    if (w->known > q.after_id)
        q.after_id = w->known; /* the same matches: none lies in between */
    return fdn_events_query_memory(w->es, &q, l);
}

/* A handed-off waiter's answer (resp->render, on the server thread that sends it): its query
 * on the store, as a query without wait_ms runs (memory evicted ids after its cursor: the file
 * or PostgreSQL has them), and its body. */
static int render_backend(fdn__http_resp_t *resp)
{
    const waiter_t *w = (const waiter_t *)(uintptr_t)resp->render_arg[0];
    fdn_event_list_t *l = NULL;
    int rc = fdn_events_query(w->es, &w->q, &l);
    if (rc == 0) {
        rc = fdn__admin_events_answer_plain(&l, resp);
        if (rc < 0)
            fdn_event_list_free(l);
    }
    return rc;
}

static void free_handed(fdn__http_resp_t *resp)
{
    fdn_free((void *)(uintptr_t)resp->render_arg[0]);
}

/* Complete w's request with a render that runs its query on the request's server thread (see
 * Answers above); w goes with it. */
static void hand_off(waiter_t *w)
{
    fdn__http_resp_t *resp = w->resp;
    resp->render = render_backend;
    resp->render_arg[0] = (uint64_t)(uintptr_t)w;
    resp->render_free = free_handed;
    fdn__http_complete(resp, 0);
}

/* Answer w's request (the thread, no lock held) and free w (or hand it off): with its query's
 * result now, or, when the server stops, with the empty result, the query not run (no call on
 * the store's backend: see Shutdown above). */
static void answer(waiter_t *w, bool stopping)
{
    fdn_events_unsubscribe(w->sub); /* closes its descriptor, out of the epoll set already */
    w->sub = NULL;
    fdn__http_resp_t *resp = w->resp;
    fdn_event_list_t *l = NULL; /* NULL: no events */
    int rc = stopping ? 0 : memory_query(w, &l);
    if (rc == FDN_ENOENT) { /* the backend answers, on the request's server thread */
        hand_off(w);
        return;
    }
    if (rc == 0) {
        rc = fdn__admin_events_answer_plain(&l, resp);
        if (rc < 0)
            fdn_event_list_free(l);
    }
    fdn_free(w);
    fdn__http_complete(resp, rc);
}

/* Unlink w (mu held) and take its descriptor out of the epoll set. */
static void unlink_waiter(fdn__evwait_t *ws, waiter_t *w)
{
    (void)epoll_ctl(ws->ep, EPOLL_CTL_DEL, fdn_events_sub_fd(w->sub), NULL);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        ws->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    ws->n--;
}

static void *thread_main(void *arg)
{
    fdn__evwait_t *ws = arg;
    struct epoll_event ev[64];
    pthread_mutex_lock(&ws->mu);
    for (;;) {
        bool ending = ws->ending;
        /* the waiters to answer now: woken, expired, or all of them when ending */
        int64_t now = now_ns(ws), next = INT64_MAX;
        waiter_t *done = NULL;
        for (waiter_t *w = ws->head, *nx; w != NULL; w = nx) {
            nx = w->next;
            if (ending || w->ready || w->deadline_ns <= now) {
                unlink_waiter(ws, w);
                w->next = done;
                done = w;
            } else if (w->deadline_ns < next) {
                next = w->deadline_ns;
            }
        }
        if (done != NULL) {
            pthread_mutex_unlock(&ws->mu);
            for (waiter_t *w = done, *nx; w != NULL; w = nx) {
                nx = w->next;
                answer(w, ending);
            }
            pthread_mutex_lock(&ws->mu);
            continue; /* waiters may have come meanwhile: their deadlines count */
        }
        if (ending)
            break;
        /* rounded up: a wait never ends before its deadline; a manual clock's deadlines wait
         * for a tick (fdn__evwait_tick) */
        bool manual = ws->clock != NULL && fdn_clock_is_manual(ws->clock);
        int timeout = next == INT64_MAX || manual ? -1
                      : next - now > (int64_t)3600 * 1000000000
                          ? 3600 * 1000
                          : (int)((next - now + 999999) / 1000000);
        pthread_mutex_unlock(&ws->mu);
        int k = epoll_wait(ws->ep, ev, 64, timeout);
        pthread_mutex_lock(&ws->mu);
        for (int i = 0; i < k; i++) {
            if (ev[i].data.ptr == NULL) { /* the eventfd: a new waiter, or the drain */
                uint64_t v;
                ssize_t r = read(ws->wake, &v, sizeof v);
                (void)r;
            } else {
                /* readable when matching events MAY wait (fdn_events_subscribe_fd): the read
                 * tells (and clears the readiness when none does) */
                waiter_t *w = ev[i].data.ptr;
                fdn_event_list_t *l = NULL;
                if (fdn_events_sub_read(w->sub, 1, &l, NULL) != 0 || fdn_event_list_count(l) > 0)
                    w->ready = true; /* a match (or a failure: the query answers) */
                fdn_event_list_free(l);
            }
        }
    }
    ws->drained = true;
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

/* The thread, its epoll set and eventfd, made by the first wait (mu held). */
static int start_locked(fdn__evwait_t *ws)
{
    if (ws->started)
        return 0;
    ws->ep = epoll_create1(EPOLL_CLOEXEC);
    ws->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (ws->ep < 0 || ws->wake < 0 || epoll_ctl(ws->ep, EPOLL_CTL_ADD, ws->wake, &e) != 0 ||
        pthread_create(&ws->th, NULL, thread_main, ws) != 0) {
        if (ws->ep >= 0)
            close(ws->ep);
        if (ws->wake >= 0)
            close(ws->wake);
        ws->ep = ws->wake = -1;
        return FDN_EAGAIN; /* out of descriptors or threads */
    }
    ws->started = true;
    return 0;
}

int fdn__evwait_add(fdn__evwait_t *ws, const fdn_events_query_t *q, uint64_t known, int64_t wait_ms,
                    fdn__http_resp_t *resp)
{
    size_t tl = q->type != NULL ? strlen(q->type) + 1 : 0;
    size_t cl = q->correlation_id != NULL ? strlen(q->correlation_id) + 1 : 0;
    waiter_t *w = fdn_calloc(1, sizeof *w + tl + cl);
    if (w == NULL)
        return FDN_ENOMEM;
    w->resp = resp;
    w->es = ws->es;
    w->q = *q;
    w->known = known;
    if (tl) {
        memcpy(w->str, q->type, tl);
        w->q.type = w->str;
    }
    if (cl) {
        memcpy(w->str + tl, q->correlation_id, cl);
        w->q.correlation_id = w->str + tl;
    }
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = q->after_id;
    so.type = w->q.type;
    so.correlation_id = w->q.correlation_id;

    pthread_mutex_lock(&ws->mu);
    int rc = 0;
    if (ws->drained || ws->ending) {
        rc = FDN__EVWAIT_NOW;
    } else if (ws->n >= ws->max) {
        resp->retry_after_s = 1;
        rc = fdn_err_set(&resp->err, FDN_EBUSY,
                         "%zu queries wait for events already (the most one server holds); "
                         "retry later",
                         ws->max);
    } else if ((rc = start_locked(ws)) != 0) {
        fdn_err_set(&resp->err, rc, "cannot wait for events: no thread or descriptor for it");
    }
    if (rc == 0 && fdn__http_defer(resp) != 0) {
        resp->err = (fdn_error_t)FDN_ERROR_INIT; /* the server stops: answer now */
        rc = FDN__EVWAIT_NOW;
    }
    if (rc == 0) {
        /* after the defer: once the descriptor is in the set, the thread may answer */
        rc = fdn_events_subscribe_fd(ws->es, &so, &w->sub);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = w};
        if (rc == 0 && epoll_ctl(ws->ep, EPOLL_CTL_ADD, fdn_events_sub_fd(w->sub), &e) != 0)
            rc = FDN_EIO;
        if (rc == 0) {
            w->deadline_ns = now_ns(ws) + wait_ms * 1000000;
            w->next = ws->head;
            if (ws->head != NULL)
                ws->head->prev = w;
            ws->head = w;
            ws->n++;
            poke(ws->wake); /* its deadline may be the earliest */
            pthread_mutex_unlock(&ws->mu);
            return FDN__HTTP_PENDING;
        }
        /* deferred but not waiting: the dispatcher answers this error and ends the deferral */
        fdn_events_unsubscribe(w->sub);
        fdn_err_set(&resp->err, rc, "cannot wait for events: %s", fdn_strerror(rc));
    }
    pthread_mutex_unlock(&ws->mu);
    fdn_free(w);
    return rc;
}

void fdn__evwait_drain(void *arg)
{
    fdn__evwait_t *ws = arg;
    if (ws == NULL)
        return;
    pthread_mutex_lock(&ws->mu);
    bool join = ws->started && !ws->ending;
    ws->ending = true;
    if (!ws->started)
        ws->drained = true;
    if (join)
        poke(ws->wake);
    pthread_mutex_unlock(&ws->mu);
    if (join)
        pthread_join(ws->th, NULL); /* every waiter answered */
}

void fdn__evwait_free(void *arg)
{
    fdn__evwait_t *ws = arg;
    if (ws == NULL)
        return;
    fdn__evwait_drain(ws);
    if (ws->ep >= 0)
        close(ws->ep);
    if (ws->wake >= 0)
        close(ws->wake);
    pthread_mutex_destroy(&ws->mu);
    fdn_free(ws);
}
