/*
 * DESIGN: admin endpoint of the connection pools: GET /v1/pools.
 * Threads: runs on the admin server's threads; fdn_pools_list returns a copied snapshot.
 */
#include "admin/admin_int.h"

static int h_list(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_pools_t *m = user;
    fdn_pool_info_t *v = NULL;
    size_t n = 0;
    int rc = fdn_pools_list(m, &v, &n);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        const fdn_pool_status_t *s = &v[i].status;
        /* (a program may name a pool in bytes that are not UTF-8: written as U+FFFD) */
        json_t *p = json_pack(
            "{s:o, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:I, s:I, s:I, "
            "s:I, s:I, s:I, s:I, s:I, s:i}",
            "name", fdn__http_json_string(v[i].name), "state", fdn_pool_state_name(s->state),
            "size", s->size, "max_overflow", s->max_overflow, "workers", s->workers, "available",
            s->available, "in_use", s->in_use, "overflow", s->overflow, "waiters", s->waiters,
            "closed", (int)s->closed, "checkouts", (json_int_t)s->checkouts, "timeouts",
            (json_int_t)s->timeouts, "full", (json_int_t)s->full, "created", (json_int_t)s->created,
            "destroyed", (json_int_t)s->destroyed, "oldest_lease_age_ms",
            (json_int_t)(s->oldest_lease_age_ns / 1000000), "leaks", (json_int_t)s->leaks,
            "reclaimed", (json_int_t)s->reclaimed, "reclaimed_out", s->reclaimed_out);
        if (json_array_append_new(arr, p) != 0) {
            json_decref(arr); /* a pool left out would disagree with "count" */
            arr = NULL;
        }
    }
    fdn_free(v);
    if (arr == NULL)
        return FDN_ENOMEM;
    return fdn__http_reply(resp, 200,
                           json_pack("{s:o*, s:I}", "pools", arr, "count", (json_int_t)n));
}

int fdn_admin_mount_pools(fdn_admin_t *a, fdn_pools_t *m)
{
    if (a == NULL || m == NULL)
        return FDN_EINVAL;
    return fdn__admin_route_add(a, "GET", "/v1/pools", h_list, m);
}
