/*
 * DESIGN: the rate limiter's HTTP request bodies (admin/limiter_req.h), pure so that it can be
 * fuzzed without a server (fuzz/fuzz_limiter_req.c). One pass refuses members the endpoint
 * does not take; then the fields are read in a fixed order (key, limit, window_ms, burst,
 * algorithm, the op's own field) and the first wrong one is named, so a client learns one
 * problem at a time and always the same one for the same body. A check's cost above what
 * the rule ever admits at once (the limit; the burst for the bucket algorithms) is refused
 * here too: no wait could satisfy it, so a 429 with a Retry-After would mislead the client.
 * Threads: none; no state.
 */
#include "admin/limiter_req.h"

#include <string.h>

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
    json_t *id = json_object_get(body, "identity");
    if (id != NULL) {
        size_t idlen = json_string_length(id);
        if (!json_is_string(id) || idlen == 0 || idlen > FDN__LIMITER_REQ_IDENTITY_MAX ||
            memchr(json_string_value(id), FDN_LIMIT_IDENTITY_SEP, idlen) != NULL)
            return fdn_err_set(err, FDN_EINVAL,
                               "field 'identity' must be a string of 1..%d bytes without U+001F",
                               FDN__LIMITER_REQ_IDENTITY_MAX);
        q->identity = json_string_value(id);
        memcpy(q->keybuf, q->identity, idlen);
        q->keybuf[idlen] = FDN_LIMIT_IDENTITY_SEP;
        memcpy(q->keybuf + idlen + 1, q->key, q->keylen);
        q->keylen += idlen + 1;
        q->keybuf[q->keylen] = '\0';
        q->key = q->keybuf;
    }
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
