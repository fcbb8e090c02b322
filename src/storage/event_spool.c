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
    uint64_t max_bytes;
    uint64_t events, bytes;
};

static int db_fail(fdn__spool_t *s, fdn_error_t *err, const char *what)
{
    return fdn_err_set(err, FDN_EIO, "events spool: %s: %s", what,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
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
                     " body BLOB NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "create");
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(sum(n), 0), coalesce(sum(bytes), 0) FROM spool",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        rc = db_fail(s, err, "count");
        goto fail;
    }
    s->events = (uint64_t)sqlite3_column_int64(st, 0);
    s->bytes = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO spool (n, bytes, uids, body) VALUES (?, ?, ?, ?)",
                           -1, &s->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT seq, n, uids, body FROM spool ORDER BY seq LIMIT 4096",
                           -1, &s->peek, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM spool WHERE seq <= ? RETURNING n, bytes", -1,
                           &s->drop, NULL) != SQLITE_OK) {
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
        size_t idlen = (size_t)sqlite3_column_bytes(s->peek, 2);
        if (k <= 0 || k > (int64_t)(1u << 20) || idlen != (size_t)k * FDN_UUID_STR_LEN) {
            rc = fdn_err_set(err, FDN_ECORRUPT, "events spool: batch %lld is malformed",
                             (long long)sqlite3_column_int64(s->peek, 0));
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
        rc = decode_row(s, total, (size_t)k, ev, u, err);
        total += (size_t)k;
        *seq = sqlite3_column_int64(s->peek, 0);
        if (rc != 0)
            break;
    }
    sqlite3_reset(s->peek);
    if (rc == 0 && total == 0)
        rc = FDN_ENOENT;
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
    int step;
    while ((step = sqlite3_step(s->drop)) == SQLITE_ROW) {
        uint64_t n = (uint64_t)sqlite3_column_int64(s->drop, 0);
        uint64_t b = (uint64_t)sqlite3_column_int64(s->drop, 1);
        s->events -= n <= s->events ? n : s->events;
        s->bytes -= b <= s->bytes ? b : s->bytes;
    }
    int rc = step == SQLITE_DONE ? 0 : db_fail(s, err, "drop");
    sqlite3_reset(s->drop);
    return rc;
}

void fdn__spool_usage(const fdn__spool_t *s, uint64_t *events, uint64_t *bytes)
{
    *events = s->events;
    *bytes = s->bytes;
}
