/*
 * DESIGN: the PostgreSQL backend of the event store (storage/event_backend.h, the shared
 * kind): the backend table over the client in event_pg.c, with its connections.
 *
 * Connections: one for the writer (append; it created or migrated the schema at open), one
 * for the listener (wait: LISTEN + poll on its socket), and a pool of up to pool_size for
 * every other call, which may come from any thread. The pool is a LIFO of idle connections
 * under one mutex; a caller finding none idle and the pool full waits in line, first come
 * first served, on a condition variable, or, on a thread with a cut descriptor, in poll
 * (below, "Cuts"). Connections are
 * opened when first needed and dropped when libpq reports them broken; a read that failed on
 * a stale pooled connection (the server restarted since, or ended the session) is run again
 * until it runs on a connection that is not stale (each stale one closed; a restart leaves
 * every idle one stale, so at most pool_size + 1 tries, the last on a fresh connection):
 * reads have no side effects.
 *
 * Why its own pool and not fdn_pool: the layers (docs/architecture.md, scripts/check-layers.sh)
 * put this backend in storage and its only caller, the event store, in services, both below
 * infra where fdn_pool lives; an object here that called fdn_pool_* fails the layer check.
 * The breaker crosses that line through a guard the runtime hands the store from above
 * (src/infra/event_breaker.c), which works because a breaker only decides. A pool would have
 * to be handed down the same way, as a checkout/checkin table over an fdn_pool whose workers
 * are fdn__pg_t, and the store would still need a pool of its own whenever nobody hands one
 * (fdn_events_create without a runtime: library users, tests, the bench): two pools to keep
 * right instead of one. Its waiters are served in order with the hand-over fdn_pool's are
 * (below, "Cuts"); what else fdn_pool adds (overflow, a reaper, leak reports, /pools) buys
 * nothing here: the pool is internal, every checkout is returned by the same
 * function that took it (run(), below), its size is small (storage.warm.postgres.pool_size),
 * idle connections cost one server backend each, and a waiter's wait is bounded by its call's
 * deadline (or its cut: fdn_pool's waits know nothing of cut descriptors either). So this
 * pool is the ~150 lines of pool_get/pool_put/wait_free, and the writer's and the
 * listener's connections are not pooled at all (each belongs to one thread, and the listener
 * holds LISTEN state). Its health shows in the store's own gauges (the backend's up, breaker
 * state, request durations), not in the fdn_pool metrics.
 *
 * Append (exactly once): the batch's UUIDs are drawn once, before the first attempt. An
 * attempt that failed before COMMIT was sent (FDN_EUNAVAILABLE) committed nothing and is
 * simply repeated on a new connection; one whose outcome is unknown (FDN_EIO: the connection
 * died after COMMIT was sent) is repeated with retry=true, which keeps the positions of the
 * events already stored and stores only the others. After APPEND_ATTEMPTS failed attempts the
 * append gives up with FDN_EUNAVAILABLE (nothing committed) or FDN_EIO (outcome unknown: the
 * events may be stored, and then readers see them, once). A failure the rows themselves cause
 * (fdn__pg_refused: over the bounds, a data exception, an integrity violation on them) is not
 * retried and sets batch->refused: the store's replay quarantines such a spooled batch.
 *
 * An append leaves its connection open only when it is usable: one broken by the deadline or
 * a cut, possibly inside its transaction (BEGIN .. COMMIT: a batch over one INSERT, a replay),
 * is closed as the append returns, so that its session rolls back as soon as its statement
 * ends instead of holding the head row's lock, and every process's appends, until the next.
 *
 * Bounds: every call has a deadline, command_timeout_ms from its start (an append: its
 * batch's deadline_ns when the caller gave one), which bounds the wait for a pooled
 * connection, a (re)connection and every command (fdn__pg_set_deadline: the client polls the
 * socket, so a stopped server or a dead network cannot hold a call longer). Reconnections
 * within a call skip the migration (fdn__pg_reopen): the first connection, at open, did it.
 * The circuit breaker is not here: the store holds it (services/event_shared.c, set from
 * above by fdn_events_set_breaker), around each call of this table.
 *
 * Cuts: a pooled call (run) made on a thread whose cut descriptor (core/cancel.h, set through
 * fdn_events_set_thread_cut_fd: the admin server's threads) is readable ends at once with
 * FDN_ECANCELED: at its first wait on the server, while it waits for a free connection, and
 * during a (re)connection or a command (the client polls the descriptor beside its socket: a
 * cut connection is broken, so pool_put closes it, and with it whatever PostgreSQL still runs
 * for it once it answers). It is not retried. The store's writer and follower name
 * descriptors of their own (services/event_shared.c, "Stopping"): the follower's turns
 * readable as the store's stop begins, the writer's at the stop's deadline; an append cut so
 * makes no further attempt and fails as a failed attempt does (FDN_EIO: its COMMIT's outcome
 * unknown; FDN_EUNAVAILABLE: nothing sent that could commit).
 * The wait for a free connection: callers finding none idle and no room to open one queue in
 * one FIFO line (`waiters`, records on their stacks, under mu), whatever their kind, and each
 * keeps its place until it is served, cut or past its deadline. Whoever frees a connection
 * (pool_put) or a slot (pool_put of a broken connection, a failed connect) hands it straight
 * to the oldest waiter (hand_on_locked): the waiter leaves the line with it, and the
 * connection is never idle in between, so a caller arriving after the hand-over (which would
 * find it idle before the woken waiter ran) cannot take it: while anyone waits, none is idle
 * and none can be opened, and a newcomer queues behind them. (Before, a put-back connection
 * went idle and woke a waiter, which re-checked: a caller arriving in between took it, and
 * the waiter queued again at the back, so under steady load it could lose its turn again and
 * again until its deadline while later callers were served.) A slot handed over is filled by
 * its waiter (it connects; a failure hands the slot on again). A thread without a cut
 * descriptor waits on a condition variable of its own, signalled by the hand-over. A
 * condition variable cannot be woken by a descriptor, so a waiter with a cut descriptor makes
 * an eventfd of its own and polls it and its cut descriptor together, until its deadline; the
 * hand-over writes the eventfd under mu, with the waiter taken off the line, so once only and
 * never after the waiter left (it leaves only under mu): the waiter is either still in poll
 * (woken) or has not reached it yet (its eventfd is already readable). A waiter cut as it is
 * handed something (its poll reports both, or the cut is readable when it looks after its
 * eventfd woke it) passes that on to the next in line before it leaves with FDN_ECANCELED,
 * so nothing is lost and no connection is closed for it (test hook: fdn__evb_pg_test_on_wake
 * holds a woken waiter before it looks, so a test can cut it at that point). So a cut ends the
 * wait at once, whoever holds the connections and for however long (another thread's call
 * waits for the server's answer up to its deadline). A waiter handed something only at or past
 * its deadline (it ran late) passes it on too and fails as at its deadline (FDN_EUNAVAILABLE):
 * its call has no time left, so a connection's first command would break it and pool_put
 * would close a good connection (test hook: fdn__evb_pg_test_on_wake, holding it until then).
 * The uncontended checkout is as before (no eventfd, no poll: the line is looked at
 * only when a connection is put back, one comparison). Should an eventfd not be made
 * (descriptors exhausted) or poll fail, that waiter waits on its condition variable, checking
 * its descriptor whenever woken (handed something, or at its deadline); should its condition
 * variable not be made, it does not wait at all (FDN_EUNAVAILABLE: the hand-over could not
 * wake it without an eventfd, nor it fall back on one should poll fail).
 *
 * Hints: the follower (wait) is not woken by the notifications of this backend's own commits
 * (own_head, set by the writer after each append): the writer puts its batch into memory
 * itself, after reading every position below it, so such a wake-up would only cost the
 * follower an empty read per batch. A notification announcing a newer head (another
 * process's commit, or one that came before own_head was set) wakes it as before; a hint
 * skipped wrongly would only delay it to its next poll, which the follower's contract allows.
 *
 * Threads: the writer connection is used by the store's writer thread only, the listener by
 * its follower thread only (the table's contract); the pool by anyone, under `mu` (also its
 * line of waiters, which live on their stacks; an eventfd is written under mu only).
 */
#include "storage/event_backend.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/cancel.h"
#include "core/list.h"
#include "core/lock.h"
#include "core/sync.h"
#include "logic/event_int.h"
#include "storage/event_pg.h"

#define APPEND_ATTEMPTS 3
#define CORR_PAGE       1000u

enum { GRANT_NONE = 0, GRANT_CONN, GRANT_SLOT };

/* A caller waiting in line for a pooled connection (wait_free), on its stack. */
typedef struct waiter {
    struct cds_list_head link; /* mu: in b->waiters until handed something or gone */
    /* its eventfd, which hand_on_locked writes to (under mu) when it is handed something; -1:
     * it waits on cv. The member is set only by its owner (under mu once it is in line: it
     * drops the eventfd should poll fail) and read under mu by hand_on_locked. */
    int fd;
    pthread_cond_t cv; /* signalled under mu by hand_on_locked when it is handed something
                        * (fd -1); made before it joins the line */
    int grant;         /* mu: GRANT_CONN (conn), GRANT_SLOT (to fill), or none yet */
    fdn__pg_t *conn;   /* mu: with GRANT_CONN, the connection it is handed */
} waiter_t;

typedef struct pgb {
    char *url;
    char schema[FDN__PG_SCHEMA_MAX + 1];
    int64_t connect_ms;
    int64_t command_ms; /* bound of one call (an append with its retries, a read) */
    fdn__pg_t *wconn;   /* writer thread */
    fdn__pg_t *lconn;   /* follower thread (LISTENing) */
    /* the newest position the writer committed (written by the writer, read by the follower) */
    _Atomic uint64_t own_head;
    fdn__mutex_t mu;
    struct cds_list_head waiters; /* mu: callers waiting in line (waiter_t), oldest first */
    size_t nwait;                 /* mu: callers in line (tests) */
    size_t npoll;                 /* mu: those of them waiting in poll (tests) */
    fdn__pg_t **idle; /* mu: idle pooled connections (LIFO) */
    size_t nidle;     /* mu */
    size_t nopen;     /* mu: pooled connections open or being opened */
    size_t max;
    void (*wake_hook)(void *arg); /* mu: tests (fdn__evb_pg_test_on_wake) */
    void *wake_arg;               /* mu */
    void (*poll_hook)(void *arg); /* mu: tests (fdn__evb_pg_test_on_poll) */
    void *poll_arg;               /* mu */
} pgb_t;

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A call cut short by its thread's cut descriptor (core/cancel.h): FDN_ECANCELED. */
static int cut_short(fdn_error_t *err)
{
    return fdn_err_set(err, FDN_ECANCELED,
                       "events: PostgreSQL: call cut short (its caller is stopping)");
}

/* A connection, opened within what is left before deadline (0: connect_ms), which then bounds
 * its commands. */
static int connect_one(pgb_t *b, fdn__pg_t **out, int64_t deadline, fdn_error_t *err)
{
    int64_t ms = b->connect_ms;
    if (deadline != 0) {
        int64_t left = (deadline - mono_now()) / 1000000;
        if (left < 1)
            return fdn_err_set(err, FDN_EUNAVAILABLE,
                               "events: PostgreSQL: no time left to "
                               "connect");
        if (left < ms)
            ms = left;
    }
    /* the first connection (at open) creates or migrates the schema; later ones, made
     * within a call's deadline, only connect */
    int rc = deadline == 0 ? fdn__pg_open(out, b->url, b->schema, ms, err)
                           : fdn__pg_reopen(out, b->url, b->schema, ms, err);
    if (rc == FDN_ECONNREFUSED && deadline != 0)
        rc = FDN_EUNAVAILABLE; /* during a call: the server is away */
    if (rc == 0)
        fdn__pg_set_deadline(*out, deadline);
    return rc;
}

static void wq_remove(pgb_t *b, waiter_t *w) FDN_REQUIRES(b->mu)
{
    cds_list_del(&w->link);
    b->nwait--;
    b->npoll -= w->fd >= 0;
}

/* Pass on what a caller gives back (mu held): a connection (c), or with c NULL its slot (a
 * connection closed, or never made: nopen still counts it). The oldest waiter is handed it and
 * woken (its eventfd written, or its condition variable signalled; it is off the queue from
 * then, so written once); with nobody waiting the connection goes idle, or the slot is free. */
static void hand_on_locked(pgb_t *b, fdn__pg_t *c) FDN_REQUIRES(b->mu)
{
    if (cds_list_empty(&b->waiters)) {
        if (c != NULL)
            b->idle[b->nidle++] = c;
        else
            b->nopen--;
        return;
    }
    waiter_t *w = fdn__list_first_entry(&b->waiters, waiter_t, link);
    wq_remove(b, w);
    w->grant = c != NULL ? GRANT_CONN : GRANT_SLOT;
    w->conn = c;
    if (w->fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(w->fd, &one, sizeof one); /* an eventfd's counter: cannot fail here */
        (void)n;
    } else {
        pthread_cond_signal(&w->cv);
    }
}

/* Wait in line (mu held, released while waiting) for a connection or a slot the pool hands
 * over (hand_on_locked): 0, with *conn the connection, or NULL for a slot the caller fills
 * (nopen counts it); or FDN_EUNAVAILABLE at the deadline (a deadline already passed: at once;
 * handed something only at or past it: passed on; no condition variable: at once),
 * FDN_ECANCELED once the thread's cut descriptor is readable. A thread without a cut
 * descriptor waits on its condition variable. One with a descriptor waits in poll on it and on
 * an eventfd of its own, which hand_on_locked writes: the cut ends the wait at once, whoever
 * holds the connections. A waiter handed something and cut at the same moment passes it on. */
static int wait_free(pgb_t *b, int64_t deadline, fdn__pg_t **conn, fdn_error_t *err)
    FDN_REQUIRES(b->mu)
{
    *conn = NULL;
    if (mono_now() >= deadline)
        return fdn_err_set(err, FDN_EUNAVAILABLE,
                           "events: PostgreSQL: no connection free within the deadline");
    int cut = fdn__cut_fd();
    waiter_t me = {.fd = -1};
    if (cut >= 0) {
        fdn__mutex_unlock(&b->mu);                      /* no system call under the lock */
        me.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* -1: the condition variable */
        fdn__mutex_lock(&b->mu);
        if (b->nidle > 0 || b->nopen < b->max) { /* freed meanwhile (so nobody is in line) */
            if (b->nidle > 0)
                *conn = b->idle[--b->nidle];
            else
                b->nopen++;
            if (me.fd >= 0)
                close(me.fd);
            return 0;
        }
        if (me.fd < 0 && fdn__cut_now())
            return cut_short(err);
    }
    /* Its condition variable: hand_on_locked signals it for a waiter without an eventfd, and a
     * waiter in poll turns to it should poll fail, so nobody waits in line without one. Not
     * made (pthread_cond_init fails: glibc's cannot, others may lack memory): no wait, the
     * call fails as at its deadline. */
    int crc = fdn__cond_init_mono(&me.cv);
    if (crc != 0) {
        if (me.fd >= 0)
            close(me.fd);
        return fdn_err_set(err, FDN_EUNAVAILABLE,
                           "events: PostgreSQL: cannot wait for a free connection "
                           "(pthread_cond_init: %d)",
                           crc);
    }
    cds_list_add_tail(&me.link, &b->waiters); /* last in line, and stays there */
    b->nwait++;
    b->npoll += me.fd >= 0;
    bool cut_now = false;
    while (me.grant == GRANT_NONE && !cut_now && mono_now() < deadline) {
        if (me.fd < 0) {
            (void)fdn__cond_wait_until(&me.cv, &b->mu, deadline);
            cut_now = cut >= 0 && fdn__cut_now(); /* (no eventfd: checked when woken) */
            continue;
        }
        void (*hook)(void *) = b->wake_hook;
        void *hook_arg = b->wake_arg;
        void (*poll_hook)(void *) = b->poll_hook;
        void *poll_arg = b->poll_arg;
        fdn__mutex_unlock(&b->mu);
        if (poll_hook != NULL)
            poll_hook(poll_arg); /* tests: between the loop's look at the clock and this one */
        /* The clock read once here, the timeout never negative: the deadline may have passed
         * since the loop's check (a preemption), and a negative timeout is poll's "forever". */
        int64_t left = deadline - mono_now();
        int64_t ms = left > 0 ? (left + 999999) / 1000000 : 0;
        struct pollfd pfd[2] = {{.fd = me.fd, .events = POLLIN}, {.fd = cut, .events = POLLIN}};
        int k = poll(pfd, 2, ms > INT_MAX ? INT_MAX : (int)ms); /* a negative fd is skipped */
        int perr = errno;
        if (hook != NULL)
            hook(hook_arg);
        bool stale = false;
        if (k > 0 && pfd[1].revents != 0) {
            cut_now = fdn__cut_revents(pfd[1].revents);
            stale = !cut_now; /* not open or in error (core/cancel.h) */
        } else if (cut >= 0) {
            cut_now = fdn__cut_now(); /* whatever poll returned (handed something, EINTR,
                                       * the deadline): cut meanwhile too? */
        }
        fdn__mutex_lock(&b->mu);
        if (stale)
            cut = -1;                 /* this wait goes on without it */
        if (k < 0 && perr != EINTR) { /* cannot poll: the condition variable from now on */
            if (me.grant == GRANT_NONE)
                b->npoll--;
            close(me.fd);
            me.fd = -1;
        }
    }
    int rc = 0;
    if (cut_now) {
        rc = cut_short(err);
        if (me.grant != GRANT_NONE)
            hand_on_locked(b, me.conn); /* what it was handed goes on */
    } else if (me.grant == GRANT_NONE) {
        rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                         "events: PostgreSQL: no connection free within the deadline");
    } else if (mono_now() >= deadline) {
        /* handed something at or past its deadline (it ran late): its call has no time left
         * for it (a connection's first command would find none, break it, and pool_put would
         * close a good connection; a slot: no time to connect), so it goes on */
        hand_on_locked(b, me.conn);
        rc = fdn_err_set(err, FDN_EUNAVAILABLE,
                         "events: PostgreSQL: no connection free within the deadline");
    } else {
        *conn = me.conn;
    }
    if (me.grant == GRANT_NONE)
        wq_remove(b, &me);
    if (me.fd >= 0)
        close(me.fd);
    pthread_cond_destroy(&me.cv);
    return rc;
}

/* A connection for a pooled call: an idle one, else a new one while fewer than max are open,
 * else one handed over in turn (wait_free). While anyone waits none is idle and none can be
 * opened (hand_on_locked hands every one over), so a caller arriving then waits behind them. */
static int pool_get(pgb_t *b, fdn__pg_t **out, int64_t deadline, fdn_error_t *err)
{
    fdn__pg_t *c = NULL;
    fdn__mutex_lock(&b->mu);
    if (b->nidle > 0) {
        c = b->idle[--b->nidle];
    } else if (b->nopen < b->max) {
        b->nopen++;
    } else {
        int rc = wait_free(b, deadline, &c, err);
        if (rc != 0) {
            fdn__mutex_unlock(&b->mu);
            return rc;
        }
    }
    fdn__mutex_unlock(&b->mu);
    if (c != NULL) {
        *out = c;
        fdn__pg_set_deadline(c, deadline);
        return 0;
    }
    int rc = connect_one(b, out, deadline, err); /* the slot: counted in nopen */
    if (rc != 0) {
        fdn__mutex_lock(&b->mu);
        hand_on_locked(b, NULL);
        fdn__mutex_unlock(&b->mu);
    }
    return rc;
}

static void pool_put(pgb_t *b, fdn__pg_t *c)
{
    bool ok = fdn__pg_connected(c);
    if (!ok)
        fdn__pg_close(c);
    fdn__mutex_lock(&b->mu);
    hand_on_locked(b, ok ? c : NULL);
    fdn__mutex_unlock(&b->mu);
}

void fdn__evb_pg_test_pool(const fdn__evb_t *be, size_t *open, size_t *idle, size_t *waiting,
                           size_t *polling)
{
    pgb_t *b = be->state;
    fdn__mutex_lock(&b->mu);
    *open = b->nopen;
    *idle = b->nidle;
    *waiting = b->nwait;
    if (polling != NULL)
        *polling = b->npoll;
    fdn__mutex_unlock(&b->mu);
}

int fdn__evb_pg_test_get(const fdn__evb_t *be, fdn__pg_t **out, int64_t deadline_ns,
                         fdn_error_t *err)
{
    return pool_get(be->state, out, deadline_ns, err);
}

void fdn__evb_pg_test_put(const fdn__evb_t *be, fdn__pg_t *c)
{
    pool_put(be->state, c);
}

void fdn__evb_pg_test_on_wake(const fdn__evb_t *be, void (*fn)(void *arg), void *arg)
{
    pgb_t *b = be->state;
    fdn__mutex_lock(&b->mu);
    b->wake_hook = fn;
    b->wake_arg = arg;
    fdn__mutex_unlock(&b->mu);
}

void fdn__evb_pg_test_on_poll(const fdn__evb_t *be, void (*fn)(void *arg), void *arg)
{
    pgb_t *b = be->state;
    fdn__mutex_lock(&b->mu);
    b->poll_hook = fn;
    b->poll_arg = arg;
    fdn__mutex_unlock(&b->mu);
}

/* ---- reads on a pooled connection ---- */

typedef enum { R_GET, R_QUERY, R_PRUNE, R_STATS, R_HEAD } rkind_t;

typedef struct rcall {
    rkind_t kind;
    uint64_t id;
    const fdn__pg_query_t *q;
    fdn_event_t **ev;
    fdn_event_list_t **list;
    uint64_t *count;
    fdn__evb_stats_t *stats;
} rcall_t;

static int run_one(fdn__pg_t *c, const rcall_t *r, fdn_error_t *err)
{
    switch (r->kind) {
    case R_GET:
        return fdn__pg_get(c, r->id, r->ev, err);
    case R_QUERY:
        return fdn__pg_query(c, r->q, r->list, err);
    case R_PRUNE:
        return fdn__pg_prune_below(c, r->id, r->count, err);
    case R_STATS:
        return fdn__pg_stats(c, &r->stats->count, &r->stats->oldest, &r->stats->newest, err);
    case R_HEAD:
        return fdn__pg_head(c, r->count, err);
    }
    return FDN_EINVAL;
}

static int run(pgb_t *b, const rcall_t *r, fdn_error_t *err)
{
    int rc = 0; /* no fdn__cut_now() here (a system call per read): a cut thread's first
                 * wait on the server ends it (wait_sock) */
    int64_t deadline = mono_now() + b->command_ms * 1000000;
    /* a read that failed on a stale connection (the server ended the session: a restart,
     * idle_session_timeout, pg_terminate_backend) is run again; pool_put closed that one, and
     * the idle ones behind it are likely as stale (a restart ends them all), so it goes on
     * until a connection was not stale: at most one per pooled connection, then a fresh one */
    for (size_t attempt = 0;; attempt++) {
        fdn__pg_t *c = NULL;
        rc = pool_get(b, &c, deadline, err);
        if (rc != 0 && fdn__cut_now())
            return cut_short(err); /* connecting was cut */
        if (rc != 0)
            return rc;
        rc = run_one(c, r, err);
        bool stale = !fdn__pg_connected(c);
        pool_put(b, c); /* a cut connection is broken: closed there */
        if (rc != 0 && fdn__cut_now())
            return cut_short(err);
        if (!(stale && rc == FDN_EUNAVAILABLE) || mono_now() >= deadline || attempt >= b->max)
            break;
    }
    return rc;
}

/* ---- the table ---- */

static int pgb_append(void *p, fdn__evb_batch_t *batch, fdn_error_t *err)
{
    pgb_t *b = p;
    if (batch->n == 0)
        return 0;
    int64_t deadline =
        batch->deadline_ns != 0 ? batch->deadline_ns : mono_now() + b->command_ms * 1000000;
    fdn__pg_uuid_t *ids = fdn__malloc(batch->n * sizeof(*ids));
    if (ids == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory for a batch of %zu", batch->n);
    int rc = 0;
    if (batch->uids != NULL)
        for (size_t i = 0; i < batch->n; i++)
            memcpy(ids[i].s, batch->uids[i], sizeof(ids[i].s));
    else
        rc = fdn__pg_uuid_gen(ids, batch->n);
    bool retry = batch->replay; /* an attempt's outcome was unknown: it may be committed */
    bool unknown = false;       /* an attempt of this call lost its COMMIT's answer */
    for (int attempt = 1; rc == 0; attempt++) {
        if (b->wconn != NULL && !fdn__pg_connected(b->wconn)) {
            fdn__pg_close(b->wconn);
            b->wconn = NULL;
        }
        if (b->wconn == NULL && connect_one(b, &b->wconn, deadline, err) != 0) {
            rc = FDN_EUNAVAILABLE; /* nothing sent */
        } else {
            fdn__pg_set_deadline(b->wconn, deadline);
            rc = fdn__pg_append(b->wconn, batch->evs, ids, batch->n, retry, batch->pos, err);
        }
        if (rc == FDN_EIO)
            retry = unknown = true;
        /* cut (the store's stop deadline: its writer's cut descriptor): no other attempt */
        if ((rc != FDN_EIO && rc != FDN_EUNAVAILABLE) || attempt == APPEND_ATTEMPTS ||
            mono_now() >= deadline || fdn__cut_now())
            break;
        rc = 0;
    }
    if (rc == 0) {
        uint64_t top = 0;
        for (size_t i = 0; i < batch->n; i++)
            top = batch->pos[i] > top ? batch->pos[i] : top;
        if (top > atomic_load_explicit(&b->own_head, memory_order_relaxed))
            atomic_store_explicit(&b->own_head, top, memory_order_release);
    }
    /* refused for good: the server (or the client's checks) refused these rows, whatever
     * the attempt; a failure that says nothing of them (away, timed out, unknown outcome,
     * privileges) is not */
    batch->refused = rc != 0 && rc != FDN_EIO && rc != FDN_EUNAVAILABLE && b->wconn != NULL &&
                     fdn__pg_refused(b->wconn);
    /* a connection broken mid-transaction (the deadline or the cut met inside BEGIN ..
     * COMMIT: a batch over one INSERT, a replay) is closed now, not at the next append: its
     * session would otherwise sit idle in its transaction, once its statement ends, holding
     * the head row's lock, and every process's appends would wait for this store's next one */
    if (b->wconn != NULL && !fdn__pg_connected(b->wconn)) {
        fdn__pg_close(b->wconn);
        b->wconn = NULL;
    }
    if (rc == FDN_EUNAVAILABLE && unknown)
        rc = fdn_err_set(err, FDN_EIO,
                         "events: PostgreSQL: the outcome of a batch of %zu is "
                         "unknown (the connection was lost at COMMIT)",
                         batch->n);
    fdn__free(ids);
    return rc;
}

static int pgb_get(void *p, uint64_t id, fdn_event_t **out, fdn_error_t *err)
{
    rcall_t r = {.kind = R_GET, .id = id, .ev = out};
    return run(p, &r, err);
}

static void to_pg(const fdn__evb_query_t *q, fdn__pg_query_t *pq)
{
    pq->type = q->type;
    pq->correlation_id = q->correlation_id;
    pq->wall_start = q->wall_start;
    pq->wall_end = q->wall_end;
    pq->after = q->after;
    pq->before = q->before;
    pq->limit = q->limit;
    pq->descending = q->descending;
}

static int pgb_query(void *p, const fdn__evb_query_t *q, fdn_event_list_t **out, fdn_error_t *err)
{
    fdn__pg_query_t pq = FDN__PG_QUERY_INIT;
    to_pg(q, &pq);
    rcall_t r = {.kind = R_QUERY, .q = &pq, .list = out};
    return run(p, &r, err);
}

/* One list holding the events of lists[0..n) in order. */
static int concat(fdn_event_list_t **lists, size_t n, fdn_event_list_t **out)
{
    size_t total = 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < lists[i]->n; j++) {
            fdn__event_fields_t f;
            fdn__event_to_fields(lists[i]->items[j], &f);
            bytes += fdn__event_alloc_size(&f);
            total++;
        }
    fdn_event_list_t *l = fdn__event_list_alloc(total, bytes);
    if (l == NULL)
        return FDN_ENOMEM;
    size_t k = 0, off = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < lists[i]->n; j++) {
            fdn__event_fields_t f;
            fdn__event_to_fields(lists[i]->items[j], &f);
            l->items[k++] = fdn__event_place(fdn__event_list_mem(l, off), &f);
            off += fdn__event_alloc_size(&f);
        }
    *out = l;
    return 0;
}

/* Every event of the correlation id, paged by position (CORR_PAGE per query). */
static int pgb_correlation(void *p, const char *cid, fdn_event_list_t **out, fdn_error_t *err)
{
    fdn_event_list_t **pages = NULL;
    size_t n = 0, cap = 0;
    uint64_t after = 0;
    int rc = 0;
    for (;;) {
        fdn__pg_query_t pq = FDN__PG_QUERY_INIT;
        pq.correlation_id = cid;
        pq.after = after;
        pq.limit = CORR_PAGE;
        fdn_event_list_t *l = NULL;
        rcall_t r = {.kind = R_QUERY, .q = &pq, .list = &l};
        if ((rc = run(p, &r, err)) != 0)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            fdn_event_list_t **np = fdn__realloc(pages, nc * sizeof(*np));
            if (np == NULL) {
                fdn_event_list_free(l);
                rc = FDN_ENOMEM;
                break;
            }
            pages = np;
            cap = nc;
        }
        pages[n++] = l;
        if (l->n < CORR_PAGE)
            break;
        after = l->items[l->n - 1]->id;
    }
    if (rc == 0) {
        if (n == 1) {
            *out = pages[0];
            n = 0; /* handed out */
        } else {
            rc = concat(pages, n, out);
        }
    }
    for (size_t i = 0; i < n; i++)
        fdn_event_list_free(pages[i]);
    fdn__free(pages);
    return rc;
}

static int pgb_prune(void *p, uint64_t below, uint64_t *count, fdn_error_t *err)
{
    rcall_t r = {.kind = R_PRUNE, .id = below, .count = count};
    return run(p, &r, err);
}

static int pgb_stats(void *p, fdn__evb_stats_t *out, fdn_error_t *err)
{
    rcall_t r = {.kind = R_STATS, .stats = out};
    return run(p, &r, err);
}

static int pgb_head(void *p, uint64_t *out, fdn_error_t *err)
{
    rcall_t r = {.kind = R_HEAD, .count = out};
    return run(p, &r, err);
}

static int pgb_read_after(void *p, uint64_t after, size_t max, fdn_event_list_t **out,
                          fdn_error_t *err)
{
    fdn__pg_query_t pq = FDN__PG_QUERY_INIT;
    pq.after = after;
    pq.limit = max;
    rcall_t r = {.kind = R_QUERY, .q = &pq, .list = out};
    return run(p, &r, err);
}

static int pgb_wait(void *p, int64_t timeout_ms, uint64_t *head)
{
    pgb_t *b = p;
    if (b->lconn != NULL && !fdn__pg_connected(b->lconn)) {
        fdn__pg_close(b->lconn);
        b->lconn = NULL;
    }
    if (b->lconn == NULL) {
        if (connect_one(b, &b->lconn, mono_now() + b->command_ms * 1000000, NULL) != 0)
            return FDN_EUNAVAILABLE;
        int lrc = fdn__pg_listen(b->lconn, NULL);
        fdn__pg_set_deadline(b->lconn, 0); /* then it only waits on its socket */
        if (lrc != 0) {
            fdn__pg_close(b->lconn);
            b->lconn = NULL;
            return FDN_EUNAVAILABLE;
        }
        *head = 0;
        return 1; /* (re)connected: events may have been missed while away */
    }
    /* a notification of this backend's own commits only is no news: the writer puts its
     * batch into memory itself, after every position below it; keep waiting (a batch of
     * another process's with it announces a newer head) */
    int64_t end = mono_now() + timeout_ms * 1000000;
    for (;;) {
        uint64_t h = 0;
        int w = fdn__pg_wait(b->lconn, timeout_ms, &h);
        if (w != 1 || h > atomic_load_explicit(&b->own_head, memory_order_acquire)) {
            if (w == 1)
                *head = h;
            return w;
        }
        timeout_ms = (end - mono_now()) / 1000000;
        if (timeout_ms <= 0)
            return 0;
    }
}

static void pgb_close(void *p)
{
    pgb_t *b = p;
    if (b == NULL)
        return;
    /* no call may be in flight at close (the table's contract): none waits in line, on a
     * record on its stack this would leave pointing at freed memory */
    FDN_ASSERT(b->nwait == 0);
    fdn__pg_close(b->wconn);
    fdn__pg_close(b->lconn);
    for (size_t i = 0; i < b->nidle; i++)
        fdn__pg_close(b->idle[i]);
    pthread_mutex_destroy(&b->mu);
    fdn__free(b->idle);
    fdn__free(b->url);
    fdn__free(b);
}

static const fdn__evb_ops_t pg_ops = {
    .version = FDN__EVB_VERSION,
    .name = "postgres",
    .assigns_ids = true,
    .batch_bytes_max = FDN__PG_BATCH_BYTES_MAX,
    .batch_events_max = FDN__PG_BATCH_MAX,
    .load = NULL,
    .append = pgb_append,
    .get = pgb_get,
    .query = pgb_query,
    .correlation = pgb_correlation,
    .prune = pgb_prune,
    .stats = pgb_stats,
    .read_after = pgb_read_after,
    .wait = pgb_wait,
    .head = pgb_head,
    .close = pgb_close,
};

int fdn__evb_pg_open(fdn__evb_t *out, const fdn_events_pg_opts_t *o, fdn_error_t *err)
{
    if (o == NULL || o->url == NULL || o->url[0] == '\0')
        return fdn_err_set(err, FDN_EINVAL, "events: the PostgreSQL backend needs a url");
    const char *schema = o->schema != NULL && o->schema[0] != '\0' ? o->schema : "fdn";
    if (strlen(schema) > FDN__PG_SCHEMA_MAX)
        return fdn_err_set(err, FDN_EINVAL, "events: schema name longer than %d: %s",
                           FDN__PG_SCHEMA_MAX, schema);
    pgb_t *b = fdn__calloc(1, sizeof(*b));
    if (b == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
    pthread_mutex_init(&b->mu, NULL);
    CDS_INIT_LIST_HEAD(&b->waiters);
    b->max = o->pool_size > 0 ? o->pool_size : 4;
    b->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
    b->command_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 5000;
    memcpy(b->schema, schema, strlen(schema) + 1);
    b->url = fdn__strdup(o->url);
    b->idle = fdn__calloc(b->max, sizeof(*b->idle));
    if (b->url == NULL || b->idle == NULL) {
        pgb_close(b);
        return fdn_err_set(err, FDN_ENOMEM, "events: out of memory");
    }
    int rc = connect_one(b, &b->wconn, 0, err);
    /* The pool's first connection is opened here too, within connect_timeout_ms: the store's
     * own first call (the head, right after the open) then finds it idle and needs
     * command_timeout_ms for its command only. Made by that call, the connection would have
     * to fit in the command bound as well, and a short bound (a few hundred ms) with a slow
     * connection set-up (a loaded server forking its backend, TLS, a distant host) refused
     * the start. Later connections are made within their call's bound, as before. */
    fdn__pg_t *first = NULL;
    if (rc == 0 && (rc = fdn__pg_reopen(&first, b->url, b->schema, b->connect_ms, err)) == 0) {
        b->idle[b->nidle++] = first;
        b->nopen++;
    }
    if (rc != 0) {
        pgb_close(b);
        return rc;
    }
    out->ops = &pg_ops;
    out->state = b;
    return 0;
}
