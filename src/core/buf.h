/* A growable byte buffer: the library's one way to build text of unknown length (HTTP
 * bodies, the Prometheus exposition).
 *
 * Appends never fail loudly: on out-of-memory the buffer remembers it (`oom`) and ignores
 * further appends, so a writer appends freely and checks once at the end. The text is kept
 * NUL-terminated after every successful append. Memory comes from the library allocator;
 * the owner frees `p` with fdn__free (or hands it to a caller that frees it with fdn_free).
 * Threads: none of its own; a buffer belongs to one thread at a time.
 */
#ifndef FDN_CORE_BUF_H
#define FDN_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fdn__buf {
    char *p;    /* the text, NUL-terminated (NULL before the first append) */
    size_t len; /* bytes in p, without the NUL */
    size_t cap; /* bytes allocated */
    bool oom;   /* an append ran out of memory; the text stops before it */
} fdn__buf_t;

#define FDN__BUF_INIT {NULL, 0, 0, false}

/* Append n bytes (capacity doubles from 256 bytes). */
void fdn__buf_put(fdn__buf_t *b, const void *s, size_t n);

/* Append a NUL-terminated string. */
void fdn__buf_puts(fdn__buf_t *b, const char *s);

#endif
