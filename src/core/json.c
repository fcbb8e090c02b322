/*
 * DESIGN: jansson's allocation hook (see json.h). The note of a failed allocation is
 * thread-local: jansson allocates on the thread that calls it, so a caller's note is never
 * set or cleared by another thread's parse. jansson's hook is process-wide; it is changed
 * only by fdn_set_allocator (@thread_safety init).
 */
#include <stdlib.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"

static _Thread_local bool t_oom;

static void *json_alloc(size_t size)
{
    void *p = fdn__malloc(size);
    if (p == NULL)
        t_oom = true;
    return p;
}

static void json_release(void *p)
{
    fdn__free(p);
}

void fdn__json_use_library_allocator(bool custom)
{
    if (custom)
        json_set_alloc_funcs(json_alloc, json_release);
    else
        json_set_alloc_funcs(malloc, free);
}

void fdn__json_oom_clear(void)
{
    t_oom = false;
}

bool fdn__json_oom(void)
{
    return t_oom;
}

json_t *fdn__json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, bool *oom)
{
    fdn__json_oom_clear();
    json_t *v = json_loadb(buf, len, flags, jerr);
    *oom = fdn__json_oom();
    if (*oom) {
        json_decref(v); /* possibly parsed from a cut-short token: not the text's value */
        return NULL;
    }
    return v;
}
