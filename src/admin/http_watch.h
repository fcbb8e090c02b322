/*
 * Private interface of the admin server's request deadline (http_watch.c): a bound on the time
 * a client takes to send a whole request (headers and body), which libmicrohttpd 0.9.75 lacks
 * (its only timeout is an idle one, which a client sending a byte a second never reaches).
 */
#ifndef FDN_ADMIN_HTTP_WATCH_H
#define FDN_ADMIN_HTTP_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

typedef struct fdn__http_watch fdn__http_watch_t;

/**
 * A watchdog: a request must be received whole within request_timeout_s of the connection's
 * start, or, for the next request of a keep-alive connection, within idle_timeout_s +
 * request_timeout_s of the end of the previous response. Late connections are shut down.
 * @return 0, FDN_EINVAL (request_timeout_s 0), FDN_ENOMEM, FDN_EIO (no thread)
 */
int fdn__http_watch_start(fdn__http_watch_t **out, unsigned request_timeout_s,
                          unsigned idle_timeout_s);
/** Stops the thread. Connections may still close (callbacks stay valid) until _free. */
void fdn__http_watch_stop(fdn__http_watch_t *w);
/** Frees the watchdog after the MHD daemon stopped (no connection left). NULL: no-op. */
void fdn__http_watch_free(fdn__http_watch_t *w);

/** MHD_OPTION_NOTIFY_CONNECTION callback; cls is the watchdog. */
void fdn__http_watch_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe);
/** The request is received whole and is being handled: no deadline until it completes.
 * false: the watchdog already cut the connection (drop it, do not handle the request). */
bool fdn__http_watch_handling(struct MHD_Connection *con);
/** The request completed: the next one on this connection gets its keep-alive deadline. */
void fdn__http_watch_done(fdn__http_watch_t *w, struct MHD_Connection *con);
/** Connections cut by the deadline so far. */
uint64_t fdn__http_watch_cut(const fdn__http_watch_t *w);
/* Shut down (shutdown(2), SHUT_RDWR) the socket of every open connection, whatever its state:
 * the server's shutdown deadline (fdn_admin_shutdown). Their server threads then close them
 * (an answer being written fails), and MHD's completion callbacks run. Any thread. */
void fdn__http_watch_close_all(fdn__http_watch_t *w);

#endif
