/* The check that values handed out concurrently (event ids answered over HTTP, operation ids
 * of the error context) were never handed out twice. */
#ifndef FDN_TEST_DISTINCT_H
#define FDN_TEST_DISTINCT_H

#include <stddef.h>
#include <stdint.h>

/* Sorts v[0..n) in place and fails the test (cmocka), naming `what` and the value, when a value
 * appears more than once. */
void test_expect_distinct_u64(uint64_t *v, size_t n, const char *what);

#endif
