/* DESIGN: the log of `fdn serve`: one line per notable event (start, stop, service restart,
 * escalation, config change, breaker transition, slow request, and each request with
 * --access-log) on stderr, where journald and log shippers collect it.
 *
 * Two formats. text is logfmt: `ts=... level=info event=start msg="..." key=value`, values
 * quoted when they hold a space, '=', '"' or nothing. json is one object per line with the
 * keys ts, level, event, msg, then the pairs given; a value that parses as JSON other than a
 * bare string (a number, an object from an event's data) is embedded as it is.
 * Values may be a client's bytes (the request target): both formats write control
 * characters escaped and bytes that are not well-formed UTF-8 replaced (json: U+FFFD, text:
 * \xHH), so every line is one line of UTF-8 (valid JSON in json) without terminal escapes.
 *
 * Each line is composed in memory (open_memstream) and written with one fwrite on the
 * unbuffered stderr, so lines from different threads (supervisor, event delivery, HTTP
 * server) do not interleave. The format and level are set once before any thread starts and
 * only read afterwards. */
#include "serve_log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <fdn/common.h>

#include "core/utf8.h" /* fdn__utf8_seq: the library's UTF-8 check, linked statically */

static bool g_json = false;
static serve_log_level_t g_level = SERVE_LOG_INFO;
static const char *const LEVELS[] = {"debug", "info", "warn", "error"};

int serve_log_set_format(const char *name)
{
    if (strcmp(name, "text") == 0)
        g_json = false;
    else if (strcmp(name, "json") == 0)
        g_json = true;
    else
        return -1;
    return 0;
}

int serve_log_set_level(const char *name)
{
    for (size_t i = 0; i < sizeof LEVELS / sizeof LEVELS[0]; i++)
        if (strcmp(name, LEVELS[i]) == 0) {
            g_level = (serve_log_level_t)i;
            return 0;
        }
    return -1;
}

bool serve_log_json(void)
{
    return g_json;
}

bool serve_log_enabled(serve_log_level_t level)
{
    return level >= g_level;
}

/* Length of the well-formed UTF-8 sequence at p (1 to 4; 0 when the bytes there are not
 * one), p NUL-terminated: the library's check (core/utf8.h), bounded by the string's end. */
static size_t utf8_seq(const unsigned char *p)
{
    return p[0] < 0x80 ? 1 : fdn__utf8_seq(p, strnlen((const char *)p, 4));
}

/* A JSON string: control characters escaped, and each byte that is not part of well-formed
 * UTF-8 (a request target is the client's bytes) written as U+FFFD, so the line stays JSON. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, n, f);
            p += n - 1;
            continue;
        }
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void json_value(FILE *f, const char *v)
{
    json_t *j = NULL;
    (void)fdn_json_loadb(v, strlen(v), JSON_DECODE_ANY, &j, NULL);
    if (j != NULL && !json_is_string(j) && !json_is_null(j))
        fputs(v, f);
    else
        json_str(f, v);
    json_decref(j);
}

/* True when v can be written bare: not empty, well-formed UTF-8 without spaces, '=', quotes,
 * backslashes or control characters. */
static bool text_bare(const char *v)
{
    if (v[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p;) {
        size_t n = utf8_seq(p);
        if (n == 0 || *p <= 0x20 || *p == 0x7f || *p == '=' || *p == '"' || *p == '\\')
            return false;
        p += n;
    }
    return true;
}

/* A logfmt value, quoted when it must be; inside quotes '"' and '\\' are escaped, a newline is
 * \n, CR and tab become spaces, and other control characters and bytes that are not
 * well-formed UTF-8 are written \xHH: a line holds no raw control byte (no terminal escape
 * sequence from a client's request target) and stays UTF-8. */
static void text_value(FILE *f, const char *v)
{
    if (text_bare(v)) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        size_t n = utf8_seq(p);
        if (n > 1) {
            fwrite(p, 1, n, f);
            p += n - 1;
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p, f);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else if (*p == '\r' || *p == '\t') {
            fputc(' ', f);
        } else if (n == 0 || *p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\x%02x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void emit(serve_log_level_t level, const char *event, const char *msg, va_list ap)
{
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (f == NULL)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    time_t sec = ts.tv_sec;
    gmtime_r(&sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (g_json) {
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", when, LEVELS[level]);
        json_str(f, event);
        fputs(",\"msg\":", f);
        json_str(f, msg);
    } else {
        fprintf(f, "ts=%s level=%s event=", when, LEVELS[level]);
        text_value(f, event);
        fputs(" msg=", f);
        text_value(f, msg);
    }
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        if (v == NULL)
            v = "";
        if (g_json) {
            fputc(',', f);
            json_str(f, k);
            fputc(':', f);
            json_value(f, v);
        } else {
            fprintf(f, " %s=", k);
            text_value(f, v);
        }
    }
    fputs(g_json ? "}\n" : "\n", f);
    if (fclose(f) == 0 && line != NULL) {
        fwrite(line, 1, len, stderr);
        fflush(stderr);
    }
    free(line);
}

void serve_log(serve_log_level_t level, const char *event, const char *msg, ...)
{
    if (!serve_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    emit(level, event, msg, ap);
    va_end(ap);
}

void serve_log_always(serve_log_level_t level, const char *event, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, event, msg, ap);
    va_end(ap);
}
