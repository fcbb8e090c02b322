/* The exposition cache (telemetry_prometheus.c): after every kind of change the cached text
 * equals a text rendered afresh (fdn__tm_write_uncached), in both formats; a value changed
 * between two scrapes always shows (also the changes that leave a histogram's count as it
 * was: a reset, a load); scrapes concurrent with updates, new series and new events never
 * show a counter older than one read before the scrape began nor a torn histogram, and end
 * equal to a fresh render (meant for ThreadSanitizer too); a text taken without a copy
 * (fdn_telemetry_text_acquire) is the same and stays unchanged while held, also when later
 * texts are written into the blocks of earlier ones; the CPU time is
 * shared by the scrapes within 1 ms of the instance's (manual) clock. No sleeps: fixed
 * rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "services/telemetry_int.h"
#include "services/telemetry_process.h"

typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

static int sink(const char *data, size_t len, void *user)
{
    text_t *t = user;
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->len + len + 1) * 2;
        char *n = realloc(t->p, cap);
        if (n == NULL)
            return FDN_ENOMEM;
        t->p = n;
        t->cap = cap;
    }
    memcpy(t->p + t->len, data, len);
    t->len += len;
    t->p[t->len] = '\0';
    return 0;
}

/* The text without the process collector's lines (CPU time and memory move between two
 * renders). */
static char *without_process(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    assert_non_null(out);
    size_t o = 0;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl != NULL ? (size_t)(nl - s) + 1 : strlen(s);
        bool proc = strncmp(s, "process_", 8) == 0 || strncmp(s, "# HELP process_", 15) == 0 ||
                    strncmp(s, "# TYPE process_", 15) == 0;
        if (!proc) {
            memcpy(out + o, s, n);
            o += n;
        }
        s += n;
    }
    out[o] = '\0';
    return out;
}

static char *scrape(fdn_telemetry_t *tm, bool om)
{
    text_t t = {0};
    int rc = om ? fdn_telemetry_write_openmetrics(tm, sink, &t)
                : fdn_telemetry_write_prometheus(tm, sink, &t);
    assert_int_equal(rc, 0);
    assert_non_null(t.p);
    char *s = without_process(t.p);
    free(t.p);
    return s;
}

/* As scrape, through fdn_telemetry_text_acquire (the text itself, no sink). */
static char *scrape_acquired(fdn_telemetry_t *tm, bool om)
{
    const char *p = NULL;
    size_t len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(tm, om, &p, &len), 0);
    assert_non_null(p);
    assert_int_equal(strlen(p), len);
    char *s = without_process(p);
    fdn_telemetry_text_release(p);
    return s;
}

static char *fresh(fdn_telemetry_t *tm, bool om)
{
    text_t t = {0};
    assert_int_equal(fdn__tm_write_uncached(tm, om, sink, &t), 0);
    assert_non_null(t.p);
    char *s = without_process(t.p);
    free(t.p);
    return s;
}

/* The cached text of both formats equals a fresh render (twice: the second scrape reuses
 * what the first rendered). */
static void check_same(fdn_telemetry_t *tm)
{
    for (int om = 0; om < 2; om++) {
        for (int k = 0; k < 2; k++) {
            char *a = scrape(tm, om != 0);
            char *b = fresh(tm, om != 0);
            assert_string_equal(a, b);
            free(a);
            free(b);
        }
    }
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

/* A scrape shows `line` (whole), and the text equals a fresh render. */
static void expect_line(fdn_telemetry_t *tm, bool om, const char *line)
{
    char *a = scrape(tm, om);
    if (!has_line(a, line))
        fail_msg("missing line \"%s\" in:\n%s", line, a);
    free(a);
    check_same(tm);
}

static void every_kind_of_change(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    check_same(tm);

    const char *ln[] = {"route"};
    fdn_telemetry_family_t *fc = NULL, *fg = NULL, *fi = NULL, *fh = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &fc, "t_requests_total", "Requests",
                                          FDN_TELEMETRY_COUNTER, ln, 1, 3),
                     0);
    check_same(tm); /* a family without series */
    const char *a[] = {"/a"}, *b[] = {"/b"};
    fdn_counter_t *ca = NULL, *cb = NULL;
    assert_int_equal(fdn_telemetry_family_counter(fc, &ca, a, 1), 0);
    expect_line(tm, false, "t_requests_total{route=\"/a\"} 0"); /* a new series */
    fdn_counter_add(ca, 5);
    expect_line(tm, false, "t_requests_total{route=\"/a\"} 5"); /* counter add */
    assert_int_equal(fdn_telemetry_family_counter(fc, &cb, b, 1), 0);
    fdn_counter_inc(cb);
    expect_line(tm, false, "t_requests_total{route=\"/b\"} 1");
    fdn_counter_set(ca, 2); /* a counter set lower */
    expect_line(tm, false, "t_requests_total{route=\"/a\"} 2");
    expect_line(tm, true, "t_requests_total{route=\"/a\"} 2");

    assert_int_equal(fdn_telemetry_family(tm, &fg, "t_temperature", "Temperature",
                                          FDN_TELEMETRY_GAUGE, NULL, 0, 0),
                     0);
    fdn_gauge_t *g = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(fg, &g, NULL, 0), 0);
    fdn_gauge_set_double(g, 21.5); /* a new family, a gauge set */
    expect_line(tm, false, "t_temperature 21.5");
    fdn_gauge_add_double(g, -0.25);
    expect_line(tm, false, "t_temperature 21.25");
    assert_int_equal(
        fdn_telemetry_family(tm, &fi, "t_depth", "Depth", FDN_TELEMETRY_GAUGE_INT, NULL, 0, 0), 0);
    fdn_gauge_t *gi = NULL;
    assert_int_equal(fdn_telemetry_family_gauge(fi, &gi, NULL, 0), 0);
    fdn_gauge_set(gi, INT64_MAX - 1);
    expect_line(tm, false, "t_depth 9223372036854775806");
    fdn_gauge_add(gi, -1);
    expect_line(tm, false, "t_depth 9223372036854775805");

    assert_int_equal(fdn__tm_configure_summary(tm, "t_latency_seconds"), 0);
    assert_int_equal(fdn_telemetry_family(tm, &fh, "t_latency_seconds", "Latency",
                                          FDN_TELEMETRY_HISTOGRAM, ln, 1, 0),
                     0);
    const double le[] = {0.1, 1.0};
    assert_int_equal(fdn_telemetry_family_buckets(fh, le, 2), 0);
    fdn_histogram_t *h = NULL;
    assert_int_equal(fdn_telemetry_family_histogram(fh, &h, a, 1), 0);
    expect_line(tm, false, "t_latency_seconds_count{route=\"/a\"} 0");
    fdn_histogram_observe(h, 0.5); /* a histogram observe */
    expect_line(tm, false, "t_latency_seconds_bucket{route=\"/a\",le=\"1\"} 1");
    expect_line(tm, false, "t_latency_seconds_sum{route=\"/a\"} 0.5");
    expect_line(tm, false, "t_latency_quantiles_seconds_count{route=\"/a\"} 1");
    fdn_histogram_observe_exemplar(h, 0.05, "trace_id", "abc");
    char *om = scrape(tm, true);
    assert_non_null(strstr(om, "le=\"0.1\"} 1 # {trace_id=\"abc\"} 0.05 "));
    free(om);
    check_same(tm);

    /* a reset brings the count back: as many new observations must still show */
    assert_int_equal(fdn_telemetry_reset_metrics(tm), 0);
    expect_line(tm, false, "t_latency_seconds_count{route=\"/a\"} 0");
    fdn_histogram_observe(h, 0.9);
    fdn_histogram_observe(h, 0.9);
    expect_line(tm, false, "t_latency_seconds_sum{route=\"/a\"} 1.8");
    assert_int_equal(fdn_telemetry_reset_metrics(tm), 0);
    fdn_histogram_observe(h, 2.0);
    fdn_histogram_observe(h, 3.0);
    expect_line(tm, false, "t_latency_seconds_sum{route=\"/a\"} 5"); /* count 2 again */
    /* a load keeping the count */
    const uint64_t cum[] = {0, 1, 2};
    fdn_histogram_load(h, cum, 3, 7.0);
    expect_line(tm, false, "t_latency_seconds_sum{route=\"/a\"} 7");
    fdn_histogram_load(h, cum, 3, 9.0);
    expect_line(tm, false, "t_latency_seconds_sum{route=\"/a\"} 9");

    /* events: a new entry, a new key, values; then removed */
    assert_int_equal(fdn_telemetry_emit_counter(tm, "foundation.t.hits", NULL, 0), 0);
    expect_line(tm, false, "fdn_t_hits_total 1");
    assert_int_equal(fdn_telemetry_emit_counter(tm, "foundation.t.hits", NULL, 0), 0);
    expect_line(tm, false, "fdn_t_hits_total 2");
    fdn_telemetry_measure_t m[] = {{"duration", 2e6}, {"bytes", 10}};
    assert_int_equal(fdn_telemetry_execute(tm, "foundation.t.op", m, 2, NULL, 0), 0);
    expect_line(tm, false, "fdn_t_op_duration_seconds_sum 0.002");
    expect_line(tm, false, "fdn_t_op_bytes_count 1");
    assert_int_equal(fdn_telemetry_emit_gauge(tm, "foundation.t.op", 4, NULL, 0), 0);
    expect_line(tm, false, "fdn_t_op 4"); /* a new key of an entry */
    assert_int_equal(fdn_telemetry_unexport_event(tm, "foundation.t.op"), 0);
    char *t = scrape(tm, false);
    assert_null(strstr(t, "fdn_t_op"));
    free(t);
    check_same(tm);
    assert_int_equal(fdn_telemetry_reset_metrics(tm), 0); /* entries removed */
    t = scrape(tm, false);
    assert_null(strstr(t, "fdn_t_hits_total"));
    free(t);
    check_same(tm);
    assert_int_equal(fdn_telemetry_emit_counter(tm, "foundation.t.hits", NULL, 0), 0);
    expect_line(tm, false, "fdn_t_hits_total 1");

    /* overflow series and a name two sources share */
    const char *c[] = {"/c"}, *d[] = {"/d"};
    fdn_counter_t *cc = NULL;
    assert_int_equal(fdn_telemetry_family_counter(fc, &cc, c, 1), 0);
    assert_int_equal(fdn_telemetry_family_counter(fc, &cc, d, 1), 0); /* over the cap of 3 */
    fdn_counter_add(cc, 7);
    expect_line(tm, false, "t_requests_total{route=\"__overflow__\"} 7");
    assert_int_equal(fdn_telemetry_emit_counter(tm, "t_requests", NULL, 0), 0);
    expect_line(tm, false, "t_requests_total{route=\"__overflow__\"} 7");
    fdn_telemetry_destroy(tm);
}

/* Values read before a scrape show in it (never older), two scrapes in a row. */
static void value_changed_shows(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "t_n_total", "N", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    fdn_counter_t *c = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    for (uint64_t i = 1; i <= 200; i++) {
        fdn_counter_add(c, 1);
        char line[64];
        snprintf(line, sizeof line, "t_n_total %" PRIu64, i);
        char *s = scrape(tm, (i & 1) != 0);
        if (!has_line(s, line))
            fail_msg("scrape %" PRIu64 " lacks \"%s\"", i, line);
        free(s);
    }
    fdn_telemetry_destroy(tm);
}

/* fdn_telemetry_text_acquire gives the text a writer writes, and an acquired text stays as
 * it was while later scrapes render a changed value. */
static void acquired_text_stays(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "t_a_total", "A", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    fdn_counter_t *c = NULL;
    assert_int_equal(fdn_telemetry_family_counter(f, &c, NULL, 0), 0);
    fdn_counter_add(c, 1);
    for (int om = 0; om < 2; om++) {
        char *a = scrape_acquired(tm, om != 0);
        char *b = fresh(tm, om != 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    const char *held = NULL;
    size_t held_len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(tm, false, &held, &held_len), 0);
    char *copy = strdup(held);
    assert_non_null(copy);
    assert_true(has_line(held, "t_a_total 1"));
    for (int i = 0; i < 3; i++) {
        fdn_counter_add(c, 1);
        char *now = scrape_acquired(tm, false);
        char want[32];
        snprintf(want, sizeof want, "t_a_total %d", i + 2);
        assert_true(has_line(now, want));
        free(now);
    }
    assert_int_equal(strlen(held), held_len);
    assert_string_equal(held, copy); /* unchanged by the scrapes since */
    fdn_telemetry_text_release(held);
    free(copy);

    const char *p = NULL;
    size_t len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(NULL, false, &p, &len), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_text_acquire(tm, false, NULL, &len), FDN_EINVAL);
    assert_int_equal(fdn_telemetry_text_acquire(tm, false, &p, NULL), FDN_EINVAL);
    fdn_telemetry_text_release(NULL);
    fdn_telemetry_destroy(tm);
}

/* ---- texts written into earlier texts' blocks -------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A scrape writes its text into a block of an earlier text once nobody holds it, rewriting
 * only what changed (telemetry_prometheus.c, assemble): after changes that keep or change a
 * series' length, new series, both formats and texts held across scrapes in every pattern,
 * each scrape equals a fresh render and every held text stays as it was. */
static void reused_blocks_hold_fresh_text(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL, *lab = NULL;
    fdn_counter_t *a = NULL, *b = NULL;
    fdn_gauge_t *g = NULL;
    fdn_histogram_t *h = NULL;
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "t_ra_total", "A", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &a, NULL, 0), 0);
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "t_rb_total", "B", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &b, NULL, 0), 0);
    assert_int_equal(fdn_telemetry_family(tm, &f, "t_rg", "G", FDN_TELEMETRY_GAUGE, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_gauge(f, &g, NULL, 0), 0);
    assert_int_equal(
        fdn_telemetry_family(tm, &f, "t_rh_seconds", "H", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &h, NULL, 0), 0);
    const char *ln[] = {"k"};
    assert_int_equal(
        fdn_telemetry_family(tm, &lab, "t_rl_total", "L", FDN_TELEMETRY_COUNTER, ln, 1, 0), 0);
    enum { HELD = 3 };
    const char *held[HELD] = {NULL};
    char *copy[HELD] = {NULL};
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (int round = 0; round < 600; round++) {
        uint64_t v = xorshift(&rng);
        switch (v % 6) {
        case 0:
            fdn_counter_add(a, 1); /* the length changes rarely */
            break;
        case 1:
            fdn_counter_add(b, (v >> 8) % 1000000); /* often */
            break;
        case 2:
            fdn_gauge_set_double(g, (double)((v >> 8) % 100000) / 7.0);
            break;
        case 3:
            fdn_histogram_observe(h, (double)((v >> 8) % 5000) / 1000.0);
            break;
        case 4:
            if (round % 5 == 0) { /* a new series: the plan is listed again */
                char k[16];
                snprintf(k, sizeof k, "s%d", round);
                const char *lv[] = {k};
                fdn_counter_t *c = NULL;
                assert_int_equal(fdn_telemetry_family_counter(lab, &c, lv, 1), 0);
                fdn_counter_add(c, 1);
            }
            break;
        default:
            break;
        }
        bool om = (v >> 40) % 3 == 0;
        size_t slot = (size_t)((v >> 32) % (HELD + 2));
        if (slot < HELD) { /* let go of a held text (unchanged) and hold the current one */
            if (held[slot] != NULL) {
                assert_string_equal(held[slot], copy[slot]);
                fdn_telemetry_text_release(held[slot]);
                free(copy[slot]);
            }
            size_t len = 0;
            assert_int_equal(fdn_telemetry_text_acquire(tm, om, &held[slot], &len), 0);
            copy[slot] = strdup(held[slot]);
            assert_non_null(copy[slot]);
        }
        char *x = scrape_acquired(tm, om);
        char *y = fresh(tm, om);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    for (size_t i = 0; i < HELD; i++) {
        if (held[i] == NULL)
            continue;
        assert_string_equal(held[i], copy[i]);
        fdn_telemetry_text_release(held[i]);
        free(copy[i]);
    }
    check_same(tm);
    fdn_telemetry_destroy(tm);
}

/* ---- the shared CPU time ---------------------------------------------------------------- */

/* process_cpu_seconds_total as a scrape of tm shows it. */
static double cpu_shown(fdn_telemetry_t *tm, bool om)
{
    static const char key[] = "\nprocess_cpu_seconds_total ";
    const char *p = NULL;
    size_t len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(tm, om, &p, &len), 0);
    const char *l = strstr(p, key);
    assert_non_null(l);
    double v = strtod(l + sizeof key - 1, NULL);
    fdn_telemetry_text_release(p);
    return v;
}

/* Work until the process has used more than `s` CPU seconds (no sleep: CPU work is what is
 * waited for). */
static void burn_cpu_past(double s)
{
    volatile uint64_t x = 0;
    while (fdn__tm_process_cpu() <= s)
        for (uint64_t i = 0; i < 100000; i++)
            x += i;
    (void)x;
}

/* Scrapes share one CPU-time read for FDN__TM_PROCESS_CPU_MAX_AGE_NS of the instance's clock
 * (both formats), then read it again. */
static void cpu_time_shared_for_a_millisecond(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000000000, 0), 0);
    fdn_telemetry_opts_t o = FDN_TELEMETRY_OPTS_INIT;
    o.clock = clk;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, &o), 0);
    double a = cpu_shown(tm, false);
    assert_true(a > 0);
    burn_cpu_past(a + 0.002); /* a fresh read would now show more */
    assert_true(cpu_shown(tm, false) == a);
    assert_true(cpu_shown(tm, true) == a);
    assert_int_equal(fdn_clock_advance(clk, FDN__TM_PROCESS_CPU_MAX_AGE_NS - 1), 0);
    assert_true(cpu_shown(tm, false) == a);
    assert_int_equal(fdn_clock_advance(clk, 1), 0); /* as old as the bound: read again */
    double b = cpu_shown(tm, true);
    assert_true(b > a + 0.002);
    assert_true(cpu_shown(tm, false) == b);
    burn_cpu_past(b + 0.002);
    assert_int_equal(fdn_clock_advance(clk, 10 * FDN__TM_PROCESS_CPU_MAX_AGE_NS), 0);
    double c = cpu_shown(tm, false);
    assert_true(c > b + 0.002);
    assert_true(cpu_shown(tm, true) == c);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

/* ---- concurrent updates and scrapes ---------------------------------------------------- */

#define UPDATERS 2
#define SCRAPERS 2
#define ROUNDS   3000

typedef struct shared {
    fdn_telemetry_t *tm;
    fdn_counter_t *total;
    fdn_histogram_t *hist;
    fdn_telemetry_family_t *lab;
} shared_t;

static void *updater(void *arg)
{
    shared_t *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        fdn_counter_inc(s->total);
        fdn_histogram_observe(s->hist, (double)(i % 10) / 10.0);
        if (i % 100 == 0) { /* new series and new events while scrapes run */
            char v[16];
            snprintf(v, sizeof v, "v%d", i / 100);
            const char *lv[] = {v};
            fdn_counter_t *c = NULL;
            if (fdn_telemetry_family_counter(s->lab, &c, lv, 1) == 0)
                fdn_counter_inc(c);
            char ev[32];
            snprintf(ev, sizeof ev, "t.ev%d", i / 100);
            (void)fdn_telemetry_emit_counter(s->tm, ev, NULL, 0);
        }
        if (i % 500 == 0)
            (void)fdn_telemetry_cleanup(s->tm);
    }
    return NULL;
}

static uint64_t value_after(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);
    while (p != NULL && p != text && p[-1] != '\n')
        p = strstr(p + 1, prefix);
    if (p == NULL)
        return UINT64_MAX;
    return strtoull(p + strlen(prefix), NULL, 10);
}

/* The histogram's lines are consistent: buckets cumulative, +Inf == _count. */
static void check_histogram(const char *text)
{
    uint64_t prev = 0;
    const char *p = text;
    while ((p = strstr(p, "t_h_seconds_bucket{le=\"")) != NULL) {
        const char *sp = strchr(p, '}');
        assert_non_null(sp);
        uint64_t v = strtoull(sp + 2, NULL, 10);
        assert_true(v >= prev);
        prev = v;
        p = sp;
    }
    assert_int_equal(prev, value_after(text, "t_h_seconds_count "));
}

static void *scraper(void *arg)
{
    shared_t *s = arg;
    uint64_t last = 0;
    for (int i = 0; i < ROUNDS / 10; i++) {
        uint64_t before = fdn_counter_value(s->total);
        char *t = scrape(s->tm, (i & 1) != 0);
        uint64_t shown = value_after(t, "t_total_total ");
        assert_true(shown != UINT64_MAX);
        assert_true(shown >= before); /* never older than a read before the scrape */
        assert_true(shown >= last);
        last = shown;
        check_histogram(t);
        free(t);
    }
    return NULL;
}

static void concurrent_scrapes(void **state)
{
    (void)state;
    shared_t s = {0};
    assert_int_equal(fdn_telemetry_create(&s.tm, NULL), 0);
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(
        fdn_telemetry_family(s.tm, &f, "t_total_total", "T", FDN_TELEMETRY_COUNTER, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_counter(f, &s.total, NULL, 0), 0);
    assert_int_equal(
        fdn_telemetry_family(s.tm, &f, "t_h_seconds", "H", FDN_TELEMETRY_HISTOGRAM, NULL, 0, 0), 0);
    assert_int_equal(fdn_telemetry_family_histogram(f, &s.hist, NULL, 0), 0);
    const char *ln[] = {"v"};
    assert_int_equal(
        fdn_telemetry_family(s.tm, &s.lab, "t_lab_total", "L", FDN_TELEMETRY_COUNTER, ln, 1, 0), 0);
    pthread_t u[UPDATERS], sc[SCRAPERS];
    for (int i = 0; i < UPDATERS; i++)
        assert_int_equal(pthread_create(&u[i], NULL, updater, &s), 0);
    for (int i = 0; i < SCRAPERS; i++)
        assert_int_equal(pthread_create(&sc[i], NULL, scraper, &s), 0);
    for (int i = 0; i < UPDATERS; i++)
        pthread_join(u[i], NULL);
    for (int i = 0; i < SCRAPERS; i++)
        pthread_join(sc[i], NULL);
    char *t = scrape(s.tm, false);
    assert_int_equal(value_after(t, "t_total_total "), (uint64_t)UPDATERS * ROUNDS);
    assert_int_equal(value_after(t, "t_h_seconds_count "), (uint64_t)UPDATERS * ROUNDS);
    free(t);
    check_same(s.tm);
    fdn_telemetry_destroy(s.tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_of_change),
        cmocka_unit_test(value_changed_shows),
        cmocka_unit_test(acquired_text_stays),
        cmocka_unit_test(concurrent_scrapes),
        cmocka_unit_test(cpu_time_shared_for_a_millisecond),
        cmocka_unit_test(reused_blocks_hold_fresh_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
