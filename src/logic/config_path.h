/* Config path logic: dotted-path security, value security, environment-name mapping and
 * text-to-value parsing. Pure functions (no locks, no I/O, no globals). */
#ifndef FDN_LOGIC_CONFIG_PATH_H
#define FDN_LOGIC_CONFIG_PATH_H

#include <jansson.h>
#include <stddef.h>
#include "fdn/config.h"
#include "fdn/error.h"

#define FDN__CFG_MAX_COMPONENTS 50
#define FDN__CFG_MAX_PATH_LEN   4096
#define FDN__CFG_MAX_STRING     1000000
#define FDN__CFG_MAX_DEPTH      20

/* Path security (§1.5.1) on a dotted path: more than 50 components, or a forbidden pattern
 * anywhere in it, gives FDN_EPATH_SECURITY (ref 1000) with the reference's message; a path
 * longer than FDN__CFG_MAX_PATH_LEN or with a control byte (< 0x20, 0x7f) is refused with the
 * same code (every refusal of a path is check 1; reason path_too_long / control_character). */
int fdn__cfg_path_check(const char *path, fdn_error_t *err);

/* Value security (§1.5.2): strings over 1 000 000 bytes, elements nested at level >= 21, or
 * object keys breaking the same rules give FDN_EVALUE_SECURITY (ref 1005). */
int fdn__cfg_value_check(const json_t *v, fdn_error_t *err);

/* "FDN_AI__PLANNING__SAMPLING_RATE" -> "ai.planning.sampling_rate". Returns 0, or
 * FDN_EINVAL when the name lacks the FDN_ prefix or a "__" separator, has an empty segment
 * or a character other than [A-Za-z0-9_]; FDN_ENOBUFS when out is too small. */
int fdn__cfg_env_name_to_path(const char *name, size_t name_len, char *out, size_t cap);

/* Parse text (an environment value) as a value of the given type. Booleans accept
 * true/false/1/0/yes/no/on/off; ints a full decimal int64; numbers a finite decimal
 * ([+-]digits[.digits][e[+-]digits]: no hex, inf or nan, no blanks); strings
 * are taken as they are ("null" gives null for STRING_OR_NULL); OBJECT and ANY parse JSON
 * (ANY falls back to a string). Returns 0 or FDN_ETYPE_MISMATCH / FDN_ENOMEM. */
int fdn__cfg_parse_text(fdn_config_type_t type, const char *text, json_t **out);

/* Reference name of a JSON value's type for error context: map, list, binary, atom, number. */
const char *fdn__cfg_value_type_name(const json_t *v);

/* The JSON type of v for messages to users: object, array, string, integer, number (a real),
 * boolean, null. (fdn__cfg_value_type_name gives the reference's Elixir names, kept where
 * the reference's error context is reproduced.) */
const char *fdn__cfg_json_type_name(const json_t *v);

#endif
