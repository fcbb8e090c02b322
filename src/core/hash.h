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

#include <stddef.h>
#include <stdint.h>

/* The keyed hash of the n bytes at p (p may be NULL when n is 0). */
uint64_t fdn__hash(const void *p, size_t n);

/* The same hash of a NUL-terminated string (its bytes, not the NUL). */
uint64_t fdn__hash_str(const char *s);

#endif
