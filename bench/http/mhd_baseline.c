/*
 * DESIGN: the baseline of the HTTP benchmarks (bench/http_bench.sh): the least a libmicrohttpd
 * server can do per request, with the thread settings of `fdn serve`'s admin server
 * (src/admin/http.c: MHD_USE_AUTO_INTERNAL_THREAD, a pool of `threads` polling threads, the
 * same connection limit, timeout and per-connection memory). Every request, whatever its
 * method or path, is answered 200 with the constant 2-byte body "ok" from a response made once
 * (MHD_RESPMEM_PERSISTENT); a request body is read and discarded. Threads: MHD's only; no
 * locks, no state besides the response. Prints "listening on http://127.0.0.1:PORT" once
 * serving (the port is 0 = any free one unless given), then runs until SIGTERM or SIGINT.
 *
 * usage: fdn-http-baseline [PORT [THREADS [BYTES]]]  (BYTES: body size, default 2)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static struct MHD_Response *g_ok;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    static int first;
    if (*req_cls == NULL) { /* headers: ask for the body (if any) */
        *req_cls = &first;
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* discard the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(con, MHD_HTTP_OK, g_ok);
}

int main(int argc, char **argv)
{
    unsigned port = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0;
    unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2;
    /* BYTES (default 2, "ok"): a constant body of that size instead, to price the sending of
     * a large answer (GET /metrics is ~16 KB) apart from producing it */
    unsigned long bytes = argc > 3 ? strtoul(argv[3], NULL, 10) : 2;
    if (port > 65535 || threads == 0 || threads > 64 || bytes < 2 || bytes > (1ul << 24)) {
        fprintf(stderr, "usage: fdn-http-baseline [PORT [THREADS [BYTES]]]\n");
        return 2;
    }
    static const char ok[] = "ok";
    char *body = (char *)ok;
    if (bytes > 2) {
        body = malloc(bytes);
        if (body == NULL)
            return 1;
        for (unsigned long i = 0; i < bytes; i++)
            body[i] = i % 64 == 63 ? '\n' : 'x';
    }
    g_ok = MHD_create_response_from_buffer(bytes, body, MHD_RESPMEM_PERSISTENT);
    if (g_ok == NULL)
        return 1;
    MHD_add_response_header(g_ok, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask */
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16u * 1024u), MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "fdn-http-baseline: cannot start on port %u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://127.0.0.1:%u\n", info ? (unsigned)info->port : port);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(g_ok);
    return 0;
}
