/* See fsize_limit.h. */
#include "fsize_limit.h"

#include <signal.h>
#include <sys/resource.h>

int test_fsize_limit(uint64_t bytes)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = bytes == UINT64_MAX ? RLIM_INFINITY : (rlim_t)bytes,
                        .rlim_max = RLIM_INFINITY};
    return setrlimit(RLIMIT_FSIZE, &rl) == 0 ? 0 : -1;
}

fdn_event_t *test_incompressible_event(void)
{
    static uint8_t d[20000];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 2654435761u >> 13);
    fdn_event_spec_t sp = FDN_EVENT_SPEC_INIT;
    sp.type = "io";
    sp.content_type = FDN_EVENT_CT_BINARY;
    sp.data = d;
    sp.data_len = sizeof(d);
    fdn_event_t *ev = NULL;
    return fdn_event_new(&ev, &sp, NULL) == 0 ? ev : NULL;
}

int test_capped_store(const char *path, const fdn_events_opts_t *opts, fdn_events_t **es,
                      fdn_event_t **ev)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    if (opts != NULL)
        o = *opts;
    o.durable_path = path;
    if (fdn_events_create(es, &o, NULL) != 0)
        return 10;
    if (test_fsize_limit(256 * 1024) != 0)
        return 11;
    *ev = test_incompressible_event();
    return *ev != NULL ? 0 : 12;
}
