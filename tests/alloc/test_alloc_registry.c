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
    fdn_registry_destroy(r);
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
