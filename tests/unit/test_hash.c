/* Unit tests: the keyed string hash (src/core/hash.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/hash.h"

static void stable_within_the_process(void **state)
{
    (void)state;
    const char *s = "client-42";
    uint64_t h = fdn__hash(s, strlen(s));
    assert_int_equal(fdn__hash(s, strlen(s)), h);
    assert_int_equal(fdn__hash_str(s), h);
    assert_int_equal(fdn__hash(NULL, 0), fdn__hash("", 0));
    /* every length and every byte position matter */
    assert_true(fdn__hash(s, strlen(s) - 1) != h);
    assert_true(fdn__hash("client-43", 9) != h);
    assert_true(fdn__hash("dlient-42", 9) != h);
}

/* Keyed: not the public XXH3 an attacker can compute, nor XXH3 under a small seed. For 200
 * keys of every length from 0 to 199 bytes none matches (a false failure has odds 2^-56). */
static void keyed_not_the_public_function(void **state)
{
    (void)state;
    char buf[200];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + i % 26);
    for (size_t n = 0; n < sizeof(buf); n++) {
        uint64_t h = fdn__hash(buf, n);
        assert_true(h != XXH3_64bits(buf, n));
        for (uint64_t seed = 0; seed < 4; seed++)
            assert_true(h != XXH3_64bits_withSeed(buf, n, seed));
    }
}

/* Distinct short keys spread over buckets: 64 k keys into 1,024 buckets, no bucket holds more
 * than three times its share (a broken mix puts them in a few). */
static void short_keys_spread(void **state)
{
    (void)state;
    enum { KEYS = 65536, BUCKETS = 1024 };
    static unsigned count[BUCKETS];
    memset(count, 0, sizeof(count));
    char k[32];
    for (unsigned i = 0; i < KEYS; i++) {
        int n = snprintf(k, sizeof(k), "user-%u", i);
        count[fdn__hash(k, (size_t)n) & (BUCKETS - 1)]++;
    }
    for (unsigned b = 0; b < BUCKETS; b++)
        assert_true(count[b] <= 3 * KEYS / BUCKETS);
}

/* fdn__bytes_eq agrees with memcmp for every length 0..64 and a difference at every byte
 * position (the word paths read the first and last words of a key, overlapping). Buffers are
 * exactly n bytes (heap), so a read past either end is an ASan report. */
static void bytes_eq_matches_memcmp(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 64; n++) {
        char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        assert_non_null(a);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = (char)('a' + (i * 7) % 26);
        assert_true(fdn__bytes_eq(a, b, n));
        for (size_t i = 0; i < n; i++) {
            b[i] ^= 0x20;
            assert_false(fdn__bytes_eq(a, b, n));
            b[i] ^= 0x20;
            b[i] ^= (char)0x80; /* a difference in the top bit too */
            assert_false(fdn__bytes_eq(a, b, n));
            b[i] ^= (char)0x80;
        }
        assert_true(fdn__bytes_eq(a, b, n));
        free(a);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stable_within_the_process),
        cmocka_unit_test(keyed_not_the_public_function),
        cmocka_unit_test(short_keys_spread),
        cmocka_unit_test(bytes_eq_matches_memcmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
