/*
 * DESIGN: lookups in the SQLite event file's correlation index (the index as a whole:
 * event_sqlite_corr.c's DESIGN comment).
 *
 * Lookup (fdn__evdb_corr_ids, on the read connection in one read transaction): one seek per
 * complete run overlapping the id range (statements kept prepared), the ids whose key
 * matches in (after, before), sorted and each once; then the rows from the first block
 * without a run on (at most one block normally: the one being written) are scanned.
 *
 * A run is searched with one seek of corr_lsm's index: the last fence row whose first_key is at
 * or below the hash's last key, walked down while rows start at or above its first key
 * (normally one row, one page). A key's 25-bit offset in the run's window gives its id; a
 * hash match is a candidate only (the caller compares the decoded correlation id).
 *
 * Threads: the read connection and its two statements (d->rst, prepared on first use), under
 * rmu; corr_seeks and corr_fences count under it too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "storage/event_sqlite_corr_int.h"

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
    int rc = fdn__evdb_corr_runs_to(d->rdb, &runs_to, err);
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
