/* DESIGN: the end of `fdn serve`'s main loop. The main thread blocks SIGINT, SIGTERM, SIGHUP
 * and wake_sig before any thread exists and parks in sigwait(); the runtime's on_escalation
 * callback (supervisor thread) records the failed service in the watch, publishes it with a
 * release store of `escalated`, and pthread_kill()s wake_sig to the main thread, which then
 * reads the record after an acquire load. No lock: one writer (escalation runs once), and
 * the reader reads only after seeing the flag. A blocked signal stays pending, so an
 * escalation during startup ends the first wait at once. wake_sig gets a handler that does
 * nothing (serve_watch_init), so that one sent by someone else is ignored whichever thread
 * receives it, instead of its default action killing the process. Factored out of
 * cmd_serve.c so that tests/unit/test_http.c compiles and tests it. */
#include "serve_wait.h"

#include <stdio.h>
#include <string.h>

/* The handler of wake_sig: does nothing (async-signal-safe). It only runs when the kernel
 * hands a process-directed wake_sig (someone's `kill -USR1`) to a thread that does not block
 * it while the waiter is outside sigwait: liburcu-cds's hash-table worker thread blocks every
 * signal but SIGUSR1 (its SIGRCU), and the default action would kill the process. */
static void on_wake_sig(int sig)
{
    (void)sig;
}

void serve_watch_init(serve_watch_t *w, int wake_sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake_sig;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(wake_sig, &sa, NULL);
    memset(w, 0, sizeof *w);
    w->waiter = pthread_self();
    w->wake_sig = wake_sig;
    atomic_init(&w->escalated, false);
}

void serve_watch_escalation(fdn_runtime_t *rt, const char *service, int code, void *user)
{
    (void)rt;
    serve_watch_t *w = user;
    if (atomic_load_explicit(&w->escalated, memory_order_acquire))
        return; /* recorded already */
    snprintf(w->service, sizeof w->service, "%s", service != NULL ? service : "?");
    w->code = code;
    atomic_store_explicit(&w->escalated, true, memory_order_release);
    pthread_kill(w->waiter, w->wake_sig);
}

serve_end_t serve_wait(serve_watch_t *w, const sigset_t *set, int *sig)
{
    for (;;) {
        int s = 0;
        if (sigwait(set, &s) != 0)
            continue;
        if (atomic_load_explicit(&w->escalated, memory_order_acquire))
            return SERVE_END_ESCALATION;
        if (s == w->wake_sig)
            continue; /* not ours: no escalation recorded */
        if (sig != NULL)
            *sig = s;
        return SERVE_END_SIGNAL;
    }
}
