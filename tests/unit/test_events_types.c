/* Unit tests: the event store's per-type state is released with a type's last event, and the
 * cap on live types (fdn_events_set_max_types) refuses a new type with FDN_ENOSPC, counted in
 * fdn_events_types_status (issue 21: unique types grew memory without bound). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/events.h>

static fdn_event_t *mkev(const char *type)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.flags |= FDN_EVENT_NO_CORRELATION;
    s.data = "{\"k\":1}";
    s.data_len = strlen(s.data);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static int store(fdn_events_t *es, const char *type, uint64_t *id)
{
    fdn_event_t *ev = mkev(type);
    int rc = fdn_events_store(es, ev, id);
    fdn_event_free(ev);
    return rc;
}

static uint64_t put(fdn_events_t *es, const char *type)
{
    uint64_t id = 0;
    assert_int_equal(store(es, type, &id), 0);
    return id;
}

static int store2(fdn_events_t *es, const char *t1, const char *t2)
{
    fdn_event_t *a = mkev(t1), *b = mkev(t2);
    const fdn_event_t *v[2] = {a, b};
    int rc = fdn_events_store_batch(es, v, 2, NULL);
    fdn_event_free(a);
    fdn_event_free(b);
    return rc;
}

static fdn_events_t *mem_store(uint64_t max_events)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.max_events = max_events; /* no prune interval: retention runs only when asked */
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    return es;
}

static fdn_events_types_status_t tstatus(fdn_events_t *es)
{
    fdn_events_types_status_t st;
    assert_int_equal(fdn_events_types_status(es, &st), 0);
    assert_int_equal(st.version, 1);
    return st;
}

static size_t count_of_type(fdn_events_t *es, const char *type, uint64_t *first_id)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = type;
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    size_t n = fdn_event_list_count(l);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fdn_event_type(fdn_event_list_at(l, i)), type);
    if (first_id != NULL)
        *first_id = n > 0 ? fdn_event_id(fdn_event_list_at(l, 0)) : 0;
    fdn_event_list_free(l);
    return n;
}

/* A type is held while one of its events is; its memory goes with the last one, and the
 * name can be stored again afterwards. */
static void type_released_after_prune_and_restored(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(0);
    assert_int_equal(tstatus(es).max_types, FDN_EVENTS_MAX_TYPES_DEFAULT);
    put(es, "keep");
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "gone.%d", i);
        put(es, name);
    }
    uint64_t last_keep = put(es, "keep");
    fdn_events_stats_t full, st;
    assert_int_equal(fdn_events_stats(es, &full), 0);
    assert_int_equal(full.types, 501);
    assert_int_equal(tstatus(es).live, 501);
    /* keep only the newest event: every gone.* type loses its last one */
    uint64_t n = 0;
    assert_int_equal(fdn_events_set_max_events(es, 1), 0);
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 501);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 1);
    assert_int_equal(st.types, 1);
    fdn_events_types_status_t ts = tstatus(es);
    assert_int_equal(ts.live, 1);
    assert_int_equal(ts.released, 500);
    assert_int_equal(ts.refused_events, 0);
    /* 500 types held at least their entry, a posting chunk and its directory each */
    assert_true(full.bytes_allocated - st.bytes_allocated >= 500 * 64);
    fdn_events_type_stat_t tst[4];
    size_t nt = 0;
    assert_int_equal(fdn_events_type_stats(es, tst, 4, &nt), 0);
    assert_int_equal(nt, 1);
    assert_string_equal(tst[0].type, "keep");
    assert_int_equal(tst[0].count, 1);
    uint64_t first = 0;
    assert_int_equal(count_of_type(es, "keep", &first), 1);
    assert_int_equal(first, last_keep);
    assert_int_equal(count_of_type(es, "gone.7", NULL), 0);
    /* a released name works again, as a new type */
    assert_int_equal(fdn_events_set_max_events(es, 0), 0);
    uint64_t again = put(es, "gone.7");
    assert_int_equal(again, last_keep + 1);
    assert_int_equal(count_of_type(es, "gone.7", &first), 1);
    assert_int_equal(first, again);
    assert_int_equal(tstatus(es).live, 2);
    fdn_events_destroy(es);
}

/* A type's posting list grows from a small first chunk through copies: queries by type see
 * every id in order while it grows, across chunks, and after a prune inside the first ones. */
static void posting_list_grows_and_prunes(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(0);
    uint64_t ids[2600];
    size_t k = 0;
    for (int i = 0; i < 5200; i++) {
        uint64_t id = put(es, i % 2 ? "odd" : "even");
        if (i % 2 == 0)
            ids[k++] = id;
        if (i == 9 || i == 41 || i == 2100) { /* mid-growth: the list so far, in order */
            fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
            q.type = "even";
            q.limit = 1000;
            q.descending = true;
            fdn_event_list_t *l = NULL;
            assert_int_equal(fdn_events_query(es, &q, &l), 0);
            size_t n = fdn_event_list_count(l);
            assert_int_equal(n, k < 1000 ? k : 1000);
            for (size_t j = 0; j < n; j++)
                assert_int_equal(fdn_event_id(fdn_event_list_at(l, j)), ids[k - 1 - j]);
            fdn_event_list_free(l);
        }
    }
    /* prune 1500 events (750 of "even": inside its first chunk) */
    assert_int_equal(fdn_events_set_max_events(es, 5200 - 1500), 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 1500);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "even";
    q.limit = 1000;
    size_t seen = 750;
    for (;;) {
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
        size_t c = fdn_event_list_count(l);
        for (size_t j = 0; j < c; j++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, j)), ids[seen + j]);
        seen += c;
        if (c > 0)
            q.after_id = fdn_event_id(fdn_event_list_at(l, c - 1));
        fdn_event_list_free(l);
        if (c < 1000)
            break;
    }
    assert_int_equal(seen, 2600);
    fdn_events_destroy(es);
}

/* Past the cap a new type is refused (FDN_ENOSPC, counted); held types are still accepted; a
 * batch is refused whole and a type it had added is taken out again. */
static void cap_refuses_new_types(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(0);
    assert_int_equal(fdn_events_set_max_types(NULL, 1), FDN_EINVAL);
    assert_int_equal(fdn_events_types_status(es, NULL), FDN_EINVAL);
    assert_int_equal(fdn_events_set_max_types(es, 3), 0);
    put(es, "a");
    put(es, "b");
    fdn_events_stats_t st;
    /* batch [c, d]: c fits (3rd type), d does not: nothing is stored, c is gone again */
    assert_int_equal(store2(es, "c", "d"), FDN_ENOSPC);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 2);
    assert_int_equal(st.next_id, 3);
    assert_int_equal(st.types, 2);
    assert_int_equal(tstatus(es).live, 2);
    assert_int_equal(tstatus(es).refused_events, 2);
    assert_int_equal(count_of_type(es, "c", NULL), 0);
    uint64_t id = 0;
    assert_int_equal(store(es, "c", &id), 0);
    assert_int_equal(id, 3);
    /* at the cap: a new type is refused, held ones are not */
    assert_int_equal(store(es, "d", &id), FDN_ENOSPC);
    assert_int_equal(store2(es, "a", "e"), FDN_ENOSPC);
    assert_int_equal(store2(es, "a", "c"), 0);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 5);
    fdn_events_types_status_t ts = tstatus(es);
    assert_int_equal(ts.live, 3);
    assert_int_equal(ts.max_types, 3);
    assert_int_equal(ts.refused_events, 2 + 1 + 2);
    /* the specs call says why, naming the config key and the cap */
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "z";
    sp.flags |= FDN_EVENT_NO_CORRELATION;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_events_store_specs(es, &sp, 1, NULL, &err), FDN_ENOSPC);
    assert_int_equal(err.code, FDN_ENOSPC);
    assert_non_null(strstr(err.message, "storage.hot.max_types is 3"));
    assert_non_null(strstr(err.message, "3 distinct event types held"));
    /* no cap */
    assert_int_equal(fdn_events_set_max_types(es, 0), 0);
    assert_int_equal(store(es, "z", &id), 0);
    assert_int_equal(tstatus(es).live, 4);
    /* a cap below the types held refuses only new ones */
    assert_int_equal(fdn_events_set_max_types(es, 2), 0);
    assert_int_equal(store(es, "a", &id), 0);
    assert_int_equal(store(es, "y", &id), FDN_ENOSPC);
    fdn_events_destroy(es);
}

/* At the cap, a store whose retention is due prunes first and is then accepted. */
static void cap_runs_due_retention(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(2);
    assert_int_equal(fdn_events_set_max_types(es, 3), 0);
    put(es, "a");
    put(es, "b");
    put(es, "c"); /* 3 events > max_events 2: retention due, not run (no interval) */
    uint64_t id = 0;
    assert_int_equal(store(es, "d", &id), 0); /* "a" pruned, its type released */
    assert_int_equal(id, 4);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, 2);
    assert_int_equal(st.events_pruned, 1);
    fdn_events_types_status_t ts = tstatus(es);
    assert_int_equal(ts.live, 3);
    assert_int_equal(ts.refused_events, 0);
    assert_int_equal(ts.released, 1);
    /* no retention to run (max_events 0): the new type is refused */
    assert_int_equal(fdn_events_set_max_events(es, 0), 0);
    assert_int_equal(store(es, "e", &id), FDN_ENOSPC);
    assert_int_equal(tstatus(es).refused_events, 1);
    fdn_events_destroy(es);
}

/* Soak-like: many unique types with a small max_events; the cap makes the store run its
 * retention, so every store is accepted while live types, the type table and the store's
 * memory stay bounded (before: every type stayed, 8 KiB of index each). */
static void unique_types_stay_bounded(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(100);
    assert_int_equal(fdn_events_set_max_types(es, 200), 0);
    char name[32];
    uint64_t peak_live = 0, peak_slots = 0, peak_bytes_late = 0, peak_bytes_early = 0;
    const int total = 20000;
    for (int i = 0; i < total; i++) {
        snprintf(name, sizeof name, "u.%d", i);
        uint64_t id = 0;
        assert_int_equal(store(es, name, &id), 0);
        if (i % 50 != 0)
            continue;
        fdn_events_types_status_t ts = tstatus(es);
        fdn_events_stats_t st;
        assert_int_equal(fdn_events_stats(es, &st), 0);
        assert_int_equal(ts.live, st.types);
        peak_live = ts.live > peak_live ? ts.live : peak_live;
        peak_slots = ts.table_slots > peak_slots ? ts.table_slots : peak_slots;
        uint64_t *pb = i < total / 4 ? &peak_bytes_early : &peak_bytes_late;
        *pb = st.bytes_allocated > *pb ? st.bytes_allocated : *pb;
    }
    fdn_events_types_status_t ts = tstatus(es);
    assert_true(peak_live <= 200);
    assert_true(peak_slots <= 8 * (200 + 1));
    assert_int_equal(ts.refused_events, 0);
    assert_true(ts.released >= (uint64_t)total - 200);
    /* flat once the cap is reached: the last three quarters hold no more than the first
     * (within 10 %: segment boundaries and table sizes vary a little) */
    assert_true(peak_bytes_late <= peak_bytes_early + peak_bytes_early / 10);
    fdn_events_destroy(es);
}

static fdn_event_t *mkev_named(const char *type, const char *node, const char *cid, int64_t ts)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.timestamp_ns = ts;
    s.node = node;
    s.correlation_id = cid;
    s.data = "{}";
    s.data_len = 2;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static uint64_t bytes_allocated(fdn_events_t *es)
{
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    return st.bytes_allocated;
}

/* A batch the type cap refuses (a client's, over HTTP too) keeps none of the names of its
 * events: before, the correlation ids and node names of the events before the refused one
 * were interned and kept for good (no event held them, so no prune freed them). */
static void refused_batches_keep_no_names(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(0);
    assert_int_equal(fdn_events_set_max_types(es, 1), 0);
    put(es, "a");
    uint64_t b0 = bytes_allocated(es);
    char cid[40], node[40];
    for (int i = 0; i < 5000; i++) {
        snprintf(cid, sizeof cid, "corr-%d", i);
        snprintf(node, sizeof node, "node-%d", i);
        fdn_event_t *a = mkev_named("a", node, cid, 0), *b = mkev_named("b", node, cid, 0);
        const fdn_event_t *v[2] = {a, b};
        assert_int_equal(fdn_events_store_batch(es, v, 2, NULL), FDN_ENOSPC);
        fdn_event_free(a);
        fdn_event_free(b);
    }
    assert_int_equal(tstatus(es).refused_events, 10000);
    uint64_t b1 = bytes_allocated(es);
    uint64_t pruned = 0;
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &pruned), 0);
    assert_int_equal(pruned, 1);
    uint64_t b2 = bytes_allocated(es);
    /* 5000 names of each kind held ~1 MB before */
    assert_true(b1 <= b0 + 16 * 1024);
    assert_true(b2 <= b0);
    /* a refused correlation id is unknown afterwards */
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, "corr-7", &l), 0);
    assert_int_equal(fdn_event_list_count(l), 0);
    fdn_event_list_free(l);
    fdn_events_destroy(es);
}

/* Two rounds of 5000 events, each round then pruned but for its newest event: node names
 * unique per event (unique) or one name throughout; the memory the store holds then. */
static uint64_t node_rounds(bool unique)
{
    fdn_events_t *es = mem_store(0);
    char node[40];
    int64_t ts = 1000; /* timestamps chosen: no ties */
    uint64_t last_id = 0, pruned = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(node, sizeof node, "node-%d-%d", round, unique ? i : 4999);
            fdn_event_t *ev = mkev_named("a", node, NULL, ts++);
            assert_int_equal(fdn_events_store(es, ev, &last_id), 0);
            fdn_event_free(ev);
        }
        assert_int_equal(fdn_events_prune_before(es, ts - 1, &pruned), 0);
        assert_int_equal(pruned, round == 0 ? 4999 : 5000);
    }
    uint64_t b = bytes_allocated(es);
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, last_id, &got), 0);
    assert_string_equal(fdn_event_node(got), "node-1-4999");
    fdn_event_free(got);
    /* a released name is interned again when an event names it */
    fdn_event_t *ev = mkev_named("a", "node-0-3", NULL, 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_free(ev);
    assert_int_equal(fdn_events_get(es, id, &got), 0);
    assert_string_equal(fdn_event_node(got), "node-0-3");
    fdn_event_free(got);
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &pruned), 0);
    assert_int_equal(pruned, 2);
    fdn_events_destroy(es);
    return b;
}

/* Node names are client input (spec.node): each is released with the last event naming it,
 * as correlation ids are. Before, every node name stayed for the store's life (~150 bytes
 * each: 10 000 names held 1.5 MB more than one name); now only the name table's slots, sized
 * for the most names held at once, differ. */
static void node_names_released_with_their_events(void **state)
{
    (void)state;
    uint64_t one = node_rounds(false), many = node_rounds(true);
    assert_true(many <= one + 384 * 1024);
}

/* After a burst of names all pruned, the name tables shrink again: 50 000 node names and
 * correlation ids, every event pruned, leave the store's memory where one name left it
 * (before: the tables kept their slots, 8 bytes each for four times the names, until an
 * insert rebuilt them: 200 000 node names kept 8 MB). */
static void name_tables_shrink_after_a_burst(void **state)
{
    (void)state;
    uint64_t b[2];
    for (int unique = 0; unique < 2; unique++) {
        fdn_events_t *es = mem_store(0);
        char name[40];
        for (int i = 0; i < 50000; i++) {
            snprintf(name, sizeof name, "n-%d", unique ? i : 0);
            fdn_event_t *ev = mkev_named("a", name, name, 1000 + i);
            assert_int_equal(fdn_events_store(es, ev, NULL), 0);
            fdn_event_free(ev);
        }
        uint64_t pruned = 0;
        assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &pruned), 0);
        assert_int_equal(pruned, 50000);
        b[unique] = bytes_allocated(es);
        fdn_events_destroy(es);
    }
    assert_true(b[1] <= b[0] + 16 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(type_released_after_prune_and_restored),
        cmocka_unit_test(posting_list_grows_and_prunes),
        cmocka_unit_test(cap_refuses_new_types),
        cmocka_unit_test(cap_runs_due_retention),
        cmocka_unit_test(unique_types_stay_bounded),
        cmocka_unit_test(refused_batches_keep_no_names),
        cmocka_unit_test(node_names_released_with_their_events),
        cmocka_unit_test(name_tables_shrink_after_a_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
