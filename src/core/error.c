/*
 * DESIGN: the error table and caller-owned error detail.
 *
 * No state: the table is generated from FDN_ERROR_MAP in error.h, lookups are a linear
 * scan over ~50 static rows (errors are not a hot path). fdn_err_set fills a caller-owned
 * struct without allocating; the thread's error context (error_context.c) contributes the
 * correlation id and breadcrumbs through fdn__errctx_fill().
 */
#include <fdn/error.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/ident.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/utf8.h"
#include "core/errctx.h"

#define SEV(x)   FDN_SEV_##x
#define RETRY(x) FDN_RETRY_##x

static const fdn_err_info_t g_table[] = {
#define ROW(name, val, ref, type, cat, sub, sev, retry, msg)                                       \
    {(val), (ref), "FDN_" #name, (type), (cat), (sub), SEV(sev), RETRY(retry), (msg)},
    FDN_ERROR_MAP(ROW)
#undef ROW
};

static const fdn_err_info_t g_ok = {0,      0,           "FDN_OK",           "ok",     "none",
                                    "none", FDN_SEV_LOW, FDN_RETRY_NO_RETRY, "Success"};

size_t fdn_err_count(void)
{
    return FDN_ARRAY_LEN(g_table);
}

const fdn_err_info_t *fdn_err_at(size_t i)
{
    return i < FDN_ARRAY_LEN(g_table) ? &g_table[i] : NULL;
}

const fdn_err_info_t *fdn_err_info(int code)
{
    if (code == 0)
        return &g_ok;
    for (size_t i = 0; i < FDN_ARRAY_LEN(g_table); i++)
        if (g_table[i].code == code)
            return &g_table[i];
    for (size_t i = 0; i < FDN_ARRAY_LEN(g_table); i++)
        if (g_table[i].code == FDN_EUNKNOWN)
            return &g_table[i];
    return &g_table[0];
}

const char *fdn_strerror(int code)
{
    return fdn_err_info(code)->message;
}

const char *fdn_err_name(int code)
{
    return fdn_err_info(code)->name;
}

const char *fdn_severity_name(fdn_severity_t s)
{
    switch (s) {
    case FDN_SEV_LOW:
        return "low";
    case FDN_SEV_MEDIUM:
        return "medium";
    case FDN_SEV_HIGH:
        return "high";
    case FDN_SEV_CRITICAL:
        return "critical";
    }
    return "medium";
}

const char *fdn_retry_name(fdn_retry_t r)
{
    switch (r) {
    case FDN_RETRY_NO_RETRY:
        return "no_retry";
    case FDN_RETRY_IMMEDIATE:
        return "immediate";
    case FDN_RETRY_FIXED_DELAY:
        return "fixed_delay";
    case FDN_RETRY_EXPONENTIAL_BACKOFF:
        return "exponential_backoff";
    }
    return "fixed_delay";
}

fdn_retry_t fdn_retry_rule(const char *type, fdn_severity_t severity)
{
    if (type == NULL)
        type = "";
    if (strcmp(type, "timeout") == 0 || strcmp(type, "network_error") == 0)
        return FDN_RETRY_EXPONENTIAL_BACKOFF;
    if (strcmp(type, "external_service_error") == 0)
        return FDN_RETRY_FIXED_DELAY;
    if (severity == FDN_SEV_CRITICAL)
        return FDN_RETRY_NO_RETRY;
    if (severity == FDN_SEV_HIGH)
        return FDN_RETRY_IMMEDIATE;
    if (strcmp(type, "invalid_config_value") == 0 || strcmp(type, "data_corruption") == 0)
        return FDN_RETRY_NO_RETRY;
    if (strcmp(type, "resource_exhausted") == 0)
        return FDN_RETRY_IMMEDIATE;
    return FDN_RETRY_FIXED_DELAY;
}

int64_t fdn_retry_delay_ms(fdn_retry_t strategy, int attempt)
{
    switch (strategy) {
    case FDN_RETRY_EXPONENTIAL_BACKOFF:
        if (attempt < 0)
            attempt = 0;
        if (attempt >= 5)
            return 30000;
        return FDN_MIN((int64_t)1000 << attempt, (int64_t)30000);
    case FDN_RETRY_FIXED_DELAY:
        return 1000;
    case FDN_RETRY_IMMEDIATE:
        return 0;
    case FDN_RETRY_NO_RETRY:
        return FDN_RETRY_NEVER;
    }
    return 1000;
}

bool fdn_err_retryable(int code)
{
    return fdn_err_info(code)->retry != FDN_RETRY_NO_RETRY;
}

bool fdn_err_should_escalate(int code)
{
    fdn_severity_t s = fdn_err_info(code)->severity;
    return s == FDN_SEV_HIGH || s == FDN_SEV_CRITICAL;
}

/* Copy src into dst[cap], cutting at a UTF-8 character boundary and marking the cut. */
static void copy_cut(char *dst, size_t cap, const char *src, size_t len)
{
    if (cap == 0)
        return;
    if (len < cap) {
        memcpy(dst, src, len);
        dst[len] = '\0';
        return;
    }
    size_t keep = cap > 4 ? cap - 4 : 0;
    while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(dst, src, keep);
    if (cap > 4)
        memcpy(dst + keep, "...", 4);
    else
        dst[keep] = '\0';
}

size_t fdn__utf8_whole(const char *buf, size_t len)
{
    size_t i = len;
    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : 4;
    return (i - 1) + need <= len ? len : i - 1;
}

static int64_t wall_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fdn_err_setv(fdn_error_t *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    const fdn_err_info_t *info = fdn_err_info(code);
    int saved_errno = errno;
    /* the message first: its arguments may point into err (its old message or context, the
     * wrapping idiom), which the memset below clears */
    char tmp[FDN_ERR_MSG_MAX * 2];
    const char *msg = info->message;
    size_t len = strlen(msg);
    if (fmt != NULL) {
        int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        if (n < 0)
            n = 0;
        len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
        tmp[len] = '\0';
        msg = tmp;
    }
    memset(err, 0, sizeof(*err));
    err->code = code;
    err->ref_code = info->ref_code;
    err->type = info->type;
    err->category = info->category;
    err->subcategory = info->subcategory;
    err->severity = info->severity;
    err->retry = info->retry;
    err->sys_errno = (code < 0 && code > -1000) ? -code : 0;
    err->timestamp_ns = wall_now_ns();
    copy_cut(err->message, sizeof(err->message), msg, len);
    fdn__errctx_fill(err);
    errno = saved_errno;
    return code;
}

int fdn_err_set(fdn_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fdn_err_setv(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

void fdn_err_add_context(fdn_error_t *err, const char *key, const char *fmt, ...)
{
    if (err == NULL || key == NULL)
        return;
    char val[FDN_ERR_CONTEXT_MAX];
    val[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(val, sizeof(val), fmt, ap);
        va_end(ap);
    }
    /* logfmt: a value with a space, a tab or '"' (or none) is quoted, and inside the quotes
     * '"' and '\\' are escaped with '\\', so the text reads back exactly (a client's '"' in a
     * config path cannot close the quotes and forge another key); other values as they are */
    bool quote = strpbrk(val, " \t\"") != NULL || val[0] == '\0';
    char item[2 * FDN_ERR_CONTEXT_MAX + 64]; /* every byte of val escaped, key and quotes */
    int n = snprintf(item, sizeof(item), "%s%s=", err->context[0] ? " " : "", key);
    if (n < 0)
        return;
    size_t ilen = (size_t)n < sizeof(item) ? (size_t)n : sizeof(item) - 1;
    /* the value as far as the item holds it (2 bytes per character at most): an item that
     * fills it is longer than any context, so copy_cut below cuts it with "..." */
    if (quote && ilen + 1 < sizeof(item))
        item[ilen++] = '"';
    for (const char *v = val; *v != '\0' && ilen + 2 < sizeof(item); v++) {
        if (quote && (*v == '"' || *v == '\\'))
            item[ilen++] = '\\';
        item[ilen++] = *v;
    }
    if (quote && ilen + 1 < sizeof(item))
        item[ilen++] = '"';
    item[ilen] = '\0';
    size_t have = strlen(err->context);
    copy_cut(err->context + have, sizeof(err->context) - have, item, ilen);
}

bool fdn_err_context_next(const char **s, char *key, size_t kcap, char *val, size_t vcap,
                          size_t *vlen)
{
    const char *p = *s;
    while (*p == ' ')
        p++;
    const char *eq = strchr(p, '=');
    size_t kl = eq != NULL ? (size_t)(eq - p) : 0;
    if (kl == 0 || kl >= kcap || memchr(p, ' ', kl) != NULL || vcap == 0)
        return false;
    memcpy(key, p, kl);
    key[kl] = '\0';
    const char *v = eq + 1;
    size_t n = 0;
    if (*v == '"') {
        /* to the '"' that ends the text or is followed by a space (an escaped one, \", does
         * not count) */
        for (v++; *v != '\0' && !(*v == '"' && (v[1] == ' ' || v[1] == '\0')); v++) {
            if (*v == '\\' && (v[1] == '"' || v[1] == '\\'))
                v++;
            if (n + 1 >= vcap)
                return false; /* longer than any context text: not one the library wrote */
            val[n++] = *v;
        }
        if (*v == '"')
            v++;
    } else {
        for (; *v != '\0' && *v != ' '; v++) {
            if (n + 1 >= vcap)
                return false;
            val[n++] = *v;
        }
    }
    val[n] = '\0';
    if (vlen != NULL)
        *vlen = n;
    *s = v;
    return true;
}

size_t fdn_err_format(const fdn_error_t *err, char *buf, size_t cap)
{
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (err == NULL)
        return 0;
    int n;
    const char *type = err->type ? err->type : fdn_err_info(err->code)->type;
    if (err->context[0] != '\0')
        n = snprintf(buf, cap, "[%d:%s] %s | Context: %s | Severity: %s", err->ref_code, type,
                     err->message, err->context, fdn_severity_name(err->severity));
    else
        n = snprintf(buf, cap, "[%d:%s] %s | Severity: %s", err->ref_code, type, err->message,
                     fdn_severity_name(err->severity));
    return n < 0 ? 0 : (size_t)n;
}

/* The JSON is written with the bounded text writer (core/buf.h). */
/* A JSON string. Messages and context carry caller text (file names, HTTP input), which need
 * not be UTF-8: every byte that does not start a valid UTF-8 sequence (stray continuation
 * bytes, overlong forms, surrogates, truncated sequences, bytes above U+10FFFF) becomes
 * U+FFFD, written as the escape \ufffd, so the output is always valid JSON. */
static void jw_str(fdn__tw_t *w, const char *s)
{
    fdn__tw_put(w, "\"", 1);
    size_t left = s != NULL ? strlen(s) : 0;
    while (left > 0) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t step = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            fdn__tw_put(w, esc, 2);
        } else if (c < 0x20) {
            int n = snprintf(esc, sizeof(esc), "\\u%04x", c);
            fdn__tw_put(w, esc, (size_t)n);
        } else if (c < 0x80) {
            /* a run of plain ASCII at once */
            while (step < left && (unsigned char)s[step] >= 0x20 && (unsigned char)s[step] < 0x80 &&
                   s[step] != '"' && s[step] != '\\')
                step++;
            fdn__tw_put(w, s, step);
        } else if ((step = fdn__utf8_seq((const unsigned char *)s, left)) > 0) {
            fdn__tw_put(w, s, step);
        } else {
            step = 1;
            fdn__tw_put(w, "\\ufffd", 6);
        }
        s += step;
        left -= step;
    }
    fdn__tw_put(w, "\"", 1);
}

static void jw_key(fdn__tw_t *w, const char *k, bool first)
{
    if (!first)
        fdn__tw_put(w, ",", 1);
    jw_str(w, k);
    fdn__tw_put(w, ":", 1);
}

static void jw_int(fdn__tw_t *w, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    fdn__tw_put(w, num, (size_t)n);
}

size_t fdn_err_to_json(const fdn_error_t *err, char *buf, size_t cap)
{
    fdn__tw_t w = FDN__TW_INIT(buf, cap);
    if (err == NULL) {
        fdn__tw_put(&w, "null", 4);
    } else {
        const fdn_err_info_t *info = fdn_err_info(err->code);
        fdn__tw_put(&w, "{", 1);
        jw_key(&w, "code", true);
        jw_int(&w, err->code);
        jw_key(&w, "ref_code", false);
        jw_int(&w, err->ref_code);
        jw_key(&w, "name", false);
        jw_str(&w, info->name);
        jw_key(&w, "type", false);
        jw_str(&w, err->type ? err->type : info->type);
        jw_key(&w, "category", false);
        jw_str(&w, err->category ? err->category : info->category);
        jw_key(&w, "subcategory", false);
        jw_str(&w, err->subcategory ? err->subcategory : info->subcategory);
        jw_key(&w, "severity", false);
        jw_str(&w, fdn_severity_name(err->severity));
        jw_key(&w, "retry_strategy", false);
        jw_str(&w, fdn_retry_name(err->retry));
        jw_key(&w, "message", false);
        jw_str(&w, err->message);
        jw_key(&w, "context", false);
        jw_str(&w, err->context);
        jw_key(&w, "correlation_id", false);
        jw_str(&w, err->correlation_id);
        jw_key(&w, "breadcrumbs", false);
        jw_str(&w, err->breadcrumbs);
        jw_key(&w, "timestamp_ns", false);
        jw_int(&w, err->timestamp_ns);
        jw_key(&w, "duration_ns", false);
        jw_int(&w, err->duration_ns);
        fdn__tw_put(&w, "}", 1);
    }
    return fdn__tw_end(&w);
}

void fdn__uuid4_format(unsigned char b[16], char out[FDN_UUID_STR_LEN + 1])
{
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0F];
    }
    out[o] = '\0';
}

int fdn_uuid4(char out[FDN_UUID_STR_LEN + 1])
{
    unsigned char b[16];
    int rc = fdn__random16(b);
    if (rc != 0)
        return rc;
    fdn__uuid4_format(b, out);
    return 0;
}

size_t fdn_err_recovery_actions(int code, const char *operation, const char **out, size_t cap,
                                char *opbuf, size_t opcap)
{
    static const char *const config_not_found[] = {"Check configuration file",
                                                   "Verify configuration path", NULL};
    static const char *const invalid_config_value[] = {
        "Check configuration format", "Validate against schema", "Review documentation", NULL};
    static const char *const service_unavailable[] = {
        "Check service health", "Verify network connectivity", "Review service logs", NULL};
    static const char *const resource_exhausted[] = {"Check memory usage", "Review resource limits",
                                                     "Scale resources if needed", NULL};
    static const char *const network_error[] = {"Check network connectivity",
                                                "Retry with exponential backoff", NULL};
    static const char *const timeout[] = {"Increase timeout value", "Check network latency",
                                          "Review service performance", NULL};
    static const char *const data_corruption[] = {"Restore from backup",
                                                  "Contact system administrator", NULL};
    static const char *const generic[] = {"Check logs for details", "Review error context",
                                          "Contact support if needed", NULL};
    static const struct {
        const char *type;
        const char *const *actions;
    } by_type[] = {
        {"config_not_found", config_not_found},
        {"invalid_config_value", invalid_config_value},
        {"service_unavailable", service_unavailable},
        {"resource_exhausted", resource_exhausted},
        {"network_error", network_error},
        {"timeout", timeout},
        {"data_corruption", data_corruption},
    };
    const char *type = fdn_err_info(code)->type;
    const char *const *list = generic;
    for (size_t i = 0; i < FDN_ARRAY_LEN(by_type); i++)
        if (strcmp(by_type[i].type, type) == 0)
            list = by_type[i].actions;
    size_t n = 0;
    for (; list[n] != NULL; n++)
        if (out != NULL && n < cap)
            out[n] = list[n];
    /* the operation's action only with a buffer for its text: every action counted is one
     * the caller can read from out (when the count fits cap) */
    if (operation != NULL && opbuf != NULL && opcap > 0) {
        if (out != NULL && n < cap) {
            int len = snprintf(opbuf, opcap, "Review %s implementation", operation);
            if (len >= 0 && (size_t)len >= opcap) /* cut: not inside a character */
                opbuf[fdn__utf8_whole(opbuf, opcap - 1)] = '\0';
            out[n] = opbuf;
        }
        n++;
    }
    return n;
}

size_t fdn_err_metric_name(const fdn_error_t *err, char *buf, size_t cap)
{
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (err == NULL)
        return 0;
    const fdn_err_info_t *info = fdn_err_info(err->code);
    int n = snprintf(buf, cap, "foundation.errors.%s.%s",
                     err->category ? err->category : info->category,
                     err->subcategory ? err->subcategory : info->subcategory);
    return n < 0 ? 0 : (size_t)n;
}
