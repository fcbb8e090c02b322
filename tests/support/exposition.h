/* Helpers for the tests of the Prometheus exposition (tests/integration/test_prometheus.c,
 * test_runtime_metrics.c): a text buffer that the telemetry writers fill through
 * test_text_sink, and `promtool check metrics` run on a text. */
#ifndef FDN_TEST_EXPOSITION_H
#define FDN_TEST_EXPOSITION_H

#include <stddef.h>

/* Large: make it static. The text stays NUL-terminated. */
typedef struct test_text {
    char buf[1 << 18];
    size_t len;
} test_text_t;

/* A sink for fdn_telemetry_write_prometheus and _openmetrics: appends to the test_text_t
 * user; FDN_ENOBUFS when it is full. */
int test_text_sink(const char *data, size_t len, void *user);

/* The lines of text that start with prefix. */
size_t test_count_lines(const char *text, const char *prefix);

/* Runs `promtool check metrics` on text[0..len). Returns 1 when promtool is not installed
 * (the caller skips or passes over the check), 0 when it accepts the text; fails the test with
 * promtool's output and the text when it rejects it. */
int test_promtool_check(const char *text, size_t len);

#endif
