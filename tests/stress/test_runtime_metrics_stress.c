/* Stress test: the runtime's collector (src/runtime/runtime_metrics.c) run by several
 * scrapes at once while the counts it mirrors grow. A counter it mirrors
 * (fdn_pool_checkouts_total, set from the pool's own count) never goes backwards: one
 * run's older figure never lands after another run's newer one (Prometheus would read a
 * decrease as a counter reset). No sleeps: fixed rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/pool.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>

#include "rt_fixture.h"
#include "stress.h"

#define SCRAPERS 2

static int conn_create(void **conn, void *user)
{
    (void)user;
    static int token;
    *conn = &token;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)conn;
    (void)user;
}

typedef struct shared {
    fdn_runtime_t *rt;
    fdn_pool_t *pool;
    fdn_counter_t *mirrored; /* fdn_pool_checkouts_total{pool="p1"} */
    long rounds;             /* snapshots per scraper */
    _Atomic int running;     /* scrapers still running */
    _Atomic long backwards;
    _Atomic long failures;
} shared_t;

/* Checkouts: the count the collector mirrors grows. */
static void *worker(void *arg)
{
    shared_t *s = arg;
    while (atomic_load(&s->running) > 0) {
        fdn_pool_worker_t *w = NULL;
        if (fdn_pool_checkout(s->pool, &w, 1000, NULL) != 0) {
            atomic_fetch_add(&s->failures, 1);
            continue;
        }
        (void)fdn_pool_checkin(s->pool, w);
    }
    return NULL;
}

/* Snapshots: each runs the collectors. */
static void *scraper(void *arg)
{
    shared_t *s = arg;
    fdn_telemetry_t *tm = fdn_runtime_telemetry(s->rt);
    for (long i = 0; i < s->rounds; i++) {
        fdn_telemetry_snapshot_t *sn = NULL;
        if (fdn_telemetry_snapshot(tm, &sn) != 0)
            atomic_fetch_add(&s->failures, 1);
        fdn_telemetry_snapshot_free(sn);
    }
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

/* The mirrored counter, read again and again: never smaller than before. */
static void *monitor(void *arg)
{
    shared_t *s = arg;
    uint64_t last = 0;
    while (atomic_load(&s->running) > 0) {
        uint64_t v = fdn_counter_value(s->mirrored);
        if (v < last)
            atomic_fetch_add(&s->backwards, 1);
        last = v > last ? v : last;
    }
    return NULL;
}

static void mirrored_counter_never_backwards(void **state)
{
    test_rt_t *f = *state;
    static shared_t s;
    memset(&s, 0, sizeof s);
    s.rt = f->rt;
    s.rounds = test_stress_iters(2000, 0);
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
    po.size = 2;
    po.max_overflow = 0;
    po.create = conn_create;
    po.destroy = conn_destroy;
    assert_int_equal(fdn_pools_start(fdn_runtime_pools(f->rt), "p1", &po, NULL, &err), 0);
    assert_int_equal(fdn_pools_get(fdn_runtime_pools(f->rt), "p1", &s.pool), 0);
    /* the collector's family (registering it again returns it) and the pool's series */
    fdn_telemetry_t *tm = fdn_runtime_telemetry(f->rt);
    fdn_telemetry_family_t *fam = NULL;
    const char *ln[] = {"pool"};
    assert_int_equal(fdn_telemetry_family(tm, &fam, "fdn_pool_checkouts_total", "x",
                                          FDN_TELEMETRY_COUNTER, ln, 1, 256),
                     0);
    const char *lv[] = {"p1"};
    assert_int_equal(fdn_telemetry_family_counter(fam, &s.mirrored, lv, 1), 0);

    atomic_store(&s.running, SCRAPERS);
    pthread_t t[SCRAPERS + 2];
    assert_int_equal(pthread_create(&t[0], NULL, worker, &s), 0);
    assert_int_equal(pthread_create(&t[1], NULL, monitor, &s), 0);
    for (int i = 0; i < SCRAPERS; i++)
        assert_int_equal(pthread_create(&t[2 + i], NULL, scraper, &s), 0);
    for (int i = 0; i < SCRAPERS + 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    fdn_pool_release(s.pool);
    assert_int_equal(atomic_load(&s.failures), 0);
    assert_int_equal(atomic_load(&s.backwards), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mirrored_counter_never_backwards, test_rt_setup,
                                        test_rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
