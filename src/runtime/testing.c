/*
 * DESIGN: per-test runtimes (include/fdn/testing.h). Stateless: every test runtime owns its
 * manual clock and is named after a fresh UUIDv4, so concurrent tests share nothing and no
 * global counter is needed. The leak check reads the runtime's own accounting
 * (fdn__runtime_live) after shutdown, before freeing; memory leaks are left to ASan/LSan.
 * No threads, no locks of its own.
 */
#include <fdn/testing.h>

#include <string.h>

#include "runtime/runtime_int.h"

/* Real-time bound on every wait here (shutdown, settle, advance). It only has to catch a
 * runtime that never gets idle: a test runtime normally settles in milliseconds, but on a
 * loaded machine under a sanitizer a supervisor round can take seconds, and a tight bound
 * turns that into a spurious failure. 100 s stays just under ctest's 120 s stress/fault
 * TIMEOUT, so a truly stuck runtime still reports FDN_ETIMEDOUT (with a message) instead of
 * being killed by ctest. */
#define TEST_WAIT_MS 100000

int fdn_testing_runtime_create(fdn_runtime_t **out, const fdn_runtime_opts_t *base,
                               fdn_error_t *err)
{
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "testing: out is NULL");
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    if (base != NULL) {
        if (base->version != FDN_RUNTIME_OPTS_VERSION)
            return fdn_err_set(err, FDN_EINVAL, "testing: runtime options of unknown version");
        o = *base;
    }
    char uuid[FDN_UUID_STR_LEN + 1];
    int rc = fdn_uuid4(uuid);
    if (rc != 0)
        return fdn_err_set(err, rc, "testing: no random source for the runtime name");
    char name[8 + FDN_UUID_STR_LEN];
    memcpy(name, "test-", 5);
    memcpy(name + 5, uuid, FDN_UUID_STR_LEN + 1);
    fdn_clock_t *clock = NULL;
    rc = fdn_clock_manual_create(&clock, 1000000000LL, fdn_clock_wall_ns(NULL));
    if (rc != 0)
        return fdn_err_set(err, rc, "testing: cannot create a manual clock");
    o.name = name;
    o.clock = clock;
    o.data_dir = NULL;
    rc = fdn_runtime_create(out, &o, err);
    if (rc != 0)
        fdn_clock_destroy(clock);
    return rc;
}

int fdn_testing_runtime_destroy(fdn_runtime_t *rt, fdn_error_t *err)
{
    if (rt == NULL)
        return 0;
    fdn_clock_t *clock = fdn_runtime_clock(rt);
    int rc = fdn_runtime_shutdown(rt, TEST_WAIT_MS);
    if (rc != 0) {
        fdn_err_set(err, rc, "test runtime %s did not shut down within %d ms", fdn_runtime_name(rt),
                    TEST_WAIT_MS);
    } else {
        fdn__rt_live_t live;
        fdn__runtime_live(rt, &live);
        if (live.threads != 0 || live.running != 0 || live.registrations != 0 ||
            live.tasks_busy != 0) {
            rc = fdn_err_set(err, FDN_EINTERNAL,
                             "test runtime %s leaked: %zu threads, %zu running services, "
                             "%zu registrations, %llu busy tasks",
                             fdn_runtime_name(rt), live.threads, live.running, live.registrations,
                             (unsigned long long)live.tasks_busy);
        }
    }
    fdn_runtime_destroy(rt);
    if (fdn_clock_is_manual(clock))
        fdn_clock_destroy(clock);
    return rc;
}

int fdn_testing_settle(fdn_runtime_t *rt)
{
    if (rt == NULL)
        return FDN_EINVAL;
    return fdn_supervisor_wait_idle(fdn_runtime_supervisor(rt), TEST_WAIT_MS);
}

int fdn_testing_advance(fdn_runtime_t *rt, int64_t delta_ns)
{
    if (rt == NULL || !fdn_clock_is_manual(fdn_runtime_clock(rt)))
        return FDN_EINVAL;
    int rc = fdn_clock_advance(fdn_runtime_clock(rt), delta_ns);
    if (rc != 0)
        return rc;
    return fdn_testing_settle(rt);
}
