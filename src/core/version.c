/* DESIGN: version queries; no state. */
#include <fdn/common.h>
#include <fdn/version.h>

const char *fdn_version(void)
{
    return FDN_VERSION_STRING;
}

uint32_t fdn_version_hex(void)
{
    return (uint32_t)FDN_VERSION_HEX;
}
