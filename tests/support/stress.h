/* Stress-test sizing shared by tests/stress: how many iterations a test runs, scalable from
 * the environment without editing the test.
 *
 *   FDN_STRESS_ITERS=N    every stress test runs exactly N iterations (capped per test)
 *   FDN_STRESS_SCALE=F    every test runs F times its own default (F a positive decimal,
 *                         0.1 for a quick smoke run, 10 for a soak); ignored when
 *                         FDN_STRESS_ITERS is set
 *
 * Unset, empty or unparsable values are ignored. */
#ifndef FDN_TEST_STRESS_H
#define FDN_TEST_STRESS_H

/* The iteration count for a test whose default is dflt (> 0). cap > 0 bounds the result
 * (for tests whose cost grows fast, or that store the count in an int); cap <= 0: no bound.
 * Never below 1. */
long test_stress_iters(long dflt, long cap);

#endif
