/* Config schema: the typed key table (built-in §1.1 tree + application keys), the validator
 * of §1.3 over a flat array of leaf values, and the JSON loader/merger. Pure: no locks, no
 * globals; the built-in keys are constant data in config_keys.c. */
#ifndef FDN_VALIDATION_CONFIG_SCHEMA_H
#define FDN_VALIDATION_CONFIG_SCHEMA_H

#include <jansson.h>
#include <stdint.h>
#include "fdn/config.h"
#include "fdn/error.h"
#include "validation/config_keys.h" /* the built-in key table, the updatable paths */

typedef struct fdn__cfg_entry {
    char *path;
    size_t path_len;
    uint32_t hash;
    fdn_config_type_t type;
    fdn_config_rule_t rule;
    double min, max;
    /* a built-in POSITIVE or NON_NEGATIVE key's upper bound (max > 0): the bound of the
     * component that takes the value; a value above it is refused with the reason "must be at
     * most <max>" (values refused before keep their messages) */
    bool bounded;
    char **enums; /* NULL-terminated, owned */
    bool updatable;
    char *description;
    int code;              /* FDN_E* code on failure */
    char *message;         /* message on failure */
    char *missing_message; /* message when absent / section malformed (code 1001) */
    int only_if;           /* index of a bool key gating this rule, or -1 */
    json_t *def;           /* default value (owned) */
} fdn__cfg_entry_t;

typedef struct fdn__cfg_schema {
    fdn__cfg_entry_t *e;
    size_t n;
    size_t nbuiltin;
    /* the built-in pool keys of the cross-key rule (size + max_overflow): their indexes, found
     * once when the schema is built (n: absent), not by a search on every validation */
    size_t pool_size, pool_overflow;
    int32_t *slots; /* open addressing: entry index or -1 */
    size_t mask;
} fdn__cfg_schema_t;

/* Build the schema: built-in table then `extra` (application keys). Rejects duplicate
 * paths, a key that is a prefix section of another key, unsafe paths, bad defaults. */
int fdn__cfg_schema_create(fdn__cfg_schema_t **out, const fdn_config_key_def_t *extra,
                           size_t nextra, fdn_error_t *err);
void fdn__cfg_schema_destroy(fdn__cfg_schema_t *s);

/* Index of the leaf with exactly this path, or -1. */
int32_t fdn__cfg_schema_find(const fdn__cfg_schema_t *s, const char *path, size_t len);
/* True when some leaf lies strictly below `path` (path is a section). "" is a section. */
bool fdn__cfg_schema_is_section(const fdn__cfg_schema_t *s, const char *path, size_t len);
/* Index of the leaf whose path is a proper dotted prefix of `path` ("myapp.limits" for
 * "myapp.limits.a": path lies inside that leaf's value), or -1. */
int32_t fdn__cfg_schema_leaf_above(const fdn__cfg_schema_t *s, const char *path, size_t len);

/* Type check only. */
bool fdn__cfg_type_ok(fdn_config_type_t t, const json_t *v);
const char *fdn__cfg_type_name(fdn_config_type_t t);

/* Validate the tree held in vals[0..n) (one value per leaf), first failure in schema
 * order. On failure *bad (optional) is the failing leaf index. */
int fdn__cfg_validate(const fdn__cfg_schema_t *s, json_t *const *vals, size_t *bad,
                      fdn_error_t *err);
/* As fdn__cfg_validate (same answer, same error), for a tree that differs only in leaf
 * `changed` from one that passed fdn__cfg_validate: only the leaves the change can affect are
 * checked (the changed leaf, the leaves it gates, the cross-key rule). */
int fdn__cfg_validate_change(const fdn__cfg_schema_t *s, json_t *const *vals, size_t changed,
                             fdn_error_t *err);

/* Build the JSON object (or value) for the subtree at `prefix` ("" = whole tree).
 * Returns a new reference, or NULL when prefix is neither a leaf nor a section (or OOM:
 * *oom set). */
json_t *fdn__cfg_build_tree(const fdn__cfg_schema_t *s, json_t *const *vals, const char *prefix,
                            bool *oom);

/* Merge a parsed JSON object into vals (leaf values replaced with new references); each
 * leaf set is marked marks[i] = mark. Errors name `source`, the path and the rule:
 * unknown key -> FDN_ECONFIG_STRUCTURE, wrong type -> FDN_ECONFIG_INVALID. vals is left
 * partially merged on error (callers work on a copy). */
int fdn__cfg_merge_json(const fdn__cfg_schema_t *s, json_t **vals, const json_t *root,
                        const char *source, uint8_t *marks, uint8_t mark, fdn_error_t *err);

#endif
