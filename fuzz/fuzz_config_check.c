/* libFuzzer target: fdn_config_check_json (`fdn config check`) on arbitrary bytes.
 * Oracles: the return is 0 exactly when no problem was reported, and otherwise the first
 * reported problem's code; and it agrees with the loader used by `fdn serve --config`
 * (merge over the defaults, then validate): a document is clean for one iff for the other.
 * Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fdn/config.h>
#include "validation/config_schema.h"

#include "fuzz_config_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    int n;
    int first;
} seen_t;

static void on_problem(const char *path, const char *message, int code, void *user)
{
    seen_t *s = user;
    if (path == NULL || message == NULL || code >= 0)
        abort();
    if (s->n++ == 0)
        s->first = code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen_t seen = {0, 0};
    int rc = fdn_config_check_json((const char *)data, size, on_problem, &seen);
    if (rc == FDN_ENOMEM)
        return 0;
    if ((rc == 0) != (seen.n == 0) || (rc != 0 && rc != seen.first))
        abort();

    const fdn__cfg_schema_t *s = fdn_fuzz_config_schema();
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t **vals = calloc(s->n, sizeof(json_t *));
    if (root != NULL && json_is_object(root) && vals != NULL) {
        for (size_t i = 0; i < s->n; i++)
            vals[i] = json_incref(s->e[i].def);
        fdn_error_t err = FDN_ERROR_INIT;
        bool clean = fdn__cfg_merge_json(s, vals, root, "fuzz.json", NULL, 0, &err) == 0 &&
                     fdn__cfg_validate(s, vals, NULL, &err) == 0;
        if (clean != (rc == 0))
            abort(); /* `fdn config check` and `fdn serve --config` disagree */
        for (size_t i = 0; i < s->n; i++)
            json_decref(vals[i]);
    } else if (rc == 0) {
        abort(); /* malformed JSON or not an object cannot be clean */
    }
    free(vals);
    json_decref(root);
    return 0;
}
