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

#include <stdio.h>
#include <stdlib.h>

#include <fdn/error.h>

#include "alloc_sweep.h"
#include "fail_alloc.h"

/* More allocations than any single public call makes; a sweep that has not converged by then
 * fails instead of running for ever. */
#define SWEEP_MAX_PASSES 20000

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
    return fail_alloc_live();
}

sweep_t sweep_begin(const char *fn, void (*fnp)(void), unsigned flags, const char *file,
                    int line)
{
    (void)fnp;
    sweep_t sw = {0};
    sw.fn = fn;
    sw.file = file;
    sw.line = line;
    sw.flags = flags;
    sw.expect = FDN_ENOMEM;
    sw.n = -1; /* sweep_more starts the warm-up pass */
    return sw;
}

bool sweep_more(sweep_t *sw)
{
    if (sw->done)
        return false;
    sw->n++;
    if (sw->n > SWEEP_MAX_PASSES)
        fail_msg("%s (%s:%d): no success after %d failed allocations", sw->fn, sw->file,
                 sw->line, SWEEP_MAX_PASSES);
    sw->armed = false;
    sw->injected = false;
    return true;
}

void sweep_arm(sweep_t *sw)
{
    sw->armed = true;
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
        if (sw->injected)
            sw->absorbed++;
        return false;
    }
    if (!sw->injected)
        fail_msg("%s (%s:%d) pass %ld: failed with %s (%d) though no allocation failed", sw->fn,
                 sw->file, sw->line, sw->n, fdn_err_name(rc), rc);
    if (rc != sw->expect && (sw->expect2 == 0 || rc != sw->expect2))
        fail_msg("%s (%s:%d): allocation %ld failed: returned %s (%d), expected %s", sw->fn,
                 sw->file, sw->line, sw->n, fdn_err_name(rc), rc, fdn_err_name(sw->expect));
    long live = fail_alloc_live();
    if (!(sw->flags & (SWEEP_NO_CALL_LEAK | SWEEP_ALL_THREADS)) && live != sw->live_at_arm)
        fail_msg("%s (%s:%d): allocation %ld failed: %ld block(s) leaked by the failed call",
                 sw->fn, sw->file, sw->line, sw->n, live - sw->live_at_arm);
    return true;
}

void sweep_end_pass(sweep_t *sw)
{
    if (!sw->armed)
        fail_msg("%s (%s:%d): a pass without sweep_arm", sw->fn, sw->file, sw->line);
    long live = fail_alloc_live();
    if (sw->n == 0) {
        sw->baseline = live;
        return;
    }
    if (!(sw->flags & SWEEP_KEEP) && live != sw->baseline)
        fail_msg("%s (%s:%d): pass %ld (allocation %ld %s) ends with %ld more live block(s) "
                 "than the warm-up pass",
                 sw->fn, sw->file, sw->line, sw->n, sw->n, sw->injected ? "failed" : "not reached",
                 live - sw->baseline);
    if (!sw->injected)
        sw->done = true; /* the call ran to its end with nothing failed */
}
