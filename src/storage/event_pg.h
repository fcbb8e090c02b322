/* The event store's PostgreSQL client (storage layer, private): connect, create and migrate
 * the schema, append batches under gap-free global positions, read back by position, query
 * by type / correlation id / wall-time range / position, prune, and wait for the NOTIFY sent
 * by every committed batch. It keeps no policy: batching, retries, the circuit breaker and
 * subscriptions belong to the store's backend (see event_pg.c's DESIGN comment).
 *
 * Threads: a connection (fdn__pg_t) is used by one thread at a time; nothing is shared
 * between connections. */
#ifndef FDN_STORAGE_EVENT_PG_H
#define FDN_STORAGE_EVENT_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/events.h>

/* The newest schema version this library knows (the table <schema>.schema_version). */
#define FDN__PG_SCHEMA_VERSION 1
/* Longest schema name accepted ([a-z_][a-z0-9_]*, not beginning with pg_; SQL keywords such
 * as "user" are valid: the name is quoted in SQL). */
#define FDN__PG_SCHEMA_MAX 48
/* Most events one append may carry (FDN_ETOO_LARGE above). */
#define FDN__PG_BATCH_MAX 65536u
/* Most payload bytes one append may carry (FDN_ETOO_LARGE above). */
#define FDN__PG_BATCH_BYTES_MAX (64u << 20)

typedef struct fdn__pg fdn__pg_t;

/* An event's unique id: a UUID in its text form (the writer gives one to each event of a
 * batch before the first attempt, and keeps it for every retry). */
typedef struct fdn__pg_uuid {
    char s[FDN_UUID_STR_LEN + 1];
} fdn__pg_uuid_t;

/*
 * Connect to url (a libpq URI or key=value string; connect_ms bounds the connection, rounded
 * up to whole seconds, at least 2 as libpq requires), then create or migrate the schema under
 * an advisory lock, so that processes starting together migrate once.
 * schema: NULL = "fdn".
 * Returns 0; FDN_EINVAL (bad url or schema name, checked before anything is sent); FDN_EACCES
 * (authentication refused); FDN_ECONNREFUSED (no server answered); FDN_EINIT (the schema is newer
 * than this library knows, or its tables are not ours: the message says which); FDN_EIO;
 * FDN_ENOMEM.
 */
int fdn__pg_open(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                 fdn_error_t *err);
/* As fdn__pg_open without the migration: a connection to a schema known to be current (a
 * reconnection of a backend whose first connection migrated it). */
int fdn__pg_reopen(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                   fdn_error_t *err);
void fdn__pg_close(fdn__pg_t *c);

/* Bound every later wait of this connection on the server: commands sent after it fail when
 * no answer came by deadline_ns (CLOCK_MONOTONIC ns; 0 = no bound). A command that meets the
 * deadline leaves the connection broken (its state on the server is unknown): a command
 * before COMMIT then answers FDN_EUNAVAILABLE, a COMMIT FDN_EIO (outcome unknown). This is
 * what bounds a call when the server is stopped (SIGSTOP) or the network drops packets:
 * every command is sent without blocking and its socket polled until the deadline. */
void fdn__pg_set_deadline(fdn__pg_t *c, int64_t deadline_ns);

/* Whether the connection is usable (false after a lost connection: reopen). */
bool fdn__pg_connected(const fdn__pg_t *c);

/* Fresh random ids for n events. 0 or FDN_EIO (no entropy). */
int fdn__pg_uuid_gen(fdn__pg_uuid_t *ids, size_t n);

/*
 * Append n events in one transaction, at consecutive positions in commit order (one update
 * of the head row per batch serialises committers; see DESIGN). pos receives the n positions.
 * retry: this batch may already be committed (an earlier attempt lost its answer): events whose
 * id is already stored are not stored again and get their stored position; the others are
 * stored after the head as above.
 * Returns 0; FDN_ETOO_LARGE (an event over FDN_EVENT_DATA_MAX, or the batch over
 * FDN__PG_BATCH_MAX / FDN__PG_BATCH_BYTES_MAX; nothing sent); FDN_EEXIST (an id already
 * stored on a first attempt; rolled back); FDN_EUNAVAILABLE (failed before COMMIT was sent:
 * nothing committed); FDN_EIO (the connection failed after COMMIT was sent: the outcome is
 * unknown, retry with retry=true on a new connection); FDN_ECORRUPT (the head row is gone:
 * the log is what is wrong, every batch fails alike, nothing stored; not fdn__pg_refused);
 * FDN_EINVAL; FDN_ENOMEM.
 */
int fdn__pg_append(fdn__pg_t *c, const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids, size_t n,
                   bool retry, uint64_t *pos, fdn_error_t *err);

/* Whether the last fdn__pg_append on c failed because of its rows, so that the same rows are
 * refused again whatever happens (nothing committed): over the bounds (FDN_ETOO_LARGE), an id
 * that is not a UUID, or the server's refusal of the data: SQLSTATE class 22 (data exception:
 * text the server's encoding cannot hold, a value out of range; FDN_EINVAL) or class 23
 * (integrity) on the events table other than its position key: two events of the batch with
 * one id (23505 on event_id, FDN_EEXIST; a retry looks up the ids already stored first, so
 * its own earlier attempt never causes it). Not: a position key conflict (the head row behind
 * the events: every batch would fail, the log is what is wrong), privileges (FDN_EACCES: an
 * operator grants them), a lost connection, a timeout, a missing head row. */
bool fdn__pg_refused(const fdn__pg_t *c);

/* The event at this position (its id is the position). 0, FDN_ENOENT, FDN_EUNAVAILABLE,
 * FDN_EIO, FDN_ENOMEM, FDN_ECORRUPT (the row breaks the rules every event keeps, or a field
 * is too long: written by something else than this library). */
int fdn__pg_get(fdn__pg_t *c, uint64_t pos, fdn_event_t **out, fdn_error_t *err);

/* A query: filters combine with AND; results in position order (descending: newest first). */
typedef struct fdn__pg_query {
    const char *type;           /* NULL = any */
    const char *correlation_id; /* NULL = any */
    int64_t wall_start;         /* inclusive wall ns (INT64_MIN = unbounded) */
    int64_t wall_end;           /* inclusive wall ns (INT64_MAX = unbounded) */
    uint64_t after;             /* positions > after (0 = none) */
    uint64_t before;            /* positions < before (0 = none) */
    size_t limit;               /* > 0 */
    bool descending;
} fdn__pg_query_t;

#define FDN__PG_QUERY_INIT                                                                         \
    {                                                                                              \
        NULL, NULL, INT64_MIN, INT64_MAX, 0, 0, 100, false                                         \
    }

/* Run a query. A type or correlation id with a byte outside printable ASCII matches no event
 * (the rules keep both to it): an empty list, nothing sent. 0, FDN_EINVAL (limit 0),
 * FDN_EUNAVAILABLE, FDN_EIO, FDN_ENOMEM, FDN_ECORRUPT (a row found breaks the event rules: as
 * fdn__pg_get). */
int fdn__pg_query(fdn__pg_t *c, const fdn__pg_query_t *q, fdn_event_list_t **out, fdn_error_t *err);

/* PostgreSQL's plan for that query (EXPLAIN text, lines joined by '\n'; fdn__free it). */
int fdn__pg_explain(fdn__pg_t *c, const fdn__pg_query_t *q, char **out, fdn_error_t *err);

/* The newest committed position (0 when none). 0, FDN_EUNAVAILABLE, FDN_EIO. */
int fdn__pg_head(fdn__pg_t *c, uint64_t *out, fdn_error_t *err);

/* Delete the events below position `below`; *count receives how many (may be NULL). The head
 * is kept: positions are never reused. Deletes in transactions of at most fdn__pg_prune_chunk
 * positions, oldest first; at the connection's deadline it stops (FDN_EUNAVAILABLE) and
 * *count holds the rows of the transactions committed before it (a partial prune: the rest
 * is left to the next; a transaction whose answer the deadline cut may have committed too,
 * uncounted). 0, FDN_EUNAVAILABLE, FDN_EIO. */
int fdn__pg_prune_below(fdn__pg_t *c, uint64_t below, uint64_t *count, fdn_error_t *err);
#define FDN__PG_PRUNE_CHUNK 4096
/* The positions one prune transaction covers at most (FDN__PG_PRUNE_CHUNK; tests lower it). */
extern uint32_t fdn__pg_prune_chunk;

/* Events stored and their position range (0s when empty). 0, FDN_EUNAVAILABLE, FDN_EIO. */
int fdn__pg_stats(fdn__pg_t *c, uint64_t *count, uint64_t *oldest, uint64_t *newest,
                  fdn_error_t *err);

/* LISTEN for the batches committed to this schema (by any process). */
int fdn__pg_listen(fdn__pg_t *c, fdn_error_t *err);
/* Wait up to timeout_ms for a notification (after fdn__pg_listen). Returns 1 (at least one
 * arrived; *head receives the newest position announced), 0 (timeout), FDN_EUNAVAILABLE (the
 * connection failed). A notification is only a hint: readers page with fdn__pg_query. The
 * calling thread's cut descriptor (core/cancel.h), when set and readable (or a pipe hung up),
 * ends the wait at once with 0: its owner is stopping (the store's follower, at stop); one that
 * is not open or is in error is dropped for the rest of the wait, which goes on. */
int fdn__pg_wait(fdn__pg_t *c, int64_t timeout_ms, uint64_t *head);

/* Run one SQL command or script without results (tests, tools). 0, FDN_EUNAVAILABLE, FDN_EIO,
 * FDN_EINVAL, FDN_EEXIST. */
int fdn__pg_exec(fdn__pg_t *c, const char *sql, fdn_error_t *err);

/* Tests: the polls this connection made waiting on the server (a wait that spins shows). */
uint64_t fdn__pg_test_waits(const fdn__pg_t *c);

/* The schema name this connection uses. */
const char *fdn__pg_schema(const fdn__pg_t *c);

/* Test hook: make the next append's COMMIT fail after it was sent.
 * FDN__PG_FAIL_AFTER_COMMIT: the COMMIT's answer is read (committed), then the connection is
 * shut down and the append returns FDN_EIO as if the answer were lost.
 * FDN__PG_FAIL_AT_COMMIT: the connection is shut down right after COMMIT is sent, before its
 * answer (the server decides). */
typedef enum {
    FDN__PG_FAIL_NONE = 0,
    FDN__PG_FAIL_AFTER_COMMIT = 1,
    FDN__PG_FAIL_AT_COMMIT = 2,
} fdn__pg_fail_t;
void fdn__pg_test_fail_commit(fdn__pg_t *c, fdn__pg_fail_t mode);

#endif
