/* Unit tests: stored monotonic times are mapped onto the clock of a new boot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include <fdn/clock.h>
#include <fdn/events.h>

#define SEC 1000000000LL

static fdn_events_t *open_store(const char *path, fdn_clock_t *clock)
{
    fdn_events_opts_t o = FDN_EVENTS_OPTS_INIT;
    o.durable_path = path;
    o.clock = clock;
    fdn_events_t *es = NULL;
    assert_int_equal(fdn_events_create(&es, &o, NULL), 0);
    return es;
}

/* Store one event stamped by `clock` in a durable store at path; return its id. */
static uint64_t store_one(const char *path, fdn_clock_t *clock)
{
    fdn_events_t *es = open_store(path, clock);
    fdn_event_spec_t spec = FDN_EVENT_SPEC_INIT;
    spec.type = "boot_test";
    spec.clock = clock;
    fdn_event_t *ev = NULL;
    assert_int_equal(fdn_event_new(&ev, &spec, NULL), 0);
    uint64_t id = 0;
    assert_int_equal(fdn_events_store(es, ev, &id), 0);
    fdn_event_free(ev);
    fdn_events_destroy(es);
    return id;
}

/* The monotonic timestamp event `id` has in an open store. */
static int64_t timestamp_of(fdn_events_t *es, uint64_t id)
{
    fdn_event_t *back = NULL;
    assert_int_equal(fdn_events_get(es, id, &back), 0);
    int64_t ts = fdn_event_timestamp(back);
    fdn_event_free(back);
    return ts;
}

static void make_store_dir(char *dir, char *path, size_t cap)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, cap, "%s/events.db", dir);
}

static void remove_store_dir(const char *dir)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The new boot has already been up longer than the old one was: the stored times are not
 * "in the future", yet they belong to another clock. An event stored 10 s before the restart
 * must be 10 s old afterwards, not (new uptime - old uptime) old. */
static void new_boot_with_longer_uptime(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn-evboot-XXXXXX";
    char path[64];
    make_store_dir(dir, path, sizeof(path));
    const int64_t wall0 = 1800000000LL * SEC;

    fdn_clock_t *boot1 = NULL;
    assert_int_equal(fdn_clock_manual_create(&boot1, 1000 * SEC, wall0), 0);
    uint64_t id = store_one(path, boot1);

    /* reboot: 10 s of wall time later, the new monotonic clock reads 5000 s */
    fdn_clock_t *boot2 = NULL;
    assert_int_equal(fdn_clock_manual_create(&boot2, 5000 * SEC, wall0 + 10 * SEC), 0);
    fdn_events_t *es = open_store(path, boot2);
    assert_int_equal(timestamp_of(es, id), 5000 * SEC - 10 * SEC);
    /* so age-based retention keeps it (60 s) */
    assert_int_equal(fdn_events_set_max_age(es, 60 * SEC), 0);
    uint64_t pruned = 99;
    assert_int_equal(fdn_events_enforce_retention(es, &pruned), 0);
    assert_int_equal(pruned, 0);
    fdn_events_destroy(es);

    /* same boot, reopened 5 s later: times are kept as they are */
    assert_int_equal(fdn_clock_advance(boot2, 5 * SEC), 0);
    es = open_store(path, boot2);
    assert_int_equal(timestamp_of(es, id), 5000 * SEC - 10 * SEC);
    fdn_events_destroy(es);

    fdn_clock_destroy(boot1);
    fdn_clock_destroy(boot2);
    remove_store_dir(dir);
}

/* The same boot, with the wall clock stepped by half a second (an NTP correction): the record
 * keeps its stored monotonic time. Rebasing it through wall time would shift it by the step
 * (99.5 s instead of 100 s), so this tells the same-clock path from the rebase path. */
static void same_boot_keeps_stored_time(void **state)
{
    (void)state;
    char dir[] = "/tmp/fdn-evboot-XXXXXX";
    char path[64];
    make_store_dir(dir, path, sizeof(path));
    const int64_t wall0 = 1800000000LL * SEC;

    fdn_clock_t *c1 = NULL;
    assert_int_equal(fdn_clock_manual_create(&c1, 100 * SEC, wall0), 0);
    uint64_t id = store_one(path, c1);

    /* 10 s later in the same boot; the wall clock was stepped forward by 0.5 s meanwhile */
    fdn_clock_t *c2 = NULL;
    assert_int_equal(fdn_clock_manual_create(&c2, 110 * SEC, wall0 + 10 * SEC + SEC / 2), 0);
    fdn_events_t *es = open_store(path, c2);
    assert_int_equal(timestamp_of(es, id), 100 * SEC);
    fdn_events_destroy(es);

    fdn_clock_destroy(c1);
    fdn_clock_destroy(c2);
    remove_store_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_boot_with_longer_uptime),
        cmocka_unit_test(same_boot_keeps_stored_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
