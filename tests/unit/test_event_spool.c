/* Unit tests: the event store's local spool (storage/event_spool.h), a SQLite file of batches
 * waiting for PostgreSQL: batches come back whole, oldest first, with their ids, within a
 * count of events and of bytes; a drop
 * forgets them; the byte bound refuses a batch and writes nothing; a reopened spool counts
 * what it holds; a damaged row is refused with FDN_ECORRUPT and a message naming the batch
 * when it is the oldest, and ends the peek before it behind good ones; a quarantine moves one
 * batch, bytes unchanged, out of the spool's count into its own, within its own bound; a row
 * whose n or bytes column is damaged (negative) skews no other row's count; an empty peek
 * sets the counts to 0; SQLite out of memory in a peek is FDN_ENOMEM, never FDN_ECORRUPT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include <fdn/events.h>

#include "core/alloc.h"
#include "sqlite_fault.h"
#include "storage/event_spool.h"
#include "tmpdir.h"

typedef test_tmpfile_t fx_t;

static int setup(void **state)
{
    static fx_t f;
    *state = &f;
    return test_tmpfile_make(&f, "spool", "spool.db");
}

static int teardown(void **state)
{
    test_tmpfile_remove(*state);
    return 0;
}

static fdn_event_t *make(const char *type, const char *data)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.data = data;
    sp.data_len = strlen(data);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    return ev;
}

static void uids(fdn__spool_uid_t *u, size_t n, unsigned batch)
{
    for (size_t i = 0; i < n; i++)
        snprintf(u[i], sizeof u[i], "%08x-0000-4000-8000-%012x", batch, (unsigned)i);
}

/* Put a batch of n events typed "t<batch>.<i>". */
static void put(fdn__spool_t *s, unsigned batch, size_t n)
{
    fdn_event_t *evs[8];
    fdn__spool_uid_t u[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        char type[32];
        snprintf(type, sizeof type, "t%u.%zu", batch, i);
        evs[i] = make(type, "{\"k\":1}");
    }
    uids(u, n, batch);
    assert_int_equal(
        fdn__spool_put(s, (const fdn_event_t *const *)evs, (const fdn__spool_uid_t *)u, n, NULL),
        0);
    for (size_t i = 0; i < n; i++)
        fdn_event_free(evs[i]);
}

static void free_peeked(fdn_event_t **evs, fdn__spool_uid_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fdn_event_free(evs[i]);
    fdn__free(evs);
    fdn__free(u);
}

/* The spool at path, opened with the byte bound max_bytes (an open that fails fails the
 * test). */
static fdn__spool_t *spool_at(const char *path, uint64_t max_bytes)
{
    fdn__spool_t *s = NULL;
    int rc = fdn__spool_open(&s, path, max_bytes, NULL);
    if (rc != 0)
        fail_msg("fdn__spool_open %s: %s (%d)", path, fdn_err_name(rc), rc);
    return s;
}

/* A closed spool file at path holding batch 1 of n events: the file a test then damages. */
static void one_batch_file(const char *path, size_t n)
{
    fdn__spool_t *s = spool_at(path, 1u << 20);
    put(s, 1, n);
    fdn__spool_close(s);
}

/* A spool at path bounded to two batches of one event and half of a third: batch 1 put, its
 * bytes in *one, the spool reopened with that bound and batch 2 put. */
static fdn__spool_t *room_for_two(const char *path, uint64_t *one)
{
    fdn__spool_t *s = spool_at(path, 1u << 20);
    put(s, 1, 1);
    uint64_t events = 0;
    fdn__spool_usage(s, &events, one);
    fdn__spool_close(s);
    s = spool_at(path, *one * 2 + *one / 2);
    put(s, 2, 1);
    return s;
}

static void batches_come_back_whole_in_order(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    put(s, 2, 3);
    put(s, 3, 1);
    uint64_t events = 0, bytes = 0;
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 6);
    assert_true(bytes > 0);

    /* at most 4 events: the first batch (2), not the second (it would make 5) */
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 4, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(fdn_event_type(evs[0]), "t1.0");
    assert_string_equal(fdn_event_type(evs[1]), "t1.1");
    fdn__spool_uid_t want[2];
    uids(want, 2, 1);
    assert_string_equal(u[1], want[1]);
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);

    /* the first batch is given whole even when it passes max_events */
    assert_int_equal(fdn__spool_peek(s, 1, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(fdn_event_type(evs[2]), "t2.2");
    free_peeked(evs, u, n);
    fdn__spool_close(s);

    /* reopened: it counts what it holds, and the peeked-not-dropped batch is still first */
    s = spool_at(f->path, 1u << 20);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 4);
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(fdn_event_type(evs[0]), "t2.0");
    assert_string_equal(fdn_event_type(evs[3]), "t3.0");
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), FDN_ENOENT);
    fdn__spool_close(s);
}

/* max_bytes bounds the records' bytes of the batches given together (the replay's
 * transaction stays within the backend's payload bound); the first batch comes whole. */
static void peek_stops_at_max_bytes(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    uint64_t events = 0, b[4] = {0};
    for (unsigned i = 1; i <= 3; i++) { /* b[i]: the bytes of batches 1..i */
        put(s, i, 2);
        fdn__spool_usage(s, &events, &b[i]);
    }
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    /* room for two batches, not three */
    assert_int_equal(fdn__spool_peek(s, 100, b[3] - 1, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(fdn_event_type(evs[3]), "t2.1");
    free_peeked(evs, u, n);
    /* less than one batch: the first one whole all the same */
    assert_int_equal(fdn__spool_peek(s, 100, 1, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(fdn_event_type(evs[1]), "t1.1");
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);
    /* exactly two batches' bytes: both */
    assert_int_equal(fdn__spool_peek(s, 100, b[3] - b[1], &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(fdn_event_type(evs[0]), "t2.0");
    assert_string_equal(fdn_event_type(evs[3]), "t3.1");
    free_peeked(evs, u, n);
    fdn__spool_close(s);
}

static void a_full_spool_refuses_and_writes_nothing(void **state)
{
    fx_t *f = *state;
    uint64_t events = 0, one = 0;
    fdn__spool_t *s = room_for_two(f->path, &one); /* room for two such batches, not three */
    fdn_event_t *ev = make("t3.0", "{\"k\":1}");
    fdn__spool_uid_t u[1];
    uids(u, 1, 3);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(
        fdn__spool_put(s, (const fdn_event_t *const *)&ev, (const fdn__spool_uid_t *)u, 1, &err),
        FDN_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "spool full"));
    fdn_event_free(ev);
    uint64_t bytes = 0;
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 2);
    assert_int_equal(bytes, one * 2);
    fdn__spool_close(s);
}

/* Overwrite one row's column through SQLite, as damage would. */
static void damage(const char *path, const char *update)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, update, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* XOR the first byte of the second record of the only row (each record carries its length,
 * little-endian, at bytes 8..11). */
static void flip_second_record(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT body FROM spool", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    unsigned char body[4096];
    assert_true(n <= sizeof body && n > 12);
    memcpy(body, sqlite3_column_blob(st, 0), n);
    sqlite3_finalize(st);
    size_t first =
        (size_t)body[8] | (size_t)body[9] << 8 | (size_t)body[10] << 16 | (size_t)body[11] << 24;
    assert_true(first < n);
    body[first] ^= 0xff;
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE spool SET body = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, body, (int)n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void expect_corrupt(const char *path, const char *why)
{
    fdn__spool_t *s = spool_at(path, 1u << 20);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, &err), FDN_ECORRUPT);
    assert_non_null(strstr(err.message, "batch 1"));
    assert_non_null(strstr(err.message, why));
    assert_null(evs);
    fdn__spool_close(s);
}

/* A record that does not decode is damage: FDN_ECORRUPT naming the batch and the event (the
 * decoder's own code, FDN_EDESERIALIZE, was passed through before). */
static void a_damaged_record_is_corrupt(void **state)
{
    fx_t *f = *state;
    one_batch_file(f->path, 2);
    flip_second_record(f->path);
    expect_corrupt(f->path, "batch 1, event 2");
}

static void a_record_of_foreign_bytes_is_corrupt(void **state)
{
    fx_t *f = *state;
    one_batch_file(f->path, 1);
    /* a length that fits, over bytes that are no record */
    damage(f->path, "UPDATE spool SET body = x'0000000000000000100000000102030405060708'");
    expect_corrupt(f->path, "event 1");
}

static void rows_that_disagree_are_corrupt(void **state)
{
    fx_t *f = *state;
    one_batch_file(f->path, 2);
    damage(f->path, "UPDATE spool SET n = 3");
    expect_corrupt(f->path, "malformed");
    damage(f->path, "UPDATE spool SET n = 2, body = substr(body, 1, 20)");
    expect_corrupt(f->path, "cut short");
}

/* A count cut short with its ids (n = 1 over a body of two records) is damage: the peek gave
 * back the first event alone, and the replay dropped the second, acknowledged, unseen. */
static void a_body_longer_than_its_count_is_corrupt(void **state)
{
    fx_t *f = *state;
    one_batch_file(f->path, 2);
    damage(f->path, "UPDATE spool SET n = 1, uids = substr(uids, 1, 36)");
    expect_corrupt(f->path, "past its 1 events");
}

/* An id the backend would refuse as a UUID (the replay would stop on it every time) is damage
 * found at the peek; found by fuzz_event_spool (a NUL inside the id). */
static void an_id_that_is_no_uuid_is_corrupt(void **state)
{
    fx_t *f = *state;
    one_batch_file(f->path, 2);
    damage(f->path, "UPDATE spool SET uids = substr(uids, 1, 40) || 'x' || substr(uids, 42)");
    expect_corrupt(f->path, "event 2: its id is not a UUID");
    damage(f->path, "UPDATE spool SET uids = substr(uids, 1, 8) || '+' || substr(uids, 10)");
    expect_corrupt(f->path, "event 1: its id is not a UUID");
}

/* One column of one row as hex (SQLite's hex()), into out. */
static void row_hex(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *t = (const char *)sqlite3_column_text(st, 0);
    assert_non_null(t);
    assert_true(strlen(t) < cap);
    snprintf(out, cap, "%s", t);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Behind good batches a damaged one ends the peek (the good ones come back); first, it is
 * FDN_ECORRUPT with its key, and quarantined it leaves the spool with its bytes as they were:
 * the next peek gives the batches behind it, the usage drops it, the quarantine counts it (at
 * a reopen too). */
static void a_damaged_batch_is_quarantined_as_it_is(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    put(s, 2, 2);
    put(s, 3, 1);
    uint64_t events = 0, all = 0, bytes = 0;
    fdn__spool_usage(s, &events, &all);
    fdn__spool_close(s);
    damage(f->path, "UPDATE spool SET body = x'0102030405' WHERE seq = 2");
    char before[8192], after[8192], ids_before[512], ids_after[512];
    row_hex(f->path, "SELECT hex(body) FROM spool WHERE seq = 2", before, sizeof before);
    row_hex(f->path, "SELECT hex(uids) FROM spool WHERE seq = 2", ids_before, sizeof ids_before);

    s = spool_at(f->path, 1u << 20);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, &err), 0);
    assert_int_equal(n, 2); /* batch 1 only */
    assert_int_equal(seq, 1);
    assert_string_equal(err.message, ""); /* untouched on success */
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);
    evs = NULL;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, &err), FDN_ECORRUPT);
    assert_int_equal(seq, 2);
    assert_null(evs);
    assert_non_null(strstr(err.message, "batch 2"));
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 3);
    uint64_t qb = 9, qe = 9, qby = 9;
    int qerr = 9;
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 0);
    assert_int_equal(qe, 0);
    assert_int_equal(qby, 0);
    assert_int_equal(qerr, 0);
    uint64_t moved = 0;
    assert_int_equal(fdn__spool_quarantine(s, seq, 1234, FDN_ECORRUPT, err.message, &moved, NULL),
                     0);
    assert_int_equal(moved, 2);
    uint64_t left = 0;
    fdn__spool_usage(s, &events, &left);
    assert_int_equal(events, 1);
    assert_int_equal(fdn__spool_quarantine(s, seq, 1234, FDN_ECORRUPT, "again", NULL, &err),
                     FDN_ENOENT);
    /* the batch behind it comes next */
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(seq, 3);
    assert_int_equal(n, 1);
    assert_string_equal(fdn_event_type(evs[0]), "t3.0");
    free_peeked(evs, u, n);
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 1);
    assert_int_equal(qe, 2);
    assert_int_equal(qby, bytes - left);
    assert_int_equal(qerr, FDN_ECORRUPT);
    fdn__spool_close(s);

    /* in the table, as it was, with when and why */
    row_hex(f->path, "SELECT hex(body) FROM quarantine WHERE seq = 2", after, sizeof after);
    assert_string_equal(after, before);
    row_hex(f->path, "SELECT hex(uids) FROM quarantine WHERE seq = 2", ids_after, sizeof ids_after);
    assert_string_equal(ids_after, ids_before);
    char meta[512];
    row_hex(f->path,
            "SELECT quarantined_at || ' ' || error || ' ' || error_name || ' ' ||"
            " (instr(message, 'batch 2') > 0) FROM quarantine",
            meta, sizeof meta);
    char want[128];
    snprintf(want, sizeof want, "1234 %d %s 1", FDN_ECORRUPT, fdn_err_name(FDN_ECORRUPT));
    assert_string_equal(meta, want);
    row_hex(f->path, "SELECT count(*) FROM spool WHERE seq = 2", meta, sizeof meta);
    assert_string_equal(meta, "0");

    /* reopened: counted again, the spool's usage without it */
    s = spool_at(f->path, 1u << 20);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 1);
    assert_int_equal(bytes, left);
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 1);
    assert_int_equal(qe, 2);
    assert_int_equal(qerr, FDN_ECORRUPT);
    fdn__spool_close(s);
}

/* The quarantine's own bound (the spool's max_bytes): a batch that does not fit stays in the
 * spool, nothing moved; quarantined bytes leave room in the spool for new puts. */
static void the_quarantine_has_its_own_bound(void **state)
{
    fx_t *f = *state;
    /* room for two such batches in the spool, and two in the quarantine */
    uint64_t events = 0, one = 0;
    fdn__spool_t *s = room_for_two(f->path, &one);
    assert_int_equal(fdn__spool_quarantine(s, 1, 1, FDN_EINVAL, "refused", NULL, NULL), 0);
    assert_int_equal(fdn__spool_quarantine(s, 2, 2, FDN_EINVAL, "refused", NULL, NULL), 0);
    put(s, 3, 1); /* the spool is empty again: the quarantine's bytes do not count */
    put(s, 4, 1);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__spool_quarantine(s, 3, 3, FDN_EINVAL, "refused", NULL, &err), FDN_ENOSPC);
    assert_non_null(strstr(err.message, "quarantine full"));
    fdn__spool_usage(s, &events, &one);
    assert_int_equal(events, 2);
    uint64_t qb = 0, qe = 0, qby = 0;
    int qerr = 0;
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 2);
    assert_int_equal(qe, 2);
    fdn__spool_close(s);
}

/* The spool's AUTOINCREMENT counter lost (the operator dropped the spool table, the store made
 * it again): a new batch gets the key of a batch in the quarantine, and quarantining it still
 * succeeds, both rows kept with their seq. The quarantine's key was the spool's seq: the
 * INSERT failed on it, FDN_EIO every time, and the batch blocked the spool for good. */
static void a_reused_seq_is_quarantined_all_the_same(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    assert_int_equal(fdn__spool_quarantine(s, 1, 10, FDN_EINVAL, "first", NULL, NULL), 0);
    fdn__spool_close(s);
    damage(f->path, "DROP TABLE spool");
    s = spool_at(f->path, 1u << 20);
    put(s, 2, 1);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    free_peeked(evs, u, n);
    assert_int_equal(seq, 1); /* the quarantined batch's key again */
    uint64_t moved = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__spool_quarantine(s, seq, 20, FDN_ECORRUPT, "second", &moved, &err);
    if (rc != 0)
        fail_msg("quarantine: %s (%d): %s", fdn_err_name(rc), rc, err.message);
    assert_int_equal(moved, 1);
    assert_int_equal(fdn__spool_batches(s), 0);
    uint64_t qb = 0, qe = 0, qby = 0;
    int qerr = 0;
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 2);
    assert_int_equal(qe, 3);
    assert_int_equal(qerr, FDN_ECORRUPT);
    fdn__spool_close(s);
    char rows[512];
    row_hex(f->path,
            "SELECT group_concat(seq || ':' || n || ':' || message, ' ') FROM"
            " (SELECT * FROM quarantine ORDER BY seq, rowid)",
            rows, sizeof rows);
    assert_string_equal(rows, "1:2:first 1:1:second");
    /* reopened: both counted, the newest one's error */
    s = spool_at(f->path, 1u << 20);
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 2);
    assert_int_equal(qe, 3);
    assert_int_equal(qerr, FDN_ECORRUPT);
    fdn__spool_close(s);
}

/* A file whose quarantine table has the old layout (seq its key, no id): it opens, its rows
 * are kept and counted, and a batch with one of their seq is quarantined beside them. */
static void an_old_quarantine_table_is_migrated(void **state)
{
    fx_t *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " n INTEGER NOT NULL, bytes INTEGER NOT NULL, uids TEXT NOT NULL,"
                     " body BLOB NOT NULL);"
                     "CREATE TABLE quarantine (seq INTEGER PRIMARY KEY,"
                     " n INTEGER NOT NULL, bytes INTEGER NOT NULL, uids TEXT NOT NULL,"
                     " body BLOB NOT NULL, quarantined_at INTEGER NOT NULL,"
                     " error INTEGER NOT NULL, error_name TEXT NOT NULL, message TEXT NOT NULL);"
                     "INSERT INTO quarantine VALUES (1, 3, 5, 'u', x'0102030405', 7, -1020,"
                     " 'FDN_ECORRUPT', 'old one');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    uint64_t qb = 0, qe = 0, qby = 0;
    int qerr = 0;
    fdn__spool_quarantine_usage(s, &qb, &qe, &qby, &qerr);
    assert_int_equal(qb, 1);
    assert_int_equal(qe, 3);
    assert_int_equal(qby, 5);
    assert_int_equal(qerr, -1020);
    put(s, 1, 1); /* seq 1: the old row's */
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__spool_quarantine(s, 1, 8, FDN_EINVAL, "new one", NULL, &err);
    if (rc != 0)
        fail_msg("quarantine: %s (%d): %s", fdn_err_name(rc), rc, err.message);
    fdn__spool_close(s);
    char rows[512];
    row_hex(f->path,
            "SELECT group_concat(id || ':' || seq || ':' || message, ' ') FROM"
            " (SELECT * FROM quarantine ORDER BY id)",
            rows, sizeof rows);
    assert_string_equal(rows, "1:1:old one 2:1:new one");
    row_hex(f->path, "SELECT hex(body) || ' ' || uids FROM quarantine WHERE id = 1", rows,
            sizeof rows);
    assert_string_equal(rows, "0102030405 u");
}

/* A row's n damaged to a negative value does not take the good rows' events with it (their sum
 * was 0 here, the spool looked empty: the store's writer never replayed the batch behind it
 * and sent later stores past it); every row counts as a batch the replay must see. */
static void a_negative_count_hides_no_batch(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    put(s, 2, 2);
    fdn__spool_close(s);
    damage(f->path, "UPDATE spool SET n = -2 WHERE seq = 1");
    s = spool_at(f->path, 1u << 20);
    uint64_t events = 0, bytes = 0;
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 2); /* batch 2's; the damaged row counts none */
    assert_int_equal(fdn__spool_batches(s), 2);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), FDN_ECORRUPT);
    assert_int_equal(seq, 1);
    assert_int_equal(fdn__spool_quarantine(s, seq, 1, FDN_ECORRUPT, "malformed", NULL, NULL), 0);
    assert_int_equal(fdn__spool_batches(s), 1);
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(n, 2);
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(fdn__spool_batches(s), 0);
    fdn__spool_close(s);
}

/* A row's bytes column damaged to a negative value counts 0 bytes, at open and when it leaves:
 * the good rows' bytes stay counted. Summed as stored, it wrapped the count to a spool "full"
 * for every later put, and stayed so after the row was gone (its drop took 0 off). */
static void a_negative_size_does_not_fill_the_spool(void **state)
{
    fx_t *f = *state;
    uint64_t events = 0, one = 0, bytes = 0;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 1);
    put(s, 2, 1);
    fdn__spool_usage(s, &events, &one);
    one /= 2;
    fdn__spool_close(s);
    damage(f->path, "UPDATE spool SET bytes = -1000000000 WHERE seq = 1");
    s = spool_at(f->path, 1u << 20);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 2);
    assert_int_equal(bytes, one); /* batch 2's */
    put(s, 3, 1);                 /* refused as "spool full" before */
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 1, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(seq, 1);
    free_peeked(evs, u, n);
    assert_int_equal(fdn__spool_drop(s, seq, NULL), 0);
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 2);
    assert_int_equal(bytes, 2 * one);
    assert_int_equal(fdn__spool_batches(s), 2);
    fdn__spool_close(s);
}

/* A peek that finds the spool empty sets its counts to 0, whatever they said: the store's
 * writer replays while the spool counts a batch, and would try again at once for ever. */
static void an_empty_peek_resets_the_counts(void **state)
{
    fx_t *f = *state;
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    damage(f->path, "DELETE FROM spool"); /* behind its back */
    assert_int_equal(fdn__spool_batches(s), 1);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), FDN_ENOENT);
    uint64_t events = 9, bytes = 9;
    fdn__spool_usage(s, &events, &bytes);
    assert_int_equal(events, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(fdn__spool_batches(s), 0);
    fdn__spool_close(s);
}

/* A drop whose COMMIT fails (the WAL's fsync reports an error: sqlite_fault.h) leaves the
 * counts as they were, agreeing with what the next peek finds. They were taken off row by row
 * as the DELETE returned them, before it completed: the spool counted nothing while it held
 * the batch, and the store's writer took it for empty (the acknowledged batch not replayed,
 * later stores sent past it). */
static void a_failed_drop_keeps_the_counts(void **state)
{
    fx_t *f = *state;
    assert_int_equal(test_sqlite_fault_install(), 0);
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    put(s, 1, 2);
    uint64_t events = 0, bytes = 0, held = 0;
    fdn__spool_usage(s, &events, &held);
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    free_peeked(evs, u, n);
    long failed = test_sqlite_fault_count();
    test_sqlite_fault_wal_sync(true);
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__spool_drop(s, seq, &err);
    test_sqlite_fault_wal_sync(false);
    assert_true(test_sqlite_fault_count() > failed);
    assert_int_equal(rc, FDN_EIO);
    assert_non_null(strstr(err.message, "drop"));
    rc = fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL);
    fdn__spool_usage(s, &events, &bytes);
    if (rc == 0) { /* still held: still counted */
        assert_int_equal(n, 2);
        free_peeked(evs, u, n);
        assert_int_equal(events, 2);
        assert_int_equal(bytes, held);
        assert_int_equal(fdn__spool_batches(s), 1);
    } else {
        assert_int_equal(rc, FDN_ENOENT);
        assert_int_equal(events, 0);
        assert_int_equal(bytes, 0);
        assert_int_equal(fdn__spool_batches(s), 0);
    }
    fdn__spool_close(s);
}

/* SQLite's allocator, wrapped: while fail_at > 0, the fail_at-th allocation from then fails. */
static sqlite3_mem_methods g_mem;
static long g_allocs, g_fail_at;
static bool g_failed;

static bool alloc_fails(void)
{
    if (g_fail_at <= 0 || ++g_allocs != g_fail_at)
        return false;
    g_failed = true;
    return true;
}

static void *mem_malloc(int n)
{
    return alloc_fails() ? NULL : g_mem.xMalloc(n);
}

static void *mem_realloc(void *p, int n)
{
    return alloc_fails() ? NULL : g_mem.xRealloc(p, n);
}

/* Swap SQLite's allocator (every connection closed): the wrapper (on) or its own (off). */
static void sqlite_mem_wrap(bool on)
{
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    if (on) {
        assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_mem), SQLITE_OK);
        sqlite3_mem_methods m = g_mem;
        m.xMalloc = mem_malloc;
        m.xRealloc = mem_realloc;
        assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
    } else {
        assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &g_mem), SQLITE_OK);
    }
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
}

/* SQLite out of memory in a peek, at each of its allocations in turn (a spool file in UTF-16:
 * reading the ids as text converts them): the peek fails with FDN_ENOMEM or FDN_EIO, or
 * succeeds, never says FDN_ECORRUPT (the replay would quarantine a good batch); the next one,
 * with memory, gives the batch. The ids' length read first was 0 then: "malformed". */
static void sqlite_out_of_memory_in_a_peek_is_no_damage(void **state)
{
    fx_t *f = *state;
    /* a file in UTF-16 (made so before the spool's tables): reading the ids as text converts */
    damage(f->path, "PRAGMA encoding = 'UTF-16le'; CREATE TABLE other (x)");
    one_batch_file(f->path, 3);
    sqlite_mem_wrap(true);
    fdn__spool_t *s = spool_at(f->path, 1u << 20);
    bool enomem = false;
    for (long at = 1; at < 1000; at++) {
        int64_t seq = 0;
        fdn_event_t **evs = NULL;
        fdn__spool_uid_t *u = NULL;
        size_t n = 0;
        fdn_error_t err = FDN_ERROR_INIT;
        g_allocs = 0;
        g_failed = false;
        g_fail_at = at;
        int rc = fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, &err);
        g_fail_at = 0;
        if (rc == 0)
            free_peeked(evs, u, n);
        if (rc != 0 && rc != FDN_ENOMEM && rc != FDN_EIO)
            fail_msg("allocation %ld failed: %s (%d): %s", at, fdn_err_name(rc), rc, err.message);
        enomem = enomem || rc == FDN_ENOMEM;
        if (!g_failed) { /* every allocation done: the peek had what it needed */
            assert_int_equal(rc, 0);
            break;
        }
    }
    int64_t seq = 0;
    fdn_event_t **evs = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t n = 0;
    assert_int_equal(fdn__spool_peek(s, 100, 0, &seq, &evs, &u, &n, NULL), 0);
    assert_int_equal(n, 3);
    free_peeked(evs, u, n);
    fdn__spool_close(s);
    sqlite_mem_wrap(false);
    assert_true(enomem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(batches_come_back_whole_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(peek_stops_at_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_spool_refuses_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_record_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(a_record_of_foreign_bytes_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(rows_that_disagree_are_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(a_body_longer_than_its_count_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(an_id_that_is_no_uuid_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_batch_is_quarantined_as_it_is, setup, teardown),
        cmocka_unit_test_setup_teardown(the_quarantine_has_its_own_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(a_reused_seq_is_quarantined_all_the_same, setup, teardown),
        cmocka_unit_test_setup_teardown(an_old_quarantine_table_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(a_negative_count_hides_no_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(a_negative_size_does_not_fill_the_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_peek_resets_the_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_drop_keeps_the_counts, setup, teardown),
        /* last: it restarts SQLite, which makes its own VFS the default again */
        cmocka_unit_test_setup_teardown(sqlite_out_of_memory_in_a_peek_is_no_damage, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
