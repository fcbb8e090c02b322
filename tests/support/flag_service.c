/* DESIGN: the flag service of the tests (see flag_service.h): start and stop store the flag,
 * so a test can see whether the supervisor has the service running. */
#include "flag_service.h"

static int s_start(void *st, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    atomic_store(&((svc_t *)st)->running, true);
    return 0;
}

static void s_stop(void *st)
{
    atomic_store(&((svc_t *)st)->running, false);
}

const fdn_service_ops_t test_flag_service_ops = {s_start, s_stop, NULL, NULL, NULL};
