/* Unit tests of the Prometheus side of telemetry: `le` bucket math (bound search, exact
 * cumulative counts, bounds per family, event durations in ns exported in seconds, loading a
 * histogram kept elsewhere), label caps with their dropped-series counter, collectors and
 * fdn_counter_set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "services/telemetry_metrics.h"

static void le_index_edges(void **state)
{
    (void)state;
    const double b[] = {0.001, 0.01, 0.1, 1.0};
    assert_int_equal(fdn__le_index(b, 4, -5.0), 0);
    assert_int_equal(fdn__le_index(b, 4, 0.0), 0);
    assert_int_equal(fdn__le_index(b, 4, 0.001), 0); /* le: a value on a bound is in it */
    assert_int_equal(fdn__le_index(b, 4, 0.0010001), 1);
    assert_int_equal(fdn__le_index(b, 4, 0.01), 1);
    assert_int_equal(fdn__le_index(b, 4, 0.5), 3);
    assert_int_equal(fdn__le_index(b, 4, 1.0), 3);
    assert_int_equal(fdn__le_index(b, 4, 1.0000001), 4); /* +Inf only */
    assert_int_equal(fdn__le_index(b, 1, 2.0), 1);
    assert_int_equal(fdn__le_index(b, 1, 0.0005), 0);
}

static void le_bounds_validation(void **state)
{
    (void)state;
    const double ok[] = {1, 2, 3};
    const double flat[] = {1, 1, 3};
    const double down[] = {1, 3, 2};
    const double nan[] = {1, NAN, 3};
    const double inf[] = {1, 2, INFINITY};
    double many[FDN_TELEMETRY_MAX_BUCKETS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = (double)i;
    assert_true(fdn__le_bounds_valid(ok, 3));
    assert_true(fdn__le_bounds_valid(many, FDN_TELEMETRY_MAX_BUCKETS));
    assert_false(fdn__le_bounds_valid(many, FDN_TELEMETRY_MAX_BUCKETS + 1));
    assert_false(fdn__le_bounds_valid(NULL, 3));
    assert_false(fdn__le_bounds_valid(ok, 0));
    assert_false(fdn__le_bounds_valid(flat, 3));
    assert_false(fdn__le_bounds_valid(down, 3));
    assert_false(fdn__le_bounds_valid(nan, 3));
    assert_false(fdn__le_bounds_valid(inf, 3));

    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *c = NULL, *h = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &c, "x_total", "x", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_buckets(c, ok, 3), FDN_EINVAL);
    assert_int_equal(
        fdn_telemetry_family(tm, &h, "y_seconds", "y", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_buckets(h, down, 3), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family_buckets(h, ok, 3), 0);
    fdn_histogram_t *s = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(h, &s, NULL, 0), 0);
    /* the layout is fixed once a series exists */
    assert_int_equal(fdn_telemetry_family_buckets(h, ok, 2), FDN_EBUSY);
    assert_int_equal(fdn_telemetry_family_buckets(NULL, ok, 2), 0);
    fdn_telemetry_destroy(tm);
}

static const fdn_telemetry_sample_t *find(const fdn_telemetry_snapshot_t *s, const char *name,
                                          const char *key)
{
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        if (strcmp(x->name, name) == 0 && (key == NULL || (x->key && strcmp(x->key, key) == 0)))
            return x;
    fail_msg("no sample %s/%s", name, key ? key : "");
    static const fdn_telemetry_sample_t none; /* not reached: fail_msg does not return */
    return &none;
}

static void cumulative_counts_exact(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "d_seconds", "d", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    /* default layout: 10 us .. 10 s */
    const double def[FDN_TELEMETRY_DEFAULT_NBUCKETS] = FDN_TELEMETRY_DEFAULT_BUCKETS;
    /* 7 values <= 1e-5 (incl. on the bound), 3 in (1e-5, 2.5e-5], 1 at 10 s, 2 above */
    const double v[] = {0,      1e-6,   5e-6,   9e-6, 1e-5, 1e-5,  -1,
                        1.1e-5, 2.5e-5, 2.4e-5, 10.0, 10.5, 1000.0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        fdn_histogram_observe(h, v[i]);
    fdn_histogram_observe(h, NAN); /* ignored */
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "d_seconds", NULL);
    assert_non_null(x);
    assert_int_equal(x->nbuckets, FDN_TELEMETRY_DEFAULT_NBUCKETS);
    assert_int_equal(x->hist.count, 13);
    for (size_t i = 0; i < x->nbuckets; i++)
        assert_true(x->bucket_le[i] == def[i]);
    assert_int_equal(x->bucket_le_count[0], 7);
    assert_int_equal(x->bucket_le_count[1], 10);
    for (size_t i = 2; i < x->nbuckets - 1; i++)
        assert_int_equal(x->bucket_le_count[i], 10);
    assert_int_equal(x->bucket_le_count[x->nbuckets - 1], 11); /* 10 s is <= 10 */
    for (size_t i = 1; i < x->nbuckets; i++)                   /* cumulative */
        assert_true(x->bucket_le_count[i] >= x->bucket_le_count[i - 1]);
    fdn_telemetry_snapshot_free(s);

    /* reset zeroes the bucket counts too */
    assert_int_equal(fdn_telemetry_reset_metrics(tm), 0);
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    x = find(s, "d_seconds", NULL);
    assert_int_equal(x->hist.count, 0);
    assert_int_equal(x->bucket_le_count[x->nbuckets - 1], 0);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

/* observe() starts its search from a per-bucket table: its counts must equal an exact count
 * for any values and bounds, including bounds closer together than a log-linear sub-bucket,
 * negatives, zero, and values beyond the log-linear range. */
static void le_counts_match_exact_count(void **state)
{
    (void)state;
    const double bounds[] = {-1e30,   -2.0, -1.0, -1e-9, 0.0,   1e-12, 0.001, 0.00101,
                             0.00102, 0.5,  1.0,  1.01,  1.011, 3.0,   1e10,  1e30};
    const size_t nb = sizeof bounds / sizeof bounds[0];
    const double vals[] = {-1e300,  -1e30,  -5.0,  -2.0, -1.5,   -1.0,      -1e-9,   -1e-300,
                           0.0,     1e-300, 1e-12, 5e-4, 0.001,  0.0010099, 0.00101, 0.001015,
                           0.00102, 0.3,    0.5,   0.75, 1.0,    1.005,     1.01,    1.0105,
                           1.011,   1.02,   2.9,   3.0,  3.0001, 1e10,      1e20,    1e300};
    const size_t nv = sizeof vals / sizeof vals[0];
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "v_things", "v", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_buckets(f, bounds, nb), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    for (size_t i = 0; i < nv; i++)
        fdn_histogram_observe(h, vals[i]);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "v_things", NULL);
    assert_int_equal(x->nbuckets, nb);
    for (size_t k = 0; k < nb; k++) {
        uint64_t exact = 0;
        for (size_t i = 0; i < nv; i++)
            exact += vals[i] <= bounds[k];
        if (x->bucket_le_count[k] != exact)
            fail_msg("le=%g: %llu, exact %llu", bounds[k],
                     (unsigned long long)x->bucket_le_count[k], (unsigned long long)exact);
    }
    assert_int_equal(x->hist.count, nv);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

static void event_durations_in_seconds(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_measure_t d = {"duration", 2.5e6}; /* 2.5 ms in ns */
    assert_int_equal(fdn_telemetry_execute(tm, "app.call", &d, 1, NULL, 0), 0);
    fdn_telemetry_measure_t k = {"size", 3}; /* no unit: decade buckets */
    assert_int_equal(fdn_telemetry_execute(tm, "app.call", &k, 1, NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "app.call", "duration");
    assert_non_null(x);
    assert_true(x->hist_div == 1e9);
    /* the bounds are exported in seconds, equal to the literals */
    assert_true(x->bucket_le[0] == 1e-5);
    assert_true(x->bucket_le[7] == 2.5e-3);
    assert_int_equal(x->bucket_le_count[6], 0); /* 1 ms */
    assert_int_equal(x->bucket_le_count[7], 1); /* 2.5 ms: on the bound */
    x = find(s, "app.call", "size");
    assert_non_null(x);
    assert_true(x->hist_div == 1.0);
    assert_true(x->bucket_le[3] == 1.0);
    assert_int_equal(x->bucket_le_count[3], 0);
    assert_int_equal(x->bucket_le_count[4], 1); /* 3 <= 10 */
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

static void histogram_load_mirrors(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "r_seconds", "r", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    const double le[] = {1e-4, 1e-3};
    assert_int_equal(fdn_telemetry_family_buckets(f, le, 2), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    const uint64_t cum[] = {2, 5, 9};
    fdn_histogram_load(h, cum, 3, 0.25);
    const uint64_t bad[] = {5, 2, 9}; /* not cumulative: ignored */
    fdn_histogram_load(h, bad, 3, 1);
    fdn_histogram_load(h, cum, 2, 1); /* wrong length: ignored */
    fdn_telemetry_hist_stats_t st;
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 9);
    assert_true(st.sum == 0.25);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "r_seconds", NULL);
    assert_int_equal(x->bucket_le_count[0], 2);
    assert_int_equal(x->bucket_le_count[1], 5);
    assert_int_equal(x->hist.count, 9);
    fdn_telemetry_snapshot_free(s);
    /* loading again replaces, never adds */
    fdn_histogram_load(h, cum, 3, 0.25);
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 9);
    fdn_telemetry_destroy(tm);
}

/* A load's min and max are the bounds of its first and last non-empty buckets. A first
 * non-empty bucket bounded by 0 left min = max = 0, which the load took for "none yet", so the
 * next non-empty bucket replaced min (bounds 0, 1, 2 with counts 1, 0, 1 gave min 2). A sum
 * that is not finite is refused like the other bad loads. */
static void histogram_load_min_max_and_bad_sum(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "z_bytes", "z", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    const double le[] = {0, 1, 2};
    assert_int_equal(fdn_telemetry_family_buckets(f, le, 3), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    const uint64_t cum[] = {1, 1, 2, 2};
    fdn_histogram_load(h, cum, 4, 2.0);
    fdn_telemetry_hist_stats_t st;
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 2);
    assert_true(st.min == 0.0);
    assert_true(st.max == 2.0);
    const uint64_t other[] = {0, 3, 3, 3};
    fdn_histogram_load(h, other, 4, NAN); /* refused: nothing changes */
    fdn_histogram_load(h, other, 4, INFINITY);
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 2);
    assert_true(st.sum == 2.0);
    fdn_telemetry_destroy(tm);
}

static void label_cap_counts_dropped(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    const char *ln[] = {"breaker"};
    assert_int_equal(fdn_telemetry_family(tm, &f, "b_total", "b", FDN_TELEMETRY_COUNTER, ln, 1, 2),
                     0);
    const char *names[] = {"a", "b", "c", "d", "a"};
    for (size_t i = 0; i < 5; i++) {
        fdn_counter_t *c = NULL;
        const char *v[] = {names[i]};
        assert_int_equal(fdn_telemetry_family_counter(f, &c, v, 1), 0);
        fdn_counter_inc(c);
    }
    assert_int_equal(fdn_telemetry_family_overflows(f), 2); /* c and d */
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0, series = 0;
    const fdn_telemetry_sample_t *x;
    uint64_t dropped = 0, overflow = 0, a = 0;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL) {
        if (strcmp(x->name, "b_total") == 0) {
            series++;
            if (strcmp(x->label_values[0], "__overflow__") == 0)
                overflow = x->counter;
            if (strcmp(x->label_values[0], "a") == 0)
                a = x->counter;
        }
        if (strcmp(x->name, "fdn_telemetry_series_dropped_total") == 0 &&
            strcmp(x->label_values[0], "b_total") == 0)
            dropped = x->counter;
    }
    assert_int_equal(series, 3); /* a, b, __overflow__ */
    assert_int_equal(overflow, 2);
    assert_int_equal(a, 2);
    assert_int_equal(dropped, 2);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

typedef struct coll_state {
    fdn_gauge_t *g;
    int runs;
} coll_state_t;

static void coll(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    coll_state_t *c = user;
    c->runs++;
    fdn_gauge_set(c->g, c->runs * 10);
}

static void noop_coll(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    (void)user;
}

static void collectors_run_at_snapshot(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "live_things", "l", FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0), 0);
    coll_state_t c = {NULL, 0};
    assert_int_equal(fdn_telemetry_family_gauge(f, &c.g, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_add_collector(tm, coll, &c), 0);
    assert_int_equal(fdn_telemetry_add_collector(tm, coll, &c), FDN_EEXIST);
    assert_int_equal(fdn_telemetry_add_collector(tm, NULL, &c), FDN_EINVAL);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(c.runs, 1);
    assert_int_equal(find(s, "live_things", NULL)->gauge_int, 10);
    fdn_telemetry_snapshot_free(s);
    assert_int_equal(fdn_telemetry_remove_collector(tm, coll, &c), 0);
    assert_int_equal(fdn_telemetry_remove_collector(tm, coll, &c), FDN_ENOENT);
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(c.runs, 1); /* removed: not run again */
    fdn_telemetry_snapshot_free(s);
    /* at most 16 */
    int ids[17];
    for (int i = 0; i < 16; i++)
        assert_int_equal(fdn_telemetry_add_collector(tm, noop_coll, &ids[i]), 0);
    assert_int_equal(fdn_telemetry_add_collector(tm, noop_coll, &ids[16]), FDN_ENOBUFS);
    assert_int_equal(fdn_telemetry_add_collector(NULL, noop_coll, NULL), 0);
    fdn_telemetry_destroy(tm);
}

typedef struct reentrant {
    fdn_telemetry_t *tm;
    int runs;
    int add_rc, remove_rc, snap_rc;
    uint64_t seen; /* the gauge's value in the collector's own snapshot */
    fdn_gauge_t *g;
} reentrant_t;

/* A collector that takes a snapshot and tries to change the collectors of its instance. */
static void reentrant_coll(fdn_telemetry_t *tm, void *user)
{
    reentrant_t *r = user;
    r->runs++;
    fdn_gauge_set(r->g, 7);
    r->add_rc = fdn_telemetry_add_collector(tm, noop_coll, r);
    r->remove_rc = fdn_telemetry_remove_collector(tm, reentrant_coll, r);
    fdn_telemetry_snapshot_t *s = NULL;
    r->snap_rc = fdn_telemetry_snapshot(tm, &s);
    if (s != NULL)
        r->seen = (uint64_t)find(s, "reentrant_things", NULL)->gauge_int;
    fdn_telemetry_snapshot_free(s);
}

/* Adding or removing a collector from inside one took the collector lock for writing while
 * the thread held it for reading: a deadlock (the snapshot never returned), and a snapshot
 * from inside a collector ran the collectors again, recursing. Now the changes are refused
 * with FDN_EBUSY and the inner snapshot does not run the collectors again. */
static void collector_reentry_is_refused_not_deadlocked(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "reentrant_things", "r", FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0),
        0);
    reentrant_t r = {tm, 0, 1, 1, 1, 0, NULL};
    assert_int_equal(fdn_telemetry_family_gauge(f, &r.g, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_add_collector(tm, reentrant_coll, &r), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    fdn_telemetry_snapshot_free(s);
    assert_int_equal(r.runs, 1); /* not again from its own snapshot */
    assert_int_equal(r.add_rc, FDN_EBUSY);
    assert_int_equal(r.remove_rc, FDN_EBUSY);
    assert_int_equal(r.snap_rc, 0);
    assert_int_equal(r.seen, 7);
    /* nothing changed: the collector is still there, the other was not added */
    assert_int_equal(fdn_telemetry_add_collector(tm, noop_coll, &r), 0);
    assert_int_equal(fdn_telemetry_remove_collector(tm, noop_coll, &r), 0);
    assert_int_equal(fdn_telemetry_remove_collector(tm, reentrant_coll, &r), 0);
    /* outside a collector both work again */
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    fdn_telemetry_snapshot_free(s);
    assert_int_equal(r.runs, 1);
    fdn_telemetry_destroy(tm);
}

static void counter_set_replaces(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "m_total", "m", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    fdn_counter_t *c = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    fdn_counter_add(c, 5);
    fdn_counter_set(c, 42);
    assert_int_equal(fdn_counter_value(c), 42);
    fdn_counter_set(c, 7);
    assert_int_equal(fdn_counter_value(c), 7);
    fdn_counter_set(NULL, 1);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(le_index_edges),
        cmocka_unit_test(le_bounds_validation),
        cmocka_unit_test(cumulative_counts_exact),
        cmocka_unit_test(le_counts_match_exact_count),
        cmocka_unit_test(event_durations_in_seconds),
        cmocka_unit_test(histogram_load_mirrors),
        cmocka_unit_test(histogram_load_min_max_and_bad_sum),
        cmocka_unit_test(label_cap_counts_dropped),
        cmocka_unit_test(collectors_run_at_snapshot),
        cmocka_unit_test(collector_reentry_is_refused_not_deadlocked),
        cmocka_unit_test(counter_set_replaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
