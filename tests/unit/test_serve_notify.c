/* Unit tests of fdn serve's service-manager notifications (tools/fdn/serve_notify.c, compiled
 * into this test): the test owns NOTIFY_SOCKET (a Unix datagram socket it binds) and a test
 * runtime with one application service. It checks that without NOTIFY_SOCKET nothing is
 * active, that the thread sends the health summary as STATUS= and again after another status
 * replaced it (what a restart does), WATCHDOG=1 pings while the supervisor answers, that they
 * stop once the runtime escalated (STATUS= names the failure), and that stop joins the thread.
 * Messages are awaited with blocking receives bounded by a timeout, never with sleeps. Skipped
 * in a build without libsystemd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fdn/runtime.h>
#include <fdn/testing.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../tools/fdn/serve_notify.c"

typedef struct svc {
    int dummy;
} svc_t;

static int svc_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)state;
    (void)ctx;
    (void)err;
    return 0;
}

static void svc_stop(void *state)
{
    (void)state;
}

static const fdn_service_ops_t SVC_OPS = {svc_start, svc_stop, NULL, NULL, NULL};

/* the test's end of NOTIFY_SOCKET */
static int bind_socket(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/fdn-notify-test.%ld", (long)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Next message within timeout_ms, or "" on timeout. */
static void recv_msg(int fd, int timeout_ms, char *buf, size_t cap)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* Receive until a message starts with prefix (within 10 s in all); counts WATCHDOG=1 seen. */
static bool wait_for(int fd, const char *prefix, char *buf, size_t cap, int *pings)
{
    for (int i = 0; i < 1000; i++) {
        recv_msg(fd, 10000, buf, cap);
        if (buf[0] == '\0')
            return false;
        if (pings != NULL && strcmp(buf, "WATCHDOG=1") == 0)
            (*pings)++;
        if (strncmp(buf, prefix, strlen(prefix)) == 0)
            return true;
    }
    return false;
}

static void inactive_without_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    serve_notify_t n;
    serve_notify_init(&n);
    assert_false(n.active);
    serve_notify_send(&n, "READY=1");    /* no-op */
    serve_notify_status(&n, "anything"); /* no-op */
    assert_int_equal(serve_notify_thread_start(&n, NULL), 0);
    assert_false(n.thread_started);
    serve_notify_fini(&n);
}

static void status_watchdog_and_escalation(void **state)
{
    (void)state;
#ifndef FDN_HAVE_SYSTEMD
    skip();
#else
    char path[108], buf[600];
    int fd = bind_socket(path, sizeof path);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "100000", 1); /* a ping every 50 ms */
    unsetenv("WATCHDOG_PID");

    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.flags = FDN_RUNTIME_NO_BUILTINS;
    ro.max_restarts = 0; /* the first failure escalates */
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_testing_runtime_create(&rt, &ro, NULL), 0);
    static svc_t s;
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "worker";
    spec.ops = &SVC_OPS;
    spec.state = &s;
    assert_int_equal(fdn_runtime_add_service(rt, &spec, NULL), 0);

    serve_notify_t n;
    serve_notify_init(&n);
    assert_true(n.active);
    assert_int_equal(n.wd_usec, 100000);
    assert_int_equal(serve_notify_thread_start(&n, rt), 0);

    /* the health summary, then pings */
    assert_true(wait_for(fd, "STATUS=", buf, sizeof buf, NULL));
    assert_non_null(strstr(buf, "healthy"));
    assert_non_null(strstr(buf, "services running"));
    int pings = 0;
    while (pings < 3)
        assert_true(wait_for(fd, "WATCHDOG=1", buf, sizeof buf, &pings));

    /* another status (a restart's) is sent at once and replaced by the summary later */
    serve_notify_status(&n, "restarting service worker");
    assert_true(wait_for(fd, "STATUS=restarting service worker", buf, sizeof buf, NULL));
    assert_true(wait_for(fd, "STATUS=", buf, sizeof buf, NULL));
    assert_non_null(strstr(buf, "healthy"));

    /* escalation: the summary says failed, and the pings stop (at most one computed before
     * the failure may follow the status) */
    assert_int_equal(fdn_runtime_inject_fault(rt, "worker", FDN_EIO), 0);
    assert_true(wait_for(fd, "STATUS=failed", buf, sizeof buf, NULL));
    int late = 0;
    for (;;) {
        recv_msg(fd, 500, buf, sizeof buf); /* 10 ping intervals */
        if (buf[0] == '\0')
            break;
        assert_string_equal(buf, "WATCHDOG=1");
        assert_true(++late <= 1);
    }

    serve_notify_stop(&n);
    assert_false(n.thread_started);
    serve_notify_send(&n, "STOPPING=1");
    recv_msg(fd, 10000, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1");
    serve_notify_fini(&n);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    close(fd);
    unlink(path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
#endif
}

static void status_text(void **state)
{
    (void)state;
    fdn_runtime_health_t h = {FDN_RUNTIME_DEGRADED, 6, 5, 1, 0, 0, 0};
    char buf[256];
    serve_notify_status_text(&h, buf, sizeof buf);
    assert_string_equal(buf, "degraded: 5/6 services running, restarting 1");
    h = (fdn_runtime_health_t){FDN_RUNTIME_HEALTHY, 6, 6, 0, 0, 0, 0};
    serve_notify_status_text(&h, buf, sizeof buf);
    assert_string_equal(buf, "healthy: 6/6 services running");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inactive_without_socket),
        cmocka_unit_test(status_text),
        cmocka_unit_test(status_watchdog_and_escalation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
