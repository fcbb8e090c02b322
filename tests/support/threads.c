/* DESIGN: thread group and waiter for the tests (see threads.h). The group is owned by the
 * test thread (start/join); only test_threads_gate is called from the started threads, and
 * it is a pthread barrier wait. The waiter is a mutex + condition variable around one
 * counter; every change broadcasts. Failures to create threads or barriers fail the test
 * through cmocka (so these run on the test's thread). */
#include "threads.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void test_threads_init(test_threads_t *g, int parties)
{
    memset(g, 0, sizeof(*g));
    g->parties = parties;
    if (parties > 0)
        assert_int_equal(pthread_barrier_init(&g->gate, NULL, (unsigned)parties), 0);
}

void test_threads_start(test_threads_t *g, void *(*fn)(void *), void *arg)
{
    assert_true(g->n < TEST_THREADS_MAX);
    assert_int_equal(pthread_create(&g->th[g->n], NULL, fn, arg), 0);
    g->n++;
}

void test_threads_start_n(test_threads_t *g, int n, void *(*fn)(void *), void *args, size_t stride)
{
    for (int i = 0; i < n; i++)
        test_threads_start(g, fn, (char *)args + (size_t)i * stride);
}

void test_threads_gate(test_threads_t *g)
{
    pthread_barrier_wait(&g->gate);
}

void test_threads_join(test_threads_t *g)
{
    for (int i = 0; i < g->n; i++)
        assert_int_equal(pthread_join(g->th[i], &g->ret[i]), 0);
    if (g->parties > 0)
        pthread_barrier_destroy(&g->gate);
    g->parties = 0;
}

void test_waiter_init(test_waiter_t *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->value = 0;
}

void test_waiter_destroy(test_waiter_t *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

int64_t test_waiter_add(test_waiter_t *w, int64_t d)
{
    pthread_mutex_lock(&w->mu);
    int64_t v = w->value += d;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return v;
}

void test_waiter_raise(test_waiter_t *w, int64_t v)
{
    pthread_mutex_lock(&w->mu);
    if (v > w->value)
        w->value = v;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int64_t test_waiter_value(test_waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    int64_t v = w->value;
    pthread_mutex_unlock(&w->mu);
    return v;
}

void test_waiter_wait(test_waiter_t *w, int64_t at_least)
{
    pthread_mutex_lock(&w->mu);
    while (w->value < at_least)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

pid_t test_thread_id(void)
{
    return (pid_t)syscall(SYS_gettid);
}

void test_wait_futex(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f == NULL)
            fail_msg("cannot read %s: is thread %d gone?", path, (int)tid);
        char line[32] = "";
        bool got = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        /* "running", or the number of the system call it is blocked in, then its arguments */
        if (got && line[0] >= '0' && line[0] <= '9' && strtol(line, NULL, 10) == SYS_futex)
            return;
        sched_yield();
    }
}
