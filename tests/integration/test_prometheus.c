/* Integration test: the Prometheus exposition of a telemetry instance is accepted by
 * `promtool check metrics` (format and lint), including label escaping, histograms with `le`
 * buckets, event entries with odd characters, the overflow series, name collisions, the
 * process collector; one of each metric type pinned byte for byte; OpenMetrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "exposition.h"

static int failing_sink(const char *data, size_t len, void *user)
{
    (void)data;
    (void)len;
    (void)user;
    return FDN_EIO;
}

static fdn_telemetry_t *populate(void)
{
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    const char *ln[] = {"method", "path"};
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "http_requests_total",
                                          "HTTP requests\nby \\ path", FDN_TELEMETRY_COUNTER, ln, 2,
                                          2),
                     0);
    const char *paths[] = {"/a\"quoted\"\xff\xc3\xa9", "/b\\back\nline", "/c", "/d"};
    for (size_t i = 0; i < 4; i++) {
        const char *v[] = {"GET", paths[i]};
        fdn_counter_t *c = NULL;
        assert_int_equal(fdn_telemetry_family_counter(f, &c, v, 2), 0);
        fdn_counter_add(c, i + 1);
    }
    const char *hl[] = {"pool"};
    assert_int_equal(fdn_telemetry_family(tm, &f, "pool_checkout_seconds", "Checkout latency",
                                          FDN_TELEMETRY_HISTOGRAM, hl, 1, 0),
                     0);
    fdn_histogram_t *h = NULL;
    const char *pv[] = {"db"};
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, pv, 1), 0);
    for (int i = 1; i <= 1000; i++)
        fdn_histogram_observe(h, (double)i / 1000.0);
    const char *pv2[] = {"empty"};
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, pv2, 1), 0);
    assert_int_equal(fdn_telemetry_family(tm, &f, "queue_depth", "Queue depth",
                                          FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0),
                     0);
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, -12);
    assert_int_equal(fdn_telemetry_family(tm, &f, "queue_bytes", "Queue bytes",
                                          FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0),
                     0);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, INT64_MAX - 1); /* not representable as a double */
    /* a family registered without help text: promtool's lint fails on "no help text" */
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "workers_busy", NULL, FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, 3);

    /* events, reference catalogue style */
    fdn_telemetry_meta_t md = {"path", "dev.debug_mode"};
    fdn_telemetry_emit_counter(tm, "foundation.config_updates", &md, 1);
    fdn_telemetry_emit_counter_n(tm, "foundation.event_store.events_stored", 10, NULL, 0);
    fdn_telemetry_emit_gauge(tm, "foundation.operations.duration", 12.5, NULL, 0);
    fdn_telemetry_emit_gauge(tm, "vm.memory", 1, NULL, 0);
    fdn_telemetry_meta_t pm = {"pool_name", "db"};
    fdn_telemetry_execute(tm, "foundation.foundation.pool.started", NULL, 0, &pm, 1);
    fdn_telemetry_execute(tm, "foundation.foundation.pool.started", NULL, 0, &pm, 1);
    fdn_telemetry_measure_t d = {"duration", 1234567};
    fdn_telemetry_execute(tm, "foundation.foundation.registry.lookup", &d, 1, NULL, 0);
    fdn_telemetry_emit_histogram(tm, "app.payload-size", 512, NULL, 0);
    fdn_telemetry_emit_histogram(tm, "9lives.x", -3, NULL, 0);
    fdn_telemetry_measure_t odd = {"weird key!", 3};
    fdn_telemetry_execute(tm, "app.odd", &odd, 1, NULL, 0);
    /* collision: "x.y" gauge and "x_y" gauge both map to x_y */
    fdn_telemetry_emit_gauge(tm, "x.y", 1, NULL, 0);
    fdn_telemetry_emit_gauge(tm, "x_y", 2, NULL, 0);
    /* collision through a summary's own series: summary app_latency writes app_latency_count
     * and app_latency_sum, so gauges named so must be skipped (promtool: "second HELP line") */
    fdn_telemetry_emit_histogram(tm, "app.latency", 5, NULL, 0);
    fdn_telemetry_emit_gauge(tm, "app.latency.count", 7, NULL, 0);
    fdn_telemetry_emit_gauge(tm, "app.latency_sum", 8, NULL, 0);
    return tm;
}

static void exposition_passes_promtool(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = populate();
    static test_text_t m;
    m.len = 0;
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    fdn_telemetry_destroy(tm);
    if (test_promtool_check(m.buf, m.len) == 1) {
        fprintf(stderr, "SKIP: promtool not found (install Debian package 'prometheus', "
                        "scripts/deps.sh does)\n");
        skip();
    }
}

static void exposition_content(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = populate();
    static test_text_t m;
    m.len = 0;
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    const char *want[] = {
        "# TYPE http_requests_total counter\n",
        /* invalid byte replaced by U+FFFD, valid UTF-8 kept */
        "http_requests_total{method=\"GET\",path=\"/a\\\"quoted\\\"\xef\xbf\xbd\xc3\xa9\"} 1\n",
        "http_requests_total{method=\"GET\",path=\"/b\\\\back\\nline\"} 2\n",
        "http_requests_total{method=\"__overflow__\",path=\"__overflow__\"} 7\n",
        "# HELP http_requests_total HTTP requests\\nby \\\\ path\n",
        "fdn_telemetry_series_dropped_total{family=\"http_requests_total\"} 2\n",
        "# TYPE pool_checkout_seconds histogram\n",
        "pool_checkout_seconds_count{pool=\"db\"} 1000\n",
        /* cumulative and exact: 1..1000 ms, so 10 of them <= 0.01 s, 500 <= 0.5 s */
        "pool_checkout_seconds_bucket{pool=\"db\",le=\"0.01\"} 10\n",
        "pool_checkout_seconds_bucket{pool=\"db\",le=\"0.5\"} 500\n",
        "pool_checkout_seconds_bucket{pool=\"db\",le=\"1\"} 1000\n",
        "pool_checkout_seconds_bucket{pool=\"db\",le=\"+Inf\"} 1000\n",
        "pool_checkout_seconds_bucket{pool=\"empty\",le=\"+Inf\"} 0\n",
        "queue_depth -12\n",
        "queue_bytes 9223372036854775806\n",
        "fdn_config_updates_total 1\n",
        "fdn_event_store_events_stored_total 10\n",
        "fdn_operations_duration 12.5\n",
        "# TYPE fdn_registry_lookup_duration_seconds histogram\n",
        "fdn_registry_lookup_duration_seconds_sum 0.001234567\n",
        "fdn_registry_lookup_duration_seconds_bucket{le=\"0.0025\"} 1\n",
        /* an event without measurements is exported by its emission count */
        "fdn_pool_started_total 2\n",
        "process_open_fds ",
        "process_resident_memory_bytes ",
        "fdn_build_info{version=\"",
        "app_payload_size_count 1\n",
        "_9lives_x_sum -3\n",
        "app_odd_weird_key_",
        "# skipped duplicate metric name x_y\n",
        "app_latency_count 1\n",
        "# skipped duplicate metric name app_latency_count\n",
        "# skipped duplicate metric name app_latency_sum\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(m.buf, want[i]) == NULL)
            fail_msg("missing %s in:\n%s", want[i], m.buf);
    /* one family per measured thing: no emission count next to a counter, no summaries, no
     * vm.* names, one prefix for the library's own */
    const char *unwanted[] = {
        "fdn_event_store_events_stored_emissions_total", "_emissions_total", "quantile=",
        "# TYPE pool_checkout_seconds summary",          "vm_memory",        "\nfoundation_",
    };
    for (size_t i = 0; i < sizeof(unwanted) / sizeof(unwanted[0]); i++)
        if (strstr(m.buf, unwanted[i]) != NULL)
            fail_msg("unexpected %s in:\n%s", unwanted[i], m.buf);
    assert_int_equal(fdn_telemetry_write_prometheus(tm, failing_sink, NULL), FDN_EIO);
    assert_int_equal(fdn_telemetry_write_prometheus(tm, NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_write_prometheus(NULL, test_text_sink, &m), 0);
    fdn_telemetry_destroy(tm);
}

/* One of each metric type, pinned byte for byte. The families are named "a_*" so they sort
 * before the built-in fdn_* and process_* records, whose values vary. */
static fdn_telemetry_t *one_of_each(void)
{
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    const char *ln[] = {"route"};
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_requests_total", "Requests.",
                                          FDN_TELEMETRY_COUNTER, ln, 1, 0),
                     0);
    fdn_counter_t *c = NULL;
    const char *rv[] = {"/x/{id}"};
    assert_int_equal(fdn_telemetry_family_counter(f, &c, rv, 1), 0);
    fdn_counter_add(c, 3);
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_temperature_celsius", "Temperature.",
                                          FDN_TELEMETRY_GAUGE, NULL, 0, 0),
                     0);
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set_double(g, 21.5);
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_wait_seconds", "Wait.",
                                          FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
                     0);
    const double le[] = {0.001, 0.01, 0.1};
    assert_int_equal(fdn_telemetry_family_buckets(f, le, 3), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    fdn_histogram_observe(h, 0.0005);
    fdn_histogram_observe(h, 0.01); /* on a bound: counted in that bucket (le is <=) */
    fdn_histogram_observe(h, 0.5);  /* above every bound: only +Inf */
    return tm;
}

static void exposition_exact(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = one_of_each();
    static test_text_t m;
    m.len = 0;
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    static const char want[] = "# HELP a_requests_total Requests.\n"
                               "# TYPE a_requests_total counter\n"
                               "a_requests_total{route=\"/x/{id}\"} 3\n"
                               "# HELP a_temperature_celsius Temperature.\n"
                               "# TYPE a_temperature_celsius gauge\n"
                               "a_temperature_celsius 21.5\n"
                               "# HELP a_wait_seconds Wait.\n"
                               "# TYPE a_wait_seconds histogram\n"
                               "a_wait_seconds_bucket{le=\"0.001\"} 1\n"
                               "a_wait_seconds_bucket{le=\"0.01\"} 2\n"
                               "a_wait_seconds_bucket{le=\"0.1\"} 2\n"
                               "a_wait_seconds_bucket{le=\"+Inf\"} 3\n"
                               "a_wait_seconds_sum 0.5105\n"
                               "a_wait_seconds_count 3\n"
                               "# HELP fdn_build_info ";
    if (strncmp(m.buf, want, sizeof want - 1) != 0)
        fail_msg("exposition differs; got:\n%s", m.buf);

    /* OpenMetrics: the counter family is typed without _total, its samples keep it; the
     * text ends with # EOF */
    m.len = 0;
    assert_int_equal(fdn_telemetry_write_openmetrics(tm, test_text_sink, &m), 0);
    static const char want_om[] = "# HELP a_requests Requests.\n"
                                  "# TYPE a_requests counter\n"
                                  "a_requests_total{route=\"/x/{id}\"} 3\n"
                                  "# HELP a_temperature_celsius Temperature.\n";
    if (strncmp(m.buf, want_om, sizeof want_om - 1) != 0)
        fail_msg("openmetrics differs; got:\n%s", m.buf);
    assert_true(m.len > 6 && strcmp(m.buf + m.len - 6, "# EOF\n") == 0);
    assert_int_equal(fdn_telemetry_write_openmetrics(tm, failing_sink, NULL), FDN_EIO);
    fdn_telemetry_destroy(tm);
}

/* Exemplars: a bucket keeps the last observation made with a label (a correlation id), and
 * OpenMetrics writes it after the bucket's count; the 0.0.4 text never carries them; a bad
 * label name or value keeps no exemplar but still counts the value. */
static void exemplars_in_openmetrics(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_wait_seconds", "Wait.",
                                          FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
                     0);
    const double le[] = {0.001, 0.01, 0.1};
    assert_int_equal(fdn_telemetry_family_buckets(f, le, 3), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    fdn_histogram_observe_exemplar(h, 0.03, "correlation_id", "req-6");
    fdn_histogram_observe_exemplar(h, 0.05, "correlation_id", "req-7"); /* replaces req-6 */
    fdn_histogram_observe_exemplar(h, 2.0, "correlation_id", "req-\"8\"");
    fdn_histogram_observe_exemplar(h, 0.0005, "bad-name", "x");
    fdn_histogram_observe_exemplar(h, 0.0005, "__reserved", "x");
    char longv[FDN_TELEMETRY_EXEMPLAR_VALUE_MAX + 2];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    fdn_histogram_observe_exemplar(h, 0.0005, "correlation_id", longv);
    fdn_histogram_observe_exemplar(h, 0.0005, "correlation_id", "\xff\xfe");
    fdn_histogram_observe_exemplar(h, 0.0005, "correlation_id", NULL);
    fdn_histogram_observe_exemplar(NULL, 0.0005, "correlation_id", "x"); /* no-op */

    static test_text_t m;
    m.len = 0;
    assert_int_equal(fdn_telemetry_write_openmetrics(tm, test_text_sink, &m), 0);
    const char *b1 = strstr(m.buf, "a_wait_seconds_bucket{le=\"0.001\"} 5\n");
    if (b1 == NULL)
        fail_msg("bucket 0.001 without exemplar missing:\n%s", m.buf);
    const char *want = "a_wait_seconds_bucket{le=\"0.1\"} 7 # {correlation_id=\"req-7\"} 0.05 ";
    const char *b3 = strstr(m.buf, want);
    if (b3 == NULL)
        fail_msg("exemplar of bucket 0.1 missing:\n%s", m.buf);
    double ts = strtod(b3 + strlen(want), NULL);
    assert_true(ts > 1e9); /* seconds since the epoch */
    const char *inf =
        "a_wait_seconds_bucket{le=\"+Inf\"} 8 # {correlation_id=\"req-\\\"8\\\"\"} 2 ";
    if (strstr(m.buf, inf) == NULL)
        fail_msg("exemplar of bucket +Inf missing:\n%s", m.buf);
    assert_null(strstr(m.buf, "req-6"));
    assert_null(strstr(m.buf, "bad-name"));
    assert_null(strstr(m.buf, "vvvv"));
    assert_non_null(strstr(m.buf, "a_wait_seconds_count 8\n"));

    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    assert_non_null(strstr(m.buf, "a_wait_seconds_bucket{le=\"0.1\"} 7\n"));
    assert_null(strstr(m.buf, "correlation_id"));

    /* and the snapshot carries them (JSON API, other writers) */
    fdn_telemetry_snapshot_t *sn = NULL;
    assert_int_equal(fdn_telemetry_snapshot(tm, &sn), 0);
    size_t it = 0;
    const fdn_telemetry_sample_t *x;
    bool seen = false;
    while ((x = fdn_telemetry_snapshot_next(sn, &it)) != NULL) {
        if (x->is_event || strcmp(x->name, "a_wait_seconds") != 0)
            continue;
        seen = true;
        assert_int_equal(x->nbuckets, 3);
        assert_non_null(x->bucket_exemplar);
        assert_null(x->bucket_exemplar[0].label_name);
        assert_null(x->bucket_exemplar[1].label_name);
        assert_string_equal(x->bucket_exemplar[2].label_value, "req-7");
        assert_true(x->bucket_exemplar[2].value == 0.05);
        assert_string_equal(x->bucket_exemplar[3].label_name, "correlation_id");
    }
    assert_true(seen);
    fdn_telemetry_snapshot_free(sn);
    fdn_telemetry_destroy(tm);
}

/* A HELP text with a double quote: OpenMetrics escapes it (its ABNF: a HELP text is an
 * escaped-string, whose plain characters exclude '"'), the 0.0.4 text keeps it as it is
 * (only \\ and newline are escaped there). */
static void help_quote_escaped_in_openmetrics(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_jobs", "Jobs \"queued\" \\ now\nor later.",
                                          FDN_TELEMETRY_GAUGE, NULL, 0, 0),
                     0);
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, 2);
    static test_text_t m;
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_openmetrics(tm, test_text_sink, &m), 0);
    static const char want_om[] = "# HELP a_jobs Jobs \\\"queued\\\" \\\\ now\\nor later.\n"
                                  "# TYPE a_jobs gauge\n"
                                  "a_jobs 2\n";
    if (strncmp(m.buf, want_om, sizeof want_om - 1) != 0)
        fail_msg("openmetrics differs; want:\n%s\ngot:\n%s", want_om, m.buf);
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    static const char want[] = "# HELP a_jobs Jobs \"queued\" \\\\ now\\nor later.\n"
                               "# TYPE a_jobs gauge\n"
                               "a_jobs 2\n";
    if (strncmp(m.buf, want, sizeof want - 1) != 0)
        fail_msg("0.0.4 text differs; want:\n%s\ngot:\n%s", want, m.buf);
    fdn_telemetry_destroy(tm);
}

/* OpenMetrics names a counter family <F> and its samples <F>_total: a gauge (or any family
 * but a counter) named <F>_total would write the same sample name in a second family. The
 * first in sorted order is written (the counter), except that a family supersedes an event
 * entry, as it does in the 0.0.4 text, where the two have the same name. */
static void openmetrics_counter_sample_clash(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    /* two event entries: counter fdn_zz_total (OpenMetrics family fdn_zz), gauge fdn_zz_total */
    assert_int_equal(fdn_telemetry_emit_counter(tm, "foundation.zz", NULL, 0), 0);
    assert_int_equal(fdn_telemetry_emit_gauge(tm, "foundation.zz_total", 5, NULL, 0), 0);
    /* a gauge family and an event counter entry mapped to the same samples: the family wins */
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "a_hits_total", "Hits now.", FDN_TELEMETRY_GAUGE, NULL, 0, 0),
        0);
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    fdn_gauge_set(g, 9);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "a.hits", NULL, 0), 0);
    static test_text_t m;
    for (int k = 0; k < 2; k++) { /* the second scrape: from the cache */
        m.len = 0;
        m.buf[0] = '\0';
        assert_int_equal(fdn_telemetry_write_openmetrics(tm, test_text_sink, &m), 0);
        if (test_count_lines(m.buf, "fdn_zz_total ") != 1 ||
            test_count_lines(m.buf, "fdn_zz_total 1\n") != 1 ||
            test_count_lines(m.buf, "# TYPE fdn_zz_total ") != 0 ||
            test_count_lines(m.buf, "# TYPE fdn_zz counter\n") != 1)
            fail_msg("fdn_zz_total written twice or not as the counter:\n%s", m.buf);
        if (test_count_lines(m.buf, "a_hits_total ") != 1 ||
            test_count_lines(m.buf, "a_hits_total 9\n") != 1 ||
            test_count_lines(m.buf, "# TYPE a_hits_total gauge\n") != 1 ||
            test_count_lines(m.buf, "# TYPE a_hits ") != 0)
            fail_msg("a_hits_total written twice or not as the family:\n%s", m.buf);
    }
    /* the 0.0.4 text: one of each too */
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    assert_int_equal(test_count_lines(m.buf, "fdn_zz_total "), 1);
    assert_int_equal(test_count_lines(m.buf, "a_hits_total 9\n"), 1);
    assert_int_equal(test_count_lines(m.buf, "# TYPE a_hits_total gauge\n"), 1);
    fdn_telemetry_destroy(tm);
}

/* A label set of every value "__overflow__" asked for by name is the family's overflow
 * series: one series with those labels in the text, not two (the format requires each
 * name and label set once; Prometheus keeps one of two such samples). Asking for it is not
 * an overflow. */
static void overflow_labels_one_series(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    const char *ln[] = {"a"};
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "a_dup_total", "Dup.", FDN_TELEMETRY_COUNTER, ln, 1, 1), 0);
    const char *ov[] = {"__overflow__"}, *x[] = {"x"}, *y[] = {"y"};
    fdn_counter_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c1, ov, 1), 0);
    fdn_counter_add(c1, 1);
    assert_int_equal(fdn_telemetry_family_counter(f, &c2, x, 1), 0); /* the one series */
    fdn_counter_add(c2, 2);
    assert_int_equal(fdn_telemetry_family_counter(f, &c3, y, 1), 0); /* past the cap */
    fdn_counter_add(c3, 4);
    assert_ptr_equal(c1, c3);
    assert_int_equal(fdn_telemetry_family_overflows(f), 1);
    static test_text_t m;
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(fdn_telemetry_write_prometheus(tm, test_text_sink, &m), 0);
    if (test_count_lines(m.buf, "a_dup_total{a=\"__overflow__\"} ") != 1 ||
        test_count_lines(m.buf, "a_dup_total{a=\"__overflow__\"} 5\n") != 1 ||
        test_count_lines(m.buf, "a_dup_total{a=\"x\"} 2\n") != 1 ||
        test_count_lines(m.buf, "fdn_telemetry_series_dropped_total{family=\"a_dup_total\"} 1\n") !=
            1)
        fail_msg("a_dup_total's series:\n%s", m.buf);
    fdn_telemetry_destroy(tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overflow_labels_one_series),
        cmocka_unit_test(openmetrics_counter_sample_clash),
        cmocka_unit_test(help_quote_escaped_in_openmetrics),
        cmocka_unit_test(exposition_exact),
        cmocka_unit_test(exposition_content),
        cmocka_unit_test(exposition_passes_promtool),
        cmocka_unit_test(exemplars_in_openmetrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
