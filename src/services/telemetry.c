/* DESIGN: first cut of the telemetry service (interface for other modules). A mutex guards a
 * list of event entries; execute validates and counts. Replaced by the sharded version. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <fdn/error.h>
#include <fdn/telemetry.h>

#include "core/alloc.h"

typedef struct entry {
    struct entry *next;
    char *name;
    uint64_t count;
} entry_t;

struct fdn_telemetry {
    pthread_mutex_t mu;
    entry_t *entries;
};

bool fdn_tm_event_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > FDN_TM_NAME_MAX)
        return false;
    bool prev_dot = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == '.') {
            if (prev_dot)
                return false;
            prev_dot = true;
        } else {
            prev_dot = false;
        }
    }
    return !prev_dot;
}

int fdn_telemetry_create(fdn_telemetry_t **out, const fdn_telemetry_opts_t *opts)
{
    (void)opts;
    if (out == NULL)
        return FDN_EINVAL;
    fdn_telemetry_t *tm = fdn__calloc(1, sizeof(*tm));
    if (tm == NULL)
        return FDN_ENOMEM;
    pthread_mutex_init(&tm->mu, NULL);
    *out = tm;
    return 0;
}

void fdn_telemetry_destroy(fdn_telemetry_t *tm)
{
    if (tm == NULL)
        return;
    entry_t *e = tm->entries;
    while (e != NULL) {
        entry_t *n = e->next;
        fdn__free(e->name);
        fdn__free(e);
        e = n;
    }
    pthread_mutex_destroy(&tm->mu);
    fdn__free(tm);
}

int fdn_telemetry_execute(fdn_telemetry_t *tm, const char *event, const fdn_tm_measure_t *m,
                          size_t nm, const fdn_tm_meta_t *meta, size_t nmeta)
{
    (void)meta;
    (void)nmeta;
    if (tm == NULL)
        return 0;
    if (event == NULL || !fdn_tm_event_name_valid(event, strlen(event)) ||
        (nm > 0 && m == NULL))
        return FDN_EINVAL;
    for (size_t i = 0; i < nm; i++)
        if (m[i].key == NULL || !isfinite(m[i].value))
            return FDN_EINVAL;
    pthread_mutex_lock(&tm->mu);
    entry_t *e = tm->entries;
    while (e != NULL && strcmp(e->name, event) != 0)
        e = e->next;
    if (e == NULL) {
        e = fdn__calloc(1, sizeof(*e));
        if (e == NULL || (e->name = fdn__strdup(event)) == NULL) {
            fdn__free(e);
            pthread_mutex_unlock(&tm->mu);
            return FDN_ENOMEM;
        }
        e->next = tm->entries;
        tm->entries = e;
    }
    e->count++;
    pthread_mutex_unlock(&tm->mu);
    return 0;
}

int fdn_telemetry_emit_counter(fdn_telemetry_t *tm, const char *event, const fdn_tm_meta_t *meta,
                               size_t nmeta)
{
    fdn_tm_measure_t m = {"counter", 1.0};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}

int fdn_telemetry_emit_gauge(fdn_telemetry_t *tm, const char *event, double value,
                             const fdn_tm_meta_t *meta, size_t nmeta)
{
    fdn_tm_measure_t m = {"gauge", value};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}

int fdn_telemetry_emit_histogram(fdn_telemetry_t *tm, const char *event, double value,
                                 const fdn_tm_meta_t *meta, size_t nmeta)
{
    fdn_tm_measure_t m = {"histogram", value};
    return fdn_telemetry_execute(tm, event, &m, 1, meta, nmeta);
}
