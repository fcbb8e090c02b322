/*
 * DESIGN: the rate limiter's HTTP request bodies (admin/limiter_req.h), pure so that it can be
 * fuzzed without a server (fuzz/fuzz_limiter_req.c). One pass refuses members the endpoint
 * does not take; then the fields are read in a fixed order (key, limit, window_ms, burst,
 * algorithm, the op's own field) and the first wrong one is named, so a client learns one
 * problem at a time and always the same one for the same body. A check's cost above what
 * the rule ever admits at once (the limit; the burst for the bucket algorithms) is refused
 * here too: no wait could satisfy it, so a 429 with a Retry-After would mislead the client.
 * The rule is then checked as the library does (fdn_limit_rule_validate): fields each in range
 * can still make a bucket too large (burst x window_ms past 2^62 ns), refused naming them.
 * Threads: none; no state.
 */
#include "admin/limiter_req.h"
#include "admin/json_num.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* burst x window_ms (ms) a bucket may hold: 2^62 ns (the library's scaled maximum) / 10^6 */
#define LIMITER_BUCKET_MAX_MS ((long long)((UINT64_C(1) << 62) / 1000000))

static int algo_parse(const char *s, fdn_limit_algo_t *out)
{
    static const struct {
        const char *name;
        fdn_limit_algo_t algo;
    } tab[] = {{"fixed_window", FDN_LIMIT_FIXED_WINDOW},
               {"token_bucket", FDN_LIMIT_TOKEN_BUCKET},
               {"gcra", FDN_LIMIT_GCRA},
               {"sliding_window", FDN_LIMIT_SLIDING_WINDOW}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].name) == 0) {
            *out = tab[i].algo;
            return 0;
        }
    return FDN_EINVAL;
}

/* The library's own check of the rule (fdn_limit_rule_validate) once each field is within its
 * range: what is left are the bucket algorithms' sizes, named by their fields. */
static int rule_check(const fdn_limit_rule_t *r, fdn_error_t *err)
{
    fdn_error_t why;
    if (fdn_limit_rule_validate(r, &why) == 0)
        return 0;
    /* the bucket holds burst (the limit without one) tokens of window_ms each, in ns */
    const char *b = r->burst > 0 ? "burst" : "limit";
    long long bv = r->burst > 0 ? (long long)r->burst : (long long)r->limit;
    if (r->algo == FDN_LIMIT_TOKEN_BUCKET)
        return fdn_err_set(err, FDN_EINVAL,
                           "fields '%s' (%lld) and 'window_ms' (%lld) make a token bucket too "
                           "large: %s x window_ms must be at most %lld (2^62 ns), so window_ms "
                           "at most %lld with this %s",
                           b, bv, (long long)r->period_ms, b, LIMITER_BUCKET_MAX_MS,
                           LIMITER_BUCKET_MAX_MS / bv, b);
    if (r->algo == FDN_LIMIT_GCRA)
        return fdn_err_set(err, FDN_EINVAL,
                           "fields '%s' (%lld), 'window_ms' (%lld) and 'limit' (%lld) make a "
                           "gcra bucket too large: %s x window_ms / limit must be at most %lld "
                           "(2^62 ns)",
                           b, bv, (long long)r->period_ms, (long long)r->limit, b,
                           LIMITER_BUCKET_MAX_MS);
    return fdn_err_set(err, FDN_EINVAL, "invalid rule: %s", why.message);
}

/* 0 with *out set, 1 when absent and optional (*out untouched), or FDN_EINVAL. */
static int int_field(const json_t *o, const char *key, bool required, int64_t min, int64_t max,
                     int64_t *out, fdn_error_t *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        if (required)
            return fdn_err_set(err, FDN_EINVAL, "field '%s' is required", key);
        return 1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fdn_err_set(err, FDN_EINVAL, "field '%s' must be an integer in [%lld, %lld]", key,
                           (long long)min, (long long)max);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int fdn__limiter_req_parse(const json_t *body, fdn__limiter_req_op_t op, fdn__limiter_req_t *q,
                           fdn_error_t *err)
{
    static const char *const extras[] = {"cost", "cost", "count", NULL};
    if ((unsigned)op > FDN__LREQ_GET)
        return fdn_err_set(err, FDN_EINVAL, "unknown limiter operation");
    const char *extra = extras[op];
    memset(q, 0, sizeof(*q));
    q->rule = (fdn_limit_rule_t){FDN_LIMIT_FIXED_WINDOW, 0, 0, 0};
    if (!json_is_object(body))
        return fdn_err_set(err, FDN_EINVAL, "body must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "key") != 0 && strcmp(k, "limit") != 0 && strcmp(k, "window_ms") != 0 &&
            strcmp(k, "algorithm") != 0 && strcmp(k, "burst") != 0 && strcmp(k, "identity") != 0 &&
            (extra == NULL || strcmp(k, extra) != 0))
            return fdn_err_set(err, FDN_EINVAL, "unknown field '%s'", k);
    }
    json_t *key = json_object_get(body, "key");
    if (!json_is_string(key) || json_string_length(key) == 0 ||
        json_string_length(key) > FDN__LIMITER_REQ_KEY_MAX)
        return fdn_err_set(err, FDN_EINVAL, "field 'key' must be a string of 1..%d bytes",
                           FDN__LIMITER_REQ_KEY_MAX);
    q->key = json_string_value(key);
    q->keylen = json_string_length(key);
    /* U+001F joins an identity and its key ("tenant-7\x1fsearch"): a key holding it would
     * be another identity's key and spend its quota */
    if (memchr(q->key, FDN_LIMIT_IDENTITY_SEP, q->keylen) != NULL)
        return fdn_err_set(err, FDN_EINVAL,
                           "field 'key' must not contain U+001F (it separates identity and key)");
    json_t *id = json_object_get(body, "identity");
    size_t idlen = 0;
    if (id != NULL) {
        idlen = json_string_length(id);
        if (!json_is_string(id) || idlen == 0 || idlen > FDN__LIMITER_REQ_IDENTITY_MAX ||
            memchr(json_string_value(id), FDN_LIMIT_IDENTITY_SEP, idlen) != NULL)
            return fdn_err_set(err, FDN_EINVAL,
                               "field 'identity' must be a string of 1..%d bytes without U+001F",
                               FDN__LIMITER_REQ_IDENTITY_MAX);
        q->identity = json_string_value(id);
    }
    /* "\x01[<identity>\x1f]<key>": the HTTP namespace (FDN_LIMIT_KEY_NS_HTTP), so a client's
     * key never names a named rule's, an entity's or an inline rule's cell */
    size_t at = 0;
    q->keybuf[at++] = FDN_LIMIT_KEY_NS_HTTP;
    if (q->identity != NULL) {
        memcpy(q->keybuf + at, q->identity, idlen);
        at += idlen;
        q->keybuf[at++] = FDN_LIMIT_IDENTITY_SEP;
    }
    memcpy(q->keybuf + at, q->key, q->keylen);
    q->keylen += at;
    q->keybuf[q->keylen] = '\0';
    q->key = q->keybuf;
    int rc;
    if ((rc = int_field(body, "limit", true, 1, INT32_MAX, &q->rule.limit, err)) < 0 ||
        (rc = int_field(body, "window_ms", true, 1, FDN__LIMITER_REQ_WINDOW_MAX_MS,
                        &q->rule.period_ms, err)) < 0 ||
        (rc = int_field(body, "burst", false, 0, INT32_MAX, &q->rule.burst, err)) < 0)
        return rc;
    json_t *algo = json_object_get(body, "algorithm");
    if (algo != NULL &&
        (!json_is_string(algo) || algo_parse(json_string_value(algo), &q->rule.algo) != 0))
        return fdn_err_set(err, FDN_EINVAL,
                           "field 'algorithm' must be one of fixed_window, "
                           "token_bucket, gcra, sliding_window");
    bool bucket = q->rule.algo == FDN_LIMIT_TOKEN_BUCKET || q->rule.algo == FDN_LIMIT_GCRA;
    if (json_object_get(body, "burst") != NULL && !bucket)
        return fdn_err_set(err, FDN_EINVAL,
                           "field 'burst' applies only to the token_bucket and gcra algorithms");
    if ((rc = rule_check(&q->rule, err)) < 0)
        return rc;
    switch (op) {
    case FDN__LREQ_CHECK:
    case FDN__LREQ_INC:
        q->value = 1;
        rc = int_field(body, "cost", false, 1, INT32_MAX, &q->value, err);
        break;
    case FDN__LREQ_SET:
        rc = int_field(body, "count", true, 0, INT32_MAX, &q->value, err);
        break;
    case FDN__LREQ_GET:
        rc = 0;
        break;
    }
    if (rc < 0)
        return rc;
    int64_t capacity = bucket && q->rule.burst > 0 ? q->rule.burst : q->rule.limit;
    if (op == FDN__LREQ_CHECK && q->value > capacity)
        return fdn_err_set(err, FDN_EINVAL,
                           "field 'cost' (%lld) exceeds what the rule ever admits at once (%lld): "
                           "the check could never succeed",
                           (long long)q->value, (long long)capacity);
    return 0;
}

/* ---- the fast path (fdn__limiter_req_fast) ---------------------------------------------- */

enum { F_KEY, F_LIMIT, F_WINDOW, F_ALGO, F_BURST, F_IDENTITY, F_EXTRA, F_N };

typedef struct fval {
    bool set, is_str;
    const char *s; /* a string's bytes (is_str) */
    size_t n;
    int64_t i; /* an integer (!is_str) */
} fval_t;

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string of printable ASCII without escapes: its bytes, and p past the closing quote. */
static bool plain_string(const char **pp, const char *e, const char **s, size_t *n)
{
    const char *p = *pp;
    if (p >= e || *p != '"')
        return false;
    const char *b = ++p;
    while (p < e && *p != '"') {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '\\')
            return false;
        p++;
    }
    if (p >= e)
        return false;
    *s = b;
    *n = (size_t)(p - b);
    *pp = p + 1;
    return true;
}

static int field_of(const char *k, size_t n, const char *extra)
{
    static const char *const names[] = {"key",       "limit", "window_ms",
                                        "algorithm", "burst", "identity"};
    for (int f = 0; f < F_EXTRA; f++)
        if (strlen(names[f]) == n && memcmp(names[f], k, n) == 0)
            return f;
    if (extra != NULL && strlen(extra) == n && memcmp(extra, k, n) == 0)
        return F_EXTRA;
    return -1;
}

static bool int_in(const fval_t *v, int64_t min, int64_t max)
{
    return !v->is_str && v->i >= min && v->i <= max;
}

int fdn__limiter_req_fast(const char *body, size_t len, fdn__limiter_req_op_t op,
                          fdn__limiter_req_t *q)
{
    static const char *const extras[] = {"cost", "cost", "count", NULL};
    if ((unsigned)op > FDN__LREQ_GET || body == NULL)
        return FDN__LREQ_SLOW;
    fval_t f[F_N];
    memset(f, 0, sizeof f);
    const char *p = body, *e = body + len;
    p = skip_ws(p, e);
    if (p >= e || *p != '{')
        return FDN__LREQ_SLOW;
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *k;
            size_t kn;
            if (!plain_string(&p, e, &k, &kn))
                return FDN__LREQ_SLOW;
            int fi = field_of(k, kn, extras[op]);
            if (fi < 0 || f[fi].set) /* unknown or repeated: the full path's error */
                return FDN__LREQ_SLOW;
            p = skip_ws(p, e);
            if (p >= e || *p != ':')
                return FDN__LREQ_SLOW;
            p = skip_ws(p + 1, e);
            fval_t *v = &f[fi];
            v->set = true;
            if (p < e && *p == '"') {
                v->is_str = true;
                if (!plain_string(&p, e, &v->s, &v->n))
                    return FDN__LREQ_SLOW;
            } else if (!fdn__json_int18(&p, e, &v->i)) {
                return FDN__LREQ_SLOW;
            }
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') {
                p++;
                break;
            }
            return FDN__LREQ_SLOW;
        }
    }
    if (skip_ws(p, e) != e)
        return FDN__LREQ_SLOW;
    /* the checks of fdn__limiter_req_parse; any failure is left to it */
    const fval_t *key = &f[F_KEY], *id = &f[F_IDENTITY];
    if (!key->set || !key->is_str || key->n == 0 || key->n > FDN__LIMITER_REQ_KEY_MAX)
        return FDN__LREQ_SLOW;
    if (id->set && (!id->is_str || id->n == 0 || id->n > FDN__LIMITER_REQ_IDENTITY_MAX))
        return FDN__LREQ_SLOW; /* (plain strings hold no U+001F) */
    if (!f[F_LIMIT].set || !int_in(&f[F_LIMIT], 1, INT32_MAX) || !f[F_WINDOW].set ||
        !int_in(&f[F_WINDOW], 1, FDN__LIMITER_REQ_WINDOW_MAX_MS) ||
        (f[F_BURST].set && !int_in(&f[F_BURST], 0, INT32_MAX)))
        return FDN__LREQ_SLOW;
    fdn_limit_algo_t algo = FDN_LIMIT_FIXED_WINDOW;
    if (f[F_ALGO].set) {
        char a[16];
        if (!f[F_ALGO].is_str || f[F_ALGO].n >= sizeof a)
            return FDN__LREQ_SLOW;
        memcpy(a, f[F_ALGO].s, f[F_ALGO].n);
        a[f[F_ALGO].n] = '\0';
        if (algo_parse(a, &algo) != 0)
            return FDN__LREQ_SLOW;
    }
    bool bucket = algo == FDN_LIMIT_TOKEN_BUCKET || algo == FDN_LIMIT_GCRA;
    if (f[F_BURST].set && !bucket)
        return FDN__LREQ_SLOW;
    int64_t value = 0;
    const fval_t *x = &f[F_EXTRA];
    switch (op) {
    case FDN__LREQ_CHECK:
    case FDN__LREQ_INC:
        if (x->set && !int_in(x, 1, INT32_MAX))
            return FDN__LREQ_SLOW;
        value = x->set ? x->i : 1;
        break;
    case FDN__LREQ_SET:
        if (!x->set || !int_in(x, 0, INT32_MAX))
            return FDN__LREQ_SLOW;
        value = x->i;
        break;
    case FDN__LREQ_GET:
        break;
    }
    int64_t burst = f[F_BURST].set ? f[F_BURST].i : 0;
    int64_t capacity = bucket && burst > 0 ? burst : f[F_LIMIT].i;
    if (op == FDN__LREQ_CHECK && value > capacity)
        return FDN__LREQ_SLOW;
    fdn_limit_rule_t rule = {algo, f[F_LIMIT].i, f[F_WINDOW].i, burst};
    if (fdn_limit_rule_validate(&rule, NULL) != 0)
        return FDN__LREQ_SLOW; /* the slow path names the fields */
    memset(q, 0, offsetof(fdn__limiter_req_t, keybuf));
    q->rule = rule;
    q->value = value;
    size_t at = 0;
    q->keybuf[at++] = FDN_LIMIT_KEY_NS_HTTP; /* as fdn__limiter_req_parse */
    if (id->set) {
        memcpy(q->idbuf, id->s, id->n);
        q->idbuf[id->n] = '\0';
        q->identity = q->idbuf;
        memcpy(q->keybuf + at, id->s, id->n);
        q->keybuf[at + id->n] = FDN_LIMIT_IDENTITY_SEP;
        at += id->n + 1;
    }
    memcpy(q->keybuf + at, key->s, key->n);
    q->keylen = at + key->n;
    q->keybuf[q->keylen] = '\0';
    q->key = q->keybuf;
    return 0;
}
