/* Internal view of an event record, shared by the event logic, validation, codec and the
 * event store. An fdn_event_t is one block: this header followed by its strings and data
 * (each NUL-terminated), so copying or freeing an event is one allocation. */
#ifndef FDN_LOGIC_EVENT_INT_H
#define FDN_LOGIC_EVENT_INT_H

#include <fdn/events.h>

#include <stddef.h>
#include <stdint.h>

struct fdn_event {
    uint64_t id;
    int64_t ts;
    int64_t wall;
    uint64_t parent;
    uint32_t pid;
    uint32_t tid;
    uint32_t data_len;
    uint16_t type_len;
    uint16_t corr_len;
    uint8_t node_len;
    uint8_t ctype;
    const char *type;
    const char *node;
    const char *corr;
    const uint8_t *data;
};

struct fdn_event_list {
    size_t n;
    fdn_event_t **items;
};

/* The fields of an event, borrowed (lengths exclude any NUL). */
typedef struct fdn__event_fields {
    uint64_t id;
    int64_t ts;
    int64_t wall;
    uint64_t parent;
    uint32_t pid;
    uint32_t tid;
    uint8_t ctype;
    const char *type;
    size_t type_len;
    const char *node;
    size_t node_len;
    const char *corr;
    size_t corr_len;
    const void *data;
    size_t data_len;
} fdn__event_fields_t;

/* Bytes an event with these fields occupies (multiple of 8). */
size_t fdn__event_alloc_size(const fdn__event_fields_t *f);
/* Build the event in mem (8-aligned, fdn__event_alloc_size bytes). */
fdn_event_t *fdn__event_place(void *mem, const fdn__event_fields_t *f);
/* Allocate and build. NULL on OOM. */
fdn_event_t *fdn__event_from_fields(const fdn__event_fields_t *f);
void fdn__event_to_fields(const fdn_event_t *ev, fdn__event_fields_t *f);
/* A list with room for n events of `bytes` total alloc size; items filled by the caller
 * through fdn__event_list_slot. */
fdn_event_list_t *fdn__event_list_alloc(size_t n, size_t bytes);
/* Memory for the i-th event of a list being built (after the previous ones). */
void *fdn__event_list_mem(fdn_event_list_t *l, size_t offset);

/* Checks shared by spec validation and decoders (no allocation). check_json: parse JSON
 * data with jansson. */
int fdn__event_check_fields(const fdn__event_fields_t *f, bool check_json, fdn_error_t *err);

/* Encode into a growable buffer (*buf, *cap; fdn__realloc'd); *len receives the size. */
int fdn__event_encode_into(const fdn_event_t *ev, unsigned flags, uint8_t **buf, size_t *cap,
                           size_t *len);
/* The same from borrowed fields (lengths within the record's: type and corr < 2^16, node <
 * 2^8, data < 2^32), written at offset `at` of the buffer (what is before it is kept; the
 * buffer at least doubles when it grows past at > 0). The event store's writer encodes a
 * commit's records back to back this way straight from its memory tier (no event copies). */
int fdn__event_encode_fields_at(const fdn__event_fields_t *f, unsigned flags, uint8_t **buf,
                                size_t *cap, size_t at, size_t *len);

/* The fields of an encoded record (version 1, written by fdn__event_encode_*: trusted, not
 * checked) a store's file indexes rows by: id, timestamp, type and correlation id (pointers
 * into rec). */
typedef struct fdn__event_rec_keys {
    uint64_t id;
    int64_t ts;
    const char *type;
    size_t type_len;
    const char *corr;
    size_t corr_len;
} fdn__event_rec_keys_t;

static inline uint64_t fdn__event_rec_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void fdn__event_rec_keys(const uint8_t *rec, fdn__event_rec_keys_t *k)
{
    /* offsets of docs/event-format.md: id 12, timestamp 20, type_len 52, corr_len 54,
     * node_len 56, then type, node, corr from 68 */
    k->id = fdn__event_rec_le(rec + 12, 8);
    k->ts = (int64_t)fdn__event_rec_le(rec + 20, 8);
    k->type_len = (size_t)fdn__event_rec_le(rec + 52, 2);
    k->corr_len = (size_t)fdn__event_rec_le(rec + 54, 2);
    k->type = (const char *)rec + 68;
    k->corr = k->type + k->type_len + rec[56];
}

/* CRC32C (Castagnoli). crc starts at 0 and chains (crc32c(crc32c(0,a),b) = crc32c(0,ab)).
 * fdn__crc32c uses the CPU's CRC32 instruction when present, fdn__crc32c_sw slice-by-8. */
uint32_t fdn__crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t fdn__crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
