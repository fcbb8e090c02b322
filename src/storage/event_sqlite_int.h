/* What the SQLite event file's two parts share (private to src/storage/event_sqlite*.c):
 * event_sqlite.c (the file, its writer and its reads) and event_sqlite_corr*.c (the
 * correlation index: sorted runs of hashed correlation ids, merged level by level; its files
 * and what they share among themselves: event_sqlite_corr_int.h). */
#ifndef FDN_STORAGE_EVENT_SQLITE_INT_H
#define FDN_STORAGE_EVENT_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "core/hash.h"
#include "storage/event_sqlite.h"

/* Ids per block of the correlation index: block k holds ids k * FDN__EVDB_RUN_IDS + 1 to
 * (k + 1) * FDN__EVDB_RUN_IDS. */
#define FDN__EVDB_RUN_SHIFT 13
#define FDN__EVDB_RUN_IDS   (1u << FDN__EVDB_RUN_SHIFT)

/* A new file's page size in bytes (an existing file keeps its own), and the WAL's bounds in
 * bytes: a PASSIVE checkpoint once it holds the first, a TRUNCATE one past the second
 * (wal_hook in event_sqlite.c). */
#define FDN__EVDB_PAGE_SIZE          8192
#define FDN__EVDB_WAL_PASSIVE_BYTES  ((int64_t)4096 * 1000)
#define FDN__EVDB_WAL_TRUNCATE_BYTES ((int64_t)4096 * 2000)

/* Rows (ids, for a range) one prune transaction deletes at most (fdn__evdb_prune_chunk): a
 * few milliseconds of the file's write lock. */
#define FDN__EVDB_PRUNE_CHUNK 4096u

/* Statements of the correlation index on the writer's connection. */
#define FDN__EVDB_CORR_STMTS 18

/* A row's correlation id, for the index (borrowed: valid during the write). */
typedef struct fdn__evdb_cref {
    uint64_t id;
    const char *corr;
    size_t corr_len; /* 0: none */
} fdn__evdb_cref_t;

struct fdn__evdb {
    sqlite3 *db;
    sqlite3_stmt *ins;
    sqlite3_stmt *del;
    sqlite3_stmt *meta_put;
    sqlite3_stmt *count_put; /* meta count (+= ?1), count_min_id, count_max_id after a write */
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    uint8_t *buf;
    size_t cap;
    unsigned enc_flags; /* FDN_EVENT_ENC_ZSTD or 0 */
    fdn__evdb_cref_t *cref; /* the rows of the write under way, for the index */
    size_t cref_cap;
    /* the correlation index (event_sqlite_corr*.c); the writer's connection and thread */
    unsigned char ch_secret[FDN__HASH_SECRET_SIZE]; /* the file's hash secret (meta) */
    uint64_t *run;      /* keys of block run_blk gathered so far (FDN__EVDB_RUN_IDS slots) */
    size_t run_n;       /* keys in run */
    uint64_t run_blk;   /* the block being gathered: every block below has its run */
    bool run_ok;        /* run and run_blk match the file (false: rebuilt before a write) */
    uint32_t retry_in;  /* writes to let pass before the next rebuild after a failed one */
    uint32_t retry_gap; /* the current gap (doubles up to RETRY_GAP_MAX) */
    unsigned fan_shift; /* log2 of the runs merged into one (4; tests: smaller) */
    bool merge_idle;    /* no merge to do while run_blk is merge_idle_blk */
    uint64_t merge_idle_blk;
    sqlite3_stmt *cst[FDN__EVDB_CORR_STMTS]; /* the writer's statements (event_sqlite_corr*.c) */
    uint64_t ix_to;   /* meta runs_to as last committed (published in ix_to_pub) */
    uint64_t ix_pend; /* meta runs_to in the writer's transaction (ix_to outside one) */
    /* The index's state for fdn__evdb_corr_status (any thread): written by the writer (or
     * open) where it changes, read without a lock; relaxed: each is a value of its own, and a
     * reader may see one a write newer than another (a status, not a snapshot). */
    atomic_bool ix_current;     /* run_ok, once what it describes is committed */
    _Atomic uint64_t ix_to_pub; /* ix_to */
    _Atomic uint64_t ix_last;   /* the block of the newest id committed (0: none) */
    _Atomic uint64_t ix_cut;    /* the block of the lowest id prunes left (ids below: gone) */
    _Atomic uint64_t ix_fails;  /* index work rolled back and failed rebuilds, since open */
    atomic_int ix_last_error;   /* the last one's fdn code (0: none) */
    /* writer first: the writer's transactions in progress or about to begin (writer_in, under
     * wpmu); a prune transaction on the read connection begins only when there is none
     * (waiting on wpcv), so a long prune never makes the writer wait busy_timeout for the
     * file's write lock: it waits for one prune chunk at most */
    pthread_mutex_t wpmu;
    pthread_cond_t wpcv;
    unsigned writer_in;
    /* the read connection (reads, prune), opened when first needed; under rmu */
    pthread_mutex_t rmu;
    char *path;
    bool durable;
    int page_size; /* the file's, in bytes (read at open; a new file gets FDN__EVDB_PAGE_SIZE) */
    bool count_recomputed; /* open found meta count missing or wrong and counted the rows */
    sqlite3 *rdb;
    uint64_t rows_read;   /* rows the read connection decoded (under rmu; tests) */
    sqlite3_stmt *rst[2]; /* the read connection's statements of the correlation index */
    uint64_t corr_seeks;  /* runs a lookup searched (under rmu; tests) */
    uint64_t corr_fences; /* fence rows those searches read (under rmu; tests) */
};

/* An error for a failed SQLite call: FDN_ECORRUPT for a damaged file, FDN_EIO otherwise,
 * the message naming `what` and SQLite's own words. */
int fdn__evdb_map_rc(sqlite3 *db, int rc, fdn_error_t *err, const char *what);

/* Step a statement once and reset it: SQLITE_OK for a row or the end, else the error. */
int fdn__evdb_step_reset(sqlite3_stmt *st);

/* The block holding an id (id >= 1). */
static inline uint64_t fdn__evdb_blk(uint64_t id)
{
    return (id - 1) >> FDN__EVDB_RUN_SHIFT;
}

/* ---- the correlation index: open, resync, retry and close in event_sqlite_corr_open.c,
 * merge in event_sqlite_corr_merge.c, ids in event_sqlite_corr_lookup.c, the rest in
 * event_sqlite_corr.c ---- */

/* At open, on the writer's connection, outside any transaction: the index's table and the
 * file's secret (created on the first open), then every complete block from meta runs_to
 * on indexed (transactions of a few blocks each) and the last block's keys gathered. */
int fdn__evdb_corr_open(fdn__evdb_t *d, fdn_error_t *err);

/* In the writer's transaction, after the rows: the keys of the rows (in id order), a step of the
 * merges and the prune of runs below delete_before (0: none), in a savepoint. A failure
 * there rolls the savepoint back and leaves the index behind (run_ok false: lookups scan
 * from the first block without a run, and a later write or open rebuilds it); 0, or the
 * SQLite code of a failed savepoint statement itself (the transaction is then unusable). */
int fdn__evdb_corr_write(fdn__evdb_t *d, const fdn__evdb_cref_t *rows, size_t n,
                         uint64_t delete_before);
/* Before a write while run_ok is false, outside a transaction: a rebuild, tried after a gap
 * of writes that doubles after each failure (a damaged index does not cost every commit a
 * rebuild); a failed rebuild leaves run_ok false. */
void fdn__evdb_corr_retry(fdn__evdb_t *d);
/* Before a write after a failed one (d->run_ok false), on the writer's connection outside a
 * transaction: what open does after the table exists. */
int fdn__evdb_corr_resync(fdn__evdb_t *d, fdn_error_t *err);

/* In the writer's transaction, for each event written, in id order: its key gathered; when
 * the event starts a new block the finished block's run is written and runs_to moved. */
int fdn__evdb_corr_add(fdn__evdb_t *d, const fdn__evdb_cref_t *row, fdn_error_t *err);

/* In the writer's transaction, after the events of a write (n of them): a bounded step of
 * the pending merges of runs (about 8 keys per event written, at least one fence row). */
int fdn__evdb_corr_merge(fdn__evdb_t *d, size_t n, fdn_error_t *err);

/* The writer (or open), after its transaction committed (committed true) or rolled back:
 * meta runs_to as the file now has it, and the index's state published for
 * fdn__evdb_index_status (run_ok; the block of the newest id committed, last_id 0: unchanged;
 * the cut of a prune committed, 0: none). */
void fdn__evdb_corr_publish(fdn__evdb_t *d, bool committed, uint64_t last_id, uint64_t cut);

/* After a prune committed (any thread): ids below cut are gone, so their blocks are not
 * behind (cut 0: none). */
void fdn__evdb_corr_cut(fdn__evdb_t *d, uint64_t cut);

/* Before the connections close: the index's statements finalized. */
void fdn__evdb_corr_close(fdn__evdb_t *d);

/* In a transaction on db: the runs wholly below `below` deleted (a prune). */
int fdn__evdb_corr_prune(fdn__evdb_t *d, sqlite3 *db, uint64_t below, fdn_error_t *err);

/* On the read connection (under rmu, in a read transaction): the ids in (after, before)
 * (before 0: none) whose correlation id may be cid, ascending, from the runs (*ids, *n;
 * free with fdn__free), and *tail: the first id no run covers (ids from there on are read
 * by a scan). A hash match is a candidate only: the caller compares the decoded id. */
int fdn__evdb_corr_ids(fdn__evdb_t *d, const char *cid, uint64_t after, uint64_t before,
                       uint64_t **ids, size_t *n, uint64_t *tail, fdn_error_t *err);

#endif
