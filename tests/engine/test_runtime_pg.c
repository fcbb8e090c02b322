/* Engine test of a runtime whose event store's durable tier is PostgreSQL (storage.warm.backend
 * "postgres", on the fixture's server): fdn_runtime_shutdown from a telemetry handler run on
 * the store's own writer thread (foundation.event_store.events_stored, which the shared
 * backend's writer emits once a batch is committed) only requests the stop and returns 0, as
 * from the SQLite writer or pruner (tests/unit/test_runtime.c). It once waited for the
 * supervisor, whose stop of the event store joined that writer: neither returned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fdn/events.h>
#include <fdn/runtime.h>
#include <fdn/telemetry.h>
#include <fdn/testing.h>

#include "pg_fixture.h"
#include "runtime_shut.h"

static void shutdown_from_shared_writer_thread(void **state)
{
    (void)state;
    char schema[64], backend[] = "FDN_STORAGE__WARM__BACKEND=postgres", url[320], sch[128];
    test_pg_schema_name(schema, sizeof schema, "rtshut");
    snprintf(url, sizeof url, "FDN_STORAGE__WARM__POSTGRES__URL=%s", test_pg_url);
    snprintf(sch, sizeof sch, "FDN_STORAGE__WARM__POSTGRES__SCHEMA=%s", schema);
    const char *envp[] = {backend, url, sch, NULL};
    fdn_runtime_opts_t o = FDN_RUNTIME_OPTS_INIT;
    o.envp = envp;
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_testing_runtime_create(&rt, &o, &err);
    if (rc != 0)
        fail_msg("runtime on PostgreSQL: %d %s", rc, err.message);
    rt_shut_t t;
    rt_shut_init(&t, rt);
    uint64_t hid = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(rt), &hid,
                                          "foundation.event_store.events_stored",
                                          FDN_TELEMETRY_MATCH_EXACT, rt_shut_on_telemetry, &t),
                     0);
    /* acknowledged once committed on PostgreSQL: the writer emits the count around then */
    rt_store_one(rt, "one");
    rt_shut_complete(&t);
    assert_int_equal(fdn_testing_runtime_destroy(rt, NULL), 0);
    rt_shut_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shutdown_from_shared_writer_thread),
    };
    return cmocka_run_group_tests(tests, test_pg_setup, NULL);
}
