#!/usr/bin/env bash
# The optional parts can be left out: a fresh tree of the same sources, generator and compiler
# (tests, examples and benchmarks on) configures with each option OFF, without looking for the
# part's library, and registers none of its targets or tests; the layer check stays.
#   FDN_BUILD_ADMIN=OFF  no libmicrohttpd, no fdn_admin target, no HTTP/admin test
#   FDN_WITH_REDIS=OFF   no hiredis, no Redis backend in libfdn, no Redis engine test or fixture
#   FDN_WITH_ETCD=OFF    no etcd backend in libfdn, no etcd engine test, fixture or fuzz target
#   FDN_WITH_POSTGRES=OFF  no libpq, no PostgreSQL backend in libfdn, no *_pg test or fixture
# (Configure only, to stay cheap; a full OFF build is a manual check, see README.)
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-options.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
generator=$(cache_get CMAKE_GENERATOR)
fail=0

# configure_off OPTION: configure $work/OPTION with OPTION=OFF; sets TARGETS and TESTS
configure_off() {
    local dir="$work/$1"
    cmake -S "$FDN_SOURCE_DIR" -B "$dir" ${generator:+-G "$generator"} \
        ${cc:+-DCMAKE_C_COMPILER="$cc"} -D"$1"=OFF -DFDN_BUILD_TESTS=ON \
        -DFDN_BUILD_EXAMPLES=ON -DFDN_BUILD_BENCH=ON >"$dir.log" 2>&1 ||
        { cat "$dir.log"; echo "FAIL: configure with $1=OFF"; exit 1; }
    TARGETS=$(cmake --build "$dir" --target help)
    TESTS=$(cd "$dir" && ctest -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p' |
        grep -v '^integration_test_build_options_sh$')
    grep -q 'check_layers' <<<"$TESTS" || { echo "FAIL: no layer check with $1=OFF"; fail=1; }
    for t in fdn fdn_static fdn_cli; do
        grep -Eq "(^|[ .:])$t([ :]|$)" <<<"$TARGETS" || { echo "FAIL: $1=OFF: no target $t"; fail=1; }
    done
}

configure_off FDN_BUILD_ADMIN
if grep -q '^MHD_' "$work/FDN_BUILD_ADMIN/CMakeCache.txt"; then
    echo "FAIL: a build without the admin looked for libmicrohttpd"; fail=1
fi
if grep -q 'fdn_admin' <<<"$TARGETS"; then
    echo "FAIL: an fdn_admin target exists without FDN_BUILD_ADMIN"; fail=1
fi
if grep -Eq 'http|admin' <<<"$TESTS"; then
    echo "FAIL: admin tests registered without the admin:"; grep -E 'http|admin' <<<"$TESTS"; fail=1
fi

configure_off FDN_WITH_REDIS
if grep -q '^HIREDIS_' "$work/FDN_WITH_REDIS/CMakeCache.txt"; then
    echo "FAIL: a build without the Redis backend looked for hiredis"; fail=1
fi
if grep -Eq '^engine_.*redis|^redis_' <<<"$TESTS"; then
    echo "FAIL: Redis tests registered without the backend:"; grep -E '^engine_.*redis|^redis_' <<<"$TESTS"
    fail=1
fi
if grep -q 'limiter_redis\|redis_limit' "$work/FDN_WITH_REDIS/CMakeFiles/fdn_obj.dir/build.make"; then
    echo "FAIL: the Redis backend is compiled into libfdn without FDN_WITH_REDIS"; fail=1
fi

configure_off FDN_WITH_ETCD
if grep -Eq 'etcd' <<<"$TESTS"; then
    echo "FAIL: etcd tests registered without the backend:"; grep -E 'etcd' <<<"$TESTS"; fail=1
fi
if grep -q 'curl' "$work/FDN_WITH_ETCD/CMakeFiles/fdn.dir/link.txt"; then
    echo "FAIL: libfdn links libcurl without FDN_WITH_ETCD"; fail=1
fi
if grep -q 'etcd_codec\|etcd_client\|registry_etcd' "$work/FDN_WITH_ETCD/CMakeFiles/fdn_obj.dir/build.make"; then
    echo "FAIL: the etcd backend is compiled into libfdn without FDN_WITH_ETCD"; fail=1
fi


configure_off FDN_WITH_POSTGRES
if grep -q '^LIBPQ_' "$work/FDN_WITH_POSTGRES/CMakeCache.txt"; then
    echo "FAIL: a build without the PostgreSQL backend looked for libpq"; fail=1
fi
if grep -Eq '_pg$|^postgres_' <<<"$TESTS"; then
    echo "FAIL: PostgreSQL tests registered without the backend:"; grep -E '_pg$|^postgres_' <<<"$TESTS"
    fail=1
fi
if grep -q 'event_pg' "$work/FDN_WITH_POSTGRES/CMakeFiles/fdn_obj.dir/build.make"; then
    echo "FAIL: the PostgreSQL backend is compiled into libfdn without FDN_WITH_POSTGRES"; fail=1
fi

[ "$fail" = 0 ] || exit 1
echo "PASS: FDN_BUILD_ADMIN=OFF, FDN_WITH_REDIS=OFF, FDN_WITH_ETCD=OFF and FDN_WITH_POSTGRES=OFF configure without their libraries, targets and tests"
