/*
 * DESIGN: the runtime, one isolated namespace (see include/fdn/runtime.h).
 *
 * Ownership: the runtime owns its registry, its supervisor, its task pool and, through the
 * supervisor, one wrapper (rt_svc_t) per supervised service. The wrapper calls the
 * service's own vtable (a built-in's fdn__<m>_service_ops from its slot, or the
 * application's ops) and registers the service under its name when it has started; it
 * carries the registry owner token of that service. Built-in
 * objects are destroyed by their wrapper when the supervisor is destroyed (reverse order).
 *
 * Threads: the runtime creates none itself; the supervisor owns its thread and the workers,
 * the task pool its workers (docs/threading.md).
 *
 * Locks: `mu` guards started/stopped/started_ns and the wrapper list `svcs`. A service is
 * registered by its wrapper's start (after the service's own start succeeded; if the name is
 * taken or memory runs out, the start fails) and unregistered from the supervisor's on_event
 * callback when it stops for good; both run on the lifecycle thread with no lock held, so
 * `registered` needs no lock there. After the supervisor has shut down, a sweep under `mu`
 * retries removals that failed for lack of memory. Order: mu -> registry.wmu (sweep only);
 * `mu` is never held across a call into the supervisor or a service.
 *
 * A failed fdn_runtime_start leaves the runtime as before the call: the supervisor stops
 * what the start had started (rollback, on the caller's thread), except a slot that runs
 * from create (the config, the task pool), whose wrapper skips a stop made inside the
 * supervisor's start.
 * Such a slot the supervisor has not stopped since create (`from_create`: the runtime was
 * never started, or its start failed) is stopped by fdn_runtime_shutdown once the
 * supervisor's shutdown has returned, as a started runtime's shutdown stops it.
 *
 * Calls from a built-in's own threads: a task of the pool, a subscriber of the config or the
 * event store, a telemetry handler on the config's hook thread or the store's writer or
 * pruner run application code on threads that the built-in's stop waits for (it runs the task
 * to its end, joins the thread). Each slot says which (fdn__rt_slot_def_t.on_own_thread);
 * from there fdn_runtime_shutdown only requests the stop (as from a supervisor callback), and
 * fdn_runtime_add_service names the built-in to the supervisor (fdn__supervisor_add_from), which
 * fails the add with FDN_ECANCELED once that built-in's stop has begun instead of waiting.
 *
 * Global state: `g_default` (atomic pointer) is the only process-wide mutable variable.
 */
#include <fdn/config.h>
#include <fdn/runtime.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/lock.h"
#include "runtime/runtime_int.h"
#include "core/supervisor_int.h"
#include "core/tasks_int.h"

typedef struct rt_svc {
    fdn_runtime_t *rt;
    uint64_t owner;
    const fdn_service_ops_t *ops; /* the service's vtable */
    bool (*on_own_thread)(const void *obj); /* its slot's (NULL: none, or an app service) */
    bool builtin;                 /* a built-in slot or the task pool, not the application's */
    bool runs_from_create;        /* started by create: a failed start's rollback keeps it */
    atomic_bool from_create;      /* runs_from_create and not stopped by the supervisor since:
                                     the runtime's shutdown stops it (DESIGN) */
    void *obj;                    /* the service object: the registry handle */
    bool registered;              /* lifecycle thread, or the shutdown sweep under rt->mu */
    struct rt_svc *next;          /* runtime's list of wrappers (guarded by rt->mu) */
    char name[FDN_SERVICE_NAME_MAX + 1];
} rt_svc_t;

struct fdn_runtime {
    char *name;
    char *config_path;
    char *data_dir;
    int lock_fd; /* <data_dir>/lock, flock'ed for the runtime's lifetime; -1 = none */
    fdn_clock_t *clock;
    fdn_runtime_escalation_fn on_escalation;
    fdn_runtime_restart_fn on_restart;
    void *user;
    int64_t health_interval;
    uint32_t flags;
    fdn_registry_t *reg;
    fdn_supervisor_t *sup;
    fdn_tasks_t *tasks;
    void *slots[FDN__RT_SLOT_COUNT];
    const fdn__rt_hooks_t *hooks;          /* cross-service wiring, or NULL */
    _Atomic(void *) glue;                  /* its state; published (release) after wire, read
                                              by the config hook thread while create runs */
    const fdn_runtime_opts_t *create_opts; /* during create only */
    fdn__mutex_t mu;
    rt_svc_t *svcs FDN_MEMBER_GUARDED_BY(mu); /* every wrapper added (freed by the supervisor's
                                                 destroy) */
    bool started FDN_MEMBER_GUARDED_BY(mu);
    bool stopped FDN_MEMBER_GUARDED_BY(mu);
    int64_t started_ns;
    _Atomic bool failed;
    _Atomic bool after_shutdown_done; /* hooks->after_shutdown ran (once) */
    _Atomic size_t registrations;
};

static _Atomic(fdn_runtime_t *) g_default = NULL;

/* ---- service wrapper ---------------------------------------------------------------- */

static void w_stop(void *state);

/* Register a service under its name when it starts (once: the entry stays through restarts).
 * Lifecycle thread. */
static int register_svc(rt_svc_t *s, const char *name, fdn_error_t *err)
{
    if (s->registered)
        return 0;
    fdn_runtime_t *rt = s->rt;
    const char *kind = s->builtin ? "builtin" : "service";
    fdn_registry_meta_t meta[] = {{"kind", kind}, {"runtime", rt->name}};
    void *handle = s->obj != NULL ? s->obj : (void *)s;
    int rc = fdn_registry_register(rt->reg, name, handle, s->owner, meta, 2, err);
    if (rc == 0) {
        s->registered = true;
        atomic_fetch_add_explicit(&rt->registrations, 1, memory_order_relaxed);
    }
    return rc;
}

/* Remove a service's entry; on failure (ENOMEM) it stays marked and is retried at the next
 * stop or by the sweep at shutdown. */
static void unregister_svc(rt_svc_t *s)
{
    if (s->registered && fdn_registry_release_owner(s->rt->reg, s->owner) >= 0) {
        s->registered = false;
        atomic_fetch_sub_explicit(&s->rt->registrations, 1, memory_order_relaxed);
    }
}

static int w_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    rt_svc_t *s = state;
    int rc = s->ops->start(s->obj, s->rt, err);
    if (rc != 0 && s->builtin)
        return fdn_err_set(err, rc, "built-in service %s failed to start in runtime %s", s->name,
                           s->rt->name);
    if (rc != 0)
        return rc;
    rc = register_svc(s, s->name, err);
    if (rc != 0)
        w_stop(state);
    return rc;
}

static void w_stop(void *state)
{
    rt_svc_t *s = state;
    /* inside fdn_runtime_start, a stop is that start failing (its rollback, or w_start's own
     * undo): a service running since create (the config) stays running, so the runtime is
     * as before the call (updates keep working until the retry). A stop for a restart or at
     * shutdown runs on the supervisor's thread and stops it. */
    if (s->runs_from_create) {
        if (fdn__supervisor_starting(s->rt->sup))
            return;
        atomic_store_explicit(&s->from_create, false, memory_order_relaxed); /* the supervisor's */
    }
    s->ops->stop(s->obj);
}

/* Stop the slots still running from create (the config), which the supervisor never stopped:
 * it was never started, or its start failed and left them running; its shutdown stops only
 * what it started. Each once (a later shutdown finds none); after the supervisor's shutdown,
 * so no lifecycle callback runs. */
static void stop_from_create(fdn_runtime_t *rt)
{
    rt_svc_t *stop[FDN__RT_SLOT_COUNT + 1]; /* (the slots and the task pool) */
    size_t n = 0;
    fdn__mutex_lock(&rt->mu);
    for (rt_svc_t *s = rt->svcs; s != NULL; s = s->next)
        if (n < FDN__RT_SLOT_COUNT + 1 && s->runs_from_create &&
            atomic_exchange_explicit(&s->from_create, false, memory_order_relaxed))
            stop[n++] = s;
    fdn__mutex_unlock(&rt->mu);
    for (size_t i = 0; i < n; i++) /* svcs is newest first: reverse start order */
        stop[i]->ops->stop(stop[i]->obj);
}

static int w_health(void *state)
{
    rt_svc_t *s = state;
    return s->ops->health != NULL ? s->ops->health(s->obj) : 0;
}

static int w_run(void *state, fdn_service_ctl_t *ctl)
{
    rt_svc_t *s = state;
    return s->ops->run(s->obj, ctl);
}

static void w_destroy(void *state)
{
    rt_svc_t *s = state;
    if (s->ops->destroy != NULL)
        s->ops->destroy(s->obj);
    fdn__free(s);
}

static const fdn_service_ops_t W_OPS = {w_start, w_stop, w_health, NULL, w_destroy};
static const fdn_service_ops_t W_OPS_RUN = {w_start, w_stop, w_health, w_run, w_destroy};

/* The task pool is a supervised child too (the reference's TaskSupervisor, last built-in):
 * stop drains and joins its workers, start resumes them. Its ops have no destroy: the runtime
 * destroys the pool itself, after the supervisor. It runs from create (fdn_tasks_create starts
 * its workers), so a failed fdn_runtime_start leaves it running, as the config (DESIGN). */
static bool tasks_on_own_thread(const void *obj)
{
    return fdn__tasks_on_worker(obj);
}

static const fdn__rt_slot_def_t TASKS_SLOT = {"task_supervisor", NULL, &fdn__tasks_service_ops,
                                              true, tasks_on_own_thread};

/* ---- supervisor callbacks (lifecycle thread, no lock held) --------------------------- */

static void rt_on_event(const char *service, void *state, fdn_service_state_t st, int code,
                        void *user)
{
    (void)service;
    (void)code;
    (void)user;
    if (st == FDN_SERVICE_STOPPED || st == FDN_SERVICE_FAILED)
        unregister_svc(state);
}

static void rt_on_escalation(const char *service, int code, void *user)
{
    fdn_runtime_t *rt = user;
    atomic_store_explicit(&rt->failed, true, memory_order_release);
    if (rt->on_escalation != NULL)
        rt->on_escalation(rt, service, code, rt->user);
}

/* Before the services stop: record the escalation while the event store still answers. */
static void rt_on_escalating(const char *service, int code, void *user)
{
    fdn_runtime_t *rt = user;
    if (rt->hooks != NULL && rt->hooks->on_escalation != NULL)
        rt->hooks->on_escalation(rt, fdn__runtime_glue(rt), service, code);
}

static void rt_on_restart(const char *service, int attempt, int reason, int64_t backoff_ns,
                          void *user)
{
    (void)backoff_ns;
    fdn_runtime_t *rt = user;
    if (rt->hooks != NULL && rt->hooks->on_restart != NULL)
        rt->hooks->on_restart(rt, fdn__runtime_glue(rt), service, attempt, reason);
    if (rt->on_restart != NULL)
        rt->on_restart(rt, service, attempt, reason, rt->user);
}

static void rt_on_registry(fdn_registry_op_t op, const char *ns, const char *service, int result,
                           int64_t duration_ns, void *user)
{
    fdn_runtime_t *rt = user;
    /* glue is published before start (happens-before every registration a caller can make
     * on a started runtime); the runtime's own registrations during create see NULL */
    void *glue = fdn__runtime_glue(rt);
    if (glue != NULL)
        rt->hooks->on_registry(rt, glue, op, ns, service, result, duration_ns);
}

/* ---- creation ---------------------------------------------------------------------- */

/* Whether the caller is a thread of a built-in's own that the built-in's stop waits for
 * (fdn__rt_slot_def_t.on_own_thread); its name into name (FDN_SERVICE_NAME_MAX + 1 bytes)
 * when not NULL. */
static bool on_own_thread(fdn_runtime_t *rt, char *name)
{
    bool found = false;
    fdn__mutex_lock(&rt->mu);
    for (rt_svc_t *o = rt->svcs; o != NULL && !found; o = o->next) {
        if (o->on_own_thread != NULL && o->on_own_thread(o->obj)) {
            found = true;
            if (name != NULL)
                memcpy(name, o->name, sizeof(o->name));
        }
    }
    fdn__mutex_unlock(&rt->mu);
    return found;
}

/* Wrap a built-in (def) or an application service (app) and add it to the supervisor. */
static int add_wrapped(fdn_runtime_t *rt, const char *name, const fdn__rt_slot_def_t *def,
                       const fdn_service_spec_t *app, void *obj, fdn_error_t *err)
{
    rt_svc_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory adding service %s", name);
    s->rt = rt;
    s->owner = fdn_registry_owner_new();
    s->builtin = app == NULL;
    s->runs_from_create = def != NULL && def->runs_from_create;
    atomic_init(&s->from_create, s->runs_from_create);
    s->ops = app != NULL ? app->ops : def->ops;
    s->on_own_thread = def != NULL ? def->on_own_thread : NULL;
    s->obj = obj;
    size_t len = strlen(name);
    if (len > FDN_SERVICE_NAME_MAX)
        len = FDN_SERVICE_NAME_MAX;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = name;
    spec.state = s;
    if (app != NULL) {
        spec.ops = app->ops->run != NULL ? &W_OPS_RUN : &W_OPS;
        spec.restart = app->restart;
        spec.health_interval_ns = app->ops->health != NULL ? app->health_interval_ns : 0;
    } else {
        spec.ops = &W_OPS;
        spec.restart = FDN_RESTART_PERMANENT; /* built-ins always restart (reference) */
        spec.health_interval_ns = def->ops->health != NULL ? rt->health_interval : 0;
    }
    /* link first: an add after start may start (and register) the service at once */
    fdn__mutex_lock(&rt->mu);
    s->next = rt->svcs;
    rt->svcs = s;
    fdn__mutex_unlock(&rt->mu);
    /* from a thread of a built-in's own (a task of the runtime's pool, a subscriber of its
     * config or event store, the config's hook thread): the stop of that service (a restart,
     * an escalation) waits for this thread, so the add must not wait for the lifecycle thread
     * then */
    char from[FDN_SERVICE_NAME_MAX + 1];
    int rc = fdn__supervisor_add_from(rt->sup, &spec, on_own_thread(rt, from) ? from : NULL, err);
    if (rc != 0) {
        fdn__mutex_lock(&rt->mu);
        for (rt_svc_t **pp = &rt->svcs; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
        fdn__mutex_unlock(&rt->mu);
        fdn__free(s); /* the caller keeps obj */
    }
    return rc;
}

static int check_opts(const fdn_runtime_opts_t *o, fdn_error_t *err)
{
    if (o->version < 1 || o->version > FDN_RUNTIME_OPTS_VERSION)
        return fdn_err_set(err, FDN_EINVAL, "runtime options of unknown version %u",
                           (unsigned)o->version);
    if (o->name != NULL && (o->name[0] == '\0' || strlen(o->name) > FDN_REGISTRY_NAME_MAX))
        return fdn_err_set(err, FDN_EINVAL, "runtime name must be 1..%d bytes",
                           FDN_REGISTRY_NAME_MAX);
    if (o->max_restarts < 0 || o->period_ns <= 0 || o->backoff_base_ns < 0 ||
        o->backoff_max_ns < 0 || o->health_interval_ns < 0)
        return fdn_err_set(err, FDN_EINVAL, "runtime %s: negative intensity, period or delay",
                           o->name != NULL ? o->name : "production");
    if (o->task_workers == 0 || o->task_workers > 256 || o->task_queue == 0 ||
        o->task_queue > ((size_t)1 << 20))
        return fdn_err_set(err, FDN_EINVAL, "runtime task pool: 1..256 workers, 1..2^20 queue");
    return 0;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = fdn__strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

int fdn__rt_make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
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

/* One runtime per data directory: an exclusive flock on <dir>/lock, held until the runtime is
 * destroyed (the kernel drops it when the process dies, kill -9 included, so it is never
 * stale). The file holds the owner's pid, for the message another process gets. */
static int lock_data_dir(const char *dir, int *out_fd, fdn_error_t *err)
{
    int mrc = fdn__rt_make_dirs(dir);
    if (mrc != 0)
        return fdn_err_set(err, mrc == -EACCES ? FDN_EACCES : FDN_EIO,
                           "cannot create the data directory %s (errno %d)", dir, -mrc);
    char path[4200];
    int n = snprintf(path, sizeof(path), "%s/lock", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return fdn_err_set(err, FDN_EINVAL, "data directory path too long: %s", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fdn_err_set(err, errno == EACCES ? FDN_EACCES : FDN_EIO, "cannot open %s (errno %d)",
                           path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return fdn_err_set(err, FDN_EBUSY,
                               "data directory %s is in use by another runtime (pid %s): one "
                               "process per data directory",
                               dir, pid[0] ? pid : "unknown");
        return fdn_err_set(err, FDN_EIO, "cannot lock %s (errno %d)", path, e);
    }
    char pid[24];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the lock holds without the pid; only the other process's message loses it */
    }
    *out_fd = fd;
    return 0;
}

/* infrastructure.registry.lease_ttl_ms and .request_timeout_ms as the runtime's config will
 * have them (file, environment, defaults), read before the registry exists from a config made
 * for that alone, into those of *eo that the options left 0; left 0 (the registry's defaults)
 * when that config cannot be made: the config service reports why. */
static void config_registry_opts(const fdn_runtime_t *rt, const fdn_runtime_opts_t *opts,
                                 fdn_registry_etcd_opts_t *eo)
{
    fdn_config_opts_t co = FDN_CONFIG_OPTS_INIT;
    co.file = rt->config_path;
    co.clock = rt->clock;
    co.keys = opts->config_keys;
    co.nkeys = opts->config_nkeys;
    co.envp = opts->envp;
    co.ignore_env = opts->ignore_env;
    fdn_config_t *cfg = NULL;
    if (fdn_config_create(&cfg, &co, NULL) == 0) {
        int64_t v = 0;
        if (eo->lease_ttl_ms == 0 &&
            fdn_config_get_int(cfg, "infrastructure.registry.lease_ttl_ms", &v) == 0)
            eo->lease_ttl_ms = v;
        if (eo->request_timeout_ms == 0 &&
            fdn_config_get_int(cfg, "infrastructure.registry.request_timeout_ms", &v) == 0)
            eo->request_timeout_ms = v;
    }
    fdn_config_destroy(cfg);
}

static int create_impl(fdn_runtime_t **out, const fdn_runtime_opts_t *opts,
                       const fdn__rt_slot_def_t *table, const fdn__rt_hooks_t *hooks,
                       fdn_error_t *err)
{
    fdn_runtime_opts_t def = FDN_RUNTIME_OPTS_INIT;
    if (out == NULL)
        return fdn_err_set(err, FDN_EINVAL, "runtime: out is NULL");
    if (opts == NULL)
        opts = &def;
    int rc = check_opts(opts, err);
    if (rc != 0)
        return rc;
    fdn_runtime_t *rt = fdn__calloc(1, sizeof(*rt));
    if (rt == NULL)
        return fdn_err_set(err, FDN_ENOMEM, "out of memory creating a runtime");
    bool oom = false;
    rt->name = dup_opt(opts->name != NULL ? opts->name : "production", &oom);
    rt->config_path = dup_opt(opts->config_path, &oom);
    rt->data_dir = dup_opt(opts->data_dir, &oom);
    rt->lock_fd = -1;
    pthread_mutex_init(&rt->mu, NULL);
    atomic_init(&rt->failed, false);
    atomic_init(&rt->after_shutdown_done, false);
    atomic_init(&rt->registrations, 0);
    rt->clock = opts->clock;
    rt->on_escalation = opts->on_escalation;
    rt->on_restart = opts->on_restart;
    rt->user = opts->user;
    rt->health_interval = opts->health_interval_ns;
    rt->flags = opts->flags;
    rt->hooks = hooks;
    rt->create_opts = opts;
    if (oom) {
        rc = fdn_err_set(err, FDN_ENOMEM, "out of memory creating a runtime");
        goto fail;
    }
    /* before anything is written to the data directory */
    if (rt->data_dir != NULL && (rc = lock_data_dir(rt->data_dir, &rt->lock_fd, err)) != 0)
        goto fail;

    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = rt->name;
    ro.clock = rt->clock;
    if (hooks != NULL && hooks->on_registry != NULL) {
        ro.on_event = rt_on_registry;
        ro.event_user = rt;
    }
    if (opts->version >= 2 && opts->registry_etcd != NULL) {
        /* a registry with a shared part on etcd (its error names etcd and the URL); its lease
         * TTL and the bound on its calls, unless the options set them, are the config's
         * infrastructure.registry.lease_ttl_ms and .request_timeout_ms */
        fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
        memcpy(&eo, opts->registry_etcd, /* a version 1 structure ends before that field */
               opts->registry_etcd->version >= 2
                   ? sizeof(eo)
                   : offsetof(fdn_registry_etcd_opts_t, start_unreachable));
        if (eo.lease_ttl_ms == 0 || eo.request_timeout_ms == 0)
            config_registry_opts(rt, opts, &eo);
        rc = fdn_registry_open(&rt->reg, &ro, &eo, err);
        if (rc != 0)
            goto fail;
    } else {
        rc = fdn_registry_create(&rt->reg, &ro);
        if (rc != 0) {
            fdn_err_set(err, rc, "runtime %s: cannot create the registry", rt->name);
            goto fail;
        }
    }

    fdn_supervisor_opts_t so = FDN_SUPERVISOR_OPTS_INIT;
    so.name = rt->name;
    so.clock = rt->clock;
    so.strategy = FDN_SUP_ONE_FOR_ONE;
    so.max_restarts = opts->max_restarts;
    so.period_ns = opts->period_ns;
    so.backoff_base_ns = opts->backoff_base_ns;
    so.backoff_max_ns = opts->backoff_max_ns;
    so.ctx = rt;
    so.on_escalation = rt_on_escalation;
    so.on_escalating = rt_on_escalating;
    so.on_restart = rt_on_restart;
    so.on_event = rt_on_event;
    so.user = rt;
    rc = fdn_supervisor_create(&rt->sup, &so);
    if (rc != 0) {
        fdn_err_set(err, rc, "runtime %s: cannot create the supervisor", rt->name);
        goto fail;
    }

    if (!(opts->flags & FDN_RUNTIME_NO_BUILTINS)) {
        for (int i = 0; i < FDN__RT_SLOT_COUNT; i++) {
            const fdn__rt_slot_def_t *slot = &table[i];
            if (slot->create == NULL)
                continue;
            void *obj = NULL;
            rc = slot->create(rt, &obj, err);
            if (rc != 0) {
                fdn_err_add_context(err, "service", "%s", slot->name);
                goto fail;
            }
            rc = add_wrapped(rt, slot->name, slot, NULL, obj, err);
            if (rc != 0) {
                if (slot->ops->destroy != NULL)
                    slot->ops->destroy(obj);
                goto fail;
            }
            rt->slots[i] = obj;
        }
        if (hooks != NULL && hooks->wire != NULL) {
            void *glue = NULL;
            rc = hooks->wire(rt, &glue, err);
            atomic_store_explicit(&rt->glue, glue, memory_order_release);
            if (rc != 0)
                goto fail;
        }
    }
    rt->create_opts = NULL;

    fdn_tasks_opts_t to = FDN_TASKS_OPTS_INIT;
    to.workers = opts->task_workers;
    to.queue_capacity = opts->task_queue;
    to.name = "fdn-task";
    rc = fdn_tasks_create(&rt->tasks, &to);
    if (rc != 0) {
        fdn_err_set(err, rc, "runtime %s: cannot create the task pool", rt->name);
        goto fail;
    }
    rc = add_wrapped(rt, TASKS_SLOT.name, &TASKS_SLOT, NULL, rt->tasks, err);
    if (rc != 0)
        goto fail;

    if (!(opts->flags & FDN_RUNTIME_NO_START)) {
        rc = fdn_runtime_start(rt, err);
        if (rc != 0)
            goto fail;
    }
    *out = rt;
    return 0;
fail:
    rt->create_opts = NULL;
    fdn_runtime_destroy(rt);
    return rc;
}

int fdn__runtime_create_with(fdn_runtime_t **out, const fdn_runtime_opts_t *opts,
                             const fdn__rt_slot_def_t *table, fdn_error_t *err)
{
    return create_impl(out, opts, table, NULL, err);
}

int fdn_runtime_create(fdn_runtime_t **out, const fdn_runtime_opts_t *opts, fdn_error_t *err)
{
    return create_impl(out, opts, fdn__rt_builtins, &fdn__rt_hooks, err);
}

int fdn_runtime_start(fdn_runtime_t *rt, fdn_error_t *err)
{
    if (rt == NULL)
        return fdn_err_set(err, FDN_EINVAL, "runtime is NULL");
    fdn__mutex_lock(&rt->mu);
    if (rt->started || rt->stopped) {
        int rc = rt->stopped ? FDN_ESHUTDOWN : FDN_EBUSY;
        fdn__mutex_unlock(&rt->mu);
        return fdn_err_set(err, rc, "runtime %s already started or shut down", rt->name);
    }
    rt->started = true;
    rt->started_ns = fdn_clock_mono_ns(rt->clock);
    fdn__mutex_unlock(&rt->mu);
    int rc = fdn_supervisor_start(rt->sup, err);
    if (rc != 0) {
        /* the supervisor stopped what it had started and is back to not started: so is the
         * runtime, and start may be called again (a shutdown meanwhile has set `stopped`) */
        fdn_err_add_context(err, "runtime", "%s", rt->name);
        fdn__mutex_lock(&rt->mu);
        rt->started = false;
        rt->started_ns = 0;
        fdn__mutex_unlock(&rt->mu);
    }
    return rc;
}

int fdn_runtime_shutdown(fdn_runtime_t *rt, int64_t timeout_ms)
{
    if (rt == NULL)
        return FDN_EINVAL;
    /* on a thread of a built-in's own (a task of the runtime's pool, a subscriber of its config
     * or event store, the config's hook thread): that service's stop waits for this very
     * thread (runs the task to its end, joins the thread), and so would the drain of the
     * config's hook from the hook thread: see below */
    bool own = on_own_thread(rt, NULL);
    fdn__mutex_lock(&rt->mu);
    bool first = !rt->stopped;
    rt->stopped = true;
    fdn__mutex_unlock(&rt->mu);
    if (first && !own && fdn__runtime_glue(rt) != NULL && rt->hooks->before_shutdown != NULL &&
        !fdn__supervisor_on_thread(rt->sup))
        rt->hooks->before_shutdown(rt, fdn__runtime_glue(rt), timeout_ms);
    /* The supervisor stops the services in reverse order; the task pool is one of them and
     * drains when stopped. Then the pool is shut down for good (idempotent). */
    if (fdn__supervisor_on_thread(rt->sup)) {
        /* from a supervisor callback (e.g. on_escalation): only request the stop; the
         * supervisor thread stops the services and destroy completes the rest */
        return fdn_supervisor_shutdown(rt->sup, timeout_ms);
    }
    /* from a thread of a built-in's own: only request the stop (a bound of 0), as from a
     * callback above, and let a later call or destroy complete the rest, stops of what runs
     * from create included (which would wait for this thread too) */
    if (own) {
        (void)fdn_supervisor_shutdown(rt->sup, 0);
        return 0;
    }
    int rc = rt->sup != NULL ? fdn_supervisor_shutdown(rt->sup, timeout_ms) : 0;
    if (rc == 0) {
        stop_from_create(rt); /* a runtime never started, or whose start failed */
        /* every service is stopped and no lifecycle callback runs any more: retry removals
         * that failed for lack of memory */
        fdn__mutex_lock(&rt->mu);
        for (rt_svc_t *s = rt->svcs; s != NULL; s = s->next)
            unregister_svc(s);
        fdn__mutex_unlock(&rt->mu);
        /* the services are stopped for good: the wiring accounts for what they left */
        if (fdn__runtime_glue(rt) != NULL && rt->hooks->after_shutdown != NULL &&
            !atomic_exchange_explicit(&rt->after_shutdown_done, true, memory_order_acq_rel))
            rt->hooks->after_shutdown(rt, fdn__runtime_glue(rt));
    }
    if (rc == 0 && rt->tasks != NULL) {
        rc = fdn_tasks_shutdown(rt->tasks, timeout_ms);
        if (rc == FDN_EBUSY)
            rc = 0;
    }
    return rc;
}

void fdn_runtime_destroy(fdn_runtime_t *rt)
{
    if (rt == NULL)
        return;
    fdn_runtime_t *expect = rt;
    atomic_compare_exchange_strong_explicit(&g_default, &expect, NULL, memory_order_acq_rel,
                                            memory_order_acquire);
    fdn_runtime_shutdown(rt, -1);
    void *glue = fdn__runtime_glue(rt);
    if (glue != NULL && rt->hooks->unwire != NULL)
        rt->hooks->unwire(rt, glue);
    atomic_store_explicit(&rt->glue, NULL, memory_order_release);
    fdn_supervisor_destroy(rt->sup); /* destroys the wrappers and built-in objects */
    fdn_tasks_destroy(rt->tasks);
    fdn_registry_destroy(rt->reg);
    pthread_mutex_destroy(&rt->mu);
    fdn__free(rt->name);
    fdn__free(rt->config_path);
    if (rt->lock_fd >= 0)
        close(rt->lock_fd); /* releases the data directory */
    fdn__free(rt->data_dir);
    fdn__free(rt);
}

int fdn_runtime_add_service(fdn_runtime_t *rt, const fdn_service_spec_t *spec, fdn_error_t *err)
{
    if (rt == NULL || spec == NULL || spec->version != FDN_SERVICE_SPEC_VERSION ||
        spec->ops == NULL || spec->ops->start == NULL || spec->ops->stop == NULL ||
        spec->name == NULL)
        return fdn_err_set(err, FDN_EINVAL, "runtime service spec incomplete");
    return add_wrapped(rt, spec->name, NULL, spec, spec->state, err);
}

int fdn_runtime_inject_fault(fdn_runtime_t *rt, const char *service, int code)
{
    if (rt == NULL)
        return FDN_EINVAL;
    return fdn_supervisor_inject_fault(rt->sup, service, code);
}

int fdn_runtime_service_status(fdn_runtime_t *rt, const char *service, fdn_service_status_t *out)
{
    if (rt == NULL)
        return FDN_EINVAL;
    return fdn_supervisor_service_status(rt->sup, service, out);
}

int fdn_runtime_health(fdn_runtime_t *rt, fdn_runtime_health_t *out, fdn_service_status_t *services,
                       size_t cap, size_t *n_out)
{
    if (rt == NULL || out == NULL || (services == NULL && cap > 0))
        return FDN_EINVAL;
    memset(out, 0, sizeof(*out));
    int64_t now = fdn_clock_mono_ns(rt->clock);
    fdn__mutex_lock(&rt->mu);
    bool started = rt->started;
    bool running = started && !rt->stopped;
    int64_t since = rt->started_ns;
    fdn__mutex_unlock(&rt->mu);
    bool degraded = false;
    /* every status in one pass under the supervisor's lock (into a local array when the
     * caller's is too small; a service past that is read alone) */
    fdn_service_status_t local[16];
    fdn_service_status_t *buf = cap >= sizeof local / sizeof local[0] ? services : local;
    size_t bcap = buf == services ? cap : sizeof local / sizeof local[0];
    size_t total = fdn__supervisor_statuses(rt->sup, buf, bcap), n = 0;
    fdn_service_status_t st;
    for (; n < total; n++) {
        if (n < bcap)
            st = buf[n];
        else if (fdn_supervisor_status_at(rt->sup, n, &st) != 0)
            break; /* a failed add was removed since the pass: report those read */
        if (buf != services && n < cap)
            services[n] = st;
        switch (st.state) {
        case FDN_SERVICE_RUNNING:
            out->running++;
            degraded |= !st.healthy;
            break;
        case FDN_SERVICE_RESTARTING:
            out->restarting++;
            degraded = true;
            break;
        case FDN_SERVICE_FAILED:
            out->failed++;
            degraded = true;
            break;
        case FDN_SERVICE_STARTING:
            degraded = true;
            break;
        case FDN_SERVICE_STOPPED:
            degraded |= st.restart == FDN_RESTART_PERMANENT;
            break;
        }
    }
    out->services = n;
    out->timestamp_ns = now;
    out->uptime_ns = started ? now - since : 0;
    if (atomic_load_explicit(&rt->failed, memory_order_acquire))
        out->status = FDN_RUNTIME_FAILED;
    else if (!running)
        out->status = FDN_RUNTIME_STOPPED;
    else
        out->status = degraded ? FDN_RUNTIME_DEGRADED : FDN_RUNTIME_HEALTHY;
    if (n_out != NULL)
        *n_out = n;
    return 0;
}

const char *fdn_runtime_status_name(fdn_runtime_status_t s)
{
    switch (s) {
    case FDN_RUNTIME_HEALTHY:
        return "healthy";
    case FDN_RUNTIME_DEGRADED:
        return "degraded";
    case FDN_RUNTIME_FAILED:
        return "failed";
    case FDN_RUNTIME_STOPPED:
        return "stopped";
    }
    return "unknown";
}

fdn_registry_t *fdn_runtime_registry(fdn_runtime_t *rt)
{
    return rt != NULL ? rt->reg : NULL;
}

fdn_tasks_t *fdn_runtime_tasks(fdn_runtime_t *rt)
{
    return rt != NULL ? rt->tasks : NULL;
}

fdn_supervisor_t *fdn_runtime_supervisor(fdn_runtime_t *rt)
{
    return rt != NULL ? rt->sup : NULL;
}

fdn_clock_t *fdn_runtime_clock(const fdn_runtime_t *rt)
{
    return rt != NULL ? rt->clock : NULL;
}

const char *fdn_runtime_name(const fdn_runtime_t *rt)
{
    return rt != NULL ? rt->name : "";
}

const char *fdn_runtime_data_dir(const fdn_runtime_t *rt)
{
    return rt != NULL ? rt->data_dir : NULL;
}

const char *fdn_runtime_config_path(const fdn_runtime_t *rt)
{
    return rt != NULL ? rt->config_path : NULL;
}

fdn_runtime_t *fdn_runtime_default(void)
{
    return atomic_load_explicit(&g_default, memory_order_acquire);
}

fdn_runtime_t *fdn_runtime_set_default(fdn_runtime_t *rt)
{
    return atomic_exchange_explicit(&g_default, rt, memory_order_acq_rel);
}

void *fdn__runtime_slot(fdn_runtime_t *rt, fdn__rt_slot_t slot)
{
    if (rt == NULL || (unsigned)slot >= FDN__RT_SLOT_COUNT)
        return NULL;
    return rt->slots[slot];
}

void *fdn__runtime_glue(fdn_runtime_t *rt)
{
    return rt != NULL ? atomic_load_explicit(&rt->glue, memory_order_acquire) : NULL;
}

const fdn_runtime_opts_t *fdn__runtime_create_opts(fdn_runtime_t *rt)
{
    return rt != NULL ? rt->create_opts : NULL;
}

void fdn__runtime_live(fdn_runtime_t *rt, fdn__rt_live_t *out)
{
    memset(out, 0, sizeof(*out));
    if (rt == NULL)
        return;
    out->threads = fdn__supervisor_live_threads(rt->sup);
    fdn_service_status_t st;
    for (size_t i = 0; fdn_supervisor_status_at(rt->sup, i, &st) == 0; i++)
        if (st.state != FDN_SERVICE_STOPPED && st.state != FDN_SERVICE_FAILED)
            out->running++;
    out->registrations = atomic_load_explicit(&rt->registrations, memory_order_relaxed);
    fdn_tasks_stats_t ts;
    if (rt->tasks != NULL && fdn_tasks_stats(rt->tasks, &ts) == 0)
        out->tasks_busy = ts.queued + ts.running;
}
