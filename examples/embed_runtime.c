/* Embedding Foundation in a program: the usage example of README.md, compiled with the
 * examples so it stays correct. It creates a runtime (one isolated namespace, started at
 * once), adds a supervised application service, finds it through the runtime's registry,
 * and runs a failing call inside an error context to show what an fdn_error_t carries. */
#include <stdatomic.h>
#include <stdio.h>

#include <fdn/fdn.h>

/* An application service: a stable object whose calls answer FDN_EUNAVAILABLE while the
 * supervisor has it stopped (start sets the flag last, stop clears it first). */
typedef struct greeter {
    atomic_bool running;
    const char *greeting;
} greeter_t;

static int greeter_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    greeter_t *g = state;
    atomic_store_explicit(&g->running, true, memory_order_release);
    return 0;
}

static void greeter_stop(void *state)
{
    greeter_t *g = state;
    atomic_store_explicit(&g->running, false, memory_order_release);
}

static const fdn_service_ops_t GREETER_OPS = {greeter_start, greeter_stop, NULL, NULL, NULL};

static int greet(greeter_t *g, const char *who, fdn_error_t *err)
{
    if (!atomic_load_explicit(&g->running, memory_order_acquire))
        return fdn_err_set(err, FDN_EUNAVAILABLE, "greeter is not running");
    if (who == NULL || who[0] == '\0') {
        int rc = fdn_err_set(err, FDN_EINVAL, "nobody to greet");
        fdn_err_add_context(err, "field", "%s", "who");
        return rc;
    }
    printf("%s, %s!\n", g->greeting, who);
    return 0;
}

typedef struct greet_call {
    greeter_t *g;
    const char *who;
    fdn_error_t *err;
} greet_call_t;

static int greet_in_context(void *arg)
{
    greet_call_t *c = arg;
    return greet(c->g, c->who, c->err);
}

int main(void)
{
    fdn_error_t err = FDN_ERROR_INIT;
    char text[2048];

    /* 1. A runtime: its registry, built-in services and task pool, started at once. */
    fdn_runtime_opts_t opts = FDN_RUNTIME_OPTS_INIT;
    opts.name = "embed-example";
    fdn_runtime_t *rt = NULL;
    if (fdn_runtime_create(&rt, &opts, &err) != 0) {
        fdn_err_format(&err, text, sizeof(text));
        fprintf(stderr, "runtime: %s\n", text);
        return 1;
    }

    /* 2. A supervised application service (one_for_one, restarted if it fails). */
    static greeter_t greeter = {.greeting = "Hello"};
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "greeter";
    spec.ops = &GREETER_OPS; /* start/stop set and clear greeter.running */
    spec.state = &greeter;
    if (fdn_runtime_add_service(rt, &spec, &err) != 0)
        goto fail;

    /* 3. Running services are registered under their name; the handle is their state. */
    void *handle = NULL;
    if (fdn_registry_lookup(fdn_runtime_registry(rt), "greeter", &handle, &err) != 0)
        goto fail;
    if (greet(handle, "world", &err) != 0)
        goto fail;

    /* 4. A failing call inside an error context: err gets the taxonomy row, the call's
     *    context, the context's correlation id and breadcrumbs. */
    greet_call_t call = {handle, "", &err};
    int rc = fdn_errctx_run("Greeter", "greet", greet_in_context, &call, &err);
    fdn_err_format(&err, text, sizeof(text));
    printf("%s -> %s\n  correlation_id=%s\n", fdn_err_name(rc), text, err.correlation_id);

    fdn_runtime_destroy(rt); /* stops the services in reverse order, frees everything */
    return rc == FDN_EINVAL ? 0 : 1;

fail:
    fdn_err_format(&err, text, sizeof(text));
    fprintf(stderr, "error: %s\n", text);
    fdn_runtime_destroy(rt);
    return 1;
}
