/*
 * DESIGN: config service (reference §1.2-§1.8, "Configuration Update Flow").
 *
 * Snapshots. The configuration lives in an immutable snapshot: one json_t value per schema
 * leaf (private deep copies: jansson reference counts are never shared between threads),
 * a cache of scalar leaves, and a revision number. `live` is an atomic pointer to the
 * published snapshot (NULL while the service is stopped). Readers enter an urcu-bp
 * read-side section, load `live` (acquire), read, and leave: no lock, no shared write, so
 * they never wait for a writer and never see a half-applied update. A writer builds a new
 * snapshot (copy of the leaf array with one leaf replaced), validates the whole tree (only
 * the leaves the change can affect when the base snapshot passed: snap_t.valid, the same
 * answer), publishes it (release store) and hands the old one to call_rcu, which drops the
 * publication reference after a grace period. fdn_config_acquire takes an extra counted
 * reference inside the read section so a caller may keep a snapshot across grace periods.
 *
 * Scalar fast path. Resolved-key reads and dotted-path reads of scalar leaves do not enter
 * RCU: the writer also copies every scalar leaf (kind + 64-bit payload) into a two-copy
 * latch (seqcount latch: bump seq, rewrite the copy readers just left, bump again, rewrite
 * the other). Both copies hold `cur`'s leaves after every publish (each publish is of the new
 * `cur`, under wmu), so an update rewrites only the leaf it changed. A reader loads seq, reads copy
 * seq & 1 with relaxed atomics and retries only if seq moved meanwhile; it writes nothing shared
 * (so it scales with threads) and a writer preempted mid-copy never blocks it. One leaf read is
 * atomic; several leaves that must agree are read from one snapshot (fdn_config_acquire).
 *
 * One publication point. Each latch copy also names the snapshot its leaves are of
 * (latch_snap), and the snapshot reads (get_json, get_string, acquire, revision, ...) take the
 * snapshot there too, seq-checked as a leaf, inside their RCU section; `live` only says
 * whether the service runs. So a change becomes visible to every kind of read at one instant,
 * the latch's second sequence bump, and a thread's reads never go back: after a snapshot read
 * that shows a change, a scalar read shows it too, and the other way round. (Before, `live`
 * was published before the latch was rewritten, so a revision or get_json could show a change
 * and a get_int right after it the old value.) The snapshot reads pay a sequence check (two
 * loads of latch_seq) more; the scalar reads nothing.
 *
 * Threads. Callers (any number) read and update. One delivery thread per service, started
 * by fdn__config_service_start and joined by fdn__config_service_stop/destroy, runs the
 * subscriber callbacks and the on_change hook.
 *
 * Locks and order: wmu (writer: serialises updates, resets, start/stop and the snapshot
 * `cur`) -> smu (subscriber lists and queues) ; wmu -> fmu (fallback cache and pending
 * queue). smu and fmu are never held together. No callback runs under any lock: the
 * delivery thread pops a notification under smu, releases it, then calls back.
 *
 * Delivery model. Each subscriber (and the on_change hook) owns a bounded FIFO of
 * notifications. An update enqueues under wmu+smu (so every queue is in revision order)
 * and signals the delivery thread; it never waits for a subscriber. A full queue drops its
 * oldest notification and counts it; before the subscriber's next notification it receives
 * one FDN_CONFIG_CHANGE_OVERFLOW carrying the count. The delivery thread serves the
 * subscriber with work that was served least recently, one notification at a time. A slow
 * callback delays other subscribers' delivery, never an updater.
 *
 * Invariants: `cur` is the newest snapshot and holds one reference; `live` == `cur` while
 * running, NULL while stopped; both latch copies hold `cur`'s leaves and latch_snap == `cur`
 * outside a publish; revisions increase by one per successful update or reset;
 * a failed update changes nothing and notifies nobody.
 */
#include "services/config_int.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-bp.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"
#include "core/rcu.h"
#include "core/tsan.h"
#include "logic/config_path.h"
#include "validation/config_schema.h"

extern char **environ;

/* Under TSan the read side "releases" this process-wide token when it leaves a read-side
 * section and the deferred free "acquires" it (core/tsan.h). Without this every retired
 * snapshot is a (suppressed, slow) report. */
static char tsan_grace;

/* ---- snapshots ----------------------------------------------------------------------- */

static void leaf_fill(leaf_t *l, const json_t *v)
{
    l->i = 0;
    l->d = 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
        l->kind = LK_NULL;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        l->kind = LK_BOOL;
        l->i = json_is_true(v);
        break;
    case JSON_INTEGER:
        l->kind = LK_INT;
        l->i = (int64_t)json_integer_value(v);
        l->d = (double)l->i;
        break;
    case JSON_REAL:
        l->kind = LK_REAL;
        l->d = json_real_value(v);
        break;
    default:
        l->kind = LK_OTHER;
        break;
    }
}

static cfg_box_t *box_new(const json_t *v)
{
    cfg_box_t *b = fdn__malloc(sizeof(*b));
    if (b == NULL)
        return NULL;
    /* json_deep_copy takes a non-const pointer but does not change its argument */
    b->v = json_deep_copy((json_t *)(uintptr_t)v);
    if (b->v == NULL) {
        fdn__free(b);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    return b;
}

static void box_unref(cfg_box_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(b->v);
        fdn__free(b);
    }
}

void fdn__cfg_snap_free(snap_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        box_unref(s->box[i]);
    fdn__free(s);
}

void fdn__cfg_snap_unref(const snap_t *cs)
{
    snap_t *s = (snap_t *)(uintptr_t)cs;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        fdn__cfg_snap_free(s);
}

void fdn__cfg_snap_retire_cb(struct rcu_head *h)
{
    snap_t *s = (snap_t *)(void *)h; /* rcu is the first member */
    fdn__tsan_acquire(&tsan_grace);
    fdn__tsan_acquire(s);
    fdn__cfg_snap_unref(s);
    fdn__rcu_done();
}

snap_t *fdn__cfg_snap_new(const fdn__cfg_schema_t *schema, const snap_t *base,
                          json_t *const *vals, long replace, const json_t *with)
{
    size_t n = schema->n;
    FDN_ASSERT(base == NULL || base->n == n);
    /* the arrays are all written below (box[0..i) before a failure frees them): only the
     * header is cleared, not the ~3 KB of arrays of the built-in schema an update makes */
    snap_t *s =
        fdn__malloc(sizeof(*s) + n * (sizeof(json_t *) + sizeof(leaf_t) + sizeof(cfg_box_t *)));
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->schema = schema;
    s->n = n;
    s->leaves = (leaf_t *)(void *)(s + 1);
    s->vals = (json_t **)(void *)(s->leaves + n);
    s->box = (cfg_box_t **)(void *)(s->vals + n);
    for (size_t i = 0; i < n; i++) {
        cfg_box_t *b;
        if (base != NULL && (long)i != replace) {
            b = base->box[i];
            atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
            s->leaves[i] = base->leaves[i];
        } else {
            b = box_new((long)i == replace ? with : vals[i]);
            if (b == NULL) {
                s->n = i;
                fdn__cfg_snap_free(s);
                return NULL;
            }
            leaf_fill(&s->leaves[i], b->v);
        }
        s->box[i] = b;
        s->vals[i] = b->v;
    }
    atomic_init(&s->refs, 1);
    return s;
}

/* Enter a read-side section and take the published snapshot (NULL while stopped) from the
 * latch, as the scalar reads take their leaves (key_leaf): a change is published for every
 * read at one point, the latch's sequence bump, so a thread's reads never go back (a
 * snapshot read, then a scalar read of the same leaf, or the other way round). */
static inline snap_t *read_lock(fdn_config_t *cfg)
{
    rcu_read_lock();
    if (atomic_load_explicit(&cfg->live, memory_order_acquire) == NULL)
        return NULL;
    for (;;) {
        uint64_t seq = atomic_load_explicit(&cfg->latch_seq, memory_order_acquire);
        snap_t *s = atomic_load_explicit(&cfg->latch_snap[seq & 1], memory_order_acquire);
        FDN_SEQ_FENCE(memory_order_acquire);
        if (FDN_LIKELY(atomic_load_explicit(&cfg->latch_seq, memory_order_relaxed) == seq))
            return s;
    }
}

static inline void read_unlock(void)
{
    fdn__tsan_release(&tsan_grace);
    rcu_read_unlock();
}

/* ---- JSON text helpers ----------------------------------------------------------------- */

/* Smallest precision in 15..17 at which every real in v reads back exactly, so 0.8 prints
 * as 0.8 and no value loses bits. */
static int real_precision(const json_t *v, int p)
{
    switch (json_typeof(v)) {
    case JSON_REAL: {
        double d = json_real_value(v);
        char buf[40];
        for (; p < 17; p++) {
            snprintf(buf, sizeof(buf), "%.*g", p, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        return p;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v) && p < 17; i++)
            p = real_precision(json_array_get(v, i), p);
        return p;
    case JSON_OBJECT: {
        void *it = json_object_iter((json_t *)(uintptr_t)v);
        while (it != NULL && p < 17) {
            p = real_precision(json_object_iter_value(it), p);
            it = json_object_iter_next((json_t *)(uintptr_t)v, it);
        }
        return p;
    }
    default:
        return p;
    }
}

char *fdn__cfg_dump(const json_t *v)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(real_precision(v, 15));
    char *buf = NULL;
    (void)fdn_json_dumps(v, flags, &buf, NULL);
    return buf;
}

/* ---- lookups (pure reads of one snapshot) --------------------------------------------- */

/* Resolve path in s: leaf index (>= 0) with *inner NULL, or a value inside an object leaf
 * (*inner set, returns the leaf index), or FDN_ECONFIG_PATH_NOT_FOUND / security errors.
 * *section is set when path is a section of the schema (returns -1). */
static int snap_lookup(const snap_t *s, const char *path, json_t **inner, bool *section,
                       fdn_error_t *err)
{
    const fdn__cfg_schema_t *sc = s->schema;
    *inner = NULL;
    *section = false;
    size_t len = strlen(path);
    int32_t idx = fdn__cfg_schema_find(sc, path, len);
    if (FDN_LIKELY(idx >= 0))
        return idx;
    int rc = fdn__cfg_path_check(path, err);
    if (rc != 0)
        return rc;
    if (fdn__cfg_schema_is_section(sc, path, len)) {
        *section = true;
        return -1;
    }
    /* a leaf prefix followed by keys inside an object leaf */
    for (size_t cut = len; cut > 0; cut--) {
        if (path[cut - 1] != '.')
            continue;
        idx = fdn__cfg_schema_find(sc, path, cut - 1);
        if (idx < 0)
            continue;
        json_t *cur = s->vals[idx];
        const char *p = path + cut;
        for (;;) {
            const char *dot = strchr(p, '.');
            size_t kl = dot != NULL ? (size_t)(dot - p) : strlen(p);
            cur = json_is_object(cur) ? json_object_getn(cur, p, kl) : NULL;
            if (cur == NULL || dot == NULL)
                break;
            p = dot + 1;
        }
        if (cur == NULL)
            break;
        *inner = cur;
        return idx;
    }
    fdn_err_set(err, FDN_ECONFIG_PATH_NOT_FOUND, "Configuration path not found: %.200s", path);
    fdn_err_add_context(err, "path", "%.200s", path);
    return FDN_ECONFIG_PATH_NOT_FOUND;
}

static int snap_value(const snap_t *s, const char *path, const json_t **out)
{
    json_t *inner;
    bool section;
    if (path == NULL)
        return FDN_EINVAL;
    int idx = snap_lookup(s, path, &inner, &section, NULL);
    if (idx < 0)
        return section ? FDN_ETYPE_MISMATCH : idx;
    *out = inner != NULL ? inner : s->vals[idx];
    return 0;
}

static int v_int(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v))
        return FDN_ETYPE_MISMATCH;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int v_double(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return FDN_ETYPE_MISMATCH;
    *out = json_number_value(v);
    return 0;
}

static int v_bool(const json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return FDN_ETYPE_MISMATCH;
    *out = json_is_true(v);
    return 0;
}

int fdn_config_snapshot_get_int(const fdn_config_snapshot_t *s, const char *path, int64_t *out)
{
    const json_t *v;
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    int rc = snap_value(s, path, &v);
    return rc != 0 ? rc : v_int(v, out);
}

int fdn_config_snapshot_get_double(const fdn_config_snapshot_t *s, const char *path, double *out)
{
    const json_t *v;
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    int rc = snap_value(s, path, &v);
    return rc != 0 ? rc : v_double(v, out);
}

int fdn_config_snapshot_get_bool(const fdn_config_snapshot_t *s, const char *path, bool *out)
{
    const json_t *v;
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    int rc = snap_value(s, path, &v);
    return rc != 0 ? rc : v_bool(v, out);
}

static int snap_json(const snap_t *s, const char *path, char **out, fdn_error_t *err)
{
    json_t *inner;
    bool section;
    int idx = snap_lookup(s, path, &inner, &section, err);
    if (idx < 0 && !section)
        return idx;
    json_t *tree = NULL;
    const json_t *v;
    if (section) {
        bool oom;
        tree = fdn__cfg_build_tree(s->schema, s->vals, path, &oom);
        if (tree == NULL)
            return fdn_err_set(err, FDN_ENOMEM, NULL);
        v = tree;
    } else {
        v = inner != NULL ? inner : s->vals[idx];
    }
    *out = fdn__cfg_dump(v);
    json_decref(tree);
    return *out != NULL ? 0 : fdn_err_set(err, FDN_ENOMEM, NULL);
}

int fdn_config_snapshot_get_json(const fdn_config_snapshot_t *s, const char *path, char **out)
{
    if (s == NULL || path == NULL || out == NULL)
        return FDN_EINVAL;
    return snap_json(s, path, out, NULL);
}

uint64_t fdn_config_snapshot_revision(const fdn_config_snapshot_t *s)
{
    return s != NULL ? s->revision : 0;
}

/* ---- public reads ---------------------------------------------------------------------- */

bool fdn_config_available(const fdn_config_t *cfg)
{
    return cfg != NULL && atomic_load_explicit(&((fdn_config_t *)(uintptr_t)cfg)->live,
                                               memory_order_acquire) != NULL;
}

/* A read on a stopped service: a path that breaks the path rules is refused as such
 * (FDN_EPATH_SECURITY), as it is on a running one, before the service's absence is
 * (FDN_EUNAVAILABLE): the answer to bad input does not depend on the service's state. */
static int unavailable(const char *path, fdn_error_t *err)
{
    int rc = path != NULL ? fdn__cfg_path_check(path, err) : 0;
    return rc != 0 ? rc : fdn_err_set(err, FDN_EUNAVAILABLE, "Configuration service not started");
}

#define READ_WITH_SNAPSHOT(cfg, path, expr)                                                        \
    do {                                                                                           \
        if ((cfg) == NULL)                                                                         \
            return FDN_EINVAL;                                                                     \
        snap_t *s_ = read_lock(cfg);                                                               \
        int rc_ = s_ != NULL ? (expr) : unavailable(path, NULL);                                   \
        read_unlock();                                                                             \
        return rc_;                                                                                \
    } while (0)

/* Exact leaf path of a scalar: served from the latch (no RCU section). Returns 1 when the
 * caller must take the snapshot path instead. */
static inline int path_key(fdn_config_t *cfg, const char *path, fdn_config_key_t *key)
{
    if (FDN_UNLIKELY(cfg == NULL || path == NULL))
        return FDN_EINVAL;
    int32_t idx = fdn__cfg_schema_find(cfg->schema, path, strlen(path));
    if (idx < 0)
        return 1;
    *key = idx;
    return 0;
}

int fdn_config_get_int(fdn_config_t *cfg, const char *path, int64_t *out)
{
    fdn_config_key_t k;
    int rc = path_key(cfg, path, &k);
    if (rc <= 0)
        return rc < 0 ? rc : fdn_config_key_get_int(cfg, k, out);
    READ_WITH_SNAPSHOT(cfg, path, fdn_config_snapshot_get_int(s_, path, out));
}

int fdn_config_get_double(fdn_config_t *cfg, const char *path, double *out)
{
    fdn_config_key_t k;
    int rc = path_key(cfg, path, &k);
    if (rc <= 0)
        return rc < 0 ? rc : fdn_config_key_get_double(cfg, k, out);
    READ_WITH_SNAPSHOT(cfg, path, fdn_config_snapshot_get_double(s_, path, out));
}

int fdn_config_get_bool(fdn_config_t *cfg, const char *path, bool *out)
{
    fdn_config_key_t k;
    int rc = path_key(cfg, path, &k);
    if (rc <= 0)
        return rc < 0 ? rc : fdn_config_key_get_bool(cfg, k, out);
    READ_WITH_SNAPSHOT(cfg, path, fdn_config_snapshot_get_bool(s_, path, out));
}

static int snap_string(const snap_t *s, const char *path, char *buf, size_t cap, size_t *needed)
{
    const json_t *v;
    if (path == NULL || (buf == NULL && cap > 0))
        return FDN_EINVAL;
    int rc = snap_value(s, path, &v);
    if (rc != 0)
        return rc;
    if (!json_is_string(v))
        return FDN_ETYPE_MISMATCH;
    size_t len = json_string_length(v);
    if (needed != NULL)
        *needed = len + 1;
    if (cap < len + 1)
        return FDN_ENOBUFS;
    memcpy(buf, json_string_value(v), len + 1);
    return 0;
}

int fdn_config_get_string(fdn_config_t *cfg, const char *path, char *buf, size_t cap,
                          size_t *needed)
{
    READ_WITH_SNAPSHOT(cfg, path, snap_string(s_, path, buf, cap, needed));
}

static int snap_is_null(const snap_t *s, const char *path, bool *out)
{
    json_t *inner;
    bool section;
    if (path == NULL || out == NULL)
        return FDN_EINVAL;
    int idx = snap_lookup(s, path, &inner, &section, NULL);
    if (idx < 0 && !section)
        return idx;
    *out = !section && json_is_null(inner != NULL ? inner : s->vals[idx]);
    return 0;
}

int fdn_config_is_null(fdn_config_t *cfg, const char *path, bool *out)
{
    READ_WITH_SNAPSHOT(cfg, path, snap_is_null(s_, path, out));
}

int fdn_config_get_json(fdn_config_t *cfg, const char *path, char **out, fdn_error_t *err)
{
    if (cfg == NULL || path == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, NULL);
    snap_t *s = read_lock(cfg);
    int rc = s != NULL ? snap_json(s, path, out, err) : unavailable(path, err);
    read_unlock();
    return rc;
}

uint64_t fdn_config_revision(fdn_config_t *cfg)
{
    if (cfg == NULL)
        return 0;
    snap_t *s = read_lock(cfg);
    uint64_t r = s != NULL ? s->revision : 0;
    read_unlock();
    return r;
}

int fdn_config_key_resolve(const fdn_config_t *cfg, const char *path, fdn_config_key_t *out)
{
    if (cfg == NULL || path == NULL || out == NULL)
        return FDN_EINVAL;
    int32_t idx = fdn__cfg_schema_find(cfg->schema, path, strlen(path));
    if (idx < 0)
        return FDN_ECONFIG_PATH_NOT_FOUND;
    *out = idx;
    return 0;
}

/* Publish leaves [from, to) of s into both latch copies (the writer: wmu held, or the service
 * not shared yet). */
static void latch_write(fdn_config_t *cfg, const snap_t *s, size_t from, size_t to)
{
    uint64_t seq = atomic_load_explicit(&cfg->latch_seq, memory_order_relaxed);
    for (int pass = 0; pass < 2; pass++) {
        /* readers move to the other copy, then this one is rewritten */
        atomic_store_explicit(&cfg->latch_seq, ++seq, memory_order_release);
        FDN_SEQ_FENCE(memory_order_seq_cst);
        latch_leaf_t *dst = cfg->latch[(seq + 1) & 1];
        atomic_store_explicit(&cfg->latch_snap[(seq + 1) & 1], (snap_t *)(uintptr_t)s,
                              memory_order_release);
        for (size_t i = from; i < to; i++) {
            const leaf_t *l = &s->leaves[i];
            uint64_t bits;
            if (l->kind == LK_REAL)
                memcpy(&bits, &l->d, sizeof(bits));
            else
                bits = (uint64_t)l->i;
            atomic_store_explicit(&dst[i].kind, (uint32_t)l->kind, FDN_SEQ_ST);
            atomic_store_explicit(&dst[i].bits, bits, FDN_SEQ_ST);
        }
    }
}

void fdn__cfg_latch_publish(fdn_config_t *cfg, const snap_t *s)
{
    latch_write(cfg, s, 0, cfg->nleaves);
}

void fdn__cfg_latch_publish_leaf(fdn_config_t *cfg, const snap_t *s, size_t idx)
{
    FDN_ASSERT(idx < cfg->nleaves);
    latch_write(cfg, s, idx, idx + 1);
}

/* Lock-free, write-free read of one scalar leaf. */
static inline int key_leaf(fdn_config_t *cfg, fdn_config_key_t key, uint32_t *kind, uint64_t *bits)
{
    if (FDN_UNLIKELY(cfg == NULL || key < 0 || (size_t)key >= cfg->nleaves))
        return FDN_EINVAL;
    for (;;) {
        uint64_t seq = atomic_load_explicit(&cfg->latch_seq, memory_order_acquire);
        if (FDN_UNLIKELY(atomic_load_explicit(&cfg->live, memory_order_relaxed) == NULL))
            return FDN_EUNAVAILABLE;
        const latch_leaf_t *l = &cfg->latch[seq & 1][key];
        *kind = atomic_load_explicit(&l->kind, FDN_SEQ_LD);
        *bits = atomic_load_explicit(&l->bits, FDN_SEQ_LD);
        FDN_SEQ_FENCE(memory_order_acquire);
        if (FDN_LIKELY(atomic_load_explicit(&cfg->latch_seq, memory_order_relaxed) == seq))
            return 0;
    }
}

int fdn_config_key_get_int(fdn_config_t *cfg, fdn_config_key_t key, int64_t *out)
{
    uint32_t kind;
    uint64_t bits;
    int rc = key_leaf(cfg, key, &kind, &bits);
    if (rc != 0 || out == NULL)
        return rc != 0 ? rc : FDN_EINVAL;
    if (kind != LK_INT)
        return FDN_ETYPE_MISMATCH;
    *out = (int64_t)bits;
    return 0;
}

int fdn_config_key_get_double(fdn_config_t *cfg, fdn_config_key_t key, double *out)
{
    uint32_t kind;
    uint64_t bits;
    int rc = key_leaf(cfg, key, &kind, &bits);
    if (rc != 0 || out == NULL)
        return rc != 0 ? rc : FDN_EINVAL;
    if (kind == LK_INT) {
        *out = (double)(int64_t)bits;
        return 0;
    }
    if (kind != LK_REAL)
        return FDN_ETYPE_MISMATCH;
    memcpy(out, &bits, sizeof(*out));
    return 0;
}

int fdn_config_key_get_bool(fdn_config_t *cfg, fdn_config_key_t key, bool *out)
{
    uint32_t kind;
    uint64_t bits;
    int rc = key_leaf(cfg, key, &kind, &bits);
    if (rc != 0 || out == NULL)
        return rc != 0 ? rc : FDN_EINVAL;
    if (kind != LK_BOOL)
        return FDN_ETYPE_MISMATCH;
    *out = bits != 0;
    return 0;
}

int fdn_config_acquire(fdn_config_t *cfg, const fdn_config_snapshot_t **out)
{
    if (cfg == NULL || out == NULL)
        return FDN_EINVAL;
    snap_t *s = read_lock(cfg);
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    read_unlock();
    *out = s;
    return s != NULL ? 0 : FDN_EUNAVAILABLE;
}

void fdn_config_release(const fdn_config_snapshot_t *snap)
{
    if (snap != NULL)
        fdn__cfg_snap_unref(snap);
}

const char *const *fdn_config_updatable_paths(size_t *n)
{
    if (n != NULL)
        *n = fdn__cfg_updatable_count;
    return fdn__cfg_updatable_paths;
}

bool fdn_config_is_updatable(const fdn_config_t *cfg, const char *path)
{
    if (cfg == NULL || path == NULL)
        return false;
    int32_t idx = fdn__cfg_schema_find(cfg->schema, path, strlen(path));
    return idx >= 0 && cfg->schema->e[idx].updatable;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_config_t *cfg = state;
    (void)ctx;
    (void)err;
    if (cfg == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&cfg->wmu);
    if (cfg->running) {
        fdn__mutex_unlock(&cfg->wmu);
        return 0;
    }
    fdn__mutex_lock(&cfg->smu);
    cfg->thr_stop = false;
    int prc = pthread_create(&cfg->thr, NULL, fdn__cfg_delivery_main, cfg);
    cfg->thr_running = prc == 0;
    if (prc == 0 && cfg->hook != NULL) {
        prc = pthread_create(&cfg->hook_thr, NULL, fdn__cfg_hook_main, cfg);
        cfg->hook_thr_running = prc == 0;
        if (prc != 0) {
            cfg->thr_stop = true;
            pthread_cond_broadcast(&cfg->scv);
            fdn__mutex_unlock(&cfg->smu);
            pthread_join(cfg->thr, NULL);
            fdn__mutex_lock(&cfg->smu);
            cfg->thr_running = false;
        }
    }
    fdn__mutex_unlock(&cfg->smu);
    if (prc != 0) {
        fdn__mutex_unlock(&cfg->wmu);
        return FDN_EAGAIN;
    }
    cfg->running = true;
    cfg->started_ns = fdn_clock_mono_ns(cfg->clock);
    atomic_store_explicit(&cfg->live, cfg->cur, memory_order_release);
    /* queued updates, in order; each re-checked against the config of the moment. Following
     * etcd, they go through etcd (fdn__cfg_send_pending, after wmu), as any update there:
     * applied here only, at a local revision, they would never reach the fleet */
    bool remote = atomic_load_explicit(&cfg->remote, memory_order_acquire) != NULL;
    char *path, *json;
    while (!remote && fdn__cfg_fb_pop_pending(cfg->fb, &path, &json)) {
        json_t *v = NULL;
        int32_t idx = -1;
        snap_t *old = NULL;
        int rc = fdn__cfg_parse_value(path, json, &v, NULL);
        if (rc == 0)
            rc = fdn__cfg_precheck(cfg, path, v, &idx, NULL);
        if (rc == 0)
            rc = fdn__cfg_apply_locked(cfg, idx, v, &old, NULL);
        if (rc != 0)
            fdn__cfg_fb_count_failed(cfg->fb);
        cfg->refused = false; /* a refusal of the apply hook here is counted, not reported */
        json_decref(v);
        fdn__cfg_retire(old);
        fdn__free(path);
        fdn__free(json);
    }
    fdn__mutex_unlock(&cfg->wmu);
    if (remote)
        fdn__cfg_send_pending(cfg);
    return 0;
}

static void service_stop(void *state)
{
    fdn_config_t *cfg = state;
    if (cfg == NULL)
        return;
    fdn__mutex_lock(&cfg->wmu);
    FDN_ASSERT(!cfg->running || atomic_load_explicit(&cfg->live, memory_order_relaxed) == cfg->cur);
    cfg->running = false;
    atomic_store_explicit(&cfg->live, NULL, memory_order_release);
    fdn__mutex_unlock(&cfg->wmu);
    fdn__mutex_lock(&cfg->smu);
    bool join = cfg->thr_running && !cfg->thr_stop;
    bool join_hook = cfg->hook_thr_running && !cfg->thr_stop;
    cfg->thr_stop = true;
    pthread_cond_broadcast(&cfg->scv);
    fdn__mutex_unlock(&cfg->smu);
    if (join)
        pthread_join(cfg->thr, NULL);
    if (join_hook)
        pthread_join(cfg->hook_thr, NULL);
    if (join || join_hook) {
        fdn__mutex_lock(&cfg->smu);
        cfg->thr_running = false;
        cfg->hook_thr_running = false;
        fdn__mutex_unlock(&cfg->smu);
    }
}

static int service_health(void *state)
{
    fdn_config_t *cfg = state;
    return fdn_config_available(cfg) ? 0 : FDN_EUNAVAILABLE;
}

static json_t **vals_copy(const fdn__cfg_schema_t *s, json_t *const *from)
{
    json_t **v = fdn__calloc(s->n, sizeof(json_t *));
    if (v != NULL) {
        for (size_t i = 0; i < s->n; i++)
            v[i] = json_incref(from != NULL ? from[i] : s->e[i].def);
    }
    return v;
}

static void vals_free(json_t **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    fdn__free(v);
}

enum { SRC_DEFAULT = 0, SRC_FILE = 1, SRC_ENV = 2 };

int fdn__cfg_apply_env(const fdn__cfg_schema_t *s, json_t **vals, uint8_t *marks,
                       const char **env_src, const char *const *envp, fdn_error_t *err)
{
    char path[FDN__CFG_MAX_PATH_LEN + 1];
    for (const char *const *e = envp; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        size_t nlen = (size_t)(eq - *e);
        if (fdn__cfg_env_name_to_path(*e, nlen, path, sizeof(path)) != 0)
            continue;
        int32_t idx = fdn__cfg_schema_find(s, path, strlen(path));
        if (idx < 0) {
            const char *dot = strchr(path, '.');
            if (!fdn__cfg_schema_is_section(s, path, dot != NULL ? (size_t)(dot - path) : 0))
                continue; /* not one of our sections: someone else's variable */
            fdn_err_set(err, FDN_ECONFIG_STRUCTURE,
                        "environment variable %.*s: %s: unknown configuration key", (int)nlen, *e,
                        path);
            fdn_err_add_context(err, "path", "%s", path);
            return FDN_ECONFIG_STRUCTURE;
        }
        json_t *v = NULL;
        int rc = fdn__cfg_parse_text(s->e[idx].type, eq + 1, &v);
        if (rc != 0) {
            if (rc == FDN_ENOMEM)
                return fdn_err_set(err, FDN_ENOMEM, NULL);
            fdn_err_set(err, FDN_ECONFIG_INVALID,
                        "environment variable %.*s: %s: expected %s, got \"%.40s\"", (int)nlen, *e,
                        path, fdn__cfg_type_name(s->e[idx].type), eq + 1);
            fdn_err_add_context(err, "path", "%s", path);
            fdn_err_add_context(err, "rule", "type %s", fdn__cfg_type_name(s->e[idx].type));
            return FDN_ECONFIG_INVALID;
        }
        json_decref(vals[idx]);
        vals[idx] = v;
        marks[idx] = SRC_ENV;
        env_src[idx] = *e;
    }
    return 0;
}

static int build_startup(fdn_config_t *cfg, const fdn_config_opts_t *o, fdn_error_t *err)
{
    const fdn__cfg_schema_t *s = cfg->schema;
    int rc = 0;
    uint8_t *marks = fdn__calloc(s->n, 1);
    const char **env_src = fdn__calloc(s->n, sizeof(char *));
    cfg->startup = vals_copy(s, NULL);
    if (marks == NULL || env_src == NULL || cfg->startup == NULL) {
        rc = fdn_err_set(err, FDN_ENOMEM, NULL);
        goto out;
    }
    if (o->file != NULL) {
        json_error_t jerr;
        bool oom = false;
        json_t *root = fdn__json_load_file(o->file, JSON_REJECT_DUPLICATES, &jerr, &oom);
        if (oom) { /* out of memory, not a bad file (see core/json.h) */
            rc = fdn_err_set(err, FDN_ENOMEM, NULL);
            goto out;
        }
        if (root == NULL) {
            bool missing = json_error_code(&jerr) == json_error_cannot_open_file;
            rc = fdn_err_set(err, missing ? FDN_ENOENT : FDN_EPARSE, "%s:%d:%d: %.120s", o->file,
                             jerr.line, jerr.column, jerr.text);
            fdn_err_add_context(err, "file", "%s", o->file);
            goto out;
        }
        rc = fdn__cfg_merge_json(s, cfg->startup, root, o->file, marks, SRC_FILE, err);
        json_decref(root);
        if (rc != 0)
            goto out;
    }
    if (!o->ignore_env) {
        const char *const *envp = o->envp != NULL ? o->envp : (const char *const *)environ;
        if (envp != NULL &&
            (rc = fdn__cfg_apply_env(s, cfg->startup, marks, env_src, envp, err)) != 0)
            goto out;
    }
    size_t bad = 0;
    fdn_error_t tmp = FDN_ERROR_INIT;
    rc = fdn__cfg_validate(s, cfg->startup, &bad, &tmp);
    if (rc != 0) {
        char src[160];
        if (marks[bad] == SRC_FILE)
            snprintf(src, sizeof(src), "%s", o->file);
        else if (marks[bad] == SRC_ENV)
            snprintf(src, sizeof(src), "environment variable %.*s",
                     (int)(strchr(env_src[bad], '=') - env_src[bad]), env_src[bad]);
        else
            snprintf(src, sizeof(src), "defaults");
        fdn_err_set(err, rc, "%s: %s: %s", src, s->e[bad].path, tmp.message);
        fdn_err_add_context(err, "source", "%s", src);
        fdn_err_add_context(err, "path", "%s", s->e[bad].path);
        fdn_err_add_context(err, "rule", "%s", tmp.message);
    }
out:
    fdn__free(marks);
    fdn__free((void *)env_src);
    return rc;
}

int fdn_config_create(fdn_config_t **out, const fdn_config_opts_t *opts, fdn_error_t *err)
{
    /* snapshots are retired with call_rcu: liburcu-bp's fork handlers let a forked child
     * keep using (and destroying) a config service */
    fdn__rcu_setup();
    fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "out is NULL");
    *out = NULL;
    if (opts != NULL) {
        if (opts->version != FDN_CONFIG_OPTS_VERSION)
            return fdn_err_set(err, FDN_EINVAL, "unsupported options version");
        o = *opts;
    }
    if (o.fallback_ttl_ms < 0)
        return fdn_err_set(err, FDN_EINVAL, "fallback_ttl_ms < 0");
    fdn_config_t *cfg = fdn__calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    pthread_mutex_init(&cfg->wmu, NULL);
    pthread_mutex_init(&cfg->smu, NULL);
    pthread_cond_init(&cfg->scv, NULL);
    /* idle_cv: drain's bounded wait measures real elapsed time, immune to wall-clock steps */
    (void)fdn__cond_init_mono(&cfg->idle_cv);
    cfg->clock = o.clock;
    cfg->sub_cap = o.subscriber_queue != 0 ? o.subscriber_queue : 1024;
    atomic_init(&cfg->last_update, -1);
    int rc = fdn__cfg_schema_create(&cfg->schema, o.keys, o.nkeys, err);
    if (rc == 0) {
        cfg->fb = fdn__cfg_fb_create(o.fallback_ttl_ms != 0 ? o.fallback_ttl_ms : 300000,
                                     o.fallback_max_entries != 0 ? o.fallback_max_entries : 1024,
                                     o.pending_max != 0 ? o.pending_max : 64);
        cfg->defaults = vals_copy(cfg->schema, NULL);
        if (cfg->fb == NULL || cfg->defaults == NULL)
            rc = fdn_err_set(err, FDN_ENOMEM, NULL);
    }
    if (rc == 0)
        rc = build_startup(cfg, &o, err);
    if (rc == 0) {
        cfg->nleaves = cfg->schema->n;
        cfg->cur = fdn__cfg_snap_new(cfg->schema, NULL, cfg->startup, -1, NULL);
        cfg->latch[0] = fdn__calloc(cfg->nleaves, sizeof(latch_leaf_t));
        cfg->latch[1] = fdn__calloc(cfg->nleaves, sizeof(latch_leaf_t));
        if (cfg->cur == NULL || cfg->latch[0] == NULL || cfg->latch[1] == NULL) {
            rc = fdn_err_set(err, FDN_ENOMEM, NULL);
        } else {
            cfg->cur->revision = 1;
            cfg->cur->valid = true; /* build_startup validated the start-up values */
            fdn__cfg_latch_publish(cfg, cfg->cur);
        }
    }
    if (rc == 0 && o.on_change != NULL) {
        cfg->hook = fdn__cfg_sub_new("", o.on_change, o.on_change_user,
                                     o.on_change_queue != 0 ? o.on_change_queue : 4096);
        if (cfg->hook == NULL)
            rc = fdn_err_set(err, FDN_ENOMEM, NULL);
    }
    if (rc == 0 && !o.start_stopped) {
        rc = fdn__config_service_start(cfg);
        if (rc != 0)
            fdn_err_set(err, rc, "cannot start the delivery thread");
    }
    if (rc != 0) {
        fdn_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void fdn_config_destroy(fdn_config_t *cfg)
{
    if (cfg == NULL)
        return;
    void *remote = atomic_load_explicit(&cfg->remote, memory_order_acquire);
    if (remote != NULL) /* the follower first: it applies changes to a running service */
        cfg->remote_ops->destroy(remote);
    fdn__config_service_stop(cfg);
    fdn__mutex_lock(&cfg->smu);
    while (cfg->subs != NULL) {
        sub_t *s = cfg->subs;
        cfg->subs = s->next;
        fdn__cfg_sub_free(s);
    }
    if (cfg->hook != NULL)
        fdn__cfg_sub_free(cfg->hook);
    fdn__mutex_unlock(&cfg->smu);
    fdn__rcu_barrier(); /* run every pending snapshot retirement */
    if (cfg->cur != NULL)
        fdn__cfg_snap_unref(cfg->cur);
    size_t n = cfg->schema != NULL ? cfg->schema->n : 0;
    vals_free(cfg->defaults, n);
    vals_free(cfg->startup, n);
    fdn__free(cfg->latch[0]);
    fdn__free(cfg->latch[1]);
    fdn__cfg_fb_destroy(cfg->fb);
    fdn__cfg_schema_destroy(cfg->schema);
    pthread_mutex_destroy(&cfg->wmu);
    pthread_mutex_destroy(&cfg->smu);
    pthread_cond_destroy(&cfg->scv);
    pthread_cond_destroy(&cfg->idle_cv);
    fdn__free(cfg);
}

int fdn_config_status(fdn_config_t *cfg, fdn_config_status_t *out)
{
    if (cfg == NULL || out == NULL)
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    fdn__mutex_lock(&cfg->wmu);
    out->running = cfg->running;
    out->revision = cfg->cur->revision;
    out->uptime_ns = cfg->running ? fdn_clock_mono_ns(cfg->clock) - cfg->started_ns : 0;
    fdn__mutex_unlock(&cfg->wmu);
    out->updates_count = atomic_load_explicit(&cfg->updates, memory_order_relaxed);
    out->resets_count = atomic_load_explicit(&cfg->resets, memory_order_relaxed);
    out->last_update_ns = atomic_load_explicit(&cfg->last_update, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&cfg->dropped, memory_order_relaxed);
    fdn__mutex_lock(&cfg->smu);
    out->subscribers = cfg->nsubs;
    fdn__mutex_unlock(&cfg->smu);
    fdn__cfg_fb_counts(cfg->fb, NULL, &out->pending, &out->pending_failed);
    return 0;
}

static void service_destroy(void *state)
{
    fdn_config_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__config_service_ops = {service_start, service_stop, service_health,
                                                   NULL, service_destroy};
