/* Shared by the fuzz targets (not a target itself: CMake builds fuzz/fuzz_*.c only). */
#ifndef FDN_FUZZ_UTIL_H
#define FDN_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

#endif
