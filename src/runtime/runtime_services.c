/*
 * DESIGN: the runtime's built-in services and the wiring between them.
 *
 * The runtime (src/runtime/runtime.c) knows services only through the slot table and the
 * hooks declared in runtime/runtime_int.h; this file fills both, so the core never includes a
 * service header and dependencies keep pointing down.
 *
 * Slots, in the reference's start order (§8.1): config_server, event_store,
 * telemetry_service, connection_manager, rate_limiter. Each is created from the runtime's
 * options and the config tree (the config is created first and started at once, so later
 * slots read their settings from it), then started by the supervisor.
 *
 * The glue (created by `wire`, after every slot exists) owns what is not a supervised
 * service: the breaker set and protected execution. `wire` also connects the event store to
 * the telemetry service (the store's slot is created first); `unwire` disconnects them.
 * The glue makes the config drive the runtime (DESIGN "The config drives the runtime"):
 * apply_settings() pushes storage.hot.*, storage.warm.retention.*,
 * interface.max_results, infrastructure.*.default_config, *.enabled and
 * rate_limiting.{cleanup_interval,default_rules} into the services: all of them at wire time,
 * at a reset and after dropped notifications, only those the changed path drives after an
 * update, so a setting the application changed through a service's own API is not reverted
 * by an unrelated update. A reset goes through the config's apply hook as an update does
 * (path NULL, before it is published, so in force when it returns) but is not refused: a
 * service that refuses its setting keeps the one it had, and that is recorded
 * (config_apply_failed) and counted (foundation.config.service_refused) in the resetter's
 * thread once the config's lock is released (reset_kept). Every update of one path is taken by the
 * services it drives before the config publishes it (apply_update, the config's apply hook, under
 * its writer lock): a service that refuses the value refuses the update with its error, the
 * settings are pushed back as the current revision has them, and the refusal is recorded
 * (config_update_refused) and counted (foundation.config.service_refused) once the lock is
 * released. An update of a config that follows etcd is asked first, before it is written
 * there (check_update, the hook's check: each setting through its service's own check,
 * nothing pushed), so a value a service refuses is refused to its updater and never reaches
 * etcd nor any other process; what is written is pushed when the watch applies it, as above
 * (a change another process wrote is refused there and counted as a change from etcd).
 * The config service also calls on_config_change on its own hook
 * thread (never under a config lock; a slow event store delays only that thread, never an
 * updater), which also records the `config_updated` event and counts the update. A burst of
 * changes (the hook's queue not empty behind a change: fdn_config_change_t.more) is recorded
 * as one batch, one commit of the store, then counted.
 * Pushes are ordered by glue_t.push_mu: an update holds it from its push until it is
 * published (apply_update, apply_published), a pass over the live revision (apply_live: the
 * hook thread's, wire's) for its read and push. So a pass never pushes a revision older than
 * one an update has already pushed (the hook thread once did, between its read of the live
 * revision and its push, undoing a newer update that had returned: the service then ran with
 * an older value than the tree's until the hook got to that update).
 * Lock order: config wmu -> push_mu -> the services' own locks (breaker set, pools, limiter
 * rules, telemetry, the clock's); nothing under push_mu takes a config lock or runs a user
 * callback.
 *
 * Threads: none of its own. Callbacks run on the config hook thread (config changes), the
 * supervisor thread (restarts, escalation), and callers' threads (registry operations,
 * breaker transitions); all of them only call thread-safe service functions.
 * Escalation: recorded (event `supervisor_escalation`, counter
 * foundation.supervisor.escalations) from the supervisor's on_escalating callback, which runs
 * before the services are stopped, so the store and telemetry still answer.
 * Lifetime: once a shutdown has stopped every service, after_shutdown counts what the
 * config hook had not recorded as dropped (the open burst, the queued notifications); the
 * glue is freed by unwire after every service has stopped, before any slot is destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <fdn/breaker.h>
#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/limiter.h>
#include <fdn/pool.h>
#include <fdn/protect.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "core/errctx.h"
#include "core/json.h"
#include "runtime/runtime_metrics.h"
#include "runtime/runtime_int.h"
#include "infra/limiter_int.h"
#include "infra/pool_int.h"
#include "services/config_int.h"
#ifdef FDN_HAVE_ETCD
#include "infra/etcd_guard.h"
#include "services/config_etcd.h"
#endif
#include "services/event_store_int.h"
#include "services/telemetry_int.h"

extern char **environ;

#define EVENTS_FILE "events.db"

/* One config change the hook thread has applied and not yet recorded: its event (NULL when
 * it could not be built) and what counts it once stored. A burst of changes is stored as one
 * batch, one commit (fdn_config_change_t.more), so a durable store pays one fsync for it,
 * not one each; the counters follow the store, so whoever sees a change counted finds its
 * event stored. At most HOOK_BATCH_MAX wait. */
#define HOOK_BATCH_MAX 256
typedef struct hook_rec {
    fdn_event_t *ev;
    const char *type;              /* "config_updated" / "config_reset" (static) */
    fdn_config_change_kind_t kind; /* UPDATED or RESET */
    uint64_t revision;
    char *path; /* UPDATED: the changed path */
} hook_rec_t;

typedef struct glue {
    fdn_runtime_t *rt;
    fdn_breakers_t *breakers;
    fdn_protect_t *protect;
    char *overrides_path;  /* <data_dir>/config_overrides.json, or NULL (no data directory) */
    uint64_t restored_rev; /* config revision once the persisted overrides were reapplied */
    fdn__rt_metrics_t *metrics; /* labelled metric families (runtime_metrics.c), or NULL */
    fdn__mutex_t push_mu;       /* orders pushes of settings (DESIGN: apply_update, apply_live) */
    atomic_bool settings_stale; /* a change could not be pushed (out of memory: the config hook
                                   thread's pass, or a reset's push in apply_update), so the
                                   hook thread's next pass pushes every setting */
    size_t nhook;               /* config hook thread only: records of the current burst */
    hook_rec_t hook[HOOK_BATCH_MAX];
} glue_t;

#define OVERRIDES_FILE "config_overrides.json"

/* ---- typed slot access ----------------------------------------------------------------- */

fdn_config_t *fdn_runtime_config(fdn_runtime_t *rt)
{
    return fdn__runtime_slot(rt, FDN__RT_CONFIG);
}

fdn_events_t *fdn_runtime_events(fdn_runtime_t *rt)
{
    return fdn__runtime_slot(rt, FDN__RT_EVENTS);
}

fdn_telemetry_t *fdn_runtime_telemetry(fdn_runtime_t *rt)
{
    return fdn__runtime_slot(rt, FDN__RT_TELEMETRY);
}

fdn_pools_t *fdn_runtime_pools(fdn_runtime_t *rt)
{
    return fdn__runtime_slot(rt, FDN__RT_CONNMGR);
}

fdn_limiter_t *fdn_runtime_limiter(fdn_runtime_t *rt)
{
    return fdn__runtime_slot(rt, FDN__RT_LIMITER);
}

fdn_breakers_t *fdn_runtime_breakers(fdn_runtime_t *rt)
{
    glue_t *g = fdn__runtime_glue(rt);
    return g != NULL ? g->breakers : NULL;
}

fdn_protect_t *fdn_runtime_protect(fdn_runtime_t *rt)
{
    glue_t *g = fdn__runtime_glue(rt);
    return g != NULL ? g->protect : NULL;
}

/* ---- config reads ------------------------------------------------------------------------ */

static bool cfg_int(fdn_config_t *cfg, const char *path, int64_t min, int64_t *out)
{
    return cfg != NULL && fdn_config_get_int(cfg, path, out) == 0 && *out >= min;
}

static bool cfg_bool(fdn_config_t *cfg, const char *path, bool *out)
{
    return cfg != NULL && fdn_config_get_bool(cfg, path, out) == 0;
}

static bool cfg_str(fdn_config_t *cfg, const char *path, char *buf, size_t cap)
{
    return cfg != NULL && fdn_config_get_string(cfg, path, buf, cap, NULL) == 0;
}

/* The same reads from one snapshot (the settings pushed into the services come from one
 * revision: the live one, or an update's candidate before it is published). */
static bool snap_int(const fdn_config_snapshot_t *s, const char *path, int64_t min, int64_t *out)
{
    return s != NULL && fdn_config_snapshot_get_int(s, path, out) == 0 && *out >= min;
}

static bool snap_bool(const fdn_config_snapshot_t *s, const char *path, bool *out)
{
    return s != NULL && fdn_config_snapshot_get_bool(s, path, out) == 0;
}

/* A string of the snapshot into buf: 0, FDN_ENOMEM, or FDN_ENOENT (absent, not a string, or
 * longer than cap - 1). */
static int snap_str(const fdn_config_snapshot_t *s, const char *path, char *buf, size_t cap)
{
    char *text = NULL;
    int rc = s != NULL ? fdn_config_snapshot_get_json(s, path, &text) : FDN_ENOENT;
    if (rc != 0)
        return rc == FDN_ENOMEM ? rc : FDN_ENOENT;
    bool oom;
    json_t *v = fdn__json_loadb(text, strlen(text), JSON_DECODE_ANY, NULL, &oom);
    fdn_free(text);
    if (v == NULL)
        return oom ? FDN_ENOMEM : FDN_ENOENT;
    rc = json_is_string(v) && json_string_length(v) < cap ? 0 : FDN_ENOENT;
    if (rc == 0)
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    json_decref(v);
    return rc;
}

/* ms or s from the config as ns, saturating. */
static int64_t to_ns(int64_t v, int64_t unit)
{
    return v > INT64_MAX / unit ? INT64_MAX : v * unit;
}

static void count_dropped(fdn_runtime_t *rt, const char *type, int rc)
{
    fdn_telemetry_meta_t meta[] = {{"event_type", type}, {"error", fdn_err_name(rc)}};
    fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt), "foundation.runtime.event_dropped", meta,
                               2);
}

/* One of the runtime's events from its data (consumed); 0, or the error (*out NULL). */
static int make_event(fdn_runtime_t *rt, const char *type, json_t *data, fdn_event_t **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int drc = data != NULL ? fdn_json_dumps(data, JSON_COMPACT, &text, &len) : FDN_ENOMEM;
    json_decref(data);
    if (drc != 0)
        return FDN_ENOMEM;
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = type;
    spec.data = text;
    spec.data_len = len;
    spec.flags = FDN_EVENT_TRUSTED_JSON;
    spec.clock = fdn_runtime_clock(rt);
    int rc = fdn_event_new(out, &spec, NULL);
    fdn__free(text);
    return rc;
}

/* Record an event in the runtime's own store; failures (store stopped, full) are counted,
 * never propagated: the runtime's bookkeeping must not fail the operation it records. */
static void record_event(fdn_runtime_t *rt, const char *type, json_t *data)
{
    fdn_events_t *es = fdn_runtime_events(rt);
    if (es == NULL) {
        json_decref(data);
        return;
    }
    fdn_event_t *ev;
    int rc = make_event(rt, type, data, &ev);
    if (rc == 0)
        rc = fdn__events_store_system(es, (const fdn_event_t *const *)&ev,
                                      1); /* never refused by max_types */
    fdn_event_free(ev);
    if (rc != 0)
        count_dropped(rt, type, rc);
}

/* ---- the config drives the runtime ------------------------------------------------------- */

/* Returns 0 or FDN_ENOMEM (some rules may then be missing: the caller reports it, or applies
 * the settings again). */
static int apply_limiter_rules(const fdn_config_snapshot_t *cfg, fdn_limiter_t *lim)
{
    char *text = NULL;
    int rc = fdn_config_snapshot_get_json(cfg, "infrastructure.rate_limiting.default_rules", &text);
    if (rc != 0)
        return rc == FDN_ENOMEM ? rc : 0;
    bool oom;
    json_t *rules = fdn__json_loadb(text, strlen(text), 0, NULL, &oom);
    fdn_free(text);
    if (rules == NULL)
        return oom ? FDN_ENOMEM : 0;
    const char *name;
    json_t *r;
    json_object_foreach(rules, name, r)
    {
        json_t *scale = json_object_get(r, "scale");
        json_t *limit = json_object_get(r, "limit");
        if (!json_is_integer(scale) || !json_is_integer(limit))
            continue;
        fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 0, 0, 0};
        rule.period_ms = json_integer_value(scale);
        rule.limit = json_integer_value(limit);
        /* "backend": "memory" keeps the rule in this process even on a Redis limiter */
        json_t *be = json_object_get(r, "backend");
        unsigned flags = json_is_string(be) && strcmp(json_string_value(be), "memory") == 0
                             ? FDN_LIMIT_RULE_LOCAL
                             : 0;
        /* "failure_policy": this rule's answer while Redis is away */
        fdn_limit_failure_policy_t fp;
        json_t *fpj = json_object_get(r, "failure_policy");
        if (json_is_string(fpj) && fdn_limit_failure_policy_parse(json_string_value(fpj), &fp) == 0)
            flags |= fp == FDN_LIMIT_FAIL_OPEN     ? FDN_LIMIT_RULE_FAIL_OPEN
                     : fp == FDN_LIMIT_FAIL_CLOSED ? FDN_LIMIT_RULE_FAIL_CLOSED
                                                   : FDN_LIMIT_RULE_FAIL_LOCAL;
        if (fdn_limiter_set_rule_flags(lim, name, &rule, flags) == FDN_ENOMEM)
            rc = FDN_ENOMEM;
    }
    json_decref(rules);
    return rc;
}

static void on_breaker_transition(const char *name, fdn_breaker_state_t from,
                                  fdn_breaker_state_t to, void *user);

/* The breakers declared in infrastructure.circuit_breaker.breakers, created over the set's
 * defaults (its clock, telemetry and transition hook, and default_config). One that exists
 * already (made by the program or over HTTP, or at an earlier pass) is left as it is, so a
 * config reset does not reset breaker state. The schema has checked every entry; one that
 * still fails is skipped. */
static int apply_breakers(const fdn_config_snapshot_t *cfg, fdn_breakers_t *set)
{
    char *text = NULL;
    int rc = fdn_config_snapshot_get_json(cfg, "infrastructure.circuit_breaker.breakers", &text);
    if (rc != 0)
        return rc == FDN_ENOMEM ? rc : 0;
    bool oom;
    json_t *all = fdn__json_loadb(text, strlen(text), 0, NULL, &oom);
    fdn_free(text);
    if (all == NULL)
        return oom ? FDN_ENOMEM : 0;
    const char *name;
    json_t *spec;
    json_object_foreach(all, name, spec)
    {
        fdn_breaker_opts_t o;
        char *one = NULL;
        int r = fdn_json_dumps(spec, JSON_COMPACT, &one, NULL) != 0
                    ? FDN_ENOMEM
                    : fdn_breakers_get_defaults(set, &o);
        if (r == 0)
            r = fdn_breaker_opts_parse(one, strlen(one), &o, NULL);
        if (r == 0)
            r = fdn_breaker_create_in(set, name, &o, NULL);
        if (r == FDN_ENOMEM) /* (another failure: a spec the schema let through, skipped) */
            rc = FDN_ENOMEM;
        fdn__free(one);
    }
    json_decref(all);
    return rc;
}

/* Whether a change of `changed` (NULL: everything, after a reset or dropped notifications)
 * touches the settings under `prefix`: changed lies under prefix, or is an ancestor of it. */
static bool touches(const char *changed, const char *prefix)
{
    if (changed == NULL || strncmp(changed, prefix, strlen(prefix)) == 0)
        return true;
    size_t n = strlen(changed);
    return strncmp(prefix, changed, n) == 0 && (prefix[n] == '.' || prefix[n] == '\0');
}

/* A service's answer to a setting (rc of its setter): 0 goes on; a refusal is kept as the
 * pass's result (the first one, with err naming the service and the path) and the pass goes
 * on with the other settings. */
static void took(int rc, const char *service, const char *path, int *first, fdn_error_t *err)
{
    if (rc == 0 || *first != 0)
        return;
    *first = rc;
    fdn_err_set(err, rc, "%s refused the setting %s: %s", service, path, fdn_strerror(rc));
    fdn_err_add_context(err, "path", "%s", path);
    fdn_err_add_context(err, "service", "%s", service);
}

/* Push the settings the path `changed` drives (NULL: all of them), as the snapshot `cfg` has
 * them, into the services. Only those: a service setting the application changed through the
 * service's own API (a limiter rule, say) is not reverted by an update of some unrelated path.
 * Every setting is pushed; the result is 0, the first service's refusal of its setting (err
 * names the service and the path; the refused setting is left as it was in that service), or
 * FDN_ENOMEM when a setting could not be pushed. Callers: the config's apply hook (an update
 * is refused with the service's error, and its settings pushed back from the current
 * revision; a reset keeps its values, a refusal reported as config_apply_failed:
 * apply_update), wire() (the runtime's create fails), the config hook thread after dropped
 * notifications (reported: config_apply_failed; out of memory, there or in a reset's push:
 * everything is pushed again at the next change, glue_t.settings_stale).
 * check_only: push nothing, only ask: each setting goes through the check its service's setter
 * makes of it (the same function: fdn__events_check_*, fdn__pool_check_sizes,
 * fdn__limiter_check_cleanup_interval, fdn_breaker_opts_validate; a setter that refuses no
 * value of the schema's range is not asked), with the same result and error as a push, and no
 * service changes; the settings no setter can refuse (limiter rules, declared breakers, the
 * switches) are skipped. For check_update (an update of a config following etcd, before it is
 * written there). */
static int apply_settings(fdn_runtime_t *rt, glue_t *g, const char *changed,
                          const fdn_config_snapshot_t *cfg, bool check_only, fdn_error_t *err)
{
    int rc = 0, refused = 0;
    fdn_events_t *es = fdn_runtime_events(rt);
    fdn_pools_t *pools = fdn_runtime_pools(rt);
    fdn_limiter_t *lim = fdn_runtime_limiter(rt);
    int64_t v, v2;
    bool b;

    if (es != NULL && touches(changed, "storage.hot.")) {
        /* (max_events and max_types: their setters refuse no value) */
        if (snap_int(cfg, "storage.hot.max_events", 1, &v) && !check_only)
            took(fdn_events_set_max_events(es, (uint64_t)v), "event_store",
                 "storage.hot.max_events", &refused, err);
        if (snap_int(cfg, "storage.hot.max_age_seconds", 1, &v))
            took(check_only ? fdn__events_check_ns(to_ns(v, 1000000000))
                            : fdn_events_set_max_age(es, to_ns(v, 1000000000)),
                 "event_store", "storage.hot.max_age_seconds", &refused, err);
        if (snap_int(cfg, "storage.hot.prune_interval", 1, &v))
            took(check_only ? fdn__events_check_ns(to_ns(v, 1000000))
                            : fdn_events_set_prune_interval(es, to_ns(v, 1000000)),
                 "event_store", "storage.hot.prune_interval", &refused, err);
        if (snap_int(cfg, "storage.hot.max_types", 1, &v) && !check_only)
            took(fdn_events_set_max_types(es, (uint64_t)v), "event_store", "storage.hot.max_types",
                 &refused, err);
    }
    if (es != NULL && touches(changed, "storage.warm.retention.")) {
        /* the durable tier's own retention (0 = keep) */
        int64_t me = 0, ma = 0;
        if (!snap_int(cfg, "storage.warm.retention.max_events", 0, &me))
            me = 0;
        if (!snap_int(cfg, "storage.warm.retention.max_age_seconds", 0, &ma))
            ma = 0;
        took(check_only ? fdn__events_check_ns(to_ns(ma, 1000000000))
                        : fdn_events_set_durable_retention(es, (uint64_t)me, to_ns(ma, 1000000000)),
             "event_store", "storage.warm.retention", &refused, err);
    }
    if (es != NULL && touches(changed, "interface.max_results") &&
        snap_int(cfg, "interface.max_results", 1, &v))
        /* the store's cap is 32 bits: the schema refuses a larger one (config_keys.c); one
         * that came by anyway is refused as the setter refuses 0, never truncated */
        took(v > UINT32_MAX ? FDN_EINVAL
             : check_only   ? fdn__events_check_max_results((uint32_t)v)
                            : fdn_events_set_max_results(es, (uint32_t)v),
             "event_store", "interface.max_results", &refused, err);
    if (pools != NULL && touches(changed, "infrastructure.connection_pool.default_config.")) {
        char strategy[16];
        fdn_pool_strategy_t st;
        int src = snap_str(cfg, "infrastructure.connection_pool.default_config.strategy", strategy,
                           sizeof(strategy));
        if (src == FDN_ENOMEM)
            rc = FDN_ENOMEM;
        if (src == 0 &&
            snap_int(cfg, "infrastructure.connection_pool.default_config.size", 1, &v) &&
            snap_int(cfg, "infrastructure.connection_pool.default_config.max_overflow", 0, &v2) &&
            fdn_pool_strategy_parse(strategy, strlen(strategy), &st) == 0)
            took(v > INT32_MAX || v2 > INT32_MAX ? FDN_EINVAL
                 : check_only ? (fdn__pool_check_sizes((int)v, (int)v2, st) != 0 ? FDN_EINVAL : 0)
                              : fdn_pools_set_defaults(pools, (int)v, (int)v2, st),
                 "connection_manager", "infrastructure.connection_pool.default_config", &refused,
                 err);
    }
    if (lim != NULL) {
        if (touches(changed, "infrastructure.rate_limiting.cleanup_interval") &&
            snap_int(cfg, "infrastructure.rate_limiting.cleanup_interval", 1, &v))
            took(check_only ? fdn__limiter_check_cleanup_interval(v)
                            : fdn_limiter_set_cleanup_interval(lim, v),
                 "rate_limiter", "infrastructure.rate_limiting.cleanup_interval", &refused, err);
        if (!check_only && touches(changed, "infrastructure.rate_limiting.default_rules") &&
            apply_limiter_rules(cfg, lim) == FDN_ENOMEM)
            rc = FDN_ENOMEM;
        if (touches(changed, "infrastructure.rate_limiting.max_keys_per_identity") &&
            snap_int(cfg, "infrastructure.rate_limiting.max_keys_per_identity", 0, &v))
            took(v > UINT32_MAX ? FDN_EINVAL
                 : check_only   ? 0 /* (its setter refuses no value) */
                                : fdn_limiter_set_max_keys_per_identity(lim, (uint32_t)v),
                 "rate_limiter", "infrastructure.rate_limiting.max_keys_per_identity", &refused,
                 err);
    }
    if (g != NULL && g->breakers != NULL &&
        touches(changed, "infrastructure.circuit_breaker.default_config.")) {
        fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
        bo.clock = fdn_runtime_clock(rt);
        bo.telemetry = fdn_runtime_telemetry(rt);
        /* the defaults are replaced whole: keep the transition hook wire() installed */
        bo.on_transition = on_breaker_transition;
        bo.transition_user = rt;
        if (snap_int(cfg, "infrastructure.circuit_breaker.default_config.failure_threshold", 1,
                     &v) &&
            v <= UINT32_MAX)
            bo.failure_threshold = (uint32_t)v;
        if (snap_int(cfg, "infrastructure.circuit_breaker.default_config.recovery_time", 1, &v))
            bo.recovery_time_ms = v;
        if (snap_int(cfg, "infrastructure.circuit_breaker.default_config.call_timeout", 1, &v))
            bo.probe_timeout_ms = v;
        int r = check_only ? (fdn_breaker_opts_validate(&bo, NULL) != 0 ? FDN_EINVAL : 0)
                           : fdn_breakers_set_defaults(g->breakers, &bo);
        if (r == FDN_ENOMEM)
            rc = FDN_ENOMEM;
        else
            took(r, "circuit_breaker", "infrastructure.circuit_breaker.default_config", &refused,
                 err);
    }
    if (g != NULL && g->breakers != NULL &&
        touches(changed, "infrastructure.circuit_breaker.max_breakers") &&
        snap_int(cfg, "infrastructure.circuit_breaker.max_breakers", 1, &v))
        took(check_only ? 0 /* (its setter refuses only 0, below the range asked) */
                        : fdn_breakers_set_max(g->breakers, (size_t)v),
             "circuit_breaker", "infrastructure.circuit_breaker.max_breakers", &refused, err);
    if (check_only) /* (what follows refuses nothing) */
        return refused != 0 ? refused : rc;
    if (g != NULL && g->breakers != NULL &&
        (touches(changed, "infrastructure.circuit_breaker.breakers") ||
         touches(changed, "infrastructure.circuit_breaker.default_config.")) &&
        apply_breakers(cfg, g->breakers) == FDN_ENOMEM)
        rc = FDN_ENOMEM;
    /* infrastructure.rate_limiting.enabled governs the limiter itself (so POST
     * /v1/limiter/check and fdn_limiter_check follow it) and the protection layer */
    if (lim != NULL && touches(changed, "infrastructure.rate_limiting.enabled") &&
        snap_bool(cfg, "infrastructure.rate_limiting.enabled", &b))
        fdn_limiter_set_enabled(lim, b);
    if (g != NULL && g->protect != NULL) {
        if (touches(changed, "infrastructure.rate_limiting.enabled") &&
            snap_bool(cfg, "infrastructure.rate_limiting.enabled", &b))
            fdn_protect_set_layer_enabled(g->protect, FDN_PROTECT_LIMITER, b);
        if (touches(changed, "infrastructure.circuit_breaker.enabled") &&
            snap_bool(cfg, "infrastructure.circuit_breaker.enabled", &b))
            fdn_protect_set_layer_enabled(g->protect, FDN_PROTECT_BREAKER, b);
        if (touches(changed, "infrastructure.connection_pool.enabled") &&
            snap_bool(cfg, "infrastructure.connection_pool.enabled", &b))
            fdn_protect_set_layer_enabled(g->protect, FDN_PROTECT_POOL, b);
    }
    return refused != 0 ? refused : rc;
}

/* apply_settings from the live revision (a snapshot taken for the pass), under push_mu: an
 * update either is published before the snapshot is taken, or pushes its own after this pass
 * (DESIGN). */
static int apply_live(fdn_runtime_t *rt, glue_t *g, const char *changed, fdn_error_t *err)
{
    const fdn_config_snapshot_t *snap = NULL;
    int rc = 0;
    fdn__mutex_lock(&g->push_mu);
    if (fdn_config_acquire(fdn_runtime_config(rt), &snap) == 0) {
        rc = apply_settings(rt, g, changed, snap, false, err);
        fdn_config_release(snap);
    } /* else the config is stopped: nothing to push (as when a read fails) */
    fdn__mutex_unlock(&g->push_mu);
    return rc;
}

/* ---- run-time config overrides survive a restart ------------------------------------------
 * Every update, reset or dropped notification rewrites <data_dir>/config_overrides.json with
 * the updatable keys whose live value differs from the startup value (file and environment),
 * atomically (a temporary file, fsync, rename); none left: the file is removed. At start the
 * runtime reapplies them as updates, above the file and the environment, as run-time updates
 * always are. Runs on the config hook thread (one at a time) and at wire time. */

static void save_overrides(fdn_runtime_t *rt, glue_t *g)
{
    fdn_config_t *cfg = fdn_runtime_config(rt);
    if (g->overrides_path == NULL || cfg == NULL)
        return;
    json_t *ov = NULL;
    if (fdn__config_overrides(cfg, &ov) != 0)
        return;
    int rc = 0;
    if (json_object_size(ov) == 0) {
        if (unlink(g->overrides_path) != 0 && errno != ENOENT)
            rc = -errno;
    } else {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", g->overrides_path);
        char *text = NULL;
        size_t len = 0, off = 0;
        (void)fdn_json_dumps(ov, JSON_INDENT(2) | JSON_SORT_KEYS, &text, &len);
        int fd = text != NULL ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
        while (fd >= 0 && off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (fd < 0 || off != len || fsync(fd) != 0 || rename(tmp, g->overrides_path) != 0)
            rc = fd < 0 && text == NULL ? FDN_ENOMEM : -(errno ? errno : EIO);
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            (void)unlink(tmp);
        fdn__free(text);
    }
    json_decref(ov);
    if (rc != 0) {
        fdn_telemetry_meta_t meta[] = {{"error", fdn_err_name(rc)}};
        fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt),
                                   "foundation.config.overrides_write_failed", meta, 1);
    }
}

/* Returns 0, or FDN_ENOMEM: the runtime's create fails then, rather than start without the
 * persisted overrides (and write the file over without them at the next change). */
static int load_overrides(fdn_runtime_t *rt, glue_t *g)
{
    fdn_config_t *cfg = fdn_runtime_config(rt);
    if (g->overrides_path == NULL || cfg == NULL)
        return 0;
    json_error_t jerr;
    bool oom;
    json_t *ov = fdn__json_load_file(g->overrides_path, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (ov == NULL) {
        if (oom)
            return FDN_ENOMEM;
        /* there but not JSON: say so, keep the file */
        if (access(g->overrides_path, F_OK) == 0) {
            json_t *d = json_pack("{s:s, s:s}", "file", g->overrides_path, "error", jerr.text);
            record_event(rt, "config_overrides_unreadable", d);
        }
        return 0;
    }
    int ret = 0;
    const char *path;
    json_t *v;
    json_object_foreach(ov, path, v)
    {
        char *text = NULL;
        (void)fdn_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY, &text, NULL);
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = text != NULL ? fdn_config_update_json(cfg, path, text, &err) : FDN_ENOMEM;
        fdn__free(text);
        if (rc == FDN_ENOMEM) {
            ret = rc;
            break;
        }
        if (rc != 0) /* e.g. a key no longer updatable: the override is dropped, visibly */
            record_event(rt, "config_override_skipped",
                         json_pack("{s:s, s:i, s:s}", "path", path, "code",
                                   fdn_err_info(rc)->ref_code, "message",
                                   err.message[0] ? err.message : fdn_strerror(rc)));
    }
    json_decref(ov);
    return ret;
}

/* A config change's JSON text as a value; NULL when out of memory. */
static json_t *parse_any(const char *text)
{
    bool oom;
    return fdn__json_loadb(text, strlen(text), JSON_DECODE_ANY, NULL, &oom);
}

/* Config hook thread: count a recorded change (after its event was stored, or dropped). */
static void hook_count(fdn_runtime_t *rt, glue_t *g, const hook_rec_t *r)
{
    fdn_telemetry_t *tm = fdn_runtime_telemetry(rt);
    char rev[24];
    snprintf(rev, sizeof(rev), "%" PRIu64, r->revision);
    if (r->kind == FDN_CONFIG_CHANGE_UPDATED) {
        fdn_telemetry_meta_t meta[] = {{"path", r->path}, {"revision", rev}};
        fdn_telemetry_emit_counter(tm, "foundation.config_updates", meta, 2);
        fdn__rt_metrics_config_update(g->metrics, r->path, "applied");
    } else {
        fdn_telemetry_meta_t meta[] = {{"revision", rev}};
        fdn_telemetry_emit_counter(tm, "foundation.config_resets", meta, 1);
    }
}

/* Config hook thread: store the events of recs[0..n) as one batch (one commit), then count
 * each change. Every record's event is freed; paths are the caller's. */
static void hook_store(fdn_runtime_t *rt, glue_t *g, hook_rec_t *recs, size_t n)
{
    const fdn_event_t *evs[HOOK_BATCH_MAX];
    size_t ne = 0;
    for (size_t i = 0; i < n; i++)
        if (recs[i].ev != NULL)
            evs[ne++] = recs[i].ev;
    fdn_events_t *es = fdn_runtime_events(rt);
    int rc = es != NULL && ne > 0 ? fdn__events_store_system(es, evs, ne) : 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].ev != NULL && rc != 0)
            count_dropped(rt, recs[i].type, rc);
        fdn_event_free(recs[i].ev);
        recs[i].ev = NULL;
        hook_count(rt, g, &recs[i]);
    }
}

/* Config hook thread: store and count the burst's records. */
static void hook_flush(fdn_runtime_t *rt, glue_t *g)
{
    hook_store(rt, g, g->hook, g->nhook);
    for (size_t i = 0; i < g->nhook; i++)
        fdn__free(g->hook[i].path);
    g->nhook = 0;
}

/* Free the records of the current burst without storing or counting them (the hook thread
 * is stopped; the caller counts them). */
static void hook_discard(glue_t *g)
{
    for (size_t i = 0; i < g->nhook; i++) {
        fdn_event_free(g->hook[i].ev);
        fdn__free(g->hook[i].path);
    }
    g->nhook = 0;
}

/* Config hook thread: record change c with its event data (consumed), stored with its burst
 * (on_config_change), or now when a batch is full. */
static void hook_record(fdn_runtime_t *rt, glue_t *g, const fdn_config_change_t *c,
                        const char *type, json_t *data)
{
    if (g->nhook == HOOK_BATCH_MAX)
        hook_flush(rt, g);
    hook_rec_t r = {NULL, type, c->kind, c->revision, NULL};
    int rc = make_event(rt, type, data, &r.ev);
    if (rc != 0)
        count_dropped(rt, type, rc);
    if (c->kind == FDN_CONFIG_CHANGE_UPDATED && (r.path = fdn__strdup(c->path)) == NULL) {
        /* out of memory for the path the count needs: this change goes alone, now */
        hook_flush(rt, g);
        r.path = (char *)c->path;
        hook_store(rt, g, &r, 1);
        return;
    }
    g->hook[g->nhook++] = r;
}

/* A service's refusal of a config setting, said (never dropped): the event `type`
 * ("config_update_refused": the update was refused and changed nothing; "config_apply_failed":
 * the tree has the value after a reset, the service kept its setting) with data {path, value
 * (the refused value, when known), revision (config_apply_failed), code, error, message}, and
 * the counter foundation.config.service_refused {path, error}. Caller's thread, no lock. */
static void report_refusal(fdn_runtime_t *rt, const char *type, const fdn_error_t *why, int rc,
                           const char *value_json, uint64_t revision)
{
    const char *path = "";
    char pbuf[256];
    /* the setting's path, from the refusal's context (took() puts it there) */
    const char *at = why != NULL ? why->context : "";
    char key[64];
    char val[FDN_ERR_CONTEXT_MAX];
    while (fdn_err_context_next(&at, key, sizeof key, val, sizeof val, NULL)) {
        if (strcmp(key, "path") == 0) {
            size_t n = fdn__utf8_whole(val, FDN_MIN(strlen(val), sizeof(pbuf) - 1));
            memcpy(pbuf, val, n);
            pbuf[n] = '\0';
            path = pbuf;
            break;
        }
    }
    json_t *d = json_object();
    json_object_set_new(d, "path", json_string(path));
    if (value_json != NULL)
        json_object_set_new(d, "value", parse_any(value_json));
    if (revision != 0)
        json_object_set_new(d, "revision", json_integer((json_int_t)revision));
    json_object_set_new(d, "code", json_integer(fdn_err_info(rc)->ref_code));
    json_object_set_new(d, "error", json_string(fdn_err_name(rc)));
    json_object_set_new(
        d, "message",
        json_string(why != NULL && why->message[0] ? why->message : fdn_strerror(rc)));
    record_event(rt, type, d);
    fdn_telemetry_meta_t meta[] = {{"path", path}, {"error", fdn_err_name(rc)}};
    fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt), "foundation.config.service_refused", meta,
                               2);
}

/* The config's apply hook (fdn__cfg_apply_hook_t.apply): in the updater's thread, under the
 * config's writer lock, before the update is published. Pushes the settings `path` drives as
 * the update has them; when a service refuses, pushes them back as the current revision has
 * them and refuses the update with the service's error. A reset (path NULL) pushes every
 * setting and is published whatever a service says: one that refused keeps its setting
 * (reported by reset_kept), one not pushed for want of memory is pushed by the hook thread's
 * next pass (settings_stale). The setters it reaches store atomics (and kick a clock), no
 * callback runs; it may wait for push_mu while a pass over the live revision runs
 * (apply_live: service locks only, never a config lock). */
static int apply_update(const fdn_config_snapshot_t *cur, const fdn_config_snapshot_t *next,
                        const char *path, void *user,
                        fdn_error_t *err) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    glue_t *g = user;
    /* held until the update is published (apply_published), or refused here: no pass over
     * the live revision (apply_live) runs between this push and the publish */
    fdn__mutex_lock(&g->push_mu);
    int rc = apply_settings(g->rt, g, path, next, false, err);
    if (path == NULL) { /* a reset: published in any case (apply_published releases push_mu) */
        if (rc == FDN_ENOMEM) {
            atomic_store_explicit(&g->settings_stale, true, memory_order_relaxed);
            rc = 0;
        }
        return rc;
    }
    if (rc != 0) {
        (void)apply_settings(g->rt, g, path, cur, false, NULL);
        fdn__mutex_unlock(&g->push_mu);
    }
    return rc;
}

/* fdn__cfg_apply_hook_t.check: an update of a config following etcd, in the updater's thread
 * under the config's writer lock, before the value is written to etcd: the settings `path`
 * drives, as `next` has them, go through their services' checks (apply_settings, check_only),
 * so a value a service would refuse is refused to the updater with its error and never
 * reaches etcd. Nothing is pushed: the services keep running the current revision, whatever
 * becomes of the compare-and-swap that follows (failed, lost: nothing to put back), and a
 * value written is pushed when the watch applies it (apply_update, under push_mu, as any
 * change). So no push_mu here. */
static int check_update(const fdn_config_snapshot_t *next, const char *path, void *user,
                        fdn_error_t *err)
{
    glue_t *g = user;
    return apply_settings(g->rt, g, path, next, true, err);
}

/* fdn__cfg_apply_hook_t.published: the update apply_update took is published (config's wmu
 * held). */
static void apply_published(void *user) FDN_NO_THREAD_SAFETY_ANALYSIS
{
    glue_t *g = user;
    fdn__mutex_unlock(&g->push_mu);
}

/* fdn__cfg_apply_hook_t.apply_failed: a reset (at revision) is published and a service kept
 * its setting (apply_update). In the resetter's thread (a reset from etcd: the follower's), no
 * lock held. */
static void reset_kept(uint64_t revision, const fdn_error_t *why, void *user)
{
    glue_t *g = user;
    report_refusal(g->rt, "config_apply_failed", why, why->code, NULL, revision);
}

/* fdn__cfg_apply_hook_t.refused: in the updater's thread, no lock held. */
static void update_refused(const char *path, const char *value_json, const fdn_error_t *why,
                           void *user)
{
    (void)path; /* the setting's path is in why's context (an update's path may drive several) */
    glue_t *g = user;
    report_refusal(g->rt, "config_update_refused", why, why->code, value_json, 0);
}

/* Config hook thread: apply the settings, then record and count the change. */
static void on_config_change(const fdn_config_change_t *c, void *user)
{
    fdn_runtime_t *rt = user;
    glue_t *g = fdn__runtime_glue(rt);
    if (g == NULL)
        return;
    fdn_telemetry_t *tm = fdn_runtime_telemetry(rt);
    /* the overrides file follows the live tree, so only the newest notification needs to
     * write it: a burst of updates costs one write, not one fsync each (the hook thread also
     * records every update, and shutdown waits for it within a bound) */
    if (c->kind == FDN_CONFIG_CHANGE_OVERFLOW ||
        fdn_config_revision(fdn_runtime_config(rt)) <= c->revision)
        save_overrides(rt, g);
    /* applied first, then recorded and counted: whoever sees the update's config_updated
     * event or foundation.config_updates count (a test waiting for a revision, a client
     * reading the events) finds its settings already in force in the services (a query
     * capped by the new interface.max_results, not by the one before) */
    const char *changed = c->kind == FDN_CONFIG_CHANGE_UPDATED ? c->path : NULL;
    bool stale = atomic_exchange_explicit(&g->settings_stale, false, memory_order_relaxed);
    /* a reset's settings were pushed before it was published (apply_update, path NULL), a
     * refusal reported there (reset_kept): pushed again here only if one could not be */
    if (c->kind != FDN_CONFIG_CHANGE_RESET || stale) {
        fdn_error_t why = FDN_ERROR_INIT;
        int arc = apply_live(rt, g, stale ? NULL : changed, &why);
        if (arc == FDN_ENOMEM)
            atomic_store_explicit(&g->settings_stale, true, memory_order_relaxed);
        /* an update's or a reset's settings were taken before it was published: a refusal
         * here comes from a pass over everything (dropped notifications, a push that ran out
         * of memory) over a tree part of which a service refused at a reset; the tree keeps
         * the value, the service its old setting, and it is said so, not dropped */
        if (arc != 0 && arc != FDN_ENOMEM)
            report_refusal(rt, "config_apply_failed", why.code != 0 ? &why : NULL, arc, NULL,
                           c->revision);
    }
    switch (c->kind) {
    case FDN_CONFIG_CHANGE_UPDATED: {
        /* a persisted override reapplied at start is not a new update: its history is
         * already in the store (and whether its notification arrives before or after the
         * wiring is published must not change what is recorded) */
        if (c->revision <= g->restored_rev)
            break;
        json_t *d = json_object();
        json_object_set_new(d, "path", json_string(c->path));
        /* out of memory: the event goes without the value (as when json_object fails) */
        json_object_set_new(d, "old_value", parse_any(c->old_json));
        json_object_set_new(d, "new_value", parse_any(c->new_json));
        json_object_set_new(d, "revision", json_integer((json_int_t)c->revision));
        hook_record(rt, g, c, "config_updated", d);
        break;
    }
    case FDN_CONFIG_CHANGE_RESET: {
        json_t *d = json_object();
        json_object_set_new(d, "revision", json_integer((json_int_t)c->revision));
        hook_record(rt, g, c, "config_reset", d);
        break;
    }
    case FDN_CONFIG_CHANGE_OVERFLOW: {
        fdn_telemetry_measure_t m[] = {{"dropped", (double)c->dropped}};
        fdn_telemetry_execute(tm, "foundation.config.notifications_dropped", m, 1, NULL, 0);
        break;
    }
    }
    /* the burst ends when nothing more is queued: its records go in one commit */
    if (!c->more && g->nhook > 0)
        hook_flush(rt, g);
}

/* ---- slots ---------------------------------------------------------------------------------- */

static int cfg_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    const fdn_runtime_opts_t *ro = fdn__runtime_create_opts(rt);
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    co.file = fdn_runtime_config_path(rt);
    co.clock = fdn_runtime_clock(rt);
    co.on_change = on_config_change;
    co.on_change_user = rt;
    if (ro != NULL) {
        co.keys = ro->config_keys;
        co.nkeys = ro->config_nkeys;
        co.envp = ro->envp;
        co.ignore_env = ro->ignore_env;
    }
    /* started at once (a second start by the supervisor is a no-op) so that the slots
     * created after it read their settings from the tree */
    co.start_stopped = false;
    /* storage.warm.* says the truth: with a data directory the events are on disk there
     * (ev_create), whatever the file or the environment said, so the tree shows
     * storage.warm.enable true and storage.warm.path the directory (as the last entries of
     * the environment layer, over the file and the environment) */
    const char **envp = NULL;
    char warm_path[4200];
    const char *dir = fdn_runtime_data_dir(rt);
    if (dir != NULL) {
        const char *const *base = co.ignore_env     ? NULL
                                  : co.envp != NULL ? co.envp
                                                    : (const char *const *)environ;
        size_t n = 0;
        while (base != NULL && base[n] != NULL)
            n++;
        envp = fdn__calloc(n + 3, sizeof(*envp));
        int w = snprintf(warm_path, sizeof(warm_path), "FDN_STORAGE__WARM__PATH=%s", dir);
        if (envp == NULL || w < 0 || (size_t)w >= sizeof(warm_path)) {
            fdn__free((void *)envp);
            return fdn_err_set(err, envp == NULL ? FDN_ENOMEM : FDN_EINVAL,
                               "cannot build the configuration's environment layer");
        }
        for (size_t i = 0; i < n; i++)
            envp[i] = base[i];
        envp[n] = "FDN_STORAGE__WARM__ENABLE=true";
        envp[n + 1] = warm_path;
        co.envp = envp;
        co.ignore_env = false;
    }
    int rc = fdn_config_create((fdn_config_t **)out, &co, err);
    fdn__free((void *)envp);
    if (rc == 0 && ro != NULL && ro->version >= 2 && ro->registry_etcd != NULL) {
        /* the config follows the same etcd as the registry, in the runtime's namespace, with
         * the registry's bound on each call (the options', else the config's
         * infrastructure.registry.request_timeout_ms, as the registry's was) */
        fdn_config_etcd_opts_t eo = FDN_CONFIG_ETCD_OPTS_INIT;
        eo.url = ro->registry_etcd->url;
        eo.ns = fdn_runtime_name(rt);
        eo.request_timeout_ms = ro->registry_etcd->request_timeout_ms;
        if (eo.request_timeout_ms == 0 &&
            fdn_config_get_int((fdn_config_t *)*out, "infrastructure.registry.request_timeout_ms",
                               &eo.request_timeout_ms) != 0)
            eo.request_timeout_ms = 0;
        eo.start_unreachable =
            ro->registry_etcd->version >= 2 && ro->registry_etcd->start_unreachable;
        rc = fdn_config_follow_etcd(*out, &eo, err);
#ifdef FDN_HAVE_ETCD
        /* its calls behind a breaker, like the registry's (infra/etcd_guard.c) */
        if (rc == 0 && fdn__etcd_guard_breaker(fdn__config_etcd_client(*out), "config") != 0)
            rc = fdn_err_set(err, FDN_ENOMEM, "config on etcd: breaker");
#endif
        if (rc != 0) {
            fdn_config_destroy(*out);
            *out = NULL;
        }
    }
    return rc;
}

static int ev_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    const fdn_runtime_opts_t *ro = fdn__runtime_create_opts(rt);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.clock = fdn_runtime_clock(rt);
    eo.mode = ro != NULL && ro->events_fast ? FDN_EVENTS_FAST : FDN_EVENTS_DURABLE;
    int64_t v;
    if (cfg_int(cfg, "storage.hot.max_events", 1, &v))
        eo.max_events = (uint64_t)v;
    if (cfg_int(cfg, "storage.hot.max_age_seconds", 1, &v))
        eo.max_age_ns = to_ns(v, 1000000000);
    if (cfg_int(cfg, "storage.hot.prune_interval", 1, &v))
        eo.prune_interval_ns = to_ns(v, 1000000);
    if (cfg_int(cfg, "interface.max_results", 1, &v) && v <= UINT32_MAX)
        eo.max_results = (uint32_t)v;

    /* storage.warm.backend "postgres": the durable tier is PostgreSQL (storage.warm.postgres.*,
     * docs/events-postgres.md), shared by every process that names the same database */
    char wbackend[16] = "sqlite", pgurl[1024] = "", pgschema[64] = "fdn";
    (void)cfg_str(cfg, "storage.warm.backend", wbackend, sizeof(wbackend));
    if (strcmp(wbackend, "postgres") == 0) {
        if (!cfg_str(cfg, "storage.warm.postgres.url", pgurl, sizeof(pgurl)) || pgurl[0] == '\0')
            return fdn_err_set(err, FDN_EINVAL,
                               "storage.warm.postgres.url: missing, empty or longer than 1023 "
                               "bytes (storage.warm.backend is \"postgres\")");
        (void)cfg_str(cfg, "storage.warm.postgres.schema", pgschema, sizeof(pgschema));
        eo.backend = FDN_EVENTS_BACKEND_POSTGRES;
        eo.postgres.url = pgurl;
        eo.postgres.schema = pgschema;
        if (cfg_int(cfg, "storage.warm.postgres.pool_size", 1, &v) && v <= 256)
            eo.postgres.pool_size = (uint32_t)v;
        if (cfg_int(cfg, "storage.warm.postgres.batch_max", 1, &v) && v <= 65536)
            eo.postgres.batch_max = (uint32_t)v;
        if (cfg_int(cfg, "storage.warm.postgres.flush_interval_ms", 0, &v))
            eo.postgres.flush_interval_ms = v;
        if (cfg_int(cfg, "storage.warm.postgres.command_timeout_ms", 1, &v))
            eo.postgres.command_timeout_ms = v;
        if (cfg_int(cfg, "storage.warm.postgres.connect_timeout_ms", 1, &v))
            eo.postgres.connect_timeout_ms = v;
        if (cfg_int(cfg, "storage.warm.postgres.stop_timeout_ms", 1, &v))
            eo.postgres.stop_timeout_ms = v;
        char spool[4096];
        if (cfg_str(cfg, "storage.warm.postgres.spool_path", spool, sizeof(spool)) &&
            spool[0] != '\0')
            eo.postgres.spool_path = spool;
        if (cfg_int(cfg, "storage.warm.postgres.spool_max_bytes", 4096, &v))
            eo.postgres.spool_max_bytes = (uint64_t)v;
        int rc = fdn_events_create((fdn_events_t **)out, &eo, err);
        if (rc != 0)
            fdn_err_add_context(err, "backend", "postgres");
        return rc;
    }

    /* durable tier: the runtime's data directory wins; else storage.warm.* */
    char path[4096];
    const char *dir = fdn_runtime_data_dir(rt);
    char warm[4000];
    bool warm_on = false;
    if (dir == NULL && cfg_bool(cfg, "storage.warm.enable", &warm_on) && warm_on &&
        fdn_config_get_string(cfg, "storage.warm.path", warm, sizeof(warm), NULL) == 0)
        dir = warm;
    if (dir != NULL) {
        int mrc = fdn__rt_make_dirs(dir);
        if (mrc != 0)
            return fdn_err_set(err, mrc == -EACCES ? FDN_EACCES : FDN_EIO,
                               "cannot create the data directory %s (errno %d)", dir, -mrc);
        int n = snprintf(path, sizeof(path), "%s/%s", dir, EVENTS_FILE);
        if (n < 0 || (size_t)n >= sizeof(path))
            return fdn_err_set(err, FDN_EINVAL, "data directory path too long: %s", dir);
        eo.durable_path = path;
    }
    /* storage.warm.compression: none stores payloads as they are; zstd (and gzip, which the
     * reference's validator accepts, but this library does not link) compress them */
    char comp[16];
    if (fdn_config_get_string(cfg, "storage.warm.compression", comp, sizeof(comp), NULL) == 0)
        eo.compress = strcmp(comp, "none") != 0;
    int rc = fdn_events_create((fdn_events_t **)out, &eo, err);
    if (rc != 0 && eo.durable_path != NULL)
        fdn_err_add_context(err, "file", "%s", eo.durable_path);
    return rc;
}

static int tm_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    fdn_telemetry_opts_t to = FDN_TELEMETRY_OPTS_INIT;
    to.clock = fdn_runtime_clock(rt);
    int rc = fdn_telemetry_create((fdn_telemetry_t **)out, &to);
    if (rc != 0)
        return fdn_err_set(err, rc, "cannot create the telemetry service");
    /* telemetry.buckets / summaries: before any family or event histogram exists */
    rc = fdn__rt_telemetry_configure(*out, fdn_runtime_config(rt), err);
    if (rc != 0) {
        fdn_telemetry_destroy(*out);
        *out = NULL;
    }
    return rc;
}

static int pools_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    fdn_pools_opts_t po = FDN_POOLS_OPTS_INIT;
    po.clock = fdn_runtime_clock(rt);
    po.telemetry = fdn_runtime_telemetry(rt);
    int rc = fdn_pools_create((fdn_pools_t **)out, &po);
    if (rc != 0)
        return fdn_err_set(err, rc, "cannot create the connection manager");
    return 0;
}

static int lim_create(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    fdn_config_t *cfg = fdn_runtime_config(rt);
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.clock = fdn_runtime_clock(rt);
    lo.telemetry = fdn_runtime_telemetry(rt);
    int64_t v;
    if (cfg_int(cfg, "infrastructure.rate_limiting.cleanup_interval", 1, &v))
        lo.cleanup_interval_ms = v;
    if (cfg_int(cfg, "infrastructure.rate_limiting.max_keys", 1, &v) && v <= UINT32_MAX)
        lo.max_keys = (uint32_t)v;
    /* infrastructure.rate_limiting.backend and .redis.* (the schema checked types and ranges) */
    char backend[16] = "memory", url[1024] = "", prefix[257] = "fdn:rl:", policy[16] = "local";
    (void)cfg_str(cfg, "infrastructure.rate_limiting.backend", backend, sizeof(backend));
    if (strcmp(backend, "redis") == 0) {
        lo.backend = FDN_LIMITER_BACKEND_REDIS;
        if (!cfg_str(cfg, "infrastructure.rate_limiting.redis.url", url, sizeof(url)))
            return fdn_err_set(err, FDN_EINVAL,
                               "infrastructure.rate_limiting.redis.url: missing "
                               "or longer than 1023 bytes");
        lo.redis.url = url;
        (void)cfg_str(cfg, "infrastructure.rate_limiting.redis.key_prefix", prefix, sizeof(prefix));
        lo.redis.key_prefix = prefix;
        (void)cfg_str(cfg, "infrastructure.rate_limiting.redis.failure_policy", policy,
                      sizeof(policy));
        (void)fdn_limit_failure_policy_parse(policy, &lo.redis.failure_policy);
        if (cfg_int(cfg, "infrastructure.rate_limiting.redis.pool_size", 1, &v) && v <= 1024)
            lo.redis.pool_size = (uint32_t)v;
        if (cfg_int(cfg, "infrastructure.rate_limiting.redis.connect_timeout_ms", 1, &v))
            lo.redis.connect_timeout_ms = v;
        if (cfg_int(cfg, "infrastructure.rate_limiting.redis.command_timeout_ms", 1, &v))
            lo.redis.command_timeout_ms = v;
        if (cfg_int(cfg, "infrastructure.rate_limiting.redis.fleet_size", 1, &v) && v <= UINT32_MAX)
            lo.redis.fleet_size = (uint32_t)v;
        if (cfg_int(cfg, "infrastructure.rate_limiting.redis.pipeline_max", 1, &v) && v <= 256)
            lo.redis.pipeline_max = (uint32_t)v;
    }
    fdn_error_t why = FDN_ERROR_INIT;
    int rc = fdn_limiter_open((fdn_limiter_t **)out, &lo, &why);
    if (rc != 0)
        return fdn_err_set(err, rc, "cannot create the rate limiter: %s", why.message);
    return 0;
}

/* The config's stop joins its delivery thread, which runs the subscribers' callbacks, and its
 * hook thread, which runs on_config_change and the telemetry handlers of what it counts. */
static bool cfg_on_own_thread(const void *obj)
{
    return fdn__config_on_own_thread(obj);
}

/* The event store's stop joins its delivery thread, which runs the subscriptions' callbacks,
 * and its writer and pruner, which run the telemetry handlers of what they count. */
static bool ev_on_own_thread(const void *obj)
{
    return fdn__events_on_own_thread(obj);
}

const fdn__rt_slot_def_t fdn__rt_builtins[FDN__RT_SLOT_COUNT] = {
    [FDN__RT_CONFIG] = {"config_server", cfg_create, &fdn__config_service_ops, true,
                        cfg_on_own_thread},
    [FDN__RT_EVENTS] = {"event_store", ev_create, &fdn__events_service_ops, false,
                        ev_on_own_thread},
    [FDN__RT_TELEMETRY] = {"telemetry_service", tm_create, &fdn__telemetry_service_ops, false,
                           NULL},
    [FDN__RT_CONNMGR] = {"connection_manager", pools_create, &fdn__pools_service_ops, false, NULL},
    [FDN__RT_LIMITER] = {"rate_limiter", lim_create, &fdn__limiter_service_ops, false, NULL},
};

/* ---- wiring ---------------------------------------------------------------------------------- */

static void on_breaker_transition(const char *name, fdn_breaker_state_t from,
                                  fdn_breaker_state_t to, void *user)
{
    fdn_runtime_t *rt = user;
    json_t *d = json_object();
    json_object_set_new(d, "breaker", json_string(name));
    json_object_set_new(d, "from", json_string(fdn_breaker_state_name(from)));
    json_object_set_new(d, "to", json_string(fdn_breaker_state_name(to)));
    record_event(rt, "circuit_breaker_state_change", d);
    glue_t *g = fdn__runtime_glue(rt);
    if (g != NULL)
        fdn__rt_metrics_transition(g->metrics, name, fdn_breaker_state_name(from),
                                   fdn_breaker_state_name(to));
}

static void unwire(fdn_runtime_t *rt, void *glue)
{
    glue_t *g = glue;
    if (g == NULL)
        return;
    /* the config hook thread reads the glue (on_config_change): joined before it is freed.
     * Stopped already by the runtime's shutdown (also in a runtime never started, which ran
     * it since cfg_create); stopped here again in case a shutdown did not get that far. A
     * second stop is a no-op. */
    fdn__config_service_ops.stop(fdn_runtime_config(rt));
    /* no update reaches the services through g any more (waits for one under way) */
    fdn__config_set_apply_hook(fdn_runtime_config(rt), NULL);
    fdn__rt_metrics_detach(g->metrics); /* its collector reads the breakers freed below */
    g->metrics = NULL;
    /* the telemetry slot is destroyed before the event store's and the config's */
    (void)fdn__events_set_telemetry(fdn_runtime_events(rt), NULL); /* waits for its reports */
    fdn__config_set_telemetry(fdn_runtime_config(rt), NULL);
    (void)fdn_events_set_breaker(fdn_runtime_events(rt), NULL); /* freed with the set below */
    fdn_protect_destroy(g->protect);
    fdn_breakers_destroy(g->breakers);
    /* records of a burst the hook thread stopped in: counted by after_shutdown (or, when the
     * create failed, never made) */
    hook_discard(g);
    pthread_mutex_destroy(&g->push_mu);
    fdn__free(g->overrides_path);
    fdn__free(g);
}

static int wire(fdn_runtime_t *rt, void **out, fdn_error_t *err)
{
    glue_t *g = fdn__calloc(1, sizeof(*g));
    if (g == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory wiring runtime %s",
                           fdn_runtime_name(rt));
    pthread_mutex_init(&g->push_mu, NULL);
    atomic_init(&g->settings_stale, false);
    g->rt = rt;
    /* the event store and the config are created before the telemetry service: connect
     * them now */
    (void)fdn__events_set_telemetry(fdn_runtime_events(rt), fdn_runtime_telemetry(rt));
    fdn__config_set_telemetry(fdn_runtime_config(rt), fdn_runtime_telemetry(rt));
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.clock = fdn_runtime_clock(rt);
    bo.telemetry = fdn_runtime_telemetry(rt);
    bo.on_transition = on_breaker_transition;
    bo.transition_user = rt;
    int rc = fdn_breakers_create(&g->breakers, &bo);
    if (rc == 0) {
        fdn_protect_opts_t po = FDN_PROTECT_OPTS_INIT;
        po.breakers = g->breakers;
        po.limiter = fdn_runtime_limiter(rt);
        po.pools = fdn_runtime_pools(rt);
        po.clock = fdn_runtime_clock(rt);
        po.telemetry = fdn_runtime_telemetry(rt);
        rc = fdn_protect_create(&g->protect, &po);
    }
    fdn_events_backend_status_t ebs;
    if (rc == 0 && fdn_events_backend_status(fdn_runtime_events(rt), &ebs) == 0 &&
        ebs.backend == FDN_EVENTS_BACKEND_POSTGRES) {
        /* the event store's calls on PostgreSQL go through the breaker "events.postgres"
         * (docs/events-postgres.md, "Failure policy"): opens after 3 failures in 10 s */
        fdn_breaker_opts_t eb = bo;
        eb.failure_threshold = 3;
        eb.window_ms = 10000;
        eb.recovery_time_ms = 1000;
        eb.probe_timeout_ms = 15000;
        fdn_breaker_t *brk = NULL;
        rc = fdn_breaker_create_in(g->breakers, "events.postgres", &eb, &brk);
        if (rc == 0)
            rc = fdn_events_set_breaker(fdn_runtime_events(rt), brk);
    }
    if (rc != 0) {
        unwire(rt, g);
        return fdn_err_set(err, rc, "cannot create the protection layers of runtime %s",
                           fdn_runtime_name(rt));
    }
    const char *dir = fdn_runtime_data_dir(rt);
    if (dir != NULL) {
        size_t n = strlen(dir) + sizeof(OVERRIDES_FILE) + 1;
        g->overrides_path = fdn__malloc(n);
        if (g->overrides_path == NULL) {
            unwire(rt, g);
            return fdn_err_set(err, FDN_ENOMEM, "out of memory wiring runtime %s",
                               fdn_runtime_name(rt));
        }
        snprintf(g->overrides_path, n, "%s/%s", dir, OVERRIDES_FILE);
    }
    /* from now on every update is taken by the services it drives before it is published,
     * or refused with their error (apply_update), the persisted overrides below included */
    fdn__cfg_apply_hook_t ah = {.apply = apply_update,
                                .published = apply_published,
                                .refused = update_refused,
                                .check = check_update,
                                .apply_failed = reset_kept,
                                .user = g};
    fdn__config_set_apply_hook(fdn_runtime_config(rt), &ah);
    /* the overrides are updates of the tree; g is not published until wire returns, so the
     * hook thread may skip their notifications: apply_settings reads the whole tree after */
    int rc2 = load_overrides(rt, g);
    g->restored_rev = fdn_config_revision(fdn_runtime_config(rt));
    if (rc2 == 0)
        rc2 = fdn__rt_metrics_attach(rt, &g->metrics);
    if (rc2 != 0) {
        unwire(rt, g);
        return fdn_err_set(err, rc2, "out of memory wiring runtime %s", fdn_runtime_name(rt));
    }
    /* a setting of the file or the environment a service refuses fails the create, with the
     * service's error naming the path (as the schema's refusals do) */
    rc2 = apply_live(rt, g, NULL, err);
    if (rc2 != 0) {
        unwire(rt, g);
        if (rc2 == FDN_ENOMEM)
            fdn_err_set(err, rc2, "out of memory wiring runtime %s", fdn_runtime_name(rt));
        return rc2;
    }
    *out = g;
    return 0;
}

static void on_restart(fdn_runtime_t *rt, void *glue, const char *service, int attempt, int reason)
{
    if (glue == NULL)
        return;
    json_t *d = json_object();
    json_object_set_new(d, "service", json_string(service));
    json_object_set_new(d, "attempt", json_integer(attempt));
    json_object_set_new(d, "reason", json_string(fdn_err_name(reason)));
    record_event(rt, "supervisor_restart", d);
    fdn_telemetry_meta_t meta[] = {{"service", service}, {"reason", fdn_err_name(reason)}};
    fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt), "foundation.supervisor.restarts", meta,
                               2);
    fdn__rt_metrics_restart(((glue_t *)glue)->metrics, service);
}

static void on_escalation(fdn_runtime_t *rt, void *glue, const char *service, int code)
{
    if (glue == NULL)
        return;
    json_t *d = json_object();
    json_object_set_new(d, "service", json_string(service));
    json_object_set_new(d, "reason", json_string(fdn_err_name(code)));
    record_event(rt, "supervisor_escalation", d);
    fdn_telemetry_meta_t meta[] = {{"service", service}, {"reason", fdn_err_name(code)}};
    fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt), "foundation.supervisor.escalations", meta,
                               2);
    fdn__rt_metrics_escalation(((glue_t *)glue)->metrics, service);
}

static void on_registry(fdn_runtime_t *rt, void *glue, fdn_registry_op_t op, const char *ns,
                        const char *service, int result, int64_t duration_ns)
{
    (void)glue;
    fdn_telemetry_t *tm = fdn_runtime_telemetry(rt);
    fdn_telemetry_meta_t meta[] = {
        {"namespace", ns}, {"service", service}, {"result", result == 0 ? "ok" : "error"}};
    switch (op) {
    case FDN_REGISTRY_OP_REGISTER: {
        fdn_telemetry_emit_counter(tm, "foundation.registry.register", meta, 3);
        break;
    }
    case FDN_REGISTRY_OP_LOOKUP: {
        fdn_telemetry_measure_t m[] = {{"duration", (double)duration_ns}};
        fdn_telemetry_execute(tm, "foundation.registry.lookup", m, 1, meta, 3);
        break;
    }
    case FDN_REGISTRY_OP_UNREGISTER: {
        fdn_telemetry_emit_counter(tm, "foundation.registry.unregister", meta, 3);
        break;
    }
    }
}

/* The services stopped for good: the config changes the hook has not recorded are counted
 * as dropped (fdn_config_status_t.dropped), not lost silently: the burst it stopped in (its
 * records wait for the burst's last change, which never came: a drain that timed out, or a
 * shutdown from a supervisor callback, which does not drain) and the notifications still
 * queued for it. Their events cannot be stored any more (the event store has stopped), nor
 * their updates counted (so has the telemetry). The config has stopped by then (its hook
 * thread joined), also in a runtime never started, which ran it since its create: the
 * runtime's shutdown stops it (runtime.c, stop_from_create). */
static void after_shutdown(fdn_runtime_t *rt, void *glue)
{
    glue_t *g = glue;
    fdn_config_t *cfg = fdn_runtime_config(rt);
    uint64_t open = g->nhook;
    hook_discard(g);
    (void)fdn__config_hook_discard(cfg, open);
}

/* Record the config changes still queued for the hook while the event store runs: for at
 * most 5 s, and no longer than the shutdown's own bound (timeout_ms; < 0: none). What is left
 * is counted as dropped (after_shutdown). */
static void before_shutdown(fdn_runtime_t *rt, void *glue, int64_t timeout_ms)
{
    (void)glue;
    (void)fdn__config_hook_drain(fdn_runtime_config(rt),
                                 timeout_ms < 0 ? 5000 : FDN_MIN(timeout_ms, 5000));
}

const fdn__rt_hooks_t fdn__rt_hooks = {
    .wire = wire,
    .before_shutdown = before_shutdown,
    .after_shutdown = after_shutdown,
    .unwire = unwire,
    .on_restart = on_restart,
    .on_escalation = on_escalation,
    .on_registry = on_registry,
};

void fdn_runtime_error_hook(const fdn_error_t *err, void *user)
{
    fdn_runtime_t *rt = user;
    if (err == NULL || rt == NULL)
        return;
    char name[128];
    fdn_err_metric_name(err, name, sizeof(name));
    char code[16];
    snprintf(code, sizeof(code), "%d", err->ref_code);
    fdn_telemetry_meta_t meta[] = {{"error_type", err->type != NULL ? err->type : "unknown"},
                                   {"severity", fdn_severity_name(err->severity)},
                                   {"code", code}};
    fdn_telemetry_emit_counter(fdn_runtime_telemetry(rt), name, meta, 3);
}
