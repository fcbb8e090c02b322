/* jansson and the library's allocator.
 *
 * A custom allocator (fdn_set_allocator) is installed as jansson's too, through wrappers
 * that note, per thread, when an allocation failed. jansson does not report that reliably
 * itself: a parse that runs out of memory fails with "invalid token" or no error code at
 * all, which callers would turn into a validation error. A caller that must tell the two
 * apart clears the note, makes its jansson calls on this thread, then asks:
 *
 *     fdn__json_oom_clear();
 *     json_t *s = json_string(text);
 *     if (s == NULL && fdn__json_oom())
 *         return FDN_ENOMEM;        (else: text was not UTF-8)
 *
 * With the default allocator jansson uses malloc directly and the note stays clear.
 *
 * Encoding: jansson 2.14's json_dumps ignores a failed append of an object key to its growing
 * buffer and returns the text without it (valid JSON that is not the value). Encode with the
 * public fdn_json_dumps (two passes of json_dumpb, whose writes cannot fail; json.c), never
 * jansson's json_dumps; ctest check_json_parse checks.
 *
 * A parse can also run out of memory and still return a value: jansson 2.14's lexer ignores a
 * failed growth of its token buffer and goes on with the text cut short (a key or string
 * truncated, so an unknown key or a wrong value), or reads past the end of that buffer (a
 * crash). Parse with fdn__json_loadb / fdn__json_load_file: they keep such a parse on whole
 * tokens (json.c) and discard its value when the note is set, whatever jansson returned.
 * Nothing else in src/ calls jansson's parsers (ctest check_json_parse,
 * scripts/check-json-parse.sh); the fdn_admin library, which may use only the public API,
 * parses with fdn_json_loadb (fdn/common.h), a wrapper of fdn__json_loadb.
 */
#ifndef FDN_CORE_JSON_H
#define FDN_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Install (custom == true) or remove jansson's hook into the library allocator. */
void fdn__json_use_library_allocator(bool custom);

/* Forget earlier failed jansson allocations of this thread. */
void fdn__json_oom_clear(void);

/* True when a jansson allocation failed on this thread since fdn__json_oom_clear. */
bool fdn__json_oom(void);

/* json_loadb that fails with *oom set (and NULL returned) when any jansson allocation failed
 * during the parse, even one jansson went on without; else *oom is false and the result is
 * json_loadb's (NULL with *jerr for bad text). */
json_t *fdn__json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, bool *oom);

/* The same for json_load_file. */
json_t *fdn__json_load_file(const char *path, size_t flags, json_error_t *jerr, bool *oom);

#endif
