#!/usr/bin/env bash
# Public headers: each one compiles on its own (self-contained, strict C11 warnings, and as
# C++ when a C++ compiler is present, which checks FDN_BEGIN_DECLS), and the umbrella fdn.h
# includes every header in include/fdn/ but admin.h, the optional fdn_admin library's, which
# it must not include (fdn.h compiles where only libfdn is installed).
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
inc="$FDN_SOURCE_DIR/include"
gen="$FDN_BINARY_DIR/include"
[ -f "$gen/fdn/version.h" ] || { echo "FAIL: $gen/fdn/version.h not generated"; exit 1; }
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1)
cc=${cc:-cc}
cxx=$(command -v c++ || command -v g++ || command -v clang++ || true)

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-headers.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail=0
for h in "$inc"/fdn/*.h; do
    name=$(basename "$h")
    printf '#include <fdn/%s>\n#include <fdn/%s>\nint fdn_header_check_%s;\n' \
        "$name" "$name" "${name%.h}" >"$work/one.c"
    if ! "$cc" -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes \
        -Wundef -Werror -fsyntax-only -I"$inc" -I"$gen" "$work/one.c" 2>"$work/err"; then
        echo "FAIL: <fdn/$name> is not self-contained C11:"; cat "$work/err"; fail=1
    fi
    if [ -n "$cxx" ]; then
        cp "$work/one.c" "$work/one.cpp"
        if ! "$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$inc" -I"$gen" \
            "$work/one.cpp" 2>"$work/err"; then
            echo "FAIL: <fdn/$name> does not compile as C++:"; cat "$work/err"; fail=1
        fi
    fi
    if [ "$name" = admin.h ]; then
        if grep -q "^#include.*admin\.h" "$inc/fdn/fdn.h"; then
            echo "FAIL: fdn.h includes admin.h (fdn_admin's header, not installed without it)"
            fail=1
        fi
    elif [ "$name" != fdn.h ] && ! grep -q "^#include \"$name\"" "$inc/fdn/fdn.h"; then
        echo "FAIL: fdn.h does not include $name"; fail=1
    fi
done
grep -q "^#include <fdn/version.h>" "$inc/fdn/fdn.h" || { echo "FAIL: fdn.h does not include version.h"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "PASS: every public header is self-contained; fdn.h includes all of libfdn's"
