/* DESIGN: stress sizing and test seeds from the environment (see stress.h). Reads getenv on
 * every call (the tests call it once per test from the main thread); no state, no threads. */
#include "stress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

long test_stress_iters(long dflt, long cap)
{
    long n = dflt > 0 ? dflt : 1;
    const char *e = getenv("FDN_STRESS_ITERS");
    char *end = NULL;
    long v = e != NULL ? strtol(e, &end, 10) : 0;
    if (e != NULL && end != e && v > 0) {
        n = v;
    } else {
        const char *s = getenv("FDN_STRESS_SCALE");
        double f = s != NULL ? strtod(s, &end) : 0.0;
        if (s != NULL && end != s && f > 0.0) {
            double scaled = (double)n * f;
            n = scaled >= 1e15 ? (long)1e15 : scaled < 1.0 ? 1 : (long)scaled;
        }
    }
    if (cap > 0 && n > cap)
        n = cap;
    return n;
}

uint64_t test_seed(const char *name)
{
    uint64_t seed = 0;
    const char *e = getenv("FDN_TEST_SEED");
    char *end = NULL;
    if (e != NULL && *e != '\0') {
        unsigned long long v = strtoull(e, &end, 0);
        if (end != e && *end == '\0')
            seed = (uint64_t)v;
    }
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        seed ^= (uint64_t)getpid() << 32;
        seed ^= 0x9E3779B97F4A7C15ull;
        if (seed == 0)
            seed = 0x9E3779B97F4A7C15ull;
    }
    fprintf(stderr, "%s: seed %" PRIu64 " (FDN_TEST_SEED=%" PRIu64 " replays it)\n", name, seed,
            seed);
    return seed;
}
