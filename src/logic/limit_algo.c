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
 */
#include "logic/limit_algo.h"

#include <string.h>

/* The one external definition of each inline function of the header (C11 6.7.4). */
extern inline int64_t fdn__limit_burst(const fdn_limit_rule_t *r);
extern inline int64_t fdn__limit_gcra_interval(const fdn_limit_rule_t *r);
extern inline int64_t fdn__limit_count_add(int64_t count, int64_t cost);
extern inline int64_t fdn__limit_ceil_div(fdn__i128 a, fdn__i128 b);
extern inline void fdn__limit_init(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t now);
extern inline int fdn__limit_apply(fdn__limit_state_t *st, const fdn_limit_rule_t *r, int64_t cost,
                                   fdn__limit_op_t op, int64_t now, int64_t *epoch,
                                   fdn_limit_result_t *res);

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
