/* libFuzzer target: what the Redis limiter makes of the server's replies (storage/
 * redis_limit.c: SCRIPT LOAD, the script's EVALSHA replies, NOSCRIPT and the reload, DEL),
 * through hiredis's RESP reader as in production. The "server" is the other end of a socket
 * pair holding the fuzzed bytes, then end-of-stream: no network, no Redis.
 * Input: byte 0: bits 0-1 the number of calls - 1 in the pipeline, bit 2 the script is
 * already loaded (else the client sends SCRIPT LOAD first, alone), bit 4 (with bit 2) the
 * server is believed to have lost it (the pipeline loads it first, as the limiter's pipelines
 * do after a NOSCRIPT), bit 3 a DEL of two keys instead of the calls; byte 1: the calls' operation
 * (modulo 5); the rest is the reply stream. Oracles: eval_many returns 0 or FDN_EUNAVAILABLE, 0
 * only when every call has a result; each call's code is 0, FDN_ENOENT or FDN_EUNAVAILABLE, and a
 * result satisfies the script's ranges (limit >= 1, counts and times >= 0); at most two commands
 * per call and two script loads are sent; no array header makes hiredis allocate more than the
 * client expects
 * ("*711111002" once asked for 5.7 GB); DEL gives a count of 0..2 or FDN_EUNAVAILABLE (a negative
 * count once came back as is, which a caller would take for an error code). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "storage/redis_limit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16) /* the stream must fit the socket's buffer */
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    size_t off = 0;
    while (off < size - 2) {
        ssize_t w = write(sv[1], data + 2 + off, size - 2 - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR); /* after the stream: end of file, never a wait */
    redisContext *c = redisConnectFd(sv[0]);
    if (c == NULL || c->err || fdn__rl_bound_replies(c) != 0)
        abort();

    fdn__rl_script_t s;
    fdn__rl_script_init(&s);
    if (data[0] & 4) {
        s.known = s.ready = true;
        memcpy(s.sha, "0123456789abcdef0123456789abcdef01234567", 41);
        s.ready = !(data[0] & 16);
    }
    bool broken = false;
    fdn__rl_sent_t sent = {0, 0};
    if (data[0] & 8) {
        const char *keys[2] = {"fdn:rl:a", "fdn:rl:b"};
        size_t lens[2] = {8, 8};
        int64_t rc = fdn__rl_del(c, keys, lens, 2, &broken, &sent);
        if ((rc < 0 && rc != FDN_EUNAVAILABLE) || rc > 2 || (rc < 0 && sent.commands != 1))
            abort(); /* a count of the keys that existed, or unavailable */
    } else {
        size_t n = 1 + (data[0] & 3);
        fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 20};
        fdn_limit_result_t res[4];
        fdn__rl_call_t call[4];
        fdn__rl_call_t *calls[4];
        for (size_t i = 0; i < n; i++) {
            memset(&res[i], 0, sizeof res[i]);
            call[i] = (fdn__rl_call_t){"fdn:rl:k", 8, &rule, 1, (fdn__limit_op_t)(data[1] % 5), 7,
                                       &res[i],    0, 0};
            calls[i] = &call[i];
        }
        int rc = fdn__rl_eval_many(c, &s, calls, n, &broken, &sent);
        if (rc != 0 && rc != FDN_EUNAVAILABLE)
            abort();
        for (size_t i = 0; i < n; i++) {
            int crc = call[i].rc;
            if (crc != 0 && crc != FDN_ENOENT && crc != FDN_EUNAVAILABLE)
                abort();
            if (rc == 0 && crc == FDN_EUNAVAILABLE)
                abort();
            if (crc == 0 && (res[i].limit < 1 || res[i].count < 0 || res[i].remaining < 0 ||
                             res[i].reset_ns < 0 || res[i].retry_after_ns < 0))
                abort();
        }
        if (sent.commands > 2 * n || sent.loads > 2)
            abort();
    }
    fdn__rl_script_fini(&s);
    redisFree(c); /* closes sv[0] */
    close(sv[1]);
    return 0;
}
