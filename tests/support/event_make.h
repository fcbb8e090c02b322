/* Small events for tests of the event store. */
#ifndef FDN_TEST_EVENT_MAKE_H
#define FDN_TEST_EVENT_MAKE_H

#include <fdn/events.h>

/* An event of `type` with the JSON data {"k":1} and no correlation id; the test fails (cmocka)
 * when it cannot be made. */
fdn_event_t *test_small_event(const char *type);

#endif
