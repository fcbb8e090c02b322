/*
 * DESIGN: admin endpoints of the event store (POST/GET/DELETE /v1/events...).
 * Threads: runs on the admin server's threads; calls only the store's thread-safe public API
 * (stores copy events; queries return owned lists). No locks, no state besides the store
 * pointer. Every input is checked here before it reaches the store: unknown body keys or
 * query parameters, wrong JSON types, non-decimal integers and unknown orders are refused
 * with 422 and change nothing. Times (since/until/before) are in the unit of the events'
 * "timestamp" field (int64 ns on the store's monotonic clock).
 * Appends (POST /v1/events, /v1/events/batch) answer later (FDN__HTTP_PENDING): they go
 * through fdn_events_store_async, whose callback, on the store's writer thread once the
 * group commit holding them is on disk (at once for a memory store; for a store on PostgreSQL
 * once it is committed there or spooled, its refusals included: stored_done), prepares the
 * 201 (or the error: 500 for a writer's I/O error, 503 when the store is busy or stopped) and
 * completes the request; the server thread never waits for the disk or PostgreSQL, and many
 * connections share one commit. A 201 still means the event is on disk in durable mode.
 * A 503's message says whose refusal it is (store_refused): the call's own on a store that
 * is stopped (shutdown or restart) says the store is stopping; the writer's on a store on
 * PostgreSQL says its PostgreSQL is unavailable (or its spool full). A read (GET, DELETE) that
 * the store refuses with FDN_EUNAVAILABLE answers 503 saying the store is stopped (or its
 * PostgreSQL away: read_refused), also when it stopped during the read.
 * The 201's body is reserved before the store (store_deferred): once events are stored, their
 * answer needs no allocation, so it is never an error the client would retry (storing them
 * twice).
 * An append's answer may be withdrawn by the server at its shutdown deadline (a commit held by a
 * hung PostgreSQL: fdn__http_defer_withdrawable, http.c "Withdrawn answers"): the client then
 * gets 503 saying the outcome is unknown, and the callback, which runs later all the same
 * (the store commits or spools the events), claims the answer first (fdn__http_claim) and
 * does nothing more when it was withdrawn.
 */
#include "admin/admin_int.h"
#include "admin/event_body.h"
#include "admin/event_json.h"
#include "admin/event_wait.h"
#include "admin/http_jw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>

/* the most events of one POST /v1/events/batch; more: 422 naming it (docs/http-api.md) */
#define BATCH_MAX 1000

/* Build one event from {"type","data","correlation_id"?,"parent_id"?}. */
static int event_from_body(json_t *o, fdn__http_resp_t *resp, fdn_event_t **out)
{
    *out = NULL;
    if (!json_is_object(o))
        return fdn_err_set(&resp->err, FDN_EINVAL, "an event must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "data") != 0 &&
            strcmp(key, "correlation_id") != 0 && strcmp(key, "parent_id") != 0)
            return fdn_err_set(&resp->err, FDN_EINVAL, "unknown event field '%s'", key);
    }
    json_t *type = json_object_get(o, "type");
    json_t *cid = json_object_get(o, "correlation_id");
    json_t *parent = json_object_get(o, "parent_id");
    json_t *data = json_object_get(o, "data");
    if (!json_is_string(type))
        return fdn_err_set(&resp->err, FDN_EVALIDATION, "field 'type' must be a string");
    /* null means absent, as GET /v1/events/{id} writes an event without them */
    if (json_is_null(cid))
        cid = NULL;
    if (json_is_null(parent))
        parent = NULL;
    if (cid != NULL && !json_is_string(cid))
        return fdn_err_set(&resp->err, FDN_EVALIDATION,
                           "field 'correlation_id' must be a string or null");
    if (parent != NULL && (!json_is_integer(parent) || json_integer_value(parent) < 0))
        return fdn_err_set(&resp->err, FDN_EVALIDATION,
                           "field 'parent_id' must be a non-negative integer or null");
    char *dump;
    size_t dump_len;
    if (fdn_json_dumps(data ? data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY, &dump,
                       &dump_len) != 0)
        return FDN_ENOMEM;
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = json_string_value(type);
    spec.data = dump;
    spec.data_len = dump_len;
    spec.content_type = FDN_EVENT_CT_JSON;
    spec.flags = FDN_EVENT_TRUSTED_JSON; /* jansson produced it */
    spec.correlation_id = cid ? json_string_value(cid) : NULL;
    if (cid != NULL) /* the request's exemplar, unless its header named one */
        fdn__http_set_correlation_id(resp, json_string_value(cid), json_string_length(cid));
    spec.parent_id = parent ? (uint64_t)json_integer_value(parent) : 0;
    int rc = fdn_event_new(out, &spec, &resp->err);
    fdn_free(dump);
    return rc;
}

/* A JSON answer already serialised (steals t->p). */
static int text_reply(fdn__http_resp_t *resp, unsigned status, fdn__admin_text_t *t)
{
    resp->text = t->p;
    resp->text_len = t->len;
    resp->content_type = "application/json";
    resp->status = status;
    t->p = NULL;
    return 0;
}

/* Room for the 201 of an append of n events (an id has at most 20 digits): sized for the
 * answer, the text's default 8 KiB took glibc's slow path, ~28 bytes come from its thread
 * cache. */
static size_t ids_cap(size_t n, bool batch)
{
    return (batch ? n * 21 + 40 : 0) + 32;
}

/* The 201 of an append, written on the server thread that sends it (resp->render): {"id":N}
 * for POST /v1/events, {"ids":[...],"count":n} for a batch (digits by hand: snprintf per id
 * was a tenth of the writer's time per batch when this ran there), into resp->text, which
 * store_deferred reserved (ids_cap) before the store: the answer of committed events never
 * waits on an allocation (a failed one answered 500, and the client stored them again). */
static int render_ids(fdn__http_resp_t *resp, bool batch)
{
    uint64_t first_id = resp->render_arg[0], n = resp->render_arg[1];
    size_t cap = ids_cap((size_t)n, batch);
    fdn__jw_t w = {{resp->text, 0, cap}, 0};
    resp->text = NULL;
    w.t.p[0] = '\0';
    if (!batch) {
        fdn__jw_raw(&w, "{\"id\":", 6);
        fdn__jw_u64(&w, first_id);
        fdn__jw_raw(&w, "}", 1);
    } else {
        fdn__jw_raw(&w, "{\"ids\":[", 8);
        for (uint64_t i = 0; i < n; i++) {
            if (i)
                fdn__jw_raw(&w, ",", 1);
            fdn__jw_u64(&w, first_id + i);
        }
        fdn__jw_raw(&w, "],\"count\":", 10);
        fdn__jw_u64(&w, n);
        fdn__jw_raw(&w, "}", 1);
    }
    /* w.rc is 0: every piece fits the reserved room, nothing grows */
    return text_reply(resp, 201, &w.t);
}

/* The 202 of an append the PostgreSQL spool took (fsynced, positions come later):
 * {"spooled":true,"count":n}, into the room store_deferred reserved, for the reason above. */
static int render_spooled(fdn__http_resp_t *resp)
{
    fdn__jw_t w = {{resp->text, 0, (size_t)resp->render_arg[0]}, 0};
    resp->text = NULL;
    w.t.p[0] = '\0';
    fdn__jw_raw(&w, "{\"spooled\":true,\"count\":", 24);
    fdn__jw_u64(&w, resp->render_arg[1]);
    fdn__jw_raw(&w, "}", 1);
    /* w.rc is 0: 24 bytes, the count's digits and the brace fit the room of its ids */
    return text_reply(resp, 202, &w.t);
}

static int render_post(fdn__http_resp_t *resp)
{
    return render_ids(resp, false);
}

static int render_batch(fdn__http_resp_t *resp)
{
    return render_ids(resp, true);
}

/* The store's answer to an append, on the writer thread (or the handler's, when the store
 * acknowledged at once): prepare the answer and complete the request. A 201's body is
 * written later by the server thread (render_ids): this thread only records the ids. */
static int store_refused(fdn_events_t *es, fdn__http_resp_t *resp, int rc, bool by_call);

static void stored_done(int rc, uint64_t first_id, size_t n, bool batch, fdn__http_async_t *t)
{
    /* the answer is this callback's unless the server withdrew it at its shutdown deadline
     * (503 already sent, the request gone: the events are stored all the same) */
    fdn__http_resp_t *resp = fdn__http_claim(t);
    if (resp == NULL)
        return;
    fdn_events_t *es = (fdn_events_t *)(uintptr_t)resp->render_arg[0]; /* store_deferred's */
    fdn_events_backend_status_t bs;
    if (rc != 0 && fdn_events_backend_status(es, &bs) == 0 &&
        bs.backend == FDN_EVENTS_BACKEND_POSTGRES) {
        /* a store on PostgreSQL reports every outcome here, its refusals too: answered as
         * when the call itself refused (store_refused), but by the writer */
        fdn__http_complete(resp, store_refused(es, resp, rc, false));
        return;
    }
    if (rc == 0 && first_id == 0) {
        /* PostgreSQL away: the batch is in the local spool (fsynced), positions come later */
        resp->render = render_spooled;
        resp->render_arg[0] = ids_cap(n, batch); /* the room reserved */
        resp->render_arg[1] = n;
    } else if (rc == 0) {
        resp->render = batch ? render_batch : render_post;
        resp->render_arg[0] = first_id;
        resp->render_arg[1] = n;
    } else {
        /* FDN_EIO: the commit failed, or its outcome is unknown (a COMMIT can report an
         * error after it reached the file: include/fdn/events.h) */
        fdn_err_set(&resp->err, rc,
                    "the %s not acknowledged as durable (it may still be stored): %s",
                    batch ? "batch was" : "event was", fdn_strerror(rc));
    }
    fdn__http_complete(resp, rc);
}

static void post_done(int rc, uint64_t first_id, size_t n, void *user)
{
    stored_done(rc, first_id, n, false, user);
}

static void batch_done(int rc, uint64_t first_id, size_t n, void *user)
{
    stored_done(rc, first_id, n, true, user);
}

/* A store refused by the cap on distinct types (FDN_ENOSPC): 503, naming the cap. */
static int store_error(fdn_events_t *es, fdn__http_resp_t *resp, int rc)
{
    fdn_events_types_status_t st;
    if (rc != FDN_ENOSPC || fdn_events_types_status(es, &st) != 0)
        return rc;
    rc = fdn_err_set(&resp->err, FDN_ENOSPC,
                     "event store: %llu distinct event types held, the cap storage.hot.max_types "
                     "is %llu; a new type is refused until the last events of older types are "
                     "pruned",
                     (unsigned long long)st.live, (unsigned long long)st.max_types);
    fdn_err_add_context(&resp->err, "max_types", "%llu", (unsigned long long)st.max_types);
    return rc;
}

/* The answer of an append the server withdrew at its shutdown deadline while the store's
 * writer still held it (a hung PostgreSQL): 503, the outcome unknown (http.c, DESIGN
 * "Withdrawn answers"; docs/http-api.md). */
#define WITHDRAWN_ONE                                                                              \
    "the server stopped before the event's commit was confirmed: the outcome is unknown (the "     \
    "event may still be stored); look it up by its correlation_id before posting it again"
#define WITHDRAWN_BATCH                                                                            \
    "the server stopped before the batch's commit was confirmed: the outcome is unknown (the "     \
    "events may still be stored, all or none); look them up by their correlation_id before "       \
    "posting them again"

/* Start an asynchronous append answered by done; returns FDN__HTTP_PENDING or an error to
 * answer now (the callback then never runs). The 201's body is reserved first, in resp->text
 * (render_ids writes it there; an answer that does not use it frees it with resp): out of
 * memory then answers 500 with nothing stored. On the server thread that later sends and frees
 * it, as render_ids was (see fdn__http_resp_t.render). */
static int store_deferred(fdn_events_t *es, const fdn_event_t *const *evs, size_t n, bool batch,
                          fdn__http_resp_t *resp, fdn_events_stored_cb done)
{
    fdn__http_async_t *t = NULL;
    int rc = fdn__http_defer_withdrawable(resp, batch ? WITHDRAWN_BATCH : WITHDRAWN_ONE, &t);
    if (rc < 0)
        return rc;
    fdn__http_resp_text_free(resp);
    resp->text = fdn_malloc(ids_cap(n, batch));
    if (resp->text == NULL)
        return FDN_ENOMEM;
    resp->render_arg[0] = (uint64_t)(uintptr_t)es; /* for the callback (stored_done) */
    rc = fdn_events_store_async(es, evs, n, NULL, done, t);
    rc = store_refused(es, resp, rc, true);
    return rc < 0 ? rc : FDN__HTTP_PENDING;
}

/* The answer to a store's refusal rc, returned by fdn_events_store_async (by_call) or given
 * to the callback of a store on PostgreSQL by its writer: resp->err and Retry-After for the
 * refusals that have one (busy, the type cap, PostgreSQL away, the store stopping); returns
 * rc. */
static int store_refused(fdn_events_t *es, fdn__http_resp_t *resp, int rc, bool by_call)
{
    if (rc == FDN_EBUSY) {
        resp->retry_after_s = 1;
        return fdn_err_set(&resp->err, rc, "too many events wait for their commit; retry later");
    }
    if (rc == FDN_ENOSPC)
        return store_error(es, resp, rc);
    fdn_events_backend_status_t bs;
    if (rc == FDN_EUNAVAILABLE && fdn_events_backend_status(es, &bs) == 0 &&
        bs.backend == FDN_EVENTS_BACKEND_POSTGRES) {
        /* 503, retry when the breaker lets a call through again (1 s when it is closed) */
        int64_t ms = bs.retry_after_ms > 0 ? bs.retry_after_ms : 1000;
        resp->retry_after_s = (ms + 999) / 1000;
        /* the call itself refuses a store on PostgreSQL only while the store is stopped
         * (include/fdn/events.h): a shutdown, or a restart by its supervisor; PostgreSQL was
         * not asked and may be fine */
        if (by_call)
            return fdn_err_set(&resp->err, rc,
                               "the event store is stopping (shut down or restarting); nothing "
                               "was stored; retry later");
        /* the writer's: PostgreSQL away (no spool, or the spool full) */
        return fdn_err_set(&resp->err, rc,
                           "the event store's PostgreSQL is unavailable%s; retry later",
                           bs.spool_max_bytes > 0 ? " and its spool is full" : "");
    }
    return rc;
}

/* The answer to a read's refusal rc (get, query, prune), returned by the store: resp->err and
 * Retry-After for FDN_EUNAVAILABLE, which says the store is stopped (a shutdown, or a restart
 * by its supervisor; also when it stopped during the read: a read of its file then fails, it
 * never answers without the file's part), or on PostgreSQL that PostgreSQL is away; returns
 * rc. */
static int read_refused(fdn_events_t *es, fdn__http_resp_t *resp, int rc)
{
    if (rc != FDN_EUNAVAILABLE)
        return rc;
    resp->retry_after_s = 1;
    fdn_events_backend_status_t bs;
    if (fdn_events_backend_status(es, &bs) == 0 && bs.backend == FDN_EVENTS_BACKEND_POSTGRES &&
        (!bs.up || bs.breaker_state != FDN_BREAKER_CLOSED)) {
        if (bs.retry_after_ms > 0)
            resp->retry_after_s = (bs.retry_after_ms + 999) / 1000;
        return fdn_err_set(&resp->err, rc,
                           "the event store's PostgreSQL is unavailable; retry later");
    }
    return fdn_err_set(&resp->err, rc,
                       "the event store is stopped (shut down or restarting); retry later");
}

/* Free evs[0..n) and the array (NULL: nothing). */
static void free_events(fdn_event_t **evs, size_t n)
{
    for (size_t i = 0; evs != NULL && i < n; i++)
        fdn_event_free(evs[i]);
    fdn_free(evs);
}

/* The events of a body of the common form (admin/event_body.c), built without jansson: n >= 1
 * events in *out (free each and the array), or 0: take the jansson path, which also gives
 * every error answer (a refusal of fdn_event_new here is reproduced there). */
static size_t fast_events(const fdn__http_req_t *req, fdn__http_resp_t *resp, bool batch,
                          fdn_event_t ***out)
{
    *out = NULL;
    /* the smallest event, {"type":""}, takes 11 bytes */
    size_t max = batch ? req->body_len / 11 + 1 : 1;
    if (max > BATCH_MAX)
        max = BATCH_MAX;
    fdn__evb_item_t *it = fdn_malloc(max * sizeof *it);
    /* the compact data and the strings take at most the body again, plus "null" and NULs:
     * sized once (the text grows if that were ever short) */
    fdn__admin_text_t t = {NULL, 0, 2 * req->body_len + 64};
    t.p = it != NULL ? fdn_malloc(t.cap) : NULL;
    if (t.p == NULL) {
        fdn_free(it);
        return 0;
    }
    t.p[0] = '\0';
    int n = fdn__evb_parse(req->body, req->body_len, batch, max, it, &t);
    fdn_event_t **evs = n > 0 ? fdn_calloc((size_t)n, sizeof *evs) : NULL;
    int i = 0;
    for (; evs != NULL && i < n; i++) {
        fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
        spec.type = t.p + it[i].type;
        spec.data = t.p + it[i].data;
        spec.data_len = it[i].data_len;
        spec.content_type = FDN_EVENT_CT_JSON;
        spec.flags = FDN_EVENT_TRUSTED_JSON; /* the compact form of checked JSON */
        spec.correlation_id = it[i].cid != SIZE_MAX ? t.p + it[i].cid : NULL;
        spec.parent_id = it[i].parent_id;
        fdn_error_t err = FDN_ERROR_INIT;
        if (fdn_event_new(&evs[i], &spec, &err) < 0)
            break;
    }
    if (evs != NULL && i == n) {
        for (int k = 0; k < n; k++)
            if (it[k].cid != SIZE_MAX) { /* the request's exemplar, as on the jansson path */
                fdn__http_set_correlation_id(resp, t.p + it[k].cid, it[k].cid_len);
                break;
            }
        *out = evs;
    } else {
        free_events(evs, (size_t)i);
        n = 0;
    }
    fdn_free(it);
    fdn_free(t.p);
    return n > 0 ? (size_t)n : 0;
}

static int h_post(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_events_t *es = user;
    fdn_event_t **fast = NULL;
    if (fast_events(req, resp, false, &fast) == 1) {
        int frc = store_deferred(es, (const fdn_event_t *const *)fast, 1, false, resp, post_done);
        free_events(fast, 1); /* the store copied it */
        return frc;
    }
    json_t *body = NULL;
    int rc = fdn__http_body_json(req, resp, &body);
    if (rc < 0)
        return rc;
    fdn_event_t *ev = NULL;
    rc = event_from_body(body, resp, &ev);
    json_decref(body);
    if (rc < 0)
        return rc;
    rc = store_deferred(es, (const fdn_event_t *const *)&ev, 1, false, resp, post_done);
    fdn_event_free(ev); /* the store copied it */
    return rc;
}

static int h_batch(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_events_t *es = user;
    fdn_event_t **fast = NULL;
    size_t nf = fast_events(req, resp, true, &fast);
    if (nf > 0) {
        /* resp belongs to the completion from here when this returns FDN__HTTP_PENDING */
        int frc = store_deferred(es, (const fdn_event_t *const *)fast, nf, true, resp, batch_done);
        free_events(fast, nf); /* the store copied them */
        return frc;
    }
    json_t *body = NULL;
    int rc = fdn__http_body_json(req, resp, &body);
    if (rc < 0)
        return rc;
    json_t *arr = json_is_object(body) ? json_object_get(body, "events") : body;
    if (json_is_object(body) && json_object_size(body) != 1)
        arr = NULL;
    if (!json_is_array(arr)) {
        json_decref(body);
        return fdn_err_set(&resp->err, FDN_EINVAL,
                           "body must be {\"events\":[...]} or an array of events");
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        json_decref(body);
        return fdn_err_set(&resp->err, FDN_EINVAL, "a batch holds 1..%d events (got none)",
                           BATCH_MAX);
    }
    if (n > BATCH_MAX) {
        /* a count out of range, as an empty batch (422): not a body over max_body (413) */
        json_decref(body);
        rc = fdn_err_set(&resp->err, FDN_EINVAL, "a batch holds 1..%d events (got %zu)", BATCH_MAX,
                         n);
        fdn_err_add_context(&resp->err, "max_events", "%d", BATCH_MAX);
        return rc;
    }
    fdn_event_t **evs = fdn_calloc(n ? n : 1, sizeof *evs);
    if (evs == NULL) {
        rc = FDN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = event_from_body(json_array_get(arr, i), resp, &evs[i]);
        if (rc < 0) {
            char m[FDN_ERR_MSG_MAX];
            snprintf(m, sizeof m, "%s", resp->err.message);
            fdn_err_set(&resp->err, rc, "events[%zu]: %s", i, m);
            goto out;
        }
    }
    /* resp belongs to the completion from here when this returns FDN__HTTP_PENDING */
    rc = store_deferred(es, (const fdn_event_t *const *)evs, n, true, resp, batch_done);
out:
    free_events(evs, n);
    json_decref(body);
    return rc;
}

static int h_get(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_events_t *es = user;
    uint64_t id;
    const char *s = fdn__http_param(req, "id");
    if (fdn__http_parse_u64(s, UINT64_MAX, &id) != 0 || id == 0)
        return fdn_err_set(&resp->err, FDN_EINVAL, "event id must be a positive integer");
    fdn_event_t *ev = NULL;
    int rc = fdn_events_get(es, id, &ev);
    if (rc == FDN_ENOENT)
        return fdn_err_set(&resp->err, rc, "no event with id %llu", (unsigned long long)id);
    if (rc < 0)
        return read_refused(es, resp, rc);
    fdn__jw_t w = {{NULL, 0, 0}, 0}; /* fdn_event_to_json's bytes (admin/event_json.c) */
    fdn__admin_event_json(&w, ev);
    fdn_event_free(ev);
    if (w.rc != 0) {
        fdn_free(w.t.p);
        return w.rc;
    }
    return text_reply(resp, 200, &w.t);
}

/* The integer value v of query parameter key: 1 when absent (v NULL), 0, or an error. */
static int q_i64v(fdn__http_resp_t *resp, const char *key, const char *v, int64_t min, int64_t max,
                  int64_t *out)
{
    if (v == NULL)
        return 1;
    if (fdn__http_parse_i64(v, min, max, out) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL,
                           "query parameter '%s' must be an integer in "
                           "[%lld, %lld]",
                           key, (long long)min, (long long)max);
    return 0;
}

static int q_i64(const fdn__http_req_t *req, fdn__http_resp_t *resp, const char *key, int64_t min,
                 int64_t max, int64_t *out)
{
    return q_i64v(resp, key, fdn__http_query_get(req->target, key), min, max, out);
}

/* the query parameters of GET and DELETE /v1/events (others: 422, by the dispatcher) */
enum { QP_TYPE, QP_CID, QP_SINCE, QP_UNTIL, QP_AFTER, QP_LIMIT, QP_ORDER, QP_WAIT, QP_N };
static const char *const QUERY_PARAMS[] = {
    "type", "correlation_id", "since", "until", "after_id", "limit", "order", "wait_ms", NULL};

/* GET /v1/events's state: the store and its waiting queries (freed with the server). */
typedef struct evapi {
    fdn_events_t *es;
    fdn__evwait_t *wait;
} evapi_t;

static void evapi_drain(void *user)
{
    fdn__evwait_drain(((evapi_t *)user)->wait);
}

static void evapi_free(void *user)
{
    evapi_t *api = user;
    fdn__evwait_free(api->wait);
    fdn_free(api);
}

size_t fdn__admin_events_waiting(const fdn_admin_t *a)
{
    const evapi_t *api = fdn__admin_events_api(a);
    return api != NULL ? fdn__evwait_count(api->wait) : 0;
}

void fdn__admin_events_wait_max(fdn_admin_t *a, size_t max)
{
    evapi_t *api = fdn__admin_route_user(a, "GET", "/v1/events");
    if (api != NULL)
        fdn__evwait_set_max(api->wait, max);
}

void fdn__admin_events_wait_clock(fdn_admin_t *a, fdn_clock_t *clock)
{
    evapi_t *api = fdn__admin_route_user(a, "GET", "/v1/events");
    if (api != NULL)
        fdn__evwait_set_clock(api->wait, clock);
}

void fdn__admin_events_wait_tick(fdn_admin_t *a)
{
    const evapi_t *api = fdn__admin_events_api(a);
    if (api != NULL)
        fdn__evwait_tick(api->wait);
}

/* GET /v1/events?after_id=N&wait_ms=M: q (run once, nothing found) waits for its first
 * matching event, at most M ms (admin/event_wait.c); q's result answers it then. */
static int query_wait(evapi_t *api, const fdn_events_query_t *q, int64_t wait_ms,
                      fdn__http_resp_t *resp)
{
    /* the store had every id below next_id before the query (on PostgreSQL: committed, as
     * memory holds positions only after their commit), so an empty result says none of them
     * matches after the cursor: the waiter's answer may start there (event_wait.c) */
    fdn_events_stats_t st;
    uint64_t known = q->after_id;
    if (fdn_events_stats(api->es, &st) == 0 && st.next_id > 0 && st.next_id - 1 > known)
        known = st.next_id - 1;
    fdn_event_list_t *l = NULL;
    int rc = fdn_events_query(api->es, q, &l);
    if (rc < 0)
        return read_refused(api->es, resp, rc);
    if (fdn_event_list_count(l) == 0) {
        rc = fdn__evwait_add(api->wait, q, known, wait_ms, resp);
        if (rc != FDN__EVWAIT_NOW) { /* waiting (resp is the waiter's now), or an error */
            fdn_event_list_free(l);
            return rc;
        }
        /* the server is stopping: the empty result now */
    }
    rc = fdn__admin_events_answer(&l, resp);
    if (rc < 0)
        fdn_event_list_free(l);
    return rc;
}
static const char *const DELETE_PARAMS[] = {"before", NULL};

static int h_query(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    evapi_t *api = user;
    fdn_events_t *es = api->es;
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    /* each parameter's value in one pass over the pairs (the dispatcher refused any other
     * key, the parser a repeated one) */
    const char *qv[QP_N] = {NULL};
    const fdn__http_target_t *t = req->target;
    for (size_t i = 0; i < t->nquery; i++)
        for (size_t k = 0; k < QP_N; k++)
            if (strcmp(t->query[i].key, QUERY_PARAMS[k]) == 0) {
                qv[k] = t->query[i].val;
                break;
            }
    const char *type = qv[QP_TYPE];
    const char *cid = qv[QP_CID];
    if (type != NULL && fdn__http_check_string(type, FDN_EVENT_TYPE_MAX) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL, "query parameter 'type' is not a type name");
    if (cid != NULL && fdn__http_check_string(cid, FDN_EVENT_CORR_MAX) != 0)
        return fdn_err_set(&resp->err, FDN_EINVAL,
                           "query parameter 'correlation_id' is not a correlation id");
    /* stored types and correlation ids are JSON strings, so UTF-8: other bytes are a bad
     * value (422) as elsewhere, not a filter that matches nothing */
    if (type != NULL && !fdn__jw_utf8_valid(type))
        return fdn_err_set(&resp->err, FDN_EINVAL, "query parameter 'type' is not UTF-8");
    if (cid != NULL && !fdn__jw_utf8_valid(cid))
        return fdn_err_set(&resp->err, FDN_EINVAL, "query parameter 'correlation_id' is not UTF-8");
    q.type = type;
    q.correlation_id = cid;
    int64_t v;
    int rc;
    if ((rc = q_i64v(resp, "since", qv[QP_SINCE], INT64_MIN, INT64_MAX, &v)) < 0)
        return rc;
    if (rc == 0)
        q.time_start = v;
    if ((rc = q_i64v(resp, "until", qv[QP_UNTIL], INT64_MIN, INT64_MAX, &v)) < 0)
        return rc;
    if (rc == 0)
        q.time_end = v;
    if ((rc = q_i64v(resp, "after_id", qv[QP_AFTER], 0, INT64_MAX, &v)) < 0)
        return rc;
    if (rc == 0)
        q.after_id = (uint64_t)v;
    if ((rc = q_i64v(resp, "limit", qv[QP_LIMIT], 1, 1000000, &v)) < 0)
        return rc;
    if (rc == 0)
        q.limit = v;
    const char *order = qv[QP_ORDER];
    if (order != NULL) {
        int desc;
        if (fdn__http_parse_order(order, &desc) != 0)
            return fdn_err_set(&resp->err, FDN_EINVAL,
                               "query parameter 'order' must be 'asc' or 'desc'");
        q.descending = desc != 0;
    }
    if (q.time_start > q.time_end)
        return fdn_err_set(&resp->err, FDN_EINVAL, "'since' is after 'until'");
    if ((rc = q_i64v(resp, "wait_ms", qv[QP_WAIT], 0, FDN__EVWAIT_MAX_MS, &v)) < 0)
        return rc;
    if (rc == 0 && v > 0) {
        if (qv[QP_AFTER] == NULL)
            return fdn_err_set(&resp->err, FDN_EINVAL,
                               "query parameter 'wait_ms' needs 'after_id': a query waits for "
                               "the events after a cursor");
        if (q.descending)
            return fdn_err_set(&resp->err, FDN_EINVAL,
                               "query parameter 'wait_ms' needs order 'asc' (the default)");
        if (qv[QP_SINCE] != NULL || qv[QP_UNTIL] != NULL)
            return fdn_err_set(&resp->err, FDN_EINVAL,
                               "query parameter 'wait_ms' cannot be combined with 'since' or "
                               "'until'");
        return query_wait(api, &q, v, resp);
    }
    /* {"events":[...],"count":n}: each event's JSON as fdn_event_to_json writes it, the bytes
     * jansson's compact encoding would give after parsing it again; written in one pass
     * (admin/event_json.c: the jansson tree per event was four fifths of this answer), or
     * the thread's memo's when a recent answer listed equal events (compared by the store,
     * without copying them: fdn_events_query_same) */
    return read_refused(es, resp, fdn__admin_events_query(es, &q, resp));
}

static int h_delete(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    fdn_events_t *es = user;
    int64_t ts;
    int rc = q_i64(req, resp, "before", INT64_MIN, INT64_MAX, &ts);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return fdn_err_set(&resp->err, FDN_EINVAL, "query parameter 'before' is required");
    if ((rc = fdn__http_body_none(req, resp)) < 0)
        return rc;
    uint64_t removed = 0;
    rc = fdn_events_prune_before(es, ts, &removed);
    if (rc < 0)
        return read_refused(es, resp, rc);
    return fdn__http_reply(resp, 200, json_pack("{s:I}", "removed", (json_int_t)removed));
}

/* The statistics of every type held (at most storage.hot.max_types, default 10000; unbounded
 * when that cap is 0, as the store's memory is): the first TYPES_ON_STACK on the stack, more
 * in a heap array sized from the count, again if types were added in between. *out is stack
 * or an array to fdn_free. */
#define TYPES_ON_STACK 64
static int all_type_stats(fdn_events_t *es, fdn_events_type_stat_t *stack,
                          fdn_events_type_stat_t **out, size_t *n)
{
    fdn_events_type_stat_t *ts = stack;
    size_t cap = TYPES_ON_STACK;
    for (;;) {
        int rc = fdn_events_type_stats(es, ts, cap, n);
        if (rc < 0 || *n <= cap) {
            if (rc < 0 && ts != stack)
                fdn_free(ts);
            *out = rc < 0 ? NULL : ts;
            return rc;
        }
        if (ts != stack)
            fdn_free(ts);
        cap = *n + *n / 4; /* room for the types added before the next call */
        ts = cap <= SIZE_MAX / sizeof *ts ? fdn_malloc(cap * sizeof *ts) : NULL;
        if (ts == NULL)
            return FDN_ENOMEM;
    }
}

static int h_stats(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    fdn_events_t *es = user;
    fdn_events_stats_t s;
    int rc = fdn_events_stats(es, &s);
    if (rc < 0)
        return rc;
    fdn_events_type_stat_t stack[TYPES_ON_STACK], *ts = NULL;
    size_t nt = 0;
    rc = all_type_stats(es, stack, &ts, &nt);
    if (rc < 0)
        return rc;
    json_t *types = json_object();
    for (size_t i = 0; types != NULL && i < nt; i++)
        json_object_set_new(types, ts[i].type,
                            json_pack("{s:I, s:I}", "count", (json_int_t)ts[i].count, "bytes",
                                      (json_int_t)ts[i].bytes));
    if (ts != stack)
        fdn_free(ts);
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*}", "count",
        (json_int_t)s.count, "bytes", (json_int_t)s.bytes, "bytes_allocated",
        (json_int_t)s.bytes_allocated, "oldest_id", (json_int_t)s.oldest_id, "newest_id",
        (json_int_t)s.newest_id, "oldest_ts", (json_int_t)s.oldest_ts, "newest_ts",
        (json_int_t)s.newest_ts, "next_id", (json_int_t)s.next_id, "events_stored",
        (json_int_t)s.events_stored, "events_pruned", (json_int_t)s.events_pruned, "types_seen",
        (json_int_t)s.types, "durable_pending", (json_int_t)s.durable_pending,
        "durable_committed_id", (json_int_t)s.durable_committed_id, "uptime_ms",
        (json_int_t)(s.uptime_ns / 1000000), "types", types);
    return fdn__http_reply(resp, 200, j);
}

/* GET /health: "events_backend" (a store on PostgreSQL only) is unhealthy while its last
 * call on PostgreSQL failed or the breaker events.postgres is not closed (stores then fail
 * with 503, or go to the spool), and while the last replay of its spool failed, with that
 * replay's error (PostgreSQL away again; a batch no replay can take that the quarantine could
 * not take either stops the spool from draining). Otherwise it is degraded while the spool's
 * quarantine holds batches (the store works; an operator should look at them), with the error
 * that made the newest one unreplayable. */
static int backend_health(void *user, int *degraded)
{
    fdn_events_backend_status_t st;
    int rc = fdn_events_backend_status(user, &st);
    if (rc != 0)
        return rc;
    if (!st.up || st.breaker_state != FDN_BREAKER_CLOSED)
        return FDN_EUNAVAILABLE;
    if (st.spool_replay_error != 0)
        return st.spool_replay_error;
    if (st.spool_quarantined_batches > 0)
        *degraded = st.spool_quarantine_error < 0 ? st.spool_quarantine_error : FDN_ECORRUPT;
    return 0;
}

int fdn_admin_mount_events(fdn_admin_t *a, fdn_events_t *es)
{
    if (a == NULL || es == NULL)
        return FDN_EINVAL;
    fdn__admin_mark_t m;
    fdn__admin_mark(a, &m);
    evapi_t *api = fdn_calloc(1, sizeof *api);
    if (api == NULL)
        return FDN_ENOMEM;
    api->es = es;
    int rc = fdn__evwait_create(&api->wait, es);
    if (rc == 0)
        rc = fdn__admin_add_stop(a, evapi_drain, evapi_free, api);
    if (rc < 0) {
        fdn__evwait_free(api->wait);
        fdn_free(api);
        return rc;
    }
    /* from here a rollback frees api */
    if ((rc = fdn__admin_route_add(a, "POST", "/v1/events", h_post, es)) < 0 ||
        (rc = fdn__admin_route_add(a, "POST", "/v1/events/batch", h_batch, es)) < 0 ||
        (rc = fdn__admin_route_add(a, "GET", "/v1/events/stats", h_stats, es)) < 0 ||
        (rc = fdn__admin_route_add(a, "GET", "/v1/events/{id}", h_get, es)) < 0 ||
        (rc = fdn__admin_route_add_q(a, "GET", "/v1/events", h_query, api, QUERY_PARAMS)) < 0 ||
        (rc = fdn__admin_route_add_q(a, "DELETE", "/v1/events", h_delete, es, DELETE_PARAMS)) < 0)
        return fdn__admin_rollback(a, &m, rc);
    fdn_events_backend_status_t bs;
    if (fdn_events_backend_status(es, &bs) == 0 && bs.backend == FDN_EVENTS_BACKEND_POSTGRES &&
        (rc = fdn__admin_add_health_deg(a, "events_backend", backend_health, es)) < 0)
        return fdn__admin_rollback(a, &m, rc);
    return 0;
}
