/*
 * DESIGN: the correlation index of the SQLite event file.
 *
 * Why. The memory tier answers lookups for the newest events; what it evicted is read from the
 * file, and until 0.3.0 a lookup by correlation id decoded every row of it (1 to 2 s at 4 M
 * events, on every lookup once anything was evicted). A plain SQLite index on the correlation
 * id was measured first: correlation ids are random (UUIDs), so each event inserted lands on
 * its own index page, and a commit of n events rewrote about n pages of 4 KiB into the WAL.
 * The durable append fell from 0.82x to 0.55x of raw batched SQLite. This index writes each
 * key once, in order.
 *
 * What. Ids are cut into blocks of FDN__EVDB_RUN_IDS (8192). When the writer finishes a block
 * (it writes the first id of the next one), it writes the block's run: one row of
 * corr_runs(blk INTEGER PRIMARY KEY, keys BLOB), the block's keys sorted, 8 bytes each,
 * little-endian: the high 51 bits of the correlation id's hash, then the id's 13-bit offset in
 * the block. Events without a correlation id have no key; a block without keys has no row.
 * meta runs_to: every block below it has its run. So the file grows by 8 bytes per event with
 * a correlation id, written in one row per block, and the writer's cost per event is a hash
 * and a store into an array (plus a sort per block).
 * The hash is XXH3 under a 192-byte secret drawn once per file (meta ch_secret): a client
 * choosing correlation ids cannot make them collide in advance.
 *
 * Lookup (fdn__evdb_corr_ids, on the read connection in one read transaction): a binary
 * search in each block's run (sqlite3_blob reads of 8 bytes, not the whole row), the ids whose
 * key matches in (after, before); then the rows from the first block without a run on (at
 * most one block normally: the one being written) are scanned. A 51-bit match is a candidate:
 * the caller decodes the row and compares the correlation id, so a collision costs a decode,
 * never a wrong answer. Cost: a seek per block (about 540 at 4.4 M events) and a decode per
 * match.
 *
 * Upgrades and crashes. At open (fdn__evdb_corr_open) every complete block from runs_to on is
 * indexed from the rows (decoded), a few blocks per transaction with runs_to moving with each,
 * so an interrupted open resumes; the last, incomplete block's keys are gathered into memory.
 * This covers a file written before 0.3.0 (runs_to absent: every row is indexed once, about
 * 1 us per event), rows a 0.2.x library appended to an indexed file (it writes no runs, so
 * runs_to is behind them), and the keys of the last block a crash lost from memory. A row that
 * does not decode gets no key (it is reported damaged when read by id, time or type).
 * A failed commit leaves the gathered keys unknown: they are gathered again before the next
 * write. Ids written below the block being gathered (the store never does: its writer commits
 * ranges in id order) are merged into their block's run.
 * Prune: the runs of blocks wholly below the cut are deleted; keys of pruned ids in the cut's
 * own block stay until that block goes, and a lookup skips ids whose row is gone.
 * Threads: the writer's connection and state belong to the writer thread (or open); lookups
 * run on the read connection under rmu.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "storage/event_sqlite_int.h"

#define RUN_MASK ((uint64_t)FDN__EVDB_RUN_IDS - 1)

/* Complete blocks indexed per transaction when indexing at open. */
#define FILL_BLOCKS 16

static uint64_t hash_of(const fdn__evdb_t *d, const char *cid, size_t len)
{
    return fdn__hash_keyed(d->ch_secret, cid, len);
}

static uint64_t key_of(uint64_t hash, uint64_t id)
{
    return (hash & ~RUN_MASK) | ((id - 1) & RUN_MASK);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int meta_runs_to(sqlite3 *db, uint64_t *out, fdn_error_t *err)
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

static uint64_t blk_first(uint64_t blk)
{
    return (blk << FDN__EVDB_RUN_SHIFT) + 1;
}

static sqlite3_int64 clamp64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

/* meta runs_to = to. */
static int set_runs_to(fdn__evdb_t *d, uint64_t to, fdn_error_t *err)
{
    sqlite3_bind_int64(d->run_to, 1, clamp64(to));
    int s = fdn__evdb_step_reset(d->run_to);
    return s == SQLITE_OK ? 0 : fdn__evdb_map_rc(d->db, s, err, "write the correlation index");
}

/* Write block blk's run from keys (n of them, any order; sorted here; no row when n is 0) and
 * set runs_to = to. In the caller's transaction on the writer's connection. */
static int write_run(fdn__evdb_t *d, uint64_t blk, uint64_t *keys, size_t n, uint64_t to,
                     fdn_error_t *err)
{
    int s = SQLITE_OK;
    if (n > 0) {
        qsort(keys, n, sizeof(*keys), cmp_u64);
        uint8_t *blob = fdn__malloc(n * 8);
        if (blob == NULL)
            return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
        for (size_t i = 0; i < n; i++)
            put_le64(blob + 8 * i, keys[i]);
        sqlite3_bind_int64(d->run_put, 1, (sqlite3_int64)blk);
        sqlite3_bind_blob(d->run_put, 2, blob, (int)(n * 8), SQLITE_STATIC);
        s = fdn__evdb_step_reset(d->run_put);
        sqlite3_clear_bindings(d->run_put);
        fdn__free(blob);
    }
    if (s != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, s, err, "write the correlation index");
    return set_runs_to(d, to, err);
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
            if (write &&
                (rc = write_run(d, d->run_blk, d->run, d->run_n, fdn__evdb_blk(id), err)) != 0)
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
    for (;;) {
        int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "index correlation ids");
        uint64_t from = 0, first = 0, last = 0;
        int rc = meta_runs_to(d->db, &from, err);
        if (rc == 0)
            rc = query_u64(d->db, "SELECT max(id) FROM events WHERE id >= ?1", 0, &last, err);
        if (rc == 0)
            rc = query_u64(d->db, "SELECT min(id) FROM events WHERE id >= ?1", blk_first(from),
                           &first, err);
        if (first > 0 && fdn__evdb_blk(first) > from)
            from = fdn__evdb_blk(first); /* nothing to index before it */
        /* the last block is the one being written: gathered, not written */
        uint64_t end = last > 0 && fdn__evdb_blk(last) > from ? fdn__evdb_blk(last) : from;
        bool done = end - from <= FILL_BLOCKS;
        uint64_t upto = done ? end : from + FILL_BLOCKS;
        if (rc == 0 && upto > from && (rc = gather(d, from, blk_first(upto), true, err)) == 0)
            rc = write_run(d, d->run_blk, d->run, d->run_n, upto, err);
        if (rc == 0 && done)
            rc = gather(d, upto, UINT64_MAX, false, err);
        if (rc == 0 && (s = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
            rc = fdn__evdb_map_rc(d->db, s, err, "index correlation ids");
        if (rc != 0) {
            (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        if (done) {
            d->run_ok = true;
            return 0;
        }
    }
}

int fdn__evdb_corr_resync(fdn__evdb_t *d, fdn_error_t *err)
{
    return catch_up(d, err);
}

int fdn__evdb_corr_open(fdn__evdb_t *d, fdn_error_t *err)
{
    d->run = fdn__malloc(FDN__EVDB_RUN_IDS * sizeof(*d->run));
    if (d->run == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    /* the table and the secret in one transaction: two processes opening one new file at once
     * agree on one secret */
    int s = sqlite3_exec(d->db,
                         "BEGIN IMMEDIATE;"
                         "CREATE TABLE IF NOT EXISTS corr_runs(blk INTEGER PRIMARY KEY, keys BLOB "
                         "NOT NULL);",
                         NULL, NULL, NULL);
    int rc = s == SQLITE_OK ? 0 : fdn__evdb_map_rc(d->db, s, err, "create the correlation index");
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
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&d->run_put, "INSERT OR REPLACE INTO corr_runs(blk, keys) VALUES(?1, ?2)"},
        {&d->run_to, "INSERT OR REPLACE INTO meta(key, value) VALUES('runs_to', ?1)"},
        {&d->run_del, "DELETE FROM corr_runs WHERE blk < ?1"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        s = sqlite3_prepare_v3(d->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                               NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "prepare");
    }
    return catch_up(d, err);
}

/* A key for an id below the block being gathered (module comment): merged into its run. */
static int add_late(fdn__evdb_t *d, uint64_t blk, uint64_t key, fdn_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int s = sqlite3_prepare_v2(d->db, "SELECT keys FROM corr_runs WHERE blk = ?1", -1, &st, NULL);
    if (s != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, s, err, "read the correlation index");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)blk);
    size_t n = 0;
    uint64_t *keys = NULL;
    s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        n = (size_t)sqlite3_column_bytes(st, 0) / 8;
    keys = fdn__malloc((n + 1) * sizeof(*keys));
    if (keys != NULL && s == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        for (size_t i = 0; i < n; i++)
            keys[i] = get_le64(p + 8 * i);
    }
    sqlite3_finalize(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE) {
        fdn__free(keys);
        return fdn__evdb_map_rc(d->db, s, err, "read the correlation index");
    }
    if (keys == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    keys[n++] = key;
    int rc = write_run(d, blk, keys, n, d->run_blk, err); /* runs_to unchanged */
    fdn__free(keys);
    return rc;
}

int fdn__evdb_corr_add(fdn__evdb_t *d, const fdn_event_t *ev, fdn_error_t *err)
{
    uint64_t id = ev->id, blk = fdn__evdb_blk(id);
    if (blk != d->run_blk) {
        if (blk < d->run_blk)
            return ev->corr_len > 0
                       ? add_late(d, blk, key_of(hash_of(d, ev->corr, ev->corr_len), id), err)
                       : 0;
        int rc = write_run(d, d->run_blk, d->run, d->run_n, blk, err);
        if (rc != 0)
            return rc;
        d->run_blk = blk;
        d->run_n = 0;
    }
    if (ev->corr_len > 0)
        d->run[d->run_n++] = key_of(hash_of(d, ev->corr, ev->corr_len), id);
    return 0;
}

int fdn__evdb_corr_prune(fdn__evdb_t *d, sqlite3 *db, uint64_t below, fdn_error_t *err)
{
    if (below <= 1)
        return 0;
    sqlite3_stmt *st = d->run_del;
    int s = SQLITE_OK;
    if (db != d->db) /* the read connection */
        s = sqlite3_prepare_v2(db, "DELETE FROM corr_runs WHERE blk < ?1", -1, &st, NULL);
    if (s == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, clamp64(fdn__evdb_blk(below)));
        s = fdn__evdb_step_reset(st);
    }
    if (st != d->run_del)
        sqlite3_finalize(st);
    return s == SQLITE_OK ? 0 : fdn__evdb_map_rc(db, s, err, "prune the correlation index");
}

/* The growable list of candidate ids. */
typedef struct idvec {
    uint64_t *v;
    size_t n, cap;
} idvec_t;

static int idvec_push(idvec_t *a, uint64_t id)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        uint64_t *nv = fdn__realloc(a->v, nc * sizeof(*nv));
        if (nv == NULL)
            return FDN_ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return 0;
}

/* The ids of block blk's run (open in h) whose key has hash's prefix, within (after,
 * before). */
static int search_run(sqlite3_blob *h, uint64_t blk, uint64_t hash, uint64_t after, uint64_t before,
                      idvec_t *out)
{
    size_t n = (size_t)sqlite3_blob_bytes(h) / 8, lo = 0, hi = n;
    uint64_t want = hash & ~RUN_MASK;
    uint8_t b[8 * 32];
    while (lo < hi) { /* the first key >= want */
        size_t mid = lo + (hi - lo) / 2;
        if (sqlite3_blob_read(h, b, 8, (int)(mid * 8)) != SQLITE_OK)
            return FDN_EIO;
        if (get_le64(b) < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo < n) {
        size_t k = n - lo < 32 ? n - lo : 32;
        if (sqlite3_blob_read(h, b, (int)(k * 8), (int)(lo * 8)) != SQLITE_OK)
            return FDN_EIO;
        for (size_t i = 0; i < k; i++) {
            uint64_t key = get_le64(b + 8 * i);
            if ((key & ~RUN_MASK) != want)
                return 0;
            uint64_t id = (blk << FDN__EVDB_RUN_SHIFT) + (key & RUN_MASK) + 1;
            if (id > after && (before == 0 || id < before) && idvec_push(out, id) != 0)
                return FDN_ENOMEM;
        }
        lo += k;
    }
    return 0;
}

int fdn__evdb_corr_ids(fdn__evdb_t *d, const char *cid, uint64_t after, uint64_t before,
                       uint64_t **ids, size_t *n, uint64_t *tail, fdn_error_t *err)
{
    uint64_t runs_to = 0, hash = hash_of(d, cid, strlen(cid));
    idvec_t a = {0};
    *ids = NULL;
    *n = 0;
    int rc = meta_runs_to(d->rdb, &runs_to, err);
    if (rc != 0)
        return rc;
    *tail = blk_first(runs_to);
    if ((before != 0 && before <= after + 1) || after >= INT64_MAX)
        return 0;
    /* blocks [lo, hi): those holding ids in (after, before) that have runs */
    uint64_t lo = fdn__evdb_blk(after + 1);
    uint64_t hi = before != 0 && before <= *tail ? fdn__evdb_blk(before - 1) + 1 : runs_to;
    /* the blocks that have a run, then a binary search in each */
    sqlite3_stmt *st = NULL;
    sqlite3_blob *h = NULL;
    int s = sqlite3_prepare_v2(d->rdb,
                               "SELECT blk FROM corr_runs WHERE blk >= ?1 AND blk < ?2 "
                               "ORDER BY blk",
                               -1, &st, NULL);
    if (s == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, clamp64(lo));
        sqlite3_bind_int64(st, 2, clamp64(hi));
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
            sqlite3_int64 blk = sqlite3_column_int64(st, 0);
            int b = h == NULL ? sqlite3_blob_open(d->rdb, "main", "corr_runs", "keys", blk, 0, &h)
                              : sqlite3_blob_reopen(h, blk);
            if (b != SQLITE_OK) {
                rc = fdn__evdb_map_rc(d->rdb, b, err, "read the correlation index");
                break;
            }
            rc = search_run(h, (uint64_t)blk, hash, after, before, &a);
            if (rc == FDN_EIO)
                rc = fdn__evdb_map_rc(d->rdb, sqlite3_errcode(d->rdb), err,
                                      "read the correlation index");
            else if (rc == FDN_ENOMEM)
                rc = fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
        }
        if (rc == 0 && s != SQLITE_DONE)
            rc = fdn__evdb_map_rc(d->rdb, s, err, "read the correlation index");
    } else {
        rc = fdn__evdb_map_rc(d->rdb, s, err, "read the correlation index");
    }
    sqlite3_blob_close(h);
    sqlite3_finalize(st);
    if (rc != 0) {
        fdn__free(a.v);
        return rc;
    }
    /* ascending and each id once, also when a damaged run is out of order or repeats a key */
    if (a.n > 1)
        qsort(a.v, a.n, sizeof(*a.v), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < a.n; i++)
        if (k == 0 || a.v[i] != a.v[k - 1])
            a.v[k++] = a.v[i];
    *ids = a.v;
    *n = k;
    return 0;
}
