/* The rate limiter's Redis client (storage layer): connect to a Redis named by a parsed URL,
 * run the limiter's Lua script for one key, delete keys. It speaks to one connection at a
 * time and keeps no policy: pooling, the circuit breaker, the failure policy and the deny
 * cache are the limiter's (infra/limiter_redis.c).
 *
 * Threads: a connection is used by one thread at a time (its caller holds it); the script
 * state may be shared by every connection and thread. */
#ifndef FDN_STORAGE_REDIS_LIMIT_H
#define FDN_STORAGE_REDIS_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/limiter.h>

#include "core/buf.h"
#include "core/lock.h"
#include "logic/limit_algo.h"
#include "logic/redis_url.h"

struct redisContext;

/* The script's SHA1 as Redis reported it after SCRIPT LOAD (shared by connections): known once
 * a load answered; ready while the server is believed to hold the script (a NOSCRIPT answer
 * clears it, a load sets it). */
typedef struct fdn__rl_script {
    fdn__mutex_t mu;
    bool known FDN_MEMBER_GUARDED_BY(mu);
    bool ready FDN_MEMBER_GUARDED_BY(mu);
    char sha[41] FDN_MEMBER_GUARDED_BY(mu);
} fdn__rl_script_t;

void fdn__rl_script_init(fdn__rl_script_t *s);
void fdn__rl_script_fini(fdn__rl_script_t *s);

/* The Lua text (for the benchmark's raw EVALSHA baseline). */
const char *fdn__rl_script_text(size_t *len);

/* Connect (connect_ms bounds the connect; command_ms each command), then AUTH and SELECT as
 * the URL says. With a deadline_ns (monotonic, fdn__mono_now_ns; 0: none) the opening as a
 * whole ends by it: each step (the connect, AUTH, SELECT) is bounded by what is left of it
 * when the step starts, when that is less, and with less than 1 ms left the step is not
 * taken: FDN_ETIMEDOUT. Either way the connection comes back with command_ms as its send and
 * receive bounds. Returns 0, FDN_ECONNREFUSED (no connection), FDN_EUNAVAILABLE (AUTH or
 * SELECT refused or unanswered), FDN_ETIMEDOUT or FDN_ENOMEM. */
int fdn__rl_connect(struct redisContext **out, const fdn__redis_url_t *url, int64_t connect_ms,
                    int64_t command_ms, int64_t deadline_ns);
void fdn__rl_close(struct redisContext *c);

/* Refuse replies announcing arrays longer than any this client expects, before hiredis
 * allocates them (fdn__rl_connect does it; for contexts made otherwise, e.g. the fuzz
 * target's). 0 or FDN_ENOMEM. */
int fdn__rl_bound_replies(struct redisContext *c);

/* What one call sent, for the caller's counters. */
typedef struct fdn__rl_sent {
    unsigned commands; /* EVALSHA / DEL sent */
    unsigned loads;    /* SCRIPT LOAD sent */
} fdn__rl_sent_t;

/* The most calls sent in one pipeline. */
#define FDN__RL_PIPELINE_MAX 256

/* One script call: its arguments, and what came back. */
typedef struct fdn__rl_call {
    const char *rkey; /* the state hash */
    size_t rkeylen;
    const fdn_limit_rule_t *rule;
    int64_t cost;
    fdn__limit_op_t op;
    int64_t epoch_in;
    fdn_limit_result_t *res; /* filled when rc is 0 */
    int64_t epoch_out;       /* filled when rc is 0 */
    int rc;                  /* 0, FDN_ENOENT (a cancel with nothing to give back) or
                                FDN_EUNAVAILABLE */
} fdn__rl_call_t;

/*
 * Run *calls[0..n) with the script on c as one pipeline: every EVALSHA is written before the
 * first reply is read, so n calls cost one round trip. The script is loaded first when needed;
 * calls answered NOSCRIPT (the script did not run) are sent once more, together, after loading
 * it. A command is never resent after an I/O error or a timeout: the calls without a reply get
 * FDN_EUNAVAILABLE. *broken is set when the connection must not be used again (I/O error,
 * timeout, a reply the script cannot give). Each call's rc says how it went; the return value
 * is 0 when every call got a reply the script gives, FDN_EUNAVAILABLE otherwise.
 */
int fdn__rl_eval_many(struct redisContext *c, fdn__rl_script_t *s, fdn__rl_call_t *const *calls,
                      size_t n, bool *broken, fdn__rl_sent_t *sent);

/*
 * Pipelines written by one thread and read by another. A connection may carry several
 * pipelines at once: their commands are encoded (RESP) into a buffer and written on the
 * socket directly (fdn__rl_write, never through hiredis's output buffer), so that a thread may
 * write the next pipeline while another reads the replies of an earlier one; Redis answers in
 * the order the commands were written, so the replies are read pipeline by pipeline in that
 * order. The caller keeps one writer and one reader at a time per connection. The send and
 * the receive bounds are the socket's (fdn__rl_set_send_timeout, fdn__rl_set_recv_timeout):
 * the writer sets one, the reader the other.
 */

/* The SHA1 into sha (41 bytes) when a load has answered it (else false); *loaded: whether the
 * server is believed to hold the script now (else the next pipeline loads it first). */
bool fdn__rl_script_sha(fdn__rl_script_t *s, char sha[41], bool *loaded);

/* SCRIPT LOAD on c now, one round trip (c must have nothing in flight): 0 or FDN_EUNAVAILABLE
 * (*broken set when the connection must not be used again). deadline_ns 0: bounded by what is
 * set on c (command_ms unused). Else the last step of an opening (fdn__rl_connect): bounded by
 * what is left of deadline_ns, at most command_ms, and FDN_ETIMEDOUT with nothing sent when
 * less than 1 ms is left; c's bounds are command_ms again after it when it succeeds. */
int fdn__rl_script_load(struct redisContext *c, fdn__rl_script_t *s, int64_t command_ms,
                        int64_t deadline_ns, bool *broken, fdn__rl_sent_t *sent);

/* Append to out: SCRIPT LOAD when load_first, then an EVALSHA of sha for each of calls[0..n)
 * with todo[i] set (every one when todo is NULL). Counts what it encodes in *sent. out->oom:
 * nothing must be sent. */
void fdn__rl_encode_calls(fdn__buf_t *out, const char sha[41], fdn__rl_call_t *const *calls,
                          size_t n, const bool *todo, bool load_first, fdn__rl_sent_t *sent);
/* Append DEL keys[0..n) to out. */
void fdn__rl_encode_del(fdn__buf_t *out, const char *const *keys, const size_t *lens, int n,
                        fdn__rl_sent_t *sent);

/* Bound each later send (receive) on c by ms >= 1. 0 or FDN_EUNAVAILABLE. */
int fdn__rl_set_send_timeout(struct redisContext *c, int64_t ms);
int fdn__rl_set_recv_timeout(struct redisContext *c, int64_t ms);

/* Write len bytes on c's socket. 0, or FDN_EUNAVAILABLE with *broken set (an error or the send
 * bound: part of it may have gone, so nothing of it may be read or resent). */
int fdn__rl_write(struct redisContext *c, const char *p, size_t len, bool *broken);

/* Read the replies of a pipeline encoded by fdn__rl_encode_calls with the same calls, n, todo
 * and load_first: the load's (it sets the script's SHA1 and ready; an error reply leaves the
 * calls to answer for themselves), then each call's, which sets its rc as fdn__rl_eval_many
 * does, except that a NOSCRIPT answer sets retry[i] (the script did not run: the caller sends
 * the call once more, after a load) and clears the script's ready. Every call's rc is
 * FDN_EUNAVAILABLE when *broken is set before its reply (I/O error, timeout, a reply the
 * script cannot give; also when *broken is already set on entry: nothing is read). Returns
 * how many calls answered NOSCRIPT. */
size_t fdn__rl_read_calls(struct redisContext *c, fdn__rl_script_t *s, fdn__rl_call_t *const *calls,
                          size_t n, const bool *todo, bool load_first, bool *retry, bool *broken);
/* Read a DEL's reply: how many of its n keys existed, or FDN_EUNAVAILABLE (*broken as above). */
int64_t fdn__rl_read_del(struct redisContext *c, int n, bool *broken);

/* DEL keys[0..n). Returns how many existed (>= 0) or FDN_EUNAVAILABLE (*broken as above). */
int64_t fdn__rl_del(struct redisContext *c, const char *const *keys, const size_t *lens, int n,
                    bool *broken, fdn__rl_sent_t *sent);

#endif
