/*
 * DESIGN: the event store's PostgreSQL client (storage/event_pg.h), over libpq's blocking API.
 *
 * Schema (in its own PostgreSQL schema, "fdn" by default, so several stores share a database):
 *   schema_version(version int PRIMARY KEY, applied_at timestamptz)  one row per migration
 *   head(id smallint PRIMARY KEY CHECK (id = 1), position bigint)    the newest position
 *   events(position bigint PRIMARY KEY, event_id uuid UNIQUE, type, correlation_id, parent,
 *          ts (producer's monotonic ns), wall_ns, node, pid, tid, ctype, data bytea,
 *          committed_at timestamptz)
 *   indexes: (type, position), (correlation_id, position), (wall_ns); position is the key.
 * Payloads are stored raw (bytea; PostgreSQL's TOAST compresses large ones itself), so the
 * table is readable with plain SQL.
 *
 * Migrations run at open under pg_advisory_lock(hashtext('fdn.events:' || schema)): two
 * processes starting together take turns, the second sees the version the first wrote and
 * does nothing. Each migration and its schema_version row commit in one transaction. A
 * schema_version above FDN__PG_SCHEMA_VERSION means a newer library migrated the database:
 * open refuses (FDN_EINIT) rather than write rows an older layout does not describe.
 *
 * Appends (positions gap-free and in commit order, exactly once under retries) are in
 * event_pg_append.c, with their own DESIGN comment; this file holds the connection, the schema,
 * the reads and the notifications, and the command helpers both use (event_pg_int.h).
 *
 * Notifications: the head UPDATE calls pg_notify('<schema>_events', newest position); PostgreSQL
 * delivers it only when the transaction commits. Listeners treat it as a hint and page with a
 * position query; a notification lost while a listener was reconnecting only delays it until
 * its next poll.
 *
 * Results are fetched in binary (big-endian integers, raw text and bytea), parameters are sent
 * as text except payloads and the append's arrays (binary). Nothing is interpolated into SQL
 * but the schema name, which is checked against [a-z_][a-z0-9_]* (not pg_*, which PostgreSQL
 * keeps for itself) and written quoted (c->ident: "user" or "order" are keywords and valid
 * names; the channel "<schema>_events" is never one). Rows read back are held to
 * the rules every event keeps (fdn__event_check_fields, as the decoders of stored records
 * are): the table is plain SQL that other programs may write, and a row that breaks them (a
 * type outside [A-Za-z][A-Za-z0-9_.:-]*, a node or correlation id that is not printable
 * ASCII, an unknown content type) fails the read with FDN_ECORRUPT naming its position,
 * rather than reach callers that rely on the rules (the HTTP API writes a type unescaped).
 *
 * Prepared statements: the append (event_pg_append.c) and the two reads made for every batch
 * ("after a position", "a correlation id after a position", oldest first: query_shape) are
 * prepared on a connection by their first use and then only bound and run; a connection is
 * never reused across a server restart (a broken one is closed), so a name never outlives its
 * statement. The session may still lose them while the connection lives (DEALLOCATE ALL or
 * DISCARD ALL run on it: a pgbouncer pool in transaction mode, a server-side reset): a
 * statement that fails because its name is not prepared (SQLSTATE 26000, nothing of it ran)
 * forgets its flag, is prepared again and run once more, within the same deadline; each other
 * lost statement is found the same way on its next use. Other queries are planned for their
 * values each time.
 *
 * Cuts: every wait on the server (wait_sock: commands and connecting) also polls the calling
 * thread's cut descriptor (core/cancel.h) when it has one: once readable, the wait ends as at
 * the deadline (the connection broken), see event_pg_backend.c "Cuts". A descriptor that
 * is not open (a stale setting: POLLNVAL) or in error is dropped for the rest of the wait,
 * not taken for a cut nor for the socket's readiness (it answers every poll at once).
 * The LISTEN wait (fdn__pg_wait) polls it too and ends with "no notification", the idle
 * connection kept: the store's follower names a descriptor of its own (for that wait and its
 * reads), which its stop writes as it begins; the store's writer names another, written at
 * the stop's deadline (services/event_shared.c, "Stopping").
 *
 * Threads: none of its own; a connection is used by one thread at a time.
 */
#include "storage/event_pg.h"
#include "storage/event_pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <libpq-fe.h>

#include "core/alloc.h"
#include "core/cancel.h"
#include "logic/event_int.h"

/* ---- helpers (event_pg_int.h) ---- */

static bool schema_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FDN__PG_SCHEMA_MAX || strncmp(s, "pg_", 3) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || ch == '_' || (i > 0 && ch >= '0' && ch <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* libpq's message without its trailing newline, into buf. */
const char *fdn__pg_conn_msg(PGconn *conn, char *buf, size_t cap)
{
    const char *m = conn ? PQerrorMessage(conn) : "out of memory";
    snprintf(buf, cap, "%s", m);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

bool fdn__pg_refused(const fdn__pg_t *c)
{
    return c != NULL && c->refused;
}

bool fdn__pg_connected(const fdn__pg_t *c)
{
    return c != NULL && !c->broken && c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK;
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fdn__pg_set_deadline(fdn__pg_t *c, int64_t deadline_ns)
{
    if (c != NULL)
        c->deadline = deadline_ns;
}

/* Wait until the socket is ready for ev (POLLIN/POLLOUT) or the deadline passes: 1 ready,
 * 0 deadline (the connection is marked broken and timed out) or the thread's cut descriptor
 * turned readable (marked broken only), -1 poll failed. */
static int wait_sock(fdn__pg_t *c, short ev)
{
    int cut = fdn__cut_fd(); /* -1: none, or not pollable (dropped below) */
    for (;;) {
        int t = -1;
        if (c->deadline != 0) {
            int64_t left = c->deadline - mono_now();
            if (left <= 0) {
                c->timed_out = true;
                c->broken = true;
                return 0;
            }
            int64_t ms = (left + 999999) / 1000000;
            t = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        /* the thread's cut descriptor (core/cancel.h), when its caller set one: readable,
         * the call ends now, as at its deadline (the connection, mid-command, is broken) */
        struct pollfd pfd[2] = {{.fd = PQsocket(c->conn), .events = ev},
                                {.fd = cut, .events = POLLIN}};
        if (pfd[0].fd < 0)
            return -1;
        c->waits++;
        int k = poll(pfd, cut >= 0 ? 2 : 1, t);
        if (k > 0 && cut >= 0 && pfd[1].revents != 0) {
            if (fdn__cut_revents(pfd[1].revents)) {
                c->broken = true;
                return 0;
            }
            /* closed or in error (POLLNVAL, POLLERR): it can no longer turn readable and
             * would answer every poll at once (a busy loop): this wait goes on without it */
            cut = -1;
        }
        if (k > 0 && pfd[0].revents != 0)
            return 1;
        if (k < 0 && errno != EINTR)
            return -1;
    }
}

/* Send a command: with parameters (n >= 0: extended protocol, results in resfmt) or as a
 * simple query (n < 0: may hold several statements). false: not sent (connection broken). */
bool fdn__pg_q_send(fdn__pg_t *c, const char *sql, int n, const char *const *vals, const int *lens,
                    const int *fmts, int resfmt)
{
    c->timed_out = false;
    int ok = n >= 0 ? PQsendQueryParams(c->conn, sql, n, NULL, vals, lens, fmts, resfmt)
                    : PQsendQuery(c->conn, sql);
    if (!ok)
        c->broken = true;
    return ok != 0;
}

static bool res_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Flush what q_send queued, then read every result of the command, never waiting past the
 * deadline. Returns the result to judge (the first that failed, else the last; the caller
 * PQclears it), or NULL when the connection failed or the deadline passed (c->broken). */
PGresult *fdn__pg_q_collect(fdn__pg_t *c)
{
    for (;;) {
        int f = PQflush(c->conn);
        if (f == 0)
            break;
        if (f < 0 || wait_sock(c, POLLOUT | POLLIN) <= 0) {
            c->broken = true;
            return NULL;
        }
        if (!PQconsumeInput(c->conn)) {
            c->broken = true;
            return NULL;
        }
    }
    PGresult *keep = NULL;
    for (;;) {
        while (PQisBusy(c->conn)) {
            if (wait_sock(c, POLLIN) <= 0 || !PQconsumeInput(c->conn)) {
                c->broken = true;
                if (keep != NULL)
                    PQclear(keep);
                return NULL;
            }
        }
        PGresult *r = PQgetResult(c->conn);
        if (r == NULL)
            break;
        if (keep == NULL) {
            keep = r;
        } else if (!res_ok(keep)) {
            PQclear(r); /* the first failure is the one to report */
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    if (keep == NULL && PQstatus(c->conn) != CONNECTION_OK)
        c->broken = true;
    return keep;
}

/* q_send + q_collect. */
PGresult *fdn__pg_q_exec(fdn__pg_t *c, const char *sql, int n, const char *const *vals,
                         const int *lens, const int *fmts, int resfmt)
{
    if (!fdn__pg_q_send(c, sql, n, vals, lens, fmts, resfmt))
        return NULL;
    return fdn__pg_q_collect(c);
}

/* The code for a failed command: the connection's state first, then the SQLSTATE. */
int fdn__pg_fail_res(fdn__pg_t *c, PGresult *r, fdn_error_t *err, const char *what)
{
    char buf[256];
    int code = FDN_EUNAVAILABLE;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* the rows refused for good (fdn__pg_refused): a data exception, or an integrity
     * violation on the events table other than its position key */
    const char *table = r ? PQresultErrorField(r, PG_DIAG_TABLE_NAME) : NULL;
    const char *cons = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    c->refused = state != NULL && !c->broken && PQstatus(c->conn) == CONNECTION_OK &&
                 (strncmp(state, "22", 2) == 0 ||
                  (strncmp(state, "23", 2) == 0 && table != NULL && strcmp(table, "events") == 0 &&
                   (cons == NULL || strcmp(cons, "events_pkey") != 0)));
    if (r == NULL && c->timed_out) {
        return fdn_err_set(err, code, "postgres: %s: no answer within the deadline", what);
    } else if (c->broken || PQstatus(c->conn) != CONNECTION_OK) {
        c->broken = true;
    } else if (state != NULL && strcmp(state, "23505") == 0) {
        code = FDN_EEXIST;
    } else if (state != NULL && (strcmp(state, "42501") == 0 || strncmp(state, "28", 2) == 0)) {
        code = FDN_EACCES; /* insufficient privilege, invalid authorization */
    } else if (state != NULL && strncmp(state, "22", 2) == 0) {
        code = FDN_EINVAL; /* data exception: bad text encoding, value out of range */
    } else if (c->refused) {
        code = FDN_EINVAL; /* another integrity violation by the rows: not "unavailable" */
    }
    const char *m = r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : NULL;
    if (m != NULL) {
        snprintf(buf, sizeof(buf), "%s", m);
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
    } else {
        fdn__pg_conn_msg(c->conn, buf, sizeof(buf));
    }
    if (r != NULL)
        PQclear(r);
    return fdn_err_set(err, code, "postgres: %s: %s", what, buf);
}

/* Run a command with text parameters; binary results. *out owns the result on success. */
int fdn__pg_run(fdn__pg_t *c, const char *sql, int n, const char *const *vals, ExecStatusType want,
                PGresult **out, fdn_error_t *err, const char *what)
{
    if (!fdn__pg_connected(c))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: %s: not connected", what);
    PGresult *r = fdn__pg_q_exec(c, sql, n, vals, NULL, NULL, 1);
    if (r == NULL || PQresultStatus(r) != want)
        return fdn__pg_fail_res(c, r, err, what);
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Run a command or a script of several (simple query protocol, no parameters). */
int fdn__pg_script(fdn__pg_t *c, const char *sql, fdn_error_t *err, const char *what)
{
    if (!fdn__pg_connected(c))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: %s: not connected", what);
    PGresult *r = fdn__pg_q_exec(c, sql, -1, NULL, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return fdn__pg_fail_res(c, r, err, what);
    PQclear(r);
    return 0;
}

int fdn__pg_cmd(fdn__pg_t *c, const char *sql, fdn_error_t *err)
{
    return fdn__pg_script(c, sql, err, sql);
}

bool fdn__pg_lost_statement(const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL && strcmp(state, "26000") == 0;
}

void fdn__pg_rollback(fdn__pg_t *c)
{
    if (fdn__pg_connected(c)) {
        PGresult *r = fdn__pg_q_exec(c, "ROLLBACK", -1, NULL, NULL, NULL, 0);
        if (r != NULL)
            PQclear(r);
    }
}

static uint64_t be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | u[i];
    return v;
}

uint64_t fdn__pg_get_int(const PGresult *r, int row, int col)
{
    int len = PQgetlength(r, row, col);
    const char *p = PQgetvalue(r, row, col);
    if (len == 8)
        return be64(p);
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = (v << 8) | (unsigned char)p[i];
    if (len == 4)
        return (uint64_t)(int64_t)(int32_t)(uint32_t)v;
    if (len == 2)
        return (uint64_t)(int64_t)(int16_t)(uint16_t)v;
    return v;
}

/* ---- open, schema, migrations ---- */

static const char *const MIGRATIONS[FDN__PG_SCHEMA_VERSION] = {
    /* 1: the first layout */
    "CREATE TABLE @S.head (id smallint PRIMARY KEY CHECK (id = 1), position bigint NOT NULL);"
    "INSERT INTO @S.head VALUES (1, 0);"
    "CREATE TABLE @S.events ("
    " position bigint PRIMARY KEY,"
    " event_id uuid NOT NULL UNIQUE,"
    " type text NOT NULL,"
    " correlation_id text NOT NULL,"
    " parent bigint NOT NULL,"
    " ts bigint NOT NULL,"
    " wall_ns bigint NOT NULL,"
    " node text NOT NULL,"
    " pid bigint NOT NULL,"
    " tid bigint NOT NULL,"
    " ctype smallint NOT NULL,"
    " data bytea NOT NULL,"
    " committed_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX events_type_idx ON @S.events (type, position);"
    "CREATE INDEX events_corr_idx ON @S.events (correlation_id, position);"
    "CREATE INDEX events_wall_idx ON @S.events (wall_ns);",
};

/* tmpl with every "@S" replaced by the schema's SQL name; the length written (cap when too
 * long). */
static size_t subst(char *out, size_t cap, const char *tmpl, const char *schema)
{
    size_t o = 0, sl = strlen(schema);
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '@' && p[1] == 'S') {
            if (o + sl >= cap)
                return cap;
            memcpy(out + o, schema, sl);
            o += sl;
            p++;
        } else {
            if (o + 1 >= cap)
                return cap;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

static int migrate_locked(fdn__pg_t *c, fdn_error_t *err)
{
    char sql[2048];
    subst(sql, sizeof(sql),
          "CREATE SCHEMA IF NOT EXISTS @S;"
          "CREATE TABLE IF NOT EXISTS @S.schema_version (version integer PRIMARY KEY,"
          " applied_at timestamptz NOT NULL DEFAULT now())",
          c->ident);
    int rc = fdn__pg_script(c, sql, err, "create schema");
    if (rc != 0)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT coalesce(max(version), 0)::bigint FROM %s.schema_version",
             c->ident);
    PGresult *r = NULL;
    rc = fdn__pg_run(c, sql, 0, NULL, PGRES_TUPLES_OK, &r, err, "schema version");
    if (rc != 0)
        return rc;
    int64_t v = (int64_t)fdn__pg_get_int(r, 0, 0);
    PQclear(r);
    if (v > FDN__PG_SCHEMA_VERSION)
        return fdn_err_set(err, FDN_EINIT,
                           "postgres: schema %s is at version %" PRId64
                           ", newer than this library knows (%d): upgrade the library",
                           c->schema, v, FDN__PG_SCHEMA_VERSION);
    for (int64_t m = v + 1; m <= FDN__PG_SCHEMA_VERSION; m++) {
        char body[4096];
        size_t len = subst(body, sizeof(body), MIGRATIONS[m - 1], c->ident);
        if (len < sizeof(body))
            len += (size_t)snprintf(body + len, sizeof(body) - len,
                                    ";INSERT INTO %s.schema_version (version) VALUES (%" PRId64 ")",
                                    c->ident, m);
        if (len >= sizeof(body))
            return fdn_err_set(err, FDN_EINTERNAL, "postgres: migration %" PRId64 " too long", m);
        rc = fdn__pg_cmd(c, "BEGIN", err);
        if (rc == 0)
            rc = fdn__pg_script(c, body, err, "migration");
        if (rc == 0)
            rc = fdn__pg_cmd(c, "COMMIT", err);
        if (rc != 0) {
            fdn__pg_rollback(c);
            return rc; /* (migrate says which) */
        }
    }
    return 0;
}

static int migrate(fdn__pg_t *c, fdn_error_t *err)
{
    char key[FDN__PG_SCHEMA_MAX + 16];
    snprintf(key, sizeof(key), "fdn.events:%s", c->schema);
    const char *vals[1] = {key};
    int rc = fdn__pg_run(c, "SELECT pg_advisory_lock(hashtext($1))", 1, vals, PGRES_TUPLES_OK, NULL,
                         err, "advisory lock");
    if (rc != 0)
        return rc;
    rc = migrate_locked(c, err);
    /* the server answered, refusing a statement of the migration (a table there that is not
     * ours: "relation head already exists", a schema_version without our columns): the
     * schema is not one this library can use (FDN_EINIT, the server's words kept), not a
     * server away (FDN_EUNAVAILABLE, which a caller would retry for ever); privileges stay
     * FDN_EACCES, a connection lost or a deadline met stays FDN_EUNAVAILABLE */
    if (rc != 0 && rc != FDN_EACCES && rc != FDN_EINIT && rc != FDN_EINTERNAL &&
        fdn__pg_connected(c)) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err != NULL ? err->message : "");
        rc = fdn_err_set(err, FDN_EINIT, "%s (schema %s is not an event log this library made)",
                         msg, c->schema);
    }
    fdn_error_t e2 = FDN_ERROR_INIT;
    fdn__pg_run(c, "SELECT pg_advisory_unlock(hashtext($1))", 1, vals, PGRES_TUPLES_OK, NULL, &e2,
                "advisory unlock");
    return rc;
}

static int pg_connect(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                      bool do_migrate, fdn_error_t *err);

int fdn__pg_open(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                 fdn_error_t *err)
{
    return pg_connect(out, url, schema, connect_ms, true, err);
}

int fdn__pg_reopen(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                   fdn_error_t *err)
{
    return pg_connect(out, url, schema, connect_ms, false, err);
}

static int pg_connect(fdn__pg_t **out, const char *url, const char *schema, int64_t connect_ms,
                      bool do_migrate, fdn_error_t *err)
{
    if (out == NULL || url == NULL)
        return fdn_err_set(err, FDN_EINVAL, "postgres: url missing");
    if (schema == NULL)
        schema = "fdn";
    if (!schema_ok(schema))
        return fdn_err_set(err, FDN_EINVAL,
                           "postgres: schema name '%s' is not [a-z_][a-z0-9_]* of at most %d"
                           " characters, or begins with pg_ (PostgreSQL's own schemas)",
                           schema, FDN__PG_SCHEMA_MAX);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", perr ? perr : "out of memory");
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        PQfreemem(perr);
        return fdn_err_set(err, perr ? FDN_EINVAL : FDN_ENOMEM, "postgres: bad url: %s", buf);
    }
    PQconninfoFree(opts);

    fdn__pg_t *c = fdn__calloc(1, sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    snprintf(c->schema, sizeof(c->schema), "%s", schema);
    snprintf(c->ident, sizeof(c->ident), "\"%s\"", schema);
    snprintf(c->channel, sizeof(c->channel), "%s_events", schema);

    int64_t secs = connect_ms <= 0 ? 10 : (connect_ms + 999) / 1000;
    if (secs < 2)
        secs = 2;
    char tmo[24];
    snprintf(tmo, sizeof(tmo), "%" PRId64, secs);
    const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *const vals[] = {url, tmo, "fdn", NULL};
    /* connect without blocking, polling the socket until connect_ms has passed (libpq's own
     * connect_timeout counts whole seconds, per host) */
    c->conn = PQconnectStartParams(keys, vals, 1);
    if (c->conn == NULL) {
        fdn__free(c);
        return fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
    }
    int64_t cms = connect_ms > 0 ? connect_ms : 10000;
    c->deadline = mono_now() + cms * 1000000;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(c->conn) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
           ps != PGRES_POLLING_FAILED) {
        int w = wait_sock(c, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT);
        if (w <= 0)
            break;
        ps = PQconnectPoll(c->conn);
    }
    if (ps != PGRES_POLLING_OK || PQstatus(c->conn) != CONNECTION_OK) {
        char buf[256];
        if (c->timed_out)
            snprintf(buf, sizeof(buf), "no answer within %" PRId64 " ms", cms);
        else
            fdn__pg_conn_msg(c->conn, buf, sizeof(buf));
        int code = FDN_ECONNREFUSED;
        if (PQconnectionNeedsPassword(c->conn) || strstr(buf, "authentication failed") ||
            strstr(buf, "does not exist") || strstr(buf, "no pg_hba.conf entry") ||
            strstr(buf, "password"))
            code = FDN_EACCES;
        fdn__pg_close(c);
        return fdn_err_set(err, code, "postgres: cannot connect: %s", buf);
    }
    /* every command is sent without blocking and awaited within the caller's deadline; the
     * migration (fdn__pg_open) gets the connection's bound again, plus ten seconds for a
     * migration that a concurrent process holds under the advisory lock */
    if (PQsetnonblocking(c->conn, 1) != 0) {
        fdn__pg_close(c);
        return fdn_err_set(err, FDN_EIO, "postgres: cannot make the connection non-blocking");
    }
    /* a reconnection (no migration) keeps the connection's own bound for its first command:
     * it is made within a call's deadline, which the migration's allowance would overrun */
    if (do_migrate)
        c->deadline = mono_now() + (cms + 10000) * 1000000;
    PGresult *r = fdn__pg_q_exec(c, "SET client_min_messages = warning", -1, NULL, NULL, NULL, 0);
    if (r == NULL) { /* no answer within the bound, or the connection failed: not connected */
        char buf[256];
        if (c->timed_out)
            snprintf(buf, sizeof(buf), "no answer within %" PRId64 " ms", cms);
        else
            fdn__pg_conn_msg(c->conn, buf, sizeof(buf));
        fdn__pg_close(c);
        return fdn_err_set(err, FDN_ECONNREFUSED, "postgres: cannot connect: %s", buf);
    }
    PQclear(r);
    int rc = do_migrate ? migrate(c, err) : 0;
    c->deadline = 0;
    if (rc != 0) {
        fdn__pg_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void fdn__pg_close(fdn__pg_t *c)
{
    if (c == NULL)
        return;
    if (c->conn != NULL)
        PQfinish(c->conn);
    fdn__free(c);
}

int fdn__pg_uuid_gen(fdn__pg_uuid_t *ids, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char b[16];
        size_t got = 0;
        while (got < sizeof(b)) {
            ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return FDN_EIO;
            }
            got += (size_t)k;
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        char *s = ids[i].s;
        size_t o = 0;
        for (int k = 0; k < 16; k++) {
            if (k == 4 || k == 6 || k == 8 || k == 10)
                s[o++] = '-';
            s[o++] = hex[b[k] >> 4];
            s[o++] = hex[b[k] & 15];
        }
        s[o] = '\0';
    }
    return 0;
}

uint64_t fdn__pg_test_waits(const fdn__pg_t *c)
{
    return c->waits;
}

int fdn__pg_exec(fdn__pg_t *c, const char *sql, fdn_error_t *err)
{
    if (c == NULL || sql == NULL)
        return fdn_err_set(err, FDN_EINVAL, "postgres: exec: missing argument");
    return fdn__pg_script(c, sql, err, "exec");
}

const char *fdn__pg_schema(const fdn__pg_t *c)
{
    return c->schema;
}

void fdn__pg_test_fail_commit(fdn__pg_t *c, fdn__pg_fail_t mode)
{
    c->fail = mode;
}

/* ---- reads ---- */

#define SELECT_COLS                                                                                \
    "position, type, correlation_id, parent, ts, wall_ns, node, pid, tid, ctype, data"

/* The events of result rows. */
static int rows_to_list(const PGresult *r, fdn_event_list_t **out, fdn_error_t *err)
{
    int n = PQntuples(r);
    size_t bytes = 0;
    fdn__event_fields_t f;
    fdn_error_t why = FDN_ERROR_INIT; /* set only when a row breaks the rules */
    for (int pass = 0; pass < 2; pass++) {
        fdn_event_list_t *l = NULL;
        if (pass == 1) {
            l = fdn__event_list_alloc((size_t)n, bytes);
            if (l == NULL)
                return fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
        }
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            memset(&f, 0, sizeof(f));
            f.id = fdn__pg_get_int(r, i, 0);
            f.type = PQgetvalue(r, i, 1);
            f.type_len = (size_t)PQgetlength(r, i, 1);
            f.corr = PQgetvalue(r, i, 2);
            f.corr_len = (size_t)PQgetlength(r, i, 2);
            f.parent = fdn__pg_get_int(r, i, 3);
            f.ts = (int64_t)fdn__pg_get_int(r, i, 4);
            f.wall = (int64_t)fdn__pg_get_int(r, i, 5);
            f.node = PQgetvalue(r, i, 6);
            f.node_len = (size_t)PQgetlength(r, i, 6);
            f.pid = (uint32_t)fdn__pg_get_int(r, i, 7);
            f.tid = (uint32_t)fdn__pg_get_int(r, i, 8);
            uint64_t ct = fdn__pg_get_int(r, i, 9); /* a smallint: may be past a byte */
            f.ctype = ct > UINT8_MAX ? UINT8_MAX : (uint8_t)ct;
            f.data = PQgetvalue(r, i, 10);
            f.data_len = (size_t)PQgetlength(r, i, 10);
            if (f.type_len > FDN_EVENT_TYPE_MAX || f.corr_len > FDN_EVENT_CORR_MAX ||
                f.node_len > FDN_EVENT_NODE_MAX || f.data_len > FDN_EVENT_DATA_MAX) {
                fdn_event_list_free(l);
                return fdn_err_set(err, FDN_ECORRUPT,
                                   "postgres: row at position %" PRIu64 " has a field too long",
                                   f.id);
            }
            /* the rules every event keeps (a row written by plain SQL or another program
             * may break them, and the HTTP API writes a type unescaped): as the decoders
             * of stored records do (the data's JSON is not parsed again) */
            if (pass == 0 && fdn__event_check_fields(&f, false, &why) != 0)
                return fdn_err_set(err, FDN_ECORRUPT,
                                   "postgres: row at position %" PRIu64
                                   " breaks the event rules: %s",
                                   f.id, why.message);
            if (pass == 0) {
                bytes += fdn__event_alloc_size(&f);
            } else {
                l->items[i] = fdn__event_place(fdn__event_list_mem(l, off), &f);
                off += fdn__event_alloc_size(&f);
            }
        }
        if (pass == 1)
            *out = l;
    }
    return 0;
}

/* A position as the bigint a statement compares with: one past the largest bigint (ids are
 * uint64_t; no position gets there) as the largest, which holds nothing either, so that a
 * cursor or a bound past it means what it means in memory (a value past it PostgreSQL
 * refuses: "bigint out of range"). */
static uint64_t pos_arg(uint64_t pos)
{
    return pos > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : pos;
}

int fdn__pg_get(fdn__pg_t *c, uint64_t pos, fdn_event_t **out, fdn_error_t *err)
{
    if (c == NULL || out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "postgres: get: missing argument");
    if (pos != pos_arg(pos)) /* past every position */
        return fdn_err_set(err, FDN_ENOENT, "postgres: no event at position %" PRIu64, pos);
    char sql[256], num[24];
    snprintf(sql, sizeof(sql), "SELECT " SELECT_COLS " FROM %s.events WHERE position = $1",
             c->ident);
    snprintf(num, sizeof(num), "%" PRIu64, pos);
    const char *vals[1] = {num};
    PGresult *r = NULL;
    int rc = fdn__pg_run(c, sql, 1, vals, PGRES_TUPLES_OK, &r, err, "get");
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return fdn_err_set(err, FDN_ENOENT, "postgres: no event at position %" PRIu64, pos);
    }
    fdn_event_list_t *l = NULL;
    rc = rows_to_list(r, &l, err);
    PQclear(r);
    if (rc != 0)
        return rc;
    rc = fdn_event_copy(out, fdn_event_list_at(l, 0));
    fdn_event_list_free(l);
    return rc;
}

/* The SQL and text parameters of a query (vals point into num or q's strings). */
static int build_query(const fdn__pg_t *c, const fdn__pg_query_t *q, char *sql, size_t cap,
                       const char **vals, char (*num)[24])
{
    int n = 0;
    size_t o =
        (size_t)snprintf(sql, cap, "SELECT " SELECT_COLS " FROM %s.events WHERE true", c->ident);
    if (q->type != NULL) {
        vals[n] = q->type;
        o += (size_t)snprintf(sql + o, cap - o, " AND type = $%d", ++n);
    }
    if (q->correlation_id != NULL) {
        vals[n] = q->correlation_id;
        o += (size_t)snprintf(sql + o, cap - o, " AND correlation_id = $%d", ++n);
    }
    if (q->wall_start != INT64_MIN) {
        snprintf(num[n], 24, "%" PRId64, q->wall_start);
        vals[n] = num[n];
        o += (size_t)snprintf(sql + o, cap - o, " AND wall_ns >= $%d::bigint", ++n);
    }
    if (q->wall_end != INT64_MAX) {
        snprintf(num[n], 24, "%" PRId64, q->wall_end);
        vals[n] = num[n];
        o += (size_t)snprintf(sql + o, cap - o, " AND wall_ns <= $%d::bigint", ++n);
    }
    if (q->after != 0) {
        snprintf(num[n], 24, "%" PRIu64, pos_arg(q->after));
        vals[n] = num[n];
        o += (size_t)snprintf(sql + o, cap - o, " AND position > $%d::bigint", ++n);
    }
    if (q->before != 0) {
        snprintf(num[n], 24, "%" PRIu64, pos_arg(q->before));
        vals[n] = num[n];
        o += (size_t)snprintf(sql + o, cap - o, " AND position < $%d::bigint", ++n);
    }
    /* LIMIT is a bigint: a limit past the largest (the store asks for limit + offset) is no
     * limit, as in memory, not a value PostgreSQL refuses */
    uint64_t lim = (uint64_t)q->limit > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : q->limit;
    snprintf(num[n], 24, "%" PRIu64, lim);
    vals[n] = num[n];
    snprintf(sql + o, cap - o, " ORDER BY position%s LIMIT $%d::bigint",
             q->descending ? " DESC" : "", ++n);
    return n;
}

/* The prepared statement for q's shape (its bit in c->qprep), or -1: the reads the store
 * makes for every batch, "after a position" (the writer's and the follower's catch-up) and
 * "a correlation id after a position" (correlation lookups), oldest first. Their plans do not
 * depend on the values (the primary key, the correlation index), so a generic plan is as good;
 * other shapes are planned for their values each time. */
static int query_shape(const fdn__pg_query_t *q)
{
    if (q->descending || q->type != NULL || q->wall_start != INT64_MIN ||
        q->wall_end != INT64_MAX || q->before != 0)
        return -1;
    return (q->correlation_id != NULL ? 1 : 0) | (q->after != 0 ? 2 : 0);
}

/* fdn__pg_run of a query prepared on this connection under the name of its shape (prepared
 * by its first use). A session that lost the statement (DEALLOCATE ALL, DISCARD ALL:
 * fdn__pg_lost_statement) has it prepared again and run once more, within the deadline. */
static int run_prepared(fdn__pg_t *c, int shape, const char *sql, int n, const char *const *vals,
                        PGresult **out, fdn_error_t *err)
{
    char name[16];
    snprintf(name, sizeof(name), "fdn_q%d", shape);
    if (!fdn__pg_connected(c))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: query: not connected");
    PGresult *r = NULL;
    for (int attempt = 0;; attempt++) {
        if ((c->qprep & (1u << shape)) == 0) {
            c->timed_out = false;
            if (!PQsendPrepare(c->conn, name, sql, n, NULL)) {
                c->broken = true;
                return fdn__pg_fail_res(c, NULL, err, "prepare a query");
            }
            r = fdn__pg_q_collect(c);
            if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
                return fdn__pg_fail_res(c, r, err, "prepare a query");
            PQclear(r);
            c->qprep |= 1u << shape;
        }
        c->timed_out = false;
        if (!PQsendQueryPrepared(c->conn, name, n, vals, NULL, NULL, 1)) {
            c->broken = true;
            return fdn__pg_fail_res(c, NULL, err, "query");
        }
        r = fdn__pg_q_collect(c);
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK)
            break;
        if (attempt > 0 || c->broken || !fdn__pg_lost_statement(r))
            return fdn__pg_fail_res(c, r, err, "query");
        PQclear(r); /* the session lost the statement: prepare it again */
        c->qprep &= ~(1u << shape);
    }
    *out = r;
    return 0;
}

/* Whether s (NULL: no filter) could be an event's type or correlation id as far as its bytes
 * go: printable ASCII only (the rules keep both to it). One that is not matches no event, and
 * its bytes may not even be text the server takes (not UTF-8). */
static bool ascii_text(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

int fdn__pg_query(fdn__pg_t *c, const fdn__pg_query_t *q, fdn_event_list_t **out, fdn_error_t *err)
{
    if (c == NULL || q == NULL || out == NULL || q->limit == 0)
        return fdn_err_set(err, FDN_EINVAL, "postgres: query: missing argument or limit 0");
    if (!ascii_text(q->type) || !ascii_text(q->correlation_id)) { /* no event matches */
        *out = fdn__event_list_alloc(0, 0);
        return *out != NULL ? 0 : fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
    }
    char sql[768], num[8][24];
    const char *vals[8];
    int n = build_query(c, q, sql, sizeof(sql), vals, num);
    PGresult *r = NULL;
    int shape = query_shape(q);
    int rc = shape >= 0 ? run_prepared(c, shape, sql, n, vals, &r, err)
                        : fdn__pg_run(c, sql, n, vals, PGRES_TUPLES_OK, &r, err, "query");
    if (rc != 0)
        return rc;
    rc = rows_to_list(r, out, err);
    PQclear(r);
    return rc;
}

int fdn__pg_explain(fdn__pg_t *c, const fdn__pg_query_t *q, char **out, fdn_error_t *err)
{
    if (c == NULL || q == NULL || out == NULL || q->limit == 0)
        return fdn_err_set(err, FDN_EINVAL, "postgres: explain: missing argument or limit 0");
    char sql[800], num[8][24];
    const char *vals[8];
    memcpy(sql, "EXPLAIN ", 8);
    int n = build_query(c, q, sql + 8, sizeof(sql) - 8, vals, num);
    PGresult *r = NULL;
    /* text results: EXPLAIN's lines */
    if (!fdn__pg_connected(c))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: explain: not connected");
    r = fdn__pg_q_exec(c, sql, n, vals, NULL, NULL, 0);
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK)
        return fdn__pg_fail_res(c, r, err, "explain");
    size_t len = 1;
    for (int i = 0; i < PQntuples(r); i++)
        len += (size_t)PQgetlength(r, i, 0) + 1;
    char *s = fdn__malloc(len);
    if (s == NULL) {
        PQclear(r);
        return fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
    }
    size_t o = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        size_t k = (size_t)PQgetlength(r, i, 0);
        memcpy(s + o, PQgetvalue(r, i, 0), k);
        o += k;
        s[o++] = '\n';
    }
    s[o] = '\0';
    PQclear(r);
    *out = s;
    return 0;
}

int fdn__pg_head(fdn__pg_t *c, uint64_t *out, fdn_error_t *err)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT position FROM %s.head WHERE id = 1", c->ident);
    PGresult *r = NULL;
    int rc = fdn__pg_run(c, sql, 0, NULL, PGRES_TUPLES_OK, &r, err, "head");
    if (rc != 0)
        return rc;
    *out = PQntuples(r) ? fdn__pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/* The most rows one prune transaction deletes (tests may lower it). */
uint32_t fdn__pg_prune_chunk = FDN__PG_PRUNE_CHUNK;

/* Deletes in statements of at most fdn__pg_prune_chunk positions, each its own (implicit)
 * transaction, oldest first: one DELETE of a large backlog held its row locks and WAL for as
 * long as it ran, and past the deadline it failed although the server went on to commit it.
 * A chunk seeks the oldest position from `at` and deletes the positions within chunk of it
 * (below `below`), so processes pruning at once each advance, and a gap costs nothing. Before
 * each chunk the deadline is checked: past it, the prune stops with FDN_EUNAVAILABLE and
 * *count says the rows of the chunks done (committed); the rest is left to the next run. */
int fdn__pg_prune_below(fdn__pg_t *c, uint64_t below, uint64_t *count, fdn_error_t *err)
{
    char sql[512], num[3][24];
    snprintf(sql, sizeof(sql),
             "WITH lo AS (SELECT min(position) AS p FROM %s.events WHERE position >= $1::bigint),"
             " d AS (DELETE FROM %s.events e USING lo WHERE e.position >= lo.p AND e.position <"
             " $2::bigint AND e.position - lo.p < $3::bigint RETURNING 1)"
             " SELECT lo.p, (SELECT count(*) FROM d) FROM lo",
             c->ident, c->ident);
    uint64_t chunk = fdn__pg_prune_chunk > 0 ? fdn__pg_prune_chunk : 1;
    uint64_t total = 0, at = 0;
    below = pos_arg(below);
    int rc = 0;
    while (at < below) {
        if (c->deadline != 0 && mono_now() >= c->deadline) {
            rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                             "postgres: prune: deadline reached after %" PRIu64
                             " rows deleted; the rest is left to the next prune",
                             total);
            break;
        }
        snprintf(num[0], sizeof(num[0]), "%" PRIu64, at);
        snprintf(num[1], sizeof(num[1]), "%" PRIu64, below);
        snprintf(num[2], sizeof(num[2]), "%" PRIu64, chunk);
        const char *vals[3] = {num[0], num[1], num[2]};
        PGresult *r = NULL;
        rc = fdn__pg_run(c, sql, 3, vals, PGRES_TUPLES_OK, &r, err, "prune");
        if (rc != 0)
            break;
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) { /* no position left from at */
            PQclear(r);
            break;
        }
        uint64_t lo = fdn__pg_get_int(r, 0, 0);
        total += fdn__pg_get_int(r, 0, 1);
        PQclear(r);
        if (lo >= below)
            break;
        at = lo + chunk;
    }
    if (count != NULL)
        *count = total;
    return rc;
}

int fdn__pg_stats(fdn__pg_t *c, uint64_t *count, uint64_t *oldest, uint64_t *newest,
                  fdn_error_t *err)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0)"
             " FROM %s.events",
             c->ident);
    PGresult *r = NULL;
    int rc = fdn__pg_run(c, sql, 0, NULL, PGRES_TUPLES_OK, &r, err, "stats");
    if (rc != 0)
        return rc;
    *count = fdn__pg_get_int(r, 0, 0);
    *oldest = fdn__pg_get_int(r, 0, 1);
    *newest = fdn__pg_get_int(r, 0, 2);
    PQclear(r);
    return 0;
}

/* ---- notifications ---- */

int fdn__pg_listen(fdn__pg_t *c, fdn_error_t *err)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "LISTEN %s", c->channel);
    return fdn__pg_cmd(c, sql, err);
}

/* Take the notifications libpq has read; 1 when one was ours. */
static int drain(fdn__pg_t *c, uint64_t *head)
{
    int got = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(c->conn)) != NULL) {
        if (strcmp(nt->relname, c->channel) == 0) {
            uint64_t p = strtoull(nt->extra, NULL, 10);
            if (head != NULL && p > *head)
                *head = p;
            got = 1;
        }
        PQfreemem(nt);
    }
    return got;
}

int fdn__pg_wait(fdn__pg_t *c, int64_t timeout_ms, uint64_t *head)
{
    if (!fdn__pg_connected(c))
        return FDN_EUNAVAILABLE;
    if (!PQconsumeInput(c->conn)) {
        c->broken = true;
        return FDN_EUNAVAILABLE;
    }
    if (drain(c, head))
        return 1;
    /* the thread's cut descriptor beside the socket: readable (fdn__cut_revents), the wait
     * ends now (0, as at its timeout; the connection is idle, so it stays usable); not open
     * or in error, it is dropped for the rest of the wait (it answers every poll at once:
     * ending the wait there made a caller that waits again at once spin) */
    int cut = fdn__cut_fd();
    int64_t end = mono_now() + (timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    struct pollfd pfd[2];
    for (;;) {
        pfd[0] = (struct pollfd){.fd = PQsocket(c->conn), .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = cut, .events = POLLIN};
        int64_t left = end - mono_now();
        int64_t ms = left > 0 ? (left + 999999) / 1000000 : 0;
        int k = poll(pfd, cut >= 0 ? 2 : 1, ms > INT_MAX ? INT_MAX : (int)ms);
        if (k < 0 && errno != EINTR)
            return FDN_EUNAVAILABLE;
        if (k > 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0)
            break; /* the socket first: a notification that came is taken */
        if (k > 0 && cut >= 0 && pfd[1].revents != 0) {
            if (fdn__cut_revents(pfd[1].revents))
                return 0;
            cut = -1;
            continue;
        }
        if (k >= 0 || mono_now() >= end)
            return 0; /* the timeout (or a socket in a state libpq reads next time) */
    }
    if (!PQconsumeInput(c->conn)) {
        c->broken = true;
        return FDN_EUNAVAILABLE;
    }
    return drain(c, head);
}
