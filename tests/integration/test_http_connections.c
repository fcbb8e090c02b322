/* The admin HTTP server under many connections: thousands of idle keep-alive clients and
 * half-sent requests (slowloris) must not shut out a new client, while the limits that are
 * set (an explicit connection limit, a per-address limit, the request deadline) hold; durable
 * appends on many connections at once, whose answers are deferred and resumed a commit at a
 * time, are each answered once. Real sockets on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fdn/admin.h>
#include <fdn/events.h>

#include "admin_local.h"
#include "distinct.h"
#include "event_make.h"
#include "tmpdir.h"

static const char REQ[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* a bound on every read: a server that never answers fails the test, it does not hang (a
     * minute: a loaded machine running sanitizer builds can stall a commit or a server thread
     * for seconds, and ctest's TIMEOUT is 180 s) */
    struct timeval tv = {60, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

/* Read one response (headers and a Content-Length body); returns its status, or 0 when the
 * server closed the connection (or the read timed out) first. With body, the body is copied
 * there (NUL-terminated, up to cap - 1 bytes). */
static int read_response_body(int fd, char *body, size_t cap)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0)
            return 0;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strstr(buf, "Content-Length: ");
        size_t len = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - buf) + len) {
            int status = 0;
            if (body != NULL) {
                size_t n = len < cap - 1 ? len : cap - 1;
                memcpy(body, end + 4, n);
                body[n] = '\0';
            }
            return sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : -1;
        }
        if (have == sizeof(buf) - 1)
            return -1;
    }
}

static int read_response(int fd)
{
    return read_response_body(fd, NULL, 0);
}

/* A keep-alive client that made one request and stays connected. */
static int idle_client(uint16_t port)
{
    int fd = dial(port);
    send_all(fd, REQ, sizeof(REQ) - 1);
    assert_int_equal(read_response(fd), 200);
    return fd;
}

/* test_admin_local(o, m), started */
static fdn_admin_t *start(const fdn_admin_opts_t *o, const test_admin_mounts_t *m)
{
    fdn_admin_t *a = test_admin_local(o, m);
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_admin_start(a, &err) != 0)
        fail_msg("fdn_admin_start: %s", err.message);
    return a;
}

static int fresh_health(uint16_t port)
{
    int fd = dial(port);
    send_all(fd, REQ, sizeof(REQ) - 1);
    int status = read_response(fd);
    close(fd);
    return status;
}

/* Room for n client sockets and the server's n (and some for the rest). */
static size_t fit(size_t want)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    size_t room = rl.rlim_cur > 600 ? (size_t)(rl.rlim_cur - 600) / 2 : 0;
    return want < room ? want : room;
}

static void thousands_of_idle_and_slow_clients_do_not_shut_out_a_new_one(void **state)
{
    (void)state;
    size_t n = fit(3000);
    if (n < 200)
        skip(); /* this machine's open-file limit cannot hold the test */
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    /* the clients below stay for the whole test: making 3000 connections and 2000 requests
     * one after the other takes seconds, and much longer on a loaded machine (a sanitizer
     * build, both cores busy), which must not see the first ones time out */
    o.idle_timeout_s = 600;
    fdn_admin_t *a = start(&o, NULL);
    assert_true(fdn_admin_max_connections(a) >= n + 16);
    uint16_t port = fdn_admin_port(a);
    int *fds = calloc(n, sizeof(int));
    assert_non_null(fds);
    size_t idle = n * 2 / 3;
    for (size_t i = 0; i < idle; i++)
        fds[i] = idle_client(port);
    /* slowloris: requests whose headers never end */
    static const char SLOW[] = "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    for (size_t i = idle; i < n; i++) {
        fds[i] = dial(port);
        send_all(fds[i], SLOW, sizeof(SLOW) - 1);
    }
    for (int k = 0; k < 5; k++)
        assert_int_equal(fresh_health(port), 200);
    /* the idle ones are still served on their own connections */
    send_all(fds[0], REQ, sizeof(REQ) - 1);
    assert_int_equal(read_response(fds[0]), 200);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    fdn_admin_destroy(a);
}

/* Limits that are set hold: a fixed connection limit (the old default of 64 shut out the 65th
 * client for the idle timeout), and a per-address limit. */
static void explicit_limits_hold(void **state)
{
    (void)state;
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.idle_timeout_s = 60;
    o.max_connections = 16;
    fdn_admin_t *a = start(&o, NULL);
    assert_int_equal(fdn_admin_max_connections(a), 16);
    uint16_t port = fdn_admin_port(a);
    int fds[16];
    for (int i = 0; i < 16; i++)
        fds[i] = idle_client(port);
    /* the 17th waits (in the listen backlog: the server accepts no more) and is not answered;
     * the wait below only bounds a check that nothing arrives, so a slow machine cannot fail
     * it */
    int late = dial(port);
    send_all(late, REQ, sizeof(REQ) - 1);
    struct pollfd pf = {.fd = late, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 500), 0);
    close(fds[0]); /* a slot comes free: the waiting client is served */
    assert_int_equal(read_response(late), 200);
    close(late);
    for (int i = 1; i < 16; i++)
        close(fds[i]);
    fdn_admin_destroy(a);

    o.max_connections = 0;
    o.max_connections_per_ip = 4;
    a = start(&o, NULL);
    port = fdn_admin_port(a);
    for (int i = 0; i < 4; i++)
        fds[i] = idle_client(port);
    assert_int_equal(fresh_health(port), 0); /* a fifth from 127.0.0.1: closed at once */
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    fdn_admin_destroy(a);

    /* version-1 options (no per-address field) are still accepted */
    fdn_admin_opts_t v1 = FDN_ADMIN_OPTS_INIT;
    v1.version = 1;
    v1.max_connections = 64;
    fdn_admin_t *b = test_admin_local(&v1, NULL);
    assert_int_equal(fdn_admin_max_connections(b), 64);
    fdn_admin_destroy(b);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects, sends `head` whole, then `drip` one byte every 100 ms (cycling) until the server
 * closes the connection; returns the seconds from just before the connect (the server's deadline
 * starts at its accept, which is after that, however late this thread runs) to the close, or -1
 * after `limit_s`. */
static double drip_until_closed(uint16_t port, const char *head, const char *drip, double limit_s)
{
    double t0 = now_s();
    int fd = dial(port);
    send_all(fd, head, strlen(head));
    size_t i = 0, n = strlen(drip);
    double out = -1;
    while (now_s() - t0 < limit_s) {
        if (send(fd, drip + i++ % n, 1, MSG_NOSIGNAL) != 1) {
            out = now_s() - t0; /* reset by the server */
            break;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) == 1) {
            char buf[256];
            if (recv(fd, buf, sizeof buf, 0) <= 0) {
                out = now_s() - t0;
                break;
            }
        }
    }
    close(fd);
    return out;
}

/* request_timeout_s bounds the time of a whole request, which the idle timeout never does for
 * a client sending a byte at a time: headers that never end and a body that never ends are cut
 * after the deadline (not before), requests that arrive in time are served, and a keep-alive
 * connection idles for the idle timeout before its next request's deadline starts. */
static void slow_requests_are_cut_at_the_request_deadline(void **state)
{
    (void)state;
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.idle_timeout_s = 60;
    o.request_timeout_s = 1;
    fdn_admin_t *a = start(&o, NULL);
    uint16_t port = fdn_admin_port(a);

    /* never before the deadline (1 s; the server's coarse clock may read up to a tick, a few
     * ms, early), and cut: a byte every 100 ms keeps the idle timeout from ever ending the
     * connection, so nothing else does within the 30 s the drip lasts (-1 fails too) */
    double t = drip_until_closed(port, "GET /health HTTP/1.1\r\nHost: t\r\n", "X-Slow: x\r\n", 30);
    assert_true(t >= 0.9);
    t = drip_until_closed(
        port, "POST /v1/nothing HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", "{", 30);
    assert_true(t >= 0.9);
    assert_int_equal(fresh_health(port), 200);

    /* a keep-alive client idle past request_timeout_s is still served on its connection */
    int fd = idle_client(port);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 1500), 0); /* the server does not close it meanwhile */
    send_all(fd, REQ, sizeof(REQ) - 1);
    assert_int_equal(read_response(fd), 200);
    close(fd);
    fdn_admin_destroy(a);

    /* the next request of a keep-alive connection: its deadline is the end of the previous
     * response + idle_timeout_s + request_timeout_s; dripping its headers (so that the
     * connection is never idle) does not hold the connection past that. An idle timeout of
     * 10 s, not 1: this thread must not look idle to the server (a stall of the idle timeout,
     * after the response or between two drips, would let MHD close the connection early),
     * and a loaded machine running a sanitizer can stall it for seconds (3 s was left as a
     * risk: it costs the test 7 s more) */
    o.idle_timeout_s = 10;
    a = start(&o, NULL);
    port = fdn_admin_port(a);
    /* timed from before the first request: its response ends after t0, however late this
     * thread runs once it has the response */
    double t0 = now_s();
    fd = idle_client(port);
    static const char NEXT[] = "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    send_all(fd, NEXT, sizeof(NEXT) - 1);
    double cut = -1;
    while (now_s() - t0 < 30) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
            cut = now_s() - t0;
            break;
        }
        pf.revents = 0;
        if (poll(&pf, 1, 100) == 1) {
            char buf[256];
            if (recv(fd, buf, sizeof buf, 0) <= 0) {
                cut = now_s() - t0;
                break;
            }
        }
    }
    close(fd);
    /* idle 10 s + request 1 s after the response (not 1 s: that cut would come ~1 s after t0
     * unless the first request took 9.9 s), and cut within the 30 s of dripping */
    assert_true(cut >= 10.9);
    fdn_admin_destroy(a);

    /* version-3 options (no request_timeout_s) get the default deadline */
    fdn_admin_opts_t v3 = FDN_ADMIN_OPTS_INIT;
    v3.version = 3;
    fdn_admin_t *b = test_admin_local(&v3, NULL);
    fdn_admin_destroy(b);
}

/* Durable appends on many keep-alive connections at once: each request is deferred (its
 * connection suspended) until the store's writer has committed it, and a commit completes the
 * requests of many connections, of both server threads, together. Those completions are resumed
 * a server thread at a time (src/admin/http.c, "Resumes": the first one of a list resumes its
 * connection, the server thread resumes the others); a resume that got lost would leave its
 * client without an answer (the read below times out after 10 s and the test fails), one made
 * twice would break that connection's next suspension. Every POST must get its own 201 and id,
 * also while other clients go away with their requests pending, and the store must hold every
 * acknowledged event. */
enum { DUR_CONNS = 24, DUR_GONE = 4, DUR_ROUNDS = 40 };

static void durable_posts_on_many_connections_each_answered_once(void **state)
{
    (void)state;
    test_tmpfile_t tf;
    assert_int_equal(test_tmpfile_make(&tf, "http-conns", "events.db"), 0);
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = tf.path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.threads = 2;
    o.idle_timeout_s = 60;
    fdn_admin_t *a = start(&o, &(test_admin_mounts_t){.events = es});
    uint16_t port = fdn_admin_port(a);
    static const char POST[] = "POST /v1/events HTTP/1.1\r\nHost: t\r\n"
                               "Content-Type: application/json\r\nContent-Length: 29\r\n\r\n"
                               "{\"type\":\"conn.post\",\"data\":1}";
    int fds[DUR_CONNS];
    for (int i = 0; i < DUR_CONNS; i++)
        fds[i] = dial(port);
    static uint64_t ids[DUR_CONNS * DUR_ROUNDS];
    size_t n = 0;
    for (int r = 0; r < DUR_ROUNDS; r++) {
        /* clients that go away while their request waits for its commit: its connection is
         * resumed (by its completer or by the list) only to find the client gone, and that
         * must not cost the other requests of the list their resume */
        int gone[DUR_GONE];
        for (int i = 0; i < DUR_GONE; i++) {
            gone[i] = dial(port);
            send_all(gone[i], POST, sizeof(POST) - 1);
        }
        for (int i = 0; i < DUR_CONNS; i++) /* all in flight together */
            send_all(fds[i], POST, sizeof(POST) - 1);
        for (int i = 0; i < DUR_GONE; i++)
            close(gone[i]);
        for (int i = 0; i < DUR_CONNS; i++) {
            char body[128];
            int status = read_response_body(fds[i], body, sizeof body);
            if (status != 201)
                fail_msg("round %d, connection %d: status %d (0: no answer)", r, i, status);
            const char *p = strstr(body, "{\"id\":");
            assert_non_null(p);
            ids[n++] = strtoull(p + 6, NULL, 10);
        }
    }
    for (int i = 0; i < DUR_CONNS; i++)
        close(fds[i]);
    fdn_admin_destroy(a);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    /* the acknowledged ones, and those of the clients that went away once they were read */
    assert_in_range(st.events_stored, n, n + (size_t)DUR_GONE * DUR_ROUNDS);
    assert_int_equal(st.durable_committed_id, st.newest_id);
    test_expect_distinct_u64(ids, n, "event id");
    test_events_expect_stored(es, ids, n, NULL);
    fdn_events_destroy(es);
    test_tmpfile_remove(&tf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thousands_of_idle_and_slow_clients_do_not_shut_out_a_new_one),
        cmocka_unit_test(explicit_limits_hold),
        cmocka_unit_test(slow_requests_are_cut_at_the_request_deadline),
        cmocka_unit_test(durable_posts_on_many_connections_each_answered_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
