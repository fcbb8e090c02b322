/* DESIGN: the service manager's view of `fdn serve` (systemd Type=notify). The protocol is
 * libsystemd's sd_notify: datagrams "READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1" to
 * the socket named by NOTIFY_SOCKET. The build links libsystemd when pkg-config finds it
 * (FDN_HAVE_SYSTEMD); without it, or without NOTIFY_SOCKET at run time, everything here is a
 * no-op, so the same binary runs under any manager or none.
 *
 * The notify thread wakes every half watchdog interval (WATCHDOG_USEC; 1 s without a
 * watchdog). It sends STATUS= whenever the runtime's health summary changed (a service
 * restarting, back to running), and, with a watchdog, WATCHDOG=1 only if the runtime's
 * supervisor thread answers within that half (fdn_supervisor_wait_idle returns once it has
 * handled everything due) and has not escalated. A hung supervisor therefore stops the pings
 * and the manager kills and restarts the process. The thread sleeps on a condition variable
 * (CLOCK_MONOTONIC) so that serve_notify_stop wakes it at once; after stop returns the
 * thread sends nothing more, which lets the caller send STOPPING=1 as the last word. */
#include "serve_notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef FDN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void serve_notify_init(serve_notify_t *n)
{
    memset(n, 0, sizeof *n);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&n->mu, NULL);
#ifdef FDN_HAVE_SYSTEMD
    const char *sock = getenv("NOTIFY_SOCKET");
    n->active = sock != NULL && sock[0] != '\0';
    uint64_t usec = 0;
    if (n->active && sd_watchdog_enabled(0, &usec) > 0)
        n->wd_usec = usec;
#endif
}

void serve_notify_send(serve_notify_t *n, const char *fmt, ...)
{
    if (!n->active)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
#ifdef FDN_HAVE_SYSTEMD
    (void)sd_notify(0, msg);
#endif
}

void serve_notify_status_text(const fdn_runtime_health_t *h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %zu/%zu services running%s%s", fdn_runtime_status_name(h->status),
             h->running, h->services, h->restarting > 0 ? ", restarting " : "",
             h->restarting > 0 ? (h->restarting == 1 ? "1" : "several") : "");
}

void serve_notify_status(serve_notify_t *n, const char *text)
{
    if (!n->active)
        return;
    pthread_mutex_lock(&n->mu);
    snprintf(n->status, sizeof n->status, "%s", text);
    serve_notify_send(n, "STATUS=%s", text);
    pthread_mutex_unlock(&n->mu);
}

static void *notify_main(void *arg)
{
    serve_notify_t *n = arg;
    fdn_supervisor_t *sup = fdn_runtime_supervisor(n->rt);
    int64_t half_ns = n->wd_usec > 0 ? (int64_t)(n->wd_usec / 2) * 1000 : 1000000000;
    if (half_ns < 1000000)
        half_ns = 1000000;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        pthread_mutex_unlock(&n->mu);
        bool alive = true;
        if (n->wd_usec > 0) {
            /* the supervisor thread must come round within half an interval */
            int rc = fdn_supervisor_wait_idle(sup, half_ns / 1000000);
            alive = rc == 0 && !fdn_supervisor_failed(sup);
        }
        fdn_runtime_health_t h;
        char status[256] = "";
        if (fdn_runtime_health(n->rt, &h, NULL, 0, NULL) == 0)
            serve_notify_status_text(&h, status, sizeof status);
        pthread_mutex_lock(&n->mu);
        if (n->stop)
            break;
        if (status[0] != '\0' && strcmp(status, n->status) != 0) {
            memcpy(n->status, status, sizeof status);
            serve_notify_send(n, "STATUS=%s", status);
        }
        if (n->wd_usec > 0 && alive)
            serve_notify_send(n, "WATCHDOG=1");
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + half_ns;
        ts.tv_sec = (time_t)(at / 1000000000);
        ts.tv_nsec = (long)(at % 1000000000);
        while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int serve_notify_thread_start(serve_notify_t *n, fdn_runtime_t *rt)
{
    if (!n->active || rt == NULL)
        return 0;
    n->rt = rt;
    if (pthread_create(&n->thread, NULL, notify_main, n) != 0)
        return -1;
    n->thread_started = true;
    return 0;
}

void serve_notify_stop(serve_notify_t *n)
{
    if (!n->thread_started)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    n->thread_started = false;
}

void serve_notify_fini(serve_notify_t *n)
{
    serve_notify_stop(n);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
}
