/* The smallest supervised service for tests: start sets `running`, stop clears it, no run
 * loop. Shared by the allocation sweeps and the fault tests of the supervisor and runtime. */
#ifndef FDN_TEST_FLAG_SERVICE_H
#define FDN_TEST_FLAG_SERVICE_H

#include <stdatomic.h>

#include <fdn/supervisor.h>

typedef struct svc {
    atomic_bool running;
} svc_t;

/* Ops for a service whose state is an svc_t. */
extern const fdn_service_ops_t test_flag_service_ops;

#endif
