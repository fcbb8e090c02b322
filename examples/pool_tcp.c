/*
 * Example: a pool of real TCP connections.
 *
 * The program starts a tiny line-echo server on 127.0.0.1 (port chosen by the kernel) in a
 * thread, then builds a pool whose workers each hold one connected socket:
 *   create   = socket + connect
 *   destroy  = close
 *   validate = poll the socket: a peer that hung up makes the worker invalid
 * Four client threads send requests through fdn_pool_with. The request "quit" makes the
 * server close that connection; the function notices EOF and returns FDN_EPOOL_BROKEN, so the
 * pool destroys the worker and creates a fresh connection.
 *
 * Run: ./example_pool_tcp   (exits 0 when every request got its echo)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fdn/pool.h>

#define MAX_CONNS 256 /* more than the example can ever open (102 requests) */

/* ---------------------------------------------------------------------------------------- */
/* Echo server */

typedef struct server {
    int lfd;
    uint16_t port;
    pthread_t accept_thread;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    _Atomic int nconns;
    _Atomic int accepted;
} server_t;

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one '\n'-terminated line (without the newline). Returns its length, 0 on EOF, -1 on
 * error or overflow. */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return len == 0 ? 0 : -1;
        if (c == '\n') {
            buf[len] = '\0';
            return (ssize_t)len;
        }
        buf[len++] = c;
    }
    return -1;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[256];
    for (;;) {
        ssize_t n = read_line(fd, line, sizeof(line));
        if (n <= 0 || strcmp(line, "quit") == 0)
            break;
        char out[300];
        int m = snprintf(out, sizeof(out), "echo: %s\n", line);
        if (write_all(fd, out, (size_t)m) != 0)
            break;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    server_t *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break; /* listener shut down */
        }
        int i = atomic_load(&s->nconns);
        if (i >= MAX_CONNS) {
            close(fd);
            continue;
        }
        s->conn_fds[i] = fd;
        if (pthread_create(&s->conn_threads[i], NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        atomic_store(&s->nconns, i + 1);
        atomic_fetch_add(&s->accepted, 1);
    }
    return NULL;
}

static int server_start(server_t *s)
{
    memset(s, 0, sizeof(*s));
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0) {
        close(s->lfd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0) {
        close(s->lfd);
        return -1;
    }
    return 0;
}

static void server_stop(server_t *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->accept_thread, NULL);
    close(s->lfd);
    int n = atomic_load(&s->nconns);
    for (int i = 0; i < n; i++) {
        shutdown(s->conn_fds[i], SHUT_RDWR);
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Pool worker: one TCP connection */

typedef struct tcp_conn {
    int fd;
} tcp_conn_t;

static int tcp_create(void **out, void *user)
{
    const server_t *s = user;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return e == ECONNREFUSED ? FDN_ECONNREFUSED : FDN_ENETWORK;
    }
    tcp_conn_t *c = malloc(sizeof(*c));
    if (c == NULL) {
        close(fd);
        return FDN_ENOMEM;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

static void tcp_destroy(void *conn, void *user)
{
    (void)user;
    tcp_conn_t *c = conn;
    close(c->fd);
    free(c);
}

static int tcp_validate(void *conn, void *user)
{
    (void)user;
    tcp_conn_t *c = conn;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    /* An idle connection must have nothing to read: readable means EOF or garbage. */
    if (n != 0 || (p.revents & (POLLHUP | POLLERR)) != 0)
        return FDN_ENETWORK;
    return 0;
}

typedef struct request {
    char msg[64];
    char reply[128];
} request_t;

static int tcp_call(void *conn, void *arg)
{
    tcp_conn_t *c = conn;
    request_t *r = arg;
    char line[80];
    int n = snprintf(line, sizeof(line), "%s\n", r->msg);
    if (write_all(c->fd, line, (size_t)n) != 0)
        return FDN_EPOOL_BROKEN;
    ssize_t got = read_line(c->fd, r->reply, sizeof(r->reply));
    if (got <= 0)
        return FDN_EPOOL_BROKEN; /* peer closed: the pool replaces this connection */
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

typedef struct client_arg {
    fdn_pool_t *pool;
    int id;
    int ok;
    int bad;
} client_arg_t;

static void *client_main(void *arg)
{
    client_arg_t *a = arg;
    for (int i = 0; i < 25; i++) {
        request_t r;
        snprintf(r.msg, sizeof(r.msg), "client %d request %d", a->id, i);
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_pool_with(a->pool, tcp_call, &r, 2000, &err);
        char expect[96];
        snprintf(expect, sizeof(expect), "echo: %s", r.msg);
        if (rc == 0 && strcmp(r.reply, expect) == 0)
            a->ok++;
        else
            a->bad++;
    }
    return NULL;
}

int main(void)
{
    server_t srv;
    if (server_start(&srv) != 0) {
        perror("server");
        return 1;
    }
    printf("echo server on 127.0.0.1:%u\n", (unsigned)srv.port);

    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.name = "echo";
    o.size = 2;
    o.max_overflow = 1;
    o.create = tcp_create;
    o.destroy = tcp_destroy;
    o.validate = tcp_validate;
    o.validate_after_idle_ms = 0; /* check every connection before lending it */
    o.overflow_ttl_ms = 1000;     /* keep an overflow connection for reuse instead of closing
                                     it at every checkin */
    o.user = &srv;
    fdn_pool_t *pool = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_pool_create(&pool, &o, &err) != 0) {
        fprintf(stderr, "pool: %s\n", err.message);
        server_stop(&srv);
        return 1;
    }

    request_t r = {.msg = "hello"};
    int rc = fdn_pool_with(pool, tcp_call, &r, 1000, &err);
    printf("hello -> rc=%d reply=\"%s\"\n", rc, rc == 0 ? r.reply : "");
    int failures = rc != 0 || strcmp(r.reply, "echo: hello") != 0;

    /* "quit" makes the server hang up: the worker is reported broken and replaced. */
    request_t q = {.msg = "quit"};
    rc = fdn_pool_with(pool, tcp_call, &q, 1000, &err);
    printf("quit -> %s (worker replaced)\n", fdn_err_name(rc));
    failures += rc != FDN_EPOOL_BROKEN;

    enum { C = 4 };
    pthread_t t[C];
    client_arg_t ca[C];
    for (int i = 0; i < C; i++) {
        ca[i] = (client_arg_t){.pool = pool, .id = i};
        pthread_create(&t[i], NULL, client_main, &ca[i]);
    }
    int ok = 0, bad = 0;
    for (int i = 0; i < C; i++) {
        pthread_join(t[i], NULL);
        ok += ca[i].ok;
        bad += ca[i].bad;
    }
    fdn_pool_status_t s;
    fdn_pool_status(pool, &s);
    printf("requests ok=%d failed=%d\n", ok, bad);
    printf("pool %s: size=%d workers=%d available=%d in_use=%d overflow=%d waiters=%d "
           "created=%llu destroyed=%llu broken=%llu\n",
           fdn_pool_name(pool), s.size, s.workers, s.available, s.in_use, s.overflow, s.waiters,
           (unsigned long long)s.created, (unsigned long long)s.destroyed,
           (unsigned long long)s.broken);
    printf("server accepted %d connections\n", atomic_load(&srv.accepted));
    failures += bad != 0 || ok != C * 25 || s.broken != 1 || s.in_use != 0;

    fdn_pool_destroy(pool);
    server_stop(&srv);
    if (failures != 0) {
        fprintf(stderr, "FAILED\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
