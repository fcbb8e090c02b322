/* Stress tests: telemetry under concurrency (exact sums, consistent snapshots, handlers and
 * retention racing emits, thread churn). Also run under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-bp.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "services/telemetry_metrics.h"
#include "stress.h"
#include "threads.h"

#define THREADS 4

static uint64_t iters(void)
{
    return (uint64_t)test_stress_iters(200000, 0);
}

typedef struct ctx {
    fdn_telemetry_t *tm;
    fdn_counter_t *c;
    fdn_histogram_t *h;
    test_threads_t threads;
    uint64_t n;
    _Atomic int writers_left;
    _Atomic uint64_t handler_calls;
    _Atomic int stop;
} ctx_t;

static void *adder(void *arg)
{
    ctx_t *x = arg;
    test_threads_gate(&x->threads);
    for (uint64_t i = 0; i < x->n; i++) {
        fdn_counter_inc(x->c);
        if (i % 8 == 0)
            (void)fdn_telemetry_emit_counter(x->tm, "stress.events", NULL, 0);
    }
    return NULL;
}

static void counters_sum_exactly(void **state)
{
    (void)state;
    ctx_t x = {0};
    x.n = iters();
    assert_int_equal(fdn_telemetry_create(&x.tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(x.tm, &f, "ops_total", "ops", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &x.c, NULL, 0), 0);
    test_threads_init(&x.threads, THREADS);
    test_threads_start_n(&x.threads, THREADS, adder, &x, 0);
    test_threads_join(&x.threads);
    assert_int_equal(fdn_counter_value(x.c), THREADS * x.n);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(x.tm, &s), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *sm;
    uint64_t ev = 0;
    while ((sm = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        if (sm->is_event && strcmp(sm->name, "stress.events") == 0 &&
            strcmp(sm->key, "counter") == 0)
            ev = sm->counter;
    assert_int_equal(ev, THREADS * ((x.n + 7) / 8));
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(x.tm);
}

static void *observer(void *arg)
{
    ctx_t *x = arg;
    test_threads_gate(&x->threads);
    for (uint64_t i = 0; i < x->n; i++) {
        fdn_histogram_observe(x->h, (double)(i % 1000) - 100.0);
        if (i % 16 == 0)
            (void)fdn_telemetry_emit_histogram(x->tm, "stress.hist", (double)i, NULL, 0);
    }
    atomic_fetch_sub_explicit(&x->writers_left, 1, memory_order_release);
    return NULL;
}

static void snapshots_never_tear(void **state)
{
    (void)state;
    ctx_t x = {0};
    x.n = iters();
    assert_int_equal(fdn_telemetry_create(&x.tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(x.tm, &f, "lat_seconds", "l", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &x.h, NULL, 0), 0);
    atomic_store(&x.writers_left, THREADS - 1);
    test_threads_init(&x.threads, THREADS);
    test_threads_start_n(&x.threads, THREADS - 1, observer, &x, 0);
    tm_hist_copy_t *c = malloc(sizeof(*c));
    assert_non_null(c);
    test_threads_gate(&x.threads);
    uint64_t last = 0, rounds = 0;
    do {
        fdn__histogram_copy(x.h, c);
        uint64_t sum = 0;
        for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
            sum += c->buckets[b];
        assert_int_equal(sum, c->count);
        assert_true(c->count >= last);
        assert_true(c->count == 0 || (c->min >= -100.0 && c->max <= 899.0));
        last = c->count;
        if (rounds++ % 8 == 0) {
            fdn_telemetry_snapshot_t *s = NULL;
            assert_int_equal(fdn_telemetry_snapshot(x.tm, &s), 0);
            size_t it = 0;
            const fdn_telemetry_sample_t *sm;
            while ((sm = fdn_telemetry_snapshot_next(s, &it)) != NULL)
                if (sm->kind == FDN_TELEMETRY_HISTOGRAM && sm->hist.count > 0)
                    assert_true(sm->hist.min <= sm->hist.p50 && sm->hist.p50 <= sm->hist.max);
            fdn_telemetry_snapshot_free(s);
        }
    } while (atomic_load_explicit(&x.writers_left, memory_order_acquire) > 0);
    test_threads_join(&x.threads);
    fdn__histogram_copy(x.h, c);
    assert_int_equal(c->count, (THREADS - 1) * x.n);
    free(c);
    fdn_telemetry_destroy(x.tm);
}

static int counting_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                            const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    ctx_t *x = user;
    uint64_t n = atomic_fetch_add_explicit(&x->handler_calls, 1, memory_order_relaxed);
    return n % 5 == 0 ? FDN_EIO : 0;
}

static void *emitter(void *arg)
{
    ctx_t *x = arg;
    char name[32];
    test_threads_gate(&x->threads);
    for (uint64_t i = 0; i < x->n / 4; i++) {
        snprintf(name, sizeof(name), "churn.e%u", (unsigned)(i % 64));
        (void)fdn_telemetry_emit_counter(x->tm, name, NULL, 0);
        (void)fdn_telemetry_emit_gauge(x->tm, "churn.fixed", (double)i, NULL, 0);
    }
    atomic_fetch_sub_explicit(&x->writers_left, 1, memory_order_release);
    return NULL;
}

static void handlers_and_retention_race_emits(void **state)
{
    (void)state;
    ctx_t x = {0};
    x.n = iters();
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    o.retention_ns = 1; /* everything idle is dropped at each cleanup */
    o.handler_max_failures = 0;
    assert_int_equal(fdn_telemetry_create(&x.tm, &o), 0);
    atomic_store(&x.writers_left, THREADS - 1);
    test_threads_init(&x.threads, THREADS);
    test_threads_start_n(&x.threads, THREADS - 1, emitter, &x, 0);
    test_threads_gate(&x.threads);
    /* The churn runs until the emitters have done their (bounded) work. Every round retires
     * memory through call_rcu (a handler set at each attach and detach, every idle entry at
     * each cleanup); waiting for the pending frees every GRACE_ROUNDS rounds bounds that
     * backlog, so a slow sanitizer build cannot pile up retired memory faster than its
     * call_rcu thread frees it (under TSan each free is expensive). */
    enum { GRACE_ROUNDS = 16 };
    unsigned round = 0;
    while (atomic_load_explicit(&x.writers_left, memory_order_acquire) > 0) {
        if (round % GRACE_ROUNDS == GRACE_ROUNDS - 1)
            rcu_barrier();
        uint64_t id = 0;
        assert_int_equal(fdn_telemetry_attach(&*x.tm, &id, round % 2 ? "churn" : "",
                                              FDN_TELEMETRY_MATCH_PREFIX, counting_handler, &x),
                         0);
        (void)fdn_telemetry_cleanup(x.tm);
        if (round % 16 == 0)
            (void)fdn_telemetry_reset_metrics(x.tm);
        assert_int_equal(fdn_telemetry_detach(x.tm, id), 0);
        round++;
    }
    test_threads_join(&x.threads);
    assert_int_equal(fdn_telemetry_handler_count(x.tm), 0);
    fdn_telemetry_destroy(x.tm);
}

static void *short_lived(void *arg)
{
    ctx_t *x = arg;
    for (int i = 0; i < 100; i++)
        fdn_counter_inc(x->c);
    return NULL;
}

static void thread_churn_keeps_sums(void **state)
{
    (void)state;
    ctx_t x = {0};
    assert_int_equal(fdn_telemetry_create(&x.tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(x.tm, &f, "churn_total", "c", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &x.c, NULL, 0), 0);
    enum { ROUNDS = 50, PAR = 4 };
    for (int r = 0; r < ROUNDS; r++) {
        test_threads_t t;
        test_threads_init(&t, 0);
        test_threads_start_n(&t, PAR, short_lived, &x, 0);
        test_threads_join(&t);
    }
    assert_int_equal(fdn_counter_value(x.c), ROUNDS * PAR * 100);
    fdn_telemetry_destroy(x.tm);
}

/* Threads alive at once hold distinct slots, so 2 * TM_SHARDS + 1 of them write every shard
 * (a read sums only the shards handed out so far: it must see the high ones once used). */
enum { LIVE = 2 * TM_SHARDS + 1 };

typedef struct live_arg {
    ctx_t *x;
    uint64_t add;
} live_arg_t;

static void *live_adder(void *arg)
{
    live_arg_t *a = arg;
    fdn_counter_add(a->x->c, a->add);
    test_threads_gate(&a->x->threads); /* added: the test thread reads */
    test_threads_gate(&a->x->threads); /* read: exit (the slot is released) */
    return NULL;
}

static void every_live_shard_is_summed(void **state)
{
    (void)state;
    ctx_t x = {0};
    assert_int_equal(fdn_telemetry_create(&x.tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(x.tm, &f, "live_total", "c", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &x.c, NULL, 0), 0);
    live_arg_t args[LIVE];
    uint64_t want = 0;
    for (int i = 0; i < LIVE; i++) {
        args[i].x = &x;
        args[i].add = (uint64_t)1 << i; /* each thread's add is a bit of its own */
        want += args[i].add;
    }
    test_threads_init(&x.threads, LIVE + 1);
    test_threads_start_n(&x.threads, LIVE, live_adder, args, sizeof args[0]);
    test_threads_gate(&x.threads);
    assert_int_equal(fdn_counter_value(x.c), want);
    test_threads_gate(&x.threads);
    test_threads_join(&x.threads);
    assert_int_equal(fdn_counter_value(x.c), want);
    fdn_telemetry_destroy(x.tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_sum_exactly),
        cmocka_unit_test(snapshots_never_tear),
        cmocka_unit_test(handlers_and_retention_race_emits),
        cmocka_unit_test(thread_churn_keeps_sums),
        cmocka_unit_test(every_live_shard_is_summed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
