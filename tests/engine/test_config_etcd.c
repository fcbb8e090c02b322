/* The config service following a real etcd (fixture "etcd", URL in $FDN_TEST_ETCD_DIR/url):
 * an update made in one process is applied by the others with the same revision; the four
 * checks apply to local updates and to values another tool writes into etcd (refused,
 * counted, never applied); a deleted key puts the start-up value back; four processes making
 * 100 concurrent compare-and-swap updates end with 100 distinct revisions, the same value and
 * the same sequence everywhere; a reset on one process goes through etcd and every process
 * (another one among them) applies it once, at one revision. Every wait polls against a
 * bounded deadline. The other processes are fresh runs of this program (main's "child" roles,
 * test_spawn_self), not forks: this process has liburcu's call_rcu thread from the first test
 * on, and ThreadSanitizer kills the child of such a fork once it starts a thread, as a config
 * follower does (tests/support/child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/clock.h>
#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/registry.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "services/config_int.h"
#include "services/event_store_int.h"
#include "storage/etcd_client.h"
#include "child.h"
#include "engine.h"
#include "refusing_hook.h"

/* Bound of every poll for something that must happen (a value applied, a refusal counted, a
 * change notified): a minute, only to catch a hang. Those things come through etcd, its watch
 * and the library's threads, which a loaded machine running a sanitizer build can each delay
 * for seconds; a poll returns as soon as it happens. */
#define WAIT_MS 60000

/* Bound of each etcd call of the clients made here (request_timeout_ms; the library's default
 * is 2 s): half a minute. A call that must succeed fails for good when etcd (or this process, or
 * libcurl) is stalled past its bound, and nothing is resent after a timeout; a loaded machine
 * running a sanitizer build can stall any of them for seconds. Against an etcd that is down
 * the calls fail at once anyway (connection refused), so no test waits longer for it. */
#define ETCD_TIMEOUT_MS 30000

#define NPROC   4
#define PERPROC 25

static const char *const no_env[] = {NULL};

/* A config service following etcd in namespace ns with the environment envp (NULL: none;
 * NULL when follow fails in a child). */
static fdn_config_t *follow_env(const char *ns, const char *const *envp, bool must)
{
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = envp != NULL ? envp : no_env;
    o.ignore_env = envp == NULL;
    fdn_config_t *c = NULL;
    if (fdn_config_create(&c, &o, NULL) != 0) {
        assert_false(must);
        return NULL;
    }
    fdn_config_etcd_opts_t eo = FDN_CONFIG_ETCD_OPTS_INIT;
    eo.url = test_etcd_url;
    eo.ns = ns;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_config_follow_etcd(c, &eo, &err);
    if (rc != 0) {
        fprintf(stderr, "fdn_config_follow_etcd: %s\n", err.message);
        assert_false(must);
        fdn_config_destroy(c);
        return NULL;
    }
    return c;
}

static fdn_config_t *follow(const char *ns, bool must)
{
    return follow_env(ns, NULL, must);
}

static fdn_config_etcd_stats_t stats(fdn_config_t *c)
{
    fdn_config_etcd_stats_t s;
    memset(&s, 0, sizeof(s));
    s.version = FDN_CONFIG_ETCD_STATS_VERSION;
    assert_int_equal(fdn_config_etcd_stats(c, &s), 0);
    return s;
}

static bool get_bool(fdn_config_t *c, const char *path)
{
    bool b = false;
    assert_int_equal(fdn_config_get_bool(c, path, &b), 0);
    return b;
}

static int64_t get_int(fdn_config_t *c, const char *path)
{
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(c, path, &v), 0);
    return v;
}

static bool wait_bool(fdn_config_t *c, const char *path, bool want)
{
    int64_t t0 = test_now_ms();
    while (get_bool(c, path) != want) {
        if (test_now_ms() - t0 > WAIT_MS)
            return false;
        test_pause_ms(5);
    }
    return true;
}

static bool wait_refused(fdn_config_t *c, uint64_t n)
{
    int64_t t0 = test_now_ms();
    while (stats(c).refused < n) {
        if (test_now_ms() - t0 > WAIT_MS)
            return false;
        test_pause_ms(5);
    }
    return true;
}

typedef struct seen {
    pthread_mutex_t mu;
    size_t n;
    uint64_t rev[NPROC * PERPROC + 8];
    int64_t val[NPROC * PERPROC + 8];
} seen_t;

static void on_change(const fdn_config_change_t *ch, void *user)
{
    seen_t *s = user;
    if (ch->kind != FDN_CONFIG_CHANGE_UPDATED)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->n < sizeof(s->rev) / sizeof(s->rev[0])) {
        s->rev[s->n] = ch->revision;
        s->val[s->n] = strtoll(ch->new_json, NULL, 10);
        s->n++;
    }
    pthread_mutex_unlock(&s->mu);
}

static size_t seen_count(seen_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void update_reaches_every_process(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "cfg");
    /* the history before now compacted away: the followers must start from the range's
     * revision, not replay from the beginning */
    fdn__etcd_t *raw = NULL;
    assert_int_equal(fdn__etcd_create(&raw, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    int64_t now_rev = 0;
    assert_int_equal(fdn__etcd_put(raw, "/fdn/test/tick", 14, "1", 1, 0, &now_rev, NULL), 0);
    assert_int_equal(fdn__etcd_compact(raw, now_rev, NULL), 0);
    fdn_config_t *a = follow(ns, true);
    fdn_config_t *b = follow(ns, true);
    assert_true(stats(a).revision >= now_rev); /* the range's revision, before any event */
    seen_t sb = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {0}};
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(b, "dev", on_change, &sb, &id), 0);
    uint64_t r0 = fdn_config_revision(a);

    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_bool(a, "dev.debug_mode", true, &err), 0);
    assert_true(get_bool(a, "dev.debug_mode")); /* read your own write */
    assert_true(wait_bool(b, "dev.debug_mode", true));
    uint64_t ra = fdn_config_revision(a);
    assert_true(ra > r0);
    assert_int_equal(fdn_config_revision(b), ra); /* the etcd revision, the same everywhere */
    /* The follower's revision is the store revision etcd put on its last watch message: all of
     * the namespace up to it is applied. Other clients of the shared etcd (the tests ctest runs
     * alongside) move the store on between the change and that message, so it is at least the
     * change's and at most etcd's now. */
    int64_t seen_a = stats(a).revision;
    fdn__etcd_range_t now;
    assert_int_equal(fdn__etcd_range(raw, "/fdn/test/tick", 14, NULL, 0, &now, NULL), 0);
    assert_true(seen_a >= (int64_t)ra);
    assert_true(seen_a <= now.revision);
    fdn__etcd_range_clear(&now);
    int64_t t0 = test_now_ms();
    while (seen_count(&sb) < 1 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(seen_count(&sb), 1); /* once per change */
    assert_int_equal(sb.rev[0], ra);

    /* the local checks refuse before anything reaches etcd, with the codes of a local
     * config */
    fdn_config_opts_t lo = FDN_CONFIG_OPTS_INIT;
    lo.envp = no_env;
    lo.ignore_env = true;
    fdn_config_t *local = NULL;
    assert_int_equal(fdn_config_create(&local, &lo, NULL), 0);
    int want = fdn_config_update_int(local, "interface.max_results", -1, NULL);
    assert_true(want < 0);
    assert_int_equal(fdn_config_update_int(a, "interface.max_results", -1, &err), want);
    assert_int_equal(fdn_config_update_int(a, "storage.warm.max_size_mb", 5, &err),
                     FDN_ECONFIG_FORBIDDEN);
    fdn_config_destroy(local);
    assert_int_equal(fdn_config_revision(a), ra);

    /* another tool writes values this service refuses: counted, never applied */
    char key[200];
    snprintf(key, sizeof(key), "/fdn/config/%s/interface.max_results", ns);
    assert_int_equal(fdn__etcd_put(raw, key, strlen(key), "-5", 2, 0, NULL, NULL), 0);
    assert_true(wait_refused(a, 1));
    assert_true(wait_refused(b, 1));
    assert_int_equal(get_int(a, "interface.max_results"), 1000);
    assert_non_null(strstr(stats(a).last_refused, "interface.max_results"));
    assert_int_equal(fdn__etcd_put(raw, key, strlen(key), "not json", 8, 0, NULL, NULL), 0);
    assert_true(wait_refused(b, 2));
    snprintf(key, sizeof(key), "/fdn/config/%s/storage.warm.max_size_mb", ns);
    assert_int_equal(fdn__etcd_put(raw, key, strlen(key), "5", 1, 0, NULL, NULL), 0);
    assert_true(wait_refused(b, 3));
    assert_int_equal(fdn_config_revision(b), ra);
    /* a valid value after refused ones: applied (the compare-and-swap base is etcd's) */
    assert_int_equal(fdn_config_update_int(b, "interface.max_results", 77, &err), 0);
    assert_int_equal(get_int(b, "interface.max_results"), 77);
    t0 = test_now_ms();
    while (get_int(a, "interface.max_results") != 77 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(a, "interface.max_results"), 77);

    /* a deleted key: back to the start-up value */
    snprintf(key, sizeof(key), "/fdn/config/%s/dev.debug_mode", ns);
    int64_t deleted = 0;
    assert_int_equal(fdn__etcd_delete(raw, key, strlen(key), NULL, 0, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_true(wait_bool(a, "dev.debug_mode", false));
    assert_true(wait_bool(b, "dev.debug_mode", false));
    /* and updatable again from there (compare-and-swap on a missing key) */
    assert_int_equal(fdn_config_update_bool(b, "dev.debug_mode", true, &err), 0);
    assert_true(wait_bool(a, "dev.debug_mode", true));

    /* a late follower starts from etcd's state */
    fdn_config_t *c = follow(ns, true);
    assert_true(get_bool(c, "dev.debug_mode"));
    assert_int_equal(get_int(c, "interface.max_results"), 77);
    assert_true(stats(c).refused >= 1); /* storage.warm.max_size_mb is still there */
    fdn_config_destroy(c);
    fdn__etcd_destroy(raw);
    assert_int_equal(fdn_config_unsubscribe(b, id), 0);
    fdn_config_destroy(b);
    fdn_config_destroy(a);
}

/* child_updates's steps on its follower c, the changes going to s. */
static int updates_steps(fdn_config_t *c, seen_t *s, int k, int ready, int go, const char *file)
{
    if (fdn_config_subscribe(c, "interface.max_results", on_change, s, NULL) != 0)
        return 3;
    char b = 'r';
    if (write(ready, &b, 1) != 1 || read(go, &b, 1) != 1)
        return 4;
    for (int i = 0; i < PERPROC; i++) {
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_config_update_int(c, "interface.max_results", 1 + k * 1000 + i, &err);
        if (rc != 0) {
            fprintf(stderr, "child %d update %d: %s\n", k, i, err.message);
            return 5;
        }
    }
    int64_t t0 = test_now_ms();
    while (seen_count(s) < NPROC * PERPROC && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    FILE *f = fopen(file, "w");
    if (f == NULL)
        return 6;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%llu %lld\n", (unsigned long long)s->rev[i], (long long)s->val[i]);
    pthread_mutex_unlock(&s->mu);
    fprintf(f, "final %llu %lld\n", (unsigned long long)fdn_config_revision(c),
            (long long)get_int(c, "interface.max_results"));
    fclose(f);
    fprintf(stderr, "process %d: %llu compare-and-swap conflicts\n", k,
            (unsigned long long)stats(c).cas_conflicts);
    return 0;
}

/* A child: follow, subscribe, make PERPROC updates when told, wait for all NPROC * PERPROC
 * changes, write "revision value" lines to file. Returns 0, or the step that failed (2..6);
 * frees what it made either way (the child is a process of its own, and LeakSanitizer checks
 * it at exit). */
static int child_updates(const char *ns, int k, int ready, int go, const char *file)
{
    fdn_config_t *c = follow(ns, false);
    if (c == NULL)
        return 2;
    seen_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fdn_config_destroy(c);
        return 3;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = updates_steps(c, s, k, ready, go, file);
    fdn_config_destroy(c); /* its callbacks end here: s may go */
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

static char *slurp(const char *file)
{
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    static char buf[NPROC][8192];
    static int next;
    char *b = buf[next++ % NPROC];
    size_t n = fread(b, 1, sizeof(buf[0]) - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void concurrent_cas_updates_one_order(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "cas");
    /* one ready pipe per process: one that dies before it is ready ends its pipe (EOF, the test
     * fails at once), where a shared one stayed open in the others */
    int ready[NPROC][2], go[2];
    for (int k = 0; k < NPROC; k++)
        assert_int_equal(pipe2(ready[k], O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    char files[NPROC][64];
    pid_t pids[NPROC];
    for (int k = 0; k < NPROC; k++) {
        snprintf(files[k], sizeof(files[k]), "/tmp/fdn-cas-%u-%d", test_engine_run(), k);
        const int keep[] = {ready[k][1], go[0]}; /* the child's ends */
        char kk[8], fd[2][16];
        snprintf(kk, sizeof(kk), "%d", k);
        for (int j = 0; j < 2; j++)
            snprintf(fd[j], sizeof(fd[j]), "%d", keep[j]);
        const char *const args[] = {"child", "cas", test_etcd_url, ns,  kk,
                                    fd[0],   fd[1], files[k],      NULL};
        pids[k] = test_spawn_self(args, keep, 2);
        close(ready[k][1]);
    }
    close(go[0]);
    char b;
    for (int k = 0; k < NPROC; k++)
        assert_int_equal(read(ready[k][0], &b, 1), 1);
    char all[NPROC];
    memset(all, 'g', sizeof(all));
    assert_int_equal(write(go[1], all, NPROC), NPROC); /* all start at once */
    for (int k = 0; k < NPROC; k++)
        test_child_wait_ok(pids[k], "updating process");
    for (int k = 0; k < NPROC; k++)
        close(ready[k][0]);
    close(go[1]);
    /* every process saw the same 100 changes in the same order, with 100 distinct growing
     * revisions, and ends with the same value and revision */
    char *first = slurp(files[0]);
    for (int k = 1; k < NPROC; k++)
        assert_string_equal(slurp(files[k]), first);
    unsigned long long prev = 0, rev;
    long long val;
    bool got[NPROC * PERPROC] = {false};
    const char *p = first;
    int lines = 0;
    while (sscanf(p, "%llu %lld", &rev, &val) == 2) {
        assert_true(rev > prev);
        prev = rev;
        long long k = (val - 1) / 1000, i = (val - 1) % 1000;
        assert_true(k >= 0 && k < NPROC && i >= 0 && i < PERPROC);
        assert_false(got[k * PERPROC + i]);
        got[k * PERPROC + i] = true;
        lines++;
        p = strchr(p, '\n') + 1;
    }
    assert_int_equal(lines, NPROC * PERPROC);
    unsigned long long frev;
    long long fval;
    assert_int_equal(sscanf(p, "final %llu %lld", &frev, &fval), 2);
    assert_int_equal(frev, prev);
    assert_int_equal(fval, val);
    for (int k = 0; k < NPROC; k++)
        unlink(files[k]);
}

/* Counts of a reset child's subscription: resets, and updates of interface.max_results. */
typedef struct resets_seen {
    pthread_mutex_t mu;
    int resets, updates;
} resets_seen_t;

static void on_reset_change(const fdn_config_change_t *ch, void *user)
{
    resets_seen_t *s = user;
    pthread_mutex_lock(&s->mu);
    if (ch->kind == FDN_CONFIG_CHANGE_RESET)
        s->resets++;
    else if (strcmp(ch->path, "interface.max_results") == 0)
        s->updates++;
    pthread_mutex_unlock(&s->mu);
}

/* Poll until c reads max_results == want_max and dev.debug_mode == want_debug (WAIT_MS). */
static bool wait_state(fdn_config_t *c, int64_t want_max, bool want_debug)
{
    int64_t t0 = test_now_ms();
    for (;;) {
        int64_t v = 0;
        bool d = false;
        if (fdn_config_get_int(c, "interface.max_results", &v) == 0 &&
            fdn_config_get_bool(c, "dev.debug_mode", &d) == 0 && v == want_max && d == want_debug)
            return true;
        if (test_now_ms() - t0 > WAIT_MS)
            return false;
        test_pause_ms(5);
    }
}

/* A child's step failed: say what its config follower saw, return code. */
static int child_gave_up(fdn_config_t *c, int code)
{
    fdn_config_etcd_stats_t s;
    memset(&s, 0, sizeof(s));
    s.version = FDN_CONFIG_ETCD_STATS_VERSION;
    int64_t v = 0;
    bool d = false;
    (void)fdn_config_get_int(c, "interface.max_results", &v);
    (void)fdn_config_get_bool(c, "dev.debug_mode", &d);
    if (fdn_config_etcd_stats(c, &s) == 0)
        fprintf(stderr,
                "child step %d: max_results=%lld debug=%d revision=%llu; follower: stale=%d "
                "revision=%lld applied=%llu refused=%llu relists=%llu last refused: %s\n",
                code, (long long)v, d, (unsigned long long)fdn_config_revision(c), s.stale,
                (long long)s.revision, (unsigned long long)s.applied, (unsigned long long)s.refused,
                (unsigned long long)s.relists, s.last_refused);
    return code;
}

/* child_resets's steps on its follower c, the changes counted in s. */
static int resets_steps(fdn_config_t *c, resets_seen_t *s, int ack)
{
    if (fdn_config_subscribe(c, "", on_reset_change, s, NULL) != 0)
        return 3;
    char b = '1';
    if (write(ack, &b, 1) != 1) /* following */
        return 4;
    if (!wait_state(c, 77, true))
        return child_gave_up(c, 5);
    if (write(ack, &b, 1) != 1) /* the updates */
        return 4;
    if (!wait_state(c, 1000, false))
        return child_gave_up(c, 6); /* another process's fdn_config_reset: the defaults here too */
    if (write(ack, &b, 1) != 1)
        return 4;
    if (!wait_state(c, 5, false))
        return child_gave_up(c, 7); /* an update after the reset */
    if (write(ack, &b, 1) != 1)
        return 4;
    if (!wait_state(c, 500, false))
        return child_gave_up(
            c, 8); /* another process's reset to start-up: this process's start-up value */
    /* each reset notified once; no update for the keys each reset deleted */
    int64_t t0 = test_now_ms();
    int resets = 0, updates = 0;
    do {
        pthread_mutex_lock(&s->mu);
        resets = s->resets;
        updates = s->updates;
        pthread_mutex_unlock(&s->mu);
        if (resets < 2)
            test_pause_ms(5);
    } while (resets < 2 && test_now_ms() - t0 < WAIT_MS);
    if (resets != 2)
        return 9;
    if (updates != 2) /* 77 and 5 */
        return 10;
    char rev[32];
    int n = snprintf(rev, sizeof(rev), "%llu\n", (unsigned long long)fdn_config_revision(c));
    if (write(ack, rev, (size_t)n) != n)
        return 4;
    return 0;
}

/* The child of resets_go_through_etcd: a process whose start-up max_results is 500 (its
 * environment). It acknowledges each state it reaches on ack, then writes its revision.
 * Returns 0, or the step that failed (2..10); frees what it made either way (LeakSanitizer
 * checks the child at exit). */
static int child_resets(const char *ns, int ack)
{
    static const char *const env[] = {"FDN_INTERFACE__MAX_RESULTS=500", NULL};
    fdn_config_t *c = follow_env(ns, env, false);
    if (c == NULL)
        return 2;
    resets_seen_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fdn_config_destroy(c);
        return 3;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = resets_steps(c, s, ack);
    fdn_config_destroy(c); /* its callbacks end here: s may go */
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

/* Read the child's next acknowledgement; when it has exited instead, fail with its status
 * (child_resets returns a distinct code per step). */
static void child_ack(int fd, pid_t pid)
{
    char c;
    if (read(fd, &c, 1) == 1)
        return;
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        fail_msg("no acknowledgement from the child, and it cannot be waited for");
    fail_msg("the child ended before acknowledging: %s %d", WIFEXITED(st) ? "exit" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void resets_go_through_etcd(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "reset");
    /* the child: a fresh run of this program (child.h), following before a and b do */
    int ack[2];
    assert_int_equal(pipe2(ack, O_CLOEXEC), 0);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", ack[1]);
    const char *const args[] = {"child", "resets", test_etcd_url, ns, fd, NULL};
    pid_t pid = test_spawn_self(args, &ack[1], 1);
    close(ack[1]);
    fdn_config_t *a = follow(ns, true);
    fdn_config_t *b = follow(ns, true);
    child_ack(ack[0], pid); /* the child follows */
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(a, "interface.max_results", 77, &err), 0);
    assert_int_equal(fdn_config_update_bool(a, "dev.debug_mode", true, &err), 0);
    assert_true(wait_state(b, 77, true));
    child_ack(ack[0], pid);

    /* a reset on a: through etcd, applied by every process, a reading its own reset */
    uint64_t before = fdn_config_revision(a);
    assert_int_equal(fdn_config_reset(a, &err), 0);
    assert_true(wait_state(a, 1000, false)); /* (immediately true: read your own reset) */
    uint64_t reset_rev = fdn_config_revision(a);
    assert_true(reset_rev > before);
    assert_true(wait_state(b, 1000, false));
    assert_int_equal(fdn_config_revision(b), reset_rev); /* one revision everywhere */
    child_ack(ack[0], pid);

    /* updates after a reset: the compare-and-swap base is the deleted key */
    assert_int_equal(fdn_config_update_int(b, "interface.max_results", 5, &err), 0);
    assert_true(wait_state(a, 5, false));
    child_ack(ack[0], pid);

    /* a reset to start-up values on b: each process its own start-up values */
    assert_int_equal(fdn_config_reset_to_startup(b, &err), 0);
    assert_true(wait_state(b, 1000, false));
    assert_true(wait_state(a, 1000, false));
    uint64_t last = fdn_config_revision(b);
    assert_int_equal(fdn_config_revision(a), last);
    char line[64] = "";
    size_t got = 0;
    while (got < sizeof(line) - 1 && read(ack[0], &line[got], 1) == 1 && line[got] != '\n')
        got++;
    test_child_wait_ok(pid, "resetting process");
    assert_int_equal(strtoull(line, NULL, 10), last); /* the child too */
    close(ack[0]);

    /* a process that starts later applies the last reset (and counts nothing refused) */
    fdn_config_t *d = follow(ns, true);
    assert_int_equal(fdn_config_revision(d), last);
    assert_int_equal(get_int(d, "interface.max_results"), 1000);
    assert_int_equal(stats(d).refused, 0);
    assert_int_equal(stats(a).refused, 0);
    fdn_config_destroy(d);
    fdn_config_destroy(b);
    fdn_config_destroy(a);
}

static _Atomic int g_remote_refused;

static int on_remote_refused(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                             const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event, (void)m, (void)nm, (void)user;
    for (size_t i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "path") == 0 && strcmp(meta[i].value, "interface.max_results") == 0)
            atomic_fetch_add(&g_remote_refused, 1);
    return 0;
}

/* A value another tool writes that is not JSON, out of range, or oversized: refused here,
 * counted, reported to telemetry (foundation.config.remote_refused), never applied. */
static void foreign_values_refused_and_reported(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "foreign");
    fdn_config_t *a = follow(ns, true);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    uint64_t hid = 0;
    assert_int_equal(fdn_telemetry_attach(tm, &hid, "foundation.config.remote_refused",
                                          FDN_TELEMETRY_MATCH_EXACT, on_remote_refused, NULL),
                     0);
    fdn__config_set_telemetry(a, tm);
    fdn__etcd_t *raw = NULL;
    assert_int_equal(fdn__etcd_create(&raw, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    char key[200];
    snprintf(key, sizeof(key), "/fdn/config/%s/interface.max_results", ns);
    assert_int_equal(fdn__etcd_put(raw, key, strlen(key), "{nope", 5, 0, NULL, NULL), 0);
    assert_true(wait_refused(a, 1));
    size_t big = 512u << 10; /* a 512 KiB JSON string */
    char *v = malloc(big + 3);
    assert_non_null(v);
    v[0] = '"';
    memset(v + 1, 'x', big);
    v[big + 1] = '"';
    v[big + 2] = '\0';
    assert_int_equal(fdn__etcd_put(raw, key, strlen(key), v, big + 2, 0, NULL, NULL), 0);
    free(v);
    assert_true(wait_refused(a, 2));
    assert_int_equal(get_int(a, "interface.max_results"), 1000);
    int64_t t0 = test_now_ms();
    while (atomic_load(&g_remote_refused) < 2 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(atomic_load(&g_remote_refused), 2);
    /* and a good value after them is applied */
    assert_int_equal(fdn_config_update_int(a, "interface.max_results", 12, NULL), 0);
    assert_int_equal(get_int(a, "interface.max_results"), 12);
    fdn__config_set_telemetry(a, NULL);
    fdn_config_destroy(a);
    fdn_telemetry_destroy(tm);
    fdn__etcd_destroy(raw);
}

/* ---- a runtime on etcd: its services are asked before etcd is written ---------------------- */

/* The value etcd holds at key (NULL: no such key) and its mod_revision. */
static char *etcd_value(fdn__etcd_t *raw, const char *key, int64_t *mod_rev)
{
    fdn__etcd_range_t rg;
    assert_int_equal(fdn__etcd_range(raw, key, strlen(key), NULL, 0, &rg, NULL), 0);
    char *v = NULL;
    *mod_rev = 0;
    if (rg.n > 0) {
        v = strndup(rg.kvs[0].value, rg.kvs[0].valuelen);
        assert_non_null(v);
        *mod_rev = rg.kvs[0].mod_revision;
    }
    fdn__etcd_range_clear(&rg);
    return v;
}

/* A runtime on etcd (its config follows etcd, its registry on etcd) named ns. */
static fdn_runtime_t *runtime_on(const char *ns, fdn_registry_etcd_opts_t *eo)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = ns;
    o.envp = no_env;
    o.ignore_env = true;
    o.registry_etcd = eo;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_runtime_create(&rt, &o, &err);
    if (rc != 0)
        fprintf(stderr, "runtime on etcd %s: %s %s\n", eo->url, fdn_err_name(rc), err.message);
    assert_int_equal(rc, 0);
    return rt;
}

/* A runtime whose config follows etcd: a value one of its services refuses is refused to the
 * updater with the service's error before it is written to etcd, as in a runtime of its own:
 * etcd has no key for the path, another follower never applies it, the runtime's tree keeps
 * its value and revision, and the refusal is recorded (config_update_refused) and counted
 * (foundation.config.service_refused), not as a change from etcd. Before, the value was
 * written to etcd first: the updater got 0, every other process without such a service
 * applied it and this one only counted its own refusal. A value the service takes still goes
 * through etcd to every process, and one another process writes that the service refuses is
 * still refused here when it arrives, counted as a change from etcd.
 * The schema bounds every value a real service refuses (interface.max_results above
 * 4294967295 was the last), so the refused value is the test's: its apply hook wraps the
 * runtime's and hands it interface.max_results 4242 as 4294967296, which the event store
 * refuses, in the check asked before etcd is written and in the push of a change from etcd
 * (tests/support/refusing_hook.h). The refusals, and all that follows them, are the runtime's
 * and the config's own. */
static void service_refusal_never_reaches_etcd(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "svcref");
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = test_etcd_url;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_runtime_t *rt = runtime_on(ns, &eo);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    test_refusing_hook_t rh; /* outlives the runtime (the follower's thread runs in it) */
    test_refusing_hook_install(&rh, cfg, 4242);
    atomic_int refused;
    uint64_t h = test_refusals_counted(rt, &refused);
    /* another process of the fleet: a follower with no services, watching the path */
    fdn_config_t *b = follow(ns, true);
    seen_t sb = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {0}};
    uint64_t id = 0;
    assert_int_equal(fdn_config_subscribe(b, "interface.max_results", on_change, &sb, &id), 0);
    fdn__etcd_t *raw = NULL;
    assert_int_equal(fdn__etcd_create(&raw, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    char key[200];
    snprintf(key, sizeof(key), "/fdn/config/%s/interface.max_results", ns);
    uint64_t rev = fdn_config_revision(cfg);

    /* refused by the runtime's check (the event store's): its error, and nothing anywhere */
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4242, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "event_store"));
    assert_non_null(strstr(err.context, "service=event_store"));
    assert_non_null(strstr(err.context, "path=interface.max_results"));
    assert_int_equal(atomic_load(&rh.checked_refusals), 1); /* asked before etcd was written */
    assert_int_equal(atomic_load(&rh.applied_refusals), 0); /* nothing came back from etcd */
    int64_t mod = 0;
    char *in_etcd = etcd_value(raw, key, &mod);
    assert_null(in_etcd); /* never written */
    assert_int_equal(get_int(cfg, "interface.max_results"), 1000);
    assert_int_equal(fdn_config_revision(cfg), rev);
    assert_int_equal(atomic_load(&refused), 1);
    char data[512];
    assert_int_equal(test_refusal_events(rt, true, data, sizeof(data)), 1);
    assert_non_null(strstr(data, "\"path\":\"interface.max_results\""));
    assert_non_null(strstr(data, "\"value\":4242"));
    assert_int_equal(stats(cfg).refused, 0); /* the updater's refusal, not one from etcd */

    /* taken by the runtime's check: written to etcd, in force here when
     * the update returns, applied everywhere */
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4243, &err), 0);
    assert_int_equal(get_int(cfg, "interface.max_results"), 4243);
    assert_int_equal(atomic_load(&fdn_runtime_events(rt)->max_results), 4243);
    in_etcd = etcd_value(raw, key, &mod);
    assert_non_null(in_etcd);
    assert_string_equal(in_etcd, "4243");
    free(in_etcd);
    assert_int_equal(fdn_config_revision(cfg), (uint64_t)mod);
    int64_t t0 = test_now_ms();
    while (get_int(b, "interface.max_results") != 4243 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(b, "interface.max_results"), 4243);
    t0 = test_now_ms();
    while (seen_count(&sb) < 1 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    /* the follower's only change of the path: the refused value never reached it */
    assert_int_equal(seen_count(&sb), 1);
    assert_int_equal(sb.val[0], 4243);
    assert_int_equal(sb.rev[0], (uint64_t)mod);
    assert_int_equal(atomic_load(&refused), 1);

    /* a value another process writes (the follower has no event store to refuse it): refused
     * here when it arrives, counted as a change from etcd, and recorded */
    assert_int_equal(fdn_config_update_int(b, "interface.max_results", 4242, &err), 0);
    assert_true(wait_refused(cfg, 1));
    assert_int_equal(atomic_load(&rh.applied_refusals), 1);
    assert_int_equal(get_int(cfg, "interface.max_results"), 4243);
    assert_int_equal(atomic_load(&fdn_runtime_events(rt)->max_results), 4243);
    assert_non_null(strstr(stats(cfg).last_refused, "interface.max_results"));
    assert_int_equal(atomic_load(&refused), 2);
    assert_int_equal(test_refusal_events(rt, true, data, sizeof(data)), 2);
    assert_non_null(strstr(data, "\"value\":4242"));
    assert_int_equal(atomic_load(&rh.checked_refusals), 1);

    test_refusing_hook_remove(&rh);
    assert_int_equal(fdn_telemetry_detach(fdn_runtime_telemetry(rt), h), 0);
    assert_int_equal(fdn_config_unsubscribe(b, id), 0);
    fdn_config_destroy(b);
    fdn__etcd_destroy(raw);
    fdn_runtime_destroy(rt);
}

/* The services' check pushes nothing: an update whose write to etcd then fails (here etcd does
 * not answer: the runtime started with start_unreachable) was asked of the services (the
 * runtime's check) and leaves the tree and the event store with their value, the store never
 * running a value the tree does not hold; and a value a service refuses is refused with its
 * error before etcd is called (before: FDN_ECONNREFUSED, the service never asked). 4242 is
 * refused through the test's hook, as above. */
static void service_check_pushes_nothing(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "svcchk");
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = "http://127.0.0.1:1"; /* nothing listens: refused at once */
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    eo.start_unreachable = true;
    fdn_runtime_t *rt = runtime_on(ns, &eo);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_events_t *es = fdn_runtime_events(rt);
    test_refusing_hook_t rh;
    test_refusing_hook_install(&rh, cfg, 4242);
    uint64_t rev = fdn_config_revision(cfg);

    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 4242, &err), FDN_EINVAL);
    assert_non_null(strstr(err.context, "service=event_store"));
    assert_int_equal(atomic_load(&rh.checked_refusals), 1);

    /* the store would take 500 (the runtime's check says so); the write to etcd fails:
     * nothing changed anywhere */
    err = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(cfg, "interface.max_results", 500, &err),
                     FDN_ECONNREFUSED);
    assert_int_equal(atomic_load(&rh.checks), 2);
    assert_int_equal(get_int(cfg, "interface.max_results"), 1000);
    assert_int_equal(atomic_load_explicit(&es->max_results, memory_order_relaxed), 1000);
    assert_int_equal(fdn_config_revision(cfg), rev);
    assert_int_equal(atomic_load(&rh.applied_refusals), 0);
    test_refusing_hook_remove(&rh);
    fdn_runtime_destroy(rt);
}

/* ---- queued updates, transient failures and refusals of a follower ---- */

/* An update queued (fdn_config_update_or_queue) while a follower is stopped goes through
 * etcd at the next start, like any update of a follower: the fleet gets it, and every process
 * has it at etcd's revision. Before, the start applied it here only, at a local revision: the
 * other processes never saw it and this one's fdn_config_revision() was no longer etcd's
 * (A = 222 at revision 3 while B had 111 at revision 2). */
static void queued_update_goes_through_etcd(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "cfgq");
    fdn_config_t *a = follow(ns, true);
    fdn_config_t *b = follow(ns, true);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(b, "interface.max_results", 111, &err), 0);
    int64_t t0 = test_now_ms();
    while (get_int(a, "interface.max_results") != 111 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(a, "interface.max_results"), 111);

    fdn__config_service_stop(a);
    bool queued = false;
    assert_int_equal(fdn_config_update_or_queue(a, "interface.max_results", "222", &queued, &err),
                     0);
    assert_true(queued);
    /* the fleet moves on meanwhile */
    assert_int_equal(fdn_config_update_bool(b, "dev.debug_mode", true, &err), 0);
    assert_int_equal(fdn__config_service_start(a), 0);

    /* written to etcd, applied here from the watch, with etcd's revision */
    fdn__etcd_t *raw = NULL;
    assert_int_equal(fdn__etcd_create(&raw, test_etcd_url, ETCD_TIMEOUT_MS, NULL), 0);
    char key[200];
    snprintf(key, sizeof(key), "/fdn/config/%s/interface.max_results", ns);
    int64_t mod = 0;
    char *in_etcd = etcd_value(raw, key, &mod);
    assert_non_null(in_etcd);
    assert_string_equal(in_etcd, "222");
    free(in_etcd);
    assert_int_equal(get_int(a, "interface.max_results"), 222);
    assert_true(get_bool(a, "dev.debug_mode")); /* and the fleet's change made meanwhile */
    assert_int_equal(fdn_config_revision(a), (uint64_t)mod);
    /* the other process has it too, at the same revision */
    t0 = test_now_ms();
    while (get_int(b, "interface.max_results") != 222 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(b, "interface.max_results"), 222);
    assert_int_equal(fdn_config_revision(b), (uint64_t)mod);
    fdn_config_status_t st;
    fdn_config_status(a, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.pending_failed, 0);
    assert_int_equal(stats(a).refused, 0);
    fdn__etcd_destroy(raw);
    fdn_config_destroy(a);
    fdn_config_destroy(b);
}

/* A test apply hook on a follower: `apply` fails the first `enomem` pushes of
 * interface.max_results with FDN_ENOMEM (a transient failure) and refuses the value `refuse`
 * with FDN_EINVAL; `check` takes everything (so the refusal happens when the change comes back
 * from etcd, as when a component's state moved between the check and the push). */
typedef struct test_hook {
    atomic_int enomem;
    int64_t refuse;
    atomic_int failed; /* pushes failed with FDN_ENOMEM */
    atomic_int refused;
} test_hook_t;

static int test_hook_apply(const fdn_config_snapshot_t *cur, const fdn_config_snapshot_t *next,
                           const char *path, void *user, fdn_error_t *err)
{
    (void)cur;
    test_hook_t *h = user;
    if (path == NULL || strcmp(path, "interface.max_results") != 0)
        return 0;
    int64_t v = 0;
    (void)fdn_config_snapshot_get_int(next, path, &v);
    if (atomic_load(&h->enomem) > 0) {
        atomic_fetch_sub(&h->enomem, 1);
        atomic_fetch_add(&h->failed, 1);
        return fdn_err_set(err, FDN_ENOMEM, "test: out of memory pushing %s", path);
    }
    if (v == h->refuse) {
        atomic_fetch_add(&h->refused, 1);
        return fdn_err_set(err, FDN_EINVAL, "test component refused %s = %lld", path, (long long)v);
    }
    return 0;
}

static int test_hook_check(const fdn_config_snapshot_t *next, const char *path, void *user,
                           fdn_error_t *err)
{
    (void)next;
    (void)path;
    (void)user;
    (void)err;
    return 0;
}

/* A change from etcd whose apply fails with FDN_ENOMEM here is not refused for good: it is
 * applied once memory is back (the namespace is ranged again), and not counted as refused.
 * Before, it was recorded as applied-or-refused at its revision and never tried again: the
 * process kept the old value while the fleet had the new one. */
static void enomem_from_etcd_is_retried(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "cfgnomem");
    fdn_config_t *a = follow(ns, true);
    fdn_config_t *b = follow(ns, true);
    test_hook_t th = {2, -1, 0, 0};
    fdn__cfg_apply_hook_t hook = {0};
    hook.apply = test_hook_apply;
    hook.check = test_hook_check;
    hook.user = &th;
    fdn__config_set_apply_hook(a, &hook);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(b, "interface.max_results", 555, &err), 0);
    int64_t t0 = test_now_ms();
    while (get_int(a, "interface.max_results") != 555 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(a, "interface.max_results"), 555);
    assert_int_equal(atomic_load(&th.failed), 2);
    assert_int_equal(stats(a).refused, 0);
    assert_int_equal(fdn_config_revision(a), fdn_config_revision(b));
    fdn__config_set_apply_hook(a, NULL);
    fdn_config_destroy(a);
    fdn_config_destroy(b);
}

/* An update of a follower that etcd took but that this process's apply then refused when the
 * change came back from the watch returns that refusal (the value is in etcd, so the rest of
 * the fleet has it; this process keeps its value and counts the refusal). Before, the update
 * returned 0 although the change was not applied here. */
static void update_refused_at_apply_returns_refusal(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "cfgrefapply");
    fdn_config_t *a = follow(ns, true);
    fdn_config_t *b = follow(ns, true);
    test_hook_t th = {0, 777, 0, 0};
    fdn__cfg_apply_hook_t hook = {0};
    hook.apply = test_hook_apply;
    hook.check = test_hook_check;
    hook.user = &th;
    fdn__config_set_apply_hook(a, &hook);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_update_int(a, "interface.max_results", 777, &err), FDN_EINVAL);
    assert_int_equal(err.code, FDN_EINVAL);
    assert_non_null(strstr(err.message, "refused"));
    assert_int_equal(atomic_load(&th.refused), 1);
    assert_int_equal(get_int(a, "interface.max_results"), 1000);
    assert_int_equal(stats(a).refused, 1);
    /* the fleet has it */
    int64_t t0 = test_now_ms();
    while (get_int(b, "interface.max_results") != 777 && test_now_ms() - t0 < WAIT_MS)
        test_pause_ms(5);
    assert_int_equal(get_int(b, "interface.max_results"), 777);
    /* a value this process takes still returns 0 */
    assert_int_equal(fdn_config_update_int(a, "interface.max_results", 778, &err), 0);
    assert_int_equal(get_int(a, "interface.max_results"), 778);
    fdn__config_set_apply_hook(a, NULL);
    fdn_config_destroy(a);
    fdn_config_destroy(b);
}

static void bad_input(void **state)
{
    (void)state;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.ignore_env = true;
    fdn_config_t *c = NULL;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    fdn_config_etcd_opts_t eo = FDN_CONFIG_ETCD_OPTS_INIT;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), FDN_EINVAL); /* no url */
    eo.url = "etcd:2379";
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), FDN_EINVAL);
    eo.url = "http://127.0.0.1:1";
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), FDN_ECONNREFUSED);
    eo.url = test_etcd_url;
    eo.ns = "a/b";
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), FDN_EINVAL);
    fdn_config_etcd_stats_t s;
    memset(&s, 0, sizeof(s));
    s.version = FDN_CONFIG_ETCD_STATS_VERSION;
    assert_int_equal(fdn_config_etcd_stats(c, &s), FDN_ENOTSUP);
    /* local updates still work, locally */
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "twice");
    eo.ns = ns;
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), 0);
    assert_int_equal(fdn_config_follow_etcd(c, &eo, &err), FDN_EBUSY);
    fdn_config_destroy(c);
}

/* ---- children: fresh runs of this program (test_spawn_self), not forks, so that
 * ThreadSanitizer follows them (child.h) ------------------------------------------------- */

/* a descriptor argument */
static int fd_arg(const char *s)
{
    return (int)test_child_int(s, 0, 1 << 20);
}

/* The etcd URL of a child's command line, where follow() reads it (test_engine_etcd_setup sets
 * it in a run of the tests). */
static int child_url(const char *url)
{
    if (strlen(url) >= sizeof(test_etcd_url)) {
        fprintf(stderr, "child: URL too long: %s\n", url);
        return 2;
    }
    snprintf(test_etcd_url, sizeof(test_etcd_url), "%s", url);
    return 0;
}

/* child cas URL NS K READY GO FILE: child_updates as process K of concurrent_cas_updates_one_order
 * (READY and GO: descriptors). */
static int child_cas(char **argv)
{
    int k = (int)test_child_int(argv[2], 0, NPROC - 1);
    int ready = fd_arg(argv[3]), go = fd_arg(argv[4]);
    int rc = child_url(argv[0]);
    return rc != 0 ? rc : child_updates(argv[1], k, ready, go, argv[5]);
}

/* child resets URL NS ACK: child_resets for resets_go_through_etcd (ACK: a descriptor). */
static int child_resets_role(char **argv)
{
    int ack = fd_arg(argv[2]);
    int rc = child_url(argv[0]);
    return rc != 0 ? rc : child_resets(argv[1], ack);
}

int main(int argc, char **argv)
{
    static const test_child_role_t roles[] = {
        {"cas", "URL NS K READY GO FILE", 6, child_cas},
        {"resets", "URL NS ACK", 3, child_resets_role},
    };
    int rc = test_child_main(argc, argv, roles, sizeof(roles) / sizeof(roles[0]));
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(update_reaches_every_process),
        cmocka_unit_test(concurrent_cas_updates_one_order),
        cmocka_unit_test(resets_go_through_etcd),
        cmocka_unit_test(foreign_values_refused_and_reported),
        cmocka_unit_test(service_refusal_never_reaches_etcd),
        cmocka_unit_test(service_check_pushes_nothing),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(queued_update_goes_through_etcd),
        cmocka_unit_test(enomem_from_etcd_is_retried),
        cmocka_unit_test(update_refused_at_apply_returns_refusal),
    };
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, test_engine_etcd_setup, NULL);
}
