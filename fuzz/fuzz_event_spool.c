/* libFuzzer target: the event store's local spool (storage/event_spool.c), the SQLite file
 * that holds batches PostgreSQL could not take yet, read back on replay. A damaged spool
 * (truncated, bit-flipped pages, rows whose counts, ids or bodies disagree, a foreign table of
 * the same name) must be refused at open, or answer each peek with whole batches that decode,
 * or FDN_ECORRUPT / FDN_EIO and a message; a drop after a peek must forget what was peeked;
 * a batch the peek calls corrupt is quarantined (as the store's writer does) and the peeks go
 * on behind it; a put must store or refuse with a message. Never a crash, a hang or a leak.
 *
 * Input: byte 0 is the mode: bit 0 picks a template file (made once per process: 0 a spool
 * of three batches written by fdn__spool_put, 1 a spool table written by hand whose rows lie:
 * a count that disagrees with the ids, a body cut short, an empty body). Bit 1: the rest of
 * the input is the whole file (the template is ignored). Otherwise bytes 1-2 are a truncation
 * (big-endian, in 64-byte units; 0 = none) and the rest are patches of 3 bytes: a 16-bit
 * offset (modulo the file's size) and a byte XORed there.
 * The file lives in memory (fuzz_memvfs.h: an SQLite VFS over buffers, made the default). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <fdn/events.h>
#include "core/alloc.h"
#include "storage/event_spool.h"

#include "fuzz_memvfs.h"
#include "fuzz_util.h"

#define NTEMPLATES 2
#define MAX_BYTES  (1u << 20) /* the spool's bound: a put past it is refused */
#define PEEKS      8          /* peeks per input: the template holds three batches */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char g_path[] = "/fdn-fuzz-spool/spool.db";
static fdn_fuzz_blob_t g_tpl[NTEMPLATES];
static size_t g_tpl_events[NTEMPLATES]; /* events an intact template gives back */
static bool g_ready;

static fdn_event_t *make_event(const char *type, const void *d, size_t n)
{
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = type;
    sp.data = d;
    sp.data_len = n;
    sp.content_type = FDN_EVENT_CT_TEXT;
    sp.timestamp_ns = 1000;
    sp.wall_ns = 1700000000000000000LL;
    sp.node = "fuzz";
    sp.pid = 1;
    sp.tid = 1;
    sp.flags = FDN_EVENT_NO_CORRELATION;
    fdn_event_t *ev = NULL;
    if (fdn_event_new(&ev, &sp, NULL) != 0)
        abort();
    return ev;
}

/* n ids of 36 characters (not real UUIDs: the spool keeps them as given) */
static void make_uids(fdn__spool_uid_t *u, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        snprintf(u[i], sizeof u[i], "%08x-0000-4000-8000-%012x", seed, (unsigned)i);
}

/* Flush the WAL into the main file so a template is one file. */
static void checkpoint(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(g_path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_close(db);
}

static fdn_fuzz_blob_t take_file(void)
{
    fdn_fuzz_blob_t b = memvfs_copy(g_path);
    memvfs_remove_db(g_path);
    return b;
}

static void make_templates(void)
{
    memvfs_remove_db(g_path);
    fdn__spool_t *s = NULL;
    if (fdn__spool_open(&s, g_path, MAX_BYTES, NULL) != 0)
        abort();
    char big[600];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "spooled payload "[i % 16];
    fdn_event_t *evs[3] = {make_event("a.one", "1", 1), make_event("a.two", big, sizeof big),
                           make_event("a.three", "{}", 2)};
    fdn__spool_uid_t u[3];
    for (unsigned b = 0; b < 3; b++) {
        make_uids(u, b + 1, b);
        if (fdn__spool_put(s, (const fdn_event_t *const *)evs, (const fdn__spool_uid_t *)u, b + 1,
                           NULL) != 0)
            abort();
    }
    for (int i = 0; i < 3; i++)
        fdn_event_free(evs[i]);
    fdn__spool_close(s);
    checkpoint();
    g_tpl[0] = take_file();
    g_tpl_events[0] = 1 + 2 + 3;

    /* the table as the spool makes it, rows written by hand: each one is refused at its peek */
    sqlite3 *db = NULL;
    if (sqlite3_open(g_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " n INTEGER NOT NULL, bytes INTEGER NOT NULL, uids TEXT NOT NULL,"
                     " body BLOB NOT NULL);"
                     "INSERT INTO spool (n, bytes, uids, body) VALUES"
                     " (2, 4, '0123456789abcdef0123456789abcdef0123', x'01020304'),"
                     " (1, 20, '0123456789abcdef0123456789abcdef0123',"
                     "  x'000000000000000040000000aabbccdd'),"
                     " (1, 0, '0123456789abcdef0123456789abcdef0123', x''),"
                     " (-5, -9, '', 'text, not a record');",
                     NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_close(db);
    g_tpl[1] = take_file();
    g_tpl_events[1] = 0;
}

static void setup(void)
{
    memvfs_use(true);
    make_templates();
    g_ready = true;
}

static bool allowed(int rc, const fdn_error_t *err, int also)
{
    if (rc == 0 || rc == FDN_ENOMEM || (also != 0 && rc == also))
        return true;
    return (rc == FDN_ECORRUPT || rc == FDN_EIO) && err->message[0] != '\0';
}

/* Open the file and replay it as the store's writer does: peek, check, drop (a corrupt batch:
 * quarantine), until it is empty or refuses; then put one batch. Returns the events replayed,
 * or SIZE_MAX when the open or a peek refused the file; *quarantined the batches moved. */
static size_t replay(size_t *quarantined)
{
    fdn__spool_t *s = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__spool_open(&s, g_path, MAX_BYTES, &err);
    if (!allowed(rc, &err, 0))
        abort();
    if (rc != 0)
        return SIZE_MAX;
    size_t replayed = 0;
    bool refused = false;
    for (int i = 0; i < PEEKS; i++) {
        int64_t seq = 0;
        fdn_event_t **evs = NULL;
        fdn__spool_uid_t *uids = NULL;
        size_t n = 0;
        err = (fdn_error_t)FDN_ERROR_INIT;
        rc = fdn__spool_peek(s, 2, 0, &seq, &evs, &uids, &n, &err);
        if (rc == FDN_ENOENT)
            break;
        if (!allowed(rc, &err, 0)) {
            fprintf(stderr, "peek rc=%d %s\n", rc, err.message);
            abort();
        }
        if (rc == FDN_ECORRUPT) {
            fdn_error_t qerr = FDN_ERROR_INIT;
            int qrc = fdn__spool_quarantine(s, seq, 1, rc, err.message, NULL, &qerr);
            /* full; or, in a file damaged below its rows (a b-tree page, the schema), no row
             * under the key the scan gave: said, with a message, never a crash */
            if (!allowed(qrc, &qerr, FDN_ENOSPC) &&
                !(qrc == FDN_ENOENT && qerr.message[0] != '\0')) {
                fprintf(stderr, "quarantine rc=%d %s\n", qrc, qerr.message);
                abort();
            }
            if (qrc == 0) {
                (*quarantined)++;
                continue;
            }
        }
        if (rc != 0) {
            refused = true;
            break;
        }
        if (n == 0 || evs == NULL || uids == NULL)
            abort(); /* a peek that succeeds hands over at least one whole batch */
        for (size_t k = 0; k < n; k++) {
            if (evs[k] == NULL || strlen(uids[k]) != FDN_UUID_STR_LEN)
                abort();
            fdn_event_free(evs[k]);
        }
        fdn__free(evs);
        fdn__free(uids);
        replayed += n;
        err = (fdn_error_t)FDN_ERROR_INIT;
        rc = fdn__spool_drop(s, seq, &err);
        if (!allowed(rc, &err, 0))
            abort();
        if (rc != 0)
            break;
    }
    fdn_event_t *ev = make_event("fuzz.put", "x", 1);
    fdn__spool_uid_t u[1];
    make_uids(u, 1, 0xf00d);
    err = (fdn_error_t)FDN_ERROR_INIT;
    rc = fdn__spool_put(s, (const fdn_event_t *const *)&ev, (const fdn__spool_uid_t *)u, 1, &err);
    /* a spool that counted impossible sizes at open may call itself full: with a message */
    if (!allowed(rc, &err, FDN_EUNAVAILABLE) || (rc != 0 && err.message[0] == '\0'))
        abort();
    fdn_event_free(ev);
    uint64_t events = 0, bytes = 0;
    fdn__spool_usage(s, &events, &bytes);
    fdn__spool_close(s);
    return refused ? SIZE_MAX : replayed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ready)
        setup();
    if (size < 1 || size > 1 << 18)
        return 0;
    unsigned mode = data[0];
    const fdn_fuzz_blob_t *t = &g_tpl[mode % NTEMPLATES];
    size_t fn = 0;
    bool intact = false;
    uint8_t *f = fdn_fuzz_file(data, size, mode & 2, t, &fn, &intact);
    memvfs_remove_db(g_path);
    memvfs_put(g_path, f, fn);
    size_t quarantined = 0;
    size_t got = replay(&quarantined);
    if (intact && mode % NTEMPLATES == 0 && (got != g_tpl_events[0] || quarantined != 0))
        abort(); /* the intact spool gives back every event it holds */
    if (intact && mode % NTEMPLATES == 1 && (got != 0 || quarantined != 4))
        abort(); /* the lying rows are quarantined, not replayed */
    memvfs_remove_db(g_path);
    free(f);
    return 0;
}
