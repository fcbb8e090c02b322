/*
 * DESIGN: metric families of a telemetry instance (named metrics with label names) and the
 * resolution of a label set to its series handle.
 *
 * Threads: any. Locks: every family list and series list is guarded by tm->mu (the
 * instance's writer mutex); resolution is a setup-time operation (linear search of the
 * family's series under the mutex), the returned handle is then used lock-free. Series and
 * families are never freed before fdn_telemetry_destroy, so handles stay valid; reset only
 * zeroes them. An unlabelled family's one series is also published in f->unlabelled once
 * made, and found there without the mutex (collectors resolve such series on every scrape,
 * and would otherwise queue on tm->mu behind a concurrent scrape's refresh).
 *
 * Cardinality: a family holds at most max_series label sets; a further new label set gets
 * the overflow series (every label value "__overflow__"), the family's overflow count and
 * fdn_telemetry_series_dropped_total{family=...} are incremented. The overflow label set
 * itself resolves to the overflow series (not counted), so no two series share labels.
 *
 * Histogram families carry `le` bounds (default FDN_TELEMETRY_DEFAULT_BUCKETS), fixed once
 * their first series exists. Collectors (scrape-time refreshers) are kept in a small array
 * under coll_lock: a snapshot holds it for reading while it runs them (no other lock held),
 * add/remove hold it for writing, so a removed collector is never running afterwards. A
 * thread-local list of the instances whose collectors the thread is running makes add/remove
 * from inside one of them FDN_EBUSY (not a self-deadlock) and a snapshot or scrape from inside
 * skip the collectors (not a recursion).
 */
#include <math.h>
#include <string.h>

#include <fdn/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "services/telemetry_int.h"

#define TM_OVERFLOW_VALUE "__overflow__"

bool fdn_telemetry_name_valid(const char *name, size_t len, bool label)
{
    if (name == NULL || len == 0 || len > FDN_TELEMETRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        bool colon = c == ':' && !label;
        if (!(alpha || colon || (digit && i > 0)))
            return false;
    }
    if (label) {
        if (len >= 2 && name[0] == '_' && name[1] == '_')
            return false;
        if ((len == 2 && memcmp(name, "le", 2) == 0) ||
            (len == 8 && memcmp(name, "quantile", 8) == 0))
            return false;
    }
    return true;
}

static const double default_le[FDN_TELEMETRY_DEFAULT_NBUCKETS] = FDN_TELEMETRY_DEFAULT_BUCKETS;

bool fdn__tm_key_is_ns(const char *key)
{
    size_t n = strlen(key);
    return strcmp(key, "duration") == 0 || (n > 3 && strcmp(key + n - 3, "_ns") == 0) ||
           (n > 5 && strcmp(key + n - 5, "_time") == 0);
}

/* The operator's layout of the histogram exported as `name`, or NULL (tm->mu held). */
static const tm_layout_t *layout_find(const fdn_telemetry_t *tm, const char *name)
    FDN_REQUIRES(tm->mu)
{
    for (size_t i = 0; i < tm->nlayouts; i++)
        if (strcmp(tm->layouts[i].name, name) == 0)
            return &tm->layouts[i];
    return NULL;
}

fdn_histogram_t *fdn__tm_event_histogram_new(fdn_telemetry_t *tm, const char *event,
                                             const char *key)
{
    bool ns = fdn__tm_key_is_ns(key);
    const tm_layout_t *lay = NULL;
    if (tm->nlayouts > 0) { /* (a setup-time path: an event's first value of this key) */
        fdn__buf_t name = FDN__BUF_INIT;
        if (fdn__tm_event_hist_name(&name, event, key) && !name.oom)
            lay = layout_find(tm, name.p);
        fdn__free(name.p);
    }
    if (lay != NULL && lay->nle > 0) {
        double le[FDN_TELEMETRY_MAX_BUCKETS];
        for (unsigned i = 0; i < lay->nle; i++)
            le[i] = ns ? nearbyint(lay->le[i] * 1e9) : lay->le[i];
        /* bounds closer than a nanosecond collapse in ns: the default layout then */
        if (fdn__le_bounds_valid(le, lay->nle) && le[0] > 0)
            return fdn__histogram_new_le(le, lay->nle, ns ? 1e9 : 1.0);
    }
    if (ns) {
        double le[FDN_TELEMETRY_DEFAULT_NBUCKETS];
        for (unsigned i = 0; i < FDN_TELEMETRY_DEFAULT_NBUCKETS; i++)
            le[i] = nearbyint(default_le[i] * 1e9);
        return fdn__histogram_new_le(le, FDN_TELEMETRY_DEFAULT_NBUCKETS, 1e9);
    }
    static const double decades[] = {1e-3, 1e-2, 0.1, 1,   10,  100, 1e3,
                                     1e4,  1e5,  1e6, 1e7, 1e8, 1e9};
    return fdn__histogram_new_le(decades, sizeof decades / sizeof decades[0], 1.0);
}

static void *metric_new(const fdn_telemetry_family_t *f)
{
    switch (f->kind) {
    case FDN_TELEMETRY_COUNTER:
        return fdn__counter_new();
    case FDN_TELEMETRY_GAUGE:
        return fdn__gauge_new(true);
    case FDN_TELEMETRY_GAUGE_INT:
        return fdn__gauge_new(false);
    default:
        return fdn__histogram_new_le(f->le, f->nle, 1.0);
    }
}

static void metric_free(fdn_telemetry_kind_t kind, void *m)
{
    switch (kind) {
    case FDN_TELEMETRY_COUNTER:
        fdn__counter_free(m);
        break;
    case FDN_TELEMETRY_HISTOGRAM:
        fdn__histogram_free(m);
        break;
    default:
        fdn__gauge_free(m);
        break;
    }
}

static void metric_reset(fdn_telemetry_kind_t kind, void *m)
{
    switch (kind) {
    case FDN_TELEMETRY_COUNTER:
        fdn__counter_reset(m);
        break;
    case FDN_TELEMETRY_HISTOGRAM:
        fdn__histogram_reset(m);
        break;
    default:
        fdn__gauge_reset(m);
        break;
    }
}

static void series_free(const fdn_telemetry_family_t *f, tm_series_t *s)
{
    if (s == NULL)
        return;
    if (s->values != NULL)
        for (size_t i = 0; i < f->nlabels; i++)
            fdn__free(s->values[i]);
    fdn__free(s->values);
    metric_free(f->kind, s->metric);
    fdn__free(s);
}

static void family_free(fdn_telemetry_family_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f, f->series[i]);
    series_free(f, f->overflow);
    fdn__free(f->series);
    for (size_t i = 0; i < f->nlabels; i++)
        fdn__free(f->labels[i]);
    fdn__free(f->name);
    fdn__free(f->help);
    fdn__free(f);
}

void fdn__tm_families_free(fdn_telemetry_t *tm)
{
    for (size_t i = 0; i < tm->nfams; i++)
        family_free(tm->fams[i]);
    fdn__free(tm->fams);
    tm->fams = NULL;
    tm->nfams = tm->capfams = 0;
}

void fdn__tm_families_reset(fdn_telemetry_t *tm)
{
    fdn__mutex_lock(&tm->mu);
    for (size_t i = 0; i < tm->nfams; i++) {
        fdn_telemetry_family_t *f = tm->fams[i];
        for (size_t k = 0; k < f->nseries; k++)
            metric_reset(f->kind, f->series[k]->metric);
        if (f->overflow != NULL)
            metric_reset(f->kind, f->overflow->metric);
        atomic_store_explicit(&f->overflows, 0, memory_order_relaxed);
    }
    fdn__mutex_unlock(&tm->mu);
}

static bool same_shape(const fdn_telemetry_family_t *f, fdn_telemetry_kind_t kind,
                       const char *const *labels, size_t nlabels)
{
    if (f->kind != kind || f->nlabels != nlabels)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    return true;
}

static tm_series_t *series_new(const fdn_telemetry_family_t *f, const char *const *values)
{
    tm_series_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (f->nlabels > 0) {
        s->values = fdn__calloc(f->nlabels, sizeof(char *));
        if (s->values == NULL)
            goto oom;
        for (size_t i = 0; i < f->nlabels; i++) {
            s->values[i] = fdn__strdup(values != NULL ? values[i] : TM_OVERFLOW_VALUE);
            if (s->values[i] == NULL)
                goto oom;
        }
    }
    s->metric = metric_new(f);
    if (s->metric == NULL)
        goto oom;
    return s;
oom:
    series_free(f, s);
    return NULL;
}

static int resolve_locked(fdn_telemetry_t *tm, fdn_telemetry_family_t *f, void **out,
                          const char *const *values, size_t n, bool *overflowed)
    FDN_REQUIRES(tm->mu);

int fdn__tm_family_create(fdn_telemetry_t *tm, fdn_telemetry_family_t **out, const char *name,
                          const char *help, fdn_telemetry_kind_t kind, const char *const *labels,
                          size_t nlabels, uint32_t max_series, bool builtin)
{
    if (out == NULL || name == NULL || !fdn_telemetry_name_valid(name, strlen(name), false) ||
        kind < FDN_TELEMETRY_COUNTER || kind > FDN_TELEMETRY_HISTOGRAM ||
        nlabels > FDN_TELEMETRY_MAX_LABELS || (nlabels > 0 && labels == NULL))
        return FDN_EINVAL;
    for (size_t i = 0; i < nlabels; i++) {
        if (labels[i] == NULL || !fdn_telemetry_name_valid(labels[i], strlen(labels[i]), true))
            return FDN_EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(labels[i], labels[k]) == 0)
                return FDN_EINVAL;
    }
    if (!builtin && !atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    int rc = 0;
    fdn__mutex_lock(&tm->mu);
    for (size_t i = 0; i < tm->nfams; i++) {
        if (strcmp(tm->fams[i]->name, name) == 0) {
            if (same_shape(tm->fams[i], kind, labels, nlabels))
                *out = tm->fams[i];
            else
                rc = FDN_EEXIST;
            fdn__mutex_unlock(&tm->mu);
            return rc;
        }
    }
    fdn_telemetry_family_t *f = NULL;
    if (tm->nfams == tm->capfams) {
        size_t cap = tm->capfams ? tm->capfams * 2 : 16;
        fdn_telemetry_family_t **n = fdn__realloc(tm->fams, cap * sizeof(*n));
        if (n == NULL)
            goto oom;
        tm->fams = n;
        tm->capfams = cap;
    }
    f = fdn__calloc(1, sizeof(*f));
    if (f == NULL)
        goto oom;
    f->tm = tm;
    f->kind = kind;
    f->name = fdn__strdup(name);
    f->help = fdn__strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto oom;
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = fdn__strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto oom;
        f->nlabels = i + 1;
    }
    f->nlabels = nlabels;
    f->max_series = max_series > 0 ? max_series : tm->opts.max_series_per_family;
    if (kind == FDN_TELEMETRY_HISTOGRAM) {
        const tm_layout_t *lay = layout_find(tm, name);
        if (lay != NULL && lay->nle > 0) {
            memcpy(f->le, lay->le, lay->nle * sizeof(double));
            f->nle = lay->nle;
            f->le_configured = true;
        } else {
            memcpy(f->le, default_le, sizeof default_le);
            f->nle = FDN_TELEMETRY_DEFAULT_NBUCKETS;
        }
    }
    atomic_init(&f->overflows, 0);
    /* the family's series of the overflow family, made before f is published: out of memory,
     * nothing is (a family without it would hide its overflows) */
    bool ovf = false;
    if (nlabels > 0 && tm->f_overflow != NULL) {
        const char *v[1] = {name};
        void *m = NULL;
        if (resolve_locked(tm, tm->f_overflow, &m, v, 1, &ovf) != 0)
            goto oom;
        f->overflow_counter = m;
    }
    tm->fams[tm->nfams++] = f;
    tm->shape++;
    fdn__mutex_unlock(&tm->mu);
    if (ovf)
        fdn_counter_inc(tm->f_overflow->overflow_counter);
    *out = f;
    return 0;
oom:
    family_free(f);
    fdn__mutex_unlock(&tm->mu);
    return FDN_ENOMEM;
}

int fdn_telemetry_family(fdn_telemetry_t *tm, fdn_telemetry_family_t **out, const char *name,
                         const char *help, fdn_telemetry_kind_t kind,
                         const char *const *label_names, size_t nlabels, uint32_t max_series)
{
    if (tm == NULL) {
        if (out != NULL)
            *out = NULL;
        return 0;
    }
    return fdn__tm_family_create(tm, out, name, help, kind, label_names, nlabels, max_series,
                                 false);
}

fdn_counter_t *fdn__tm_builtin_counter(fdn_telemetry_t *tm, const char *name, const char *help)
{
    fdn_telemetry_family_t *f = NULL;
    fdn_counter_t *c = NULL;
    if (fdn__tm_family_create(tm, &f, name, help, FDN_TELEMETRY_COUNTER, NULL, 0, 1, true) < 0 ||
        fdn_telemetry_family_counter(f, &c, NULL, 0) < 0)
        return NULL;
    return c;
}

/* The series of `values` in f (a family of tm), made if new (values checked by the caller).
 * *overflowed: the family was full, *out is its overflow series (the caller counts it once
 * tm->mu is released). */
static int resolve_locked(fdn_telemetry_t *tm, fdn_telemetry_family_t *f, void **out,
                          const char *const *values, size_t n, bool *overflowed)
    FDN_REQUIRES(tm->mu)
{
    FDN_ASSERT(f->tm == tm);
    int rc = 0;
    /* a label set of every value "__overflow__" is the overflow series itself (a series of
     * its own would be a second series with the same labels in the exposition); asked for by
     * name, it is not an overflow */
    size_t novf = 0;
    while (n > 0 && novf < n && strcmp(values[novf], TM_OVERFLOW_VALUE) == 0)
        novf++;
    bool want_overflow = n > 0 && novf == n;
    for (size_t i = 0; i < f->nseries && !want_overflow; i++) {
        tm_series_t *s = f->series[i];
        size_t k = 0;
        while (k < n && strcmp(s->values[k], values[k]) == 0)
            k++;
        if (k == n) {
            *out = s->metric;
            goto done;
        }
    }
    if (f->nseries >= f->max_series || want_overflow) {
        if (f->overflow == NULL) {
            f->overflow = series_new(f, NULL);
            tm->shape++;
        }
        if (f->overflow == NULL) {
            rc = FDN_ENOMEM;
            goto done;
        }
        if (!want_overflow) {
            atomic_fetch_add_explicit(&f->overflows, 1, memory_order_relaxed);
            *overflowed = true;
        }
        *out = f->overflow->metric;
        goto done;
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        tm_series_t **ns = fdn__realloc(f->series, cap * sizeof(*ns));
        if (ns == NULL) {
            rc = FDN_ENOMEM;
            goto done;
        }
        f->series = ns;
        f->cap = cap;
    }
    tm_series_t *s = series_new(f, values);
    if (s == NULL) {
        rc = FDN_ENOMEM;
        goto done;
    }
    f->series[f->nseries++] = s;
    tm->shape++;
    *out = s->metric;
done:
    return rc;
}

static int resolve(fdn_telemetry_family_t *f, fdn_telemetry_kind_t want, void **out,
                   const char *const *values, size_t n)
{
    *out = NULL;
    if (f == NULL)
        return 0;
    bool kind_ok =
        f->kind == want || (want == FDN_TELEMETRY_GAUGE && f->kind == FDN_TELEMETRY_GAUGE_INT);
    if (!kind_ok || n != f->nlabels || (n > 0 && values == NULL))
        return FDN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (values[i] == NULL)
            return FDN_EINVAL;
    if (n == 0) { /* collectors set unlabelled series on every scrape: no lock once made */
        void *m = atomic_load_explicit(&f->unlabelled, memory_order_acquire);
        if (m != NULL) {
            *out = m;
            return 0;
        }
    }
    fdn_telemetry_t *tm = f->tm;
    bool overflowed = false;
    fdn__mutex_lock(&tm->mu);
    int rc = resolve_locked(tm, f, out, values, n, &overflowed);
    fdn__mutex_unlock(&tm->mu);
    if (rc == 0 && n == 0 && !overflowed)
        atomic_store_explicit(&f->unlabelled, *out, memory_order_release);
    if (overflowed)
        fdn_counter_inc(f->overflow_counter);
    return rc;
}

int fdn_telemetry_family_counter(fdn_telemetry_family_t *fam, fdn_counter_t **out,
                                 const char *const *values, size_t n)
{
    if (out == NULL) /* refused before anything is made */
        return FDN_EINVAL;
    void *m = NULL;
    int rc = resolve(fam, FDN_TELEMETRY_COUNTER, &m, values, n);
    *out = m;
    return rc;
}

int fdn_telemetry_family_gauge(fdn_telemetry_family_t *fam, fdn_gauge_t **out,
                               const char *const *values, size_t n)
{
    if (out == NULL) /* refused before anything is made */
        return FDN_EINVAL;
    void *m = NULL;
    int rc = resolve(fam, FDN_TELEMETRY_GAUGE, &m, values, n);
    *out = m;
    return rc;
}

int fdn_telemetry_family_histogram(fdn_telemetry_family_t *fam, fdn_histogram_t **out,
                                   const char *const *values, size_t n)
{
    if (out == NULL) /* refused before anything is made */
        return FDN_EINVAL;
    void *m = NULL;
    int rc = resolve(fam, FDN_TELEMETRY_HISTOGRAM, &m, values, n);
    *out = m;
    return rc;
}

uint64_t fdn_telemetry_family_overflows(const fdn_telemetry_family_t *fam)
{
    if (fam == NULL)
        return 0;
    return atomic_load_explicit(&((fdn_telemetry_family_t *)fam)->overflows, memory_order_relaxed);
}

int fdn_telemetry_family_buckets(fdn_telemetry_family_t *fam, const double *bounds, size_t n)
{
    if (fam == NULL)
        return 0;
    if (fam->kind != FDN_TELEMETRY_HISTOGRAM || !fdn__le_bounds_valid(bounds, n))
        return FDN_EINVAL;
    fdn_telemetry_t *tm = fam->tm;
    int rc = 0;
    fdn__mutex_lock(&tm->mu);
    if (fam->le_configured) {
        /* the operator's layout (telemetry.buckets) wins over the code's */
    } else if (fam->nseries > 0 || fam->overflow != NULL) {
        rc = FDN_EBUSY;
    } else {
        memcpy(fam->le, bounds, n * sizeof(double));
        fam->nle = (unsigned)n;
        tm->shape++;
    }
    fdn__mutex_unlock(&tm->mu);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Collectors                                                                            */

/* The instances whose collectors this thread is running, innermost first (frames on the
 * stack of fdn__tm_run_collectors). Changing the list of one of them would take its
 * coll_lock for writing under this thread's own read lock (a deadlock), and running them
 * again would recurse. */
typedef struct coll_frame {
    const fdn_telemetry_t *tm;
    struct coll_frame *up;
} coll_frame_t;

static _Thread_local coll_frame_t *tls_collecting;

static bool collecting(const fdn_telemetry_t *tm)
{
    for (const coll_frame_t *f = tls_collecting; f != NULL; f = f->up)
        if (f->tm == tm)
            return true;
    return false;
}

int fdn_telemetry_add_collector(fdn_telemetry_t *tm, fdn_telemetry_collector_fn fn, void *user)
{
    if (tm == NULL)
        return 0;
    if (fn == NULL)
        return FDN_EINVAL;
    if (collecting(tm))
        return FDN_EBUSY;
    int rc = 0;
    pthread_rwlock_wrlock(&tm->coll_lock);
    for (size_t i = 0; i < tm->ncoll && rc == 0; i++)
        if (tm->coll[i].fn == fn && tm->coll[i].user == user)
            rc = FDN_EEXIST;
    if (rc == 0 && tm->ncoll == TM_MAX_COLLECTORS)
        rc = FDN_ENOBUFS;
    if (rc == 0) {
        tm->coll[tm->ncoll].fn = fn;
        tm->coll[tm->ncoll].user = user;
        tm->ncoll++;
    }
    pthread_rwlock_unlock(&tm->coll_lock);
    return rc;
}

int fdn_telemetry_remove_collector(fdn_telemetry_t *tm, fdn_telemetry_collector_fn fn, void *user)
{
    if (tm == NULL)
        return 0;
    if (collecting(tm))
        return FDN_EBUSY;
    int rc = FDN_ENOENT;
    pthread_rwlock_wrlock(&tm->coll_lock);
    for (size_t i = 0; i < tm->ncoll; i++) {
        if (tm->coll[i].fn == fn && tm->coll[i].user == user) {
            memmove(&tm->coll[i], &tm->coll[i + 1], (tm->ncoll - i - 1) * sizeof(tm->coll[0]));
            tm->ncoll--;
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&tm->coll_lock);
    return rc;
}

void fdn__tm_run_collectors(fdn_telemetry_t *tm)
{
    if (collecting(tm))
        return; /* a snapshot or scrape from one of its collectors: they are running */
    coll_frame_t frame = {tm, tls_collecting};
    pthread_rwlock_rdlock(&tm->coll_lock);
    tls_collecting = &frame;
    for (size_t i = 0; i < tm->ncoll; i++)
        tm->coll[i].fn(tm, tm->coll[i].user);
    tls_collecting = frame.up;
    pthread_rwlock_unlock(&tm->coll_lock);
}

/* ------------------------------------------------------------------------------------ */
/* Events kept out of the exposition                                                     */

int fdn_telemetry_unexport_event(fdn_telemetry_t *tm, const char *prefix)
{
    if (tm == NULL)
        return 0;
    if (prefix == NULL || !fdn_telemetry_event_name_valid(prefix, strlen(prefix)))
        return FDN_EINVAL;
    char *c = fdn__strdup(prefix);
    if (c == NULL)
        return FDN_ENOMEM;
    int rc = 0;
    fdn__mutex_lock(&tm->mu);
    for (size_t i = 0; i < tm->nunexported && rc == 0; i++)
        if (strcmp(tm->unexported[i], prefix) == 0)
            rc = 1; /* already there */
    if (rc == 0 && tm->nunexported == TM_MAX_COLLECTORS)
        rc = FDN_ENOBUFS;
    if (rc == 0) {
        tm->unexported[tm->nunexported++] = c;
        tm->shape++;
    }
    fdn__mutex_unlock(&tm->mu);
    if (rc != 0)
        fdn__free(c);
    return rc < 0 ? rc : 0;
}

bool fdn__tm_event_exported_locked(fdn_telemetry_t *tm, const char *event) FDN_REQUIRES(tm->mu)
{
    for (size_t i = 0; i < tm->nunexported; i++) {
        size_t n = strlen(tm->unexported[i]);
        if (strncmp(event, tm->unexported[i], n) == 0 && (event[n] == '\0' || event[n] == '.'))
            return false;
    }
    return true;
}

bool fdn__tm_event_exported(fdn_telemetry_t *tm, const char *event)
{
    fdn__mutex_lock(&tm->mu);
    bool ok = fdn__tm_event_exported_locked(tm, event);
    fdn__mutex_unlock(&tm->mu);
    return ok;
}

void fdn__tm_unexported_free(fdn_telemetry_t *tm)
{
    for (size_t i = 0; i < tm->nunexported; i++)
        fdn__free(tm->unexported[i]);
    tm->nunexported = 0;
}

/* ------------------------------------------------------------------------------------ */
/* The operator's layouts and summaries (telemetry.buckets, telemetry.summaries)          */

/* The layout entry of `name`, made when missing (tm->mu held). NULL on OOM. */
static tm_layout_t *layout_get(fdn_telemetry_t *tm, const char *name) FDN_REQUIRES(tm->mu)
{
    for (size_t i = 0; i < tm->nlayouts; i++)
        if (strcmp(tm->layouts[i].name, name) == 0)
            return &tm->layouts[i];
    char *c = fdn__strdup(name);
    tm_layout_t *n = c != NULL ? fdn__realloc(tm->layouts, (tm->nlayouts + 1) * sizeof(*n)) : NULL;
    if (n == NULL) {
        fdn__free(c);
        return NULL;
    }
    tm->layouts = n;
    memset(&n[tm->nlayouts], 0, sizeof(*n));
    n[tm->nlayouts].name = c;
    return &n[tm->nlayouts++];
}

int fdn__tm_configure_buckets(fdn_telemetry_t *tm, const char *name, const double *le, size_t n)
{
    if (tm == NULL)
        return 0;
    if (name == NULL || !fdn_telemetry_name_valid(name, strlen(name), false) ||
        !fdn__le_bounds_valid(le, n) || !(le[0] > 0))
        return FDN_EINVAL;
    int rc = 0;
    fdn__mutex_lock(&tm->mu);
    fdn_telemetry_family_t *f = NULL;
    for (size_t i = 0; i < tm->nfams && f == NULL; i++)
        if (strcmp(tm->fams[i]->name, name) == 0)
            f = tm->fams[i];
    if (f != NULL && (f->kind != FDN_TELEMETRY_HISTOGRAM)) {
        rc = FDN_EINVAL;
    } else if (f != NULL && (f->nseries > 0 || f->overflow != NULL)) {
        rc = FDN_EBUSY;
    } else {
        tm_layout_t *lay = layout_get(tm, name);
        if (lay == NULL) {
            rc = FDN_ENOMEM;
        } else {
            memcpy(lay->le, le, n * sizeof(double));
            lay->nle = (unsigned)n;
            tm->shape++;
            if (f != NULL) {
                memcpy(f->le, le, n * sizeof(double));
                f->nle = (unsigned)n;
                f->le_configured = true;
            }
        }
    }
    fdn__mutex_unlock(&tm->mu);
    return rc;
}

int fdn__tm_configure_summary(fdn_telemetry_t *tm, const char *name)
{
    if (tm == NULL)
        return 0;
    if (name == NULL || !fdn_telemetry_name_valid(name, strlen(name), false))
        return FDN_EINVAL;
    fdn__mutex_lock(&tm->mu);
    tm_layout_t *lay = layout_get(tm, name);
    if (lay != NULL) {
        lay->summary = true;
        tm->shape++;
    }
    fdn__mutex_unlock(&tm->mu);
    return lay != NULL ? 0 : FDN_ENOMEM;
}

void fdn__tm_summary_name(fdn__buf_t *out, const char *name)
{
    static const char *const units[] = {"_seconds", "_bytes"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t k = strlen(units[i]);
        if (n > k && strcmp(name + n - k, units[i]) == 0) {
            fdn__buf_put(out, name, n - k);
            fdn__buf_puts(out, "_quantiles");
            fdn__buf_puts(out, units[i]);
            return;
        }
    }
    fdn__buf_puts(out, name);
    fdn__buf_puts(out, "_quantiles");
}

void fdn__tm_layouts_free(fdn_telemetry_t *tm)
{
    for (size_t i = 0; i < tm->nlayouts; i++)
        fdn__free(tm->layouts[i].name);
    fdn__free(tm->layouts);
    tm->layouts = NULL;
    tm->nlayouts = 0;
}
