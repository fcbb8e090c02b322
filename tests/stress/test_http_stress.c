/* Stress test of the admin HTTP server: T client threads (libcurl, one connection each) post
 * events and run limiter checks concurrently against a real server on an ephemeral loopback
 * port with small server thread pool. Invariants checked at the end: every POST got 201 and a
 * distinct id, the store holds exactly the posted events, the limiter allowed exactly `limit`
 * checks of the shared key, and the server's own 2xx/4xx counters add up. Runs under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "distinct.h"
#include "stress.h"
#include "http_client.h"
#include "threads.h"

#define THREADS 4

typedef struct client {
    uint16_t port;
    int n;
    uint64_t *ids;
    int created, allowed, limited, other;
} client_t;

static void *client_main(void *arg)
{
    client_t *cl = arg;
    CURL *c = curl_easy_init();
    test_http_sink_t s;
    for (int i = 0; c != NULL && i < cl->n; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"type\":\"stress.ev\",\"data\":{\"i\":%d}}", i);
        uint64_t id;
        if (test_http_post_event(c, cl->port, body, &s, 30L, &id) == 201 && id != 0)
            cl->ids[cl->created++] = id;
        else
            cl->other++;
        long st = test_http_post(c, cl->port, "/v1/limiter/check",
                                 "{\"key\":\"shared\",\"limit\":50,\"window_ms\":3600000,"
                                 "\"algorithm\":\"sliding_window\"}",
                                 &s, 30L);
        if (st == 200)
            cl->allowed++;
        else if (st == 429)
            cl->limited++;
        else
            cl->other++;
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void concurrent_clients(void **state)
{
    (void)state;
    int n = (int)test_stress_iters(100, 99999);
    fdn_events_t *es = NULL;
    fdn_limiter_t *lim = NULL;
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    assert_int_equal(fdn_limiter_create(&lim, NULL), 0);
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.threads = 2;
    fdn_admin_t *a = test_admin_local(&o, &(test_admin_mounts_t){.events = es, .limiter = lim});
    assert_int_equal(fdn_admin_start(a, NULL), 0);

    client_t cl[THREADS];
    test_threads_t threads;
    test_threads_init(&threads, 0);
    uint64_t *all = calloc((size_t)(THREADS * n), sizeof *all);
    assert_non_null(all);
    for (int t = 0; t < THREADS; t++) {
        memset(&cl[t], 0, sizeof cl[t]);
        cl[t].port = fdn_admin_port(a);
        cl[t].n = n;
        cl[t].ids = all + (size_t)t * (size_t)n;
    }
    test_threads_start_n(&threads, THREADS, client_main, cl, sizeof(cl[0]));
    test_threads_join(&threads);
    int created = 0, allowed = 0, limited = 0, other = 0;
    for (int t = 0; t < THREADS; t++) {
        created += cl[t].created;
        allowed += cl[t].allowed;
        limited += cl[t].limited;
        other += cl[t].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(created, THREADS * n);
    assert_int_equal(allowed, THREADS * n < 50 ? THREADS * n : 50);
    assert_int_equal(allowed + limited, THREADS * n);
    test_expect_distinct_u64(all, (size_t)created, "event id");
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, (uint64_t)created);

    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    char want[96];
    snprintf(want, sizeof want, "fdn_http_requests_total{status_class=\"4xx\"} %d\n", limited);
    assert_non_null(strstr(r.text, want));
    fdn__http_resp_clear(&r);

    fdn_admin_destroy(a);
    fdn_limiter_destroy(lim);
    fdn_events_destroy(es);
    free(all);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(concurrent_clients)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
