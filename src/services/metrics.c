/*
 * DESIGN: sharded metric primitives (counters, gauges, log-linear histograms).
 *
 * Threads: any thread may update or read any metric. Each thread claims a slot on first use
 * (a bitmap of TM_MAX_SLOTS under slot_mu, released by a pthread key destructor when the
 * thread exits, so slots are recycled and the live threads keep distinct low slots). A
 * thread's shard is slot % TM_SHARDS; up to TM_SHARDS live threads never share a cache line.
 * Threads beyond TM_MAX_SLOTS, or threads using metrics from TLS destructors after their slot
 * was released, share shards: that costs speed, never correctness, because every shard
 * update is atomic (counters) or done under the shard's spin lock (histograms).
 *
 * Counter: TM_SHARDS cells, each alone on a 128-byte pair of cache lines; add = one relaxed
 * compare-and-swap on the caller's cell (uncontended: as cheap as a fetch_add), saturating at
 * UINT64_MAX, as the sum is, so a counter never wraps to a small value (a scraper would read a
 * reset); value = relaxed sum of the cells (a counter read concurrently with adds returns some
 * value between the sums before and after them). Slots are claimed
 * lowest first, so a process with a few threads only ever writes the first cells: `shards_used`
 * (the highest shard any slot claim handed out, + 1; never lowered, at least 1 for
 * fdn_counter_set's cell 0) bounds the sum, and a read touches those cells only (a scrape of
 * ~60 counters read 16 line pairs each: ~120 KB of cache per GET /metrics). It is raised in
 * slot_claim before the thread's first add, so an add that happens before a read is in a cell
 * the read sums (coherence of the one atomic); a cell above it has never been written.
 *
 * Gauge: one atomic int64 on its own line (the int64 or the double's bits); set is a store,
 * add is a fetch_add (int) or a CAS loop (double). Gauges are not sharded: "last writer wins"
 * has no meaning across shards.
 *
 * Histogram: TM_SHARDS lazily allocated shards (allocated by the first observation on that
 * shard, published with a CAS). Each shard holds count, sum, min, max and the bucket counts
 * and a spin lock. observe() and readers take the shard's lock, so a reader copies a shard
 * in one consistent state (count == sum of buckets, never a torn histogram); the lock is
 * uncontended unless threads share a shard or a reader is copying. Locks order: only one
 * shard lock is held at a time; no callback runs under it.
 *
 * Buckets: a finite value v is mapped by sign, binary exponent e (clamped to
 * [TM_HIST_EXP_MIN, TM_HIST_EXP_MIN + TM_HIST_EXPS)) and the top FDN_TELEMETRY_HIST_SUB_BITS bits
 * of the mantissa. A bucket spans [2^e (1 + s/16), 2^e (1 + (s+1)/16)); the reported quantile is
 * its midpoint clamped to [min, max], within 2^-5 of the exact value for |v| in
 * [2^-8, 2^56). Zero has its own bucket. Buckets are ordered by value (negatives first).
 *
 * `le` buckets (Prometheus histograms): a histogram may also carry up to TM_LE_MAX explicit
 * upper bounds, fixed at creation; observe() finds v's bound by binary search (outside the
 * lock) and counts it in the shard next to the log-linear bucket, under the same lock, so a
 * copy is consistent for both (count == the sum of the `le` counts + the +Inf overflow). The
 * exported cumulative counts are exact (v <= bound), unlike quantiles.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include <fdn/error.h>

#include "core/alloc.h"
#include "core/lock.h"
#include "services/telemetry_metrics.h"

#define TM_MAX_SLOTS 1024u

/* ------------------------------------------------------------------------------------ */
/* Thread slots                                                                          */

static fdn__mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slot_bits[TM_MAX_SLOTS / 64] FDN_GUARDED_BY(slot_mu);
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static int slot_key_ok;
static _Thread_local unsigned tls_slot FDN_TLS_IE; /* slot + 1; 0 = none yet */
/* the highest shard handed out + 1 (1..TM_SHARDS): the cells counter reads sum */
static _Atomic unsigned shards_used = 1;

/* Raise shards_used to cover shard `s` (before its first add). */
static void shards_cover(unsigned s)
{
    unsigned want = s + 1u, cur = atomic_load_explicit(&shards_used, memory_order_relaxed);
    while (cur < want &&
           !atomic_compare_exchange_weak_explicit(&shards_used, &cur, want, memory_order_release,
                                                  memory_order_relaxed)) {
    }
}

static void slot_release(void *p)
{
    unsigned s = (unsigned)(uintptr_t)p - 1u;
    fdn__mutex_lock(&slot_mu);
    if (s < TM_MAX_SLOTS)
        slot_bits[s / 64] &= ~((uint64_t)1 << (s % 64));
    fdn__mutex_unlock(&slot_mu);
}

static void slot_key_init(void)
{
    slot_key_ok = pthread_key_create(&slot_key, slot_release) == 0;
}

static unsigned slot_claim(void)
{
    pthread_once(&slot_once, slot_key_init);
    unsigned slot = TM_MAX_SLOTS;
    fdn__mutex_lock(&slot_mu);
    for (unsigned w = 0; w < TM_MAX_SLOTS / 64 && slot == TM_MAX_SLOTS; w++) {
        if (slot_bits[w] != UINT64_MAX) {
            unsigned b = (unsigned)__builtin_ctzll(~slot_bits[w]);
            slot_bits[w] |= (uint64_t)1 << b;
            slot = w * 64 + b;
        }
    }
    fdn__mutex_unlock(&slot_mu);
    if (slot < TM_MAX_SLOTS) {
        if (!slot_key_ok || pthread_setspecific(slot_key, (void *)(uintptr_t)(slot + 1)) != 0) {
            /* Cannot learn about the thread's exit: keep the slot (never recycled). */
        }
    } else {
        /* Out of slots: share by address of the TLS variable. */
        slot = (unsigned)(((uintptr_t)&tls_slot >> 6) % TM_SHARDS);
    }
    shards_cover(slot % TM_SHARDS);
    tls_slot = slot + 1;
    return slot % TM_SHARDS;
}

static inline unsigned shard_of_thread(void)
{
    unsigned s = tls_slot;
    if (FDN_LIKELY(s != 0))
        return (s - 1u) & (TM_SHARDS - 1u);
    return slot_claim();
}

unsigned fdn__tm_shard(void)
{
    return shard_of_thread();
}

/* ------------------------------------------------------------------------------------ */
/* Aligned allocation                                                                    */

void *fdn__tm_aligned_calloc(size_t size)
{
    size_t total = size + FDN_CACHELINE + sizeof(void *);
    unsigned char *raw = fdn__calloc(1, total);
    if (raw == NULL)
        return NULL;
    uintptr_t a =
        ((uintptr_t)raw + sizeof(void *) + FDN_CACHELINE - 1) & ~(uintptr_t)(FDN_CACHELINE - 1);
    void **slot = (void **)(a - sizeof(void *));
    *slot = raw;
    return (void *)a;
}

void fdn__tm_aligned_free(void *p)
{
    if (p == NULL)
        return;
    void **slot = (void **)((uintptr_t)p - sizeof(void *));
    fdn__free(*slot);
}

/* ------------------------------------------------------------------------------------ */
/* Counter                                                                               */

/* Cells are two cache lines apart: x86's adjacent-line prefetcher pulls 128-byte pairs, so
 * 64-byte spacing would still bounce lines between neighbouring shards. */
#define TM_CELL_BYTES (2 * FDN_CACHELINE)

typedef struct tm_cell {
    _Atomic uint64_t v;
    char pad[TM_CELL_BYTES - sizeof(uint64_t)];
} tm_cell_t;

struct fdn_counter {
    tm_cell_t cells[TM_SHARDS];
};

fdn_counter_t *fdn__counter_new(void)
{
    return fdn__tm_aligned_calloc(sizeof(fdn_counter_t));
}

void fdn__counter_free(fdn_counter_t *c)
{
    fdn__tm_aligned_free(c);
}

void fdn__counter_reset(fdn_counter_t *c)
{
    for (unsigned i = 0; i < TM_SHARDS; i++)
        atomic_store_explicit(&c->cells[i].v, 0, memory_order_relaxed);
}

void fdn_counter_add(fdn_counter_t *c, uint64_t n)
{
    if (FDN_UNLIKELY(c == NULL))
        return;
    /* saturating: a fetch_add past the top would wrap to a small value, read as a reset */
    _Atomic uint64_t *v = &c->cells[shard_of_thread()].v;
    uint64_t old = atomic_load_explicit(v, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(v, &old,
                                                  old > UINT64_MAX - n ? UINT64_MAX : old + n,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void fdn_counter_set(fdn_counter_t *c, uint64_t v)
{
    if (c == NULL)
        return;
    for (unsigned i = 1; i < TM_SHARDS; i++)
        atomic_store_explicit(&c->cells[i].v, 0, memory_order_relaxed);
    atomic_store_explicit(&c->cells[0].v, v, memory_order_relaxed);
}

void fdn_counter_inc(fdn_counter_t *c)
{
    fdn_counter_add(c, 1);
}

uint64_t fdn_counter_value(const fdn_counter_t *c)
{
    if (c == NULL)
        return 0;
    uint64_t sum = 0;
    unsigned n = atomic_load_explicit(&shards_used, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load_explicit(&((fdn_counter_t *)c)->cells[i].v, memory_order_relaxed);
        if (v > UINT64_MAX - sum)
            return UINT64_MAX; /* saturated, as each cell is */
        sum += v;
    }
    return sum;
}

/* ------------------------------------------------------------------------------------ */
/* Gauge                                                                                 */

struct fdn_gauge {
    _Atomic int64_t bits;
    bool is_double;
};

static int64_t dbl_bits(double d)
{
    int64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static double bits_dbl(int64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

fdn_gauge_t *fdn__gauge_new(bool is_double)
{
    fdn_gauge_t *g = fdn__tm_aligned_calloc(sizeof(fdn_gauge_t));
    if (g != NULL) {
        g->is_double = is_double;
        atomic_init(&g->bits, is_double ? dbl_bits(0.0) : 0);
    }
    return g;
}

void fdn__gauge_free(fdn_gauge_t *g)
{
    fdn__tm_aligned_free(g);
}

void fdn__gauge_reset(fdn_gauge_t *g)
{
    atomic_store_explicit(&g->bits, g->is_double ? dbl_bits(0.0) : 0, memory_order_relaxed);
}

static int64_t dbl_to_i64(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 9.2233720368547758e18)
        return INT64_MAX;
    if (v <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)v;
}

void fdn_gauge_set(fdn_gauge_t *g, int64_t v)
{
    if (g == NULL)
        return;
    atomic_store_explicit(&g->bits, g->is_double ? dbl_bits((double)v) : v, memory_order_relaxed);
}

void fdn_gauge_set_double(fdn_gauge_t *g, double v)
{
    if (g == NULL || !isfinite(v))
        return;
    atomic_store_explicit(&g->bits, g->is_double ? dbl_bits(v) : dbl_to_i64(v),
                          memory_order_relaxed);
}

void fdn_gauge_add_double(fdn_gauge_t *g, double delta)
{
    if (g == NULL || !isfinite(delta))
        return;
    if (!g->is_double) {
        atomic_fetch_add_explicit(&g->bits, dbl_to_i64(delta), memory_order_relaxed);
        return;
    }
    int64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old, dbl_bits(bits_dbl(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void fdn_gauge_add(fdn_gauge_t *g, int64_t delta)
{
    if (g == NULL)
        return;
    if (g->is_double)
        fdn_gauge_add_double(g, (double)delta);
    else
        atomic_fetch_add_explicit(&g->bits, delta, memory_order_relaxed);
}

double fdn_gauge_value(const fdn_gauge_t *g)
{
    if (g == NULL)
        return 0.0;
    int64_t b = atomic_load_explicit(&((fdn_gauge_t *)g)->bits, memory_order_relaxed);
    return g->is_double ? bits_dbl(b) : (double)b;
}

int64_t fdn__gauge_int(const fdn_gauge_t *g)
{
    int64_t b = atomic_load_explicit(&((fdn_gauge_t *)g)->bits, memory_order_relaxed);
    return g->is_double ? dbl_to_i64(bits_dbl(b)) : b;
}

/* ------------------------------------------------------------------------------------ */
/* Histogram                                                                             */

typedef struct hshard {
    _Atomic unsigned lock;
    uint64_t count;
    double sum, min, max;
    uint64_t le[TM_LE_MAX + 1]; /* per `le` bound; [nle] = above every bound */
    uint64_t b[TM_HIST_BUCKETS];
} hshard_t;

struct fdn_histogram {
    _Atomic(hshard_t *) shards[TM_SHARDS];
    unsigned nle; /* immutable after creation */
    double le_div;
    double le[TM_LE_MAX];
    /* le_from[b]: the `le` index of the lowest value of log-linear bucket b; a value in b has
     * its index there or a little above (a sub-bucket is 1/16 of an octave wide, so with
     * bounds farther apart than that, at most one step): observe() starts from it instead
     * of searching every bound */
    uint8_t le_from[TM_HIST_BUCKETS];
    /* exemplars (fdn_histogram_observe_exemplar): nle + 1 entries made on first use, each
     * written under exlock (a short spin: one copy of ~120 bytes) */
    _Atomic(tm_exemplar_t *) ex;
    _Atomic unsigned exlock;
    /* for fdn__histogram_version (neither is touched by observe): resets and loads, counted
     * before they change the shards (and again after a load), and exemplars written */
    _Atomic uint64_t resets;
    _Atomic uint64_t exemplars;
};

/* The lock is held for a few instructions (one bucket update, or a reader's copy), so waiters
 * spin; but when the holder is preempted (more threads than cores), spinning would burn whole
 * time slices, so a waiter yields the CPU after a short spin. */
static void hlock(hshard_t *s)
{
    while (atomic_exchange_explicit(&s->lock, 1u, memory_order_acquire) != 0u) {
        unsigned spins = 0;
        while (atomic_load_explicit(&s->lock, memory_order_relaxed) != 0u) {
            if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
                spins = 0;
            }
        }
    }
}

static void hunlock(hshard_t *s)
{
    atomic_store_explicit(&s->lock, 0u, memory_order_release);
}

static unsigned mag_index(double a)
{
    uint64_t bits;
    memcpy(&bits, &a, sizeof(bits));
    int e = (int)((bits >> 52) & 0x7ffu) - 1023;
    unsigned sub = (unsigned)(bits >> (52 - FDN_TELEMETRY_HIST_SUB_BITS)) & (TM_HIST_SUB - 1u);
    int ei = e - TM_HIST_EXP_MIN;
    if (ei < 0)
        return 0;
    if (ei >= (int)TM_HIST_EXPS)
        return TM_HIST_HALF - 1u;
    return (unsigned)ei * TM_HIST_SUB + sub;
}

static double mag_mid(unsigned m)
{
    unsigned ei = m / TM_HIST_SUB, sub = m % TM_HIST_SUB;
    return ldexp(1.0 + ((double)sub + 0.5) / (double)TM_HIST_SUB, (int)ei + TM_HIST_EXP_MIN);
}

unsigned fdn__hist_bucket(double v)
{
    if (v == 0.0)
        return TM_HIST_HALF;
    if (v > 0.0)
        return TM_HIST_HALF + 1u + mag_index(v);
    return TM_HIST_HALF - 1u - mag_index(-v);
}

double fdn__hist_mid(unsigned b)
{
    if (b == TM_HIST_HALF)
        return 0.0;
    if (b > TM_HIST_HALF)
        return mag_mid(b - TM_HIST_HALF - 1u);
    return -mag_mid(TM_HIST_HALF - 1u - b);
}

fdn_histogram_t *fdn__histogram_new(void)
{
    return fdn__tm_aligned_calloc(sizeof(fdn_histogram_t));
}

bool fdn__le_bounds_valid(const double *bounds, size_t n)
{
    if (bounds == NULL || n == 0 || n > TM_LE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    return true;
}

/* A value <= every value of log-linear bucket b (for the clamped end buckets: 0 or -inf). */
static double bucket_floor(unsigned b)
{
    if (b == TM_HIST_HALF)
        return 0.0;
    if (b > TM_HIST_HALF) {
        unsigned m = b - TM_HIST_HALF - 1u;
        if (m == 0)
            return 0.0; /* holds every positive value below the range too */
        return ldexp(1.0 + (double)(m % TM_HIST_SUB) / (double)TM_HIST_SUB,
                     (int)(m / TM_HIST_SUB) + TM_HIST_EXP_MIN);
    }
    unsigned m = TM_HIST_HALF - 1u - b; /* values in (-upper(m), -lower(m)] */
    if (m + 1u >= TM_HIST_HALF)
        return -INFINITY;
    unsigned u = m + 1u;
    return -ldexp(1.0 + (double)(u % TM_HIST_SUB) / (double)TM_HIST_SUB,
                  (int)(u / TM_HIST_SUB) + TM_HIST_EXP_MIN);
}

fdn_histogram_t *fdn__histogram_new_le(const double *bounds, unsigned n, double div)
{
    fdn_histogram_t *h = fdn__histogram_new();
    if (h != NULL && n > 0 && fdn__le_bounds_valid(bounds, n)) {
        memcpy(h->le, bounds, n * sizeof(double));
        h->nle = n;
        h->le_div = div > 0.0 ? div : 1.0;
        for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
            h->le_from[b] = (uint8_t)fdn__le_index(bounds, n, bucket_floor(b));
    }
    return h;
}

unsigned fdn__le_index(const double *bounds, unsigned n, double v)
{
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (v <= bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void fdn__histogram_free(fdn_histogram_t *h)
{
    if (h == NULL)
        return;
    fdn__free(atomic_load_explicit(&h->ex, memory_order_relaxed));
    for (unsigned i = 0; i < TM_SHARDS; i++)
        fdn__tm_aligned_free(atomic_load_explicit(&h->shards[i], memory_order_relaxed));
    fdn__tm_aligned_free(h);
}

static hshard_t *shard_get(fdn_histogram_t *h, unsigned i)
{
    hshard_t *s = atomic_load_explicit(&h->shards[i], memory_order_acquire);
    if (FDN_LIKELY(s != NULL))
        return s;
    hshard_t *n = fdn__tm_aligned_calloc(sizeof(hshard_t));
    if (n == NULL)
        return NULL;
    atomic_init(&n->lock, 0u);
    if (atomic_compare_exchange_strong_explicit(&h->shards[i], &s, n, memory_order_acq_rel,
                                                memory_order_acquire))
        return n;
    fdn__tm_aligned_free(n);
    return s;
}

void fdn_histogram_observe(fdn_histogram_t *h, double v)
{
    if (FDN_UNLIKELY(h == NULL || !isfinite(v)))
        return;
    hshard_t *s = shard_get(h, shard_of_thread());
    if (FDN_UNLIKELY(s == NULL))
        return; /* OOM on the first observation of this shard: the value is dropped */
    unsigned b = fdn__hist_bucket(v);
    unsigned le = h->le_from[b];
    while (le < h->nle && v > h->le[le])
        le++;
    hlock(s);
    if (s->count == 0) {
        s->min = v;
        s->max = v;
    } else {
        if (v < s->min)
            s->min = v;
        if (v > s->max)
            s->max = v;
    }
    s->count++;
    s->sum += v;
    s->b[b]++;
    s->le[le]++;
    hunlock(s);
}

static bool utf8_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = fdn__utf8_seq((const unsigned char *)s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static void exlock(fdn_histogram_t *h)
{
    while (atomic_exchange_explicit(&h->exlock, 1u, memory_order_acquire) != 0u)
        sched_yield();
}

static void exunlock(fdn_histogram_t *h)
{
    atomic_store_explicit(&h->exlock, 0u, memory_order_release);
}

void fdn_histogram_observe_exemplar(fdn_histogram_t *h, double v, const char *label_name,
                                    const char *label_value)
{
    fdn_histogram_observe(h, v);
    if (h == NULL || !isfinite(v) || h->nle == 0 || label_name == NULL || label_value == NULL)
        return;
    size_t nl = strlen(label_name), vl = strnlen(label_value, FDN_TELEMETRY_EXEMPLAR_VALUE_MAX + 1);
    if (nl > FDN_TELEMETRY_EXEMPLAR_NAME_MAX || !fdn_telemetry_name_valid(label_name, nl, true) ||
        vl > FDN_TELEMETRY_EXEMPLAR_VALUE_MAX || !utf8_ok(label_value, vl))
        return;
    tm_exemplar_t *ex = atomic_load_explicit(&h->ex, memory_order_acquire);
    if (ex == NULL) {
        tm_exemplar_t *n = fdn__calloc(TM_LE_MAX + 1, sizeof(*n));
        if (n == NULL)
            return; /* the value counted; only its exemplar is lost */
        if (atomic_compare_exchange_strong_explicit(&h->ex, &ex, n, memory_order_acq_rel,
                                                    memory_order_acquire))
            ex = n;
        else
            fdn__free(n); /* another thread made them first: ex holds theirs */
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned le = fdn__le_index(h->le, h->nle, v);
    exlock(h);
    tm_exemplar_t *e = &ex[le];
    e->set = true;
    e->v = v;
    e->wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    memcpy(e->name, label_name, nl + 1);
    memcpy(e->value, label_value, vl);
    e->value[vl] = '\0';
    atomic_fetch_add_explicit(&h->exemplars, 1, memory_order_relaxed);
    exunlock(h);
}

bool fdn__histogram_exemplars(const fdn_histogram_t *h, tm_exemplar_t out[TM_LE_MAX + 1])
{
    fdn_histogram_t *m = (fdn_histogram_t *)(uintptr_t)h;
    tm_exemplar_t *ex = h != NULL ? atomic_load_explicit(&m->ex, memory_order_acquire) : NULL;
    if (ex == NULL)
        return false;
    exlock(m);
    memcpy(out, ex, (h->nle + 1u) * sizeof(*out));
    exunlock(m);
    return true;
}

/* Empty s (under its lock). */
static void shard_clear(hshard_t *s)
{
    s->count = 0;
    s->sum = s->min = s->max = 0.0;
    memset(s->b, 0, sizeof(s->b));
    memset(s->le, 0, sizeof(s->le));
}

void fdn_histogram_load(fdn_histogram_t *h, const uint64_t *cum, size_t n, double sum)
{
    if (h == NULL || cum == NULL || h->nle == 0 || n != h->nle + 1u || !isfinite(sum))
        return;
    for (size_t i = 1; i < n; i++)
        if (cum[i] < cum[i - 1])
            return; /* not cumulative */
    hshard_t *s = shard_get(h, 0);
    if (s == NULL)
        return; /* out of memory: the histogram is left as it was */
    /* counted first, as a reset is; the other shards hold nothing (a load is not mixed with
     * observe) and shard 0 goes from the old counts to the new ones under one hold of its
     * lock: a reader never sees the histogram empty in between (a scrape would show every
     * bucket at 0, which Prometheus takes for a counter reset) */
    atomic_fetch_add_explicit(&h->resets, 1, memory_order_seq_cst);
    for (unsigned i = 1; i < TM_SHARDS; i++) {
        hshard_t *o = atomic_load_explicit(&h->shards[i], memory_order_acquire);
        if (o == NULL)
            continue;
        hlock(o);
        shard_clear(o);
        hunlock(o);
    }
    hlock(s);
    /* zeroed under the lock: two loaders at once must not add up */
    shard_clear(s);
    s->count = cum[n - 1];
    s->sum = sum;
    uint64_t prev = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = cum[i] - prev;
        prev = cum[i];
        s->le[i] = k;
        /* the log-linear buckets (JSON quantiles) get each bucket's upper bound */
        double at = i < h->nle ? h->le[i] : h->le[h->nle - 1];
        s->b[fdn__hist_bucket(at)] += k;
        if (k > 0) {
            if (!any) /* (not min == max == 0: a bound may be 0) */
                s->min = at;
            any = true;
            s->max = at;
        }
    }
    hunlock(s);
    /* a load keeping the count (e.g. 0) may still change the sum: a new version */
    atomic_fetch_add_explicit(&h->resets, 1, memory_order_seq_cst);
}

void fdn__histogram_reset(fdn_histogram_t *h)
{
    /* counted first: a reader that sees a zeroed shard sees this too */
    atomic_fetch_add_explicit(&h->resets, 1, memory_order_seq_cst);
    for (unsigned i = 0; i < TM_SHARDS; i++) {
        hshard_t *s = atomic_load_explicit(&h->shards[i], memory_order_acquire);
        if (s == NULL)
            continue;
        hlock(s);
        shard_clear(s);
        hunlock(s);
    }
}

/* Merge h's shards into out; with buckets false the log-linear buckets are left alone (not
 * even zeroed): the Prometheus lines need only the `le` counts. */
static void hist_copy(const fdn_histogram_t *h, tm_hist_copy_t *out, bool buckets)
{
    if (buckets)
        memset(out, 0, sizeof(*out));
    out->count = 0;
    out->sum = out->min = out->max = 0.0;
    memset(out->le_n, 0, sizeof(out->le_n));
    out->nle = 0;
    out->le_div = 0.0;
    if (h == NULL)
        return;
    out->nle = h->nle;
    out->le_div = h->le_div;
    memcpy(out->le, h->le, sizeof(out->le));
    for (unsigned i = 0; i < TM_SHARDS; i++) {
        hshard_t *s =
            atomic_load_explicit(&((fdn_histogram_t *)h)->shards[i], memory_order_acquire);
        if (s == NULL)
            continue;
        hlock(s);
        if (s->count > 0) {
            if (out->count == 0) {
                out->min = s->min;
                out->max = s->max;
            } else {
                out->min = FDN_MIN(out->min, s->min);
                out->max = FDN_MAX(out->max, s->max);
            }
            out->count += s->count;
            out->sum += s->sum;
            if (buckets)
                for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
                    out->buckets[b] += s->b[b];
            for (unsigned b = 0; b < h->nle; b++)
                out->le_n[b] += s->le[b];
        }
        hunlock(s);
    }
}

void fdn__histogram_copy(const fdn_histogram_t *h, tm_hist_copy_t *out)
{
    hist_copy(h, out, true);
}

void fdn__histogram_copy_le(const fdn_histogram_t *h, tm_hist_copy_t *out)
{
    hist_copy(h, out, false);
}

double fdn__histogram_div(const fdn_histogram_t *h)
{
    return h != NULL && h->nle > 0 && h->le_div > 0.0 ? h->le_div : 1.0;
}

bool fdn__histogram_version(const fdn_histogram_t *h, tm_hist_version_t *out)
{
    fdn_histogram_t *m = (fdn_histogram_t *)(uintptr_t)h;
    memset(out, 0, sizeof(*out));
    if (h == NULL)
        return true;
    out->resets = atomic_load_explicit(&m->resets, memory_order_seq_cst);
    out->exemplars = atomic_load_explicit(&m->exemplars, memory_order_acquire);
    for (unsigned i = 0; i < TM_SHARDS; i++) {
        hshard_t *s = atomic_load_explicit(&m->shards[i], memory_order_acquire);
        if (s == NULL)
            continue;
        hlock(s);
        out->count += s->count;
        hunlock(s);
    }
    return atomic_load_explicit(&m->resets, memory_order_seq_cst) == out->resets;
}

double fdn__hist_copy_quantile(const tm_hist_copy_t *c, double q)
{
    if (c->count == 0 || !(q == q))
        return 0.0;
    if (q <= 0.0)
        return c->min;
    if (q >= 1.0)
        return c->max;
    double r = ceil(q * (double)c->count);
    uint64_t rank = r < 1.0 ? 1u : (uint64_t)r;
    if (rank > c->count)
        rank = c->count;
    uint64_t cum = 0;
    for (unsigned b = 0; b < TM_HIST_BUCKETS; b++) {
        cum += c->buckets[b];
        if (cum >= rank) {
            double m = fdn__hist_mid(b);
            if (m < c->min)
                m = c->min;
            if (m > c->max)
                m = c->max;
            return m;
        }
    }
    return c->max;
}

void fdn__hist_copy_stats(const tm_hist_copy_t *c, fdn_telemetry_hist_stats_t *out)
{
    out->count = c->count;
    out->sum = c->sum;
    out->min = c->min;
    out->max = c->max;
    out->p50 = fdn__hist_copy_quantile(c, 0.5);
    out->p90 = fdn__hist_copy_quantile(c, 0.9);
    out->p99 = fdn__hist_copy_quantile(c, 0.99);
    out->p999 = fdn__hist_copy_quantile(c, 0.999);
}

void fdn_histogram_stats(const fdn_histogram_t *h, fdn_telemetry_hist_stats_t *out)
{
    if (out == NULL)
        return;
    tm_hist_copy_t *c = fdn__malloc(sizeof(*c));
    if (c == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    fdn__histogram_copy(h, c);
    fdn__hist_copy_stats(c, out);
    fdn__free(c);
}

double fdn_histogram_quantile(const fdn_histogram_t *h, double q)
{
    tm_hist_copy_t *c = fdn__malloc(sizeof(*c));
    if (c == NULL)
        return 0.0;
    fdn__histogram_copy(h, c);
    double r = fdn__hist_copy_quantile(c, q);
    fdn__free(c);
    return r;
}
