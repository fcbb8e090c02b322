/* Internal: UTF-8 validation. */
#ifndef FDN_CORE_UTF8_H
#define FDN_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..len) (1..4), or 0 when invalid (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). len must be > 0. */
size_t fdn__utf8_seq(const unsigned char *s, size_t len);

#endif
