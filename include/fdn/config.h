/**
 * @file config.h
 * @brief Validated, typed, live configuration (docs/config.md).
 *
 * The configuration is a tree of typed keys addressed by dotted paths
 * ("ai.planning.sampling_rate"). The built-in schema is the reference's default tree;
 * applications add their own keys through fdn_config_opts_t.keys before the service starts.
 * Sources are layered: built-in defaults < JSON file < environment (`FDN_A__B__C=value`)
 * < run-time updates. Reads take no lock: every read sees one immutable snapshot with a
 * revision number. Updates run four checks in order (path security, value security,
 * updatable, whole-tree validation), publish a new snapshot and notify subscribers
 * asynchronously. See docs/config.md.
 *
 * @since 0.1.0
 */
#ifndef FDN_CONFIG_H
#define FDN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** A configuration service. Opaque. */
typedef struct fdn_config fdn_config_t;
/** An immutable snapshot of the whole configuration (fdn_config_acquire). Opaque. */
typedef struct fdn_config_snapshot fdn_config_snapshot_t;
/** A resolved key: index of a leaf, valid for the lifetime of its fdn_config_t. */
typedef int32_t fdn_config_key_t;

/** Type of a key. */
typedef enum fdn_config_type {
    FDN_CONFIG_BOOL = 1,       /**< true/false */
    FDN_CONFIG_INT,            /**< 64-bit integer; floats rejected */
    FDN_CONFIG_NUMBER,         /**< integer or float */
    FDN_CONFIG_STRING,         /**< string */
    FDN_CONFIG_STRING_OR_NULL, /**< string or null */
    FDN_CONFIG_ENUM,           /**< string from enum_values */
    FDN_CONFIG_OBJECT,         /**< a JSON object taken as a whole */
    FDN_CONFIG_ANY,            /**< any JSON value (not validated) */
} fdn_config_type_t;

/** Validation rule of a key (applied after the type check). */
typedef enum fdn_config_rule {
    FDN_CONFIG_RULE_NONE = 0,     /**< type check only */
    FDN_CONFIG_RULE_POSITIVE,     /**< > 0 */
    FDN_CONFIG_RULE_NON_NEGATIVE, /**< >= 0 */
    FDN_CONFIG_RULE_RANGE,        /**< min <= x <= max (an integer compared exactly, never
                                       rounded to a double) */
    FDN_CONFIG_RULE_ENUM,         /**< one of enum_values */
    FDN_CONFIG_RULE_FALSE_ONLY,   /**< must be exactly false */
    FDN_CONFIG_RULE_RATE_RULES,   /**< object name -> {scale int > 0, limit int > 0} */
    FDN_CONFIG_RULE_BREAKERS,     /**< object name -> breaker options: an object that
                                       fdn_breaker_opts_parse accepts (since 0.2.0) */
} fdn_config_rule_t;

/** Definition of one key, for application sections (fdn_config_opts_t.keys). */
typedef struct fdn_config_key_def {
    const char *path;               /**< dotted path, e.g. "myapp.workers" */
    fdn_config_type_t type;         /**< type */
    const char *default_json;       /**< default as JSON text; NULL = null */
    fdn_config_rule_t rule;         /**< rule */
    double min;                     /**< lower bound for FDN_CONFIG_RULE_RANGE */
    double max;                     /**< upper bound for FDN_CONFIG_RULE_RANGE */
    const char *const *enum_values; /**< NULL-terminated list for ENUM type / rule */
    bool updatable;                 /**< may change at run time */
    const char *description;        /**< one line */
    int error_code;                 /**< FDN_E* code on failure; 0 = FDN_ECONFIG_STRUCTURE */
    const char *error_message;      /**< message on failure; NULL = "Invalid <path>" */
} fdn_config_key_def_t;

/** Kind of a change notification. */
typedef enum fdn_config_change_kind {
    FDN_CONFIG_CHANGE_UPDATED = 1, /**< one path changed */
    FDN_CONFIG_CHANGE_RESET,       /**< whole config replaced (path ""; new_json = whole tree) */
    FDN_CONFIG_CHANGE_OVERFLOW,    /**< `dropped` older notifications were dropped */
} fdn_config_change_kind_t;

/** A change, as delivered to subscribers. All pointers valid during the callback only. */
typedef struct fdn_config_change {
    fdn_config_change_kind_t kind; /**< kind */
    const char *path;              /**< dotted path ("" for reset/overflow) */
    const char *old_json;          /**< previous value as JSON ("null" for reset/overflow) */
    const char *new_json;          /**< new value as JSON */
    uint64_t revision;             /**< revision published by this change */
    uint64_t dropped;              /**< OVERFLOW: how many notifications were dropped */
    bool more; /**< another notification for this subscriber was already queued when this one
                    was delivered: a subscriber may gather work (e.g. one write) until a
                    notification arrives with more == false; a hint, never a promise that
                    none follows */
} fdn_config_change_t;

/** Change callback; runs on the service's delivery thread, never under a lock. It may read,
 *  update and unsubscribe, but must not stop or destroy the service (that joins this
 *  thread), and should return promptly (it delays other subscribers, never updaters). */
typedef void (*fdn_config_change_cb)(const fdn_config_change_t *change, void *user);

/** Options of fdn_config_create. */
typedef struct fdn_config_opts {
    uint32_t version;                 /**< FDN_CONFIG_OPTS_VERSION */
    const char *file;                 /**< JSON file layered over defaults; NULL = none */
    const char *const *envp;          /**< environment ("NAME=value", NULL-terminated);
                                           NULL = the process environment */
    bool ignore_env;                  /**< true: no environment overrides at all */
    const fdn_config_key_def_t *keys; /**< application keys (copied) */
    size_t nkeys;                     /**< number of application keys */
    fdn_clock_t *clock;               /**< NULL = system clock */
    size_t subscriber_queue;          /**< per-subscriber queue capacity; 0 = 1024 */
    fdn_config_change_cb on_change;   /**< runtime hook (events/telemetry); may be NULL */
    void *on_change_user;             /**< its user pointer */
    size_t on_change_queue;           /**< hook queue capacity; 0 = 4096 */
    int64_t fallback_ttl_ms;          /**< fallback cache TTL; 0 = 300 000 */
    size_t fallback_max_entries;      /**< fallback cache bound; 0 = 1024 */
    size_t pending_max;               /**< queued-update bound; 0 = 64 */
    bool start_stopped;               /**< true: create does not start the service */
} fdn_config_opts_t;

/** Current version of fdn_config_opts_t, set by the matching _INIT initialiser. */
#define FDN_CONFIG_OPTS_VERSION 1
/** Initialiser of fdn_config_opts_t with every default. */
#define FDN_CONFIG_OPTS_INIT                                                                       \
    {                                                                                              \
        FDN_CONFIG_OPTS_VERSION, NULL, NULL, false, NULL, 0, NULL, 0, NULL, NULL, 0, 0, 0, 0,      \
            false                                                                                  \
    }

/** Service status (reference status()). */
typedef struct fdn_config_status {
    bool running;            /**< service started */
    uint64_t revision;       /**< current revision (1 at start-up) */
    uint64_t updates_count;  /**< successful updates since create */
    uint64_t resets_count;   /**< successful resets since create */
    int64_t last_update_ns;  /**< monotonic ns of the last update, -1 if none */
    int64_t uptime_ns;       /**< since the last start */
    size_t subscribers;      /**< current subscribers (the on_change hook excluded) */
    uint64_t dropped;        /**< notifications dropped by queue overflow; for a runtime's
                                  config also, from its shutdown on, the changes its hook had not
                                  recorded when the services stopped for good (still queued,
                                  or taken in a burst not yet stored): their config_updated
                                  events and foundation.config_updates counts are missing */
    size_t pending;          /**< updates queued while unavailable */
    uint64_t pending_failed; /**< queued updates that failed when applied */
} fdn_config_status_t;

/* ---------------------------------------------------------------------------------------- */

/**
 * Create a config service: build the schema (built-in + opts->keys), layer defaults, file
 * and environment, validate the whole tree and (unless opts->start_stopped) start it.
 * @param[out] out the service
 * @param[in] opts options, NULL = defaults
 * @param[out] err optional detail; names the file or environment variable, the path and the
 *             rule that failed
 * @return 0; FDN_ECONFIG_STRUCTURE (unknown or dotted key, bad file, bad schema),
 *         FDN_ECONFIG_INVALID (wrong type, or an environment number that is not decimal), a
 * validator code (FDN_ECONFIG_*), FDN_ENOENT (file missing), FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_config_create(fdn_config_t **out, const fdn_config_opts_t *opts, fdn_error_t *err);

/**
 * Stop the service (joins the delivery thread) and free everything. Accepts NULL.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_config_destroy(fdn_config_t *cfg);

/**
 * True while the service is started (reference available()).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_config_available(const fdn_config_t *cfg);

/* ---- reads --------------------------------------------------------------------------- */

/**
 * Read an integer leaf. Reads of one thread never go back: after any read (of any kind, a
 * snapshot's revision included) that shows a change, every later read of that thread shows it.
 * @return 0; FDN_ECONFIG_PATH_NOT_FOUND; FDN_ETYPE_MISMATCH (not an integer, null, or a
 *         section); FDN_EPATH_SECURITY (the update's check 1: a forbidden pattern, more than
 *         50 components, more than 4096 bytes, or a control byte; answered so whether the
 *         service runs or not); FDN_EUNAVAILABLE (stopped); FDN_EINVAL
 * @thread_safety any (lock-free)
 * @since 0.1.0
 */
FDN_API int fdn_config_get_int(fdn_config_t *cfg, const char *path, int64_t *out);
/** As fdn_config_get_int for numbers (integers convert). @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_get_double(fdn_config_t *cfg, const char *path, double *out);
/** As fdn_config_get_int for booleans. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_get_bool(fdn_config_t *cfg, const char *path, bool *out);
/**
 * Copy a string leaf into buf (NUL-terminated).
 * @param[out] needed optional: bytes needed including the NUL
 * @return as fdn_config_get_int, plus FDN_ENOBUFS when cap is too small
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_get_string(fdn_config_t *cfg, const char *path, char *buf, size_t cap,
                                  size_t *needed);
/**
 * Whether the value at path is null (e.g. `ai.api_key` by default). A missing path is
 * FDN_ECONFIG_PATH_NOT_FOUND, never "null".
 * @return 0, FDN_ECONFIG_PATH_NOT_FOUND, FDN_EPATH_SECURITY, FDN_EUNAVAILABLE
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_is_null(fdn_config_t *cfg, const char *path, bool *out);
/**
 * The value or subtree at path as compact JSON ("" = whole config), freed with fdn_free.
 * @return 0, FDN_ECONFIG_PATH_NOT_FOUND, FDN_EPATH_SECURITY, FDN_EUNAVAILABLE, FDN_ENOMEM
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_get_json(fdn_config_t *cfg, const char *path, char **out, fdn_error_t *err);
/** Current revision (0 when stopped). @thread_safety any @since 0.1.0 */
FDN_API uint64_t fdn_config_revision(fdn_config_t *cfg);

/**
 * Resolve a leaf path once, for fdn_config_key_get_* on hot paths.
 * @return 0, FDN_ECONFIG_PATH_NOT_FOUND (not a leaf of the schema), FDN_EINVAL
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_key_resolve(const fdn_config_t *cfg, const char *path,
                                   fdn_config_key_t *out);
/** Read a resolved integer key. @return 0, FDN_ETYPE_MISMATCH, FDN_EUNAVAILABLE, FDN_EINVAL
 *  @thread_safety any (lock-free) @since 0.1.0 */
FDN_API int fdn_config_key_get_int(fdn_config_t *cfg, fdn_config_key_t key, int64_t *out);
/** Read a resolved number key (integers convert).
 * @return 0, FDN_ETYPE_MISMATCH, FDN_EUNAVAILABLE, FDN_EINVAL
 * @thread_safety any (lock-free) @since 0.1.0 */
FDN_API int fdn_config_key_get_double(fdn_config_t *cfg, fdn_config_key_t key, double *out);
/** Read a resolved boolean key.
 * @return 0, FDN_ETYPE_MISMATCH, FDN_EUNAVAILABLE, FDN_EINVAL
 * @thread_safety any (lock-free) @since 0.1.0 */
FDN_API int fdn_config_key_get_bool(fdn_config_t *cfg, fdn_config_key_t key, bool *out);

/**
 * Take a reference on the current snapshot, for several reads that must agree.
 * @return 0, FDN_EUNAVAILABLE
 * @ownership release with fdn_config_release
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_acquire(fdn_config_t *cfg, const fdn_config_snapshot_t **out);
/** Drop a snapshot reference. Accepts NULL. @thread_safety any @since 0.1.0 */
FDN_API void fdn_config_release(const fdn_config_snapshot_t *snap);
/** Revision of a snapshot. @thread_safety any @since 0.1.0 */
FDN_API uint64_t fdn_config_snapshot_revision(const fdn_config_snapshot_t *snap);
/** fdn_config_get_int on a snapshot. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_snapshot_get_int(const fdn_config_snapshot_t *snap, const char *path,
                                        int64_t *out);
/** fdn_config_get_double on a snapshot. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_snapshot_get_double(const fdn_config_snapshot_t *snap, const char *path,
                                           double *out);
/** fdn_config_get_bool on a snapshot. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_snapshot_get_bool(const fdn_config_snapshot_t *snap, const char *path,
                                         bool *out);
/** fdn_config_get_json on a snapshot. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_snapshot_get_json(const fdn_config_snapshot_t *snap, const char *path,
                                         char **out);

/* ---- updates ------------------------------------------------------------------------- */

/**
 * Update one path with a JSON value. Checks in order: path security (FDN_EPATH_SECURITY,
 * ref 1000: a forbidden pattern, more than 50 components, more than 4096 bytes, a control
 * byte), JSON syntax (FDN_EPARSE), value security (FDN_EVALUE_SECURITY, 1005),
 * updatable (FDN_ECONFIG_FORBIDDEN, 1401), whole-tree validation (the validator's code),
 * then, for a runtime's config, the services the path drives taking the value (a refusal:
 * the service's code, e.g. FDN_EINVAL, err naming the service and the path; docs/config.md;
 * for a config following etcd they are asked before the value is written there, and a refused
 * value is never written: fdn_config_follow_etcd).
 * On success publishes revision+1 and queues notifications; a failure changes nothing.
 * @return 0 or one of the codes above; FDN_EUNAVAILABLE; FDN_EINVAL; FDN_ENOMEM
 * @thread_safety any (writers are serialised; readers never wait)
 * @since 0.1.0
 */
FDN_API int fdn_config_update_json(fdn_config_t *cfg, const char *path, const char *value_json,
                                   fdn_error_t *err);
/** fdn_config_update_json with an integer. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_update_int(fdn_config_t *cfg, const char *path, int64_t v, fdn_error_t *err);
/** fdn_config_update_json with a double (must be finite). @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_update_double(fdn_config_t *cfg, const char *path, double v,
                                     fdn_error_t *err);
/** fdn_config_update_json with a boolean. @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_update_bool(fdn_config_t *cfg, const char *path, bool v, fdn_error_t *err);
/** fdn_config_update_json with a string (NULL = null). @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_update_string(fdn_config_t *cfg, const char *path, const char *v,
                                     fdn_error_t *err);

/**
 * Replace the config with the built-in defaults (reference reset(): not the startup config).
 * Subscribers get FDN_CONFIG_CHANGE_RESET. updates_count is kept. In a runtime the services
 * take the reset's settings before it returns; a service that refuses one does not fail the
 * reset: it keeps its setting, and the runtime records that (event config_apply_failed,
 * counter foundation.config.service_refused) before the call returns (docs/config.md).
 * The reset is validated (reference §1.6): when the defaults do not pass the whole-tree
 * validation (an application key whose default_json is NULL, i.e. a value required from the
 * file or the environment) the reset is refused with the validator's code, err naming the key,
 * and nothing changes (values, revision, resets_count, notifications).
 * @return 0, FDN_EUNAVAILABLE, FDN_ENOMEM, a validator code (FDN_ECONFIG_*: the defaults do
 *         not validate)
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_reset(fdn_config_t *cfg, fdn_error_t *err);
/** Replace the config with the startup config (defaults + file + environment), validated as
 *  fdn_config_reset (the start-up values passed at create, so it is not refused for them).
 *  @return 0, FDN_EUNAVAILABLE, FDN_ENOMEM @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_reset_to_startup(fdn_config_t *cfg, fdn_error_t *err);

/** Whether path is a run-time updatable key of this service. @thread_safety any @since 0.1.0 */
FDN_API bool fdn_config_is_updatable(const fdn_config_t *cfg, const char *path);
/** The updatable paths (static, NULL-terminated; *n = 19): the reference's 13 in the
 *  reference's order, then the event store's six retention keys (docs/config.md).
 *  @thread_safety any @since 0.1.0 */
FDN_API const char *const *fdn_config_updatable_paths(size_t *n);

/**
 * Validate a whole configuration tree given as JSON against the built-in schema:
 * the first failure in reference order; a missing or malformed section is 1001
 * (FDN_ECONFIG_STRUCTURE) with the section's message; after the value rules, an unknown key
 * or a dotted key ("dev.debug_mode" instead of {"dev":{"debug_mode":...}}) is
 * FDN_ECONFIG_STRUCTURE naming it (check_json and the file layer of create refuse it too).
 * @return 0, FDN_EPARSE, FDN_ECONFIG_STRUCTURE/INVALID/CONSTRAINT/RANGE
 * @thread_safety any (pure) @since 0.1.0
 */
FDN_API int fdn_config_validate_json(const char *json, size_t len, fdn_error_t *err);

/**
 * One problem found by fdn_config_check_json.
 * @param path    dotted path of the offending key or section ("" for the document itself)
 * @param message what is wrong, naming the rule (e.g. "expected bool, got string",
 *                "Invalid AI provider (rule: one of openai,anthropic,...)")
 * @param code    the problem's FDN_ECONFIG_* (or FDN_EPARSE) code
 * @param user    the caller's pointer
 * @since 0.1.0
 */
typedef void (*fdn_config_problem_fn)(const char *path, const char *message, int code, void *user);

/**
 * Check a configuration file's content (a JSON object layered over the built-in defaults,
 * as `fdn_config_create` with `file` does, environment ignored) and report EVERY problem,
 * not only the first: unknown keys, dotted keys ("dev.debug_mode": keys are nested),
 * non-object sections, values of the wrong type (in the document's order), then value rules (range,
 * enum, positive, ...) in schema order. Unlike fdn_config_validate_json, absent keys keep their
 * defaults and are not problems.
 * @param json  the document (need not be NUL-terminated)
 * @param len   its length in bytes
 * @param cb    called once per problem, in the calling thread; may be NULL (count only)
 * @param user  passed to cb
 * @return 0 when valid; else the code of the first problem (FDN_EPARSE for malformed JSON,
 *         FDN_ECONFIG_STRUCTURE/INVALID/CONSTRAINT/RANGE); FDN_EINVAL (json NULL),
 *         FDN_ENOMEM
 * @thread_safety any (pure) @since 0.1.0
 */
FDN_API int fdn_config_check_json(const char *json, size_t len, fdn_config_problem_fn cb,
                                  void *user);

/* ---- subscriptions ------------------------------------------------------------------- */

/**
 * Subscribe to changes of paths equal to or below `prefix` ("" = everything; resets go to
 * every subscriber). Each subscriber has a bounded FIFO (opts.subscriber_queue); one
 * delivery thread drains them in order. When a queue is full the oldest notification is
 * dropped and the subscriber later gets one FDN_CONFIG_CHANGE_OVERFLOW with the count, so an
 * updater never waits for a subscriber. Subscriptions survive a service restart.
 * @param[out] out_id subscription id for fdn_config_unsubscribe; written before the
 *             subscription can be notified, so the callback may read it (e.g. to unsubscribe
 *             itself) when out_id points into its `user`
 * @return 0, FDN_EUNAVAILABLE, FDN_ENOMEM, FDN_EINVAL (cb NULL, or a prefix that fails the
 *         path rules, has an empty component, e.g. "dev.", or lies inside a leaf's value,
 *         e.g. "myapp.limits.a" below an object-typed leaf "myapp.limits": updates name
 *         leaves, so it could never be notified; subscribe to the leaf instead; or a prefix
 *         that names neither a key nor a section of the schema, built-in or opts.keys, e.g.
 *         "dev.debug" or "nosuch": the schema is fixed at create, so nothing below it could
 *         ever change)
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_subscribe(fdn_config_t *cfg, const char *prefix, fdn_config_change_cb cb,
                                 void *user, uint64_t *out_id);
/**
 * Remove a subscription. On return its callback is not running and will not run again
 * (unless called from inside that callback, where it returns at once).
 * @return 0, FDN_ENOENT
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_unsubscribe(fdn_config_t *cfg, uint64_t id);

/** Fill a status record. @return 0, FDN_EINVAL @thread_safety any @since 0.1.0 */
FDN_API int fdn_config_status(fdn_config_t *cfg, fdn_config_status_t *out);

/* ---- graceful degradation ------------------------------------------------------------ */

/**
 * fdn_config_get_json that remembers each value it read. While the service is unavailable
 * it answers from that cache inside the TTL; past the TTL it deletes the entry and answers
 * FDN_ECONFIG_UNAVAILABLE ("Configuration cache expired"); with no entry,
 * FDN_ECONFIG_UNAVAILABLE ("Configuration not available"). Other errors (not found,
 * security) are returned as they are, never masked by the cache: path security and a path
 * the schema cannot have are answered even while the service is stopped. An entry is only
 * replaced by a value read from a snapshot at least as new (the cache never goes back to an
 * older revision when concurrent readers store out of order).
 * @return 0, FDN_ECONFIG_UNAVAILABLE, the errors of fdn_config_get_json
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_get_with_fallback(fdn_config_t *cfg, const char *path, char **out,
                                         fdn_error_t *err);
/**
 * Update now, or, while the service is unavailable, check the update against the current
 * config (all four checks) and queue it (bounded) to be applied in order at the next start
 * (for a config following etcd: written through etcd at the next start, as an update is,
 * so the fleet gets it; fdn_config_follow_etcd). Invalid updates are never queued.
 * @param[out] queued optional: true when queued rather than applied
 * @return 0, the errors of fdn_config_update_json, FDN_ENOSPC (queue full)
 * @thread_safety any @since 0.1.0
 */
FDN_API int fdn_config_update_or_queue(fdn_config_t *cfg, const char *path, const char *value_json,
                                       bool *queued, fdn_error_t *err);
/** Delete every cache entry older than the TTL. @return entries removed. @thread_safety any
 *  @since 0.1.0 */
FDN_API size_t fdn_config_fallback_cleanup(fdn_config_t *cfg);
/** Number of cached entries and of queued updates. @thread_safety any @since 0.1.0 */
FDN_API void fdn_config_fallback_stats(fdn_config_t *cfg, size_t *cached, size_t *pending);

/* ---- following etcd (scale-out) --------------------------------------------------------- */

/** Options of fdn_config_follow_etcd. New fields are only appended. */
typedef struct fdn_config_etcd_opts {
    uint32_t version;           /**< FDN_CONFIG_ETCD_OPTS_VERSION */
    const char *url;            /**< etcd client URL, http://host:port (required) */
    const char *prefix;         /**< key prefix; NULL: "/fdn/config" */
    const char *ns;             /**< namespace (the runtime's name); NULL: "default"; no '/' */
    int64_t request_timeout_ms; /**< bound on every etcd call; 0: 2000 */
    /** version >= 2: true: etcd not answering now (refused, timed out, network) is no error:
     *  the config keeps its local values, marked stale, and applies etcd's once it answers
     *  (updates fail meanwhile with the network error). false (default): follow fails. */
    bool start_unreachable;
} fdn_config_etcd_opts_t;

/** Current version of fdn_config_etcd_opts_t, set by FDN_CONFIG_ETCD_OPTS_INIT. 2:
 * start_unreachable. */
#define FDN_CONFIG_ETCD_OPTS_VERSION 2
/** Initialiser of fdn_config_etcd_opts_t with every default. */
#define FDN_CONFIG_ETCD_OPTS_INIT                                                                  \
    {                                                                                              \
        FDN_CONFIG_ETCD_OPTS_VERSION, NULL, NULL, NULL, 0, false                                   \
    }

/**
 * Make the config follow etcd: each updatable path is the key `<prefix>/<ns>/<path>` holding
 * its JSON value. From this call on, fdn_config_update_* of this service checks the update as
 * always (all four checks, then, for a runtime's config, whether the services the path drives
 * take the value, asked without pushing it: a refusal is the update's error, and the value is
 * never written to etcd), then writes it to etcd with a compare-and-swap on the key's
 * mod_revision as this process last saw it (retried, after catching up, while other processes
 * win), and returns once the change is applied here (the services take it then); when this
 * process refuses the change as the watch brings it back (a service's push refused although
 * its check passed), the update returns that refusal, although the value is in etcd and the
 * other processes have it. Every process
 * applies every change in etcd's order, from its watch, so all follow the same sequence of
 * revisions; subscribers fire once per change; fdn_config_revision() reports the etcd revision of
 * the last change applied. A value written to etcd by another tool or process is checked like a
 * local update: an invalid one (or, in a runtime, one a service refuses) is refused here, counted
 * and never applied (fdn_config_etcd_stats). A deleted key puts the path back to its start-up
 * value. Before returning, the keys present in etcd are applied in their order. Resets
 * (fdn_config_reset*) go through etcd too: one compare-and-swap txn deletes the namespace's keys
 * and writes a reset marker, which every process applies as one reset (a process that starts later
 * applies the last one too). etcd away: reads keep the last applied values; updates and resets fail
 * with the network error.
 * @param[in] cfg  a running config service (not following already)
 * @param[in] o    options (url required)
 * @param[out] err optional detail
 * @return 0, FDN_EINVAL, FDN_EBUSY (already following), FDN_EUNAVAILABLE (not running),
 *         FDN_ECONNREFUSED / FDN_ETIMEDOUT / FDN_ENETWORK / FDN_EPARSE / FDN_EEXTERNAL (etcd),
 *         FDN_ENOMEM, FDN_ENOTSUP (built without FDN_WITH_ETCD)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_config_follow_etcd(fdn_config_t *cfg, const fdn_config_etcd_opts_t *o,
                                   fdn_error_t *err);

/** State and counters of a config that follows etcd (fdn_config_etcd_stats). */
typedef struct fdn_config_etcd_stats {
    uint32_t version;       /**< FDN_CONFIG_ETCD_STATS_VERSION (set by the caller) */
    bool stale;             /**< the watch is not following etcd now */
    int64_t revision;       /**< the etcd revision the config reflects */
    uint64_t applied;       /**< changes applied from etcd */
    uint64_t refused;       /**< values in etcd refused here (invalid, forbidden path, a
                                 runtime service's refusal; not a local update refused
                                 before etcd) */
    uint64_t cas_conflicts; /**< local updates that lost a compare-and-swap and retried */
    uint64_t relists;       /**< ranges that (re)filled the config, the first included */
    char last_refused[256]; /**< why the last refused value was refused ("" if none) */
} fdn_config_etcd_stats_t;

/** Current version of fdn_config_etcd_stats_t (the caller sets it before asking). */
#define FDN_CONFIG_ETCD_STATS_VERSION 1

/**
 * Read the etcd follower's counters.
 * @param[in] cfg the config service  @param[out] out filled (out->version set by the caller)
 * @return 0, FDN_EINVAL, FDN_ENOTSUP (not following etcd)
 * @thread_safety any @since 0.3.0
 */
FDN_API int fdn_config_etcd_stats(fdn_config_t *cfg, fdn_config_etcd_stats_t *out);

FDN_END_DECLS

#endif /* FDN_CONFIG_H */
