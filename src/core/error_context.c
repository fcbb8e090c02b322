/*
 * DESIGN: the thread-local error context stack (reference §7.5).
 *
 * Threads: every function acts on the calling thread's own stack (a fixed thread-local array
 * of FDN_ERRCTX_DEPTH_MAX frames), so push/pop/metadata/crumb calls need no lock and never
 * allocate. The only shared state is:
 *   - g_next_op: the process-wide operation id counter (atomic). Each thread reserves a block
 *     of OP_BLOCK ids at a time (relaxed fetch_add), so ids stay unique without a shared
 *     cache line on every push.
 *   - g_hook_mu guarding the process-wide error hook (fn, user). It is read only on the
 *     failure path of fdn_errctx_run; the hook is copied out and called with no lock held.
 * Captures are heap copies of one frame; they are immutable once made, so several threads
 * may adopt the same capture at once.
 *
 * Correlation ids are UUIDv4 from getrandom(2) through the thread's buffer of core/ident.h
 * (one getrandom call per 32 ids; its fork handler makes a child refill, never reuse, it).
 *
 * Lazy frames: fdn_errctx_run pushes a frame holding only its start time, operation id and
 * the caller's module and function pointers (valid for the run); the copy of the parent, the
 * correlation id, the names and the first crumb are made by materialize() when something reads
 * the frame (every reader goes through top(); a push over it or a failure of the run
 * materializes it first). A run that succeeds untouched costs a clock read and a few stores.
 *
 * Invariants: depth ≤ FDN_ERRCTX_DEPTH_MAX; a frame's crumb ring holds crumb_count ≤
 * FDN_ERRCTX_CRUMBS_MAX crumbs starting at crumb_head; a child copies its parent's metadata
 * and crumbs (and dropped count) and adds one crumb; pop restores the outer frame untouched
 * (frames are copies, never shared).
 */
#include <fdn/clock.h>
#include <fdn/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/ident.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/errctx.h"
#include "core/lock.h"

typedef struct crumb {
    int64_t ts_ns;
    char module[FDN_ERRCTX_NAME_MAX];
    char function[FDN_ERRCTX_NAME_MAX];
} crumb_t;

typedef struct meta {
    char key[FDN_ERRCTX_KEY_MAX];
    char value[FDN_ERRCTX_VALUE_MAX];
} meta_t;

typedef struct frame {
    uint64_t op_id;
    int64_t start_ns;
    /* a frame pushed by fdn_errctx_run is lazy: only op_id, start_ns and these two caller
     * pointers (valid for the run) are set until something reads the frame (materialize) */
    bool lazy;
    const char *lazy_module;
    const char *lazy_function;
    fdn_errctx_hook_fn hook;
    void *hook_user;
    /* hook is the per-call hook of an fdn_errctx_run_hooked in progress (here or in a parent
     * frame): it holds only while that call runs, so a capture takes base_hook instead (the
     * hook the context had without the call's) */
    bool hook_scoped;
    fdn_errctx_hook_fn base_hook;
    void *base_user;
    uint64_t crumbs_dropped;
    uint32_t crumb_head;
    uint32_t crumb_count;
    uint32_t meta_count;
    char module[FDN_ERRCTX_NAME_MAX];
    char function[FDN_ERRCTX_NAME_MAX];
    char corr[FDN_UUID_STR_LEN + 1];
    meta_t meta[FDN_ERRCTX_META_MAX];
    crumb_t crumbs[FDN_ERRCTX_CRUMBS_MAX];
} frame_t;

struct fdn_errctx_capture {
    frame_t frame;
};

typedef struct tstate {
    uint32_t depth;
    uint64_t op_next;
    uint64_t op_end;
    frame_t stack[FDN_ERRCTX_DEPTH_MAX];
} tstate_t;

static _Thread_local tstate_t t_st;

#define OP_BLOCK 256

#if defined(__GNUC__)
#define FDN_COLD_NOINLINE __attribute__((cold, noinline))
#else
#define FDN_COLD_NOINLINE
#endif
static _Atomic uint64_t g_next_op = 1;

static fdn__mutex_t g_hook_mu = PTHREAD_MUTEX_INITIALIZER;
static fdn_errctx_hook_fn g_hook FDN_GUARDED_BY(g_hook_mu);
static void *g_hook_user FDN_GUARDED_BY(g_hook_mu);

/* The system clock (core/clock.c: the TSC where it is safe, 11 ns instead of clock_gettime's
 * 29). Every difference taken here is clamped at 0 or 1, so a context copied to another thread
 * cannot show a negative age or duration. */
static int64_t mono_now(void)
{
    return fdn_clock_mono_ns(NULL);
}

static uint64_t next_op_id(void)
{
    tstate_t *t = &t_st;
    if (FDN_UNLIKELY(t->op_next == t->op_end)) {
        uint64_t base = atomic_fetch_add_explicit(&g_next_op, OP_BLOCK, memory_order_relaxed);
        t->op_next = base;
        t->op_end = base + OP_BLOCK;
    }
    return t->op_next++;
}

/* A UUIDv4 from the thread's buffer of kernel random bytes (core/ident.h). */
static int fast_uuid(char out[FDN_UUID_STR_LEN + 1])
{
    unsigned char b[16];
    int rc = fdn__random16(b);
    if (rc != 0)
        return rc;
    fdn__uuid4_format(b, out);
    return 0;
}

/* Copy a string into dst[cap], cut at a UTF-8 boundary when too long. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strnlen(src, cap);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void materialize(tstate_t *t, uint32_t i);

/* The innermost frame, made whole if it was pushed lazily. */
static frame_t *top(void)
{
    tstate_t *t = &t_st;
    if (t->depth == 0)
        return NULL;
    frame_t *f = &t->stack[t->depth - 1];
    if (FDN_UNLIKELY(f->lazy))
        materialize(t, t->depth - 1);
    return f;
}

static void crumb_add(frame_t *f, const char *module, const char *function, int64_t now)
{
    uint32_t idx;
    if (f->crumb_count == FDN_ERRCTX_CRUMBS_MAX) {
        idx = f->crumb_head;
        f->crumb_head = (f->crumb_head + 1) % FDN_ERRCTX_CRUMBS_MAX;
        f->crumbs_dropped++;
    } else {
        idx = (f->crumb_head + f->crumb_count) % FDN_ERRCTX_CRUMBS_MAX;
        f->crumb_count++;
    }
    FDN_ASSERT(f->crumb_count <= FDN_ERRCTX_CRUMBS_MAX && f->crumb_head < FDN_ERRCTX_CRUMBS_MAX);
    crumb_t *c = &f->crumbs[idx];
    c->ts_ns = now;
    copy_str(c->module, sizeof(c->module), module);
    copy_str(c->function, sizeof(c->function), function);
}

/* Copy src's metadata and crumbs (normalised to head 0) and inherited fields into dst. */
static void copy_frame(frame_t *dst, const frame_t *src)
{
    dst->lazy = false;
    dst->op_id = src->op_id;
    dst->start_ns = src->start_ns;
    dst->hook = src->hook;
    dst->hook_user = src->hook_user;
    dst->hook_scoped = src->hook_scoped;
    dst->base_hook = src->base_hook;
    dst->base_user = src->base_user;
    dst->crumbs_dropped = src->crumbs_dropped;
    dst->crumb_head = 0;
    dst->crumb_count = src->crumb_count;
    dst->meta_count = src->meta_count;
    memcpy(dst->module, src->module, sizeof(dst->module));
    memcpy(dst->function, src->function, sizeof(dst->function));
    memcpy(dst->corr, src->corr, sizeof(dst->corr));
    memcpy(dst->meta, src->meta, src->meta_count * sizeof(meta_t));
    for (uint32_t i = 0; i < src->crumb_count; i++)
        dst->crumbs[i] = src->crumbs[(src->crumb_head + i) % FDN_ERRCTX_CRUMBS_MAX];
}

static int push_impl(const char *module, const char *function, bool root, const char *corr)
{
    tstate_t *t = &t_st;
    if (t->depth >= FDN_ERRCTX_DEPTH_MAX)
        return FDN_ENOSPC;
    frame_t *f = &t->stack[t->depth];
    frame_t *parent = t->depth ? &t->stack[t->depth - 1] : NULL;
    if (parent != NULL && parent->lazy)
        materialize(t, t->depth - 1);
    int64_t now = mono_now();
    f->lazy = false;
    if (!root && parent != NULL) {
        copy_frame(f, parent);
    } else {
        f->hook = parent ? parent->hook : NULL;
        f->hook_user = parent ? parent->hook_user : NULL;
        f->hook_scoped = parent ? parent->hook_scoped : false;
        f->base_hook = parent ? parent->base_hook : NULL;
        f->base_user = parent ? parent->base_user : NULL;
        f->crumbs_dropped = 0;
        f->crumb_head = 0;
        f->crumb_count = 0;
        f->meta_count = 0;
        if (corr != NULL) {
            copy_str(f->corr, sizeof(f->corr), corr);
        } else {
            int rc = fast_uuid(f->corr);
            if (rc < 0)
                return rc;
        }
    }
    f->op_id = next_op_id();
    f->start_ns = now;
    copy_str(f->module, sizeof(f->module), module);
    copy_str(f->function, sizeof(f->function), function);
    crumb_add(f, module, function, now);
    t->depth++;
    FDN_ASSERT(t->depth <= FDN_ERRCTX_DEPTH_MAX);
    return 0;
}

/* Make stack[i] what push_impl(module, function, false, NULL) would have made at its
 * start_ns (its op_id and start_ns are kept). Its parents first, if they are lazy too. */
static void materialize(tstate_t *t, uint32_t i)
{
    frame_t *f = &t->stack[i];
    frame_t *parent = i > 0 ? &t->stack[i - 1] : NULL;
    if (parent != NULL && parent->lazy)
        materialize(t, i - 1);
    uint64_t op = f->op_id;
    int64_t start = f->start_ns;
    const char *module = f->lazy_module, *function = f->lazy_function;
    if (parent != NULL) {
        copy_frame(f, parent);
    } else {
        f->hook = NULL;
        f->hook_user = NULL;
        f->hook_scoped = false;
        f->crumbs_dropped = 0;
        f->crumb_head = 0;
        f->crumb_count = 0;
        f->meta_count = 0;
        if (fast_uuid(f->corr) != 0)
            f->corr[0] = '\0'; /* no kernel randomness: an operation without an id */
    }
    f->lazy = false;
    f->op_id = op;
    f->start_ns = start;
    copy_str(f->module, sizeof(f->module), module);
    copy_str(f->function, sizeof(f->function), function);
    crumb_add(f, module, function, start);
}

/* fdn_errctx_run's push: the time and an operation id now, the rest when the frame is read
 * (most runs succeed without anyone reading it). */
static int push_lazy(const char *module, const char *function)
{
    tstate_t *t = &t_st;
    if (t->depth >= FDN_ERRCTX_DEPTH_MAX)
        return FDN_ENOSPC;
    frame_t *f = &t->stack[t->depth];
    f->lazy = true;
    f->lazy_module = module;
    f->lazy_function = function;
    f->start_ns = mono_now();
    f->op_id = next_op_id();
    t->depth++;
    return 0;
}

int fdn_errctx_push(const char *module, const char *function)
{
    return push_impl(module, function, false, NULL);
}

int fdn_errctx_push_root(const char *module, const char *function, const char *correlation_id)
{
    return push_impl(module, function, true, correlation_id);
}

void fdn_errctx_pop(void)
{
    if (t_st.depth > 0)
        t_st.depth--;
}

void fdn__errctx_truncate(size_t depth)
{
    if (t_st.depth > depth)
        t_st.depth = (uint32_t)depth;
}

size_t fdn_errctx_depth(void)
{
    return t_st.depth;
}

uint64_t fdn_errctx_operation_id(void)
{
    frame_t *f = top();
    return f ? f->op_id : 0;
}

int fdn_errctx_correlation_id(char out[FDN_UUID_STR_LEN + 1])
{
    if (out == NULL)
        return FDN_EINVAL;
    frame_t *f = top();
    if (f == NULL) {
        out[0] = '\0';
        return FDN_ENOENT;
    }
    memcpy(out, f->corr, FDN_UUID_STR_LEN + 1);
    return 0;
}

int64_t fdn_errctx_duration_ns(void)
{
    frame_t *f = top();
    if (f == NULL)
        return 0;
    int64_t d = mono_now() - f->start_ns;
    return d > 0 ? d : 1;
}

int fdn_errctx_add_breadcrumb(const char *module, const char *function)
{
    frame_t *f = top();
    if (f == NULL)
        return FDN_ENOENT;
    crumb_add(f, module, function, mono_now());
    return 0;
}

size_t fdn_errctx_breadcrumb_count(void)
{
    frame_t *f = top();
    return f ? f->crumb_count : 0;
}

uint64_t fdn_errctx_breadcrumbs_dropped(void)
{
    frame_t *f = top();
    return f ? f->crumbs_dropped : 0;
}

static size_t format_crumbs(const frame_t *f, char *buf, size_t cap)
{
    fdn__tw_t w = FDN__TW_INIT(buf, cap);
    if (f != NULL && f->crumb_count > 0) {
        int64_t now = mono_now();
        if (f->crumbs_dropped > 0)
            fdn__tw_fmt(&w, "... (%llu dropped) -> ", (unsigned long long)f->crumbs_dropped);
        for (uint32_t i = 0; i < f->crumb_count; i++) {
            const crumb_t *c = &f->crumbs[(f->crumb_head + i) % FDN_ERRCTX_CRUMBS_MAX];
            int64_t age = now - c->ts_ns;
            if (age < 0)
                age = 0;
            fdn__tw_fmt(&w, "%s%s.%s (%lldms ago)", i ? " -> " : "", c->module, c->function,
                   (long long)(age / 1000000));
        }
    }
    if (cap > 0) {
        size_t end = w.len < cap ? w.len : cap - 1;
        if (w.len >= cap)
            end = fdn__utf8_whole(buf, end);
        buf[end] = '\0';
    }
    return w.len;
}

size_t fdn_errctx_format_breadcrumbs(char *buf, size_t cap)
{
    return format_crumbs(top(), buf, cap);
}

static meta_t *meta_find(frame_t *f, const char *key)
{
    for (uint32_t i = 0; i < f->meta_count; i++)
        if (strncmp(f->meta[i].key, key, sizeof(f->meta[i].key)) == 0)
            return &f->meta[i];
    return NULL;
}

/* A metadata key becomes a key of an error's logfmt context text (enhance), where keys are
 * not quoted: one with a space, a control byte, '=' or '"' would forge other keys there. */
static bool plain_key(const char *key)
{
    if (key == NULL || key[0] == '\0')
        return false;
    for (const unsigned char *c = (const unsigned char *)key; *c != '\0'; c++)
        if (*c <= ' ' || *c == 0x7F || *c == '=' || *c == '"')
            return false;
    return true;
}

int fdn_errctx_set_metadata(const char *key, const char *fmt, ...)
{
    if (!plain_key(key))
        return FDN_EINVAL;
    frame_t *f = top();
    if (f == NULL)
        return FDN_ENOENT;
    char k[FDN_ERRCTX_KEY_MAX];
    copy_str(k, sizeof(k), key);
    meta_t *m = meta_find(f, k);
    if (m == NULL) {
        if (f->meta_count >= FDN_ERRCTX_META_MAX)
            return FDN_ENOSPC;
        m = &f->meta[f->meta_count++];
        memcpy(m->key, k, sizeof(k));
    }
    char v[FDN_ERRCTX_VALUE_MAX * 2];
    v[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v, sizeof(v), fmt, ap);
        va_end(ap);
    }
    copy_str(m->value, sizeof(m->value), v);
    return 0;
}

int fdn_errctx_get_metadata(const char *key, char *buf, size_t cap)
{
    frame_t *f = top();
    if (f == NULL || key == NULL)
        return FDN_ENOENT;
    char k[FDN_ERRCTX_KEY_MAX];
    copy_str(k, sizeof(k), key);
    meta_t *m = meta_find(f, k);
    if (m == NULL)
        return FDN_ENOENT;
    size_t n = strlen(m->value);
    if (buf == NULL || cap == 0)
        return FDN_ENOBUFS;
    copy_str(buf, cap, m->value);
    return n < cap ? 0 : FDN_ENOBUFS;
}

size_t fdn_errctx_metadata_count(void)
{
    frame_t *f = top();
    return f ? f->meta_count : 0;
}

int fdn_errctx_set_context_hook(fdn_errctx_hook_fn fn, void *user)
{
    frame_t *f = top();
    if (f == NULL)
        return FDN_ENOENT;
    f->hook = fn;
    f->hook_user = user;
    f->hook_scoped = false; /* the context's own: captures carry it */
    return 0;
}

void fdn_errctx_set_error_hook(fdn_errctx_hook_fn fn, void *user)
{
    fdn__mutex_lock(&g_hook_mu);
    g_hook = fn;
    g_hook_user = user;
    fdn__mutex_unlock(&g_hook_mu);
}

void fdn__errctx_fill(fdn_error_t *err)
{
    frame_t *f = top();
    if (err == NULL || f == NULL)
        return;
    memcpy(err->correlation_id, f->corr, sizeof(err->correlation_id));
    format_crumbs(f, err->breadcrumbs, sizeof(err->breadcrumbs));
    int64_t d = mono_now() - f->start_ns;
    err->duration_ns = d > 0 ? d : 1;
}

/* Add the operation context of frame f to e (see fdn_errctx_enhance). */
static void enhance(fdn_error_t *e, const frame_t *f)
{
    if (e->correlation_id[0] == '\0')
        memcpy(e->correlation_id, f->corr, sizeof(e->correlation_id));
    if (e->breadcrumbs[0] == '\0')
        format_crumbs(f, e->breadcrumbs, sizeof(e->breadcrumbs));
    fdn_err_add_context(e, "module", "%s", f->module);
    fdn_err_add_context(e, "function", "%s", f->function);
    fdn_err_add_context(e, "operation_id", "%llu", (unsigned long long)f->op_id);
    for (uint32_t i = 0; i < f->meta_count; i++)
        fdn_err_add_context(e, f->meta[i].key, "%s", f->meta[i].value);
    int64_t d = mono_now() - f->start_ns;
    e->duration_ns = d > 0 ? d : 1;
}

int fdn_errctx_enhance(fdn_error_t *err)
{
    frame_t *f = top();
    if (f == NULL)
        return FDN_ENOENT;
    if (err == NULL)
        return FDN_EINVAL;
    enhance(err, f);
    return 0;
}

/* fdn_errctx_run's failure path (rc < 0), out of line so that the success path keeps no
 * fdn_error_t on its stack and saves few registers: from here on cost does not matter. */
static FDN_COLD_NOINLINE int run_failed(int rc, size_t depth0, bool pushed, fdn_error_t *err,
                                        int saved_code, int64_t saved_ts, fdn_errctx_hook_fn hook,
                                        void *hook_user)
{
    /* The error describes the run's own context. Contexts fn left pushed (a missing pop) are
     * dropped first, so the fill below does not take their correlation id and crumbs; a frame
     * fn popped itself (a pop too many) is not read at all: its slot may since hold a frame
     * of a nested run whose names lived on fn's stack. */
    if (t_st.depth <= depth0)
        pushed = false;
    fdn__errctx_truncate(pushed ? depth0 + 1 : depth0);
    frame_t *f = pushed ? &t_st.stack[depth0] : NULL;
    fdn_error_t local;
    fdn_error_t *e = err ? err : &local;
    bool filled_by_fn =
        err != NULL && err->code == rc && (err->timestamp_ns != saved_ts || saved_code != rc);
    if (!filled_by_fn)
        fdn_err_set(e, rc, NULL);
    fdn_errctx_hook_fn h = hook;
    void *hu = hook_user;
    if (f != NULL) {
        if (f->lazy) /* module and function still point at the caller's strings */
            materialize(&t_st, (uint32_t)depth0);
        enhance(e, f);
        if (h == NULL) {
            h = f->hook;
            hu = f->hook_user;
        }
        fdn__errctx_truncate(depth0);
    } else {
        fdn__errctx_truncate(depth0);
        frame_t *outer = h == NULL ? top() : NULL;
        if (outer != NULL) {
            h = outer->hook;
            hu = outer->hook_user;
        }
    }
    if (h == NULL) {
        fdn__mutex_lock(&g_hook_mu);
        h = g_hook;
        hu = g_hook_user;
        fdn__mutex_unlock(&g_hook_mu);
    }
    if (h != NULL)
        h(e, hu);
    return rc;
}

static inline int run_impl(const char *module, const char *function, fdn_errctx_fn fn, void *arg,
                           fdn_error_t *err, fdn_errctx_hook_fn hook, void *hook_user)
{
    if (fn == NULL)
        return fdn_err_set(err, FDN_EINVAL, "fdn_errctx_run: fn is NULL");
    size_t depth0 = t_st.depth; /* restored on return, even if fn left contexts pushed */
    bool pushed = push_lazy(module, function) == 0;
    if (pushed && hook != NULL) {
        frame_t *f = &t_st.stack[depth0];
        materialize(&t_st, (uint32_t)depth0); /* the hook goes over what it inherits */
        if (!f->hook_scoped) {
            f->base_hook = f->hook;
            f->base_user = f->hook_user;
        }
        f->hook = hook;
        f->hook_user = hook_user;
        f->hook_scoped = true;
    }
    int saved_code = err ? err->code : 0;
    int64_t saved_ts = err ? err->timestamp_ns : 0;
    int rc = fn(arg);
    if (FDN_UNLIKELY(rc < 0))
        return run_failed(rc, depth0, pushed, err, saved_code, saved_ts, hook, hook_user);
    fdn__errctx_truncate(depth0);
    return rc;
}

int fdn_errctx_run(const char *module, const char *function, fdn_errctx_fn fn, void *arg,
                   fdn_error_t *err)
{
    return run_impl(module, function, fn, arg, err, NULL, NULL);
}

int fdn_errctx_run_hooked(const char *module, const char *function, fdn_errctx_fn fn, void *arg,
                          fdn_error_t *err, fdn_errctx_hook_fn hook, void *hook_user)
{
    return run_impl(module, function, fn, arg, err, hook, hook_user);
}

int fdn_errctx_capture(fdn_errctx_capture_t **out)
{
    if (out == NULL)
        return FDN_EINVAL;
    *out = NULL;
    const frame_t *cur = top();
    if (cur == NULL)
        return FDN_ENOENT;
    fdn_errctx_capture_t *c = fdn__malloc(sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    copy_frame(&c->frame, cur);
    if (c->frame.hook_scoped) { /* the call's hook (and its user) may be gone when adopted */
        c->frame.hook = c->frame.base_hook;
        c->frame.hook_user = c->frame.base_user;
        c->frame.hook_scoped = false;
    }
    *out = c;
    return 0;
}

int fdn_errctx_adopt(const fdn_errctx_capture_t *cap)
{
    if (cap == NULL)
        return FDN_EINVAL;
    tstate_t *t = &t_st;
    if (t->depth >= FDN_ERRCTX_DEPTH_MAX)
        return FDN_ENOSPC;
    copy_frame(&t->stack[t->depth], &cap->frame);
    t->depth++;
    return 0;
}

void fdn_errctx_capture_free(fdn_errctx_capture_t *cap)
{
    fdn__free(cap);
}
