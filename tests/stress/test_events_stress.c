/* Stress: 4 writer threads and 2 reader threads on one store. Ids are unique, nothing is
 * lost or duplicated, and every reader sees a consistent prefix (no gaps below the newest
 * id it saw, per-type and per-correlation queries agree with what was published). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>

#include "stress.h"
#include "threads.h"

#define WRITERS 4
#define READERS 2

typedef struct shared {
    fdn_events_t *es;
    test_threads_t threads; /* writers and readers start together */
    _Atomic int writers_done;
    uint64_t n;
} shared_t;

typedef struct warg {
    shared_t *sh;
    int w;
    uint64_t *ids;
    int failures;
} warg_t;

static void *writer(void *p)
{
    warg_t *a = p;
    char type[16], corr[16], data[64];
    snprintf(type, sizeof(type), "w%d", a->w);
    snprintf(corr, sizeof(corr), "c%d", a->w);
    test_threads_gate(&a->sh->threads);
    for (uint64_t i = 0; i < a->sh->n; i++) {
        int len =
            snprintf(data, sizeof(data), "{\"w\":%d,\"i\":%llu}", a->w, (unsigned long long)i);
        fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
        s.type = type;
        s.correlation_id = corr;
        s.data = data;
        s.data_len = (size_t)len;
        s.flags = FDN_EVENT_TRUSTED_JSON;
        fdn_event_t *ev = NULL;
        if (fdn_event_new(&ev, &s, NULL) != 0) {
            a->failures++;
            continue;
        }
        if (i % 100 == 7) { /* some batches */
            const fdn_event_t *b[2] = {ev, ev};
            uint64_t ids[2];
            if (fdn_events_store_batch(a->sh->es, b, 2, ids) != 0 || ids[1] != ids[0] + 1)
                a->failures++;
            a->ids[i] = ids[0];
            a->ids[a->sh->n + i / 100] = ids[1];
        } else if (fdn_events_store(a->sh->es, ev, &a->ids[i]) != 0) {
            a->failures++;
        }
        fdn_event_free(ev);
    }
    atomic_fetch_add_explicit(&a->sh->writers_done, 1, memory_order_release);
    return NULL;
}

typedef struct rarg {
    shared_t *sh;
    int r;
    int failures;
    uint64_t checks;
} rarg_t;

static void *reader(void *p)
{
    rarg_t *a = p;
    test_threads_gate(&a->sh->threads);
    uint64_t last_newest = 0;
    while (atomic_load_explicit(&a->sh->writers_done, memory_order_acquire) < WRITERS ||
           a->checks < 3) {
        fdn_events_stats_t st;
        fdn_events_stats(a->sh->es, &st);
        if (st.newest_id < last_newest)
            a->failures++;
        last_newest = st.newest_id;
        /* the newest 50 ids must all exist, in order, with no gaps */
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.descending = true;
        q.limit = 50;
        fdn_event_list_t *l = NULL;
        if (fdn_events_query(a->sh->es, &q, &l) != 0) {
            a->failures++;
            break;
        }
        size_t n = fdn_event_list_count(l);
        uint64_t top = n ? fdn_event_id(fdn_event_list_at(l, 0)) : 0;
        if (top < last_newest) {
            fprintf(stderr, "reader: newest %llu went back from %llu\n", (unsigned long long)top,
                    (unsigned long long)last_newest);
            a->failures++;
        }
        for (size_t i = 0; i < n; i++)
            if (fdn_event_id(fdn_event_list_at(l, i)) != top - i) {
                fprintf(stderr, "reader: gap below %llu\n", (unsigned long long)top);
                a->failures++;
                break;
            }
        fdn_event_list_free(l);
        /* a type query from a cursor returns increasing ids of that type only */
        char type[8];
        snprintf(type, sizeof(type), "w%d", (int)(a->checks % WRITERS));
        q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
        q.type = type;
        q.after_id = top > 500 ? top - 500 : 0;
        q.limit = 200;
        if (fdn_events_query(a->sh->es, &q, &l) != 0) {
            a->failures++;
            break;
        }
        uint64_t prev = 0;
        for (size_t i = 0; i < fdn_event_list_count(l); i++) {
            const fdn_event_t *e = fdn_event_list_at(l, i);
            if (fdn_event_id(e) <= prev || strcmp(fdn_event_type(e), type) != 0) {
                fprintf(stderr, "reader: type query out of order or wrong type\n");
                a->failures++;
            }
            prev = fdn_event_id(e);
        }
        fdn_event_list_free(l);
        /* get by id of something published */
        if (top > 0) {
            fdn_event_t *ev = NULL;
            int grc = fdn_events_get(a->sh->es, top, &ev);
            if (grc == FDN_ENOENT) { /* only acceptable when pruned meanwhile */
                fdn_events_stats(a->sh->es, &st);
                if (st.oldest_id <= top) {
                    fprintf(stderr, "reader: id %llu missing\n", (unsigned long long)top);
                    a->failures++;
                }
            } else if (grc != 0) {
                a->failures++;
            }
            fdn_event_free(ev);
        }
        a->checks++;
    }
    return NULL;
}

/* A callback subscriber running alongside: ids strictly increase, and delivered + skipped
 * accounts for every event. */
typedef struct subsink {
    uint64_t prev, delivered, skipped; /* delivery thread only */
    int bad;
    test_waiter_t last; /* the newest id delivered (raised after the fields above) */
} subsink_t;

static void sub_cb(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    subsink_t *k = user;
    if (fdn_event_id(ev) <= k->prev)
        k->bad++;
    k->prev = fdn_event_id(ev);
    k->delivered++;
    k->skipped += skipped;
    test_waiter_raise(&k->last, (int64_t)fdn_event_id(ev));
}

/* Starts the writers and the readers (wa, ra filled in here) behind one start gate. */
static void start_writers_readers(shared_t *sh, warg_t *wa, rarg_t *ra)
{
    test_threads_init(&sh->threads, WRITERS + READERS);
    for (int i = 0; i < WRITERS; i++) {
        wa[i] = (warg_t){.sh = sh, .w = i};
        wa[i].ids = calloc(sh->n + sh->n / 100 + 1, sizeof(uint64_t));
        assert_non_null(wa[i].ids);
    }
    for (int i = 0; i < READERS; i++)
        ra[i] = (rarg_t){.sh = sh, .r = i};
    test_threads_start_n(&sh->threads, WRITERS, writer, wa, sizeof(wa[0]));
    test_threads_start_n(&sh->threads, READERS, reader, ra, sizeof(ra[0]));
}

static void writers_and_readers(void **state)
{
    (void)state;
    shared_t sh;
    memset(&sh, 0, sizeof(sh));
    sh.n = (uint64_t)test_stress_iters(20000, 0);
    assert_int_equal(fdn_events_create(&sh.es, NULL, NULL), 0);
    subsink_t sink = {0};
    test_waiter_init(&sink.last);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(sh.es, &so, sub_cb, &sink, &sub), 0);
    warg_t wa[WRITERS];
    rarg_t ra[READERS];
    start_writers_readers(&sh, wa, ra);
    test_threads_join(&sh.threads);
    uint64_t extra = 0;
    for (uint64_t i = 0; i < sh.n; i++)
        extra += i % 100 == 7;
    uint64_t total = WRITERS * (sh.n + extra);
    uint8_t *seen = calloc(total + 1, 1);
    for (int w = 0; w < WRITERS; w++) {
        assert_int_equal(wa[w].failures, 0);
        for (uint64_t i = 0; i < sh.n + sh.n / 100 + 1; i++) {
            uint64_t id = wa[w].ids[i];
            if (id == 0)
                continue;
            assert_true(id <= total);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
        }
    }
    for (uint64_t id = 1; id <= total; id++)
        assert_int_equal(seen[id], 1);
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(ra[i].failures, 0);
        assert_true(ra[i].checks >= 3);
    }
    fdn_events_stats_t st;
    fdn_events_stats(sh.es, &st);
    assert_int_equal(st.count, total);
    /* each writer's correlation holds exactly its events, in id order */
    for (int w = 0; w < WRITERS; w++) {
        char corr[8];
        snprintf(corr, sizeof(corr), "c%d", w);
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_get_by_correlation(sh.es, corr, &l), 0);
        assert_int_equal(fdn_event_list_count(l), sh.n + extra);
        for (size_t i = 1; i < fdn_event_list_count(l); i++)
            assert_true(fdn_event_id(fdn_event_list_at(l, i)) >
                        fdn_event_id(fdn_event_list_at(l, i - 1)));
        fdn_event_list_free(l);
        free(wa[w].ids);
    }
    free(seen);
    /* the subscriber catches up: every id is delivered or counted as skipped */
    test_waiter_wait(&sink.last, (int64_t)total);
    uint64_t overflow = fdn_events_sub_overflow(sub);
    fdn_events_unsubscribe(sub);
    assert_int_equal(sink.bad, 0);
    assert_int_equal(sink.skipped, overflow);
    assert_int_equal(sink.delivered + sink.skipped, total);
    assert_true(sink.delivered > 0);
    test_waiter_destroy(&sink.last);
    fdn_events_destroy(sh.es);
}

/* Same writers and readers with a thread pruning to the newest 5000 events all along:
 * readers keep seeing gapless newest ranges and ordered type queries while memory is
 * reclaimed under them; at the end stored = held + pruned. */
static void *pruner(void *p)
{
    shared_t *sh = p;
    while (atomic_load_explicit(&sh->writers_done, memory_order_acquire) < WRITERS) {
        uint64_t n;
        if (fdn_events_enforce_retention(sh->es, &n) != 0)
            return p;
    }
    return NULL;
}

static void writers_readers_and_pruner(void **state)
{
    (void)state;
    shared_t sh;
    memset(&sh, 0, sizeof(sh));
    sh.n = (uint64_t)test_stress_iters(20000, 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.max_events = 5000;
    assert_int_equal(fdn_events_create(&sh.es, &o, NULL), 0);
    warg_t wa[WRITERS];
    rarg_t ra[READERS];
    start_writers_readers(&sh, wa, ra);
    test_threads_start(&sh.threads, pruner, &sh);
    test_threads_join(&sh.threads);
    assert_null(sh.threads.ret[WRITERS + READERS]); /* the pruner */
    uint64_t n;
    assert_int_equal(fdn_events_enforce_retention(sh.es, &n), 0);
    fdn_events_stats_t st;
    fdn_events_stats(sh.es, &st);
    assert_int_equal(st.count, 5000);
    assert_int_equal(st.count + st.events_pruned, st.events_stored);
    assert_int_equal(st.newest_id, st.events_stored);
    assert_int_equal(st.oldest_id, st.events_stored - 4999);
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(wa[i].failures, 0);
        free(wa[i].ids);
    }
    for (int i = 0; i < READERS; i++)
        assert_int_equal(ra[i].failures, 0);
    fdn_events_destroy(sh.es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writers_and_readers),
        cmocka_unit_test(writers_readers_and_pruner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
