/* A config apply hook through which the runtime's services refuse a value: it wraps the
 * runtime's own hook (fdn__cfg_apply_hook_t, services/config_int.h) and, when the value of
 * interface.max_results is `value`, hands the runtime's hook, in both steps a service is asked
 * in, `apply` (the push of an update of interface.max_results, or of a change a remote store
 * brings, or of a reset: path NULL) and `check` (an update of a config following etcd, before
 * it is written there), the snapshot with 4294967296 in its place: a value the event store refuses
 * (its cap is 32 bits) and that the schema keeps from coming by. So the refusal of `value` is the
 * runtime's own, with its error (FDN_EINVAL, "event_store refused the setting
 * interface.max_results: ...", context path= and service=event_store), as is all that follows it
 * (the config's `refused`, the event config_update_refused, the counter
 * foundation.config.service_refused; for a reset, which is not refused, the config's `apply_failed`
 * and the event config_apply_failed). Every other update goes to the runtime's hook as it is.
 *
 * Why: the schema bounds every value a service would refuse (interface.max_results above
 * 4294967295 was the last), so no real value reaches a service's refusal any more; a test of
 * what a refusal does needs one.
 *
 * Use: test_refusing_hook_t h; test_refusing_hook_install(&h, cfg, 4242); ...
 * test_refusing_hook_remove(&h) (puts the runtime's hook back). h must stay where it is until
 * removed, and until no thread of the config still runs in it: a change from etcd is applied
 * and refused on the follower's thread, so keep h until the runtime is destroyed. */
#ifndef FDN_TEST_REFUSING_HOOK_H
#define FDN_TEST_REFUSING_HOOK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/config.h>
#include <fdn/runtime.h>

#include "services/config_int.h"

typedef struct test_refusing_hook {
    fdn_config_t *cfg;
    fdn__cfg_apply_hook_t rt;    /* the runtime's hook, installed at its create */
    int64_t value;               /* the interface.max_results the runtime is made to refuse */
    atomic_int applied_refusals; /* refusals of `value` by the runtime's `apply` (resets too) */
    atomic_int checked_refusals; /* refusals of `value` by the runtime's `check` */
    atomic_int checks;           /* calls of `check` */
} test_refusing_hook_t;

/* Wraps cfg's apply hook (which must be installed: a runtime's config) into h; the runtime
 * refuses interface.max_results = value (> 0). */
void test_refusing_hook_install(test_refusing_hook_t *h, fdn_config_t *cfg, int64_t value);

/* Puts the runtime's hook back. */
void test_refusing_hook_remove(test_refusing_hook_t *h);

/* Counts the runtime's foundation.config.service_refused into *refused (from 0). Returns the
 * telemetry handler's id: the caller detaches it before *refused goes. */
uint64_t test_refusals_counted(fdn_runtime_t *rt, atomic_int *refused);

/* The runtime's events config_update_refused (up to 100): their number, and the data of the
 * newest (newest_first) or of the oldest into data ("" when there is none). */
size_t test_refusal_events(fdn_runtime_t *rt, bool newest_first, char *data, size_t cap);

/* The same for the runtime's events of type `type` (config_apply_failed, say). */
size_t test_events_of(fdn_runtime_t *rt, const char *type, bool newest_first, char *data,
                      size_t cap);

#endif
