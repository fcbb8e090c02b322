/* DESIGN: fdn registry list: print the fleet-wide registry on etcd (docs/registry.md).
 * Opens a registry with a shared part (fdn_registry_open: it ranges the namespace before
 * returning, so the listing is etcd's state at that revision), lists the cache, and destroys
 * the registry (which revokes the lease it was granted). Single-threaded apart from the
 * registry's own two threads, which live only during the command. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/registry.h>

typedef struct list_opts {
    const char *etcd;
    const char *ns;
    const char *prefix;
    const char *service;
    bool json;
    int64_t request_timeout_ms; /* 0: the registry's default (2000) */
} list_opts_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: fdn registry list --etcd URL [--namespace NS] [--prefix P] [--service S]\n"
                 "                         [--request-timeout-ms MS] [--json]\n"
                 "\n"
                 "List the entries of the fleet-wide registry on etcd.\n"
                 "\n"
                 "  --etcd URL        etcd client URL (http://host:port)\n"
                 "  --namespace NS    registry namespace (default production: the runtime name of\n"
                 "                    fdn serve)\n"
                 "  --prefix P        key prefix (default /fdn/registry)\n"
                 "  --service S       only the instances of service S\n"
                 "  --request-timeout-ms MS\n"
                 "                    bound on each etcd call, connect included (1..600000;\n"
                 "                    default 2000)\n"
                 "  --json            one JSON object: {\"namespace\", \"revision\", \"count\",\n"
                 "                    \"entries\": [...]}\n");
}

static int list(const list_opts_t *o)
{
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = o->ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = o->etcd;
    eo.prefix = o->prefix;
    eo.request_timeout_ms = o->request_timeout_ms;
    fdn_registry_t *reg = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_open(&reg, &ro, &eo, &err);
    if (rc < 0) {
        fprintf(stderr, "fdn registry: %s: %s\n", fdn_err_name(rc),
                err.message[0] ? err.message : fdn_strerror(rc));
        return CLI_FAIL;
    }
    fdn_registry_instance_t **v = NULL;
    size_t n = 0;
    rc = fdn_registry_list_shared(reg, o->service, &v, &n);
    fdn_registry_shared_stats_t st;
    memset(&st, 0, sizeof st);
    st.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    if (rc == 0)
        rc = fdn_registry_shared_stats(reg, &st);
    if (rc < 0) {
        fprintf(stderr, "fdn registry: %s\n", fdn_strerror(rc));
        fdn_registry_instances_free(v, n);
        fdn_registry_destroy(reg);
        return CLI_FAIL;
    }
    if (o->json) {
        char *entries = NULL;
        json_t *arr = NULL;
        if (fdn_registry_instances_json(v, n, &entries) == 0)
            (void)fdn_json_loadb(entries, strlen(entries), 0, &arr, NULL);
        fdn_free(entries);
        json_t *out =
            json_pack("{s:s, s:I, s:I, s:o*}", "namespace", fdn_registry_name(reg), "revision",
                      (json_int_t)st.revision, "count", (json_int_t)n, "entries", arr);
        char *text = NULL;
        if (out != NULL)
            (void)fdn_json_dumps(out, JSON_INDENT(2), &text, NULL);
        if (text != NULL)
            printf("%s\n", text);
        fdn_free(text);
        json_decref(out);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s/%s\t%s\t%s\n", fdn_registry_instance_service(v[i]),
                   fdn_registry_instance_name(v[i]), fdn_registry_instance_endpoint(v[i]),
                   fdn_registry_instance_owner(v[i]));
        printf("(%zu entries in namespace %s at etcd revision %lld)\n", n, fdn_registry_name(reg),
               (long long)st.revision);
    }
    fdn_registry_instances_free(v, n);
    fdn_registry_destroy(reg);
    return CLI_OK;
}

int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "list") != 0) {
        fprintf(stderr, "fdn registry: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return CLI_USAGE;
    }
    list_opts_t o = {NULL, "production", NULL, NULL, false, 0};
    const cli_optdef_t defs[] = {
        {.name = "--etcd", .str = &o.etcd},
        {.name = "--namespace", .str = &o.ns},
        {.name = "--prefix", .str = &o.prefix},
        {.name = "--service", .str = &o.service},
        {.name = "--json", .seen = &o.json},
        {.name = "--request-timeout-ms", .num = &o.request_timeout_ms, .min = 1, .max = 600000},
    };
    int pr =
        cli_parse(argc - 1, argv + 1, "registry list", defs, sizeof defs / sizeof defs[0], usage);
    if (pr != 0)
        return pr > 0 ? CLI_OK : CLI_USAGE;
    if (o.etcd == NULL) {
        fprintf(stderr, "fdn registry list: --etcd URL is required\n");
        return CLI_USAGE;
    }
    return list(&o);
}
