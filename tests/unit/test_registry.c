/* Unit tests: the service registry (reference §6, §11.10). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <fdn/registry.h>

static int h1, h2, h3, h4, h5;

static fdn_registry_t *make(const char *name)
{
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    o.name = name;
    fdn_registry_t *r = NULL;
    assert_int_equal(fdn_registry_create(&r, &o), 0);
    assert_non_null(r);
    return r;
}

static void register_lookup_same_handle(void **state)
{
    (void)state;
    fdn_registry_t *r = make("production");
    assert_string_equal(fdn_registry_name(r), "production");
    assert_int_equal(fdn_registry_register(r, "config_server", &h1, 0, NULL, 0, NULL), 0);
    void *out = NULL;
    assert_int_equal(fdn_registry_lookup(r, "config_server", &out, NULL), 0);
    assert_ptr_equal(out, &h1);
    assert_int_equal(fdn_registry_lookup(r, "config_server", NULL, NULL), 0);
    assert_int_equal(fdn_registry_count(r), 1);
    fdn_registry_destroy(r);
    fdn_registry_destroy(NULL);

    /* defaults */
    assert_int_equal(fdn_registry_create(&r, NULL), 0);
    assert_string_equal(fdn_registry_name(r), "default");
    fdn_registry_destroy(r);
    fdn_registry_opts_t bad = FDN_REGISTRY_OPTS_INIT;
    bad.version = 99;
    assert_int_equal(fdn_registry_create(&r, &bad), FDN_EINVAL);
    assert_int_equal(fdn_registry_create(NULL, NULL), FDN_EINVAL);
}

static void duplicate_rules(void **state)
{
    (void)state;
    fdn_registry_t *r = make("ns1");
    uint64_t own = fdn_registry_owner_new();
    assert_int_equal(fdn_registry_register(r, "svc", &h1, own, NULL, 0, NULL), 0);
    /* same handle and owner: idempotent */
    assert_int_equal(fdn_registry_register(r, "svc", &h1, own, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_count(r), 1);
    /* a different handle: EEXIST naming the existing entry; nothing changes */
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_register(r, "svc", &h2, own, NULL, 0, &e), FDN_EEXIST);
    assert_int_equal(e.code, FDN_EEXIST);
    assert_non_null(strstr(e.message, "Service svc already registered in namespace ns1"));
    assert_non_null(strstr(e.context, "namespace=ns1"));
    assert_non_null(strstr(e.context, "service=svc"));
    char want[64];
    snprintf(want, sizeof(want), "existing_owner=%llu", (unsigned long long)own);
    assert_non_null(strstr(e.context, want));
    /* same handle, other owner: also a conflict */
    assert_int_equal(fdn_registry_register(r, "svc", &h1, own + 1000, NULL, 0, NULL), FDN_EEXIST);
    void *out = NULL;
    assert_int_equal(fdn_registry_lookup(r, "svc", &out, NULL), 0);
    assert_ptr_equal(out, &h1);
    /* after unregister the name is free again */
    assert_int_equal(fdn_registry_unregister(r, "svc"), 0);
    assert_int_equal(fdn_registry_register(r, "svc", &h2, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_lookup(r, "svc", &out, NULL), 0);
    assert_ptr_equal(out, &h2);
    fdn_registry_destroy(r);
}

static void bad_input_rejected(void **state)
{
    (void)state;
    fdn_registry_t *r = make("x");
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_register(r, "svc", NULL, 0, NULL, 0, &e), FDN_EINVAL);
    assert_int_equal(fdn_registry_register(r, "", &h1, 0, NULL, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_register(r, NULL, &h1, 0, NULL, 0, NULL), FDN_EINVAL);
    char longname[FDN_REGISTRY_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(fdn_registry_register(r, longname, &h1, 0, NULL, 0, NULL), FDN_EINVAL);
    longname[FDN_REGISTRY_NAME_MAX] = '\0';
    assert_int_equal(fdn_registry_register(r, longname, &h1, 0, NULL, 0, NULL), 0);
    e = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_register(r, "m", &h1, 0, NULL, 1, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "metadata is NULL")); /* the message names the fault */
    fdn_registry_meta_t bad[1] = {{NULL, "v"}};
    assert_int_equal(fdn_registry_register(r, "m", &h1, 0, bad, 1, NULL), FDN_EINVAL);
    fdn_registry_meta_t many[FDN_REGISTRY_META_MAX + 1];
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = (fdn_registry_meta_t){"k", "v"};
    e = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_register(r, "m", &h1, 0, many, FDN_REGISTRY_META_MAX + 1, &e),
                     FDN_EINVAL);
    assert_non_null(strstr(e.message, "at most 32 metadata pairs"));
    assert_int_equal(fdn_registry_count(r), 1);
    assert_int_equal(fdn_registry_register(NULL, "m", &h1, 0, NULL, 0, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_lookup(NULL, "m", NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_lookup(r, NULL, NULL, NULL), FDN_EINVAL);
    fdn_registry_destroy(r);
}

/* Bad arguments clear the outputs the header says are NULL on error, so a caller's cleanup
 * (fdn_registry_entry_release, fdn_free) never sees a stale pointer. */
static void bad_input_clears_outputs(void **state)
{
    (void)state;
    fdn_registry_t *r = make("x");
    fdn_registry_entry_t *stale = (fdn_registry_entry_t *)(void *)&h1;
    fdn_registry_entry_t *en = stale;
    assert_int_equal(fdn_registry_acquire(NULL, "svc", &en, NULL), FDN_EINVAL);
    assert_null(en);
    en = stale;
    assert_int_equal(fdn_registry_acquire(r, NULL, &en, NULL), FDN_EINVAL);
    assert_null(en);
    fdn_registry_entry_release(en);
    assert_int_equal(fdn_registry_acquire(r, "svc", NULL, NULL), FDN_EINVAL);
    char *stale_names[1] = {NULL};
    char **names = stale_names;
    size_t n = 7;
    assert_int_equal(fdn_registry_list(NULL, &names, &n), FDN_EINVAL);
    assert_null(names);
    assert_int_equal(n, 0);
    fdn_free(names);
    names = stale_names;
    assert_int_equal(fdn_registry_list(r, &names, NULL), FDN_EINVAL);
    assert_null(names);
    n = 7;
    assert_int_equal(fdn_registry_list(r, NULL, &n), FDN_EINVAL);
    assert_int_equal(n, 0);
    fdn_registry_destroy(r);
}

static void miss_error_fields(void **state)
{
    (void)state;
    fdn_registry_t *r = make("production");
    fdn_error_t e = FDN_ERROR_INIT;
    void *out = &h5;
    assert_int_equal(fdn_registry_lookup(r, "nonexistent_service", &out, &e),
                     FDN_ESERVICE_NOT_FOUND);
    assert_ptr_equal(out, &h5); /* untouched */
    assert_int_equal(e.code, FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(e.ref_code, 5001);
    assert_string_equal(e.type, "service_not_found");
    assert_string_equal(e.category, "system");
    assert_string_equal(e.subcategory, "discovery");
    assert_int_equal(e.severity, FDN_SEV_MEDIUM);
    assert_string_equal(e.message, "Service nonexistent_service not found in namespace production");
    assert_string_equal(e.context, "namespace=production service=nonexistent_service");
    assert_int_equal(fdn_registry_lookup(r, "nonexistent_service", NULL, NULL),
                     FDN_ESERVICE_NOT_FOUND);
    fdn_registry_entry_t *en = NULL;
    assert_int_equal(fdn_registry_acquire(r, "nope", &en, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_null(en);
    fdn_registry_destroy(r);
}

static void unregister_semantics(void **state)
{
    (void)state;
    fdn_registry_t *r = make("u");
    assert_int_equal(fdn_registry_register(r, "a", &h1, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_count(r), 1);
    assert_int_equal(fdn_registry_unregister(r, "a"), 0);
    assert_int_equal(fdn_registry_count(r), 0);
    assert_int_equal(fdn_registry_unregister(r, "a"), 0);       /* twice */
    assert_int_equal(fdn_registry_unregister(r, "unknown"), 0); /* unknown */
    assert_int_equal(fdn_registry_lookup(r, "a", NULL, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_registry_unregister(r, NULL), FDN_EINVAL);
    fdn_registry_destroy(r);
}

static void list_and_count_exact(void **state)
{
    (void)state;
    fdn_registry_t *r = make("l");
    static char *sentinel[1];
    char **names = sentinel;
    size_t n = 99;
    assert_int_equal(fdn_registry_list(r, &names, &n), 0);
    assert_null(names);
    assert_int_equal(n, 0);
    assert_int_equal(fdn_registry_count(r), 0);
    const char *svc[5] = {"service_e", "service_a", "service_c", "service_b", "service_d"};
    int *hs[5] = {&h1, &h2, &h3, &h4, &h5};
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_registry_register(r, svc[i], hs[i], 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_count(r), 3);
    assert_int_equal(fdn_registry_list(r, &names, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "service_a");
    assert_string_equal(names[1], "service_c");
    assert_string_equal(names[2], "service_e");
    fdn_free(names);
    for (int i = 3; i < 5; i++)
        assert_int_equal(fdn_registry_register(r, svc[i], hs[i], 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_list(r, &names, &n), 0);
    assert_int_equal(n, 5);
    const char *want[5] = {"service_a", "service_b", "service_c", "service_d", "service_e"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(names[i], want[i]);
    fdn_free(names);
    assert_int_equal(fdn_registry_count(r), 5);
    /* a larger set forces table growth; every entry stays reachable */
    for (int i = 0; i < 200; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "bulk_%03d", i);
        assert_int_equal(fdn_registry_register(r, nm, &h1, 0, NULL, 0, NULL), 0);
    }
    assert_int_equal(fdn_registry_count(r), 205);
    for (int i = 0; i < 200; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "bulk_%03d", i);
        assert_int_equal(fdn_registry_lookup(r, nm, NULL, NULL), 0);
    }
    assert_int_equal(fdn_registry_list(NULL, &names, &n), FDN_EINVAL);
    fdn_registry_destroy(r);
}

static void owner_cleanup(void **state)
{
    (void)state;
    fdn_registry_t *r = make("o");
    uint64_t a = fdn_registry_owner_new(), b = fdn_registry_owner_new();
    assert_true(a != 0 && b != 0 && a != b);
    assert_int_equal(fdn_registry_register(r, "a1", &h1, a, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "a2", &h2, a, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "b1", &h3, b, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "none", &h4, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_release_owner(r, a), 2);
    assert_int_equal(fdn_registry_count(r), 2);
    assert_int_equal(fdn_registry_lookup(r, "a1", NULL, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_registry_lookup(r, "a2", NULL, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_registry_lookup(r, "b1", NULL, NULL), 0);
    assert_int_equal(fdn_registry_release_owner(r, a), 0);
    assert_int_equal(fdn_registry_release_owner(r, 0), 0); /* owner 0 matches nothing */
    assert_int_equal(fdn_registry_count(r), 2);
    assert_int_equal(fdn_registry_release_owner(r, b), 1);
    assert_int_equal(fdn_registry_count(r), 1);
    assert_int_equal(fdn_registry_release_owner(NULL, b), FDN_EINVAL);
    fdn_registry_destroy(r);
}

static void metadata_copies(void **state)
{
    (void)state;
    fdn_registry_t *r = make("m");
    char k1[8] = "version", v1[8] = "1.2.3";
    fdn_registry_meta_t meta[3] = {{k1, v1}, {"role", "primary"}, {"version", "2.0"}};
    assert_int_equal(fdn_registry_register(r, "db", &h1, 7, meta, 3, NULL), 0);
    /* inputs were copied */
    memset(k1, 'x', sizeof(k1) - 1);
    memset(v1, 'y', sizeof(v1) - 1);
    char buf[16];
    size_t need = 0;
    assert_int_equal(fdn_registry_meta_get(r, "db", "version", buf, sizeof(buf), &need), 0);
    assert_string_equal(buf, "2.0"); /* the last duplicate wins */
    assert_int_equal(need, 4);
    assert_int_equal(fdn_registry_meta_get(r, "db", "role", buf, 3, &need), FDN_ENOBUFS);
    assert_int_equal(need, 8);
    assert_int_equal(fdn_registry_meta_get(r, "db", "role", buf, 8, NULL), 0);
    assert_string_equal(buf, "primary");
    assert_int_equal(fdn_registry_meta_get(r, "db", "missing", buf, 8, NULL), FDN_ENOENT);
    assert_int_equal(fdn_registry_meta_get(r, "nodb", "role", buf, 8, NULL),
                     FDN_ESERVICE_NOT_FOUND);

    /* a snapshot outlives the registration */
    fdn_registry_entry_t *en = NULL;
    assert_int_equal(fdn_registry_acquire(r, "db", &en, NULL), 0);
    assert_int_equal(fdn_registry_unregister(r, "db"), 0);
    assert_int_equal(fdn_registry_count(r), 0);
    assert_string_equal(fdn_registry_entry_service(en), "db");
    assert_ptr_equal(fdn_registry_entry_handle(en), &h1);
    assert_int_equal(fdn_registry_entry_owner(en), 7);
    assert_true(fdn_registry_entry_registered_ns(en) != 0);
    assert_int_equal(fdn_registry_entry_meta_count(en), 2);
    const char *k, *v;
    assert_int_equal(fdn_registry_entry_meta_at(en, 0, &k, &v), 0);
    assert_string_equal(k, "role");
    assert_string_equal(v, "primary");
    assert_int_equal(fdn_registry_entry_meta_at(en, 1, &k, &v), 0);
    assert_string_equal(k, "version");
    assert_string_equal(v, "2.0");
    assert_int_equal(fdn_registry_entry_meta_at(en, 2, &k, &v), FDN_ENOENT);
    assert_string_equal(fdn_registry_entry_meta(en, "role"), "primary");
    assert_null(fdn_registry_entry_meta(en, "nope"));
    fdn_registry_entry_release(en);
    fdn_registry_entry_release(NULL);
    fdn_registry_destroy(r);
}

static void snapshot_outlives_registry(void **state)
{
    (void)state;
    fdn_registry_t *r = make("s");
    assert_int_equal(fdn_registry_register(r, "x", &h1, 0, NULL, 0, NULL), 0);
    fdn_registry_entry_t *en = NULL;
    assert_int_equal(fdn_registry_acquire(r, "x", &en, NULL), 0);
    fdn_registry_destroy(r);
    assert_string_equal(fdn_registry_entry_service(en), "x");
    fdn_registry_entry_release(en);
}

static void namespaces_isolated(void **state)
{
    (void)state;
    fdn_registry_t *prod = make("production");
    fdn_registry_t *test = make("test-1");
    assert_int_equal(fdn_registry_register(prod, "service_a", &h1, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(test, "service_a", &h2, 0, NULL, 0, NULL), 0);
    void *o1 = NULL, *o2 = NULL;
    assert_int_equal(fdn_registry_lookup(prod, "service_a", &o1, NULL), 0);
    assert_int_equal(fdn_registry_lookup(test, "service_a", &o2, NULL), 0);
    assert_ptr_equal(o1, &h1);
    assert_ptr_equal(o2, &h2);
    assert_int_equal(fdn_registry_register(test, "only_test", &h3, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_lookup(prod, "only_test", NULL, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_registry_count(prod), 1);
    assert_int_equal(fdn_registry_count(test), 2);
    fdn_registry_destroy(test);
    assert_int_equal(fdn_registry_lookup(prod, "service_a", &o1, NULL), 0);
    fdn_registry_destroy(prod);
}

static void *late_register(void *p)
{
    fdn_registry_t *r = p;
    return fdn_registry_register(r, "late", &h4, 0, NULL, 0, NULL) == 0 ? NULL : p;
}

static void wait_for_service(void **state)
{
    (void)state;
    fdn_registry_t *r = make("w");
    assert_int_equal(fdn_registry_register(r, "present", &h1, 0, NULL, 0, NULL), 0);
    void *out = NULL;
    assert_int_equal(fdn_registry_wait(r, "present", 0, &out, NULL), 0);
    assert_ptr_equal(out, &h1);
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_wait(r, "never", 0, NULL, &e), FDN_ETIMEDOUT);
    assert_non_null(strstr(e.context, "service=never"));
    assert_int_equal(fdn_registry_wait(r, "never", 20, NULL, NULL), FDN_ETIMEDOUT);
    assert_int_equal(fdn_registry_wait(NULL, "x", 0, NULL, NULL), FDN_EINVAL);
    /* a name no registration can have is refused at once, not waited for (for ever with -1) */
    char longname[FDN_REGISTRY_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    e = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(fdn_registry_wait(r, "", 0, NULL, &e), FDN_EINVAL);
    assert_int_equal(e.code, FDN_EINVAL);
    assert_int_equal(fdn_registry_wait(r, longname, 0, NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_wait(r, "", -1, NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_wait(r, longname, -1, NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_registry_wait(r, NULL, -1, NULL, NULL), FDN_EINVAL);
    /* registered by another thread while we wait without a limit */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_register, r), 0);
    out = NULL;
    assert_int_equal(fdn_registry_wait(r, "late", -1, &out, NULL), 0);
    assert_ptr_equal(out, &h4);
    void *res;
    pthread_join(th, &res);
    assert_null(res);
    fdn_registry_destroy(r);
}

typedef struct evrec {
    int reg_ok, reg_err, look_ok, look_err, unreg;
    int64_t min_dur;
    char last_ns[32];
} evrec_t;

static void on_event(fdn_registry_op_t op, const char *ns, const char *service, int result,
                     int64_t duration_ns, void *user)
{
    evrec_t *e = user;
    (void)service;
    snprintf(e->last_ns, sizeof(e->last_ns), "%s", ns);
    switch (op) {
    case FDN_REGISTRY_OP_REGISTER:
        if (result == 0)
            e->reg_ok++;
        else
            e->reg_err++;
        break;
    case FDN_REGISTRY_OP_LOOKUP:
        if (result == 0)
            e->look_ok++;
        else
            e->look_err++;
        if (e->min_dur == 0 || duration_ns < e->min_dur)
            e->min_dur = duration_ns;
        break;
    case FDN_REGISTRY_OP_UNREGISTER:
        e->unreg++;
        break;
    }
}

static void event_hook_reports(void **state)
{
    (void)state;
    evrec_t ev = {0};
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    o.name = "tele";
    o.on_event = on_event;
    o.event_user = &ev;
    fdn_registry_t *r = NULL;
    assert_int_equal(fdn_registry_create(&r, &o), 0);
    assert_int_equal(fdn_registry_register(r, "s", &h1, 0, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "s", &h2, 0, NULL, 0, NULL), FDN_EEXIST);
    assert_int_equal(fdn_registry_lookup(r, "s", NULL, NULL), 0);
    assert_int_equal(fdn_registry_lookup(r, "t", NULL, NULL), FDN_ESERVICE_NOT_FOUND);
    assert_int_equal(fdn_registry_unregister(r, "s"), 0);
    assert_int_equal(ev.reg_ok, 1);
    assert_int_equal(ev.reg_err, 1);
    assert_int_equal(ev.look_ok, 1);
    assert_int_equal(ev.look_err, 1);
    assert_int_equal(ev.unreg, 1);
    assert_true(ev.min_dur > 0);
    assert_string_equal(ev.last_ns, "tele");
    /* release_owner reports each entry it removes (the runtime removes its services only
     * that way, and its unregister count stayed 0); another owner's entry is not counted */
    uint64_t mine = fdn_registry_owner_new(), other = fdn_registry_owner_new();
    assert_int_equal(fdn_registry_register(r, "a", &h1, mine, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "b", &h2, mine, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_register(r, "c", &h2, other, NULL, 0, NULL), 0);
    assert_int_equal(fdn_registry_release_owner(r, mine), 2);
    assert_int_equal(ev.unreg, 3);
    assert_int_equal(fdn_registry_release_owner(r, mine), 0); /* none left: none reported */
    assert_int_equal(ev.unreg, 3);
    assert_int_equal(fdn_registry_count(r), 1);
    fdn_registry_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(register_lookup_same_handle),
        cmocka_unit_test(duplicate_rules),
        cmocka_unit_test(bad_input_rejected),
        cmocka_unit_test(bad_input_clears_outputs),
        cmocka_unit_test(miss_error_fields),
        cmocka_unit_test(unregister_semantics),
        cmocka_unit_test(list_and_count_exact),
        cmocka_unit_test(owner_cleanup),
        cmocka_unit_test(metadata_copies),
        cmocka_unit_test(snapshot_outlives_registry),
        cmocka_unit_test(namespaces_isolated),
        cmocka_unit_test(event_hook_reports),
        cmocka_unit_test(wait_for_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
