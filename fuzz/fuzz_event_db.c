/* libFuzzer target: the event store's SQLite file reader (storage/event_sqlite.c) on damaged
 * files: truncated, bit-flipped pages, a foreign schema, a stray WAL. Opening such a file must
 * refuse it with FDN_ECORRUPT or FDN_EIO and a message naming what failed, or read what is
 * there (and then accept an append); it must never crash, hang or leak.
 *
 * Input: byte 0 is the mode: bits 0-1 pick a template file (made once per process: 0 a store
 * of 3 events with correlation ids, ids 1, 2 and 8195, so block 0 of the correlation index
 * has its run (storage/event_sqlite_corr.c), 1 a store with a compressed payload, a binary event
 * and a prune, 2 the store's tables with a damaged record and a foreign table, 3 a foreign schema:
 * an `events` table of other columns). Bit 2: the rest of the input is the whole file (the template
 * is ignored). Bit 3: the rest is a WAL file written beside the template. Otherwise bytes 1-2 are a
 * truncation (big-endian, in 64-byte units; 0 = none) and the rest are patches of 3 bytes:
 * a 16-bit offset (modulo the file's size) and a byte XORed there.
 * Per input: fdn__evdb_open, fdn__evdb_stats (meta count checked against the table: count 0
 * iff no ids, at most one row per id between the smallest and the largest; exact for an intact
 * template), fdn__evdb_load, a lookup by correlation id (the index's runs read from the
 * damaged file) and one fdn__evdb_write of a new event (then the stats again) run on
 * the files, which live in memory (fuzz_memvfs.h: an SQLite VFS over buffers, made the
 * default one, so SQLite's pager, WAL recovery and B-tree code read the bytes without ~30
 * system calls per input; that took the rate from ~2 k to over 20 k inputs/s).
 * One input in FULL_EVERY (by a hash of its bytes; every input under the ctest replay) also
 * writes the same bytes as real files into one directory (under /dev/shm when there is one)
 * and opens them through fdn_events_create, the store's service, on the unix VFS (real
 * files, locks, its writer and retention threads): ~1 ms, too slow for every input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <fdn/events.h>
#include "storage/event_backend.h"
#include "storage/event_sqlite.h"

#include "fuzz_memvfs.h"
#include "fuzz_util.h"

#define FULL_EVERY 256
#define NTEMPLATES 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[200];
static char g_db[256], g_wal[256], g_shm[256], g_journal[256];
static fdn_fuzz_blob_t g_tpl[NTEMPLATES];
static uint64_t g_tpl_events[NTEMPLATES]; /* events an intact template loads */

/* The files on disk (the service's; memvfs_remove_db removes the reader's, in memory). */
static void remove_real_files(void)
{
    unlink(g_db);
    unlink(g_wal);
    unlink(g_shm);
    unlink(g_journal);
}

static void cleanup(void)
{
    remove_real_files();
    rmdir(g_dir);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

static fdn_event_t *make_event_corr(uint64_t id, const char *type, fdn_event_ctype_t ct,
                                    const void *d, size_t n, const char *cid)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.data = d;
    sp.data_len = n;
    sp.content_type = ct;
    sp.id = id;
    sp.timestamp_ns = (int64_t)id * 1000;
    sp.wall_ns = 1700000000000000000LL + (int64_t)id;
    sp.node = "fuzz";
    sp.pid = 1;
    sp.tid = 1;
    sp.correlation_id = cid;
    sp.flags = cid == NULL ? FDN_EVENT_NO_CORRELATION : 0;
    fdn_event_t *ev = NULL;
    if (fdn_event_new(&ev, &sp, NULL) != 0)
        abort();
    return ev;
}

static fdn_event_t *make_event(uint64_t id, const char *type, fdn_event_ctype_t ct, const void *d,
                               size_t n)
{
    return make_event_corr(id, type, ct, d, n, NULL);
}

static void sql(sqlite3 *db, const char *text)
{
    if (sqlite3_exec(db, text, NULL, NULL, NULL) != SQLITE_OK)
        abort();
}

/* The templates, written with the store's own writer (0, 1) or SQLite directly (2, 3). */
static void make_templates(void)
{
    memvfs_remove_db(g_db);
    fdn__evdb_t *d = NULL;
    if (fdn__evdb_open(&d, g_db, false, true, NULL) != 0)
        abort();
    fdn_event_t *evs[3] = {
        make_event_corr(1, "app.start", FDN_EVENT_CT_JSON, "{\"a\":1}", 7, "fuzz-c"),
        make_event_corr(2, "app.tick", FDN_EVENT_CT_TEXT, "tick", 4, "other"),
        make_event_corr(8195, "app.stop", FDN_EVENT_CT_JSON, "[1,2,3]", 7, "fuzz-c")};
    if (fdn__evdb_write(d, (const fdn_event_t *const *)evs, 3, 0, 8196, NULL) != 0)
        abort();
    for (int i = 0; i < 3; i++)
        fdn_event_free(evs[i]);
    fdn__evdb_close(d);
    g_tpl[0] = memvfs_copy(g_db);
    g_tpl_events[0] = 3;

    memvfs_remove_db(g_db);
    if (fdn__evdb_open(&d, g_db, false, true, NULL) != 0)
        abort();
    char big[2048];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "event payload, compressible "[i % 28];
    uint8_t bin[16] = {0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2};
    fdn_event_t *e2[3] = {make_event(9, "old", FDN_EVENT_CT_TEXT, "x", 1),
                          make_event(10, "big", FDN_EVENT_CT_TEXT, big, sizeof big),
                          make_event(11, "bin", FDN_EVENT_CT_BINARY, bin, sizeof bin)};
    if (fdn__evdb_write(d, (const fdn_event_t *const *)e2, 3, 0, 12, NULL) != 0 ||
        fdn__evdb_write(d, NULL, 0, 10, 12, NULL) != 0) /* prune id 9 */
        abort();
    for (int i = 0; i < 3; i++)
        fdn_event_free(e2[i]);
    fdn__evdb_close(d);
    g_tpl[1] = memvfs_copy(g_db);
    g_tpl_events[1] = 2;

    memvfs_remove_db(g_db);
    sqlite3 *db = NULL;
    if (sqlite3_open(g_db, &db) != SQLITE_OK)
        abort();
    sql(db, "PRAGMA journal_mode=WAL;"
            "CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT "
            "NULL, rec BLOB NOT NULL);"
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);"
            "INSERT INTO meta VALUES('next_id', 5);"
            "INSERT INTO events VALUES(4, 1, 't', x'0102030405060708090a0b0c0d0e0f10');"
            "CREATE TABLE users(name TEXT, age INTEGER);"
            "INSERT INTO users VALUES('ann', 33), ('bob', 44);");
    sqlite3_close(db);
    g_tpl[2] = memvfs_copy(g_db);
    g_tpl_events[2] = UINT64_MAX; /* the damaged record: refused */

    memvfs_remove_db(g_db);
    if (sqlite3_open(g_db, &db) != SQLITE_OK)
        abort();
    sql(db, "CREATE TABLE events(id TEXT, payload TEXT);"
            "INSERT INTO events VALUES('a', '{}'), ('b', '[]');"
            "CREATE VIEW meta AS SELECT 'next_id' AS key, 7 AS value;");
    sqlite3_close(db);
    g_tpl[3] = memvfs_copy(g_db);
    g_tpl_events[3] = UINT64_MAX;
    memvfs_remove_db(g_db);
}

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fdn-fuzz-event-db-%ld", base != NULL ? base : "/tmp",
             (long)getpid());
    if (mkdir(g_dir, 0700) != 0)
        abort();
    snprintf(g_db, sizeof g_db, "%s/events.db", g_dir);
    snprintf(g_wal, sizeof g_wal, "%s/events.db-wal", g_dir);
    snprintf(g_shm, sizeof g_shm, "%s/events.db-shm", g_dir);
    snprintf(g_journal, sizeof g_journal, "%s/events.db-journal", g_dir);
    atexit(cleanup);
    memvfs_use(true);
    make_templates();
}

static bool allowed(int rc, const fdn_error_t *err)
{
    if (rc == 0 || rc == FDN_ENOMEM)
        return true;
    return (rc == FDN_ECORRUPT || rc == FDN_EIO) && err->message[0] != '\0';
}

typedef struct loaded {
    uint64_t n;
    uint64_t max_id;
} loaded_t;

/* A lookup of fuzz-c: a documented code; in an intact template 0, ids 1 and 8195. */
static void lookup(fdn__evdb_t *d, bool intact0)
{
    fdn__evb_query_t q = {
        .correlation_id = "fuzz-c", .wall_start = INT64_MIN, .wall_end = INT64_MAX, .limit = 16};
    fdn_event_list_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__evdb_query(d, &q, &l, &err);
    if (!allowed(rc, &err))
        abort();
    if (rc == 0) {
        size_t n = fdn_event_list_count(l);
        for (size_t i = 0; i < n; i++)
            if (strcmp(fdn_event_correlation_id(fdn_event_list_at(l, i)), "fuzz-c") != 0 ||
                (i > 0 && fdn_event_id(fdn_event_list_at(l, i)) <=
                              fdn_event_id(fdn_event_list_at(l, i - 1))))
                abort(); /* only that correlation's events, in id order */
        if (intact0 && (n != 2 || fdn_event_id(fdn_event_list_at(l, 1)) != 8195))
            abort();
        fdn_event_list_free(l);
    } else if (intact0) {
        abort();
    }
}

static int on_event(fdn_event_t *ev, void *user)
{
    loaded_t *l = user;
    if (ev == NULL || fdn_event_id(ev) == 0)
        abort(); /* the reader hands over only records that decoded, with their id */
    l->n++;
    if (fdn_event_id(ev) > l->max_id)
        l->max_id = fdn_event_id(ev);
    fdn_event_free(ev);
    return 0;
}

/* The durable tier's stats (meta count, the table's min and max id): a documented code; on
 * success count 0 with no ids (both 0), else the smallest id not above the largest and no more
 * rows than ids between them (the checks the reader makes of a stored count: a damaged value
 * that passes them is reported as it is). Ids as the table holds them, signed: a damaged file
 * may hold id 0 or negative ones (regress_count_id_zero: one row, id 0). want: the exact count
 * (an intact template), or UINT64_MAX. */
static void check_stats(fdn__evdb_t *d, uint64_t want)
{
    fdn__evb_stats_t st = {0};
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__evdb_stats(d, &st, &err);
    if (!allowed(rc, &err) || (want != UINT64_MAX && rc != 0))
        abort();
    if (rc != 0)
        return;
    int64_t lo = (int64_t)st.oldest, hi = (int64_t)st.newest;
    if (st.count == 0 && (lo != 0 || hi != 0))
        abort();
    if (st.count > 0 && (lo > hi || st.count - 1 > (uint64_t)hi - (uint64_t)lo))
        abort();
    if (want != UINT64_MAX && st.count != want)
        abort();
}

/* Open, read and append to the file as the store does; returns the reader's code. */
static int read_store(uint64_t *nloaded, bool intact0, uint64_t want)
{
    fdn__evdb_t *d = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__evdb_open(&d, g_db, false, true, &err);
    if (!allowed(rc, &err))
        abort();
    if (rc != 0)
        return rc;
    check_stats(d, want);
    loaded_t l = {0, 0};
    uint64_t next = 0;
    rc = fdn__evdb_load(d, on_event, &l, &next, &err);
    if (!allowed(rc, &err))
        abort();
    if (rc == 0) {
        if (next == 0 || next <= l.max_id)
            abort(); /* ids are never reused: the next one is past every stored one */
        *nloaded = l.n;
        lookup(d, intact0);
        if (next < UINT64_MAX / 2) {
            fdn_event_t *ev = make_event(next, "fuzz.append", FDN_EVENT_CT_JSON, "{}", 2);
            fdn_error_t werr = FDN_ERROR_INIT;
            int wrc = fdn__evdb_write(d, (const fdn_event_t *const *)&ev, 1, 0, next + 1, &werr);
            if (!allowed(wrc, &werr))
                abort();
            fdn_event_free(ev);
            check_stats(d, want == UINT64_MAX || wrc != 0 ? UINT64_MAX : want + 1);
        }
    }
    fdn__evdb_close(d);
    return rc;
}

/* The store's service on the file (real files, the unix VFS): a code it documents, with a
 * message. */
static void open_service(const uint8_t *f, size_t fn, const uint8_t *wal, size_t wn)
{
    remove_real_files();
    write_file(g_db, f, fn);
    if (wal != NULL)
        write_file(g_wal, wal, wn);
    memvfs_use(false);
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = g_db;
    o.mode = FDN_EVENTS_FAST;
    fdn_events_t *es = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_events_create(&es, &o, &err);
    if (!allowed(rc, &err))
        abort();
    fdn_events_destroy(es);
    memvfs_use(true);
    remove_real_files();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_dir[0] == '\0')
        setup();
    if (size < 1 || size > 1 << 18)
        return 0;
    unsigned mode = data[0];
    const fdn_fuzz_blob_t *t = &g_tpl[mode % NTEMPLATES];
    uint8_t *f = NULL; /* the db file's bytes */
    size_t fn = 0;
    const uint8_t *wal = NULL; /* the WAL file's, or NULL */
    size_t wn = 0;
    bool intact = false;
    if ((mode & 4) == 0 && (mode & 8) != 0) { /* the template whole, the input its WAL */
        f = fdn_fuzz_dup(t->p, t->n);
        fn = t->n;
        wal = data + 1;
        wn = size - 1;
    } else {
        f = fdn_fuzz_file(data, size, mode & 4, t, &fn, &intact);
    }
    memvfs_remove_db(g_db);
    memvfs_put(g_db, f, fn);
    if (wal != NULL)
        memvfs_put(g_wal, wal, wn);
    uint64_t nloaded = 0;
    uint64_t want = g_tpl_events[mode % NTEMPLATES];
    int rc = read_store(&nloaded, intact && mode % NTEMPLATES == 0, intact ? want : UINT64_MAX);
    if (intact && (want == UINT64_MAX ? rc == 0 : rc != 0 || nloaded != want))
        abort();              /* the templates themselves read as made */
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    if (h % FULL_EVERY == 0 || FDN_FUZZ_REPLAYING())
        open_service(f, fn, wal, wn); /* the same bytes (the reader above appended) */
    free(f);
    memvfs_remove_db(g_db);
    return 0;
}
