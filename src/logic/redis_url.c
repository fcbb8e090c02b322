/*
 * DESIGN: the Redis URL parser (logic/redis_url.h): redis://[[user]:password@]host[:port][/db].
 *
 * Strict on purpose: the URL comes from a config file, an environment variable or a command
 * line, and a typo must fail at start with a message, not connect somewhere else. So: the
 * scheme must be "redis://" ("rediss://", TLS, is refused by name), the host is a name of
 * letters, digits, '-', '.' and '_' or a bracketed IPv6 address, the port is 1..65535 in
 * decimal, the db a decimal number, and nothing may follow it (no query, no fragment).
 * User and password may hold %XX escapes (so ':' or '@' can appear in a password); they are
 * decoded, and a decoded NUL is refused.
 *
 * Threads: none; reads only its arguments.
 */
#include "logic/redis_url.h"
#include "core/hex.h"

#include <stdbool.h>
#include <string.h>

/* Decode [s, s+n) with %XX escapes into dst (cap bytes with the NUL). */
static int decode(const char *s, size_t n, char *dst, size_t cap, const char *what,
                  fdn_error_t *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return fdn_err_set(err, FDN_EINVAL, "redis url: bad %% escape in the %s", what);
            int a = fdn__hex_digit(s[i + 1]), b = fdn__hex_digit(s[i + 2]);
            if (a < 0 || b < 0)
                return fdn_err_set(err, FDN_EINVAL, "redis url: bad %% escape in the %s", what);
            c = a * 16 + b;
            if (c == 0)
                return fdn_err_set(err, FDN_EINVAL, "redis url: NUL in the %s", what);
            i += 2;
        }
        if (o + 1 >= cap)
            return fdn_err_set(err, FDN_EINVAL, "redis url: %s longer than %zu bytes", what,
                               cap - 1);
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

/* Parse a decimal number in [s, s+n) into *out, in [lo, hi]. */
static bool parse_num(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int fdn__redis_url_parse(const char *url, fdn__redis_url_t *out, fdn_error_t *err)
{
    static const char scheme[] = "redis://";
    if (url == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "redis url: missing");
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "rediss://", 9) == 0)
        return fdn_err_set(err, FDN_EINVAL, "redis url: TLS (rediss://) is not supported");
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return fdn_err_set(err, FDN_EINVAL, "redis url: must start with redis:// (got \"%.32s\")",
                           url);
    const char *p = url + sizeof(scheme) - 1;
    /* authority: up to the first '/' (or the end); userinfo up to its last '@' */
    const char *auth_end = strchr(p, '/');
    if (auth_end == NULL)
        auth_end = p + strlen(p);
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        int rc = decode(p, ulen, out->user, sizeof(out->user), "user", err);
        if (rc)
            return rc;
        if (colon != NULL) {
            out->has_password = true;
            rc = decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password),
                        "password", err);
            if (rc)
                return rc;
        } else if (out->user[0] != '\0') {
            /* redis://secret@host: a lone user part is the password, as redis-cli reads it */
            _Static_assert(sizeof(out->password) >= sizeof(out->user), "password holds a user");
            memcpy(out->password, out->user, sizeof(out->user));
            out->user[0] = '\0';
            out->has_password = true;
        }
        p = at + 1;
    }
    /* host */
    const char *h = p, *hend;
    const char *port_at;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(auth_end - p));
        if (hend == NULL)
            return fdn_err_set(err, FDN_EINVAL, "redis url: '[' without ']' in the host");
        h = p + 1;
        for (const char *q = h; q < hend; q++)
            if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                  (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.'))
                return fdn_err_set(err, FDN_EINVAL, "redis url: bad IPv6 address");
        port_at = hend + 1;
    } else {
        hend = p;
        while (hend < auth_end && *hend != ':')
            hend++;
        for (const char *q = h; q < hend; q++)
            if (!host_char(*q))
                return fdn_err_set(err, FDN_EINVAL, "redis url: bad character 0x%02x in the host",
                                   (unsigned)(unsigned char)*q);
        port_at = hend;
    }
    size_t hlen = (size_t)(hend - h);
    if (hlen == 0)
        return fdn_err_set(err, FDN_EINVAL, "redis url: no host");
    if (hlen >= sizeof(out->host))
        return fdn_err_set(err, FDN_EINVAL, "redis url: host longer than %zu bytes",
                           sizeof(out->host) - 1);
    memcpy(out->host, h, hlen);
    out->host[hlen] = '\0';
    if (port_at < auth_end) {
        long v;
        if (*port_at != ':' ||
            !parse_num(port_at + 1, (size_t)(auth_end - port_at - 1), 1, 65535, &v))
            return fdn_err_set(err, FDN_EINVAL, "redis url: port must be 1..65535");
        out->port = (int)v;
    }
    /* db */
    if (*auth_end == '/') {
        const char *d = auth_end + 1;
        size_t dlen = strlen(d);
        long v;
        if (dlen > 0 && !parse_num(d, dlen, 0, 2147483647L, &v))
            return fdn_err_set(err, FDN_EINVAL,
                               "redis url: the path must be a database number (got \"%.32s\")", d);
        out->db = dlen > 0 ? (int)v : 0;
    }
    return 0;
}
