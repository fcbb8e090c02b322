/*
 * DESIGN: the supervisor (see include/fdn/supervisor.h for the contract).
 *
 * Threads:
 *  - the "lifecycle thread": the only thread that calls a service's start/stop/health and
 *    joins worker threads. Before fdn_supervisor_start returns it is the caller of start;
 *    afterwards it is the supervisor thread (sup_main), which also performs the final
 *    stop-all at shutdown. So the callbacks of one supervisor never run concurrently.
 *  - one worker thread per RUNNING service that has ops->run (worker_main). A worker only
 *    reports its return code (fail_pending) and kicks the clock. The lifecycle thread joins
 *    workers, so nothing a worker calls may wait for it: shutdown from a worker only requests
 *    the stop (thread-local t_worker), and an add from a worker is failed (FDN_ECANCELED)
 *    once that worker's stop was requested, including an add it posted just before. The same
 *    holds for a thread of a service's own that its stop waits for (fdn__supervisor_add_from:
 *    the runtime's task pool workers).
 *    Likewise shutdown from a callback run by fdn_supervisor_start (t_starting).
 *  - any thread: add (posts add_pending and waits), inject_fault (posts fail_pending),
 *    status queries, shutdown (sets stop_req, kicks, waits for `finished`, joins).
 *
 * Locks: `mu` guards every mutable field of the supervisor and of its children, except
 *  ctl.stop (atomic, read lock-free by workers) and the worker pthread_t / has_thread
 *  (touched by the lifecycle thread only). `join_mu` serialises joining the supervisor
 *  thread. Order: join_mu -> mu -> (clock mutex, inside fdn_clock_*). No callback and no
 *  join ever runs with `mu` held; `join_mu` is never taken on the supervisor thread.
 *
 * Waiting: the supervisor thread parks in fdn_clock_wait_until(next deadline) where the next
 *  deadline is the earliest pending restart or health poll. Everything that gives it work
 *  changes state under `mu` and then kicks the clock; the thread reads the kick sequence
 *  under `mu` before it looks for work, so no wake-up is lost. `cv` (CLOCK_MONOTONIC) wakes
 *  callers waiting for an add to finish, for idleness (wait_idle) or for the end of shutdown.
 *
 * Invariants: a child's `gen` changes at every start; a failure report carries the gen it
 *  belongs to and is ignored if stale. Children are never removed from `kids` except a
 *  failed add, removed by the lifecycle thread; work is always re-selected under `mu` by
 *  scanning, so no index is held across an unlock. Phases: IDLE -> STARTING -> RUNNING ->
 *  STOPPING -> DONE; a start that fails rolls back in STARTING and returns to IDLE (start may
 *  be called again), or to DONE when a shutdown came meanwhile.
 */
#include <fdn/supervisor.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sync.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"
#include "core/supervisor_int.h"

enum phase { PH_IDLE = 0, PH_STARTING, PH_RUNNING, PH_STOPPING, PH_DONE };

typedef struct child child_t;

struct fdn_service_ctl {
    fdn_supervisor_t *sup;
    child_t *ch;
    _Atomic bool stop;
    uint64_t gen;      /* gen of the start this worker belongs to (set before create) */
    uint64_t kick_seq; /* worker's last seen kick (fdn_service_wait); set at each start */
};

struct child {
    char name[FDN_SERVICE_NAME_MAX + 1];
    const fdn_service_ops_t *ops;
    void *state;
    fdn_restart_t restart;
    int64_t health_interval;
    /* guarded by mu */
    fdn_service_state_t st;
    uint64_t gen;
    bool fail_pending;
    int fail_code;
    uint64_t fail_gen;
    bool add_pending; /* posted by add after start; the lifecycle thread starts it */
    bool add_done;
    int add_rc;
    fdn_error_t *add_err;
    child_t *add_by; /* the child whose worker loop posted the add, or NULL */
    bool marked;     /* member of the set being stopped */
    fdn_service_state_t mark_target;
    uint32_t restarts;
    int last_error;
    int64_t last_error_ns;
    int64_t due_ns;
    int64_t next_health_ns;
    bool healthy;
    uint32_t consecutive;
    bool restarted_once; /* last_restart_ns is set (0 is a clock reading like any other) */
    int64_t last_restart_ns;
    bool count_restart; /* marked RESTARTING by this failure as a new restart (not one pending) */
    /* lifecycle thread only */
    pthread_t thread;
    bool has_thread;
    fdn_service_ctl_t ctl;
};

struct fdn_supervisor {
    char name[FDN_SERVICE_NAME_MAX + 1];
    fdn_clock_t *clock;
    fdn_sup_strategy_t strategy;
    int max_restarts;
    int64_t period;
    int64_t backoff_base;
    int64_t backoff_max;
    void *ctx;
    fdn_sup_escalation_fn on_escalation;
    fdn_sup_escalation_fn on_escalating;
    fdn_sup_restart_fn on_restart;
    fdn_sup_event_fn on_event;
    void *user;

    fdn__mutex_t mu;
    pthread_cond_t cv;
    fdn__mutex_t join_mu;
    child_t **kids FDN_MEMBER_GUARDED_BY(mu);
    size_t n, cap;
    enum phase phase FDN_MEMBER_GUARDED_BY(mu);
    bool stop_req FDN_MEMBER_GUARDED_BY(mu);
    bool failed FDN_MEMBER_GUARDED_BY(mu);
    bool idle FDN_MEMBER_GUARDED_BY(mu);
    int64_t next_deadline FDN_MEMBER_GUARDED_BY(mu);
    int64_t *rs_times FDN_MEMBER_GUARDED_BY(mu); /* restart times within the period, oldest first */
    size_t rs_n FDN_MEMBER_GUARDED_BY(mu);
    pthread_t thread;
    bool thread_started; /* set by start before the thread exists; read under mu */
    /* the supervisor thread has stopped everything and is exiting */
    bool finished FDN_MEMBER_GUARDED_BY(mu);
    bool joined FDN_MEMBER_GUARDED_BY(join_mu);
    _Atomic size_t live_threads; /* supervisor thread + workers not yet joined */
};

/* ------------------------------------------------------------------------------------ */

const char *fdn_service_state_name(fdn_service_state_t st)
{
    switch (st) {
    case FDN_SERVICE_STOPPED:
        return "stopped";
    case FDN_SERVICE_STARTING:
        return "starting";
    case FDN_SERVICE_RUNNING:
        return "running";
    case FDN_SERVICE_RESTARTING:
        return "restarting";
    case FDN_SERVICE_FAILED:
        return "failed";
    }
    return "unknown";
}

static void copy_name(char *dst, const char *src)
{
    size_t len = strlen(src);
    if (len > FDN_SERVICE_NAME_MAX)
        len = FDN_SERVICE_NAME_MAX;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int64_t now_ns(fdn_supervisor_t *sup)
{
    return fdn_clock_mono_ns(sup->clock);
}

static bool on_sup_thread(fdn_supervisor_t *sup)
{
    /* thread_started/thread are written before any code runs on that thread and only read
     * here; a caller racing with start sees false, which is the correct answer for it. */
    fdn__mutex_lock(&sup->mu);
    bool r = sup->thread_started && pthread_equal(sup->thread, pthread_self());
    fdn__mutex_unlock(&sup->mu);
    return r;
}

/* Timed wait on sup->cv; deadline is CLOCK_MONOTONIC real time (INT64_MAX: forever). */
static int cv_wait(fdn_supervisor_t *sup, int64_t deadline) FDN_REQUIRES(sup->mu)
{
    return fdn__cond_wait_until(&sup->cv, &sup->mu, deadline);
}


/* now + delay without signed overflow (delays come from the options, up to INT64_MAX). */
static int64_t add_sat(int64_t now, int64_t delay)
{
    return now > 0 && delay > INT64_MAX - now ? INT64_MAX : now + delay; /* delay >= 0 */
}

static child_t *find_locked(fdn_supervisor_t *sup, const char *name) FDN_REQUIRES(sup->mu)
{
    for (size_t i = 0; i < sup->n; i++)
        if (strcmp(sup->kids[i]->name, name) == 0)
            return sup->kids[i];
    return NULL;
}

static void set_state(fdn_supervisor_t *sup, child_t *ch, fdn_service_state_t st, int code)
    FDN_EXCLUDES(sup->mu)
{
    fdn__mutex_lock(&sup->mu);
    FDN_ASSERT(st != FDN_SERVICE_RUNNING || ch->st == FDN_SERVICE_STARTING);
    ch->st = st;
    fdn__mutex_unlock(&sup->mu);
    if (sup->on_event != NULL)
        sup->on_event(ch->name, ch->state, st, code, sup->user);
}

/* ------------------------------------------------------------------------------------ */
/* Worker threads */

/* The child whose worker loop runs on this thread (NULL elsewhere). */
static _Thread_local child_t *t_worker;

static bool on_worker_of(fdn_supervisor_t *sup)
{
    return t_worker != NULL && t_worker->ctl.sup == sup;
}

/* The supervisor whose fdn_supervisor_start runs on this thread: until its thread exists,
 * the caller of start is the lifecycle thread and runs the callbacks. */
static _Thread_local fdn_supervisor_t *t_starting;

/* True where waiting for the supervisor to stop would wait for the calling thread itself. */
static bool on_lifecycle_or_worker(fdn_supervisor_t *sup)
{
    return t_starting == sup || on_worker_of(sup) || on_sup_thread(sup);
}

bool fdn__supervisor_starting(fdn_supervisor_t *sup)
{
    return sup != NULL && t_starting == sup;
}

static void *worker_main(void *arg)
{
    child_t *ch = arg;
    fdn_supervisor_t *sup = ch->ctl.sup;
    t_worker = ch;
    int rc = ch->ops->run(ch->state, &ch->ctl);
    if (rc > 0)
        rc = FDN_EINTERNAL;
    fdn__mutex_lock(&sup->mu);
    /* STARTING: the worker may end before start_child marks the service RUNNING; the
     * report is then handled once the lifecycle thread has finished that start. */
    if (!atomic_load_explicit(&ch->ctl.stop, memory_order_acquire) && ch->gen == ch->ctl.gen &&
        (ch->st == FDN_SERVICE_RUNNING || ch->st == FDN_SERVICE_STARTING) && !ch->fail_pending) {
        ch->fail_pending = true;
        ch->fail_code = rc;
        ch->fail_gen = ch->ctl.gen;
    }
    fdn__mutex_unlock(&sup->mu);
    fdn_clock_kick(sup->clock);
    t_worker = NULL;
    return NULL;
}

bool fdn_service_should_stop(const fdn_service_ctl_t *ctl)
{
    return ctl == NULL || atomic_load_explicit(&ctl->stop, memory_order_acquire);
}

int fdn_service_wait(fdn_service_ctl_t *ctl, int64_t deadline_ns)
{
    if (ctl == NULL)
        return FDN_ECANCELED;
    fdn_clock_t *c = ctl->sup->clock;
    /* ctl->kick_seq persists from the previous wait (set at start): a kick that came while
     * the worker was busy or checking its work makes this wait return at once */
    if (fdn_service_should_stop(ctl))
        return FDN_ECANCELED;
    int rc = fdn_clock_wait_until(c, deadline_ns, &ctl->kick_seq);
    if (fdn_service_should_stop(ctl))
        return FDN_ECANCELED;
    return rc == 0 ? 0 : FDN_EAGAIN;
}

fdn_clock_t *fdn_service_clock(const fdn_service_ctl_t *ctl)
{
    return ctl != NULL ? ctl->sup->clock : NULL;
}

const char *fdn_service_name(const fdn_service_ctl_t *ctl)
{
    return ctl != NULL ? ctl->ch->name : "";
}

/* ------------------------------------------------------------------------------------ */
/* Lifecycle primitives (lifecycle thread only) */

/* Start ch. On success it is RUNNING; on failure its state is left as `fail_state`. */
static int start_child(fdn_supervisor_t *sup, child_t *ch, fdn_service_state_t fail_state,
                       fdn_error_t *err) FDN_EXCLUDES(sup->mu)
{
    fdn__mutex_lock(&sup->mu);
    FDN_ASSERT(ch->st != FDN_SERVICE_STARTING && ch->st != FDN_SERVICE_RUNNING);
    ch->st = FDN_SERVICE_STARTING;
    ch->gen++;
    ch->fail_pending = false;
    ch->ctl.gen = ch->gen;
    ch->ctl.kick_seq = fdn_clock_kick_seq(sup->clock); /* before the worker exists */
    atomic_store_explicit(&ch->ctl.stop, false, memory_order_release);
    fdn__mutex_unlock(&sup->mu);
    if (sup->on_event != NULL)
        sup->on_event(ch->name, ch->state, FDN_SERVICE_STARTING, 0, sup->user);

    int rc = ch->ops->start(ch->state, sup->ctx, err);
    if (rc > 0)
        rc = FDN_EINTERNAL;
    if (rc == 0 && ch->ops->run != NULL) {
        int prc = pthread_create(&ch->thread, NULL, worker_main, ch);
        if (prc != 0) {
            ch->ops->stop(ch->state);
            rc = prc == ENOMEM ? FDN_ENOMEM : FDN_EAGAIN;
            fdn_err_set(err, rc, "cannot create the worker thread of service %s", ch->name);
        } else {
            ch->has_thread = true;
            atomic_fetch_add_explicit(&sup->live_threads, 1, memory_order_relaxed);
        }
    }
    if (rc != 0) {
        fdn_err_add_context(err, "service", "%s", ch->name);
        int64_t now = now_ns(sup);
        fdn__mutex_lock(&sup->mu);
        ch->last_error = rc;
        ch->last_error_ns = now;
        fdn__mutex_unlock(&sup->mu);
        set_state(sup, ch, fail_state, rc);
        return rc;
    }
    int64_t now = now_ns(sup);
    fdn__mutex_lock(&sup->mu);
    ch->healthy = true;
    ch->next_health_ns = ch->health_interval > 0 ? add_sat(now, ch->health_interval) : INT64_MAX;
    fdn__mutex_unlock(&sup->mu);
    set_state(sup, ch, FDN_SERVICE_RUNNING, 0);
    return 0;
}

/* Stop a RUNNING (or STARTING-failed-with-thread) child and move it to `target`. */
static void remove_child_locked(fdn_supervisor_t *sup, child_t *ch) FDN_REQUIRES(sup->mu);

/* Fail the adds posted by ch's worker loop, or by a thread ch's stop waits for
 * (fdn__supervisor_add_from): the poster waits for them, and we are about to join it or to
 * wait for it in ch's stop. Called after ctl.stop is set, so that no such thread posts a new
 * one (fdn__supervisor_add_from). */
static void fail_adds_by(fdn_supervisor_t *sup, child_t *ch) FDN_EXCLUDES(sup->mu)
{
    fdn__mutex_lock(&sup->mu);
    bool any = false;
    for (size_t i = 0; i < sup->n;) {
        child_t *k = sup->kids[i];
        if (k->add_pending && k->add_by == ch) {
            k->add_pending = false;
            k->add_rc =
                fdn_err_set(k->add_err, FDN_ECANCELED,
                            "service %s, which adds %s, is being stopped", ch->name, k->name);
            remove_child_locked(sup, k);
            k->add_done = true;
            any = true;
            continue;
        }
        i++;
    }
    if (any)
        pthread_cond_broadcast(&sup->cv);
    fdn__mutex_unlock(&sup->mu);
}

static void stop_child(fdn_supervisor_t *sup, child_t *ch, fdn_service_state_t target, int code)
    FDN_EXCLUDES(sup->mu)
{
    atomic_store_explicit(&ch->ctl.stop, true, memory_order_release);
    fdn_clock_kick(sup->clock);
    /* the adds waiting on threads this stop joins: its worker's, or those of threads of the
     * service's own that its stop waits for (fdn__supervisor_add_from) */
    fail_adds_by(sup, ch);
    if (ch->has_thread) {
        pthread_join(ch->thread, NULL);
        ch->has_thread = false;
        size_t live = atomic_fetch_sub_explicit(&sup->live_threads, 1, memory_order_relaxed);
        FDN_ASSERT(live > 0);
    }
    ch->ops->stop(ch->state);
    fdn__mutex_lock(&sup->mu);
    ch->healthy = false;
    ch->fail_pending = false;
    fdn__mutex_unlock(&sup->mu);
    set_state(sup, ch, target, code);
}

/* Stop every marked child, highest index first, moving each to its mark_target. Children
 * that are not running just take the target state. */
static void stop_marked(fdn_supervisor_t *sup, int code) FDN_EXCLUDES(sup->mu)
{
    for (;;) {
        child_t *ch = NULL;
        fdn__mutex_lock(&sup->mu);
        for (size_t i = sup->n; i-- > 0;) {
            if (sup->kids[i]->marked) {
                ch = sup->kids[i];
                ch->marked = false;
                break;
            }
        }
        bool running = ch != NULL && ch->st == FDN_SERVICE_RUNNING;
        fdn__mutex_unlock(&sup->mu);
        if (ch == NULL)
            return;
        if (running)
            stop_child(sup, ch, ch->mark_target, code);
        else if (ch->st != ch->mark_target)
            set_state(sup, ch, ch->mark_target, code);
    }
}

static void escalate(fdn_supervisor_t *sup, child_t *culprit, int code) FDN_EXCLUDES(sup->mu)
{
    fdn__mutex_lock(&sup->mu);
    bool first = !sup->failed;
    sup->failed = true;
    for (size_t i = 0; i < sup->n; i++) {
        child_t *c = sup->kids[i];
        if (c->st == FDN_SERVICE_RUNNING || c->st == FDN_SERVICE_RESTARTING || c == culprit) {
            c->marked = true;
            c->mark_target = c == culprit ? FDN_SERVICE_FAILED : FDN_SERVICE_STOPPED;
        }
    }
    fdn__mutex_unlock(&sup->mu);
    if (first && sup->on_escalating != NULL)
        sup->on_escalating(culprit->name, code, sup->user);
    stop_marked(sup, code);
    if (first && sup->on_escalation != NULL)
        sup->on_escalation(culprit->name, code, sup->user);
}

static bool wants_restart(fdn_restart_t r, int code)
{
    switch (r) {
    case FDN_RESTART_PERMANENT:
        return true;
    case FDN_RESTART_TRANSIENT:
        return code < 0;
    case FDN_RESTART_TEMPORARY:
        return false;
    }
    return false;
}

/* Handle a failure (code < 0) or normal exit (code == 0) of ch, which is RUNNING or whose
 * restart just failed (RESTARTING). */
static void handle_failure(fdn_supervisor_t *sup, child_t *ch, int code) FDN_EXCLUDES(sup->mu)
{
    int64_t now = now_ns(sup);
    bool escalating = false;
    int attempt = 0;
    int64_t backoff = 0;

    fdn__mutex_lock(&sup->mu);
    if (sup->failed || sup->stop_req) {
        fdn__mutex_unlock(&sup->mu);
        return;
    }
    if (code != 0) {
        ch->last_error = code;
        ch->last_error_ns = now;
    }
    bool restart = wants_restart(ch->restart, code);
    if (restart) {
        size_t keep = 0;
        for (size_t i = 0; i < sup->rs_n; i++)
            if (now - sup->rs_times[i] < sup->period)
                sup->rs_times[keep++] = sup->rs_times[i];
        sup->rs_n = keep;
        if ((int)sup->rs_n >= sup->max_restarts) {
            escalating = true;
        } else {
            sup->rs_times[sup->rs_n++] = now;
            if (!ch->restarted_once || now - ch->last_restart_ns >= sup->period)
                ch->consecutive = 0;
            ch->consecutive++;
            ch->restarted_once = true;
            ch->last_restart_ns = now;
            attempt = (int)ch->consecutive;
            backoff = sup->backoff_base;
            for (int k = 1; k < attempt && backoff < sup->backoff_max; k++)
                backoff = backoff > INT64_MAX / 2 ? INT64_MAX : backoff * 2;
            if (backoff > sup->backoff_max)
                backoff = sup->backoff_max;
        }
    }
    if (escalating) {
        fdn__mutex_unlock(&sup->mu);
        escalate(sup, ch, code);
        return;
    }
    if (!restart) {
        ch->marked = true;
        ch->mark_target = code < 0 ? FDN_SERVICE_FAILED : FDN_SERVICE_STOPPED;
    } else {
        size_t idx = 0;
        while (sup->kids[idx] != ch) {
            idx++;
            FDN_ASSERT(idx < sup->n); /* a failing child is in kids: only failed adds leave */
        }
        for (size_t i = 0; i < sup->n; i++) {
            child_t *c = sup->kids[i];
            bool in_set = c == ch || (sup->strategy == FDN_SUP_ONE_FOR_ALL) ||
                          (sup->strategy == FDN_SUP_REST_FOR_ONE && i > idx);
            if (!in_set)
                continue;
            if (c != ch && c->st != FDN_SERVICE_RUNNING && c->st != FDN_SERVICE_RESTARTING)
                continue;
            c->marked = true;
            if (c != ch && c->restart == FDN_RESTART_TEMPORARY) {
                c->mark_target = FDN_SERVICE_STOPPED;
            } else {
                /* a sibling whose restart is still pending (an earlier restart of the set, not
                 * run yet) is restarted once, later: not a new restart to report or count */
                c->count_restart = c == ch || c->st != FDN_SERVICE_RESTARTING;
                c->mark_target = FDN_SERVICE_RESTARTING;
                c->due_ns = add_sat(now, backoff);
            }
        }
    }
    fdn__mutex_unlock(&sup->mu);

    if (restart) {
        /* one callback per service being restarted, in start order; each restart is counted
         * (fdn_service_status_t.restarts) after its callback, so whoever sees the count finds
         * what the callback records (the runtime's event and fdn_supervisor_restarts_total) */
        for (size_t i = 0;; i++) {
            fdn__mutex_lock(&sup->mu);
            child_t *c = i < sup->n ? sup->kids[i] : NULL;
            bool hit = c != NULL && c->marked && c->mark_target == FDN_SERVICE_RESTARTING &&
                       c->count_restart;
            fdn__mutex_unlock(&sup->mu);
            if (c == NULL)
                break;
            if (!hit)
                continue;
            if (sup->on_restart != NULL)
                sup->on_restart(c->name, attempt, code, backoff, sup->user);
            fdn__mutex_lock(&sup->mu);
            c->restarts++;
            fdn__mutex_unlock(&sup->mu);
        }
    }
    stop_marked(sup, code);
}

/* ------------------------------------------------------------------------------------ */
/* The supervisor thread */

static bool has_pending_locked(fdn_supervisor_t *sup) FDN_REQUIRES(sup->mu)
{
    for (size_t i = 0; i < sup->n; i++)
        if (sup->kids[i]->fail_pending || sup->kids[i]->add_pending)
            return true;
    return false;
}

static void remove_child_locked(fdn_supervisor_t *sup, child_t *ch) FDN_REQUIRES(sup->mu)
{
    size_t i = 0;
    while (i < sup->n && sup->kids[i] != ch)
        i++;
    FDN_ASSERT(i < sup->n); /* only a child in kids is removed */
    if (i == sup->n)
        return;
    memmove(&sup->kids[i], &sup->kids[i + 1], (sup->n - i - 1) * sizeof(*sup->kids));
    sup->n--;
}

/* One unit of work; returns false when there was nothing to do (then *deadline is set). */
static bool do_one(fdn_supervisor_t *sup, int64_t *deadline) FDN_REQUIRES(sup->mu)
{
    int64_t now = now_ns(sup);
    /* 1. adds posted after start */
    for (size_t i = 0; i < sup->n; i++) {
        child_t *ch = sup->kids[i];
        if (!ch->add_pending)
            continue;
        ch->add_pending = false;
        if (sup->failed) {
            ch->add_rc =
                fdn_err_set(ch->add_err, FDN_EESCALATED, "supervisor %s has failed", sup->name);
        } else {
            fdn__mutex_unlock(&sup->mu);
            int rc = start_child(sup, ch, FDN_SERVICE_STOPPED, ch->add_err);
            fdn__mutex_lock(&sup->mu);
            ch->add_rc = rc;
        }
        if (ch->add_rc != 0)
            remove_child_locked(sup, ch);
        ch->add_done = true;
        pthread_cond_broadcast(&sup->cv);
        return true;
    }
    /* 2. failures, in start order */
    for (size_t i = 0; i < sup->n; i++) {
        child_t *ch = sup->kids[i];
        if (!ch->fail_pending)
            continue;
        ch->fail_pending = false;
        if (ch->fail_gen != ch->gen || ch->st != FDN_SERVICE_RUNNING)
            return true;
        int code = ch->fail_code;
        fdn__mutex_unlock(&sup->mu);
        handle_failure(sup, ch, code);
        fdn__mutex_lock(&sup->mu);
        return true;
    }
    /* 3. due restarts, lowest index first */
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < sup->n; i++) {
        child_t *ch = sup->kids[i];
        if (ch->st != FDN_SERVICE_RESTARTING)
            continue;
        if (ch->due_ns > now) {
            next = FDN_MIN(next, ch->due_ns);
            continue;
        }
        fdn__mutex_unlock(&sup->mu);
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = start_child(sup, ch, FDN_SERVICE_RESTARTING, &err);
        if (rc != 0)
            handle_failure(sup, ch, rc);
        fdn__mutex_lock(&sup->mu);
        return true;
    }
    /* 4. health polls */
    for (size_t i = 0; i < sup->n; i++) {
        child_t *ch = sup->kids[i];
        if (ch->st != FDN_SERVICE_RUNNING || ch->ops->health == NULL || ch->health_interval <= 0)
            continue;
        if (ch->next_health_ns > now) {
            next = FDN_MIN(next, ch->next_health_ns);
            continue;
        }
        ch->next_health_ns = add_sat(now, ch->health_interval);
        uint64_t gen = ch->gen;
        fdn__mutex_unlock(&sup->mu);
        int h = ch->ops->health(ch->state);
        fdn__mutex_lock(&sup->mu);
        if (ch->gen == gen && ch->st == FDN_SERVICE_RUNNING) {
            ch->healthy = h == 0;
            if (h != 0 && !ch->fail_pending) {
                ch->fail_pending = true;
                ch->fail_code = h < 0 ? h : FDN_EUNHEALTHY;
                ch->fail_gen = gen;
            }
        }
        return true;
    }
    *deadline = next;
    return false;
}

static void *sup_main(void *arg)
{
    fdn_supervisor_t *sup = arg;
    fdn__mutex_lock(&sup->mu);
    while (!sup->stop_req) {
        uint64_t seq = fdn_clock_kick_seq(sup->clock);
        int64_t deadline = INT64_MAX;
        if (do_one(sup, &deadline))
            continue;
        sup->idle = true;
        sup->next_deadline = deadline;
        pthread_cond_broadcast(&sup->cv);
        fdn__mutex_unlock(&sup->mu);
        fdn_clock_wait_until(sup->clock, deadline, &seq);
        fdn__mutex_lock(&sup->mu);
        sup->idle = false;
    }
    /* shutdown: fail pending adds, then stop everything in reverse order */
    for (size_t i = 0; i < sup->n;) {
        child_t *ch = sup->kids[i];
        if (ch->add_pending) {
            ch->add_pending = false;
            ch->add_rc = fdn_err_set(ch->add_err, FDN_ESHUTDOWN, "supervisor %s is shutting down",
                                     sup->name);
            remove_child_locked(sup, ch);
            ch->add_done = true;
            continue;
        }
        if (ch->st == FDN_SERVICE_RUNNING || ch->st == FDN_SERVICE_RESTARTING) {
            ch->marked = true;
            ch->mark_target = FDN_SERVICE_STOPPED;
        }
        i++;
    }
    /* the adders of the adds failed above are told now: one may be a worker that stop_marked
     * is about to join */
    pthread_cond_broadcast(&sup->cv);
    fdn__mutex_unlock(&sup->mu);
    stop_marked(sup, 0);
    fdn__mutex_lock(&sup->mu);
    sup->finished = true;
    /* phases only move forward: IDLE -> STARTING -> RUNNING -> STOPPING -> DONE */
    FDN_ASSERT(sup->phase == PH_RUNNING || sup->phase == PH_STOPPING);
    sup->phase = PH_DONE;
    pthread_cond_broadcast(&sup->cv);
    fdn__mutex_unlock(&sup->mu);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Public API */

int fdn_supervisor_create(fdn_supervisor_t **out, const fdn_supervisor_opts_t *opts)
{
    fdn_supervisor_opts_t def = FDN_SUPERVISOR_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (opts == NULL)
        opts = &def;
    if (opts->version != FDN_SUPERVISOR_OPTS_VERSION || opts->max_restarts < 0 ||
        opts->period_ns <= 0 || opts->backoff_base_ns < 0 || opts->backoff_max_ns < 0 ||
        (unsigned)opts->strategy > FDN_SUP_REST_FOR_ONE)
        return FDN_EINVAL;
    fdn_supervisor_t *sup = fdn__calloc(1, sizeof(*sup));
    if (sup == NULL)
        return FDN_ENOMEM;
    sup->rs_times = fdn__calloc((size_t)opts->max_restarts + 1, sizeof(int64_t));
    if (sup->rs_times == NULL) {
        fdn__free(sup);
        return FDN_ENOMEM;
    }
    copy_name(sup->name, opts->name != NULL ? opts->name : "supervisor");
    sup->clock = opts->clock;
    sup->strategy = opts->strategy;
    sup->max_restarts = opts->max_restarts;
    sup->period = opts->period_ns;
    sup->backoff_base = opts->backoff_base_ns;
    sup->backoff_max = FDN_MAX(opts->backoff_max_ns, opts->backoff_base_ns);
    sup->ctx = opts->ctx;
    sup->on_escalation = opts->on_escalation;
    sup->on_escalating = opts->on_escalating;
    sup->on_restart = opts->on_restart;
    sup->on_event = opts->on_event;
    sup->user = opts->user;
    pthread_mutex_init(&sup->mu, NULL);
    pthread_mutex_init(&sup->join_mu, NULL);
    (void)fdn__cond_init_mono(&sup->cv);
    sup->phase = PH_IDLE;
    atomic_init(&sup->live_threads, 0);
    *out = sup;
    return 0;
}

static int check_spec(const fdn_service_spec_t *spec, fdn_error_t *err)
{
    if (spec == NULL || spec->version != FDN_SERVICE_SPEC_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "service spec missing or of unknown version");
    if (spec->name == NULL || spec->name[0] == '\0' || strlen(spec->name) > FDN_SERVICE_NAME_MAX)
        return fdn_err_set(err, FDN_EINVAL, "service name must be 1..%d bytes",
                           FDN_SERVICE_NAME_MAX);
    if (spec->ops == NULL || spec->ops->start == NULL || spec->ops->stop == NULL)
        return fdn_err_set(err, FDN_EINVAL, "service %s: ops with start and stop required",
                           spec->name);
    if ((unsigned)spec->restart > FDN_RESTART_TEMPORARY || spec->health_interval_ns < 0)
        return fdn_err_set(err, FDN_EINVAL, "service %s: bad restart type or health interval",
                           spec->name);
    return 0;
}

static int append_locked(fdn_supervisor_t *sup, child_t *ch) FDN_REQUIRES(sup->mu)
{
    if (sup->n == sup->cap) {
        size_t cap = sup->cap ? sup->cap * 2 : 8;
        child_t **k = fdn__realloc(sup->kids, cap * sizeof(*k));
        if (k == NULL)
            return FDN_ENOMEM;
        sup->kids = k;
        sup->cap = cap;
    }
    FDN_ASSERT(sup->n < sup->cap);
    sup->kids[sup->n++] = ch;
    return 0;
}

int fdn_supervisor_add(fdn_supervisor_t *sup, const fdn_service_spec_t *spec, fdn_error_t *err)
{
    return fdn__supervisor_add_from(sup, spec, NULL, err);
}

int fdn__supervisor_add_from(fdn_supervisor_t *sup, const fdn_service_spec_t *spec,
                             const char *owner, fdn_error_t *err)
{
    if (sup == NULL)
        return FDN_EINVAL;
    int rc = check_spec(spec, err);
    if (rc != 0)
        return rc;
    child_t *ch = fdn__calloc(1, sizeof(*ch));
    if (ch == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory adding service %s", spec->name);
    copy_name(ch->name, spec->name);
    ch->ops = spec->ops;
    ch->state = spec->state;
    ch->restart = spec->restart;
    ch->health_interval = spec->health_interval_ns;
    ch->st = FDN_SERVICE_STOPPED;
    ch->ctl.sup = sup;
    ch->ctl.ch = ch;
    atomic_init(&ch->ctl.stop, false);

    bool inline_start = on_sup_thread(sup);
    child_t *by = on_worker_of(sup) ? t_worker : NULL;
    fdn__mutex_lock(&sup->mu);
    /* only an add that waits for the lifecycle thread (after the start) can wait for a stop
     * of the owner; before it, or during it, the add is appended and returns, and the owner
     * may be stopped in the supervisor's books while its threads run (a rolled-back start
     * that left a service running from create running: its ctl.stop is set) */
    if (by == NULL && owner != NULL && sup->phase != PH_IDLE && sup->phase != PH_STARTING)
        by = find_locked(sup, owner); /* (absent: an add like any other) */
    if (find_locked(sup, ch->name) != NULL) {
        fdn__mutex_unlock(&sup->mu);
        rc = fdn_err_set(err, FDN_EEXIST, "service %s already exists in supervisor %s", ch->name,
                         sup->name);
        fdn__free(ch);
        return rc;
    }
    if (sup->stop_req || sup->phase >= PH_STOPPING) {
        fdn__mutex_unlock(&sup->mu);
        fdn__free(ch);
        return fdn_err_set(err, FDN_ESHUTDOWN, "supervisor %s is shut down", sup->name);
    }
    if (sup->failed) {
        fdn__mutex_unlock(&sup->mu);
        fdn__free(ch);
        return fdn_err_set(err, FDN_EESCALATED, "supervisor %s has failed", sup->name);
    }
    if (by != NULL && atomic_load_explicit(&by->ctl.stop, memory_order_acquire)) {
        /* the lifecycle thread is (about to be) joining this thread, the worker of `by` or a
         * thread its stop waits for: never wait for it */
        fdn__mutex_unlock(&sup->mu);
        fdn__free(ch);
        return fdn_err_set(err, FDN_ECANCELED, "service %s is being stopped; %s not added",
                           by->name, spec->name);
    }
    if (append_locked(sup, ch) != 0) {
        fdn__mutex_unlock(&sup->mu);
        fdn__free(ch);
        return fdn_err_set(err, FDN_ENOMEM, "out of memory adding service %s", spec->name);
    }
    if (sup->phase == PH_IDLE || sup->phase == PH_STARTING) {
        fdn__mutex_unlock(&sup->mu);
        return 0;
    }
    if (inline_start) {
        fdn__mutex_unlock(&sup->mu);
        rc = start_child(sup, ch, FDN_SERVICE_STOPPED, err);
        if (rc != 0) {
            fdn__mutex_lock(&sup->mu);
            remove_child_locked(sup, ch);
            fdn__mutex_unlock(&sup->mu);
            fdn__free(ch);
        }
        return rc;
    }
    ch->add_pending = true;
    ch->add_err = err;
    ch->add_by = by;
    fdn__mutex_unlock(&sup->mu);
    fdn_clock_kick(sup->clock);
    fdn__mutex_lock(&sup->mu);
    while (!ch->add_done)
        cv_wait(sup, INT64_MAX);
    rc = ch->add_rc;
    fdn__mutex_unlock(&sup->mu);
    if (rc != 0)
        fdn__free(ch); /* already removed by the supervisor thread */
    return rc;
}

int fdn_supervisor_start(fdn_supervisor_t *sup, fdn_error_t *err)
{
    if (sup == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&sup->mu);
    if (sup->phase != PH_IDLE || sup->stop_req) {
        int rc = sup->phase == PH_IDLE || sup->phase >= PH_STOPPING ? FDN_ESHUTDOWN : FDN_EBUSY;
        fdn__mutex_unlock(&sup->mu);
        return fdn_err_set(err, rc, "supervisor %s cannot start now", sup->name);
    }
    sup->phase = PH_STARTING;
    t_starting = sup; /* cleared before every return below */
    int rc = 0;
    size_t started = 0;
    for (; started < sup->n && !sup->stop_req; started++) {
        child_t *ch = sup->kids[started];
        fdn__mutex_unlock(&sup->mu);
        rc = start_child(sup, ch, FDN_SERVICE_FAILED, err);
        fdn__mutex_lock(&sup->mu);
        if (rc != 0)
            break;
    }
    if (rc == 0 && sup->stop_req)
        rc = fdn_err_set(err, FDN_ESHUTDOWN, "supervisor %s shut down while starting", sup->name);
    if (rc == 0) {
        sup->thread_started = true; /* before the thread runs: on_sup_thread needs it */
        atomic_fetch_add_explicit(&sup->live_threads, 1, memory_order_relaxed);
        int prc = pthread_create(&sup->thread, NULL, sup_main, sup);
        if (prc != 0) {
            atomic_fetch_sub_explicit(&sup->live_threads, 1, memory_order_relaxed);
            sup->thread_started = false;
            rc = fdn_err_set(err, prc == ENOMEM ? FDN_ENOMEM : FDN_EAGAIN,
                             "cannot create the thread of supervisor %s", sup->name);
        }
    }
    if (rc != 0) {
        for (size_t i = 0; i < sup->n; i++) {
            child_t *ch = sup->kids[i];
            if (ch->st == FDN_SERVICE_RUNNING) {
                ch->marked = true;
                ch->mark_target = FDN_SERVICE_STOPPED;
            }
        }
        /* still STARTING while the rollback runs: another start answers FDN_EBUSY, a
         * shutdown waits for `finished` */
        FDN_ASSERT(sup->phase == PH_STARTING);
        fdn__mutex_unlock(&sup->mu);
        stop_marked(sup, 0);
        fdn__mutex_lock(&sup->mu);
        if (sup->stop_req) {
            sup->phase = PH_DONE;
            sup->finished = true; /* only now: shutdown's 0 means every service is stopped */
        } else {
            sup->phase = PH_IDLE; /* every service is stopped: start may be called again */
        }
        pthread_cond_broadcast(&sup->cv);
        fdn__mutex_unlock(&sup->mu);
        t_starting = NULL;
        return rc;
    }
    FDN_ASSERT(sup->phase == PH_STARTING);
    sup->phase = PH_RUNNING;
    pthread_cond_broadcast(&sup->cv);
    fdn__mutex_unlock(&sup->mu);
    t_starting = NULL;
    return 0;
}

int fdn_supervisor_shutdown(fdn_supervisor_t *sup, int64_t timeout_ms)
{
    if (sup == NULL)
        return FDN_EINVAL;
    /* on the lifecycle thread or a worker it joins while stopping: waiting would deadlock */
    bool self = on_lifecycle_or_worker(sup);
    fdn__mutex_lock(&sup->mu);
    sup->stop_req = true;
    if (sup->phase == PH_IDLE) {
        sup->phase = PH_DONE;
        sup->finished = true;
    } else if (sup->phase == PH_RUNNING) {
        sup->phase = PH_STOPPING;
    }
    fdn__mutex_unlock(&sup->mu);
    if (self)
        return 0;
    fdn_clock_kick(sup->clock);

    int64_t dl = fdn__deadline_after_ms(timeout_ms);
    fdn__mutex_lock(&sup->mu);
    while (!sup->finished) {
        if (cv_wait(sup, dl) == FDN_ETIMEDOUT && !sup->finished) {
            fdn__mutex_unlock(&sup->mu);
            return FDN_ETIMEDOUT;
        }
    }
    bool need_join = sup->thread_started;
    fdn__mutex_unlock(&sup->mu);
    if (need_join) {
        fdn__mutex_lock(&sup->join_mu);
        if (!sup->joined) {
            pthread_join(sup->thread, NULL);
            sup->joined = true;
            atomic_fetch_sub_explicit(&sup->live_threads, 1, memory_order_relaxed);
        }
        fdn__mutex_unlock(&sup->join_mu);
    }
    return 0;
}

void fdn_supervisor_destroy(fdn_supervisor_t *sup)
{
    if (sup == NULL)
        return;
    fdn_supervisor_shutdown(sup, -1);
    for (size_t i = sup->n; i-- > 0;) {
        child_t *ch = sup->kids[i];
        if (ch->ops->destroy != NULL)
            ch->ops->destroy(ch->state);
        fdn__free(ch);
    }
    fdn__free(sup->kids);
    fdn__free(sup->rs_times);
    pthread_mutex_destroy(&sup->mu);
    pthread_mutex_destroy(&sup->join_mu);
    pthread_cond_destroy(&sup->cv);
    fdn__free(sup);
}

int fdn_supervisor_inject_fault(fdn_supervisor_t *sup, const char *service, int code)
{
    if (sup == NULL || service == NULL || code > 0)
        return FDN_EINVAL;
    fdn__mutex_lock(&sup->mu);
    if (sup->phase != PH_RUNNING || sup->stop_req) {
        fdn__mutex_unlock(&sup->mu);
        return FDN_ESHUTDOWN;
    }
    child_t *ch = find_locked(sup, service);
    int rc = 0;
    if (ch == NULL) {
        rc = FDN_ESERVICE_NOT_FOUND;
    } else if (ch->st != FDN_SERVICE_RUNNING) {
        rc = FDN_EUNAVAILABLE;
    } else if (!ch->fail_pending) {
        ch->fail_pending = true;
        ch->fail_code = code;
        ch->fail_gen = ch->gen;
    }
    fdn__mutex_unlock(&sup->mu);
    if (rc == 0)
        fdn_clock_kick(sup->clock);
    return rc;
}

static void fill_status(const child_t *ch, fdn_service_status_t *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->name, ch->name, sizeof(out->name));
    out->state = ch->st;
    out->restart = ch->restart;
    out->restarts = ch->restarts;
    out->last_error = ch->last_error;
    out->last_error_ns = ch->last_error_ns;
    out->restart_due_ns = ch->st == FDN_SERVICE_RESTARTING ? ch->due_ns : 0;
    out->healthy = ch->st == FDN_SERVICE_RUNNING && ch->healthy;
}

int fdn_supervisor_service_status(fdn_supervisor_t *sup, const char *service,
                                  fdn_service_status_t *out)
{
    if (sup == NULL || service == NULL || out == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&sup->mu);
    child_t *ch = find_locked(sup, service);
    if (ch != NULL)
        fill_status(ch, out);
    fdn__mutex_unlock(&sup->mu);
    return ch != NULL ? 0 : FDN_ESERVICE_NOT_FOUND;
}

size_t fdn_supervisor_count(fdn_supervisor_t *sup)
{
    if (sup == NULL)
        return 0;
    fdn__mutex_lock(&sup->mu);
    size_t n = sup->n;
    fdn__mutex_unlock(&sup->mu);
    return n;
}

int fdn_supervisor_status_at(fdn_supervisor_t *sup, size_t i, fdn_service_status_t *out)
{
    if (sup == NULL || out == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&sup->mu);
    int rc = FDN_ENOENT;
    if (i < sup->n) {
        fill_status(sup->kids[i], out);
        rc = 0;
    }
    fdn__mutex_unlock(&sup->mu);
    return rc;
}

size_t fdn__supervisor_statuses(fdn_supervisor_t *sup, fdn_service_status_t *out, size_t cap)
{
    if (sup == NULL)
        return 0;
    fdn__mutex_lock(&sup->mu);
    size_t n = sup->n;
    for (size_t i = 0; i < n && i < cap; i++)
        fill_status(sup->kids[i], &out[i]);
    fdn__mutex_unlock(&sup->mu);
    return n;
}

bool fdn_supervisor_failed(fdn_supervisor_t *sup)
{
    if (sup == NULL)
        return false;
    fdn__mutex_lock(&sup->mu);
    bool f = sup->failed;
    fdn__mutex_unlock(&sup->mu);
    return f;
}

int fdn_supervisor_wait_idle(fdn_supervisor_t *sup, int64_t timeout_ms)
{
    if (sup == NULL)
        return FDN_EINVAL;
    int64_t dl = fdn__deadline_after_ms(timeout_ms);
    fdn__mutex_lock(&sup->mu);
    for (;;) {
        if (sup->phase != PH_RUNNING || sup->finished) {
            fdn__mutex_unlock(&sup->mu);
            return FDN_ESHUTDOWN;
        }
        if (sup->idle && !has_pending_locked(sup) && now_ns(sup) < sup->next_deadline) {
            fdn__mutex_unlock(&sup->mu);
            return 0;
        }
        if (cv_wait(sup, dl) == FDN_ETIMEDOUT) {
            bool ok = sup->idle && !has_pending_locked(sup) && now_ns(sup) < sup->next_deadline;
            fdn__mutex_unlock(&sup->mu);
            return ok ? 0 : FDN_ETIMEDOUT;
        }
    }
}

fdn_clock_t *fdn_supervisor_clock(const fdn_supervisor_t *sup)
{
    return sup != NULL ? sup->clock : NULL;
}

size_t fdn__supervisor_live_threads(fdn_supervisor_t *sup)
{
    return sup != NULL ? atomic_load_explicit(&sup->live_threads, memory_order_relaxed) : 0;
}

bool fdn__supervisor_on_thread(fdn_supervisor_t *sup)
{
    return sup != NULL && on_lifecycle_or_worker(sup);
}
