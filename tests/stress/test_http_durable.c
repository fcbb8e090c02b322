/* Stress test of durable appends over HTTP: many libcurl clients (one keep-alive connection
 * each, more clients than server threads) post single events and batches to a real admin
 * server whose event store is durable (SQLite, fsynced group commits). The server suspends
 * each append until the writer's commit holds it, so the connections share commits. Checked at
 * the end: every answer was 201, the acknowledged ids are distinct, and after the server and
 * the store are closed, the reopened file holds exactly the acknowledged events, each under its
 * acknowledged id. Runs under ASan and TSan (label stress). */
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
#include <sched.h>

#include <fdn/admin.h>
#include <fdn/events.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "distinct.h"
#include "stress.h"
#include "event_make.h"
#include "http_client.h"
#include "threads.h"
#include "tmpdir.h"

#define CLIENTS 12
#define BATCH   10

typedef struct client {
    uint16_t port;
    int n;         /* requests */
    uint64_t *ids; /* room for n * BATCH ids */
    size_t nids;
    int other;
    int index;
} client_t;

static void *client_main(void *arg)
{
    client_t *cl = arg;
    CURL *c = curl_easy_init();
    test_http_sink_t s;
    char body[1024];
    for (int i = 0; c != NULL && i < cl->n; i++) {
        if (i % 5 == 4) { /* every fifth request a batch */
            size_t len = (size_t)snprintf(body, sizeof body, "{\"events\":[");
            for (int k = 0; k < BATCH; k++)
                len += (size_t)snprintf(body + len, sizeof body - len,
                                        "%s{\"type\":\"dur.batch\",\"data\":{\"c\":%d,\"i\":%d}}",
                                        k ? "," : "", cl->index, i);
            snprintf(body + len, sizeof body - len, "]}");
            long st = test_http_post(c, cl->port, "/v1/events/batch", body, &s, 60L);
            const char *p = strstr(s.buf, "\"ids\":[");
            if (st != 201 || p == NULL) {
                cl->other++;
                continue;
            }
            p += 7;
            for (int k = 0; k < BATCH; k++) {
                char *end = NULL;
                cl->ids[cl->nids++] = strtoull(p, &end, 10);
                p = end + 1;
            }
            continue;
        }
        snprintf(body, sizeof body, "{\"type\":\"dur.one\",\"data\":{\"c\":%d,\"i\":%d}}",
                 cl->index, i);
        uint64_t id;
        if (test_http_post_event(c, cl->port, body, &s, 60L, &id) == 201 && id != 0)
            cl->ids[cl->nids++] = id;
        else
            cl->other++;
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void durable_posts_all_acknowledged_are_stored(void **state)
{
    (void)state;
    int n = (int)test_stress_iters(40, 99999);
    test_tmpfile_t tf;
    assert_int_equal(test_tmpfile_make(&tf, "http-durable", "events.db"), 0);

    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = tf.path;
    eo.mode = FDN_EVENTS_DURABLE;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.threads = 2;
    fdn_admin_t *a = test_admin_local(&o, &(test_admin_mounts_t){.events = es});
    assert_int_equal(fdn_admin_start(a, NULL), 0);

    client_t cl[CLIENTS];
    uint64_t *all = calloc((size_t)CLIENTS * (size_t)n * BATCH, sizeof *all);
    assert_non_null(all);
    for (int t = 0; t < CLIENTS; t++) {
        memset(&cl[t], 0, sizeof cl[t]);
        cl[t].port = fdn_admin_port(a);
        cl[t].n = n;
        cl[t].index = t;
        cl[t].ids = all + (size_t)t * (size_t)n * BATCH;
    }
    test_threads_t threads;
    test_threads_init(&threads, 0);
    test_threads_start_n(&threads, CLIENTS, client_main, cl, sizeof(cl[0]));
    test_threads_join(&threads);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);

    size_t acked = 0;
    int other = 0;
    for (int t = 0; t < CLIENTS; t++) {
        other += cl[t].other;
        memmove(all + acked, cl[t].ids, cl[t].nids * sizeof *all);
        acked += cl[t].nids;
    }
    assert_int_equal(other, 0);
    int batches = n / 5; /* requests i % 5 == 4 */
    assert_int_equal(acked, (size_t)CLIENTS * ((size_t)(n - batches) + (size_t)batches * BATCH));
    test_expect_distinct_u64(all, acked, "event id");

    /* the file holds exactly the acknowledged events */
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, (uint64_t)acked);
    test_events_expect_stored(es, all, acked, "dur.");
    fdn_events_destroy(es);
    free(all);
    test_tmpfile_remove(&tf);
}

/* fdn_admin_shutdown with an append suspended (its commit held back: the writer thread is
 * inside another store's callback): shutdown waits for it, the client gets its 201, and the
 * server stops cleanly (libmicrohttpd aborts if stopped with a suspended connection). */
typedef struct hold {
    test_waiter_t entered, release;
} hold_t;

static void hold_writer(int rc, uint64_t first, size_t n, void *user)
{
    (void)rc;
    (void)first;
    (void)n;
    hold_t *h = user;
    test_waiter_add(&h->entered, 1);
    test_waiter_wait(&h->release, 1);
}

/* Holds the store's writer (hold_writer) with an append of ev: returns once the writer is
 * inside the callback; test_waiter_add(&h->release, 1) lets it go. */
static void hold_begin(fdn_events_t *es, const fdn_event_t *ev, hold_t *h)
{
    test_waiter_init(&h->entered);
    test_waiter_init(&h->release);
    const fdn_event_t *one[1] = {ev};
    assert_int_equal(fdn_events_store_async(es, one, 1, NULL, hold_writer, h), 0);
    test_waiter_wait(&h->entered, 1); /* the writer commits nothing more until released */
}

static void hold_end(hold_t *h)
{
    test_waiter_destroy(&h->entered);
    test_waiter_destroy(&h->release);
}

/* A client thread's POST /v1/events of body on port: its status (-1: no curl handle) and
 * answer. */
typedef struct one_post {
    uint16_t port;
    const char *body;
    long status;
    test_http_sink_t s;
} one_post_t;

static void *post_main(void *arg)
{
    one_post_t *p = arg;
    CURL *c = curl_easy_init();
    p->status = c ? test_http_post(c, p->port, "/v1/events", p->body, &p->s, 60L) : -1;
    curl_easy_cleanup(c);
    return NULL;
}

/* A durable store on a new file tf (the caller removes it). */
static fdn_events_t *durable_store(test_tmpfile_t *tf)
{
    assert_int_equal(test_tmpfile_make(tf, "http-durable", "events.db"), 0);
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = tf->path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &eo, NULL), 0);
    return es;
}

/* The event the writer is held with. */
static fdn_event_t *hold_event(void)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "dur.hold";
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    return ev;
}

static void *shutdown_main(void *arg)
{
    fdn_admin_shutdown(arg);
    return NULL;
}

static void shutdown_waits_for_suspended_appends(void **state)
{
    (void)state;
    test_tmpfile_t tf;
    fdn_events_t *es = durable_store(&tf);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
    assert_int_equal(fdn_admin_start(a, NULL), 0);

    hold_t h;
    fdn_event_t *ev = hold_event();
    hold_begin(es, ev, &h);

    one_post_t p;
    memset(&p, 0, sizeof p);
    p.port = fdn_admin_port(a);
    p.body = "{\"type\":\"dur.held\",\"data\":1}";
    test_threads_t th;
    test_threads_init(&th, 0);
    test_threads_start(&th, post_main, &p);
    fdn_events_stats_t st;
    do { /* the POST's event is appended: its answer waits for the held commit */
        assert_int_equal(fdn_events_stats(es, &st), 0);
        sched_yield();
    } while (st.count < 2);
    test_threads_start(&th, shutdown_main, a);
    test_waiter_add(&h.release, 1);
    test_threads_join(&th);
    assert_int_equal(p.status, 201);
    assert_non_null(strstr(p.s.buf, "\"id\":2"));
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
    fdn_event_free(ev);
    hold_end(&h);
    test_tmpfile_remove(&tf);
}

/* The shutdown's withdrawal racing the writer's completions (src/admin/http.c, DESIGN
 * "Withdrawn answers"): each round, K appends wait behind a held commit; then one thread
 * withdraws every waiting answer (fdn__admin_withdraw, as the shutdown does at its deadline)
 * while the test releases the writer, whose completions (one commit for all, in id order) race
 * the walk. Each client gets exactly one answer, 201 or 503 with its outcome unknown; the 503s
 * are the withdrawals counted; every event is stored all the same (the store does not drop a
 * withdrawn one); ASan and TSan watch the request contexts, freed by the later of each
 * request's end and its completion. */
#define K 8

static void *withdraw_main(void *arg)
{
    (void)fdn__admin_withdraw(arg);
    return NULL;
}

static void withdrawal_races_the_writers_completions(void **state)
{
    (void)state;
    int rounds = (int)test_stress_iters(20, 1000);
    test_tmpfile_t tf;
    fdn_events_t *es = durable_store(&tf);
    fdn_event_t *ev = hold_event();
    uint64_t withdrawn = 0, completed = 0;
    for (int r = 0; r < rounds; r++) {
        fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
        o.threads = 2;
        fdn_admin_t *a = test_admin_local(&o, &(test_admin_mounts_t){.events = es});
        assert_int_equal(fdn_admin_start(a, NULL), 0);
        hold_t h;
        hold_begin(es, ev, &h);

        static one_post_t p[K];
        test_threads_t th;
        test_threads_init(&th, 0);
        for (int i = 0; i < K; i++) {
            memset(&p[i], 0, sizeof p[i]);
            p[i].port = fdn_admin_port(a);
            p[i].body = "{\"type\":\"dur.race\",\"data\":1}";
        }
        test_threads_start_n(&th, K, post_main, p, sizeof p[0]);
        while (fdn__admin_deferred(a) < K) /* all K wait for the held commit */
            sched_yield();                 /* a hang is caught by ctest's TIMEOUT */
        /* the completions race the withdrawal, one or the other started first */
        if (r % 2 == 0)
            test_threads_start(&th, withdraw_main, a);
        test_waiter_add(&h.release, 1);
        if (r % 2 == 1)
            test_threads_start(&th, withdraw_main, a);
        test_threads_join(&th);
        uint64_t n503 = 0;
        for (int i = 0; i < K; i++) {
            if (p[i].status == 201) {
                completed++;
                continue;
            }
            if (p[i].status != 503 || strstr(p[i].s.buf, "\"outcome\":\"unknown\"") == NULL)
                fail_msg("round %d client %d: %ld %s", r, i, p[i].status, p[i].s.buf);
            n503++;
        }
        assert_int_equal(n503, fdn__admin_withdrawn(a));
        withdrawn += n503;
        fdn_admin_destroy(a);
        /* a synchronous store commits after the writer has left hold_writer (and h) */
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        hold_end(&h);
    }
    /* every append is stored, withdrawn or not */
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, (uint64_t)rounds * (K + 2));
    print_message("%d rounds of %d appends: %llu withdrawn, %llu completed\n", rounds, K,
                  (unsigned long long)withdrawn, (unsigned long long)completed);
    fdn_events_destroy(es);
    fdn_event_free(ev);
    test_tmpfile_remove(&tf);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durable_posts_all_acknowledged_are_stored),
        cmocka_unit_test(shutdown_waits_for_suspended_appends),
        cmocka_unit_test(withdrawal_races_the_writers_completions),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
