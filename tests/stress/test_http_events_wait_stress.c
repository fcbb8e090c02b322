/* Stress test of waiting queries (GET /v1/events?after_id=N&wait_ms=M, src/admin/event_wait.c):
 * 8 followers, each reading the events of its own type as the log grows (the loop of
 * docs/http-api.md: the last id of an answer is the next cursor; at most 7 events an answer),
 * while 2 writers append 200 events of each type in turn, and 2 more followers read every
 * type (50 an answer). Every follower must see
 * every event it follows exactly once, in id order, with no gap: a query that waits misses
 * nothing stored between its query and its wait, and answers nothing twice.
 *
 * Bounded: each follower stops once it has seen all the events it follows; a wait that never
 * ends would be a hang, caught by ctest's TIMEOUT (the writers finish regardless, so a
 * follower waits at most its 60 s wait_ms for an event that never comes: a missed event shows
 * as a wrong count, not as a hang). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sched.h>

#include "admin/admin_int.h"
#include "admin_local.h"
#include "event_make.h"
#include "threads.h"

#include <fdn/events.h>

#define TYPES       8
#define PER_TYPE    200
#define WRITERS     2
#define ALL_READERS 2

typedef struct shared {
    fdn_events_t *es;
    fdn_admin_t *a;
} shared_t;

typedef struct follower {
    shared_t *s;
    int type; /* -1: every type */
    uint64_t seen, last, errors, answers;
} follower_t;

typedef struct writer {
    shared_t *s;
    int index;
} writer_t;

static void *follower_main(void *arg)
{
    follower_t *f = arg;
    uint64_t want = f->type < 0 ? (uint64_t)TYPES * PER_TYPE : PER_TYPE;
    char uri[160], type[16];
    snprintf(type, sizeof type, "t.%d", f->type);
    while (f->seen < want) {
        if (f->type < 0)
            snprintf(uri, sizeof uri, "/v1/events?after_id=%llu&limit=50&wait_ms=60000",
                     (unsigned long long)f->last);
        else
            snprintf(uri, sizeof uri, "/v1/events?after_id=%llu&type=%s&limit=7&wait_ms=60000",
                     (unsigned long long)f->last, type);
        fdn__http_resp_t r;
        memset(&r, 0, sizeof r);
        fdn__admin_dispatch(f->s->a, "GET", uri, NULL, NULL, 0, &r);
        f->answers++;
        json_t *evs = r.status == 200 ? json_object_get(r.json, "events") : NULL;
        if (!json_is_array(evs)) {
            f->errors++;
            fdn__http_resp_clear(&r);
            break;
        }
        size_t i;
        json_t *e;
        json_array_foreach(evs, i, e)
        {
            uint64_t id = (uint64_t)json_integer_value(json_object_get(e, "id"));
            const char *t = json_string_value(json_object_get(e, "type"));
            if (id <= f->last || t == NULL || (f->type >= 0 && strcmp(t, type) != 0))
                f->errors++; /* out of order, twice, or not its type */
            f->last = id;
            f->seen++;
        }
        fdn__http_resp_clear(&r);
    }
    return NULL;
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    char type[16];
    for (int k = 0; k < PER_TYPE / WRITERS; k++)
        for (int t = 0; t < TYPES; t++) {
            snprintf(type, sizeof type, "t.%d", t);
            fdn_event_t *ev = test_small_event(type);
            if (fdn_events_store(w->s->es, ev, NULL) != 0)
                fail_msg("writer %d: append failed", w->index);
            fdn_event_free(ev);
            sched_yield(); /* let followers catch up and wait again */
        }
    return NULL;
}

static void followers_see_every_event_once(void **state)
{
    (void)state;
    shared_t s;
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    assert_int_equal(fdn_events_create(&s.es, &eo, NULL), 0);
    s.a = test_admin_local(NULL, &(test_admin_mounts_t){.events = s.es});

    follower_t f[TYPES + ALL_READERS];
    writer_t w[WRITERS];
    test_threads_t g;
    test_threads_init(&g, 0);
    for (int i = 0; i < TYPES + ALL_READERS; i++) {
        memset(&f[i], 0, sizeof f[i]);
        f[i].s = &s;
        f[i].type = i < TYPES ? i : -1;
        test_threads_start(&g, follower_main, &f[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        w[i].s = &s;
        w[i].index = i;
        test_threads_start(&g, writer_main, &w[i]);
    }
    test_threads_join(&g);
    uint64_t answers = 0;
    for (int i = 0; i < TYPES + ALL_READERS; i++) {
        uint64_t want = f[i].type < 0 ? (uint64_t)TYPES * PER_TYPE : PER_TYPE;
        if (f[i].errors != 0 || f[i].seen != want)
            fail_msg("follower %d (type %d): saw %llu of %llu, %llu errors", i, f[i].type,
                     (unsigned long long)f[i].seen, (unsigned long long)want,
                     (unsigned long long)f[i].errors);
        answers += f[i].answers;
    }
    print_message("%llu answers to %d followers\n", (unsigned long long)answers,
                  TYPES + ALL_READERS);
    assert_int_equal(fdn__admin_events_waiting(s.a), 0);
    fdn_admin_destroy(s.a);
    fdn_events_destroy(s.es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(followers_see_every_event_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
