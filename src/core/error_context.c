/*
 * DESIGN: thread-local error context. (Placeholder until the error-context module lands:
 * there is no current context yet, so nothing is filled.)
 */
#include "core/errctx.h"

void fdn__errctx_fill(fdn_error_t *err)
{
    (void)err;
}
