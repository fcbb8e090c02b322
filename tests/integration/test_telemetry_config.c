/* Integration test: the operator's histogram layouts and summaries (docs/telemetry.md,
 * "Configured layouts and summaries"): telemetry.buckets replaces a family's or an event
 * histogram's `le` bounds (also over the code's fdn_telemetry_family_buckets), refused with
 * nothing changed when bad or too late; telemetry.summaries adds a summary next to a named
 * histogram, only there, pinned byte for byte and accepted by `promtool check metrics`; the
 * config schema refuses bad values with the member and the reason; a runtime applies both
 * from its config at start, and refuses to start on a bad value; fdn_build_info carries the
 * build's labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/config.h>
#include <fdn/error.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "exposition.h"
#include "services/telemetry_int.h"

static test_text_t m;

static void expose(fdn_telemetry_t *tm, bool om)
{
    m.len = 0;
    m.buf[0] = '\0';
    assert_int_equal(om ? fdn_telemetry_write_openmetrics(tm, test_text_sink, &m)
                        : fdn_telemetry_write_prometheus(tm, test_text_sink, &m),
                     0);
}

static void want(const char *s)
{
    if (strstr(m.buf, s) == NULL) {
        fputs(m.buf, stderr); /* fail_msg cuts long messages */
        fail_msg("missing %s in the exposition above", s);
    }
}

static void unwanted(const char *s)
{
    if (strstr(m.buf, s) != NULL) {
        fputs(m.buf, stderr);
        fail_msg("unexpected %s in the exposition above", s);
    }
}

static fdn_histogram_t *hist(fdn_telemetry_t *tm, const char *name, fdn_telemetry_family_t **fo)
{
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, name, "Wait.", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    if (fo != NULL)
        *fo = f;
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    return h;
}

/* A configured layout replaces the default and the code's own; a family with series already,
 * bad bounds or a bad name are refused and nothing changes. */
static void configured_buckets(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    const double le[] = {0.005, 0.05, 0.5};
    assert_int_equal(fdn__tm_configure_buckets(tm, "a_wait_seconds", le, 3), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "a_wait_seconds", "Wait.",
                                          FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0),
                     0);
    /* the code's layout call is left without effect (and without error) */
    const double code_le[] = {1, 2};
    assert_int_equal(fdn_telemetry_family_buckets(f, code_le, 2), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    fdn_histogram_observe(h, 0.01);
    fdn_histogram_observe(h, 0.7);
    fdn_histogram_t *other = hist(tm, "b_wait_seconds", NULL); /* not configured: defaults */
    fdn_histogram_observe(other, 0.01);
    expose(tm, false);
    want("a_wait_seconds_bucket{le=\"0.005\"} 0\n"
         "a_wait_seconds_bucket{le=\"0.05\"} 1\n"
         "a_wait_seconds_bucket{le=\"0.5\"} 1\n"
         "a_wait_seconds_bucket{le=\"+Inf\"} 2\n");
    unwanted("a_wait_seconds_bucket{le=\"1\"}");
    want("b_wait_seconds_bucket{le=\"1e-05\"} 0\n");
    want("b_wait_seconds_bucket{le=\"10\"} 1\n");

    /* too late: the family has a series; bad bounds; bad names: nothing changes */
    const double late[] = {1, 2, 3};
    assert_int_equal(fdn__tm_configure_buckets(tm, "b_wait_seconds", late, 3), FDN_EBUSY);
    const double down[] = {0.1, 0.01};
    const double neg[] = {-1, 1};
    const double zero[] = {0, 1};
    double many[FDN_TELEMETRY_MAX_BUCKETS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = (double)(i + 1);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c_seconds", down, 2), FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c_seconds", neg, 2), FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c_seconds", zero, 2), FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c_seconds", many, sizeof many / sizeof *many),
                     FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c_seconds", le, 0), FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_buckets(tm, "c-seconds", le, 3), FDN_EINVAL);
    assert_int_equal(fdn__tm_configure_summary(tm, "9c"), FDN_EINVAL);
    expose(tm, false);
    want("b_wait_seconds_bucket{le=\"1e-05\"} 0\n");
    unwanted("b_wait_seconds_bucket{le=\"3\"}");
    hist(tm, "c_seconds", NULL);
    expose(tm, false);
    want("c_seconds_bucket{le=\"1e-05\"} 0\n"); /* the refused layouts left no trace */
    /* a family of another kind */
    fdn_telemetry_family_t *g = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &g, "d_gauge", "G.", FDN_TELEMETRY_GAUGE, NULL, 0, 0),
                     0);
    assert_int_equal(fdn__tm_configure_buckets(tm, "d_gauge", le, 3), FDN_EINVAL);
    /* a family registered already but without series takes it */
    fdn_telemetry_family_t *e = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &e, "e_seconds", "E.", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn__tm_configure_buckets(tm, "e_seconds", le, 3), 0);
    fdn_histogram_t *eh = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(e, &eh, NULL, 0), 0);
    expose(tm, false);
    want("e_seconds_bucket{le=\"0.05\"} 0\n");
    (void)test_promtool_check(m.buf, m.len);
    fdn_telemetry_destroy(tm);
    assert_int_equal(fdn__tm_configure_buckets(NULL, "x", le, 3), 0);
}

/* An event histogram takes the layout of the name it is exported under (a time key: in ns
 * inside, seconds outside). */
static void configured_event_buckets(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    const double le[] = {0.001, 0.004, 0.1};
    assert_int_equal(fdn__tm_configure_buckets(tm, "fdn_x_op_duration_seconds", le, 3), 0);
    const double sz[] = {10, 100};
    assert_int_equal(fdn__tm_configure_buckets(tm, "app_payload_size", sz, 2), 0);
    fdn_telemetry_measure_t d = {"duration", 4e6}; /* 4 ms, on a bound */
    assert_int_equal(fdn_telemetry_execute(tm, "foundation.x.op", &d, 1, NULL, 0), 0);
    fdn_telemetry_measure_t s = {"size", 50};
    assert_int_equal(fdn_telemetry_execute(tm, "app.payload", &s, 1, NULL, 0), 0);
    fdn_telemetry_measure_t y = {"duration", 4e6}; /* another event: default layout */
    assert_int_equal(fdn_telemetry_execute(tm, "foundation.y.op", &y, 1, NULL, 0), 0);
    expose(tm, false);
    want("fdn_x_op_duration_seconds_bucket{le=\"0.001\"} 0\n"
         "fdn_x_op_duration_seconds_bucket{le=\"0.004\"} 1\n"
         "fdn_x_op_duration_seconds_bucket{le=\"0.1\"} 1\n"
         "fdn_x_op_duration_seconds_bucket{le=\"+Inf\"} 1\n"
         "fdn_x_op_duration_seconds_sum 0.004\n");
    want("app_payload_size_bucket{le=\"10\"} 0\n"
         "app_payload_size_bucket{le=\"100\"} 1\n"
         "app_payload_size_bucket{le=\"+Inf\"} 1\n");
    want("fdn_y_op_duration_seconds_bucket{le=\"0.0025\"} 0\n");
    (void)test_promtool_check(m.buf, m.len);
    fdn_telemetry_destroy(tm);
}

/* A summary only for the histograms named, next to them, byte for byte; NaN while empty. */
static void configured_summaries(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    expose(tm, false);
    unwanted("summary");
    assert_int_equal(fdn__tm_configure_summary(tm, "a_wait_seconds"), 0);
    assert_int_equal(fdn__tm_configure_summary(tm, "a_wait_seconds"), 0); /* idempotent */
    assert_int_equal(fdn__tm_configure_summary(tm, "fdn_x_op_duration_seconds"), 0);
    assert_int_equal(fdn__tm_configure_summary(tm, "never_registered_seconds"), 0);
    fdn_histogram_t *h = hist(tm, "a_wait_seconds", NULL);
    for (int i = 0; i < 4; i++)
        fdn_histogram_observe(h, 0.25); /* one value: every quantile is exact */
    fdn_histogram_t *b = hist(tm, "b_wait_seconds", NULL);
    fdn_histogram_observe(b, 0.25);
    expose(tm, false);
    static const char want_text[] =
        "# HELP a_wait_quantiles_seconds Wait. (quantiles since start)\n"
        "# TYPE a_wait_quantiles_seconds summary\n"
        "a_wait_quantiles_seconds{quantile=\"0.5\"} 0.25\n"
        "a_wait_quantiles_seconds{quantile=\"0.9\"} 0.25\n"
        "a_wait_quantiles_seconds{quantile=\"0.99\"} 0.25\n"
        "a_wait_quantiles_seconds{quantile=\"0.999\"} 0.25\n"
        "a_wait_quantiles_seconds_sum 1\n"
        "a_wait_quantiles_seconds_count 4\n"
        "# HELP a_wait_seconds Wait.\n"
        "# TYPE a_wait_seconds histogram\n";
    if (strncmp(m.buf, want_text, sizeof want_text - 1) != 0)
        fail_msg("summary differs; got:\n%s", m.buf);
    want("a_wait_seconds_count 4\n"); /* the histogram is still there */
    unwanted("b_wait_quantiles_seconds");
    unwanted("never_registered");
    unwanted("fdn_x_op_duration_quantiles_seconds"); /* no such event yet */
    (void)test_promtool_check(m.buf, m.len);

    /* an event histogram (seconds out of ns), a labelled family, an empty series */
    fdn_telemetry_measure_t d = {"duration", 2e6};
    assert_int_equal(fdn_telemetry_execute(tm, "foundation.x.op", &d, 1, NULL, 0), 0);
    assert_int_equal(fdn__tm_configure_summary(tm, "c_seconds"), 0);
    fdn_telemetry_family_t *f = NULL;
    const char *ln[] = {"route"};
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "c_seconds", "C.", FDN_TELEMETRY_HISTOGRAM, ln, 1, 0), 0);
    const char *v[] = {"/a"};
    fdn_histogram_t *c = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(f, &c, v, 1), 0);
    expose(tm, false);
    want("# TYPE fdn_x_op_duration_quantiles_seconds summary\n"
         "fdn_x_op_duration_quantiles_seconds{quantile=\"0.5\"} 0.002\n");
    want("fdn_x_op_duration_quantiles_seconds_sum 0.002\n"
         "fdn_x_op_duration_quantiles_seconds_count 1\n");
    want("c_quantiles_seconds{route=\"/a\",quantile=\"0.5\"} NaN\n");
    want("c_quantiles_seconds_count{route=\"/a\"} 0\n");
    (void)test_promtool_check(m.buf, m.len);
    /* OpenMetrics: the same summary */
    expose(tm, true);
    want("# TYPE a_wait_quantiles_seconds summary\n"
         "a_wait_quantiles_seconds{quantile=\"0.5\"} 0.25\n");
    fdn_telemetry_destroy(tm);
}

/* fdn_build_info: version, revision, build type, compiler and its version. */
static void build_info_labels(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    expose(tm, false);
    const char *l = strstr(m.buf, "\nfdn_build_info{");
    assert_non_null(l);
    char line[512];
    size_t n = strcspn(l + 1, "\n");
    assert_true(n < sizeof line);
    memcpy(line, l + 1, n);
    line[n] = '\0';
    char ver[64];
    snprintf(ver, sizeof ver, "fdn_build_info{version=\"%s\",revision=\"", fdn_version());
    if (strncmp(line, ver, strlen(ver)) != 0)
        fail_msg("%s", line);
    static const char *const labels[] = {"\",build_type=\"", "\",compiler=\"", "\",cc_version=\""};
    const char *p = line + strlen(ver);
    for (size_t i = 0; i < 3; i++) {
        const char *q = strstr(p, labels[i]);
        if (q == NULL || q == p) /* present, in order, the value before it not empty */
            fail_msg("%s: no %s or an empty value before it", line, labels[i]);
        p = q + strlen(labels[i]);
    }
    assert_true(strlen(p) > 4 && p[0] != '"' && strcmp(p + strlen(p) - 4, "\"} 1") == 0);
    (void)test_promtool_check(m.buf, m.len);
    fdn_telemetry_destroy(tm);
}

/* The schema: bad values refused with the member and the reason; good ones pass
 * (fdn_config_check_json: a file's check, absent keys keep their defaults). */
typedef struct problem {
    int n;
    int code;
    char path[128];
    char message[400];
} problem_t;

static void on_problem(const char *path, const char *message, int code, void *user)
{
    problem_t *p = user;
    if (p->n++ == 0) {
        p->code = code;
        snprintf(p->path, sizeof p->path, "%s", path);
        snprintf(p->message, sizeof p->message, "%s", message);
    }
}

static void expect_refused(const char *json, int code, const char *path, const char *message)
{
    problem_t p = {0};
    assert_int_equal(fdn_config_check_json(json, strlen(json), on_problem, &p), code);
    if (p.n != 1 || p.code != code || strcmp(p.path, path) != 0 ||
        strncmp(p.message, message, strlen(message)) != 0)
        fail_msg("%s: %d problems, first %d %s '%s'; want %d %s '%s...'", json, p.n, p.code, p.path,
                 p.message, code, path, message);
}

static void schema_rules(void **state)
{
    (void)state;
    static const char ok[] =
        "{\"telemetry\":{\"buckets\":{\"fdn_http_request_duration_seconds\":[0.001,0.01,0.1,1],"
        "\"app_size\":[1,10,100]},\"summaries\":[\"fdn_http_request_duration_seconds\"]}}";
    problem_t p = {0};
    assert_int_equal(fdn_config_check_json(ok, strlen(ok), on_problem, &p), 0);
    assert_int_equal(p.n, 0);
    const int S = FDN_ECONFIG_STRUCTURE;
    const char *B = "telemetry.buckets", *Q = "telemetry.summaries";
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[0.1,0.01]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: the bounds are not strictly "
                   "increasing (rule: an object of at most 64 histogram names");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[0.1,0.1]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: the bounds are not strictly");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[-1,1]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: a bound is not > 0");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[0,1]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: a bound is not > 0");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[1e-12,1]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: a bound of a _seconds family is "
                   "below 1e-9");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: the bounds must be an array of 1 to "
                   "32");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":0.1}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: the bounds must be an array");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[\"0.1\"]}}}", S, B,
                   "Invalid histogram buckets: fdn_a_seconds: a bound is not a number");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_a_seconds\":[1,2,3,4,5,6,7,8,9,10,11,"
                   "12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]}}}",
                   S, B, "Invalid histogram buckets: fdn_a_seconds: the bounds must be an array");
    expect_refused("{\"telemetry\":{\"buckets\":{\"a-b\":[1]}}}", S, B,
                   "Invalid histogram buckets: a-b: not a metric name");
    expect_refused("{\"telemetry\":{\"buckets\":{\"fdn_etcd_request_duration_seconds\":[1]}}}", S,
                   B,
                   "Invalid histogram buckets: fdn_etcd_request_duration_seconds: its buckets are "
                   "fixed by the backend");
    expect_refused("{\"telemetry\":{\"buckets\":[1]}}", FDN_ECONFIG_INVALID, B,
                   "expected object, got array");
    expect_refused("{\"telemetry\":{\"summaries\":[\"a\",\"a\"]}}", S, Q,
                   "Invalid summary: a: named twice");
    expect_refused("{\"telemetry\":{\"summaries\":[1]}}", S, Q,
                   "Invalid summary: (not a string): an element is not a histogram name");
    expect_refused("{\"telemetry\":{\"summaries\":\"a\"}}", S, Q,
                   "Invalid summary: (not an array)");
    expect_refused("{\"telemetry\":{\"summaries\":[\"fdn_rate_limiter_backend_request_"
                   "duration_seconds\"]}}",
                   S, Q,
                   "Invalid summary: fdn_rate_limiter_backend_request_duration_seconds: its "
                   "buckets are fixed");
    expect_refused("{\"telemetry\":{\"nope\":1}}", S, "telemetry.nope",
                   "unknown configuration key");
}

/* A runtime applies both from its config at start; a bad value stops create. */
static void runtime_applies_config(void **state)
{
    (void)state;
    static const char *const env[] = {
        "FDN_TELEMETRY__BUCKETS={\"fdn_protected_call_duration_seconds\":[0.5,5],"
        "\"fdn_x_op_duration_seconds\":[0.002,0.2]}",
        "FDN_TELEMETRY__SUMMARIES=[\"fdn_protected_call_duration_seconds\"]", NULL};
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.name = "telemetry-config";
    o.envp = env;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_runtime_create(&rt, &o, &err) != 0)
        fail_msg("create: %s (%s)", err.message, err.context);
    fdn_telemetry_t *tm = fdn_runtime_telemetry(rt);
    /* as fdn_execute_protected emits it: the runtime's handler observes it into the family */
    fdn_telemetry_measure_t pd = {"duration_ns", 1e6};
    fdn_telemetry_meta_t meta[] = {{"protection_key", "k"}, {"result", "ok"}};
    assert_int_equal(
        fdn_telemetry_execute(tm, "foundation.infrastructure.execute_stop", &pd, 1, meta, 2), 0);
    fdn_telemetry_measure_t d = {"duration", 1e6};
    assert_int_equal(fdn_telemetry_execute(tm, "foundation.x.op", &d, 1, NULL, 0), 0);
    expose(tm, false);
    want("fdn_protected_call_duration_seconds_bucket{key=\"k\",outcome=\"ok\",le=\"0.5\"} 1\n"
         "fdn_protected_call_duration_seconds_bucket{key=\"k\",outcome=\"ok\",le=\"5\"} 1\n"
         "fdn_protected_call_duration_seconds_bucket{key=\"k\",outcome=\"ok\",le=\"+Inf\"} 1\n");
    want("# TYPE fdn_protected_call_duration_quantiles_seconds summary\n");
    want("fdn_protected_call_duration_quantiles_seconds{key=\"k\",outcome=\"ok\",quantile="
         "\"0.99\"} 0.001\n");
    want("fdn_x_op_duration_seconds_bucket{le=\"0.002\"} 1\n");
    /* the other latency histograms keep their layouts and have no summary */
    unwanted("fdn_x_op_duration_quantiles_seconds");
    (void)test_promtool_check(m.buf, m.len);
    /* not updatable at run time */
    assert_int_equal(
        fdn_config_update_json(fdn_runtime_config(rt), "telemetry.summaries", "[]", &err),
        FDN_ECONFIG_FORBIDDEN);
    fdn_runtime_destroy(rt);

    static const char *const bad[] = {
        "FDN_TELEMETRY__BUCKETS={\"fdn_protected_call_duration_seconds\":[5,0.5]}", NULL};
    o.envp = bad;
    err = (fdn_error_t)FDN_ERROR_INIT;
    rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &o, &err), FDN_ECONFIG_STRUCTURE);
    assert_null(rt);
    assert_string_equal(err.message, "environment variable FDN_TELEMETRY__BUCKETS: "
                                     "telemetry.buckets: Invalid histogram buckets: "
                                     "fdn_protected_call_duration_seconds: the bounds are not "
                                     "strictly increasing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(configured_buckets),   cmocka_unit_test(configured_event_buckets),
        cmocka_unit_test(configured_summaries), cmocka_unit_test(build_info_labels),
        cmocka_unit_test(schema_rules),         cmocka_unit_test(runtime_applies_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
