/* An admin server for a test: created on 127.0.0.1 port 0 (an ephemeral port, bound at
 * fdn_admin_bind or fdn_admin_start) with the services the test mounts. The one set-up of the
 * admin server in the cmocka tests (unit, fault, stress, alloc, integration, engine); any
 * failure fails the running test, naming the step.
 *
 * Use:
 *   fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.limiter = lim});
 *   ...
 *   fdn_admin_destroy(a);
 * and for other options than the defaults:
 *   fdn_admin_opts_t o = FDN_ADMIN_OPTS_INIT;
 *   o.max_body_bytes = 1024;
 *   fdn_admin_t *a = test_admin_local(&o, NULL); */
#ifndef FDN_TEST_ADMIN_LOCAL_H
#define FDN_TEST_ADMIN_LOCAL_H

#include <stdint.h>

#include <fdn/admin.h>

/* The services test_admin_local mounts (NULL: not mounted), in the order of the fields. */
typedef struct test_admin_mounts {
    fdn_runtime_t *runtime;
    fdn_events_t *events;
    fdn_config_t *config;
    fdn_breakers_t *breakers;
    fdn_limiter_t *limiter;
    fdn_pools_t *pools;
    fdn_telemetry_t *telemetry;
} test_admin_mounts_t;

/* A server (not started) with the options o (NULL: the defaults) but the address, always
 * 127.0.0.1:0, and the services of m (NULL: none) mounted. Fails the test when the create or
 * a mount fails. The caller destroys it (fdn_admin_destroy) before the services. */
fdn_admin_t *test_admin_local(const fdn_admin_opts_t *o, const test_admin_mounts_t *m);

/* A socket connected to a started test server on 127.0.0.1:port (the caller closes it);
 * fails the test when it cannot connect. */
int test_admin_raw_connect(uint16_t port);

/* A raw client of a started test server on 127.0.0.1:port: sends `GET uri` (HTTP/1.1) and
 * reads nothing. Returns its socket (the caller closes it); fails the test when it cannot. */
int test_admin_raw_get(uint16_t port, const char *uri);

/* GET /health of a (dispatched in process, no socket) as compact JSON text, its status into
 * *status; fails the test when the answer has no JSON body. The caller frees the text (the
 * allocator of jansson: fdn_free). */
char *test_admin_health(fdn_admin_t *a, unsigned *status);

#endif
