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

/* Read them: CPU time now (getrusage); the /proc figures and the fd limit at most
 * FDN__TM_PROCESS_MAX_AGE_MS old; the start time once. */
void fdn__tm_process_read(fdn__tm_process_t *out);

/* Runnable kernel scheduling entities of the machine now (/proc/loadavg), -1 if unknown. */
double fdn__tm_run_queue(void);

#endif
