/*
 * DESIGN: the rate limiter's Redis client (storage/redis_limit.h), over hiredis's blocking API.
 *
 * The script holds the four algorithms of logic/limit_algo.h in microseconds on Redis's clock
 * (TIME), so every host shares one window edge; the limiter runs it with EVALSHA. Lua numbers
 * are doubles (Redis 7): the script's times are exact while they stay below 2^53 us (TIME
 * reaches that in the year 2255) and windows before 1970 are floored (math.floor), which
 * engine_test_limiter_redis checks by running the script with TIME replaced by a given time
 * (script_windows_at_clock_extremes). A limiter's injected clock (a manual one anywhere in
 * int64) never reaches the script: only the deny cache and the local fallback read it
 * (limiter_redis.c), in int64 ns with saturating sums. A bucket's or a TAT's span is exact
 * too: validation bounds burst * period and burst * interval by 2^62 ns (4.6e15 us < 2^53).
 *
 * The script follows limit_algo.h's definitions, in us where limit_algo counts ns (a result
 * in us is the ceiling of limit_algo's in ns for the same times in whole us;
 * engine_test_limiter_redis's script_matches_limit_algo compares the two):
 *   - the token bucket keeps its tokens scaled by P (whole numbers), so its rounding is
 *     limit_algo's; the sliding window admits on the exact estimate
 *     prev * (P - e) + (cur + cost) * P <= L * P and counts prev's share rounded up, so
 *     remaining is the number of cost-1 checks that pass now. GCRA keeps its emission interval
 *     P / L as a double (limit_algo rounds it up to whole ns).
 *   - A changed rule (the state keeps the rule it was written with) converts the state as
 *     fdn__limit_convert does before the new rule reads it: the bucket is refilled under the
 *     old rule, its tokens rescaled to the new P (floored; the product is reduced by the two
 *     periods' gcd, so it is exact for periods that divide one another) and clamped to the new
 *     burst, a debt kept down to one bucket; GCRA keeps its available tokens, clamped to the
 *     new burst; a window keeps its counts and moves to now's window of the new period (an
 *     old window that ended before now is dropped first; a sliding window's current count
 *     becomes its previous). A new limit alone leaves a window's state as it is. A peek
 *     converts the copy it reads and writes nothing.
 *   - Time: TIME is read inside the script, which Redis runs atomically, so no check sees a
 *     stale time; an earlier `now` is Redis's wall clock stepped back (NTP, an operator, a
 *     failover to a replica with another clock). Both windows take limit_algo's wall-clock
 *     rule (FDN__LIMIT_WALL_STEP_NS): a `now` at most 1 s before its state's window is taken
 *     as that window's start (the window is not rewound; reset and retry are measured from now,
 *     the time to that start added), further back it starts now's own window afresh. The
 *     bucket does not refill before its last refill (reset, retry and the key's expiry are
 *     measured from now, lengthened by the difference) and GCRA's TAT does not move back.
 *   - Versions side by side: the script before these fields kept a bucket's tokens as a
 *     float `tk` (and its refill time `t`, which both write). This one also writes `tk`
 *     (ts / P) and a copy of it in `tkn`; a `tk` that differs from `tkn` (or with no `ts`)
 *     was written by the older script after this one, and is taken (tk * P, under the
 *     rule given), so a fleet upgrading process by process keeps one bucket per key.
 *     Windows without P are taken as of the rule given.
 * Its SHA1 is what SCRIPT LOAD answered (shared through fdn__rl_script_t, copied under its mutex
 * for each call); NOSCRIPT (Redis restarted, SCRIPT FLUSH) means the script did not run, so it is
 * loaded and the call made once more. Every other failure is returned, never retried: a
 * resent increment would count twice.
 *
 * Replies are checked strictly: anything but the script's 7 integers (or {-1}) within their
 * ranges is a failure, and a reply that is not a Redis error also marks the connection
 * broken, because the peer does not speak the protocol the script promises.
 *
 * Bounds: hiredis's blocking calls are bounded by the socket's send and receive timeouts
 * (SO_SNDTIMEO, SO_RCVTIMEO: each read or write, so a peer trickling a reply could stretch
 * one). An opening (connect, AUTH, SELECT, then the limiter's SCRIPT LOAD) may have one
 * deadline for the whole: each step is bounded by what is left of it when the step starts
 * (never more than the step's configured bound), and once less than 1 ms is left the next
 * step is not taken (FDN_ETIMEDOUT; a step that ended past the deadline stops the next one
 * too), so the steps share the deadline instead of each taking a full bound. The socket is
 * left with command_ms, the bound of what comes after.
 *
 * Threads: none of its own; a connection belongs to its caller while in use.
 */
#include "storage/redis_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/sigpipe.h"
#include "core/sync.h"

#define NS_PER_US 1000LL

/* The script: KEYS[1] the state hash; ARGV algo (0 fixed, 1 token bucket, 2 gcra, 3 sliding),
 * op (0 check, 1 peek, 2 cancel, 3 inc, 4 set: logic/limit_algo.h's ops), cost (for set: the
 * count), limit, period_ms, burst, epoch. Returns {-1} for a
 * cancel with nothing to give back, else {allowed, count, limit, remaining, reset_us,
 * retry_us (-1: never), epoch}. Numbers are written with %.17g: Redis would format a Lua
 * number with 14 significant digits, too few for microsecond timestamps. Indented by one
 * space per level, and in two parts joined at run time: each literal stays under the 4095
 * bytes a C string literal may portably hold.
 *
 * State fields: fixed window w (window index), c, P (its rule's period, us); token bucket t
 * (last refill), ts (tokens scaled by P: one token = P us of refill at L per P, so refill is
 * whole-number arithmetic, exact below 2^53), L, P, B (its rule); GCRA tat, L, P, B; sliding
 * window w, c, p (the previous window's count), P. The rule kept with the state is how a
 * changed rule is seen and the state converted (see the DESIGN at the top). */
static const char SCRIPT_A[] =
    "local k = KEYS[1]\n"
    "local algo, op, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local L, P = tonumber(ARGV[4]), tonumber(ARGV[5]) * 1000\n"
    "local B = tonumber(ARGV[6])\n"
    "if B <= 0 then B = L end\n"
    "local epoch = tonumber(ARGV[7])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local ok, count, lim, rem, reset, retry, ep, lag = 0, 0, L, 0, 0, 0, 0, 0\n"
    "local function f(x) return string.format('%.17g', x) end\n"
    "local function save(ttl, ...)\n"
    " redis.call('HSET', k, ...)\n"
    " redis.call('PEXPIRE', k, math.max(1, math.ceil(ttl / 1000)))\n"
    "end\n"
    "local function at(w)\n"
    " local win = math.floor(now / P)\n"
    " if w and w > win and w * P - now <= 1000000 then lag = w * P - now; return w, 0 end\n"
    " return win, now - win * P\n"
    "end\n"
    "if algo == 0 then\n"
    " local s = redis.call('HMGET', k, 'w', 'c', 'P')\n"
    " local w, c = tonumber(s[1]), tonumber(s[2]) or 0\n"
    " local po = tonumber(s[3]) or P\n"
    " if w and po ~= P then\n"
    "  if math.floor(now / po) > w then c = 0 end\n"
    "  w = math.floor(now / P)\n"
    " end\n"
    " local win, e = at(w)\n"
    " if w ~= win then c = 0 end\n"
    " reset = P - e + lag\n"
    " if op == 2 then\n"
    "  if epoch ~= win or c <= 0 then return {-1} end\n"
    "  c = math.max(c - cost, 0)\n"
    "  ok = 1\n"
    "  save(reset, 'w', f(win), 'c', f(c), 'P', f(P))\n"
    " elseif op == 1 then\n"
    "  if c + cost <= L then ok = 1 end\n"
    " else\n"
    "  if op == 4 then c = cost else c = c + cost end\n"
    "  if c <= L then ok = 1 end\n"
    "  ep = win\n"
    "  save(reset, 'w', f(win), 'c', f(c), 'P', f(P))\n"
    " end\n"
    " count = c\n"
    " rem = math.max(L - c, 0)\n"
    " if ok == 0 then if cost > L then retry = -1 else retry = reset end end\n"
    "elseif algo == 1 then\n"
    " local s = redis.call('HMGET', k, 't', 'ts', 'L', 'P', 'B', 'tk', 'tkn')\n"
    " local last, ts = tonumber(s[1]), tonumber(s[2])\n"
    " local cap = B * P\n"
    " local tk = tonumber(s[6])\n"
    " if last ~= nil and tk ~= nil and (ts == nil or tk ~= tonumber(s[7])) then\n"
    "  ts = math.max(math.min(math.floor(tk * P), cap), -cap)\n"
    "  s[3], s[4], s[5] = nil, nil, nil\n"
    " end\n"
    " if last == nil or ts == nil then\n"
    "  last = now; ts = cap\n"
    " else\n"
    "  local Lo, po, Bo = tonumber(s[3]) or L, tonumber(s[4]) or P, tonumber(s[5]) or B\n"
    "  if Lo ~= L or po ~= P or Bo ~= B then\n"
    "   if now > last then ts = math.min(ts + (now - last) * Lo, Bo * po); last = now end\n"
    "   local g, h = P, po\n"
    "   while h > 0 do g, h = h, g % h end\n"
    "   ts = math.max(math.min(math.floor(ts * (P / g) / (po / g)), cap), -cap)\n"
    "  end\n"
    " end\n"
    " if now > last then ts = math.min(ts + (now - last) * L, cap); last = now end\n"
    " local need = cost * P\n"
    " if op == 2 then\n"
    "  ts = math.min(ts + need, cap)\n"
    "  ok = 1\n"
    " elseif op == 4 then\n"
    "  ts = math.max((B - cost) * P, -cap)\n"
    "  if cost <= B then ok = 1 end\n"
    " else\n"
    "  if ts >= need then ok = 1 end\n"
    "  if ok == 1 and op == 0 then ts = ts - need end\n"
    "  if op == 3 then ts = math.max(ts - need, -cap) end\n"
    "  if ok == 0 then\n"
    "   if cost > B then retry = -1 else retry = math.ceil((need - ts) / L) end\n"
    "  end\n"
    " end\n"
    " lim = B\n"
    " rem = math.max(math.floor(ts / P), 0)\n"
    " count = B - rem\n"
    " lag = math.max(last - now, 0)\n"
    " reset = math.max(math.ceil((cap - ts) / L), 0) + lag\n"
    " if retry > 0 then retry = retry + lag end\n"
    " if op ~= 1 then\n"
    "  local tkv = f(ts / P)\n"
    "  save(reset, 't', f(last), 'ts', f(ts), 'L', f(L), 'P', f(P), 'B', f(B), 'tk', tkv, 'tkn', "
    "tkv)\n"
    " end\n";
static const char SCRIPT_B[] =
    "elseif algo == 2 then\n"
    " local T = P / L\n"
    " local bt = B * T\n"
    " local s = redis.call('HMGET', k, 'tat', 'L', 'P', 'B')\n"
    " local stored = tonumber(s[1]) or now\n"
    " local Lo, po, Bo = tonumber(s[2]) or L, tonumber(s[3]) or P, tonumber(s[4]) or B\n"
    " if Lo ~= L or po ~= P or Bo ~= B then\n"
    "  local To = po / Lo\n"
    "  local avail = Bo * To - (math.max(stored, now) - now)\n"
    "  stored = now + bt - math.min(avail * T / To, bt)\n"
    " end\n"
    " local tat = math.max(stored, now)\n"
    " if op == 2 then\n"
    "  stored = math.max(stored - cost * T, now)\n"
    "  ok = 1\n"
    " elseif op == 4 then\n"
    "  stored = now + cost * T\n"
    "  if cost <= B then ok = 1 end\n"
    " else\n"
    "  local new_tat = tat + cost * T\n"
    "  local allow_at = new_tat - bt\n"
    "  if now >= allow_at then ok = 1 end\n"
    "  if (ok == 1 and op == 0) or op == 3 then stored = new_tat end\n"
    "  if ok == 0 then\n"
    "   if cost > B then retry = -1 else retry = math.ceil(allow_at - now) end\n"
    "  end\n"
    " end\n"
    " local t_end = math.max(stored, now)\n"
    " lim = B\n"
    " rem = math.max(math.floor((now + bt - t_end) / T), 0)\n"
    " count = B - rem\n"
    " reset = t_end - now\n"
    " if op ~= 1 then save(reset, 'tat', f(stored), 'L', f(L), 'P', f(P), 'B', f(B)) end\n"
    "else\n"
    " local s = redis.call('HMGET', k, 'w', 'c', 'p', 'P')\n"
    " local w, c, pv = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0\n"
    " local po = tonumber(s[4]) or P\n"
    " if w and po ~= P then\n"
    "  local wo = math.floor(now / po)\n"
    "  if wo > w then\n"
    "   if w == wo - 1 then pv = c else pv = 0 end\n"
    "   c = 0\n"
    "  end\n"
    "  w = math.floor(now / P)\n"
    " end\n"
    " local win, e = at(w)\n"
    " if w ~= win then\n"
    "  if w == win - 1 then pv = c else pv = 0 end\n"
    "  c = 0\n"
    " end\n"
    " if op == 2 then\n"
    "  if epoch ~= win or c <= 0 then return {-1} end\n"
    "  c = math.max(c - cost, 0)\n"
    "  ok = 1\n"
    " else\n"
    "  local base = c\n"
    "  if op == 4 then base = 0 end\n"
    "  if pv * (P - e) + (base + cost) * P <= L * P then ok = 1 end\n"
    "  if op == 4 then c = cost elseif op == 3 or (ok == 1 and op == 0) then c = c + cost end\n"
    "  if op ~= 1 then ep = win end\n"
    "  if ok == 0 then\n"
    "   if op >= 3 then retry = P - e\n"
    "   elseif cost > L then retry = -1\n"
    "   elseif c + cost <= L then retry = P - math.floor((L - c - cost) * P / pv) - e\n"
    "   else\n"
    "    local e2 = 0\n"
    "    if c > 0 then e2 = math.max(P - math.floor((L - cost) * P / c), 0) end\n"
    "    retry = P - e + e2\n"
    "   end\n"
    "   if retry > 0 then retry = retry + lag end\n"
    "  end\n"
    " end\n"
    " count = math.ceil(pv * (P - e) / P) + c\n"
    " rem = math.max(L - count, 0)\n"
    " reset = 2 * P - e + lag\n"
    " if op ~= 1 then save(reset, 'w', f(win), 'c', f(c), 'p', f(pv), 'P', f(P)) end\n"
    "end\n"
    "return {ok, count, lim, rem, math.ceil(reset), retry, ep}\n";

/* The script whole: SCRIPT_A then SCRIPT_B, joined once (script_join). */
static char g_script[sizeof(SCRIPT_A) + sizeof(SCRIPT_B) - 1];
static pthread_once_t g_script_once = PTHREAD_ONCE_INIT;

static void script_join(void)
{
    memcpy(g_script, SCRIPT_A, sizeof(SCRIPT_A) - 1);
    memcpy(g_script + sizeof(SCRIPT_A) - 1, SCRIPT_B, sizeof(SCRIPT_B)); /* with its NUL */
}

const char *fdn__rl_script_text(size_t *len)
{
    pthread_once(&g_script_once, script_join);
    *len = sizeof(g_script) - 1;
    return g_script;
}

void fdn__rl_script_init(fdn__rl_script_t *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
}

void fdn__rl_script_fini(fdn__rl_script_t *s)
{
    pthread_mutex_destroy(&s->mu);
}

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

static struct timeval ms_tv(int64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* The longest array a reply may announce. The script answers 7 integers; SCRIPT LOAD, DEL,
 * AUTH and SELECT answer scalars. hiredis 0.14 allocates an array's element table as soon
 * as it reads the header, so a broken peer's "*711111002" asked for 5.7 GB (found by
 * fuzz/fuzz_redis_reply.c): a longer array is refused before that, as hiredis refuses a
 * reply it has no memory for (an error reply of the context: the call fails, the connection
 * is dropped). */
#define REPLY_ARRAY_MAX 64

static redisReplyObjectFunctions g_bounded_fns;
static void *(*g_create_array)(const redisReadTask *, int);
static pthread_once_t g_bounded_once = PTHREAD_ONCE_INIT;

static void *bounded_create_array(const redisReadTask *task, int n)
{
    return n > REPLY_ARRAY_MAX ? NULL : g_create_array(task, n);
}

/* hiredis's own reply functions (they are not exported), with createArray bounded. */
static void bounded_init(void)
{
    redisReader *r = redisReaderCreate();
    if (r == NULL || r->fn == NULL || r->fn->createArray == NULL) {
        redisReaderFree(r);
        return;
    }
    g_bounded_fns = *r->fn;
    g_create_array = r->fn->createArray;
    g_bounded_fns.createArray = bounded_create_array;
    redisReaderFree(r);
}

int fdn__rl_bound_replies(redisContext *c)
{
    pthread_once(&g_bounded_once, bounded_init);
    if (g_create_array == NULL || c == NULL || c->reader == NULL)
        return FDN_ENOMEM;
    c->reader->fn = &g_bounded_fns;
    return 0;
}

/* The bound of an opening's step that starts now: ms, or what is left of deadline_ns (0: none)
 * when that is less; 0 when less than 1 ms is left. */
static int64_t step_ms(int64_t ms, int64_t deadline_ns)
{
    if (deadline_ns == 0)
        return ms;
    int64_t left_ms = (deadline_ns - fdn__mono_now_ns()) / 1000000;
    return left_ms < 1 ? 0 : left_ms < ms ? left_ms : ms;
}

/* Bound both directions of c's socket by ms, *set being the bound on it now (0: none yet).
 * 0 or -1 (setsockopt failed). */
static int set_bound(redisContext *c, int64_t ms, int64_t *set)
{
    if (*set == ms)
        return 0;
    if (redisSetTimeout(c, ms_tv(ms)) != REDIS_OK)
        return -1;
    *set = ms;
    return 0;
}

/* Bound c for an opening's next step (command_ms, or what is left of deadline_ns): 0,
 * FDN_ETIMEDOUT when nothing is left (nothing is sent), or `fail` when the bound cannot be
 * set. */
static int step_bound(redisContext *c, int64_t command_ms, int64_t deadline_ns, int64_t *set,
                      int fail)
{
    int64_t ms = step_ms(command_ms, deadline_ns);
    if (ms == 0)
        return FDN_ETIMEDOUT;
    return set_bound(c, ms, set) == 0 ? 0 : fail;
}

static int connect_unguarded(redisContext **out, const fdn__redis_url_t *url, int64_t connect_ms,
                             int64_t command_ms, int64_t deadline_ns)
{
    int64_t ms = step_ms(connect_ms, deadline_ns);
    if (ms == 0)
        return FDN_ETIMEDOUT;
    redisContext *c = redisConnectWithTimeout(url->host, url->port, ms_tv(ms));
    if (c == NULL)
        return FDN_ENOMEM;
    if (!c->err && fdn__rl_bound_replies(c) != 0) {
        redisFree(c);
        return FDN_ENOMEM;
    }
    if (c->err) {
        redisFree(c);
        return FDN_ECONNREFUSED;
    }
    int64_t set = 0; /* the bound on c's socket now */
    int rc = 0;
    if (url->has_password) {
        size_t ul = strlen(url->user), pl = strlen(url->password);
        rc = step_bound(c, command_ms, deadline_ns, &set, FDN_ECONNREFUSED);
        if (rc == 0)
            rc = ul > 0 ? simple_command(c, 3, (const char *[]){"AUTH", url->user, url->password},
                                         (size_t[]){4, ul, pl})
                        : simple_command(c, 2, (const char *[]){"AUTH", url->password},
                                         (size_t[]){4, pl});
    }
    if (rc == 0 && url->db != 0) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%d", url->db);
        rc = step_bound(c, command_ms, deadline_ns, &set, FDN_ECONNREFUSED);
        if (rc == 0)
            rc = simple_command(c, 2, (const char *[]){"SELECT", db}, (size_t[]){6, (size_t)n});
    }
    /* what comes after the opening has command_ms (a pipeline lowers it to its own bound) */
    if (rc == 0 && set_bound(c, command_ms, &set) != 0)
        rc = FDN_ECONNREFUSED;
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

int fdn__rl_connect(redisContext **out, const fdn__redis_url_t *url, int64_t connect_ms,
                    int64_t command_ms, int64_t deadline_ns)
{
    fdn__sigpipe_guard_t g; /* AUTH and SELECT write to the socket */
    fdn__sigpipe_block(&g);
    int rc = connect_unguarded(out, url, connect_ms, command_ms, deadline_ns);
    fdn__sigpipe_restore(&g);
    return rc;
}

void fdn__rl_close(redisContext *c)
{
    if (c != NULL)
        redisFree(c);
}

/* SCRIPT LOAD on c; keeps the SHA1 in s and in sha. 0 or FDN_EUNAVAILABLE. */
static int script_load(redisContext *c, fdn__rl_script_t *s, char sha[41], bool *broken,
                       fdn__rl_sent_t *sent)
{
    sent->loads++;
    size_t n;
    const char *text = fdn__rl_script_text(&n);
    redisReply *r = redisCommand(c, "SCRIPT LOAD %b", text, n);
    if (r == NULL) {
        *broken = true;
        return FDN_EUNAVAILABLE;
    }
    int rc = FDN_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(sha, r->str, 40);
        sha[40] = '\0';
        fdn__mutex_lock(&s->mu);
        memcpy(s->sha, sha, 41);
        s->known = s->ready = true;
        fdn__mutex_unlock(&s->mu);
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

/* ---- pipelines written by one thread and read by another ------------------------------- */

bool fdn__rl_script_sha(fdn__rl_script_t *s, char sha[41], bool *loaded)
{
    fdn__mutex_lock(&s->mu);
    bool known = s->known;
    memcpy(sha, s->sha, 41);
    *loaded = s->ready;
    fdn__mutex_unlock(&s->mu);
    return known;
}

int fdn__rl_script_load(redisContext *c, fdn__rl_script_t *s, int64_t command_ms,
                        int64_t deadline_ns, bool *broken, fdn__rl_sent_t *sent)
{
    int64_t set = command_ms; /* what c's socket has (fdn__rl_connect left it) */
    if (deadline_ns != 0) {
        int rc = step_bound(c, command_ms, deadline_ns, &set, FDN_EUNAVAILABLE);
        if (rc != 0) { /* FDN_ETIMEDOUT: nothing sent, c as it was; else its bound is unknown */
            if (rc != FDN_ETIMEDOUT)
                *broken = true;
            return rc;
        }
    }
    fdn__sigpipe_guard_t g;
    fdn__sigpipe_block(&g);
    char sha[41];
    int rc = script_load(c, s, sha, broken, sent);
    fdn__sigpipe_restore(&g);
    if (rc == 0 && deadline_ns != 0 && set_bound(c, command_ms, &set) != 0) {
        *broken = true;
        rc = FDN_EUNAVAILABLE;
    }
    return rc;
}

/* RESP: "*<n>\r\n", "$<len>\r\n<bytes>\r\n"; decimal digits written by hand (snprintf would
 * cost more than the rest of a call's encoding). */
static void put_uint(fdn__buf_t *o, char lead, unsigned long long v)
{
    char d[24];
    size_t i = sizeof(d);
    d[--i] = '\n';
    d[--i] = '\r';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    d[--i] = lead;
    fdn__buf_put(o, d + i, sizeof(d) - i);
}

static void put_bulk(fdn__buf_t *o, const char *p, size_t n)
{
    put_uint(o, '$', n);
    fdn__buf_put(o, p, n);
    fdn__buf_put(o, "\r\n", 2);
}

static void put_int_bulk(fdn__buf_t *o, long long v)
{
    char d[24];
    size_t i = sizeof(d);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[--i] = '-';
    put_bulk(o, d + i, sizeof(d) - i);
}

void fdn__rl_encode_calls(fdn__buf_t *out, const char sha[41], fdn__rl_call_t *const *calls,
                          size_t n, const bool *todo, bool load_first, fdn__rl_sent_t *sent)
{
    if (load_first) {
        put_uint(out, '*', 3);
        put_bulk(out, "SCRIPT", 6);
        put_bulk(out, "LOAD", 4);
        size_t textlen;
        const char *text = fdn__rl_script_text(&textlen);
        put_bulk(out, text, textlen);
        sent->loads++;
    }
    for (size_t i = 0; i < n; i++) {
        if (todo != NULL && !todo[i])
            continue;
        const fdn__rl_call_t *k = calls[i];
        put_uint(out, '*', 11);
        put_bulk(out, "EVALSHA", 7);
        put_bulk(out, sha, 40);
        put_bulk(out, "1", 1);
        put_bulk(out, k->rkey, k->rkeylen);
        put_int_bulk(out, (long long)k->rule->algo);
        put_int_bulk(out, (long long)k->op);
        put_int_bulk(out, (long long)k->cost);
        put_int_bulk(out, (long long)k->rule->limit);
        put_int_bulk(out, (long long)k->rule->period_ms);
        put_int_bulk(out, (long long)k->rule->burst);
        put_int_bulk(out, (long long)k->epoch_in);
        sent->commands++;
    }
}

void fdn__rl_encode_del(fdn__buf_t *out, const char *const *keys, const size_t *lens, int n,
                        fdn__rl_sent_t *sent)
{
    put_uint(out, '*', (unsigned long long)n + 1);
    put_bulk(out, "DEL", 3);
    for (int i = 0; i < n; i++)
        put_bulk(out, keys[i], lens[i]);
    sent->commands++;
}

static int sock_timeout(redisContext *c, int opt, int64_t ms)
{
    struct timeval tv = ms_tv(ms);
    return setsockopt(c->fd, SOL_SOCKET, opt, &tv, sizeof(tv)) == 0 ? 0 : FDN_EUNAVAILABLE;
}

int fdn__rl_set_send_timeout(redisContext *c, int64_t ms)
{
    return sock_timeout(c, SO_SNDTIMEO, ms);
}

int fdn__rl_set_recv_timeout(redisContext *c, int64_t ms)
{
    return sock_timeout(c, SO_RCVTIMEO, ms);
}

int fdn__rl_write(redisContext *c, const char *p, size_t len, bool *broken)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a peer gone gives EPIPE, not SIGPIPE */
        ssize_t k = send(c->fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) { /* an error, or the send bound passed (EAGAIN): part may have gone */
            *broken = true;
            return FDN_EUNAVAILABLE;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* The next reply on c, read without touching hiredis's output buffer (the writer of the
 * connection's next pipeline does not use it either). REDIS_OK or REDIS_ERR. */
static int next_reply(redisContext *c, void **reply)
{
    *reply = NULL;
    if (redisGetReplyFromReader(c, reply) != REDIS_OK)
        return REDIS_ERR;
    while (*reply == NULL) {
        if (redisBufferRead(c) != REDIS_OK || redisGetReplyFromReader(c, reply) != REDIS_OK)
            return REDIS_ERR;
    }
    return REDIS_OK;
}

size_t fdn__rl_read_calls(redisContext *c, fdn__rl_script_t *s, fdn__rl_call_t *const *calls,
                          size_t n, const bool *todo, bool load_first, bool *retry, bool *broken)
{
    if (load_first && !*broken) {
        void *reply = NULL;
        if (next_reply(c, &reply) != REDIS_OK || reply == NULL) {
            *broken = true;
        } else {
            redisReply *r = reply;
            if (r->type == REDIS_REPLY_STRING && r->len == 40) {
                fdn__mutex_lock(&s->mu);
                bool same = !s->known || memcmp(s->sha, r->str, 40) == 0;
                if (same) {
                    memcpy(s->sha, r->str, 40);
                    s->sha[40] = '\0';
                    s->known = s->ready = true;
                }
                fdn__mutex_unlock(&s->mu);
                *broken = !same; /* another script under our name: not the peer we expect */
            } else if (r->type != REDIS_REPLY_ERROR) {
                *broken = true; /* not a Redis answer */
            } /* an error reply (a refused load): the calls behind it answer for themselves */
            freeReplyObject(r);
        }
    }
    size_t again = 0;
    for (size_t i = 0; i < n; i++) {
        if (todo != NULL && !todo[i])
            continue;
        retry[i] = false;
        calls[i]->rc = FDN_EUNAVAILABLE;
        if (*broken)
            continue; /* written or not, it is never resent */
        void *reply = NULL;
        if (next_reply(c, &reply) != REDIS_OK || reply == NULL) {
            *broken = true; /* I/O error or timeout */
            continue;
        }
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            retry[i] = true; /* the script did not run */
            again++;
        } else {
            calls[i]->rc = parse_reply(r, calls[i]->res, &calls[i]->epoch_out);
            if (calls[i]->rc == FDN_EUNAVAILABLE && r->type != REDIS_REPLY_ERROR)
                *broken = true; /* a reply the script cannot give: do not trust this peer */
        }
        freeReplyObject(r);
    }
    if (again > 0) { /* the server lost its scripts: the next pipelines load it first */
        fdn__mutex_lock(&s->mu);
        s->ready = false;
        fdn__mutex_unlock(&s->mu);
    }
    return again;
}

int64_t fdn__rl_read_del(redisContext *c, int n, bool *broken)
{
    void *reply = NULL;
    if (*broken || next_reply(c, &reply) != REDIS_OK || reply == NULL) {
        *broken = true;
        return FDN_EUNAVAILABLE;
    }
    redisReply *r = reply;
    bool count = r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && r->integer <= n;
    int64_t rc = count ? (int64_t)r->integer : FDN_EUNAVAILABLE;
    if (!count && r->type != REDIS_REPLY_ERROR)
        *broken = true;
    freeReplyObject(r);
    return rc;
}

/* ---- the same on one thread: send, then read ------------------------------------------- */

int fdn__rl_eval_many(redisContext *c, fdn__rl_script_t *s, fdn__rl_call_t *const *calls, size_t n,
                      bool *broken, fdn__rl_sent_t *sent)
{
    for (size_t i = 0; i < n; i++)
        calls[i]->rc = FDN_EUNAVAILABLE;
    char sha[41];
    bool loaded;
    if (!fdn__rl_script_sha(s, sha, &loaded)) { /* its SHA1 is what a load answers */
        if (fdn__rl_script_load(c, s, 0, 0, broken, sent) != 0)
            return FDN_EUNAVAILABLE;
        (void)fdn__rl_script_sha(s, sha, &loaded);
    }
    bool stack_retry[64];
    bool *retry = n <= 64 ? stack_retry : fdn__calloc(n, sizeof(bool));
    if (retry == NULL)
        return FDN_EUNAVAILABLE;
    size_t again = 0;
    for (int round = 0; round < 2 && !*broken; round++) { /* the second: after NOSCRIPT */
        bool load_first = round == 1 || !loaded;
        fdn__buf_t out = FDN__BUF_INIT;
        fdn__rl_encode_calls(&out, sha, calls, n, round == 1 ? retry : NULL, load_first, sent);
        if (out.oom || fdn__rl_write(c, out.p, out.len, broken) != 0) {
            *broken = true; /* part of it may have gone: nothing of it is read */
            fdn__free(out.p);
            break;
        }
        fdn__free(out.p);
        /* todo and retry may be one array: each call's todo is read before its retry is
         * written (a second NOSCRIPT leaves the call unavailable) */
        again = fdn__rl_read_calls(c, s, calls, n, round == 1 ? retry : NULL, load_first, retry,
                                   broken);
        if (round == 0 && again == 0)
            break;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (calls[i]->rc == FDN_EUNAVAILABLE)
            rc = FDN_EUNAVAILABLE;
    if (retry != stack_retry)
        fdn__free(retry);
    return rc;
}

int64_t fdn__rl_del(redisContext *c, const char *const *keys, const size_t *lens, int n,
                    bool *broken, fdn__rl_sent_t *sent)
{
    if (n < 1 || n > 8)
        return FDN_EINVAL;
    fdn__buf_t out = FDN__BUF_INIT;
    fdn__rl_encode_del(&out, keys, lens, n, sent);
    int rc = out.oom ? FDN_EUNAVAILABLE : fdn__rl_write(c, out.p, out.len, broken);
    fdn__free(out.p);
    if (rc != 0) {
        *broken = true;
        return FDN_EUNAVAILABLE;
    }
    return fdn__rl_read_del(c, n, broken);
}
