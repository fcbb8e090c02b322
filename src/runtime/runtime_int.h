/* Library-internal interface of the runtime (src/runtime/runtime.c) and the table of built-in
 * services (src/runtime/runtime_services.c).
 *
 * A built-in service is a slot: a name, a `create` that builds the component from the
 * runtime (clock = fdn_runtime_clock(rt), config path = fdn_runtime_config_path(rt), data
 * dir = fdn_runtime_data_dir(rt), earlier slots via fdn__runtime_slot(rt, FDN__RT_...)), and
 * the service's own supervisor vtable, which its module exports (fdn__<module>_service_ops:
 * start, stop, health, destroy). The runtime supervises built-ins and application services
 * through the same fdn_service_ops_t; nothing adapts one to the other.
 * Slots are created in slot order at fdn_runtime_create (so a slot's create may use any
 * earlier slot), started in slot order by the supervisor, stopped in reverse, destroyed in
 * reverse by fdn_runtime_destroy. Built-ins are permanent (always restarted), as in the
 * reference.
 *
 * Adding a built-in: export `const fdn_service_ops_t fdn__<m>_service_ops` from the module,
 * add a slot below, fill it in fdn__rt_builtins[] with its name, create function and ops
 * (and on_own_thread when its stop joins threads that run application code: subscribers'
 * callbacks, telemetry handlers of what it counts), and add a typed public accessor
 * (fdn_runtime_<m>) if wanted.
 */
#ifndef FDN_CORE_RUNTIME_INT_H
#define FDN_CORE_RUNTIME_INT_H

#include <fdn/runtime.h>

/* Built-in service slots, in the reference's start order (§8.1). The registry is created
 * before every slot and the task pool after them; neither is a slot. */
typedef enum fdn__rt_slot {
    FDN__RT_CONFIG = 0, /* "config_server" */
    FDN__RT_EVENTS,     /* "event_store" */
    FDN__RT_TELEMETRY,  /* "telemetry_service" */
    FDN__RT_CONNMGR,    /* "connection_manager" */
    FDN__RT_LIMITER,    /* "rate_limiter" */
    FDN__RT_SLOT_COUNT
} fdn__rt_slot_t;

typedef struct fdn__rt_slot_def {
    const char *name; /* registry / supervisor name */
    /* Create the component (not started). NULL: the slot is absent. */
    int (*create)(fdn_runtime_t *rt, void **out, fdn_error_t *err);
    /* The service's vtable: start(obj, rt, err), stop, health (optional), destroy. */
    const fdn_service_ops_t *ops;
    /* create started it (the config: the slots after it read the tree, updates work before
     * fdn_runtime_start): the rollback of a failed fdn_runtime_start leaves it running, as
     * it was before the call; a later start of it is a no-op that must succeed */
    bool runs_from_create;
    /* Optional: true when called on a thread of the object's own that its stop waits for and
     * that runs application code (the config's subscriber deliveries, the task pool's tasks):
     * fdn_runtime_add_service from there must not wait for a stop of this slot
     * (fdn__supervisor_add_from: it fails with FDN_ECANCELED once that stop has begun).
     * Called under the runtime's mu: a thread-local read, no lock, no callback. */
    bool (*on_own_thread)(const void *obj);
} fdn__rt_slot_def_t;

/* The table (src/runtime/runtime_services.c). */
extern const fdn__rt_slot_def_t fdn__rt_builtins[FDN__RT_SLOT_COUNT];

/* Cross-service wiring of the built-in services (src/runtime/runtime_services.c): the runtime
 * knows only these function pointers, so dependencies keep pointing down. Every hook is
 * optional. `glue` is the wiring's own state, kept by the runtime. */
typedef struct fdn__rt_hooks {
    /* After every slot is created, before anything starts. */
    int (*wire)(fdn_runtime_t *rt, void **glue, fdn_error_t *err);
    /* At the start of a shutdown, while every service still runs (not called when the
     * shutdown is requested from a supervisor callback or worker). */
    void (*before_shutdown)(fdn_runtime_t *rt, void *glue, int64_t timeout_ms);
    /* Once, when a shutdown has stopped every service for good (fdn_runtime_shutdown, from
     * a caller that is not a supervisor callback, or destroy): the slots still answer their
     * status calls. */
    void (*after_shutdown)(fdn_runtime_t *rt, void *glue);
    /* After the services have stopped for good, before the slots are destroyed. */
    void (*unwire)(fdn_runtime_t *rt, void *glue);
    /* Supervisor callbacks (lifecycle thread, no lock held). */
    void (*on_restart)(fdn_runtime_t *rt, void *glue, const char *service, int attempt, int reason);
    /* Escalation, called before the services are stopped (they still answer). */
    void (*on_escalation)(fdn_runtime_t *rt, void *glue, const char *service, int code);
    /* Registry operations (caller's thread). */
    void (*on_registry)(fdn_runtime_t *rt, void *glue, fdn_registry_op_t op, const char *ns,
                        const char *service, int result, int64_t duration_ns);
} fdn__rt_hooks_t;

/* The wiring used by fdn_runtime_create (tests that pass their own table get none). */
extern const fdn__rt_hooks_t fdn__rt_hooks;

/* The wiring's state (NULL before wire and for runtimes created without hooks). */
void *fdn__runtime_glue(fdn_runtime_t *rt);

/* The options fdn_runtime_create was called with; valid only while slots are created and
 * wired (NULL afterwards). */
const fdn_runtime_opts_t *fdn__runtime_create_opts(fdn_runtime_t *rt);

/* mkdir -p (mode 0700 for what it creates). 0 or -errno. */
int fdn__rt_make_dirs(const char *path);

/* The object of a built-in slot, or NULL when absent. Stable for the runtime's life. */
void *fdn__runtime_slot(fdn_runtime_t *rt, fdn__rt_slot_t slot);

/* fdn_runtime_create with another built-in table (unit tests pass their own). */
int fdn__runtime_create_with(fdn_runtime_t **out, const fdn_runtime_opts_t *opts,
                             const fdn__rt_slot_def_t *table, fdn_error_t *err);

/* Leak accounting for testing.h: what the runtime still holds after shutdown. */
typedef struct fdn__rt_live {
    size_t threads;       /* supervisor + worker threads not joined */
    size_t running;       /* services not STOPPED/FAILED */
    size_t registrations; /* registry entries made by the runtime for its services */
    uint64_t tasks_busy;  /* task pool: queued + running */
} fdn__rt_live_t;
void fdn__runtime_live(fdn_runtime_t *rt, fdn__rt_live_t *out);

#endif
