/* Unit tests: the etcd gateway's formats (logic/etcd_codec.c), the shared registry's entry
 * values (infra/registry_etcd.c) and the client's checks that need no server
 * (storage/etcd_client.c), plus the shared API on a registry without a shared part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/registry.h>

#include "core/alloc.h"
#include "infra/registry_shared.h"
#include "logic/etcd_codec.h"
#include "storage/etcd_client.h"

static void b64_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char e[32], d[32];
        size_t n = strlen(plain[i]);
        assert_int_equal(fdn__b64_encode(e, sizeof(e), plain[i], n), strlen(enc[i]));
        assert_string_equal(e, enc[i]);
        assert_int_equal(fdn__b64_encoded_len(n), strlen(enc[i]));
        assert_int_equal(fdn__b64_decode(d, sizeof(d), enc[i], strlen(enc[i])), (int64_t)n);
        assert_memory_equal(d, plain[i], n);
    }
    char d[16];
    /* binary bytes round trip */
    const unsigned char bin[] = {0, 0xff, 0x10, 0x80, 0x7f};
    char e[16];
    size_t el = fdn__b64_encode(e, sizeof(e), bin, sizeof(bin));
    assert_int_equal(fdn__b64_decode(d, sizeof(d), e, el), 5);
    assert_memory_equal(d, bin, 5);
    /* strict: length, alphabet, padding place, non-zero trailing bits, small buffer */
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Zg=", 3), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Z!==", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Z=g=", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Zm==Zm9v", 8), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Zh==", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "Zm9=", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, sizeof(d), "A===", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_decode(d, 2, "Zm9v", 4), FDN_EPARSE);
    assert_int_equal(fdn__b64_encode(e, 4, "foo", 3), 0); /* no room for the NUL */
}

static void url_checks(void **state)
{
    (void)state;
    char out[64];
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__etcd_url_check("http://127.0.0.1:2379", out, sizeof(out), &err), 0);
    assert_string_equal(out, "http://127.0.0.1:2379");
    assert_int_equal(fdn__etcd_url_check("http://etcd/", out, sizeof(out), &err), 0);
    assert_string_equal(out, "http://etcd");
    assert_int_equal(fdn__etcd_url_check("https://[::1]:1/", out, sizeof(out), &err), 0);
    assert_string_equal(out, "https://[::1]:1");
    static const char *const bad[] = {
        "",           "127.0.0.1:2379", "redis://h:1",  "http://",          "http://:2379",
        "http://h:0", "http://h:65536", "http://h:12a", "http://h:2379/v3", "http://a@h:1",
        "http://h h", "http://[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fdn_error_t e = FDN_ERROR_INIT;
        assert_int_equal(fdn__etcd_url_check(bad[i], out, sizeof(out), &e), FDN_EINVAL);
        assert_true(e.message[0] != '\0');
    }
    assert_int_equal(fdn__etcd_url_check(NULL, out, sizeof(out), NULL), FDN_EINVAL);
    assert_int_equal(fdn__etcd_url_check("http://a-rather-long-host-name:2379", out, 10, NULL),
                     FDN_EINVAL);
}

static void range_answers(void **state)
{
    (void)state;
    const char *ok = "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"7\"},\"kvs\":[{\"key\":"
                     "\"L2EveA==\",\"create_revision\":\"2\",\"mod_revision\":\"5\",\"version\":"
                     "\"3\",\"value\":\"aGVsbG8=\",\"lease\":\"6636513949498554892\"},{\"key\":"
                     "\"L2Evew==\"}],\"count\":\"2\"}";
    fdn__etcd_range_t r;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__etcd_range_parse(ok, strlen(ok), &r, &err), 0);
    assert_int_equal(r.revision, 7);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.kvs[0].key, "/a/x");
    assert_int_equal(r.kvs[0].keylen, 4);
    assert_string_equal(r.kvs[0].value, "hello");
    assert_int_equal(r.kvs[0].create_revision, 2);
    assert_int_equal(r.kvs[0].mod_revision, 5);
    assert_int_equal(r.kvs[0].version, 3);
    assert_int_equal(r.kvs[0].lease, 6636513949498554892LL);
    /* omitted fields are their defaults */
    assert_string_equal(r.kvs[1].value, "");
    assert_int_equal(r.kvs[1].lease, 0);
    fdn__etcd_range_clear(&r);

    const char *empty = "{\"header\":{\"revision\":\"3\"}}";
    assert_int_equal(fdn__etcd_range_parse(empty, strlen(empty), &r, &err), 0);
    assert_int_equal(r.n, 0);
    assert_null(r.kvs);
    fdn__etcd_range_clear(&r);

    struct {
        const char *text;
        int rc;
    } bad[] = {
        {"not json", FDN_EPARSE},
        {"[1,2]", FDN_EPARSE},
        {"{}", FDN_EPARSE}, /* no revision */
        {"{\"header\":{\"revision\":\"x\"}}", FDN_EPARSE},
        {"{\"header\":{\"revision\":\"99999999999999999999999\"}}", FDN_EPARSE},
        {"{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"@@@@\"}]}", FDN_EPARSE},
        {"{\"header\":{\"revision\":\"2\"},\"kvs\":{}}", FDN_EPARSE},
        {"{\"error\":\"x\",\"message\":\"etcdserver: too many requests\",\"code\":8}",
         FDN_EEXTERNAL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fdn_error_t e = FDN_ERROR_INIT;
        assert_int_equal(fdn__etcd_range_parse(bad[i].text, strlen(bad[i].text), &r, &e),
                         bad[i].rc);
        assert_true(e.message[0] != '\0');
    }
}

static void watch_messages(void **state)
{
    (void)state;
    const char *stream =
        "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}\n"
        "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"kv\":{\"key\":\"L2EveQ==\","
        "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":\"djE=\"}},"
        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2EveA==\",\"mod_revision\":\"4\"}}]}}\n"
        "{\"result\":{\"header\":{},\"canceled\":true,\"compact_revision\":\"5\"}}\n"
        "{\"result\":{\"header\":{\"rev";
    size_t len = strlen(stream), off = 0, l;
    fdn__etcd_watch_msg_t m[3];
    int k = 0;
    while ((l = fdn__etcd_line_len(stream + off, len - off)) > 0) {
        assert_true(k < 3);
        assert_int_equal(fdn__etcd_watch_msg_parse(stream + off, l, &m[k], NULL), 0);
        off += l;
        k++;
    }
    assert_int_equal(k, 3);
    assert_true(off < len); /* the partial line waits for more bytes */
    assert_true(m[0].created);
    assert_int_equal(m[0].revision, 3);
    assert_int_equal(m[1].nevents, 2);
    assert_int_equal(m[1].events[0].type, FDN__ETCD_PUT);
    assert_string_equal(m[1].events[0].kv.key, "/a/y");
    assert_string_equal(m[1].events[0].kv.value, "v1");
    assert_int_equal(m[1].events[1].type, FDN__ETCD_DELETE);
    assert_string_equal(m[1].events[1].kv.key, "/a/x");
    assert_true(m[2].canceled);
    assert_int_equal(m[2].compact_revision, 5);
    for (int i = 0; i < 3; i++)
        fdn__etcd_watch_msg_clear(&m[i]);

    fdn__etcd_watch_msg_t x;
    fdn_error_t err = FDN_ERROR_INIT;
    const char *e1 = "{\"error\":{\"grpc_code\":14,\"message\":\"unavailable\"}}";
    assert_int_equal(fdn__etcd_watch_msg_parse(e1, strlen(e1), &x, &err), FDN_EEXTERNAL);
    assert_non_null(strstr(err.message, "unavailable"));
    const char *e2 = "{\"result\":{\"events\":[{\"type\":\"NOPE\",\"kv\":{}}]}}";
    assert_int_equal(fdn__etcd_watch_msg_parse(e2, strlen(e2), &x, NULL), FDN_EPARSE);
    const char *e3 = "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}";
    assert_int_equal(fdn__etcd_watch_msg_parse(e3, strlen(e3), &x, NULL), FDN_EPARSE);
    const char *e4 = "{\"nothing\":1}";
    assert_int_equal(fdn__etcd_watch_msg_parse(e4, strlen(e4), &x, NULL), FDN_EPARSE);
}

static void prefix_end(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(fdn__etcd_prefix_end(out, sizeof(out), "/a/", 3), 3);
    assert_memory_equal(out, "/a0", 3);
    assert_int_equal(fdn__etcd_prefix_end(out, sizeof(out), "a\xff\xff", 3), 1);
    assert_memory_equal(out, "b", 1);
    assert_int_equal(fdn__etcd_prefix_end(out, sizeof(out), "\xff", 1), 0);
    /* a namespace's keys: the prefix cut at plen (its trailing '/' dropped by the caller) */
    char *key = NULL, *end = NULL;
    size_t kl = 0, el = 0;
    assert_int_equal(fdn__etcd_ns_keys("/fdn/reg//", 8, "prod", &key, &kl, &end, &el), 0);
    assert_string_equal(key, "/fdn/reg/prod/");
    assert_int_equal(kl, 14);
    assert_int_equal(el, 14);
    assert_memory_equal(end, "/fdn/reg/prod0", 14);
    fdn__free(key);
    fdn__free(end);
}

static fdn__etcd_kv_t kv_of(char *key, char *value)
{
    fdn__etcd_kv_t kv = {key, strlen(key), value, strlen(value), 3, 4, 1, 77};
    return kv;
}

static void entry_values(void **state)
{
    (void)state;
    fdn_registry_meta_t meta[] = {{"zone", "b"}, {"pid", "42"}, {"zone", "c"}};
    char *v = NULL;
    size_t vl = 0;
    assert_int_equal(fdn__registry_value_json("http://h:1", "me:1", meta, 3, &v, &vl), 0);
    assert_string_equal(v, "{\"endpoint\":\"http://h:1\",\"meta\":{\"pid\":\"42\",\"zone\":\"c\"},"
                           "\"owner\":\"me:1\"}");
    char *nv = NULL;
    assert_int_equal(fdn__registry_value_json("\xff\xfe", "me", NULL, 0, &nv, &vl), FDN_EINVAL);
    assert_null(nv);
    char key[] = "/p/ns/svc/i-1";
    fdn__etcd_kv_t kv = kv_of(key, v);
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn__registry_instance_from_kv("/p/ns/", 6, &kv, 4096, &i), 0);
    assert_string_equal(fdn_registry_instance_service(i), "svc");
    assert_string_equal(fdn_registry_instance_name(i), "i-1");
    assert_string_equal(fdn_registry_instance_endpoint(i), "http://h:1");
    assert_string_equal(fdn_registry_instance_owner(i), "me:1");
    assert_int_equal(fdn_registry_instance_lease(i), 77);
    assert_int_equal(fdn_registry_instance_mod_revision(i), 4);
    assert_int_equal(fdn_registry_instance_meta_count(i), 2);
    const char *mk, *mv;
    assert_int_equal(fdn_registry_instance_meta_at(i, 0, &mk, &mv), 0);
    assert_string_equal(mk, "pid");
    assert_string_equal(mv, "42");
    assert_int_equal(fdn_registry_instance_meta_at(i, 2, &mk, &mv), FDN_ENOENT);
    assert_string_equal(fdn_registry_instance_meta(i, "zone"), "c");
    assert_null(fdn_registry_instance_meta(i, "none"));
    char *js = NULL;
    assert_int_equal(fdn_registry_instances_json(&i, 1, &js), 0);
    assert_string_equal(js,
                        "[{\"service\":\"svc\",\"instance\":\"i-1\",\"endpoint\":\"http://h:1\","
                        "\"owner\":\"me:1\",\"lease\":77,\"mod_revision\":4,"
                        "\"meta\":{\"pid\":\"42\",\"zone\":\"c\"}}]");
    fdn_free(js);
    assert_int_equal(fdn_registry_instances_json(NULL, 0, &js), 0);
    assert_string_equal(js, "[]");
    fdn_free(js);
    assert_int_equal(fdn_registry_instances_json(NULL, 1, &js), FDN_EINVAL);
    fdn_registry_instance_release(i);
    /* too large for max_value */
    assert_int_equal(fdn__registry_instance_from_kv("/p/ns/", 6, &kv, vl - 1, &i), FDN_EPARSE);
    fdn__free(v);

    struct {
        char key[32];
        char value[96];
    } bad[] = {
        {"/p/ns/svc/i", "not json"},
        {"/p/ns/svc/i", "[1]"},
        {"/p/ns/svc/i", "{\"owner\":\"x\"}"},                       /* no endpoint */
        {"/p/ns/svc/i", "{\"endpoint\":1}"},                        /* not a string */
        {"/p/ns/svc/i", "{\"endpoint\":\"e\",\"meta\":{\"k\":1}}"}, /* meta not strings */
        {"/p/ns/svc/i", "{\"endpoint\":\"e\",\"meta\":[]}"},
        {"/p/ns/svc", "{\"endpoint\":\"e\"}"},   /* no instance */
        {"/p/ns/svc/", "{\"endpoint\":\"e\"}"},  /* empty instance */
        {"/p/ns//i", "{\"endpoint\":\"e\"}"},    /* empty service */
        {"/p/ns/a/b/c", "{\"endpoint\":\"e\"}"}, /* too deep */
        {"/q/ns/svc/i", "{\"endpoint\":\"e\"}"}, /* another prefix */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        fdn__etcd_kv_t b = kv_of(bad[k].key, bad[k].value);
        assert_int_equal(fdn__registry_instance_from_kv("/p/ns/", 6, &b, 4096, &i), FDN_EPARSE);
        assert_null(i);
    }
}

static void client_checks(void **state)
{
    (void)state;
    fdn__etcd_t *c = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn__etcd_create(&c, "ftp://x", 100, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "http://"));
    assert_int_equal(fdn__etcd_create(&c, "http://127.0.0.1:2379", 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn__etcd_create(&c, "http://127.0.0.1:2379/", 100, NULL), 0);
    assert_string_equal(fdn__etcd_url(c), "http://127.0.0.1:2379");
    fdn__etcd_destroy(c);
    fdn__etcd_destroy(NULL);
}

static void shared_api_without_shared_part(void **state)
{
    (void)state;
    fdn_registry_t *r = NULL;
    assert_int_equal(fdn_registry_create(&r, NULL), 0);
    assert_false(fdn_registry_is_shared(r));
    assert_false(fdn_registry_shared_stale(r));
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_register_shared(r, "s", "i", "e", NULL, 0, &err), FDN_ENOTSUP);
    assert_non_null(strstr(err.message, "fdn_registry_open"));
    assert_int_equal(fdn_registry_register_shared(r, "s/x", "i", "e", NULL, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_register_shared(r, "s", "", "e", NULL, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_register_shared(r, "s", "i", NULL, NULL, 0, NULL), FDN_EINVAL);
    fdn_registry_instance_t *i = (fdn_registry_instance_t *)&err;
    assert_int_equal(fdn_registry_lookup_shared(r, "s", NULL, &i, NULL), FDN_ENOTSUP);
    assert_null(i);
    fdn_registry_instance_t **v = NULL;
    size_t n = 1;
    assert_int_equal(fdn_registry_list_shared(r, NULL, &v, &n), FDN_ENOTSUP);
    assert_int_equal(n, 0);
    fdn_registry_shared_stats_t st;
    memset(&st, 0, sizeof(st));
    st.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    assert_int_equal(fdn_registry_shared_stats(r, &st), FDN_ENOTSUP);
    assert_int_equal(fdn_registry_unregister_shared(r, "s", "i", NULL), FDN_ENOTSUP);
    fdn_registry_destroy(r);

    /* fdn_registry_open: bad options are refused before any network */
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    assert_int_equal(fdn_registry_open(&r, NULL, &eo, &err), FDN_EINVAL); /* no url */
    assert_int_equal(fdn_registry_open(&r, NULL, NULL, NULL), FDN_EINVAL);
    eo.url = "http://127.0.0.1:1";
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = "a/b";
    assert_int_equal(fdn_registry_open(&r, &ro, &eo, NULL), FDN_EINVAL);
    eo.url = "not a url";
    assert_int_equal(fdn_registry_open(&r, NULL, &eo, &err), FDN_EINVAL);
    assert_null(r);
    fdn_registry_instances_free(NULL, 0);
    fdn_registry_instance_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b64_vectors),   cmocka_unit_test(url_checks),
        cmocka_unit_test(range_answers), cmocka_unit_test(watch_messages),
        cmocka_unit_test(prefix_end),    cmocka_unit_test(entry_values),
        cmocka_unit_test(client_checks), cmocka_unit_test(shared_api_without_shared_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
