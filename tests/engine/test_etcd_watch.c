/* The etcd watcher (storage/etcd_watch.c) on a real etcd (the ctest fixture "etcd"), under a
 * follower of the test's own that does what the library's followers (infra/registry_etcd.c,
 * services/config_etcd.c) do: it takes the revision a message hands it as the revision its
 * state holds, from which the watcher makes its next watch.
 *
 * A watch that starts behind etcd's current revision is caught up in batches of at most 1000
 * revisions (etcd's watchBatchMaxRevs), and each batch's header carries etcd's current revision,
 * not the batch's last: a follower that took the header's revision and whose watch was then
 * made again (a broken stream) would start past the revisions still to come, which etcd then
 * never sends.
 *
 * A watch whose server accepts the connection and never answers (a stopped etcd, a proxy whose
 * backend is gone) fails within the client's timeout, and a watcher on it turns stale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "storage/etcd_client.h"
#include "storage/etcd_watch.h"
#include "engine.h"

#define WAIT_MS         60000
#define ETCD_TIMEOUT_MS 30000
#define NREV            1200 /* more than one catch-up batch (1000 revisions) */

/* The test's follower: every revision it was handed an event of, and its revision. */
typedef struct follower {
    pthread_mutex_t mu;
    int64_t revs[NREV]; /* the revision of each put, increasing (other tests' writes to the
                           shared etcd may fall between them) */
    int64_t rev;        /* the revision its state holds (what the messages handed it) */
    int seen[NREV];
    int messages; /* messages with events */
    int relists;  /* relist calls (a no-op: the state is kept, as after a broken stream) */
    int ahead;    /* messages whose revision passed their last event's */
} follower_t;

static int f_relist(void *user)
{
    follower_t *f = user;
    pthread_mutex_lock(&f->mu);
    f->relists++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* The index of the put made at revision r, or -1 (not one of the test's). */
static int put_at(const follower_t *f, int64_t r)
{
    int lo = 0, hi = NREV - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (f->revs[mid] == r)
            return mid;
        if (f->revs[mid] < r)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int f_message(void *user, const fdn__etcd_watch_msg_t *m)
{
    follower_t *f = user;
    pthread_mutex_lock(&f->mu);
    int ask = FDN__ETCD_WATCHER_GO_ON;
    if (m->nevents > 0) {
        for (size_t i = 0; i < m->nevents; i++) {
            int k = put_at(f, m->events[i].kv.mod_revision);
            if (k >= 0)
                f->seen[k]++;
        }
        if (m->revision > m->events[m->nevents - 1].kv.mod_revision)
            f->ahead++;
        /* end the first catch-up batch's watch: the watcher makes the next one from the
         * revision this message handed over, as after a stream that broke here */
        if (f->messages++ == 0)
            ask = FDN__ETCD_WATCHER_RELIST;
    }
    if (m->revision > f->rev)
        f->rev = m->revision;
    pthread_mutex_unlock(&f->mu);
    return ask;
}

static int64_t f_revision(void *user)
{
    follower_t *f = user;
    pthread_mutex_lock(&f->mu);
    int64_t r = f->rev;
    pthread_mutex_unlock(&f->mu);
    return r;
}

static const fdn__etcd_watcher_ops_t OPS = {f_relist, f_message, f_revision};

static void catch_up_batches_miss_no_revision(void **state)
{
    (void)state;
    char name[64], prefix[128], end[128];
    test_engine_unique_name(name, sizeof(name), "batches");
    int plen = snprintf(prefix, sizeof(prefix), "/fdn/test/%s/", name);
    size_t elen = fdn__etcd_prefix_end(end, sizeof(end), prefix, (size_t)plen);
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);

    follower_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    /* NREV revisions under the prefix, written before the watch: etcd catches it up */
    int64_t first = 0, last = 0;
    for (int i = 0; i < NREV; i++) {
        char key[160];
        int kl = snprintf(key, sizeof(key), "%sk%04d", prefix, i);
        fdn_error_t err = FDN_ERROR_INIT;
        int64_t rev = 0;
        int rc = fdn__etcd_put(c, key, (size_t)kl, "v", 1, 0, &rev, &err);
        if (rc != 0)
            fprintf(stderr, "put: %s\n", err.message);
        assert_int_equal(rc, 0);
        if (i == 0)
            first = rev;
        assert_true(rev > last);
        last = rev;
        f->revs[i] = rev;
    }
    f->rev = first - 1; /* as if it had ranged just before the first put */
    fdn__etcd_watcher_t *w = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__etcd_watcher_create(&w, c, prefix, (size_t)plen, end, elen, &OPS, f,
                                              "test-watch", &err),
                     0);

    /* until the follower's revision reaches the last put (bounded) */
    int64_t t0 = test_now_ms();
    pthread_mutex_lock(&f->mu);
    while (f->rev < last && test_now_ms() - t0 < WAIT_MS) {
        pthread_mutex_unlock(&f->mu);
        test_pause_ms(10);
        pthread_mutex_lock(&f->mu);
    }
    int64_t rev = f->rev;
    pthread_mutex_unlock(&f->mu);
    assert_true(rev >= last);
    /* the watch made after the first batch brings the rest: every revision once */
    t0 = test_now_ms();
    bool all = false;
    while (!all && test_now_ms() - t0 < WAIT_MS) {
        pthread_mutex_lock(&f->mu);
        all = true;
        for (int i = 0; i < NREV && all; i++)
            all = f->seen[i] > 0;
        int ahead = f->ahead;
        pthread_mutex_unlock(&f->mu);
        assert_int_equal(ahead, 0); /* no message handed over a revision past its events */
        if (!all)
            test_pause_ms(10);
    }
    fdn__etcd_watcher_destroy(w);
    int missing = 0, twice = 0;
    for (int i = 0; i < NREV; i++) {
        missing += f->seen[i] == 0;
        twice += f->seen[i] > 1;
    }
    if (missing || twice)
        fprintf(stderr, "revisions %lld..%lld: %d missing, %d seen twice, %d messages\n",
                (long long)first, (long long)last, missing, twice, f->messages);
    assert_true(f->messages >= 2); /* more than one batch */
    assert_true(f->relists >= 1);
    assert_int_equal(missing, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(f->ahead, 0);

    int64_t deleted = 0;
    assert_int_equal(fdn__etcd_delete(c, prefix, (size_t)plen, end, elen, &deleted, NULL), 0);
    assert_int_equal(deleted, NREV);
    pthread_mutex_destroy(&f->mu);
    free(f);
    fdn__etcd_destroy(c);
}

/* ---- a server that accepts and never answers ---------------------------------------------- */

/* A socket listening on a free loopback port that nobody accepts on: a connect succeeds (the
 * kernel's backlog) and nothing ever answers, as with a stopped etcd or a proxy whose backend is
 * gone. Its URL into url. */
static int silent_server(char *url, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(url, cap, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

typedef struct watch_run {
    fdn__etcd_watch_t *w;
    fdn__etcd_t *c;
    fdn_error_t err;
    int rc;
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} watch_run_t;

static int go_on(const fdn__etcd_watch_msg_t *m, void *user)
{
    (void)m;
    (void)user;
    return 0;
}

static void *run_watch(void *arg)
{
    watch_run_t *r = arg;
    int rc = fdn__etcd_watch_run(r->w, r->c, "k", 1, NULL, 0, 1, 1u << 20, go_on, NULL, &r->err);
    pthread_mutex_lock(&r->mu);
    r->rc = rc;
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int64_t five(void *user)
{
    (void)user;
    return 5;
}

static int refused(void *user)
{
    (void)user;
    return FDN_ECONNREFUSED;
}

static int keep_on(void *user, const fdn__etcd_watch_msg_t *m)
{
    (void)user;
    (void)m;
    return FDN__ETCD_WATCHER_GO_ON;
}

/* A watch whose server never confirms it ends within the client's timeout (it waited for ever,
 * and a watcher on it never became stale while etcd was in fact gone). */
static void unconfirmed_watch_times_out(void **state)
{
    (void)state;
    char url[64];
    int fd = silent_server(url, sizeof(url));
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, url, 200, NULL), 0);

    watch_run_t r;
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.err = (fdn_error_t)FDN_ERROR_INIT;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    assert_int_equal(fdn__etcd_watch_create(&r.w), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_watch, &r), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&r.mu);
    while (!r.done && pthread_cond_timedwait(&r.cv, &r.mu, &dl) == 0)
        ;
    bool returned = r.done;
    pthread_mutex_unlock(&r.mu);
    if (!returned)
        fdn__etcd_watch_stop(r.w); /* the hang this test is about: end it, then fail */
    pthread_join(t, NULL);
    assert_true(returned);
    assert_int_equal(r.rc, FDN_ETIMEDOUT);
    assert_non_null(strstr(r.err.message, "not confirmed"));
    fdn__etcd_watch_destroy(r.w);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);

    /* a watcher on it (its follower ranged at revision 5): stale, the watch counted broken */
    static const fdn__etcd_watcher_ops_t ops = {refused, keep_on, five};
    fdn__etcd_watcher_t *w = NULL;
    assert_int_equal(
        fdn__etcd_watcher_create(&w, c, "k", 1, NULL, 0, &ops, NULL, "test-silent", NULL), 0);
    int64_t t0 = test_now_ms();
    while (!(fdn__etcd_watcher_stale(w) && fdn__etcd_watcher_errors(w) >= 1) &&
           test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    assert_true(fdn__etcd_watcher_stale(w));
    assert_true(fdn__etcd_watcher_errors(w) >= 1);
    fdn__etcd_watcher_destroy(w);
    fdn__etcd_destroy(c);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(catch_up_batches_miss_no_revision),
        cmocka_unit_test(unconfirmed_watch_times_out),
    };
    return cmocka_run_group_tests(tests, test_engine_etcd_setup, NULL);
}
