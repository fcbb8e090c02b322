/* FDN_ASSERT(cond): an internal invariant check, the executable form of what a DESIGN comment
 * states ("counts never go negative", "a child is only started from STOPPED").
 *
 * On (FDN_ASSERT_ENABLED 1) in Debug and sanitizer builds: a false cond prints
 * "file:line: func: assertion `cond' failed" to stderr and aborts. Off in Release builds: cond
 * is not evaluated (it is still compiled, inside sizeof, so it cannot rot), and the check costs
 * nothing. CMake decides with FDN_ASSERTS (AUTO: on for Debug or FDN_SANITIZE) and passes
 * FDN_ENABLE_ASSERTS=0/1; a build without that define follows NDEBUG.
 *
 * Rules: cond has no side effects (it vanishes in Release); FDN_ASSERT is for states the code
 * itself guarantees, never for input validation or errors a caller can cause, which return
 * FDN_E* codes. Threads: any.
 */
#ifndef FDN_CORE_ASSERT_H
#define FDN_CORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#if defined(FDN_ENABLE_ASSERTS)
#if FDN_ENABLE_ASSERTS
#define FDN_ASSERT_ENABLED 1
#else
#define FDN_ASSERT_ENABLED 0
#endif
#elif defined(NDEBUG)
#define FDN_ASSERT_ENABLED 0
#else
#define FDN_ASSERT_ENABLED 1
#endif

#if FDN_ASSERT_ENABLED

/* The failure path: out of line in spirit (cold, never returns), inline so core needs no
 * extra object for it. */
__attribute__((cold, noreturn)) static inline void
fdn__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "%s:%d: %s: assertion `%s' failed\n", file, line, func, expr);
    fflush(stderr);
    abort();
}

#define FDN_ASSERT(cond)                                                                           \
    (__builtin_expect(!!(cond), 1) ? (void)0                                                       \
                                   : fdn__assert_fail(#cond, __FILE__, __LINE__, __func__))

#else

#define FDN_ASSERT(cond) ((void)sizeof(!(cond)))

#endif

#endif
