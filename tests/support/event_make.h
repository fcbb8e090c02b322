/* Small events for tests of the event store, the check that events a store acknowledged (over
 * HTTP, before a crash or an I/O failure) are in it, and a walk over everything a store holds. */
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

/* Calls fn(ev, user) for every event es holds, in id order, read with ascending queries of
 * `page` (> 0) events each, paged with after_id; the test fails (cmocka) when a query does. ev
 * is valid during the call only. */
void test_events_each(fdn_events_t *es, int64_t page, void (*fn)(const fdn_event_t *ev, void *user),
                      void *user);

#endif
