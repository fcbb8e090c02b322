/* Failing-allocator sweep of include/fdn/events.h (tests/alloc/README.md): events (new, child,
 * copy, binary and JSON codecs), the store in memory and on SQLite (create, every store call,
 * reads, queries, retention), subscriptions. A failed store keeps nothing: the count and the
 * next id are unchanged and the next store gets the id the failed one would have had. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/breaker.h>
#include <fdn/error.h>
#include <fdn/events.h>

#include "alloc_sweep.h"

static const char data[] = "{\"k\":[1,2,{\"x\":\"a string long enough to grow buffers\"}]}";

static fdn_event_spec_t spec_of(const char *type, const char *corr)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.correlation_id = corr;
    s.data = data;
    s.data_len = sizeof(data) - 1;
    s.node = "node-a";
    return s;
}

static fdn_event_t *mkev(const char *type, const char *corr)
{
    fdn_event_spec_t s = spec_of(type, corr);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static void sweep_event_values(void **state)
{
    (void)state;
    fdn_event_spec_t s = spec_of("order.created", NULL); /* a fresh correlation id */
    SWEEP(sw, fdn_event_validate, 0)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_event_validate(&s, NULL));
    }
    SWEEP(sw, fdn_event_type_allowed, 0)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_event_type_allowed("function_entry", NULL));
    }
    SWEEP(sw, fdn_event_new, 0)
    {
        fdn_event_t *ev = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_new(&ev, &s, NULL))) {
            assert_null(ev);
        } else {
            assert_string_equal(fdn_event_type(ev), "order.created");
            fdn_event_free(ev);
        }
    }
    fdn_event_spec_t ps = spec_of("order.created", "corr-1");
    ps.id = 7; /* a parent has an id */
    fdn_event_t *parent = NULL;
    assert_int_equal(fdn_event_new(&parent, &ps, NULL), 0);
    SWEEP(sw, fdn_event_new_child, 0)
    {
        fdn_event_t *ev = NULL;
        fdn_event_spec_t c = spec_of("order.paid", NULL);
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_new_child(&ev, parent, &c, NULL))) {
            assert_null(ev);
        } else {
            assert_string_equal(fdn_event_correlation_id(ev), "corr-1");
            fdn_event_free(ev);
        }
    }
    SWEEP(sw, fdn_event_copy, 0)
    {
        fdn_event_t *ev = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_copy(&ev, parent))) {
            assert_null(ev);
        } else {
            assert_true(fdn_event_equal(ev, parent));
            fdn_event_free(ev);
        }
    }
    uint8_t *bin = NULL;
    size_t bin_len = 0;
    SWEEP(sw, fdn_event_encode, 0)
    {
        fdn_free(bin);
        bin = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_encode(parent, 0, &bin, &bin_len)))
            assert_null(bin);
    }
    SWEEP(sw, fdn_event_decode, 0)
    {
        fdn_event_t *ev = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_decode(&ev, bin, bin_len, NULL))) {
            assert_null(ev);
        } else {
            assert_true(fdn_event_equal(ev, parent));
            fdn_event_free(ev);
        }
    }
    fdn_free(bin);
    char *js = NULL;
    SWEEP(sw, fdn_event_to_json, 0)
    {
        fdn_free(js);
        js = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_to_json(parent, &js)))
            assert_null(js);
    }
    SWEEP(sw, fdn_event_from_json, 0)
    {
        fdn_event_t *ev = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_event_from_json(&ev, js, strlen(js), NULL))) {
            assert_null(ev);
        } else {
            assert_true(fdn_event_equal(ev, parent));
            fdn_event_free(ev);
        }
    }
    fdn_free(js);
    fdn_event_t *child = mkev("order.paid", "corr-1");
    const fdn_event_t *evs[2] = {parent, child};
    SWEEP(sw, fdn_event_correlation_chain, 0)
    {
        uint64_t ids[2];
        size_t n = 0;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_event_correlation_chain(evs, 2, "corr-1", ids, &n));
    }
    fdn_event_free(child);
    fdn_event_free(parent);
}

static void sweep_create(void **state)
{
    (void)state;
    SWEEP(sw, fdn_events_create, 0)
    {
        fdn_events_t *es = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_create(&es, NULL, NULL))) {
            assert_null(es);
        } else {
            fdn_event_t *ev = mkev("a.b", "c");
            uint64_t id = 0;
            assert_int_equal(fdn_events_store(es, ev, &id), 0);
            fdn_event_free(ev);
            fdn_events_destroy(es);
        }
    }
    char dir[] = "/tmp/fdn-alloc-events-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/events.db", dir);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    /* the store's writer thread allocates too, from the start: count every thread's */
    SWEEP(sw, fdn_events_create, SWEEP_ALL_THREADS)
    {
        fdn_events_t *es = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_create(&es, &o, NULL))) {
            assert_null(es);
        } else {
            fdn_events_destroy(es);
        }
        unlink(path);
    }
    rmdir(dir);
}

/* A failed store kept nothing: same count and next id as before. */
static void same_stats(fdn_events_t *es, const fdn_events_stats_t *before)
{
    fdn_events_stats_t after;
    assert_int_equal(fdn_events_stats(es, &after), 0);
    assert_int_equal(after.count, before->count);
    assert_int_equal(after.next_id, before->next_id);
}

/* Completions of fdn_events_store_async: counted, and posted, as they may run on the writer
 * thread after the call (and after a later synchronous store) returned. */
static atomic_int g_stored_ok;
static sem_t g_stored;

static void stored_cb(int rc, uint64_t first_id, size_t n, void *user)
{
    (void)first_id;
    (void)n;
    (void)user;
    if (rc == 0)
        atomic_fetch_add(&g_stored_ok, 1);
    sem_post(&g_stored);
}

static void sweep_store_calls(fdn_events_t *es, unsigned flags)
{
    fdn_event_t *evs[4] = {mkev("t.a", "c1"), mkev("t.b", "c1"), mkev("t.a", "c2"),
                           mkev("t.c", "c3")};
    SWEEP(sw, fdn_events_store, SWEEP_KEEP | flags)
    {
        fdn_events_stats_t before;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        uint64_t id = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_store(es, evs[0], &id)))
            same_stats(es, &before);
        else
            assert_int_equal(id, before.next_id);
    }
    SWEEP(sw, fdn_events_store_batch, SWEEP_KEEP | flags)
    {
        fdn_events_stats_t before;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        uint64_t ids[4] = {0};
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_store_batch(es, (const fdn_event_t *const *)evs, 4, ids)))
            same_stats(es, &before);
        else
            assert_int_equal(ids[3], before.next_id + 3);
    }
    SWEEP(sw, fdn_events_store_specs, SWEEP_KEEP | flags)
    {
        fdn_events_stats_t before;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        fdn_event_spec_t specs[2] = {spec_of("s.a", "c4"), spec_of("s.b", NULL)};
        uint64_t ids[2] = {0};
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_store_specs(es, specs, 2, ids, NULL)))
            same_stats(es, &before);
        else
            assert_int_equal(ids[1], before.next_id + 1);
    }
    SWEEP(sw, fdn_events_store_async, SWEEP_KEEP | SWEEP_NO_CALL_LEAK | flags)
    {
        fdn_events_stats_t before;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        uint64_t ids[2] = {0};
        int ok_before = atomic_load(&g_stored_ok);
        sweep_arm(&sw);
        int rc =
            fdn_events_store_async(es, (const fdn_event_t *const *)evs, 2, ids, stored_cb, NULL);
        if (sweep_failed(&sw, rc)) {
            same_stats(es, &before);
            /* no callback for a refused batch (a late one would show in the count below) */
            assert_int_equal(sem_trywait(&g_stored), -1);
        } else {
            assert_int_equal(ids[1], before.next_id + 1);
            assert_int_equal(sem_wait(&g_stored), 0); /* its completion */
            assert_int_equal(atomic_load(&g_stored_ok), ok_before + 1);
        }
    }
    assert_int_equal(sem_trywait(&g_stored), -1); /* one completion per accepted batch */
    for (int i = 0; i < 4; i++)
        fdn_event_free(evs[i]);
}

static void sweep_read_calls(fdn_events_t *es)
{
    SWEEP(sw, fdn_events_get, SWEEP_KEEP)
    {
        fdn_event_t *ev = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_get(es, 2, &ev)))
            assert_null(ev);
        else
            assert_string_equal(fdn_event_type(ev), "t.a");
        fdn_event_free(ev);
    }
    SWEEP(sw, fdn_events_query, SWEEP_KEEP)
    {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = "t.a";
        fdn_event_list_t *l = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_query(es, &q, &l))) {
            assert_null(l);
        } else {
            assert_true(fdn_event_list_count(l) >= 2);
            fdn_event_list_free(l);
        }
    }
    SWEEP(sw, fdn_events_query_memory, SWEEP_KEEP)
    {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = "t.a";
        fdn_event_list_t *l = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_query_memory(es, &q, &l))) {
            assert_null(l);
        } else {
            assert_true(fdn_event_list_count(l) >= 2);
            fdn_event_list_free(l);
        }
    }
    SWEEP(sw, fdn_events_query_same, SWEEP_KEEP)
    {
        /* a list equal to the result is named (nothing allocated), one that is not gives the
         * result */
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = "t.a";
        fdn_event_list_t *have = NULL, *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &have), 0);
        q.limit = 1;
        const fdn_event_list_t *prev[1] = {have};
        size_t same = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_query_same(es, &q, prev, 1, &l, &same))) {
            assert_null(l);
        } else {
            assert_int_equal(same, SIZE_MAX);
            assert_int_equal(fdn_event_list_count(l), 1);
            fdn_event_list_free(l);
        }
        q.limit = 100;
        l = NULL;
        assert_int_equal(fdn_events_query_same(es, &q, prev, 1, &l, &same), 0);
        assert_int_equal(same, 0);
        assert_null(l);
        fdn_event_list_free(have);
    }
    SWEEP(sw, fdn_events_get_by_correlation, SWEEP_KEEP)
    {
        fdn_event_list_t *l = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_get_by_correlation(es, "c1", &l))) {
            assert_null(l);
        } else {
            assert_true(fdn_event_list_count(l) >= 2);
            fdn_event_list_free(l);
        }
    }
    SWEEP(sw, fdn_events_stats, SWEEP_KEEP)
    {
        fdn_events_stats_t st;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_stats(es, &st));
    }
    SWEEP(sw, fdn_events_type_stats, SWEEP_KEEP)
    {
        fdn_events_type_stat_t ts[8];
        size_t n = 0;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_events_type_stats(es, ts, 8, &n)))
            assert_true(n >= 3);
    }
    SWEEP(sw, fdn_events_types_status, SWEEP_KEEP)
    {
        fdn_events_types_status_t st;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_types_status(es, &st));
    }
}

static void sweep_retention_calls(fdn_events_t *es)
{
    SWEEP(sw, fdn_events_set_max_events, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_max_events(es, 1000));
    }
    SWEEP(sw, fdn_events_set_max_age, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_max_age(es, INT64_C(3600000000000)));
    }
    SWEEP(sw, fdn_events_set_prune_interval, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_prune_interval(es, 0));
    }
    SWEEP(sw, fdn_events_set_max_results, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_max_results(es, 500));
    }
    SWEEP(sw, fdn_events_set_max_types, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_max_types(es, 1000));
    }
    assert_int_equal(fdn_events_set_max_events(es, 3), 0);
    SWEEP(sw, fdn_events_enforce_retention, SWEEP_KEEP)
    {
        fdn_events_stats_t before, after;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        uint64_t n = 0;
        sweep_arm(&sw);
        int rc = fdn_events_enforce_retention(es, &n);
        bool failed = sweep_failed(&sw, rc);
        assert_int_equal(fdn_events_stats(es, &after), 0);
        if (failed)
            assert_int_equal(after.count, before.count);
        else
            assert_true(after.count <= 3);
    }
    SWEEP(sw, fdn_events_prune_before, SWEEP_KEEP)
    {
        fdn_events_stats_t before, after;
        assert_int_equal(fdn_events_stats(es, &before), 0);
        uint64_t n = 0;
        sweep_arm(&sw);
        int rc = fdn_events_prune_before(es, INT64_MAX, &n);
        bool failed = sweep_failed(&sw, rc);
        assert_int_equal(fdn_events_stats(es, &after), 0);
        if (failed)
            assert_int_equal(after.count, before.count);
        else
            assert_int_equal(after.count, 0);
    }
}

static void sweep_memory_store(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    sweep_store_calls(es, 0);
    sweep_read_calls(es);
    sweep_retention_calls(es);
    fdn_events_destroy(es);
    assert_int_equal(sweep_live(), base);
}

static void sweep_durable_store(void **state)
{
    (void)state;
    long base = sweep_live();
    char dir[] = "/tmp/fdn-alloc-events-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/events.db", dir);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    /* the writer thread frees what the caller's call allocated, at its own pace */
    sweep_store_calls(es, SWEEP_NO_CALL_LEAK);
    sweep_read_calls(es);
    /* the durable tier's retention and status (a failed call changes nothing) */
    SWEEP(sw, fdn_events_set_durable_retention, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_events_set_durable_retention(es, 100000, 0));
    }
    SWEEP(sw, fdn_events_durable_status, SWEEP_KEEP)
    {
        fdn_events_durable_status_t ds;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_events_durable_status(es, &ds))) {
            assert_true(ds.enabled);
            assert_int_equal(ds.max_events, 100000);
        }
    }
    fdn_events_backend_status_t bs;
    NOALLOC_SWEEP(fdn_events_backend_status, fdn_events_backend_status(es, &bs));
    assert_int_equal(bs.backend, FDN_EVENTS_BACKEND_SQLITE);
    /* the correlation index's status: atomics the writer publishes, nothing allocated */
    fdn_events_index_status_t ix = FDN_EVENTS_INDEX_STATUS_INIT;
    NOALLOC_SWEEP(fdn_events_index_status, fdn_events_index_status(es, &ix));
    assert_true(ix.has_index);
    assert_true(ix.current);
    /* a breaker around a SQLite store: nothing to guard (0, nothing kept) */
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create(&b, "alloc.events", NULL), 0);
    NOALLOC_SWEEP(fdn_events_set_breaker, fdn_events_set_breaker(es, b));
    /* the calling thread's cut descriptor: a thread-local store, nothing allocated */
    int prev_cut = 0;
    NOALLOC_SWEEP(fdn_events_set_thread_cut_fd, prev_cut = fdn_events_set_thread_cut_fd(0));
    assert_int_equal(prev_cut, -1);
    assert_int_equal(fdn_events_set_thread_cut_fd(-1), 0);
    NOALLOC_SWEEP(fdn_events_destroy, fdn_events_destroy(es)); /* teardown allocates nothing */
    NOALLOC_SWEEP(fdn_breaker_destroy, fdn_breaker_destroy(b));
    unlink(path);
    rmdir(dir);
    assert_int_equal(sweep_live(), base);
}

static void sub_cb(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    (void)ev;
    (void)skipped;
    (void)user;
}

static void sweep_subscriptions(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    fdn_event_t *ev = mkev("sub.a", "c");
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    SWEEP(sw, fdn_events_subscribe, SWEEP_NO_CALL_LEAK)
    {
        fdn_events_sub_t *sub = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_subscribe(es, &so, sub_cb, NULL, &sub)))
            assert_null(sub);
        else
            fdn_events_unsubscribe(sub);
    }
    SWEEP(sw, fdn_events_subscribe_fd, 0)
    {
        fdn_events_sub_t *sub = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_subscribe_fd(es, &so, &sub)))
            assert_null(sub);
        else
            fdn_events_unsubscribe(sub);
    }
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), 0);
    /* every pass stores one more event; a failed read loses none of the pending ones */
    size_t pending = 1;
    SWEEP(sw, fdn_events_sub_read, SWEEP_KEEP)
    {
        assert_int_equal(fdn_events_store(es, ev, &id), 0);
        pending++;
        fdn_event_list_t *l = NULL;
        uint64_t skipped = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_events_sub_read(sub, 64, &l, &skipped))) {
            assert_null(l);
        } else {
            assert_int_equal(fdn_event_list_count(l), pending);
            assert_int_equal(skipped, 0);
            pending = 0;
            fdn_event_list_free(l);
        }
    }
    fdn_events_unsubscribe(sub);
    fdn_event_free(ev);
    fdn_events_destroy(es);
    assert_int_equal(sweep_live(), base);
}

/* An event's and a list's accessors allocate nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_event_t *ev = mkev("acc.a", "c");
    size_t len = 0;
    NOALLOC_SWEEP(fdn_event_id, fdn_event_id(ev));
    NOALLOC_SWEEP(fdn_event_type, fdn_event_type(ev));
    NOALLOC_SWEEP(fdn_event_timestamp, fdn_event_timestamp(ev));
    NOALLOC_SWEEP(fdn_event_wall_time, fdn_event_wall_time(ev));
    NOALLOC_SWEEP(fdn_event_node, fdn_event_node(ev));
    NOALLOC_SWEEP(fdn_event_pid, fdn_event_pid(ev));
    NOALLOC_SWEEP(fdn_event_tid, fdn_event_tid(ev));
    NOALLOC_SWEEP(fdn_event_correlation_id, fdn_event_correlation_id(ev));
    NOALLOC_SWEEP(fdn_event_parent_id, fdn_event_parent_id(ev));
    NOALLOC_SWEEP(fdn_event_content_type, fdn_event_content_type(ev));
    NOALLOC_SWEEP(fdn_event_data, fdn_event_data(ev, &len));
    NOALLOC_SWEEP(fdn_event_equal, fdn_event_equal(ev, ev));
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, "c", &l), 0);
    NOALLOC_SWEEP(fdn_event_list_count, fdn_event_list_count(l));
    NOALLOC_SWEEP(fdn_event_list_at, fdn_event_list_at(l, 0));
    NOALLOC_SWEEP(fdn_event_list_free, fdn_event_list_free(l));
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), 0);
    NOALLOC_SWEEP(fdn_events_sub_fd, fdn_events_sub_fd(sub));
    NOALLOC_SWEEP(fdn_events_sub_overflow, fdn_events_sub_overflow(sub));
    NOALLOC_SWEEP(fdn_events_unsubscribe, fdn_events_unsubscribe(sub));
    NOALLOC_SWEEP(fdn_event_free, fdn_event_free(ev));
    fdn_events_destroy(es);
}

int main(void)
{
    sweep_install();
    sem_init(&g_stored, 0, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_event_values),  cmocka_unit_test(sweep_create),
        cmocka_unit_test(sweep_memory_store),  cmocka_unit_test(sweep_durable_store),
        cmocka_unit_test(sweep_subscriptions), cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
