/* Failing-allocator sweep of include/fdn/clock.h (tests/alloc/README.md): a manual clock is
 * the one allocation of the header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/clock.h>
#include <fdn/error.h>

#include "alloc_sweep.h"

static void sweep_manual_create(void **state)
{
    (void)state;
    SWEEP(sw, fdn_clock_manual_create, 0) {
        fdn_clock_t *c = NULL;
        sweep_arm(&sw);
        int rc = fdn_clock_manual_create(&c, 1000, 2000);
        if (sweep_failed(&sw, rc)) {
            assert_null(c);
        } else {
            assert_int_equal(fdn_clock_mono_ns(c), 1000);
            assert_int_equal(fdn_clock_advance(c, 5), 0);
            assert_int_equal(fdn_clock_mono_ns(c), 1005);
            fdn_clock_destroy(c);
        }
    }
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_manual_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
