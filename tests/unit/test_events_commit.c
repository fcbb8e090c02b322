/* A SQLite COMMIT that reports an error although its transaction reached the file (WAL mode:
 * the frames and the commit marker were written, then the fsync reported failure; SQLite rolls
 * back in memory and recovers the transaction when the file is opened again). The store's
 * caller gets FDN_EIO (the outcome is unknown to the store), the writer latches the error,
 * and afterwards:
 *  - a restart of the store (stop, start: the file is reopened and recovers the rows) must
 *    not insert those ids again: the restarted writer re-inserted them, hit the primary key,
 *    latched FDN_EIO again, and so at every restart (found by review);
 *  - a restart after a failed commit that did not reach the file commits the events then;
 *  - a reopen (a new store on the file) has the rows and gives the next id after them.
 * The fault is a SQLite VFS that wraps the default one (tests/support/sqlite_fault.c): a sync
 * of the WAL does the real fsync and reports SQLITE_IOERR_FSYNC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include <fdn/events.h>

#include "services/event_store_int.h"

#include "event_make.h"
#include "sqlite_fault.h"
#include "sqlite_file.h"
#include "tmpdir.h"

static test_tmpfile_t g_tf;

static int setup(void **state)
{
    (void)state;
    if (test_sqlite_fault_install() != 0)
        return -1;
    return test_tmpfile_make(&g_tf, "commit", "store.db");
}

static int teardown(void **state)
{
    (void)state;
    test_sqlite_fault_wal_sync(false);
    test_tmpfile_remove(&g_tf);
    return 0;
}

static fdn_events_t *open_store(void)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_tf.path;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    return es;
}

static void store_one(fdn_events_t *es, const char *type, int want_rc, uint64_t want_id)
{
    fdn_event_t *ev = test_small_event(type);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), want_rc);
    assert_int_equal(id, want_id);
    fdn_event_free(ev);
}

/* The event with this id in es has this type. */
static void expect_type(fdn_events_t *es, uint64_t id, const char *type)
{
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, id, &ev), 0);
    assert_string_equal(fdn_event_type(ev), type);
    fdn_event_free(ev);
}

/* What the file holds, read on a connection of its own: rows, and the ids 1..n in order. */
static void expect_file_rows(int64_t n)
{
    assert_int_equal(test_sqlite_int(g_tf.path, "SELECT count(*) FROM events"), n);
    assert_int_equal(test_sqlite_int(g_tf.path, "SELECT coalesce(max(id), 0) FROM events"), n);
}

/* Store e1 (committed), then e2 with every WAL sync failing: FDN_EIO, the writer latched. */
static fdn_events_t *fail_second_commit(void)
{
    fdn_events_t *es = open_store();
    store_one(es, "commit.one", 0, 1);
    long before = test_sqlite_fault_count();
    test_sqlite_fault_wal_sync(true);
    store_one(es, "commit.two", FDN_EIO, 2); /* the id is given; the outcome is unknown */
    assert_true(test_sqlite_fault_count() > before);
    assert_int_equal(fdn__events_service_health(es), FDN_EIO);
    expect_type(es, 2, "commit.two"); /* in memory, as events.h says */
    return es;
}

static void restart_after_commit_that_landed(void **state)
{
    (void)state;
    fdn_events_t *es = fail_second_commit();
    /* stopped while the WAL still cannot be synced: the close cannot checkpoint, the WAL with
     * the failed commit's frames stays */
    fdn__events_service_stop(es);
    test_sqlite_fault_wal_sync(false);
    /* the file recovers the transaction the store was told had failed */
    expect_file_rows(2);
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(atomic_load(&es->persisted), 2); /* what the file holds */
    store_one(es, "commit.three", 0, 3);
    assert_int_equal(fdn__events_service_health(es), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.durable_committed_id, 3);
    assert_int_equal(st.durable_pending, 0);
    fdn_events_destroy(es);
    expect_file_rows(3);
    /* a reopen agrees: every event once, under its id */
    es = open_store();
    expect_type(es, 1, "commit.one");
    expect_type(es, 2, "commit.two");
    expect_type(es, 3, "commit.three");
    store_one(es, "commit.four", 0, 4);
    fdn_events_destroy(es);
    expect_file_rows(4);
}

static void restart_after_commit_that_did_not_land(void **state)
{
    (void)state;
    fdn_events_t *es = fail_second_commit();
    /* the disk recovers before the stop: the close checkpoints what SQLite counts committed and
     * removes the WAL, the failed commit's frames with it */
    test_sqlite_fault_wal_sync(false);
    fdn__events_service_stop(es);
    expect_file_rows(1);
    assert_int_equal(fdn__events_service_start(es), 0);
    /* the restarted writer commits the event kept in memory (at once: persisted is 1 or
     * already 2 here, whichever thread runs first), then the next; the file then holds each
     * once (a restart that counted id 2 as in the file would leave it out: 2 rows) */
    store_one(es, "commit.three", 0, 3);
    fdn_events_destroy(es);
    expect_file_rows(3);
    es = open_store();
    expect_type(es, 2, "commit.two");
    expect_type(es, 3, "commit.three");
    fdn_events_destroy(es);
}

static void reopen_after_commit_that_landed(void **state)
{
    (void)state;
    fdn_events_t *es = fail_second_commit();
    fdn_events_destroy(es); /* the WAL cannot be checkpointed: it stays */
    test_sqlite_fault_wal_sync(false);
    es = open_store();
    expect_type(es, 1, "commit.one");
    expect_type(es, 2, "commit.two");
    store_one(es, "commit.three", 0, 3); /* id 2 is not given again */
    fdn_events_destroy(es);
    expect_file_rows(3);
}

/* A restart finds an id in the file that this store never gave: another writer used the file
 * while the store was stopped. The start is refused with FDN_ECORRUPT and a message naming
 * both ids (the store would give that id again), the store stays stopped, and the file keeps
 * every row, the other writer's included; a second start is refused the same way. */
static void restart_refused_after_another_writer(void **state)
{
    (void)state;
    fdn_events_t *es = open_store();
    store_one(es, "mine.one", 0, 1);
    store_one(es, "mine.two", 0, 2);
    fdn__events_service_stop(es);
    fdn_events_t *other = open_store(); /* loads ids 1 and 2 from the file */
    store_one(other, "theirs.three", 0, 3);
    fdn_events_destroy(other);
    expect_file_rows(3);
    for (int attempt = 0; attempt < 2; attempt++) {
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn__events_service_ops.start(es, NULL, &err), FDN_ECORRUPT);
        assert_int_equal(err.code, FDN_ECORRUPT);
        assert_non_null(strstr(err.message, "holds id 3, past the newest this store gave (2)"));
        assert_int_equal(fdn__events_service_health(es), FDN_EUNAVAILABLE);
    }
    fdn_events_destroy(es);
    expect_file_rows(3);
    es = open_store();
    expect_type(es, 3, "theirs.three");
    store_one(es, "next", 0, 4);
    fdn_events_destroy(es);
    expect_file_rows(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(restart_after_commit_that_landed, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_after_commit_that_did_not_land, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_after_commit_that_landed, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_refused_after_another_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
