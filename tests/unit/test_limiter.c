/* Rate limiter: exact admission of every algorithm on a manual clock, reference §11.7. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/breaker.h>
#include <fdn/limiter.h>
#include "infra/limiter_int.h"
#include "logic/limit_algo.h"
#include "limiter_ns.h"

#define MS    1000000LL
#define WALL0 (1700000040000LL * MS) /* a multiple of every window used below */

typedef struct fx {
    fdn_clock_t *clk;
    fdn_limiter_t *l;
} fx_t;

static int setup_opts(void **state, const fdn_limiter_opts_t *o)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fdn_clock_manual_create(&f->clk, 5000 * MS, WALL0), 0);
    fdn_limiter_opts_t oo = o ? *o : (fdn_limiter_opts_t)FDN_LIMITER_OPTS_INIT;
    oo.clock = f->clk;
    assert_int_equal(fdn_limiter_create(&f->l, &oo), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_opts(state, NULL);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fdn_limiter_destroy(f->l);
    fdn_clock_destroy(f->clk);
    free(f);
    return 0;
}

static int chk(fx_t *f, const char *key, const fdn_limit_rule_t *r, int64_t cost,
               fdn_limit_result_t *res)
{
    return fdn_limiter_check(f->l, key, strlen(key), r, cost, 0, res);
}

static void ref_fixed_window_basic(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u1:op", 60000, 5, &r), 0);
        assert_true(r.allowed);
        assert_int_equal(r.count, i);
        assert_int_equal(r.remaining, 5 - i);
        assert_int_equal(r.reset_ns, 60000 * MS);
    }
    assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u1:op", 60000, 5, &r),
                     FDN_ERATE_LIMITED);
    assert_false(r.allowed);
    assert_int_equal(r.count, 6);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_ns, 60000 * MS);
    /* denied hits are counted (Hammer) */
    fdn_limiter_check_rate(f->l, "foundation:u1:op", 60000, 5, &r);
    assert_int_equal(r.count, 7);
    /* other entity / operation unaffected */
    assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u2:op", 60000, 5, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u1:op2", 60000, 5, &r), 0);
    /* epoch-aligned: the window ends at the next multiple of 60 s of wall time */
    fdn_clock_advance(f->clk, 59999 * MS);
    assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u1:op", 60000, 5, &r),
                     FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 1 * MS);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(fdn_limiter_check_rate(f->l, "foundation:u1:op", 60000, 5, &r), 0);
    assert_int_equal(r.count, 1);
}

static void ref_fixed_window_edges(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    for (int i = 0; i < 101; i++)
        assert_int_equal(fdn_limiter_check_rate(f->l, "big", 60000, 1000000, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "w", 1000, 2, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "w", 1000, 2, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "w", 1000, 2, &r), FDN_ERATE_LIMITED);
    /* invalid values are an error, never a crash */
    assert_int_equal(fdn_limiter_check_rate(f->l, "z", 60000, 0, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, "z", 0, 5, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, "z", -5, 5, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, "z", 60000, -1, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, "z", INT64_MAX, INT64_MAX, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, "", 1000, 1, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_rate(f->l, NULL, 1000, 1, &r), FDN_EINVAL);
    /* window 500 ms: 3 allowed, 4th denied; 600 ms later allowed again */
    for (int i = 0; i < 3; i++)
        assert_int_equal(fdn_limiter_check_rate(f->l, "h", 500, 3, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "h", 500, 3, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 600 * MS);
    assert_int_equal(fdn_limiter_check_rate(f->l, "h", 500, 3, &r), 0);
    /* long and unusual keys */
    char big[1901];
    memset(big, 'x', 1900);
    big[1900] = '\0';
    assert_int_equal(fdn_limiter_check_rate(f->l, big, 1000, 1, &r), 0);
    assert_int_equal(
        fdn_limiter_check_rate(f->l, "user@example.com:a/b c:\xc3\xa9\xe2\x9c\x93", 1000, 1, &r),
        0);
    char keys[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof(keys[i]), "ent%d", i);
        assert_int_equal(fdn_limiter_check_rate(f->l, keys[i], 1000, 1, &r), 0);
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(fdn_limiter_check_rate(f->l, keys[i], 1000, 1, &r), FDN_ERATE_LIMITED);
}

static void ref_entity_operation(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn_limiter_check_entity(f->l, "user1", "op1", 5, 60000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, "user1", "op1", 5, 60000, &r),
                     FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_check_entity(f->l, "user2", "op1", 5, 60000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, "user1", "op2", 5, 60000, &r), 0);
    /* no key collisions: ("a:b", "c") vs ("a", "b:c") */
    assert_int_equal(fdn_limiter_check_entity(f->l, "a:b", "c", 1, 60000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, "a", "b:c", 1, 60000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, NULL, NULL, 1, 60000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, "", "", 1, 60000, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_check_entity(f->l, "x", "y", 0, 60000, &r), FDN_EINVAL);
    char big[1901];
    memset(big, 'e', 1900);
    big[1900] = '\0';
    assert_int_equal(fdn_limiter_check_entity(f->l, big, "op", 1, 1000, &r), 0);
    assert_int_equal(fdn_limiter_check_entity(f->l, big, "op", 1, 1000, &r), FDN_ERATE_LIMITED);
}

static void fixed_window_cost(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 10, 1000, 0};
    fdn_limit_result_t r;
    assert_int_equal(chk(f, "c", &rule, 4, &r), 0);
    assert_int_equal(chk(f, "c", &rule, 4, &r), 0);
    assert_int_equal(r.remaining, 2);
    assert_int_equal(chk(f, "c", &rule, 4, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.count, 12);
    assert_int_equal(chk(f, "c", &rule, 0, &r), FDN_EINVAL);
    assert_int_equal(chk(f, "d", &rule, 11, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, INT64_MAX);
}

static void token_bucket_exact(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 5}; /* 10/s, burst 5 */
    fdn_limit_result_t r;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(chk(f, "tb", &rule, 1, &r), 0);
        assert_int_equal(r.remaining, 4 - i);
    }
    assert_int_equal(chk(f, "tb", &rule, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 100 * MS);
    assert_int_equal(r.reset_ns, 500 * MS);
    assert_int_equal(r.limit, 5);
    fdn_clock_advance(f->clk, 99 * MS);
    assert_int_equal(chk(f, "tb", &rule, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 1 * MS);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(chk(f, "tb", &rule, 1, &r), 0);
    assert_int_equal(chk(f, "tb", &rule, 1, &r), FDN_ERATE_LIMITED);
    /* cost 3 after 250 ms: 2.5 tokens -> denied, retry 50 ms */
    fdn_clock_advance(f->clk, 250 * MS);
    assert_int_equal(chk(f, "tb", &rule, 3, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 50 * MS);
    fdn_clock_advance(f->clk, 50 * MS);
    assert_int_equal(chk(f, "tb", &rule, 3, &r), 0);
    /* bound: over 10 s of 1-ms checks at most burst + 10*10 pass */
    int ok = 0;
    for (int i = 0; i < 10000; i++) {
        fdn_clock_advance(f->clk, 1 * MS);
        if (chk(f, "tb2", &rule, 1, NULL) == 0)
            ok++;
    }
    assert_true(ok <= 5 + 100);
    assert_true(ok >= 100);
    assert_int_equal(chk(f, "tb3", &rule, 6, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, INT64_MAX);
}

static void gcra_exact(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_GCRA, 10, 1000, 1}; /* T = 100 ms, no burst */
    fdn_limit_result_t r;
    assert_int_equal(chk(f, "g", &rule, 1, &r), 0);
    assert_int_equal(chk(f, "g", &rule, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 100 * MS);
    fdn_clock_advance(f->clk, 100 * MS);
    assert_int_equal(chk(f, "g", &rule, 1, &r), 0);
    rule.burst = 3;
    assert_int_equal(chk(f, "g3", &rule, 1, &r), 0);
    assert_int_equal(r.remaining, 2);
    assert_int_equal(chk(f, "g3", &rule, 1, &r), 0);
    assert_int_equal(chk(f, "g3", &rule, 1, &r), 0);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(chk(f, "g3", &rule, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 100 * MS);
    assert_int_equal(r.reset_ns, 300 * MS);
    /* T rounds up: 3 per 1000 ms -> T = 333 333 334 ns, never more than 3 per second */
    fdn_limit_rule_t r3 = {FDN_LIMIT_GCRA, 3, 1000, 1};
    int ok = 0;
    for (int i = 0; i < 10000; i++) {
        if (chk(f, "g4", &r3, 1, NULL) == 0)
            ok++;
        fdn_clock_advance(f->clk, 1 * MS);
    }
    assert_int_equal(ok, 30);
}

static void sliding_window_exact(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_SLIDING_WINDOW, 10, 1000, 0};
    fdn_limit_result_t r;
    /* mono starts at 5000 ms: a window boundary */
    for (int i = 0; i < 10; i++)
        assert_int_equal(chk(f, "s", &rule, 1, &r), 0);
    assert_int_equal(chk(f, "s", &rule, 1, &r), FDN_ERATE_LIMITED);
    /* next window, elapsed 0: prev weight 100% -> still denied, retry 100 ms */
    fdn_clock_advance(f->clk, 1000 * MS);
    assert_int_equal(chk(f, "s", &rule, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 100 * MS);
    fdn_clock_advance(f->clk, 99 * MS);
    assert_int_equal(chk(f, "s", &rule, 1, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(chk(f, "s", &rule, 1, &r), 0); /* 10*0.9 + 1 = 10 */
    assert_int_equal(r.count, 10);
    assert_int_equal(chk(f, "s", &rule, 1, &r), FDN_ERATE_LIMITED);
    /* 2 windows later everything is forgotten */
    fdn_clock_advance(f->clk, 2000 * MS);
    assert_int_equal(chk(f, "s", &rule, 10, &r), 0);
    assert_int_equal(chk(f, "s", &rule, 1, &r), FDN_ERATE_LIMITED);
    /* at 100 ms into the window with cur full: retry reaches into the next window, where
     * prev = 10 and 10*(1-e)+1 <= 10 needs e >= 100 ms: 900 + 100 ms */
    assert_int_equal(r.retry_after_ns, 1000 * MS);
}

/* A fixed window counts denied hits (Hammer), and inc counts whatever fits: a key hammered
 * long enough with large costs reaches the end of int64. The count must stop there, not wrap
 * negative (signed overflow; unsanitised, the next check was then allowed). The state below is
 * the one 2^32 - 1 denied checks of cost 2^31 leave in one window (a couple of minutes of a
 * tight loop in process), made directly. */
static void window_counts_do_not_wrap(void **state)
{
    (void)state;
    const int64_t big = FDN__LIMIT_MAX; /* the largest cost */
    const int64_t now = 5000 * MS;
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 10, 3600000, 0};
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    fdn__limit_init(&st, &fw, now);
    st.s[1] = (((int64_t)1 << 32) - 1) * big;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn__limit_apply(&st, &fw, big, FDN__LIMIT_CHECK, now, NULL, &r), 0);
        assert_false(r.allowed);
        assert_true(r.count > 10);
        assert_int_equal(r.remaining, 0);
        assert_int_equal(fdn__limit_apply(&st, &fw, big, FDN__LIMIT_INC, now, NULL, &r), 0);
        assert_false(r.allowed);
        assert_true(r.count > 10);
    }
    assert_int_equal(r.count, FDN__LIMIT_COUNT_MAX);
    /* the next window starts afresh */
    assert_int_equal(fdn__limit_apply(&st, &fw, 1, FDN__LIMIT_CHECK, now + 3600000 * MS, NULL, &r),
                     0);
    assert_true(r.allowed);
    assert_int_equal(r.count, 1);

    /* the sliding window's inc counts past the limit too, and stops where the fixed one did */
    fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 10, 3600000, 0};
    fdn__limit_init(&st, &sw, now);
    st.s[1] = FDN__LIMIT_COUNT_MAX - 1;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fdn__limit_apply(&st, &sw, big, FDN__LIMIT_INC, now, NULL, &r), 0);
        assert_false(r.allowed);
        assert_int_equal(r.count, FDN__LIMIT_COUNT_MAX);
        assert_int_equal(fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, now, NULL, &r), 0);
        assert_false(r.allowed);
        assert_true(r.retry_after_ns > 0);
    }
    /* the next window weighs it as the previous one: still over the limit at its start */
    assert_int_equal(fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, now + 3600000 * MS, NULL, &r),
                     0);
    assert_false(r.allowed);
}

/* GCRA after a (manual) clock went back by more than 2^63 ns from a TAT at the end of time:
 * the wait until the TAT does not fit in int64. retry_after and reset were t_end - now (signed
 * overflow: UBSan fails this test on that code, and the values wrapped negative); they stop at
 * INT64_MAX, and the call is still denied. */
static void gcra_after_a_jump_back_past_half_the_clock(void **state)
{
    (void)state;
    const fdn_limit_rule_t r = {FDN_LIMIT_GCRA, 1, 1000, 0}; /* 1 per s, burst 1 */
    fdn__limit_state_t st;
    fdn_limit_result_t res;
    fdn__limit_init(&st, &r, INT64_MAX - 1000);
    assert_int_equal(fdn__limit_apply(&st, &r, 5, FDN__LIMIT_INC, INT64_MAX - 1000, NULL, &res), 0);
    assert_int_equal(st.s[0], INT64_MAX);
    const int64_t back = INT64_MIN + 1000;
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_CHECK, back, NULL, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.retry_after_ns, INT64_MAX);
    assert_int_equal(res.reset_ns, INT64_MAX);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(st.s[0], INT64_MAX); /* a denied check takes nothing */
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_PEEK, back, NULL, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.reset_ns, INT64_MAX);
}

/* GCRA on a (manual) clock near INT64_MAX: a TAT past INT64_MAX was cast back to int64 (it
 * wrapped negative: the debt an INC left was forgotten and the next check allowed) and
 * now + tau overflowed. The TAT stops at INT64_MAX instead, so the debt holds. */
static void gcra_near_the_end_of_time(void **state)
{
    (void)state;
    const fdn_limit_rule_t r = {FDN_LIMIT_GCRA, 1, 1000, 0}; /* 1 per s, burst 1 */
    const int64_t now = INT64_MAX - 1000;
    fdn__limit_state_t st;
    fdn_limit_result_t res;
    fdn__limit_init(&st, &r, now);
    /* five emissions ahead of now: past INT64_MAX */
    assert_int_equal(fdn__limit_apply(&st, &r, 5, FDN__LIMIT_INC, now, NULL, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(st.s[0], INT64_MAX);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.reset_ns, 1000);
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_CHECK, now, NULL, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.remaining, 0);
    /* SET past the end too; a check then is denied */
    fdn__limit_init(&st, &r, now);
    assert_int_equal(fdn__limit_apply(&st, &r, 3, FDN__LIMIT_SET, now, NULL, &res), 0);
    assert_int_equal(st.s[0], INT64_MAX);
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_PEEK, now, NULL, &res), 0);
    assert_false(res.allowed);
    /* a fresh key 1 ns before the end: one call allowed, the next denied (at INT64_MAX itself
     * there is no later time to wait for) */
    fdn__limit_init(&st, &r, INT64_MAX - 1);
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_CHECK, INT64_MAX - 1, NULL, &res), 0);
    assert_true(res.allowed);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(fdn__limit_apply(&st, &r, 1, FDN__LIMIT_CHECK, INT64_MAX - 1, NULL, &res), 0);
    assert_false(res.allowed);
}

/* A caller's rule is checked on every check by fdn__limit_rule_fault, inline; rules are
 * refused with a message by fdn_limit_rule_validate, which names the fault it finds. On every
 * rule at and around each bound (algorithms, limit, period, burst, burst * P and burst * T),
 * the verdicts agree and the message is the fault's. */
static void rule_fault_agrees_with_validate(void **state)
{
    (void)state;
    const int algos[] = {-1,
                         FDN_LIMIT_FIXED_WINDOW,
                         FDN_LIMIT_TOKEN_BUCKET,
                         FDN_LIMIT_GCRA,
                         FDN_LIMIT_SLIDING_WINDOW,
                         FDN_LIMIT_SLIDING_WINDOW + 1};
    const int64_t limits[] = {
        INT64_MIN,          -1,       0, 1, 2, 1000, FDN__LIMIT_MAX - 1, FDN__LIMIT_MAX,
        FDN__LIMIT_MAX + 1, INT64_MAX};
    const int64_t periods[] = {INT64_MIN,
                               0,
                               1,
                               1000,
                               2147483,
                               2147484,
                               4611686,
                               4611687,
                               FDN__LIMIT_PERIOD_MAX_MS,
                               FDN__LIMIT_PERIOD_MAX_MS + 1};
    const int64_t bursts[] = {-1, 0, 1, 3, 1000, 1 << 20, FDN__LIMIT_MAX, FDN__LIMIT_MAX + 1};
    /* a word of each fault's message */
    static const char *const fault_words[] = {
        [FDN__LIMIT_RULE_ALGO] = "algorithm",
        [FDN__LIMIT_RULE_LIMIT] = "limit must",
        [FDN__LIMIT_RULE_PERIOD] = "period must",
        [FDN__LIMIT_RULE_BURST] = "burst must",
        [FDN__LIMIT_RULE_BUCKET_SIZE] = "burst * period",
        [FDN__LIMIT_RULE_GCRA_SIZE] = "/ limit",
    };
    size_t accepted = 0, refused = 0, faults[FDN__LIMIT_RULE_GCRA_SIZE + 1] = {0};
    for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++)
        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
            for (size_t p = 0; p < sizeof(periods) / sizeof(periods[0]); p++)
                for (size_t b = 0; b < sizeof(bursts) / sizeof(bursts[0]); b++) {
                    fdn_limit_rule_t r = {(fdn_limit_algo_t)algos[a], limits[l], periods[p],
                                          bursts[b]};
                    fdn_error_t err = FDN_ERROR_INIT;
                    int rc = fdn_limit_rule_validate(&r, &err);
                    fdn__limit_rule_fault_t f = fdn__limit_rule_fault(&r);
                    assert_int_equal(rc == 0, f == FDN__LIMIT_RULE_OK);
                    if (rc != 0) {
                        assert_int_equal(rc, FDN_EINVAL);
                        assert_non_null(strstr(err.message, fault_words[f]));
                    }
                    rc == 0 ? accepted++ : refused++;
                    faults[f]++;
                }
    /* both verdicts were met, and every fault, including refusals by the products alone */
    assert_true(accepted > 0 && refused > 0);
    for (size_t f = 0; f <= FDN__LIMIT_RULE_GCRA_SIZE; f++)
        assert_true(faults[f] > 0);
    fdn_limit_rule_t big = {FDN_LIMIT_TOKEN_BUCKET, FDN__LIMIT_MAX, FDN__LIMIT_PERIOD_MAX_MS, 0};
    assert_int_equal(fdn__limit_rule_fault(&big), FDN__LIMIT_RULE_BUCKET_SIZE);
    assert_int_equal(fdn_limit_rule_validate(&big, NULL), FDN_EINVAL);
}

/* The token bucket's reset and the sliding window's count take 64-bit arithmetic where it
 * cannot overflow and 128-bit arithmetic otherwise: both must give what the exact 128-bit
 * formulas give, on ordinary states and at the ends of the ranges a valid rule allows (a
 * window counted near FDN__LIMIT_COUNT_MAX, a bucket a whole bucket in debt, the longest
 * period). */
static void algo_arithmetic_matches_exact(void **state)
{
    (void)state;
    const int64_t periods_ms[] = {1, 1000, 3600000, FDN__LIMIT_PERIOD_MAX_MS};
    const int64_t limits[] = {1, 7, 1000, FDN__LIMIT_MAX};
    const int64_t now = 123456789 * MS + 4321;
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    for (size_t pi = 0; pi < sizeof(periods_ms) / sizeof(periods_ms[0]); pi++) {
        for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
            const int64_t p = periods_ms[pi] * MS, L = limits[li];
            /* sliding window: the previous window's count, weighted and rounded up (the
             * count admission uses, see sliding_remaining_is_what_admission_allows) */
            fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, L, periods_ms[pi], 0};
            const int64_t prevs[] = {0, 1, L, (int64_t)1 << 40, FDN__LIMIT_COUNT_MAX};
            for (size_t k = 0; k < sizeof(prevs) / sizeof(prevs[0]); k++) {
                fdn__limit_init(&st, &sw, now);
                st.s[2] = prevs[k];
                st.s[1] = 0;
                assert_int_equal(fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_PEEK, now, NULL, &r), 0);
                int64_t e = now % p;
                fdn__i128 w = (fdn__i128)prevs[k] * (p - e);
                int64_t want = (int64_t)((w + p - 1) / p);
                assert_int_equal(r.count, want);
            }
            /* token bucket: full, partly used, empty, a whole bucket in debt */
            if ((fdn__i128)L * p > FDN__LIMIT_SCALED_MAX)
                continue;
            fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, L, periods_ms[pi], 0};
            const int64_t cap = L * p;
            const int64_t tokens[] = {cap, cap - 1, cap / 3, 0, -cap};
            for (size_t k = 0; k < sizeof(tokens) / sizeof(tokens[0]); k++) {
                fdn__limit_init(&st, &tb, now);
                st.s[1] = tokens[k];
                assert_int_equal(fdn__limit_apply(&st, &tb, 1, FDN__LIMIT_PEEK, now, NULL, &r), 0);
                fdn__i128 gap = (fdn__i128)cap - tokens[k];
                int64_t want = gap <= 0 ? 0 : (int64_t)((gap + L - 1) / L);
                assert_int_equal(r.reset_ns, want);
                assert_int_equal(st.expires, now + want);
            }
        }
    }
    /* a cost whose scaled size passes 2^62 needs (and never gets) the whole bucket */
    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 1, FDN__LIMIT_PERIOD_MAX_MS, 0};
    fdn__limit_init(&st, &tb, now);
    assert_int_equal(fdn__limit_apply(&st, &tb, FDN__LIMIT_MAX, FDN__LIMIT_CHECK, now, NULL, &r),
                     0);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_ns, INT64_MAX);
}

static void peek_does_not_consume(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rules[4] = {{FDN_LIMIT_FIXED_WINDOW, 2, 1000, 0},
                                 {FDN_LIMIT_TOKEN_BUCKET, 2, 1000, 0},
                                 {FDN_LIMIT_GCRA, 2, 1000, 0},
                                 {FDN_LIMIT_SLIDING_WINDOW, 2, 1000, 0}};
    fdn_limit_result_t r;
    for (int a = 0; a < 4; a++) {
        char key[16];
        snprintf(key, sizeof(key), "p%d", a);
        for (int i = 0; i < 5; i++) {
            assert_int_equal(
                fdn_limiter_check(f->l, key, strlen(key), &rules[a], 1, FDN_LIMIT_PEEK, &r), 0);
            assert_int_equal(r.remaining, 2);
        }
        fdn_limiter_stats_t st;
        fdn_limiter_stats(f->l, &st);
        assert_int_equal(st.keys, (uint64_t)a); /* peeking an unknown key stores nothing */
        assert_int_equal(chk(f, key, &rules[a], 1, &r), 0);
        assert_int_equal(chk(f, key, &rules[a], 1, &r), 0);
        assert_int_equal(
            fdn_limiter_check(f->l, key, strlen(key), &rules[a], 1, FDN_LIMIT_PEEK, &r),
            FDN_ERATE_LIMITED);
        assert_int_equal(r.remaining, 0);
    }
    assert_int_equal(fdn_limiter_check(f->l, "x", 1, &rules[0], 1, 0x80, &r), FDN_EINVAL);
}

/* A peek (fdn_limiter_check with FDN_LIMIT_PEEK, fdn_limiter_get) changes no state, also
 * when the key holds the state of another algorithm: it answers as for a fresh key and leaves
 * that state alone. (It replaced the key's state with a fresh one of the peek's algorithm, so
 * a read gave an exhausted key its allowance back.) */
static void peek_with_another_algorithm_changes_nothing(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 2, 1000, 0};
    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 5, 1000, 0};
    fdn_limit_result_t r;
    assert_int_equal(chk(f, "k", &fw, 1, &r), 0);
    assert_int_equal(chk(f, "k", &fw, 1, &r), 0);
    assert_int_equal(fdn_limiter_check(f->l, "k", 1, &tb, 1, FDN_LIMIT_PEEK, &r), 0);
    assert_int_equal(r.remaining, 5); /* as a fresh key of that rule */
    assert_int_equal(fdn_limiter_get(f->l, "k", 1, &tb, &r), 0);
    assert_int_equal(r.remaining, 5);
    /* the fixed window still holds its two */
    assert_int_equal(fdn_limiter_get(f->l, "k", 1, &fw, &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(chk(f, "k", &fw, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.count, 3);
}

static void reserve_and_cancel(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 2, 1000, 0};
    fdn_limit_reservation_t rsv;
    fdn_limit_result_t r;
    assert_int_equal(fdn_limiter_reserve(f->l, "r", 1, &tb, 2, &rsv, &r), 0);
    assert_true(rsv.active);
    assert_int_equal(chk(f, "r", &tb, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_cancel(f->l, "r", 1, &tb, &rsv), 0);
    assert_false(rsv.active);
    assert_int_equal(fdn_limiter_cancel(f->l, "r", 1, &tb, &rsv), FDN_ENOENT); /* idempotent */
    assert_int_equal(chk(f, "r", &tb, 2, &r), 0);

    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 3, 1000, 0};
    assert_int_equal(fdn_limiter_reserve(f->l, "fw", 2, &fw, 3, &rsv, &r), 0);
    assert_int_equal(chk(f, "fw", &fw, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_cancel(f->l, "fw", 2, &fw, &rsv), 0);
    assert_int_equal(chk(f, "fw", &fw, 1, &r), 0); /* count 1 (3+1-3) + 1 = 2 */
    assert_int_equal(r.count, 2);
    assert_int_equal(fdn_limiter_reserve(f->l, "fw", 2, &fw, 1, &rsv, &r), 0);
    fdn_clock_advance(f->clk, 1000 * MS); /* window over: nothing to give back */
    assert_int_equal(fdn_limiter_cancel(f->l, "fw", 2, &fw, &rsv), FDN_ENOENT);

    fdn_limit_rule_t g = {FDN_LIMIT_GCRA, 1, 1000, 1};
    assert_int_equal(fdn_limiter_reserve(f->l, "g", 1, &g, 1, &rsv, &r), 0);
    assert_int_equal(chk(f, "g", &g, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_cancel(f->l, "g", 1, &g, &rsv), 0);
    assert_int_equal(chk(f, "g", &g, 1, &r), 0);

    fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 1, 1000, 0};
    assert_int_equal(fdn_limiter_reserve(f->l, "sw", 2, &sw, 1, &rsv, &r), 0);
    assert_int_equal(chk(f, "sw", &sw, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_cancel(f->l, "sw", 2, &sw, &rsv), 0);
    assert_int_equal(chk(f, "sw", &sw, 1, &r), 0);
    /* a denied bucket reservation takes nothing */
    assert_int_equal(fdn_limiter_reserve(f->l, "sw", 2, &sw, 1, &rsv, &r), FDN_ERATE_LIMITED);
    assert_false(rsv.active);
}

/* Review finding: in shadow mode a fixed window's denied reservation took its cost (a fixed
 * window counts denied calls, shadow mode only changes the answer), yet came back inactive, so
 * fdn_limiter_cancel could not give it back. The header's contract: `active` is false only
 * after a cancel or when nothing was taken. A bucket's shadow denial, and a new key refused
 * for its identity's quota (allowed in shadow mode), take nothing. */
static void shadow_reserve_follows_what_was_taken(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 1, 60000, 0};
    fdn_limit_reservation_t rsv;
    fdn_limit_result_t r;
    fdn_limiter_set_shadow(f->l, true);
    assert_int_equal(chk(f, "sfw", &fw, 1, &r), 0);
    assert_int_equal(fdn_limiter_reserve(f->l, "sfw", 3, &fw, 1, &rsv, &r), 0);
    assert_true(r.shadow_denied);
    assert_int_equal(r.count, 2); /* taken */
    assert_true(rsv.active);
    assert_int_equal(fdn_limiter_cancel(f->l, "sfw", 3, &fw, &rsv), 0);
    assert_int_equal(fdn_limiter_get(f->l, "sfw", 3, &fw, &r), 0);
    assert_int_equal(r.count, 1); /* given back */

    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 1, 60000, 0};
    assert_int_equal(chk(f, "stb", &tb, 1, &r), 0);
    assert_int_equal(fdn_limiter_reserve(f->l, "stb", 3, &tb, 1, &rsv, &r), 0);
    assert_true(r.shadow_denied);
    assert_false(rsv.active);

    assert_int_equal(fdn_limiter_set_max_keys_per_identity(f->l, 1), 0);
    assert_int_equal(chk(f,
                         "who\x1f"
                         "a",
                         &fw, 1, &r),
                     0);
    assert_int_equal(fdn_limiter_reserve(f->l,
                                         "who\x1f"
                                         "b",
                                         5, &fw, 1, &rsv, &r),
                     0);
    assert_true(r.shadow_denied);
    assert_false(rsv.active); /* the key was never stored */
    fdn_limiter_set_shadow(f->l, false);
}

static void shadow_mode(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 0};
    fdn_limit_result_t r;
    fdn_limiter_set_shadow(f->l, true);
    assert_int_equal(chk(f, "sh", &rule, 1, &r), 0);
    assert_false(r.shadow_denied);
    assert_int_equal(chk(f, "sh", &rule, 1, &r), 0);
    assert_true(r.allowed);
    assert_true(r.shadow_denied);
    assert_int_equal(r.retry_after_ns, 1000 * MS);
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.allowed, 1);
    assert_int_equal(st.denied, 1);
    fdn_limiter_set_shadow(f->l, false);
    assert_int_equal(chk(f, "sh", &rule, 1, &r), FDN_ERATE_LIMITED);
}

static fdn_limit_request_t req(const char *key, const fdn_limit_rule_t *r, int64_t cost,
                               unsigned flags)
{
    return (fdn_limit_request_t){
        .key = key, .keylen = strlen(key), .rule = r, .cost = cost, .flags = flags};
}

/* check_many: each request as fdn_limiter_check would decide it, in order; the worst outcome
 * is returned. */
static void check_many_decides_each_in_order(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t two = {FDN_LIMIT_TOKEN_BUCKET, 2, 1000, 0};
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 5, 1000, 0};
    fdn_limit_request_t q[5] = {req("user", &two, 1, 0), req("addr", &fw, 3, 0),
                                req("user", &two, 1, 0), req("user", &two, 1, 0),
                                req("addr", &fw, 1, FDN_LIMIT_PEEK)};
    assert_int_equal(fdn_limiter_check_many(f->l, q, 5), FDN_ERATE_LIMITED);
    assert_int_equal(q[0].rc, 0);
    assert_int_equal(q[0].res.remaining, 1);
    assert_int_equal(q[1].rc, 0);
    assert_int_equal(q[1].res.count, 3);
    assert_int_equal(q[2].rc, 0);
    assert_int_equal(q[2].res.remaining, 0);
    assert_int_equal(q[3].rc, FDN_ERATE_LIMITED); /* the third "user" in a row */
    assert_false(q[3].res.allowed);
    assert_int_equal(q[3].res.retry_after_ns, 500 * MS);
    assert_int_equal(q[4].rc, 0); /* a peek: 3 of 5 taken */
    assert_int_equal(q[4].res.remaining, 2);
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.allowed, 3);
    assert_int_equal(st.denied, 1);
    /* all allowed: 0 */
    fdn_clock_advance(f->clk, 1000 * MS);
    fdn_limit_request_t ok[2] = {req("user", &two, 1, 0), req("addr", &fw, 1, 0)};
    assert_int_equal(fdn_limiter_check_many(f->l, ok, 2), 0);
    assert_int_equal(ok[0].rc, 0);
    assert_int_equal(ok[1].rc, 0);
    assert_int_equal(ok[1].res.count, 1); /* a new window */
    /* more than 8 requests (scratch from the heap) */
    fdn_limit_request_t many[FDN_LIMIT_MANY_MAX];
    for (int i = 0; i < FDN_LIMIT_MANY_MAX; i++)
        many[i] = req("many", &fw, 1, 0);
    assert_int_equal(fdn_limiter_check_many(f->l, many, FDN_LIMIT_MANY_MAX), FDN_ERATE_LIMITED);
    for (int i = 0; i < FDN_LIMIT_MANY_MAX; i++)
        assert_int_equal(many[i].rc, i < 5 ? 0 : FDN_ERATE_LIMITED);
}

/* Bad input: a clear code, and nothing checked or counted. */
static void check_many_refuses_bad_input_whole(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t one = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 0};
    fdn_limit_rule_t bad_rule = {FDN_LIMIT_TOKEN_BUCKET, 0, 1000, 0};
    fdn_limit_request_t q[3] = {req("a", &one, 1, 0), req("b", &one, 0, 0), req("c", &one, 1, 0)};
    assert_int_equal(fdn_limiter_check_many(f->l, q, 3), FDN_EINVAL);
    assert_int_equal(q[0].rc, 0);
    assert_int_equal(q[1].rc, FDN_EINVAL); /* cost 0 */
    assert_int_equal(q[2].rc, 0);
    fdn_limit_request_t r2[2] = {req("a", &bad_rule, 1, 0), req("a", &one, 1, 0x80)};
    assert_int_equal(fdn_limiter_check_many(f->l, r2, 2), FDN_EINVAL);
    assert_int_equal(r2[0].rc, FDN_EINVAL);
    assert_int_equal(r2[1].rc, FDN_EINVAL); /* unknown flag */
    fdn_limit_request_t r3[1] = {{.key = "a", .keylen = 1, .rule = NULL, .cost = 1}};
    assert_int_equal(fdn_limiter_check_many(f->l, r3, 1), FDN_EINVAL);
    fdn_limit_request_t r4[1] = {{.key = NULL, .keylen = 1, .rule = &one, .cost = 1}};
    assert_int_equal(fdn_limiter_check_many(f->l, r4, 1), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_many(f->l, q, 0), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_many(f->l, NULL, 1), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_many(NULL, q, 1), FDN_EINVAL);
    assert_int_equal(fdn_limiter_check_many(f->l, q, FDN_LIMIT_MANY_MAX + 1), FDN_EINVAL);
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.allowed + st.denied, 0);
}

/* Shadow mode and the enable switch apply to each request as to a single check. */
static void check_many_follows_shadow_and_enabled(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t one = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 0};
    fdn_limit_request_t q[2] = {req("s", &one, 1, 0), req("s", &one, 1, 0)};
    fdn_limiter_set_shadow(f->l, true);
    assert_int_equal(fdn_limiter_check_many(f->l, q, 2), 0);
    assert_false(q[0].res.shadow_denied);
    assert_true(q[1].res.allowed);
    assert_true(q[1].res.shadow_denied);
    fdn_limiter_set_shadow(f->l, false);
    fdn_limiter_set_enabled(f->l, false);
    fdn_limit_request_t d[2] = {req("s", &one, 1, 0), req("s", &one, 1, 0)};
    assert_int_equal(fdn_limiter_check_many(f->l, d, 2), 0);
    assert_true(d[1].res.allowed);
    assert_int_equal(d[1].res.remaining, 1);
    fdn_limiter_set_enabled(f->l, true);
    fdn_limit_request_t e[1] = {req("s", &one, 1, 0)};
    assert_int_equal(fdn_limiter_check_many(f->l, e, 1), FDN_ERATE_LIMITED);
}

/* Hammer's inc / set / get on every algorithm: inc counts past the limit without deciding,
 * set makes the count, get reads it without storing anything. */
static void inc_set_get(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    /* fixed window, limit 3 */
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 3, 1000, 0};
    assert_int_equal(fdn_limiter_get(f->l, "fw", 2, &fw, &r), 0);
    assert_int_equal(r.count, 0);
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.keys, 0); /* get stores nothing */
    assert_int_equal(fdn_limiter_inc(f->l, "fw", 2, &fw, 2, &r), 0);
    assert_int_equal(r.count, 2);
    assert_true(r.allowed);
    assert_int_equal(fdn_limiter_inc(f->l, "fw", 2, &fw, 5, &r), 0); /* past the limit */
    assert_int_equal(r.count, 7);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(chk(f, "fw", &fw, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_set(f->l, "fw", 2, &fw, 0, &r), 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(chk(f, "fw", &fw, 1, &r), 0);
    assert_int_equal(fdn_limiter_get(f->l, "fw", 2, &fw, &r), 0);
    assert_int_equal(r.count, 1);
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.allowed, 1); /* inc and set are not decisions */
    assert_int_equal(st.denied, 1);

    /* token bucket, burst 4, 4 per second: inc takes tokens into a debt */
    fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 4, 1000, 0};
    assert_int_equal(fdn_limiter_inc(f->l, "tb", 2, &tb, 6, &r), 0);
    assert_false(r.allowed); /* a check of 6 would have been denied */
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.count, 4);
    fdn_clock_advance(f->clk, 250 * MS); /* one token refilled: still 1 in debt */
    assert_int_equal(chk(f, "tb", &tb, 1, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 250 * MS); /* two refilled: 0 left */
    assert_int_equal(chk(f, "tb", &tb, 1, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 250 * MS);
    assert_int_equal(chk(f, "tb", &tb, 1, &r), 0);
    assert_int_equal(fdn_limiter_set(f->l, "tb", 2, &tb, 1, &r), 0); /* 3 tokens left */
    assert_int_equal(r.remaining, 3);
    assert_true(r.allowed);
    assert_int_equal(fdn_limiter_set(f->l, "tb", 2, &tb, 100, &r), 0); /* debt: one bucket */
    assert_false(r.allowed);
    fdn_clock_advance(f->clk, 1249 * MS); /* -4 tokens: 1 s to 0, 1.25 s to one token */
    assert_int_equal(chk(f, "tb", &tb, 1, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 1 * MS);
    assert_int_equal(chk(f, "tb", &tb, 1, &r), 0);

    /* GCRA, 2 per second, burst 2: set 2 = the burst used up */
    fdn_limit_rule_t g = {FDN_LIMIT_GCRA, 2, 1000, 2};
    assert_int_equal(fdn_limiter_set(f->l, "g", 1, &g, 2, &r), 0);
    assert_int_equal(r.remaining, 0);
    assert_true(r.allowed);
    assert_int_equal(chk(f, "g", &g, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.retry_after_ns, 500 * MS);
    assert_int_equal(fdn_limiter_inc(f->l, "g", 1, &g, 1, &r), 0); /* one more interval */
    assert_false(r.allowed);
    fdn_clock_advance(f->clk, 500 * MS);
    assert_int_equal(chk(f, "g", &g, 1, &r), FDN_ERATE_LIMITED);
    fdn_clock_advance(f->clk, 500 * MS);
    assert_int_equal(chk(f, "g", &g, 1, &r), 0);

    /* sliding window, limit 4: set keeps the previous window */
    fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 4, 1000, 0};
    assert_int_equal(fdn_limiter_inc(f->l, "sw", 2, &sw, 3, &r), 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(fdn_limiter_set(f->l, "sw", 2, &sw, 5, &r), 0);
    assert_false(r.allowed);
    assert_int_equal(r.count, 5);
    assert_int_equal(fdn_limiter_get(f->l, "sw", 2, &sw, &r), 0);
    assert_int_equal(r.count, 5);
    assert_false(r.allowed);

    /* bad input */
    assert_int_equal(fdn_limiter_inc(f->l, "x", 1, &fw, 0, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set(f->l, "x", 1, &fw, -1, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set(f->l, "x", 1, &fw, ((int64_t)1 << 31) + 1, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_inc(f->l, "x", 1, NULL, 1, &r), FDN_EINVAL);
    assert_int_equal(fdn_limiter_get(f->l, "x", 1, &fw, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limiter_inc(f->l, "", 0, &fw, 1, &r), FDN_EINVAL);
    /* disabled: nothing counted */
    fdn_limiter_set_enabled(f->l, false);
    assert_int_equal(fdn_limiter_inc(f->l, "off", 3, &fw, 1, &r), 0);
    fdn_limiter_set_enabled(f->l, true);
    assert_int_equal(fdn_limiter_get(f->l, "off", 3, &fw, &r), 0);
    assert_int_equal(r.count, 0);
}

static void named_rules(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t r;
    assert_int_equal(fdn_limiter_get_rule(f->l, "api_calls", &r), 0);
    assert_int_equal(r.limit, 100);
    assert_int_equal(r.period_ms, 60000);
    assert_int_equal(fdn_limiter_get_rule(f->l, "db_queries", &r), 0);
    assert_int_equal(r.limit, 500);
    assert_int_equal(fdn_limiter_get_rule(f->l, "file_operations", &r), 0);
    assert_int_equal(r.limit, 10);
    assert_int_equal(r.period_ms, 1000);
    fdn_limit_result_t res;
    for (int i = 0; i < 10; i++)
        assert_int_equal(fdn_limiter_check_named(f->l, "file_operations", "u1", 1, &res), 0);
    assert_int_equal(fdn_limiter_check_named(f->l, "file_operations", "u1", 1, &res),
                     FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_check_named(f->l, "file_operations", "u2", 1, &res), 0);
    assert_int_equal(fdn_limiter_check_named(f->l, "nope", "u1", 1, &res), FDN_ENOENT);
    fdn_limit_rule_t nr = {FDN_LIMIT_GCRA, 1, 1000, 0};
    assert_int_equal(fdn_limiter_set_rule(f->l, "file_operations", &nr), 0);
    assert_int_equal(fdn_limiter_check_named(f->l, "file_operations", "u9", 1, &res), 0);
    assert_int_equal(fdn_limiter_check_named(f->l, "file_operations", "u9", 1, &res),
                     FDN_ERATE_LIMITED);
    nr.limit = 0;
    assert_int_equal(fdn_limiter_set_rule(f->l, "bad", &nr), FDN_EINVAL);
    assert_int_equal(fdn_limiter_remove_rule(f->l, "db_queries"), 0);
    assert_int_equal(fdn_limiter_get_rule(f->l, "db_queries", &r), FDN_ENOENT);
    fdn_error_t e = FDN_ERROR_INIT;
    assert_int_equal(fdn_limit_rule_validate(&nr, &e), FDN_EINVAL);
    assert_non_null(strstr(e.message, "limit"));
    assert_string_equal(fdn_limit_algo_name(FDN_LIMIT_GCRA), "gcra");
}

static void reset_clears_and_service_stop(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    assert_int_equal(fdn_limiter_check_rate(f->l, "k", 60000, 1, &r), 0);
    assert_int_equal(fdn_limiter_check_rate(f->l, "k", 60000, 1, &r), FDN_ERATE_LIMITED);
    fdn__limiter_service_stop(f->l);
    assert_int_equal(fdn__limiter_service_health(f->l), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_limiter_check_rate(f->l, "k", 60000, 1, &r), FDN_EUNAVAILABLE);
    assert_int_equal(fdn__limiter_service_start(f->l), 0);
    assert_int_equal(fdn__limiter_service_health(f->l), 0);
    /* state survived the restart */
    assert_int_equal(fdn_limiter_check_rate(f->l, "k", 60000, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_reset(f->l, "k", 1), 0);
    assert_int_equal(fdn_limiter_reset(f->l, "k", 1), FDN_ENOENT);
    assert_int_equal(fdn_limiter_check_rate(f->l, "k", 60000, 1, &r), 0);
}

/* The small stores have one shard of 64 keys: which shard a key lands in depends on the
 * process's random hash secret (core/hash.h), so with several small shards a test's keys
 * could crowd one shard in one run and not in the next. One shard makes "the store is full"
 * the same in every run. */
static int setup_small(void **state)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 1;
    o.max_keys = 64;
    o.cleanup_interval_ms = 1000;
    return setup_opts(state, &o);
}

static int setup_small_lru(void **state)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 1;
    o.max_keys = 64;
    o.cleanup_interval_ms = 1000;
    o.overflow_policy = FDN_LIMIT_OVERFLOW_EVICT_LRU;
    return setup_opts(state, &o);
}

/* Default policy: a flood of distinct keys is refused once the shard is full; the victim key
 * keeps its count (before, LRU eviction restarted it and let the victim exceed its limit),
 * and memory stays bounded. */
static void flood_cannot_reset_victim(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 5, 60000, 0};
    fdn_limit_result_t r;
    for (int i = 0; i < 5; i++)
        assert_int_equal(chk(f, "victim", &rule, 1, &r), 0);
    assert_int_equal(chk(f, "victim", &rule, 1, &r), FDN_ERATE_LIMITED);
    char key[32];
    long refused = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        int rc = chk(f, key, &rule, 1, &r);
        if (rc == FDN_ELIMITER) {
            refused++;
            assert_false(r.allowed);
            assert_true(r.retry_after_ns > 0 && r.retry_after_ns <= 60000 * MS);
        } else {
            assert_int_equal(rc, 0);
        }
        /* the victim stays limited throughout the flood */
        if (i % 97 == 0)
            assert_int_equal(chk(f, "victim", &rule, 1, &r), FDN_ERATE_LIMITED);
    }
    assert_int_equal(chk(f, "victim", &rule, 1, &r), FDN_ERATE_LIMITED);
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_true(st.keys <= 64);
    assert_int_equal(st.evictions, 0);
    assert_int_equal((long)st.overflow_denied, refused);
    assert_int_equal((long)st.keys - 1 + refused, 5000); /* victim + admitted flood keys */
    /* shadow mode: a refused new key is reported, not enforced */
    fdn_limiter_set_shadow(f->l, true);
    assert_int_equal(chk(f, "flood-4999", &rule, 1, &r), 0);
    assert_true(r.shadow_denied);
    fdn_limiter_set_shadow(f->l, false);
    /* once the window is over, expired cells are removed first and new keys fit again */
    fdn_clock_advance(f->clk, 60000 * MS);
    fdn_limiter_stats_t st0;
    fdn_limiter_stats(f->l, &st0);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "late-%d", i);
        assert_int_equal(chk(f, key, &rule, 1, &r), 0);
    }
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.overflow_denied, st0.overflow_denied);
    assert_true(st.expired > st0.expired);
    assert_true(st.keys <= 64);
}

/* A full shard with expired cells removes those, never a live LRU one. */
static void full_shard_prefers_expired(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t shortr = {FDN_LIMIT_FIXED_WINDOW, 5, 100, 0};
    fdn_limit_rule_t longr = {FDN_LIMIT_FIXED_WINDOW, 5, 60000, 0};
    fdn_limit_result_t r;
    /* "keep" is the oldest cell (LRU tail) of its shard; short-window cells fill the rest */
    assert_int_equal(chk(f, "keep", &longr, 1, &r), 0);
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "short-%d", i);
        chk(f, key, &shortr, 1, &r);
    }
    fdn_limiter_stats_t st0, st;
    fdn_limiter_stats(f->l, &st0);
    assert_int_equal(st0.keys, 64);
    fdn_clock_advance(f->clk, 100 * MS); /* short cells expire, "keep" does not */
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "new-%d", i);
        assert_int_equal(chk(f, key, &longr, 1, &r), 0);
    }
    assert_int_equal(fdn_limiter_check(f->l, "keep", 4, &longr, 1, FDN_LIMIT_PEEK, &r), 0);
    assert_int_equal(r.count, 1); /* still there: its count did not restart */
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.evictions, 0);
    assert_true(st.expired >= st0.expired + 20);
}

static void eviction_bounds_memory(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 5, 60000, 0};
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        assert_int_equal(chk(f, key, &rule, 1, NULL), 0);
    }
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_true(st.keys <= 64);
    assert_int_equal(st.keys + st.evictions, 5000);
    /* GET /metrics' one pass (fdn__limiter_status_evictions) gives both reads' figures */
    fdn_limiter_backend_status_t bs, bs1;
    uint64_t ev = 0;
    assert_int_equal(fdn_limiter_backend_status(f->l, &bs), 0);
    assert_int_equal(fdn__limiter_status_evictions(f->l, &bs1, &ev), 0);
    assert_int_equal(ev, st.evictions);
    assert_true(ev > 0);
    assert_int_equal(bs1.keys, bs.keys);
    assert_int_equal(bs1.keys, st.keys);
    assert_int_equal(bs1.key_capacity, bs.key_capacity);
    assert_int_equal(bs1.new_keys_refused, bs.new_keys_refused);
    assert_int_equal(bs1.since_refusal_ns, bs.since_refusal_ns);
    assert_int_equal(bs1.backend, FDN_LIMITER_BACKEND_MEMORY);
    assert_int_equal(fdn__limiter_status_evictions(NULL, &bs1, &ev), FDN_EINVAL);
    /* the most recent key is still there (LRU keeps it) */
    fdn_limit_result_t r;
    assert_int_equal(fdn_limiter_check(f->l, key, strlen(key), &rule, 1, FDN_LIMIT_PEEK, &r), 0);
    assert_int_equal(r.remaining, 4);
}

static void sweeping(void **state)
{
    fx_t *f = *state;
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 5, 100, 0};
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "sw-%d", i);
        assert_int_equal(chk(f, key, &rule, 1, NULL), 0);
    }
    fdn_limiter_stats_t st;
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.keys, 20);
    assert_int_equal(fdn_limiter_sweep(f->l), 0); /* nothing expired yet */
    fdn_clock_advance(f->clk, 100 * MS);
    assert_int_equal(fdn_limiter_sweep(f->l), 20);
    fdn_limiter_stats(f->l, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.expired, 20);
    assert_int_equal(st.evictions, 0);
    /* amortised: a check after cleanup_interval sweeps its shard */
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "sw-%d", i);
        chk(f, key, &rule, 1, NULL);
    }
    fdn_clock_advance(f->clk, 1000 * MS);
    chk(f, "other", &rule, 1, NULL);
    fdn_limiter_stats(f->l, &st);
    assert_true(st.keys < 21);
    assert_true(st.expired > 20);
    assert_int_equal(fdn_limiter_set_cleanup_interval(f->l, 0), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_cleanup_interval(f->l, 5000), 0);
}

static void create_validation(void **state)
{
    (void)state;
    fdn_limiter_t *l;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 3;
    assert_int_equal(fdn_limiter_create(&l, &o), FDN_EINVAL);
    o.shards = 4;
    o.max_keys = 0;
    assert_int_equal(fdn_limiter_create(&l, &o), FDN_EINVAL);
    assert_int_equal(fdn_limiter_create(NULL, NULL), FDN_EINVAL);
    assert_int_equal(fdn_limiter_create(&l, NULL), 0);
    fdn_limiter_destroy(l);
    fdn_limiter_destroy(NULL);
}

/* The hash the limiter used before it was keyed (FNV-1a folded, splitmix finaliser): fixed and
 * public, so a client could compute keys that all land in one bucket. */
static uint64_t old_unkeyed_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, k + i, 8);
        h = (h ^ v) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 0x100000001b3ULL;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* A client sends keys crafted to share one bucket under the old hash (same shard, same low 11
 * bits of the bucket index, so they collide at every table size up to 2048 buckets). Under the
 * keyed hash they spread: lookups compare about one cell each, not hundreds. Counted work (the
 * store's probe counter), not time. */
static void crafted_collisions_stay_cheap(void **state)
{
    (void)state;
    enum { KEYS = 300 };
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 4;
    o.max_keys = 4 * 4096;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    static char keys[KEYS][24];
    size_t found = 0;
    for (uint64_t i = 0; found < KEYS; i++) {
        char k[24];
        int n = snprintf(k, sizeof(k), "client-%llu", (unsigned long long)i);
        uint64_t h = old_unkeyed_hash(k, (size_t)n);
        if ((h & 3) == 0 && ((h >> 32) & 2047) == 0)
            memcpy(keys[found++], k, (size_t)n + 1);
    }
    fdn_limit_rule_t rule = {FDN_LIMIT_FIXED_WINDOW, 100, 60000, 0};
    fdn_limit_result_t res;
    for (size_t i = 0; i < KEYS; i++)
        assert_int_equal(fdn_limiter_check(l, keys[i], strlen(keys[i]), &rule, 1, 0, &res), 0);
    uint64_t lookups0, probes0;
    fdn__limiter_probes(l, &lookups0, &probes0);
    for (int round = 0; round < 4; round++)
        for (size_t i = 0; i < KEYS; i++)
            assert_int_equal(fdn_limiter_check(l, keys[i], strlen(keys[i]), &rule, 1, 0, &res),
                             0);
    uint64_t lookups, probes;
    fdn__limiter_probes(l, &lookups, &probes);
    lookups -= lookups0;
    probes -= probes0;
    assert_int_equal(lookups, 4 * KEYS);
    /* one chain holding every key would cost KEYS / 2 = 150 compares per lookup */
    if (probes > 4 * lookups)
        fail_msg("%llu compares for %llu lookups", (unsigned long long)probes,
                 (unsigned long long)lookups);
    fdn_limiter_destroy(l);
}

/* Review finding: named-rule keys "<rule>:<id>", entity keys and a program's raw keys shared
 * one namespace, and rule names could hold ':' (rule "a" with id "b:c" and rule "a:b" with id
 * "c" named one cell: the reference's bug, reference-behaviour.md section 12 item 33). Rule
 * names with ':' are refused; named-rule and entity keys carry their own leading byte, so a
 * program's key spelling them counts apart, and fdn_limiter_top_keys shows each without the
 * byte, with its namespace. */
static void key_namespaces_apart(void **state)
{
    (void)state;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, NULL), 0);
    fdn_limit_rule_t one = {FDN_LIMIT_FIXED_WINDOW, 1, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "a:b", &one), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_rule_flags(l, ":", &one, 0), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_rule(l, "a", &one), 0);
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check(l, "a:victim", 8, &one, 1, 0, &res), 0);
    assert_int_equal(fdn_limiter_check_named(l, "a", "victim", 1, &res), 0); /* its own cell */
    assert_int_equal(fdn_limiter_check_named(l, "a", "victim", 1, &res), FDN_ERATE_LIMITED);
    const char *ek = "foundation:1:e:op";
    assert_int_equal(fdn_limiter_check(l, ek, strlen(ek), &one, 1, 0, &res), 0);
    assert_int_equal(fdn_limiter_check_entity(l, "e", "op", 1, 60000, &res), 0);
    fdn_limit_key_info_t k[8];
    size_t n = 0;
    assert_int_equal(fdn_limiter_top_keys(l, k, 8, &n, NULL), 0);
    assert_int_equal(n, 4);
    int rule = 0, entity = 0, program = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i].key_ns == FDN_LIMIT_NS_RULE) {
            assert_string_equal(k[i].key, "a:victim");
            rule++;
        } else if (k[i].key_ns == FDN_LIMIT_NS_ENTITY) {
            assert_string_equal(k[i].key, ek);
            entity++;
        } else {
            assert_int_equal(k[i].key_ns, FDN_LIMIT_NS_PROGRAM);
            program++;
        }
    }
    assert_int_equal(rule, 1);
    assert_int_equal(entity, 1);
    assert_int_equal(program, 2);
    fdn_limiter_destroy(l);
}

/* Review finding: limit_algo.h's fixed window formed (win + 1) * P, past INT64_MAX when the
 * wall clock is within a period of it (the store's next sweep time too); the sliding window
 * truncated now / P, so with a negative monotonic time (a manual clock) window 0 ran from -P
 * to P. */
static void extreme_clocks_keep_their_windows(void **state)
{
    (void)state;
    fdn_limit_result_t res;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    fdn_clock_t *clk;
    fdn_limiter_t *l;
    /* INT64_MAX - 0.1 s is 0.754... s into a 1 s window that ends past INT64_MAX: it ends
     * 0.245... s later (and the store schedules its sweep without overflowing) */
    assert_int_equal(fdn_clock_manual_create(&clk, 0, INT64_MAX - 100 * MS), 0);
    o.clock = clk;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 1, 1000, 0};
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), 0);
    assert_int_equal(res.reset_ns, 245224193);
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_int_equal(res.retry_after_ns, 245224193);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
    /* a sliding window at -0.5 s is in window -1 ([-1 s, 0)): 2.1 s later (window 1) the
     * previous window (0) is empty and a check of the full limit passes */
    assert_int_equal(fdn_clock_manual_create(&clk, -500 * MS, WALL0), 0);
    o.clock = clk;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 1, 1000, 0};
    assert_int_equal(fdn_limiter_check(l, "sw", 2, &sw, 1, 0, &res), 0);
    assert_int_equal(res.reset_ns, 1500 * MS); /* the end of window 0 */
    assert_int_equal(fdn_clock_advance(clk, 2100 * MS), 0);
    assert_int_equal(fdn_limiter_check(l, "sw", 2, &sw, 1, 0, &res), 0);
    assert_int_equal(res.count, 1);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* fdn_limiter_check refuses a program's key in a library namespace (first byte below
 * FDN_LIMIT_KEY_NS_FIRST_FREE) with FDN_EINVAL and stores nothing: a raw check cannot spend a
 * named rule's cell. FDN_LIMIT_RESERVED_NS (the HTTP API, protect's inline rules) passes. */
/* Review finding: only fdn_limiter_check refused a program's key in a library namespace; inc,
 * set, get, reserve, cancel, reset, check_many and check_rate took it, so a program could read,
 * reset or poison a named rule's, an entity's, an HTTP key's or an inline rule's cell. Every
 * key call refuses it now, on the memory backend as on Redis (tests/support/limiter_ns.c). */
static void every_key_call_refuses_library_namespaces(void **state)
{
    (void)state;
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000000000LL, 1800000000000000000LL), 0);
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.clock = clk;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    test_limiter_ns_refusals(l, "mem");
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

static void program_keys_in_library_namespaces_are_refused(void **state)
{
    (void)state;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, NULL), 0);
    fdn_limit_rule_t one = {FDN_LIMIT_FIXED_WINDOW, 1, 60000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "a", &one), 0);
    fdn_limit_result_t res;
    static const char victim[] = "\002a:victim"; /* the named rule's key for "victim" */
    for (int ns = 0; ns < FDN_LIMIT_KEY_NS_FIRST_FREE; ns++) {
        char k[16] = "xa:victim";
        k[0] = (char)ns;
        assert_int_equal(fdn_limiter_check(l, k, 9, &one, 1, 0, &res), FDN_EINVAL);
        assert_int_equal(fdn_limiter_check(l, k, 9, &one, 1, FDN_LIMIT_PEEK, &res), FDN_EINVAL);
    }
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, 0);
    /* the victim's cell is untouched: its first named check passes */
    assert_int_equal(fdn_limiter_check_named(l, "a", "victim", 1, &res), 0);
    /* the first free byte is a program's */
    assert_int_equal(fdn_limiter_check(l, "\x04k", 2, &one, 1, 0, &res), 0);
    /* on purpose, with the flag: the same cell as the named rule's */
    assert_int_equal(
        fdn_limiter_check(l, victim, sizeof(victim) - 1, &one, 1, FDN_LIMIT_RESERVED_NS, &res),
        FDN_ERATE_LIMITED);
    assert_int_equal(res.count, 2);
    assert_int_equal(fdn_limiter_check(l, "k", 1, &one, 1, 0x4u, &res), FDN_EINVAL);
    fdn_limiter_destroy(l);
}

/* A fixed window before 1970 (a manual wall clock below 0) is P long like any other: at
 * -0.5 s the window is [-1 s, 0) (truncation made it [-1 s, 1 s)), so it ends 0.5 s later and
 * a check 0.6 s later is in a new window. */
static void fixed_window_before_1970_is_one_period(void **state)
{
    (void)state;
    fdn_limit_result_t res;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    fdn_clock_t *clk;
    fdn_limiter_t *l;
    assert_int_equal(fdn_clock_manual_create(&clk, 0, -500 * MS), 0);
    o.clock = clk;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 1, 1000, 0};
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), 0);
    assert_int_equal(res.reset_ns, 500 * MS);
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_int_equal(res.retry_after_ns, 500 * MS);
    assert_int_equal(fdn_clock_advance(clk, 600 * MS), 0);
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.reset_ns, 900 * MS);
    /* far before 1970: the window that holds INT64_MIN + 1 ns starts a period earlier */
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
    assert_int_equal(fdn_clock_manual_create(&clk, 0, INT64_MIN + 1), 0);
    o.clock = clk;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), 0);
    /* INT64_MIN = -9223372036.854775808 s: 0.854775807 s to the window's end at -9223372036 s */
    assert_int_equal(res.reset_ns, 854775807);
    assert_int_equal(fdn_limiter_check(l, "fw", 2, &fw, 1, 0, &res), FDN_ERATE_LIMITED);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* fdn_limiter_refusal_age_ns and fdn_limiter_backend_available (GET /health's reads) say what
 * fdn_limiter_backend_status says of their fields. */
static void expect_health_agrees(fdn_limiter_t *l)
{
    fdn_limiter_backend_status_t st;
    assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
    assert_int_equal(fdn_limiter_refusal_age_ns(l), st.since_refusal_ns);
    assert_true(st.connected && st.breaker_state == FDN_BREAKER_CLOSED);
    assert_true(fdn_limiter_backend_available(l));
}

/* The store's time arithmetic off the check path (the age of the last refusal, the once-a-
 * second quota sweep, a refusal's wait) holds at both ends of a manual clock: no overflow
 * (UBSan), and ages and sweeps follow the clock as they do near 0. */
static void store_times_at_clock_extremes(void **state)
{
    (void)state;
    static const int64_t monos[] = {INT64_MIN, INT64_MIN + 1, -5000 * MS, INT64_MAX - 10000 * MS};
    for (size_t i = 0; i < sizeof(monos) / sizeof(monos[0]); i++) {
        fdn_limit_result_t res;
        fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
        fdn_clock_t *clk;
        fdn_limiter_t *l;
        assert_int_equal(fdn_clock_manual_create(&clk, monos[i], WALL0), 0);
        o.clock = clk;
        o.shards = 1;
        o.max_keys = 2;
        o.cleanup_interval_ms = 3600 * 1000; /* only the refusals below sweep */
        assert_int_equal(fdn_limiter_create(&l, &o), 0);
        fdn_limiter_backend_status_t st;
        assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
        assert_int_equal(st.since_refusal_ns, -1); /* never */
        expect_health_agrees(l);
        /* a full shard of live keys refuses a new one, and says when one expires */
        fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 0};
        fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 10, 1000, 0};
        assert_int_equal(fdn_limiter_check(l, "a", 1, &tb, 1, 0, &res), 0);
        assert_int_equal(fdn_limiter_check(l, "b", 1, &fw, 1, 0, &res), 0);
        assert_int_equal(fdn_limiter_check(l, "c", 1, &tb, 1, 0, &res), FDN_ELIMITER);
        assert_true(res.retry_after_ns > 0 && res.retry_after_ns <= 1000 * MS);
        assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
        assert_int_equal(st.since_refusal_ns, 0);
        expect_health_agrees(l);
        assert_int_equal(fdn_clock_advance(clk, 5000 * MS), 0);
        assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
        assert_int_equal(st.since_refusal_ns, 5000 * MS);
        expect_health_agrees(l);
        assert_int_equal(fdn_limiter_refusal_age_ns(NULL), -1);
        assert_false(fdn_limiter_backend_available(NULL));
        fdn_limiter_destroy(l);

        /* an identity's quota: its expired key is swept by the first refusal */
        assert_int_equal(fdn_limiter_create(&l, &o), 0);
        assert_int_equal(fdn_limiter_set_max_keys_per_identity(l, 1), 0);
        assert_int_equal(fdn_limiter_check(l, "u\0371", 3, &tb, 1, 0, &res), 0);
        assert_int_equal(fdn_clock_advance(clk, 2000 * MS), 0); /* "u\0371" expired */
        assert_int_equal(fdn_limiter_check(l, "u\0372", 3, &tb, 1, 0, &res), 0);
        assert_int_equal(fdn_limiter_check(l, "u\0373", 3, &tb, 1, 0, &res), FDN_ENOSPC);
        fdn_limiter_destroy(l);
        fdn_clock_destroy(clk);
    }
}

/* ---- review fixes (stale time, rule changes, sliding remaining, sweeps, shadow peek, bounds) */

#define SEC (1000 * MS)

/* Review finding: a check that read the clock just before a window edge and took the shard lock
 * after another check in the next window rewound the key's window (an earlier index was "time
 * went back, start afresh"): the window's counts were lost and more than L per window passed.
 * Such a `now` is now taken as the state's window's start; times are still measured from it. */
static void stale_now_does_not_rewind_a_window(void **state)
{
    (void)state;
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    /* sliding window, 5 per s (monotonic clock): 5 in window 9, B at 10 s + 1 us, A at
     * 10 s - 1 us arriving after B */
    const fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 5, 1000, 0};
    fdn__limit_init(&st, &sw, 9 * SEC + SEC / 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, 9 * SEC + SEC / 2, NULL, &r), 0);
    assert_int_equal(fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, 10 * SEC + 1000, NULL, &r), 0);
    assert_false(r.allowed); /* window 9's 5 weigh ~1 */
    int64_t ep = -1;
    assert_int_equal(fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, 10 * SEC - 1000, &ep, &r), 0);
    assert_false(r.allowed); /* was allowed: the state went back to window 9, empty */
    assert_int_equal(st.s[0], 10);
    assert_int_equal(st.s[2], 5); /* the previous window's count is kept */
    assert_int_equal(ep, 10);
    assert_int_equal(r.count, 5);
    assert_int_equal(r.reset_ns, 2 * SEC + 1000);       /* from the caller's now */
    assert_int_equal(st.expires, 12 * SEC);             /* the end of the next window */
    assert_int_equal(r.retry_after_ns, SEC / 5 + 1000); /* prev's weight 4/5 at 10.2 s */
    int more = 0;
    for (int i = 0; i < 10; i++) {
        fdn__limit_apply(&st, &sw, 1, FDN__LIMIT_CHECK, 10 * SEC + 2000, NULL, &r);
        more += r.allowed;
    }
    assert_int_equal(more, 0);

    /* fixed window, 5 per s (wall clock): a read up to FDN__LIMIT_WALL_STEP_NS before the
     * window is stale and counted in it; a step further back starts its own window */
    const fdn_limit_rule_t fw = {FDN_LIMIT_FIXED_WINDOW, 5, 1000, 0};
    const int64_t w10 = (int64_t)1700000010 * SEC;
    fdn__limit_init(&st, &fw, w10);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fdn__limit_apply(&st, &fw, 1, FDN__LIMIT_CHECK, w10 + 1000, NULL, &r), 0);
    assert_int_equal(fdn__limit_apply(&st, &fw, 1, FDN__LIMIT_CHECK, w10 - 1000, NULL, &r), 0);
    assert_false(r.allowed); /* was allowed with count 1 */
    assert_int_equal(r.count, 6);
    assert_int_equal(r.reset_ns, SEC + 1000);
    assert_int_equal(r.retry_after_ns, SEC + 1000);
    assert_int_equal(st.expires, w10 + SEC);
    assert_int_equal(
        fdn__limit_apply(&st, &fw, 1, FDN__LIMIT_CHECK, w10 - FDN__LIMIT_WALL_STEP_NS, NULL, &r),
        0);
    assert_false(r.allowed); /* still a stale read: 1 s exactly */
    assert_int_equal(fdn__limit_apply(&st, &fw, 1, FDN__LIMIT_CHECK, w10 - 2 * SEC, NULL, &r), 0);
    assert_true(r.allowed); /* a step of the wall clock: window 8 afresh, as documented */
    assert_int_equal(r.count, 1);
    assert_int_equal(st.s[0], 1700000008);
}

/* The same race through the limiter: protected execution passes its call's start time
 * (fdn__limiter_check_named_cached's mono_ns), read before the shard lock. At most 5 of a
 * 5-per-second sliding window pass within one second (10 did). */
static void stale_named_check_keeps_the_limit(void **state)
{
    (void)state;
    fdn_clock_t *ck;
    assert_int_equal(fdn_clock_manual_create(&ck, 9 * SEC + SEC / 2, WALL0), 0);
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.clock = ck;
    fdn_limiter_t *l;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    const fdn_limit_rule_t r = {FDN_LIMIT_SLIDING_WINDOW, 5, 1000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "sw", &r), 0);
    fdn__limiter_rule_cache_t cache;
    fdn__limiter_rule_cache_init(&cache);
    fdn_limit_result_t res;
    int allowed = 0;
    for (int i = 0; i < 5; i++)
        allowed += fdn_limiter_check_named(l, "sw", "u", 1, &res) == 0;
    fdn_clock_set_mono(ck, 10 * SEC - 1000); /* A reads the clock */
    int64_t ta = fdn_clock_mono_ns(ck);
    fdn_clock_set_mono(ck, 10 * SEC + 1000); /* B checks first */
    allowed += fdn_limiter_check_named(l, "sw", "u", 1, &res) == 0;
    allowed += fdn__limiter_check_named_cached(l, "sw", "u", 1, &res, &cache, ck, ta) == 0;
    fdn_clock_set_mono(ck, 10 * SEC + 2000);
    for (int i = 0; i < 10; i++)
        allowed += fdn_limiter_check_named(l, "sw", "u", 1, &res) == 0;
    assert_int_equal(allowed, 5);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(ck);
}

/* Review finding: a token bucket's expiry was now + reset while its tokens are those of its
 * last refill s[0] > now (a stale now): the state expired before the bucket was full, and a
 * fresh state then held more tokens than the real one. It is s[0] + reset; the times reported
 * are measured from now. */
static void token_bucket_expiry_counts_from_its_last_refill(void **state)
{
    (void)state;
    const fdn_limit_rule_t tb = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 2}; /* 1 per s, burst 2 */
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    fdn__limit_init(&st, &tb, 10 * SEC);
    assert_int_equal(fdn__limit_apply(&st, &tb, 2, FDN__LIMIT_CHECK, 10 * SEC, NULL, &r), 0);
    assert_true(r.allowed);
    assert_int_equal(fdn__limit_apply(&st, &tb, 1, FDN__LIMIT_CHECK, 10 * SEC - SEC / 2, NULL, &r),
                     0);
    assert_false(r.allowed);
    assert_int_equal(st.expires, 12 * SEC); /* was 11.5 s */
    assert_int_equal(r.reset_ns, 2 * SEC + SEC / 2);
    assert_int_equal(r.retry_after_ns, SEC + SEC / 2);
    /* at 11.5 s the state is not expired and holds 1.5 tokens: one call, not two */
    assert_true(st.expires > 11 * SEC + SEC / 2);
    assert_int_equal(fdn__limit_apply(&st, &tb, 1, FDN__LIMIT_CHECK, 11 * SEC + SEC / 2, NULL, &r),
                     0);
    assert_true(r.allowed);
    assert_int_equal(fdn__limit_apply(&st, &tb, 1, FDN__LIMIT_CHECK, 11 * SEC + SEC / 2, NULL, &r),
                     0);
    assert_false(r.allowed);
}

/* Review finding: a key's state is kept in its rule's units (tokens scaled by P, a TAT spaced by
 * T, a window index of P) and a changed rule read it as it was: 100/min -> 100/h left a key
 * holding 99 tokens with 1; a lower burst at the same instant gave count -6, remaining 8 and
 * admitted 3 under burst 2; GCRA and windows with a new period lost what was used. The state is
 * converted when the rule changes. */
static void rule_change_converts_the_state(void **state)
{
    fx_t *f = *state;
    fdn_limit_result_t r;
    /* token bucket: 100/min -> 100/h keeps the 99 tokens */
    const fdn_limit_rule_t perm = {FDN_LIMIT_TOKEN_BUCKET, 100, 60000, 0};
    const fdn_limit_rule_t perh = {FDN_LIMIT_TOKEN_BUCKET, 100, 3600000, 0};
    assert_int_equal(chk(f, "tb", &perm, 1, &r), 0);
    assert_int_equal(r.remaining, 99);
    assert_int_equal(chk(f, "tb", &perh, 1, &r), 0);
    assert_int_equal(r.remaining, 98);
    assert_int_equal(r.count, 2);
    /* token bucket: burst 10 -> 2 at the same instant holds at most 2 */
    const fdn_limit_rule_t b10 = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 10};
    const fdn_limit_rule_t b2 = {FDN_LIMIT_TOKEN_BUCKET, 1, 1000, 2};
    assert_int_equal(chk(f, "tb2", &b10, 1, &r), 0);
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        ok += chk(f, "tb2", &b2, 1, &r) == 0;
        assert_true(r.count >= 0 && r.count <= 2);
        assert_true(r.remaining >= 0 && r.remaining <= 2);
    }
    assert_int_equal(ok, 2);
    /* GCRA: 10/s -> 10/min (burst 10) keeps the 6 tokens left */
    const fdn_limit_rule_t gs = {FDN_LIMIT_GCRA, 10, 1000, 0};
    const fdn_limit_rule_t gm = {FDN_LIMIT_GCRA, 10, 60000, 0};
    assert_int_equal(chk(f, "g", &gs, 4, &r), 0);
    assert_int_equal(r.remaining, 6);
    assert_int_equal(chk(f, "g", &gm, 1, &r), 0);
    assert_int_equal(r.remaining, 5);
    /* windows with a new period keep their counts */
    const fdn_limit_rule_t f1 = {FDN_LIMIT_FIXED_WINDOW, 5, 1000, 0};
    const fdn_limit_rule_t f10 = {FDN_LIMIT_FIXED_WINDOW, 5, 10000, 0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(chk(f, "fw", &f1, 1, &r), 0);
    assert_int_equal(chk(f, "fw", &f10, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.count, 6);
    const fdn_limit_rule_t s1 = {FDN_LIMIT_SLIDING_WINDOW, 5, 1000, 0};
    const fdn_limit_rule_t s2 = {FDN_LIMIT_SLIDING_WINDOW, 5, 2000, 0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(chk(f, "sw", &s1, 1, &r), 0);
    assert_int_equal(chk(f, "sw", &s2, 1, &r), FDN_ERATE_LIMITED);
    assert_int_equal(r.count, 5);
    /* a peek under another rule converts a copy: the cell and its rule stay */
    assert_int_equal(chk(f, "tb3", &perm, 50, &r), 0);
    assert_int_equal(fdn_limiter_check(f->l, "tb3", 3, &perh, 1, FDN_LIMIT_PEEK, &r), 0);
    assert_int_equal(r.remaining, 50);
    assert_int_equal(chk(f, "tb3", &perm, 1, &r), 0);
    assert_int_equal(r.remaining, 49);
}

/* The conversion itself, on the pure state: a debt is kept (bounded), tokens are clamped. */
static void convert_keeps_debts_and_clamps(void **state)
{
    (void)state;
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    const int64_t now = 50 * SEC;
    const fdn_limit_rule_t a = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 0};
    const fdn_limit_rule_t b = {FDN_LIMIT_TOKEN_BUCKET, 10, 10000, 5};
    fdn__limit_init(&st, &a, now);
    assert_int_equal(fdn__limit_apply(&st, &a, 13, FDN__LIMIT_INC, now, NULL, &r), 0); /* -3 */
    fdn__limit_convert(&st, &a, &b, now);
    assert_int_equal(st.s[1], -3 * 10 * SEC); /* 3 tokens of debt, in 10 s units */
    fdn__limit_init(&st, &a, now);
    fdn__limit_convert(&st, &a, &b, now + SEC); /* full: 10 tokens, clamped to the new 5 */
    assert_int_equal(st.s[1], 5 * 10 * SEC);
    const fdn_limit_rule_t g = {FDN_LIMIT_GCRA, 10, 1000, 0};
    const fdn_limit_rule_t g2 = {FDN_LIMIT_GCRA, 1, 1000, 2};
    fdn__limit_init(&st, &g, now);
    assert_int_equal(fdn__limit_apply(&st, &g, 1, FDN__LIMIT_CHECK, now, NULL, &r), 0);
    fdn__limit_convert(&st, &g, &g2, now); /* 9 available -> 2 (the new burst) */
    assert_int_equal(fdn__limit_apply(&st, &g2, 1, FDN__LIMIT_PEEK, now, NULL, &r), 0);
    assert_int_equal(r.remaining, 2);
    assert_int_equal(r.count, 0);
}

/* Review finding: the sliding window's count floored the previous window's weighted share
 * while admission used the exact estimate, so remaining was one too high when the weight was
 * fractional (L 3, prev 3, e = P/6: denied with remaining 1). The share is rounded up: remaining
 * is the number of cost-1 checks allowed now, and a check is allowed iff remaining >= cost. */
static void sliding_remaining_is_what_admission_allows(void **state)
{
    (void)state;
    const int64_t p = 6000 * MS;
    const fdn_limit_rule_t one = {FDN_LIMIT_SLIDING_WINDOW, 3, 6000, 0};
    fdn__limit_state_t st;
    fdn_limit_result_t r;
    fdn__limit_init(&st, &one, 100 * p + p / 6);
    st.s[2] = 3;
    assert_int_equal(fdn__limit_apply(&st, &one, 1, FDN__LIMIT_PEEK, 100 * p + p / 6, NULL, &r), 0);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.count, 3);
    const int64_t es[] = {0, 1, p / 7, p / 6, p / 3, p / 2, p - p / 5, p - 1};
    for (int64_t L = 1; L <= 5; L++) {
        const fdn_limit_rule_t rule = {FDN_LIMIT_SLIDING_WINDOW, L, 6000, 0};
        for (int64_t prev = 0; prev <= 7; prev++)
            for (int64_t cur = 0; cur <= L; cur++)
                for (size_t k = 0; k < sizeof(es) / sizeof(es[0]); k++) {
                    const int64_t now = 100 * p + es[k];
                    fdn__limit_init(&st, &rule, now);
                    st.s[1] = cur;
                    st.s[2] = prev;
                    assert_int_equal(
                        fdn__limit_apply(&st, &rule, 1, FDN__LIMIT_PEEK, now, NULL, &r), 0);
                    const int64_t remaining = r.remaining;
                    assert_true(r.count >= 0 && r.count <= prev + cur);
                    assert_int_equal(r.allowed, remaining >= 1);
                    int64_t n = 0;
                    while (n <= L) {
                        assert_int_equal(
                            fdn__limit_apply(&st, &rule, 1, FDN__LIMIT_CHECK, now, NULL, &r), 0);
                        if (!r.allowed)
                            break;
                        n++;
                        assert_int_equal(r.remaining, remaining - n);
                    }
                    assert_int_equal(n, remaining);
                }
    }
}

/* Review finding: fdn_limiter_set_cleanup_interval only stored the new period; the sweeps
 * already planned stayed where the old one put them (300 s -> 1 ms: 50 ms later 100 expired
 * keys remained). A shard's next sweep is its last sweep plus the new period. */
static void cleanup_interval_moves_planned_sweeps(void **state)
{
    (void)state;
    fdn_clock_t *ck;
    assert_int_equal(fdn_clock_manual_create(&ck, SEC, WALL0), 0);
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT; /* cleanup every 300 s */
    o.clock = ck;
    o.shards = 1;
    fdn_limiter_t *l;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    const fdn_limit_rule_t g = {FDN_LIMIT_GCRA, 10, 10, 0};
    for (int i = 0; i < 100; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(fdn_limiter_check(l, k, (size_t)n, &g, 1, 0, NULL), 0);
    }
    assert_int_equal(fdn_limiter_set_cleanup_interval(l, 1), 0);
    fdn_clock_advance(ck, 50 * MS);
    assert_int_equal(fdn_limiter_check(l, "other", 5, &g, 1, 0, NULL), 0);
    fdn_limiter_stats_t s;
    fdn_limiter_stats(l, &s);
    assert_int_equal(s.expired, 100);
    assert_int_equal(s.keys, 1);
    /* a longer period moves the next sweep later again: nothing swept 10 ms on */
    assert_int_equal(fdn_limiter_set_cleanup_interval(l, 300000), 0);
    fdn_clock_advance(ck, 10 * MS);
    assert_int_equal(fdn_limiter_check(l, "other2", 6, &g, 1, 0, NULL), 0);
    fdn_limiter_stats(l, &s);
    assert_int_equal(s.expired, 100);
    assert_int_equal(s.keys, 2);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(ck);
}

/* Review finding: in shadow mode a peek returned FDN_ERATE_LIMITED with allowed false, while
 * the header has a shadow-mode check return 0 with allowed true: "peek first" then enforced
 * what shadow mode only reports. A peek answers as the check would; peeks are not counted. */
static void shadow_peek_answers_as_the_check(void **state)
{
    fx_t *f = *state;
    const fdn_limit_rule_t one = {FDN_LIMIT_FIXED_WINDOW, 1, 1000, 0};
    fdn_limit_result_t r;
    assert_int_equal(chk(f, "sp", &one, 1, &r), 0);
    assert_int_equal(fdn_limiter_check(f->l, "sp", 2, &one, 1, FDN_LIMIT_PEEK, &r),
                     FDN_ERATE_LIMITED);
    assert_false(r.allowed);
    fdn_limiter_set_shadow(f->l, true);
    fdn_limiter_stats_t before, after;
    fdn_limiter_stats(f->l, &before);
    assert_int_equal(fdn_limiter_check(f->l, "sp", 2, &one, 1, FDN_LIMIT_PEEK, &r), 0);
    assert_true(r.allowed);
    assert_true(r.shadow_denied);
    assert_int_equal(r.count, 1);
    fdn_limit_request_t q[1] = {
        {.key = "sp", .keylen = 2, .rule = &one, .cost = 1, .flags = FDN_LIMIT_PEEK}};
    assert_int_equal(fdn_limiter_check_many(f->l, q, 1), 0);
    assert_int_equal(q[0].rc, 0);
    assert_true(q[0].res.allowed);
    assert_true(q[0].res.shadow_denied);
    assert_int_equal(fdn_limiter_get(f->l, "sp", 2, &one, &r), 0);
    assert_true(r.allowed);
    assert_true(r.shadow_denied);
    fdn_limiter_stats(f->l, &after);
    assert_int_equal(after.denied, before.denied);
    assert_int_equal(after.allowed, before.allowed);
    /* the check itself: the same answer */
    assert_int_equal(chk(f, "sp", &one, 1, &r), 0);
    assert_true(r.shadow_denied);
    fdn_limiter_set_shadow(f->l, false);
}

/* Review finding: a shard's table stops growing at 2^30 slots, past which cell_insert skipped
 * its one-free-slot guard, so a shard of more keys could fill its table and a probe loop never
 * end. max_keys / shards is bounded at create (2^29, under 5/8 of the largest table). */
static void create_bounds_keys_per_shard(void **state)
{
    (void)state;
    fdn_limiter_t *l = NULL;
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    fdn_error_t err;
    memset(&err, 0, sizeof(err));
    o.shards = 1;
    o.max_keys = FDN__LIMITER_SHARD_KEYS_MAX + 1;
    assert_int_equal(fdn_limiter_open(&l, &o, &err), FDN_EINVAL);
    assert_null(l);
    assert_non_null(strstr(err.message, "per shard"));
    o.shards = 4;
    o.max_keys = UINT32_MAX;
    assert_int_equal(fdn_limiter_create(&l, &o), FDN_EINVAL);
    o.shards = 8; /* UINT32_MAX / 8 < 2^29 */
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limiter_destroy(l);
    o.shards = 1;
    o.max_keys = FDN__LIMITER_SHARD_KEYS_MAX;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    fdn_limiter_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ref_fixed_window_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(check_many_decides_each_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(inc_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(check_many_refuses_bad_input_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(check_many_follows_shadow_and_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(ref_fixed_window_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(ref_entity_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(fixed_window_cost, setup, teardown),
        cmocka_unit_test_setup_teardown(token_bucket_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(gcra_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(sliding_window_exact, setup, teardown),
        cmocka_unit_test(window_counts_do_not_wrap),
        cmocka_unit_test(algo_arithmetic_matches_exact),
        cmocka_unit_test(rule_fault_agrees_with_validate),
        cmocka_unit_test(gcra_near_the_end_of_time),
        cmocka_unit_test(gcra_after_a_jump_back_past_half_the_clock),
        cmocka_unit_test_setup_teardown(peek_with_another_algorithm_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(peek_does_not_consume, setup, teardown),
        cmocka_unit_test_setup_teardown(reserve_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(shadow_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(named_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_clears_and_service_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(eviction_bounds_memory, setup_small_lru, teardown),
        cmocka_unit_test_setup_teardown(flood_cannot_reset_victim, setup_small, teardown),
        cmocka_unit_test_setup_teardown(full_shard_prefers_expired, setup_small, teardown),
        cmocka_unit_test_setup_teardown(sweeping, setup_small, teardown),
        cmocka_unit_test(create_validation),
        cmocka_unit_test(crafted_collisions_stay_cheap),
        cmocka_unit_test(key_namespaces_apart),
        cmocka_unit_test(program_keys_in_library_namespaces_are_refused),
        cmocka_unit_test(every_key_call_refuses_library_namespaces),
        cmocka_unit_test_setup_teardown(shadow_reserve_follows_what_was_taken, setup, teardown),
        cmocka_unit_test(extreme_clocks_keep_their_windows),
        cmocka_unit_test(fixed_window_before_1970_is_one_period),
        cmocka_unit_test(store_times_at_clock_extremes),
        cmocka_unit_test(stale_now_does_not_rewind_a_window),
        cmocka_unit_test(stale_named_check_keeps_the_limit),
        cmocka_unit_test(token_bucket_expiry_counts_from_its_last_refill),
        cmocka_unit_test_setup_teardown(rule_change_converts_the_state, setup, teardown),
        cmocka_unit_test(convert_keeps_debts_and_clamps),
        cmocka_unit_test(sliding_remaining_is_what_admission_allows),
        cmocka_unit_test(cleanup_interval_moves_planned_sweeps),
        cmocka_unit_test_setup_teardown(shadow_peek_answers_as_the_check, setup, teardown),
        cmocka_unit_test(create_bounds_keys_per_shard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
