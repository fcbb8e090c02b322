/* Protected calls under changes of the protection table (protect.c).
 *
 * restarted_pool_under_calls: calls through an entry's cached pool while the pool is stopped
 * and started again under its name: calls that find the cached pool retired replace the entry
 * (Retired pools) while other calls still use the old one. Invariants at the end: every call
 * ran or was refused with the pool missing or shut down, every connection was destroyed, and
 * nothing the library allocated is left (failing allocator's live count, nothing failing).
 *
 * configured_key_is_found_while_the_table_changes: calls on a key that stays configured while
 * another thread replaces its entry and configures and removes other keys (each change
 * publishes a new table, and a call may find an entry whose count already reached zero: it
 * must search again, not miss the key). The key's breaker is open, so a call that found its
 * entry is refused and one that missed it would run fn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/common.h>
#include <fdn/breaker.h>
#include <fdn/pool.h>
#include <fdn/protect.h>

#include "fail_alloc.h"
#include "stress.h"

#define THREADS 2

static _Atomic int g_conns;

static int s_create(void **out, void *user)
{
    (void)user;
    atomic_fetch_add(&g_conns, 1);
    *out = (void *)1;
    return 0;
}

static void s_destroy(void *conn, void *user)
{
    (void)conn;
    (void)user;
    atomic_fetch_sub(&g_conns, 1);
}

static int s_fn(void *conn, void *arg)
{
    (void)arg;
    return conn != NULL ? 0 : -1;
}

typedef struct shared {
    fdn_protect_t *p;
    long iters;
    _Atomic int running;
    _Atomic long ran, missing, shut, other;
} shared_t;

static void *caller(void *arg)
{
    shared_t *s = arg;
    for (long i = 0; i < s->iters; i++) {
        int rc = fdn_execute_protected(s->p, "pc", NULL, s_fn, NULL, NULL, NULL);
        if (rc == 0)
            atomic_fetch_add(&s->ran, 1);
        else if (rc == FDN_ENOENT)
            atomic_fetch_add(&s->missing, 1);
        else if (rc == FDN_ESHUTDOWN)
            atomic_fetch_add(&s->shut, 1);
        else
            atomic_fetch_add(&s->other, 1);
        if (i % 8 == 7)
            sched_yield(); /* let the restarting thread in on a machine of few cores */
    }
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

static void restarted_pool_under_calls(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    long live0 = fail_alloc_live();
    fdn_pools_t *m;
    assert_int_equal(fdn_pools_create(&m, NULL), 0);
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = THREADS;
    po.max_overflow = 0;
    po.create = s_create;
    po.destroy = s_destroy;
    po.checkout_timeout_ms = 10000;
    assert_int_equal(fdn_pools_start(m, "db", &po, NULL, NULL), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.pools = m;
    shared_t s = {.iters = test_stress_iters(20000, 0)};
    assert_int_equal(fdn_protect_create(&s.p, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.pool = "db";
    assert_int_equal(fdn_protect_configure(s.p, "pc", &cfg, NULL), 0);
    atomic_store(&s.running, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, caller, &s), 0);
    long restarts = 0;
    while (atomic_load(&s.running) > 0) {
        /* let some calls run on this pool (through the cache) before replacing it */
        long seen = atomic_load(&s.ran);
        while (atomic_load(&s.running) > 0 && atomic_load(&s.ran) < seen + 20)
            sched_yield();
        assert_int_equal(fdn_pools_stop(m, "db"), 0);
        assert_int_equal(fdn_pools_start(m, "db", &po, NULL, NULL), 0);
        restarts++;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    long ran = atomic_load(&s.ran), missing = atomic_load(&s.missing);
    long shut = atomic_load(&s.shut), other = atomic_load(&s.other);
    assert_int_equal(other, 0);
    assert_int_equal(ran + missing + shut, THREADS * s.iters);
    fdn_protect_destroy(s.p);
    fdn_pools_destroy(m);
    assert_int_equal(atomic_load(&g_conns), 0);
    assert_int_equal(fail_alloc_live(), live0);
    fail_alloc_uninstall();
    print_message("restarts %ld, calls ran %ld, pool missing %ld, shut down %ld\n", restarts, ran,
                  missing, shut);
}

#define CHURN_KEYS 8

typedef struct churn {
    fdn_protect_t *p;
    long iters;
    _Atomic int running;
    _Atomic long refused, stable_ran, other_ran, other_refused, other_rc, stable_unseen;
    _Atomic bool writers_stop;
} churn_t;

static int never_fn(void *conn, void *arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

static void churn_key(char *buf, size_t cap, long i)
{
    snprintf(buf, cap, "k%ld", i % CHURN_KEYS);
}

static void *churn_caller(void *arg)
{
    churn_t *s = arg;
    for (long i = 0; i < s->iters; i++) {
        fdn_protect_result_t r;
        int rc = fdn_execute_protected(s->p, "stable", NULL, never_fn, NULL, &r, NULL);
        if (rc == FDN_ECIRCUIT_OPEN && r.rejected_by == FDN_PROTECT_BREAKER && !r.ran)
            atomic_fetch_add(&s->refused, 1);
        else
            atomic_fetch_add(&s->stable_ran, 1); /* the key was missed */
        /* the other readers of the table find it too */
        fdn_protect_status_t st;
        if (fdn_protect_has(s->p, "stable") != 0 || fdn_protect_status(s->p, "stable", &st) != 0 ||
            !st.has_breaker)
            atomic_fetch_add(&s->stable_unseen, 1);
        if (i % 16 == 0) {
            char **keys = NULL;
            size_t n = 0;
            bool seen = false;
            if (fdn_protect_list(s->p, &keys, &n) == 0) {
                for (size_t j = 0; j < n; j++)
                    seen = seen || strcmp(keys[j], "stable") == 0;
                fdn_free(keys);
            }
            if (!seen)
                atomic_fetch_add(&s->stable_unseen, 1);
        }
        char k[16];
        churn_key(k, sizeof(k), i);
        rc = fdn_execute_protected(s->p, k, NULL, never_fn, NULL, &r, NULL);
        if (rc == 0 && r.ran)
            atomic_fetch_add(&s->other_ran, 1); /* not configured at that moment */
        else if (rc == FDN_ECIRCUIT_OPEN && !r.ran)
            atomic_fetch_add(&s->other_refused, 1);
        else
            atomic_fetch_add(&s->other_rc, 1);
        if (i % 8 == 7)
            sched_yield(); /* let the changing thread in on a machine of few cores */
    }
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

/* A second writer: keys of its own come and go, so two writers publish tables in turn. */
static void *churn_writer(void *arg)
{
    churn_t *s = arg;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "open";
    for (long i = 0; !atomic_load(&s->writers_stop); i++) {
        char k[16];
        snprintf(k, sizeof(k), "w%ld", i % CHURN_KEYS);
        if (fdn_protect_configure(s->p, k, &cfg, NULL) != 0)
            atomic_fetch_add(&s->other_rc, 1);
        snprintf(k, sizeof(k), "w%ld", (i + CHURN_KEYS - 1) % CHURN_KEYS);
        int rc = fdn_protect_unconfigure(s->p, k);
        if (rc != 0 && rc != FDN_ENOENT)
            atomic_fetch_add(&s->other_rc, 1);
        if (i % 4 == 3)
            sched_yield();
    }
    return NULL;
}

static void configured_key_is_found_while_the_table_changes(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    long live0 = fail_alloc_live();
    fdn_breakers_t *set;
    assert_int_equal(fdn_breakers_create(&set, NULL), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.breakers = set;
    churn_t s = {.iters = test_stress_iters(20000, 0)};
    assert_int_equal(fdn_protect_create(&s.p, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "open";
    assert_int_equal(fdn_protect_configure(s.p, "stable", &cfg, NULL), 0);
    fdn_breaker_t *b;
    assert_int_equal(fdn_breaker_get(set, "open", &b), 0);
    fdn_breaker_force_open(b);
    atomic_store(&s.running, THREADS);
    pthread_t t[THREADS], w;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn_caller, &s), 0);
    assert_int_equal(pthread_create(&w, NULL, churn_writer, &s), 0);
    long changes = 0;
    while (atomic_load(&s.running) > 0) {
        char k[16];
        churn_key(k, sizeof(k), changes);
        /* the stable key's entry replaced (its old one dropped by the table), another key
         * configured, the one before it removed */
        assert_int_equal(fdn_protect_configure(s.p, "stable", &cfg, NULL), 0);
        assert_int_equal(fdn_protect_configure(s.p, k, &cfg, NULL), 0);
        churn_key(k, sizeof(k), changes + CHURN_KEYS - 1);
        int rc = fdn_protect_unconfigure(s.p, k);
        assert_true(rc == 0 || rc == FDN_ENOENT);
        changes++;
        if (changes % 4 == 0)
            sched_yield();
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    atomic_store(&s.writers_stop, true);
    assert_int_equal(pthread_join(w, NULL), 0);
    assert_int_equal(atomic_load(&s.stable_ran), 0);
    assert_int_equal(atomic_load(&s.stable_unseen), 0);
    assert_int_equal(atomic_load(&s.refused), THREADS * s.iters);
    assert_int_equal(atomic_load(&s.other_rc), 0);
    assert_int_equal(atomic_load(&s.other_ran) + atomic_load(&s.other_refused), THREADS * s.iters);
    assert_int_equal(fdn_protect_has(s.p, "stable"), 0);
    fdn_protect_destroy(s.p);
    fdn_breakers_destroy(set);
    assert_int_equal(fail_alloc_live(), live0);
    fail_alloc_uninstall();
    print_message("changes %ld, other keys found %ld, not configured %ld\n", changes,
                  atomic_load(&s.other_refused), atomic_load(&s.other_ran));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(restarted_pool_under_calls),
        cmocka_unit_test(configured_key_is_found_while_the_table_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
