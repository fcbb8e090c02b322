/* Small events for tests of the event store, and the check that events a store acknowledged
 * (over HTTP, before a crash or an I/O failure) are in it. */
#ifndef FDN_TEST_EVENT_MAKE_H
#define FDN_TEST_EVENT_MAKE_H

#include <fdn/events.h>

/* An event of `type` with the JSON data {"k":1} and no correlation id; the test fails (cmocka)
 * when it cannot be made. */
fdn_event_t *test_small_event(const char *type);

/* Every id of ids[0..n) is in es (fdn_events_get finds it) and, when type_prefix is not NULL,
 * has a type that starts with it; the test fails (cmocka) naming the first that is not. */
void test_events_expect_stored(fdn_events_t *es, const uint64_t *ids, size_t n,
                               const char *type_prefix);

#endif
