/* Helpers for the tests on real engines (tests/engine/): the URL that a server script
 * (scripts/<engine>-server.sh) wrote for a ctest fixture or for a test's own server, that
 * script run from a test, names unique to a run, and the clock of polling loops.
 *
 * Failures (a missing environment variable or url file, a script that fails) fail the running
 * test through cmocka. */
#ifndef FDN_TEST_ENGINE_H
#define FDN_TEST_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

/* The URL in dir/url (its newline cut) into url[0..cap). */
void test_engine_url_of(const char *dir, char *url, size_t cap);

/* The URL of the ctest fixture whose directory the environment variable env names (e.g.
 * "FDN_TEST_ETCD_DIR"). Also fixes the run id of test_engine_unique_name. */
void test_engine_fixture_url(const char *env, char *url, size_t cap);

/* The URL of the etcd fixture ($FDN_TEST_ETCD_DIR), read by test_engine_etcd_setup: the group
 * setup of the etcd tests (cmocka_run_group_tests(tests, test_engine_etcd_setup, NULL)). */
extern char test_etcd_url[128];
int test_engine_etcd_setup(void **state);

/* `bash $FDN_SOURCE_DIR/scripts/<script> cmd dir`, its output dropped; fails the test unless
 * it exits 0. */
void test_engine_script(const char *script, const char *cmd, const char *dir);

/* A server of the test's own (a test that kills or restarts it must not take the fixture's
 * from other tests that ctest runs at the same time), in a fresh /tmp directory. A watchdog
 * process of its own stops it when the test process ends without test_engine_server_stop: an
 * abort (a sanitizer's halt_on_error), a kill (ctest's TIMEOUT, which kills the test's whole
 * process tree; a kill of its process group) or an exit after a failed assertion, which left
 * the server running. The watchdog is in no part of the test that such a kill reaches: a
 * session of its own, and not a descendant of the test (an orphan adopted by init). */
typedef struct test_engine_server {
    const char *script; /* e.g. "etcd-server.sh" */
    char dir[64];
    char url[256];
    int watch_fd; /* the test's end of the watchdog's socket pair: closed when the test ends */
} test_engine_server_t;

/* Starts one with script and reads its URL; NULL after a failed assertion. */
test_engine_server_t *test_engine_server_start(const char *script);

/* Stops it (whatever state the test left it in), removes its directory, frees s. NULL
 * accepted. */
void test_engine_server_stop(test_engine_server_t *s);

/* "<what>-<run>-<n>": names (namespaces, keys) unique to this run and call, since a fixture's
 * server outlives a test and serves several test programs. The run id is the process id mixed
 * with the wall clock, fixed on the first call (or test_engine_fixture_url). */
void test_engine_unique_name(char *buf, size_t cap, const char *what);

/* The run id itself (for file names and the like). */
unsigned test_engine_run(void);

/* CLOCK_MONOTONIC in milliseconds, and a pause, for polling loops bounded by a deadline. */
int64_t test_now_ms(void);
void test_pause_ms(int ms);

/* Poll f(arg) every 5 ms until it holds or ms have passed: whether it held. For state another
 * thread or process changes with nothing to wait on (a store's writer, a spool's count). */
bool test_wait_until(bool (*f)(void *), void *arg, int ms);

#endif
