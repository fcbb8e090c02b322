/* libFuzzer target: the config JSON loader and validator on arbitrary bytes.
 * Each input is (1) validated as a whole tree (fdn_config_validate_json) and (2) parsed and
 * merged over the defaults like a configuration file, then the result validated and dumped
 * back. Nothing may crash, leak or read out of bounds; errors are expected. A tree that
 * validate_json accepts must be clean for check_json too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/config.h>
#include "validation/config_schema.h"

#include "fuzz_config_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdn_error_t err = FDN_ERROR_INIT;
    int vrc = fdn_config_validate_json((const char *)data, size, &err);
    /* a whole tree validate_json accepts is a clean file for check_json (and so for the
     * loader, fuzz_config_check): the readers of a document agree (a dotted key, say) */
    if (vrc == 0) {
        int crc = fdn_config_check_json((const char *)data, size, NULL, NULL);
        if (crc != 0 && crc != FDN_ENOMEM)
            abort();
    }

    const fdn__cfg_schema_t *s = fdn_fuzz_config_schema();
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    if (root != NULL && vals != NULL) {
        for (size_t i = 0; i < s->n; i++)
            vals[i] = json_incref(s->e[i].def);
        if (fdn__cfg_merge_json(s, vals, root, "fuzz.json", NULL, 0, &err) == 0 &&
            fdn__cfg_validate(s, vals, NULL, &err) == 0) {
            bool oom = false;
            json_t *t = fdn__cfg_build_tree(s, vals, "", &oom);
            char *txt = t != NULL ? json_dumps(t, JSON_COMPACT) : NULL;
            if (txt != NULL && fdn_config_validate_json(txt, strlen(txt), &err) != 0)
                abort(); /* a merged, validated tree must validate again */
            free(txt);
            json_decref(t);
        }
        for (size_t i = 0; i < s->n; i++)
            json_decref(vals[i]);
    }
    free(vals);
    json_decref(root);
    return 0;
}
