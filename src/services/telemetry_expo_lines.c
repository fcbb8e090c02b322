/*
 * DESIGN: the lines of the Prometheus 0.0.4 and OpenMetrics 1.0 texts (telemetry_expo_int.h):
 * HELP and TYPE, a series' samples (counter, gauge, histogram buckets with `le`, `_sum`,
 * `_count`; OpenMetrics buckets with their exemplars), a summary's quantiles, label text and
 * escaping. Label values escape \\, " and newline, HELP texts \\ and newline, and " too in
 * OpenMetrics (its ABNF: a HELP text is an escaped-string, whose plain characters exclude the
 * double quote; the 0.0.4 text keeps it as it is); invalid UTF-8 becomes U+FFFD (the formats
 * require UTF-8). Pure functions of their arguments, no state.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/telemetry.h>

#include "services/telemetry_expo_int.h"
#include "core/alloc.h"
#include "core/utf8.h"

static void b_fmt_u64(fdn__buf_t *b, uint64_t v)
{
    char t[24];
    char *p = u64_digits(t + sizeof t, v);
    bput(b, p, (size_t)(t + sizeof t - p));
}

static void b_fmt_dbl(fdn__buf_t *b, double v)
{
    if (isnan(v)) {
        bputs(b, "NaN");
    } else if (isinf(v)) {
        bputs(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char t[40];
        int n = snprintf(t, sizeof(t), "%.17g", v);
        bput(b, t, (size_t)n);
    }
}

/* escape: label values escape \ " and newline; help escapes \ and newline */
void fdn__tm_put_escaped(fdn__buf_t *b, const char *s, bool quote)
{
    size_t len = strlen(s);
    for (const char *end = s + len; *s; s++) {
        const char *run = s; /* plain bytes go out in one append */
        while (*s != '\0' && (unsigned char)*s < 0x80 && *s != '\\' && *s != '\n' &&
               !(quote && *s == '"'))
            s++;
        if (s > run)
            bput(b, run, (size_t)(s - run));
        if (*s == '\0')
            break;
        if ((unsigned char)*s >= 0x80) {
            /* keep valid UTF-8, replace anything else: the format requires UTF-8 */
            size_t n = fdn__utf8_seq((const unsigned char *)s, (size_t)(end - s));
            if (n == 0) {
                bputs(b, "\xef\xbf\xbd"); /* U+FFFD */
            } else {
                bput(b, s, n);
                s += n - 1;
            }
            continue;
        }
        if (*s == '\\')
            bputs(b, "\\\\");
        else if (*s == '\n')
            bputs(b, "\\n");
        else if (quote && *s == '"')
            bputs(b, "\\\"");
        else
            bput(b, s, 1);
    }
}

void fdn__tm_put_short(fdn__buf_t *b, double v)
{
    if (!isfinite(v)) {
        b_fmt_dbl(b, v);
        return;
    }
    char t[40];
    size_t n = fdn__tm_fmt_short(t, v);
    bput(b, t, n);
}

/* The label pairs of series x as text (`k="v",k2="v2"`, values escaped; empty without labels),
 * made once per series: lines repeat it. */
void fdn__tm_label_text(fdn__buf_t *b, const fdn_telemetry_sample_t *x)
{
    for (size_t i = 0; i < x->nlabels; i++) {
        if (i > 0)
            bputs(b, ",");
        bputs(b, x->label_names[i]);
        bputs(b, "=\"");
        fdn__tm_put_escaped(b, x->label_values[i], true);
        bputs(b, "\"");
    }
}

/* A line's labels: `{` the series' label text (fdn__tm_label_text), the extra pair, `}`. */
static void labels(fdn__buf_t *b, const fdn__buf_t *lab, const char *extra_k, const char *extra_v)
{
    if (lab->len == 0 && extra_k == NULL)
        return;
    bputs(b, "{");
    if (lab->len > 0)
        bput(b, lab->p, lab->len);
    if (extra_k != NULL) {
        if (lab->len > 0)
            bputs(b, ",");
        bputs(b, extra_k);
        bputs(b, "=\"");
        bputs(b, extra_v);
        bputs(b, "\"");
    }
    bputs(b, "}");
}

/* OpenMetrics: the exemplar of a bucket line, if it has one: ` # {name="value"} v ts`. */
static void exemplar(fdn__buf_t *b, const fdn_telemetry_sample_t *x, size_t i)
{
    const fdn_telemetry_exemplar_t *e = x->bucket_exemplar != NULL ? &x->bucket_exemplar[i] : NULL;
    if (e == NULL || e->label_name == NULL)
        return;
    bputs(b, " # {");
    bputs(b, e->label_name);
    bputs(b, "=\"");
    fdn__tm_put_escaped(b, e->label_value, true);
    bputs(b, "\"} ");
    fdn__tm_put_short(b, e->value);
    char t[40];
    int n = snprintf(t, sizeof t, " %.3f", e->timestamp_s);
    bput(b, t, (size_t)n);
}

/* A histogram's or summary's `_sum` (in the exported unit: divided by div) and `_count`. */
static void sum_count_lines(fdn__buf_t *b, const char *name, const fdn__buf_t *lab,
                            const fdn_telemetry_sample_t *x, double div)
{
    bputs(b, name);
    bputs(b, "_sum");
    labels(b, lab, NULL, NULL);
    bputs(b, " ");
    fdn__tm_put_short(b, div == 1.0 ? x->hist.sum : x->hist.sum / div);
    bputs(b, "\n");
    bputs(b, name);
    bputs(b, "_count");
    labels(b, lab, NULL, NULL);
    bputs(b, " ");
    b_fmt_u64(b, x->hist.count);
    bputs(b, "\n");
}

/* The text of bound v in an `le` label, into le (40 bytes). */
static void le_text(char *le, double v)
{
    if (isfinite(v))
        (void)fdn__tm_fmt_short(le, v);
    else
        memcpy(le, v > 0 ? "+Inf" : isnan(v) ? "NaN" : "-Inf", 5);
}

/* The prefixes of histogram x's lines (tm_hist_pre_t) into *pre, unless it holds them for
 * x's bounds already; false when out of memory (*pre freed). */
static bool hist_pre(tm_hist_pre_t **pre, const char *name, const fdn__buf_t *lab,
                     const fdn_telemetry_sample_t *x)
{
    tm_hist_pre_t *h = *pre;
    size_t nle = x->nbuckets;
    if (h != NULL && h->nle == nle &&
        (nle == 0 || memcmp(h->le, x->bucket_le, nle * sizeof(double)) == 0))
        return true;
    if (nle > TM_LE_MAX)
        return false;
    if (h == NULL) {
        h = fdn__calloc(1, sizeof(*h));
        if (h == NULL)
            return false;
        *pre = h;
    }
    fdn__buf_t *t = &h->text;
    t->len = 0;
    for (size_t i = 0; i <= nle; i++) {
        char le[40];
        if (i < nle)
            le_text(le, x->bucket_le[i]);
        bputs(t, name);
        bputs(t, "_bucket");
        labels(t, lab, "le", i < nle ? le : "+Inf");
        bputs(t, " ");
        h->end[i] = (uint32_t)t->len;
    }
    bputs(t, name);
    bputs(t, "_sum");
    labels(t, lab, NULL, NULL);
    bputs(t, " ");
    h->end[nle + 1] = (uint32_t)t->len;
    bputs(t, name);
    bputs(t, "_count");
    labels(t, lab, NULL, NULL);
    bputs(t, " ");
    h->end[nle + 2] = (uint32_t)t->len;
    if (t->oom || t->len > UINT32_MAX) {
        fdn__tm_hist_pre_free(h);
        *pre = NULL;
        return false;
    }
    h->nle = (unsigned)nle;
    if (nle > 0)
        memcpy(h->le, x->bucket_le, nle * sizeof(double));
    return true;
}

void fdn__tm_hist_pre_free(tm_hist_pre_t *h)
{
    if (h != NULL) {
        fdn__free(h->text.p);
        fdn__free(h);
    }
}

/* Histogram x's lines from its prefixes h: the same text as fdn__tm_sample_lines writes. */
static void hist_lines_pre(fdn__buf_t *b, const tm_hist_pre_t *h, const fdn_telemetry_sample_t *x,
                           bool om)
{
    size_t nle = h->nle;
    uint32_t at = 0;
    for (size_t i = 0; i <= nle; i++) {
        bput(b, h->text.p + at, h->end[i] - at);
        at = h->end[i];
        b_fmt_u64(b, i < nle ? x->bucket_le_count[i] : x->hist.count);
        if (om && nle > 0)
            exemplar(b, x, i);
        bputs(b, "\n");
    }
    double div = x->hist_div > 0.0 ? x->hist_div : 1.0;
    bput(b, h->text.p + at, h->end[nle + 1] - at);
    at = h->end[nle + 1];
    fdn__tm_put_short(b, div == 1.0 ? x->hist.sum : x->hist.sum / div);
    bputs(b, "\n");
    bput(b, h->text.p + at, h->end[nle + 2] - at);
    b_fmt_u64(b, x->hist.count);
    bputs(b, "\n");
}

/* Write one sample's lines. name: the sample name (for OpenMetrics counters, with _total);
 * om: OpenMetrics (histogram buckets carry their exemplars). */
void fdn__tm_sample_lines(fdn__buf_t *b, const char *name, const fdn__buf_t *lab,
                          const fdn_telemetry_sample_t *x, bool om, tm_hist_pre_t **pre)
{
    if (x->kind == FDN_TELEMETRY_HISTOGRAM && pre != NULL && hist_pre(pre, name, lab, x)) {
        hist_lines_pre(b, *pre, x, om);
        return;
    }
    if (x->kind == FDN_TELEMETRY_COUNTER) {
        bputs(b, name);
        labels(b, lab, NULL, NULL);
        bputs(b, " ");
        b_fmt_u64(b, x->counter);
        bputs(b, "\n");
    } else if (x->kind == FDN_TELEMETRY_HISTOGRAM) {
        double div = x->hist_div > 0.0 ? x->hist_div : 1.0;
        for (size_t i = 0; i < x->nbuckets; i++) {
            char le[40];
            le_text(le, x->bucket_le[i]);
            bputs(b, name);
            bputs(b, "_bucket");
            labels(b, lab, "le", le);
            bputs(b, " ");
            b_fmt_u64(b, x->bucket_le_count[i]);
            if (om)
                exemplar(b, x, i);
            bputs(b, "\n");
        }
        bputs(b, name);
        bputs(b, "_bucket");
        labels(b, lab, "le", "+Inf");
        bputs(b, " ");
        b_fmt_u64(b, x->hist.count);
        if (om && x->nbuckets > 0)
            exemplar(b, x, x->nbuckets);
        bputs(b, "\n");
        sum_count_lines(b, name, lab, x, div);
    } else {
        bputs(b, name);
        labels(b, lab, NULL, NULL);
        bputs(b, " ");
        if (x->kind == FDN_TELEMETRY_GAUGE_INT) {
            char t[32];
            int n = snprintf(t, sizeof(t), "%lld", (long long)x->gauge_int);
            bput(b, t, (size_t)n);
        } else {
            fdn__tm_put_short(b, x->gauge);
        }
        bputs(b, "\n");
    }
}

void fdn__tm_header(fdn__buf_t *b, const char *name, const char *help, fdn_telemetry_kind_t kind,
                    bool om)
{
    bputs(b, "# HELP ");
    bputs(b, name);
    bputs(b, " ");
    /* promtool's lint rejects an empty HELP ("no help text"): fall back to the name */
    fdn__tm_put_escaped(b, help[0] != '\0' ? help : name, om);
    bputs(b, "\n# TYPE ");
    bputs(b, name);
    bputs(b, " ");
    bputs(b, fdn__tm_kind_name(kind));
    bputs(b, "\n");
}

/* A summary's lines for series x (add_summary): quantiles, _sum and _count under fam. */
void fdn__tm_summary_lines(fdn__buf_t *b, const char *fam, const fdn__buf_t *lab,
                           const fdn_telemetry_sample_t *x)
{
    static const char *const qs[] = {"0.5", "0.9", "0.99", "0.999"};
    double div = x->hist_div > 0.0 ? x->hist_div : 1.0;
    const double qv[] = {x->hist.p50, x->hist.p90, x->hist.p99, x->hist.p999};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        bputs(b, fam);
        labels(b, lab, "quantile", qs[k]);
        bputs(b, " ");
        fdn__tm_put_short(b, x->hist.count == 0 ? NAN : qv[k] / div);
        bputs(b, "\n");
    }
    sum_count_lines(b, fam, lab, x, div);
}
