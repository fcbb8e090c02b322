/* Events written as JSON text by the admin (src/admin/event_json.c) for GET /v1/events and
 * GET /v1/events/{id}: byte for byte what fdn_event_to_json gives, for every field form (ids
 * and parents at their limits, quotes in node and correlation id, wall times from 1970 to
 * 2262 and before 1970), every content type, and data texts jansson would rewrite (they take
 * the slow path) as well as those it keeps; the canonical-form check itself against
 * jansson's own parse and dump; and GET /v1/config/<path>, whose value is written as text by
 * the same check; and the memo of GET /v1/events answers: every answer it gives is the body
 * written anew, byte for byte, as events are appended and pruned and stores change. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "admin/admin_int.h"
#include "admin/event_json.h"
#include "admin/http_jw.h"
#include "admin_local.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t next_rand(void)
{
    uint64_t x = rng_state; /* xorshift64: a fixed sequence, the same every run */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* jansson's verdict: the dump of its parse, or NULL when it refuses the text */
static char *jansson_form(const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (j == NULL)
        return NULL;
    char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(j);
    assert_non_null(d);
    return d;
}

/* canonical means: jansson takes it and dumps exactly these bytes */
static void check_canonical(const char *s, size_t n)
{
    bool mine = fdn__admin_json_is_canonical(s, n);
    char *d = jansson_form(s, n);
    if (mine && (d == NULL || strlen(d) != n || memcmp(d, s, n) != 0))
        fail_msg("'%.*s' taken as canonical, jansson gives %s", (int)n, s, d ? d : "(refused)");
    fdn_free(d);
}

static void test_canonical_table(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "{}",
        "[]",
        "0",
        "-1",
        "123456789012345678",
        "true",
        "false",
        "null",
        "\"\"",
        "{\"a\":1}",
        "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":\"x\"}",
        "[[],{},\"\\u0000\"]",
        "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\"",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f/\"",
        "{\"i\":1}",
        "{\"\":0}",
        "{\"a\":1,\"b\":1}",
    };
    static const char *const no[] = {
        "",
        " {}",
        "{} ",
        "{ }",
        "[1, 2]",
        "{\"a\" :1}",
        "1.5",
        "1e3",
        "1E3",
        "-0",
        "01",
        "1234567890123456789",
        "\"\\/\"",
        "\"\\u0041\"",
        "\"\\u001f\"",
        "\"\\u000A\"",
        "\"\\u0008\"",
        "\"\\ud83d\\ude00\"",
        "{\"a\":1,\"a\":2}",
        "{\"\\u0000\":1}",
        "\"\x01\"",
        "\"\xc0\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "tru",
        "nul",
        "[1,]",
        "{\"a\":}",
        "{,}",
        "\"abc",
        "[1]]",
        "{\"a\":1}x",
        "+1",
        "-",
        "NaN",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!fdn__admin_json_is_canonical(yes[i], strlen(yes[i])))
            fail_msg("'%s' not taken as canonical", yes[i]);
        check_canonical(yes[i], strlen(yes[i]));
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (fdn__admin_json_is_canonical(no[i], strlen(no[i])))
            fail_msg("'%s' taken as canonical", no[i]);
    /* a NUL byte inside the length is not JSON text */
    assert_false(fdn__admin_json_is_canonical("[1]\0", 4));
    assert_false(fdn__admin_json_is_canonical(NULL, 0));
    /* nesting: 32 levels are checked, deeper goes to jansson */
    char deep[128];
    for (int d = 30; d <= 40; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        check_canonical(deep, 2 * (size_t)d);
        assert_true(fdn__admin_json_is_canonical(deep, 2 * (size_t)d) == (d <= 33));
    }
}

/* every text of up to 3 bytes over an alphabet of JSON's punctuation and a few others, and
 * random longer ones: canonical only when jansson's dump equals it */
static void test_canonical_exhaustive(void **state)
{
    (void)state;
    static const char alpha[] = "{}[]\":,01-a\\u e.\xc3\xa9";
    size_t na = sizeof alpha - 1;
    char s[16];
    size_t taken = 0;
    for (size_t len = 1; len <= 3; len++) {
        size_t total = 1;
        for (size_t k = 0; k < len; k++)
            total *= na;
        for (size_t c = 0; c < total; c++) {
            size_t x = c;
            for (size_t k = 0; k < len; k++) {
                s[k] = alpha[x % na];
                x /= na;
            }
            check_canonical(s, len);
            taken += fdn__admin_json_is_canonical(s, len);
        }
    }
    assert_true(taken > 20); /* the check does take texts, not only refuse them */
    static const char *const parts[] = {"{",       "}",    "[",           "]",           "\"k\"",
                                        ":",       ",",    "1",           "-2",          "0",
                                        "\"\\n\"", "null", "\"\\u0000\"", "\"\\u001B\"", " "};
    for (int round = 0; round < 4000; round++) {
        char buf[64];
        size_t n = 0, parts_n = 1 + next_rand() % 10;
        for (size_t k = 0; k < parts_n; k++) {
            const char *p = parts[next_rand() % (sizeof parts / sizeof parts[0])];
            size_t pl = strlen(p);
            if (n + pl >= sizeof buf)
                break;
            memcpy(buf + n, p, pl);
            n += pl;
        }
        check_canonical(buf, n);
    }
}

static char *fast_json(const fdn_event_t *ev)
{
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__admin_event_json(&w, ev);
    assert_int_equal(w.rc, 0);
    assert_non_null(w.t.p);
    assert_int_equal(strlen(w.t.p), w.t.len);
    return w.t.p;
}

static void compare(const fdn_event_spec_t *spec)
{
    fdn_event_t *ev = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_event_new(&ev, spec, &err) != 0)
        fail_msg("fdn_event_new: %s", err.message);
    char *want = NULL;
    assert_int_equal(fdn_event_to_json(ev, &want), 0);
    char *got = fast_json(ev);
    if (strcmp(got, want) != 0)
        fail_msg("admin: %s\nfdn_event_to_json: %s", got, want);
    fdn_free(got);
    fdn_free(want);
    fdn_event_free(ev);
}

static void test_events_as_to_json(void **state)
{
    (void)state;
    static const char *const datas[] = {
        "",
        "{\"i\":1}",
        "{ \"i\" : 1 }",
        "1.5",
        "\"\\u0041\"",
        "{\"a\":1,\"a\":2}",
        "[1,[2,[3]]]",
        "\"\\u0000x\"",
        "{\"\\u0000\":1}",
        "\"caf\xc3\xa9\"",
        "caf\xc3\xa9",
        "bad \xff utf8",
        "-0",
        "12345678901234567890",
        "true",
        "null",
        "a\"b\\c\n\x01\x7f",
        "not json",
        "x\0y",
        "{\"k\":\"v\",\"n\":[1,2,3],\"o\":{}}",
    };
    static const size_t dlens[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0};
    static const char *const nodes[] = {"", "host-1", "we\"ird\\node"};
    static const char *const cids[] = {"", "bench-corr-1", "q\"u\\o/te"};
    static const uint64_t parents[] = {0, 1, UINT64_MAX};
    static const int64_t walls[] = {1,
                                    999999999,
                                    1000000000,
                                    INT64_C(951782400123456789),  /* 2000-02-29 */
                                    INT64_C(4107542399999999999), /* 2100-02-28T23:59:59 */
                                    INT64_MAX,
                                    -1,
                                    INT64_C(-86400000000001),
                                    INT64_MIN};
    static const uint64_t ids[] = {1, 42, (uint64_t)INT64_MAX + 1};
    size_t cases = 0;
    for (size_t d = 0; d < sizeof datas / sizeof datas[0]; d++) {
        for (int ct = FDN_EVENT_CT_JSON; ct <= FDN_EVENT_CT_BINARY; ct++) {
            fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
            spec.type = "bench.corr";
            spec.data = datas[d];
            spec.data_len = dlens[d] ? dlens[d] : strlen(datas[d]);
            spec.content_type = (fdn_event_ctype_t)ct;
            spec.flags = FDN_EVENT_TRUSTED_JSON; /* data jansson refuses too (slow path) */
            spec.id = ids[(d + (size_t)ct) % 3];
            spec.timestamp_ns = (int64_t)(d * 1000 + (size_t)ct) - 5;
            spec.wall_ns = walls[(d + (size_t)ct) % (sizeof walls / sizeof walls[0])];
            spec.node = nodes[d % 3];
            spec.correlation_id = cids[(d / 3) % 3];
            if (spec.correlation_id[0] == '\0') {
                spec.correlation_id = NULL;
                spec.flags |= FDN_EVENT_NO_CORRELATION;
            }
            spec.parent_id = parents[(d + 1) % 3];
            spec.pid = (uint32_t)(d == 0 ? UINT32_MAX : d);
            spec.tid = 7;
            compare(&spec);
            cases++;
        }
    }
    assert_int_equal(cases, 60);
    /* data far beyond the writer's first 8 KiB, in both forms */
    size_t big = 200001;
    char *arr = malloc(big + 1);
    assert_non_null(arr);
    arr[0] = '[';
    for (size_t i = 1; i + 1 < big; i += 2) {
        arr[i] = '7';
        arr[i + 1] = ',';
    }
    arr[big - 1] = ']';
    arr[big] = '\0';
    for (int ct = FDN_EVENT_CT_JSON; ct <= FDN_EVENT_CT_TEXT; ct++) {
        fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
        spec.type = "big";
        spec.data = arr;
        spec.data_len = big;
        spec.content_type = (fdn_event_ctype_t)ct;
        compare(&spec);
    }
    free(arr);
}

/* random wall times over the whole int64 range and within 1970..2262: the same text as
 * gmtime_r + strftime */
static void test_wall_times(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
        spec.type = "t";
        spec.data = "{}";
        spec.data_len = 2;
        spec.node = "";
        spec.flags = FDN_EVENT_NO_CORRELATION;
        int64_t w = (int64_t)next_rand();
        if (i % 2)
            w = w < 0 ? -(w + 1) : w; /* after 1970 */
        if (i % 4 == 1)
            w %= INT64_C(4000000000000000000); /* within about 127 years */
        spec.wall_ns = w != 0 ? w : 1;
        compare(&spec);
    }
}

/* GET /v1/events?correlation_id= and GET /v1/events/{id} through the dispatcher (which hands
 * a caller without a socket the answer parsed): {"events":[fdn_event_to_json of each],
 * "count":n} and the event's own form, the same JSON values (the bytes of each event are
 * compared above) */
static void assert_json_text(const fdn__http_resp_t *r, const char *want, size_t len)
{
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
    json_t *w = json_loadb(want, len, 0, NULL);
    assert_non_null(w);
    if (!json_equal(r->json, w)) {
        char *got = json_dumps(r->json, JSON_COMPACT);
        fail_msg("answer %s\nwanted %.*s", got, (int)len, want);
    }
    json_decref(w);
}

static void test_query_answer(void **state)
{
    (void)state;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0); /* in memory */
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.events = es});
    static const char *const datas[] = {"{\"i\":1}", "{ \"i\" : 2 }", "[1.5]"};
    for (int i = 0; i < 3; i++) {
        fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
        spec.type = "q.t";
        spec.data = datas[i];
        spec.data_len = strlen(datas[i]);
        spec.correlation_id = "corr-x";
        fdn_event_t *ev = NULL;
        assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
        assert_int_equal(fdn_events_store(es, ev, NULL), 0);
        fdn_event_free(ev);
    }
    fdn_event_list_t *l = NULL;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = "corr-x";
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    assert_int_equal(fdn_event_list_count(l), 3);
    fdn__admin_text_t want = {NULL, 0, 0};
    assert_int_equal(fdn__admin_text_put(&want, "{\"events\":[", 11), 0);
    for (size_t i = 0; i < 3; i++) {
        char *e = NULL;
        assert_int_equal(fdn_event_to_json(fdn_event_list_at(l, i), &e), 0);
        if (i > 0)
            assert_int_equal(fdn__admin_text_put(&want, ",", 1), 0);
        assert_int_equal(fdn__admin_text_put(&want, e, strlen(e)), 0);
        fdn_free(e);
    }
    assert_int_equal(fdn__admin_text_put(&want, "],\"count\":3}", 12), 0);

    fdn__http_resp_t r;
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", "/v1/events?correlation_id=corr-x", NULL, NULL, 0, &r);
    assert_json_text(&r, want.p, want.len);
    fdn__http_resp_clear(&r);

    char *one = NULL;
    assert_int_equal(fdn_event_to_json(fdn_event_list_at(l, 1), &one), 0);
    char path[64];
    snprintf(path, sizeof path, "/v1/events/%llu",
             (unsigned long long)fdn_event_id(fdn_event_list_at(l, 1)));
    memset(&r, 0, sizeof r);
    fdn__admin_dispatch(a, "GET", path, NULL, NULL, 0, &r);
    assert_json_text(&r, one, strlen(one));
    fdn__http_resp_clear(&r);

    fdn_free(one);
    fdn_free(want.p);
    fdn_event_list_free(l);
    fdn_admin_destroy(a);
    fdn_events_destroy(es);
}

/* ---- the memo of GET /v1/events answers (fdn__admin_events_answer) ---------------------- */

static void store_corr(fdn_events_t *es, const char *cid, const char *data)
{
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "memo.t";
    spec.data = data;
    spec.data_len = strlen(data);
    spec.correlation_id = cid;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    assert_int_equal(fdn_events_store(es, ev, NULL), 0);
    fdn_event_free(ev);
}

static fdn_event_list_t *query_corr(fdn_events_t *es, const char *cid)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = cid;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(es, &q, &l), 0);
    return l;
}

/* The answer for cid, through the memo, checked byte for byte against the body written
 * anew (no memo) and against fdn_event_to_json of each event; resp keeps the answer (the
 * caller clears it). */
static bool g_by_query; /* answer_checked through fdn__admin_events_query (GET's path) */

static void answer_checked(fdn_events_t *es, const char *cid, fdn__http_resp_t *resp)
{
    fdn_event_list_t *fresh = query_corr(es, cid);
    fdn__jw_t w = {{NULL, 0, 0}, 0};
    fdn__admin_events_body(&w, fresh);
    assert_int_equal(w.rc, 0);
    fdn__admin_text_t want = {NULL, 0, 0};
    assert_int_equal(fdn__admin_text_put(&want, "{\"events\":[", 11), 0);
    size_t n = fdn_event_list_count(fresh);
    for (size_t i = 0; i < n; i++) {
        char *e = NULL;
        assert_int_equal(fdn_event_to_json(fdn_event_list_at(fresh, i), &e), 0);
        if (i > 0)
            assert_int_equal(fdn__admin_text_put(&want, ",", 1), 0);
        assert_int_equal(fdn__admin_text_put(&want, e, strlen(e)), 0);
        fdn_free(e);
    }
    char tail[48];
    int tl = snprintf(tail, sizeof tail, "],\"count\":%zu}", n);
    assert_int_equal(fdn__admin_text_put(&want, tail, (size_t)tl), 0);
    assert_int_equal(w.t.len, want.len);
    assert_memory_equal(w.t.p, want.p, want.len);

    memset(resp, 0, sizeof *resp);
    if (g_by_query) {
        fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
        q.correlation_id = cid;
        assert_int_equal(fdn__admin_events_query(es, &q, resp), 0);
    } else {
        fdn_event_list_t *l = query_corr(es, cid);
        assert_int_equal(fdn__admin_events_answer(&l, resp), 0);
        assert_null(l); /* taken */
    }
    assert_int_equal(resp->status, 200);
    assert_non_null(resp->text_free);
    if (resp->text_len != want.len || memcmp(resp->text, want.p, want.len) != 0)
        fail_msg("memo answer %.*s\nwritten anew %s", (int)resp->text_len, resp->text, want.p);
    assert_int_equal(resp->text[resp->text_len], '\0');
    fdn_free(w.t.p);
    fdn_free(want.p);
    fdn_event_list_free(fresh);
}

static void answer_memo(void)
{
    fdn__admin_events_memo_clear();
    fdn_events_t *es = NULL, *es2 = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    assert_int_equal(fdn_events_create(&es2, NULL, NULL), 0);
    for (int i = 0; i < 10; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"i\":%d}", i);
        store_corr(es, "memo-a", d);
        store_corr(es2, "memo-a", "{\"i\":0}"); /* same ids, other data */
    }
    fdn__http_resp_t r1, r2, r3;
    answer_checked(es, "memo-a", &r1);
    answer_checked(es, "memo-a", &r2);
    assert_ptr_equal(r2.text, r1.text); /* the second one is the first one's body, shared */
    fdn__http_resp_clear(&r1);
    fdn__http_resp_clear(&r2);

    /* another store, events of the same ids and correlation: not the memo's answer */
    answer_checked(es2, "memo-a", &r3);
    fdn__http_resp_clear(&r3);

    /* an event appended: a longer answer, then shared again */
    answer_checked(es, "memo-a", &r1);
    store_corr(es, "memo-a", "{\"i\":10}");
    answer_checked(es, "memo-a", &r2);
    assert_ptr_not_equal(r2.text, r1.text);
    assert_true(r2.text_len > r1.text_len);
    fdn__http_resp_clear(&r1); /* the memo keeps its own reference */
    answer_checked(es, "memo-a", &r3);
    assert_ptr_equal(r3.text, r2.text);
    fdn__http_resp_clear(&r2);
    fdn__http_resp_clear(&r3);

    /* pruned: fewer events */
    fdn_event_list_t *l = query_corr(es, "memo-a");
    int64_t cut = fdn_event_timestamp(fdn_event_list_at(l, 3));
    fdn_event_list_free(l);
    uint64_t removed = 0;
    assert_int_equal(fdn_events_prune_before(es, cut, &removed), 0);
    assert_int_equal(removed, 3);
    answer_checked(es, "memo-a", &r1);
    fdn__http_resp_clear(&r1);

    /* more distinct answers than slots (each replaces the oldest), empty answers included,
     * then the first ones again */
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 7; k++) {
            char cid[16];
            snprintf(cid, sizeof cid, "memo-%d", k);
            if (round == 0 && k % 2 == 0)
                store_corr(es, cid, "[1,\"x\"]");
            answer_checked(es, cid, &r1);
            fdn__http_resp_clear(&r1);
        }
    }
    answer_checked(es, "nobody", &r1);
    assert_string_equal(r1.text, "{\"events\":[],\"count\":0}");
    fdn__http_resp_clear(&r1);

    /* a body still held by an answer outlives the memo */
    answer_checked(es, "memo-a", &r1);
    fdn__admin_events_memo_clear();
    assert_true(r1.text_len > 100);
    assert_memory_equal(r1.text, "{\"events\":[{", 12);
    fdn__http_resp_clear(&r1);
    fdn_events_destroy(es2);
    fdn_events_destroy(es);
}

static void test_answer_memo(void **state)
{
    (void)state;
    g_by_query = false;
    answer_memo();
}

/* the same through the store's comparison in place (fdn_events_query_same) */
static void test_answer_memo_by_query(void **state)
{
    (void)state;
    g_by_query = true;
    answer_memo();
    g_by_query = false;
}

/* a thread's memo is freed when the thread exits (the leak checker of the sanitizer build
 * would report it otherwise), and the answers it handed out stay valid after that */
static void *memo_thread(void *arg)
{
    fdn__http_resp_t *r = arg;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, NULL, NULL), 0);
    store_corr(es, "memo-t", "{\"t\":1}");
    answer_checked(es, "memo-t", r);
    fdn_events_destroy(es);
    return NULL;
}

static void test_answer_memo_thread_exit(void **state)
{
    (void)state;
    fdn__http_resp_t r;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, memo_thread, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_non_null(strstr(r.text, "\"data\":{\"t\":1}}],\"count\":1}"));
    fdn__http_resp_clear(&r);
}

/* every path of the configuration tree (sections, leaves, values inside object leaves): GET
 * /v1/config/<path> answers {"path":p,"value":v} with v the service's value, whether it was
 * written as text (integers, strings, objects) or through jansson (reals) */
static void config_paths(fdn_admin_t *a, fdn_config_t *cfg, const char *prefix, json_t *v,
                         size_t *checked)
{
    if (*prefix != '\0') {
        char uri[512];
        snprintf(uri, sizeof uri, "/v1/config/%s", prefix);
        fdn__http_resp_t r;
        memset(&r, 0, sizeof r);
        fdn__admin_dispatch(a, "GET", uri, NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        char *s = NULL;
        assert_int_equal(fdn_config_get_json(cfg, prefix, &s, NULL), 0);
        json_t *val = json_loads(s, JSON_DECODE_ANY, NULL);
        assert_non_null(val);
        json_t *want = json_pack("{s:s, s:o}", "path", prefix, "value", val);
        if (!json_equal(r.json, want))
            fail_msg("GET %s: %s", uri, json_dumps(r.json, JSON_COMPACT));
        json_decref(want);
        fdn_free(s);
        fdn__http_resp_clear(&r);
        (*checked)++;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        char p[400];
        snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (strlen(p) < 200)
            config_paths(a, cfg, p, x, checked);
    }
}

static void test_config_get_answer(void **state)
{
    (void)state;
    fdn_config_t *cfg = NULL;
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    co.ignore_env = true;
    assert_int_equal(fdn_config_create(&cfg, &co, NULL), 0);
    fdn_admin_t *a = test_admin_local(NULL, &(test_admin_mounts_t){.config = cfg});
    char *all = NULL;
    assert_int_equal(fdn_config_get_json(cfg, "", &all, NULL), 0);
    json_t *tree = json_loads(all, JSON_DECODE_ANY, NULL);
    assert_non_null(tree);
    size_t checked = 0;
    config_paths(a, cfg, "", tree, &checked);
    assert_true(checked > 20); /* (ai.planning.performance_target, a real, among them) */
    json_decref(tree);
    fdn_free(all);
    fdn_admin_destroy(a);
    fdn_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_table),      cmocka_unit_test(test_canonical_exhaustive),
        cmocka_unit_test(test_events_as_to_json),    cmocka_unit_test(test_wall_times),
        cmocka_unit_test(test_query_answer),         cmocka_unit_test(test_config_get_answer),
        cmocka_unit_test(test_answer_memo),          cmocka_unit_test(test_answer_memo_thread_exit),
        cmocka_unit_test(test_answer_memo_by_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
