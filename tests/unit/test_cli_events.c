/* `fdn events query` (tools/fdn/cmd_events.c) on a store written by the library: the table's
 * DATA column (binary payloads, long ones, line breaks: one line per event). Events the HTTP API
 * cannot make (binary content) are stored here with fdn_events_store on a durable file, then the
 * program ($FDN_BINARY_DIR/bin/fdn) is run on the data directory and its output read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>

#include "tmpdir.h"

static void store(fdn_events_t *es, const char *type, const void *data, size_t len,
                  fdn_event_ctype_t ct)
{
    fdn_event_spec_t s = FDN_EVENT_SPEC_INIT;
    s.type = type;
    s.data = data;
    s.data_len = len;
    s.content_type = ct;
    fdn_event_t *ev = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_event_new(&ev, &s, &err), 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_free(ev);
}

/* Runs `fdn events query --data-dir DIR --type TYPE` and returns its stdout (malloc'd). */
static char *query(const char *dir, const char *type)
{
    const char *bin = getenv("FDN_BINARY_DIR");
    if (bin == NULL)
        skip();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/bin/fdn' events query --data-dir '%s' --type %s", bin, dir,
             type);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = calloc(1, 65536);
    assert_non_null(out);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    int rc = pclose(p);
    if (rc != 0) {
        free(out);
        fail_msg("%s: status %d", cmd, rc);
    }
    return out;
}

static void data_column_of_each_content_type(void **state)
{
    (void)state;
    test_tmpfile_t t;
    assert_int_equal(test_tmpfile_make(&t, "cli-events", "events.db"), 0);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = t.path;
    fdn_events_t *es = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_events_create(&es, &o, &err), 0);
    unsigned char bytes[100];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)i;
    store(es, "blob.small", bytes, 3, FDN_EVENT_CT_BINARY);
    store(es, "blob.big", bytes, sizeof bytes, FDN_EVENT_CT_BINARY);
    const char *big = "{\"text\":\"0123456789012345678901234567890123456789012345678901234567"
                      "89\"}";
    store(es, "json.big", big, strlen(big), FDN_EVENT_CT_JSON);
    const char *lines = "{\r\n\t\"a\": 1,\n\t\"b\": 2\n}";
    store(es, "json.lines", lines, strlen(lines), FDN_EVENT_CT_JSON);
    fdn_events_destroy(es);

    /* a binary payload is named, with its size, whatever its length: never cut to "<bi" */
    char *out = query(t.dir, "blob.small");
    bool ok = strstr(out, " <binary, 3 bytes>\n") != NULL;
    if (!ok)
        print_error("3-byte binary event: %s", out);
    free(out);
    assert_true(ok);
    out = query(t.dir, "blob.big");
    ok = strstr(out, " <binary, 100 bytes>\n") != NULL;
    if (!ok)
        print_error("100-byte binary event: %s", out);
    free(out);
    assert_true(ok);
    /* JSON longer than the column: its first 60 bytes, then "..." */
    out = query(t.dir, "json.big");
    char want[80];
    snprintf(want, sizeof want, " %.60s...\n", big);
    ok = strstr(out, want) != NULL;
    if (!ok)
        print_error("long JSON event: %s", out);
    free(out);
    assert_true(ok);
    /* JSON with line breaks between its tokens: the row stays one line (header + 1 row) */
    out = query(t.dir, "json.lines");
    size_t nl = 0;
    for (const char *c = out; *c; c++)
        nl += *c == '\n';
    ok = nl == 2 && strstr(out, " {   \"a\": 1,  \"b\": 2 }\n") != NULL;
    if (!ok)
        print_error("JSON with line breaks: %s", out);
    free(out);
    assert_true(ok);
    test_tmpfile_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_column_of_each_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
