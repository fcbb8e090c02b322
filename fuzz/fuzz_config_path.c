/* libFuzzer target: config path and value parsing. The first byte picks a mode:
 *   0: dotted path  -> path security, get/get_json/is_null on a live service
 *   1: "path\0json" -> fdn_config_update_json (all four checks) on a live service
 *   2: "NAME=value" -> environment-name mapping and text parsing for every type
 *   3: JSON value   -> value security rule
 * The service is created once per process and kept (its values change as updates pass). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/config.h>
#include "logic/config_path.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The service outlives inputs and its state grows (see fuzz_util.h). */
FDN_FUZZ_NO_PER_INPUT_LEAK_CHECK()

static fdn_config_t *service(void)
{
    static fdn_config_t *cfg;
    static const char *const no_env[] = {NULL};
    if (cfg == NULL) {
        fdn_config_opts_t o = FDN_CONFIG_OPTS_INIT;
        o.envp = no_env;
        if (fdn_config_create(&cfg, &o, NULL) != 0)
            abort();
    }
    return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    char *buf = malloc(size);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    size_t len = size - 1;
    fdn_error_t err = FDN_ERROR_INIT;
    fdn_config_t *cfg = service();
    switch (data[0] % 4) {
    case 0: {
        char *out = NULL;
        int64_t i;
        bool b;
        (void)fdn__cfg_path_check(buf, &err);
        int r1 = fdn_config_get_json(cfg, buf, &out, &err);
        fdn_free(out);
        out = NULL;
        int r2 = fdn_config_get_json(cfg, buf, &out, &err);
        fdn_free(out);
        if (r1 != r2)
            abort(); /* reads are deterministic */
        (void)fdn_config_get_int(cfg, buf, &i);
        (void)fdn_config_is_null(cfg, buf, &b);
        break;
    }
    case 1: {
        size_t plen = strlen(buf);
        const char *value = plen < len ? buf + plen + 1 : "null";
        (void)fdn_config_update_json(cfg, buf, value, &err);
        break;
    }
    case 2: {
        char path[256];
        const char *eq = strchr(buf, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - buf) : strlen(buf);
        (void)fdn__cfg_env_name_to_path(buf, nlen, path, sizeof(path));
        const char *text = eq != NULL ? eq + 1 : buf;
        for (int t = FDN_CONFIG_BOOL; t <= FDN_CONFIG_ANY; t++) {
            json_t *v = NULL;
            if (fdn__cfg_parse_text((fdn_config_type_t)t, text, &v) == 0)
                json_decref(v);
        }
        break;
    }
    default: {
        json_t *v = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
        if (v != NULL) {
            (void)fdn__cfg_value_check(v, &err);
            json_decref(v);
        }
        break;
    }
    }
    free(buf);
    return 0;
}
