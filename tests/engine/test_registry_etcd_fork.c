/* The shared registry across fork(2), on a real etcd (the ctest fixture "etcd"): a child of a
 * process that opened a shared registry has none of its threads and does not own its lease.
 * Its fdn_registry_destroy (a worker's cleanup, an atexit handler) must return, without
 * revoking the parent's lease (its entries would leave every cache), and a registration from
 * the child is refused (it would go under the parent's lease, unknown to the parent).
 *
 * A fork of a process with threads, which ThreadSanitizer cannot follow: this file is not in
 * the TSan stage. The child ends with _exit; the parent waits for it at most WAIT_MS, then
 * kills it and fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fdn/registry.h>

#include "engine.h"

#define WAIT_MS         60000
#define ETCD_TIMEOUT_MS 30000

static fdn_registry_t *open_reg(const char *ns)
{
    fdn_registry_opts_t ro = FDN_REGISTRY_OPTS_INIT;
    ro.name = ns;
    fdn_registry_etcd_opts_t eo = FDN_REGISTRY_ETCD_OPTS_INIT;
    eo.url = test_etcd_url;
    eo.lease_ttl_ms = 30000;
    eo.request_timeout_ms = ETCD_TIMEOUT_MS;
    fdn_registry_t *r = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_registry_open(&r, &ro, &eo, &err);
    if (rc != 0)
        fprintf(stderr, "fdn_registry_open: %s\n", err.message);
    assert_int_equal(rc, 0);
    return r;
}

static bool has(fdn_registry_t *r, const char *service, const char *instance)
{
    fdn_registry_instance_t *i = NULL;
    bool yes = fdn_registry_lookup_shared(r, service, instance, &i, NULL) == 0;
    fdn_registry_instance_release(i);
    return yes;
}

/* The child's exit status (-1: it did not end within WAIT_MS and was killed). */
static int wait_child(pid_t pid)
{
    int64_t t0 = test_now_ms();
    for (;;) {
        int st = 0;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (test_now_ms() - t0 > WAIT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        test_pause_ms(10);
    }
}

static void child_destroy_returns_and_keeps_the_parents_lease(void **state)
{
    (void)state;
    char ns[64];
    test_engine_unique_name(ns, sizeof(ns), "fork");
    fdn_registry_t *a = open_reg(ns);
    assert_int_equal(fdn_registry_register_shared(a, "api", "a1", "http://a", NULL, 0, NULL), 0);
    assert_true(has(a, "api", "a1"));
    fdn_registry_shared_stats_t s;
    memset(&s, 0, sizeof(s));
    s.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    assert_int_equal(fdn_registry_shared_stats(a, &s), 0);
    int64_t lease = s.lease_id;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: its registration is refused, its destroy returns */
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn_registry_register_shared(a, "api", "c1", "http://c", NULL, 0, &err);
        if (rc != FDN_EINVAL)
            _exit(10);
        if (strstr(err.message, "fork") == NULL)
            _exit(11);
        if (!has(a, "api", "a1")) /* its cache still answers (frozen: stale) */
            _exit(12);
        if (!fdn_registry_shared_stale(a))
            _exit(13);
        fdn_registry_destroy(a);
        _exit(0);
    }
    int st = wait_child(pid);
    if (st != 0)
        fprintf(stderr, "child: %d (-1: it hung in fdn_registry_destroy and was killed)\n", st);
    assert_int_equal(st, 0);

    /* the parent's lease and entry are intact: an observer still finds them, and a lookup of
     * a name the child tried finds nothing */
    fdn_registry_t *obs = open_reg(ns);
    assert_true(has(obs, "api", "a1"));
    fdn_registry_instance_t *i = NULL;
    assert_int_equal(fdn_registry_lookup_shared(obs, "api", "a1", &i, NULL), 0);
    assert_int_equal(fdn_registry_instance_lease(i), lease);
    fdn_registry_instance_release(i);
    assert_false(has(obs, "api", "c1"));
    memset(&s, 0, sizeof(s));
    s.version = FDN_REGISTRY_SHARED_STATS_VERSION;
    assert_int_equal(fdn_registry_shared_stats(a, &s), 0);
    assert_int_equal(s.lease_id, lease);
    assert_true(s.lease_ok);
    fdn_registry_destroy(obs);
    fdn_registry_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_destroy_returns_and_keeps_the_parents_lease),
    };
    return cmocka_run_group_tests(tests, test_engine_etcd_setup, NULL);
}
