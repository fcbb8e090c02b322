/* The shared registry (infra): the entry snapshot type every backend hands out, and the etcd
 * backend's entry points (infra/registry_etcd.c, built with FDN_WITH_ETCD). The public
 * functions of include/fdn/registry.h's shared part are in infra/registry_shared.c. */
#ifndef FDN_INFRA_REGISTRY_SHARED_H
#define FDN_INFRA_REGISTRY_SHARED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/registry.h>

#include "logic/etcd_codec.h"

/* Immutable once built, ref-counted; strings and the meta array follow in one allocation. */
struct fdn_registry_instance {
    _Atomic uint64_t refs;
    const char *service;
    const char *instance;
    const char *endpoint;
    const char *owner;
    int64_t lease;
    int64_t create_revision;
    int64_t mod_revision;
    uint64_t hash; /* fdn__registry_instance_hash(service, instance) */
    size_t nmeta;
    const char **meta; /* 2 * nmeta pointers: key, value, sorted by key */
};

void fdn__registry_instance_ref(fdn_registry_instance_t *i);

/* The hash of a (service, instance) pair, for the caches' indexes. */
uint64_t fdn__registry_instance_hash(const char *service, size_t slen, const char *instance,
                                     size_t ilen);
void fdn__registry_instance_unref(fdn_registry_instance_t *i);

/* Build a snapshot from an etcd record under prefix (prefix[0..prefixlen) is stripped; the
 * rest must be <service>/<instance>) whose value is {"endpoint", "owner", "meta"} JSON of at
 * most max_value bytes. Returns 0, FDN_EPARSE (not an entry: the caller counts it) or
 * FDN_ENOMEM. */
int fdn__registry_instance_from_kv(const char *prefix, size_t prefixlen, const fdn__etcd_kv_t *kv,
                                   size_t max_value, fdn_registry_instance_t **out);

/* The value JSON of an entry (a fresh string, fdn__free). 0, FDN_ENOMEM. */
int fdn__registry_value_json(const char *endpoint, const char *owner,
                             const fdn_registry_meta_t *meta, size_t nmeta, char **out,
                             size_t *len);

/* The etcd backend (defined only with FDN_WITH_ETCD). */
typedef struct fdn__regetcd fdn__regetcd_t;

int fdn__regetcd_create(fdn__regetcd_t **out, const char *ns, const fdn_registry_etcd_opts_t *o,
                        fdn_error_t *err);
void fdn__regetcd_destroy(void *state);
int fdn__regetcd_register(fdn__regetcd_t *r, const char *service, const char *instance,
                          const char *endpoint, const fdn_registry_meta_t *meta, size_t nmeta,
                          fdn_error_t *err);
int fdn__regetcd_unregister(fdn__regetcd_t *r, const char *service, const char *instance,
                            fdn_error_t *err);
int fdn__regetcd_lookup(fdn__regetcd_t *r, const char *service, const char *instance,
                        fdn_registry_instance_t **out);
int fdn__regetcd_list(fdn__regetcd_t *r, const char *service, fdn_registry_instance_t ***out,
                      size_t *n);
void fdn__regetcd_stats(fdn__regetcd_t *r, fdn_registry_shared_stats_t *out);
bool fdn__regetcd_stale(fdn__regetcd_t *r);
/* The backend's etcd client (its metrics and breaker: runtime/runtime_etcd_metrics.c). */
struct fdn__etcd *fdn__regetcd_client(fdn__regetcd_t *r);

/* Tests: pause (true) the watch thread, returning once it has left its watch and waits; resume
 * (false) lets it watch again from the cache's revision + 1, as after an outage. */
void fdn__regetcd_pause_watch(fdn__regetcd_t *r, bool pause);

/* Tests: wake the lease thread for a round (a keepalive) now rather than at its next period. */
void fdn__regetcd_keepalive_now(fdn__regetcd_t *r);

#endif
