/*
 * DESIGN: the public entry points of a config service following etcd
 * (include/fdn/config.h, "following etcd"): argument checks, then the follower of
 * services/config_etcd.c, built with FDN_WITH_ETCD; without it they answer FDN_ENOTSUP and
 * nothing here refers to etcd. Threads and locks: none of its own.
 */
#include <string.h>

#include <fdn/config.h>

#include "services/config_etcd.h"
#include "services/config_int.h"

int fdn_config_follow_etcd(fdn_config_t *cfg, const fdn_config_etcd_opts_t *o, fdn_error_t *err)
{
    if (cfg == NULL || o == NULL || o->version == 0 || o->version > FDN_CONFIG_ETCD_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL,
                           "config or etcd options missing, or of an unknown "
                           "version");
    if (o->url == NULL)
        return fdn_err_set(err, FDN_EINVAL, "etcd options: url is required");
    if (!fdn_config_available(cfg))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
#ifdef FDN_HAVE_ETCD
    return fdn__config_etcd_follow(cfg, o, err);
#else
    return fdn_err_set(err, FDN_ENOTSUP,
                       "this libfdn was built without the etcd backend (FDN_WITH_ETCD=OFF)");
#endif
}

int fdn_config_etcd_stats(fdn_config_t *cfg, fdn_config_etcd_stats_t *out)
{
    if (cfg == NULL || out == NULL || out->version != FDN_CONFIG_ETCD_STATS_VERSION)
        return FDN_EINVAL;
#ifdef FDN_HAVE_ETCD
    return fdn__config_etcd_stats(cfg, out);
#else
    return FDN_ENOTSUP;
#endif
}
