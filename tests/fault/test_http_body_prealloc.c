/* Fault test: clients that send a request's headers with a large Content-Length and then no
 * body. The server must not reserve the announced size per connection (many such clients
 * would exhaust its memory while the request deadline runs): it keeps a small bounded buffer
 * until bytes arrive and grows it as they do. Measured with a byte-counting allocator
 * (installed before any other fdn call, so every block the library holds is counted). The
 * headers carry "Expect: 100-continue": libmicrohttpd answers "100 Continue" once the access
 * handler has taken the headers, so reading it is the synchronisation (no sleeps). Then each
 * client sends its whole body, which must reach the handler byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/socket.h>
#include <unistd.h>

#include <fdn/admin.h>

#include "admin/admin_int.h"
#include "admin_local.h"

/* ---- a byte-counting allocator: a 16-byte header holds each block's size */

static atomic_llong g_live;

static void *cnt_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    atomic_fetch_add_explicit(&g_live, (long long)n, memory_order_relaxed);
    return (char *)p + 16;
}

static void cnt_free(void *q)
{
    if (q == NULL)
        return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    atomic_fetch_sub_explicit(&g_live, (long long)p[0], memory_order_relaxed);
    free(p);
}

static void *cnt_realloc(void *q, size_t n)
{
    if (q == NULL)
        return cnt_malloc(n);
    size_t *p = (size_t *)(void *)((char *)q - 16);
    size_t old = p[0];
    size_t *np = realloc(p, n + 16);
    if (np == NULL)
        return NULL;
    np[0] = n;
    atomic_fetch_add_explicit(&g_live, (long long)n - (long long)old, memory_order_relaxed);
    return (char *)np + 16;
}

/* ---- the server side */

/* Answers 201 {"len":N,"ok":B}: B whether the body is N bytes of the client's pattern. */
static int h_len(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)user;
    bool ok = true;
    for (size_t i = 0; i < req->body_len && ok; i++)
        ok = req->body[i] == (char)('a' + i % 26);
    return fdn__http_reply(resp, 201,
                           json_pack("{s:I, s:b}", "len", (json_int_t)req->body_len, "ok", ok));
}

/* ---- the client side */

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

/* Reads until `until` has been seen (or the peer closes); the text read in buf. */
static void read_until(int fd, char *buf, size_t cap, const char *until)
{
    size_t len = 0;
    buf[0] = '\0';
    while (strstr(buf, until) == NULL && len < cap - 1) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
    }
}

#define CLIENTS 4
#define BODY    (3u << 20) /* 3 MiB announced by each client */

static void headers_only_clients_reserve_little(void **state)
{
    (void)state;
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.threads = 1;
    o.max_body_bytes = 4u << 20;
    fdn_admin_t *a = test_admin_local(&o, NULL);
    assert_int_equal(fdn__admin_route_add(a, "POST", "/x", h_len, NULL), 0);
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = fdn_admin_port(a);

    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "POST /x HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %u\r\nExpect: 100-continue\r\n\r\n",
                     BODY);
    char buf[4096];
    int fds[CLIENTS];
    long long before = atomic_load(&g_live);
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = test_admin_raw_connect(port);
        send_all(fds[i], hdr, (size_t)n);
        read_until(fds[i], buf, sizeof buf, "\r\n\r\n");
        if (strstr(buf, "100 Continue") == NULL)
            fail_msg("client %d: no 100 Continue: %s", i, buf);
    }
    long long held = atomic_load(&g_live) - before;
    /* the headers of every client have been taken: the buffers the server holds for their
     * bodies are small (it reserved BODY bytes per client before) */
    if (held >= (long long)CLIENTS * 64 * 1024)
        fail_msg("%d clients that sent only headers hold %lld bytes", CLIENTS, held);

    /* the bodies, in pieces: each reaches the handler whole */
    char *body = malloc(BODY);
    assert_non_null(body);
    for (unsigned i = 0; i < BODY; i++)
        body[i] = (char)('a' + i % 26);
    for (int i = 0; i < CLIENTS; i++) {
        for (size_t off = 0; off < BODY; off += 100000)
            send_all(fds[i], body + off, BODY - off < 100000 ? BODY - off : 100000);
        read_until(fds[i], buf, sizeof buf, "}");
        char want[64];
        snprintf(want, sizeof want, "{\"len\":%u,\"ok\":true}", BODY);
        if (strstr(buf, "201") == NULL || strstr(buf, want) == NULL)
            fail_msg("client %d: %s", i, buf);
        close(fds[i]);
    }
    free(body);
    fdn_admin_shutdown(a);
    fdn_admin_destroy(a);
}

int main(void)
{
    static const fdn_allocator_t al = {cnt_malloc, cnt_realloc, cnt_free};
    if (fdn_set_allocator(&al) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_only_clients_reserve_little),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
