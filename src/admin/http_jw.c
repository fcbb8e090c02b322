/*
 * DESIGN: the admin's JSON text writer (http_jw.h): a handler that answers often with a small
 * body (GET /health) writes the text directly instead of building a jansson tree and dumping
 * it. Escaping follows jansson's compact output for the same strings ("\"", "\\", \b \f \n \r
 * \t, other control bytes as \u00XX, '/' left alone), so answers keep their exact form; bytes
 * that do not form valid UTF-8 (which jansson refuses to hold) become \ufffd.
 * Threads: none of its own; a writer belongs to one request. Errors: the first failed append
 * (out of memory) sticks in rc and makes later appends no-ops, so a handler checks once.
 */
#include "admin/http_jw.h"

#include <string.h>

void fdn__jw_raw_grow(fdn__jw_t *w, const char *s, size_t n)
{
    if (w->rc == 0 && fdn__admin_text_put(&w->t, s, n) < 0)
        w->rc = FDN_ENOMEM;
}

void fdn__jw_lit(fdn__jw_t *w, const char *s)
{
    fdn__jw_raw(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid, as for jansson). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

bool fdn__jw_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t u = utf8_len(p); /* stops at the NUL: it is no continuation byte */
        if (u == 0)
            return false;
        p += u;
    }
    return true;
}

/* The escape of c (a control byte, '"' or '\\') as jansson writes it, at e: its length. */
static size_t escape_byte(char e[6], unsigned c)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u001F */
    e[0] = '\\';
    switch (c) {
    case '"':
    case '\\':
        e[1] = (char)c;
        return 2;
    case '\b':
        e[1] = 'b';
        return 2;
    case '\f':
        e[1] = 'f';
        return 2;
    case '\n':
        e[1] = 'n';
        return 2;
    case '\r':
        e[1] = 'r';
        return 2;
    case '\t':
        e[1] = 't';
        return 2;
    default:
        memcpy(e + 1, "u00", 3);
        e[4] = hex[c >> 4];
        e[5] = hex[c & 15];
        return 6;
    }
}

void fdn__jw_text(fdn__jw_t *w, const char *s, size_t n)
{
    const unsigned char *t = (const unsigned char *)s;
    fdn__jw_raw(w, "\"", 1);
    size_t run = 0;
    for (size_t p = 0; p < n; p++) {
        unsigned c = t[p];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run)
            fdn__jw_raw(w, s + run, p - run);
        run = p + 1;
        char e[6];
        fdn__jw_raw(w, e, escape_byte(e, c));
    }
    if (n > run)
        fdn__jw_raw(w, s + run, n - run);
    fdn__jw_raw(w, "\"", 1);
}

void fdn__jw_str(fdn__jw_t *w, const char *s)
{
    if (s == NULL) {
        fdn__jw_raw(w, "null", 4);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    /* the common string, printable ASCII without '"' or '\\', goes out in one piece */
    while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    if (*p == '\0') {
        size_t n = (size_t)(p - (const unsigned char *)s);
        char *o = fdn__jw_reserve(w, n + 2);
        if (o != NULL) {
            o[0] = '"';
            memcpy(o + 1, s, n);
            o[n + 1] = '"';
            fdn__jw_commit(w, n + 2);
        }
        return;
    }
    p = (const unsigned char *)s;
    fdn__jw_raw(w, "\"", 1);
    while (*p != '\0') {
        const unsigned char *run = p; /* bytes that need no escape go out in one append */
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            fdn__jw_raw(w, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        unsigned c = *p;
        if (c >= 0x80) {
            size_t u = utf8_len(p);
            if (u == 0) {
                fdn__jw_raw(w, "\\ufffd", 6);
                p++;
            } else {
                fdn__jw_raw(w, (const char *)p, u);
                p += u;
            }
            continue;
        }
        char e[6];
        size_t n = escape_byte(e, c);
        fdn__jw_raw(w, e, n);
        p++;
    }
    fdn__jw_raw(w, "\"", 1);
}

void fdn__jw_key(fdn__jw_t *w, const char *key)
{
    fdn__jw_str(w, key);
    fdn__jw_raw(w, ":", 1);
}

/* two digits at a time: half the divisions of a digit loop */
static const char DIGITS2[] = "00010203040506070809101112131415161718192021222324252627282930313233"
                              "34353637383940414243444546474849505152535455565758596061626364656667"
                              "6869707172737475767778798081828384858687888990919293949596979899";

size_t fdn__jw_fmt_u64(char *out, uint64_t v)
{
    char b[20];
    char *e = b + sizeof b, *p = e;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = DIGITS2[r + 1];
        *--p = DIGITS2[r];
    }
    if (v >= 10) {
        *--p = DIGITS2[v * 2 + 1];
        *--p = DIGITS2[v * 2];
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(e - p);
    memcpy(out, p, n);
    return n;
}

size_t fdn__jw_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fdn__jw_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fdn__jw_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

void fdn__jw_i64(fdn__jw_t *w, int64_t v)
{
    char b[24];
    fdn__jw_raw(w, b, fdn__jw_fmt_i64(b, v));
}

void fdn__jw_u64(fdn__jw_t *w, uint64_t v)
{
    char b[24];
    fdn__jw_raw(w, b, fdn__jw_fmt_u64(b, v));
}

char *fdn__jw_reserve(fdn__jw_t *w, size_t n)
{
    fdn__admin_text_t *t = &w->t;
    if (w->rc != 0)
        return NULL;
    if (t->cap - t->len <= n) {
        size_t len = t->len;
        /* grow through the text's own rule, then take the bytes back */
        if (n > SIZE_MAX / 2 || fdn__admin_text_put(t, NULL, 0) < 0) {
            w->rc = FDN_ENOMEM;
            return NULL;
        }
        size_t cap = t->cap;
        while (cap - len <= n)
            cap *= 2;
        if (cap != t->cap) {
            char *p = fdn_realloc(t->p, cap);
            if (p == NULL) {
                w->rc = FDN_ENOMEM;
                return NULL;
            }
            t->p = p;
            t->cap = cap;
        }
    }
    return t->p + t->len;
}

void fdn__jw_commit(fdn__jw_t *w, size_t n)
{
    w->t.len += n;
    w->t.p[w->t.len] = '\0';
}

void fdn__jw_bool(fdn__jw_t *w, bool v)
{
    if (v)
        fdn__jw_raw(w, "true", 4);
    else
        fdn__jw_raw(w, "false", 5);
}
