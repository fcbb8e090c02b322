/**
 * @file breaker.h
 * @brief Circuit breakers: named, per runtime, closed / open / half-open.
 *
 * State machine (docs/protection.md):
 *
 *   CLOSED --(failure_threshold failures inside window_ms, or failure/slow rate
 *             over the sliding window)--> OPEN
 *   OPEN   --(recovery_time_ms elapsed; checked lazily on the next call)--> HALF_OPEN
 *   HALF_OPEN: admits at most half_open_max_calls probes at once;
 *             a probe success --> CLOSED; a probe failure --> OPEN;
 *             a probe that does not report within probe_timeout_ms of its own start
 *             counts as a failure (--> OPEN; seen by the next call that finds every
 *             probe slot taken), so the breaker never sticks in HALF_OPEN.
 *   any --reset--> CLOSED;  any --force_open--> FORCED_OPEN (until reset);
 *   any --disable--> DISABLED (admits everything, records nothing, until reset).
 *
 * Threshold vs the reference's tolerance: `failure_threshold` N opens the breaker on the
 * N-th failure counted inside `window_ms`. The reference (fuse) had `tolerance` T and opened
 * on the (T+1)-th failure, so threshold = tolerance + 1; fdn_breaker_opts_from_tolerance()
 * does the conversion and also turns off success resets (fuse let failures only age out).
 * By default a success while closed resets the failure count (docs/protection.md).
 *
 * A closed breaker costs one atomic load before the call and, on success, one relaxed load
 * of the failure count (no allocation, no lock), unless the rate policy, slow-call detection
 * or a time window is configured (those read the clock; the rate policy takes a short
 * mutex per call).
 */
#ifndef FDN_BREAKER_H
#define FDN_BREAKER_H

#include "common.h"
#include "clock.h"
#include "error.h"

FDN_BEGIN_DECLS

/** Telemetry handle (see telemetry.h); optional everywhere. */
typedef struct fdn_telemetry fdn_telemetry_t;

/** One circuit breaker. Opaque. */
typedef struct fdn_breaker fdn_breaker_t;
/** A set of named breakers (one per runtime). Opaque. */
typedef struct fdn_breakers fdn_breakers_t;

/** Breaker states. */
typedef enum fdn_breaker_state {
    FDN_BREAKER_CLOSED = 0,      /**< calls run; failures are counted */
    FDN_BREAKER_OPEN = 1,        /**< calls are rejected until recovery_time elapses */
    FDN_BREAKER_HALF_OPEN = 2,   /**< a bounded number of probe calls run */
    FDN_BREAKER_FORCED_OPEN = 3, /**< rejected until fdn_breaker_reset() */
    FDN_BREAKER_DISABLED = 4,    /**< every call runs, nothing is recorded */
} fdn_breaker_state_t;

/** What a call's result counts as (returned by the classify callback). */
typedef enum fdn_breaker_outcome {
    FDN_BREAKER_SUCCESS = 0, /**< a success */
    FDN_BREAKER_FAILURE = 1, /**< a failure */
    FDN_BREAKER_IGNORE = 2,  /**< neither (e.g. a validation error of the caller) */
    FDN_BREAKER_SLOW = 3,    /**< a success that took too long: counted as slow by the rate
                                  policy, and as a failure when slow_rate_pct is 0 (as a call
                                  lasting slow_call_ms or more is) */
} fdn_breaker_outcome_t;

/** Kind of sliding window used by the failure-rate policy. */
typedef enum fdn_breaker_window_kind {
    FDN_BREAKER_WINDOW_COUNT = 0, /**< the last `rate_window_size` calls */
    FDN_BREAKER_WINDOW_TIME = 1,  /**< calls in the last `rate_window_size` seconds */
} fdn_breaker_window_kind_t;

/**
 * Classify a call's result. Runs on the calling thread, with no lock held.
 * @param rc the call's return code; @param duration_ns its duration (0 when not measured)
 */
typedef fdn_breaker_outcome_t (*fdn_breaker_classify_fn)(int rc, int64_t duration_ns, void *user);

/**
 * Transition callback. Runs with no lock held. A breaker reports its transitions (this
 * callback, and the telemetry event foundation.circuit_breaker.state_change before it) one at
 * a time (never concurrently, never nested) and in the order they happened: usually on the
 * thread that caused the transition, before that thread's call returns; but when a transition
 * happens while the breaker's reports are running (on another thread, or from inside this
 * callback), it is reported by the thread running them, after the reports before it, and the
 * call that caused it returns first (a transition never waits for another thread's report).
 * Each report goes to the options in force at its transition. What a callback can rely on:
 * - Continuity: each report's `from` is the previous report's `to`, and once the reports are
 *   done the last `to` is the breaker's state. (Transitions made while the options in force
 *   have neither on_transition nor telemetry, and no report is waiting, are not reported: the
 *   next report starts from the state they left.)
 * - from == to only for a reset, force_open, disable or fdn_breaker_install that found the
 *   breaker already in the state it sets (a new phase: counts cleared), reported as made;
 *   never for a merged report (below).
 * - When more than 16 transitions wait for their report (a callback slower than the
 *   transitions), the newest waiting report absorbs each new transition: from its `from` to
 *   the new `to`, skipping the states between; and when the new transition returns to that
 *   `from`, the waiting report is dropped instead (neither is reported), so a merge never
 *   reports a non-change. times_opened in the status stays exact.
 * - The thread running the reports returns once none is waiting, so it runs other threads'
 *   reports for as long as they make transitions faster than it reports them (each report it
 *   runs is one transition or a merge of several); once transitions stop, it runs at most 16
 *   more after the one it is running. It is not handed over to another thread: that thread
 *   would have to wait for the running callback.
 * @param name the breaker's name ("" for an unnamed breaker)
 */
typedef void (*fdn_breaker_transition_fn)(const char *name, fdn_breaker_state_t from,
                                          fdn_breaker_state_t to, void *user);

/** Breaker options. Initialise with FDN_BREAKER_OPTS_INIT. */
typedef struct fdn_breaker_opts {
    uint32_t version;             /**< FDN_BREAKER_OPTS_VERSION */
    uint32_t failure_threshold;   /**< opens on the N-th counted failure (>= 1; default 5) */
    int64_t window_ms;            /**< failures older than this are not counted (0 = no age
                                       limit; default 60 000; at most INT64_MAX/4 ns) */
    int64_t recovery_time_ms;     /**< open -> half-open after this (default 30 000) */
    uint32_t half_open_max_calls; /**< concurrent probes in half-open (default 1) */
    int64_t probe_timeout_ms;     /**< a probe not reported within this is a failure
                                       (default 5 000, the config's call_timeout) */
    bool success_resets;          /**< a success while closed clears the count (default true) */
    /* failure-rate policy (off when both rates are 0) */
    uint32_t failure_rate_pct; /**< open when failures*100/calls >= this (1..100, 0 = off) */
    uint32_t slow_rate_pct;    /**< open when slow*100/calls >= this (1..100, 0 = off) */
    fdn_breaker_window_kind_t rate_window_kind; /**< count- or time-based window */
    uint32_t rate_window_size;        /**< calls (count) or seconds (time), 1..4096; default 100 */
    uint32_t minimum_calls;           /**< no rate decision below this many calls (default 10;
                                           with a count window at most rate_window_size) */
    int64_t slow_call_ms;             /**< calls lasting >= this are slow (0 = off). With
                                           slow_rate_pct == 0 a slow call counts as a failure. */
    fdn_breaker_classify_fn classify; /**< NULL: rc < 0 is a failure */
    void *classify_user;              /**< passed to classify */
    fdn_breaker_transition_fn on_transition; /**< optional */
    void *transition_user;                   /**< passed to on_transition */
    fdn_clock_t *clock;                      /**< NULL = system clock; not owned */
    fdn_telemetry_t *telemetry;              /**< NULL = off; not owned. With it the breaker
                                                  also times admitted calls into
                                                  fdn_circuit_breaker_call_duration_seconds
                                                  {breaker,outcome} (docs/telemetry.md) */
} fdn_breaker_opts_t;

/** Current version of fdn_breaker_opts_t, set by the matching _INIT initialiser. */
#define FDN_BREAKER_OPTS_VERSION 1
/** Default options (the config tree's infrastructure.circuit_breaker.default_config). */
#define FDN_BREAKER_OPTS_INIT                                                                      \
    {                                                                                              \
        FDN_BREAKER_OPTS_VERSION, 5, 60000, 30000, 1, 5000, true, 0, 0, FDN_BREAKER_WINDOW_COUNT,  \
            100, 10, 0, NULL, NULL, NULL, NULL, NULL, NULL                                         \
    }

/** A breaker's status (a copy). */
typedef struct fdn_breaker_status {
    fdn_breaker_state_t state;  /**< current state (open past its recovery time reads open) */
    uint32_t failures;          /**< failures currently counted toward the threshold */
    uint32_t window_calls;      /**< calls in the rate window */
    uint32_t window_failures;   /**< failures in the rate window */
    uint32_t window_slow;       /**< slow calls in the rate window */
    uint32_t probes_in_flight;  /**< half-open probes running */
    uint64_t total_failures;    /**< failures recorded since creation */
    uint64_t total_rejected;    /**< calls rejected with FDN_ECIRCUIT_OPEN */
    uint64_t times_opened;      /**< transitions to OPEN */
    int64_t ms_until_half_open; /**< OPEN: ms left (>= 0); other states: -1 */
} fdn_breaker_status_t;

/** Admission ticket from fdn_breaker_acquire(); pass it to fdn_breaker_record(). */
typedef struct fdn_breaker_permit {
    uint64_t word;    /**< state word at admission */
    int64_t start_ns; /**< monotonic start, 0 when not measured */
} fdn_breaker_permit_t;

/**
 * Fill opts from the reference's fuse triple: threshold = tolerance + 1, window = recovery =
 * refresh_ms, success_resets = false, the rest default. Options it fills pass
 * fdn_breaker_opts_validate; on an error *opts is left alone.
 * @return 0, FDN_EINVAL (opts NULL, tolerance outside 0..999999 (threshold 1..1000000), or
 *         refresh_ms outside 1..INT64_MAX / 4000000, the range of window_ms and
 *         recovery_time_ms)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_opts_from_tolerance(fdn_breaker_opts_t *opts, int64_t tolerance,
                                            int64_t refresh_ms);

/**
 * fdn_breaker_opts_from_tolerance that says why it refused: the same options and codes, and
 * on an error a message in err naming the argument and its range (err untouched on success;
 * may be NULL).
 * @param[out] opts filled on success, left alone on an error
 * @param[in] tolerance failures tolerated (threshold = tolerance + 1)
 * @param[in] refresh_ms the window and the recovery time
 * @param[out] err the reason of a refusal; may be NULL
 * @return 0, FDN_EINVAL
 * @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_breaker_opts_from_tolerance_ex(fdn_breaker_opts_t *opts, int64_t tolerance,
                                               int64_t refresh_ms, fdn_error_t *err);

/**
 * Check options.
 * @return 0, FDN_EINVAL (with a message in err)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_opts_validate(const fdn_breaker_opts_t *opts, fdn_error_t *err);

/**
 * Create a standalone breaker.
 * @param[out] out the breaker; @param[in] name copied (NULL = ""); @param[in] opts NULL =
 * defaults
 * @return 0, FDN_EINVAL, FDN_ENOMEM  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_create(fdn_breaker_t **out, const char *name,
                               const fdn_breaker_opts_t *opts);

/** Destroy a standalone breaker (NULL ok; not one owned by a set). @thread_safety owner
 * @since 0.1.0 */
FDN_API void fdn_breaker_destroy(fdn_breaker_t *b);

/**
 * Admit a call or reject it. On 0 the caller must later call fdn_breaker_record() once.
 * @return 0, FDN_ECIRCUIT_OPEN (open, forced open or half-open with every probe taken),
 * FDN_EINVAL (NULL argument)
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_acquire(fdn_breaker_t *b, fdn_breaker_permit_t *permit);

/**
 * Would a call be admitted now? The answer fdn_breaker_acquire would give, including the
 * time-based move from OPEN to HALF_OPEN, without its effects: no state change, no probe slot
 * taken, nothing counted (fuse's `ask`). The answer may be stale by the time the caller acts.
 * @return 0 (would be admitted), FDN_ECIRCUIT_OPEN, FDN_EINVAL (NULL)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_breaker_ask(fdn_breaker_t *b);

/**
 * Record the result of an admitted call (classified by the classify callback).
 * @param rc the call's result code
 * @thread_safety any  @since 0.1.0
 */
FDN_API void fdn_breaker_record(fdn_breaker_t *b, const fdn_breaker_permit_t *permit, int rc);

/**
 * Release an admitted call without recording anything (e.g. it was rejected further down
 * for a reason that says nothing about the dependency). Frees a half-open probe slot.
 * @thread_safety any  @since 0.1.0
 */
FDN_API void fdn_breaker_release(fdn_breaker_t *b, const fdn_breaker_permit_t *permit);

/**
 * Run fn(arg) through the breaker: acquire, call, classify, record.
 * @param[out] fn_rc fn's return value (may be NULL); untouched when rejected
 * @return FDN_ECIRCUIT_OPEN without calling fn, else fn's return value
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_call(fdn_breaker_t *b, int (*fn)(void *arg), void *arg, int *fn_rc);

/* ---- tickets: permits held by the breaker, for callers outside the process --------------- */

/** The most tickets outstanding (taken, neither reported nor expired) per breaker. */
#define FDN_BREAKER_TICKETS_MAX 1024

/**
 * Admit a call as fdn_breaker_acquire does, but keep the permit in the breaker under a
 * 64-bit ticket: for callers that cannot hold a permit between two calls, such as programs
 * using the breaker over HTTP. Report the call with fdn_breaker_report_ticket. A ticket not
 * reported within the breaker's probe_timeout_ms counts as a failure, so a client that dies
 * cannot hold the breaker half-open or hide its failures; expired tickets are settled by the
 * next ticket call on the breaker (or fdn_breaker_tickets_settle), in the order taken.
 * Tickets are not reused: each id carries the breaker's next sequence number (mixed with a
 * random per-breaker key, so ids are not guessable small integers).
 * @return 0 (*ticket set), FDN_ECIRCUIT_OPEN, FDN_EBUSY (FDN_BREAKER_TICKETS_MAX outstanding:
 * nothing taken), FDN_ENOMEM, FDN_EINVAL
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_breaker_acquire_ticket(fdn_breaker_t *b, uint64_t *ticket);

/**
 * Report the call a ticket admitted.
 * @param outcome FDN_BREAKER_SUCCESS, _FAILURE, _SLOW or _IGNORE (releases the ticket and
 *                records nothing, as fdn_breaker_release)
 * @param duration_ns the call's duration; < 0: the time since the ticket was taken, on the
 *                breaker's clock. Used for slow_call_ms and for a half-open probe's timeout.
 * @return 0; FDN_ENOENT when the ticket is unknown, already reported, or expired (it was
 * then counted as a failure); FDN_EINVAL (bad outcome, NULL)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_breaker_report_ticket(fdn_breaker_t *b, uint64_t ticket,
                                      fdn_breaker_outcome_t outcome, int64_t duration_ns);

/** Count the expired tickets as failures now; returns the tickets still outstanding.
 * @thread_safety any  @since 0.2.0 */
FDN_API size_t fdn_breaker_tickets_settle(fdn_breaker_t *b);

/**
 * Options from JSON text: an object whose members override the fields of *opts (fill it with
 * defaults first). Members: failure_threshold, window_ms, recovery_time_ms,
 * half_open_max_calls, probe_timeout_ms, success_resets (bool), failure_rate_pct,
 * slow_rate_pct, rate_window ("count" or "time"), rate_window_size, minimum_calls,
 * slow_call_ms. The result is validated as fdn_breaker_opts_validate does. On error *opts is
 * unchanged and err names the member.
 * @return 0, FDN_EINVAL (not JSON, not an object, an unknown member, a wrong type, a value
 * out of range), FDN_ENOMEM
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_breaker_opts_parse(const char *json, size_t len, fdn_breaker_opts_t *opts,
                                   fdn_error_t *err);

/** Current state (an OPEN breaker whose recovery time passed still reads OPEN until the next
 * call). @thread_safety any  @since 0.1.0 */
FDN_API fdn_breaker_state_t fdn_breaker_state(const fdn_breaker_t *b);

/** Fill a status copy. @return 0, FDN_EINVAL @thread_safety any @since 0.1.0 */
FDN_API int fdn_breaker_status(fdn_breaker_t *b, fdn_breaker_status_t *out);

/** Back to CLOSED with all counts cleared (also leaves FORCED_OPEN / DISABLED).
 * @thread_safety any  @since 0.1.0 */
FDN_API void fdn_breaker_reset(fdn_breaker_t *b);

/** Reject every call until reset. @thread_safety any  @since 0.1.0 */
FDN_API void fdn_breaker_force_open(fdn_breaker_t *b);

/** Admit every call and record nothing until reset. @thread_safety any  @since 0.1.0 */
FDN_API void fdn_breaker_disable(fdn_breaker_t *b);

/** The breaker's name (static for its lifetime). @thread_safety any  @since 0.1.0 */
FDN_API const char *fdn_breaker_name(const fdn_breaker_t *b);

/** "closed", "open", "half_open", "forced_open", "disabled". @thread_safety any
 * @since 0.1.0 */
FDN_API const char *fdn_breaker_state_name(fdn_breaker_state_t s);

/* ---- named sets ------------------------------------------------------------------------ */

/**
 * Create an empty breaker set.
 * @param[in] defaults options used by fdn_breaker_get_or_create (NULL = FDN_BREAKER_OPTS_INIT)
 * @return 0, FDN_ENOMEM, FDN_EINVAL  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breakers_create(fdn_breakers_t **out, const fdn_breaker_opts_t *defaults);

/** Destroy the set and every breaker in it (NULL ok). @thread_safety owner @since 0.1.0 */
FDN_API void fdn_breakers_destroy(fdn_breakers_t *set);

/** Default bound on the distinct names a set holds (fdn_breakers_set_max). */
#define FDN_BREAKERS_MAX_DEFAULT 10000

/**
 * Bound the number of distinct names the set holds, listed and removed ones together (a
 * removed breaker's memory is kept, see fdn_breaker_remove): past it, creating a new name
 * fails with FDN_ENOSPC and changes nothing. A removed name that comes back does not count
 * again. Lowering the bound below the current count removes nothing; it only refuses new
 * names. The runtime feeds infrastructure.circuit_breaker.max_breakers. Default
 * FDN_BREAKERS_MAX_DEFAULT: breakers made over the HTTP API come from remote clients, and each
 * costs memory and metric series.
 * @return 0, FDN_EINVAL (set NULL or max 0)  @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_breakers_set_max(fdn_breakers_t *set, size_t max);

/**
 * Add a named breaker. Breakers live until the set is destroyed (fdn_breaker_remove only
 * unlists them), so *out stays valid.
 * @param[in] opts NULL = the set's defaults
 * @return 0, FDN_EEXIST (name taken; *out is the existing one), FDN_ENOSPC (the set holds
 * its maximum of names, fdn_breakers_set_max), FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_create_in(fdn_breakers_t *set, const char *name,
                                  const fdn_breaker_opts_t *opts, fdn_breaker_t **out);

/**
 * Look a breaker up by name (a hash lookup under the set's mutex: hot paths should keep the
 * pointer, which stays valid as long as the set).
 * @return 0, FDN_EBREAKER_NOT_FOUND  @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_breaker_get(fdn_breakers_t *set, const char *name, fdn_breaker_t **out);

/**
 * Remove a breaker from the set: it is no longer listed nor found by name, and a later
 * create or install of the name starts it afresh (closed, counts cleared, the new options).
 * The name is found again (get, list, handles) only once that is done, never in the state it
 * was removed in; a create or install of the name on another thread meanwhile waits until it
 * is done (then answers as for a listed name), while one from a callback of the revive's own
 * reset report, on the reviving thread, answers FDN_EEXIST at once with the breaker being
 * made afresh. Its reset is reported (on_transition) before it is found again, unless
 * another thread is reporting the breaker's transitions at that time (a handle held across
 * the removal): then that thread reports it, in order, possibly after.
 * Its memory is kept until the set is destroyed (and reused if the name comes back), so a
 * handle obtained earlier stays valid: calls through it keep working on a breaker nobody
 * lists. Memory kept is bounded by the number of distinct names ever created. An install
 * of the name applying its options on another thread is waited for (a swap and a reset, no
 * callback: see fdn_breaker_install).
 * @return 0, FDN_EBREAKER_NOT_FOUND, FDN_EINVAL, FDN_ENOMEM (the breaker stays listed)
 * @thread_safety any  @since 0.2.0
 */
FDN_API int fdn_breaker_remove(fdn_breakers_t *set, const char *name);

/**
 * Re-install: create the breaker, or reset an existing one with new options (the
 * reference's install semantics: state forced closed, history cleared). Against a remove
 * and a create (revive) of the name on other threads it is atomic: its options are applied
 * while the name is listed, and a remove waits until they are; a revive under way is waited
 * for first, and a name removed before they were applied is made afresh with them (as a
 * create). So when it returns 0 the name is found with these options, unless a remove (or an
 * install) came after. The reset is reported (on_transition) after that, with no claim held.
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any: calls in flight keep reading the options they loaded (options are an
 * immutable block swapped atomically; the old block is kept, ~200 bytes, until the set is
 * destroyed, so re-install on configuration changes, not per call). Calls admitted before the
 * re-install are ignored when they report (the new options and the reset take effect together:
 * no such call is counted under the new options).
 * @since 0.1.0
 */
FDN_API int fdn_breaker_install(fdn_breakers_t *set, const char *name,
                                const fdn_breaker_opts_t *opts, fdn_breaker_t **out);

/** Set the defaults used by later creations with NULL opts (runtime feeds
 * infrastructure.circuit_breaker.default_config).
 * @return 0, FDN_EINVAL  @thread_safety any  @since 0.1.0 */
FDN_API int fdn_breakers_set_defaults(fdn_breakers_t *set, const fdn_breaker_opts_t *defaults);

/** Copy the set's defaults (what a creation with NULL opts uses) into *out.
 * @return 0, FDN_EINVAL  @thread_safety any  @since 0.2.0 */
FDN_API int fdn_breakers_get_defaults(fdn_breakers_t *set, fdn_breaker_opts_t *out);

/** Copy the options in force on b (its create's, or its last install's) into *out, e.g. to
 * re-install only options that changed (each install keeps the replaced options until the set
 * is destroyed). An install on another thread meanwhile may go either way.
 * @return 0, FDN_EINVAL (b or out NULL)  @thread_safety any  @since 0.3.0 */
FDN_API int fdn_breaker_get_opts(const fdn_breaker_t *b, fdn_breaker_opts_t *out);

/** Number of breakers in the set. @thread_safety any @since 0.1.0 */
FDN_API size_t fdn_breakers_count(fdn_breakers_t *set);

/**
 * The names of the set's breakers, in creation order.
 * @param[out] out_names  array of *out_count strings in ONE allocation (free the array with
 *                        fdn_free); NULL when the count is 0
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_breakers_list(fdn_breakers_t *set, char ***out_names, size_t *out_count);

/**
 * The set's listed breakers, in creation order, as handles (valid as long as the set, like
 * fdn_breaker_get's): one pass over the set, for code that reads every breaker's status
 * (fdn_breaker_name gives each one's name).
 * @param[out] out  array of *out_count handles (free it with fdn_free); NULL when the count is 0
 * @return 0, FDN_EINVAL, FDN_ENOMEM
 * @thread_safety any  @since 0.3.0
 */
FDN_API int fdn_breakers_handles(fdn_breakers_t *set, fdn_breaker_t ***out, size_t *out_count);

FDN_END_DECLS

#endif /* FDN_BREAKER_H */
