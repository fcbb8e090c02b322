/* Numbers of the exposition (telemetry_numfmt.c): fdn__tm_fmt_short_g, which decides each
 * "%.Pg" and its round trip by integer arithmetic, writes the same text as the definition
 * by snprintf and strtod (the first of "%.15g", "%.16g", "%.17g" that reads back; for
 * subnormals the fewest digits that do), on doubles of every kind: random bits, short
 * decimals, running sums of observations, powers of two and ten and their neighbours, ties.
 * FDN_NUMFMT_ITERS sets the doubles per kind (default 100000). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/telemetry_expo_int.h"

static size_t iters(void)
{
    const char *s = getenv("FDN_NUMFMT_ITERS");
    if (s == NULL || *s == '\0')
        return 100000;
    char *end = NULL;
    unsigned long long n = strtoull(s, &end, 10);
    return end != NULL && *end == '\0' && n > 0 ? (size_t)n : 100000;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void) /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static size_t checked;

static void check(double v)
{
    if (!isfinite(v) || (v == nearbyint(v) && fabs(v) < 1e15))
        return; /* fdn__tm_fmt_short writes those itself */
    char want[40], got[40];
    size_t wn = fdn__tm_fmt_short_g_libc(want, v); /* the definition, in libc */
    assert_true(strtod(want, NULL) == v);          /* which reads back */
    memset(got, 'x', sizeof got);
    size_t gn = fdn__tm_fmt_short_g(got, v);
    if (gn != wn || strcmp(got, want) != 0) {
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        print_error("double 0x%016" PRIx64 ": got \"%s\" (%zu), want \"%s\" (%zu)\n", bits, got, gn,
                    want, wn);
    }
    assert_string_equal(got, want);
    assert_int_equal(gn, wn);
    checked++;
    /* and through the memo of fdn__tm_fmt_short, twice (miss, then hit) */
    for (int k = 0; k < 2; k++) {
        size_t sn = fdn__tm_fmt_short(got, v);
        assert_string_equal(got, want);
        assert_int_equal(sn, wn);
    }
}

static void check_both(double v)
{
    check(v);
    check(-v);
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void random_bits(void **state)
{
    (void)state;
    for (size_t i = 0, n = iters(); i < n; i++)
        check(from_bits(next()));
}

/* the range metrics live in: a 53-bit significand times 2^-100 .. 2^70 */
static void random_typical(void **state)
{
    (void)state;
    for (size_t i = 0, n = iters(); i < n; i++) {
        uint64_t m = next() >> 11;
        int e = (int)(next() % 171) - 100;
        check_both(ldexp((double)m, e - 52));
    }
}

/* short decimals: whole nanoseconds in seconds, microseconds, values with few digits */
static void short_decimals(void **state)
{
    (void)state;
    static const double div[] = {1e9, 1e6, 1e3, 100, 10, 1e12, 1e15};
    for (size_t i = 0, n = iters(); i < n; i++) {
        uint64_t k = next() % UINT64_C(1000000000000000);
        uint64_t digits = next() % 16; /* keep 1..16 digits of k */
        uint64_t p = 1;
        for (uint64_t d = 0; d < digits; d++)
            p *= 10;
        check_both((double)(k % (p * 10 + 1)) / div[i % (sizeof div / sizeof div[0])]);
    }
}

/* the _sum of a histogram: a running sum of observations in seconds */
static void running_sums(void **state)
{
    (void)state;
    double sum = 0, sum_ns = 0;
    for (size_t i = 0, n = iters(); i < n; i++) {
        double obs = (double)(next() % 100000000u) * 1e-9; /* up to 0.1 s */
        sum += obs;
        sum_ns += (double)(next() % 100000000u);
        check(sum);
        check(sum_ns / 1e9);
        if (i % 4096 == 0)
            sum = sum_ns = 0;
    }
}

/* v and its three neighbours on each side, both signs */
static void check_around(double v)
{
    double lo = v, hi = v;
    check_both(v);
    for (int k = 0; k < 3; k++) {
        lo = nextafter(lo, 0);
        hi = nextafter(hi, INFINITY);
        check_both(lo);
        check_both(hi);
    }
}

/* powers of two (asymmetric rounding intervals), powers of ten, and their neighbours */
static void powers_and_neighbours(void **state)
{
    (void)state;
    for (int e = -1074; e <= 1023; e++) {
        double v = ldexp(1.0, e);
        check_around(v);
    }
    for (int e = -323; e <= 308; e++) {
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        double v = strtod(s, NULL);
        check_around(v);
        for (int d = 1; d < 10; d++) /* d.5 x 10^e and its 17-digit neighbours */
            check_both((d + 0.5) * v);
    }
}

/* decimals whose exact value ends in 5 at the 16th or 17th digit: ties for printf */
static void ties(void **state)
{
    (void)state;
    for (size_t i = 0, n = iters(); i < n; i++) {
        uint64_t m = next() >> 12; /* < 2^52 */
        check_both((double)m + 0.5);
        check_both((double)(m >> 1) + 0.25);
        check_both(ldexp((double)(m | 1), -(int)(next() % 60)));
    }
    assert_true(checked > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_bits),           cmocka_unit_test(random_typical),
        cmocka_unit_test(short_decimals),        cmocka_unit_test(running_sums),
        cmocka_unit_test(powers_and_neighbours), cmocka_unit_test(ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
