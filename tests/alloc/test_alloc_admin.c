/* Failing-allocator sweep of include/fdn/admin.h (tests/alloc/README.md): the admin server's
 * create, its registrations (health checks, metrics, every mount of a component's routes),
 * bind and start. Every pass makes and destroys its own server; a failed mount leaves the
 * server without those routes, and a later mount of the same component succeeds. (Requests
 * are swept by the HTTP fault tests; libmicrohttpd allocates with malloc, outside the hook.
 * The JSON body parse of every POST/PUT endpoint, fdn__http_body_json, is swept here through
 * the socket-less dispatcher: out of memory is a 500 ENOMEM answer, never a 400.) */
#include <string.h>

#include <jansson.h>

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

#include "admin/admin_int.h"
#include "admin_local.h"
#include "alloc_sweep.h"
#include "threads.h" /* TEST_WAIT_MS */

static const char *const no_env[] = {NULL};

static fdn_admin_t *mk(void)
{
    fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
    o.threads = 1;
    return test_admin_local(&o, NULL);
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

/* A started server's reads and its shutdown allocate nothing on the caller's thread. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_admin_t *a = mk();
    assert_int_equal(fdn_admin_start(a, NULL), 0);
    uint16_t port = 0;
    unsigned maxc = 0;
    NOALLOC_SWEEP(fdn_admin_port, port = fdn_admin_port(a));
    NOALLOC_SWEEP(fdn_admin_max_connections, maxc = fdn_admin_max_connections(a));
    assert_int_not_equal(port, 0);
    assert_true(maxc > 0);
    NOALLOC_SWEEP(fdn_admin_shutdown, fdn_admin_shutdown(a));
    NOALLOC_SWEEP(fdn_admin_destroy, fdn_admin_destroy(a));
    assert_int_equal(sweep_live(), base);
}

/* POST /echo: the request body parsed by fdn__http_body_json, sent back. */
static int h_echo(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)user;
    json_t *j = NULL;
    int rc = fdn__http_body_json(req, resp, &j);
    if (rc < 0)
        return rc;
    return fdn__http_reply(resp, 200, j);
}

static const char body[] = "{\"a-key-long-enough-to-grow-the-lexer-buffer-twice-over-000000\": "
                           "\"a value long enough to grow it as well, 0123456789abcdefghijklmn\"}";

static void sweep_body_parse(void **state)
{
    (void)state;
    fdn_admin_t *a = mk();
    assert_int_equal(fdn__admin_route_add(a, "POST", "/echo", h_echo, NULL), 0);
    json_t *want = json_loads(body, 0, NULL);
    assert_non_null(want);
    SWEEP(sw, fdn__http_body_json, SWEEP_KEEP)
    {
        fdn__http_resp_t resp;
        memset(&resp, 0, sizeof(resp));
        sweep_arm(&sw);
        fdn__admin_dispatch(a, "POST", "/echo", NULL, body, sizeof(body) - 1, &resp);
        /* 200 with the body whole; or out of memory somewhere on the way: 500 (a 400, bad
         * JSON, would be the parse's failure taken for the client's) */
        int rc = resp.status == 200 ? 0 : resp.status == 500 ? FDN_ENOMEM : FDN_EPARSE;
        if (rc == 0)
            assert_true(json_equal(resp.json, want));
        fdn__http_resp_clear(&resp);
        (void)sweep_failed(&sw, rc);
    }
    json_decref(want);
    fdn_admin_destroy(a);
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
    assert_int_equal(fdn_runtime_shutdown(rt, TEST_WAIT_MS), 0);
    fdn_runtime_destroy(rt);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_server),
        cmocka_unit_test(sweep_mounts),
        cmocka_unit_test(sweep_body_parse),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
