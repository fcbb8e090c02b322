/*
 * DESIGN: the correlation index of the SQLite event file.
 *
 * Why. The memory tier answers lookups for the newest events; what it evicted is read from the
 * file, and until 0.3.0 a lookup by correlation id decoded every row of it (1 to 2 s at 4 M
 * events, on every lookup once anything was evicted). A plain SQLite index on the correlation
 * id was measured first: correlation ids are random (UUIDs), so each event inserted lands on
 * its own index page, and a commit of n events rewrote about n pages of 4 KiB into the WAL.
 * The durable append fell from 0.82x to 0.55x of raw batched SQLite. This index writes keys
 * in order, a page at a time: once when their block is complete, then once per merge (at most
 * 4 times in all).
 *
 * What. Ids are cut into blocks of FDN__EVDB_RUN_IDS (8192). When the writer finishes a block
 * (it writes the first id of the next one), it writes the block's run of level 0: the
 * block's keys, sorted. Runs merge like an LSM tree: once the 16 runs of level L under one
 * run of level L + 1 are complete (every block of its range is below the block being
 * gathered), they are merged into it; level 3 is the last (16^3 blocks, 2^25 ids, one
 * "window"). A lookup then searches at most 15 runs per level (plus up to 16 waiting for a
 * merge under way) and about one run per 33.5 M ids beyond that, instead of one per block.
 *  - Key: 63 bits, the high 38 bits of the correlation id's hash, then the id's 25-bit
 *    offset in its window. A run of any level lies in one window, so a merge re-keys
 *    nothing: it is a k-way merge of sorted keys. 63 bits: a non-negative SQLite integer, so
 *    first_key orders as the keys do. A foreign key matches a lookup's 38 bits with
 *    probability 2^-38: about 0.0004 extra decodes per lookup at 100 M keys (a match is a
 *    candidate; the caller compares the decoded correlation id).
 *  - Rows: corr_lsm(level, run, first_key, keys BLOB) with an index on (level, run,
 *    first_key); a row holds at most FENCE (480) sorted keys, 3840 bytes: one 4 KiB page. Not a
 *    WITHOUT ROWID table: that stores rows in index B-tree pages, whose cells spill to
 *    overflow pages past about a quarter of a page and whose interior pages would carry
 *    whole rows. Searching a run is one seek of the index (the last row whose first_key <=
 *    the hash's last key, walked down while rows start at or above its first key: normally
 *    one row) and one page; no 64 KiB blob walked.
 *  - corr_run(level, run, state) WITHOUT ROWID lists the runs: state 1 complete (searched),
 *    0 the output of a merge under way (not searched: its inputs still are), 2 a merge's
 *    inputs, retired (not searched; their rows deleted a few per commit).
 *  - meta corr_fan (tests only, fdn__evdb_corr_test_fanout): runs merged 2^corr_fan at a
 *    time instead of 16, so a test reaches level 3 in 8 blocks; absent in real files.
 * meta runs_to: every block below it has its level-0 run (merged or not). The file grows by 8
 * bytes per event with a correlation id; the writer's cost per event is a hash and a store
 * into an array, a sort per block, and the merges.
 * Merges run in the writer's transaction after the events of each write, bounded: about
 * MERGE_PER_EVENT (8) keys per event written and at least one fence row (a key is merged at
 * most 3 times, so merges keep up), the lowest level first, then retired rows deleted
 * (DROP_COST keys of the budget per row). A merge step resumes after the last key its output
 * holds, so a crash or a failed commit loses nothing; keys of ids below the file's first id
 * (pruned) are dropped as they are merged. At open, what is due is merged to the end.
 * The hash is XXH3 under a 192-byte secret drawn once per file (meta ch_secret): a client
 * choosing correlation ids cannot make them collide in advance.
 *
 * Lookup (fdn__evdb_corr_ids, on the read connection in one read transaction): one seek per
 * complete run overlapping the id range (statements kept prepared), the ids whose key
 * matches in (after, before), sorted and each once; then the rows from the first block
 * without a run on (at most one block normally: the one being written) are scanned.
 *
 * Upgrades and crashes. At open (fdn__evdb_corr_open) every complete block from runs_to on is
 * indexed from the rows (decoded), a few blocks per transaction with runs_to moving with each,
 * so an interrupted open resumes; the last, incomplete block's keys are gathered into memory.
 * This covers a file written before 0.3.0 (runs_to absent: every row is indexed once, about
 * 1 us per event), rows a 0.2.x library appended to an indexed file (it writes no runs, so
 * runs_to is behind them), and the keys of the last block a crash lost from memory. A file
 * with the first, unreleased layout of this index (corr_runs: one blob per block) has that
 * table dropped and is indexed again from its rows. A row that does not decode gets no key
 * (it is reported damaged when read by id, time or type).
 * A failed commit leaves the gathered keys unknown: they are gathered again before the next
 * write.
 * The events never depend on the index. A write does its index work (keys, a merge step, the
 * prune of runs) after its rows, in a savepoint: when that work fails (a damaged index, no
 * room) the savepoint is rolled back, the rows commit, and the index is left behind (run_ok
 * false: lookups scan from runs_to on, which is still right). A rebuild from the rows is
 * retried before later writes, after a gap of writes that doubles with each failure (up to
 * RETRY_GAP_MAX), so a broken index does not cost every commit. At open, an index that cannot
 * be brought up to date is emptied and rebuilt from the rows, and when even that fails the
 * file opens with the index behind. Only a damaged secret refuses the open (FDN_ECORRUPT): a
 * new secret would make every stored key wrong without a way to tell. Ids written below the block
 * being gathered (the store never does: its writer commits ranges in id order) finish the merges
 * under way, then are merged into their block's level-0 run (a run of their own when the block was
 * merged already: searched, never merged). Prune: runs wholly below the cut are deleted; the run
 * the cut falls in keeps the keys of pruned ids (a lookup skips ids whose row is gone) until it is
 * merged (they are dropped) or the cut passes its end: at most one run, at most 2^25 ids of stale
 * keys. Damaged files: keys out of order or repeated in a row cost at most a lost candidate (never
 * a crash): merges emit only keys above the last one emitted, lookups sort and dedupe. A
 * directory row whose level or run is not an integer in range is never picked for a merge or
 * a delete (each step must remove what it picked, or it would pick it again) nor searched.
 * Status (fdn__evdb_corr_status, for fdn_events_index_status and /metrics): whether the index
 * is current (run_ok), the complete blocks it lacks and its failures since open (index work
 * rolled back, failed rebuilds) with the last one's code. The writer keeps runs_to as committed
 * (ix_to; ix_pend inside its transaction, set where runs_to is written and dropped on a
 * rollback) and publishes it, run_ok, the newest id's block and the prunes' cut as relaxed
 * atomics where they change (after each commit or rollback, a retry, open); a status read takes
 * no lock. Behind = the newest id's block less max(runs_to, the cut's block), 0 when current.
 * Threads: the writer's connection and state belong to the writer thread (or open); lookups
 * run on the read connection under rmu. The status atomics: written by the writer (ix_cut
 * also by a prune on the read connection, a compare-and-swap to the larger), read anywhere.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "storage/event_sqlite_int.h"

/* A key: the hash's high 38 bits, then the id's 25-bit offset in its window of 2^25 ids
 * (4096 blocks: a run of any level lies in one window). 63 bits: a non-negative SQLite
 * integer, so first_key orders as the keys do. */
#define WIN_BITS  25
#define WIN_MASK  (((uint64_t)1 << WIN_BITS) - 1)
#define HASH_BITS 38
#define MAX_LEVEL 3     /* level 3: 16^3 blocks = one window */
#define FENCE     480   /* keys per fence row: 3840 bytes, one 4 KiB page */
#define ROW_CAP   65536 /* keys read of one row at most (a damaged row may be longer) */

/* Complete blocks indexed per transaction when indexing at open. */
#define FILL_BLOCKS 16

/* The merge work per commit: keys per event written, and at least one fence row. Each key is
 * merged at most MAX_LEVEL times, so this keeps up with the writer. */
#define MERGE_PER_EVENT 8
/* The budget a deleted fence row costs (deleting a row is cheaper than merging its keys). */
#define DROP_COST 64
/* Per transaction when merging at open. */
#define MERGE_AT_OPEN (1u << 20)

enum {
    S_PUT,       /* a fence row */
    S_DIR,       /* a run's directory row */
    S_TO,        /* meta runs_to */
    S_BUSY,      /* the merge in progress into a level */
    S_PICK,      /* the first run of a level whose parent is complete and not started */
    S_LAST,      /* the last fence row of a run */
    S_KIDS,      /* the complete runs of a level in a range */
    S_SEEK,      /* the fence row holding a key */
    S_NEXT,      /* the fence row after one */
    S_DEL_LSM,   /* the fence rows of a run */
    S_DEL_DIR,   /* the directory row of a run */
    S_MIN,       /* the first id in the file */
    S_RETIRE,    /* a merge's inputs retired (state 2) */
    S_DROP,      /* a retired run */
    S_DROP_ROWS, /* some fence rows of a run */
    S_SP,        /* the savepoint of a write's index work */
    S_SP_UNDO,   /* its rollback */
    S_SP_END,    /* its release */
};

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

/* ---- the index's status (fdn__evdb_corr_status): the writer publishes, any thread reads ---- */

/* *a = max(*a, v); the writer and a prune on the read connection may both raise ix_cut. */
static void max_store(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* A writer's transaction on the index ended: committed (runs_to is what it wrote) or rolled
 * back (runs_to is what it was); published either way. */
static void txn_end(fdn__evdb_t *d, bool committed)
{
    if (committed)
        d->ix_to = d->ix_pend;
    else
        d->ix_pend = d->ix_to;
    atomic_store_explicit(&d->ix_to_pub, d->ix_to, memory_order_relaxed);
}

/* Index work rolled back, or a rebuild that failed (rc: its fdn code). */
static void failed(fdn__evdb_t *d, int rc)
{
    atomic_fetch_add_explicit(&d->ix_fails, 1, memory_order_relaxed);
    atomic_store_explicit(&d->ix_last_error, rc < 0 ? rc : FDN_EIO, memory_order_relaxed);
}

static uint64_t hash_of(const fdn__evdb_t *d, const char *cid, size_t len)
{
    return fdn__hash_keyed(d->ch_secret, cid, len);
}

static uint64_t key_of(uint64_t hash, uint64_t id)
{
    return ((hash >> (64 - HASH_BITS)) << WIN_BITS) | ((id - 1) & WIN_MASK);
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

/* The first block of run `run` of level `level`, and the id before its window's first. */
static uint64_t run_blk0(const fdn__evdb_t *d, unsigned level, uint64_t run)
{
    unsigned sh = level * d->fan_shift;
    return sh >= 64 || run > (UINT64_MAX >> sh) ? UINT64_MAX : run << sh;
}

static uint64_t run_base(const fdn__evdb_t *d, unsigned level, uint64_t run)
{
    uint64_t b = run_blk0(d, level, run);
    return b > (UINT64_MAX >> FDN__EVDB_RUN_SHIFT) ? UINT64_MAX
                                                   : (b << FDN__EVDB_RUN_SHIFT) & ~WIN_MASK;
}

static int wrc(fdn__evdb_t *d, int s, fdn_error_t *err)
{
    return s == SQLITE_OK ? 0 : fdn__evdb_map_rc(d->db, s, err, "write the correlation index");
}

/* meta runs_to = to. */
static int set_runs_to(fdn__evdb_t *d, uint64_t to, fdn_error_t *err)
{
    d->ix_pend = to;
    sqlite3_bind_int64(d->cst[S_TO], 1, clamp64(to));
    return wrc(d, fdn__evdb_step_reset(d->cst[S_TO]), err);
}

static int set_dir(fdn__evdb_t *d, unsigned level, uint64_t run, int state, fdn_error_t *err)
{
    sqlite3_stmt *st = d->cst[S_DIR];
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(run));
    sqlite3_bind_int(st, 3, state);
    return wrc(d, fdn__evdb_step_reset(st), err);
}

/* One fence row of run (level, run): keys[0..n), sorted, n <= FENCE. */
static int put_fence(fdn__evdb_t *d, unsigned level, uint64_t run, const uint64_t *keys, size_t n,
                     fdn_error_t *err)
{
    uint8_t blob[8 * FENCE];
    for (size_t i = 0; i < n; i++)
        put_le64(blob + 8 * i, keys[i]);
    sqlite3_stmt *st = d->cst[S_PUT];
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(run));
    sqlite3_bind_int64(st, 3, clamp64(keys[0]));
    sqlite3_bind_blob(st, 4, blob, (int)(n * 8), SQLITE_STATIC);
    int s = fdn__evdb_step_reset(st);
    sqlite3_clear_bindings(st);
    return wrc(d, s, err);
}

/* Delete a run: its fence rows and its directory row. */
static int del_run(fdn__evdb_t *d, unsigned level, uint64_t run, fdn_error_t *err)
{
    for (int k = S_DEL_LSM; k <= S_DEL_DIR; k++) {
        sqlite3_stmt *st = d->cst[k];
        sqlite3_bind_int(st, 1, (int)level);
        sqlite3_bind_int64(st, 2, clamp64(run));
        int s = fdn__evdb_step_reset(st);
        if (s != SQLITE_OK)
            return wrc(d, s, err);
    }
    return 0;
}

/* Sort a block's keys (FDN__EVDB_RUN_IDS of 63 bits, or any other count): an LSD radix sort,
 * 6 passes of 11 bits through a scratch array (a pass whose digit is the same in every key is
 * skipped). qsort with a comparison function cost 2.85 M instructions a block of 8192 keys,
 * ~350 an event written, 5 % of a durable append's (callgrind, events.append.durable's
 * rows); this ~1.0 M, ~125 an event. Without memory for the scratch array: qsort. */
#define RADIX_BITS 11
#define RADIX      (1u << RADIX_BITS)

static void sort_keys(uint64_t *keys, size_t n)
{
    uint64_t *tmp = n >= 64 ? fdn__malloc(n * sizeof(*keys)) : NULL;
    uint32_t *cnt = tmp != NULL ? fdn__malloc(RADIX * sizeof(*cnt)) : NULL;
    if (cnt == NULL) {
        fdn__free(tmp);
        qsort(keys, n, sizeof(*keys), cmp_u64);
        return;
    }
    uint64_t *src = keys, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += RADIX_BITS) {
        memset(cnt, 0, RADIX * sizeof(*cnt));
        for (size_t i = 0; i < n; i++)
            cnt[(src[i] >> shift) & (RADIX - 1)]++;
        if (cnt[(src[0] >> shift) & (RADIX - 1)] == n) /* one digit: this pass moves nothing */
            continue;
        uint32_t sum = 0;
        for (size_t b = 0; b < RADIX; b++) {
            uint32_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(src[i] >> shift) & (RADIX - 1)]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != keys)
        memcpy(keys, src, n * sizeof(*keys));
    fdn__free(cnt);
    fdn__free(tmp);
}

/* Write block blk's level-0 run from keys (n of them, any order; sorted here; nothing when n
 * is 0) and set runs_to = to. In the caller's transaction on the writer's connection. */
static int write_run(fdn__evdb_t *d, uint64_t blk, uint64_t *keys, size_t n, uint64_t to,
                     fdn_error_t *err)
{
    int rc = 0;
    if (n > 0) {
        sort_keys(keys, n);
        for (size_t i = 0; rc == 0 && i < n; i += FENCE)
            rc = put_fence(d, 0, blk, keys + i, n - i < FENCE ? n - i : FENCE, err);
        if (rc == 0)
            rc = set_dir(d, 0, blk, 1, err);
    }
    return rc != 0 ? rc : set_runs_to(d, to, err);
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

/* ---- merges ---- */

/* A merge's input: one run, read a fence row at a time. */
typedef struct reader {
    uint64_t run;
    sqlite3_int64 first; /* the row's first_key */
    uint64_t *k;
    size_t n, i, cap;
    bool end;
} reader_t;

/* The row st finds (bound, stepped here, reset) into r; none: r->end. */
static int load_row(fdn__evdb_t *d, sqlite3_stmt *st, reader_t *r, fdn_error_t *err)
{
    int s = sqlite3_step(st);
    r->n = r->i = 0;
    if (s == SQLITE_ROW) {
        r->first = sqlite3_column_int64(st, 0);
        const uint8_t *p = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1) / 8;
        if (n > ROW_CAP)
            n = ROW_CAP;
        if (n > r->cap) {
            uint64_t *nk = fdn__realloc(r->k, n * sizeof(*nk));
            if (nk == NULL) {
                sqlite3_reset(st);
                return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
            }
            r->k = nk;
            r->cap = n;
        }
        for (size_t i = 0; i < n && p != NULL; i++)
            r->k[i] = get_le64(p + 8 * i);
        r->n = p != NULL ? n : 0;
    } else {
        r->end = true;
    }
    sqlite3_reset(st);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : wrc(d, s, err);
}

static int next_row(fdn__evdb_t *d, unsigned level, reader_t *r, sqlite3_int64 after,
                    fdn_error_t *err)
{
    sqlite3_stmt *st = d->cst[S_NEXT];
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(r->run));
    sqlite3_bind_int64(st, 3, after);
    int rc = load_row(d, st, r, err);
    if (rc == 0 && !r->end && r->first <= after)
        r->end = true; /* a damaged first_key (not an integer): stop, or it could loop */
    return rc;
}

/* r's head moved past `last` (keys <= last skipped: already merged, or a damaged row out of
 * order), loading rows as needed. */
static int skip_to(fdn__evdb_t *d, unsigned level, reader_t *r, bool has_last, uint64_t last,
                   fdn_error_t *err)
{
    int rc = 0;
    while (rc == 0 && !r->end) {
        while (r->i < r->n && has_last && r->k[r->i] <= last)
            r->i++;
        if (r->i < r->n)
            return 0;
        rc = next_row(d, level, r, r->first, err);
    }
    return rc;
}

/* A step of the merge of the runs of level `level` - 1 under run p into run p of `level`:
 * keys after the last one already written, until *budget keys are consumed (at a fence row's
 * end) or the inputs end; then the inputs are deleted and the run is complete (*done). Keys of
 * ids below the file's first id (pruned) are dropped. */
static int merge_chunk(fdn__evdb_t *d, unsigned level, uint64_t p, size_t *budget, bool *done,
                       fdn_error_t *err)
{
    unsigned below = level - 1, s = d->fan_shift;
    reader_t r[16];
    size_t nr = 0;
    memset(r, 0, sizeof(r));
    uint64_t last = 0, live = 0, out[FENCE];
    bool has_last = false;
    sqlite3_stmt *st = d->cst[S_LAST];
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(p));
    int q = sqlite3_step(st);
    if (q == SQLITE_ROW && sqlite3_column_bytes(st, 0) >= 8) {
        const uint8_t *b = sqlite3_column_blob(st, 0);
        last = get_le64(b + 8 * ((size_t)sqlite3_column_bytes(st, 0) / 8 - 1));
        has_last = true;
    }
    sqlite3_reset(st);
    if (q != SQLITE_ROW && q != SQLITE_DONE)
        return wrc(d, q, err);
    st = d->cst[S_MIN];
    if ((q = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        live = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (q != SQLITE_ROW && q != SQLITE_DONE)
        return wrc(d, q, err);
    st = d->cst[S_KIDS];
    sqlite3_bind_int(st, 1, (int)below);
    sqlite3_bind_int64(st, 2, clamp64(p << s));
    sqlite3_bind_int64(st, 3, clamp64((p + 1) << s));
    while (nr < 16 && (q = sqlite3_step(st)) == SQLITE_ROW)
        r[nr++].run = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    int rc = q == SQLITE_ROW || q == SQLITE_DONE ? 0 : wrc(d, q, err);
    /* each input from the row holding the last key written */
    for (size_t j = 0; rc == 0 && j < nr; j++) {
        st = d->cst[S_SEEK];
        sqlite3_bind_int(st, 1, (int)below);
        sqlite3_bind_int64(st, 2, clamp64(r[j].run));
        sqlite3_bind_int64(st, 3, has_last ? (sqlite3_int64)last : -1);
        if ((rc = load_row(d, st, &r[j], err)) == 0 && r[j].end) {
            r[j].end = false;
            rc = next_row(d, below, &r[j], -1, err);
        }
    }
    uint64_t base = run_base(d, level, p);
    size_t nout = 0, used = 0;
    *done = false;
    while (rc == 0) {
        size_t best = nr;
        for (size_t j = 0; rc == 0 && j < nr; j++) {
            if (r[j].end || (rc = skip_to(d, below, &r[j], has_last, last, err)) != 0 || r[j].end)
                continue;
            if (best == nr || r[j].k[r[j].i] < r[best].k[r[best].i])
                best = j;
        }
        if (rc != 0)
            break;
        if (best == nr) {
            *done = true;
            break;
        }
        last = r[best].k[r[best].i++];
        has_last = true;
        used++;
        if (base + (last & WIN_MASK) + 1 >= live)
            out[nout++] = last;
        if (nout == FENCE) {
            rc = put_fence(d, level, p, out, nout, err);
            nout = 0;
            if (used >= *budget)
                break;
        }
    }
    for (size_t j = 0; j < nr; j++)
        fdn__free(r[j].k);
    *budget = used >= *budget ? 0 : *budget - used;
    if (rc != 0 || !*done)
        return rc;
    if (nout > 0 && (rc = put_fence(d, level, p, out, nout, err)) != 0)
        return rc;
    /* the inputs retired: no longer searched, their rows deleted by later steps */
    st = d->cst[S_RETIRE];
    sqlite3_bind_int(st, 1, (int)below);
    sqlite3_bind_int64(st, 2, clamp64(p << s));
    sqlite3_bind_int64(st, 3, clamp64((p + 1) << s));
    if ((rc = wrc(d, fdn__evdb_step_reset(st), err)) != 0)
        return rc;
    /* complete; or gone when every key was pruned */
    st = d->cst[S_LAST];
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(p));
    q = sqlite3_step(st);
    sqlite3_reset(st);
    if (q == SQLITE_ROW)
        return set_dir(d, level, p, 1, err);
    return q == SQLITE_DONE ? del_run(d, level, p, err) : wrc(d, q, err);
}

/* A merge or a delete that does not move: the index's tables are damaged (their B-tree finds
 * rows a delete or a replace does not). The caller's transaction is rolled back, and the index
 * rebuilt from the rows (module comment). */
static int no_progress(fdn_error_t *err)
{
    return fdn_err_set(err, FDN_ECORRUPT,
                       "event store file: the correlation index is damaged (a merge makes no "
                       "progress)");
}

/* Delete the fence rows of retired runs (a merge's inputs), DROP_COST keys of the budget per
 * row, until the budget is spent or none is left. */
static int drop_step(fdn__evdb_t *d, size_t *budget, fdn_error_t *err)
{
    unsigned prev_level = UINT_MAX;
    uint64_t prev_run = 0;
    while (*budget > 0) {
        sqlite3_stmt *st = d->cst[S_DROP];
        int q = sqlite3_step(st);
        unsigned level = 0;
        uint64_t run = 0;
        if (q == SQLITE_ROW) {
            level = (unsigned)sqlite3_column_int(st, 0);
            run = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        if (q == SQLITE_DONE)
            return 0;
        if (q != SQLITE_ROW)
            return wrc(d, q, err);
        size_t rows = *budget / DROP_COST + 1;
        st = d->cst[S_DROP_ROWS];
        sqlite3_bind_int(st, 1, (int)level);
        sqlite3_bind_int64(st, 2, clamp64(run));
        sqlite3_bind_int64(st, 3, rows > INT32_MAX ? INT32_MAX : (sqlite3_int64)rows);
        int rc = wrc(d, fdn__evdb_step_reset(st), err);
        if (rc != 0)
            return rc;
        size_t gone = (size_t)sqlite3_changes(d->db);
        if (gone == 0 && level == prev_level && run == prev_run)
            return no_progress(err); /* del_run did not remove it: a damaged table */
        prev_level = level;
        prev_run = run;
        *budget = gone * DROP_COST >= *budget ? 0 : *budget - gone * DROP_COST;
        if (gone < rows && (rc = del_run(d, level, run, err)) != 0)
            return rc; /* all its rows gone: the run too */
    }
    return 0;
}

/* Merge steps until `budget` keys are consumed or nothing is left to merge (*more false).
 * The lowest level first: a merge in progress there, else its first complete group. */
static int merge_step(fdn__evdb_t *d, size_t budget, bool *more, fdn_error_t *err)
{
    unsigned s = d->fan_shift, prev_level = UINT_MAX;
    uint64_t prev_p = 0;
    size_t prev_budget = 0;
    *more = false;
    if (d->merge_idle && d->merge_idle_blk == d->run_blk)
        return 0;
    while (budget > 0) {
        int rc = drop_step(d, &budget, err);
        if (rc != 0)
            return rc;
        if (budget == 0)
            break;
        bool found = false;
        uint64_t p = 0;
        unsigned level = 1;
        for (; level <= MAX_LEVEL && !found; level++) {
            sqlite3_stmt *st = d->cst[S_BUSY];
            sqlite3_bind_int(st, 1, (int)level);
            int q = sqlite3_step(st);
            if (q == SQLITE_ROW) {
                p = (uint64_t)sqlite3_column_int64(st, 0);
                found = true;
            }
            sqlite3_reset(st);
            if (q != SQLITE_ROW && q != SQLITE_DONE)
                return wrc(d, q, err);
            if (found)
                break;
            uint64_t lim = (level * s < 64 ? d->run_blk >> (level * s) : 0) << s;
            st = d->cst[S_PICK];
            sqlite3_bind_int(st, 1, (int)(level - 1));
            sqlite3_bind_int64(st, 2, clamp64(lim));
            sqlite3_bind_int(st, 3, (int)s);
            q = sqlite3_step(st);
            if (q == SQLITE_ROW) {
                p = (uint64_t)sqlite3_column_int64(st, 0) >> s;
                found = true;
            }
            sqlite3_reset(st);
            if (q != SQLITE_ROW && q != SQLITE_DONE)
                return wrc(d, q, err);
            if (found) {
                if ((rc = set_dir(d, level, p, 0, err)) != 0)
                    return rc;
                break;
            }
        }
        if (!found) {
            d->merge_idle = true;
            d->merge_idle_blk = d->run_blk;
            return 0;
        }
        bool done = false;
        /* a merge that completed (or was deleted) is never picked again; the same pick with
         * nothing consumed means the tables do not hold what was just written */
        if (level == prev_level && p == prev_p && budget == prev_budget)
            return no_progress(err);
        prev_level = level;
        prev_p = p;
        prev_budget = budget;
        if (p > ((uint64_t)INT64_MAX >> 8)) /* a damaged directory row */
            rc = del_run(d, level, p, err);
        else
            rc = merge_chunk(d, level, p, &budget, &done, err);
        if (rc != 0)
            return rc;
    }
    *more = true;
    return 0;
}

int fdn__evdb_corr_merge(fdn__evdb_t *d, size_t n, fdn_error_t *err)
{
    bool more = false;
    size_t budget = n > SIZE_MAX / MERGE_PER_EVENT - FENCE ? SIZE_MAX : n * MERGE_PER_EVENT + FENCE;
    return merge_step(d, budget, &more, err);
}

/* Every pending merge, in transactions of MERGE_AT_OPEN keys. Outside a transaction. */
static int merge_all(fdn__evdb_t *d, fdn_error_t *err)
{
    bool more = true;
    d->merge_idle = false;
    while (more) {
        int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "merge the correlation index");
        int rc = merge_step(d, MERGE_AT_OPEN, &more, err);
        if (rc == 0 && (s = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
            rc = fdn__evdb_map_rc(d->db, s, err, "merge the correlation index");
        txn_end(d, rc == 0);
        if (rc != 0) {
            (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            d->merge_idle = false;
            return rc;
        }
    }
    return 0;
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
        int rc = meta_runs_to(d->db, &from, err);
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
            rc = write_run(d, d->run_blk, d->run, d->run_n, upto, err);
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
            return merge_all(d, err);
        }
    }
}

int fdn__evdb_corr_resync(fdn__evdb_t *d, fdn_error_t *err)
{
    return catch_up(d, err);
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

/* A key for an id below the block being gathered (module comment): the merges in progress
 * finished first (one of them may be reading the block's run), then the key merged into the
 * block's level-0 run, or a level-0 run of its own when the block was merged already. */
static int add_late(fdn__evdb_t *d, uint64_t blk, uint64_t key, fdn_error_t *err)
{
    bool more = false;
    int rc = merge_step(d, SIZE_MAX, &more, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    int s = sqlite3_prepare_v2(d->db,
                               "SELECT keys FROM corr_lsm WHERE level = 0 AND run = ?1 AND "
                               "EXISTS (SELECT 1 FROM corr_run WHERE level = 0 AND run = ?1 "
                               "AND state = 1)",
                               -1, &st, NULL);
    if (s != SQLITE_OK)
        return fdn__evdb_map_rc(d->db, s, err, "read the correlation index");
    sqlite3_bind_int64(st, 1, clamp64(blk));
    size_t n = 0, cap = 64;
    uint64_t *keys = fdn__malloc(cap * sizeof(*keys));
    while (keys != NULL && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t k = (size_t)sqlite3_column_bytes(st, 0) / 8;
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            uint64_t *nk = fdn__realloc(keys, cap * sizeof(*nk));
            if (nk == NULL) {
                fdn__free(keys);
                keys = NULL;
                break;
            }
            keys = nk;
        }
        for (size_t i = 0; i < k && p != NULL; i++)
            keys[n++] = get_le64(p + 8 * i);
    }
    sqlite3_finalize(st);
    if (keys == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    if (s != SQLITE_DONE) {
        fdn__free(keys);
        return fdn__evdb_map_rc(d->db, s, err, "read the correlation index");
    }
    keys[n++] = key;
    qsort(keys, n, sizeof(*keys), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || keys[i] != keys[k - 1])
            keys[k++] = keys[i];
    rc = del_run(d, 0, blk, err);
    if (rc == 0)
        rc = write_run(d, blk, keys, k, d->run_blk, err); /* runs_to unchanged */
    fdn__free(keys);
    return rc;
}

int fdn__evdb_corr_add(fdn__evdb_t *d, const fdn__evdb_cref_t *ev, fdn_error_t *err)
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
    uint64_t b = fdn__evdb_blk(below);
    static const char *const sql[] = {"DELETE FROM corr_lsm WHERE level = ?1 AND run < ?2",
                                      "DELETE FROM corr_run WHERE level = ?1 AND run < ?2"};
    int s = SQLITE_OK;
    for (size_t k = 0; s == SQLITE_OK && k < 2; k++) {
        sqlite3_stmt *st = NULL;
        s = sqlite3_prepare_v2(db, sql[k], -1, &st, NULL);
        for (unsigned level = 0; s == SQLITE_OK && level <= MAX_LEVEL; level++) {
            sqlite3_bind_int(st, 1, (int)level);
            sqlite3_bind_int64(st, 2, clamp64(b >> (level * d->fan_shift)));
            s = fdn__evdb_step_reset(st);
        }
        sqlite3_finalize(st);
    }
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

/* The ids of run (level, run) whose key is in [lo, hi], within (after, before): the fence
 * row holding lo's place, seeked from hi down (normally one row). */
static int search_run(fdn__evdb_t *d, unsigned level, uint64_t run, uint64_t lo, uint64_t hi,
                      uint64_t after, uint64_t before, idvec_t *out)
{
    sqlite3_stmt *st = d->rst[1];
    uint64_t base = run_base(d, level, run);
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, clamp64(run));
    sqlite3_bind_int64(st, 3, clamp64(hi));
    d->corr_seeks++;
    int s, rc = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        d->corr_fences++;
        sqlite3_int64 first = sqlite3_column_int64(st, 0);
        const uint8_t *p = sqlite3_column_blob(st, 1);
        size_t n = p != NULL ? (size_t)sqlite3_column_bytes(st, 1) / 8 : 0, a = 0, b = n;
        while (a < b) { /* the first key >= lo */
            size_t mid = a + (b - a) / 2;
            if (get_le64(p + 8 * mid) < lo)
                a = mid + 1;
            else
                b = mid;
        }
        for (; a < n; a++) {
            uint64_t key = get_le64(p + 8 * a);
            if (key > hi)
                break;
            uint64_t id = base + (key & WIN_MASK) + 1;
            if (id > after && (before == 0 || id < before) && idvec_push(out, id) != 0)
                rc = FDN_ENOMEM;
        }
        if (first < 0 || (uint64_t)first < lo)
            break; /* rows before this one hold keys below lo */
    }
    sqlite3_reset(st);
    if (rc == 0 && s != SQLITE_ROW && s != SQLITE_DONE)
        rc = FDN_EIO;
    return rc;
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
    static const char *const rsql[] = {
        "SELECT level, run FROM corr_run WHERE state = 1 AND typeof(level) = 'integer' AND "
        "typeof(run) = 'integer'",
        "SELECT first_key, keys FROM corr_lsm WHERE level = ?1 AND run = ?2 AND first_key <= ?3 "
        "ORDER BY first_key DESC",
    };
    for (size_t i = 0; i < 2; i++) {
        int s = d->rst[i] != NULL ? SQLITE_OK
                                  : sqlite3_prepare_v3(d->rdb, rsql[i], -1,
                                                       SQLITE_PREPARE_PERSISTENT, &d->rst[i], NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->rdb, s, err, "read the correlation index");
    }
    /* blocks [lo, hi): those holding ids in (after, before) that have runs */
    uint64_t lo = fdn__evdb_blk(after + 1);
    uint64_t hi = before != 0 && before <= *tail ? fdn__evdb_blk(before - 1) + 1 : runs_to;
    uint64_t klo = key_of(hash, 1), khi = klo | WIN_MASK;
    /* each run overlapping them: one seek */
    sqlite3_stmt *st = d->rst[0];
    int s;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 level = sqlite3_column_int64(st, 0), run = sqlite3_column_int64(st, 1);
        if (level < 0 || level > MAX_LEVEL || run < 0)
            continue; /* a damaged directory row */
        uint64_t b0 = run_blk0(d, (unsigned)level, (uint64_t)run);
        uint64_t b1 = run_blk0(d, (unsigned)level, (uint64_t)run + 1);
        if (b1 <= lo || b0 >= hi)
            continue;
        rc = search_run(d, (unsigned)level, (uint64_t)run, klo, khi, after, before, &a);
        if (rc == FDN_EIO)
            rc = fdn__evdb_map_rc(d->rdb, sqlite3_errcode(d->rdb), err,
                                  "read the correlation index");
        else if (rc == FDN_ENOMEM)
            rc = fdn_err_set(err, FDN_ENOMEM, "event store file: out of memory");
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = fdn__evdb_map_rc(d->rdb, s, err, "read the correlation index");
    sqlite3_reset(st);
    if (rc != 0) {
        fdn__free(a.v);
        return rc;
    }
    /* ascending and each id once: runs searched in any order, a merge's output and inputs
     * both present, a damaged run out of order or repeating a key */
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

int fdn__evdb_corr_write(fdn__evdb_t *d, const fdn__evdb_cref_t *rows, size_t n,
                         uint64_t delete_before)
{
    int s = fdn__evdb_step_reset(d->cst[S_SP]);
    if (s != SQLITE_OK)
        return s;
    int rc = 0;
    for (size_t i = 0; d->run_ok && rc == 0 && i < n; i++)
        rc = fdn__evdb_corr_add(d, &rows[i], NULL);
    if (d->run_ok && rc == 0 && n > 0)
        rc = fdn__evdb_corr_merge(d, n, NULL);
    if (rc == 0 && delete_before > 0) /* runs below the cut go even while the index lags */
        rc = fdn__evdb_corr_prune(d, d->db, delete_before, NULL);
    if (rc != 0) {
        if ((s = fdn__evdb_step_reset(d->cst[S_SP_UNDO])) != SQLITE_OK)
            return s;
        d->ix_pend = d->ix_to; /* runs_to as before the savepoint */
        d->run_ok = false;     /* rebuilt from the rows before a later write (module comment) */
        d->retry_in = 0;
        failed(d, rc);
    }
    return fdn__evdb_step_reset(d->cst[S_SP_END]);
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

void fdn__evdb_corr_publish(fdn__evdb_t *d, bool committed, uint64_t last_id, uint64_t cut)
{
    txn_end(d, committed);
    if (last_id > 0)
        max_store(&d->ix_last, fdn__evdb_blk(last_id));
    fdn__evdb_corr_cut(d, cut);
    atomic_store_explicit(&d->ix_current, d->run_ok, memory_order_relaxed);
}

void fdn__evdb_corr_cut(fdn__evdb_t *d, uint64_t cut)
{
    if (cut > 0)
        max_store(&d->ix_cut, fdn__evdb_blk(cut));
}

void fdn__evdb_corr_status(fdn__evdb_t *d, bool *current, uint64_t *behind, uint64_t *failures,
                           int *last_error)
{
    *current = atomic_load_explicit(&d->ix_current, memory_order_relaxed);
    uint64_t to = atomic_load_explicit(&d->ix_to_pub, memory_order_relaxed);
    uint64_t cut = atomic_load_explicit(&d->ix_cut, memory_order_relaxed);
    uint64_t last = atomic_load_explicit(&d->ix_last, memory_order_relaxed);
    uint64_t from = FDN_MAX(to, cut);
    /* blocks from..last - 1 are complete (the newest id is in block last) and have no run */
    *behind = *current || last <= from ? 0 : last - from;
    *failures = atomic_load_explicit(&d->ix_fails, memory_order_relaxed);
    *last_error = atomic_load_explicit(&d->ix_last_error, memory_order_relaxed);
}
