/* What the PostgreSQL client's files share (storage layer, private to event_pg.c and
 * event_pg_append.c): the connection and the command helpers, which bound every wait by the
 * connection's deadline (see event_pg.c's DESIGN comment). */
#ifndef FDN_STORAGE_EVENT_PG_INT_H
#define FDN_STORAGE_EVENT_PG_INT_H

#include <libpq-fe.h>

#include "storage/event_pg.h"

struct fdn__pg {
    PGconn *conn;
    bool broken;      /* the connection must not be used again (shut down by the hook, or lost) */
    bool timed_out;   /* the last command met the deadline (the connection is then broken) */
    bool prepared;    /* the append statement is prepared on this connection (reset when the
                       * session lost it: fdn__pg_lost_statement) */
    bool refused;     /* the last failed command's rows are refused for good (fdn__pg_refused) */
    unsigned qprep;   /* the query shapes prepared on this connection (event_pg.c) */
    int64_t deadline; /* CLOCK_MONOTONIC ns bounding every wait on the server (0 = none) */
    uint64_t waits;   /* polls made waiting on the server (tests: fdn__pg_test_waits) */
    fdn__pg_fail_t fail;
    char schema[FDN__PG_SCHEMA_MAX + 1];
    char ident[FDN__PG_SCHEMA_MAX + 3]; /* the schema as SQL names it: quoted ("user" is a
                                         * keyword, and a valid name) */
    char channel[FDN__PG_SCHEMA_MAX + 8];
};

/* libpq's message without its trailing newline, into buf. */
const char *fdn__pg_conn_msg(PGconn *conn, char *buf, size_t cap);
/* Send a command: with parameters (n >= 0: extended protocol, results in resfmt) or as a
 * simple query (n < 0: may hold several statements). false: not sent (connection broken). */
bool fdn__pg_q_send(fdn__pg_t *c, const char *sql, int n, const char *const *vals, const int *lens,
                    const int *fmts, int resfmt);
/* Flush what was sent, then read every result of the command within the deadline: the result
 * to judge (the first that failed, else the last; PQclear it), or NULL when the connection
 * failed or the deadline passed (c->broken). */
PGresult *fdn__pg_q_collect(fdn__pg_t *c);
/* fdn__pg_q_send + fdn__pg_q_collect. */
PGresult *fdn__pg_q_exec(fdn__pg_t *c, const char *sql, int n, const char *const *vals,
                         const int *lens, const int *fmts, int resfmt);
/* The code for a failed command (the connection's state first, then the SQLSTATE); clears r. */
int fdn__pg_fail_res(fdn__pg_t *c, PGresult *r, fdn_error_t *err, const char *what);
/* Run a command with text parameters; binary results. *out owns the result on success. */
int fdn__pg_run(fdn__pg_t *c, const char *sql, int n, const char *const *vals, ExecStatusType want,
                PGresult **out, fdn_error_t *err, const char *what);
/* Run a command or a script of several (simple query protocol, no parameters). */
int fdn__pg_script(fdn__pg_t *c, const char *sql, fdn_error_t *err, const char *what);
/* fdn__pg_script with the SQL as its description. */
int fdn__pg_cmd(fdn__pg_t *c, const char *sql, fdn_error_t *err);
/* Whether r failed because the prepared statement it ran does not exist on the session
 * (SQLSTATE 26000): DEALLOCATE ALL or DISCARD ALL ran on it (a pgbouncer pool in transaction
 * mode, a server-side reset). Nothing of the statement ran; the caller prepares it again. */
bool fdn__pg_lost_statement(const PGresult *r);
/* ROLLBACK when the connection is usable (its outcome ignored). */
void fdn__pg_rollback(fdn__pg_t *c);
/* An integer column of a binary result (int2, int4 or int8). */
uint64_t fdn__pg_get_int(const PGresult *r, int row, int col);

#endif
