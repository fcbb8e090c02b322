/* Fault test: a process that used the registry (so liburcu's call_rcu thread exists) forks,
 * and the child uses a registry of its own. Deferred frees must still run in the child and
 * destroy (which waits for them) must return. A watchdog alarm kills a hung child, so a
 * regression fails instead of hanging; nothing here waits by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/registry.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_can_use_a_registry_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
