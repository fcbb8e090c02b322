/*
 * DESIGN: the table of built-in services the runtime creates and supervises, one slot per
 * service in the reference's start order (see src/core/runtime_int.h for how to fill a slot).
 * Pure data: no threads, no locks, no state. A slot with a NULL `create` is absent; until the
 * config, event store, telemetry, pool and limiter modules are merged every slot is absent.
 */
#include "core/runtime_int.h"

const fdn__rt_builtin_t fdn__rt_builtins[FDN__RT_SLOT_COUNT] = {
    [FDN__RT_CONFIG] = {"config_server", NULL, NULL, NULL, NULL, NULL, FDN_RESTART_PERMANENT},
    [FDN__RT_EVENTS] = {"event_store", NULL, NULL, NULL, NULL, NULL, FDN_RESTART_PERMANENT},
    [FDN__RT_TELEMETRY] = {"telemetry_service", NULL, NULL, NULL, NULL, NULL,
                           FDN_RESTART_PERMANENT},
    [FDN__RT_CONNMGR] = {"connection_manager", NULL, NULL, NULL, NULL, NULL, FDN_RESTART_PERMANENT},
    [FDN__RT_LIMITER] = {"rate_limiter", NULL, NULL, NULL, NULL, NULL, FDN_RESTART_PERMANENT},
};
