/* Stress: 4 threads registering, looking up, acquiring and unregistering at once, with
 * invariant checks during the run and at the end. Runs under TSan in CI.
 * Iterations per thread: test_stress_iters(3000) (tests/support/stress.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/registry.h>

#include "stress.h"
#include "threads.h"

#define THREADS 4
#define OWN     8  /* private names per thread */
#define SHARED  16 /* names every thread competes for */

typedef struct worker {
    fdn_registry_t *reg;
    test_threads_t *threads;
    int id;
    long iters;
    uint64_t owner;
    int handle; /* its address is this thread's handle */
    long shared_wins;
    char failure[160];
} worker_t;

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond) && (w)->failure[0] == '\0') {                                                  \
            snprintf((w)->failure, sizeof((w)->failure), __VA_ARGS__);                             \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static void *worker_main(void *p)
{
    worker_t *w = p;
    char idbuf[8];
    snprintf(idbuf, sizeof(idbuf), "%d", w->id);
    fdn_registry_meta_t meta[1] = {{"thread", idbuf}};
    bool mine[SHARED] = {0};
    unsigned seed = (unsigned)w->id * 2654435761u + 1;
    test_threads_gate(w->threads);
    for (long i = 0; i < w->iters; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        char name[32];
        if (r % 2 == 0) {
            /* private name: exact expectations */
            int k = (int)(r / 2 % OWN);
            snprintf(name, sizeof(name), "t%d_%d", w->id, k);
            int rc = fdn_registry_register(w->reg, name, &w->handle, w->owner, meta, 1, NULL);
            CHECK(w, rc == 0, "register %s: %d", name, rc);
            void *out = NULL;
            rc = fdn_registry_lookup(w->reg, name, &out, NULL);
            CHECK(w, rc == 0 && out == &w->handle, "lookup %s: %d", name, rc);
            rc = fdn_registry_unregister(w->reg, name);
            CHECK(w, rc == 0, "unregister %s: %d", name, rc);
            rc = fdn_registry_lookup(w->reg, name, NULL, NULL);
            CHECK(w, rc == FDN_ESERVICE_NOT_FOUND, "lookup after unregister %s: %d", name, rc);
        } else if (r % 7 == 1) {
            /* give back every shared name this thread holds */
            int n = 0;
            for (int k = 0; k < SHARED; k++)
                n += mine[k];
            int rc = fdn_registry_release_owner(w->reg, w->owner);
            CHECK(w, rc == n, "release_owner removed %d, held %d", rc, n);
            memset(mine, 0, sizeof(mine));
        } else {
            /* shared name: whoever registers first owns it until it releases */
            int k = (int)(r / 2 % SHARED);
            snprintf(name, sizeof(name), "shared_%d", k);
            int rc = fdn_registry_register(w->reg, name, &w->handle, w->owner, meta, 1, NULL);
            CHECK(w, rc == 0 || rc == FDN_EEXIST, "register %s: %d", name, rc);
            if (rc == 0 && !mine[k]) {
                mine[k] = true;
                w->shared_wins++;
            }
            CHECK(w, !(rc == FDN_EEXIST && mine[k]), "lost own registration %s", name);
            fdn_registry_entry_t *e = NULL;
            rc = fdn_registry_acquire(w->reg, name, &e, NULL);
            if (mine[k]) {
                CHECK(w, rc == 0, "acquire own %s: %d", name, rc);
            }
            if (rc == 0) {
                /* a snapshot is internally consistent: handle, owner and metadata agree */
                const char *t = fdn_registry_entry_meta(e, "thread");
                CHECK(w, t != NULL, "snapshot without metadata");
                bool is_me = fdn_registry_entry_handle(e) == &w->handle;
                CHECK(w, is_me == (strcmp(t, idbuf) == 0), "snapshot mixes entries");
                CHECK(w, is_me == (fdn_registry_entry_owner(e) == w->owner), "owner mismatch");
                CHECK(w, is_me == mine[k], "ownership belief wrong for %s", name);
                fdn_registry_entry_release(e);
            }
        }
        if (i % 64 == 0) {
            size_t c = fdn_registry_count(w->reg);
            CHECK(w, c <= (size_t)(THREADS * OWN + SHARED), "count %zu too large", c);
            char **names = NULL;
            size_t n = 0;
            CHECK(w, fdn_registry_list(w->reg, &names, &n) == 0, "list failed");
            for (size_t j = 1; j < n; j++)
                CHECK(w, strcmp(names[j - 1], names[j]) < 0, "list not sorted/unique");
            fdn_free(names);
        }
    }
    fdn_registry_release_owner(w->reg, w->owner);
    return NULL;
}

static void concurrent_register_lookup_unregister(void **state)
{
    (void)state;
    long iters = test_stress_iters(3000, 0);
    fdn_registry_opts_t o = FDN_REGISTRY_OPTS_INIT;
    o.name = "stress";
    fdn_registry_t *reg = NULL;
    assert_int_equal(fdn_registry_create(&reg, &o), 0);
    test_threads_t threads;
    test_threads_init(&threads, THREADS);
    worker_t w[THREADS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++) {
        w[i].reg = reg;
        w[i].threads = &threads;
        w[i].id = i;
        w[i].iters = iters;
        w[i].owner = fdn_registry_owner_new();
    }
    test_threads_start_n(&threads, THREADS, worker_main, w, sizeof(w[0]));
    test_threads_join(&threads);
    long wins = 0;
    for (int i = 0; i < THREADS; i++) {
        if (w[i].failure[0] != '\0')
            fail_msg("thread %d: %s", i, w[i].failure);
        wins += w[i].shared_wins;
    }
    assert_true(wins > 0);
    assert_int_equal(fdn_registry_count(reg), 0);
    char **names = NULL;
    size_t n = 1;
    assert_int_equal(fdn_registry_list(reg, &names, &n), 0);
    assert_int_equal(n, 0);
    fdn_registry_destroy(reg);
}

#define WAITERS 3

typedef struct waiter {
    fdn_registry_t *reg;
    int id;
    long iters;
    int handle;
    char failure[160];
} waiter_t;

/* Waiter id waits (no limit) for "w<id>_<i>", i = 0, 1, ..., each registered by the registrar
 * thread once the previous one is gone; it checks the handle and unregisters the name, which
 * lets the registrar go on. A lost wake-up is a hang (ctest's TIMEOUT). */
static void *waiter_main(void *p)
{
    waiter_t *w = p;
    for (long i = 0; i < w->iters; i++) {
        char name[48];
        snprintf(name, sizeof(name), "w%d_%ld", w->id, i);
        void *out = NULL;
        int rc = fdn_registry_wait(w->reg, name, -1, &out, NULL);
        /* unregistered whatever happened, so the registrar goes on; the first failure kept */
        int urc = fdn_registry_unregister(w->reg, name);
        if ((rc != 0 || out != &w->handle || urc != 0) && w->failure[0] == '\0')
            snprintf(w->failure, sizeof(w->failure), "wait %s: %d (handle %s), unregister: %d",
                     name, rc, out == &w->handle ? "right" : "wrong", urc);
    }
    return NULL;
}

typedef struct registrar {
    fdn_registry_t *reg;
    waiter_t *w;
    long iters;
    char failure[160];
} registrar_t;

static void *registrar_main(void *p)
{
    registrar_t *r = p;
    for (long i = 0; i < r->iters; i++) {
        for (int k = 0; k < WAITERS; k++) {
            char name[48];
            snprintf(name, sizeof(name), "w%d_%ld", k, i);
            int rc = fdn_registry_register(r->reg, name, &r->w[k].handle, 0, NULL, 0, NULL);
            CHECK(r, rc == 0, "register %s: %d", name, rc);
        }
        /* the next round once each waiter took its name and unregistered it (a waiter
         * that never wakes is a hang, caught by ctest's TIMEOUT) */
        for (int k = 0; k < WAITERS; k++) {
            char name[48];
            snprintf(name, sizeof(name), "w%d_%ld", k, i);
            while (fdn_registry_lookup(r->reg, name, NULL, NULL) == 0)
                sched_yield();
        }
    }
    return NULL;
}

/* fdn_registry_wait against registrations made meanwhile: every waiter is woken for its name,
 * whether it went to sleep before the registration or found it at once. */
static void waiters_see_every_registration(void **state)
{
    (void)state;
    long iters = test_stress_iters(1000, 0);
    fdn_registry_t *reg = NULL;
    assert_int_equal(fdn_registry_create(&reg, NULL), 0);
    waiter_t w[WAITERS];
    memset(w, 0, sizeof(w));
    registrar_t r = {.reg = reg, .w = w, .iters = iters};
    test_threads_t threads;
    test_threads_init(&threads, 0);
    for (int k = 0; k < WAITERS; k++) {
        w[k].reg = reg;
        w[k].id = k;
        w[k].iters = iters;
        test_threads_start(&threads, waiter_main, &w[k]);
    }
    test_threads_start(&threads, registrar_main, &r);
    test_threads_join(&threads);
    for (int k = 0; k < WAITERS; k++)
        if (w[k].failure[0] != '\0')
            fail_msg("waiter %d: %s", k, w[k].failure);
    if (r.failure[0] != '\0')
        fail_msg("registrar: %s", r.failure);
    assert_int_equal(fdn_registry_count(reg), 0);
    fdn_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_register_lookup_unregister),
        cmocka_unit_test(waiters_see_every_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
