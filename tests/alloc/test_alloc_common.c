/* Failing-allocator sweep of include/fdn/common.h (tests/alloc/README.md): the public
 * allocation functions fail as their allocator does, and a failed resize keeps the block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <fdn/common.h>
#include <fdn/error.h>

#include "alloc_sweep.h"

static void sweep_malloc_calloc(void **state)
{
    (void)state;
    SWEEP(sw, fdn_malloc, 0)
    {
        sweep_arm(&sw);
        char *p = fdn_malloc(32);
        if (!sweep_failed(&sw, p == NULL ? FDN_ENOMEM : 0)) {
            memset(p, 'x', 32);
            fdn_free(p);
        }
    }
    SWEEP(sw, fdn_calloc, 0)
    {
        sweep_arm(&sw);
        unsigned char *p = fdn_calloc(8, 4);
        if (!sweep_failed(&sw, p == NULL ? FDN_ENOMEM : 0)) {
            for (size_t i = 0; i < 32; i++)
                assert_int_equal(p[i], 0);
            fdn_free(p);
        }
    }
}

static void sweep_realloc(void **state)
{
    (void)state;
    SWEEP(sw, fdn_realloc, 0)
    {
        char *p = fdn_malloc(4);
        assert_non_null(p);
        memcpy(p, "abc", 4);
        sweep_arm(&sw);
        char *q = fdn_realloc(p, 1 << 16);
        if (sweep_failed(&sw, q == NULL ? FDN_ENOMEM : 0)) {
            assert_string_equal(p, "abc"); /* the block is kept as it was */
            fdn_free(p);
        } else {
            assert_string_equal(q, "abc");
            fdn_free(q);
        }
    }
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_malloc_calloc),
        cmocka_unit_test(sweep_realloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
