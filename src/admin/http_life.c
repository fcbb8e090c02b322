/*
 * DESIGN: the admin server's life (see the DESIGN comment in http.c for the server):
 * fdn_admin_create (options, listen address, token), fdn_admin_bind (the listen socket),
 * fdn_admin_start (the request deadline thread, then libmicrohttpd's threads on a duplicate of
 * the socket), fdn_admin_shutdown (waits for deferred answers on `dmu`/`dcv`, up to
 * shutdown_timeout_ms for answers being sent; then cuts the server threads' calls on the
 * event store's PostgreSQL (writes `cut_fd`, http.c "Cut calls"), withdraws the answers of
 * durable appends still waiting for their commit (503, outcome unknown: http.c "Withdrawn
 * answers"), closes every connection, through the request deadline's list, so a client that
 * does not read cannot hold it (when answers were withdrawn: once they are sent, at most
 * shutdown_timeout_ms later), and waits for the rest; then stops the threads, a timer thread
 * (stop_mhd) cutting those calls at the same deadline if a thread is still in a handler then;
 * last, with every server thread joined, reads `cut_fd` back, so that no call after the
 * shutdown is cut) and fdn_admin_destroy. The shutdown is so bounded by shutdown_timeout_ms
 * (twice that with withdrawn answers a client does not read); a durable append's commit is no
 * longer waited for: the store's writer completes it after the server is gone.
 * Threads: create, bind, start and destroy are thread_safety init/owner; shutdown is idempotent
 * (`stopped`) and may race nothing but itself: a call that finds it begun waits on `dcv` for
 * `shut`, set under `dmu` once the first call has stopped the server, so no call returns while
 * the server threads still run; stop_mhd's timer thread lives inside it.
 * Locks: `dmu` (a leaf), held while waiting for the count of deferred answers to reach
 * zero, released while the deadline's steps run (fdn__admin_withdraw takes each server
 * thread's `parked` list mutex in turn, http.c); the timer's own mutex (a leaf, on the
 * shutdown's stack).
 */
#include "admin/http_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

/* request_timeout_s when the options leave it 0 */
#define FDN__ADMIN_DEFAULT_REQUEST_TIMEOUT_S 10u

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
    a->cut_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->cut_fd < 0) {
        int e = errno;
        fdn_free(a->token);
        fdn_free(a);
        return e == ENOMEM ? FDN_ENOMEM
                           : fdn_err_set(err, FDN_EIO, "cannot create an eventfd (errno %d)", e);
    }
    pthread_mutex_init(&a->dmu, NULL);
    pthread_condattr_t ca; /* dcv's timed wait (the shutdown deadline) is on CLOCK_MONOTONIC */
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&a->dcv, &ca) != 0) {
        pthread_mutex_destroy(&a->dmu);
        close(a->cut_fd);
        fdn_free(a->token);
        fdn_free(a);
        return FDN_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    for (size_t i = 0; i < FDN__HTTP_WAKE_SLOTS; i++)
        pthread_mutex_init(&a->wakes[i].mu, NULL); /* no attributes: cannot fail on Linux */
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
    a->shutdown_timeout_ms = opts->version >= 5 && opts->shutdown_timeout_ms > 0
                                 ? opts->shutdown_timeout_ms
                                 : FDN_ADMIN_DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (fdn__admin_mount_builtin(a) < 0 || fdn__admin_mount_status(a) < 0) {
        fdn_admin_destroy(a);
        return FDN_ENOMEM;
    }
    *out = a;
    return 0;
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
    if (atomic_load_explicit(&a->stopped, memory_order_acquire))
        return fdn_err_set(err, FDN_EINVAL, "admin server was shut down");
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
    /* its shutdown has run: nothing would stop these threads (fdn_admin_destroy's shutdown is
     * a no-op now), and the server would be freed under them */
    if (atomic_load_explicit(&a->stopped, memory_order_acquire))
        return fdn_err_set(err, FDN_EINVAL, "admin server was shut down; create a new one");
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
    a->mhd = fdn__admin_mhd_start(a, fd);
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
    /* the routes are final now: GET /v1/events' state, which every scrape's collector reads
     * (fdn__admin_events_waiting), found once instead of by name each time */
    atomic_store_explicit(&a->ev_api, fdn__admin_route_user(a, "GET", "/v1/events"),
                          memory_order_release);
    return 0;
}

uint16_t fdn_admin_port(const fdn_admin_t *a)
{
    if (a == NULL)
        return 0;
    return atomic_load_explicit(&((fdn_admin_t *)(uintptr_t)a)->port, memory_order_acquire);
}

/* End the server threads' calls on the event store's PostgreSQL (core/cancel.h): every call
 * they make from now on ends at once with FDN_ECANCELED inside the store, which answers
 * FDN_EUNAVAILABLE (503). The eventfd stays readable until uncut_calls reads it back. */
static void cut_calls(fdn_admin_t *a)
{
    uint64_t one = 1;
    ssize_t r = write(a->cut_fd, &one, sizeof one);
    (void)r; /* EAGAIN only when written ~2^64 times: readable already */
}

/* The cut is over (the server threads are joined): read the eventfd back, so that no call
 * after the shutdown is cut, e.g. an in-process request (fdn__admin_dispatch names the same
 * descriptor on its thread). Nonblocking: EAGAIN when it was never written. */
static void uncut_calls(fdn_admin_t *a)
{
    uint64_t n;
    ssize_t r = read(a->cut_fd, &n, sizeof n);
    (void)r;
}

/* The shutdown deadline while libmicrohttpd joins its threads: a handler (not deferred) or a
 * render still blocked on PostgreSQL at `until` is cut then (cut_calls). */
typedef struct cutter {
    fdn_admin_t *a;
    struct timespec until; /* CLOCK_MONOTONIC */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool joined; /* mu: MHD_stop_daemon returned */
} cutter_t;

static void *cutter_main(void *arg)
{
    cutter_t *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->joined && pthread_cond_timedwait(&k->cv, &k->mu, &k->until) != ETIMEDOUT)
        ;
    bool cut = !k->joined;
    pthread_mutex_unlock(&k->mu);
    if (cut)
        cut_calls(k->a);
    return NULL;
}

/* Stop libmicrohttpd (joins the server threads, closes the listen socket), its threads' calls
 * on PostgreSQL cut at `until` when they still run then. */
static void stop_mhd(fdn_admin_t *a, const struct timespec *until)
{
    cutter_t k = {.a = a, .until = *until, .joined = false};
    pthread_condattr_t ca;
    bool timer = false;
    if (pthread_condattr_init(&ca) == 0) {
        if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
            pthread_cond_init(&k.cv, &ca) == 0) {
            pthread_mutex_init(&k.mu, NULL);
            pthread_t th;
            timer = pthread_create(&th, NULL, cutter_main, &k) == 0;
            if (timer) {
                MHD_stop_daemon(a->mhd);
                pthread_mutex_lock(&k.mu);
                k.joined = true;
                pthread_cond_signal(&k.cv);
                pthread_mutex_unlock(&k.mu);
                pthread_join(th, NULL);
            }
            pthread_mutex_destroy(&k.mu);
            pthread_cond_destroy(&k.cv);
        }
        pthread_condattr_destroy(&ca);
    }
    if (!timer) { /* no thread for the deadline: cut now rather than wait unbounded */
        cut_calls(a);
        MHD_stop_daemon(a->mhd);
    }
}

/* *t = ms milliseconds from now on CLOCK_MONOTONIC (the clock of a->dcv). */
static void monotonic_after_ms(struct timespec *t, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

void fdn_admin_shutdown(fdn_admin_t *a)
{
    if (a == NULL)
        return;
    if (atomic_exchange_explicit(&a->stopped, true, memory_order_acq_rel)) {
        /* another call stops the server: return once it has, as that call does (the caller may
         * then destroy the services the server calls) */
        pthread_mutex_lock(&a->dmu);
        while (!a->shut)
            pthread_cond_wait(&a->dcv, &a->dmu);
        pthread_mutex_unlock(&a->dmu);
        return;
    }
    /* MHD must not stop with a suspended connection: let every deferred answer complete */
    atomic_store(&a->draining, true);
    for (size_t i = 0; i < a->nstops; i++) /* e.g. waiting queries: answered now */
        if (a->stops[i].drain != NULL)
            a->stops[i].drain(a->stops[i].user);
    /* a client that does not read its answer holds its request (and so the shutdown) until
     * the deadline. Then calls on PostgreSQL are cut, the answers of durable appends still
     * waiting for their commit are withdrawn (503, outcome unknown: http.c, DESIGN "Withdrawn
     * answers"), and every connection is closed, which ends the answers being written; when
     * answers were withdrawn, the close waits until they are sent, at most as long again (a
     * client that reads gets its 503 at once). Requests still suspended then wait for their
     * service, which completes them when drained. */
    struct timespec until, grace;
    monotonic_after_ms(&until, a->shutdown_timeout_ms);
    enum { WAITING, ANSWERING, CLOSED } stage = WAITING;
    pthread_mutex_lock(&a->dmu);
    while (atomic_load(&a->deferred) > 0) {
        if (stage == CLOSED) {
            pthread_cond_wait(&a->dcv, &a->dmu);
        } else if (pthread_cond_timedwait(&a->dcv, &a->dmu, stage == WAITING ? &until : &grace) ==
                       ETIMEDOUT &&
                   atomic_load(&a->deferred) > 0) {
            pthread_mutex_unlock(&a->dmu); /* not under dmu: a leaf lock */
            if (stage == WAITING) {
                /* renders blocked on PostgreSQL answer 503 now; appends are answered 503 */
                cut_calls(a);
                if (fdn__admin_withdraw(a) > 0) {
                    stage = ANSWERING;
                    monotonic_after_ms(&grace, a->shutdown_timeout_ms);
                } else {
                    stage = CLOSED;
                }
            } else {
                stage = CLOSED;
            }
            if (stage == CLOSED)
                fdn__http_watch_close_all(a->watch);
            pthread_mutex_lock(&a->dmu);
        }
    }
    pthread_mutex_unlock(&a->dmu);
    fdn__http_watch_stop(a->watch); /* no connection is cut while the server stops */
    if (a->mhd != NULL)
        stop_mhd(a, &until);        /* joins the server threads, closes the listen socket */
    fdn__http_watch_free(a->watch); /* every connection closed and unregistered */
    a->watch = NULL;
    uncut_calls(a); /* no server thread is left to cut */
    pthread_mutex_lock(&a->dmu);
    a->shut = true;
    pthread_cond_broadcast(&a->dcv); /* concurrent calls waiting for this one */
    pthread_mutex_unlock(&a->dmu);
}

void fdn_admin_destroy(fdn_admin_t *a)
{
    if (a == NULL)
        return;
    fdn_admin_shutdown(a);
    fdn__admin_unset_telemetry(a);
    for (size_t i = 0; i < a->nstops; i++)
        if (a->stops[i].release != NULL)
            a->stops[i].release(a->stops[i].user);
    if (a->listen_fd >= 0)
        close(a->listen_fd); /* bound but never handed to a started server */
    for (size_t i = 0; i < a->nroutes; i++)
        fdn_free(a->routes[i].pattern);
    fdn_free(a->routes);
    for (size_t i = 0; i < FDN__HEALTH_MEMO_SLOTS; i++)
        fdn__admin_health_memo_free(&a->hmemo[i]);
    if (a->token != NULL) {
        volatile char *t = a->token;
        for (size_t i = 0; i < a->token_len; i++)
            t[i] = 0;
    }
    fdn_free(a->token);
    pthread_cond_destroy(&a->dcv);
    pthread_mutex_destroy(&a->dmu);
    for (size_t i = 0; i < FDN__HTTP_WAKE_SLOTS; i++)
        pthread_mutex_destroy(&a->wakes[i].mu);
    close(a->cut_fd); /* every thread that named it has ended or restored its own */
    fdn_free(a);
}
