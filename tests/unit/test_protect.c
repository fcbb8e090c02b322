/* Protected execution: order of layers and each failure path (reference §11.9), with the
 * real pool manager on a manual clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/protect.h>
#include <fdn/telemetry.h>
#include "core/rcu.h"
#include "infra/breaker_int.h"
#include "infra/pool_int.h"
#include "infra/protect_int.h"
#include "fail_alloc.h"

#define MS 1000000LL

typedef struct fx {
    fdn_clock_t *clk;
    fdn_breakers_t *brk;
    fdn_limiter_t *lim;
    fdn_pools_t *pools;
    fdn_protect_t *p;
    char log[2048];
    int conns;
} fx_t;

static void logf_(fx_t *f, const char *s)
{
    size_t l = strlen(f->log);
    snprintf(f->log + l, sizeof(f->log) - l, "%s%s", l ? "," : "", s);
}

static void on_event(const char *ev, const char *key, fdn_protect_layer_t layer, int rc,
                     int64_t dur, void *user)
{
    fx_t *f = user;
    char buf[64];
    (void)key;
    (void)rc;
    (void)dur;
    if (layer != FDN_PROTECT_NONE)
        snprintf(buf, sizeof(buf), "%s:%d", ev, (int)layer);
    else
        snprintf(buf, sizeof(buf), "%s", ev);
    logf_(f, buf);
}

static int conn_create(void **conn, void *user)
{
    fx_t *f = user;
    f->conns++;
    *conn = (void *)(intptr_t)f->conns;
    return 0;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fdn_clock_manual_create(&f->clk, 1000 * MS, 1700000040000LL * MS), 0);
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.clock = f->clk;
    assert_int_equal(fdn_breakers_create(&f->brk, &bo), 0);
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.clock = f->clk;
    assert_int_equal(fdn_limiter_create(&f->lim, &lo), 0);
    fdn_pools_opts_t po = FDN_POOLS_OPTS_INIT;
    po.clock = f->clk;
    assert_int_equal(fdn_pools_create(&f->pools, &po), 0);
    fdn_pool_opts_t pool = FDN_POOL_OPTS_INIT;
    pool.size = 1;
    pool.max_overflow = 0;
    pool.create = conn_create;
    pool.user = f;
    assert_int_equal(fdn_pools_start(f->pools, "db", &pool, NULL, NULL), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.breakers = f->brk;
    o.limiter = f->lim;
    o.pools = f->pools;
    o.clock = f->clk;
    o.on_event = on_event;
    o.event_user = f;
    assert_int_equal(fdn_protect_create(&f->p, &o), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fdn_protect_destroy(f->p);
    fdn_pools_destroy(f->pools);
    fdn_limiter_destroy(f->lim);
    fdn_breakers_destroy(f->brk);
    fdn_clock_destroy(f->clk);
    free(f);
    return 0;
}

typedef struct call {
    fx_t *f;
    int rc;
    void *conn;
    int runs;
} call_t;

static int fn(void *conn, void *arg)
{
    call_t *c = arg;
    c->runs++;
    c->conn = conn;
    if (c->f)
        logf_(c->f, "fn");
    return c->rc;
}

static void no_layers(void **state)
{
    fx_t *f = *state;
    call_t c = {f, 42, NULL, 0};
    fdn_protect_result_t r;
    assert_int_equal(fdn_execute_protected(f->p, "plain", NULL, fn, &c, &r, NULL), 42);
    assert_true(r.ran);
    assert_int_equal(r.fn_rc, 42);
    assert_null(c.conn);
    assert_string_equal(f->log, "execute_start,fn,execute_stop");
    c.rc = FDN_EIO; /* fn's own error comes back as is */
    assert_int_equal(fdn_execute_protected(f->p, "plain", NULL, fn, &c, &r, NULL), FDN_EIO);
    assert_true(r.ran);
    assert_int_equal(fdn_execute_protected(f->p, "plain", NULL, NULL, &c, &r, NULL), FDN_EINVAL);
    assert_int_equal(fdn_execute_protected(NULL, "plain", NULL, fn, &c, &r, NULL), FDN_EINVAL);
}

/* A call that found an entry about to go (a writer replaced it and dropped the table's
 * reference before the call took one) searches again and finds the replacement: the key
 * is configured throughout, so the call must never run unprotected. The hook replaces the
 * entry (or removes the key) between the call's search and its reference. */
static int g_found_runs;
static const char *g_found_action; /* "replace" or "remove" */

static void change_on_first_find(fdn_protect_t *p, const char *key)
{
    if (g_found_runs++ != 0)
        return;
    if (strcmp(g_found_action, "remove") == 0) {
        assert_int_equal(fdn_protect_unconfigure(p, key), 0);
        return;
    }
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "open";
    assert_int_equal(fdn_protect_configure(p, key, &cfg, NULL), 0);
}

static void entry_replaced_before_the_call_takes_it(void **state)
{
    fx_t *f = *state;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "open";
    assert_int_equal(fdn_protect_configure(f->p, "k", &cfg, NULL), 0);
    fdn_breaker_t *b;
    assert_int_equal(fdn_breaker_get(f->brk, "open", &b), 0);
    fdn_breaker_force_open(b);
    call_t c = {f, 0, NULL, 0};
    fdn_protect_result_t r;

    g_found_runs = 0;
    g_found_action = "replace";
    fdn__protect_test_found = change_on_first_find;
    int rc = fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL);
    fdn__protect_test_found = NULL;
    assert_int_equal(g_found_runs, 2); /* the old entry, then its replacement */
    assert_int_equal(rc, FDN_ECIRCUIT_OPEN);
    assert_false(r.ran);
    assert_int_equal(r.rejected_by, FDN_PROTECT_BREAKER);

    /* the status of a key found as it is replaced reads the replacement */
    fdn_protect_status_t st;
    g_found_runs = 0;
    fdn__protect_test_found = change_on_first_find;
    rc = fdn_protect_status(f->p, "k", &st);
    fdn__protect_test_found = NULL;
    assert_int_equal(g_found_runs, 2);
    assert_int_equal(rc, 0);
    assert_true(st.has_breaker);
    assert_string_equal(st.breaker_name, "open");

    /* a key removed meanwhile is not found on the second search: the call runs unprotected,
     * as for a key never configured */
    g_found_runs = 0;
    g_found_action = "remove";
    fdn__protect_test_found = change_on_first_find;
    rc = fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL);
    fdn__protect_test_found = NULL;
    assert_int_equal(g_found_runs, 1);
    assert_int_equal(rc, 0);
    assert_true(r.ran);
    assert_int_equal(fdn_protect_has(f->p, "k"), FDN_ENOENT);
}

static void breaker_only(void **state)
{
    fx_t *f = *state;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 2;
    bo.clock = f->clk;
    cfg.breaker = "svc";
    cfg.breaker_opts = &bo;
    assert_int_equal(fdn_protect_configure(f->p, "k", &cfg, NULL), 0);
    call_t c = {NULL, 5, NULL, 0};
    fdn_protect_result_t r;
    assert_int_equal(fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL), 5);
    /* fn failures count toward the breaker (unlike the reference) */
    c.rc = FDN_EIO;
    fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL);
    fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL);
    fdn_breaker_t *b;
    assert_int_equal(fdn_breaker_get(f->brk, "svc", &b), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    c.runs = 0;
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, &e), FDN_ECIRCUIT_OPEN);
    assert_int_equal(c.runs, 0);
    assert_false(r.ran);
    assert_int_equal(r.rejected_by, FDN_PROTECT_BREAKER);
    assert_int_equal(e.ref_code, 5004);
    assert_non_null(strstr(e.message, "svc"));
    /* unknown breaker named by the call */
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.breaker = "missing";
    assert_int_equal(fdn_execute_protected(f->p, "k2", &co, fn, &c, &r, &e),
                     FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(e.ref_code, 5005);
    /* the breaker layer switched off by config */
    fdn_protect_set_layer_enabled(f->p, FDN_PROTECT_BREAKER, false);
    c.rc = 1;
    assert_int_equal(fdn_execute_protected(f->p, "k", NULL, fn, &c, &r, NULL), 1);
}

static void rate_limited_hard_limit(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 100, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(f->lim, "limited_op", &rule), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.limiter_rule = "limited_op";
    cfg.breaker = "rl_breaker";
    assert_int_equal(fdn_protect_configure(f->p, "rl", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "unique_id";
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r;
    for (int i = 0; i < 100; i++)
        assert_int_equal(fdn_execute_protected(f->p, "rl", &co, fn, &c, &r, NULL), 0);
    f->log[0] = '\0';
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_execute_protected(f->p, "rl", &co, fn, &c, &r, &e), FDN_ERATE_LIMITED);
    assert_int_equal(c.runs, 100);
    assert_int_equal(r.rejected_by, FDN_PROTECT_LIMITER);
    assert_int_equal(r.retry_after_ns, 60000 * MS);
    assert_int_equal(e.ref_code, 6001);
    assert_string_equal(f->log, "execute_start,protection_triggered:1,execute_stop");
    /* the breaker never saw the rejection */
    fdn_breaker_t *b;
    fdn_breaker_get(f->brk, "rl_breaker", &b);
    fdn_breaker_status_t s;
    fdn_breaker_status(b, &s);
    assert_int_equal(s.total_failures, 0);
    assert_int_equal(s.total_rejected, 0);
    /* another identity is independent; disabling the layer lets calls through */
    co.identifier = "other";
    assert_int_equal(fdn_execute_protected(f->p, "rl", &co, fn, &c, &r, NULL), 0);
    co.identifier = "unique_id";
    fdn_protect_set_layer_enabled(f->p, FDN_PROTECT_LIMITER, false);
    assert_int_equal(fdn_execute_protected(f->p, "rl", &co, fn, &c, &r, NULL), 0);
    /* rule updates apply at once */
    fdn_protect_set_layer_enabled(f->p, FDN_PROTECT_LIMITER, true);
    rule.limit = 1000;
    fdn_limiter_set_rule(f->lim, "limited_op", &rule);
    assert_int_equal(fdn_execute_protected(f->p, "rl", &co, fn, &c, &r, NULL), 0);
}

/* The entry caches where its named rule sits in the limiter; every change of the rule table
 * (an update, the removal of this or another rule, which moves slots) applies to the next
 * call. */
static void cached_named_rule_follows_every_change(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t one = {FDN_LIMIT_FIXED_WINDOW, 1, 60000, 0};
    fdn_limit_rule_t many = {FDN_LIMIT_FIXED_WINDOW, 1000, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(f->lim, "first", &many), 0);
    assert_int_equal(fdn_limiter_set_rule(f->lim, "cached", &one), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.limiter_rule = "cached";
    assert_int_equal(fdn_protect_configure(f->p, "cr", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r;
    co.identifier = "a";
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    /* update of this rule */
    assert_int_equal(fdn_limiter_set_rule(f->lim, "cached", &many), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), 0);
    /* removing an earlier rule moves "cached" to another slot; its limit stays */
    assert_int_equal(fdn_limiter_set_rule(f->lim, "cached", &one), 0);
    co.identifier = "b";
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_limiter_remove_rule(f->lim, "first"), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    /* another rule now sits in the old slot; the entry does not pick it up */
    assert_int_equal(fdn_limiter_set_rule(f->lim, "other", &many), 0);
    co.identifier = "c";
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    /* removal of this rule: the next call fails as an unknown rule */
    assert_int_equal(fdn_limiter_remove_rule(f->lim, "cached"), 0);
    co.identifier = "d";
    int rc = fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL);
    assert_int_equal(rc, FDN_ENOENT);
    assert_false(r.ran);
    /* and re-adding it applies at once */
    assert_int_equal(fdn_limiter_set_rule(f->lim, "cached", &one), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "cr", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
}

/* A timed call hands its start time to the limiter only when both read the same clock: a
 * protection on another manual clock never moves the limiter's time. */
static void limiter_time_is_its_own_clock(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 1};
    assert_int_equal(fdn_limiter_set_rule(f->lim, "tb1", &tb), 0);
    fdn_clock_t *other;
    assert_int_equal(fdn_clock_manual_create(&other, 1000 * MS, 1700000040000LL * MS), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.limiter = f->lim;
    o.clock = other;
    fdn_protect_t *p2;
    assert_int_equal(fdn_protect_create(&p2, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.limiter_rule = "tb1";
    assert_int_equal(fdn_protect_configure(p2, "k", &cfg, NULL), 0);
    assert_int_equal(fdn_protect_configure(f->p, "k", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "x";
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r; /* a result makes the call timed: it reads its clock */
    assert_int_equal(fdn_execute_protected(p2, "k", &co, fn, &c, &r, NULL), 0);
    /* the protection's clock moves 10 s, the limiter's does not: still no token */
    assert_int_equal(fdn_clock_advance(other, 10000 * MS), 0);
    assert_int_equal(fdn_execute_protected(p2, "k", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 1000 * MS);
    /* same clock: the start time is the limiter's time */
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_clock_advance(f->clk, 1000 * MS), 0);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    fdn_protect_destroy(p2);
    fdn_clock_destroy(other);
}

/* The entry caches its pool; stopping it, starting another under the same name and stopping
 * the manager all apply to the next call. */
static void cached_pool_follows_stop_and_restart(void **state)
{
    fx_t *f = *state;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.pool = "db";
    assert_int_equal(fdn_protect_configure(f->p, "pc", &cfg, NULL), 0);
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r;
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), 0);
    void *first = c.conn;
    assert_non_null(first);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_ptr_equal(c.conn, first);
    /* stopped: not found */
    assert_int_equal(fdn_pools_stop(f->pools, "db"), 0);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), FDN_ENOENT);
    assert_false(r.ran);
    /* a new pool under the same name serves the next call */
    fdn_pool_opts_t pool = FDN_POOL_OPTS_INIT;
    pool.size = 1;
    pool.max_overflow = 0;
    pool.create = conn_create;
    pool.user = f;
    assert_int_equal(fdn_pools_start(f->pools, "db", &pool, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_non_null(c.conn);
    assert_ptr_not_equal(c.conn, first);
    void *second = c.conn;
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_ptr_equal(c.conn, second);
    /* a stopped manager refuses at once */
    fdn__pools_service_stop(f->pools);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), FDN_EUNAVAILABLE);
    assert_int_equal(fdn__pools_service_start(f->pools), 0);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_ptr_equal(c.conn, second);
    /* a pool shut down directly (still registered) reports shutdown */
    fdn_pool_t *h;
    assert_int_equal(fdn_pools_get(f->pools, "db", &h), 0);
    assert_int_equal(fdn_pool_shutdown(h, 0), 0);
    fdn_pool_release(h);
    assert_int_equal(fdn_execute_protected(f->p, "pc", NULL, fn, &c, &r, NULL), FDN_ESHUTDOWN);
}

/* Review finding: a stopped pool that an entry's cache still held lived (memory, last
 * reference) as long as the entry. Now the call that finds it retired replaces the entry, and
 * the pool goes with the old entry's last reference (here that call's own). Counted with the
 * failing allocator's live blocks (nothing fails): the stop frees the workers; the next call
 * frees the pool, and swaps the entry (its three blocks) for a copy (three) and the table for
 * a copy (the old entry's and table's memory go a grace period later: the barrier). */
static void cached_stopped_pool_is_freed(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    long live0 = fail_alloc_live();
    fx_t f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(fdn_clock_manual_create(&f.clk, 1000 * MS, 1700000040000LL * MS), 0);
    fdn_pools_opts_t po = FDN_POOLS_OPTS_INIT;
    po.clock = f.clk;
    assert_int_equal(fdn_pools_create(&f.pools, &po), 0);
    fdn_pool_opts_t pool = FDN_POOL_OPTS_INIT;
    pool.size = 1;
    pool.max_overflow = 0;
    pool.create = conn_create;
    pool.user = &f;
    assert_int_equal(fdn_pools_start(f.pools, "db", &pool, NULL, NULL), 0);
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.pools = f.pools;
    o.clock = f.clk;
    assert_int_equal(fdn_protect_create(&f.p, &o), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.pool = "db";
    assert_int_equal(fdn_protect_configure(f.p, "pc", &cfg, NULL), 0);
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r;
    /* twice: the first fills the cache, the second goes through it */
    assert_int_equal(fdn_execute_protected(f.p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f.p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_int_equal(f.conns, 1);

    assert_int_equal(fdn_pools_stop(f.pools, "db"), 0);
    long held = fail_alloc_live(); /* the stopped pool, kept by the cache alone */
    assert_int_equal(fdn_execute_protected(f.p, "pc", NULL, fn, &c, &r, NULL), FDN_ENOENT);
    fdn__rcu_barrier();
    assert_int_equal(fail_alloc_live(), held - 1);
    assert_int_equal(fdn_protect_has(f.p, "pc"), 0); /* the copy is configured */

    /* a pool started under the name again serves the next calls */
    assert_int_equal(fdn_pools_start(f.pools, "db", &pool, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f.p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f.p, "pc", NULL, fn, &c, &r, NULL), 0);
    assert_int_equal(f.conns, 2);

    /* stopped again and the entry dropped with the pool still cached: everything goes */
    assert_int_equal(fdn_pools_stop(f.pools, "db"), 0);
    fdn_protect_destroy(f.p);
    fdn_pools_destroy(f.pools);
    fdn_clock_destroy(f.clk);
    assert_int_equal(fail_alloc_live(), live0);
    fail_alloc_uninstall();
}

static void inline_rule_and_cost(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 10};
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.limit = &rule;
    assert_int_equal(fdn_protect_configure(f->p, "tb", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.cost = 6;
    call_t c = {NULL, 0, NULL, 0};
    fdn_protect_result_t r;
    assert_int_equal(fdn_execute_protected(f->p, "tb", &co, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "tb", &co, fn, &c, &r, NULL), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 200 * MS);
}

static void all_layers_order(void **state)
{
    fx_t *f = *state;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "e2e";
    cfg.limiter_rule = "api_calls";
    cfg.pool = "db";
    cfg.pool_timeout_ms = 0;
    assert_int_equal(fdn_protect_configure(f->p, "e2e", &cfg, NULL), 0);
    call_t c = {f, 77, NULL, 0};
    fdn_protect_result_t r;
    f->log[0] = '\0';
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), 77);
    assert_non_null(c.conn); /* a pooled connection was lent */
    assert_string_equal(f->log, "execute_start,fn,execute_stop");
    fdn_pool_status_t ps;
    assert_int_equal(fdn_pools_status(f->pools, "db", &ps), 0);
    assert_int_equal(ps.in_use, 0); /* checked back in */
    assert_int_equal(ps.checkouts, 1);

    /* pool timeout: the only worker is busy */
    fdn_pool_t *pool;
    fdn_pool_worker_t *w;
    assert_int_equal(fdn_pools_get(f->pools, "db", &pool), 0);
    assert_int_equal(fdn_pool_checkout(pool, &w, 0, NULL), 0);
    f->log[0] = '\0';
    c.runs = 0;
    fdn_error_t e = FDN_ERROR_INIT;
    /* the key's pool timeout is 0: a full pool refuses at once (poolboy's `full`) */
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, &e), FDN_EBUSY);
    assert_int_equal(c.runs, 0);
    assert_int_equal(r.rejected_by, FDN_PROTECT_POOL);
    assert_string_equal(f->log, "execute_start,protection_triggered:3,execute_stop");
    /* a full pool is not a breaker failure */
    fdn_breaker_t *b;
    fdn_breaker_get(f->brk, "e2e", &b);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), FDN_EBUSY);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    fdn_pool_checkin(pool, w);
    fdn_pool_release(pool);

    /* breaker open: the pool is never touched */
    fdn_breaker_force_open(b);
    assert_int_equal(fdn_pools_status(f->pools, "db", &ps), 0);
    uint64_t before = ps.checkouts;
    f->log[0] = '\0';
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), FDN_ECIRCUIT_OPEN);
    assert_string_equal(f->log, "execute_start,protection_triggered:2,execute_stop");
    fdn_pools_status(f->pools, "db", &ps);
    assert_int_equal(ps.checkouts, before);
    fdn_breaker_reset(b);

    /* a broken worker is replaced */
    c.rc = FDN_EPOOL_BROKEN;
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), FDN_EPOOL_BROKEN);
    fdn_pools_status(f->pools, "db", &ps);
    assert_int_equal(ps.broken, 1);
    c.rc = 3;
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), 3);

    /* unknown pool named by the call */
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.pool = "nope";
    f->log[0] = '\0';
    assert_int_equal(fdn_execute_protected(f->p, "e2e", &co, fn, &c, &r, NULL), FDN_ENOENT);
    assert_string_equal(f->log, "execute_start,execute_exception,execute_stop");
    /* the half-open probe slot is returned when the pool rejects */
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 1;
    bo.recovery_time_ms = 10;
    bo.clock = f->clk;
    fdn_breaker_install(f->brk, "e2e", &bo, NULL);
    c.rc = -1;
    fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_OPEN);
    fdn_clock_advance(f->clk, 10 * MS);
    assert_int_equal(fdn_execute_protected(f->p, "e2e", &co, fn, &c, &r, NULL), FDN_ENOENT);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_HALF_OPEN);
    c.rc = 0;
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), 0);
    assert_int_equal(fdn_breaker_state(b), FDN_BREAKER_CLOSED);
    /* pool layer off: fn gets no connection */
    fdn_protect_set_layer_enabled(f->p, FDN_PROTECT_POOL, false);
    c.conn = (void *)1;
    assert_int_equal(fdn_execute_protected(f->p, "e2e", NULL, fn, &c, &r, NULL), 0);
    assert_null(c.conn);
}

static void configure_validation_and_list(void **state)
{
    fx_t *f = *state;
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.recovery_time_ms = 0; /* "missing recovery_time" */
    cfg.breaker = "b1";
    cfg.breaker_opts = &bo;
    assert_int_equal(fdn_protect_configure(f->p, "x", &cfg, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "recovery_time"));
    cfg.breaker_opts = NULL;
    cfg.limiter_rule = "no_such_rule";
    assert_int_equal(fdn_protect_configure(f->p, "x", &cfg, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "invalid_rate_limiter_config"));
    fdn_limit_rule_t bad = {FDN_LIMIT_GCRA, 0, 1000, 0};
    cfg.limit = &bad;
    assert_int_equal(fdn_protect_configure(f->p, "x", &cfg, &e), FDN_EINVAL);
    cfg.limit = NULL;
    cfg.limiter_rule = NULL;
    cfg.pool_timeout_ms = -5;
    assert_int_equal(fdn_protect_configure(f->p, "x", &cfg, &e), FDN_EINVAL);
    assert_int_equal(fdn_protect_configure(f->p, "", &cfg, &e), FDN_EINVAL);
    assert_int_equal(fdn_protect_configure(f->p, "x", NULL, &e), FDN_EINVAL);
    assert_int_equal(fdn_protect_has(f->p, "x"), FDN_ENOENT);

    fdn_protect_config_t ok = FDN_PROTECT_CONFIG_INIT;
    ok.breaker = "api";
    ok.limiter_rule = "api_calls";
    ok.pool = "db";
    assert_int_equal(fdn_protect_configure(f->p, "zeta", &ok, NULL), 0);
    assert_int_equal(fdn_protect_configure(f->p, "alpha", &ok, NULL), 0);
    assert_int_equal(fdn_protect_configure(f->p, "alpha", &ok, NULL), 0); /* overwrite */
    char **keys;
    size_t n;
    assert_int_equal(fdn_protect_list(f->p, &keys, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "alpha");
    assert_string_equal(keys[1], "zeta");
    fdn_free(keys);
    fdn_protect_status_t st;
    assert_int_equal(fdn_protect_status(f->p, "alpha", &st), 0);
    assert_true(st.has_breaker);
    assert_string_equal(st.breaker_name, "api");
    assert_int_equal(st.breaker.state, FDN_BREAKER_CLOSED);
    assert_true(st.has_limiter);
    assert_string_equal(st.rule_name, "api_calls");
    assert_int_equal(st.rule.limit, 100);
    assert_true(st.has_pool);
    assert_true(st.pool_found);
    assert_int_equal(st.pool.size, 1);
    assert_int_equal(st.pool_timeout_ms, -1);
    assert_int_equal(fdn_protect_status(f->p, "nope", &st), FDN_ENOENT);
    assert_int_equal(fdn_protect_unconfigure(f->p, "alpha"), 0);
    assert_int_equal(fdn_protect_unconfigure(f->p, "alpha"), FDN_ENOENT);
    assert_int_equal(fdn_protect_has(f->p, "zeta"), 0);
    assert_int_equal(fdn_protect_set_default_timeout(f->p, 0), FDN_EINVAL);
    assert_int_equal(fdn_protect_set_default_timeout(f->p, 100), 0);

    /* a registry without components rejects layers it cannot apply */
    fdn_protect_t *bare;
    assert_int_equal(fdn_protect_create(&bare, NULL), 0);
    assert_int_equal(fdn_protect_configure(bare, "k", &ok, &e), FDN_EINVAL);
    call_t c = {NULL, 9, NULL, 0};
    assert_int_equal(fdn_execute_protected(bare, "k", NULL, fn, &c, NULL, NULL), 9);
    fdn_protect_destroy(bare);
    fdn_protect_destroy(NULL);
}

/* Review finding: a call option naming a limiter rule or a pool was silently ignored when
 * the registry had no limiter / no pool manager, while a breaker option gave
 * FDN_EBREAKER_NOT_FOUND. Each is an error now (FDN_ENOENT, as for a missing rule or pool),
 * fn is not run; a layer turned off with fdn_protect_set_layer_enabled still ignores them. */
static void call_options_need_their_layer(void **state)
{
    (void)state;
    fdn_protect_t *bare;
    assert_int_equal(fdn_protect_create(&bare, NULL), 0);
    call_t c = {NULL, 9, NULL, 0};
    fdn_protect_result_t r;
    fdn_error_t e = FDN_ERROR_INIT;
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.breaker = "b";
    assert_int_equal(fdn_execute_protected(bare, "k", &co, fn, &c, &r, &e), FDN_EBREAKER_NOT_FOUND);
    co.breaker = NULL;
    co.limiter_rule = "api_calls";
    assert_int_equal(fdn_execute_protected(bare, "k", &co, fn, &c, &r, &e), FDN_ENOENT);
    assert_false(r.ran);
    assert_non_null(strstr(e.message, "api_calls"));
    co.limiter_rule = NULL;
    co.pool = "db";
    assert_int_equal(fdn_execute_protected(bare, "k", &co, fn, &c, &r, &e), FDN_ENOENT);
    assert_false(r.ran);
    assert_non_null(strstr(e.message, "db"));
    assert_int_equal(c.runs, 0);
    /* a layer turned off ignores its call option, as the breaker layer does */
    fdn_protect_set_layer_enabled(bare, FDN_PROTECT_POOL, false);
    assert_int_equal(fdn_execute_protected(bare, "k", &co, fn, &c, &r, NULL), 9);
    co.pool = NULL;
    co.limiter_rule = "api_calls";
    fdn_protect_set_layer_enabled(bare, FDN_PROTECT_LIMITER, false);
    assert_int_equal(fdn_execute_protected(bare, "k", &co, fn, &c, &r, NULL), 9);
    assert_int_equal(c.runs, 2);
    fdn_protect_destroy(bare);
}

static int tm_handler(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                      const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    char *log = user;
    (void)m;
    (void)nm;
    (void)meta;
    (void)nmeta;
    size_t l = strlen(log);
    snprintf(log + l, 4096 - l, "%s;", event);
    return 0;
}

static void telemetry_events(void **state)
{
    (void)state;
    fdn_clock_t *clk;
    fdn_clock_manual_create(&clk, 1000 * MS, 1700000040000LL * MS);
    fdn_telemetry_opts_t to = FDN_TELEMETRY_OPTS_INIT;
    to.clock = clk;
    to.cleanup_interval_ns = 0;
    to.emit_vm_gauges = false;
    fdn_telemetry_t *tm;
    assert_int_equal(fdn_telemetry_create(&tm, &to), 0);
    static char log[4096];
    log[0] = '\0';
    assert_int_equal(
        fdn_telemetry_attach(tm, NULL, "foundation", FDN_TELEMETRY_MATCH_PREFIX, tm_handler, log),
        0);
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.clock = clk;
    bo.telemetry = tm;
    bo.failure_threshold = 1;
    fdn_breakers_t *brk;
    assert_int_equal(fdn_breakers_create(&brk, &bo), 0);
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.clock = clk;
    lo.telemetry = tm;
    fdn_limiter_t *lim;
    assert_int_equal(fdn_limiter_create(&lim, &lo), 0);
    fdn_protect_opts_t po = FDN_PROTECT_OPTS_INIT;
    po.breakers = brk;
    po.limiter = lim;
    po.clock = clk;
    po.telemetry = tm;
    fdn_protect_t *p;
    assert_int_equal(fdn_protect_create(&p, &po), 0);
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 1, 1000, 0};
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.breaker = "tmb";
    cfg.limit = &rule;
    assert_int_equal(fdn_protect_configure(p, "k", &cfg, NULL), 0);
    call_t c = {NULL, -1, NULL, 0};
    assert_int_equal(fdn_execute_protected(p, "k", NULL, fn, &c, NULL, NULL), -1);
    assert_string_equal(log, "foundation.infrastructure.execute_start;"
                             "foundation.rate_limiter.request_allowed;"
                             "foundation.circuit_breaker.state_change;"
                             "foundation.infrastructure.execute_stop;");
    log[0] = '\0';
    assert_int_equal(fdn_execute_protected(p, "k", NULL, fn, &c, NULL, NULL), FDN_ERATE_LIMITED);
    assert_string_equal(log, "foundation.infrastructure.execute_start;"
                             "foundation.rate_limiter.request_denied;"
                             "foundation.infrastructure.protection_triggered;"
                             "foundation.infrastructure.execute_stop;");
    fdn_clock_advance(clk, 1000 * MS);
    log[0] = '\0';
    assert_int_equal(fdn_execute_protected(p, "k", NULL, fn, &c, NULL, NULL), FDN_ECIRCUIT_OPEN);
    assert_string_equal(log, "foundation.infrastructure.execute_start;"
                             "foundation.rate_limiter.request_allowed;"
                             "foundation.circuit_breaker.call_rejected;"
                             "foundation.infrastructure.protection_triggered;"
                             "foundation.infrastructure.execute_stop;");
    fdn_protect_destroy(p);
    fdn_limiter_destroy(lim);
    fdn_breakers_destroy(brk);
    fdn_telemetry_destroy(tm);
    fdn_clock_destroy(clk);
}

/* An inline rule of protection key "k" must not share limiter cells with the named rule
 * "k" (both used to map to "k:<id>"). */
static void inline_and_named_keys_do_not_collide(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t named = {FDN_LIMIT_FIXED_WINDOW, 2, 60000, 0};
    fdn_limit_rule_t inl = {FDN_LIMIT_FIXED_WINDOW, 100, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(f->lim, "k", &named), 0);
    fdn_protect_config_t c1 = FDN_PROTECT_CONFIG_INIT;
    c1.limit = &inl;
    assert_int_equal(fdn_protect_configure(f->p, "k", &c1, NULL), 0);
    fdn_protect_config_t c2 = FDN_PROTECT_CONFIG_INIT;
    c2.limiter_rule = "k";
    assert_int_equal(fdn_protect_configure(f->p, "other", &c2, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "u";
    call_t c = {f, 0, NULL, 0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), 0);
    /* the named rule "k" for "u" is untouched: 2 calls pass, the third is limited */
    assert_int_equal(fdn_execute_protected(f->p, "other", &co, fn, &c, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "other", &co, fn, &c, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "other", &co, fn, &c, NULL, NULL),
                     FDN_ERATE_LIMITED);
    /* and the inline rule's count did not move with them */
    for (int i = 0; i < 97; i++)
        assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), FDN_ERATE_LIMITED);
    /* a key/identifier split at a different ':' is a different cell too */
    assert_int_equal(fdn_protect_configure(f->p, "k:u", &c1, NULL), 0);
    fdn_protect_call_opts_t co2 = FDN_PROTECT_CALL_OPTS_INIT;
    co2.identifier = "";
    assert_int_equal(fdn_execute_protected(f->p, "k:u", &co2, fn, &c, NULL, NULL), 0);
}

/* A call option naming a breaker is resolved once per configured key and cached: later
 * calls do not search the set (which takes its mutex). The cache follows the name. */
static void call_option_breaker_is_cached(void **state)
{
    fx_t *f = *state;
    fdn_breaker_t *b1 = NULL, *b2 = NULL;
    assert_int_equal(fdn_breaker_create_in(f->brk, "b1", NULL, &b1), 0);
    assert_int_equal(fdn_breaker_create_in(f->brk, "b2", NULL, &b2), 0);
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    assert_int_equal(fdn_protect_configure(f->p, "k", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.breaker = "b1";
    call_t c = {f, 0, NULL, 0};
    uint64_t l0 = fdn__breakers_lookups(f->brk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), 0);
    assert_true(fdn__breakers_lookups(f->brk) - l0 <= 1);
    /* the cached breaker really is b1: opening b1 rejects, b2 does not */
    fdn_breaker_force_open(b1);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), FDN_ECIRCUIT_OPEN);
    co.breaker = "b2";
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), 0);
    co.breaker = "missing";
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL),
                     FDN_EBREAKER_NOT_FOUND);
    co.breaker = "b1";
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), FDN_ECIRCUIT_OPEN);
    /* a removed breaker is missing for a call option, cached or not (the cache kept using it) */
    assert_int_equal(fdn_breaker_remove(f->brk, "b1"), 0);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL),
                     FDN_EBREAKER_NOT_FOUND);
    assert_int_equal(fdn_execute_protected(f->p, "unconfigured", &co, fn, &c, NULL, NULL),
                     FDN_EBREAKER_NOT_FOUND);
    /* made again (afresh, closed): found again */
    assert_int_equal(fdn_breaker_create_in(f->brk, "b1", NULL, NULL), 0);
    assert_int_equal(fdn_execute_protected(f->p, "k", &co, fn, &c, NULL, NULL), 0);
    /* the configured breaker of a key is used directly when the option names it */
    fdn_protect_config_t cfg2 = FDN_PROTECT_CONFIG_INIT;
    cfg2.breaker = "b2";
    assert_int_equal(fdn_protect_configure(f->p, "k2", &cfg2, NULL), 0);
    co.breaker = "b2";
    l0 = fdn__breakers_lookups(f->brk);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fdn_execute_protected(f->p, "k2", &co, fn, &c, NULL, NULL), 0);
    assert_int_equal(fdn__breakers_lookups(f->brk), l0);
}

/* A limiter full of live keys refuses a new one: the protected call is rejected by the
 * limiter layer with FDN_ELIMITER, fn does not run, and the breaker records nothing. */
static void full_limiter_rejects_new_key(void **state)
{
    fx_t *f = *state;
    fdn_limiter_t *lim = NULL;
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    lo.clock = f->clk;
    lo.shards = 1;
    lo.max_keys = 1;
    assert_int_equal(fdn_limiter_create(&lim, &lo), 0);
    fdn_protect_t *p = NULL;
    fdn_protect_opts_t o = FDN_PROTECT_OPTS_INIT;
    o.limiter = lim;
    o.breakers = f->brk;
    o.clock = f->clk;
    assert_int_equal(fdn_protect_create(&p, &o), 0);
    fdn_limit_rule_t inl = {FDN_LIMIT_FIXED_WINDOW, 10, 60000, 0};
    fdn_protect_config_t cfg = FDN_PROTECT_CONFIG_INIT;
    cfg.limit = &inl;
    cfg.breaker = "lb";
    assert_int_equal(fdn_protect_configure(p, "k", &cfg, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    call_t c = {f, 0, NULL, 0};
    fdn_protect_result_t res;
    co.identifier = "a";
    assert_int_equal(fdn_execute_protected(p, "k", &co, fn, &c, &res, NULL), 0);
    co.identifier = "b";
    fdn_error_t err;
    assert_int_equal(fdn_execute_protected(p, "k", &co, fn, &c, &res, &err), FDN_ELIMITER);
    assert_false(res.ran);
    assert_int_equal(res.rejected_by, FDN_PROTECT_LIMITER);
    assert_true(res.retry_after_ns > 0 && res.retry_after_ns <= 60000 * MS);
    assert_int_equal(c.runs, 1);
    fdn_breaker_t *b = NULL;
    assert_int_equal(fdn_breaker_get(f->brk, "lb", &b), 0);
    fdn_breaker_status_t bs;
    fdn_breaker_status(b, &bs);
    assert_int_equal(bs.total_failures, 0);
    fdn_protect_destroy(p);
    fdn_limiter_destroy(lim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(breaker_only, setup, teardown),
        cmocka_unit_test_setup_teardown(entry_replaced_before_the_call_takes_it, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_limited_hard_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(inline_rule_and_cost, setup, teardown),
        cmocka_unit_test_setup_teardown(all_layers_order, setup, teardown),
        cmocka_unit_test_setup_teardown(inline_and_named_keys_do_not_collide, setup, teardown),
        cmocka_unit_test_setup_teardown(call_option_breaker_is_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_named_rule_follows_every_change, setup, teardown),
        cmocka_unit_test(call_options_need_their_layer),
        cmocka_unit_test_setup_teardown(limiter_time_is_its_own_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_pool_follows_stop_and_restart, setup, teardown),
        cmocka_unit_test(cached_stopped_pool_is_freed),
        cmocka_unit_test_setup_teardown(full_limiter_rejects_new_key, setup, teardown),
        cmocka_unit_test_setup_teardown(configure_validation_and_list, setup, teardown),
        cmocka_unit_test(telemetry_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
