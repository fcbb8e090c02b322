/*
 * DESIGN: rate limiter.
 *
 * Layers: the public limiter (rules, shadow mode, running flag, time) calls a storage
 * backend through fdn__limiter_backend_t (limiter_int.h). The memory backend here keeps one
 * cell per key in a sharded hash.
 *
 * Threads: none of its own. Sweeping is amortised: a check that finds its shard's
 * next_sweep in the past sweeps that shard (O(cells in shard)) before its own update;
 * fdn_limiter_sweep() sweeps all shards.
 *
 * Locks: one mutex per shard (cache-line aligned) guards that shard's chains, LRU list,
 * counters and cells; a check holds exactly one shard lock for a lookup + update. The rule
 * table has its own mutex, never held with a shard lock. No callback runs under any lock.
 * Every change to the rule table (under its mutex) also runs the sequence counter
 * `rules_seq` odd then even (a seqlock) and mirrors each slot's rule into atomic fields, so
 * fdn__limiter_check_named_cached reads a rule it resolved before with no lock: it keeps
 * (rules_seq, slot) in the caller's cache and uses the slot only while rules_seq is still
 * that value, so any rule update or removal applies to the very next check.
 *
 * Invariants: per shard, count <= cap (max_keys / shards, at least 1); every cell is in
 * exactly one chain and in the shard's LRU list (most recent at the head); a cell whose
 * `expires` has passed is equivalent to no cell, so sweeping never changes a decision.
 * `expires` is wall ns for FIXED_WINDOW cells (the only clock a fixed-window check reads)
 * and monotonic ns for the others; each shard keeps a sweep deadline on both clocks, and a
 * lower bound of its cells' `expires` per clock (min_exp_*: lowered whenever a cell's
 * expiry is set, made exact by every sweep).
 *
 * Overflow: a new key in a full shard first sweeps the shard, but only when min_exp_* says
 * some cell may have expired (so a flood of new keys into a shard of live keys costs O(1)
 * per refused key, not a scan); if still full, the policy refuses the new key (DENY_NEW,
 * default: live state is never dropped, so no key's count can be reset by a flood) or evicts
 * the LRU tail (EVICT_LRU). Arithmetic is
 * integer ns; products use 128-bit intermediates and rules are validated so that stored values fit
 * in int64.
 */
#include <fdn/limiter.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/tsan.h"
#include "infra/limiter_int.h"

__extension__ typedef __int128 i128;

#define NS_PER_MS     1000000LL
#define MAX_KEYLEN    4096u
#define MAX_RULES     64
#define RULE_NAME_MAX 64
#define LIM_MAX       ((int64_t)1 << 31)
#define PERIOD_MAX    ((int64_t)1 << 33)
#define SCALED_MAX    ((int64_t)1 << 62)

/* Telemetry (opts.telemetry): counters foundation.rate_limiter.request_allowed and
 * foundation.rate_limiter.request_denied {algorithm} per consuming check (keys are not put in
 * metadata: their cardinality is unbounded). Emitted after the shard lock is released. */

/* ------------------------------------------------------------------------------------------
 * rules and algorithms (pure)
 * ---------------------------------------------------------------------------------------- */

const char *fdn_limit_algo_name(fdn_limit_algo_t a)
{
    switch (a) {
    case FDN_LIMIT_FIXED_WINDOW:
        return "fixed_window";
    case FDN_LIMIT_TOKEN_BUCKET:
        return "token_bucket";
    case FDN_LIMIT_GCRA:
        return "gcra";
    case FDN_LIMIT_SLIDING_WINDOW:
        return "sliding_window";
    }
    return "unknown";
}

static int64_t rule_burst(const fdn_limit_rule_t *r)
{
    return r->burst > 0 ? r->burst : r->limit;
}

/* GCRA emission interval, rounded up. */
static int64_t gcra_t(const fdn_limit_rule_t *r)
{
    int64_t p = r->period_ms * NS_PER_MS;
    return (p + r->limit - 1) / r->limit;
}

int fdn_limit_rule_validate(const fdn_limit_rule_t *r, fdn_error_t *err)
{
    if (r == NULL)
        return fdn_err_set(err, FDN_EINVAL, "rate limit rule is NULL");
    if ((unsigned)r->algo > FDN_LIMIT_SLIDING_WINDOW)
        return fdn_err_set(err, FDN_EINVAL, "unknown rate limit algorithm %d", (int)r->algo);
    if (r->limit < 1 || r->limit > LIM_MAX)
        return fdn_err_set(err, FDN_EINVAL, "limit must be in 1..2^31 (got %lld)",
                           (long long)r->limit);
    if (r->period_ms < 1 || r->period_ms > PERIOD_MAX)
        return fdn_err_set(err, FDN_EINVAL, "period must be in 1..2^33 ms (got %lld)",
                           (long long)r->period_ms);
    if (r->burst < 0 || r->burst > LIM_MAX)
        return fdn_err_set(err, FDN_EINVAL, "burst must be in 0..2^31");
    int64_t p = r->period_ms * NS_PER_MS;
    if (r->algo == FDN_LIMIT_TOKEN_BUCKET && (i128)rule_burst(r) * p > SCALED_MAX)
        return fdn_err_set(err, FDN_EINVAL, "burst * period too large (max 2^62 ns)");
    if (r->algo == FDN_LIMIT_GCRA && (i128)rule_burst(r) * gcra_t(r) > SCALED_MAX)
        return fdn_err_set(err, FDN_EINVAL, "burst * period / limit too large");
    return 0;
}

typedef struct cell {
    void *raw;                        /* allocation (cells start on a cache line) */
    struct cell *next;                /* hash chain */
    struct cell *lru_prev, *lru_next; /* shard LRU list */
    uint64_t hash;
    int64_t expires; /* wall ns (fixed window) or monotonic ns (others) */
    int64_t s[3];    /* algorithm state */
    uint32_t keylen;
    uint8_t algo;
    char key[];
} cell_t;

static void cell_init(cell_t *c, const fdn_limit_rule_t *r, const fdn__limit_now_t *now)
{
    int64_t p = r->period_ms * NS_PER_MS;
    c->algo = (uint8_t)r->algo;
    memset(c->s, 0, sizeof(c->s));
    switch (r->algo) {
    case FDN_LIMIT_FIXED_WINDOW:
        c->s[0] = now->wall_ns / p;
        break;
    case FDN_LIMIT_TOKEN_BUCKET:
        c->s[0] = now->mono_ns;
        c->s[1] = rule_burst(r) * p; /* full */
        break;
    case FDN_LIMIT_GCRA:
        c->s[0] = now->mono_ns; /* TAT */
        break;
    case FDN_LIMIT_SLIDING_WINDOW:
        c->s[0] = now->mono_ns / p;
        break;
    }
}

static int64_t ceil_div(i128 a, i128 b)
{
    if (a <= 0)
        return 0;
    i128 q = (a + b - 1) / b;
    return q > INT64_MAX ? INT64_MAX : (int64_t)q;
}

/*
 * Apply one operation to a cell (its lock held). Fills res. For CHECK sets rsv->epoch.
 * Returns 0, or FDN_ENOENT for a CANCEL that has nothing to give back.
 */
static int cell_apply(cell_t *c, const fdn_limit_rule_t *r, int64_t cost, fdn__limit_op_t op,
                      const fdn__limit_now_t *now, fdn_limit_result_t *res,
                      fdn_limit_reservation_t *rsv)
{
    const int64_t p = r->period_ms * NS_PER_MS;
    const int64_t L = r->limit;
    const int64_t mono = now->mono_ns; /* unset for FIXED_WINDOW */
    bool ok = false;
    int64_t count = 0, remaining = 0, reset = 0, retry = 0, lim = L;
    int rc = 0;

    switch (r->algo) {
    case FDN_LIMIT_FIXED_WINDOW: {
        int64_t win = now->wall_ns / p;
        if (c->s[0] != win) {
            c->s[0] = win;
            c->s[1] = 0;
        }
        reset = (win + 1) * p - now->wall_ns;
        if (op == FDN__LIMIT_CANCEL) {
            if (rsv->epoch != win || c->s[1] <= 0)
                return FDN_ENOENT;
            c->s[1] = c->s[1] > cost ? c->s[1] - cost : 0;
            count = c->s[1];
            ok = true;
        } else if (op == FDN__LIMIT_PEEK) {
            count = c->s[1];
            ok = count + cost <= L;
        } else {
            c->s[1] += cost; /* Hammer counts denied hits too */
            count = c->s[1];
            ok = count <= L;
            if (rsv)
                rsv->epoch = win;
        }
        remaining = L - count > 0 ? L - count : 0;
        retry = ok ? 0 : (cost > L ? INT64_MAX : reset);
        c->expires = now->wall_ns + reset;
        break;
    }
    case FDN_LIMIT_TOKEN_BUCKET: {
        const int64_t burst = rule_burst(r);
        const int64_t cap = burst * p;
        int64_t elapsed = mono - c->s[0];
        if (elapsed > 0) {
            i128 t = (i128)c->s[1] + (i128)elapsed * L;
            c->s[1] = t > cap ? cap : (int64_t)t;
            c->s[0] = mono;
        }
        const int64_t need = (int64_t)((i128)cost * p > SCALED_MAX ? SCALED_MAX : cost * p);
        if (op == FDN__LIMIT_CANCEL) {
            i128 t = (i128)c->s[1] + need;
            c->s[1] = t > cap ? cap : (int64_t)t;
            ok = true;
        } else {
            ok = c->s[1] >= need;
            if (ok && op == FDN__LIMIT_CHECK)
                c->s[1] -= need;
            if (!ok)
                retry = cost > burst ? INT64_MAX : ceil_div((i128)need - c->s[1], L);
        }
        if (rsv && op == FDN__LIMIT_CHECK)
            rsv->epoch = 0;
        lim = burst;
        remaining = c->s[1] / p;
        count = burst - remaining;
        reset = ceil_div((i128)cap - c->s[1], L);
        c->expires = mono + reset;
        break;
    }
    case FDN_LIMIT_GCRA: {
        const int64_t T = gcra_t(r);
        const int64_t burst = rule_burst(r);
        const int64_t bt = burst * T; /* tau + T */
        int64_t tat = c->s[0] > mono ? c->s[0] : mono;
        if (op == FDN__LIMIT_CANCEL) {
            i128 nt = (i128)c->s[0] - (i128)cost * T;
            c->s[0] = nt < mono ? mono : (int64_t)nt;
            ok = true;
        } else {
            i128 new_tat = (i128)tat + (i128)cost * T;
            i128 allow_at = new_tat - bt;
            ok = mono >= allow_at;
            if (ok && op == FDN__LIMIT_CHECK)
                c->s[0] = (int64_t)new_tat;
            if (!ok)
                retry = cost > burst ? INT64_MAX : (int64_t)(allow_at - mono);
        }
        if (rsv && op == FDN__LIMIT_CHECK)
            rsv->epoch = 0;
        int64_t st = c->s[0] > mono ? c->s[0] : mono;
        lim = burst;
        remaining = (mono + bt - st) / T;
        if (remaining < 0)
            remaining = 0;
        count = burst - remaining;
        reset = st - mono;
        c->expires = st;
        break;
    }
    case FDN_LIMIT_SLIDING_WINDOW: {
        int64_t win = mono / p;
        if (c->s[0] != win) {
            c->s[2] = (c->s[0] == win - 1) ? c->s[1] : 0;
            c->s[1] = 0;
            c->s[0] = win;
        }
        const int64_t e = mono - win * p; /* elapsed in the current window */
        const int64_t prev = c->s[2];
        if (op == FDN__LIMIT_CANCEL) {
            if (rsv->epoch != win || c->s[1] <= 0)
                return FDN_ENOENT;
            c->s[1] = c->s[1] > cost ? c->s[1] - cost : 0;
            ok = true;
        } else {
            i128 est = (i128)prev * (p - e) + (i128)(c->s[1] + cost) * p;
            ok = est <= (i128)L * p;
            if (ok && op == FDN__LIMIT_CHECK)
                c->s[1] += cost;
            if (rsv && op == FDN__LIMIT_CHECK)
                rsv->epoch = win;
            if (!ok) {
                if (cost > L) {
                    retry = INT64_MAX;
                } else if (c->s[1] + cost <= L) {
                    /* wait until prev's weight drops: prev*(p-e') <= (L-cur-cost)*p */
                    i128 room = (i128)(L - c->s[1] - cost) * p;
                    /* smallest e2 with prev*(p-e2) <= room; prev > 0 since denied */
                    int64_t e2 = p - (int64_t)(room / prev);
                    retry = e2 - e;
                } else {
                    /* next window: cur becomes prev */
                    int64_t cur = c->s[1];
                    i128 room = (i128)(L - cost) * p;
                    int64_t e2 = cur > 0 ? p - (int64_t)(room / cur) : 0;
                    if (e2 < 0)
                        e2 = 0;
                    retry = (p - e) + e2;
                }
            }
        }
        count = (int64_t)(((i128)prev * (p - e)) / p) + c->s[1];
        remaining = L - count > 0 ? L - count : 0;
        reset = (win + 2) * p - mono;
        c->expires = (win + 2) * p;
        break;
    }
    }
    if (res) {
        res->allowed = ok;
        res->shadow_denied = false;
        res->count = count;
        res->limit = lim;
        res->remaining = remaining;
        res->reset_ns = reset;
        res->retry_after_ns = retry;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * memory backend
 * ---------------------------------------------------------------------------------------- */

typedef struct shard {
    _Alignas(FDN_CACHELINE) pthread_mutex_t mu;
    cell_t **buckets;
    uint32_t nbuckets; /* power of two */
    uint32_t count;
    cell_t *lru_head, *lru_tail;
    int64_t next_sweep;      /* monotonic */
    int64_t next_sweep_wall; /* wall */
    int64_t min_exp_mono;    /* <= every monotonic-clock cell's expires (INT64_MAX: none) */
    int64_t min_exp_wall;    /* <= every fixed-window cell's expires */
    uint64_t allowed, denied, evictions, expired, overflow_denied;
    uint64_t lookups, probes; /* shard_find calls and cells compared (fdn__limiter_probes) */
} shard_t;

typedef struct membe {
    void *shards_raw;
    shard_t *shards;  /* cache-line aligned */
    uint32_t nshards; /* power of two */
    uint32_t cap;     /* per shard */
    fdn_limit_overflow_t policy;
    _Atomic int64_t interval_ns;
} membe_t;

static void lru_unlink(shard_t *s, cell_t *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        s->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        s->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
}

static void lru_push_front(shard_t *s, cell_t *c)
{
    c->lru_prev = NULL;
    c->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = c;
    s->lru_head = c;
    if (!s->lru_tail)
        s->lru_tail = c;
}

/* Remove c from its chain and the LRU list and free it. */
static void cell_remove(shard_t *s, cell_t *c)
{
    cell_t **pp = &s->buckets[(c->hash >> 32) & (s->nbuckets - 1)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    lru_unlink(s, c);
    s->count--;
    fdn__free(c->raw);
}

static bool cell_expired(const cell_t *c, const fdn__limit_now_t *now)
{
    int64_t t = c->algo == FDN_LIMIT_FIXED_WINDOW ? now->wall_ns : now->mono_ns;
    return t != FDN__NOW_UNSET && c->expires <= t;
}

/* Fill both times (sweeping compares cells of both kinds). */
static void now_full(const fdn__limit_now_t *in, fdn__limit_now_t *out)
{
    *out = *in;
    if (out->mono_ns == FDN__NOW_UNSET)
        out->mono_ns = fdn_clock_mono_ns(in->clock);
    if (out->wall_ns == FDN__NOW_UNSET)
        out->wall_ns = fdn_clock_wall_ns(in->clock);
}

/* Lower the shard's expiry bound for c's clock (after c->expires was set). */
static void note_expiry(shard_t *s, const cell_t *c)
{
    if (c->algo == FDN_LIMIT_FIXED_WINDOW) {
        if (c->expires < s->min_exp_wall)
            s->min_exp_wall = c->expires;
    } else if (c->expires < s->min_exp_mono) {
        s->min_exp_mono = c->expires;
    }
}

/* now must be full (both clocks). Also makes min_exp_* exact. */
static size_t shard_sweep(shard_t *s, const fdn__limit_now_t *now)
{
    size_t n = 0;
    cell_t *c = s->lru_tail;
    s->min_exp_mono = s->min_exp_wall = INT64_MAX;
    while (c) {
        cell_t *prev = c->lru_prev;
        if (cell_expired(c, now)) {
            cell_remove(s, c);
            n++;
        } else {
            note_expiry(s, c);
        }
        c = prev;
    }
    s->expired += n;
    return n;
}

/* A full shard and a new key: make room or refuse. Returns 0 when a slot is free, or
 * FDN_ELIMITER with res filled (lock held). */
static int shard_make_room(membe_t *m, shard_t *s, const fdn__limit_now_t *now,
                           fdn_limit_result_t *res)
{
    fdn__limit_now_t full;
    now_full(now, &full);
    if (full.mono_ns >= s->min_exp_mono || full.wall_ns >= s->min_exp_wall)
        shard_sweep(s, &full);
    if (s->count < m->cap)
        return 0;
    if (m->policy == FDN_LIMIT_OVERFLOW_EVICT_LRU) {
        s->evictions++;
        cell_remove(s, s->lru_tail);
        return 0;
    }
    s->overflow_denied++;
    int64_t wait = INT64_MAX;
    if (s->min_exp_mono != INT64_MAX)
        wait = s->min_exp_mono - full.mono_ns;
    if (s->min_exp_wall != INT64_MAX && s->min_exp_wall - full.wall_ns < wait)
        wait = s->min_exp_wall - full.wall_ns;
    memset(res, 0, sizeof(*res));
    res->retry_after_ns = wait > 0 ? wait : 0;
    return FDN_ELIMITER;
}

static void shard_grow(shard_t *s)
{
    uint32_t nb = s->nbuckets * 2;
    cell_t **b = fdn__calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (uint32_t i = 0; i < s->nbuckets; i++) {
        cell_t *c = s->buckets[i];
        while (c) {
            cell_t *nx = c->next;
            uint32_t j = (uint32_t)((c->hash >> 32) & (nb - 1));
            c->next = b[j];
            b[j] = c;
            c = nx;
        }
    }
    fdn__free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

static cell_t *shard_find(shard_t *s, uint64_t h, const char *key, size_t keylen)
{
    cell_t *c = s->buckets[(h >> 32) & (s->nbuckets - 1)];
    s->lookups++;
    for (; c; c = c->next) {
        s->probes++;
        if (c->hash == h && c->keylen == keylen && memcmp(c->key, key, keylen) == 0)
            return c;
    }
    return NULL;
}

static int mem_apply(void *self, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                     int64_t cost, fdn__limit_op_t op, const fdn__limit_now_t *now,
                     fdn_limit_result_t *res, fdn_limit_reservation_t *rsv)
{
    membe_t *m = self;
    uint64_t h = fdn__hash(key, keylen);
    shard_t *s = &m->shards[h & (m->nshards - 1)];
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    bool due = rule->algo == FDN_LIMIT_FIXED_WINDOW ? now->wall_ns >= s->next_sweep_wall
                                                    : now->mono_ns >= s->next_sweep;
    if (FDN_UNLIKELY(due)) {
        fdn__limit_now_t full;
        now_full(now, &full);
        shard_sweep(s, &full);
        int64_t iv = atomic_load_explicit(&m->interval_ns, memory_order_relaxed);
        s->next_sweep = full.mono_ns + iv;
        s->next_sweep_wall = full.wall_ns + iv;
    }
    cell_t *c = shard_find(s, h, key, keylen);
    if (c && (cell_expired(c, now) || c->algo != (uint8_t)rule->algo))
        cell_init(c, rule, now); /* expired state == fresh state */
    if (c == NULL) {
        if (op == FDN__LIMIT_CANCEL) {
            pthread_mutex_unlock(&s->mu);
            return FDN_ENOENT;
        }
        cell_t tmp;
        if (op == FDN__LIMIT_PEEK) {
            /* evaluate on a fresh state without storing it */
            memset(&tmp, 0, sizeof(tmp));
            cell_init(&tmp, rule, now);
            cell_apply(&tmp, rule, cost, op, now, res, rsv);
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (s->count >= m->cap) {
            rc = shard_make_room(m, s, now, res);
            if (rc) {
                pthread_mutex_unlock(&s->mu);
                return rc;
            }
        }
        /* Each cell starts on its own cache line so that two hot keys never share one. */
        void *raw = fdn__malloc(sizeof(cell_t) + keylen + FDN_CACHELINE - 1);
        if (!raw) {
            pthread_mutex_unlock(&s->mu);
            return FDN_ENOMEM;
        }
        cell_t *nc =
            (cell_t *)(((uintptr_t)raw + FDN_CACHELINE - 1) & ~(uintptr_t)(FDN_CACHELINE - 1));
        memset(nc, 0, sizeof(*nc));
        nc->raw = raw;
        nc->hash = h;
        nc->keylen = (uint32_t)keylen;
        memcpy(nc->key, key, keylen);
        cell_init(nc, rule, now);
        uint32_t bi = (uint32_t)((h >> 32) & (s->nbuckets - 1));
        nc->next = s->buckets[bi];
        s->buckets[bi] = nc;
        lru_push_front(s, nc);
        s->count++;
        if (s->count > s->nbuckets && s->nbuckets < (1u << 24))
            shard_grow(s);
        c = nc;
    } else if (s->lru_head != c) {
        lru_unlink(s, c);
        lru_push_front(s, c);
    }
    rc = cell_apply(c, rule, cost, op, now, res, rsv);
    note_expiry(s, c);
    if (op == FDN__LIMIT_CHECK) {
        if (res->allowed)
            s->allowed++;
        else
            s->denied++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int mem_forget(void *self, const char *key, size_t keylen)
{
    membe_t *m = self;
    uint64_t h = fdn__hash(key, keylen);
    shard_t *s = &m->shards[h & (m->nshards - 1)];
    pthread_mutex_lock(&s->mu);
    cell_t *c = shard_find(s, h, key, keylen);
    if (c)
        cell_remove(s, c);
    pthread_mutex_unlock(&s->mu);
    return c ? 0 : FDN_ENOENT;
}

static size_t mem_sweep(void *self, const fdn__limit_now_t *now)
{
    membe_t *m = self;
    size_t n = 0;
    fdn__limit_now_t full;
    now_full(now, &full);
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        int64_t iv = atomic_load_explicit(&m->interval_ns, memory_order_relaxed);
        pthread_mutex_lock(&s->mu);
        n += shard_sweep(s, &full);
        s->next_sweep = full.mono_ns + iv;
        s->next_sweep_wall = full.wall_ns + iv;
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void mem_stats(void *self, fdn_limiter_stats_t *out)
{
    membe_t *m = self;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        pthread_mutex_lock(&s->mu);
        out->keys += s->count;
        out->allowed += s->allowed;
        out->denied += s->denied;
        out->evictions += s->evictions;
        out->expired += s->expired;
        out->overflow_denied += s->overflow_denied;
        pthread_mutex_unlock(&s->mu);
    }
}

static void mem_destroy(void *self)
{
    membe_t *m = self;
    if (!m)
        return;
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        cell_t *c = s->lru_head;
        while (c) {
            cell_t *nx = c->lru_next;
            fdn__free(c->raw);
            c = nx;
        }
        fdn__free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    fdn__free(m->shards_raw);
    fdn__free(m);
}

static const fdn__limiter_backend_t mem_backend = {
    mem_apply, mem_forget, mem_sweep, mem_stats, mem_destroy,
};

static int mem_create(membe_t **out, uint32_t nshards, uint32_t max_keys,
                      fdn_limit_overflow_t policy, int64_t interval_ns, int64_t now, int64_t wall)
{
    membe_t *m = fdn__calloc(1, sizeof(*m));
    if (!m)
        return FDN_ENOMEM;
    m->shards_raw = fdn__calloc(1, (size_t)nshards * sizeof(shard_t) + FDN_CACHELINE - 1);
    if (!m->shards_raw) {
        fdn__free(m);
        return FDN_ENOMEM;
    }
    m->shards = (shard_t *)(((uintptr_t)m->shards_raw + FDN_CACHELINE - 1) &
                            ~(uintptr_t)(FDN_CACHELINE - 1));
    m->cap = max_keys / nshards ? max_keys / nshards : 1;
    m->policy = policy;
    atomic_init(&m->interval_ns, interval_ns);
    for (uint32_t i = 0; i < nshards; i++) {
        shard_t *s = &m->shards[i];
        s->nbuckets = 16;
        s->buckets = fdn__calloc(s->nbuckets, sizeof(cell_t *));
        s->next_sweep = now + interval_ns;
        s->next_sweep_wall = wall + interval_ns;
        s->min_exp_mono = s->min_exp_wall = INT64_MAX;
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            fdn__free(s->buckets);
            m->nshards = i;
            mem_destroy(m);
            return FDN_ENOMEM;
        }
        m->nshards = i + 1;
    }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * limiter
 * ---------------------------------------------------------------------------------------- */

typedef struct named_rule {
    char name[RULE_NAME_MAX];
    fdn_limit_rule_t rule;
    /* the same rule for lock-free readers (see DESIGN): algo, limit, period_ms, burst */
    _Atomic int64_t mirror[4];
} named_rule_t;

struct fdn_limiter {
    const fdn__limiter_backend_t *be;
    void *be_self;
    fdn_clock_t *clock;
    fdn_telemetry_t *telemetry;
    _Atomic bool shadow;
    _Atomic bool running;
    pthread_mutex_t rules_mu;
    named_rule_t rules[MAX_RULES];
    size_t nrules;
    _Atomic uint64_t rules_seq; /* odd while rules_mu's holder changes the table */
};

void fdn__limiter_probes(fdn_limiter_t *l, uint64_t *lookups, uint64_t *probes)
{
    *lookups = *probes = 0;
    if (l == NULL || l->be != &mem_backend)
        return;
    membe_t *m = l->be_self;
    for (uint32_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shards[i];
        pthread_mutex_lock(&s->mu);
        *lookups += s->lookups;
        *probes += s->probes;
        pthread_mutex_unlock(&s->mu);
    }
}

int fdn_limiter_create(fdn_limiter_t **out, const fdn_limiter_opts_t *opts)
{
    fdn_limiter_opts_t d = FDN_LIMITER_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (opts == NULL)
        opts = &d;
    if (opts->version < 1 || opts->shards == 0 || (opts->shards & (opts->shards - 1)) != 0 ||
        opts->shards > 65536 || opts->max_keys == 0 || opts->cleanup_interval_ms <= 0 ||
        opts->cleanup_interval_ms > INT64_MAX / NS_PER_MS / 4)
        return FDN_EINVAL;
    fdn_limit_overflow_t policy = FDN_LIMIT_OVERFLOW_DENY_NEW;
    if (opts->version >= 2) {
        if (opts->overflow_policy != FDN_LIMIT_OVERFLOW_DENY_NEW &&
            opts->overflow_policy != FDN_LIMIT_OVERFLOW_EVICT_LRU)
            return FDN_EINVAL;
        policy = opts->overflow_policy;
    }
    fdn_limiter_t *l = fdn__calloc(1, sizeof(*l));
    if (!l)
        return FDN_ENOMEM;
    l->clock = opts->clock;
    l->telemetry = opts->telemetry;
    membe_t *m;
    int rc =
        mem_create(&m, opts->shards, opts->max_keys, policy, opts->cleanup_interval_ms * NS_PER_MS,
                   fdn_clock_mono_ns(opts->clock), fdn_clock_wall_ns(opts->clock));
    if (rc) {
        fdn__free(l);
        return rc;
    }
    if (pthread_mutex_init(&l->rules_mu, NULL) != 0) {
        mem_destroy(m);
        fdn__free(l);
        return FDN_ENOMEM;
    }
    l->be = &mem_backend;
    l->be_self = m;
    atomic_init(&l->shadow, opts->shadow);
    atomic_init(&l->running, true);
    static const struct {
        const char *name;
        int64_t period_ms, limit;
    } defaults[] = {
        {"api_calls", 60000, 100}, {"db_queries", 60000, 500}, {"file_operations", 1000, 10}};
    for (size_t i = 0; i < FDN_ARRAY_LEN(defaults); i++) {
        fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, defaults[i].limit, defaults[i].period_ms, 0};
        fdn_limiter_set_rule(l, defaults[i].name, &r);
    }
    *out = l;
    return 0;
}

void fdn_limiter_destroy(fdn_limiter_t *l)
{
    if (l == NULL)
        return;
    l->be->destroy(l->be_self);
    pthread_mutex_destroy(&l->rules_mu);
    fdn__free(l);
}

static int service_start(void *state, void *ctx, fdn_error_t *err)
{
    fdn_limiter_t *l = state;
    (void)ctx;
    (void)err;
    if (l == NULL)
        return FDN_EINVAL;
    atomic_store_explicit(&l->running, true, memory_order_release);
    return 0;
}

static void service_stop(void *state)
{
    fdn_limiter_t *l = state;
    if (l)
        atomic_store_explicit(&l->running, false, memory_order_release);
}

static int service_health(void *state)
{
    fdn_limiter_t *l = state;
    if (l == NULL)
        return FDN_EINVAL;
    return atomic_load_explicit(&l->running, memory_order_acquire) ? 0 : FDN_EUNAVAILABLE;
}

/* rule_ok: the rule comes from the rule table, which only holds validated rules.
 * mono: the monotonic time of this call already read by the caller on the limiter's own
 * time source, or FDN__NOW_UNSET. */
static int run_op_v(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                    bool rule_ok, int64_t mono, int64_t cost, fdn__limit_op_t op,
                    fdn_limit_result_t *res, fdn_limit_reservation_t *rsv)
{
    if (l == NULL || key == NULL || keylen == 0 || keylen > MAX_KEYLEN || cost < 1 ||
        cost > LIM_MAX || (!rule_ok && fdn_limit_rule_validate(rule, NULL) != 0))
        return FDN_EINVAL;
    if (FDN_UNLIKELY(!atomic_load_explicit(&l->running, memory_order_acquire)))
        return FDN_EUNAVAILABLE;
    fdn__limit_now_t now;
    now.clock = l->clock;
    if (rule->algo == FDN_LIMIT_FIXED_WINDOW) {
        now.wall_ns = fdn_clock_wall_ns(l->clock);
        now.mono_ns = FDN__NOW_UNSET;
    } else {
        now.mono_ns = mono != FDN__NOW_UNSET ? mono : fdn_clock_mono_ns(l->clock);
        now.wall_ns = FDN__NOW_UNSET;
    }
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    int rc = l->be->apply(l->be_self, key, keylen, rule, cost, op, &now, res, rsv);
    if (rc == FDN_ELIMITER && op == FDN__LIMIT_CHECK &&
        atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
        /* dry run: the key cannot be stored, but nothing is enforced */
        res->allowed = true;
        res->shadow_denied = true;
        return 0;
    }
    if (rc)
        return rc;
    if (op != FDN__LIMIT_CHECK)
        return res->allowed || op == FDN__LIMIT_CANCEL ? 0 : FDN_ERATE_LIMITED;
    if (l->telemetry) {
        fdn_telemetry_meta_t meta[1] = {{"algorithm", fdn_limit_algo_name(rule->algo)}};
        fdn_telemetry_emit_counter(l->telemetry,
                                   res->allowed ? "foundation.rate_limiter.request_allowed"
                                                : "foundation.rate_limiter.request_denied",
                                   meta, 1);
    }
    if (res->allowed)
        return 0;
    if (atomic_load_explicit(&l->shadow, memory_order_relaxed)) {
        res->allowed = true;
        res->shadow_denied = true;
        return 0;
    }
    return FDN_ERATE_LIMITED;
}

static int run_op(fdn_limiter_t *l, const char *key, size_t keylen, const fdn_limit_rule_t *rule,
                  int64_t cost, fdn__limit_op_t op, fdn_limit_result_t *res,
                  fdn_limit_reservation_t *rsv)
{
    return run_op_v(l, key, keylen, rule, false, FDN__NOW_UNSET, cost, op, res, rsv);
}

int fdn_limiter_check(fdn_limiter_t *l, const char *key, size_t keylen,
                      const fdn_limit_rule_t *rule, int64_t cost, unsigned flags,
                      fdn_limit_result_t *res)
{
    if (flags & ~FDN_LIMIT_PEEK)
        return FDN_EINVAL;
    return run_op(l, key, keylen, rule, cost,
                  (flags & FDN_LIMIT_PEEK) ? FDN__LIMIT_PEEK : FDN__LIMIT_CHECK, res, NULL);
}

int fdn_limiter_check_rate(fdn_limiter_t *l, const char *key, int64_t scale_ms, int64_t limit,
                           fdn_limit_result_t *res)
{
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, scale_ms, 0};
    if (key == NULL)
        return FDN_EINVAL;
    return run_op(l, key, strlen(key), &r, 1, FDN__LIMIT_CHECK, res, NULL);
}

int fdn_limiter_reserve(fdn_limiter_t *l, const char *key, size_t keylen,
                        const fdn_limit_rule_t *rule, int64_t cost, fdn_limit_reservation_t *rsv,
                        fdn_limit_result_t *res)
{
    if (rsv == NULL)
        return FDN_EINVAL;
    memset(rsv, 0, sizeof(*rsv));
    fdn_limit_result_t tmp;
    if (res == NULL)
        res = &tmp;
    int rc = run_op(l, key, keylen, rule, cost, FDN__LIMIT_CHECK, res, rsv);
    /* something was taken when allowed, and for a fixed window also when denied */
    if ((rc == 0 || rc == FDN_ERATE_LIMITED) &&
        (res->allowed || rule->algo == FDN_LIMIT_FIXED_WINDOW) && !res->shadow_denied) {
        rsv->cost = cost;
        rsv->active = true;
    }
    return rc;
}

int fdn_limiter_cancel(fdn_limiter_t *l, const char *key, size_t keylen,
                       const fdn_limit_rule_t *rule, fdn_limit_reservation_t *rsv)
{
    if (rsv == NULL)
        return FDN_EINVAL;
    if (!rsv->active)
        return FDN_ENOENT;
    int rc = run_op(l, key, keylen, rule, rsv->cost, FDN__LIMIT_CANCEL, NULL, rsv);
    if (rc == 0 || rc == FDN_ENOENT)
        rsv->active = false;
    return rc;
}

int fdn_limiter_reset(fdn_limiter_t *l, const char *key, size_t keylen)
{
    if (l == NULL || key == NULL || keylen == 0 || keylen > MAX_KEYLEN)
        return FDN_EINVAL;
    return l->be->forget(l->be_self, key, keylen);
}

size_t fdn_limiter_sweep(fdn_limiter_t *l)
{
    if (l == NULL)
        return 0;
    fdn__limit_now_t now = {FDN__NOW_UNSET, FDN__NOW_UNSET, l->clock};
    return l->be->sweep(l->be_self, &now);
}

int fdn_limiter_set_cleanup_interval(fdn_limiter_t *l, int64_t ms)
{
    if (l == NULL || ms <= 0 || ms > INT64_MAX / NS_PER_MS / 4)
        return FDN_EINVAL;
    membe_t *m = l->be_self;
    atomic_store_explicit(&m->interval_ns, ms * NS_PER_MS, memory_order_relaxed);
    return 0;
}

void fdn_limiter_set_shadow(fdn_limiter_t *l, bool shadow)
{
    if (l)
        atomic_store_explicit(&l->shadow, shadow, memory_order_relaxed);
}

int fdn_limiter_stats(fdn_limiter_t *l, fdn_limiter_stats_t *out)
{
    if (l == NULL || out == NULL)
        return FDN_EINVAL;
    l->be->stats(l->be_self, out);
    return 0;
}

/* ---- named rules ------------------------------------------------------------------------ */

static named_rule_t *rule_find_locked(fdn_limiter_t *l, const char *name)
{
    for (size_t i = 0; i < l->nrules; i++)
        if (strcmp(l->rules[i].name, name) == 0)
            return &l->rules[i];
    return NULL;
}

/* rules_mu held: open and close a change of the table (seqlock writer side) */
static uint64_t rules_write_begin(fdn_limiter_t *l)
{
    uint64_t s = atomic_load_explicit(&l->rules_seq, memory_order_relaxed);
    atomic_store_explicit(&l->rules_seq, s + 1, memory_order_relaxed);
    FDN_SEQ_FENCE(memory_order_release);
    return s;
}

static void rules_write_end(fdn_limiter_t *l, uint64_t s)
{
    atomic_store_explicit(&l->rules_seq, s + 2, memory_order_release);
}

/* rules_mu held, inside a write: set slot r's rule and its mirror */
static void rule_store_locked(named_rule_t *r, const fdn_limit_rule_t *rule)
{
    r->rule = *rule;
    atomic_store_explicit(&r->mirror[0], (int64_t)rule->algo, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[1], rule->limit, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[2], rule->period_ms, FDN_SEQ_ST);
    atomic_store_explicit(&r->mirror[3], rule->burst, FDN_SEQ_ST);
}

int fdn_limiter_set_rule(fdn_limiter_t *l, const char *name, const fdn_limit_rule_t *rule)
{
    if (l == NULL || name == NULL || name[0] == '\0' || strlen(name) >= RULE_NAME_MAX ||
        fdn_limit_rule_validate(rule, NULL) != 0)
        return FDN_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&l->rules_mu);
    uint64_t seq = rules_write_begin(l);
    named_rule_t *r = rule_find_locked(l, name);
    if (r == NULL) {
        if (l->nrules == MAX_RULES) {
            rc = FDN_ENOMEM;
        } else {
            r = &l->rules[l->nrules++];
            memcpy(r->name, name, strlen(name) + 1);
        }
    }
    if (r)
        rule_store_locked(r, rule);
    rules_write_end(l, seq);
    pthread_mutex_unlock(&l->rules_mu);
    return rc;
}

int fdn_limiter_get_rule(fdn_limiter_t *l, const char *name, fdn_limit_rule_t *out)
{
    if (l == NULL || name == NULL || out == NULL)
        return FDN_EINVAL;
    pthread_mutex_lock(&l->rules_mu);
    named_rule_t *r = rule_find_locked(l, name);
    if (r)
        *out = r->rule;
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

int fdn_limiter_remove_rule(fdn_limiter_t *l, const char *name)
{
    if (l == NULL || name == NULL)
        return FDN_EINVAL;
    pthread_mutex_lock(&l->rules_mu);
    uint64_t seq = rules_write_begin(l);
    named_rule_t *r = rule_find_locked(l, name);
    if (r) {
        const named_rule_t *last = &l->rules[l->nrules - 1];
        if (r != last) {
            memcpy(r->name, last->name, sizeof(r->name));
            rule_store_locked(r, &last->rule);
        }
        l->nrules--;
    }
    rules_write_end(l, seq);
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

/* A rule cache holds (rules_seq << 8) | CACHE_VALID | slot; 0 is empty. */
#define CACHE_VALID 0x80u
#define CACHE_SLOT  0x3fu
_Static_assert(MAX_RULES <= CACHE_SLOT + 1, "slot index fits the cache");

/* Resolve rule_name into *out, through *cache when it is still current (see DESIGN). */
static int rule_resolve(fdn_limiter_t *l, const char *name, fdn__limiter_rule_cache_t *cache,
                        fdn_limit_rule_t *out)
{
    if (cache != NULL) {
        uint64_t c = atomic_load_explicit(cache, memory_order_relaxed);
        uint64_t s1 = atomic_load_explicit(&l->rules_seq, memory_order_acquire);
        if ((c & CACHE_VALID) != 0 && (c >> 8) == s1) {
            const named_rule_t *r = &l->rules[c & CACHE_SLOT];
            int64_t v[4];
            for (int i = 0; i < 4; i++)
                v[i] = atomic_load_explicit(&r->mirror[i], FDN_SEQ_LD);
            FDN_SEQ_FENCE(memory_order_acquire);
            if (atomic_load_explicit(&l->rules_seq, memory_order_relaxed) == s1) {
                *out = (fdn_limit_rule_t){(fdn_limit_algo_t)v[0], v[1], v[2], v[3]};
                return 0;
            }
        }
    }
    pthread_mutex_lock(&l->rules_mu);
    named_rule_t *r = rule_find_locked(l, name);
    if (r) {
        *out = r->rule;
        if (cache != NULL) {
            /* rules_seq is stable (and even) under rules_mu */
            uint64_t s = atomic_load_explicit(&l->rules_seq, memory_order_relaxed);
            atomic_store_explicit(cache, (s << 8) | CACHE_VALID | (uint64_t)(r - l->rules),
                                  memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&l->rules_mu);
    return r ? 0 : FDN_ENOENT;
}

static int check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                       int64_t cost, fdn_limit_result_t *res, fdn__limiter_rule_cache_t *cache,
                       int64_t mono)
{
    if (l == NULL || rule_name == NULL)
        return FDN_EINVAL;
    fdn_limit_rule_t rule;
    int rc = rule_resolve(l, rule_name, cache, &rule);
    if (rc)
        return rc;
    if (identifier == NULL)
        identifier = "";
    size_t nl = strlen(rule_name), il = strlen(identifier);
    if (nl + 1 + il > MAX_KEYLEN)
        return FDN_EINVAL;
    char buf[256];
    char *key = nl + 1 + il <= sizeof(buf) ? buf : fdn__malloc(nl + 1 + il);
    if (!key)
        return FDN_ENOMEM;
    memcpy(key, rule_name, nl);
    key[nl] = ':';
    memcpy(key + nl + 1, identifier, il);
    rc = run_op_v(l, key, nl + 1 + il, &rule, true, mono, cost, FDN__LIMIT_CHECK, res, NULL);
    if (key != buf)
        fdn__free(key);
    return rc;
}

int fdn_limiter_check_named(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                            int64_t cost, fdn_limit_result_t *res)
{
    return check_named(l, rule_name, identifier, cost, res, NULL, FDN__NOW_UNSET);
}

/* The system clock is the one non-manual clock; a manual clock is its own time source. */
static bool same_time_source(const fdn_clock_t *a, const fdn_clock_t *b)
{
    return a == b || (!fdn_clock_is_manual(a) && !fdn_clock_is_manual(b));
}

int fdn__limiter_check_named_cached(fdn_limiter_t *l, const char *rule_name, const char *identifier,
                                    int64_t cost, fdn_limit_result_t *res,
                                    fdn__limiter_rule_cache_t *cache, const fdn_clock_t *clock,
                                    int64_t mono_ns)
{
    int64_t mono = FDN__NOW_UNSET;
    if (l != NULL && mono_ns != FDN__NOW_UNSET && same_time_source(clock, l->clock))
        mono = mono_ns;
    return check_named(l, rule_name, identifier, cost, res, cache, mono);
}

int fdn_limiter_check_entity(fdn_limiter_t *l, const char *entity, const char *operation,
                             int64_t limit, int64_t window_ms, fdn_limit_result_t *res)
{
    if (entity == NULL)
        entity = "";
    if (operation == NULL)
        operation = "";
    size_t el = strlen(entity), ol = strlen(operation);
    if (el + ol + 40 > MAX_KEYLEN)
        return FDN_EINVAL;
    char buf[256];
    size_t cap = el + ol + 40;
    char *key = cap <= sizeof(buf) ? buf : fdn__malloc(cap);
    if (!key)
        return FDN_ENOMEM;
    int n = snprintf(key, cap, "foundation:%zu:", el);
    size_t kl = (size_t)n;
    memcpy(key + kl, entity, el);
    kl += el;
    key[kl++] = ':';
    memcpy(key + kl, operation, ol);
    kl += ol;
    fdn_limit_rule_t r = {FDN_LIMIT_FIXED_WINDOW, limit, window_ms, 0};
    int rc = run_op(l, key, kl, &r, 1, FDN__LIMIT_CHECK, res, NULL);
    if (key != buf)
        fdn__free(key);
    return rc;
}

static void service_destroy(void *state)
{
    fdn_limiter_destroy(state);
}

/* The supervisor's vtable of this service: the runtime (src/runtime/) supervises it through it. */
const fdn_service_ops_t fdn__limiter_service_ops = {service_start, service_stop, service_health,
                                                    NULL, service_destroy};
