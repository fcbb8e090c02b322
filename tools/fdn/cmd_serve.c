/* DESIGN: fdn serve: run a runtime with its services and the admin HTTP API until SIGINT/SIGTERM.
 *
 * Threads: SIGINT/SIGTERM are blocked before any thread exists, so every thread inherits the
 * mask and the main thread alone receives them with sigwait(); shutdown then runs in order on
 * the main thread: HTTP server (stop taking requests, finish in-flight ones), event store
 * (flush and close the SQLite file), runtime. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fdn/admin.h>
#include <fdn/config.h>
#include <fdn/events.h>
#include <fdn/runtime.h>

typedef struct serve_opts {
    const char *config;
    const char *data_dir;
    const char *listen;
    const char *token_file;
    int64_t max_body;
} serve_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fdn serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT]\n"
            "                 [--token-file FILE] [--max-body BYTES]\n"
            "\n"
            "Run a Foundation runtime with the admin HTTP API until SIGINT or SIGTERM.\n"
            "\n"
            "  --config FILE      JSON configuration (default: built-in defaults + environment)\n"
            "  --data-dir DIR     durable data (default %s; created if missing)\n"
            "  --listen ADDR:PORT HTTP address (default %s; port 0 = any free port)\n"
            "  --token-file FILE  bearer token required on every request; mandatory when\n"
            "                     ADDR is not a loopback address\n"
            "  --max-body BYTES   request body limit (default 1048576)\n",
            FDN_CLI_DEFAULT_DATA_DIR, FDN_ADMIN_DEFAULT_LISTEN);
}

static int parse(int argc, char **argv, serve_opts_t *o)
{
    for (int i = 1; i < argc;) {
        const char *v = NULL;
        int r;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 1;
        }
        if ((r = cli_opt(argc, argv, &i, "--config", &v)) != 0) {
            if (r < 0)
                return -1;
            o->config = v;
        } else if ((r = cli_opt(argc, argv, &i, "--data-dir", &v)) != 0) {
            if (r < 0)
                return -1;
            o->data_dir = v;
        } else if ((r = cli_opt(argc, argv, &i, "--listen", &v)) != 0) {
            if (r < 0)
                return -1;
            o->listen = v;
        } else if ((r = cli_opt(argc, argv, &i, "--token-file", &v)) != 0) {
            if (r < 0)
                return -1;
            o->token_file = v;
        } else if ((r = cli_opt(argc, argv, &i, "--max-body", &v)) != 0) {
            if (r < 0 || cli_int("serve", "--max-body", v, 1, 1 << 30, &o->max_body) < 0)
                return -1;
        } else {
            fprintf(stderr, "fdn serve: unknown argument '%s' (see fdn serve --help)\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
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

static int config_health(void *user)
{
    return fdn_config_available(user) ? 0 : FDN_EUNAVAILABLE;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts_t o = {NULL, FDN_CLI_DEFAULT_DATA_DIR, FDN_ADMIN_DEFAULT_LISTEN, NULL, 1 << 20};
    int pr = parse(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? CLI_OK : CLI_USAGE;

    if (o.config != NULL && cli_config_check_file(o.config, stderr) != 0) {
        fprintf(stderr, "fdn serve: invalid configuration file %s\n", o.config);
        return CLI_FAIL;
    }
    char *token = NULL;
    if (o.token_file != NULL && read_token(o.token_file, &token) != 0)
        return CLI_FAIL;
    int rc = make_dirs(o.data_dir);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot create data directory %s (errno %d)\n", o.data_dir, -rc);
        free(token);
        return CLI_FAIL;
    }
    char events_path[4200];
    snprintf(events_path, sizeof events_path, "%s/%s", o.data_dir, FDN_CLI_EVENTS_FILE);

    /* every thread created from here on inherits the blocked mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int exit_code = CLI_FAIL;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_runtime_t *rt = NULL;
    fdn_events_t *es = NULL;
    fdn_admin_t *admin = NULL;
    fdn_breakers_t *breakers = NULL;
    fdn_limiter_t *limiter = NULL;
    fdn_pools_t *pools = NULL;
    fdn_telemetry_t *tm = NULL;
    fdn_config_t *cfg = NULL;
    serve_wiring_t wiring = {NULL, NULL, NULL, 0};

    fdn_runtime_opts_t ro = FDN_RUNTIME_OPTS_INIT;
    ro.config_path = o.config;
    ro.data_dir = o.data_dir;
    rc = fdn_runtime_create(&rt, &ro, &err);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot start the runtime: %s\n",
                err.message[0] ? err.message : fdn_strerror(rc));
        goto out;
    }
    /* config service (defaults < file < environment): the lead moves it into the runtime */
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    co.file = o.config;
    rc = fdn_config_create(&cfg, &co, &err);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: invalid configuration%s%s: %s\n", o.config ? " in " : "",
                o.config ? o.config : "", err.message[0] ? err.message : fdn_strerror(rc));
        goto out;
    }
    fdn_events_opts_t eo = FDN_EVENTS_OPTS_INIT;
    eo.durable_path = events_path;
    eo.mode = FDN_EVENTS_DURABLE;
    rc = fdn_events_create(&es, &eo, &err);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot open the event store %s: %s\n", events_path,
                err.message[0] ? err.message : fdn_strerror(rc));
        goto out;
    }

    /* telemetry and protection services: the lead moves these into the runtime's built-ins */
    fdn_limiter_opts_t lo = FDN_LIMITER_OPTS_INIT;
    fdn_pools_opts_t po = FDN_POOLS_OPTS_INIT;
    if ((rc = fdn_telemetry_create(&tm, NULL)) < 0 ||
        (rc = fdn_breakers_create(&breakers, NULL)) < 0 ||
        (lo.telemetry = tm, rc = fdn_limiter_create(&limiter, &lo)) < 0 ||
        (po.telemetry = tm, rc = fdn_pools_create(&pools, &po)) < 0) {
        fprintf(stderr, "fdn serve: cannot create the protection services: %s\n", fdn_strerror(rc));
        goto out;
    }

    wiring.cfg = cfg;
    wiring.es = es;
    wiring.pools = pools;
    if ((rc = serve_wire_config(&wiring)) < 0) {
        fprintf(stderr, "fdn serve: cannot follow configuration changes: %s\n", fdn_strerror(rc));
        goto out;
    }

    fdn_admin_opts_t ao = FDN_ADMIN_OPTS_INIT;
    ao.listen = o.listen;
    ao.token = token;
    ao.max_body_bytes = (size_t)o.max_body;
    rc = fdn_admin_create(&admin, &ao, &err);
    if (rc == 0 && (rc = fdn_admin_mount_runtime(admin, rt)) == 0 &&
        (rc = fdn_admin_add_health(admin, "config", config_health, cfg)) == 0 &&
        (rc = fdn_admin_mount_config(admin, cfg)) == 0 &&
        (rc = fdn_admin_mount_events(admin, es)) == 0 &&
        (rc = fdn_admin_mount_breakers(admin, breakers)) == 0 &&
        (rc = fdn_admin_mount_limiter(admin, limiter)) == 0 &&
        (rc = fdn_admin_mount_pools(admin, pools)) == 0 &&
        (rc = fdn_admin_mount_telemetry(admin, tm)) == 0)
        rc = fdn_admin_start(admin, &err);
    if (rc < 0) {
        fprintf(stderr, "fdn serve: cannot serve HTTP on %s: %s\n", o.listen,
                err.message[0] ? err.message : fdn_strerror(rc));
        goto out;
    }
    char host[256];
    snprintf(host, sizeof host, "%s", o.listen);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    printf("fdn: listening on http://%s:%u\n", host, (unsigned)fdn_admin_port(admin));
    printf("fdn: data directory %s (events in %s)\n", o.data_dir, events_path);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    printf("fdn: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    exit_code = CLI_OK;
out:
    fdn_admin_destroy(admin); /* no request runs after this */
    if (wiring.sub != 0)
        (void)fdn_config_unsubscribe(cfg, wiring.sub); /* its callback touches es and pools */
    fdn_pools_destroy(pools);
    fdn_limiter_destroy(limiter);
    fdn_breakers_destroy(breakers);
    fdn_telemetry_destroy(tm);
    fdn_events_destroy(es); /* flushes the durable queue and closes the file */
    fdn_config_destroy(cfg);
    if (rt != NULL)
        (void)fdn_runtime_shutdown(rt, 5000);
    fdn_runtime_destroy(rt);
    free(token);
    if (exit_code == CLI_OK) {
        printf("fdn: stopped\n");
        fflush(stdout);
    }
    return exit_code;
}
