/*
 * DESIGN: numbers as the Prometheus and OpenMetrics writers write them (telemetry_expo_int.h):
 * whole numbers below 1e15 without an exponent, others in the shortest "%g" form that reads
 * back as the same double: the first of "%.15g", "%.16g", "%.17g" that does (subnormals: the
 * fewest digits). That text is made without snprintf or strtod (fdn__tm_fmt_short_g): the
 * nearest P-digit decimal and whether it lies in the double's rounding interval are decided
 * exactly in 128-bit integers (a = m 2^e scaled by 10^k), which covers about 1e-7 .. 1e21 at
 * 17 digits; outside that, and for subnormals, the former snprintf/strtod path (kept as
 * fdn__tm_fmt_short_g_libc) writes the same text. tests/unit/test_telemetry_numfmt.c holds both to
 * the snprintf/strtod definition on millions of doubles (random bits, metric ranges, short
 * decimals, running sums, powers of two and ten and their neighbours, ties).
 * Pure functions; the only state is a per-thread memo of recent results (no locks).
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
size_t fdn__tm_fmt_short_g_libc(char *t, double v)
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

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[20] = {1u,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};

/* 10^k (0 <= k <= 38) into *out; false when it does not fit. */
static bool pow10_u128(int k, u128 *out)
{
    if (k < 20) {
        *out = pow10_u64[k];
        return true;
    }
    if (k > 38)
        return false;
    *out = (u128)pow10_u64[19] * pow10_u64[k - 19];
    return true;
}

/* The decimal of P (15..17) significant digits nearest to a (a positive normal double):
 * digits *d (10^(P-1) <= *d < 10^P) times 10^(*x - P + 1), ties to even as glibc's printf
 * rounds; *rt: whether it reads back as a (is inside a's rounding interval, whose ends belong
 * to it when a's significand is even, as strtod rounds ties to even). Exact integer
 * arithmetic: a = m 2^e is scaled by 10^k (k = P - 1 - x) to the fraction A / B of two
 * 128-bit integers; false when A or B would not fit (a below ~1e-7 or above ~1e21 at 17
 * digits), and the caller falls back to snprintf/strtod. */
static bool nearest_digits(double a, int P, uint64_t *d, int *x, bool *rt)
{
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int be = (int)(bits >> 52);
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int e = be - 1075;
    /* floor(log10(2) * (be - 1023)): x or x - 1 */
    int l2 = be - 1023, t = l2 * 78913;
    int X = t >= 0 ? t >> 18 : -((-t + (1 << 18) - 1) >> 18);
    for (int tries = 0; tries < 3; tries++) {
        int k = P - 1 - X;
        /* a 10^k = A / B, A = m U with U = 2^max(e,0) 10^max(k,0), the gap between a and its
         * neighbours in the same units being U / B */
        u128 U = 1, A, B = 1, p10;
        if (e > 0) {
            if (e > 127 - 53)
                return false;
            U <<= e;
        } else if (e < 0) {
            if (-e > 124)
                return false;
            B <<= -e;
        }
        if (!pow10_u128(k >= 0 ? k : -k, &p10))
            return false;
        if (k >= 0) {
            if (__builtin_mul_overflow(U, p10, &U))
                return false;
        } else {
            if (__builtin_mul_overflow(B, p10, &B) || (B >> 124) != 0)
                return false;
        }
        if (__builtin_mul_overflow(U, (u128)m, &A))
            return false;
        u128 q, r;
        if (k >= 0) { /* B = 2^-e: a shift, not a 128-bit division */
            int sh = e < 0 ? -e : 0;
            q = A >> sh;
            r = A & (B - 1);
        } else {
            q = A / B;
            r = A % B;
        }
        if (q >= pow10_u64[P]) {
            X++;
            continue;
        }
        if (q < pow10_u64[P - 1]) {
            X--;
            continue;
        }
        /* nearest, ties to even */
        bool up = 2 * r > B || (2 * r == B && (q & 1u) != 0);
        u128 dist = up ? B - r : r; /* |decimal - a| * B, in units of 10^-k */
        /* inside when under half the gap (U / 2B); below a power of two (m = 2^52) the
         * lower neighbour is half as far */
        u128 ulp = U;
        bool below = !up && r != 0;
        u128 twice = below && m == (UINT64_C(1) << 52) && be > 1 ? 4 * dist : 2 * dist;
        bool even = (m & 1u) == 0;
        *rt = twice < ulp || (even && twice == ulp);
        uint64_t dd = (uint64_t)q + (up ? 1u : 0u);
        if (dd == pow10_u64[P]) { /* 99..9.5 rounds to 10^P */
            dd = pow10_u64[P - 1];
            X++;
        }
        *d = dd;
        *x = X;
        return true;
    }
    return false;
}

/* d (P digits) times 10^(x - P + 1) as "%.Pg" writes it (trailing zeros dropped), after
 * the sign; returns the length. */
static size_t g_text(char *t, bool neg, uint64_t d, int x, int P)
{
    char dig[20];
    char *s = u64_digits(dig + sizeof dig, d);
    size_t n = (size_t)(dig + sizeof dig - s); /* == P */
    while (n > 1 && s[n - 1] == '0')
        n--;
    char *o = t;
    if (neg)
        *o++ = '-';
    if (x < -4 || x >= P) {
        *o++ = s[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, s + 1, n - 1);
            o += n - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        unsigned ax = (unsigned)(x < 0 ? -x : x);
        if (ax >= 100)
            *o++ = (char)('0' + ax / 100);
        *o++ = (char)('0' + ax / 10 % 10);
        *o++ = (char)('0' + ax % 10);
    } else if (x >= 0) {
        size_t ip = (size_t)x + 1;
        if (n <= ip) {
            memcpy(o, s, n);
            memset(o + n, '0', ip - n);
            o += ip;
        } else {
            memcpy(o, s, ip);
            o += ip;
            *o++ = '.';
            memcpy(o, s + ip, n - ip);
            o += n - ip;
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        size_t z = (size_t)(-x - 1);
        memset(o, '0', z);
        o += z;
        memcpy(o, s, n);
        o += n;
    }
    *o = '\0';
    return (size_t)(o - t);
}
#endif

/* The text fdn__tm_fmt_short_g_libc writes for v (finite, not whole below 1e15), without snprintf
 * or strtod: the first of "%.15g", "%.16g", "%.17g" that reads back, each decided exactly
 * (nearest_digits), written by g_text. What fdn__tm_fmt_short_g_libc does first for short decimals
 * (fmt_decimal) gives the same text ("%.15g" reads back for them), and its binary search
 * for subnormals is kept, as is everything out of nearest_digits' range (tests/unit/
 * test_telemetry_numfmt.c compares the two on millions of doubles). */
size_t fdn__tm_fmt_short_g(char *t, double v)
{
#ifdef __SIZEOF_INT128__
    double a = fabs(v);
    if (a >= DBL_MIN && a <= DBL_MAX) {
        for (int P = 15; P <= 17; P++) {
            uint64_t d;
            int x;
            bool rt;
            if (!nearest_digits(a, P, &d, &x, &rt))
                break;
            if (rt)
                return g_text(t, v < 0, d, x, P);
        }
    }
#endif
    return fdn__tm_fmt_short_g_libc(t, v);
}

/* Per-thread memo of fdn__tm_fmt_short_g (a few hundred instructions a value): a scrape
 * formats the same few bucket bounds for every series of a histogram family. */
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
    size_t n = fdn__tm_fmt_short_g(t, v);
    if (n > 0 && n < sizeof short_memo[slot].t) {
        short_memo[slot].bits = bits;
        short_memo[slot].len = (unsigned char)n;
        memcpy(short_memo[slot].t, t, n + 1);
    }
    return n;
}
