/* Fault test: a child process appends in durable mode and reports each acknowledged id
 * through a pipe; the parent kills it with SIGKILL at a random moment (25 trials on the
 * same file), reopens the store and checks that every acknowledged event is there, intact,
 * and that ids keep increasing across crashes. The kill points come from a seeded generator:
 * the seed is printed, and FDN_TEST_SEED=<seed> replays the same kill points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/events.h>

#include "stress.h"

#define TRIALS 25

static uint64_t g_rng;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void child(const char *path, int fd, int trial)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.mode = FDN_EVENTS_DURABLE;
    fdn_events_t *es = NULL;
    if (fdn_events_create(&es, &o, NULL) != 0)
        _exit(2);
    for (uint64_t i = 0;; i++) {
        char data[64];
        int n = snprintf(data, sizeof(data), "{\"trial\":%d,\"seq\":%llu}", trial,
                         (unsigned long long)i);
        fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
        s.type = "kill.test";
        s.correlation_id = "kill";
        s.data = data;
        s.data_len = (size_t)n;
        fdn_event_t *ev = NULL;
        if (fdn_event_new(&ev, &s, NULL) != 0)
            _exit(3);
        uint64_t id = 0;
        if (fdn_events_store(es, ev, &id) != 0)
            _exit(4);
        fdn_event_free(ev);
        uint64_t msg[2] = {id, i};
        if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
            _exit(5);
    }
}

static void acknowledged_events_survive_sigkill(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn_kill_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/kill.db", dir);
    g_rng = test_seed("events_kill");
    uint64_t prev_max = 0;
    uint64_t total_acked = 0;
    for (int t = 0; t < TRIALS; t++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child(path, p[1], t);
        }
        close(p[1]);
        /* kill after a random number of acknowledgements (0..40) */
        uint64_t want = rnd() % 41;
        uint64_t(*acked)[2] = calloc(4096, sizeof(*acked));
        size_t na = 0;
        while (na < want) {
            ssize_t r = read(p[0], acked[na], sizeof(acked[na]));
            assert_int_equal(r, (ssize_t)sizeof(acked[na]));
            na++;
        }
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        /* everything written before the kill was acknowledged too */
        for (;;) {
            if (na == 4096)
                break;
            ssize_t r = read(p[0], acked[na], sizeof(acked[na]));
            if (r == 0)
                break;
            assert_int_equal(r, (ssize_t)sizeof(acked[na]));
            na++;
        }
        close(p[0]);
        fdn_events_t *es = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
        o.durable_path = path;
        int rc = fdn_events_create(&es, &o, &err);
        if (rc != 0)
            fail_msg("reopen failed: %s", err.message);
        for (size_t i = 0; i < na; i++) {
            fdn_event_t *ev = NULL;
            assert_true(acked[i][0] > prev_max);
            rc = fdn_events_get(es, acked[i][0], &ev);
            if (rc != 0)
                fail_msg("trial %d: acknowledged id %llu lost", t, (unsigned long long)acked[i][0]);
            char want_data[64];
            int n = snprintf(want_data, sizeof(want_data), "{\"trial\":%d,\"seq\":%llu}", t,
                             (unsigned long long)acked[i][1]);
            size_t dl;
            const void *d = fdn_event_data(ev, &dl);
            assert_int_equal(dl, (size_t)n);
            assert_memory_equal(d, want_data, dl);
            fdn_event_free(ev);
        }
        fdn_events_stats_t st;
        fdn_events_stats(es, &st);
        if (na > 0)
            prev_max = acked[na - 1][0];
        if (st.newest_id > prev_max)
            prev_max = st.newest_id; /* committed but not reported before the kill */
        total_acked += na;
        fdn_events_destroy(es);
        free(acked);
    }
    assert_true(total_acked > 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The child of a_prune_survives_sigkill: a fast-mode store (its commits are not waited for)
 * of one batch of 100 events (never split between commits), then fdn_events_prune_before the
 * timestamp of id 51 (ids 1..50 older), then SIGKILL at once. */
static void prune_child(const char *path)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.mode = FDN_EVENTS_FAST;
    fdn_events_t *es = NULL;
    if (fdn_events_create(&es, &o, NULL) != 0)
        _exit(2);
    fdn_event_t *evs[100];
    for (int i = 0; i < 100; i++) {
        fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
        s.type = "kill.prune";
        s.timestamp_ns = 1001 + i; /* chosen: strictly increasing */
        if (fdn_event_new(&evs[i], &s, NULL) != 0)
            _exit(3);
    }
    uint64_t ids[100];
    if (fdn_events_store_batch(es, (const fdn_event_t *const *)evs, 100, ids) != 0 || ids[0] != 1)
        _exit(3);
    uint64_t n = 0;
    if (fdn_events_prune_before(es, 1051, &n) != 0 || n != 50)
        _exit(4);
    raise(SIGKILL);
    _exit(5);
}

/* fdn_events_prune_before is in the file when it returns: a kill right after it does not bring
 * the pruned events back (before: the writer deleted them in its next transaction, which a
 * kill could precede, and a stop racing the call could skip), nor loses the others (the
 * events it did not prune, not committed yet when it was called, are committed first). */
static void a_prune_survives_sigkill(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn_kill_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/prune.db", dir);
    for (int t = 0; t < 5; t++) {
        unlink(path);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            prune_child(path);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("trial %d: the child failed (%d)", t, WEXITSTATUS(status));
        fdn_events_t *es = NULL;
        fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
        o.durable_path = path;
        assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
        fdn_events_stats_t st;
        assert_int_equal(fdn_events_stats(es, &st), 0);
        if (st.oldest_id != 51)
            fail_msg("trial %d: the file holds ids from %llu", t, (unsigned long long)st.oldest_id);
        assert_int_equal(st.count, 50); /* 51..100: the batch committed by the prune's wait */
        fdn_event_t *ev = NULL;
        assert_int_equal(fdn_events_get(es, 50, &ev), FDN_ENOENT);
        assert_int_equal(fdn_events_get(es, 51, &ev), 0);
        fdn_event_free(ev);
        fdn_events_destroy(es);
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(acknowledged_events_survive_sigkill),
        cmocka_unit_test(a_prune_survives_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
