/*
 * DESIGN: the durable tier of the event store on SQLite.
 *
 * Schema: events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL,
 * rec BLOB NOT NULL) where rec is the binary event record (docs/event-format.md, with zstd
 * for payloads of 256 bytes or more when it helps); meta(key TEXT PRIMARY KEY, value INTEGER)
 * holds next_id so that ids are never reused after pruning. Queries are served from memory
 * (the store reloads every row at open), so no secondary index is kept: the insert path
 * stays as cheap as a raw batched insert.
 * WAL mode; synchronous=FULL for the durable mode (a commit returns after fsync), NORMAL for
 * the fast mode. SQLite's WAL checksums drop a torn last transaction at open; a damaged file
 * (SQLITE_CORRUPT / SQLITE_NOTADB) or a record failing its CRC32C gives FDN_ECORRUPT.
 * Threads: the connection is used by one thread at a time (no locks here); statements are
 * prepared once.
 * The backend table (storage/event_backend.h) at the end wraps these functions: SQLite is the
 * write-behind implementation (ids from the memory tier, no reads).
 */
#include "storage/event_sqlite.h"
#include "storage/event_backend.h"

#include <string.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "logic/event_int.h"

struct fdn__evdb {
    sqlite3 *db;
    sqlite3_stmt *ins;
    sqlite3_stmt *del;
    sqlite3_stmt *meta_put;
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    uint8_t *buf;
    size_t cap;
    unsigned enc_flags; /* FDN_EVENT_ENC_ZSTD or 0 */
};

static int map_rc(sqlite3 *db, int rc, fdn_error_t *err, const char *what)
{
    int code =
        (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? FDN_ECORRUPT : FDN_EIO;
    return fdn_err_set(err, code, "event store file: %s: %s", what,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int exec(fdn__evdb_t *d, const char *sql, fdn_error_t *err)
{
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return map_rc(d->db, rc, err, sql);
    return 0;
}

void fdn__evdb_close(fdn__evdb_t *d)
{
    if (d == NULL)
        return;
    sqlite3_finalize(d->ins);
    sqlite3_finalize(d->del);
    sqlite3_finalize(d->meta_put);
    sqlite3_finalize(d->begin);
    sqlite3_finalize(d->commit);
    sqlite3_finalize(d->rollback);
    sqlite3_close(d->db);
    fdn__free(d->buf);
    fdn__free(d);
}

int fdn__evdb_open(fdn__evdb_t **out, const char *path, bool durable, bool compress,
                   fdn_error_t *err)
{
    fdn__evdb_t *d = fdn__calloc(1, sizeof(*d));
    if (d == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    d->enc_flags = compress ? FDN_EVENT_ENC_ZSTD : 0;
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = map_rc(d->db, rc, err, "open");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, 5000);
    sqlite3_extended_result_codes(d->db, 1);
    if ((rc = exec(d, "PRAGMA journal_mode=WAL", err)) != 0)
        goto fail;
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
        {&d->begin, "BEGIN IMMEDIATE"},
        {&d->commit, "COMMIT"},
        {&d->rollback, "ROLLBACK"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        rc = sqlite3_prepare_v3(d->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                                NULL);
        if (rc != SQLITE_OK) {
            rc = map_rc(d->db, rc, err, "prepare");
            goto fail;
        }
    }
    *out = d;
    return 0;
fail:
    fdn__evdb_close(d);
    return rc;
}

int fdn__evdb_load(fdn__evdb_t *d, int (*cb)(fdn_event_t *ev, void *user), void *user,
                   uint64_t *next_id, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    uint64_t next = 1;
    int rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key='next_id'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_rc(d->db, rc, err, "read meta");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        next = (uint64_t)sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rc = map_rc(d->db, rc, err, "read meta");
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    rc = sqlite3_prepare_v2(d->db, "SELECT id, rec FROM events ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_rc(d->db, rc, err, "read events");
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
        out = map_rc(d->db, rc, err, "read events");
    sqlite3_finalize(st);
    if (out == 0)
        *next_id = next;
    return out;
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int fdn__evdb_write(fdn__evdb_t *d, const fdn_event_t *const *evs, size_t n, uint64_t delete_before,
                    uint64_t next_id, fdn_error_t *err)
{
    int rc = step_reset(d->begin);
    if (rc != SQLITE_OK)
        return map_rc(d->db, rc, err, "begin");
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        int e = fdn__event_encode_into(evs[i], d->enc_flags, &d->buf, &d->cap, &len);
        if (e != 0) {
            step_reset(d->rollback);
            return fdn_err_set(err, e, "event store file: encode failed");
        }
        sqlite3_bind_int64(d->ins, 1, (sqlite3_int64)evs[i]->id);
        sqlite3_bind_int64(d->ins, 2, evs[i]->ts);
        sqlite3_bind_text(d->ins, 3, evs[i]->type, evs[i]->type_len, SQLITE_STATIC);
        sqlite3_bind_blob(d->ins, 4, d->buf, (int)len, SQLITE_STATIC);
        rc = step_reset(d->ins);
        if (rc != SQLITE_OK)
            goto fail;
    }
    if (delete_before > 0) {
        sqlite3_bind_int64(d->del, 1, (sqlite3_int64)delete_before);
        if ((rc = step_reset(d->del)) != SQLITE_OK)
            goto fail;
    }
    if (next_id > 0 && (delete_before > 0 || n > 0)) {
        sqlite3_bind_int64(d->meta_put, 1, (sqlite3_int64)next_id);
        if ((rc = step_reset(d->meta_put)) != SQLITE_OK)
            goto fail;
    }
    rc = step_reset(d->commit);
    if (rc != SQLITE_OK)
        goto fail;
    return 0;
fail:
    rc = map_rc(d->db, rc, err, "write");
    step_reset(d->rollback);
    return rc;
}

/* ---- the backend table (storage/event_backend.h): the write-behind implementation ---- */

static int evb_load(void *b, fdn__evb_load_cb cb, void *user, uint64_t *next_id, fdn_error_t *err)
{
    return fdn__evdb_load(b, cb, user, next_id, err);
}

static int evb_append(void *b, fdn__evb_batch_t *batch, fdn_error_t *err)
{
    return fdn__evdb_write(b, batch->evs, batch->n, batch->prune_below, batch->next_id, err);
}

static void evb_close(void *b)
{
    fdn__evdb_close(b);
}

/* Reads are served by the memory tier, which holds every event of the file: no read
 * function is offered. */
static const fdn__evb_ops_t sqlite_ops = {
    .version = FDN__EVB_VERSION,
    .name = "sqlite",
    .assigns_ids = false,
    .load = evb_load,
    .append = evb_append,
    .close = evb_close,
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
