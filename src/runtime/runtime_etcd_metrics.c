/*
 * DESIGN: the etcd clients' metrics (runtime/runtime_etcd_metrics.h), in the shape of the Redis
 * limiter's: each client (storage/etcd_client.c) keeps a fixed latency histogram per
 * (operation, outcome) and its breaker; a telemetry collector, run at the start of every
 * scrape or snapshot on the scraping thread, loads them into labelled families. No call pays
 * for more than its own atomic increments.
 *
 * Clients: "registry" (the runtime's registry's shared part: lease, registrations, the cache's
 * ranges) and "config" (the config follower: compare-and-swap updates, resets, ranges). The
 * watch streams are not requests: their state is fdn_etcd_stale.
 *
 * Threads: the collector may run on several scraping threads at once; m->mu makes the runs
 * one at a time (as runtime_metrics.c's: two runs at once could load an older latency
 * histogram after a newer one, which Prometheus reads as a counter reset). The registry and the
 * config live as long as the runtime; the collector is removed (detach) before they are destroyed.
 */
#include "runtime/runtime_etcd_metrics.h"

#include <fdn/breaker.h>
#include <fdn/config.h>
#include <fdn/registry.h>

#include "core/alloc.h"
#include "core/lock.h"
#include "core/registry_int.h"
#include "infra/registry_shared.h"
#include "services/config_etcd.h"
#include "storage/etcd_client.h"

struct fdn__etcd_metrics {
    fdn_telemetry_t *tm;
    fdn_runtime_t *rt;
    fdn__mutex_t mu; /* collect: one run at a time */
    fdn_telemetry_family_t *dur, *breaker, *stale;
};

static void set_gauge(fdn_telemetry_family_t *f, const char *const *v, size_t n, double x)
{
    fdn_gauge_t *g = NULL;
    if (fdn_telemetry_family_gauge(f, &g, v, n) == 0)
        fdn_gauge_set_double(g, x);
}

static void collect_client(fdn__etcd_metrics_t *m, const char *client, fdn__etcd_t *c, bool stale)
{
    const char *one[] = {client};
    set_gauge(m->stale, one, 1, stale ? 1 : 0);
    int bs = fdn__etcd_guard_state(c);
    if (bs >= 0) {
        for (int k = FDN_BREAKER_CLOSED; k <= FDN_BREAKER_HALF_OPEN; k++) {
            const char *v[] = {client, fdn_breaker_state_name((fdn_breaker_state_t)k)};
            set_gauge(m->breaker, v, 2, bs == k ? 1 : 0);
        }
    }
    for (int op = 0; op < FDN__ETCD_OPS; op++) {
        for (int o = 0; o < FDN__ETCD_OUTCOMES; o++) {
            fdn__etcd_lat_t lat;
            fdn__etcd_latency(c, op, o, &lat);
            if (lat.le[FDN__ETCD_LAT_BOUNDS] == 0)
                continue; /* no such call yet: no series */
            const char *v[] = {client, fdn__etcd_op_name(op), fdn__etcd_outcome_name(o)};
            fdn_histogram_t *h = NULL;
            if (fdn_telemetry_family_histogram(m->dur, &h, v, 3) == 0)
                fdn_histogram_load(h, lat.le, FDN__ETCD_LAT_BOUNDS + 1, (double)lat.sum_us / 1e6);
        }
    }
}

static void collect(fdn_telemetry_t *tm, void *user)
{
    (void)tm;
    fdn__etcd_metrics_t *m = user;
    fdn__mutex_lock(&m->mu);
    fdn_registry_t *reg = fdn_runtime_registry(m->rt);
    fdn__regetcd_t *st = reg != NULL ? fdn__registry_shared(reg) : NULL;
    if (st != NULL)
        collect_client(m, "registry", fdn__regetcd_client(st), fdn__regetcd_stale(st));
    fdn_config_t *cfg = fdn_runtime_config(m->rt);
    fdn__etcd_t *cc = cfg != NULL ? fdn__config_etcd_client(cfg) : NULL;
    if (cc != NULL) {
        fdn_config_etcd_stats_t s = {.version = FDN_CONFIG_ETCD_STATS_VERSION};
        bool stale = fdn_config_etcd_stats(cfg, &s) == 0 && s.stale;
        collect_client(m, "config", cc, stale);
    }
    fdn__mutex_unlock(&m->mu);
}

fdn__etcd_metrics_t *fdn__etcd_metrics_attach(fdn_telemetry_t *tm, fdn_runtime_t *rt)
{
    fdn__etcd_metrics_t *m = fdn__calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->tm = tm;
    m->rt = rt;
    pthread_mutex_init(&m->mu, NULL);
    const char *dl[] = {"client", "op", "outcome"};
    int rc = fdn_telemetry_family(tm, &m->dur, "fdn_etcd_request_duration_seconds",
                                  "Calls to etcd's gateway by client (registry, config), operation "
                                  "and outcome (ok, refused, timeout, unreachable, rejected by the "
                                  "breaker).",
                                  FDN_TELEMETRY_HISTOGRAM, dl, 3,
                                  2 * FDN__ETCD_OPS * FDN__ETCD_OUTCOMES);
    static const double le[FDN__ETCD_LAT_BOUNDS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1};
    if (rc == 0)
        rc = fdn_telemetry_family_buckets(m->dur, le, FDN__ETCD_LAT_BOUNDS);
    const char *bl[] = {"client", "state"};
    if (rc == 0)
        rc = fdn_telemetry_family(tm, &m->breaker, "fdn_etcd_breaker_state",
                                  "The breaker around an etcd client: 1 for its current state, 0 "
                                  "for the others.",
                                  FDN_TELEMETRY_GAUGE, bl, 2, 8);
    const char *sl[] = {"client"};
    if (rc == 0)
        rc = fdn_telemetry_family(tm, &m->stale, "fdn_etcd_stale",
                                  "1 while an etcd follower's state may be behind etcd (its watch "
                                  "is broken): reads answer from the cache.",
                                  FDN_TELEMETRY_GAUGE, sl, 1, 4);
    /* all or nothing: the runtime's create fails rather than run without these families */
    if (rc != 0 || fdn_telemetry_add_collector(tm, collect, m) != 0) {
        pthread_mutex_destroy(&m->mu);
        fdn__free(m);
        return NULL;
    }
    return m;
}

void fdn__etcd_metrics_detach(fdn__etcd_metrics_t *m)
{
    if (m == NULL)
        return;
    (void)fdn_telemetry_remove_collector(m->tm, collect, m);
    pthread_mutex_destroy(&m->mu);
    fdn__free(m);
}
