/*
 * DESIGN: CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slice-by-8 with tables built
 * once (pthread_once). Pure: the tables are immutable after initialisation.
 * Check value: crc32c("123456789") = 0xE3069283.
 * On x86-64 CPUs with SSE4.2 the CRC32 instruction (which computes this same polynomial) is
 * used instead, chosen once at first use; fdn__crc32c_sw stays the portable reference and
 * the tests check that both agree.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "logic/event_int.h"

static uint32_t g_tab[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        g_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            g_tab[t][i] = (g_tab[t - 1][i] >> 8) ^ g_tab[0][g_tab[t - 1][i] & 0xffu];
}

uint32_t fdn__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&g_once, tables_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = g_tab[7][lo & 0xff] ^ g_tab[6][(lo >> 8) & 0xff] ^ g_tab[5][(lo >> 16) & 0xff] ^
            g_tab[4][lo >> 24] ^ g_tab[3][hi & 0xff] ^ g_tab[2][(hi >> 8) & 0xff] ^
            g_tab[1][(hi >> 16) & 0xff] ^ g_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ g_tab[0][(c ^ *p++) & 0xffu];
    return ~c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

static int g_hw = -1; /* written once under g_hw_once */
static pthread_once_t g_hw_once = PTHREAD_ONCE_INIT;

static void hw_init(void)
{
    __builtin_cpu_init();
    g_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

uint32_t fdn__crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&g_hw_once, hw_init);
    return g_hw ? crc_hw(crc, buf, len) : fdn__crc32c_sw(crc, buf, len);
}
#else
uint32_t fdn__crc32c(uint32_t crc, const void *buf, size_t len)
{
    return fdn__crc32c_sw(crc, buf, len);
}
#endif
