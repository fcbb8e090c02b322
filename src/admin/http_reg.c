/*
 * DESIGN: what the admin server serves, registered before it starts (see the DESIGN comment in
 * http.c for the server): the route table (fdn__admin_route_add), health checks, metrics
 * writers, the request telemetry and /health hooks, and the mark/rollback of a failed mount.
 * Threads: thread_safety init, only before fdn_admin_start (the adding functions refuse it
 * after, FDN_EINVAL); afterwards the request path only reads what they wrote (fdn_admin_start's
 * thread creation orders it). No locks.
 */
#include "admin/http_impl.h"

#include <string.h>

/* ---- route table --------------------------------------------------------------------- */

static bool pattern_valid(const char *p)
{
    if (p == NULL || p[0] != '/' || strlen(p) > 200)
        return false;
    for (const char *s = p + 1; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0)
            return false;
        bool open = s[0] == '{', close = s[n - 1] == '}';
        if (open != close || (open && n < 3))
            return false;
        for (size_t i = open ? 1 : 0; i < (open ? n - 1 : n); i++)
            if (s[i] == '{' || s[i] == '}')
                return false;
        s += n;
        if (*s == '/')
            s++;
    }
    return true;
}

int fdn__admin_route_add(fdn_admin_t *a, const char *method, const char *pattern,
                         fdn__http_handler_fn fn, void *user)
{
    return fdn__admin_route_add_q(a, method, pattern, fn, user, NULL);
}

int fdn__admin_route_add_q(fdn_admin_t *a, const char *method, const char *pattern,
                           fdn__http_handler_fn fn, void *user, const char *const *params)
{
    if (a == NULL || method == NULL || fn == NULL || a->started || strlen(method) >= 8 ||
        !pattern_valid(pattern))
        return FDN_EINVAL;
    for (size_t i = 0; i < a->nroutes; i++)
        if (strcmp(a->routes[i].method, method) == 0 && strcmp(a->routes[i].pattern, pattern) == 0)
            return FDN_EEXIST;
    if (a->nroutes == a->cap_routes) {
        size_t nc = a->cap_routes ? a->cap_routes * 2 : 16;
        route_t *r = fdn_realloc(a->routes, nc * sizeof *r);
        if (r == NULL)
            return FDN_ENOMEM;
        a->routes = r;
        a->cap_routes = nc;
    }
    char *pc = admin_strdup(pattern);
    if (pc == NULL)
        return FDN_ENOMEM;
    route_t *r = &a->routes[a->nroutes++];
    memset(r, 0, sizeof *r);
    memcpy(r->method, method, strlen(method) + 1);
    r->pattern = pc;
    r->fn = fn;
    r->user = user;
    r->params = params;
    r->literal = strchr(pattern, '{') == NULL;
    for (const char *c = pattern; *c != '\0'; c++) /* "/a/b": 2; "/": 0 */
        r->nsegs += *c == '/' && c[1] != '\0';
    return 0;
}

void fdn__admin_mark(const fdn_admin_t *a, fdn__admin_mark_t *m)
{
    m->nroutes = a->nroutes;
    m->nhealth = a->nhealth;
    m->nmetrics = a->nmetrics;
    m->nstops = a->nstops;
    m->tm = a->tm != NULL;
    m->health_ext = a->health_ext != NULL;
}

int fdn__admin_rollback(fdn_admin_t *a, const fdn__admin_mark_t *m, int rc)
{
    /* A mount refused because the server has started added nothing (every adder refuses
     * then): nothing to take back, and nothing the server's threads read without a lock (the
     * checks, reg_gen, the extension, the request telemetry) may be written, not even with
     * its own value. */
    if (a->started)
        return rc;
    while (a->nroutes > m->nroutes)
        fdn_free(a->routes[--a->nroutes].pattern);
    a->nhealth = m->nhealth;
    a->reg_gen++; /* GET /health's remembered answers were written with what is taken back */
    a->nmetrics = m->nmetrics;
    while (a->nstops > m->nstops) {
        a->nstops--;
        if (a->stops[a->nstops].release != NULL)
            a->stops[a->nstops].release(a->stops[a->nstops].user);
    }
    if (!m->tm) { /* (its families stay in the telemetry instance, which owns them) */
        fdn__admin_unset_telemetry(a);
        a->tm = NULL, a->f_dur = a->f_req = a->f_wd = NULL;
        a->req_taken = false;
    }
    if (!m->health_ext)
        a->health_ext = NULL, a->health_ext_user = NULL;
    return rc;
}

void *fdn__admin_events_api(const fdn_admin_t *a)
{
    void *api = atomic_load_explicit(&a->ev_api, memory_order_acquire);
    return api != NULL ? api : fdn__admin_route_user(a, "GET", "/v1/events");
}

void *fdn__admin_route_user(const fdn_admin_t *a, const char *method, const char *pattern)
{
    for (size_t i = 0; a != NULL && i < a->nroutes; i++)
        if (strcmp(a->routes[i].method, method) == 0 && strcmp(a->routes[i].pattern, pattern) == 0)
            return a->routes[i].user;
    return NULL;
}

int fdn__admin_add_stop(fdn_admin_t *a, void (*drain)(void *), void (*release)(void *), void *user)
{
    if (a == NULL || a->started)
        return FDN_EINVAL;
    if (a->nstops >= MAX_STOPS)
        return FDN_ENOSPC;
    a->stops[a->nstops].drain = drain;
    a->stops[a->nstops].release = release;
    a->stops[a->nstops].user = user;
    a->nstops++;
    return 0;
}

/* The telemetry collector of fdn_http_waiting_queries: the count at each scrape. */
static void waiting_collect(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    fdn_admin_t *a = user;
    fdn_gauge_set(a->g_wait, (int64_t)fdn__admin_events_waiting(a));
}

void fdn__admin_unset_telemetry(fdn_admin_t *a)
{
    if (a->tm != NULL && a->g_wait != NULL)
        (void)fdn_telemetry_remove_collector(a->tm, waiting_collect, a);
    a->g_wait = NULL;
}

int fdn__admin_set_telemetry(fdn_admin_t *a, fdn_telemetry_t *tm)
{
    if (a == NULL || a->started)
        return FDN_EINVAL;
    if (a->tm != NULL)
        return FDN_EEXIST;
    static const char *const dl[] = {"method", "route"};
    static const char *const rl[] = {"method", "route", "status_class"};
    /* routes are a fixed set; unmatched requests share route="unmatched": bounded, the caps
     * only guard against a program adding routes by the hundred */
    int rq = 0;
    if (fdn_telemetry_family(tm, &a->f_dur, "fdn_http_request_duration_seconds",
                             "Admin HTTP requests: time from routing to the handler's answer, by "
                             "route template and method.",
                             FDN_TELEMETRY_HISTOGRAM, dl, 2, 256) < 0 ||
        (rq = fdn_telemetry_family(tm, &a->f_req, "fdn_http_requests_total",
                                   "Admin HTTP requests answered, by route template, method and "
                                   "status class (2xx, 4xx, ...).",
                                   FDN_TELEMETRY_COUNTER, rl, 3, 1024)) < 0) {
        a->f_dur = a->f_req = NULL;
    }
    /* another family of that name: telemetry's text has it, GET /metrics must not add the
     * server's own (one name, two families) */
    a->req_taken = rq == FDN_EEXIST;
    static const char *const wl[] = {"method", "route", "outcome"};
    if (fdn_telemetry_family(tm, &a->f_wd, "fdn_http_requests_withdrawn_total",
                             "Admin HTTP requests whose answer the server withdrew at its shutdown "
                             "deadline (answered 503), by route template, method and outcome "
                             "(unknown: the work may still complete).",
                             FDN_TELEMETRY_COUNTER, wl, 3, 64) < 0)
        a->f_wd = NULL;
    fdn_telemetry_family_t *fw = NULL;
    if (fdn_telemetry_family(tm, &fw, "fdn_http_waiting_queries",
                             "Event queries waiting for their first match now "
                             "(GET /v1/events?wait_ms=).",
                             FDN_TELEMETRY_GAUGE, NULL, 0, 1) < 0 ||
        fdn_telemetry_family_gauge(fw, &a->g_wait, NULL, 0) < 0 ||
        fdn_telemetry_add_collector(tm, waiting_collect, a) < 0)
        a->g_wait = NULL; /* the family is left out, as the two above are on a failure */
    a->tm = tm;
    return 0;
}

int fdn__admin_set_health_ext(fdn_admin_t *a, const fdn__admin_health_ext_t *ext, void *user)
{
    if (a == NULL || a->started || ext == NULL || ext->read == NULL || ext->write == NULL)
        return FDN_EINVAL;
    if (a->health_ext != NULL)
        return FDN_EEXIST;
    a->health_ext = ext;
    a->health_ext_user = user;
    a->reg_gen++;
    return 0;
}

/* ---- health checks and metrics writers ------------------------------------------------------ */

static bool name_ok(const char *s, size_t max)
{
    if (s == NULL || *s == '\0' || strlen(s) >= max)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int add_health(fdn_admin_t *a, const char *name, fdn_admin_health_fn fn,
                      fdn__admin_health_deg_fn deg, void *user)
{
    if (a == NULL || (fn == NULL && deg == NULL) || a->started ||
        !name_ok(name, sizeof a->health[0].name))
        return FDN_EINVAL;
    for (size_t i = 0; i < a->nhealth; i++)
        if (strcmp(a->health[i].name, name) == 0)
            return FDN_EEXIST;
    if (a->nhealth == MAX_HEALTH)
        return FDN_ENOBUFS;
    health_check_t *h = &a->health[a->nhealth++];
    memcpy(h->name, name, strlen(name) + 1);
    h->fn = fn;
    h->deg = deg;
    h->user = user;
    a->reg_gen++;
    return 0;
}

int fdn_admin_add_health(fdn_admin_t *a, const char *name, fdn_admin_health_fn fn, void *user)
{
    return add_health(a, name, fn, NULL, user);
}

int fdn__admin_add_health_deg(fdn_admin_t *a, const char *name, fdn__admin_health_deg_fn fn,
                              void *user)
{
    return add_health(a, name, NULL, fn, user);
}

int fdn_admin_add_metrics(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user)
{
    if (a == NULL || fn == NULL || a->started)
        return FDN_EINVAL;
    if (a->nmetrics == MAX_METRICS)
        return FDN_ENOBUFS;
    a->metrics[a->nmetrics].fn = fn;
    a->metrics[a->nmetrics].user = user;
    a->metrics[a->nmetrics].fallback = false;
    a->metrics[a->nmetrics].telemetry = false;
    a->nmetrics++;
    return 0;
}

int fdn__admin_add_metrics_telemetry(fdn_admin_t *a, fdn_admin_metrics_fn fn, fdn_telemetry_t *tm)
{
    int rc = fdn_admin_add_metrics(a, fn, tm);
    if (rc == 0)
        a->metrics[a->nmetrics - 1].telemetry = true;
    return rc;
}

int fdn__admin_add_metrics_fallback(fdn_admin_t *a, fdn_admin_metrics_fn fn, void *user)
{
    int rc = fdn_admin_add_metrics(a, fn, user);
    if (rc == 0)
        a->metrics[a->nmetrics - 1].fallback = true;
    return rc;
}
