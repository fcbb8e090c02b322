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

void test_events_each(fdn_events_t *es, int64_t page, void (*fn)(const fdn_event_t *ev, void *user),
                      void *user)
{
    uint64_t after = 0;
    for (;;) {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.after_id = after;
        q.limit = page;
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
        size_t k = fdn_event_list_count(l);
        for (size_t i = 0; i < k; i++)
            fn(fdn_event_list_at(l, i), user);
        if (k > 0)
            after = fdn_event_id(fdn_event_list_at(l, k - 1));
        fdn_event_list_free(l);
        if ((int64_t)k < page)
            break;
    }
}
