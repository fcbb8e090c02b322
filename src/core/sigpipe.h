/* SIGPIPE around writes to sockets by code that uses plain write() (hiredis 0.14 does): a peer
 * that closed its end makes the next write raise SIGPIPE, whose default action ends the whole
 * process. A library must not change the process's signal disposition, so the writing thread
 * blocks SIGPIPE for the duration of the I/O, and a SIGPIPE the I/O raised is taken off the
 * thread's pending set before it is unblocked (a SIGPIPE that was already pending is left).
 * The write itself then fails with EPIPE, which the caller handles as a broken connection.
 * Threads: any; the state is the caller's (on its stack) and the thread's signal mask. */
#ifndef FDN_CORE_SIGPIPE_H
#define FDN_CORE_SIGPIPE_H

#include <signal.h>
#include <stdbool.h>

typedef struct fdn__sigpipe_guard {
    sigset_t old;     /* the thread's mask before */
    bool was_pending; /* SIGPIPE was pending before: not ours to take */
    bool blocked;     /* SIGPIPE was not blocked before */
} fdn__sigpipe_guard_t;

void fdn__sigpipe_block(fdn__sigpipe_guard_t *g);
void fdn__sigpipe_restore(fdn__sigpipe_guard_t *g);

#endif
