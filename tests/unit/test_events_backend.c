/* Unit tests: the event store's durable-tier table (storage/event_backend.h) as SQLite fills it
 * (write-behind: ids from the memory tier; reads of what memory evicted, prune, stats), the store
 * through it (a file written by one store is reloaded by the next), the version rules of
 * fdn_events_opts_t and fdn_events_sub_opts_t, and from-position subscriptions, which never skip
 * for backlog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fdn/events.h>

#include "storage/event_backend.h"
#include "tmpdir.h"

static fdn_event_t *make(unsigned i)
{
    char data[32];
    snprintf(data, sizeof(data), "{\"i\":%u}", i);
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = i % 2 ? "odd" : "even";
    sp.data = data;
    sp.data_len = strlen(data);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    return ev;
}

static int count_cb(fdn_event_t *ev, void *user)
{
    uint64_t *last = user;
    assert_true(fdn_event_id(ev) > *last); /* id order */
    *last = fdn_event_id(ev);
    fdn_event_free(ev);
    return 0;
}

static void sqlite_fills_the_table_as_write_behind(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn_evb_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/events.db", dir);
    fdn__evb_t b = {NULL, NULL};
    assert_false(fdn__evb_open(&b));
    assert_int_equal(fdn__evb_sqlite_open(&b, path, true, true, NULL), 0);
    assert_true(fdn__evb_open(&b));
    assert_int_equal(b.ops->version, FDN__EVB_VERSION);
    assert_string_equal(b.ops->name, "sqlite");
    assert_false(b.ops->assigns_ids);
    assert_non_null(b.ops->load);
    assert_non_null(b.ops->append);
    assert_non_null(b.ops->get); /* reads of what the memory tier evicted */
    assert_non_null(b.ops->query);
    assert_non_null(b.ops->correlation);
    assert_non_null(b.ops->prune);
    assert_non_null(b.ops->stats);
    assert_non_null(b.ops->load_newest);
    assert_null(b.ops->read_after);
    assert_null(b.ops->wait);

    /* an append carries the ids the memory tier gave; a prune rides along */
    fdn_event_t *evs[3];
    for (unsigned i = 0; i < 3; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = "t";
        sp.id = 10 + i;
        assert_int_equal(fdn_event_new(&evs[i], &sp, NULL), 0);
    }
    fdn__evb_batch_t batch = {.evs = (const fdn_event_t *const *)evs, .n = 3, .next_id = 13};
    assert_int_equal(b.ops->append(b.state, &batch, NULL), 0);
    fdn__evb_batch_t prune = {.prune_below = 11, .next_id = 13};
    assert_int_equal(b.ops->append(b.state, &prune, NULL), 0);
    for (unsigned i = 0; i < 3; i++)
        fdn_event_free(evs[i]);
    fdn__evb_close(&b);
    assert_false(fdn__evb_open(&b));
    fdn__evb_close(&b); /* closing a closed one is fine */

    assert_int_equal(fdn__evb_sqlite_open(&b, path, true, true, NULL), 0);
    uint64_t last = 0, next = 0;
    assert_int_equal(b.ops->load(b.state, count_cb, &last, &next, NULL), 0);
    assert_int_equal(last, 12); /* 10 pruned, 11 and 12 kept */
    assert_int_equal(next, 13);
    /* the newest one only: next_id still past every row */
    last = 0;
    next = 0;
    assert_int_equal(b.ops->load_newest(b.state, 1, count_cb, &last, &next, NULL), 0);
    assert_int_equal(last, 12);
    assert_int_equal(next, 13);
    /* reads on the second connection */
    fdn_event_t *got = NULL;
    assert_int_equal(b.ops->get(b.state, 11, &got, NULL), 0);
    assert_int_equal(fdn_event_id(got), 11);
    fdn_event_free(got);
    assert_int_equal(b.ops->get(b.state, 10, &got, NULL), FDN_ENOENT);
    fdn__evb_query_t bq = {
        .wall_start = INT64_MIN, .wall_end = INT64_MAX, .limit = 10, .descending = true};
    fdn_event_list_t *bl = NULL;
    assert_int_equal(b.ops->query(b.state, &bq, &bl, NULL), 0);
    assert_int_equal(fdn_event_list_count(bl), 2);
    assert_int_equal(fdn_event_id(fdn_event_list_at(bl, 0)), 12);
    fdn_event_list_free(bl);
    fdn__evb_stats_t bs = {0};
    assert_int_equal(b.ops->stats(b.state, &bs, NULL), 0);
    assert_int_equal(bs.count, 2);
    assert_int_equal(bs.oldest, 11);
    assert_int_equal(bs.newest, 12);
    uint64_t pruned = 0;
    assert_int_equal(b.ops->prune(b.state, 12, &pruned, NULL), 0);
    assert_int_equal(pruned, 1);
    assert_int_equal(b.ops->prune(b.state, 12, &pruned, NULL), 0); /* idempotent */
    assert_int_equal(pruned, 0);
    fdn__evb_close(&b);

    /* the store through the table: reloaded by the next store */
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    assert_int_equal(o.version, FDN_EVENTS_OPTS_VERSION);
    assert_int_equal(o.backend, FDN_EVENTS_BACKEND_SQLITE);
    snprintf(path, sizeof(path), "%s/store.db", dir);
    o.durable_path = path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    for (unsigned i = 0; i < 5; i++) {
        fdn_event_t *ev = make(i);
        uint64_t id = 0;
        assert_int_equal(fdn_events_store(es, ev, &id), 0);
        assert_int_equal(id, i + 1);
        fdn_event_free(ev);
    }
    fdn_events_destroy(es);
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 5);
    assert_int_equal(st.next_id, 6);
    fdn_events_destroy(es);
    unlink(path);
    snprintf(path, sizeof(path), "%s/events.db", dir);
    unlink(path);
    char side[80];
    const char *sfx[] = {"-wal", "-shm"};
    for (int k = 0; k < 2; k++) {
        snprintf(side, sizeof(side), "%s/events.db%s", dir, sfx[k]);
        unlink(side);
        snprintf(side, sizeof(side), "%s/store.db%s", dir, sfx[k]);
        unlink(side);
    }
    rmdir(dir);
}

static void option_versions(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.version = 1; /* version 1: the backend fields are not read */
    o.backend = (fdn_events_backend_kind_t)42;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_destroy(es);
    o.version = 2;
    assert_int_equal(fdn_events_create(&es, &o, NULL), FDN_EINVAL);
    o.backend = FDN_EVENTS_BACKEND_SQLITE;
    o.version = FDN_EVENTS_OPTS_VERSION + 1;
    assert_int_equal(fdn_events_create(&es, &o, NULL), FDN_EINVAL);
    o.version = 0;
    assert_int_equal(fdn_events_create(&es, &o, NULL), FDN_EINVAL);

    o = (fdn_events_opts_t)FDN_EVENTS_OPTS_INIT;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    assert_int_equal(so.version, FDN_EVENTS_SUB_OPTS_VERSION);
    assert_false(so.from_position);
    fdn_events_sub_t *sub = NULL;
    so.version = FDN_EVENTS_SUB_OPTS_VERSION + 1;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), FDN_EINVAL);
    so.version = 0;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), FDN_EINVAL);
    so.version = 1;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), 0);
    fdn_events_unsubscribe(sub);
    fdn_events_destroy(es);
}

/* A subscriber 100 events behind with a backlog limit of 8: the version-1 one skips to the
 * last 8 and counts the skip; a from-position one gets all 100, in order, none skipped. */
static void from_position_never_skips_for_backlog(void **state)
{
    (void)state;
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.sub_max_backlog = 8;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    for (unsigned i = 0; i < 100; i++) {
        fdn_event_t *ev = make(i);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        fdn_event_free(ev);
    }
    fdn_events_sub_opts_t old = FDN_EVENTS_SUB_OPTS_INIT;
    old.after_id = 0;
    fdn_events_sub_opts_t fp = old;
    fp.from_position = true;
    fdn_events_sub_t *s_old = NULL, *s_fp = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &old, &s_old), 0);
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s_fp), 0);

    fdn_event_list_t *l = NULL;
    uint64_t skipped = 0;
    assert_int_equal(fdn_events_sub_read(s_old, 1000, &l, &skipped), 0);
    assert_int_equal(fdn_event_list_count(l), 8);
    assert_int_equal(skipped, 92);
    fdn_event_list_free(l);

    uint64_t next = 1;
    for (;;) {
        assert_int_equal(fdn_events_sub_read(s_fp, 30, &l, &skipped), 0);
        assert_int_equal(skipped, 0);
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), next++);
        fdn_event_list_free(l);
        if (n == 0)
            break;
    }
    assert_int_equal(next, 101);
    assert_int_equal(fdn_events_sub_overflow(s_fp), 0);
    /* filters still apply */
    fdn_events_sub_t *s_odd = NULL;
    fp.type = "odd";
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s_odd), 0);
    assert_int_equal(fdn_events_sub_read(s_odd, 1000, &l, &skipped), 0);
    assert_int_equal(fdn_event_list_count(l), 50);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), 2);
    fdn_event_list_free(l);
    fdn_events_unsubscribe(s_odd);
    fdn_events_unsubscribe(s_old);
    fdn_events_unsubscribe(s_fp);
    fdn_events_destroy(es);
}

/* Reads every event of an fd subscription until it has nothing more; checks id order and that
 * nothing is skipped after the first read. Returns the ids seen (first, count) and the skip. */
static void drain(fdn_events_sub_t *s, uint64_t *first, uint64_t *count, uint64_t *skipped_total)
{
    uint64_t last = 0;
    *first = 0;
    *count = 0;
    *skipped_total = 0;
    for (;;) {
        fdn_event_list_t *l = NULL;
        uint64_t skipped = 0;
        assert_int_equal(fdn_events_sub_read(s, 7, &l, &skipped), 0);
        *skipped_total += skipped;
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++) {
            uint64_t id = fdn_event_id(fdn_event_list_at(l, i));
            if (*first == 0)
                *first = id;
            else
                assert_int_equal(id, last + 1); /* in order, none missing */
            last = id;
            (*count)++;
        }
        fdn_event_list_free(l);
        if (n == 0)
            break;
    }
}

/* A store on a SQLite file keeps 10 events in memory: a from-position subscriber reads the
 * other 90 from the file, in order, none skipped. After the file's own retention dropped the
 * oldest 60, a new one from position 0 is told of those 60 (skipped, counted) and gets the
 * remaining 40. */
static void from_position_reads_what_memory_evicted_from_sqlite(void **state)
{
    (void)state;
    test_tmpfile_t tf;
    assert_int_equal(test_tmpfile_make(&tf, "evb-fp", "events.db"), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = tf.path;
    o.max_events = 10;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    for (unsigned i = 0; i < 100; i++) {
        fdn_event_t *ev = make(i);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0); /* durable: in the file */
        fdn_event_free(ev);
    }
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_true(st.count <= 10); /* memory holds the newest 10 at most */

    fdn_events_sub_opts_t fp = FDN_EVENTS_SUB_OPTS_INIT;
    fp.after_id = 0;
    fp.from_position = true;
    fdn_events_sub_t *s = NULL;
    uint64_t first, count, skipped;
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s), 0);
    drain(s, &first, &count, &skipped);
    assert_int_equal(first, 1);
    assert_int_equal(count, 100);
    assert_int_equal(skipped, 0);
    assert_int_equal(fdn_events_sub_overflow(s), 0);
    fdn_events_unsubscribe(s);

    /* a filter applies to the file's part too: odd ids are the "even" events (i = id - 1) */
    fp.type = "even";
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s), 0);
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_sub_read(s, 1000, &l, NULL), 0);
    size_t got = 0;
    for (;;) {
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), 2 * got++ + 1);
        fdn_event_list_free(l);
        if (n == 0)
            break;
        assert_int_equal(fdn_events_sub_read(s, 1000, &l, NULL), 0);
    }
    assert_int_equal(got, 50);
    fdn_events_unsubscribe(s);
    fp.type = NULL;

    /* several types (version 3): the file's pages of each merged in id order, in reads of 7
     * (a page boundary inside the file's part and at the memory tier) */
    static const char *const both[] = {"odd", "even"};
    fp.types = both;
    fp.ntypes = 2;
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s), 0);
    got = 0;
    for (int round = 0; round < 200 && got < 100; round++) {
        uint64_t sk = 99;
        assert_int_equal(fdn_events_sub_read(s, 7, &l, &sk), 0);
        assert_int_equal(sk, 0);
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), ++got);
        fdn_event_list_free(l);
    }
    assert_int_equal(got, 100);
    fdn_events_unsubscribe(s);
    fp.types = NULL;
    fp.ntypes = 0;

    /* the file keeps the newest 40: a subscriber from 0 skips 60, counted */
    assert_int_equal(fdn_events_set_durable_retention(es, 40, 0), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(fdn_events_subscribe_fd(es, &fp, &s), 0);
    drain(s, &first, &count, &skipped);
    assert_int_equal(first, 61);
    assert_int_equal(count, 40);
    assert_int_equal(skipped, 60);
    assert_int_equal(fdn_events_sub_overflow(s), 60);
    fdn_events_unsubscribe(s);
    fdn_events_destroy(es);
    test_tmpfile_remove(&tf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sqlite_fills_the_table_as_write_behind),
        cmocka_unit_test(option_versions),
        cmocka_unit_test(from_position_never_skips_for_backlog),
        cmocka_unit_test(from_position_reads_what_memory_evicted_from_sqlite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
