/*
 * DESIGN: a scrape target for tests/integration/test_prometheus_alerts.sh that reaches the
 * alerting conditions `fdn serve` cannot be driven into over its HTTP API: a connection pool
 * that runs out (fdn serve has no pool of its own) and a supervised service that fails and is
 * restarted. It is a runtime with the admin HTTP API mounted as `fdn serve` mounts it
 * (runtime, telemetry, pools, breakers), plus one pool "alert-pool" of two workers and no
 * overflow. Commands, one per line on stdin, each answered by one line on stdout:
 *   hold           check out every worker and keep them ("ok in_use=N")
 *   full           one checkout that may not wait: FDN_EBUSY on a full pool ("ok busy")
 *   fault SERVICE  make a supervised service fail (fdn_runtime_inject_fault), "ok restarts=N"
 *                  once the supervisor restarted it (polled: the restart is asynchronous)
 *   calls CID      (test_prometheus_scrape.sh, test_metrics_catalogue.sh) inside an error
 *                  context with correlation id CID: one protected call of key "alert-call"
 *                  (breaker "alert-breaker", limiter rule "api_calls", pool "alert-pool", so
 *                  a checkout), one failing, and a registry register + lookup + unregister:
 *                  the latency histograms `fdn serve` cannot be driven into ("ok")
 *   rejected       after hold: a protected call of key "alert-rejected" (pool "alert-pool",
 *                  no wait) refused by the pool layer ("ok rejected=pool")
 *   quit / EOF     return the workers, stop the server and the runtime, exit 0
 * The first line on stdout is "listening on http://127.0.0.1:PORT". Single-threaded: the
 * workers are held by the main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fdn/admin.h>
#include <fdn/fdn.h>

#define WORKERS 2

static int make_conn(void **conn, void *user)
{
    static int token;
    (void)user;
    *conn = &token;
    return 0;
}

static int call_ok(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

static int call_fails(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return FDN_EIO;
}

/* The "calls CID" command; 0 or the first error. */
static int calls(fdn_runtime_t *rt, const char *cid)
{
    fdn_protect_t *p = fdn_runtime_protect(rt);
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.breaker = "alert-breaker";
    pc.pool = "alert-pool";
    pc.pool_timeout_ms = 1000;
    pc.limiter_rule = "api_calls"; /* a default rule: rule="api_calls" decisions */
    int rc = fdn_protect_configure(p, "alert-call", &pc, NULL);
    if (rc != 0)
        return rc;
    rc = fdn_errctx_push_root("alert_target", "calls", cid);
    if (rc != 0)
        return rc;
    rc = fdn_execute_protected(p, "alert-call", NULL, call_ok, NULL, NULL, NULL);
    if (rc == 0 &&
        fdn_execute_protected(p, "alert-call", NULL, call_fails, NULL, NULL, NULL) != FDN_EIO)
        rc = FDN_EINVAL;
    fdn_errctx_pop();
    static int handle;
    void *got = NULL;
    fdn_registry_t *reg = fdn_runtime_registry(rt);
    if (rc == 0 && fdn_registry_lookup(reg, "alert-service", &got, NULL) != 0)
        rc = fdn_registry_register(reg, "alert-service", &handle, 0, NULL, 0, NULL);
    if (rc == 0)
        rc = fdn_registry_lookup(reg, "alert-service", &got, NULL);
    if (rc == 0)
        rc = fdn_registry_unregister(reg, "alert-service");
    return rc;
}

/* The "rejected" command: 0 when the pool layer refused the call. */
static int rejected(fdn_runtime_t *rt)
{
    fdn_protect_t *p = fdn_runtime_protect(rt);
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.pool = "alert-pool";
    pc.pool_timeout_ms = 0;
    int rc = fdn_protect_configure(p, "alert-rejected", &pc, NULL);
    if (rc != 0)
        return rc;
    fdn_protect_result_t res;
    rc = fdn_execute_protected(p, "alert-rejected", NULL, call_ok, NULL, &res, NULL);
    return rc != 0 && !res.ran && res.rejected_by == FDN_PROTECT_POOL ? 0 : FDN_EINVAL;
}

static int restarts_of(fdn_runtime_t *rt, const char *service, uint64_t *out)
{
    fdn_service_status_t st;
    int rc = fdn_runtime_service_status(rt, service, &st);
    if (rc == 0)
        *out = (uint64_t)st.restarts;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.name = "alert-target";
    ro.data_dir = argv[1];
    fdn_runtime_t *rt = NULL;
    if (fdn_runtime_create(&rt, &ro, &err) != 0) {
        fprintf(stderr, "alert_target: runtime: %s\n", err.message);
        return 1;
    }
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.listen = "127.0.0.1:0";
    fdn_admin_t *admin = NULL;
    int rc = fdn_admin_create(&admin, &ao, &err);
    if (rc == 0 && ((rc = fdn_admin_mount_runtime(admin, rt)) != 0 ||
                    (rc = fdn_admin_mount_telemetry(admin, fdn_runtime_telemetry(rt))) != 0 ||
                    (rc = fdn_admin_mount_breakers(admin, fdn_runtime_breakers(rt))) != 0 ||
                    (rc = fdn_admin_mount_pools(admin, fdn_runtime_pools(rt))) != 0))
        err.message[0] = '\0';
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = WORKERS;
    po.max_overflow = 0;
    po.create = make_conn;
    fdn_pool_t *pool = NULL;
    if (rc == 0)
        rc = fdn_pools_start(fdn_runtime_pools(rt), "alert-pool", &po, &pool, &err);
    if (rc == 0)
        rc = fdn_admin_start(admin, &err);
    if (rc != 0) {
        fprintf(stderr, "alert_target: %s %s\n", fdn_strerror(rc), err.message);
        fdn_pool_release(pool);
        fdn_admin_destroy(admin);
        fdn_runtime_destroy(rt);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u\n", (unsigned)fdn_admin_port(admin));
    fflush(stdout);

    fdn_pool_worker_t *held[WORKERS] = {NULL};
    int nheld = 0;
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "quit") == 0)
            break;
        if (strcmp(line, "hold") == 0) {
            while (nheld < WORKERS && fdn_pool_checkout(pool, &held[nheld], 1000, NULL) == 0)
                nheld++;
            fdn_pool_status_t st;
            (void)fdn_pool_status(pool, &st);
            printf("%s in_use=%d\n", nheld == WORKERS ? "ok" : "error", st.in_use);
        } else if (strcmp(line, "full") == 0) {
            fdn_pool_worker_t *w = NULL;
            rc = fdn_pool_checkout(pool, &w, 0, NULL);
            if (rc == 0)
                (void)fdn_pool_checkin(pool, w);
            printf("%s %s\n", rc == FDN_EBUSY ? "ok" : "error", rc == 0 ? "got" : fdn_err_name(rc));
        } else if (strncmp(line, "calls ", 6) == 0) {
            rc = calls(rt, line + 6);
            printf("%s %s\n", rc == 0 ? "ok" : "error", fdn_err_name(rc));
        } else if (strcmp(line, "rejected") == 0) {
            rc = rejected(rt);
            printf("%s rejected=pool\n", rc == 0 ? "ok" : "error");
        } else if (strncmp(line, "fault ", 6) == 0) {
            const char *svc = line + 6;
            uint64_t before = 0, after = 0;
            rc = restarts_of(rt, svc, &before);
            if (rc == 0)
                rc = fdn_runtime_inject_fault(rt, svc, FDN_EIO);
            /* the supervisor restarts it on its own thread: its status polled every 10 ms
             * until a deadline 60 s away on the monotonic clock (not a number of tries: a
             * count of sleeps bounds no particular time; the minute only catches a hang) */
            int64_t deadline = fdn_clock_mono_ns(NULL) + (int64_t)60 * 1000000000;
            bool back = false; /* restarted and running again */
            while (rc == 0) {
                fdn_service_status_t st;
                back = restarts_of(rt, svc, &after) == 0 && after > before &&
                       fdn_runtime_service_status(rt, svc, &st) == 0 &&
                       st.state == FDN_SERVICE_RUNNING;
                if (back || fdn_clock_mono_ns(NULL) > deadline)
                    break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            printf("%s restarts=%llu\n", back ? "ok" : "error", (unsigned long long)after);
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    for (int i = 0; i < nheld; i++)
        (void)fdn_pool_checkin(pool, held[i]);
    fdn_pool_release(pool);
    fdn_admin_shutdown(admin);
    fdn_admin_destroy(admin);
    rc = fdn_runtime_shutdown(rt, 10000);
    fdn_runtime_destroy(rt);
    return rc == 0 ? 0 : 1;
}
