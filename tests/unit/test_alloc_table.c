/* Large tables (core/alloc.h, fdn__table_alloc): from 2 MiB, with the default allocator, a
 * mapping of their own on a 2 MiB boundary (advised to use transparent huge pages, which this
 * test cannot require: the kernel may give 4 KiB pages); smaller ones, and every one while a
 * custom allocator is installed, through the allocator. All zeroed and aligned as asked. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "fail_alloc.h"

static void expect_zero_and_writable(unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i] != 0)
            fail_msg("byte %zu of %zu is %u", i, size, p[i]);
    memset(p, 0xa5, size);
}

static void large_table_is_its_own_aligned_mapping(void **state)
{
    (void)state;
    static const size_t sizes[] = {FDN__HUGE_PAGE, 2 * FDN__HUGE_PAGE, FDN__HUGE_PAGE + 3 * 4096};
    for (size_t k = 0; k < FDN_ARRAY_LEN(sizes); k++) {
        fdn__table_mem_t mem = {NULL, 0};
        errno = EILSEQ;
        unsigned char *p = fdn__table_alloc(&mem, sizes[k], 128);
        assert_int_equal(errno, EILSEQ);
        assert_non_null(p);
        assert_ptr_equal(mem.base, p);
        assert_int_equal((uintptr_t)p % FDN__HUGE_PAGE, 0);
        /* whole huge pages: the tail of the last one is mapped too */
        assert_int_equal(mem.maplen,
                         (sizes[k] + FDN__HUGE_PAGE - 1) / FDN__HUGE_PAGE * FDN__HUGE_PAGE);
        expect_zero_and_writable(p, mem.maplen);
        fdn__table_free(&mem);
        assert_null(mem.base);
        assert_int_equal(mem.maplen, 0);
        assert_int_equal(errno, EILSEQ);
    }
    fdn__table_mem_t none = {NULL, 0};
    fdn__table_free(&none); /* nothing to free */
}

static void small_table_comes_from_the_allocator(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    fdn__table_mem_t mem = {NULL, 0};
    unsigned char *p = fdn__table_alloc(&mem, FDN__HUGE_PAGE / 2, 128);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 128, 0);
    assert_int_equal(mem.maplen, 0);
    assert_int_equal(fail_alloc_count(), 1);
    expect_zero_and_writable(p, FDN__HUGE_PAGE / 2);
    fdn__table_free(&mem);
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_uninstall();
}

/* fdn_set_allocator's allocator sees every allocation, large tables included, and can fail
 * them. */
static void custom_allocator_sees_large_tables(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    fdn__table_mem_t mem = {NULL, 0};
    unsigned char *p = fdn__table_alloc(&mem, 2 * FDN__HUGE_PAGE, 128);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 128, 0);
    assert_int_equal(mem.maplen, 0);
    assert_int_equal(fail_alloc_count(), 1);
    assert_int_equal(fail_alloc_live(), 1);
    expect_zero_and_writable(p, 2 * FDN__HUGE_PAGE);
    fdn__table_free(&mem);
    assert_int_equal(fail_alloc_live(), 0);
    /* out of memory: NULL, and mem untouched */
    fail_alloc_at(1);
    fdn__table_mem_t keep = {&keep, 12345};
    assert_null(fdn__table_alloc(&keep, 2 * FDN__HUGE_PAGE, 128));
    assert_ptr_equal(keep.base, &keep);
    assert_int_equal(keep.maplen, 12345);
    assert_int_equal(fail_alloc_failures(), 1);
    fail_alloc_off();
    fail_alloc_uninstall();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_table_is_its_own_aligned_mapping),
        cmocka_unit_test(small_table_comes_from_the_allocator),
        cmocka_unit_test(custom_allocator_sees_large_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
