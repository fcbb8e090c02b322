/*
 * DESIGN: the library's one string hash: SipHash-1-3 under a per-process random key (see
 * hash.h for why it is keyed).
 *
 * The key is drawn from getrandom() on the first call (pthread_once); when the kernel
 * cannot give random bytes (a very early boot, seccomp) it falls back to a mix of the
 * monotonic and real-time clocks, the pid and an address, which still differs between
 * processes. After that first call the key is read-only, so the hash itself takes no lock
 * and has no shared writes.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"

static uint8_t g_key[16];
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

uint64_t fdn__siphash(const uint8_t key[16], const void *p, size_t n, unsigned c_rounds,
                      unsigned d_rounds)
{
    const uint8_t *in = p;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)n << 56;

    for (; n >= 8; n -= 8, in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        for (unsigned r = 0; r < c_rounds; r++)
            SIPROUND;
        v0 ^= m;
    }
    switch (n) { /* the last 0..7 bytes, little-endian, under the length byte */
    case 7:
        b |= (uint64_t)in[6] << 48;
        /* fall through */
    case 6:
        b |= (uint64_t)in[5] << 40;
        /* fall through */
    case 5:
        b |= (uint64_t)in[4] << 32;
        /* fall through */
    case 4:
        b |= (uint64_t)in[3] << 24;
        /* fall through */
    case 3:
        b |= (uint64_t)in[2] << 16;
        /* fall through */
    case 2:
        b |= (uint64_t)in[1] << 8;
        /* fall through */
    case 1:
        b |= (uint64_t)in[0];
        break;
    default:
        break;
    }
    v3 ^= b;
    for (unsigned r = 0; r < c_rounds; r++)
        SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    for (unsigned r = 0; r < d_rounds; r++)
        SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t siphash13(const uint8_t key[16], const void *p, size_t n)
{
    return fdn__siphash(key, p, n, 1, 3);
}

static void key_init(void)
{
    size_t got = 0;
    while (got < sizeof(g_key)) {
        ssize_t r = getrandom(g_key + got, sizeof(g_key) - got, GRND_NONBLOCK);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == sizeof(g_key))
        return;
    /* No entropy from the kernel: still different per process and per start. */
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    uint64_t mix[4] = {(uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec,
                       (uint64_t)real.tv_sec * 1000000000ULL + (uint64_t)real.tv_nsec,
                       (uint64_t)getpid(), (uint64_t)(uintptr_t)&mix};
    static const uint8_t fixed[16] = {0x46, 0x64, 0x6e, 0x2d, 0x68, 0x61, 0x73, 0x68,
                                      0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x76, 0x31, 0x00};
    uint64_t k0 = siphash13(fixed, mix, sizeof(mix));
    mix[0] ^= k0;
    uint64_t k1 = siphash13(fixed, mix, sizeof(mix));
    memcpy(g_key, &k0, 8);
    memcpy(g_key + 8, &k1, 8);
}

uint64_t fdn__hash(const void *p, size_t n)
{
    (void)pthread_once(&g_key_once, key_init);
    return siphash13(g_key, p, n);
}

uint64_t fdn__hash_str(const char *s)
{
    return fdn__hash(s, strlen(s));
}
