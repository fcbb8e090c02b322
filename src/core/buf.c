/*
 * DESIGN: the growable byte buffer (buf.h). No state beyond the caller's struct.
 */
#include <stdint.h>
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
