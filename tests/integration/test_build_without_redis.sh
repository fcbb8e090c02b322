#!/usr/bin/env bash
# A build without the Redis backend (-DFDN_WITH_REDIS=OFF) configures: a fresh tree of the same
# sources, generator and compiler, tests and benchmarks on, generates without looking for
# hiredis, and registers no engine test and no Redis fixture (the layer check stays). The
# engine backends are optional parts (DESIGN.md, "Backends and scale-out"). Configure only,
# to stay cheap.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-noredis.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
generator=$(cache_get CMAKE_GENERATOR)

cmake -S "$FDN_SOURCE_DIR" -B "$work/build" ${generator:+-G "$generator"} \
    ${cc:+-DCMAKE_C_COMPILER="$cc"} -DFDN_WITH_REDIS=OFF -DFDN_BUILD_TESTS=ON \
    -DFDN_BUILD_BENCH=ON >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; echo "FAIL: configure with FDN_WITH_REDIS=OFF"; exit 1; }

fail=0
if grep -q '^HIREDIS_' "$work/build/CMakeCache.txt"; then
    echo "FAIL: a build without the Redis backend looked for hiredis"; fail=1
fi
tests=$(cd "$work/build" && ctest -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p' |
    grep -v '^integration_test_build_without_redis_sh$')
if grep -Eq '^engine_|^redis_' <<<"$tests"; then
    echo "FAIL: Redis tests registered without the backend:"; grep -E '^engine_|^redis_' <<<"$tests"
    fail=1
fi
grep -q 'check_layers' <<<"$tests" || { echo "FAIL: no layer check without Redis"; fail=1; }
grep -q 'limiter_redis\|redis_limit' "$work/build/CMakeFiles/fdn_obj.dir/build.make" 2>/dev/null &&
    { echo "FAIL: the Redis backend is compiled into libfdn"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "PASS: FDN_WITH_REDIS=OFF configures without hiredis, with no Redis test"
