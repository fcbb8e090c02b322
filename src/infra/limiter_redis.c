/*
 * DESIGN: the rate limiter's Redis backend, behind fdn__limiter_backend_t (limiter_int.h), so
 * that every process of a fleet shares one limit per key.
 *
 * Server side: one Lua script holds the four algorithms (the arithmetic of logic/limit_algo.h
 * in microseconds, with Redis's TIME as the clock, so hosts with skewed clocks agree on
 * window edges). It is loaded once (SCRIPT LOAD; the SHA1 it returns is kept) and run with
 * EVALSHA; a NOSCRIPT error (Redis restarted, SCRIPT FLUSH) means the script did not run, so
 * it is loaded again and the call made once more. One hash per (key, algorithm) holds the
 * state: "<prefix>{<key>}:<digit>"; the braces are a Redis Cluster hash tag (a key and its
 * algorithm variants live in one slot, so a reset can delete them in one command), and each
 * write sets the hash to expire when the state would be fresh again.
 *
 * Client side: connections (hiredis, blocking, with connect and command timeouts) are the
 * workers of an fdn_pool, created on demand; a check waits for one at most
 * command_timeout_ms. A circuit breaker (fdn_breaker, the limiter's clock) wraps every round
 * trip. A command is sent once: on an I/O error, a timeout or a reply that is not what the
 * script returns, the connection is dropped (checkin_broken), the breaker records a
 * failure, and the failure policy answers that check. Nothing is queued or resent.
 *
 * Failure policy: LOCAL checks the in-memory store (limiter_store.c) with the rule's limit and
 * burst divided by fleet_size (rounded up); OPEN allows; CLOSED denies until the breaker
 * lets a call through again. A cancel or a reset that cannot reach Redis returns
 * FDN_EUNAVAILABLE (nothing was given back).
 *
 * Deny cache: a direct-mapped table of DENY_SLOTS entries (tag = hash of key, algorithm,
 * limit, period, burst) remembering "denied for cost >= c until t" (monotonic time of the
 * limiter's clock) after a denial with a finite retry time. A check that hits it is denied
 * without a round trip. It is advisory: a collision overwrites, a miss asks Redis. It can
 * deny a call that a cancel made room for in the meantime (until the retry time): the price
 * of not asking Redis on a flood of denied calls. For a fixed window the denied calls it
 * answers are not counted on the server (Hammer counts denied calls too); admission is the
 * same since that window stays over its limit.
 *
 * Threads and locks: none of its own. `sha_mu` serialises the first SCRIPT LOAD; each deny
 * cache slot group has its own small mutex; counters are relaxed atomics. No lock is held
 * during a round trip except sha_mu during the first load.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <fdn/breaker.h>
#include <fdn/pool.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/lock.h"
#include "infra/limiter_int.h"
#include "logic/redis_url.h"

#define DENY_SLOTS   4096u /* power of two */
#define DENY_LOCKS   64u   /* power of two, divides DENY_SLOTS */
#define MAX_REDISKEY 4400u /* prefix (<= 256) + braces + key (<= 4096) + ":d" */
#define NS_PER_US    1000LL

/* The script: KEYS[1] the state hash; ARGV algo (0 fixed, 1 token bucket, 2 gcra, 3 sliding),
 * op (0 check, 1 peek, 2 cancel), cost, limit, period_ms, burst, epoch. Returns {-1} for a
 * cancel with nothing to give back, else {allowed, count, limit, remaining, reset_us,
 * retry_us (-1: never), epoch}. Numbers are written with %.17g: Redis would format a Lua
 * number with 14 significant digits, too few for microsecond timestamps. */
static const char SCRIPT[] =
    "local k = KEYS[1]\n"
    "local algo, op, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local L, P = tonumber(ARGV[4]), tonumber(ARGV[5]) * 1000\n"
    "local B = tonumber(ARGV[6])\n"
    "if B <= 0 then B = L end\n"
    "local epoch = tonumber(ARGV[7])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local ok, count, lim, rem, reset, retry, ep = 0, 0, L, 0, 0, 0, 0\n"
    "local function f(x) return string.format('%.17g', x) end\n"
    "local function save(ttl, ...)\n"
    "  redis.call('HSET', k, ...)\n"
    "  redis.call('PEXPIRE', k, math.max(1, math.ceil(ttl / 1000)))\n"
    "end\n"
    "if algo == 0 then\n"
    "  local s = redis.call('HMGET', k, 'w', 'c')\n"
    "  local win = math.floor(now / P)\n"
    "  local c = 0\n"
    "  if tonumber(s[1]) == win then c = tonumber(s[2]) or 0 end\n"
    "  reset = (win + 1) * P - now\n"
    "  if op == 2 then\n"
    "    if epoch ~= win or c <= 0 then return {-1} end\n"
    "    c = math.max(c - cost, 0)\n"
    "    ok = 1\n"
    "    save(reset, 'w', f(win), 'c', f(c))\n"
    "  elseif op == 1 then\n"
    "    if c + cost <= L then ok = 1 end\n"
    "  else\n"
    "    c = c + cost\n"
    "    if c <= L then ok = 1 end\n"
    "    ep = win\n"
    "    save(reset, 'w', f(win), 'c', f(c))\n"
    "  end\n"
    "  count = c\n"
    "  rem = math.max(L - c, 0)\n"
    "  if ok == 0 then if cost > L then retry = -1 else retry = reset end end\n"
    "elseif algo == 1 then\n"
    "  local s = redis.call('HMGET', k, 't', 'tk')\n"
    "  local last, tk = tonumber(s[1]), tonumber(s[2])\n"
    "  if last == nil or tk == nil then last = now; tk = B end\n"
    "  if now > last then tk = math.min(B, tk + (now - last) * L / P); last = now end\n"
    "  if op == 2 then\n"
    "    tk = math.min(B, tk + cost)\n"
    "    ok = 1\n"
    "  else\n"
    "    if tk >= cost then ok = 1 end\n"
    "    if ok == 1 and op == 0 then tk = tk - cost end\n"
    "    if ok == 0 then\n"
    "      if cost > B then retry = -1 else retry = math.ceil((cost - tk) * P / L) end\n"
    "    end\n"
    "  end\n"
    "  lim = B\n"
    "  rem = math.floor(tk)\n"
    "  count = B - rem\n"
    "  reset = math.ceil((B - tk) * P / L)\n"
    "  if op ~= 1 then save(reset, 't', f(last), 'tk', f(tk)) end\n"
    "elseif algo == 2 then\n"
    "  local T = P / L\n"
    "  local bt = B * T\n"
    "  local stored = tonumber(redis.call('HGET', k, 'tat')) or now\n"
    "  local tat = math.max(stored, now)\n"
    "  if op == 2 then\n"
    "    stored = math.max(stored - cost * T, now)\n"
    "    ok = 1\n"
    "  else\n"
    "    local new_tat = tat + cost * T\n"
    "    local allow_at = new_tat - bt\n"
    "    if now >= allow_at then ok = 1 end\n"
    "    if ok == 1 and op == 0 then stored = new_tat end\n"
    "    if ok == 0 then\n"
    "      if cost > B then retry = -1 else retry = math.ceil(allow_at - now) end\n"
    "    end\n"
    "  end\n"
    "  local t_end = math.max(stored, now)\n"
    "  lim = B\n"
    "  rem = math.max(math.floor((now + bt - t_end) / T), 0)\n"
    "  count = B - rem\n"
    "  reset = t_end - now\n"
    "  if op ~= 1 then save(reset, 'tat', f(stored)) end\n"
    "else\n"
    "  local s = redis.call('HMGET', k, 'w', 'c', 'p')\n"
    "  local win = math.floor(now / P)\n"
    "  local w, c, pv = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0\n"
    "  if w ~= win then\n"
    "    if w == win - 1 then pv = c else pv = 0 end\n"
    "    c = 0\n"
    "  end\n"
    "  local e = now - win * P\n"
    "  if op == 2 then\n"
    "    if epoch ~= win or c <= 0 then return {-1} end\n"
    "    c = math.max(c - cost, 0)\n"
    "    ok = 1\n"
    "  else\n"
    "    if pv * (P - e) / P + c + cost <= L then ok = 1 end\n"
    "    if ok == 1 and op == 0 then c = c + cost end\n"
    "    if op == 0 then ep = win end\n"
    "    if ok == 0 then\n"
    "      if cost > L then retry = -1\n"
    "      elseif c + cost <= L then retry = math.ceil(P - (L - c - cost) * P / pv - e)\n"
    "      else\n"
    "        local e2 = 0\n"
    "        if c > 0 then e2 = math.max(P - (L - cost) * P / c, 0) end\n"
    "        retry = math.ceil((P - e) + e2)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  count = math.floor(pv * (P - e) / P) + c\n"
    "  rem = math.max(L - count, 0)\n"
    "  reset = (win + 2) * P - now\n"
    "  if op ~= 1 then save(reset, 'w', f(win), 'c', f(c), 'p', f(pv)) end\n"
    "end\n"
    "return {ok, count, lim, rem, math.ceil(reset), retry, ep}\n";

const char *fdn__limiter_redis_script(size_t *len)
{
    *len = sizeof(SCRIPT) - 1;
    return SCRIPT;
}

typedef struct deny_slot {
    uint64_t tag;     /* 0: empty */
    int64_t until;    /* monotonic ns of the limiter's clock */
    int64_t min_cost; /* denied for any cost >= this */
    int64_t limit;    /* res->limit of the denial */
} deny_slot_t;

typedef struct redisbe {
    fdn__redis_url_t url;
    struct timeval connect_tv, command_tv;
    int64_t command_ms;
    char *prefix;
    size_t prefixlen;
    fdn_limit_failure_policy_t policy;
    uint32_t fleet;
    fdn_clock_t *clock;
    fdn_pool_t *pool;
    fdn_breaker_t *breaker;
    void *local; /* the in-memory store: fallback (LOCAL) */
    fdn__mutex_t sha_mu;
    _Atomic bool sha_ready;
    char sha[41];
    fdn__mutex_t deny_mu[DENY_LOCKS];
    deny_slot_t deny[DENY_SLOTS];
    _Atomic bool connected;
    _Atomic uint64_t conn_gen; /* bumped when a connection breaks: older ones are not reused */
    _Atomic uint64_t allowed, denied, commands, errors, fallbacks, local_denials, script_loads;
    _Atomic uint64_t lat_le[8], lat_sum_us;
} redisbe_t;

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- connections (pool workers) ------------------------------------------------------------ */

static bool reply_is(const redisReply *r, int type)
{
    return r != NULL && r->type == type;
}

/* Run one command expecting a status or string reply; 0 or FDN_EUNAVAILABLE. */
static int simple_command(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    int rc =
        (reply_is(r, REDIS_REPLY_STATUS) || reply_is(r, REDIS_REPLY_STRING)) ? 0 : FDN_EUNAVAILABLE;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* A pooled connection: made in generation `gen`; once a connection of the pool broke (Redis
 * restarted, the network dropped), every connection of an older generation is dropped at its
 * next checkout instead of failing one check each. */
typedef struct rconn {
    redisContext *c;
    uint64_t gen;
} rconn_t;

static int conn_create(void **out, void *user)
{
    redisbe_t *b = user;
    /* a connection made during a check must not outlast the check's bound */
    struct timeval tv = b->connect_tv;
    if (b->command_tv.tv_sec < tv.tv_sec ||
        (b->command_tv.tv_sec == tv.tv_sec && b->command_tv.tv_usec < tv.tv_usec))
        tv = b->command_tv;
    redisContext *c = redisConnectWithTimeout(b->url.host, b->url.port, tv);
    if (c == NULL)
        return FDN_ENOMEM;
    if (c->err || redisSetTimeout(c, b->command_tv) != REDIS_OK) {
        redisFree(c);
        atomic_store_explicit(&b->connected, false, memory_order_relaxed);
        return FDN_ECONNREFUSED;
    }
    int rc = 0;
    if (b->url.has_password) {
        const char *argv[3] = {"AUTH", b->url.user, b->url.password};
        size_t lens[3] = {4, strlen(b->url.user), strlen(b->url.password)};
        rc = b->url.user[0] ? simple_command(c, 3, argv, lens)
                            : simple_command(c, 2, (const char *[]){"AUTH", b->url.password},
                                             (size_t[]){4, lens[2]});
    }
    if (rc == 0 && b->url.db != 0) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%d", b->url.db);
        rc = simple_command(c, 2, (const char *[]){"SELECT", db}, (size_t[]){6, (size_t)n});
    }
    rconn_t *conn = rc == 0 ? fdn__malloc(sizeof(*conn)) : NULL;
    if (conn == NULL) {
        redisFree(c);
        return rc ? rc : FDN_ENOMEM;
    }
    conn->c = c;
    conn->gen = atomic_load_explicit(&b->conn_gen, memory_order_relaxed);
    *out = conn;
    return 0;
}

static void conn_destroy(void *conn, void *user)
{
    (void)user;
    rconn_t *rc = conn;
    redisFree(rc->c);
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

static redisContext *lease_ctx(const fdn_pool_worker_t *w)
{
    return ((rconn_t *)fdn_pool_worker_conn(w))->c;
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

/* ---- the script ---------------------------------------------------------------------------- */

/* SCRIPT LOAD on c; keeps the SHA1. 0 or FDN_EUNAVAILABLE (c is then broken or Redis refused). */
static int script_load(redisbe_t *b, redisContext *c, bool *broken)
{
    count(&b->script_loads);
    redisReply *r = redisCommand(c, "SCRIPT LOAD %b", SCRIPT, sizeof(SCRIPT) - 1);
    if (r == NULL) {
        *broken = true;
        return FDN_EUNAVAILABLE;
    }
    int rc = FDN_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        fdn__mutex_lock(&b->sha_mu);
        memcpy(b->sha, r->str, 40);
        b->sha[40] = '\0';
        atomic_store_explicit(&b->sha_ready, true, memory_order_release);
        fdn__mutex_unlock(&b->sha_mu);
        rc = 0;
    } else {
        *broken = r->type != REDIS_REPLY_ERROR; /* not a Redis answer: drop the connection */
    }
    freeReplyObject(r);
    return rc;
}

/* The reply of the script: 7 integers, or {-1}. */
static int parse_reply(const redisReply *r, fdn_limit_result_t *res, int64_t *epoch)
{
    if (!reply_is(r, REDIS_REPLY_ARRAY))
        return FDN_EUNAVAILABLE;
    for (size_t i = 0; i < r->elements; i++)
        if (!reply_is(r->element[i], REDIS_REPLY_INTEGER))
            return FDN_EUNAVAILABLE;
    if (r->elements == 1 && r->element[0]->integer == -1)
        return FDN_ENOENT;
    if (r->elements != 7)
        return FDN_EUNAVAILABLE;
    long long v[7];
    for (size_t i = 0; i < 7; i++)
        v[i] = r->element[i]->integer;
    if ((v[0] != 0 && v[0] != 1) || v[1] < 0 || v[2] < 1 || v[3] < 0 || v[4] < 0 || v[5] < -1 ||
        v[4] > INT64_MAX / NS_PER_US || v[5] > INT64_MAX / NS_PER_US)
        return FDN_EUNAVAILABLE;
    res->allowed = v[0] == 1;
    res->shadow_denied = false;
    res->count = v[1];
    res->limit = v[2];
    res->remaining = v[3];
    res->reset_ns = v[4] * NS_PER_US;
    res->retry_after_ns = v[5] < 0 ? INT64_MAX : v[5] * NS_PER_US;
    *epoch = v[6];
    return 0;
}

/* Run the script once (and once more after NOSCRIPT). *broken: the connection must go.
 * Returns 0, FDN_ENOENT (a cancel with nothing to give back) or FDN_EUNAVAILABLE. */
static int run_script(redisbe_t *b, redisContext *c, const char *rkey, size_t rkeylen,
                      const fdn_limit_rule_t *rule, int64_t cost, fdn__limit_op_t op,
                      int64_t epoch_in, fdn_limit_result_t *res, int64_t *epoch_out, bool *broken)
{
    char num[6][24];
    size_t nlen[6];
    const long long vals[6] = {
        (long long)rule->algo,      (long long)op,         (long long)cost, (long long)rule->limit,
        (long long)rule->period_ms, (long long)rule->burst};
    for (int i = 0; i < 6; i++)
        nlen[i] = (size_t)snprintf(num[i], sizeof(num[i]), "%lld", vals[i]);
    char ep[24];
    size_t eplen = (size_t)snprintf(ep, sizeof(ep), "%lld", (long long)epoch_in);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!atomic_load_explicit(&b->sha_ready, memory_order_acquire)) {
            fdn__mutex_lock(&b->sha_mu);
            bool ready = atomic_load_explicit(&b->sha_ready, memory_order_relaxed);
            fdn__mutex_unlock(&b->sha_mu);
            if (!ready && script_load(b, c, broken) != 0)
                return FDN_EUNAVAILABLE;
        }
        const char *argv[11] = {"EVALSHA", b->sha, "1",    rkey,   num[0], num[1],
                                num[2],    num[3], num[4], num[5], ep};
        size_t lens[11] = {7,       40,      1,       rkeylen, nlen[0], nlen[1],
                           nlen[2], nlen[3], nlen[4], nlen[5], eplen};
        count(&b->commands);
        redisReply *r = redisCommandArgv(c, 11, argv, lens);
        if (r == NULL) {
            *broken = true; /* I/O error or timeout: the command is not resent */
            return FDN_EUNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(r); /* the script did not run: load it and call once more */
            atomic_store_explicit(&b->sha_ready, false, memory_order_relaxed);
            if (script_load(b, c, broken) != 0)
                return FDN_EUNAVAILABLE;
            continue;
        }
        int rc = parse_reply(r, res, epoch_out);
        if (rc == FDN_EUNAVAILABLE && r->type != REDIS_REPLY_ERROR)
            *broken = true; /* a reply the script cannot give: do not trust this peer */
        freeReplyObject(r);
        return rc;
    }
    return FDN_EUNAVAILABLE;
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

/* ---- the backend --------------------------------------------------------------------------- */

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

static int fallback(redisbe_t *b, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    int64_t cost, fdn__limit_op_t op, const fdn__limit_now_t *now,
                    fdn_limit_result_t *res, fdn_limit_reservation_t *rsv)
{
    count(&b->fallbacks);
    if (op == FDN__LIMIT_CANCEL)
        return FDN_EUNAVAILABLE;
    if (b->policy == FDN_LIMIT_FAIL_LOCAL) {
        fdn_limit_rule_t r = *rule;
        r.limit = ceil_div(r.limit, b->fleet);
        if (r.burst > 0)
            r.burst = ceil_div(r.burst, b->fleet);
        return fdn__limiter_mem_backend.apply(b->local, key, keylen, &r, 0, cost, op, now, res,
                                              rsv);
    }
    bool open = b->policy == FDN_LIMIT_FAIL_OPEN;
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

static int64_t real_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int redis_apply(void *self, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                       unsigned rule_flags, int64_t cost, fdn__limit_op_t op,
                       const fdn__limit_now_t *now, fdn_limit_result_t *res,
                       fdn_limit_reservation_t *rsv)
{
    redisbe_t *b = self;
    if (rule_flags & FDN_LIMIT_RULE_LOCAL) /* this rule's limit is per process, by choice */
        return fdn__limiter_mem_backend.apply(b->local, key, keylen, rule, 0, cost, op, now, res,
                                              rsv);
    if (b->prefixlen + keylen + 4 > MAX_REDISKEY)
        return FDN_EINVAL;
    deny_ref_t ref = deny_ref(key, keylen, rule);
    int64_t mono = fdn_clock_mono_ns(b->clock);
    if (op != FDN__LIMIT_CANCEL && deny_hit(b, ref, cost, mono, res)) {
        count(&b->local_denials);
        count(&b->denied);
        return 0;
    }
    fdn_breaker_permit_t permit;
    if (fdn_breaker_acquire(b->breaker, &permit) != 0)
        return fallback(b, key, keylen, rule, cost, op, now, res, rsv);
    fdn_pool_worker_t *w;
    int rc = fdn_pool_checkout(b->pool, &w, b->command_ms, NULL);
    if (rc != 0) {
        fdn_breaker_record(b->breaker, &permit, FDN_EUNAVAILABLE);
        return fallback(b, key, keylen, rule, cost, op, now, res, rsv);
    }
    char rkey[MAX_REDISKEY];
    size_t rkeylen = redis_key(b, key, keylen, (int)rule->algo, rkey);
    bool broken = false;
    int64_t epoch = 0;
    int64_t t0 = real_mono_us();
    rc = run_script(b, lease_ctx(w), rkey, rkeylen, rule, cost, op, rsv ? rsv->epoch : 0, res,
                    &epoch, &broken);
    record_latency(b, real_mono_us() - t0);
    lease_end(b, w, broken);
    fdn_breaker_record(b->breaker, &permit, rc == FDN_ENOENT ? 0 : rc);
    atomic_store_explicit(&b->connected, rc != FDN_EUNAVAILABLE || !broken, memory_order_relaxed);
    if (rc == FDN_EUNAVAILABLE) {
        count(&b->errors);
        return fallback(b, key, keylen, rule, cost, op, now, res, rsv);
    }
    if (rc != 0)
        return rc;
    if (op == FDN__LIMIT_CANCEL) {
        deny_drop(b, ref.keyhash);
        return 0;
    }
    if (op == FDN__LIMIT_CHECK) {
        if (rsv)
            rsv->epoch = epoch;
        count(res->allowed ? &b->allowed : &b->denied);
        if (!res->allowed && res->retry_after_ns > 0 && res->retry_after_ns != INT64_MAX)
            deny_put(b, ref, cost, mono + res->retry_after_ns, res->limit);
    }
    return 0;
}

static int redis_forget(void *self, const char *key, size_t keylen)
{
    redisbe_t *b = self;
    if (b->prefixlen + keylen + 4 > MAX_REDISKEY)
        return FDN_EINVAL;
    deny_drop(b, fdn__hash(key, keylen));
    char rkeys[4][MAX_REDISKEY];
    const char *argv[5] = {"DEL"};
    size_t lens[5] = {3};
    for (int a = 0; a < 4; a++) {
        lens[a + 1] = redis_key(b, key, keylen, a, rkeys[a]);
        argv[a + 1] = rkeys[a];
    }
    fdn_breaker_permit_t permit;
    if (fdn_breaker_acquire(b->breaker, &permit) != 0)
        return FDN_EUNAVAILABLE;
    fdn_pool_worker_t *w;
    if (fdn_pool_checkout(b->pool, &w, b->command_ms, NULL) != 0) {
        fdn_breaker_record(b->breaker, &permit, FDN_EUNAVAILABLE);
        return FDN_EUNAVAILABLE;
    }
    count(&b->commands);
    redisReply *r = redisCommandArgv(lease_ctx(w), 5, argv, lens);
    int rc = r == NULL || r->type != REDIS_REPLY_INTEGER ? FDN_EUNAVAILABLE
             : r->integer > 0                            ? 0
                                                         : FDN_ENOENT;
    lease_end(b, w, r == NULL);
    if (r)
        freeReplyObject(r);
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
    pthread_mutex_destroy(&b->sha_mu);
    fdn__free(b->prefix);
    fdn__free(b);
}

const fdn__limiter_backend_t fdn__limiter_redis_backend = {
    FDN__LIMITER_BACKEND_VERSION, redis_apply,  redis_forget,  redis_sweep, redis_stats,
    redis_set_interval,           redis_status, redis_destroy,
};

static struct timeval ms_tv(int64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

int fdn__limiter_redis_create(void **out, const fdn_limiter_redis_opts_t *o, void *local,
                              fdn_clock_t *clock, fdn_error_t *err)
{
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
    b->connect_tv = ms_tv(o->connect_timeout_ms);
    b->command_tv = ms_tv(o->command_timeout_ms);
    b->command_ms = o->command_timeout_ms;
    b->policy = o->failure_policy;
    b->fleet = o->fleet_size;
    b->clock = clock;
    atomic_init(&b->connected, true); /* no command has failed yet */
    pthread_mutex_init(&b->sha_mu, NULL);
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
