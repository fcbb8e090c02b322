/* Unit tests: the event store's two tiers on SQLite (issue 21). The memory tier's limits
 * (storage.hot.*) only evict from memory: every event stays in the file and is still found by
 * id, query and correlation id; a restart fills memory up to its limits, not with the whole
 * file; the durable tier has its own retention (storage.warm.retention.*, default keep),
 * applied on disk; every retention key is updatable at run time, applied at the next
 * retention run (injected clock), and survives a restart; storage.warm.enable tells the truth;
 * the runtime's own event types are never refused by storage.hot.max_types; wall times out of
 * id order (a caller's wall_ns, a stepped wall clock) neither leave holes in memory at a
 * reopen, nor get recent events deleted by age, nor move a query's time bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "core/clock_int.h"
#include "services/config_int.h"
#include "services/event_store_int.h"
#include "sqlite_file.h"
#include "storage/event_sqlite.h"
#include "tmpdir.h"

#include <pthread.h>
#include <sqlite3.h>

#define SEC  1000000000LL
#define N    5000 /* events stored (the report's 118 k, scaled down) */
#define HOT  100  /* the memory tier's max_events */
#define STEP 100  /* events per batch; the clock moves 1 s between batches */

typedef struct fx {
    char dir[256];
    char path[300];
    fdn_clock_t *clock;
    int live; /* runtimes and stores still open: a failed test left them (see teardown) */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof f->dir, "tiers") != 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/events.db", f->dir);
    if (fdn_clock_manual_create(&f->clock, 1000 * SEC, 1800000000LL * SEC) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    test_tmpdir_remove(f->dir);
    if (f->live == 0) /* else their threads still wait on it: leave it (the test failed) */
        fdn_clock_destroy(f->clock);
    free(f);
    return 0;
}

static fdn_events_t *open_store(fx_t *f, uint64_t max_events, int64_t max_age_ns)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = f->path;
    o.clock = f->clock;
    o.max_events = max_events;
    o.max_age_ns = max_age_ns;
    o.prune_interval_ns = 0; /* retention only when the test asks */
    fdn_events_t *es = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_create(&es, &o, &err);
    if (rc != 0)
        fail_msg("create: %s %s", fdn_err_name(rc), err.message);
    f->live++;
    return es;
}

/* Event i (id i + 1): type a (even i) or b, correlation c<i % 10>, data {"i":i}. */
static void close_store(fx_t *f, fdn_events_t *es)
{
    fdn_events_destroy(es);
    f->live--;
}

static void store_all(fx_t *f, fdn_events_t *es)
{
    fdn_event_spec_t specs[STEP];
    char data[STEP][24], corr[STEP][8];
    for (int b = 0; b < N / STEP; b++) {
        for (int k = 0; k < STEP; k++) {
            int i = b * STEP + k;
            specs[k] = (fdn_event_spec_t)FDN_EVENT_SPEC_INIT;
            specs[k].type = i % 2 == 0 ? "a" : "b";
            snprintf(corr[k], sizeof corr[k], "c%d", i % 10);
            specs[k].correlation_id = corr[k];
            snprintf(data[k], sizeof data[k], "{\"i\":%d}", i);
            specs[k].data = data[k];
            specs[k].data_len = strlen(data[k]);
            specs[k].clock = f->clock;
        }
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_events_store_specs(es, specs, STEP, NULL, &err);
        if (rc != 0)
            fail_msg("store: %s %s", fdn_err_name(rc), err.message);
        assert_int_equal(fdn_clock_advance(f->clock, SEC), 0);
    }
}

static uint64_t mem_count(fdn_events_t *es)
{
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    return st.count;
}

static fdn_events_durable_status_t disk(fdn_events_t *es)
{
    fdn_events_durable_status_t d;
    assert_int_equal(fdn_events_durable_status(es, &d), 0);
    assert_true(d.enabled);
    return d;
}

static void expect_ids(fdn_events_t *es, const fdn_events_query_t *q, const uint64_t *ids, size_t n)
{
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, q, &l), 0);
    if (fdn_event_list_count(l) != n)
        fail_msg("query: %zu events, expected %zu", fdn_event_list_count(l), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), ids[i]);
    fdn_event_list_free(l);
}

static void expect_found(fdn_events_t *es, uint64_t id)
{
    fdn_event_t *ev = NULL;
    int rc = fdn_events_get(es, id, &ev);
    if (rc != 0)
        fail_msg("get %llu: %s", (unsigned long long)id, fdn_err_name(rc));
    char want[32];
    snprintf(want, sizeof want, "{\"i\":%llu}", (unsigned long long)(id - 1));
    size_t len = 0;
    const char *d = fdn_event_data(ev, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(d, want, len);
    fdn_event_free(ev);
}

/* The report: hot retention deleted rows from events.db. Now the memory tier evicts, the file
 * keeps every event, and reads of evicted ones go to the file. */
static void hot_limits_evict_from_memory_only(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, HOT, 0);
    store_all(f, es);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, N - HOT);
    assert_int_equal(mem_count(es), HOT);
    fdn_events_durable_status_t d = disk(es);
    assert_int_equal(d.count, N); /* every row kept */
    assert_int_equal(d.oldest_id, 1);
    assert_int_equal(d.newest_id, N);
    assert_int_equal(d.max_events, 0); /* default: keep */

    /* by id: the oldest, one in the middle, the newest */
    expect_found(es, 1);
    expect_found(es, 2500);
    expect_found(es, N - HOT);     /* the last evicted */
    expect_found(es, N - HOT + 1); /* the first in memory */
    expect_found(es, N);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, N + 1, &ev), FDN_ENOENT);

    /* queries across the tiers: ascending from the start, by type */
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "a";
    q.limit = 4;
    expect_ids(es, &q, (uint64_t[]){1, 3, 5, 7}, 4);
    /* across the boundary (4900 | 4901), both directions */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.after_id = N - HOT - 2;
    q.limit = 4;
    expect_ids(es, &q, (uint64_t[]){4899, 4900, 4901, 4902}, 4);
    q.after_id = 0;
    q.before_id = N - HOT + 3;
    q.descending = true;
    expect_ids(es, &q, (uint64_t[]){4902, 4901, 4900, 4899}, 4);
    /* offset counted over both tiers */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.offset = N - HOT - 2;
    q.limit = 3;
    expect_ids(es, &q, (uint64_t[]){4899, 4900, 4901}, 3);
    q.descending = true;
    q.offset = HOT - 1;
    expect_ids(es, &q, (uint64_t[]){4901, 4900, 4899}, 3);
    /* the newest first: memory alone */
    q.offset = 0;
    expect_ids(es, &q, (uint64_t[]){5000, 4999, 4998}, 3);
    /* a time range that lies wholly in the file: batch 3 (ids 301..400) */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.time_start = 1000 * SEC + 3 * SEC;
    q.time_end = 1000 * SEC + 3 * SEC;
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), STEP);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), 301);
    assert_int_equal(fdn_event_timestamp(fdn_event_list_at(l, 0)), 1003 * SEC);
    fdn_event_list_free(l);

    /* a correlation id: all of its 500 events, in id order, from both tiers */
    assert_int_equal(fdn_events_get_by_correlation(es, "c3", &l), 0);
    assert_int_equal(fdn_event_list_count(l), N / 10);
    for (size_t i = 0; i < N / 10; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), 4 + 10 * i);
    fdn_event_list_free(l);
    close_store(f, es);

    /* a restart fills memory up to its limit, not with the whole file */
    es = open_store(f, HOT, 0);
    assert_int_equal(mem_count(es), HOT);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, N - HOT + 1);
    assert_int_equal(st.next_id, N + 1);
    assert_int_equal(disk(es).count, N);
    expect_found(es, 1);
    uint64_t id = 0;
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "after";
    sp.clock = f->clock;
    assert_int_equal(fdn_events_store_specs(es, &sp, 1, &id, NULL), 0);
    assert_int_equal(id, N + 1); /* ids are never reused */
    close_store(f, es);

    /* ... and up to its age limit: the clock is 50 s past the first batch; 10 s keeps the
     * last 10 batches (stamped 40..49 s) and the event stored at 50 s */
    es = open_store(f, 0, 10 * SEC);
    assert_int_equal(mem_count(es), 10 * STEP + 1);
    assert_int_equal(disk(es).count, N + 1);
    expect_found(es, 1);
    close_store(f, es);
}

/* The durable tier's own retention deletes on disk; memory drops what the file dropped. */
static void durable_retention_prunes_on_disk(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, HOT, 0);
    store_all(f, es);
    assert_int_equal(fdn_events_set_durable_retention(es, 1000, 0), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_durable_status_t d = disk(es);
    assert_int_equal(d.count, 1000);
    assert_int_equal(d.oldest_id, N - 1000 + 1);
    assert_int_equal(d.pruned, N - 1000);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 1, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(es, N - 1000, &ev), FDN_ENOENT);
    expect_found(es, N - 1000 + 1);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 2;
    expect_ids(es, &q, (uint64_t[]){4001, 4002}, 2);

    /* by age (wall time): the clock is 50 s past the first batch; 5 s keeps the batches
     * stamped 45..49 s (ids 4501..5000) */
    assert_int_equal(fdn_events_set_durable_retention(es, 0, 5 * SEC), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    d = disk(es);
    assert_int_equal(d.count, 5 * STEP);
    assert_int_equal(d.oldest_id, 4501);
    assert_int_equal(d.max_age_ns, 5 * SEC);

    /* shorter than the memory tier's: memory does not keep what the file dropped */
    assert_int_equal(fdn_events_set_durable_retention(es, 40, 0), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(disk(es).count, 40);
    assert_int_equal(mem_count(es), 40);
    close_store(f, es);
    es = open_store(f, HOT, 0);
    assert_int_equal(mem_count(es), 40);
    assert_int_equal(disk(es).count, 40);
    assert_int_equal(fdn_events_set_durable_retention(es, 0, -1), FDN_EINVAL);
    close_store(f, es);

    /* the status reads the file's stored count (meta count, kept by every write and prune):
     * it is 40 there; a file without it (an older version's) is counted at open */
    assert_int_equal(test_sqlite_int(f->path, "SELECT value FROM meta WHERE key = 'count'"), 40);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 40);
    test_sqlite_exec(f->path,
                     "DELETE FROM meta WHERE key IN ('count', 'count_min_id', 'count_max_id')");
    es = open_store(f, HOT, 0);
    d = disk(es);
    assert_int_equal(d.count, 40);
    assert_int_equal(d.oldest_id, N - 40 + 1);
    assert_int_equal(d.newest_id, N);
    close_store(f, es);
    assert_int_equal(test_sqlite_int(f->path, "SELECT value FROM meta WHERE key = 'count'"), 40);
}

/* ---- the runtime: keys, run-time updates, restart, the type cap ---- */

static fdn_runtime_t *open_rt(fx_t *f, bool data_dir)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "tiers";
    o.data_dir = data_dir ? f->dir : NULL;
    o.clock = f->clock;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_runtime_create(&rt, &o, &err);
    if (rc != 0)
        fail_msg("runtime create: %s %s", fdn_err_name(rc), err.message);
    f->live++;
    return rt;
}

static void close_rt(fx_t *f, fdn_runtime_t *rt)
{
    fdn_runtime_destroy(rt);
    f->live--;
}

static void put_int(fdn_runtime_t *rt, const char *path, int64_t v)
{
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_config_update_int(fdn_runtime_config(rt), path, v, &err);
    if (rc != 0)
        fail_msg("PUT %s: %s %s", path, fdn_err_name(rc), err.message);
    /* the hook applies the change to the store: wait until it has */
    assert_int_equal(fdn__config_hook_drain(fdn_runtime_config(rt), -1), 0);
}

static int64_t get_int(fdn_runtime_t *rt, const char *path)
{
    int64_t v = -1;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), path, &v), 0);
    return v;
}

/* n events of correlation cid, stored durably. */
static void store_corr(fx_t *f, fdn_events_t *es, const char *cid, int n)
{
    for (int i = 0; i < n; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = "c";
        sp.correlation_id = cid;
        sp.clock = f->clock;
        assert_int_equal(fdn_events_store_specs(es, &sp, 1, NULL, NULL), 0);
    }
}

static size_t corr_count(fdn_events_t *es, const char *cid, bool by_query)
{
    fdn_event_list_t *l = NULL;
    if (by_query) {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.correlation_id = cid;
        q.limit = 100000;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
    } else {
        assert_int_equal(fdn_events_get_by_correlation(es, cid, &l), 0);
    }
    size_t n = fdn_event_list_count(l);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fdn_event_correlation_id(fdn_event_list_at(l, i)), cid);
    fdn_event_list_free(l);
    return n;
}

static uint64_t file_reads(fdn_events_t *es)
{
    return atomic_load(&es->disk_reads);
}

/* Once the file is known to hold none of a correlation's events below the memory tier, a
 * lookup reads only memory; when memory evicts them, the file is read from there on. */
static void correlation_lookups_skip_a_file_known_to_hold_none(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, HOT, 0);
    store_all(f, es); /* c0..c9, 500 each */
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    store_corr(f, es, "fresh", 10);

    uint64_t r0 = file_reads(es);
    assert_int_equal(corr_count(es, "fresh", false), 10); /* the file read once */
    assert_int_equal(file_reads(es), r0 + 1);
    assert_int_equal(corr_count(es, "fresh", false), 10); /* known: memory only */
    assert_int_equal(corr_count(es, "fresh", true), 10);
    assert_int_equal(file_reads(es), r0 + 1);

    /* a correlation with events in the file: read each time, all found */
    assert_int_equal(corr_count(es, "c3", false), N / 10);
    assert_int_equal(corr_count(es, "c3", true), N / 10);
    assert_int_equal(file_reads(es), r0 + 3);

    /* the fresh events evicted: found in the file, which is read from where it was known */
    store_corr(f, es, "later", HOT);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(corr_count(es, "fresh", false), 10);
    assert_int_equal(corr_count(es, "fresh", true), 10);
    assert_int_equal(file_reads(es), r0 + 5);
    close_store(f, es);
}

/* fdn_events_query_same over the two tiers: a correlation whose events are all in memory (the
 * file known to hold none) is compared in place, one with events in the file as the merged
 * list; either way the list named is the one equal to what fdn_events_query answers. */
static void query_same(fdn_events_t *es, const fdn_events_query_t *q,
                       const fdn_event_list_t *const *prev, size_t nprev, size_t want_same)
{
    fdn_event_list_t *fresh = NULL, *out = NULL;
    assert_int_equal(fdn_events_query(es, q, &fresh), 0);
    size_t same = 7;
    assert_int_equal(fdn_events_query_same(es, q, prev, nprev, &out, &same), 0);
    if (same != want_same)
        fail_msg("named %zu, expected %zu", same, want_same);
    if (same == SIZE_MAX) {
        assert_true(fdn__evs_lists_equal(out, fresh));
        fdn_event_list_free(out);
    } else {
        assert_null(out);
        assert_true(fdn__evs_lists_equal(prev[same], fresh));
    }
    fdn_event_list_free(fresh);
}

static void query_same_across_the_file(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, HOT, 0);
    store_all(f, es); /* c0..c9, 500 each */
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    store_corr(f, es, "fresh", 10);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = "fresh";
    fdn_event_list_t *a = NULL, *d = NULL, *c3 = NULL, *page = NULL, *none = NULL;
    assert_int_equal(fdn_events_query(es, &q, &a), 0); /* reads the file: it holds none */
    assert_int_equal(fdn_event_list_count(a), 10);
    uint64_t r0 = file_reads(es);
    const fdn_event_list_t *pa[2] = {NULL, a};
    query_same(es, &q, pa, 2, 1);
    assert_int_equal(file_reads(es), r0); /* compared in memory, the file not read */
    fdn_events_query_t qd = q;
    qd.descending = true;
    assert_int_equal(fdn_events_query(es, &qd, &d), 0);
    const fdn_event_list_t *pd[2] = {a, d};
    query_same(es, &qd, pd, 2, 1);
    qd.limit = 3; /* memory fills it */
    query_same(es, &qd, pd, 2, SIZE_MAX);

    /* a correlation in both tiers: the merged result, whole or a page of it */
    fdn_events_query_t q3 = FDN_EVENTS_QUERY_INIT;
    q3.correlation_id = "c3";
    q3.limit = 100000;
    assert_int_equal(fdn_events_query(es, &q3, &c3), 0);
    assert_int_equal(fdn_event_list_count(c3), N / 10);
    const fdn_event_list_t *p3[2] = {a, c3};
    query_same(es, &q3, p3, 2, 1);
    q3.offset = 2;
    q3.limit = 5;
    assert_int_equal(fdn_events_query(es, &q3, &page), 0);
    const fdn_event_list_t *pp[3] = {c3, a, page};
    query_same(es, &q3, pp, 3, 2);
    query_same(es, &q3, pp, 2, SIZE_MAX);

    /* the fresh events evicted to the file: memory holds none of them, which equals an empty
     * list, but the file has them now (the memo knew nothing past its old bound): the result
     * is read again with the file's part */
    fdn_events_query_t qn = FDN_EVENTS_QUERY_INIT;
    qn.correlation_id = "nobody";
    assert_int_equal(fdn_events_query(es, &qn, &none), 0);
    assert_int_equal(fdn_event_list_count(none), 0);
    store_corr(f, es, "later", HOT);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    const fdn_event_list_t *pn[1] = {none};
    query_same(es, &q, pn, 1, SIZE_MAX);
    const fdn_event_list_t *pall[2] = {none, a};
    query_same(es, &q, pall, 2, 1); /* read from the file, the same events */
    fdn_event_list_free(a);
    fdn_event_list_free(d);
    fdn_event_list_free(c3);
    fdn_event_list_free(page);
    fdn_event_list_free(none);
    close_store(f, es);
}

/* fdn_events_query_memory on q: FDN_ENOENT when want_enoent, else fdn_events_query's list. */
static void memory_answer(fdn_events_t *es, const fdn_events_query_t *q, bool want_enoent)
{
    fdn_event_list_t *m = NULL, *l = NULL;
    int rc = fdn_events_query_memory(es, q, &m);
    if (want_enoent) {
        if (rc != FDN_ENOENT)
            fail_msg("after_id %llu: %s, not FDN_ENOENT", (unsigned long long)q->after_id,
                     fdn_err_name(rc));
        return;
    }
    if (rc != 0)
        fail_msg("after_id %llu: %s", (unsigned long long)q->after_id, fdn_err_name(rc));
    assert_int_equal(fdn_events_query(es, q, &l), 0);
    if (!fdn__evs_lists_equal(m, l))
        fail_msg("after_id %llu: memory lists %zu events, the query %zu, or others",
                 (unsigned long long)q->after_id, fdn_event_list_count(m), fdn_event_list_count(l));
    fdn_event_list_free(m);
    fdn_event_list_free(l);
}

/* fdn_events_query_memory: the memory tier's answer, which is the query's while memory holds
 * every id after the cursor; FDN_ENOENT when the file holds ids after it that memory evicted
 * (no read of the file either way); a store in memory only always answers. */
static void query_memory_answers_what_memory_holds(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, HOT, 0);
    store_all(f, es);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, N - HOT + 1); /* the file holds the older ones */
    static const char *const types[] = {NULL, "a"};
    static const char *const corrs[] = {NULL, "c3"};
    static const uint64_t afters[] = {0, N - HOT - 1, N - HOT, N - HOT + 7, N - 1, N, N + 5};
    static const int64_t limits[] = {1, 10, 1000};
    for (size_t a = 0; a < sizeof afters / sizeof *afters; a++)
        for (size_t t = 0; t < 2; t++)
            for (size_t c = 0; c < 2; c++)
                for (size_t k = 0; k < 3; k++) {
                    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
                    q.after_id = afters[a];
                    q.type = types[t];
                    q.correlation_id = corrs[c];
                    q.limit = limits[k];
                    uint64_t r0 = file_reads(es);
                    fdn_event_list_t *m = NULL;
                    int rc = fdn_events_query_memory(es, &q, &m);
                    assert_int_equal(file_reads(es), r0); /* never the file */
                    fdn_event_list_free(rc == 0 ? m : NULL);
                    memory_answer(es, &q, afters[a] < N - HOT);
                }
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    fdn_event_list_t *m = NULL;
    q.limit = 0;
    assert_int_equal(fdn_events_query_memory(es, &q, &m), FDN_EINVAL);
    q.limit = 1;
    q.version = 2;
    assert_int_equal(fdn_events_query_memory(es, &q, &m), FDN_EINVAL);
    q.version = 1;
    assert_int_equal(fdn_events_query_memory(NULL, &q, &m), FDN_EINVAL);
    assert_int_equal(fdn_events_query_memory(es, NULL, &m), FDN_EINVAL);
    assert_int_equal(fdn_events_query_memory(es, &q, NULL), FDN_EINVAL);
    fdn__events_service_stop(es);
    assert_int_equal(fdn_events_query_memory(es, &q, &m), FDN_EUNAVAILABLE);
    close_store(f, es);

    /* in memory only, memory is the store: evicted events are gone, every cursor answers */
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.clock = f->clock;
    o.max_events = HOT;
    o.prune_interval_ns = 0;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    f->live++;
    store_all(f, es);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    for (size_t a = 0; a < sizeof afters / sizeof *afters; a++) {
        q.after_id = afters[a];
        q.limit = 10;
        memory_answer(es, &q, false);
    }
    close_store(f, es);
}

/* The check hook: the memory tier's retention once, when armed (between a query's decision
 * that memory answers and memory's scan). */
static fdn_clock_t *g_step_clock;
static int64_t g_step_ns;

/* fdn__evs_disk_read_hook: the wall clock steps once, before the file's part is read. */
static void step_wall_once(fdn_events_t *es, void *user)
{
    (void)es;
    (void)user;
    if (g_step_ns != 0)
        assert_int_equal(fdn__clock_step_wall(g_step_clock, g_step_ns), 0);
    g_step_ns = 0;
}

/* A time-bounded read merging memory and the file takes the store's clock offset (wall -
 * monotonic) once: its bounds become the file's wall-time bounds and the file's events, stamped
 * at an earlier boot, get their timestamps rebuilt from their wall time with that same offset.
 * A step of the wall clock during the read (the hook, after the bounds and before the file is
 * read) changes neither: the read lists what it lists without the step, with the same
 * timestamps, each inside its bounds (with two offsets the file's events came WSTEP earlier,
 * some before time_start). The reads after it use the new offset. */
static void one_offset_per_merged_read(void **state)
{
    fx_t *f = *state;
    const int64_t WSTEP = 5 * SEC;
    fdn_events_t *es = open_store(f, 0, 0); /* boot 1: f->clock */
    for (int i = 0; i < 20; i++) {
        fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
        spec.type = "a";
        spec.clock = f->clock;
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_events_store_specs(es, &spec, 1, NULL, &err), 0);
        assert_int_equal(fdn_clock_advance(f->clock, SEC), 0);
    }
    close_store(f, es);
    /* boot 2: another clock (its offset 1 h away); memory holds the newest 5 (ids 16..20) */
    fdn_clock_t *c2 = NULL;
    assert_int_equal(
        fdn_clock_manual_create(&c2, 50 * SEC, fdn_clock_wall_ns(f->clock) + 3600 * SEC), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = f->path;
    o.clock = c2;
    o.max_events = 5;
    o.prune_interval_ns = 0;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, 16);

    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 100;
    fdn_event_t *e5 = NULL, *e12 = NULL;
    assert_int_equal(fdn_events_get(es, 5, &e5), 0);
    assert_int_equal(fdn_events_get(es, 12, &e12), 0);
    q.time_start = fdn_event_timestamp(e5);
    q.time_end = fdn_event_timestamp(e12);
    fdn_event_free(e5);
    fdn_event_free(e12);
    fdn_event_list_t *before = NULL, *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &before), 0);
    assert_true(fdn_event_list_count(before) >= 7);
    uint64_t reads = file_reads(es);
    g_step_clock = c2;
    g_step_ns = WSTEP;
    fdn__evs_disk_read_hook = step_wall_once;
    int rc = fdn_events_query(es, &q, &l);
    fdn__evs_disk_read_hook = NULL;
    assert_int_equal(rc, 0);
    assert_int_equal(g_step_ns, 0);              /* the wall clock stepped during the read */
    assert_int_equal(file_reads(es), reads + 1); /* memory and the file merged */
    assert_int_equal(fdn_event_list_count(l), fdn_event_list_count(before));
    for (size_t i = 0; i < fdn_event_list_count(l); i++) {
        const fdn_event_t *a = fdn_event_list_at(before, i), *b = fdn_event_list_at(l, i);
        assert_int_equal(fdn_event_id(b), fdn_event_id(a));
        assert_int_equal(fdn_event_timestamp(b), fdn_event_timestamp(a));
        assert_true(fdn_event_timestamp(b) >= q.time_start && fdn_event_timestamp(b) <= q.time_end);
    }
    fdn_event_list_free(l);
    /* after the step: every timestamp WSTEP earlier, and so are the bounds listing them */
    q.time_start -= WSTEP;
    q.time_end -= WSTEP;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), fdn_event_list_count(before));
    for (size_t i = 0; i < fdn_event_list_count(l); i++) {
        const fdn_event_t *a = fdn_event_list_at(before, i), *b = fdn_event_list_at(l, i);
        assert_int_equal(fdn_event_id(b), fdn_event_id(a));
        assert_int_equal(fdn_event_timestamp(b), fdn_event_timestamp(a) - WSTEP);
    }
    fdn_event_list_free(l);
    fdn_event_list_free(before);
    fdn_events_destroy(es);
    fdn_clock_destroy(c2);
}

static int prune_armed, prunes_run;
static void prune_between(fdn_events_t *es, void *user)
{
    (void)user;
    if (!prune_armed)
        return;
    prune_armed = 0;
    prunes_run++;
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
}

/* Each read decides, memory holding every id, that memory answers it; the hook then evicts
 * all but the newest HOT from memory before memory's scan. The read must still list the
 * evicted ids after its cursor (the file has them), not skip to memory's new oldest. */
static void a_prune_between_the_check_and_the_scan_misses_nothing(void **state)
{
    fx_t *f = *state;
    fdn__evs_query_check_hook = prune_between;
    static const uint64_t afters[] = {1000, 0, N - HOT - 3};
    for (int round = 0; round < 5; round++) {
        snprintf(f->path, sizeof f->path, "%s/events%d.db", f->dir, round);
        fdn_events_t *es = open_store(f, HOT, 0);
        store_all(f, es);
        fdn_events_stats_t st;
        assert_int_equal(fdn_events_stats(es, &st), 0);
        assert_int_equal(st.oldest_id, 1); /* memory holds every id: no retention yet */
        prunes_run = 0;
        prune_armed = 1;
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        if (round < 3) { /* ascending, after a cursor */
            q.after_id = afters[round];
            q.limit = 10;
            uint64_t want[10];
            for (int k = 0; k < 10; k++)
                want[k] = afters[round] + 1 + (uint64_t)k;
            expect_ids(es, &q, want, 10);
        } else if (round == 3) { /* by type, through fdn_events_query_same */
            q.after_id = 1000;
            q.type = "a"; /* event i (id i + 1) is of type a when i is even: odd ids */
            q.limit = 3;
            fdn_event_list_t *l = NULL;
            size_t same = 0;
            assert_int_equal(fdn_events_query_same(es, &q, NULL, 0, &l, &same), 0);
            assert_int_equal(same, SIZE_MAX);
            assert_int_equal(fdn_event_list_count(l), 3);
            for (size_t k = 0; k < 3; k++)
                assert_int_equal(fdn_event_id(fdn_event_list_at(l, k)), 1001 + 2 * k);
            fdn_event_list_free(l);
        } else { /* every event of a correlation id */
            fdn_event_list_t *l = NULL;
            assert_int_equal(fdn_events_get_by_correlation(es, "c3", &l), 0);
            assert_int_equal(fdn_event_list_count(l), N / 10);
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), 4);
            fdn_event_list_free(l);
        }
        assert_int_equal(prunes_run, 1); /* the prune did run in between */
        assert_int_equal(mem_count(es), HOT);
        close_store(f, es);
    }
    fdn__evs_query_check_hook = NULL;
}

static void store_n(fx_t *f, fdn_events_t *es, const char *type, int n)
{
    for (int i = 0; i < n; i++) {
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = type;
        sp.clock = f->clock;
        assert_int_equal(fdn_events_store_specs(es, &sp, 1, NULL, NULL), 0);
    }
}

/* One retention run of the runtime's store: move the injected clock past the interval and
 * wait for the run to complete. */
static void next_run(fx_t *f, fdn_events_t *es, uint64_t *runs, int64_t interval_ns)
{
    assert_int_equal(fdn_clock_advance(f->clock, interval_ns), 0);
    fdn__events_wait_prune_runs(es, ++*runs);
}

static void retention_keys_update_live_and_persist(void **state)
{
    fx_t *f = *state;
    fdn_runtime_t *rt = open_rt(f, true);
    fdn_config_t *cfg = fdn_runtime_config(rt);
    /* the tree tells the truth: events are on disk, in the data directory */
    bool warm = false;
    assert_int_equal(fdn_config_get_bool(cfg, "storage.warm.enable", &warm), 0);
    assert_true(warm);
    char wpath[300];
    assert_int_equal(fdn_config_get_string(cfg, "storage.warm.path", wpath, sizeof wpath, NULL), 0);
    assert_string_equal(wpath, f->dir);
    assert_int_equal(get_int(rt, "storage.warm.retention.max_events"), 0); /* default keep */
    assert_int_equal(get_int(rt, "storage.warm.retention.max_age_seconds"), 0);

    fdn_events_t *es = fdn_runtime_events(rt);
    uint64_t runs = 0;
    put_int(rt, "storage.hot.prune_interval", 1000); /* 1 s */
    store_n(f, es, "load", 60);
    uint64_t mem0 = mem_count(es), disk0 = disk(es).count;
    assert_true(mem0 >= 60);
    /* the memory tier's limit: a PUT that lowers it prunes memory at the next run */
    put_int(rt, "storage.hot.max_events", 10);
    next_run(f, es, &runs, SEC);
    assert_int_equal(mem_count(es), 10);
    assert_true(disk(es).count >= disk0); /* nothing left the file */
    /* the durable tier's: by count */
    put_int(rt, "storage.warm.retention.max_events", 20);
    next_run(f, es, &runs, SEC);
    assert_int_equal(disk(es).count, 20);
    assert_int_equal(disk(es).max_events, 20);
    /* max_types is updatable too */
    put_int(rt, "storage.hot.max_types", 5000);
    fdn_events_types_status_t ts;
    assert_int_equal(fdn_events_types_status(es, &ts), 0);
    assert_int_equal(ts.max_types, 5000);
    /* by age: memory first (60 s), then the file (120 s) */
    put_int(rt, "storage.hot.max_age_seconds", 60);
    put_int(rt, "storage.warm.retention.max_age_seconds", 120);
    next_run(f, es, &runs, 90 * SEC);
    assert_true(mem_count(es) <= 1); /* at most the runtime's own last record */
    assert_true(disk(es).count >= 2);
    next_run(f, es, &runs, 60 * SEC);
    assert_true(disk(es).count <= 1);
    assert_int_equal(disk(es).max_age_ns, 120 * SEC);
    close_rt(f, rt);

    /* the run-time overrides of every retention key survive a restart */
    rt = open_rt(f, true);
    assert_int_equal(get_int(rt, "storage.hot.max_events"), 10);
    assert_int_equal(get_int(rt, "storage.hot.max_age_seconds"), 60);
    assert_int_equal(get_int(rt, "storage.hot.prune_interval"), 1000);
    assert_int_equal(get_int(rt, "storage.hot.max_types"), 5000);
    assert_int_equal(get_int(rt, "storage.warm.retention.max_events"), 20);
    assert_int_equal(get_int(rt, "storage.warm.retention.max_age_seconds"), 120);
    assert_int_equal(fdn__config_hook_drain(fdn_runtime_config(rt), -1), 0); /* applied */
    fdn_events_durable_status_t d = disk(fdn_runtime_events(rt));
    assert_int_equal(d.max_events, 20);
    assert_int_equal(d.max_age_ns, 120 * SEC);
    assert_int_equal(fdn_events_types_status(fdn_runtime_events(rt), &ts), 0);
    assert_int_equal(ts.max_types, 5000);
    close_rt(f, rt);
}

/* Without a data directory the tree says the events are not on disk. */
static void warm_enable_false_without_data_dir(void **state)
{
    fx_t *f = *state;
    fdn_runtime_t *rt = open_rt(f, false);
    bool warm = true;
    assert_int_equal(fdn_config_get_bool(fdn_runtime_config(rt), "storage.warm.enable", &warm), 0);
    assert_false(warm);
    fdn_events_durable_status_t d;
    assert_int_equal(fdn_events_durable_status(fdn_runtime_events(rt), &d), 0);
    assert_false(d.enabled);
    close_rt(f, rt);
}

static fdn_events_index_status_t index_status(fdn_events_t *es)
{
    fdn_events_index_status_t st = FDN_EVENTS_INDEX_STATUS_INIT;
    assert_int_equal(fdn_events_index_status(es, &st), 0);
    assert_int_equal(st.version, FDN_EVENTS_INDEX_STATUS_VERSION);
    return st;
}

/* n events with correlation ids (index work for the file), in batches of up to 1000. */
static void store_indexed(fx_t *f, fdn_events_t *es, int n)
{
    static fdn_event_spec_t specs[1000];
    for (int done = 0; done < n;) {
        int k = n - done < 1000 ? n - done : 1000;
        for (int i = 0; i < k; i++) {
            specs[i] = (fdn_event_spec_t)FDN_EVENT_SPEC_INIT;
            specs[i].type = "ix";
            specs[i].correlation_id = i % 2 == 0 ? "even" : "odd";
            specs[i].clock = f->clock;
        }
        assert_int_equal(fdn_events_store_specs(es, specs, (size_t)k, NULL, NULL), 0);
        done += k;
    }
}

#define BLOCK 8192 /* ids per block of the file's correlation index */

/* The file's correlation index falling behind (a trigger refuses its runs) shows in
 * fdn_events_index_status: not current, blocks behind, failures and the last code; once
 * the index can be written again a later write rebuilds it and it is current again (the
 * failures stay counted). Lookups are right throughout. */
static void a_lagging_correlation_index_is_reported(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, 0, 0);
    store_indexed(f, es, 100);
    fdn_events_index_status_t st = index_status(es);
    assert_true(st.has_index);
    assert_true(st.current);
    assert_int_equal(st.behind_blocks, 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.last_error, 0);
    test_sqlite_exec(f->path, "CREATE TRIGGER refuse BEFORE INSERT ON corr_lsm BEGIN "
                              "SELECT RAISE(ABORT, 'refused'); END");
    store_indexed(f, es, 2 * BLOCK); /* ids to 2 * BLOCK + 100: blocks 0 and 1 complete */
    st = index_status(es);
    assert_true(st.has_index);
    assert_false(st.current);
    assert_int_equal(st.behind_blocks, 2);
    assert_true(st.failures >= 1);
    assert_int_equal(st.last_error, FDN_EIO);
    uint64_t fails = st.failures;
    /* while a read or a prune of the file holds dmu (a long prune may hold it for seconds),
     * the answer is the one last read, at once (waiting would hang this thread) */
    fdn__mutex_lock(&es->dmu);
    fdn_events_index_status_t held = index_status(es);
    fdn__mutex_unlock(&es->dmu);
    assert_true(held.has_index);
    assert_false(held.current);
    assert_int_equal(held.behind_blocks, 2);
    assert_int_equal(held.failures, fails);
    assert_int_equal(held.last_error, FDN_EIO);
    assert_int_equal(corr_count(es, "even", false), BLOCK + 50);
    test_sqlite_exec(f->path, "DROP TRIGGER refuse");
    /* the rebuild is retried after a gap of writes that doubles with each failed retry (the
     * writes above left it at a few): events written one at a time until it ran */
    for (int i = 0; i < 64 && !index_status(es).current; i++)
        store_indexed(f, es, 1);
    st = index_status(es);
    assert_true(st.current);
    assert_int_equal(st.behind_blocks, 0);
    assert_int_equal(st.failures, fails);
    assert_int_equal(st.last_error, FDN_EIO);
    /* misuse */
    st.version = FDN_EVENTS_INDEX_STATUS_VERSION + 1;
    assert_int_equal(fdn_events_index_status(es, &st), FDN_EINVAL);
    st.version = 0;
    assert_int_equal(fdn_events_index_status(es, &st), FDN_EINVAL);
    assert_int_equal(fdn_events_index_status(es, NULL), FDN_EINVAL);
    st.version = FDN_EVENTS_INDEX_STATUS_VERSION;
    assert_int_equal(fdn_events_index_status(NULL, &st), FDN_EINVAL);
    close_store(f, es);

    /* a store without a file has no index */
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.clock = f->clock;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_events_create(&es, &o, &err), 0);
    st = index_status(es);
    assert_false(st.has_index);
    assert_false(st.current);
    assert_int_equal(st.behind_blocks, 0);
    assert_int_equal(st.failures, 0);
    fdn_events_destroy(es);
}

/* /metrics: the index's two series with a durable file, none without. */
static bool exposed(fdn_runtime_t *rt, const char *line)
{
    const char *text = NULL;
    size_t len = 0;
    assert_int_equal(fdn_telemetry_text_acquire(fdn_runtime_telemetry(rt), false, &text, &len), 0);
    bool found = strstr(text, line) != NULL;
    fdn_telemetry_text_release(text);
    return found;
}

static void the_correlation_index_is_in_the_metrics(void **state)
{
    fx_t *f = *state;
    fdn_runtime_t *rt = open_rt(f, true);
    store_indexed(f, fdn_runtime_events(rt), 10);
    assert_true(exposed(rt, "\nfdn_events_correlation_index_behind_blocks 0\n"));
    assert_true(exposed(rt, "\nfdn_events_correlation_index_failures_total 0\n"));
    test_sqlite_exec(f->path, "CREATE TRIGGER refuse BEFORE INSERT ON corr_lsm BEGIN "
                              "SELECT RAISE(ABORT, 'refused'); END");
    store_indexed(f, fdn_runtime_events(rt), BLOCK); /* block 0 complete: its run refused */
    fdn_events_index_status_t st = index_status(fdn_runtime_events(rt));
    assert_int_equal(st.behind_blocks, 1);
    char want[96];
    snprintf(want, sizeof want, "\nfdn_events_correlation_index_failures_total %llu\n",
             (unsigned long long)st.failures);
    assert_true(exposed(rt, "\nfdn_events_correlation_index_behind_blocks 1\n"));
    assert_true(exposed(rt, want));
    close_rt(f, rt);
    rt = open_rt(f, false);
    assert_false(exposed(rt, "fdn_events_correlation_index"));
    close_rt(f, rt);
}

static size_t count_type(fdn_events_t *es, const char *type)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = type;
    q.limit = 100;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    size_t n = fdn_event_list_count(l);
    fdn_event_list_free(l);
    return n;
}

/* At the cap on live types a client's new type is refused, the runtime's own is not. */
static void runtime_types_are_never_refused_at_the_cap(void **state)
{
    fx_t *f = *state;
    fdn_runtime_t *rt = open_rt(f, false);
    fdn_events_t *es = fdn_runtime_events(rt);
    fdn_events_types_status_t ts;
    put_int(rt, "storage.hot.max_types", 10000); /* records config_updated: a held type */
    assert_int_equal(fdn_events_types_status(es, &ts), 0);
    const uint64_t cap = ts.live + 2;
    put_int(rt, "storage.hot.max_types", (int64_t)cap);
    int added = 0;
    for (;;) { /* fill the table with client types up to the cap */
        char type[32];
        snprintf(type, sizeof type, "client%d", added);
        fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
        sp.type = type;
        int rc = fdn_events_store_specs(es, &sp, 1, NULL, NULL);
        if (rc == FDN_ENOSPC)
            break;
        assert_int_equal(rc, 0);
        assert_true(++added <= 2);
    }
    assert_int_equal(added, 2);
    assert_int_equal(fdn_events_types_status(es, &ts), 0);
    assert_int_equal(ts.live, cap);
    assert_int_equal(count_type(es, "config_reset"), 0);
    /* a reset records config_reset (a type not held yet) before it lifts the cap */
    assert_int_equal(fdn_config_reset(fdn_runtime_config(rt), NULL), 0);
    assert_int_equal(fdn__config_hook_drain(fdn_runtime_config(rt), -1), 0);
    assert_int_equal(count_type(es, "config_reset"), 1);
    close_rt(f, rt);
}

/* ---- wall times out of id order (a caller's wall_ns, a wall clock that steps) ---- */

/* Store one event of type `type` stamped by f->clock, with wall time `wall` (0: the clock's
 * now); returns its id. */
static uint64_t store_wall(fx_t *f, fdn_events_t *es, const char *type, int64_t wall)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.clock = f->clock;
    sp.wall_ns = wall;
    uint64_t id = 0;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_store_specs(es, &sp, 1, &id, &err);
    if (rc != 0)
        fail_msg("store: %s %s", fdn_err_name(rc), err.message);
    return id;
}

static void expect_type(fdn_events_t *es, uint64_t id, const char *type)
{
    fdn_event_t *ev = NULL;
    int rc = fdn_events_get(es, id, &ev);
    if (rc != 0)
        fail_msg("get %llu: %s", (unsigned long long)id, fdn_err_name(rc));
    assert_string_equal(fdn_event_type(ev), type);
    fdn_event_free(ev);
}

/* A reopen applies the memory tier's age limit as a prefix of ids: memory holds a contiguous
 * range and the file every id below it, where reads look. An event whose wall time (a
 * caller's wall_ns) is two days old between two recent ones stays in memory (its timestamp
 * raised to the one before it, the store's clamp); one at the start of the file stays there
 * only. Each is found by get, queries and a subscription from position 0. (Dropping each old
 * event on its own left a hole in memory: get ENOENT, queries and subscriptions without it.) */
static void reopen_age_cut_keeps_a_contiguous_range(void **state)
{
    fx_t *f = *state;
    const int64_t DAY = 86400 * SEC;
    /* a, b (2 days old), c */
    fdn_events_t *es = open_store(f, 0, 0);
    assert_int_equal(store_wall(f, es, "a", 0), 1);
    assert_int_equal(store_wall(f, es, "b", fdn_clock_wall_ns(f->clock) - 2 * DAY), 2);
    assert_int_equal(store_wall(f, es, "c", 0), 3);
    close_store(f, es);
    assert_int_equal(fdn_clock_advance(f->clock, SEC), 0);
    es = open_store(f, 0, 3600 * SEC);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 3);
    assert_int_equal(st.oldest_id, 1);
    expect_type(es, 1, "a");
    expect_type(es, 2, "b");
    expect_type(es, 3, "c");
    fdn_event_t *ea = NULL, *eb = NULL;
    assert_int_equal(fdn_events_get(es, 1, &ea), 0);
    assert_int_equal(fdn_events_get(es, 2, &eb), 0);
    assert_int_equal(fdn_event_timestamp(eb), fdn_event_timestamp(ea)); /* raised (clamp) */
    fdn_event_free(ea);
    fdn_event_free(eb);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    expect_ids(es, &q, (uint64_t[]){1, 2, 3}, 3);
    q.type = "b";
    expect_ids(es, &q, (uint64_t[]){2}, 1);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    so.from_position = true;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), 0);
    fdn_event_list_t *l = NULL;
    uint64_t skipped = 0;
    assert_int_equal(fdn_events_sub_read(sub, 100, &l, &skipped), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(fdn_event_list_count(l), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), i + 1);
    fdn_event_list_free(l);
    fdn_events_unsubscribe(sub);
    close_store(f, es);
    /* another file: b (2 days old) first; it stays in the file, memory starts after it */
    snprintf(f->path, sizeof f->path, "%s/events2.db", f->dir);
    es = open_store(f, 0, 0);
    assert_int_equal(store_wall(f, es, "b", fdn_clock_wall_ns(f->clock) - 2 * DAY), 1);
    assert_int_equal(store_wall(f, es, "a", 0), 2);
    assert_int_equal(store_wall(f, es, "c", 0), 3);
    close_store(f, es);
    es = open_store(f, 0, 3600 * SEC);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 2);
    assert_int_equal(st.oldest_id, 2);
    expect_type(es, 1, "b"); /* from the file */
    expect_type(es, 2, "a");
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    expect_ids(es, &q, (uint64_t[]){1, 2, 3}, 3);
    close_store(f, es);
}

/* The durable tier's retention by age deletes a prefix of ids whose events are all older than
 * max_age, never a recent event: an event two days old after five recent ones stays, as do
 * they (a binary search over ids on wall time deleted ids 1..6); once the whole prefix is old
 * it goes, and an old event after recent ones stays until they go. */
static void durable_age_retention_deletes_only_an_old_prefix(void **state)
{
    fx_t *f = *state;
    const int64_t DAY = 86400 * SEC;
    fdn_events_t *es = open_store(f, 0, 0);
    for (int i = 1; i <= 10; i++)
        store_wall(f, es, "t", i == 6 ? fdn_clock_wall_ns(f->clock) - 2 * DAY : 0);
    assert_int_equal(fdn_events_set_durable_retention(es, 0, 3600 * SEC), 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    fdn_events_durable_status_t d = disk(es);
    assert_int_equal(d.count, 10);
    assert_int_equal(d.oldest_id, 1);
    assert_int_equal(d.pruned, 0);
    for (uint64_t id = 1; id <= 10; id++)
        expect_type(es, id, "t");
    /* two hours on: ids 1..10 are all older than 1 h; 11..13 recent, 14 two days old, 15
     * recent */
    assert_int_equal(fdn_clock_advance(f->clock, 2 * 3600 * SEC), 0);
    for (int i = 11; i <= 15; i++)
        store_wall(f, es, "u", i == 14 ? fdn_clock_wall_ns(f->clock) - 2 * DAY : 0);
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    d = disk(es);
    assert_int_equal(d.count, 5);
    assert_int_equal(d.oldest_id, 11);
    assert_int_equal(d.pruned, 10);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 10, &ev), FDN_ENOENT);
    expect_type(es, 14, "u");
    assert_int_equal(mem_count(es), 5); /* memory dropped what the file dropped */
    close_store(f, es);
}

/* Expect a time-bounded query to list exactly ids from..to (or to..from descending, limit
 * n), each with a timestamp inside the bounds. */
static void expect_time_range(fdn_events_t *es, const fdn_events_query_t *q, uint64_t first,
                              size_t n)
{
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, q, &l), 0);
    if (fdn_event_list_count(l) != n)
        fail_msg("query [%lld, %lld]: %zu events, expected %zu", (long long)q->time_start,
                 (long long)q->time_end, fdn_event_list_count(l), n);
    for (size_t i = 0; i < n; i++) {
        const fdn_event_t *e = fdn_event_list_at(l, i);
        assert_int_equal(fdn_event_id(e), q->descending ? first - i : first + i);
        assert_true(fdn_event_timestamp(e) >= q->time_start);
        assert_true(fdn_event_timestamp(e) <= q->time_end);
    }
    fdn_event_list_free(l);
}

/* A time-bounded query's file part is filtered on the timestamps the answer reports: after a
 * step of the wall clock of half a second (events of this clock keep their timestamps: within
 * 1 s of its offset), the file still lists exactly the events whose timestamps are in the
 * bounds, with offset, limit and either order. (Filtering the file on wall time moved the
 * range by the step: events 100 ms apart past time_end were listed, those at its start
 * missed.) */
static void file_time_bounds_apply_to_reported_timestamps(void **state)
{
    fx_t *f = *state;
    const int64_t MS = 1000000;
    fdn_events_t *es = open_store(f, 5, 0); /* memory: the newest 5 (ids 26..30) */
    int64_t ts[31];
    for (int i = 1; i <= 30; i++) {
        store_wall(f, es, "t", 0);
        ts[i] = fdn_clock_mono_ns(f->clock);
        assert_int_equal(fdn_clock_advance(f->clock, 100 * MS), 0);
    }
    assert_int_equal(fdn_events_enforce_retention(es, NULL), 0);
    assert_int_equal(mem_count(es), 5);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.time_start = ts[6];
    q.time_end = ts[15];
    expect_time_range(es, &q, 6, 10);
    for (int step = 0; step < 2; step++) {
        /* +0.5 s, then -1 s (-0.5 s from the start) */
        assert_int_equal(fdn__clock_step_wall(f->clock, step == 0 ? 500 * MS : -1000 * MS), 0);
        q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
        q.time_start = ts[6];
        q.time_end = ts[15];
        expect_time_range(es, &q, 6, 10);
        q.limit = 4; /* the file's first rows are outside: read past them */
        expect_time_range(es, &q, 6, 4);
        q.offset = 7;
        expect_time_range(es, &q, 13, 3);
        q.offset = 0;
        q.descending = true;
        expect_time_range(es, &q, 15, 4);
    }
    close_store(f, es);
}

/* One event of type p stored at the clock's now (wall: the clock's, or wall_ns), then the
 * clock moves 1 ms; its timestamp into *ts, its id returned. */
static uint64_t store_at(fx_t *f, fdn_events_t *es, int64_t wall_ns, int64_t *ts)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "p";
    sp.data = "{}";
    sp.data_len = 2;
    sp.flags = FDN_EVENT_NO_CORRELATION;
    sp.clock = f->clock;
    sp.wall_ns = wall_ns;
    uint64_t id = 0;
    assert_int_equal(fdn_events_store_specs(es, &sp, 1, &id, NULL), 0);
    if (ts != NULL)
        *ts = fdn_clock_mono_ns(f->clock);
    assert_int_equal(fdn_clock_advance(f->clock, 1000000), 0);
    return id;
}

static size_t query_all(fdn_events_t *es, uint64_t *ids, size_t cap)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 1000;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    size_t n = fdn_event_list_count(l);
    for (size_t i = 0; i < n && i < cap; i++)
        ids[i] = fdn_event_id(fdn_event_list_at(l, i));
    fdn_event_list_free(l);
    return n;
}

/* fdn_events_prune_before removes the events older than its cut from the file too, also those
 * memory no longer holds (before: the cut came from memory only, and with memory evicted
 * nothing was removed, and the file kept every event for good), as a prefix of ids, by the
 * timestamp a read gives them: event 3's wall time is an hour ahead (a caller's), so read from
 * the file it is an hour newer than its neighbours, and the prefix ends there; the older
 * events after it stay until it goes (the file, like memory, holds a contiguous range of ids:
 * deleting them one by one left a hole in the middle of the file). The file is changed when
 * the call returns (before: the writer's next transaction did it, lost in a kill before it). */
static void prune_before_removes_from_the_file(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, 10, 0);
    int64_t ts[106];
    for (int i = 1; i <= 100; i++) {
        int64_t wall = i == 3 ? fdn_clock_wall_ns(f->clock) + 3600 * SEC : 0;
        assert_int_equal(store_at(f, es, wall, &ts[i]), (uint64_t)i);
    }
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 90); /* memory: 91..100 */
    /* ids 1..50 but 3 are older than event 51: the prefix 1, 2 goes, 3 ends it */
    assert_int_equal(fdn_events_prune_before(es, ts[51], &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 98);
    assert_int_equal(test_sqlite_int(f->path, "SELECT min(id) FROM events"), 3);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events WHERE id < 51"), 48);
    uint64_t ids[128];
    assert_int_equal(query_all(es, ids, 128), 98);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 2, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(es, 4, &ev), 0);
    fdn_event_free(ev);
    assert_int_equal(fdn_events_get(es, 3, &ev), 0);
    int64_t ts3 = fdn_event_timestamp(ev); /* as read: rebuilt from its wall time */
    fdn_event_free(ev);
    assert_true(ts3 > ts[100]);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 10); /* memory untouched */
    /* two hours on, a cut inside memory: the file's 3..90 and memory's 91..102, each once */
    assert_int_equal(fdn_clock_advance(f->clock, 7200 * SEC), 0);
    for (int i = 101; i <= 105; i++)
        assert_int_equal(store_at(f, es, 0, &ts[i]), (uint64_t)i);
    assert_true(ts[103] > ts3);
    assert_int_equal(fdn_events_prune_before(es, ts[103], &n), 0);
    assert_int_equal(n, 100);
    assert_int_equal(disk(es).count, 3);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 3);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.oldest_id, 103);
    /* nothing older: nothing removed */
    assert_int_equal(fdn_events_prune_before(es, ts[103], &n), 0);
    assert_int_equal(n, 0);
    close_store(f, es);
    /* reopened: the file holds what the calls left */
    es = open_store(f, 10, 0);
    assert_int_equal(query_all(es, ids, 128), 3);
    assert_int_equal(ids[0], 103);
    assert_int_equal(ids[2], 105);
    close_store(f, es);
}

/* The prune's scan of the file reads a page of events (256) past its wall bound at a time and
 * goes on past a page it finds all older than the cut: 600 events 1 ms apart are all within
 * the 1 s the bound is widened by, so the first pages hold only older events, and the prefix
 * ends exactly at the cut's event. */
static void prune_before_reads_past_pages_of_older_events(void **state)
{
    fx_t *f = *state;
    fdn_events_t *es = open_store(f, 10, 0);
    int64_t ts[601];
    for (int i = 1; i <= 600; i++)
        assert_int_equal(store_at(f, es, 0, &ts[i]), (uint64_t)i);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 590);
    assert_int_equal(fdn_events_prune_before(es, ts[550], &n), 0);
    assert_int_equal(n, 549);
    assert_int_equal(test_sqlite_int(f->path, "SELECT min(id) FROM events"), 550);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 51);
    uint64_t ids[128];
    assert_int_equal(query_all(es, ids, 128), 51);
    assert_int_equal(ids[0], 550);
    close_store(f, es);
}

/* The durable tier's retention deletes in bounded transactions (fdn__evdb_prune_chunk rows
 * each, here 64): the right rows go, the count and the newest id stay right, and the store
 * goes on storing with the next ids. */
static void durable_retention_deletes_in_chunks(void **state)
{
    fx_t *f = *state;
    uint32_t chunk = fdn__evdb_prune_chunk;
    fdn__evdb_prune_chunk = 64;
    fdn_events_t *es = open_store(f, 0, 0);
    for (int i = 1; i <= 1000; i++)
        store_at(f, es, 0, NULL);
    assert_int_equal(fdn_events_set_durable_retention(es, 10, 0), 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    fdn_events_durable_status_t d = disk(es);
    assert_int_equal(d.count, 10);
    assert_int_equal(d.oldest_id, 991);
    assert_int_equal(d.pruned, 990);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 10);
    assert_int_equal(store_at(f, es, 0, NULL), 1001);
    /* a prune by time deletes in chunks as well: every one of the file's rows */
    fdn__evdb_prune_chunk = 3;
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
    assert_int_equal(n, 11);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 0);
    close_store(f, es);
    fdn__evdb_prune_chunk = chunk;
    es = open_store(f, 0, 0); /* ids are never given again */
    assert_int_equal(store_at(f, es, 0, NULL), 1002);
    close_store(f, es);
}

typedef struct async_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ran;
    int rc;
} async_done_t;

static void async_cb(int rc, uint64_t first_id, size_t n, void *user)
{
    async_done_t *a = user;
    (void)first_id;
    (void)n;
    pthread_mutex_lock(&a->mu);
    a->ran = true;
    a->rc = rc;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Another connection holds the file's write lock past busy_timeout (here 50 ms): the commit
 * fails with SQLITE_BUSY, which is transient. The waiting store returns FDN_ETIMEDOUT with its
 * event stored in memory; the store is healthy; an asynchronous store stays queued; once the
 * lock is free every one of them commits. Before: FDN_EIO, latched until a restart (every
 * later store failed). */
static void a_busy_file_is_not_latched(void **state)
{
    fx_t *f = *state;
    int busy_ms = fdn__evdb_busy_timeout_ms;
    fdn__evdb_busy_timeout_ms = 50;
    fdn_events_t *es = open_store(f, 0, 0);
    store_at(f, es, 0, NULL);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "p";
    sp.flags = FDN_EVENT_NO_CORRELATION;
    sp.clock = f->clock;
    uint64_t id2 = 0;
    assert_int_equal(fdn_events_store_specs(es, &sp, 1, &id2, NULL), FDN_ETIMEDOUT);
    assert_int_equal(id2, 2);
    assert_int_equal(fdn__events_service_health(es), 0);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 2, &ev), 0); /* in memory */
    fdn_event_free(ev);
    async_done_t a = {.ran = false};
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    const fdn_event_t *one = ev;
    uint64_t id3 = 0;
    assert_int_equal(fdn_events_store_async(es, &one, 1, &id3, async_cb, &a), 0);
    assert_int_equal(id3, 3);
    fdn_event_free(ev);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_at(f, es, 0, NULL), 4);
    pthread_mutex_lock(&a.mu);
    while (!a.ran)
        pthread_cond_wait(&a.cv, &a.mu);
    pthread_mutex_unlock(&a.mu);
    assert_int_equal(a.rc, 0);
    assert_int_equal(test_sqlite_int(f->path, "SELECT count(*) FROM events"), 4);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.durable_committed_id, 4);
    assert_int_equal(fdn__events_service_health(es), 0);
    close_store(f, es);
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    fdn__evdb_busy_timeout_ms = busy_ms;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hot_limits_evict_from_memory_only, setup, teardown),
        cmocka_unit_test_setup_teardown(prune_before_removes_from_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(prune_before_reads_past_pages_of_older_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(durable_retention_deletes_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(a_busy_file_is_not_latched, setup, teardown),
        cmocka_unit_test_setup_teardown(durable_retention_prunes_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(correlation_lookups_skip_a_file_known_to_hold_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(query_same_across_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(query_memory_answers_what_memory_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(one_offset_per_merged_read, setup, teardown),
        cmocka_unit_test_setup_teardown(a_prune_between_the_check_and_the_scan_misses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(retention_keys_update_live_and_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(warm_enable_false_without_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(a_lagging_correlation_index_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(the_correlation_index_is_in_the_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(runtime_types_are_never_refused_at_the_cap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reopen_age_cut_keeps_a_contiguous_range, setup, teardown),
        cmocka_unit_test_setup_teardown(durable_age_retention_deletes_only_an_old_prefix, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(file_time_bounds_apply_to_reported_timestamps, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
