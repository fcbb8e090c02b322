/* Unit tests: the durable tier's payload compression switch (storage.warm.compression). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/events.h>

/* Store one event with a 4000-byte, very compressible JSON payload in a new durable store and
 * return the length of its stored record. */
static int record_len(bool compress)
{
    char dir[] = "/tmp/fdn-evz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/events.db", dir);

    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.compress = compress;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    char data[4003];
    data[0] = '"';
    memset(data + 1, 'a', 4000);
    data[4001] = '"';
    data[4002] = '\0';
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "compress_test";
    spec.data = data;
    spec.data_len = strlen(data);
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0); /* durable: committed on return */
    fdn_event_free(ev);
    fdn_events_destroy(es);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT length(rec) FROM events WHERE id = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int len = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* the store reopens and decodes either form */
    o.compress = !compress;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    fdn_event_t *back = NULL;
    assert_int_equal(fdn_events_get(es, id, &back), 0);
    size_t blen = 0;
    const void *bdata = fdn_event_data(back, &blen);
    assert_int_equal(blen, strlen(data));
    assert_memory_equal(bdata, data, blen);
    fdn_event_free(back);
    fdn_events_destroy(es);

    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return len;
}

static void compression_switch(void **state)
{
    (void)state;
    int plain = record_len(false);
    int packed = record_len(true);
    assert_true(plain > 4000);
    assert_true(packed < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compression_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
