/* Failing-allocator sweep of include/fdn/breaker.h (tests/alloc/README.md): breakers alone and
 * in a set (create, install, defaults, list), the JSON option parser. A failed create or
 * install leaves the set as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/breaker.h>
#include <fdn/common.h>
#include <fdn/error.h>

#include "alloc_sweep.h"

static void sweep_single(void **state)
{
    (void)state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    SWEEP(sw, fdn_breaker_create, 0)
    {
        fdn_breaker_t *b = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_breaker_create(&b, "db", &o))) {
            assert_null(b);
        } else {
            assert_string_equal(fdn_breaker_name(b), "db");
            assert_int_equal(fdn_breaker_ask(b), 0);
            fdn_breaker_destroy(b);
        }
    }
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create(&b, "db", &o), 0);
    SWEEP(sw, fdn_breaker_acquire_ticket, SWEEP_KEEP)
    {
        uint64_t t = 0;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_breaker_acquire_ticket(b, &t)))
            assert_int_equal(fdn_breaker_report_ticket(b, t, FDN_BREAKER_SUCCESS, 1000), 0);
    }
    fdn_breaker_destroy(b);
    static const char json[] =
        "{\"failure_threshold\": 3, \"recovery_time_ms\": 1000, \"rate_window\": \"count\"}";
    SWEEP(sw, fdn_breaker_opts_parse, 0)
    {
        fdn_breaker_opts_t p = FDN_BREAKER_OPTS_INIT;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_breaker_opts_parse(json, sizeof(json) - 1, &p, NULL)))
            assert_int_equal(p.failure_threshold, 3);
    }
}

static void sweep_set(void **state)
{
    (void)state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    SWEEP(sw, fdn_breakers_create, 0)
    {
        fdn_breakers_t *set = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_breakers_create(&set, &o)))
            assert_null(set);
        else
            fdn_breakers_destroy(set);
    }
    /* a removed breaker keeps its memory (and a name that comes back reuses it, retiring its
     * old options until the set goes): the balance is checked when the set is destroyed */
    long base = sweep_live();
    fdn_breakers_t *set = NULL;
    assert_int_equal(fdn_breakers_create(&set, &o), 0);
    SWEEP(sw, fdn_breaker_create_in, SWEEP_KEEP)
    {
        fdn_breaker_t *b = NULL;
        sweep_arm(&sw);
        int rc = fdn_breaker_create_in(set, "a", &o, &b);
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_breakers_count(set), 0);
            assert_int_not_equal(fdn_breaker_get(set, "a", &b), 0);
        } else {
            assert_int_equal(fdn_breakers_count(set), 1);
            assert_int_equal(fdn_breaker_remove(set, "a"), 0);
        }
    }
    SWEEP(sw, fdn_breaker_install, SWEEP_KEEP)
    {
        fdn_breaker_t *b = NULL;
        sweep_arm(&sw);
        int rc = fdn_breaker_install(set, "b", &o, &b);
        if (sweep_failed(&sw, rc)) {
            assert_int_equal(fdn_breakers_count(set), 0);
        } else {
            assert_int_equal(fdn_breakers_count(set), 1);
            assert_int_equal(fdn_breaker_remove(set, "b"), 0);
        }
    }
    /* removing moves the breaker to the set's removed list, which may have to grow: a failed
     * remove leaves it listed and found (each pass on a fresh set, whose list is empty) */
    SWEEP(sw, fdn_breaker_remove, 0)
    {
        fdn_breakers_t *s2 = NULL;
        assert_int_equal(fdn_breakers_create(&s2, &o), 0);
        fdn_breaker_t *b = NULL;
        assert_int_equal(fdn_breaker_create_in(s2, "r", &o, &b), 0);
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_breaker_remove(s2, "r"))) {
            assert_int_equal(fdn_breakers_count(s2), 1);
            assert_int_equal(fdn_breaker_get(s2, "r", &b), 0);
            assert_int_equal(fdn_breaker_remove(s2, "r"), 0); /* usable: a retry removes it */
        }
        assert_int_equal(fdn_breakers_count(s2), 0);
        assert_int_equal(fdn_breaker_get(s2, "r", &b), FDN_EBREAKER_NOT_FOUND);
        fdn_breakers_destroy(s2);
    }
    fdn_breaker_t *x = NULL;
    assert_int_equal(fdn_breaker_create_in(set, "x", &o, &x), 0);
    assert_int_equal(fdn_breaker_create_in(set, "y", &o, &x), 0);
    SWEEP(sw, fdn_breakers_list, 0)
    {
        char **names = NULL;
        size_t n = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_breakers_list(set, &names, &n))) {
            assert_null(names);
        } else {
            assert_int_equal(n, 2);
            fdn_free(names);
        }
    }
    SWEEP(sw, fdn_breakers_handles, 0)
    {
        fdn_breaker_t **v = NULL;
        size_t n = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_breakers_handles(set, &v, &n))) {
            assert_null(v);
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 2);
            assert_string_equal(fdn_breaker_name(v[1]), "y");
            fdn_free(v);
        }
    }
    SWEEP(sw, fdn_breakers_set_defaults, SWEEP_KEEP)
    {
        fdn_breaker_opts_t d = FDN_BREAKER_OPTS_INIT;
        d.failure_threshold = 9;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_breakers_set_defaults(set, &d));
    }
    SWEEP(sw, fdn_breakers_get_defaults, 0)
    {
        fdn_breaker_opts_t d;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_breakers_get_defaults(set, &d)))
            assert_int_equal(d.failure_threshold, 9);
    }
    {
        fdn_breaker_t *gb = NULL;
        fdn_breaker_opts_t d;
        assert_int_equal(fdn_breaker_create_in(set, "opts", NULL, &gb), 0);
        NOALLOC_SWEEP(fdn_breaker_get_opts, assert_int_equal(fdn_breaker_get_opts(gb, &d), 0));
        assert_int_equal(d.failure_threshold, 9);
    }
    NOALLOC_SWEEP(fdn_breakers_destroy, fdn_breakers_destroy(set)); /* allocates nothing */
    assert_int_equal(sweep_live(), base);
}

static int call_ok(void *arg)
{
    (void)arg;
    return 0;
}

/* Admission, outcomes, state reads and changes of a breaker, and set lookups, allocate
 * nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT;
    fdn_breakers_t *set = NULL;
    assert_int_equal(fdn_breakers_create(&set, &o), 0);
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_create_in(set, "b", &o, &b), 0);
    fdn_breaker_permit_t permit;
    fdn_breaker_status_t st;
    int fn_rc = 0;
    uint64_t ticket = 0;
    NOALLOC_SWEEP(fdn_breaker_opts_from_tolerance, fdn_breaker_opts_from_tolerance(&o, 3, 1000));
    NOALLOC_SWEEP(fdn_breaker_opts_from_tolerance_ex,
                  fdn_breaker_opts_from_tolerance_ex(&o, 3, 1000, NULL));
    NOALLOC_SWEEP(fdn_breaker_opts_validate, fdn_breaker_opts_validate(&o, NULL));
    NOALLOC_SWEEP(fdn_breaker_ask, fdn_breaker_ask(b));
    NOALLOC_SWEEP(fdn_breaker_acquire, fdn_breaker_acquire(b, &permit));
    NOALLOC_SWEEP(fdn_breaker_record, fdn_breaker_record(b, &permit, 0));
    assert_int_equal(fdn_breaker_acquire(b, &permit), 0);
    NOALLOC_SWEEP(fdn_breaker_release, fdn_breaker_release(b, &permit));
    NOALLOC_SWEEP(fdn_breaker_call, fdn_breaker_call(b, call_ok, NULL, &fn_rc));
    assert_int_equal(fdn_breaker_acquire_ticket(b, &ticket), 0);
    NOALLOC_SWEEP(fdn_breaker_report_ticket,
                  fdn_breaker_report_ticket(b, ticket, FDN_BREAKER_SUCCESS, 10));
    NOALLOC_SWEEP(fdn_breaker_tickets_settle, fdn_breaker_tickets_settle(b));
    NOALLOC_SWEEP(fdn_breaker_state, fdn_breaker_state(b));
    NOALLOC_SWEEP(fdn_breaker_status, fdn_breaker_status(b, &st));
    NOALLOC_SWEEP(fdn_breaker_force_open, fdn_breaker_force_open(b));
    NOALLOC_SWEEP(fdn_breaker_disable, fdn_breaker_disable(b));
    NOALLOC_SWEEP(fdn_breaker_reset, fdn_breaker_reset(b));
    NOALLOC_SWEEP(fdn_breaker_name, fdn_breaker_name(b));
    NOALLOC_SWEEP(fdn_breaker_state_name, fdn_breaker_state_name(FDN_BREAKER_OPEN));
    NOALLOC_SWEEP(fdn_breaker_get, fdn_breaker_get(set, "b", &b));
    NOALLOC_SWEEP(fdn_breakers_count, fdn_breakers_count(set));
    NOALLOC_SWEEP(fdn_breakers_set_max, fdn_breakers_set_max(set, 5));
    fdn_breakers_destroy(set);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_single),
        cmocka_unit_test(sweep_set),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
