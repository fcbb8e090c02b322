/*
 * DESIGN: the task pool (the reference's TaskSupervisor).
 *
 * Threads: `nworkers` worker threads started by fdn_tasks_create and joined by
 * fdn_tasks_shutdown (or destroy). Each worker pops a task, adopts the error context captured
 * at submit time (error_context.c, thread-local stack), runs the task with no lock held,
 * pops the context and frees the capture.
 *
 * Locks: one mutex `mu` guards the ring queue, the counters and the shutdown state. Condition
 * variables (CLOCK_MONOTONIC): `not_empty` (workers wait for work), `not_full` (blocking
 * submitters wait for room), `state` (shutdown callers wait for every worker to exit and for
 * the joins to finish). Tasks never run under `mu`.
 *
 * Shutdown: sets `stopping` (new submits get FDN_ESHUTDOWN, blocked submitters wake up and
 * fail), workers keep popping until the queue is empty and then exit, so every task queued
 * before shutdown runs exactly once. The first caller that sees all workers exited claims the
 * join (`joining`), joins without the lock, then sets `joined`; other callers wait for
 * `joined`. A caller that times out leaves everything in place and may call again.
 *
 * Service stop/start (tasks_int.h, for the runtime's supervisor): the same drain and join,
 * but not `permanent`: submits answer FDN_EUNAVAILABLE and fdn__tasks_service_start resets
 * the shutdown state and starts new workers. Counters survive a restart. A start whose
 * threads cannot all be created sets `stopping` again before it releases `mu` (no submit
 * gets in while none of the workers may exist), then joins the ones that started.
 *
 * Invariants: count ≤ cap; completed + running + count == accepted submits; a task is either
 * rejected (fn never called) or run exactly once.
 */
#include <fdn/tasks.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/errctx.h"
#include "core/tasks_int.h"

typedef struct task {
    fdn_task_fn fn;
    void *arg;
    fdn_errctx_capture_t *ctx;
} task_t;

struct fdn_tasks {
    fdn__mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    pthread_cond_t state;
    task_t *ring FDN_MEMBER_GUARDED_BY(mu);
    size_t cap;
    size_t head FDN_MEMBER_GUARDED_BY(mu);
    size_t count FDN_MEMBER_GUARDED_BY(mu);
    bool stopping FDN_MEMBER_GUARDED_BY(mu); /* workers told to drain and exit; submits refused */
    /* fdn_tasks_shutdown was called (vs a restartable service stop) */
    bool permanent FDN_MEMBER_GUARDED_BY(mu);
    bool joining FDN_MEMBER_GUARDED_BY(mu);
    bool joined FDN_MEMBER_GUARDED_BY(mu);
    unsigned nworkers;
    unsigned started FDN_MEMBER_GUARDED_BY(mu); /* threads successfully created */
    unsigned exited FDN_MEMBER_GUARDED_BY(mu);
    uint64_t running FDN_MEMBER_GUARDED_BY(mu);
    uint64_t completed FDN_MEMBER_GUARDED_BY(mu);
    uint64_t failed FDN_MEMBER_GUARDED_BY(mu);
    uint64_t rejected FDN_MEMBER_GUARDED_BY(mu);
    pthread_t *threads;
    char name[16];
};

static _Thread_local fdn_tasks_t *t_pool; /* the pool whose worker this thread is */

static void *worker_main(void *arg)
{
    fdn_tasks_t *tp = arg;
    t_pool = tp;
    fdn__mutex_lock(&tp->mu);
    for (;;) {
        while (tp->count == 0 && !tp->stopping)
            pthread_cond_wait(&tp->not_empty, &tp->mu);
        if (tp->count == 0)
            break; /* stopping and drained */
        task_t t = tp->ring[tp->head];
        tp->head = (tp->head + 1) % tp->cap;
        tp->count--;
        tp->running++;
        pthread_cond_signal(&tp->not_full);
        fdn__mutex_unlock(&tp->mu);

        size_t depth = fdn_errctx_depth();
        if (t.ctx != NULL)
            (void)fdn_errctx_adopt(t.ctx);
        int rc = t.fn(t.arg);
        fdn__errctx_truncate(depth); /* pops the adopted context and anything leaked */
        fdn_errctx_capture_free(t.ctx);

        fdn__mutex_lock(&tp->mu);
        FDN_ASSERT(tp->running > 0);
        tp->running--;
        tp->completed++;
        if (rc < 0)
            tp->failed++;
    }
    tp->exited++;
    FDN_ASSERT(tp->exited <= tp->started);
    pthread_cond_broadcast(&tp->state);
    fdn__mutex_unlock(&tp->mu);
    return NULL;
}

static void free_pool(fdn_tasks_t *tp)
{
    pthread_cond_destroy(&tp->not_empty);
    pthread_cond_destroy(&tp->not_full);
    pthread_cond_destroy(&tp->state);
    pthread_mutex_destroy(&tp->mu);
    fdn__free(tp->ring);
    fdn__free(tp->threads);
    fdn__free(tp);
}

/* Start nworkers threads (called with mu held; workers block on mu until it is released).
 * On failure the ones started stay counted in `started` so drain_join can join them. */
static int start_workers(fdn_tasks_t *tp) FDN_REQUIRES(tp->mu)
{
    for (unsigned i = 0; i < tp->nworkers; i++) {
        if (pthread_create(&tp->threads[i], NULL, worker_main, tp) != 0)
            return FDN_EAGAIN;
        char tn[16];
        snprintf(tn, sizeof(tn), "%.10s-%u", tp->name, i % 1000);
        pthread_setname_np(tp->threads[i], tn);
        tp->started++;
    }
    return 0;
}

static int drain_join(fdn_tasks_t *tp, int64_t timeout_ms, bool permanent) FDN_EXCLUDES(tp->mu);

int fdn_tasks_create(fdn_tasks_t **out, const fdn_tasks_opts_t *opts)
{
    if (out == NULL)
        return FDN_EINVAL;
    *out = NULL;
    fdn_tasks_opts_t o = FDN_TASKS_OPTS_INIT;
    if (opts != NULL) {
        if (opts->version == 0 || opts->version > FDN_TASKS_OPTS_VERSION)
            return FDN_EINVAL;
        o = *opts;
    }
    if (o.workers < 1 || o.workers > 256 || o.queue_capacity < 1 ||
        o.queue_capacity > ((size_t)1 << 20))
        return FDN_EINVAL;
    fdn_tasks_t *tp = fdn__calloc(1, sizeof(*tp));
    if (tp == NULL)
        return FDN_ENOMEM;
    tp->ring = fdn__calloc(o.queue_capacity, sizeof(task_t));
    tp->threads = fdn__calloc(o.workers, sizeof(pthread_t));
    if (tp->ring == NULL || tp->threads == NULL) {
        fdn__free(tp->ring);
        fdn__free(tp->threads);
        fdn__free(tp);
        return FDN_ENOMEM;
    }
    tp->cap = o.queue_capacity;
    tp->nworkers = o.workers;
    snprintf(tp->name, sizeof(tp->name), "%.10s", o.name ? o.name : "fdn-task");
    pthread_mutex_init(&tp->mu, NULL);
    (void)fdn__cond_init_mono(&tp->not_empty);
    (void)fdn__cond_init_mono(&tp->not_full);
    (void)fdn__cond_init_mono(&tp->state);
    fdn__mutex_lock(&tp->mu);
    int rc = start_workers(tp);
    fdn__mutex_unlock(&tp->mu);
    if (rc < 0) {
        (void)drain_join(tp, -1, true);
        free_pool(tp);
        return rc;
    }
    *out = tp;
    return 0;
}

static int submit_impl(fdn_tasks_t *tp, fdn_task_fn fn, void *arg, bool wait, int64_t timeout_ms)
{
    if (tp == NULL || fn == NULL)
        return FDN_EINVAL;
    fdn_errctx_capture_t *cap = NULL;
    int rc = fdn_errctx_capture(&cap);
    if (rc == FDN_ENOMEM) {
        fdn__mutex_lock(&tp->mu);
        tp->rejected++;
        fdn__mutex_unlock(&tp->mu);
        return rc;
    }
    int64_t dl = wait ? fdn__deadline_after_ms(timeout_ms) : INT64_MAX;
    fdn__mutex_lock(&tp->mu);
    rc = 0;
    for (;;) {
        if (tp->stopping) {
            rc = tp->permanent ? FDN_ESHUTDOWN : FDN_EUNAVAILABLE;
            break;
        }
        if (tp->count < tp->cap)
            break;
        if (!wait) {
            rc = FDN_EAGAIN;
            break;
        }
        if (fdn__cond_wait_until(&tp->not_full, &tp->mu, dl) != 0) {
            if (tp->count < tp->cap && !tp->stopping)
                break;
            rc = !tp->stopping ? FDN_ETIMEDOUT : tp->permanent ? FDN_ESHUTDOWN : FDN_EUNAVAILABLE;
            break;
        }
    }
    if (rc == 0) {
        tp->ring[(tp->head + tp->count) % tp->cap] = (task_t){fn, arg, cap};
        tp->count++;
        FDN_ASSERT(tp->count <= tp->cap);
        pthread_cond_signal(&tp->not_empty);
    } else {
        tp->rejected++;
    }
    fdn__mutex_unlock(&tp->mu);
    if (rc != 0)
        fdn_errctx_capture_free(cap);
    return rc;
}

int fdn_tasks_submit(fdn_tasks_t *tp, fdn_task_fn fn, void *arg)
{
    return submit_impl(tp, fn, arg, false, 0);
}

int fdn_tasks_submit_wait(fdn_tasks_t *tp, fdn_task_fn fn, void *arg, int64_t timeout_ms)
{
    return submit_impl(tp, fn, arg, true, timeout_ms);
}

/* Stop accepting, drain, join (see DESIGN). */
static int drain_join(fdn_tasks_t *tp, int64_t timeout_ms, bool permanent) FDN_EXCLUDES(tp->mu)
{
    int64_t dl = fdn__deadline_after_ms(timeout_ms);
    fdn__mutex_lock(&tp->mu);
    if (permanent)
        tp->permanent = true;
    if (!tp->stopping) {
        tp->stopping = true;
        pthread_cond_broadcast(&tp->not_empty);
        pthread_cond_broadcast(&tp->not_full);
    }
    int rc = 0;
    while (!tp->joined) {
        if (tp->exited == tp->started && !tp->joining) {
            tp->joining = true;
            fdn__mutex_unlock(&tp->mu);
            for (unsigned i = 0; i < tp->started; i++)
                pthread_join(tp->threads[i], NULL);
            fdn__mutex_lock(&tp->mu);
            tp->joined = true;
            pthread_cond_broadcast(&tp->state);
            break;
        }
        if (fdn__cond_wait_until(&tp->state, &tp->mu, dl) != 0) {
            if (!tp->joined && !(tp->exited == tp->started && !tp->joining)) {
                rc = FDN_ETIMEDOUT;
                break;
            }
        }
    }
    fdn__mutex_unlock(&tp->mu);
    return rc;
}

int fdn_tasks_shutdown(fdn_tasks_t *tp, int64_t timeout_ms)
{
    if (tp == NULL)
        return FDN_EINVAL;
    if (t_pool == tp)
        return FDN_EBUSY;
    return drain_join(tp, timeout_ms, true);
}

bool fdn__tasks_on_worker(const fdn_tasks_t *tp)
{
    return tp != NULL && t_pool == tp;
}

static void service_stop(void *state)
{
    fdn_tasks_t *tp = state;
    if (tp == NULL || t_pool == tp)
        return;
    (void)drain_join(tp, -1, false);
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_tasks_t *tp = state;
    (void)ctx;
    (void)err;
    if (tp == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&tp->mu);
    if (tp->permanent) {
        fdn__mutex_unlock(&tp->mu);
        return FDN_ESHUTDOWN;
    }
    if (!tp->stopping) {
        fdn__mutex_unlock(&tp->mu);
        return 0; /* already running */
    }
    if (!tp->joined) {
        fdn__mutex_unlock(&tp->mu);
        return FDN_EBUSY; /* a stop is still in progress */
    }
    tp->stopping = false;
    tp->joining = false;
    tp->joined = false;
    tp->exited = 0;
    tp->started = 0;
    int rc = start_workers(tp);
    if (rc < 0) {
        /* stopped again before the lock is released: a submit in between must be refused,
         * not queued where no worker may be left to run it (all of them failed to start) */
        tp->stopping = true;
        pthread_cond_broadcast(&tp->not_empty);
    }
    fdn__mutex_unlock(&tp->mu);
    if (rc < 0)
        (void)drain_join(tp, -1, false); /* joins the workers that did start */
    return rc;
}

static int service_health(void *state)
{
    fdn_tasks_t *tp = state;
    if (tp == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&tp->mu);
    int rc = tp->stopping ? FDN_EUNAVAILABLE : tp->exited > 0 ? FDN_EUNHEALTHY : 0;
    fdn__mutex_unlock(&tp->mu);
    return rc;
}

void fdn_tasks_destroy(fdn_tasks_t *tp)
{
    if (tp == NULL)
        return;
    /* misuse, from one of its own tasks: the pool cannot be joined from there, and freeing it
     * would pull it from under this worker and the others; asserts, and without assertions
     * leaves the pool as it is (a leak, not a use-after-free) */
    FDN_ASSERT(t_pool != tp && "fdn_tasks_destroy called from a task of the same pool");
    if (t_pool == tp)
        return;
    (void)fdn_tasks_shutdown(tp, -1);
    free_pool(tp);
}

int fdn_tasks_stats(fdn_tasks_t *tp, fdn_tasks_stats_t *out)
{
    if (tp == NULL || out == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&tp->mu);
    out->queued = tp->count;
    out->running = tp->running;
    out->completed = tp->completed;
    out->failed = tp->failed;
    out->rejected = tp->rejected;
    fdn__mutex_unlock(&tp->mu);
    return 0;
}

unsigned fdn_tasks_workers(const fdn_tasks_t *tp)
{
    return tp ? tp->nworkers : 0;
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__tasks_service_ops = {service_start, service_stop, service_health, NULL,
                                                  NULL};
