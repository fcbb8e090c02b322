/*
 * DESIGN: the shared registry's public functions (include/fdn/registry.h, "The shared
 * registry"): argument checks, then dispatch to the backend attached to the registry by
 * fdn_registry_open (core/registry_int.h holds its state opaquely). The one backend is etcd
 * (infra/registry_etcd.c), built with FDN_WITH_ETCD; without it fdn_registry_open answers
 * FDN_ENOTSUP and nothing here refers to etcd.
 *
 * Entry snapshots (struct fdn_registry_instance, infra/registry_shared.h) are immutable and
 * ref-counted: the accessors below read them without locks.
 *
 * Threads and locks: none of its own.
 */
#include <stdatomic.h>
#include <string.h>

#include <jansson.h>

#include <fdn/registry.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "core/registry_int.h"
#include "infra/registry_shared.h"

uint64_t fdn__registry_instance_hash(const char *service, size_t slen, const char *instance,
                                     size_t ilen)
{
    return fdn__hash(service, slen) ^ (fdn__hash(instance, ilen) * 0x9E3779B97F4A7C15ull);
}

void fdn__registry_instance_ref(fdn_registry_instance_t *i)
{
    atomic_fetch_add_explicit(&i->refs, 1, memory_order_relaxed);
}

void fdn__registry_instance_unref(fdn_registry_instance_t *i)
{
    if (i == NULL)
        return;
    uint64_t prev = atomic_fetch_sub_explicit(&i->refs, 1, memory_order_acq_rel);
    FDN_ASSERT(prev >= 1);
    if (prev == 1)
        fdn__free(i);
}

static bool ns_ok(const char *ns)
{
    return ns == NULL || (ns[0] != '\0' && strchr(ns, '/') == NULL);
}

int fdn_registry_open(fdn_registry_t **out, const fdn_registry_opts_t *opts,
                      const fdn_registry_etcd_opts_t *etcd, fdn_error_t *err)
{
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "out is NULL");
    *out = NULL;
    if (etcd == NULL || etcd->version == 0 || etcd->version > FDN_REGISTRY_ETCD_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "etcd options missing or of an unknown version");
    if (etcd->url == NULL)
        return fdn_err_set(err, FDN_EINVAL, "etcd options: url is required");
    const char *ns = opts != NULL ? opts->name : NULL;
    if (!ns_ok(ns))
        return fdn_err_set(err, FDN_EINVAL, "namespace \"%s\" must be non-empty without '/'", ns);
#ifdef FDN_HAVE_ETCD
    fdn_registry_t *reg = NULL;
    int rc = fdn_registry_create(&reg, opts);
    if (rc < 0)
        return fdn_err_set(err, rc, "creating the registry");
    fdn__regetcd_t *st = NULL;
    rc = fdn__regetcd_create(&st, fdn_registry_name(reg), etcd, err);
    if (rc < 0) {
        fdn_registry_destroy(reg);
        return rc;
    }
    fdn__registry_set_shared(reg, st, fdn__regetcd_destroy);
    *out = reg;
    return 0;
#else
    return fdn_err_set(err, FDN_ENOTSUP,
                       "this libfdn was built without the etcd backend (FDN_WITH_ETCD=OFF)");
#endif
}

static bool name_ok(const char *s)
{
    return s != NULL && s[0] != '\0' &&
           strnlen(s, FDN_REGISTRY_NAME_MAX + 1) <= FDN_REGISTRY_NAME_MAX && strchr(s, '/') == NULL;
}

#ifdef FDN_HAVE_ETCD
static fdn__regetcd_t *shared_of(fdn_registry_t *reg)
{
    return fdn__registry_shared(reg);
}
#endif

static int no_shared(fdn_registry_t *reg, fdn_error_t *err)
{
    return fdn_err_set(err, FDN_ENOTSUP, "registry %s has no shared part (fdn_registry_open)",
                       fdn_registry_name(reg));
}

int fdn_registry_register_shared(fdn_registry_t *reg, const char *service, const char *instance,
                                 const char *endpoint, const fdn_registry_meta_t *meta,
                                 size_t nmeta, fdn_error_t *err)
{
    if (reg == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry is NULL");
    if (!name_ok(service) || !name_ok(instance))
        return fdn_err_set(err, FDN_EINVAL,
                           "service and instance names must be 1..%d bytes without '/'",
                           FDN_REGISTRY_NAME_MAX);
    if (endpoint == NULL)
        return fdn_err_set(err, FDN_EINVAL, "endpoint of %s/%s is NULL", service, instance);
    if (nmeta > FDN_REGISTRY_META_MAX || (nmeta > 0 && meta == NULL))
        return fdn_err_set(err, FDN_EINVAL, "at most %d metadata pairs", FDN_REGISTRY_META_MAX);
    for (size_t i = 0; i < nmeta; i++)
        if (meta[i].key == NULL || meta[i].key[0] == '\0' || meta[i].value == NULL)
            return fdn_err_set(err, FDN_EINVAL, "metadata pair %zu has no key or value", i);
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL)
        return fdn__regetcd_register(st, service, instance, endpoint, meta, nmeta, err);
#endif
    return no_shared(reg, err);
}

int fdn_registry_unregister_shared(fdn_registry_t *reg, const char *service, const char *instance,
                                   fdn_error_t *err)
{
    if (reg == NULL || service == NULL || instance == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry, service or instance is NULL");
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL)
        return fdn__regetcd_unregister(st, service, instance, err);
#endif
    return no_shared(reg, err);
}

int fdn_registry_lookup_shared(fdn_registry_t *reg, const char *service, const char *instance,
                               fdn_registry_instance_t **out, fdn_error_t *err)
{
    if (out != NULL)
        *out = NULL;
    if (reg == NULL || service == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "registry, service or out is NULL");
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL) {
        int rc = fdn__regetcd_lookup(st, service, instance, out);
        if (rc == FDN_ESERVICE_NOT_FOUND && err != NULL) {
            const char *ns = fdn_registry_name(reg);
            fdn_err_set(err, rc, "Service %s%s%s not found in shared namespace %s", service,
                        instance ? "/" : "", instance ? instance : "", ns);
            fdn_err_add_context(err, "namespace", "%s", ns);
            fdn_err_add_context(err, "service", "%s", service);
        }
        return rc;
    }
#endif
    return no_shared(reg, err);
}

int fdn_registry_list_shared(fdn_registry_t *reg, const char *service,
                             fdn_registry_instance_t ***out, size_t *out_count)
{
    if (out != NULL)
        *out = NULL;
    if (out_count != NULL)
        *out_count = 0;
    if (reg == NULL || out == NULL || out_count == NULL)
        return FDN_EINVAL;
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL)
        return fdn__regetcd_list(st, service, out, out_count);
#endif
    (void)service;
    return FDN_ENOTSUP;
}

void fdn_registry_instances_free(fdn_registry_instance_t **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        fdn__registry_instance_unref(v[i]);
    fdn__free(v);
}

int fdn_registry_shared_stats(fdn_registry_t *reg, fdn_registry_shared_stats_t *out)
{
    if (reg == NULL || out == NULL || out->version != FDN_REGISTRY_SHARED_STATS_VERSION)
        return FDN_EINVAL;
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL) {
        fdn__regetcd_stats(st, out);
        return 0;
    }
#endif
    return FDN_ENOTSUP;
}

bool fdn_registry_shared_stale(fdn_registry_t *reg)
{
#ifdef FDN_HAVE_ETCD
    fdn__regetcd_t *st = shared_of(reg);
    if (st != NULL)
        return fdn__regetcd_stale(st);
#endif
    (void)reg;
    return false;
}

void fdn_registry_instance_release(fdn_registry_instance_t *i)
{
    fdn__registry_instance_unref(i);
}

const char *fdn_registry_instance_service(const fdn_registry_instance_t *i)
{
    return i ? i->service : "";
}

const char *fdn_registry_instance_name(const fdn_registry_instance_t *i)
{
    return i ? i->instance : "";
}

const char *fdn_registry_instance_endpoint(const fdn_registry_instance_t *i)
{
    return i ? i->endpoint : "";
}

const char *fdn_registry_instance_owner(const fdn_registry_instance_t *i)
{
    return i ? i->owner : "";
}

int64_t fdn_registry_instance_lease(const fdn_registry_instance_t *i)
{
    return i ? i->lease : 0;
}

int64_t fdn_registry_instance_mod_revision(const fdn_registry_instance_t *i)
{
    return i ? i->mod_revision : 0;
}

size_t fdn_registry_instance_meta_count(const fdn_registry_instance_t *i)
{
    return i ? i->nmeta : 0;
}

int fdn_registry_instance_meta_at(const fdn_registry_instance_t *i, size_t k, const char **key,
                                  const char **value)
{
    if (i == NULL || k >= i->nmeta)
        return FDN_ENOENT;
    if (key != NULL)
        *key = i->meta[2 * k];
    if (value != NULL)
        *value = i->meta[2 * k + 1];
    return 0;
}

const char *fdn_registry_instance_meta(const fdn_registry_instance_t *i, const char *key)
{
    if (i == NULL || key == NULL)
        return NULL;
    for (size_t k = 0; k < i->nmeta; k++)
        if (strcmp(i->meta[2 * k], key) == 0)
            return i->meta[2 * k + 1];
    return NULL;
}

/* One instance as JSON, or NULL (out of memory): never one with a member left out. */
static json_t *instance_json(const fdn_registry_instance_t *i)
{
    json_t *meta = json_object();
    for (size_t k = 0; meta != NULL && k < i->nmeta; k++)
        if (json_object_set_new(meta, i->meta[2 * k], json_string(i->meta[2 * k + 1])) != 0) {
            json_decref(meta);
            return NULL;
        }
    if (meta == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "service", i->service, "instance",
                     i->instance, "endpoint", i->endpoint, "owner", i->owner, "lease",
                     (json_int_t)i->lease, "mod_revision", (json_int_t)i->mod_revision, "meta",
                     meta);
}

int fdn_registry_instances_json(fdn_registry_instance_t *const *v, size_t n, char **out)
{
    if (out == NULL || (v == NULL && n > 0))
        return FDN_EINVAL;
    *out = NULL;
    json_t *arr = json_array();
    int rc = arr != NULL ? 0 : FDN_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (json_array_append_new(arr, instance_json(v[i])) != 0)
            rc = FDN_ENOMEM; /* (a NULL instance is refused by the append) */
    if (rc == 0)
        rc = fdn_json_dumps(arr, JSON_COMPACT, out, NULL);
    json_decref(arr);
    return rc;
}
