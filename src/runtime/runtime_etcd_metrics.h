/* The etcd clients' metrics (runtime/runtime_etcd_metrics.c, built with FDN_WITH_ETCD): the
 * runtime's metrics (runtime/runtime_metrics.c) attach them when its telemetry exists. */
#ifndef FDN_RUNTIME_ETCD_METRICS_H
#define FDN_RUNTIME_ETCD_METRICS_H

#include <fdn/runtime.h>
#include <fdn/telemetry.h>

typedef struct fdn__etcd_metrics fdn__etcd_metrics_t;

/* Register fdn_etcd_request_duration_seconds{client,op,outcome}, fdn_etcd_breaker_state
 * {client,state} and fdn_etcd_stale{client} on tm and a collector that fills them from the
 * runtime's registry (client "registry") and config (client "config") when they follow etcd.
 * NULL on OOM. */
fdn__etcd_metrics_t *fdn__etcd_metrics_attach(fdn_telemetry_t *tm, fdn_runtime_t *rt);
/* Remove the collector (waits for a run under way) and free m. NULL accepted. */
void fdn__etcd_metrics_detach(fdn__etcd_metrics_t *m);

#endif
