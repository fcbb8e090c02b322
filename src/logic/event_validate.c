/*
 * DESIGN: event validation (pure: no locks, no I/O, no globals).
 *
 * Order as the reference (§3.3), first failure wins: required fields (type) → field types
 * and name rules (type name, node, correlation id, content type) → data (JSON parses, size).
 * The checks on borrowed fields (fdn__event_check_fields) are shared with the decoders, so
 * nothing a decoder returns breaks a rule that construction enforces.
 */
#include <fdn/events.h>

#include <string.h>

#include <jansson.h>

#include "core/json.h"
#include "logic/event_int.h"

static const char *const k_allowed[] = {
    "function_entry", "function_exit", "state_change", "message_send",   "message_receive",
    "spawn",          "exit",          "link",         "unlink",         "monitor",
    "demonitor",      "system_event",  "custom_event", "config_updated", "config_reset",
    "test",           "test1",         "test2",        "test3",          "test_event",
    "default",        "type_a",        "type_b",
};

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    if (first)
        return false;
    return (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

int fdn__event_check_fields(const fdn__event_fields_t *f, bool check_json, fdn_error_t *err)
{
    if (f->type == NULL || f->type_len == 0)
        return fdn_err_set(err, FDN_EVALIDATION, "Event type cannot be nil");
    if (f->type_len > FDN_EVENT_TYPE_MAX) {
        fdn_err_set(err, FDN_EEVENT_TYPE, "Event type name too long");
        fdn_err_add_context(err, "max_length", "%d", FDN_EVENT_TYPE_MAX);
        return FDN_EEVENT_TYPE;
    }
    for (size_t i = 0; i < f->type_len; i++) {
        if (!name_char(f->type[i], i == 0)) {
            fdn_err_set(err, FDN_EEVENT_TYPE, "Event type must match [A-Za-z][A-Za-z0-9_.:-]*");
            fdn_err_add_context(err, "position", "%zu", i);
            return FDN_EEVENT_TYPE;
        }
    }
    if (f->node_len > FDN_EVENT_NODE_MAX || (f->node_len && !printable(f->node, f->node_len)))
        return fdn_err_set(err, FDN_ETYPE_MISMATCH,
                           "Node must be printable text of at most %d bytes", FDN_EVENT_NODE_MAX);
    if (f->corr_len > FDN_EVENT_CORR_MAX || (f->corr_len && !printable(f->corr, f->corr_len)))
        return fdn_err_set(err, FDN_ETYPE_MISMATCH,
                           "Correlation ID must be printable text of at most %d bytes",
                           FDN_EVENT_CORR_MAX);
    if (f->ctype > FDN_EVENT_CT_BINARY)
        return fdn_err_set(err, FDN_EINVAL, "unknown content type %u", f->ctype);
    if (f->data_len > 0 && f->data == NULL)
        return fdn_err_set(err, FDN_EINVAL, "data is NULL but data_len is %zu", f->data_len);
    if (f->data_len > FDN_EVENT_DATA_MAX) {
        fdn_err_set(err, FDN_ETOO_LARGE, "Event data too large");
        fdn_err_add_context(err, "size", "%zu", f->data_len);
        fdn_err_add_context(err, "max_size", "%d", FDN_EVENT_DATA_MAX);
        return FDN_ETOO_LARGE;
    }
    if (check_json && f->ctype == FDN_EVENT_CT_JSON && f->data_len > 0) {
        json_error_t jerr;
        bool oom = false;
        json_t *j =
            fdn__json_loadb(f->data, f->data_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr, &oom);
        if (oom) /* out of memory: the data may well be valid */
            return fdn_err_set(err, FDN_ENOMEM, NULL);
        if (j == NULL) {
            fdn_err_set(err, FDN_ETYPE_MISMATCH, "Event data is not valid JSON: %s", jerr.text);
            fdn_err_add_context(err, "position", "%d", jerr.position);
            return FDN_ETYPE_MISMATCH;
        }
        json_decref(j);
    }
    return 0;
}

int fdn_event_validate(const fdn_event_spec_t *spec, fdn_error_t *err)
{
    if (spec == NULL)
        return fdn_err_set(err, FDN_EINVAL, "event spec is NULL");
    if (spec->version != 1)
        return fdn_err_set(err, FDN_EINVAL, "unknown event spec version %u", spec->version);
    if (spec->type == NULL)
        return fdn_err_set(err, FDN_EVALIDATION, "Event type cannot be nil");
    fdn__event_fields_t f;
    memset(&f, 0, sizeof(f));
    f.type = spec->type;
    f.type_len = strnlen(spec->type, FDN_EVENT_TYPE_MAX + 1);
    f.node = spec->node;
    f.node_len = spec->node ? strnlen(spec->node, FDN_EVENT_NODE_MAX + 1) : 0;
    f.corr = spec->correlation_id;
    f.corr_len = spec->correlation_id ? strnlen(spec->correlation_id, FDN_EVENT_CORR_MAX + 1) : 0;
    if ((unsigned)spec->content_type > FDN_EVENT_CT_BINARY)
        return fdn_err_set(err, FDN_EINVAL, "unknown content type %d", (int)spec->content_type);
    f.ctype = (uint8_t)spec->content_type;
    f.data = spec->data;
    f.data_len = spec->data_len;
    return fdn__event_check_fields(&f, !(spec->flags & FDN_EVENT_TRUSTED_JSON), err);
}

int fdn_event_type_allowed(const char *type, fdn_error_t *err)
{
    if (type == NULL)
        return fdn_err_set(err, FDN_ETYPE_MISMATCH, "Event type must be an atom");
    for (size_t i = 0; i < sizeof(k_allowed) / sizeof(k_allowed[0]); i++)
        if (strcmp(type, k_allowed[i]) == 0)
            return 0;
    fdn_err_set(err, FDN_EEVENT_TYPE, "Invalid event type");
    fdn_err_add_context(err, "event_type", "%s", type);
    return FDN_EEVENT_TYPE;
}
