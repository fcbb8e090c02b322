/**
 * @file fdn.h
 * @brief Umbrella header: includes every public header of libfdn.
 *
 * Applications may include this one header, or only the module headers they use
 * (`<fdn/runtime.h>`, `<fdn/registry.h>`...). Each header is self-contained.
 * `<fdn/admin.h>` is not included: it belongs to the optional fdn_admin library (link
 * fdn_admin, pkg-config fdn-admin) and is installed only with it; include it yourself.
 *
 * @since 0.1.0
 */
#ifndef FDN_FDN_H
#define FDN_FDN_H

#include "common.h"
#include <fdn/version.h> /* generated into the build tree; installed beside the others */
#include "error.h"
#include "clock.h"
#include "registry.h"
#include "tasks.h"
#include "supervisor.h"
#include "runtime.h"
#include "testing.h"
#include "config.h"
#include "events.h"
#include "telemetry.h"
#include "breaker.h"
#include "limiter.h"
#include "pool.h"
#include "protect.h"

#endif /* FDN_FDN_H */
