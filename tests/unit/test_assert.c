/* Unit tests: FDN_ASSERT and FDN_ASSERT_HELD (src/core/assert.h, src/core/lock.h). The test
 * builds are Debug or sanitizer builds, where CMake turns the checks on: a failing check must
 * abort the process and name file, line and expression on stderr. Death tests run in a forked
 * child whose stderr goes to a pipe (tests/support/child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/lock.h"
#include "child.h"

static int g_evaluations;

static int counted(int v)
{
    g_evaluations++;
    return v;
}

static void body_true(void)
{
    FDN_ASSERT(counted(1) == 1);
}

static void body_false(void)
{
    int count = -1;
    FDN_ASSERT(count >= 0);
}
enum { FALSE_LINE = __LINE__ - 2 }; /* the line of the FDN_ASSERT above */

static void checks_are_on_in_test_builds(void **state)
{
    (void)state;
    assert_int_equal(FDN_ASSERT_ENABLED, 1);
}

static void true_condition_is_evaluated_once_and_passes(void **state)
{
    (void)state;
    g_evaluations = 0;
    body_true();
    assert_int_equal(g_evaluations, 1);
    char err[512];
    int st = test_run_child(body_true, err, sizeof err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(err, "");
}

static void false_condition_aborts_naming_file_line_expression(void **state)
{
    (void)state;
    char err[512];
    int st = test_run_child(body_false, err, sizeof err);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    char want[128];
    snprintf(want, sizeof want, "test_assert.c:%d: body_false: assertion `count >= 0' failed",
             (int)FALSE_LINE);
    assert_non_null(strstr(err, want));
}

static fdn__mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void body_held(void)
{
    fdn__mutex_lock(&g_mu);
    FDN_ASSERT_HELD(&g_mu);
    fdn__mutex_unlock(&g_mu);
}

static void body_not_held(void)
{
    FDN_ASSERT_HELD(&g_mu);
}

static void assert_held_passes_with_the_lock_and_aborts_without(void **state)
{
    (void)state;
    char err[512];
    int st = test_run_child(body_held, err, sizeof err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    st = test_run_child(body_not_held, err, sizeof err);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(err, "fdn__mutex_is_free"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_are_on_in_test_builds),
        cmocka_unit_test(true_condition_is_evaluated_once_and_passes),
        cmocka_unit_test(false_condition_aborts_naming_file_line_expression),
        cmocka_unit_test(assert_held_passes_with_the_lock_and_aborts_without),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
