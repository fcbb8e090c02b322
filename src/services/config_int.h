/* Private interface of the config service for the runtime/supervisor. */
#ifndef FDN_SERVICES_CONFIG_INT_H
#define FDN_SERVICES_CONFIG_INT_H

#include "core/supervisor_int.h"

#include "fdn/config.h"

/* The service's supervisor vtable, defined in config.c, and typed wrappers (see
 * core/supervisor_int.h):
 * - start: publish the retained snapshot (run-time updates survive a restart), start the
 *   delivery thread, then apply queued updates in order (under the writer lock, before any
 *   other update; for a config following etcd, through etcd as local updates, after wmu is
 *   released: start returns once each is applied here or failed, each bounded by the
 *   follower's request timeout). Idempotent. Returns 0, FDN_ENOMEM, FDN_EAGAIN (thread
 *   creation failed).
 * - stop: unpublish the snapshot (public calls answer FDN_EUNAVAILABLE at once) and join the
 *   delivery thread (waits for a callback in progress). Queued notifications are kept and
 *   delivered after the next start. Idempotent.
 * - health: 0 when running, FDN_EUNAVAILABLE otherwise. */
FDN__SERVICE_TYPED_OPS(config, fdn_config_t)

/* Wait until the on_change hook has handled every notification queued so far (the runtime
 * calls it before stopping its services, so the config_updated events of the last updates
 * are recorded). timeout_ms < 0 waits without a limit.
 * @return 0, FDN_ETIMEDOUT after timeout_ms (real time, CLOCK_MONOTONIC), FDN_EINVAL */
int fdn__config_hook_drain(fdn_config_t *cfg, int64_t timeout_ms);

/* The on_change hook stopped for good (the runtime's shutdown, once the service is stopped):
 * discard the notifications still queued for it and count them, plus `also` (changes the hook
 * had taken but not recorded: the runtime's open burst), as dropped (fdn_config_status_t
 * .dropped). Does nothing to the queue while the hook thread runs. Returns the number counted. */
uint64_t fdn__config_hook_discard(fdn_config_t *cfg, uint64_t also);

/* Set (or clear with NULL) the telemetry the service reports update attempts into, at any
 * time (the runtime creates the config service before its telemetry). Each fdn_config_update_*
 * call then emits foundation.config.update {duration_ns} {path, outcome}: `outcome` is
 * "applied" or the error's name (fdn_err_name), `path` the schema path, or "other" for a
 * path the schema does not have (so the label stays bounded). */
struct fdn_telemetry;
void fdn__config_set_telemetry(fdn_config_t *cfg, struct fdn_telemetry *tm);

/* The components' say on an update (the runtime's, src/runtime/runtime_services.c). Set with
 * fdn__config_set_apply_hook, read under wmu.
 * - apply: called for every update of one path (local, from the remote store, or queued while
 *   stopped) with wmu held, after the whole-tree validation and before the new snapshot `next`
 *   is published: it pushes the settings `path` drives, as `next` has them, into the
 *   components. 0: the update is published. Non-zero: a component refused the value; the
 *   update fails with that code (err filled, naming the component), nothing is published
 *   or notified, and apply has put the components back as `cur` has them. It runs under the
 *   writer lock: it must not block, call the config's write side, or run user callbacks.
 *   A reset (local or from the remote store) whose tree passes validation (a reset that does
 *   not is refused before the hook is asked) calls it too, with path NULL, before its
 *   snapshot is published: every setting is pushed as `next` has it, so the reset is in force
 *   when it returns, as an update is. A reset is not refused (it is the way back to known
 *   values, and one from the remote store is already every process's): a component that
 *   refuses its setting keeps the one it had, the others take theirs, and apply returns the
 *   first refusal (err filled); the reset is published whatever apply returns, and the
 *   refusal reported through `apply_failed`.
 * - published: after an apply that returned 0, or a reset's apply whatever it returned, once
 *   `next` is published (wmu still held): the end of what apply began (the runtime releases
 *   there the lock that orders its pushes). Must not block or call out. Optional.
 * - refused: after such a refusal, once wmu is released, in the updater's thread (for a
 *   change from the remote store, the follower's thread; not for updates queued while stopped,
 *   counted in fdn_config_status_t.pending_failed): report it (event, telemetry). value_json
 *   is the refused value. Optional.
 * - check: an update of a config that follows a remote store (etcd), with wmu held, after the
 *   whole-tree validation and before the value is written to the remote store: whether the
 *   components would take the settings `path` drives as `next` has them, pushing nothing (no
 *   component changes, whatever the write then does). Non-zero: the update fails with that
 *   code (err filled), is not written, and is reported through `refused` as apply's refusal.
 *   When the remote store's change comes back through the watch, `apply` pushes it as any
 *   change. Same rules as apply (no blocking, no config call, no user callback). Optional.
 * - apply_failed: after a reset's apply returned non-zero, once the reset (at `revision`) is
 *   published and wmu released, in the resetter's thread (a reset from the remote store: the
 *   follower's): report that the tree has the reset's values and a component kept its
 *   setting (`why`: apply's error). Optional.
 * All run with `user`. */
typedef struct fdn__cfg_apply_hook {
    int (*apply)(const fdn_config_snapshot_t *cur, const fdn_config_snapshot_t *next,
                 const char *path, void *user, fdn_error_t *err);
    void (*published)(void *user);
    void (*refused)(const char *path, const char *value_json, const fdn_error_t *why, void *user);
    int (*check)(const fdn_config_snapshot_t *next, const char *path, void *user, fdn_error_t *err);
    void (*apply_failed)(uint64_t revision, const fdn_error_t *why, void *user);
    void *user;
} fdn__cfg_apply_hook_t;

/* Install (hook non-NULL, copied) or remove (NULL) the apply hook. Takes wmu, so on return no
 * apply of the previous hook runs; a `refused` or `apply_failed` of it may still be running in
 * an updater's thread (its user must outlive the config's other callers: the runtime removes
 * it at destroy). */
void fdn__config_set_apply_hook(fdn_config_t *cfg, const fdn__cfg_apply_hook_t *hook);

/* fdn__config_set_apply_hook that also copies the hook it replaces into *prev (zeroed when
 * there was none), in one hold of wmu: a hook that wraps the installed one (the tests'
 * tests/support/refusing_hook.c) takes it without a window for another install. */
void fdn__config_swap_apply_hook(fdn_config_t *cfg, const fdn__cfg_apply_hook_t *hook,
                                 fdn__cfg_apply_hook_t *prev);

/* ==== Internal to the config module (config.c, config_update.c, config_fallback.c) ==== */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <urcu-bp.h>
#include "core/alloc.h"
#include "core/lock.h"
#include "validation/config_schema.h"

typedef struct fdn__cfg_fb fdn__cfg_fb_t;

/* The environment layer of the startup config (config.c): each "FDN_A__B=value" of envp
 * whose name maps to a key of s replaces vals[key] with value parsed as the key's type, and
 * sets marks[key] = 2 and env_src[key] = the entry. Names outside the schema's sections are
 * skipped. Returns 0, FDN_ECONFIG_STRUCTURE (unknown key in one of our sections),
 * FDN_ECONFIG_INVALID (value not of the key's type), FDN_ENOMEM; err names the variable.
 * Not static so that fuzz/fuzz_config_env.c can run the loader's layers without a service. */
int fdn__cfg_apply_env(const fdn__cfg_schema_t *s, json_t **vals, uint8_t *marks,
                       const char **env_src, const char *const *envp, fdn_error_t *err);

/* A remote store the config follows (services/config_etcd.c): update writes a checked value
 * there and returns once it is applied here; reset writes a reset (to the start-up values when
 * to_startup, else to the defaults) there and returns once it is applied here; destroy stops
 * the follower (before the service stops). */
typedef struct fdn__cfg_remote_ops {
    int (*update)(void *remote, const char *path, const json_t *v, fdn_error_t *err);
    void (*destroy)(void *remote);
    int (*reset)(void *remote, bool to_startup, fdn_error_t *err);
} fdn__cfg_remote_ops_t;

enum { LK_NULL, LK_BOOL, LK_INT, LK_REAL, LK_OTHER };

typedef struct leaf {
    int64_t i;
    double d;
    int kind;
} leaf_t;

/* One value of the tree, shared by every snapshot that holds it unchanged: a snapshot made
 * by an update shares all but the updated value with its predecessor. The jansson value is
 * private to its box: only the box's creator (a deep copy) and the thread dropping the last
 * box reference touch its jansson reference count (jansson's incref/decref read the count
 * non-atomically before their atomic update, so sharing one value's count between threads
 * would race). */
typedef struct cfg_box {
    atomic_long refs;
    json_t *v;
} cfg_box_t;

struct fdn_config_snapshot {
    struct rcu_head rcu;
    atomic_long refs;
    uint64_t revision;
    const fdn__cfg_schema_t *schema;
    size_t n;
    json_t **vals; /* vals[i] == box[i]->v, read by the hot paths without a hop */
    leaf_t *leaves;
    cfg_box_t **box;
    /* the tree passed fdn__cfg_validate, or fdn__cfg_validate_change from a valid base: an
     * update made from it checks only the leaves it can affect (fdn__cfg_validate_change) */
    bool valid;
};
typedef struct fdn_config_snapshot snap_t;

typedef struct note {
    atomic_int refs;
    fdn_config_change_kind_t kind;
    uint64_t revision;
    char *path;
    char *old_json;
    char *new_json;
} note_t;

typedef struct sub {
    struct sub *next;
    uint64_t id;
    char *prefix;
    size_t plen;
    fdn_config_change_cb cb;
    void *user;
    note_t **q;
    size_t cap, head, count;
    uint64_t dropped_pending;
    uint64_t served;
    bool busy, removed, free_when_idle;
} sub_t;

/* Scalar leaves for resolved-key and dotted-path reads, published through a latch
 * (two copies; readers use copy seq & 1 and retry only if seq moved while they read, so a
 * preempted writer never blocks them). kind is an LK_* value; bits holds the int64, the
 * double's bits, or the bool. Each copy also names the snapshot its leaves are of
 * (fdn_config.latch_snap), and every snapshot read takes its snapshot there: the latch's
 * sequence is the one publication point of a change for every read. */
typedef struct latch_leaf {
    _Atomic uint32_t kind;
    _Atomic uint64_t bits;
} latch_leaf_t;

struct fdn_config {
    /* read-mostly line: the published snapshot, the latch sequence, the leaf copies and the
     * snapshot each copy belongs to */
    _Atomic(snap_t *) live; /* NULL while stopped; readers take the snapshot from the latch */
    _Atomic uint64_t latch_seq;
    latch_leaf_t *latch[2];
    _Atomic(snap_t *) latch_snap[2];
    size_t nleaves;
    char pad_[FDN_CACHELINE - 5 * sizeof(void *) - sizeof(uint64_t) - sizeof(size_t)];
    fdn__cfg_schema_t *schema;
    fdn_clock_t *clock;

    fdn__mutex_t wmu;
    snap_t *cur;
    fdn__cfg_apply_hook_t apply_hook; /* under wmu (fdn__config_set_apply_hook) */
    bool refused;                     /* under wmu: the last apply_at_locked (or check of an
                                         update following etcd) was refused by the apply hook,
                                         why in `refusal` (fdn__cfg_take_refusal, right after
                                         that call; the start's pending updates clear it) */
    fdn_error_t refusal;
    json_t **defaults;
    json_t **startup;
    bool running;
    int64_t started_ns;
    atomic_uint_least64_t updates, resets;
    atomic_int_least64_t last_update;

    fdn__mutex_t smu;
    pthread_cond_t scv;
    pthread_cond_t idle_cv;
    sub_t *subs;
    sub_t *hook;
    size_t nsubs;
    uint64_t next_id;
    uint64_t serve_seq;
    size_t sub_cap;
    pthread_t thr;      /* delivery to subscribers */
    pthread_t hook_thr; /* delivery to the runtime hook (its own thread: a slow hook, e.g. an
                           fsync of the event it records, never delays subscribers) */
    bool thr_running;
    bool hook_thr_running;
    bool thr_stop;
    atomic_uint_least64_t dropped;

    fdn__cfg_fb_t *fb;

    _Atomic(struct fdn_telemetry *) tm; /* fdn__config_set_telemetry */

    /* fdn_config_follow_etcd: set once under wmu, read by updaters (acquire) */
    _Atomic(void *) remote;
    const fdn__cfg_remote_ops_t *remote_ops;
};

/* A new snapshot (one reference): the values of `base` (sharing them), or copies of vals[]
 * when base is NULL; in both cases value `replace` (>= 0) is a copy of `with` instead.
 * NULL when out of memory. */
snap_t *fdn__cfg_snap_new(const fdn__cfg_schema_t *schema, const snap_t *base,
                          json_t *const *vals, long replace, const json_t *with);
void fdn__cfg_snap_free(snap_t *s);
void fdn__cfg_snap_unref(const snap_t *s);
void fdn__cfg_snap_retire_cb(struct rcu_head *h);
void fdn__cfg_retire(snap_t *old);
/* Copy the scalar leaves of s into the latch (wmu held, or during create). */
void fdn__cfg_latch_publish(fdn_config_t *cfg, const snap_t *s);
/* As fdn__cfg_latch_publish for s made from the published snapshot (`cur`, whose leaves both
 * latch copies hold) by replacing leaf idx: only that leaf is rewritten (wmu held). */
void fdn__cfg_latch_publish_leaf(fdn_config_t *cfg, const snap_t *s, size_t idx);
char *fdn__cfg_dump(const json_t *v);
/* wmu held (so queues stay in revision order); takes smu. newv NULL (the caller could not make
 * it: out of memory): no notification, counted as dropped when anyone listens. */
void fdn__cfg_notify(fdn_config_t *cfg, fdn_config_change_kind_t kind, const char *path,
                     const json_t *oldv, const json_t *newv, uint64_t rev) FDN_REQUIRES(cfg->wmu)
    FDN_EXCLUDES(cfg->smu);
sub_t *fdn__cfg_sub_new(const char *prefix, fdn_config_change_cb cb, void *user, size_t cap);
void fdn__cfg_sub_free(sub_t *s);
void *fdn__cfg_delivery_main(void *arg);
void *fdn__cfg_hook_main(void *arg);
/* True when called on cfg's delivery thread (from a subscriber's callback) or its hook thread
 * (from the on_change hook, or a telemetry handler the hook's counts run): cfg's stop joins
 * the caller. (The runtime: a shutdown or an add from there must not wait for that stop.) */
bool fdn__config_on_own_thread(const fdn_config_t *cfg);
/* The run-time overrides: an object of every updatable key whose live value differs from its
 * startup value (defaults < file < environment), path -> value (copies). The runtime keeps
 * them in its data directory so that they survive a restart. Returns 0 or FDN_ENOMEM. */
int fdn__config_overrides(fdn_config_t *cfg, json_t **out);
int fdn__cfg_parse_value(const char *path, const char *value_json, json_t **out, fdn_error_t *err);
/* Checks 2-3 (value security, updatable) of an update whose path passed check 1 (every caller
 * runs fdn__cfg_path_check, or fdn__cfg_parse_value which does, first): idx of the path. */
int fdn__cfg_precheck(fdn_config_t *cfg, const char *path, json_t *v, int32_t *out_idx,
                      fdn_error_t *err);
int fdn__cfg_apply_locked(fdn_config_t *cfg, int32_t idx, json_t *v, snap_t **retired,
                          fdn_error_t *err) FDN_REQUIRES(cfg->wmu);
/* As fdn__cfg_apply_locked, with the new snapshot's revision given (> the current one). */
int fdn__cfg_apply_at_locked(fdn_config_t *cfg, int32_t idx, json_t *v, uint64_t revision,
                             snap_t **retired, fdn_error_t *err) FDN_REQUIRES(cfg->wmu);
/* wmu held: whether the last fdn__cfg_apply_at_locked failed because the apply hook refused
 * it; if so copies the hook's (the hook itself too, into *hook) and clears the mark. */
bool fdn__cfg_take_refusal(fdn_config_t *cfg, fdn_error_t *why, fdn__cfg_apply_hook_t *hook)
    FDN_REQUIRES(cfg->wmu);
/* Report a refusal taken with fdn__cfg_take_refusal (no lock held): the hook's `refused`. */
void fdn__cfg_report_refusal(const fdn__cfg_apply_hook_t *hook, const char *path,
                             const char *value_json, const fdn_error_t *why);
/* Apply a change read from the remote store at `revision`: the path, value and
 * updatable-path checks, then validation and publish as a local update (the new snapshot's
 * revision is `revision`, or the next local one if that is not above it). v NULL: back to the
 * start-up value. Takes no ownership of v. Returns 0 or the refusal (err filled). */
int fdn__cfg_apply_remote(fdn_config_t *cfg, const char *path, const json_t *v, uint64_t revision,
                          fdn_error_t *err);
/* Apply a reset read from the remote store at `revision` (to the start-up values when
 * to_startup, else to the defaults), as fdn_config_reset does locally. 0, FDN_EUNAVAILABLE
 * (stopped), FDN_ENOMEM, the validator's code (the tree does not validate: refused, nothing
 * changed). */
int fdn__cfg_reset_remote(fdn_config_t *cfg, bool to_startup, uint64_t revision, fdn_error_t *err);
/* Report a change from the remote store refused here (rc: why) as the telemetry event
 * foundation.config.remote_refused {count 1} {path (schema path or "other"), reason}. */
void fdn__cfg_report_remote_refused(fdn_config_t *cfg, const char *path, int rc);
/* Attach the remote store (once). 0 or FDN_EBUSY. */
int fdn__cfg_set_remote(fdn_config_t *cfg, void *remote, const fdn__cfg_remote_ops_t *ops);
void *fdn__cfg_remote(fdn_config_t *cfg);
/* Send the updates queued while stopped through the remote store (a config following one),
 * in order, each returning once applied here; failures counted in pending_failed. Called by
 * the start, without wmu, once the service runs. */
void fdn__cfg_send_pending(fdn_config_t *cfg) FDN_EXCLUDES(cfg->wmu);
int fdn__config_check_and_queue(fdn_config_t *cfg, const char *path, const char *value_json,
                                int (*queue)(void *ctx, const char *path, const char *json),
                                void *ctx, fdn_error_t *err);

/* Fallback cache + pending-update queue (config_fallback.c); own mutex fmu, a leaf lock
 * taken after wmu when both are held. */
fdn__cfg_fb_t *fdn__cfg_fb_create(int64_t ttl_ms, size_t max_entries, size_t pending_max);
void fdn__cfg_fb_destroy(fdn__cfg_fb_t *fb);
/* Pop the oldest pending update (caller frees both strings with fdn__free). */
bool fdn__cfg_fb_pop_pending(fdn__cfg_fb_t *fb, char **path, char **json);
void fdn__cfg_fb_count_failed(fdn__cfg_fb_t *fb);
void fdn__cfg_fb_counts(fdn__cfg_fb_t *fb, size_t *cached, size_t *pending, uint64_t *failed);

#endif
