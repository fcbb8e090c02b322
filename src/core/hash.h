/* Keyed string hashing for every hash table in the library.
 *
 * One function, SipHash-1-3 with a 128-bit key drawn from getrandom() once per process.
 * Limiter keys, event types, registry names and metric names come from callers and, through
 * the HTTP API, from remote clients: with a fixed, unkeyed hash (FNV and friends) a client can
 * compute in advance many keys that land in one bucket and turn every lookup into a scan.
 * With a secret per-process key it cannot. SipHash-1-3 (one compression round, three
 * finalisation rounds) is the variant Rust's and Python's hash tables use for exactly this.
 *
 * Threads: any. The key is set once (pthread_once) before the first hash and never changes.
 */
#ifndef FDN_CORE_HASH_H
#define FDN_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The keyed hash of the n bytes at p (p may be NULL when n is 0). */
uint64_t fdn__hash(const void *p, size_t n);

/* The same hash of a NUL-terminated string (its bytes, not the NUL). */
uint64_t fdn__hash_str(const char *s);

/* SipHash-c-d of the n bytes at p under the given key: fdn__hash is (1, 3) under the
 * process key. Exposed for the known-answer tests (the published vectors are for (2, 4)). */
uint64_t fdn__siphash(const uint8_t key[16], const void *p, size_t n, unsigned c_rounds,
                      unsigned d_rounds);

#endif
