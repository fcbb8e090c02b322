/* The answer to an append (POST /v1/events, POST /v1/events/batch) with each allocation of the
 * request failing in turn: an answer other than 201 means the store holds none of the events
 * (the client may send them again), and a 201 names exactly the events stored, byte for byte
 * as without a failure. The 201's body used to be allocated after the commit (render_ids, on
 * the server thread): its failure answered 500 for events already stored, and a client that
 * retried stored them twice (found by review). A memory store acknowledges at once, and the
 * admin's socketless dispatch runs the whole request on this thread, so "allocation k of the
 * request" is the same allocation at every run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "admin/admin_int.h"

#include <fdn/admin.h>
#include <fdn/events.h>

#include "admin_local.h"
#include "fail_alloc.h"

static uint64_t stored(fdn_events_t *es, uint64_t *newest)
{
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    *newest = st.newest_id;
    return st.count;
}

/* The answer's body as text: the handler's text, or its JSON tree dumped (the socketless
 * dispatch parses a JSON text answer into resp->json when it can). */
static void body_text(const fdn__http_resp_t *r, char *out, size_t cap)
{
    if (r->json != NULL) {
        char *d = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(d);
        snprintf(out, cap, "%s", d);
        fdn_free(d);
    } else {
        assert_non_null(r->text);
        snprintf(out, cap, "%.*s", (int)r->text_len, r->text);
    }
}

/* Sweep allocation k = 1, 2, ... of one request until a run fails none. */
static void sweep(const char *path, const char *body, size_t n)
{
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
    long errors = 0, ok = 0;
    for (long k = 1;; k++) {
        uint64_t newest = 0, after_newest = 0;
        uint64_t before = stored(es, &newest);
        fdn__http_resp_t r;
        memset(&r, 0, sizeof r);
        fail_alloc_at_this_thread(k);
        fdn__admin_dispatch(a, "POST", path, NULL, body, strlen(body), &r);
        long failed = fail_alloc_failures();
        fail_alloc_off();
        uint64_t after = stored(es, &after_newest);
        if (r.status == 201) {
            ok++;
            assert_int_equal(after, before + n);
            char got[256], want[256];
            body_text(&r, got, sizeof got);
            if (n == 1)
                snprintf(want, sizeof want, "{\"id\":%llu}", (unsigned long long)after_newest);
            else
                snprintf(want, sizeof want, "{\"ids\":[%llu,%llu],\"count\":2}",
                         (unsigned long long)after_newest - 1, (unsigned long long)after_newest);
            assert_string_equal(got, want);
        } else {
            errors++;
            if (after != before)
                fail_msg("allocation %ld of %s failed: answered %u with %llu event(s) stored", k,
                         path, r.status, (unsigned long long)(after - before));
            assert_int_equal(failed, 1);
        }
        unsigned status = r.status;
        fdn__http_resp_clear(&r);
        if (failed == 0) { /* nothing left to fail: the plain answer */
            assert_int_equal(status, 201);
            break;
        }
    }
    printf("%s: %ld allocation(s) failed in turn: %ld error answer(s), %ld answered 201\n", path,
           errors + ok - 1, errors, ok - 1);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

static void post_event_answer(void **state)
{
    (void)state;
    sweep("/v1/events", "{\"type\":\"answer\",\"data\":{\"k\":1}}", 1);
}

static void post_batch_answer(void **state)
{
    (void)state;
    sweep("/v1/events/batch", "{\"events\":[{\"type\":\"answer\"},{\"type\":\"answer\"}]}", 2);
}

int main(void)
{
    /* before any other fdn call (fdn_set_allocator) */
    if (fail_alloc_install() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(post_event_answer),
        cmocka_unit_test(post_batch_answer),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fail_alloc_uninstall();
    return rc;
}
