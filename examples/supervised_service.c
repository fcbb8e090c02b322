/* Example: a runtime with one application service that has a worker loop, supervised
 * one_for_one. The service answers FDN_EUNAVAILABLE while it is stopped or restarting; the
 * fault hook makes it fail once and the supervisor restarts it after the backoff.
 * Runs on a manual clock so it finishes at once and prints what happened. */
#include <stdatomic.h>
#include <stdio.h>

#include <fdn/runtime.h>
#include <fdn/testing.h>

typedef struct counter_svc {
    atomic_bool running; /* set last by start, cleared first by stop */
    atomic_long ticks;
} counter_svc_t;

static int counter_start(void *state, void *ctx, fdn_error_t *err)
{
    (void)ctx;
    (void)err;
    counter_svc_t *s = state;
    atomic_store(&s->running, true);
    return 0;
}

static void counter_stop(void *state)
{
    counter_svc_t *s = state;
    atomic_store(&s->running, false);
}

/* Worker: one tick per 100 ms of (runtime) clock time until asked to stop. */
static int counter_run(void *state, fdn_service_ctl_t *ctl)
{
    counter_svc_t *s = state;
    int64_t next = fdn_clock_mono_ns(fdn_service_clock(ctl));
    for (;;) {
        next += 100 * 1000000LL;
        int rc;
        while ((rc = fdn_service_wait(ctl, next)) == FDN_EAGAIN)
            ;
        if (rc == FDN_ECANCELED)
            return 0;
        atomic_fetch_add(&s->ticks, 1);
    }
}

/* The service's public call: never blocks, answers FDN_EUNAVAILABLE while stopped. */
static int counter_read(counter_svc_t *s, long *out)
{
    if (!atomic_load(&s->running))
        return FDN_EUNAVAILABLE;
    *out = atomic_load(&s->ticks);
    return 0;
}

static const fdn_service_ops_t COUNTER_OPS = {counter_start, counter_stop, NULL, counter_run, NULL};

int main(void)
{
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    if (fdn_testing_runtime_create(&rt, NULL, &err) != 0) {
        fprintf(stderr, "runtime: %s\n", err.message);
        return 1;
    }
    counter_svc_t svc = {0};
    fdn_service_spec_t spec = FDN_SERVICE_SPEC_INIT;
    spec.name = "counter";
    spec.ops = &COUNTER_OPS;
    spec.state = &svc;
    if (fdn_runtime_add_service(rt, &spec, &err) != 0) {
        fprintf(stderr, "add: %s\n", err.message);
        fdn_testing_runtime_destroy(rt, NULL);
        return 1;
    }
    long v = 0;
    printf("runtime %s started, counter: %s\n", fdn_runtime_name(rt),
           counter_read(&svc, &v) == 0 ? "running" : "unavailable");

    fdn_runtime_inject_fault(rt, "counter", FDN_EIO);
    fdn_testing_settle(rt);
    int rc = counter_read(&svc, &v);
    printf("after a fault: %s\n", fdn_err_name(rc));

    fdn_testing_advance(rt, 10 * 1000000LL); /* the default first backoff */
    fdn_service_status_t st;
    fdn_runtime_service_status(rt, "counter", &st);
    printf("after the backoff: %s, restarts=%u, last_error=%s\n", fdn_service_state_name(st.state),
           st.restarts, fdn_err_name(st.last_error));

    fdn_runtime_health_t h;
    fdn_runtime_health(rt, &h, NULL, 0, NULL);
    printf("health: %s (%zu services, %zu running)\n", fdn_runtime_status_name(h.status),
           h.services, h.running);
    return fdn_testing_runtime_destroy(rt, NULL) == 0 ? 0 : 1;
}
