/*
 * DESIGN: pure request parsing for the admin HTTP surface.
 *
 * No threads, no locks, no globals, no allocation except the JSON error body: every function
 * here works on caller memory and is fuzzed (fuzz/fuzz_http_request.c). The request target is
 * parsed from the raw bytes the client sent (captured before libmicrohttpd unescapes it), so
 * the decoding rules are ours and tested: the path is split on '/' BEFORE percent-decoding
 * and a decoded '/' ("%2F") is refused, so a config path or breaker name cannot smuggle a
 * separator; decoded NUL/control bytes are refused everywhere.
 * Invariant: on success every pointer in fdn__http_target_t points into t->buf.
 */
#include "admin/admin_int.h"
#include "core/hex.h" /* static inline only: no libfdn internal symbol */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Decode src[0..n) into dst (which has room for n + 1 bytes), NUL-terminate. src is raw
 * target text, printable ASCII only (fdn__http_target_parse checks it first), so only an
 * escape can decode to a control byte. plus_space: '+' means ' ' (query strings).
 * *escaped: whether it held an escape. Returns decoded length or -1 on a bad escape or a
 * decoded control byte.
 */
static long decode_part(char *dst, const char *src, size_t n, bool plus_space, bool *escaped)
{
    size_t o = 0;
    *escaped = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int h = fdn__hex_digit(src[i + 1]);
            int l = fdn__hex_digit(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
            if (c < 0x20 || c == 0x7f)
                return -1;
            *escaped = true;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (long)o;
}

int fdn__http_target_parse(fdn__http_target_t *t, const char *uri, size_t len)
{
    if (t == NULL || uri == NULL)
        return FDN_EINVAL;
    t->nsegs = 0;
    t->nquery = 0;
    t->buf[0] = '\0';
    if (len > FDN__HTTP_MAX_URI)
        return FDN_ETOO_LARGE;
    if (len == 0 || uri[0] != '/')
        return FDN_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return FDN_EINVAL; /* raw targets are printable ASCII without spaces */
    }

    const char *q = memchr(uri, '?', len);
    size_t plen = q ? (size_t)(q - uri) : len;
    /* decoded output never exceeds input + one extra NUL per bare query key + 1; buf holds
     * MAX_URI + MAX_QUERY + 8 */
    size_t out = 0;

    /* path: skip the leading '/', ignore one trailing '/' */
    size_t i = 1;
    size_t pend = plen;
    if (pend > 1 && uri[pend - 1] == '/')
        pend--;
    if (pend < plen && uri[pend - 1] == '/')
        return FDN_EINVAL; /* "//" at the end: an empty segment, as inside */
    while (i < pend) {
        const char *s = uri + i;
        const char *slash = memchr(s, '/', pend - i);
        size_t n = slash ? (size_t)(slash - s) : pend - i;
        if (n == 0)
            return FDN_EINVAL; /* "//" */
        if (t->nsegs == FDN__HTTP_MAX_SEGS)
            return FDN_ETOO_LARGE;
        char *dst = t->buf + out;
        bool esc;
        long d = decode_part(dst, s, n, false, &esc);
        if (d <= 0)
            return FDN_EINVAL;
        /* "." and ".."; a '/' only an escape can give (the raw segment has none) */
        if ((dst[0] == '.' && (d == 1 || (d == 2 && dst[1] == '.'))) ||
            (esc && memchr(dst, '/', (size_t)d)))
            return FDN_EINVAL;
        t->segs[t->nsegs++] = dst;
        out += (size_t)d + 1;
        i += n + 1;
    }

    if (q == NULL)
        return 0;
    i = plen + 1;
    while (i <= len) {
        const char *s = uri + i;
        const char *amp = memchr(s, '&', len - i);
        size_t n = amp ? (size_t)(amp - s) : len - i;
        if (n > 0) {
            if (t->nquery == FDN__HTTP_MAX_QUERY || out + n + 2 > sizeof t->buf)
                return FDN_ETOO_LARGE;
            const char *eq = memchr(s, '=', n);
            size_t kn = eq ? (size_t)(eq - s) : n;
            size_t vn = eq ? n - kn - 1 : 0;
            char *k = t->buf + out;
            bool esc;
            long kd = decode_part(k, s, kn, true, &esc);
            if (kd <= 0)
                return FDN_EINVAL;
            out += (size_t)kd + 1;
            char *v = t->buf + out;
            long vd = decode_part(v, eq ? eq + 1 : s + n, vn, true, &esc);
            if (vd < 0)
                return FDN_EINVAL;
            out += (size_t)vd + 1;
            for (size_t j = 0; j < t->nquery; j++)
                if (strcmp(t->query[j].key, k) == 0)
                    return FDN_EINVAL; /* ambiguous duplicate */
            t->query[t->nquery].key = k;
            t->query[t->nquery].val = v;
            t->nquery++;
        }
        i += n + 1;
    }
    return 0;
}

const char *fdn__http_query_get(const fdn__http_target_t *t, const char *key)
{
    for (size_t i = 0; i < t->nquery; i++)
        if (strcmp(t->query[i].key, key) == 0)
            return t->query[i].val;
    return NULL;
}

int fdn__http_query_only(const fdn__http_target_t *t, const char *const *allowed, const char **bad)
{
    for (size_t i = 0; i < t->nquery; i++) {
        bool ok = false;
        for (size_t j = 0; !ok && allowed != NULL && allowed[j] != NULL; j++)
            ok = strcmp(t->query[i].key, allowed[j]) == 0;
        if (!ok) {
            if (bad)
                *bad = t->query[i].key;
            return FDN_EINVAL;
        }
    }
    return 0;
}

bool fdn__http_route_match(const char *pattern, const fdn__http_target_t *t, fdn__http_kv_t *params,
                           size_t max_params, size_t *nparams)
{
    size_t np = 0;
    size_t seg = 0;
    const char *p = pattern;
    if (p == NULL || *p != '/')
        return false;
    p++;
    while (*p != '\0') {
        if (seg >= t->nsegs)
            return false;
        const char *end = p;
        if (*p == '{') {
            while (*end != '\0' && *end != '/')
                end++;
        }
        if (end - p >= 2 && end[-1] == '}') {
            if (np < max_params && params != NULL) {
                /* key points at "name}..." inside the pattern (not NUL-terminated);
                 * fdn__http_param compares up to the closing brace */
                params[np].key = p + 1;
                params[np].val = t->segs[seg];
            }
            np++;
            p = end;
        } else {
            /* a literal segment: the same bytes, up to the pattern's '/' or end */
            const char *sg = t->segs[seg];
            while (*p != '\0' && *p != '/' && *p == *sg) {
                p++;
                sg++;
            }
            if ((*p != '\0' && *p != '/') || *sg != '\0')
                return false;
        }
        seg++;
        if (*p == '/')
            p++;
    }
    if (seg != t->nsegs || np > max_params)
        return false;
    if (nparams)
        *nparams = np;
    return true;
}

int fdn__http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 20)
        return FDN_EINVAL;
    const char *d = (*s == '-') ? s + 1 : s;
    if (*d == '\0')
        return FDN_EINVAL;
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9')
            return FDN_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return FDN_EINVAL;
    if ((int64_t)v < min || (int64_t)v > max)
        return FDN_EINVAL;
    *out = (int64_t)v;
    return 0;
}

int fdn__http_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 20)
        return FDN_EINVAL;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return FDN_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || (uint64_t)v > max)
        return FDN_EINVAL;
    *out = (uint64_t)v;
    return 0;
}

int fdn__http_parse_order(const char *s, int *desc)
{
    if (s == NULL)
        return FDN_EINVAL;
    if (strcmp(s, "asc") == 0) {
        *desc = 0;
        return 0;
    }
    if (strcmp(s, "desc") == 0) {
        *desc = 1;
        return 0;
    }
    return FDN_EINVAL;
}

int fdn__http_check_string(const char *s, size_t max)
{
    if (s == NULL || *s == '\0')
        return FDN_EINVAL;
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++, n++)
        if (*c < 0x20 || *c == 0x7f || n >= max)
            return FDN_EINVAL;
    return 0;
}

unsigned fdn__http_status_for(int code)
{
    switch (code) {
    case 0:
        return 200;
    case FDN_EPARSE:
    case FDN_EDESERIALIZE:
        return 400;
    case FDN_EACCES:
        return 401;
    case FDN_ECONFIG_FORBIDDEN:
    case FDN_EPATH_SECURITY:
    case FDN_EVALUE_SECURITY:
    case FDN_EPERM:
        return 403;
    case FDN_ENOENT:
    case FDN_ECONFIG_NOT_FOUND:
    case FDN_ECONFIG_PATH_NOT_FOUND:
    case FDN_ESERVICE_NOT_FOUND:
    case FDN_EBREAKER_NOT_FOUND:
        return 404;
    case FDN_ENOTSUP:
        return 405;
    case FDN_EEXIST:
        return 409;
    case FDN_ETOO_LARGE:
        return 413;
    case FDN_EINVAL:
    case FDN_ECONFIG_INVALID:
    case FDN_ECONFIG_RANGE:
    case FDN_ECONFIG_CONSTRAINT:
    case FDN_ECONFIG_STRUCTURE:
    case FDN_ECONFIG_MISSING:
    case FDN_ECONFIG_INVALID_PATH:
    case FDN_EVALIDATION:
    case FDN_ETYPE_MISMATCH:
    case FDN_EEVENT_TYPE:
        return 422;
    case FDN_ERATE_LIMITED:
        return 429;
    case FDN_EUNAVAILABLE:
    case FDN_ESHUTDOWN:
    case FDN_ECONFIG_UNAVAILABLE:
    case FDN_ECIRCUIT_OPEN:
    case FDN_EBUSY:
    case FDN_EUNHEALTHY:
    case FDN_ELIMITER:
    case FDN_ENOSPC: /* a bounded table is full (the event store's types) */
        return 503;
    case FDN_ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

/* The API's error body is the core serialiser's object (fdn_err_to_json: the one place that
 * escapes and repairs text, so a message quoting client bytes stays valid JSON) cut to the
 * documented fields, with the reference's code as "code". */
/* An error's context text ("key=value key2=\"a \\\"quoted\\\" value\"", fdn_err_add_context:
 * logfmt, '"' and '\\' escaped inside quotes) as a JSON object of strings, for the error body:
 * e.g. a config error's path, rule and value_type. A quoted value reads back exactly, escapes
 * undone; a value cut short runs to the end of the text; one not valid UTF-8 is left out. */
static json_t *context_object(const char *s)
{
    json_t *o = json_object();
    char key[64];
    char val[FDN_ERR_CONTEXT_MAX];
    size_t n = 0;
    while (o != NULL && fdn_err_context_next(&s, key, sizeof key, val, sizeof val, &n)) {
        json_t *v = json_stringn(val, n);
        if (v != NULL)
            json_object_set_new(o, key, v);
    }
    return o;
}

json_t *fdn__http_error_json(int code, const fdn_error_t *err)
{
    fdn_error_t tmp = FDN_ERROR_INIT;
    if (err == NULL || err->code != code || err->message[0] == '\0') {
        (void)fdn_err_set(&tmp, code, NULL);
        err = &tmp;
    }
    char stack[2048];
    char *text = stack;
    size_t n = fdn_err_to_json(err, stack, sizeof(stack));
    if (n >= sizeof(stack)) {
        text = fdn_malloc(n + 1);
        if (text == NULL)
            return NULL;
        (void)fdn_err_to_json(err, text, n + 1);
    }
    json_t *full = NULL; /* out of memory: NULL, as for the other allocations here */
    (void)fdn_json_loadb(text, n, 0, &full, NULL);
    if (text != stack)
        fdn_free(text);
    if (full == NULL)
        return NULL;
    json_t *e = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "code",
                          json_object_get(full, "ref_code"), "type", json_object_get(full, "type"),
                          "category", json_object_get(full, "category"), "severity",
                          json_object_get(full, "severity"), "message",
                          json_object_get(full, "message"), "name", json_object_get(full, "name"));
    json_decref(full);
    if (e == NULL)
        return NULL;
    if (err->context[0] != '\0') {
        json_t *ctx = context_object(err->context);
        if (ctx != NULL && json_object_size(ctx) > 0)
            json_object_set_new(e, "context", ctx);
        else
            json_decref(ctx);
    }
    return json_pack("{s:o}", "error", e);
}

bool fdn__http_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* compare over max(alen, blen) bytes so the time does not reveal the common prefix */
    size_t n = alen > blen ? alen : blen;
    volatile unsigned char acc = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        acc = (unsigned char)(acc | (x ^ y));
    }
    return acc == 0;
}

int fdn__http_parse_listen(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    if (s == NULL || host == NULL || hostsz == 0)
        return FDN_EINVAL;
    const char *hs = s;
    size_t hn;
    const char *ps;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return FDN_EINVAL;
        hs = s + 1;
        hn = (size_t)(rb - hs);
        ps = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return FDN_EINVAL;
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            return FDN_EINVAL; /* bare IPv6 needs brackets */
        hn = (size_t)(colon - s);
        ps = colon + 1;
    }
    if (hn == 0 || hn >= hostsz)
        return FDN_EINVAL;
    uint64_t p;
    if (fdn__http_parse_u64(ps, 65535, &p) != 0)
        return FDN_EINVAL;
    memcpy(host, hs, hn);
    host[hn] = '\0';
    *port = (uint16_t)p;
    return 0;
}
