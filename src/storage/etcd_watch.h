/* The etcd watcher (storage layer): one thread that keeps a follower's state in step with a
 * key range of etcd, on top of the client's watch stream (storage/etcd_client.h). It owns the
 * loop every follower needs and nothing of what it follows:
 *
 *   - watch from the follower's revision + 1 and hand every message to on_message, with the
 *     revision the follower reaches by it (a catch-up batch's last event's, not etcd's header
 *     revision, which is already the end of the catch-up);
 *   - a watch cancelled by compaction, or answered with a revision below the follower's (etcd
 *     lost its data), or ended by on_message asking for it: range again (ops.relist), which
 *     replaces the follower's state, then watch on;
 *   - a watch that broke (etcd away, an unreadable message): mark stale, wait a backoff
 *     (100 ms doubling to 1 s; back to 100 ms once etcd confirms a watch), watch again from
 *     the same revision (range again first after an unreadable message, so the follower moves
 *     past it); a relist that fails is retried the same way;
 *   - stale is cleared when etcd confirms a watch.
 *
 * The follower (infra/registry_etcd.c, services/config_etcd.c) ranges once itself before it
 * creates the watcher (when that failed, etcd being away, its revision is 0: the watcher starts
 * stale and ranges first); its callbacks run on the watcher's thread, one at a time, with no lock
 * of the watcher held. */
#ifndef FDN_STORAGE_ETCD_WATCH_H
#define FDN_STORAGE_ETCD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/error.h>

#include "storage/etcd_client.h"

typedef struct fdn__etcd_watcher fdn__etcd_watcher_t;

/* What on_message asks the watcher for. */
enum {
    FDN__ETCD_WATCHER_GO_ON = 0,        /* keep watching */
    FDN__ETCD_WATCHER_RELIST = 1,       /* end this watch and range again at once */
    FDN__ETCD_WATCHER_RELIST_LATER = 2, /* end this watch and range again after a backoff */
};

typedef struct fdn__etcd_watcher_ops {
    /* Range the key range and replace the follower's state with it. 0, or a negative code:
     * the watcher marks itself stale and calls again after a backoff. */
    int (*relist)(void *user);
    /* One message of a watch that etcd confirmed (cancellations and a confirmation behind
     * the follower's revision are the watcher's own business). Returns FDN__ETCD_WATCHER_*.
     * m->revision is what the follower's state holds once the message is applied: for a
     * message with events, its last event's mod_revision (etcd's header revision runs ahead
     * of a catch-up batch, whose rest follows in later messages); for the confirmation, the
     * revision the watch started after; else etcd's header revision. */
    int (*on_message)(void *user, const fdn__etcd_watch_msg_t *m);
    /* The revision the follower's state holds: a watch starts at it + 1. */
    int64_t (*revision)(void *user);
} fdn__etcd_watcher_ops_t;

/* Start a watcher of [key, range_end) on client cli, on a thread named thread_name. cli, key,
 * range_end, ops and user are borrowed: they must outlive the watcher. 0, FDN_ENOMEM,
 * FDN_EAGAIN (no thread), FDN_EINIT (libcurl). */
int fdn__etcd_watcher_create(fdn__etcd_watcher_t **out, fdn__etcd_t *cli, const char *key,
                             size_t keylen, const char *range_end, size_t relen,
                             const fdn__etcd_watcher_ops_t *ops, void *user,
                             const char *thread_name, fdn_error_t *err);

/* Stop the thread (its watch ends at once), join it and free w. NULL accepted. Owner. */
void fdn__etcd_watcher_destroy(fdn__etcd_watcher_t *w);

/* Is the follower's state possibly behind etcd (a watch broke and no new one is confirmed)?
 * Any thread. */
bool fdn__etcd_watcher_stale(const fdn__etcd_watcher_t *w);

/* Pause (tests): returns once the thread waits, its watch ended; no callback runs until
 * fdn__etcd_watcher_pause(w, false). Any thread. */
void fdn__etcd_watcher_pause(fdn__etcd_watcher_t *w, bool pause);

/* Watches cancelled by compaction, and watches that broke, since create. Any thread. */
uint64_t fdn__etcd_watcher_compactions(const fdn__etcd_watcher_t *w);
uint64_t fdn__etcd_watcher_errors(const fdn__etcd_watcher_t *w);

#endif
