/**
 * @file events.h
 * @brief Events: immutable event records, their validation and codecs (binary and JSON),
 *        and the event store (indexed in memory, optionally durable on SQLite) with queries,
 *        retention, statistics and live subscriptions.
 *
 * Units: every time is int64 nanoseconds. `timestamp_ns` is monotonic (the store's clock),
 * `wall_ns` is nanoseconds since the Unix epoch (UTC). (The reference mixed ms, µs and ns.)
 *
 * An event (`fdn_event_t`) is immutable once built. The store copies events in and hands
 * out copies (single allocations), never pointers into its own state.
 *
 * Ids: the store assigns every stored event a fresh id (u64 > 0), strictly increasing in
 * store order, unique per store, and never reused after a restart of a durable store
 * (FDN_EVENTS_FAST: the ids of acknowledged events lost in a crash are assigned again).
 * A store that failed with FDN_EIO gave its events ids too: they keep them in memory and may
 * be in the file (a failed commit's outcome is unknown); an id the file holds is never given
 * again, one it does not hold when it is reopened after a crash (or a destroy without a
 * restart) is assigned again, as the failed event is not stored.
 * Time order equals id order inside a store's memory: an event whose timestamp is earlier than
 * the newest stored one is stored with the newest timestamp (documented clamp), so time-range
 * queries and pruning of memory are binary searches. A timestamp more than 1 s past the
 * store's clock is stored as the clock's now, so the clamp never raises later events past the
 * clock (before, one far-future timestamp stamped every later event with it). Wall times are
 * kept as given and need not be in id order (wall_ns, a wall clock that steps); events read
 * back from a durable file can carry timestamps rebuilt from their wall time
 * (fdn_events_prune_before).
 *
 * @since 0.1.0
 */
#ifndef FDN_EVENTS_H
#define FDN_EVENTS_H

#include "common.h"
#include "clock.h"
#include "error.h"
#include "telemetry.h"

FDN_BEGIN_DECLS

/* ------------------------------------------------------------------------------------------
 * Event records
 * ------------------------------------------------------------------------------------------ */

/** Opaque handle: an event (immutable once built), used through the fdn_event_* functions. */
typedef struct fdn_event fdn_event_t;
/** Opaque handle: a list of events (a query result); see fdn_event_list_count. */
typedef struct fdn_event_list fdn_event_list_t;

/** Content type of an event's data bytes. */
typedef enum fdn_event_ctype {
    FDN_EVENT_CT_JSON = 0,   /**< UTF-8 JSON text (default); checked at construction */
    FDN_EVENT_CT_TEXT = 1,   /**< UTF-8 text */
    FDN_EVENT_CT_BINARY = 2, /**< opaque bytes */
} fdn_event_ctype_t;

/** Longest event type name (bytes). Names match `[A-Za-z][A-Za-z0-9_.:-]*`. */
#define FDN_EVENT_TYPE_MAX 64
/** Longest node name (bytes). */
#define FDN_EVENT_NODE_MAX 255
/** Longest correlation id (bytes, printable ASCII). */
#define FDN_EVENT_CORR_MAX 128
/** Largest event data (bytes, uncompressed), as the reference. */
#define FDN_EVENT_DATA_MAX 1000000

/** Spec flag: give the event no correlation id (instead of a fresh UUIDv4). */
#define FDN_EVENT_NO_CORRELATION 0x1u
/** Spec flag: do not check that JSON data parses (the caller vouches for it). */
#define FDN_EVENT_TRUSTED_JSON 0x2u

/**
 * What to build an event from (versioned, transparent). Strings are copied.
 * Defaults (0/NULL): id 0 (the store assigns ids), timestamp = clock's monotonic now,
 * wall = clock's wall now, node = host name, pid = getpid(), tid = gettid(),
 * correlation id = fresh UUIDv4 (unless FDN_EVENT_NO_CORRELATION), parent 0 = none,
 * content type JSON.
 */
typedef struct fdn_event_spec {
    uint32_t version;               /**< FDN_EVENT_SPEC_INIT sets 1 */
    const char *type;               /**< required event type name */
    const void *data;               /**< payload bytes (may be NULL when data_len is 0) */
    size_t data_len;                /**< payload length (≤ FDN_EVENT_DATA_MAX) */
    fdn_event_ctype_t content_type; /**< FDN_EVENT_CT_JSON by default */
    uint64_t id;                    /**< optional id (0 = none); stores assign their own */
    int64_t timestamp_ns;           /**< monotonic ns; 0 = now (a store keeps it in id order
                                         and at most 1 s past its clock: see the file's top) */
    int64_t wall_ns;                /**< wall ns since epoch; 0 = now */
    const char *node;               /**< NULL = host name; "" = none */
    uint32_t pid;                   /**< 0 = getpid() */
    uint32_t tid;                   /**< 0 = calling thread id */
    const char *correlation_id;     /**< NULL = fresh UUIDv4 (see flags) */
    uint64_t parent_id;             /**< 0 = none */
    uint32_t flags;                 /**< FDN_EVENT_NO_CORRELATION, FDN_EVENT_TRUSTED_JSON */
    fdn_clock_t *clock;             /**< clock for defaults; NULL = system */
} fdn_event_spec_t;

/** Initialiser of fdn_event_spec_t with every default. */
#define FDN_EVENT_SPEC_INIT                                                                        \
    {                                                                                              \
        1, NULL, NULL, 0, FDN_EVENT_CT_JSON, 0, 0, 0, NULL, 0, 0, NULL, 0, 0, NULL                 \
    }

/**
 * Validate a spec as the reference's validator, first failure wins: required fields
 * → field types and name rules → data size. Nothing is allocated.
 * @param[in]  spec the spec
 * @param[out] err  optional detail (message as the reference's)
 * @return 0; FDN_EVALIDATION (type NULL: "Event type cannot be nil"); FDN_EEVENT_TYPE (type
 *         name breaks the name rules); FDN_ETYPE_MISMATCH (bad correlation id / node, JSON
 *         data that does not parse); FDN_ETOO_LARGE (data over
 *         FDN_EVENT_DATA_MAX, context size and max_size); FDN_EINVAL (NULL spec, data NULL
 *         with a length, unknown content type or spec version); FDN_ENOMEM (checking JSON data).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_validate(const fdn_event_spec_t *spec, fdn_error_t *err);

/**
 * The reference's event-type allow-list check (`validate_event_type`): one of the 23
 * built-in names (function_entry, ..., type_b).
 * @return 0, FDN_EEVENT_TYPE (not in the list), FDN_ETYPE_MISMATCH (NULL)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_type_allowed(const char *type, fdn_error_t *err);

/**
 * Build an immutable event (validated with fdn_event_validate).
 * @param[out] out the event; free with fdn_event_free
 * @return 0, FDN_ENOMEM, or a validation code as fdn_event_validate
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_new(fdn_event_t **out, const fdn_event_spec_t *spec, fdn_error_t *err);

/**
 * Build a child of `parent`: the spec's fields, with parent_id = parent's id and the
 * parent's correlation id (unless the spec names one).
 * @return as fdn_event_new; FDN_EINVAL when parent is NULL or has no id
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_new_child(fdn_event_t **out, const fdn_event_t *parent,
                                const fdn_event_spec_t *spec, fdn_error_t *err);

/** An independent copy of an event. @return 0, FDN_EINVAL, FDN_ENOMEM @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_event_copy(fdn_event_t **out, const fdn_event_t *ev);

/** Free an event from fdn_event_new/copy/get/decode (NULL accepted). @thread_safety owner
 * @since 0.1.0 */
FDN_API void fdn_event_free(fdn_event_t *ev);

/* Getters: never fail; a NULL event gives 0 / "". Strings are NUL-terminated and owned by
 * the event. */
/**
 * The event id (0 before the event is stored, unless the spec gave one).
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint64_t fdn_event_id(const fdn_event_t *ev);
/**
 * The event type name.
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_event_type(const fdn_event_t *ev);
/**
 * The monotonic timestamp, ns.
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_event_timestamp(const fdn_event_t *ev);
/**
 * The wall time, ns since the Unix epoch (UTC).
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_event_wall_time(const fdn_event_t *ev);
/**
 * The node name ("" if none).
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_event_node(const fdn_event_t *ev);
/**
 * The creating process id.
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint32_t fdn_event_pid(const fdn_event_t *ev);
/**
 * The creating thread id.
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint32_t fdn_event_tid(const fdn_event_t *ev);
/**
 * The correlation id ("" if none).
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_event_correlation_id(const fdn_event_t *ev);
/**
 * The parent event id (0 if none).
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint64_t fdn_event_parent_id(const fdn_event_t *ev);
/**
 * The content type of the data.
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API fdn_event_ctype_t fdn_event_content_type(const fdn_event_t *ev);
/**
 * The data bytes, followed by a NUL not counted in *len.
 * @param[out] len the data length (may be NULL)
 * @param[in] ev the event
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const void *fdn_event_data(const fdn_event_t *ev, size_t *len);
/**
 * True when both events have equal fields and data (NULL equals only NULL).
 * @param[in] a, b the events
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_event_equal(const fdn_event_t *a, const fdn_event_t *b);

/* ------------------------------------------------------------------------------------------
 * Codecs (docs/event-format.md)
 * ------------------------------------------------------------------------------------------ */

/** Encode flag: compress data with zstd when that makes it smaller (data ≥ 256 bytes). */
#define FDN_EVENT_ENC_ZSTD 0x1u

/**
 * Encode an event as a versioned binary record (little-endian, length-prefixed, CRC32C).
 * @param[out] out     the record; free with fdn_free
 * @param[out] out_len its length
 * @param[in]  flags   0 or FDN_EVENT_ENC_ZSTD
 * @return 0, FDN_EINVAL, FDN_ENOMEM, FDN_ESERIALIZE (compression failure)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_encode(const fdn_event_t *ev, unsigned flags, uint8_t **out, size_t *out_len);

/**
 * Decode one binary record that fills exactly `len` bytes, then validate the event.
 * @return 0; FDN_EDESERIALIZE (truncated, bad magic/version/lengths/flags, trailing
 *         bytes, bad compressed data); FDN_ECORRUPT (CRC32C mismatch); a validation code;
 *         FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_decode(fdn_event_t **out, const void *buf, size_t len, fdn_error_t *err);

/**
 * JSON form of an event (one object; see docs/event-format.md).
 * @param[out] out NUL-terminated text; free with fdn_free
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_to_json(const fdn_event_t *ev, char **out);

/**
 * Parse the JSON form.
 * @return 0; FDN_EDESERIALIZE (not JSON, not an object, missing/unknown keys, wrong
 *         types, bad base64); a validation code; FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_from_json(fdn_event_t **out, const char *json, size_t len, fdn_error_t *err);

/* ------------------------------------------------------------------------------------------
 * Event lists (query results)
 * ------------------------------------------------------------------------------------------ */

/** Number of events in a list (0 for NULL). @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_event_list_count(const fdn_event_list_t *l);
/** The i-th event, valid until the list is freed; NULL when out of range. @thread_safety any
 * @since 0.1.0 */
FDN_API const fdn_event_t *fdn_event_list_at(const fdn_event_list_t *l, size_t i);
/** Free a list (NULL accepted). @thread_safety owner  @since 0.1.0 */
FDN_API void fdn_event_list_free(fdn_event_list_t *l);

/**
 * Correlation chain helper (reference extract_correlation_chain): ids of the events of
 * `evs` whose correlation id equals cid, stable-sorted by timestamp ascending.
 * @param[out] out_ids array of at least n ids; @param[out] out_n how many were written
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_event_correlation_chain(const fdn_event_t *const *evs, size_t n, const char *cid,
                                        uint64_t *out_ids, size_t *out_n);

/* ------------------------------------------------------------------------------------------
 * The event store
 * ------------------------------------------------------------------------------------------ */

/** Opaque handle: an event store, used through the fdn_events_* functions. */
typedef struct fdn_events fdn_events_t;

/** Durability of a store with a durable_path. */
typedef enum fdn_events_mode {
    /** store calls return after their batch is committed with synchronous=FULL (fsynced);
     * except stores accepted into the `unavailable_buffer` while the store is stopped:
     * those are acknowledged from memory and committed only after the next start. */
    FDN_EVENTS_DURABLE = 0,
    /** store calls return after enqueue; up to `fast_queue_max` acknowledged events (several
     * group commits of at most 8192 events each) can be lost in a crash. Past that bound a
     * store waits for the writer. Once the writer has failed (until the store is restarted)
     * every store returns FDN_EIO, within the bound too: nothing would commit its events.
     * A store that waits for the writer (past the bound) returns FDN_ETIMEDOUT as a durable
     * one does when the file is busy (fdn_events_store). */
    FDN_EVENTS_FAST = 1,
} fdn_events_mode_t;

/** Where the durable tier lives (fdn_events_opts_t.backend, version >= 2). */
typedef enum fdn_events_backend_kind {
    /** memory + an optional SQLite file (durable_path): the default */
    FDN_EVENTS_BACKEND_SQLITE = 0,
    /** memory + PostgreSQL shared by many processes (docs/events-postgres.md): ids are the
     *  global positions PostgreSQL assigns (gap-free, in commit order); every store call
     *  returns after its batch committed (both modes); the memory tier caches the newest
     *  events of every process; reads it cannot answer go to PostgreSQL. Retention
     *  (max_events, max_age_ns) and fdn_events_prune_before apply to the memory tier only:
     *  the shared log is every process's, and is kept. While the store is stopped, stores
     *  fail with FDN_EUNAVAILABLE (no unavailable_buffer). */
    FDN_EVENTS_BACKEND_POSTGRES = 1,
} fdn_events_backend_kind_t;

/** PostgreSQL backend options (fdn_events_opts_t.postgres, version >= 2). */
typedef struct fdn_events_pg_opts {
    const char *url;            /**< libpq URI or key=value string (required) */
    const char *schema;         /**< schema of the store's tables; NULL = "fdn" */
    uint32_t pool_size;         /**< connections for reads (default 4; plus one writer and one
                                     listener) */
    uint32_t batch_max;         /**< most events per append transaction (default 1000) */
    int64_t flush_interval_ms;  /**< the writer waits this long for more events before a
                                     batch smaller than batch_max (default 0: group commit) */
    int64_t connect_timeout_ms; /**< per connection attempt (default 5000) */
    int64_t poll_interval_ms;   /**< other processes' events are read at least this often,
                                     NOTIFY or not (default 100) */
    /** options version >= 3: bound of one call on PostgreSQL (an append with its retries, a
     *  read, a page): past it the call fails (FDN_EUNAVAILABLE, or FDN_EIO when a COMMIT's
     *  outcome is unknown) and its connection is dropped (default 5000) */
    int64_t command_timeout_ms;
    /** options version >= 3: a local SQLite file; when set, batches that cannot reach
     *  PostgreSQL are fsynced there, acknowledged (ids 0: no position yet) and replayed in
     *  order when PostgreSQL answers again (docs/events-postgres.md, "The spool").
     *  NULL = no spool: such a store fails with FDN_EUNAVAILABLE */
    const char *spool_path;
    /** options version >= 3: most bytes the spool may hold (default 64 MiB); a batch that
     *  does not fit fails with FDN_EUNAVAILABLE */
    uint64_t spool_max_bytes;
    /** options version >= 4: bound of the store's stop (fdn_runtime_shutdown, a restart by
     *  the supervisor, fdn_events_destroy) while its writer still has requests to commit: past
     *  it the writer's call on PostgreSQL is cut (a hung server held it command_timeout_ms per
     *  batch, batch after batch) and every request not committed goes to the spool,
     *  acknowledged (ids 0) and replayed at the next start; the cut batch's outcome on
     *  PostgreSQL is unknown and its replay stores each event once (its UUIDs). Without a
     *  spool those requests fail (FDN_EIO for the cut batch: outcome unknown;
     *  FDN_EUNAVAILABLE for the others: nothing stored), counted in the telemetry event
     *  foundation.event_store.stop_deadline (docs/events-postgres.md, "Stopping"). Default
     *  (0) 5000; < 0: no bound (the stop waits for every commit, as before version 4) */
    int64_t stop_timeout_ms;
} fdn_events_pg_opts_t;

/** Initialiser of fdn_events_pg_opts_t with every default. */
#define FDN_EVENTS_PG_OPTS_INIT                                                                    \
    {                                                                                              \
        NULL, NULL, 4, 1000, 0, 5000, 100, 5000, NULL, 64u << 20, 5000                             \
    }

/** Options (versioned, transparent). */
typedef struct fdn_events_opts {
    uint32_t version;            /**< FDN_EVENTS_OPTS_VERSION (version 1 is still accepted) */
    fdn_clock_t *clock;          /**< NULL = system clock */
    const char *durable_path;    /**< SQLite file; NULL = memory only */
    fdn_events_mode_t mode;      /**< durable by default */
    uint32_t fast_queue_max;     /**< fast mode: most events not yet committed (default 65536) */
    uint32_t unavailable_buffer; /**< 0: stores fail with FDN_EUNAVAILABLE while stopped;
                                      N: up to N stores are buffered and replayed on start */
    uint64_t max_events;         /**< retention: 0 = unlimited */
    int64_t max_age_ns;          /**< retention: 0 = unlimited */
    int64_t prune_interval_ns;   /**< background prune period; 0 = no background pruning */
    uint32_t max_results;        /**< query limit cap (interface.max_results), default 1000 */
    uint32_t sub_max_backlog;    /**< events a subscriber may lag before it skips (default 65536) */
    /** NULL = off. Counters: foundation.event_store.events_stored (+n per store/batch),
     *  .events_pruned (+n), .writer_errors (+1 per failed commit), .subscriber_skipped (+n);
     *  family fdn_events_appended_by_type_total{type} (docs/telemetry.md). */
    fdn_telemetry_t *telemetry;
    /** Durable tier: compress payloads of 256 bytes or more with zstd when that makes them
     *  smaller (default true; the runtime sets it from storage.warm.compression). */
    bool compress;
    /** version >= 2: the durable tier's backend (default FDN_EVENTS_BACKEND_SQLITE). With
     *  FDN_EVENTS_BACKEND_POSTGRES, durable_path, compress and unavailable_buffer are unused,
     *  and a build without PostgreSQL answers FDN_ENOTSUP. */
    fdn_events_backend_kind_t backend;
    fdn_events_pg_opts_t postgres; /**< version >= 2: used by the PostgreSQL backend */
} fdn_events_opts_t;

/** Current version of fdn_events_opts_t, set by FDN_EVENTS_OPTS_INIT. 2: backend, postgres
 * (0.3.0). 3: postgres.command_timeout_ms, spool_path, spool_max_bytes. 4:
 * postgres.stop_timeout_ms. */
#define FDN_EVENTS_OPTS_VERSION 4

/** Initialiser of fdn_events_opts_t with every default. */
#define FDN_EVENTS_OPTS_INIT                                                                       \
    {                                                                                              \
        FDN_EVENTS_OPTS_VERSION, NULL, NULL, FDN_EVENTS_DURABLE, 65536, 0, 0, 0, 0, 1000, 65536,   \
            NULL, true, FDN_EVENTS_BACKEND_SQLITE, FDN_EVENTS_PG_OPTS_INIT                         \
    }

/**
 * Create a store (running at once; the runtime's supervisor may stop and start it); with
 * durable_path, open (or create) the SQLite file in WAL mode, reload
 * its events into memory (the next id is max id + 1) and start the writer thread.
 * Also starts the retention thread.
 * @return 0; FDN_EINVAL; FDN_ENOMEM; FDN_ECORRUPT (the file is not a valid store: message
 *         says why); FDN_EIO (cannot open or write the file)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_create(fdn_events_t **out, const fdn_events_opts_t *opts, fdn_error_t *err);

/** Stop threads, flush the durable queue, close and free (NULL accepted). Subscriptions
 * still open are freed too: do not use them afterwards. @thread_safety owner  @since 0.1.0 */
FDN_API void fdn_events_destroy(fdn_events_t *es);

/** The durable tier's engine, as fdn_events_backend_status reports it. */
typedef struct fdn_events_backend_status {
    fdn_events_backend_kind_t backend; /**< SQLite or PostgreSQL */
    bool up;                  /**< PostgreSQL: the last call on it succeeded (SQLite: true) */
    int breaker_state;        /**< fdn_breaker_state_t of the breaker set with
                                   fdn_events_set_breaker (0, closed, when none) */
    int64_t retry_after_ms;   /**< while the breaker is open: ms until it lets a call through
                                   (-1 otherwise) */
    uint64_t spooled_events;  /**< events in the spool, waiting for PostgreSQL */
    uint64_t spooled_bytes;   /**< bytes they take */
    uint64_t spool_max_bytes; /**< the spool's bound (0: no spool) */
    uint64_t replayed_events; /**< events replayed from the spool into PostgreSQL, each
                                   counted once, when its replay commits (a spool file that
                                   then fails to drop it retries the drop, not the replay) */
    uint64_t calls;           /**< calls made on the engine */
    uint64_t failures;        /**< of which failed (unreachable, timed out) */
    uint64_t rejected;        /**< calls refused by the open breaker without trying */
    uint64_t spool_replay_failures; /**< replays of the spool that failed (each retried after a
                                         backoff of 100 ms doubling to 1 s; those the open
                                         breaker refused, nothing tried, are not counted)
                                         (since 0.3.0) */
    int spool_replay_error; /**< the FDN_E* code of the last replay of the spool that was tried
                                 (the breaker refusing none), 0 when it succeeded or none was
                                 made; its message goes to the telemetry event
                                 foundation.event_store.spool_replay_failed. A batch no replay
                                 can ever take (it does not decode: FDN_ECORRUPT; PostgreSQL
                                 refuses its rows for good) is quarantined instead (below), so
                                 this stays set only while PostgreSQL fails, or when the
                                 quarantine is full: then that batch, and every store queued
                                 behind it, waits in the spool (since 0.3.0) */
    uint64_t spool_quarantined_batches; /**< batches in the spool file's quarantine table: taken
                                             out of the spool because no replay can ever take
                                             them, kept there, never deleted, for an operator
                                             (docs/events-postgres.md, "Quarantine"); counted at
                                             open (earlier runs' too), then as they are moved
                                             (since 0.3.0) */
    uint64_t spool_quarantined_events;  /**< events those batches hold (since 0.3.0) */
    uint64_t spool_quarantined_bytes;   /**< bytes of their records; not counted against
                                             spool_max_bytes, bounded by the same figure apart
                                             (since 0.3.0) */
    int spool_quarantine_error;         /**< the FDN_E* code that made the newest quarantined batch
                                             unreplayable (0: none); its message goes to the telemetry
                                             event foundation.event_store.spool_quarantined and into the
                                             table (since 0.3.0) */
    uint64_t stop_spooled_events;       /**< the store's last stop: events its writer had not
                                             committed when the stop's deadline cut it
                                             (fdn_events_pg_opts_t.stop_timeout_ms), put in the spool:
                                             acknowledged, replayed at the next start; 0 when the
                                             writer drained in time (since 0.3.0) */
    uint64_t stop_failed_events;        /**< the store's last stop: such events that failed to their
                                             callers instead (no spool, or no room in it): not stored,
                                             or for the batch the deadline cut, outcome unknown; also
                                             the telemetry event foundation.event_store.stop_deadline
                                             (since 0.3.0) */
} fdn_events_backend_status_t;

/**
 * The state of the store's durable engine (for /health and /metrics).
 * @return 0, FDN_EINVAL  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_events_backend_status(fdn_events_t *es, fdn_events_backend_status_t *out);

/**
 * Name the calling thread's cut descriptor: from when `fd` turns readable (an eventfd or pipe
 * written once and not read back), every call of any store on its PostgreSQL made on this
 * thread (get, query, correlation lookup, page) ends at once, also one waiting there now (on
 * the server's answer, on a connection being made, or for a free connection of the store's
 * pool, however long calls of other threads hold them: it does not wait for them to put one
 * back), and fails with FDN_EUNAVAILABLE; a connection it was using is closed (the store
 * opens another when next needed), one it was waiting for is left to the others. Such a call is
 * counted with outcome "cancelled" in fdn_events_backend_request_duration_seconds, not as a failure
 * of PostgreSQL (neither in fdn_events_backend_status_t.failures nor on the breaker). Calls made on
 * other threads (the store's own writer and follower: appends, its reads into memory) are not cut
 * by it: a store call that waits for the writer (fdn_events_store) waits as before (the store's
 * own stop cuts its follower at once and its writer at stop_timeout_ms). The admin server
 * sets its threads' descriptor, written at its shutdown deadline (fdn_admin_shutdown). -1: none.
 * The caller keeps `fd` open while it is set on any thread (a descriptor that is not open is
 * ignored; a pipe whose write end is closed counts as readable).
 * @return the thread's previous descriptor (-1: none)
 * @thread_safety any (the calling thread's own setting)  @since 0.3.0
 */
FDN_API int fdn_events_set_thread_cut_fd(int fd);

struct fdn_breaker;
/**
 * Put a circuit breaker around the store's calls on PostgreSQL (the runtime does it with the
 * breaker "events.postgres" of its set). While it is open, a store fails at once with
 * FDN_EUNAVAILABLE (or goes to the spool) and reads fail with FDN_EUNAVAILABLE; a failed or
 * timed-out call counts as a failure. NULL removes it. The breaker must outlive the store or
 * be removed first: a change returns once every call the old breaker admitted has reported
 * to it (at most one call's command_timeout_ms), so the old breaker may be freed at once.
 * Not from a breaker callback (on_transition) of the old breaker that runs inside such a call
 * (the call would wait for itself): on that call's thread it returns FDN_EBUSY and changes
 * nothing; from another thread that such a call waits for, it deadlocks. A store on SQLite
 * ignores it.
 * @return 0, FDN_EINVAL, FDN_EBUSY  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_events_set_breaker(fdn_events_t *es, struct fdn_breaker *b);

/**
 * Store a copy of `ev` under a fresh id (the event's own id is ignored).
 * @param[out] out_id the id (may be NULL). While stopped with a buffer, the id is assigned
 *             at once and the event is stored when the store starts again.
 * @return 0; FDN_EINVAL; FDN_ENOMEM; FDN_EUNAVAILABLE (stopped, no buffer space); FDN_EIO
 *         (a store with durable_path whose writer has failed, latched until the store is
 *         restarted, and whose event is not committed: the commit of the event failed, or its
 *         outcome is unknown, SQLite can report an error for a commit that reached the file;
 *         or an earlier commit failed, in either mode, within fast_queue_max too. The event
 *         stays in memory under its id; a restart of the store commits it, or finds it in the
 *         file and keeps it once. fdn_events_store_async answers alike); FDN_ETIMEDOUT (a
 *         store with durable_path waiting for its commit, whose commit found the file's write
 *         lock held by another connection past busy_timeout, 5 s: not latched, the store stays
 *         healthy; the event is stored in memory under its id and the writer commits it once
 *         the lock is free, so it must not be stored again; fdn_events_store_async's
 *         callback waits for that commit; a stop meanwhile fails them with FDN_EUNAVAILABLE
 *         until the next start commits them); FDN_ENOSPC (a new type while max_types types are
 *         held: fdn_events_set_max_types)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_store(fdn_events_t *es, const fdn_event_t *ev, uint64_t *out_id);

/**
 * Store n events atomically (all or nothing) with consecutive ids, in input order.
 * @param[out] out_ids n ids (may be NULL)
 * @return as fdn_events_store; n == 0 is a no-op returning 0
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_store_batch(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                   uint64_t *out_ids);

/**
 * Completion of fdn_events_store_async.
 * @param rc       0: the batch is acknowledged (durable mode: committed and fsynced);
 *                 FDN_EIO or FDN_ENOMEM: the writer failed before the batch was committed
 *                 (the events stay in memory, as after fdn_events_store_batch's FDN_EIO, which
 *                 it answers in the same case); FDN_EUNAVAILABLE: the store stopped before the
 *                 commit could be made
 * @param first_id the id of the batch's first event (its ids are first_id .. first_id + n - 1)
 * @param n        the number of events of the batch
 * @param user     the caller's pointer
 */
typedef void (*fdn_events_stored_cb)(int rc, uint64_t first_id, size_t n, void *user);

/**
 * Store n events atomically (as fdn_events_store_batch: all or nothing, consecutive ids, in
 * input order) without waiting for their commit: `cb` runs once the batch is acknowledged, so
 * many callers share one group commit and none of their threads waits for the disk.
 *
 * Ids are assigned during the call (out_ids is filled before it returns, and before cb runs);
 * the events are copied in, and queries see them at once.
 *
 * When cb runs: durable mode (with a durable_path): on the store's writer thread, after the
 * transaction holding the batch is committed and fsynced, or with the writer's error; the
 * callbacks of one store run in id order. Fast mode, a store without durable_path, and a
 * stopped store that buffers (unavailable_buffer): on the calling thread, before this
 * returns, as the synchronous call would have returned at once (fast mode with more than
 * fast_queue_max events waiting: on the writer thread once the queue has room). The callback
 * runs with no store lock held; it may call fdn_events_store_async again, but must not call
 * the synchronous store functions of a durable store (they would wait for the thread that
 * runs the callback). Stopping or destroying the store first commits what was stored and runs
 * every waiting callback (with FDN_EUNAVAILABLE only if the commit could not be made).
 *
 * A store on PostgreSQL (backend FDN_EVENTS_BACKEND_POSTGRES): the ids are the positions given
 * at commit. With out_ids NULL the call queues the batch (copied) for the store's writer and
 * returns at once; cb runs on the writer thread, in queue order, with no store lock held:
 * after the transaction holding the batch commits (rc 0, first_id its first position), after
 * the spool took it while PostgreSQL is away (rc 0, first_id 0: positions come at replay, as
 * the synchronous call's ids 0), or with the error (FDN_EUNAVAILABLE: PostgreSQL away without
 * room in a spool, or the store stopped; FDN_EIO: the COMMIT's outcome is unknown;
 * FDN_ETOO_LARGE...). Such a store's refusals come to cb, not as this call's return (which is
 * 0, FDN_EBUSY, FDN_EINVAL, FDN_ENOMEM, or FDN_EUNAVAILABLE once the store is stopped). Its
 * callback may call fdn_events_store_async again (queued, not awaited) and the synchronous
 * store functions (queued, their ids 0). With out_ids not NULL the call waits for the commit as
 * the synchronous one does, fills out_ids and runs cb on the calling thread before it returns
 * (and returns the store's error itself).
 *
 * Bounded: at most fast_queue_max events (option, default 65536) may wait for their commit
 * in asynchronous stores; past that the call fails with FDN_EBUSY and stores nothing (the
 * caller answers "busy" or retries later: the store never blocks here).
 *
 * @param[in]  es      the store
 * @param[in]  evs     n events (copied)
 * @param[in]  n       how many; n == 0 runs cb at once with (0, 0, 0)
 * @param[out] out_ids n ids (may be NULL)
 * @param[in]  cb      the completion, required
 * @param[in]  user    passed to cb
 * @return 0 (cb will run exactly once); FDN_EINVAL; FDN_ENOMEM; FDN_EBUSY (too many events
 *         wait for their commit); FDN_EUNAVAILABLE (stopped, no buffer space); FDN_EIO (the
 *         writer has failed and not been restarted, in either mode: the events stay in memory;
 *         fdn_events_store_batch answers the same then). On an error cb never runs.
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_events_store_async(fdn_events_t *es, const fdn_event_t *const *evs, size_t n,
                                   uint64_t *out_ids, fdn_events_stored_cb cb, void *user);

/**
 * Build n events from specs and store them as one batch (all or nothing, consecutive ids).
 * Every spec is validated first; the first bad one refuses the whole batch before anything is
 * stored, with its index in the message ("events[3]: ...") and in the context (index=3).
 * @param[out] out_ids n ids (may be NULL)
 * @return 0, the first bad spec's validation code, or as fdn_events_store_batch; n == 0 is a
 *         no-op returning 0
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_events_store_specs(fdn_events_t *es, const fdn_event_spec_t *specs, size_t n,
                                   uint64_t *out_ids, fdn_error_t *err);

/**
 * A copy of the event with this id.
 * @return 0, FDN_ENOENT (never stored, or pruned), FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE
 *         (the store is stopped; also when it stopped during the call and the id is one only
 *         its file holds: the file is closed then, and the answer is never FDN_ENOENT for it)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_get(fdn_events_t *es, uint64_t id, fdn_event_t **out);

/** Query (versioned, transparent). Filters combine with AND. */
typedef struct fdn_events_query {
    uint32_t version;           /**< FDN_EVENTS_QUERY_INIT sets 1 */
    const char *type;           /**< NULL = any */
    const char *correlation_id; /**< NULL = any (honoured, unlike the reference) */
    uint64_t parent_id;         /**< 0 = any */
    int64_t time_start;         /**< inclusive (INT64_MIN = unbounded) */
    int64_t time_end;           /**< inclusive (INT64_MAX = unbounded) */
    uint64_t after_id;          /**< cursor: only ids > after_id (0 = none) */
    uint64_t before_id;         /**< cursor: only ids < before_id (0 = none) */
    int64_t offset;             /**< skip this many matches first (≥ 0) */
    int64_t limit;              /**< > 0, clamped to max_results; ≤ 0 → FDN_EINVAL (the
                                     reference's "unlimited" is not offered) */
    bool descending;            /**< newest first (id order = time order) */
} fdn_events_query_t;

/** Initialiser of fdn_events_query_t with every default. */
#define FDN_EVENTS_QUERY_INIT                                                                      \
    {                                                                                              \
        1, NULL, NULL, 0, INT64_MIN, INT64_MAX, 0, 0, 0, 100, false                                \
    }

/**
 * Run a query. Cost is proportional to the results: a type or correlation query walks that
 * index only; time bounds and cursors are binary searches. A parent_id filter on its own
 * scans the id range (bounded by the other filters) until `limit` matches; an offset costs
 * the matches it skips. Descending queries return newest first. Time bounds apply to the
 * timestamps the results carry, also those of events read back from the durable file
 * (rebuilt from wall time for another boot's: docs/event-format.md).
 * @param[out] out the results, in id (= time) order, reversed when descending; free with
 *                 fdn_event_list_free
 * @return 0; FDN_EINVAL (bad limit/offset/time range/version); FDN_ENOMEM; FDN_EUNAVAILABLE
 *         (the store is stopped; also when it stopped during a query that reads its file, which
 *         is closed then: never a result without the file's part)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_query(fdn_events_t *es, const fdn_events_query_t *q, fdn_event_list_t **out);

/**
 * Run a query as fdn_events_query does (the same checks, the same result, timed the same),
 * but first compare its result with lists the caller kept from earlier queries: when one
 * holds equal events (fdn_event_equal, one for one, in the same order), say which and copy
 * nothing. For a caller that keeps what it made of recent results (an answer's text) and
 * would otherwise copy the result only to compare it: the matches are compared where the
 * store holds them.
 * @param[in]  prev  nprev lists (entries may be NULL: equal to nothing); NULL when nprev is 0
 * @param[out] out   the result, as fdn_events_query's, when it equals none of prev; else
 *                   untouched
 * @param[out] same  the index in prev of the first list equal to the result, or SIZE_MAX
 *                   (then *out is set)
 * @return 0; FDN_EINVAL (as fdn_events_query, or same NULL, or prev NULL with nprev > 0);
 *         FDN_ENOMEM; FDN_EUNAVAILABLE (as fdn_events_query)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_events_query_same(fdn_events_t *es, const fdn_events_query_t *q,
                                  const fdn_event_list_t *const *prev, size_t nprev,
                                  fdn_event_list_t **out, size_t *same);

/**
 * Run a query on the store's memory tier alone: no read of its file or of PostgreSQL, so no
 * wait for them. For a caller that must not wait for a backend call (the HTTP API's waiting
 * queries answer many followers on one thread). The same checks, limit, max_results cap and
 * timing as fdn_events_query.
 *
 * When the memory tier holds every id after q->after_id (on PostgreSQL: the cursor is at or
 * after the position before memory's oldest; with a file, memory has not evicted ids after
 * it; a store in memory only always), the result is fdn_events_query's as of the newest
 * event memory holds: the same events, order and limit, and on PostgreSQL the same
 * timestamps (rebuilt from the wall time, as a read of PostgreSQL does). What it can lack on
 * PostgreSQL is the events other processes committed that this store has not read yet (its
 * follower reads them on their notification, or after poll_interval_ms); an ascending query
 * then gets a prefix of fdn_events_query's result, and the caller resumes from its last id.
 * Otherwise it answers FDN_ENOENT and lists nothing: fdn_events_query reads the rest.
 * @param[out] out the result, as fdn_events_query's
 * @return 0; FDN_ENOENT (memory does not hold every id after q->after_id: the cursor is
 *         older than the memory tier); FDN_EINVAL (as fdn_events_query); FDN_ENOMEM;
 *         FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_events_query_memory(fdn_events_t *es, const fdn_events_query_t *q,
                                    fdn_event_list_t **out);

/**
 * Every event with this correlation id, in time order (no limit).
 * @return 0 (an unknown id gives an empty list), FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE
 *         (as fdn_events_query)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_get_by_correlation(fdn_events_t *es, const char *cid,
                                          fdn_event_list_t **out);

/**
 * Remove the events with timestamp < ts (strict) from the oldest on: from memory and, with a
 * durable_path, from the file, also the events memory no longer holds (evicted by its
 * max_events / max_age). Memory and the file each hold a contiguous range of ids (reads rely
 * on it), so the call removes a prefix of ids: every event from the oldest up to, not
 * including, the first whose timestamp is ts or later. An event's timestamp is the one reads
 * give it (one read back from the file that another boot or clock stamped gets it rebuilt
 * from its wall time: docs/event-format.md), and such timestamps are not in id order: an
 * event older than ts after a newer one in the file stays, with every later one, until the
 * newer one goes (a later call, or retention); the call still returns 0 and counts what it
 * removed. Memory's own timestamps are in id order (the append's clamp), so once the file
 * holds no newer event below memory's first id, memory loses every event older than ts.
 * Events stored while the call runs are not removed. The call first waits for the writer to commit
 * the events it removes that are not committed yet (a commit in flight may hold them; not from an
 * fdn_events_store_async callback, whose thread runs no commit), then deletes from the file in
 * transactions of at most 4 096 rows, then from memory. When it returns 0 the file no longer holds
 * them: a kill afterwards does not bring them back (fast mode: a power loss may, as it may lose the
 * last commits). A kill during the call leaves the transactions it committed done; call it again.
 * With a PostgreSQL backend, memory only (the shared log is every process's, and is kept).
 * @param[out] out_count how many events it removed from the store, each once: those memory
 *             held and those only the file held (may be NULL). A retention run at the same
 *             time may evict some of them from memory first: those are deleted from the file
 *             but not counted.
 * @return 0; FDN_EINVAL; FDN_EUNAVAILABLE (stopped, or it stopped during the call);
 *         FDN_EIO, FDN_ENOMEM (the writer has failed: the events it had not committed stay,
 *         in memory, until a restart commits them; the others are removed); FDN_ETIMEDOUT
 *         (the writer's commit found the file's write lock held by another connection past
 *         busy_timeout: as FDN_EIO, not latched); FDN_EBUSY, FDN_EIO (the call's own deletes
 *         failed, or found the lock held past busy_timeout: memory keeps its events, some of
 *         the file's older ones may be gone already). out_count is set in every case.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_prune_before(fdn_events_t *es, int64_t ts, uint64_t *out_count);

/** Store statistics (versioned, transparent; filled by fdn_events_stats). */
typedef struct fdn_events_stats {
    uint32_t version;              /**< set to 1 by the call */
    uint64_t count;                /**< events held now */
    uint64_t bytes;                /**< bytes of those events (records + data) */
    uint64_t bytes_allocated;      /**< memory the store holds (segments, indexes) */
    uint64_t oldest_id;            /**< id of the oldest event held; 0 when empty */
    uint64_t newest_id;            /**< id of the newest event held; 0 when empty */
    int64_t oldest_ts;             /**< timestamp of the oldest event; 0 when empty */
    int64_t newest_ts;             /**< timestamp of the newest event; 0 when empty */
    uint64_t next_id;              /**< id the next stored event gets */
    uint64_t events_stored;        /**< stored since create (batches count each event) */
    uint64_t events_pruned;        /**< pruned since create */
    uint64_t types;                /**< distinct types held (a type is released when its last
                                        event is pruned) */
    uint64_t durable_pending;      /**< events not yet committed to the file */
    uint64_t durable_committed_id; /**< highest id committed to the file */
    int64_t uptime_ns;             /**< time since create */
} fdn_events_stats_t;

/** @return 0, FDN_EINVAL @thread_safety any @since 0.1.0 */
FDN_API int fdn_events_stats(fdn_events_t *es, fdn_events_stats_t *out);

/** Per-type statistics. */
typedef struct fdn_events_type_stat {
    char type[FDN_EVENT_TYPE_MAX + 1]; /**< the event type */
    uint64_t count; /**< events of this type held now */
    uint64_t bytes; /**< their bytes */
} fdn_events_type_stat_t;

/**
 * Per-type statistics for up to cap types.
 * @param[out] out_n number of types that exist (may exceed cap: then only cap are written)
 * @return 0, FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_type_stats(fdn_events_t *es, fdn_events_type_stat_t *out, size_t cap,
                                  size_t *out_n);

/* Retention and limits: each setter takes effect at once and wakes the retention thread. */

/**
 * Keep at most this many events in the memory tier (storage.hot.max_events); 0 = unlimited.
 * With a durable tier the memory tier only evicts (events the writer committed): the file
 * keeps them until its own retention (fdn_events_set_durable_retention), and reads of an
 * evicted event go to it.
 * @param[in] es the store  @param[in] max_events the limit
 * @return 0, FDN_EINVAL (NULL store)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_set_max_events(fdn_events_t *es, uint64_t max_events);
/**
 * Evict events older than this from the memory tier (storage.hot.max_age_seconds × 1e9);
 * 0 = unlimited. As fdn_events_set_max_events, the durable tier keeps them. Age is by
 * timestamp, which is in id order, so the memory tier always holds a contiguous range of ids.
 * Reopening a file fills memory the same way: the newest max_events events, less the oldest
 * of them older than max_age by their timestamps (rebuilt from wall time for events of
 * another boot); an old event after a recent one is kept, with the recent one's timestamp.
 * @param[in] es the store  @param[in] max_age_ns the age in ns
 * @return 0, FDN_EINVAL (NULL store or negative)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_set_max_age(fdn_events_t *es, int64_t max_age_ns);
/**
 * Period of background retention (storage.hot.prune_interval × 1e6); 0 = none.
 * @param[in] es the store  @param[in] interval_ns the period in ns
 * @return 0, FDN_EINVAL (NULL store or negative)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_set_prune_interval(fdn_events_t *es, int64_t interval_ns);
/**
 * Cap on query limits (interface.max_results): larger limits are clamped to it.
 * @param[in] es the store  @param[in] max_results the cap, > 0
 * @return 0, FDN_EINVAL (NULL store or 0)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_set_max_results(fdn_events_t *es, uint32_t max_results);

/**
 * Apply max_events and max_age now (what the retention thread does each interval): the
 * memory tier's limits, then the durable tier's retention (fdn_events_set_durable_retention).
 * @param[out] out_count events removed from the memory tier (may be NULL)
 * @return 0, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_enforce_retention(fdn_events_t *es, uint64_t *out_count);

/**
 * The durable tier's own retention (storage.warm.retention.max_events and .max_age_seconds):
 * each retention run (prune_interval) deletes from the file (SQLite) or the shared log
 * (PostgreSQL; safe from every process at once) the events beyond the newest max_events and
 * the oldest events while they are older than max_age_ns (wall time); 0 = keep (the default
 * for both). Both delete the oldest ids only: wall times need not be in id order (a caller's
 * wall_ns, a wall clock that steps, several processes), so an event older than max_age after
 * a younger one stays until that one goes, and no event younger than max_age is deleted by
 * age. A run examines at most about a million ids by age; a longer old prefix goes over the
 * next runs. The memory tier then drops what the durable tier no longer holds.
 * @param[in] es the store  @param[in] max_events 0 = keep  @param[in] max_age_ns 0 = keep
 * @return 0, FDN_EINVAL (NULL store or negative age)
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_events_set_durable_retention(fdn_events_t *es, uint64_t max_events,
                                             int64_t max_age_ns);

/** The durable tier: its retention and what it holds (versioned; filled by
 * fdn_events_durable_status). */
typedef struct fdn_events_durable_status {
    uint32_t version;    /**< set to 1 by the call */
    bool enabled;        /**< the store has a durable tier (a file or PostgreSQL) */
    uint64_t max_events; /**< retention by count (0 = keep) */
    int64_t max_age_ns;  /**< retention by age (0 = keep) */
    uint64_t count;      /**< events held */
    uint64_t oldest_id;  /**< oldest id held (0 when empty) */
    uint64_t newest_id;  /**< newest id held (0 when empty) */
    uint64_t pruned;     /**< events its retention deleted since create (this process) */
} fdn_events_durable_status_t;

/** @return 0, FDN_EINVAL, FDN_EUNAVAILABLE (the file is closed: store stopped), FDN_EIO
 * @thread_safety any @since 0.2.0 */
FDN_API int fdn_events_durable_status(fdn_events_t *es, fdn_events_durable_status_t *out);

/** The durable file's correlation index (fdn_events_index_status; versioned: the caller sets
 * version, with FDN_EVENTS_INDEX_STATUS_INIT). The index of a SQLite event file covers ids in
 * blocks of 8192 (docs/event-format.md, "Correlation index"); when its work fails inside a
 * write (a damaged index, no room), the events still commit and the index falls behind until
 * a later write rebuilds it. Lookups stay right meanwhile (they scan what it lacks), only
 * slower. @since 0.3.0 */
typedef struct fdn_events_index_status {
    uint32_t version; /**< FDN_EVENTS_INDEX_STATUS_VERSION (set by the caller) */
    /** the store has a SQLite event file, whose index this is. false: a memory-only store or
     *  a PostgreSQL backend (its table's own indexes never lag); the other fields are 0 */
    bool has_index;
    /** every complete block of ids in the file is indexed (false: index work failed, a write
     *  failed (its keys are gathered again before the next), or the file opened with an index
     *  it could not bring up to date even by a rebuild; a later write rebuilds it) */
    bool current;
    /** complete blocks of ids not indexed yet (0 when current; may be 0 while not current:
     *  the ids written since the failure all lie in the block being written) */
    uint64_t behind_blocks;
    /** index failures since the store opened the file: writes whose index work was rolled
     *  back, rebuilds that failed (at open, and the retries after a write's failure) */
    uint64_t failures;
    int last_error; /**< the last failure's FDN_E* code (0: none yet) */
} fdn_events_index_status_t;

/** Current version of fdn_events_index_status_t (the caller sets it before asking). */
#define FDN_EVENTS_INDEX_STATUS_VERSION 1
/** Initialiser of fdn_events_index_status_t: the version set, every field 0. */
#define FDN_EVENTS_INDEX_STATUS_INIT                                                               \
    {                                                                                              \
        FDN_EVENTS_INDEX_STATUS_VERSION, false, false, 0, 0, 0                                     \
    }

/**
 * The state of the durable file's correlation index: whether it is current, how far behind,
 * and its failures since open. The writer thread publishes it where it changes (atomics,
 * relaxed: each field is current on its own, the fields together are not one snapshot), so
 * this call never waits for a write. Nor for a read or a prune of the file in progress (the
 * store holds its file under one lock for those and for close): meanwhile it answers what
 * the last call read (it waits only when no call has read it yet). A store without a SQLite
 * file (memory only, PostgreSQL) answers with has_index false.
 * @param[in] es the store
 * @param[in,out] st st->version set by the caller (FDN_EVENTS_INDEX_STATUS_INIT); the rest
 *                filled
 * @return 0, FDN_EINVAL (NULL store or st, or an unknown version), FDN_EUNAVAILABLE (the file
 *         is closed: the store stopped)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_events_index_status(fdn_events_t *es, fdn_events_index_status_t *st);

/** Default cap on the distinct event types held at once (storage.hot.max_types). */
#define FDN_EVENTS_MAX_TYPES_DEFAULT 10000

/**
 * Cap the distinct event types held at once (storage.hot.max_types; default
 * FDN_EVENTS_MAX_TYPES_DEFAULT; 0 = no cap). A type is held while one of its events is: its
 * state (name, index) is released when its last event is pruned. A store or batch that would
 * add a type while `max_types` are held is refused whole with FDN_ENOSPC (when retention is
 * due, the store first prunes and tries once more); events of held types are still accepted.
 * Events loaded from the durable file or replayed after a restart are never refused.
 * Lowering the cap below the types held refuses only new types.
 * @param[in] es the store  @param[in] max_types the cap
 * @return 0, FDN_EINVAL (NULL store)
 * @thread_safety any
 * @since 0.2.0
 */
FDN_API int fdn_events_set_max_types(fdn_events_t *es, uint64_t max_types);

/** The distinct types held and their cap (versioned, transparent; filled by
 * fdn_events_types_status). */
typedef struct fdn_events_types_status {
    uint32_t version;        /**< set to 1 by the call */
    uint64_t live;           /**< distinct types held now */
    uint64_t max_types;      /**< the cap (0 = none) */
    uint64_t refused_events; /**< events refused because they would add a type past the cap */
    uint64_t released;       /**< types released since create (their last event pruned) */
    uint64_t table_slots;    /**< slots of the type table: under a cap at most
                                  max(64, 8 × (max_types + 1)) */
} fdn_events_types_status_t;

/** @return 0, FDN_EINVAL @thread_safety any @since 0.2.0 */
FDN_API int fdn_events_types_status(fdn_events_t *es, fdn_events_types_status_t *out);

/* ------------------------------------------------------------------------------------------
 * Subscriptions
 * ------------------------------------------------------------------------------------------ */

/** Opaque handle: a events sub object, used through the fdn_events_sub_* functions. */
typedef struct fdn_events_sub fdn_events_sub_t;

/**
 * Subscription callback. Runs on the store's delivery thread, never under a store lock.
 * @param ev      the event (valid during the call only)
 * @param skipped events this subscriber missed since the last call (backlog overflow or
 *                pruning before delivery; see fdn_events_subscribe); 0 normally
 */
typedef void (*fdn_events_sub_cb)(const fdn_event_t *ev, uint64_t skipped, void *user);

/** Subscription filter and start position (versioned, transparent). */
typedef struct fdn_events_sub_opts {
    uint32_t version;           /**< FDN_EVENTS_SUB_OPTS_VERSION (version 1 is still accepted) */
    uint64_t after_id;          /**< deliver ids > after_id; UINT64_MAX = only new events */
    const char *type;           /**< NULL = any */
    const char *correlation_id; /**< NULL = any */
    /** version >= 2: true: after_id is a position (0 = from the first event) and every
     *  matching event after it is delivered once, in id order, never skipped for backlog:
     *  events the memory tier no longer holds are read from the durable backend
     *  (PostgreSQL: paged from the shared table, so a subscriber in any process sees every
     *  process's events). Only events deleted from the backend itself are skipped (and
     *  counted). false (default): the version 1 behaviour. */
    bool from_position;
    /** version >= 3: ntypes > 0: an event matches when its type is one of types[0..ntypes)
     *  (each a non-NULL string; type must then be NULL, at most 64 of them), delivered in id
     *  order as one subscription. ntypes 0: types is unused. @since 0.3.0 */
    const char *const *types;
    size_t ntypes; /**< version >= 3: the entries of types (0 = none) @since 0.3.0 */
} fdn_events_sub_opts_t;

/** Current version of fdn_events_sub_opts_t. 2: from_position (0.3.0). 3: types, ntypes
 * (0.3.0). */
#define FDN_EVENTS_SUB_OPTS_VERSION 3

/** Initialiser of fdn_events_sub_opts_t with every default. */
#define FDN_EVENTS_SUB_OPTS_INIT                                                                   \
    {                                                                                              \
        FDN_EVENTS_SUB_OPTS_VERSION, UINT64_MAX, NULL, NULL, false, NULL, 0                        \
    }

/**
 * Subscribe with a callback, delivered in id order on the store's delivery thread.
 * A subscriber with more than sub_max_backlog of its events waiting skips the oldest of them;
 * the skip is counted and passed to the next callback. Writers never wait for subscribers.
 *
 * Filters and skips. A subscription with a filter (type, types, correlation_id) costs
 * nothing for the events it does not match: the delivery thread (or the descriptor of an
 * fd subscription) is not woken for them and the subscriber does no work per such event.
 * Skip counts (the callback's skipped, fdn_events_sub_read's, fdn_events_sub_overflow,
 * the subscriber_skipped counter) count only events the subscriber would have received:
 * the backlog is counted in matching events, a backlog skip steps over the oldest matching
 * events only, and events of other types or correlation ids are never counted, also when
 * they are pruned before the subscriber reads past them. Events pruned before delivery are
 * counted from the subscriber's first waiting matching event on: once pruned their types and
 * correlation ids are gone, so with a filter that count may include unmatched events after
 * that first one. (Before 0.3.0 the backlog and every skip were counted in ids.)
 * @return 0, FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_subscribe(fdn_events_t *es, const fdn_events_sub_opts_t *opts,
                                 fdn_events_sub_cb cb, void *user, fdn_events_sub_t **out);

/**
 * Subscribe for polling: fdn_events_sub_fd() becomes readable when matching events may be
 * waiting (never for events the filter does not match); fdn_events_sub_read() returns them.
 * Backlog and skips as fdn_events_subscribe.
 * @return 0, FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE, FDN_EIO (eventfd failed)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_events_subscribe_fd(fdn_events_t *es, const fdn_events_sub_opts_t *opts,
                                    fdn_events_sub_t **out);

/** The readable descriptor of an fd subscription (-1 for callback ones). @thread_safety any
 * @since 0.1.0 */
FDN_API int fdn_events_sub_fd(const fdn_events_sub_t *sub);

/**
 * Next matching events of an fd subscription (at most max, ≥ 1), advancing its position
 * and clearing the descriptor's readiness when nothing more waits. Never blocks.
 * A from-position subscription behind the memory tier reads the durable backend; when it
 * cannot (a store on SQLite that is stopped, or stops during the read: its file is closed
 * then; PostgreSQL away), the read fails and the position stays where it was: nothing is
 * skipped, and a read once the store runs again goes on from it. On SQLite the descriptor
 * then turns readable again when the store starts (not while it is stopped).
 * @param[out] out the events (possibly empty); free with fdn_event_list_free
 * @param[out] skipped events missed since the last read (may be NULL)
 * @return 0, FDN_EINVAL, FDN_ENOMEM, FDN_EUNAVAILABLE (as above: the store is stopped, or its
 *         PostgreSQL away), FDN_EIO (the file could not be read)
 * @thread_safety serial (one reader per subscription)
 * @since 0.1.0
 */
FDN_API int fdn_events_sub_read(fdn_events_sub_t *sub, size_t max, fdn_event_list_t **out,
                                uint64_t *skipped);

/** Total events this subscriber skipped. @thread_safety any  @since 0.1.0 */
FDN_API uint64_t fdn_events_sub_overflow(const fdn_events_sub_t *sub);

/**
 * End a subscription. When it returns, its callback is not running and will not run again
 * (do not call it from the callback itself). NULL accepted.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_events_unsubscribe(fdn_events_sub_t *sub);

FDN_END_DECLS

#endif /* FDN_EVENTS_H */
