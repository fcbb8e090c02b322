/* The registry's hook for its shared part (infra/registry_shared.c): the core keeps an opaque
 * state and calls its destroy function first in fdn_registry_destroy. */
#ifndef FDN_CORE_REGISTRY_INT_H
#define FDN_CORE_REGISTRY_INT_H

#include <fdn/registry.h>

/* Attach the shared part (once, right after create, before the registry is shared). */
void fdn__registry_set_shared(fdn_registry_t *reg, void *state, void (*destroy)(void *state));

/* The shared part's state, or NULL. */
void *fdn__registry_shared(const fdn_registry_t *reg);

#endif
