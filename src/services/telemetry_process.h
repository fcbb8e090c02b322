/* Private: the process collector of the Prometheus writers (telemetry_process.c). */
#ifndef FDN_SERVICES_TELEMETRY_PROCESS_H
#define FDN_SERVICES_TELEMETRY_PROCESS_H

/* The standard process metrics of Prometheus clients; a field < 0 is not available. */
typedef struct fdn__tm_process {
    double cpu_seconds;        /* user + system CPU time */
    double resident_bytes;     /* RSS */
    double virtual_bytes;      /* virtual memory size */
    double open_fds;           /* entries of /proc/self/fd */
    double max_fds;            /* RLIMIT_NOFILE soft limit */
    double start_time_seconds; /* since the Unix epoch */
    double threads;            /* OS threads */
} fdn__tm_process_t;

/* The /proc figures (sizes, threads, open descriptors) and the fd limit are read at most this
 * often (ms); scrapes in between share the last read. */
#define FDN__TM_PROCESS_MAX_AGE_MS 1000

/* A telemetry instance's scrapes share one CPU-time read for at most this long (ns of the
 * instance's clock; telemetry_prometheus.c): getrusage sums every thread of the process and
 * was the one system call a scrape added to the socket's. */
#define FDN__TM_PROCESS_CPU_MAX_AGE_NS 1000000

/* Read them: CPU time now (getrusage); the /proc figures and the fd limit at most
 * FDN__TM_PROCESS_MAX_AGE_MS old; the start time once. */
void fdn__tm_process_read(fdn__tm_process_t *out);

/* The same without the CPU time (cpu_seconds -1: the caller reads it with
 * fdn__tm_process_cpu, or shares a read). */
void fdn__tm_process_read_proc(fdn__tm_process_t *out);

/* User + system CPU time of the process now (getrusage, s), -1 if it cannot be read. */
double fdn__tm_process_cpu(void);

/* Runnable kernel scheduling entities of the machine now (/proc/loadavg), -1 if unknown. */
double fdn__tm_run_queue(void);

#endif
