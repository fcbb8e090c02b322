/*
 * DESIGN: the breaker guard of an etcd client (infra/etcd_guard.h). The client lives in the
 * storage layer, below the breaker (infra), so it only knows a guard interface
 * (fdn__etcd_guard_ops_t); this file adapts an fdn_breaker to it: admit = fdn_breaker_acquire
 * (the permit copied into the client's opaque permit), done = fdn_breaker_record with the
 * call's transport error or 0, state = fdn_breaker_state, destroy = fdn_breaker_destroy.
 * Installed by the registry's etcd backend on its client and by the runtime on its config
 * follower's client. Threads: the breaker's (any); no state of its own.
 */
#include "infra/etcd_guard.h"

#include <stdio.h>
#include <string.h>

#include <fdn/breaker.h>

_Static_assert(sizeof(fdn_breaker_permit_t) <= sizeof(fdn__etcd_permit_t),
               "a breaker permit fits the client's permit");

static int admit(void *g, fdn__etcd_permit_t *permit)
{
    fdn_breaker_permit_t p;
    int rc = fdn_breaker_acquire(g, &p);
    if (rc == 0)
        memcpy(permit, &p, sizeof(p));
    return rc;
}

static void done(void *g, const fdn__etcd_permit_t *permit, int rc)
{
    fdn_breaker_permit_t p;
    memcpy(&p, permit, sizeof(p));
    fdn_breaker_record(g, &p, rc);
}

static int state(void *g)
{
    return (int)fdn_breaker_state(g);
}

static void destroy(void *g)
{
    fdn_breaker_destroy(g);
}

static const fdn__etcd_guard_ops_t BREAKER_GUARD = {admit, done, state, destroy};

fdn_breaker_t *fdn__etcd_guard_breaker_of(const fdn__etcd_t *c)
{
    const fdn__etcd_guard_ops_t *ops = NULL;
    void *g = fdn__etcd_guard(c, &ops);
    return g != NULL && ops->admit == admit ? g : NULL;
}

int fdn__etcd_guard_breaker(fdn__etcd_t *c, const char *client)
{
    fdn_breaker_opts_t bo = FDN_BREAKER_OPTS_INIT;
    bo.failure_threshold = 3;
    bo.window_ms = 10000;
    bo.recovery_time_ms = 500;
    bo.probe_timeout_ms = fdn__etcd_timeout_ms(c) * 2 + 100;
    char name[64];
    snprintf(name, sizeof(name), "etcd.%s", client);
    fdn_breaker_t *b = NULL;
    int rc = fdn_breaker_create(&b, name, &bo);
    if (rc != 0)
        return rc;
    rc = fdn__etcd_set_guard(c, &BREAKER_GUARD, b);
    if (rc != 0)
        fdn_breaker_destroy(b);
    return rc;
}
