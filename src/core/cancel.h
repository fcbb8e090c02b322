/* A thread's cut descriptor: a caller high up (the admin server, on its threads) names a
 * descriptor that turns readable when the blocking calls it makes into lower layers must end
 * now (its shutdown deadline passed); code low down that waits on the network for long (the
 * event store's PostgreSQL client, src/storage/event_pg.c) polls it beside its socket and
 * gives up when it is readable. A thread-local, not a parameter: the calls in between (the
 * public fdn_events_* API, the store, its backend table) need not carry it, and only calls
 * made on that thread are cut, never those another user of the same store makes.
 * Threads: each thread sees only its own value; the descriptor is the setter's, which keeps it
 * open while any thread may have it set (the admin server: until its threads are joined). */
#ifndef FDN_CORE_CANCEL_H
#define FDN_CORE_CANCEL_H

#include <stdbool.h>

/** Set the calling thread's cut descriptor (-1: none); returns the previous one. */
int fdn__cut_set(int fd);

/** The calling thread's cut descriptor, -1 when none. */
int fdn__cut_fd(void);

/** Whether poll's revents for a cut descriptor say "cut": readable (POLLIN), or a pipe whose
 * write end is closed (POLLHUP). Not POLLNVAL (the descriptor is not open: a stale setting)
 * nor POLLERR alone: a caller polling it drops it for the rest of its wait, since such a
 * descriptor answers every poll at once. */
bool fdn__cut_revents(short revents);

/** The calling thread's cut descriptor is set and readable (one poll, no wait). */
bool fdn__cut_now(void);

#endif
