/*
 * DESIGN: the fast path of the event append bodies (event_body.h). A batch of 100 small events
 * spent most of its server-thread time in jansson: the parse into a tree, the dump of each
 * event's "data" back to compact text, and freeing the tree. This reads the body once, left to
 * right, and keeps each event's strings and its data's compact text in one buffer. It accepts
 * only the subset of JSON whose compact dump by jansson is the input minus whitespace: strings
 * of printable ASCII and valid UTF-8 without escapes (jansson writes those back unchanged),
 * integers of up to 18 digits without leading zeros and other than -0, true, false, null,
 * objects with distinct keys and arrays, at most 32 deep. Anything else, and any body the
 * jansson path would refuse, gives FDN__EVB_SLOW, so every error answer still comes from the
 * jansson path with its messages (the caller builds the events; fdn_event_new's own refusals
 * also send it there). Threads: none; no state.
 */
#include "admin/event_body.h"
#include "admin/json_num.h"

#include <string.h>

#define MAX_DEPTH 32
#define MAX_KEYS  256 /* keys of the open objects, for the duplicate check */

typedef struct parser {
    const char *p, *e;
    fdn__admin_text_t *t;
    bool oom;
    /* keys of the objects being read (spans into the body), per depth a start index */
    const char *key[MAX_KEYS];
    size_t keylen[MAX_KEYS];
    size_t nkeys;
} parser_t;

static void ws(parser_t *ps)
{
    while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static void put(parser_t *ps, const char *s, size_t n)
{
    if (!ps->oom && fdn__admin_text_put(ps->t, s, n) < 0)
        ps->oom = true;
}

/* Consume c when it comes next. */
static bool eat(parser_t *ps, char c)
{
    if (ps->p >= ps->e || *ps->p != c)
        return false;
    ps->p++;
    return true;
}

/* After a member or an element (whitespace may come first): true when a ',' follows (consumed,
 * and the whitespace after it: another one comes); else false, and *closed says whether
 * `close` came (consumed: the object or array ends) or anything else (a bad body). With echo,
 * the ',' or `close` is copied to the text (inside a "data" value). Always inlined: as a call
 * it cost 6% more instructions per batch body (callgrind); inlined, 0.3% fewer than the four
 * copies it replaces. */
static inline __attribute__((always_inline)) bool more(parser_t *ps, char close, bool echo,
                                                       bool *closed)
{
    ws(ps);
    if (eat(ps, ',')) {
        if (echo)
            put(ps, ",", 1);
        ws(ps);
        return true;
    }
    *closed = eat(ps, close);
    if (*closed && echo)
        put(ps, close == ']' ? "]" : "}", 1);
    return false;
}

/* Length of the valid UTF-8 sequence starting at s (< e), 0 if none (as jansson decides:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, const unsigned char *e)
{
    unsigned c = s[0];
    size_t n = c >= 0xC2 && c <= 0xDF   ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || (size_t)(e - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

/* A string without escapes: its bytes (between the quotes); p past the closing quote. */
static bool str(parser_t *ps, const char **s, size_t *n)
{
    const char *p = ps->p;
    if (p >= ps->e || *p != '"')
        return false;
    const char *b = ++p;
    while (p < ps->e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '\\')
                return false;
            p++;
            continue;
        }
        size_t u = utf8_len((const unsigned char *)p, (const unsigned char *)ps->e);
        if (u == 0)
            return false;
        p += u;
    }
    if (p >= ps->e)
        return false;
    *s = b;
    *n = (size_t)(p - b);
    ps->p = p + 1;
    return true;
}

/* An integer of 1..18 digits, not -0, no fraction or exponent. */
static bool integer(parser_t *ps, int64_t *out)
{
    return fdn__json_int18(&ps->p, ps->e, out);
}

static bool literal(parser_t *ps, const char *w, size_t n)
{
    if ((size_t)(ps->e - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return false;
    ps->p += n;
    /* "nullx", "true1": not a literal; what follows must end the value */
    if (ps->p < ps->e && ((*ps->p >= 'a' && *ps->p <= 'z') || (*ps->p >= 'A' && *ps->p <= 'Z') ||
                          (*ps->p >= '0' && *ps->p <= '9')))
        return false;
    return true;
}

/* Any value, copied to the text in compact form. */
static bool value(parser_t *ps, int depth)
{
    if (ps->p >= ps->e || depth > MAX_DEPTH)
        return false;
    char c = *ps->p;
    if (c == '"') {
        const char *b = ps->p, *s;
        size_t n;
        if (!str(ps, &s, &n))
            return false;
        put(ps, b, n + 2);
        return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *b = ps->p;
        int64_t v;
        if (!integer(ps, &v))
            return false;
        put(ps, b, (size_t)(ps->p - b));
        return true;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t n = strlen(w);
        if (!literal(ps, w, n))
            return false;
        put(ps, w, n);
        return true;
    }
    if (c == '[') {
        ps->p++;
        put(ps, "[", 1);
        ws(ps);
        if (ps->p < ps->e && *ps->p == ']') {
            ps->p++;
            put(ps, "]", 1);
            return true;
        }
        for (;;) {
            if (!value(ps, depth + 1))
                return false;
            bool closed;
            if (!more(ps, ']', true, &closed))
                return closed;
        }
    }
    if (c == '{') {
        ps->p++;
        put(ps, "{", 1);
        ws(ps);
        if (ps->p < ps->e && *ps->p == '}') {
            ps->p++;
            put(ps, "}", 1);
            return true;
        }
        size_t base = ps->nkeys; /* this object's keys: key[base..nkeys) */
        bool ok = false;
        for (;;) {
            const char *b = ps->p, *k;
            size_t kn;
            if (!str(ps, &k, &kn))
                break;
            size_t i = base;
            while (i < ps->nkeys && !(ps->keylen[i] == kn && memcmp(ps->key[i], k, kn) == 0))
                i++;
            if (i < ps->nkeys || ps->nkeys == MAX_KEYS) /* repeated key, or too many */
                break;
            ps->key[ps->nkeys] = k;
            ps->keylen[ps->nkeys++] = kn;
            put(ps, b, kn + 2);
            ws(ps);
            if (ps->p >= ps->e || *ps->p != ':')
                break;
            ps->p++;
            put(ps, ":", 1);
            ws(ps);
            if (!value(ps, depth + 1))
                break;
            if (more(ps, '}', true, &ok))
                continue;
            break;
        }
        ps->nkeys = base;
        return ok;
    }
    return false;
}

/* Write s (n bytes) and a NUL to the text; its offset. */
static size_t put_z(parser_t *ps, const char *s, size_t n)
{
    size_t at = ps->t->len;
    put(ps, s, n);
    put(ps, "", 1);
    return at;
}

enum { M_TYPE = 1, M_DATA = 2, M_CID = 4, M_PARENT = 8 };

/* One event object. */
static bool event(parser_t *ps, fdn__evb_item_t *it)
{
    if (ps->p >= ps->e || *ps->p != '{')
        return false;
    ps->p++;
    ws(ps);
    unsigned seen = 0;
    it->cid = SIZE_MAX;
    it->cid_len = 0;
    it->parent_id = 0;
    if (ps->p < ps->e && *ps->p == '}')
        return false; /* no type */
    for (;;) {
        const char *k;
        size_t kn;
        if (!str(ps, &k, &kn))
            return false;
        unsigned m = kn == 4 && memcmp(k, "type", 4) == 0               ? M_TYPE
                     : kn == 4 && memcmp(k, "data", 4) == 0             ? M_DATA
                     : kn == 14 && memcmp(k, "correlation_id", 14) == 0 ? M_CID
                     : kn == 9 && memcmp(k, "parent_id", 9) == 0        ? M_PARENT
                                                                        : 0;
        if (m == 0 || (seen & m) != 0)
            return false;
        seen |= m;
        ws(ps);
        if (ps->p >= ps->e || *ps->p != ':')
            return false;
        ps->p++;
        ws(ps);
        const char *s;
        size_t n;
        int64_t v;
        switch (m) {
        case M_TYPE:
            if (!str(ps, &s, &n))
                return false;
            it->type = put_z(ps, s, n);
            break;
        case M_CID:
            if (ps->p < ps->e && *ps->p == 'n') {
                if (!literal(ps, "null", 4))
                    return false;
                break;
            }
            if (!str(ps, &s, &n))
                return false;
            it->cid = put_z(ps, s, n);
            it->cid_len = n;
            break;
        case M_PARENT:
            if (ps->p < ps->e && *ps->p == 'n') {
                if (!literal(ps, "null", 4))
                    return false;
                break;
            }
            if (!integer(ps, &v) || v < 0)
                return false;
            it->parent_id = (uint64_t)v;
            break;
        default: /* M_DATA */
            it->data = ps->t->len;
            if (!value(ps, 1))
                return false;
            it->data_len = ps->t->len - it->data;
            put(ps, "", 1);
            break;
        }
        bool closed;
        if (more(ps, '}', false, &closed))
            continue;
        if (!closed)
            return false;
        break;
    }
    if (!(seen & M_TYPE))
        return false;
    if (!(seen & M_DATA)) {
        it->data = put_z(ps, "null", 4);
        it->data_len = 4;
    }
    return true;
}

int fdn__evb_parse(const char *body, size_t len, bool batch, size_t max, fdn__evb_item_t *items,
                   fdn__admin_text_t *text)
{
    if (body == NULL || max == 0)
        return FDN__EVB_SLOW;
    /* on the stack (~4 KB; server threads have the default stack size): from the heap it took
     * glibc's slow path (above its 1 KB thread cache) on every POST */
    parser_t psb, *ps = &psb;
    ps->p = body;
    ps->e = body + len;
    ps->t = text;
    ps->oom = false;
    ps->nkeys = 0;
    size_t n = 0;
    bool ok = false;
    ws(ps);
    if (!batch) {
        ok = event(ps, &items[0]);
        n = 1;
    } else {
        bool wrapped = ps->p < ps->e && *ps->p == '{';
        if (wrapped) { /* {"events": [...]} and nothing else */
            const char *k;
            size_t kn;
            ps->p++;
            ws(ps);
            if (!str(ps, &k, &kn) || kn != 6 || memcmp(k, "events", 6) != 0)
                goto done;
            ws(ps);
            if (ps->p >= ps->e || *ps->p != ':')
                goto done;
            ps->p++;
            ws(ps);
        }
        if (ps->p >= ps->e || *ps->p != '[')
            goto done;
        ps->p++;
        ws(ps);
        for (;;) {
            if (n == max || !event(ps, &items[n]))
                goto done;
            n++;
            bool closed;
            if (more(ps, ']', false, &closed))
                continue;
            if (!closed)
                goto done;
            break;
        }
        if (wrapped) {
            ws(ps);
            if (ps->p >= ps->e || *ps->p != '}')
                goto done;
            ps->p++;
        }
        ok = true;
    }
    if (ok) {
        ws(ps);
        ok = ps->p == ps->e && !ps->oom;
    }
done:
    return ok ? (int)n : FDN__EVB_SLOW;
}
