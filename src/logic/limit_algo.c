/*
 * DESIGN: rate-limit algorithms (fixed window, token bucket, GCRA, sliding window) as pure
 * functions over one key's state (logic/limit_algo.h).
 *
 * Threads and locks: none. A function reads and writes only the state and result it is given,
 * so the caller decides how a state is kept atomic: the in-memory store applies it under the
 * key's shard lock (infra/limiter_store.c); an out-of-process backend would run the same
 * arithmetic next to the state (a Redis script) or under its own compare-and-set. Rule
 * validation and the algorithm names live here too: they are the algorithms' own contract (the
 * bounds themselves are fdn__limit_rule_fault in the header, inline for the checks' path;
 * fdn_limit_rule_validate words its answer).
 *
 * Invariants: every value stays in int64 for a rule fdn_limit_rule_validate accepts: limit and
 * burst <= 2^31, period <= 2^33 ms (~8.6e15 ns), burst * P (token bucket) and burst * T (GCRA)
 * <= 2^62; products are formed in 128 bits and clamped; a window's count (which may pass the
 * limit: denied fixed-window hits, inc) stops at FDN__LIMIT_COUNT_MAX. Token-bucket tokens are kept
 * scaled by P (one token = P ns of refill at L per P), so refill is exact integer arithmetic. A
 * state with expires <= now is equivalent to a fresh one.
 *
 * Time: a `now` earlier than the state's own time is taken as that time (a stale clock read by a
 * caller that took the key's lock after a later check; limit_algo.h), except that a wall-clock
 * (fixed-window) `now` more than FDN__LIMIT_WALL_STEP_NS before its state's window is a clock
 * step and starts its own window afresh: the monotonic clock never steps back, and the wall
 * clock's steps are told from stale reads by their size.
 *
 * Rule changes: a state is kept in its rule's units (tokens scaled by P, a TAT spaced by T, a
 * window index of P), so a key whose rule changes has its state converted
 * (fdn__limit_convert) before the new rule is applied to it; the store does that when the rule
 * it kept with the key differs from the one given.
 */
#include "logic/limit_algo.h"

#include <string.h>

/* The one external definition of each inline function of the header (C11 6.7.4). */
extern inline int64_t fdn__limit_burst(const fdn_limit_rule_t *r);
extern inline int64_t fdn__limit_gcra_interval(const fdn_limit_rule_t *r);
extern inline int64_t fdn__limit_count_add(int64_t count, int64_t cost);
extern inline int64_t fdn__limit_ceil_div(fdn__i128 a, fdn__i128 b);
extern inline bool fdn__limit_window_lag(int64_t idx, int64_t p, int64_t now, bool wall,
                                         int64_t *lag);
extern inline int64_t fdn__limit_add_sat(int64_t a, int64_t b);
extern inline void fdn__limit_init(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t now);
extern inline int fdn__limit_apply(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t cost,
                                   fdn__limit_op_t op, int64_t now, int64_t *epoch,
                                   fdn_limit_result_t *res);

/* floor(a / b) for b > 0. */
static fdn__i128 floor_div128(fdn__i128 a, fdn__i128 b)
{
    fdn__i128 q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t floor_div64(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

void fdn__limit_convert(fdn__limit_state_t *st, const fdn_limit_rule_t *from,
                        const fdn_limit_rule_t *to, int64_t now)
{
    const int64_t po = from->period_ms * FDN__LIMIT_NS_PER_MS;
    const int64_t pn = to->period_ms * FDN__LIMIT_NS_PER_MS;
    int64_t *s = st->s;
    switch (to->algo) {
    case FDN_LIMIT_FIXED_WINDOW:
    case FDN_LIMIT_SLIDING_WINDOW: {
        if (po == pn)
            return; /* the counts stand; the new limit applies to them */
        int64_t wo = floor_div64(now, po);
        if (wo > s[0]) { /* the state's window is over at now: as apply would see it */
            if (to->algo == FDN_LIMIT_SLIDING_WINDOW)
                s[2] = s[0] == wo - 1 ? s[1] : 0;
            s[1] = 0;
        }
        /* (wo < s[0]: a stale now; the counts are kept all the same) */
        s[0] = floor_div64(now, pn);
        break;
    }
    case FDN_LIMIT_TOKEN_BUCKET: {
        const int64_t cap_o = fdn__limit_burst(from) * po;
        const int64_t cap_n = fdn__limit_burst(to) * pn;
        if (now > s[0]) { /* the refill earned under the old rule */
            fdn__i128 t = (fdn__i128)s[1] + (fdn__i128)(now - s[0]) * from->limit;
            s[1] = t > cap_o ? cap_o : (int64_t)t;
            s[0] = now;
        }
        fdn__i128 t = floor_div128((fdn__i128)s[1] * pn, po); /* the same tokens, in P_to units */
        s[1] = t > cap_n ? cap_n : t < -cap_n ? -cap_n : (int64_t)t;
        break;
    }
    case FDN_LIMIT_GCRA: {
        const int64_t to_ = fdn__limit_gcra_interval(from);
        const int64_t tn = fdn__limit_gcra_interval(to);
        const int64_t bt_n = fdn__limit_burst(to) * tn;
        int64_t tat = s[0] > now ? s[0] : now;
        /* available tokens at now, in ns of the old interval (negative: a debt) */
        fdn__i128 avail = (fdn__i128)fdn__limit_burst(from) * to_ - ((fdn__i128)tat - now);
        fdn__i128 an = floor_div128(avail * tn, to_);
        if (an > bt_n)
            an = bt_n;
        fdn__i128 nt = (fdn__i128)now + bt_n - an;
        fdn__i128 tat_max = (fdn__i128)now + FDN__LIMIT_SCALED_MAX;
        if (tat_max > INT64_MAX)
            tat_max = INT64_MAX;
        s[0] = nt > tat_max ? (int64_t)tat_max : (int64_t)nt; /* nt >= now: an <= bt_n */
        break;
    }
    }
}

const char *fdn_limit_algo_name(fdn_limit_algo_t a)
{
    switch (a) {
    case FDN_LIMIT_FIXED_WINDOW:
        return "fixed_window";
    case FDN_LIMIT_TOKEN_BUCKET:
        return "token_bucket";
    case FDN_LIMIT_GCRA:
        return "gcra";
    case FDN_LIMIT_SLIDING_WINDOW:
        return "sliding_window";
    }
    return "unknown";
}

int fdn_limit_rule_validate(const fdn_limit_rule_t *r, fdn_error_t *err)
{
    if (r == NULL)
        return fdn_err_set(err, FDN_EINVAL, "rate limit rule is NULL");
    /* the bounds are fdn__limit_rule_fault's (limit_algo.h), which the checks test inline:
     * here only the message of the one it names */
    switch (fdn__limit_rule_fault(r)) {
    case FDN__LIMIT_RULE_OK:
        return 0;
    case FDN__LIMIT_RULE_ALGO:
        return fdn_err_set(err, FDN_EINVAL, "unknown rate limit algorithm %d", (int)r->algo);
    case FDN__LIMIT_RULE_LIMIT:
        return fdn_err_set(err, FDN_EINVAL, "limit must be in 1..2^31 (got %lld)",
                           (long long)r->limit);
    case FDN__LIMIT_RULE_PERIOD:
        return fdn_err_set(err, FDN_EINVAL, "period must be in 1..2^33 ms (got %lld)",
                           (long long)r->period_ms);
    case FDN__LIMIT_RULE_BURST:
        return fdn_err_set(err, FDN_EINVAL, "burst must be in 0..2^31");
    case FDN__LIMIT_RULE_BUCKET_SIZE:
        return fdn_err_set(err, FDN_EINVAL, "burst * period too large (max 2^62 ns)");
    case FDN__LIMIT_RULE_GCRA_SIZE:
        return fdn_err_set(err, FDN_EINVAL, "burst * period / limit too large");
    }
    return fdn_err_set(err, FDN_EINVAL, "invalid rate limit rule");
}
