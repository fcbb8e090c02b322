/*
 * DESIGN: base64 (logic/base64.h). Encoding fills whole 4-character groups, padding the last;
 * decoding checks the alphabet, where '=' may stand (only at the end, at most two), and that
 * the bits the padding drops are zero: canonical input only.
 * Threads: none; no globals beyond the constant alphabet.
 */
#include "logic/base64.h"

#include <stdbool.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fdn__b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t fdn__b64_encode(char *dst, size_t cap, const void *src, size_t n)
{
    const unsigned char *s = src;
    size_t need = fdn__b64_encoded_len(n);
    if (cap < need + 1) {
        if (cap > 0)
            dst[0] = '\0';
        return 0;
    }
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        dst[o++] = B64[v >> 18];
        dst[o++] = B64[(v >> 12) & 63];
        dst[o++] = B64[(v >> 6) & 63];
        dst[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        dst[o++] = B64[v >> 18];
        dst[o++] = B64[(v >> 12) & 63];
        dst[o++] = '=';
        dst[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        dst[o++] = B64[v >> 18];
        dst[o++] = B64[(v >> 12) & 63];
        dst[o++] = B64[(v >> 6) & 63];
        dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int64_t fdn__b64_decode(void *dst, size_t cap, const char *src, size_t n)
{
    unsigned char *d = dst;
    if (n % 4 != 0)
        return FDN_EPARSE;
    if (n == 0)
        return 0;
    size_t pad = 0;
    if (src[n - 1] == '=')
        pad = src[n - 2] == '=' ? 2 : 1;
    size_t out = n / 4 * 3 - pad;
    if (cap < out)
        return FDN_EPARSE;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = src[i + (size_t)k];
            if (c == '=' && last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(c);
            if (v[k] < 0)
                return FDN_EPARSE;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        d[o++] = (unsigned char)(w >> 16);
        if (!last || pad < 2)
            d[o++] = (unsigned char)(w >> 8);
        if (!last || pad < 1)
            d[o++] = (unsigned char)w;
        /* canonical: the bits the padding drops must be zero */
        if (last && pad == 2 && (w & 0xffff) != 0)
            return FDN_EPARSE;
        if (last && pad == 1 && (w & 0xff) != 0)
            return FDN_EPARSE;
    }
    return (int64_t)o;
}
