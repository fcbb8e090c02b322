#!/usr/bin/env bash
# Install the build tree into a temporary prefix, then build and run a consumer program
# against the installed package three ways: pkg-config with the shared library, pkg-config
# --static with the static library, and a CMake project using find_package(fdn) with
# fdn::fdn and fdn::fdn_static. A consumer of libfdn alone has no libmicrohttpd on its link
# line nor in `ldd`. When the build has the admin (FDN_BUILD_ADMIN), an admin consumer that
# serves GET /metrics is built the same three ways against fdn_admin (pkg-config fdn-admin,
# find_package(fdn COMPONENTS admin)); without it, no admin file is installed. In a sanitizer
# build the installed package itself carries the -fsanitize link flags (fdn.pc and the fdn::
# targets), so nothing is special-cased here.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}
generator=$(cache_get CMAKE_GENERATOR)
admin=$(cache_get FDN_BUILD_ADMIN)

echo "== cmake --install into $prefix"
cmake --install "$FDN_BINARY_DIR" --prefix "$prefix" >"$work/install.log"

pc=$(find "$prefix" -name fdn.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "FAIL: fdn.pc not installed"; cat "$work/install.log"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libfdn.a" "$libdir/libfdn.so" "$prefix/include/fdn/version.h" \
         "$prefix/include/fdn/common.h" "$libdir/cmake/fdn/fdnConfig.cmake" \
         "$libdir/cmake/fdn/fdnConfigVersion.cmake" "$libdir/cmake/fdn/fdnTargets.cmake"; do
    [ -e "$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
# SONAME follows the major version.
soname=$(objdump -p "$libdir/libfdn.so" | awk '$1 == "SONAME" {print $2}')
[[ "$soname" =~ ^libfdn\.so\.[0-9]+$ ]] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
# No private header is installed.
if [ -n "$(find "$prefix/include" -name '*_int.h')" ]; then
    echo "FAIL: private headers installed"; exit 1
fi
# libfdn does not depend on libmicrohttpd (only fdn_admin does).
needed=$(objdump -p "$libdir/libfdn.so" | awk '$1 == "NEEDED" {print $2}')
if grep -q microhttpd <<<"$needed"; then
    echo "FAIL: libfdn.so needs libmicrohttpd"; exit 1
fi
# the program's man page
[ -e "$prefix/share/man/man1/fdn.1.gz" ] || { echo "FAIL: share/man/man1/fdn.1.gz not installed"; exit 1; }
admin_files=("$prefix/lib/systemd/system/fdn.service" "$libdir/libfdn_admin.a" "$libdir/libfdn_admin.so" "$prefix/include/fdn/admin.h"
             "$libdir/pkgconfig/fdn-admin.pc" "$libdir/cmake/fdn/fdnAdminTargets.cmake")
for f in "${admin_files[@]}"; do
    if [ "$admin" = ON ] && [ ! -e "$f" ]; then
        echo "FAIL: $f not installed"; exit 1
    elif [ "$admin" != ON ] && [ -e "$f" ]; then
        echo "FAIL: $f installed by a build without the admin"; exit 1
    fi
done

src="$FDN_SOURCE_DIR/tests/integration/install_consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists fdn || { echo "FAIL: pkg-config cannot find fdn"; exit 1; }
ver=$(pkg-config --modversion fdn)
[ "$ver" = "$(cache_get CMAKE_PROJECT_VERSION)" ] || { echo "FAIL: fdn.pc version $ver"; exit 1; }

echo "== pkg-config, shared"
for flags in "--libs" "--static --libs"; do
    # shellcheck disable=SC2086
    libs=$(pkg-config $flags fdn)
    if grep -q microhttpd <<<"$libs"; then
        echo "FAIL: pkg-config $flags fdn names libmicrohttpd"; exit 1
    fi
done
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_shared" "$src/consumer.c" \
    $(pkg-config --cflags fdn) $(pkg-config --libs fdn) -Wl,-rpath,"$libdir"
# (ldd's output is captured first: `ldd | grep -q` fails under pipefail when grep exits early)
deps=$(ldd "$work/consumer_shared")
grep -q "$libdir/libfdn.so" <<<"$deps" ||
    { echo "FAIL: consumer_shared does not load the installed libfdn.so"; ldd "$work/consumer_shared"; exit 1; }
if grep -q 'libmicrohttpd\|libfdn_admin' <<<"$deps"; then
    echo "FAIL: consumer_shared of libfdn alone loads the admin or libmicrohttpd:"; echo "$deps"
    exit 1
fi
"$work/consumer_shared"

echo "== pkg-config --static, static"
static_libs=$(pkg-config --static --libs fdn | sed 's/\(^\| \)-lfdn\( \|$\)/\1-l:libfdn.a\2/')
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_static" "$src/consumer.c" \
    $(pkg-config --cflags fdn) $static_libs
deps=$(ldd "$work/consumer_static")
if grep -q 'libfdn\.so' <<<"$deps"; then
    echo "FAIL: consumer_static links libfdn.so"; exit 1
fi
if grep -q 'libmicrohttpd' <<<"$deps"; then
    echo "FAIL: consumer_static of libfdn alone loads libmicrohttpd"; exit 1
fi
"$work/consumer_static"

if [ "$admin" = ON ]; then
    echo "== pkg-config fdn-admin, shared"
    [ "$(pkg-config --modversion fdn-admin)" = "$ver" ] || { echo "FAIL: fdn-admin.pc version"; exit 1; }
    libs=$(pkg-config --libs fdn-admin)
    if grep -q microhttpd <<<"$libs"; then
        echo "FAIL: pkg-config --libs fdn-admin names libmicrohttpd (private to libfdn_admin.so)"
        exit 1
    fi
    # shellcheck disable=SC2046
    "$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_admin" "$src/consumer_admin.c" \
        $(pkg-config --cflags fdn-admin) $(pkg-config --libs fdn-admin) -Wl,-rpath,"$libdir"
    deps=$(ldd "$work/consumer_admin")
    for l in libfdn_admin.so libfdn.so; do
        grep -q "$libdir/$l" <<<"$deps" ||
            { echo "FAIL: consumer_admin does not load the installed $l"; echo "$deps"; exit 1; }
    done
    grep -q libmicrohttpd <<<"$deps" || { echo "FAIL: consumer_admin lacks libmicrohttpd"; exit 1; }
    "$work/consumer_admin"

    echo "== pkg-config --static fdn-admin, static"
    static_libs=$(pkg-config --static --libs fdn-admin |
        sed 's/\(^\| \)-lfdn_admin\( \|$\)/\1-l:libfdn_admin.a\2/; s/\(^\| \)-lfdn\( \|$\)/\1-l:libfdn.a\2/')
    grep -q microhttpd <<<"$static_libs" ||
        { echo "FAIL: pkg-config --static --libs fdn-admin lacks libmicrohttpd"; exit 1; }
    # shellcheck disable=SC2046,SC2086
    "$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_admin_static" \
        "$src/consumer_admin.c" $(pkg-config --cflags fdn-admin) $static_libs
    deps=$(ldd "$work/consumer_admin_static")
    if grep -q 'libfdn' <<<"$deps"; then
        echo "FAIL: consumer_admin_static links a shared libfdn"; echo "$deps"; exit 1
    fi
    "$work/consumer_admin_static"
fi

echo "== CMake find_package(fdn)"
# Without COMPONENTS admin first: fdn::fdn_admin must not appear (the consumer project checks).
cmake -S "$src" -B "$work/cmake-build0" ${generator:+-G "$generator"} -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug >"$work/cmake0.log" 2>&1 ||
    { cat "$work/cmake0.log"; echo "FAIL: consumer configure without the admin component"; exit 1; }
cmake -S "$src" -B "$work/cmake-build" ${generator:+-G "$generator"} -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug -DWITH_ADMIN="${admin:-OFF}" \
    >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; echo "FAIL: consumer configure"; exit 1; }
cmake --build "$work/cmake-build" >"$work/cmake-build.log" 2>&1 ||
    { cat "$work/cmake-build.log"; echo "FAIL: consumer build"; exit 1; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/cmake-build/consumer"
"$work/cmake-build/consumer_static"
if [ "$admin" = ON ]; then
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/cmake-build/consumer_admin"
    "$work/cmake-build/consumer_admin_static"
fi
echo "PASS"
