/*
 * DESIGN: the rate limiter's Redis backend, behind fdn__limiter_backend_t (limiter_int.h), so
 * that every process of a fleet shares one limit per key.
 *
 * Server side (the engine client is storage/redis_limit.c): one Lua script holds the four
 * algorithms on Redis's clock, so hosts with skewed clocks agree on window edges; it is
 * loaded once and run with EVALSHA (again after NOSCRIPT). One hash per (key, algorithm) holds the
 * state: "<prefix>{<key>}:<digit>"; the braces are a Redis Cluster hash tag (a key and its
 * algorithm variants live in one slot, so a reset can delete them in one command), and each
 * write sets the hash to expire when the state would be fresh again.
 *
 * This file is the policy around that client: connections are the workers of an fdn_pool, created
 * on demand. A circuit breaker (fdn_breaker, the limiter's clock) wraps every check that goes to
 * Redis. A command is sent once: on an I/O error, a timeout or a reply that is not what the
 * script returns, the connection is dropped (checkin_broken), the breaker records a failure for
 * each check it carried, and the failure policy answers them. Nothing is queued or resent while
 * Redis is away: the queue below only holds checks while a connection is on its way back.
 *
 * Pipelining (see "Pipelines" below): a check that finds room leads a pipeline: its call and
 * up to pipeline_max - 1 waiting ones go in one write on a connection, and their replies are
 * read in order. A connection carries up to `depth` (4) pipelines at once: each writer takes
 * the connection's next ticket as it writes (one writer at a time), and the replies are read
 * ticket by ticket, Redis answering in the order the commands arrived (storage/redis_limit.c
 * writes on the socket itself and reads through hiredis's reader, so one thread may write
 * while another reads). Pipelines go to a new connection while the pool has room, then to the
 * connection carrying the fewest. A check finding no room waits in a FIFO queue until a
 * pipeline takes it in or a pipeline ends and hands it its room. So a lone check costs one
 * round trip with no queueing, and under load one write carries many checks and a round trip's
 * wait does not leave Redis idle. Every check keeps its own bound: it waits in the queue at
 * most until its deadline (command_timeout_ms from its start) and then falls back unsent; a
 * pipeline leaves out the checks with less than 1 ms left, and its send and its reads are
 * bounded by the earliest deadline of the rest. A pipeline waits for the earlier ones on its
 * connection to be read first; when its deadline passes meanwhile it gives up (its calls fail
 * as sent), and since its replies are not read, neither are those of the pipelines after it
 * on that connection (they fail as they find it), while the ones before it are read as
 * usual; the connection takes nothing new and is dropped after its last pipeline, without
 * the new generation a failure starts. Once a read fails, nothing more is written or read on
 * the connection: the pipelines after it fail as sent (never resent), and the last of them
 * ends its lease, broken. A failed write stops only the writing: the
 * pipelines written before it are still read. When the pool has room, a new connection is
 * opened for the waiting checks; one that opens hands its room to them too. A reset's
 * DEL is a pipeline of its own on the same connections.
 *
 * Opening a connection during a check (pipe_open, or a broken lease's refill in pipe_lead;
 * t_open_deadline tells conn_create the check's deadline) is bounded by that one deadline as
 * a whole: the connect, AUTH, SELECT and the script's load each get what is left of it when
 * they start (storage/redis_limit.c), and a step with less than 1 ms left is not taken
 * (FDN_ETIMEDOUT, which does not mark Redis unreachable), so the steps share the check's
 * bound instead of each taking what was left when the opening began. A connection opened
 * with no check (t_open_deadline 0) has connect_timeout_ms (at most command_timeout_ms) for
 * the connect and command_timeout_ms for each command. Either way it leaves the opening with
 * command_timeout_ms as its socket bounds (send_ms, recv_ms), which a pipeline lowers to its
 * own deadline.
 *
 * Failure policy: LOCAL checks the in-memory store (limiter_store.c) with the rule's limit and
 * burst divided by fleet_size (rounded up); OPEN allows; CLOSED denies until the breaker
 * lets a call through again. A cancel, an inc, a set or a reset that cannot reach Redis
 * returns FDN_EUNAVAILABLE (the shared count was not changed).
 *
 * Deny cache: a direct-mapped table of DENY_SLOTS entries (tag = hash of key, algorithm,
 * limit, period, burst) remembering "denied for cost >= c until t" (monotonic time of the
 * limiter's clock) after a denial with a finite retry time. A check that hits it is denied
 * without a round trip. It is advisory: a collision overwrites, a miss asks Redis. It can
 * deny a call that a cancel made room for in the meantime (until the retry time): the price
 * of not asking Redis on a flood of denied calls. For a fixed window the denied calls it
 * answers are not counted on the server (Hammer counts denied calls too); admission is the
 * same since that window stays over its limit. A reservation it denies took nothing, so it is
 * inactive (FDN__RSV_NOTHING_TAKEN) and a cancel gives nothing back. "Until" is the
 * limiter's time plus Redis's retry time, stopping at INT64_MAX (a manual clock may be near it).
 *
 * Threads and locks: none of its own. pmu guards the queue, the connections taking pipelines
 * and the counts (held for a few list operations, never during I/O); a connection's wmu is
 * held by its writer while it takes the waiting checks in (pmu inside it: the order is wmu
 * then pmu) and writes; the reads go in ticket order on a futex word; each deny cache slot
 * group has its own small mutex; counters are relaxed atomics.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/pool.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/lock.h"
#include "core/sync.h"
#include "infra/limiter_int.h"
#include "logic/redis_url.h"
#include "storage/redis_limit.h"

#define DENY_SLOTS   4096u /* power of two */
#define DENY_LOCKS   64u   /* power of two, divides DENY_SLOTS */
#define MAX_REDISKEY 4400u /* prefix (<= 256) + braces + key (<= 4096) + ":d" */

typedef struct deny_slot {
    uint64_t tag;     /* 0: empty */
    int64_t until;    /* monotonic ns of the limiter's clock */
    int64_t min_cost; /* denied for any cost >= this */
    int64_t limit;    /* res->limit of the denial */
} deny_slot_t;

typedef struct redisbe {
    fdn__redis_url_t url;
    int64_t connect_ms;
    int64_t command_ms;
    char *prefix;
    size_t prefixlen;
    fdn_limit_failure_policy_t policy;
    uint32_t fleet;
    fdn_clock_t *clock;
    fdn_pool_t *pool;
    fdn_breaker_t *breaker;
    void *local; /* the in-memory store: fallback (LOCAL) */
    fdn__rl_script_t script;
    fdn__mutex_t deny_mu[DENY_LOCKS];
    deny_slot_t deny[DENY_SLOTS];
    /* the pipelines: pmu guards the queue, the connections taking pipelines and the counts */
    fdn__mutex_t pmu;
    struct cds_list_head queue; /* preq_t waiting for room */
    struct rconn **act;         /* connections taking new pipelines, nact of them */
    uint32_t nact;
    uint32_t opening; /* connections being checked out for a pipeline */
    uint32_t leaders; /* pipelines under way (each headed by its leader) */
    uint32_t pool_size;
    uint32_t pipeline_max;
    uint32_t depth;          /* most pipelines a connection carries at once */
    void (*hold)(void *arg); /* tests (fdn__limiter_redis_set_hold): set before any check */
    void *hold_arg;
    _Atomic uint64_t batches, batched_calls, max_batch, give_ups;
    _Atomic bool connected;
    _Atomic uint64_t conn_gen; /* bumped when a connection breaks: older ones are not reused */
    _Atomic uint64_t allowed, denied, commands, errors, fallbacks, local_denials, script_loads;
    _Atomic uint64_t lat_le[8], lat_sum_us;
} redisbe_t;

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void count_sent(redisbe_t *b, const fdn__rl_sent_t *sent)
{
    atomic_fetch_add_explicit(&b->commands, sent->commands, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->script_loads, sent->loads, memory_order_relaxed);
}

/* ---- connections (pool workers) ------------------------------------------------------------ */

/* A pooled connection: made in generation `gen`; once a connection of the pool broke (Redis
 * restarted, the network dropped), every connection of an older generation is dropped at its
 * next checkout instead of failing one check each. It carries up to b->depth pipelines at
 * once (see "Pipelines" below): one writer at a time writes a pipeline and takes the next
 * ticket; the replies are read in ticket order. */
typedef struct rconn {
    struct redisContext *c;
    uint64_t gen;
    fdn__mutex_t wmu;           /* the writer's */
    uint32_t next_ticket;       /* wmu: the ticket of the next pipeline written */
    int64_t send_ms;            /* wmu: the send bound set on c now */
    _Atomic uint32_t read_turn; /* the ticket whose replies are read next */
    _Atomic uint32_t seq;       /* futex word: bumped when the turn moves or a pipeline gives up */
    _Atomic uint64_t dead_at;   /* 0, or 1 << 32 | the first ticket given up: it and the tickets
                                   after it are never read */
    int64_t recv_ms;            /* the reader in turn's: the receive bound set on c now */
    _Atomic bool broken;        /* a read failed: nothing more is read or written */
    _Atomic bool stalled;       /* that read failed at its deadline (Redis slow, not gone) */
    _Atomic bool wfail;         /* a write failed: nothing more is written (what went before it
                                   is still read) */
    fdn_pool_worker_t *w;       /* pmu: its lease, while it carries pipelines */
    uint32_t pipes;             /* pmu: pipelines on it (being written, or awaiting replies) */
    bool retired;               /* pmu: not in b->act (takes no new pipeline) */
} rconn_t;

/* Whether ticket t of r was given up, or comes after one that was: never read. */
static bool conn_dead(rconn_t *r, uint32_t t)
{
    uint64_t d = atomic_load_explicit(&r->dead_at, memory_order_acquire);
    return d != 0 && (int32_t)(t - (uint32_t)d) >= 0;
}

/* Whether r may carry a new pipeline. */
static bool conn_sound(rconn_t *r)
{
    return !atomic_load_explicit(&r->broken, memory_order_acquire) &&
           !atomic_load_explicit(&r->wfail, memory_order_acquire) &&
           atomic_load_explicit(&r->dead_at, memory_order_acquire) == 0;
}

/* The deadline of the check opening a connection on this thread (pipe_open), for conn_create,
 * which fdn_pool calls in that thread: 0 when none. */
static _Thread_local int64_t t_open_deadline;

static int conn_create(void **out, void *user)
{
    redisbe_t *b = user;
    /* a connection made during a check must not outlast the check's bound: the opening as a
     * whole (connect, AUTH, SELECT, the script's load) ends by its deadline, each step bounded
     * by what is left of it; without one, the connect by connect_ms (at most command_ms), each
     * command by command_ms */
    int64_t deadline = t_open_deadline;
    int64_t connect_ms = b->connect_ms < b->command_ms ? b->connect_ms : b->command_ms;
    rconn_t *conn = fdn__calloc(1, sizeof(*conn));
    if (conn == NULL)
        return FDN_ENOMEM;
    int rc = fdn__rl_connect(&conn->c, &b->url, connect_ms, b->command_ms, deadline);
    if (rc == 0) {
        /* pipelines name the script by its SHA1: the first connection learns it, before it
         * carries anything */
        char sha[41];
        bool loaded, broken = false;
        fdn__rl_sent_t sent = {0, 0};
        if (!fdn__rl_script_sha(&b->script, sha, &loaded))
            rc = fdn__rl_script_load(conn->c, &b->script, b->command_ms, deadline, &broken, &sent);
        if (rc != 0 && rc != FDN_ETIMEDOUT)
            rc = FDN_EUNAVAILABLE;
        count_sent(b, &sent);
        if (rc != 0)
            fdn__rl_close(conn->c);
    }
    if (rc != 0) {
        fdn__free(conn);
        /* out of time before a step: nothing says Redis is away */
        if (rc != FDN_ETIMEDOUT)
            atomic_store_explicit(&b->connected, false, memory_order_relaxed);
        return rc;
    }
    conn->gen = atomic_load_explicit(&b->conn_gen, memory_order_relaxed);
    conn->send_ms = conn->recv_ms = b->command_ms; /* what the opening left on the socket */
    pthread_mutex_init(&conn->wmu, NULL);
    *out = conn;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)user;
    rconn_t *rc = conn;
    fdn__rl_close(rc->c);
    pthread_mutex_destroy(&rc->wmu);
    fdn__free(rc);
}

/* Checkout-time check (validate_after_idle_ms 0): a connection older than the last break is
 * replaced. */
static int conn_validate(void *conn, void *user)
{
    const rconn_t *rc = conn;
    const redisbe_t *b = user;
    return rc->gen == atomic_load_explicit(&b->conn_gen, memory_order_relaxed) ? 0
                                                                               : FDN_EUNAVAILABLE;
}

/* Give a lease back. A broken one is dropped; one that failed (a read or a write: Redis may have
 * restarted, the network dropped) also starts a new connection generation, one whose
 * pipeline gave up waiting (its replies left unread: unusable, but nothing says Redis went
 * away) does not. */
static void lease_end(redisbe_t *b, fdn_pool_worker_t *w, bool broken, bool failed)
{
    if (broken) {
        if (failed)
            atomic_fetch_add_explicit(&b->conn_gen, 1, memory_order_relaxed);
        (void)fdn_pool_checkin_broken(b->pool, w);
    } else {
        (void)fdn_pool_checkin(b->pool, w);
    }
}

/* ---- deny cache ----------------------------------------------------------------------------
 * The slot is chosen by the key alone (so a reset finds it without knowing the rule); the tag
 * adds the rule. */

typedef struct deny_ref {
    uint64_t keyhash, tag;
} deny_ref_t;

static deny_ref_t deny_ref(const char *key, size_t keylen, const fdn_limit_rule_t *r)
{
    uint64_t h = fdn__hash(key, keylen);
    uint64_t t = h ^ ((uint64_t)r->algo << 56) ^ (uint64_t)r->limit * 0x9E3779B97F4A7C15ull ^
                 (uint64_t)r->period_ms * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)r->burst;
    return (deny_ref_t){h, t ? t : 1};
}

static deny_slot_t *deny_slot(redisbe_t *b, uint64_t keyhash, fdn__mutex_t **mu)
{
    uint32_t i = (uint32_t)(keyhash >> 20) & (DENY_SLOTS - 1);
    *mu = &b->deny_mu[i & (DENY_LOCKS - 1)];
    return &b->deny[i];
}

static bool deny_hit(redisbe_t *b, deny_ref_t ref, int64_t cost, int64_t now,
                     fdn_limit_result_t *res)
{
    fdn__mutex_t *mu;
    deny_slot_t *slot = deny_slot(b, ref.keyhash, &mu);
    fdn__mutex_lock(mu);
    deny_slot_t s = *slot;
    fdn__mutex_unlock(mu);
    if (s.tag != ref.tag || now >= s.until || cost < s.min_cost)
        return false;
    res->allowed = false;
    res->shadow_denied = false;
    res->limit = s.limit;
    res->count = s.limit;
    res->remaining = 0;
    res->reset_ns = res->retry_after_ns = s.until - now;
    return true;
}

/* now + retry (retry > 0), stopping at INT64_MAX: the limiter's clock (a manual one) may be
 * anywhere in int64, while Redis's answer is on Redis's own clock. */
static int64_t deny_until(int64_t now, int64_t retry)
{
    return now > INT64_MAX - retry ? INT64_MAX : now + retry;
}

static void deny_put(redisbe_t *b, deny_ref_t ref, int64_t cost, int64_t until, int64_t limit)
{
    fdn__mutex_t *mu;
    deny_slot_t *slot = deny_slot(b, ref.keyhash, &mu);
    fdn__mutex_lock(mu);
    *slot = (deny_slot_t){ref.tag, until, cost, limit};
    fdn__mutex_unlock(mu);
}

/* Forget what the cache holds for the key's slot (whatever the rule). */
static void deny_drop(redisbe_t *b, uint64_t keyhash)
{
    fdn__mutex_t *mu;
    deny_slot_t *slot = deny_slot(b, keyhash, &mu);
    fdn__mutex_lock(mu);
    slot->tag = 0;
    fdn__mutex_unlock(mu);
}

/* ---- pipelines -------------------------------------------------------------------------------
 * A check (or a check_many, or a reset's DEL) that finds room leads a pipeline: it writes its
 * calls and those of the checks waiting in the queue (up to pipeline_max) on a connection in one
 * write, then reads their replies. Room is a connection of b->act carrying fewer than b->depth
 * pipelines, or fewer than pool_size connections (one is then checked out for it: the one with
 * the fewest pipelines is taken only while no connection can be added, so load spreads over the
 * connections first). A check finding no room waits in a FIFO queue until a pipeline takes it
 * in, or until a pipeline ends and hands its room to it (the oldest waiter). So a lone check
 * costs one round trip with no queueing, and under load several pipelines are in flight on each
 * connection: one round trip's wait no longer leaves Redis idle (measured, bench/README.md:
 * 8 threads on 2 connections ran at 0.58x the raw 8-connection rate with one pipeline in
 * flight per connection, and at 0.99x with 4 connections). */

#define PIPE_DEPTH 4u /* the default of b->depth */

typedef enum pq_state {
    PQ_QUEUED, /* in b->queue */
    PQ_LEAD,   /* leads a pipeline: on ->conn, or on a connection it checks out (NULL) */
    PQ_TAKEN,  /* in another caller's pipeline */
    PQ_DONE,
} pq_state_t;

/* One caller's request: calls (a check, a check_many) or a reset's DEL (ncalls 0), which leads
 * a pipeline of its own. The caller waits on `state` itself (a futex word, no mutex): it is set
 * to LEAD and TAKEN under pmu, and to DONE with no lock, then woken. The wake-up may reach the
 * word after its caller returned (its frame gone): a futex wake reads no memory, and a later
 * word at that address takes it as a spurious return. */
typedef struct preq {
    struct cds_list_head node; /* in b->queue while PQ_QUEUED */
    fdn__rl_call_t **calls;    /* rc: also FDN_ETIMEDOUT when the call was never sent */
    size_t ncalls;             /* 0..FDN__RL_PIPELINE_MAX */
    const char *const *del_keys;
    const size_t *del_lens;
    int ndel;
    int64_t del_rc;         /* keys deleted, FDN_EUNAVAILABLE, or FDN_ETIMEDOUT: never sent */
    int64_t deadline_ns;    /* real monotonic */
    _Atomic uint32_t state; /* pq_state_t */
    struct preq *next_in;   /* the next member of the pipeline it heads or was taken into */
    bool late;              /* failed unsent (less than 1 ms was left, or nothing to send on) */
    struct rconn *conn;     /* PQ_LEAD: the connection to write on (NULL: check one out) */
} preq_t;

static void counter_max(_Atomic uint64_t *c, uint64_t v)
{
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (old < v && !atomic_compare_exchange_weak_explicit(c, &old, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

static void preq_set(preq_t *q, pq_state_t st)
{
    atomic_store_explicit(&q->state, (uint32_t)st, memory_order_release);
}

/* Fail q unsent. */
static void preq_fail(preq_t *q)
{
    for (size_t j = 0; j < q->ncalls; j++)
        q->calls[j]->rc = FDN_ETIMEDOUT;
    q->del_rc = FDN_ETIMEDOUT;
    q->late = true;
}

/* Fail every member of the pipeline q heads that is not failed yet, unsent. */
static void pipe_fail(preq_t *q)
{
    for (preq_t *p = q; p != NULL; p = p->next_in)
        if (!p->late)
            preq_fail(p);
}

static void act_remove_locked(redisbe_t *b, rconn_t *r)
{
    for (uint32_t i = 0; i < b->nact; i++) {
        if (b->act[i] == r) {
            b->act[i] = b->act[--b->nact];
            break;
        }
    }
    r->retired = true;
}

/* pmu held: room for one more pipeline: true with *conn the connection to write on, or NULL
 * when one is to be checked out; false when there is none. Broken connections and those of
 * an older generation are retired here: their pipelines end, the last ends their lease. */
static bool room_locked(redisbe_t *b, rconn_t **conn)
{
    uint64_t gen = atomic_load_explicit(&b->conn_gen, memory_order_relaxed);
    rconn_t *best = NULL;
    for (uint32_t i = 0; i < b->nact;) {
        rconn_t *r = b->act[i];
        if (!conn_sound(r) || r->gen != gen) {
            act_remove_locked(b, r); /* act[i] is another one now */
            continue;
        }
        if (r->pipes < b->depth && (best == NULL || r->pipes < best->pipes))
            best = r;
        i++;
    }
    /* every connection of b->act carries a pipeline: add one while the pool allows */
    if (b->nact + b->opening < b->pool_size) {
        *conn = NULL;
        return true;
    }
    *conn = best;
    return best != NULL;
}

/* pmu held: q leads a pipeline on conn (NULL: on one it checks out). */
static void claim_locked(redisbe_t *b, preq_t *q, rconn_t *conn)
{
    b->leaders++;
    if (conn != NULL)
        conn->pipes++;
    else
        b->opening++;
    q->conn = conn;
    preq_set(q, PQ_LEAD);
}

#define HAND_MAX 8u /* waiters one caller hands room to at once (the rest: at later ends) */

typedef struct hand {
    preq_t *q[HAND_MAX];
    uint32_t n;
} hand_t;

/* pmu held: hand room to the oldest waiters while there is some, first on `prefer` (when it is
 * sound), then wherever room_locked finds it. To wake after pmu is released. */
static void hand_locked(redisbe_t *b, rconn_t *prefer, hand_t *h)
{
    uint64_t gen = atomic_load_explicit(&b->conn_gen, memory_order_relaxed);
    while (h->n < HAND_MAX && !cds_list_empty(&b->queue)) {
        rconn_t *to = prefer;
        bool room = prefer != NULL && !prefer->retired && prefer->pipes < b->depth &&
                    prefer->gen == gen && conn_sound(prefer);
        if (!room && !room_locked(b, &to))
            break;
        preq_t *nx = fdn__list_first_entry(&b->queue, preq_t, node);
        cds_list_del(&nx->node);
        claim_locked(b, nx, to);
        h->q[h->n++] = nx;
    }
}

static void hand_wake(hand_t *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        fdn__word_wake_all(&h->q[i]->state);
}

/* pmu held: the pipeline q heads on conn (NULL: it had none) is over. Its room goes to the
 * oldest waiters (h, to wake); returns the connection whose lease ends now, else NULL. */
static rconn_t *end_locked(redisbe_t *b, rconn_t *conn, hand_t *h)
{
    b->leaders--;
    if (conn != NULL) {
        conn->pipes--;
        if (!conn_sound(conn) && !conn->retired)
            act_remove_locked(b, conn);
    }
    hand_locked(b, conn, h);
    if (conn != NULL && conn->pipes == 0) {
        if (!conn->retired)
            act_remove_locked(b, conn);
        return conn;
    }
    return NULL;
}

/* pmu held: q (a check, heading a pipeline) takes in the waiting checks that fit, oldest
 * first; a reset's DEL stops it (it leads its own). */
static void gather_locked(redisbe_t *b, preq_t *q)
{
    size_t total = q->ncalls;
    preq_t **tail = &q->next_in;
    while (!cds_list_empty(&b->queue)) {
        preq_t *p = fdn__list_first_entry(&b->queue, preq_t, node);
        if (p->ncalls == 0 || total + p->ncalls > b->pipeline_max)
            break;
        total += p->ncalls;
        cds_list_del(&p->node);
        preq_set(p, PQ_TAKEN);
        *tail = p;
        tail = &p->next_in;
    }
    *tail = NULL;
}

/* The members of q's pipeline with less than 1 ms left are failed unsent. Returns the earliest
 * deadline of the rest, INT64_MAX when none is left. */
static int64_t pipe_deadline(preq_t *q)
{
    int64_t now = fdn__mono_now_ns();
    int64_t deadline = INT64_MAX;
    for (preq_t *p = q; p != NULL; p = p->next_in) {
        if (p->late)
            continue;
        if (p->deadline_ns - now < 1000000)
            preq_fail(p);
        else if (p->deadline_ns < deadline)
            deadline = p->deadline_ns;
    }
    return deadline;
}

/* The calls of q's pipeline not failed unsent, in order, into calls[]. Returns how many. */
static size_t pipe_calls(const preq_t *q, fdn__rl_call_t **calls)
{
    size_t k = 0;
    for (const preq_t *p = q; p != NULL; p = p->next_in)
        for (size_t j = 0; !p->late && j < p->ncalls; j++)
            calls[k++] = p->calls[j];
    return k;
}

/* Check a connection out for q (alone yet), bounded by its deadline, and put it in b->act.
 * false: none (q failed unsent, its room given back). */
static bool pipe_open(redisbe_t *b, preq_t *q)
{
    fdn_pool_worker_t *w = NULL;
    int64_t left_ms = (q->deadline_ns - fdn__mono_now_ns()) / 1000000;
    t_open_deadline = q->deadline_ns;
    int rc = left_ms >= 1 ? fdn_pool_checkout(b->pool, &w, left_ms, NULL) : FDN_ETIMEDOUT;
    t_open_deadline = 0;
    hand_t h = {.n = 0};
    fdn__mutex_lock(&b->pmu);
    b->opening--;
    if (rc == 0) {
        rconn_t *r = fdn_pool_worker_conn(w);
        r->w = w;
        r->pipes = 1;
        r->retired = false;
        b->act[b->nact++] = r;
        q->conn = r;
    } else {
        (void)end_locked(b, NULL, &h);
    }
    fdn__mutex_unlock(&b->pmu);
    if (rc != 0) {
        preq_fail(q);
        hand_wake(&h);
    }
    return rc == 0;
}

/* Write q's pipeline on r under its writer's mutex (a first write takes the waiting checks in;
 * a retry, `again`, sends calls that met NOSCRIPT and loads the script first). Returns true with
 * *ticket and *load_first (whether it loaded the script first) when it went out; else every
 * member has its rc (failed unsent; or FDN_EUNAVAILABLE when the write failed: r takes no more
 * writes). */
static bool pipe_write(redisbe_t *b, preq_t *q, rconn_t *r, bool again, uint32_t *ticket,
                       bool *load_first)
{
    fdn__rl_call_t *calls[FDN__RL_PIPELINE_MAX];
    bool sent_ok = false;
    fdn__mutex_lock(&r->wmu);
    hand_t h = {.n = 0};
    if (!again) {
        fdn__mutex_lock(&b->pmu);
        if (q->ncalls > 0 && conn_sound(r)) /* a reset's DEL goes alone; r may have failed */
            gather_locked(b, q);
        hand_locked(b, r, &h); /* what it could not take in: room left on r, or elsewhere */
        fdn__mutex_unlock(&b->pmu);
        hand_wake(&h);
    }
    int64_t deadline = pipe_deadline(q);
    int64_t left_ms = deadline == INT64_MAX ? 0 : (deadline - fdn__mono_now_ns()) / 1000000;
    char sha[41];
    bool loaded = false;
    bool known = fdn__rl_script_sha(&b->script, sha, &loaded);
    if (deadline == INT64_MAX) {
        /* every member is late: nothing to send */
    } else if (left_ms < 1 || !conn_sound(r) || (q->ncalls > 0 && !known)) {
        pipe_fail(q);
    } else if (r->send_ms != left_ms && fdn__rl_set_send_timeout(r->c, left_ms) != 0) {
        atomic_store_explicit(&r->wfail, true, memory_order_release);
        pipe_fail(q);
    } else {
        r->send_ms = left_ms;
        fdn__buf_t out = FDN__BUF_INIT;
        fdn__rl_sent_t sent = {0, 0};
        size_t k = pipe_calls(q, calls);
        *load_first = again || !loaded;
        if (q->ncalls == 0)
            fdn__rl_encode_del(&out, q->del_keys, q->del_lens, q->ndel, &sent);
        else
            fdn__rl_encode_calls(&out, sha, calls, k, NULL, *load_first, &sent);
        if (out.oom) {
            pipe_fail(q);
        } else {
            bool broken = false;
            count_sent(b, &sent);
            for (size_t i = 0; i < k; i++) /* sent: no reply yet */
                calls[i]->rc = FDN_EUNAVAILABLE;
            q->del_rc = FDN_EUNAVAILABLE;
            if (fdn__rl_write(r->c, out.p, out.len, &broken) == 0) {
                *ticket = r->next_ticket++;
                sent_ok = true;
                if (q->ncalls > 0 && !again) {
                    atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
                    atomic_fetch_add_explicit(&b->batched_calls, k, memory_order_relaxed);
                    counter_max(&b->max_batch, k);
                }
            } else {
                atomic_store_explicit(&r->wfail, true, memory_order_release);
                atomic_store_explicit(&b->connected, false, memory_order_relaxed);
            }
        }
        fdn__free(out.p);
    }
    fdn__mutex_unlock(&r->wmu);
    return sent_ok;
}

/* Ticket's pipeline gives up waiting for its turn: neither it nor any ticket after it is read
 * (the earliest ticket given up wins), and r takes no new pipeline. */
static void give_up(redisbe_t *b, rconn_t *r, uint32_t ticket)
{
    uint64_t d = atomic_load_explicit(&r->dead_at, memory_order_acquire);
    uint64_t mine = (uint64_t)1 << 32 | ticket;
    while ((d == 0 || (int32_t)(ticket - (uint32_t)d) < 0) &&
           !atomic_compare_exchange_weak_explicit(&r->dead_at, &d, mine, memory_order_acq_rel,
                                                  memory_order_acquire)) {
    }
    atomic_fetch_add_explicit(&b->give_ups, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
    fdn__word_wake_all(&r->seq); /* the tickets after it stop waiting */
}

/* Wait for ticket's turn on r, read the replies of q's pipeline (written with load_first), and
 * pass the turn on. Returns how many calls answered NOSCRIPT (retry[i] set, i counting the
 * pipeline's calls in order). */
static size_t pipe_read(redisbe_t *b, preq_t *q, rconn_t *r, uint32_t ticket, bool load_first,
                        bool *retry)
{
    int64_t deadline = INT64_MAX;
    for (preq_t *p = q; p != NULL; p = p->next_in)
        if (!p->late && p->deadline_ns < deadline)
            deadline = p->deadline_ns;
    /* the earlier pipelines' reads are bounded by their own deadlines, which may be later than
     * this one's (a pipeline handed room may write after a newcomer). At this one's deadline
     * it gives up: its calls fail as sent, and since its replies will not be read, neither are
     * those of the pipelines after it on r (they fail as they find it); the ones before it go
     * on, and r takes nothing new */
    for (;;) {
        uint32_t seq = atomic_load_explicit(&r->seq, memory_order_acquire);
        if (atomic_load_explicit(&r->read_turn, memory_order_acquire) == ticket)
            break;
        if (conn_dead(r, ticket))
            return 0; /* one before it gave up: its calls keep FDN_EUNAVAILABLE (sent) */
        if (fdn__word_wait_until(&r->seq, seq, deadline) != FDN_ETIMEDOUT)
            continue;
        if (atomic_load_explicit(&r->read_turn, memory_order_acquire) == ticket)
            break; /* it came as the deadline passed: what is there is read */
        give_up(b, r, ticket);
        return 0;
    }
    size_t again = 0;
    bool broken = atomic_load_explicit(&r->broken, memory_order_acquire);
    if (!broken) {
        int64_t left_ms = (deadline - fdn__mono_now_ns()) / 1000000;
        if (left_ms < 1)
            left_ms = 1; /* it went out: its reply is read, or the connection dropped */
        if (r->recv_ms != left_ms) {
            if (fdn__rl_set_recv_timeout(r->c, left_ms) == 0)
                r->recv_ms = left_ms;
            else
                broken = true;
        }
    }
    if (q->ncalls == 0) {
        q->del_rc = broken ? FDN_EUNAVAILABLE : fdn__rl_read_del(r->c, q->ndel, &broken);
    } else {
        fdn__rl_call_t *calls[FDN__RL_PIPELINE_MAX];
        size_t k = pipe_calls(q, calls);
        again = fdn__rl_read_calls(r->c, &b->script, calls, k, NULL, load_first, retry, &broken);
    }
    if (broken && !atomic_load_explicit(&r->broken, memory_order_acquire)) {
        if (fdn__mono_now_ns() >= deadline - 1000000) /* the read met its bound */
            atomic_store_explicit(&r->stalled, true, memory_order_release);
        atomic_store_explicit(&r->broken, true, memory_order_release);
    }
    atomic_store_explicit(&b->connected, !broken, memory_order_relaxed);
    atomic_store_explicit(&r->read_turn, ticket + 1, memory_order_release);
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
    fdn__word_wake_all(&r->seq);
    return again;
}

/* The calls of q's pipeline that answered NOSCRIPT (retry[i]) are sent once more on r, the
 * script loaded first: the script did not run, so that is safe. */
static void pipe_retry(redisbe_t *b, preq_t *q, rconn_t *r, const bool *retry)
{
    fdn__rl_call_t *calls[FDN__RL_PIPELINE_MAX], *again[FDN__RL_PIPELINE_MAX];
    size_t k = pipe_calls(q, calls), m = 0;
    preq_t one = {.deadline_ns = INT64_MAX};
    for (size_t i = 0; i < k; i++)
        if (retry[i])
            again[m++] = calls[i];
    for (preq_t *p = q; p != NULL; p = p->next_in)
        if (!p->late && p->deadline_ns < one.deadline_ns)
            one.deadline_ns = p->deadline_ns;
    one.calls = again;
    one.ncalls = m;
    uint32_t ticket;
    bool load_first = true, scratch[FDN__RL_PIPELINE_MAX];
    if (pipe_write(b, &one, r, true, &ticket, &load_first))
        (void)pipe_read(b, &one, r, ticket, load_first, scratch); /* NOSCRIPT again: unavailable */
}

/* q leads a pipeline (PQ_LEAD): check a connection out if it has none, write, read, hand its
 * room on, and wake the members. */
static void pipe_lead(redisbe_t *b, preq_t *q)
{
    if (q->conn == NULL && !pipe_open(b, q))
        return;
    if (b->hold != NULL)
        b->hold(b->hold_arg);
    rconn_t *r = q->conn;
    uint32_t ticket;
    bool load_first = false;
    if (pipe_write(b, q, r, false, &ticket, &load_first)) {
        bool retry[FDN__RL_PIPELINE_MAX];
        size_t again = pipe_read(b, q, r, ticket, load_first, retry);
        if (again > 0 && conn_sound(r))
            pipe_retry(b, q, r, retry);
    }
    hand_t h = {.n = 0};
    fdn__mutex_lock(&b->pmu);
    rconn_t *done = end_locked(b, r, &h);
    fdn_pool_worker_t *w = done != NULL ? done->w : NULL;
    bool unusable = done != NULL && !conn_sound(done);
    /* a failure, not a give-up or a read that met its deadline (Redis slow, not gone) */
    bool failed = done != NULL && ((atomic_load_explicit(&done->broken, memory_order_acquire) &&
                                    !atomic_load_explicit(&done->stalled, memory_order_acquire)) ||
                                   atomic_load_explicit(&done->wfail, memory_order_acquire));
    fdn__mutex_unlock(&b->pmu);
    hand_wake(&h);
    for (preq_t *p = q->next_in; p != NULL;) {
        preq_t *after = p->next_in; /* p's frame may be gone once it is DONE */
        preq_set(p, PQ_DONE);
        fdn__word_wake_all(&p->state);
        p = after;
    }
    if (w != NULL) { /* last: a broken lease's refill connects here, bounded by this deadline */
        t_open_deadline = q->deadline_ns;
        lease_end(b, w, unusable, failed);
        t_open_deadline = 0;
    }
}

/* Run q through a pipeline: lead one, or wait to be taken into one (or handed room). */
static void pipe_run(redisbe_t *b, preq_t *q)
{
    rconn_t *to;
    fdn__mutex_lock(&b->pmu);
    if (cds_list_empty(&b->queue) && room_locked(b, &to)) { /* no overtaking the queue */
        claim_locked(b, q, to);
        fdn__mutex_unlock(&b->pmu);
        pipe_lead(b, q);
        return;
    }
    preq_set(q, PQ_QUEUED);
    cds_list_add_tail(&q->node, &b->queue);
    fdn__mutex_unlock(&b->pmu);
    for (;;) {
        uint32_t st = atomic_load_explicit(&q->state, memory_order_acquire);
        if (st == PQ_DONE)
            return;
        if (st == PQ_LEAD) {
            pipe_lead(b, q);
            return;
        }
        /* once taken, the pipeline's reads are bounded (its earliest deadline) */
        int64_t until = st == PQ_QUEUED ? q->deadline_ns : INT64_MAX;
        if (fdn__word_wait_until(&q->state, st, until) != FDN_ETIMEDOUT)
            continue;
        fdn__mutex_lock(&b->pmu);
        if (atomic_load_explicit(&q->state, memory_order_relaxed) == PQ_QUEUED) {
            cds_list_del(&q->node);
            preq_fail(q); /* never sent */
            preq_set(q, PQ_DONE);
        }
        fdn__mutex_unlock(&b->pmu);
    }
}

/* ---- the backend --------------------------------------------------------------------------- */

/* The failure policy for a rule: its own (FDN_LIMIT_RULE_FAIL_*) or the limiter's. */
static fdn_limit_failure_policy_t policy_of(const redisbe_t *b, unsigned rule_flags)
{
    if (rule_flags & FDN_LIMIT_RULE_FAIL_LOCAL)
        return FDN_LIMIT_FAIL_LOCAL;
    if (rule_flags & FDN_LIMIT_RULE_FAIL_OPEN)
        return FDN_LIMIT_FAIL_OPEN;
    if (rule_flags & FDN_LIMIT_RULE_FAIL_CLOSED)
        return FDN_LIMIT_FAIL_CLOSED;
    return b->policy;
}

static int fallback(redisbe_t *b, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    unsigned rule_flags, int64_t cost, fdn__limit_op_t op,
                    const fdn__limit_now_t *now, fdn_limit_result_t *res,
                    fdn_limit_reservation_t *rsv)
{
    count(&b->fallbacks);
    if (op == FDN__LIMIT_CANCEL || op == FDN__LIMIT_INC || op == FDN__LIMIT_SET)
        return FDN_EUNAVAILABLE; /* the shared count could not be changed */
    fdn_limit_failure_policy_t policy = policy_of(b, rule_flags);
    if (policy == FDN_LIMIT_FAIL_LOCAL) {
        fdn_limit_rule_t r = *rule;
        r.limit = fdn__limit_ceil_div(r.limit, b->fleet);
        if (r.burst > 0)
            r.burst = fdn__limit_ceil_div(r.burst, b->fleet);
        return fdn__limiter_mem_backend.apply(b->local, key, keylen, &r, 0, cost, op, now, res,
                                              rsv);
    }
    bool open = policy == FDN_LIMIT_FAIL_OPEN;
    int64_t lim = rule->algo == FDN_LIMIT_TOKEN_BUCKET || rule->algo == FDN_LIMIT_GCRA
                      ? (rule->burst > 0 ? rule->burst : rule->limit)
                      : rule->limit;
    fdn_breaker_status_t st;
    int64_t retry = b->command_ms * 1000000LL;
    if (fdn_breaker_status(b->breaker, &st) == 0 && st.ms_until_half_open > 0)
        retry = st.ms_until_half_open * 1000000LL;
    *res = (fdn_limit_result_t){.allowed = open,
                                .count = open ? 0 : lim,
                                .limit = lim,
                                .remaining = open ? lim : 0,
                                .reset_ns = open ? 0 : retry,
                                .retry_after_ns = open ? 0 : retry};
    if (rsv)
        rsv->epoch = 0;
    return 0;
}

/* "<prefix>{<key>}:<digit>" into buf (MAX_REDISKEY). Returns its length. */
static size_t redis_key(const redisbe_t *b, const char *key, size_t keylen, int algo, char *buf)
{
    size_t n = 0;
    memcpy(buf, b->prefix, b->prefixlen);
    n += b->prefixlen;
    buf[n++] = '{';
    memcpy(buf + n, key, keylen);
    n += keylen;
    buf[n++] = '}';
    buf[n++] = ':';
    buf[n++] = (char)('0' + algo);
    return n;
}

static void record_latency(redisbe_t *b, int64_t us)
{
    static const int64_t bounds[7] = FDN_LIMITER_LATENCY_BOUNDS_US;
    for (int i = 0; i < 7; i++)
        if (us <= bounds[i])
            atomic_fetch_add_explicit(&b->lat_le[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->lat_le[7], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->lat_sum_us, (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

/* Per item scratch of run_items. */
typedef struct item_slot {
    fdn__rl_call_t call;
    deny_ref_t ref;
    int64_t mono;
    fdn_breaker_permit_t permit;
    bool sending;
} item_slot_t;

/* Run it[0..n) (n <= FDN__RL_PIPELINE_MAX), each call's outcome in it[i].rc: the ones the deny
 * cache, the breaker or the rule's LOCAL flag answer here, the rest as one pipeline sharing one
 * bound. slots[n], ptrs[n] and rkeys (room for every Redis key) are the caller's. */
static void run_items(redisbe_t *b, fdn__limit_item_t *it, size_t n, const fdn__limit_now_t *now,
                      item_slot_t *slots, fdn__rl_call_t **ptrs, char *rkeys)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        fdn__limit_item_t *x = &it[i];
        item_slot_t *sl = &slots[i];
        sl->sending = false;
        if (x->rule_flags & FDN_LIMIT_RULE_LOCAL) { /* this rule's limit is per process */
            x->rc = fdn__limiter_mem_backend.apply(b->local, x->key, x->keylen, x->rule, 0, x->cost,
                                                   x->op, now, x->res, x->rsv);
            continue;
        }
        if (b->prefixlen + x->keylen + 4 > MAX_REDISKEY) {
            x->rc = FDN_EINVAL;
            continue;
        }
        sl->ref = deny_ref(x->key, x->keylen, x->rule);
        sl->mono = fdn_clock_mono_ns(b->clock);
        if ((x->op == FDN__LIMIT_CHECK || x->op == FDN__LIMIT_PEEK) &&
            deny_hit(b, sl->ref, x->cost, sl->mono, x->res)) {
            if (x->rsv) /* Redis counted nothing, not even on a fixed window */
                x->rsv->cost = FDN__RSV_NOTHING_TAKEN;
            count(&b->local_denials);
            count(&b->denied);
            x->rc = 0;
            continue;
        }
        if (fdn_breaker_acquire(b->breaker, &sl->permit) != 0) {
            x->rc = fallback(b, x->key, x->keylen, x->rule, x->rule_flags, x->cost, x->op, now,
                             x->res, x->rsv);
            continue;
        }
        size_t len = redis_key(b, x->key, x->keylen, (int)x->rule->algo, rkeys);
        sl->call = (fdn__rl_call_t){.rkey = rkeys,
                                    .rkeylen = len,
                                    .rule = x->rule,
                                    .cost = x->cost,
                                    .op = x->op,
                                    .epoch_in = x->rsv ? x->rsv->epoch : 0,
                                    .res = x->res};
        rkeys += len;
        sl->sending = true;
        ptrs[k++] = &sl->call;
    }
    if (k == 0)
        return;
    /* one bound for the whole call: waiting for a pipeline or a connection (or making one) and
     * the round trip share command_timeout_ms, on the real clock (the limiter's may be manual) */
    int64_t start = fdn__mono_now_ns();
    preq_t q = {.calls = ptrs, .ncalls = k, .deadline_ns = start + b->command_ms * 1000000};
    pipe_run(b, &q);
    int64_t took_us = (fdn__mono_now_ns() - start) / 1000;
    for (size_t i = 0; i < n; i++) {
        fdn__limit_item_t *x = &it[i];
        item_slot_t *sl = &slots[i];
        if (!sl->sending)
            continue;
        int rc = sl->call.rc;
        if (rc != FDN_ETIMEDOUT) /* it was sent */
            record_latency(b, took_us);
        fdn_breaker_record(b->breaker, &sl->permit, rc == FDN_ENOENT ? 0 : rc);
        if (rc == FDN_EUNAVAILABLE)
            count(&b->errors);
        if (rc == FDN_EUNAVAILABLE || rc == FDN_ETIMEDOUT) {
            x->rc = fallback(b, x->key, x->keylen, x->rule, x->rule_flags, x->cost, x->op, now,
                             x->res, x->rsv);
            continue;
        }
        x->rc = rc;
        if (rc != 0)
            continue;
        if (x->op == FDN__LIMIT_CANCEL || x->op == FDN__LIMIT_SET) {
            deny_drop(b, sl->ref.keyhash); /* the count went down, or may have */
        } else if (x->op == FDN__LIMIT_CHECK) {
            if (x->rsv)
                x->rsv->epoch = sl->call.epoch_out;
            count(x->res->allowed ? &b->allowed : &b->denied);
            if (!x->res->allowed && x->res->retry_after_ns > 0 &&
                x->res->retry_after_ns != INT64_MAX)
                deny_put(b, sl->ref, x->cost, deny_until(sl->mono, x->res->retry_after_ns),
                         x->res->limit);
        }
    }
}

static int redis_apply(void *self, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                       unsigned rule_flags, int64_t cost, fdn__limit_op_t op,
                       const fdn__limit_now_t *now, fdn_limit_result_t *res,
                       fdn_limit_reservation_t *rsv)
{
    fdn__limit_item_t it = {key, keylen, rule, rule_flags, cost, op, res, rsv, 0};
    item_slot_t slot;
    fdn__rl_call_t *ptr;
    char rkey[MAX_REDISKEY];
    run_items(self, &it, 1, now, &slot, &ptr, rkey);
    return it.rc;
}

/* Several items: their Redis calls go as one pipeline (one round trip). */
static void redis_apply_many(void *self, fdn__limit_item_t *it, size_t n,
                             const fdn__limit_now_t *now)
{
    redisbe_t *b = self;
    size_t keys = 0;
    for (size_t i = 0; i < n; i++)
        keys += b->prefixlen + it[i].keylen + 4;
    /* one block: slots, call pointers, then the keys */
    size_t head = n * (sizeof(item_slot_t) + sizeof(fdn__rl_call_t *));
    void *mem = n <= FDN__RL_PIPELINE_MAX ? fdn__malloc(head + keys) : NULL;
    if (mem == NULL) {
        for (size_t i = 0; i < n; i++)
            it[i].rc = n <= FDN__RL_PIPELINE_MAX ? FDN_ENOMEM : FDN_EINVAL;
        return;
    }
    item_slot_t *slots = mem;
    fdn__rl_call_t **ptrs = (fdn__rl_call_t **)(void *)(slots + n);
    run_items(b, it, n, now, slots, ptrs, (char *)(ptrs + n));
    fdn__free(mem);
}

static int redis_forget(void *self, const char *key, size_t keylen)
{
    redisbe_t *b = self;
    if (b->prefixlen + keylen + 4 > MAX_REDISKEY)
        return FDN_EINVAL;
    deny_drop(b, fdn__hash(key, keylen));
    char rkeys[4][MAX_REDISKEY];
    const char *keys[4];
    size_t lens[4];
    for (int a = 0; a < 4; a++) {
        lens[a] = redis_key(b, key, keylen, a, rkeys[a]);
        keys[a] = rkeys[a];
    }
    fdn_breaker_permit_t permit;
    if (fdn_breaker_acquire(b->breaker, &permit) != 0)
        return FDN_EUNAVAILABLE;
    preq_t q = {.del_keys = keys,
                .del_lens = lens,
                .ndel = 4,
                .del_rc = FDN_ETIMEDOUT,
                .deadline_ns = fdn__mono_now_ns() + b->command_ms * 1000000};
    pipe_run(b, &q); /* a DEL in its own pipeline, on a connection the checks share */
    int rc = q.del_rc < 0 ? FDN_EUNAVAILABLE : q.del_rc > 0 ? 0 : FDN_ENOENT;
    fdn_breaker_record(b->breaker, &permit, rc == FDN_EUNAVAILABLE ? rc : 0);
    if (q.del_rc == FDN_EUNAVAILABLE)
        count(&b->errors);
    (void)fdn__limiter_mem_backend.forget(b->local, key, keylen);
    return rc;
}

static size_t redis_sweep(void *self, const fdn__limit_now_t *now)
{
    redisbe_t *b = self; /* Redis expires its keys itself; the fallback store is swept */
    return fdn__limiter_mem_backend.sweep(b->local, now);
}

static void redis_stats(void *self, fdn_limiter_stats_t *out)
{
    redisbe_t *b = self;
    fdn__limiter_mem_backend.stats(b->local, out);
    out->allowed += atomic_load_explicit(&b->allowed, memory_order_relaxed);
    out->denied += atomic_load_explicit(&b->denied, memory_order_relaxed);
}

static void redis_status(void *self, fdn_limiter_backend_status_t *out)
{
    redisbe_t *b = self;
    fdn__limiter_mem_backend.status(b->local, out); /* the in-process store's keys */
    out->backend = FDN_LIMITER_BACKEND_REDIS;
    out->connected = atomic_load_explicit(&b->connected, memory_order_relaxed);
    out->breaker_state = (int)fdn_breaker_state(b->breaker);
    out->commands = atomic_load_explicit(&b->commands, memory_order_relaxed);
    out->errors = atomic_load_explicit(&b->errors, memory_order_relaxed);
    out->fallbacks = atomic_load_explicit(&b->fallbacks, memory_order_relaxed);
    out->local_denials = atomic_load_explicit(&b->local_denials, memory_order_relaxed);
    out->script_loads = atomic_load_explicit(&b->script_loads, memory_order_relaxed);
    for (int i = 0; i < 8; i++)
        out->latency_le_us[i] = atomic_load_explicit(&b->lat_le[i], memory_order_relaxed);
    out->latency_sum_us = atomic_load_explicit(&b->lat_sum_us, memory_order_relaxed);
}

bool fdn__limiter_redis_available(void *self)
{
    redisbe_t *b = self;
    return atomic_load_explicit(&b->connected, memory_order_relaxed) &&
           fdn_breaker_state(b->breaker) == FDN_BREAKER_CLOSED;
}

int64_t fdn__limiter_redis_last_refusal(void *self)
{
    redisbe_t *b = self;
    return fdn__limiter_mem_last_refusal(b->local);
}

void fdn__limiter_redis_pipeline_counts(void *self, fdn__redis_pipe_stats_t *out)
{
    redisbe_t *b = self;
    out->batches = atomic_load_explicit(&b->batches, memory_order_relaxed);
    out->calls = atomic_load_explicit(&b->batched_calls, memory_order_relaxed);
    out->max_batch = atomic_load_explicit(&b->max_batch, memory_order_relaxed);
    out->give_ups = atomic_load_explicit(&b->give_ups, memory_order_relaxed);
    fdn__mutex_lock(&b->pmu);
    out->leaders = b->leaders;
    out->queued = 0;
    struct cds_list_head *pos;
    cds_list_for_each(pos, &b->queue) out->queued++;
    fdn__mutex_unlock(&b->pmu);
}

void fdn__limiter_redis_set_depth(void *self, uint32_t depth)
{
    redisbe_t *b = self;
    fdn__mutex_lock(&b->pmu);
    b->depth = depth < 1 ? 1 : depth;
    fdn__mutex_unlock(&b->pmu);
}

void fdn__limiter_redis_set_hold(void *self, void (*fn)(void *arg), void *arg)
{
    redisbe_t *b = self;
    b->hold = fn;
    b->hold_arg = arg;
}

static void redis_set_interval(void *self, int64_t interval_ns)
{
    redisbe_t *b = self;
    fdn__limiter_mem_backend.set_interval(b->local, interval_ns);
}

static void redis_destroy(void *self)
{
    redisbe_t *b = self;
    if (b == NULL)
        return;
    if (b->pool) {
        (void)fdn_pool_shutdown(b->pool, 0);
        fdn_pool_destroy(b->pool);
    }
    fdn_breaker_destroy(b->breaker);
    if (b->local)
        fdn__limiter_mem_backend.destroy(b->local);
    for (uint32_t i = 0; i < DENY_LOCKS; i++)
        pthread_mutex_destroy(&b->deny_mu[i]);
    pthread_mutex_destroy(&b->pmu);
    fdn__rl_script_fini(&b->script);
    fdn__free(b->act);
    fdn__free(b->prefix);
    fdn__free(b);
}

const fdn__limiter_backend_t fdn__limiter_redis_backend = {
    FDN__LIMITER_BACKEND_VERSION, redis_apply,  redis_forget,  redis_sweep,      redis_stats,
    redis_set_interval,           redis_status, redis_destroy, redis_apply_many,
};

int fdn__limiter_redis_create(void **out, const fdn_limiter_redis_opts_t *o, uint32_t pipeline_max,
                              void *local, fdn_clock_t *clock, fdn_error_t *err)
{
    if (pipeline_max < 1 || pipeline_max > FDN__RL_PIPELINE_MAX)
        return fdn_err_set(err, FDN_EINVAL, "redis pipeline_max must be 1..%d (got %u)",
                           FDN__RL_PIPELINE_MAX, pipeline_max);
    if (o->pool_size < 1 || o->pool_size > 1024)
        return fdn_err_set(err, FDN_EINVAL, "redis pool_size must be 1..1024 (got %u)",
                           o->pool_size);
    if (o->connect_timeout_ms < 1 || o->connect_timeout_ms > 60000)
        return fdn_err_set(err, FDN_EINVAL, "redis connect_timeout_ms must be 1..60000");
    if (o->command_timeout_ms < 1 || o->command_timeout_ms > 60000)
        return fdn_err_set(err, FDN_EINVAL, "redis command_timeout_ms must be 1..60000");
    if ((unsigned)o->failure_policy > FDN_LIMIT_FAIL_CLOSED)
        return fdn_err_set(err, FDN_EINVAL, "unknown redis failure policy %d",
                           (int)o->failure_policy);
    if (o->fleet_size < 1)
        return fdn_err_set(err, FDN_EINVAL, "fleet_size must be >= 1");
    const char *prefix = o->key_prefix ? o->key_prefix : "";
    size_t plen = strlen(prefix);
    if (plen > 256)
        return fdn_err_set(err, FDN_EINVAL, "redis key_prefix longer than 256 bytes");
    redisbe_t *b = fdn__calloc(1, sizeof(*b));
    if (b == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    int rc = fdn__redis_url_parse(o->url, &b->url, err);
    if (rc) {
        fdn__free(b);
        return rc;
    }
    b->prefix = fdn__malloc(plen + 1);
    if (b->prefix == NULL) {
        fdn__free(b);
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    }
    memcpy(b->prefix, prefix, plen + 1);
    b->prefixlen = plen;
    b->connect_ms = o->connect_timeout_ms;
    b->command_ms = o->command_timeout_ms;
    b->policy = o->failure_policy;
    b->fleet = o->fleet_size;
    b->clock = clock;
    atomic_init(&b->connected, true); /* no command has failed yet */
    b->pool_size = o->pool_size;
    b->pipeline_max = pipeline_max;
    b->depth = PIPE_DEPTH;
    b->act = fdn__calloc(o->pool_size, sizeof(*b->act));
    if (b->act == NULL) {
        fdn__free(b->prefix);
        fdn__free(b);
        return fdn_err_set(err, FDN_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&b->pmu, NULL);
    CDS_INIT_LIST_HEAD(&b->queue);
    fdn__rl_script_init(&b->script);
    for (uint32_t i = 0; i < DENY_LOCKS; i++)
        pthread_mutex_init(&b->deny_mu[i], NULL);

    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 3;
    bo.window_ms = 10000;
    bo.recovery_time_ms = 500;
    bo.probe_timeout_ms = o->command_timeout_ms * 2 + 100;
    bo.clock = clock;
    rc = fdn_breaker_create(&b->breaker, "limiter.redis", &bo);
    if (rc == 0) {
        fdn_pool_opts_t po = FDN_POOL_OPTS_INIT;
        po.name = "limiter.redis";
        po.size = (int)o->pool_size;
        po.max_overflow = 0;
        po.prefill = false;
        po.create = conn_create;
        po.destroy = conn_destroy;
        po.validate = conn_validate;
        po.validate_after_idle_ms = 0;
        po.user = b;
        rc = fdn_pool_create(&b->pool, &po, err);
    }
    if (rc) {
        redis_destroy(b);
        return rc;
    }
    b->local = local; /* owned from here on */
    *out = b;
    return 0;
}
