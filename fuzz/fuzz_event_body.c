/* libFuzzer target: the fast path of the event append bodies (admin/event_body.c), behind
 * POST /v1/events and POST /v1/events/batch, without a server. Input: byte 0 picks single
 * (even) or batch (odd), the rest is the body. Differential oracle against the jansson path of
 * src/admin/api_events.c (parse with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, the same member
 * checks, "data" dumped JSON_COMPACT | JSON_ENCODE_ANY): whenever the fast path takes a body,
 * the jansson path takes it too, with the same number of events and, per event, the same type,
 * correlation id, parent id and data text byte for byte; the fast path's strings are
 * NUL-terminated where its offsets say. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/event_body.h"

#define MAXN 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The jansson path's reading of one event: 0, or -1 when it refuses it. */
static int slow_event(json_t *o, const char **type, const char **cid, uint64_t *parent, char **dump)
{
    if (!json_is_object(o))
        return -1;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "data") != 0 &&
            strcmp(key, "correlation_id") != 0 && strcmp(key, "parent_id") != 0)
            return -1;
    }
    json_t *t = json_object_get(o, "type"), *c = json_object_get(o, "correlation_id");
    json_t *p = json_object_get(o, "parent_id"), *d = json_object_get(o, "data");
    if (!json_is_string(t))
        return -1;
    if (json_is_null(c))
        c = NULL;
    if (json_is_null(p))
        p = NULL;
    if (c != NULL && !json_is_string(c))
        return -1;
    if (p != NULL && (!json_is_integer(p) || json_integer_value(p) < 0))
        return -1;
    *type = json_string_value(t);
    *cid = c ? json_string_value(c) : NULL;
    *parent = p ? (uint64_t)json_integer_value(p) : 0;
    *dump = json_dumps(d ? d : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    return *dump != NULL ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool batch = data[0] & 1;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    static fdn__evb_item_t items[MAXN];
    fdn__admin_text_t t = {NULL, 0, 0};
    int n = fdn__evb_parse(body, len, batch, MAXN, items, &t);
    if (n < 0 || n > MAXN)
        abort();
    if (n == FDN__EVB_SLOW) {
        fdn_free(t.p);
        return 0;
    }
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL)
        abort(); /* the fast path took a body that is not JSON */
    json_t *arr = j;
    if (batch) {
        arr = json_is_object(j) ? json_object_get(j, "events") : j;
        if (json_is_object(j) && json_object_size(j) != 1)
            arr = NULL;
        if (!json_is_array(arr) || json_array_size(arr) != (size_t)n)
            abort();
    } else if (n != 1) {
        abort();
    }
    for (int i = 0; i < n; i++) {
        const char *type, *cid;
        uint64_t parent;
        char *dump = NULL;
        if (slow_event(batch ? json_array_get(arr, (size_t)i) : j, &type, &cid, &parent, &dump) !=
            0)
            abort(); /* the jansson path refuses what the fast path took */
        const fdn__evb_item_t *it = &items[i];
        if (it->type >= t.len || strcmp(t.p + it->type, type) != 0)
            abort();
        if ((cid == NULL) != (it->cid == SIZE_MAX))
            abort();
        if (cid != NULL && (strcmp(t.p + it->cid, cid) != 0 || strlen(cid) != it->cid_len))
            abort();
        if (parent != it->parent_id)
            abort();
        if (it->data_len != strlen(dump) || memcmp(t.p + it->data, dump, it->data_len) != 0 ||
            t.p[it->data + it->data_len] != '\0')
            abort();
        free(dump);
    }
    json_decref(j);
    fdn_free(t.p);
    return 0;
}
