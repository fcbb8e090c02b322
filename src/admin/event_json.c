/*
 * DESIGN: events written as JSON text for GET /v1/events and GET /v1/events/{id}
 * (event_json.h). fdn_event_to_json builds a jansson object of 13 members, parses the event's
 * data into a tree, formats the wall time with strftime + snprintf and dumps it all: ~48 k
 * instructions an event, four fifths of a GET /v1/events?correlation_id= answer of 10 events.
 * Here the members go out in the same order and form through the admin's writer (http_jw),
 * the wall time from civil-date arithmetic, and the data is copied as it is when it already is
 * the text jansson's dump would give (fdn__admin_json_is_canonical: what the admin's own
 * appends store, the compact dump of checked JSON). Anything else (binary data, text that is
 * not UTF-8, JSON in another form, a wall time before 1970 or after 9999) is handed to
 * fdn_event_to_json, so the answer stays byte-identical in every case; the unit test and
 * fuzz/fuzz_event_render.c compare both.
 * GET /v1/events answers (fdn__admin_events_answer) also go through a memo: the body is a
 * function of the listed events alone (each written from its fields, all of which
 * fdn_event_equal compares), so an answer whose events equal, one for one, those of an answer
 * written lately is that answer's bytes, copied. A dashboard polling a trace gets the same
 * events until one is appended or pruned; the memo does not need to know when that happens,
 * because it compares the query's result itself (the query still runs: ~5 k instructions for
 * 10 events, the rendering it saves ~15 k). Nothing can go stale, whatever changed in the
 * store or whichever store answered. GET /v1/events hands the memo's lists to the store
 * (fdn__admin_events_query, fdn_events_query_same), which compares its matches with them where
 * it holds them: a hit copies no event (the copy and the comparison of copies cost ~4.7 k
 * instructions of 10 events, the comparison in place ~1.5 k). A slot also keeps the
 * libmicrohttpd response made for its body (fdn__http_resp_t.keep, filled by http.c when the
 * answer is sent), so a hit queues that response again instead of making one and adding its
 * two headers (~3 k instructions and 7 blocks); the slot destroys it when it is replaced or
 * freed (fdn__http_kept_free), while requests still sending it keep it alive.
 * Threads: none of its own. The memo is per thread (a pthread key, freed at the thread's
 * exit), so it takes no lock; fdn__admin_events_memo_clear empties the calling thread's.
 * Errors: out of memory sticks in the writer; a memo that cannot be made or kept only means
 * the answer is written again.
 */
#include "admin/event_json.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "admin/http_jw.h"

#define CANON_DEPTH 32
#define CANON_KEYS  64

/* Length of the valid UTF-8 sequence at s[0..n) (2..4), or 0 (jansson's rules: no overlong
 * forms, surrogates or code points above U+10FFFF). s[0] >= 0x80. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k = c >= 0xC2 && c <= 0xDF   ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (k == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F)))
        return 0;
    if (k == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)))
        return 0;
    return k;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A canonical string at s[*i] (the opening quote): advance past it. *nul is set when it holds
 * U+0000 (jansson refuses that in a key). */
static bool canon_string(const char *s, size_t n, size_t *i, bool *nul)
{
    size_t p = *i + 1;
    *nul = false;
    while (p < n) {
        unsigned char c = (unsigned char)s[p];
        if (c == '"') {
            *i = p + 1;
            return true;
        }
        if (c < 0x20)
            return false; /* jansson refuses a raw control byte */
        if (c == '\\') {
            if (p + 1 >= n)
                return false;
            char e = s[p + 1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
                continue;
            }
            /* \u00XX, upper-case hex, only for a control byte without a short form */
            if (e != 'u' || p + 5 >= n || s[p + 2] != '0' || s[p + 3] != '0')
                return false;
            int hi = hexval(s[p + 4]), lo = hexval(s[p + 5]);
            if (hi < 0 || hi > 1 || lo < 0)
                return false;
            int v = hi * 16 + lo;
            if (v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t')
                return false;
            if (v == 0)
                *nul = true;
            p += 6;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)s + p, n - p);
        if (k == 0)
            return false;
        p += k;
    }
    return false;
}

/* A canonical integer (no reals: jansson rewrites them): -?(0|[1-9][0-9]*), at most 18
 * digits (within json_int_t), not "-0". */
static bool canon_number(const char *s, size_t n, size_t *i)
{
    size_t p = *i;
    bool neg = s[p] == '-';
    if (neg)
        p++;
    size_t d0 = p;
    while (p < n && s[p] >= '0' && s[p] <= '9')
        p++;
    size_t nd = p - d0;
    if (nd == 0 || nd > 18 || (nd > 1 && s[d0] == '0') || (neg && s[d0] == '0'))
        return false;
    if (p < n && (s[p] == '.' || s[p] == 'e' || s[p] == 'E'))
        return false;
    *i = p;
    return true;
}

static bool canon_value(const char *s, size_t n, size_t *i, int depth);

static bool canon_object(const char *s, size_t n, size_t *i, int depth)
{
    size_t keys[CANON_KEYS][2]; /* offset and length of each key's text, for duplicates */
    size_t nk = 0;
    size_t p = *i + 1;
    if (p < n && s[p] == '}') {
        *i = p + 1;
        return true;
    }
    for (;;) {
        if (p >= n || s[p] != '"' || nk == CANON_KEYS)
            return false;
        size_t k0 = p;
        bool nul;
        if (!canon_string(s, n, &p, &nul) || nul)
            return false;
        size_t kl = p - k0;
        /* canonical escapes are unique, so equal texts are equal keys and only they */
        for (size_t j = 0; j < nk; j++)
            if (keys[j][1] == kl && memcmp(s + keys[j][0], s + k0, kl) == 0)
                return false; /* jansson keeps one of them */
        keys[nk][0] = k0;
        keys[nk][1] = kl;
        nk++;
        if (p >= n || s[p] != ':')
            return false;
        p++;
        if (!canon_value(s, n, &p, depth + 1))
            return false;
        if (p < n && s[p] == ',') {
            p++;
            continue;
        }
        if (p < n && s[p] == '}') {
            *i = p + 1;
            return true;
        }
        return false;
    }
}

static bool canon_array(const char *s, size_t n, size_t *i, int depth)
{
    size_t p = *i + 1;
    if (p < n && s[p] == ']') {
        *i = p + 1;
        return true;
    }
    for (;;) {
        if (!canon_value(s, n, &p, depth + 1))
            return false;
        if (p < n && s[p] == ',') {
            p++;
            continue;
        }
        if (p < n && s[p] == ']') {
            *i = p + 1;
            return true;
        }
        return false;
    }
}

static bool canon_lit(const char *s, size_t n, size_t *i, const char *lit, size_t len)
{
    if (n - *i < len || memcmp(s + *i, lit, len) != 0)
        return false;
    *i += len;
    return true;
}

static bool canon_value(const char *s, size_t n, size_t *i, int depth)
{
    if (*i >= n || depth > CANON_DEPTH)
        return false;
    bool nul;
    switch (s[*i]) {
    case '{':
        return canon_object(s, n, i, depth);
    case '[':
        return canon_array(s, n, i, depth);
    case '"':
        return canon_string(s, n, i, &nul);
    case 't':
        return canon_lit(s, n, i, "true", 4);
    case 'f':
        return canon_lit(s, n, i, "false", 5);
    case 'n':
        return canon_lit(s, n, i, "null", 4);
    default:
        if (s[*i] == '-' || (s[*i] >= '0' && s[*i] <= '9'))
            return canon_number(s, n, i);
        return false;
    }
}

bool fdn__admin_json_is_canonical(const char *s, size_t n)
{
    size_t i = 0;
    return s != NULL && canon_value(s, n, &i, 0) && i == n;
}

/* Whether the n bytes at s are valid UTF-8 (NUL included, as for json_stringn). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t p = 0; p < n;) {
        if (s[p] < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(s + p, n - p);
        if (k == 0)
            return false;
        p += k;
    }
    return true;
}

/* A string the event's rules keep to printable ASCII (node, correlation id), n bytes, at o
 * (room for 2 n + 2): only '"' and '\' need an escape. @return the bytes written */
static size_t ascii_string(char *o, const char *s, size_t n)
{
    char *p = o;
    *p++ = '"';
    size_t k = strcspn(s, "\"\\");
    if (k >= n) {
        memcpy(p, s, n);
        p += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                *p++ = '\\';
            *p++ = s[i];
        }
    }
    *p++ = '"';
    return (size_t)(p - o);
}

#define PUT_LIT(p, lit)                                                                            \
    do {                                                                                           \
        memcpy(p, lit, sizeof lit - 1);                                                            \
        p += sizeof lit - 1;                                                                       \
    } while (0)

static void put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" for a wall time in [1970, 10000): 30 bytes at out; false
 * outside that range (the caller takes fdn_event_to_json's gmtime_r + strftime). */
static bool iso_time(int64_t wall, char out[30])
{
    if (wall < 0)
        return false;
    int64_t secs = wall / 1000000000;
    unsigned ns = (unsigned)(wall % 1000000000);
    if (secs >= INT64_C(253402300800)) /* 10000-01-01T00:00:00Z */
        return false;
    int64_t days = secs / 86400;
    unsigned sod = (unsigned)(secs % 86400);
    /* days since 1970-01-01 to a civil date (proleptic Gregorian, eras of 400 years) */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = 'T';
    put_digits(out + 11, sod / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, sod / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, sod % 60, 2);
    out[19] = '.';
    put_digits(out + 20, ns, 9);
    out[29] = 'Z';
    return true;
}

static void slow_event(fdn__jw_t *w, const fdn_event_t *ev)
{
    char *e = NULL;
    if (w->rc == 0 && fdn_event_to_json(ev, &e) != 0) {
        w->rc = FDN_ENOMEM; /* its only error for an event */
        return;
    }
    if (e != NULL)
        fdn__jw_raw(w, e, strlen(e));
    fdn_free(e);
}

void fdn__admin_event_json(fdn__jw_t *w, const fdn_event_t *ev)
{
    char iso[30];
    size_t dlen = 0;
    const char *data = fdn_event_data(ev, &dlen);
    fdn_event_ctype_t ct = fdn_event_content_type(ev);
    /* binary data (data_base64), text that is not UTF-8 (likewise), JSON in another form
     * (parsed and dumped), a wall time outside [1970, 10000): fdn_event_to_json writes it */
    if (!iso_time(fdn_event_wall_time(ev), iso) || ct > FDN_EVENT_CT_TEXT ||
        (dlen > 0 && ct == FDN_EVENT_CT_JSON && !fdn__admin_json_is_canonical(data, dlen)) ||
        (dlen > 0 && ct == FDN_EVENT_CT_TEXT && !utf8_valid((const unsigned char *)data, dlen))) {
        slow_event(w, ev);
        return;
    }
    const char *type = fdn_event_type(ev), *node = fdn_event_node(ev);
    const char *cid = fdn_event_correlation_id(ev);
    size_t tl = strlen(type), nl = strlen(node), cl = strlen(cid);
    /* the members around the strings and data take at most ~330 bytes (7 integers of at most
     * 20 digits, the names, the time) */
    size_t room = 400 + tl + 2 * (nl + cl) + (ct == FDN_EVENT_CT_JSON ? dlen : 0);
    char *o = fdn__jw_reserve(w, room), *p = o;
    if (o == NULL)
        return;
    /* integers as json_integer((json_int_t)v) writes them */
    PUT_LIT(p, "{\"v\":1,\"id\":");
    p += fdn__jw_fmt_i64(p, (int64_t)fdn_event_id(ev));
    PUT_LIT(p, ",\"type\":\"");
    memcpy(p, type, tl); /* [A-Za-z][A-Za-z0-9_.:-]*: nothing to escape */
    p += tl;
    PUT_LIT(p, "\",\"timestamp_ns\":");
    p += fdn__jw_fmt_i64(p, fdn_event_timestamp(ev));
    PUT_LIT(p, ",\"wall_time_ns\":");
    p += fdn__jw_fmt_i64(p, fdn_event_wall_time(ev));
    PUT_LIT(p, ",\"wall_time\":\"");
    memcpy(p, iso, sizeof iso);
    p += sizeof iso;
    PUT_LIT(p, "\",\"node\":");
    p += ascii_string(p, node, nl);
    PUT_LIT(p, ",\"pid\":");
    p += fdn__jw_fmt_u64(p, fdn_event_pid(ev));
    PUT_LIT(p, ",\"tid\":");
    p += fdn__jw_fmt_u64(p, fdn_event_tid(ev));
    PUT_LIT(p, ",\"correlation_id\":");
    if (cl > 0)
        p += ascii_string(p, cid, cl);
    else
        PUT_LIT(p, "null");
    PUT_LIT(p, ",\"parent_id\":");
    uint64_t parent = fdn_event_parent_id(ev);
    if (parent != 0)
        p += fdn__jw_fmt_i64(p, (int64_t)parent);
    else
        PUT_LIT(p, "null");
    if (ct == FDN_EVENT_CT_JSON)
        PUT_LIT(p, ",\"content_type\":\"json\"");
    else
        PUT_LIT(p, ",\"content_type\":\"text\"");
    if (dlen > 0)
        PUT_LIT(p, ",\"data\":");
    if (dlen > 0 && ct == FDN_EVENT_CT_JSON) {
        memcpy(p, data, dlen);
        p += dlen;
    }
    if (dlen == 0 || ct == FDN_EVENT_CT_JSON) {
        *p++ = '}';
        fdn__jw_commit(w, (size_t)(p - o));
        return;
    }
    fdn__jw_commit(w, (size_t)(p - o));
    fdn__jw_text(w, data, dlen);
    fdn__jw_raw(w, "}", 1);
}

/* ---- GET /v1/events answers ------------------------------------------------------------- */

void fdn__admin_events_body(fdn__jw_t *w, const fdn_event_list_t *l)
{
    size_t n = fdn_event_list_count(l);
    fdn__jw_raw(w, "{\"events\":[", 11);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            fdn__jw_raw(w, ",", 1);
        fdn__admin_event_json(w, fdn_event_list_at(l, i));
    }
    fdn__jw_raw(w, "],\"count\":", 10);
    fdn__jw_u64(w, n);
    fdn__jw_raw(w, "}", 1);
}

/* An answer's body, shared by the memo and the responses that send it: a reference count
 * and the text (NUL-terminated) behind it. The text is what a response holds; its release
 * (fdn__admin_body_release, the response's text_free) finds the header before it. */
typedef struct body {
    _Atomic size_t refs;
    size_t len;
    char text[];
} body_t;

#define BODY_HDR offsetof(body_t, text)

void fdn__admin_body_release(void *text)
{
    if (text == NULL)
        return;
    body_t *b = (body_t *)(void *)((char *)text - BODY_HDR);
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        fdn_free(b);
}

/* The memo of answers (see event_json.h): per thread, MEMO_SLOTS recent (list, body) pairs,
 * replaced in turn. A slot owns its list and one reference to its body; the thread's memo is
 * freed at its exit (pthread key destructor), a body when its last response is sent too. A
 * body larger than MEMO_MAX_BODY is not kept, so a thread keeps at most MEMO_SLOTS bodies of
 * that size and their lists (about the same size again). */
#define MEMO_SLOTS    4
#define MEMO_MAX_BODY (64u * 1024u)

typedef struct memo_slot {
    fdn_event_list_t *l;
    body_t *body;
    void *kept; /* libmicrohttpd's response with this body (fdn__http_resp_t.keep), or NULL */
} memo_slot_t;

typedef struct memo {
    memo_slot_t s[MEMO_SLOTS];
    unsigned next; /* the slot the next miss replaces */
} memo_t;

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static bool memo_key_ok;

static void memo_free(void *p)
{
    memo_t *m = p;
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        fdn_event_list_free(m->s[i].l);
        fdn__http_kept_free(m->s[i].kept);
        if (m->s[i].body != NULL)
            fdn__admin_body_release(m->s[i].body->text);
    }
    fdn_free(m);
}

static void memo_key_init(void)
{
    memo_key_ok = pthread_key_create(&memo_key, memo_free) == 0;
}

/* This thread's memo (made on first use), or NULL (out of memory, no key). */
static memo_t *memo_get(void)
{
    (void)pthread_once(&memo_once, memo_key_init);
    if (!memo_key_ok)
        return NULL;
    memo_t *m = pthread_getspecific(memo_key);
    if (m == NULL) {
        m = fdn_calloc(1, sizeof *m);
        if (m != NULL && pthread_setspecific(memo_key, m) != 0) {
            fdn_free(m);
            m = NULL;
        }
    }
    return m;
}

/* Whether both lists hold equal events, in the same order: every field the answer is written
 * from (fdn_event_equal compares them all). */
static bool lists_equal(const fdn_event_list_t *a, const fdn_event_list_t *b)
{
    size_t n = fdn_event_list_count(a);
    if (fdn_event_list_count(b) != n)
        return false;
    /* the ids of both ends first: a different answer is usually told there */
    if (n > 0 &&
        (fdn_event_id(fdn_event_list_at(a, 0)) != fdn_event_id(fdn_event_list_at(b, 0)) ||
         fdn_event_id(fdn_event_list_at(a, n - 1)) != fdn_event_id(fdn_event_list_at(b, n - 1))))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!fdn_event_equal(fdn_event_list_at(a, i), fdn_event_list_at(b, i)))
            return false;
    return true;
}

static void answer(fdn__http_resp_t *resp, body_t *b, void **kept)
{
    resp->keep = kept;
    resp->text = b->text;
    resp->text_len = b->len;
    resp->text_free = fdn__admin_body_release;
    resp->content_type = "application/json";
    resp->status = 200;
}

/* A miss: the body of *l written as always, behind the body's header, sized from the
 * events' data (the members around each take ~250 bytes), and kept in the memo (m may be
 * NULL). Takes *l on success. */
static int answer_new(memo_t *m, fdn_event_list_t **l, fdn__http_resp_t *resp)
{
    size_t n = fdn_event_list_count(*l);
    size_t cap = BODY_HDR + 64;
    for (size_t i = 0; i < n; i++) {
        size_t dlen = 0;
        (void)fdn_event_data(fdn_event_list_at(*l, i), &dlen);
        cap += 320 + dlen;
    }
    fdn__jw_t w = {{fdn_malloc(cap), 0, cap}, 0};
    if (w.t.p == NULL)
        return FDN_ENOMEM;
    static const char hdr[BODY_HDR];
    fdn__jw_raw(&w, hdr, BODY_HDR); /* room for the header (written below) */
    fdn__admin_events_body(&w, *l);
    if (w.rc != 0) {
        fdn_free(w.t.p);
        return w.rc;
    }
    body_t *b = (body_t *)(void *)w.t.p; /* fdn_malloc's alignment */
    b->len = w.t.len - BODY_HDR;
    atomic_init(&b->refs, 1);
    if (m != NULL && b->len <= MEMO_MAX_BODY) { /* kept for the next answers */
        memo_slot_t *s = &m->s[m->next];
        m->next = (m->next + 1) % MEMO_SLOTS;
        fdn_event_list_free(s->l);
        fdn__http_kept_free(s->kept);
        if (s->body != NULL)
            fdn__admin_body_release(s->body->text);
        atomic_store_explicit(&b->refs, 2, memory_order_relaxed);
        s->l = *l;
        s->body = b;
        s->kept = NULL;
        *l = NULL;
        answer(resp, b, &s->kept);
        return 0;
    }
    fdn_event_list_free(*l);
    *l = NULL;
    answer(resp, b, NULL);
    return 0;
}

/* A hit: slot s's body again. */
static void answer_kept(memo_slot_t *s, fdn__http_resp_t *resp)
{
    atomic_fetch_add_explicit(&s->body->refs, 1, memory_order_relaxed);
    answer(resp, s->body, &s->kept);
}

int fdn__admin_events_answer(fdn_event_list_t **l, fdn__http_resp_t *resp)
{
    memo_t *m = memo_get();
    for (size_t i = 0; m != NULL && i < MEMO_SLOTS; i++) {
        memo_slot_t *s = &m->s[i];
        if (s->l == NULL || !lists_equal(s->l, *l))
            continue;
        fdn_event_list_free(*l);
        *l = NULL;
        answer_kept(s, resp);
        return 0;
    }
    return answer_new(m, l, resp);
}

int fdn__admin_events_query(fdn_events_t *es, const fdn_events_query_t *q, fdn__http_resp_t *resp)
{
    memo_t *m = memo_get();
    const fdn_event_list_t *prev[MEMO_SLOTS];
    for (size_t i = 0; i < MEMO_SLOTS; i++)
        prev[i] = m != NULL ? m->s[i].l : NULL;
    fdn_event_list_t *l = NULL;
    size_t same = SIZE_MAX;
    /* the store compares its matches with the memo's lists where it holds them: a hit copies
     * no event */
    int rc = fdn_events_query_same(es, q, prev, m != NULL ? MEMO_SLOTS : 0, &l, &same);
    if (rc < 0)
        return rc;
    if (same != SIZE_MAX) {
        answer_kept(&m->s[same], resp);
        return 0;
    }
    rc = answer_new(m, &l, resp);
    if (rc < 0)
        fdn_event_list_free(l);
    return rc;
}

int fdn__admin_events_answer_plain(fdn_event_list_t **l, fdn__http_resp_t *resp)
{
    return answer_new(NULL, l, resp);
}

void fdn__admin_events_memo_clear(void)
{
    (void)pthread_once(&memo_once, memo_key_init);
    if (!memo_key_ok)
        return;
    memo_t *m = pthread_getspecific(memo_key);
    if (m != NULL) {
        (void)pthread_setspecific(memo_key, NULL);
        memo_free(m);
    }
}
