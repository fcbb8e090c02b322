/* libFuzzer target: breaker options from JSON (infra/breaker_opts.c), the parser behind
 * PUT /v1/breakers/{name} and infrastructure.circuit_breaker.breakers. Any bytes: 0 with
 * options that pass fdn_breaker_opts_validate, or FDN_EINVAL with a message and the options
 * untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/breaker.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdn_breaker_opts_t o = FDN_BREAKER_OPTS_INIT, before = o;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_breaker_opts_parse((const char *)data, size, &o, &err);
    if (rc != 0) {
        if (rc != FDN_EINVAL || err.message[0] == '\0' || memcmp(&o, &before, sizeof(o)) != 0)
            abort();
        return 0;
    }
    if (fdn_breaker_opts_validate(&o, NULL) != 0)
        abort();
    return 0;
}
