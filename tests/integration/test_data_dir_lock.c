/* One runtime per data directory: a second runtime on the same directory, in this process or
 * another, is refused with FDN_EBUSY naming the owner's pid, and the directory is free again
 * once the owner is destroyed or killed with SIGKILL (the lock is never stale). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/runtime.h>

static char g_dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/fdn-lock-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int open_rt(fdn_runtime_t **rt, fdn_error_t *err)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.data_dir = g_dir;
    return fdn_runtime_create(rt, &o, err);
}

static void second_runtime_in_this_process_is_refused(void **state)
{
    (void)state;
    fdn_runtime_t *a = NULL, *b = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(open_rt(&a, &err), 0);
    assert_int_equal(open_rt(&b, &err), FDN_EBUSY);
    assert_null(b);
    char pid[24];
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    if (strstr(err.message, "in use") == NULL || strstr(err.message, pid) == NULL)
        fail_msg("message: %s", err.message);
    fdn_runtime_destroy(a);
    err = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(open_rt(&b, &err), 0); /* free again */
    fdn_runtime_destroy(b);
}

static void a_killed_owner_leaves_no_stale_lock(void **state)
{
    (void)state;
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        close(hold[1]);
        fdn_runtime_t *rt = NULL;
        char ok = open_rt(&rt, NULL) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(2);
        char c;
        (void)read(hold[0], &c, 1); /* until the parent kills this process */
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char ok = 0;
    assert_int_equal(read(ready[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(open_rt(&rt, &err), FDN_EBUSY);
    char pid[24];
    snprintf(pid, sizeof(pid), "pid %ld", (long)child);
    if (strstr(err.message, pid) == NULL)
        fail_msg("message does not name the owner (%s): %s", pid, err.message);
    assert_int_equal(kill(child, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));
    err = (fdn_error_t)FDN_ERROR_INIT;
    assert_int_equal(open_rt(&rt, &err), 0);
    fdn_runtime_destroy(rt);
    close(ready[0]);
    close(hold[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(second_runtime_in_this_process_is_refused, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(a_killed_owner_leaves_no_stale_lock, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
