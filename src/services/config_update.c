/*
 * DESIGN: config service, write side: notifications and their delivery thread,
 * subscriptions, updates (the four checks, the apply hook's, publish, notify), resets. The
 * apply hook (the runtime's: the services the path drives take the value) runs under wmu
 * between validation and publish; its refusal is reported through its `refused` after wmu is
 * released (config_int.h). A reset is validated first (reference §1.6: a tree that does not
 * validate is refused, nothing changed), then goes through the same hook (path NULL, every
 * setting) before it is published, but the hook does not refuse it: a refusal is reported
 * through `apply_failed`. An
 * update of a config following etcd asks the hook's `check` instead (nothing pushed) before the
 * value is written there; the watch's change then goes through `apply` as any change. Shares the
 * state, locks and invariants described in config.c (lock order wmu -> smu; wmu -> fmu; no callback
 * under a lock). The delivery thread is started/joined by config.c.
 */
#include "services/config_int.h"

#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <urcu-bp.h>

#include "core/sync.h"
#include <fdn/telemetry.h>
#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"
#include "core/rcu.h"
#include "core/tsan.h"
#include "logic/config_path.h"
#include "validation/config_schema.h"

/* ---- notifications --------------------------------------------------------------------- */

static void note_unref(note_t *n)
{
    if (n != NULL && atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
        fdn__free(n->path);
        fdn__free(n->old_json);
        fdn__free(n->new_json);
        fdn__free(n);
    }
}

static bool prefix_match(const sub_t *s, const note_t *n)
{
    if (s->plen == 0 || n->kind == FDN_CONFIG_CHANGE_RESET)
        return true;
    return strncmp(n->path, s->prefix, s->plen) == 0 &&
           (n->path[s->plen] == '\0' || n->path[s->plen] == '.');
}

static void sub_push(fdn_config_t *cfg, sub_t *s, note_t *n) FDN_REQUIRES(cfg->smu)
{
    if (s->removed || !prefix_match(s, n))
        return;
    if (s->count == s->cap) {
        note_unref(s->q[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->count--;
        s->dropped_pending++;
        atomic_fetch_add_explicit(&cfg->dropped, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
    s->q[(s->head + s->count) % s->cap] = n;
    s->count++;
    FDN_ASSERT(s->count <= s->cap); /* the ring drops its oldest entry rather than grow */
}

/* Called with wmu held so queues stay in revision order. Allocation failure drops the
 * notification (counted as dropped); the update itself has already succeeded. newv NULL: the
 * caller could not make the new value (out of memory): dropped and counted the same way. */
void fdn__cfg_notify(fdn_config_t *cfg, fdn_config_change_kind_t kind, const char *path,
                     const json_t *oldv, const json_t *newv, uint64_t rev) FDN_REQUIRES(cfg->wmu)
    FDN_EXCLUDES(cfg->smu)
{
    fdn__mutex_lock(&cfg->smu);
    bool any = cfg->hook != NULL || cfg->subs != NULL;
    fdn__mutex_unlock(&cfg->smu);
    if (!any)
        return;
    note_t *n = newv != NULL ? fdn__calloc(1, sizeof(*n)) : NULL;
    if (n != NULL) {
        atomic_init(&n->refs, 1);
        n->kind = kind;
        n->revision = rev;
        n->path = fdn__strdup(path);
        n->old_json = oldv != NULL ? fdn__cfg_dump(oldv) : fdn__strdup("null");
        n->new_json = fdn__cfg_dump(newv);
        if (n->path == NULL || n->old_json == NULL || n->new_json == NULL) {
            note_unref(n);
            n = NULL;
        }
    }
    fdn__mutex_lock(&cfg->smu);
    if (n == NULL) {
        atomic_fetch_add_explicit(&cfg->dropped, 1, memory_order_relaxed);
    } else {
        if (cfg->hook != NULL)
            sub_push(cfg, cfg->hook, n);
        for (sub_t *s = cfg->subs; s != NULL; s = s->next)
            sub_push(cfg, s, n);
        pthread_cond_broadcast(&cfg->scv); /* the subscriber and the hook threads */
    }
    fdn__mutex_unlock(&cfg->smu);
    note_unref(n);
}

void fdn__cfg_sub_free(sub_t *s)
{
    while (s->count > 0) {
        note_unref(s->q[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
    fdn__free(s->q);
    fdn__free(s->prefix);
    fdn__free(s);
}

static bool has_work(const sub_t *s)
{
    return s != NULL && (s->count > 0 || s->dropped_pending > 0);
}

static sub_t *pick_sub(fdn_config_t *cfg) FDN_REQUIRES(cfg->smu)
{
    sub_t *best = NULL;
    for (sub_t *s = cfg->subs; s != NULL; s = s->next) {
        if ((s->count > 0 || s->dropped_pending > 0) && (best == NULL || s->served < best->served))
            best = s;
    }
    return best;
}

/* Deliver the next notification of s (smu held; released around the callback). */
static void deliver_one(fdn_config_t *cfg, sub_t *s) FDN_REQUIRES(cfg->smu)
{
    FDN_ASSERT(s->count > 0 || s->dropped_pending > 0); /* chosen because it has work */
    fdn_config_change_t ch;
    note_t *n = NULL;
    memset(&ch, 0, sizeof(ch));
    if (s->dropped_pending > 0) {
        ch.kind = FDN_CONFIG_CHANGE_OVERFLOW;
        ch.path = "";
        ch.old_json = "null";
        ch.new_json = "null";
        ch.dropped = s->dropped_pending;
        ch.revision = s->count > 0 ? s->q[s->head]->revision - 1 : 0;
        s->dropped_pending = 0;
    } else {
        n = s->q[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        ch.kind = n->kind;
        ch.path = n->path;
        ch.old_json = n->old_json;
        ch.new_json = n->new_json;
        ch.revision = n->revision;
    }
    ch.more = has_work(s);
    s->served = ++cfg->serve_seq;
    s->busy = true;
    fdn__mutex_unlock(&cfg->smu);
    s->cb(&ch, s->user);
    note_unref(n);
    fdn__mutex_lock(&cfg->smu);
    s->busy = false;
}

/* The config whose delivery or hook thread this is (NULL elsewhere). */
static _Thread_local const fdn_config_t *t_own;

bool fdn__config_on_own_thread(const fdn_config_t *cfg)
{
    return cfg != NULL && t_own == cfg;
}

void *fdn__cfg_delivery_main(void *arg)
{
    fdn_config_t *cfg = arg;
    t_own = cfg;
    fdn__mutex_lock(&cfg->smu);
    for (;;) {
        if (cfg->thr_stop)
            break;
        sub_t *s = pick_sub(cfg);
        if (s == NULL) {
            pthread_cond_wait(&cfg->scv, &cfg->smu);
            continue;
        }
        deliver_one(cfg, s);
        if (s->free_when_idle)
            fdn__cfg_sub_free(s);
        else if (s->removed)
            pthread_cond_broadcast(&cfg->idle_cv);
    }
    fdn__mutex_unlock(&cfg->smu);
    return NULL;
}

void *fdn__cfg_hook_main(void *arg)
{
    fdn_config_t *cfg = arg;
    t_own = cfg;
    fdn__mutex_lock(&cfg->smu);
    for (;;) {
        if (cfg->thr_stop)
            break;
        if (!has_work(cfg->hook)) {
            pthread_cond_broadcast(&cfg->idle_cv); /* drained (fdn__config_hook_drain) */
            pthread_cond_wait(&cfg->scv, &cfg->smu);
            continue;
        }
        deliver_one(cfg, cfg->hook);
    }
    pthread_cond_broadcast(&cfg->idle_cv);
    fdn__mutex_unlock(&cfg->smu);
    return NULL;
}

int fdn__config_hook_drain(fdn_config_t *cfg, int64_t timeout_ms)
{
    if (cfg == NULL)
        return FDN_EINVAL;
    int64_t dl = fdn__deadline_after_ms(timeout_ms); /* idle_cv waits on CLOCK_MONOTONIC */
    int rc = 0;
    fdn__mutex_lock(&cfg->smu);
    while (cfg->hook_thr_running && !cfg->thr_stop && (has_work(cfg->hook) || cfg->hook->busy)) {
        if (fdn__cond_wait_until(&cfg->idle_cv, &cfg->smu, dl) != 0) {
            rc = FDN_ETIMEDOUT;
            break;
        }
    }
    fdn__mutex_unlock(&cfg->smu);
    return rc;
}

uint64_t fdn__config_hook_discard(fdn_config_t *cfg, uint64_t also)
{
    if (cfg == NULL)
        return 0;
    uint64_t n = also;
    fdn__mutex_lock(&cfg->smu);
    sub_t *s = cfg->hook;
    if (s != NULL && !cfg->hook_thr_running) {
        while (s->count > 0) {
            note_unref(s->q[s->head]);
            s->head = (s->head + 1) % s->cap;
            s->count--;
            n++;
        }
        s->dropped_pending = 0; /* counted in `dropped` when they were dropped */
    }
    fdn__mutex_unlock(&cfg->smu);
    if (n > 0)
        atomic_fetch_add_explicit(&cfg->dropped, n, memory_order_relaxed);
    return n;
}

sub_t *fdn__cfg_sub_new(const char *prefix, fdn_config_change_cb cb, void *user, size_t cap)
{
    sub_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->prefix = fdn__strdup(prefix);
    s->q = fdn__calloc(cap, sizeof(note_t *));
    if (s->prefix == NULL || s->q == NULL) {
        fdn__free(s->prefix);
        fdn__free(s->q);
        fdn__free(s);
        return NULL;
    }
    s->plen = strlen(prefix);
    s->cap = cap;
    s->cb = cb;
    s->user = user;
    return s;
}

int fdn_config_subscribe(fdn_config_t *cfg, const char *prefix, fdn_config_change_cb cb, void *user,
                         uint64_t *out_id)
{
    if (cfg == NULL || cb == NULL)
        return FDN_EINVAL;
    if (prefix == NULL)
        prefix = "";
    if (prefix[0] != '\0' && fdn__cfg_path_check(prefix, NULL) != 0)
        return FDN_EINVAL;
    /* an empty component can match no path: refuse it rather than never notify */
    size_t plen = strlen(prefix);
    if (plen > 0 && (prefix[0] == '.' || prefix[plen - 1] == '.' || strstr(prefix, "..")))
        return FDN_EINVAL;
    if (fdn__cfg_schema_leaf_above(cfg->schema, prefix, plen) >= 0) /* inside a leaf's value */
        return FDN_EINVAL;
    /* the schema is fixed at create: a prefix naming neither a key nor a section could only
     * ever be told of resets, which is not what its subscriber asked for */
    if (plen > 0 && fdn__cfg_schema_find(cfg->schema, prefix, plen) < 0 &&
        !fdn__cfg_schema_is_section(cfg->schema, prefix, plen))
        return FDN_EINVAL;
    if (!fdn_config_available(cfg))
        return FDN_EUNAVAILABLE;
    sub_t *s = fdn__cfg_sub_new(prefix, cb, user, cfg->sub_cap);
    if (s == NULL)
        return FDN_ENOMEM;
    fdn__mutex_lock(&cfg->smu);
    s->id = ++cfg->next_id;
    s->served = cfg->serve_seq;
    /* *out_id first, while nobody can deliver to s: its callback (on the delivery thread,
     * which finds s under smu) reads the id written here, e.g. to unsubscribe itself with it,
     * and may free s as soon as s is linked, so nothing of s is read after that */
    if (out_id != NULL)
        *out_id = s->id;
    /* append, so equal "served" ties go to the older subscriber first */
    sub_t **pp = &cfg->subs;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = s;
    cfg->nsubs++;
    fdn__mutex_unlock(&cfg->smu);
    return 0;
}

int fdn_config_unsubscribe(fdn_config_t *cfg, uint64_t id)
{
    if (cfg == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&cfg->smu);
    sub_t **pp = &cfg->subs;
    while (*pp != NULL && (*pp)->id != id)
        pp = &(*pp)->next;
    sub_t *s = *pp;
    if (s == NULL) {
        fdn__mutex_unlock(&cfg->smu);
        return FDN_ENOENT;
    }
    *pp = s->next;
    cfg->nsubs--;
    s->removed = true;
    if (s->busy && cfg->thr_running && pthread_equal(pthread_self(), cfg->thr)) {
        s->free_when_idle = true; /* called from its own callback */
    } else {
        while (s->busy)
            pthread_cond_wait(&cfg->idle_cv, &cfg->smu);
        fdn__cfg_sub_free(s);
    }
    fdn__mutex_unlock(&cfg->smu);
    return 0;
}

/* ---- updates --------------------------------------------------------------------------- */

static int forbidden(const char *path, fdn_error_t *err)
{
    fdn_err_set(err, FDN_ECONFIG_FORBIDDEN,
                "Configuration path %.200s cannot be updated at runtime", path);
    fdn_err_add_context(err, "path", "%.200s", path);
    if (err == NULL)
        return FDN_ECONFIG_FORBIDDEN;
    /* Whole paths, as many as the rest of the context holds (FDN_ERR_CONTEXT_MAX: the 19 of
     * today need about 560 bytes), then ",... (N more)" for those left out, never a path cut
     * in the middle. room: what " allowed_paths=" leaves, less the two quotes the value gets
     * when it holds the suffix's space. */
    static const char key[] = " allowed_paths=";
    size_t used = strlen(err->context) + sizeof(key) - 1 + 1 /* NUL */;
    size_t room = used < FDN_ERR_CONTEXT_MAX ? FDN_ERR_CONTEXT_MAX - used : 0;
    char list[FDN_ERR_CONTEXT_MAX];
    size_t need = 0;
    for (size_t i = 0; i < fdn__cfg_updatable_count; i++)
        need += (i ? 1 : 0) + strlen(fdn__cfg_updatable_paths[i]);
    size_t o = 0, n = 0;
    list[0] = '\0';
    if (need <= room) {
        n = fdn__cfg_updatable_count;
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "",
                                  fdn__cfg_updatable_paths[i]);
    } else {
        char tail[32];
        int tl = snprintf(tail, sizeof tail, ",... (%zu more)", fdn__cfg_updatable_count);
        size_t budget = room > (size_t)tl + 2 ? room - (size_t)tl - 2 : 0;
        for (; n < fdn__cfg_updatable_count; n++) {
            size_t pl = (n ? 1 : 0) + strlen(fdn__cfg_updatable_paths[n]);
            if (o + pl > budget)
                break;
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", n ? "," : "",
                                  fdn__cfg_updatable_paths[n]);
        }
        snprintf(list + o, sizeof(list) - o, "%s... (%zu more)", n ? "," : "",
                 fdn__cfg_updatable_count - n);
    }
    fdn_err_add_context(err, "allowed_paths", "%s", list);
    return FDN_ECONFIG_FORBIDDEN;
}

/* Checks 2-3 (value security, updatable) of a path that passed check 1 (fdn__cfg_path_check,
 * which every caller runs first, before it even makes the value: running it again here cost
 * ~3 500 instructions an update). */
int fdn__cfg_precheck(fdn_config_t *cfg, const char *path, json_t *v, int32_t *out_idx,
                      fdn_error_t *err)
{
    FDN_ASSERT(fdn__cfg_path_check(path, NULL) == 0);
    int rc = fdn__cfg_value_check(v, err);
    if (rc != 0)
        return rc;
    int32_t idx = fdn__cfg_schema_find(cfg->schema, path, strlen(path));
    if (idx < 0 || !cfg->schema->e[idx].updatable)
        return forbidden(path, err);
    *out_idx = idx;
    return 0;
}

int fdn__cfg_parse_value(const char *path, const char *value_json, json_t **out, fdn_error_t *err)
{
    int rc = fdn__cfg_path_check(path, err);
    if (rc != 0)
        return rc;
    if (value_json == NULL)
        return fdn_err_set(err, FDN_EINVAL, "Configuration value is NULL");
    json_error_t jerr;
    bool oom = false;
    *out = fdn__json_loadb(value_json, strlen(value_json), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                           &jerr, &oom);
    if (oom) /* out of memory, not bad text */
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (*out == NULL)
        return fdn_err_set(err, FDN_EPARSE, "Configuration value is not valid JSON: %.120s",
                           jerr.text);
    return 0;
}

void fdn__cfg_retire(snap_t *old)
{
    if (old != NULL) {
        fdn__tsan_release(old);
        fdn__rcu_retire(&old->rcu, fdn__cfg_snap_retire_cb);
    }
}

/* Check 4 + publish; wmu held. */
int fdn__cfg_apply_locked(fdn_config_t *cfg, int32_t idx, json_t *v, snap_t **retired,
                          fdn_error_t *err) FDN_REQUIRES(cfg->wmu)
{
    return fdn__cfg_apply_at_locked(cfg, idx, v, cfg->cur->revision + 1, retired, err);
}

/* The apply hook refused an update of idx with rc (why: its error): marked for
 * fdn__cfg_take_refusal, err filled; returns rc. */
static int hook_refused(fdn_config_t *cfg, int32_t idx, int rc, fdn_error_t *why, fdn_error_t *err)
    FDN_REQUIRES(cfg->wmu)
{
    if (why->code != rc)
        fdn_err_set(why, rc, "Configuration path %.200s: the new value was refused",
                    cfg->schema->e[idx].path);
    cfg->refusal = *why;
    cfg->refused = true;
    if (err != NULL)
        *err = *why;
    return rc;
}

/* Check 4 on ns, made from base by replacing leaf idx: the whole tree, or only what the change
 * can affect when base passed (snap_t.valid; same answer, ~7 000 fewer instructions an update
 * with the built-in keys). */
static int validate_snap(const fdn_config_t *cfg, const snap_t *base, snap_t *ns, int32_t idx,
                         fdn_error_t *err)
{
    int rc = base->valid ? fdn__cfg_validate_change(cfg->schema, ns->vals, (size_t)idx, err)
                         : fdn__cfg_validate(cfg->schema, ns->vals, NULL, err);
    ns->valid = rc == 0;
    return rc;
}

int fdn__cfg_apply_at_locked(fdn_config_t *cfg, int32_t idx, json_t *v, uint64_t revision,
                             snap_t **retired, fdn_error_t *err) FDN_REQUIRES(cfg->wmu)
{
    FDN_ASSERT(cfg->running && idx >= 0);
    FDN_ASSERT(revision > cfg->cur->revision); /* revisions only grow */
    /* live == cur while running */
    FDN_ASSERT(atomic_load_explicit(&cfg->live, memory_order_relaxed) == cfg->cur);
    snap_t *cur = cfg->cur;
    cfg->refused = false;
    snap_t *ns = fdn__cfg_snap_new(cfg->schema, cur, NULL, idx, v);
    if (ns == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    int rc = validate_snap(cfg, cur, ns, idx, err);
    if (rc != 0) {
        fdn__cfg_snap_free(ns);
        return rc;
    }
    ns->revision = revision;
    if (cfg->apply_hook.apply != NULL) {
        /* the components the path drives take the value now, or refuse it: then nothing is
         * published, so the tree never holds a value the components do not run with */
        fdn_error_t why = FDN_ERROR_INIT;
        rc = cfg->apply_hook.apply(cur, ns, cfg->schema->e[idx].path, cfg->apply_hook.user, &why);
        if (rc != 0) {
            fdn__cfg_snap_free(ns);
            return hook_refused(cfg, idx, rc, &why, err);
        }
    }
    cfg->cur = ns;
    if (cfg->running)
        atomic_store_explicit(&cfg->live, ns, memory_order_release);
    fdn__cfg_latch_publish_leaf(cfg, ns, (size_t)idx); /* the latch held cur's leaves */
    atomic_fetch_add_explicit(&cfg->updates, 1, memory_order_relaxed);
    atomic_store_explicit(&cfg->last_update, fdn_clock_mono_ns(cfg->clock), memory_order_relaxed);
    fdn__cfg_notify(cfg, FDN_CONFIG_CHANGE_UPDATED, cfg->schema->e[idx].path, cur->vals[idx], v,
                    ns->revision);
    if (cfg->apply_hook.apply != NULL && cfg->apply_hook.published != NULL)
        cfg->apply_hook.published(cfg->apply_hook.user);
    *retired = cur;
    return 0;
}

/* Check 4, then the apply hook's check (the components would take the value: nothing pushed),
 * on a candidate snapshot, publishing nothing; wmu held. A refusal of the hook is marked as
 * fdn__cfg_apply_at_locked marks it (fdn__cfg_take_refusal). */
static int check_candidate(fdn_config_t *cfg, int32_t idx, json_t *v, fdn_error_t *err)
    FDN_REQUIRES(cfg->wmu)
{
    cfg->refused = false;
    snap_t *ns = fdn__cfg_snap_new(cfg->schema, cfg->cur, NULL, idx, v);
    if (ns == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    int rc = validate_snap(cfg, cfg->cur, ns, idx, err);
    if (rc == 0 && cfg->apply_hook.check != NULL) {
        fdn_error_t why = FDN_ERROR_INIT;
        rc = cfg->apply_hook.check(ns, cfg->schema->e[idx].path, cfg->apply_hook.user, &why);
        if (rc != 0)
            rc = hook_refused(cfg, idx, rc, &why, err);
    }
    fdn__cfg_snap_free(ns);
    return rc;
}

/* Takes ownership of v. */
static int update_value(fdn_config_t *cfg, const char *path, json_t *v, fdn_error_t *err)
{
    int32_t idx = -1;
    snap_t *old = NULL;
    int rc = fdn__cfg_precheck(cfg, path, v, &idx, err);
    void *remote = atomic_load_explicit(&cfg->remote, memory_order_acquire);
    fdn_error_t why;
    fdn__cfg_apply_hook_t hook;
    bool refused = false;
    if (rc == 0 && remote != NULL) {
        /* following etcd: the four checks and the components' (the apply hook's check, which
         * pushes nothing) here, so a value refused here never reaches etcd nor another
         * process; then the remote store orders the change and every process (this one
         * included) applies it from its watch. A compare-and-swap that fails or loses after
         * the check leaves nothing to undo: nothing was pushed nor published. */
        fdn__mutex_lock(&cfg->wmu);
        if (cfg->running) {
            rc = check_candidate(cfg, idx, v, err);
            refused = rc != 0 && fdn__cfg_take_refusal(cfg, &why, &hook);
        } else {
            rc = fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
        }
        fdn__mutex_unlock(&cfg->wmu);
        if (rc == 0)
            rc = cfg->remote_ops->update(remote, cfg->schema->e[idx].path, v, err);
        if (refused) {
            char *text = fdn__cfg_dump(v);
            fdn__cfg_report_refusal(&hook, cfg->schema->e[idx].path, text, &why);
            fdn__free(text);
        }
        json_decref(v);
        return rc;
    }
    if (rc == 0) {
        fdn__mutex_lock(&cfg->wmu);
        if (cfg->running) {
            rc = fdn__cfg_apply_locked(cfg, idx, v, &old, err);
            refused = rc != 0 && fdn__cfg_take_refusal(cfg, &why, &hook);
        } else {
            rc = fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
        }
        fdn__mutex_unlock(&cfg->wmu);
    }
    if (refused) {
        char *text = fdn__cfg_dump(v);
        fdn__cfg_report_refusal(&hook, cfg->schema->e[idx].path, text, &why);
        fdn__free(text);
    }
    json_decref(v);
    fdn__cfg_retire(old);
    return rc;
}

bool fdn__cfg_take_refusal(fdn_config_t *cfg, fdn_error_t *why, fdn__cfg_apply_hook_t *hook)
    FDN_REQUIRES(cfg->wmu)
{
    if (!cfg->refused)
        return false;
    cfg->refused = false;
    *why = cfg->refusal;
    *hook = cfg->apply_hook;
    return true;
}

void fdn__cfg_report_refusal(const fdn__cfg_apply_hook_t *hook, const char *path,
                             const char *value_json, const fdn_error_t *why)
{
    /* out of memory for the value's text: reported without it */
    if (hook->refused != NULL)
        hook->refused(path, value_json != NULL ? value_json : "null", why, hook->user);
}

void fdn__config_set_apply_hook(fdn_config_t *cfg, const fdn__cfg_apply_hook_t *hook)
{
    fdn__config_swap_apply_hook(cfg, hook, NULL);
}

void fdn__config_swap_apply_hook(fdn_config_t *cfg, const fdn__cfg_apply_hook_t *hook,
                                 fdn__cfg_apply_hook_t *prev)
{
    if (cfg == NULL)
        return;
    fdn__mutex_lock(&cfg->wmu);
    if (prev != NULL)
        *prev = cfg->apply_hook;
    if (hook != NULL)
        cfg->apply_hook = *hook;
    else
        memset(&cfg->apply_hook, 0, sizeof(cfg->apply_hook));
    cfg->refused = false;
    fdn__mutex_unlock(&cfg->wmu);
}

int fdn__cfg_apply_remote(fdn_config_t *cfg, const char *path, const json_t *v, uint64_t revision,
                          fdn_error_t *err)
{
    int rc = fdn__cfg_path_check(path, err);
    if (rc != 0)
        return rc;
    int32_t idx = fdn__cfg_schema_find(cfg->schema, path, strlen(path));
    if (idx < 0 || !cfg->schema->e[idx].updatable)
        return forbidden(path, err);
    rc = v != NULL ? fdn__cfg_value_check(v, err) : 0;
    if (rc != 0)
        return rc;
    snap_t *old = NULL;
    fdn_error_t why;
    fdn__cfg_apply_hook_t hook;
    bool refused = false;
    char *rtext = NULL;
    fdn__mutex_lock(&cfg->wmu);
    if (!cfg->running) {
        rc = fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
    } else {
        /* the remote revision when it is ahead of this service's (the usual case), else the
         * next one: a change is never skipped */
        uint64_t rev = revision > cfg->cur->revision ? revision : cfg->cur->revision + 1;
        json_t *nv = v != NULL ? (json_t *)v : cfg->startup[idx];
        rc = fdn__cfg_apply_at_locked(cfg, idx, nv, rev, &old, err);
        refused = rc != 0 && fdn__cfg_take_refusal(cfg, &why, &hook);
        if (refused) /* (the start-up values are shared: their text is taken under the lock) */
            rtext = fdn__cfg_dump(nv);
    }
    fdn__mutex_unlock(&cfg->wmu);
    if (refused)
        fdn__cfg_report_refusal(&hook, cfg->schema->e[idx].path, rtext, &why);
    fdn__free(rtext);
    fdn__cfg_retire(old);
    return rc;
}

int fdn__cfg_set_remote(fdn_config_t *cfg, void *remote, const fdn__cfg_remote_ops_t *ops)
{
    int rc = 0;
    fdn__mutex_lock(&cfg->wmu);
    if (atomic_load_explicit(&cfg->remote, memory_order_relaxed) != NULL) {
        rc = FDN_EBUSY;
    } else {
        cfg->remote_ops = ops;
        atomic_store_explicit(&cfg->remote, remote, memory_order_release);
    }
    fdn__mutex_unlock(&cfg->wmu);
    return rc;
}

void *fdn__cfg_remote(fdn_config_t *cfg)
{
    return atomic_load_explicit(&cfg->remote, memory_order_acquire);
}

static int update_json_impl(fdn_config_t *cfg, const char *path, const char *value_json,
                            fdn_error_t *err)
{
    json_t *v = NULL;
    if (cfg == NULL)
        return fdn_err_set(err, FDN_EINVAL, NULL);
    int rc = fdn__cfg_parse_value(path, value_json, &v, err);
    return rc != 0 ? rc : update_value(cfg, path, v, err);
}

static int update_new(fdn_config_t *cfg, const char *path, json_t *v, fdn_error_t *err)
{
    if (cfg == NULL || path == NULL) {
        json_decref(v);
        return fdn_err_set(err, FDN_EINVAL, NULL);
    }
    if (v == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    return update_value(cfg, path, v, err);
}

/* check 1 (path security) of a typed update, before anything about the value (0: passed, or
 * cfg or path NULL, which update_new refuses) */
static int typed_path_check(const fdn_config_t *cfg, const char *path, fdn_error_t *err)
{
    return cfg != NULL && path != NULL ? fdn__cfg_path_check(path, err) : 0;
}

static int update_int_impl(fdn_config_t *cfg, const char *path, int64_t v, fdn_error_t *err)
{
    int rc = typed_path_check(cfg, path, err);
    return rc != 0 ? rc : update_new(cfg, path, json_integer((json_int_t)v), err);
}

static int update_double_impl(fdn_config_t *cfg, const char *path, double v, fdn_error_t *err)
{
    int rc = typed_path_check(cfg, path, err);
    if (rc != 0)
        return rc;
    if (!isfinite(v))
        return fdn_err_set(err, FDN_EINVAL, "Configuration value must be finite");
    return update_new(cfg, path, json_real(v), err);
}

static int update_bool_impl(fdn_config_t *cfg, const char *path, bool v, fdn_error_t *err)
{
    int rc = typed_path_check(cfg, path, err);
    return rc != 0 ? rc : update_new(cfg, path, json_boolean(v), err);
}

static int update_string_impl(fdn_config_t *cfg, const char *path, const char *v, fdn_error_t *err)
{
    /* check 1 (path security) before anything about the value's encoding */
    int rc = typed_path_check(cfg, path, err);
    if (rc != 0)
        return rc;
    fdn__json_oom_clear();
    json_t *j = v != NULL ? json_string(v) : json_null();
    if (v != NULL && j == NULL && fdn__json_oom()) /* not bad UTF-8: out of memory */
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (v != NULL && j == NULL)
        return fdn_err_set(err, FDN_EVALUE_SECURITY,
                           "Configuration value contains potentially dangerous content");
    return update_new(cfg, path, j, err);
}

/* ---- the public update calls: each attempt reported (fdn__config_set_telemetry) ---- */

void fdn__config_set_telemetry(fdn_config_t *cfg, fdn_telemetry_t *tm)
{
    if (cfg != NULL)
        atomic_store_explicit(&cfg->tm, tm, memory_order_release);
}

/* The attempt's start, read only when there is a telemetry to report it to. */
static int64_t attempt_start(fdn_config_t *cfg, fdn_telemetry_t **tm)
{
    *tm = cfg != NULL ? atomic_load_explicit(&cfg->tm, memory_order_acquire) : NULL;
    return *tm != NULL ? fdn_clock_mono_ns(cfg->clock) : 0;
}

/* Emit foundation.config.update for an attempt that returned rc; returns rc. */
static int reported(fdn_config_t *cfg, fdn_telemetry_t *tm, const char *path, int64_t t0, int rc)
{
    if (tm == NULL)
        return rc;
    int32_t idx = path != NULL ? fdn__cfg_schema_find(cfg->schema, path, strlen(path)) : -1;
    fdn_telemetry_measure_t m = {"duration_ns", (double)(fdn_clock_mono_ns(cfg->clock) - t0)};
    fdn_telemetry_meta_t meta[2] = {{"path", idx >= 0 ? cfg->schema->e[idx].path : "other"},
                                    {"outcome", rc == 0 ? "applied" : fdn_err_name(rc)}};
    (void)fdn_telemetry_execute(tm, "foundation.config.update", &m, 1, meta, 2);
    return rc;
}

int fdn_config_update_json(fdn_config_t *cfg, const char *path, const char *value_json,
                           fdn_error_t *err)
{
    fdn_telemetry_t *tm;
    int64_t t0 = attempt_start(cfg, &tm);
    return reported(cfg, tm, path, t0, update_json_impl(cfg, path, value_json, err));
}

int fdn_config_update_int(fdn_config_t *cfg, const char *path, int64_t v, fdn_error_t *err)
{
    fdn_telemetry_t *tm;
    int64_t t0 = attempt_start(cfg, &tm);
    return reported(cfg, tm, path, t0, update_int_impl(cfg, path, v, err));
}

int fdn_config_update_double(fdn_config_t *cfg, const char *path, double v, fdn_error_t *err)
{
    fdn_telemetry_t *tm;
    int64_t t0 = attempt_start(cfg, &tm);
    return reported(cfg, tm, path, t0, update_double_impl(cfg, path, v, err));
}

int fdn_config_update_bool(fdn_config_t *cfg, const char *path, bool v, fdn_error_t *err)
{
    fdn_telemetry_t *tm;
    int64_t t0 = attempt_start(cfg, &tm);
    return reported(cfg, tm, path, t0, update_bool_impl(cfg, path, v, err));
}

int fdn_config_update_string(fdn_config_t *cfg, const char *path, const char *v, fdn_error_t *err)
{
    fdn_telemetry_t *tm;
    int64_t t0 = attempt_start(cfg, &tm);
    return reported(cfg, tm, path, t0, update_string_impl(cfg, path, v, err));
}

/* Used by fdn_config_update_or_queue (config_fallback.c): while stopped, run all four checks
 * against the current config and hand the update to `queue` under wmu, so queued updates
 * keep their order with respect to start. Returns 1 when the service is running (caller
 * updates normally), 0 when queued, < 0 on error. */
int fdn__config_check_and_queue(fdn_config_t *cfg, const char *path, const char *value_json,
                                int (*queue)(void *ctx, const char *path, const char *json),
                                void *ctx, fdn_error_t *err)
{
    json_t *v = NULL;
    int32_t idx = -1;
    int rc = fdn__cfg_parse_value(path, value_json, &v, err);
    if (rc != 0)
        return rc;
    rc = fdn__cfg_precheck(cfg, path, v, &idx, err);
    if (rc == 0) {
        fdn__mutex_lock(&cfg->wmu);
        if (cfg->running) {
            rc = 1;
        } else {
            snap_t *trial = fdn__cfg_snap_new(cfg->schema, cfg->cur, NULL, idx, v);
            rc = trial == NULL ? fdn_err_set(err, FDN_ENOMEM, NULL)
                               : validate_snap(cfg, cfg->cur, trial, idx, err);
            if (trial != NULL)
                fdn__cfg_snap_free(trial);
            if (rc == 0) {
                rc = queue(ctx, path, value_json);
                if (rc != 0)
                    fdn_err_set(err, rc, "Pending update queue is full");
            }
        }
        fdn__mutex_unlock(&cfg->wmu);
    }
    json_decref(v);
    return rc;
}

/* The reference's reset is validated (§1.6): the tree a reset would publish (the defaults, or
 * the start-up values, which passed at create) must pass the whole-tree validation. A key with
 * no default (default_json NULL: its value must come from the file or the environment) makes
 * the defaults fail: the reset is refused with the validator's code, err naming the key, and
 * changes nothing. vals are immutable (cfg->defaults, cfg->startup): no lock needed. */
static int reset_check(const fdn_config_t *cfg, json_t *const *vals, fdn_error_t *err)
{
    size_t bad = 0;
    fdn_error_t tmp = FDN_ERROR_INIT;
    int rc = fdn__cfg_validate(cfg->schema, vals, &bad, &tmp);
    if (rc == 0)
        return 0;
    if (rc == FDN_ENOMEM)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    const char *what = vals == cfg->defaults ? "defaults" : "start-up values";
    fdn_err_set(err, rc, "Configuration reset refused: the %s do not pass validation: %s: %s", what,
                cfg->schema->e[bad].path, tmp.message);
    fdn_err_add_context(err, "path", "%s", cfg->schema->e[bad].path);
    fdn_err_add_context(err, "rule", "%s", tmp.message);
    return rc;
}

/* Replace the config with vals at revision (0 or not above the current one: the next), once
 * vals pass validation (reset_check: else refused, nothing changed). The apply hook pushes
 * the reset's settings before it is published (path NULL: all of them); a component's refusal
 * does not refuse the reset and is reported through the hook's apply_failed once wmu is
 * released (config_int.h). */
static int reset_at(fdn_config_t *cfg, json_t *const *vals, uint64_t revision, fdn_error_t *err)
{
    snap_t *old = NULL;
    int rc = reset_check(cfg, vals, err);
    fdn_error_t why = FDN_ERROR_INIT;
    int arc = 0;
    fdn__cfg_apply_hook_t hook = {0};
    uint64_t published = 0;
    if (rc != 0)
        return rc;
    fdn__mutex_lock(&cfg->wmu);
    if (!cfg->running) {
        rc = fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
    } else {
        FDN_ASSERT(atomic_load_explicit(&cfg->live, memory_order_relaxed) == cfg->cur);
        snap_t *ns = fdn__cfg_snap_new(cfg->schema, NULL, vals, -1, NULL);
        if (ns == NULL) {
            rc = fdn_err_set(err, FDN_ENOMEM, NULL);
        } else {
            ns->revision = revision > cfg->cur->revision ? revision : cfg->cur->revision + 1;
            ns->valid = true; /* reset_check */
            hook = cfg->apply_hook;
            if (hook.apply != NULL)
                arc = hook.apply(cfg->cur, ns, NULL, hook.user, &why);
            old = cfg->cur;
            cfg->cur = ns;
            atomic_store_explicit(&cfg->live, ns, memory_order_release);
            fdn__cfg_latch_publish(cfg, ns);
            atomic_fetch_add_explicit(&cfg->resets, 1, memory_order_relaxed);
            bool oom;
            json_t *tree = fdn__cfg_build_tree(cfg->schema, ns->vals, "", &oom);
            /* tree NULL (out of memory): the notification is counted as dropped */
            fdn__cfg_notify(cfg, FDN_CONFIG_CHANGE_RESET, "", NULL, tree, ns->revision);
            json_decref(tree);
            if (hook.apply != NULL && hook.published != NULL)
                hook.published(hook.user);
            published = ns->revision;
        }
    }
    fdn__mutex_unlock(&cfg->wmu);
    fdn__cfg_retire(old);
    if (arc != 0 && hook.apply_failed != NULL) {
        if (why.code == 0) /* (a hook that did not fill err) */
            fdn_err_set(&why, arc, NULL);
        hook.apply_failed(published, &why, hook.user);
    }
    return rc;
}

static int reset_to(fdn_config_t *cfg, json_t *const *vals, fdn_error_t *err)
{
    if (cfg == NULL)
        return fdn_err_set(err, FDN_EINVAL, NULL);
    void *remote = atomic_load_explicit(&cfg->remote, memory_order_acquire);
    if (remote != NULL && cfg->remote_ops->reset != NULL) {
        /* a reset that does not validate here is not written to etcd (reset_at, when the
         * marker comes back, checks again: a reset another tool writes) */
        int rc = reset_check(cfg, vals, err);
        if (rc != 0)
            return rc;
        /* following etcd: the remote store orders the reset and every process (this one
         * included) applies it from its watch */
        fdn__mutex_lock(&cfg->wmu);
        bool running = cfg->running;
        fdn__mutex_unlock(&cfg->wmu);
        if (!running)
            return fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
        return cfg->remote_ops->reset(remote, vals == cfg->startup, err);
    }
    return reset_at(cfg, vals, 0, err);
}

void fdn__cfg_report_remote_refused(fdn_config_t *cfg, const char *path, int rc)
{
    fdn_telemetry_t *tm = atomic_load_explicit(&cfg->tm, memory_order_acquire);
    if (tm == NULL)
        return;
    int32_t idx = path != NULL ? fdn__cfg_schema_find(cfg->schema, path, strlen(path)) : -1;
    fdn_telemetry_measure_t m = {"count", 1.0};
    fdn_telemetry_meta_t meta[2] = {{"path", idx >= 0 ? cfg->schema->e[idx].path : "other"},
                                    {"reason", fdn_err_name(rc)}};
    (void)fdn_telemetry_execute(tm, "foundation.config.remote_refused", &m, 1, meta, 2);
}

int fdn__cfg_reset_remote(fdn_config_t *cfg, bool to_startup, uint64_t revision, fdn_error_t *err)
{
    return reset_at(cfg, to_startup ? cfg->startup : cfg->defaults, revision, err);
}

int fdn_config_reset(fdn_config_t *cfg, fdn_error_t *err)
{
    return reset_to(cfg, cfg != NULL ? cfg->defaults : NULL, err);
}

int fdn_config_reset_to_startup(fdn_config_t *cfg, fdn_error_t *err)
{
    return reset_to(cfg, cfg != NULL ? cfg->startup : NULL, err);
}

/* The updates queued while stopped (fdn_config_update_or_queue), for a config following a
 * remote store: each goes through it as a local update does (update_value: the checks and the
 * apply hook's check here, then the remote store's update, which returns once the watch has
 * applied it here), so the fleet gets it and this process has it at the store's revision.
 * Called by the start once the service runs, without wmu (the watch that applies the change
 * takes it). A failure (a check, the hook's check, the store) is counted in pending_failed, not
 * reported through the hook's `refused`, as at a local start. */
void fdn__cfg_send_pending(fdn_config_t *cfg) FDN_EXCLUDES(cfg->wmu)
{
    void *remote = atomic_load_explicit(&cfg->remote, memory_order_acquire);
    char *path, *json;
    FDN_ASSERT(remote != NULL);
    while (fdn__cfg_fb_pop_pending(cfg->fb, &path, &json)) {
        json_t *v = NULL;
        int32_t idx = -1;
        int rc = fdn__cfg_parse_value(path, json, &v, NULL);
        if (rc == 0)
            rc = fdn__cfg_precheck(cfg, path, v, &idx, NULL);
        if (rc == 0) {
            fdn__mutex_lock(&cfg->wmu);
            rc = cfg->running ? check_candidate(cfg, idx, v, NULL) : FDN_EUNAVAILABLE;
            cfg->refused = false; /* counted, not reported */
            fdn__mutex_unlock(&cfg->wmu);
        }
        if (rc == 0)
            rc = cfg->remote_ops->update(remote, cfg->schema->e[idx].path, v, NULL);
        if (rc != 0)
            fdn__cfg_fb_count_failed(cfg->fb);
        json_decref(v);
        fdn__free(path);
        fdn__free(json);
    }
}

int fdn__config_overrides(fdn_config_t *cfg, json_t **out)
{
    *out = json_object();
    if (*out == NULL)
        return FDN_ENOMEM;
    int rc = 0;
    fdn__mutex_lock(&cfg->wmu);
    for (size_t i = 0; i < cfg->schema->n && rc == 0; i++) {
        const fdn__cfg_entry_t *e = &cfg->schema->e[i];
        json_t *v = cfg->cur->vals[i];
        if (!e->updatable || v == NULL || json_equal(v, cfg->startup[i]))
            continue;
        json_t *copy = json_deep_copy(v);
        if (copy == NULL || json_object_set_new(*out, e->path, copy) != 0)
            rc = FDN_ENOMEM;
    }
    fdn__mutex_unlock(&cfg->wmu);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
