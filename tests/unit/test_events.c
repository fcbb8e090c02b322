/* Unit tests: events (construction, validation, codecs) and the event store (queries,
 * retention, subscriptions, lifecycle, durable tier). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdatomic.h>

#include <fdn/events.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"
#include "logic/event_int.h"
#include "services/event_store_int.h"
#include "fsize_limit.h"
#include "threads.h"

/* ---- helpers ---- */

static fdn_event_t *mkev(const char *type, const char *corr, int64_t ts, uint64_t parent,
                         const char *json)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.correlation_id = corr;
    if (corr == NULL)
        s.flags |= FDN_EVENT_NO_CORRELATION;
    s.timestamp_ns = ts;
    s.parent_id = parent;
    s.data = json;
    s.data_len = json ? strlen(json) : 0;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static uint64_t put(fdn_events_t *es, const char *type, const char *corr, int64_t ts,
                    uint64_t parent)
{
    fdn_event_t *ev = mkev(type, corr, ts, parent, "{\"k\":1}");
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_free(ev);
    return id;
}

static fdn_events_t *mem_store(fdn_clock_t *clk)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.clock = clk;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    return es;
}

static void ids_of(fdn_event_list_t *l, uint64_t *ids, size_t *n)
{
    *n = fdn_event_list_count(l);
    for (size_t i = 0; i < *n; i++)
        ids[i] = fdn_event_id(fdn_event_list_at(l, i));
}

static char g_tmp[256];

static void tmpdir_make(void)
{
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/fdn_events_XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
}

static void tmpdir_clean(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    assert_int_equal(system(cmd), 0);
}

/* The durable fixture (cmocka setup/teardown): a fresh g_tmp directory, removed afterwards,
 * and two manual clocks for a simulated reboot: `before` (monotonic 5000 s, wall
 * 1700000000 s) and `after` (monotonic restarted at 2 s, wall 130 s later). */
#define S1 1000000000LL
typedef struct durable_fx {
    char path[300]; /* g_tmp/store.db */
    fdn_clock_t *before, *after;
} durable_fx_t;

static int durable_setup(void **state)
{
    durable_fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tmpdir_make();
    snprintf(f->path, sizeof(f->path), "%s/store.db", g_tmp);
    assert_int_equal(fdn_clock_manual_create(&f->before, 5000 * S1, 1700000000 * S1), 0);
    assert_int_equal(fdn_clock_manual_create(&f->after, 2 * S1, 1700000130 * S1), 0);
    *state = f;
    return 0;
}

static int durable_teardown(void **state)
{
    durable_fx_t *f = *state;
    fdn_clock_destroy(f->before);
    fdn_clock_destroy(f->after);
    tmpdir_clean();
    free(f);
    return 0;
}

/* Stores one event of `type` stamped by clk (wall time: the clock's, or wall_ns if not 0). */
static void store_stamped(fdn_events_t *es, const char *type, fdn_clock_t *clk, int64_t wall_ns)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.clock = clk;
    sp.wall_ns = wall_ns;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &sp, NULL), 0);
    assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    fdn_event_free(ev);
}

/* ---- construction and validation ---- */

static void new_event_sets_all_fields(void **state)
{
    (void)state;
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "test_event";
    s.data = "{\"test\":\"data\"}";
    s.data_len = strlen(s.data);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    assert_string_equal(fdn_event_type(ev), "test_event");
    assert_true(fdn_event_timestamp(ev) != 0);
    assert_true(fdn_event_wall_time(ev) > (int64_t)1600000000 * 1000000000);
    assert_true(strlen(fdn_event_node(ev)) > 0);
    assert_int_equal(fdn_event_pid(ev), (uint32_t)getpid());
    assert_true(fdn_event_tid(ev) != 0);
    assert_int_equal(strlen(fdn_event_correlation_id(ev)), 36);
    assert_int_equal(fdn_event_parent_id(ev), 0);
    assert_int_equal(fdn_event_content_type(ev), FDN_EVENT_CT_JSON);
    size_t n;
    assert_memory_equal(fdn_event_data(ev, &n), "{\"test\":\"data\"}", 15);
    assert_int_equal(n, 15);
    /* two events get different correlation ids */
    fdn_event_t *ev2 = NULL;
    assert_int_equal(fdn_event_new(&ev2, &s, NULL), 0);
    assert_string_not_equal(fdn_event_correlation_id(ev), fdn_event_correlation_id(ev2));
    fdn_event_free(ev);
    fdn_event_free(ev2);
}

static void options_are_echoed_and_child_inherits(void **state)
{
    (void)state;
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "test";
    s.correlation_id = "test-correlation";
    s.parent_id = 12345;
    s.id = 999;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    assert_string_equal(fdn_event_correlation_id(ev), "test-correlation");
    assert_int_equal(fdn_event_parent_id(ev), 12345);
    assert_int_equal(fdn_event_id(ev), 999);
    fdn_event_spec_t c = FDN_EVENT_SPEC_INIT;
    c.type = "child";
    fdn_event_t *child = NULL;
    assert_int_equal(fdn_event_new_child(&child, ev, &c, NULL), 0);
    assert_int_equal(fdn_event_parent_id(child), 999);
    assert_string_equal(fdn_event_correlation_id(child), "test-correlation");
    fdn_event_t *orphan = NULL;
    assert_int_equal(fdn_event_new_child(&orphan, NULL, &c, NULL), FDN_EINVAL);
    fdn_event_free(child);
    fdn_event_free(ev);
}

static void validation_rules(void **state)
{
    (void)state;
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, &err), FDN_EVALIDATION);
    assert_string_equal(err.message, "Event type cannot be nil");
    assert_int_equal(err.ref_code, 3203);
    s.type = "9bad";
    assert_int_equal(fdn_event_validate(&s, &err), FDN_EEVENT_TYPE);
    s.type = "has space";
    assert_int_equal(fdn_event_validate(&s, NULL), FDN_EEVENT_TYPE);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[79] = '\0';
    s.type = longname;
    assert_int_equal(fdn_event_validate(&s, NULL), FDN_EEVENT_TYPE);
    s.type = "ok.type:v1-x_y";
    assert_int_equal(fdn_event_validate(&s, NULL), 0);
    s.correlation_id = "bad\ncorr";
    assert_int_equal(fdn_event_validate(&s, NULL), FDN_ETYPE_MISMATCH);
    s.correlation_id = NULL;
    s.data = "{not json";
    s.data_len = 9;
    assert_int_equal(fdn_event_validate(&s, &err), FDN_ETYPE_MISMATCH);
    s.content_type = FDN_EVENT_CT_TEXT;
    assert_int_equal(fdn_event_validate(&s, NULL), 0);
    s.content_type = (fdn_event_ctype_t)7;
    assert_int_equal(fdn_event_validate(&s, NULL), FDN_EINVAL);
    s.content_type = FDN_EVENT_CT_BINARY;
    s.data = NULL;
    assert_int_equal(fdn_event_validate(&s, NULL), FDN_EINVAL);
    char *big = calloc(1, 2000000);
    s.data = big;
    s.data_len = 2000000;
    assert_int_equal(fdn_event_validate(&s, &err), FDN_ETOO_LARGE);
    assert_string_equal(err.message, "Event data too large");
    assert_non_null(strstr(err.context, "max_size=1000000"));
    free(big);
    /* data forms that are fine: null, {}, [], "string", 42 */
    const char *ok[] = {"null", "{}", "[]", "\"string\"", "42"};
    s.content_type = FDN_EVENT_CT_JSON;
    for (size_t i = 0; i < 5; i++) {
        s.data = ok[i];
        s.data_len = strlen(ok[i]);
        assert_int_equal(fdn_event_validate(&s, NULL), 0);
    }
    assert_int_equal(fdn_event_type_allowed("function_entry", NULL), 0);
    assert_int_equal(fdn_event_type_allowed("type_b", NULL), 0);
    assert_int_equal(fdn_event_type_allowed("invalid_type", &err), FDN_EEVENT_TYPE);
    assert_int_equal(err.ref_code, 2004);
    assert_int_equal(fdn_event_type_allowed(NULL, NULL), FDN_ETYPE_MISMATCH);
}

static void correlation_chain_helper(void **state)
{
    (void)state;
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "t";
    const char *cids[] = {"test-123", "other", "test-123"};
    int64_t ts[] = {300, 200, 100};
    fdn_event_t *e[3];
    for (int i = 0; i < 3; i++) {
        s.id = (uint64_t)i + 1;
        s.correlation_id = cids[i];
        s.timestamp_ns = ts[i];
        assert_int_equal(fdn_event_new(&e[i], &s, NULL), 0);
    }
    uint64_t ids[3];
    size_t n = 0;
    assert_int_equal(
        fdn_event_correlation_chain((const fdn_event_t *const *)e, 3, "test-123", ids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 1);
    for (int i = 0; i < 3; i++)
        fdn_event_free(e[i]);
}

/* ---- codecs ---- */

static fdn_event_t *rich_event(size_t data_len, fdn_event_ctype_t ct)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "codec.test";
    s.id = 77;
    s.parent_id = 5;
    s.correlation_id = "corr-é"; /* non-ASCII is rejected below; use ascii */
    s.correlation_id = "corr-1";
    s.node = "node-a";
    s.timestamp_ns = -42;
    s.wall_ns = 1700000000123456789;
    s.content_type = ct;
    uint8_t *d = malloc(data_len + 1);
    for (size_t i = 0; i < data_len; i++)
        d[i] = ct == FDN_EVENT_CT_BINARY ? (uint8_t)(i * 7) : (uint8_t)('a' + i % 3);
    if (ct == FDN_EVENT_CT_JSON && data_len >= 2) {
        d[0] = '"';
        d[data_len - 1] = '"';
    }
    s.data = d;
    s.data_len = data_len;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    free(d);
    return ev;
}

static void binary_round_trip(void **state)
{
    (void)state;
    size_t sizes[] = {0, 10, 100, 5000};
    fdn_event_ctype_t cts[] = {FDN_EVENT_CT_JSON, FDN_EVENT_CT_TEXT, FDN_EVENT_CT_BINARY};
    for (size_t i = 0; i < 4; i++) {
        for (size_t c = 0; c < 3; c++) {
            fdn_event_t *ev = rich_event(sizes[i], cts[c]);
            for (unsigned fl = 0; fl < 2; fl++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                assert_int_equal(fdn_event_encode(ev, fl, &buf, &len), 0);
                fdn_event_t *back = NULL;
                assert_int_equal(fdn_event_decode(&back, buf, len, NULL), 0);
                assert_true(fdn_event_equal(ev, back));
                if (fl && sizes[i] == 5000)
                    assert_true(len < 1000); /* compressible payload was compressed */
                fdn_event_free(back);
                fdn_free(buf);
            }
            fdn_event_free(ev);
        }
    }
    /* embedded NUL bytes survive */
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "nul";
    s.content_type = FDN_EVENT_CT_BINARY;
    s.data = "a\0b\0c";
    s.data_len = 5;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(fdn_event_encode(ev, 0, &buf, &len), 0);
    fdn_event_t *back = NULL;
    assert_int_equal(fdn_event_decode(&back, buf, len, NULL), 0);
    assert_true(fdn_event_equal(ev, back));
    fdn_event_free(back);
    fdn_free(buf);
    fdn_event_free(ev);
}

static void crc32c_known_values(void **state)
{
    (void)state;
    assert_int_equal(fdn__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(fdn__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    for (size_t n = 0; n < sizeof(buf); n += 37) {
        assert_int_equal(fdn__crc32c(0, buf, n), fdn__crc32c_sw(0, buf, n));
        /* chaining */
        assert_int_equal(fdn__crc32c(fdn__crc32c(0, buf, n / 2), buf + n / 2, n - n / 2),
                         fdn__crc32c_sw(0, buf, n));
    }
}

static void binary_rejects_truncation_and_bit_flips(void **state)
{
    (void)state;
    for (unsigned fl = 0; fl < 2; fl++) {
        fdn_event_t *ev = rich_event(300, FDN_EVENT_CT_TEXT);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(fdn_event_encode(ev, fl, &buf, &len), 0);
        fdn_event_t *back = NULL;
        for (size_t k = 0; k < len; k++) {
            int rc = fdn_event_decode(&back, buf, k, NULL);
            assert_int_equal(rc, FDN_EDESERIALIZE);
        }
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = fdn_event_decode(&back, buf, len, NULL);
            assert_true(rc == FDN_EDESERIALIZE || rc == FDN_ECORRUPT);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_event_decode(&back, "not a valid binary", 18, &err), FDN_EDESERIALIZE);
        assert_int_equal(err.ref_code, 3102);
        assert_int_equal(fdn_event_decode(&back, buf, len, NULL), 0);
        fdn_event_free(back);
        fdn_free(buf);
        fdn_event_free(ev);
    }
}

/* Field damage with a valid CRC (a bug in a writer, or a crafted record) reaches the
 * structural checks: every one must answer FDN_EDESERIALIZE, never another code. */
static void binary_structure_checked_behind_crc(void **state)
{
    (void)state;
    fdn_event_t *ev = rich_event(300, FDN_EVENT_CT_TEXT);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fdn_event_encode(ev, 0, &buf, &len), 0);
    static const struct {
        size_t off;
        uint8_t val;
    } patch[] = {
        {5, 2},     /* unknown flag */
        {6, 3},     /* unknown content type */
        {6, 0xff},  /* unknown content type */
        {7, 1},     /* reserved */
        {57, 1},    /* reserved */
        {52, 0xff}, /* type_len: lengths no longer add up */
        {56, 0},    /* node_len: lengths no longer add up */
        {64, 0},    /* raw length differs from stored, uncompressed */
    };
    for (size_t k = 0; k < sizeof(patch) / sizeof(patch[0]); k++) {
        uint8_t *m = malloc(len);
        memcpy(m, buf, len);
        m[patch[k].off] = patch[k].val;
        uint32_t crc = fdn__crc32c(0, m, len - 4);
        for (int i = 0; i < 4; i++)
            m[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
        fdn_event_t *back = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_event_decode(&back, m, len, &err);
        if (rc != FDN_EDESERIALIZE)
            fail_msg("patch %zu (byte %zu = %u): %d %s", k, patch[k].off, patch[k].val, rc,
                     err.message);
        free(m);
    }
    fdn_free(buf);
    fdn_event_free(ev);
}

static void json_round_trip_and_rejects(void **state)
{
    (void)state;
    fdn_event_ctype_t cts[] = {FDN_EVENT_CT_JSON, FDN_EVENT_CT_TEXT, FDN_EVENT_CT_BINARY};
    for (size_t c = 0; c < 3; c++) {
        fdn_event_t *ev = rich_event(50, cts[c]);
        char *js = NULL;
        assert_int_equal(fdn_event_to_json(ev, &js), 0);
        fdn_event_t *back = NULL;
        assert_int_equal(fdn_event_from_json(&back, js, strlen(js), NULL), 0);
        assert_true(fdn_event_equal(ev, back));
        fdn_event_free(back);
        fdn_free(js);
        fdn_event_free(ev);
    }
    /* compact JSON data is preserved byte for byte */
    fdn_event_t *ev = mkev("j", "c", 5, 0, "{\"a\":[1,2,{\"b\":null}],\"s\":\"\\u0000x\"}");
    char *js = NULL;
    assert_int_equal(fdn_event_to_json(ev, &js), 0);
    assert_non_null(strstr(js, "\"wall_time\":\""));
    fdn_event_t *back = NULL;
    assert_int_equal(fdn_event_from_json(&back, js, strlen(js), NULL), 0);
    assert_true(fdn_event_equal(ev, back));
    fdn_event_free(back);
    fdn_free(js);
    fdn_event_free(ev);
    const char *bad[] = {
        "",
        "[]",
        "{\"type\":\"x\"}",                                /* no timestamp */
        "{\"type\":\"x\",\"timestamp_ns\":1,\"extra\":1}", /* unknown key */
        "{\"type\":1,\"timestamp_ns\":1}",                 /* wrong type */
        "{\"type\":\"x\",\"timestamp_ns\":1,\"id\":-1}",   /* negative id */
        "{\"type\":\"x\",\"timestamp_ns\":1,\"content_type\":\"binary\",\"data_base64\":\"@@@@\"}",
        "{\"type\":\"x\",\"timestamp_ns\":1,\"content_type\":\"binary\",\"data_base64\":\"QQ=\"}",
        "{\"type\":\"x\",\"timestamp_ns\":1,\"content_type\":\"weird\"}",
        "{\"type\":\"x\",\"timestamp_ns\":1,\"type\":\"y\"}", /* duplicate */
        "{\"type\":\"x\",\"timestamp_ns\":1,\"pid\":5000000000}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fdn_event_t *b = NULL;
        int rc = fdn_event_from_json(&b, bad[i], strlen(bad[i]), NULL);
        assert_int_equal(rc, FDN_EDESERIALIZE);
    }
    fdn_event_t *b = NULL;
    assert_int_equal(fdn_event_from_json(&b, "{\"timestamp_ns\":1}", 18, NULL), FDN_EVALIDATION);
    const char *badtype = "{\"type\":\"1x\",\"timestamp_ns\":1}";
    assert_int_equal(fdn_event_from_json(&b, badtype, strlen(badtype), NULL), FDN_EEVENT_TYPE);
}

/* ---- store ---- */

static void store_assigns_increasing_ids_and_get(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    uint64_t a = put(es, "type_a", NULL, 0, 0);
    uint64_t b = put(es, "type_a", NULL, 0, 0);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 2, &ev), 0);
    assert_int_equal(fdn_event_id(ev), 2);
    assert_string_equal(fdn_event_type(ev), "type_a");
    fdn_event_free(ev);
    assert_int_equal(fdn_events_get(es, 99999, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(es, 0, &ev), FDN_EINVAL);
    assert_int_equal(fdn_events_store(es, NULL, NULL), FDN_EINVAL);
    fdn_events_destroy(es);
    fdn_events_destroy(NULL);
}

static void batch_all_or_nothing(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_event_t *e[100];
    for (int i = 0; i < 100; i++)
        e[i] = mkev("batch", "bc", 0, 0, "1");
    uint64_t ids[100];
    assert_int_equal(fdn_events_store_batch(es, (const fdn_event_t *const *)e, 3, ids), 0);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[2], 3);
    /* a NULL in the middle: nothing stored */
    const fdn_event_t *bad[3] = {e[0], NULL, e[1]};
    assert_int_equal(fdn_events_store_batch(es, bad, 3, ids), FDN_EINVAL);
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 3);
    assert_int_equal(fdn_events_store_batch(es, (const fdn_event_t *const *)e, 100, ids), 0);
    assert_int_equal(ids[99], 103);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "batch";
    q.limit = 150;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 103);
    fdn_event_list_free(l);
    assert_int_equal(fdn_events_store_batch(es, NULL, 0, NULL), 0);
    for (int i = 0; i < 100; i++)
        fdn_event_free(e[i]);
    fdn_events_destroy(es);
}

/* Ids that jump past the newest segment (a shared backend's hole: positions gone from the
 * backend, event_shared.c put_run) start a new segment, for a one-event store and for a
 * batch: each id finds its own record, an id in the hole finds none, and the correlation
 * chain links across the holes. */
static void ids_past_a_hole_start_a_segment(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    assert_int_equal(put(es, "hole", "h", 0, 0), 1);
    assert_int_equal(put(es, "hole", "h", 0, 0), 2);
    fdn_event_t *e[3] = {mkev("hole", "h", 0, 0, "{\"at\":10}"),
                         mkev("hole", "h", 0, 0, "{\"at\":20}"),
                         mkev("hole", "h", 0, 0, "{\"at\":21}")};
    uint64_t id = 0, ids[2] = {0, 0};
    fdn__mutex_lock(&es->amu);
    es->next_id = 10;
    fdn__mutex_unlock(&es->amu);
    assert_int_equal(fdn_events_store(es, e[0], &id), 0);
    assert_int_equal(id, 10);
    fdn__mutex_lock(&es->amu);
    es->next_id = 20;
    fdn__mutex_unlock(&es->amu);
    assert_int_equal(fdn_events_store_batch(es, (const fdn_event_t *const *)e + 1, 2, ids), 0);
    assert_int_equal(ids[0], 20);
    assert_int_equal(ids[1], 21);
    const uint64_t want[] = {10, 20, 21};
    for (size_t i = 0; i < 3; i++) {
        fdn_event_t *got = NULL;
        assert_int_equal(fdn_events_get(es, want[i], &got), 0);
        assert_int_equal(fdn_event_id(got), want[i]);
        size_t len = 0, elen = 0;
        const void *d = fdn_event_data(got, &len), *ed = fdn_event_data(e[i], &elen);
        assert_int_equal(len, elen);
        assert_memory_equal(d, ed, len);
        fdn_event_free(got);
    }
    for (uint64_t h = 3; h < 20; h++) {
        fdn_event_t *got = NULL;
        if (h != 10)
            assert_int_equal(fdn_events_get(es, h, &got), FDN_ENOENT);
    }
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, "h", &l), 0);
    uint64_t chain[8];
    size_t nchain = 0;
    ids_of(l, chain, &nchain);
    assert_int_equal(nchain, 5);
    const uint64_t chain_want[] = {1, 2, 10, 20, 21};
    assert_memory_equal(chain, chain_want, sizeof(chain_want));
    fdn_event_list_free(l);
    for (size_t i = 0; i < 3; i++)
        fdn_event_free(e[i]);
    fdn_events_destroy(es);
}

static void query_filters(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    int64_t base = 1000000;
    put(es, "a", "c1", base + 100, 0); /* 1 */
    put(es, "b", "c2", base + 200, 1); /* 2 */
    put(es, "a", "c1", base + 300, 1); /* 3 */
    for (int i = 0; i < 7; i++)        /* 4..10 */
        put(es, "n", NULL, base + 400 + i, 0);
    fdn_event_list_t *l = NULL;
    uint64_t ids[32];
    size_t n;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "a";
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    fdn_event_list_free(l);
    /* time range inclusive */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.time_start = base + 150;
    q.time_end = base + 250;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 2);
    fdn_event_list_free(l);
    q.time_start = base + 200;
    q.time_end = base + 300;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 2);
    fdn_event_list_free(l);
    /* limit 3 offset 2 → 3,4,5 */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.limit = 3;
    q.offset = 2;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[2], 5);
    fdn_event_list_free(l);
    /* descending */
    q.offset = 0;
    q.descending = true;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(ids[0], 10);
    assert_int_equal(ids[2], 8);
    fdn_event_list_free(l);
    /* cursor */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.after_id = 8;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 9);
    fdn_event_list_free(l);
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.before_id = 3;
    q.descending = true;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    fdn_event_list_free(l);
    /* correlation honoured, with type and order */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.correlation_id = "c1";
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    fdn_event_list_free(l);
    q.descending = true;
    q.limit = 1;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 3);
    fdn_event_list_free(l);
    /* parent */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.parent_id = 1;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    ids_of(l, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    fdn_event_list_free(l);
    q.type = "b";
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    fdn_event_list_free(l);
    /* unknown type / correlation → empty */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.type = "nope";
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 0);
    fdn_event_list_free(l);
    /* validation */
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.limit = 0;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EINVAL);
    q.limit = -5;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EINVAL);
    q.limit = 5;
    q.offset = -1;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EINVAL);
    q.offset = 0;
    q.time_start = 10;
    q.time_end = 5;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EINVAL);
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.version = 9;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EINVAL);
    /* max_results cap */
    assert_int_equal(fdn_events_set_max_results(es, 4), 0);
    assert_int_equal(fdn_events_set_max_results(es, 0), FDN_EINVAL);
    q = (fdn_events_query_t)FDN_EVENTS_QUERY_INIT;
    q.limit = 100;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 4);
    fdn_event_list_free(l);
    fdn_events_destroy(es);
}

static void correlation_and_chains(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    uint64_t prev = 0;
    uint64_t chain[5];
    for (int i = 0; i < 5; i++) {
        put(es, "noise", "other", 0, 0);
        prev = chain[i] = put(es, "step", "chain-1", 0, prev);
    }
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, "chain-1", &l), 0);
    assert_int_equal(fdn_event_list_count(l), 5);
    int64_t last = INT64_MIN;
    for (size_t i = 0; i < 5; i++) {
        const fdn_event_t *e = fdn_event_list_at(l, i);
        assert_int_equal(fdn_event_id(e), chain[i]);
        assert_int_equal(fdn_event_parent_id(e), i ? chain[i - 1] : 0);
        assert_true(fdn_event_timestamp(e) >= last);
        last = fdn_event_timestamp(e);
    }
    fdn_event_list_free(l);
    assert_int_equal(fdn_events_get_by_correlation(es, "unknown", &l), 0);
    assert_int_equal(fdn_event_list_count(l), 0);
    fdn_event_list_free(l);
    assert_int_equal(fdn_events_get_by_correlation(es, NULL, &l), FDN_EINVAL);
    fdn_events_destroy(es);
}

static void timestamps_keep_id_order(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    put(es, "t", NULL, 500, 0);
    uint64_t id = put(es, "t", NULL, 100, 0); /* earlier than the newest: raised to 500 */
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, id, &ev), 0);
    assert_int_equal(fdn_event_timestamp(ev), 500);
    fdn_event_free(ev);
    fdn_events_destroy(es);
}

/* A timestamp more than 1 s past the store's clock is stored as the clock's now, so the clamp
 * never raises the later events past the clock: a caller's timestamp 10 days ahead no longer
 * stamps every later event 10 days ahead (retention by age kept them all, and a time range
 * around now found none). Within 1 s ahead a timestamp is kept. */
static void a_future_timestamp_is_lowered_to_the_clock(void **state)
{
    (void)state;
    const int64_t S = 1000000000;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000 * S, 1700000000 * S), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.clock = clk;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    uint64_t a = put(es, "t", NULL, 1000 * S + 10 * 86400 * S, 0); /* 10 days ahead */
    assert_int_equal(fdn_clock_advance(clk, S), 0);
    uint64_t b = put(es, "t", NULL, 1001 * S, 0);         /* now */
    uint64_t c = put(es, "t", NULL, 1001 * S + S / 2, 0); /* 0.5 s ahead: kept */
    uint64_t d = put(es, "t", NULL, 1001 * S + S / 4, 0); /* earlier: raised to c's */
    int64_t want[4] = {1000 * S, 1001 * S, 1001 * S + S / 2, 1001 * S + S / 2};
    uint64_t ids[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        fdn_event_t *ev = NULL;
        assert_int_equal(fdn_events_get(es, ids[i], &ev), 0);
        assert_int_equal(fdn_event_timestamp(ev), want[i]);
        fdn_event_free(ev);
    }
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.time_start = 1001 * S;
    q.time_end = 1001 * S;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), b);
    fdn_event_list_free(l);
    /* an hour on, retention by age (1 min) evicts them all */
    assert_int_equal(fdn_events_set_max_age(es, 60 * S), 0);
    assert_int_equal(fdn_clock_advance(clk, 3600 * S), 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 4);
    fdn_events_destroy(es);
    fdn_clock_destroy(clk);
}

static void prune_and_stats(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    int64_t base = 10000;
    put(es, "x", "p", base - 200, 0);
    put(es, "y", "p", base - 100, 0);
    put(es, "x", "q", base + 100, 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_prune_before(es, base - 50, &n), 0);
    assert_int_equal(n, 2);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_events_get(es, 1, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(es, 2, &ev), FDN_ENOENT);
    assert_int_equal(fdn_events_get(es, 3, &ev), 0);
    fdn_event_free(ev);
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_get_by_correlation(es, "p", &l), 0);
    assert_int_equal(fdn_event_list_count(l), 0);
    fdn_event_list_free(l);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 1);
    assert_int_equal(st.events_stored, 3);
    assert_int_equal(st.events_pruned, 2);
    assert_int_equal(st.oldest_id, 3);
    assert_int_equal(st.newest_id, 3);
    assert_int_equal(st.oldest_ts, base + 100);
    assert_int_equal(st.next_id, 4);
    assert_true(st.bytes > 0 && st.bytes_allocated >= st.bytes);
    fdn_events_type_stat_t ts[8];
    size_t nt = 0;
    assert_int_equal(fdn_events_type_stats(es, ts, 8, &nt), 0);
    /* "y" lost its only event: the type is released, only "x" is held */
    assert_int_equal(nt, 1);
    assert_string_equal(ts[0].type, "x");
    assert_int_equal(ts[0].count, 1);
    assert_int_equal(st.types, 1);
    /* new stores continue after pruning */
    assert_int_equal(put(es, "x", "p", 0, 0), 4);
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(put(es, "z", NULL, 0, 0), 5);
    fdn_events_destroy(es);
}

static void many_events_across_segments(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_event_t *ev =
        mkev("bulk", "g", 0, 0, "{\"payload\":\"0123456789012345678901234567890123456789\"}");
    fdn_event_t *ev2 = mkev("other", "h", 0, 0, "1");
    for (int i = 0; i < 20000; i++)
        assert_int_equal(fdn_events_store(es, i % 3 ? ev : ev2, NULL), 0);
    fdn_event_free(ev);
    fdn_event_free(ev2);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = "other";
    q.after_id = 9000;
    q.limit = 5;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 5);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), 9001); /* ids 1,4,7.. */
    fdn_event_list_free(l);
    uint64_t n;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fdn_events_set_max_events(es, 1000), 0);
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 19000);
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 1000);
    assert_int_equal(st.oldest_id, 19001);
    q.after_id = 0;
    q.limit = 1000;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), 19003);
    assert_int_equal(fdn_event_list_count(l), 333);
    fdn_event_list_free(l);
    fdn_events_destroy(es);
}

/* A retention run that evicts many events works in steps with the store's locks released in
 * between (fdn__evs_prune_ids, PRUNE_STEP): between two steps a query, a get and a store run,
 * and each sees a store pruned part of the way. */
typedef struct prune_probe {
    uint64_t calls;
    uint64_t last_oldest;
    uint64_t newest;
} prune_probe_t;

static void prune_probe(fdn_events_t *es, void *user)
{
    prune_probe_t *p = user;
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_true(st.oldest_id > p->last_oldest); /* moved on by a step */
    assert_true(st.oldest_id < p->newest);
    p->last_oldest = st.oldest_id;
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, p->newest, &got), 0);
    fdn_event_free(got);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.limit = 1;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    fdn_event_list_free(l);
    fdn_event_t *ev = mkev("during", "d", 0, 0, "1");
    assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    fdn_event_free(ev);
    p->calls++;
}

static void big_prune_runs_in_steps(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_event_t *ev = mkev("bulk", "g", 0, 0, "{\"k\":1}");
    uint64_t total = 3 * (uint64_t)PRUNE_STEP + 100;
    for (uint64_t i = 0; i < total; i++)
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    fdn_event_free(ev);
    prune_probe_t p = {0, 0, total};
    fdn__evs_prune_step_hook = prune_probe;
    fdn__evs_prune_step_user = &p;
    assert_int_equal(fdn_events_set_max_events(es, 10), 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    fdn__evs_prune_step_hook = NULL;
    fdn__evs_prune_step_user = NULL;
    assert_int_equal(p.calls, 3); /* 3 steps of PRUNE_STEP, then the last 90 */
    assert_int_equal(n, total - 10);
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_int_equal(st.oldest_id, total - 9);
    assert_int_equal(st.newest_id, total + 3); /* the probe's three stores */
    assert_int_equal(st.count, 10 + 3);
    fdn_events_destroy(es);
}

static void retention_thread_with_manual_clock(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000000000, 1700000000000000000), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.clock = clk;
    o.max_age_ns = 5000000000;        /* 5 s */
    o.prune_interval_ns = 1000000000; /* 1 s */
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    for (int i = 0; i < 10; i++)
        put(es, "r", NULL, fdn_clock_mono_ns(clk) + i, 0);
    fdn_clock_advance(clk, 1000000000);
    fdn__events_wait_prune_runs(es, 1);
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 10); /* not old enough */
    fdn_clock_advance(clk, 5000000000);
    fdn__events_wait_prune_runs(es, 2);
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.events_pruned, 10);
    /* max_events through the setter */
    for (int i = 0; i < 10; i++)
        put(es, "r", NULL, fdn_clock_mono_ns(clk), 0);
    assert_int_equal(fdn_events_set_max_events(es, 4), 0);
    assert_int_equal(fdn_events_set_max_age(es, -1), FDN_EINVAL);
    assert_int_equal(fdn_events_set_prune_interval(es, -1), FDN_EINVAL);
    fdn_clock_advance(clk, 1000000000);
    fdn__events_wait_prune_runs(es, 3);
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 4);
    assert_int_equal(st.oldest_id, 17);
    fdn_events_destroy(es);
    fdn_clock_destroy(clk);
}

/* ---- subscriptions ---- */

typedef struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t ids[64];
    size_t n;
    uint64_t skipped;
} sink_t;

static void sink_cb(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    sink_t *s = user;
    pthread_mutex_lock(&s->mu);
    if (s->n < 64)
        s->ids[s->n++] = fdn_event_id(ev);
    s->skipped += skipped;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sink_wait(sink_t *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    while (s->n < n)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void subscription_callback(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    put(es, "old", NULL, 0, 0); /* 1 */
    sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    sink_t all = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.type = "want";
    fdn_events_sub_t *sub = NULL, *sub2 = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, sink_cb, &s, &sub), 0);
    fdn_events_sub_opts_t from0 = FDN_EVENTS_SUB_OPTS_INIT;
    from0.after_id = 0;
    assert_int_equal(fdn_events_subscribe(es, &from0, sink_cb, &all, &sub2), 0);
    put(es, "want", NULL, 0, 0);  /* 2 */
    put(es, "other", NULL, 0, 0); /* 3 */
    put(es, "want", NULL, 0, 0);  /* 4 */
    sink_wait(&s, 2);
    sink_wait(&all, 4);
    assert_int_equal(s.ids[0], 2);
    assert_int_equal(s.ids[1], 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(all.ids[i], i + 1);
    fdn_events_unsubscribe(sub);
    fdn_events_unsubscribe(sub2);
    put(es, "want", NULL, 0, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(fdn_events_subscribe(es, &so, NULL, NULL, &sub), FDN_EINVAL);
    fdn_events_unsubscribe(NULL);
    fdn_events_destroy(es);
}

/* Appends from several threads while the delivery thread goes idle and wakes again: a
 * subscriber sees every event once, in id order. (An append signals the delivery thread only
 * when it waits, fdn__evs_notify_subs: a lost wake-up would leave the wait below hanging.) */
typedef struct count_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t n, last;
    bool out_of_order;
} count_sink_t;

static void count_cb(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    (void)skipped;
    count_sink_t *s = user;
    pthread_mutex_lock(&s->mu);
    if (fdn_event_id(ev) <= s->last)
        s->out_of_order = true;
    s->last = fdn_event_id(ev);
    s->n++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

enum { SUB_THREADS = 4, SUB_EACH = 2000 };

static void *sub_appender(void *arg)
{
    fdn_events_t *es = arg;
    for (int i = 0; i < SUB_EACH; i++) {
        put(es, "sub.t", NULL, 0, 0);
        if (i % 97 == 0)
            sched_yield(); /* (let the delivery thread catch up and wait now and then) */
    }
    return NULL;
}

static void subscription_sees_every_concurrent_append(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    count_sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, count_cb, &s, &sub), 0);
    for (int round = 1; round <= 3; round++) {
        pthread_t th[SUB_THREADS];
        for (int i = 0; i < SUB_THREADS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, sub_appender, es), 0);
        for (int i = 0; i < SUB_THREADS; i++)
            assert_int_equal(pthread_join(th[i], NULL), 0);
        uint64_t want = (uint64_t)round * SUB_THREADS * SUB_EACH;
        pthread_mutex_lock(&s.mu);
        while (s.n < want)
            pthread_cond_wait(&s.cv, &s.mu);
        assert_int_equal(s.n, want);
        assert_false(s.out_of_order);
        pthread_mutex_unlock(&s.mu);
        /* one more after the delivery thread went idle: delivered too */
        put(es, "sub.t", NULL, 0, 0);
        pthread_mutex_lock(&s.mu);
        while (s.n < want + 1)
            pthread_cond_wait(&s.cv, &s.mu);
        pthread_mutex_unlock(&s.mu);
        s.n--; /* (the rounds count the threads' events) */
    }
    fdn_events_unsubscribe(sub);
    fdn_events_destroy(es);
}

/* A memory store whose subscribers hold at most 8 undelivered events (*es), and an fd
 * subscription to it filtered by type or correlation id (either may be NULL). */
static fdn_events_sub_t *fd_sub_backlog8(fdn_events_t **es, const char *type, const char *corr)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.sub_max_backlog = 8;
    *es = NULL;
    assert_int_equal(fdn_events_create(es, &o, NULL), 0);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.type = type;
    so.correlation_id = corr;
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe_fd(*es, &so, &sub), 0);
    return sub;
}

static void subscription_fd_and_overflow(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_events_sub_t *sub = fd_sub_backlog8(&es, NULL, "fdc");
    int fd = fdn_events_sub_fd(sub);
    assert_true(fd >= 0);
    put(es, "x", "fdc", 0, 0);
    put(es, "x", "nope", 0, 0);
    put(es, "x", "fdc", 0, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    fdn_event_list_t *l = NULL;
    uint64_t sk = 99;
    assert_int_equal(fdn_events_sub_read(sub, 10, &l, &sk), 0);
    assert_int_equal(fdn_event_list_count(l), 2);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 1)), 3);
    assert_int_equal(sk, 0);
    fdn_event_list_free(l);
    /* a slow reader: 20 more events with backlog 8 → 12 skipped, writers never blocked */
    for (int i = 0; i < 20; i++)
        put(es, "x", "fdc", 0, 0);
    assert_int_equal(fdn_events_sub_read(sub, 100, &l, &sk), 0);
    assert_int_equal(sk, 12);
    assert_int_equal(fdn_event_list_count(l), 8);
    assert_int_equal(fdn_events_sub_overflow(sub), 12);
    fdn_event_list_free(l);
    assert_int_equal(fdn_events_sub_read(sub, 0, &l, &sk), FDN_EINVAL);
    fdn_events_unsubscribe(sub);
    fdn_events_destroy(es);
}

/* ---- filtered subscriptions cost nothing for other events (0.3.0) ---- */

/* Store one event of type "sync" and wait until a callback subscription to that type got
 * it: the delivery thread has then looked at every event stored before (it serves in id
 * order, and makes fd descriptors readable before it runs callbacks). */
static void sync_delivery(fdn_events_t *es)
{
    sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.type = "sync";
    fdn_events_sub_t *sub = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, sink_cb, &s, &sub), 0);
    put(es, "sync", NULL, 0, 0);
    sink_wait(&s, 1);
    fdn_events_unsubscribe(sub);
}

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* A typed or correlation-filtered fd subscription's descriptor is not made readable by
 * events its filter does not match, and reading finds nothing and skips nothing; a matching
 * event makes it readable. */
static void filtered_fd_not_raised_for_other_events(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_events_sub_opts_t to = FDN_EVENTS_SUB_OPTS_INIT, co = FDN_EVENTS_SUB_OPTS_INIT;
    to.type = "want";
    co.correlation_id = "c-want";
    fdn_events_sub_t *ts = NULL, *cs = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &to, &ts), 0);
    assert_int_equal(fdn_events_subscribe_fd(es, &co, &cs), 0);
    for (int i = 0; i < 50; i++)
        put(es, "other", "c-other", 0, 0);
    sync_delivery(es);
    assert_false(fd_readable(fdn_events_sub_fd(ts)));
    assert_false(fd_readable(fdn_events_sub_fd(cs)));
    fdn_event_list_t *l = NULL;
    uint64_t sk = 99;
    assert_int_equal(fdn_events_sub_read(ts, 10, &l, &sk), 0);
    assert_int_equal(fdn_event_list_count(l), 0);
    assert_int_equal(sk, 0);
    fdn_event_list_free(l);
    uint64_t want = put(es, "want", "c-want", 0, 0);
    sync_delivery(es);
    assert_true(fd_readable(fdn_events_sub_fd(ts)));
    assert_true(fd_readable(fdn_events_sub_fd(cs)));
    fdn_events_sub_t *subs[2] = {ts, cs};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(fdn_events_sub_read(subs[k], 10, &l, &sk), 0);
        assert_int_equal(fdn_event_list_count(l), 1);
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), want);
        assert_int_equal(sk, 0);
        fdn_event_list_free(l);
        assert_int_equal(fdn_events_sub_overflow(subs[k]), 0);
    }
    fdn_events_unsubscribe(ts);
    fdn_events_unsubscribe(cs);
    fdn_events_destroy(es);
}

/* The backlog counts the subscriber's own events: a typed subscriber with backlog 8 whose one
 * waiting event is followed by 100 of another type gets it, nothing skipped; with 20 of its
 * events interleaved with 21 others it skips its oldest 12 and gets the last 8 (counted in
 * ids, the skip was 33 events). */
static void typed_backlog_skip_counts_its_events_only(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    fdn_events_sub_t *sub = fd_sub_backlog8(&es, "want", NULL);
    uint64_t first = put(es, "want", NULL, 0, 0);
    for (int i = 0; i < 100; i++)
        put(es, "other", NULL, 0, 0);
    fdn_event_list_t *l = NULL;
    uint64_t sk = 99;
    assert_int_equal(fdn_events_sub_read(sub, 100, &l, &sk), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), first);
    assert_int_equal(sk, 0);
    fdn_event_list_free(l);
    /* 20 pairs want/other: ids base+1 .. base+40, its events at base+1, +3, .. +39 */
    uint64_t base = put(es, "other", NULL, 0, 0);
    for (int i = 0; i < 20; i++) {
        put(es, "want", NULL, 0, 0);
        put(es, "other", NULL, 0, 0);
    }
    assert_int_equal(fdn_events_sub_read(sub, 100, &l, &sk), 0);
    assert_int_equal(sk, 12);
    assert_int_equal(fdn_event_list_count(l), 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), base + 25 + 2 * i);
    fdn_event_list_free(l);
    assert_int_equal(fdn_events_sub_overflow(sub), 12);
    fdn_events_unsubscribe(sub);
    fdn_events_destroy(es);
}

/* Events of other types pruned before a typed subscriber read are not skips of its own;
 * its events pruned before delivery are. */
static void typed_skip_ignores_pruned_other_types(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.type = "want";
    fdn_events_sub_t *sub = NULL, *cb = NULL;
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &sub), 0);
    sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    assert_int_equal(fdn_events_subscribe(es, &so, sink_cb, &s, &cb), 0);
    for (int i = 0; i < 100; i++)
        put(es, "other", NULL, 0, 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
    assert_int_equal(n, 100);
    uint64_t want = put(es, "want", NULL, 0, 0);
    fdn_event_list_t *l = NULL;
    uint64_t sk = 99;
    assert_int_equal(fdn_events_sub_read(sub, 10, &l, &sk), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), want);
    assert_int_equal(sk, 0);
    fdn_event_list_free(l);
    sink_wait(&s, 1);
    assert_int_equal(s.ids[0], want);
    assert_int_equal(s.skipped, 0);
    assert_int_equal(fdn_events_sub_overflow(cb), 0);
    /* its own events pruned before it read them: counted */
    put(es, "want", NULL, 0, 0);
    put(es, "want", NULL, 0, 0);
    assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
    uint64_t last = put(es, "want", NULL, 0, 0);
    assert_int_equal(fdn_events_sub_read(sub, 10, &l, &sk), 0);
    assert_int_equal(fdn_event_list_count(l), 1);
    assert_int_equal(fdn_event_id(fdn_event_list_at(l, 0)), last);
    assert_int_equal(sk, 2);
    fdn_event_list_free(l);
    fdn_events_unsubscribe(sub);
    fdn_events_unsubscribe(cb);
    fdn_events_destroy(es);
}

/* Several types in one subscription (opts version 3): delivered once each, in id order
 * across the types, the history of after_id included; an fd reader gets them in pages. */
static void subscription_several_types(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    put(es, "b", NULL, 0, 0); /* 1 */
    put(es, "x", NULL, 0, 0); /* 2 */
    /* a duplicate is harmless */
    static const char *const types[] = {"a", "b", "a", "c"};
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.after_id = 0;
    so.types = types;
    so.ntypes = 4;
    sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    fdn_events_sub_t *sub = NULL, *fd = NULL;
    assert_int_equal(fdn_events_subscribe(es, &so, sink_cb, &s, &sub), 0);
    assert_int_equal(fdn_events_subscribe_fd(es, &so, &fd), 0);
    const char *seq[] = {"a", "x", "c", "a", "y", "b", "b"}; /* 3 .. 9 */
    for (size_t i = 0; i < 7; i++)
        put(es, seq[i], NULL, 0, 0);
    const uint64_t want[] = {1, 3, 5, 6, 8, 9};
    sink_wait(&s, 6);
    assert_int_equal(s.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(s.ids[i], want[i]);
    assert_int_equal(s.skipped, 0);
    size_t got = 0;
    while (got < 6) {
        fdn_event_list_t *l = NULL;
        uint64_t sk = 0;
        assert_int_equal(fdn_events_sub_read(fd, 4, &l, &sk), 0);
        assert_int_equal(sk, 0);
        size_t n = fdn_event_list_count(l);
        assert_true(n == (got == 0 ? 4u : 2u));
        for (size_t i = 0; i < n; i++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), want[got + i]);
        got += n;
        fdn_event_list_free(l);
    }
    fdn_events_unsubscribe(sub);
    fdn_events_unsubscribe(fd);

    /* invalid: type and types both, a NULL entry, more than 64 types, types NULL */
    fdn_events_sub_opts_t bad = so;
    bad.type = "a";
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), FDN_EINVAL);
    const char *withnull[] = {"a", NULL};
    bad = so;
    bad.types = withnull;
    bad.ntypes = 2;
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), FDN_EINVAL);
    const char *many[65];
    for (size_t i = 0; i < 65; i++)
        many[i] = "a";
    bad.types = many;
    bad.ntypes = 65;
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), FDN_EINVAL);
    bad.ntypes = 64;
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), 0);
    fdn_events_unsubscribe(fd);
    bad.types = NULL;
    bad.ntypes = 1;
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), FDN_EINVAL);
    /* version 2: types is not read */
    bad.version = 2;
    assert_int_equal(fdn_events_subscribe_fd(es, &bad, &fd), 0);
    fdn_events_unsubscribe(fd);
    fdn_events_destroy(es);
}

/* ---- lifecycle ---- */

static void unavailable_and_buffered(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    put(es, "a", NULL, 0, 0);
    fdn__events_service_stop(es);
    assert_int_equal(fdn__events_service_health(es), FDN_EUNAVAILABLE);
    fdn_event_t *ev = mkev("a", NULL, 0, 0, "1");
    uint64_t id;
    assert_int_equal(fdn_events_store(es, ev, &id), FDN_EUNAVAILABLE);
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, 1, &got), FDN_EUNAVAILABLE);
    fdn_event_list_t *l = NULL;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    assert_int_equal(fdn_events_query(es, &q, &l), FDN_EUNAVAILABLE);
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(fdn__events_service_health(es), 0);
    assert_int_equal(fdn_events_get(es, 1, &got), 0);
    fdn_event_free(got);
    fdn_events_destroy(es);

    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.unavailable_buffer = 3;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    put(es, "a", NULL, 0, 0);
    fdn__events_service_stop(es);
    fdn__events_service_stop(es); /* twice is fine */
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_events_store(es, ev, &ids[i]), 0);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[2], 4);
    assert_int_equal(fdn_events_store(es, ev, &id), FDN_EUNAVAILABLE); /* buffer full */
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(fdn__events_service_start(es), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn_events_get(es, ids[i], &got), 0);
        fdn_event_free(got);
    }
    assert_int_equal(put(es, "a", NULL, 0, 0), 5);
    fdn_events_destroy(es);
    fdn_event_free(ev);
}

/* A durable store on path driven by clk (NULL: the system clock). rc_out NULL: it must open. */
static fdn_events_t *durable_store_on(const char *path, fdn_events_mode_t mode, fdn_clock_t *clk,
                                      int *rc_out)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.mode = mode;
    o.clock = clk;
    fdn_events_t *es = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_create(&es, &o, &err);
    if (rc_out)
        *rc_out = rc;
    else
        assert_int_equal(rc, 0);
    return es;
}

static fdn_events_t *durable_store(const char *path, fdn_events_mode_t mode, int *rc_out)
{
    return durable_store_on(path, mode, NULL, rc_out);
}

static void durable_reopen_keeps_events_and_ids(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/ev.db", g_tmp);
    for (int m = 0; m < 2; m++) {
        unlink(path);
        fdn_events_t *es = durable_store(path, m ? FDN_EVENTS_FAST : FDN_EVENTS_DURABLE, NULL);
        for (int i = 0; i < 50; i++)
            put(es, i % 2 ? "odd" : "even", "dur", 1000 + i, 0);
        fdn_event_t *big = NULL;
        {
            fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
            s.type = "big";
            s.content_type = FDN_EVENT_CT_TEXT;
            char *d = malloc(10000);
            memset(d, 'z', 10000);
            s.data = d;
            s.data_len = 10000;
            s.timestamp_ns = 5000;
            assert_int_equal(fdn_event_new(&big, &s, NULL), 0);
            free(d);
        }
        uint64_t bid;
        assert_int_equal(fdn_events_store(es, big, &bid), 0);
        assert_int_equal(bid, 51);
        uint64_t n;
        assert_int_equal(fdn_events_prune_before(es, 1010, &n), 0);
        assert_int_equal(n, 10);
        /* service restart keeps everything */
        fdn__events_service_stop(es);
        assert_int_equal(fdn__events_service_start(es), 0);
        assert_int_equal(put(es, "after", NULL, 6000, 0), 52);
        fdn_events_destroy(es);

        es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
        fdn_events_stats_t st;
        fdn_events_stats(es, &st);
        assert_int_equal(st.count, 42);
        assert_int_equal(st.oldest_id, 11);
        assert_int_equal(st.newest_id, 52);
        fdn_event_t *got = NULL;
        assert_int_equal(fdn_events_get(es, 51, &got), 0);
        assert_true(fdn_event_equal(got, big) == false); /* id differs: big has id 0 */
        size_t dl;
        fdn_event_data(got, &dl);
        assert_int_equal(dl, 10000);
        fdn_event_free(got);
        fdn_event_free(big);
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.type = "odd";
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
        assert_int_equal(fdn_event_list_count(l), 20);
        fdn_event_list_free(l);
        assert_int_equal(fdn_events_get_by_correlation(es, "dur", &l), 0);
        assert_int_equal(fdn_event_list_count(l), 40);
        fdn_event_list_free(l);
        assert_int_equal(put(es, "again", NULL, 0, 0), 53);
        /* prune everything: ids still never reused */
        assert_int_equal(fdn_events_prune_before(es, INT64_MAX, &n), 0);
        fdn_events_destroy(es);
        es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
        fdn_events_stats(es, &st);
        assert_int_equal(st.count, 0);
        assert_int_equal(put(es, "fresh", NULL, 0, 0), 54);
        fdn_events_destroy(es);
    }
}

/* After a reboot the monotonic clock starts again below the stored timestamps: reloaded
 * events are mapped onto the new clock through their wall times, so ages stay right. */
static void reload_after_reboot_rebases_timestamps(void **state)
{
    durable_fx_t *f = *state;
    fdn_events_t *es = durable_store_on(f->path, FDN_EVENTS_DURABLE, f->before, NULL);
    for (int i = 0; i < 3; i++) {
        store_stamped(es, "boot", f->before, 0);
        fdn_clock_advance(f->before, 10 * S1);
    }
    fdn_events_destroy(es);
    /* reboot: mono restarts at 2 s, wall moved on by 100 s */
    es = durable_store_on(f->path, FDN_EVENTS_DURABLE, f->after, NULL);
    fdn_event_list_t *l = NULL;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 3);
    /* wall ages 130, 120, 110 s → mono 2 - 130 ... */
    assert_int_equal(fdn_event_timestamp(fdn_event_list_at(l, 0)), 2 * S1 - 130 * S1);
    assert_int_equal(fdn_event_timestamp(fdn_event_list_at(l, 2)), 2 * S1 - 110 * S1);
    fdn_event_list_free(l);
    /* retention by age works on the new clock: max age 115 s keeps only the newest */
    assert_int_equal(fdn_events_set_max_age(es, 115 * S1), 0);
    uint64_t n = 0;
    assert_int_equal(fdn_events_enforce_retention(es, &n), 0);
    assert_int_equal(n, 2);
    fdn_events_destroy(es);
}

/* Wall times are caller-supplied int64s: a reload that rebases through wall time must not
 * overflow on extreme ones (UBSan aborts on signed overflow). */
static void reload_rebase_extreme_wall_times(void **state)
{
    durable_fx_t *f = *state;
    fdn_events_t *es = durable_store_on(f->path, FDN_EVENTS_DURABLE, f->before, NULL);
    store_stamped(es, "wall", f->before, INT64_MIN + 1);
    store_stamped(es, "wall", f->before, INT64_MAX);
    fdn_events_destroy(es);
    es = durable_store_on(f->path, FDN_EVENTS_DURABLE, f->after, NULL);
    fdn_event_list_t *l = NULL;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 2);
    assert_int_equal(fdn_event_wall_time(fdn_event_list_at(l, 0)), INT64_MIN + 1);
    assert_true(fdn_event_timestamp(fdn_event_list_at(l, 0)) < 0); /* as old as it gets */
    assert_int_equal(fdn_event_timestamp(fdn_event_list_at(l, 1)), 2 * S1);
    fdn_event_list_free(l);
    fdn_events_destroy(es);
}

/* Stores buffered while a durable store is stopped are replayed on start, written to the
 * file, and found again after a reopen under the ids they were given. */
static void buffered_stores_reach_the_file(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/buf.db", g_tmp);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.unavailable_buffer = 2;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    assert_int_equal(put(es, "before", NULL, 0, 0), 1);
    fdn__events_service_stop(es);
    fdn_event_t *ev = mkev("during", "bc", 0, 0, "2");
    uint64_t a = 0, b = 0, c = 0;
    assert_int_equal(fdn_events_store(es, ev, &a), 0);
    assert_int_equal(fdn_events_store(es, ev, &b), 0);
    assert_int_equal(fdn_events_store(es, ev, &c), FDN_EUNAVAILABLE);
    assert_int_equal(a, 2);
    assert_int_equal(b, 3);
    assert_int_equal(fdn__events_service_start(es), 0);
    assert_int_equal(put(es, "after", NULL, 0, 0), 4);
    fdn_events_destroy(es);
    o.unavailable_buffer = 0;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_event_t *got = NULL;
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(fdn_events_get(es, id, &got), 0);
        assert_string_equal(fdn_event_type(got), id == 1 ? "before" : id == 4 ? "after" : "during");
        fdn_event_free(got);
    }
    fdn_events_destroy(es);
    fdn_event_free(ev);
}

static void corrupt_and_truncated_files_rejected(void **state)
{
    (void)state;
    char path[300], bad[300];
    snprintf(path, sizeof(path), "%s/good.db", g_tmp);
    fdn_events_t *es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
    for (int i = 0; i < 300; i++)
        put(es, "c", "cc", 0, 0);
    fdn_events_destroy(es); /* checkpoint on close: the data is in the main file */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    size_t size = (size_t)sb.st_size;
    uint8_t *orig = malloc(size);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, size, f), size);
    fclose(f);
    /* 1. garbage everywhere */
    snprintf(bad, sizeof(bad), "%s/garbage.db", g_tmp);
    f = fopen(bad, "wb");
    for (size_t i = 0; i < size; i++)
        fputc((int)((i * 131) & 0xff), f);
    fclose(f);
    int rc = 0;
    es = durable_store(bad, FDN_EVENTS_DURABLE, &rc);
    assert_null(es);
    assert_int_equal(rc, FDN_ECORRUPT);
    /* 2. garbage written over the data pages of a copy */
    int rejected = 0;
    for (size_t page = 1; page * 4096 < size; page++) {
        snprintf(bad, sizeof(bad), "%s/copy%zu.db", g_tmp, page);
        f = fopen(bad, "wb");
        fwrite(orig, 1, size, f);
        fseek(f, (long)(page * 4096 + 100), SEEK_SET);
        for (int i = 0; i < 600; i++)
            fputc(0xA5 ^ i, f);
        fclose(f);
        es = durable_store(bad, FDN_EVENTS_DURABLE, &rc);
        if (es == NULL) {
            assert_int_equal(rc, FDN_ECORRUPT);
            rejected++;
        }
        fdn_events_destroy(es);
    }
    assert_true(rejected > 0);
    /* 3. truncated copy */
    snprintf(bad, sizeof(bad), "%s/trunc.db", g_tmp);
    f = fopen(bad, "wb");
    fwrite(orig, 1, size / 2, f);
    fclose(f);
    es = durable_store(bad, FDN_EVENTS_DURABLE, &rc);
    assert_null(es);
    assert_int_equal(rc, FDN_ECORRUPT);
    free(orig);
}

static void concurrent_stores_exact_count(void **state);

typedef struct conc_arg {
    fdn_events_t *es;
    uint64_t id;
} conc_arg_t;

static void *conc_store(void *p)
{
    conc_arg_t *a = p;
    fdn_event_t *ev = mkev("conc", NULL, 0, 0, "1");
    int rc = fdn_events_store(a->es, ev, &a->id);
    fdn_event_free(ev);
    return rc == 0 ? p : NULL;
}

static void concurrent_stores_exact_count(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    test_threads_t t;
    conc_arg_t a[50];
    for (int i = 0; i < 50; i++)
        a[i].es = es;
    test_threads_init(&t, 0);
    test_threads_start_n(&t, 50, conc_store, a, sizeof(a[0]));
    test_threads_join(&t);
    uint64_t seen[51] = {0};
    for (int i = 0; i < 50; i++) {
        assert_non_null(t.ret[i]);
        assert_true(a[i].id >= 1 && a[i].id <= 50);
        assert_int_equal(seen[a[i].id]++, 0);
    }
    fdn_events_stats_t st;
    fdn_events_stats(es, &st);
    assert_int_equal(st.count, 50);
    fdn_events_destroy(es);
}

/* Property: random stores, a prune, then random queries agree with a brute-force model. */
typedef struct model_ev {
    uint64_t id;
    int type;
    int corr; /* -1 = none */
    uint64_t parent;
    int64_t ts;
} model_ev_t;

static uint64_t g_prng = 0x2545F4914F6CDD1Dull;

static uint64_t prng(void)
{
    g_prng ^= g_prng << 13;
    g_prng ^= g_prng >> 7;
    g_prng ^= g_prng << 17;
    return g_prng;
}

static void random_queries_match_model(void **state)
{
    (void)state;
    enum { N = 3000, Q = 600 };
    static model_ev_t m[N];
    fdn_events_t *es = mem_store(NULL);
    int64_t ts = 1000;
    char type[8], corr[8];
    for (int i = 0; i < N; i++) {
        ts += (int64_t)(prng() % 3);
        m[i].type = (int)(prng() % 4);
        m[i].corr = prng() % 5 == 0 ? -1 : (int)(prng() % 20);
        m[i].parent = i > 0 && prng() % 2 ? 1 + prng() % (uint64_t)i : 0;
        m[i].ts = ts;
        snprintf(type, sizeof(type), "t%d", m[i].type);
        snprintf(corr, sizeof(corr), "c%d", m[i].corr);
        m[i].id = put(es, type, m[i].corr < 0 ? NULL : corr, ts, m[i].parent);
        assert_int_equal(m[i].id, (uint64_t)i + 1);
    }
    uint64_t pruned = 0;
    int64_t cut_ts = m[N / 10].ts;
    assert_int_equal(fdn_events_prune_before(es, cut_ts, &pruned), 0);
    int first = 0;
    while (m[first].ts < cut_ts)
        first++;
    assert_int_equal(pruned, (uint64_t)first);
    static uint64_t want[N];
    for (int k = 0; k < Q; k++) {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        int qt = prng() % 2 ? (int)(prng() % 5) : -1; /* t4 never exists */
        int qc = prng() % 3 == 0 ? (int)(prng() % 21) : -1;
        if (qt >= 0) {
            snprintf(type, sizeof(type), "t%d", qt);
            q.type = type;
        }
        if (qc >= 0) {
            snprintf(corr, sizeof(corr), "c%d", qc);
            q.correlation_id = corr;
        }
        if (prng() % 4 == 0)
            q.parent_id = 1 + prng() % N;
        if (prng() % 2) {
            q.time_start = 1000 + (int64_t)(prng() % (uint64_t)(ts - 1000 + 2));
            q.time_end = q.time_start + (int64_t)(prng() % 800);
        }
        if (prng() % 3 == 0)
            q.after_id = prng() % (N + 5);
        if (prng() % 3 == 0)
            q.before_id = prng() % (N + 5);
        q.offset = prng() % 4 == 0 ? (int64_t)(prng() % 50) : 0;
        q.limit = 1 + (int64_t)(prng() % 300);
        q.descending = prng() % 2;
        size_t nw = 0;
        for (int i = first; i < N; i++) {
            const model_ev_t *e = &m[i];
            if ((qt >= 0 && e->type != qt) || (qc >= 0 && e->corr != qc) ||
                (q.parent_id && e->parent != q.parent_id) || e->ts < q.time_start ||
                e->ts > q.time_end || (q.after_id && e->id <= q.after_id) ||
                (q.before_id && e->id >= q.before_id))
                continue;
            want[nw++] = e->id;
        }
        if (q.descending)
            for (size_t i = 0; i < nw / 2; i++) {
                uint64_t t = want[i];
                want[i] = want[nw - 1 - i];
                want[nw - 1 - i] = t;
            }
        size_t off = (size_t)q.offset < nw ? (size_t)q.offset : nw;
        size_t cnt = FDN_MIN(nw - off, (size_t)q.limit);
        fdn_event_list_t *l = NULL;
        assert_int_equal(fdn_events_query(es, &q, &l), 0);
        if (fdn_event_list_count(l) != cnt)
            fail_msg("query %d: %zu results, expected %zu", k, fdn_event_list_count(l), cnt);
        for (size_t i = 0; i < cnt; i++)
            assert_int_equal(fdn_event_id(fdn_event_list_at(l, i)), want[off + i]);
        fdn_event_list_free(l);
    }
    fdn_events_destroy(es);
}

/* fdn_events_query_same: the result is compared with the given lists where the store holds
 * it; an equal list is named and nothing is copied, any difference (an appended or pruned
 * event, another field, another order or page) gives the result as fdn_events_query does. */
static void query_same_names_an_equal_list(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL), *es2 = mem_store(NULL);
    for (int i = 0; i < 10; i++) {
        put(es, "qs.t", "qs-1", 1000 + i, 0);
        fdn_event_t *ev = mkev("qs.t", "qs-1", 1000 + i, 0, "{\"k\":2}"); /* other data */
        assert_int_equal(fdn_events_store(es2, ev, NULL), 0);
        fdn_event_free(ev);
    }
    put(es, "qs.u", "qs-2", 2000, 0);
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT, q2 = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = "qs-1";
    q2.correlation_id = "qs-2";
    fdn_event_list_t *a = NULL, *b = NULL, *other = NULL, *out = NULL;
    assert_int_equal(fdn_events_query(es, &q, &a), 0);
    assert_int_equal(fdn_event_list_count(a), 10);
    assert_int_equal(fdn_events_query(es, &q2, &b), 0);
    assert_int_equal(fdn_events_query(es2, &q, &other), 0); /* same ids, other data */

    const fdn_event_list_t *prev[4] = {b, NULL, other, a};
    size_t same = 7;
    assert_int_equal(fdn_events_query_same(es, &q, prev, 4, &out, &same), 0);
    assert_int_equal(same, 3);
    assert_null(out); /* untouched */
    assert_int_equal(fdn_events_query_same(es2, &q, prev, 4, &out, &same), 0);
    assert_int_equal(same, 2);
    assert_int_equal(fdn_events_query_same(es, &q2, prev, 4, &out, &same), 0);
    assert_int_equal(same, 0);
    /* none given, or none equal: the result */
    assert_int_equal(fdn_events_query_same(es, &q, NULL, 0, &out, &same), 0);
    assert_int_equal(same, SIZE_MAX);
    assert_true(fdn__evs_lists_equal(out, a));
    fdn_event_list_free(out);
    out = NULL;
    assert_int_equal(fdn_events_query_same(es, &q, prev, 3, &out, &same), 0);
    assert_int_equal(same, SIZE_MAX);
    assert_true(fdn__evs_lists_equal(out, a));
    fdn_event_list_free(out);
    out = NULL;

    /* every kind of scan (correlation both ways, type, the whole range), pages of it */
    for (int k = 0; k < 24; k++) {
        fdn_events_query_t qk = FDN_EVENTS_QUERY_INIT;
        qk.correlation_id = k % 3 == 0 ? "qs-1" : NULL;
        qk.type = k % 3 == 1 ? "qs.t" : NULL;
        qk.descending = k % 2 == 1;
        qk.offset = k / 6;
        qk.limit = 1 + k % 7;
        fdn_event_list_t *r = NULL;
        assert_int_equal(fdn_events_query(es, &qk, &r), 0);
        const fdn_event_list_t *pk[3] = {a, r, b};
        assert_int_equal(fdn_events_query_same(es, &qk, pk, 3, &out, &same), 0);
        size_t want = fdn__evs_lists_equal(r, a) ? 0 : 1;
        if (same != want)
            fail_msg("query %d: named %zu, expected %zu", k, same, want);
        assert_null(out);
        fdn_event_list_free(r);
    }

    /* an event appended: no longer equal */
    put(es, "qs.t", "qs-1", 3000, 0);
    assert_int_equal(fdn_events_query_same(es, &q, prev, 4, &out, &same), 0);
    assert_int_equal(same, SIZE_MAX);
    assert_int_equal(fdn_event_list_count(out), 11);
    fdn_event_list_free(out);
    out = NULL;
    /* pruned: fewer */
    uint64_t removed = 0;
    assert_int_equal(fdn_events_prune_before(es, 1002, &removed), 0);
    assert_int_equal(removed, 2);
    fdn_event_list_t *c = NULL;
    assert_int_equal(fdn_events_query(es, &q, &c), 0);
    assert_int_equal(fdn_event_list_count(c), 9);
    const fdn_event_list_t *pc[2] = {a, c};
    assert_int_equal(fdn_events_query_same(es, &q, pc, 2, &out, &same), 0);
    assert_int_equal(same, 1);

    /* the checks of fdn_events_query, and its own */
    assert_int_equal(fdn_events_query_same(es, &q, prev, 4, &out, NULL), FDN_EINVAL);
    assert_int_equal(fdn_events_query_same(es, &q, NULL, 1, &out, &same), FDN_EINVAL);
    q.limit = 0;
    assert_int_equal(fdn_events_query_same(es, &q, prev, 4, &out, &same), FDN_EINVAL);
    assert_null(out);
    fdn_event_list_free(a);
    fdn_event_list_free(b);
    fdn_event_list_free(c);
    fdn_event_list_free(other);
    fdn_events_destroy(es2);
    fdn_events_destroy(es);
}

/* A real I/O failure: the file size limit stops the writer's commits. The store call gets
 * FDN_EIO and health reports it (so the supervisor restarts the service). Runs in a child
 * process because the limit is process-wide. */
static void writer_io_error_is_reported(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/io.db", g_tmp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fdn_events_t *es = NULL;
        fdn_event_t *ev = NULL;
        int rc = test_capped_store(path, NULL, &es, &ev); /* durable mode: the default */
        if (rc != 0)
            _exit(rc);
        for (int i = 0; i < 200 && rc == 0; i++)
            rc = fdn_events_store(es, ev, NULL);
        if (rc != FDN_EIO)
            _exit(13);
        if (fdn__events_service_health(es) != FDN_EIO)
            _exit(14);
        /* a restart clears the latch; the store still answers from memory */
        fdn__events_service_stop(es);
        fdn_event_t *got = NULL;
        if (fdn__events_service_start(es) != 0 || fdn_events_get(es, 1, &got) != 0)
            _exit(15);
        fdn_event_free(got);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* store_batch is all or nothing, also in the file: the writer's group commits (at most
 * 8192 events each) must not split a batch, or a crash or an I/O error between two commits
 * leaves part of a batch on disk. A child stores one batch of 12 000 events under a file
 * size limit that lets one commit of 8192 events through but not the whole batch; the
 * reopened file must hold none of the batch. */
static fdn_event_t *batch_ev(void)
{
    static uint8_t d[100];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 2654435761u >> 11);
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = "bat";
    s.content_type = FDN_EVENT_CT_BINARY;
    s.data = d;
    s.data_len = sizeof(d);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &s, NULL), 0);
    return ev;
}

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : 0;
}

static void batch_not_split_across_commits(void **state)
{
    (void)state;
    enum { N = 12000, ONE_COMMIT = 8192 };
    char path[300], wal[320];
    fdn_event_t *ev = batch_ev();
    const fdn_event_t **evs = malloc(N * sizeof(*evs));
    for (int i = 0; i < N; i++)
        evs[i] = ev;
    /* size of the WAL after one commit of ONE_COMMIT such events */
    snprintf(path, sizeof(path), "%s/probe.db", g_tmp);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    fdn_events_t *es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
    assert_int_equal(fdn_events_store_batch(es, evs, ONE_COMMIT, NULL), 0);
    off_t one = file_size(wal);
    assert_true(one > 0);
    fdn_events_destroy(es);

    snprintf(path, sizeof(path), "%s/batch.db", g_tmp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
        /* room for one commit of ONE_COMMIT events, not for N */
        if (test_fsize_limit((uint64_t)(one + one / 5)) != 0)
            _exit(10);
        if (fdn_events_store_batch(es, evs, N, NULL) != FDN_EIO)
            _exit(11);
        _exit(0); /* a crash: no orderly close */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    if (st.count != 0)
        fail_msg("%llu of the batch's %d events were committed", (unsigned long long)st.count, N);
    fdn_events_destroy(es);
    free(evs);
    fdn_event_free(ev);
}

typedef struct tm_count {
    _Atomic uint64_t stored, pruned;
} tm_count_t;

static int tm_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                      const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)meta;
    (void)nmeta;
    tm_count_t *c = user;
    double v = 0;
    for (size_t i = 0; i < nm; i++)
        if (strcmp(m[i].key, "counter") == 0)
            v = m[i].value;
    if (strcmp(event, "foundation.event_store.events_stored") == 0)
        atomic_fetch_add(&c->stored, (uint64_t)v);
    if (strcmp(event, "foundation.event_store.events_pruned") == 0)
        atomic_fetch_add(&c->pruned, (uint64_t)v);
    return 0;
}

static void telemetry_counters(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    tm_count_t c = {0};
    assert_int_equal(fdn_telemetry_attach(tm, NULL, "foundation.event_store",
                                          FDN_TELEMETRY_MATCH_PREFIX, tm_handler, &c),
                     0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.telemetry = tm;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    put(es, "t", NULL, 10, 0);
    fdn_event_t *e[3];
    for (int i = 0; i < 3; i++)
        e[i] = mkev("t", NULL, 20, 0, "1");
    assert_int_equal(fdn_events_store_batch(es, (const fdn_event_t *const *)e, 3, NULL), 0);
    for (int i = 0; i < 3; i++)
        fdn_event_free(e[i]);
    uint64_t n;
    assert_int_equal(fdn_events_prune_before(es, 15, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(atomic_load(&c.stored), 4);
    assert_int_equal(atomic_load(&c.pruned), 1);
    fdn_events_destroy(es);
    fdn_telemetry_destroy(tm);
}

/* Turning a store's telemetry off (or replacing it) returns only once every report the store
 * made into the old telemetry has finished, handlers included: then the caller may free what
 * the handlers use, or the telemetry itself. A handler of the store's append report holds
 * the setter (it blocks on a latch the test controls): the setter's thread must be asleep
 * inside the setter, not returned, while the handler runs. From the handler itself, on the
 * thread the store runs it on, the setter refuses (FDN_EBUSY: it would wait for itself). */
typedef struct tm_hold {
    fdn_events_t *es;
    fdn_telemetry_t *tm;
    test_waiter_t entered, release, started, done, park;
    _Atomic int calls;
    int inner_rc;     /* the setter called from inside the handler */
    int *handler_mem; /* what the handler uses: freed by the test once the setter returns */
    pid_t setter_tid;
    _Atomic bool setter_returned;
    int setter_rc;
} tm_hold_t;

static int tm_hold_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                           const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    tm_hold_t *h = user;
    if (atomic_fetch_add(&h->calls, 1) == 0) {
        h->inner_rc = fdn__events_set_telemetry(h->es, NULL);
        test_waiter_add(&h->entered, 1);
        test_waiter_wait(&h->release, 1);
    }
    (*h->handler_mem)++;
    return 0;
}

static void *tm_hold_appender(void *p)
{
    tm_hold_t *h = p;
    put(h->es, "t", NULL, 10, 0);
    return NULL;
}

static void *tm_hold_setter(void *p)
{
    tm_hold_t *h = p;
    h->setter_tid = test_thread_id();
    test_waiter_add(&h->started, 1);
    h->setter_rc = fdn__events_set_telemetry(h->es, NULL);
    atomic_store(&h->setter_returned, true);
    test_waiter_add(&h->done, 1);
    /* asleep here too, so that a setter that returned is seen as such, not waited for */
    test_waiter_wait(&h->park, 1);
    return NULL;
}

static void telemetry_off_waits_for_running_handlers(void **state)
{
    (void)state;
    tm_hold_t h = {0};
    test_waiter_init(&h.entered);
    test_waiter_init(&h.release);
    test_waiter_init(&h.started);
    test_waiter_init(&h.done);
    test_waiter_init(&h.park);
    h.handler_mem = malloc(sizeof(int));
    assert_non_null(h.handler_mem);
    *h.handler_mem = 0;
    assert_int_equal(fdn_telemetry_create(&h.tm, NULL), 0);
    assert_int_equal(fdn_telemetry_attach(h.tm, NULL, "foundation.event_store.append",
                                          FDN_TELEMETRY_MATCH_EXACT, tm_hold_handler, &h),
                     0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.telemetry = h.tm;
    assert_int_equal(fdn_events_create(&h.es, &o, NULL), 0);

    pthread_t appender, setter;
    assert_int_equal(pthread_create(&appender, NULL, tm_hold_appender, &h), 0);
    test_waiter_wait(&h.entered, 1); /* the handler runs, and holds */
    assert_int_equal(h.inner_rc, FDN_EBUSY);
    assert_int_equal(pthread_create(&setter, NULL, tm_hold_setter, &h), 0);
    test_waiter_wait(&h.started, 1);
    test_wait_futex(h.setter_tid); /* asleep: in the setter, or parked after it returned */
    assert_false(atomic_load(&h.setter_returned));
    assert_int_equal(test_waiter_value(&h.done), 0);

    test_waiter_add(&h.release, 1);
    test_waiter_wait(&h.done, 1);
    assert_int_equal(h.setter_rc, 0);
    /* the setter returned: no report of the store uses the telemetry or the handler's memory */
    assert_int_equal(*h.handler_mem, 1);
    free(h.handler_mem);
    h.handler_mem = NULL;
    fdn_telemetry_destroy(h.tm);
    assert_int_equal(pthread_join(appender, NULL), 0);
    test_waiter_add(&h.park, 1);
    assert_int_equal(pthread_join(setter, NULL), 0);
    put(h.es, "t", NULL, 20, 0); /* no telemetry now */
    assert_int_equal(atomic_load(&h.calls), 1);
    assert_int_equal(fdn__events_set_telemetry(NULL, NULL), FDN_EINVAL);
    fdn_events_destroy(h.es);
    test_waiter_destroy(&h.entered);
    test_waiter_destroy(&h.release);
    test_waiter_destroy(&h.started);
    test_waiter_destroy(&h.done);
    test_waiter_destroy(&h.park);
}

/* A large arena is faulted in a window ahead of the writes (MADV_POPULATE_WRITE), not one
 * page fault per page as the appends first touch it: right after the first event of a new
 * large segment, the pages of the window after it are resident. */
static void large_arena_faulted_ahead(void **state)
{
    (void)state;
    /* large blocks from fresh mappings (no page left resident by an earlier test's heap) */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    char *json = malloc(2002);
    assert_non_null(json);
    json[0] = '"';
    memset(json + 1, 'x', 1999);
    json[2000] = '"';
    json[2001] = '\0';
    fdn_event_t *ev = mkev("big", NULL, 1, 0, json);
    evs_seg_t *seg = NULL;
    for (int i = 0; i < 1000 && seg == NULL; i++) {
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        evs_segdir_t *d = atomic_load(&es->segdir);
        evs_seg_t *last = d->segs[atomic_load(&es->seg_n) - 1].seg;
        if (last->arena_cap > 64 * 1024 && atomic_load(&last->count) == 1)
            seg = last;
    }
    if (seg == NULL) { /* the second segment is sized for ~2 KB events: a large arena */
        fail_msg("no large segment");
        return;
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)seg->arena + seg->arena_used + pg - 1) & ~(uintptr_t)(pg - 1);
    uintptr_t to = ((uintptr_t)seg->arena + 200 * 1024) & ~(uintptr_t)(pg - 1);
    unsigned char vec[64];
    assert_true((to - from) / pg <= sizeof(vec));
    assert_int_equal(mincore((void *)from, to - from, vec), 0);
    for (size_t k = 0; k < (to - from) / pg; k++)
        assert_true(vec[k] & 1);
    /* the records are intact across the windows */
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, atomic_load(&es->published), &got), 0);
    assert_int_equal(got->data_len, 2001);
    assert_memory_equal(got->data, json, 2001);
    fdn_event_free(got);
    fdn_event_free(ev);
    free(json);
    fdn_events_destroy(es);
}

/* Group commit under many durable callers: the writer gathers the next commit after a large
 * one (for the callers it released to come back), yet every call returns only once its
 * event is committed, and a lone caller after the crowd is not left waiting (the gathering
 * has a deadline). All events are in the file after a reopen. */
#define GC_THREADS 16
#define GC_EACH    40

typedef struct gc_arg {
    fdn_events_t *es;
    fdn_event_t *ev;
    int bad;
} gc_arg_t;

static void *gc_thread(void *p)
{
    gc_arg_t *a = p;
    for (int i = 0; i < GC_EACH; i++) {
        uint64_t id = 0;
        fdn_events_stats_t st;
        if (fdn_events_store(a->es, a->ev, &id) != 0 || fdn_events_stats(a->es, &st) != 0 ||
            st.durable_committed_id < id)
            a->bad++;
    }
    return NULL;
}

static void durable_group_commit_many_callers(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/gc.db", g_tmp);
    unlink(path);
    fdn_events_t *es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
    fdn_event_t *ev = mkev("gc", "c", 1, 0, "{\"k\":1}");
    pthread_t th[GC_THREADS];
    gc_arg_t a[GC_THREADS];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < GC_THREADS; i++) {
            a[i] = (gc_arg_t){es, ev, 0};
            assert_int_equal(pthread_create(&th[i], NULL, gc_thread, &a[i]), 0);
        }
        for (int i = 0; i < GC_THREADS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(a[i].bad, 0);
        }
        /* alone after the crowd */
        uint64_t id = 0;
        assert_int_equal(fdn_events_store(es, ev, &id), 0);
        fdn_events_stats_t st;
        assert_int_equal(fdn_events_stats(es, &st), 0);
        assert_true(st.durable_committed_id >= id);
    }
    fdn_events_destroy(es);
    es = durable_store(path, FDN_EVENTS_DURABLE, NULL);
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 3 * (GC_THREADS * GC_EACH + 1));
    fdn_events_destroy(es);
    fdn_event_free(ev);
}

/* Segments freed by a prune are kept (two at most, counted in bytes_allocated) and reused by
 * the next appends instead of allocating and faulting in a new block. */
static void pruned_segments_reused(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    char json[200];
    memset(json, 'y', sizeof(json));
    json[0] = '"';
    json[198] = '"';
    json[199] = '\0';
    fdn_event_t *ev = mkev("r", NULL, 1, 0, json);
    while (atomic_load(&es->seg_n) < 6)
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    evs_segdir_t *d = atomic_load(&es->segdir);
    evs_seg_t *old[4];
    for (int i = 0; i < 4; i++)
        old[i] = d->segs[i].seg;
    assert_true(old[0]->arena_cap <= 64 * 1024); /* the first one is small: freed */
    assert_true(old[1]->arena_cap > 64 * 1024);
    uint64_t cut = d->segs[4].first_id;
    size_t freed = sizeof(evs_seg_t) + old[0]->arena_cap; /* + one large one, below */
    size_t large = old[1]->arena_cap;
    assert_int_equal(old[2]->arena_cap, large);
    assert_int_equal(old[3]->arena_cap, large);
    fdn_events_stats_t before, after;
    assert_int_equal(fdn_events_stats(es, &before), 0);
    assert_true(fdn__evs_prune_ids(es, cut) > 0);
    assert_int_equal(fdn_events_stats(es, &after), 0);
    assert_int_equal(es->nspare, 2);
    for (size_t k = 0; k < es->nspare; k++)
        assert_true(es->spare_seg[k] == old[1] || es->spare_seg[k] == old[2] ||
                    es->spare_seg[k] == old[3]);
    /* the kept segments are still counted; the small one and the third large one are not */
    assert_true(before.bytes_allocated - after.bytes_allocated >=
                freed + sizeof(evs_seg_t) + large);
    assert_true(before.bytes_allocated - after.bytes_allocated <
                freed + 2 * (sizeof(evs_seg_t) + large));
    /* the next segment is a kept one, and its events read back */
    size_t n0 = atomic_load(&es->seg_n);
    uint64_t id = 0;
    while (atomic_load(&es->seg_n) == n0)
        assert_int_equal(fdn_events_store(es, ev, &id), 0);
    evs_seg_t *cur = atomic_load(&es->segdir)->segs[atomic_load(&es->seg_n) - 1].seg;
    assert_true(cur == old[1] || cur == old[2] || cur == old[3]);
    assert_int_equal(es->nspare, 1);
    assert_int_equal(cur->first_id, id);
    fdn_event_t *got = NULL;
    assert_int_equal(fdn_events_get(es, id, &got), 0);
    assert_int_equal(got->data_len, 199);
    assert_memory_equal(got->data, json, 199);
    fdn_event_free(got);
    fdn_event_free(ev);
    fdn_events_destroy(es);
}

#define DURABLE_TEST(fn) cmocka_unit_test_setup_teardown(fn, durable_setup, durable_teardown)

/* A batch built from specs is validated whole first: the first bad spec names its index
 * and nothing is stored. */
static void batch_of_specs_all_or_nothing(void **state)
{
    (void)state;
    fdn_events_t *es = mem_store(NULL);
    fdn_event_spec_t specs[3];
    for (int i = 0; i < 3; i++) {
        specs[i] = (fdn_event_spec_t)FDN_EVENT_SPEC_INIT;
        specs[i].type = "order.placed";
        specs[i].data = "{\"n\":1}";
        specs[i].data_len = 7;
    }
    specs[1].data = "{not json";
    specs[1].data_len = 9;
    uint64_t ids[3] = {0, 0, 0};
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_store_specs(es, specs, 3, ids, &err);
    assert_true(rc < 0);
    assert_true(strncmp(err.message, "events[1]: ", 11) == 0);
    assert_non_null(strstr(err.context, "index=1"));
    fdn_events_stats_t st;
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 0); /* the good specs before it were not stored either */
    specs[1].data = "{\"n\":2}";
    specs[1].data_len = 7;
    assert_int_equal(fdn_events_store_specs(es, specs, 3, ids, &err), 0);
    assert_int_equal(ids[1], ids[0] + 1);
    assert_int_equal(ids[2], ids[0] + 2);
    assert_int_equal(fdn_events_stats(es, &st), 0);
    assert_int_equal(st.count, 3);
    assert_int_equal(fdn_events_store_specs(es, specs, 0, NULL, NULL), 0);
    assert_int_equal(fdn_events_store_specs(es, NULL, 2, NULL, NULL), FDN_EINVAL);
    fdn_events_destroy(es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_event_sets_all_fields),
        cmocka_unit_test(options_are_echoed_and_child_inherits),
        cmocka_unit_test(validation_rules),
        cmocka_unit_test(batch_of_specs_all_or_nothing),
        cmocka_unit_test(correlation_chain_helper),
        cmocka_unit_test(binary_round_trip),
        cmocka_unit_test(crc32c_known_values),
        cmocka_unit_test(binary_rejects_truncation_and_bit_flips),
        cmocka_unit_test(binary_structure_checked_behind_crc),
        cmocka_unit_test(json_round_trip_and_rejects),
        cmocka_unit_test(store_assigns_increasing_ids_and_get),
        cmocka_unit_test(batch_all_or_nothing),
        cmocka_unit_test(ids_past_a_hole_start_a_segment),
        cmocka_unit_test(query_filters),
        cmocka_unit_test(query_same_names_an_equal_list),
        cmocka_unit_test(correlation_and_chains),
        cmocka_unit_test(timestamps_keep_id_order),
        cmocka_unit_test(a_future_timestamp_is_lowered_to_the_clock),
        cmocka_unit_test(prune_and_stats),
        cmocka_unit_test(many_events_across_segments),
        cmocka_unit_test(big_prune_runs_in_steps),
        cmocka_unit_test(retention_thread_with_manual_clock),
        cmocka_unit_test(subscription_callback),
        cmocka_unit_test(subscription_sees_every_concurrent_append),
        cmocka_unit_test(subscription_fd_and_overflow),
        cmocka_unit_test(filtered_fd_not_raised_for_other_events),
        cmocka_unit_test(typed_backlog_skip_counts_its_events_only),
        cmocka_unit_test(typed_skip_ignores_pruned_other_types),
        cmocka_unit_test(subscription_several_types),
        cmocka_unit_test(unavailable_and_buffered),
        DURABLE_TEST(durable_reopen_keeps_events_and_ids),
        DURABLE_TEST(durable_group_commit_many_callers),
        DURABLE_TEST(reload_after_reboot_rebases_timestamps),
        DURABLE_TEST(reload_rebase_extreme_wall_times),
        DURABLE_TEST(buffered_stores_reach_the_file),
        DURABLE_TEST(corrupt_and_truncated_files_rejected),
        cmocka_unit_test(concurrent_stores_exact_count),
        /* forks: must run before anything leaves a thread behind (liburcu's call_rcu
         * thread, started by telemetry), or TSan refuses to start threads in the child */
        DURABLE_TEST(writer_io_error_is_reported),
        DURABLE_TEST(batch_not_split_across_commits),
        cmocka_unit_test(random_queries_match_model),
        cmocka_unit_test(telemetry_counters),
        cmocka_unit_test(telemetry_off_waits_for_running_handlers),
        cmocka_unit_test(large_arena_faulted_ahead),
        cmocka_unit_test(pruned_segments_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
