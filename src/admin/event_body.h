/* The fast path of the event append bodies (POST /v1/events, POST /v1/events/batch): the
 * common body read straight from its text, without a jansson tree. Pure: no I/O, no state;
 * api_events.c calls it first and takes the jansson path for anything it leaves, and the fuzz
 * target fuzz/fuzz_event_body.c checks that both read every body it takes the same way. */
#ifndef FDN_ADMIN_EVENT_BODY_H
#define FDN_ADMIN_EVENT_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin_int.h"

/* Returned for a body the fast path leaves to the jansson path. */
#define FDN__EVB_SLOW 0

/* One event of a body: offsets of NUL-terminated strings in the parse's text buffer. */
typedef struct fdn__evb_item {
    size_t type;           /* the "type" string */
    size_t cid;            /* the "correlation_id" string, or SIZE_MAX: absent or null */
    size_t cid_len;        /* its length */
    uint64_t parent_id;    /* 0: absent or null */
    size_t data, data_len; /* "data" as jansson's compact dump gives it ("null" when absent) */
} fdn__evb_item_t;

/*
 * Read an append body: with batch, {"events":[event, ...]} or [event, ...] with 1..max
 * events; else one event object. An event is {"type": string, "data"?: any,
 * "correlation_id"?: string|null, "parent_id"?: integer >= 0|null}. Fills items[0..n) and
 * text (zeroed by the caller, freed by it with fdn_free in every case) and returns n >= 1; or
 * FDN__EVB_SLOW (0) for a body that is not of the simple form (strings with escapes or control
 * bytes, reals, "-0", repeated or unknown members, nesting deeper than 32, ...), that any check
 * of the jansson path would refuse, or when out of memory. It never reports an error itself.
 */
int fdn__evb_parse(const char *body, size_t len, bool batch, size_t max, fdn__evb_item_t *items,
                   fdn__admin_text_t *text);

#endif
