/*
 * DESIGN: the allocator hook. One process-wide table of function pointers, set only before
 * any other fdn call (@thread_safety init), read without synchronisation afterwards.
 * Each wrapper saves and restores errno so callers can report the errno of the operation
 * they were doing, not of an allocator that touched it. A custom allocator also becomes
 * jansson's (core/json.c, process-wide); fdn_set_allocator(NULL) gives jansson back
 * malloc and free.
 *
 * Large tables (fdn__table_alloc) bypass malloc only while the allocator is the default one:
 * they are mmap'ed on their own 2 MiB boundary and advised MADV_HUGEPAGE (see alloc.h). Each
 * table records how it was made (fdn__table_mem_t), so freeing it does not depend on the
 * allocator installed at that moment. Under LeakSanitizer a mapped table is registered as a
 * root region while it lives: it holds the only pointers to heap blocks (a limiter's long
 * keys), which LSan would otherwise report as leaked from a table it does not scan.
 */
#include "core/alloc.h"
#include "core/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define FDN_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define FDN_LSAN 1
#endif
#endif
#ifdef FDN_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include <fdn/error.h>

static fdn_allocator_t g_alloc = {malloc, realloc, free};

int fdn_set_allocator(const fdn_allocator_t *a)
{
    if (a == NULL) {
        g_alloc.malloc_fn = malloc;
        g_alloc.realloc_fn = realloc;
        g_alloc.free_fn = free;
        fdn__json_use_library_allocator(false);
        return 0;
    }
    if (a->malloc_fn == NULL || a->realloc_fn == NULL || a->free_fn == NULL)
        return FDN_EINVAL;
    g_alloc = *a;
    /* The library's JSON (config tree, event data, HTTP bodies) is built by jansson: route it
     * through the same allocator, so a custom allocator sees, and may fail, every allocation
     * the library causes. jansson's hook is process-wide (see common.h). */
    fdn__json_use_library_allocator(true);
    return 0;
}

void *fdn__malloc(size_t size)
{
    int saved = errno;
    void *p = g_alloc.malloc_fn(size ? size : 1);
    errno = saved;
    return p;
}

void *fdn__calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = fdn__malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *fdn__realloc(void *p, size_t size)
{
    int saved = errno;
    void *q = g_alloc.realloc_fn(p, size ? size : 1);
    errno = saved;
    return q;
}

void fdn__free(void *p)
{
    if (p == NULL)
        return;
    int saved = errno;
    g_alloc.free_fn(p);
    errno = saved;
}

/* size bytes mapped on a FDN__HUGE_PAGE boundary (size a multiple of it), or NULL: map one
 * huge page more than needed and unmap the unaligned head and the tail. */
static void *map_aligned(size_t size)
{
    size_t span = size + FDN__HUGE_PAGE;
    if (span < size)
        return NULL;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + FDN__HUGE_PAGE - 1) & ~(uintptr_t)(FDN__HUGE_PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + size < p + span)
        munmap(a + size, (size_t)(p + span - (a + size)));
    return a;
}

void *fdn__table_alloc(fdn__table_mem_t *mem, size_t size, size_t align)
{
    if (size >= FDN__HUGE_PAGE && g_alloc.malloc_fn == malloc) {
        int saved = errno;
        size_t len = (size + FDN__HUGE_PAGE - 1) & ~(FDN__HUGE_PAGE - 1);
        void *a = len >= size ? map_aligned(len) : NULL;
        if (a != NULL) {
#ifdef MADV_HUGEPAGE
            (void)madvise(a, len, MADV_HUGEPAGE); /* best effort: EINVAL without THP */
#endif
#ifdef FDN_LSAN
            __lsan_register_root_region(a, len);
#endif
        }
        errno = saved;
        if (a == NULL)
            return NULL;
        mem->base = a;
        mem->maplen = len;
        return a; /* fresh anonymous pages read as zero */
    }
    if (size > SIZE_MAX - align)
        return NULL;
    char *raw = fdn__calloc(1, size + align - 1);
    if (raw == NULL)
        return NULL;
    mem->base = raw;
    mem->maplen = 0;
    return (void *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
}

void fdn__table_free(fdn__table_mem_t *mem)
{
    if (mem->base != NULL && mem->maplen != 0) {
        int saved = errno;
#ifdef FDN_LSAN
        __lsan_unregister_root_region(mem->base, mem->maplen);
#endif
        munmap(mem->base, mem->maplen);
        errno = saved;
    } else {
        fdn__free(mem->base);
    }
    mem->base = NULL;
    mem->maplen = 0;
}

void fdn_free(void *p)
{
    fdn__free(p);
}

void *fdn_malloc(size_t size)
{
    return fdn__malloc(size);
}

void *fdn_calloc(size_t n, size_t size)
{
    return fdn__calloc(n, size);
}

void *fdn_realloc(void *p, size_t size)
{
    return fdn__realloc(p, size);
}

char *fdn__strndup(const char *s, size_t n)
{
    char *d = fdn__malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int fdn__strv_pack(const void *ctx, size_t count, const char *(*at)(const void *ctx, size_t i),
                   char ***out, size_t *n)
{
    size_t cnt = 0, bytes = 0;
    for (size_t i = 0; i < count; i++) {
        const char *s = at(ctx, i);
        if (s != NULL) {
            cnt++;
            bytes += sizeof(char *) + strlen(s) + 1;
        }
    }
    char **v = cnt ? fdn__malloc(bytes) : NULL;
    if (cnt && v == NULL)
        return FDN_ENOMEM;
    char *p = (char *)(v + cnt);
    for (size_t i = 0, k = 0; k < cnt; i++) {
        const char *s = at(ctx, i);
        if (s == NULL)
            continue;
        size_t l = strlen(s) + 1;
        memcpy(p, s, l);
        v[k++] = p;
        p += l;
    }
    *out = v;
    *n = cnt;
    return 0;
}

char *fdn__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return fdn__strndup(s, strlen(s));
}
