/*
 * DESIGN: the rules of the telemetry section of the config tree (docs/config.md,
 * docs/telemetry.md "Configured layouts and summaries").
 * telemetry.buckets maps a histogram's exported name to its `le` bounds; telemetry.summaries
 * lists histograms also written as a summary. Neither knows which families exist (families
 * appear lazily, and applications register their own): a name must be a metric name, and a
 * name that never becomes a histogram has no effect. Two families are refused by name: their
 * collectors mirror counts kept at fixed bounds by a backend (fdn_histogram_load), so they can
 * take neither another layout nor quantiles. Pure functions over jansson values, no state;
 * any thread.
 */
#include "validation/config_telemetry.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Histograms whose buckets a backend keeps (runtime_metrics.c, runtime_etcd_metrics.c). */
static const char *const fixed_layout[] = {
    "fdn_rate_limiter_backend_request_duration_seconds",
    "fdn_etcd_request_duration_seconds",
};

/* [a-zA-Z_:][a-zA-Z0-9_:]*, 1..FDN_TELEMETRY_NAME_MAX bytes (what fdn_telemetry_name_valid
 * accepts; this layer does not call up into the services). */
static bool metric_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FDN_TELEMETRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!(alpha || (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool name_ok(const char *name, const char **why)
{
    if (!metric_name(name)) {
        *why = "not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 200 bytes)";
        return false;
    }
    for (size_t i = 0; i < sizeof fixed_layout / sizeof fixed_layout[0]; i++) {
        if (strcmp(name, fixed_layout[i]) == 0) {
            *why = "its buckets are fixed by the backend that counts them";
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && strcmp(s + n - k, sfx) == 0;
}

bool fdn__cfg_tm_bounds(const char *family, const json_t *arr,
                        double out[FDN_TELEMETRY_MAX_BUCKETS], size_t *n, const char **why)
{
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > FDN_TELEMETRY_MAX_BUCKETS) {
        *why = "the bounds must be an array of 1 to 32 numbers";
        return false;
    }
    double floor = ends_with(family, "_seconds") ? 1e-9 : 0.0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *x = json_array_get(arr, i);
        if (!json_is_number(x)) {
            *why = "a bound is not a number";
            return false;
        }
        double v = json_number_value(x);
        if (!isfinite(v) || !(v > 0)) {
            *why = "a bound is not > 0";
            return false;
        }
        if (v < floor) {
            *why = "a bound of a _seconds family is below 1e-9 (one nanosecond)";
            return false;
        }
        if (i > 0 && !(v > out[i - 1])) {
            *why = "the bounds are not strictly increasing";
            return false;
        }
        out[i] = v;
    }
    *n = json_array_size(arr);
    return true;
}

bool fdn__cfg_tm_buckets_ok(const json_t *v, const char **bad, const char **why)
{
    if (!json_is_object(v))
        return false;
    if (json_object_size(v) > FDN__CFG_TM_MAX_FAMILIES) {
        *bad = "(object)";
        *why = "more than 64 families";
        return false;
    }
    const char *name;
    json_t *arr;
    json_object_foreach((json_t *)(uintptr_t)v, name, arr)
    {
        double le[FDN_TELEMETRY_MAX_BUCKETS];
        size_t n;
        if (!name_ok(name, why) || !fdn__cfg_tm_bounds(name, arr, le, &n, why)) {
            *bad = name;
            return false;
        }
    }
    return true;
}

bool fdn__cfg_tm_summaries_ok(const json_t *v, const char **bad, const char **why)
{
    if (!json_is_array(v)) {
        *bad = "(not an array)";
        *why = "telemetry.summaries is an array of histogram names";
        return false;
    }
    if (json_array_size(v) > FDN__CFG_TM_MAX_FAMILIES) {
        *bad = "(array)";
        *why = "more than 64 families";
        return false;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_string(x)) {
            *bad = "(not a string)";
            *why = "an element is not a histogram name";
            return false;
        }
        const char *name = json_string_value(x);
        if (!name_ok(name, why)) {
            *bad = name;
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(json_string_value(json_array_get(v, k)), name) == 0) {
                *bad = name;
                *why = "named twice";
                return false;
            }
        }
    }
    return true;
}
