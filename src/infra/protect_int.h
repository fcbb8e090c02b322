/* Internal interface of protected execution (src/infra/protect.c) for the tests. */
#ifndef FDN_INFRA_PROTECT_INT_H
#define FDN_INFRA_PROTECT_INT_H

#include <fdn/protect.h>

/* Test hook: when set, a call (or fdn_protect_status) that found key's entry in the published
 * table calls it before taking a reference, inside its RCU read-side section (it may configure
 * or unconfigure, which only retire; it must not destroy). Set it only while no call runs. */
extern void (*fdn__protect_test_found)(fdn_protect_t *p, const char *key);

#endif
