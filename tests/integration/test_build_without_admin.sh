#!/usr/bin/env bash
# A build without the admin (-DFDN_BUILD_ADMIN=OFF) configures: a fresh tree of the same
# sources, generator and compiler, tests, examples and benchmarks on, generates without
# looking for libmicrohttpd, and has libfdn and the fdn program but no fdn_admin target and no
# admin test. (Configure only, to stay cheap; the full OFF build is a manual check, README.)
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-options.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
generator=$(cache_get CMAKE_GENERATOR)

cmake -S "$FDN_SOURCE_DIR" -B "$work/build" ${generator:+-G "$generator"} \
    ${cc:+-DCMAKE_C_COMPILER="$cc"} -DFDN_BUILD_ADMIN=OFF -DFDN_BUILD_TESTS=ON \
    -DFDN_BUILD_EXAMPLES=ON -DFDN_BUILD_BENCH=ON >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; echo "FAIL: configure with FDN_BUILD_ADMIN=OFF"; exit 1; }

fail=0
if grep -q '^MHD_' "$work/build/CMakeCache.txt"; then
    echo "FAIL: a build without the admin looked for libmicrohttpd"; fail=1
fi
targets=$(cmake --build "$work/build" --target help)
for t in fdn fdn_static fdn_cli; do
    grep -Eq "(^|[ .:])$t([ :]|$)" <<<"$targets" || { echo "FAIL: no target $t"; fail=1; }
done
if grep -q 'fdn_admin' <<<"$targets"; then
    echo "FAIL: an fdn_admin target exists without FDN_BUILD_ADMIN"; fail=1
fi
tests=$(cd "$work/build" && ctest -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p' |
    grep -v '^integration_test_build_without_admin_sh$')
if grep -Eq 'http|admin' <<<"$tests"; then
    echo "FAIL: admin tests registered without the admin:"; grep -E 'http|admin' <<<"$tests"
    fail=1
fi
grep -q 'check_layers' <<<"$tests" || { echo "FAIL: no layer check without the admin"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "PASS: FDN_BUILD_ADMIN=OFF configures without libmicrohttpd, with no admin target or test"
