/* Internal interface between error.c and the thread-local error context
 * (error_context.c). */
#ifndef FDN_CORE_ERRCTX_H
#define FDN_CORE_ERRCTX_H

#include <fdn/error.h>

/* Copy the calling thread's current context (correlation id, breadcrumbs, duration) into
 * err. No-op when the thread has no current context. Never allocates. */
void fdn__errctx_fill(fdn_error_t *err);

/* Pop contexts until the calling thread's stack depth is at most `depth` (the task pool uses
 * it so a task that forgot to pop cannot leak contexts into the next task). */
void fdn__errctx_truncate(size_t depth);

/* Length of the longest prefix of buf[0..len) that does not end inside a multi-byte UTF-8
 * character (for text cut to fit a buffer). */
size_t fdn__utf8_whole(const char *buf, size_t len);

/* Set the version and variant bits of 16 random bytes and write them as a UUIDv4 string. */
void fdn__uuid4_format(unsigned char b[16], char out[FDN_UUID_STR_LEN + 1]);

#endif
