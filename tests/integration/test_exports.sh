#!/usr/bin/env bash
# The shared library exports exactly the public API: every dynamic symbol it defines is an
# fdn_* function or object declared with FDN_API in include/fdn/*.h (no fdn__ internals, no
# helpers that lost their `static`, nothing from a dependency), and every FDN_API declaration
# is exported (no public declaration without a definition).
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

lib=$(find "$FDN_BINARY_DIR" -maxdepth 1 -name "libfdn.so.*.*" -type f | head -n 1)
[ -n "$lib" ] || { echo "FAIL: libfdn.so not found under $FDN_BINARY_DIR"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-exports.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Defined dynamic symbols (functions, data, weak definitions); drop the linker-provided
# markers that some toolchains add.
nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u >"$work/exported"

# Names declared with FDN_API: the identifier right before the first '(' on the line (or the
# last identifier before ';' for objects).
grep -h 'FDN_API' "$FDN_SOURCE_DIR"/include/fdn/*.h | grep -v '#define' |
    sed -E 's/\(.*//; s/;.*//; s/[^A-Za-z0-9_]+$//; s/.*[^A-Za-z0-9_]//' | sort -u >"$work/declared"

fail=0
bad=$(grep -Ev '^fdn_[a-z0-9]' "$work/exported" || true)
internal=$(grep -E '^fdn__' "$work/exported" || true)
if [ -n "$bad$internal" ]; then
    echo "FAIL: exported symbols outside the fdn_ namespace or internal fdn__ ones:"
    printf '%s\n%s\n' "$bad" "$internal" | sed '/^$/d; s/^/  /'
    fail=1
fi
stray=$(comm -23 "$work/exported" "$work/declared")
if [ -n "$stray" ]; then
    echo "FAIL: exported but not declared with FDN_API in include/fdn/*.h:"
    sed 's/^/  /' <<<"$stray"
    fail=1
fi
missing=$(comm -13 "$work/exported" "$work/declared")
if [ -n "$missing" ]; then
    echo "FAIL: declared with FDN_API but not exported by $(basename "$lib"):"
    sed 's/^/  /' <<<"$missing"
    fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "PASS: $(wc -l <"$work/exported") symbols exported, all public"
