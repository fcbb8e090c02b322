/**
 * @file error.h
 * @brief Error codes, the reference's error taxonomy, caller-owned error detail, and the
 *        thread-local error context (operation, correlation id, breadcrumbs).
 *
 * Every fallible function returns 0 (FDN_OK) or a negative FDN_E* code. Where a POSIX
 * meaning exists the code is -errno; project codes are below -1000. Each code maps to one
 * row of the reference's taxonomy (docs/errors.md): a positive reference
 * numeric code, type name, category, subcategory, severity, retry strategy and default
 * message. Codes are appended, never renumbered.
 *
 * @since 0.1.0
 */
#ifndef FDN_ERROR_H
#define FDN_ERROR_H

#include <errno.h>
#include <stdarg.h>
#include "common.h"

FDN_BEGIN_DECLS

/** Severity of an error (docs/errors.md). */
typedef enum fdn_severity {
    FDN_SEV_LOW = 0,
    FDN_SEV_MEDIUM,
    FDN_SEV_HIGH,
    FDN_SEV_CRITICAL,
} fdn_severity_t;

/** Retry strategy of an error (docs/errors.md). */
typedef enum fdn_retry {
    FDN_RETRY_NO_RETRY = 0,
    FDN_RETRY_IMMEDIATE,
    FDN_RETRY_FIXED_DELAY,
    FDN_RETRY_EXPONENTIAL_BACKOFF,
} fdn_retry_t;

/*
 * The one table of codes.
 * X(NAME, value, ref_code, type, category, subcategory, severity, retry, default message)
 * Reference codes from the table-driven definitions are used wherever the type has a
 * row there; the module-specific ad-hoc codes are kept where the type has none
 * (1000/1005 security_violation, 2003 data_too_large, 2004 invalid_event_type,
 * 4001 operation_not_supported, 5001 service_not_found, 5003-5005, 6001, 6003).
 * Types the reference left without any code get new codes: 1302-1304, 2103-2104, 2202,
 * 2402, 5020-5021, 5030.
 */
/* clang-format off */
/** X-macro table of the error codes that mirror errno values: X(name, value, reference code, type, category, subcategory, severity, retry strategy, message). */
#define FDN_ERRNO_MAP(X)                                                                          \
    X(EINVAL, -EINVAL, 3204, "invalid_input", "data", "validation", LOW, FIXED_DELAY,             \
      "Invalid input provided")                                                                   \
    X(ENOMEM, -ENOMEM, 2201, "resource_exhausted", "system", "resources", HIGH, IMMEDIATE,        \
      "System resources exhausted")                                                               \
    X(EAGAIN, -EAGAIN, 2201, "resource_exhausted", "system", "resources", HIGH, IMMEDIATE,        \
      "Resource temporarily unavailable, try again")                                              \
    X(EBUSY, -EBUSY, 2201, "resource_exhausted", "system", "resources", HIGH, IMMEDIATE,          \
      "Resource busy")                                                                            \
    X(ENOSPC, -ENOSPC, 2201, "resource_exhausted", "system", "resources", HIGH, IMMEDIATE,        \
      "No space left for the operation")                                                          \
    X(ETIMEDOUT, -ETIMEDOUT, 4301, "timeout", "external", "timeout", MEDIUM, EXPONENTIAL_BACKOFF, \
      "Operation timeout")                                                                        \
    X(ENOENT, -ENOENT, 3401, "data_not_found", "data", "not_found", LOW, FIXED_DELAY,             \
      "Requested data not found")                                                                 \
    X(EEXIST, -EEXIST, 5020, "already_exists", "system", "discovery", MEDIUM, FIXED_DELAY,        \
      "Entry already exists")                                                                     \
    X(ECANCELED, -ECANCELED, 2402, "operation_cancelled", "system", "runtime", MEDIUM,            \
      FIXED_DELAY, "Operation cancelled")                                                         \
    X(ENOBUFS, -ENOBUFS, 2202, "buffer_too_small", "system", "resources", LOW, FIXED_DELAY,       \
      "Output buffer too small")                                                                  \
    X(EPERM, -EPERM, 7002, "operation_forbidden", "security", "authorization", HIGH, IMMEDIATE,   \
      "Operation forbidden")                                                                      \
    X(EACCES, -EACCES, 4401, "authentication_failed", "external", "auth", HIGH, IMMEDIATE,        \
      "Authentication failed")                                                                    \
    X(ENOTSUP, -ENOTSUP, 4001, "operation_not_supported", "security", "access_control", MEDIUM,   \
      FIXED_DELAY, "Operation not supported")                                                     \
    X(EIO, -EIO, 2301, "dependency_failed", "system", "dependencies", HIGH, IMMEDIATE,            \
      "Input/output error in a required dependency")                                              \
    X(ECONNREFUSED, -ECONNREFUSED, 4101, "network_error", "external", "network", MEDIUM,          \
      EXPONENTIAL_BACKOFF, "Network communication error")

/** X-macro table of the project's own error codes, same columns as FDN_ERRNO_MAP. */
#define FDN_PROJECT_MAP(X)                                                                        \
    X(EUNKNOWN, -1001, 9999, "unknown", "unknown", "unknown", MEDIUM, FIXED_DELAY,                \
      "Unknown error")                                                                            \
    X(EINTERNAL, -1002, 2401, "internal_error", "system", "runtime", CRITICAL, NO_RETRY,          \
      "Internal system error")                                                                    \
    X(EUNAVAILABLE, -1003, 2102, "service_unavailable", "system", "initialization", HIGH,         \
      IMMEDIATE, "Required service unavailable")                                                  \
    X(ESHUTDOWN, -1004, 2103, "service_shutdown", "system", "initialization", HIGH, IMMEDIATE,    \
      "Service is shut down")                                                                     \
    X(EINIT, -1005, 2101, "initialization_failed", "system", "initialization", CRITICAL,          \
      NO_RETRY, "System initialization failed")                                                   \
    X(EDEPENDENCY, -1006, 2301, "dependency_failed", "system", "dependencies", HIGH, IMMEDIATE,   \
      "Required dependency failed")                                                               \
    X(EESCALATED, -1007, 2104, "restart_intensity_exceeded", "system", "supervision", CRITICAL,   \
      NO_RETRY, "Restart intensity exceeded, runtime stopped")                                    \
    X(ESERVICE_NOT_FOUND, -1008, 5001, "service_not_found", "system", "discovery", MEDIUM,        \
      FIXED_DELAY, "Service not found")                                                           \
    X(EUNHEALTHY, -1009, 5021, "health_check_failed", "system", "health", HIGH, IMMEDIATE,        \
      "Health check failed")                                                                      \
    X(ECONFIG_STRUCTURE, -1101, 1101, "invalid_config_structure", "config", "structure", HIGH,    \
      IMMEDIATE, "Configuration structure is invalid")                                            \
    X(ECONFIG_MISSING, -1102, 1102, "missing_required_field", "config", "structure", HIGH,        \
      IMMEDIATE, "Required configuration field missing")                                          \
    X(ECONFIG_INVALID, -1103, 1201, "invalid_config_value", "config", "validation", MEDIUM,       \
      NO_RETRY, "Configuration value failed validation")                                          \
    X(ECONFIG_CONSTRAINT, -1104, 1202, "constraint_violation", "config", "validation", MEDIUM,    \
      FIXED_DELAY, "Configuration constraint violated")                                           \
    X(ECONFIG_RANGE, -1105, 1203, "range_error", "config", "validation", LOW, FIXED_DELAY,        \
      "Value outside acceptable range")                                                           \
    X(ECONFIG_NOT_FOUND, -1106, 1301, "config_not_found", "config", "access", HIGH, IMMEDIATE,    \
      "Configuration not found")                                                                  \
    X(ECONFIG_PATH_NOT_FOUND, -1107, 1302, "config_path_not_found", "config", "access", MEDIUM,   \
      FIXED_DELAY, "Configuration path not found")                                                \
    X(ECONFIG_INVALID_PATH, -1108, 1304, "invalid_path", "config", "validation", MEDIUM,          \
      FIXED_DELAY, "Invalid configuration path")                                                  \
    X(ECONFIG_FORBIDDEN, -1109, 1401, "config_update_forbidden", "config", "runtime", MEDIUM,     \
      FIXED_DELAY, "Configuration update not allowed")                                            \
    X(ECONFIG_UNAVAILABLE, -1110, 1303, "config_unavailable", "config", "access", MEDIUM,         \
      FIXED_DELAY, "Configuration service unavailable")                                           \
    X(EPATH_SECURITY, -1111, 1000, "security_violation", "config", "security", HIGH, IMMEDIATE,   \
      "Configuration path rejected by security rule")                                             \
    X(EVALUE_SECURITY, -1112, 1005, "security_violation", "config", "security", HIGH, IMMEDIATE,  \
      "Configuration value rejected by security rule")                                            \
    X(ESERIALIZE, -1201, 3101, "serialization_failed", "data", "serialization", MEDIUM,           \
      FIXED_DELAY, "Data serialization failed")                                                   \
    X(EDESERIALIZE, -1202, 3102, "deserialization_failed", "data", "serialization", MEDIUM,       \
      FIXED_DELAY, "Data deserialization failed")                                                 \
    X(ETYPE_MISMATCH, -1203, 3201, "type_mismatch", "data", "validation", LOW, FIXED_DELAY,       \
      "Data type mismatch")                                                                       \
    X(EPARSE, -1204, 3202, "format_error", "data", "validation", LOW, FIXED_DELAY,                \
      "Data format error")                                                                        \
    X(EVALIDATION, -1205, 3203, "validation_failed", "data", "validation", MEDIUM, FIXED_DELAY,   \
      "Data validation failed")                                                                   \
    X(ECORRUPT, -1206, 3301, "data_corruption", "data", "corruption", CRITICAL, NO_RETRY,         \
      "Data corruption detected")                                                                 \
    X(ETOO_LARGE, -1207, 2003, "data_too_large", "data", "validation", HIGH, IMMEDIATE,           \
      "Data too large")                                                                           \
    X(EEVENT_TYPE, -1208, 2004, "invalid_event_type", "data", "validation", MEDIUM, FIXED_DELAY,  \
      "Invalid event type")                                                                       \
    X(ENETWORK, -1301, 4101, "network_error", "external", "network", MEDIUM, EXPONENTIAL_BACKOFF, \
      "Network communication error")                                                              \
    X(EEXTERNAL, -1302, 4201, "external_service_error", "external", "service", MEDIUM,            \
      FIXED_DELAY, "External service error")                                                      \
    X(ECIRCUIT_OPEN, -1401, 5004, "circuit_breaker_blown", "external", "circuit_breaker", MEDIUM, \
      FIXED_DELAY, "Circuit breaker is open")                                                     \
    X(EBREAKER_NOT_FOUND, -1402, 5005, "circuit_breaker_not_found", "external",                   \
      "circuit_breaker", HIGH, IMMEDIATE, "Circuit breaker not found")                            \
    X(EPROTECTED_FAILED, -1403, 5003, "protected_operation_failed", "external",                   \
      "circuit_breaker", MEDIUM, FIXED_DELAY, "Protected operation failed")                       \
    X(ERATE_LIMITED, -1501, 6001, "rate_limit_exceeded", "external", "rate_limit", MEDIUM,        \
      FIXED_DELAY, "Rate limit exceeded")                                                         \
    X(ELIMITER, -1502, 6003, "rate_limiter_exception", "external", "rate_limit", CRITICAL,        \
      NO_RETRY, "Rate limiter backend failure")                                                    \
    X(EPOOL_BROKEN, -1601, 5030, "pool_worker_broken", "external", "connection_pool", MEDIUM,     \
      FIXED_DELAY, "Pooled worker is broken")

/* clang-format on */

/** Every code, POSIX-valued first, then project codes. */
#define FDN_ERROR_MAP(X) FDN_ERRNO_MAP(X) FDN_PROJECT_MAP(X)

/** The error codes. */
enum fdn_error_code {
#define FDN__ERR_ENUM(name, val, ref, type, cat, sub, sev, retry, msg) FDN_##name = (val),
    FDN_ERROR_MAP(FDN__ERR_ENUM)
#undef FDN__ERR_ENUM
};

/** A code's row in the reference taxonomy. All strings are static. */
typedef struct fdn_err_info {
    int code;                /**< FDN_E* value */
    int ref_code;            /**< reference numeric code, e.g. 1401 */
    const char *name;        /**< "FDN_ECONFIG_FORBIDDEN" */
    const char *type;        /**< "config_update_forbidden" */
    const char *category;    /**< "config" */
    const char *subcategory; /**< "runtime" */
    fdn_severity_t severity; /**< severity */
    fdn_retry_t retry;       /**< retry strategy */
    const char *message;     /**< default message */
} fdn_err_info_t;

/**
 * The taxonomy row of a code. Unknown codes (including positive ones) get the
 * `unknown` row (reference code 9999).
 * @return a static row, never NULL.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const fdn_err_info_t *fdn_err_info(int code);

/**
 * Default message of a code, e.g. "Configuration update not allowed". Never NULL; FDN_OK
 * gives "Success".
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_strerror(int code);

/**
 * Symbolic name of a code, e.g. "FDN_ECONFIG_FORBIDDEN". Never NULL; FDN_OK gives
 * "FDN_OK", an unknown code "FDN_EUNKNOWN".
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_err_name(int code);

/**
 * Number of rows in the code table (every FDN_E* code, FDN_OK excluded), for tests and
 * documentation tools that walk it with fdn_err_at.
 * @return the row count, constant for the library's lifetime.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_err_count(void);

/**
 * The i-th row of the code table, in table order.
 * @param[in] i  row index, 0 <= i < fdn_err_count()
 * @return a static row, or NULL when i >= fdn_err_count().
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const fdn_err_info_t *fdn_err_at(size_t i);

/**
 * Static name of a severity: "low", "medium", "high" or "critical".
 * @param[in] s  the severity
 * @return a static string, never NULL ("medium" for a value outside the enum).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_severity_name(fdn_severity_t s);
/**
 * Static name of a retry strategy: "no_retry", "immediate", "fixed_delay" or
 * "exponential_backoff".
 * @param[in] r  the strategy
 * @return a static string, never NULL ("fixed_delay" for a value outside the enum).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API const char *fdn_retry_name(fdn_retry_t r);

/**
 * The reference's retry-strategy rule, first match wins: type timeout or network_error
 * → exponential_backoff; external_service_error → fixed_delay; severity critical → no_retry;
 * severity high → immediate; type invalid_config_value or data_corruption → no_retry;
 * resource_exhausted → immediate; otherwise fixed_delay.
 * @param[in] type      reference error type, e.g. "timeout" (NULL: no type rule matches)
 * @param[in] severity  the error's severity
 * @return the strategy.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API fdn_retry_t fdn_retry_rule(const char *type, fdn_severity_t severity);

/** Sentinel returned by fdn_retry_delay_ms for no_retry ("infinity"). */
#define FDN_RETRY_NEVER INT64_MAX

/**
 * Delay before retry number `attempt` (0-based) for a strategy:
 * exponential_backoff → min(1000·2^attempt, 30000); fixed_delay → 1000; immediate → 0;
 * no_retry → FDN_RETRY_NEVER. Never negative; a negative attempt counts as 0.
 * @param[in] strategy  the retry strategy
 * @param[in] attempt   0 for the first retry, then 1, 2...
 * @return the delay in milliseconds, or FDN_RETRY_NEVER.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int64_t fdn_retry_delay_ms(fdn_retry_t strategy, int attempt);

/**
 * Whether an error with this code may be retried (reference is_retryable).
 * @param[in] code  an FDN_E* code (unknown codes use the `unknown` row)
 * @return true when the code's retry strategy is not no_retry.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_err_retryable(int code);

/**
 * Whether an error with this code should be escalated (reference should_escalate).
 * @param[in] code  an FDN_E* code (unknown codes use the `unknown` row)
 * @return true when the code's severity is high or critical.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API bool fdn_err_should_escalate(int code);

/* ------------------------------------------------------------------------------------------
 * Caller-owned error detail
 * ------------------------------------------------------------------------------------------ */

/** Capacity of fdn_error_t.message, NUL included. */
#define FDN_ERR_MSG_MAX     256
/** Capacity of fdn_error_t.context, NUL included. */
#define FDN_ERR_CONTEXT_MAX 512
/** Capacity of the breadcrumb text of an error context, NUL included. */
#define FDN_ERR_CRUMBS_MAX  512
/** Length of a UUID in text form (8-4-4-4-12), without the NUL. */
#define FDN_UUID_STR_LEN    36

/**
 * Error detail, owned by the caller (usually on the stack) and filled without allocating.
 * Functions that take a trailing `fdn_error_t *err` leave it untouched on success and accept
 * NULL. All `const char *` fields point to static strings.
 */
typedef struct fdn_error {
    int code;                          /**< FDN_E* code, 0 when unset */
    int ref_code;                      /**< reference numeric code, e.g. 1401 */
    const char *type;                  /**< reference error type, e.g. "config_update_forbidden" */
    const char *category;              /**< e.g. "config" */
    const char *subcategory;           /**< e.g. "runtime" */
    fdn_severity_t severity;           /**< severity */
    fdn_retry_t retry;                 /**< retry strategy */
    int sys_errno;                     /**< errno observed at the failure, 0 if none */
    int64_t timestamp_ns;              /**< wall-clock time of the failure, ns since the epoch */
    int64_t duration_ns;               /**< duration of the operation in context, 0 if none */
    char message[FDN_ERR_MSG_MAX];     /**< human-readable message */
    char context[FDN_ERR_CONTEXT_MAX]; /**< "key=value key2=value2" details */
    char correlation_id[FDN_UUID_STR_LEN + 1]; /**< from the thread's error context, or "" */
    char breadcrumbs[FDN_ERR_CRUMBS_MAX];      /**< "mod.fn (3ms ago) -> mod.fn2 (1ms ago)" */
} fdn_error_t;

/** Static initializer for an empty error. */
#define FDN_ERROR_INIT                                                                             \
    {                                                                                              \
        0                                                                                          \
    }

/**
 * Fill `err` for `code` with its taxonomy row, a printf-formatted message (the default
 * message when fmt is NULL), the wall-clock timestamp, and the correlation id and
 * breadcrumbs of the calling thread's current error context, if any. The context text is
 * cleared. The format's arguments may point into err itself (wrapping its old message:
 * `fdn_err_set(err, code, "loading: %s", err->message)`): they are read before err is
 * cleared. Accepts err == NULL (then only returns code).
 * @return code, so callers can write `return fdn_err_set(err, rc, "...")`.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_err_set(fdn_error_t *err, int code, const char *fmt, ...) FDN_PRINTF(3, 4);

/**
 * fdn_err_set taking a va_list, for functions that wrap it with their own format arguments.
 * @param[out] err   the error to fill, or NULL
 * @param[in]  code  an FDN_E* code
 * @param[in]  fmt   printf format of the message, or NULL for the code's default message
 * @param[in]  ap    the format's arguments (consumed)
 * @return code.
 * @thread_safety any (on distinct err objects)
 * @since 0.1.0
 */
FDN_API int fdn_err_setv(fdn_error_t *err, int code, const char *fmt, va_list ap) FDN_PRINTF(3, 0);

/**
 * Append "key=value" (value printf-formatted) to err->context, separated by a space, in
 * logfmt style: a value that is empty or holds a space, a tab or '"' is quoted, and inside the
 * quotes '"' and '\' are escaped with '\' (the value  a"b c  is written  key="a\"b c"), so
 * the text reads back exactly; other values are written as they are. Text that does not fit
 * is cut at a character boundary and ends with "...". No-op when err is NULL.
 * @param[in,out] err  the error, or NULL
 * @param[in]     key  the key (not quoted; keep it a plain word)
 * @param[in]     fmt  printf format of the value
 * @thread_safety any (on distinct err objects)
 * @since 0.1.0
 */
FDN_API void fdn_err_add_context(fdn_error_t *err, const char *key, const char *fmt, ...)
    FDN_PRINTF(3, 4);

/**
 * Read the next key=value item of an error's context text, as fdn_err_add_context wrote it:
 * the value's quotes and escapes undone. Start with `const char *pos = err->context;` and call
 * until it returns false.
 * @param[in,out] pos   where to read; moved past the item read
 * @param[out]    key   the key, NUL-terminated (kcap bytes)
 * @param[in]     kcap  size of key
 * @param[out]    val   the value, NUL-terminated (vcap bytes; FDN_ERR_CONTEXT_MAX holds any)
 * @param[in]     vcap  size of val
 * @param[out]    vlen  the value's length, or NULL
 * @return true and the item; false at the end of the text, or at text this library does not
 *         write (no '=', a key holding a space or longer than kcap - 1, a value longer than
 *         vcap - 1), and nothing after it is read. A value cut short by a full context text
 *         runs to the end of the text.
 * @thread_safety any  @since 0.1.0
 */
FDN_API bool fdn_err_context_next(const char **pos, char *key, size_t kcap, char *val, size_t vcap,
                                  size_t *vlen);

/**
 * Reference to_string form: "[<ref_code>:<type>] <message>" + " | Context: <context>" when
 * the context is non-empty + " | Severity: <severity>".
 * @param[in]  err  the error; NULL gives an empty string and returns 0
 * @param[out] buf  destination, may be NULL when cap is 0
 * @param[in]  cap  size of buf in bytes
 * @return the length the full text needs (like snprintf); output is always NUL-terminated
 *         when cap > 0.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_err_format(const fdn_error_t *err, char *buf, size_t cap);

/**
 * JSON object with every field: code, ref_code, name, type, category, subcategory, severity,
 * retry_strategy, message, context, correlation_id, breadcrumbs, timestamp_ns, duration_ns.
 * Strings are JSON-escaped (quote, backslash, control characters); bytes that are not valid
 * UTF-8 (the message and context may hold caller text) are replaced by U+FFFD, so the text is
 * valid JSON whatever the error holds.
 * @param[in]  err  the error
 * @param[out] buf  destination, may be NULL when cap is 0
 * @param[in]  cap  size of buf in bytes
 * @return the length the full text needs (like snprintf); always NUL-terminated when cap > 0.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_err_to_json(const fdn_error_t *err, char *buf, size_t cap);

/**
 * Write a fresh UUID version 4 (122 bits from getrandom) as 36 lowercase characters plus
 * NUL into out.
 * @param[out] out  37-byte buffer
 * @return 0, or FDN_EIO when the kernel's random source fails.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_uuid4(char out[FDN_UUID_STR_LEN + 1]);

/**
 * Recovery actions of the reference for a code's error type: up to `cap` static
 * strings are stored in `out`. config_not_found, invalid_config_value, service_unavailable,
 * resource_exhausted, network_error, timeout and data_corruption have their own lists; every
 * other type gets "Check logs for details", "Review error context", "Contact support if
 * needed". When `operation` and `opbuf` are both given (opcap > 0), "Review <operation>
 * implementation" is appended (written into `opbuf`, cut at a character boundary when it does
 * not fit; opbuf must stay alive as long as `out` is used); without opbuf it is neither stored
 * nor counted, so every action counted is stored when the count is at most cap.
 * @param[in]  code      an FDN_E* code
 * @param[in]  operation the context's `operation` value, or NULL
 * @param[out] out       array receiving static strings (and opbuf for the last one)
 * @param[in]  cap       capacity of out
 * @param[out] opbuf     buffer for the "Review X implementation" text, or NULL (then that
 *                       action is left out)
 * @param[in]  opcap     capacity of opbuf
 * @return the number of actions available (may exceed cap; only cap are stored).
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_err_recovery_actions(int code, const char *operation, const char **out,
                                        size_t cap, char *opbuf, size_t opcap);

/**
 * The reference's error-count metric name for an error (collect_error_metrics):
 * "foundation.errors.<category>.<subcategory>".
 * @param[out] err optional error detail (may be NULL)
 * @param[out] buf output buffer
 * @param[in] cap capacity of buf in bytes
 * @return the length the full text needs (like snprintf); NUL-terminated when cap > 0.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API size_t fdn_err_metric_name(const fdn_error_t *err, char *buf, size_t cap);

/* ------------------------------------------------------------------------------------------
 * Error context (docs/errors.md)
 *
 * Each thread has a fixed-size STACK of error contexts. A context has a module and function
 * name, an operation id (unique 64-bit, never reused within the process), a correlation id
 * (UUIDv4 text), bounded key=value metadata, a start time (system monotonic clock, ns) and a
 * bounded ring of breadcrumbs ({module, function, time}). Pushing while a context is current
 * makes a CHILD: new operation id, same correlation id, the parent's metadata and breadcrumbs
 * plus one new crumb. Popping restores the outer context exactly (the reference cleared it).
 * Push and pop never allocate: everything lives in thread-local fixed arrays. fdn_err_set()
 * copies the current context's correlation id, breadcrumbs and duration into the error.
 * Strings longer than their field are cut (at a UTF-8 boundary).
 * ------------------------------------------------------------------------------------------ */

#define FDN_ERRCTX_DEPTH_MAX  16 /**< contexts per thread stack */
#define FDN_ERRCTX_META_MAX   8  /**< metadata pairs per context */
#define FDN_ERRCTX_CRUMBS_MAX 16 /**< breadcrumbs kept per context (oldest dropped) */
#define FDN_ERRCTX_NAME_MAX   32 /**< bytes kept of a module or function name, incl. NUL */
#define FDN_ERRCTX_KEY_MAX    24 /**< bytes kept of a metadata key, incl. NUL */
#define FDN_ERRCTX_VALUE_MAX  48 /**< bytes kept of a metadata value, incl. NUL */

/**
 * Called once for every failure caught by fdn_errctx_run() (the reference's
 * collect_error_metrics). Telemetry plugs in here: count
 * `foundation.errors.<category>.<subcategory>` (fdn_err_metric_name) with metadata
 * error_type = err->type, severity = fdn_severity_name(err->severity), code = err->ref_code.
 * Runs on the thread that called fdn_errctx_run, with no fdn lock held; must not call
 * fdn_errctx_run recursively for long chains (it may, but each level counts again).
 */
typedef void (*fdn_errctx_hook_fn)(const fdn_error_t *err, void *user);

/**
 * Push a context for (module, function) on the calling thread. With a current context the
 * new one is its child (inherits correlation id, metadata, breadcrumbs, hook; adds a crumb);
 * otherwise it is a root with a fresh correlation id and one crumb.
 * @param[in] module    module name (e.g. "Config"); NULL is stored as ""
 * @param[in] function  function name (e.g. "update"); NULL is stored as ""
 * @return 0; FDN_ENOSPC when the thread already holds FDN_ERRCTX_DEPTH_MAX contexts (nothing
 *         pushed: do not pop); FDN_EIO when the random source fails for a root.
 * @thread_safety any (acts on the calling thread only)
 * @since 0.1.0
 */
FDN_API int fdn_errctx_push(const char *module, const char *function);

/**
 * Push a ROOT context (the reference's ErrorContext.new), even when a context is current:
 * fresh operation id, empty metadata, one crumb, and the given correlation id (or a fresh
 * UUIDv4 when NULL). The outer context comes back on pop.
 * @param[in] correlation_id  text (cut to FDN_UUID_STR_LEN) or NULL for a fresh one
 * @param[in] module module name (NULL: "")
 * @param[in] function function name (NULL: "")
 * @return 0, FDN_ENOSPC (stack full, nothing pushed), FDN_EIO
 * @thread_safety any (calling thread)
 * @since 0.1.0
 */
FDN_API int fdn_errctx_push_root(const char *module, const char *function,
                                 const char *correlation_id);

/**
 * Pop the current context and make the outer one current again. No-op when the stack is
 * empty.
 * @thread_safety any (calling thread)
 * @since 0.1.0
 */
FDN_API void fdn_errctx_pop(void);

/** Number of contexts on the calling thread's stack (0 = no current context).
 * @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_errctx_depth(void);

/** Operation id of the current context, 0 when there is none. Ids come from a process-wide
 * atomic counter and are never 0. @thread_safety any  @since 0.1.0 */
FDN_API uint64_t fdn_errctx_operation_id(void);

/**
 * Copy the current correlation id into out.
 * @return 0, FDN_ENOENT when there is no current context (out is set to ""), or FDN_EINVAL
 *         when out is NULL.
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_errctx_correlation_id(char out[FDN_UUID_STR_LEN + 1]);

/** Nanoseconds since the current context was pushed (system monotonic clock); 0 when there
 * is none. @thread_safety any  @since 0.1.0 */
FDN_API int64_t fdn_errctx_duration_ns(void);

/**
 * Append a breadcrumb to the current context; when the ring is full the oldest crumb is
 * dropped and the dropped count grows.
 * @param[in] module module name (NULL: "")
 * @param[in] function function name (NULL: "")
 * @return 0, or FDN_ENOENT when there is no current context.
 * @thread_safety any (calling thread)  @since 0.1.0
 */
FDN_API int fdn_errctx_add_breadcrumb(const char *module, const char *function);

/** Breadcrumbs held by the current context (≤ FDN_ERRCTX_CRUMBS_MAX; 0 without context).
 * @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_errctx_breadcrumb_count(void);

/** Breadcrumbs the current context has dropped from its ring (inherited by children).
 * @thread_safety any  @since 0.1.0 */
FDN_API uint64_t fdn_errctx_breadcrumbs_dropped(void);

/**
 * Format the current context's breadcrumbs, oldest first, as
 * "Mod.fn (12ms ago) -> Mod2.fn2 (0ms ago)"; the ages are real milliseconds. When crumbs
 * were dropped the text starts with "... (N dropped) -> ". No context or no crumbs → "".
 * @param[out] buf output buffer
 * @param[in] cap capacity of buf in bytes
 * @return the length the full text needs (like snprintf); NUL-terminated when cap > 0.
 * @thread_safety any  @since 0.1.0
 */
FDN_API size_t fdn_errctx_format_breadcrumbs(char *buf, size_t cap);

/**
 * Set key=value (value printf-formatted) in the current context's metadata. An existing
 * key is overwritten (new value wins).
 * @param[in] key the metadata key: a plain word (no space, control byte, '=' or '"'), since it
 *                becomes a key of an error's context text (fdn_errctx_enhance)
 * @param[in] fmt printf format of the value (NULL: empty)
 * @return 0; FDN_ENOENT without a current context; FDN_ENOSPC when FDN_ERRCTX_META_MAX
 *         distinct keys are already set (nothing changed); FDN_EINVAL for a NULL or empty key
 *         or one that is not a plain word (nothing changed).
 * @thread_safety any (calling thread)  @since 0.1.0
 */
FDN_API int fdn_errctx_set_metadata(const char *key, const char *fmt, ...) FDN_PRINTF(2, 3);

/**
 * Copy the value of a metadata key of the current context into buf.
 * @param[in] key the metadata key
 * @param[out] buf output buffer
 * @param[in] cap capacity of buf in bytes
 * @return 0; FDN_ENOENT (no context or no such key); FDN_ENOBUFS when cap is too small
 *         (buf holds the cut value).
 * @thread_safety any  @since 0.1.0
 */
FDN_API int fdn_errctx_get_metadata(const char *key, char *buf, size_t cap);

/** Number of metadata pairs in the current context. @thread_safety any  @since 0.1.0 */
FDN_API size_t fdn_errctx_metadata_count(void);

/**
 * Set the error hook of the current context; children, captures and tasks submitted from
 * it inherit it. It takes precedence over the process-wide hook.
 * @param[in] fn the function
 * @param[in] user passed to fn
 * @return 0, or FDN_ENOENT without a current context.
 * @thread_safety any (calling thread)  @since 0.1.0
 */
FDN_API int fdn_errctx_set_context_hook(fdn_errctx_hook_fn fn, void *user);

/**
 * Set the process-wide error hook used when neither the call nor the context has one.
 * NULL removes it. `user` must stay valid until the hook is replaced and every
 * fdn_errctx_run in flight has returned.
 * @param[in] fn the function
 * @param[in] user passed to fn
 * @thread_safety any  @since 0.1.0
 */
FDN_API void fdn_errctx_set_error_hook(fdn_errctx_hook_fn fn, void *user);

/**
 * Add the current context to an error (the reference's enhance_error): the correlation id
 * and breadcrumbs when err has none yet, context "module=<m> function=<f> operation_id=<id>"
 * plus the context's metadata, and duration_ns. Code, message and existing context are kept.
 * @param[in,out] err  the error to enhance
 * @return 0; FDN_ENOENT without a current context (err untouched); FDN_EINVAL for NULL err.
 * @thread_safety any (calling thread)
 * @since 0.1.0
 */
FDN_API int fdn_errctx_enhance(fdn_error_t *err);

/** A function run inside a context: returns 0/positive on success, negative FDN_E* on
 * failure. */
typedef int (*fdn_errctx_fn)(void *arg);

/**
 * Run fn(arg) inside a context (module, function) pushed on the calling thread (a child of
 * the current one, if any) and pop it afterwards (the outer context is restored; the
 * reference's with_context). The return value passes through unchanged.
 * On a negative return r: if fn itself filled `err` with code r during the call, its message
 * and context are kept, otherwise err is set to r with the default message; then context
 * "module=<m> function=<f> operation_id=<id>" plus the context's metadata is appended, and the
 * correlation id, breadcrumbs and duration_ns (real ns) are filled; finally the error hook is
 * called once (the hook of this call if set via fdn_errctx_run_hooked, else the context's,
 * else the process-wide one) with that error, even when err is NULL.
 * On success err is untouched. When the stack is full fn still runs, without a new context.
 * Contexts fn left pushed are popped on return (on failure before err is filled, so err and
 * the hook describe the run's context, not the leaked ones); when fn popped the run's context
 * itself (a pop too many), err gets the context that is current after fn, as without one.
 * @param[in] module module name (NULL: "")
 * @param[in] function function name (NULL: "")
 * @param[in] fn the function
 * @param[in] arg passed to fn
 * @param[out] err optional error detail (may be NULL)
 * @return fn's return value.
 * @thread_safety any (calling thread)  @since 0.1.0
 */
FDN_API int fdn_errctx_run(const char *module, const char *function, fdn_errctx_fn fn, void *arg,
                           fdn_error_t *err);

/**
 * fdn_errctx_run with a per-call error hook (NULL falls back as in fdn_errctx_run). The
 * hook also becomes the context hook of the pushed context while fn runs (contexts and runs
 * nested in fn use it), but not of captures made in fn (so not of tasks submitted from fn),
 * which may be adopted after the call returned: they carry the hook the context had without
 * the call's. `hook_user` need only stay valid during the call.
 * @param[in] module module name (NULL: "")
 * @param[in] function function name (NULL: "")
 * @param[in] fn the function
 * @param[in] arg passed to fn
 * @param[out] err optional error detail (may be NULL)
 * @param[in] hook per-call error hook (NULL: context or process hook)
 * @param[in] hook_user passed to hook
 * @return fn's return value.
 * @thread_safety any (calling thread)  @since 0.1.0
 */
FDN_API int fdn_errctx_run_hooked(const char *module, const char *function, fdn_errctx_fn fn,
                                  void *arg, fdn_error_t *err, fdn_errctx_hook_fn hook,
                                  void *hook_user);

/** A copy of a context, to carry it to another thread. */
typedef struct fdn_errctx_capture fdn_errctx_capture_t;

/**
 * Copy the calling thread's current context (ids, metadata, breadcrumbs, hook, start time)
 * into a new capture object (the reference's spawn_with_context, first half). The hook is the
 * context's own (fdn_errctx_set_context_hook, inherited), never the per-call hook of an
 * fdn_errctx_run_hooked in progress.
 * @param[out] out  the capture, freed with fdn_errctx_capture_free; NULL on error
 * @return 0; FDN_ENOENT when there is no current context; FDN_ENOMEM; FDN_EINVAL when out is
 *         NULL.
 * @thread_safety any  @ownership caller frees *out  @since 0.1.0
 */
FDN_API int fdn_errctx_capture(fdn_errctx_capture_t **out);

/**
 * Push a captured context on the calling thread (any thread): it becomes current with the
 * same operation id, correlation id, metadata, breadcrumbs, hook and start time. Pop it with
 * fdn_errctx_pop. The capture stays owned by the caller and may be adopted many times.
 * @param[in] cap a capture from fdn_errctx_capture
 * @return 0; FDN_EINVAL when cap is NULL; FDN_ENOSPC when the stack is full (nothing pushed).
 * @thread_safety any (the capture may be adopted by several threads at once)  @since 0.1.0
 */
FDN_API int fdn_errctx_adopt(const fdn_errctx_capture_t *cap);

/** Free a capture (NULL accepted). @param[in] cap the capture @thread_safety owner  @since 0.1.0 */
FDN_API void fdn_errctx_capture_free(fdn_errctx_capture_t *cap);

FDN_END_DECLS

#endif /* FDN_ERROR_H */
