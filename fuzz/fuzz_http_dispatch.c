/* libFuzzer target: whole requests through the admin router and every service handler,
 * in-process (no socket). Input: "METHOD URI\n" then the body. The services are real and
 * in memory (event store without a file, config, limiter, breakers, pools, telemetry),
 * created once; the event store is bounded (32 events) so state stays small across runs. Every
 * answer must be a well-formed response: a status in 200..599 and a JSON or text body. GET (or
 * HEAD) /metrics writes every series of the telemetry (~50 routes' request histograms with their
 * quantiles, the services' metrics): ~20 times the cost of another request, and the same bytes for
 * the same state, so it ran more than half of the target's time. That exact request runs on one
 * input in METRICS_EVERY (by a hash of its bytes; every input under the ctest replay); any other
 * spelling of it (a query, percent-encoding, another method) is dispatched always.
 *
 * The bearer token check (auth_ok, src/admin/http.c): an input whose first byte is '#' starts
 * with a line of its own, "#<Authorization header value>\n" (just "#\n": no header), and goes to
 * a second server, with the same services, that has the token TOKEN; any other input goes to
 * the server without a token, with no header. (No input of the corpus started with '#'
 * before: each keeps its meaning.) */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "fuzz_util.h"

#define METRICS_EVERY 16
#define MAX_BREAKERS  256 /* PUT /v1/breakers/{name} adds one per new name, up to the bound */
#define TOKEN         "fuzz-T0ken.68~+/=" /* token68 characters (RFC 7235 2.1) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The service outlives inputs and its state grows (see fuzz_util.h). */
FDN_FUZZ_NO_PER_INPUT_LEAK_CHECK()

static fdn_admin_t *g_admin;
static fdn_admin_t *g_admin_token; /* the same services, TOKEN required */
static fdn_events_t *g_events;
static fdn_config_t *g_config;
static fdn_limiter_t *g_limiter;
static fdn_breakers_t *g_breakers;
static fdn_pools_t *g_pools;
static fdn_telemetry_t *g_tm;

/* An admin server on a with every service mounted (none may wait: see setup). */
static int mount_all(fdn_admin_t *a)
{
    if (fdn_admin_mount_events(a, g_events) != 0 || fdn_admin_mount_config(a, g_config) != 0 ||
        fdn_admin_mount_limiter(a, g_limiter) != 0 ||
        fdn_admin_mount_breakers(a, g_breakers) != 0 || fdn_admin_mount_pools(a, g_pools) != 0 ||
        fdn_admin_mount_telemetry(a, g_tm) != 0)
        return -1;
    /* a waiting query (GET /v1/events?wait_ms=) would hold this thread up to 60 s: none may
     * wait here (each gets the 503 of a full server), its parameters are still checked */
    fdn__admin_events_wait_max(a, 0);
    return 0;
}

static int setup(void)
{
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.listen = "127.0.0.1:0";
    fdn_admin_opts_t to = ao;
    to.token = TOKEN;
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.max_events = 32; /* a query answers at most this many: 256 made queries ~20 % */
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    co.ignore_env = true;
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.max_keys = 4096;
    if (fdn_admin_create(&g_admin, &ao, NULL) != 0 ||
        fdn_admin_create(&g_admin_token, &to, NULL) != 0 ||
        fdn_events_create(&g_events, &eo, NULL) != 0 ||
        fdn_config_create(&g_config, &co, NULL) != 0 || fdn_limiter_create(&g_limiter, &lo) != 0 ||
        fdn_breakers_create(&g_breakers, NULL) != 0 || fdn_pools_create(&g_pools, NULL) != 0 ||
        fdn_telemetry_create(&g_tm, NULL) != 0)
        return -1;
    /* a small bound keeps GET /v1/breakers cheap across millions of inputs and takes the
     * "set is full" path (503) once it is reached */
    if (fdn_breakers_set_max(g_breakers, MAX_BREAKERS) != 0 ||
        fdn_breaker_create_in(g_breakers, "db", NULL, NULL) != 0)
        return -1;
    return mount_all(g_admin) != 0 || mount_all(g_admin_token) != 0 ? -1 : 0;
}

/* Whether auth carries TOKEN as RFC 7235 2.1 says: the scheme "Bearer" in any case, one or
 * more spaces, the token exactly, then only spaces or tabs (written here apart from
 * src/admin/http.c, to check it). */
static bool auth_accepted(const char *auth)
{
    static const char scheme[] = "bearer";
    if (auth == NULL)
        return false;
    for (size_t i = 0; i < 6; i++)
        if (tolower((unsigned char)auth[i]) != scheme[i])
            return false; /* (a shorter value stops at its NUL) */
    if (auth[6] != ' ')
        return false;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t); /* trailing spaces and tabs are not the value's (RFC 9110 5.5) */
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    return n == strlen(TOKEN) && memcmp(t, TOKEN, n) == 0;
}

/* "METHOD URI\n" then the body, through a with the header auth (NULL: none). */
static int dispatch(fdn_admin_t *a, const char *auth, const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    const uint8_t *sp = memchr(data, ' ', line);
    if (sp == NULL || (size_t)(sp - data) >= 8 || line > 5000)
        return 0;
    char method[8];
    memcpy(method, data, (size_t)(sp - data));
    method[sp - data] = '\0';
    size_t ulen = line - (size_t)(sp - data) - 1;
    char *uri = malloc(ulen + 1);
    size_t blen = nl ? size - line - 1 : 0;
    char *body = malloc(blen + 1);
    if (uri == NULL || body == NULL)
        abort();
    memcpy(uri, sp + 1, ulen);
    uri[ulen] = '\0';
    if (blen)
        memcpy(body, nl + 1, blen);
    body[blen] = '\0';
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        (strcmp(uri, "/metrics") == 0 || strcmp(uri, "/metrics?") == 0) && !FDN_FUZZ_REPLAYING()) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < size; i++)
            h = (h ^ data[i]) * 16777619u;
        if (h % METRICS_EVERY != 0) {
            free(uri);
            free(body);
            return 0;
        }
    }
    fdn__http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    fdn__admin_dispatch(a, method, uri, auth, body, blen, &resp);
    if (resp.status < 200 || resp.status > 599 || (resp.json == NULL && resp.text == NULL))
        abort();
    if (resp.status >= 400 && resp.status != 429 &&
        !json_is_object(json_object_get(resp.json, "error")))
        abort(); /* every failure carries the error object */
    if ((resp.status == 401) != (a == g_admin_token && !auth_accepted(auth)))
        abort(); /* 401 exactly when the server has a token the header does not carry */
    fdn__http_resp_clear(&resp);
    free(uri);
    free(body);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_admin == NULL && setup() != 0)
        abort();
    fdn_admin_t *a = g_admin;
    char *auth = NULL; /* the Authorization header: none */
    if (size > 0 && data[0] == '#') {
        const uint8_t *end = memchr(data, '\n', size);
        if (end == NULL)
            return 0;
        size_t alen = (size_t)(end - data) - 1;
        if (alen > 0) { /* a header holds no NUL: the value ends at the first */
            auth = malloc(alen + 1);
            if (auth == NULL)
                abort();
            memcpy(auth, data + 1, alen);
            auth[alen] = '\0';
        }
        a = g_admin_token;
        size -= (size_t)(end - data) + 1;
        data = end + 1;
    }
    int rc = dispatch(a, auth, data, size);
    free(auth);
    return rc;
}
