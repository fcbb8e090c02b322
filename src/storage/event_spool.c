/*
 * DESIGN: the event store's local spool (storage/event_spool.h), one SQLite file.
 *
 * Layout: spool(seq INTEGER PRIMARY KEY AUTOINCREMENT, n, bytes, uids TEXT, body BLOB), one
 * row per batch: uids is the n event ids (UUID text) joined without separator (36 chars
 * each), body the n events as binary records (logic/event_codec.c, self-delimiting: each
 * carries its length) one after the other. AUTOINCREMENT keeps seq growing even after the
 * newest row was dropped, so "oldest first" is the order batches were put.
 *
 * Durability: journal WAL with synchronous=FULL, one transaction per put: a put that returned
 * is on disk (the store acknowledges spooled batches on that promise). A drop is committed the
 * same way; a crash between a replay's COMMIT on PostgreSQL and the drop replays the batch
 * again, which its UUIDs make harmless (the backend keeps the positions already stored).
 *
 * The bound: bytes held (sum of body sizes) is counted at open and kept in memory; a put
 * that would pass max_bytes is refused (FDN_EUNAVAILABLE), nothing written.
 *
 * Counts (batches, events, bytes; the quarantine's alike) are kept so that a damaged row
 * skews no other row's share: rows are counted apart (count(*) at open; the store's writer
 * replays while one is held, fdn__spool_batches, whatever its n says), and a row's n and
 * bytes count as max(value, 0), at open as when it leaves (count_of). Summed as stored, a row
 * whose n or bytes column was damaged to a negative value took the good rows' counts with it:
 * a spool whose events summed to 0 looked empty (its acknowledged batches never replayed, later
 * stores sent past them), one whose bytes summed below 0 wrapped to "full" for good. A drop or
 * a quarantine takes what it removed off the counts once its statement has completed; a peek
 * that finds the table empty sets them to 0.
 *
 * Quarantine: quarantine(id INTEGER PRIMARY KEY, seq, n, bytes, uids, body, quarantined_at,
 * error, error_name, message) holds the batches a replay can never take (one that does not
 * decode, or rows PostgreSQL refuses for good), moved there by fdn__spool_quarantine in one
 * transaction (INSERT ... SELECT from spool, then DELETE from spool: the row's values copied
 * as they are, not decoded again), committed like a put. The row has a key of its own (id)
 * and keeps the spool's seq as a plain column: with seq as its key, a spool whose
 * AUTOINCREMENT counter was lost (the spool table dropped and made again, sqlite_sequence
 * edited) gave a new batch an old quarantined batch's seq, and quarantining it failed on the
 * key, FDN_EIO every time, the spool blocked for good. A file from before (seq the key) is
 * rebuilt in this layout at open (migrate_quarantine). Nothing in this file deletes a
 * quarantined row; an operator reads or takes them out with SQL (docs/events-postgres.md).
 * Quarantined bytes do not count against max_bytes (what waits for the replay): counted
 * there, the records nobody can replay would fill the spool and refuse every later store,
 * the failure the quarantine exists to end. They have a bound of their own, the same
 * max_bytes: a batch that does not fit stays in the spool (FDN_ENOSPC), so the file holds at
 * most twice max_bytes of records. The quarantine's counts (batches, events, bytes, the last
 * one's error) are read at open and kept in memory; rows an operator removes by hand are
 * counted again at the next open.
 *
 * Peek: a batch that does not decode is FDN_ECORRUPT only when it is the oldest; behind good
 * ones it ends the peek before it, so the good ones are replayed first and the damaged one
 * then comes first, alone, to be quarantined. A body must be its n records exactly: bytes
 * past them (n and uids cut short together) are damage too, or the replay would store the
 * first events and drop the rest of an acknowledged batch without a word. SQLite out of memory
 * while reading a row (a column read as NULL, SQLITE_NOMEM) is FDN_ENOMEM, transient, never
 * damage: read as damage, the replay quarantined a good batch (or read through NULL).
 *
 * Threads: none; one caller at a time (the store's writer).
 */
#include "storage/event_spool.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <sqlite3.h>

#include "core/alloc.h"

struct fdn__spool {
    sqlite3 *db;
    sqlite3_stmt *put, *peek, *drop;
    sqlite3_stmt *qin, *qdel; /* quarantine: copy a spool row, then delete it */
    uint64_t max_bytes;
    uint64_t batches, events, bytes;       /* in the spool table (DESIGN, "Counts") */
    uint64_t q_batches, q_events, q_bytes; /* in the quarantine table */
    int q_error;                           /* the newest quarantined batch's error (0: none) */
};

/* A count read from a row, which damage may have made negative: 0 then. */
static uint64_t count_of(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v > 0 ? (uint64_t)v : 0;
}

/* Run stmt to its end (a DELETE ... RETURNING n, bytes): the rows into *rows, the sums of their
 * n and bytes (as counted: count_of) into *n, *bytes. */
static int step_all(sqlite3_stmt *st, uint64_t *rows, uint64_t *n, uint64_t *bytes)
{
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows != NULL)
            (*rows)++;
        if (n != NULL)
            *n += count_of(st, 0);
        if (bytes != NULL)
            *bytes += count_of(st, 1);
    }
    return step;
}

/* Take rows batches of n events and bytes bytes, gone from the spool table, off its counts. */
static void forget(fdn__spool_t *s, uint64_t rows, uint64_t n, uint64_t bytes)
{
    s->batches -= FDN_MIN(rows, s->batches);
    s->events -= FDN_MIN(n, s->events);
    s->bytes -= FDN_MIN(bytes, s->bytes);
}

static int db_fail(fdn__spool_t *s, fdn_error_t *err, const char *what)
{
    return fdn_err_set(err, FDN_EIO, "events spool: %s: %s", what,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
}

/* The quarantine table's columns (DESIGN, "Quarantine"): a key of its own, id, and the spool
 * row's seq kept as a plain column. */
#define QUARANTINE_COLUMNS                                                                         \
    "id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, n INTEGER NOT NULL, bytes INTEGER NOT NULL,"    \
    " uids TEXT NOT NULL, body BLOB NOT NULL, quarantined_at INTEGER NOT NULL,"                    \
    " error INTEGER NOT NULL, error_name TEXT NOT NULL, message TEXT NOT NULL"

/* A file written before the quarantine had its own key (seq its PRIMARY KEY, no id column):
 * rebuild the table in the current layout, its rows kept in seq order (ids 1, 2, ...), in one
 * transaction (a failure leaves the old table as it was). */
static int migrate_quarantine(fdn__spool_t *s, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM pragma_table_info('quarantine') WHERE name = 'id'",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return db_fail(s, err, "quarantine layout");
    }
    bool current = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (current)
        return 0;
    if (sqlite3_exec(s->db,
                     "BEGIN IMMEDIATE;"
                     "CREATE TABLE quarantine_v2 (" QUARANTINE_COLUMNS ");"
                     "INSERT INTO quarantine_v2 (seq, n, bytes, uids, body, quarantined_at, error,"
                     " error_name, message) SELECT seq, n, bytes, uids, body, quarantined_at,"
                     " error, error_name, message FROM quarantine ORDER BY seq;"
                     "DROP TABLE quarantine;"
                     "ALTER TABLE quarantine_v2 RENAME TO quarantine;"
                     "COMMIT",
                     NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(s, err, "quarantine: migrate");
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

int fdn__spool_open(fdn__spool_t **out, const char *path, uint64_t max_bytes, fdn_error_t *err)
{
    if (out == NULL || path == NULL || path[0] == '\0')
        return fdn_err_set(err, FDN_EINVAL, "events spool: no path");
    fdn__spool_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events spool: out of memory");
    s->max_bytes = max_bytes;
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, err, path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " n INTEGER NOT NULL, bytes INTEGER NOT NULL, uids TEXT NOT NULL,"
                     " body BLOB NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS quarantine (" QUARANTINE_COLUMNS ")",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "create");
        goto fail;
    }
    rc = migrate_quarantine(s, err);
    if (rc != 0)
        goto fail;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*), coalesce(sum(max(n, 0)), 0),"
                           " coalesce(sum(max(bytes, 0)), 0) FROM spool",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        rc = db_fail(s, err, "count");
        goto fail;
    }
    s->batches = count_of(st, 0);
    s->events = count_of(st, 1);
    s->bytes = count_of(st, 2);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*), coalesce(sum(max(n, 0)), 0),"
                           " coalesce(sum(max(bytes, 0)), 0), (SELECT error FROM quarantine"
                           " ORDER BY quarantined_at DESC, id DESC LIMIT 1) FROM quarantine",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        rc = db_fail(s, err, "count the quarantine");
        goto fail;
    }
    s->q_batches = count_of(st, 0);
    s->q_events = count_of(st, 1);
    s->q_bytes = count_of(st, 2);
    s->q_error = (int)sqlite3_column_int(st, 3);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO spool (n, bytes, uids, body) VALUES (?, ?, ?, ?)",
                           -1, &s->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT seq, n, uids, body FROM spool ORDER BY seq LIMIT 4096",
                           -1, &s->peek, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM spool WHERE seq <= ? RETURNING n, bytes", -1,
                           &s->drop, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO quarantine (seq, n, bytes, uids, body, quarantined_at,"
                           " error, error_name, message) SELECT seq, n, bytes, uids, body, ?2,"
                           " ?3, ?4, ?5 FROM spool WHERE seq = ?1",
                           -1, &s->qin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM spool WHERE seq = ? RETURNING n, bytes", -1,
                           &s->qdel, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "prepare");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    fdn__spool_close(s);
    return rc;
}

void fdn__spool_close(fdn__spool_t *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->peek);
    sqlite3_finalize(s->drop);
    sqlite3_finalize(s->qin);
    sqlite3_finalize(s->qdel);
    sqlite3_close(s->db);
    fdn__free(s);
}

int fdn__spool_put(fdn__spool_t *s, const fdn_event_t *const *evs, const fdn__spool_uid_t *uids,
                   size_t n, fdn_error_t *err)
{
    if (n == 0)
        return 0;
    uint8_t *body = NULL;
    size_t cap = 0, len = 0;
    char *ids = fdn__malloc(n * FDN_UUID_STR_LEN + 1);
    if (ids == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events spool: out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        memcpy(ids + i * FDN_UUID_STR_LEN, uids[i], FDN_UUID_STR_LEN);
        uint8_t *rec = NULL;
        size_t rlen = 0;
        rc = fdn_event_encode(evs[i], 0, &rec, &rlen);
        if (rc != 0)
            break;
        if (len + rlen > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            while (nc < len + rlen)
                nc *= 2;
            uint8_t *nb = fdn__realloc(body, nc);
            if (nb == NULL) {
                fdn_free(rec);
                rc = FDN_ENOMEM;
                break;
            }
            body = nb;
            cap = nc;
        }
        memcpy(body + len, rec, rlen);
        len += rlen;
        fdn_free(rec);
    }
    if (rc != 0) {
        rc = fdn_err_set(err, rc, "events spool: cannot encode the batch");
    } else if (s->bytes + len > s->max_bytes) {
        rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                         "events spool full: %" PRIu64 " of %" PRIu64
                         " bytes held, a batch of %zu bytes does not fit",
                         s->bytes, s->max_bytes, len);
    } else {
        ids[n * FDN_UUID_STR_LEN] = '\0';
        sqlite3_reset(s->put);
        sqlite3_bind_int64(s->put, 1, (sqlite3_int64)n);
        sqlite3_bind_int64(s->put, 2, (sqlite3_int64)len);
        sqlite3_bind_text(s->put, 3, ids, (int)(n * FDN_UUID_STR_LEN), SQLITE_STATIC);
        sqlite3_bind_blob64(s->put, 4, body, len, SQLITE_STATIC);
        if (sqlite3_step(s->put) != SQLITE_DONE) {
            rc = db_fail(s, err, "put");
        } else {
            s->batches++;
            s->events += n;
            s->bytes += len;
        }
        sqlite3_reset(s->put);
        sqlite3_clear_bindings(s->put);
    }
    fdn__free(ids);
    fdn__free(body);
    return rc;
}

/* Whether the FDN_UUID_STR_LEN bytes at s are a UUID's text: 8-4-4-4-12 hex digits. */
static bool uid_ok(const char *s)
{
    for (int i = 0; i < FDN_UUID_STR_LEN; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Decode one row's n events into ev[at..] and their ids into u[at..]. */
static int decode_row(fdn__spool_t *s, size_t at, size_t n, fdn_event_t **ev, fdn__spool_uid_t *u,
                      fdn_error_t *err)
{
    const char *ids = (const char *)sqlite3_column_text(s->peek, 2);
    const uint8_t *body = sqlite3_column_blob(s->peek, 3);
    size_t blen = (size_t)sqlite3_column_bytes(s->peek, 3);
    /* n > 0 ids were there (the caller checked their length): NULL is SQLite out of memory,
     * transient, not damage */
    if (ids == NULL || (body == NULL && blen > 0))
        return fdn_err_set(err, FDN_ENOMEM, "events spool: batch %lld: out of memory",
                           (long long)sqlite3_column_int64(s->peek, 0));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        /* the backend stores the id as a UUID: one it would refuse would block the replay */
        if (!uid_ok(ids + i * FDN_UUID_STR_LEN))
            return fdn_err_set(err, FDN_ECORRUPT,
                               "events spool: batch %lld, event %zu: its id "
                               "is not a UUID",
                               (long long)sqlite3_column_int64(s->peek, 0), i + 1);
        memcpy(u[at + i], ids + i * FDN_UUID_STR_LEN, FDN_UUID_STR_LEN);
        u[at + i][FDN_UUID_STR_LEN] = '\0';
        uint32_t rlen = 0;
        if (blen - off >= 12)
            rlen = (uint32_t)body[off + 8] | (uint32_t)body[off + 9] << 8 |
                   (uint32_t)body[off + 10] << 16 | (uint32_t)body[off + 11] << 24;
        if (rlen == 0 || rlen > blen - off)
            return fdn_err_set(err, FDN_ECORRUPT, "events spool: batch %lld is cut short",
                               (long long)sqlite3_column_int64(s->peek, 0));
        fdn_error_t why = FDN_ERROR_INIT;
        int rc = fdn_event_decode(&ev[at + i], body + off, rlen, &why);
        if (rc == FDN_ENOMEM)
            return fdn_err_set(err, rc, "events spool: out of memory");
        if (rc != 0) /* damage: the documented code, naming the batch */
            return fdn_err_set(err, FDN_ECORRUPT, "events spool: batch %lld, event %zu: %s",
                               (long long)sqlite3_column_int64(s->peek, 0), i + 1, why.message);
        off += rlen;
    }
    /* bytes past its n records: a count cut short (with its ids) would drop events unseen */
    if (off != blen)
        return fdn_err_set(err, FDN_ECORRUPT,
                           "events spool: batch %lld holds %zu bytes past its %zu events",
                           (long long)sqlite3_column_int64(s->peek, 0), blen - off, n);
    return 0;
}

int fdn__spool_peek(fdn__spool_t *s, size_t max_events, uint64_t max_bytes, int64_t *seq,
                    fdn_event_t ***evs, fdn__spool_uid_t **uids, size_t *n, fdn_error_t *err)
{
    fdn_event_t **ev = NULL;
    fdn__spool_uid_t *u = NULL;
    size_t total = 0, cap = 0;
    uint64_t bytes = 0;
    int rc = 0;
    sqlite3_reset(s->peek);
    for (;;) {
        int step = sqlite3_step(s->peek);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = db_fail(s, err, "peek");
            break;
        }
        int64_t k = sqlite3_column_int64(s->peek, 1);
        /* text first, then its length (SQLite's order): reading a value as text may convert
         * it (a file in UTF-16), and out of memory that is NULL and length 0, not damage */
        if ((sqlite3_column_text(s->peek, 2) == NULL || sqlite3_column_blob(s->peek, 3) == NULL) &&
            sqlite3_errcode(s->db) == SQLITE_NOMEM) {
            rc = fdn_err_set(err, FDN_ENOMEM, "events spool: peek: out of memory");
            break;
        }
        size_t idlen = (size_t)sqlite3_column_bytes(s->peek, 2);
        if (k <= 0 || k > (int64_t)(1u << 20) || idlen != (size_t)k * FDN_UUID_STR_LEN) {
            if (total > 0)
                break; /* the good batches before it first; then it comes first, alone */
            *seq = sqlite3_column_int64(s->peek, 0);
            rc = fdn_err_set(err, FDN_ECORRUPT, "events spool: batch %lld is malformed",
                             (long long)*seq);
            break;
        }
        uint64_t blen = (uint64_t)sqlite3_column_bytes(s->peek, 3);
        if (total > 0 &&
            (total + (size_t)k > max_events || (max_bytes > 0 && bytes + blen > max_bytes)))
            break; /* whole batches only; the first one whatever its size */
        bytes += blen;
        if (total + (size_t)k > cap) {
            size_t nc = FDN_MAX(cap * 2, total + (size_t)k);
            fdn_event_t **ne = fdn__realloc(ev, nc * sizeof(*ne));
            if (ne != NULL)
                ev = ne;
            fdn__spool_uid_t *nu = ne != NULL ? fdn__realloc(u, nc * sizeof(*nu)) : NULL;
            if (nu == NULL) {
                rc = fdn_err_set(err, FDN_ENOMEM, "events spool: out of memory");
                break;
            }
            u = nu;
            memset(ev + cap, 0, (nc - cap) * sizeof(*ev));
            cap = nc;
        }
        fdn_error_t why = FDN_ERROR_INIT;
        rc = decode_row(s, total, (size_t)k, ev, u, &why);
        if (rc == FDN_ECORRUPT && total > 0) {
            /* the good batches before it first; then it comes first, alone */
            for (size_t i = total; i < total + (size_t)k; i++) {
                fdn_event_free(ev[i]);
                ev[i] = NULL;
            }
            rc = 0;
            break;
        }
        total += (size_t)k;
        *seq = sqlite3_column_int64(s->peek, 0);
        if (rc != 0) {
            fdn_err_set(err, rc, "%s", why.message);
            break;
        }
    }
    sqlite3_reset(s->peek);
    if (rc == 0 && total == 0) { /* the table is empty: so are its counts */
        s->batches = s->events = s->bytes = 0;
        rc = FDN_ENOENT;
    }
    if (rc != 0) {
        for (size_t i = 0; i < total; i++)
            fdn_event_free(ev[i]);
        fdn__free(ev);
        fdn__free(u);
        return rc;
    }
    *evs = ev;
    *uids = u;
    *n = total;
    return 0;
}

int fdn__spool_drop(fdn__spool_t *s, int64_t seq, fdn_error_t *err)
{
    sqlite3_reset(s->drop);
    sqlite3_bind_int64(s->drop, 1, seq);
    uint64_t rows = 0, n = 0, b = 0;
    int rc = step_all(s->drop, &rows, &n, &b) == SQLITE_DONE ? 0 : db_fail(s, err, "drop");
    sqlite3_reset(s->drop);
    if (rc == 0)
        forget(s, rows, n, b);
    return rc;
}

void fdn__spool_usage(const fdn__spool_t *s, uint64_t *events, uint64_t *bytes)
{
    *events = s->events;
    *bytes = s->bytes;
}

uint64_t fdn__spool_batches(const fdn__spool_t *s)
{
    return s->batches;
}

int fdn__spool_quarantine(fdn__spool_t *s, int64_t seq, int64_t at_ms, int code,
                          const char *message, uint64_t *events, fdn_error_t *err)
{
    /* the row's size first: the quarantine's bound */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT bytes FROM spool WHERE seq = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, err, "quarantine");
    sqlite3_bind_int64(st, 1, seq);
    int step = sqlite3_step(st);
    uint64_t b = step == SQLITE_ROW ? count_of(st, 0) : 0;
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return fdn_err_set(err, FDN_ENOENT, "events spool: no batch %lld to quarantine",
                           (long long)seq);
    if (step != SQLITE_ROW)
        return db_fail(s, err, "quarantine");
    if (s->q_bytes + b > s->max_bytes)
        return fdn_err_set(err, FDN_ENOSPC,
                           "events spool: quarantine full: %" PRIu64 " of %" PRIu64
                           " bytes held, batch %lld (%" PRIu64 " bytes) stays in the spool",
                           s->q_bytes, s->max_bytes, (long long)seq, b);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "quarantine: begin");
    const char *name = fdn_err_name(code);
    const char *msg = message != NULL ? message : "";
    sqlite3_reset(s->qin);
    sqlite3_bind_int64(s->qin, 1, seq);
    sqlite3_bind_int64(s->qin, 2, at_ms);
    sqlite3_bind_int(s->qin, 3, code);
    sqlite3_bind_text(s->qin, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->qin, 5, msg, -1, SQLITE_STATIC);
    int rc = 0;
    uint64_t rows = 0, dn = 0, db = 0;
    if (step_all(s->qin, NULL, NULL, NULL) != SQLITE_DONE) {
        rc = db_fail(s, err, "quarantine: insert");
    } else if (sqlite3_changes(s->db) != 1) {
        rc = fdn_err_set(err, FDN_ENOENT, "events spool: no batch %lld to quarantine",
                         (long long)seq);
    } else {
        sqlite3_reset(s->qdel);
        sqlite3_bind_int64(s->qdel, 1, seq);
        if (step_all(s->qdel, &rows, &dn, &db) != SQLITE_DONE)
            rc = db_fail(s, err, "quarantine: delete");
        sqlite3_reset(s->qdel);
    }
    sqlite3_reset(s->qin);
    sqlite3_clear_bindings(s->qin);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s, err, "quarantine: commit");
    if (rc != 0) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    forget(s, rows, dn, db);
    s->q_batches++;
    s->q_events += dn;
    s->q_bytes += db;
    s->q_error = code;
    if (events != NULL)
        *events = dn;
    return 0;
}

void fdn__spool_quarantine_usage(const fdn__spool_t *s, uint64_t *batches, uint64_t *events,
                                 uint64_t *bytes, int *last_error)
{
    *batches = s->q_batches;
    *events = s->q_events;
    *bytes = s->q_bytes;
    *last_error = s->q_error;
}
