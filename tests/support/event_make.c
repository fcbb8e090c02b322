/* See event_make.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
