/*
 * DESIGN: subscriptions of the event store: the delivery thread, fd subscriptions, the pagers
 * of from-position subscriptions, and the marks the append path sets (the rest of the service
 * is in event_service.c).
 *
 * The delivery thread (started with the first subscription, stopped with the store's other
 * threads) waits on scv for new events some subscription matches (dmark; any new event while
 * one without a filter exists), then for each subscriber with events of its filter waiting
 * copies the next ones out (plock read, no lock held afterwards) and runs the callback with no
 * store lock held; fd subscribers get an eventfd write instead. The append path marks the
 * subscriptions each batch matches (see "Subscriptions and the append path" below), so a
 * filtered subscription costs nothing for other events. Writers only signal scv when a
 * subscription is concerned and the thread waits (dwaiting, announced before its last look at
 * dmark and published).
 * An fd subscriber's read that meets the store stopped (a write-behind store's file closed)
 * fails and keeps its position; its descriptor turns readable again when the delivery thread
 * runs (sub_rearm).
 * Locks: smu is a leaf, but the delivery thread and pagers take plock (read) with no other
 * lock held. Subscribe and unsubscribe take amu (the append path's set of subscriptions) and
 * smu one after the other, never both.
 */
#include <fdn/events.h>

#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/sync.h"
#include "core/tsan.h"
#include "services/event_store_int.h"

struct fdn_events_sub {
    fdn_events_t *es;
    evs_sub_t *next;  /* smu: es->subs */
    evs_sub_t *fnext; /* amu: es->fsubs (filtered subscriptions) */
    fdn_events_sub_cb cb;
    void *user;
    int efd;
    _Atomic uint64_t cursor; /* last id examined */
    char **types;            /* type filter: any of these (ntypes 0: any type) */
    size_t *tlens;
    size_t ntypes;
    char *corr;
    size_t corr_len;
    bool filtered;   /* a type or correlation filter */
    bool registered; /* amu: in the append path's set (sub_register) */
    /* Written by the append path (amu), for filtered subscriptions: mark is the last id of
     * the newest batch holding an event the subscription matches (at first the published id
     * when it registered); since is a matching event appended when the subscription had
     * examined every earlier one (0: none): no event of its filter lies between its cursor
     * and since. Read by the cursor's owner and the delivery thread. */
    _Atomic uint64_t mark;
    _Atomic uint64_t since;
    uint64_t poked; /* smu: the id an fd subscriber's descriptor was last made readable for */
    _Atomic uint64_t overflow;
    uint64_t pending_skip; /* delivery thread (callback subscriptions) */
    bool from_pos;         /* from_position: never skip for backlog; catch up from the backend */
    uint64_t round;        /* smu: delivery round this subscriber was last served in */
    bool paging;           /* smu: its pager thread catches it up (the delivery thread skips it) */
    _Atomic bool pstop;    /* its pager must stop (unsubscribe, destroy) */
};

/* How long a pager or the delivery thread waits before it asks a backend that was away
 * again (or until the stop). */
#define BACKEND_RETRY_MS 100

/* Most types one subscription may name (fdn_events_sub_opts_t.types). */
#define SUB_MAX_TYPES 64

/* The cursor is written by one thread (delivery thread or the fd reader) and read by the
 * delivery thread: relaxed atomics are enough (no data is published through it). */
#define CUR(s)        atomic_load_explicit(&(s)->cursor, memory_order_relaxed)
#define SET_CUR(s, v) atomic_store_explicit(&(s)->cursor, (v), memory_order_relaxed)

/* ------------------------------------------------------------ subscriptions ---- */

/* Subscriptions and the append path. A subscription costs nothing for the events its filter
 * does not match. Each subscription is registered with the append path (sub_register,
 * under amu); for each batch, append_locked (event_store.c) finds the filtered
 * subscriptions it concerns: a type entry caches, per subscription set (sub_gen), whether
 * some type filter names it (sub_hit), so an event of another type costs one compare; a
 * correlation filter without a type one is compared per event that has a correlation id.
 * A matching subscription gets its mark (and, when it had examined everything before, its
 * since) set before published; the batch sets dmark after it, and only such a batch signals
 * the delivery thread (fdn__evs_notify_subs), unless a subscription without a filter exists
 * (then every batch does, and the thread watches published too, as before filters cost
 * nothing). The delivery thread serves a filtered subscriber only when its mark is past its
 * cursor (unfiltered ones: when published is), and makes an fd subscriber's descriptor
 * readable only then.
 * Skips count only events a subscriber would have received: a subscriber with nothing of
 * its filter after its cursor moves it to published without counting (sub_fetch), one with
 * waiting events first moves to just before since (nothing of its filter lies between), and
 * the backlog is counted in its own events (sub_count: the type's posting lists, or the
 * correlation's chain), so a skip steps over its oldest waiting events only. */

static bool sub_type_in(const evs_sub_t *s, const char *name, size_t len)
{
    if (s->ntypes == 0)
        return true;
    for (size_t i = 0; i < s->ntypes; i++)
        if (s->tlens[i] == len && memcmp(s->types[i], name, len) == 0)
            return true;
    return false;
}

void fdn__evs_sub_type_hit(fdn_events_t *es, evs_sym_t *t)
{
    bool hit = false;
    for (evs_sub_t *s = es->fsubs; s != NULL && !hit; s = s->fnext)
        hit = s->ntypes > 0 && sub_type_in(s, t->name, t->len);
    t->sub_hit = hit;
    t->sub_gen = es->sub_gen;
}

bool fdn__evs_sub_match(fdn_events_t *es, const evs_sym_t *t, const evs_corr_t *c, uint64_t id,
                        uint64_t last)
{
    bool any = false;
    for (evs_sub_t *s = es->fsubs; s != NULL; s = s->fnext) {
        if (!sub_type_in(s, t->name, t->len))
            continue;
        if (s->corr != NULL &&
            (c == NULL || c->len != s->corr_len || memcmp(c->name, s->corr, s->corr_len) != 0))
            continue;
        any = true;
        uint64_t m = atomic_load_explicit(&s->mark, memory_order_relaxed);
        if (m >= last)
            continue; /* an earlier event of this batch matched already */
        /* every matching event up to m is examined (the cursor only grows, so a stale
         * read errs towards not setting since) and none lies between m and id */
        if (m <= CUR(s))
            atomic_store_explicit(&s->since, id, memory_order_relaxed);
        atomic_store_explicit(&s->mark, last, memory_order_release);
    }
    return any;
}

/* Add s to the append path's set: from now on appends mark it. */
static void sub_register(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->amu);
    atomic_store_explicit(&s->mark, atomic_load_explicit(&es->published, memory_order_relaxed),
                          memory_order_relaxed);
    if (s->filtered) {
        s->fnext = es->fsubs;
        es->fsubs = s;
        if (s->ntypes == 0)
            es->sub_corr++;
    } else {
        atomic_fetch_add_explicit(&es->sub_all, 1, memory_order_relaxed);
    }
    es->sub_gen++;
    s->registered = true;
    fdn__mutex_unlock(&es->amu);
}

static void sub_unregister(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->amu);
    if (s->registered) {
        if (s->filtered) {
            for (evs_sub_t **pp = &es->fsubs; *pp != NULL; pp = &(*pp)->fnext)
                if (*pp == s) {
                    *pp = s->fnext;
                    break;
                }
            if (s->ntypes == 0)
                es->sub_corr--;
        } else {
            atomic_fetch_sub_explicit(&es->sub_all, 1, memory_order_relaxed);
        }
        es->sub_gen++;
        s->registered = false;
    }
    fdn__mutex_unlock(&es->amu);
}

static void sub_free(evs_sub_t *s)
{
    if (s->efd >= 0)
        close(s->efd);
    for (size_t i = 0; i < s->ntypes; i++)
        fdn__free(s->types[i]);
    fdn__free(s->types);
    fdn__free(s->tlens);
    fdn__free(s->corr);
    fdn__free(s);
}

/* The newest id up to which s may have events waiting, published being pub. */
static uint64_t sub_avail(const evs_sub_t *s, uint64_t pub)
{
    if (!s->filtered)
        return pub;
    uint64_t m = atomic_load_explicit(&s->mark, memory_order_acquire);
    return m < pub ? m : pub;
}

/* Count skip events as skipped by s (its overflow and the telemetry counter); returns skip. */
static uint64_t sub_count_skip(evs_sub_t *s, uint64_t skip)
{
    if (skip) {
        atomic_fetch_add_explicit(&s->overflow, skip, memory_order_relaxed);
        fdn__gate_pass_t tp;
        fdn_telemetry_t *tm = fdn__evs_tm_enter(s->es, &tp);
        if (tm != NULL) {
            fdn_telemetry_emit_counter_n(tm, "foundation.event_store.subscriber_skipped", skip,
                                         NULL, 0);
            fdn__evs_tm_leave(&tp);
        }
    }
    return skip;
}

/* How many events of s's filter the memory tier holds with ids in [lo, hi] (its backlog):
 * the correlation's chain, or the type's posting lists. */
static uint64_t sub_count(fdn_events_t *es, const evs_sub_t *s, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return 0;
    if (!s->filtered)
        return hi - lo + 1;
    uint64_t n = 0;
    fdn__rwlock_rdlock(&es->plock);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    if (lo < first)
        lo = first;
    if (lo > hi) {
        /* all pruned meanwhile */
    } else if (s->corr != NULL) {
        evs_corr_t *c = fdn__evs_tab_find(atomic_load_explicit(&es->corrs, memory_order_acquire),
                                          s->corr, s->corr_len, fdn__hash(s->corr, s->corr_len),
                                          offsetof(evs_corr_t, name));
        uint64_t id = c != NULL ? atomic_load_explicit(&c->last_id, memory_order_acquire) : 0;
        evs_seg_t *hint = NULL;
        while (id != 0 && id >= lo) {
            const evs_rec_t *r = fdn__evs_rec_lookup_hint(es, id, &hint);
            if (r == NULL)
                break;
            if (id <= hi && sub_type_in(s, r->type->name, r->type->len))
                n++;
            id = r->corr_prev ? id - r->corr_prev : 0;
        }
    } else {
        evs_tab_t *tab = atomic_load_explicit(&es->types, memory_order_acquire);
        for (size_t k = 0; k < s->ntypes; k++) {
            evs_sym_t *t =
                fdn__evs_tab_find(tab, s->types[k], s->tlens[k],
                                  fdn__hash(s->types[k], s->tlens[k]), offsetof(evs_sym_t, name));
            if (t == NULL)
                continue;
            evs_posting_t *p = &t->post;
            size_t pn = atomic_load_explicit(&p->n, memory_order_acquire);
            uint64_t **dir = atomic_load_explicit(&p->dir, memory_order_acquire);
            size_t ph = atomic_load_explicit(&p->head, memory_order_acquire);
            if (dir == NULL)
                continue;
            size_t a = fdn__evs_post_lower(p, dir, ph, pn, lo);
            n += fdn__evs_post_lower(p, dir, a, pn, hi + 1) - a;
        }
    }
    fdn__rwlock_rdunlock(&es->plock);
    return n;
}

/* Merge k lists of distinct events in id order, each complete up to bound[k] (the lists are
 * freed): the events up to the smallest bound, at most max of them. *upto: the id the merged
 * list is complete up to. */
static int sub_merge(fdn_event_list_t **part, const uint64_t *bound, size_t k, size_t max,
                     fdn_event_list_t **out, uint64_t *upto)
{
    uint64_t b = UINT64_MAX;
    for (size_t i = 0; i < k; i++)
        b = FDN_MIN(b, bound[i]);
    size_t idx[SUB_MAX_TYPES] = {0};
    size_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += part[i]->n;
    const fdn_event_t **v = fdn__malloc((FDN_MIN(total, max) + 1) * sizeof(*v));
    int rc = v != NULL ? 0 : FDN_ENOMEM;
    size_t n = 0;
    while (rc == 0 && n < max) {
        size_t best = k;
        for (size_t i = 0; i < k; i++)
            if (idx[i] < part[i]->n && part[i]->items[idx[i]]->id <= b &&
                (best == k || part[i]->items[idx[i]]->id < part[best]->items[idx[best]]->id))
                best = i;
        if (best == k)
            break;
        v[n++] = part[best]->items[idx[best]++];
    }
    if (rc == 0 && n == max)
        b = v[n - 1]->id;
    if (rc == 0)
        rc = fdn__event_list_build(v, n, out);
    fdn__free(v);
    for (size_t i = 0; i < k; i++)
        fdn_event_list_free(part[i]);
    *upto = b;
    return rc;
}

/* Up to max events of s's filter after `after` in memory, in id order; *upto: the id they
 * are complete up to (the query's snapshot, or the last event when max came back). Several
 * types: one query per type, merged. */
static int sub_query(fdn_events_t *es, const evs_sub_t *s, uint64_t after, size_t max,
                     fdn_event_list_t **out, uint64_t *upto)
{
    fdn_events_query_t q = FDN_EVENTS_QUERY_INIT;
    q.correlation_id = s->corr;
    q.after_id = after;
    fdn_event_list_t *part[SUB_MAX_TYPES];
    uint64_t bound[SUB_MAX_TYPES];
    size_t k = s->ntypes > 0 ? s->ntypes : 1;
    /* on a shared backend, timestamps as its reads give them (event_shared.c), one clock
     * offset for every part of the page */
    int64_t off = es->sh != NULL ? fdn__evs_clock_offset(es) : 0;
    for (size_t i = 0; i < k; i++) {
        q.type = s->ntypes > 0 ? s->types[i] : NULL;
        uint64_t snap = 0;
        int rc = fdn__evs_query(es, &q, max, es->sh != NULL ? &off : NULL, &part[i], &snap);
        if (rc != 0) {
            while (i > 0)
                fdn_event_list_free(part[--i]);
            return rc;
        }
        bound[i] = part[i]->n == max ? part[i]->items[max - 1]->id : snap;
    }
    if (k == 1) {
        *out = part[0];
        *upto = bound[0];
        return 0;
    }
    return sub_merge(part, bound, k, max, out, upto);
}

/* Up to max events of s's filter with after < id < before from the durable backend (shared:
 * PostgreSQL; else the file), in id order; *upto as sub_query; *skipped: ids the file's
 * retention deleted there (fdn__evs_disk_page). */
static int sub_page(fdn_events_t *es, const evs_sub_t *s, bool shared, uint64_t after,
                    uint64_t before, size_t max, fdn_event_list_t **out, uint64_t *upto,
                    uint64_t *skipped)
{
    fdn_event_list_t *part[SUB_MAX_TYPES];
    uint64_t bound[SUB_MAX_TYPES];
    size_t k = s->ntypes > 0 ? s->ntypes : 1;
    *skipped = UINT64_MAX;
    int64_t off = shared ? fdn__evs_clock_offset(es) : 0; /* one for every part */
    for (size_t i = 0; i < k; i++) {
        const char *type = s->ntypes > 0 ? s->types[i] : NULL;
        uint64_t sk = 0;
        int rc = shared ? fdn__evs_shared_page(es, type, s->corr, after, before, max, off, &part[i])
                        : fdn__evs_disk_page(es, type, s->corr, after, before, max, &part[i], &sk);
        if (rc != 0) {
            while (i > 0)
                fdn_event_list_free(part[--i]);
            return rc;
        }
        bound[i] = part[i]->n == max ? part[i]->items[max - 1]->id : before - 1;
        *skipped = FDN_MIN(*skipped, sk); /* each page counts the same deleted ids */
    }
    if (k == 1) {
        *out = part[0];
        *upto = bound[0];
        return 0;
    }
    return sub_merge(part, bound, k, max, out, upto);
}

/* Fetch the next events of s after its cursor (no lock held by the caller; the cursor's
 * owner: the delivery thread, or the fd subscription's reader). */
static int sub_fetch(evs_sub_t *s, size_t max, fdn_event_list_t **out, uint64_t *skipped)
{
    fdn_events_t *es = s->es;
    uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
    uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
    uint64_t skip = 0;
    uint64_t cur = CUR(s);
    *skipped = 0;
    if (s->filtered) {
        /* read after published: every matching batch up to pub has set mark */
        uint64_t m = atomic_load_explicit(&s->mark, memory_order_acquire);
        if (m <= cur) { /* nothing of its filter after the cursor up to pub */
            if (pub > cur)
                SET_CUR(s, pub);
            return fdn__event_list_build(NULL, 0, out);
        }
        uint64_t sn = atomic_load_explicit(&s->since, memory_order_relaxed);
        if (sn > cur + 1) { /* nothing of its filter before since */
            cur = sn - 1;
            SET_CUR(s, cur);
        }
    }
    uint64_t upto = 0;
    if (s->from_pos && cur + 1 < first && (es->sh != NULL || es->durable_path != NULL)) {
        /* behind the memory tier: page from the shared backend, which holds every event, or
         * from the file of a write-behind store, which holds every id below first_id that its
         * retention kept */
        int rc = sub_page(es, s, es->sh != NULL, cur, first, max, out, &upto, &skip);
        if (rc != 0)
            return rc;
        SET_CUR(s, FDN_MAX(cur, upto));
        *skipped = sub_count_skip(s, skip);
        return 0;
    }
    if (cur + 1 < first) { /* pruned before delivery */
        skip += first - (cur + 1);
        cur = first - 1;
    }
    uint64_t bl = es->sub_max_backlog;
    if (!s->from_pos && pub > cur && pub - cur > bl) {
        /* more than bl of its events wait (with a filter, fewer ids may hold that many): it
         * skips the oldest, to the last bl */
        uint64_t have = s->filtered ? sub_count(es, s, cur + 1, pub) : pub - cur;
        if (have > bl && !s->filtered) {
            skip += pub - bl - cur;
            cur = pub - bl;
        } else if (have > bl) {
            /* the smallest hi with at most bl of its events in (hi, pub]: count(lo+1..pub)
             * stays above bl, count(hi+1..pub) at most bl */
            uint64_t lo = cur, hi = pub;
            while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (sub_count(es, s, mid + 1, pub) > bl)
                    lo = mid;
                else
                    hi = mid;
            }
            skip += have - sub_count(es, s, hi + 1, pub);
            cur = hi;
        }
    }
    SET_CUR(s, cur);
    int rc = sub_query(es, s, cur, max, out, &upto);
    if (rc != 0)
        return rc;
    if (upto > cur)
        SET_CUR(s, upto);
    *skipped = sub_count_skip(s, skip);
    return 0;
}

static uint64_t efd_poke(int fd)
{
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof(one));
    return w == (ssize_t)sizeof(one) ? 1 : 0;
}

/* A from-position subscriber behind the memory tier of a shared store catches up on a thread
 * of its own: it pages from the backend and runs its callback there, so a slow backend (or a
 * slow callback) delays only this subscriber, never the others on the delivery thread. It
 * ends when the subscriber reached the memory tier (the delivery thread takes it over) or on
 * pstop; it clears `paging` last and never touches s afterwards (unsubscribe waits for it). */
static void *pager_main(void *arg)
{
    evs_sub_t *s = arg;
    fdn_events_t *es = s->es;
    while (!atomic_load_explicit(&s->pstop, memory_order_acquire)) {
        uint64_t first = atomic_load_explicit(&es->first_id, memory_order_acquire);
        uint64_t cur = CUR(s);
        if (cur + 1 >= first)
            break;
        fdn_event_list_t *l = NULL;
        uint64_t upto = 0, sk = 0;
        if (sub_page(es, s, true, cur, first, 256, &l, &upto, &sk) != 0) {
            /* the backend is away: try again after 100 ms (or the stop) */
            int64_t dl = fdn__deadline_after_ms(BACKEND_RETRY_MS);
            fdn__mutex_lock(&es->smu);
            if (!atomic_load_explicit(&s->pstop, memory_order_acquire))
                (void)fdn__cond_wait_until(&es->sdone, &es->smu, dl);
            fdn__mutex_unlock(&es->smu);
            continue;
        }
        for (size_t i = 0; i < l->n && !atomic_load_explicit(&s->pstop, memory_order_acquire);
             i++) {
            s->cb(l->items[i], 0, s->user);
            SET_CUR(s, l->items[i]->id);
        }
        /* nothing else of its filter below upto (first - 1 for a short page) */
        if (!atomic_load_explicit(&s->pstop, memory_order_acquire) && upto > CUR(s))
            SET_CUR(s, upto);
        fdn_event_list_free(l);
    }
    fdn__mutex_lock(&es->smu);
    s->paging = false;
    pthread_cond_broadcast(&es->sdone);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
    return NULL;
}

/* Start s's pager (under smu); false when no thread could be made. */
static bool pager_start(fdn_events_t *es, evs_sub_t *s) FDN_REQUIRES(es->smu)
{
    (void)es;
    pthread_attr_t at;
    pthread_t t;
    if (pthread_attr_init(&at) != 0)
        return false;
    (void)pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    s->paging = true;
    bool ok = pthread_create(&t, &at, pager_main, s) == 0;
    pthread_attr_destroy(&at);
    if (!ok)
        s->paging = false;
    return ok;
}

/* Stop s's pager and wait until it let s go (under smu). */
static void pager_stop(fdn_events_t *es, evs_sub_t *s) FDN_REQUIRES(es->smu)
{
    atomic_store_explicit(&s->pstop, true, memory_order_release);
    pthread_cond_broadcast(&es->sdone);
    while (s->paging)
        pthread_cond_wait(&es->sdone, &es->smu);
}

/* The store whose delivery thread this is (NULL elsewhere). */
static _Thread_local const fdn_events_t *t_delivering;

bool fdn__evs_on_delivery_thread(const fdn_events_t *es)
{
    return es != NULL && t_delivering == es;
}

static void *deliver_main(void *arg)
{
    fdn_events_t *es = arg;
    t_delivering = es;
    fdn__mutex_lock(&es->smu);
    for (;;) {
        if (es->dstop)
            break;
        /* dmark first: published is at least it (stored before it, release) */
        uint64_t dm = atomic_load_explicit(&es->dmark, memory_order_acquire);
        uint64_t pub = atomic_load_explicit(&es->published, memory_order_acquire);
        /* an fd subscriber's descriptor becomes readable once per id it may have events up
         * to (it is cleared by the read, which then fetches at least that far) */
        for (evs_sub_t *s = es->subs; s != NULL; s = s->next) {
            if (s->cb != NULL)
                continue;
            uint64_t a = sub_avail(s, pub);
            if (a > CUR(s) && a != s->poked) {
                efd_poke(s->efd);
                s->poked = a;
            }
        }
        /* round robin: each subscriber that is behind gets one batch per round, so a busy
         * subscriber cannot starve the others */
        evs_sub_t *pick = NULL;
        bool behind = false;
        for (evs_sub_t *s = es->subs; s != NULL; s = s->next) {
            if (s->cb == NULL || s->paging || sub_avail(s, pub) <= CUR(s))
                continue;
            behind = true;
            if (s->round != es->dround) {
                pick = s;
                break;
            }
        }
        if (pick == NULL) {
            if (behind) {
                es->dround++;
                continue;
            }
            /* announce the wait, then look at dmark (and, with a subscriber without a
             * filter, published) again (seq_cst, as the writer's idle wait): an append that
             * concerns a subscriber either sees the flag and signals under smu, or it shows
             * here. sub_all changes only before a subscription is linked (under smu) or
             * after it is unlinked. */
            atomic_store(&es->dwaiting, true);
            if (atomic_load(&es->dmark) == dm &&
                (atomic_load(&es->sub_all) == 0 || atomic_load(&es->published) == pub))
                pthread_cond_wait(&es->scv, &es->smu);
            atomic_store_explicit(&es->dwaiting, false, memory_order_relaxed);
            continue;
        }
        pick->round = es->dround;
        if (pick->from_pos && es->sh != NULL &&
            CUR(pick) + 1 < atomic_load_explicit(&es->first_id, memory_order_acquire) &&
            pager_start(es, pick))
            continue; /* behind the memory tier: its pager catches it up */
        es->delivering = pick;
        fdn__mutex_unlock(&es->smu);
        fdn_event_list_t *l = NULL;
        uint64_t skipped = 0;
        bool fetch_failed = false;
        if (sub_fetch(pick, 256, &l, &skipped) == 0) {
            pick->pending_skip += skipped;
            for (size_t i = 0; i < l->n; i++) {
                pick->cb(l->items[i], pick->pending_skip, pick->user);
                pick->pending_skip = 0;
            }
            fdn_event_list_free(l);
        } else {
            fetch_failed = true;
        }
        fdn__mutex_lock(&es->smu);
        es->delivering = NULL;
        pthread_cond_broadcast(&es->sdone);
        if (fetch_failed && !es->dstop) /* the backend is away: retry after a while */
            (void)fdn__cond_wait_until(&es->scv, &es->smu,
                                       fdn__deadline_after_ms(BACKEND_RETRY_MS));
    }
    fdn__mutex_unlock(&es->smu);
    return NULL;
}

void fdn__evs_notify_subs(fdn_events_t *es, uint64_t last_id)
{
    /* only a batch some filtered subscription matches (or a later one) moved dmark this
     * far (this thread stored its own dmark, under amu); without a subscriber without a
     * filter, the others need no delivery */
    if (atomic_load_explicit(&es->dmark, memory_order_relaxed) < last_id &&
        atomic_load_explicit(&es->sub_all, memory_order_relaxed) == 0)
        return;
    /* dmark and published were stored before; the fence orders them before reading the
     * flag, which the delivery thread sets before its last look at them (deliver_main). A
     * thread busy
     * delivering needs no signal: it looks at dmark again before it waits. Without this,
     * every append took smu and woke the thread, which then contended for smu with the next
     * appender (fdn serve's own subscription: ~4 us of CPU per appended event). */
    fdn__full_fence();
    if (!atomic_load_explicit(&es->dwaiting, memory_order_relaxed))
        return;
    fdn__mutex_lock(&es->smu);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
}

/* Copy o's filter into s (types deduplicated). 0, FDN_EINVAL, FDN_ENOMEM. */
static int sub_filter_copy(evs_sub_t *s, const fdn_events_sub_opts_t *o)
{
    const char *one[1];
    const char *const *types = NULL;
    size_t nt = 0;
    if (o != NULL && o->version >= 3 && o->ntypes > 0) {
        if (o->types == NULL || o->type != NULL || o->ntypes > SUB_MAX_TYPES)
            return FDN_EINVAL;
        for (size_t i = 0; i < o->ntypes; i++)
            if (o->types[i] == NULL)
                return FDN_EINVAL;
        types = o->types;
        nt = o->ntypes;
    } else if (o != NULL && o->type != NULL) {
        one[0] = o->type;
        types = one;
        nt = 1;
    }
    if (nt > 0) {
        s->types = fdn__calloc(nt, sizeof(char *));
        s->tlens = fdn__calloc(nt, sizeof(size_t));
        if (s->types == NULL || s->tlens == NULL)
            return FDN_ENOMEM;
        for (size_t i = 0; i < nt; i++) {
            bool dup = false;
            for (size_t j = 0; j < s->ntypes && !dup; j++)
                dup = strcmp(s->types[j], types[i]) == 0;
            if (dup)
                continue;
            if ((s->types[s->ntypes] = fdn__strdup(types[i])) == NULL)
                return FDN_ENOMEM;
            s->tlens[s->ntypes] = strlen(types[i]);
            s->ntypes++;
        }
    }
    if (o != NULL && o->correlation_id != NULL) {
        if ((s->corr = fdn__strdup(o->correlation_id)) == NULL)
            return FDN_ENOMEM;
        s->corr_len = strlen(s->corr);
    }
    s->filtered = s->ntypes > 0 || s->corr != NULL;
    return 0;
}

static int sub_new(fdn_events_t *es, const fdn_events_sub_opts_t *o, evs_sub_t **out)
{
    if (o != NULL && (o->version < 1 || o->version > FDN_EVENTS_SUB_OPTS_VERSION))
        return FDN_EINVAL;
    if (o != NULL && o->version >= 3 && o->ntypes > 0 &&
        (o->types == NULL || o->type != NULL || o->ntypes > SUB_MAX_TYPES))
        return FDN_EINVAL;
    if (!atomic_load_explicit(&es->running, memory_order_acquire))
        return FDN_EUNAVAILABLE;
    evs_sub_t *s = fdn__calloc(1, sizeof(*s));
    if (s == NULL)
        return FDN_ENOMEM;
    s->es = es;
    s->efd = -1;
    s->from_pos = o != NULL && o->version >= 2 && o->from_position;
    atomic_init(&s->overflow, 0);
    atomic_init(&s->mark, 0);
    atomic_init(&s->since, 0);
    uint64_t after = o ? o->after_id : UINT64_MAX;
    atomic_init(&s->cursor, after == UINT64_MAX
                                ? atomic_load_explicit(&es->published, memory_order_acquire)
                                : after);
    int rc = sub_filter_copy(s, o);
    if (rc != 0) {
        sub_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void sub_link(fdn_events_t *es, evs_sub_t *s)
{
    fdn__mutex_lock(&es->smu);
    s->next = es->subs;
    es->subs = s;
    atomic_fetch_add_explicit(&es->nsubs, 1, memory_order_release);
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
}

int fdn__evs_deliverer_start(fdn_events_t *es)
{
    fdn__mutex_lock(&es->smu);
    int rc = 0;
    if (!es->deliverer_on) {
        es->dstop = false;
        if (pthread_create(&es->deliverer, NULL, deliver_main, es) != 0)
            rc = FDN_EAGAIN;
        else
            es->deliverer_on = true;
    }
    fdn__mutex_unlock(&es->smu);
    return rc;
}

void fdn__evs_deliverer_stop(fdn_events_t *es)
{
    fdn__mutex_lock(&es->smu);
    bool on = es->deliverer_on;
    es->dstop = true;
    pthread_cond_broadcast(&es->scv);
    fdn__mutex_unlock(&es->smu);
    if (on)
        pthread_join(es->deliverer, NULL);
    fdn__mutex_lock(&es->smu);
    es->deliverer_on = false;
    fdn__mutex_unlock(&es->smu);
}

int fdn_events_subscribe(fdn_events_t *es, const fdn_events_sub_opts_t *opts, fdn_events_sub_cb cb,
                         void *user, fdn_events_sub_t **out)
{
    if (es == NULL || cb == NULL || out == NULL)
        return FDN_EINVAL;
    evs_sub_t *s = NULL;
    int rc = sub_new(es, opts, &s);
    if (rc != 0)
        return rc;
    s->cb = cb;
    s->user = user;
    if ((rc = fdn__evs_deliverer_start(es)) != 0) {
        sub_free(s);
        return rc;
    }
    sub_register(es, s);
    sub_link(es, s);
    *out = s;
    return 0;
}

int fdn_events_subscribe_fd(fdn_events_t *es, const fdn_events_sub_opts_t *opts,
                            fdn_events_sub_t **out)
{
    if (es == NULL || out == NULL)
        return FDN_EINVAL;
    evs_sub_t *s = NULL;
    int rc = sub_new(es, opts, &s);
    if (rc != 0)
        return rc;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0 || (rc = fdn__evs_deliverer_start(es)) != 0) {
        sub_free(s);
        return rc ? rc : FDN_EIO;
    }
    sub_register(es, s);
    /* events up to the registration may wait (after_id in the past) */
    uint64_t m = atomic_load_explicit(&s->mark, memory_order_relaxed);
    if (CUR(s) < m) {
        efd_poke(s->efd);
        s->poked = m;
    }
    sub_link(es, s);
    *out = s;
    return 0;
}

int fdn_events_sub_fd(const fdn_events_sub_t *sub)
{
    return sub ? sub->efd : -1;
}

/* A read of fd subscriber s failed because the store's file is closed (the store stopped; its
 * position is kept): the read cleared the descriptor, which the delivery thread makes
 * readable only for a newer id than the one it last did. Forget that id, so the delivery
 * thread makes it readable again once it runs: when the store starts (it starts the thread),
 * or now if it started meanwhile (woken here). Not left readable while stopped: a poller
 * would spin on reads that fail. */
static void sub_rearm(evs_sub_t *s)
{
    fdn_events_t *es = s->es;
    fdn__mutex_lock(&es->smu);
    s->poked = 0;
    pthread_cond_signal(&es->scv);
    fdn__mutex_unlock(&es->smu);
}

int fdn_events_sub_read(fdn_events_sub_t *s, size_t max, fdn_event_list_t **out, uint64_t *skipped)
{
    if (s == NULL || out == NULL || max == 0 || s->efd < 0)
        return FDN_EINVAL;
    uint64_t v;
    ssize_t r = read(s->efd, &v, sizeof(v)); /* clear readiness first: no lost wake-up */
    (void)r;
    uint64_t sk = 0;
    int rc = sub_fetch(s, max, out, &sk);
    if (rc == FDN_EUNAVAILABLE && s->es->sh == NULL)
        sub_rearm(s);
    if (rc != 0)
        return rc;
    if ((*out)->n == max)
        efd_poke(s->efd); /* more may wait */
    if (skipped)
        *skipped = sk;
    return 0;
}

uint64_t fdn_events_sub_overflow(const fdn_events_sub_t *sub)
{
    return sub ? atomic_load_explicit(&((fdn_events_sub_t *)sub)->overflow, memory_order_relaxed)
               : 0;
}

void fdn_events_unsubscribe(fdn_events_sub_t *s)
{
    if (s == NULL)
        return;
    fdn_events_t *es = s->es;
    fdn__mutex_lock(&es->smu);
    for (evs_sub_t **pp = &es->subs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    while (es->delivering == s)
        pthread_cond_wait(&es->sdone, &es->smu);
    pager_stop(es, s);
    atomic_fetch_sub_explicit(&es->nsubs, 1, memory_order_release);
    fdn__mutex_unlock(&es->smu);
    sub_unregister(es, s); /* no append marks it after this */
    sub_free(s);
}

void fdn__evs_subs_free_all(fdn_events_t *es)
{
    while (es->subs != NULL) {
        evs_sub_t *s = es->subs;
        es->subs = s->next;
        fdn__mutex_lock(&es->smu);
        pager_stop(es, s);
        fdn__mutex_unlock(&es->smu);
        sub_unregister(es, s);
        sub_free(s);
    }
}
