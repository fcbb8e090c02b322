/*
 * DESIGN: breaker tickets (fdn_breaker_acquire_ticket / fdn_breaker_report_ticket): permits
 * the breaker keeps for callers that cannot hold one between two calls, such as programs that
 * use a breaker over HTTP.
 *
 * One table per breaker, made on the first ticket and published through the breaker's
 * anchor with a CAS (the loser frees its copy); freed when the breaker is destroyed. The
 * table has FDN_BREAKER_TICKETS_MAX slots: the free ones on a stack, the outstanding ones on a
 * doubly linked list in the order taken (links are slot indices). Each ticket gets the next
 * sequence number (never reused); its id is (sequence << SLOT_BITS | slot) XOR a per-table
 * random key, so a report finds its slot in O(1) and checks the slot still holds that
 * sequence number, and ids of one breaker are not small integers a client could guess from
 * another's. A report unlinks its slot wherever it is, so the bound is on tickets outstanding:
 * one long-lived ticket does not hold the slots of those taken after it. (A ring indexed by
 * sequence number did: with one ticket held, the 1024th taken after it was refused.)
 *
 * Expiry: a ticket taken at t expires at t + probe_timeout (the options of the moment it was
 * taken). Deadlines of later tickets are later unless the options changed, so settling pops
 * from the list's head while the head has expired; a ticket behind a longer-lived one waits
 * for it (it is settled late, never early). An expired ticket is recorded as a failure with
 * its timeout as duration, so a half-open probe that never reports reopens the breaker.
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
#define SLOT_BITS 10u /* ticket = (seq << SLOT_BITS | slot) ^ key */
#define NIL       UINT32_MAX
#define SETTLE_AT 32 /* expired tickets recorded per pass (outside the lock) */
_Static_assert(NSLOTS <= (1u << SLOT_BITS), "a slot index fits in SLOT_BITS");

typedef struct tslot {
    uint64_t seq;
    fdn_breaker_permit_t permit;
    int64_t taken_ns;
    int64_t deadline_ns;
    uint32_t prev, next; /* outstanding: the list in the order taken; free: next on the stack */
    bool live;
} tslot_t;

typedef struct tickets {
    fdn__mutex_t mu;
    uint64_t key;                                /* ticket = (seq << SLOT_BITS | slot) ^ key */
    uint64_t next_seq FDN_MEMBER_GUARDED_BY(mu); /* the next ticket's sequence number */
    uint32_t first FDN_MEMBER_GUARDED_BY(mu);    /* oldest outstanding slot, or NIL */
    uint32_t last FDN_MEMBER_GUARDED_BY(mu);     /* newest outstanding slot, or NIL */
    uint32_t free FDN_MEMBER_GUARDED_BY(mu);     /* top of the free stack, or NIL */
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
    t->first = t->last = NIL;
    for (uint32_t i = 0; i < NSLOTS; i++) /* every slot free, slot 0 on top */
        t->ring[i].next = i + 1 < NSLOTS ? i + 1 : NIL;
    t->free = 0;
    void *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(anchor, &expected, t, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        fdn__tickets_free(t); /* another thread made it first */
        return expected;
    }
    return t;
}

/* Take outstanding slot i off the list and put it on the free stack. */
static void slot_release_locked(tickets_t *t, uint32_t i) FDN_REQUIRES(t->mu)
{
    tslot_t *s = &t->ring[i];
    if (s->prev != NIL)
        t->ring[s->prev].next = s->next;
    else
        t->first = s->next;
    if (s->next != NIL)
        t->ring[s->next].prev = s->prev;
    else
        t->last = s->prev;
    s->live = false;
    s->next = t->free;
    t->free = i;
    t->live--;
}

/* Pop expired tickets from the head of the list (at most SETTLE_AT, copied to out for
 * recording outside the lock). Returns how many were copied. */
static size_t pop_expired_locked(tickets_t *t, int64_t now, tslot_t *out) FDN_REQUIRES(t->mu)
{
    size_t n = 0;
    while (t->first != NIL && n < SETTLE_AT && now >= t->ring[t->first].deadline_ns) {
        out[n++] = t->ring[t->first];
        slot_release_locked(t, t->first);
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
    if (t->free == NIL) { /* FDN_BREAKER_TICKETS_MAX outstanding */
        fdn__mutex_unlock(&t->mu);
        fdn_breaker_release(b, &permit);
        return FDN_EBUSY;
    }
    uint32_t i = t->free;
    t->free = t->ring[i].next;
    uint64_t seq = t->next_seq++;
    t->ring[i] = (tslot_t){.seq = seq,
                           .permit = permit,
                           .taken_ns = now,
                           .deadline_ns = now + fdn__breaker_probe_timeout_ns(b),
                           .prev = t->last,
                           .next = NIL,
                           .live = true};
    if (t->last != NIL)
        t->ring[t->last].next = i;
    else
        t->first = i;
    t->last = i;
    t->live++;
    *ticket = (seq << SLOT_BITS | i) ^ t->key;
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
    uint64_t x = ticket ^ t->key;
    uint32_t i = (uint32_t)(x & ((1u << SLOT_BITS) - 1u));
    uint64_t seq = x >> SLOT_BITS;
    if (i >= NSLOTS || !t->ring[i].live || t->ring[i].seq != seq) {
        fdn__mutex_unlock(&t->mu);
        return FDN_ENOENT;
    }
    tslot_t mine = t->ring[i];
    slot_release_locked(t, i);
    fdn__mutex_unlock(&t->mu);
    fdn__breaker_record_outcome(b, &mine.permit, outcome,
                                duration_ns >= 0 ? duration_ns : now - mine.taken_ns);
    return 0;
}
