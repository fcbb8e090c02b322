/*
 * DESIGN: the durable tier of the event store on SQLite.
 *
 * Schema: events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL,
 * rec BLOB NOT NULL) where rec is the binary event record (docs/event-format.md, with zstd
 * for payloads of 256 bytes or more when it helps); meta(key TEXT PRIMARY KEY, value INTEGER)
 * holds next_id so that ids are never reused after pruning (the next id is the larger of it
 * and the newest row's id + 1; a commit that leaves the newest row at next_id - 1 does not
 * write it, a prune of the newest rows does), and the row count (below). No SQLite index is
 * kept on the events table: the insert path stays as cheap as a raw batched insert. Lookups by
 * correlation id go through the correlation index (event_sqlite_corr.c: sorted runs of
 * hashed keys, one per block of 8192 ids, merged 16 at a time into runs of up to 2^25 ids, in
 * fence rows of one page); a query by type or time reads rows in id order from its bound and
 * stops at its limit.
 * WAL mode; synchronous=FULL for the durable mode (a commit returns after fsync), NORMAL for
 * the fast mode. A new file gets pages of FDN__EVDB_PAGE_SIZE (8 KiB; SQLite's default is 4):
 * half the pages, WAL frames and B-tree cell moves per event on the append path (measured:
 * events.append.durable ~9 % faster, correlation lookups in the file unchanged within noise).
 * SQLite fixes a page size when the file is created (and in WAL mode for good), so a file
 * created by an older version keeps its 4 KiB pages and works as before; the WAL's bounds
 * (wal_hook) are in bytes, so they mean the same for both.
 * SQLite's WAL checksums drop a torn last transaction at open; a damaged file
 * (SQLITE_CORRUPT / SQLITE_NOTADB) or a record failing its CRC32C gives FDN_ECORRUPT.
 * Threads: the writer's connection is used by one thread at a time (no locks here);
 * statements are prepared once. Reads and the durable tier's retention (prune) run on a
 * second connection, opened when first needed and serialised by `rmu`, so they never wait for
 * a commit in progress (WAL: readers see the last committed state). A prune deletes in
 * transactions of at most fdn__evdb_prune_chunk rows (4096), each begun only while the writer
 * announces no transaction of its own (writer_in): the writer waits for one such chunk at
 * most, never busy_timeout. A BEGIN that meets another connection's write lock past
 * busy_timeout (another process, a tool holding the file) fails with FDN_EBUSY, which the
 * store treats as transient (nothing was written); other failures map as below.
 * Row count: meta count (the rows of events), count_min_id and count_max_id (the table's
 * smallest and largest id then, 0 when empty). Invariant: after every commit count is the
 * number of rows and the two ids are the table's. By construction: every statement of this
 * file that inserts or deletes rows is followed, in its transaction, by one UPDATE moving
 * count by the rows SQLite says it changed and setting the ids by seeks (the writer's
 * inserts and prune, the read connection's prune); nothing else writes rows. So the stats
 * are seeks (count read, min and max id of the primary key), never the scan of every page
 * that count(*) is (2 M events: 317 MiB read at each open and each durable status). At open
 * (count_open) the stored values are checked, cheaply: count an integer, 0 iff the table is
 * empty, else at most max - min + 1 (ids are unique), and the two ids the table's; a file
 * from before the count (no key), one an older library wrote to since (it keeps no count: an
 * id moved), or a damaged value is counted once (one scan) and stored; rows counted that do
 * not fit between the ids (damaged leaves: SQLite's count trusts their cell counts) refuse
 * the open (FDN_ECORRUPT). A damaged value that passes the checks is reported as is (nothing
 * deletes or assigns ids by it: no event is lost); one that fails them while the file is
 * open is not reported (stats count the rows).
 * The backend table (storage/event_backend.h) at the end wraps these functions: SQLite is the
 * write-behind implementation (ids from the memory tier, reads of what memory evicted).
 */
#include "storage/event_sqlite.h"
#include "storage/event_backend.h"
#include "storage/event_sqlite_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "logic/event_int.h"

int fdn__evdb_map_rc(sqlite3 *db, int rc, fdn_error_t *err, const char *what)
{
    int code =
        (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? FDN_ECORRUPT : FDN_EIO;
    return fdn_err_set(err, code, "event store file: %s: %s", what,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

uint32_t fdn__evdb_prune_chunk = FDN__EVDB_PRUNE_CHUNK;
int fdn__evdb_busy_timeout_ms = 5000;

/* Writer first (struct fdn__evdb, wpmu): the writer announces its transaction before its
 * BEGIN and withdraws it after its COMMIT or ROLLBACK; a prune transaction waits until none
 * is announced. */
static void writer_enter(fdn__evdb_t *d)
{
    pthread_mutex_lock(&d->wpmu);
    d->writer_in++;
    pthread_mutex_unlock(&d->wpmu);
}

static void writer_leave(fdn__evdb_t *d)
{
    pthread_mutex_lock(&d->wpmu);
    if (--d->writer_in == 0)
        pthread_cond_broadcast(&d->wpcv);
    pthread_mutex_unlock(&d->wpmu);
}

static void prune_wait_writer(fdn__evdb_t *d)
{
    pthread_mutex_lock(&d->wpmu);
    while (d->writer_in > 0)
        pthread_cond_wait(&d->wpcv, &d->wpmu);
    pthread_mutex_unlock(&d->wpmu);
}

/* A BEGIN IMMEDIATE that failed: FDN_EBUSY when another connection held the file's write lock
 * past busy_timeout (transient: nothing was written, a retry may succeed), else as
 * fdn__evdb_map_rc. */
static int begin_failed(sqlite3 *db, int rc, fdn_error_t *err, const char *what)
{
    if ((rc & 0xff) == SQLITE_BUSY)
        return fdn_err_set(err, FDN_EBUSY,
                           "event store file: %s: the write lock is held by another connection "
                           "(waited %d ms): %s",
                           what, fdn__evdb_busy_timeout_ms, sqlite3_errmsg(db));
    return fdn__evdb_map_rc(db, rc, err, what);
}

/* The WAL's bound (the writer's connection). SQLite's own auto-checkpoint (PASSIVE, at 1000
 * pages) cannot restart the WAL while a read on the second connection holds an older snapshot,
 * so with reads going on all the time the file could keep growing. This hook does a PASSIVE
 * checkpoint once the WAL holds FDN__EVDB_WAL_PASSIVE_BYTES, and past
 * FDN__EVDB_WAL_TRUNCATE_BYTES a TRUNCATE one, which waits (busy_timeout) for those short
 * reads to end, then empties the file. SQLite counts the WAL in pages; the bounds are in bytes
 * (the 1000 and 2000 pages they were with 4 KiB pages), so a file's page size does not change
 * how much the WAL may hold or how often it is checkpointed. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    const fdn__evdb_t *d = arg;
    int64_t bytes = (int64_t)pages * d->page_size;
    if (bytes >= FDN__EVDB_WAL_TRUNCATE_BYTES)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    else if (bytes >= FDN__EVDB_WAL_PASSIVE_BYTES)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

#define STR_(x) #x
#define STR(x)  STR_(x)

/* The page size of the file open on the writer's connection, into d->page_size. */
static int page_size_read(fdn__evdb_t *d, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA page_size", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        d->page_size = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, rc, err, "page size");
    if (d->page_size < 512) /* SQLite's smallest; never less */
        d->page_size = 512;
    return 0;
}

int fdn__evdb_step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ---- the row count (meta count, count_min_id, count_max_id) ---- */

/* In the transaction of every write that inserts or deletes rows (the writer's, the read
 * connection's prune): meta count moved by ?1, the rows it inserted less those it deleted (a
 * count that is not an integer becomes NULL, never a number again: open counts the rows), and
 * count_min_id and count_max_id set to the table's smallest and largest id (0 when empty: a
 * seek of the primary key each, no scan). One statement over the range of keys from 'count'
 * to 'count_min_id' (a key of another name there would be rewritten unchanged). Its cost is
 * the three rows rewritten: on a commit of one event +55% instructions (callgrind, 39.8 k
 * before), three single-row statements +57%, the count alone +16%; with key IN (...) SQLite
 * builds a temporary table per run: +132%. In commits of 1 000 events: +0.6%. The rows share
 * the page next_id is on, which each commit wrote then: no page more in the WAL (next_id is
 * now written only when the newest row does not imply it, fdn__evdb_write; an UPDATE of the
 * values leaves the key index's page, which its INSERT OR REPLACE rewrote). */
#define COUNT_PUT_SQL                                                                              \
    "UPDATE meta SET value = CASE key WHEN 'count' THEN CASE WHEN typeof(value) = 'integer' THEN " \
    "value + ?1 END WHEN 'count_min_id' THEN coalesce((SELECT min(id) FROM events), 0) WHEN "      \
    "'count_max_id' THEN coalesce((SELECT max(id) FROM events), 0) ELSE value END WHERE key "      \
    "BETWEEN 'count' AND 'count_min_id'"

static int count_put(sqlite3_stmt *st, sqlite3_int64 delta)
{
    sqlite3_bind_int64(st, 1, delta);
    return fdn__evdb_step_reset(st);
}

/* What meta says of the rows, and what the table says by seeks (one read snapshot). */
#define COUNT_GET_SQL                                                                              \
    "SELECT (SELECT value FROM meta WHERE key = 'count'), (SELECT value FROM meta WHERE key = "    \
    "'count_min_id'), (SELECT value FROM meta WHERE key = 'count_max_id'), (SELECT min(id) FROM "  \
    "events), (SELECT max(id) FROM events)"

/* The rows counted (a scan of every page), in COUNT_GET_SQL's columns. */
#define COUNT_SCAN_SQL "SELECT count(*), NULL, NULL, min(id), max(id) FROM events"

/* The cheap checks of a count against the table: 0 iff the table is empty (lo, hi: its
 * smallest and largest id, empty: no ids), else 1 <= count <= hi - lo + 1 (ids are unique). */
static bool count_fits(sqlite3_int64 c, bool empty, sqlite3_int64 lo, sqlite3_int64 hi)
{
    if (empty)
        return c == 0;
    return c >= 1 && lo <= hi && (uint64_t)c - 1 <= (uint64_t)hi - (uint64_t)lo;
}

/* count_fits on a row of COUNT_GET_SQL (or the fallback's): count an integer, the table's
 * min and max NULL (empty) or integers (a foreign schema may hold other types). */
static bool count_plausible(sqlite3_stmt *st)
{
    int tc = sqlite3_column_type(st, 0), tmin = sqlite3_column_type(st, 3);
    int tmax = sqlite3_column_type(st, 4);
    if (tc != SQLITE_INTEGER || (tmin != SQLITE_NULL && tmin != SQLITE_INTEGER) ||
        (tmax != SQLITE_NULL && tmax != SQLITE_INTEGER) ||
        (tmin == SQLITE_NULL) != (tmax == SQLITE_NULL))
        return false;
    return count_fits(sqlite3_column_int64(st, 0), tmin == SQLITE_NULL, sqlite3_column_int64(st, 3),
                      sqlite3_column_int64(st, 4));
}

/* The rows counted (one scan) that fail count_fits: SQLite's count of a damaged table (a leaf
 * whose cell count was damaged) or its min or max is wrong. */
static int count_damaged(sqlite3_stmt *st, int cn, int cmin, int cmax, fdn_error_t *err)
{
    char lo[24] = "none", hi[24] = "none";
    if (sqlite3_column_type(st, cmin) != SQLITE_NULL)
        snprintf(lo, sizeof lo, "%lld", (long long)sqlite3_column_int64(st, cmin));
    if (sqlite3_column_type(st, cmax) != SQLITE_NULL)
        snprintf(hi, sizeof hi, "%lld", (long long)sqlite3_column_int64(st, cmax));
    return fdn_err_set(err, FDN_ECORRUPT,
                       "event store file: the events table is damaged (%lld rows counted, "
                       "smallest id %s, largest %s)",
                       (long long)sqlite3_column_int64(st, cn), lo, hi);
}

/* At open, on the writer's connection, in one write transaction: the stored count is kept
 * when it is plausible (count_plausible) and count_min_id and count_max_id are the table's
 * own (a file an older library wrote to since has other ones: it did not count its rows);
 * otherwise, and in a file from before the count (no key), the rows are counted once (one
 * scan) and stored. FDN_ECORRUPT when the ids are not integers (a foreign schema) or the rows
 * counted do not fit between them. */
static int count_open(fdn__evdb_t *d, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (s == SQLITE_OK)
        s = sqlite3_prepare_v2(d->db, COUNT_GET_SQL, -1, &st, NULL);
    if (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        bool ok = count_plausible(st);
        for (int i = 1; ok && i < 3; i++) /* the stamp: the table's min and max, 0 when empty */
            ok = sqlite3_column_type(st, i) == SQLITE_INTEGER &&
                 sqlite3_column_int64(st, i) == sqlite3_column_int64(st, i + 2);
        int tmin = sqlite3_column_type(st, 3), tmax = sqlite3_column_type(st, 4);
        sqlite3_int64 lo = sqlite3_column_int64(st, 3), hi = sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);
        st = NULL;
        s = SQLITE_DONE;
        if ((tmin != SQLITE_NULL && tmin != SQLITE_INTEGER) ||
            (tmax != SQLITE_NULL && tmax != SQLITE_INTEGER) ||
            (tmin == SQLITE_NULL) != (tmax == SQLITE_NULL)) {
            rc = fdn_err_set(err, FDN_ECORRUPT,
                             "event store file: the events table holds ids that are not integers");
        } else if (!ok) {
            d->count_recomputed = true;
            sqlite3_int64 n = 0;
            s = sqlite3_prepare_v2(d->db, COUNT_SCAN_SQL, -1, &st, NULL);
            if (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
                n = sqlite3_column_int64(st, 0);
                if (!count_fits(n, tmin == SQLITE_NULL, lo, hi))
                    rc = count_damaged(st, 0, 3, 4, err);
            }
            sqlite3_finalize(st);
            st = NULL;
            if (rc != 0) {
                s = SQLITE_DONE;
            } else if (s == SQLITE_ROW) {
                s = sqlite3_prepare_v2(d->db,
                                       "INSERT OR REPLACE INTO meta(key, value) VALUES('count', "
                                       "?1), ('count_min_id', ?2), ('count_max_id', ?3)",
                                       -1, &st, NULL);
            }
            if (rc == 0 && s == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, n);
                sqlite3_bind_int64(st, 2, lo); /* NULL (empty) reads as 0 */
                sqlite3_bind_int64(st, 3, hi);
                s = sqlite3_step(st);
            }
        }
    }
    sqlite3_finalize(st);
    if (rc == 0 && s == SQLITE_DONE)
        s = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0 && s != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->db, s, err, "count the events");
    if (rc != 0)
        (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int exec(fdn__evdb_t *d, const char *sql, fdn_error_t *err)
{
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, rc, err, sql);
    return 0;
}

void fdn__evdb_close(fdn__evdb_t *d)
{
    if (d == NULL)
        return;
    sqlite3_finalize(d->ins);
    sqlite3_finalize(d->del);
    sqlite3_finalize(d->meta_put);
    sqlite3_finalize(d->count_put);
    sqlite3_finalize(d->begin);
    sqlite3_finalize(d->commit);
    sqlite3_finalize(d->rollback);
    fdn__evdb_corr_close(d);
    sqlite3_close(d->db);
    sqlite3_close(d->rdb);
    pthread_mutex_destroy(&d->rmu);
    pthread_mutex_destroy(&d->wpmu);
    pthread_cond_destroy(&d->wpcv);
    fdn__free(d->path);
    fdn__free(d->buf);
    fdn__free(d->run);
    fdn__free(d->cref);
    fdn__free(d);
}

int fdn__evdb_open(fdn__evdb_t **out, const char *path, bool durable, bool compress,
                   fdn_error_t *err)
{
    fdn__evdb_t *d = fdn__calloc(1, sizeof(*d));
    if (d == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    d->enc_flags = compress ? FDN_EVENT_ENC_ZSTD : 0;
    pthread_mutex_init(&d->rmu, NULL);
    pthread_mutex_init(&d->wpmu, NULL);
    pthread_cond_init(&d->wpcv, NULL);
    d->durable = durable;
    d->path = fdn__strdup(path);
    if (d->path == NULL) {
        fdn__evdb_close(d);
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    }
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = fdn__evdb_map_rc(d->db, rc, err, "open");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, fdn__evdb_busy_timeout_ms);
    sqlite3_extended_result_codes(d->db, 1);
    /* before WAL mode: a no-op on a file that has pages already (it keeps its size) */
    if ((rc = exec(d, "PRAGMA page_size=" STR(FDN__EVDB_PAGE_SIZE), err)) != 0 ||
        (rc = exec(d, "PRAGMA journal_mode=WAL", err)) != 0 || (rc = page_size_read(d, err)) != 0)
        goto fail;
    sqlite3_wal_hook(d->db, wal_hook, d);
    if ((rc = exec(d, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err)))
        goto fail;
    if ((rc = exec(d,
                   "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts INTEGER NOT "
                   "NULL, type TEXT NOT NULL, rec BLOB NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);",
                   err)) != 0)
        goto fail;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&d->ins, "INSERT INTO events(id, ts, type, rec) VALUES(?1, ?2, ?3, ?4)"},
        {&d->del, "DELETE FROM events WHERE id < ?1"},
        {&d->meta_put, "INSERT OR REPLACE INTO meta(key, value) VALUES('next_id', ?1)"},
        {&d->count_put, COUNT_PUT_SQL},
        {&d->begin, "BEGIN IMMEDIATE"},
        {&d->commit, "COMMIT"},
        {&d->rollback, "ROLLBACK"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        rc = sqlite3_prepare_v3(d->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                                NULL);
        if (rc != SQLITE_OK) {
            rc = fdn__evdb_map_rc(d->db, rc, err, "prepare");
            goto fail;
        }
    }
    if ((rc = count_open(d, err)) != 0 || (rc = fdn__evdb_corr_open(d, err)) != 0)
        goto fail;
    *out = d;
    return 0;
fail:
    fdn__evdb_close(d);
    return rc;
}

int fdn__evdb_load(fdn__evdb_t *d, int (*cb)(fdn_event_t *ev, void *user), void *user,
                   uint64_t *next_id, fdn_error_t *err)
{
    return fdn__evdb_load_newest(d, 0, cb, user, next_id, err);
}

int fdn__evdb_load_newest(fdn__evdb_t *d, uint64_t keep, int (*cb)(fdn_event_t *ev, void *user),
                          void *user, uint64_t *next_id, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    uint64_t next = 1;
    int rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key='next_id'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, rc, err, "read meta");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        next = (uint64_t)sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rc = fdn__evdb_map_rc(d->db, rc, err, "read meta");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    /* keep > 0: only the newest keep rows (the memory tier's bound), still in id order */
    rc = sqlite3_prepare_v2(d->db,
                            keep > 0 ? "SELECT id, rec FROM (SELECT id, rec FROM events ORDER BY "
                                       "id DESC LIMIT ?1) ORDER BY id"
                                     : "SELECT id, rec FROM events ORDER BY id",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, rc, err, "read events");
    if (keep > 0)
        sqlite3_bind_int64(st, 1, keep > INT64_MAX ? INT64_MAX : (sqlite3_int64)keep);
    /* next_id also counts rows not loaded: ids are never reused */
    if (keep > 0) {
        sqlite3_stmt *mx = NULL;
        if (sqlite3_prepare_v2(d->db, "SELECT max(id) FROM events", -1, &mx, NULL) == SQLITE_OK &&
            sqlite3_step(mx) == SQLITE_ROW && sqlite3_column_int64(mx, 0) >= (sqlite3_int64)next)
            next = (uint64_t)sqlite3_column_int64(mx, 0) + 1;
        sqlite3_finalize(mx);
    }
    int out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const void *blob = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        fdn_event_t *ev = NULL;
        int drc = fdn_event_decode(&ev, blob, (size_t)n, err);
        if (drc == FDN_ENOMEM) {
            out = drc;
            break;
        }
        if (drc != 0 || id <= 0 || fdn_event_id(ev) != (uint64_t)id) {
            fdn_event_free(ev);
            out = fdn_err_set(err, FDN_ECORRUPT, "event store file: record %lld is damaged",
                              (long long)id);
            break;
        }
        if ((uint64_t)id >= next)
            next = (uint64_t)id + 1;
        if ((out = cb(ev, user)) != 0)
            break;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = fdn__evdb_map_rc(d->db, rc, err, "read events");
    sqlite3_finalize(st);
    if (out == 0)
        *next_id = next;
    return out;
}

/* The rows of one write: events encoded here (evs), or records the caller encoded, back to
 * back (recs, record i from off[i] to off[i + 1]). The correlation ids go to the index through
 * d->cref (pointers into the events or the records, both alive until the write returns). */
static int write_rows(fdn__evdb_t *d, const fdn_event_t *const *evs, const uint8_t *recs,
                      const size_t *off, size_t n, uint64_t delete_before, uint64_t next_id,
                      fdn_error_t *err)
{
    int rc;
    if (!d->run_ok)
        fdn__evdb_corr_retry(d);
    if (n > d->cref_cap) {
        fdn__evdb_cref_t *c = fdn__realloc(d->cref, n * sizeof(*c));
        if (c == NULL)
            return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
        d->cref = c;
        d->cref_cap = n;
    }
    writer_enter(d);
    rc = fdn__evdb_step_reset(d->begin);
    if (rc != SQLITE_OK) {
        writer_leave(d);
        return begin_failed(d->db, rc, err, "begin");
    }
    sqlite3_int64 added = 0, removed = 0; /* rows, for meta count */
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        fdn__event_rec_keys_t k;
        const uint8_t *rec;
        size_t len = 0;
        if (evs != NULL) {
            const fdn_event_t *ev = evs[i];
            int e = fdn__event_encode_into(ev, d->enc_flags, &d->buf, &d->cap, &len);
            if (e != 0) {
                rc = fdn_err_set(err, e, "event store file: encode failed");
                goto undo;
            }
            rec = d->buf;
            k = (fdn__event_rec_keys_t){.id = ev->id, .ts = ev->ts, .type = ev->type};
            k.type_len = ev->type_len;
            k.corr = ev->corr;
            k.corr_len = ev->corr_len;
        } else {
            rec = recs + off[i];
            len = off[i + 1] - off[i];
            fdn__event_rec_keys(rec, &k);
        }
        sqlite3_bind_int64(d->ins, 1, (sqlite3_int64)k.id);
        sqlite3_bind_int64(d->ins, 2, k.ts);
        sqlite3_bind_text(d->ins, 3, k.type, (int)k.type_len, SQLITE_STATIC);
        sqlite3_bind_blob(d->ins, 4, rec, (int)len, SQLITE_STATIC);
        rc = fdn__evdb_step_reset(d->ins);
        if (rc != SQLITE_OK)
            goto fail;
        added += sqlite3_changes64(d->db);
        d->cref[i] = (fdn__evdb_cref_t){k.id, k.corr, k.corr_len};
        last = k.id;
    }
    if (delete_before > 0) {
        sqlite3_bind_int64(d->del, 1, (sqlite3_int64)delete_before);
        if ((rc = fdn__evdb_step_reset(d->del)) != SQLITE_OK)
            goto fail;
        removed = sqlite3_changes64(d->db);
    }
    /* the count commits with the rows, or not at all */
    if ((added > 0 || removed > 0) && (rc = count_put(d->count_put, added - removed)) != SQLITE_OK)
        goto fail;
    /* the correlation index in a savepoint: its failure costs the index, never the events */
    if ((rc = fdn__evdb_corr_write(d, d->cref, n, delete_before)) != 0)
        goto fail;
    /* next_id is read back as the larger of it and the newest row's id + 1, so a commit whose
     * last event is next_id - 1 and stays (the common case) need not write it: that saved two
     * of the about five WAL frames (the meta table's page and its key's) of a small commit */
    bool implied = n > 0 && last + 1 == next_id && delete_before <= last;
    if (next_id > 0 && (delete_before > 0 || n > 0) && !implied) {
        sqlite3_bind_int64(d->meta_put, 1, (sqlite3_int64)next_id);
        if ((rc = fdn__evdb_step_reset(d->meta_put)) != SQLITE_OK)
            goto fail;
    }
    rc = fdn__evdb_step_reset(d->commit);
    if (rc != SQLITE_OK)
        goto fail;
    writer_leave(d);
    fdn__evdb_corr_publish(d, true, last, delete_before);
    return 0;
fail:
    rc = fdn__evdb_map_rc(d->db, rc, err, "write");
undo:
    fdn__evdb_step_reset(d->rollback);
    writer_leave(d);
    d->run_ok = false; /* the keys gathered for this batch: gathered again from the file */
    d->retry_in = 0;
    fdn__evdb_corr_publish(d, false, 0, 0);
    return rc;
}

int fdn__evdb_write(fdn__evdb_t *d, const fdn_event_t *const *evs, size_t n, uint64_t delete_before,
                    uint64_t next_id, fdn_error_t *err)
{
    return write_rows(d, evs, NULL, NULL, n, delete_before, next_id, err);
}

int fdn__evdb_write_recs(fdn__evdb_t *d, const uint8_t *recs, const size_t *off, size_t n,
                         uint64_t delete_before, uint64_t next_id, fdn_error_t *err)
{
    return write_rows(d, NULL, recs, off, n, delete_before, next_id, err);
}

/* ---- reads and prune on the read connection (under rmu) ---- */

#define RDB_CACHE_KIB "32768"

static int rdb_ready(fdn__evdb_t *d, fdn_error_t *err)
{
    if (d->rdb != NULL)
        return 0;
    int rc = sqlite3_open_v2(d->path, &d->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(d->rdb, fdn__evdb_busy_timeout_ms);
        sqlite3_extended_result_codes(d->rdb, 1);
        rc = sqlite3_exec(d->rdb,
                          d->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                          NULL, NULL, NULL);
    }
    /* a page cache of up to RDB_CACHE_KIB (filled as reads need it): a correlation lookup
     * reads one fence page per run of the index and the index's B-tree pages, which then
     * stay cached (measured at 1 M events with one run per block: 0.22 ms per lookup, 1.4 ms
     * with the default 2 MiB cache). Not mmap: a read
     * error on a mapped file is a SIGBUS, not an error code. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(d->rdb, "PRAGMA cache_size=-" RDB_CACHE_KIB, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "open for reading");
        sqlite3_close(d->rdb);
        d->rdb = NULL;
    }
    return rc;
}

/* Decode one row's record; FDN_ECORRUPT when it is damaged or carries another id. */
static int row_event(fdn__evdb_t *d, sqlite3_stmt *st, fdn_event_t **out, fdn_error_t *err)
{
    d->rows_read++;
    int64_t id = sqlite3_column_int64(st, 0);
    const void *blob = sqlite3_column_blob(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    fdn_event_t *ev = NULL;
    int rc = fdn_event_decode(&ev, blob, (size_t)n, err);
    if (rc == FDN_ENOMEM)
        return rc;
    if (rc != 0 || id <= 0 || fdn_event_id(ev) != (uint64_t)id) {
        fdn_event_free(ev);
        return fdn_err_set(err, FDN_ECORRUPT, "event store file: record %lld is damaged",
                           (long long)id);
    }
    *out = ev;
    return 0;
}

int fdn__evdb_get(fdn__evdb_t *d, uint64_t id, fdn_event_t **out, fdn_error_t *err)
{
    if (id > INT64_MAX)
        return FDN_ENOENT;
    pthread_mutex_lock(&d->rmu);
    sqlite3_stmt *st = NULL;
    int rc = rdb_ready(d, err);
    if (rc == 0 && (rc = sqlite3_prepare_v2(d->rdb, "SELECT id, rec FROM events WHERE id = ?1", -1,
                                            &st, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "read");
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            rc = row_event(d, st, out, err);
        else if (s == SQLITE_DONE)
            rc = FDN_ENOENT;
        else
            rc = fdn__evdb_map_rc(d->rdb, s, err, "read");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->rmu);
    return rc;
}

/* A growable array of decoded events, turned into one list at the end. */
typedef struct evvec {
    fdn_event_t **v;
    size_t n, cap;
} evvec_t;

static void evvec_free(evvec_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        fdn_event_free(a->v[i]);
    fdn__free(a->v);
}

static int evvec_push(evvec_t *a, fdn_event_t *ev)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        fdn_event_t **nv = fdn__realloc(a->v, nc * sizeof(*nv));
        if (nv == NULL)
            return FDN_ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = ev;
    return 0;
}

/* One list holding copies of a's events (a is freed). */
static int evvec_list(evvec_t *a, fdn_event_list_t **out)
{
    size_t bytes = 0;
    fdn__event_fields_t f;
    for (size_t i = 0; i < a->n; i++) {
        fdn__event_to_fields(a->v[i], &f);
        bytes += fdn__event_alloc_size(&f);
    }
    fdn_event_list_t *l = fdn__event_list_alloc(a->n, bytes);
    if (l == NULL) {
        evvec_free(a);
        return FDN_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < a->n; i++) {
        fdn__event_to_fields(a->v[i], &f);
        l->items[i] = fdn__event_place(fdn__event_list_mem(l, off), &f);
        off += fdn__event_alloc_size(&f);
    }
    evvec_free(a);
    *out = l;
    return 0;
}

static bool matches(const fdn_event_t *ev, const fdn__evb_query_t *q)
{
    if (ev->wall < q->wall_start || ev->wall > q->wall_end)
        return false;
    if (q->parent_id != 0 && ev->parent != q->parent_id)
        return false;
    if (q->correlation_id != NULL) {
        size_t cl = strlen(q->correlation_id);
        if (ev->corr_len != cl || (cl > 0 && memcmp(ev->corr, q->correlation_id, cl) != 0))
            return false;
    }
    return true;
}

/* The rows with ids in (after, before) in the query's order, its filters applied, pushed onto
 * a until it holds q->limit. On the read connection, under rmu. */
static int scan(fdn__evdb_t *d, const fdn__evb_query_t *q, uint64_t after, uint64_t before,
                evvec_t *a, fdn_error_t *err)
{
    static const char *const sql[2][2] = {
        {"SELECT id, rec FROM events WHERE id > ?1 AND id < ?2 ORDER BY id",
         "SELECT id, rec FROM events WHERE id > ?1 AND id < ?2 ORDER BY id DESC"},
        {"SELECT id, rec FROM events WHERE id > ?1 AND id < ?2 AND type = ?3 ORDER BY id",
         "SELECT id, rec FROM events WHERE id > ?1 AND id < ?2 AND type = ?3 ORDER BY id DESC"}};
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->rdb, sql[q->type != NULL][q->descending], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->rdb, rc, err, "query");
    sqlite3_bind_int64(st, 1, after > INT64_MAX ? INT64_MAX : (sqlite3_int64)after);
    sqlite3_bind_int64(st, 2,
                       before == 0 || before > INT64_MAX ? INT64_MAX : (sqlite3_int64)before);
    if (q->type != NULL)
        sqlite3_bind_text(st, 3, q->type, -1, SQLITE_STATIC);
    int s = SQLITE_DONE;
    while (a->n < q->limit && (s = sqlite3_step(st)) == SQLITE_ROW) {
        fdn_event_t *ev = NULL;
        if ((rc = row_event(d, st, &ev, err)) != 0)
            break;
        if (!matches(ev, q)) {
            fdn_event_free(ev);
            continue;
        }
        if ((rc = evvec_push(a, ev)) != 0) {
            fdn_event_free(ev);
            break;
        }
    }
    if (rc == 0 && a->n < q->limit && s != SQLITE_DONE)
        rc = fdn__evdb_map_rc(d->rdb, s, err, "query");
    sqlite3_finalize(st);
    return rc;
}

/* The candidate rows of a correlation lookup (ids, ascending; walked backwards when
 * descending), each decoded and compared, pushed onto a until it holds q->limit. */
static int fetch(fdn__evdb_t *d, const fdn__evb_query_t *q, const uint64_t *ids, size_t n,
                 evvec_t *a, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->rdb,
                                q->type != NULL
                                    ? "SELECT id, rec FROM events WHERE id = ?1 AND type = ?2"
                                    : "SELECT id, rec FROM events WHERE id = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fdn__evdb_map_rc(d->rdb, rc, err, "query");
    if (q->type != NULL)
        sqlite3_bind_text(st, 2, q->type, -1, SQLITE_STATIC);
    for (size_t i = 0; rc == 0 && i < n && a->n < q->limit; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ids[q->descending ? n - 1 - i : i]);
        int s = sqlite3_step(st);
        fdn_event_t *ev = NULL;
        if (s == SQLITE_ROW && (rc = row_event(d, st, &ev, err)) == 0) {
            if (!matches(ev, q))
                fdn_event_free(ev); /* a hash collision */
            else if ((rc = evvec_push(a, ev)) != 0)
                fdn_event_free(ev);
        } else if (s != SQLITE_ROW && s != SQLITE_DONE) { /* DONE: another type, or pruned */
            rc = fdn__evdb_map_rc(d->rdb, s, err, "query");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* By correlation id, in one read transaction: the rows the correlation index names, and the
 * rows from the first block it does not cover yet (a scan), in the query's order. */
static int query_corr(fdn__evdb_t *d, const fdn__evb_query_t *q, evvec_t *a, fdn_error_t *err)
{
    int s = sqlite3_exec(d->rdb, "BEGIN", NULL, NULL, NULL);
    if (s != SQLITE_OK)
        return fdn__evdb_map_rc(d->rdb, s, err, "query");
    uint64_t *ids = NULL, tail = 0;
    size_t n = 0;
    int rc = fdn__evdb_corr_ids(d, q->correlation_id, q->after, q->before, &ids, &n, &tail, err);
    uint64_t scan_after = q->after > tail - 1 ? q->after : tail - 1;
    if (rc == 0 && !q->descending && (rc = fetch(d, q, ids, n, a, err)) == 0)
        rc = scan(d, q, scan_after, q->before, a, err);
    else if (rc == 0 && q->descending && (rc = scan(d, q, scan_after, q->before, a, err)) == 0)
        rc = fetch(d, q, ids, n, a, err);
    fdn__free(ids);
    (void)sqlite3_exec(d->rdb, "COMMIT", NULL, NULL, NULL); /* a read: nothing to keep */
    return rc;
}

int fdn__evdb_query(fdn__evdb_t *d, const fdn__evb_query_t *q, fdn_event_list_t **out,
                    fdn_error_t *err)
{
    evvec_t a = {0};
    pthread_mutex_lock(&d->rmu);
    int rc = rdb_ready(d, err);
    if (rc == 0) {
        /* the empty correlation id (events without one) has no key: a scan */
        if (q->correlation_id != NULL && q->correlation_id[0] != '\0')
            rc = query_corr(d, q, &a, err);
        else
            rc = scan(d, q, q->after, q->before, &a, err);
    }
    pthread_mutex_unlock(&d->rmu);
    if (rc != 0) {
        evvec_free(&a);
        return rc;
    }
    return evvec_list(&a, out);
}

/* One transaction of a prune on the read connection (rmu held): next_id kept, then every row
 * in [from, hi) deleted, meta count moved, and with prefix (no row below from: every row below
 * hi goes) the correlation index's runs below hi. *removed: the rows. */
static int prune_txn(fdn__evdb_t *d, uint64_t from, uint64_t hi, bool prefix,
                     sqlite3_int64 *removed, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    *removed = 0;
    prune_wait_writer(d); /* the writer first: it never waits for more than one of these */
    int rc = sqlite3_exec(d->rdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return begin_failed(d->rdb, rc, err, "prune");
    /* the writer leaves next_id to the newest row when that implies it (fdn__evdb_write): a
     * prune that deletes the newest rows first records it, or a reopened file would give
     * their ids again */
    if ((rc = sqlite3_exec(d->rdb,
                           "INSERT OR REPLACE INTO meta(key, value) SELECT 'next_id', "
                           "max(coalesce((SELECT value FROM meta WHERE key = "
                           "'next_id'), 1), coalesce((SELECT max(id) FROM events), 0) "
                           "+ 1)",
                           NULL, NULL, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "prune");
    if (rc == 0 && (rc = sqlite3_prepare_v2(d->rdb, "DELETE FROM events WHERE id >= ?1 AND id < ?2",
                                            -1, &st, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "prune");
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, from > INT64_MAX ? INT64_MAX : (sqlite3_int64)from);
        sqlite3_bind_int64(st, 2, hi > INT64_MAX ? INT64_MAX : (sqlite3_int64)hi);
        int s = fdn__evdb_step_reset(st);
        if (s != SQLITE_OK)
            rc = fdn__evdb_map_rc(d->rdb, s, err, "prune");
        else
            *removed = sqlite3_changes64(d->rdb);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && *removed > 0) { /* meta count, in the prune's transaction */
        int s = sqlite3_prepare_v2(d->rdb, COUNT_PUT_SQL, -1, &st, NULL);
        if (s == SQLITE_OK)
            s = count_put(st, -*removed);
        if (s != SQLITE_OK)
            rc = fdn__evdb_map_rc(d->rdb, s, err, "prune");
        sqlite3_finalize(st);
    }
    if (rc == 0 && prefix)
        rc = fdn__evdb_corr_prune(d, d->rdb, hi, err);
    if (rc == 0 && (rc = sqlite3_exec(d->rdb, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "prune");
    if (rc != 0) {
        (void)sqlite3_exec(d->rdb, "ROLLBACK", NULL, NULL, NULL);
        *removed = 0;
    } else if (prefix) {
        fdn__evdb_corr_cut(d, hi);
    }
    return rc;
}

/* The smallest id >= from (0: none), on the read connection. */
static int first_id_from(fdn__evdb_t *d, uint64_t from, uint64_t *out, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = sqlite3_prepare_v2(d->rdb, "SELECT min(id) FROM events WHERE id >= ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, from > INT64_MAX ? INT64_MAX : (sqlite3_int64)from);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            rc = SQLITE_OK;
            if (sqlite3_column_type(st, 0) != SQLITE_NULL)
                *out = (uint64_t)sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : fdn__evdb_map_rc(d->rdb, rc, err, "prune");
}

/* Deletes in transactions of at most fdn__evdb_prune_chunk rows (ids, for a range), rmu
 * taken per transaction: one DELETE of millions of rows held the file's write lock for
 * seconds (3 M rows: 1.27 s), and the writer's BEGIN waited that long (past busy_timeout it
 * failed). Callers delete a prefix of the file's ids (the store keeps a contiguous range:
 * event_disk.c), and a chunk with no row below it also takes the correlation index's runs
 * below its end. */
int fdn__evdb_prune_where(fdn__evdb_t *d, uint64_t from, uint64_t below, uint64_t *count,
                          fdn_error_t *err)
{
    size_t chunk = fdn__evdb_prune_chunk > 0 ? fdn__evdb_prune_chunk : 1;
    uint64_t total = 0;
    int rc = 0;
    for (uint64_t at = from; rc == 0 && at < below;) {
        pthread_mutex_lock(&d->rmu);
        sqlite3_int64 removed = 0;
        rc = rdb_ready(d, err);
        uint64_t lo = 0, oldest = 0;
        if (rc == 0)
            rc = first_id_from(d, at, &lo, err);
        if (rc == 0 && lo != 0 && lo < below) {
            uint64_t hi = below - lo > chunk ? lo + chunk : below;
            if (from > 1) /* a prefix when no row is older than lo */
                rc = first_id_from(d, 0, &oldest, err);
            if (rc == 0)
                rc = prune_txn(d, at, hi, from <= 1 || oldest == lo, &removed, err);
            at = hi;
        } else {
            at = below;
        }
        pthread_mutex_unlock(&d->rmu);
        total += (uint64_t)removed;
    }
    if (count != NULL)
        *count = total;
    return rc;
}

/* The durable tier's retention: rows and the correlation index's runs below `below`. */
int fdn__evdb_prune(fdn__evdb_t *d, uint64_t below, uint64_t *count, fdn_error_t *err)
{
    return fdn__evdb_prune_where(d, 0, below, count, err);
}

void fdn__evdb_corr_counts(fdn__evdb_t *d, uint64_t *seeks, uint64_t *fences)
{
    pthread_mutex_lock(&d->rmu);
    *seeks = d->corr_seeks;
    *fences = d->corr_fences;
    pthread_mutex_unlock(&d->rmu);
}

uint64_t fdn__evdb_rows_read(fdn__evdb_t *d)
{
    pthread_mutex_lock(&d->rmu);
    uint64_t n = d->rows_read;
    pthread_mutex_unlock(&d->rmu);
    return n;
}

bool fdn__evdb_count_recomputed(fdn__evdb_t *d)
{
    return d->count_recomputed;
}

/* meta count and the table's min and max id (seeks), in one read snapshot; a count that fails
 * the cheap checks (another process damaged it since open) is not reported: the rows are
 * counted instead (a scan, as before the count was kept), and the next open stores it. */
int fdn__evdb_stats(fdn__evdb_t *d, fdn__evb_stats_t *out, fdn_error_t *err)
{
    pthread_mutex_lock(&d->rmu);
    sqlite3_stmt *st = NULL;
    int rc = rdb_ready(d, err);
    if (rc == 0 && (rc = sqlite3_prepare_v2(d->rdb, COUNT_GET_SQL, -1, &st, NULL)) != SQLITE_OK)
        rc = fdn__evdb_map_rc(d->rdb, rc, err, "stats");
    int s = rc == 0 ? sqlite3_step(st) : SQLITE_OK;
    if (rc == 0 && s == SQLITE_ROW && !count_plausible(st)) {
        sqlite3_finalize(st);
        st = NULL;
        if ((s = sqlite3_prepare_v2(d->rdb, COUNT_SCAN_SQL, -1, &st, NULL)) == SQLITE_OK &&
            (s = sqlite3_step(st)) == SQLITE_ROW && !count_plausible(st))
            rc = count_damaged(st, 0, 3, 4, err);
    }
    if (rc == 0 && s == SQLITE_ROW) {
        out->count = (uint64_t)sqlite3_column_int64(st, 0);
        out->oldest = (uint64_t)sqlite3_column_int64(st, 3); /* NULL reads as 0 */
        out->newest = (uint64_t)sqlite3_column_int64(st, 4);
    } else if (rc == 0) {
        rc = fdn__evdb_map_rc(d->rdb, s, err, "stats");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->rmu);
    return rc;
}

/* ---- the backend table (storage/event_backend.h): the write-behind implementation ---- */

static int evb_load(void *b, fdn__evb_load_cb cb, void *user, uint64_t *next_id, fdn_error_t *err)
{
    return fdn__evdb_load(b, cb, user, next_id, err);
}

static int evb_load_newest(void *b, uint64_t keep, fdn__evb_load_cb cb, void *user,
                           uint64_t *next_id, fdn_error_t *err)
{
    return fdn__evdb_load_newest(b, keep, cb, user, next_id, err);
}

static int evb_append(void *b, fdn__evb_batch_t *batch, fdn_error_t *err)
{
    if (batch->recs != NULL)
        return fdn__evdb_write_recs(b, batch->recs, batch->rec_off, batch->n, batch->prune_below,
                                    batch->next_id, err);
    return fdn__evdb_write(b, batch->evs, batch->n, batch->prune_below, batch->next_id, err);
}

static int evb_get(void *b, uint64_t id, fdn_event_t **out, fdn_error_t *err)
{
    return fdn__evdb_get(b, id, out, err);
}

static int evb_query(void *b, const fdn__evb_query_t *q, fdn_event_list_t **out, fdn_error_t *err)
{
    return fdn__evdb_query(b, q, out, err);
}

static int evb_correlation(void *b, const char *cid, fdn_event_list_t **out, fdn_error_t *err)
{
    fdn__evb_query_t q = {
        .correlation_id = cid, .wall_start = INT64_MIN, .wall_end = INT64_MAX, .limit = SIZE_MAX};
    return fdn__evdb_query(b, &q, out, err);
}

static int evb_prune(void *b, uint64_t below, uint64_t *count, fdn_error_t *err)
{
    return fdn__evdb_prune(b, below, count, err);
}

static int evb_prune_where(void *b, uint64_t from, uint64_t below, uint64_t *count,
                           fdn_error_t *err)
{
    return fdn__evdb_prune_where(b, from, below, count, err);
}

static int evb_stats(void *b, fdn__evb_stats_t *out, fdn_error_t *err)
{
    return fdn__evdb_stats(b, out, err);
}

static void evb_index(void *b, fdn__evb_index_t *out)
{
    fdn__evdb_corr_status(b, &out->current, &out->behind, &out->failures, &out->last_error);
}

static void evb_close(void *b)
{
    fdn__evdb_close(b);
}

/* Reads of what the memory tier evicted (get, query, correlation), the durable tier's own
 * retention (prune) and stats run on the read connection. */
static const fdn__evb_ops_t sqlite_ops = {
    .version = FDN__EVB_VERSION,
    .name = "sqlite",
    .assigns_ids = false,
    .load = evb_load,
    .append = evb_append,
    .get = evb_get,
    .query = evb_query,
    .correlation = evb_correlation,
    .prune = evb_prune,
    .stats = evb_stats,
    .close = evb_close,
    .load_newest = evb_load_newest,
    .index = evb_index,
    .prune_where = evb_prune_where,
};

int fdn__evb_sqlite_open(fdn__evb_t *out, const char *path, bool durable, bool compress,
                         fdn_error_t *err)
{
    fdn__evdb_t *d = NULL;
    int rc = fdn__evdb_open(&d, path, durable, compress, err);
    if (rc != 0)
        return rc;
    out->ops = &sqlite_ops;
    out->state = d;
    return 0;
}
