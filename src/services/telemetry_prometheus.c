/*
 * DESIGN: the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 writers of a
 * telemetry instance: each format's cache of its text, and the public writers. The plan of
 * the text is telemetry_expo_plan.c, its lines telemetry_expo_lines.c, its numbers
 * telemetry_numfmt.c (telemetry_expo_int.h).
 *
 * Part of libfdn (not of the optional fdn_admin library), so a program that does not serve
 * HTTP can still write the exposition, e.g. to a file.
 *
 * Cache (GET /metrics at wire speed): each format keeps a plan of its text in tm->expo[om]:
 * the records (one per metric family, sorted and de-duplicated as below), each with its
 * HELP/TYPE text and one part per series holding that series' rendered lines and the value
 * key they were rendered from (a counter's value, a gauge's bits, a histogram's version:
 * resets, count, exemplars written; fdn__histogram_version). A scrape runs the collectors,
 * then under tm->mu compares every written part's key with its metric now and renders again
 * only the parts that differ, then the process collector's values likewise (their parts are
 * listed apart: c->procs), and assembles the text again only when a part changed. A
 * histogram part keeps its lines' text up to each value (tm_hist_pre_t), so rendering it
 * again appends those and the numbers. Counters and gauges are rendered from the very value
 * compared, a histogram from a copy taken after its version was read (an observation in
 * between only makes the next comparison fail): a scrape never shows a value older than one
 * read when it began, and a histogram is copied shard by shard under each shard's lock as a
 * snapshot does (never torn). Nothing is added to updates: the comparison reads the values.
 * The plan is listed again (as a snapshot of tm would list it, then sorted) only when
 * tm->shape moved: a family, series, event entry or key added, entries removed, a prefix
 * unexported, a layout or summary configured (all under tm->mu, none a hot path); it keeps
 * pointers to series and entries, valid while tm->shape holds, used only under tm->mu.
 * Process metrics: the /proc figures come from telemetry_process.c's cache (at most 1 s old);
 * the CPU time (process_cpu_seconds_total) is read under tm->expo_mu and shared by the scrapes
 * less than FDN__TM_PROCESS_CPU_MAX_AGE_NS (1 ms on tm->clock) after its read (tm->cpu): under
 * a scrape storm getrusage, which walks every thread of the process, was ~1.4 us of a ~16 us
 * GET /metrics. So that one value may be up to 1 ms older than the scrape; it never goes
 * backwards between two scrapes (read and rendered under the same lock).
 * Threads: any; tm->expo_mu (taken before tm->mu) serialises scrapes. It is held a few
 * microseconds and is glibc's adaptive kind (telemetry.c), so a scrape that finds it taken
 * spins briefly before it sleeps: under wrk -c32 the two server threads met on it 0.08-0.15
 * times a request, each meeting a futex wait, a wake-up and two context switches. The text
 * is an immutable reference-counted block (blob_t): the sink is called after both locks are
 * released, on a text no other scrape changes, and fdn_telemetry_text_acquire hands out a
 * reference to the block itself (no copy: GET /metrics gives it to libmicrohttpd, whose
 * free callback releases it), freed by whichever of the cache and the holders lets go last.
 * The cache keeps the last text and up to TM_EXPO_SPARES replaced ones (a reference each);
 * a block nobody else holds any more (refs == 1, read under expo_mu; references are handed
 * out only to the last text and only under expo_mu, so none can appear) is where the next
 * text is written: only the parts rendered since the text it holds, up to the first part
 * whose length changed since, and everything after that (assemble). A held text is never
 * written, and a scrape neither allocates nor copies 12-15 KB when nothing holds the last one.
 */
#include <fdn/error.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/telemetry.h>

#include "services/telemetry_expo_int.h"
#include "core/alloc.h"

/* The value key of part p (a series) now; false when it cannot be relied on (a histogram
 * was reset meanwhile). */
static bool part_key(const part_t *p, uint64_t k[3])
{
    k[0] = k[1] = k[2] = 0;
    switch (p->x.kind) {
    case FDN_TELEMETRY_COUNTER:
        k[0] = fdn_counter_value(p->metric);
        return true;
    case FDN_TELEMETRY_HISTOGRAM: {
        tm_hist_version_t v;
        bool ok = fdn__histogram_version(p->metric, &v);
        k[0] = v.resets;
        k[1] = v.count;
        k[2] = v.exemplars;
        return ok;
    }
    case FDN_TELEMETRY_GAUGE_INT:
        k[0] = (uint64_t)fdn__gauge_int(p->metric);
        return true;
    default: {
        double d = fdn_gauge_value(p->metric);
        memcpy(&k[0], &d, sizeof d);
        return true;
    }
    }
}

/* p's sample values: a counter's or gauge's from its key (what it is compared with next
 * time), a histogram's from a copy taken after the key was read (a newer copy only makes the
 * next comparison fail). */
static void part_fill(part_t *p, fill_t *f)
{
    fdn_telemetry_sample_t *x = &p->x;
    switch (x->kind) {
    case FDN_TELEMETRY_COUNTER:
        x->counter = p->key[0];
        break;
    case FDN_TELEMETRY_GAUGE_INT:
        x->gauge_int = (int64_t)p->key[0];
        x->gauge = (double)x->gauge_int;
        break;
    case FDN_TELEMETRY_HISTOGRAM: {
        const tm_hist_copy_t *c = &f->copy;
        if (p->what == PART_SUMMARY) {
            fdn__histogram_copy(p->metric, &f->copy);
            fdn__hist_copy_stats(c, &x->hist);
        } else { /* the quantiles only summaries show: no log-linear buckets */
            fdn__histogram_copy_le(p->metric, &f->copy);
            memset(&x->hist, 0, sizeof(x->hist));
            x->hist.count = c->count;
            x->hist.sum = c->sum;
        }
        x->hist_div = c->nle > 0 && c->le_div > 0.0 ? c->le_div : 1.0;
        x->nbuckets = 0;
        x->bucket_le = NULL;
        x->bucket_le_count = NULL;
        x->bucket_exemplar = NULL;
        if (c->nle == 0)
            break;
        uint64_t acc = 0;
        for (unsigned i = 0; i < c->nle; i++) {
            f->le[i] = c->le[i] / x->hist_div; /* as telemetry_snapshot.c divides */
            acc += c->le_n[i];
            f->cum[i] = acc;
        }
        x->nbuckets = c->nle;
        x->bucket_le = f->le;
        x->bucket_le_count = f->cum;
        if (fdn__histogram_exemplars(p->metric, f->ex)) {
            for (unsigned i = 0; i <= c->nle; i++) {
                memset(&f->exo[i], 0, sizeof(f->exo[i]));
                if (!f->ex[i].set)
                    continue;
                f->exo[i].label_name = f->ex[i].name;
                f->exo[i].label_value = f->ex[i].value;
                f->exo[i].value = f->ex[i].v / x->hist_div;
                f->exo[i].timestamp_s = (double)f->ex[i].wall_ns / 1e9;
            }
            x->bucket_exemplar = f->exo;
        }
        break;
    }
    default:
        memcpy(&x->gauge, &p->key[0], sizeof x->gauge);
        break;
    }
}

/* Render p's lines (record r) again. */
static void part_render(tm_expo_t *c, const rec_t *r, part_t *p, const fdn__tm_process_t *proc)
{
    fdn__buf_t *b = &p->text;
    size_t was = b->len;
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
    const char *name = r->sname != NULL ? r->sname : "";
    if (p->what == PART_PROCESS) {
        bputs(b, name);
        bputs(b, " ");
        fdn__tm_put_short(b, fdn__tm_proc_value(proc, p->proc));
        bputs(b, "\n");
    } else {
        part_fill(p, c->fill);
        if (p->what == PART_SUMMARY)
            fdn__tm_summary_lines(b, name, &p->lab, &p->x);
        else
            fdn__tm_sample_lines(b, name, &p->lab, &p->x, c->om, &p->pre);
    }
    c->oom = c->oom || b->oom;
    p->at = c->serial + 1; /* the next assembly shows it */
    if (b->len != was)
        p->len_at = c->serial + 1;
}

/* Compare every written part with its metric's value now and render those that differ;
 * true when any did. proc: NULL to leave the process metrics, else to do only those. */
static bool refresh(tm_expo_t *c, const fdn__tm_process_t *proc)
{
    bool changed = false;
    if (proc != NULL) { /* the process metrics' parts only */
        for (size_t i = 0; i < c->nprocs && !c->oom; i++) {
            part_t *p = c->procs[i].p;
            uint64_t key[3] = {0, 0, 0};
            double v = fdn__tm_proc_value(proc, p->proc);
            memcpy(&key[0], &v, sizeof v);
            if (p->valid && memcmp(key, p->key, sizeof key) == 0)
                continue;
            memcpy(p->key, key, sizeof key);
            p->valid = true;
            part_render(c, c->procs[i].r, p, proc);
            changed = true;
        }
        return changed;
    }
    for (size_t i = 0; i < c->n && !c->oom; i++) {
        rec_t *r = &c->r[i];
        if (r->skipped)
            continue;
        for (size_t k = 0; k < r->nparts && !c->oom; k++) {
            part_t *p = &r->parts[k];
            if (p->what == PART_PROCESS)
                continue;
            uint64_t key[3] = {0, 0, 0};
            bool ok = part_key(p, key);
            if (p->valid && ok && memcmp(key, p->key, sizeof key) == 0)
                continue;
            memcpy(p->key, key, sizeof key);
            p->valid = ok;
            part_render(c, r, p, proc);
            changed = true;
        }
    }
    return changed;
}

static void blob_unref(blob_t *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        fdn__free(b);
}

static const char skip_comment[] = "# skipped duplicate metric name ";

/* A block of c's that nobody else holds and that len + 1 bytes fit in, to write the next
 * text into: the last text or a spare, the most recent first (it differs least); NULL when
 * none. A holder's release (acq_rel) happens before the acquire load that sees 1, so its
 * reads are over; nobody can take a new reference, as references are handed out only to
 * c->out and under expo_mu. */
static blob_t *reusable(tm_expo_t *c, size_t len)
{
    blob_t *best = NULL;
    blob_t *cand[1 + TM_EXPO_SPARES];
    cand[0] = c->out;
    memcpy(cand + 1, c->spare, sizeof c->spare);
    for (size_t i = 0; i < 1 + TM_EXPO_SPARES; i++) {
        blob_t *b = cand[i];
        if (b == NULL || b->cap < len + 1 ||
            atomic_load_explicit(&b->refs, memory_order_acquire) != 1)
            continue;
        if (best == NULL || b->serial > best->serial)
            best = b;
    }
    return best;
}

/* The whole text, from every record's parts, as c->out (serial c->serial + 1). Into a block
 * only the cache holds when there is one (the spares: texts replaced earlier, kept until
 * their holders let go): a block that holds assembly S keeps every byte before the first
 * part whose length changed after S, and within those only the parts rendered after S are
 * written again (a scrape under load changes ~3 of ~180 parts: the /metrics route's
 * counter and duration histogram, the CPU time); from that first part on, everything is
 * copied. Else (every block held, or too small, or the plan was listed again after S) a new
 * block, all copied. Either way the text is byte for byte the fresh assembly. */
static void assemble(tm_expo_t *c)
{
    uint64_t next = c->serial + 1;
    size_t len = c->om ? 6 : 0;
    for (size_t i = 0; i < c->n; i++) {
        const rec_t *r = &c->r[i];
        if (r->skipped) {
            if (r->comment)
                len += sizeof skip_comment - 1 + strlen(r->name) + 1;
            continue;
        }
        len += r->head.len;
        for (size_t k = 0; k < r->nparts; k++)
            len += r->parts[k].text.len;
    }
    blob_t *b = reusable(c, len);
    uint64_t since = 0; /* b holds assembly `since`: parts not rendered after it are there */
    bool all = true;    /* copy everything from here on */
    if (b != NULL && b->serial >= c->layout_at && b->serial > 0) {
        since = b->serial;
        all = false;
    }
    if (b == NULL) {
        size_t cap = len + len / 8 + 64; /* room for the next texts, a little longer */
        b = fdn__malloc(sizeof(*b) + cap);
        if (b == NULL) {
            c->oom = true;
            return;
        }
        atomic_init(&b->refs, 1);
        b->cap = cap;
    }
    char *o = b->p;
    for (size_t i = 0; i < c->n; i++) {
        const rec_t *r = &c->r[i];
        if (r->skipped) {
            if (r->comment) {
                size_t nl = strlen(r->name);
                if (all) {
                    memcpy(o, skip_comment, sizeof skip_comment - 1);
                    memcpy(o + sizeof skip_comment - 1, r->name, nl);
                    o[sizeof skip_comment - 1 + nl] = '\n';
                }
                o += sizeof skip_comment - 1 + nl + 1;
            }
            continue;
        }
        if (r->head.len > 0) {
            if (all)
                memcpy(o, r->head.p, r->head.len);
            o += r->head.len;
        }
        for (size_t k = 0; k < r->nparts; k++) {
            const part_t *p = &r->parts[k];
            if (!all && p->len_at > since)
                all = true;
            if (p->text.len > 0 && (all || p->at > since))
                memcpy(o, p->text.p, p->text.len);
            o += p->text.len;
        }
    }
    if (c->om) {
        memcpy(o, "# EOF\n", 6);
        o += 6;
    }
    *o = '\0';
    b->len = (size_t)(o - b->p);
    b->serial = next;
    c->serial = next;
    if (b == c->out)
        return;
    /* b leaves the spares (if it was one); the text it replaces joins them, the oldest
     * spare going when they are full */
    for (size_t i = 0; i < TM_EXPO_SPARES; i++)
        if (c->spare[i] == b)
            c->spare[i] = NULL;
    if (c->out != NULL) {
        size_t at = 0;
        for (size_t i = 0; i < TM_EXPO_SPARES; i++) {
            if (c->spare[i] == NULL) {
                at = i;
                break;
            }
            if (c->spare[i]->serial < c->spare[at]->serial)
                at = i;
        }
        blob_unref(c->spare[at]);
        c->spare[at] = c->out;
    }
    c->out = b;
}

static void expo_free(tm_expo_t *c)
{
    if (c == NULL)
        return;
    fdn__tm_plan_clear(c);
    fdn__free(c->r);
    fdn__free(c->entries);
    fdn__free(c->fill);
    blob_unref(c->out);
    for (size_t i = 0; i < TM_EXPO_SPARES; i++)
        blob_unref(c->spare[i]);
    fdn__free(c);
}

void fdn__tm_expo_free(fdn_telemetry_t *tm) FDN_NO_THREAD_SAFETY_ANALYSIS /* destroy: alone */
{
    for (size_t i = 0; i < 2; i++) {
        expo_free(tm->expo[i]);
        tm->expo[i] = NULL;
    }
}

/* Bring c (tm's cache, or a private one) up to date: list the records again when tm->shape
 * moved, then render again only the parts whose value changed, and the whole text when any
 * did. Out of memory: c->oom. */
static void expo_update(fdn_telemetry_t *tm, tm_expo_t *c, const fdn__tm_process_t *proc,
                        unsigned avail)
{
    bool changed = false;
    fdn__mutex_lock(&tm->mu);
    if (!c->built || c->shape != tm->shape || c->proc_avail != avail) {
        fdn__tm_plan_build(c, tm, avail);
        c->layout_at = c->serial + 1; /* no earlier text has this layout */
        changed = true;
    }
    if (!c->oom) {
        /* retention's activity sampling, as a snapshot does */
        int64_t now = fdn_clock_mono_ns(tm->clock);
        for (size_t i = 0; i < c->nentries; i++)
            fdn__tm_entry_sample_activity(tm, c->entries[i], now);
        changed = refresh(c, NULL) || changed;
    }
    fdn__mutex_unlock(&tm->mu);
    if (!c->oom)
        changed = refresh(c, proc) || changed;
    if (!c->oom && (changed || c->out == NULL))
        assemble(c);
}

static tm_expo_t *expo_new(bool om)
{
    tm_expo_t *c = fdn__calloc(1, sizeof(*c));
    fill_t *f = c != NULL ? fdn__malloc(sizeof(*f)) : NULL;
    if (f == NULL) {
        fdn__free(c);
        return NULL;
    }
    c->fill = f;
    c->om = om;
    return c;
}

/* Which process metrics are available (bit i: fdn__tm_proc_metrics[i]). */
static unsigned process_avail(const fdn__tm_process_t *proc)
{
    unsigned avail = 0;
    for (size_t i = 0; i < TM_NPROC; i++)
        if (!(fdn__tm_proc_value(proc, i) < 0))
            avail |= 1u << i;
    return avail;
}

/* tm's CPU time for a scrape: the last read when it is less than FDN__TM_PROCESS_CPU_MAX_AGE_NS
 * old on tm's clock, else a new one. Read under expo_mu, so the scrapes, which render under
 * it too, show it in the order it was read (never a smaller value after a larger one). */
static double cpu_shared(fdn_telemetry_t *tm) FDN_REQUIRES(tm->expo_mu)
{
    int64_t now = fdn_clock_mono_ns(tm->clock);
    if (!tm->cpu.valid || now < tm->cpu.at_ns ||
        now - tm->cpu.at_ns >= (int64_t)FDN__TM_PROCESS_CPU_MAX_AGE_NS) {
        tm->cpu.v = fdn__tm_process_cpu();
        tm->cpu.at_ns = now;
        tm->cpu.valid = true;
    }
    return tm->cpu.v;
}

/* The text of tm now, from its cache; a reference to it in *out. */
static int expo_text(fdn_telemetry_t *tm, bool om, blob_t **out)
{
    fdn__tm_process_t proc;
    fdn__tm_process_read_proc(&proc); /* the /proc figures: no scrape lock held */
    int rc = 0;
    fdn__mutex_lock(&tm->expo_mu);
    proc.cpu_seconds = cpu_shared(tm);
    unsigned avail = process_avail(&proc);
    tm_expo_t *c = tm->expo[om];
    if (c == NULL)
        c = tm->expo[om] = expo_new(om);
    if (c != NULL)
        expo_update(tm, c, &proc, avail);
    if (c == NULL || c->oom) {
        expo_free(c); /* the next scrape starts again */
        tm->expo[om] = NULL;
        rc = FDN_ENOMEM;
    } else {
        atomic_fetch_add_explicit(&c->out->refs, 1, memory_order_relaxed);
        *out = c->out;
    }
    fdn__mutex_unlock(&tm->expo_mu);
    return rc;
}

int fdn__tm_write_uncached(fdn_telemetry_t *tm, bool om, fdn_telemetry_write_fn write, void *user)
{
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    fdn__tm_run_collectors(tm);
    fdn__tm_process_t proc;
    fdn__tm_process_read(&proc); /* a fresh render: CPU time read now */
    unsigned avail = process_avail(&proc);
    tm_expo_t *c = expo_new(om);
    if (c != NULL)
        expo_update(tm, c, &proc, avail);
    int rc = c == NULL || c->oom ? FDN_ENOMEM : write(c->out->p, c->out->len, user);
    expo_free(c);
    return rc;
}

static int write_exposition(fdn_telemetry_t *tm, bool om, fdn_telemetry_write_fn write, void *user)
{
    if (write == NULL)
        return FDN_EINVAL;
    if (tm == NULL)
        return 0;
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    fdn__tm_run_collectors(tm);
    blob_t *b = NULL;
    int rc = expo_text(tm, om, &b);
    if (rc < 0)
        return rc;
    /* the sink runs with no telemetry lock held, on a text no scrape changes */
    rc = b->len > 0 ? write(b->p, b->len, user) : 0;
    blob_unref(b);
    return rc;
}

int fdn_telemetry_write_prometheus(fdn_telemetry_t *tm, fdn_telemetry_write_fn write, void *user)
{
    return write_exposition(tm, false, write, user);
}

int fdn_telemetry_write_openmetrics(fdn_telemetry_t *tm, fdn_telemetry_write_fn write, void *user)
{
    return write_exposition(tm, true, write, user);
}

int fdn_telemetry_text_acquire(fdn_telemetry_t *tm, bool openmetrics, const char **out,
                               size_t *out_len)
{
    if (tm == NULL || out == NULL || out_len == NULL)
        return FDN_EINVAL;
    if (!atomic_load_explicit(&tm->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    fdn__tm_run_collectors(tm);
    blob_t *b = NULL;
    int rc = expo_text(tm, openmetrics, &b);
    if (rc < 0)
        return rc;
    *out = b->p;
    *out_len = b->len;
    return 0;
}

void fdn_telemetry_text_release(const char *text)
{
    if (text != NULL)
        blob_unref((blob_t *)(void *)(uintptr_t)(text - offsetof(blob_t, p)));
}
