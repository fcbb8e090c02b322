/*
 * DESIGN: the status page, GET / (and HEAD /): one self-contained HTML+JS file
 * (src/admin/status.html) compiled into the library as a byte array (cmake/embed_file.cmake
 * generates admin/status_page.h at build time), so nothing is read from disk at run time and
 * the page has no build step of its own. The page draws everything from the JSON API the
 * server mounts (fetch() every 2 s); endpoints that are not mounted show as unavailable.
 * Registered by fdn_admin_create with /health and /metrics, so every admin server has it, and
 * it goes through the same dispatch as the API: with a token, GET / needs the token too.
 * Threads: runs on the admin server's threads; the page is immutable static data, copied into
 * each response (the response owns its body). No state, no locks.
 */
#include "admin/admin_int.h"

#include <string.h>

#include "admin/status_page.h"

static int h_page(const fdn__http_req_t *req, fdn__http_resp_t *resp, void *user)
{
    (void)req;
    (void)user;
    char *body = fdn_malloc(fdn__status_page_len + 1);
    if (body == NULL)
        return FDN_ENOMEM;
    memcpy(body, fdn__status_page, fdn__status_page_len + 1);
    resp->text = body;
    resp->text_len = fdn__status_page_len;
    resp->content_type = "text/html; charset=utf-8";
    resp->status = 200;
    return 0;
}

int fdn__admin_mount_status(fdn_admin_t *a)
{
    if (a == NULL)
        return FDN_EINVAL;
    return fdn__admin_route_add(a, "GET", "/", h_page, NULL);
}
