/* A real I/O failure for the durable writer: a cap on the size of the files the process
 * writes (RLIMIT_FSIZE), so that commits fail with EFBIG once the event file reaches it, and
 * events big and incompressible enough to get there in a few commits. The limit is
 * process-wide: call these in a child process (fork), never in the test runner itself. */
#ifndef FDN_TEST_FSIZE_LIMIT_H
#define FDN_TEST_FSIZE_LIMIT_H

#include <stdint.h>

#include <fdn/events.h>

/* Cap every file this process writes at `bytes` (UINT64_MAX: no cap again); SIGXFSZ is
 * ignored, so a write past the cap fails instead of killing the process. 0, or -1. */
int test_fsize_limit(uint64_t bytes);

/* An event of type "io" with 20 000 bytes of binary data that no compressor shrinks: a dozen
 * fill a 256 KiB cap. NULL when it cannot be made. */
fdn_event_t *test_incompressible_event(void);

#endif
