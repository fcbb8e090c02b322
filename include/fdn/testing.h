/**
 * @file testing.h
 * @brief Per-test runtimes for users' own test suites (the reference's isolated test
 *        namespaces): one call creates an isolated runtime driven by a manual clock,
 *        one call destroys it and checks that nothing it owned leaked.
 *
 * Each test runtime has a unique name ("test-<uuid>"), its own manual clock (start: monotonic
 * 1 s, wall = the real time at creation), no data directory (in-memory storage), and its own
 * registry, services and task pool; nothing is shared between test runtimes, so tests may
 * create and use them concurrently from many threads. Time moves only through
 * fdn_testing_advance (or fdn_clock_advance on fdn_runtime_clock(rt)).
 *
 * @since 0.1.0
 */
#ifndef FDN_TESTING_H
#define FDN_TESTING_H

#include "common.h"
#include "error.h"
#include "runtime.h"

FDN_BEGIN_DECLS

/**
 * Create and (unless base->flags has FDN_RUNTIME_NO_START) start a test runtime.
 * @param[out] out   the runtime
 * @param[in]  base  options to start from (NULL: defaults); name, clock and data_dir are
 *                   replaced as described above, everything else (config_path, intensity,
 *                   callbacks, flags...) is kept
 * @param[out] err   optional detail
 * @return 0, FDN_ENOMEM, FDN_EINVAL, FDN_EIO (no random source for the name), or any code of
 *         fdn_runtime_create
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_testing_runtime_create(fdn_runtime_t **out, const fdn_runtime_opts_t *base,
                                       fdn_error_t *err);

/**
 * Shut the test runtime down, check that it left nothing behind (no supervisor or worker
 * thread unjoined, no service still running, no registry entry made for a service, no task
 * queued or running), then destroy it and its manual clock. Only for runtimes made by
 * fdn_testing_runtime_create. NULL accepted (returns 0).
 * @return 0 when clean; FDN_ETIMEDOUT when the shutdown took longer than 100 s; FDN_EINTERNAL
 *         when something leaked (err says what). The runtime is destroyed in every case.
 * @thread_safety owner
 * @since 0.1.0
 */
FDN_API int fdn_testing_runtime_destroy(fdn_runtime_t *rt, fdn_error_t *err);

/**
 * Advance the test runtime's manual clock by delta_ns, then wait until its supervisor has
 * handled everything due (restarts, health polls) and is idle again.
 * @return 0, FDN_EINVAL (negative delta, not a test runtime), FDN_ETIMEDOUT (not idle within
 *         100 s of real time), FDN_ESHUTDOWN (runtime not running: the clock still moved)
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_testing_advance(fdn_runtime_t *rt, int64_t delta_ns);

/**
 * Wait until the test runtime's supervisor is idle (after a fault injection, for instance).
 * @return 0, FDN_ETIMEDOUT (100 s of real time), FDN_ESHUTDOWN
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_testing_settle(fdn_runtime_t *rt);

FDN_END_DECLS

#endif /* FDN_TESTING_H */
