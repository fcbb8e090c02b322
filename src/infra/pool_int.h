/* Private interface of the pool manager for the runtime's supervisor. */
#ifndef FDN_INFRA_POOL_INT_H
#define FDN_INFRA_POOL_INT_H

#include <fdn/pool.h>

/* Shared between pool.c and pool_manager.c: 0 when size/max_overflow/strategy form a valid
 * pool (size >= 0, max_overflow >= 0, not both 0, lifo or fifo), else FDN_EINVAL. */
int fdn__pool_check_sizes(int size, int max_overflow, fdn_pool_strategy_t s);

/* Resume serving calls after fdn__pools_service_stop. Pools and their workers survive a
 * stop/start cycle. Returns 0 (or FDN_EINVAL for NULL). */
int fdn__pools_service_start(fdn_pools_t *m);
/* While stopped every fdn_pools_* call returns FDN_EUNAVAILABLE at once. Pools already held
 * by callers keep working. */
void fdn__pools_service_stop(fdn_pools_t *m);
/* 0 = healthy (started), FDN_EUNAVAILABLE when stopped. */
int fdn__pools_service_health(fdn_pools_t *m);

#endif
