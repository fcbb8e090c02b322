/* Who and where a record comes from, cheaply: the process id, the calling thread's id and
 * random bytes for UUIDs, each without a system call on the usual path.
 *
 * glibc no longer caches getpid(2), gettid(2) is a system call, and getrandom(2) is one per
 * call: an event built with all three paid three system calls, the most expensive part of a
 * batch of events posted over HTTP. Here the pid is cached process-wide, the tid per thread,
 * and random bytes come from a per-thread buffer refilled by one getrandom(2) per 32 UUIDs.
 *
 * Fork: a child handler (pthread_atfork, registered on first use) forgets the cached pid and
 * the forking thread's tid and buffer, so a child never reports its parent's ids and never
 * hands out the random bytes its parent will also use.
 *
 * Threads: any. */
#ifndef FDN_CORE_IDENT_H
#define FDN_CORE_IDENT_H

#include <stdint.h>

/* getpid(2), cached. */
uint32_t fdn__pid(void);

/* gettid(2) of the calling thread, cached. */
uint32_t fdn__tid(void);

/* 16 bytes from the kernel's CSPRNG (through the calling thread's buffer). Returns 0 or
 * FDN_EIO (getrandom failed; b is untouched). */
int fdn__random16(unsigned char b[16]);

#endif
