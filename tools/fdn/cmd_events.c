/* DESIGN: fdn events query: read the event store of a data directory offline.
 * Opens the SQLite file read-only (safe while a server runs: WAL readers do not block the
 * writer), filters on the indexed columns in SQL (id, ts, type) and on the correlation id
 * after decoding each record with the library codec.
 * fdn events quarantine: list the batches in the quarantine table of a PostgreSQL store's
 * spool file (docs/events-postgres.md, "Quarantine"), read-only the same way; the records
 * are not decoded (a quarantined batch may be damaged), only the table's columns shown. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include <fdn/events.h>

typedef struct query_opts {
    const char *data_dir;
    const char *type;
    const char *cid;
    int64_t since, until, after_id, limit;
    bool has_since, has_until, desc, json;
} query_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fdn events query --data-dir DIR [--type T] [--correlation-id C]\n"
            "                        [--since TS] [--until TS] [--after-id N] [--limit N]\n"
            "                        [--order asc|desc] [--json]\n"
            "       fdn events quarantine --spool FILE [--limit N] [--json]\n"
            "\n"
            "query: read events stored by 'fdn serve' in DIR/%s, without a running server.\n"
            "Times are in the unit of the events' timestamp field. Default limit 100.\n"
            "quarantine: list the batches a PostgreSQL store's spool FILE\n"
            "(storage.warm.postgres.spool_path) took out of its replay, oldest first\n"
            "(read-only; default limit 100).\n"
            "Output: a table, or one JSON object per line with --json.\n",
            FDN_CLI_EVENTS_FILE);
}

static int parse(int argc, char **argv, query_opts_t *o)
{
    const char *order = NULL;
    const cli_optdef_t defs[] = {
        {.name = "--json", .seen = &o->json},
        {.name = "--data-dir", .str = &o->data_dir},
        {.name = "--type", .str = &o->type},
        {.name = "--correlation-id", .str = &o->cid},
        {.name = "--since",
         .num = &o->since,
         .min = INT64_MIN,
         .max = INT64_MAX,
         .seen = &o->has_since},
        {.name = "--until",
         .num = &o->until,
         .min = INT64_MIN,
         .max = INT64_MAX,
         .seen = &o->has_until},
        {.name = "--after-id", .num = &o->after_id, .min = 0, .max = INT64_MAX},
        {.name = "--limit", .num = &o->limit, .min = 1, .max = INT64_MAX},
        {.name = "--order", .str = &order},
    };
    int rc = cli_parse(argc, argv, "events query", defs, sizeof(defs) / sizeof(defs[0]), usage);
    if (rc != 0)
        return rc;
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        fprintf(stderr, "fdn events query: --order must be asc or desc\n");
        return -1;
    }
    o->desc = order != NULL && strcmp(order, "desc") == 0;
    if (o->data_dir == NULL) {
        fprintf(stderr, "fdn events query: --data-dir DIR is required\n");
        return -1;
    }
    return 0;
}

/* Writes n bytes of a table cell with its control characters (line breaks, tabs, escape
 * sequences) as spaces: a row stays one line whatever a payload or a message holds. */
static void put_cell(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        putchar(c < 0x20 || c == 0x7f ? ' ' : c);
    }
}

/* One table row. DATA: the first 60 bytes of a text payload ("..." when there are more), as
 * put_cell writes them; a binary payload as "<binary, N bytes>". */
static void print_row(const fdn_event_t *ev)
{
    size_t len = 0;
    const char *data = fdn_event_data(ev, &len);
    const char *cid = fdn_event_correlation_id(ev);
    printf("%-8llu %-20lld %-24s %-36s ", (unsigned long long)fdn_event_id(ev),
           (long long)fdn_event_timestamp(ev), fdn_event_type(ev), cid ? cid : "-");
    if (fdn_event_content_type(ev) == FDN_EVENT_CT_BINARY) {
        printf("<binary, %zu bytes>\n", len);
        return;
    }
    if (data != NULL)
        put_cell(data, len > 60 ? 60 : len);
    printf("%s\n", len > 60 ? "..." : "");
}

static int query(const query_opts_t *o)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", o->data_dir, FDN_CLI_EVENTS_FILE);
    struct stat st;
    bool found = stat(path, &st) == 0;
    if (!found || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "fdn events query: no event store at %s%s\n", path,
                found ? " (a directory)" : "");
        return CLI_FAIL;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "fdn events query: cannot open %s: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return CLI_FAIL;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT rec FROM events WHERE id > ?1 AND ts >= ?2 AND ts <= ?3 "
             "AND (?4 IS NULL OR type = ?4) ORDER BY id %s",
             o->desc ? "DESC" : "ASC");
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "fdn events query: %s is not an event store: %s\n", path,
                sqlite3_errmsg(db));
        sqlite3_close(db);
        return CLI_FAIL;
    }
    sqlite3_bind_int64(stmt, 1, o->after_id);
    sqlite3_bind_int64(stmt, 2, o->has_since ? o->since : INT64_MIN);
    sqlite3_bind_int64(stmt, 3, o->has_until ? o->until : INT64_MAX);
    if (o->type != NULL)
        sqlite3_bind_text(stmt, 4, o->type, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 4);
    if (!o->json)
        printf("%-8s %-20s %-24s %-36s %s\n", "ID", "TIMESTAMP", "TYPE", "CORRELATION_ID", "DATA");
    int64_t shown = 0;
    int rc = SQLITE_DONE, result = CLI_OK;
    while (shown < o->limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const void *rec = sqlite3_column_blob(stmt, 0);
        int n = sqlite3_column_bytes(stmt, 0);
        fdn_event_t *ev = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        if (fdn_event_decode(&ev, rec, (size_t)n, &err) != 0) {
            fprintf(stderr, "fdn events query: corrupt record: %s\n", err.message);
            result = CLI_FAIL;
            continue;
        }
        const char *cid = fdn_event_correlation_id(ev);
        if (o->cid == NULL || (cid != NULL && strcmp(cid, o->cid) == 0)) {
            if (o->json) {
                char *js = NULL;
                if (fdn_event_to_json(ev, &js) == 0) {
                    printf("%s\n", js);
                    fdn_free(js);
                }
            } else {
                print_row(ev);
            }
            shown++;
        }
        fdn_event_free(ev);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        /* a damaged or locked store: say so instead of exiting 0 with partial output */
        fprintf(stderr, "fdn events query: cannot read %s: %s\n", path, sqlite3_errmsg(db));
        result = CLI_FAIL;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
}

typedef struct quarantine_opts {
    const char *spool;
    int64_t limit;
    bool json;
} quarantine_opts_t;

static int parse_quarantine(int argc, char **argv, quarantine_opts_t *o)
{
    const cli_optdef_t defs[] = {
        {.name = "--json", .seen = &o->json},
        {.name = "--spool", .str = &o->spool},
        {.name = "--limit", .num = &o->limit, .min = 1, .max = INT64_MAX},
    };
    int rc =
        cli_parse(argc, argv, "events quarantine", defs, sizeof(defs) / sizeof(defs[0]), usage);
    if (rc != 0)
        return rc;
    if (o->spool == NULL) {
        fprintf(stderr, "fdn events quarantine: --spool FILE is required\n");
        return -1;
    }
    return 0;
}

/* A column as text ("" for NULL). */
static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

/* Unix ms as UTC ISO 8601 into buf. */
static void iso_ms(int64_t ms, char *buf, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, cap, "%" PRId64, ms);
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

static int list_quarantine(const quarantine_opts_t *o)
{
    struct stat st;
    bool found = stat(o->spool, &st) == 0;
    if (!found || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "fdn events quarantine: no spool at %s%s\n", o->spool,
                found ? " (a directory)" : "");
        return CLI_FAIL;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(o->spool, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "fdn events quarantine: cannot open %s: %s\n", o->spool,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return CLI_FAIL;
    }
    sqlite3_stmt *stmt = NULL;
    int prc = sqlite3_prepare_v2(db,
                                 "SELECT seq, quarantined_at, error, error_name, n, bytes, message,"
                                 " uids FROM quarantine ORDER BY seq, rowid LIMIT ?",
                                 -1, &stmt, NULL);
    if (prc != SQLITE_OK) {
        /* a spool file from before the quarantine (or another file): say which */
        bool spool =
            sqlite3_prepare_v2(db, "SELECT seq FROM spool LIMIT 0", -1, &stmt, NULL) == SQLITE_OK;
        sqlite3_finalize(stmt);
        if (spool) { /* written before the quarantine existed: nothing quarantined */
            sqlite3_close(db);
            if (!o->json)
                printf("no quarantined batches in %s\n", o->spool);
            return CLI_OK;
        }
        fprintf(stderr, "fdn events quarantine: %s is not an events spool: %s\n", o->spool,
                sqlite3_errmsg(db));
        sqlite3_close(db);
        return CLI_FAIL;
    }
    sqlite3_bind_int64(stmt, 1, o->limit);
    int rc, result = CLI_OK;
    int64_t shown = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(stmt, 0), at = sqlite3_column_int64(stmt, 1);
        int64_t n = sqlite3_column_int64(stmt, 4), bytes = sqlite3_column_int64(stmt, 5);
        char when[64];
        iso_ms(at, when, sizeof when);
        if (o->json) {
            json_t *j =
                json_pack("{s:I, s:s, s:I, s:I, s:s, s:I, s:I, s:s, s:s}", "seq", (json_int_t)seq,
                          "quarantined_at", when, "quarantined_at_ms", (json_int_t)at, "error",
                          (json_int_t)sqlite3_column_int64(stmt, 2), "error_name",
                          col_text(stmt, 3), "events", (json_int_t)n, "bytes", (json_int_t)bytes,
                          "message", col_text(stmt, 6), "uids", col_text(stmt, 7));
            char *js = NULL;
            if (j != NULL)
                (void)fdn_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER, &js, NULL);
            json_decref(j);
            if (js == NULL) {
                fprintf(stderr, "fdn events quarantine: out of memory\n");
                result = CLI_FAIL;
                break;
            }
            printf("%s\n", js);
            fdn_free(js);
        } else {
            if (shown == 0)
                printf("%-8s %-24s %-20s %-8s %-10s %s\n", "SEQ", "QUARANTINED_AT", "ERROR",
                       "EVENTS", "BYTES", "MESSAGE");
            printf("%-8" PRId64 " %-24s %-20s %-8" PRId64 " %-10" PRId64 " ", seq, when,
                   col_text(stmt, 3), n, bytes);
            const char *msg = col_text(stmt, 6);
            put_cell(msg, strlen(msg));
            putchar('\n');
        }
        shown++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && result == CLI_OK) {
        fprintf(stderr, "fdn events quarantine: cannot read %s: %s\n", o->spool,
                sqlite3_errmsg(db));
        result = CLI_FAIL;
    }
    if (result == CLI_OK && shown == 0 && !o->json)
        printf("no quarantined batches in %s\n", o->spool);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
}

int cmd_events(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "quarantine") == 0) {
        quarantine_opts_t q = {.limit = 100};
        int pr = parse_quarantine(argc - 1, argv + 1, &q);
        if (pr != 0)
            return pr > 0 ? CLI_OK : CLI_USAGE;
        return list_quarantine(&q);
    }
    if (strcmp(argv[1], "query") != 0) {
        fprintf(stderr, "fdn events: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return CLI_USAGE;
    }
    query_opts_t o = {0};
    o.limit = 100;
    int pr = parse(argc - 1, argv + 1, &o);
    if (pr != 0)
        return pr > 0 ? CLI_OK : CLI_USAGE;
    return query(&o);
}
