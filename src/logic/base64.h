/* base64 (RFC 4648, standard alphabet, padded), pure: one codec for the library (the event
 * JSON codec's data_base64, the etcd gateway's keys and values). Decoding is strict (the
 * alphabet, '=' padding to a multiple of 4, zero trailing bits), so a decoded text encodes back
 * to exactly its input. No allocation, no state; any thread. */
#ifndef FDN_LOGIC_BASE64_H
#define FDN_LOGIC_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include <fdn/error.h>

/* Bytes fdn__b64_encode writes for n input bytes, without the NUL. */
size_t fdn__b64_encoded_len(size_t n);

/* Encode src[0..n) into dst (cap >= fdn__b64_encoded_len(n) + 1, NUL-terminated). Returns the
 * length written (without the NUL). */
size_t fdn__b64_encode(char *dst, size_t cap, const void *src, size_t n);

/* Decode src[0..n) (strict: alphabet, '=' padding to a multiple of 4, zero trailing bits)
 * into dst (cap >= n / 4 * 3). Returns the decoded length (>= 0) or FDN_EPARSE. */
int64_t fdn__b64_decode(void *dst, size_t cap, const char *src, size_t n);

#endif
