/* The body of the rate limiter's HTTP requests (POST /v1/limiter/{check,inc,set,get}) as a
 * key, a rule and the endpoint's one integer field. Pure: no I/O, no allocation, no state;
 * the admin endpoints (src/admin/api_limiter.c) call it on the parsed JSON body, and the fuzz
 * target fuzz/fuzz_limiter_req.c calls it without a server. */
#ifndef FDN_ADMIN_LIMITER_REQ_H
#define FDN_ADMIN_LIMITER_REQ_H

#include <jansson.h>

#include <fdn/error.h>
#include <fdn/limiter.h>

/* longest accepted key: every distinct key is state the limiter keeps for a window, so a
 * client must not be able to make each one arbitrarily large */
#define FDN__LIMITER_REQ_KEY_MAX 256
/* longest window: a key's state lives up to two windows, so a client's window bounds how
 * long its keys occupy the table (the library accepts up to 2^33 ms, ~99 days) */
#define FDN__LIMITER_REQ_WINDOW_MAX_MS 86400000
/* longest identity */
#define FDN__LIMITER_REQ_IDENTITY_MAX 64

typedef enum fdn__limiter_req_op {
    FDN__LREQ_CHECK, /* "cost" optional, 1..2^31-1, default 1, at most the rule's capacity */
    FDN__LREQ_INC,   /* "cost" optional, 1..2^31-1, default 1 */
    FDN__LREQ_SET,   /* "count" required, 0..2^31-1 */
    FDN__LREQ_GET    /* no extra field (value 0) */
} fdn__limiter_req_op_t;

typedef struct fdn__limiter_req {
    const char *key; /* borrowed from the body (valid while the body is), or keybuf */
    size_t keylen;   /* 1..FDN__LIMITER_REQ_KEY_MAX, plus the identity and separator */
    fdn_limit_rule_t rule;
    int64_t value;        /* cost (check, inc), count (set), 0 (get) */
    const char *identity; /* borrowed from the body; NULL: none */
    /* the limiter key "\x01[<identity>\x1f]<key>" (FDN_LIMIT_KEY_NS_HTTP, then with an identity
     * FDN_LIMIT_IDENTITY_SEP): the struct must not be copied (key points here) */
    char keybuf[1 + FDN__LIMITER_REQ_IDENTITY_MAX + 1 + FDN__LIMITER_REQ_KEY_MAX + 1];
    char idbuf[FDN__LIMITER_REQ_IDENTITY_MAX + 1]; /* the identity (fdn__limiter_req_fast) */
} fdn__limiter_req_t;

/* Read body (the parsed request JSON, any type) for op: "key", "limit", "window_ms",
 * "algorithm" (default fixed_window), "burst" (token_bucket and gcra only), "identity"
 * (optional, 1..FDN__LIMITER_REQ_IDENTITY_MAX bytes without U+001F: the key then counts
 * against that caller's quota of live keys) and the op's field; any other member is refused. Returns 0 with *out filled, or FDN_EINVAL with a
 * message in err (may be NULL) naming the field; *out is then unspecified. */
int fdn__limiter_req_parse(const json_t *body, fdn__limiter_req_op_t op, fdn__limiter_req_t *out,
                           fdn_error_t *err);

/* Returned by fdn__limiter_req_fast for a body it leaves to fdn__limiter_req_parse. */
#define FDN__LREQ_SLOW 1

/* The fast path of the same bodies, straight from the raw text (no jansson): 0 with *out
 * filled exactly as fdn__limiter_req_parse fills it from the parsed body (key and identity
 * copied into out's buffers), or FDN__LREQ_SLOW for anything else: a body that is not one flat
 * object of known, distinct members whose values are plain ASCII strings (no escapes) and
 * integers of up to 18 digits, or one that any check would refuse. It never reports an error:
 * those come from the full path, with its messages. The fuzz target checks both agree. */
int fdn__limiter_req_fast(const char *body, size_t len, fdn__limiter_req_op_t op,
                          fdn__limiter_req_t *out);

#endif
