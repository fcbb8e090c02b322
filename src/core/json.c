/*
 * DESIGN: jansson's allocation hook (see json.h). The note of a failed allocation is
 * thread-local: jansson allocates on the thread that calls it, so a caller's note is never
 * set or cleared by another thread's parse. jansson's hook is process-wide; it is changed
 * only by fdn_set_allocator (@thread_safety init).
 *
 * A parse must not be left to run on after a refused allocation: jansson 2.14's lexer ignores
 * a failed growth of its token buffer, then reads its string token past the end of that
 * buffer looking for the closing quote (a crash, found by the allocation sweep,
 * tests/alloc). So while fdn__json_loadb parses, an allocation the library's allocator
 * refuses is noted and served by malloc instead (a "stand-in"): the parse runs to its end on
 * whole tokens, fdn__json_loadb sees the note and frees the value before it returns, which
 * frees every stand-in too (json_release gives them back to free, found in a small
 * thread-local list). The caller still gets FDN_ENOMEM, and the allocator's refusal stands.
 * Outside fdn__json_loadb (and when malloc fails as well) the NULL goes to jansson as before.
 */
#include <stdlib.h>

#include <jansson.h>

#include <fdn/common.h>
#include <fdn/error.h>

#include "core/alloc.h"
#include "core/json.h"

static _Thread_local bool t_oom;
static _Thread_local bool t_parsing; /* inside fdn__json_loadb */

/* Stand-ins of this thread's parse (at most STANDINS_MAX; a parse that needs more gets NULL
 * as jansson would without them). */
#define STANDINS_MAX 64
static _Thread_local void *t_standin[STANDINS_MAX];
static _Thread_local unsigned t_nstandin;

static void *json_alloc(size_t size)
{
    void *p = fdn__malloc(size);
    if (p == NULL) {
        t_oom = true;
        if (t_parsing && t_nstandin < STANDINS_MAX && (p = malloc(size ? size : 1)) != NULL)
            t_standin[t_nstandin++] = p;
    }
    return p;
}

static void json_release(void *p)
{
    for (unsigned i = t_nstandin; i-- > 0;) {
        if (t_standin[i] == p) {
            t_standin[i] = t_standin[--t_nstandin];
            free(p);
            return;
        }
    }
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
    t_parsing = true;
    json_t *v = json_loadb(buf, len, flags, jerr);
    t_parsing = false;
    *oom = fdn__json_oom();
    if (*oom) {
        json_decref(v); /* made with stand-ins (or from a cut-short token): not to be kept */
        return NULL;
    }
    return v;
}

int fdn_json_loadb(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *jerr)
{
    if (out != NULL)
        *out = NULL;
    if (buf == NULL || out == NULL)
        return FDN_EINVAL;
    json_error_t local;
    bool oom;
    *out = fdn__json_loadb(buf, len, flags, jerr != NULL ? jerr : &local, &oom);
    return *out != NULL ? 0 : oom ? FDN_ENOMEM : FDN_EPARSE;
}

json_t *fdn__json_load_file(const char *path, size_t flags, json_error_t *jerr, bool *oom)
{
    fdn__json_oom_clear();
    t_parsing = true;
    json_t *v = json_load_file(path, flags, jerr);
    t_parsing = false;
    *oom = fdn__json_oom();
    if (*oom) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Two passes of json_dumpb (measure, then write into a buffer of that size): json_dumpb
 * writes through a callback that cannot fail, so no part of v is left out. jansson 2.14's
 * json_dumps ignores a failed append of an object key to its growing buffer and returns the
 * text without it (valid JSON that is not v). What json_dumpb allocates itself (its loop
 * check, JSON_SORT_KEYS's key array) fails the pass as a whole (0 returned). */
int fdn_json_dumps(const json_t *v, size_t flags, char **out, size_t *len)
{
    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (v == NULL || out == NULL ||
        (!(flags & JSON_ENCODE_ANY) && !json_is_object(v) && !json_is_array(v)))
        return FDN_EINVAL;
    size_t need = json_dumpb(v, NULL, 0, flags);
    if (need == 0 || need == SIZE_MAX)
        return FDN_ENOMEM;
    char *buf = fdn__malloc(need + 1);
    if (buf == NULL)
        return FDN_ENOMEM;
    if (json_dumpb(v, buf, need, flags) != need) {
        fdn__free(buf);
        return FDN_ENOMEM;
    }
    buf[need] = '\0';
    *out = buf;
    if (len != NULL)
        *len = need;
    return 0;
}
