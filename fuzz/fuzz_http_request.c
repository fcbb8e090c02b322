/* libFuzzer target: the admin HTTP request parsers (request target, query pairs, route
 * matching, value validators, listen addresses). Input layout: the whole input is a request
 * target; every query value is also run through the integer/order/string validators, and
 * the target is matched against the real route patterns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[] = {
    "/health",
    "/metrics",
    "/v1/config",
    "/v1/config/{path}",
    "/v1/config/reset",
    "/v1/events",
    "/v1/events/batch",
    "/v1/events/{id}",
    "/v1/events/stats",
    "/v1/limiter/check",
    "/v1/breakers",
    "/v1/breakers/{name}",
    "/v1/breakers/{name}/reset",
    "/v1/pools",
    "/v1/registry",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fdn__http_target_t t;
    if (fdn__http_target_parse(&t, (const char *)data, size) == 0) {
        /* the DESIGN invariant: every decoded part lies inside t.buf (a decoding overrun
         * stays inside the struct, where ASan cannot see it, and clobbers these pointers) */
        const char *lo = t.buf, *hi = t.buf + sizeof t.buf;
        for (size_t i = 0; i < t.nsegs; i++)
            if (t.segs[i] < lo || t.segs[i] >= hi ||
                memchr(t.segs[i], '\0', (size_t)(hi - t.segs[i])) == NULL)
                abort();
        for (size_t i = 0; i < t.nquery; i++)
            if (t.query[i].key < lo || t.query[i].key >= hi || t.query[i].val < lo ||
                t.query[i].val >= hi ||
                memchr(t.query[i].val, '\0', (size_t)(hi - t.query[i].val)) == NULL)
                abort();
        for (size_t i = 0; i < t.nquery; i++) {
            int64_t v;
            uint64_t u;
            int d;
            (void)fdn__http_parse_i64(t.query[i].val, INT64_MIN, INT64_MAX, &v);
            (void)fdn__http_parse_u64(t.query[i].val, UINT64_MAX, &u);
            (void)fdn__http_parse_order(t.query[i].val, &d);
            (void)fdn__http_check_string(t.query[i].val, 256);
            if (fdn__http_query_get(&t, t.query[i].key) != t.query[i].val)
                abort(); /* keys are unique after a successful parse */
        }
        fdn__http_kv_t p[FDN__HTTP_MAX_PARAMS];
        size_t np;
        for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
            if (fdn__http_route_match(patterns[i], &t, p, FDN__HTTP_MAX_PARAMS, &np))
                for (size_t k = 0; k < np; k++)
                    if (strchr(p[k].val, '/') != NULL || p[k].val[0] == '\0')
                        abort(); /* a capture is one non-empty segment */
    }
    char s[300];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    char host[64];
    uint16_t port;
    (void)fdn__http_parse_listen(s, host, sizeof host, &port);
    return 0;
}
