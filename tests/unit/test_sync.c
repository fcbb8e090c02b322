/* Unit tests: the monotonic timed-wait helpers (src/core/sync.c). No test sleeps: a timeout
 * is only asserted for deadlines already in the past, and a wake-up by a signal that was
 * sent before the wait could time out (the deadline is far away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <fdn/error.h>

#include "core/sync.h"

static void deadlines_saturate_and_order(void **state)
{
    (void)state;
    assert_int_equal(fdn__deadline_after_ms(-1), INT64_MAX);
    assert_int_equal(fdn__deadline_after_ms(INT64_MAX), INT64_MAX);
    assert_int_equal(fdn__deadline_after_ms(INT64_MAX / 1000), INT64_MAX);
    int64_t a = fdn__mono_now_ns();
    int64_t d0 = fdn__deadline_after_ms(0);
    int64_t d1 = fdn__deadline_after_ms(1000);
    int64_t b = fdn__mono_now_ns();
    assert_true(a <= d0 && d0 <= b);
    assert_true(d1 >= a + 1000000000LL && d1 <= b + 1000000000LL);
}

static void past_deadline_times_out_at_once(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    assert_int_equal(fdn__cond_init_mono(&cv), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, fdn__deadline_after_ms(0)), FDN_ETIMEDOUT);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, 0), FDN_ETIMEDOUT);
    assert_int_equal(fdn__cond_wait_until(&cv, &mu, -5), FDN_ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}

typedef struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool flag;
    int64_t deadline;
    int woken_rc;
} shared_t;

static void *waiter(void *arg)
{
    shared_t *s = arg;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (!s->flag && rc == 0)
        rc = fdn__cond_wait_until(&s->cv, &s->mu, s->deadline);
    s->woken_rc = s->flag ? 0 : rc;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The waiter sees the flag whichever thread runs first: set under the mutex and signalled,
 * it is either seen before waiting or wakes the wait. Checked with a far deadline and with
 * no deadline at all. */
static void signal_wakes_before_the_deadline(void **state)
{
    (void)state;
    int64_t deadlines[] = {fdn__deadline_after_ms(3600 * 1000), INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        shared_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .deadline = deadlines[i], .woken_rc = -1};
        assert_int_equal(fdn__cond_init_mono(&s.cv), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, waiter, &s), 0);
        pthread_mutex_lock(&s.mu);
        s.flag = true;
        pthread_cond_signal(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(t, NULL);
        assert_int_equal(s.woken_rc, 0);
        pthread_cond_destroy(&s.cv);
    }
}

/* The gate: a change returns only once every pass that may have read the old setting has left,
 * never waits for passes that entered after it, and is refused from inside a pass of the same
 * gate on the changing thread (FDN_EBUSY); passes of other gates do not matter. */
static void gate_refuses_a_change_from_its_own_pass(void **state)
{
    (void)state;
    fdn__gate_t g, other;
    fdn__gate_init(&g);
    fdn__gate_init(&other);
    fdn__gate_pass_t p, q;
    fdn__gate_enter(&other, &q);
    assert_int_equal(fdn__gate_change_begin(&g), 0); /* no pass of g here */
    fdn__gate_change_end(&g);
    fdn__gate_enter(&g, &p);
    assert_int_equal(fdn__gate_change_begin(&g), FDN_EBUSY);
    fdn__gate_leave(&q); /* left out of order: the thread's list follows */
    assert_int_equal(fdn__gate_change_begin(&g), FDN_EBUSY);
    fdn__gate_leave(&p);
    assert_int_equal(fdn__gate_change_begin(&g), 0);
    fdn__gate_change_end(&g);
    assert_int_equal(fdn__gate_change_begin(&other), 0);
    fdn__gate_change_end(&other);
}

/* Readers read the setting (one of two objects) in passes and check that it is alive; the
 * changer swaps the setting and, once the change returns, marks the old object dead for a
 * moment (what freeing it would do). No reader may ever see a dead object. */
#define GATE_READERS 2
#define GATE_CHANGES 2000

typedef struct gate_obj {
    _Atomic int alive;
} gate_obj_t;

typedef struct gate_fx {
    fdn__gate_t g;
    _Atomic(gate_obj_t *) cur;
    _Atomic bool stop;
    _Atomic long dead_seen, passes;
} gate_fx_t;

static void *gate_reader(void *arg)
{
    gate_fx_t *x = arg;
    while (!atomic_load(&x->stop)) {
        fdn__gate_pass_t p;
        fdn__gate_enter(&x->g, &p);
        gate_obj_t *o = atomic_load_explicit(&x->cur, memory_order_acquire);
        for (int i = 0; i < 4; i++)
            if (atomic_load_explicit(&o->alive, memory_order_relaxed) == 0)
                atomic_fetch_add(&x->dead_seen, 1);
        fdn__gate_leave(&p);
        atomic_fetch_add_explicit(&x->passes, 1, memory_order_relaxed);
    }
    return NULL;
}

static void gate_change_waits_for_old_readers(void **state)
{
    (void)state;
    static gate_fx_t x;
    static gate_obj_t obj[2];
    fdn__gate_init(&x.g);
    atomic_init(&obj[0].alive, 1);
    atomic_init(&obj[1].alive, 1);
    atomic_init(&x.cur, &obj[0]);
    atomic_init(&x.stop, false);
    atomic_init(&x.dead_seen, 0);
    atomic_init(&x.passes, 0);
    pthread_t t[GATE_READERS];
    for (int i = 0; i < GATE_READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, gate_reader, &x), 0);
    for (int c = 0; c < GATE_CHANGES; c++) {
        gate_obj_t *old = &obj[c & 1], *nw = &obj[(c + 1) & 1];
        assert_int_equal(fdn__gate_change_begin(&x.g), 0);
        atomic_store_explicit(&x.cur, nw, memory_order_release);
        fdn__gate_change_end(&x.g);
        atomic_store_explicit(&old->alive, 0, memory_order_relaxed); /* "freed" */
        atomic_store_explicit(&old->alive, 1, memory_order_relaxed); /* made again */
    }
    atomic_store(&x.stop, true);
    for (int i = 0; i < GATE_READERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&x.dead_seen), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadlines_saturate_and_order),
        cmocka_unit_test(past_deadline_times_out_at_once),
        cmocka_unit_test(signal_wakes_before_the_deadline),
        cmocka_unit_test(gate_refuses_a_change_from_its_own_pass),
        cmocka_unit_test(gate_change_waits_for_old_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
