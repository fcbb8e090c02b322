/*
 * DESIGN: opening the SQLite event file's correlation index, and rebuilding it from the rows (the
 * index as a whole: event_sqlite_corr.c's DESIGN comment).
 *
 * Open (fdn__evdb_corr_open): the index's tables and the file's secret in one transaction (two
 * processes opening one new file at once agree on one secret), the writer's statements
 * prepared (wsql), then the index brought up to date (catch_up).
 *
 * Upgrades and crashes. At open every complete block from runs_to on is indexed from the rows
 * (decoded), a few blocks per transaction with runs_to moving with each, so an interrupted open
 * resumes; the last, incomplete block's keys are gathered into memory. This covers a file
 * written before 0.3.0 (runs_to absent: every row is indexed once, about 1 us per event), rows
 * a 0.2.x library appended to an indexed file (it writes no runs, so runs_to is behind them),
 * and the keys of the last block a crash lost from memory. A file with the first, unreleased
 * layout of this index (corr_runs: one blob per block) has that table dropped and is indexed
 * again from its rows. A row that does not decode gets no key (it is reported damaged when read
 * by id, time or type). What is due to merge is then merged to the end
 * (fdn__evdb_corr_merge_all).
 *
 * A rebuild that fails. At open, an index that cannot be brought up to date is emptied and
 * rebuilt from the rows, and when even that fails the file opens with the index behind (counted
 * as a failure). After a write's index work failed (run_ok false), fdn__evdb_corr_retry runs
 * catch_up before a later write, after a gap of writes that doubles with each failure (up to
 * RETRY_GAP_MAX).
 *
 * Threads: the writer's connection, at open or on the writer thread (retry, resync); close
 * finalizes both connections' statements of the index.
 */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "storage/event_sqlite_corr_int.h"

/* Complete blocks indexed per transaction when indexing at open. */
#define FILL_BLOCKS 16

static const char *const wsql[FDN__EVDB_CORR_STMTS] = {
    [S_PUT] = "INSERT INTO corr_lsm(level, run, first_key, keys) VALUES(?1, ?2, ?3, ?4)",
    [S_DIR] = "INSERT OR REPLACE INTO corr_run(level, run, state) VALUES(?1, ?2, ?3)",
    [S_TO] = "INSERT OR REPLACE INTO meta(key, value) VALUES('runs_to', ?1)",
    [S_BUSY] = "SELECT run FROM corr_run WHERE level = ?1 AND state = 0 AND typeof(run) = "
               "'integer' AND run >= 0 ORDER BY run LIMIT 1",
    [S_PICK] = "SELECT run FROM corr_run AS c WHERE level = ?1 AND state = 1 AND run < ?2 AND "
               "typeof(run) = 'integer' AND run >= 0 AND NOT EXISTS (SELECT 1 FROM corr_run WHERE "
               "level = ?1 + 1 AND run = c.run >> ?3) "
               "ORDER BY run LIMIT 1",
    [S_LAST] = "SELECT keys FROM corr_lsm WHERE level = ?1 AND run = ?2 ORDER BY first_key DESC "
               "LIMIT 1",
    [S_KIDS] = "SELECT run FROM corr_run WHERE level = ?1 AND run >= ?2 AND run < ?3 AND "
               "state = 1 AND typeof(run) = 'integer' ORDER BY run",
    [S_SEEK] = "SELECT first_key, keys FROM corr_lsm WHERE level = ?1 AND run = ?2 AND "
               "first_key <= ?3 AND typeof(first_key) = 'integer' ORDER BY first_key DESC LIMIT 1",
    [S_NEXT] = "SELECT first_key, keys FROM corr_lsm WHERE level = ?1 AND run = ?2 AND "
               "first_key > ?3 AND typeof(first_key) = 'integer' ORDER BY first_key LIMIT 1",
    [S_DEL_LSM] = "DELETE FROM corr_lsm WHERE level = ?1 AND run = ?2",
    [S_DEL_DIR] = "DELETE FROM corr_run WHERE level = ?1 AND run = ?2",
    [S_MIN] = "SELECT min(id) FROM events",
    [S_RETIRE] = "UPDATE corr_run SET state = 2 WHERE level = ?1 AND run >= ?2 AND run < ?3 AND "
                 "state = 1 AND typeof(run) = 'integer'",
    [S_DROP] = "SELECT level, run FROM corr_run WHERE state = 2 AND typeof(level) = 'integer' "
               "AND typeof(run) = 'integer' AND level BETWEEN 0 AND 3 AND run >= 0 LIMIT 1",
    [S_DROP_ROWS] = "DELETE FROM corr_lsm WHERE rowid IN (SELECT rowid FROM corr_lsm WHERE "
                    "level = ?1 AND run = ?2 LIMIT ?3)",
    [S_SP] = "SAVEPOINT corr_index",
    [S_SP_UNDO] = "ROLLBACK TO corr_index",
    [S_SP_END] = "RELEASE corr_index",
};

/* The most writes between two rebuilds of an index left behind (fdn__evdb_corr_retry). */
#define RETRY_GAP_MAX 1024u

int fdn__evdb_corr_runs_to(sqlite3 *db, uint64_t *out, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int s = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'runs_to'", -1, &st, NULL);
    *out = 0;
    if (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return fdn__evdb_map_rc(db, s, err, "read the correlation index");
    return 0;
}

/* The key of a decoded row (false: no correlation id, or the row does not decode). */
static bool row_key(const fdn__evdb_t *d, sqlite3_stmt *st, uint64_t *key)
{
    fdn_event_t *ev = NULL;
    int64_t id = sqlite3_column_int64(st, 0);
    if (id <= 0 || fdn_event_decode(&ev, sqlite3_column_blob(st, 1),
                                    (size_t)sqlite3_column_bytes(st, 1), NULL) != 0)
        return false;
    bool has = ev->corr_len > 0 && fdn_event_id(ev) == (uint64_t)id;
    if (has)
        *key = key_of(hash_of(d, ev->corr, ev->corr_len), (uint64_t)id);
    fdn_event_free(ev);
    return has;
}

/* Gather into d->run the keys of the rows in [first id of blk, limit), writing the run of each
 * block finished on the way (when `write`); d->run_blk ends at the last block seen. */
static int gather(fdn__evdb_t *d, uint64_t blk, uint64_t limit, bool write, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int s = sqlite3_prepare_v2(d->db,
                               "SELECT id, rec FROM events WHERE id >= ?1 AND id < ?2 "
                               "ORDER BY id",
                               -1, &st, NULL);
    if (s != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, s, err, "read events to index");
    sqlite3_bind_int64(st, 1, clamp64(blk_first(blk)));
    sqlite3_bind_int64(st, 2, clamp64(limit));
    d->run_blk = blk;
    d->run_n = 0;
    int rc = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0), key;
        if (fdn__evdb_blk(id) != d->run_blk) {
            if (write && (rc = fdn__evdb_corr_write_run(d, d->run_blk, d->run, d->run_n,
                                                        fdn__evdb_blk(id), err)) != 0)
                break;
            d->run_blk = fdn__evdb_blk(id);
            d->run_n = 0;
        }
        if (row_key(d, st, &key))
            d->run[d->run_n++] = key;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = fdn__evdb_map_rc(d->db, s, err, "read events to index");
    sqlite3_finalize(st);
    return rc;
}

/* One integer from a one-row query with one id parameter (0 for NULL). */
static int query_u64(sqlite3 *db, const char *sql, uint64_t arg, uint64_t *out, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int s = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    *out = 0;
    if (s == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, clamp64(arg));
        if ((s = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
            *out = (uint64_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : fdn__evdb_map_rc(db, s, err, "index correlation ids");
}

/* Index every complete block from runs_to on, FILL_BLOCKS per transaction (empty blocks
 * skipped), then gather the last block's keys. On the writer's connection, outside a
 * transaction. */
static int catch_up(fdn__evdb_t *d, fdn_error_t *err)
{
    d->merge_idle = false;
    for (;;) {
        int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "index correlation ids");
        uint64_t from = 0, first = 0, last = 0;
        int rc = fdn__evdb_corr_runs_to(d->db, &from, err);
        if (rc == 0)
            d->ix_to = d->ix_pend = from;
        if (rc == 0)
            rc = query_u64(d->db, "SELECT max(id) FROM events WHERE id >= ?1", 0, &last, err);
        if (rc == 0)
            rc = query_u64(d->db, "SELECT min(id) FROM events WHERE id >= ?1", blk_first(from),
                           &first, err);
        if (rc == 0 && last > 0)
            max_store(&d->ix_last, fdn__evdb_blk(last));
        if (first > 0 && fdn__evdb_blk(first) > from) {
            from = fdn__evdb_blk(first); /* nothing to index before it */
            max_store(&d->ix_cut, from);
        }
        /* the last block is the one being written: gathered, not written */
        uint64_t end = last > 0 && fdn__evdb_blk(last) > from ? fdn__evdb_blk(last) : from;
        bool done = end - from <= FILL_BLOCKS;
        uint64_t upto = done ? end : from + FILL_BLOCKS;
        if (rc == 0 && upto > from && (rc = gather(d, from, blk_first(upto), true, err)) == 0)
            rc = fdn__evdb_corr_write_run(d, d->run_blk, d->run, d->run_n, upto, err);
        if (rc == 0 && done)
            rc = gather(d, upto, UINT64_MAX, false, err);
        if (rc == 0 && (s = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
            rc = fdn__evdb_map_rc(d->db, s, err, "index correlation ids");
        txn_end(d, rc == 0);
        if (rc != 0) {
            (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        if (done) {
            d->run_ok = true;
            return fdn__evdb_corr_merge_all(d, err);
        }
    }
}

int fdn__evdb_corr_resync(fdn__evdb_t *d, fdn_error_t *err)
{
    return catch_up(d, err);
}

void fdn__evdb_corr_retry(fdn__evdb_t *d)
{
    if (d->retry_in > 0) {
        d->retry_in--;
        return;
    }
    int rc = catch_up(d, NULL);
    if (rc == 0) {
        d->retry_gap = 0;
        fdn__evdb_corr_publish(d, true, 0, 0);
        return;
    }
    d->run_ok = false;
    d->retry_gap = d->retry_gap == 0 ? 1 : FDN_MIN(d->retry_gap * 2, RETRY_GAP_MAX);
    d->retry_in = d->retry_gap;
    failed(d, rc);
    fdn__evdb_corr_publish(d, false, 0, 0);
}

/* meta corr_fan (tests) into d->fan_shift: 4 when absent. */
static int read_fan(fdn__evdb_t *d, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int s =
        sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = 'corr_fan'", -1, &st, NULL);
    d->fan_shift = 4;
    if (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        if (v < 1 || v > 4) {
            sqlite3_finalize(st);
            return fdn_err_set(err, FDN_ECORRUPT,
                               "event store file: the correlation index's fan-out is damaged");
        }
        d->fan_shift = (unsigned)v;
    }
    sqlite3_finalize(st);
    return s == SQLITE_ROW || s == SQLITE_DONE
               ? 0
               : fdn__evdb_map_rc(d->db, s, err, "read the correlation index");
}

int fdn__evdb_corr_open(fdn__evdb_t *d, fdn_error_t *err)
{
    d->run = fdn__malloc(FDN__EVDB_RUN_IDS * sizeof(*d->run));
    if (d->run == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    /* the tables and the secret in one transaction: two processes opening one new file at once
     * agree on one secret. corr_runs (one row per block, unreleased): dropped, rebuilt. */
    int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int rc = s == SQLITE_OK ? 0 : fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
    uint64_t old = 0;
    if (rc == 0)
        rc = query_u64(d->db,
                       "SELECT count(*) + ?1 FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'corr_runs'",
                       0, &old, err);
    if (rc == 0 && old > 0 &&
        (s = sqlite3_exec(d->db, "DROP TABLE corr_runs; DELETE FROM meta WHERE key = 'runs_to';",
                          NULL, NULL, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
    if (rc == 0 &&
        (s = sqlite3_exec(d->db,
                          "CREATE TABLE IF NOT EXISTS corr_lsm(level INTEGER NOT NULL, run "
                          "INTEGER NOT NULL, first_key INTEGER NOT NULL, keys BLOB NOT NULL);"
                          "CREATE INDEX IF NOT EXISTS corr_lsm_fence ON corr_lsm(level, run, "
                          "first_key);"
                          "CREATE TABLE IF NOT EXISTS corr_run(level INTEGER NOT NULL, run "
                          "INTEGER NOT NULL, state INTEGER NOT NULL, PRIMARY KEY(level, run)) "
                          "WITHOUT ROWID;",
                          NULL, NULL, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
    if (rc == 0 && old > 0 &&
        (s = sqlite3_exec(d->db, "DELETE FROM corr_lsm; DELETE FROM corr_run;", NULL, NULL,
                          NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
    if (rc == 0)
        rc = read_fan(d, err);
    sqlite3_stmt *st = NULL;
    if (rc == 0) {
        s = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = 'ch_secret'", -1, &st,
                               NULL);
        if (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
            if (sqlite3_column_type(st, 0) != SQLITE_BLOB ||
                sqlite3_column_bytes(st, 0) != (int)sizeof(d->ch_secret))
                rc = fdn_err_set(err, FDN_ECORRUPT,
                                 "event store file: the correlation index's secret is damaged");
            else
                memcpy(d->ch_secret, sqlite3_column_blob(st, 0), sizeof(d->ch_secret));
        } else if (s == SQLITE_DONE) {
            sqlite3_finalize(st);
            st = NULL;
            fdn__hash_secret_fill(d->ch_secret, sizeof(d->ch_secret));
            s = sqlite3_prepare_v2(d->db, "INSERT INTO meta(key, value) VALUES('ch_secret', ?1)",
                                   -1, &st, NULL);
            if (s == SQLITE_OK) {
                sqlite3_bind_blob(st, 1, d->ch_secret, (int)sizeof(d->ch_secret), SQLITE_STATIC);
                s = sqlite3_step(st);
            }
            if (s != SQLITE_DONE)
                rc = fdn__evdb_map_rc(d->db, s, err, "write the correlation index's secret");
        } else {
            rc = fdn__evdb_map_rc(d->db, s, err, "read the correlation index's secret");
        }
        sqlite3_finalize(st);
    }
    if (rc == 0 && (s = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
    if (rc != 0) {
        (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    for (size_t i = 0; i < FDN__EVDB_CORR_STMTS; i++) {
        s = sqlite3_prepare_v3(d->db, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &d->cst[i], NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "prepare");
    }
    /* The index is rebuilt from the rows when it cannot be brought up to date (damaged
     * directory or fence rows); when even that fails the store opens with the index behind
     * (run_ok false: lookups scan what it lacks, and writes retry the rebuild now and then).
     * The events never depend on it. */
    if ((rc = catch_up(d, NULL)) == 0) {
        fdn__evdb_corr_publish(d, true, 0, 0);
        return 0;
    }
    if (sqlite3_exec(d->db,
                     "BEGIN IMMEDIATE; DELETE FROM corr_lsm; DELETE FROM corr_run; "
                     "DELETE FROM meta WHERE key = 'runs_to'; COMMIT;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        d->ix_to = d->ix_pend = 0;
        if ((rc = catch_up(d, NULL)) == 0) {
            fdn__evdb_corr_publish(d, true, 0, 0);
            return 0;
        }
    }
    /* opened behind: counted as a failed rebuild, with the newest id (catch_up may have
     * failed before it read it) */
    uint64_t last = 0;
    if (query_u64(d->db, "SELECT max(id) FROM events WHERE id >= ?1", 0, &last, NULL) == 0)
        max_store(&d->ix_last, last > 0 ? fdn__evdb_blk(last) : 0);
    d->run_ok = false;
    d->retry_gap = 1;
    d->retry_in = 1;
    failed(d, rc);
    fdn__evdb_corr_publish(d, false, 0, 0);
    return 0;
}

void fdn__evdb_corr_close(fdn__evdb_t *d)
{
    for (size_t i = 0; i < FDN__EVDB_CORR_STMTS; i++)
        sqlite3_finalize(d->cst[i]);
    for (size_t i = 0; i < sizeof(d->rst) / sizeof(d->rst[0]); i++)
        sqlite3_finalize(d->rst[i]);
}

int fdn__evdb_corr_test_fanout(fdn__evdb_t *d, unsigned shift)
{
    sqlite3_stmt *st = NULL;
    if (shift < 1 || shift > 4)
        return FDN_EINVAL;
    int s = sqlite3_prepare_v2(
        d->db, "INSERT OR REPLACE INTO meta(key, value) VALUES('corr_fan', ?1)", -1, &st, NULL);
    if (s == SQLITE_OK) {
        sqlite3_bind_int(st, 1, (int)shift);
        s = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return FDN_EIO;
    d->fan_shift = shift;
    return 0;
}
