/*
 * DESIGN: the text builders (buf.h). No state beyond the caller's structs.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

void fdn__buf_put(fdn__buf_t *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *np = fdn__realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void fdn__buf_puts(fdn__buf_t *b, const char *s)
{
    fdn__buf_put(b, s, strlen(s));
}

void fdn__tw_put(fdn__tw_t *w, const char *s, size_t n)
{
    /* what fits before the terminator's byte is stored; len counts all of it */
    size_t room = w->len + 1 < w->cap ? w->cap - 1 - w->len : 0;
    if (room > 0)
        memcpy(w->buf + w->len, s, n < room ? n : room);
    w->len += n;
}

void fdn__tw_fmt(fdn__tw_t *w, const char *fmt, ...)
{
    char tmp[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fdn__tw_put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

size_t fdn__tw_end(fdn__tw_t *w)
{
    if (w->cap > 0)
        w->buf[w->len < w->cap ? w->len : w->cap - 1] = '\0';
    return w->len;
}
