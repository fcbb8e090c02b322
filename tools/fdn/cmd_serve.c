/* DESIGN: fdn serve: run a runtime with its built-in services and the admin HTTP API until
 * SIGINT/SIGTERM/SIGHUP (a hang-up, the terminal or ssh session closing, stops it as cleanly
 * as SIGTERM instead of killing it before the event store is flushed).
 *
 * The runtime owns every service (config server, durable event store under
 * <data_dir>/events.db, telemetry, connection manager, rate limiter, breakers), creates the
 * data directory and makes the config drive the services; this command only creates the
 * runtime from --config/--data-dir, mounts the admin handlers on the runtime's services and
 * waits for a signal.
 *
 * Order: the listen socket is bound first (fdn_admin_bind), so a busy port or a bad address
 * fails before the runtime creates the data directory or the event store.
 *
 * Threads: SIGINT/SIGTERM/SIGHUP/SIGUSR1 are blocked before any thread exists, so every thread
 * inherits the mask and the main thread alone receives them with sigwait() (serve_wait.c).
 * If the runtime escalates (a service failed past its restart intensity, everything
 * stopped), its on_escalation callback wakes the main thread with SIGUSR1; the command then
 * shuts down like on SIGTERM but exits 1 naming the service, so that a service manager
 * restarts it instead of leaving a server that answers 503 forever. An escalation before every
 * service runs ends the start there: no "listening on" line, no registration in etcd, no
 * READY=1 (a service manager sees a start that failed). Shutdown runs in order on
 * the main thread: HTTP server (stop taking requests, finish in-flight ones, join its
 * threads), then the runtime (services stopped in reverse start order; the event store
 * flushes and closes the SQLite file).
 *
 * The runtime's stop has no time limit of its own (fdn_runtime_shutdown(rt, -1)), by choice:
 * every step that can hang on something outside the process is bounded where it waits (the
 * HTTP drain by --shutdown-timeout, the event store on PostgreSQL by
 * storage.warm.postgres.stop_timeout_ms, which spools or fails what it had not committed), and
 * the rest is the local store's flush, which is what makes the stop clean. A bound here would
 * gain nothing: fdn_runtime_destroy waits for the stop without limit anyway, and exiting
 * while service threads still run would cut the store's flush mid-write and run exit
 * handlers under live threads. A stop that still hangs is a defect; the service manager's
 * TimeoutStopSec (deploy/systemd/fdn.service: 60 s, above the default bounds' 5 s + 5 s) then
 * SIGKILLs the process: this command runs the store durable (not FDN_EVENTS_FAST), so an
 * append acknowledged to a client was committed or spooled and fsynced, and a kill loses none
 * (the exception is the store's unavailable_buffer, acknowledged from memory while the store
 * was stopped for a restart: a clean stop is what commits it, one more reason not to cut it).
 *
 * --etcd URL: the runtime's registry gets a shared part on etcd (fdn_registry_open, namespace =
 * the runtime's name), and once HTTP is served the process registers itself there: service
 * "fdn", instance "<host>:<port>", endpoint its admin URL, metadata pid and host. Every fdn
 * serve of the fleet on the same etcd then lists the others in GET /v1/registry ("shared").
 * etcd unreachable at start does not stop the server (start_unreachable): it serves its local
 * config and an empty registry cache, marked stale in /health, and registers itself and follows
 * etcd's config once etcd answers. A URL that is not etcd's (bad syntax, another server) does.
 *
 * --postgres URL: the event store's durable tier is PostgreSQL (storage.warm.backend
 * "postgres", docs/events-postgres.md): ids are global positions, and every fdn serve on the
 * same database appends to and reads one log.
 *
 * Operating it (serve_notify.c, serve_log.c): under systemd (Type=notify) READY=1 is sent only
 * once every supervised service runs and the HTTP API answers, after the "listening on" line;
 * STATUS= follows restarts; STOPPING=1 when a stop begins. Notable events go to stderr as
 * structured lines: start and stop, restarts and escalation (the runtime's callbacks), config
 * changes and breaker transitions (an event store subscription to the runtime's own events),
 * slow requests and, with --access-log, every request (the admin server's request hook). */
#include "cli.h"
#include "serve_log.h"
#include "serve_notify.h"
#include "serve_wait.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <fdn/admin.h>
#include <fdn/runtime.h>

typedef struct serve_opts {
    const char *config;
    const char *data_dir;
    const char *listen;
    const char *token_file;
    const char *redis;
    int64_t max_body;
    const char *etcd;
    const char *log_format;
    const char *log_level;
    bool access_log;
    int64_t slow_ms;
    const char *postgres;
    int64_t request_timeout_s;
    int64_t idle_timeout_s;
    int64_t max_conns;
    int64_t max_conns_per_ip;
    int64_t threads;             /* 0: the default (serve_threads_default) */
    int64_t shutdown_timeout_ms; /* 0: the server's default */
} serve_opts_t;

/* What the runtime's and the server's callbacks need. */
typedef struct serve_ctx {
    serve_watch_t watch;
    serve_notify_t notify;
    bool access_log;
    int64_t slow_ns;
} serve_ctx_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fdn serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT]\n"
            "                 [--token-file FILE] [--max-body BYTES] [--redis URL]\n"
            "                 [--etcd URL] [--postgres URL]\n"
            "                 [--log-format text|json] [--log-level LEVEL] [--access-log]\n"
            "                 [--slow-request-ms MS] [--request-timeout SECONDS]\n"
            "                 [--idle-timeout SECONDS] [--max-connections N]\n"
            "                 [--max-connections-per-ip N] [--threads N]\n"
            "                 [--shutdown-timeout MS]\n"
            "\n"
            "Run a Foundation runtime with the admin HTTP API until SIGINT, SIGTERM or SIGHUP.\n"
            "\n"
            "  --config FILE      JSON configuration (default: built-in defaults + environment)\n"
            "  --data-dir DIR     durable data (default %s; created if missing)\n"
            "  --listen ADDR:PORT HTTP address (default %s; port 0 = any free port)\n"
            "  --token-file FILE  bearer token required on every request; mandatory when\n"
            "                     ADDR is not a loopback address\n"
            "  --max-body BYTES   request body limit (default 1048576)\n"
            "  --redis URL        share rate limits through Redis (redis://host[:port][/db]);\n"
            "                     the same as infrastructure.rate_limiting.backend \"redis\" and\n"
            "                     .redis.url URL, over the config file and the environment\n"
            "  --etcd URL         a fleet-wide registry on etcd (http://host:port): this process\n"
            "                     registers itself (service fdn) and GET /v1/registry lists the\n"
            "                     fleet\n"
            "  --postgres URL     the event store on PostgreSQL (postgresql://user@host:port/db),\n"
            "                     shared with every process on the same database: the same as\n"
            "                     storage.warm.backend \"postgres\" and storage.warm.postgres.url\n"
            "                     URL, over the config file and the environment\n"
            "  --log-format FMT   stderr log lines: text (key=value, the default) or json\n"
            "  --log-level LEVEL  least severe level logged: debug, info (default), warn, error\n"
            "  --access-log       log every HTTP request (whatever the level)\n"
            "  --slow-request-ms MS  log a warning for requests slower than MS (default 1000;\n"
            "                     0: never)\n"
            "  --request-timeout SECONDS  time a client has to send a whole request, headers\n"
            "                     and body (default 10); a slower one is disconnected\n"
            "  --idle-timeout SECONDS  close a connection idle this long (default 10)\n"
            "  --max-connections N  concurrent connections (default: what the open-file limit\n"
            "                     allows, at most 65536)\n"
            "  --max-connections-per-ip N  concurrent connections from one client address\n"
            "                     (default: no such limit; clients behind one proxy or on\n"
            "                     loopback share an address)\n"
            "  --threads N        HTTP server threads, 1-64 (default: the online CPUs, at\n"
            "                     least 2 and at most 16)\n"
            "  --shutdown-timeout MS  on a stop signal, how long to wait for in-flight\n"
            "                     requests to be answered, 1-86400000 (default 5000); then\n"
            "                     reads waiting on PostgreSQL answer 503, appends waiting for\n"
            "                     their commit answer 503 with their outcome unknown (the\n"
            "                     event may still be stored: look it up before posting it\n"
            "                     again), and every connection is closed, cutting answers\n"
            "                     not yet read; then the event store stops, on PostgreSQL\n"
            "                     within storage.warm.postgres.stop_timeout_ms (default\n"
            "                     5000), spooling what it could not commit\n"
            "\n"
            "Under systemd (Type=notify, NOTIFY_SOCKET) it sends READY=1 once every service\n"
            "runs and the API answers, STATUS= as services restart, STOPPING=1 on shutdown and\n"
            "WATCHDOG=1 while the supervisor answers, when WatchdogSec= is set.\n",
            FDN_CLI_DEFAULT_DATA_DIR, FDN_ADMIN_DEFAULT_LISTEN);
}

static int parse(int argc, char **argv, serve_opts_t *o)
{
    const cli_optdef_t defs[] = {
        {.name = "--config", .str = &o->config},
        {.name = "--data-dir", .str = &o->data_dir},
        {.name = "--listen", .str = &o->listen},
        {.name = "--token-file", .str = &o->token_file},
        {.name = "--max-body", .num = &o->max_body, .min = 1, .max = 1 << 30},
        {.name = "--redis", .str = &o->redis},
        {.name = "--etcd", .str = &o->etcd},
        {.name = "--postgres", .str = &o->postgres},
        {.name = "--log-format", .str = &o->log_format},
        {.name = "--log-level", .str = &o->log_level},
        {.name = "--access-log", .seen = &o->access_log},
        {.name = "--slow-request-ms", .num = &o->slow_ms, .min = 0, .max = 86400000},
        {.name = "--request-timeout", .num = &o->request_timeout_s, .min = 1, .max = 86400},
        {.name = "--idle-timeout", .num = &o->idle_timeout_s, .min = 1, .max = 86400},
        {.name = "--max-connections", .num = &o->max_conns, .min = 1, .max = 65536},
        {.name = "--max-connections-per-ip", .num = &o->max_conns_per_ip, .min = 1, .max = 65536},
        {.name = "--threads", .num = &o->threads, .min = 1, .max = 64},
        {.name = "--shutdown-timeout", .num = &o->shutdown_timeout_ms, .min = 1, .max = 86400000},
    };
    return cli_parse(argc, argv, "serve", defs, sizeof(defs) / sizeof(defs[0]), usage);
}

/* The server threads when --threads is not given: one per online CPU, at least 2 (a thread
 * can be held by a slow handler while the other serves) and at most 16 (each thread is an
 * event loop serving many connections; past that, more threads add memory, not speed). */
static unsigned serve_threads_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 2 ? 2u : n > 16 ? 16u : (unsigned)n;
}

static int read_token(const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, 4096, &buf, &len);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot read token file %s (%s)\n", path,
                rc == -EFBIG ? "larger than 4096 bytes" : cli_read_error(rc));
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        buf[--len] = '\0';
    bool ok = len >= 16;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] > 0x20 && buf[i] < 0x7f;
    if (!ok) {
        fprintf(stderr,
                "fdn serve: token in %s must be at least 16 printable characters "
                "without spaces\n",
                path);
        free(buf);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 0077) != 0)
        fprintf(stderr, "fdn serve: warning: token file %s is readable by other users\n", path);
    *out = buf;
    return 0;
}

/* Print a runtime/admin error: message, then its context (file, path, rule) when present. */
static void print_error(const char *what, int rc, const fdn_error_t *err)
{
    if (serve_log_json()) {
        char msg[4600];
        snprintf(msg, sizeof msg, "%s: %s", what,
                 err->message[0] ? err->message : fdn_strerror(rc));
        serve_log_always(SERVE_LOG_ERROR, "start_failed", msg, "error", fdn_err_name(rc), "context",
                         err->context, (const char *)NULL);
        return;
    }
    fprintf(stderr, "fdn serve: %s: %s", what, err->message[0] ? err->message : fdn_strerror(rc));
    if (err->context[0] != '\0')
        fprintf(stderr, " (%s)", err->context);
    fputc('\n', stderr);
}

/* The runtime stops at the first problem of a config file; list them all (as `fdn config
 * check` does) when the file has any, so one run shows everything to fix. */
static void report_config_problems(const char *file)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem == NULL)
        return;
    int rc = cli_config_check_file(file, mem);
    fclose(mem);
    if (rc != 0 && len > 0)
        fprintf(stderr, "fdn serve: every problem in %s:\n%s", file, text);
    free(text);
}

/* --etcd: register this process in the shared registry (service "fdn"). */
static int register_self(fdn_runtime_t *rt, const char *listen_host, unsigned port)
{
    char hostname[256] = "localhost";
    if (gethostname(hostname, sizeof hostname - 1) != 0)
        snprintf(hostname, sizeof hostname, "localhost");
    hostname[sizeof hostname - 1] = '\0';
    /* a wildcard address is reached through the host's name */
    bool wildcard = listen_host[0] == '\0' || strcmp(listen_host, "0.0.0.0") == 0 ||
                    strcmp(listen_host, "[::]") == 0 || strcmp(listen_host, "::") == 0;
    const char *host = wildcard ? hostname : listen_host;
    char instance[300], endpoint[300], pid[24];
    snprintf(instance, sizeof instance, "%s:%u", host, port);
    snprintf(endpoint, sizeof endpoint, "http://%s:%u", host, port);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    fdn_registry_meta_t meta[] = {{"pid", pid}, {"host", hostname}};
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_register_shared(fdn_runtime_registry(rt), "fdn", instance, endpoint, meta,
                                          2, &err);
    if (rc == FDN_EUNAVAILABLE) { /* etcd away at start: registered once it answers */
        printf("fdn: etcd unreachable: fdn/%s is registered once it answers\n", instance);
        return 0;
    }
    if (rc < 0) {
        print_error("cannot register in the etcd registry", rc, &err);
        return rc;
    }
    printf("fdn: registered as fdn/%s in the etcd registry\n", instance);
    return 0;
}

/* ---- callbacks: the runtime (supervisor thread), the event store, the HTTP server --------- */

static void on_restart(fdn_runtime_t *rt, const char *service, int attempt, int reason, void *user)
{
    (void)rt;
    serve_ctx_t *c = user;
    char att[16], msg[320];
    snprintf(att, sizeof att, "%d", attempt);
    snprintf(msg, sizeof msg, "service %s failed (%s); restarting it (attempt %d)", service,
             fdn_err_name(reason), attempt);
    serve_log(SERVE_LOG_WARN, "service_restart", msg, "service", service, "attempt", att, "reason",
              fdn_err_name(reason), (const char *)NULL);
    serve_notify_status(&c->notify, msg);
}

static void on_escalation(fdn_runtime_t *rt, const char *service, int code, void *user)
{
    serve_ctx_t *c = user;
    char msg[320];
    snprintf(msg, sizeof msg, "failed: service %s (%s) past its restart intensity", service,
             fdn_err_name(code));
    serve_notify_status(&c->notify, msg);
    serve_watch_escalation(rt, service, code, &c->watch); /* logged by the main thread */
}

/* A JSON value as a log value: strings bare, anything else as compact JSON. malloc'd. */
static char *log_value(const json_t *v)
{
    if (v == NULL)
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    char *d = NULL;
    (void)fdn_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY, &d, NULL);
    char *out = d != NULL ? strdup(d) : NULL;
    fdn_free(d);
    return out;
}

/* The event store on PostgreSQL stopped (the runtime shut down): when its stop's deadline
 * (storage.warm.postgres.stop_timeout_ms) cut its writer, say what became of the events it had
 * not committed (docs/events-postgres.md, "Stopping"): spooled (replayed at the next start) or
 * failed (no spool, or no room in it). Never silent: such events are counted here, the
 * telemetry service having stopped before the store. */
static void log_store_stop(fdn_runtime_t *rt)
{
    fdn_events_backend_status_t bs;
    fdn_events_t *es = fdn_runtime_events(rt);
    if (es == NULL || fdn_events_backend_status(es, &bs) != 0 ||
        bs.stop_spooled_events + bs.stop_failed_events == 0)
        return;
    char spooled[24], failed[24], msg[400];
    snprintf(spooled, sizeof spooled, "%llu", (unsigned long long)bs.stop_spooled_events);
    snprintf(failed, sizeof failed, "%llu", (unsigned long long)bs.stop_failed_events);
    snprintf(msg, sizeof msg,
             "the event store's stop reached storage.warm.postgres.stop_timeout_ms with "
             "PostgreSQL not answering: %s events put in the spool (replayed at the next start), "
             "%s events not stored (no spool, or no room in it)",
             spooled, failed);
    serve_log_always(bs.stop_failed_events > 0 ? SERVE_LOG_ERROR : SERVE_LOG_WARN,
                     "event_store_stop_deadline", msg, "spooled", spooled, "failed", failed,
                     (const char *)NULL);
}

/* The runtime records config changes and breaker transitions in its event store: log them
 * (fdn serve subscribes to these types only). */
static const char *const serve_logged_types[] = {"config_updated", "config_reset",
                                                 "circuit_breaker_state_change"};

static void on_event(const fdn_event_t *ev, uint64_t skipped, void *user)
{
    (void)skipped;
    (void)user;
    const char *type = fdn_event_type(ev);
    bool config = strcmp(type, "config_updated") == 0;
    bool reset = strcmp(type, "config_reset") == 0;
    bool breaker = strcmp(type, "circuit_breaker_state_change") == 0;
    if (!config && !reset && !breaker)
        return;
    size_t len = 0;
    const void *data = fdn_event_data(ev, &len);
    json_t *d = NULL;
    if (data != NULL)
        (void)fdn_json_loadb(data, len, 0, &d, NULL);
    if (d == NULL)
        return;
    char msg[600];
    if (breaker) {
        char *name = log_value(json_object_get(d, "breaker"));
        char *from = log_value(json_object_get(d, "from"));
        char *to = log_value(json_object_get(d, "to"));
        snprintf(msg, sizeof msg, "breaker %s: %s -> %s", name ? name : "?", from ? from : "?",
                 to ? to : "?");
        serve_log(to != NULL && strcmp(to, "open") == 0 ? SERVE_LOG_WARN : SERVE_LOG_INFO,
                  "breaker_transition", msg, "breaker", name, "from", from, "to", to,
                  (const char *)NULL);
        free(name);
        free(from);
        free(to);
    } else {
        char *path = log_value(json_object_get(d, "path"));
        char *oldv = log_value(json_object_get(d, "old_value"));
        char *newv = log_value(json_object_get(d, "new_value"));
        char *rev = log_value(json_object_get(d, "revision"));
        if (config) {
            snprintf(msg, sizeof msg, "config %s changed", path ? path : "?");
            serve_log(SERVE_LOG_INFO, "config_change", msg, "path", path, "old_value", oldv,
                      "new_value", newv, "revision", rev, (const char *)NULL);
        } else {
            serve_log(SERVE_LOG_INFO, "config_reset", "config reset to the file and defaults",
                      "revision", rev, (const char *)NULL);
        }
        free(path);
        free(oldv);
        free(newv);
        free(rev);
    }
    json_decref(d);
}

/* The wait a waiting query (GET /v1/events?...&wait_ms=N) asked for, in ns; 0 for others. */
static int64_t asked_wait_ns(const fdn_admin_request_info_t *r)
{
    if (r->route == NULL || strcmp(r->route, "/v1/events") != 0 || r->target == NULL)
        return 0;
    const char *q = strchr(r->target, '?');
    for (const char *p = q; p != NULL; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, "wait_ms=", 8) == 0) {
            long long ms = strtoll(p + 9, NULL, 10);
            return ms > 0 && ms <= 3600000 ? (int64_t)ms * 1000000 : 0;
        }
    return 0;
}

static void on_request(const fdn_admin_request_info_t *r, void *user)
{
    serve_ctx_t *c = user;
    /* a waiting query waits on purpose: only the time beyond its wait_ms counts as slow */
    bool slow = c->slow_ns > 0 && r->duration_ns - asked_wait_ns(r) >= c->slow_ns;
    if (!c->access_log && !slow)
        return;
    char st[12], ms[32];
    snprintf(st, sizeof st, "%u", r->status);
    snprintf(ms, sizeof ms, "%.3f", (double)r->duration_ns / 1e6);
    const char *route = r->route != NULL ? r->route : "";
    if (c->access_log)
        serve_log_always(SERVE_LOG_INFO, "request", "request", "method", r->method, "target",
                         r->target, "route", route, "status", st, "duration_ms", ms,
                         (const char *)NULL);
    if (slow) {
        char msg[80];
        snprintf(msg, sizeof msg, "request slower than %lld ms", (long long)(c->slow_ns / 1000000));
        serve_log(SERVE_LOG_WARN, "slow_request", msg, "method", r->method, "target", r->target,
                  "route", route, "status", st, "duration_ms", ms, (const char *)NULL);
    }
}

int cmd_serve(int argc, char **argv)
{
    serve_opts_t o = {NULL,
                      FDN_CLI_DEFAULT_DATA_DIR,
                      FDN_ADMIN_DEFAULT_LISTEN,
                      NULL,
                      NULL,
                      1 << 20,
                      NULL,
                      "text",
                      "info",
                      false,
                      1000,
                      NULL,
                      10,
                      10,
                      0,
                      0,
                      0,
                      0};
    int pr = parse(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? CLI_OK : CLI_USAGE;
    if (serve_log_set_format(o.log_format) != 0) {
        fprintf(stderr, "fdn serve: --log-format: '%s' is not text or json\n", o.log_format);
        return CLI_USAGE;
    }
    if (serve_log_set_level(o.log_level) != 0) {
        fprintf(stderr, "fdn serve: --log-level: '%s' is not debug, info, warn or error\n",
                o.log_level);
        return CLI_USAGE;
    }

    char *token = NULL;
    if (o.token_file != NULL && read_token(o.token_file, &token) != 0)
        return CLI_FAIL;

    /* a server outlives whoever reads its stdout (`| head`, a restarted log reader): a write
     * to a closed pipe must fail with EPIPE, not kill the process before the event store
     * has been flushed and closed */
    signal(SIGPIPE, SIG_IGN);

    /* every thread created from here on inherits the blocked mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* a hang-up stops the server, unless it was started to survive one (nohup: SIGHUP
     * ignored); a blocked signal is not discarded even when ignored, so leave it out */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    serve_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    serve_watch_init(&ctx.watch, SIGUSR1);
    serve_notify_init(&ctx.notify);
    ctx.access_log = o.access_log;
    ctx.slow_ns = o.slow_ms * 1000000;
    fdn_events_sub_t *sub = NULL;

    int exit_code = CLI_FAIL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_runtime_t *rt = NULL;
    fdn_admin_t *admin = NULL;

    /* a server of many clients: the open-file limit up to the hard limit, as daemons do; the
     * HTTP server sizes its connection limit from it */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }

    /* the server is created first: a bad listen address or a missing token is reported
     * before anything is written to the data directory */
    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.listen = o.listen;
    ao.token = token;
    ao.max_body_bytes = (size_t)o.max_body;
    ao.on_request = on_request;
    ao.request_user = &ctx;
    ao.request_timeout_s = (unsigned)o.request_timeout_s;
    ao.idle_timeout_s = (unsigned)o.idle_timeout_s;
    ao.max_connections = (unsigned)o.max_conns;
    ao.max_connections_per_ip = (unsigned)o.max_conns_per_ip;
    ao.threads = o.threads > 0 ? (unsigned)o.threads : serve_threads_default();
    ao.shutdown_timeout_ms = (unsigned)o.shutdown_timeout_ms; /* 0: the default */
    int rc = fdn_admin_create(&admin, &ao, &err);
    if (rc < 0) {
        /* a --listen that is not ADDR:PORT is a usage error (exit 2, as every malformed
         * argument); one that parses but cannot be used (no such host) a failure (exit 1) */
        bool malformed = rc == FDN_EINVAL && strncmp(err.message, "bad listen address", 18) == 0;
        print_error(malformed ? "--listen" : o.listen, rc, &err);
        if (malformed)
            exit_code = CLI_USAGE;
        goto out;
    }
    /* bound and listening before the runtime exists: a busy port leaves no trace */
    err = (fdn_error_t)FDN_ERROR_INIT;
    rc = fdn_admin_bind(admin, &err);
    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof what, "cannot listen on %s", o.listen);
        print_error(what, rc, &err);
        goto out;
    }

    /* the runtime creates the data directory, validates the config file (defaults < file <
     * environment) and starts its services; its error names the file, path and rule */
    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.config_path = o.config;
    ro.data_dir = o.data_dir;
    /* --redis and --postgres: config overrides placed in a copy of the environment (which the
     * config service reads last), replacing any variables of the same names */
    static const char BACKEND_VAR[] = "FDN_INFRASTRUCTURE__RATE_LIMITING__BACKEND=";
    static const char URL_VAR[] = "FDN_INFRASTRUCTURE__RATE_LIMITING__REDIS__URL=";
    static const char WBACKEND_VAR[] = "FDN_STORAGE__WARM__BACKEND=";
    static const char PGURL_VAR[] = "FDN_STORAGE__WARM__POSTGRES__URL=";
    extern char **environ;
    const char **envp = NULL;
    char *url_entry = NULL, *pg_entry = NULL;
    if (o.redis != NULL || o.postgres != NULL) {
        size_t n = 0;
        while (environ[n] != NULL)
            n++;
        envp = calloc(n + 5, sizeof(*envp));
        url_entry = o.redis ? malloc(sizeof(URL_VAR) + strlen(o.redis)) : NULL;
        pg_entry = o.postgres ? malloc(sizeof(PGURL_VAR) + strlen(o.postgres)) : NULL;
        if (envp == NULL || (o.redis && url_entry == NULL) || (o.postgres && pg_entry == NULL)) {
            fprintf(stderr, "fdn serve: out of memory\n");
            free(envp);
            free(url_entry);
            free(pg_entry);
            goto out;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            bool ours =
                (o.redis && (strncmp(environ[i], BACKEND_VAR, sizeof(BACKEND_VAR) - 1) == 0 ||
                             strncmp(environ[i], URL_VAR, sizeof(URL_VAR) - 1) == 0)) ||
                (o.postgres && (strncmp(environ[i], WBACKEND_VAR, sizeof(WBACKEND_VAR) - 1) == 0 ||
                                strncmp(environ[i], PGURL_VAR, sizeof(PGURL_VAR) - 1) == 0));
            if (!ours)
                envp[k++] = environ[i];
        }
        if (o.redis) {
            memcpy(url_entry, URL_VAR, sizeof(URL_VAR) - 1);
            memcpy(url_entry + sizeof(URL_VAR) - 1, o.redis, strlen(o.redis) + 1);
            envp[k++] = "FDN_INFRASTRUCTURE__RATE_LIMITING__BACKEND=redis";
            envp[k++] = url_entry;
        }
        if (o.postgres) {
            memcpy(pg_entry, PGURL_VAR, sizeof(PGURL_VAR) - 1);
            memcpy(pg_entry + sizeof(PGURL_VAR) - 1, o.postgres, strlen(o.postgres) + 1);
            envp[k++] = "FDN_STORAGE__WARM__BACKEND=postgres";
            envp[k++] = pg_entry;
        }
        ro.envp = envp;
    }
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    if (o.etcd != NULL) {
        eo.url = o.etcd;
        eo.start_unreachable = true; /* an etcd outage does not keep the fleet from starting */
        ro.registry_etcd = &eo;
    }
    ro.on_escalation = on_escalation;
    ro.on_restart = on_restart;
    ro.user = &ctx;
    err = (fdn_error_t)FDN_ERROR_INIT;
    rc = fdn_runtime_create(&rt, &ro, &err);
    free(envp); /* the config service copied what it read */
    free(url_entry);
    free(pg_entry);
    if (rc < 0) {
        /* name the config file once: the runtime's message usually starts with it */
        bool named = o.config == NULL || strstr(err.message, o.config) != NULL;
        char what[4200];
        snprintf(what, sizeof what, "cannot start the runtime%s%s", named ? "" : " with ",
                 named ? "" : o.config);
        print_error(what, rc, &err);
        if (o.config != NULL && err.category != NULL && strcmp(err.category, "config") == 0)
            report_config_problems(o.config);
        goto out;
    }

    if ((rc = fdn_admin_mount_runtime(admin, rt)) == 0 &&
        (rc = fdn_admin_mount_config(admin, fdn_runtime_config(rt))) == 0 &&
        (rc = fdn_admin_mount_events(admin, fdn_runtime_events(rt))) == 0 &&
        (rc = fdn_admin_mount_telemetry(admin, fdn_runtime_telemetry(rt))) == 0 &&
        (rc = fdn_admin_mount_limiter(admin, fdn_runtime_limiter(rt))) == 0 &&
        (rc = fdn_admin_mount_breakers(admin, fdn_runtime_breakers(rt))) == 0 &&
        (rc = fdn_admin_mount_pools(admin, fdn_runtime_pools(rt))) == 0) {
        err = (fdn_error_t)FDN_ERROR_INIT;
        rc = fdn_admin_start(admin, &err);
        if (rc < 0) {
            char what[300];
            snprintf(what, sizeof what, "cannot serve HTTP on %s", o.listen);
            print_error(what, rc, &err);
            goto out;
        }
    } else {
        fprintf(stderr, "fdn serve: cannot mount the HTTP API: %s\n", fdn_strerror(rc));
        goto out;
    }

    /* config changes and breaker transitions, as the runtime records them (a log line is
     * best effort: no subscription, no such lines). One subscription to just these types,
     * so the delivery thread is never woken for the clients' events (it cost ~4 us of CPU
     * per appended event), and the lines keep the store's order across the three types. */
    fdn_events_sub_opts_t so = FDN_EVENTS_SUB_OPTS_INIT;
    so.types = serve_logged_types;
    so.ntypes = sizeof serve_logged_types / sizeof serve_logged_types[0];
    (void)fdn_events_subscribe(fdn_runtime_events(rt), &so, on_event, NULL, &sub);

    /* ready only when every supervised service runs (a service restarting at start delays
     * it; an escalation ends the wait below at once) */
    fdn_runtime_health_t h;
    while (fdn_runtime_health(rt, &h, NULL, 0, NULL) == 0 && h.running < h.services &&
           !atomic_load_explicit(&ctx.watch.escalated, memory_order_acquire)) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    /* escalated before every service ran: not ready, ever. No "listening on" line, no etcd
     * registration, no READY=1 (a service manager then sees a start that failed, exit 1) */
    serve_end_t end = SERVE_END_ESCALATION;
    int sig = 0;
    if (atomic_load_explicit(&ctx.watch.escalated, memory_order_acquire))
        goto escalated;

    char host[256];
    snprintf(host, sizeof host, "%s", o.listen);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    printf("fdn: listening on http://%s:%u\n", host, (unsigned)fdn_admin_port(admin));
    if (o.etcd != NULL && register_self(rt, host, fdn_admin_port(admin)) != 0)
        goto out;
    printf("fdn: data directory %s (events in %s/%s)\n", o.data_dir, o.data_dir,
           FDN_CLI_EVENTS_FILE);
    fflush(stdout);
    {
        char port[8], pid[16], services[16];
        snprintf(port, sizeof port, "%u", (unsigned)fdn_admin_port(admin));
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        snprintf(services, sizeof services, "%zu", h.services);
        serve_log(SERVE_LOG_INFO, "start", "fdn serve started", "listen", o.listen, "port", port,
                  "data_dir", o.data_dir, "config", o.config != NULL ? o.config : "", "services",
                  services, "version", fdn_version(), "pid", pid, (const char *)NULL);
    }
    /* the listen line is out and the API answers: tell the service manager */
    serve_notify_send(&ctx.notify, "READY=1");
    {
        char status[256];
        serve_notify_status_text(&h, status, sizeof status);
        serve_notify_status(&ctx.notify, status);
    }
    if (serve_notify_thread_start(&ctx.notify, rt) != 0)
        serve_log(SERVE_LOG_WARN, "notify_thread", "cannot start the watchdog thread",
                  (const char *)NULL);

    end = serve_wait(&ctx.watch, &sigs, &sig);
    serve_notify_stop(&ctx.notify); /* nothing but STOPPING=1 after this */
    serve_notify_send(&ctx.notify, "STOPPING=1");
escalated:
    if (end == SERVE_END_ESCALATION) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "service '%s' failed (%s) more often than its restart intensity allows; the "
                 "runtime stopped every service. Exiting with status 1 so that the service "
                 "manager restarts fdn.",
                 ctx.watch.service, fdn_strerror(ctx.watch.code));
        serve_log(SERVE_LOG_ERROR, "escalation", msg, "service", ctx.watch.service, "reason",
                  fdn_err_name(ctx.watch.code), (const char *)NULL);
        goto out;
    }
    const char *sig_name = sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
    printf("fdn: %s received, shutting down\n", sig_name);
    fflush(stdout);
    serve_log(SERVE_LOG_INFO, "stopping", "shutting down", "signal", sig_name, (const char *)NULL);
    exit_code = CLI_OK;
out:
    fdn_admin_destroy(admin);    /* HTTP first: no request runs after this */
    fdn_events_unsubscribe(sub); /* before the store goes */
    if (rt != NULL) {
        (void)fdn_runtime_shutdown(rt, -1); /* stops the services; the event store flushes */
        log_store_stop(rt);
    }
    fdn_runtime_destroy(rt); /* closes and frees */
    serve_notify_fini(&ctx.notify);
    free(token);
    if (exit_code == CLI_OK) {
        printf("fdn: stopped\n");
        fflush(stdout);
    }
    if (rt != NULL) {
        char code[8];
        snprintf(code, sizeof code, "%d", exit_code);
        serve_log(exit_code == CLI_OK ? SERVE_LOG_INFO : SERVE_LOG_ERROR, "stop",
                  "fdn serve stopped", "exit_code", code, (const char *)NULL);
    }
    return exit_code;
}
