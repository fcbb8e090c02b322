/* Internal allocation helpers. Every allocation in the library goes through these so that
 * fdn_set_allocator() and the fault tests' failing allocator see all of them. They preserve
 * errno. */
#ifndef FDN_CORE_ALLOC_H
#define FDN_CORE_ALLOC_H

#include <stddef.h>
#include <fdn/common.h>

void *fdn__malloc(size_t size);
void *fdn__calloc(size_t n, size_t size);
void *fdn__realloc(void *p, size_t size);
void fdn__free(void *p);
/* Copy of s (NULL when s is NULL or on OOM). */
char *fdn__strdup(const char *s);
/* Copy of the first n bytes of s plus a NUL (NULL on OOM). */
char *fdn__strndup(const char *s, size_t n);
/* Packs the strings at(ctx, i) for i in [0, count) that are not NULL into one block (the
 * array of pointers followed by the strings), so the caller's user releases it with one
 * fdn_free. Sets *out (NULL when there are none) and *n. Returns 0 or FDN_ENOMEM (*out and
 * *n untouched). One allocation, none when there are no strings. */
int fdn__strv_pack(const void *ctx, size_t count, const char *(*at)(const void *ctx, size_t i),
                   char ***out, size_t *n);

/* A large zeroed table read at random (a hash table's slots): fdn__table_alloc fills one in,
 * fdn__table_free releases it. Zero-initialised means empty. */
typedef struct fdn__table_mem {
    void *base;    /* what fdn__table_free releases; NULL: nothing */
    size_t maplen; /* bytes mapped at base (mmap); 0: base came from fdn__malloc */
} fdn__table_mem_t;

/* The size of a transparent huge page on x86-64 and arm64 (4 KiB base pages). */
#define FDN__HUGE_PAGE ((size_t)2 << 20)

/* size zeroed bytes aligned to align (a power of two, at most FDN__HUGE_PAGE), recorded in
 * *mem. A table of at least FDN__HUGE_PAGE bytes with the default allocator is a private
 * anonymous mapping of its own, FDN__HUGE_PAGE-aligned and advised MADV_HUGEPAGE, so that
 * where the kernel's transparent huge pages are "madvise" or "always" one TLB entry covers
 * 2 MiB of it instead of 4 KiB (a random access into a table far larger than the TLB's reach
 * then mostly finds its translation cached). Best effort: a kernel without THP, or no huge
 * page free, gives 4 KiB pages as any mapping. munmap returns it to the system at once.
 * Smaller tables, and every table while a custom allocator is installed (fdn_set_allocator
 * promises it sees every allocation; the fault tests' failing allocator is one), come from
 * fdn__malloc. Returns the memory, or NULL when out of memory (*mem untouched). Preserves
 * errno. */
void *fdn__table_alloc(fdn__table_mem_t *mem, size_t size, size_t align);
/* Releases what fdn__table_alloc recorded in *mem (nothing when mem->base is NULL) and
 * clears *mem. */
void fdn__table_free(fdn__table_mem_t *mem);

/* Cache line size used for padding shared state. */
#define FDN_CACHELINE 64

#define FDN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FDN_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define FDN_MAX(a, b)    ((a) > (b) ? (a) : (b))

/* FDN_TLS_IE on a small _Thread_local of a hot path: the initial-exec model reads it at a
 * fixed offset from the thread pointer instead of calling __tls_get_addr from the shared
 * library (the library is linked at start, never dlopen'ed late, so static TLS space holds). */
#if defined(__GNUC__)
#define FDN_LIKELY(x)   __builtin_expect(!!(x), 1)
#define FDN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define FDN_TLS_IE      __attribute__((tls_model("initial-exec")))
#define FDN_NOINLINE    __attribute__((noinline)) /* a rare branch kept out of a hot path */
/* a body the compiler must expand at each call: a caller passing constants gets a copy
 * specialised for them (e.g. the one-event append) */
#define FDN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FDN_LIKELY(x)   (x)
#define FDN_UNLIKELY(x) (x)
#define FDN_TLS_IE
#define FDN_NOINLINE
#define FDN_ALWAYS_INLINE inline
#endif

#endif
