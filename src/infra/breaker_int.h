/* Private breaker interface (tests and diagnostics). */
#ifndef FDN_INFRA_BREAKER_INT_H
#define FDN_INFRA_BREAKER_INT_H

#include <fdn/breaker.h>

#include <stdatomic.h>
#include <stdint.h>

/* How many times fdn_breaker_get searched the set (each search takes the set's mutex). Lets
 * tests check that hot paths resolve breakers from their caches. */
uint64_t fdn__breakers_lookups(fdn_breakers_t *s);

/* Tests: fn(s, b, user) runs on the thread of every fdn_breaker_install of an existing name,
 * after it found the name listed (b) and before it applies its options, with no lock held
 * (a deterministic place for a race with remove and revive). NULL: none. */
void fdn__breakers_set_install_hook(fdn_breakers_t *s,
                                    void (*fn)(fdn_breakers_t *s, fdn_breaker_t *b, void *user),
                                    void *user);

/* Tests: fn(s, b, user) runs on the thread of every fdn_breaker_install of an existing name
 * while it holds its claim (that a remove waits for), before it applies its options, with no
 * lock held. NULL: none. */
void fdn__breakers_set_claim_hook(fdn_breakers_t *s,
                                  void (*fn)(fdn_breakers_t *s, fdn_breaker_t *b, void *user),
                                  void *user);

/* Tests: where a breaker's test hook runs (fdn__breaker_test_hook). */
typedef enum fdn__breaker_at {
    /* fdn_breaker_install or a revive: the new options are in force and the breaker reset
     * (one section under its lock, released), before the reset is reported */
    FDN__BREAKER_AT_APPLIED,
    /* fdn_breaker_acquire of a half-open breaker: it read the clock, before it acts on what it
     * read (takes a probe slot, or finds every slot taken and judges the probes lost) */
    FDN__BREAKER_AT_PROBE_CLOCK,
} fdn__breaker_at_t;

typedef void (*fdn__breaker_hook_fn)(fdn_breaker_t *b, fdn__breaker_at_t at, void *user);

/* Tests: fn(b, at, user) runs on the calling thread at each place `at` above, with no lock
 * held (at FDN__BREAKER_AT_APPLIED an install still holds its claim, which a remove of the
 * name waits for): a deterministic place to hold a thread for a race. NULL: none. Never read
 * on the closed path. */
void fdn__breaker_test_hook(fdn_breaker_t *b, fdn__breaker_hook_fn fn, void *user);

/* Whether b is listed in its set now (false once fdn_breaker_remove took it out, and for a
 * standalone breaker). A relaxed read: a removal racing with the caller may go either way. */
bool fdn__breaker_listed(const fdn_breaker_t *b);

/* How many option sets a breaker keeps alive (1 + re-installs; see fdn_breaker_install). */
size_t fdn__breaker_cfg_count(fdn_breaker_t *b);

/* Record the call of `permit` with a known outcome (FDN_BREAKER_IGNORE releases it) and
 * duration (dur_ns < 0: measured from the permit). For tickets (breaker_ticket.c). */
void fdn__breaker_record_outcome(fdn_breaker_t *b, const fdn_breaker_permit_t *permit,
                                 fdn_breaker_outcome_t outcome, int64_t dur_ns);
/* The breaker's clock now (monotonic ns) and its probe timeout (ns). */
int64_t fdn__breaker_now_ns(const fdn_breaker_t *b);
int64_t fdn__breaker_probe_timeout_ns(const fdn_breaker_t *b);
/* Where the breaker keeps its ticket table (NULL until the first ticket); freed with
 * fdn__tickets_free when the breaker is destroyed. */
_Atomic(void *) *fdn__breaker_ticket_anchor(fdn_breaker_t *b);
void fdn__tickets_free(void *tickets);

#endif
