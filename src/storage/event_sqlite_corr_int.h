/* What the correlation index's files share (storage layer, private to event_sqlite_corr*.c):
 * event_sqlite_corr.c (a write's index work and the status; its DESIGN comment describes the
 * whole index), event_sqlite_corr_merge.c (runs written and merged), event_sqlite_corr_lookup.c
 * (lookups) and event_sqlite_corr_open.c (open, rebuild, close): the key's layout, the writer's
 * statements, and the helpers more than one of them uses. */
#ifndef FDN_STORAGE_EVENT_SQLITE_CORR_INT_H
#define FDN_STORAGE_EVENT_SQLITE_CORR_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/event_sqlite_int.h"

/* A key: the hash's high 38 bits, then the id's 25-bit offset in its window of 2^25 ids
 * (4096 blocks: a run of any level lies in one window). 63 bits: a non-negative SQLite
 * integer, so first_key orders as the keys do. */
#define WIN_BITS  25
#define WIN_MASK  (((uint64_t)1 << WIN_BITS) - 1)
#define HASH_BITS 38
#define MAX_LEVEL 3   /* level 3: 16^3 blocks = one window */
#define FENCE     480 /* keys per fence row: 3840 bytes, one 4 KiB page */

/* The writer's statements of the index (d->cst; their SQL: wsql in event_sqlite_corr_open.c). */
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

/* ---- helpers of more than one file (small: inline) ---- */

/* *a = max(*a, v); the writer and a prune on the read connection may both raise ix_cut. */
static inline void max_store(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* A writer's transaction on the index ended: committed (runs_to is what it wrote) or rolled
 * back (runs_to is what it was); published either way. */
static inline void txn_end(fdn__evdb_t *d, bool committed)
{
    if (committed)
        d->ix_to = d->ix_pend;
    else
        d->ix_pend = d->ix_to;
    atomic_store_explicit(&d->ix_to_pub, d->ix_to, memory_order_relaxed);
}

/* Index work rolled back, or a rebuild that failed (rc: its fdn code). */
static inline void failed(fdn__evdb_t *d, int rc)
{
    atomic_fetch_add_explicit(&d->ix_fails, 1, memory_order_relaxed);
    atomic_store_explicit(&d->ix_last_error, rc < 0 ? rc : FDN_EIO, memory_order_relaxed);
}

static inline uint64_t hash_of(const fdn__evdb_t *d, const char *cid, size_t len)
{
    return fdn__hash_keyed(d->ch_secret, cid, len);
}

static inline uint64_t key_of(uint64_t hash, uint64_t id)
{
    return ((hash >> (64 - HASH_BITS)) << WIN_BITS) | ((id - 1) & WIN_MASK);
}

static inline uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline uint64_t blk_first(uint64_t blk)
{
    return (blk << FDN__EVDB_RUN_SHIFT) + 1;
}

static inline sqlite3_int64 clamp64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

/* The first block of run `run` of level `level`, and the id before its window's first. */
static inline uint64_t run_blk0(const fdn__evdb_t *d, unsigned level, uint64_t run)
{
    unsigned sh = level * d->fan_shift;
    return sh >= 64 || run > (UINT64_MAX >> sh) ? UINT64_MAX : run << sh;
}

static inline uint64_t run_base(const fdn__evdb_t *d, unsigned level, uint64_t run)
{
    uint64_t b = run_blk0(d, level, run);
    return b > (UINT64_MAX >> FDN__EVDB_RUN_SHIFT) ? UINT64_MAX
                                                   : (b << FDN__EVDB_RUN_SHIFT) & ~WIN_MASK;
}

/* ---- event_sqlite_corr_merge.c ---- */

/* Delete a run: its fence rows and its directory row. */
int fdn__evdb_corr_del_run(fdn__evdb_t *d, unsigned level, uint64_t run, fdn_error_t *err);
/* Write block blk's level-0 run from keys (n of them, any order; sorted here; nothing when n
 * is 0) and set runs_to = to. In the caller's transaction on the writer's connection. */
int fdn__evdb_corr_write_run(fdn__evdb_t *d, uint64_t blk, uint64_t *keys, size_t n, uint64_t to,
                             fdn_error_t *err);
/* Merge steps until `budget` keys are consumed or nothing is left to merge (*more false).
 * The lowest level first: a merge in progress there, else its first complete group. */
int fdn__evdb_corr_merge_step(fdn__evdb_t *d, size_t budget, bool *more, fdn_error_t *err);
/* Every pending merge, in transactions of MERGE_AT_OPEN keys. Outside a transaction. */
int fdn__evdb_corr_merge_all(fdn__evdb_t *d, fdn_error_t *err);

/* ---- event_sqlite_corr_open.c ---- */

/* meta runs_to of the file on db (0: absent). */
int fdn__evdb_corr_runs_to(sqlite3 *db, uint64_t *out, fdn_error_t *err);

#endif
