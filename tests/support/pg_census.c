/* DESIGN: the census of a schema (see pg_census.h), read through the public query API by a
 * store of its own (test_events_each, in position order), on the calling thread only. */
#include "pg_census.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include <fdn/events.h>

#include "event_make.h"
#include "pg_fixture.h"

static void count_event(const fdn_event_t *ev, void *user)
{
    test_pg_census_t *c = user;
    uint64_t id = fdn_event_id(ev);
    assert_int_equal(id, c->n + 1); /* gap-free */
    unsigned w, s;
    assert_true(test_pg_event_ws(ev, &w, &s));
    assert_true(w < c->maxw && s < c->maxs);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->w = realloc(c->w, c->cap * sizeof *c->w);
        c->s = realloc(c->s, c->cap * sizeof *c->s);
        c->id = realloc(c->id, c->cap * sizeof *c->id);
        assert_non_null(c->w);
        assert_non_null(c->s);
        assert_non_null(c->id);
    }
    c->w[c->n] = w;
    c->s[c->n] = s;
    c->id[c->n] = id;
    c->n++;
    size_t k = (size_t)w * c->maxs + s;
    c->count[k]++;
    c->pos[k] = id;
}

test_pg_census_t *test_pg_census_take(const char *url, const char *schema, int64_t page,
                                      unsigned maxw, unsigned maxs)
{
    test_pg_census_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->maxw = maxw;
    c->maxs = maxs;
    c->count = calloc((size_t)maxw * maxs, sizeof *c->count);
    c->pos = calloc((size_t)maxw * maxs, sizeof *c->pos);
    assert_non_null(c->count);
    assert_non_null(c->pos);
    fdn_events_opts_t o;
    test_pg_store_opts(&o, url, schema);
    fdn_events_t *es = test_pg_store_open(&o);
    test_events_each(es, page, count_event, c);
    fdn_events_destroy(es);
    return c;
}

unsigned test_pg_census_count(const test_pg_census_t *c, unsigned w, unsigned s)
{
    assert_true(w < c->maxw && s < c->maxs);
    return c->count[(size_t)w * c->maxs + s];
}

uint64_t test_pg_census_pos(const test_pg_census_t *c, unsigned w, unsigned s)
{
    assert_true(w < c->maxw && s < c->maxs);
    return c->pos[(size_t)w * c->maxs + s];
}

void test_pg_census_free(test_pg_census_t *c)
{
    if (c == NULL)
        return;
    free(c->w);
    free(c->s);
    free(c->id);
    free(c->count);
    free(c->pos);
    free(c);
}
