/**
 * @file registry.h
 * @brief The service registry of one runtime: a namespaced map from a service
 *        name to a handle plus key/value metadata and an owner token.
 *
 * One registry object is one namespace (the reference's `:production` or `{:test, ref}`);
 * each runtime owns one, named after the runtime. There is ONE store: registration is an
 * atomic insert-if-absent, so none of the reference's shadowing or check-then-insert races
 * exist.
 *
 * Lookups take no lock: the table is an immutable hash published with RCU (liburcu-bp, so
 * threads need no registration); a lookup is a pointer load and a probe. Writers
 * (register, unregister, release_owner) serialise on a mutex, copy the table, publish the
 * new one and free the old one after a grace period. Lookups never return a pointer into
 * mutable state: they copy the handle value, copy metadata into a caller buffer, or hand out
 * an immutable ref-counted entry snapshot (fdn_registry_acquire / fdn_registry_entry_release).
 *
 * @since 0.1.0
 */
#ifndef FDN_REGISTRY_H
#define FDN_REGISTRY_H

#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** Opaque handle: a registry object, used through the fdn_registry_* functions. */
typedef struct fdn_registry fdn_registry_t;
/** An immutable snapshot of one registration (see fdn_registry_acquire). */
typedef struct fdn_registry_entry fdn_registry_entry_t;

/** Longest service name accepted, in bytes (without the NUL). */
#define FDN_REGISTRY_NAME_MAX 255
/** Most metadata pairs per entry. */
#define FDN_REGISTRY_META_MAX 32

/** A metadata pair given to fdn_registry_register (both strings are copied). */
typedef struct fdn_registry_meta {
    const char *key;   /**< metadata key */
    const char *value; /**< its value */
} fdn_registry_meta_t;

/** Registry operations reported to the event hook. */
typedef enum fdn_registry_op {
    FDN_REGISTRY_OP_REGISTER = 0, /**< telemetry event foundation.registry.register {count=1} */
    FDN_REGISTRY_OP_LOOKUP,       /**< telemetry event foundation.registry.lookup {duration} */
    FDN_REGISTRY_OP_UNREGISTER,   /**< foundation.registry.unregister {count} */
} fdn_registry_op_t;

/**
 * Called after every register / lookup / unregister when set in the options (telemetry plugs
 * in here: the reference emits `foundation.registry.register` {count=1} and
 * `foundation.registry.lookup` {duration_ns} with metadata {namespace, service, result}).
 * @param op          the operation
 * @param ns          the registry's name (namespace)
 * @param service     the service name
 * @param result      the operation's return code (0 = ok)
 * @param duration_ns lookup duration in ns (monotonic clock of the options), 0 for others
 * @param user        opts.event_user
 * Runs on the calling thread with no registry lock held.
 */
typedef void (*fdn_registry_event_fn)(fdn_registry_op_t op, const char *ns, const char *service,
                                      int result, int64_t duration_ns, void *user);

/** Options for fdn_registry_create. New fields are only appended. */
typedef struct fdn_registry_opts {
    uint32_t version;               /**< FDN_REGISTRY_OPTS_VERSION */
    const char *name;               /**< namespace name used in messages; NULL: "default" */
    fdn_clock_t *clock;             /**< clock for lookup durations and registration times;
                                         NULL: system clock */
    fdn_registry_event_fn on_event; /**< optional event hook (NULL: none, no timing cost) */
    void *event_user;               /**< passed to on_event */
} fdn_registry_opts_t;

/** Current version of fdn_registry_opts_t, set by the matching _INIT initialiser. */
#define FDN_REGISTRY_OPTS_VERSION 1
/** Initialiser of fdn_registry_opts_t with every default. */
#define FDN_REGISTRY_OPTS_INIT                                                                     \
    {                                                                                              \
        FDN_REGISTRY_OPTS_VERSION, NULL, NULL, NULL, NULL                                          \
    }

/**
 * Create an empty registry.
 * @param[out] out   the registry
 * @param[in]  opts  options, NULL for defaults (copied; the name string is copied)
 * @return 0, FDN_EINVAL (out NULL, bad version), FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_registry_create(fdn_registry_t **out, const fdn_registry_opts_t *opts);

/**
 * Destroy a registry and every entry (entries still acquired stay valid until released).
 * Waits for pending deferred frees. NULL accepted. In a child of fork(2) it returns even when
 * a thread of the parent was waiting in fdn_registry_wait at the fork.
 * @param[in] reg the registry
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API void fdn_registry_destroy(fdn_registry_t *reg);

/** The registry's name (namespace). Valid for the registry's life. @thread_safety any
 * @param[in] reg the registry
 * @since 0.1.0 */
FDN_API const char *fdn_registry_name(const fdn_registry_t *reg);

/**
 * A fresh owner token, unique within the process and never 0. Owners group entries so
 * they can be removed together (fdn_registry_release_owner), e.g. everything a service
 * registered when it stops.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint64_t fdn_registry_owner_new(void);

/**
 * Register `service` → handle, atomically if absent.
 * If the name is already registered with the same handle and owner the call succeeds and
 * changes nothing (idempotent, as the reference); any other existing entry gives FDN_EEXIST
 * and err names the existing entry (message "Service \<svc\> already registered in namespace
 * \<ns\>", context namespace, service, existing_owner).
 * @param[in] reg      the registry
 * @param[in] service  name, 1..FDN_REGISTRY_NAME_MAX bytes, copied
 * @param[in] handle   the service handle (not NULL); the registry never dereferences it
 * @param[in] owner    owner token (0 = none)
 * @param[in] meta     metadata pairs (copied), NULL when nmeta == 0; duplicate keys: the
 *                     last one wins
 * @param[in] nmeta    number of pairs, ≤ FDN_REGISTRY_META_MAX
 * @param[out] err     optional detail
 * @return 0, FDN_EEXIST, FDN_EINVAL (NULL/empty/too long name, NULL handle, bad meta),
 *         FDN_ENOMEM (nothing changed)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_registry_register(fdn_registry_t *reg, const char *service, void *handle,
                                  uint64_t owner, const fdn_registry_meta_t *meta, size_t nmeta,
                                  fdn_error_t *err);

/**
 * Look a service up without taking any lock.
 * @param[in]  reg      the registry
 * @param[in]  service  the name
 * @param[out] out      receives the handle (NULL allowed: existence check)
 * @param[out] err      optional: on a miss, code FDN_ESERVICE_NOT_FOUND (ref 5001,
 *                      service_not_found, system/discovery, medium), message "Service \<svc\>
 *                      not found in namespace \<ns\>", context namespace=\<ns\> service=\<svc\>
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EINVAL (NULL reg/service)
 * @thread_safety any (lock-free, wait-free for readers)
 * @since 0.1.0
 */
FDN_API int fdn_registry_lookup(fdn_registry_t *reg, const char *service, void **out,
                                fdn_error_t *err);

/**
 * Wait until `service` is registered (the reference's wait_for_service, without polling).
 * @param[in]  reg         the registry
 * @param[in]  service     the name
 * @param[in]  timeout_ms  how long to wait (system monotonic clock); 0: check once; < 0: no
 *                         limit
 * @param[out] out         receives the handle (may be NULL)
 * @param[out] err         optional: on timeout FDN_ETIMEDOUT with context namespace, service
 * @return 0, FDN_ETIMEDOUT, FDN_EINVAL (NULL registry; NULL, empty or too long name, which no
 *         registration can have)
 * @thread_safety any (the registry must not be destroyed while a wait is in progress)
 * @since 0.1.0
 */
FDN_API int fdn_registry_wait(fdn_registry_t *reg, const char *service, int64_t timeout_ms,
                              void **out, fdn_error_t *err);

/**
 * Copy a metadata value of a registered service into buf (lock-free).
 * @param[out] needed  optional: bytes the value needs including the NUL
 * @param[in] reg the registry
 * @param[in] service the service name
 * @param[in] key the metadata key
 * @param[out] buf output buffer
 * @param[in] cap capacity of buf in bytes
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_ENOENT (no such key), FDN_ENOBUFS (buf too small;
 *         *needed tells the size), FDN_EINVAL
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_registry_meta_get(fdn_registry_t *reg, const char *service, const char *key,
                                  char *buf, size_t cap, size_t *needed);

/**
 * Acquire an immutable snapshot of a registration (handle, owner, metadata). The snapshot
 * stays valid after the service is unregistered, until fdn_registry_entry_release.
 * @param[in] reg the registry
 * @param[in] service the service name
 * @param[out] out receives the snapshot (NULL on error)
 * @param[out] err optional error detail (may be NULL)
 * @return 0, FDN_ESERVICE_NOT_FOUND (err filled as for lookup), FDN_EINVAL
 * @thread_safety any  @ownership release *out with fdn_registry_entry_release
 * @since 0.1.0
 */
FDN_API int fdn_registry_acquire(fdn_registry_t *reg, const char *service,
                                 fdn_registry_entry_t **out, fdn_error_t *err);

/**
 * Release a snapshot (NULL accepted).
 * @param[in] e an entry snapshot
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_registry_entry_release(fdn_registry_entry_t *e);

/**
 * Service name of a snapshot (valid until release).
 * @param[in] e an entry snapshot
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_registry_entry_service(const fdn_registry_entry_t *e);
/** Handle of a snapshot. @param[in] e an entry snapshot @thread_safety any  @since 0.1.0 */
FDN_API void *fdn_registry_entry_handle(const fdn_registry_entry_t *e);
/** Owner token of a snapshot. @param[in] e an entry snapshot @thread_safety any  @since 0.1.0 */
FDN_API uint64_t fdn_registry_entry_owner(const fdn_registry_entry_t *e);
/** Monotonic time (ns, registry clock) of the registration. @thread_safety any
 * @param[in] e an entry snapshot
 * @since 0.1.0 */
FDN_API int64_t fdn_registry_entry_registered_ns(const fdn_registry_entry_t *e);
/** Number of metadata pairs. @param[in] e an entry snapshot @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_registry_entry_meta_count(const fdn_registry_entry_t *e);
/**
 * The i-th metadata pair (sorted by key). Strings valid until release.
 * @param[in] e an entry snapshot
 * @param[in] i index, 0-based
 * @param[out] key receives the key (may be NULL)
 * @param[out] value receives the value (may be NULL)
 * @return 0 or FDN_ENOENT when i is out of range.
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_registry_entry_meta_at(const fdn_registry_entry_t *e, size_t i, const char **key,
                                       const char **value);
/** Value of a metadata key, or NULL. Valid until release. @thread_safety any
 * @param[in] e an entry snapshot
 * @param[in] key the metadata key
 * @since 0.1.0 */
FDN_API const char *fdn_registry_entry_meta(const fdn_registry_entry_t *e, const char *key);

/**
 * Remove a registration. Like the reference, removing an unknown name is not an error.
 * @param[in] reg the registry
 * @param[in] service the service name
 * @return 0 (removed or absent), FDN_EINVAL, FDN_ENOMEM (nothing changed)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_registry_unregister(fdn_registry_t *reg, const char *service);

/**
 * Remove every registration whose owner is `owner` (owner 0 matches nothing). The
 * registry's `on_event` hook is told of each entry removed (FDN_REGISTRY_OP_UNREGISTER, result
 * 0, the entry's service name), after the registry's lock is released, on the calling thread.
 * @param[in] reg the registry
 * @param[in] owner the owner token
 * @return the number removed (≥ 0), or FDN_EINVAL / FDN_ENOMEM (nothing changed)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_registry_release_owner(fdn_registry_t *reg, uint64_t owner);

/**
 * Number of registrations (a consistent snapshot).
 * @param[in] reg the registry
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_registry_count(fdn_registry_t *reg);

/**
 * List the registered service names, sorted, from one consistent snapshot.
 * @param[out] out_names  array of *out_count strings in ONE allocation (free the array with
 *                        fdn_free; do not free the strings); NULL when the count is 0 and on
 *                        error
 * @param[out] out_count  number of names (0 on error)
 * @param[in] reg the registry
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any  @ownership caller frees *out_names with fdn_free
 * @since 0.1.0
 */
FDN_API int fdn_registry_list(fdn_registry_t *reg, char ***out_names, size_t *out_count);

/* ---- The shared registry (etcd) ---------------------------------------------------------
 *
 * A registry opened with fdn_registry_open also holds a fleet-wide part on etcd (its v3 JSON
 * gateway): endpoints that every process of the fleet can look up. In-process handles
 * (`void *`, fdn_registry_register) stay local; the shared part holds endpoints and metadata.
 *
 * The process holds one etcd lease (TTL lease_ttl_ms, refreshed every TTL/3 by a thread of the
 * registry). fdn_registry_register_shared writes `<prefix>/<namespace>/<service>/<instance>`
 * with that lease, if absent (a txn on create_revision == 0): of two processes registering one
 * name, exactly one wins. When the process dies its lease expires and etcd deletes its entries.
 *
 * Lookups read a local cache and never touch the network: a second thread fills it with a
 * range of `<prefix>/<namespace>/` at revision R, then follows a watch from R + 1, and ranges
 * again when the watch ends (etcd away, or R compacted away). While etcd is unreachable the
 * cache keeps answering and is marked stale (fdn_registry_shared_stale); when etcd is back the
 * cache is re-listed, and if the lease was lost it is granted again and this process's entries
 * are registered again.
 *
 * The value stored in etcd is JSON: {"endpoint": "...", "owner": "...", "meta": {"k": "v"}}.
 * A value under the prefix that is not such JSON (written by another tool), too large, or
 * under a key that is not <service>/<instance>, is left out of the cache and counted
 * (fdn_registry_shared_stats_t.bad_values).
 */

/** An immutable, ref-counted snapshot of one shared entry (see fdn_registry_lookup_shared). */
typedef struct fdn_registry_instance fdn_registry_instance_t;

/** Options of the shared part (fdn_registry_open). New fields are only appended. */
typedef struct fdn_registry_etcd_opts {
    uint32_t version;           /**< FDN_REGISTRY_ETCD_OPTS_VERSION */
    const char *url;            /**< etcd client URL, http://host:port (required) */
    const char *prefix;         /**< key prefix; NULL: "/fdn/registry" */
    int64_t lease_ttl_ms;       /**< lease TTL, rounded up to whole seconds (etcd's unit);
                                     0: 10000; at least 1000 */
    int64_t request_timeout_ms; /**< bound on every etcd call, connect included; 0: 2000. A
                                     keepalive (and a write of the re-registration after a
                                     lost lease) is also bounded by TTL/3, or the time left on
                                     the lease when shorter, so that a keepalive is retried
                                     before the lease expires */
    const char *owner;          /**< owner written into this process's entries; NULL:
                                     "<hostname>:<pid>" */
    size_t max_value_bytes;     /**< largest entry value written or accepted; 0: 65536 */
    /** version >= 2: true: etcd not answering at open (refused, timed out, network) is no
     *  error: the registry starts with an empty cache marked stale and no lease; the lease is
     *  granted, the cache filled and kept registrations written once etcd answers. A
     *  registration while there is no lease is kept and answers FDN_EUNAVAILABLE. false
     *  (default): fdn_registry_open fails when etcd does not answer. */
    bool start_unreachable;
} fdn_registry_etcd_opts_t;

/** Current version of fdn_registry_etcd_opts_t, set by FDN_REGISTRY_ETCD_OPTS_INIT. 2:
 * start_unreachable. */
#define FDN_REGISTRY_ETCD_OPTS_VERSION 2
/** Initialiser of fdn_registry_etcd_opts_t with every default. */
#define FDN_REGISTRY_ETCD_OPTS_INIT                                                                \
    {                                                                                              \
        FDN_REGISTRY_ETCD_OPTS_VERSION, NULL, NULL, 0, 0, NULL, 0, false                           \
    }

/**
 * Create a registry (as fdn_registry_create) with a shared part on etcd. The namespace is
 * opts->name ("default" when NULL); it must not contain '/'. Before returning it grants the
 * lease and fills the cache, so etcd must answer now (unless etcd->start_unreachable: then an
 * etcd that does not answer leaves the registry stale, without a lease, until it does);
 * afterwards an outage is survived (see above). fdn_registry_destroy stops the two threads,
 * revokes the lease (this process's entries disappear at once; one call bounded by
 * request_timeout_ms, made even while the breaker around etcd is open, since entries left
 * behind would be looked up by the fleet until the TTL ends) and frees everything.
 * The shared part is the opening process's: in a child of fork(2) (which has none of its
 * threads, and whose parent holds the lease) fdn_registry_destroy leaves it alone (no join, no
 * revoke: the parent's entries stay; its memory is left to the child's exit), registering and
 * unregistering answer FDN_EINVAL, and lookups answer from the cache as the fork left it,
 * marked stale.
 * @param[out] out   the registry
 * @param[in]  opts  registry options (NULL: defaults)
 * @param[in]  etcd  the shared part's options (url required)
 * @param[out] err   optional detail
 * @return 0, FDN_EINVAL (bad URL, bad options), FDN_ECONNREFUSED / FDN_ETIMEDOUT /
 *         FDN_ENETWORK (etcd does not answer), FDN_EPARSE (the URL's server is not an etcd
 *         gateway), FDN_EEXTERNAL (etcd refused), FDN_ENOMEM, FDN_ENOTSUP (this libfdn was built
 *         without the etcd backend, FDN_WITH_ETCD=OFF)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_registry_open(fdn_registry_t **out, const fdn_registry_opts_t *opts,
                              const fdn_registry_etcd_opts_t *etcd, fdn_error_t *err);

/**
 * Register `service`/`instance` → endpoint in the shared registry, if absent, under this
 * process's lease. Registering again a name this process holds (same lease) succeeds and
 * changes nothing, unless the entry is gone from etcd (the cache, following etcd, does not
 * show it): then it is written again. The process stays the entry's source of truth until it
 * unregisters it: the registry writes the entry again if the lease is lost and granted
 * again, and when the entry is deleted by another tool (the watch shows it; a name another
 * process took meanwhile is given up and counted in fdn_registry_shared_stats_t.lost).
 * @param[in] reg       a registry made by fdn_registry_open
 * @param[in] service   1..FDN_REGISTRY_NAME_MAX bytes, no '/'
 * @param[in] instance  1..FDN_REGISTRY_NAME_MAX bytes, no '/'
 * @param[in] endpoint  where to reach it (any text, e.g. "http://10.0.0.5:8080")
 * @param[in] meta      metadata pairs (copied), NULL when nmeta == 0
 * @param[in] nmeta     ≤ FDN_REGISTRY_META_MAX
 * @param[out] err      optional: for FDN_EEXIST the message names the holder
 * @return 0, FDN_EEXIST (another process holds the name), FDN_EINVAL (also: called in a child
 *         of fork(2) of the process that opened reg), FDN_ETOO_LARGE (the
 *         value passes max_value_bytes), FDN_ENOTSUP (no shared part), FDN_EUNAVAILABLE (no
 *         lease yet: etcd away; or the lease expired or was revoked and a new one is not
 *         granted yet: the call wakes the lease thread, which grants one at once: retry),
 *         FDN_ECONNREFUSED / FDN_ETIMEDOUT / FDN_ENETWORK /
 *         FDN_EEXTERNAL (etcd; after a timeout the entry may exist: register again), FDN_ENOMEM
 * @thread_safety any (calls are serialised with the lease's re-registration)
 * @since 0.3.0
 */
FDN_API int fdn_registry_register_shared(fdn_registry_t *reg, const char *service,
                                         const char *instance, const char *endpoint,
                                         const fdn_registry_meta_t *meta, size_t nmeta,
                                         fdn_error_t *err);

/**
 * Remove an entry this process registered (an entry of another process is left alone): one
 * it holds, or one under this process's lease that a registration wrote without this process
 * learning it (the call timed out after etcd applied it; a txn on the key's lease).
 * @param[in] reg the registry
 * @param[in] service the service name
 * @param[in] instance the instance name
 * @param[out] err optional detail
 * @return 0 (removed, or not this process's), FDN_EINVAL, FDN_ENOTSUP, or an etcd error as
 *         for register (the entry is then still this process's)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_registry_unregister_shared(fdn_registry_t *reg, const char *service,
                                           const char *instance, fdn_error_t *err);

/**
 * Look an entry up in the local cache (no network; no lock).
 * @param[in]  reg       the registry
 * @param[in]  service   the service name
 * @param[in]  instance  the instance, or NULL for the first instance of the service (by name)
 * @param[out] out       the entry snapshot; release with fdn_registry_instance_release
 * @param[out] err       optional: on a miss FDN_ESERVICE_NOT_FOUND with context namespace,
 *                       service
 * @return 0, FDN_ESERVICE_NOT_FOUND, FDN_EINVAL, FDN_ENOTSUP (no shared part)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_registry_lookup_shared(fdn_registry_t *reg, const char *service,
                                       const char *instance, fdn_registry_instance_t **out,
                                       fdn_error_t *err);

/**
 * List cached entries, sorted by service then instance, from one consistent snapshot.
 * @param[in]  reg        the registry
 * @param[in]  service    only this service's instances, or NULL for every entry
 * @param[out] out        array of *out_count snapshots (NULL when 0); free with
 *                        fdn_registry_instances_free
 * @param[out] out_count  how many
 * @return 0, FDN_EINVAL, FDN_ENOTSUP, FDN_ENOMEM
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_registry_list_shared(fdn_registry_t *reg, const char *service,
                                     fdn_registry_instance_t ***out, size_t *out_count);

/** Release every snapshot of a list and the array (NULL accepted).
 * @param[in] v the array from fdn_registry_list_shared  @param[in] n its count
 * @thread_safety any  @since 0.3.0 */
FDN_API void fdn_registry_instances_free(fdn_registry_instance_t **v, size_t n);

/** Release a snapshot (NULL accepted). @param[in] i a snapshot @thread_safety any
 * @since 0.3.0 */
FDN_API void fdn_registry_instance_release(fdn_registry_instance_t *i);
/** Service name. @param[in] i a snapshot @thread_safety any  @since 0.3.0 */
FDN_API const char *fdn_registry_instance_service(const fdn_registry_instance_t *i);
/** Instance name. @param[in] i a snapshot @thread_safety any  @since 0.3.0 */
FDN_API const char *fdn_registry_instance_name(const fdn_registry_instance_t *i);
/** Endpoint. @param[in] i a snapshot @thread_safety any  @since 0.3.0 */
FDN_API const char *fdn_registry_instance_endpoint(const fdn_registry_instance_t *i);
/** Owner (who registered it: opts owner or "<hostname>:<pid>"). @param[in] i a snapshot
 * @thread_safety any  @since 0.3.0 */
FDN_API const char *fdn_registry_instance_owner(const fdn_registry_instance_t *i);
/** The etcd lease holding the entry (0: none). @param[in] i a snapshot @thread_safety any
 * @since 0.3.0 */
FDN_API int64_t fdn_registry_instance_lease(const fdn_registry_instance_t *i);
/** The etcd revision of the entry's last write. @param[in] i a snapshot @thread_safety any
 * @since 0.3.0 */
FDN_API int64_t fdn_registry_instance_mod_revision(const fdn_registry_instance_t *i);
/** Number of metadata pairs. @param[in] i a snapshot @thread_safety any  @since 0.3.0 */
FDN_API size_t fdn_registry_instance_meta_count(const fdn_registry_instance_t *i);
/**
 * The k-th metadata pair (sorted by key). Strings valid until release.
 * @param[in] i a snapshot  @param[in] k index  @param[out] key may be NULL
 * @param[out] value may be NULL
 * @return 0 or FDN_ENOENT  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_registry_instance_meta_at(const fdn_registry_instance_t *i, size_t k,
                                          const char **key, const char **value);
/** Value of a metadata key, or NULL. @param[in] i a snapshot @param[in] key the key
 * @thread_safety any  @since 0.3.0 */
FDN_API const char *fdn_registry_instance_meta(const fdn_registry_instance_t *i, const char *key);
/**
 * Entries as a JSON array, as `GET /v1/registry` and `fdn registry list --json` show them: one
 * {"service", "instance", "endpoint", "owner", "lease", "mod_revision", "meta": {key: value}}
 * object per entry, in the order given.
 * @param[in]  v    snapshots (from fdn_registry_list_shared; NULL when n is 0)
 * @param[in]  n    how many
 * @param[out] out  NUL-terminated JSON, free with fdn_free
 * @return 0, FDN_EINVAL (out NULL, or v NULL with n > 0), FDN_ENOMEM
 * @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_registry_instances_json(fdn_registry_instance_t *const *v, size_t n, char **out);

/** Counters and state of the shared part (fdn_registry_shared_stats). */
typedef struct fdn_registry_shared_stats {
    uint32_t version;          /**< FDN_REGISTRY_SHARED_STATS_VERSION (set by the caller) */
    bool stale;                /**< the cache is not following etcd now */
    bool lease_ok;             /**< the last keepalive (or grant) succeeded */
    int64_t lease_id;          /**< the current lease (0: none) */
    int64_t lease_ttl_s;       /**< its TTL in seconds */
    int64_t revision;          /**< the etcd revision the cache reflects */
    size_t entries;            /**< entries in the cache */
    size_t owned;              /**< entries this process registered */
    uint64_t bad_values;       /**< values left out of the cache (not JSON, too large, bad key) */
    uint64_t relists;          /**< ranges that (re)filled the cache, the first included */
    uint64_t compactions;      /**< watches ended because their revision was compacted */
    uint64_t watch_errors;     /**< watches that ended otherwise (etcd away, bad message) */
    uint64_t lease_grants;     /**< leases granted, the first included */
    uint64_t reregistrations;  /**< entries written again: under a new lease, or after
                                    another tool deleted them */
    uint64_t lost;             /**< entries not re-registered: another process took the name */
    uint64_t keepalive_errors; /**< keepalives that failed */
} fdn_registry_shared_stats_t;

/** Current version of fdn_registry_shared_stats_t (the caller sets it before asking). */
#define FDN_REGISTRY_SHARED_STATS_VERSION 1

/**
 * Read the shared part's counters.
 * @param[in]  reg  the registry
 * @param[out] out  filled (out->version must be FDN_REGISTRY_SHARED_STATS_VERSION)
 * @return 0, FDN_EINVAL, FDN_ENOTSUP (no shared part)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_registry_shared_stats(fdn_registry_t *reg, fdn_registry_shared_stats_t *out);

/**
 * Is the shared cache stale (not following etcd now)? False without a shared part.
 * @param[in] reg the registry
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API bool fdn_registry_shared_stale(fdn_registry_t *reg);

/**
 * Does this registry have a shared part (made by fdn_registry_open)?
 * @param[in] reg the registry
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API bool fdn_registry_is_shared(const fdn_registry_t *reg);

FDN_END_DECLS

#endif /* FDN_REGISTRY_H */
