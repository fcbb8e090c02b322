/* Parsing of Redis server addresses: redis://[[user]:password@]host[:port][/db].
 * Pure: no I/O, no allocation. */
#ifndef FDN_LOGIC_REDIS_URL_H
#define FDN_LOGIC_REDIS_URL_H

#include <fdn/error.h>

typedef struct fdn__redis_url {
    char host[256];     /* a name or an IPv4 address, or an IPv6 address without brackets */
    char user[128];     /* "" when absent (then AUTH takes the password alone) */
    char password[256]; /* "" when absent; %XX sequences decoded */
    int port;           /* 1..65535, default 6379 */
    int db;             /* 0..2^31-1, default 0 */
    bool has_password;  /* a ':' was given in the user part (an empty password is kept) */
} fdn__redis_url_t;

/* Parse url (NUL-terminated) into *out. Returns 0, or FDN_EINVAL with a message in err
 * (may be NULL) naming what is wrong; *out is then unspecified. */
int fdn__redis_url_parse(const char *url, fdn__redis_url_t *out, fdn_error_t *err);

#endif
