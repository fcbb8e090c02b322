/* Private clock interface: the state of the system clock's TSC path (clock.c), for tests and
 * benchmarks. */
#ifndef FDN_CORE_CLOCK_INT_H
#define FDN_CORE_CLOCK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <fdn/clock.h>

/* How far the system clock's reads may be from CLOCK_MONOTONIC (and wall reads from
 * CLOCK_REALTIME, but for a step made within the last FDN__CLOCK_WALL_LAG_NS) on the TSC path:
 * the bound tests check. The nominal error is a few microseconds (clock.c, DESIGN). */
#define FDN__CLOCK_TSC_ERROR_NS 100000LL
#define FDN__CLOCK_WALL_LAG_NS  1000000LL
/* The system clock's monotonic reads never decrease within a thread. Across threads a read
 * that happens after another may be lower by at most this much: the TSC is read without a fence
 * (a fence doubles its cost), so it can run a little before the loads preceding it, within the
 * CPU's reorder window (tens of nanoseconds); a piece change never adds to it (clock.c). */
#define FDN__CLOCK_CROSS_THREAD_NS 1000LL

/* Whether the system clock reads the TSC (false: every read is clock_gettime). */
bool fdn__clock_tsc_active(void);

/* Pieces of the TSC mapping made so far in this process (0 when the TSC is not used): a test
 * reads it to know that re-anchoring happened while it compared reads. */
uint64_t fdn__clock_tsc_pieces(void);

/* Step a manual clock's wall time alone by delta_ns (either sign), as a step of CLOCK_REALTIME
 * (settimeofday, an NTP step) moves the system's wall time and not its monotonic one: for the
 * tests of code that turns one into the other (wall - mono, the event store's clock offset).
 * Waiters are not woken (their deadlines are monotonic). 0, or FDN_EINVAL (not a manual
 * clock, or a wall time past int64). */
int fdn__clock_step_wall(fdn_clock_t *c, int64_t delta_ns);

#endif
