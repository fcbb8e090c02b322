/* DESIGN: the PostgreSQL fixture of the engine tests (see pg_fixture.h), over engine.h's
 * fixture URL and run id. The schema counter is atomic, so any thread may name schemas;
 * test_pg_url is written once, by the group setup, before any test runs. */
#include "pg_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

char test_pg_url[256];

static atomic_uint g_schema_seq;

void test_pg_fixture_url(void)
{
    test_engine_fixture_url("FDN_TEST_PG_DIR", test_pg_url, sizeof(test_pg_url));
}

int test_pg_setup(void **state)
{
    (void)state;
    test_pg_fixture_url();
    return 0;
}

void test_pg_schema_name(char *buf, size_t cap, const char *what)
{
    unsigned n = atomic_fetch_add(&g_schema_seq, 1);
    snprintf(buf, cap, "%s_%u_%u", what, test_engine_run(), n);
}

void test_pg_store_opts(fdn_events_opts_t *o, const char *url, const char *schema)
{
    *o = (fdn_events_opts_t)FDN_EVENTS_OPTS_INIT;
    o->backend = FDN_EVENTS_BACKEND_POSTGRES;
    o->postgres.url = url != NULL ? url : test_pg_url;
    o->postgres.schema = schema;
    o->postgres.poll_interval_ms = 50;
    o->postgres.command_timeout_ms = TEST_PG_CALL_MS;
    o->postgres.connect_timeout_ms = TEST_PG_CALL_MS;
    o->max_results = 100000;
}

fdn_events_t *test_pg_store_open(const fdn_events_opts_t *o)
{
    fdn_events_t *es = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_create(&es, o, &err);
    if (rc != 0)
        fail_msg("fdn_events_create on PostgreSQL (schema %s): %s: %s", o->postgres.schema,
                 fdn_err_name(rc), err.message);
    return es;
}

fdn_events_t *test_pg_store_open_short(const fdn_events_opts_t *o)
{
    int64_t end = test_now_ms() + 60000;
    for (unsigned tries = 1;; tries++) {
        fdn_events_t *es = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_events_create(&es, o, &err);
        if (rc == 0) {
            if (tries > 1)
                print_message("store on schema %s opened at try %u (a call passed its bound)\n",
                              o->postgres.schema, tries);
            return es;
        }
        if (rc == FDN_EINVAL || test_now_ms() > end)
            fail_msg("fdn_events_create on PostgreSQL (schema %s), try %u: %s: %s",
                     o->postgres.schema, tries, fdn_err_name(rc), err.message);
        test_pause_ms(50); /* a poll: PostgreSQL is up, only slow */
    }
}

void test_pg_clocks_init(test_pg_clocks_t *c)
{
    const int64_t wall = 1700000000000000000;
    assert_int_equal(fdn_clock_manual_create(&c->store, 1000000000000, wall), 0);
    assert_int_equal(fdn_clock_manual_create(&c->prod, 5000000000, wall), 0);
}

void test_pg_clocks_destroy(test_pg_clocks_t *c)
{
    fdn_clock_destroy(c->store);
    fdn_clock_destroy(c->prod);
    c->store = c->prod = NULL;
}

void test_pg_two_stores(const fdn_events_opts_t *o, test_pg_order_t order,
                        test_pg_history_fn history, void *user, fdn_events_t **first,
                        fdn_events_t **second)
{
    *first = test_pg_store_open(o);
    if (order == TEST_PG_BOTH_THEN_HISTORY)
        *second = test_pg_store_open(o);
    if (history != NULL)
        history(*first, user);
    if (order == TEST_PG_HISTORY_THEN_SECOND)
        *second = test_pg_store_open(o);
}

fdn_events_t *test_pg_store(const char *schema)
{
    fdn_events_opts_t o;
    test_pg_store_opts(&o, NULL, schema);
    return test_pg_store_open(&o);
}

fdn_event_t *test_pg_event(const char *type, const char *corr, unsigned w, unsigned s, size_t pad,
                           uint64_t parent)
{
    char *data = malloc(pad + 64);
    assert_non_null(data);
    int n = snprintf(data, 64, "{\"w\":%u,\"s\":%u", w, s);
    if (pad > 0) {
        n += snprintf(data + n, 64 - (size_t)n, ",\"p\":\"");
        memset(data + n, 'a' + (int)((w + s) % 26), pad);
        n += (int)pad;
        data[n++] = '"';
    }
    memcpy(data + n, "}", 2);
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.correlation_id = corr;
    sp.data = data;
    sp.data_len = strlen(data);
    sp.parent_id = parent;
    fdn_event_t *ev = NULL;
    int rc = fdn_event_new(&ev, &sp, NULL);
    free(data);
    assert_int_equal(rc, 0);
    return ev;
}

bool test_pg_event_ws(const fdn_event_t *ev, unsigned *w, unsigned *s)
{
    size_t len = 0;
    const char *d = fdn_event_data(ev, &len);
    return d != NULL && sscanf(d, "{\"w\":%u,\"s\":%u", w, s) == 2;
}

unsigned test_pg_events_env(unsigned def)
{
    const char *env = getenv("FDN_TEST_PG_EVENTS");
    if (env == NULL)
        return def;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(env, &end, 10);
    if (errno != 0 || end == env || *end != '\0' || env[0] == '-' || v < 1 || v > 1000000)
        fail_msg("FDN_TEST_PG_EVENTS=%s: not a count of events in 1..1000000", env);
    return (unsigned)v;
}

void test_pg_signal_cluster(const char *dir, int sig)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long pm = 0;
    assert_int_equal(fscanf(f, "%ld", &pm), 1);
    fclose(f);
    assert_int_equal(kill((pid_t)pm, sig), 0);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end = NULL;
        long pid = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != '\0')
            continue;
        char sp[64], buf[512];
        snprintf(sp, sizeof(sp), "/proc/%ld/stat", pid);
        FILE *sf = fopen(sp, "r");
        if (sf == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, sf);
        fclose(sf);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
        char state;
        long ppid = 0;
        if (rp != NULL && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && ppid == pm)
            (void)kill((pid_t)pid, sig);
    }
    closedir(d);
}

uint64_t test_pg_backend_calls(fdn_telemetry_t *tm, const char *op)
{
    static const char *const labels[] = {"op", "outcome"};
    fdn_telemetry_family_t *f = NULL;
    assert_int_equal(fdn_telemetry_family(tm, &f, "fdn_events_backend_request_duration_seconds",
                                          NULL, FDN_TELEMETRY_HISTOGRAM, labels, 2, 64),
                     0);
    uint64_t n = 0;
    static const char *const outcomes[] = {"ok", "error"};
    for (int i = 0; i < 2; i++) {
        const char *v[] = {op, outcomes[i]};
        fdn_histogram_t *h = NULL;
        assert_int_equal(fdn_telemetry_family_histogram(f, &h, v, 2), 0);
        fdn_telemetry_hist_stats_t st;
        fdn_histogram_stats(h, &st);
        n += st.count;
    }
    return n;
}
