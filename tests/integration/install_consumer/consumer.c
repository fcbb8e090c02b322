/* Consumer of an installed libfdn, built by tests/integration/test_install.sh through
 * pkg-config (static and shared) and through find_package(fdn) + fdn::fdn. */
#include <stdio.h>
#include <string.h>

#include <fdn/fdn.h>

int main(void)
{
    if (strcmp(fdn_version(), FDN_VERSION_STRING) != 0 || fdn_version_hex() != FDN_VERSION_HEX) {
        fprintf(stderr, "version mismatch: library %s, headers %s\n", fdn_version(),
                FDN_VERSION_STRING);
        return 1;
    }
    fdn_runtime_opts_t opts = FDN_RUNTIME_OPTS_INIT;
    opts.name = "install-consumer";
    fdn_runtime_t *rt = NULL;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn_runtime_create(&rt, &opts, &err);
    if (rc != 0) {
        fprintf(stderr, "fdn_runtime_create: %s: %s\n", fdn_err_name(rc), err.message);
        return 1;
    }
    if (strcmp(fdn_runtime_name(rt), "install-consumer") != 0) {
        fprintf(stderr, "unexpected runtime name %s\n", fdn_runtime_name(rt));
        fdn_runtime_destroy(rt);
        return 1;
    }
    fdn_runtime_destroy(rt);
    printf("fdn %s ok\n", fdn_version());
    return 0;
}
