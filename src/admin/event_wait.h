/*
 * Waiting queries of GET /v1/events (`wait_ms`): a query after a cursor that found nothing
 * waits for the first matching event, or its deadline, before it answers. See event_wait.c.
 */
#ifndef FDN_ADMIN_EVENT_WAIT_H
#define FDN_ADMIN_EVENT_WAIT_H

#include <stddef.h>
#include <stdint.h>

#include <fdn/clock.h>
#include <fdn/events.h>

#include "admin/admin_int.h"

/** The most waiting queries of one server; the next one is answered 503 (Retry-After 1). */
#define FDN__EVWAIT_MAX 1024
/** The longest wait a query may ask for (`wait_ms`). */
#define FDN__EVWAIT_MAX_MS 60000
/** fdn__evwait_add's answer when the query cannot wait (2: FDN__HTTP_PENDING is 1). */
#define FDN__EVWAIT_NOW 2

typedef struct fdn__evwait fdn__evwait_t;

/** A waiter set for the store es (no thread yet: the first wait starts it).
 *  @return 0, FDN_ENOMEM */
int fdn__evwait_create(fdn__evwait_t **out, fdn_events_t *es);

/**
 * Let the request resp wait up to wait_ms for an event matching q (its type, correlation id
 * and after_id; q's strings are copied), then answer it with q's result then, as GET
 * /v1/events does (from the store's memory when it holds every id after max(q->after_id,
 * known), else from the store as fdn_events_query answers, on the server thread that sends
 * the answer, never on the waiter thread). The caller ran q already and
 * found nothing, up to at least id `known` (the newest id the store had before that query:
 * fdn_events_stats; q->after_id when unknown); resp must come from the dispatcher
 * (fdn__http_defer). On FDN__HTTP_PENDING resp belongs to the waiter set.
 * @return FDN__HTTP_PENDING; FDN__EVWAIT_NOW: waiting is not possible here (the server is stopping,
 * or resp did not come from the dispatcher): answer q's empty result now; FDN_EBUSY
 *         (FDN__EVWAIT_MAX queries wait already; resp->err says so), FDN_ENOMEM, or the
 *         subscription's error
 */
int fdn__evwait_add(fdn__evwait_t *w, const fdn_events_query_t *q, uint64_t known, int64_t wait_ms,
                    fdn__http_resp_t *resp);

/** Answer every waiting query now, with the empty result and without running its query (no
 *  call on the store's backend: a shutdown is not held by a hung PostgreSQL), and stop the
 *  thread; later adds answer at once (FDN__EVWAIT_NOW). Idempotent. */
void fdn__evwait_drain(void *w);

/** Drain, then free. NULL does nothing. */
void fdn__evwait_free(void *w);

/** Queries waiting now (any thread; the tests). */
size_t fdn__evwait_count(const fdn__evwait_t *w);

/** The most queries that may wait (FDN__EVWAIT_MAX from create; the tests lower it). */
void fdn__evwait_set_max(fdn__evwait_t *w, size_t max);

/** The clock of the deadlines of the queries that wait from now on (NULL: CLOCK_MONOTONIC, as
 *  from create); not owned, it must outlive the set. With a manual clock a deadline fires only
 *  once the clock reached it and fdn__evwait_tick was called (the tests). */
void fdn__evwait_set_clock(fdn__evwait_t *w, fdn_clock_t *clock);

/** Make the thread read the clock again (after an advance of a manual clock) and answer the
 *  waiters whose deadlines it reached. */
void fdn__evwait_tick(fdn__evwait_t *w);

#endif /* FDN_ADMIN_EVENT_WAIT_H */
