/**
 * @file error.h
 * @brief Error codes, the reference's error taxonomy, caller-owned error detail, and the
 *        thread-local error context (operation, correlation id, breadcrumbs).
 *
 * Every fallible function returns 0 (FDN_OK) or a negative FDN_E* code. Where a POSIX
 * meaning exists the code is -errno; project codes are below -1000. Each code maps to one
 * row of the reference's taxonomy (reference-behaviour.md §7.2/§7.4): a positive reference
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

/** Severity of an error (reference §7.1). */
typedef enum fdn_severity {
    FDN_SEV_LOW = 0,
    FDN_SEV_MEDIUM,
    FDN_SEV_HIGH,
    FDN_SEV_CRITICAL,
} fdn_severity_t;

/** Retry strategy of an error (reference §7.2/§7.3). */
typedef enum fdn_retry {
    FDN_RETRY_NO_RETRY = 0,
    FDN_RETRY_IMMEDIATE,
    FDN_RETRY_FIXED_DELAY,
    FDN_RETRY_EXPONENTIAL_BACKOFF,
} fdn_retry_t;

/*
 * The one table of codes.
 * X(NAME, value, ref_code, type, category, subcategory, severity, retry, default message)
 * Reference codes from the table-driven definitions (§7.2) are used wherever the type has a
 * row there; the module-specific ad-hoc codes (§7.4) are kept where the type has none
 * (1000/1005 security_violation, 2003 data_too_large, 2004 invalid_event_type,
 * 4001 operation_not_supported, 5001 service_not_found, 5003-5005, 6001, 6003).
 * Types the reference left without any code get new codes: 1302-1304, 2103-2104, 2202,
 * 2402, 5020-5021.
 */
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
      NO_RETRY, "Rate limiter backend failure")                                              \
    X(EPOOL_BROKEN, -1601, 5030, "pool_worker_broken", "external", "connection_pool", MEDIUM,     \
      IMMEDIATE, "Pooled worker is broken")

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
    int code;                 /**< FDN_E* value */
    int ref_code;             /**< reference numeric code, e.g. 1401 */
    const char *name;         /**< "FDN_ECONFIG_FORBIDDEN" */
    const char *type;         /**< "config_update_forbidden" */
    const char *category;     /**< "config" */
    const char *subcategory;  /**< "runtime" */
    fdn_severity_t severity;  /**< severity */
    fdn_retry_t retry;        /**< retry strategy */
    const char *message;      /**< default message */
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

/** Number of rows in the table, and the i-th row (for tests and documentation tools). */
FDN_API size_t fdn_err_count(void);
/** @return the i-th row, or NULL when i >= fdn_err_count(). @thread_safety any */
FDN_API const fdn_err_info_t *fdn_err_at(size_t i);

/** "low", "medium", "high", "critical". @thread_safety any */
FDN_API const char *fdn_severity_name(fdn_severity_t s);
/** "no_retry", "immediate", "fixed_delay", "exponential_backoff". @thread_safety any */
FDN_API const char *fdn_retry_name(fdn_retry_t r);

/**
 * The reference's retry-strategy rule (§7.3), first match wins: type timeout or network_error
 * → exponential_backoff; external_service_error → fixed_delay; severity critical → no_retry;
 * severity high → immediate; type invalid_config_value or data_corruption → no_retry;
 * resource_exhausted → immediate; otherwise fixed_delay.
 * @thread_safety any
 */
FDN_API fdn_retry_t fdn_retry_rule(const char *type, fdn_severity_t severity);

/** Sentinel returned by fdn_retry_delay_ms for no_retry ("infinity"). */
#define FDN_RETRY_NEVER INT64_MAX

/**
 * Delay before retry number `attempt` (0-based) for a strategy (§7.3):
 * exponential_backoff → min(1000·2^attempt, 30000); fixed_delay → 1000; immediate → 0;
 * no_retry → FDN_RETRY_NEVER. Never negative; a negative attempt counts as 0.
 * @thread_safety any
 */
FDN_API int64_t fdn_retry_delay_ms(fdn_retry_t strategy, int attempt);

/** True when the code's retry strategy is not no_retry (reference is_retryable). */
FDN_API bool fdn_err_retryable(int code);
/** True when the code's severity is high or critical (reference should_escalate). */
FDN_API bool fdn_err_should_escalate(int code);

/* ------------------------------------------------------------------------------------------
 * Caller-owned error detail
 * ------------------------------------------------------------------------------------------ */

#define FDN_ERR_MSG_MAX     256
#define FDN_ERR_CONTEXT_MAX 512
#define FDN_ERR_CRUMBS_MAX  512
#define FDN_UUID_STR_LEN    36

/**
 * Error detail, owned by the caller (usually on the stack) and filled without allocating.
 * Functions that take a trailing `fdn_error_t *err` leave it untouched on success and accept
 * NULL. All `const char *` fields point to static strings.
 */
typedef struct fdn_error {
    int code;                   /**< FDN_E* code, 0 when unset */
    int ref_code;               /**< reference numeric code (§7.2), e.g. 1401 */
    const char *type;           /**< reference error type, e.g. "config_update_forbidden" */
    const char *category;       /**< e.g. "config" */
    const char *subcategory;    /**< e.g. "runtime" */
    fdn_severity_t severity;    /**< severity */
    fdn_retry_t retry;          /**< retry strategy */
    int sys_errno;              /**< errno observed at the failure, 0 if none */
    int64_t timestamp_ns;       /**< wall-clock time of the failure, ns since the epoch */
    int64_t duration_ns;        /**< duration of the operation in context, 0 if none */
    char message[FDN_ERR_MSG_MAX];         /**< human-readable message */
    char context[FDN_ERR_CONTEXT_MAX];     /**< "key=value key2=value2" details */
    char correlation_id[FDN_UUID_STR_LEN + 1]; /**< from the thread's error context, or "" */
    char breadcrumbs[FDN_ERR_CRUMBS_MAX];  /**< "mod.fn (3ms ago) -> mod.fn2 (1ms ago)" */
} fdn_error_t;

/** Static initializer for an empty error. */
#define FDN_ERROR_INIT {0}

/**
 * Fill `err` for `code` with its taxonomy row, a printf-formatted message (the default
 * message when fmt is NULL), the wall-clock timestamp, and the correlation id and
 * breadcrumbs of the calling thread's current error context, if any. The context text is
 * cleared. Accepts err == NULL (then only returns code).
 * @return code, so callers can write `return fdn_err_set(err, rc, "...")`.
 * @thread_safety any
 * @since 0.1.0
 */
FDN_API int fdn_err_set(fdn_error_t *err, int code, const char *fmt, ...) FDN_PRINTF(3, 4);

/** fdn_err_set with a va_list. */
FDN_API int fdn_err_setv(fdn_error_t *err, int code, const char *fmt, va_list ap)
    FDN_PRINTF(3, 0);

/**
 * Append "key=value" (value printf-formatted) to err->context, separated by a space;
 * values containing spaces are quoted. Text that does not fit is cut at a character
 * boundary and ends with "...". No-op when err is NULL.
 * @thread_safety any (on distinct err objects)
 */
FDN_API void fdn_err_add_context(fdn_error_t *err, const char *key, const char *fmt, ...)
    FDN_PRINTF(3, 4);

/**
 * Reference to_string form: "[<ref_code>:<type>] <message>" + " | Context: <context>" when
 * the context is non-empty + " | Severity: <severity>".
 * @return the length the full text needs (like snprintf); output is always NUL-terminated
 *         when cap > 0.
 * @thread_safety any
 */
FDN_API size_t fdn_err_format(const fdn_error_t *err, char *buf, size_t cap);

/**
 * JSON object with every field: code, ref_code, name, type, category, subcategory, severity,
 * retry_strategy, message, context, correlation_id, breadcrumbs, timestamp_ns, duration_ns.
 * @return the length the full text needs (like snprintf); always NUL-terminated when cap > 0.
 * @thread_safety any
 */
FDN_API size_t fdn_err_to_json(const fdn_error_t *err, char *buf, size_t cap);

/**
 * Write a fresh UUID version 4 (122 bits from getrandom) as 36 lowercase characters plus
 * NUL into out.
 * @return 0, or FDN_EIO when the kernel's random source fails.
 * @thread_safety any
 */
FDN_API int fdn_uuid4(char out[FDN_UUID_STR_LEN + 1]);

FDN_END_DECLS

#endif /* FDN_ERROR_H */
