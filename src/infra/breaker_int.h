/* Private breaker interface (tests and diagnostics). */
#ifndef FDN_INFRA_BREAKER_INT_H
#define FDN_INFRA_BREAKER_INT_H

#include <fdn/breaker.h>

/* How many times fdn_breaker_get searched the set (each search takes the set's mutex). Lets
 * tests check that hot paths resolve breakers from their caches. */
uint64_t fdn__breakers_lookups(fdn_breakers_t *s);

/* How many option sets a breaker keeps alive (1 + re-installs; see fdn_breaker_install). */
size_t fdn__breaker_cfg_count(fdn_breaker_t *b);

#endif
