/*
 * DESIGN: the library's one string hash: XXH3 (libxxhash) under a per-process random secret
 * (see hash.h for why it is keyed).
 *
 * XXH3_64bits_withSecret mixes every input word with words of a 192-byte secret; with a
 * secret drawn from getrandom() a client that cannot read this process's memory cannot
 * compute colliding keys in advance. (A seed would not do: XXH3 derives its secret from a
 * 64-bit seed by a public rule.) XXH3 is chosen over SipHash-1-3 for speed: limiter keys and
 * registry names are short, and on them XXH3 costs a few nanoseconds where SipHash-1-3 made a
 * limiter check about 15 ns (25 %) slower.
 *
 * The secret is drawn on the first call (pthread_once behind an acquire flag, so later calls
 * pay one load). When the kernel cannot give random bytes (a very early boot, seccomp) it is
 * expanded from the monotonic and real-time clocks, the pid and an address, which still
 * differ between processes. After that first call the secret is read-only: the hash takes no
 * lock and writes nothing shared.
 *
 * The same hash under a secret the caller keeps (fdn__hash_keyed, fdn__hash_secret_fill)
 * serves keys written to disk: the SQLite event file keeps its own secret, so the hashes it
 * stores stay valid across processes and still cannot be computed by a client.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/hash.h"

_Static_assert(FDN__HASH_SECRET_SIZE == XXH3_SECRET_DEFAULT_SIZE, "the secret's size");

static _Alignas(64) unsigned char g_secret[FDN__HASH_SECRET_SIZE];
static atomic_bool g_ready;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* splitmix64: expands the fallback entropy into the secret. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void fdn__hash_secret_fill(unsigned char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, GRND_NONBLOCK);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n) {
        struct timespec mono, real;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &real);
        uint64_t x = (uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec;
        x ^= splitmix(&x) ^ ((uint64_t)real.tv_sec * 1000000000ULL + (uint64_t)real.tv_nsec);
        x ^= splitmix(&x) ^ (uint64_t)getpid();
        x ^= splitmix(&x) ^ (uint64_t)(uintptr_t)&x;
        for (size_t i = got; i < n; i += 8) {
            uint64_t w = splitmix(&x);
            memcpy(out + i, &w, n - i < 8 ? n - i : 8);
        }
    }
}

static void secret_init(void)
{
    fdn__hash_secret_fill(g_secret, sizeof(g_secret));
    atomic_store_explicit(&g_ready, true, memory_order_release);
}

uint64_t fdn__hash(const void *p, size_t n)
{
    if (__builtin_expect(!atomic_load_explicit(&g_ready, memory_order_acquire), 0))
        (void)pthread_once(&g_once, secret_init);
    return XXH3_64bits_withSecret(n > 0 ? p : "", n, g_secret, sizeof(g_secret));
}

uint64_t fdn__hash_keyed(const unsigned char *secret, const void *p, size_t n)
{
    return XXH3_64bits_withSecret(n > 0 ? p : "", n, secret, FDN__HASH_SECRET_SIZE);
}

uint64_t fdn__hash_str(const char *s)
{
    return fdn__hash(s, strlen(s));
}
