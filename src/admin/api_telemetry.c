/*
 * DESIGN: admin endpoints of telemetry: the Prometheus text of GET /metrics (through the
 * server's metrics-writer hook) and the JSON metrics tree at GET /v1/telemetry.
 * Each request also emits `foundation.admin.request` {duration: ns} (http.c).
 * Threads: runs on the admin server's threads; telemetry's writers take their own snapshot.
 */
#include "admin/admin_int.h"

#include <string.h>

static int sink_write(const char *data, size_t len, void *user)
{
    return fdn__admin_text_put(user, data, len);
}

static int prometheus(char **out, size_t *len, void *user)
{
    fdn__admin_text_t s = {NULL, 0, 0};
    int rc = fdn_telemetry_write_prometheus(user, sink_write, &s);
    if (rc < 0) {
        fdn_free(s.p);
        return rc;
    }
    *out = s.p;
    *len = s.len;
    return 0;
}

static int h_json(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    char *s = NULL;
    int rc = fdn_telemetry_metrics_json(user, &s);
    if (rc < 0)
        return rc;
    json_t *j = NULL;
    rc = fdn_json_loadb(s, strlen(s), JSON_DECODE_ANY, &j, NULL);
    fdn_free(s);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(&resp->err, FDN_ENOMEM, "out of memory");
    if (rc < 0)
        return fdn_err_set(&resp->err, FDN_EINTERNAL, "telemetry produced invalid JSON");
    return fdn__http_reply(resp, 200, j);
}

int fdn_admin_mount_telemetry(fdn_admin_t *a, fdn_telemetry_t *tm)
{
    if (a == NULL || tm == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    int rc = fdn__admin_set_telemetry(a, tm);
    if (rc == 0)
        rc = fdn__admin_add_metrics_telemetry(a, prometheus, tm);
    if (rc == 0)
        rc = fdn__admin_route_add(a, "GET", "/v1/telemetry", h_json, tm);
    return rc < 0 ? fdn__admin_rollback(a, &m, rc) : rc;
}
