/*
 * DESIGN: breaker tickets (fdn_breaker_acquire_ticket / fdn_breaker_report_ticket): permits
 * the breaker keeps for callers that cannot hold one between two calls, such as programs that
 * use a breaker over HTTP.
 *
 * One table per breaker, made on the first ticket and published through the breaker's
 * anchor with a CAS (the loser frees its copy); freed when the breaker is destroyed. The
 * table is a ring of FDN_BREAKER_TICKETS_MAX slots indexed by sequence number: tickets are
 * taken in sequence order, so [head, tail) holds every outstanding one and a slot is found
 * from its ticket in O(1). A ticket id is its sequence number XOR a per-table random key, so
 * ids of one breaker are not small integers a client could guess from another's.
 *
 * Expiry: a ticket taken at t expires at t + probe_timeout (the options of the moment it was
 * taken). Deadlines of later tickets are later unless the options changed, so settling pops
 * from the head while the head has expired or was reported; a ticket behind a longer-lived one
 * waits for it (it is settled late, never early). An expired ticket is recorded as a failure
 * with its timeout as duration, so a half-open probe that never reports reopens the breaker.
 *
 * Locks: the table's mutex guards the ring; breaker calls (record, release) are made after it
 * is released, so the table lock is never held with the breaker's.
 */
#include <fdn/breaker.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/lock.h"
#include "core/sync.h"
#include "infra/breaker_int.h"

#define NSLOTS    FDN_BREAKER_TICKETS_MAX
#define SETTLE_AT 32 /* expired tickets recorded per pass (outside the lock) */

typedef struct tslot {
    uint64_t seq;
    fdn_breaker_permit_t permit;
    int64_t taken_ns;
    int64_t deadline_ns;
    bool live;
} tslot_t;

typedef struct tickets {
    fdn__mutex_t mu;
    uint64_t key;                            /* ticket = seq ^ key */
    uint64_t head FDN_MEMBER_GUARDED_BY(mu); /* oldest sequence number not yet settled */
    uint64_t tail FDN_MEMBER_GUARDED_BY(mu); /* next sequence number */
    size_t live FDN_MEMBER_GUARDED_BY(mu);
    tslot_t ring[NSLOTS] FDN_MEMBER_GUARDED_BY(mu);
} tickets_t;

void fdn__tickets_free(void *p)
{
    tickets_t *t = p;
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    fdn__free(t);
}

static tickets_t *table(fdn_breaker_t *b, bool make)
{
    _Atomic(void *) *anchor = fdn__breaker_ticket_anchor(b);
    tickets_t *t = atomic_load_explicit(anchor, memory_order_acquire);
    if (t != NULL || !make)
        return t;
    t = fdn__calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        fdn__free(t);
        return NULL;
    }
    uint64_t seed[2] = {(uint64_t)fdn__mono_now_ns(), (uint64_t)(uintptr_t)t};
    t->key = fdn__hash(seed, sizeof(seed));
    void *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(anchor, &expected, t, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        fdn__tickets_free(t); /* another thread made it first */
        return expected;
    }
    return t;
}

/* Pop settled and expired tickets from the head (at most SETTLE_AT expired ones, copied to
 * out for recording outside the lock). Returns how many were copied. */
static size_t pop_expired_locked(tickets_t *t, int64_t now, tslot_t *out) FDN_REQUIRES(t->mu)
{
    size_t n = 0;
    while (t->head < t->tail) {
        tslot_t *s = &t->ring[t->head % NSLOTS];
        if (s->live) {
            if (now < s->deadline_ns || n == SETTLE_AT)
                break;
            out[n++] = *s;
            s->live = false;
            t->live--;
        }
        t->head++;
    }
    return n;
}

/* Record expired tickets as failures that lasted their whole timeout. */
static void record_expired(fdn_breaker_t *b, const tslot_t *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fdn__breaker_record_outcome(b, &x[i].permit, FDN_BREAKER_FAILURE,
                                    x[i].deadline_ns - x[i].taken_ns);
}

/* Settle what has expired; returns the tickets still outstanding. */
static size_t settle(fdn_breaker_t *b, tickets_t *t)
{
    tslot_t x[SETTLE_AT];
    for (;;) {
        int64_t now = fdn__breaker_now_ns(b);
        fdn__mutex_lock(&t->mu);
        size_t n = pop_expired_locked(t, now, x);
        size_t live = t->live;
        fdn__mutex_unlock(&t->mu);
        record_expired(b, x, n);
        if (n < SETTLE_AT)
            return live;
    }
}

size_t fdn_breaker_tickets_settle(fdn_breaker_t *b)
{
    tickets_t *t = b ? table(b, false) : NULL;
    return t ? settle(b, t) : 0;
}

int fdn_breaker_acquire_ticket(fdn_breaker_t *b, uint64_t *ticket)
{
    if (b == NULL || ticket == NULL)
        return FDN_EINVAL;
    tickets_t *t = table(b, true);
    if (t == NULL)
        return FDN_ENOMEM;
    (void)settle(b, t); /* an expired probe is counted before the next admission */
    fdn_breaker_permit_t permit;
    int rc = fdn_breaker_acquire(b, &permit);
    if (rc != 0)
        return rc;
    int64_t now = fdn__breaker_now_ns(b);
    fdn__mutex_lock(&t->mu);
    if (t->tail - t->head >= NSLOTS) { /* the ring is full of outstanding tickets */
        fdn__mutex_unlock(&t->mu);
        fdn_breaker_release(b, &permit);
        return FDN_EBUSY;
    }
    uint64_t seq = t->tail++;
    t->ring[seq % NSLOTS] = (tslot_t){.seq = seq,
                                      .permit = permit,
                                      .taken_ns = now,
                                      .deadline_ns = now + fdn__breaker_probe_timeout_ns(b),
                                      .live = true};
    t->live++;
    *ticket = seq ^ t->key;
    fdn__mutex_unlock(&t->mu);
    return 0;
}

int fdn_breaker_report_ticket(fdn_breaker_t *b, uint64_t ticket, fdn_breaker_outcome_t outcome,
                              int64_t duration_ns)
{
    if (b == NULL || (unsigned)outcome > FDN_BREAKER_SLOW)
        return FDN_EINVAL;
    tickets_t *t = table(b, false);
    if (t == NULL)
        return FDN_ENOENT;
    (void)settle(b, t); /* an expired ticket is a failure, whatever its late report says */
    int64_t now = fdn__breaker_now_ns(b);
    fdn__mutex_lock(&t->mu);
    uint64_t seq = ticket ^ t->key;
    tslot_t *s = &t->ring[seq % NSLOTS];
    if (seq < t->head || seq >= t->tail || s->seq != seq || !s->live) {
        fdn__mutex_unlock(&t->mu);
        return FDN_ENOENT;
    }
    tslot_t mine = *s;
    s->live = false;
    t->live--;
    fdn__mutex_unlock(&t->mu);
    fdn__breaker_record_outcome(b, &mine.permit, outcome,
                                duration_ns >= 0 ? duration_ns : now - mine.taken_ns);
    return 0;
}
