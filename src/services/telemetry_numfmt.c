/*
 * DESIGN: numbers as the Prometheus and OpenMetrics writers write them (telemetry_expo_int.h):
 * whole numbers below 1e15 without an exponent, others in the shortest "%g" form that reads
 * back as the same double. Pure functions; the only state is a per-thread memo of recent
 * results (no locks).
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/telemetry.h>

#include "services/telemetry_expo_int.h"

/* v in [1e-4, 1e6) with at most 9 decimals (a CPU time in microseconds, a sum of whole
 * nanoseconds in seconds): its text by integer arithmetic, into t (40 bytes), when that text
 * reads back as v; 0 otherwise. Such a text has at most 15 significant digits, so reading
 * back makes it the shortest (fmt_short_g), and "%g" writes it the same way (no exponent in
 * that range, trailing zeros dropped). */
static size_t fmt_decimal(char *t, double v)
{
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e6))
        return 0;
    uint64_t q = (uint64_t)llround(a * 1e9);
    uint64_t ip = q / 1000000000u, fp = q % 1000000000u;
    if (fp == 0)
        return 0;
    char *p = t;
    if (v < 0)
        *p++ = '-';
    char d[24];
    char *s = u64_digits(d + sizeof d, ip);
    size_t n = (size_t)(d + sizeof d - s);
    memcpy(p, s, n);
    p += n;
    *p++ = '.';
    char f[9];
    for (int i = 8; i >= 0; i--) {
        f[i] = (char)('0' + fp % 10);
        fp /= 10;
    }
    size_t k = 9;
    while (f[k - 1] == '0')
        k--;
    memcpy(p, f, k);
    p += k;
    *p = '\0';
    return strtod(t, NULL) == v ? (size_t)(p - t) : 0;
}

/* The shortest "%.*g" form of a finite v that is not whole (or >= 1e15) that reads back as the
 * same double, into t (40 bytes); returns its length. Whether a precision reads back is
 * monotonic in it (the nearest p+1-digit decimal is at least as near as the nearest p-digit
 * one) except at powers of two, whose rounding interval is narrower below (2^966 reads back
 * at 13 digits, not at 16): so the order of the tries matters, and this one gives the text the
 * former binary search over 1..17 gave on 5.9 M doubles, powers of two included (16 digits
 * tried first would not). For a normal double, "%.15g" reading back is already the shortest
 * form: its last significant digit is within half a unit of the 15th of v, and any decimal
 * with fewer digits than it shows differs from it by a unit of its last digit, far beyond
 * v's rounding interval (2^-53 relative), so "%.*g" at that digit count prints the same
 * text. So: the
 * first of 15, 16, 17 digits that reads back (one to three tries; scrapes format histogram
 * sums and the CPU time anew each time), after fmt_decimal (one strtod) for the values that
 * are short decimals. Subnormals have fewer digits of precision: a binary search over 1..17
 * there. */
static size_t fmt_short_g(char *t, double v)
{
    size_t dn = fmt_decimal(t, v);
    if (dn > 0)
        return dn;
    if (fabs(v) >= DBL_MIN) {
        for (int p = 15; p < 17; p++) {
            int n = snprintf(t, 40, "%.*g", p, v);
            if (strtod(t, NULL) == v)
                return (size_t)n;
        }
        return (size_t)snprintf(t, 40, "%.17g", v); /* 17 always reads back */
    }
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        (void)snprintf(t, 40, "%.*g", mid, v);
        if (strtod(t, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (size_t)snprintf(t, 40, "%.*g", lo, v);
}

/* Per-thread memo of fmt_short_g: each try is an snprintf + strtod pair, and a
 * scrape formats the same few bucket bounds for every series of a histogram family. */
#define SHORT_MEMO 64
static _Thread_local struct {
    uint64_t bits;
    unsigned char len; /* 0: empty */
    char t[31];
} short_memo[SHORT_MEMO];

/* A bound or value in the shortest form that reads back as the same double, into t (40
 * bytes); returns its length. Whole numbers below 1e15 are written without an exponent
 * ("10", as "%.0f" did); the others as the shortest round-tripping "%g". */
size_t fdn__tm_fmt_short(char *t, double v)
{
    if (v == nearbyint(v) && fabs(v) < 1e15) {
        if (v == 0) {
            size_t k = 0;
            if (signbit(v))
                t[k++] = '-';
            t[k++] = '0';
            t[k] = '\0';
            return k;
        }
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char d[24];
        char *p = u64_digits(d + sizeof d, u);
        size_t n = (size_t)(d + sizeof d - p);
        size_t k = 0;
        if (i < 0)
            t[k++] = '-';
        memcpy(t + k, p, n);
        t[k + n] = '\0';
        return k + n;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    size_t slot = (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 58); /* 6 bits: SHORT_MEMO */
    if (short_memo[slot].len != 0 && short_memo[slot].bits == bits) {
        memcpy(t, short_memo[slot].t, short_memo[slot].len + 1u);
        return short_memo[slot].len;
    }
    size_t n = fmt_short_g(t, v);
    if (n > 0 && n < sizeof short_memo[slot].t) {
        short_memo[slot].bits = bits;
        short_memo[slot].len = (unsigned char)n;
        memcpy(short_memo[slot].t, t, n + 1);
    }
    return n;
}
