/*
 * The JSON form of an event written straight into an admin answer (GET /v1/events,
 * GET /v1/events/{id}): the same bytes as fdn_event_to_json, without its jansson tree, the
 * parse of the data and the dump (which cost ~48 k instructions an event).
 */
#ifndef FDN_ADMIN_EVENT_JSON_H
#define FDN_ADMIN_EVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <fdn/events.h>

#include "admin/admin_int.h"

/**
 * Append the JSON form of ev to w, byte for byte what fdn_event_to_json gives. The common
 * event (wall time from 1970 to 9999, JSON data already in the compact form jansson dumps,
 * or UTF-8 text, or none) is written directly; any other goes through fdn_event_to_json.
 * Errors stick in w->rc (FDN_ENOMEM).
 */
void fdn__admin_event_json(fdn__jw_t *w, const fdn_event_t *ev);

/**
 * True when the n bytes at s are one JSON value exactly as jansson's compact dump of its own
 * parse of them (JSON_DECODE_ANY | JSON_ALLOW_NUL, JSON_COMPACT | JSON_PRESERVE_ORDER) would
 * write it, so copying them equals parsing and dumping. False for anything else, including
 * forms jansson would rewrite (whitespace, reals, "-0", "\/", "\u0041", lower-case hex,
 * duplicate keys) and text it refuses; also for nesting deeper than 32 or an object of more
 * than 64 members (the caller then parses).
 */
bool fdn__admin_json_is_canonical(const char *s, size_t n);

/**
 * Append the body of GET /v1/events for the events of l, {"events":[...],"count":n}, each
 * event as fdn__admin_event_json writes it. Errors stick in w->rc (FDN_ENOMEM).
 */
void fdn__admin_events_body(fdn__jw_t *w, const fdn_event_list_t *l);

/**
 * Answer GET /v1/events with the events of *l: resp gets status 200 and the bytes of
 * fdn__admin_events_body as its text, a shared body released by resp->text_free
 * (fdn__admin_body_release). When one of this thread's last answers (up to 4, each at most
 * 64 KiB) listed equal events in the same order, that answer's body is shared, not written
 * again. Takes *l (kept in the memo or freed; set to NULL) on success; left to the caller on
 * failure.
 * @return 0, FDN_ENOMEM
 * @thread_safety any (the memo is the calling thread's)
 */
int fdn__admin_events_answer(fdn_event_list_t **l, fdn__http_resp_t *resp);

/**
 * Answer as fdn__admin_events_answer does, without the memo: for a thread that is not a
 * server thread (a memo's kept response is the server thread's), the waiting queries'.
 * *l NULL answers no events. Takes *l on success; left to the caller on failure.
 * @return 0, FDN_ENOMEM
 * @thread_safety any
 */
int fdn__admin_events_answer_plain(fdn_event_list_t **l, fdn__http_resp_t *resp);

/**
 * Run q on es and answer GET /v1/events with its result, as fdn__admin_events_answer does,
 * but with fdn_events_query_same: the store compares its matches with this thread's memo,
 * so an answer the memo holds copies no event.
 * @return 0, or the error of fdn_events_query (FDN_ENOMEM, FDN_EUNAVAILABLE, ...)
 * @thread_safety any (the memo is the calling thread's)
 */
int fdn__admin_events_query(fdn_events_t *es, const fdn_events_query_t *q, fdn__http_resp_t *resp);

/** Drop one reference to a shared answer body (text as fdn__admin_events_answer set it);
 *  the last frees it. NULL does nothing. Any thread. */
void fdn__admin_body_release(void *text);

/** Free the calling thread's memo of answers (the tests; threads free theirs at exit). */
void fdn__admin_events_memo_clear(void);

#endif /* FDN_ADMIN_EVENT_JSON_H */
