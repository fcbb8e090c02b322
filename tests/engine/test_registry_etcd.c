/* The shared registry on a real etcd (scripts/etcd-server.sh, started by the ctest fixture
 * "etcd"; its URL is in $FDN_TEST_ETCD_DIR/url; the restart test starts one of its own):
 * registration and lookup across registries, liveness of a process killed with SIGKILL, two
 * processes racing for one name, a watcher whose revision is compacted away, etcd stopped and
 * restarted, a lost lease, bad input. Every wait polls the cache against a bounded deadline.
 * The other processes are fresh runs of this program (main's "child" roles, test_spawn_self),
 * not forks: ThreadSanitizer cannot follow a fork of this process, which has liburcu's call_rcu
 * thread from the first test on (tests/support/child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/breaker.h>
#include <fdn/clock.h>
#include <fdn/config.h>
#include <fdn/registry.h>
#include <fdn/runtime.h>

#include "core/registry_int.h"
#include "infra/etcd_guard.h"
#include "infra/registry_shared.h"
#include "services/config_etcd.h"
#include "storage/etcd_client.h"
#include "child.h"
#include "engine.h"

/* Bound of every poll for something that must happen (an entry seen or gone, a cache stale or
 * fresh, a breaker's state): a minute, only to catch a hang. Those things come through etcd,
 * its watch and the library's threads, which a loaded machine running a sanitizer build can
 * each delay for seconds; a poll returns as soon as it happens. */
#define WAIT_MS 60000

/* Bound of each etcd call of the clients made here (request_timeout_ms; the library's default
 * is 2 s): half a minute. A call that must succeed fails for good when etcd (or this process, or
 * libcurl) is stalled past its bound, and nothing is resent after a timeout; a loaded machine
 * running a sanitizer build can stall any of them for seconds. Against an etcd that is down
 * the calls fail at once anyway (connection refused), so no test waits longer for it. */
#define ETCD_TIMEOUT_MS 30000

static fdn_registry_t *open_reg_at(const char *url, const char *ns, int64_t ttl_ms,
                                   const char *owner)
{
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = url;
    eo.lease_ttl_ms = ttl_ms;
    eo.owner = owner;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_registry_t *r = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_open(&r, &ro, &eo, &err);
    if (rc != 0)
        fprintf(stderr, "fdn_registry_open: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_true(fdn_registry_is_shared(r));
    return r;
}

/* Is service/instance in r's cache (with endpoint ep when ep != NULL)? */
static fdn_registry_t *open_reg(const char *ns, int64_t ttl_ms, const char *owner)
{
    return open_reg_at(test_etcd_url, ns, ttl_ms, owner);
}

static bool has(fdn_registry_t *r, const char *service, const char *instance, const char *ep)
{
    fdn_registry_instance_t *i = NULL;
    int rc = fdn_registry_lookup_shared(r, service, instance, &i, NULL);
    bool yes = rc == 0 && (ep == NULL || strcmp(fdn_registry_instance_endpoint(i), ep) == 0);
    fdn_registry_instance_release(i);
    return yes;
}

/* Poll until has() == want or the deadline passes; returns the elapsed ms or -1. */
static int64_t wait_has(fdn_registry_t *r, const char *service, const char *instance, bool want,
                        int64_t deadline_ms)
{
    int64_t t0 = test_now_ms();
    while (has(r, service, instance, NULL) != want) {
        if (test_now_ms() - t0 > deadline_ms)
            return -1;
        test_pause_ms(10);
    }
    return test_now_ms() - t0;
}

/* Poll until r has service/instance under a lease other than old (deadline_ms); true then. */
static bool wait_new_lease(fdn_registry_t *r, const char *service, const char *instance,
                           int64_t old, int64_t deadline_ms)
{
    int64_t t0 = test_now_ms();
    for (;;) {
        fdn_registry_instance_t *i = NULL;
        bool moved = fdn_registry_lookup_shared(r, service, instance, &i, NULL) == 0 &&
                     fdn_registry_instance_lease(i) != old;
        fdn_registry_instance_release(i);
        if (moved)
            return true;
        if (test_now_ms() - t0 > deadline_ms)
            return false;
        test_pause_ms(10);
    }
}

static fdn_registry_shared_stats_t stats(fdn_registry_t *r)
{
    fdn_registry_shared_stats_t s;
    memset(&s, 0, sizeof(s));
    s.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    assert_int_equal(fdn_registry_shared_stats(r, &s), 0);
    return s;
}

static bool wait_stale(fdn_registry_t *r, bool want, int64_t deadline_ms)
{
    int64_t t0 = test_now_ms();
    while (fdn_registry_shared_stale(r) != want) {
        if (test_now_ms() - t0 > deadline_ms)
            return false;
        test_pause_ms(10);
    }
    return true;
}

/* A raw client on the fixture, for what another tool would do. */
static fdn__etcd_t *raw(void)
{
    fdn__etcd_t *c = NULL;
    assert_int_equal(fdn__etcd_create(&c, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    return c;
}

static void raw_put(fdn__etcd_t *c, const char *key, const char *value, int64_t *rev)
{
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__etcd_put(c, key, strlen(key), value, strlen(value), 0, rev, &err);
    if (rc != 0)
        fprintf(stderr, "put: %s\n", err.message);
    assert_int_equal(rc, 0);
}

/* An etcd of the test's own (the restart test kills it; the fixture's serves other tests that
 * ctest may run at the same time). */
static int own_etcd_up(void **state)
{
    *state = test_engine_server_start("etcd-server.sh");
    return 0;
}

static int own_etcd_down(void **state)
{
    /* also after a failed assertion: no daemon is left behind */
    test_engine_server_stop(*state);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void register_lookup_list_unregister(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "basic");
    fdn_registry_t *a = open_reg(ns, 5000, "proc-a");
    fdn_registry_t *b = open_reg(ns, 5000, "proc-b");
    fdn_registry_meta_t meta[] = {{"zone", "eu-1"}, {"pid", "1234"}};
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(
        fdn_registry_register_shared(a, "api", "a1", "http://10.0.0.1:80", meta, 2, &err), 0);
    /* the registering process sees its own write when the call returns */
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn_registry_lookup_shared(a, "api", "a1", &i, NULL), 0);
    assert_string_equal(fdn_registry_instance_endpoint(i), "http://10.0.0.1:80");
    assert_string_equal(fdn_registry_instance_owner(i), "proc-a");
    assert_string_equal(fdn_registry_instance_meta(i, "zone"), "eu-1");
    assert_int_equal(fdn_registry_instance_lease(i), stats(a).lease_id);
    assert_true(fdn_registry_instance_mod_revision(i) > 0);
    fdn_registry_instance_release(i);
    /* idempotent for the same process and value; EEXIST with another value */
    assert_int_equal(
        fdn_registry_register_shared(a, "api", "a1", "http://10.0.0.1:80", meta, 2, NULL), 0);
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://other", NULL, 0, NULL),
                     FDN_EEXIST);
    /* another process: EEXIST naming the holder */
    assert_int_equal(fdn_registry_register_shared(b, "api", "a1", "http://x", NULL, 0, &err),
                     FDN_EEXIST);
    assert_non_null(strstr(err.message, "proc-a"));
    assert_int_equal(
        fdn_registry_register_shared(b, "api", "b1", "http://10.0.0.2:80", NULL, 0, NULL), 0);
    assert_int_equal(
        fdn_registry_register_shared(b, "db", "b1", "tcp://10.0.0.3:5432", NULL, 0, NULL), 0);
    assert_true(wait_has(a, "db", "b1", true, WAIT_MS) >= 0);
    assert_true(wait_has(a, "api", "b1", true, WAIT_MS) >= 0);
    assert_true(wait_has(b, "api", "a1", true, WAIT_MS) >= 0);

    /* any instance of a service: the first by name */
    assert_int_equal(fdn_registry_lookup_shared(b, "api", NULL, &i, NULL), 0);
    assert_string_equal(fdn_registry_instance_name(i), "a1");
    fdn_registry_instance_release(i);
    assert_int_equal(fdn_registry_lookup_shared(b, "nope", NULL, &i, &err), FDN_ESERVICE_NOT_FOUND);
    assert_null(i);
    assert_non_null(strstr(err.message, "nope"));

    fdn_registry_instance_t **v = NULL;
    size_t n = 0;
    assert_int_equal(fdn_registry_list_shared(b, "api", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(fdn_registry_instance_name(v[0]), "a1");
    assert_string_equal(fdn_registry_instance_name(v[1]), "b1");
    fdn_registry_instances_free(v, n);
    assert_int_equal(fdn_registry_list_shared(b, NULL, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(fdn_registry_instance_service(v[2]), "db");
    fdn_registry_instances_free(v, n);
    fdn_registry_shared_stats_t sa = stats(a);
    assert_int_equal(sa.owned, 1);
    assert_int_equal(sa.entries, 3);
    assert_false(sa.stale);
    assert_true(sa.lease_ok);

    /* unregister: only the holder removes it */
    assert_int_equal(fdn_registry_unregister_shared(b, "api", "a1", NULL), 0);
    assert_true(has(b, "api", "a1", NULL));
    assert_int_equal(fdn_registry_unregister_shared(a, "api", "a1", NULL), 0);
    assert_true(wait_has(b, "api", "a1", false, WAIT_MS) >= 0);
    assert_int_equal(stats(a).owned, 0);

    /* destroy revokes the lease: b's entries leave a's cache at once */
    fdn_registry_destroy(b);
    assert_true(wait_has(a, "db", "b1", false, WAIT_MS) >= 0);
    assert_false(has(a, "api", "b1", NULL));
    fdn_registry_destroy(a);
}

static void killed_process_disappears_within_ttl(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "live");
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char ready[16];
    snprintf(ready, sizeof(ready), "%d", p[1]);
    const char *const args[] = {"child", "register", test_etcd_url, ns, "w1", ready, NULL};
    pid_t pid = test_spawn_self(args, &p[1], 1);
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    assert_true(wait_has(obs, "worker", "w1", true, WAIT_MS) >= 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    /* The lease (TTL 2 s) is what removes it: without its expiry the entry would stay for
     * good. The bound leaves room for a loaded machine (etcd sweeps expired leases every
     * 500 ms, then the watch event must reach the observer); the time taken is printed. */
    int64_t took = wait_has(obs, "worker", "w1", false, WAIT_MS);
    fprintf(stderr, "killed worker left the cache after %lld ms\n", (long long)took);
    assert_true(took >= 0);
    fdn_registry_destroy(obs);
}

static void two_processes_race_one_wins(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "race");
    /* one ready pipe per racer: a racer that dies before it is ready ends its pipe (EOF, the
     * test fails at once), where a shared one stayed open in the other racer */
    int ready[2][2], go[2], result[2], done[2];
    assert_int_equal(pipe2(ready[0], O_CLOEXEC), 0);
    assert_int_equal(pipe2(ready[1], O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(result, O_CLOEXEC), 0);
    assert_int_equal(pipe2(done, O_CLOEXEC), 0);
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        /* the child's ends; the parent's stay here (done[1] above all: a child waits for its
         * EOF) */
        const int keep[] = {ready[k][1], go[0], result[1], done[0]};
        char fd[4][16];
        for (int j = 0; j < 4; j++)
            snprintf(fd[j], sizeof(fd[j]), "%d", keep[j]);
        char kk[4];
        snprintf(kk, sizeof(kk), "%d", k);
        const char *const args[] = {"child", "race", test_etcd_url, ns,    kk,
                                    fd[0],   fd[1],  fd[2],         fd[3], NULL};
        pids[k] = test_spawn_self(args, keep, 4);
    }
    close(ready[0][1]);
    close(ready[1][1]);
    close(go[0]);
    close(result[1]);
    close(done[0]);
    char c;
    for (int k = 0; k < 2; k++)
        assert_int_equal(read(ready[k][0], &c, 1), 1);
    assert_int_equal(write(go[1], "gg", 2), 2); /* both start at once */
    int winners = 0, losers = 0, winner = -1;
    for (int k = 0; k < 2; k++) {
        char out[2];
        assert_int_equal(read(result[0], out, 2), 2);
        if (out[1] == 'W') {
            winners++;
            winner = out[0];
        } else if (out[1] == 'L') {
            losers++;
        }
    }
    assert_int_equal(winners, 1);
    assert_int_equal(losers, 1);
    /* the stored entry is the winner's */
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn_registry_lookup_shared(obs, "leader", "the-one", &i, NULL), 0);
    char want[32];
    snprintf(want, sizeof(want), "racer-%d", winner);
    assert_string_equal(fdn_registry_instance_owner(i), want);
    assert_string_equal(fdn_registry_instance_endpoint(i), want);
    fdn_registry_instance_release(i);
    close(done[1]);
    for (int k = 0; k < 2; k++)
        test_child_wait_ok(pids[k], "racer");
    close(ready[0][0]);
    close(ready[1][0]);
    close(go[1]);
    close(result[0]);
    fdn_registry_destroy(obs);
}

static void compacted_watcher_resyncs_without_missing_a_delete(void **state)
{
    (void)state;
    char ns[64], k1[160], k2[160], k3[160];
    test_engine_unique_name(ns, sizeof(ns), "compact");
    snprintf(k1, sizeof(k1), "/fdn/registry/%s/svc/e1", ns);
    snprintf(k2, sizeof(k2), "/fdn/registry/%s/svc/e2", ns);
    snprintf(k3, sizeof(k3), "/fdn/registry/%s/svc/e3", ns);
    fdn_registry_t *w = open_reg(ns, 5000, "watcher");
    fdn__etcd_t *c = raw();
    raw_put(c, k1, "{\"endpoint\":\"e1\"}", NULL);
    raw_put(c, k2, "{\"endpoint\":\"e2\"}", NULL);
    assert_true(wait_has(w, "svc", "e1", true, WAIT_MS) >= 0);
    assert_true(wait_has(w, "svc", "e2", true, WAIT_MS) >= 0);
    int64_t compactions = (int64_t)stats(w).compactions;
    int64_t relists = (int64_t)stats(w).relists;

    /* the watcher is away while e1 is deleted and the history compacted past it */
    fdn__regetcd_pause_watch(fdn__registry_shared(w), true);
    int64_t deleted = 0, rev = 0;
    assert_int_equal(fdn__etcd_delete(c, k1, strlen(k1), NULL, 0, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    raw_put(c, k3, "{\"endpoint\":\"e3\"}", &rev);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__etcd_compact(c, rev, &err);
    if (rc != 0)
        fprintf(stderr, "compact: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_true(has(w, "svc", "e1", NULL)); /* the paused cache still has it */
    fdn__regetcd_pause_watch(fdn__registry_shared(w), false);

    assert_true(wait_has(w, "svc", "e3", true, WAIT_MS) >= 0);
    assert_false(has(w, "svc", "e1", NULL));
    assert_true(has(w, "svc", "e2", NULL));
    fdn_registry_shared_stats_t s = stats(w);
    assert_true((int64_t)s.compactions > compactions);
    assert_true((int64_t)s.relists > relists);
    assert_true(s.revision >= rev);
    fdn__etcd_destroy(c);
    fdn_registry_destroy(w);
}

/* A key of the namespace that is no entry's (a NUL byte in its instance name) is skipped by a
 * range; a change of it that the watch brings must not touch the entry whose name is the part
 * before the NUL (it did: the watch cut the name there and replaced or deleted that entry). */
static void foreign_key_with_a_nul_leaves_entries_alone(void **state)
{
    (void)state;
    char ns[64], good[160], bad[160], marker[160];
    test_engine_unique_name(ns, sizeof(ns), "nulkey");
    int gl = snprintf(good, sizeof(good), "/fdn/registry/%s/svc/a", ns);
    memcpy(bad, good, (size_t)gl);
    memcpy(bad + gl, "\0x", 2); /* ".../svc/a\0x" */
    size_t bl = (size_t)gl + 2;
    snprintf(marker, sizeof(marker), "/fdn/registry/%s/svc/m1", ns);
    fdn_registry_t *w = open_reg(ns, 5000, "watcher");
    fdn__etcd_t *c = raw();
    raw_put(c, good, "{\"endpoint\":\"good\"}", NULL);
    assert_true(wait_has(w, "svc", "a", true, WAIT_MS) >= 0);
    uint64_t bad_values = stats(w).bad_values;

    /* a put of the foreign key with an entry's value, then its delete */
    const char *v = "{\"endpoint\":\"bad\"}";
    assert_int_equal(fdn__etcd_put(c, bad, bl, v, strlen(v), 0, NULL, NULL), 0);
    raw_put(c, marker, "{\"endpoint\":\"m1\"}", NULL);
    assert_true(wait_has(w, "svc", "m1", true, WAIT_MS) >= 0); /* the watch passed the put */
    assert_true(has(w, "svc", "a", "good"));
    assert_true(stats(w).bad_values > bad_values);
    int64_t deleted = 0;
    assert_int_equal(fdn__etcd_delete(c, bad, bl, NULL, 0, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(fdn__etcd_delete(c, marker, strlen(marker), NULL, 0, &deleted, NULL), 0);
    assert_true(wait_has(w, "svc", "m1", false, WAIT_MS) >= 0); /* and the delete */
    assert_true(has(w, "svc", "a", "good"));
    assert_int_equal(stats(w).entries, 1);

    assert_int_equal(fdn__etcd_delete(c, good, (size_t)gl, NULL, 0, &deleted, NULL), 0);
    assert_true(wait_has(w, "svc", "a", false, WAIT_MS) >= 0);
    fdn__etcd_destroy(c);
    fdn_registry_destroy(w);
}

/* A registration whose answer this process never got (the call timed out after etcd applied
 * it: "after a timeout the entry may exist") is under this process's lease but not in its list:
 * unregister must still remove it (it answered 0 and left it there, kept alive by this
 * process's keepalives until it exits), and still leave an entry of another lease alone. */
static void unregister_removes_an_unconfirmed_registration(void **state)
{
    (void)state;
    char ns[64], mine[160], other[160];
    test_engine_unique_name(ns, sizeof(ns), "unconfirmed");
    snprintf(mine, sizeof(mine), "/fdn/registry/%s/svc/mine", ns);
    snprintf(other, sizeof(other), "/fdn/registry/%s/svc/other", ns);
    fdn_registry_t *a = open_reg(ns, 5000, "proc-a");
    fdn__etcd_t *c = raw();
    int64_t lease = stats(a).lease_id;
    assert_true(lease != 0);
    /* what a's register wrote before its answer was lost */
    const char *v = "{\"endpoint\":\"http://a\",\"meta\":{},\"owner\":\"proc-a\"}";
    assert_int_equal(fdn__etcd_put(c, mine, strlen(mine), v, strlen(v), lease, NULL, NULL), 0);
    raw_put(c, other, "{\"endpoint\":\"http://o\"}", NULL);
    assert_true(wait_has(a, "svc", "mine", true, WAIT_MS) >= 0);
    assert_true(wait_has(a, "svc", "other", true, WAIT_MS) >= 0);
    assert_int_equal(stats(a).owned, 0);

    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_unregister_shared(a, "svc", "mine", &err), 0);
    fdn__etcd_range_t rg;
    assert_int_equal(fdn__etcd_range(c, mine, strlen(mine), NULL, 0, &rg, NULL), 0);
    assert_int_equal(rg.n, 0); /* gone from etcd when unregister returns */
    fdn__etcd_range_clear(&rg);
    assert_true(wait_has(a, "svc", "mine", false, WAIT_MS) >= 0);

    assert_int_equal(fdn_registry_unregister_shared(a, "svc", "other", &err), 0);
    assert_int_equal(fdn__etcd_range(c, other, strlen(other), NULL, 0, &rg, NULL), 0);
    assert_int_equal(rg.n, 1); /* another's (no lease): left alone */
    fdn__etcd_range_clear(&rg);
    assert_true(has(a, "svc", "other", "http://o"));
    /* a name nobody holds: nothing to do */
    assert_int_equal(fdn_registry_unregister_shared(a, "svc", "nobody", &err), 0);

    int64_t deleted = 0;
    assert_int_equal(fdn__etcd_delete(c, other, strlen(other), NULL, 0, &deleted, NULL), 0);
    fdn__etcd_destroy(c);
    fdn_registry_destroy(a);
}

/* Poll until the client's breaker is in state want (deadline_ms). */
static bool wait_breaker(fdn__etcd_t *cli, int want, int64_t deadline_ms)
{
    int64_t t0 = test_now_ms();
    while (fdn__etcd_guard_state(cli) != want) {
        if (test_now_ms() - t0 > deadline_ms)
            return false;
        test_pause_ms(10);
    }
    return true;
}

/* Tests on the shared fixture compact it at revisions of their own, in any order (ctest runs
 * test_config_etcd alongside): a compaction at a revision already compacted away by another
 * client is no error, a compaction at a future revision still is. */
static void compaction_behind_another_is_no_error(void **state)
{
    (void)state;
    char ns[64], key[160];
    test_engine_unique_name(ns, sizeof(ns), "compact2");
    snprintf(key, sizeof(key), "/fdn/registry/%s/svc/k", ns);
    fdn__etcd_t *c = raw();
    int64_t r1 = 0, r2 = 0;
    raw_put(c, key, "{\"endpoint\":\"1\"}", &r1);
    raw_put(c, key, "{\"endpoint\":\"2\"}", &r2);
    assert_true(r2 > r1);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__etcd_compact(c, r2, &err), 0);
    assert_int_equal(fdn__etcd_compact(c, r1, &err), 0); /* already compacted past r1 */
    assert_int_equal(fdn__etcd_compact(c, r2, &err), 0);
    int rc = fdn__etcd_compact(c, r2 + 1000000000, &err);
    assert_int_equal(rc, FDN_EEXTERNAL);
    assert_non_null(strstr(err.message, "future revision"));
    assert_int_equal(fdn__etcd_delete(c, key, strlen(key), NULL, 0, NULL, NULL), 0);
    fdn__etcd_destroy(c);
}

static void etcd_restart_stale_then_fresh(void **state)
{
    test_engine_server_t *e = *state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "restart");
    fdn_registry_t *a = open_reg_at(e->url, ns, 5000, "proc-a");
    fdn_registry_t *b = open_reg_at(e->url, ns, 5000, "proc-b");
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, NULL), 0);
    assert_true(wait_has(b, "api", "a1", true, WAIT_MS) >= 0);
    assert_false(fdn_registry_shared_stale(a));

    test_engine_script(e->script, "kill", e->dir);
    assert_true(wait_stale(a, true, WAIT_MS));
    assert_true(wait_stale(b, true, WAIT_MS));
    /* the cache keeps answering */
    assert_true(has(b, "api", "a1", "http://a"));
    assert_true(has(a, "api", "a1", "http://a"));
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_register_shared(b, "api", "b1", "http://b", NULL, 0, &err);
    assert_true(rc == FDN_ECONNREFUSED || rc == FDN_ETIMEDOUT || rc == FDN_ENETWORK);
    assert_true(err.message[0] != '\0');

    test_engine_script(e->script, "restart", e->dir);
    assert_true(wait_stale(a, false, WAIT_MS));
    assert_true(wait_stale(b, false, WAIT_MS));
    assert_true(has(b, "api", "a1", "http://a"));
    /* the lease survived (etcd restores leases on restart): keepalives succeed again */
    int64_t t0 = test_now_ms();
    while (!stats(a).lease_ok && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    assert_true(stats(a).lease_ok);
    /* b's calls that failed while etcd was away (its registration, its keepalives) may have
     * opened its client's breaker, which then rejects calls until a probe (b's lease thread
     * retrying its keepalive) finds etcd back: register once it is closed */
    assert_true(
        wait_breaker(fdn__regetcd_client(fdn__registry_shared(b)), FDN_BREAKER_CLOSED, WAIT_MS));
    assert_int_equal(fdn_registry_register_shared(b, "api", "b1", "http://b", NULL, 0, NULL), 0);
    assert_true(wait_has(a, "api", "b1", true, WAIT_MS) >= 0);
    assert_true(stats(a).watch_errors >= 1);
    fdn_registry_destroy(b);
    fdn_registry_destroy(a);
}

static bool unreachable_code(int rc)
{
    return rc == FDN_ECONNREFUSED || rc == FDN_ETIMEDOUT || rc == FDN_ENETWORK;
}

static uint64_t calls(fdn__etcd_t *cli, int op, int outcome)
{
    fdn__etcd_lat_t lat;
    fdn__etcd_latency(cli, op, outcome, &lat);
    return lat.le[FDN__ETCD_LAT_BOUNDS];
}

/* etcd down when a process starts: with start_unreachable the registry and the config start
 * (stale, no lease, a registration kept), the breaker opens, and everything catches up once
 * etcd answers; without it the open fails. */
static void start_while_etcd_is_down(void **state)
{
    test_engine_server_t *e = *state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "down");
    test_engine_script(e->script, "kill", e->dir);

    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = e->url;
    eo.lease_ttl_ms = 3000;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_registry_t *a = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_true(unreachable_code(fdn_registry_open(&a, &ro, &eo, &err))); /* the default */
    assert_null(a);
    eo.start_unreachable = true;
    err = (fdn_error_t)FDN_ERROR_INIT;
    int rc = fdn_registry_open(&a, &ro, &eo, &err);
    if (rc != 0)
        fprintf(stderr, "fdn_registry_open: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_true(fdn_registry_shared_stale(a));
    fdn_registry_shared_stats_t s = stats(a);
    assert_false(s.lease_ok);
    assert_int_equal(s.lease_id, 0);
    assert_int_equal(s.entries, 0);
    /* a registration without a lease is kept (and says so); a kept one can be dropped */
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, &err),
                     FDN_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "kept"));
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, NULL),
                     FDN_EUNAVAILABLE);
    assert_int_equal(fdn_registry_register_shared(a, "api", "a2", "http://a2", NULL, 0, NULL),
                     FDN_EUNAVAILABLE);
    assert_int_equal(stats(a).owned, 2);
    assert_int_equal(fdn_registry_unregister_shared(a, "api", "a2", NULL), 0);
    assert_int_equal(stats(a).owned, 1);

    /* the config follows from its local values, stale; updates fail with the network error */
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    static const char *const no_env[] = {NULL};
    co.envp = no_env;
    co.ignore_env = true;
    fdn_config_t *cfg = NULL;
    assert_int_equal(fdn_config_create(&cfg, &co, NULL), 0);
    fdn_config_etcd_opts_t ceo = FDN_CONFIG_ETCD_OPTS_INIT;
    ceo.url = e->url;
    ceo.ns = ns;
    ceo.request_timeout_ms = ETCD_TIMEOUT_MS;
    assert_true(unreachable_code(fdn_config_follow_etcd(cfg, &ceo, NULL)));
    ceo.start_unreachable = true;
    assert_int_equal(fdn_config_follow_etcd(cfg, &ceo, NULL), 0);
    fdn_config_etcd_stats_t cs = {.version = FDN_CONFIG_ETCD_STATS_VERSION};
    assert_int_equal(fdn_config_etcd_stats(cfg, &cs), 0);
    assert_true(cs.stale);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 1000);
    assert_true(unreachable_code(fdn_config_update_int(cfg, "interface.max_results", 9, NULL)));

    /* the breaker opens on the lease thread's failures; a call it rejects makes no request
     * and answers the transport error, saying so */
    fdn__etcd_t *cli = fdn__regetcd_client(fdn__registry_shared(a));
    assert_true(wait_breaker(cli, FDN_BREAKER_OPEN, WAIT_MS));
    assert_true(calls(cli, FDN__ETCD_OP_RANGE, FDN__ETCD_UNREACHABLE) >= 1);
    int64_t t0 = test_now_ms(); /* the lease thread tries to grant a lease every 200 ms */
    while (calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_UNREACHABLE) +
                   calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_REJECTED) ==
               0 &&
           test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    assert_true(calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_UNREACHABLE) +
                    calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_REJECTED) >=
                1);
    uint64_t rejected = calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_REJECTED) +
                        calls(cli, FDN__ETCD_OP_RANGE, FDN__ETCD_REJECTED);
    t0 = test_now_ms();
    while (rejected == calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_REJECTED) +
                           calls(cli, FDN__ETCD_OP_RANGE, FDN__ETCD_REJECTED) &&
           test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    assert_true(calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_REJECTED) +
                    calls(cli, FDN__ETCD_OP_RANGE, FDN__ETCD_REJECTED) >
                rejected);
    /* a config following etcd alone has no breaker (the runtime's config gets one) */
    assert_int_equal(fdn__etcd_guard_state(fdn__config_etcd_client(cfg)), -1);

    /* etcd answers: cache filled, lease granted, the kept registration written */
    test_engine_script(e->script, "restart", e->dir);
    assert_true(wait_stale(a, false, WAIT_MS));
    assert_true(wait_has(a, "api", "a1", true, WAIT_MS) >= 0);
    assert_false(has(a, "api", "a2", NULL));
    s = stats(a);
    assert_true(s.lease_ok);
    assert_true(s.lease_id != 0);
    assert_int_equal(s.owned, 1);
    assert_true(wait_breaker(cli, FDN_BREAKER_CLOSED, WAIT_MS));
    assert_true(calls(cli, FDN__ETCD_OP_LEASE_GRANT, FDN__ETCD_OK) >= 1);
    fdn_registry_t *b = open_reg_at(e->url, ns, 3000, "proc-b");
    assert_true(has(b, "api", "a1", "http://a"));
    /* and its registration is a live one: registering it again is a no-op */
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, NULL), 0);
    /* the config follows etcd now */
    t0 = test_now_ms();
    while (fdn_config_etcd_stats(cfg, &cs) == 0 && cs.stale && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    assert_false(cs.stale);
    rc = FDN_EAGAIN;
    t0 = test_now_ms(); /* (its breaker may still be open for a moment) */
    while ((rc = fdn_config_update_int(cfg, "interface.max_results", 9, NULL)) != 0 &&
           test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(50);
    assert_int_equal(rc, 0);
    assert_int_equal(fdn_config_get_int(cfg, "interface.max_results", &v), 0);
    assert_int_equal(v, 9);
    fdn_config_destroy(cfg);
    fdn_registry_destroy(b);
    fdn_registry_destroy(a);
}

static void lost_lease_is_granted_again_and_entries_come_back(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "lease");
    fdn_registry_t *a = open_reg(ns, 3000, "proc-a");
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register_shared(a, "api", "a2", "http://a2", NULL, 0, NULL), 0);
    assert_true(wait_has(obs, "api", "a1", true, WAIT_MS) >= 0);
    fdn_registry_shared_stats_t before = stats(a);
    assert_int_equal(before.lease_grants, 1);

    /* another tool revokes a's lease: its entries go, then come back under a new lease (at a's
     * next keepalive). The observer is not polled for their absence: when that keepalive
     * falls just after the revoke, the entries are back within milliseconds, between two
     * polls, and the observer may even get the delete and the put in one read. That they went
     * shows in the re-registration itself: it is create-if-absent, so it writes an entry under
     * the new lease only where the old one is gone (else it counts the name as lost). */
    fdn__etcd_t *c = raw();
    assert_int_equal(fdn__etcd_lease_revoke(c, before.lease_id, false, NULL), 0);
    fdn__etcd_destroy(c);
    assert_true(wait_new_lease(obs, "api", "a1", before.lease_id, WAIT_MS));
    assert_true(wait_new_lease(obs, "api", "a2", before.lease_id, WAIT_MS));
    /* the lease thread counts a re-registration after etcd took it: the observer may see the
     * entry first */
    int64_t t0 = test_now_ms();
    while (stats(a).reregistrations < 2 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    fdn_registry_shared_stats_t after = stats(a);
    assert_int_equal(after.lease_grants, 2);
    assert_true(after.lease_id != before.lease_id);
    assert_int_equal(after.reregistrations, 2);
    assert_int_equal(after.lost, 0);
    assert_int_equal(after.owned, 2);
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn_registry_lookup_shared(obs, "api", "a1", &i, NULL), 0);
    assert_int_equal(fdn_registry_instance_lease(i), after.lease_id);
    fdn_registry_instance_release(i);
    fdn_registry_destroy(obs);
    fdn_registry_destroy(a);
}

/* Delete key (another tool's delete); its revision in *rev. */
static void raw_delete(const char *key)
{
    fdn__etcd_t *c = raw();
    int64_t n = 0;
    assert_int_equal(fdn__etcd_delete(c, key, strlen(key), NULL, 0, &n, NULL), 0);
    assert_int_equal(n, 1);
    fdn__etcd_destroy(c);
}

/* Wait until r's stats count at least n re-registrations (bounded); true then. */
static bool wait_reregistrations(fdn_registry_t *r, uint64_t n)
{
    int64_t t0 = test_now_ms();
    while (stats(r).reregistrations < n)
        if (test_now_ms() - t0 > WAIT_MS)
            return false;
        else
            test_pause_ms(10);
    return true;
}

/* Wait until r shows api/<instance> under lease written after revision after (bounded); its
 * mod revision then, else 0. */
static int64_t wait_written_after(fdn_registry_t *r, const char *instance, int64_t after,
                                  int64_t lease)
{
    int64_t t0 = test_now_ms();
    for (;;) {
        fdn_registry_instance_t *i = NULL;
        int64_t rev = 0;
        if (fdn_registry_lookup_shared(r, "api", instance, &i, NULL) == 0 &&
            fdn_registry_instance_lease(i) == lease)
            rev = fdn_registry_instance_mod_revision(i);
        fdn_registry_instance_release(i);
        if (rev > after)
            return rev;
        if (test_now_ms() - t0 > WAIT_MS)
            return 0;
        test_pause_ms(10);
    }
}

/* An entry of this process that another tool deletes comes back while the process lives (it is
 * the entry's source of truth, as after a lost lease): the watch shows the delete and the lease
 * thread writes the entry again at once; registering it again also writes it when the cache
 * does not show it. The old code wrote nothing: its list had the entry, so registering again
 * answered 0 ("already registered") and the entry stayed gone from etcd for the fleet. */
static void entry_deleted_by_another_tool_comes_back(void **state)
{
    (void)state;
    char ns[64], key[160];
    test_engine_unique_name(ns, sizeof(ns), "deleted");
    snprintf(key, sizeof(key), "/fdn/registry/%s/api/a1", ns);
    /* TTL a day: no keepalive by the period during the test */
    fdn_registry_t *a = open_reg(ns, 86400000, "proc-a");
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    assert_true(wait_has(obs, "api", "a1", true, WAIT_MS) >= 0);
    int64_t lease = stats(a).lease_id;
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn_registry_lookup_shared(obs, "api", "a1", &i, NULL), 0);
    int64_t rev0 = fdn_registry_instance_mod_revision(i);
    fdn_registry_instance_release(i);

    /* deleted, then registered again: 0, and the entry is in etcd again (written by the
     * registration, or by the lease thread if the watch told it first) */
    raw_delete(key);
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    assert_true(wait_reregistrations(a, 1));
    int64_t rev1 = wait_written_after(obs, "a1", rev0, lease);
    assert_true(rev1 > rev0);

    /* deleted again: written again by the lease thread, with nothing asked of the process */
    raw_delete(key);
    assert_true(wait_reregistrations(a, 2));
    assert_true(wait_written_after(obs, "a1", rev1, lease) > rev1);
    fdn_registry_shared_stats_t st = stats(a);
    assert_int_equal(st.owned, 1);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.lease_grants, 1);
    assert_int_equal(st.lease_id, lease);

    /* unregistered: its delete is not undone */
    assert_int_equal(fdn_registry_unregister_shared(a, "api", "a1", NULL), 0);
    assert_true(wait_has(obs, "api", "a1", false, WAIT_MS) >= 0);
    assert_int_equal(stats(a).owned, 0);
    fdn_registry_destroy(obs);
    fdn_registry_destroy(a);
}

/* ---- a loopback proxy before etcd that can hold one registration's txn ------------------ */

#define PROXY_CONNS 64

typedef struct proxy {
    int lfd;
    struct sockaddr_in up; /* the fixture's etcd */
    char url[64];
    pthread_t acceptor;
    pthread_t conns[PROXY_CONNS];
    size_t nconns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool hold_armed;        /* hold the next kv/txn request */
    int held_fd;            /* the client side of the held request, or -1 */
    bool release;           /* let the held request through */
    bool keepalive_in_hold; /* a keepalive came while the held request's client still waited */
    bool gave_up_first;     /* the held request's client gave up (closed) before any keepalive */
    int ka_during_hold;     /* keepalives that came while the held request's client waited */
    bool hold_ka_armed;     /* hold the next lease/keepalive request */
    bool hold_txn2_armed;   /* hold the next kv/txn request the same way */
    bool ka_held;           /* such a request (keepalive or txn) is held */
    bool ka_gave_up;        /* its client gave up (closed its connection) */
} proxy_t;

typedef struct {
    proxy_t *p;
    int cfd;
} proxy_conn_t;

static bool contains(const char *buf, size_t n, const char *s)
{
    return memmem(buf, n, s, strlen(s)) != NULL;
}

/* Hold the request just read from cfd (p->mu held) until released, or until its client gives up
 * (closes: true, the connection is done). */
static bool proxy_hold_until_given_up(proxy_t *p, int cfd)
{
    p->ka_held = true;
    pthread_cond_broadcast(&p->cv);
    while (!p->release && !p->stop) {
        struct pollfd h = {cfd, POLLRDHUP, 0};
        if (poll(&h, 1, 0) == 1 && (h.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            p->ka_gave_up = true;
            pthread_cond_broadcast(&p->cv);
            return true;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 10 * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        (void)pthread_cond_timedwait(&p->cv, &p->mu, &dl);
    }
    return false;
}

/* Relay one connection both ways; a kv/txn request while armed is held until released, and
 * so is a lease/keepalive request while hold_ka_armed. */
static void *proxy_conn(void *arg)
{
    proxy_conn_t *pc = arg;
    proxy_t *p = pc->p;
    int cfd = pc->cfd;
    free(pc);
    int ufd = socket(AF_INET, SOCK_STREAM, 0);
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&p->up, sizeof(p->up)) != 0) {
        close(cfd);
        if (ufd >= 0)
            close(ufd);
        return NULL;
    }
    char buf[65536];
    for (;;) {
        struct pollfd f[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
        int n = poll(f, 2, 100);
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop || n < 0)
            break;
        if (f[0].revents) {
            ssize_t k = read(cfd, buf, sizeof(buf));
            if (k <= 0)
                break;
            pthread_mutex_lock(&p->mu);
            if (p->held_fd >= 0 && contains(buf, (size_t)k, "POST /v3/lease/keepalive")) {
                /* is the held request's client still waiting (no FIN from it)? */
                struct pollfd h = {p->held_fd, POLLRDHUP, 0};
                if (poll(&h, 1, 0) == 1 && (h.revents & (POLLRDHUP | POLLHUP)) != 0)
                    p->gave_up_first = !p->keepalive_in_hold;
                else
                    p->keepalive_in_hold = !p->gave_up_first;
                if (p->keepalive_in_hold)
                    p->ka_during_hold++;
                pthread_cond_broadcast(&p->cv);
            }
            if (p->hold_armed && contains(buf, (size_t)k, "POST /v3/kv/txn")) {
                p->hold_armed = false;
                p->held_fd = cfd;
                pthread_cond_broadcast(&p->cv);
                while (!p->release && !p->stop)
                    pthread_cond_wait(&p->cv, &p->mu);
                p->held_fd = -1;
            }
            bool hold2 = false;
            if (p->hold_ka_armed && contains(buf, (size_t)k, "POST /v3/lease/keepalive")) {
                p->hold_ka_armed = false;
                hold2 = true;
            } else if (p->hold_txn2_armed && contains(buf, (size_t)k, "POST /v3/kv/txn")) {
                p->hold_txn2_armed = false;
                hold2 = true;
            }
            if (hold2 && proxy_hold_until_given_up(p, cfd)) {
                pthread_mutex_unlock(&p->mu);
                break;
            }
            pthread_mutex_unlock(&p->mu);
            if (write(ufd, buf, (size_t)k) != k)
                break;
        }
        if (f[1].revents) {
            ssize_t k = read(ufd, buf, sizeof(buf));
            if (k <= 0 || write(cfd, buf, (size_t)k) != k)
                break;
        }
    }
    close(cfd);
    close(ufd);
    return NULL;
}

static void *proxy_accept(void *arg)
{
    proxy_t *p = arg;
    for (;;) {
        int cfd = accept(p->lfd, NULL, NULL);
        if (cfd < 0)
            return NULL; /* shut down */
        proxy_conn_t *pc = malloc(sizeof(*pc));
        pthread_mutex_lock(&p->mu);
        bool room = pc != NULL && p->nconns < PROXY_CONNS && !p->stop;
        if (room) {
            pc->p = p;
            pc->cfd = cfd;
            room = pthread_create(&p->conns[p->nconns], NULL, proxy_conn, pc) == 0;
            if (room)
                p->nconns++;
        }
        pthread_mutex_unlock(&p->mu);
        if (!room) {
            free(pc);
            close(cfd);
        }
    }
}

static void proxy_start(proxy_t *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->held_fd = -1;
    int port = 0;
    assert_int_equal(sscanf(test_etcd_url, "http://127.0.0.1:%d", &port), 1);
    p->up.sin_family = AF_INET;
    p->up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->up.sin_port = htons((uint16_t)port);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(pthread_create(&p->acceptor, NULL, proxy_accept, p), 0);
}

/* Set one of p's flags (arm a hold, release the held calls) and wake its threads. */
static void proxy_set(proxy_t *p, bool *flag)
{
    pthread_mutex_lock(&p->mu);
    *flag = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void proxy_stop(proxy_t *p)
{
    proxy_set(p, &p->stop);
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->acceptor, NULL);
    close(p->lfd);
    for (size_t i = 0; i < p->nconns; i++)
        pthread_join(p->conns[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

/* Wait on p's condition until pred(p) (bounded by WAIT_MS); true then. */
static bool proxy_wait(proxy_t *p, bool (*pred)(const proxy_t *))
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (!pred(p) && rc == 0)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
    bool ok = pred(p);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static bool held(const proxy_t *p)
{
    return p->held_fd >= 0;
}

static bool keepalive_decided(const proxy_t *p)
{
    return p->keepalive_in_hold || p->gave_up_first;
}

static bool ka_held(const proxy_t *p)
{
    return p->ka_held;
}

static bool ka_gave_up_p(const proxy_t *p)
{
    return p->ka_gave_up;
}

typedef struct {
    fdn_registry_t *r;
    int rc;
} reg_job_t;

static void *register_job(void *arg)
{
    reg_job_t *j = arg;
    j->rc = fdn_registry_register_shared(j->r, "api", "slow", "http://slow", NULL, 0, NULL);
    return NULL;
}

/* A registration whose etcd call is stalled (the proxy holds its txn) does not hold the
 * keepalive back: the lease thread, woken for a round, gets its keepalive through while the
 * registration's client is still waiting. The old lease thread took own_mu, which register
 * holds across its etcd call, so its keepalive came only after that call had timed out. */
static void keepalive_not_delayed_by_a_stalled_registration(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "kaslow");
    proxy_t p;
    proxy_start(&p);
    /* TTL 30 s: request timeout 9999 ms, the bound of the stalled call */
    fdn_registry_t *r = open_reg_at(p.url, ns, 30000, "proc");
    proxy_set(&p, &p.hold_armed);
    reg_job_t job = {r, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, register_job, &job), 0);
    assert_true(proxy_wait(&p, held));
    fdn__regetcd_keepalive_now(fdn__registry_shared(r));
    assert_true(proxy_wait(&p, keepalive_decided));
    pthread_mutex_lock(&p.mu);
    bool in_hold = p.keepalive_in_hold;
    p.release = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    assert_true(in_hold);
    assert_int_equal(job.rc, 0);
    assert_true(stats(r).lease_ok);
    fdn_registry_destroy(r);
    proxy_stop(&p);
}

static bool one_keepalive_in_hold(const proxy_t *p)
{
    return p->ka_during_hold >= 1 || p->gave_up_first;
}

static bool two_keepalives_in_hold(const proxy_t *p)
{
    return p->ka_during_hold >= 2 || p->gave_up_first;
}

/* A round of the lease thread that checks this process's entries (woken by the watch showing
 * one of them deleted) while a registration holds own_mu across a stalled etcd call does not
 * stall the keepalives: it finds own_mu taken, and makes the round again at the retry period
 * (a keepalive each time) instead of waiting for the lock. The old round waited for own_mu
 * after its keepalive, so no further keepalive went out until the registration's call ended:
 * the proxy, which lets the registration through only after a second keepalive, saw none
 * until the registration's call timed out (30 s here: FDN_ETIMEDOUT). */
static void entry_check_does_not_stall_keepalives(void **state)
{
    (void)state;
    char ns[64], key[160];
    test_engine_unique_name(ns, sizeof(ns), "kacheck");
    snprintf(key, sizeof(key), "/fdn/registry/%s/api/a0", ns);
    proxy_t p;
    proxy_start(&p);
    /* TTL 30 s: no keepalive by the period while the test runs */
    fdn_registry_t *r = open_reg_at(p.url, ns, 30000, "proc");
    assert_int_equal(fdn_registry_register_shared(r, "api", "a0", "http://a0", NULL, 0, NULL), 0);
    proxy_set(&p, &p.hold_armed);
    reg_job_t job = {r, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, register_job, &job), 0);
    assert_true(proxy_wait(&p, held));
    /* another tool deletes a0: the watch wakes the lease thread to check the entries */
    raw_delete(key);
    assert_true(proxy_wait(&p, one_keepalive_in_hold));
    /* a later round gets its keepalive through too */
    fdn__regetcd_keepalive_now(fdn__registry_shared(r));
    assert_true(proxy_wait(&p, two_keepalives_in_hold));
    pthread_mutex_lock(&p.mu);
    int kas = p.ka_during_hold;
    p.release = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    fprintf(stderr, "keepalives during the stalled registration: %d\n", kas);
    assert_true(kas >= 2);
    assert_int_equal(job.rc, 0);
    /* and a0 is written again once the registration is done */
    assert_true(wait_has(r, "api", "a0", true, WAIT_MS) >= 0);
    assert_true(stats(r).lease_ok);
    fdn_registry_destroy(r);
    proxy_stop(&p);
}

/* A round of the lease thread woken to check this process's entries (the watch showed one
 * deleted) whose keepalive fails keeps that check for its retry: the entry is written again
 * once etcd answers. The old round dropped it with the failed keepalive: the entry stayed gone
 * (until some later relist). A proxy holds that round's keepalive; the request timeout is
 * 2 s (the held keepalive's bound) and the TTL a day (no other keepalive comes). */
static void entry_check_survives_a_failed_keepalive(void **state)
{
    (void)state;
    char ns[64], key[160];
    test_engine_unique_name(ns, sizeof(ns), "kafail");
    snprintf(key, sizeof(key), "/fdn/registry/%s/api/a0", ns);
    proxy_t p;
    proxy_start(&p);
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = p.url;
    eo.lease_ttl_ms = 86400000;
    eo.request_timeout_ms = 2000;
    eo.owner = "proc";
    fdn_registry_t *r = NULL;
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, NULL), 0);
    assert_int_equal(fdn_registry_register_shared(r, "api", "a0", "http://a0", NULL, 0, NULL), 0);
    proxy_set(&p, &p.hold_ka_armed);
    raw_delete(key); /* the watch wakes the lease thread: its keepalive is held */
    assert_true(proxy_wait(&p, ka_held));
    assert_true(wait_reregistrations(r, 1));
    assert_true(wait_has(r, "api", "a0", true, WAIT_MS) >= 0);
    fdn_registry_shared_stats_t st = stats(r);
    assert_true(st.keepalive_errors >= 1);
    assert_int_equal(st.lease_grants, 1);
    proxy_set(&p, &p.release);
    fdn_registry_destroy(r);
    proxy_stop(&p);
}

/* The lease thread's re-registration after a lost lease is bounded like a keepalive (TTL/3, or
 * the lease's time left), whatever request_timeout_ms says (30 s here, twice the TTL): one
 * write that etcd leaves unanswered is given up in time for the next round's keepalive, and the
 * new lease survives (two grants in all). The old write waited the whole request timeout, with
 * no keepalive meanwhile: the new lease expired under it and a third one was granted. */
static void stalled_reregistration_does_not_outlast_the_new_lease(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "reregstall");
    proxy_t p;
    proxy_start(&p);
    fdn_registry_t *r = open_reg_at(p.url, ns, 15000, "proc");
    assert_int_equal(fdn_registry_register_shared(r, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    int64_t first = stats(r).lease_id;
    proxy_set(&p, &p.hold_txn2_armed); /* the next txn: the re-registration of a1 under the new lease */
    fdn__etcd_t *c = raw();
    assert_int_equal(fdn__etcd_lease_revoke(c, first, false, NULL), 0);
    fdn__etcd_destroy(c);
    assert_true(proxy_wait(&p, ka_held));
    assert_true(proxy_wait(&p, ka_gave_up_p));
    /* a1 comes back under the second lease, which lives on */
    assert_true(wait_reregistrations(r, 1));
    assert_true(wait_new_lease(r, "api", "a1", first, WAIT_MS));
    fdn_registry_shared_stats_t st = stats(r);
    fprintf(stderr, "re-registration stalled: %llu grants\n", (unsigned long long)st.lease_grants);
    assert_int_equal(st.lease_grants, 2);
    assert_true(st.lease_ok);
    proxy_set(&p, &p.release);
    fdn_registry_destroy(r);
    proxy_stop(&p);
}

/* A keepalive that etcd does not answer gives up within the keepalive interval (TTL/3), or the
 * time left on the lease when shorter, whatever request_timeout_ms says (30 s here, twice the
 * TTL): the proxy holds one keepalive, whose client gives up while the lease still lives (an
 * observer sees the entry go when the lease expires), and the next keepalive, 200 ms later,
 * keeps the lease. The old keepalive waited the whole request timeout: the lease expired
 * while it still waited (the observer saw the entry go first). */
static void stalled_keepalive_gives_up_before_the_lease_expires(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "kastall");
    proxy_t p;
    proxy_start(&p);
    /* TTL 15 s: keepalives every 5 s, each bounded by 5 s; the request timeout is 30 s */
    fdn_registry_t *r = open_reg_at(p.url, ns, 15000, "proc");
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    assert_int_equal(fdn_registry_register_shared(r, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    assert_true(wait_has(obs, "api", "a1", true, WAIT_MS) >= 0);
    int64_t lease = stats(r).lease_id;
    proxy_set(&p, &p.hold_ka_armed);
    fdn__regetcd_keepalive_now(fdn__registry_shared(r));
    assert_true(proxy_wait(&p, ka_held));
    /* which comes first: the held keepalive given up, or the lease expired */
    bool gave_up = false, expired = false;
    int64_t t0 = test_now_ms();
    while (!gave_up && !expired && test_now_ms() - t0 < WAIT_MS) {
        expired = !has(obs, "api", "a1", NULL);
        pthread_mutex_lock(&p.mu);
        gave_up = p.ka_gave_up;
        pthread_mutex_unlock(&p.mu);
        if (!gave_up && !expired)
            test_pause_ms(10);
    }
    proxy_set(&p, &p.release); /* (the old code's keepalive still waits) */
    fprintf(stderr, "held keepalive: gave up %d, lease expired first %d\n", gave_up, expired);
    assert_false(expired);
    assert_true(gave_up);
    /* the failure is counted, and the next keepalive keeps the lease */
    t0 = test_now_ms();
    while ((stats(r).keepalive_errors < 1 || !stats(r).lease_ok) && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(10);
    fdn_registry_shared_stats_t st = stats(r);
    assert_true(st.keepalive_errors >= 1);
    assert_true(st.lease_ok);
    assert_int_equal(st.lease_id, lease);
    assert_int_equal(st.lease_grants, 1);
    fdn_registry_destroy(obs);
    fdn_registry_destroy(r);
    proxy_stop(&p);
}

/* A registration between the loss of the lease (here revoked by another tool) and the lease
 * thread's next keepalive, which grants a new one, is a transient gap: FDN_EUNAVAILABLE (retry),
 * not etcd's "lease not found" as FDN_EEXTERNAL. And it wakes the lease thread, which grants a
 * new lease and registers the entries again at once: a retry soon succeeds. The TTL is a day:
 * the lease thread's next keepalive by its period is 8 hours away (the old code waited for it:
 * every retry answered FDN_EUNAVAILABLE). */
static void register_in_the_lease_gap_is_unavailable(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "leasegap");
    fdn_registry_t *a = open_reg(ns, 86400000, "proc-a");
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    fdn_registry_shared_stats_t before = stats(a);
    /* the watch is paused: it would show the revoke's delete of a1, and the lease thread,
     * woken by it, would close the gap before the registration below */
    fdn__regetcd_pause_watch(fdn__registry_shared(a), true);
    fdn__etcd_t *c = raw();
    assert_int_equal(fdn__etcd_lease_revoke(c, before.lease_id, false, NULL), 0);
    fdn__etcd_destroy(c);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_register_shared(a, "api", "a2", "http://a2", NULL, 0, &err);
    fprintf(stderr, "register in the gap: %d %s\n", rc, err.message);
    assert_int_equal(rc, FDN_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "retry"));
    /* nothing kept of it (the caller retries) */
    assert_int_equal(stats(a).owned, before.owned);
    fdn__regetcd_pause_watch(fdn__registry_shared(a), false);
    /* the retries succeed once the woken lease thread has granted a new lease */
    int64_t t0 = test_now_ms();
    do {
        rc = fdn_registry_register_shared(a, "api", "a2", "http://a2", NULL, 0, NULL);
        if (rc == FDN_EUNAVAILABLE)
            test_pause_ms(10);
    } while (rc == FDN_EUNAVAILABLE && test_now_ms() - t0 < WAIT_MS);
    assert_int_equal(rc, 0);
    fdn_registry_shared_stats_t after = stats(a);
    assert_int_equal(after.lease_grants, 2);
    assert_true(after.lease_id != before.lease_id);
    /* and a1 is registered again under it */
    assert_true(wait_new_lease(a, "api", "a1", before.lease_id, WAIT_MS));
    assert_int_equal(stats(a).owned, 2);
    fdn_registry_destroy(a);
}

/* fdn_registry_destroy revokes the lease even while the breaker around etcd is open (here
 * forced open, as an operator could; etcd answers): one bounded call past the breaker, so this
 * process's entries go at once rather than when the TTL (a day here) ends. The old destroy
 * asked the breaker, which rejected the revoke: the entries stayed. */
static void destroy_revokes_the_lease_with_the_breaker_open(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "revokeopen");
    fdn_registry_t *a = open_reg(ns, 86400000, "proc-a");
    fdn_registry_t *obs = open_reg(ns, 5000, "observer");
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a1", NULL, 0, NULL), 0);
    assert_true(wait_has(obs, "api", "a1", true, WAIT_MS) >= 0);
    fdn_breaker_t *b = fdn__etcd_guard_breaker_of(fdn__regetcd_client(fdn__registry_shared(a)));
    assert_non_null(b);
    fdn_breaker_force_open(b);
    fdn_registry_destroy(a);
    assert_true(wait_has(obs, "api", "a1", false, WAIT_MS) >= 0);
    fdn_registry_destroy(obs);
}

/* A one-shot HTTP server that answers anything with a body that is not JSON. */
static void *not_etcd(void *arg)
{
    int fd = *(int *)arg;
    int cfd = accept(fd, NULL, NULL);
    if (cfd >= 0) {
        char buf[2048];
        (void)read(cfd, buf, sizeof(buf));
        const char *ans = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
                          "Connection: close\r\n\r\n<html></html>";
        (void)write(cfd, ans, strlen(ans));
        close(cfd);
    }
    return NULL;
}

static void bad_input(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "bad");
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    fdn_registry_t *r = NULL;
    fdn_error_t err = FDN_ERROR_INIT;

    /* bad URLs */
    eo.url = "etcd:2379";
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "http://"));
    eo.url = "http://127.0.0.1:1"; /* nothing listens */
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, &err), FDN_ECONNREFUSED);
    assert_non_null(strstr(err.message, "refused"));
    assert_null(r);
    /* a server that is not etcd */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, not_etcd, &fd), 0);
    eo.url = url;
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, &err), FDN_EPARSE);
    assert_non_null(strstr(err.message, "not a JSON"));
    pthread_join(th, NULL);
    close(fd);
    eo.url = test_etcd_url;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS; /* (the registries opened below must answer) */
    eo.lease_ttl_ms = 10;
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, &err), FDN_EINVAL);

    /* values under the prefix that are no entries: ignored and counted */
    eo.lease_ttl_ms = 5000;
    eo.max_value_bytes = 4096;
    r = open_reg(ns, 5000, "proc"); /* default max_value: 64 KiB */
    fdn_registry_t *small = NULL;
    assert_int_equal(fdn_registry_open(&small, &ro, &eo, &err), 0);
    uint64_t bad0 = stats(r).bad_values;
    fdn__etcd_t *c = raw();
    char key[200];
    snprintf(key, sizeof(key), "/fdn/registry/%s/svc/garbage", ns);
    raw_put(c, key, "not json at all", NULL);
    snprintf(key, sizeof(key), "/fdn/registry/%s/no-instance", ns);
    raw_put(c, key, "{\"endpoint\":\"x\"}", NULL);
    char *big = malloc(8192);
    assert_non_null(big);
    memset(big, 'a', 8191);
    big[8191] = '\0';
    memcpy(big, "{\"endpoint\":\"", 13);
    memcpy(big + 8189, "\"}", 2);
    snprintf(key, sizeof(key), "/fdn/registry/%s/svc/big", ns);
    raw_put(c, key, big, NULL);
    snprintf(key, sizeof(key), "/fdn/registry/%s/svc/good", ns);
    raw_put(c, key, "{\"endpoint\":\"g\"}", NULL);
    assert_true(wait_has(r, "svc", "good", true, WAIT_MS) >= 0);
    assert_true(wait_has(small, "svc", "good", true, WAIT_MS) >= 0);
    assert_false(has(r, "svc", "garbage", NULL));
    assert_true(has(r, "svc", "big", NULL)); /* 8 KiB is within r's 64 KiB */
    assert_false(has(small, "svc", "big", NULL));
    assert_int_equal(stats(r).bad_values - bad0, 2);
    assert_true(stats(small).bad_values >= 3);
    /* a value turned into garbage leaves the cache */
    raw_put(c, key, "{broken", NULL);
    assert_true(wait_has(r, "svc", "good", false, WAIT_MS) >= 0);

    /* an oversized registration is refused before etcd */
    assert_int_equal(fdn_registry_register_shared(small, "svc", "huge", big, NULL, 0, &err),
                     FDN_ETOO_LARGE);
    assert_non_null(strstr(err.message, "max_value_bytes"));
    assert_int_equal(stats(small).owned, 0);
    /* bigger than etcd takes (1.5 MiB by default): etcd's refusal is reported */
    fdn_registry_destroy(small);
    eo.max_value_bytes = 4u << 20;
    assert_int_equal(fdn_registry_open(&small, &ro, &eo, &err), 0);
    char *huge = malloc(2u << 20);
    assert_non_null(huge);
    memset(huge, 'h', (2u << 20) - 1);
    huge[(2u << 20) - 1] = '\0';
    {
        int rc = fdn_registry_register_shared(small, "svc", "huge", huge, NULL, 0, &err);
        assert_true(rc == FDN_ETOO_LARGE || rc == FDN_EEXTERNAL);
        assert_true(err.message[0] != '\0');
    }
    assert_false(has(small, "svc", "huge", NULL));
    free(huge);
    free(big);
    /* names with '/' and bad metadata */
    assert_int_equal(fdn_registry_register_shared(r, "a/b", "i", "e", NULL, 0, NULL), FDN_EINVAL);
    fdn_registry_meta_t m = {"", "v"};
    assert_int_equal(fdn_registry_register_shared(r, "a", "i", "e", &m, 1, NULL), FDN_EINVAL);
    fdn__etcd_destroy(c);
    fdn_registry_destroy(small);
    fdn_registry_destroy(r);
}

/* A runtime on etcd: the bound on each etcd call of its registry and of its config follower
 * (their clients' request_timeout_ms) is the options' request_timeout_ms, else the config's
 * infrastructure.registry.request_timeout_ms (default 2000); a value out of 1..600000 stops
 * the create with a message naming the path. */
static int64_t rt_reg_timeout(fdn_runtime_t *rt)
{
    return fdn__etcd_timeout_ms(
        fdn__regetcd_client(fdn__registry_shared(fdn_runtime_registry(rt))));
}

static int64_t rt_cfg_timeout(fdn_runtime_t *rt)
{
    return fdn__etcd_timeout_ms(fdn__config_etcd_client(fdn_runtime_config(rt)));
}

static fdn_runtime_t *rt_on_etcd(const char *ns, const char *const *envp, int64_t opt_ms,
                                 int *rc_out, fdn_error_t *err)
{
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = test_etcd_url;
    eo.request_timeout_ms = opt_ms;
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = ns;
    o.envp = envp;
    o.registry_etcd = &eo;
    fdn_runtime_t *rt = NULL;
    *rc_out = fdn_runtime_create(&rt, &o, err);
    return rt;
}

static void runtime_request_timeout_from_config(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "rtto");
    static const char *const env_set[] = {"FDN_INFRASTRUCTURE__REGISTRY__REQUEST_TIMEOUT_MS=12345",
                                          NULL};
    static const char *const env_none[] = {NULL};
    static const char *const env_bad[] = {"FDN_INFRASTRUCTURE__REGISTRY__REQUEST_TIMEOUT_MS=0",
                                          NULL};
    static const char *const env_big[] = {"FDN_INFRASTRUCTURE__REGISTRY__REQUEST_TIMEOUT_MS=600001",
                                          NULL};
    int rc = 0;
    fdn_error_t err = FDN_ERROR_INIT;

    /* from the config (here its environment layer) */
    fdn_runtime_t *rt = rt_on_etcd(ns, env_set, 0, &rc, &err);
    if (rc != 0)
        fprintf(stderr, "fdn_runtime_create: %s\n", err.message);
    assert_int_equal(rc, 0);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt),
                                        "infrastructure.registry.request_timeout_ms", &v),
                     0);
    assert_int_equal(v, 12345);
    assert_int_equal(rt_reg_timeout(rt), 12345);
    assert_int_equal(rt_cfg_timeout(rt), 12345);
    fdn_runtime_destroy(rt);

    /* the options' own value wins over the config's */
    rt = rt_on_etcd(ns, env_set, ETCD_TIMEOUT_MS, &rc, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(rt_reg_timeout(rt), ETCD_TIMEOUT_MS);
    assert_int_equal(rt_cfg_timeout(rt), ETCD_TIMEOUT_MS);
    fdn_runtime_destroy(rt);

    /* neither: the default */
    rt = rt_on_etcd(ns, env_none, 0, &rc, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(rt_reg_timeout(rt), 2000);
    assert_int_equal(rt_cfg_timeout(rt), 2000);
    fdn_runtime_destroy(rt);

    /* out of range: refused, naming the path */
    const char *const *bad[] = {env_bad, env_big};
    for (size_t i = 0; i < 2; i++) {
        err = (fdn_error_t)FDN_ERROR_INIT;
        rt = rt_on_etcd(ns, bad[i], 0, &rc, &err);
        assert_true(rc < 0);
        assert_null(rt);
        fprintf(stderr, "refused: %s\n", err.message);
        assert_non_null(strstr(err.message, "infrastructure.registry.request_timeout_ms"));
    }
}

/* ---- children: fresh runs of this program (test_spawn_self), not forks, so that
 * ThreadSanitizer follows them (child.h) ------------------------------------------------- */

/* a descriptor argument */
static int fd_arg(const char *s)
{
    return (int)test_child_int(s, 0, 1 << 20);
}

/* child register URL NS INSTANCE READY: registers worker/INSTANCE with a 2 s lease, says so on
 * the descriptor READY and waits to be killed. */
static int child_register_and_wait(char **argv)
{
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = argv[1];
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = argv[0];
    eo.lease_ttl_ms = 2000;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_registry_t *r = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_registry_open(&r, &ro, &eo, &err) != 0) {
        fprintf(stderr, "child: fdn_registry_open: %s\n", err.message);
        return 2;
    }
    if (fdn_registry_register_shared(r, "worker", argv[2], "http://child", NULL, 0, &err) != 0) {
        fprintf(stderr, "child: register: %s\n", err.message);
        return 3;
    }
    char c = 'r';
    if (write(fd_arg(argv[3]), &c, 1) != 1)
        return 4;
    for (;;)
        pause();
}

/* child race URL NS K READY GO RESULT DONE: opens a registry as racer-K, says so on READY,
 * waits for GO, registers leader/the-one and writes K and the outcome (W won, L lost, E
 * anything else) on RESULT, then destroys the registry once DONE reads EOF (the parent closed
 * it). */
static int child_race(char **argv)
{
    int k = (int)test_child_int(argv[2], 0, 1);
    int ready = fd_arg(argv[3]), go = fd_arg(argv[4]), result = fd_arg(argv[5]),
        done = fd_arg(argv[6]);
    char owner[32];
    snprintf(owner, sizeof(owner), "racer-%d", k);
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = argv[1];
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = argv[0];
    eo.owner = owner;
    eo.lease_ttl_ms = 5000;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_registry_t *r = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_registry_open(&r, &ro, &eo, &err) != 0) {
        fprintf(stderr, "child %s: fdn_registry_open: %s\n", owner, err.message);
        return 2;
    }
    char c = 'r';
    if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
        return 3;
    int rc = fdn_registry_register_shared(r, "leader", "the-one", owner, NULL, 0, &err);
    if (rc != 0 && rc != FDN_EEXIST)
        fprintf(stderr, "child %s: register: %s\n", owner, err.message);
    char out[2] = {(char)k, (char)(rc == 0 ? 'W' : rc == FDN_EEXIST ? 'L' : 'E')};
    if (write(result, out, 2) != 2)
        return 4;
    (void)read(done, &c, 1); /* until the parent closes it */
    fdn_registry_destroy(r);
    return 0;
}

int main(int argc, char **argv)
{
    static const test_child_role_t roles[] = {
        {"register", "URL NS INSTANCE READY", 4, child_register_and_wait},
        {"race", "URL NS K READY GO RESULT DONE", 7, child_race},
    };
    int rc = test_child_main(argc, argv, roles, sizeof(roles) / sizeof(roles[0]));
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(register_lookup_list_unregister),
        cmocka_unit_test(killed_process_disappears_within_ttl),
        cmocka_unit_test(two_processes_race_one_wins),
        cmocka_unit_test(compacted_watcher_resyncs_without_missing_a_delete),
        cmocka_unit_test(foreign_key_with_a_nul_leaves_entries_alone),
        cmocka_unit_test(unregister_removes_an_unconfirmed_registration),
        cmocka_unit_test(compaction_behind_another_is_no_error),
        cmocka_unit_test(lost_lease_is_granted_again_and_entries_come_back),
        cmocka_unit_test(register_in_the_lease_gap_is_unavailable),
        cmocka_unit_test(entry_deleted_by_another_tool_comes_back),
        cmocka_unit_test(keepalive_not_delayed_by_a_stalled_registration),
        cmocka_unit_test(stalled_keepalive_gives_up_before_the_lease_expires),
        cmocka_unit_test(entry_check_does_not_stall_keepalives),
        cmocka_unit_test(entry_check_survives_a_failed_keepalive),
        cmocka_unit_test(stalled_reregistration_does_not_outlast_the_new_lease),
        cmocka_unit_test(destroy_revokes_the_lease_with_the_breaker_open),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(runtime_request_timeout_from_config),
        cmocka_unit_test_setup_teardown(etcd_restart_stale_then_fresh, own_etcd_up, own_etcd_down),
        cmocka_unit_test_setup_teardown(start_while_etcd_is_down, own_etcd_up, own_etcd_down),
    };
    return cmocka_run_group_tests(tests, test_engine_etcd_setup, NULL);
}
