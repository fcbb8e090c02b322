/**
 * @file common.h
 * @brief Shared definitions for every Foundation header: export macros, C++ guards,
 *        the allocator hook and library-owned memory release.
 *
 * @since 0.1.0
 */
#ifndef FDN_COMMON_H
#define FDN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(_WIN32)
#define FDN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define FDN_API __attribute__((visibility("default")))
#else
/** Marks a symbol of the public API (exported from the shared library). */
#define FDN_API
#endif

#ifdef __cplusplus
#define FDN_BEGIN_DECLS extern "C" {
#define FDN_END_DECLS   }
#else
/** Opens the C linkage block of a header (extern "C" in C++). */
#define FDN_BEGIN_DECLS
/** Closes the block opened by FDN_BEGIN_DECLS. */
#define FDN_END_DECLS
#endif

#if defined(__GNUC__)
#define FDN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define FDN_NODISCARD         __attribute__((warn_unused_result))
#else
/** printf-style format checking of the arguments (GCC, Clang). */
#define FDN_PRINTF(fmt, args)
/** Warn when the result of the function is ignored (GCC, Clang). */
#define FDN_NODISCARD
#endif

/** Success. Every fallible function returns 0 or a negative FDN_E* code (see error.h). */
#define FDN_OK 0

FDN_BEGIN_DECLS

/**
 * Allocator functions used for every allocation the library makes.
 * All three must be thread-safe. `free_fn` accepts NULL.
 */
typedef struct fdn_allocator {
    void *(*malloc_fn)(size_t size);             /**< like malloc */
    void *(*realloc_fn)(void *ptr, size_t size); /**< like realloc */
    void (*free_fn)(void *ptr);                  /**< like free */
} fdn_allocator_t;

/**
 * Replace the library's allocator.
 *
 * Every allocation the library makes goes through it, including those of jansson, which
 * builds the library's JSON (config tree, event data, HTTP bodies): a custom allocator is also
 * installed as jansson's (json_set_alloc_funcs), and NULL gives jansson back malloc and free.
 * jansson's allocator is process-wide: if the program uses jansson itself, call this before
 * the program creates any jansson value, so that every value is freed by the allocator that
 * made it. With the default allocator (never set, or NULL) a table of 2 MiB or more (the
 * in-memory limiter's slots) is mapped with mmap instead, on a 2 MiB boundary and advised to
 * use transparent huge pages; with a custom allocator it comes from the allocator too.
 * @param[in] a  the allocator; NULL restores malloc/realloc/free.
 * @return 0, or FDN_EINVAL if a function pointer is missing.
 * @thread_safety init: call before any other fdn call.
 * @since 0.1.0
 */
FDN_API int fdn_set_allocator(const fdn_allocator_t *a);

/**
 * Free memory that the library allocated and handed to the caller (strings, JSON text,
 * snapshots documented as "free with fdn_free").
 * @param[in] p  the pointer; NULL is accepted.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void fdn_free(void *p);

/**
 * Allocate size bytes with the library's allocator (fdn_set_allocator), for memory that the
 * library will release with fdn_free, such as an fdn_admin_metrics_fn's buffer. Code built on
 * the public API only (the fdn_admin library) allocates through these three as well.
 * Saves and restores errno.
 * @param[in] size  bytes; 0 is treated as 1.
 * @return the memory, or NULL when out of memory.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void *fdn_malloc(size_t size);

/**
 * Allocate n * size zeroed bytes with the library's allocator; release with fdn_free.
 * @param[in] n     element count
 * @param[in] size  element size
 * @return the memory, or NULL when out of memory or when n * size overflows.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void *fdn_calloc(size_t n, size_t size);

/**
 * Resize memory from fdn_malloc, fdn_calloc or fdn_realloc (or NULL: allocate) with the
 * library's allocator; release with fdn_free.
 * @param[in] p     the memory, or NULL
 * @param[in] size  new size in bytes; 0 is treated as 1.
 * @return the memory (possibly moved), or NULL when out of memory (p is then untouched).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API void *fdn_realloc(void *p, size_t size);

/**
 * The library's version as "MAJOR.MINOR.PATCH" (a static string).
 * Compare with FDN_VERSION_STRING from version.h to detect header/library mismatches.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_version(void);

/**
 * The library's version as 0xMMmmpp (same encoding as FDN_VERSION_HEX).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API uint32_t fdn_version_hex(void);

struct json_t;       /* jansson's value (jansson.h) */
struct json_error_t; /* jansson's parse error (jansson.h) */

/**
 * Parse JSON text with jansson (json_loadb), telling out-of-memory apart from bad text, for
 * code built on the public API that parses with jansson (the fdn_admin library). Under a
 * custom allocator a plain jansson 2.14 parse that meets a refused allocation can return a
 * value made from truncated text, or read past its buffer; this one fails with FDN_ENOMEM.
 * @param[in]  buf    the text (need not be NUL-terminated)
 * @param[in]  len    its length in bytes
 * @param[in]  flags  jansson's decoding flags (JSON_DECODE_ANY, JSON_REJECT_DUPLICATES, ...)
 * @param[out] out    the value, released with json_decref; NULL on failure
 * @param[out] jerr   where the text is bad (FDN_EPARSE); may be NULL
 * @return 0; FDN_EPARSE (not JSON); FDN_ENOMEM; FDN_EINVAL (buf or out NULL)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_json_loadb(const char *buf, size_t len, size_t flags, struct json_t **out,
                           struct json_error_t *jerr);

/**
 * Encode a jansson value as JSON text (as json_dumps), whole or not at all. jansson 2.14's
 * json_dumps leaves an object key out of its text when growing its buffer fails and returns
 * the rest (valid JSON, not the value); this one returns FDN_ENOMEM instead.
 * @param[in]  v      the value (cycles are refused by jansson: FDN_ENOMEM)
 * @param[in]  flags  jansson's encoding flags (JSON_COMPACT, JSON_ENCODE_ANY, JSON_SORT_KEYS, ...)
 * @param[out] out    the NUL-terminated text, released with fdn_free; NULL on failure
 * @param[out] len    its length in bytes, without the NUL; may be NULL
 * @return 0; FDN_ENOMEM; FDN_EINVAL (v or out NULL, or v neither an object nor an array
 *         without JSON_ENCODE_ANY)
 * @thread_safety any
 * @since 0.3.0
 */
FDN_API int fdn_json_dumps(const struct json_t *v, size_t flags, char **out, size_t *len);

FDN_END_DECLS

#endif /* FDN_COMMON_H */
