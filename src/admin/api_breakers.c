/*
 * DESIGN: admin endpoints of the circuit breakers: GET /v1/breakers, GET /v1/breakers/{name},
 * POST /v1/breakers/{name}/reset.
 * Threads: runs on the admin server's threads; calls only the breaker set's thread-safe API.
 * Breakers are never removed from a set, so a handle from fdn_breaker_get stays valid.
 */
#include "admin/admin_int.h"

#include <string.h>

static json_t *breaker_json(fdn_breaker_t *b)
{
    fdn_breaker_status_t s;
    if (fdn_breaker_status(b, &s) != 0)
        return NULL;
    return json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                     fdn_breaker_name(b), "state", fdn_breaker_state_name(s.state),
                     /* what acquire would answer now, asked without its effects */
                     "admits", fdn_breaker_ask(b) == 0, "failures", (json_int_t)s.failures,
                     "window_calls", (json_int_t)s.window_calls, "window_failures",
                     (json_int_t)s.window_failures, "window_slow", (json_int_t)s.window_slow,
                     "probes_in_flight", (json_int_t)s.probes_in_flight, "total_failures",
                     (json_int_t)s.total_failures, "total_rejected", (json_int_t)s.total_rejected,
                     "times_opened", (json_int_t)s.times_opened, "ms_until_half_open",
                     (json_int_t)s.ms_until_half_open);
}

static int find(const fdn__http_req_t *req, fdn__http_resp_t *resp, fdn_breakers_t *set,
                fdn_breaker_t **out)
{
    const char *name = fdn__http_param(req, "name");
    if (fdn__http_check_string(name, 255) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL, "bad breaker name");
    int rc = fdn_breaker_get(set, name, out);
    if (rc < 0)
        return fdn_err_set(&resp->err, rc, "no circuit breaker named '%s'", name);
    return 0;
}

static int h_list(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_breakers_t *set = user;
    char **names = NULL;
    size_t n = 0;
    int rc = fdn_breakers_list(set, &names, &n);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        fdn_breaker_t *b = NULL;
        if (fdn_breaker_get(set, names[i], &b) == 0)
            json_array_append_new(arr, breaker_json(b));
    }
    fdn_free(names);
    return fdn__http_reply(resp, 200,
                           json_pack("{s:o*, s:I}", "breakers", arr, "count", (json_int_t)n));
}

static int h_get(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_breaker_t *b = NULL;
    int rc = find(req, resp, user, &b);
    if (rc < 0)
        return rc;
    return fdn__http_reply(resp, 200, breaker_json(b));
}

static int h_reset(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_breaker_t *b = NULL;
    int rc = find(req, resp, user, &b);
    if (rc < 0)
        return rc;
    fdn_breaker_reset(b);
    return fdn__http_reply(resp, 200, breaker_json(b));
}

int fdn_admin_mount_breakers(fdn_admin_t *a, fdn_breakers_t *set)
{
    if (a == NULL || set == NULL)
        return FDN_EINVAL;
    int rc;
    if ((rc = fdn__admin_route_add(a, "GET", "/v1/breakers", h_list, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "GET", "/v1/breakers/{name}", h_get, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "POST", "/v1/breakers/{name}/reset", h_reset, set)) < 0)
        return rc;
    return 0;
}
