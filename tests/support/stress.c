/* DESIGN: stress sizing from the environment (see stress.h). Reads getenv on every call (the
 * tests call it once per test from the main thread); no state, no threads. */
#include "stress.h"

#include <stdlib.h>

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
