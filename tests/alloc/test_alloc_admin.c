/* Failing-allocator sweep of include/fdn/admin.h (tests/alloc/README.md): the admin server's
 * create, its registrations (health checks, metrics, every mount of a component's routes),
 * bind and start. Every pass makes and destroys its own server; a failed mount leaves the
 * server without those routes, and a later mount of the same component succeeds. (Requests
 * are swept by the HTTP fault tests; libmicrohttpd allocates with malloc, outside the hook.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/admin.h>
#include <fdn/breaker.h>
#include <fdn/config.h>
#include <fdn/error.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/pool.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "alloc_sweep.h"

static const char *const no_env[] = {NULL};

static fdn_admin_t *mk(void)
{
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    fdn_admin_t *a = NULL;
    assert_int_equal(fdn_admin_create(&a, &o, NULL), 0);
    return a;
}

static int healthy(void *user)
{
    (void)user;
    return 0;
}

static int metrics(char **out, size_t *len, void *user)
{
    (void)user;
    *out = NULL;
    *len = 0;
    return 0;
}

static void sweep_server(void **state)
{
    (void)state;
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    o.token = "secret-token";
    SWEEP(sw, fdn_admin_create, 0)
    {
        fdn_admin_t *a = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_admin_create(&a, &o, NULL)))
            assert_null(a);
        else
            fdn_admin_destroy(a);
    }
    SWEEP(sw, fdn_admin_add_health, 0)
    {
        fdn_admin_t *a = mk();
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_admin_add_health(a, "db", healthy, NULL)))
            assert_int_equal(fdn_admin_add_health(a, "db", healthy, NULL), 0); /* not taken */
        fdn_admin_destroy(a);
    }
    SWEEP(sw, fdn_admin_add_metrics, 0)
    {
        fdn_admin_t *a = mk();
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_admin_add_metrics(a, metrics, NULL)))
            assert_int_equal(fdn_admin_add_metrics(a, metrics, NULL), 0);
        fdn_admin_destroy(a);
    }
    SWEEP(sw, fdn_admin_bind, SWEEP_NO_CALL_LEAK)
    {
        fdn_admin_t *a = mk();
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_admin_bind(a, NULL)))
            assert_int_not_equal(fdn_admin_port(a), 0);
        fdn_admin_destroy(a);
    }
    SWEEP(sw, fdn_admin_start, SWEEP_NO_CALL_LEAK)
    {
        fdn_admin_t *a = mk();
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_admin_start(a, NULL)))
            fdn_admin_shutdown(a);
        fdn_admin_destroy(a);
    }
}

/* A mount on a fresh server; a failed one can be made again (nothing half-mounted). */
#define MOUNT_SWEEP(fname, obj)                                                                    \
    SWEEP(sw, fname, 0)                                                                            \
    {                                                                                              \
        fdn_admin_t *a = mk();                                                                     \
        sweep_arm(&sw);                                                                            \
        if (sweep_failed(&sw, fname(a, obj)))                                                      \
            assert_int_equal(fname(a, obj), 0);                                                    \
        fdn_admin_destroy(a);                                                                      \
    }

static void sweep_mounts(void **state)
{
    (void)state;
    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.flags = FDN_RUNTIME_NO_START;
    ro.task_workers = 1;
    ro.envp = no_env;
    fdn_runtime_t *rt = NULL;
    assert_int_equal(fdn_runtime_create(&rt, &ro, NULL), 0);
    assert_int_equal(fdn_runtime_start(rt, NULL), 0);
    MOUNT_SWEEP(fdn_admin_mount_runtime, rt);
    MOUNT_SWEEP(fdn_admin_mount_events, fdn_runtime_events(rt));
    MOUNT_SWEEP(fdn_admin_mount_config, fdn_runtime_config(rt));
    MOUNT_SWEEP(fdn_admin_mount_breakers, fdn_runtime_breakers(rt));
    MOUNT_SWEEP(fdn_admin_mount_limiter, fdn_runtime_limiter(rt));
    MOUNT_SWEEP(fdn_admin_mount_telemetry, fdn_runtime_telemetry(rt));
    MOUNT_SWEEP(fdn_admin_mount_pools, fdn_runtime_pools(rt));
    assert_int_equal(fdn_runtime_shutdown(rt, 5000), 0);
    fdn_runtime_destroy(rt);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_server),
        cmocka_unit_test(sweep_mounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
