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
 * Waits for pending deferred frees. NULL accepted.
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
 * @return 0, FDN_ETIMEDOUT, FDN_EINVAL
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
 * Remove every registration whose owner is `owner` (owner 0 matches nothing).
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
 *                        fdn_free; do not free the strings); NULL when the count is 0
 * @param[out] out_count  number of names
 * @param[in] reg the registry
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any  @ownership caller frees *out_names with fdn_free
 * @since 0.1.0
 */
FDN_API int fdn_registry_list(fdn_registry_t *reg, char ***out_names, size_t *out_count);

FDN_END_DECLS

#endif /* FDN_REGISTRY_H */
