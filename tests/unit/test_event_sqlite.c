/* Unit tests: the SQLite file of the event store (storage/event_sqlite.h), its correlation
 * index (event_sqlite_corr.c: a run of hashed keys per block of 8192 ids, runs merged into
 * levels). A lookup by
 * correlation id decodes only that id's rows in the blocks that have runs, and scans only the
 * block being written (the read connection counts the rows it decodes); results are in id
 * order, both directions, with type, id bounds and limit applied. A file written before the
 * index existed, rows an older library appended, and the keys of the last block lost with the
 * process are indexed at open; a failed write's keys are not kept; an id written below the
 * block being gathered is merged into its block's run; a prune drops whole blocks' runs; the
 * index's secret is kept per file, and a damaged one is refused with FDN_ECORRUPT; a damaged
 * row does not stop the open. Runs merge (16 into one of the next level; a test fan-out of 2
 * reaches level 3 in a few blocks): merges happen in bounded steps as the writer commits and
 * resume after a restart, lookups across levels stay exact and decode only matches, a lookup
 * searches each run once, and a merge drops the keys of pruned ids. The row count (meta count,
 * count_min_id, count_max_id) follows every insert and prune, stays with a failed write or
 * prune (rolled back), counts only rows really inserted, survives a reopen without a count; a
 * file without it (an older version's), rows an older version appended or pruned since, and a
 * damaged value are counted again at open; a foreign meta refuses the open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <fdn/events.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "storage/event_backend.h"
#include "storage/event_sqlite.h"
#include "storage/event_sqlite_int.h"
#include "sqlite_file.h"
#include "tmpdir.h"

#define CORRS 50   /* distinct correlation ids; event i has corr-(i % CORRS) */
#define BLK   8192 /* ids per block of the index */

typedef test_tmpfile_t fx_t;

static int setup(void **state)
{
    static fx_t f;
    *state = &f;
    return test_tmpfile_make(&f, "evsqlite", "events.db");
}

static int teardown(void **state)
{
    test_tmpfile_remove(*state);
    return 0;
}

/* Event id: type "t.even" / "t.odd" by id, correlation corr-(id % CORRS), or none when
 * with_corr is false. */
static fdn_event_t *make(uint64_t id, bool with_corr)
{
    char corr[32], data[48];
    snprintf(corr, sizeof corr, "corr-%llu", (unsigned long long)(id % CORRS));
    int n = snprintf(data, sizeof data, "{\"i\":%llu}", (unsigned long long)id);
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = id % 2 == 0 ? "t.even" : "t.odd";
    s.data = data;
    s.data_len = (size_t)n;
    s.id = id;
    s.timestamp_ns = (int64_t)id * 1000;
    s.wall_ns = 1700000000000000000 + (int64_t)id * 1000;
    s.node = "n1";
    if (with_corr)
        s.correlation_id = corr;
    else
        s.flags = FDN_EVENT_NO_CORRELATION;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    assert_int_equal(fdn_event_id(ev), id);
    return ev;
}

/* Events first..last through the adapter, in batches of 1000. */
static void write_range(fdn__evdb_t *d, uint64_t first, uint64_t last, bool with_corr)
{
    fdn_event_t *evs[1000];
    for (uint64_t id = first; id <= last;) {
        size_t n = 0;
        while (n < 1000 && id <= last)
            evs[n++] = make(id++, with_corr);
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn__evdb_write(d, (const fdn_event_t *const *)evs, n, 0, id, &err), 0);
        for (size_t i = 0; i < n; i++)
            fdn_event_free(evs[i]);
    }
}

/* The same rows as an older library wrote them: no ch column value, next_id only. */
static void write_old_rows(const char *path, uint64_t first, uint64_t last, bool create)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (create)
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA journal_mode=WAL;"
                                      "CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT "
                                      "NULL, type TEXT NOT NULL, rec BLOB NOT NULL);"
                                      "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_stmt *ins = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO events(id, ts, type, rec) VALUES(?1, ?2, "
                                        "?3, ?4)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (uint64_t id = first; id <= last; id++) {
        fdn_event_t *ev = make(id, true);
        size_t len = 0;
        assert_int_equal(fdn__event_encode_into(ev, 0, &buf, &cap, &len), 0);
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)id);
        sqlite3_bind_int64(ins, 2, ev->ts);
        sqlite3_bind_text(ins, 3, ev->type, (int)ev->type_len, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 4, buf, (int)len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        fdn_event_free(ev);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES('next_id', %llu)",
             (unsigned long long)last + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_finalize(ins);
    fdn__free(buf);
    sqlite3_close(db);
}

static fdn__evdb_t *open_db(const char *path)
{
    fdn__evdb_t *d = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_open(&d, path, true, false, &err), 0);
    return d;
}

/* A query by correlation id `c` (with type, bounds, direction, limit) returns exactly the
 * matches a filter over ids 1..last gives, and decodes only the rows it returns. */
/* A lookup of cid over ids below `before` (0: all), unfiltered, in id order. */
static fdn__evb_query_t corr_query(const char *cid, uint64_t before)
{
    return (fdn__evb_query_t){.correlation_id = cid,
                              .wall_start = INT64_MIN,
                              .wall_end = INT64_MAX,
                              .before = before,
                              .limit = SIZE_MAX};
}

static void expect_corr_scan(fdn__evdb_t *d, uint64_t last, unsigned c, const char *type,
                             uint64_t after, uint64_t before, bool desc, size_t limit,
                             uint64_t scanned)
{
    char cid[32];
    snprintf(cid, sizeof cid, "corr-%u", c);
    fdn__evb_query_t q = {.type = type,
                          .correlation_id = cid,
                          .wall_start = INT64_MIN,
                          .wall_end = INT64_MAX,
                          .after = after,
                          .before = before,
                          .limit = limit,
                          .descending = desc};
    uint64_t want[4096];
    size_t nw = 0;
    for (uint64_t k = 0; k < last; k++) {
        uint64_t id = desc ? last - k : k + 1;
        bool type_ok = type == NULL || strcmp(type, id % 2 == 0 ? "t.even" : "t.odd") == 0;
        if (id % CORRS == c && type_ok && id > after && (before == 0 || id < before) && nw < limit)
            want[nw++] = id;
    }
    uint64_t read0 = fdn__evdb_rows_read(d);
    fdn_event_list_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    assert_int_equal(l->n, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_int_equal(fdn_event_id(l->items[i]), want[i]);
        assert_string_equal(fdn_event_correlation_id(l->items[i]), cid);
    }
    /* the matches through the index, plus at most the rows of the block being written */
    assert_in_range(fdn__evdb_rows_read(d) - read0, nw, nw + scanned);
    fdn_event_list_free(l);
}

/* As expect_corr_scan where the range lies in blocks with runs: no row scanned. */
static void expect_corr(fdn__evdb_t *d, uint64_t last, unsigned c, const char *type, uint64_t after,
                        uint64_t before, bool desc, size_t limit)
{
    expect_corr_scan(d, last, c, type, after, before, desc, limit, 0);
}

/* What the file holds of the index: its runs' blocks and meta runs_to. */
static int64_t runs_to(const char *path)
{
    return test_sqlite_int(path, "SELECT value FROM meta WHERE key = 'runs_to'");
}

/* The runs a lookup of the whole file searched (one seek each). */
static uint64_t lookup_seeks(fdn__evdb_t *d, unsigned c)
{
    char cid[32];
    snprintf(cid, sizeof cid, "corr-%u", c);
    fdn__evb_query_t q = corr_query(cid, 0);
    uint64_t s0, f0, s1, f1;
    fdn__evdb_corr_counts(d, &s0, &f0);
    fdn_event_list_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    fdn__evdb_corr_counts(d, &s1, &f1);
    /* a run's matches span their fence rows, and one row more at most */
    assert_in_range(f1 - f0, s1 - s0, 2 * (s1 - s0) + l->n / 480);
    fdn_event_list_free(l);
    return s1 - s0;
}

static void correlation_lookup_reads_only_its_rows(void **state)
{
    fx_t *f = *state;
    const uint64_t last = 3 * BLK + 500, tail = 3 * BLK + 1; /* blocks 0-2 have runs */
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, last, true);
    assert_int_equal(runs_to(f->path), 3);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 0"), 3);
    /* each run: 8 bytes per event with a correlation id, in fence rows of 480 keys */
    assert_int_equal(
        test_sqlite_int(f->path,
                        "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 0 AND run = 1"),
        8 * BLK);
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT count(*) FROM corr_lsm WHERE level = 0 AND run = 1"),
        (BLK + 479) / 480);
    expect_corr(d, last, 7, NULL, 0, tail, false, SIZE_MAX);
    expect_corr(d, last, 7, NULL, 0, tail, true, SIZE_MAX);
    expect_corr(d, last, 8, "t.even", 0, tail, false, SIZE_MAX);
    expect_corr(d, last, 9, "t.even", 0, tail, false, SIZE_MAX); /* none: 9 mod 50 is odd */
    expect_corr(d, last, 3, NULL, 2000, 5000, false, SIZE_MAX);
    expect_corr(d, last, 3, NULL, 2000, 5000, true, 5);
    expect_corr(d, last, 0, NULL, 0, 0, false, 10);
    expect_corr(d, last, 5, NULL, BLK - 10, 2 * BLK + 10, false, SIZE_MAX); /* across blocks */
    /* with the block being written: its 500 rows scanned, at most */
    expect_corr_scan(d, last, 7, NULL, 0, 0, false, SIZE_MAX, 500);
    expect_corr_scan(d, last, 7, NULL, 0, 0, true, SIZE_MAX, 500);
    expect_corr_scan(d, last, 7, NULL, 0, 0, true, 3, 500);
    expect_corr_scan(d, last, 7, "t.odd", tail + 10, 0, false, SIZE_MAX, 500);
    fdn__evdb_close(d);

    /* the secret is the file's: a reopened file finds the same rows */
    d = open_db(f->path);
    expect_corr_scan(d, last, 7, NULL, 0, 0, false, SIZE_MAX, 500);
    fdn__evdb_close(d);
}

static void the_last_blocks_keys_survive_a_restart(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, BLK - 100, true);
    fdn__evdb_close(d); /* block 0's keys were only in memory: gathered again at open */
    d = open_db(f->path);
    write_range(d, BLK - 99, BLK + 50, true);
    assert_int_equal(runs_to(f->path), 1);
    expect_corr(d, BLK + 50, 13, NULL, 0, BLK + 1, false, SIZE_MAX);
    expect_corr(d, BLK + 50, 13, NULL, 0, BLK + 1, true, SIZE_MAX);
    fdn__evdb_close(d);
}

/* Ids are never reused: the writer leaves meta's next_id behind while the newest row implies
 * it, and a prune on the read connection that deletes every row (the durable tier's
 * retention) records it first; so does a prune in the writer's transaction. */
static int drop_event(fdn_event_t *ev, void *user)
{
    (void)user;
    fdn_event_free(ev);
    return 0;
}

static uint64_t reopened_next_id(const char *path)
{
    fdn__evdb_t *d = open_db(path);
    uint64_t next = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_load(d, drop_event, NULL, &next, &err), 0);
    fdn__evdb_close(d);
    return next;
}

static void next_id_survives_pruning_every_row(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 300, false);
    fdn__evdb_close(d);
    assert_int_equal(reopened_next_id(f->path), 301); /* from the newest row */
    d = open_db(f->path);
    uint64_t count = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 1000, &count, &err), 0); /* every row */
    assert_int_equal(count, 300);
    fdn__evdb_close(d);
    assert_int_equal(reopened_next_id(f->path), 301);
    d = open_db(f->path);
    write_range(d, 301, 310, false);
    /* the writer's own prune of everything, with no event: next_id written */
    assert_int_equal(fdn__evdb_write(d, NULL, 0, 311, 311, &err), 0);
    fdn__evdb_close(d);
    assert_int_equal(reopened_next_id(f->path), 311);
}

static void a_failed_write_keeps_no_keys(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 100, true);
    /* 101-110 then 50 again: the duplicate fails the transaction, nothing of it stays */
    fdn_event_t *evs[11];
    for (int i = 0; i < 10; i++)
        evs[i] = make(101 + (uint64_t)i, true);
    evs[10] = make(50, true);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_not_equal(fdn__evdb_write(d, (const fdn_event_t *const *)evs, 11, 0, 111, &err), 0);
    for (int i = 0; i < 11; i++)
        fdn_event_free(evs[i]);
    write_range(d, 101, BLK + 10, true); /* 101-110 written once, block 0 finished */
    assert_int_equal(runs_to(f->path), 1);
    assert_int_equal(
        test_sqlite_int(f->path,
                        "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 0 AND run = 0"),
        8 * BLK);
    expect_corr(d, BLK + 10, 3, NULL, 0, BLK + 1, false, SIZE_MAX); /* 103: once */
    fdn__evdb_close(d);
}

static void an_id_below_the_block_being_gathered_is_merged(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 100, true);
    write_range(d, 200, BLK + 100, true); /* 101-199 missing; block 0's run written */
    assert_int_equal(runs_to(f->path), 1);
    write_range(d, 150, 150, true); /* below block 1: merged into block 0's run */
    assert_int_equal(runs_to(f->path), 1);
    fdn__evb_query_t q = corr_query("corr-0", BLK + 1);
    fdn_event_list_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    uint64_t read0 = fdn__evdb_rows_read(d);
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    /* corr-0: 50, 100, 150, 200, 250, ... 8150 */
    assert_int_equal(l->n, BLK / CORRS);
    assert_int_equal(fdn_event_id(l->items[2]), 150);
    assert_int_equal(fdn__evdb_rows_read(d) - read0, l->n);
    fdn_event_list_free(l);
    fdn__evdb_close(d);
}

static void a_prune_drops_whole_blocks_runs(void **state)
{
    fx_t *f = *state;
    const uint64_t last = 4 * BLK + 10;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, last, true);
    uint64_t count = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, BLK + 20, &count, &err), 0); /* the read connection */
    assert_int_equal(count, BLK + 19);
    assert_int_equal(test_sqlite_int(f->path, "SELECT min(run) FROM corr_run WHERE level = 0"), 1);
    /* the writer's prune (fdn_events_prune_before rides on a write) */
    fdn_event_t *ev = make(last + 1, true);
    assert_int_equal(
        fdn__evdb_write(d, (const fdn_event_t *const *)&ev, 1, 2 * BLK + 5, last + 2, &err), 0);
    fdn_event_free(ev);
    assert_int_equal(test_sqlite_int(f->path, "SELECT min(run) FROM corr_run WHERE level = 0"), 2);
    /* the lookups see only what is left; pruned ids of block 2 named by its run are skipped */
    fdn__evb_query_t q = corr_query("corr-4", 0);
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    assert_true(l->n > 0);
    assert_true(fdn_event_id(l->items[0]) >= 2 * BLK + 5);
    for (size_t i = 0; i < l->n; i++)
        assert_int_equal(fdn_event_id(l->items[i]) % CORRS, 4);
    fdn_event_list_free(l);
    fdn__evdb_close(d);
}

static void unknown_and_empty_correlation_ids(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, BLK - 100, true);
    write_range(d, BLK - 99, BLK + 10, false); /* no correlation id; block 0 finished */
    fdn__evb_query_t q = corr_query("corr-none", BLK + 1);
    fdn_event_list_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    uint64_t read0 = fdn__evdb_rows_read(d);
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    assert_int_equal(l->n, 0);
    assert_int_equal(fdn__evdb_rows_read(d), read0);
    fdn_event_list_free(l);

    /* the empty id: the events without one (found by a scan) */
    q.correlation_id = "";
    q.before = 0;
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    assert_int_equal(l->n, 110);
    assert_int_equal(fdn_event_id(l->items[0]), BLK - 99);
    assert_int_equal(fdn_event_id(l->items[109]), BLK + 10);
    fdn_event_list_free(l);
    fdn__evdb_close(d);
}

static void a_file_from_before_the_index_is_indexed_at_open(void **state)
{
    fx_t *f = *state;
    const uint64_t last = 20 * BLK + 7; /* more blocks than one indexing transaction's 16 */
    write_old_rows(f->path, 1, last, true);
    fdn__evdb_t *d = open_db(f->path);
    assert_int_equal(runs_to(f->path), 20);
    /* blocks 0-15 merged into one run of level 1 at open; 16-19 wait for theirs */
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 0"), 4);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 1"), 1);
    expect_corr(d, last, 11, NULL, 0, 20 * BLK + 1, false, SIZE_MAX);
    expect_corr(d, last, 11, "t.odd", 9000, 20 * BLK + 1, true, SIZE_MAX);
    assert_int_equal(lookup_seeks(d, 11), 5);     /* the level-1 run, then 4 of level 0 */
    write_range(d, last + 1, 21 * BLK + 3, true); /* block 20 finished by the writer */
    assert_int_equal(runs_to(f->path), 21);
    expect_corr(d, 21 * BLK + 3, 11, NULL, 19 * BLK, 21 * BLK + 1, false, SIZE_MAX);
    fdn__evdb_close(d);

    /* rows an older library appended to the indexed file: indexed at the next open */
    write_old_rows(f->path, 21 * BLK + 4, 22 * BLK + 9, false);
    d = open_db(f->path);
    assert_int_equal(runs_to(f->path), 22);
    expect_corr(d, 22 * BLK + 9, 11, NULL, 0, 22 * BLK + 1, false, SIZE_MAX);
    fdn__evdb_close(d);
}

static void a_damaged_row_does_not_stop_indexing(void **state)
{
    fx_t *f = *state;
    write_old_rows(f->path, 1, BLK + 200, true);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE events SET rec = x'00010203' WHERE id = 57", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    fdn__evdb_t *d = open_db(f->path);
    fdn_event_t *ev = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_get(d, 57, &ev, &err), FDN_ECORRUPT);
    /* corr-7 below 200 is ids 7, 57, 107, 157: the damaged one is not indexed */
    fdn__evb_query_t q = corr_query("corr-7", 200);
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn__evdb_query(d, &q, &l, &err), 0);
    assert_int_equal(l->n, 3);
    assert_int_equal(fdn_event_id(l->items[0]), 7);
    assert_int_equal(fdn_event_id(l->items[1]), 107);
    assert_int_equal(fdn_event_id(l->items[2]), 157);
    fdn_event_list_free(l);
    fdn__evdb_close(d);
}

static void the_secret_is_per_file_and_checked(void **state)
{
    fx_t *f = *state;
    char other[256];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    fdn__evdb_close(open_db(f->path));
    fdn__evdb_close(open_db(other));
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[320];
    snprintf(sql, sizeof sql, "ATTACH '%s' AS o", other);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT a.value = b.value, length(a.value), "
                                        "typeof(a.value) FROM meta a, o.meta b WHERE a.key = "
                                        "'ch_secret' AND b.key = 'ch_secret'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0); /* two files, two secrets */
    assert_int_equal(sqlite3_column_int(st, 1), 192);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "blob");
    sqlite3_finalize(st);

    /* a damaged secret: refused, nothing changed */
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = x'0102' WHERE key = 'ch_secret'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    fdn__evdb_t *d = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_open(&d, f->path, true, false, &err), FDN_ECORRUPT);
    assert_null(d);
    assert_non_null(strstr(err.message, "secret"));
}

static void runs_merge_across_levels(void **state)
{
    fx_t *f = *state;
    const uint64_t last = 21 * BLK + 77, tail = 21 * BLK + 1;
    fdn__evdb_t *d = open_db(f->path);
    assert_int_equal(fdn__evdb_corr_test_fanout(d, 1),
                     0); /* 2 runs into one: level 3 is 8 blocks */
    write_range(d, 1, last, true);
    /* merged while writing, in bounded steps */
    assert_true(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level >= 2") > 0);
    for (unsigned c = 0; c < CORRS; c += 7) {
        expect_corr(d, last, c, NULL, 0, tail, false, SIZE_MAX);
        expect_corr(d, last, c, "t.odd", 3 * BLK - 5, 17 * BLK + 3, true, SIZE_MAX);
    }
    expect_corr(d, last, 12, NULL, 9 * BLK, tail, false, 7);
    fdn__evdb_close(d);

    /* at open every merge due is finished: blocks 0-7 and 8-15 (level 3), 16-19 (level 2),
     * 20 (level 0: its pair is being written) */
    d = open_db(f->path);
    assert_int_equal(runs_to(f->path), 21);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE state != 1"), 0);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run"), 4);
    assert_int_equal(test_sqlite_int(f->path,
                                     "SELECT count(*) FROM corr_run WHERE (level = 3 AND run "
                                     "IN (0, 1)) OR (level = 2 AND run = 4) OR (level = 0 AND "
                                     "run = 20)"),
                     4);
    /* every key once: 8 bytes per event of the 21 blocks; no fence row past 480 keys */
    assert_int_equal(test_sqlite_int(f->path, "SELECT sum(length(keys)) FROM corr_lsm"),
                     8 * 21 * BLK);
    assert_int_equal(test_sqlite_int(f->path, "SELECT max(length(keys)) FROM corr_lsm"), 8 * 480);
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT count(*) FROM corr_lsm WHERE level = 3 AND run = 0"),
        (8 * BLK + 479) / 480);
    for (unsigned c = 0; c < CORRS; c += 7) {
        expect_corr(d, last, c, NULL, 0, tail, false, SIZE_MAX);
        expect_corr_scan(d, last, c, NULL, 0, 0, true, SIZE_MAX, 77); /* and block 21's rows */
        expect_corr(d, last, c, "t.even", 7 * BLK + 3, 16 * BLK + 2, false, SIZE_MAX);
    }
    /* one seek per run the lookup's range touches */
    assert_int_equal(lookup_seeks(d, 3), 4);
    fdn__evdb_close(d);
}

static void a_merge_in_progress_resumes_after_a_restart(void **state)
{
    fx_t *f = *state;
    const uint64_t last = 16 * BLK + 3000, tail = 16 * BLK + 1;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, last, true);
    /* blocks 0-15 complete since id 16 * BLK + 1: their merge (131 072 keys) goes about 8 500
     * keys per commit of 1 000 events, so it is under way */
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT state FROM corr_run WHERE level = 1 AND run = 0"), 0);
    int64_t part =
        test_sqlite_int(f->path, "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 1");
    assert_in_range(part, 8 * 480, 8 * BLK * 16 - 1);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 0"), 16);
    /* its inputs answer until it is complete: 16 runs searched */
    expect_corr(d, last, 21, NULL, 0, tail, false, SIZE_MAX);
    assert_int_equal(lookup_seeks(d, 21), 16);
    fdn__evdb_close(d);
    d = open_db(f->path); /* the merge resumes where it was and completes */
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT state FROM corr_run WHERE level = 1 AND run = 0"), 1);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 0"), 0);
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 1"),
        8 * 16 * BLK);
    expect_corr(d, last, 21, NULL, 0, tail, false, SIZE_MAX);
    expect_corr(d, last, 22, NULL, 5 * BLK, 9 * BLK, true, SIZE_MAX);
    assert_int_equal(lookup_seeks(d, 21), 1);
    fdn__evdb_close(d);

    /* the same as the writer goes on: once complete, its inputs are retired (no longer
     * searched) and their rows deleted a few per commit */
    test_tmpfile_remove(f);
    assert_int_equal(test_tmpfile_make(f, "evsqlite", "events.db"), 0);
    d = open_db(f->path);
    uint64_t id = last;
    write_range(d, 1, id, true);
    while (test_sqlite_int(f->path, "SELECT state FROM corr_run WHERE level = 1 AND run = 0") ==
           0) {
        write_range(d, id + 1, id + 1000, true);
        id += 1000;
    }
    assert_true(id < 19 * BLK);
    assert_true(test_sqlite_int(f->path,
                                "SELECT count(*) FROM corr_run WHERE level = 0 AND state = 2") > 0);
    expect_corr(d, id, 21, NULL, 0, tail, false, SIZE_MAX);
    /* the level-1 run and the blocks completed since (16, 17), not the retired runs */
    assert_int_equal(lookup_seeks(d, 21),
                     test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE state = 1"));
    assert_in_range(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE state = 1"), 2,
                    3);
    while (test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE state = 2") > 0) {
        write_range(d, id + 1, id + 1000, true);
        id += 1000;
    }
    assert_true(id < 19 * BLK);
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT count(*) FROM corr_lsm WHERE level = 0 AND run < 16"), 0);
    fdn__evdb_close(d);
}

static void a_merge_drops_the_keys_of_pruned_ids(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    assert_int_equal(fdn__evdb_corr_test_fanout(d, 1), 0);
    write_range(d, 1, 6 * BLK + 1, true);
    fdn__evdb_close(d);
    d = open_db(f->path); /* blocks 0-3: level 2; 4-5: level 1 */
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT count(*) FROM corr_run WHERE level = 2 AND run = 0"), 1);
    uint64_t count = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 2 * BLK + 10, &count, &err), 0);
    /* the cut is inside the level-2 run: it stays, its pruned ids are skipped */
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 2"),
        8 * 4 * BLK);
    expect_corr(d, 6 * BLK + 1, 9, NULL, 2 * BLK + 9, 6 * BLK + 1, false, SIZE_MAX);
    write_range(d, 6 * BLK + 2, 8 * BLK + 1, true); /* blocks 6-7: level 3 due */
    fdn__evdb_close(d);
    d = open_db(f->path);
    /* blocks 0-7 in one run, without the 2 * BLK + 9 pruned ids */
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run"), 1);
    assert_int_equal(
        test_sqlite_int(f->path, "SELECT sum(length(keys)) FROM corr_lsm WHERE level = 3"),
        8 * (6 * BLK - 9));
    expect_corr(d, 8 * BLK + 1, 9, NULL, 2 * BLK + 9, 8 * BLK + 1, false, SIZE_MAX);
    expect_corr(d, 8 * BLK + 1, 10, NULL, 2 * BLK + 9, 8 * BLK + 1, true, SIZE_MAX);
    /* a prune past the run's end deletes it */
    assert_int_equal(fdn__evdb_prune(d, 8 * BLK + 1, &count, &err), 0);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_lsm"), 0);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM corr_run"), 0);
    fdn__evdb_close(d);
}

/* Directory rows a damaged file may hold (not integers, negative, far out of range, in every
 * state): never searched, never picked for a merge or a delete (picking one that a step cannot
 * remove would loop), so an open and the writes end; fence rows whose first_key is no integer
 * are not merged. */
static void damaged_directory_rows_do_not_stop_the_merges(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 100, true);
    fdn__evdb_close(d);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO corr_run(level, run, state) VALUES"
                                  "('x', 1, 2), (0, -1, 2), (0, 'y', 2), (1, 1.5, 0), (2, -3, 0),"
                                  "(0, 2.5, 1), (0, -7, 1), (5, 1, 2), (4294967296, 0, 2),"
                                  "(1, 9223372036854775807, 0), (0, 9223372036854775807, 1);"
                                  /* fence rows of block 0's run whose first_key is no integer */
                                  "INSERT INTO corr_lsm(level, run, first_key, keys) VALUES"
                                  "(0, 0, 'zz', x'0102030405060708'), (0, 0, 2.5, x'00'),"
                                  "(0, 0, -1.5, x'ffffffffffffffff')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    d = open_db(f->path);
    write_range(d, 101, 17 * BLK + 5, true); /* blocks 0-15 merged on the way */
    expect_corr(d, 17 * BLK + 5, 4, NULL, 0, 17 * BLK + 1, false, SIZE_MAX);
    fdn__evdb_close(d);
    d = open_db(f->path);
    expect_corr(d, 17 * BLK + 5, 5, NULL, 0, 17 * BLK + 1, true, SIZE_MAX);
    fdn__evdb_close(d);
}

#define REFUSE_RUNS                                                                                \
    "CREATE TRIGGER refuse BEFORE INSERT ON corr_lsm BEGIN SELECT RAISE(ABORT, 'refused'); END"

/* The index's status (fdn__evdb_corr_status, behind fdn_events_index_status): current or
 * not, the complete blocks without a run, failures since open (at least min_failures; exactly
 * when exact) and the last one's code. Returns the failures. */
static uint64_t expect_index(fdn__evdb_t *d, bool current, uint64_t behind, uint64_t min_failures,
                             bool exact, int last_error)
{
    bool cur = !current;
    uint64_t beh = UINT64_MAX, fails = UINT64_MAX;
    int last = 1;
    fdn__evdb_corr_status(d, &cur, &beh, &fails, &last);
    assert_int_equal(cur, current);
    assert_int_equal(beh, behind);
    if (exact)
        assert_int_equal(fails, min_failures);
    else
        assert_true(fails >= min_failures);
    assert_int_equal(last, last_error);
    return fails;
}

/* The index cannot be written: the events still are, lookups still find them (by a scan of
 * what the index lacks), and once it can be written again a later write rebuilds it. The
 * status says so throughout. */
static void an_index_that_cannot_be_written_never_fails_a_write(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 100, true);
    expect_index(d, true, 0, 0, true, 0);
    test_sqlite_exec(f->path, REFUSE_RUNS);
    write_range(d, 101, BLK + 10, true); /* the write finishing block 0 fails its run */
    expect_index(d, false, 1, 1, true, FDN_EIO);
    write_range(d, BLK + 11, 2 * BLK + 50, true); /* the rebuilds tried meanwhile fail too */
    uint64_t fails = expect_index(d, false, 2, 2, false, FDN_EIO);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 2 * BLK + 50);
    assert_true(runs_to(f->path) <= 0);
    expect_corr_scan(d, 2 * BLK + 50, 9, NULL, 0, 0, false, SIZE_MAX, 2 * BLK + 50);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse");
    /* the rebuild is retried after a gap of writes that doubles with each failure */
    for (uint64_t id = 2 * BLK + 51; id < 2 * BLK + 80; id++)
        write_range(d, id, id, true);
    assert_int_equal(runs_to(f->path), 2);
    expect_index(d, true, 0, fails, true, FDN_EIO); /* the failures stay counted */
    expect_corr(d, 2 * BLK + 79, 9, NULL, 0, 2 * BLK + 1, false, SIZE_MAX);
    fdn__evdb_close(d);
}

/* Blocks a prune removed are not behind: the status counts only blocks whose rows are left
 * (a prune on the read connection or riding on a write). */
static void pruned_blocks_are_not_behind(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    test_sqlite_exec(f->path, REFUSE_RUNS);
    write_range(d, 1, 4 * BLK + 3, true);
    expect_index(d, false, 4, 1, false, FDN_EIO);
    uint64_t removed = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, BLK + 1, &removed, &err), 0); /* block 0 gone */
    assert_int_equal(removed, BLK);
    expect_index(d, false, 3, 1, false, FDN_EIO);
    fdn_event_t *ev = make(4 * BLK + 4, true); /* a write pruning up to block 2 */
    assert_int_equal(
        fdn__evdb_write(d, (const fdn_event_t *const *)&ev, 1, 2 * BLK + 1, 4 * BLK + 5, &err), 0);
    fdn_event_free(ev);
    expect_index(d, false, 2, 1, false, FDN_EIO);
    fdn__evdb_close(d);
}

/* At open an index that cannot be brought up to date is rebuilt from the rows, and when even
 * that fails the file opens with the index behind: lookups and writes go on. */
static void an_index_that_cannot_be_built_does_not_stop_the_open(void **state)
{
    fx_t *f = *state;
    write_old_rows(f->path, 1, 3 * BLK + 7, true);
    fdn__evdb_t *d = open_db(f->path); /* indexed at open */
    assert_int_equal(runs_to(f->path), 3);
    fdn__evdb_close(d);
    test_sqlite_exec(f->path, "UPDATE meta SET value = 0 WHERE key = 'runs_to';" REFUSE_RUNS);
    d = open_db(f->path);
    expect_index(d, false, 3, 1, true, FDN_EIO); /* opened behind: one failed rebuild */
    expect_corr_scan(d, 3 * BLK + 7, 6, NULL, 0, 0, true, SIZE_MAX, 3 * BLK + 7);
    write_range(d, 3 * BLK + 8, 3 * BLK + 20, true); /* the retry waits a write */
    expect_index(d, false, 3, 1, true, FDN_EIO);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 3 * BLK + 20);
    fdn__evdb_close(d);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse");
    d = open_db(f->path); /* rebuilt */
    expect_index(d, true, 0, 0, true, 0); /* counted since open */
    assert_int_equal(runs_to(f->path), 3);
    expect_corr(d, 3 * BLK + 20, 6, NULL, 0, 3 * BLK + 1, false, SIZE_MAX);
    fdn__evdb_close(d);
}

/* ---- the row count: meta count, min_id, max_id ---- */

/* fdn__evdb_stats and the file's meta rows say count rows from lo to hi (0, 0 when empty), and
 * so does the table itself. */
static void expect_count(fdn__evdb_t *d, const char *path, uint64_t count, uint64_t lo, uint64_t hi)
{
    fdn__evb_stats_t st = {0};
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_stats(d, &st, &err), 0);
    assert_int_equal(st.count, count);
    assert_int_equal(st.oldest, lo);
    assert_int_equal(st.newest, hi);
    assert_int_equal(test_sqlite_int(path, "SELECT count(*) FROM events"), count);
    assert_int_equal(test_sqlite_int(path, "SELECT value FROM meta WHERE key = 'count' AND "
                                           "typeof(value) = 'integer'"),
                     count);
    assert_int_equal(test_sqlite_int(path, "SELECT value FROM meta WHERE key = 'count_min_id'"),
                     lo);
    assert_int_equal(test_sqlite_int(path, "SELECT value FROM meta WHERE key = 'count_max_id'"),
                     hi);
}

static void write_prune(fdn__evdb_t *d, uint64_t first, uint64_t last, uint64_t below, int want)
{
    fdn_event_t *evs[64] = {NULL};
    size_t n = 0;
    for (uint64_t id = first; id <= last && first > 0; id++)
        evs[n++] = make(id, true);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__evdb_write(d, (const fdn_event_t *const *)evs, n, below, last + 1, &err);
    assert_int_equal(rc, want);
    for (size_t i = 0; i < n; i++)
        fdn_event_free(evs[i]);
}

static void the_count_follows_inserts_and_prunes(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    expect_count(d, f->path, 0, 0, 0);
    write_range(d, 1, 100, true);
    expect_count(d, f->path, 100, 1, 100);
    write_prune(d, 101, 110, 31, 0); /* the writer's prune rides on a write */
    expect_count(d, f->path, 80, 31, 110);
    write_prune(d, 0, 0, 41, 0); /* a prune alone */
    expect_count(d, f->path, 70, 41, 110);
    uint64_t removed = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 51, &removed, &err), 0); /* the read connection */
    assert_int_equal(removed, 10);
    expect_count(d, f->path, 60, 51, 110);
    assert_int_equal(fdn__evdb_prune(d, 51, &removed, &err), 0); /* nothing below 51 now */
    assert_int_equal(removed, 0);
    expect_count(d, f->path, 60, 51, 110);
    assert_int_equal(fdn__evdb_prune(d, 1000, &removed, &err), 0); /* everything */
    assert_int_equal(removed, 60);
    expect_count(d, f->path, 0, 0, 0);
    write_range(d, 111, 120, true);
    expect_count(d, f->path, 10, 111, 120);
    fdn__evdb_close(d);
    /* reopened: the stored count is kept, not counted again */
    d = open_db(f->path);
    assert_false(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 10, 111, 120);
    fdn__evdb_close(d);
}

/* A prune deletes in transactions of at most fdn__evdb_prune_chunk rows (here 100), so the
 * file's write lock is never held for the whole of a large prune: a failure in its fifth
 * transaction leaves the four before it done, counted, and the index's runs below them cut.
 * (Before: one transaction deleted every row, 3 M rows held the lock 1.27 s, and a writer
 * waiting that long failed.) */
static void a_prune_commits_in_chunks(void **state)
{
    fx_t *f = *state;
    uint32_t chunk = fdn__evdb_prune_chunk;
    fdn__evdb_prune_chunk = 100;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 1000, true);
    test_sqlite_exec(f->path, "CREATE TRIGGER refuse_del BEFORE DELETE ON events WHEN OLD.id = 450 "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END");
    uint64_t removed = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 900, &removed, &err), FDN_EIO);
    assert_int_equal(removed, 400);
    expect_count(d, f->path, 600, 401, 1000);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse_del");
    assert_int_equal(fdn__evdb_prune(d, 900, &removed, &err), 0);
    assert_int_equal(removed, 499);
    expect_count(d, f->path, 101, 900, 1000);
    fdn__evdb_close(d);
    fdn__evdb_prune_chunk = chunk;
}

/* A write or prune that fails midway rolls its rows and its count back together; a row an
 * insert did not add (a trigger ignoring it) is not counted. */
static void a_failed_write_leaves_the_count(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 100, true);
    test_sqlite_exec(f->path, "CREATE TRIGGER refuse_row BEFORE INSERT ON events WHEN NEW.id = 105 "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END");
    write_prune(d, 101, 110, 0, FDN_EIO); /* 101-104 inserted, then the abort */
    expect_count(d, f->path, 100, 1, 100);
    write_prune(d, 101, 110, 50, FDN_EIO); /* with a prune: neither stays */
    expect_count(d, f->path, 100, 1, 100);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse_row;"
                              "CREATE TRIGGER refuse_del BEFORE DELETE ON events WHEN OLD.id = 20 "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END");
    uint64_t removed = 7;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 50, &removed, &err), FDN_EIO);
    assert_int_equal(removed, 0); /* the rows its committed transactions deleted: none */
    expect_count(d, f->path, 100, 1, 100);
    /* the duplicate of a stored id fails the transaction */
    write_prune(d, 100, 105, 0, FDN_EIO);
    expect_count(d, f->path, 100, 1, 100);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse_del;"
                              "CREATE TRIGGER skip_row BEFORE INSERT ON events WHEN NEW.id = 105 "
                              "BEGIN SELECT RAISE(IGNORE); END");
    write_prune(d, 101, 110, 0, 0);
    expect_count(d, f->path, 109, 1, 110); /* 105 was not inserted */
    fdn__evdb_close(d);
    d = open_db(f->path);
    assert_false(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 109, 1, 110);
    fdn__evdb_close(d);
}

/* A file from before the count (no key), rows an older library appended or pruned since the
 * count was written (min_id, max_id no longer the table's): counted once at open. */
static void a_file_without_the_count_is_counted_once(void **state)
{
    fx_t *f = *state;
    write_old_rows(f->path, 1, 500, true);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM meta WHERE key = 'count'"), 0);
    fdn__evdb_t *d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 500, 1, 500);
    fdn__evdb_close(d);
    d = open_db(f->path);
    assert_false(fdn__evdb_count_recomputed(d));
    fdn__evdb_close(d);

    /* the key deleted from a counted file */
    test_sqlite_exec(f->path, "DELETE FROM meta WHERE key = 'count'");
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 500, 1, 500);
    fdn__evdb_close(d);

    /* an older library appends (it keeps no count) */
    write_old_rows(f->path, 501, 620, false);
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 620, 1, 620);
    fdn__evdb_close(d);

    /* an older library's prune */
    test_sqlite_exec(f->path, "DELETE FROM events WHERE id < 101");
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 520, 101, 620);
    fdn__evdb_close(d);

    /* ... of everything */
    test_sqlite_exec(f->path, "DELETE FROM events");
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 0, 0, 0);
    write_range(d, 621, 630, true);
    expect_count(d, f->path, 10, 621, 630);
    fdn__evdb_close(d);
}

/* A damaged count (a value that is not a non-negative integer, or one the cheap checks refute)
 * or stamp is counted again at open; one damaged while the file is open is not reported
 * (stats counts the rows) and is counted again at the next open. */
static void a_damaged_count_is_counted_again(void **state)
{
    fx_t *f = *state;
    fdn__evdb_t *d = open_db(f->path);
    write_range(d, 1, 300, true);
    fdn__evdb_close(d);
    static const char *const damage[] = {
        "UPDATE meta SET value = 'abc' WHERE key = 'count'",
        "UPDATE meta SET value = x'012c' WHERE key = 'count'",
        "UPDATE meta SET value = 300.5 WHERE key = 'count'",
        "UPDATE meta SET value = NULL WHERE key = 'count'",
        "UPDATE meta SET value = -300 WHERE key = 'count'",
        "UPDATE meta SET value = 0 WHERE key = 'count'",   /* 0 with rows */
        "UPDATE meta SET value = 301 WHERE key = 'count'", /* more than ids 1..300 allow */
        "UPDATE meta SET value = 9223372036854775807 WHERE key = 'count'",
        "UPDATE meta SET value = 2 WHERE key = 'count_min_id'",
        "UPDATE meta SET value = 'x' WHERE key = 'count_max_id'",
        "DELETE FROM meta WHERE key = 'count_min_id'",
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        test_sqlite_exec(f->path, damage[i]);
        d = open_db(f->path);
        if (!fdn__evdb_count_recomputed(d))
            fail_msg("not counted again after: %s", damage[i]);
        expect_count(d, f->path, 300, 1, 300);
        fdn__evdb_close(d);
    }
    /* an empty table with a count */
    d = open_db(f->path);
    uint64_t removed = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__evdb_prune(d, 301, &removed, &err), 0);
    fdn__evdb_close(d);
    test_sqlite_exec(f->path, "UPDATE meta SET value = 5 WHERE key = 'count'");
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 0, 0, 0);
    write_range(d, 301, 400, true);

    /* damaged while open: stats counts the rows; the writer keeps it damaged (never a number
     * again); the next open counts */
    test_sqlite_exec(f->path, "UPDATE meta SET value = 'abc' WHERE key = 'count'");
    fdn__evb_stats_t st = {0};
    assert_int_equal(fdn__evdb_stats(d, &st, &err), 0);
    assert_int_equal(st.count, 100);
    assert_int_equal(st.oldest, 301);
    assert_int_equal(st.newest, 400);
    write_range(d, 401, 410, true);
    assert_int_equal(test_sqlite_int(f->path, "SELECT typeof(value) = 'null' FROM meta WHERE key = "
                                              "'count'"),
                     1);
    assert_int_equal(fdn__evdb_stats(d, &st, &err), 0);
    assert_int_equal(st.count, 110);
    test_sqlite_exec(f->path, "UPDATE meta SET value = 0 WHERE key = 'count'"); /* 0 with rows */
    assert_int_equal(fdn__evdb_stats(d, &st, &err), 0);
    assert_int_equal(st.count, 110);
    fdn__evdb_close(d);
    d = open_db(f->path);
    assert_true(fdn__evdb_count_recomputed(d));
    expect_count(d, f->path, 110, 301, 410);
    fdn__evdb_close(d);
}

/* meta is not the store's (a view): the count cannot be stored, the open fails with a
 * message (as writing the index's secret would). */
/* Writes 60 000 events (over 8 MB through the WAL) in commits of 1000 from id first and
 * returns the largest size the WAL file reached. With no reader, the PASSIVE checkpoint at
 * FDN__EVDB_WAL_PASSIVE_BYTES lets the next commit start the WAL over. */
static int64_t wal_peak(fdn__evdb_t *d, const char *path, uint64_t first)
{
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", path);
    int64_t peak = 0;
    for (uint64_t id = first; id < first + 60000; id += 1000) {
        write_range(d, id, id + 999, true);
        struct stat sb;
        assert_int_equal(stat(wal, &sb), 0);
        if (sb.st_size > peak)
            peak = sb.st_size;
    }
    return peak;
}

/* A new file gets FDN__EVDB_PAGE_SIZE pages; a file an older version created with SQLite's 4
 * KiB pages keeps them and is written as before. For both the WAL's bound is the same number
 * of bytes (a bound in pages would let the 8 KiB file's WAL reach twice as far). */
static void page_size_new_and_old_files(void **state)
{
    fx_t *f = *state;
    const int64_t bound = FDN__EVDB_WAL_PASSIVE_BYTES + ((int64_t)1 << 20); /* + a commit */
    fdn__evdb_t *d = open_db(f->path);
    assert_int_equal(test_sqlite_int(f->path, "PRAGMA page_size"), FDN__EVDB_PAGE_SIZE);
    int64_t peak = wal_peak(d, f->path, 1);
    assert_true(peak > FDN__EVDB_WAL_PASSIVE_BYTES / 2);
    assert_true(peak < bound);
    fdn__evdb_close(d);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 60000);

    char old[224];
    snprintf(old, sizeof old, "%s/old.db", f->dir);
    write_old_rows(old, 1, 10, true);
    assert_int_equal(test_sqlite_int(old, "PRAGMA page_size"), 4096);
    d = open_db(old);
    peak = wal_peak(d, old, 11);
    assert_true(peak > FDN__EVDB_WAL_PASSIVE_BYTES / 2);
    assert_true(peak < bound);
    expect_corr(d, 60010, 11, NULL, 0, 7 * BLK + 1, false, SIZE_MAX); /* blocks with runs */
    fdn__evdb_close(d);
    assert_int_equal(test_sqlite_int(old, "PRAGMA page_size"), 4096);
    assert_int_equal(test_sqlite_int(old, "SELECT count(*) FROM events"), 60010);
}

static void a_foreign_meta_refuses_the_open(void **state)
{
    fx_t *f = *state;
    test_sqlite_exec(f->path,
                     "CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type "
                     "TEXT NOT NULL, rec BLOB NOT NULL);"
                     "CREATE VIEW meta AS SELECT 'next_id' AS key, 7 AS value");
    fdn__evdb_t *d = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__evdb_open(&d, f->path, true, false, &err);
    assert_true(rc == FDN_EIO || rc == FDN_ECORRUPT);
    assert_null(d);
    assert_non_null(strstr(err.message, "event store file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(correlation_lookup_reads_only_its_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_and_empty_correlation_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(the_last_blocks_keys_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_write_keeps_no_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(next_id_survives_pruning_every_row, setup, teardown),
        cmocka_unit_test_setup_teardown(an_id_below_the_block_being_gathered_is_merged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_prune_drops_whole_blocks_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_from_before_the_index_is_indexed_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_damaged_row_does_not_stop_indexing, setup, teardown),
        cmocka_unit_test_setup_teardown(the_secret_is_per_file_and_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(runs_merge_across_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(a_merge_in_progress_resumes_after_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_merge_drops_the_keys_of_pruned_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(an_index_that_cannot_be_written_never_fails_a_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_index_that_cannot_be_built_does_not_stop_the_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pruned_blocks_are_not_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_directory_rows_do_not_stop_the_merges, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_count_follows_inserts_and_prunes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_write_leaves_the_count, setup, teardown),
        cmocka_unit_test_setup_teardown(a_prune_commits_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_without_the_count_is_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_count_is_counted_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_foreign_meta_refuses_the_open, setup, teardown),
        cmocka_unit_test_setup_teardown(page_size_new_and_old_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
