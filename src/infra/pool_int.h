/* Private interface of the pool manager for the runtime's supervisor. */
#ifndef FDN_INFRA_POOL_INT_H
#define FDN_INFRA_POOL_INT_H

#include <fdn/pool.h>

/* Resume serving calls after fdn__pools_service_stop. Pools and their workers survive a
 * stop/start cycle. Returns 0 (or FDN_EINVAL for NULL). */
int fdn__pools_service_start(fdn_pools_t *m);
/* While stopped every fdn_pools_* call returns FDN_EUNAVAILABLE at once. Pools already held
 * by callers keep working. */
void fdn__pools_service_stop(fdn_pools_t *m);
/* 0 = healthy (started), FDN_EUNAVAILABLE when stopped. */
int fdn__pools_service_health(fdn_pools_t *m);

#endif
