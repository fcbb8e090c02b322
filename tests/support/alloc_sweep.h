/* The failing-allocator sweep of the public API (tests/alloc/, docs in tests/alloc/README.md).
 *
 * One sweep drives one call site of one public function: the body of SWEEP runs once with
 * nothing failing (the warm-up pass: it fills process-wide caches such as the built-in config
 * schema and the thread's error context, so they are not taken for leaks), then again with
 * allocation n failing for n = 1, 2, ... until a pass in which the call made fewer than n
 * allocations, i.e. it succeeded with nothing failed. Allocations are counted through the
 * fdn_set_allocator hook (tests/support/fail_alloc.h), which jansson's allocations go through
 * too (core/json.c). At each pass:
 *   - sweep_failed(&sw, rc) says whether the call failed; a failure must be the documented
 *     code (FDN_ENOMEM unless the case says otherwise with sweep_expect), must come from an
 *     injected failure (a call does not fail on its own while swept), and must leave the count
 *     of live blocks as it was when the pass armed (an exact, per-call leak check);
 *   - the body then checks the object is usable and unchanged (its own assertions);
 *   - at the end of the pass the count of live blocks must be the one after the warm-up pass
 *     (everything the pass made was released), unless the case keeps its object across passes
 *     (SWEEP_KEEP: then only the failed calls are checked, by the per-call check).
 * LeakSanitizer (the ASan build) checks the whole process at exit as well.
 *
 * Usage:
 *     SWEEP(sw, fdn_config_create, 0) {
 *         fdn_config_t *c = NULL;
 *         sweep_arm(&sw);
 *         int rc = fdn_config_create(&c, &o, NULL);
 *         if (sweep_failed(&sw, rc))
 *             assert_null(c);
 *         else
 *             fdn_config_destroy(c);
 *     }
 * The function named in SWEEP must exist (it is referenced, so a typo does not compile); the
 * coverage check (scripts/gen-alloc-sweep.sh) finds the names swept by grepping SWEEP(. */
#ifndef FDN_TEST_ALLOC_SWEEP_H
#define FDN_TEST_ALLOC_SWEEP_H

#include <stdbool.h>

enum {
    SWEEP_KEEP = 1u << 0,         /* the object outlives the passes: no end-of-pass balance */
    SWEEP_ALL_THREADS = 1u << 1,  /* count and fail every thread's allocations, not only the
                                     caller's (the call hands its work to a library thread) */
    SWEEP_NO_CALL_LEAK = 1u << 2, /* no per-call live check: library threads allocate while
                                     the call runs (the end-of-pass balance still holds) */
    SWEEP_NO_RCU = 1u << 3,       /* do not wait for RCU frees before counting live blocks
                                     (the call must not be made inside a read-side section) */
    SWEEP_SLOW = 1u << 4,         /* a pass costs tens of ms (a whole runtime is built and torn
                                     down): fail every 8th allocation (1 + k, 9 + k, ...) unless
                                     FDN_SWEEP_FULL=1 is set, to keep `make test` short; the
                                     offset k rotates by day (see sweep_slow_offset) */
    SWEEP_NO_ABSORB = 1u << 5     /* the call has nothing optional to drop: succeeding although
                                     an allocation failed ("absorbed") fails the sweep */
};

typedef struct sweep {
    const char *fn;   /* the public function swept */
    const char *file; /* where the sweep is */
    int line;
    unsigned flags;
    long n;           /* the allocation failed in this pass; 0 in the warm-up pass */
    long baseline;    /* live blocks after the warm-up pass */
    long live_at_arm; /* live blocks when this pass armed */
    int expect;       /* the code a failed call must return (FDN_ENOMEM by default) */
    int expect2;      /* a second accepted code (0: none) */
    bool armed;       /* sweep_arm was called in this pass */
    bool injected;    /* this pass's failure was injected */
    bool done;        /* the last pass ran with nothing failed */
    long absorbed;    /* passes whose call succeeded despite the failed allocation */
    long offset;      /* SWEEP_SLOW, sampled: the first allocation failed is 1 + offset */
} sweep_t;

/* The offset k of a sampled SWEEP_SLOW sweep of `fn`: FDN_SWEEP_OFFSET=k when set (to
 * reproduce a run), else (days since the epoch + a hash of fn) mod 8. Every run is
 * deterministic for its day and prints its k; eight consecutive days of runs fail every
 * allocation of every slow sweep, and different slow sweeps sample different residues on the
 * same day. */
long sweep_slow_offset(const char *fn);

sweep_t sweep_begin(const char *fn, void (*fnp)(void), unsigned flags, const char *file, int line);
bool sweep_more(sweep_t *sw);
void sweep_end_pass(sweep_t *sw);

/* Arms the pass's failure (allocation sw->n of the calling thread, or of every thread with
 * SWEEP_ALL_THREADS); nothing fails in the warm-up pass. Call right before the swept call. */
void sweep_arm(sweep_t *sw);

/* Disarms and judges the call's result (see above). true: the call failed (with an accepted
 * code, leaking nothing); false: it succeeded. */
bool sweep_failed(sweep_t *sw, int rc);

/* sweep_failed for a call whose normal answer is the code `normal` (e.g. a validator given
 * bad input): `normal` counts as success, anything else as a failure. */
bool sweep_failed_vs(sweep_t *sw, int rc, int normal);

/* The code a failed call must return in this sweep, instead of FDN_ENOMEM; `also` a second
 * accepted one (0: none). For calls that document another code for an allocation failure. */
void sweep_expect(sweep_t *sw, int code, int also);

/* Live blocks now (fail_alloc_live), after the frees RCU has queued. */
long sweep_live(void);

/* Installs the failing allocator; call at the start of main, before any other fdn call. */
void sweep_install(void);

/* The call makes no allocation on this thread: allocation 1 is armed to fail and must not be
 * reached. For the accessors and other calls a sweep has nothing to fail in; `call` may be of
 * any type, void included. Counted as swept by the coverage check. */
#define NOALLOC_SWEEP(fname, call)                                                                 \
    do {                                                                                           \
        sweep_noalloc_begin(#fname, (void (*)(void))(fname));                                      \
        (void)(call);                                                                              \
        sweep_noalloc_end(#fname, __FILE__, __LINE__);                                             \
    } while (0)
void sweep_noalloc_begin(const char *fn, void (*fnp)(void));
void sweep_noalloc_end(const char *fn, const char *file, int line);

/* NOALLOC_SWEEP for a call that can only be made on a library thread (a service's run loop),
 * where a cmocka failure cannot be raised: the same arming, but the number of allocations the
 * call made on that thread is stored in `count` (a long) for the test thread to assert 0 once
 * the library thread has signalled. The test thread must not arm a sweep meanwhile. */
#define NOALLOC_COUNT(fname, count, call)                                                          \
    do {                                                                                           \
        sweep_noalloc_begin(#fname, (void (*)(void))(fname));                                      \
        (void)(call);                                                                              \
        (count) = sweep_noalloc_count();                                                           \
    } while (0)
long sweep_noalloc_count(void);

#define SWEEP(sw, fname, flags)                                                                    \
    for (sweep_t sw = sweep_begin(#fname, (void (*)(void))(fname), (flags), __FILE__, __LINE__);   \
         sweep_more(&sw); sweep_end_pass(&sw))

#endif
