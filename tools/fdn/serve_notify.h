/* fdn serve: the service manager's notification protocol (sd_notify), optional. */
#ifndef FDN_CLI_SERVE_NOTIFY_H
#define FDN_CLI_SERVE_NOTIFY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <fdn/runtime.h>

typedef struct serve_notify {
    bool active;      /* NOTIFY_SOCKET set and the build has libsystemd */
    uint64_t wd_usec; /* WATCHDOG_USEC for this process; 0: no watchdog */
    fdn_runtime_t *rt;
    char status[256]; /* last STATUS= sent by the thread (under mu) */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;         /* under mu */
} serve_notify_t;

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC (without libsystemd or NOTIFY_SOCKET: inactive, and
 * every other call is a no-op). serve_notify_fini releases it, after the last caller (the
 * runtime's callbacks: destroy the runtime first). */
void serve_notify_init(serve_notify_t *n);
/* Sends one notification ("READY=1", "STATUS=...", ...); formatted like printf. */
void serve_notify_send(serve_notify_t *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Starts the notify thread (when active): every WATCHDOG_USEC/2 (1 s without a watchdog) it
 * sends STATUS= when the runtime's health summary changed and, when the manager asked for a
 * watchdog, WATCHDOG=1 only if the supervisor thread answers (fdn_supervisor_wait_idle) and
 * has not escalated. Returns 0 or -1 (thread creation failed). */
int serve_notify_thread_start(serve_notify_t *n, fdn_runtime_t *rt);
/* The STATUS= text for a health summary ("healthy: 5/5 services running"). */
void serve_notify_status_text(const fdn_runtime_health_t *h, char *buf, size_t cap);
/* Sends STATUS=text and remembers it as the last status, so the thread sends the health
 * summary again once it differs (e.g. after "restarting service X"). Any thread. */
void serve_notify_status(serve_notify_t *n, const char *text);
/* Stops and joins the notify thread (no WATCHDOG=1 is sent after it returns). */
void serve_notify_stop(serve_notify_t *n);

void serve_notify_fini(serve_notify_t *n);

#endif
