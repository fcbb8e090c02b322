/* DESIGN: tests/support/http_client.h: libcurl's easy interface, one request at a time. */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t on_data(char *p, size_t sz, size_t n, void *user)
{
    test_http_sink_t *s = user;
    size_t k = sz * n, room = sizeof s->buf - 1 - s->len, c = k < room ? k : room;
    memcpy(s->buf + s->len, p, c);
    s->len += c;
    s->buf[s->len] = '\0';
    return k;
}

long test_http_post(CURL *c, uint16_t port, const char *path, const char *body, test_http_sink_t *s,
                    long timeout_s)
{
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    s->len = 0;
    s->buf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

long test_http_post_event(CURL *c, uint16_t port, const char *body, test_http_sink_t *s,
                          long timeout_s, uint64_t *id)
{
    long st = test_http_post(c, port, "/v1/events", body, s, timeout_s);
    const char *p = strstr(s->buf, "\"id\":");
    *id = st == 201 && p != NULL ? strtoull(p + 5, NULL, 10) : 0;
    return st;
}
