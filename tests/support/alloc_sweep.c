/* DESIGN: the sweep driver of tests/alloc/ (see alloc_sweep.h). A sweep is a small state
 * machine the SWEEP for-loop steps: pass 0 warms up, pass n fails allocation n, and the loop
 * stops after the first pass whose call made fewer than n allocations. Every check fails the
 * cmocka test with the function, the pass and the file:line of the sweep, so a report names
 * the failing allocation exactly (rerun with the same n to debug). Threads: one sweep runs on
 * one thread; the counters it reads are fail_alloc's atomics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <execinfo.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include <fdn/error.h>

#include "alloc_sweep.h"
#include "core/rcu.h"
#include "fail_alloc.h"

/* More allocations than any single public call makes; a sweep that has not converged by then
 * fails instead of running for ever. */
#define SWEEP_MAX_PASSES 20000

/* SWEEP_SLOW sweeps fail allocation 1, 1 + stride, 1 + 2 stride, ... by default. */
#define SWEEP_SLOW_STRIDE 8

void sweep_install(void)
{
    if (fail_alloc_install() != 0) {
        fprintf(stderr, "alloc sweep: fdn_set_allocator refused the failing allocator\n");
        exit(1);
    }
    fail_alloc_at(0);
}

long sweep_live(void)
{
    fdn__rcu_barrier();
    return fail_alloc_live();
}

static bool sweep_full(void)
{
    const char *full = getenv("FDN_SWEEP_FULL");
    return full != NULL && strcmp(full, "1") == 0;
}

long sweep_slow_offset(const char *fn)
{
    const char *e = getenv("FDN_SWEEP_OFFSET");
    if (e != NULL && e[0] != '\0') {
        long k = strtol(e, NULL, 10) % SWEEP_SLOW_STRIDE;
        return k < 0 ? k + SWEEP_SLOW_STRIDE : k;
    }
    uint32_t h = 2166136261u; /* FNV-1a of the function's name */
    for (const char *p = fn; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    uint64_t day = (uint64_t)time(NULL) / 86400u;
    return (long)((day + h) % SWEEP_SLOW_STRIDE);
}

sweep_t sweep_begin(const char *fn, void (*fnp)(void), unsigned flags, const char *file, int line)
{
    (void)fnp;
    sweep_t sw = {0};
    sw.fn = fn;
    sw.file = file;
    sw.line = line;
    sw.flags = flags;
    sw.expect = FDN_ENOMEM;
    sw.n = -1; /* sweep_more starts the warm-up pass */
    if ((flags & SWEEP_SLOW) && !sweep_full())
        sw.offset = sweep_slow_offset(fn);
    return sw;
}

bool sweep_more(sweep_t *sw)
{
    if (sw->done)
        return false;
    if ((sw->flags & SWEEP_SLOW) && !sweep_full()) {
        if (sw->n == 0)
            sw->n = sw->offset; /* the first failed: 1 + offset */
        else if (sw->n >= 1)
            sw->n += SWEEP_SLOW_STRIDE - 1; /* and the ++ below */
    }
    sw->n++;
    if (sw->n > SWEEP_MAX_PASSES)
        fail_msg("%s (%s:%d): no success after %d failed allocations", sw->fn, sw->file, sw->line,
                 SWEEP_MAX_PASSES);
    sw->armed = false;
    sw->injected = false;
    return true;
}

/* Objects retired through RCU (config snapshots, telemetry handler sets, limiter tables,
 * registry entries) are freed later by liburcu's thread, so a count of live blocks can be
 * off by frees a previous call queued. A barrier costs milliseconds (liburcu-bp polls), too
 * much for every pass: a count that does not match is taken again after a barrier, and only
 * a count still above the expected one is a leak. (A leak can then hide behind a queued free
 * of the same pass; the balance at the end of each test and LeakSanitizer still see it.) */
static long live_settled(const sweep_t *sw, long expected)
{
    long live = fail_alloc_live();
    if (live != expected && !(sw->flags & SWEEP_NO_RCU)) {
        if (getenv("FDN_SWEEP_DEBUG"))
            fprintf(stderr, "barrier %s n=%ld live %ld expected %ld\n", sw->fn, sw->n, live,
                    expected);
        fdn__rcu_barrier();
        live = fail_alloc_live();
        if (live < expected)
            live = expected; /* frees queued before the call ran during it */
    }
    return live;
}

/* Debugging: FDN_SWEEP_TRACE=function:n prints the stack of allocation n of that function's
 * sweeps when it is failed (ASan symbolises nothing here: read it with addr2line). */
static long g_trace_n;

static void trace_hook(long n)
{
    if (n == g_trace_n) {
        void *frames[32];
        int k = backtrace(frames, 32);
        fprintf(stderr, "alloc sweep: allocation %ld is failed here:\n", n);
        backtrace_symbols_fd(frames, k, 2);
    }
}

/* FDN_SWEEP_ABSORBED=1: the stack of each failed allocation is kept, and printed when the
 * call succeeds despite it (an absorbed failure: the call degraded silently). */
static long g_absorb_n;
static void *g_absorb_frames[32];
static int g_absorb_depth;

static void absorb_hook(long n)
{
    if (n == g_absorb_n)
        g_absorb_depth = backtrace(g_absorb_frames, 32);
}

static void trace_arm(const sweep_t *sw)
{
    const char *t = getenv("FDN_SWEEP_TRACE");
    const char *colon = t != NULL ? strchr(t, ':') : NULL;
    g_trace_n = 0;
    g_absorb_n = 0;
    g_absorb_depth = 0;
    if (colon != NULL && (size_t)(colon - t) == strlen(sw->fn) &&
        strncmp(t, sw->fn, (size_t)(colon - t)) == 0 && strtol(colon + 1, NULL, 10) == sw->n)
        g_trace_n = sw->n;
    if (g_trace_n == 0 && sw->n > 0 && getenv("FDN_SWEEP_ABSORBED") != NULL)
        g_absorb_n = sw->n;
    fail_alloc_set_hook(g_trace_n != 0 ? trace_hook : g_absorb_n != 0 ? absorb_hook : NULL);
}

static void report_absorbed(const sweep_t *sw)
{
    if (g_absorb_n == 0 || g_absorb_depth == 0)
        return;
    fprintf(stderr,
            "alloc sweep: %s: allocation %ld failed, the call succeeded; it was made here:\n",
            sw->fn, sw->n);
    backtrace_symbols_fd(g_absorb_frames, g_absorb_depth, 2);
}

void sweep_arm(sweep_t *sw)
{
    sw->armed = true;
    trace_arm(sw);
    sw->live_at_arm = fail_alloc_live();
    if (sw->flags & SWEEP_ALL_THREADS)
        fail_alloc_at(sw->n);
    else
        fail_alloc_at_this_thread(sw->n);
}

void sweep_expect(sweep_t *sw, int code, int also)
{
    sw->expect = code;
    sw->expect2 = also;
}

bool sweep_failed(sweep_t *sw, int rc)
{
    fail_alloc_off();
    if (!sw->armed)
        fail_msg("%s (%s:%d): sweep_failed without sweep_arm", sw->fn, sw->file, sw->line);
    sw->injected = fail_alloc_failures() > 0;
    if (rc == 0) {
        if (sw->injected) {
            sw->absorbed++;
            report_absorbed(sw);
            if (sw->flags & SWEEP_NO_ABSORB)
                fail_msg("%s (%s:%d): allocation %ld failed, yet the call succeeded (absorbed; "
                         "FDN_SWEEP_ABSORBED=1 prints where)",
                         sw->fn, sw->file, sw->line, sw->n);
        }
        return false;
    }
    if (!sw->injected)
        fail_msg("%s (%s:%d) pass %ld: failed with %s (%d) though no allocation failed", sw->fn,
                 sw->file, sw->line, sw->n, fdn_err_name(rc), rc);
    if (rc != sw->expect && (sw->expect2 == 0 || rc != sw->expect2))
        fail_msg("%s (%s:%d): allocation %ld failed: returned %s (%d), expected %s", sw->fn,
                 sw->file, sw->line, sw->n, fdn_err_name(rc), rc, fdn_err_name(sw->expect));
    long live = live_settled(sw, sw->live_at_arm);
    if (!(sw->flags & (SWEEP_NO_CALL_LEAK | SWEEP_ALL_THREADS)) && live != sw->live_at_arm)
        fail_msg("%s (%s:%d): allocation %ld failed: %ld block(s) leaked by the failed call",
                 sw->fn, sw->file, sw->line, sw->n, live - sw->live_at_arm);
    return true;
}

bool sweep_failed_vs(sweep_t *sw, int rc, int normal)
{
    return sweep_failed(sw, rc == normal ? 0 : rc);
}

void sweep_end_pass(sweep_t *sw)
{
    if (!sw->armed)
        fail_msg("%s (%s:%d): a pass without sweep_arm", sw->fn, sw->file, sw->line);
    if (sw->n == 0) {
        sw->baseline = sweep_live();
        return;
    }
    long live = sw->flags & SWEEP_KEEP ? sw->baseline : live_settled(sw, sw->baseline);
    if (live != sw->baseline)
        fail_msg("%s (%s:%d): pass %ld (allocation %ld %s) ends with %ld more live block(s) "
                 "than the warm-up pass",
                 sw->fn, sw->file, sw->line, sw->n, sw->n, sw->injected ? "failed" : "not reached",
                 live - sw->baseline);
    if (!sw->injected) {
        sw->done = true; /* the call ran to its end with nothing failed */
        const char *base = strrchr(sw->file, '/') ? strrchr(sw->file, '/') + 1 : sw->file;
        bool strided = (sw->flags & SWEEP_SLOW) && !sweep_full();
        if (strided)
            fprintf(stderr,
                    "alloc sweep: %s (%s:%d): allocations 1..%ld, every %dth from %ld failed "
                    "(FDN_SWEEP_OFFSET=%ld; FDN_SWEEP_FULL=1 fails each)",
                    sw->fn, base, sw->line, sw->n - 1, SWEEP_SLOW_STRIDE, sw->offset + 1,
                    sw->offset);
        else
            fprintf(stderr, "alloc sweep: %s (%s:%d): %ld allocation(s) failed in turn", sw->fn,
                    base, sw->line, sw->n - 1);
        if (sw->absorbed > 0)
            fprintf(stderr, ", %ld absorbed (the call succeeded without it)", sw->absorbed);
        fputc('\n', stderr);
    }
}

void sweep_noalloc_begin(const char *fn, void (*fnp)(void))
{
    (void)fn;
    (void)fnp;
    fail_alloc_at_this_thread(1);
}

void sweep_noalloc_end(const char *fn, const char *file, int line)
{
    fail_alloc_off();
    long n = fail_alloc_count();
    fail_alloc_at(0);
    if (n != 0)
        fail_msg("%s (%s:%d): made %ld allocation(s); expected none (sweep it instead)", fn, file,
                 line, n);
}

long sweep_noalloc_count(void)
{
    fail_alloc_off();
    long n = fail_alloc_count();
    fail_alloc_at(0);
    return n;
}
