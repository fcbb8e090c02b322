/*
 * DESIGN: the process collector of the Prometheus / OpenMetrics writers: the metrics every
 * Prometheus client library exports (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds, process_threads), read at scrape time.
 *
 * Sources (Linux): getrusage(RUSAGE_SELF) for CPU time; /proc/self/stat for the thread count,
 * the virtual size, the resident pages and the start time (clock ticks after boot, plus
 * `btime` from /proc/stat); /proc/self/fd for open descriptors; getrlimit(RLIMIT_NOFILE).
 * A source that cannot be read leaves its field at -1 and the writer omits that metric.
 * Also the run queue of /proc/loadavg, for the reference's vm.* start-up gauges (JSON API).
 * Cost: the /proc reads (open, read, close of two files and a directory listing whose length
 * grows with the open descriptors) were most of a scrape's system time, so a scrape storm
 * (GET /metrics under load) spent its time in the kernel. The /proc figures (threads, sizes,
 * open descriptors) are therefore read at most every FDN__TM_PROCESS_MAX_AGE_MS and shared by
 * the scrapes in between, and the fd limit (getrlimit: it changes only when the process sets
 * it) with them; the start time (and boot time) never changes and is read once. CPU time
 * (getrusage) is read by fdn__tm_process_cpu; the exposition shares one read between the
 * scrapes of an instance less than FDN__TM_PROCESS_CPU_MAX_AGE_NS apart (telemetry_prometheus.c):
 * it was the one system call a scrape added to the socket's, and getrusage(RUSAGE_SELF) walks
 * every thread of the process (~0.75 us with 15 threads, ~1.4 us under wrk -c32 on 2 cores).
 * Threads: any; the cache is guarded by `cache_mu` (a leaf lock, held across the /proc reads so
 * that concurrent scrapes after expiry read once).
 */
#include "services/telemetry_process.h"

#include "core/lock.h"

#include <time.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* /proc/stat's btime (seconds since the epoch), -1 when unknown. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            char *end = NULL;
            unsigned long long v = strtoull(line + 6, &end, 10);
            if (end != line + 6)
                bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

/* Fields 20 (num_threads), 22 (starttime), 23 (vsize), 24 (rss) of /proc/self/stat; the start
 * time only with start (it needs /proc/stat's boot time too). */
static void read_stat(fdn__tm_process_t *out, bool start)
{
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and parentheses: skip to its last ')' */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return;
    p++;
    unsigned long long v[25] = {0};
    int field = 2;
    while (*p != '\0' && field < 24) {
        while (*p == ' ')
            p++;
        field++;
        char *end = NULL;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p) { /* the state letter (field 3) */
            while (*p != '\0' && *p != ' ')
                p++;
            continue;
        }
        v[field] = x;
        p = end;
    }
    if (field < 24)
        return;
    long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
    out->threads = (double)v[20];
    out->virtual_bytes = (double)v[23];
    if (page > 0)
        out->resident_bytes = (double)v[24] * (double)page;
    if (!start)
        return;
    double bt = boot_time();
    if (tck > 0 && bt >= 0)
        out->start_time_seconds = bt + (double)v[22] / (double)tck;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* not the descriptor of the listing itself */
}

/* The /proc part of the figures, re-read when older than FDN__TM_PROCESS_MAX_AGE_MS. */
static fdn__mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool valid;
    int64_t at_ns; /* CLOCK_MONOTONIC of the read */
    fdn__tm_process_t v;
} cache FDN_GUARDED_BY(cache_mu);

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void read_proc(fdn__tm_process_t *out)
{
    int64_t now = mono_ns();
    fdn__mutex_lock(&cache_mu);
    if (!cache.valid || now - cache.at_ns >= (int64_t)FDN__TM_PROCESS_MAX_AGE_MS * 1000000 ||
        now < cache.at_ns) {
        fdn__tm_process_t v;
        v.resident_bytes = v.virtual_bytes = v.open_fds = v.threads = -1;
        /* the start time never changes: once known, kept */
        v.start_time_seconds = cache.valid ? cache.v.start_time_seconds : -1;
        v.open_fds = open_fds();
        struct rlimit rl;
        v.max_fds = -1;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
            v.max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
        read_stat(&v, v.start_time_seconds < 0);
        cache.v = v;
        cache.at_ns = now;
        cache.valid = true;
    }
    out->resident_bytes = cache.v.resident_bytes;
    out->virtual_bytes = cache.v.virtual_bytes;
    out->open_fds = cache.v.open_fds;
    out->max_fds = cache.v.max_fds;
    out->threads = cache.v.threads;
    out->start_time_seconds = cache.v.start_time_seconds;
    fdn__mutex_unlock(&cache_mu);
}

double fdn__tm_process_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void fdn__tm_process_read_proc(fdn__tm_process_t *out)
{
    out->cpu_seconds = out->resident_bytes = out->virtual_bytes = -1;
    out->open_fds = out->max_fds = out->start_time_seconds = out->threads = -1;
    read_proc(out);
}

void fdn__tm_process_read(fdn__tm_process_t *out)
{
    fdn__tm_process_read_proc(out);
    out->cpu_seconds = fdn__tm_process_cpu();
}

double fdn__tm_run_queue(void)
{
    FILE *f = fopen("/proc/loadavg", "re");
    if (f == NULL)
        return -1;
    double a, b, c;
    long running = -1, total = 0;
    int n = fscanf(f, "%lf %lf %lf %ld/%ld", &a, &b, &c, &running, &total);
    fclose(f);
    return n == 5 && running >= 0 ? (double)running : -1;
}
