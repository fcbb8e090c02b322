/* The in-memory limiter store's open-addressing table (src/infra/limiter_store.c): many keys
 * through several resizes, removals in the middle of probe runs (reset, sweep, eviction), keys
 * stored inline and on the heap, and the LRU order across cell moves. Every key's count is
 * read back exactly. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fdn/limiter.h>

#define MS    1000000LL
#define WALL0 (1700000040000LL * MS) /* a multiple of every window used below */

/* Key i: short ones inline, every third one longer than a slot holds. */
static size_t key_of(size_t i, char *buf, size_t cap)
{
    int n = i % 3 == 0 ? snprintf(buf, cap, "tenant-%zu:a-long-suffix-that-does-not-fit-inline", i)
                       : snprintf(buf, cap, "k%zu", i);
    return (size_t)n;
}

static int64_t count_of(fdn_limiter_t *l, const fdn_limit_rule_t *r, size_t i)
{
    char k[96];
    size_t kl = key_of(i, k, sizeof(k));
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_get(l, k, kl, r, &res), 0);
    return res.count;
}

static void hit(fdn_limiter_t *l, const fdn_limit_rule_t *r, size_t i, int times)
{
    char k[96];
    size_t kl = key_of(i, k, sizeof(k));
    for (int t = 0; t < times; t++)
        assert_int_equal(fdn_limiter_check(l, k, kl, r, 1, 0, NULL), 0);
}

static fdn_limiter_t *make(fdn_clock_t *clk, uint32_t max_keys, fdn_limit_overflow_t policy)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 1; /* every key in one table: the most resizes and the longest probe runs */
    o.max_keys = max_keys;
    o.overflow_policy = policy;
    o.clock = clk;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    return l;
}

static void many_keys_keep_their_counts(void **state)
{
    (void)state;
    enum { N = 3000 };
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000 * MS, WALL0), 0);
    fdn_limiter_t *l = make(clk, 5000, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 1000, 3600000, 0};
    for (size_t i = 0; i < N; i++)
        hit(l, &r, i, (int)(i % 7) + 1);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(count_of(l, &r, i), (int64_t)(i % 7) + 1);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, N);
    /* removals everywhere in the probe runs: the keys after them are still found */
    for (size_t i = 0; i < N; i += 2) {
        char k[96];
        size_t kl = key_of(i, k, sizeof(k));
        assert_int_equal(fdn_limiter_reset(l, k, kl), 0);
        assert_int_equal(fdn_limiter_reset(l, k, kl), FDN_ENOENT);
    }
    for (size_t i = 0; i < N; i++)
        assert_int_equal(count_of(l, &r, i), i % 2 == 0 ? 0 : (int64_t)(i % 7) + 1);
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, N / 2);
    /* and they come back fresh */
    for (size_t i = 0; i < N; i += 2)
        hit(l, &r, i, 1);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(count_of(l, &r, i), i % 2 == 0 ? 1 : (int64_t)(i % 7) + 1);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

static void sweep_keeps_live_keys(void **state)
{
    (void)state;
    enum { SHORT = 2000, LONG = 100 };
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000 * MS, WALL0), 0);
    fdn_limiter_t *l = make(clk, 4096, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_rule_t brief = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 0};
    fdn_limit_rule_t lasting = {FDN_LIMIT_GCRA, 10, 3600000, 0};
    /* interleaved, so that expired and live cells share probe runs */
    for (size_t i = 0; i < SHORT + LONG; i++)
        hit(l, i % 21 == 0 ? &lasting : &brief, i, 3);
    size_t live = 0;
    for (size_t i = 0; i < SHORT + LONG; i++)
        live += i % 21 == 0;
    fdn_clock_advance(clk, 2000 * MS); /* every token bucket is full again: expired */
    assert_int_equal(fdn_limiter_sweep(l), SHORT + LONG - live);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, live);
    for (size_t i = 0; i < SHORT + LONG; i += 21)
        assert_int_equal(count_of(l, &lasting, i), 3);
    /* the table (now small again) still takes keys */
    for (size_t i = 1; i < 500; i += 21)
        hit(l, &brief, i, 1);
    for (size_t i = 1; i < 500; i += 21)
        assert_int_equal(count_of(l, &brief, i), 1);
    for (size_t i = 0; i < SHORT + LONG; i += 21)
        assert_int_equal(count_of(l, &lasting, i), 3);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* A table past 2 MiB (16 384 slots of 128 bytes) is a mapping of its own, on huge pages where
 * the kernel gives them (core/alloc.h): one shard grows through 2, 4 and 8 MiB, a sweep
 * halves it back under 2 MiB (from the allocator again), and it grows once more. Every third
 * key is a heap copy referenced only from the table, freed with it (ASan: no leak). */
static void huge_table_grows_and_shrinks(void **state)
{
    (void)state;
    enum { N = 24000, KEEP = 50 }; /* 24 000 keys: 65 536 slots (8 MiB) */
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000 * MS, WALL0), 0);
    fdn_limiter_t *l = make(clk, 2 * N, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_rule_t brief = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 0};
    fdn_limit_rule_t lasting = {FDN_LIMIT_FIXED_WINDOW, 1000, 3600000, 0};
    for (size_t i = 0; i < N; i++)
        hit(l, i % KEEP == 0 ? &lasting : &brief, i, (int)(i % 3) + 1);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(count_of(l, i % KEEP == 0 ? &lasting : &brief, i), (int64_t)(i % 3) + 1);
    /* the token buckets refill: all but 1 key in KEEP go, the table halves down to 4 096 slots */
    fdn_clock_advance(clk, 2000 * MS);
    assert_int_equal(fdn_limiter_sweep(l), N - N / KEEP);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, N / KEEP);
    for (size_t i = 0; i < N; i += KEEP)
        assert_int_equal(count_of(l, &lasting, i), (int64_t)(i % 3) + 1);
    /* and grows past 2 MiB again */
    for (size_t i = 0; i < N; i++)
        if (i % KEEP != 0)
            hit(l, &lasting, i, 1);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(count_of(l, &lasting, i), i % KEEP == 0 ? (int64_t)(i % 3) + 1 : 1);
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, N);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* Cells move (resizes, removals before them in a run); the LRU order must not. */
static void lru_order_survives_moves(void **state)
{
    (void)state;
    enum { CAP = 600 };
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000 * MS, WALL0), 0);
    fdn_limiter_t *l = make(clk, CAP, FDN_LIMIT_OVERFLOW_EVICT_LRU);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 1000, 3600000, 0};
    for (size_t i = 0; i < CAP; i++)
        hit(l, &r, i, 1);
    for (size_t i = 0; i < 100; i++) /* most recently used now */
        hit(l, &r, i, 1);
    for (size_t i = 300; i < 350; i++) { /* 50 removals: room for 50 new keys */
        char k[96];
        size_t kl = key_of(i, k, sizeof(k));
        assert_int_equal(fdn_limiter_reset(l, k, kl), 0);
    }
    for (size_t i = CAP; i < CAP + 100; i++) /* 50 fit, 50 evict the LRU tail: 100..149 */
        hit(l, &r, i, 1);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.keys, CAP);
    assert_int_equal(st.evictions, 50);
    for (size_t i = 0; i < CAP + 100; i++) {
        int64_t want = i < 100 ? 2 : (i < 150 || (i >= 300 && i < 350)) ? 0 : 1;
        if (count_of(l, &r, i) != want)
            fail_msg("key %zu: count %lld, want %lld", i, (long long)count_of(l, &r, i),
                     (long long)want);
    }
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* fdn_limiter_backend_status counts keys with no shard lock (per-shard mirrors); at rest its
 * count must equal the locked count of fdn_limiter_stats through every way a key comes and
 * goes: creation, refusal by a full shard, eviction, reset, sweep of expired keys, the
 * amortised sweep of a shard whose interval passed. */
static void expect_counts_agree(fdn_limiter_t *l, uint64_t want_keys)
{
    fdn_limiter_stats_t st;
    fdn_limiter_backend_status_t bs;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(fdn_limiter_backend_status(l, &bs), 0);
    assert_int_equal(st.keys, want_keys);
    assert_int_equal(bs.keys, st.keys);
    assert_int_equal(bs.new_keys_refused, st.overflow_denied);
}

static fdn_limiter_t *make_sharded(fdn_clock_t *clk, uint32_t max_keys, fdn_limit_overflow_t policy)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.shards = 8;
    o.max_keys = max_keys;
    o.overflow_policy = policy;
    o.cleanup_interval_ms = 1000;
    o.clock = clk;
    fdn_limiter_t *l = NULL;
    assert_int_equal(fdn_limiter_create(&l, &o), 0);
    return l;
}

static void status_key_count_is_exact_at_rest(void **state)
{
    (void)state;
    enum { N = 1200 };
    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 5000 * MS, WALL0), 0);
    /* 8 shards of 100 keys: 1200 keys overflow some shards, which refuse them */
    fdn_limiter_t *l = make_sharded(clk, 800, FDN_LIMIT_OVERFLOW_DENY_NEW);
    fdn_limit_rule_t lasting = {FDN_LIMIT_FIXED_WINDOW, 1000, 3600000, 0};
    fdn_limit_rule_t brief = {FDN_LIMIT_TOKEN_BUCKET, 10, 100, 0};
    expect_counts_agree(l, 0);
    uint64_t stored = 0, refused = 0;
    for (size_t i = 0; i < N; i++) {
        char k[96];
        size_t kl = key_of(i, k, sizeof(k));
        int rc = fdn_limiter_check(l, k, kl, i % 2 ? &lasting : &brief, 1, 0, NULL);
        assert_true(rc == 0 || rc == FDN_ELIMITER);
        stored += rc == 0;
        refused += rc == FDN_ELIMITER;
    }
    assert_true(refused > 0 && stored <= 800);
    expect_counts_agree(l, stored);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_int_equal(st.overflow_denied, refused);
    /* resets in the middle of probe runs */
    uint64_t reset = 0;
    for (size_t i = 1; i < N; i += 4) {
        char k[96];
        size_t kl = key_of(i, k, sizeof(k));
        reset += fdn_limiter_reset(l, k, kl) == 0;
    }
    expect_counts_agree(l, stored - reset);
    /* the token buckets expire and a full sweep takes them */
    fdn_clock_advance(clk, 2000 * MS);
    size_t swept = fdn_limiter_sweep(l);
    assert_true(swept > 0);
    expect_counts_agree(l, stored - reset - swept);
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    uint64_t left = st.keys;
    /* new brief keys, expired by time, then taken by the amortised sweep of each shard */
    for (size_t i = N; i < N + 200; i++)
        hit(l, &brief, i, 1);
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_true(st.keys > left);
    expect_counts_agree(l, st.keys);
    fdn_clock_advance(clk, 2000 * MS); /* every shard's interval passed */
    for (size_t i = 1; i < 400; i += 2) {
        char k[96];
        size_t kl = key_of(i, k, sizeof(k));
        (void)fdn_limiter_check(l, k, kl, &lasting, 1, FDN_LIMIT_PEEK, NULL);
    }
    expect_counts_agree(l, left); /* 200 keys reach all 8 shards (all but surely) */
    fdn_limiter_destroy(l);

    /* eviction keeps the count at the cap */
    l = make_sharded(clk, 80, FDN_LIMIT_OVERFLOW_EVICT_LRU);
    for (size_t i = 0; i < 500; i++)
        hit(l, &lasting, i, 1);
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    assert_true(st.evictions > 0);
    expect_counts_agree(l, st.keys);
    assert_true(st.keys <= 80);
    fdn_limiter_destroy(l);
    fdn_clock_destroy(clk);
}

/* Two threads create and drop keys at once while a third reads the status; when they are done
 * the lock-free count equals the locked one. */
typedef struct churn_arg {
    fdn_limiter_t *l;
    size_t base;
} churn_arg_t;

static void *churn(void *p)
{
    churn_arg_t *a = p;
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 1000, 3600000, 0};
    for (size_t round = 0; round < 20; round++)
        for (size_t i = 0; i < 200; i++) {
            char k[96];
            size_t kl = key_of(a->base + i, k, sizeof(k));
            if ((i + round) % 3 == 0)
                (void)fdn_limiter_reset(a->l, k, kl);
            else
                (void)fdn_limiter_check(a->l, k, kl, &r, 1, 0, NULL);
        }
    return NULL;
}

static void status_key_count_exact_after_concurrent_churn(void **state)
{
    (void)state;
    fdn_limiter_t *l = make_sharded(NULL, 100000, FDN_LIMIT_OVERFLOW_DENY_NEW);
    pthread_t t[2];
    churn_arg_t a[2] = {{l, 0}, {l, 100000}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, &a[i]), 0);
    for (int i = 0; i < 200; i++) { /* reads during the churn: never more than were made */
        fdn_limiter_backend_status_t bs;
        assert_int_equal(fdn_limiter_backend_status(l, &bs), 0);
        assert_true(bs.keys <= 400);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fdn_limiter_stats_t st;
    assert_int_equal(fdn_limiter_stats(l, &st), 0);
    /* round 19 leaves key i live unless (i + 19) % 3 == 0 */
    uint64_t want = 0;
    for (size_t i = 0; i < 200; i++)
        want += (i + 19) % 3 != 0;
    expect_counts_agree(l, 2 * want);
    fdn_limiter_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_keys_keep_their_counts),
        cmocka_unit_test(sweep_keeps_live_keys),
        cmocka_unit_test(huge_table_grows_and_shrinks),
        cmocka_unit_test(lru_order_survives_moves),
        cmocka_unit_test(status_key_count_is_exact_at_rest),
        cmocka_unit_test(status_key_count_exact_after_concurrent_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
