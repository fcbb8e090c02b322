/* What PostgreSQL holds for a schema, as the event store's engine tests check it after the
 * fact (tests/engine/test_events_chaos_pg.c, test_events_async_pg.c,
 * test_events_spool_bound_pg.c): every event of the schema, read from PostgreSQL by a fresh
 * store, each one made by test_pg_event (pg_fixture.h) and so naming its writer w and
 * sequence number s.
 *
 * Taking it asserts what every such check needs: the positions are 1..n, gap-free, in order;
 * every event's data names its (w, s), with w < maxw and s < maxs. The census then answers, in
 * position order, which (w, s) each position holds (w[i], s[i], id[i]) and, for each (w, s),
 * how often it is stored and where (test_pg_census_count, test_pg_census_pos).
 *
 * Failures fail the running test through cmocka. */
#ifndef FDN_TEST_PG_CENSUS_H
#define FDN_TEST_PG_CENSUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct test_pg_census {
    size_t n;            /* events, in position order */
    unsigned *w, *s;     /* event i is (w[i], s[i]) */
    uint64_t *id;        /* at position id[i], which is i + 1 (asserted) */
    unsigned maxw, maxs; /* the bounds of w and s (asserted) */
    size_t cap;          /* room of w, s, id */
    unsigned *count;     /* [w * maxs + s]: how often (w, s) is stored */
    uint64_t *pos;       /* [w * maxs + s]: where (the last time) */
} test_pg_census_t;

/* The census of schema on the server at url (NULL: the fixture's, test_pg_url), read by a
 * fresh store (test_pg_store_opts: its calls bounded by TEST_PG_CALL_MS) with queries of page
 * events each (small for large events: a page is held in memory). Free it with
 * test_pg_census_free. */
test_pg_census_t *test_pg_census_take(const char *url, const char *schema, int64_t page,
                                      unsigned maxw, unsigned maxs);

/* How often (w, s) is stored (w < maxw, s < maxs, asserted). */
unsigned test_pg_census_count(const test_pg_census_t *c, unsigned w, unsigned s);

/* The position of (w, s) (its last, when stored more than once; 0 when not stored). */
uint64_t test_pg_census_pos(const test_pg_census_t *c, unsigned w, unsigned s);

/* NULL does nothing. */
void test_pg_census_free(test_pg_census_t *c);

#endif
