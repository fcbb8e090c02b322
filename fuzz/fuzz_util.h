/* Shared by the fuzz targets (not a target itself: CMake builds fuzz/fuzz_*.c only). */
#ifndef FDN_FUZZ_UTIL_H
#define FDN_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Defined by fuzz/replay_main.c only, so NULL under libFuzzer: a target that runs its costly
 * paths on a sample of the inputs (to keep its rate) runs them on every input under the ctest
 * replay, which then checks each corpus input fully. */
extern const int fdn_fuzz_replaying __attribute__((weak));

#define FDN_FUZZ_REPLAYING() (&fdn_fuzz_replaying != (const int *)0)

/* For targets that keep state across inputs (a service created once): libFuzzer's per-input
 * leak check runs LeakSanitizer over the whole heap whenever an input's mallocs and frees
 * differ, which such a target's inputs do by design (state grows, RCU frees later), and that
 * scan cost several times the input itself. This adds -detect_leaks=0 after the command
 * line's flags (libFuzzer's last one wins); LeakSanitizer's check at exit (ASAN_OPTIONS
 * detect_leaks=1) still reports memory that became unreachable, and the ctest replay of the
 * corpus runs every input under it. Expands to LLVMFuzzerInitialize. */
#define FDN_FUZZ_NO_PER_INPUT_LEAK_CHECK()                                                         \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                                             \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                              \
    {                                                                                              \
        static char *args_[64];                                                                    \
        static char flag_[] = "-detect_leaks=0";                                                   \
        if (*argc < 1 || *argc > 62)                                                               \
            return 0;                                                                              \
        for (int i_ = 0; i_ < *argc; i_++)                                                         \
            args_[i_] = (*argv)[i_];                                                               \
        args_[*argc] = flag_;                                                                      \
        args_[*argc + 1] = 0;                                                                      \
        *argc += 1;                                                                                \
        *argv = args_;                                                                             \
        return 0;                                                                                  \
    }

/* Damage the fn bytes of a file at f as an input of the file targets says (fuzz_event_db,
 * fuzz_event_spool): bytes 1-2 of data a truncation (big-endian, in 64-byte units; 0 = none),
 * then patches of 3 bytes from byte 3 on: a 16-bit offset (modulo the file's size) and a byte
 * XORed there. Returns the file's new length. */
static inline size_t fdn_fuzz_damage(uint8_t *f, size_t fn, const uint8_t *data, size_t size)
{
    size_t trunc = size >= 3 ? ((size_t)data[1] << 8 | data[2]) * 64 : 0;
    if (trunc > 0 && trunc < fn)
        fn = trunc;
    for (size_t i = 3; i + 3 <= size && fn > 0; i += 3) {
        size_t off = ((size_t)data[i] << 8 | data[i + 1]) % fn;
        f[off] ^= data[i + 2];
    }
    return fn;
}

/* Bytes a target keeps across inputs (a template file). */
typedef struct fdn_fuzz_blob {
    uint8_t *p;
    size_t n;
} fdn_fuzz_blob_t;

/* A malloc'd copy of p[0..n) (one byte at least is allocated, so n may be 0); aborts when out
 * of memory. */
static inline uint8_t *fdn_fuzz_dup(const void *p, size_t n)
{
    uint8_t *c = malloc(n > 0 ? n : 1);
    if (c == NULL)
        abort();
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* The file an input of the file targets (fuzz_event_db, fuzz_event_spool) stands for, in
 * malloc'd bytes (*fn of them) for the caller to free: with raw, the input after its mode byte
 * as it is; otherwise a copy of template t damaged as the input says (fdn_fuzz_damage), with
 * *intact telling whether it came through whole (not truncated, nothing patched: at most 3
 * input bytes). size must be at least 1. */
static inline uint8_t *fdn_fuzz_file(const uint8_t *data, size_t size, bool raw,
                                     const fdn_fuzz_blob_t *t, size_t *fn, bool *intact)
{
    *intact = false;
    if (raw) {
        *fn = size - 1;
        return fdn_fuzz_dup(data + 1, size - 1);
    }
    uint8_t *f = fdn_fuzz_dup(t->p, t->n);
    *fn = fdn_fuzz_damage(f, t->n, data, size);
    *intact = *fn == t->n && size <= 3;
    return f;
}

#endif
