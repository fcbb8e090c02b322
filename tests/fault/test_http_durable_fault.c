/* Fault test: the event store's writer fails (a real I/O error: the file size limit) while
 * clients post events over HTTP. The request whose commit fails must be answered 500, never
 * 201, and so must every later append (the writer's error is latched until a restart); every
 * event answered 201 is in the file, and only those. Runs in a child process because the
 * limit is process-wide; the child reports the acknowledged ids through a pipe and the parent
 * reopens the file without the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/admin.h>
#include <fdn/events.h>

#include "http_client.h"
#include "event_make.h"
#include "fsize_limit.h"
#include "tmpdir.h"

#define MAX_POSTS 400

/* The child: exit code 0 when the server answered as it must; the acknowledged ids go to fd. */
static int child(const char *path, int fd)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = path;
    eo.compress = false;
    fdn_events_t *es = NULL;
    if (fdn_events_create(&es, &eo, NULL) != 0)
        return 10;
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.listen = "127.0.0.1:0";
    fdn_admin_t *a = NULL;
    if (fdn_admin_create(&a, &o, NULL) != 0 || fdn_admin_mount_events(a, es) != 0 ||
        fdn_admin_start(a, NULL) != 0)
        return 11;
    if (test_fsize_limit(256 * 1024) != 0)
        return 12;
    /* 20 000 bytes of data per event: the limit stops the writer after a dozen commits */
    static char body[20100];
    size_t len = (size_t)snprintf(body, sizeof body, "{\"type\":\"io.http\",\"data\":\"");
    for (int i = 0; i < 20000; i++)
        body[len++] = (char)('a' + (unsigned)(i * 2654435761u >> 13) % 26);
    memcpy(body + len, "\"}", 3);
    CURL *c = curl_easy_init();
    test_http_sink_t s;
    int rc = 13; /* no failure seen */
    int posts = 0;
    for (; posts < MAX_POSTS; posts++) {
        uint64_t id;
        long st = test_http_post_event(c, fdn_admin_port(a), body, &s, 60L, &id);
        if (st == 201 && id != 0) {
            if (write(fd, &id, sizeof id) != (ssize_t)sizeof id)
                return 14;
            continue;
        }
        rc = st == 500 && strstr(s.buf, "\"error\"") != NULL ? 0 : 15;
        break;
    }
    /* latched: a later append fails at once, also 500 */
    if (rc == 0 && test_http_post(c, fdn_admin_port(a), "/v1/events",
                                  "{\"type\":\"io.after\",\"data\":1}", &s, 60L) != 500)
        rc = 16;
    if (rc == 0 && posts == 0)
        rc = 17; /* the first commit failing would prove nothing about the 201s */
    curl_easy_cleanup(c);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
    curl_global_cleanup();
    return rc;
}

static void writer_error_answers_500_not_201(void **state)
{
    (void)state;
    test_tmpfile_t tf;
    assert_int_equal(test_tmpfile_make(&tf, "http-fault", "events.db"), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int rc = child(tf.path, fds[1]);
        close(fds[1]);
        _exit(rc);
    }
    close(fds[1]);
    uint64_t acked[MAX_POSTS];
    size_t n = 0;
    while (n < MAX_POSTS && read(fds[0], &acked[n], sizeof acked[n]) == (ssize_t)sizeof acked[n])
        n++;
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(n > 0);

    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = tf.path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, n); /* the acknowledged events, and only those */
    test_events_expect_stored(es, acked, n, NULL);
    fdn_events_destroy(es);
    test_tmpfile_remove(&tf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(writer_error_answers_500_not_201)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
