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

/* What the I/O-failure children start with: a durable store on path (opts: NULL for the
 * defaults; its durable_path is set to path), the file cap of 256 KiB, and one
 * incompressible event. 0, or the exit code for the child's step that failed: 10 (create),
 * 11 (cap), 12 (event). */
int test_capped_store(const char *path, const fdn_events_opts_t *opts, fdn_events_t **es,
                      fdn_event_t **ev);

#endif
