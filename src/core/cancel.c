/*
 * DESIGN: a thread's cut descriptor (core/cancel.h): one thread-local int, -1 by default. The
 * descriptor is level-triggered and never drained by readers (an eventfd written once: every
 * call on a thread that names it is cut from then on), so a reader only polls it.
 * Threads: any; each touches its own thread-local only.
 */
#include "core/cancel.h"

#include <poll.h>

static _Thread_local int tl_cut = -1;

int fdn__cut_set(int fd)
{
    int prev = tl_cut;
    tl_cut = fd;
    return prev;
}

int fdn__cut_fd(void)
{
    return tl_cut;
}

bool fdn__cut_revents(short revents)
{
    /* POLLHUP: a pipe whose write end was closed (read answers at once, as select's
     * "readable"); POLLNVAL (not open) and POLLERR alone are no cut */
    return (revents & (POLLIN | POLLHUP)) != 0 && (revents & POLLNVAL) == 0;
}

bool fdn__cut_now(void)
{
    if (tl_cut < 0)
        return false;
    struct pollfd p = {.fd = tl_cut, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && fdn__cut_revents(p.revents);
}
