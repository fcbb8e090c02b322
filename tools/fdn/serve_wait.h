/* fdn serve: waiting for the end of the serve loop, a stop signal or a runtime escalation. */
#ifndef FDN_CLI_SERVE_WAIT_H
#define FDN_CLI_SERVE_WAIT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <fdn/runtime.h>

/* What ended the wait. */
typedef enum serve_end {
    SERVE_END_SIGNAL = 0,     /* SIGINT/SIGTERM/SIGHUP (any signal of the set but wake_sig) */
    SERVE_END_ESCALATION = 1, /* the runtime escalated: exit non-zero so it gets restarted */
} serve_end_t;

typedef struct serve_watch {
    pthread_t waiter;       /* the thread that calls serve_wait */
    int wake_sig;           /* sent to it on escalation; must be in the waited set */
    _Atomic bool escalated; /* release by the callback, acquire by serve_wait */
    int code;               /* escalation: the failure code (written before `escalated`) */
    char service[64];       /* escalation: the service that exceeded its restart intensity */
} serve_watch_t;

/* Initialise for the calling thread, which will call serve_wait, and give wake_sig a handler
 * that does nothing (a wake_sig delivered to another thread is then ignored, not fatal). */
void serve_watch_init(serve_watch_t *w, int wake_sig);

/* fdn_runtime_escalation_fn (user = the watch): records the service and code, then wakes the
 * waiter with wake_sig. Runs on the supervisor thread; async-signal-safe use is not needed. */
void serve_watch_escalation(fdn_runtime_t *rt, const char *service, int code, void *user);

/* Wait (sigwait on `set`, which the caller blocked in every thread) until a stop signal or
 * an escalation. A wake_sig without an escalation (sent by someone else) is ignored. An
 * escalation that happened before the call is seen at once (its signal is pending).
 * *sig (optional) is the stop signal received. */
serve_end_t serve_wait(serve_watch_t *w, const sigset_t *set, int *sig);

#endif
