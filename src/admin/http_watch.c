/*
 * DESIGN: the admin server's request deadline (slowloris and slow bodies).
 *
 * libmicrohttpd 0.9.75 (Debian 12) times out only idle connections: a client sending one byte
 * a second, of headers that never end or of a body that never ends, holds its connection (and
 * its 16 KiB of memory) forever, and a few thousand such clients fill the connection limit.
 * The version has no header deadline option, so this file adds one from the outside.
 *
 * Every connection is registered on MHD_CONNECTION_NOTIFY_STARTED (its socket_context is an
 * entry of a list) and removed on MHD_CONNECTION_NOTIFY_CLOSED, which MHD calls before it
 * closes the socket. An entry is WAITING (a request is being received; a deadline applies) or
 * HANDLING (received whole: the handler runs, maybe suspended, or the response is being sent;
 * no deadline) or CUT. The deadline of the first request is the connection's start +
 * request_timeout; that of a later request on a keep-alive connection is the end of the previous
 * response + idle_timeout + request_timeout (an honest client first idles, which MHD's idle
 * timeout bounds, then sends its request). One thread wakes every 250 ms, walks the list and
 * shuts down (shutdown(2), SHUT_RDWR) the socket of each WAITING entry past its deadline: the
 * server thread serving it then sees the end of the stream and closes the connection as if the
 * client had left. No response is written (the connection may be between two writes of MHD's
 * own; nginx's client_header_timeout also just closes).
 *
 * Threads and memory order: the list and its entries' links are guarded by mu (taken by the
 * server threads once per connection, open and close, and by the watchdog for its walk), so the
 * socket is never shut down after MHD closed it (its number may then be another file). The
 * state is an atomic word of (generation << 2 | state): the server thread moves WAITING ->
 * HANDLING when the request is whole and HANDLING -> WAITING (next generation, new deadline
 * stored first) when it completed; the watchdog moves WAITING -> CUT by compare-and-swap on the
 * exact word it read with the deadline, so it never cuts a request that became whole meanwhile,
 * nor a later request of the same connection. A request found CUT when it became whole is not
 * handled. Per request: one MHD info lookup and one or two atomic operations; no lock.
 */
#include "admin/http_watch.h"

#include "core/lock.h" /* static inline pthread wrappers: no libfdn internal symbol */

#include <fdn/common.h>
#include <fdn/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

enum { W_WAITING = 0, W_HANDLING = 1, W_CUT = 2, W_MASK = 3 };
#define SCAN_NS (250 * 1000 * 1000LL)

typedef struct watch_conn {
    struct watch_conn *prev FDN_MEMBER_GUARDED_BY(mu), *next FDN_MEMBER_GUARDED_BY(mu);
    int fd;
    _Atomic uint64_t word;       /* generation << 2 | state */
    _Atomic int64_t deadline_ns; /* CLOCK_MONOTONIC */
} watch_conn_t;

struct fdn__http_watch {
    fdn__mutex_t mu;
    pthread_cond_t cv;
    bool stopping FDN_MEMBER_GUARDED_BY(mu);
    bool thread_started;
    pthread_t thr;
    watch_conn_t head FDN_MEMBER_GUARDED_BY(mu); /* sentinel of the circular list */
    int64_t request_ns, keepalive_ns;
    _Atomic uint64_t cut;
};

/* Deadlines are seconds apart and checked every 250 ms: the watchdog reads the coarse clock
 * (the last tick, a few ms old: seen 5-6 ms behind CLOCK_MONOTONIC on a VM). A deadline is set
 * from CLOCK_MONOTONIC itself (deadline_ns, once per request): a clock read behind real time
 * then only makes a cut late, never early, so no request is cut before request_timeout_s. (Set
 * from the coarse clock too, a deadline could fall that lag before its time.) */
static int64_t deadline_ns(int64_t after_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + after_ns;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *watch_main(void *arg)
{
    fdn__http_watch_t *w = arg;
    fdn__mutex_lock(&w->mu);
    while (!w->stopping) {
        int64_t now = mono_ns();
        for (watch_conn_t *e = w->head.next; e != &w->head; e = e->next) {
            uint64_t s = atomic_load_explicit(&e->word, memory_order_acquire);
            if ((s & W_MASK) != W_WAITING ||
                atomic_load_explicit(&e->deadline_ns, memory_order_relaxed) > now)
                continue;
            if (atomic_compare_exchange_strong_explicit(
                    &e->word, &s, (s & ~(uint64_t)W_MASK) | W_CUT, memory_order_acq_rel,
                    memory_order_relaxed)) {
                (void)shutdown(e->fd, SHUT_RDWR);
                atomic_fetch_add_explicit(&w->cut, 1, memory_order_relaxed);
            }
        }
        int64_t until = mono_ns() + SCAN_NS;
        struct timespec ts = {(time_t)(until / 1000000000LL), (long)(until % 1000000000LL)};
        (void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    fdn__mutex_unlock(&w->mu);
    return NULL;
}

int fdn__http_watch_start(fdn__http_watch_t **out, unsigned request_timeout_s,
                          unsigned idle_timeout_s)
{
    *out = NULL;
    if (request_timeout_s == 0)
        return FDN_EINVAL;
    fdn__http_watch_t *w = fdn_calloc(1, sizeof *w);
    if (w == NULL)
        return FDN_ENOMEM;
    w->head.prev = w->head.next = &w->head;
    w->request_ns = (int64_t)request_timeout_s * 1000000000LL;
    /* no idle timeout (0): MHD keeps an idle keep-alive connection forever, so may the watch */
    w->keepalive_ns = idle_timeout_s == 0 ? INT64_MAX / 4
                                          : (int64_t)idle_timeout_s * 1000000000LL + w->request_ns;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        fdn_free(w);
        return FDN_ENOMEM;
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&w->cv, &ca) != 0) {
        pthread_mutex_destroy(&w->mu);
        fdn_free(w);
        return FDN_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thr, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        fdn_free(w);
        return FDN_EIO;
    }
    w->thread_started = true;
    *out = w;
    return 0;
}

void fdn__http_watch_stop(fdn__http_watch_t *w)
{
    if (w == NULL || !w->thread_started)
        return;
    fdn__mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    fdn__mutex_unlock(&w->mu);
    pthread_join(w->thr, NULL);
    w->thread_started = false;
}

void fdn__http_watch_free(fdn__http_watch_t *w)
{
    if (w == NULL)
        return;
    fdn__http_watch_stop(w);
    /* MHD stopped: every connection's CLOSED notification ran; anything left is unlinked */
    while (w->head.next != &w->head) {
        watch_conn_t *e = w->head.next;
        w->head.next = e->next;
        fdn_free(e);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    fdn_free(w);
}

void fdn__http_watch_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
    fdn__http_watch_t *w = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        watch_conn_t *e = ci != NULL ? fdn_calloc(1, sizeof *e) : NULL;
        *socket_context = e;
        if (e == NULL)
            return; /* out of memory: this connection has the idle timeout only */
        e->fd = ci->connect_fd;
        atomic_init(&e->word, W_WAITING);
        atomic_init(&e->deadline_ns, deadline_ns(w->request_ns));
        fdn__mutex_lock(&w->mu);
        e->prev = w->head.prev;
        e->next = &w->head;
        w->head.prev->next = e;
        w->head.prev = e;
        fdn__mutex_unlock(&w->mu);
        return;
    }
    watch_conn_t *e = *socket_context;
    if (e == NULL)
        return;
    fdn__mutex_lock(&w->mu);
    e->prev->next = e->next;
    e->next->prev = e->prev;
    fdn__mutex_unlock(&w->mu);
    *socket_context = NULL;
    fdn_free(e);
}

static watch_conn_t *entry_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

bool fdn__http_watch_handling(struct MHD_Connection *con)
{
    watch_conn_t *e = entry_of(con);
    if (e == NULL)
        return true;
    uint64_t s = atomic_load_explicit(&e->word, memory_order_acquire);
    while ((s & W_MASK) == W_WAITING)
        if (atomic_compare_exchange_weak_explicit(&e->word, &s,
                                                  (s & ~(uint64_t)W_MASK) | W_HANDLING,
                                                  memory_order_acq_rel, memory_order_acquire))
            return true;
    return (s & W_MASK) == W_HANDLING;
}

void fdn__http_watch_done(fdn__http_watch_t *w, struct MHD_Connection *con)
{
    watch_conn_t *e = entry_of(con);
    if (e == NULL)
        return;
    uint64_t s = atomic_load_explicit(&e->word, memory_order_acquire);
    if ((s & W_MASK) == W_CUT)
        return;
    atomic_store_explicit(&e->deadline_ns, deadline_ns(w->keepalive_ns), memory_order_relaxed);
    /* only this connection's server thread moves it out of HANDLING or WAITING; the watchdog
     * may cut it meanwhile, which the CAS keeps */
    while ((s & W_MASK) != W_CUT)
        if (atomic_compare_exchange_weak_explicit(&e->word, &s, ((s >> 2) + 1) << 2 | W_WAITING,
                                                  memory_order_acq_rel, memory_order_acquire))
            return;
}

void fdn__http_watch_close_all(fdn__http_watch_t *w)
{
    if (w == NULL)
        return;
    fdn__mutex_lock(&w->mu); /* MHD closes no socket meanwhile (its CLOSED notification) */
    for (watch_conn_t *e = w->head.next; e != &w->head; e = e->next)
        (void)shutdown(e->fd, SHUT_RDWR);
    fdn__mutex_unlock(&w->mu);
}

uint64_t fdn__http_watch_cut(const fdn__http_watch_t *w)
{
    return w == NULL ? 0
                     : atomic_load_explicit(&((fdn__http_watch_t *)(uintptr_t)w)->cut,
                                            memory_order_relaxed);
}
