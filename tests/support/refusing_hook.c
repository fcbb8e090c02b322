/* A config apply hook through which the runtime's services refuse a value (refusing_hook.h). */
#include "refusing_hook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <fdn/error.h>
#include <fdn/events.h>
#include <fdn/telemetry.h>

#define PATH    "interface.max_results"
#define REFUSED 4294967296LL /* one above the event store's cap */

/* When next holds h->value at PATH and path is PATH (an update of it) or NULL (a reset): a
 * copy of next with REFUSED there (*sub; NULL when out of memory, *rc FDN_ENOMEM). Otherwise
 * *sub is next. */
static const fdn_config_snapshot_t *
substitute(test_refusing_hook_t *h, const fdn_config_snapshot_t *next, const char *path, int *rc)
{
    int64_t v = 0;
    *rc = 0;
    if ((path != NULL && strcmp(path, PATH) != 0) ||
        fdn_config_snapshot_get_int(next, PATH, &v) != 0 || v != h->value)
        return next;
    int32_t idx = fdn__cfg_schema_find(next->schema, PATH, strlen(PATH));
    assert_true(idx >= 0);
    json_t *big = json_integer(REFUSED);
    snap_t *s = big != NULL ? fdn__cfg_snap_new(next->schema, next, NULL, idx, big) : NULL;
    json_decref(big);
    if (s == NULL)
        *rc = FDN_ENOMEM;
    return s;
}

static int wrap_apply(const fdn_config_snapshot_t *cur, const fdn_config_snapshot_t *next,
                      const char *path, void *user, fdn_error_t *err)
{
    test_refusing_hook_t *h = user;
    int rc;
    const fdn_config_snapshot_t *n = substitute(h, next, path, &rc);
    if (n == NULL)
        return fdn_err_set(err, rc, NULL);
    rc = h->rt.apply(cur, n, path, h->rt.user, err);
    if (n != next) {
        if (rc != 0)
            atomic_fetch_add(&h->applied_refusals, 1);
        fdn__cfg_snap_free((snap_t *)n);
    }
    return rc;
}

static int wrap_check(const fdn_config_snapshot_t *next, const char *path, void *user,
                      fdn_error_t *err)
{
    test_refusing_hook_t *h = user;
    atomic_fetch_add(&h->checks, 1);
    if (h->rt.check == NULL)
        return 0;
    int rc;
    const fdn_config_snapshot_t *n = substitute(h, next, path, &rc);
    if (n == NULL)
        return fdn_err_set(err, rc, NULL);
    rc = h->rt.check(n, path, h->rt.user, err);
    if (n != next) {
        if (rc != 0)
            atomic_fetch_add(&h->checked_refusals, 1);
        fdn__cfg_snap_free((snap_t *)n);
    }
    return rc;
}

static void wrap_published(void *user)
{
    test_refusing_hook_t *h = user;
    if (h->rt.published != NULL)
        h->rt.published(h->rt.user);
}

static void wrap_apply_failed(uint64_t revision, const fdn_error_t *why, void *user)
{
    test_refusing_hook_t *h = user;
    if (h->rt.apply_failed != NULL)
        h->rt.apply_failed(revision, why, h->rt.user);
}

static void wrap_refused(const char *path, const char *value_json, const fdn_error_t *why,
                         void *user)
{
    test_refusing_hook_t *h = user;
    if (h->rt.refused != NULL)
        h->rt.refused(path, value_json, why, h->rt.user);
}

void test_refusing_hook_install(test_refusing_hook_t *h, fdn_config_t *cfg, int64_t value)
{
    h->cfg = cfg;
    h->value = value;
    atomic_init(&h->applied_refusals, 0);
    atomic_init(&h->checked_refusals, 0);
    atomic_init(&h->checks, 0);
    fdn__cfg_apply_hook_t wrap = {.apply = wrap_apply,
                                  .published = wrap_published,
                                  .refused = wrap_refused,
                                  .check = wrap_check,
                                  .apply_failed = wrap_apply_failed,
                                  .user = h};
    fdn__config_swap_apply_hook(cfg, &wrap, &h->rt);
    assert_non_null(h->rt.apply);
}

void test_refusing_hook_remove(test_refusing_hook_t *h)
{
    fdn__config_set_apply_hook(h->cfg, &h->rt);
}

static int count_call(const char *event, const fdn_telemetry_measure_t *m, size_t nm,
                      const fdn_telemetry_meta_t *meta, size_t nmeta, void *user)
{
    (void)event, (void)m, (void)nm, (void)meta, (void)nmeta;
    atomic_fetch_add((atomic_int *)user, 1);
    return 0;
}

uint64_t test_refusals_counted(fdn_runtime_t *rt, atomic_int *refused)
{
    atomic_init(refused, 0);
    uint64_t h = 0;
    assert_int_equal(fdn_telemetry_attach(fdn_runtime_telemetry(rt), &h,
                                          "foundation.config.service_refused",
                                          FDN_TELEMETRY_MATCH_EXACT, count_call, refused),
                     0);
    return h;
}

size_t test_refusal_events(fdn_runtime_t *rt, bool newest_first, char *data, size_t cap)
{
    return test_events_of(rt, "config_update_refused", newest_first, data, cap);
}

size_t test_events_of(fdn_runtime_t *rt, const char *type, bool newest_first, char *data,
                      size_t cap)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.type = type;
    q.limit = 100;
    q.descending = newest_first;
    fdn_event_list_t *l = NULL;
    assert_int_equal(fdn_events_query(fdn_runtime_events(rt), &q, &l), 0);
    size_t n = fdn_event_list_count(l);
    data[0] = '\0';
    if (n > 0) {
        size_t len = 0;
        const char *d = fdn_event_data(fdn_event_list_at(l, 0), &len);
        snprintf(data, cap, "%.*s", (int)len, d);
    }
    fdn_event_list_free(l);
    return n;
}
