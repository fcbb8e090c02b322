/* The breaker around an etcd client (infra/etcd_guard.c, built with FDN_WITH_ETCD): the
 * client (storage/etcd_client.h) asks a guard before every call; this one is an fdn_breaker. */
#ifndef FDN_INFRA_ETCD_GUARD_H
#define FDN_INFRA_ETCD_GUARD_H

#include "storage/etcd_client.h"

/* Put every call of c behind a breaker named "etcd.<client>": 3 transport failures within
 * 10 s open it, a probe goes out after 500 ms (its bound: twice the client's timeout + 100
 * ms). 0, FDN_EBUSY (c has a guard), FDN_ENOMEM. Any thread. */
int fdn__etcd_guard_breaker(fdn__etcd_t *c, const char *client);

/* The breaker that fdn__etcd_guard_breaker installed on c, or NULL (no guard, or another one):
 * for tests and tools (its status; forcing it open). Valid while c lives. Any thread. */
struct fdn_breaker *fdn__etcd_guard_breaker_of(const fdn__etcd_t *c);

#endif
