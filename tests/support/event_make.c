/* See event_make.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "event_make.h"

fdn_event_t *test_small_event(const char *type)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.data = "{\"k\":1}";
    sp.data_len = 7;
    sp.flags = FDN_EVENT_NO_CORRELATION;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    return ev;
}

void test_events_expect_stored(fdn_events_t *es, const uint64_t *ids, size_t n,
                               const char *type_prefix)
{
    for (size_t i = 0; i < n; i++) {
        fdn_event_t *ev = NULL;
        if (fdn_events_get(es, ids[i], &ev) != 0)
            fail_msg("acknowledged id %llu is not stored", (unsigned long long)ids[i]);
        if (type_prefix != NULL &&
            strncmp(fdn_event_type(ev), type_prefix, strlen(type_prefix)) != 0)
            fail_msg("acknowledged id %llu has type %s, not %s...", (unsigned long long)ids[i],
                     fdn_event_type(ev), type_prefix);
        fdn_event_free(ev);
    }
}
