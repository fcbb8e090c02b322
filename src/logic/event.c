/*
 * DESIGN: event construction (pure logic: no locks, no globals except a once-initialised
 * host-name cache).
 *
 * An event is one allocation: struct fdn_event followed by type, node, correlation id and
 * data, each NUL-terminated. It is immutable after construction, so any thread may read it.
 * Lists (query results) are one allocation too: the header, the item pointers, then the
 * events packed one after another (8-aligned).
 * Defaults follow the reference (§3.2) with one unit for time (ns): timestamp = the clock's
 * monotonic ns, wall = the clock's wall ns, node = host name, pid/tid of the caller,
 * correlation id = a fresh UUIDv4 unless FDN_EVENT_NO_CORRELATION.
 */
#include <fdn/events.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ident.h"
#include "core/alloc.h"
#include "logic/event_int.h"

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

static char g_host[FDN_EVENT_NODE_MAX + 1];
static pthread_once_t g_host_once = PTHREAD_ONCE_INIT;

static void host_init(void)
{
    if (gethostname(g_host, sizeof(g_host) - 1) != 0)
        g_host[0] = '\0';
    g_host[sizeof(g_host) - 1] = '\0';
    /* keep only printable ASCII */
    for (char *p = g_host; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '_';
}

size_t fdn__event_alloc_size(const fdn__event_fields_t *f)
{
    return ALIGN8(sizeof(struct fdn_event) + f->type_len + 1 + f->node_len + 1 + f->corr_len + 1 +
                  f->data_len + 1);
}

fdn_event_t *fdn__event_place(void *mem, const fdn__event_fields_t *f)
{
    fdn_event_t *ev = mem;
    char *p = (char *)(ev + 1);
    ev->id = f->id;
    ev->ts = f->ts;
    ev->wall = f->wall;
    ev->parent = f->parent;
    ev->pid = f->pid;
    ev->tid = f->tid;
    ev->ctype = f->ctype;
    ev->type_len = (uint16_t)f->type_len;
    ev->node_len = (uint8_t)f->node_len;
    ev->corr_len = (uint16_t)f->corr_len;
    ev->data_len = (uint32_t)f->data_len;
    ev->type = p;
    if (f->type_len)
        memcpy(p, f->type, f->type_len);
    p[f->type_len] = '\0';
    p += f->type_len + 1;
    ev->node = p;
    if (f->node_len)
        memcpy(p, f->node, f->node_len);
    p[f->node_len] = '\0';
    p += f->node_len + 1;
    ev->corr = p;
    if (f->corr_len)
        memcpy(p, f->corr, f->corr_len);
    p[f->corr_len] = '\0';
    p += f->corr_len + 1;
    ev->data = (const uint8_t *)p;
    if (f->data_len)
        memcpy(p, f->data, f->data_len);
    p[f->data_len] = '\0';
    return ev;
}

fdn_event_t *fdn__event_from_fields(const fdn__event_fields_t *f)
{
    void *mem = fdn__malloc(fdn__event_alloc_size(f));
    if (mem == NULL)
        return NULL;
    return fdn__event_place(mem, f);
}

void fdn__event_to_fields(const fdn_event_t *ev, fdn__event_fields_t *f)
{
    f->id = ev->id;
    f->ts = ev->ts;
    f->wall = ev->wall;
    f->parent = ev->parent;
    f->pid = ev->pid;
    f->tid = ev->tid;
    f->ctype = ev->ctype;
    f->type = ev->type;
    f->type_len = ev->type_len;
    f->node = ev->node;
    f->node_len = ev->node_len;
    f->corr = ev->corr;
    f->corr_len = ev->corr_len;
    f->data = ev->data;
    f->data_len = ev->data_len;
}

fdn_event_list_t *fdn__event_list_alloc(size_t n, size_t bytes)
{
    size_t head = ALIGN8(sizeof(fdn_event_list_t) + n * sizeof(fdn_event_t *));
    fdn_event_list_t *l = fdn__malloc(head + bytes);
    if (l == NULL)
        return NULL;
    l->n = n;
    l->items = (fdn_event_t **)(void *)(l + 1);
    return l;
}

void *fdn__event_list_mem(fdn_event_list_t *l, size_t offset)
{
    size_t head = ALIGN8(sizeof(fdn_event_list_t) + l->n * sizeof(fdn_event_t *));
    return (char *)l + head + offset;
}

static int build(fdn_event_t **out, const fdn_event_spec_t *spec, const fdn_event_t *parent,
                 fdn_error_t *err)
{
    if (out == NULL || spec == NULL)
        return fdn_err_set(err, FDN_EINVAL, "event spec or output missing");
    int rc = fdn_event_validate(spec, err);
    if (rc != 0)
        return rc;
    fdn__event_fields_t f;
    memset(&f, 0, sizeof(f));
    char uuid[FDN_UUID_STR_LEN + 1];
    f.id = spec->id;
    f.ts = spec->timestamp_ns != 0 ? spec->timestamp_ns : fdn_clock_mono_ns(spec->clock);
    f.wall = spec->wall_ns != 0 ? spec->wall_ns : fdn_clock_wall_ns(spec->clock);
    f.pid = spec->pid != 0 ? spec->pid : fdn__pid();
    f.tid = spec->tid != 0 ? spec->tid : fdn__tid();
    f.ctype = (uint8_t)spec->content_type;
    f.type = spec->type;
    f.type_len = strlen(spec->type);
    if (spec->node != NULL) {
        f.node = spec->node;
    } else {
        pthread_once(&g_host_once, host_init);
        f.node = g_host;
    }
    f.node_len = strlen(f.node);
    f.parent = spec->parent_id;
    if (spec->correlation_id != NULL) {
        f.corr = spec->correlation_id;
    } else if (parent != NULL && parent->corr_len > 0) {
        f.corr = parent->corr;
    } else if (!(spec->flags & FDN_EVENT_NO_CORRELATION)) {
        rc = fdn_uuid4(uuid);
        if (rc != 0)
            return fdn_err_set(err, rc, "cannot generate a correlation id");
        f.corr = uuid;
    } else {
        f.corr = "";
    }
    f.corr_len = strlen(f.corr);
    if (parent != NULL)
        f.parent = parent->id;
    f.data = spec->data;
    f.data_len = spec->data_len;
    fdn_event_t *ev = fdn__event_from_fields(&f);
    if (ev == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "cannot allocate event");
    *out = ev;
    return 0;
}

int fdn_event_new(fdn_event_t **out, const fdn_event_spec_t *spec, fdn_error_t *err)
{
    return build(out, spec, NULL, err);
}

int fdn_event_new_child(fdn_event_t **out, const fdn_event_t *parent, const fdn_event_spec_t *spec,
                        fdn_error_t *err)
{
    if (parent == NULL || parent->id == 0)
        return fdn_err_set(err, FDN_EINVAL, "parent event missing or without an id");
    return build(out, spec, parent, err);
}

int fdn_event_copy(fdn_event_t **out, const fdn_event_t *ev)
{
    if (out == NULL || ev == NULL)
        return FDN_EINVAL;
    fdn__event_fields_t f;
    fdn__event_to_fields(ev, &f);
    fdn_event_t *c = fdn__event_from_fields(&f);
    if (c == NULL)
        return FDN_ENOMEM;
    *out = c;
    return 0;
}

void fdn_event_free(fdn_event_t *ev)
{
    fdn__free(ev);
}

uint64_t fdn_event_id(const fdn_event_t *ev)
{
    return ev ? ev->id : 0;
}

const char *fdn_event_type(const fdn_event_t *ev)
{
    return ev ? ev->type : "";
}

int64_t fdn_event_timestamp(const fdn_event_t *ev)
{
    return ev ? ev->ts : 0;
}

int64_t fdn_event_wall_time(const fdn_event_t *ev)
{
    return ev ? ev->wall : 0;
}

const char *fdn_event_node(const fdn_event_t *ev)
{
    return ev ? ev->node : "";
}

uint32_t fdn_event_pid(const fdn_event_t *ev)
{
    return ev ? ev->pid : 0;
}

uint32_t fdn_event_tid(const fdn_event_t *ev)
{
    return ev ? ev->tid : 0;
}

const char *fdn_event_correlation_id(const fdn_event_t *ev)
{
    return ev ? ev->corr : "";
}

uint64_t fdn_event_parent_id(const fdn_event_t *ev)
{
    return ev ? ev->parent : 0;
}

fdn_event_ctype_t fdn_event_content_type(const fdn_event_t *ev)
{
    return ev ? (fdn_event_ctype_t)ev->ctype : FDN_EVENT_CT_JSON;
}

const void *fdn_event_data(const fdn_event_t *ev, size_t *len)
{
    if (len)
        *len = ev ? ev->data_len : 0;
    return ev ? (const void *)ev->data : "";
}

bool fdn_event_equal(const fdn_event_t *a, const fdn_event_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a->id == b->id && a->ts == b->ts && a->wall == b->wall && a->parent == b->parent &&
           a->pid == b->pid && a->tid == b->tid && a->ctype == b->ctype &&
           a->type_len == b->type_len && a->node_len == b->node_len && a->corr_len == b->corr_len &&
           a->data_len == b->data_len && memcmp(a->type, b->type, a->type_len) == 0 &&
           memcmp(a->node, b->node, a->node_len) == 0 &&
           memcmp(a->corr, b->corr, a->corr_len) == 0 && memcmp(a->data, b->data, a->data_len) == 0;
}

size_t fdn_event_list_count(const fdn_event_list_t *l)
{
    return l ? l->n : 0;
}

const fdn_event_t *fdn_event_list_at(const fdn_event_list_t *l, size_t i)
{
    if (l == NULL || i >= l->n)
        return NULL;
    return l->items[i];
}

void fdn_event_list_free(fdn_event_list_t *l)
{
    fdn__free(l);
}

int fdn_event_correlation_chain(const fdn_event_t *const *evs, size_t n, const char *cid,
                                uint64_t *out_ids, size_t *out_n)
{
    if ((evs == NULL && n > 0) || cid == NULL || out_n == NULL || (out_ids == NULL && n > 0))
        return FDN_EINVAL;
    size_t k = 0;
    /* stable insertion sort by timestamp of the matching events (chains are short) */
    const fdn_event_t **tmp = NULL;
    if (n > 0) {
        tmp = fdn__malloc(n * sizeof(*tmp));
        if (tmp == NULL)
            return FDN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const fdn_event_t *e = evs[i];
        if (e == NULL || strcmp(e->corr, cid) != 0 || e->corr_len == 0)
            continue;
        size_t j = k;
        while (j > 0 && tmp[j - 1]->ts > e->ts) {
            tmp[j] = tmp[j - 1];
            j--;
        }
        tmp[j] = e;
        k++;
    }
    for (size_t i = 0; i < k; i++)
        out_ids[i] = tmp[i]->id;
    fdn__free(tmp);
    *out_n = k;
    return 0;
}
