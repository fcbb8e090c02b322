/* The PostgreSQL fixture of the event store's engine tests (tests/engine/test_events_*_pg.c):
 * the URL of the ctest fixture "postgres" (scripts/pg-server.sh; its directory in
 * $FDN_TEST_PG_DIR), schema names unique to a run, a store on a schema, and the events the
 * tests store, which name their writer and sequence number in their data so that a reader can
 * check each writer's order and every event's content.
 *
 * Failures (no fixture, a store that cannot be opened) fail the running test through cmocka. */
#ifndef FDN_TEST_PG_FIXTURE_H
#define FDN_TEST_PG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fdn/clock.h>
#include <fdn/events.h>
#include <fdn/telemetry.h>

/* The fixture's URL, read by test_pg_setup (or test_pg_fixture_url). */
extern char test_pg_url[256];

/* Read $FDN_TEST_PG_DIR/url into test_pg_url (fails the test without it). */
void test_pg_fixture_url(void);

/* The same as a cmocka group setup: cmocka_run_group_tests(tests, test_pg_setup, NULL). */
int test_pg_setup(void **state);

/* "<what>_<run>_<n>": a PostgreSQL schema name ([a-z_][a-z0-9_]*) unique to this run and call
 * (the fixture's server serves every test program, run after run). what: lower case. */
void test_pg_schema_name(char *buf, size_t cap, const char *what);

/* The bound of each PostgreSQL call and connection of the stores test_pg_store_opts makes
 * (and of the engine tests' own connections): a minute, only to catch a hang (the backend's
 * default is 5 s). Tests that check positions, order and content do not check how long a
 * call takes, and a loaded machine running a sanitizer build can stall PostgreSQL or a
 * store's thread for seconds: a store whose call passes its bound fails (one loaded run of
 * test_events_store_pg did). The tests of the bound itself (the chaos and async files, on a
 * cluster they pause with SIGSTOP) set their own, and open their stores with
 * test_pg_store_open_short. */
#define TEST_PG_CALL_MS 60000

/* Options of a store on PostgreSQL at url (NULL: test_pg_url), on schema, polling every
 * 50 ms, with max_results 100000 (the tests read whole logs) and TEST_PG_CALL_MS as the bound
 * of its calls and connections; the caller may change more. */
void test_pg_store_opts(fdn_events_opts_t *o, const char *url, const char *schema);

/* fdn_events_create(o); fails the test, printing the message, when it fails. */
fdn_events_t *test_pg_store_open(const fdn_events_opts_t *o);

/* As test_pg_store_open, for a store whose calls have a short bound (o's command or connect
 * timeout: a test of what the bound does once PostgreSQL is stopped): the opening's own calls
 * on PostgreSQL, up, may pass that bound on a loaded machine running a sanitizer build, so a
 * failed create is tried again (a bounded poll, 60 s of wall time at most, as test_wait_until)
 * before the test fails. Not for a test of the opening itself. */
fdn_events_t *test_pg_store_open_short(const fdn_events_opts_t *o);

/* A store on the fixture's server with test_pg_store_opts's options. */
fdn_events_t *test_pg_store(const char *schema);

/* Two manual clocks for stores whose events are made elsewhere, on one wall time: `store`,
 * the stores' own (monotonic origin 1000 s), and `prod`, the producers' (origin 5 s: another
 * monotonic origin, as another process's). Free them with test_pg_clocks_destroy. */
typedef struct test_pg_clocks {
    fdn_clock_t *store;
    fdn_clock_t *prod;
} test_pg_clocks_t;
void test_pg_clocks_init(test_pg_clocks_t *c);
void test_pg_clocks_destroy(test_pg_clocks_t *c);

/* The order test_pg_two_stores opens its two stores in, around the history stored through the
 * first: both before it (each store's memory starts at the log's start and holds the
 * history), or the second after it (its memory starts at the head: the history is on
 * PostgreSQL only, older than its memory). */
typedef enum test_pg_order {
    TEST_PG_BOTH_THEN_HISTORY,
    TEST_PG_HISTORY_THEN_SECOND,
} test_pg_order_t;

/* Stores a history through the first store (test_pg_two_stores). */
typedef void (*test_pg_history_fn)(fdn_events_t *first, void *user);

/* Two stores with options o (so on one schema), *first and *second, opened in `order` around
 * history(first, user) (NULL: no history). */
void test_pg_two_stores(const fdn_events_opts_t *o, test_pg_order_t order,
                        test_pg_history_fn history, void *user, fdn_events_t **first,
                        fdn_events_t **second);

/* Event (w, s), writer w's s-th: data {"w":w,"s":s} (pad > 0: with "p", pad letters, after
 * them), parent id `parent`, type `type` (required) and correlation id `corr` (NULL: a fresh
 * UUID, as fdn_event_new draws). */
fdn_event_t *test_pg_event(const char *type, const char *corr, unsigned w, unsigned s, size_t pad,
                           uint64_t parent);

/* (w, s) of an event made by test_pg_event; false when its data is not one of them. */
bool test_pg_event_ws(const fdn_event_t *ev, unsigned *w, unsigned *s);

/* The events per writer of a multi-process test: $FDN_TEST_PG_EVENTS, a count in 1..1000000,
 * or def when it is not set. Anything else (empty, "abc", "12x", "0", "-5", past the range)
 * fails the running test with a message, rather than run a smaller or empty test. */
unsigned test_pg_events_env(unsigned def);

/* Send sig (SIGSTOP, SIGCONT) to a cluster of the test's own (scripts/pg-server.sh, its
 * directory dir): the postmaster and every process it started, so that no backend answers
 * while it is stopped. */
void test_pg_signal_cluster(const char *dir, int sig);

/* Calls of operation op ("query", "read", "append", ...) a store on PostgreSQL made so far, both
 * outcomes: the count of fdn_events_backend_request_duration_seconds{op} in tm, the
 * telemetry the store reports into (each call is observed when it ends). */
uint64_t test_pg_backend_calls(fdn_telemetry_t *tm, const char *op);

#endif
