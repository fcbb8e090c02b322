/* Hexadecimal digits, for the parsers that decode %XX escapes and hex text (the admin's
 * request targets, Redis URLs, UUIDs in the PostgreSQL client). A static inline function and
 * nothing else: no libfdn symbol, so the admin surface (public API only, DESIGN.md) may use
 * it as well as the layers below.
 * Threads: any; no state.
 */
#ifndef FDN_CORE_HEX_H
#define FDN_CORE_HEX_H

/* The value of the hex digit c (0-9, a-f, A-F), or -1 when c is not one. */
static inline int fdn__hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
