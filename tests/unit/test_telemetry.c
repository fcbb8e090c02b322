/* Unit tests: telemetry (event aggregation, histograms, families, handlers, JSON,
 * retention, service lifecycle). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "services/telemetry_int.h"
#include "services/telemetry_metrics.h"
#include "threads.h"

#define MIN_NS ((int64_t)60 * 1000000000)

static fdn_telemetry_t *new_tm(fdn_clock_t *c, void (*tweak)(fdn_telemetry_opts_t *))
{
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    o.clock = c;
    o.cleanup_interval_ns = 0;
    if (tweak != NULL)
        tweak(&o);
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, &o), 0);
    return tm;
}

/* The sample (event name, key) or (family name, first label value) of a snapshot. */
/* The sample named name (and key), or NULL. */
static const fdn_telemetry_sample_t *find_opt(const fdn_telemetry_snapshot_t *s, const char *name,
                                              const char *key)
{
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL) {
        if (strcmp(x->name, name) != 0)
            continue;
        if (x->is_event && key != NULL && strcmp(x->key, key) == 0)
            return x;
        if (!x->is_event &&
            (key == NULL || (x->nlabels > 0 && strcmp(x->label_values[0], key) == 0)))
            return x;
    }
    return NULL;
}

/* The sample named name (and key); the test fails when there is none. */
static const fdn_telemetry_sample_t *find(const fdn_telemetry_snapshot_t *s, const char *name,
                                          const char *key)
{
    const fdn_telemetry_sample_t *x = find_opt(s, name, key);
    if (x == NULL) {
        fail_msg("no sample %s/%s", name, key != NULL ? key : "(none)");
        abort(); /* not reached: fail_msg ends the test */
    }
    return x;
}

static void null_instance_is_a_noop(void **state)
{
    (void)state;
    fdn_telemetry_measure_t m = {"counter", 1};
    assert_int_equal(fdn_telemetry_execute(NULL, "a.b", &m, 1, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(NULL, "a", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_gauge(NULL, "a", 1.0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_histogram(NULL, "a", 1.0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_attach(NULL, NULL, "a", FDN_TELEMETRY_MATCH_EXACT, NULL, NULL),
                     0);
    assert_int_equal(fdn_telemetry_cleanup(NULL), 0);
    fdn_counter_inc(NULL);
    fdn_gauge_set(NULL, 1);
    fdn_histogram_observe(NULL, 1.0);
    assert_int_equal(fdn_counter_value(NULL), 0);
    fdn_telemetry_family_t *f = (fdn_telemetry_family_t *)&m;
    assert_int_equal(fdn_telemetry_family(NULL, &f, "x", NULL, FDN_TELEMETRY_COUNTER, NULL, 0, 0),
                     0);
    assert_null(f);
    fdn_counter_t *c = (fdn_counter_t *)&m;
    assert_int_equal(fdn_telemetry_family_counter(NULL, &c, NULL, 0), 0);
    assert_null(c);
    fdn_telemetry_destroy(NULL);
}

static void aggregation_follows_the_reference(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_meta_t m1 = {"path", "first"}, m2 = {"path", "second"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            fdn_telemetry_emit_counter(tm, "foundation.event_queries", i == 0 ? &m1 : &m2, 1), 0);
    assert_int_equal(fdn_telemetry_emit_counter_n(tm, "foundation.event_queries", 5, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_gauge(tm, "app.temp", 1.0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_gauge(tm, "app.temp", 42.5, NULL, 0), 0);
    const double hv[] = {10, 0, -4, 999999, 2.5};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(fdn_telemetry_emit_histogram(tm, "app.size", hv[i], NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_performance(tm, "latency", 7.5, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_system_event(tm, "boot", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_system_event(tm, "", NULL, 0), FDN_EINVAL);
    fdn_telemetry_measure_t big = {"counter", 1e30};
    assert_int_equal(fdn_telemetry_execute(tm, "big.counter", &big, 1, NULL, 0), 0);
    fdn_telemetry_measure_t mix[2] = {{"counter", 2}, {"checkout_time", 7}};
    assert_int_equal(fdn_telemetry_execute(tm, "pool.checkout", mix, 2, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_execute(tm, "pool.checkout", mix, 2, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 7);

    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_true(find(s, "foundation.performance.latency", "gauge")->gauge == 7.5);
    assert_int_equal(find(s, "foundation.system.boot", "counter")->counter, 1);
    assert_true(find(s, "big.counter", "counter")->counter == UINT64_MAX);
    const fdn_telemetry_sample_t *x = find(s, "foundation.event_queries", "counter");
    assert_non_null(x);
    assert_int_equal(x->counter, 8);
    assert_int_equal(x->nmeta, 1);
    assert_string_equal(x->meta[0].value, "first"); /* first emission only */
    x = find(s, "foundation.event_queries", "");
    assert_int_equal(x->counter, 4); /* emissions */
    x = find(s, "app.temp", "gauge");
    assert_true(x->gauge == 42.5);
    x = find(s, "app.size", "histogram");
    assert_int_equal(x->kind, FDN_TELEMETRY_HISTOGRAM);
    assert_int_equal(x->hist.count, 5);
    assert_true(x->hist.sum == 10 + 0 - 4 + 999999 + 2.5);
    assert_true(x->hist.min == -4);
    assert_true(x->hist.max == 999999);
    x = find(s, "pool.checkout", "checkout_time");
    assert_int_equal(x->hist.count, 2);
    assert_int_equal(find(s, "pool.checkout", "counter")->counter, 4);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

static void invalid_input_is_rejected_and_not_recorded(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    const char *bad[] = {"", ".a", "a.", "a..b", "a\nb", "a\xe2", "\xc0\xaf", "x.\xed\xa0\x80"};
    for (size_t i = 0; i < FDN_ARRAY_LEN(bad); i++)
        assert_int_equal(fdn_telemetry_emit_counter(tm, bad[i], NULL, 0), FDN_EINVAL);
    char longname[FDN_TELEMETRY_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(fdn_telemetry_emit_counter(tm, longname, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_emit_counter(tm, NULL, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_emit_histogram(tm, "a", NAN, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_emit_gauge(tm, "a", INFINITY, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_emit_counter_n(tm, "a", 1, NULL, 1), FDN_EINVAL);
    fdn_telemetry_measure_t neg = {"counter", -1}, nokey = {NULL, 1}, empty = {"", 1};
    assert_int_equal(fdn_telemetry_execute(tm, "a", &neg, 1, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_execute(tm, "a", &nokey, 1, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_execute(tm, "a", &empty, 1, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_execute(tm, "a", NULL, 1, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_event_count(tm), 0);
    /* a measurement-less execute is valid: it counts an emission */
    assert_int_equal(fdn_telemetry_execute(tm, "a", NULL, 0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 1);
    fdn_telemetry_destroy(tm);
}

/* xorshift64*: deterministic test data (rand() is banned). */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void check_quantiles(const double *vals, size_t n)
{
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_family_t *f = NULL;
    fdn_histogram_t *h = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "latency_seconds", "x", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
        0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    double *sorted = malloc(n * sizeof(double));
    assert_non_null(sorted);
    for (size_t i = 0; i < n; i++) {
        fdn_histogram_observe(h, vals[i]);
        sorted[i] = vals[i];
    }
    qsort(sorted, n, sizeof(double), dbl_cmp);
    const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < FDN_ARRAY_LEN(qs); i++) {
        double r = ceil(qs[i] * (double)n);
        size_t rank = r < 1 ? 1 : (size_t)r;
        double exact = sorted[rank - 1];
        double est = fdn_histogram_quantile(h, qs[i]);
        double bound = fabs(exact) / 32.0 + 1e-12;
        if (fabs(est - exact) > bound)
            fail_msg("q=%g exact=%.17g est=%.17g", qs[i], exact, est);
    }
    fdn_telemetry_hist_stats_t st;
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, n);
    assert_true(st.min == sorted[0]);
    assert_true(st.max == sorted[n - 1]);
    assert_true(fdn_histogram_quantile(h, 0.0) == sorted[0]);
    assert_true(fdn_histogram_quantile(h, 1.0) == sorted[n - 1]);
    free(sorted);
    fdn_telemetry_destroy(tm);
}

static void histogram_quantiles_within_bound(void **state)
{
    (void)state;
    enum { N = 20000 };
    double *v = malloc(N * sizeof(double));
    assert_non_null(v);
    /* log-uniform positive values over 2^-6 .. 2^40 */
    for (size_t i = 0; i < N; i++)
        v[i] = ldexp(1.0 + (double)(rng() % 1000000) / 1e6, (int)(rng() % 46) - 6);
    check_quantiles(v, N);
    /* mixed signs and zeros, integer-valued like durations in ns */
    for (size_t i = 0; i < N; i++) {
        uint64_t r = rng();
        v[i] = (r % 7 == 0) ? 0.0 : (double)(r % 5000000) * ((r >> 40) % 3 == 0 ? -1.0 : 1.0);
    }
    check_quantiles(v, N);
    /* a single repeated value is reported exactly (clamped to min/max) */
    for (size_t i = 0; i < 100; i++)
        v[i] = 123.456;
    check_quantiles(v, 100);
    free(v);
}

static void bucket_mapping_is_ordered(void **state)
{
    (void)state;
    /* buckets are monotone in the value */
    const double vs[] = {-1e20, -5, -1, -0.001, 0, 1e-300, 0.001, 1, 1.03, 1.07, 2, 1e10, 1e30};
    for (size_t i = 1; i < FDN_ARRAY_LEN(vs); i++)
        assert_true(fdn__hist_bucket(vs[i - 1]) <= fdn__hist_bucket(vs[i]));
    assert_int_equal(fdn__hist_bucket(0.0), TM_HIST_HALF);
    assert_true(fdn__hist_mid(fdn__hist_bucket(1.0)) > 1.0);
    assert_true(fdn__hist_mid(fdn__hist_bucket(1.0)) < 1.0 + 1.0 / 16);
    assert_true(fdn__hist_bucket(1e30) < TM_HIST_BUCKETS);
}

static void families_labels_and_overflow(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    const char *ln[] = {"method", "code"};
    fdn_telemetry_family_t *f = NULL, *f2 = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "http_requests_total", "Requests",
                                          FDN_TELEMETRY_COUNTER, ln, 2, 3),
                     0);
    assert_int_equal(fdn_telemetry_family(tm, &f2, "http_requests_total", "again",
                                          FDN_TELEMETRY_COUNTER, ln, 2, 3),
                     0);
    assert_ptr_equal(f, f2);
    assert_int_equal(
        fdn_telemetry_family(tm, &f2, "http_requests_total", NULL, FDN_TELEMETRY_GAUGE, ln, 2, 0),
        FDN_EEXIST);
    assert_int_equal(
        fdn_telemetry_family(tm, &f2, "bad name", NULL, FDN_TELEMETRY_GAUGE, NULL, 0, 0),
        FDN_EINVAL);
    const char *badl[] = {"__x"}, *dup[] = {"a", "a"}, *le[] = {"le"};
    assert_int_equal(fdn_telemetry_family(tm, &f2, "g1", NULL, FDN_TELEMETRY_GAUGE, badl, 1, 0),
                     FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family(tm, &f2, "g1", NULL, FDN_TELEMETRY_GAUGE, dup, 2, 0),
                     FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family(tm, &f2, "g1", NULL, FDN_TELEMETRY_GAUGE, le, 1, 0),
                     FDN_EINVAL);

    fdn_counter_t *c[6];
    const char *codes[] = {"200", "201", "404", "500", "503", "200"};
    for (int i = 0; i < 6; i++) {
        const char *v[] = {"GET", codes[i]};
        assert_int_equal(fdn_telemetry_family_counter(f, &c[i], v, 2), 0);
        fdn_counter_add(c[i], (uint64_t)i + 1);
    }
    assert_ptr_equal(c[0], c[5]); /* same label set, same handle */
    assert_ptr_equal(c[3], c[4]); /* both overflowed */
    assert_ptr_not_equal(c[2], c[3]);
    assert_int_equal(fdn_telemetry_family_overflows(f), 2);
    assert_int_equal(fdn_counter_value(c[0]), 1 + 6);
    assert_int_equal(fdn_counter_value(c[3]), 4 + 5);
    const char *one[] = {"GET"};
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c[0], one, 1), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), FDN_EINVAL);

    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x =
        find(s, "fdn_telemetry_series_dropped_total", "http_requests_total");
    assert_non_null(x);
    assert_int_equal(x->counter, 2);
    size_t it = 0, series = 0;
    bool saw_overflow = false;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        if (strcmp(x->name, "http_requests_total") == 0) {
            series++;
            saw_overflow = saw_overflow || strcmp(x->label_values[1], "__overflow__") == 0;
        }
    assert_int_equal(series, 4);
    assert_true(saw_overflow);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

/* The label set whose every value is "__overflow__" is the overflow series' own: resolving it
 * made a second series with the same labels once the family overflowed (a duplicate series in
 * the exposition, which Prometheus refuses). It is the overflow series, and resolving it is not
 * counted as an overflow. */
static void overflow_label_set_is_one_series(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    const char *ln[] = {"k"};
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "ovf_total", NULL, FDN_TELEMETRY_COUNTER, ln, 1, 1), 0);
    const char *ov[] = {"__overflow__"}, *a[] = {"a"}, *b[] = {"b"};
    fdn_counter_t *c_ov = NULL, *c_a = NULL, *c_b = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c_ov, ov, 1), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c_a, a, 1), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c_b, b, 1), 0); /* over the cap of 1 */
    assert_int_equal(fdn_telemetry_family_overflows(f), 1);
    assert_ptr_equal(c_b, c_ov);
    assert_ptr_not_equal(c_a, c_ov);
    fdn_counter_add(c_ov, 2);
    fdn_counter_add(c_a, 5);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0, n_ov = 0, n_all = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL) {
        if (x->is_event || strcmp(x->name, "ovf_total") != 0)
            continue;
        n_all++;
        if (strcmp(x->label_values[0], "__overflow__") == 0) {
            n_ov++;
            assert_int_equal(x->counter, 2);
        } else {
            assert_string_equal(x->label_values[0], "a");
            assert_int_equal(x->counter, 5);
        }
    }
    assert_int_equal(n_ov, 1); /* one series per label set */
    assert_int_equal(n_all, 2);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

/* A resolve without somewhere to put the handle is refused and makes no series (it used to
 * make the series, then return FDN_EINVAL). */
static void resolve_without_out_changes_nothing(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    const char *ln[] = {"k"}, *v[] = {"v"};
    fdn_telemetry_family_t *fc = NULL, *fg = NULL, *fh = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fc, "nc_total", NULL, FDN_TELEMETRY_COUNTER, ln, 1, 0), 0);
    assert_int_equal(fdn_telemetry_family(tm, &fg, "ng", NULL, FDN_TELEMETRY_GAUGE, ln, 1, 1), 0);
    assert_int_equal(fdn_telemetry_family(tm, &fh, "nh", NULL, FDN_TELEMETRY_HISTOGRAM, ln, 1, 0),
                     0);
    assert_int_equal(fdn_telemetry_family_counter(fc, NULL, v, 1), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family_gauge(fg, NULL, v, 1), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_family_histogram(fh, NULL, v, 1), FDN_EINVAL);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_null(find_opt(s, "nc_total", NULL));
    assert_null(find_opt(s, "ng", NULL));
    assert_null(find_opt(s, "nh", NULL));
    fdn_telemetry_snapshot_free(s);
    /* the histogram family still takes its bounds: no series exists */
    const double le[] = {1, 2};
    assert_int_equal(fdn_telemetry_family_buckets(fh, le, 2), 0);
    fdn_telemetry_destroy(tm);
}

static void gauges_int_and_double(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_family_t *fi = NULL, *fd = NULL;
    fdn_gauge_t *gi = NULL, *gd = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fi, "queue_depth", "d", FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0), 0);
    assert_int_equal(
        fdn_telemetry_family(tm, &fd, "temperature_celsius", "t", FDN_TELEMETRY_GAUGE, NULL, 0, 0),
        0);
    assert_int_equal(fdn_telemetry_family_gauge(fi, &gi, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(fd, &gd, NULL, 0), 0);
    fdn_gauge_set(gi, INT64_C(9007199254740993)); /* 2^53 + 1: exact in an int gauge */
    assert_int_equal(fdn__gauge_int(gi), INT64_C(9007199254740993));
    fdn_gauge_add(gi, -3);
    assert_int_equal(fdn__gauge_int(gi), INT64_C(9007199254740990));
    fdn_gauge_set_double(gd, 1.5);
    fdn_gauge_add_double(gd, 0.25);
    fdn_gauge_add(gd, 2);
    assert_true(fdn_gauge_value(gd) == 3.75);
    fdn_gauge_set_double(gi, -7.9);
    assert_int_equal(fdn__gauge_int(gi), -7);
    fdn_telemetry_destroy(tm);
}

typedef struct hcount {
    int calls;
    int fail_from, fail_to; /* fail calls in [fail_from, fail_to) */
    char last[FDN_TELEMETRY_NAME_MAX + 1];
    char last_meta[4][64];
    fdn_telemetry_t *tm;
    uint64_t self_id;
} hcount_t;

static int count_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                         const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)m;
    (void)nm;
    hcount_t *h = user;
    int idx = h->calls++;
    snprintf(h->last, sizeof(h->last), "%s", event);
    for (size_t i = 0; i < nmeta && i < 4; i++)
        snprintf(h->last_meta[i], sizeof(h->last_meta[i]), "%s=%s", meta[i].key, meta[i].value);
    if (idx >= h->fail_from && idx < h->fail_to)
        return FDN_ETIMEDOUT;
    return 0;
}

static void handlers_match_by_name_and_prefix(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    hcount_t ex = {0}, pre = {0}, all = {0};
    uint64_t id_ex = 0, id_pre = 0, id_all = 0;
    assert_int_equal(
        fdn_telemetry_attach(tm, &id_ex, "a.b", FDN_TELEMETRY_MATCH_EXACT, count_handler, &ex), 0);
    assert_int_equal(
        fdn_telemetry_attach(tm, &id_pre, "a.b", FDN_TELEMETRY_MATCH_PREFIX, count_handler, &pre),
        0);
    assert_int_equal(
        fdn_telemetry_attach(tm, &id_all, "", FDN_TELEMETRY_MATCH_PREFIX, count_handler, &all), 0);
    assert_int_equal(
        fdn_telemetry_attach(tm, NULL, "", FDN_TELEMETRY_MATCH_EXACT, count_handler, &ex),
        FDN_EINVAL);
    assert_int_equal(fdn_telemetry_handler_count(tm), 3);
    const char *events[] = {"a.b", "a.bc", "a.b.c", "x", "a"};
    for (size_t i = 0; i < FDN_ARRAY_LEN(events); i++)
        assert_int_equal(fdn_telemetry_emit_counter(tm, events[i], NULL, 0), 0);
    assert_int_equal(ex.calls, 1);
    assert_int_equal(pre.calls, 2);
    assert_int_equal(all.calls, 5);
    assert_string_equal(pre.last, "a.b.c");
    assert_int_equal(fdn_telemetry_detach(tm, id_ex), 0);
    assert_int_equal(fdn_telemetry_detach(tm, id_ex), FDN_ENOENT);
    assert_int_equal(fdn_telemetry_detach_pattern(tm, "a.b"), 1);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "a.b", NULL, 0), 0);
    assert_int_equal(ex.calls, 1);
    assert_int_equal(pre.calls, 2);
    assert_int_equal(all.calls, 6);
    assert_int_equal(fdn_telemetry_handler_count(tm), 1);
    fdn_telemetry_destroy(tm); /* frees the remaining handler */
}

static void max3(fdn_telemetry_opts_t *o)
{
    o->handler_max_failures = 3;
}

static void failing_handler_is_reported_then_detached(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, max3);
    hcount_t bad = {.fail_from = 0, .fail_to = 1000}, watch = {0};
    uint64_t id = 0;
    assert_int_equal(
        fdn_telemetry_attach(tm, &id, "job", FDN_TELEMETRY_MATCH_PREFIX, count_handler, &bad), 0);
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.telemetry.handler_failure",
                                          FDN_TELEMETRY_MATCH_EXACT, count_handler, &watch),
                     0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_telemetry_emit_counter(tm, "job.run", NULL, 0), 0);
    assert_int_equal(bad.calls, 3); /* detached at the third consecutive failure */
    assert_int_equal(watch.calls, 3);
    assert_string_equal(watch.last_meta[1], "event=job.run");
    assert_string_equal(watch.last_meta[2], "error=FDN_ETIMEDOUT");
    assert_string_equal(watch.last_meta[3], "detached=true");
    assert_int_equal(fdn_telemetry_detach(tm, id), FDN_ENOENT);
    assert_int_equal(fdn_telemetry_handler_count(tm), 1);

    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "fdn_telemetry_handler_failures_total", NULL)->counter, 3);
    assert_int_equal(find(s, "fdn_telemetry_handlers_detached_total", NULL)->counter, 1);
    assert_int_equal(find(s, "foundation.telemetry.handler_failure", "counter")->counter, 3);
    fdn_telemetry_snapshot_free(s);

    /* a success resets the consecutive count: fail, fail, ok, fail, fail stays attached */
    hcount_t flaky = {.fail_from = 0, .fail_to = 2};
    assert_int_equal(
        fdn_telemetry_attach(tm, &id, "flaky", FDN_TELEMETRY_MATCH_EXACT, count_handler, &flaky),
        0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_telemetry_emit_counter(tm, "flaky", NULL, 0), 0);
    flaky.fail_from = 3;
    flaky.fail_to = 5;
    for (int i = 0; i < 2; i++)
        assert_int_equal(fdn_telemetry_emit_counter(tm, "flaky", NULL, 0), 0);
    assert_int_equal(flaky.calls, 5);
    assert_int_equal(fdn_telemetry_detach(tm, id), 0); /* still attached */
    fdn_telemetry_destroy(tm);
}

static void never0(fdn_telemetry_opts_t *o)
{
    o->handler_max_failures = 0;
}

static void catch_all_failing_handler_does_not_recurse(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, never0);
    hcount_t bad = {.fail_from = 0, .fail_to = 1 << 30};
    assert_int_equal(
        fdn_telemetry_attach(tm, NULL, "", FDN_TELEMETRY_MATCH_PREFIX, count_handler, &bad), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "x", NULL, 0), 0);
    /* x fails → handler_failure event → handler fails again (counted, not re-emitted) */
    assert_int_equal(bad.calls, 2);
    assert_int_equal(fdn_telemetry_handler_count(tm), 1);
    fdn_telemetry_destroy(tm);
}

static int self_detach(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                       const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    hcount_t *h = user;
    h->calls++;
    /* re-entrant calls from a handler */
    assert_int_equal(fdn_telemetry_emit_counter(h->tm, "inner.event", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_detach(h->tm, h->self_id), 0);
    return 0;
}

static void handler_may_emit_and_detach_itself(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    hcount_t h = {.tm = tm};
    assert_int_equal(
        fdn_telemetry_attach(tm, &h.self_id, "outer", FDN_TELEMETRY_MATCH_EXACT, self_detach, &h),
        0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "outer", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "outer", NULL, 0), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(fdn_telemetry_handler_count(tm), 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 2);
    fdn_telemetry_destroy(tm);
}

static json_t *jpath(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *n = json_object_get(root, a);
    if (n != NULL && b != NULL)
        n = json_object_get(n, b);
    if (n != NULL && c != NULL)
        n = json_object_get(n, c);
    return n;
}

static void json_is_the_reference_tree(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_meta_t md = {"event_type", "user_created"};
    for (int i = 0; i < 4; i++)
        fdn_telemetry_emit_counter(tm, "foundation.event_store.events_stored", &md, 1);
    fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_stored", 10, NULL, 0);
    fdn_telemetry_emit_counter(tm, "foundation.config_updates", NULL, 0);
    for (int i = 0; i < 3; i++)
        fdn_telemetry_emit_counter(tm, "foundation.event_queries", NULL, 0);
    fdn_telemetry_meta_t bad_utf8 = {"who\xff", "x\xc3"};
    fdn_telemetry_emit_counter(tm, "workflow.started", &bad_utf8, 1);
    fdn_telemetry_emit_gauge(tm, "top", 3.5, NULL, 0);
    fdn_telemetry_emit_histogram(tm, "top.child", 8, NULL, 0);
    fdn_telemetry_family_t *f = NULL;
    fdn_counter_t *c = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "jobs_total", "Jobs", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    fdn_counter_add(c, 7);

    char *text = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(tm, &text), 0);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    fdn_free(text);
    assert_non_null(root);
    json_t *v = jpath(root, "foundation", "events_stored", NULL);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 5); /* emissions, as the reference counts */
    v = jpath(root, "foundation", "config_updates", NULL);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 1);
    json_t *q = jpath(root, "foundation", "event_queries", NULL);
    assert_true(json_is_object(q));
    assert_int_equal(json_integer_value(json_object_get(q, "count")), 3);
    assert_int_equal(json_integer_value(jpath(q, "measurements", "counter", NULL)), 3);
    assert_true(json_is_object(json_object_get(q, "metadata")));
    assert_true(json_is_integer(json_object_get(q, "timestamp")));
    json_t *ws = jpath(root, "workflow", "started", NULL);
    assert_non_null(ws);
    /* invalid UTF-8 in metadata is replaced by U+FFFD, never breaks the JSON */
    assert_string_equal(json_string_value(jpath(ws, "metadata", "who\xef\xbf\xbd", NULL)),
                        "x\xef\xbf\xbd");
    json_t *top = json_object_get(root, "top");
    assert_true(json_real_value(jpath(top, "measurements", "gauge", NULL)) == 3.5);
    json_t *child = json_object_get(top, "child");
    assert_int_equal(json_integer_value(jpath(child, "measurements", "histogram", "count")), 1);
    assert_true(json_real_value(jpath(child, "measurements", "histogram", "max")) == 8.0);
    assert_true(json_is_integer(json_object_get(root, "retrieved_at")));
    json_t *fam = jpath(root, "families", "jobs_total", NULL);
    assert_string_equal(json_string_value(json_object_get(fam, "type")), "counter");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(fam, "series"), 0), "value")),
                     7);
    json_decref(root);
    fdn_telemetry_destroy(tm);
}

static void five_min_retention(fdn_telemetry_opts_t *o)
{
    o->retention_ns = 5 * MIN_NS;
}

/* By default nothing is dropped: a counter series lives as long as the process. */
static void default_keeps_idle_series(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 0), 0);
    fdn_telemetry_t *tm = new_tm(clk, NULL);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "registry.register", NULL, 0), 0);
    for (int i = 0; i < 24; i++) { /* a day of hourly cleanups */
        assert_int_equal(fdn_clock_advance(clk, 60 * MIN_NS), 0);
        assert_int_equal(fdn_telemetry_cleanup(tm), 0);
    }
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "registry.register", "counter")->counter, 1);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

static void retention_uses_the_injected_clock(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 0), 0);
    fdn_telemetry_t *tm = new_tm(clk, five_min_retention);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "old.event", NULL, 0), 0);
    assert_int_equal(fdn_clock_advance(clk, 4 * MIN_NS), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "new.event", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "busy.event", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_cleanup(tm), 0);
    assert_int_equal(fdn_clock_advance(clk, 2 * MIN_NS), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "busy.event", NULL, 0), 0);
    /* old: idle 6 min → dropped; new: idle 2 min; busy: changed since last sample */
    assert_int_equal(fdn_telemetry_cleanup(tm), 1);
    assert_int_equal(fdn_telemetry_event_count(tm), 2);
    assert_int_equal(fdn_clock_advance(clk, 4 * MIN_NS), 0);
    assert_int_equal(fdn_telemetry_cleanup(tm), 1); /* new.event idle 6 min */
    assert_int_equal(fdn_clock_advance(clk, 2 * MIN_NS), 0);
    assert_int_equal(fdn_telemetry_cleanup(tm), 1); /* busy.event idle since +6 min */
    assert_int_equal(fdn_telemetry_event_count(tm), 0);
    /* an expired name comes back fresh */
    assert_int_equal(fdn_telemetry_emit_counter(tm, "old.event", NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "old.event", "counter")->counter, 1);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

/* Retention and span durations subtract two readings of the instance's clock; a manual clock
 * may start far below 0 and move far, and the plain int64 subtraction overflowed (undefined
 * behaviour: UBSan stopped the process in cleanup). */
static void far_apart_clock_readings_do_not_overflow(void **state)
{
    (void)state;
    fdn_clock_t *c = NULL;
    assert_int_equal(fdn_clock_manual_create(&c, -5000000000000000000LL, INT64_MIN + 1), 0);
    fdn_telemetry_t *tm = new_tm(c, five_min_retention);
    fdn_telemetry_span_t sp;
    assert_int_equal(fdn_telemetry_span_start(tm, &sp, "far.span", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "far.event", NULL, 0), 0);
    assert_int_equal(fdn_clock_advance(c, 5000000000000000000LL), 0);
    assert_int_equal(fdn_clock_advance(c, 5000000000000000000LL), 0);
    assert_int_equal(fdn_telemetry_span_end(&sp, 0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_cleanup(tm), 2); /* far.event and far.span.start: idle */
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "far.span.stop", "duration");
    assert_int_equal(x->hist.count, 1);
    assert_true(x->hist.max == 1e19); /* the whole interval, exactly representable */
    assert_null(find_opt(s, "far.event", "counter"));
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(c);
}

static void with_thread(fdn_telemetry_opts_t *o)
{
    o->cleanup_interval_ns = MIN_NS;
    o->retention_ns = 5 * MIN_NS;
    o->emit_vm_gauges = false;
}

static void cleanup_thread_runs_on_clock_and_lifecycle(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 0), 0);
    fdn_telemetry_t *tm = new_tm(clk, with_thread);
    assert_int_equal(fdn__telemetry_service_start(tm), 0);
    assert_int_equal(fdn__telemetry_service_start(tm), 0); /* idempotent */
    assert_int_equal(fdn__telemetry_service_health(tm), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "e", NULL, 0), 0);
    while (fdn_clock_waiters(clk) == 0)
        sched_yield();
    assert_int_equal(fdn_clock_advance(clk, 6 * MIN_NS), 0);
    /* the thread wakes, sweeps and drops e (idle 6 min > 5 min retention) */
    while (fdn_telemetry_event_count(tm) != 0)
        sched_yield();

    /* stop: events dropped silently, reads unavailable, metrics kept */
    fdn_telemetry_family_t *f = NULL;
    fdn_counter_t *c = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "kept_total", "k", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    fdn_counter_add(c, 3);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "workflow.started", NULL, 0), 0);
    fdn__telemetry_service_stop(tm);
    fdn__telemetry_service_stop(tm);
    assert_int_equal(fdn__telemetry_service_health(tm), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "workflow.started", NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), FDN_EUNAVAILABLE);
    char *json = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(tm, &json), FDN_EUNAVAILABLE);
    hcount_t h = {0};
    assert_int_equal(
        fdn_telemetry_attach(tm, NULL, "x", FDN_TELEMETRY_MATCH_EXACT, count_handler, &h),
        FDN_EUNAVAILABLE);
    assert_int_equal(fdn__telemetry_service_start(tm), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "workflow.started", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "workflow.started", "counter")->counter, 2);
    assert_int_equal(find(s, "kept_total", NULL)->counter, 3);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm); /* joins the thread */
    fdn_clock_destroy(clk);
}

/* A double that overflowed to infinity (gauge add, histogram sum) has no JSON form; it must
 * not make the whole get_metrics JSON fail (it returned FDN_ENOMEM) nor drop the series. */
static void json_survives_infinite_values(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_family_t *f = NULL;
    fdn_gauge_t *g = NULL;
    fdn_histogram_t *h = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "big_gauge", "g", FDN_TELEMETRY_GAUGE, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_add_double(g, 1e308);
    fdn_gauge_add_double(g, 1e308);
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "big_hist", "h", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    fdn_histogram_observe(h, 1e308);
    fdn_histogram_observe(h, 1e308);
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "extreme_int", "i", FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, INT64_MAX);
    fdn_telemetry_emit_histogram(tm, "app.big", 1e308, NULL, 0);
    fdn_telemetry_emit_histogram(tm, "app.big", 1e308, NULL, 0);
    char *text = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(tm, &text), 0);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    fdn_free(text);
    assert_non_null(root);
    json_t *gs = json_object_get(jpath(root, "families", "big_gauge", NULL), "series");
    assert_int_equal(json_array_size(gs), 1);
    assert_true(json_is_null(json_object_get(json_array_get(gs, 0), "value")));
    json_t *hs = json_object_get(jpath(root, "families", "big_hist", NULL), "series");
    assert_int_equal(json_array_size(hs), 1);
    json_t *hv = json_object_get(json_array_get(hs, 0), "value");
    assert_int_equal(json_integer_value(json_object_get(hv, "count")), 2);
    assert_true(json_is_null(json_object_get(hv, "sum")));
    json_t *ev = jpath(jpath(root, "app", "big", "measurements"), "histogram", NULL, NULL);
    /* an int gauge at its extremes is written exactly (it went through a double cast that is
     * out of range for INT64_MAX) */
    json_t *is = json_object_get(jpath(root, "families", "extreme_int", NULL), "series");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(is, 0), "value")),
                     INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(ev, "count")), 2);
    json_decref(root);
    fdn_telemetry_destroy(tm);
}

static void huge_interval(fdn_telemetry_opts_t *o)
{
    o->cleanup_interval_ns = INT64_MAX;
    o->emit_vm_gauges = false;
}

/* A cleanup interval of INT64_MAX ns (effectively never) must not overflow the thread's
 * deadline (now + interval was signed-overflow UB); the thread parks and stops cleanly. */
static void huge_cleanup_interval_no_overflow(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 0), 0);
    fdn_telemetry_t *tm = new_tm(clk, huge_interval);
    assert_int_equal(fdn__telemetry_service_start(tm), 0);
    while (fdn_clock_waiters(clk) == 0)
        sched_yield();
    assert_int_equal(fdn_clock_advance(clk, 1000000), 0);
    assert_int_equal(fdn__telemetry_service_health(tm), 0);
    fdn__telemetry_service_stop(tm);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

static void vm_gauges_on_start(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    assert_int_equal(fdn__telemetry_service_start(tm), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    /* real figures (issue 18), not the reference's placeholder 1: this process's resident
     * bytes (more than a page), the machine's run queue (/proc/loadavg), its OS threads */
    const fdn_telemetry_sample_t *x = find(s, "vm.memory", "gauge");
    assert_non_null(x);
    assert_true(x->gauge > 4096.0);
    assert_string_equal(x->meta[0].value, "vm");
    x = find(s, "vm.system_counts", "gauge");
    assert_non_null(x);
    assert_true(x->gauge >= 1.0);
    x = find(s, "vm.total_run_queue_lengths", "gauge");
    assert_non_null(x);
    assert_true(x->gauge >= 0.0);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

typedef struct mctx {
    fdn_clock_t *clk;
    int rc;
} mctx_t;

static int measured(void *user)
{
    mctx_t *m = user;
    fdn_clock_advance(m->clk, 1500);
    return m->rc;
}

static void measure_emits_start_stop_exception(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, 0), 0);
    fdn_telemetry_t *tm = new_tm(clk, NULL);
    hcount_t watch = {0};
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "job.exception", FDN_TELEMETRY_MATCH_EXACT,
                                          count_handler, &watch),
                     0);
    mctx_t ok = {clk, 42}, bad = {clk, FDN_ETIMEDOUT};
    fdn_telemetry_meta_t md = {"module", "m"};
    assert_int_equal(fdn_telemetry_measure(tm, "job", &md, 1, measured, &ok), 42);
    assert_int_equal(fdn_telemetry_measure(tm, "job", &md, 1, measured, &bad), FDN_ETIMEDOUT);
    assert_int_equal(fdn_telemetry_measure(NULL, "job", NULL, 0, measured, &ok), 42);
    assert_int_equal(fdn_telemetry_measure(tm, "bad..name", NULL, 0, measured, &ok), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_measure(tm, "job", NULL, 0, NULL, NULL), FDN_EINVAL);
    assert_int_equal(watch.calls, 1);
    assert_string_equal(watch.last_meta[0], "module=m");
    assert_string_equal(watch.last_meta[1], "error=FDN_ETIMEDOUT");
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "job.start", "")->counter, 2);
    const fdn_telemetry_sample_t *x = find(s, "job.stop", "duration");
    assert_int_equal(x->hist.count, 1);
    assert_true(x->hist.sum == 1500.0);
    assert_int_equal(find(s, "job.exception", "duration")->hist.count, 1);
    fdn_telemetry_snapshot_free(s);

    fdn_telemetry_span_t sp;
    assert_int_equal(fdn_telemetry_span_start(tm, &sp, "span", NULL, 0), 0);
    fdn_clock_advance(clk, 10);
    assert_int_equal(fdn_telemetry_span_end(&sp, 0, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_true(find(s, "span.stop", "duration")->hist.max == 10.0);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

static void max2(fdn_telemetry_opts_t *o)
{
    o->max_events = 2;
}

static void event_names_are_bounded(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, max2);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "a", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "b", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "c", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "a", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 2);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "fdn_telemetry_dropped_events_total", NULL)->counter, 1);
    assert_null(find_opt(s, "c", "counter"));
    fdn_telemetry_snapshot_free(s);
    /* too many measurement keys on one event */
    char keys[TM_MAX_KEYS + 2][8];
    for (int i = 0; i < TM_MAX_KEYS + 2; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        fdn_telemetry_measure_t m = {keys[i], 1};
        assert_int_equal(fdn_telemetry_execute(tm, "a", &m, 1, NULL, 0), 0);
    }
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(find(s, "fdn_telemetry_dropped_measurements_total", NULL)->counter,
                     3); /* "counter" took one of the 16 slots */
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

/* A measurement key longer than FDN_TELEMETRY_NAME_MAX was cut to that length when its slot
 * was made, so the next emission (comparing the whole key) did not find the slot and made
 * another: each emission got a slot of its own until the entry's 16 were used up. */
static void long_measurement_key_is_rejected(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    char key[FDN_TELEMETRY_NAME_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    fdn_telemetry_measure_t m[2] = {{"counter", 1}, {key, 1}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_telemetry_execute(tm, "long.key", m, 2, NULL, 0), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_event_count(tm), 0); /* nothing recorded */
    key[FDN_TELEMETRY_NAME_MAX] = '\0';                 /* the longest key accepted */
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_telemetry_execute(tm, "long.key", m, 2, NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0, n = 0;
    const fdn_telemetry_sample_t *x;
    while ((x = fdn_telemetry_snapshot_next(s, &it)) != NULL)
        n += x->is_event && strcmp(x->name, "long.key") == 0 ? 1 : 0;
    assert_int_equal(n, 3); /* emission count, counter, the long key: one slot each */
    assert_int_equal(find(s, "long.key", key)->hist.count, 3);
    assert_int_equal(find(s, "long.key", "counter")->counter, 3);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

typedef struct big_add {
    fdn_counter_t *c;
    test_threads_t *g;
} big_add_t;

/* Adds 2^63 from a thread of its own, and stays alive (holding its shard) until released. */
static void *add_half(void *arg)
{
    big_add_t *a = arg;
    fdn_counter_add(a->c, (uint64_t)1 << 63);
    test_threads_gate(a->g); /* added */
    test_threads_gate(a->g); /* read: exit */
    return NULL;
}

/* Counters saturate at UINT64_MAX: a u64 that wrapped read as a small number, which a
 * scraper takes for a counter reset. An event counter already at UINT64_MAX (a huge value,
 * which execute records as UINT64_MAX) went to 0 with one more emission; so did a family
 * counter added past the top, and a counter whose shards summed past it. */
static void counters_saturate_instead_of_wrapping(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_measure_t big = {"counter", 1e30};
    assert_int_equal(fdn_telemetry_execute(tm, "sat.event", &big, 1, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "sat.event", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter_n(tm, "sat.event", UINT64_MAX, NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_true(find(s, "sat.event", "counter")->counter == UINT64_MAX);
    fdn_telemetry_snapshot_free(s);

    fdn_telemetry_family_t *f = NULL;
    fdn_counter_t *c = NULL, *c2 = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "sat_total", NULL, FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    fdn_counter_add(c, UINT64_MAX - 1);
    fdn_counter_add(c, 5);
    assert_true(fdn_counter_value(c) == UINT64_MAX);
    fdn_counter_inc(c);
    assert_true(fdn_counter_value(c) == UINT64_MAX);

    /* two live threads hold distinct shards: each adds 2^63, the sum is past the top */
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "sat2_total", NULL, FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &c2, NULL, 0), 0);
    fdn_counter_inc(c2); /* this thread's shard too */
    test_threads_t g;
    test_threads_init(&g, 3);
    big_add_t a = {c2, &g};
    test_threads_start_n(&g, 2, add_half, &a, 0);
    test_threads_gate(&g);
    assert_true(fdn_counter_value(c2) == UINT64_MAX);
    test_threads_gate(&g);
    test_threads_join(&g);
    fdn_telemetry_destroy(tm);
}

/* emit_counter_n adds n exactly: it went through a double, so n above 2^53 was rounded
 * (2^60 + 1 was recorded as 2^60). */
static void emit_counter_n_is_exact(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    const uint64_t n = ((uint64_t)1 << 60) + 1;
    assert_int_equal(fdn_telemetry_emit_counter_n(tm, "exact.n", n, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_counter_n(tm, "exact.n", 3, NULL, 0), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_true(find(s, "exact.n", "counter")->counter == n + 3);
    assert_int_equal(find(s, "exact.n", "")->counter, 2);
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_destroy(tm);
}

/* First-emission metadata is cut at 256 bytes (keys at FDN_TELEMETRY_NAME_MAX): at a character
 * boundary, not inside a UTF-8 sequence (whose broken start the JSON showed as U+FFFD). */
static void metadata_cut_keeps_whole_characters(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    char val[TM_META_VAL_MAX + 8];
    memset(val, 'a', TM_META_VAL_MAX - 1);
    memcpy(val + TM_META_VAL_MAX - 1, "\xc3\xa9tail", 7); /* e-acute across the cut */
    val[TM_META_VAL_MAX + 6] = '\0';
    char key[FDN_TELEMETRY_NAME_MAX + 8];
    memset(key, 'k', FDN_TELEMETRY_NAME_MAX - 2);
    memcpy(key + FDN_TELEMETRY_NAME_MAX - 2, "\xe2\x82\xac", 4); /* euro sign across it */
    fdn_telemetry_meta_t md = {key, val};
    assert_int_equal(fdn_telemetry_emit_counter(tm, "cut.meta", &md, 1), 0);
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    const fdn_telemetry_sample_t *x = find(s, "cut.meta", "counter");
    assert_int_equal(x->nmeta, 1);
    assert_int_equal(strlen(x->meta[0].value), TM_META_VAL_MAX - 1);
    assert_int_equal(strlen(x->meta[0].key), FDN_TELEMETRY_NAME_MAX - 2);
    fdn_telemetry_snapshot_free(s);
    char *json = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(tm, &json), 0);
    assert_null(strstr(json, "\xef\xbf\xbd")); /* no U+FFFD */
    fdn_free(json);
    fdn_telemetry_destroy(tm);
}

static void reset_keeps_handles_valid(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = new_tm(NULL, NULL);
    fdn_telemetry_family_t *f = NULL;
    fdn_histogram_t *h = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "op_seconds", "x", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    fdn_histogram_observe(h, 1.0);
    fdn_telemetry_emit_counter(tm, "e", NULL, 0);
    /* a snapshot outlives the entries it copied */
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    assert_int_equal(fdn_telemetry_reset_metrics(tm), 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 0);
    assert_string_equal(find(s, "e", "counter")->name, "e");
    fdn_telemetry_snapshot_free(s);
    fdn_telemetry_hist_stats_t st;
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 0);
    fdn_histogram_observe(h, 2.0);
    fdn_histogram_stats(h, &st);
    assert_int_equal(st.count, 1);
    assert_true(st.min == 2.0);
    fdn_telemetry_emit_counter(tm, "e", NULL, 0);
    assert_int_equal(fdn_telemetry_event_count(tm), 1);
    fdn_telemetry_destroy(tm);
}

static void name_validation(void **state)
{
    (void)state;
    assert_true(fdn_telemetry_name_valid("a_b:c9", 6, false));
    assert_false(fdn_telemetry_name_valid("a_b:c9", 6, true));
    assert_false(fdn_telemetry_name_valid("9a", 2, false));
    assert_false(fdn_telemetry_name_valid("a-b", 3, false));
    assert_false(fdn_telemetry_name_valid("", 0, false));
    assert_false(fdn_telemetry_name_valid("quantile", 8, true));
    assert_true(fdn_telemetry_name_valid("_x", 2, true));
    assert_true(fdn_telemetry_event_name_valid("a.b.c", 5));
    assert_true(fdn_telemetry_event_name_valid("caf\xc3\xa9.\xe2\x82\xac", 9));
    assert_false(fdn_telemetry_event_name_valid("a.b.", 4));
}

static void create_rejects_bad_options(void **state)
{
    (void)state;
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    fdn_telemetry_t *tm = NULL;
    o.retention_ns = -1;
    assert_int_equal(fdn_telemetry_create(&tm, &o), FDN_EINVAL);
    o = (fdn_telemetry_opts_t)FDN_TELEMETRY_OPTS_INIT;
    o.version = 0;
    assert_int_equal(fdn_telemetry_create(&tm, &o), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_create(NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_instance_is_a_noop),
        cmocka_unit_test(aggregation_follows_the_reference),
        cmocka_unit_test(invalid_input_is_rejected_and_not_recorded),
        cmocka_unit_test(histogram_quantiles_within_bound),
        cmocka_unit_test(bucket_mapping_is_ordered),
        cmocka_unit_test(families_labels_and_overflow),
        cmocka_unit_test(overflow_label_set_is_one_series),
        cmocka_unit_test(resolve_without_out_changes_nothing),
        cmocka_unit_test(gauges_int_and_double),
        cmocka_unit_test(handlers_match_by_name_and_prefix),
        cmocka_unit_test(failing_handler_is_reported_then_detached),
        cmocka_unit_test(catch_all_failing_handler_does_not_recurse),
        cmocka_unit_test(handler_may_emit_and_detach_itself),
        cmocka_unit_test(json_is_the_reference_tree),
        cmocka_unit_test(retention_uses_the_injected_clock),
        cmocka_unit_test(default_keeps_idle_series),
        cmocka_unit_test(far_apart_clock_readings_do_not_overflow),
        cmocka_unit_test(cleanup_thread_runs_on_clock_and_lifecycle),
        cmocka_unit_test(huge_cleanup_interval_no_overflow),
        cmocka_unit_test(json_survives_infinite_values),
        cmocka_unit_test(vm_gauges_on_start),
        cmocka_unit_test(measure_emits_start_stop_exception),
        cmocka_unit_test(event_names_are_bounded),
        cmocka_unit_test(long_measurement_key_is_rejected),
        cmocka_unit_test(counters_saturate_instead_of_wrapping),
        cmocka_unit_test(emit_counter_n_is_exact),
        cmocka_unit_test(metadata_cut_keeps_whole_characters),
        cmocka_unit_test(reset_keeps_handles_valid),
        cmocka_unit_test(name_validation),
        cmocka_unit_test(create_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
