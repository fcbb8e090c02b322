/* The limiter's key namespaces (include/fdn/limiter.h, FDN_LIMIT_KEY_NS_PROTECT) on any
 * backend, shared by the memory tests (tests/unit/test_limiter.c,
 * tests/unit/test_http_limiter_keys.c) and the Redis ones (tests/engine/test_limiter_redis.c):
 * both backends must refuse and serve alike. Each function fails the running test. */
#ifndef FDN_TEST_LIMITER_NS_H
#define FDN_TEST_LIMITER_NS_H

#include <fdn/limiter.h>

/* Every key call refuses a program's key in each library namespace with FDN_EINVAL and
 * changes nothing: a cell the library made there (a named rule's, an entity's, an HTTP key
 * and an inline rule's, each counted once) keeps its count, and a reserved key never seen is
 * not made. fdn_limit_key_validate names the namespace. The library's own paths still work
 * on those cells: named and entity checks, and FDN_LIMIT_RESERVED_NS with check, check_many,
 * inc_flags and set_flags. `id` makes the keys unique (a Redis fixture outlives a test); l
 * gets a named rule "nsr". (limiter_ns.c, in fdn_test_support.) */
void test_limiter_ns_refusals(fdn_limiter_t *l, const char *id);

/* The HTTP API on l (an admin server of its own, mounted with l): POST /v1/limiter/inc, get,
 * check and set (count 0: the key's allowance back) work on a key, a denied key reads over
 * get with 200; the key's cell is in the HTTP namespace, which a program's calls cannot read
 * but FDN_LIMIT_RESERVED_NS can; an HTTP identity and the same identity in C count separately.
 * (limiter_ns_http.c, in fdn_test_admin: a test calling it includes admin_local.h.) */
void test_limiter_ns_http(fdn_limiter_t *l, const char *id);

#endif
