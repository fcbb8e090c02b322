/* Unit tests: the keyed string hash (src/core/hash.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/hash.h"

/* The SipHash-2-4 vectors of the SipHash paper (key 00..0f, message 00..len-1). The same
 * function with (1, 3) rounds is the library's hash, so these check the message schedule,
 * the tail handling for every length mod 8 and the finalisation. */
static const uint64_t k_vectors_24[16] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
};

static void siphash_24_matches_published_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[16];
    for (unsigned i = 0; i < 16; i++)
        key[i] = msg[i] = (uint8_t)i;
    for (size_t len = 0; len < 16; len++)
        assert_int_equal(fdn__siphash(key, msg, len, 2, 4), k_vectors_24[len]);
}

static void process_hash_is_keyed_and_stable(void **state)
{
    (void)state;
    const char *s = "client-42";
    uint64_t h = fdn__hash(s, strlen(s));
    assert_int_equal(fdn__hash(s, strlen(s)), h);
    assert_int_equal(fdn__hash_str(s), h);
    /* Not the unkeyed function: the process key is random, so SipHash-1-3 under the
     * all-zero key differs from the process hash (a 2^-64 chance of a false failure). */
    static const uint8_t zero[16];
    assert_true(fdn__siphash(zero, s, strlen(s), 1, 3) != h);
    /* Every length and every byte position matter. */
    assert_true(fdn__hash(s, strlen(s) - 1) != h);
    assert_true(fdn__hash("client-43", 9) != h);
    assert_int_equal(fdn__hash(NULL, 0), fdn__hash("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(siphash_24_matches_published_vectors),
        cmocka_unit_test(process_hash_is_keyed_and_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
