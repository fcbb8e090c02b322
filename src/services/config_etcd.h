/* The config service's etcd follower (services/config_etcd.c, built with FDN_WITH_ETCD); the
 * public entry points are in services/config_remote.c. */
#ifndef FDN_SERVICES_CONFIG_ETCD_H
#define FDN_SERVICES_CONFIG_ETCD_H

#include <fdn/config.h>

/* Range the namespace, apply it, start the watch thread and attach to cfg. 0 or an error. */
int fdn__config_etcd_follow(fdn_config_t *cfg, const fdn_config_etcd_opts_t *o, fdn_error_t *err);

/* Fill out (but its version); FDN_ENOTSUP when cfg does not follow etcd. */
int fdn__config_etcd_stats(fdn_config_t *cfg, fdn_config_etcd_stats_t *out);

/* The follower's etcd client (its metrics and breaker), NULL when cfg does not follow etcd. */
struct fdn__etcd *fdn__config_etcd_client(fdn_config_t *cfg);

#endif
