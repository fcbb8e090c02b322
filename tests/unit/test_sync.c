/* Unit tests: the monotonic timed-wait helpers (src/core/sync.c). No test sleeps: a timeout
 * is only asserted for deadlines already in the past, and a wake-up by a signal that was
 * sent before the wait could time out (the deadline is far away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* The futex word with a deadline: a deadline already passed times out at once (whatever the
 * word holds); a word that no longer holds `seen` returns at once; a waiter whose word is
 * changed and woken returns before a far deadline (or none), whichever thread runs first. */
typedef struct word_shared {
    _Atomic uint32_t word;
    int64_t deadline;
    int rc;
} word_shared_t;

static void *word_waiter(void *arg)
{
    word_shared_t *w = arg;
    int rc = 0;
    while (atomic_load(&w->word) == 0 && rc == 0)
        rc = fdn__word_wait_until(&w->word, 0, w->deadline);
    w->rc = atomic_load(&w->word) != 0 ? 0 : rc;
    return NULL;
}

static void word_wait_until_times_out_or_wakes(void **state)
{
    (void)state;
    _Atomic uint32_t word = 0;
    assert_int_equal(fdn__word_wait_until(&word, 0, fdn__mono_now_ns()), FDN_ETIMEDOUT);
    assert_int_equal(fdn__word_wait_until(&word, 0, 0), FDN_ETIMEDOUT);
    assert_int_equal(fdn__word_wait_until(&word, 0, -5), FDN_ETIMEDOUT);
    atomic_store(&word, 1); /* not what the caller saw: returns at once, not a timeout */
    assert_int_equal(fdn__word_wait_until(&word, 0, fdn__deadline_after_ms(3600 * 1000)), 0);
    assert_int_equal(fdn__word_wait_until(&word, 0, INT64_MAX), 0);
    int64_t deadlines[] = {fdn__deadline_after_ms(3600 * 1000), INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        word_shared_t w = {.deadline = deadlines[i], .rc = -1};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, word_waiter, &w), 0);
        atomic_store(&w.word, 1);
        fdn__word_wake_all(&w.word);
        pthread_join(t, NULL);
        assert_int_equal(w.rc, 0);
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

/* Two changers and three readers on one gate, each change a fresh heap object that the
 * changer frees as soon as its change returns (what the event store's caller does with a
 * telemetry it turned off). Readers read the object's plain (non-atomic) fields inside a pass,
 * sometimes two nested passes left out of order, so a pass that could outlive its change is a
 * use-after-free (ASan) or an unordered read of the changer's writes (TSan), and the field
 * check catches a torn or stale object in a plain build. Changers also enter a pass of a
 * second gate around their change (allowed: another gate), and each checks that a change
 * from inside its own pass of the gate is refused. Bounded: GATE_HEAP_CHANGES per changer. */
#define GATE_HEAP_READERS  3
#define GATE_HEAP_CHANGERS 2
#define GATE_HEAP_CHANGES  3000
#define GATE_MAGIC         0x5eed5eedu

typedef struct gate_heap_obj {
    unsigned magic;
    unsigned long serial;
} gate_heap_obj_t;

typedef struct gate_heap_fx {
    fdn__gate_t g, other;
    _Atomic(gate_heap_obj_t *) cur;
    _Atomic unsigned long serial;
    _Atomic bool stop;
    _Atomic long bad, passes, refused;
} gate_heap_fx_t;

static gate_heap_obj_t *gate_heap_obj(gate_heap_fx_t *x)
{
    gate_heap_obj_t *o = malloc(sizeof(*o));
    assert_non_null(o);
    o->magic = GATE_MAGIC;
    o->serial = atomic_fetch_add(&x->serial, 1) + 1;
    return o;
}

static void gate_heap_check(gate_heap_fx_t *x, const gate_heap_obj_t *o)
{
    if (o == NULL || o->magic != GATE_MAGIC || o->serial == 0)
        atomic_fetch_add(&x->bad, 1);
}

static void *gate_heap_reader(void *arg)
{
    gate_heap_fx_t *x = arg;
    for (unsigned long i = 0; !atomic_load(&x->stop); i++) {
        fdn__gate_pass_t p, q;
        fdn__gate_enter(&x->g, &p);
        gate_heap_obj_t *o = atomic_load_explicit(&x->cur, memory_order_acquire);
        gate_heap_check(x, o);
        if (i & 1) { /* a nested pass, the outer one left first */
            fdn__gate_enter(&x->g, &q);
            gate_heap_obj_t *o2 = atomic_load_explicit(&x->cur, memory_order_acquire);
            fdn__gate_leave(&p);
            gate_heap_check(x, o2);
            gate_heap_check(x, o2 == o ? o : o2);
            fdn__gate_leave(&q);
        } else {
            gate_heap_check(x, o);
            fdn__gate_leave(&p);
        }
        atomic_fetch_add_explicit(&x->passes, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *gate_heap_changer(void *arg)
{
    gate_heap_fx_t *x = arg;
    for (int c = 0; c < GATE_HEAP_CHANGES; c++) {
        gate_heap_obj_t *nw = gate_heap_obj(x);
        fdn__gate_pass_t op;
        fdn__gate_enter(&x->other, &op);
        if (fdn__gate_change_begin(&x->g) != 0) {
            atomic_fetch_add(&x->bad, 1);
            fdn__gate_leave(&op);
            free(nw);
            continue;
        }
        gate_heap_obj_t *old = atomic_exchange_explicit(&x->cur, nw, memory_order_acq_rel);
        fdn__gate_change_end(&x->g);
        fdn__gate_leave(&op);
        free(old);
        if ((c & 63) == 0) {
            fdn__gate_pass_t p;
            fdn__gate_enter(&x->g, &p);
            if (fdn__gate_change_begin(&x->g) == FDN_EBUSY)
                atomic_fetch_add(&x->refused, 1);
            fdn__gate_leave(&p);
        }
    }
    return NULL;
}

static void gate_change_frees_while_readers_run(void **state)
{
    (void)state;
    static gate_heap_fx_t x;
    fdn__gate_init(&x.g);
    fdn__gate_init(&x.other);
    atomic_init(&x.serial, 0);
    atomic_init(&x.stop, false);
    atomic_init(&x.bad, 0);
    atomic_init(&x.passes, 0);
    atomic_init(&x.refused, 0);
    atomic_init(&x.cur, gate_heap_obj(&x));
    pthread_t r[GATE_HEAP_READERS], c[GATE_HEAP_CHANGERS];
    for (int i = 0; i < GATE_HEAP_READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, gate_heap_reader, &x), 0);
    for (int i = 0; i < GATE_HEAP_CHANGERS; i++)
        assert_int_equal(pthread_create(&c[i], NULL, gate_heap_changer, &x), 0);
    for (int i = 0; i < GATE_HEAP_CHANGERS; i++)
        assert_int_equal(pthread_join(c[i], NULL), 0);
    atomic_store(&x.stop, true);
    for (int i = 0; i < GATE_HEAP_READERS; i++)
        assert_int_equal(pthread_join(r[i], NULL), 0);
    assert_int_equal(atomic_load(&x.bad), 0);
    assert_int_equal(atomic_load(&x.refused), GATE_HEAP_CHANGERS * ((GATE_HEAP_CHANGES + 63) / 64));
    assert_int_equal(atomic_load(&x.serial), 1 + GATE_HEAP_CHANGERS * GATE_HEAP_CHANGES);
    assert_int_equal(atomic_load(&x.g.users[0]) + atomic_load(&x.g.users[1]), 0);
    assert_int_equal(atomic_load(&x.g.gen), GATE_HEAP_CHANGERS * GATE_HEAP_CHANGES);
    free(atomic_load(&x.cur));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadlines_saturate_and_order),
        cmocka_unit_test(past_deadline_times_out_at_once),
        cmocka_unit_test(signal_wakes_before_the_deadline),
        cmocka_unit_test(word_wait_until_times_out_or_wakes),
        cmocka_unit_test(gate_refuses_a_change_from_its_own_pass),
        cmocka_unit_test(gate_change_waits_for_old_readers),
        cmocka_unit_test(gate_change_frees_while_readers_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
