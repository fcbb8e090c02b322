/*
 * DESIGN: the injectable clock.
 *
 * The system clock reads CLOCK_MONOTONIC / CLOCK_REALTIME. A manual clock holds both times
 * in atomics (readers take no lock) and a mutex + condition variable for waiters.
 * Waiters: fdn_clock_wait_until() sleeps on the clock's condition variable until the
 * monotonic time reaches the deadline or the kick sequence moves. advance/set/kick update
 * under the mutex and broadcast, so no wake-up is lost: a waiter checks the time and the
 * kick sequence under the same mutex it sleeps on.
 * The system clock's waiters use a CLOCK_MONOTONIC timed wait on one process-wide
 * condition variable; kicks there are rare (shutdown, new timed work), so the shared
 * condition variable costs nothing on hot paths.
 * Lock order: the clock mutex is a leaf; nothing else is taken while holding it.
 *
 * The system clock's reads (fdn_clock_mono_ns / fdn_clock_wall_ns with NULL or the system
 * clock) come from the CPU's time-stamp counter when it is safe, because a vDSO clock_gettime
 * costs ~29 ns on our VMs, over half of a limiter check, and a TSC read ~11 ns. The TSC is used
 * only on x86 with an invariant TSC (CPUID 0x80000007 EDX bit 8) while the kernel's own
 * clocksource is "tsc" (then CLOCK_MONOTONIC is itself a function of the same counter, which
 * the kernel has checked is synchronised across CPUs), and unless FDN_CLOCK_TSC=0 is in the
 * environment; otherwise every read is clock_gettime, as before.
 *
 * Mapping: time is a piecewise linear function of the TSC. A piece (tsc0, span, mono0, mult,
 * wall_off) maps tsc in [tsc0, tsc0 + span] (span: PIECE_NS = 1 ms of ticks) to
 * mono0 + (tsc - tsc0) * mult, and wall time is that plus wall_off (CLOCK_REALTIME minus
 * CLOCK_MONOTONIC when the piece was made). A read whose TSC lies past its piece makes the next
 * one: it samples CLOCK_MONOTONIC and CLOCK_REALTIME bracketed by two TSC reads (best of 4 tries;
 * the bracket is at most 2 us unless the machine is very loaded) and starts the new piece at the
 * sample with mono0 = max(sampled mono, the old piece's end value). So:
 *  - never backwards: every value a piece gives is <= its end value <= the next piece's mono0
 *    (a read whose TSC lies before its piece's start gets mono0), and within a piece time grows
 *    with the TSC; a read that happens after another (in any thread) sees the same piece or a
 *    later one. The read path takes the TSC without an lfence (22 ns with one here, 11 without),
 *    so the counter may be sampled a few cycles before the loads preceding it: within a thread
 *    a floor (the largest value the thread returned, thread-local) makes reads never decrease;
 *    across threads a later read can be lower by the CPU's reorder window, tens of
 *    nanoseconds (FDN__CLOCK_CROSS_THREAD_NS bounds it at 1 us in core/clock_int.h). The
 *    limiter's, breaker's and pool's arithmetic already takes a time older than the stored one
 *    as no time elapsed. Samples use lfence-ordered reads;
 *  - close to CLOCK_MONOTONIC: each piece starts at most a sampling error (half a bracket) away
 *    from it; a clock that ran fast starts the next piece at the old end value and a slope
 *    lowered to land on CLOCK_MONOTONIC at the piece's end; within a piece the error grows by at
 *    most the rate error times 1 ms. The rate (ns per tick) is measured over 1-2 s between two
 *    samples (100 us at start-up, refined at every piece during the first second); a
 *    measurement more than 1000 ppm from the current rate (a suspend, a migration) is dropped
 *    once and accepted when the next one agrees with it. Nominal agreement with CLOCK_MONOTONIC:
 *    a few microseconds; FDN__CLOCK_TSC_ERROR_NS (100 us) is the bound tests check, which only a
 *    machine too loaded to take a 2 us sample in 4 tries at start-up could approach;
 *  - wall time follows a CLOCK_REALTIME step within one piece: at most PIECE_NS (1 ms) after
 *    the step, since every read uses a piece sampled less than 1 ms (of TSC time) before it.
 * Pieces live in a ring of TSC_SLOTS slots, each behind its own sequence count (odd while it is
 * written); g_cur names the current slot and a generation. A writer claims a free slot that is
 * not current (busy flag), fills it, publishes it with a CAS of g_cur from the piece it was
 * computed from (a lost race drops it and reads the winner's) and frees the slot. Readers take
 * no lock and never wait for a writer: the current slot is never written, and a torn read of a
 * slot reused meanwhile fails its sequence check and is retried. A re-anchor costs three
 * clock_gettime calls once a millisecond per process while the clock is read.
 */
#include <fdn/clock.h>
#include <fdn/error.h>

#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#define FDN_CLOCK_HAVE_TSC 1
#else
#define FDN_CLOCK_HAVE_TSC 0
#endif

#include "core/clock_int.h"
#include "core/sync.h"
#include "core/tsan.h"
#include "core/alloc.h"
#include "core/assert.h"
#include "core/lock.h"

struct fdn_clock {
    bool manual;
    _Atomic int64_t mono;
    _Atomic int64_t wall;
    _Atomic uint64_t kick_seq;
    _Atomic int waiters;
    fdn__mutex_t mu;
    pthread_cond_t cv;
};

static fdn_clock_t g_system = {
    .manual = false,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static pthread_once_t g_system_once = PTHREAD_ONCE_INIT;

static void system_init(void)
{
    (void)fdn__cond_init_mono(&g_system.cv);
}

fdn_clock_t *fdn_clock_system(void)
{
    pthread_once(&g_system_once, system_init);
    return &g_system;
}

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the system clock on the TSC (see DESIGN) ---------------------------------------- */

#define TSC_SLOTS       16
#define PIECE_NS        1000000LL    /* a piece spans 1 ms of ticks */
#define SAMPLE_MAX_NS   2000         /* a sample bracketed more widely is not used for the rate */
#define RATE_SPAN_MIN   1000000LL    /* a rate is measured over at least 1 ms */
#define RATE_CALIBRATED 100000000LL  /* after 100 ms of span the 1000 ppm check applies */
#define BASE_ROLL_NS    1000000000LL /* the rate's base sample moves on every second */
#define RATE_PPM_MAX    1000

__extension__ typedef unsigned __int128 u128;

enum { TSC_UNKNOWN = 0, TSC_ON = 1, TSC_OFF = 2 };
static _Atomic int g_tsc; /* TSC_*; set once by tsc_init */
static pthread_once_t g_tsc_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_cur; /* (generation << 8) | slot of the current piece */

typedef struct piece {
    _Alignas(64) _Atomic uint64_t seq; /* odd while a writer fills the slot */
    /* what a read uses */
    _Atomic uint64_t tsc0, span, mult; /* mult: ns per tick, 32.32 fixed point */
    _Atomic int64_t mono0, wall_off;
    /* carried from piece to piece by writers: the measured rate and its base samples */
    _Atomic uint64_t rate, base_tsc, next_tsc;
    _Atomic int64_t base_mono, next_mono, rate_span;
    _Atomic uint32_t rejected; /* the last rate measurement was dropped */
    _Atomic uint32_t busy;     /* claimed by a writer (not part of the snapshot) */
} piece_t;

static piece_t g_piece[TSC_SLOTS];

typedef struct snap {
    uint64_t tsc0, span, mult, rate, base_tsc, next_tsc;
    int64_t mono0, wall_off, base_mono, next_mono, rate_span;
    uint32_t rejected;
} snap_t;

/* A TSC read ordered after every load before it (as the vDSO's): for samples, where the
 * bracket must hold the clock_gettime calls. */
static inline uint64_t tsc_read(void)
{
#if FDN_CLOCK_HAVE_TSC
    _mm_lfence();
    return __rdtsc();
#else
    return 0;
#endif
}

/* A plain TSC read (~11 ns here, against ~22 ns with the lfence): the read path's. */
static inline uint64_t tsc_read_fast(void)
{
#if FDN_CLOCK_HAVE_TSC
    return __rdtsc();
#else
    return 0;
#endif
}

/* The largest monotonic value this thread has returned (the per-thread floor, see DESIGN). */
static __thread int64_t t_floor __attribute__((tls_model("initial-exec"))) = INT64_MIN;

#define LD(f)    atomic_load_explicit(&p->f, FDN_SEQ_LD)
#define ST(f, v) atomic_store_explicit(&p->f, (v), FDN_SEQ_ST)

/* A consistent copy of the current piece; returns g_cur as read. */
static uint64_t snap_read(snap_t *o)
{
    for (;;) {
        uint64_t cur = atomic_load_explicit(&g_cur, memory_order_acquire);
        piece_t *p = &g_piece[cur & (TSC_SLOTS - 1)];
        uint64_t s1 = atomic_load_explicit(&p->seq, memory_order_acquire);
        if (s1 & 1)
            continue; /* a slot reused under a very late reader: g_cur has moved on */
        o->tsc0 = LD(tsc0);
        o->span = LD(span);
        o->mult = LD(mult);
        o->mono0 = LD(mono0);
        o->wall_off = LD(wall_off);
        o->rate = LD(rate);
        o->base_tsc = LD(base_tsc);
        o->next_tsc = LD(next_tsc);
        o->base_mono = LD(base_mono);
        o->next_mono = LD(next_mono);
        o->rate_span = LD(rate_span);
        o->rejected = LD(rejected);
        FDN_SEQ_FENCE(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s1)
            return cur;
    }
}

static void snap_write(piece_t *p, const snap_t *o)
{
    uint64_t s = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, s + 1, memory_order_relaxed);
    FDN_SEQ_FENCE(memory_order_release);
    ST(tsc0, o->tsc0);
    ST(span, o->span);
    ST(mult, o->mult);
    ST(mono0, o->mono0);
    ST(wall_off, o->wall_off);
    ST(rate, o->rate);
    ST(base_tsc, o->base_tsc);
    ST(next_tsc, o->next_tsc);
    ST(base_mono, o->base_mono);
    ST(next_mono, o->next_mono);
    ST(rate_span, o->rate_span);
    ST(rejected, o->rejected);
    atomic_store_explicit(&p->seq, s + 2, memory_order_release);
}

/* The piece's time at tsc (tsc0 <= tsc <= tsc0 + span). */
static inline int64_t snap_at(const snap_t *o, uint64_t tsc)
{
    return o->mono0 + (int64_t)(((tsc - o->tsc0) * o->mult) >> 32);
}

/* One sample: CLOCK_MONOTONIC and CLOCK_REALTIME between two TSC reads. */
typedef struct sample {
    uint64_t tsc;   /* the bracket's middle */
    uint64_t width; /* the bracket in ticks */
    int64_t mono;   /* the two monotonic reads' middle */
    int64_t wall_off;
} sample_t;

static void sample_once(sample_t *s)
{
    uint64_t t1 = tsc_read();
    int64_t m1 = read_ns(CLOCK_MONOTONIC);
    int64_t r = read_ns(CLOCK_REALTIME);
    int64_t m2 = read_ns(CLOCK_MONOTONIC);
    uint64_t t2 = tsc_read();
    s->tsc = t1 + (t2 - t1) / 2;
    s->width = t2 - t1;
    s->mono = m1 + (m2 - m1) / 2;
    s->wall_off = r - s->mono;
}

/* Ticks of a bracket in ns at rate (32.32). */
static int64_t ticks_ns(uint64_t ticks, uint64_t rate)
{
    u128 ns = ((u128)ticks * rate) >> 32;
    return ns > INT64_MAX ? INT64_MAX : (int64_t)ns;
}

/* The best (narrowest) of up to 4 samples; whether it is narrow enough for the rate. */
static bool sample_best(sample_t *best, uint64_t rate)
{
    for (int i = 0; i < 4; i++) {
        sample_t s;
        sample_once(&s);
        if (i == 0 || s.width < best->width)
            *best = s;
        if (ticks_ns(best->width, rate) <= SAMPLE_MAX_NS)
            return true;
    }
    return false;
}

static uint64_t span_of(uint64_t mult)
{
    u128 t = ((u128)PIECE_NS << 32) / (mult ? mult : 1);
    return t > ((u128)1 << 40) ? (uint64_t)1 << 40 : (uint64_t)t;
}

/* The piece after o, starting at sample s (s.tsc > o's end). */
static void piece_next(const snap_t *o, const sample_t *s, bool good, snap_t *n)
{
    *n = *o;
    if (good) {
        if (s->tsc <= o->base_tsc || s->mono <= o->base_mono) {
            /* the TSC or the clock went back (not expected): measure afresh from here */
            n->base_tsc = n->next_tsc = s->tsc;
            n->base_mono = n->next_mono = s->mono;
        } else if (s->mono - o->base_mono >= RATE_SPAN_MIN) {
            int64_t dm = s->mono - o->base_mono;
            uint64_t meas = (uint64_t)(((u128)dm << 32) / (s->tsc - o->base_tsc));
            uint64_t dev = meas > o->rate ? meas - o->rate : o->rate - meas;
            if (meas > 0 && ((u128)dev * 1000000 <= (u128)o->rate * RATE_PPM_MAX ||
                             o->rate_span < RATE_CALIBRATED || o->rejected)) {
                n->rate = meas;
                n->rate_span = dm;
                n->rejected = 0;
                if (s->mono - o->next_mono >= BASE_ROLL_NS) {
                    n->base_tsc = o->next_tsc;
                    n->base_mono = o->next_mono;
                    n->next_tsc = s->tsc;
                    n->next_mono = s->mono;
                }
            } else {
                /* a jump between the base and now (suspend, migration): drop it once */
                n->rejected = 1;
                n->base_tsc = n->next_tsc = s->tsc;
                n->base_mono = n->next_mono = s->mono;
            }
        }
    }
    /* never below the old piece's end: no value can go back */
    int64_t old_end = snap_at(o, o->tsc0 + o->span);
    int64_t excess = old_end > s->mono ? old_end - s->mono : 0;
    n->tsc0 = s->tsc;
    n->mono0 = s->mono + excess;
    if (excess > PIECE_NS / 2)
        excess = PIECE_NS / 2; /* ahead by more: it shrinks by half a piece per piece */
    n->span = span_of(n->rate);
    /* ahead by `excess`: a slope that lands on CLOCK_MONOTONIC at the piece's end */
    n->mult = n->rate - (uint64_t)(((u128)n->rate * (uint64_t)excess) / PIECE_NS);
    n->wall_off = s->wall_off;
}

/* Claim a free slot that is not the current one; TSC_SLOTS if none. */
static unsigned slot_claim(void)
{
    for (unsigned i = 0; i < TSC_SLOTS; i++) {
        uint32_t zero = 0;
        if (!atomic_compare_exchange_strong_explicit(&g_piece[i].busy, &zero, 1,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* a slot published before the claim is seen here (its writer freed it after the CAS) */
        if ((atomic_load_explicit(&g_cur, memory_order_acquire) & (TSC_SLOTS - 1)) != i)
            return i;
        atomic_store_explicit(&g_piece[i].busy, 0, memory_order_release);
    }
    return TSC_SLOTS;
}

/* The slow path: the TSC is outside the current piece. Returns the time (mono) and the
 * piece's wall offset. */
static int64_t tsc_slow(int64_t *wall_off)
{
    for (;;) {
        snap_t o;
        uint64_t cur = snap_read(&o);
        uint64_t tsc = tsc_read();
        uint64_t d = tsc - o.tsc0;
        *wall_off = o.wall_off;
        if (d <= o.span)
            return snap_at(&o, tsc); /* another reader made the next piece */
        if ((int64_t)d < 0)
            return o.mono0; /* read before this piece began (a lost race): its start */
        unsigned i = slot_claim();
        if (i == TSC_SLOTS) {
            sched_yield(); /* every other slot is being written: let a writer finish */
            continue;
        }
        sample_t s;
        bool good = sample_best(&s, o.rate);
        snap_t n;
        piece_next(&o, &s, good, &n);
        snap_write(&g_piece[i], &n);
        uint64_t next = ((cur >> 8) + 1) << 8 | i;
        (void)atomic_compare_exchange_strong_explicit(&g_cur, &cur, next, memory_order_acq_rel,
                                                      memory_order_relaxed);
        atomic_store_explicit(&g_piece[i].busy, 0, memory_order_release);
    }
}

static bool tsc_usable(void)
{
#if FDN_CLOCK_HAVE_TSC
    const char *env = getenv("FDN_CLOCK_TSC");
    if (env != NULL && strcmp(env, "0") == 0)
        return false;
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d) || !(d & (1u << 8)))
        return false; /* no invariant TSC */
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return n >= 3 && memcmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
#else
    return false;
#endif
}

static void tsc_init(void)
{
    int state = TSC_OFF;
    if (tsc_usable()) {
        /* a first rate over 100 us of CLOCK_MONOTONIC, refined at every piece after */
        sample_t s0, s1;
        bool ok = false;
        for (int tries = 0; tries < 8 && !ok; tries++) {
            sample_once(&s0);
            do
                sample_once(&s1);
            while (s1.mono - s0.mono < 100000);
            ok = s1.tsc > s0.tsc && s0.width < s1.tsc - s0.tsc && s1.width < s1.tsc - s0.tsc;
            if (ok) {
                uint64_t rate = (uint64_t)(((u128)(s1.mono - s0.mono) << 32) / (s1.tsc - s0.tsc));
                ok = rate > 0 && ticks_ns(s0.width, rate) <= 10 * SAMPLE_MAX_NS &&
                     ticks_ns(s1.width, rate) <= 10 * SAMPLE_MAX_NS;
                if (ok) {
                    snap_t n = {.tsc0 = s1.tsc,
                                .span = span_of(rate),
                                .mult = rate,
                                .rate = rate,
                                .mono0 = s1.mono,
                                .wall_off = s1.wall_off,
                                .base_tsc = s0.tsc,
                                .next_tsc = s0.tsc,
                                .base_mono = s0.mono,
                                .next_mono = s0.mono,
                                .rate_span = s1.mono - s0.mono,
                                .rejected = 0};
                    snap_write(&g_piece[0], &n);
                    atomic_store_explicit(&g_cur, (uint64_t)1 << 8, memory_order_release);
                    state = TSC_ON;
                }
            }
        }
    }
    atomic_store_explicit(&g_tsc, state, memory_order_release);
}

static inline int tsc_state(void)
{
    int st = atomic_load_explicit(&g_tsc, memory_order_acquire);
    if (FDN_UNLIKELY(st == TSC_UNKNOWN)) {
        (void)pthread_once(&g_tsc_once, tsc_init);
        st = atomic_load_explicit(&g_tsc, memory_order_acquire);
    }
    return st;
}

/* The system clock's time: monotonic, or wall when `wall`. */
static inline int64_t system_now(bool wall)
{
    if (FDN_CLOCK_HAVE_TSC && tsc_state() == TSC_ON) {
        uint64_t cur = atomic_load_explicit(&g_cur, memory_order_acquire);
        piece_t *p = &g_piece[cur & (TSC_SLOTS - 1)];
        uint64_t s1 = atomic_load_explicit(&p->seq, memory_order_acquire);
        uint64_t tsc0 = LD(tsc0), span = LD(span), mult = LD(mult);
        int64_t mono0 = LD(mono0), off = wall ? LD(wall_off) : 0;
        uint64_t tsc = tsc_read_fast();
        FDN_SEQ_FENCE(memory_order_acquire);
        uint64_t d = tsc - tsc0;
        int64_t t;
        if (FDN_LIKELY(!(s1 & 1) && d <= span &&
                       atomic_load_explicit(&p->seq, memory_order_relaxed) == s1)) {
            t = mono0 + (int64_t)((d * mult) >> 32);
        } else {
            t = tsc_slow(&off);
            if (!wall)
                off = 0;
        }
        if (wall)
            return t + off;
        if (FDN_UNLIKELY(t < t_floor))
            return t_floor; /* an unordered TSC read that ran early */
        t_floor = t;
        return t;
    }
    return read_ns(wall ? CLOCK_REALTIME : CLOCK_MONOTONIC);
}

#undef LD
#undef ST

bool fdn__clock_tsc_active(void)
{
    return tsc_state() == TSC_ON;
}

uint64_t fdn__clock_tsc_pieces(void)
{
    return tsc_state() == TSC_ON ? atomic_load_explicit(&g_cur, memory_order_acquire) >> 8 : 0;
}

int fdn_clock_manual_create(fdn_clock_t **out, int64_t mono_ns, int64_t wall_ns)
{
    if (out == NULL)
        return FDN_EINVAL;
    fdn_clock_t *c = fdn__calloc(1, sizeof(*c));
    if (c == NULL)
        return FDN_ENOMEM;
    c->manual = true;
    atomic_init(&c->mono, mono_ns);
    atomic_init(&c->wall, wall_ns);
    atomic_init(&c->kick_seq, 0);
    atomic_init(&c->waiters, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    *out = c;
    return 0;
}

void fdn_clock_destroy(fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return;
    /* a caller's error the header forbids, checked in every build: destroying the condition
     * variable under its waiters would block for ever (glibc), or worse; a clear abort names
     * the mistake (a component on this clock still alive) where a hang would hide it */
    int w = atomic_load_explicit(&c->waiters, memory_order_acquire);
    if (w != 0) {
        fprintf(stderr,
                "fdn_clock_destroy: %d thread(s) still wait on this manual clock; destroy "
                "every component using it first\n",
                w);
        abort();
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    fdn__free(c);
}

bool fdn_clock_is_manual(const fdn_clock_t *c)
{
    return c != NULL && c->manual;
}

int64_t fdn_clock_mono_ns(const fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return system_now(false);
    return atomic_load_explicit(&c->mono, memory_order_acquire);
}

int64_t fdn_clock_wall_ns(const fdn_clock_t *c)
{
    if (c == NULL || !c->manual)
        return system_now(true);
    return atomic_load_explicit(&c->wall, memory_order_acquire);
}

static fdn_clock_t *resolve(fdn_clock_t *c)
{
    return c != NULL ? c : fdn_clock_system();
}

int fdn_clock_advance(fdn_clock_t *c, int64_t delta_ns)
{
    if (c == NULL || !c->manual || delta_ns < 0)
        return FDN_EINVAL;
    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->mono, delta_ns, memory_order_acq_rel);
    atomic_fetch_add_explicit(&c->wall, delta_ns, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
    return 0;
}

int fdn__clock_step_wall(fdn_clock_t *c, int64_t delta_ns)
{
    if (c == NULL || !c->manual)
        return FDN_EINVAL;
    fdn__mutex_lock(&c->mu);
    int64_t wall = atomic_load_explicit(&c->wall, memory_order_relaxed), to;
    int rc = __builtin_add_overflow(wall, delta_ns, &to) ? FDN_EINVAL : 0;
    if (rc == 0)
        atomic_store_explicit(&c->wall, to, memory_order_release);
    fdn__mutex_unlock(&c->mu);
    return rc;
}

int fdn_clock_set_mono(fdn_clock_t *c, int64_t mono_ns)
{
    if (c == NULL || !c->manual)
        return FDN_EINVAL;
    fdn__mutex_lock(&c->mu);
    int64_t now = atomic_load_explicit(&c->mono, memory_order_relaxed);
    if (mono_ns < now) {
        fdn__mutex_unlock(&c->mu);
        return FDN_EINVAL;
    }
    atomic_store_explicit(&c->mono, mono_ns, memory_order_release);
    atomic_fetch_add_explicit(&c->wall, mono_ns - now, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
    return 0;
}

void fdn_clock_kick(fdn_clock_t *c)
{
    c = resolve(c);
    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->kick_seq, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&c->cv);
    fdn__mutex_unlock(&c->mu);
}

uint64_t fdn_clock_kick_seq(fdn_clock_t *c)
{
    c = resolve(c);
    return atomic_load_explicit(&c->kick_seq, memory_order_acquire);
}

int fdn_clock_waiters(fdn_clock_t *c)
{
    c = resolve(c);
    return atomic_load_explicit(&c->waiters, memory_order_acquire);
}

int fdn_clock_wait_until(fdn_clock_t *c, int64_t deadline_ns, uint64_t *kick_seq)
{
    c = resolve(c);
    uint64_t seen = kick_seq != NULL ? *kick_seq : 0;
    int rc = 0;

    fdn__mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_acq_rel);
    for (;;) {
        uint64_t seq = atomic_load_explicit(&c->kick_seq, memory_order_acquire);
        if (kick_seq != NULL && seq != seen) {
            *kick_seq = seq;
            rc = FDN_ECANCELED;
            break;
        }
        int64_t now = fdn_clock_mono_ns(c);
        if (now >= deadline_ns)
            break;
        if (c->manual)
            pthread_cond_wait(&c->cv, &c->mu);
        else
            (void)fdn__cond_wait_until(&c->cv, &c->mu, deadline_ns);
    }
    int was = atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_acq_rel);
    FDN_ASSERT(was > 0); /* every waiter counted itself in */
    fdn__mutex_unlock(&c->mu);
    return rc;
}
