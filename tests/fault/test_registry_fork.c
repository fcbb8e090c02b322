/* Fault test: a process that used the registry (so liburcu's call_rcu thread exists) forks,
 * and the child uses a registry of its own. Deferred frees must still run in the child and
 * destroy (which waits for them) must return. A watchdog alarm kills a hung child, so a
 * regression fails instead of hanging; nothing here waits by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/registry.h>

#include "threads.h"

static int churn(void)
{
    fdn_registry_t *reg = NULL;
    int rc = fdn_registry_create(&reg, NULL);
    if (rc != 0)
        return 10;
    static int handle;
    for (int i = 0; i < 64; i++) {
        if (fdn_registry_register(reg, "svc", &handle, 1, NULL, 0, NULL) != 0)
            return 11;
        if (fdn_registry_unregister(reg, "svc") != 0)
            return 12;
    }
    fdn_registry_destroy(reg); /* waits for every deferred free */
    return 0;
}

static void child_can_use_a_registry_after_fork(void **state)
{
    (void)state;
    assert_int_equal(churn(), 0); /* the parent has a call_rcu thread now */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* watchdog: SIGALRM kills a child that hangs (generous: a loaded machine) */
        _exit(churn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (hung in the registry after fork?)", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(churn(), 0); /* and the parent still works */
}

static int late_handle;

typedef struct waiter {
    fdn_registry_t *reg;
    _Atomic pid_t tid;
} waiter_t;

static void *wait_for_late(void *p)
{
    waiter_t *w = p;
    /* a first read-side section registers this thread with liburcu-bp (which may block on
     * its registry lock): done now, so the only futex wait left is the wait itself */
    (void)fdn_registry_lookup(w->reg, "early", NULL, NULL);
    atomic_store(&w->tid, test_thread_id());
    void *out = NULL;
    int rc = fdn_registry_wait(w->reg, "late", -1, &out, NULL);
    return rc == 0 && out == &late_handle ? NULL : p;
}

/* A thread of the parent is blocked in fdn_registry_wait when the process forks. The child has
 * no such thread: its fdn_registry_destroy (a worker's cleanup, an atexit handler) must return
 * (the wait's pthread condition counted the parent's waiter for ever, so destroying it waited
 * for a thread that does not exist in the child). */
static void child_destroys_a_registry_a_parent_thread_waits_on(void **state)
{
    (void)state;
    waiter_t w = {0};
    assert_int_equal(fdn_registry_create(&w.reg, NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_for_late, &w), 0);
    pid_t tid;
    while ((tid = atomic_load(&w.tid)) == 0)
        sched_yield();
    test_wait_futex(tid); /* asleep in the wait */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* watchdog: SIGALRM kills a child that hangs */
        static int h;
        if (fdn_registry_register(w.reg, "child", &h, 0, NULL, 0, NULL) != 0)
            _exit(10);
        fdn_registry_destroy(w.reg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (hung destroying the registry?)", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent's waiter is still served */
    assert_int_equal(fdn_registry_register(w.reg, "late", &late_handle, 0, NULL, 0, NULL), 0);
    void *ret = &w;
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_null(ret);
    fdn_registry_destroy(w.reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_can_use_a_registry_after_fork),
        cmocka_unit_test(child_destroys_a_registry_a_parent_thread_waits_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
