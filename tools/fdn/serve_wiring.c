/* DESIGN: fdn serve: the configuration drives the services it started (DESIGN "The config drives
 * the runtime"): storage.hot.* sets event retention, interface.max_results caps event queries,
 * infrastructure.connection_pool.default_config sets pool defaults. Applied once at start and
 * again on every change (the callback runs on the config service's delivery thread and only
 * calls thread-safe setters). The runtime takes this over when it owns these services. */
#include "cli.h"

#include <string.h>

void serve_apply_config(fdn_config_t *cfg, fdn_events_t *es, fdn_pools_t *pools)
{
    int64_t v;
    if (fdn_config_get_int(cfg, "storage.hot.max_events", &v) == 0 && v >= 0)
        (void)fdn_events_set_max_events(es, (uint64_t)v);
    if (fdn_config_get_int(cfg, "storage.hot.max_age_seconds", &v) == 0 && v >= 0 &&
        v < INT64_MAX / 1000000000)
        (void)fdn_events_set_max_age(es, v * 1000000000);
    if (fdn_config_get_int(cfg, "storage.hot.prune_interval", &v) == 0 && v >= 0 &&
        v < INT64_MAX / 1000000)
        (void)fdn_events_set_prune_interval(es, v * 1000000);
    if (fdn_config_get_int(cfg, "interface.max_results", &v) == 0 && v > 0 && v <= UINT32_MAX)
        (void)fdn_events_set_max_results(es, (uint32_t)v);
    int64_t size, overflow;
    char strategy[16];
    fdn_pool_strategy_t st;
    if (fdn_config_get_int(cfg, "infrastructure.connection_pool.default_config.size", &size) == 0 &&
        fdn_config_get_int(cfg, "infrastructure.connection_pool.default_config.max_overflow",
                           &overflow) == 0 &&
        fdn_config_get_string(cfg, "infrastructure.connection_pool.default_config.strategy",
                              strategy, sizeof strategy, NULL) == 0 &&
        fdn_pool_strategy_parse(strategy, strlen(strategy), &st) == 0 && size >= 0 &&
        size <= INT32_MAX && overflow >= 0 && overflow <= INT32_MAX)
        (void)fdn_pools_set_defaults(pools, (int)size, (int)overflow, st);
}

static void on_change(const fdn_config_change_t *change, void *user)
{
    (void)change;
    serve_wiring_t *w = user;
    serve_apply_config(w->cfg, w->es, w->pools);
}

int serve_wire_config(serve_wiring_t *w)
{
    serve_apply_config(w->cfg, w->es, w->pools);
    return fdn_config_subscribe(w->cfg, "", on_change, w, &w->sub);
}
