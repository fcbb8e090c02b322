/* Failing-allocator sweep of include/fdn/pool.h (tests/alloc/README.md): pools (create with
 * prefill, checkout of a worker that must be made, owned checkouts, with) and the manager
 * (create, start, list, with). A failed checkout lends nothing and the pool stays whole; a
 * failed start leaves no pool under the name. Workers are fdn_malloc'd blocks, so a worker
 * lost by a failure shows in the balance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/common.h>
#include <fdn/error.h>
#include <fdn/pool.h>

#include "alloc_sweep.h"

static int w_create(void **conn, void *user)
{
    (void)user;
    *conn = fdn_malloc(16);
    return *conn != NULL ? 0 : FDN_ENOMEM;
}

static void w_destroy(void *conn, void *user)
{
    (void)user;
    fdn_free(conn);
}

static fdn_pool_opts_t popts(int size, bool prefill)
{
    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.name = "db";
    o.size = size;
    o.max_overflow = 1;
    o.create = w_create;
    o.destroy = w_destroy;
    o.prefill = prefill;
    return o;
}

static int use(void *conn, void *arg)
{
    (void)conn;
    (*(int *)arg)++;
    return 0;
}

static void sweep_pool(void **state)
{
    (void)state;
    fdn_pool_opts_t o = popts(2, true);
    SWEEP(sw, fdn_pool_create, 0)
    {
        fdn_pool_t *p = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pool_create(&p, &o, NULL))) {
            assert_null(p);
        } else {
            assert_int_equal(fdn_pool_shutdown(p, 1000), 0);
            fdn_pool_destroy(p);
        }
    }
    /* no prefill: the checkout makes its worker */
    o = popts(2, false);
    SWEEP(sw, fdn_pool_checkout, 0)
    {
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        fdn_pool_worker_t *w = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pool_checkout(p, &w, 0, NULL))) {
            assert_null(w);
        } else {
            assert_int_equal(fdn_pool_checkin(p, w), 0);
        }
        fdn_pool_status_t st;
        assert_int_equal(fdn_pool_status(p, &st), 0);
        assert_int_equal(st.in_use, 0);
        assert_int_equal(fdn_pool_shutdown(p, 1000), 0);
        fdn_pool_destroy(p);
    }
    /* a broken worker is destroyed and its slot refilled at once (the pool's create callback,
     * on the caller's thread): a refill that fails is counted (create failures) and leaves the
     * slot free for the next checkout, which makes the worker then */
    o = popts(1, true);
    SWEEP(sw, fdn_pool_checkin_broken, 0)
    {
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        fdn_pool_worker_t *w = NULL;
        assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0);
        sweep_arm(&sw);
        assert_false(sweep_failed(&sw, fdn_pool_checkin_broken(p, w)));
        fdn_pool_status_t st;
        assert_int_equal(fdn_pool_status(p, &st), 0);
        assert_int_equal(st.in_use, 0);
        assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0); /* usable */
        assert_int_equal(fdn_pool_checkin(p, w), 0);
        assert_int_equal(fdn_pool_shutdown(p, 1000), 0);
        fdn_pool_destroy(p);
    }
    o = popts(2, false);
    SWEEP(sw, fdn_pool_checkout_owned, 0)
    {
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        fdn_pool_worker_t *w = NULL;
        sweep_arm(&sw);
        if (!sweep_failed(&sw, fdn_pool_checkout_owned(p, &w, 0, 42, NULL)))
            assert_int_equal(fdn_pool_release_owner(p, 42, false), 1);
        assert_int_equal(fdn_pool_shutdown(p, 1000), 0);
        fdn_pool_destroy(p);
    }
    SWEEP(sw, fdn_pool_with, 0)
    {
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        int uses = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pool_with(p, use, &uses, 0, NULL)))
            assert_int_equal(uses, 0);
        else
            assert_int_equal(uses, 1);
        assert_int_equal(fdn_pool_shutdown(p, 1000), 0);
        fdn_pool_destroy(p);
    }
}

static void sweep_manager(void **state)
{
    (void)state;
    fdn_pools_opts_t mo = FDN_POOLS_OPTS_INIT;
    SWEEP(sw, fdn_pools_create, 0)
    {
        fdn_pools_t *m = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pools_create(&m, &mo)))
            assert_null(m);
        else
            fdn_pools_destroy(m);
    }
    fdn_pool_opts_t o = popts(1, true);
    /* (a failed start keeps the manager's grown table: the balance is checked when the
     * manager is gone, at the end of each pass) */
    SWEEP(sw, fdn_pools_start, SWEEP_NO_CALL_LEAK)
    {
        fdn_pools_t *m = NULL;
        assert_int_equal(fdn_pools_create(&m, &mo), 0);
        fdn_pool_t *p = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pools_start(m, "db", &o, &p, NULL))) {
            assert_null(p);
            assert_int_not_equal(fdn_pools_get(m, "db", &p), 0);
        } else {
            fdn_pool_release(p); /* the reference start handed out */
            assert_int_equal(fdn_pools_get(m, "db", &p), 0);
            fdn_pool_release(p); /* and the one get did */
        }
        fdn_pools_destroy(m);
    }
    long base = sweep_live();
    fdn_pools_t *m = NULL;
    assert_int_equal(fdn_pools_create(&m, &mo), 0);
    assert_int_equal(fdn_pools_start(m, "db", &o, NULL, NULL), 0);
    SWEEP(sw, fdn_pools_list, 0)
    {
        fdn_pool_info_t *v = NULL;
        size_t n = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pools_list(m, &v, &n))) {
            assert_null(v);
        } else {
            assert_int_equal(n, 1);
            fdn_free(v);
        }
    }
    SWEEP(sw, fdn_pools_with, SWEEP_KEEP)
    {
        int uses = 0;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pools_with(m, "db", use, &uses, 1000, NULL)))
            assert_int_equal(uses, 0);
    }
    SWEEP(sw, fdn_pools_status, 0)
    {
        fdn_pool_status_t st;
        sweep_arm(&sw);
        sweep_failed(&sw, fdn_pools_status(m, "db", &st));
    }
    SWEEP(sw, fdn_pools_stop, SWEEP_KEEP)
    {
        fdn_pool_t *p = NULL;
        sweep_arm(&sw);
        if (sweep_failed(&sw, fdn_pools_stop(m, "db"))) {
            assert_int_equal(fdn_pools_get(m, "db", &p), 0);
            fdn_pool_release(p);
        } else {
            assert_int_not_equal(fdn_pools_get(m, "db", &p), 0);
            assert_int_equal(fdn_pools_start(m, "db", &o, NULL, NULL), 0);
        }
    }
    fdn_pools_destroy(m);
    assert_int_equal(sweep_live(), base);
}

/* Lending an existing worker back, its reads, the pool's counters, reaping and shutting down
 * allocate nothing; so do the manager's lookup and defaults, and the name tables. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    long base = sweep_live();
    fdn_pool_opts_t o = popts(2, true);
    fdn_pool_t *p = NULL;
    assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
    const char *name = NULL;
    NOALLOC_SWEEP(fdn_pool_name, name = fdn_pool_name(p));
    assert_string_equal(name, "db");
    NOALLOC_SWEEP(fdn_pool_retain, fdn_pool_retain(p));
    NOALLOC_SWEEP(fdn_pool_release, fdn_pool_release(p));
    fdn_pool_status_t st;
    int rc = -1;
    NOALLOC_SWEEP(fdn_pool_status, rc = fdn_pool_status(p, &st));
    assert_int_equal(rc, 0);
    assert_int_equal(st.size, 2);
    fdn_pool_worker_t *w = NULL;
    assert_int_equal(fdn_pool_checkout(p, &w, 0, NULL), 0); /* a prefilled worker */
    void *conn = NULL;
    NOALLOC_SWEEP(fdn_pool_worker_conn, conn = fdn_pool_worker_conn(w));
    assert_non_null(conn);
    NOALLOC_SWEEP(fdn_pool_checkin, rc = fdn_pool_checkin(p, w));
    assert_int_equal(rc, 0);
    assert_int_equal(fdn_pool_checkout_owned(p, &w, 0, 7, NULL), 0);
    NOALLOC_SWEEP(fdn_pool_release_owner, rc = fdn_pool_release_owner(p, 7, false));
    assert_int_equal(rc, 1);
    NOALLOC_SWEEP(fdn_pool_reap, rc = fdn_pool_reap(p));
    assert_true(rc >= 0);
    NOALLOC_SWEEP(fdn_pool_shutdown, rc = fdn_pool_shutdown(p, 1000));
    assert_int_equal(rc, 0);
    NOALLOC_SWEEP(fdn_pool_destroy, fdn_pool_destroy(p));

    fdn_pools_opts_t mo = FDN_POOLS_OPTS_INIT;
    fdn_pools_t *m = NULL;
    assert_int_equal(fdn_pools_create(&m, &mo), 0);
    NOALLOC_SWEEP(fdn_pools_set_defaults, rc = fdn_pools_set_defaults(m, 3, 1, FDN_POOL_FIFO));
    assert_int_equal(rc, 0);
    assert_int_equal(fdn_pools_start(m, "db", &o, NULL, NULL), 0);
    NOALLOC_SWEEP(fdn_pools_get, rc = fdn_pools_get(m, "db", &p));
    assert_int_equal(rc, 0);
    fdn_pool_release(p);
    NOALLOC_SWEEP(fdn_pools_destroy, fdn_pools_destroy(m));

    fdn_pool_strategy_t strat = FDN_POOL_LIFO;
    NOALLOC_SWEEP(fdn_pool_strategy_parse, rc = fdn_pool_strategy_parse("fifo", 4, &strat));
    assert_int_equal(rc, 0);
    assert_int_equal(strat, FDN_POOL_FIFO);
    NOALLOC_SWEEP(fdn_pool_strategy_name, name = fdn_pool_strategy_name(FDN_POOL_FIFO));
    assert_string_equal(name, "fifo");
    NOALLOC_SWEEP(fdn_pool_state_name, name = fdn_pool_state_name(FDN_POOL_FULL));
    assert_non_null(name);
    assert_int_equal(sweep_live(), base);
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_pool),
        cmocka_unit_test(sweep_manager),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
