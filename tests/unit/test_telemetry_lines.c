/* Lines of the exposition (telemetry_expo_lines.c): a histogram written from its kept line
 * prefixes (tm_hist_pre_t) is byte for byte the text written without them, in both formats,
 * with and without labels, bounds and exemplars; the prefixes follow a change of bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "services/telemetry_expo_int.h"

static char *lines(const char *name, const fdn__buf_t *lab, const fdn_telemetry_sample_t *x,
                   bool om, tm_hist_pre_t **pre)
{
    fdn__buf_t b = FDN__BUF_INIT;
    fdn__tm_sample_lines(&b, name, lab, x, om, pre);
    assert_false(b.oom);
    assert_non_null(b.p);
    return b.p;
}

static void same_with_prefixes(const char *name, const fdn__buf_t *lab,
                               const fdn_telemetry_sample_t *x, tm_hist_pre_t **pre)
{
    for (int om = 0; om < 2; om++) {
        char *plain = lines(name, lab, x, om != 0, NULL);
        for (int k = 0; k < 2; k++) { /* make the prefixes, then reuse them */
            char *fast = lines(name, lab, x, om != 0, pre);
            assert_non_null(*pre);
            assert_string_equal(fast, plain);
            fdn__free(fast);
        }
        fdn__free(plain);
    }
}

static void histogram_from_prefixes(void **state)
{
    (void)state;
    const char *names[] = {"route", "method"};
    const char *values[] = {"/metrics", "G\"E\\T\n"};
    double le[] = {0.005, 0.01, 0.025, 0.1, 1, 2.5, 10, INFINITY};
    double le2[] = {1e-9, 0.3, 7};
    uint64_t cum[] = {1, 2, 2, 5, 9, 9, 12, 12};
    fdn_telemetry_exemplar_t ex[9];
    memset(ex, 0, sizeof ex);
    ex[1].label_name = "trace_id";
    ex[1].label_value = "abc";
    ex[1].value = 0.0071;
    ex[1].timestamp_s = 1700000000.123;
    ex[8].label_name = "trace_id";
    ex[8].label_value = "z\"";
    ex[8].value = 12.5;
    ex[8].timestamp_s = 1.5;

    for (size_t nl = 0; nl <= 2; nl++) {
        fdn_telemetry_sample_t x;
        memset(&x, 0, sizeof x);
        x.kind = FDN_TELEMETRY_HISTOGRAM;
        x.nlabels = nl;
        x.label_names = names;
        x.label_values = values;
        fdn__buf_t lab = FDN__BUF_INIT;
        fdn__tm_label_text(&lab, &x);
        x.hist.count = 12;
        x.hist.sum = 17.123456789012345;
        x.hist_div = 1.0;
        tm_hist_pre_t *pre = NULL;

        x.nbuckets = 0; /* only +Inf, _sum, _count */
        same_with_prefixes("h_seconds", &lab, &x, &pre);

        x.nbuckets = 8;
        x.bucket_le = le;
        x.bucket_le_count = cum;
        same_with_prefixes("h_seconds", &lab, &x, &pre);
        x.bucket_exemplar = ex;
        x.hist.sum = 1e300;
        same_with_prefixes("h_seconds", &lab, &x, &pre);

        x.nbuckets = 3; /* other bounds: prefixes made again */
        x.bucket_le = le2;
        x.hist_div = 1e9;
        x.hist.sum = 123456789;
        same_with_prefixes("h_seconds", &lab, &x, &pre);

        fdn__tm_hist_pre_free(pre);
        fdn__free(lab.p);
    }
    fdn__tm_hist_pre_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(histogram_from_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
