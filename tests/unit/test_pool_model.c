/* Model-based test of the pool (issue 20): random sequences of non-blocking checkouts,
 * checkins, broken checkins, stale (second) checkins and failing creates on small pools
 * (size 0..3, max_overflow 0..3, lifo and fifo, with and without prefill and overflow TTL),
 * each step checked against a small reference model: the return code, which connection a
 * checkout lends (the idle order), every count of fdn_pool_status and its state.
 *
 * The model's state is poolboy's: with `lent` leases out, `overflow` when
 * size <= lent < size + max_overflow, `full` when lent == size + max_overflow, else `ready`.
 *
 * The seed is printed; set FDN_POOL_MODEL_SEED to replay a run. Single-threaded on a manual
 * clock that never moves, so every step is deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fdn/pool.h>

#define MS           1000000LL
#define STEPS        250 /* per pool; 15 sizes x 4 variants x 250 = 15,000 steps */
#define MAX_HELD     8   /* size + max_overflow <= 6 */
#define MAX_STALE    32
#define LEASE_WINDOW 16 /* a stale handle is refused while fewer leases than this followed */
#define MAX_CONNS    (2 * STEPS + 8)

/* ------------------------------------------------------------------------------------------
 * The connections the pool makes
 * ------------------------------------------------------------------------------------------ */

typedef struct conns {
    int next_id;    /* ids are 1, 2, ... in creation order */
    int live;       /* created and not destroyed */
    bool fail_next; /* the next create fails */
} conns_t;

typedef struct conn {
    int id;
} conn_t;

static int m_create(void **out, void *user)
{
    conns_t *c = user;
    if (c->fail_next) {
        c->fail_next = false;
        return FDN_ECONNREFUSED;
    }
    conn_t *k = malloc(sizeof(*k));
    if (k == NULL)
        return FDN_ENOMEM;
    k->id = ++c->next_id;
    c->live++;
    *out = k;
    return 0;
}

static void m_destroy(void *conn, void *user)
{
    conns_t *c = user;
    c->live--;
    free(conn);
}

/* ------------------------------------------------------------------------------------------
 * The reference model
 * ------------------------------------------------------------------------------------------ */

typedef struct model {
    int size, max_overflow;
    bool fifo;
    bool keep_overflow; /* overflow_ttl_ms > 0: returned overflow workers stay idle */
    bool prefill;
    int idle[MAX_CONNS]; /* idle connection ids, idle[0] is lent next */
    int nidle;
    int lent;
    bool fail_next;
    int next_id;
    bool alive[MAX_CONNS + 1];
    int gen[MAX_CONNS + 1]; /* leases of each connection so far */
    uint64_t checkouts, timeouts, full, created, destroyed, broken, create_failures;
} model_t;

typedef struct lease {
    fdn_pool_worker_t *h;
    int id;
    int gen; /* which lease of connection `id` this handle names */
} lease_t;

static int model_workers(const model_t *m)
{
    return m->nidle + m->lent;
}

static fdn_pool_state_t model_state(const model_t *m)
{
    if (m->lent >= m->size + m->max_overflow)
        return FDN_POOL_FULL;
    if (m->lent >= m->size)
        return FDN_POOL_OVERFLOW;
    return FDN_POOL_READY;
}

/* create callback as the model sees it: 0 or the id made, -1 when it fails */
static int model_create(model_t *m)
{
    if (m->fail_next) {
        m->fail_next = false;
        m->create_failures++;
        return -1;
    }
    int id = ++m->next_id;
    m->alive[id] = true;
    m->created++;
    return id;
}

/* A worker becomes idle: lifo lends it next, fifo after every other idle one. */
static void model_idle_push(model_t *m, int id)
{
    if (m->fifo) {
        m->idle[m->nidle++] = id;
    } else {
        memmove(&m->idle[1], &m->idle[0], (size_t)m->nidle * sizeof(m->idle[0]));
        m->idle[0] = id;
        m->nidle++;
    }
}

static int model_idle_pop(model_t *m)
{
    int id = m->idle[0];
    m->nidle--;
    memmove(&m->idle[0], &m->idle[1], (size_t)m->nidle * sizeof(m->idle[0]));
    return id;
}

/* ------------------------------------------------------------------------------------------
 * One run
 * ------------------------------------------------------------------------------------------ */

typedef struct run {
    uint64_t seed; /* the whole test's seed, for the failure message */
    uint64_t rng;
    model_t m;
    conns_t conns;
    fdn_pool_t *p;
    lease_t held[MAX_HELD];
    int nheld;
    lease_t stale[MAX_STALE];
    int nstale;
    int step;
    const char *op;
} run_t;

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int pick(run_t *r, int n)
{
    return (int)(next_rand(&r->rng) % (uint64_t)n);
}

#define EXPECT(r, what, got, want)                                                                 \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_)                                                                         \
            fail_msg("seed %" PRIu64 ", pool size %d max_overflow %d %s%s%s, step %d (%s): %s is " \
                     "%lld, the model says %lld",                                                  \
                     (r)->seed, (r)->m.size, (r)->m.max_overflow, (r)->m.fifo ? "fifo" : "lifo",   \
                     (r)->m.keep_overflow ? " overflow_ttl" : "",                                  \
                     (r)->m.prefill ? " prefill" : "", (r)->step, (r)->op, what, got_, want_);     \
    } while (0)

static void check_status(run_t *r)
{
    const model_t *m = &r->m;
    fdn_pool_status_t s;
    EXPECT(r, "fdn_pool_status", fdn_pool_status(r->p, &s), 0);
    EXPECT(r, "state", s.state, model_state(m));
    EXPECT(r, "in_use", s.in_use, m->lent);
    EXPECT(r, "available", s.available, m->nidle);
    EXPECT(r, "workers", s.workers, model_workers(m));
    EXPECT(r, "overflow", s.overflow, model_workers(m) > m->size ? model_workers(m) - m->size : 0);
    EXPECT(r, "waiters", s.waiters, 0);
    EXPECT(r, "checkouts", s.checkouts, m->checkouts);
    EXPECT(r, "timeouts", s.timeouts, m->timeouts);
    EXPECT(r, "full", s.full, m->full);
    EXPECT(r, "created", s.created, m->created);
    EXPECT(r, "destroyed", s.destroyed, m->destroyed);
    EXPECT(r, "broken", s.broken, m->broken);
    EXPECT(r, "create_failures", s.create_failures, m->create_failures);
    EXPECT(r, "connections alive", r->conns.live, model_workers(m));
}

static void remember_stale(run_t *r, lease_t l)
{
    if (r->nstale < MAX_STALE)
        r->stale[r->nstale++] = l;
    else
        r->stale[pick(r, MAX_STALE)] = l;
}

static void op_checkout(run_t *r)
{
    model_t *m = &r->m;
    r->op = "checkout";
    fdn_pool_worker_t *h = NULL;
    int rc = fdn_pool_checkout(r->p, &h, 0, NULL);
    int want_id;
    if (m->nidle > 0) {
        want_id = model_idle_pop(m);
    } else if (model_workers(m) < m->size + m->max_overflow) {
        want_id = model_create(m);
    } else {
        m->full++; /* poolboy's `full`: a checkout that does not wait */
        EXPECT(r, "checkout's return", rc, FDN_EBUSY);
        return;
    }
    if (want_id < 0) {
        EXPECT(r, "checkout's return", rc, FDN_ECONNREFUSED);
        return;
    }
    EXPECT(r, "checkout's return", rc, 0);
    EXPECT(r, "lent connection", ((conn_t *)fdn_pool_worker_conn(h))->id, want_id);
    m->lent++;
    m->checkouts++;
    m->gen[want_id]++;
    r->held[r->nheld++] = (lease_t){.h = h, .id = want_id, .gen = m->gen[want_id]};
}

static void op_checkin(run_t *r, bool broken)
{
    model_t *m = &r->m;
    r->op = broken ? "checkin_broken" : "checkin";
    int i = pick(r, r->nheld);
    lease_t l = r->held[i];
    r->held[i] = r->held[--r->nheld];
    int rc = broken ? fdn_pool_checkin_broken(r->p, l.h) : fdn_pool_checkin(r->p, l.h);
    EXPECT(r, "checkin's return", rc, 0);
    m->lent--;
    if (broken) {
        m->alive[l.id] = false;
        m->destroyed++;
        m->broken++;
        if (model_workers(m) < m->size) { /* the returning thread refills to size */
            int id = model_create(m);
            if (id > 0)
                model_idle_push(m, id);
        }
    } else if (model_workers(m) + 1 > m->size && !m->keep_overflow) {
        m->alive[l.id] = false; /* an overflow worker: destroyed at checkin (poolboy) */
        m->destroyed++;
    } else {
        model_idle_push(m, l.id);
    }
    remember_stale(r, l);
}

/* A second checkin of a lease that ended is refused and changes nothing, as long as the
 * worker lives (using a destroyed worker's handle is undefined) and fewer than LEASE_WINDOW
 * leases of it followed (after that many a stale handle names a slot again). */
static void op_stale_checkin(run_t *r)
{
    model_t *m = &r->m;
    r->op = "stale checkin";
    int i = pick(r, r->nstale);
    lease_t l = r->stale[i];
    if (!m->alive[l.id] || m->gen[l.id] - l.gen >= LEASE_WINDOW) {
        r->stale[i] = r->stale[--r->nstale];
        return;
    }
    bool broken = pick(r, 2) == 0;
    int rc = broken ? fdn_pool_checkin_broken(r->p, l.h) : fdn_pool_checkin(r->p, l.h);
    EXPECT(r, "stale checkin's return", rc, FDN_EINVAL);
}

static void run_pool(uint64_t seed, uint64_t run_seed, int size, int overflow, bool fifo,
                     bool prefill, bool keep_overflow)
{
    fdn_clock_t *clk = NULL;
    assert_int_equal(fdn_clock_manual_create(&clk, 1000 * MS, 0), 0);
    run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->seed = seed;
    r->rng = run_seed;
    r->m.size = size;
    r->m.max_overflow = overflow;
    r->m.fifo = fifo;
    r->m.keep_overflow = keep_overflow;
    r->m.prefill = prefill;
    r->op = "create";

    fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
    o.name = "model";
    o.size = size;
    o.max_overflow = overflow;
    o.strategy = fifo ? FDN_POOL_FIFO : FDN_POOL_LIFO;
    o.prefill = prefill;
    o.overflow_ttl_ms = keep_overflow ? 60000 : 0;
    o.create = m_create;
    o.destroy = m_destroy;
    o.user = &r->conns;
    o.clock = clk;
    assert_int_equal(fdn_pool_create(&r->p, &o, NULL), 0);
    if (prefill)
        for (int i = 0; i < size; i++)
            model_idle_push(&r->m, model_create(&r->m));
    check_status(r);

    for (r->step = 1; r->step <= STEPS; r->step++) {
        int roll = pick(r, 100);
        if (roll < 45) {
            op_checkout(r);
        } else if (roll < 80) {
            if (r->nheld > 0)
                op_checkin(r, false);
            else
                op_checkout(r);
        } else if (roll < 88) {
            if (r->nheld > 0)
                op_checkin(r, true);
            else
                op_checkout(r);
        } else if (roll < 95) {
            r->op = "nothing";
            if (r->nstale > 0)
                op_stale_checkin(r);
        } else {
            r->op = "arm a failing create";
            r->m.fail_next = true;
            r->conns.fail_next = true;
        }
        check_status(r);
    }

    r->op = "checkin all";
    while (r->nheld > 0)
        op_checkin(r, false);
    check_status(r);
    fdn_pool_destroy(r->p);
    assert_int_equal(r->conns.live, 0);
    free(r);
    fdn_clock_destroy(clk);
}

static uint64_t test_seed(void)
{
    const char *env = getenv("FDN_POOL_MODEL_SEED");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        unsigned long long v = strtoull(env, &end, 0);
        if (end != NULL && *end == '\0')
            return (uint64_t)v;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pool_matches_model(void **state)
{
    (void)state;
    uint64_t seed = test_seed();
    print_message("pool model seed %" PRIu64 " (replay: FDN_POOL_MODEL_SEED=%" PRIu64 ")\n", seed,
                  seed);
    uint64_t s = seed;
    for (int size = 0; size <= 3; size++) {
        for (int overflow = 0; overflow <= 3; overflow++) {
            if (size == 0 && overflow == 0)
                continue;
            for (int variant = 0; variant < 4; variant++) {
                bool fifo = (variant & 1) != 0;
                bool keep_overflow = (variant & 2) != 0;
                bool prefill = (next_rand(&s) & 1) != 0;
                run_pool(seed, next_rand(&s), size, overflow, fifo, prefill, keep_overflow);
            }
        }
    }
}

/* The examples of issue 20, by hand. */
static void state_examples(void **state)
{
    (void)state;
    static const struct {
        int size, overflow, lent;
        fdn_pool_state_t want;
    } cases[] = {
        {1, 1, 0, FDN_POOL_READY},    {1, 1, 1, FDN_POOL_OVERFLOW}, {1, 1, 2, FDN_POOL_FULL},
        {0, 2, 0, FDN_POOL_OVERFLOW}, {0, 2, 1, FDN_POOL_OVERFLOW}, {0, 2, 2, FDN_POOL_FULL},
        {2, 0, 1, FDN_POOL_READY},    {2, 0, 2, FDN_POOL_FULL},     {3, 2, 4, FDN_POOL_OVERFLOW},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conns_t conns = {0};
        fdn_clock_t *clk = NULL;
        assert_int_equal(fdn_clock_manual_create(&clk, 1000 * MS, 0), 0);
        fdn_pool_opts_t o = FDN_POOL_OPTS_INIT;
        o.size = cases[i].size;
        o.max_overflow = cases[i].overflow;
        o.create = m_create;
        o.destroy = m_destroy;
        o.user = &conns;
        o.clock = clk;
        fdn_pool_t *p = NULL;
        assert_int_equal(fdn_pool_create(&p, &o, NULL), 0);
        fdn_pool_worker_t *h[MAX_HELD];
        for (int k = 0; k < cases[i].lent; k++)
            assert_int_equal(fdn_pool_checkout(p, &h[k], 0, NULL), 0);
        fdn_pool_status_t s;
        assert_int_equal(fdn_pool_status(p, &s), 0);
        if (s.state != cases[i].want)
            fail_msg("size %d max_overflow %d lent %d: state %s, want %s", cases[i].size,
                     cases[i].overflow, cases[i].lent, fdn_pool_state_name(s.state),
                     fdn_pool_state_name(cases[i].want));
        for (int k = 0; k < cases[i].lent; k++)
            assert_int_equal(fdn_pool_checkin(p, h[k]), 0);
        fdn_pool_destroy(p);
        assert_int_equal(conns.live, 0);
        fdn_clock_destroy(clk);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_examples),
        cmocka_unit_test(pool_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
