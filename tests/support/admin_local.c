/* DESIGN: the admin server of a test (admin_local.h). Runs on the test thread only; it keeps
 * no state. */
#include "admin_local.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include <fdn/error.h>

#include "admin/admin_int.h"

static void check(int rc, const char *step)
{
    if (rc != 0)
        fail_msg("test_admin_local: %s: %s (%d)", step, fdn_strerror(rc), rc);
}

fdn_admin_t *test_admin_local(const fdn_admin_opts_t *o, const test_admin_mounts_t *m)
{
    fdn_admin_opts_t opts = FDN_ADMIN_OPTS_INIT;
    if (o != NULL)
        opts = *o;
    opts.listen = "127.0.0.1:0";
    fdn_admin_t *a = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_admin_create(&a, &opts, &err);
    if (rc != 0)
        fail_msg("test_admin_local: fdn_admin_create: %s (%d): %s", fdn_strerror(rc), rc,
                 err.message);
    if (m == NULL)
        return a;
/* mount m->field with fdn_admin_mount_<field> when it is set */
#define MOUNT(field)                                                                               \
    do {                                                                                           \
        if (m->field != NULL)                                                                      \
            check(fdn_admin_mount_##field(a, m->field), "fdn_admin_mount_" #field);                \
    } while (0)
    MOUNT(runtime);
    MOUNT(events);
    MOUNT(config);
    MOUNT(breakers);
    MOUNT(limiter);
    MOUNT(pools);
    MOUNT(telemetry);
#undef MOUNT
    return a;
}

int test_admin_raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

int test_admin_raw_get(uint16_t port, const char *uri)
{
    int fd = test_admin_raw_connect(port);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", uri);
    assert_true(n > 0 && (size_t)n < sizeof req);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    return fd;
}

char *test_admin_health(fdn_admin_t *a, unsigned *status)
{
    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/health", NULL, NULL, 0, &r);
    *status = r.status;
    assert_non_null(r.json);
    char *t = json_dumps(r.json, JSON_COMPACT);
    assert_non_null(t);
    fdn__http_resp_clear(&r);
    return t;
}
