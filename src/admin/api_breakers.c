/*
 * DESIGN: admin endpoints of the circuit breakers, so that programs in any language can use
 * them as a service:
 *   GET /v1/breakers, GET /v1/breakers/{name}, POST /v1/breakers/{name}/reset;
 *   PUT /v1/breakers/{name} (create, or re-install with new options: a JSON object of
 *   fdn_breaker_opts_parse's members over the set's defaults; the options in force already
 *   install nothing, as each install keeps the replaced options until the set is destroyed),
 *   DELETE /v1/breakers/{name};
 *   POST /v1/breakers/{name}/acquire: a ticket (fdn_breaker_acquire_ticket), or 503 with
 *   Retry-After while the breaker rejects calls;
 *   POST /v1/breakers/{name}/report {"ticket", "outcome", "duration_ms"?}.
 * Tickets travel as decimal strings (JSON numbers lose precision past 2^53). A ticket never
 * reported counts as a failure after the breaker's probe_timeout_ms (the breaker settles it).
 * Threads: runs on the admin server's threads; calls only the breaker set's thread-safe API.
 * A removed breaker's memory stays in the set, so a handle from fdn_breaker_get stays valid.
 */
#include "admin/admin_int.h"
#include "admin/http_jw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static json_t *breaker_json(fdn_breaker_t *b)
{
    /* tickets past their timeout count as failures first, so the state read is current */
    size_t tickets = fdn_breaker_tickets_settle(b);
    fdn_breaker_status_t s;
    if (fdn_breaker_status(b, &s) != 0)
        return NULL;
    return json_pack(
        "{s:I, s:o, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tickets_outstanding",
        (json_int_t)tickets, "name", fdn__http_json_string(fdn_breaker_name(b)), "state",
        fdn_breaker_state_name(s.state),
        /* what acquire would answer now, asked without its effects */
        "admits", fdn_breaker_ask(b) == 0, "failures", (json_int_t)s.failures, "window_calls",
        (json_int_t)s.window_calls, "window_failures", (json_int_t)s.window_failures, "window_slow",
        (json_int_t)s.window_slow, "probes_in_flight", (json_int_t)s.probes_in_flight,
        "total_failures", (json_int_t)s.total_failures, "total_rejected",
        (json_int_t)s.total_rejected, "times_opened", (json_int_t)s.times_opened,
        "ms_until_half_open", (json_int_t)s.ms_until_half_open);
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
    fdn_breaker_t **v = NULL;
    size_t n = 0;
    int rc = fdn_breakers_handles(user, &v, &n);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        if (json_array_append_new(arr, breaker_json(v[i])) != 0) {
            json_decref(arr); /* a breaker left out would disagree with "count" */
            arr = NULL;
        }
    fdn_free(v);
    if (arr == NULL)
        return FDN_ENOMEM;
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
    if (rc < 0 || (rc = fdn__http_body_none(req, resp)) < 0)
        return rc;
    fdn_breaker_reset(b);
    return fdn__http_reply(resp, 200, breaker_json(b));
}

static const char *name_param(const fdn__http_req_t *req, fdn__http_resp_t *resp)
{
    const char *name = fdn__http_param(req, "name");
    if (fdn__http_check_string(name, 255) != 0) {
        fdn_err_set(&resp->err, FDN_EINVAL, "bad breaker name");
        return NULL;
    }
    return name;
}

/* Whether two option sets are the same (field by field: the struct has padding). */
static bool opts_same(const fdn_breaker_opts_t *a, const fdn_breaker_opts_t *b)
{
    return a->version == b->version && a->failure_threshold == b->failure_threshold &&
           a->window_ms == b->window_ms && a->recovery_time_ms == b->recovery_time_ms &&
           a->half_open_max_calls == b->half_open_max_calls &&
           a->probe_timeout_ms == b->probe_timeout_ms && a->success_resets == b->success_resets &&
           a->failure_rate_pct == b->failure_rate_pct && a->slow_rate_pct == b->slow_rate_pct &&
           a->rate_window_kind == b->rate_window_kind &&
           a->rate_window_size == b->rate_window_size && a->minimum_calls == b->minimum_calls &&
           a->slow_call_ms == b->slow_call_ms && a->classify == b->classify &&
           a->classify_user == b->classify_user && a->on_transition == b->on_transition &&
           a->transition_user == b->transition_user && a->clock == b->clock &&
           a->telemetry == b->telemetry;
}

static int h_put(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_breakers_t *set = user;
    const char *name = name_param(req, resp);
    if (name == NULL)
        return FDN_EINVAL;
    /* (a program may make a breaker of any name; one made over HTTP is named in UTF-8, as
     * every answer names it) */
    if (!fdn__jw_utf8_valid(name))
        return fdn_err_set(&resp->err, FDN_EINVAL, "bad breaker name (not UTF-8)");
    /* the set's defaults (with its clock and telemetry), then the body's members */
    fdn_breaker_t *b = NULL;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    fdn_breaker_t *probe = NULL;
    bool existed = fdn_breaker_get(set, name, &probe) == 0;
    int rc = fdn_breakers_get_defaults(set, &o);
    if (rc == 0 && req->body_len > 0) { /* no body: the defaults */
        json_t *syntax = NULL;          /* malformed JSON is a 400, as on every endpoint */
        if ((rc = fdn__http_body_json(req, resp, &syntax)) < 0)
            return rc;
        json_decref(syntax);
        rc = fdn_breaker_opts_parse(req->body, req->body_len, &o, &resp->err);
    }
    if (rc < 0)
        return rc;
    /* the options in force already: nothing to install (an install keeps the replaced
     * options until the set is destroyed, and resets the breaker: a client repeating its PUT
     * must not grow memory nor clear the breaker's history each time) */
    if (existed) {
        fdn_breaker_opts_t cur;
        if (fdn_breaker_get_opts(probe, &cur) == 0 && opts_same(&cur, &o))
            return fdn__http_reply(resp, 200, breaker_json(probe));
    }
    rc = fdn_breaker_install(set, name, &o, &b);
    if (rc == FDN_ENOSPC)
        return fdn_err_set(&resp->err, rc,
                           "cannot create circuit breaker '%s': the set holds its most names "
                           "(infrastructure.circuit_breaker.max_breakers)",
                           name);
    if (rc < 0)
        return fdn_err_set(&resp->err, rc, "cannot install circuit breaker '%s'", name);
    return fdn__http_reply(resp, existed ? 200 : 201, breaker_json(b));
}

static int h_delete(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    const char *name = name_param(req, resp);
    if (name == NULL)
        return FDN_EINVAL;
    int rc = fdn__http_body_none(req, resp);
    if (rc < 0)
        return rc;
    rc = fdn_breaker_remove(user, name);
    if (rc < 0)
        return fdn_err_set(&resp->err, rc, "no circuit breaker named '%s'", name);
    return fdn__http_reply(
        resp, 200, json_pack("{s:o, s:b}", "name", fdn__http_json_string(name), "removed", 1));
}

static int h_acquire(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_breaker_t *b = NULL;
    int rc = find(req, resp, user, &b);
    if (rc < 0 || (rc = fdn__http_body_none(req, resp)) < 0)
        return rc;
    uint64_t ticket;
    rc = fdn_breaker_acquire_ticket(b, &ticket);
    fdn_breaker_status_t st;
    (void)fdn_breaker_status(b, &st);
    if (rc == FDN_ECIRCUIT_OPEN || rc == FDN_EBUSY) {
        /* whole seconds, rounded up, at least 1 (half-open with its probes taken: 1) */
        resp->retry_after_s = st.ms_until_half_open > 0 ? (st.ms_until_half_open + 999) / 1000 : 1;
        return fdn_err_set(&resp->err, FDN_ECIRCUIT_OPEN,
                           rc == FDN_EBUSY ? "circuit breaker '%s' has too many tickets outstanding"
                                           : "circuit breaker '%s' is %s",
                           fdn_breaker_name(b), fdn_breaker_state_name(st.state));
    }
    if (rc < 0)
        return fdn_err_set(&resp->err, rc, "cannot acquire circuit breaker '%s'",
                           fdn_breaker_name(b));
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, ticket);
    return fdn__http_reply(resp, 200,
                           json_pack("{s:o, s:s, s:s}", "name",
                                     fdn__http_json_string(fdn_breaker_name(b)), "ticket", id,
                                     "state", fdn_breaker_state_name(st.state)));
}

static int parse_outcome(const char *s, fdn_breaker_outcome_t *out)
{
    static const char *const names[] = {"success", "failure", "ignore", "slow"};
    for (int i = 0; s != NULL && i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (fdn_breaker_outcome_t)i;
            return 0;
        }
    return FDN_EINVAL;
}

static int h_report(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_breaker_t *b = NULL;
    int rc = find(req, resp, user, &b);
    if (rc < 0)
        return rc;
    json_t *body = NULL;
    if ((rc = fdn__http_body_json(req, resp, &body)) < 0)
        return rc;
    uint64_t ticket = 0;
    fdn_breaker_outcome_t outcome = FDN_BREAKER_SUCCESS;
    int64_t dur_ms = -1;
    json_t *t = json_object_get(body, "ticket"), *o = json_object_get(body, "outcome");
    json_t *d = json_object_get(body, "duration_ms");
    if (!json_is_object(body) || json_object_size(body) != 2u + (d != NULL))
        rc = fdn_err_set(&resp->err, FDN_EINVAL,
                         "expected {\"ticket\", \"outcome\", \"duration_ms\" (optional)}");
    else if (!json_is_string(t) ||
             fdn__http_parse_u64(json_string_value(t), UINT64_MAX, &ticket) != 0)
        rc =
            fdn_err_set(&resp->err, FDN_EINVAL, "ticket: expected the decimal string acquire gave");
    else if (parse_outcome(json_string_value(o), &outcome) != 0)
        rc = fdn_err_set(&resp->err, FDN_EINVAL,
                         "outcome: expected \"success\", \"failure\", \"slow\" or \"ignore\"");
    else if (d != NULL && (!json_is_integer(d) || json_integer_value(d) < 0 ||
                           json_integer_value(d) > INT64_MAX / 1000000))
        rc = fdn_err_set(&resp->err, FDN_EINVAL, "duration_ms: expected an integer >= 0");
    else if (d != NULL)
        dur_ms = json_integer_value(d);
    json_decref(body);
    if (rc < 0)
        return rc;
    rc = fdn_breaker_report_ticket(b, ticket, outcome, dur_ms < 0 ? -1 : dur_ms * 1000000);
    if (rc == FDN_ENOENT)
        return fdn_err_set(&resp->err, FDN_ENOENT,
                           "no outstanding ticket %" PRIu64 " on circuit breaker '%s' (unknown, "
                           "already reported, or expired and counted as a failure)",
                           ticket, fdn_breaker_name(b));
    if (rc < 0)
        return rc;
    return fdn__http_reply(resp, 200, breaker_json(b));
}

int fdn_admin_mount_breakers(fdn_admin_t *a, fdn_breakers_t *set)
{
    if (a == NULL || set == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    int rc;
    if ((rc = fdn__admin_route_add(a, "GET", "/v1/breakers", h_list, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "GET", "/v1/breakers/{name}", h_get, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "POST", "/v1/breakers/{name}/reset", h_reset, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "PUT", "/v1/breakers/{name}", h_put, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "DELETE", "/v1/breakers/{name}", h_delete, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "POST", "/v1/breakers/{name}/acquire", h_acquire, set)) < 0 ||
        (rc = fdn__admin_route_add(a, "POST", "/v1/breakers/{name}/report", h_report, set)) < 0)
        return fdn__admin_rollback(a, &m, rc);
    return 0;
}
