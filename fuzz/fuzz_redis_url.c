/* libFuzzer target: the Redis URL parser (logic/redis_url.c). Any bytes: the parser must
 * return 0 or FDN_EINVAL with a message, and on success its fields must hold what it
 * promises (a non-empty host, a port in 1..65535, a db >= 0, NUL-terminated strings). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logic/redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char buf[4097];
    memcpy(buf, data, size);
    buf[size] = '\0';
    fdn__redis_url_t u;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__redis_url_parse(buf, &u, &err);
    if (rc != 0) {
        if (rc != FDN_EINVAL || err.message[0] == '\0')
            abort();
        return 0;
    }
    if (u.host[0] == '\0' || u.port < 1 || u.port > 65535 || u.db < 0 ||
        memchr(u.host, '\0', sizeof(u.host)) == NULL ||
        memchr(u.user, '\0', sizeof(u.user)) == NULL ||
        memchr(u.password, '\0', sizeof(u.password)) == NULL)
        abort();
    return 0;
}
