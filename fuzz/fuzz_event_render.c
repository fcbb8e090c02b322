/* libFuzzer target: events written as JSON by the admin (admin/event_json.c, behind
 * GET /v1/events and GET /v1/events/{id}), without a server. Input: byte 0 picks the content
 * type (bits 0-1: json, text, binary), whether there is a correlation id (bit 2) and a parent
 * (bit 3); bytes 1-8 the wall time (little-endian int64); the rest is the data, taken as it
 * is (FDN_EVENT_TRUSTED_JSON, so data jansson refuses reaches the writer too). Differential
 * oracle: the text equals fdn_event_to_json's byte for byte; and whenever
 * fdn__admin_json_is_canonical takes the data, jansson parses it and dumps exactly it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/events.h>

#include "admin/admin_int.h"
#include "admin/event_json.h"
#include "admin/http_jw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    const char *d = (const char *)data + 9;
    size_t n = size - 9;
    if (fdn__admin_json_is_canonical(d, n)) {
        json_t *j = json_loadb(d, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j == NULL)
            abort(); /* taken as canonical, refused by jansson */
        char *dump = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (dump == NULL || strlen(dump) != n || memcmp(dump, d, n) != 0)
            abort();    /* jansson would rewrite it */
        fdn_free(dump); /* jansson allocates through the library allocator */
        json_decref(j);
    }
    int64_t wall = 0;
    for (int i = 8; i >= 1; i--)
        wall = (int64_t)(((uint64_t)wall << 8) | data[i]);
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "fuzz.render";
    spec.data = d;
    spec.data_len = n;
    spec.content_type = (fdn_event_ctype_t)(data[0] & 3) > FDN_EVENT_CT_BINARY
                            ? FDN_EVENT_CT_BINARY
                            : (fdn_event_ctype_t)(data[0] & 3);
    spec.flags = FDN_EVENT_TRUSTED_JSON;
    if (data[0] & 4)
        spec.correlation_id = "fuzz\"corr\\1";
    else
        spec.flags |= FDN_EVENT_NO_CORRELATION;
    spec.parent_id = (data[0] & 8) ? UINT64_MAX - data[1] : 0;
    spec.id = (uint64_t)wall;
    spec.timestamp_ns = wall;
    spec.wall_ns = wall != 0 ? wall : 1;
    spec.node = "node";
    spec.pid = 1;
    spec.tid = 2;
    fdn_event_t *ev = NULL;
    if (fdn_event_new(&ev, &spec, NULL) != 0)
        return 0; /* data over the size limit */
    char *want = NULL;
    if (fdn_event_to_json(ev, &want) == 0) {
        fdn__jw_t w = {{NULL, 0, 0}, 0};
        fdn__admin_event_json(&w, ev);
        if (w.rc != 0 || w.t.p == NULL || strcmp(w.t.p, want) != 0)
            abort(); /* not fdn_event_to_json's text */
        fdn_free(w.t.p);
        fdn_free(want);
    }
    fdn_event_free(ev);
    return 0;
}
