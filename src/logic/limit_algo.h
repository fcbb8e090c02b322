/* Rate-limit algorithms as pure functions: fixed window, token bucket, GCRA and sliding window
 * over one key's small plain state and a timestamp. No locks, no I/O, no globals, no clock
 * reads: the caller owns the state (a cell of the in-memory store today; a server-side script
 * or a client that reads the state from a server tomorrow) and passes the time in.
 *
 * Everything is integer nanoseconds and fits in int64 for every rule that
 * fdn_limit_rule_validate accepts (products are formed in 128 bits and clamped), at any time
 * `now` a manual clock can give: an expiry or a GCRA TAT past INT64_MAX stops there (so a key
 * within its debt of the end stays denied; at INT64_MAX itself no later time exists), and the
 * sliding and fixed windows' index is floor(now / P), so a negative time (a monotonic clock, or a
 * wall clock before 1970) has windows of P too (both branches are never taken for a clock between 0
 * and INT64_MAX - 2P).
 *
 * State per algorithm (s[] below; `expires` is on the same clock as `now`):
 *   FIXED_WINDOW    s[0] window index floor(now / P), s[1] cost counted in that window
 *   TOKEN_BUCKET    s[0] time of the last refill, s[1] tokens scaled by P (tokens * P ns)
 *   GCRA            s[0] theoretical arrival time (TAT)
 *   SLIDING_WINDOW  s[0] window index floor(now / P), s[1] cost in it, s[2] in the previous
 * A state whose `expires` is <= now is equivalent to a fresh one (fdn__limit_init), so a store
 * may drop it; nothing else about the state is meant to be read by the caller.
 *
 * A `now` earlier than the state's own time (its window, a bucket's last refill, GCRA's TAT) is
 * in the common case not a clock going back but a stale read: a caller reads the clock before
 * it takes the lock that serialises the key's updates (the store reads it before the shard
 * lock, protected execution passes its call's start time), so a check can reach the state
 * after another check that read a later time. Such a `now` is taken as the state's own time
 * (see fdn__limit_apply: a window is never rewound by one), and every time reported is still
 * measured from the caller's `now`. */
#ifndef FDN_LOGIC_LIMIT_ALGO_H
#define FDN_LOGIC_LIMIT_ALGO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <fdn/limiter.h>

/* Bounds fdn_limit_rule_validate enforces (limit, burst and a cost are at most FDN__LIMIT_MAX,
 * period_ms at most FDN__LIMIT_PERIOD_MAX_MS). */
#define FDN__LIMIT_MAX           ((int64_t)1 << 31)
#define FDN__LIMIT_PERIOD_MAX_MS ((int64_t)1 << 33)
#define FDN__LIMIT_SCALED_MAX    ((int64_t)1 << 62) /* bound of burst * P and burst * T, in ns */
/* Where a window's count stops: the windows count past the limit (a fixed window counts denied
 * hits, inc counts whatever fits), so a key hammered with large costs would otherwise run off
 * the end of int64. With counts <= 2^61 and costs <= 2^31 no sum below overflows. */
#define FDN__LIMIT_COUNT_MAX     ((int64_t)1 << 61)
#define FDN__LIMIT_NS_PER_MS     1000000LL

__extension__ typedef __int128 fdn__i128;

/* fdn__limit_apply is compiled into its caller's code even though it is large: it runs once per
 * check under a shard lock, and a call across files measured ~2 ns of a ~50 ns check. */
#if defined(__GNUC__)
#define FDN__LIMIT_HOT         inline __attribute__((always_inline))
#define FDN__LIMIT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define FDN__LIMIT_HOT         inline
#define FDN__LIMIT_UNLIKELY(x) (x)
#endif

/* How far before the start of its state's window a wall-clock (FIXED_WINDOW) `now` may lie
 * and still be a stale read, taken as inside that window. Further back it is a step of the
 * wall clock (NTP, an operator) and the earlier window starts afresh, as the reference's
 * floor(now / window) has it. A stale read is the time between a clock read and the shard
 * lock (microseconds; a preempted thread, milliseconds); steps smaller than this are rare
 * (ntpd slews offsets under 128 ms, chrony steps only past its makestep threshold, 1 s by
 * default), and a small step kept in the later window only holds that window's count until
 * the clock reaches it again, never admits more. The monotonic clock (SLIDING_WINDOW) never
 * steps back: any earlier window there is a stale read. */
#define FDN__LIMIT_WALL_STEP_NS 1000000000LL

/* Operations applied to one key's state. */
typedef enum fdn__limit_op {
    FDN__LIMIT_CHECK = 0,  /* consume on success (fixed window: always) */
    FDN__LIMIT_PEEK = 1,   /* evaluate only */
    FDN__LIMIT_CANCEL = 2, /* give back `cost` if *epoch is still current */
    FDN__LIMIT_INC = 3,    /* count `cost` whether or not it fits (Hammer's inc) */
    FDN__LIMIT_SET = 4,    /* make the count `cost` (0..FDN__LIMIT_MAX; Hammer's set) */
} fdn__limit_op_t;

typedef struct fdn__limit_state {
    int64_t s[3];    /* algorithm state, see above */
    int64_t expires; /* the state is equivalent to a fresh one from this time on */
} fdn__limit_state_t;

/* Whether the algorithm runs on the wall clock (FIXED_WINDOW: windows are aligned to wall
 * time, as Hammer's are) or on the monotonic clock (the others). `now` passed to the
 * functions below is read from that clock. */
static inline bool fdn__limit_wall_clock(fdn_limit_algo_t algo)
{
    return algo == FDN_LIMIT_FIXED_WINDOW;
}

/* A fresh state for rule r at now: a full bucket, an empty window. expires = now. */
inline void fdn__limit_init(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t now);

/*
 * Apply op at now to a state of rule r (r valid, 1 <= cost <= FDN__LIMIT_MAX; the state was
 * made by fdn__limit_init for the same algorithm and is not expired). Updates st, including
 * st->expires, and fills *res (may be NULL) with allowed, count, limit, remaining, reset_ns and
 * retry_after_ns (shadow_denied false).
 * epoch: CHECK writes the window index it counted in (fixed and sliding window; 0 for the
 * buckets) when epoch is not NULL; CANCEL reads it (must not be NULL) and gives cost back only
 * in that same window. PEEK ignores it.
 * INC counts cost whatever the state (a check that is never denied), SET makes the count cost
 * (0 allowed here). Both may take a key past its limit: the windows count on, the token bucket
 * goes into debt (negative tokens, at most one full bucket, refilled before anything is
 * admitted again) and GCRA's TAT
 * moves past the burst; reported remaining never goes below 0. For INC, res->allowed says
 * whether a CHECK of that cost would have been allowed; for SET, whether count <= limit.
 * Returns 0, or FDN_ENOENT for a CANCEL that has nothing to give back (*res is not filled).
 * The decision is res->allowed, not the return code.
 *
 * A `now` earlier than the state's time (a stale clock read, see the top of this file; a
 * manual clock set back): the sliding window (monotonic clock) counts in the state's window,
 * as if `now` were that window's start; so does the fixed window when `now` is at most
 * FDN__LIMIT_WALL_STEP_NS before that window's start, while a wall clock stepped back further
 * starts the earlier window `now` falls in afresh (the reference's floor(now / window)). The
 * token bucket does not refill and GCRA's TAT does not move back, so neither grants more than
 * the time that really passed. reset_ns, retry_after_ns and expires are measured from the
 * caller's `now` (so a state is never reported as expiring before its own time). No result is
 * ever negative.
 */
FDN__LIMIT_HOT int fdn__limit_apply(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t cost,
                                    fdn__limit_op_t op, int64_t now, int64_t *epoch,
                                    fdn_limit_result_t *res);

/*
 * Convert state st of rule `from` to rule `to` (same algorithm, both valid; the key's rule
 * changed: a named rule was set again, a caller passes another limit) at now, so that what the
 * key has used carries over instead of being read in the new rule's units:
 *   token bucket: refilled under `from` up to now, then its tokens kept (rescaled from P_from
 *     to P_to units, floored) and clamped to the new burst; a debt is kept, at most one bucket;
 *   GCRA: the tokens available at now (burst - used) kept, clamped to the new burst (a debt is
 *     kept, at most 2^62 ns ahead), the TAT placed for the new emission interval;
 *   fixed and sliding window: the counts are kept; a new period moves them to now's window
 *     of the new period (a window of the old period that ended before now is dropped first,
 *     as apply would; a sliding window's current count becomes its previous one then).
 * A new limit alone changes nothing in a window's state (count against the new limit).
 * st->expires is left as it is: the next fdn__limit_apply sets it.
 */
void fdn__limit_convert(fdn__limit_state_t *st, const fdn_limit_rule_t *from,
                        const fdn_limit_rule_t *to, int64_t now);

/* The bucket capacity of r: burst, or limit when burst is 0. */
inline int64_t fdn__limit_burst(const fdn_limit_rule_t *r)
{
    return r->burst > 0 ? r->burst : r->limit;
}

/* GCRA's emission interval T = P / L in ns, rounded up (r valid). */
inline int64_t fdn__limit_gcra_interval(const fdn_limit_rule_t *r)
{
    int64_t p = r->period_ms * FDN__LIMIT_NS_PER_MS;
    return (p + r->limit - 1) / r->limit;
}

/* What is wrong with rule r (r not NULL), the first bound it breaks in this order, or
 * FDN__LIMIT_RULE_OK. The one statement of the bounds: fdn_limit_rule_validate turns the answer
 * into its message, and the check of a caller's rule, which runs on every check, tests it for
 * FDN__LIMIT_RULE_OK inline (a call across files and ~25 instructions before). */
typedef enum fdn__limit_rule_fault {
    FDN__LIMIT_RULE_OK = 0,
    FDN__LIMIT_RULE_ALGO,        /* not one of fdn_limit_algo_t */
    FDN__LIMIT_RULE_LIMIT,       /* limit outside 1..FDN__LIMIT_MAX */
    FDN__LIMIT_RULE_PERIOD,      /* period_ms outside 1..FDN__LIMIT_PERIOD_MAX_MS */
    FDN__LIMIT_RULE_BURST,       /* burst outside 0..FDN__LIMIT_MAX */
    FDN__LIMIT_RULE_BUCKET_SIZE, /* token bucket: burst * P past FDN__LIMIT_SCALED_MAX */
    FDN__LIMIT_RULE_GCRA_SIZE,   /* GCRA: burst * T past FDN__LIMIT_SCALED_MAX */
} fdn__limit_rule_fault_t;

static inline fdn__limit_rule_fault_t fdn__limit_rule_fault(const fdn_limit_rule_t *r)
{
    if ((unsigned)r->algo > FDN_LIMIT_SLIDING_WINDOW)
        return FDN__LIMIT_RULE_ALGO;
    if (r->limit < 1 || r->limit > FDN__LIMIT_MAX)
        return FDN__LIMIT_RULE_LIMIT;
    if (r->period_ms < 1 || r->period_ms > FDN__LIMIT_PERIOD_MAX_MS)
        return FDN__LIMIT_RULE_PERIOD;
    if (r->burst < 0 || r->burst > FDN__LIMIT_MAX)
        return FDN__LIMIT_RULE_BURST;
    if (r->algo == FDN_LIMIT_TOKEN_BUCKET &&
        (fdn__i128)fdn__limit_burst(r) * (r->period_ms * FDN__LIMIT_NS_PER_MS) >
            FDN__LIMIT_SCALED_MAX)
        return FDN__LIMIT_RULE_BUCKET_SIZE;
    if (r->algo == FDN_LIMIT_GCRA &&
        (fdn__i128)fdn__limit_burst(r) * fdn__limit_gcra_interval(r) > FDN__LIMIT_SCALED_MAX)
        return FDN__LIMIT_RULE_GCRA_SIZE;
    return FDN__LIMIT_RULE_OK;
}

/* count + cost, stopping at FDN__LIMIT_COUNT_MAX (1 <= cost <= FDN__LIMIT_MAX). */
inline int64_t fdn__limit_count_add(int64_t count, int64_t cost)
{
    return count > FDN__LIMIT_COUNT_MAX - cost ? FDN__LIMIT_COUNT_MAX : count + cost;
}

/* ceil(a / b) for b > 0, 0 when a <= 0, clamped to INT64_MAX. */
inline int64_t fdn__limit_ceil_div(fdn__i128 a, fdn__i128 b)
{
    if (a <= 0)
        return 0;
    if (a <= INT64_MAX / 2 && b <= INT64_MAX / 2) /* the usual case: a 64-bit division */
        return ((int64_t)a + (int64_t)b - 1) / (int64_t)b;
    fdn__i128 q = (a + b - 1) / b;
    return q > INT64_MAX ? INT64_MAX : (int64_t)q;
}

/* A window-index state (fixed, sliding) at index idx > the index of now: whether now is taken
 * as inside window idx (see fdn__limit_apply), and then *lag = idx * p - now, the time from now
 * to that window's start (> 0, stopping at INT64_MAX). Off the hot path: only a `now` in an
 * earlier window than its state's gets here. */
inline bool fdn__limit_window_lag(int64_t idx, int64_t p, int64_t now, bool wall, int64_t *lag)
{
    fdn__i128 d = (fdn__i128)idx * p - now;
    if (wall && d > FDN__LIMIT_WALL_STEP_NS)
        return false; /* a wall-clock step: count in now's own window */
    *lag = d > INT64_MAX ? INT64_MAX : (int64_t)d;
    return true;
}

/* a + b for b >= 0, stopping at INT64_MAX. */
inline int64_t fdn__limit_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

/* ---- definitions ----------------------------------------------------------------------------
 * inline (C11 6.7.4): a caller on a hot path (the in-memory store, once per check) compiles the
 * arithmetic into its own code instead of calling across files; limit_algo.c holds the one
 * external definition of each. */

inline void fdn__limit_init(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t now)
{
    int64_t p = r->period_ms * FDN__LIMIT_NS_PER_MS;
    memset(st->s, 0, sizeof(st->s));
    st->expires = now;
    switch (r->algo) {
    case FDN_LIMIT_FIXED_WINDOW:
    case FDN_LIMIT_SLIDING_WINDOW:
        /* floor(now / P), as fdn__limit_apply computes it */
        st->s[0] = now / p - (now % p < 0);
        break;
    case FDN_LIMIT_TOKEN_BUCKET:
        st->s[0] = now;
        st->s[1] = fdn__limit_burst(r) * p; /* full */
        break;
    case FDN_LIMIT_GCRA:
        st->s[0] = now; /* TAT */
        break;
    }
}

FDN__LIMIT_HOT int fdn__limit_apply(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t cost,
                                    fdn__limit_op_t op, int64_t now, int64_t *epoch,
                                    fdn_limit_result_t *res)
{
    const int64_t p = r->period_ms * FDN__LIMIT_NS_PER_MS;
    const int64_t L = r->limit;
    int64_t *s = st->s;
    bool ok = false;
    int64_t count = 0, remaining = 0, reset = 0, retry = 0, lim = L;

    switch (r->algo) {
    case FDN_LIMIT_FIXED_WINDOW: {
        /* win = floor(now / P), e = the time into it: truncation would make window 0 run
         * from -P to P on a wall clock before 1970 (a manual clock). The remainder comes with
         * the same division and the branch is never taken for a clock at or after 0. */
        int64_t win = now / p;
        int64_t e = now % p;
        if (e < 0) {
            e += p;
            win--;
        }
        int64_t lag = 0; /* a stale `now` (see above): the time to the state's window */
        if (FDN__LIMIT_UNLIKELY(win < s[0]) && fdn__limit_window_lag(s[0], p, now, true, &lag)) {
            win = s[0];
            e = 0;
        }
        if (s[0] != win) {
            s[0] = win;
            s[1] = 0;
        }
        /* p minus the time into the window: (win + 1) * P would pass INT64_MAX on a clock
         * within a period of it */
        reset = p - e;
        if (FDN__LIMIT_UNLIKELY(lag != 0))
            reset = fdn__limit_add_sat(reset, lag);
        if (op == FDN__LIMIT_CANCEL) {
            if (*epoch != win || s[1] <= 0)
                return FDN_ENOENT;
            s[1] = s[1] > cost ? s[1] - cost : 0;
            count = s[1];
            ok = true;
        } else if (op == FDN__LIMIT_PEEK) {
            count = s[1];
            ok = count <= L - cost;
        } else {
            /* CHECK and INC: Hammer counts denied hits too; SET: the count given */
            s[1] = op == FDN__LIMIT_SET ? cost : fdn__limit_count_add(s[1], cost);
            count = s[1];
            ok = count <= L;
            if (epoch)
                *epoch = win;
        }
        remaining = L - count > 0 ? L - count : 0;
        retry = ok ? 0 : (cost > L ? INT64_MAX : reset);
        /* the window's end, stopping at INT64_MAX (an overflow flag never set for a sane
         * clock) */
        if (__builtin_add_overflow(now, reset, &st->expires))
            st->expires = INT64_MAX;
        break;
    }
    case FDN_LIMIT_TOKEN_BUCKET: {
        const int64_t burst = fdn__limit_burst(r);
        const int64_t cap = burst * p;
        int64_t elapsed = now - s[0];
        if (elapsed > 0) {
            fdn__i128 t = (fdn__i128)s[1] + (fdn__i128)elapsed * L;
            s[1] = t > cap ? cap : (int64_t)t;
            s[0] = now;
        }
        /* cost * P, stopping at FDN__LIMIT_SCALED_MAX (an overflow flag, not a 128-bit
         * product and compare) */
        int64_t need;
        if (__builtin_mul_overflow(cost, p, &need) || need > FDN__LIMIT_SCALED_MAX)
            need = FDN__LIMIT_SCALED_MAX;
        if (op == FDN__LIMIT_CANCEL) {
            fdn__i128 t = (fdn__i128)s[1] + need;
            s[1] = t > cap ? cap : (int64_t)t;
            ok = true;
        } else if (op == FDN__LIMIT_SET) { /* count c: burst - c tokens (a debt past burst) */
            fdn__i128 t = ((fdn__i128)burst - cost) * p;
            s[1] = t < -cap ? -cap : (int64_t)t; /* a debt of at most one full bucket */
            ok = cost <= burst;
        } else {
            ok = s[1] >= need;
            if (ok && op == FDN__LIMIT_CHECK)
                s[1] -= need;
            if (op == FDN__LIMIT_INC) /* taken whether or not it fits, down to a bounded debt */
                s[1] = (fdn__i128)s[1] - need < -cap ? -cap : s[1] - need;
            if (!ok)
                retry = cost > burst ? INT64_MAX : fdn__limit_ceil_div((fdn__i128)need - s[1], L);
        }
        if (epoch && (op == FDN__LIMIT_CHECK || op == FDN__LIMIT_INC || op == FDN__LIMIT_SET))
            *epoch = 0;
        lim = burst;
        remaining = s[1] > 0 ? s[1] / p : 0;
        count = burst - remaining;
        /* ceil((cap - tokens) / L): one 64-bit division, quotient and remainder together;
         * cap - tokens passes INT64_MAX only for a bucket a full bucket in debt (128 bits) */
        int64_t gap;
        if (!__builtin_sub_overflow(cap, s[1], &gap))
            reset = gap <= 0 ? 0 : gap / L + (gap % L != 0);
        else
            reset = fdn__limit_ceil_div((fdn__i128)cap - s[1], L);
        /* the tokens are those of s[0], the last refill: the bucket is full at s[0] + reset.
         * s[0] > now only for a stale `now` (no refill then): the times reported are measured
         * from now, so they are longer by the difference */
        if (__builtin_add_overflow(s[0], reset, &st->expires))
            st->expires = INT64_MAX;
        if (FDN__LIMIT_UNLIKELY(s[0] > now)) {
            int64_t lag;
            if (__builtin_sub_overflow(s[0], now, &lag))
                lag = INT64_MAX;
            reset = fdn__limit_add_sat(reset, lag);
            if (retry != 0 && retry != INT64_MAX)
                retry = fdn__limit_add_sat(retry, lag);
        }
        break;
    }
    case FDN_LIMIT_GCRA: {
        const int64_t T = fdn__limit_gcra_interval(r);
        const int64_t burst = fdn__limit_burst(r);
        const int64_t bt = burst * T; /* tau + T */
        int64_t tat = s[0] > now ? s[0] : now;
        /* where a TAT stops: a bounded debt ahead of now, and never past INT64_MAX (a manual
         * clock within 2^62 ns of it: a TAT cast back from past it would wrap negative and the
         * debt be forgotten) */
        int64_t tat_max;
        if (__builtin_add_overflow(now, FDN__LIMIT_SCALED_MAX, &tat_max))
            tat_max = INT64_MAX;
        if (op == FDN__LIMIT_CANCEL) {
            fdn__i128 nt = (fdn__i128)s[0] - (fdn__i128)cost * T;
            s[0] = nt < now ? now : (int64_t)nt;
            ok = true;
        } else if (op == FDN__LIMIT_SET) { /* count c: c emissions ahead of now */
            fdn__i128 nt = (fdn__i128)now + (fdn__i128)cost * T;
            s[0] = nt > tat_max ? tat_max : (int64_t)nt;
            ok = cost <= burst;
        } else {
            fdn__i128 new_tat = (fdn__i128)tat + (fdn__i128)cost * T;
            fdn__i128 allow_at = new_tat - bt;
            ok = now >= allow_at;
            if ((ok && op == FDN__LIMIT_CHECK) || op == FDN__LIMIT_INC) /* INC: bounded debt */
                s[0] = new_tat > tat_max ? tat_max : (int64_t)new_tat;
            /* allow_at - now passes INT64_MAX only after the clock went back by more than
             * 2^63 ns past a TAT near the end (a manual clock): as long as there is to wait */
            if (!ok)
                retry = cost > burst || allow_at - now > INT64_MAX ? INT64_MAX
                                                                   : (int64_t)(allow_at - now);
        }
        if (epoch && (op == FDN__LIMIT_CHECK || op == FDN__LIMIT_INC || op == FDN__LIMIT_SET))
            *epoch = 0;
        int64_t t_end = s[0] > now ? s[0] : now;
        lim = burst;
        if (__builtin_sub_overflow(t_end, now, &reset)) /* that same jump back */
            reset = INT64_MAX;
        /* (now + bt - t_end) / T without now + bt, which passes INT64_MAX near its end */
        remaining = reset < bt ? (bt - reset) / T : 0;
        count = burst - remaining;
        st->expires = t_end;
        break;
    }
    case FDN_LIMIT_SLIDING_WINDOW: {
        /* win = floor(now / P), e = elapsed in it: truncation would make window 0 run from
         * -P to P on a negative (manual) monotonic time. The remainder comes with the same
         * division and the branch is never taken for a clock at or after 0. */
        int64_t win = now / p;
        int64_t e = now % p;
        if (e < 0) {
            e += p;
            win--;
        }
        /* a `now` in an earlier window than the state's is a stale read on the monotonic
         * clock (see above): evaluated at the state's window's start, every time reported then
         * lengthened by lag (the time from now to that start) */
        int64_t lag = 0;
        if (FDN__LIMIT_UNLIKELY(win < s[0]) && fdn__limit_window_lag(s[0], p, now, false, &lag)) {
            win = s[0];
            e = 0;
        }
        if (s[0] != win) {
            s[2] = (s[0] == win - 1) ? s[1] : 0;
            s[1] = 0;
            s[0] = win;
        }
        const int64_t prev = s[2];
        if (op == FDN__LIMIT_CANCEL) {
            if (*epoch != win || s[1] <= 0)
                return FDN_ENOENT;
            s[1] = s[1] > cost ? s[1] - cost : 0;
            ok = true;
        } else {
            /* the previous window weighs (P - e) / P: estimate = prev * (P - e) / P + cur */
            int64_t base = op == FDN__LIMIT_SET ? 0 : s[1]; /* SET: cost is the new count */
            /* base <= FDN__LIMIT_COUNT_MAX: base + cost fits */
            fdn__i128 est = (fdn__i128)prev * (p - e) + (fdn__i128)(base + cost) * p;
            ok = est <= (fdn__i128)L * p;
            if (ok && op == FDN__LIMIT_CHECK) /* ok: s[1] + cost <= L */
                s[1] += cost;
            else if (op == FDN__LIMIT_INC)
                s[1] = fdn__limit_count_add(s[1], cost);
            else if (op == FDN__LIMIT_SET)
                s[1] = cost;
            if (epoch && (op == FDN__LIMIT_CHECK || op == FDN__LIMIT_INC || op == FDN__LIMIT_SET))
                *epoch = win;
            if (!ok && (op == FDN__LIMIT_INC || op == FDN__LIMIT_SET)) {
                retry = p - e; /* over the limit now: at least until the next window */
            } else if (!ok) {
                if (cost > L) {
                    retry = INT64_MAX;
                } else if (s[1] + cost <= L) {
                    /* wait until prev's weight drops: prev*(p-e') <= (L-cur-cost)*p */
                    fdn__i128 room = (fdn__i128)(L - s[1] - cost) * p;
                    /* smallest e2 with prev*(p-e2) <= room; prev > 0 since denied */
                    int64_t e2 = p - (int64_t)(room / prev);
                    retry = e2 - e;
                } else {
                    /* next window: cur becomes prev */
                    int64_t cur = s[1];
                    fdn__i128 room = (fdn__i128)(L - cost) * p;
                    int64_t e2 = cur > 0 ? p - (int64_t)(room / cur) : 0;
                    if (e2 < 0)
                        e2 = 0;
                    retry = (p - e) + e2;
                }
            }
        }
        /* prev's weighted share rounded up, ceil(prev * (P - e) / P), so that remaining is
         * exactly what admission allows: a check of cost c passes iff
         * prev * (P - e) + (cur + c) * P <= L * P, i.e. iff c <= L - cur - ceil(share).
         * A 64-bit division where the product fits in int64 (a previous window of at most
         * 2^33 in a 1 s period), else the 128-bit one (a libgcc call) */
        int64_t wprev;
        if (prev == 0)
            count = s[1];
        else if (!__builtin_mul_overflow(prev, p - e, &wprev))
            count = wprev / p + (wprev % p != 0) + s[1];
        else
            count = fdn__limit_ceil_div((fdn__i128)prev * (p - e), p) + s[1];
        remaining = L - count > 0 ? L - count : 0;
        reset = 2 * p - e; /* the end of the next window (no (win + 2) * P overflow) */
        if (FDN__LIMIT_UNLIKELY(lag != 0)) {
            reset = fdn__limit_add_sat(reset, lag);
            if (retry != 0 && retry != INT64_MAX)
                retry = fdn__limit_add_sat(retry, lag);
        }
        if (__builtin_add_overflow(now, reset, &st->expires))
            st->expires = INT64_MAX;
        break;
    }
    }
    if (res) {
        res->allowed = ok;
        res->shadow_denied = false;
        res->count = count;
        res->limit = lim;
        res->remaining = remaining;
        res->reset_ns = reset;
        res->retry_after_ns = retry;
    }
    return 0;
}

#endif
