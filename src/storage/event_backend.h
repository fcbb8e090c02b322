/* The event store's durable tier, as a versioned table of functions (storage layer, private).
 *
 * The store (src/services/event_*.c) keeps its memory tier and calls its durable tier only
 * through this table, so the tier can live in a local SQLite file (event_sqlite.c, the first
 * implementation) or in PostgreSQL shared by many processes (event_pg_backend.c, the second).
 *
 * Two kinds of backend, told apart by `assigns_ids`:
 *  - write-behind (SQLite): the memory tier assigns ids and holds the newest stored events,
 *    up to its own limits (the newest of the file are reloaded at open through `load_newest`,
 *    or every row through `load`); the writer thread copies committed ranges out of memory and
 *    hands them to `append` with their final ids (`prune_below` is 0: an explicit prune,
 *    fdn_events_prune_before, runs `prune_where` itself). Reads of events the memory tier
 *    evicted (they are on disk: memory evicts only committed events) go to
 *    get/query/correlation; the durable tier's own retention runs `prune`. read_after/wait/head are
 * NULL.
 *  - shared (PostgreSQL): the backend assigns the ids (global positions, gap-free, in commit
 *    order); the memory tier is a cache of the newest positions, fed by the store's writer
 *    (its own batches) and follower (`wait` + `read_after`, other processes' batches); reads
 *    the cache cannot answer go to get/query/correlation.
 *
 * Threads: `append` is called by one thread at a time (the store's writer), `wait` by one
 * thread at a time (the store's follower); every other function may be called from any
 * thread at once (a shared backend keeps a pool of connections for them).
 * A NULL function is "not offered"; callers check. Version: FDN__EVB_VERSION, bumped when a
 * function is added (a backend built for an older table fills only the functions it knew).
 */
#ifndef FDN_STORAGE_EVENT_BACKEND_H
#define FDN_STORAGE_EVENT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/events.h>

#define FDN__EVB_VERSION 4

/* One append: a batch of events committed in one transaction. */
typedef struct fdn__evb_batch {
    const fdn_event_t *const *evs; /* the events, in order */
    size_t n;                      /* may be 0 (a prune only) */
    uint64_t prune_below;          /* write-behind: also delete ids below this (0 = none) */
    uint64_t next_id;              /* write-behind: the id the store assigns next */
    uint64_t *pos;                 /* shared: receives the n positions (ids) assigned */
    /* shared: the events' unique ids, n strings of FDN_UUID_STR_LEN chars and a NUL each,
     * drawn by the caller before the first attempt (NULL: the backend draws them) */
    const char (*uids)[FDN_UUID_STR_LEN + 1];
    bool replay;         /* shared: the batch may be stored already (an earlier attempt's outcome
                            was unknown): events whose id is stored keep their position */
    int64_t deadline_ns; /* shared: CLOCK_MONOTONIC bound of the whole append (0: the
                            backend's command timeout from now) */
    bool refused;        /* shared, set by append: it failed because the backend refuses these
                            rows and will refuse the same rows again whatever happens
                            (event_pg.h, fdn__pg_refused); nothing was committed */
    /* write-behind, instead of evs (then NULL): the n events as records (docs/event-format.md,
     * encoded with the flags the backend was opened with), back to back, record i from
     * recs + rec_off[i] to recs + rec_off[i + 1]. The store's writer encodes them straight
     * from its memory tier (no event copies); every write-behind backend takes them. */
    const uint8_t *recs;
    const size_t *rec_off;
} fdn__evb_batch_t;

/* What the durable tier holds. */
typedef struct fdn__evb_stats {
    uint64_t count;  /* events stored */
    uint64_t oldest; /* oldest id (0 when empty) */
    uint64_t newest; /* newest id (0 when empty) */
} fdn__evb_stats_t;

/* A query for the backend: the store's query with its time bounds already turned into wall
 * time (ns since the epoch: the only clock processes on several hosts share). */
typedef struct fdn__evb_query {
    const char *type;           /* NULL = any */
    const char *correlation_id; /* NULL = any */
    int64_t wall_start;         /* inclusive (INT64_MIN = unbounded) */
    int64_t wall_end;           /* inclusive (INT64_MAX = unbounded) */
    uint64_t after;             /* ids > after (0 = none) */
    uint64_t before;            /* ids < before (0 = none) */
    size_t limit;               /* > 0 */
    bool descending;
    uint64_t parent_id; /* 0 = any (version 2; write-behind backends only) */
} fdn__evb_query_t;

/* A backend's own index of correlation ids (SQLite: event_sqlite_corr.c), when it may lag. */
typedef struct fdn__evb_index {
    bool current;      /* every complete block of ids is indexed */
    uint64_t behind;   /* complete blocks not indexed yet (0 when current) */
    uint64_t failures; /* index work rolled back and failed rebuilds, since open */
    int last_error;    /* the last failure's fdn code (0: none) */
} fdn__evb_index_t;

typedef int (*fdn__evb_load_cb)(fdn_event_t *ev, void *user);

typedef struct fdn__evb_ops {
    uint32_t version; /* FDN__EVB_VERSION */
    const char *name; /* "sqlite", "postgres" (metrics, messages) */
    bool assigns_ids; /* see above */
    /* The most payload bytes (the events' data) one append takes: past it, FDN_ETOO_LARGE.
     * A store that combines several callers' requests into one append keeps each append
     * within it (a request over it alone still fails, alone). 0: no bound. */
    uint64_t batch_bytes_max;
    /* The most events one append takes: past it, FDN_ETOO_LARGE. 0: no bound. */
    uint32_t batch_events_max;

    /* Write-behind: pass every stored event to cb in id order (cb owns it); *next_id
     * receives the id the store assigns next. Shared: NULL. */
    int (*load)(void *b, fdn__evb_load_cb cb, void *user, uint64_t *next_id, fdn_error_t *err);
    /* Commit one batch. 0; FDN_EIO / FDN_EUNAVAILABLE (nothing committed that a retry would
     * duplicate: shared backends retry unknown outcomes themselves); FDN_ETOO_LARGE;
     * FDN_ENOMEM. */
    int (*append)(void *b, fdn__evb_batch_t *batch, fdn_error_t *err);
    /* The event with this id: 0, FDN_ENOENT, FDN_EUNAVAILABLE, FDN_EIO, FDN_ENOMEM. */
    int (*get)(void *b, uint64_t id, fdn_event_t **out, fdn_error_t *err);
    /* A query (id order, reversed when descending). */
    int (*query)(void *b, const fdn__evb_query_t *q, fdn_event_list_t **out, fdn_error_t *err);
    /* Every event with this correlation id, in id order. */
    int (*correlation)(void *b, const char *cid, fdn_event_list_t **out, fdn_error_t *err);
    /* Delete ids below `below`; *count (may be NULL) receives how many. The durable tier's
     * retention: idempotent, safe from several processes of a shared backend at once. */
    int (*prune)(void *b, uint64_t below, uint64_t *count, fdn_error_t *err);
    int (*stats)(void *b, fdn__evb_stats_t *out, fdn_error_t *err);
    /* Subscribe from a position: the next (at most max) events with ids > after, in id order
     * (an empty list when none). */
    int (*read_after)(void *b, uint64_t after, size_t max, fdn_event_list_t **out,
                      fdn_error_t *err);
    /* Wait up to timeout_ms for a hint that events were committed (by any process): 1 (hint;
     * *head receives the newest id announced, 0 if unknown), 0 (timeout), < 0 (the backend
     * is away: the caller polls). NULL: the caller polls. */
    int (*wait)(void *b, int64_t timeout_ms, uint64_t *head);
    /* The newest committed id (shared backends; NULL otherwise). */
    int (*head)(void *b, uint64_t *out, fdn_error_t *err);
    void (*close)(void *b);
    /* Version 2. Write-behind: as load, only the newest `keep` events (0: all), *next_id
     * still past every stored id. NULL: the caller uses load. */
    int (*load_newest)(void *b, uint64_t keep, fdn__evb_load_cb cb, void *user, uint64_t *next_id,
                       fdn_error_t *err);
    /* Version 3. The state of an index that can fall behind the rows, from any thread without
     * waiting on the writer. NULL: no such index. */
    void (*index)(void *b, fdn__evb_index_t *out);
    /* Version 4. Write-behind: delete the rows with ids in [from, below), in transactions of
     * a bounded number of rows; the store deletes only a prefix of the ids the backend holds
     * (no row below from stays). *count (may be NULL) receives how many. A failure after some
     * transactions committed leaves those deleted (*count says how many). NULL: not
     * offered. */
    int (*prune_where)(void *b, uint64_t from, uint64_t below, uint64_t *count, fdn_error_t *err);
} fdn__evb_ops_t;

/* An open backend: its table and its state. */
typedef struct fdn__evb {
    const fdn__evb_ops_t *ops;
    void *state;
} fdn__evb_t;

/* Whether a backend is open. */
static inline bool fdn__evb_open(const fdn__evb_t *b)
{
    return b->ops != NULL;
}

/* Close (and forget) a backend; a closed one is accepted. */
static inline void fdn__evb_close(fdn__evb_t *b)
{
    if (b->ops != NULL)
        b->ops->close(b->state);
    b->ops = NULL;
    b->state = NULL;
}

/* The SQLite backend (event_sqlite.c): open or create the file (see fdn__evdb_open). */
int fdn__evb_sqlite_open(fdn__evb_t *out, const char *path, bool durable, bool compress,
                         fdn_error_t *err);

/* The PostgreSQL backend (event_pg_backend.c; builds with FDN_HAVE_POSTGRES only): connect
 * the writer's connection (which creates or migrates the schema) and the listener's; read
 * connections (up to o->pool_size) are opened when first needed.
 * 0; the codes of fdn__pg_open (FDN_EINVAL, FDN_EACCES, FDN_ECONNREFUSED, FDN_EINIT,
 * FDN_EIO); FDN_ENOMEM. */
int fdn__evb_pg_open(fdn__evb_t *out, const fdn_events_pg_opts_t *o, fdn_error_t *err);

/* Tests: the PostgreSQL backend's pool: connections open (or being opened), idle, callers
 * waiting for one, and of those the ones waiting in poll (their thread has a cut descriptor;
 * polling may be NULL). */
void fdn__evb_pg_test_pool(const fdn__evb_t *be, size_t *open, size_t *idle, size_t *waiting,
                           size_t *polling);

struct fdn__pg; /* storage/event_pg.h */

/* Tests: a checkout of the PostgreSQL backend's pool as a pooled call makes one (on the
 * calling thread: its cut descriptor applies), waiting until deadline_ns (CLOCK_MONOTONIC; one
 * already passed: no wait), and the checkin that gives the connection back. */
int fdn__evb_pg_test_get(const fdn__evb_t *be, struct fdn__pg **out, int64_t deadline_ns,
                         fdn_error_t *err);
void fdn__evb_pg_test_put(const fdn__evb_t *be, struct fdn__pg *c);

/* Tests: fn(arg) runs in a caller waiting for a pooled connection in poll (its thread has a
 * cut descriptor) each time its poll returns, before it takes the pool's lock again, so a test
 * can act between a waiter's wake-up and its next step (fn NULL: none). */
void fdn__evb_pg_test_on_wake(const fdn__evb_t *be, void (*fn)(void *arg), void *arg);

/* Tests: fn(arg) runs in a caller waiting for a pooled connection in poll each time before it
 * polls: after it found its deadline not yet passed, before it reads the clock again for
 * poll's timeout (and without the pool's lock), so a test can let the deadline pass between
 * the two (fn NULL: none). */
void fdn__evb_pg_test_on_poll(const fdn__evb_t *be, void (*fn)(void *arg), void *arg);

#endif
