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
    SWEEP(sw, fdn_clock_manual_create, 0)
    {
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

/* Every other clock call allocates nothing. */
static void accessors_allocate_nothing(void **state)
{
    (void)state;
    fdn_clock_t *c = NULL;
    assert_int_equal(fdn_clock_manual_create(&c, 1000, 2000), 0);
    uint64_t seq = 0;
    NOALLOC_SWEEP(fdn_clock_system, fdn_clock_system());
    NOALLOC_SWEEP(fdn_clock_is_manual, fdn_clock_is_manual(c));
    NOALLOC_SWEEP(fdn_clock_mono_ns, fdn_clock_mono_ns(c));
    NOALLOC_SWEEP(fdn_clock_wall_ns, fdn_clock_wall_ns(c));
    NOALLOC_SWEEP(fdn_clock_advance, fdn_clock_advance(c, 10));
    NOALLOC_SWEEP(fdn_clock_set_mono, fdn_clock_set_mono(c, 5000));
    NOALLOC_SWEEP(fdn_clock_kick_seq, seq = fdn_clock_kick_seq(c));
    NOALLOC_SWEEP(fdn_clock_kick, fdn_clock_kick(c));
    NOALLOC_SWEEP(fdn_clock_wait_until, fdn_clock_wait_until(c, 0, &seq)); /* deadline passed */
    NOALLOC_SWEEP(fdn_clock_waiters, fdn_clock_waiters(c));
    NOALLOC_SWEEP(fdn_clock_destroy, fdn_clock_destroy(c));
}

int main(void)
{
    sweep_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_manual_create),
        cmocka_unit_test(accessors_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
