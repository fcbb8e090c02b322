/* Config rules of the telemetry section (telemetry.buckets, telemetry.summaries): checks of
 * the schema's validator (config_schema.c) and the parser the runtime applies them with
 * (runtime_metrics.c). Pure: no locks, no globals. */
#ifndef FDN_VALIDATION_CONFIG_TELEMETRY_H
#define FDN_VALIDATION_CONFIG_TELEMETRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <fdn/telemetry.h>

/* Most families either key names (a bound on the work a scrape does for them). */
#define FDN__CFG_TM_MAX_FAMILIES 64

/* The bounds of one telemetry.buckets member: an array of 1..FDN_TELEMETRY_MAX_BUCKETS
 * finite numbers > 0, strictly increasing (and >= 1e-9, one nanosecond, for a `_seconds`
 * family). Fills out[0..*n). False with *why (a constant sentence) when the array breaks a
 * rule. */
bool fdn__cfg_tm_bounds(const char *family, const json_t *arr,
                        double out[FDN_TELEMETRY_MAX_BUCKETS], size_t *n, const char **why);

/* telemetry.buckets: an object family name -> bounds (fdn__cfg_tm_bounds), at most
 * FDN__CFG_TM_MAX_FAMILIES members, each a metric name of a histogram whose layout is not
 * fixed by its backend. False with *bad (the member's name, valid as long as v) and *why. */
bool fdn__cfg_tm_buckets_ok(const json_t *v, const char **bad, const char **why);

/* telemetry.summaries: an array of at most FDN__CFG_TM_MAX_FAMILIES distinct metric names of
 * histograms whose layout is not fixed by their backend. False with *bad (the element, or
 * "(not a string)") and *why. */
bool fdn__cfg_tm_summaries_ok(const json_t *v, const char **bad, const char **why);

#endif
