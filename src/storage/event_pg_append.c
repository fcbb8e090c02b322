/*
 * DESIGN: appends of the event store's PostgreSQL client (fdn__pg_append, storage/event_pg.h),
 * over the connection and command helpers of event_pg.c (event_pg_int.h).
 *
 * Positions are global, gap-free and in commit order. An append is one transaction that
 * first moves the head row by n (UPDATE head SET position = position + n), then inserts the n
 * rows at the positions it took. The UPDATE takes the head row's lock until COMMIT, so
 * committers are serialised: batch B cannot take positions until batch A, which holds lower
 * ones, has committed (or rolled back, which also rolls back its UPDATE: no gap). A reader
 * that has seen position p has therefore seen every position below p, and "give me
 * everything after p" never skips an event that commits later. A plain sequence does not give
 * this (nextval is not transactional: a reader may see 2 before 1 commits, and a rollback
 * leaves a hole).
 * The cost is that lock: committers wait for each other from their UPDATE to their COMMIT. So
 * a batch of up to 1000 events (INSERT_CHUNK) is ONE statement in an implicit transaction,
 *   WITH h AS (UPDATE head ... RETURNING position - n AS b, pg_notify(...)),
 *        i AS (INSERT INTO events SELECT h.b + v.o, ... FROM h,
 *              unnest($2::uuid[], $3::text[], ...) WITH ORDINALITY v ...)
 *   SELECT h.b, count(i)
 * so the lock is held only while the server inserts the rows and commits, never across the
 * network (BEGIN; UPDATE; INSERT; COMMIT held it across three round trips: the bench's 4
 * appending processes measured 0.40x raw INSERTs that way, 0.5-0.7x with the single statement).
 * The statement is prepared once per connection and its columns travel as 11 binary arrays:
 * the server neither parses nor plans it again, nor converts text numbers, and the client
 * formats no numbers (a VALUES list of 100 rows was 1100 text parameters parsed, planned and
 * converted for every batch; the raw INSERT baseline still pays that). A "SELECT 1" round trip
 * goes before it, outside the lock (on a connection's first append, preparing the statement is
 * that round trip): a server that stopped answering is found there, where nothing was sent
 * that could commit (FDN_EUNAVAILABLE, retried); a single statement that meets the deadline has
 * an unknown outcome (FDN_EIO: the server may run it when it resumes), so without the probe a
 * stopped server would give callers FDN_EIO, not "away" (test_events_chaos_pg asserts it).
 * Bigger batches take BEGIN, the UPDATE, INSERTs of 1000 rows, COMMIT. And the store's writer
 * batches: one head update per batch of queued stores, not per event. The issue measured
 * 59 k rows/s with 4 writers against 77 k/s for a bare sequence (-23 %); the batch size
 * (storage.warm.postgres.batch_max) amortises it.
 *
 * Exactly once: every event carries a UUID chosen before the first attempt. When the
 * connection fails after COMMIT (or the single statement) was sent, the outcome is unknown
 * (FDN_EIO); the caller
 * retries on a new connection with retry=true: the head row is locked first (FOR UPDATE),
 * the ids already stored are looked up (unnest(ids) WITH ORDINALITY JOIN events) and keep
 * their positions, and only the missing ones are inserted after the head, which advances by
 * their number. So a batch is never lost and never stored twice, and positions stay gap-free
 * (an ON CONFLICT DO NOTHING after taking positions would leave holes).
 *
 * Threads: none of its own; a connection is used by one thread at a time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "core/alloc.h"
#include "core/hex.h"
#include "logic/event_int.h"
#include "storage/event_pg.h"
#include "storage/event_pg_int.h"

#define INSERT_CHUNK 1000u /* rows per INSERT statement (12 parameters each) */
#define NCOLS        12

/* INSERT the rows whose index is in idx[0..k) at positions pos[idx[j]]. */
static int insert_rows(fdn__pg_t *c, const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids,
                       const size_t *idx, size_t k, const uint64_t *pos, fdn_error_t *err)
{
    size_t rows_max = k < INSERT_CHUNK ? k : INSERT_CHUNK;
    size_t nparams = rows_max * NCOLS;
    size_t sqlcap = 200 + rows_max * (NCOLS * 8 + 4);
    char *sql = fdn__malloc(sqlcap);
    const char **vals = fdn__malloc(nparams * sizeof(*vals));
    int *lens = fdn__malloc(nparams * sizeof(*lens));
    int *fmts = fdn__malloc(nparams * sizeof(*fmts));
    char(*num)[6][24] = fdn__malloc(rows_max * sizeof(*num));
    int rc = 0;
    if (sql == NULL || vals == NULL || lens == NULL || fmts == NULL || num == NULL) {
        rc = fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
        goto done;
    }
    for (size_t done_rows = 0; done_rows < k && rc == 0;) {
        size_t rows = k - done_rows < INSERT_CHUNK ? k - done_rows : INSERT_CHUNK;
        size_t o = (size_t)snprintf(sql, sqlcap,
                                    "INSERT INTO %s.events (position, event_id, type, "
                                    "correlation_id, parent, ts, wall_ns, node, pid, tid, ctype, "
                                    "data) VALUES ",
                                    c->ident);
        for (size_t j = 0; j < rows; j++) {
            size_t i = idx ? idx[done_rows + j] : done_rows + j;
            const fdn_event_t *ev = evs[i];
            size_t p = j * NCOLS;
            o += (size_t)snprintf(sql + o, sqlcap - o, "%s(", j ? "," : "");
            for (int col = 0; col < NCOLS; col++)
                o += (size_t)snprintf(sql + o, sqlcap - o, "%s$%zu", col ? "," : "",
                                      p + (size_t)col + 1);
            o += (size_t)snprintf(sql + o, sqlcap - o, ")");
            snprintf(num[j][0], 24, "%" PRIu64, pos[i]);
            snprintf(num[j][1], 24, "%" PRId64, (int64_t)ev->parent);
            snprintf(num[j][2], 24, "%" PRId64, ev->ts);
            snprintf(num[j][3], 24, "%" PRId64, ev->wall);
            snprintf(num[j][4], 24, "%" PRIu32, ev->pid);
            snprintf(num[j][5], 24, "%" PRIu32, ev->tid);
            const char *v[NCOLS] = {num[j][0], ids[i].s, ev->type,  ev->corr,  num[j][1], num[j][2],
                                    num[j][3], ev->node, num[j][4], num[j][5], NULL,      NULL};
            static const char *const ctypes[] = {"0", "1", "2", "3", "4", "5", "6", "7"};
            v[10] = ctypes[ev->ctype & 7];
            v[11] = ev->data_len ? (const char *)ev->data : "";
            for (int col = 0; col < NCOLS; col++) {
                vals[p + (size_t)col] = v[col];
                lens[p + (size_t)col] = 0;
                fmts[p + (size_t)col] = 0;
            }
            lens[p + 11] = (int)ev->data_len;
            fmts[p + 11] = 1;
        }
        PGresult *r = fdn__pg_q_exec(c, sql, (int)(rows * NCOLS), vals, lens, fmts, 1);
        if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = fdn__pg_fail_res(c, r, err, "insert events");
        else
            PQclear(r);
        done_rows += rows;
    }
done:
    fdn__free(sql);
    fdn__free(vals);
    fdn__free(lens);
    fdn__free(fmts);
    fdn__free(num);
    return rc;
}

/* ---- the one-statement append: a prepared statement over binary arrays ---- */

/* Element types of the arrays (PostgreSQL's pg_type OIDs). */
#define OID_BYTEA 17u
#define OID_INT8  20u
#define OID_INT2  21u
#define OID_TEXT  25u
#define OID_UUID  2950u

#define APPEND_STMT "fdn_append" /* its name on the connection */
#define APPEND_COLS 11           /* arrays: one per column but the position */

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

/* An array's header in the binary format: one dimension of n elements from 1, no NULLs. */
static unsigned char *arr_head(unsigned char *p, uint32_t oid, size_t n)
{
    p = put32(p, 1);
    p = put32(p, 0);
    p = put32(p, oid);
    p = put32(p, (uint32_t)n);
    return put32(p, 1);
}

static unsigned char *arr_bytes(unsigned char *p, const void *b, size_t len)
{
    p = put32(p, (uint32_t)len);
    if (len > 0)
        memcpy(p, b, len);
    return p + len;
}

/* Whether s (up to FDN_UUID_STR_LEN + 1 bytes) is a UUID's text form, 8-4-4-4-12 hex digits
 * and a NUL: what every path sends (the retry's array literal takes FDN_UUID_STR_LEN bytes of
 * each id), so that a first attempt and its retry take or refuse the same ids. */
static bool uuid_text(const char *s)
{
    for (int i = 0; i < FDN_UUID_STR_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : fdn__hex_digit(s[i]) < 0)
            return false;
    }
    return s[FDN_UUID_STR_LEN] == '\0';
}

/* A UUID's 16 bytes from its text form; false when it is not one. */
static bool uuid_bytes(const char *s, unsigned char *out)
{
    int k = 0;
    for (const char *p = s; *p != '\0' && k < 32; p++) {
        if (*p == '-')
            continue;
        int v = fdn__hex_digit(*p);
        if (v < 0)
            return false;
        if (k % 2 == 0)
            out[k / 2] = (unsigned char)(v << 4);
        else
            out[k / 2] |= (unsigned char)v;
        k++;
    }
    return k == 32;
}

/* The parameters of the prepared append: $1 the count, $2..$12 the arrays in one buffer
 * (*buf, fdn__free it). FDN_EINVAL (an id that is not a UUID), FDN_ENOMEM. */
static int append_params(const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids, size_t n,
                         unsigned char **buf, const char **vals, int *lens, fdn_error_t *err)
{
    size_t text = 0, data = 0;
    for (size_t i = 0; i < n; i++) {
        text += strlen(evs[i]->type) + strlen(evs[i]->corr) + strlen(evs[i]->node);
        data += evs[i]->data_len;
    }
    /* 8 for $1, 11 array headers, 4 per element, the elements */
    size_t cap = 8 + APPEND_COLS * 20 + n * APPEND_COLS * 4 + n * (16 + 5 * 8 + 2) + text + data;
    unsigned char *b = fdn__malloc(cap);
    if (b == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
    unsigned char *p = put64(b, n);
    vals[0] = (const char *)b;
    lens[0] = 8;
    static const uint32_t oids[APPEND_COLS] = {OID_UUID, OID_TEXT, OID_TEXT, OID_INT8,
                                               OID_INT8, OID_INT8, OID_TEXT, OID_INT8,
                                               OID_INT8, OID_INT2, OID_BYTEA};
    for (int col = 0; col < APPEND_COLS; col++) {
        unsigned char *start = p;
        p = arr_head(p, oids[col], n);
        for (size_t i = 0; i < n; i++) {
            const fdn_event_t *ev = evs[i];
            switch (col) {
            case 0:
                p = put32(p, 16);
                if (!uuid_bytes(ids[i].s, p)) {
                    fdn__free(b);
                    return fdn_err_set(err, FDN_EINVAL,
                                       "postgres: event %zu: id '%s' is not a UUID", i, ids[i].s);
                }
                p += 16;
                break;
            case 1:
                p = arr_bytes(p, ev->type, strlen(ev->type));
                break;
            case 2:
                p = arr_bytes(p, ev->corr, strlen(ev->corr));
                break;
            case 3:
                p = put64(put32(p, 8), (uint64_t)(int64_t)ev->parent);
                break;
            case 4:
                p = put64(put32(p, 8), (uint64_t)ev->ts);
                break;
            case 5:
                p = put64(put32(p, 8), (uint64_t)ev->wall);
                break;
            case 6:
                p = arr_bytes(p, ev->node, strlen(ev->node));
                break;
            case 7:
                p = put64(put32(p, 8), ev->pid);
                break;
            case 8:
                p = put64(put32(p, 8), ev->tid);
                break;
            case 9:
                p = put32(p, 2);
                p[0] = 0; /* an int2, big-endian */
                p[1] = (unsigned char)(ev->ctype & 7);
                p += 2;
                break;
            default:
                p = arr_bytes(p, ev->data, ev->data_len);
                break;
            }
        }
        vals[1 + col] = (const char *)start;
        lens[1 + col] = (int)(p - start);
    }
    *buf = b;
    return 0;
}

/* Prepare the append statement on this connection (once). As fdn__pg_run. */
static int append_prepare(fdn__pg_t *c, fdn_error_t *err)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "WITH h AS (UPDATE %s.head SET position = position + $1::bigint WHERE id = 1"
             " RETURNING position - $1::bigint AS b, pg_notify('%s', position::text) AS nt),"
             " i AS (INSERT INTO %s.events (position, event_id, type, correlation_id, parent, ts,"
             " wall_ns, node, pid, tid, ctype, data) SELECT h.b + v.o, v.e, v.t, v.c, v.pa, v.ts,"
             " v.w, v.nd, v.pi, v.ti, v.ct, v.d FROM h, unnest($2::uuid[], $3::text[],"
             " $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[],"
             " $10::bigint[], $11::smallint[], $12::bytea[]) WITH ORDINALITY AS"
             " v(e, t, c, pa, ts, w, nd, pi, ti, ct, d, o) RETURNING 1)"
             " SELECT h.b, (SELECT count(*) FROM i) FROM h",
             c->ident, c->channel, c->ident);
    c->timed_out = false;
    if (!PQsendPrepare(c->conn, APPEND_STMT, sql, 0, NULL)) {
        c->broken = true;
        return fdn__pg_fail_res(c, NULL, err, "prepare the append");
    }
    PGresult *r = fdn__pg_q_collect(c);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
        return fdn__pg_fail_res(c, r, err, "prepare the append");
    PQclear(r);
    c->prepared = true;
    return 0;
}

/*
 * A first attempt of up to INSERT_CHUNK events as one statement, run in its own implicit
 * transaction (prepared once per connection; the columns travel as binary arrays):
 *   WITH h AS (UPDATE head SET position = position + n RETURNING position - n AS b, notify),
 *        i AS (INSERT INTO events SELECT h.b + v.o, v.* FROM h, unnest($2, ...) WITH
 *              ORDINALITY v)
 *   SELECT h.b, count(i)
 * so the head row's lock is held only while the server inserts the rows and commits, never
 * across a network round trip (BEGIN / UPDATE / INSERT / COMMIT held it for three).
 * Returns as fdn__pg_append (FDN_EIO once the statement is sent and its answer is lost).
 */
static int append_one(fdn__pg_t *c, const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids,
                      size_t n, uint64_t *pos, fdn_error_t *err)
{
    const char *vals[1 + APPEND_COLS];
    int lens[1 + APPEND_COLS], fmts[1 + APPEND_COLS];
    for (int k = 0; k < 1 + APPEND_COLS; k++)
        fmts[k] = 1;
    unsigned char *params = NULL;
    char buf[256] = "";
    int rc = append_params(evs, ids, n, &params, vals, lens, err);
    if (rc != 0) {
        c->refused = rc == FDN_EINVAL; /* an id that is not a UUID */
        return rc;
    }
    fdn__pg_fail_t mode = c->fail;
    c->fail = FDN__PG_FAIL_NONE;
    if (!fdn__pg_connected(c)) {
        rc = fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: append: not connected");
        goto done;
    }
    /* a round trip before, outside the lock: a server that does not answer (stopped, network
     * down) is found here, where nothing was sent that could commit (FDN_EUNAVAILABLE), not
     * only after the statement, whose outcome would be unknown (FDN_EIO). Preparing the
     * statement (a connection's first append) is that round trip. */
    if (!c->prepared)
        rc = append_prepare(c, err);
    else
        rc = fdn__pg_script(c, "SELECT 1", err, "check the connection");
    if (rc != 0) {
        if (rc == FDN_EIO)
            rc = FDN_EUNAVAILABLE;
        goto done;
    }
    PGresult *r = NULL;
    for (int attempt = 0;; attempt++) {
        c->timed_out = false;
        if (!PQsendQueryPrepared(c->conn, APPEND_STMT, 1 + APPEND_COLS, vals, lens, fmts, 1)) {
            /* not sent whole: without its Sync message the server runs no implicit COMMIT */
            c->broken = true;
            rc = fdn_err_set(err, FDN_EUNAVAILABLE, "postgres: append not sent: %s",
                             fdn__pg_conn_msg(c->conn, buf, sizeof(buf)));
            goto done;
        }
        if (mode == FDN__PG_FAIL_AT_COMMIT) {
            (void)PQflush(c->conn);
            shutdown(PQsocket(c->conn), SHUT_RDWR);
            c->broken = true;
        }
        r = fdn__pg_q_collect(c);
        if (PQstatus(c->conn) != CONNECTION_OK)
            c->broken = true;
        if (r == NULL || c->broken || PQresultStatus(r) == PGRES_TUPLES_OK)
            break;
        /* the session lost the statement (DEALLOCATE ALL, DISCARD ALL: nothing of it ran, its
         * implicit transaction rolled back): prepared again and sent once more */
        if (attempt > 0 || !fdn__pg_lost_statement(r)) {
            rc = fdn__pg_fail_res(c, r, err, "append"); /* refused by the server: rolled back */
            if (rc == FDN_EIO)
                rc = FDN_EUNAVAILABLE;
            goto done;
        }
        PQclear(r);
        c->prepared = false;
        rc = append_prepare(c, err);
        if (rc != 0) {
            if (rc == FDN_EIO)
                rc = FDN_EUNAVAILABLE;
            goto done;
        }
    }
    if (r != NULL && !c->broken && (PQntuples(r) != 1 || fdn__pg_get_int(r, 0, 1) != (uint64_t)n)) {
        PQclear(r); /* no head row: nothing inserted */
        rc = fdn_err_set(err, FDN_ECORRUPT, "postgres: %s.head has no row: not an event log",
                         c->schema);
        goto done;
    }
    if (r == NULL || c->broken) {
        if (c->timed_out)
            snprintf(buf, sizeof(buf), "no answer within the deadline");
        else
            fdn__pg_conn_msg(c->conn, buf, sizeof(buf));
        if (r != NULL)
            PQclear(r);
        rc = fdn_err_set(err, FDN_EIO,
                         "postgres: append sent, its COMMIT's answer lost, outcome unknown: %s",
                         buf);
        goto done;
    }
    uint64_t first = fdn__pg_get_int(r, 0, 0) + 1;
    PQclear(r);
    for (size_t i = 0; i < n; i++)
        pos[i] = first + i;
    if (mode == FDN__PG_FAIL_AFTER_COMMIT) {
        shutdown(PQsocket(c->conn), SHUT_RDWR);
        c->broken = true;
        rc = fdn_err_set(err, FDN_EIO, "postgres: COMMIT answer lost (test hook)");
    }
done:
    fdn__free(params);
    return rc;
}

/* Send COMMIT and read its answer (within the deadline); the test hook may cut the
 * connection. */
static int commit(fdn__pg_t *c, fdn_error_t *err)
{
    fdn__pg_fail_t mode = c->fail;
    c->fail = FDN__PG_FAIL_NONE;
    char buf[256] = "";
    if (!fdn__pg_q_send(c, "COMMIT", -1, NULL, NULL, NULL, 0))
        return fdn_err_set(err, FDN_EIO, "postgres: COMMIT not sent, outcome unknown: %s",
                           fdn__pg_conn_msg(c->conn, buf, sizeof(buf)));
    if (mode == FDN__PG_FAIL_AT_COMMIT) {
        (void)PQflush(c->conn);
        shutdown(PQsocket(c->conn), SHUT_RDWR);
        c->broken = true;
    }
    PGresult *r = fdn__pg_q_collect(c);
    bool ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (r != NULL && !ok)
        snprintf(buf, sizeof(buf), "%s", PQresultErrorMessage(r));
    if (r != NULL)
        PQclear(r);
    if (mode == FDN__PG_FAIL_AFTER_COMMIT) {
        shutdown(PQsocket(c->conn), SHUT_RDWR);
        c->broken = true;
        return fdn_err_set(err, FDN_EIO, "postgres: COMMIT answer lost (test hook)");
    }
    if (PQstatus(c->conn) != CONNECTION_OK)
        c->broken = true;
    if (!ok || c->broken) {
        if (c->timed_out)
            snprintf(buf, sizeof(buf), "no answer within the deadline");
        else if (buf[0] == '\0')
            fdn__pg_conn_msg(c->conn, buf, sizeof(buf));
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        return fdn_err_set(err, FDN_EIO, "postgres: COMMIT failed, outcome unknown: %s", buf);
    }
    return 0;
}

/* The failure of an append that found no head row (r: the head's result, cleared): the log
 * is what is wrong, not the rows (not fdn__pg_refused), and every batch fails alike. */
static int no_head(fdn__pg_t *c, PGresult *r, fdn_error_t *err)
{
    PQclear(r);
    return fdn_err_set(err, FDN_ECORRUPT, "postgres: %s.head has no row: not an event log",
                       c->schema);
}

/* retry: lock the head, find the ids already stored, and insert the others after it. */
static int append_retry(fdn__pg_t *c, const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids,
                        size_t n, uint64_t *pos, fdn_error_t *err)
{
    char sql[512];
    PGresult *r = NULL;
    snprintf(sql, sizeof(sql), "SELECT position FROM %s.head WHERE id = 1 FOR UPDATE", c->ident);
    int rc = fdn__pg_run(c, sql, 0, NULL, PGRES_TUPLES_OK, &r, err, "lock head");
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) /* (read as 0, the rows would go to positions 1.. unrecorded) */
        return no_head(c, r, err);
    uint64_t head = fdn__pg_get_int(r, 0, 0);
    PQclear(r);

    /* the ids as a text array literal: {id,id,...} */
    size_t cap = n * (FDN_UUID_STR_LEN + 1) + 3;
    char *arr = fdn__malloc(cap);
    size_t *missing = fdn__malloc(n * sizeof(*missing));
    if (arr == NULL || missing == NULL) {
        fdn__free(arr);
        fdn__free(missing);
        return fdn_err_set(err, FDN_ENOMEM, "postgres: out of memory");
    }
    size_t o = 0;
    arr[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            arr[o++] = ',';
        memcpy(arr + o, ids[i].s, FDN_UUID_STR_LEN);
        o += FDN_UUID_STR_LEN;
        pos[i] = 0;
    }
    arr[o++] = '}';
    arr[o] = '\0';
    snprintf(sql, sizeof(sql),
             "SELECT u.ord, e.position FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ord)"
             " JOIN %s.events e ON e.event_id = u.id",
             c->ident);
    const char *vals[1] = {arr};
    rc = fdn__pg_run(c, sql, 1, vals, PGRES_TUPLES_OK, &r, err, "find retried ids");
    fdn__free(arr);
    if (rc != 0) {
        fdn__free(missing);
        return rc;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        uint64_t ord = fdn__pg_get_int(r, row, 0);
        if (ord >= 1 && ord <= n)
            pos[ord - 1] = fdn__pg_get_int(r, row, 1);
    }
    PQclear(r);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (pos[i] == 0) {
            pos[i] = head + k + 1;
            missing[k++] = i;
        }
    if (k > 0) {
        rc = insert_rows(c, evs, ids, missing, k, pos, err);
        if (rc == 0) {
            char num[24];
            snprintf(num, sizeof(num), "%" PRIu64, head + k);
            snprintf(sql, sizeof(sql),
                     "UPDATE %s.head SET position = $1::bigint WHERE id = 1"
                     " RETURNING pg_notify('%s', position::text)",
                     c->ident, c->channel);
            const char *v2[1] = {num};
            rc = fdn__pg_run(c, sql, 1, v2, PGRES_TUPLES_OK, NULL, err, "advance head");
        }
    }
    fdn__free(missing);
    return rc;
}

int fdn__pg_append(fdn__pg_t *c, const fdn_event_t *const *evs, const fdn__pg_uuid_t *ids, size_t n,
                   bool retry, uint64_t *pos, fdn_error_t *err)
{
    if (c == NULL || (n > 0 && (evs == NULL || ids == NULL || pos == NULL)))
        return fdn_err_set(err, FDN_EINVAL, "postgres: append: missing argument");
    c->refused = false;
    if (n == 0)
        return 0;
    /* over the bounds: the same rows are refused again (fdn__pg_refused) */
    c->refused = true;
    if (n > FDN__PG_BATCH_MAX)
        return fdn_err_set(err, FDN_ETOO_LARGE, "postgres: batch of %zu events over %u", n,
                           FDN__PG_BATCH_MAX);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (evs[i] == NULL) {
            c->refused = false; /* the caller's mistake, not the rows' */
            return fdn_err_set(err, FDN_EINVAL, "postgres: append: event %zu missing", i);
        }
        if (evs[i]->data_len > FDN_EVENT_DATA_MAX)
            return fdn_err_set(err, FDN_ETOO_LARGE, "postgres: event %zu: data of %u bytes over %d",
                               i, evs[i]->data_len, FDN_EVENT_DATA_MAX);
        bytes += evs[i]->data_len;
    }
    if (bytes > FDN__PG_BATCH_BYTES_MAX)
        return fdn_err_set(err, FDN_ETOO_LARGE,
                           "postgres: batch of %" PRIu64 " payload bytes over %u", bytes,
                           FDN__PG_BATCH_BYTES_MAX);
    for (size_t i = 0; i < n; i++) /* (refused: the same ids are refused again) */
        if (!uuid_text(ids[i].s))
            return fdn_err_set(err, FDN_EINVAL, "postgres: event %zu: id '%.*s' is not a UUID", i,
                               FDN_UUID_STR_LEN, ids[i].s);
    c->refused = false; /* from here, the server's answers say (fdn__pg_fail_res) */
    if (!retry && n <= INSERT_CHUNK)
        return append_one(c, evs, ids, n, pos, err);
    int rc = fdn__pg_cmd(c, "BEGIN", err);
    if (rc != 0)
        return rc;
    if (retry) {
        rc = append_retry(c, evs, ids, n, pos, err);
    } else {
        char sql[512], num[24];
        snprintf(num, sizeof(num), "%zu", n);
        snprintf(sql, sizeof(sql),
                 "UPDATE %s.head SET position = position + $1::bigint WHERE id = 1"
                 " RETURNING position, pg_notify('%s', position::text)",
                 c->ident, c->channel);
        const char *vals[1] = {num};
        PGresult *r = NULL;
        rc = fdn__pg_run(c, sql, 1, vals, PGRES_TUPLES_OK, &r, err, "take positions");
        if (rc == 0 && (PQntuples(r) != 1 || fdn__pg_get_int(r, 0, 0) < n)) {
            rc = no_head(c, r, err); /* (read as 0, the positions would go below 0) */
        } else if (rc == 0) {
            uint64_t last = fdn__pg_get_int(r, 0, 0);
            PQclear(r);
            for (size_t i = 0; i < n; i++)
                pos[i] = last - n + 1 + i;
            rc = insert_rows(c, evs, ids, NULL, n, pos, err);
        }
    }
    if (rc != 0) {
        fdn__pg_rollback(c);
        return rc == FDN_EIO ? FDN_EUNAVAILABLE : rc; /* before COMMIT: nothing committed */
    }
    return commit(c, err);
}
