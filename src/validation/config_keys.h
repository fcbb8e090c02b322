/* Config key table: the built-in §1.1 tree as constant data (paths, types, defaults, rules,
 * updatable flags, messages), the messages of its top-level sections and the reference's
 * updatable paths. Data only: config_schema.c turns it into a schema and validates. */
#ifndef FDN_VALIDATION_CONFIG_KEYS_H
#define FDN_VALIDATION_CONFIG_KEYS_H

#include <stddef.h>
#include "fdn/config.h"

/* Rules of built-in keys only, past the public fdn_config_rule_t (config_telemetry.h):
 * telemetry.buckets (object histogram name -> `le` bounds) and telemetry.summaries (array of
 * histogram names). */
#define FDN__CFG_RULE_TM_BUCKETS   ((fdn_config_rule_t)100)
#define FDN__CFG_RULE_TM_SUMMARIES ((fdn_config_rule_t)101)

/* One built-in key: its public definition plus the two facts only built-ins carry. */
typedef struct fdn__cfg_builtin {
    fdn_config_key_def_t d;
    const char *missing; /* message when absent / section malformed; NULL = d.error_message */
    const char *only_if; /* path of the bool key gating this key's rules, or NULL */
} fdn__cfg_builtin_t;

/* The built-in keys in the reference's validation order (the schema's order). */
extern const fdn__cfg_builtin_t fdn__cfg_builtins[];
extern const size_t fdn__cfg_builtin_count;

/* Message of a missing or malformed top-level section (`top` is len bytes, no NUL needed);
 * "Invalid configuration" for a name that is no built-in section. */
const char *fdn__cfg_section_message(const char *top, size_t len);

/* The 13 reference updatable paths. */
extern const char *const fdn__cfg_updatable_paths[];
extern const size_t fdn__cfg_updatable_count;

#endif
