/* Thread helpers for the concurrent tests: a group of threads started together behind a
 * start gate and joined together, and a waiter (a counter other threads wait on) that
 * serves as latch, gate and progress signal.
 *
 * Every wait here is a condition or barrier wait without a wall-clock deadline: a loaded
 * machine may delay any thread arbitrarily, and a real hang is caught by the test's ctest
 * TIMEOUT. */
#ifndef FDN_TEST_THREADS_H
#define FDN_TEST_THREADS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TEST_THREADS_MAX 64

/* Real-time bound for the library calls that take one (fdn_supervisor_wait_idle, shutdowns,
 * submit_wait) when the test means "wait until it happens": a safety net that only catches a
 * hang, so it matches fdn_testing_settle's 100 s and stays under ctest's TIMEOUT. */
#define TEST_WAIT_MS 100000

typedef struct test_threads {
    pthread_t th[TEST_THREADS_MAX];
    void *ret[TEST_THREADS_MAX]; /* each thread's return value, after test_threads_join */
    int n;                       /* threads started */
    int parties;                 /* callers of test_threads_gate per round; 0 = no gate */
    pthread_barrier_t gate;
} test_threads_t;

/* An empty group. parties > 0: that many threads (started ones, and the test's own thread if
 * it takes part) meet at each test_threads_gate round; the gate may be used for any number
 * of rounds. Test thread only (fails the test on error). */
void test_threads_init(test_threads_t *g, int parties);

/* Starts fn(arg) in a new thread of the group. Test thread only. */
void test_threads_start(test_threads_t *g, void *(*fn)(void *), void *arg);

/* Starts n threads of fn; thread i gets (char *)args + i * stride (stride 0: all get args). */
void test_threads_start_n(test_threads_t *g, int n, void *(*fn)(void *), void *args, size_t stride);

/* Waits until all `parties` have arrived (one round of the start gate). Any thread. */
void test_threads_gate(test_threads_t *g);

/* Joins every started thread (in start order, ret[] holds what each returned) and destroys
 * the gate. The group may be initialised again afterwards. Test thread only. */
void test_threads_join(test_threads_t *g);

/* A counter that threads raise and others wait on. As a latch: each party calls
 * test_waiter_add(w, 1), the waiter waits for n. As a gate: test_waiter_add(w, 1) opens it
 * for test_waiter_wait(w, 1). As progress: test_waiter_raise(w, revision). */
typedef struct test_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t value;
} test_waiter_t;

#define TEST_WAITER_INIT                                                                           \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0                                     \
    }

void test_waiter_init(test_waiter_t *w);
void test_waiter_destroy(test_waiter_t *w);

/* value += d; wakes the waiters. Returns the new value. */
int64_t test_waiter_add(test_waiter_t *w, int64_t d);

/* value = max(value, v); wakes the waiters. */
void test_waiter_raise(test_waiter_t *w, int64_t v);

int64_t test_waiter_value(test_waiter_t *w);

/* Blocks until value >= at_least. */
void test_waiter_wait(test_waiter_t *w, int64_t at_least);

/* The calling thread's kernel thread id, for test_wait_futex. */
pid_t test_thread_id(void);

/* Blocks until thread tid of this process is asleep in a futex wait (a mutex, a condition, a
 * join, or the library's own wait words), read from /proc/self/task/<tid>/syscall: how a test
 * knows another thread has gone to sleep on something, without sleeping itself. Yields
 * between looks. A thread that never blocks is a hang, caught by ctest's TIMEOUT; a kernel
 * without that file fails the test. */
void test_wait_futex(pid_t tid);

#endif
