/*
 * DESIGN: the event codecs (pure: no locks, no globals besides the CRC tables).
 *
 * Binary record, version 1 (docs/event-format.md), all integers little-endian:
 *   0 magic "FDNE" | 4 version u8 | 5 flags u8 (bit0 = data zstd-compressed) | 6 content
 *   type u8 | 7 reserved u8 (0) | 8 total length u32 (whole record incl. CRC) | 12 id u64 |
 *   20 timestamp i64 | 28 wall i64 | 36 parent u64 | 44 pid u32 | 48 tid u32 |
 *   52 type_len u16 | 54 corr_len u16 | 56 node_len u8 | 57 reserved 3 bytes (0) |
 *   60 stored data length u32 | 64 raw data length u32 | 68 type, node, corr, data |
 *   last 4 bytes: CRC32C of everything before it.
 * The decoder checks, in this order: length ≥ 72 and = total length, magic, version
 * (FDN_EDESERIALIZE); CRC (FDN_ECORRUPT); reserved bytes, flags, content type, field
 * lengths, compressed data (FDN_EDESERIALIZE); then the event rules (validation codes). It never
 * reads outside the buffer. JSON form: one object (see docs/event-format.md), written and read with
 * jansson.
 */
#include <fdn/events.h>

#include <limits.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zstd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "logic/base64.h"
#include "logic/event_int.h"

#define REC_MAGIC   "FDNE"
#define REC_VERSION 1u
#define REC_HDR     68u
#define REC_MIN     (REC_HDR + 4u)
#define FLAG_ZSTD   0x1u
#define ZSTD_MIN    256u

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

int fdn__event_encode_fields_at(const fdn__event_fields_t *f, unsigned flags, uint8_t **buf,
                                size_t *cap, size_t at, size_t *len)
{
    size_t strs = f->type_len + f->node_len + f->corr_len;
    size_t dmax = f->data_len;
    bool zs = (flags & FDN_EVENT_ENC_ZSTD) && f->data_len >= ZSTD_MIN;
    if (zs)
        dmax = FDN_MAX(dmax, ZSTD_compressBound(f->data_len));
    size_t need = at + REC_MIN + strs + dmax;
    if (*cap < need) {
        size_t nc = at == 0 ? need : FDN_MAX(need, *cap * 2); /* a batch grows geometrically */
        uint8_t *nb = fdn__realloc(*buf, nc);
        if (nb == NULL)
            return FDN_ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    uint8_t *p = *buf + at;
    uint8_t *d = p + REC_HDR + strs;
    size_t stored = f->data_len;
    uint8_t fl = 0;
    if (zs) {
        size_t z = ZSTD_compress(d, dmax, f->data, f->data_len, 3);
        if (ZSTD_isError(z))
            return FDN_ESERIALIZE;
        if (z < f->data_len) {
            stored = z;
            fl = FLAG_ZSTD;
        }
    }
    if (!fl && f->data_len)
        memcpy(d, f->data, f->data_len);
    size_t total = REC_MIN + strs + stored;
    memcpy(p, REC_MAGIC, 4);
    p[4] = REC_VERSION;
    p[5] = fl;
    p[6] = f->ctype;
    p[7] = 0;
    put32(p + 8, (uint32_t)total);
    put64(p + 12, f->id);
    put64(p + 20, (uint64_t)f->ts);
    put64(p + 28, (uint64_t)f->wall);
    put64(p + 36, f->parent);
    put32(p + 44, f->pid);
    put32(p + 48, f->tid);
    put16(p + 52, (uint16_t)f->type_len);
    put16(p + 54, (uint16_t)f->corr_len);
    p[56] = (uint8_t)f->node_len;
    p[57] = p[58] = p[59] = 0;
    put32(p + 60, (uint32_t)stored);
    put32(p + 64, (uint32_t)f->data_len);
    uint8_t *s = p + REC_HDR;
    memcpy(s, f->type, f->type_len);
    s += f->type_len;
    memcpy(s, f->node, f->node_len);
    s += f->node_len;
    memcpy(s, f->corr, f->corr_len);
    put32(p + total - 4, fdn__crc32c(0, p, total - 4));
    *len = total;
    return 0;
}

int fdn__event_encode_into(const fdn_event_t *ev, unsigned flags, uint8_t **buf, size_t *cap,
                           size_t *len)
{
    fdn__event_fields_t f;
    fdn__event_to_fields(ev, &f);
    return fdn__event_encode_fields_at(&f, flags, buf, cap, 0, len);
}

int fdn_event_encode(const fdn_event_t *ev, unsigned flags, uint8_t **out, size_t *out_len)
{
    if (ev == NULL || out == NULL || out_len == NULL || (flags & ~FDN_EVENT_ENC_ZSTD))
        return FDN_EINVAL;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = fdn__event_encode_into(ev, flags, &buf, &cap, &len);
    if (rc != 0) {
        fdn__free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int fdn_event_decode(fdn_event_t **out, const void *buf, size_t len, fdn_error_t *err)
{
    if (out == NULL || (buf == NULL && len > 0))
        return fdn_err_set(err, FDN_EINVAL, "decode: NULL argument");
    const uint8_t *p = buf;
    if (len < REC_MIN)
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record truncated: %zu bytes", len);
    if (memcmp(p, REC_MAGIC, 4) != 0)
        return fdn_err_set(err, FDN_EDESERIALIZE, "not an event record (bad magic)");
    if (p[4] != REC_VERSION)
        return fdn_err_set(err, FDN_EDESERIALIZE, "unsupported event record version %u", p[4]);
    uint32_t total = get32(p + 8);
    if (total != len)
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record length %u does not match %zu bytes",
                           total, len);
    uint32_t crc = get32(p + len - 4);
    if (fdn__crc32c(0, p, len - 4) != crc)
        return fdn_err_set(err, FDN_ECORRUPT, "event record checksum mismatch (CRC32C)");
    uint8_t fl = p[5];
    if ((fl & ~FLAG_ZSTD) || p[7] || p[57] || p[58] || p[59])
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record has unknown flags");
    if (p[6] > FDN_EVENT_CT_BINARY) /* a record field, not a caller argument: not EINVAL */
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record content type %u unknown", p[6]);
    fdn__event_fields_t f;
    memset(&f, 0, sizeof(f));
    f.ctype = p[6];
    f.id = get64(p + 12);
    f.ts = (int64_t)get64(p + 20);
    f.wall = (int64_t)get64(p + 28);
    f.parent = get64(p + 36);
    f.pid = get32(p + 44);
    f.tid = get32(p + 48);
    f.type_len = get16(p + 52);
    f.corr_len = get16(p + 54);
    f.node_len = p[56];
    uint32_t stored = get32(p + 60);
    uint32_t raw = get32(p + 64);
    uint64_t sum = (uint64_t)REC_MIN + f.type_len + f.corr_len + f.node_len + stored;
    if (sum != len)
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record field lengths inconsistent");
    if (raw > FDN_EVENT_DATA_MAX || (!(fl & FLAG_ZSTD) && raw != stored))
        return fdn_err_set(err, FDN_EDESERIALIZE, "event record data length invalid");
    const uint8_t *s = p + REC_HDR;
    f.type = (const char *)s;
    s += f.type_len;
    f.node = (const char *)s;
    s += f.node_len;
    f.corr = (const char *)s;
    s += f.corr_len;
    void *plain = NULL;
    if (fl & FLAG_ZSTD) {
        unsigned long long fs = ZSTD_getFrameContentSize(s, stored);
        if (fs != raw || raw == 0)
            return fdn_err_set(err, FDN_EDESERIALIZE, "compressed data header invalid");
        plain = fdn__malloc(raw);
        if (plain == NULL)
            return fdn_err_set(err, FDN_ENOMEM, "decode: out of memory");
        size_t got = ZSTD_decompress(plain, raw, s, stored);
        if (ZSTD_isError(got) || got != raw) {
            fdn__free(plain);
            return fdn_err_set(err, FDN_EDESERIALIZE, "compressed data invalid");
        }
        f.data = plain;
    } else {
        f.data = s;
    }
    f.data_len = raw;
    int rc = fdn__event_check_fields(&f, false, err);
    if (rc == 0) {
        fdn_event_t *ev = fdn__event_from_fields(&f);
        if (ev == NULL)
            rc = fdn_err_set(err, FDN_ENOMEM, "decode: out of memory");
        else
            *out = ev;
    }
    fdn__free(plain);
    return rc;
}

/* ---- base64 (logic/base64.h: one strict codec for the library) ---- */

static char *b64_encode(const uint8_t *in, size_t n)
{
    size_t len = fdn__b64_encoded_len(n);
    char *o = fdn__malloc(len + 1);
    if (o != NULL)
        (void)fdn__b64_encode(o, len + 1, in, n);
    return o;
}

/* Strict decode: length multiple of 4, '=' only as final padding, zero trailing bits. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    if (n % 4 != 0)
        return FDN_EDESERIALIZE;
    size_t cap = n / 4 * 3 + 1;
    uint8_t *o = fdn__malloc(cap);
    if (o == NULL)
        return FDN_ENOMEM;
    int64_t got = fdn__b64_decode(o, cap, s, n);
    if (got < 0) {
        fdn__free(o);
        return FDN_EDESERIALIZE;
    }
    *out = o;
    *out_len = (size_t)got;
    return 0;
}

/* ---- JSON form ---- */

static const char *const k_ctype[] = {"json", "text", "binary"};

static int set_new(json_t *o, const char *k, json_t *v)
{
    if (v == NULL)
        return -1;
    return json_object_set_new(o, k, v);
}

int fdn_event_to_json(const fdn_event_t *ev, char **out)
{
    if (ev == NULL || out == NULL)
        return FDN_EINVAL;
    json_t *o = json_object();
    if (o == NULL)
        return FDN_ENOMEM;
    int bad = 0;
    char iso[64];
    struct tm tm;
    time_t secs = (time_t)(ev->wall / 1000000000);
    long ns = (long)(ev->wall % 1000000000);
    if (ns < 0) {
        ns += 1000000000;
        secs--;
    }
    if (gmtime_r(&secs, &tm) != NULL) {
        size_t k = strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(iso + k, sizeof(iso) - k, ".%09ldZ", ns);
    } else {
        iso[0] = '\0';
    }
    bad |= set_new(o, "v", json_integer(1));
    bad |= set_new(o, "id", json_integer((json_int_t)ev->id));
    bad |= set_new(o, "type", json_stringn(ev->type, ev->type_len));
    bad |= set_new(o, "timestamp_ns", json_integer(ev->ts));
    bad |= set_new(o, "wall_time_ns", json_integer(ev->wall));
    bad |= set_new(o, "wall_time", json_string(iso));
    bad |= set_new(o, "node", json_stringn(ev->node, ev->node_len));
    bad |= set_new(o, "pid", json_integer(ev->pid));
    bad |= set_new(o, "tid", json_integer(ev->tid));
    bad |= set_new(o, "correlation_id",
                   ev->corr_len ? json_stringn(ev->corr, ev->corr_len) : json_null());
    bad |= set_new(o, "parent_id", ev->parent ? json_integer((json_int_t)ev->parent) : json_null());
    bad |= set_new(o, "content_type", json_string(k_ctype[ev->ctype <= 2 ? ev->ctype : 2]));
    if (ev->data_len > 0) {
        json_t *d = NULL;
        bool oom = false;
        if (ev->ctype == FDN_EVENT_CT_JSON)
            d = fdn__json_loadb((const char *)ev->data, ev->data_len,
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL, &oom);
        else if (ev->ctype == FDN_EVENT_CT_TEXT)
            d = json_stringn((const char *)ev->data, ev->data_len);
        if (oom) {
            bad = 1; /* not data that fails to parse: out of memory */
        } else if (d != NULL) {
            bad |= set_new(o, "data", d);
        } else {
            char *b = b64_encode(ev->data, ev->data_len);
            bad |= set_new(o, "data_base64", b ? json_string(b) : NULL);
            fdn__free(b);
        }
    }
    char *txt = NULL;
    int rc = bad ? FDN_ENOMEM : fdn_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER, &txt, NULL);
    json_decref(o);
    if (rc != 0)
        return FDN_ENOMEM;
    *out = txt;
    return 0;
}

static int get_uint(json_t *o, const char *k, uint64_t max, bool nullable, uint64_t *v)
{
    json_t *x = json_object_get(o, k);
    if (x == NULL || (nullable && json_is_null(x))) {
        *v = 0;
        return 0;
    }
    if (!json_is_integer(x) || json_integer_value(x) < 0 || (uint64_t)json_integer_value(x) > max)
        return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

static int get_str(json_t *o, const char *k, bool nullable, const char **s, size_t *n)
{
    json_t *x = json_object_get(o, k);
    if (x == NULL || (nullable && json_is_null(x))) {
        *s = "";
        *n = 0;
        return 0;
    }
    if (!json_is_string(x))
        return -1;
    *s = json_string_value(x);
    *n = json_string_length(x);
    return 0;
}

int fdn_event_from_json(fdn_event_t **out, const char *json, size_t len, fdn_error_t *err)
{
    static const char *const known[] = {
        "v",   "id",  "type",           "timestamp_ns", "wall_time_ns", "wall_time", "node",
        "pid", "tid", "correlation_id", "parent_id",    "content_type", "data",      "data_base64"};
    if (out == NULL || (json == NULL && len > 0))
        return fdn_err_set(err, FDN_EINVAL, "from_json: NULL argument");
    json_error_t jerr;
    bool oom = false;
    json_t *o = fdn__json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                                &jerr, &oom);
    if (oom)
        return fdn_err_set(err, FDN_ENOMEM, NULL);
    if (o == NULL)
        return fdn_err_set(err, FDN_EDESERIALIZE, "event JSON does not parse: %s", jerr.text);
    int rc = FDN_EDESERIALIZE;
    const char *why = "not an object";
    uint8_t *bin = NULL;
    char *dtxt = NULL;
    if (!json_is_object(o))
        goto fail;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            why = "unknown key";
            goto fail;
        }
    }
    fdn__event_fields_t f;
    memset(&f, 0, sizeof(f));
    uint64_t v, u;
    why = "bad field";
    if (get_uint(o, "v", 1, false, &v) || (json_object_get(o, "v") && v != 1))
        goto fail;
    if (get_uint(o, "id", INT64_MAX, false, &f.id) ||
        get_uint(o, "parent_id", INT64_MAX, true, &f.parent) ||
        get_uint(o, "pid", UINT32_MAX, false, &u))
        goto fail;
    f.pid = (uint32_t)u;
    if (get_uint(o, "tid", UINT32_MAX, false, &u))
        goto fail;
    f.tid = (uint32_t)u;
    json_t *t = json_object_get(o, "timestamp_ns");
    json_t *w = json_object_get(o, "wall_time_ns");
    if (t == NULL || !json_is_integer(t) || (w && !json_is_integer(w)))
        goto fail;
    f.ts = json_integer_value(t);
    f.wall = w ? json_integer_value(w) : 0;
    json_t *iso = json_object_get(o, "wall_time");
    if (iso && !json_is_string(iso))
        goto fail;
    json_t *jt = json_object_get(o, "type");
    if (jt == NULL || json_is_null(jt)) {
        json_decref(o);
        return fdn_err_set(err, FDN_EVALIDATION, "Event type cannot be nil");
    }
    if (get_str(o, "type", false, &f.type, &f.type_len) ||
        get_str(o, "node", false, &f.node, &f.node_len) ||
        get_str(o, "correlation_id", true, &f.corr, &f.corr_len))
        goto fail;
    json_t *ct = json_object_get(o, "content_type");
    f.ctype = FDN_EVENT_CT_JSON;
    if (ct != NULL) {
        if (!json_is_string(ct))
            goto fail;
        bool found = false;
        for (uint8_t i = 0; i < 3; i++)
            if (strcmp(json_string_value(ct), k_ctype[i]) == 0) {
                f.ctype = i;
                found = true;
            }
        if (!found)
            goto fail;
    }
    json_t *d = json_object_get(o, "data");
    json_t *db = json_object_get(o, "data_base64");
    if (d && db) {
        why = "both data and data_base64";
        goto fail;
    }
    if (db) {
        if (!json_is_string(db))
            goto fail;
        int r = b64_decode(json_string_value(db), json_string_length(db), &bin, &f.data_len);
        if (r != 0) {
            rc = r;
            why = "bad base64";
            goto fail;
        }
        f.data = bin;
    } else if (d) {
        if (f.ctype == FDN_EVENT_CT_JSON) {
            if (fdn_json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY, &dtxt,
                               &f.data_len) != 0) {
                rc = FDN_ENOMEM;
                goto fail;
            }
            f.data = dtxt;
        } else if (f.ctype == FDN_EVENT_CT_TEXT && json_is_string(d)) {
            f.data = json_string_value(d);
            f.data_len = json_string_length(d);
        } else {
            why = "data does not match content_type";
            goto fail;
        }
    }
    if (f.type_len > FDN_EVENT_TYPE_MAX || f.node_len > FDN_EVENT_NODE_MAX ||
        f.corr_len > FDN_EVENT_CORR_MAX || f.data_len > FDN_EVENT_DATA_MAX ||
        memchr(f.type, 0, f.type_len) || memchr(f.node, 0, f.node_len) ||
        memchr(f.corr, 0, f.corr_len)) {
        rc = fdn__event_check_fields(&f, false, err);
        if (rc == 0)
            rc = fdn_err_set(err, FDN_EDESERIALIZE, "event JSON: string with NUL byte");
        goto out;
    }
    rc = fdn__event_check_fields(&f, false, err);
    if (rc == 0) {
        fdn_event_t *ev = fdn__event_from_fields(&f);
        if (ev == NULL)
            rc = fdn_err_set(err, FDN_ENOMEM, "from_json: out of memory");
        else
            *out = ev;
    }
    goto out;
fail:
    if (rc == FDN_ENOMEM)
        fdn_err_set(err, rc, "from_json: out of memory");
    else
        fdn_err_set(err, rc, "event JSON rejected: %s", why);
out:
    fdn__free(bin);
    fdn__free(dtxt); /* jansson allocates through the library allocator */
    json_decref(o);
    return rc;
}
