/*
 * DESIGN: SIGPIPE guard (core/sigpipe.h). Three system calls when SIGPIPE was not blocked:
 * block it (pthread_sigmask), look at the pending set after the I/O (sigpending), restore the
 * mask; a fourth (sigtimedwait with a zero timeout) only when the I/O raised one. That is
 * well under a microsecond, next to a network round trip of tens of microseconds.
 * Threads: any; only the calling thread's mask and pending set are touched.
 */
#include "core/sigpipe.h"

#include <pthread.h>
#include <time.h>

static bool pipe_pending(void)
{
    sigset_t p;
    return sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1;
}

void fdn__sigpipe_block(fdn__sigpipe_guard_t *g)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    g->was_pending = pipe_pending();
    g->blocked =
        pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0 && sigismember(&g->old, SIGPIPE) == 0;
}

void fdn__sigpipe_restore(fdn__sigpipe_guard_t *g)
{
    if (!g->blocked)
        return; /* it was blocked already: whatever is pending belongs to the caller */
    if (!g->was_pending && pipe_pending()) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        static const struct timespec zero = {0, 0};
        (void)sigtimedwait(&set, NULL, &zero); /* take the one our I/O raised */
    }
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
