/*
 * DESIGN: breaker options, pure: their validation (fdn_breaker_opts_validate), the
 * reference's fuse triple (fdn_breaker_opts_from_tolerance, _ex with the reason of a refusal)
 * and their JSON form (fdn_breaker_opts_parse), for breakers declared in the config file
 * (infrastructure.circuit_breaker.breakers, checked by the config schema) and created over
 * HTTP (PUT /v1/breakers/{name}). In the logic layer so that the config schema may use them.
 * One table of members: name, kind, and where the value goes; a member not in it, a wrong
 * type or a value out of range is refused with the member's name, and the caller's options
 * change only when the whole object is valid.
 * Threads: none; the functions keep no state.
 */
#include <fdn/breaker.h>

#include <jansson.h>
#include <stddef.h>
#include <string.h>

#include "core/json.h"

#define NS_PER_MS  1000000LL
/* the longest duration option, in ms: 2^61 ns (a quarter of int64 ns, so sums of a few never
 * overflow), 2305843009213 ms, about 73 years */
#define MS_MAX     ((long long)(INT64_MAX / NS_PER_MS / 4))
#define MAX_PROBES 0xffffu /* the breaker's probe counter is 16 bits */

/* threshold = tolerance + 1 <= 1000000 (fdn_breaker_opts_validate) */
#define MAX_TOLERANCE 999999

int fdn_breaker_opts_from_tolerance_ex(fdn_breaker_opts_t *opts, int64_t tolerance,
                                       int64_t refresh_ms, fdn_error_t *err)
{
    /* the bounds are fdn_breaker_opts_validate's (threshold <= 1000000, refresh_ms in the ns
     * range of window_ms and recovery_time_ms), said in the caller's terms: what this returns
     * 0 for, a breaker accepts */
    if (opts == NULL)
        return fdn_err_set(err, FDN_EINVAL, "breaker options from tolerance: opts is NULL");
    if (tolerance < 0 || tolerance > MAX_TOLERANCE)
        return fdn_err_set(err, FDN_EINVAL,
                           "tolerance %lld is outside 0..%d (failures tolerated before the "
                           "breaker opens)",
                           (long long)tolerance, MAX_TOLERANCE);
    if (refresh_ms <= 0 || refresh_ms > MS_MAX)
        return fdn_err_set(err, FDN_EINVAL, "refresh_ms %lld is outside 1..%lld",
                           (long long)refresh_ms, MS_MAX);
    fdn_breaker_opts_t d = FDN_BREAKER_OPTS_INIT;
    d.failure_threshold = (uint32_t)tolerance + 1u;
    d.window_ms = refresh_ms;
    d.recovery_time_ms = refresh_ms;
    d.success_resets = false;
    int rc = fdn_breaker_opts_validate(&d, err);
    if (rc != 0)
        return rc;
    *opts = d;
    return 0;
}

int fdn_breaker_opts_from_tolerance(fdn_breaker_opts_t *opts, int64_t tolerance, int64_t refresh_ms)
{
    return fdn_breaker_opts_from_tolerance_ex(opts, tolerance, refresh_ms, NULL);
}

int fdn_breaker_opts_validate(const fdn_breaker_opts_t *o, fdn_error_t *err)
{
    if (o == NULL)
        return fdn_err_set(err, FDN_EINVAL, "breaker options are NULL");
    if (o->version < 1)
        return fdn_err_set(err, FDN_EINVAL, "breaker options: bad version %u", o->version);
    if (o->failure_threshold < 1 || o->failure_threshold > 1000000)
        return fdn_err_set(err, FDN_EINVAL, "failure_threshold must be in 1..1000000");
    if (o->window_ms < 0 || o->window_ms > MS_MAX)
        return fdn_err_set(err, FDN_EINVAL, "window_ms must be in 0..%lld (ms), got %lld", MS_MAX,
                           (long long)o->window_ms);
    if (o->recovery_time_ms <= 0 || o->recovery_time_ms > MS_MAX)
        return fdn_err_set(err, FDN_EINVAL, "recovery_time_ms must be in 1..%lld (ms), got %lld",
                           MS_MAX, (long long)o->recovery_time_ms);
    if (o->half_open_max_calls < 1 || o->half_open_max_calls > MAX_PROBES)
        return fdn_err_set(err, FDN_EINVAL, "half_open_max_calls must be in 1..65535");
    if (o->probe_timeout_ms <= 0 || o->probe_timeout_ms > MS_MAX)
        return fdn_err_set(err, FDN_EINVAL, "probe_timeout_ms must be in 1..%lld (ms), got %lld",
                           MS_MAX, (long long)o->probe_timeout_ms);
    if (o->failure_rate_pct > 100)
        return fdn_err_set(err, FDN_EINVAL, "failure_rate_pct is a percentage (0..100)");
    if (o->slow_rate_pct > 100)
        return fdn_err_set(err, FDN_EINVAL, "slow_rate_pct is a percentage (0..100)");
    if ((o->failure_rate_pct || o->slow_rate_pct) &&
        (o->rate_window_size < 1 || o->rate_window_size > 4096))
        return fdn_err_set(err, FDN_EINVAL, "rate_window_size must be in 1..4096");
    if (o->rate_window_kind != FDN_BREAKER_WINDOW_COUNT &&
        o->rate_window_kind != FDN_BREAKER_WINDOW_TIME)
        return fdn_err_set(err, FDN_EINVAL, "unknown rate_window_kind");
    /* a count window never holds more than rate_window_size calls: a larger minimum_calls
     * would keep the rate policy from ever deciding */
    if ((o->failure_rate_pct || o->slow_rate_pct) &&
        o->rate_window_kind == FDN_BREAKER_WINDOW_COUNT && o->minimum_calls > o->rate_window_size)
        return fdn_err_set(err, FDN_EINVAL,
                           "minimum_calls must be at most rate_window_size with a count window");
    if (o->slow_call_ms < 0 || o->slow_call_ms > MS_MAX)
        return fdn_err_set(err, FDN_EINVAL, "slow_call_ms must be in 0..%lld (ms), got %lld",
                           MS_MAX, (long long)o->slow_call_ms);
    if (o->slow_rate_pct && o->slow_call_ms == 0)
        return fdn_err_set(err, FDN_EINVAL, "slow_rate_pct needs slow_call_ms");
    return 0;
}

/* mu held */
typedef enum { M_U32, M_I64, M_BOOL, M_WINDOW } mkind_t;

typedef struct member {
    const char *name;
    mkind_t kind;
    size_t off;
} member_t;

#define M(field, kind)                                                                             \
    {                                                                                              \
#field, kind, offsetof(fdn_breaker_opts_t, field)                                          \
    }

static const member_t members[] = {
    M(failure_threshold, M_U32),
    M(window_ms, M_I64),
    M(recovery_time_ms, M_I64),
    M(half_open_max_calls, M_U32),
    M(probe_timeout_ms, M_I64),
    M(success_resets, M_BOOL),
    M(failure_rate_pct, M_U32),
    M(slow_rate_pct, M_U32),
    {"rate_window", M_WINDOW, offsetof(fdn_breaker_opts_t, rate_window_kind)},
    M(rate_window_size, M_U32),
    M(minimum_calls, M_U32),
    M(slow_call_ms, M_I64),
};

static int set_member(const member_t *m, json_t *v, fdn_breaker_opts_t *o, fdn_error_t *err)
{
    char *field = (char *)o + m->off;
    switch (m->kind) {
    case M_U32:
    case M_I64: {
        if (!json_is_integer(v))
            return fdn_err_set(err, FDN_EINVAL, "breaker option %s: expected an integer", m->name);
        json_int_t x = json_integer_value(v);
        if (x < 0 || (m->kind == M_U32 && x > (json_int_t)UINT32_MAX))
            return fdn_err_set(err, FDN_EINVAL, "breaker option %s: %lld is out of range", m->name,
                               (long long)x);
        if (m->kind == M_U32) {
            uint32_t u = (uint32_t)x;
            memcpy(field, &u, sizeof(u));
        } else {
            int64_t i = (int64_t)x;
            memcpy(field, &i, sizeof(i));
        }
        return 0;
    }
    case M_BOOL: {
        if (!json_is_boolean(v))
            return fdn_err_set(err, FDN_EINVAL, "breaker option %s: expected true or false",
                               m->name);
        bool b = json_is_true(v);
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case M_WINDOW: {
        const char *s = json_string_value(v);
        fdn_breaker_window_kind_t k;
        if (s != NULL && strcmp(s, "count") == 0)
            k = FDN_BREAKER_WINDOW_COUNT;
        else if (s != NULL && strcmp(s, "time") == 0)
            k = FDN_BREAKER_WINDOW_TIME;
        else
            return fdn_err_set(err, FDN_EINVAL, "breaker option %s: expected \"count\" or \"time\"",
                               m->name);
        memcpy(field, &k, sizeof(k));
        return 0;
    }
    }
    return FDN_EINVAL;
}

int fdn_breaker_opts_parse(const char *json, size_t len, fdn_breaker_opts_t *opts, fdn_error_t *err)
{
    if (json == NULL || opts == NULL)
        return fdn_err_set(err, FDN_EINVAL, "breaker options: NULL argument");
    json_error_t jerr;
    bool oom = false;
    json_t *root = fdn__json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (oom) /* out of memory, not bad text */
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (root == NULL)
        return fdn_err_set(err, FDN_EINVAL, "breaker options: not JSON (%s)", jerr.text);
    fdn_breaker_opts_t o = *opts;
    int rc = 0;
    if (!json_is_object(root)) {
        rc = fdn_err_set(err, FDN_EINVAL, "breaker options: expected a JSON object");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            const member_t *m = NULL;
            for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
                if (strcmp(members[i].name, key) == 0)
                    m = &members[i];
            rc = m ? set_member(m, v, &o, err)
                   : fdn_err_set(err, FDN_EINVAL, "breaker options: unknown member '%.64s'", key);
            if (rc != 0)
                break;
        }
    }
    json_decref(root);
    if (rc == 0)
        rc = fdn_breaker_opts_validate(&o, err);
    if (rc == 0)
        *opts = o;
    return rc;
}
