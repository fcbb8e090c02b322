/* Keyed string hashing for every hash table in the library.
 *
 * One function: XXH3 (Debian's libxxhash) under a 192-byte secret drawn from getrandom() once
 * per process. Limiter keys, event types, registry names and metric names come from callers
 * and, through the HTTP API, from remote clients: with a fixed, unkeyed hash (FNV and
 * friends) a client can compute in advance many keys that land in one bucket and turn every
 * lookup into a scan. With a secret per process it cannot.
 *
 * Threads: any. The secret is set once (pthread_once) before the first hash and never changes.
 */
#ifndef FDN_CORE_HASH_H
#define FDN_CORE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The keyed hash of the n bytes at p (p may be NULL when n is 0). */
uint64_t fdn__hash(const void *p, size_t n);

/* The same hash of a NUL-terminated string (its bytes, not the NUL). */
uint64_t fdn__hash_str(const char *s);

/* The size of a secret for fdn__hash_keyed. */
#define FDN__HASH_SECRET_SIZE 192

/* Fill a secret of n bytes from getrandom() (the clocks, the pid and an address when the
 * kernel gives none). */
void fdn__hash_secret_fill(unsigned char *out, size_t n);

/* The same hash under the caller's FDN__HASH_SECRET_SIZE-byte secret: stable for as long as
 * the caller keeps the secret (on disk, say), and as hard to collide on purpose. */
uint64_t fdn__hash_keyed(const unsigned char *secret, const void *p, size_t n);

/* Whether the n bytes at a and b are equal: the comparison after a hash match. Keys of 4 to 32
 * bytes (most limiter keys, event types, node names and correlation ids) compare as two or
 * four overlapping words each, inline, without a call to memcmp; keys of 0 to 3 bytes (a short
 * host name as an event's node) as their first, middle and last bytes. */
static inline bool fdn__bytes_eq(const void *a, const void *b, size_t n)
{
    const char *x = a, *y = b;
    if (n > 16 && n <= 32) {
        uint64_t x0, y0, x1, y1, x2, y2, x3, y3;
        memcpy(&x0, x, 8);
        memcpy(&y0, y, 8);
        memcpy(&x1, x + 8, 8);
        memcpy(&y1, y + 8, 8);
        memcpy(&x2, x + n - 16, 8);
        memcpy(&y2, y + n - 16, 8);
        memcpy(&x3, x + n - 8, 8);
        memcpy(&y3, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1) | (x2 ^ y2) | (x3 ^ y3)) == 0;
    }
    if (n >= 8 && n <= 16) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, x, 8);
        memcpy(&y0, y, 8);
        memcpy(&x1, x + n - 8, 8);
        memcpy(&y1, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, x, 4);
        memcpy(&y0, y, 4);
        memcpy(&x1, x + n - 4, 4);
        memcpy(&y1, y + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n < 4) /* 1: byte 0 thrice; 2: bytes 0, 1, 1; 3: bytes 0, 1, 2 */
        return n == 0 || (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
    return memcmp(x, y, n) == 0;
}

#endif
