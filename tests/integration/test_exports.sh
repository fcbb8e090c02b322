#!/usr/bin/env bash
# Each shared library exports exactly its public API: every dynamic symbol libfdn.so defines
# is an fdn_* function or object declared with FDN_API in include/fdn/*.h other than admin.h,
# and every dynamic symbol libfdn_admin.so defines is one declared with FDN_API in admin.h
# (no fdn__ internals, no helpers that lost their `static`, nothing from a dependency), and
# every FDN_API declaration is exported by its library. libfdn.so neither exports an admin
# symbol nor depends on libmicrohttpd. In a build without the admin (FDN_BUILD_ADMIN=OFF)
# only libfdn is checked.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
inc="$FDN_SOURCE_DIR/include/fdn"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-exports.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Names declared with FDN_API in the given headers: the identifier right before the first '('
# on the line (or the last identifier before ';' for objects).
declared() {
    grep -h 'FDN_API' "$@" | grep -v '#define' |
        sed -E 's/\(.*//; s/;.*//; s/[^A-Za-z0-9_]+$//; s/.*[^A-Za-z0-9_]//' | sort -u
}

fail=0
# check_lib NAME LIB DECLARED: LIB's defined dynamic symbols are exactly the DECLARED list.
check_lib() {
    local name=$1 lib=$2 decl=$3
    # Defined dynamic symbols (functions, data, weak definitions); drop the linker-provided
    # markers that some toolchains add.
    nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' |
        grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u >"$work/$name.exported"
    local bad internal stray missing
    bad=$(grep -Ev '^fdn_[a-z0-9]' "$work/$name.exported" || true)
    internal=$(grep -E '^fdn__' "$work/$name.exported" || true)
    if [ -n "$bad$internal" ]; then
        echo "FAIL: $name exports symbols outside the fdn_ namespace or internal fdn__ ones:"
        printf '%s\n%s\n' "$bad" "$internal" | sed '/^$/d; s/^/  /'
        fail=1
    fi
    stray=$(comm -23 "$work/$name.exported" "$decl")
    if [ -n "$stray" ]; then
        echo "FAIL: $name exports symbols not declared with FDN_API in its headers:"
        sed 's/^/  /' <<<"$stray"
        fail=1
    fi
    missing=$(comm -13 "$work/$name.exported" "$decl")
    if [ -n "$missing" ]; then
        echo "FAIL: declared with FDN_API but not exported by $(basename "$lib"):"
        sed 's/^/  /' <<<"$missing"
        fail=1
    fi
    echo "$name: $(wc -l <"$work/$name.exported") symbols exported"
}

lib=$(find "$FDN_BINARY_DIR" -maxdepth 1 -name "libfdn.so.*.*" -type f | head -n 1)
[ -n "$lib" ] || { echo "FAIL: libfdn.so not found under $FDN_BINARY_DIR"; exit 1; }
mapfile -t core_headers < <(find "$inc" -maxdepth 1 -name '*.h' ! -name admin.h | sort)
declared "${core_headers[@]}" >"$work/fdn.declared"
declared "$inc/admin.h" >"$work/admin.declared"
[ -s "$work/admin.declared" ] || { echo "FAIL: no FDN_API declaration found in admin.h"; exit 1; }
check_lib libfdn "$lib" "$work/fdn.declared"
# The admin's API is not in libfdn (checked above too, as not declared there; named here).
leaked=$(comm -12 "$work/libfdn.exported" "$work/admin.declared")
if [ -n "$leaked" ]; then
    echo "FAIL: libfdn.so exports the admin's API:"; sed 's/^/  /' <<<"$leaked"; fail=1
fi
# (objdump's output is captured first: `objdump | grep -q` fails under pipefail when grep
# exits early)
needed=$(objdump -p "$lib" | awk '$1 == "NEEDED" {print $2}')
if grep -q '^libmicrohttpd' <<<"$needed"; then
    echo "FAIL: libfdn.so depends on libmicrohttpd"; fail=1
fi

admin=$(find "$FDN_BINARY_DIR" -maxdepth 1 -name "libfdn_admin.so.*.*" -type f | head -n 1)
if grep -q '^FDN_BUILD_ADMIN:BOOL=ON$' "$FDN_BINARY_DIR/CMakeCache.txt"; then
    [ -n "$admin" ] || { echo "FAIL: libfdn_admin.so not found under $FDN_BINARY_DIR"; exit 1; }
    check_lib libfdn_admin "$admin" "$work/admin.declared"
    needed=$(objdump -p "$admin" | awk '$1 == "NEEDED" {print $2}')
    grep -q '^libfdn\.so' <<<"$needed" ||
        { echo "FAIL: libfdn_admin.so does not link libfdn.so"; fail=1; }
    grep -q '^libmicrohttpd' <<<"$needed" ||
        { echo "FAIL: libfdn_admin.so does not link libmicrohttpd"; fail=1; }
else
    [ -z "$admin" ] || { echo "FAIL: FDN_BUILD_ADMIN is OFF but $admin exists"; fail=1; }
fi
[ "$fail" = 0 ] || exit 1
echo "PASS: every exported symbol is its library's public API"
