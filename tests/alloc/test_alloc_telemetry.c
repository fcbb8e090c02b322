/* Failing-allocator sweep of include/fdn/telemetry.h (tests/alloc/README.md): the instance,
 * events (a new entry per pass: execute and the emit helpers drop an event they cannot store,
 * returning 0 as documented), handlers, families and series, buckets, and every reader
 * (snapshot, JSON, the two text expositions). A failed attach or family leaves nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/common.h>
#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "alloc_sweep.h"

static fdn_telemetry_t *mk(void)
{
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, &o), 0);
    return tm;
}

static void sweep_create(void **state)
{
    (void)state;
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    SWEEP(sw, fdn_telemetry_create, 0)
    {
        fdn_telemetry_t *tm = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_create(&tm, &o))) {
            assert_null(tm);
        } else {
            assert_int_equal(fdn_telemetry_emit_counter(tm, "a.b", NULL, 0), 0);
            fdn_telemetry_destroy(tm);
        }
    }
}

static int measured(void *user)
{
    (void)user;
    return 0;
}

/* A new event name each pass (so the call must make its entry); the call answers 0 whether
 * or not it could store it. */
#define EMIT_SWEEP(fname, call)                                                                    \
    SWEEP(sw, fname, SWEEP_KEEP)                                                                   \
    {                                                                                              \
        char ev[48];                                                                               \
        snprintf(ev, sizeof(ev), "sweep.%s.e%ld", &(#fname)[4], sw.n);                             \
        sweep_arm(&sw);                                                                            \
        sweep_failed(&sw, call);                                                                   \
    }

static void sweep_events(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    const fdn_telemetry_meta_t meta[1] = {{"region", "eu"}};
    const fdn_telemetry_measure_t m[2] = {{"count", 1}, {"duration", 5}};
    EMIT_SWEEP(fdn_telemetry_execute, fdn_telemetry_execute(tm, ev, m, 2, meta, 1));
    EMIT_SWEEP(fdn_telemetry_emit_counter, fdn_telemetry_emit_counter(tm, ev, meta, 1));
    EMIT_SWEEP(fdn_telemetry_emit_counter_n, fdn_telemetry_emit_counter_n(tm, ev, 3, NULL, 0));
    EMIT_SWEEP(fdn_telemetry_emit_gauge, fdn_telemetry_emit_gauge(tm, ev, 2.5, NULL, 0));
    EMIT_SWEEP(fdn_telemetry_emit_histogram, fdn_telemetry_emit_histogram(tm, ev, 7, NULL, 0));
    EMIT_SWEEP(fdn_telemetry_emit_performance,
               fdn_telemetry_emit_performance(tm, ev, 1.5, NULL, 0));
    EMIT_SWEEP(fdn_telemetry_emit_system_event, fdn_telemetry_emit_system_event(tm, ev, meta, 1));
    EMIT_SWEEP(fdn_telemetry_measure, fdn_telemetry_measure(tm, ev, NULL, 0, measured, NULL));
    SWEEP(sw, fdn_telemetry_span_start, SWEEP_KEEP)
    {
        char ev[48];
        snprintf(ev, sizeof(ev), "sweep.span.e%ld", sw.n);
        fdn_telemetry_span_t span;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_telemetry_span_start(tm, &span, ev, NULL, 0)))
            assert_int_equal(fdn_telemetry_span_end(&span, 0, NULL, 0), 0);
    }
    SWEEP(sw, fdn_telemetry_span_end, SWEEP_KEEP)
    {
        char ev[48];
        snprintf(ev, sizeof(ev), "sweep.spanend.e%ld", sw.n);
        fdn_telemetry_span_t span;
        assert_int_equal(fdn_telemetry_span_start(tm, &span, ev, NULL, 0), 0);
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_telemetry_span_end(&span, 0, meta, 1));
    }
    NOALLOC_SWEEP(fdn_telemetry_destroy, fdn_telemetry_destroy(tm)); /* allocates nothing */
    assert_int_equal(sweep_live(), base);
}

static int handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                   const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    (*(int *)user)++;
    return 0;
}

static void collector(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    (void)user;
}

static void sweep_handlers(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    int calls = 0;
    SWEEP(sw, fdn_telemetry_attach, SWEEP_KEEP)
    {
        uint64_t id = 0;
        size_t before = fdn_telemetry_handler_count(tm);
        sweep_arm(&sw);
        int rc =
            fdn_telemetry_attach(tm, &id, "app.req", FDN_TELEMETRY_MATCH_PREFIX, handler, &calls);
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_telemetry_handler_count(tm), before);
        } else {
            assert_int_equal(fdn_telemetry_handler_count(tm), before + 1);
            calls = 0;
            assert_int_equal(fdn_telemetry_emit_counter(tm, "app.req.x", NULL, 0), 0);
            assert_int_equal(calls, 1);
            assert_int_equal(fdn_telemetry_detach(tm, id), 0);
        }
    }
    SWEEP(sw, fdn_telemetry_add_collector, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_telemetry_add_collector(tm, collector, NULL)))
            assert_int_equal(fdn_telemetry_remove_collector(tm, collector, NULL), 0);
    }
    SWEEP(sw, fdn_telemetry_unexport_event, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_telemetry_unexport_event(tm, "app.hidden"));
    }
    fdn_telemetry_destroy(tm);
    assert_int_equal(sweep_live(), base);
}

static void sweep_families(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    static const char *const labels[2] = {"method", "code"};
    SWEEP(sw, fdn_telemetry_family, SWEEP_KEEP)
    {
        char name[48];
        snprintf(name, sizeof(name), "sweep_requests_%ld_total", sw.n);
        fdn_telemetry_family_t *fam = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_family(tm, &fam, name, "help", FDN_TELEMETRY_COUNTER,
                                                   labels, 2, 0)))
            assert_null(fam);
    }
    fdn_telemetry_family_t *fc = NULL, *fg = NULL, *fh = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fc, "c_total", NULL, FDN_TELEMETRY_COUNTER, labels, 2, 0), 0);
    assert_int_equal(fdn_telemetry_family(tm, &fg, "g", NULL, FDN_TELEMETRY_GAUGE, labels, 2, 0),
                     0);
    assert_int_equal(
        fdn_telemetry_family(tm, &fh, "h", NULL, FDN_TELEMETRY_HISTOGRAM, labels, 2, 0), 0);
    static const double bounds[3] = {0.1, 1, 10};
    SWEEP(sw, fdn_telemetry_family_buckets, 0)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_telemetry_family_buckets(fh, bounds, 3));
    }
    SWEEP(sw, fdn_telemetry_family_counter, SWEEP_KEEP)
    {
        char code[16];
        snprintf(code, sizeof(code), "%ld", sw.n);
        const char *values[2] = {"GET", code};
        fdn_counter_t *c = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_family_counter(fc, &c, values, 2))) {
            assert_null(c);
        } else {
            fdn_counter_inc(c);
            assert_int_equal(fdn_counter_value(c), 1);
        }
    }
    SWEEP(sw, fdn_telemetry_family_gauge, SWEEP_KEEP)
    {
        char code[16];
        snprintf(code, sizeof(code), "%ld", sw.n);
        const char *values[2] = {"PUT", code};
        fdn_gauge_t *g = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_family_gauge(fg, &g, values, 2)))
            assert_null(g);
        else
            fdn_gauge_set(g, 4);
    }
    SWEEP(sw, fdn_telemetry_family_histogram, SWEEP_KEEP)
    {
        char code[16];
        snprintf(code, sizeof(code), "%ld", sw.n);
        const char *values[2] = {"POST", code};
        fdn_histogram_t *h = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_family_histogram(fh, &h, values, 2))) {
            assert_null(h);
        } else {
            fdn_histogram_observe(h, 0.5);
            fdn_histogram_observe_exemplar(h, 2, "trace_id", "abc");
        }
    }
    fdn_telemetry_destroy(tm);
    assert_int_equal(sweep_live(), base);
}

static int sink(const char *data, size_t len, void *user)
{
    (void)data;
    *(size_t *)user += len;
    return 0;
}

static void sweep_readers(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    static const char *const labels[1] = {"k"};
    fdn_telemetry_family_t *fam = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fam, "r_total", "h", FDN_TELEMETRY_COUNTER, labels, 1, 0), 0);
    const char *v[1] = {"x"};
    fdn_counter_t *c = NULL;
    assert_int_equal(fdn_telemetry_family_counter(fam, &c, v, 1), 0);
    fdn_counter_add(c, 3);
    const fdn_telemetry_measure_t m[1] = {{"duration", 5}};
    assert_int_equal(fdn_telemetry_execute(tm, "app.op", m, 1, NULL, 0), 0);
    SWEEP(sw, fdn_telemetry_snapshot, 0)
    {
        fdn_telemetry_snapshot_t *s = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_snapshot(tm, &s))) {
            assert_null(s);
        } else {
            size_t it = 0, n = 0;
            while (fdn_telemetry_snapshot_next(s, &it) != NULL)
                n++;
            assert_true(n >= 2);
            fdn_telemetry_snapshot_free(s);
        }
    }
    SWEEP(sw, fdn_telemetry_metrics_json, 0)
    {
        char *out = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_metrics_json(tm, &out)))
            assert_null(out);
        else
            assert_non_null(strstr(out, "r_total"));
        fdn_free(out);
    }
    size_t whole = 0;
    SWEEP(sw, fdn_telemetry_write_prometheus, 0)
    {
        size_t len = 0;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_telemetry_write_prometheus(tm, sink, &len))) {
            assert_true(len > 0);
            whole = len;
        }
    }
    SWEEP(sw, fdn_telemetry_write_openmetrics, 0)
    {
        size_t len = 0;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_telemetry_write_openmetrics(tm, sink, &len)))
            assert_true(len > 0 && whole > 0);
    }
    SWEEP(sw, fdn_telemetry_text_acquire, 0)
    {
        const char *text = NULL;
        size_t len = 0;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_telemetry_text_acquire(tm, false, &text, &len))) {
            assert_true(len > 0 && whole > 0);
            assert_non_null(strstr(text, "r_total"));
            /* the cache holds the text too: releasing this reference frees nothing */
            NOALLOC_SWEEP(fdn_telemetry_text_release, fdn_telemetry_text_release(text));
        }
    }
    SWEEP(sw, fdn_telemetry_cleanup, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_telemetry_cleanup(tm);
        sweep_failed(&sw, rc < 0 ? rc : 0);
    }
    SWEEP(sw, fdn_telemetry_reset_metrics, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_telemetry_reset_metrics(tm));
    }
    fdn_telemetry_destroy(tm);
    assert_int_equal(sweep_live(), base);
}

/* A histogram's first observation on a thread makes that thread's shard: out of memory the
 * value is dropped (metrics.c), and the series stays usable. A new series per pass. */
/* get_metrics as JSON either fails with FDN_ENOMEM or is the whole document: a label value,
 * a measurement or a metadata pair whose JSON value or object slot could not be allocated was
 * left out and the call still returned 0 (a partial tree reported as the metrics). */
static void sweep_metrics_json_is_whole(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    static const char *const labels[2] = {"method", "code"};
    fdn_telemetry_family_t *fam = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fam, "req_total", "h", FDN_TELEMETRY_COUNTER, labels, 2, 0), 0);
    for (int i = 0; i < 3; i++) {
        char code[8];
        snprintf(code, sizeof(code), "%d", 200 + i);
        const char *v[2] = {"GET", code};
        fdn_counter_t *c = NULL;
        assert_int_equal(fdn_telemetry_family_counter(fam, &c, v, 2), 0);
        fdn_counter_add(c, (uint64_t)i + 1);
    }
    const fdn_telemetry_measure_t m[3] = {{"duration", 5}, {"counter", 2}, {"gauge", 1.5}};
    const fdn_telemetry_meta_t md[3] = {{"path", "/a"}, {"node", "n1"}, {"zone", "z"}};
    assert_int_equal(fdn_telemetry_execute(tm, "app.op", m, 3, md, 3), 0);
    assert_int_equal(fdn_telemetry_execute(tm, "app.other", m, 3, md, 3), 0);
    char *want = NULL;
    assert_int_equal(fdn_telemetry_metrics_json(tm, &want), 0);
    SWEEP(sw, fdn_telemetry_metrics_json, SWEEP_KEEP)
    {
        char *out = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_telemetry_metrics_json(tm, &out))) {
            assert_null(out);
        } else {
            /* the same tree up to retrieved_at, the last key (the clock moves) */
            const char *a = strstr(want, "\"retrieved_at\""), *b = strstr(out, "\"retrieved_at\"");
            assert_non_null(a);
            assert_non_null(b);
            assert_int_equal(b - out, a - want);
            assert_memory_equal(want, out, (size_t)(a - want));
        }
        fdn_free(out);
    }
    fdn_free(want);
    fdn_telemetry_destroy(tm);
    assert_int_equal(sweep_live(), base);
}

static void sweep_observe(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_telemetry_t *tm = mk();
    static const char *const labels[1] = {"n"};
    fdn_telemetry_family_t *fh = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fh, "obs", NULL, FDN_TELEMETRY_HISTOGRAM, labels, 1, 0), 0);
#define OBSERVE_SWEEP(fname, call)                                                                 \
    SWEEP(sw, fname, SWEEP_KEEP)                                                                   \
    {                                                                                              \
        char n[24];                                                                                \
        snprintf(n, sizeof(n), "%s%ld", &(#fname)[14], sw.n);                                      \
        const char *v[1] = {n};                                                                    \
        fdn_histogram_t *h = NULL;                                                                 \
        assert_int_equal(fdn_telemetry_family_histogram(fh, &h, v, 1), 0);                         \
        sweep_arm(&sw);                                                                            \
        call;                                                                                      \
        sweep_failed(&sw, 0);                                                                      \
        fdn_telemetry_hist_stats_t hs;                                                             \
        fdn_histogram_observe(h, 2); /* usable: this one is counted */                             \
        fdn_histogram_stats(h, &hs);                                                               \
        assert_true(hs.count >= 1 && hs.count <= 2);                                               \
        if (!sw.injected)                                                                          \
            assert_int_equal(hs.count, 2);                                                         \
    }
    OBSERVE_SWEEP(fdn_histogram_observe, fdn_histogram_observe(h, 0.5));
    OBSERVE_SWEEP(fdn_histogram_observe_exemplar,
                  fdn_histogram_observe_exemplar(h, 0.5, "trace_id", "abc"));
#undef OBSERVE_SWEEP
    /* the readers copy the series first: out of memory they answer zeros (void calls) */
    const char *v[1] = {"read"};
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(fh, &h, v, 1), 0);
    fdn_histogram_observe(h, 4);
    SWEEP(sw, fdn_histogram_stats, 0)
    {
        fdn_telemetry_hist_stats_t hs;
        sweep_arm(&sw);
        fdn_histogram_stats(h, &hs);
        sweep_failed(&sw, 0);
        assert_int_equal(hs.count, sw.injected ? 0 : 1);
    }
    SWEEP(sw, fdn_histogram_quantile, 0)
    {
        sweep_arm(&sw);
        double q = fdn_histogram_quantile(h, 0.5);
        sweep_failed(&sw, 0);
        assert_true(sw.injected ? q == 0.0 : q > 0.0);
    }
    fdn_telemetry_destroy(tm);
    assert_int_equal(sweep_live(), base);
}

/* Updates of resolved series (the hot paths), reads, and the calls that only drop state
 * allocate nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = mk();
    fdn_telemetry_family_t *fc = NULL, *fg = NULL, *fh = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &fc, "n_total", NULL, FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family(tm, &fg, "n_g", NULL, FDN_TELEMETRY_GAUGE, NULL, 0, 0),
                     0);
    assert_int_equal(
        fdn_telemetry_family(tm, &fh, "n_h", NULL, FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    fdn_counter_t *c = NULL;
    fdn_gauge_t *g = NULL;
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_counter(fc, &c, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(fg, &g, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(fh, &h, NULL, 0), 0);
    NOALLOC_SWEEP(fdn_counter_add, fdn_counter_add(c, 2));
    NOALLOC_SWEEP(fdn_counter_set, fdn_counter_set(c, 5));
    NOALLOC_SWEEP(fdn_counter_inc, fdn_counter_inc(c));
    NOALLOC_SWEEP(fdn_counter_value, fdn_counter_value(c));
    NOALLOC_SWEEP(fdn_gauge_set, fdn_gauge_set(g, 3));
    NOALLOC_SWEEP(fdn_gauge_add, fdn_gauge_add(g, 1));
    NOALLOC_SWEEP(fdn_gauge_set_double, fdn_gauge_set_double(g, 1.5));
    NOALLOC_SWEEP(fdn_gauge_add_double, fdn_gauge_add_double(g, 0.5));
    NOALLOC_SWEEP(fdn_gauge_value, fdn_gauge_value(g));
    fdn_histogram_observe(h, 0.3); /* (makes this thread's shard: swept in sweep_observe) */
    uint64_t cum[1] = {0};
    NOALLOC_SWEEP(fdn_histogram_load, fdn_histogram_load(h, cum, 0, 0));
    NOALLOC_SWEEP(fdn_telemetry_family_overflows, fdn_telemetry_family_overflows(fc));
    NOALLOC_SWEEP(fdn_telemetry_handler_count, fdn_telemetry_handler_count(tm));
    NOALLOC_SWEEP(fdn_telemetry_event_count, fdn_telemetry_event_count(tm));
    NOALLOC_SWEEP(fdn_telemetry_name_valid, fdn_telemetry_name_valid("a_b", 3, false));
    NOALLOC_SWEEP(fdn_telemetry_event_name_valid, fdn_telemetry_event_name_valid("a.b", 3));
    fdn_telemetry_snapshot_t *s = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &s), 0);
    size_t it = 0;
    NOALLOC_SWEEP(fdn_telemetry_snapshot_next, fdn_telemetry_snapshot_next(s, &it));
    NOALLOC_SWEEP(fdn_telemetry_snapshot_time, fdn_telemetry_snapshot_time(s));
    NOALLOC_SWEEP(fdn_telemetry_snapshot_free, fdn_telemetry_snapshot_free(s));
    /* detaching copies the handler set (RCU); without memory for the copy the handler is
     * detached in place (a detach does not fail: teardown detaches). Either way it is not
     * called again and no longer counted, and the set's next change drops it. */
    int calls = 0;
    uint64_t id = 0;
    SWEEP(sw, fdn_telemetry_detach, SWEEP_KEEP)
    {
        if (fdn_telemetry_handler_count(tm) == 0)
            assert_int_equal(
                fdn_telemetry_attach(tm, &id, "x", FDN_TELEMETRY_MATCH_EXACT, handler, &calls), 0);
        sweep_arm(&sw);
        assert_false(sweep_failed(&sw, fdn_telemetry_detach(tm, id)));
        assert_int_equal(fdn_telemetry_handler_count(tm), 0);
        calls = 0;
        assert_int_equal(fdn_telemetry_emit_counter(tm, "x", NULL, 0), 0);
        assert_int_equal(calls, 0);
        assert_int_equal(fdn_telemetry_detach(tm, id), FDN_ENOENT);
    }
    /* detach_pattern answers the number detached (two handlers on the pattern) */
    uint64_t id2 = 0;
    SWEEP(sw, fdn_telemetry_detach_pattern, SWEEP_KEEP)
    {
        assert_int_equal(
            fdn_telemetry_attach(tm, &id, "y", FDN_TELEMETRY_MATCH_EXACT, handler, &calls), 0);
        assert_int_equal(
            fdn_telemetry_attach(tm, &id2, "y", FDN_TELEMETRY_MATCH_EXACT, handler, NULL), 0);
        sweep_arm(&sw);
        int rc = fdn_telemetry_detach_pattern(tm, "y");
        assert_false(sweep_failed(&sw, rc < 0 ? rc : 0));
        assert_int_equal(rc, 2);
        assert_int_equal(fdn_telemetry_handler_count(tm), 0);
        calls = 0;
        assert_int_equal(fdn_telemetry_emit_counter(tm, "y", NULL, 0), 0);
        assert_int_equal(calls, 0);
    }
    SWEEP(sw, fdn_telemetry_remove_collector, SWEEP_KEEP)
    {
        int rc0 = fdn_telemetry_add_collector(tm, collector, NULL);
        assert_true(rc0 == 0 || rc0 == FDN_EEXIST);
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_telemetry_remove_collector(tm, collector, NULL));
    }
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_create),   cmocka_unit_test(sweep_events),
        cmocka_unit_test(sweep_handlers), cmocka_unit_test(sweep_families),
        cmocka_unit_test(sweep_readers),  cmocka_unit_test(sweep_metrics_json_is_whole),
        cmocka_unit_test(sweep_observe),  cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
