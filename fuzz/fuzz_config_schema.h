/* Shared by the config fuzz targets (fuzz_config_check, fuzz_config_env, fuzz_config_json; not
 * a target itself: CMake builds fuzz/fuzz_*.c only). */
#ifndef FDN_FUZZ_CONFIG_SCHEMA_H
#define FDN_FUZZ_CONFIG_SCHEMA_H

#include <stdlib.h>

#include "validation/config_schema.h"

/* The built-in schema, made once: it is read-only after creation (merge and validate write
 * only the caller's value array), and building it per input cost more than the code under
 * test. Freed by the process's exit; aborts when it cannot be made. */
static inline const fdn__cfg_schema_t *fdn_fuzz_config_schema(void)
{
    static fdn__cfg_schema_t *s;
    if (s == NULL && fdn__cfg_schema_create(&s, NULL, 0, NULL) != 0)
        abort();
    return s;
}

#endif
