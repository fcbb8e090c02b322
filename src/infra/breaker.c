/*
 * DESIGN: circuit breaker.
 *
 * State word. One _Atomic uint64_t holds gen (bits 24..63), probes in flight (bits 8..23)
 * and the state (bits 0..7). A closed breaker has probes == 0, so the closed fast path is
 * one acquire load and a compare of the low byte. Every transition bumps gen, so a permit
 * taken in an earlier phase (it carries the word it saw) can never affect a later phase:
 * its record is ignored when gen differs.
 *
 * Threads: none of its own. Any thread may call acquire/record/status/reset concurrently.
 *
 * Locks: `mu` (one per breaker) guards the failure ring (timestamps of counted failures),
 * the rate window and the non-word transition fields (opened_at, probe_at). Every
 * transition runs under `mu` and installs the new word with a CAS loop that only fails when
 * a probe counter changed; probe slots are taken and returned with CAS outside `mu`.
 * Fields written under `mu` and read without it (opened_at, probe_at, failures) are
 * atomics, stored before the new word is published with release order. probe_at (start of
 * the newest probe) is also advanced by acquire before its probe-slot CAS, so whoever sees the
 * slots full also sees a probe_at no earlier than the start of the last probe that filled them;
 * acquire only moves it forward (a max with a CAS), so a caller that read the clock before a
 * newer probe started cannot move it back and have that probe timed out early.
 * The set's `mu` guards its array; it is never held with a breaker's `mu`. A revive (a
 * removed name created again) marks the breaker `reviving` under the set's `mu`, makes it
 * afresh without that lock and lists it, then broadcasts the set's `revived`: a create or
 * install of the name on another thread waits on it meanwhile (the reviving thread itself,
 * in a callback of the revive's reset, does not: it would wait for itself). An install of a
 * listed name applies its options under a claim taken under the set's `mu` (`installing`,
 * a count): it takes the claim only once no revive of the breaker is under way on another
 * thread and the breaker is listed (removed meanwhile: it goes back to create_in, which
 * revives it with the install's options), and a remove waits on `revived` until no install
 * holds one, and while it waits (`removing`) no install takes a new claim on it (they wait
 * on `revived` and come after the remove, as a revive): overlapping claims cannot keep a
 * remove waiting forever. So a remove and a revive come wholly before or wholly after an
 * install's options. The claim covers the swap of the options and the reset's transition (under the
 * breaker's `mu`) and nothing else: its options are made before it, its reset is reported
 * after it is dropped, so no callback and no telemetry call runs under a claim and a remove
 * waiting for one waits for no caller.
 * No user callback (classify, on_transition) and no telemetry call runs while a lock is held.
 *
 * Transition reports (the telemetry event state_change and on_transition) come in the order
 * of the transitions, one at a time per breaker: a transition appends its (from, to) to the
 * breaker's report queue `tq` under `mu`, where it is made, so the queue's order is the
 * transitions' order; the thread that finds nobody reporting (tq_busy) becomes the reporter
 * and runs the reports from the queue, one by one, outside `mu`, until it is empty. A
 * transition made meanwhile (on another thread, or by a callback on the reporter's own
 * thread) is only queued: its call returns, and the reporter reports it after the ones
 * before it. Without a transition nothing of this runs: the closed path is as before.
 * Invariant: the reports queued are a continuous chain (each one's `from` is the previous
 * one's `to`) ending in the breaker's state. Every transition is queued while reports wait
 * (tq_len > 0) or the options report (telemetry or on_transition); only a transition made
 * under options that report nothing, with none waiting, is not queued.
 * The queue holds TQ_LEN reports; a transition s -> t that finds it full (reports slower than
 * transitions) merges into the newest waiting report f -> s: it becomes f -> t (with the
 * options of the newest transition), or, when t == f (the transition undoes it), that
 * report is dropped and the transition not queued: the report before it (TQ_LEN >= 2, so
 * there is one) ends in f, the state now. So what a user sees (breaker.h, on_transition):
 * reports in the transitions' order, one at a time; a continuous chain whose last `to`, once
 * the reports are done, is the breaker's state; never a merged report with from == to
 * (from == to only comes from a reset, force_open, disable or install made in the state it
 * sets, reported as made); and with the queue full intermediate states are skipped (a
 * transition and the one that undoes it are not reported at all).
 * The reporter is not bounded: it returns when it finds the queue empty, so it keeps
 * reporting while other threads (or its callbacks) keep making transitions faster than it
 * reports them. Each report it runs is one transition or a merge of several, and once the
 * last transition is made it runs at most TQ_LEN more (after the one it is running, if any:
 * the queue holds no more). It cannot hand over soundly: the others make their transitions
 * while it is inside a callback, and a successor could start the next report only once that
 * callback has returned, so the successor's call would wait for another thread's callback (a
 * deadlock when the callback waits for that call, as a latch in a test does, or for a lock
 * its caller holds), while a reporter that leaves with reports queued and no successor
 * strands them.
 *
 * Telemetry (opts.telemetry): counters foundation.circuit_breaker.state_change {name, from,
 * new_state} on every report (a merged one, above, counts once; a dropped pair not at all) and
 * foundation.circuit_breaker.call_rejected {name, reason}
 * on every rejection. Admitted calls emit nothing (the closed path stays one load), except
 * into the histogram fdn_circuit_breaker_call_duration_seconds{breaker,outcome} (outcome
 * success or failure, as recorded; DURATION_SERIES caps the label sets): with telemetry the
 * options block carries the breaker's two series handles, resolved when the options are
 * installed (no lock held), and the closed path reads the clock at acquire and record to time
 * the call (a ticket's call is timed from its acquisition, or by the duration reported).
 * Without telemetry nothing changes.
 *
 * Options. The options and the flags derived from them live in an immutable `bcfg_t`
 * published through the atomic pointer `cfg` (same cache line as the state word). Lock-free
 * readers (acquire, record, status, transitions) load it once per call with acquire order and
 * use that snapshot; code under `mu` that touches the failure ring or the rate window loads it
 * under `mu`, where it always matches those buffers (fdn_breaker_install swaps options and
 * buffers and resets the breaker, bumping gen, in one section under `mu`, so a permit of the
 * old phase records either before it, under the old options, or after it, ignored: never
 * under the new options with its own gen). A replaced bcfg_t is not freed while the breaker
 * lives: a reader may still hold it; it goes on the `retired` list (under `mu`), freed by
 * fdn_breaker_destroy. So
 * each re-install of a breaker keeps one small options block (~200 bytes) until the breaker
 * is destroyed, and a snapshot loaded by any call stays valid for the breaker's lifetime.
 * The set also counts fdn_breaker_get searches (`lookups`, breaker_int.h).
 *
 * Invariants: failures == ring_len <= failure_threshold; state CLOSED implies probes == 0;
 * probes <= half_open_max_calls.
 */
#include <fdn/breaker.h>
#include <fdn/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/hash.h"
#include "core/lock.h"
#include "infra/breaker_int.h"

#define ST_BITS     8u
#define PR_SHIFT    8u
#define PR_MASK     0xffffu
#define GEN_SHIFT   24u
#define W_STATE(w)  ((fdn_breaker_state_t)((w)&0xffu))
#define W_PROBES(w) ((uint32_t)(((w) >> PR_SHIFT) & PR_MASK))
#define W_GEN(w)    ((w) >> GEN_SHIFT)
#define W_MAKE(gen, probes, st)                                                                    \
    (((uint64_t)(gen) << GEN_SHIFT) | ((uint64_t)(probes) << PR_SHIFT) | (uint64_t)(st))

/* logic/breaker_opts.c bounds half_open_max_calls by the probe counter's width */
_Static_assert(PR_MASK == 0xffffu, "half_open_max_calls <= 65535");

#define NS_PER_MS 1000000LL
#define NS_PER_S  1000000000LL

#if defined(__GNUC__)
#define OUT_OF_LINE __attribute__((noinline))
#else
#define OUT_OF_LINE
#endif

#define TQ_LEN 16 /* transition reports waiting (DESIGN: Transition reports) */
_Static_assert(TQ_LEN >= 2, "a merge that cancels out leaves the report before it queued");

typedef struct tq_rec {
    const struct bcfg *c; /* the options in force at the transition (never freed before b) */
    uint8_t from, to;
} tq_rec_t;

typedef struct tbucket {
    int64_t sec;
    uint32_t calls, fails, slow;
} tbucket_t;

/* Immutable once published (see DESIGN: Options), except retired_next, which only install
 * and destroy touch, under the breaker's mu, after it was replaced. */
typedef struct bcfg {
    fdn_breaker_opts_t o;
    bool rate_on;
    bool clock_on_closed; /* the closed path must read the clock */
    bool plain;           /* no clock on the closed path and no classify: a successful closed call
                             changes nothing but a failure count that success_resets clears */
    fdn_histogram_t *dur[2]; /* call durations: [0] success, [1] failure (NULL: not timed) */
    struct bcfg *retired_next;
} bcfg_t;

struct fdn_breaker {
    _Alignas(FDN_CACHELINE) _Atomic uint64_t word;
    _Atomic(bcfg_t *) cfg;
    char pad0[FDN_CACHELINE - sizeof(uint64_t) - sizeof(void *)];
    _Atomic uint32_t failures;
    _Atomic int64_t opened_at;
    _Atomic int64_t probe_at; /* half-open: start of the newest probe (probe timeout) */
    _Atomic uint64_t total_failures;
    _Atomic uint64_t total_rejected;
    _Atomic uint64_t times_opened;
    fdn__mutex_t mu;
    /* guarded by mu */
    int64_t *ring FDN_MEMBER_GUARDED_BY(mu); /* failure_threshold timestamps */
    uint32_t ring_head, ring_len;
    uint8_t *cwin FDN_MEMBER_GUARDED_BY(mu); /* count window: bit0 failure, bit1 slow */
    uint32_t cw_pos, cw_len, cw_fail, cw_slow;
    tbucket_t *twin FDN_MEMBER_GUARDED_BY(mu); /* time window: one bucket per second */
    bcfg_t *retired FDN_MEMBER_GUARDED_BY(mu); /* replaced options, freed at destroy */
    tq_rec_t tq[TQ_LEN] FDN_MEMBER_GUARDED_BY(mu); /* transitions not yet reported, in order */
    uint32_t tq_head, tq_len;                      /* mu */
    bool tq_busy;                                  /* mu: a thread runs the reports */
    char *name;
    _Atomic(void *) tickets; /* breaker_ticket.c's table, made on first use */
    /* the set's name index (guarded by the set's mu; unused outside a set) */
    uint64_t hkey;             /* fdn__hash_str(name) */
    struct fdn_breaker *hnext; /* next in the bucket */
    _Atomic bool listed; /* in the set's v (false: removed, on its gone list); written under the
                            set's mu, read without it by fdn__breaker_listed */
    bool reviving;       /* the set's mu: removed, being made afresh to be listed (revive) */
    uint32_t installing; /* the set's mu: installs applying their options to it now (listed;
                            a remove waits for 0) */
    uint32_t removing;   /* the set's mu: removes waiting for `installing` to reach 0 (an
                            install takes no new claim meanwhile: a remove is not starved) */
    pthread_t reviver;   /* the set's mu: the thread reviving it (while reviving) */
    /* tests (breaker_int.h, fdn__breaker_test_hook): off the closed path */
    _Atomic(fdn__breaker_hook_fn) test_hook;
    _Atomic(void *) test_user;
};

struct fdn_breakers {
    fdn__mutex_t mu;
    pthread_cond_t revived; /* with mu: a revive ended (a breaker's reviving went false), an
                               install's application (a breaker's installing went 0), or a
                               remove that waited for one (its removing went down) */
    fdn_breaker_t **v FDN_MEMBER_GUARDED_BY(mu);
    size_t n, cap;
    fdn_breaker_t **gone FDN_MEMBER_GUARDED_BY(mu); /* removed: kept for held handles */
    size_t ngone, capgone;
    fdn_breaker_opts_t defaults FDN_MEMBER_GUARDED_BY(mu);
    /* every breaker ever made in the set (listed and removed) by name: names are unique across
     * v and gone, since a removed name that comes back is revived, not made again */
    fdn_breaker_t **bucket FDN_MEMBER_GUARDED_BY(mu);
    size_t nbucket; /* a power of two, or 0 before the first breaker */
    size_t max;     /* most distinct names (n + ngone): fdn_breakers_set_max */
    _Atomic uint64_t lookups;
    /* tests (breaker_int.h): run by install between finding the name listed and applying */
    void (*install_hook)(fdn_breakers_t *s, fdn_breaker_t *b, void *user) FDN_MEMBER_GUARDED_BY(mu);
    void *install_hook_user FDN_MEMBER_GUARDED_BY(mu);
    /* tests: run by install under its claim, before applying its options */
    void (*claim_hook)(fdn_breakers_t *s, fdn_breaker_t *b, void *user) FDN_MEMBER_GUARDED_BY(mu);
    void *claim_hook_user FDN_MEMBER_GUARDED_BY(mu);
};

/* The options in force (a snapshot valid for the breaker's lifetime). */
static const bcfg_t *cfg_of(const fdn_breaker_t *b)
{
    return atomic_load_explicit(&((fdn_breaker_t *)b)->cfg, memory_order_acquire);
}

/* Tests: run b's hook at `at`, if one is set (breaker_int.h). Never on the closed path. */
static void test_hook(fdn_breaker_t *b, fdn__breaker_at_t at)
{
    fdn__breaker_hook_fn fn = atomic_load_explicit(&b->test_hook, memory_order_acquire);
    if (FDN_UNLIKELY(fn != NULL))
        fn(b, at, atomic_load_explicit(&b->test_user, memory_order_relaxed));
}

static int64_t now_ns(const bcfg_t *c)
{
    return fdn_clock_mono_ns(c->o.clock);
}

const char *fdn_breaker_state_name(fdn_breaker_state_t s)
{
    switch (s) {
    case FDN_BREAKER_CLOSED:
        return "closed";
    case FDN_BREAKER_OPEN:
        return "open";
    case FDN_BREAKER_HALF_OPEN:
        return "half_open";
    case FDN_BREAKER_FORCED_OPEN:
        return "forced_open";
    case FDN_BREAKER_DISABLED:
        return "disabled";
    }
    return "unknown";
}

static void clear_counts_locked(fdn_breaker_t *b) FDN_REQUIRES(b->mu)
{
    b->ring_head = b->ring_len = 0;
    atomic_store_explicit(&b->failures, 0, memory_order_relaxed);
    b->cw_pos = b->cw_len = b->cw_fail = b->cw_slow = 0;
    if (b->twin)
        memset(b->twin, 0, sizeof(*b->twin) * cfg_of(b)->o.rate_window_size);
}

#define DURATION_SERIES 512 /* 256 breakers x 2 outcomes */

/* With telemetry: the call duration series of breaker `name` into c (setup time, no lock). */
static void cfg_histograms(bcfg_t *c, const char *name)
{
    fdn_telemetry_family_t *f = NULL;
    static const char *const labels[] = {"breaker", "outcome"};
    if (c->o.telemetry == NULL ||
        fdn_telemetry_family(c->o.telemetry, &f, "fdn_circuit_breaker_call_duration_seconds",
                             "Calls admitted by a circuit breaker: time from admission to the "
                             "recorded result, by breaker and outcome (success, failure).",
                             FDN_TELEMETRY_HISTOGRAM, labels, 2, DURATION_SERIES) != 0)
        return;
    static const char *const outcomes[2] = {"success", "failure"};
    for (int i = 0; i < 2; i++) {
        const char *v[] = {name != NULL ? name : "", outcomes[i]};
        (void)fdn_telemetry_family_histogram(f, &c->dur[i], v, 2);
    }
    if (c->dur[0] != NULL || c->dur[1] != NULL)
        c->clock_on_closed = true;
}

/* Allocate the options block and the buffers they size into b's fields (b->cfg is set
 * with a plain init: the caller publishes it). name == NULL: leave b->name alone. */
static int breaker_init(fdn_breaker_t *b, const char *name, const fdn_breaker_opts_t *o,
                        bcfg_t **cfg_out)
{
    bcfg_t *c = fdn__calloc(1, sizeof(*c));
    if (c) {
        c->o = *o;
        c->rate_on = o->failure_rate_pct > 0 || o->slow_rate_pct > 0;
        c->clock_on_closed = c->rate_on || o->slow_call_ms > 0;
    }
    if (name)
        b->name = fdn__strdup(name);
    b->ring = fdn__calloc(o->failure_threshold, sizeof(int64_t));
    if (c && c->rate_on) {
        if (o->rate_window_kind == FDN_BREAKER_WINDOW_COUNT)
            b->cwin = fdn__calloc(o->rate_window_size, 1);
        else
            b->twin = fdn__calloc(o->rate_window_size, sizeof(tbucket_t));
    }
    if (!c || (name && !b->name) || !b->ring || (c->rate_on && !b->cwin && !b->twin)) {
        if (name) {
            fdn__free(b->name);
            b->name = NULL;
        }
        fdn__free(c);
        fdn__free(b->ring);
        fdn__free(b->cwin);
        fdn__free(b->twin);
        b->ring = NULL;
        b->cwin = NULL;
        b->twin = NULL;
        return FDN_ENOMEM;
    }
    cfg_histograms(c, name != NULL ? name : b->name);
    c->plain = !c->clock_on_closed && c->o.classify == NULL;
    *cfg_out = c;
    return 0;
}

int fdn_breaker_create(fdn_breaker_t **out, const char *name, const fdn_breaker_opts_t *opts)
{
    fdn_breaker_opts_t d = FDN_BREAKER_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (opts == NULL)
        opts = &d;
    int rc = fdn_breaker_opts_validate(opts, NULL);
    if (rc)
        return rc;
    fdn_breaker_t *b = fdn__calloc(1, sizeof(*b));
    if (!b)
        return FDN_ENOMEM;
    bcfg_t *c = NULL;
    rc = breaker_init(b, name ? name : "", opts, &c);
    if (rc) {
        fdn__free(b);
        return rc;
    }
    atomic_init(&b->cfg, c);
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        fdn__free(c);
        fdn__free(b->name);
        fdn__free(b->ring);
        fdn__free(b->cwin);
        fdn__free(b->twin);
        fdn__free(b);
        return FDN_ENOMEM;
    }
    atomic_init(&b->word, W_MAKE(1, 0, FDN_BREAKER_CLOSED));
    *out = b;
    return 0;
}

void fdn_breaker_destroy(fdn_breaker_t *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    fdn__free(atomic_load_explicit(&b->cfg, memory_order_relaxed));
    for (bcfg_t *c = b->retired; c != NULL;) {
        bcfg_t *nx = c->retired_next;
        fdn__free(c);
        c = nx;
    }
    fdn__tickets_free(atomic_load_explicit(&b->tickets, memory_order_acquire));
    fdn__free(b->name);
    fdn__free(b->ring);
    fdn__free(b->cwin);
    fdn__free(b->twin);
    fdn__free(b);
}

const char *fdn_breaker_name(const fdn_breaker_t *b)
{
    return b ? b->name : "";
}

/* Queue the report of a transition from -> to made under mu with options c; whether the
 * caller is to run the reports (nobody runs them). The queued reports are a continuous chain
 * ending in the breaker's state (`from` is the newest one's `to`), and that stays so. */
static bool tq_push_locked(fdn_breaker_t *b, const bcfg_t *c, fdn_breaker_state_t from,
                           fdn_breaker_state_t to) FDN_REQUIRES(b->mu)
{
    if (b->tq_len == TQ_LEN) {
        /* full: the newest waiting report (f -> from) and this one make f -> to; when f == to
         * that is no change, so neither is reported: the report before it (there is one,
         * TQ_LEN >= 2) ends in f, the state now, and the chain stays continuous */
        tq_rec_t *last = &b->tq[(b->tq_head + TQ_LEN - 1) % TQ_LEN];
        FDN_ASSERT(last->to == (uint8_t)from);
        if (last->from == (uint8_t)to) {
            b->tq_len--;
        } else {
            last->to = (uint8_t)to;
            last->c = c;
        }
    } else {
        b->tq[(b->tq_head + b->tq_len) % TQ_LEN] = (tq_rec_t){c, (uint8_t)from, (uint8_t)to};
        b->tq_len++;
    }
    if (b->tq_busy)
        return false;
    b->tq_busy = true;
    return true;
}

/* Run the queued transition reports in order until none is left (the reporter only; it is
 * held while transitions keep coming, DESIGN: Transition reports). */
static void tq_report(fdn_breaker_t *b) FDN_EXCLUDES(b->mu)
{
    for (;;) {
        fdn__mutex_lock(&b->mu);
        if (b->tq_len == 0) {
            b->tq_busy = false;
            fdn__mutex_unlock(&b->mu);
            return;
        }
        tq_rec_t r = b->tq[b->tq_head];
        b->tq_head = (b->tq_head + 1) % TQ_LEN;
        b->tq_len--;
        fdn__mutex_unlock(&b->mu);
        fdn_breaker_state_t from = (fdn_breaker_state_t)r.from, to = (fdn_breaker_state_t)r.to;
        if (r.c->o.telemetry) {
            fdn_telemetry_meta_t meta[3] = {{"name", b->name},
                                            {"from", fdn_breaker_state_name(from)},
                                            {"new_state", fdn_breaker_state_name(to)}};
            fdn_telemetry_emit_counter(r.c->o.telemetry, "foundation.circuit_breaker.state_change",
                                       meta, 3);
        }
        if (r.c->o.on_transition)
            r.c->o.on_transition(b->name, from, to, r.c->o.transition_user);
    }
}

/*
 * Move from the phase `expected` (gen + state must match; probes may differ) to `to`.
 * Returns true when this call made the transition. Reports it outside mu, in order
 * (DESIGN: Transition reports).
 */
static bool transition_q(fdn_breaker_t *b, uint64_t expected, fdn_breaker_state_t to, int64_t now,
                         bool *report) FDN_EXCLUDES(b->mu);

static bool transition(fdn_breaker_t *b, uint64_t expected, fdn_breaker_state_t to, int64_t now)
    FDN_EXCLUDES(b->mu)
{
    bool report = false;
    bool made = transition_q(b, expected, to, now, &report);
    if (report)
        tq_report(b);
    return made;
}

/* The transition of the phase w (the word now, under mu) to `to`, queued for its report: whether
 * the caller has become the reporter and must call tq_report (outside mu, and outside any claim
 * of the set). */
static bool transition_locked(fdn_breaker_t *b, uint64_t w, fdn_breaker_state_t to, int64_t now)
    FDN_REQUIRES(b->mu)
{
    fdn_breaker_state_t from = W_STATE(w);
    clear_counts_locked(b);
    if (to == FDN_BREAKER_OPEN) {
        atomic_store_explicit(&b->opened_at, now, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->times_opened, 1, memory_order_relaxed);
    } else if (to == FDN_BREAKER_HALF_OPEN) {
        atomic_store_explicit(&b->probe_at, now, memory_order_relaxed);
    }
    uint64_t gen = W_GEN(w);
    uint64_t nw = W_MAKE(gen + 1, 0, to);
    while (!atomic_compare_exchange_weak_explicit(&b->word, &w, nw, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        /* only probe counts change without mu */
        FDN_ASSERT(W_GEN(w) == gen && W_STATE(w) == from);
    }
    const bcfg_t *c = cfg_of(b);
    return (c->o.telemetry != NULL || c->o.on_transition != NULL || b->tq_len > 0) &&
           tq_push_locked(b, c, from, to);
}

/* transition without running the reports: *report is set when the caller has become the
 * reporter and must call tq_report (outside mu, and outside any claim of the set). */
static bool transition_q(fdn_breaker_t *b, uint64_t expected, fdn_breaker_state_t to, int64_t now,
                         bool *report) FDN_EXCLUDES(b->mu)
{
    fdn__mutex_lock(&b->mu);
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    if (W_GEN(w) != W_GEN(expected) || W_STATE(w) != W_STATE(expected)) {
        fdn__mutex_unlock(&b->mu);
        return false;
    }
    *report = transition_locked(b, w, to, now);
    fdn__mutex_unlock(&b->mu);
    return true;
}

/* Unconditional move (reset / force-open / disable), reports not run: whether the caller
 * must run them (tq_report). */
static bool set_state_q(fdn_breaker_t *b, fdn_breaker_state_t to)
{
    int64_t now = now_ns(cfg_of(b));
    for (;;) {
        uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
        bool report = false;
        if (transition_q(b, w, to, now, &report))
            return report;
    }
}

static void set_state(fdn_breaker_t *b, fdn_breaker_state_t to)
{
    if (set_state_q(b, to))
        tq_report(b);
}

void fdn_breaker_reset(fdn_breaker_t *b)
{
    if (b)
        set_state(b, FDN_BREAKER_CLOSED);
}

void fdn_breaker_force_open(fdn_breaker_t *b)
{
    if (b)
        set_state(b, FDN_BREAKER_FORCED_OPEN);
}

void fdn_breaker_disable(fdn_breaker_t *b)
{
    if (b)
        set_state(b, FDN_BREAKER_DISABLED);
}

fdn_breaker_state_t fdn_breaker_state(const fdn_breaker_t *b)
{
    if (b == NULL)
        return FDN_BREAKER_CLOSED;
    return W_STATE(atomic_load_explicit(&((fdn_breaker_t *)b)->word, memory_order_acquire));
}

static int reject(fdn_breaker_t *b, const bcfg_t *c)
{
    atomic_fetch_add_explicit(&b->total_rejected, 1, memory_order_relaxed);
    if (c->o.telemetry) {
        fdn_telemetry_meta_t meta[2] = {{"name", b->name}, {"reason", "circuit_open"}};
        fdn_telemetry_emit_counter(c->o.telemetry, "foundation.circuit_breaker.call_rejected", meta,
                                   2);
    }
    return FDN_ECIRCUIT_OPEN;
}

int fdn_breaker_ask(fdn_breaker_t *b)
{
    if (b == NULL)
        return FDN_EINVAL;
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    const bcfg_t *c = cfg_of(b);
    switch (W_STATE(w)) {
    case FDN_BREAKER_CLOSED:
    case FDN_BREAKER_DISABLED:
        return 0;
    case FDN_BREAKER_OPEN: {
        /* admitted once the recovery time passed: acquire would move to half-open and take
         * a probe slot (a half-open breaker with no slot admits nothing) */
        int64_t at = atomic_load_explicit(&b->opened_at, memory_order_relaxed);
        bool recovered = now_ns(c) - at >= c->o.recovery_time_ms * NS_PER_MS;
        return recovered && c->o.half_open_max_calls > 0 ? 0 : FDN_ECIRCUIT_OPEN;
    }
    case FDN_BREAKER_HALF_OPEN:
        return W_PROBES(w) < c->o.half_open_max_calls ? 0 : FDN_ECIRCUIT_OPEN;
    default: /* FORCED_OPEN */
        return FDN_ECIRCUIT_OPEN;
    }
}

/* acquire of a breaker that was not closed at the first look (w, c as loaded then) */
static OUT_OF_LINE int acquire_slow(fdn_breaker_t *b, fdn_breaker_permit_t *permit, uint64_t w,
                                    const bcfg_t *c)
{
    for (;;) {
        switch (W_STATE(w)) {
        case FDN_BREAKER_CLOSED:
            permit->word = w;
            permit->start_ns = c->clock_on_closed ? now_ns(c) : 0;
            return 0;
        case FDN_BREAKER_DISABLED:
            permit->word = w;
            permit->start_ns = 0;
            return 0;
        case FDN_BREAKER_FORCED_OPEN:
            return reject(b, c);
        case FDN_BREAKER_OPEN: {
            int64_t now = now_ns(c);
            int64_t at = atomic_load_explicit(&b->opened_at, memory_order_relaxed);
            if (now - at < c->o.recovery_time_ms * NS_PER_MS)
                return reject(b, c);
            transition(b, w, FDN_BREAKER_HALF_OPEN, now);
            w = atomic_load_explicit(&b->word, memory_order_acquire);
            continue;
        }
        case FDN_BREAKER_HALF_OPEN: {
            uint32_t p = W_PROBES(w);
            int64_t now = now_ns(c);
            test_hook(b, FDN__BREAKER_AT_PROBE_CLOCK);
            if (p >= c->o.half_open_max_calls) {
                /* Every slot is taken and none has reported: if even the newest probe is
                 * past its timeout, the probes are lost. (Timing from the start of
                 * half-open would cut short a probe taken after an earlier one was
                 * released.) */
                int64_t since = atomic_load_explicit(&b->probe_at, memory_order_relaxed);
                if (now - since >= c->o.probe_timeout_ms * NS_PER_MS) {
                    /* a probe never reported: a failure, counted once, by the caller whose
                     * transition reopens the breaker (others that saw the same timeout find
                     * the phase gone) */
                    bool report = false;
                    if (transition_q(b, w, FDN_BREAKER_OPEN, now, &report))
                        atomic_fetch_add_explicit(&b->total_failures, 1, memory_order_relaxed);
                    if (report)
                        tq_report(b);
                }
                return reject(b, c);
            }
            uint64_t nw = w + ((uint64_t)1 << PR_SHIFT);
            /* before the slot CAS (release), so a caller that sees the slots full sees a
             * probe_at no earlier than this start. Only ever moved forward (a max): a caller
             * that read the clock earlier and stores after a newer probe took its slot must not
             * move it back, or the newer probe would be timed out early. So probe_at is at
             * least the start of the newest probe; a store whose slot CAS then fails only
             * makes it later (the timeout later), never earlier. */
            int64_t at = atomic_load_explicit(&b->probe_at, memory_order_relaxed);
            while (at < now && !atomic_compare_exchange_weak_explicit(&b->probe_at, &at, now,
                                                                      memory_order_relaxed,
                                                                      memory_order_relaxed)) {
            }
            if (atomic_compare_exchange_weak_explicit(&b->word, &w, nw, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                FDN_ASSERT(W_PROBES(nw) <= c->o.half_open_max_calls);
                permit->word = nw;
                permit->start_ns = now;
                return 0;
            }
            continue; /* w reloaded by the failed CAS */
        }
        }
        return reject(b, c);
    }
}

/* The closed path inline (fdn_breaker_call), the rest out of line. */
static inline int acquire_impl(fdn_breaker_t *b, fdn_breaker_permit_t *permit)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    const bcfg_t *c = cfg_of(b);
    if (FDN_LIKELY((w & 0xffu) == FDN_BREAKER_CLOSED)) {
        FDN_ASSERT(W_PROBES(w) == 0); /* CLOSED implies no probes */
        permit->word = w;
        permit->start_ns = c->clock_on_closed ? now_ns(c) : 0;
        return 0;
    }
    return acquire_slow(b, permit, w, c);
}

int fdn_breaker_acquire(fdn_breaker_t *b, fdn_breaker_permit_t *permit)
{
    if (FDN_UNLIKELY(b == NULL || permit == NULL))
        return FDN_EINVAL;
    return acquire_impl(b, permit);
}

/* Return a half-open probe slot if the phase is still the permit's. */
static bool probe_done(fdn_breaker_t *b, uint64_t pw)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    for (;;) {
        if (W_GEN(w) != W_GEN(pw) || W_STATE(w) != FDN_BREAKER_HALF_OPEN || W_PROBES(w) == 0)
            return false;
        if (atomic_compare_exchange_weak_explicit(&b->word, &w, w - ((uint64_t)1 << PR_SHIFT),
                                                  memory_order_acq_rel, memory_order_acquire))
            return true;
    }
}

void fdn_breaker_release(fdn_breaker_t *b, const fdn_breaker_permit_t *permit)
{
    if (b && permit && W_STATE(permit->word) == FDN_BREAKER_HALF_OPEN)
        probe_done(b, permit->word);
}

/* Rate window update + decision; mu held. Returns true when the breaker must open. */
static bool rate_push_locked(fdn_breaker_t *b, bool fail, bool slow, int64_t now)
    FDN_REQUIRES(b->mu)
{
    uint32_t calls, fails, slows;
    const fdn_breaker_opts_t *o = &cfg_of(b)->o; /* mu held: matches cwin/twin */
    if (b->cwin) {
        uint8_t v = (uint8_t)((fail ? 1u : 0u) | (slow ? 2u : 0u));
        if (b->cw_len == o->rate_window_size) {
            uint8_t old = b->cwin[b->cw_pos];
            b->cw_fail -= old & 1u;
            b->cw_slow -= (old >> 1) & 1u;
        } else {
            b->cw_len++;
        }
        b->cwin[b->cw_pos] = v;
        b->cw_pos = (b->cw_pos + 1) % o->rate_window_size;
        b->cw_fail += fail;
        b->cw_slow += slow;
        FDN_ASSERT(b->cw_fail <= b->cw_len && b->cw_slow <= b->cw_len &&
                   b->cw_len <= o->rate_window_size);
        calls = b->cw_len;
        fails = b->cw_fail;
        slows = b->cw_slow;
    } else {
        int64_t sec = now / NS_PER_S;
        tbucket_t *t = &b->twin[(uint64_t)sec % o->rate_window_size];
        if (t->sec != sec) {
            memset(t, 0, sizeof(*t));
            t->sec = sec;
        }
        t->calls++;
        t->fails += fail;
        t->slow += slow;
        calls = fails = slows = 0;
        for (uint32_t i = 0; i < o->rate_window_size; i++) {
            const tbucket_t *x = &b->twin[i];
            if (x->calls && sec - x->sec < (int64_t)o->rate_window_size) {
                calls += x->calls;
                fails += x->fails;
                slows += x->slow;
            }
        }
    }
    if (calls < o->minimum_calls || calls == 0)
        return false;
    if (o->failure_rate_pct && (uint64_t)fails * 100u >= (uint64_t)o->failure_rate_pct * calls)
        return true;
    if (o->slow_rate_pct && (uint64_t)slows * 100u >= (uint64_t)o->slow_rate_pct * calls)
        return true;
    return false;
}

/* With telemetry: the call's duration into its outcome's series (off the closed path's line). */
static __attribute__((noinline, cold)) void observe_call(const bcfg_t *c, fdn_breaker_outcome_t out,
                                                         int64_t dur)
{
    if (out != FDN_BREAKER_IGNORE)
        fdn_histogram_observe(c->dur[out == FDN_BREAKER_FAILURE ? 1 : 0], (double)dur / 1e9);
}

/* Record a call admitted with permit: its outcome given (given: outcome and dur_ns >= 0, or
 * dur_ns < 0 for "measure from the permit"), or classified from rc. c: the options now. */
static OUT_OF_LINE void record(fdn_breaker_t *b, const bcfg_t *c,
                               const fdn_breaker_permit_t *permit, int rc, bool given,
                               fdn_breaker_outcome_t outcome, int64_t dur_ns)
{
    const fdn_breaker_opts_t *o = &c->o;
    uint64_t pw = permit->word;
    fdn_breaker_state_t st = W_STATE(pw);
    if (st == FDN_BREAKER_DISABLED)
        return;
    int64_t now = 0, dur = 0;
    bool measured = permit->start_ns != 0;
    if (c->clock_on_closed || st == FDN_BREAKER_HALF_OPEN) {
        now = now_ns(c);
        dur = permit->start_ns ? now - permit->start_ns : 0;
    }
    if (given && dur_ns >= 0) {
        dur = dur_ns;
        measured = true;
    }
    fdn_breaker_outcome_t out;
    if (given)
        out = outcome;
    else if (o->classify)
        out = o->classify(rc, dur, o->classify_user);
    else
        out = rc < 0 ? FDN_BREAKER_FAILURE : FDN_BREAKER_SUCCESS;
    bool slow = out == FDN_BREAKER_SLOW ||
                (o->slow_call_ms > 0 && measured && dur >= o->slow_call_ms * NS_PER_MS);
    if (out == FDN_BREAKER_SLOW)
        out = FDN_BREAKER_SUCCESS;
    if (slow && o->slow_rate_pct == 0 && out == FDN_BREAKER_SUCCESS)
        out = FDN_BREAKER_FAILURE;
    if (FDN_UNLIKELY(c->dur[0] != NULL) && measured)
        observe_call(c, out, dur);

    if (st == FDN_BREAKER_HALF_OPEN) {
        bool mine = probe_done(b, pw);
        if (!mine || out == FDN_BREAKER_IGNORE)
            return;
        if (out == FDN_BREAKER_SUCCESS && dur < o->probe_timeout_ms * NS_PER_MS) {
            transition(b, pw, FDN_BREAKER_CLOSED, now);
        } else {
            atomic_fetch_add_explicit(&b->total_failures, 1, memory_order_relaxed);
            transition(b, pw, FDN_BREAKER_OPEN, now);
        }
        return;
    }
    if (st != FDN_BREAKER_CLOSED || out == FDN_BREAKER_IGNORE)
        return;

    bool fail = out == FDN_BREAKER_FAILURE;
    if (!fail && !c->rate_on) {
        if (o->success_resets &&
            FDN_UNLIKELY(atomic_load_explicit(&b->failures, memory_order_relaxed) != 0)) {
            fdn__mutex_lock(&b->mu);
            if (W_GEN(atomic_load_explicit(&b->word, memory_order_acquire)) == W_GEN(pw)) {
                b->ring_head = b->ring_len = 0;
                atomic_store_explicit(&b->failures, 0, memory_order_relaxed);
            }
            fdn__mutex_unlock(&b->mu);
        }
        return;
    }
    if (fail) {
        atomic_fetch_add_explicit(&b->total_failures, 1, memory_order_relaxed);
        if (now == 0 && o->window_ms > 0)
            now = now_ns(c);
    }
    bool trip = false;
    fdn__mutex_lock(&b->mu);
    if (W_GEN(atomic_load_explicit(&b->word, memory_order_acquire)) != W_GEN(pw)) {
        fdn__mutex_unlock(&b->mu);
        return; /* the call started in an earlier phase */
    }
    /* under mu: the options that sized the ring and the rate window */
    const bcfg_t *lc = cfg_of(b);
    o = &lc->o;
    if (fail) {
        uint32_t cap = o->failure_threshold;
        /* drop failures older than the window (oldest first) */
        while (o->window_ms > 0 && b->ring_len > 0) {
            uint32_t oldest = (b->ring_head + cap - b->ring_len) % cap;
            if (now - b->ring[oldest] < o->window_ms * NS_PER_MS)
                break;
            b->ring_len--;
        }
        b->ring[b->ring_head] = now;
        b->ring_head = (b->ring_head + 1) % cap;
        if (b->ring_len < cap)
            b->ring_len++;
        FDN_ASSERT(b->ring_len <= cap); /* failures == ring_len <= failure_threshold */
        atomic_store_explicit(&b->failures, b->ring_len, memory_order_relaxed);
        trip = b->ring_len >= cap;
    } else if (o->success_resets) {
        b->ring_head = b->ring_len = 0;
        atomic_store_explicit(&b->failures, 0, memory_order_relaxed);
    }
    if (lc->rate_on && rate_push_locked(b, fail, slow, now))
        trip = true;
    fdn__mutex_unlock(&b->mu);
    if (trip)
        transition(b, pw & ~((uint64_t)PR_MASK << PR_SHIFT), FDN_BREAKER_OPEN,
                   now ? now : now_ns(lc));
}

/* fdn_breaker_record, with the case that changes nothing decided inline: a success (no
 * classify: rc >= 0) of a call admitted closed, under options that neither time nor classify
 * closed calls and no rate window, with no failure count for success_resets to clear. record()
 * would reach the same end (its "!fail && !rate_on" branch) after more steps. */
static inline void record_impl(fdn_breaker_t *b, const fdn_breaker_permit_t *permit, int rc)
{
    const bcfg_t *c = cfg_of(b);
    if (FDN_LIKELY(W_STATE(permit->word) == FDN_BREAKER_CLOSED && c->plain && rc >= 0) &&
        (!c->o.success_resets ||
         FDN_LIKELY(atomic_load_explicit(&b->failures, memory_order_relaxed) == 0)))
        return;
    record(b, c, permit, rc, false, FDN_BREAKER_SUCCESS, 0);
}

void fdn_breaker_record(fdn_breaker_t *b, const fdn_breaker_permit_t *permit, int rc)
{
    if (FDN_UNLIKELY(b == NULL || permit == NULL))
        return;
    record_impl(b, permit, rc);
}

void fdn__breaker_record_outcome(fdn_breaker_t *b, const fdn_breaker_permit_t *permit,
                                 fdn_breaker_outcome_t outcome, int64_t dur_ns)
{
    if (outcome == FDN_BREAKER_IGNORE)
        fdn_breaker_release(b, permit);
    else
        record(b, cfg_of(b), permit, 0, true, outcome, dur_ns);
}

int64_t fdn__breaker_now_ns(const fdn_breaker_t *b)
{
    return now_ns(cfg_of(b));
}

int64_t fdn__breaker_probe_timeout_ns(const fdn_breaker_t *b)
{
    return cfg_of(b)->o.probe_timeout_ms * NS_PER_MS;
}

_Atomic(void *) *fdn__breaker_ticket_anchor(fdn_breaker_t *b)
{
    return &b->tickets;
}

int fdn_breaker_call(fdn_breaker_t *b, int (*fn)(void *arg), void *arg, int *fn_rc)
{
    if (b == NULL || fn == NULL)
        return FDN_EINVAL;
    fdn_breaker_permit_t p;
    int rc = acquire_impl(b, &p);
    if (rc)
        return rc;
    rc = fn(arg);
    if (fn_rc)
        *fn_rc = rc;
    record_impl(b, &p, rc);
    return rc;
}

int fdn_breaker_status(fdn_breaker_t *b, fdn_breaker_status_t *out)
{
    if (b == NULL || out == NULL)
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    fdn__mutex_lock(&b->mu);
    const bcfg_t *c = cfg_of(b);
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    out->state = W_STATE(w);
    out->probes_in_flight = W_PROBES(w);
    out->failures = b->ring_len;
    if (c->o.window_ms > 0 && b->ring_len > 0) {
        /* the failures still inside the window (a failure drops the older ones only when it
         * is recorded): the count toward the threshold now. Oldest first in the ring. */
        uint32_t cap = c->o.failure_threshold;
        int64_t now = now_ns(c);
        for (uint32_t k = 0; k < b->ring_len; k++) {
            uint32_t at = (b->ring_head + cap - b->ring_len + k) % cap;
            if (now - b->ring[at] < c->o.window_ms * NS_PER_MS) {
                out->failures = b->ring_len - k;
                break;
            }
            out->failures = 0;
        }
    }
    if (b->cwin) {
        out->window_calls = b->cw_len;
        out->window_failures = b->cw_fail;
        out->window_slow = b->cw_slow;
    } else if (b->twin) {
        int64_t sec = now_ns(c) / NS_PER_S;
        for (uint32_t i = 0; i < c->o.rate_window_size; i++) {
            const tbucket_t *x = &b->twin[i];
            if (x->calls && sec - x->sec < (int64_t)c->o.rate_window_size) {
                out->window_calls += x->calls;
                out->window_failures += x->fails;
                out->window_slow += x->slow;
            }
        }
    }
    int64_t opened = atomic_load_explicit(&b->opened_at, memory_order_relaxed);
    fdn__mutex_unlock(&b->mu);
    out->total_failures = atomic_load_explicit(&b->total_failures, memory_order_relaxed);
    out->total_rejected = atomic_load_explicit(&b->total_rejected, memory_order_relaxed);
    out->times_opened = atomic_load_explicit(&b->times_opened, memory_order_relaxed);
    out->ms_until_half_open = -1;
    if (out->state == FDN_BREAKER_OPEN) {
        int64_t left = opened + c->o.recovery_time_ms * NS_PER_MS - now_ns(c);
        out->ms_until_half_open = left <= 0 ? 0 : (left + NS_PER_MS - 1) / NS_PER_MS;
    }
    return 0;
}

/* ---- sets ------------------------------------------------------------------------------ */

int fdn_breakers_create(fdn_breakers_t **out, const fdn_breaker_opts_t *defaults)
{
    fdn_breaker_opts_t d = FDN_BREAKER_OPTS_INIT;
    if (out == NULL)
        return FDN_EINVAL;
    if (defaults && fdn_breaker_opts_validate(defaults, NULL))
        return FDN_EINVAL;
    fdn_breakers_t *s = fdn__calloc(1, sizeof(*s));
    if (!s)
        return FDN_ENOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        fdn__free(s);
        return FDN_ENOMEM;
    }
    if (pthread_cond_init(&s->revived, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        fdn__free(s);
        return FDN_ENOMEM;
    }
    s->defaults = defaults ? *defaults : d;
    s->max = FDN_BREAKERS_MAX_DEFAULT;
    *out = s;
    return 0;
}

void fdn_breakers_destroy(fdn_breakers_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        fdn_breaker_destroy(s->v[i]);
    for (size_t i = 0; i < s->ngone; i++)
        fdn_breaker_destroy(s->gone[i]);
    fdn__free(s->v);
    fdn__free(s->gone);
    fdn__free(s->bucket);
    pthread_cond_destroy(&s->revived);
    pthread_mutex_destroy(&s->mu);
    fdn__free(s);
}

int fdn_breakers_set_defaults(fdn_breakers_t *s, const fdn_breaker_opts_t *d)
{
    if (s == NULL || fdn_breaker_opts_validate(d, NULL))
        return FDN_EINVAL;
    fdn__mutex_lock(&s->mu);
    s->defaults = *d;
    fdn__mutex_unlock(&s->mu);
    return 0;
}

int fdn_breakers_get_defaults(fdn_breakers_t *s, fdn_breaker_opts_t *out)
{
    if (s == NULL || out == NULL)
        return FDN_EINVAL;
    fdn__mutex_lock(&s->mu);
    *out = s->defaults;
    fdn__mutex_unlock(&s->mu);
    return 0;
}

int fdn_breaker_get_opts(const fdn_breaker_t *b, fdn_breaker_opts_t *out)
{
    if (b == NULL || out == NULL)
        return FDN_EINVAL;
    *out = cfg_of(b)->o; /* a published block is never changed nor freed before b */
    return 0;
}

size_t fdn_breakers_count(fdn_breakers_t *s)
{
    if (s == NULL)
        return 0;
    fdn__mutex_lock(&s->mu);
    size_t n = s->n;
    fdn__mutex_unlock(&s->mu);
    return n;
}

int fdn_breakers_set_max(fdn_breakers_t *s, size_t max)
{
    if (s == NULL || max == 0)
        return FDN_EINVAL;
    fdn__mutex_lock(&s->mu);
    s->max = max;
    fdn__mutex_unlock(&s->mu);
    return 0;
}

/* s->mu held */
static const char *breaker_name_at(const void *set, size_t i)
{
    return ((const fdn_breakers_t *)set)->v[i]->name;
}

int fdn_breakers_list(fdn_breakers_t *s, char ***out_names, size_t *out_count)
{
    if (s == NULL || out_names == NULL || out_count == NULL)
        return FDN_EINVAL;
    *out_names = NULL;
    *out_count = 0;
    fdn__mutex_lock(&s->mu);
    int rc = fdn__strv_pack(s, s->n, breaker_name_at, out_names, out_count);
    fdn__mutex_unlock(&s->mu);
    return rc;
}

int fdn_breakers_handles(fdn_breakers_t *s, fdn_breaker_t ***out, size_t *out_count)
{
    if (s == NULL || out == NULL || out_count == NULL)
        return FDN_EINVAL;
    *out = NULL;
    *out_count = 0;
    fdn__mutex_lock(&s->mu);
    size_t n = s->n;
    fdn_breaker_t **v = n ? fdn__malloc(n * sizeof(*v)) : NULL;
    if (v != NULL)
        memcpy(v, s->v, n * sizeof(*v));
    fdn__mutex_unlock(&s->mu);
    if (n > 0 && v == NULL)
        return FDN_ENOMEM;
    *out = v;
    *out_count = n;
    return 0;
}

/* The breaker named `name`, listed or removed, or NULL. */
static fdn_breaker_t *index_find_locked(fdn_breakers_t *s, const char *name, uint64_t h)
    FDN_REQUIRES(s->mu)
{
    if (s->nbucket == 0)
        return NULL;
    for (fdn_breaker_t *b = s->bucket[h & (s->nbucket - 1)]; b != NULL; b = b->hnext)
        if (b->hkey == h && strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

/* Room in the index for one more name: the buckets double when the names would outnumber
 * them. 0 or FDN_ENOMEM (the index is unchanged). */
static int index_reserve_locked(fdn_breakers_t *s) FDN_REQUIRES(s->mu)
{
    if (s->n + s->ngone < s->nbucket)
        return 0;
    size_t nb = s->nbucket ? s->nbucket * 2 : 16;
    fdn_breaker_t **bk = fdn__calloc(nb, sizeof(*bk));
    if (bk == NULL)
        return FDN_ENOMEM;
    for (size_t i = 0; i < s->nbucket; i++) {
        for (fdn_breaker_t *b = s->bucket[i], *next; b != NULL; b = next) {
            next = b->hnext;
            b->hnext = bk[b->hkey & (nb - 1)];
            bk[b->hkey & (nb - 1)] = b;
        }
    }
    fdn__free(s->bucket);
    s->bucket = bk;
    s->nbucket = nb;
    return 0;
}

/* s->mu held: a listed breaker by name (h its hash), or NULL */
static fdn_breaker_t *find_locked(fdn_breakers_t *s, const char *name, uint64_t h)
    FDN_REQUIRES(s->mu)
{
    fdn_breaker_t *b = index_find_locked(s, name, h);
    return b != NULL && atomic_load_explicit(&b->listed, memory_order_relaxed) ? b : NULL;
}

int fdn_breaker_get(fdn_breakers_t *s, const char *name, fdn_breaker_t **out)
{
    if (s == NULL || name == NULL || out == NULL)
        return FDN_EINVAL;
    atomic_fetch_add_explicit(&s->lookups, 1, memory_order_relaxed);
    uint64_t h = fdn__hash_str(name); /* outside the lock */
    fdn__mutex_lock(&s->mu);
    fdn_breaker_t *b = find_locked(s, name, h);
    fdn__mutex_unlock(&s->mu);
    if (!b)
        return FDN_EBREAKER_NOT_FOUND;
    *out = b;
    return 0;
}

/* Append b to *v (n, cap). 0 or FDN_ENOMEM. */
static int push(fdn_breaker_t ***v, size_t *n, size_t *cap, fdn_breaker_t *b)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        fdn_breaker_t **nv = fdn__realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return FDN_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    FDN_ASSERT(*n < *cap);
    (*v)[(*n)++] = b;
    return 0;
}

/* Move b from v to gone (it stays in the index). 0 or FDN_ENOMEM (b stays listed). */
static int unlist_locked(fdn_breakers_t *s, fdn_breaker_t *b) FDN_REQUIRES(s->mu)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] != b)
            continue;
        int rc = push(&s->gone, &s->ngone, &s->capgone, b);
        if (rc != 0)
            return rc;
        /* keep creation order for the rest */
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
        s->n--;
        atomic_store_explicit(&b->listed, false, memory_order_relaxed);
        return 0;
    }
    return FDN_EBREAKER_NOT_FOUND;
}

/* The removed breaker b, taken off the removed list and listed again. 0 or FDN_ENOMEM. */
static int revive_locked(fdn_breakers_t *s, fdn_breaker_t *b) FDN_REQUIRES(s->mu)
{
    for (size_t i = 0; i < s->ngone; i++) {
        if (s->gone[i] != b)
            continue;
        int rc = push(&s->v, &s->n, &s->cap, b);
        if (rc != 0)
            return rc;
        s->gone[i] = s->gone[--s->ngone];
        atomic_store_explicit(&b->listed, true, memory_order_relaxed);
        return 0;
    }
    FDN_ASSERT(false && "a removed breaker is on the removed list");
    return FDN_EINTERNAL;
}

int fdn_breaker_remove(fdn_breakers_t *s, const char *name)
{
    if (s == NULL || name == NULL)
        return FDN_EINVAL;
    uint64_t h = fdn__hash_str(name);
    fdn__mutex_lock(&s->mu);
    fdn_breaker_t *b;
    /* an install applying its options to it finishes first (a swap and a reset under the
     * breaker's mu, no callback: the wait is short and waits for no caller); `removing` holds
     * off installs that come meanwhile, or overlapping claims could keep it waiting forever */
    bool waited = false;
    while ((b = find_locked(s, name, h)) != NULL && b->installing > 0) {
        b->removing++;
        pthread_cond_wait(&s->revived, &s->mu);
        b->removing--;
        waited = true;
    }
    int rc = b != NULL ? unlist_locked(s, b) : FDN_EBREAKER_NOT_FOUND;
    if (waited) /* installs held off by `removing` go on (after this remove) */
        pthread_cond_broadcast(&s->revived);
    fdn__mutex_unlock(&s->mu);
    return rc;
}

/* New options and buffers for a re-install, made without a lock. */
typedef struct prep {
    bcfg_t *c;
    int64_t *ring;
    uint8_t *cwin;
    tbucket_t *twin;
} prep_t;

static int reinstall_prepare(fdn_breaker_t *b, const fdn_breaker_opts_t *o, prep_t *p);
static void prep_discard(prep_t *p);
static bool reinstall_apply(fdn_breaker_t *b, prep_t *p);
static int reinstall(fdn_breaker_t *b, const fdn_breaker_opts_t *o);

/* List the removed breaker b again with options o, afresh: made afresh (options, counts, a
 * reset) while still removed, and listed only then, so that nobody finds it by name (get,
 * list, handles) in the state it was removed in. A revive under way on another thread is
 * waited for (then b is listed: FDN_EEXIST, or it failed: this call revives it), so that a
 * create or install answering FDN_EEXIST or 0 is followed by a get that finds the name and
 * no revive's options land after an install's. 0, FDN_EEXIST (b is listed, or this thread is
 * reviving it: a callback of the revive's reset; *out is it), FDN_EINVAL, FDN_ENOMEM (b stays
 * removed; after a failure to list it, with the new options). */
static int revive(fdn_breakers_t *s, fdn_breaker_t *b, const fdn_breaker_opts_t *o,
                  fdn_breaker_t **out)
{
    fdn__mutex_lock(&s->mu);
    while (b->reviving && !pthread_equal(b->reviver, pthread_self()))
        pthread_cond_wait(&s->revived, &s->mu);
    bool taken = atomic_load_explicit(&b->listed, memory_order_relaxed) || b->reviving;
    if (!taken) {
        b->reviving = true;
        b->reviver = pthread_self();
    }
    fdn__mutex_unlock(&s->mu);
    if (taken) {
        if (out)
            *out = b;
        return FDN_EEXIST;
    }
    int rc = reinstall(b, o);
    fdn__mutex_lock(&s->mu);
    b->reviving = false;
    if (rc == 0)
        rc = revive_locked(s, b);
    pthread_cond_broadcast(&s->revived);
    fdn__mutex_unlock(&s->mu);
    if (rc != 0)
        return rc;
    if (out)
        *out = b;
    return 0;
}

int fdn_breaker_create_in(fdn_breakers_t *s, const char *name, const fdn_breaker_opts_t *opts,
                          fdn_breaker_t **out)
{
    if (s == NULL || name == NULL || name[0] == '\0')
        return FDN_EINVAL;
    uint64_t h = fdn__hash_str(name);
    fdn_breaker_opts_t o;
    fdn__mutex_lock(&s->mu);
    o = opts ? *opts : s->defaults;
    fdn_breaker_t *old = index_find_locked(s, name, h);
    bool listed = old != NULL && atomic_load_explicit(&old->listed, memory_order_relaxed);
    bool full = old == NULL && s->n + s->ngone >= s->max;
    fdn__mutex_unlock(&s->mu);
    if (listed) {
        if (out)
            *out = old;
        return FDN_EEXIST;
    }
    if (full)
        return FDN_ENOSPC;
    if (old != NULL) /* a removed name comes back: its memory, afresh */
        return revive(s, old, &o, out);
    fdn_breaker_t *b;
    int rc = fdn_breaker_create(&b, name, &o);
    if (rc)
        return rc;
    b->hkey = h;
    fdn__mutex_lock(&s->mu);
    old = index_find_locked(s, name, h);
    listed = old != NULL && atomic_load_explicit(&old->listed, memory_order_relaxed);
    if (old == NULL && s->n + s->ngone >= s->max)
        rc = FDN_ENOSPC; /* another thread took the last room */
    else if (old == NULL && (rc = index_reserve_locked(s)) == 0 &&
             (rc = push(&s->v, &s->n, &s->cap, b)) == 0) {
        atomic_store_explicit(&b->listed, true, memory_order_relaxed);
        b->hnext = s->bucket[h & (s->nbucket - 1)];
        s->bucket[h & (s->nbucket - 1)] = b;
    }
    fdn__mutex_unlock(&s->mu);
    if (old != NULL) { /* made meanwhile by another thread (or removed and made again) */
        fdn_breaker_destroy(b);
        if (listed) {
            if (out)
                *out = old;
            return FDN_EEXIST;
        }
        return revive(s, old, &o, out);
    }
    if (rc != 0) {
        fdn_breaker_destroy(b);
        return rc;
    }
    if (out)
        *out = b;
    return 0;
}

/* An existing name: its options are applied to the breaker while it is listed and no revive
 * of it is under way (a claim, `installing`, under the set's mu, that a remove waits for), so
 * a remove and a revive racing the install come wholly before or wholly after it. The claim
 * covers the swap and the reset's transition only; the reset is reported after it is dropped
 * (no callback runs under a claim). The options are made before, without a lock. */
int fdn_breaker_install(fdn_breakers_t *s, const char *name, const fdn_breaker_opts_t *opts,
                        fdn_breaker_t **out)
{
    for (;;) {
        fdn_breaker_t *b = NULL;
        int rc = fdn_breaker_create_in(s, name, opts, &b);
        if (rc != FDN_EEXIST) {
            if (rc == 0 && out)
                *out = b;
            return rc;
        }
        fdn_breaker_opts_t o;
        fdn__mutex_lock(&s->mu);
        o = opts ? *opts : s->defaults;
        void (*hook)(fdn_breakers_t *, fdn_breaker_t *, void *) = s->install_hook;
        void *hook_user = s->install_hook_user;
        void (*chook)(fdn_breakers_t *, fdn_breaker_t *, void *) = s->claim_hook;
        void *chook_user = s->claim_hook_user;
        fdn__mutex_unlock(&s->mu);
        prep_t p;
        rc = reinstall_prepare(b, &o, &p);
        if (rc != 0)
            return rc;
        if (hook != NULL)
            hook(s, b, hook_user);
        fdn__mutex_lock(&s->mu);
        /* a revive on another thread: wait for it (then the name is listed, or the revive
         * failed and this install revives it below); a remove waiting for the claims of
         * other installs: it comes first (then this install revives the name below) */
        for (;;) {
            bool self = b->reviving && pthread_equal(b->reviver, pthread_self());
            if (!self && (b->reviving || b->removing > 0))
                pthread_cond_wait(&s->revived, &s->mu);
            else
                break;
        }
        /* this thread reviving it (a callback of the revive's reset): applied, as the create
         * of the name there answered FDN_EEXIST */
        bool claim = atomic_load_explicit(&b->listed, memory_order_relaxed) || b->reviving;
        if (claim)
            b->installing++;
        fdn__mutex_unlock(&s->mu);
        if (!claim) { /* removed meanwhile: this install comes after, and makes it afresh */
            prep_discard(&p);
            continue;
        }
        if (chook != NULL)
            chook(s, b, chook_user);
        bool report = reinstall_apply(b, &p);
        fdn__mutex_lock(&s->mu);
        if (--b->installing == 0)
            pthread_cond_broadcast(&s->revived);
        fdn__mutex_unlock(&s->mu);
        if (report)
            tq_report(b);
        if (out)
            *out = b;
        return 0;
    }
}

/* Validate o and make its options block and buffers into *p (no lock). 0, FDN_EINVAL,
 * FDN_ENOMEM. */
static int reinstall_prepare(fdn_breaker_t *b, const fdn_breaker_opts_t *opts, prep_t *p)
{
    fdn_breaker_opts_t o = *opts;
    int rc = fdn_breaker_opts_validate(&o, NULL);
    if (rc)
        return rc;
    fdn_breaker_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.name = b->name; /* names the duration series; breaker_init leaves it alone */
    bcfg_t *nc = NULL;
    rc = breaker_init(&tmp, NULL, &o, &nc);
    if (rc)
        return rc;
    *p = (prep_t){nc, tmp.ring, tmp.cwin, tmp.twin};
    return 0;
}

static void prep_discard(prep_t *p)
{
    fdn__free(p->c); /* never published */
    fdn__free(p->ring);
    fdn__free(p->cwin);
    fdn__free(p->twin);
}

/* Swap the prepared options and buffers in and reset, in one section under the breaker's lock
 * (buffers are only used under it; the options are published atomically and the old block
 * retired, not freed: lock-free readers may hold it, see DESIGN: Options). The reset's gen
 * bump is in that section: a call admitted before records under mu, so it finds either the
 * old options with the old gen (counted in the old phase, cleared by the reset) or the new gen
 * (ignored), never the new options with its own gen (its failure counted under them could
 * open the breaker the install just closed). Whether the caller must run the reports
 * (tq_report). */
static bool reinstall_apply(fdn_breaker_t *b, prep_t *p)
{
    fdn__mutex_lock(&b->mu);
    int64_t *r = b->ring;
    uint8_t *c = b->cwin;
    tbucket_t *t = b->twin;
    b->ring = p->ring;
    b->cwin = p->cwin;
    b->twin = p->twin;
    b->ring_head = b->ring_len = 0;
    atomic_store_explicit(&b->failures, 0, memory_order_relaxed);
    b->cw_pos = b->cw_len = b->cw_fail = b->cw_slow = 0;
    bcfg_t *old = atomic_load_explicit(&b->cfg, memory_order_relaxed);
    old->retired_next = b->retired;
    b->retired = old;
    atomic_store_explicit(&b->cfg, p->c, memory_order_release);
    /* the reset (unconditional: under mu only probe counts change), reported with the new
     * options, queued after every transition made before it; no time is stored for CLOSED */
    bool report = transition_locked(b, atomic_load_explicit(&b->word, memory_order_acquire),
                                    FDN_BREAKER_CLOSED, 0);
    fdn__mutex_unlock(&b->mu);
    test_hook(b, FDN__BREAKER_AT_APPLIED);
    fdn__free(r);
    fdn__free(c);
    fdn__free(t);
    return report;
}

/* New options for b in place, then a reset, reported. 0, FDN_EINVAL, FDN_ENOMEM. */
static int reinstall(fdn_breaker_t *b, const fdn_breaker_opts_t *opts)
{
    prep_t p;
    int rc = reinstall_prepare(b, opts, &p);
    if (rc)
        return rc;
    if (reinstall_apply(b, &p))
        tq_report(b);
    return 0;
}

bool fdn__breaker_listed(const fdn_breaker_t *b)
{
    return atomic_load_explicit(&((fdn_breaker_t *)(uintptr_t)b)->listed, memory_order_relaxed);
}

void fdn__breakers_set_install_hook(fdn_breakers_t *s,
                                    void (*fn)(fdn_breakers_t *s, fdn_breaker_t *b, void *user),
                                    void *user)
{
    fdn__mutex_lock(&s->mu);
    s->install_hook = fn;
    s->install_hook_user = user;
    fdn__mutex_unlock(&s->mu);
}

void fdn__breakers_set_claim_hook(fdn_breakers_t *s,
                                  void (*fn)(fdn_breakers_t *s, fdn_breaker_t *b, void *user),
                                  void *user)
{
    fdn__mutex_lock(&s->mu);
    s->claim_hook = fn;
    s->claim_hook_user = user;
    fdn__mutex_unlock(&s->mu);
}

uint64_t fdn__breakers_lookups(fdn_breakers_t *s)
{
    return s ? atomic_load_explicit(&s->lookups, memory_order_relaxed) : 0;
}

size_t fdn__breaker_cfg_count(fdn_breaker_t *b)
{
    if (b == NULL)
        return 0;
    size_t n = 1;
    fdn__mutex_lock(&b->mu);
    for (const bcfg_t *c = b->retired; c != NULL; c = c->retired_next)
        n++;
    fdn__mutex_unlock(&b->mu);
    return n;
}

void fdn__breaker_test_hook(fdn_breaker_t *b, fdn__breaker_hook_fn fn, void *user)
{
    atomic_store_explicit(&b->test_user, user, memory_order_relaxed);
    atomic_store_explicit(&b->test_hook, fn, memory_order_release);
}
