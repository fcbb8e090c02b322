/* Fault tests: jansson allocates through the library allocator (src/core/json.c), so the
 * failing allocator reaches every JSON value the library builds, and a parse that runs out
 * of memory is told apart from bad input. (test_config_fault's create_sweep checks that a
 * config created under memory pressure answers FDN_ENOMEM, which this made true.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include <fdn/error.h>

#include "core/json.h"
#include "fail_alloc.h"

static void jansson_uses_the_custom_allocator(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    fail_alloc_at(0);
    json_t *o = json_object();
    assert_non_null(o);
    assert_true(fail_alloc_count() >= 1); /* counted by the hook */
    assert_true(fail_alloc_live() >= 1);
    json_decref(o);
    assert_int_equal(fail_alloc_live(), 0); /* and freed through it */
    fail_alloc_at(1);
    assert_null(json_object()); /* and failed by it */
    fail_alloc_off();
    fail_alloc_uninstall();
    /* the default allocator gives jansson back malloc: nothing is counted any more */
    fail_alloc_at(0);
    o = json_object();
    assert_non_null(o);
    assert_int_equal(fail_alloc_count(), 0);
    json_decref(o);
}

static void parse_out_of_memory_is_not_bad_input(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_install(), 0);
    static const char text[] = "{\"a\": [1, 2, \"three\"]}";
    long failed_oom = 0;
    for (long k = 1; k < 64; k++) {
        fail_alloc_at(k);
        fdn__json_oom_clear();
        json_error_t je;
        json_t *v = json_loads(text, 0, &je);
        fail_alloc_off();
        if (v != NULL) {
            json_decref(v);
            break;
        }
        /* valid text: a failure can only be the failed allocation, and it is noted */
        assert_true(fdn__json_oom());
        failed_oom++;
    }
    assert_true(failed_oom > 0);
    /* bad input without an allocation failure is not noted as one */
    fdn__json_oom_clear();
    json_error_t je;
    assert_null(json_loads("{\"a\": ", 0, &je));
    assert_false(fdn__json_oom());
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_uninstall();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jansson_uses_the_custom_allocator),
        cmocka_unit_test(parse_out_of_memory_is_not_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
