/*
 * DESIGN: snapshots of a telemetry instance (the C iterator) and the get_metrics JSON tree.
 *
 * Threads: any. A snapshot is taken under tm->mu (so no family, series or entry is created
 * or removed meanwhile) inside an RCU read-side section (entries are in the RCU hash table);
 * histograms are copied shard by shard under each shard's lock, so a sample never shows a
 * torn histogram. Counters are read with relaxed loads while other threads keep adding: each
 * sample is a value the counter had during the snapshot. Everything the snapshot shows is
 * copied into its own arena: it stays valid after cleanup frees entries and is immutable.
 * Taking a snapshot also samples each entry's activity for retention.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/error.h>

#include "core/alloc.h"
#include "services/telemetry_int.h"

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_blk_t;

struct fdn_telemetry_snapshot {
    fdn_telemetry_sample_t *s;
    size_t n, cap;
    arena_blk_t *arena;
    int64_t time;
    bool oom;
    tm_hist_copy_t *scratch;
};

static void *arena_alloc(fdn_telemetry_snapshot_t *sn, size_t size)
{
    size = (size + 15u) & ~(size_t)15u;
    arena_blk_t *b = sn->arena;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = FDN_MAX(size, (size_t)16384);
        b = fdn__malloc(sizeof(*b) + cap);
        if (b == NULL) {
            sn->oom = true;
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = sn->arena;
        sn->arena = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static const char *arena_str(fdn_telemetry_snapshot_t *sn, const char *s)
{
    size_t len = strlen(s);
    char *p = arena_alloc(sn, len + 1);
    if (p != NULL)
        memcpy(p, s, len + 1);
    return p != NULL ? p : "";
}

static fdn_telemetry_sample_t *sample_add(fdn_telemetry_snapshot_t *sn)
{
    if (sn->n == sn->cap) {
        size_t cap = sn->cap ? sn->cap * 2 : 64;
        fdn_telemetry_sample_t *ns = fdn__realloc(sn->s, cap * sizeof(*ns));
        if (ns == NULL) {
            sn->oom = true;
            return NULL;
        }
        sn->s = ns;
        sn->cap = cap;
    }
    fdn_telemetry_sample_t *x = &sn->s[sn->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/* The exemplars of histogram m's buckets into x (x->nbuckets and hist_div set). */
static void sample_exemplars(fdn_telemetry_snapshot_t *sn, fdn_telemetry_sample_t *x, const void *m)
{
    tm_exemplar_t ex[TM_LE_MAX + 1];
    if (!fdn__histogram_exemplars(m, ex))
        return;
    size_t n = x->nbuckets + 1;
    fdn_telemetry_exemplar_t *out = arena_alloc(sn, n * sizeof(*out));
    if (out == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (!ex[i].set)
            continue;
        out[i].label_name = arena_str(sn, ex[i].name);
        out[i].label_value = arena_str(sn, ex[i].value);
        out[i].value = ex[i].v / x->hist_div;
        out[i].timestamp_s = (double)ex[i].wall_ns / 1e9;
    }
    x->bucket_exemplar = out;
}

static void sample_metric(fdn_telemetry_snapshot_t *sn, fdn_telemetry_sample_t *x,
                          fdn_telemetry_kind_t kind, const void *m)
{
    x->kind = kind;
    switch (kind) {
    case FDN_TELEMETRY_COUNTER:
        x->counter = fdn_counter_value(m);
        break;
    case FDN_TELEMETRY_HISTOGRAM: {
        const tm_hist_copy_t *c = sn->scratch;
        fdn__histogram_copy(m, sn->scratch);
        fdn__hist_copy_stats(c, &x->hist);
        x->hist_div = c->nle > 0 && c->le_div > 0.0 ? c->le_div : 1.0;
        if (c->nle == 0)
            break;
        double *le = arena_alloc(sn, c->nle * sizeof(double));
        uint64_t *cum = arena_alloc(sn, c->nle * sizeof(uint64_t));
        if (le == NULL || cum == NULL)
            break;
        uint64_t acc = 0;
        for (unsigned i = 0; i < c->nle; i++) {
            /* bounds of ns histograms are whole ns: dividing gives the same double as the
             * seconds literal (1e4 / 1e9 == 1e-5), where multiplying by 1e-9 would not */
            le[i] = c->le[i] / x->hist_div;
            acc += c->le_n[i];
            cum[i] = acc;
        }
        x->nbuckets = c->nle;
        x->bucket_le = le;
        x->bucket_le_count = cum;
        sample_exemplars(sn, x, m);
        break;
    }
    default:
        x->gauge = fdn_gauge_value(m);
        if (kind == FDN_TELEMETRY_GAUGE_INT)
            x->gauge_int = fdn__gauge_int(m);
        break;
    }
}

static void add_family(fdn_telemetry_snapshot_t *sn, const fdn_telemetry_family_t *f)
{
    const char *name = arena_str(sn, f->name), *help = arena_str(sn, f->help);
    const char **lnames = NULL;
    if (f->nlabels > 0) {
        lnames = arena_alloc(sn, f->nlabels * sizeof(char *));
        if (lnames == NULL)
            return;
        for (size_t i = 0; i < f->nlabels; i++)
            lnames[i] = arena_str(sn, f->labels[i]);
    }
    for (size_t i = 0; i <= f->nseries; i++) {
        const tm_series_t *s = i < f->nseries ? f->series[i] : f->overflow;
        if (s == NULL)
            continue;
        fdn_telemetry_sample_t *x = sample_add(sn);
        if (x == NULL)
            return;
        x->name = name;
        x->help = help;
        x->nlabels = f->nlabels;
        x->label_names = lnames;
        if (f->nlabels > 0) {
            const char **vals = arena_alloc(sn, f->nlabels * sizeof(char *));
            if (vals == NULL)
                return;
            for (size_t k = 0; k < f->nlabels; k++)
                vals[k] = arena_str(sn, s->values[k]);
            x->label_values = vals;
        }
        sample_metric(sn, x, f->kind, s->metric);
    }
}

static void add_entry(fdn_telemetry_snapshot_t *sn, tm_entry_t *e)
{
    const char *name = arena_str(sn, e->name);
    fdn_telemetry_meta_t *meta = NULL;
    if (e->nmeta > 0) {
        meta = arena_alloc(sn, e->nmeta * sizeof(*meta));
        if (meta == NULL)
            return;
        for (size_t i = 0; i < e->nmeta; i++) {
            meta[i].key = arena_str(sn, e->meta[i].key);
            meta[i].value = arena_str(sn, e->meta[i].value);
        }
    }
    unsigned n = atomic_load_explicit(&e->nslots, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++) {
        fdn_telemetry_sample_t *x = sample_add(sn);
        if (x == NULL)
            return;
        x->name = name;
        x->help = "";
        x->is_event = true;
        x->last_active_ns = e->last_active;
        x->meta = meta;
        x->nmeta = e->nmeta;
        if (i == n) {
            x->key = "";
            x->kind = FDN_TELEMETRY_COUNTER;
            x->counter = fdn_counter_value(e->count);
        } else {
            tm_slot_t *s = atomic_load_explicit(&e->slots[i], memory_order_acquire);
            x->key = arena_str(sn, s->key);
            sample_metric(sn, x, s->kind, s->u.c);
        }
    }
}

int fdn__tm_sample_cmp(const void *pa, const void *pb)
{
    const fdn_telemetry_sample_t *a = pa, *b = pb;
    if (a->is_event != b->is_event)
        return a->is_event ? 1 : -1;
    int c = strcmp(a->name, b->name);
    if (c != 0)
        return c;
    for (size_t i = 0; i < a->nlabels && i < b->nlabels; i++) {
        c = strcmp(a->label_values[i], b->label_values[i]);
        if (c != 0)
            return c;
    }
    const char *ka = a->key != NULL ? a->key : "", *kb = b->key != NULL ? b->key : "";
    return strcmp(ka, kb);
}

int fdn_telemetry_snapshot(fdn_telemetry_t *tm, fdn_telemetry_snapshot_t **out)
{
    if (out == NULL || tm == NULL)
        return FDN_EINVAL;
    *out = NULL;
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    fdn_telemetry_snapshot_t *sn = fdn__calloc(1, sizeof(*sn));
    if (sn == NULL)
        return FDN_ENOMEM;
    sn->scratch = fdn__malloc(sizeof(*sn->scratch));
    if (sn->scratch == NULL) {
        fdn__free(sn);
        return FDN_ENOMEM;
    }
    fdn__tm_run_collectors(tm);
    fdn__mutex_lock(&tm->mu);
    sn->time = fdn_clock_mono_ns(tm->clock);
    for (size_t i = 0; i < tm->nfams && !sn->oom; i++)
        add_family(sn, tm->fams[i]);
    rcu_read_lock();
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    cds_lfht_first(tm->ht, &it);
    while (!sn->oom && (node = cds_lfht_iter_get_node(&it)) != NULL) {
        tm_entry_t *e = TM_CONTAINER_OF(node, tm_entry_t, node);
        fdn__tm_entry_sample_activity(tm, e, sn->time);
        add_entry(sn, e);
        cds_lfht_next(tm->ht, &it);
    }
    tm_read_unlock();
    fdn__mutex_unlock(&tm->mu);
    fdn__free(sn->scratch);
    sn->scratch = NULL;
    if (sn->oom) {
        fdn_telemetry_snapshot_free(sn);
        return FDN_ENOMEM;
    }
    if (sn->n > 1)
        qsort(sn->s, sn->n, sizeof(*sn->s), fdn__tm_sample_cmp);
    *out = sn;
    return 0;
}

const fdn_telemetry_sample_t *fdn_telemetry_snapshot_next(const fdn_telemetry_snapshot_t *s,
                                                          size_t *iter)
{
    if (s == NULL || iter == NULL || *iter >= s->n)
        return NULL;
    return &s->s[(*iter)++];
}

int64_t fdn_telemetry_snapshot_time(const fdn_telemetry_snapshot_t *s)
{
    return s != NULL ? s->time : 0;
}

void fdn_telemetry_snapshot_free(fdn_telemetry_snapshot_t *s)
{
    if (s == NULL)
        return;
    arena_blk_t *b = s->arena;
    while (b != NULL) {
        arena_blk_t *n = b->next;
        fdn__free(b);
        b = n;
    }
    fdn__free(s->scratch);
    fdn__free(s->s);
    fdn__free(s);
}

/* ------------------------------------------------------------------------------------ */
/* JSON                                                                                  */

/* A copy of s with invalid UTF-8 bytes replaced by U+FFFD (jansson accepts only UTF-8);
 * NULL on OOM. */
static char *utf8_clean(const char *s)
{
    size_t len = strlen(s);
    char *out = fdn__malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = fdn__utf8_seq((const unsigned char *)s + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *c = utf8_clean(s);
    if (c == NULL)
        return NULL;
    j = json_string(c);
    fdn__free(c);
    return j;
}

/* json_object_set_new with a key that may not be UTF-8 (steals v). */
static int jset(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, json_incref(v)) == 0) {
        json_decref(v);
        return 0;
    }
    char *c = utf8_clean(key);
    int rc = c != NULL ? json_object_set_new(obj, c, v) : (json_decref(v), -1);
    fdn__free(c);
    return rc;
}

static json_t *jcount(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* JSON has no infinities (a gauge add or a histogram sum can overflow to one): json_real
 * refuses them, which used to fail the whole document; they are written as null. */
static json_t *jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *hist_json(const fdn_telemetry_hist_stats_t *h)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "count", jcount(h->count), "sum",
                     jreal(h->sum), "min", jreal(h->min), "max", jreal(h->max), "mean",
                     jreal(h->count > 0 ? h->sum / (double)h->count : 0.0), "p50", jreal(h->p50),
                     "p90", jreal(h->p90), "p99", jreal(h->p99), "p999", jreal(h->p999));
}

static json_t *value_json(const fdn_telemetry_sample_t *x)
{
    switch (x->kind) {
    case FDN_TELEMETRY_COUNTER:
        return jcount(x->counter);
    case FDN_TELEMETRY_HISTOGRAM:
        return hist_json(&x->hist);
    case FDN_TELEMETRY_GAUGE_INT:
        return json_integer((json_int_t)x->gauge_int);
    default:
        return jreal(x->gauge);
    }
}

/* Put value at the dotted path name under root (steals value). Conflicts with a non-object
 * node on the way leave the tree unchanged. */
static int place(json_t *root, const char *name, json_t *value)
{
    if (value == NULL)
        return FDN_ENOMEM;
    json_t *node = root;
    const char *p = name;
    char comp[FDN_TELEMETRY_NAME_MAX + 1];
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        memcpy(comp, p, len);
        comp[len] = '\0';
        json_t *child = json_object_get(node, comp);
        if (dot == NULL) {
            if (child != NULL && json_is_object(child) && json_is_object(value)) {
                int rc = json_object_update_missing(child, value);
                json_decref(value);
                if (rc != 0)
                    return FDN_ENOMEM;
            } else if (child != NULL) {
                json_decref(value); /* conflict: keep the earlier value */
            } else if (json_object_set_new(node, comp, value) != 0) {
                return FDN_ENOMEM;
            }
            return 0;
        }
        if (child == NULL) {
            child = json_object();
            if (child == NULL || json_object_set_new(node, comp, child) != 0) {
                json_decref(value);
                return FDN_ENOMEM;
            }
        } else if (!json_is_object(child)) {
            json_decref(value);
            return 0;
        }
        node = child;
        p = dot + 1;
    }
}

static const char *special_name(const char *name)
{
    if (strcmp(name, "foundation.event_store.events_stored") == 0)
        return "foundation.events_stored";
    if (strcmp(name, "foundation.config_updates") == 0 ||
        strcmp(name, "foundation.config_resets") == 0 ||
        strcmp(name, "foundation.config_operations") == 0)
        return name;
    return NULL;
}

static int build_json(const fdn_telemetry_snapshot_t *sn, json_t *root)
{
    json_t *fams = json_object();
    if (fams == NULL || json_object_set_new(root, "families", fams) != 0)
        return FDN_ENOMEM;
    if (json_object_set_new(root, "retrieved_at", json_integer(sn->time)) != 0)
        return FDN_ENOMEM;
    size_t i = 0;
    while (i < sn->n) {
        const fdn_telemetry_sample_t *x = &sn->s[i];
        if (!x->is_event) {
            json_t *f = json_object_get(fams, x->name);
            if (f == NULL) {
                f = json_pack("{s:s,s:o,s:[]}", "type", fdn__tm_kind_name(x->kind), "help", jstr(x->help),
                              "series");
                if (f == NULL || json_object_set_new(fams, x->name, f) != 0)
                    return FDN_ENOMEM;
            }
            json_t *labels = json_object();
            if (labels == NULL)
                return FDN_ENOMEM;
            for (size_t k = 0; k < x->nlabels; k++) {
                if (json_object_set_new(labels, x->label_names[k], jstr(x->label_values[k])) != 0) {
                    json_decref(labels);
                    return FDN_ENOMEM;
                }
            }
            json_t *s = json_pack("{s:o,s:o}", "labels", labels, "value", value_json(x));
            if (s == NULL || json_array_append_new(json_object_get(f, "series"), s) != 0)
                return FDN_ENOMEM;
            i++;
            continue;
        }
        /* one event: its samples are contiguous, the emission count (key "") first */
        size_t j = i;
        while (j < sn->n && strcmp(sn->s[j].name, x->name) == 0)
            j++;
        uint64_t count = 0;
        json_t *meas = json_object();
        if (meas == NULL)
            return FDN_ENOMEM;
        for (size_t k = i; k < j; k++) {
            if (sn->s[k].key[0] == '\0') {
                count = sn->s[k].counter;
            } else if (jset(meas, sn->s[k].key, value_json(&sn->s[k])) != 0) {
                json_decref(meas); /* out of memory: no partial tree reported as the metrics */
                return FDN_ENOMEM;
            }
        }
        const char *sp = special_name(x->name);
        int rc;
        if (sp != NULL) {
            json_decref(meas);
            rc = place(root, sp, jcount(count));
        } else {
            json_t *md = json_object();
            for (size_t k = 0; md != NULL && k < x->nmeta; k++) {
                if (jset(md, x->meta[k].key, jstr(x->meta[k].value)) != 0) {
                    json_decref(md);
                    md = NULL; /* json_pack fails on it: FDN_ENOMEM below */
                }
            }
            rc = place(root, x->name,
                       json_pack("{s:I,s:o,s:o,s:o}", "timestamp", (json_int_t)x->last_active_ns,
                                 "count", jcount(count), "measurements", meas, "metadata", md));
        }
        if (rc < 0)
            return rc;
        i = j;
    }
    return 0;
}

int fdn_telemetry_metrics_json(fdn_telemetry_t *tm, char **out)
{
    if (out == NULL || tm == NULL)
        return FDN_EINVAL;
    *out = NULL;
    fdn_telemetry_snapshot_t *sn = NULL;
    int rc = fdn_telemetry_snapshot(tm, &sn);
    if (rc < 0)
        return rc;
    json_t *root = json_object();
    rc = root != NULL ? build_json(sn, root) : FDN_ENOMEM;
    fdn_telemetry_snapshot_free(sn);
    /* fdn_json_dumps, not json_dumps: out of memory while it writes an object key, jansson
     * drops the key and carries on, returning malformed text as a success */
    if (rc == 0)
        rc = fdn_json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS, out, NULL);
    json_decref(root);
    return rc;
}
