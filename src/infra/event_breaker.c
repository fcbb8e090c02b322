/*
 * DESIGN: the circuit breaker around the event store's PostgreSQL backend
 * (fdn_events_set_breaker). The store lives in the services layer, below the breaker
 * (infrastructure), so it cannot call fdn_breaker_* itself: this file hands it a guard, a
 * table of three functions over one fdn_breaker (services/event_store_int.h,
 * fdn__evs_guard_ops_t), and the store calls them through the table around each call on
 * the engine: admit (fdn_breaker_acquire), record (fdn_breaker_record: a failure when the
 * engine did not answer or timed out; a call its caller cut short, FDN_ECANCELED, is released
 * unrecorded: fdn_breaker_release), state (for /health, /metrics and Retry-After).
 * The permit (two words) travels in the store's call frame.
 * Threads: any; the breaker is thread-safe. Lifetime: the caller's breaker must outlive the
 * store, or be removed (NULL) first.
 */
#include <string.h>

#include <fdn/breaker.h>
#include <fdn/events.h>

#include "services/event_store_int.h"

_Static_assert(sizeof(fdn_breaker_permit_t) <= 2 * sizeof(uint64_t),
               "a breaker permit fits the store's two words");

static int guard_admit(void *g, uint64_t permit[2])
{
    fdn_breaker_permit_t p;
    int rc = fdn_breaker_acquire(g, &p);
    if (rc == 0)
        memcpy(permit, &p, sizeof(p));
    return rc;
}

static void guard_record(void *g, const uint64_t permit[2], int rc)
{
    fdn_breaker_permit_t p;
    memcpy(&p, permit, sizeof(p));
    if (rc == FDN_ECANCELED) /* cut short by its caller (core/cancel.h): says nothing */
        fdn_breaker_release(g, &p);
    else
        fdn_breaker_record(g, &p, rc);
}

static int guard_state(void *g, int64_t *retry_ms)
{
    fdn_breaker_status_t st;
    *retry_ms = -1;
    if (fdn_breaker_status(g, &st) != 0)
        return FDN_BREAKER_CLOSED;
    if (st.state == FDN_BREAKER_OPEN)
        *retry_ms = st.ms_until_half_open;
    return (int)st.state;
}

static const fdn__evs_guard_ops_t breaker_guard = {guard_admit, guard_record, guard_state};

int fdn_events_set_breaker(fdn_events_t *es, struct fdn_breaker *b)
{
    if (es == NULL)
        return FDN_EINVAL;
    return fdn__evs_set_guard(es, b != NULL ? &breaker_guard : NULL, b);
}
