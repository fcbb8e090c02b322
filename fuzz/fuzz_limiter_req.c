/* libFuzzer target: the rate limiter's HTTP request bodies (admin/limiter_req.c), the parser
 * behind POST /v1/limiter/{check,inc,set,get}, without a server. Input: byte 0 picks the
 * operation, the rest is the body, parsed as the admin server does (any JSON value,
 * duplicate keys refused). Oracles: 0 only with a key of 1..256 bytes (the limiter key is
 * "\x01<key>", or "\x01<identity>\x1f<key>" when an identity of 1..64 bytes without U+001F is
 * given: FDN_LIMIT_KEY_NS_HTTP), a rule that
 * fdn_limit_rule_validate accepts within the HTTP bounds, and the op's field in its range
 * (a check's cost within the rule's capacity); otherwise FDN_EINVAL with a message. The fast
 * path on the raw text (fdn__limiter_req_fast) must agree: it accepts only bodies the full path
 * accepts, with the same key, identity, rule and value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/limiter_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fdn__limiter_req_op_t op = (fdn__limiter_req_op_t)(data[0] % 4);
    /* the fast path reads the raw text: it accepts a body only when the full path accepts
     * it with the very same result (checked below), else it says FDN__LREQ_SLOW */
    fdn__limiter_req_t fq;
    int frc = fdn__limiter_req_fast((const char *)data + 1, size - 1, op, &fq);
    if (frc != 0 && frc != FDN__LREQ_SLOW)
        abort();
    json_t *body = json_loadb((const char *)data + 1, size - 1,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL) {
        if (frc == 0)
            abort(); /* the fast path took a body that is not JSON */
        return 0;
    }
    fdn__limiter_req_t q;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__limiter_req_parse(body, op, &q, &err);
    if (rc != 0) {
        if (rc != FDN_EINVAL || err.message[0] == '\0' || frc == 0)
            abort();
        json_decref(body);
        return 0;
    }
    if (frc == 0 && (fq.keylen != q.keylen || memcmp(fq.key, q.key, q.keylen) != 0 ||
                     fq.key[fq.keylen] != '\0' || fq.rule.algo != q.rule.algo ||
                     fq.rule.limit != q.rule.limit || fq.rule.period_ms != q.rule.period_ms ||
                     fq.rule.burst != q.rule.burst || fq.value != q.value ||
                     (fq.identity == NULL) != (q.identity == NULL) ||
                     (q.identity != NULL && strcmp(fq.identity, q.identity) != 0)))
        abort(); /* the two paths disagree */
    /* the limiter key: "\x01<key>", or "\x01<identity>\x1f<key>" with an identity */
    json_t *key = json_object_get(body, "key");
    json_t *id = json_object_get(body, "identity");
    size_t klen = json_string_length(key);
    if (klen < 1 || klen > FDN__LIMITER_REQ_KEY_MAX)
        abort();
    if (q.keylen < 1 || q.key[0] != FDN_LIMIT_KEY_NS_HTTP)
        abort();
    if (id == NULL) {
        if (q.keylen != 1 + klen || memcmp(q.key + 1, json_string_value(key), klen) != 0 ||
            q.key[q.keylen] != '\0' || q.identity != NULL)
            abort();
    } else {
        const char *iv = json_string_value(id);
        size_t ilen = json_string_length(id);
        if (iv == NULL || q.identity != iv || ilen < 1 || ilen > FDN__LIMITER_REQ_IDENTITY_MAX ||
            memchr(iv, FDN_LIMIT_IDENTITY_SEP, ilen) != NULL || q.keylen != 1 + ilen + 1 + klen ||
            memcmp(q.key + 1, iv, ilen) != 0 || q.key[1 + ilen] != FDN_LIMIT_IDENTITY_SEP ||
            memcmp(q.key + 2 + ilen, json_string_value(key), klen) != 0 || q.key[q.keylen] != '\0')
            abort();
    }
    if (fdn_limit_rule_validate(&q.rule, NULL) != 0 || q.rule.limit > INT32_MAX ||
        q.rule.period_ms > FDN__LIMITER_REQ_WINDOW_MAX_MS || q.rule.burst < 0)
        abort();
    bool bucket = q.rule.algo == FDN_LIMIT_TOKEN_BUCKET || q.rule.algo == FDN_LIMIT_GCRA;
    if (q.rule.burst != 0 && !bucket)
        abort();
    switch (op) {
    case FDN__LREQ_CHECK:
        if (q.value < 1 || q.value > (bucket && q.rule.burst > 0 ? q.rule.burst : q.rule.limit))
            abort();
        break;
    case FDN__LREQ_INC:
        if (q.value < 1 || q.value > INT32_MAX)
            abort();
        break;
    case FDN__LREQ_SET:
        if (q.value < 0 || q.value > INT32_MAX || json_object_get(body, "count") == NULL)
            abort();
        break;
    case FDN__LREQ_GET:
        if (q.value != 0 || json_object_size(body) > 5)
            abort();
        break;
    }
    json_decref(body);
    return 0;
}
