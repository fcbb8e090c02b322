/*
 * DESIGN: the etcd v3 JSON gateway's formats (logic/etcd_codec.h), pure functions.
 *
 * base64 (logic/base64.h) is strict: the gateway writes canonical base64, and anything else is
 * refused as a format error rather than guessed at.
 *
 * JSON is parsed with jansson (through the library allocator, core/json.h). A number may be a
 * string of decimal digits (what the gateway writes for 64-bit fields) or a JSON integer; a
 * field left out is 0, as the gateway omits defaults. A record's key and value are decoded
 * into one allocation, each NUL-terminated so callers may treat them as text after checking
 * their length.
 *
 * Threads: none; no globals. Every function may run on any thread.
 */
#include "logic/etcd_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"

/* ---- URL ------------------------------------------------------------------------------------ */

int fdn__etcd_url_check(const char *url, char *out, size_t cap, fdn_error_t *err)
{
    if (url == NULL || url[0] == '\0')
        return fdn_err_set(err, FDN_EINVAL, "etcd URL is empty");
    const char *p;
    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return fdn_err_set(err, FDN_EINVAL,
                           "etcd URL must start with http:// or https:// (got \"%.64s\")", url);
    size_t hostlen = 0;
    if (*p == '[') { /* [v6] */
        const char *close = strchr(p, ']');
        if (close == NULL || close == p + 1)
            return fdn_err_set(err, FDN_EINVAL, "etcd URL: bad IPv6 host in \"%.64s\"", url);
        hostlen = (size_t)(close - p) + 1;
    } else {
        while (p[hostlen] != '\0' && p[hostlen] != ':' && p[hostlen] != '/')
            hostlen++;
    }
    if (hostlen == 0)
        return fdn_err_set(err, FDN_EINVAL, "etcd URL has no host: \"%.64s\"", url);
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7f || c == '@' || c == '?' || c == '#' || c == '%')
            return fdn_err_set(err, FDN_EINVAL, "etcd URL: bad character in host \"%.64s\"", url);
    }
    const char *q = p + hostlen;
    if (*q == ':') {
        q++;
        long port = 0;
        size_t nd = 0;
        while (q[nd] >= '0' && q[nd] <= '9' && nd < 6) {
            port = port * 10 + (q[nd] - '0');
            nd++;
        }
        if (nd == 0 || port < 1 || port > 65535 || (q[nd] >= '0' && q[nd] <= '9'))
            return fdn_err_set(err, FDN_EINVAL, "etcd URL: port must be 1..65535 in \"%.64s\"",
                               url);
        q += nd;
    }
    if (*q == '/')
        q++;
    if (*q != '\0')
        return fdn_err_set(err, FDN_EINVAL,
                           "etcd URL must be scheme://host[:port] without a path: \"%.64s\"", url);
    size_t n = (size_t)(q - url);
    if (n > 0 && url[n - 1] == '/')
        n--;
    if (n + 1 > cap)
        return fdn_err_set(err, FDN_EINVAL, "etcd URL is too long (%zu bytes)", n);
    memcpy(out, url, n);
    out[n] = '\0';
    return 0;
}

/* ---- records ------------------------------------------------------------------------------ */

void fdn__etcd_kv_clear(fdn__etcd_kv_t *kv)
{
    if (kv == NULL)
        return;
    fdn__free(kv->key);
    memset(kv, 0, sizeof(*kv));
}

void fdn__etcd_kvs_free(fdn__etcd_kv_t *kvs, size_t n)
{
    if (kvs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        fdn__etcd_kv_clear(&kvs[i]);
    fdn__free(kvs);
}

int fdn__etcd_json_i64(const json_t *v, int64_t *out)
{
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return FDN_EPARSE;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > 20)
        return FDN_EPARSE;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (n == 1)
            return FDN_EPARSE;
    }
    uint64_t acc = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return FDN_EPARSE;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return FDN_EPARSE;
        acc = acc * 10 + d;
    }
    /* lease ids and cluster ids are unsigned 64-bit in etcd: keep the bits */
    if (neg) {
        if (acc > (uint64_t)INT64_MAX + 1)
            return FDN_EPARSE;
        *out = (int64_t)(0 - acc);
    } else {
        *out = (int64_t)acc;
    }
    return 0;
}

/* The base64 text of field `name` of o (absent or null: empty). */
static int b64_field(const json_t *o, const char *name, const char **s, size_t *n)
{
    const json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v)) {
        *s = "";
        *n = 0;
        return 0;
    }
    if (!json_is_string(v))
        return FDN_EPARSE;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

int fdn__etcd_kv_from_json(const json_t *o, fdn__etcd_kv_t *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o))
        return FDN_EPARSE;
    const char *ks, *vs;
    size_t kn, vn;
    if (b64_field(o, "key", &ks, &kn) < 0 || b64_field(o, "value", &vs, &vn) < 0)
        return FDN_EPARSE;
    size_t kcap = kn / 4 * 3, vcap = vn / 4 * 3;
    char *mem = fdn__malloc(kcap + 1 + vcap + 1);
    if (mem == NULL)
        return FDN_ENOMEM;
    int64_t kl = fdn__b64_decode(mem, kcap, ks, kn);
    int64_t vl = kl < 0 ? kl : fdn__b64_decode(mem + kl + 1, vcap, vs, vn);
    if (kl < 0 || vl < 0) {
        fdn__free(mem);
        return FDN_EPARSE;
    }
    mem[kl] = '\0';
    mem[kl + 1 + vl] = '\0';
    kv->key = mem;
    kv->keylen = (size_t)kl;
    kv->value = mem + kl + 1;
    kv->valuelen = (size_t)vl;
    if (fdn__etcd_json_i64(json_object_get(o, "create_revision"), &kv->create_revision) < 0 ||
        fdn__etcd_json_i64(json_object_get(o, "mod_revision"), &kv->mod_revision) < 0 ||
        fdn__etcd_json_i64(json_object_get(o, "version"), &kv->version) < 0 ||
        fdn__etcd_json_i64(json_object_get(o, "lease"), &kv->lease) < 0) {
        fdn__etcd_kv_clear(kv);
        return FDN_EPARSE;
    }
    return 0;
}

/* Parse text as one JSON object; an {"error": ...} answer becomes FDN_EEXTERNAL. */
static int load_object(const char *text, size_t len, json_t **out, fdn_error_t *err)
{
    json_error_t jerr;
    bool oom;
    json_t *root = fdn__json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (root == NULL) {
        if (oom)
            return fdn_err_set(err, FDN_ENOMEM, "etcd answer: out of memory");
        return fdn_err_set(err, FDN_EPARSE, "etcd answer is not JSON: %s (line %d)", jerr.text,
                           jerr.line);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return fdn_err_set(err, FDN_EPARSE, "etcd answer is not a JSON object");
    }
    json_t *e = json_object_get(root, "error");
    if (e != NULL) {
        const json_t *m =
            json_is_object(e) ? json_object_get(e, "message") : json_object_get(root, "message");
        const char *msg = json_is_string(m)   ? json_string_value(m)
                          : json_is_string(e) ? json_string_value(e)
                                              : "(no message)";
        int rc = fdn_err_set(err, FDN_EEXTERNAL, "etcd: %.200s", msg);
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

static int header_revision(const json_t *o, int64_t *rev)
{
    const json_t *h = json_object_get(o, "header");
    if (h == NULL) {
        *rev = 0;
        return 0;
    }
    if (!json_is_object(h))
        return FDN_EPARSE;
    return fdn__etcd_json_i64(json_object_get(h, "revision"), rev);
}

/* An optional array member (the gateway leaves out empty ones): *cnt its size, 0 when it is
 * absent, null or empty; for cnt > 0, *out a zeroed array of cnt items of `size` bytes (the
 * caller frees it). 0, FDN_EPARSE (not an array) or FDN_ENOMEM. */
static int opt_array(const json_t *arr, size_t size, void **out, size_t *cnt)
{
    *out = NULL;
    *cnt = 0;
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return FDN_EPARSE;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    *out = fdn__calloc(n, size);
    if (*out == NULL)
        return FDN_ENOMEM;
    *cnt = n;
    return 0;
}

/* kvs array (absent: none) into a fresh array. */
static int kvs_from_json(const json_t *arr, fdn__etcd_kv_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    void *p;
    size_t cnt;
    int orc = opt_array(arr, sizeof(fdn__etcd_kv_t), &p, &cnt);
    if (orc != 0 || cnt == 0)
        return orc;
    fdn__etcd_kv_t *kvs = p;
    for (size_t i = 0; i < cnt; i++) {
        int rc = fdn__etcd_kv_from_json(json_array_get(arr, i), &kvs[i]);
        if (rc < 0) {
            fdn__etcd_kvs_free(kvs, i);
            return rc;
        }
    }
    *out = kvs;
    *n = cnt;
    return 0;
}

int fdn__etcd_range_parse(const char *text, size_t len, fdn__etcd_range_t *out, fdn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    json_t *root = NULL;
    int rc = load_object(text, len, &root, err);
    if (rc < 0)
        return rc;
    rc = header_revision(root, &out->revision);
    if (rc == 0)
        rc = kvs_from_json(json_object_get(root, "kvs"), &out->kvs, &out->n);
    const json_t *more = json_object_get(root, "more");
    out->more = json_is_true(more);
    json_decref(root);
    if (rc == FDN_ENOMEM)
        return fdn_err_set(err, rc, "etcd range answer: out of memory");
    if (rc < 0)
        return fdn_err_set(err, FDN_EPARSE, "etcd range answer has a malformed field");
    if (out->revision <= 0) {
        fdn__etcd_range_clear(out);
        return fdn_err_set(err, FDN_EPARSE, "etcd range answer has no header revision");
    }
    return 0;
}

void fdn__etcd_range_clear(fdn__etcd_range_t *r)
{
    if (r == NULL)
        return;
    fdn__etcd_kvs_free(r->kvs, r->n);
    memset(r, 0, sizeof(*r));
}

void fdn__etcd_watch_msg_clear(fdn__etcd_watch_msg_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nevents; i++)
        fdn__etcd_kv_clear(&m->events[i].kv);
    fdn__free(m->events);
    memset(m, 0, sizeof(*m));
}

static int events_from_json(const json_t *arr, fdn__etcd_watch_msg_t *m)
{
    void *p;
    size_t cnt;
    int orc = opt_array(arr, sizeof(*m->events), &p, &cnt);
    if (orc != 0 || cnt == 0)
        return orc;
    m->events = p;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *ev = json_array_get(arr, i);
        if (!json_is_object(ev))
            return FDN_EPARSE;
        const json_t *t = json_object_get(ev, "type");
        fdn__etcd_event_type_t type = FDN__ETCD_PUT;
        if (t != NULL) {
            if (json_is_string(t) && strcmp(json_string_value(t), "DELETE") == 0)
                type = FDN__ETCD_DELETE;
            else if (json_is_string(t) && strcmp(json_string_value(t), "PUT") == 0)
                type = FDN__ETCD_PUT;
            else if (json_is_integer(t) && json_integer_value(t) == 1)
                type = FDN__ETCD_DELETE;
            else if (!(json_is_integer(t) && json_integer_value(t) == 0))
                return FDN_EPARSE;
        }
        const json_t *kv = json_object_get(ev, "kv");
        if (kv == NULL)
            return FDN_EPARSE;
        int rc = fdn__etcd_kv_from_json(kv, &m->events[i].kv);
        if (rc < 0)
            return rc;
        m->events[i].type = type;
        m->nevents = i + 1;
    }
    return 0;
}

int fdn__etcd_watch_msg_parse(const char *text, size_t len, fdn__etcd_watch_msg_t *out,
                              fdn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    json_t *root = NULL;
    int rc = load_object(text, len, &root, err);
    if (rc < 0)
        return rc;
    const json_t *r = json_object_get(root, "result");
    if (!json_is_object(r)) {
        json_decref(root);
        return fdn_err_set(err, FDN_EPARSE, "etcd watch message has no \"result\" object");
    }
    rc = header_revision(r, &out->revision);
    if (rc == 0)
        rc = fdn__etcd_json_i64(json_object_get(r, "watch_id"), &out->watch_id);
    if (rc == 0)
        rc = fdn__etcd_json_i64(json_object_get(r, "compact_revision"), &out->compact_revision);
    if (rc == 0) {
        out->created = json_is_true(json_object_get(r, "created"));
        out->canceled = json_is_true(json_object_get(r, "canceled"));
        rc = events_from_json(json_object_get(r, "events"), out);
    }
    json_decref(root);
    if (rc < 0) {
        fdn__etcd_watch_msg_clear(out);
        if (rc == FDN_ENOMEM)
            return fdn_err_set(err, rc, "etcd watch message: out of memory");
        return fdn_err_set(err, FDN_EPARSE, "etcd watch message has a malformed field");
    }
    return 0;
}

size_t fdn__etcd_line_len(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    return nl ? (size_t)(nl - buf) + 1 : 0;
}

size_t fdn__etcd_prefix_end(char *out, size_t cap, const char *prefix, size_t n)
{
    if (cap < n)
        return 0;
    memcpy(out, prefix, n);
    for (size_t i = n; i > 0; i--) {
        unsigned char c = (unsigned char)out[i - 1];
        if (c < 0xff) {
            out[i - 1] = (char)(c + 1);
            return i;
        }
    }
    return 0;
}

int fdn__etcd_ns_keys(const char *prefix, size_t plen, const char *ns, char **key, size_t *keylen,
                      char **range_end, size_t *relen)
{
    size_t n = plen + 1 + strlen(ns) + 1;
    char *k = fdn__malloc(n + 1), *e = fdn__malloc(n + 1);
    if (k == NULL || e == NULL) {
        fdn__free(k);
        fdn__free(e);
        return FDN_ENOMEM;
    }
    snprintf(k, n + 1, "%.*s/%s/", (int)plen, prefix, ns);
    *key = k;
    *keylen = n;
    *range_end = e;
    *relen = fdn__etcd_prefix_end(e, n, k, n);
    return 0;
}
