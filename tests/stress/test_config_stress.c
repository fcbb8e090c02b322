/* Stress: readers on several threads during continuous updates never see a torn or invalid
 * config, and a subscriber sees every change once, in order. Runs under TSan too.
 *
 * One writer performs updates u = 1..N alternately on interface.max_results (odd u,
 * value (u+1)/2) and interface.query_timeout (even u, value u/2). Revision r therefore
 * determines both values exactly: r - 1 updates done. A reader that finds a snapshot whose
 * two values disagree with its revision has seen a torn update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>

#include "stress.h"
#include "threads.h"

static const char *const no_env[] = {NULL};

typedef struct shared {
    fdn_config_t *c;
    atomic_bool done;
    atomic_long bad;
    atomic_long reads;
    fdn_config_key_t kmax;
    /* subscriber bookkeeping (written by the delivery thread only) */
    uint64_t last_rev;
    long out_of_order;
    test_waiter_t notes; /* changes delivered */
} shared_t;

static void expect(uint64_t rev, int64_t *max, int64_t *qt)
{
    uint64_t u = rev - 1;
    *max = u == 0 ? 1000 : (int64_t)((u + 1) / 2);
    *qt = u < 2 ? 10000 : (int64_t)(u / 2);
}

static void *reader(void *p)
{
    shared_t *s = p;
    int64_t last_key = 0;
    long n = 0;
    /* At least one read per reader, even when the updater finishes before the scheduler
     * first runs this thread: `reads > 0` must not depend on who runs first. */
    do {
        const fdn_config_snapshot_t *snap = NULL;
        if (fdn_config_acquire(s->c, &snap) != 0) {
            atomic_fetch_add(&s->bad, 1);
            break;
        }
        int64_t m = -1, q = -1, em, eq;
        fdn_config_snapshot_get_int(snap, "interface.max_results", &m);
        fdn_config_snapshot_get_int(snap, "interface.query_timeout", &q);
        expect(fdn_config_snapshot_revision(snap), &em, &eq);
        if (m != em || q != eq)
            atomic_fetch_add(&s->bad, 1);
        if ((++n & 255) == 0) {
            char *j = NULL;
            if (fdn_config_snapshot_get_json(snap, "", &j) != 0 ||
                fdn_config_validate_json(j, strlen(j), NULL) != 0)
                atomic_fetch_add(&s->bad, 1);
            fdn_free(j);
        }
        fdn_config_release(snap);
        /* resolved-key reads only move forward (one writer, increasing values) */
        int64_t k = 0;
        if (fdn_config_key_get_int(s->c, s->kmax, &k) != 0 || (k < last_key && k != 1000))
            atomic_fetch_add(&s->bad, 1);
        if (k != 1000)
            last_key = k;
        /* dotted-path scalar reads go through the latch too */
        int64_t q2 = -1;
        if (fdn_config_get_int(s->c, "interface.query_timeout", &q2) != 0 || q2 < 1)
            atomic_fetch_add(&s->bad, 1);
        atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);
    } while (!atomic_load_explicit(&s->done, memory_order_acquire));
    return NULL;
}

static void on_change(const fdn_config_change_t *ch, void *user)
{
    shared_t *s = user;
    if (ch->kind != FDN_CONFIG_CHANGE_UPDATED || ch->revision != s->last_rev + 1)
        s->out_of_order++;
    s->last_rev = ch->revision;
    test_waiter_add(&s->notes, 1);
}

static void readers_never_see_torn_config(void **state)
{
    (void)state;
    long n = test_stress_iters(3000, 0);
    shared_t s;
    memset(&s, 0, sizeof(s));
    test_waiter_init(&s.notes);
    s.last_rev = 1;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    o.subscriber_queue = (size_t)n + 16;
    assert_int_equal(fdn_config_create(&s.c, &o, NULL), 0);
    assert_int_equal(fdn_config_key_resolve(s.c, "interface.max_results", &s.kmax), 0);
    assert_int_equal(fdn_config_subscribe(s.c, "interface", on_change, &s, NULL), 0);
    test_threads_t readers;
    test_threads_init(&readers, 0);
    test_threads_start_n(&readers, 3, reader, &s, 0);
    for (long u = 1; u <= n; u++) {
        int rc = (u % 2) ? fdn_config_update_int(s.c, "interface.max_results", (u + 1) / 2, NULL)
                         : fdn_config_update_int(s.c, "interface.query_timeout", u / 2, NULL);
        assert_int_equal(rc, 0);
        /* failed updates interleaved: must change nothing */
        assert_int_equal(fdn_config_update_int(s.c, "interface.max_results", 0, NULL),
                         FDN_ECONFIG_STRUCTURE);
    }
    atomic_store_explicit(&s.done, true, memory_order_release);
    test_threads_join(&readers);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_true(atomic_load(&s.reads) >= 3);
    assert_int_equal(fdn_config_revision(s.c), (uint64_t)n + 1);
    fdn_config_status_t st;
    fdn_config_status(s.c, &st);
    assert_int_equal(st.dropped, 0);
    /* every successful update reaches the subscriber exactly once, in order (the queue is
     * large enough that nothing may be dropped) */
    test_waiter_wait(&s.notes, n);
    fdn_config_destroy(s.c);
    assert_int_equal(s.out_of_order, 0);
    assert_int_equal(test_waiter_value(&s.notes), n);
    test_waiter_destroy(&s.notes);
}

/* A thread's reads never go back: one writer sets interface.max_results to k at revision
 * base + k; readers alternate a snapshot read (fdn_config_revision, fdn_config_get_json,
 * fdn_config_acquire) with a scalar read of the same leaf (fdn_config_get_int, through the
 * latch) and check that the second never shows an older value than the first, in both orders.
 * Before, an update published its snapshot and only then rewrote the latch, so a revision (or
 * get_json) read first could show the new value and the latch read after it the old one. */
typedef struct mono {
    fdn_config_t *c;
    uint64_t base;
    atomic_bool done;
    atomic_long back;
    atomic_long pairs;
} mono_t;

static void *mono_reader(void *p)
{
    mono_t *m = p;
    long n = 0;
    do {
        int64_t v = -1, v2 = -1;
        uint64_t r = fdn_config_revision(m->c);
        if (fdn_config_get_int(m->c, "interface.max_results", &v) != 0 ||
            v < (int64_t)(r - m->base))
            atomic_fetch_add(&m->back, 1);
        uint64_t r2 = fdn_config_revision(m->c);
        if ((int64_t)(r2 - m->base) < v)
            atomic_fetch_add(&m->back, 1);
        char *j = NULL;
        if (fdn_config_get_json(m->c, "interface.max_results", &j, NULL) != 0 ||
            fdn_config_get_int(m->c, "interface.max_results", &v2) != 0 ||
            v2 < strtoll(j, NULL, 10))
            atomic_fetch_add(&m->back, 1);
        fdn_free(j);
        n++;
    } while (!atomic_load_explicit(&m->done, memory_order_acquire));
    atomic_fetch_add(&m->pairs, n);
    return NULL;
}

static void reads_never_go_back(void **state)
{
    (void)state;
    long n = test_stress_iters(20000, 0);
    mono_t m;
    memset(&m, 0, sizeof(m));
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    assert_int_equal(fdn_config_create(&m.c, &o, NULL), 0);
    assert_int_equal(fdn_config_update_int(m.c, "interface.max_results", 0 + 1, NULL), 0);
    m.base = fdn_config_revision(m.c) - 1; /* value k at revision base + k */
    test_threads_t readers;
    test_threads_init(&readers, 0);
    test_threads_start_n(&readers, 2, mono_reader, &m, 0);
    for (long k = 2; k <= n; k++)
        assert_int_equal(fdn_config_update_int(m.c, "interface.max_results", k, NULL), 0);
    atomic_store_explicit(&m.done, true, memory_order_release);
    test_threads_join(&readers);
    assert_true(atomic_load(&m.pairs) >= 2);
    assert_int_equal(atomic_load(&m.back), 0);
    fdn_config_destroy(m.c);
}

static void count_cb(const fdn_config_change_t *ch, void *user)
{
    (void)ch;
    test_waiter_add(user, 1);
}

static void *churner(void *p)
{
    fdn_config_t *c = p;
    test_waiter_t dummy = TEST_WAITER_INIT;
    for (int k = 0; k < 200; k++) {
        uint64_t id = 0;
        if (fdn_config_subscribe(c, "dev", count_cb, &dummy, &id) == 0)
            fdn_config_unsubscribe(c, id);
        fdn_config_update_bool(c, "dev.verbose_logging", k % 2 == 0, NULL);
    }
    return NULL;
}

static void subscribe_storm_then_exactly_one(void **state)
{
    (void)state;
    fdn_config_t *c = NULL;
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    o.envp = no_env;
    assert_int_equal(fdn_config_create(&c, &o, NULL), 0);
    test_threads_t t;
    test_threads_init(&t, 0);
    test_threads_start_n(&t, 4, churner, c, 0);
    test_threads_join(&t);
    fdn_config_status_t st;
    fdn_config_status(c, &st);
    assert_int_equal(st.subscribers, 0);
    test_waiter_t cnt = TEST_WAITER_INIT;
    uint64_t id;
    assert_int_equal(fdn_config_subscribe(c, "dev.debug_mode", count_cb, &cnt, &id), 0);
    assert_int_equal(fdn_config_update_bool(c, "dev.debug_mode", true, NULL), 0);
    test_waiter_wait(&cnt, 1);
    assert_int_equal(fdn_config_unsubscribe(c, id), 0);
    assert_int_equal(test_waiter_value(&cnt), 1);
    fdn_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readers_never_see_torn_config),
        cmocka_unit_test(subscribe_storm_then_exactly_one),
        cmocka_unit_test(reads_never_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
