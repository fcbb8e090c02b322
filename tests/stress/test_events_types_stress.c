/* Stress: types are released and re-added while readers use them. Two writers store events
 * (single and in pairs) over 200 type names with max_events 32 and a cap of 48 live types, so
 * types are refused, taken back out of failed batches, released by prunes (a pruner thread
 * and the writers' own retention runs at the cap) and interned again, all the time. Two
 * readers query by type, list type statistics and read the status meanwhile: every event a
 * type query returns has that type, ids ascend, listed names are real names. Run under TSan
 * and ASan (a freed entry, chunk or table read by a reader fails there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>

#include "stress.h"
#include "threads.h"

#define WRITERS   2
#define READERS   2
#define NAMES     200
#define MAX_TYPES 48

typedef struct shared {
    fdn_events_t *es;
    test_threads_t threads;
    _Atomic int writers_done;
    long iters;
    uint64_t seed;
} shared_t;

typedef struct targ {
    shared_t *sh;
    int k;
    int failures;
    long refused;
} targ_t;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static fdn_event_t *mkev(int name)
{
    char type[16];
    snprintf(type, sizeof type, "t%d", name);
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.flags |= FDN_EVENT_NO_CORRELATION | FDN_EVENT_TRUSTED_JSON;
    s.data = "1";
    s.data_len = 1;
    fdn_event_t *ev = NULL;
    return fdn_event_new(&ev, &s, NULL) == 0 ? ev : NULL;
}

static void *writer(void *p)
{
    targ_t *a = p;
    uint64_t r = a->sh->seed + (uint64_t)a->k * 0x9e3779b97f4a7c15ull;
    test_threads_gate(&a->sh->threads);
    for (long i = 0; i < a->sh->iters; i++) {
        fdn_event_t *e1 = mkev((int)(next_rand(&r) % NAMES));
        fdn_event_t *e2 = mkev((int)(next_rand(&r) % NAMES));
        if (e1 == NULL || e2 == NULL) {
            a->failures++;
        } else {
            int rc;
            bool batch = i % 3 == 0;
            if (batch) {
                const fdn_event_t *v[2] = {e1, e2};
                rc = fdn_events_store_batch(a->sh->es, v, 2, NULL);
            } else {
                rc = fdn_events_store(a->sh->es, e1, NULL);
            }
            if (rc == FDN_ENOSPC)
                a->refused += batch ? 2 : 1; /* the status counts events */
            else if (rc != 0)
                a->failures++;
        }
        fdn_event_free(e1);
        fdn_event_free(e2);
    }
    atomic_fetch_add(&a->sh->writers_done, 1);
    return NULL;
}

static void *pruner(void *p)
{
    targ_t *a = p;
    test_threads_gate(&a->sh->threads);
    while (atomic_load(&a->sh->writers_done) < WRITERS)
        if (fdn_events_enforce_retention(a->sh->es, NULL) != 0)
            a->failures++;
    return NULL;
}

static void *reader(void *p)
{
    targ_t *a = p;
    uint64_t r = a->sh->seed ^ (0x5bd1e995ull * (uint64_t)(a->k + 1));
    fdn_events_type_stat_t ts[64];
    test_threads_gate(&a->sh->threads);
    while (atomic_load(&a->sh->writers_done) < WRITERS) {
        char type[16];
        snprintf(type, sizeof type, "t%d", (int)(next_rand(&r) % NAMES));
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = type;
        q.limit = 100;
        q.descending = (next_rand(&r) & 1) != 0;
        fdn_event_list_t *l = NULL;
        if (fdn_events_query(a->sh->es, &q, &l) != 0) {
            a->failures++;
            continue;
        }
        uint64_t prev = 0;
        for (size_t i = 0; i < fdn_event_list_count(l); i++) {
            const fdn_event_t *ev = fdn_event_list_at(l, i);
            uint64_t id = fdn_event_id(ev);
            if (strcmp(fdn_event_type(ev), type) != 0 ||
                (i > 0 && (q.descending ? id >= prev : id <= prev)))
                a->failures++;
            prev = id;
        }
        fdn_event_list_free(l);
        size_t nt = 0;
        if (fdn_events_type_stats(a->sh->es, ts, 64, &nt) != 0)
            a->failures++;
        for (size_t i = 0; i < nt && i < 64; i++)
            if (ts[i].type[0] != 't' || strtol(ts[i].type + 1, NULL, 10) >= NAMES)
                a->failures++;
        fdn_events_types_status_t st;
        if (fdn_events_types_status(a->sh->es, &st) != 0 || st.max_types != MAX_TYPES)
            a->failures++;
    }
    return NULL;
}

static void types_released_under_readers(void **state)
{
    (void)state;
    shared_t sh = {0};
    sh.iters = test_stress_iters(20000, 0);
    sh.seed = test_seed("types_released_under_readers");
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.max_events = 32;
    assert_int_equal(fdn_events_create(&sh.es, &o, NULL), 0);
    assert_int_equal(fdn_events_set_max_types(sh.es, MAX_TYPES), 0);
    targ_t args[WRITERS + READERS + 1];
    memset(args, 0, sizeof args);
    test_threads_init(&sh.threads, WRITERS + READERS + 1);
    for (int i = 0; i < WRITERS + READERS + 1; i++) {
        args[i].sh = &sh;
        args[i].k = i;
        test_threads_start(&sh.threads,
                           i < WRITERS             ? writer
                           : i < WRITERS + READERS ? reader
                                                   : pruner,
                           &args[i]);
    }
    test_threads_join(&sh.threads);
    for (int i = 0; i < WRITERS + READERS + 1; i++)
        assert_int_equal(args[i].failures, 0);
    fdn_events_types_status_t st;
    assert_int_equal(fdn_events_types_status(sh.es, &st), 0);
    assert_true(st.live <= MAX_TYPES);
    assert_true(st.released > 0);
    assert_true(st.table_slots <= 8 * (MAX_TYPES + 1));
    assert_int_equal(st.refused_events, (uint64_t)(args[0].refused + args[1].refused));
    fdn_events_stats_t es;
    assert_int_equal(fdn_events_stats(sh.es, &es), 0);
    assert_int_equal(es.types, st.live);
    fdn_events_destroy(sh.es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(types_released_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
