/* Stress-test sizing shared by tests/stress: how many iterations a test runs, scalable from
 * the environment without editing the test; and the seed of a randomised test, printed so
 * that a failure can be replayed.
 *
 *   FDN_STRESS_ITERS=N    every stress test runs exactly N iterations (capped per test)
 *   FDN_STRESS_SCALE=F    every test runs F times its own default (F a positive decimal,
 *                         0.1 for a quick smoke run, 10 for a soak); ignored when
 *                         FDN_STRESS_ITERS is set
 *
 * Unset, empty or unparsable values are ignored. */
#ifndef FDN_TEST_STRESS_H
#define FDN_TEST_STRESS_H

#include <stdint.h>

/* The iteration count for a test whose default is dflt (> 0). cap > 0 bounds the result
 * (for tests whose cost grows fast, or that store the count in an int); cap <= 0: no bound.
 * Never below 1. */
long test_stress_iters(long dflt, long cap);

/* The seed for a randomised test: FDN_TEST_SEED when set (decimal or 0x-hex), otherwise one
 * made from the time and the process id. Prints "<name>: seed N (FDN_TEST_SEED=N replays
 * it)" to stderr either way. Never 0 (xorshift generators stall on 0). */
uint64_t test_seed(const char *name);

#endif
