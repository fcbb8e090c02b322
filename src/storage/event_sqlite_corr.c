/*
 * DESIGN: the correlation index of the SQLite event file.
 *
 * Files: this one holds a write's index work (its keys gathered, ids below the block being
 * gathered, the prune of runs, the savepoint around them) and the index's status;
 * event_sqlite_corr_merge.c the runs (a block's level-0 run written as fence rows, a run deleted)
 * and the merges across levels; event_sqlite_corr_lookup.c the lookups (fdn__evdb_corr_ids);
 * event_sqlite_corr_open.c open, the rebuild from the rows (at open, and retried before a write
 * after a failed one) and close. What they share (the key's layout, the writer's statements,
 * small helpers) is in event_sqlite_corr_int.h. This comment describes the whole index; each
 * file's own says more of its part.
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
 * Merges run in the writer's transaction after the events of each write, a bounded step at a
 * time, and at open to the end (event_sqlite_corr_merge.c).
 * The hash is XXH3 under a 192-byte secret drawn once per file (meta ch_secret): a client
 * choosing correlation ids cannot make them collide in advance.
 *
 * Lookup (fdn__evdb_corr_ids, event_sqlite_corr_lookup.c): one seek per complete run
 * overlapping the id range, then the rows from the first block without a run on are scanned.
 *
 * Upgrades and crashes: at open every complete block from runs_to on is indexed from the rows,
 * which covers a file from before 0.3.0, rows a 0.2.x library appended and the keys of the last
 * block a crash lost from memory (event_sqlite_corr_open.c).
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
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "storage/event_sqlite_corr_int.h"

/* A key for an id below the block being gathered (module comment): the merges in progress
 * finished first (one of them may be reading the block's run), then the key merged into the
 * block's level-0 run, or a level-0 run of its own when the block was merged already. */
static int add_late(fdn__evdb_t *d, uint64_t blk, uint64_t key, fdn_error_t *err)
{
    bool more = false;
    int rc = fdn__evdb_corr_merge_step(d, SIZE_MAX, &more, err);
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
    rc = fdn__evdb_corr_del_run(d, 0, blk, err);
    if (rc == 0)
        rc = fdn__evdb_corr_write_run(d, blk, keys, k, d->run_blk, err); /* runs_to unchanged */
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
        int rc = fdn__evdb_corr_write_run(d, d->run_blk, d->run, d->run_n, blk, err);
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
