/* Text builders: a growable byte buffer (fdn__buf_t), the library's one way to build text of
 * unknown length (HTTP bodies, the Prometheus exposition), and a bounded writer (fdn__tw_t)
 * for text written into a caller's fixed buffer the way snprintf does (errors, breadcrumbs).
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

/* A bounded text writer over a caller's buffer of cap bytes: it counts the full length of
 * everything written and stores what fits, leaving room for the NUL; fdn__tw_end terminates
 * the text and returns the full length (as snprintf: >= cap means it was cut). */
typedef struct fdn__tw {
    char *buf;
    size_t cap;
    size_t len;
} fdn__tw_t;

#define FDN__TW_INIT(buf, cap) {(buf), (cap), 0}

/* Write n bytes. */
void fdn__tw_put(fdn__tw_t *w, const char *s, size_t n);

/* Write printf-style text (each call at most 159 bytes; longer output is cut). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void fdn__tw_fmt(fdn__tw_t *w, const char *fmt, ...);

/* NUL-terminate what was stored (when cap > 0) and return the full length. */
size_t fdn__tw_end(fdn__tw_t *w);

#endif
