/* The JSON integer reader shared by the admin's one-pass body readers (event_body.c,
 * limiter_req.c). Those readers only ever accept: whatever they do not take (here: more than
 * 18 digits, a leading zero, -0, a fraction or an exponent) goes to jansson, which gives the
 * same value or the error message. The fuzz targets event_body and limiter_req compare both. */
#ifndef FDN_ADMIN_JSON_NUM_H
#define FDN_ADMIN_JSON_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An integer of 1..18 digits at *pp (before e): its value, and *pp past it. False, *pp
 * unchanged, for anything else. */
static inline bool fdn__json_int18(const char **pp, const char *e, int64_t *out)
{
    const char *p = *pp;
    bool neg = p < e && *p == '-';
    if (neg)
        p++;
    const char *d = p;
    int64_t v = 0;
    while (p < e && *p >= '0' && *p <= '9') { /* (more than 18 digits: refused below) */
        if (p - d < 18)
            v = v * 10 + (*p - '0');
        p++;
    }
    size_t nd = (size_t)(p - d);
    if (nd == 0 || nd > 18 || (nd > 1 && *d == '0') || (neg && v == 0))
        return false;
    if (p < e && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
        return false;
    *out = neg ? -v : v;
    *pp = p;
    return true;
}

#endif
