/* Stress test: scrapes (Prometheus and OpenMetrics writers, each running the collectors)
 * from several threads at once while other threads observe into `le` histograms, resolve
 * labelled series past a family's cap, and add and remove a collector. Checks every scrape
 * succeeds, the cumulative bucket counts never decrease along a scrape and end equal to the
 * observations made, and the dropped-series counter matches the refused label sets. And a
 * histogram a collector mirrors (fdn_histogram_load, as the runtime's limiter and etcd
 * latencies are) never shows empty to a scrape while another scrape's collector loads it
 * again. Meant for ThreadSanitizer (label stress). No sleeps: the threads run a fixed number
 * of rounds. */
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

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "stress.h"

#define OBSERVERS 2
#define SCRAPERS  2
#define ROUNDS    2000
#define LABELS    40
#define CAP       16

typedef struct shared {
    fdn_telemetry_t *tm;
    fdn_telemetry_family_t *hist, *lab, *mirror, *loaded;
    _Atomic int scrape_failures;
    _Atomic int collector_runs;
} shared_t;

static void collector(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    shared_t *s = user;
    int n = atomic_fetch_add(&s->collector_runs, 1) + 1;
    fdn_counter_t *c = NULL;
    if (fdn_telemetry_family_counter(s->mirror, &c, NULL, 0) == 0)
        fdn_counter_set(c, (uint64_t)n);
    fdn_histogram_t *h = NULL;
    const uint64_t cum[] = {1, 2, 3};
    if (fdn_telemetry_family_histogram(s->loaded, &h, NULL, 0) == 0)
        fdn_histogram_load(h, cum, 3, 1.5);
}

static void noop_collector(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    (void)user;
}

static void *observer(void *arg)
{
    shared_t *s = arg;
    fdn_histogram_t *h = NULL;
    if (fdn_telemetry_family_histogram(s->hist, &h, NULL, 0) != 0)
        return NULL;
    for (int i = 0; i < ROUNDS; i++) {
        fdn_histogram_observe(h, (double)(i % 100) / 1000.0); /* 0 .. 99 ms */
        char v[16];
        snprintf(v, sizeof v, "l%d", (i / 50) % LABELS);
        const char *lv[] = {v};
        fdn_counter_t *c = NULL;
        if (i % 50 == 0 && fdn_telemetry_family_counter(s->lab, &c, lv, 1) == 0)
            fdn_counter_inc(c);
        if (i % 100 == 0) {
            (void)fdn_telemetry_add_collector(s->tm, noop_collector, &s->tm);
            (void)fdn_telemetry_remove_collector(s->tm, noop_collector, &s->tm);
        }
    }
    return NULL;
}

typedef struct sink {
    char buf[1 << 16];
    size_t len;
} sink_t;

static int to_sink(const char *data, size_t len, void *user)
{
    sink_t *k = user;
    if (k->len + len >= sizeof k->buf)
        return FDN_ENOBUFS;
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    k->buf[k->len] = '\0';
    return 0;
}

/* The cumulative bucket counts of s_seconds in one scrape never decrease. */
static bool monotonic(const char *text)
{
    unsigned long long prev = 0;
    const char *p = text;
    while ((p = strstr(p, "\ns_seconds_bucket{le=\"")) != NULL) {
        const char *sp = strchr(p + 1, ' ');
        if (sp == NULL)
            return false;
        unsigned long long v = strtoull(sp + 1, NULL, 10);
        if (v < prev)
            return false;
        prev = v;
        p = sp;
    }
    return true;
}

static void *scraper(void *arg)
{
    shared_t *s = arg;
    static _Thread_local sink_t k;
    for (int i = 0; i < ROUNDS / 20; i++) {
        k.len = 0;
        int rc = (i & 1) ? fdn_telemetry_write_openmetrics(s->tm, to_sink, &k)
                         : fdn_telemetry_write_prometheus(s->tm, to_sink, &k);
        if (rc != 0 || !monotonic(k.buf))
            atomic_fetch_add(&s->scrape_failures, 1);
    }
    return NULL;
}

static void concurrent_scrapes(void **state)
{
    (void)state;
    static shared_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(fdn_telemetry_create(&s.tm, NULL), 0);
    const char *ln[] = {"l"};
    assert_int_equal(
        fdn_telemetry_family(s.tm, &s.hist, "s_seconds", "s", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
        0);
    assert_int_equal(fdn_telemetry_family(s.tm, &s.lab, "s_labelled_total", "s",
                                          FDN_TELEMETRY_COUNTER, ln, 1, CAP),
                     0);
    assert_int_equal(fdn_telemetry_family(s.tm, &s.mirror, "s_mirror_total", "s",
                                          FDN_TELEMETRY_COUNTER, NULL, 0, 0),
                     0);
    assert_int_equal(fdn_telemetry_family(s.tm, &s.loaded, "s_loaded_seconds", "s",
                                          FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
                     0);
    const double le[] = {0.1, 1.0};
    assert_int_equal(fdn_telemetry_family_buckets(s.loaded, le, 2), 0);
    assert_int_equal(fdn_telemetry_add_collector(s.tm, collector, &s), 0);

    pthread_t t[OBSERVERS + SCRAPERS];
    for (int i = 0; i < OBSERVERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer, &s), 0);
    for (int i = 0; i < SCRAPERS; i++)
        assert_int_equal(pthread_create(&t[OBSERVERS + i], NULL, scraper, &s), 0);
    for (int i = 0; i < OBSERVERS + SCRAPERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&s.scrape_failures), 0);

    fdn_telemetry_snapshot_t *sn = NULL;
    assert_int_equal(fdn_telemetry_snapshot(s.tm, &sn), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    uint64_t dropped = 0, labelled = 0;
    while ((x = fdn_telemetry_snapshot_next(sn, &it)) != NULL) {
        if (strcmp(x->name, "s_seconds") == 0) {
            assert_int_equal(x->hist.count, OBSERVERS * ROUNDS);
            /* 0 .. 99 ms: everything <= 0.1 s, exactly 11 of each 100 <= 10 ms */
            assert_int_equal(x->bucket_le_count[12], OBSERVERS * ROUNDS);
            assert_int_equal(x->bucket_le_count[9], OBSERVERS * ROUNDS / 100 * 11);
        }
        if (strcmp(x->name, "s_loaded_seconds") == 0)
            assert_int_equal(x->hist.count, 3);
        if (strcmp(x->name, "s_labelled_total") == 0)
            labelled += x->counter;
        if (strcmp(x->name, "fdn_telemetry_series_dropped_total") == 0 &&
            strcmp(x->label_values[0], "s_labelled_total") == 0)
            dropped = x->counter;
    }
    fdn_telemetry_snapshot_free(sn);
    /* every increment landed somewhere (a labelled series or the overflow series) */
    assert_int_equal(labelled, OBSERVERS * ROUNDS / 50);
    assert_int_equal(fdn_telemetry_family_overflows(s.lab), dropped);
    assert_true(dropped > 0);
    fdn_telemetry_destroy(s.tm);
}

typedef struct mirror {
    fdn_histogram_t *h;
    _Atomic bool done;
} mirror_t;

/* A collector's work done again and again: the same counts loaded into h. */
static void *loader(void *arg)
{
    mirror_t *m = arg;
    const uint64_t cum[] = {1, 2, 3};
    while (!atomic_load(&m->done))
        fdn_histogram_load(m->h, cum, 3, 1.5);
    return NULL;
}

/* fdn_histogram_load replaces the counts at once: a scrape (or snapshot) made meanwhile shows
 * the old counts or the new ones, never an empty histogram, which Prometheus would take for a
 * counter reset (rate() and increase() then count the whole histogram again). */
static void load_never_shows_empty(void **state)
{
    (void)state;
    static mirror_t m;
    fdn_telemetry_t *tm = NULL;
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "m_seconds", "m", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    const double le[] = {0.1, 1.0};
    assert_int_equal(fdn_telemetry_family_buckets(f, le, 2), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &m.h, NULL, 0), 0);
    const uint64_t cum[] = {1, 2, 3};
    fdn_histogram_load(m.h, cum, 3, 1.5);
    atomic_store(&m.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, loader, &m), 0);
    static sink_t k;
    long rounds = test_stress_iters(2000, 0);
    long empty = 0, wrong = 0;
    for (long i = 0; i < rounds; i++) {
        fdn_telemetry_hist_stats_t st;
        fdn_histogram_stats(m.h, &st);
        if (st.count != 3)
            empty++;
        k.len = 0;
        k.buf[0] = '\0';
        int rc = (i & 1) ? fdn_telemetry_write_openmetrics(tm, to_sink, &k)
                         : fdn_telemetry_write_prometheus(tm, to_sink, &k);
        if (rc != 0 || strstr(k.buf, "\nm_seconds_count 3\n") == NULL ||
            strstr(k.buf, "\nm_seconds_bucket{le=\"+Inf\"} 3\n") == NULL)
            wrong++;
    }
    atomic_store(&m.done, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    fdn_telemetry_destroy(tm);
    assert_int_equal(empty, 0);
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_scrapes),
        cmocka_unit_test(load_never_shows_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
