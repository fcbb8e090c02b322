/* Fault test: a process that used telemetry alone (so liburcu's call_rcu thread exists, and no
 * other module registered liburcu-bp's fork handlers) forks, and the child keeps using the
 * instance it inherited and a new one. Retired entries must still be freed in the child and
 * destroy (which waits for them) must return. A watchdog alarm kills a hung child, so a
 * regression fails instead of hanging; nothing here waits by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/telemetry.h>

/* Emit, then drop every entry (each one is retired through call_rcu). */
static int churn(fdn_telemetry_t *tm)
{
    char name[32];
    for (int i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "fork.e%d", i % 8);
        if (fdn_telemetry_emit_counter(tm, name, NULL, 0) != 0)
            return 10;
        if (i % 8 == 7 && fdn_telemetry_reset_metrics(tm) != 0)
            return 11;
    }
    return 0;
}

static int fresh_churn(void)
{
    fdn_telemetry_t *tm = NULL;
    if (fdn_telemetry_create(&tm, NULL) != 0)
        return 20;
    int rc = churn(tm);
    fdn_telemetry_destroy(tm); /* waits for every deferred free */
    return rc;
}

static void child_can_use_telemetry_after_fork(void **state)
{
    (void)state;
    fdn_telemetry_t *tm = NULL;
    assert_int_equal(fdn_telemetry_create(&tm, NULL), 0);
    assert_int_equal(churn(tm), 0); /* the parent has a call_rcu thread now */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* watchdog: SIGALRM kills a child that hangs (generous: a loaded machine) */
        int rc = churn(tm);
        fdn_telemetry_destroy(tm);
        _exit(rc != 0 ? rc : fresh_churn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (hung in telemetry after fork?)", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(churn(tm), 0); /* and the parent still works */
    fdn_telemetry_destroy(tm);
    assert_int_equal(fresh_churn(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_can_use_telemetry_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
