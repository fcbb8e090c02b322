/* The etcd client (storage layer): the v3 JSON gateway of etcd 3.4 over libcurl. Range, put,
 * create-if-absent, delete, compaction, leases, and a watch stream. It keeps no policy:
 * caching, re-registration and staleness belong to the backends above it
 * (infra/registry_etcd.c).
 *
 * Every call is bounded by the client's timeout (connect included) and answers a clear code:
 * FDN_ECONNREFUSED (nothing listens), FDN_ETIMEDOUT, FDN_ENETWORK (another transport failure),
 * FDN_EPARSE (the answer is not what the gateway writes), FDN_EEXTERNAL (etcd refused the
 * request; its message in err), FDN_ETOO_LARGE (etcd: request too large), FDN_ENOMEM.
 *
 * Threads: a client may be used by any number of threads at once (each call takes an idle
 * curl handle from a small stack, or makes one). A watch runs on the thread that calls
 * fdn__etcd_watch_run; fdn__etcd_watch_stop may be called from any thread. */
#ifndef FDN_STORAGE_ETCD_CLIENT_H
#define FDN_STORAGE_ETCD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/error.h>

#include "logic/etcd_codec.h"

typedef struct fdn__etcd fdn__etcd_t;

/* Create a client for url (http://host:port, checked by fdn__etcd_url_check); timeout_ms
 * bounds every call (>= 1). No connection is made here. 0, FDN_EINVAL, FDN_ENOMEM. */
int fdn__etcd_create(fdn__etcd_t **out, const char *url, int64_t timeout_ms, fdn_error_t *err);
void fdn__etcd_destroy(fdn__etcd_t *c);

/* A guard around every call of a client (infra/etcd_guard.c: an fdn_breaker). admit: 0 lets
 * the call go (permit filled, done follows once), non-zero rejects it (no request; the call
 * answers the transport error done was told last). done: rc is 0 or the call's transport
 * error. state: the breaker's state (fdn_breaker_state_t). destroy: with the client. */
typedef struct fdn__etcd_permit {
    uint64_t a;
    int64_t b;
} fdn__etcd_permit_t;
typedef struct fdn__etcd_guard_ops {
    int (*admit)(void *g, fdn__etcd_permit_t *permit);
    void (*done)(void *g, const fdn__etcd_permit_t *permit, int rc);
    int (*state)(void *g);
    void (*destroy)(void *g);
} fdn__etcd_guard_ops_t;

/* Install the client's guard (once; the client owns g from then on, also on FDN_EBUSY it does
 * not: the caller keeps g then). Any thread: calls already under way go unguarded. 0,
 * FDN_EBUSY (a guard is installed), FDN_ENOMEM. */
int fdn__etcd_set_guard(fdn__etcd_t *c, const fdn__etcd_guard_ops_t *ops, void *g);

/* The guard's state (fdn_breaker_state_t), -1 when the client has no guard. Any thread. */
int fdn__etcd_guard_state(const fdn__etcd_t *c);

/* The client's guard object, and its ops in *ops (may be NULL); NULL when it has none. Valid
 * while c lives. Any thread. */
void *fdn__etcd_guard(const fdn__etcd_t *c, const fdn__etcd_guard_ops_t **ops);

/* Latency of the client's calls (any thread), per operation and outcome: cumulative counts
 * per bound (seconds: 0.001 0.0025 0.005 0.01 0.025 0.1 1) then the total, and the sum. */
enum {
    FDN__ETCD_OP_RANGE,
    FDN__ETCD_OP_PUT,
    FDN__ETCD_OP_TXN,
    FDN__ETCD_OP_DELETE,
    FDN__ETCD_OP_COMPACTION,
    FDN__ETCD_OP_LEASE_GRANT,
    FDN__ETCD_OP_LEASE_KEEPALIVE,
    FDN__ETCD_OP_LEASE_REVOKE,
    FDN__ETCD_OPS
};
enum {
    FDN__ETCD_OK,          /* etcd answered */
    FDN__ETCD_REFUSED,     /* etcd answered with an error (or an unreadable answer) */
    FDN__ETCD_TIMEOUT,     /* the call's bound passed */
    FDN__ETCD_UNREACHABLE, /* connection refused, another transport failure */
    FDN__ETCD_REJECTED,    /* the breaker was open: no request */
    FDN__ETCD_OUTCOMES
};
#define FDN__ETCD_LAT_BOUNDS 7
typedef struct fdn__etcd_lat {
    uint64_t le[FDN__ETCD_LAT_BOUNDS + 1];
    uint64_t sum_us;
} fdn__etcd_lat_t;
void fdn__etcd_latency(fdn__etcd_t *c, int op, int outcome, fdn__etcd_lat_t *out);
const char *fdn__etcd_op_name(int op);
const char *fdn__etcd_outcome_name(int outcome);

/* The client's base URL (no trailing '/'). */
const char *fdn__etcd_url(const fdn__etcd_t *c);

/* The bound of every call (ms). */
int64_t fdn__etcd_timeout_ms(const fdn__etcd_t *c);

/* Range [key, range_end) (range_end NULL: the key alone; "" with relen 0 is not allowed). */
int fdn__etcd_range(fdn__etcd_t *c, const char *key, size_t keylen, const char *range_end,
                    size_t relen, fdn__etcd_range_t *out, fdn_error_t *err);

/* Put key = value (lease 0: none). *revision (may be NULL) gets the store's new revision. */
int fdn__etcd_put(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                  size_t valuelen, int64_t lease, int64_t *revision, fdn_error_t *err);

/* Put key = value only if the key does not exist (a txn on create_revision == 0). On success
 * *created tells which; when it existed, *existing (may be NULL) gets its record (clear it
 * with fdn__etcd_kv_clear). */
int fdn__etcd_put_if_absent(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                            size_t valuelen, int64_t lease, bool *created, fdn__etcd_kv_t *existing,
                            int64_t *revision, fdn_error_t *err);

/* fdn__etcd_put_if_absent bounded by timeout_ms when that is shorter than the client's timeout
 * (0: the client's): a write that must leave time for a lease's keepalive. */
int fdn__etcd_put_if_absent_within(fdn__etcd_t *c, int64_t timeout_ms, const char *key,
                                   size_t keylen, const char *value, size_t valuelen, int64_t lease,
                                   bool *created, fdn__etcd_kv_t *existing, int64_t *revision,
                                   fdn_error_t *err);

/* Put key = value only if the key's mod_revision is mod_revision (0: the key does not exist):
 * a compare-and-swap. *done tells whether it was written; when not, *existing (may be NULL)
 * gets the key's current record (key NULL when the key does not exist). */
int fdn__etcd_put_if_mod(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                         size_t valuelen, int64_t mod_revision, bool *done,
                         fdn__etcd_kv_t *existing, int64_t *revision, fdn_error_t *err);

/* fdn__etcd_put_if_mod that, in the same txn (one revision), also deletes every other key of
 * [from, range_end) (key must be in that range): a reset of a namespace leaving one marker. */
int fdn__etcd_put_if_mod_clearing(fdn__etcd_t *c, const char *key, size_t keylen, const char *value,
                                  size_t valuelen, int64_t mod_revision, const char *from,
                                  size_t fromlen, const char *range_end, size_t relen, bool *done,
                                  fdn__etcd_kv_t *existing, int64_t *revision, fdn_error_t *err);

/* Delete key only if its create_revision is still create_rev (so that an entry someone else
 * made since is left alone). *deleted tells whether it was. */
int fdn__etcd_delete_if_created(fdn__etcd_t *c, const char *key, size_t keylen, int64_t create_rev,
                                bool *deleted, fdn_error_t *err);

/* Delete key only if it is attached to lease (a compare on its lease: etcd 3.3 and later), so
 * that an entry under another lease, or none, is left alone. *deleted tells whether it was. */
int fdn__etcd_delete_if_lease(fdn__etcd_t *c, const char *key, size_t keylen, int64_t lease,
                              bool *deleted, fdn_error_t *err);

/* Delete [key, range_end) (range_end NULL: the key alone). *deleted (may be NULL): how many. */
int fdn__etcd_delete(fdn__etcd_t *c, const char *key, size_t keylen, const char *range_end,
                     size_t relen, int64_t *deleted, fdn_error_t *err);

/* Compact the key history up to revision (tests and tools). A history already compacted past
 * revision (by another client) is no error. */
int fdn__etcd_compact(fdn__etcd_t *c, int64_t revision, fdn_error_t *err);

/* Grant a lease of ttl_s seconds: *id and *ttl_granted (may be NULL). */
int fdn__etcd_lease_grant(fdn__etcd_t *c, int64_t ttl_s, int64_t *id, int64_t *ttl_granted,
                          fdn_error_t *err);

/* Refresh lease id once, bounded by timeout_ms when that is shorter than the client's timeout
 * (0: the client's; a keepalive must give up while the lease still has time for another).
 * *ttl gets its remaining TTL in seconds; 0 means the lease is gone (expired or revoked): the
 * call itself succeeded. */
int fdn__etcd_lease_keepalive(fdn__etcd_t *c, int64_t id, int64_t timeout_ms, int64_t *ttl,
                              fdn_error_t *err);

/* Revoke lease id (its keys are deleted). An unknown lease is FDN_EEXTERNAL. unguarded: the
 * call goes out whatever the guard says (a last call at shutdown) and is not reported to it. */
int fdn__etcd_lease_revoke(fdn__etcd_t *c, int64_t id, bool unguarded, fdn_error_t *err);

/* ---- watch stream -------------------------------------------------------------------------- */

typedef struct fdn__etcd_watch fdn__etcd_watch_t;

/* Called on the watch's thread for every message; return non-zero to end the watch. */
typedef int (*fdn__etcd_watch_fn)(const fdn__etcd_watch_msg_t *m, void *user);

int fdn__etcd_watch_create(fdn__etcd_watch_t **out);
void fdn__etcd_watch_destroy(fdn__etcd_watch_t *w);

/*
 * Watch [key, range_end) from start_revision on the calling thread, until the stream ends
 * (etcd went away: FDN_ENETWORK / FDN_ECONNREFUSED), a message cannot be parsed (FDN_EPARSE),
 * a line passes max_line bytes (FDN_ETOO_LARGE), fn returns non-zero (returns 0) or
 * fdn__etcd_watch_stop was called (FDN_ECANCELED). The connect and etcd's confirmation of the
 * watch (its first message) are bounded by the client's timeout (FDN_ETIMEDOUT: a server that
 * accepts and never answers); the stream itself has no time limit. One run at a time per
 * watch object.
 */
int fdn__etcd_watch_run(fdn__etcd_watch_t *w, fdn__etcd_t *c, const char *key, size_t keylen,
                        const char *range_end, size_t relen, int64_t start_revision,
                        size_t max_line, fdn__etcd_watch_fn fn, void *user, fdn_error_t *err);

/* Make the current and every later fdn__etcd_watch_run of w return FDN_ECANCELED promptly.
 * Any thread. */
void fdn__etcd_watch_stop(fdn__etcd_watch_t *w);

/* Make the current run (or, when none runs, the next one) return FDN_ECANCELED once. Any
 * thread. */
void fdn__etcd_watch_interrupt(fdn__etcd_watch_t *w);

#endif
