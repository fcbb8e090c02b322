/* Run-time config updates survive a restart on the same data directory
 * (<data_dir>/config_overrides.json, written by the runtime on every change and reapplied at
 * start); a reset removes them; an override that no longer applies, or a damaged file, is
 * reported as an event and does not stop the runtime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/runtime.h>

#include "tmpdir.h"

typedef struct fixture {
    char dir[256];
    char file[300];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof f->dir, "overrides") != 0)
        return -1;
    snprintf(f->file, sizeof f->file, "%s/config_overrides.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static fdn_runtime_t *open_rt(const fixture_t *f)
{
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.ignore_env = true;
    o.name = "overrides";
    o.data_dir = f->dir;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_runtime_create(&rt, &o, &err);
    if (rc != 0)
        fail_msg("runtime create: %s %s", fdn_err_name(rc), err.message);
    return rt;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Number of stored events of `type` whose data contains `needle`. */
static size_t events_with(fdn_runtime_t *rt, const char *type, const char *needle)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = type;
    q.limit = 100;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(fdn_runtime_events(rt), &q, &l), 0);
    size_t n = 0;
    for (size_t i = 0; i < fdn_event_list_count(l); i++) {
        size_t len = 0;
        const char *d = fdn_event_data(fdn_event_list_at(l, i), &len);
        if (d != NULL && memmem(d, len, needle, strlen(needle)) != NULL)
            n++;
    }
    fdn_event_list_free(l);
    return n;
}

static void updates_survive_a_restart_and_a_reset_clears_them(void **state)
{
    fixture_t *f = *state;
    fdn_runtime_t *rt = open_rt(f);
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(
        fdn_config_update_int(fdn_runtime_config(rt), "interface.max_results", 9, &err), 0);
    assert_int_equal(fdn_config_update_bool(fdn_runtime_config(rt), "dev.debug_mode", true, &err),
                     0);
    fdn_runtime_destroy(rt); /* drains the config hooks: the file is written */
    assert_int_equal(access(f->file, R_OK), 0);

    rt = open_rt(f);
    int64_t v = 0;
    bool b = false;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 9);
    /* reapplying is not a new update: the history holds the one update made above */
    assert_int_equal(events_with(rt, "config_updated", "interface.max_results"), 1);
    assert_int_equal(fdn_config_get_bool(fdn_runtime_config(rt), "dev.debug_mode", &b), 0);
    assert_true(b);
    /* back to the startup value: no longer an override */
    assert_int_equal(fdn_config_update_bool(fdn_runtime_config(rt), "dev.debug_mode", false, &err),
                     0);
    fdn_runtime_destroy(rt);

    rt = open_rt(f);
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(fdn_config_reset(fdn_runtime_config(rt), &err), 0);
    fdn_runtime_destroy(rt);
    assert_int_equal(access(f->file, F_OK), -1); /* nothing left to persist */

    rt = open_rt(f);
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 1000);
    fdn_runtime_destroy(rt);
}

static void an_override_that_no_longer_applies_is_reported(void **state)
{
    fixture_t *f = *state;
    /* ai.provider is not updatable at run time; 2000 is not a valid sampling rate */
    write_file(f->file, "{\"ai.provider\": \"openai\", \"ai.planning.sampling_rate\": 2000,"
                        " \"interface.max_results\": 11}");
    fdn_runtime_t *rt = open_rt(f);
    char buf[32];
    assert_int_equal(
        fdn_config_get_string(fdn_runtime_config(rt), "ai.provider", buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "mock");
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(events_with(rt, "config_override_skipped", "ai.provider"), 1);
    assert_int_equal(events_with(rt, "config_override_skipped", "sampling_rate"), 1);
    fdn_runtime_destroy(rt);
}

static void a_damaged_file_is_reported_and_kept(void **state)
{
    fixture_t *f = *state;
    write_file(f->file, "{\"interface.max_results\": ");
    fdn_runtime_t *rt = open_rt(f);
    assert_int_equal(events_with(rt, "config_overrides_unreadable", "config_overrides.json"), 1);
    int64_t v = 0;
    assert_int_equal(fdn_config_get_int(fdn_runtime_config(rt), "interface.max_results", &v), 0);
    assert_int_equal(v, 1000);
    fdn_runtime_destroy(rt);
    assert_int_equal(access(f->file, F_OK), 0); /* kept for the operator to look at */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(updates_survive_a_restart_and_a_reset_clears_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_override_that_no_longer_applies_is_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_damaged_file_is_reported_and_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
