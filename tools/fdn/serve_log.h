/* fdn serve: structured log lines on stderr (text key=value or JSON, one line per event). */
#ifndef FDN_CLI_SERVE_LOG_H
#define FDN_CLI_SERVE_LOG_H

#include <stdbool.h>

typedef enum serve_log_level {
    SERVE_LOG_DEBUG = 0,
    SERVE_LOG_INFO,
    SERVE_LOG_WARN,
    SERVE_LOG_ERROR,
} serve_log_level_t;

/* Configure once, before any thread logs. Returns 0, or -1 for an unknown name (then
 * nothing changes). Defaults: text, info. */
int serve_log_set_format(const char *name); /* "text" | "json" */
int serve_log_set_level(const char *name);  /* "debug" | "info" | "warn" | "error" */
bool serve_log_json(void);
bool serve_log_enabled(serve_log_level_t level);

/* One line: time, level, event name, message, then NULL-terminated key, value string pairs.
 * In JSON a value that is a JSON number, true, false, an object or an array is embedded as
 * such (pass JSON text), anything else becomes a string. Any thread; one write per line. */
void serve_log(serve_log_level_t level, const char *event, const char *msg, ...)
    __attribute__((sentinel));
/* The same, forced past the level filter (the access log is its own switch). */
void serve_log_always(serve_log_level_t level, const char *event, const char *msg, ...)
    __attribute__((sentinel));

#endif
