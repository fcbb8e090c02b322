/* Failing-allocator sweep of include/fdn/registry.h (tests/alloc/README.md): the in-process
 * registry (create, register with metadata, acquire, list). A failed register leaves no
 * entry. The shared (etcd) calls need a server: exempted (tests/alloc/exempt.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/common.h>
#include <fdn/error.h>
#include <fdn/registry.h>

#include "alloc_sweep.h"

static int handle;

static void sweep_registry(void **state)
{
    (void)state;
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    SWEEP(sw, fdn_registry_create, 0)
    {
        fdn_registry_t *r = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_registry_create(&r, &o)))
            assert_null(r);
        else
            fdn_registry_destroy(r);
    }
    long base = sweep_live();
    fdn_registry_t *r = NULL;
    assert_int_equal(fdn_registry_create(&r, &o), 0);
    const fdn_registry_meta_t meta[2] = {{"zone", "eu-1"}, {"role", "primary"}};
    uint64_t owner = fdn_registry_owner_new();
    SWEEP(sw, fdn_registry_register, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_registry_register(r, "db", &handle, owner, meta, 2, NULL);
        void *h = NULL;
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_registry_count(r), 0);
            assert_int_not_equal(fdn_registry_lookup(r, "db", &h, NULL), 0);
        } else {
            assert_int_equal(fdn_registry_lookup(r, "db", &h, NULL), 0);
            assert_ptr_equal(h, &handle);
            assert_int_equal(fdn_registry_unregister(r, "db"), 0); /* for the next pass */
        }
    }
    assert_int_equal(fdn_registry_register(r, "db", &handle, owner, meta, 2, NULL), 0);
    SWEEP(sw, fdn_registry_acquire, SWEEP_KEEP)
    {
        fdn_registry_entry_t *e = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_registry_acquire(r, "db", &e, NULL))) {
            assert_null(e);
        } else {
            assert_string_equal(fdn_registry_entry_meta(e, "role"), "primary");
            fdn_registry_entry_release(e);
        }
    }
    /* reads of the registry and of an acquired entry allocate nothing */
    {
        fdn_registry_entry_t *e = NULL;
        assert_int_equal(fdn_registry_acquire(r, "db", &e, NULL), 0);
        size_t cnt = 0;
        void *h = NULL;
        const char *s = NULL, *k = NULL, *v = NULL;
        uint64_t own = 0;
        int64_t at = 0;
        bool shared = true;
        int rc = -1;
        NOALLOC_SWEEP(fdn_registry_count, cnt = fdn_registry_count(r));
        assert_int_equal(cnt, 1);
        NOALLOC_SWEEP(fdn_registry_lookup, rc = fdn_registry_lookup(r, "db", &h, NULL));
        assert_int_equal(rc, 0);
        assert_ptr_equal(h, &handle);
        NOALLOC_SWEEP(fdn_registry_name, s = fdn_registry_name(r));
        (void)s;
        NOALLOC_SWEEP(fdn_registry_is_shared, shared = fdn_registry_is_shared(r));
        assert_false(shared);
        NOALLOC_SWEEP(fdn_registry_entry_handle, h = fdn_registry_entry_handle(e));
        assert_ptr_equal(h, &handle);
        NOALLOC_SWEEP(fdn_registry_entry_service, s = fdn_registry_entry_service(e));
        assert_string_equal(s, "db");
        NOALLOC_SWEEP(fdn_registry_entry_owner, own = fdn_registry_entry_owner(e));
        assert_int_equal(own, owner);
        NOALLOC_SWEEP(fdn_registry_entry_registered_ns, at = fdn_registry_entry_registered_ns(e));
        assert_true(at >= 0);
        NOALLOC_SWEEP(fdn_registry_entry_meta_count, cnt = fdn_registry_entry_meta_count(e));
        assert_int_equal(cnt, 2);
        NOALLOC_SWEEP(fdn_registry_entry_meta, s = fdn_registry_entry_meta(e, "zone"));
        assert_string_equal(s, "eu-1");
        NOALLOC_SWEEP(fdn_registry_entry_meta_at, rc = fdn_registry_entry_meta_at(e, 1, &k, &v));
        assert_int_equal(rc, 0);
        assert_string_equal(fdn_registry_entry_meta(e, k), v); /* (in the entry's own order) */
        NOALLOC_SWEEP(fdn_registry_entry_release, fdn_registry_entry_release(e));
        uint64_t o2 = 0;
        NOALLOC_SWEEP(fdn_registry_owner_new, o2 = fdn_registry_owner_new());
        assert_true(o2 > owner);
    }
    SWEEP(sw, fdn_registry_meta_get, SWEEP_KEEP)
    {
        char buf[16];
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_registry_meta_get(r, "db", "zone", buf, sizeof(buf), NULL)))
            assert_string_equal(buf, "eu-1");
    }
    SWEEP(sw, fdn_registry_list, SWEEP_KEEP)
    {
        char **names = NULL;
        size_t n = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_registry_list(r, &names, &n))) {
            assert_null(names);
        } else {
            assert_int_equal(n, 1);
            fdn_free(names);
        }
    }
    SWEEP(sw, fdn_registry_wait, SWEEP_KEEP)
    {
        void *h = NULL;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_registry_wait(r, "db", 0, &h, NULL)))
            assert_ptr_equal(h, &handle);
    }
    SWEEP(sw, fdn_registry_unregister, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_registry_unregister(r, "db");
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_registry_count(r), 1);
        } else {
            assert_int_equal(fdn_registry_count(r), 0);
            assert_int_equal(fdn_registry_register(r, "db", &handle, owner, meta, 2, NULL), 0);
        }
    }
    SWEEP(sw, fdn_registry_release_owner, SWEEP_KEEP)
    {
        sweep_arm(&sw);
        int rc = fdn_registry_release_owner(r, owner);
        rc = rc < 0 ? rc : 0; /* (the count released) */
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_registry_count(r), 1);
        } else {
            assert_int_equal(fdn_registry_count(r), 0);
            assert_int_equal(fdn_registry_register(r, "db", &handle, owner, meta, 2, NULL), 0);
        }
    }
    NOALLOC_SWEEP(fdn_registry_destroy, fdn_registry_destroy(r)); /* allocates nothing */
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
