/*
 * DESIGN: the etcd watcher (storage/etcd_watch.h): the follow loop shared by the registry's
 * and the config service's etcd backends, on the client's watch stream (etcd_client.c).
 *
 * Thread: one, started by create and joined by destroy. It alternates a range (ops.relist)
 * and a watch from ops.revision() + 1; the watch's messages go to ops.on_message on this
 * thread, each with the revision the follower reaches by it: etcd catches a watch that starts
 * behind it up in batches of at most 1000 revisions (never splitting one), each headed with
 * etcd's current revision, so a follower that took the header's revision and then watched
 * again (a broken stream) would start past the batches still to come; a message with events
 * hands over its last event's mod_revision instead.
 *
 * A cancelled watch (compaction) or a confirmation with a revision below the start (etcd lost
 * its data) ends the watch and ranges again; so does on_message asking for it. A watch that
 * failed marks the watcher stale and is made again after a backoff (100 ms doubling to 1 s,
 * reset once etcd confirms a watch); after a message that could not be read (FDN_EPARSE,
 * FDN_ETOO_LARGE, FDN_EEXTERNAL) the watcher ranges first, since that message would end every
 * watch from the same revision.
 *
 * Locks: `mu` guards stopping and the pause state; it is never held during a network call or
 * a callback. destroy sets stopping, wakes the thread's naps (cv) and its watch
 * (fdn__etcd_watch_stop), then joins. pause interrupts the current watch
 * (fdn__etcd_watch_interrupt) and waits until the thread sits in its hold point.
 */
#include "storage/etcd_watch.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/alloc.h"
#include "core/lock.h"
#include "core/sync.h"

#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    1000
#define MAX_WATCH_MESSAGE (64u << 20) /* a catch-up message may carry many revisions */

struct fdn__etcd_watcher {
    fdn__etcd_t *cli;
    fdn__etcd_watch_t *watch;
    const char *key;
    size_t keylen;
    const char *range_end;
    size_t relen;
    fdn__etcd_watcher_ops_t ops;
    void *user;

    fdn__mutex_t mu;
    pthread_cond_t cv;
    bool stopping FDN_MEMBER_GUARDED_BY(mu);
    bool paused FDN_MEMBER_GUARDED_BY(mu); /* fdn__etcd_watcher_pause */
    bool idle FDN_MEMBER_GUARDED_BY(mu);   /* the thread waits while paused */

    pthread_t thr; /* running from create to destroy */
    _Atomic bool stale;
    _Atomic uint64_t compactions, errors;
};

/* One watch: what its messages said. */
typedef struct run {
    fdn__etcd_watcher_t *w;
    int64_t from; /* the watch's start revision */
    bool created; /* etcd confirmed the watch */
    int ask;      /* FDN__ETCD_WATCHER_*: why the watch was ended from here */
} run_t;

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static int on_message(const fdn__etcd_watch_msg_t *m, void *user)
{
    run_t *run = user;
    fdn__etcd_watcher_t *w = run->w;
    if (m->canceled) {
        if (m->compact_revision > 0) /* `from` was compacted away */
            count(&w->compactions);
        run->ask = FDN__ETCD_WATCHER_RELIST;
        return 1;
    }
    if (m->created) {
        if (m->revision > 0 && m->revision < run->from - 1) {
            /* the store is behind the follower (etcd lost its data): events cannot fix that */
            run->ask = FDN__ETCD_WATCHER_RELIST;
            return 1;
        }
        run->created = true;
        atomic_store_explicit(&w->stale, false, memory_order_relaxed);
    }
    /* A catch-up batch's header carries etcd's current revision while the batch stops at 1000
     * revisions and the rest follows: the follower's state holds the last event's revision
     * (a batch never splits a revision), from which a watch made again must start. */
    fdn__etcd_watch_msg_t held = *m;
    if (held.nevents > 0) {
        int64_t last = held.events[held.nevents - 1].kv.mod_revision;
        if (last > 0 && last < held.revision)
            held.revision = last;
    } else if (held.created && held.revision > run->from - 1) {
        held.revision = run->from - 1; /* the events from `from` on are still to come */
    }
    run->ask = w->ops.on_message(w->user, &held);
    return run->ask != FDN__ETCD_WATCHER_GO_ON;
}

/* Wait while paused. Returns true when stopping. */
static bool hold_point(fdn__etcd_watcher_t *w)
{
    fdn__mutex_lock(&w->mu);
    while (w->paused && !w->stopping) {
        w->idle = true;
        pthread_cond_broadcast(&w->cv);
        pthread_cond_wait(&w->cv, &w->mu);
    }
    w->idle = false;
    bool s = w->stopping;
    fdn__mutex_unlock(&w->mu);
    return s;
}

/* Sleep ms unless stopping. Returns true when stopping. */
static bool nap(fdn__etcd_watcher_t *w, int64_t ms)
{
    return fdn__cond_nap(&w->cv, &w->mu, &w->stopping, ms);
}

static int64_t longer(int64_t backoff)
{
    return backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
}

static void *watcher_main(void *arg)
{
    fdn__etcd_watcher_t *w = arg;
    /* a follower that could not range at start (etcd away) ranges first */
    bool need_list = w->ops.revision(w->user) == 0;
    int64_t backoff = BACKOFF_MIN_MS;
    while (!hold_point(w)) {
        if (need_list) {
            if (w->ops.relist(w->user) < 0) {
                atomic_store_explicit(&w->stale, true, memory_order_relaxed);
                if (nap(w, backoff))
                    break;
                backoff = longer(backoff);
                continue;
            }
            need_list = false;
        }
        run_t run = {w, w->ops.revision(w->user) + 1, false, FDN__ETCD_WATCHER_GO_ON};
        int rc = fdn__etcd_watch_run(w->watch, w->cli, w->key, w->keylen, w->range_end, w->relen,
                                     run.from, MAX_WATCH_MESSAGE, on_message, &run, NULL);
        if (run.created)
            backoff = BACKOFF_MIN_MS;
        if (rc == FDN_ECANCELED)
            continue; /* stopping or paused: hold_point decides */
        if (rc == 0 && run.ask != FDN__ETCD_WATCHER_GO_ON) {
            need_list = true;
            if (run.ask == FDN__ETCD_WATCHER_RELIST_LATER && nap(w, backoff))
                break;
            continue;
        }
        count(&w->errors);
        atomic_store_explicit(&w->stale, true, memory_order_relaxed);
        if (rc == FDN_EPARSE || rc == FDN_ETOO_LARGE || rc == FDN_EEXTERNAL)
            need_list = true;
        if (nap(w, backoff))
            break;
        backoff = longer(backoff);
    }
    return NULL;
}

/* Free w, whose thread is not running. */
static void watcher_free(fdn__etcd_watcher_t *w)
{
    fdn__etcd_watch_destroy(w->watch);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    fdn__free(w);
}

int fdn__etcd_watcher_create(fdn__etcd_watcher_t **out, fdn__etcd_t *cli, const char *key,
                             size_t keylen, const char *range_end, size_t relen,
                             const fdn__etcd_watcher_ops_t *ops, void *user,
                             const char *thread_name, fdn_error_t *err)
{
    *out = NULL;
    fdn__etcd_watcher_t *w = fdn__calloc(1, sizeof(*w));
    if (w == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "etcd watch");
    int rc = fdn__etcd_watch_create(&w->watch);
    if (rc < 0) {
        fdn__free(w);
        return fdn_err_set(err, rc, "etcd watch");
    }
    w->cli = cli;
    w->key = key;
    w->keylen = keylen;
    w->range_end = range_end;
    w->relen = relen;
    w->ops = *ops;
    w->user = user;
    pthread_mutex_init(&w->mu, NULL);
    (void)fdn__cond_init_mono(&w->cv);
    atomic_init(&w->stale, ops->revision(user) == 0); /* never ranged: nothing confirmed */
    if (pthread_create(&w->thr, NULL, watcher_main, w) != 0) {
        watcher_free(w);
        return fdn_err_set(err, FDN_EAGAIN, "etcd watch: cannot start the watch thread");
    }
    pthread_setname_np(w->thr, thread_name);
    *out = w;
    return 0;
}

void fdn__etcd_watcher_destroy(fdn__etcd_watcher_t *w)
{
    if (w == NULL)
        return;
    fdn__cond_raise(&w->cv, &w->mu, &w->stopping);
    fdn__etcd_watch_stop(w->watch);
    pthread_join(w->thr, NULL);
    watcher_free(w);
}

bool fdn__etcd_watcher_stale(const fdn__etcd_watcher_t *w)
{
    return atomic_load_explicit(&w->stale, memory_order_relaxed);
}

void fdn__etcd_watcher_pause(fdn__etcd_watcher_t *w, bool pause)
{
    fdn__mutex_lock(&w->mu);
    w->paused = pause;
    pthread_cond_broadcast(&w->cv);
    fdn__mutex_unlock(&w->mu);
    if (!pause)
        return;
    fdn__etcd_watch_interrupt(w->watch);
    fdn__mutex_lock(&w->mu);
    while (!w->idle && !w->stopping)
        pthread_cond_wait(&w->cv, &w->mu);
    fdn__mutex_unlock(&w->mu);
}

uint64_t fdn__etcd_watcher_compactions(const fdn__etcd_watcher_t *w)
{
    return atomic_load_explicit(&w->compactions, memory_order_relaxed);
}

uint64_t fdn__etcd_watcher_errors(const fdn__etcd_watcher_t *w)
{
    return atomic_load_explicit(&w->errors, memory_order_relaxed);
}
