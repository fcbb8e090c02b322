/* A blocking libcurl client for tests that drive a real admin server on 127.0.0.1: POST a
 * body and keep the start of the answer; POST an event and read its id. Each thread uses its own
 * CURL handle. */
#ifndef FDN_TEST_HTTP_CLIENT_H
#define FDN_TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* The first bytes of an answer, NUL-terminated (longer answers are cut). */
typedef struct test_http_sink {
    char buf[4096];
    size_t len;
} test_http_sink_t;

/* POST body to http://127.0.0.1:port<path> with handle c, the answer's start in s; gives up
 * after timeout_s. Returns the HTTP status, or -1 when no answer came. */
long test_http_post(CURL *c, uint16_t port, const char *path, const char *body, test_http_sink_t *s,
                    long timeout_s);

/* test_http_post of an event (POST /v1/events with body): the HTTP status; *id is the id of a
 * 201 answer that holds one ("id":N), 0 for any other answer (ids start at 1). */
long test_http_post_event(CURL *c, uint16_t port, const char *body, test_http_sink_t *s,
                          long timeout_s, uint64_t *id);

#endif
