/* Private: the runtime's labelled metric families (runtime_metrics.c), driven by the wiring in
 * runtime_services.c. Every function accepts m == NULL (no telemetry) as a no-op. */
#ifndef FDN_RUNTIME_METRICS_H
#define FDN_RUNTIME_METRICS_H

#include <fdn/config.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

typedef struct fdn__rt_metrics fdn__rt_metrics_t;

/* Register the families and the scrape-time collector. *out is NULL without telemetry.
 * Returns 0, or FDN_ENOMEM (all or nothing: nothing is attached and *out is NULL). */
int fdn__rt_metrics_attach(fdn_runtime_t *rt, fdn__rt_metrics_t **out);
/* Remove the collector (waits for a run under way) and free m. */
void fdn__rt_metrics_detach(fdn__rt_metrics_t *m);
/* Hooks: a supervisor restart, a breaker transition, a config update applied. */
void fdn__rt_metrics_restart(fdn__rt_metrics_t *m, const char *service);
void fdn__rt_metrics_transition(fdn__rt_metrics_t *m, const char *breaker, const char *from,
                                const char *to);
void fdn__rt_metrics_config_update(fdn__rt_metrics_t *m, const char *path, const char *outcome);
/* An escalation of the runtime's supervisor, caused by `service`. */
void fdn__rt_metrics_escalation(fdn__rt_metrics_t *m, const char *service);

/* Apply telemetry.buckets and telemetry.summaries of cfg to tm, before any family or event
 * histogram exists (the runtime's telemetry slot, at creation). 0, or the first failure
 * with err set (FDN_EINVAL, FDN_ENOMEM). */
int fdn__rt_telemetry_configure(fdn_telemetry_t *tm, fdn_config_t *cfg, fdn_error_t *err);

#endif
