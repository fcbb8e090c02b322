/* Fault tests: fdn_malloc, fdn_calloc and fdn_realloc (common.h) allocate through the
 * allocator set with fdn_set_allocator, as the library's own allocations do, so code built on
 * the public API only (the fdn_admin library) is counted and failed by it too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <fdn/common.h>

#include "fail_alloc.h"

static void allocations_go_through_the_custom_allocator(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    char *p = fdn_malloc(16);
    assert_non_null(p);
    memcpy(p, "0123456789abcde", 16);
    unsigned char *z = fdn_calloc(4, 8);
    assert_non_null(z);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(z[i], 0);
    assert_int_equal(fail_alloc_count(), 2);
    assert_int_equal(fail_alloc_live(), 2);
    p = fdn_realloc(p, 4096);
    assert_non_null(p);
    assert_string_equal(p, "0123456789abcde"); /* the content moves with it */
    assert_int_equal(fail_alloc_count(), 3);
    fdn_free(p);
    fdn_free(z);
    assert_int_equal(fail_alloc_live(), 0); /* and fdn_free releases through it */
    fail_alloc_uninstall();
}

static void failures_reach_the_caller(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(1);
    errno = EBADF;
    assert_null(fdn_malloc(8));
    assert_int_equal(errno, EBADF); /* errno is the caller's, not the allocator's */
    assert_int_equal(fail_alloc_failures(), 1);

    fail_alloc_at(1);
    assert_null(fdn_calloc(2, 2));
    assert_int_equal(fail_alloc_failures(), 1);

    fail_alloc_at(2);
    char *p = fdn_malloc(4);
    assert_non_null(p);
    memcpy(p, "abc", 4);
    assert_null(fdn_realloc(p, 1 << 20)); /* a failed resize leaves the block as it was */
    assert_string_equal(p, "abc");
    fdn_free(p);
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_off();
    fail_alloc_uninstall();
}

static void calloc_refuses_an_overflowing_size(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    assert_null(fdn_calloc(SIZE_MAX / 2, 3));
    assert_int_equal(fail_alloc_count(), 0); /* refused before asking the allocator */
    void *p = fdn_calloc(0, 0);              /* zero bytes is a valid, freeable block */
    assert_non_null(p);
    fdn_free(p);
    fdn_free(NULL);
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_uninstall();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocations_go_through_the_custom_allocator),
        cmocka_unit_test(failures_reach_the_caller),
        cmocka_unit_test(calloc_refuses_an_overflowing_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
