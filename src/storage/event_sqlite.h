/* The SQLite adapter of the event store's durable tier (private). One connection, used by
 * one thread at a time (the store's writer thread, or create/start before it runs). */
#ifndef FDN_STORAGE_EVENT_SQLITE_H
#define FDN_STORAGE_EVENT_SQLITE_H

#include <fdn/events.h>

typedef struct fdn__evdb fdn__evdb_t;

/* Open or create the file: WAL mode, synchronous=FULL (durable) or NORMAL (fast), the
 * schema created, meta count checked (the rows counted once when it is absent, as in a file
 * from before it, or fails its checks), the correlation index brought up to date
 * (event_sqlite_corr_open.c: a file from before 0.3.0 is indexed whole on its first open);
 * records are written with zstd payloads when compress is true. FDN_ECORRUPT when the file is not a
 * valid store (or its index's secret is damaged, or the rows counted do not fit between its
 * smallest and largest id), FDN_EIO otherwise. */
int fdn__evdb_open(fdn__evdb_t **out, const char *path, bool durable, bool compress,
                   fdn_error_t *err);

/* Decode every stored record in id order and pass it to cb (which takes ownership).
 * *next_id receives the id the store must assign next. A record that does not decode, or
 * any SQLite corruption, gives FDN_ECORRUPT. */
int fdn__evdb_load(fdn__evdb_t *db, int (*cb)(fdn_event_t *ev, void *user), void *user,
                   uint64_t *next_id, fdn_error_t *err);

/* One transaction: insert the events (their ids are final), then delete ids < delete_before
 * (0 = none), move meta count by the rows inserted less those deleted, and remember next_id
 * so ids are never reused (in meta, unless the newest row implies it: see event_sqlite.c).
 * FDN_EIO on failure (rolled back). */
int fdn__evdb_write(fdn__evdb_t *db, const fdn_event_t *const *evs, size_t n,
                    uint64_t delete_before, uint64_t next_id, fdn_error_t *err);

/* As fdn__evdb_write, of records encoded already (docs/event-format.md, with the flags the file
 * was opened with: compress or not), back to back: record i from recs + off[i] to recs +
 * off[i + 1] (off has n + 1 entries). The store's writer encodes them straight from its
 * memory tier. */
int fdn__evdb_write_recs(fdn__evdb_t *db, const uint8_t *recs, const size_t *off, size_t n,
                         uint64_t delete_before, uint64_t next_id, fdn_error_t *err);

/* As fdn__evdb_load, only the newest `keep` rows (0: all); *next_id still counts every row. */
int fdn__evdb_load_newest(fdn__evdb_t *db, uint64_t keep, int (*cb)(fdn_event_t *ev, void *user),
                          void *user, uint64_t *next_id, fdn_error_t *err);

/* Reads and prune, on a second connection (any thread; serialised): see event_backend.h. */
struct fdn__evb_query;
struct fdn__evb_stats;
int fdn__evdb_get(fdn__evdb_t *db, uint64_t id, fdn_event_t **out, fdn_error_t *err);
int fdn__evdb_query(fdn__evdb_t *db, const struct fdn__evb_query *q, fdn_event_list_t **out,
                    fdn_error_t *err);
int fdn__evdb_prune(fdn__evdb_t *db, uint64_t below, uint64_t *count, fdn_error_t *err);
int fdn__evdb_prune_where(fdn__evdb_t *db, uint64_t from, uint64_t below, uint64_t *count,
                          fdn_error_t *err);
/* Rows one prune transaction deletes at most (FDN__EVDB_PRUNE_CHUNK; tests may lower it). */
extern uint32_t fdn__evdb_prune_chunk;
/* busy_timeout of both connections, in ms (5000; tests lower it before opening). */
extern int fdn__evdb_busy_timeout_ms;
int fdn__evdb_stats(fdn__evdb_t *db, struct fdn__evb_stats *out, fdn_error_t *err);

/* Whether open counted the rows (meta count was missing: a file from before it; or failed its
 * checks: damaged, or an older library wrote to the file since), for tests. */
bool fdn__evdb_count_recomputed(fdn__evdb_t *db);
/* Rows the read connection has decoded since open (get, query, correlation): what a read
 * cost, for tests. */
uint64_t fdn__evdb_rows_read(fdn__evdb_t *db);
/* Since open: the runs correlation lookups searched and the fence rows they read (one page
 * each), for tests (storage/event_sqlite_corr_lookup.c). */
void fdn__evdb_corr_counts(fdn__evdb_t *db, uint64_t *seeks, uint64_t *fences);
/* The correlation index's state (any thread, no lock; see fdn_events_index_status): current
 * (every complete block has its run), the complete blocks without one (0 when current), the
 * failures since open (index work rolled back, failed rebuilds) and the last one's fdn code. */
void fdn__evdb_corr_status(fdn__evdb_t *db, bool *current, uint64_t *behind, uint64_t *failures,
                           int *last_error);
/* Tests only, right after creating a file: merge 2^shift (1 to 4) runs into one instead of
 * 16, so a test reaches the upper levels with few blocks (kept in the file: meta corr_fan).
 * 0, FDN_EINVAL or FDN_EIO. */
int fdn__evdb_corr_test_fanout(fdn__evdb_t *db, unsigned shift);
void fdn__evdb_close(fdn__evdb_t *db);

#endif
