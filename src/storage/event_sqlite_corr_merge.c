/*
 * DESIGN: the runs of the SQLite event file's correlation index and their merges (the index as a
 * whole: event_sqlite_corr.c's DESIGN comment).
 *
 * Runs. When the writer finishes a block (or a rebuild indexes one), fdn__evdb_corr_write_run
 * writes its level-0 run: the keys sorted, FENCE to a fence row of corr_lsm, the run's directory
 * row in corr_run (state 1: complete) and meta runs_to moved. fdn__evdb_corr_del_run deletes a
 * run: its fence rows and its directory row.
 *
 * Merges run in the writer's transaction after the events of each write, bounded: about
 * MERGE_PER_EVENT (8) keys per event written and at least one fence row (a key is merged at
 * most 3 times, so merges keep up), the lowest level first, then retired rows deleted
 * (DROP_COST keys of the budget per row). A merge step resumes after the last key its output
 * holds, so a crash or a failed commit loses nothing; keys of ids below the file's first id
 * (pruned) are dropped as they are merged. At open, what is due is merged to the end.
 *
 * A merge reads each input a fence row at a time (reader_t) from the row holding the last key
 * its output holds, and emits only keys above it. When a merge completes, its inputs are
 * retired (state 2: not searched) and the output is complete (state 1), or deleted when every
 * key was pruned. The same merge picked twice with nothing consumed, or a retired run whose
 * rows a delete did not remove picked again, means the index's tables are damaged:
 * FDN_ECORRUPT (no_progress), and the caller rolls back. Merges at open
 * (fdn__evdb_corr_merge_all) commit every MERGE_AT_OPEN keys.
 *
 * Threads: the writer's connection and its statements (d->cst), on the writer thread or at
 * open.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "storage/event_sqlite_corr_int.h"

#define ROW_CAP 65536 /* keys read of one row at most (a damaged row may be longer) */

/* The merge work per commit: keys per event written, and at least one fence row. Each key is
 * merged at most MAX_LEVEL times, so this keeps up with the writer. */
#define MERGE_PER_EVENT 8
/* The budget a deleted fence row costs (deleting a row is cheaper than merging its keys). */
#define DROP_COST 64
/* Per transaction when merging at open. */
#define MERGE_AT_OPEN (1u << 20)

/* ---- runs: fence rows and directory rows ---- */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
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
int fdn__evdb_corr_del_run(fdn__evdb_t *d, unsigned level, uint64_t run, fdn_error_t *err)
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
int fdn__evdb_corr_write_run(fdn__evdb_t *d, uint64_t blk, uint64_t *keys, size_t n, uint64_t to,
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
    return q == SQLITE_DONE ? fdn__evdb_corr_del_run(d, level, p, err) : wrc(d, q, err);
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
            return no_progress(err); /* fdn__evdb_corr_del_run did not remove it: a damaged table */
        prev_level = level;
        prev_run = run;
        *budget = gone * DROP_COST >= *budget ? 0 : *budget - gone * DROP_COST;
        if (gone < rows && (rc = fdn__evdb_corr_del_run(d, level, run, err)) != 0)
            return rc; /* all its rows gone: the run too */
    }
    return 0;
}

/* Merge steps until `budget` keys are consumed or nothing is left to merge (*more false).
 * The lowest level first: a merge in progress there, else its first complete group. */
int fdn__evdb_corr_merge_step(fdn__evdb_t *d, size_t budget, bool *more, fdn_error_t *err)
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
            rc = fdn__evdb_corr_del_run(d, level, p, err);
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
    return fdn__evdb_corr_merge_step(d, budget, &more, err);
}

/* Every pending merge, in transactions of MERGE_AT_OPEN keys. Outside a transaction. */
int fdn__evdb_corr_merge_all(fdn__evdb_t *d, fdn_error_t *err)
{
    bool more = true;
    d->merge_idle = false;
    while (more) {
        int s = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (s != SQLITE_OK)
            return fdn__evdb_map_rc(d->db, s, err, "merge the correlation index");
        int rc = fdn__evdb_corr_merge_step(d, MERGE_AT_OPEN, &more, err);
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
