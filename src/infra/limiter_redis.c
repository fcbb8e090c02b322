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
 * Pipelining: at most pool_size checks "lead" at once, each with its own connection. A check
 * arriving while every leader slot is taken waits in a FIFO queue; a leader sends its own call
 * and up to pipeline_max - 1 waiting ones in one write and reads their replies in order
 * (storage/redis_limit.c, fdn__rl_eval_many), then passes its slot to the oldest waiter. So a
 * lone check costs one round trip with no queueing, and under load one round trip (and one
 * read and one write on each side) carries many checks: what raises Redis's throughput. Every
 * check keeps its own bound: it waits in the queue at most until its deadline
 * (command_timeout_ms from its start) and then falls back unsent; a leader drops from its
 * pipeline the checks with less than 1 ms left and bounds the round trip by the earliest
 * deadline of the rest.

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
 * Threads and locks: none of its own. pmu guards the queue and the leader count (held for a few
 * list operations, never during a round trip); each deny cache slot group has its own small
 * mutex; counters are relaxed atomics.
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
    /* the pipeline: pmu guards queue and leaders */
    fdn__mutex_t pmu;
    struct cds_list_head queue; /* preq_t waiting for a leader */
    uint32_t leaders;           /* checks sending a pipeline now, <= pool_size */
    uint32_t pool_size;
    uint32_t pipeline_max;
    _Atomic uint64_t batches, batched_calls, max_batch;
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
 * next checkout instead of failing one check each. */
typedef struct rconn {
    struct redisContext *c;
    uint64_t gen;
    int64_t timeout_ms; /* the command timeout set on c now */
} rconn_t;

static int conn_create(void **out, void *user)
{
    redisbe_t *b = user;
    /* a connection made during a check must not outlast the check's bound */
    int64_t connect_ms = b->connect_ms < b->command_ms ? b->connect_ms : b->command_ms;
    rconn_t *conn = fdn__malloc(sizeof(*conn));
    if (conn == NULL)
        return FDN_ENOMEM;
    int rc = fdn__rl_connect(&conn->c, &b->url, connect_ms, b->command_ms);
    if (rc != 0) {
        fdn__free(conn);
        atomic_store_explicit(&b->connected, false, memory_order_relaxed);
        return rc;
    }
    conn->gen = atomic_load_explicit(&b->conn_gen, memory_order_relaxed);
    conn->timeout_ms = b->command_ms;
    *out = conn;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)user;
    rconn_t *rc = conn;
    fdn__rl_close(rc->c);
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

static struct redisContext *lease_ctx(const fdn_pool_worker_t *w)
{
    return ((rconn_t *)fdn_pool_worker_conn(w))->c;
}

/* Bound the lease's next command by ms (what is left of the call's command_timeout_ms); a
 * syscall only when the bound changes. 0 or FDN_EUNAVAILABLE. */
static int lease_timeout(const fdn_pool_worker_t *w, int64_t ms)
{
    rconn_t *rc = fdn_pool_worker_conn(w);
    if (rc->timeout_ms == ms)
        return 0;
    if (fdn__rl_set_timeout(rc->c, ms) != 0)
        return FDN_EUNAVAILABLE;
    rc->timeout_ms = ms;
    return 0;
}

/* Give a lease back; a broken one starts a new connection generation. */
static void lease_end(redisbe_t *b, fdn_pool_worker_t *w, bool broken)
{
    if (broken) {
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

/* ---- the pipeline ---------------------------------------------------------------------------
 * At most pool_size checks lead at a time; each leader sends its own call and every call
 * waiting in the queue (up to pipeline_max) as one pipeline on one connection, then hands its
 * slot to the oldest waiter left. A check waits in the queue only while every connection is
 * busy, so a lone check costs one round trip, and under load each round trip carries many. */

typedef enum pq_state {
    PQ_QUEUED, /* in b->queue */
    PQ_LEAD,   /* holds a leader slot */
    PQ_TAKEN,  /* in a leader's pipeline */
    PQ_DONE,
} pq_state_t;

typedef struct preq {          /* one caller's calls: a check, or a check_many */
    struct cds_list_head node; /* in b->queue while PQ_QUEUED */
    fdn__rl_call_t **calls;    /* rc: also FDN_ETIMEDOUT when the call was never sent */
    size_t ncalls;             /* 1..FDN__RL_PIPELINE_MAX */
    int64_t deadline_ns;       /* real monotonic */
    pq_state_t state;          /* pmu */
    bool cv_ready;
    pthread_cond_t cv; /* made when the check waits */
} preq_t;

static void counter_max(_Atomic uint64_t *c, uint64_t v)
{
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (old < v && !atomic_compare_exchange_weak_explicit(c, &old, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

static void preq_fail(preq_t *q)
{
    for (size_t j = 0; j < q->ncalls; j++)
        q->calls[j]->rc = FDN_ETIMEDOUT;
}

/* Send the calls of batch[0..n) (leader: batch[0]; FDN__RL_PIPELINE_MAX calls at most) as one
 * pipeline; each call's rc says how it went. */
static void pipe_send(redisbe_t *b, preq_t **batch, size_t n)
{
    fdn__rl_call_t *calls[FDN__RL_PIPELINE_MAX];
    int64_t now = fdn__mono_now_ns();
    int64_t deadline = INT64_MAX;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->deadline_ns - now < 1000000) { /* less than 1 ms left: do not send */
            preq_fail(batch[i]);
            continue;
        }
        if (batch[i]->deadline_ns < deadline)
            deadline = batch[i]->deadline_ns;
        for (size_t j = 0; j < batch[i]->ncalls; j++)
            calls[k++] = batch[i]->calls[j];
    }
    if (k == 0)
        return;
    fdn_pool_worker_t *w;
    int rc = fdn_pool_checkout(b->pool, &w, (deadline - now) / 1000000, NULL);
    int64_t left_ms = (deadline - fdn__mono_now_ns()) / 1000000;
    if (rc == 0 && (left_ms < 1 || lease_timeout(w, left_ms) != 0)) {
        lease_end(b, w, left_ms >= 1); /* a connection that refused its timeout is dropped */
        rc = FDN_ETIMEDOUT;
    }
    if (rc != 0) {
        for (size_t i = 0; i < k; i++)
            calls[i]->rc = FDN_ETIMEDOUT;
        return;
    }
    bool broken = false;
    fdn__rl_sent_t sent = {0, 0};
    rc = fdn__rl_eval_many(lease_ctx(w), &b->script, calls, k, &broken, &sent);
    count_sent(b, &sent);
    lease_end(b, w, broken);
    atomic_store_explicit(&b->connected, rc == 0 || !broken, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->batched_calls, k, memory_order_relaxed);
    counter_max(&b->max_batch, k);
}

/* Run q's calls through the pipeline: lead one, or wait to be taken into one. */
static void pipe_run(redisbe_t *b, preq_t *q)
{
    fdn__mutex_lock(&b->pmu);
    if (b->leaders < b->pool_size) {
        b->leaders++;
        q->state = PQ_LEAD;
    } else {
        q->state = PQ_QUEUED;
        q->cv_ready = fdn__cond_init_mono(&q->cv) == 0;
        if (!q->cv_ready) {
            fdn__mutex_unlock(&b->pmu);
            preq_fail(q); /* cannot wait: not sent */
            return;
        }
        cds_list_add_tail(&q->node, &b->queue);
        while (q->state == PQ_QUEUED || q->state == PQ_TAKEN) {
            /* once taken, the leader's own bound (the batch's earliest deadline) ends the wait */
            int64_t until = q->state == PQ_QUEUED ? q->deadline_ns : INT64_MAX;
            if (fdn__cond_wait_until(&q->cv, &b->pmu, until) == FDN_ETIMEDOUT &&
                q->state == PQ_QUEUED) {
                cds_list_del(&q->node);
                preq_fail(q);
                q->state = PQ_DONE;
            }
        }
    }
    if (q->state == PQ_LEAD) {
        preq_t *batch[FDN__RL_PIPELINE_MAX];
        size_t n = 0, total = q->ncalls;
        batch[n++] = q;
        while (!cds_list_empty(&b->queue)) {
            preq_t *p = fdn__list_first_entry(&b->queue, preq_t, node);
            if (total + p->ncalls > b->pipeline_max)
                break;
            total += p->ncalls;
            cds_list_del(&p->node);
            p->state = PQ_TAKEN;
            batch[n++] = p;
        }
        fdn__mutex_unlock(&b->pmu);
        pipe_send(b, batch, n);
        fdn__mutex_lock(&b->pmu);
        q->state = PQ_DONE;
        for (size_t i = 1; i < n; i++) {
            batch[i]->state = PQ_DONE;
            pthread_cond_signal(&batch[i]->cv);
        }
        if (!cds_list_empty(&b->queue)) { /* the slot goes to the oldest waiter */
            preq_t *p = fdn__list_first_entry(&b->queue, preq_t, node);
            cds_list_del(&p->node);
            p->state = PQ_LEAD;
            pthread_cond_signal(&p->cv);
        } else {
            b->leaders--;
        }
    }
    fdn__mutex_unlock(&b->pmu);
    if (q->cv_ready)
        pthread_cond_destroy(&q->cv);
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
    fdn_pool_worker_t *w;
    if (fdn_pool_checkout(b->pool, &w, b->command_ms, NULL) != 0) {
        fdn_breaker_record(b->breaker, &permit, FDN_EUNAVAILABLE);
        return FDN_EUNAVAILABLE;
    }
    bool broken = false;
    fdn__rl_sent_t sent = {0, 0};
    int64_t n = fdn__rl_del(lease_ctx(w), keys, lens, 4, &broken, &sent);
    count_sent(b, &sent);
    int rc = n < 0 ? FDN_EUNAVAILABLE : n > 0 ? 0 : FDN_ENOENT;
    lease_end(b, w, broken);
    fdn_breaker_record(b->breaker, &permit, rc == FDN_EUNAVAILABLE ? rc : 0);
    if (rc == FDN_EUNAVAILABLE)
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
    fdn__mutex_lock(&b->pmu);
    out->leaders = b->leaders;
    out->queued = 0;
    struct cds_list_head *pos;
    cds_list_for_each(pos, &b->queue) out->queued++;
    fdn__mutex_unlock(&b->pmu);
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
