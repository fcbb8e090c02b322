/* Consumer of an installed fdn_admin, built by tests/integration/test_install.sh through
 * pkg-config fdn-admin (shared and static) and find_package(fdn COMPONENTS admin): starts an
 * admin server on a free loopback port with one metrics writer (its buffer allocated with
 * fdn_malloc, as fdn_admin_metrics_fn asks), fetches GET /metrics over a plain socket and
 * checks the writer's line and the server's own counter are in the answer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fdn/admin.h>
#include <fdn/fdn.h>

static int metrics(char **out, size_t *len, void *user)
{
    (void)user;
    static const char text[] = "# TYPE consumer_metric gauge\nconsumer_metric 42\n";
    char *p = fdn_malloc(sizeof text);
    if (p == NULL)
        return FDN_ENOMEM;
    memcpy(p, text, sizeof text);
    *out = p;
    *len = sizeof text - 1;
    return 0;
}

/* GET path from 127.0.0.1:port with HTTP/1.0 (the server closes after answering); the whole
 * answer goes into buf. Returns the bytes read or -1. */
static long get(uint16_t port, const char *path, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, req, (size_t)n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    return (long)got;
}

int main(void)
{
    fdn_admin_opts_t opts = FDN_ADMIN_OPTS_INIT;
    opts.listen = "127.0.0.1:0";
    fdn_admin_t *a = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_admin_create(&a, &opts, &err);
    if (rc == 0)
        rc = fdn_admin_add_metrics(a, metrics, NULL);
    if (rc == 0)
        rc = fdn_admin_start(a, &err);
    if (rc != 0) {
        fprintf(stderr, "admin: %s: %s\n", fdn_err_name(rc), err.message);
        fdn_admin_destroy(a);
        return 1;
    }
    static char buf[1 << 16];
    long n = get(fdn_admin_port(a), "/metrics", buf, sizeof buf);
    fdn_admin_shutdown(a);
    fdn_admin_destroy(a);
    if (n <= 0 || strncmp(buf, "HTTP/1.", 7) != 0 || strstr(buf, " 200 ") == NULL ||
        strstr(buf, "\nconsumer_metric 42\n") == NULL ||
        strstr(buf, "fdn_http_requests_total") == NULL) {
        fprintf(stderr, "unexpected answer to GET /metrics (%ld bytes):\n%s\n", n, buf);
        return 1;
    }
    printf("fdn_admin %s ok\n", fdn_version());
    return 0;
}
