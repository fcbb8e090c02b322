/*
 * A minimal JSON text writer for the admin's hot answers (GET /health): appends to an
 * fdn__admin_text_t with a sticky error, so a handler writes its body in one pass without
 * building a jansson tree and dumping it (which cost GET /health ~150 k instructions a request).
 * The caller places the commas and braces; strings are escaped here.
 */
#ifndef FDN_ADMIN_HTTP_JW_H
#define FDN_ADMIN_HTTP_JW_H

#include "admin/admin_int.h"

#include <string.h>

/* fdn__jw_t (typedef in admin_int.h): zero-initialise; the owner frees t.p with fdn_free */
struct fdn__jw {
    fdn__admin_text_t t;
    int rc; /**< 0, or FDN_ENOMEM once an append failed (later appends do nothing) */
};

/** Append raw text through the text's growth (fdn__jw_raw when it does not fit). */
void fdn__jw_raw_grow(fdn__jw_t *w, const char *s, size_t n);

/** Append raw text (already valid JSON syntax). Inline: a piece that fits (with the NUL) is
 *  one copy, no call (the hot answers write dozens of short pieces). */
static inline void fdn__jw_raw(fdn__jw_t *w, const char *s, size_t n)
{
    fdn__admin_text_t *t = &w->t;
    if (w->rc == 0 && t->cap - t->len > n) {
        memcpy(t->p + t->len, s, n);
        t->len += n;
        t->p[t->len] = '\0';
        return;
    }
    fdn__jw_raw_grow(w, s, n);
}
/** Append a NUL-terminated literal. */
void fdn__jw_lit(fdn__jw_t *w, const char *s);
/** Append s as a JSON string: quotes, `"` `\` and control bytes escaped, a byte that is not
 *  part of valid UTF-8 written as \ufffd. NULL is written as null. */
void fdn__jw_str(fdn__jw_t *w, const char *s);
/** Whether the NUL-terminated s is valid UTF-8 (as jansson decides: no overlong forms, no
 *  surrogates, nothing above U+10FFFF). */
bool fdn__jw_utf8_valid(const char *s);
/** Append the n bytes at s, valid UTF-8 that may hold NULs, as a JSON string the way jansson
 *  dumps json_stringn: quotes, `"` `\` and control bytes (NUL included) escaped. */
void fdn__jw_text(fdn__jw_t *w, const char *s, size_t n);
/** Append "key": (key escaped as fdn__jw_str). */
void fdn__jw_key(fdn__jw_t *w, const char *key);
/** Append a decimal integer. */
void fdn__jw_i64(fdn__jw_t *w, int64_t v);
/** Append an unsigned decimal integer. */
void fdn__jw_u64(fdn__jw_t *w, uint64_t v);
/** Format v in decimal at out (room for 20 bytes); @return the length (no NUL written). */
size_t fdn__jw_fmt_u64(char *out, uint64_t v);
/** Format v in decimal at out (room for 20 bytes); @return the length (no NUL written). */
size_t fdn__jw_fmt_i64(char *out, int64_t v);
/** Room for n more bytes (and the NUL) at the end of the text: where to write them, or NULL
 *  once an append failed (rc set). Then fdn__jw_commit(w, k) for the k <= n bytes written. */
char *fdn__jw_reserve(fdn__jw_t *w, size_t n);
/** Count k bytes written at what fdn__jw_reserve returned, and terminate the text. */
void fdn__jw_commit(fdn__jw_t *w, size_t k);
/** Append true or false. */
void fdn__jw_bool(fdn__jw_t *w, bool v);

#endif /* FDN_ADMIN_HTTP_JW_H */
