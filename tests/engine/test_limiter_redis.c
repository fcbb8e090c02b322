/* The rate limiter on a real Redis (scripts/redis-server.sh, started by the ctest fixture
 * "redis"; its URL is in $FDN_TEST_REDIS_DIR/url): one limit shared by many processes,
 * window edges from the server's clock, the failure policies when Redis is away or answers
 * garbage, and bad options refused with a message. The fleet's processes are fresh runs of
 * this program (main's "child fleet" role, test_spawn_self), not forks: ThreadSanitizer cannot
 * follow a fork of this process once a limiter has started threads (tests/support/child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdn/breaker.h>
#include <fdn/clock.h>
#include <fdn/limiter.h>
#include <fdn/protect.h>

#include <hiredis/hiredis.h>

#include "core/sync.h"
#include "infra/limiter_int.h"
#include "logic/limit_algo.h"
#include "logic/redis_url.h"
#include "storage/redis_limit.h"
#include "admin_local.h"
#include "child.h"
#include "engine.h"
#include "limiter_ns.h"
#include "threads.h"

static char g_url[128];
static unsigned g_run; /* makes keys unique per run: the fixture's Redis outlives a test */

static void read_url(void)
{
    const char *dir = getenv("FDN_TEST_REDIS_DIR");
    assert_non_null(dir);
    test_engine_url_of(dir, g_url, sizeof(g_url));
    g_run = (unsigned)getpid() ^ (unsigned)fdn_clock_wall_ns(NULL);
}

static fdn_limiter_opts_t redis_opts(const char *url, fdn_limit_failure_policy_t policy)
{
    fdn_limiter_opts_t o = FDN_LIMITER_OPTS_INIT;
    o.backend = FDN_LIMITER_BACKEND_REDIS;
    o.redis.url = url;
    o.redis.failure_policy = policy;
    o.redis.command_timeout_ms = 2000; /* a loaded test machine; chaos tests lower it */
    o.redis.connect_timeout_ms = 2000;
    return o;
}

static fdn_limiter_t *open_limiter(const fdn_limiter_opts_t *o)
{
    fdn_limiter_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_limiter_open(&l, o, &err);
    if (rc != 0)
        fprintf(stderr, "fdn_limiter_open: %s\n", err.message);
    assert_int_equal(rc, 0);
    return l;
}

static void unique_key(char *buf, size_t cap, const char *what)
{
    static atomic_uint seq;
    snprintf(buf, cap, "%s-%u-%u", what, g_run, atomic_fetch_add(&seq, 1));
}

/* ---- pipelining ----------------------------------------------------------------------------
 * These tests pause the clients of their own Redis (CLIENT PAUSE ... WRITE holds every script
 * call; CLIENT UNPAUSE still runs), so a leader's round trip stays in flight while the other
 * checks queue behind it: the batches are then known exactly, whatever the scheduler does. */

static void redis_cli(const char *url, const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "redis-cli -u %s %s >/dev/null", url, args);
    assert_int_equal(system(cmd), 0);
}

typedef struct pipe_load {
    fdn_limiter_t *l;
    const char *key;
    fdn_limit_rule_t rule;
    atomic_int allowed, denied, other;
} pipe_load_t;

static void *pipe_main(void *arg)
{
    pipe_load_t *p = arg;
    fdn_limit_result_t res;
    int rc = fdn_limiter_check(p->l, p->key, strlen(p->key), &p->rule, 1, 0, &res);
    atomic_fetch_add(rc == 0 ? &p->allowed : rc == FDN_ERATE_LIMITED ? &p->denied : &p->other, 1);
    return NULL;
}

/* Poll (1 ms apart) until `leaders` checks lead and `queued` wait: the checking threads get
 * there on their own. Until a deadline 60 s away on the monotonic clock, not for a number of
 * tries (a count of sleeps bounds no particular time); the minute only catches a hang. */
static void await_pipeline(fdn_limiter_t *l, uint32_t leaders, uint32_t queued, uint64_t batches)
{
    int64_t deadline = test_now_ms() + 60000;
    fdn__redis_pipe_stats_t st;
    for (;;) {
        fdn__limiter_redis_pipeline_stats(l, &st);
        if (st.leaders == leaders && st.queued == queued && st.batches == batches)
            return;
        if (test_now_ms() > deadline)
            break;
        test_pause_ms(1); /* polling the other threads' progress, not ordering our own steps */
    }
    fail_msg("the pipeline never reached %u leading, %u queued (%u, %u after 60 s)", leaders,
             queued, st.leaders, st.queued);
}

/* A limiter on the test's Redis with one connection, fail_closed, the given bound, and a
 * bucket of 5 for `key` of which a first check (it loads the script) took 1. */
static void pipe_open_one(pipe_load_t *p, const char *dir, const char *key, int64_t timeout_ms,
                          uint32_t pipeline_max)
{
    char url[128];
    test_engine_url_of(dir, url, sizeof(url));
    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.pool_size = 1;
    o.redis.pipeline_max = pipeline_max;
    o.redis.command_timeout_ms = timeout_ms;
    *p = (pipe_load_t){
        .l = open_limiter(&o), .key = key, .rule = {FDN_LIMIT_TOKEN_BUCKET, 5, 3600000, 5}};
    fdn_limit_result_t res;
    /* a loaded machine may stall Redis past a short bound (fail_closed denies): again */
    int64_t end = test_now_ms() + 60000;
    while (fdn_limiter_check(p->l, p->key, strlen(p->key), &p->rule, 1, 0, &res) != 0)
        if (test_now_ms() > end)
            fail_msg("no check was allowed in 60 s with Redis up");
}

/* After N checks of p's bucket (4 tokens left of 5, the first check's set-up took one): 4
 * allowed and N - 4 denied by Redis, none by the failure policy, each sent exactly once (the
 * first check and the N), the script loaded once, and nothing left leading or queued. The
 * pipeline counts come back in *ps. */
static void assert_each_check_once(pipe_load_t *p, int n, fdn__redis_pipe_stats_t *ps)
{
    assert_int_equal(atomic_load(&p->allowed), 4);
    assert_int_equal(atomic_load(&p->denied), n - 4);
    assert_int_equal(atomic_load(&p->other), 0);
    fdn__limiter_redis_pipeline_stats(p->l, ps);
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(p->l, &st);
    assert_int_equal(st.fallbacks, 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.commands, 1 + (uint64_t)n); /* every check sent exactly once */
    assert_int_equal(st.script_loads, 1);
    assert_int_equal(ps->calls, 1 + (uint64_t)n);
    assert_int_equal(ps->leaders, 0);
    assert_int_equal(ps->queued, 0);
}

/* 8 checks on one connection carrying one pipeline at a time (depth 1) while Redis holds the
 * first: 1 round trip for it, then 1 for the 7 that queued; each check counted once. The first
 * check is started alone and seen in flight before the 7 others start, so that none of them is
 * taken into its pipeline. */
static void pipeline_shares_one_round_trip(uint32_t pipeline_max, const char *dir)
{
    char url[128];
    test_engine_url_of(dir, url, sizeof(url));
    pipe_load_t p;
    pipe_open_one(&p, dir, "pipe", 30000, pipeline_max);
    fdn__limiter_redis_test_depth(p.l, 1);

    redis_cli(url, "CLIENT PAUSE 60000 WRITE");
    enum { N = 8 };
    pthread_t th[N];
    assert_int_equal(pthread_create(&th[0], NULL, pipe_main, &p), 0);
    await_pipeline(p.l, 1, 0, 2); /* its write went out: it gathers no more */
    for (int i = 1; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pipe_main, &p), 0);
    await_pipeline(p.l, 1, N - 1, 2);
    redis_cli(url, "CLIENT UNPAUSE");
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    fdn__redis_pipe_stats_t ps;
    assert_each_check_once(&p, N, &ps);
    if (pipeline_max >= N - 1) {
        assert_int_equal(ps.batches, 3); /* the first check, the held one, the 7 behind it */
        assert_int_equal(ps.max_batch, N - 1);
    } else {
        assert_int_equal(ps.batches, 1 + N);
        assert_int_equal(ps.max_batch, 1);
    }
    fdn_limiter_destroy(p.l);
}

/* One connection carries several pipelines at once (the default depth, 4): with Redis holding
 * every write, 4 checks each write their own pipeline on the one connection and wait for their
 * replies, and the 4 after them queue. Once Redis goes on, every check is answered from its
 * own reply (4 allowed of the 4 tokens left, 4 denied), none sent twice, and the queued ones go
 * in at most 4 more pipelines. */
static void one_connection_carries_several_pipelines(void **state)
{
    char url[128];
    test_engine_url_of(*state, url, sizeof(url));
    pipe_load_t p;
    pipe_open_one(&p, *state, "depth", 30000, FDN_LIMITER_REDIS_PIPELINE_DEFAULT);

    redis_cli(url, "CLIENT PAUSE 60000 WRITE");
    enum { N = 8, DEPTH = 4 };
    pthread_t th[N];
    for (int i = 0; i < N; i++) { /* one at a time: each seen in flight or queued */
        assert_int_equal(pthread_create(&th[i], NULL, pipe_main, &p), 0);
        await_pipeline(p.l, i < DEPTH ? (uint32_t)i + 1 : DEPTH,
                       i < DEPTH ? 0 : (uint32_t)(i - DEPTH + 1), 2 + (i < DEPTH ? i : DEPTH - 1));
    }
    fdn__redis_pipe_stats_t held;
    fdn__limiter_redis_pipeline_stats(p.l, &held);
    fdn_limiter_backend_status_t st0;
    fdn_limiter_backend_status(p.l, &st0);
    redis_cli(url, "CLIENT UNPAUSE");
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    assert_int_equal(held.batches, 1 + DEPTH); /* the first check, and 4 in flight at once */
    assert_int_equal(held.max_batch, 1);
    assert_int_equal(st0.commands, 1 + DEPTH); /* the queued ones not sent yet */
    fdn__redis_pipe_stats_t ps;
    assert_each_check_once(&p, N, &ps);
    assert_true(ps.batches >= 1 + DEPTH + 1 && ps.batches <= 1 + N);
    assert_true(ps.max_batch <= N - DEPTH);
    fdn_limiter_destroy(p.l);
}

/* The pipeline hold hook: the first leader to pass is held (before it writes) until the test
 * lets it go; later ones pass. */
typedef struct hold_gate {
    _Atomic int calls;
    test_waiter_t held, go;
} hold_gate_t;

static void hold_first(void *arg)
{
    hold_gate_t *g = arg;
    if (atomic_fetch_add(&g->calls, 1) != 0)
        return;
    test_waiter_add(&g->held, 1);
    test_waiter_wait(&g->go, 1);
}

/* A pipeline waiting for an earlier one's replies is bounded by its own deadline, not the
 * earlier one's: W takes room on the one connection and is held before it writes; N starts a
 * second later, writes on the same connection and waits for its reply (Redis holds every
 * write); W then writes behind N and waits for N's turn. W's deadline comes first: W gives up
 * there (fail_closed denies it) while N goes on waiting, and once Redis goes on N is answered
 * from its own reply (allowed). Each is sent once. (Before: W waited past its deadline, for N;
 * and a version that cut the connection at W's deadline failed N with it.) */
static void a_later_pipeline_gives_up_at_its_own_deadline(void **state)
{
    char url[128];
    test_engine_url_of(*state, url, sizeof(url));
    pipe_load_t p; /* (the first check's connection went back to the pool) */
    pipe_open_one(&p, *state, "giveup", 3000, FDN_LIMITER_REDIS_PIPELINE_DEFAULT);
    hold_gate_t gate = {0};
    test_waiter_init(&gate.held);
    test_waiter_init(&gate.go);
    fdn__limiter_redis_test_hold(p.l, hold_first, &gate);
    fdn__redis_pipe_stats_t st0;
    fdn__limiter_redis_pipeline_stats(p.l, &st0);
    fdn_limiter_backend_status_t bs0;
    fdn_limiter_backend_status(p.l, &bs0);

    redis_cli(url, "CLIENT PAUSE 60000 WRITE");
    pthread_t w, n;
    assert_int_equal(pthread_create(&w, NULL, pipe_main, &p), 0);
    test_waiter_wait(&gate.held, 1); /* W holds room, before its write */
    /* N's deadline must be well after W's (W started before it was held): a second */
    int64_t n_start = test_now_ms() + 1000;
    while (test_now_ms() < n_start)
        test_pause_ms(5); /* the condition is the clock itself: deadlines are on it */
    assert_int_equal(pthread_create(&n, NULL, pipe_main, &p), 0);
    await_pipeline(p.l, 2, 0, st0.batches + 1); /* N wrote, and waits for its reply */
    test_waiter_add(&gate.go, 1);               /* W writes, behind N */
    pthread_join(w, NULL);                      /* at its deadline, Redis still holding N */
    int w_denied = atomic_load(&p.denied);
    redis_cli(url, "CLIENT UNPAUSE");
    pthread_join(n, NULL);

    fdn__redis_pipe_stats_t st;
    fdn__limiter_redis_pipeline_stats(p.l, &st);
    fdn_limiter_backend_status_t bs;
    fdn_limiter_backend_status(p.l, &bs);
    assert_int_equal(st.give_ups - st0.give_ups, 1);
    assert_int_equal(w_denied, 1);                /* W: fail_closed */
    assert_int_equal(atomic_load(&p.allowed), 1); /* N: its own reply */
    assert_int_equal(atomic_load(&p.denied), 1);
    assert_int_equal(st.batches - st0.batches, 2);   /* N's and W's pipelines */
    assert_int_equal(bs.commands - bs0.commands, 2); /* each sent once */
    assert_int_equal(bs.fallbacks - bs0.fallbacks, 1);
    assert_int_equal(bs.errors - bs0.errors, 1); /* W's, sent and not answered */
    assert_int_equal(st.leaders, 0);
    assert_int_equal(st.queued, 0);
    /* the connection W gave up on is not used again; a check after it gets a new one */
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check(p.l, p.key, strlen(p.key), &p.rule, 1, 0, &res), 0);
    fdn__limiter_redis_test_hold(p.l, NULL, NULL);
    test_waiter_destroy(&gate.held);
    test_waiter_destroy(&gate.go);
    fdn_limiter_destroy(p.l);
}

static void pipeline_carries_the_queued_checks(void **state)
{
    pipeline_shares_one_round_trip(FDN_LIMITER_REDIS_PIPELINE_DEFAULT, *state);
}

static void pipeline_max_1_sends_one_check_per_round_trip(void **state)
{
    pipeline_shares_one_round_trip(1, *state);
}

/* Checks queued behind a round trip that Redis never answers: each returns by its own
 * deadline, answered by the failure policy; none is sent twice. */
static void pipeline_queued_checks_keep_their_timeout(void **state)
{
    char url[128];
    test_engine_url_of(*state, url, sizeof(url));
    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.pool_size = 1;
    o.redis.command_timeout_ms = 300;
    pipe_load_t p = {
        .l = open_limiter(&o), .key = "held", .rule = {FDN_LIMIT_TOKEN_BUCKET, 100, 3600000, 100}};
    fdn_limit_result_t res;
    /* a first check opens the connection and loads the script. Redis is up, but a loaded
     * machine may stall it past the 300 ms bound (then fail_closed denies it): check until one
     * is allowed (a bounded poll), each a token at most, and count from there */
    int64_t warm_end = test_now_ms() + 60000;
    int64_t warm = 0;
    for (;;) {
        warm++;
        if (fdn_limiter_check(p.l, p.key, strlen(p.key), &p.rule, 1, 0, &res) == 0)
            break;
        if (test_now_ms() > warm_end)
            fail_msg("no check was allowed in 60 s with Redis up (%lld tries)", (long long)warm);
    }
    fdn_limiter_backend_status_t st0;
    fdn_limiter_backend_status(p.l, &st0);
    redis_cli(url, "CLIENT PAUSE 60000 WRITE");
    enum { N = 8 };
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pipe_main, &p), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(p.l, &st);
    redis_cli(url, "CLIENT UNPAUSE");
    assert_int_equal(atomic_load(&p.denied), N); /* fail_closed answered every one */
    assert_int_equal(st.fallbacks - st0.fallbacks, N);
    assert_true(st.commands - st0.commands <= N); /* whatever was sent, each check at most once */
    fdn__redis_pipe_stats_t ps;
    fdn__limiter_redis_pipeline_stats(p.l, &ps);
    assert_int_equal(ps.leaders, 0);
    assert_int_equal(ps.queued, 0);
    /* once let go, the server runs at most what was sent (a command whose connection closed
     * while held may never run): never more than one token per check sent */
    uint64_t sent_after = st.commands - st0.commands;
    fdn_limiter_opts_t o2 = redis_opts(url, FDN_LIMIT_FAIL_CLOSED); /* its default bound */
    fdn_limiter_t *l2 = open_limiter(&o2);
    assert_int_equal(fdn_limiter_check(l2, p.key, strlen(p.key), &p.rule, 1, FDN_LIMIT_PEEK, &res),
                     0);
    assert_true(res.remaining >= 100 - warm - (int64_t)sent_after);
    assert_true(res.remaining <= 99);
    fdn_limiter_destroy(l2);
    fdn_limiter_destroy(p.l);
}

/* The storage layer alone: a pipeline whose calls all meet NOSCRIPT loads the script once and
 * sends each call once more; the calls of one key see each other in order. */
static void pipeline_retries_noscript_once_for_the_batch(void **state)
{
    (void)state;
    fdn__redis_url_t u;
    assert_int_equal(fdn__redis_url_parse(g_url, &u, NULL), 0);
    struct redisContext *c;
    assert_int_equal(fdn__rl_connect(&c, &u, 2000, 2000, 0), 0);
    fdn__rl_script_t s;
    fdn__rl_script_init(&s);
    char key[64];
    unique_key(key, sizeof(key), "fdn:test:{noscript}");
    const fdn_limit_rule_t r = {FDN_LIMIT_TOKEN_BUCKET, 10, 3600000, 10};
    enum { N = 5 };
    fdn_limit_result_t res[2 * N];
    fdn__rl_call_t calls[2 * N];
    fdn__rl_call_t *ptrs[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        calls[i] = (fdn__rl_call_t){.rkey = key,
                                    .rkeylen = strlen(key),
                                    .rule = &r,
                                    .cost = 1,
                                    .op = FDN__LIMIT_CHECK,
                                    .res = &res[i]};
        ptrs[i] = &calls[i];
    }
    bool broken = false;
    fdn__rl_sent_t sent = {0, 0};
    assert_int_equal(fdn__rl_eval_many(c, &s, ptrs, N, &broken, &sent), 0);
    assert_int_equal(sent.loads, 1); /* first use */
    assert_int_equal(sent.commands, N);
    redis_cli(g_url, "SCRIPT FLUSH");
    sent = (fdn__rl_sent_t){0, 0};
    assert_int_equal(fdn__rl_eval_many(c, &s, ptrs + N, N, &broken, &sent), 0);
    assert_false(broken);
    assert_int_equal(sent.loads, 1);        /* once for the whole pipeline */
    assert_int_equal(sent.commands, 2 * N); /* N answered NOSCRIPT, N run */
    for (int i = 0; i < 2 * N; i++) {
        assert_int_equal(calls[i].rc, 0);
        assert_true(res[i].allowed);
        assert_int_equal(res[i].remaining, 10 - 1 - i); /* each ran exactly once, in order */
    }
    fdn__rl_close(c);
    fdn__rl_script_fini(&s);
}

/* The production script with Redis's TIME replaced by ARGV[8] seconds and ARGV[9]
 * microseconds, run with EVAL: its arithmetic at times Redis's own clock does not give yet. */
static char *script_at_time(void)
{
    size_t n;
    const char *text = fdn__rl_script_text(&n);
    static const char from[] = "redis.call('TIME')";
    static const char to[] = "{ARGV[8], ARGV[9]}";
    const char *at = strstr(text, from);
    assert_non_null(at);
    char *out = malloc(n + sizeof(to));
    assert_non_null(out);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    memcpy(out + pre, to, sizeof(to) - 1);
    const char *rest = at + sizeof(from) - 1;
    memcpy(out + pre + sizeof(to) - 1, rest, strlen(rest) + 1); /* with its NUL */
    return out;
}

/* {allowed, count, limit, remaining, reset_us, retry_us, epoch} of one run of the script. */
static void eval_at(redisContext *c, const char *script, const char *key, int algo, int op,
                    long long sec, long long usec, long long out[7])
{
    char a[9][32];
    const long long v[9] = {algo, op, 1, 1, 1000, 0, 0, sec, usec}; /* limit 1 per 1 s */
    const char *argv[13] = {"EVAL", script, "1", key};
    for (int i = 0; i < 9; i++) {
        snprintf(a[i], sizeof(a[i]), "%lld", v[i]);
        argv[4 + i] = a[i];
    }
    redisReply *r = redisCommandArgv(c, 13, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "EVAL: %s\n", r->str);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(r->element[i]->type, REDIS_REPLY_INTEGER);
        out[i] = r->element[i]->integer;
    }
    freeReplyObject(r);
}

/* The script at the clock's extremes, checked with the cases of the in-memory store
 * (unit_test_limiter extreme_clocks_keep_their_windows, fixed_window_before_1970_is_one_period):
 * windows before 1970 are floored (Lua's math.floor), and times are exact up to 2^53 us
 * (year 2255, where Redis's TIME would take the script; see storage/redis_limit.c). */
static void script_windows_at_clock_extremes(void **state)
{
    (void)state;
    fdn__redis_url_t u;
    assert_int_equal(fdn__redis_url_parse(g_url, &u, NULL), 0);
    struct redisContext *c;
    assert_int_equal(fdn__rl_connect(&c, &u, 2000, 2000, 0), 0);
    char *script = script_at_time();
    char key[64];
    long long r[7];
    /* fixed window at -0.5 s: window [-1 s, 0), 0.5 s left; a check at 0.1 s is in window 0 */
    unique_key(key, sizeof(key), "fdn:test:{fw1969}");
    eval_at(c, script, key, 0, 0, -1, 500000, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[4], 500000);
    assert_int_equal(r[6], -1);
    eval_at(c, script, key, 0, 0, -1, 500000, r);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[5], 500000);
    eval_at(c, script, key, 0, 0, 0, 100000, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[1], 1);
    assert_int_equal(r[4], 900000);
    /* sliding window at -0.5 s: window -1, its successor ends 1.5 s later; 2.1 s later the
     * previous window (0) is empty */
    unique_key(key, sizeof(key), "fdn:test:{sw1969}");
    eval_at(c, script, key, 3, 0, -1, 500000, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[4], 1500000);
    eval_at(c, script, key, 3, 0, 1, 600000, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[1], 1);
    /* the last microsecond the script holds exactly (2^53 - 1 us): 259009 us to the window's
     * end, for the fixed and (one window more) the sliding window */
    unique_key(key, sizeof(key), "fdn:test:{fw2255}");
    eval_at(c, script, key, 0, 0, 9007199254LL, 740991, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[4], 259009);
    assert_int_equal(r[6], 9007199254LL);
    unique_key(key, sizeof(key), "fdn:test:{sw2255}");
    eval_at(c, script, key, 3, 0, 9007199254LL, 740991, r);
    assert_int_equal(r[4], 1259009);
    /* token bucket and GCRA far before 1970: the bucket starts full, one token, refilled in
     * one period */
    unique_key(key, sizeof(key), "fdn:test:{tb1969}");
    eval_at(c, script, key, 1, 0, -9007199254LL, 0, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[4], 1000000);
    eval_at(c, script, key, 1, 0, -9007199254LL, 0, r);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[5], 1000000);
    unique_key(key, sizeof(key), "fdn:test:{gcra1969}");
    eval_at(c, script, key, 2, 0, -9007199254LL, 0, r);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[4], 1000000);
    eval_at(c, script, key, 2, 0, -9007199254LL, 0, r);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[5], 1000000);
    free(script);
    fdn__rl_close(c);
}

/* One run of the script at sec + usec us for rule r: the reply's length (1 for a cancel with
 * nothing to give back, {-1}; else 7) and its integers in out. */
static size_t eval_rule(redisContext *c, const char *script, const char *key,
                        const fdn_limit_rule_t *r, int op, int64_t cost, int64_t epoch,
                        long long sec, long long usec, long long out[7])
{
    char a[9][32];
    const long long v[9] = {r->algo, op, cost, r->limit, r->period_ms, r->burst, epoch, sec, usec};
    const char *argv[13] = {"EVAL", script, "1", key};
    for (int i = 0; i < 9; i++) {
        snprintf(a[i], sizeof(a[i]), "%lld", v[i]);
        argv[4 + i] = a[i];
    }
    redisReply *rep = redisCommandArgv(c, 13, argv, NULL);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "EVAL: %s\n", rep->str);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    size_t n = rep->elements;
    assert_true(n == 7 || n == 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rep->element[i]->type, REDIS_REPLY_INTEGER);
        out[i] = rep->element[i]->integer;
    }
    freeReplyObject(rep);
    return n;
}

/* One step of a parity sequence: at base + at_us, op of cost under rules[rule]. */
typedef struct {
    int64_t at_us;
    int op;
    int64_t cost;
    int rule;
} parity_step_t;

static int64_t ceil_us(int64_t ns)
{
    return ns / 1000 + (ns % 1000 > 0);
}

/* Runs steps through the script (TIME given) on one key and through limit_algo on one state
 * (its rule kept, the state converted when it changes, as the in-memory store does), and
 * asserts the same answers: allowed, count, limit, remaining and epoch equal, reset and
 * retry the ceiling in us of limit_algo's ns (times are whole us). */
static void parity_run(redisContext *c, const char *script, const char *what,
                       const fdn_limit_rule_t *rules, const parity_step_t *steps, size_t n)
{
    const long long base_s = 1700000000LL;
    char key[64];
    unique_key(key, sizeof(key), what);
    fdn__limit_state_t st;
    fdn_limit_rule_t kept = rules[steps[0].rule];
    int64_t epoch = 0, sent_epoch = 0;
    for (size_t i = 0; i < n; i++) {
        const parity_step_t *p = &steps[i];
        const fdn_limit_rule_t *r = &rules[p->rule];
        int64_t now_us = base_s * 1000000 + p->at_us;
        int64_t now = now_us * 1000;
        if (i == 0)
            fdn__limit_init(&st, r, now);
        fdn__limit_state_t tmp = st, *sp = &st;
        if (r->limit != kept.limit || r->period_ms != kept.period_ms || r->burst != kept.burst) {
            if (p->op == FDN__LIMIT_PEEK)
                sp = &tmp;
            fdn__limit_convert(sp, &kept, r, now);
            if (p->op != FDN__LIMIT_PEEK)
                kept = *r;
        }
        fdn_limit_result_t want;
        int64_t e = sent_epoch;
        int rc = fdn__limit_apply(sp, r, p->cost, (fdn__limit_op_t)p->op, now, &e, &want);
        long long got[7];
        size_t len = eval_rule(c, script, key, r, p->op, p->cost, sent_epoch, now_us / 1000000,
                               now_us % 1000000, got);
        if (rc != FDN_ENOENT && (len != 7 || got[0] != want.allowed || got[1] != want.count ||
                                 got[3] != want.remaining))
            fprintf(stderr, "%s step %zu: allowed %d/%lld count %lld/%lld remaining %lld/%lld\n",
                    what, i, want.allowed, got[0], (long long)want.count, got[1],
                    (long long)want.remaining, got[3]);
        if (rc == FDN_ENOENT) {
            assert_int_equal(len, 1);
            assert_int_equal(got[0], -1);
            continue;
        }
        assert_int_equal(len, 7);
        assert_int_equal(got[0], want.allowed);
        assert_int_equal(got[1], want.count);
        assert_int_equal(got[2], want.limit);
        assert_int_equal(got[3], want.remaining);
        assert_int_equal(got[4], ceil_us(want.reset_ns));
        assert_int_equal(got[5],
                         want.retry_after_ns == INT64_MAX ? -1 : ceil_us(want.retry_after_ns));
        if (p->op == FDN__LIMIT_CHECK || p->op == FDN__LIMIT_INC || p->op == FDN__LIMIT_SET) {
            epoch = e;
            assert_int_equal(got[6], epoch);
            sent_epoch = epoch;
        }
    }
}

/* The script answers as limit_algo (unit_test_limiter's sliding_remaining_is_what_admission_
 * allows, rule_change_converts_the_state, convert_keeps_debts_and_clamps,
 * stale_now_does_not_rewind_a_window): the same checks at the same times (Redis's TIME
 * replaced) give the same answers. */
/* A raw command's reply, checked to be what the test expects of HSET/HGET. */
static void raw(redisContext *c, const char *a0, const char *a1, const char *a2, const char *a3,
                const char *a4, const char *a5, char *out, size_t cap)
{
    const char *argv[6] = {a0, a1, a2, a3, a4, a5};
    int argc = a5 != NULL ? 6 : a4 != NULL ? 5 : a3 != NULL ? 4 : 3;
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    if (out != NULL) {
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        snprintf(out, cap, "%s", r->str);
    }
    freeReplyObject(r);
}

/* Processes of two library versions side by side on one Redis (a fleet upgrading one by one):
 * the older script kept a bucket's tokens as a float `tk`. This script reads such a state,
 * writes `tk` back for the older one (with its copy `tkn`), and takes a `tk` the older script
 * wrote after it. So the bucket stays one per key: before, the new script ignored `tk` and
 * started the bucket full. */
static void bucket_state_of_the_older_script_is_shared(void **state)
{
    (void)state;
    fdn__redis_url_t u;
    assert_int_equal(fdn__redis_url_parse(g_url, &u, NULL), 0);
    struct redisContext *c;
    assert_int_equal(fdn__rl_connect(&c, &u, 2000, 2000, 0), 0);
    char *script = script_at_time();
    char key[64];
    unique_key(key, sizeof(key), "fdn:test:{tbold}");
    const fdn_limit_rule_t rule = {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 10};
    long long r[7];
    /* the older script's state at 100 s: 3 tokens left */
    raw(c, "HSET", key, "t", "100000000", "tk", "3", NULL, 0);
    assert_int_equal(eval_rule(c, script, key, &rule, FDN__LIMIT_CHECK, 1, 0, 100, 0, r), 7);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[3], 2); /* 3 - 1, not a full bucket's 9 */
    char tk[64], tkn[64];
    raw(c, "HGET", key, "tk", NULL, NULL, NULL, tk, sizeof(tk));
    raw(c, "HGET", key, "tkn", NULL, NULL, NULL, tkn, sizeof(tkn));
    assert_string_equal(tk, "2"); /* what the older script reads next */
    assert_string_equal(tkn, "2");
    /* the older script then spends 2 (its write leaves tkn behind): taken */
    raw(c, "HSET", key, "tk", "0", NULL, NULL, NULL, 0);
    assert_int_equal(eval_rule(c, script, key, &rule, FDN__LIMIT_CHECK, 1, 0, 100, 0, r), 7);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[3], 0);
    /* and this script's own state is used while nobody else wrote: 100 ms refill 1 token */
    assert_int_equal(eval_rule(c, script, key, &rule, FDN__LIMIT_CHECK, 1, 0, 100, 100000, r), 7);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[3], 0);
    free(script);
    fdn__rl_close(c);
}

static void script_matches_limit_algo(void **state)
{
    (void)state;
    fdn__redis_url_t u;
    assert_int_equal(fdn__redis_url_parse(g_url, &u, NULL), 0);
    struct redisContext *c;
    assert_int_equal(fdn__rl_connect(&c, &u, 2000, 2000, 0), 0);
    char *script = script_at_time();
    enum {
        CK = FDN__LIMIT_CHECK,
        PK = FDN__LIMIT_PEEK,
        CN = FDN__LIMIT_CANCEL,
        INC = FDN__LIMIT_INC,
        SET = FDN__LIMIT_SET
    };

    /* sliding window 3/s: 3 in window 0; at e = P/6 of window 1 the previous window weighs
     * 2.5, so nothing passes and remaining is 0 (the old script: 1); at e = P/2 one passes
     * (1.5 + 1 <= 3); at 5P/6, 0.5 + 1: one more. A time 0.4 s back (Redis's clock stepped
     * back) counts in the state's window, not afresh. */
    {
        const fdn_limit_rule_t rules[] = {{FDN_LIMIT_SLIDING_WINDOW, 3, 1000, 0},
                                          {FDN_LIMIT_SLIDING_WINDOW, 3, 2000, 0}};
        const parity_step_t steps[] = {
            {0, CK, 1, 0},       {100, CK, 1, 0},     {200, CK, 1, 0},      {300, CK, 1, 0},
            {1166667, PK, 1, 0}, {1166667, CK, 1, 0}, {1333333, CK, 1, 0},  {1500000, PK, 1, 0},
            {1500000, CK, 1, 0}, {1500001, CK, 1, 0}, {1100000, CK, 1, 0},  {1833334, CK, 1, 0},
            {1833334, CN, 1, 0}, {1833334, PK, 2, 0}, {1900000, INC, 2, 0}, {1950000, SET, 1, 0},
            {2700000, CK, 1, 0}, {2700000, PK, 1, 1}, {2700000, CK, 1, 1},  {2800000, CK, 1, 1},
        };
        parity_run(c, script, "sw", rules, steps, sizeof(steps) / sizeof(steps[0]));
    }
    /* token bucket: 100/min -> 100/h keeps the 99 tokens (as tokens, not as P-scaled units:
     * remaining 98 after one more); burst 10 -> 2 at the same instant clamps (1 passes, then
     * none); a debt (inc past empty) carries over; a time before the last refill refills
     * nothing */
    {
        const fdn_limit_rule_t rules[] = {{FDN_LIMIT_TOKEN_BUCKET, 100, 60000, 0},
                                          {FDN_LIMIT_TOKEN_BUCKET, 100, 3600000, 0},
                                          {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 10},
                                          {FDN_LIMIT_TOKEN_BUCKET, 10, 1000, 2},
                                          {FDN_LIMIT_TOKEN_BUCKET, 7, 3000, 5}};
        const parity_step_t steps[] = {
            {0, CK, 1, 0},       {10000, PK, 1, 1},  {10000, CK, 1, 1}, {20000, CK, 1, 0},
            {20000, CK, 1, 2},   {20000, CK, 3, 2},  {20000, CK, 1, 3}, {20000, CK, 1, 3},
            {20000, CK, 1, 3},   {70000, CK, 1, 3},  {50000, CK, 1, 3}, {80000, INC, 5, 3},
            {90000, CK, 1, 4},   {95000, PK, 1, 2},  {95000, CN, 1, 4}, {400000, CK, 2, 4},
            {400001, SET, 3, 4}, {400002, CK, 9, 4},
        };
        parity_run(c, script, "tb", rules, steps, sizeof(steps) / sizeof(steps[0]));
    }
    /* fixed window: 1/h -> 100/day keeps the hour's count in the day's window; a clock 0.5 s
     * back stays in the later window, 2 s back (a step) starts its own */
    {
        const fdn_limit_rule_t rules[] = {{FDN_LIMIT_FIXED_WINDOW, 2, 1000, 0},
                                          {FDN_LIMIT_FIXED_WINDOW, 3, 4000, 0}};
        const parity_step_t steps[] = {
            {100, CK, 1, 0},     {1000000, CK, 1, 0}, {1000001, CK, 1, 0}, {600000, CK, 1, 0},
            {600000, CN, 1, 0},  {2000000, CK, 1, 0}, {2000000, CK, 1, 1}, {2000001, PK, 1, 1},
            {2000002, CK, 1, 1}, {4100000, CK, 1, 1}, {1900000, CK, 1, 1}, {1900000, CN, 1, 1},
        };
        parity_run(c, script, "fw", rules, steps, sizeof(steps) / sizeof(steps[0]));
    }
    /* GCRA with whole-us intervals (10/s: 100 ms; 5/s burst 2: 200 ms): the available tokens
     * carry over a rule change */
    {
        const fdn_limit_rule_t rules[] = {{FDN_LIMIT_GCRA, 10, 1000, 0},
                                          {FDN_LIMIT_GCRA, 5, 1000, 2},
                                          {FDN_LIMIT_GCRA, 10, 1000, 4}};
        const parity_step_t steps[] = {
            {0, CK, 3, 0},      {0, CK, 1, 1},      {0, CK, 1, 1},       {100000, PK, 1, 0},
            {100000, CK, 1, 2}, {150000, CK, 1, 2}, {150000, INC, 4, 2}, {150000, CN, 1, 2},
        };
        parity_run(c, script, "gcra", rules, steps, sizeof(steps) / sizeof(steps[0]));
    }
    /* where the script leaves limit_algo on purpose: Redis's TIME is a wall clock, so its
     * sliding window takes the fixed window's rule (limit_algo's sliding window runs on the
     * monotonic clock, where any earlier window is a stale read): 0.5 s back stays in the
     * later window (denied, reset measured from now: 2 s + 0.5 s), 2 s back starts afresh */
    {
        char key[64];
        long long r[7];
        const fdn_limit_rule_t sw = {FDN_LIMIT_SLIDING_WINDOW, 1, 1000, 0};
        unique_key(key, sizeof(key), "swstep");
        assert_int_equal(eval_rule(c, script, key, &sw, CK, 1, 0, 1700000010LL, 0, r), 7);
        assert_int_equal(r[0], 1);
        assert_int_equal(r[6], 1700000010LL);
        assert_int_equal(eval_rule(c, script, key, &sw, CK, 1, 0, 1700000009LL, 500000, r), 7);
        assert_int_equal(r[0], 0);
        assert_int_equal(r[1], 1);
        assert_int_equal(r[4], 2500000);
        assert_int_equal(r[5], 2500000);
        assert_int_equal(eval_rule(c, script, key, &sw, CK, 1, 0, 1700000008LL, 0, r), 7);
        assert_int_equal(r[0], 1);
        assert_int_equal(r[1], 1);
        assert_int_equal(r[6], 1700000008LL);
    }
    free(script);
    fdn__rl_close(c);
}

/* The deny cache keeps "denied until" on the limiter's clock, which may be a manual one at
 * either end of int64 (Redis answers on its own clock): the time saturates instead of
 * overflowing, and the cache answers the next check with the time left. */
static void deny_cache_at_clock_extremes(void **state)
{
    (void)state;
    static const int64_t monos[] = {INT64_MAX - 1000000000LL, INT64_MIN + 1};
    for (size_t i = 0; i < 2; i++) {
        fdn_clock_t *clk;
        assert_int_equal(fdn_clock_manual_create(&clk, monos[i], 1700000040000LL * 1000000), 0);
        fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
        o.clock = clk;
        fdn_limiter_t *l = open_limiter(&o);
        char key[64];
        unique_key(key, sizeof(key), "denyext");
        fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 1, 3600000, 0};
        fdn_limit_result_t res;
        assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), 0);
        assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res),
                         FDN_ERATE_LIMITED); /* by Redis */
        int64_t retry = res.retry_after_ns;
        assert_true(retry > 0 && retry <= 3600000LL * 1000000);
        fdn_limiter_backend_status_t st0, st1;
        assert_int_equal(fdn_limiter_backend_status(l, &st0), 0);
        assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res),
                         FDN_ERATE_LIMITED); /* by the deny cache */
        assert_int_equal(fdn_limiter_backend_status(l, &st1), 0);
        assert_int_equal(st1.commands, st0.commands);
        assert_int_equal(st1.local_denials, st0.local_denials + 1);
        /* near INT64_MAX the cache's time stopped at INT64_MAX: 1 s from the clock */
        assert_int_equal(res.retry_after_ns, i == 0 ? 1000000000LL : retry);
        assert_int_equal(fdn_limiter_reset(l, key, strlen(key)), 0);
        fdn_limiter_destroy(l);
        fdn_clock_destroy(clk);
    }
}

/* check_many on Redis: its scripts travel as one pipeline, run in order on the server. */
static void check_many_is_one_pipeline(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.pool_size = 1;
    fdn_limiter_t *l = open_limiter(&o);
    char user[64], addr[64];
    unique_key(user, sizeof(user), "many-user");
    unique_key(addr, sizeof(addr), "many-addr");
    const fdn_limit_rule_t two = {FDN_LIMIT_TOKEN_BUCKET, 2, 3600000, 2};
    const fdn_limit_rule_t ten = {FDN_LIMIT_FIXED_WINDOW, 10, 3600000, 0};
    fdn_limit_request_t q[4] = {
        {.key = user, .keylen = strlen(user), .rule = &two, .cost = 1},
        {.key = user, .keylen = strlen(user), .rule = &two, .cost = 1},
        {.key = user, .keylen = strlen(user), .rule = &two, .cost = 1},
        {.key = addr, .keylen = strlen(addr), .rule = &ten, .cost = 4},
    };
    fdn__redis_pipe_stats_t p0, p1;
    fdn__limiter_redis_pipeline_stats(l, &p0);
    assert_int_equal(fdn_limiter_check_many(l, q, 4), FDN_ERATE_LIMITED);
    fdn__limiter_redis_pipeline_stats(l, &p1);
    assert_int_equal(p1.batches, p0.batches + 1); /* one round trip for the four */
    assert_int_equal(p1.calls, p0.calls + 4);
    assert_int_equal(q[0].rc, 0);
    assert_int_equal(q[1].rc, 0);
    assert_int_equal(q[2].rc, FDN_ERATE_LIMITED); /* in order: the third of two */
    assert_int_equal(q[3].rc, 0);
    assert_int_equal(q[3].res.count, 4);
    /* the denial is now in the deny cache: "user" is answered here, only "addr" is sent */
    fdn_limiter_backend_status_t st0, st1;
    fdn_limiter_backend_status(l, &st0);
    fdn_limit_request_t again[2] = {q[0], q[3]};
    assert_int_equal(fdn_limiter_check_many(l, again, 2), FDN_ERATE_LIMITED);
    fdn_limiter_backend_status(l, &st1);
    assert_int_equal(st1.local_denials, st0.local_denials + 1);
    assert_int_equal(st1.commands, st0.commands + 1);
    assert_int_equal(again[1].res.count, 8);
    assert_int_equal(st1.fallbacks, 0);
    fdn_limiter_destroy(l);
}

/* Hammer's inc / set / get on Redis answer as the memory store does, on every algorithm
 * (hour-long windows and slow refills: nothing changes with time during the test). */
static void inc_set_get_match_the_memory_store(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *rl = open_limiter(&o);
    fdn_limiter_t *ml = NULL;
    assert_int_equal(fdn_limiter_create(&ml, NULL), 0);
    const fdn_limit_rule_t rules[4] = {{FDN_LIMIT_FIXED_WINDOW, 3, 3600000, 0},
                                       {FDN_LIMIT_TOKEN_BUCKET, 4, 3600000, 0},
                                       {FDN_LIMIT_GCRA, 2, 3600000, 2},
                                       {FDN_LIMIT_SLIDING_WINDOW, 4, 3600000, 0}};
    enum { GET, INC, SET, CHECK };
    static const struct {
        int op;
        int64_t v;
    } steps[] = {{GET, 0},   {INC, 2}, {GET, 0}, {INC, 5},   {CHECK, 1}, {SET, 1},
                 {CHECK, 1}, {GET, 0}, {SET, 0}, {CHECK, 2}, {INC, 1},   {GET, 0}};
    for (int a = 0; a < 4; a++) {
        char key[64];
        unique_key(key, sizeof(key), "hammer");
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            fdn_limit_result_t rr, mr;
            int rrc = 0, mrc = 0;
            fdn_limiter_t *ls[2] = {rl, ml};
            fdn_limit_result_t *rs[2] = {&rr, &mr};
            int *rcs[2] = {&rrc, &mrc};
            for (int w = 0; w < 2; w++) {
                switch (steps[i].op) {
                case GET:
                    *rcs[w] = fdn_limiter_get(ls[w], key, strlen(key), &rules[a], rs[w]);
                    break;
                case INC:
                    *rcs[w] =
                        fdn_limiter_inc(ls[w], key, strlen(key), &rules[a], steps[i].v, rs[w]);
                    break;
                case SET:
                    *rcs[w] =
                        fdn_limiter_set(ls[w], key, strlen(key), &rules[a], steps[i].v, rs[w]);
                    break;
                default:
                    *rcs[w] =
                        fdn_limiter_check(ls[w], key, strlen(key), &rules[a], steps[i].v, 0, rs[w]);
                }
            }
            if (rrc != mrc || rr.allowed != mr.allowed || rr.count != mr.count ||
                rr.remaining != mr.remaining || rr.limit != mr.limit)
                fail_msg("%s step %zu: redis rc %d allowed %d count %lld remaining %lld, memory "
                         "rc %d allowed %d count %lld remaining %lld",
                         fdn_limit_algo_name(rules[a].algo), i, rrc, rr.allowed,
                         (long long)rr.count, (long long)rr.remaining, mrc, mr.allowed,
                         (long long)mr.count, (long long)mr.remaining);
        }
    }
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(rl, &st);
    assert_int_equal(st.fallbacks, 0);
    fdn_limiter_destroy(rl);
    fdn_limiter_destroy(ml);
}

static void server_cmd(const char *cmd, const char *dir);

/* ---- bad options ------------------------------------------------------------------------- */

static void bad_urls_are_refused_with_a_message(void **state)
{
    (void)state;
    static const struct {
        const char *url, *says;
    } cases[] = {
        {"http://127.0.0.1:6379", "redis://"},
        {"rediss://127.0.0.1:6379", "TLS"},
        {"redis://127.0.0.1:0", "port"},
        {"redis://127.0.0.1:65536", "port"},
        {"redis://127.0.0.1:63x9", "port"},
        {"redis://", "no host"},
        {"redis://host name", "host"},
        {"redis://[::1", "]"},
        {"redis://h/db1", "database"},
        {"redis://u:p%zz@h", "escape"},
        {NULL, "missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fdn_limiter_opts_t o = redis_opts(cases[i].url, FDN_LIMIT_FAIL_LOCAL);
        fdn_limiter_t *l = NULL;
        fdn_error_t err = FDN_ERROR_INIT;
        assert_int_equal(fdn_limiter_open(&l, &o, &err), FDN_EINVAL);
        assert_null(l);
        assert_int_equal(err.code, FDN_EINVAL);
        if (strstr(err.message, cases[i].says) == NULL)
            fail_msg("url %s: message \"%s\" does not say \"%s\"", cases[i].url, err.message,
                     cases[i].says);
    }
    fdn_limiter_opts_t o = redis_opts("redis://127.0.0.1", FDN_LIMIT_FAIL_LOCAL);
    o.redis.pool_size = 0;
    fdn_limiter_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    assert_int_equal(fdn_limiter_open(&l, &o, &err), FDN_EINVAL);
    assert_non_null(strstr(err.message, "pool_size"));
}

/* ---- one process ------------------------------------------------------------------------- */

static void check_peek_reserve_cancel_reset(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *l = open_limiter(&o);
    char key[64];
    unique_key(key, sizeof(key), "basic");
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 3, 3600000, 0};
    fdn_limit_result_t res;
    fdn_limit_reservation_t rsv;
    assert_int_equal(fdn_limiter_reserve(l, key, strlen(key), &r, 1, &rsv, &res), 0);
    assert_true(rsv.active);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.remaining, 2);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, FDN_LIMIT_PEEK, &res), 0);
    assert_int_equal(res.count, 1); /* a peek takes nothing */
    assert_int_equal(fdn_limiter_cancel(l, key, strlen(key), &r, &rsv), 0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), 0);
    assert_int_equal(res.count, 1); /* the cancel gave the reservation back */
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 2, 0, &res), 0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_false(res.allowed);
    assert_true(res.retry_after_ns > 0);
    /* denied again: answered by the deny cache, not by Redis */
    fdn_limiter_backend_status_t st0, st1;
    assert_int_equal(fdn_limiter_backend_status(l, &st0), 0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_backend_status(l, &st1), 0);
    assert_int_equal(st1.commands, st0.commands);
    assert_int_equal(st1.local_denials, st0.local_denials + 1);
    assert_true(st1.connected);
    assert_int_equal(st1.backend, FDN_LIMITER_BACKEND_REDIS);
    assert_int_equal(st1.fallbacks, 0);
    assert_true(st1.script_loads >= 1);
    assert_true(st1.latency_le_us[7] >= 4);
    /* reset clears the key on the server and the deny cache */
    assert_int_equal(fdn_limiter_reset(l, key, strlen(key)), 0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(fdn_limiter_reset(l, key, strlen(key)), 0);
    assert_int_equal(fdn_limiter_reset(l, key, strlen(key)), FDN_ENOENT);
    /* a named rule runs there too */
    assert_int_equal(fdn_limiter_set_rule(l, "tiny", &r), 0);
    assert_int_equal(fdn_limiter_check_named(l, "tiny", key, 1, &res), 0);
    fdn_limiter_destroy(l);
}

/* Review finding: a fixed-window reservation denied by the deny cache was marked active
 * although Redis counted nothing, so its cancel gave back a count another call had taken. */
static void deny_cache_reservation_takes_nothing(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *l = open_limiter(&o);
    char key[64];
    unique_key(key, sizeof(key), "denyrsv");
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 2, 3600000, 0};
    fdn_limit_result_t res;
    fdn_limit_reservation_t rsv[4];
    for (int i = 0; i < 2; i++)
        assert_int_equal(fdn_limiter_reserve(l, key, strlen(key), &r, 1, &rsv[i], &res), 0);
    /* denied by Redis: the denied call is counted, so the reservation is active */
    assert_int_equal(fdn_limiter_reserve(l, key, strlen(key), &r, 1, &rsv[2], &res),
                     FDN_ERATE_LIMITED);
    assert_true(rsv[2].active);
    assert_int_equal(res.count, 3);
    /* denied by the deny cache: Redis took nothing, so nothing is reserved */
    fdn_limiter_backend_status_t st0, st1;
    assert_int_equal(fdn_limiter_backend_status(l, &st0), 0);
    assert_int_equal(fdn_limiter_reserve(l, key, strlen(key), &r, 1, &rsv[3], &res),
                     FDN_ERATE_LIMITED);
    assert_int_equal(fdn_limiter_backend_status(l, &st1), 0);
    assert_int_equal(st1.local_denials, st0.local_denials + 1);
    assert_int_equal(st1.commands, st0.commands);
    assert_false(rsv[3].active);
    assert_int_equal(fdn_limiter_cancel(l, key, strlen(key), &r, &rsv[3]), FDN_ENOENT);
    /* the Redis denial gives back its own count, and only that */
    assert_int_equal(fdn_limiter_cancel(l, key, strlen(key), &r, &rsv[2]), 0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, FDN_LIMIT_PEEK, &res),
                     FDN_ERATE_LIMITED);
    assert_int_equal(res.count, 2);
    assert_int_equal(fdn_limiter_reset(l, key, strlen(key)), 0);
    fdn_limiter_destroy(l);
}

/* EXISTS of a Redis key name given as printf(1) text (to spell the namespace byte). */
static long redis_exists(const char *name_printf)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "redis-cli -u %s --raw EXISTS \"$(printf '%s')\"", g_url,
             name_printf);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long n = -1;
    assert_int_equal(fscanf(p, "%ld", &n), 1);
    assert_int_equal(pclose(p), 0);
    return n;
}

/* Review finding (security): a raw key "<rule>:<id>" named the Redis key of the named rule's
 * identifier, so any caller of the raw API could spend or reset it. Named-rule keys carry
 * FDN_LIMIT_KEY_NS_RULE in their Redis name, "fdn:rl:{\x02<rule>:<id>}:<digit>". */
static void named_rule_keys_have_their_own_namespace(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *l = open_limiter(&o);
    char id[64], raw[80], name[128];
    unique_key(id, sizeof(id), "victim");
    snprintf(raw, sizeof(raw), "ns_rule:%s", id);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 2, 3600000, 0};
    assert_int_equal(fdn_limiter_set_rule(l, "ns_rule", &r), 0);
    assert_int_equal(fdn_limiter_set_rule(l, "ns_rule:x", &r), FDN_EINVAL);
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check_named(l, "ns_rule", id, 1, &res), 0);
    assert_int_equal(fdn_limiter_check(l, raw, strlen(raw), &r, 2, 0, &res), 0);
    assert_int_equal(fdn_limiter_check_named(l, "ns_rule", id, 1, &res), 0);
    assert_int_equal(res.count, 2); /* the raw key's cost went elsewhere */
    assert_int_equal(fdn_limiter_check_named(l, "ns_rule", id, 1, &res), FDN_ERATE_LIMITED);
    snprintf(name, sizeof(name), "fdn:rl:{\\002ns_rule:%s}:%d", id, (int)r.algo);
    assert_int_equal(redis_exists(name), 1);
    snprintf(name, sizeof(name), "fdn:rl:{ns_rule:%s}:%d", id, (int)r.algo);
    assert_int_equal(redis_exists(name), 1); /* the raw key's own */
    fdn_limiter_destroy(l);
}

/* Every key call refuses a program's key in a library namespace on Redis as on the memory
 * backend (tests/support/limiter_ns.c), and the library's callers still reach those cells:
 * named and entity checks, FDN_LIMIT_RESERVED_NS, the HTTP API's inc/set/get/check. */
static void every_key_call_refuses_library_namespaces(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *l = open_limiter(&o);
    char id[64];
    unique_key(id, sizeof(id), "ns");
    test_limiter_ns_refusals(l, id);
    fdn_limiter_backend_status_t st;
    assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
    assert_int_equal(st.fallbacks, 0); /* every answer came from Redis */
    fdn_limiter_destroy(l);
}

static void library_namespace_calls_over_http(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *l = open_limiter(&o);
    char id[64];
    unique_key(id, sizeof(id), "nshttp");
    test_limiter_ns_http(l, id);
    fdn_limiter_backend_status_t st;
    assert_int_equal(fdn_limiter_backend_status(l, &st), 0);
    assert_int_equal(st.fallbacks, 0);
    fdn_limiter_destroy(l);
}

static void script_is_reloaded_after_a_flush(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.pool_size = 1;
    fdn_limiter_t *l = open_limiter(&o);
    char key[64];
    unique_key(key, sizeof(key), "flush");
    fdn_limit_rule_t r = {FDN_LIMIT_GCRA, 10, 3600000, 5};
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "redis-cli -u %s SCRIPT FLUSH >/dev/null", g_url);
    assert_int_equal(system(cmd), 0);
    fdn_limiter_backend_status_t st0, st1;
    fdn_limiter_backend_status(l, &st0);
    assert_int_equal(fdn_limiter_check(l, key, strlen(key), &r, 1, 0, &res), 0);
    fdn_limiter_backend_status(l, &st1);
    assert_int_equal(st1.script_loads, st0.script_loads + 1);
    assert_int_equal(st1.fallbacks, 0);
    assert_int_equal(res.remaining, 3); /* burst 5, two taken: the retried call ran once */
    fdn_limiter_destroy(l);
}

static void a_named_rule_may_stay_local(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *a = open_limiter(&o), *b = open_limiter(&o);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 2, 3600000, 0};
    assert_int_equal(fdn_limiter_set_rule_flags(a, "per_process", &r, 7), FDN_EINVAL);
    assert_int_equal(fdn_limiter_set_rule_flags(a, "per_process", &r, FDN_LIMIT_RULE_LOCAL), 0);
    assert_int_equal(fdn_limiter_set_rule_flags(b, "per_process", &r, FDN_LIMIT_RULE_LOCAL), 0);
    assert_int_equal(fdn_limiter_set_rule(a, "fleet", &r), 0);
    assert_int_equal(fdn_limiter_set_rule(b, "fleet", &r), 0);
    char id[64];
    unique_key(id, sizeof(id), "who");
    fdn_limiter_backend_status_t st0, st1;
    fdn_limiter_backend_status(a, &st0);
    int local_ok = 0, fleet_ok = 0;
    for (int i = 0; i < 3; i++) {
        local_ok += fdn_limiter_check_named(a, "per_process", id, 1, NULL) == 0;
        local_ok += fdn_limiter_check_named(b, "per_process", id, 1, NULL) == 0;
        fleet_ok += fdn_limiter_check_named(a, "fleet", id, 1, NULL) == 0;
        fleet_ok += fdn_limiter_check_named(b, "fleet", id, 1, NULL) == 0;
    }
    assert_int_equal(local_ok, 4); /* 2 in each process */
    assert_int_equal(fleet_ok, 2); /* 2 for both */
    fdn_limiter_backend_status(a, &st1);
    assert_int_equal(st1.fallbacks, st0.fallbacks);
    fdn_limiter_destroy(a);
    fdn_limiter_destroy(b);
}

/* ---- protected execution on the Redis backend ------------------------------------------- */

static int count_run(void *conn, void *arg)
{
    (void)conn;
    ++*(int *)arg;
    return 0;
}

static void protected_calls_use_the_shared_limit(void **state)
{
    (void)state;
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    fdn_limiter_t *a = open_limiter(&o), *b = open_limiter(&o);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 3, 3600000, 0};
    char rule[64];
    unique_key(rule, sizeof(rule), "prot");
    rule[40] = '\0'; /* rule names are short */
    assert_int_equal(fdn_limiter_set_rule(a, rule, &r), 0);
    assert_int_equal(fdn_limiter_set_rule(b, rule, &r), 0);
    fdn_protect_t *pa, *pb;
    fdn_protect_opts_t po = FDN_PROTECT_OPTS_INIT;
    po.limiter = a;
    assert_int_equal(fdn_protect_create(&pa, &po), 0);
    po.limiter = b;
    assert_int_equal(fdn_protect_create(&pb, &po), 0);
    fdn_protect_config_t pc = FDN_PROTECT_CONFIG_INIT;
    pc.limiter_rule = rule;
    assert_int_equal(fdn_protect_configure(pa, "svc", &pc, NULL), 0);
    assert_int_equal(fdn_protect_configure(pb, "svc", &pc, NULL), 0);
    fdn_protect_call_opts_t co = FDN_PROTECT_CALL_OPTS_INIT;
    co.identifier = "user-1";
    int ran = 0, limited = 0;
    for (int i = 0; i < 6; i++) {
        fdn_protect_result_t res;
        int rc = fdn_execute_protected(i % 2 ? pb : pa, "svc", &co, count_run, &ran, &res, NULL);
        if (rc == FDN_ERATE_LIMITED) {
            assert_int_equal(res.rejected_by, FDN_PROTECT_LIMITER);
            limited++;
        } else {
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(ran, 3); /* two processes' worth of limiters, one limit */
    assert_int_equal(limited, 3);
    fdn_protect_destroy(pa);
    fdn_protect_destroy(pb);
    fdn_limiter_destroy(a);
    fdn_limiter_destroy(b);
}

/* ---- many processes ---------------------------------------------------------------------- */

#define MAX_EPOCHS 4
typedef struct tally {
    int64_t epoch[MAX_EPOCHS];
    int64_t allowed[MAX_EPOCHS];
    int64_t denied_by_redis[MAX_EPOCHS];
    int n;
    int64_t fallbacks;
    int64_t allowed_total;
} tally_t;

static void tally_add(tally_t *t, int64_t epoch, bool allowed, bool from_redis)
{
    int i = 0;
    while (i < t->n && t->epoch[i] != epoch)
        i++;
    if (i == t->n) {
        if (t->n == MAX_EPOCHS)
            abort();
        t->epoch[t->n] = epoch;
        t->allowed[t->n] = t->denied_by_redis[t->n] = 0;
        t->n++;
    }
    if (allowed)
        t->allowed[i]++;
    else if (from_redis)
        t->denied_by_redis[i]++;
}

/* child fleet URL KEY ALGO LIMIT PERIOD_MS BURST CHECKS OUT (started by run_fleet): its own
 * limiter and connections on Redis at URL; CHECKS reservations of cost 1 on KEY under the rule
 * (ALGO a fdn_limit_algo_t); writes its tally on the descriptor OUT. */
static int child_fleet(char **argv)
{
    const char *url = argv[0], *key = argv[1];
    const fdn_limit_rule_t r = {
        (fdn_limit_algo_t)test_child_int(argv[2], FDN_LIMIT_FIXED_WINDOW, FDN_LIMIT_SLIDING_WINDOW),
        test_child_int(argv[3], 1, INT32_MAX), test_child_int(argv[4], 1, INT64_MAX),
        test_child_int(argv[5], 0, INT32_MAX)};
    int checks = (int)test_child_int(argv[6], 1, 1000000);
    int out = (int)test_child_int(argv[7], 0, 1 << 20);
    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.pool_size = 1;
    /* up to 64 sanitized children started at once on a loaded machine: a check (with its
     * connection's opening, connect to SCRIPT LOAD, on the first one) may wait seconds to be
     * scheduled; what the fleet tests is the shared count, and any fallback fails them */
    o.redis.command_timeout_ms = 30000;
    o.redis.connect_timeout_ms = 30000;
    fdn_limiter_t *l = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_limiter_open(&l, &o, &err) != 0) {
        fprintf(stderr, "child fleet: fdn_limiter_open: %s\n", err.message);
        return 3;
    }
    tally_t t = {0};
    for (int i = 0; i < checks; i++) {
        fdn_limit_reservation_t rsv;
        fdn_limit_result_t res;
        int rc = fdn_limiter_reserve(l, key, strlen(key), &r, 1, &rsv, &res);
        if (rc != 0 && rc != FDN_ERATE_LIMITED) {
            fprintf(stderr, "child fleet: reservation %d of %s: %s\n", i + 1, key,
                    fdn_err_name(rc));
            return 4;
        }
        if (res.allowed)
            t.allowed_total++;
        /* a denial from the deny cache carries no window (epoch 0 is never a real window) */
        if (res.allowed || rsv.epoch != 0)
            tally_add(&t, rsv.epoch, res.allowed, !res.allowed);
    }
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(l, &st);
    t.fallbacks = (int64_t)st.fallbacks;
    fdn_limiter_destroy(l);
    if (write(out, &t, sizeof(t)) != (ssize_t)sizeof(t)) {
        fprintf(stderr, "child fleet: write of its tally: %s\n", strerror(errno));
        return 5;
    }
    return 0;
}

/* Start nproc children (fresh runs of this program, child_fleet) sharing key under r, each
 * making `checks` checks; merge their tallies. Each child's failure fails the test, its
 * message above the test's. */
static void run_fleet(int nproc, const char *key, const fdn_limit_rule_t *r, int checks,
                      tally_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    int fds[64][2];
    pid_t pids[64];
    assert_true(nproc <= 64);
    char algo[16], limit[24], period[24], burst[24], nchecks[16];
    snprintf(algo, sizeof(algo), "%d", (int)r->algo);
    snprintf(limit, sizeof(limit), "%lld", (long long)r->limit);
    snprintf(period, sizeof(period), "%lld", (long long)r->period_ms);
    snprintf(burst, sizeof(burst), "%lld", (long long)r->burst);
    snprintf(nchecks, sizeof(nchecks), "%d", checks);
    for (int p = 0; p < nproc; p++) {
        /* O_CLOEXEC: a child holds the write end of its own pipe only, so the read of a child
         * that died returns (EOF) instead of waiting on a sibling's copy */
        assert_int_equal(pipe2(fds[p], O_CLOEXEC), 0);
        char out[16];
        snprintf(out, sizeof(out), "%d", fds[p][1]);
        const char *const args[] = {"child", "fleet", g_url,   key, algo, limit,
                                    period,  burst,   nchecks, out, NULL};
        pids[p] = test_spawn_self(args, &fds[p][1], 1);
        close(fds[p][1]);
    }
    for (int p = 0; p < nproc; p++) {
        tally_t t;
        ssize_t got = read(fds[p][0], &t, sizeof(t));
        close(fds[p][0]);
        test_child_wait_ok(pids[p], "fleet child");
        assert_int_equal(got, (ssize_t)sizeof(t));
        for (int i = 0; i < t.n; i++) {
            for (int64_t a = 0; a < t.allowed[i]; a++)
                tally_add(sum, t.epoch[i], true, false);
            for (int64_t d = 0; d < t.denied_by_redis[i]; d++)
                tally_add(sum, t.epoch[i], false, true);
        }
        sum->fallbacks += t.fallbacks;
        sum->allowed_total += t.allowed_total;
    }
}

static void fleet_shares_one_fixed_window(int nproc)
{
    enum { L = 60 };
    char key[64];
    unique_key(key, sizeof(key), "fleet");
    /* a long window: a run crosses at most one edge, and every window in which Redis denied
     * a call admitted exactly L (the counter counts every call, so a denial means L passed) */
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, L, 600000, 0};
    int checks = (3 * L + nproc - 1) / nproc + 1;
    tally_t sum;
    run_fleet(nproc, key, &r, checks, &sum);
    assert_int_equal(sum.fallbacks, 0);
    int complete = 0;
    for (int i = 0; i < sum.n; i++) {
        assert_true(sum.allowed[i] <= L);
        if (sum.denied_by_redis[i] > 0) {
            assert_int_equal(sum.allowed[i], L);
            complete++;
        }
    }
    assert_true(complete >= 1);
}

static void fleet_of_1_fixed_window(void **state)
{
    (void)state;
    fleet_shares_one_fixed_window(1);
}

static void fleet_of_8_fixed_window(void **state)
{
    (void)state;
    fleet_shares_one_fixed_window(8);
}

static void fleet_of_50_fixed_window(void **state)
{
    (void)state;
    fleet_shares_one_fixed_window(50);
}

/* Buckets and the sliding window over a period of an hour: during a run of seconds the bound
 * burst + L*t/P (GCRA, token bucket) or L (sliding window) is below burst + 1, and the fleet
 * asks for three times as much, so exactly burst (or L) calls pass. */
static void fleet_admits_the_bound(fdn_limit_algo_t algo, int64_t limit, int64_t burst)
{
    char key[64];
    unique_key(key, sizeof(key), fdn_limit_algo_name(algo));
    fdn_limit_rule_t r = {algo, limit, 3600000, burst};
    int64_t expect = algo == FDN_LIMIT_SLIDING_WINDOW ? limit : (burst > 0 ? burst : limit);
    tally_t sum;
    run_fleet(8, key, &r, (int)(3 * expect / 8 + 2), &sum);
    assert_int_equal(sum.fallbacks, 0);
    assert_int_equal(sum.allowed_total, expect);
}

static void fleet_gcra(void **state)
{
    (void)state;
    fleet_admits_the_bound(FDN_LIMIT_GCRA, 100, 20);
}

static void fleet_token_bucket(void **state)
{
    (void)state;
    fleet_admits_the_bound(FDN_LIMIT_TOKEN_BUCKET, 100, 30);
}

static void fleet_sliding_window(void **state)
{
    (void)state;
    fleet_admits_the_bound(FDN_LIMIT_SLIDING_WINDOW, 40, 0);
}

/* ---- skewed clocks ----------------------------------------------------------------------- */

static void skewed_hosts_share_window_edges(void **state)
{
    (void)state;
    fdn_clock_t *c1, *c2;
    int64_t wall = fdn_clock_wall_ns(NULL);
    assert_int_equal(fdn_clock_manual_create(&c1, 1000, wall), 0);
    assert_int_equal(fdn_clock_manual_create(&c2, 1000, wall + 30LL * 1000000000), 0);
    fdn_limiter_opts_t o = redis_opts(g_url, FDN_LIMIT_FAIL_CLOSED);
    o.clock = c1;
    fdn_limiter_t *a = open_limiter(&o);
    o.clock = c2;
    fdn_limiter_t *b = open_limiter(&o);
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 10, 60000, 0};
    /* at most three tries: a run that crosses a real window edge is retried on a new key */
    bool agreed = false;
    for (int attempt = 0; attempt < 3 && !agreed; attempt++) {
        char key[64];
        unique_key(key, sizeof(key), "skew");
        int64_t epoch = -1;
        int allowed = 0;
        bool same = true;
        for (int i = 0; i < 12; i++) {
            fdn_limit_reservation_t rsv;
            fdn_limit_result_t res;
            int rc = fdn_limiter_reserve(i % 2 ? b : a, key, strlen(key), &r, 1, &rsv, &res);
            assert_true(rc == 0 || rc == FDN_ERATE_LIMITED);
            if (rsv.epoch == 0)
                continue; /* a deny-cache answer */
            if (epoch == -1)
                epoch = rsv.epoch;
            same = same && rsv.epoch == epoch;
            allowed += res.allowed;
        }
        if (same) {
            assert_int_equal(allowed, 10); /* both limiters counted in one window */
            agreed = true;
        }
    }
    assert_true(agreed);
    fdn_limiter_destroy(a);
    fdn_limiter_destroy(b);
    fdn_clock_destroy(c1);
    fdn_clock_destroy(c2);
}

/* ---- Redis away -------------------------------------------------------------------------- */

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void refused_connection_follows_each_policy(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", closed_port());
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 4, 600000, 0};
    fdn_limit_result_t res;

    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_OPEN);
    fdn_limiter_t *l = open_limiter(&o);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fdn_limiter_check(l, "k", 1, &r, 1, 0, &res), 0);
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(l, &st);
    assert_false(st.connected);
    assert_int_equal(st.fallbacks, 10);
    assert_int_equal(st.breaker_state, FDN_BREAKER_OPEN); /* 3 failures opened it */
    /* GET /health's reads say the same */
    assert_false(fdn_limiter_backend_available(l));
    assert_int_equal(fdn_limiter_refusal_age_ns(l), st.since_refusal_ns);
    fdn_limiter_destroy(l);

    o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    l = open_limiter(&o);
    assert_int_equal(fdn_limiter_check(l, "k", 1, &r, 1, 0, &res), FDN_ERATE_LIMITED);
    assert_true(res.retry_after_ns > 0);
    fdn_limit_reservation_t rsv = {.cost = 1, .epoch = 1, .active = true};
    assert_int_equal(fdn_limiter_cancel(l, "k", 1, &r, &rsv), FDN_EUNAVAILABLE);
    assert_int_equal(fdn_limiter_reset(l, "k", 1), FDN_EUNAVAILABLE);
    fdn_limit_request_t many[3] = {{.key = "a", .keylen = 1, .rule = &r, .cost = 1},
                                   {.key = "b", .keylen = 1, .rule = &r, .cost = 1},
                                   {.key = "c", .keylen = 1, .rule = &r, .cost = 1}};
    fdn_limiter_backend_status(l, &st);
    uint64_t fb = st.fallbacks;
    assert_int_equal(fdn_limiter_check_many(l, many, 3), FDN_ERATE_LIMITED);
    for (int i = 0; i < 3; i++)
        assert_int_equal(many[i].rc, FDN_ERATE_LIMITED); /* fail_closed answered each */
    fdn_limiter_backend_status(l, &st);
    assert_int_equal(st.fallbacks, fb + 3);
    fdn_limiter_destroy(l);

    /* a rule's own policy wins over the limiter's (closed here) */
    o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    l = open_limiter(&o);
    assert_int_equal(fdn_limiter_set_rule_flags(l, "open_rule", &r, FDN_LIMIT_RULE_FAIL_OPEN), 0);
    assert_int_equal(fdn_limiter_set_rule(l, "closed_rule", &r), 0);
    assert_int_equal(fdn_limiter_set_rule_flags(
                         l, "two", &r, FDN_LIMIT_RULE_FAIL_OPEN | FDN_LIMIT_RULE_FAIL_CLOSED),
                     FDN_EINVAL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(fdn_limiter_check_named(l, "open_rule", "u", 1, &res), 0);
        assert_int_equal(fdn_limiter_check_named(l, "closed_rule", "u", 1, &res),
                         FDN_ERATE_LIMITED);
    }
    fdn_limiter_destroy(l);

    /* local: limit 4 over a fleet of 2 is 2 per process */
    o = redis_opts(url, FDN_LIMIT_FAIL_LOCAL);
    o.redis.fleet_size = 2;
    l = open_limiter(&o);
    int allowed = 0;
    for (int i = 0; i < 6; i++)
        allowed += fdn_limiter_check(l, "k", 1, &r, 1, 0, &res) == 0;
    assert_int_equal(allowed, 2);
    fdn_limiter_destroy(l);
}

/* A server that speaks something else: `reply` to every read. */
typedef struct fake {
    int lfd;
    const char *reply;
    pthread_t th;
} fake_t;

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    for (;;) {
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096];
        /* MSG_NOSIGNAL: the client may have dropped the connection while a command longer
         * than buf (SCRIPT LOAD) was still being read, and a SIGPIPE would end the test */
        while (read(c, buf, sizeof(buf)) > 0)
            if (send(c, f->reply, strlen(f->reply), MSG_NOSIGNAL) < 0)
                break;
        close(c);
    }
}

static int fake_start(fake_t *f, const char *reply)
{
    f->reply = reply;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    return ntohs(a.sin_port);
}

static void fake_stop(fake_t *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->th, NULL);
}

static void garbage_replies_fall_back(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "this is not RESP\r\n",                       /* protocol error */
        ":42\r\n",                                    /* valid RESP, not what the script returns */
        "*7\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n", /* an array cut short */
        "$40\r\n0123456789012345678901234567890123456789\r\n", /* a "SHA", then the same */
        "-ERR unknown command\r\n",
    };
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        fake_t f;
        int port = fake_start(&f, replies[i]);
        char url[64];
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
        fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_LOCAL);
        o.redis.command_timeout_ms = 200; /* the cut-short array never completes */
        fdn_limiter_t *l = open_limiter(&o);
        fdn_limit_rule_t r = {FDN_LIMIT_TOKEN_BUCKET, 3, 600000, 0};
        fdn_limit_result_t res;
        int allowed = 0;
        for (int k = 0; k < 5; k++) {
            int rc = fdn_limiter_check(l, "g", 1, &r, 1, 0, &res);
            assert_true(rc == 0 || rc == FDN_ERATE_LIMITED);
            allowed += rc == 0;
        }
        assert_int_equal(allowed, 3); /* the local store answered every check */
        fdn_limiter_backend_status_t st;
        fdn_limiter_backend_status(l, &st);
        assert_int_equal(st.fallbacks, 5);
        fdn_limiter_destroy(l);
        fake_stop(&f);
    }
}

/* ---- opening a connection: one deadline for all its steps ---------------------------------- */

/* A slow Redis: it answers each command (a RESP array of bulk strings) `delay_ms` after it has
 * read it whole, AUTH and SELECT with +OK and SCRIPT LOAD with a SHA1, and counts them. */
typedef struct slow {
    int lfd;
    int delay_ms;
    pthread_t th;
    atomic_int accepts, auths, selects, loads;
} slow_t;

/* The number after `lead` at p[*i], up to "\r\n": its value, *i moved past it; -1 when p[0..n)
 * ends first, -2 when it is not one. */
static long resp_int(const char *p, size_t n, size_t *i, char lead)
{
    if (*i >= n)
        return -1;
    if (p[*i] != lead)
        return -2;
    const char *e = memchr(p + *i, '\r', n - *i);
    if (e == NULL || (size_t)(e - p) + 1 >= n)
        return -1;
    long v = 0;
    for (const char *d = p + *i + 1; d < e; d++) {
        if (*d < '0' || *d > '9' || v > 1000000)
            return -2;
        v = v * 10 + (*d - '0');
    }
    *i = (size_t)(e - p) + 2;
    return v;
}

/* The length of the command at the start of p[0..n): 0 while it is incomplete, -1 when it is
 * not one; *name: its first argument. */
static long resp_command(const char *p, size_t n, const char **name, size_t *namelen)
{
    size_t i = 0;
    long argc = resp_int(p, n, &i, '*');
    if (argc < 1)
        return argc == -1 ? 0 : -1;
    for (long a = 0; a < argc; a++) {
        long len = resp_int(p, n, &i, '$');
        if (len < 0)
            return len == -1 ? 0 : -1;
        if (i + (size_t)len + 2 > n)
            return 0;
        if (a == 0) {
            *name = p + i;
            *namelen = (size_t)len;
        }
        i += (size_t)len + 2;
    }
    return (long)i;
}

static bool is_name(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static void *slow_main(void *arg)
{
    slow_t *f = arg;
    char buf[16384]; /* SCRIPT LOAD and the script: about 4 KiB */
    for (;;) {
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        atomic_fetch_add(&f->accepts, 1);
        size_t n = 0;
        long len = 0;
        ssize_t r;
        while (len >= 0 && n < sizeof(buf) && (r = read(c, buf + n, sizeof(buf) - n)) > 0) {
            n += (size_t)r;
            const char *name;
            size_t nl;
            while ((len = resp_command(buf, n, &name, &nl)) > 0) {
                const char *reply = "-ERR unknown command\r\n";
                if (is_name(name, nl, "AUTH")) {
                    atomic_fetch_add(&f->auths, 1);
                    reply = "+OK\r\n";
                } else if (is_name(name, nl, "SELECT")) {
                    atomic_fetch_add(&f->selects, 1);
                    reply = "+OK\r\n";
                } else if (is_name(name, nl, "SCRIPT")) {
                    atomic_fetch_add(&f->loads, 1);
                    reply = "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n";
                }
                test_pause_ms(f->delay_ms); /* the server's slowness, not the test's ordering */
                /* MSG_NOSIGNAL: the client may have given up and closed the connection */
                if (send(c, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
                    len = -1;
                    break;
                }
                memmove(buf, buf + len, n - (size_t)len);
                n -= (size_t)len;
            }
        }
        close(c);
    }
}

/* Start a slow server; its URL (a password and db 1: the opening sends AUTH and SELECT) into
 * url. */
static void slow_start(slow_t *f, int delay_ms, char *url, size_t cap)
{
    memset(f, 0, sizeof(*f));
    f->delay_ms = delay_ms;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    snprintf(url, cap, "redis://:secret@127.0.0.1:%d/1", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&f->th, NULL, slow_main, f), 0);
}

/* Stop it: its counts are final after this (its connections must be closed first, or it
 * waits for them). */
static void slow_stop(slow_t *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->th, NULL);
}

/* The socket bound (SO_RCVTIMEO or SO_SNDTIMEO) of c, in ms. */
static int64_t sock_bound_ms(struct redisContext *c, int opt)
{
    struct timeval tv;
    socklen_t len = sizeof(tv);
    assert_int_equal(getsockopt(c->fd, SOL_SOCKET, opt, &tv, &len), 0);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The storage layer: an opening with a deadline takes no step once it has passed, and one
 * whose steps were bounded by what was left of it leaves the connection with command_ms,
 * which is what comes after it; without a deadline each step has command_ms, however long
 * the opening takes in all. */
static void opening_steps_and_the_bounds_they_leave(void **state)
{
    (void)state;
    slow_t f;
    char url[96];
    slow_start(&f, 0, url, sizeof(url));
    fdn__redis_url_t u;
    assert_int_equal(fdn__redis_url_parse(url, &u, NULL), 0);
    struct redisContext *c = NULL;
    /* a deadline already passed: not even the connect */
    int64_t now = fdn__mono_now_ns();
    assert_int_equal(fdn__rl_connect(&c, &u, 60000, 60000, now - 1), FDN_ETIMEDOUT);
    assert_null(c);
    /* 30 s left, commands bounded by 60 s: the opening's steps had at most 30 s (a step far
     * from its deadline cannot be told from one at it by its outcome, so what is checked is
     * the bound after: back to 60 s for what comes next) */
    int64_t deadline = fdn__mono_now_ns() + 30000 * 1000000LL;
    assert_int_equal(fdn__rl_connect(&c, &u, 60000, 60000, deadline), 0);
    assert_int_equal(sock_bound_ms(c, SO_RCVTIMEO), 60000);
    assert_int_equal(sock_bound_ms(c, SO_SNDTIMEO), 60000);
    fdn__rl_script_t s;
    fdn__rl_script_init(&s);
    bool broken = false;
    fdn__rl_sent_t sent = {0, 0};
    assert_int_equal(fdn__rl_script_load(c, &s, 60000, deadline, &broken, &sent), 0);
    assert_int_equal(sent.loads, 1);
    assert_int_equal(sock_bound_ms(c, SO_RCVTIMEO), 60000);
    assert_int_equal(sock_bound_ms(c, SO_SNDTIMEO), 60000);
    /* and the load is not sent once the deadline has passed */
    sent = (fdn__rl_sent_t){0, 0};
    assert_int_equal(fdn__rl_script_load(c, &s, 60000, fdn__mono_now_ns() - 1, &broken, &sent),
                     FDN_ETIMEDOUT);
    assert_int_equal(sent.loads, 0);
    assert_false(broken);
    fdn__rl_close(c);
    slow_stop(&f);
    assert_int_equal(atomic_load(&f.accepts), 1);
    assert_int_equal(atomic_load(&f.auths), 1);
    assert_int_equal(atomic_load(&f.selects), 1);
    assert_int_equal(atomic_load(&f.loads), 1);

    /* no deadline: AUTH, SELECT and the load take 700 ms each (2.1 s in all) and each has the
     * full 2 s (only a 1.3 s stall of the server's thread within one step would fail this) */
    slow_start(&f, 700, url, sizeof(url));
    assert_int_equal(fdn__redis_url_parse(url, &u, NULL), 0);
    c = NULL;
    assert_int_equal(fdn__rl_connect(&c, &u, 2000, 2000, 0), 0);
    sent = (fdn__rl_sent_t){0, 0};
    assert_int_equal(fdn__rl_script_load(c, &s, 2000, 0, &broken, &sent), 0);
    assert_int_equal(sock_bound_ms(c, SO_RCVTIMEO), 2000);
    fdn__rl_close(c);
    slow_stop(&f);
    assert_int_equal(atomic_load(&f.auths), 1);
    assert_int_equal(atomic_load(&f.selects), 1);
    assert_int_equal(atomic_load(&f.loads), 1);
    fdn__rl_script_fini(&s);
}

/* A connection opened for a check ends by the check's deadline, its steps sharing what is
 * left: the server takes 600 ms to answer each command and the check's bound is 1 s. AUTH
 * is answered at 600 ms; SELECT cannot be answered before 1.2 s after the connection was
 * accepted, past the check's deadline (the check began before the connect), so the script's
 * load, which comes after it, is never sent, whatever the scheduler does: SELECT either meets
 * its bound (what was left, about 400 ms) or is answered past the deadline, and then nothing
 * is left for the load. The failure policy answers the check. (Before, each step had the time
 * left when the opening began, 1 s each: SELECT was answered at 1.2 s and the load sent, and
 * the check took about 1.8 s.) */
static void opening_a_connection_ends_by_the_check_deadline(void **state)
{
    (void)state;
    slow_t f;
    char url[96];
    slow_start(&f, 600, url, sizeof(url));
    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_CLOSED);
    o.redis.command_timeout_ms = 1000;
    o.redis.connect_timeout_ms = 1000;
    fdn_limiter_t *l = open_limiter(&o);
    fdn_limit_rule_t r = {FDN_LIMIT_TOKEN_BUCKET, 3, 600000, 0};
    fdn_limit_result_t res;
    assert_int_equal(fdn_limiter_check(l, "o", 1, &r, 1, 0, &res), FDN_ERATE_LIMITED);
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(l, &st);
    assert_int_equal(st.fallbacks, 1);    /* fail_closed answered */
    assert_int_equal(st.script_loads, 0); /* the load was not sent */
    assert_int_equal(st.commands, 0);
    fdn_limiter_destroy(l); /* closes its connections: the server's thread can end */
    slow_stop(&f);
    assert_int_equal(atomic_load(&f.loads), 0);
    assert_true(atomic_load(&f.auths) <= 1); /* (1 unless the check's thread stalled 1 s) */
    assert_true(atomic_load(&f.selects) <= 1);
}

/* ---- chaos: Redis killed under load and restarted ---------------------------------------- */

typedef struct load {
    fdn_limiter_t *l;
    atomic_long progress;
    atomic_int stop;
    atomic_int bad_rc;
    atomic_int finished;
} load_t;

static void *load_main(void *arg)
{
    load_t *ld = arg;
    fdn_limit_rule_t r = {FDN_LIMIT_SLIDING_WINDOW, 1000000, 600000, 0};
    char key[32];
    snprintf(key, sizeof(key), "load-%u", g_run);
    for (long i = 0; i < 5000000 && !atomic_load(&ld->stop); i++) {
        fdn_limit_result_t res;
        int rc = fdn_limiter_check(ld->l, key, strlen(key), &r, 1, 0, &res);
        if (rc != 0 && rc != FDN_ERATE_LIMITED)
            atomic_fetch_add(&ld->bad_rc, 1);
        atomic_fetch_add(&ld->progress, 1);
    }
    atomic_fetch_add(&ld->finished, 1);
    return NULL;
}

/* Wait until the load made `more` further checks (or every thread ran out of work). */
static void await_progress(load_t *ld, long more, int nthreads)
{
    long target = atomic_load(&ld->progress) + more;
    while (atomic_load(&ld->progress) < target && atomic_load(&ld->finished) < nthreads)
        sched_yield();
}

static void server_cmd(const char *cmd, const char *dir)
{
    char line[1024];
    snprintf(line, sizeof(line), "bash %s/scripts/redis-server.sh %s %s >/dev/null",
             getenv("FDN_SOURCE_DIR"), cmd, dir);
    assert_int_equal(system(line), 0);
}

/* The chaos test's own Redis: started in setup, stopped in teardown, so a failed assertion
 * does not leave a daemon behind. */
static int chaos_setup(void **state)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/fdn-redis-chaos-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    server_cmd("start", dir);
    *state = dir;
    return 0;
}

static int chaos_teardown(void **state)
{
    server_cmd("stop", *state); /* stops it (whatever state the test left it in), removes dir */
    return 0;
}

static void killed_and_restarted_under_load(void **state)
{
    const char *dir = *state;
    char url[128];
    test_engine_url_of(dir, url, sizeof(url));

    fdn_clock_t *clk;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000, fdn_clock_wall_ns(NULL)), 0);
    fdn_limiter_opts_t o = redis_opts(url, FDN_LIMIT_FAIL_LOCAL);
    o.clock = clk; /* the breaker's recovery time passes when the test says so */
    o.redis.command_timeout_ms = 300;
    load_t ld = {.l = open_limiter(&o)};
    enum { N = 4 };
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load_main, &ld), 0);

    await_progress(&ld, 200, N);
    server_cmd("kill", dir);
    await_progress(&ld, 200, N);
    fdn_limiter_backend_status_t st;
    fdn_limiter_backend_status(ld.l, &st);
    assert_int_equal(st.breaker_state, FDN_BREAKER_OPEN);
    assert_true(st.fallbacks > 0);
    assert_false(fdn_limiter_backend_available(ld.l)); /* (the clock holds the breaker open) */
    server_cmd("restart", dir);
    /* Redis answers again (its script reports PONG before returning). Each check below either
     * reaches Redis (the breaker's half-open probe) or is answered locally while the breaker
     * is open; the clock passes the 500 ms recovery before each, so at most a few checks are
     * needed: connections made before the kill are dropped, not tried (one generation). */
    uint64_t before = st.commands;
    fdn_limit_rule_t probe_rule = {FDN_LIMIT_TOKEN_BUCKET, 1000000, 600000, 0};
    for (int i = 0; i < 20; i++) {
        fdn_clock_advance(clk, 1000000000LL);
        fdn_limit_result_t pr;
        int rc = fdn_limiter_check(ld.l, "probe", 5, &probe_rule, 1, 0, &pr);
        assert_true(rc == 0 || rc == FDN_ERATE_LIMITED);
        fdn_limiter_backend_status(ld.l, &st);
        if (st.commands > before && st.connected && st.breaker_state == FDN_BREAKER_CLOSED)
            break;
    }
    atomic_store(&ld.stop, 1);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&ld.bad_rc), 0);
    assert_true(st.connected);
    assert_int_equal(st.breaker_state, FDN_BREAKER_CLOSED);
    assert_true(fdn_limiter_backend_available(ld.l));

    /* no double counting after recovery: a fresh key counts exactly the checks made */
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, 100, 600000, 0};
    char key[64];
    unique_key(key, sizeof(key), "after");
    fdn_limit_result_t res;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(fdn_limiter_check(ld.l, key, strlen(key), &r, 1, 0, &res), 0);
        assert_int_equal(res.count, i);
    }
    fdn_limiter_destroy(ld.l);
    fdn_clock_destroy(clk);
}

int main(int argc, char **argv)
{
    static const test_child_role_t roles[] = {
        {"fleet", "URL KEY ALGO LIMIT PERIOD_MS BURST CHECKS OUT", 8, child_fleet},
    };
    int rc = test_child_main(argc, argv, roles, sizeof(roles) / sizeof(roles[0]));
    if (rc >= 0)
        return rc;
    read_url();
    /* e.g. CMOCKA_TEST_FILTER='*fleet*': the cases whose names match */
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_urls_are_refused_with_a_message),
        cmocka_unit_test(check_peek_reserve_cancel_reset),
        cmocka_unit_test(deny_cache_reservation_takes_nothing),
        cmocka_unit_test(named_rule_keys_have_their_own_namespace),
        cmocka_unit_test(every_key_call_refuses_library_namespaces),
        cmocka_unit_test(library_namespace_calls_over_http),
        cmocka_unit_test(script_is_reloaded_after_a_flush),
        cmocka_unit_test(protected_calls_use_the_shared_limit),
        cmocka_unit_test(a_named_rule_may_stay_local),
        cmocka_unit_test(fleet_of_1_fixed_window),
        cmocka_unit_test(fleet_of_8_fixed_window),
        cmocka_unit_test(fleet_of_50_fixed_window),
        cmocka_unit_test(fleet_gcra),
        cmocka_unit_test(fleet_token_bucket),
        cmocka_unit_test(fleet_sliding_window),
        cmocka_unit_test(skewed_hosts_share_window_edges),
        cmocka_unit_test(refused_connection_follows_each_policy),
        cmocka_unit_test(garbage_replies_fall_back),
        cmocka_unit_test(opening_steps_and_the_bounds_they_leave),
        cmocka_unit_test(opening_a_connection_ends_by_the_check_deadline),
        cmocka_unit_test_setup_teardown(killed_and_restarted_under_load, chaos_setup,
                                        chaos_teardown),
        cmocka_unit_test(pipeline_retries_noscript_once_for_the_batch),
        cmocka_unit_test(check_many_is_one_pipeline),
        cmocka_unit_test(script_windows_at_clock_extremes),
        cmocka_unit_test(script_matches_limit_algo),
        cmocka_unit_test(bucket_state_of_the_older_script_is_shared),
        cmocka_unit_test(deny_cache_at_clock_extremes),
        cmocka_unit_test(inc_set_get_match_the_memory_store),
        cmocka_unit_test_setup_teardown(one_connection_carries_several_pipelines, chaos_setup,
                                        chaos_teardown),
        cmocka_unit_test_setup_teardown(a_later_pipeline_gives_up_at_its_own_deadline, chaos_setup,
                                        chaos_teardown),
        cmocka_unit_test_setup_teardown(pipeline_carries_the_queued_checks, chaos_setup,
                                        chaos_teardown),
        cmocka_unit_test_setup_teardown(pipeline_max_1_sends_one_check_per_round_trip, chaos_setup,
                                        chaos_teardown),
        cmocka_unit_test_setup_teardown(pipeline_queued_checks_keep_their_timeout, chaos_setup,
                                        chaos_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
