/* DESIGN: fdn serve: run a runtime with its built-in services and the admin HTTP API until
 * SIGINT/SIGTERM.
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
 * Threads: SIGINT/SIGTERM/SIGUSR1 are blocked before any thread exists, so every thread
 * inherits the mask and the main thread alone receives them with sigwait() (serve_wait.c).
 * If the runtime escalates (a service failed past its restart intensity, everything
 * stopped), its on_escalation callback wakes the main thread with SIGUSR1; the command then
 * shuts down like on SIGTERM but exits 1 naming the service, so that a service manager
 * restarts it instead of leaving a server that answers 503 forever. Shutdown runs in order on
 * the main thread: HTTP server (stop taking requests, finish in-flight ones, join its
 * threads), then the runtime (services stopped in reverse start order; the event store
 * flushes and closes the SQLite file).
 *
 * --etcd URL: the runtime's registry gets a shared part on etcd (fdn_registry_open, namespace =
 * the runtime's name), and once HTTP is served the process registers itself there: service
 * "fdn", instance "<host>:<port>", endpoint its admin URL, metadata pid and host. Every fdn
 * serve of the fleet on the same etcd then lists the others in GET /v1/registry ("shared"). */
#include "cli.h"
#include "serve_wait.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
} serve_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fdn serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT]\n"
            "                 [--token-file FILE] [--max-body BYTES] [--redis URL]\n"
            "                 [--etcd URL]\n"
            "\n"
            "Run a Foundation runtime with the admin HTTP API until SIGINT or SIGTERM.\n"
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
            "                     fleet\n",
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
    };
    return cli_parse(argc, argv, "serve", defs, sizeof(defs) / sizeof(defs[0]), usage);
}

static int read_token(const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = cli_read_file(path, 4096, &buf, &len);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot read token file %s (%s)\n", path,
                rc == -ENOENT  ? "no such file"
                : rc == -EFBIG ? "larger than 4096 bytes"
                               : "read error");
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
    if (rc < 0) {
        print_error("cannot register in the etcd registry", rc, &err);
        return rc;
    }
    printf("fdn: registered as fdn/%s in the etcd registry\n", instance);
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts_t o = {NULL, FDN_CLI_DEFAULT_DATA_DIR, FDN_ADMIN_DEFAULT_LISTEN, NULL, NULL, 1 << 20,
                      NULL};
    int pr = parse(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? CLI_OK : CLI_USAGE;

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
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    serve_watch_t watch;
    serve_watch_init(&watch, SIGUSR1);

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
    int rc = fdn_admin_create(&admin, &ao, &err);
    if (rc < 0) {
        print_error(o.listen, rc, &err);
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
    /* --redis: two config overrides placed in a copy of the environment (which the config
     * service reads last), replacing any variables of the same names */
    static const char BACKEND_VAR[] = "FDN_INFRASTRUCTURE__RATE_LIMITING__BACKEND=";
    static const char URL_VAR[] = "FDN_INFRASTRUCTURE__RATE_LIMITING__REDIS__URL=";
    extern char **environ;
    const char **envp = NULL;
    char *url_entry = NULL;
    if (o.redis != NULL) {
        size_t n = 0;
        while (environ[n] != NULL)
            n++;
        envp = calloc(n + 3, sizeof(*envp));
        url_entry = malloc(sizeof(URL_VAR) + strlen(o.redis));
        if (envp == NULL || url_entry == NULL) {
            fprintf(stderr, "fdn serve: out of memory\n");
            free(envp);
            free(url_entry);
            goto out;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (strncmp(environ[i], BACKEND_VAR, sizeof(BACKEND_VAR) - 1) != 0 &&
                strncmp(environ[i], URL_VAR, sizeof(URL_VAR) - 1) != 0)
                envp[k++] = environ[i];
        memcpy(url_entry, URL_VAR, sizeof(URL_VAR) - 1);
        memcpy(url_entry + sizeof(URL_VAR) - 1, o.redis, strlen(o.redis) + 1);
        envp[k++] = "FDN_INFRASTRUCTURE__RATE_LIMITING__BACKEND=redis";
        envp[k++] = url_entry;
        ro.envp = envp;
    }
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    if (o.etcd != NULL) {
        eo.url = o.etcd;
        ro.registry_etcd = &eo;
    }
    ro.on_escalation = serve_watch_escalation;
    ro.user = &watch;
    err = (fdn_error_t)FDN_ERROR_INIT;
    rc = fdn_runtime_create(&rt, &ro, &err);
    free(envp); /* the config service copied what it read */
    free(url_entry);
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

    int sig = 0;
    if (serve_wait(&watch, &sigs, &sig) == SERVE_END_ESCALATION) {
        fprintf(stderr,
                "fdn serve: service '%s' failed (%s) more often than its restart intensity "
                "allows; the runtime stopped every service. Exiting with status 1 so that the "
                "service manager restarts fdn.\n",
                watch.service, fdn_strerror(watch.code));
        goto out;
    }
    printf("fdn: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    exit_code = CLI_OK;
out:
    fdn_admin_destroy(admin); /* HTTP first: no request runs after this */
    fdn_runtime_destroy(rt);  /* stops the services; the event store flushes and closes */
    free(token);
    if (exit_code == CLI_OK) {
        printf("fdn: stopped\n");
        fflush(stdout);
    }
    return exit_code;
}
