/* The etcd v3 JSON gateway's formats (etcd 3.4), pure: base64 for keys and values, 64-bit
 * numbers written as strings, the key-value records of a range or a watch event, and the
 * messages of a watch stream. No I/O, no locks, no globals; parsing uses jansson and the
 * library allocator.
 *
 * Gateway facts this follows: fields at their default value are omitted (a missing number is
 * 0, a missing "type" is PUT, a missing "value" is empty); numbers arrive as JSON strings
 * ("5") and are accepted as JSON integers too; each watch message is one JSON object on its
 * own line, {"result": {...}} or {"error": {...}}. */
#ifndef FDN_LOGIC_ETCD_CODEC_H
#define FDN_LOGIC_ETCD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/error.h>

#include "logic/base64.h"

/* ---- the gateway's URL -------------------------------------------------------------------- */

/* Check an etcd client URL: http://host[:port][/] or https://..., host non-empty, port
 * 1..65535, nothing after the optional '/'. Writes the base without a trailing '/' into out
 * (cap bytes). Returns 0 or FDN_EINVAL with a message in err (may be NULL). */
int fdn__etcd_url_check(const char *url, char *out, size_t cap, fdn_error_t *err);

/* ---- records -------------------------------------------------------------------------------- */

/* One key-value record; key and value are decoded, NUL-terminated copies (one allocation:
 * free with fdn__etcd_kv_clear). */
typedef struct fdn__etcd_kv {
    char *key;
    size_t keylen;
    char *value; /* points into the key's allocation */
    size_t valuelen;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} fdn__etcd_kv_t;

void fdn__etcd_kv_clear(fdn__etcd_kv_t *kv);

/* Free an array of n records and the array (NULL accepted). */
void fdn__etcd_kvs_free(fdn__etcd_kv_t *kvs, size_t n);

typedef enum fdn__etcd_event_type {
    FDN__ETCD_PUT = 0,
    FDN__ETCD_DELETE = 1
} fdn__etcd_event_type_t;

typedef struct fdn__etcd_event {
    fdn__etcd_event_type_t type;
    fdn__etcd_kv_t kv;
} fdn__etcd_event_t;

/* A range answer: the store's revision and the records. */
typedef struct fdn__etcd_range {
    int64_t revision;
    fdn__etcd_kv_t *kvs;
    size_t n;
    bool more;
} fdn__etcd_range_t;

/* Parse a range answer (text[0..len)). Returns 0, FDN_EPARSE (not JSON, not the shape of a
 * range answer; message in err), FDN_EEXTERNAL (an {"error": ...} answer; its message in err)
 * or FDN_ENOMEM. Free with fdn__etcd_range_clear. */
int fdn__etcd_range_parse(const char *text, size_t len, fdn__etcd_range_t *out, fdn_error_t *err);
void fdn__etcd_range_clear(fdn__etcd_range_t *r);

/* One message of a watch stream. */
typedef struct fdn__etcd_watch_msg {
    int64_t revision; /* header.revision (0 when absent) */
    int64_t watch_id;
    bool created;             /* the watch was created */
    bool canceled;            /* the server ended the watch */
    int64_t compact_revision; /* > 0: canceled because the start revision was compacted */
    fdn__etcd_event_t *events;
    size_t nevents;
} fdn__etcd_watch_msg_t;

/* Parse one watch message (one line, without or with its '\n'). Returns 0, FDN_EPARSE,
 * FDN_EEXTERNAL (an {"error": ...} message) or FDN_ENOMEM. Free with
 * fdn__etcd_watch_msg_clear. */
int fdn__etcd_watch_msg_parse(const char *text, size_t len, fdn__etcd_watch_msg_t *out,
                              fdn_error_t *err);
void fdn__etcd_watch_msg_clear(fdn__etcd_watch_msg_t *m);

/* Split a byte stream into lines: given the buffered bytes buf[0..len), returns the length of
 * the first complete line including its '\n', or 0 when no '\n' is there yet. */
size_t fdn__etcd_line_len(const char *buf, size_t len);

/* The key just past every key that starts with prefix (the "range_end" of a prefix range):
 * prefix with its last byte below 0xff incremented and the bytes after it dropped. Writes
 * into out (cap >= n) and returns its length; 0 when every byte is 0xff (then the range end
 * is "\0", every key). */
size_t fdn__etcd_prefix_end(char *out, size_t cap, const char *prefix, size_t n);

/* A namespace's keys: *key = "<prefix[0..plen)>/<ns>/" (NUL-terminated, *keylen bytes) and
 * *range_end its range end (*relen bytes, > 0 since the key ends in '/'), both from
 * fdn__malloc (free with fdn__free). 0 or FDN_ENOMEM (nothing allocated). */
int fdn__etcd_ns_keys(const char *prefix, size_t plen, const char *ns, char **key, size_t *keylen,
                      char **range_end, size_t *relen);

/* Parse a number the gateway wrote as a JSON string of decimal digits (or a JSON integer).
 * Returns 0 (a missing value is 0) or FDN_EPARSE. (json_t from jansson.) */
struct json_t;
int fdn__etcd_json_i64(const struct json_t *v, int64_t *out);

/* Decode one JSON record {"key", "value", "create_revision", ...} into kv. 0, FDN_EPARSE or
 * FDN_ENOMEM. */
int fdn__etcd_kv_from_json(const struct json_t *o, fdn__etcd_kv_t *kv);

#endif
