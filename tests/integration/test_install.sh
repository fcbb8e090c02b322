#!/usr/bin/env bash
# Install the build tree into a temporary prefix, then build and run a consumer program
# against the installed package three ways: pkg-config with the shared library, pkg-config
# --static with the static library, and a CMake project using find_package(fdn) with
# fdn::fdn and fdn::fdn_static. In a sanitizer build the installed package itself carries
# the -fsanitize link flags (fdn.pc and the fdn:: targets), so nothing is special-cased here.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}
generator=$(cache_get CMAKE_GENERATOR)

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

src="$FDN_SOURCE_DIR/tests/integration/install_consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists fdn || { echo "FAIL: pkg-config cannot find fdn"; exit 1; }
ver=$(pkg-config --modversion fdn)
[ "$ver" = "$(cache_get CMAKE_PROJECT_VERSION)" ] || { echo "FAIL: fdn.pc version $ver"; exit 1; }

echo "== pkg-config, shared"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_shared" "$src/consumer.c" \
    $(pkg-config --cflags fdn) $(pkg-config --libs fdn) -Wl,-rpath,"$libdir"
# (ldd's output is captured first: `ldd | grep -q` fails under pipefail when grep exits early)
deps=$(ldd "$work/consumer_shared")
grep -q "$libdir/libfdn.so" <<<"$deps" ||
    { echo "FAIL: consumer_shared does not load the installed libfdn.so"; ldd "$work/consumer_shared"; exit 1; }
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
"$work/consumer_static"

echo "== CMake find_package(fdn)"
cmake -S "$src" -B "$work/cmake-build" ${generator:+-G "$generator"} -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; echo "FAIL: consumer configure"; exit 1; }
cmake --build "$work/cmake-build" >"$work/cmake-build.log" 2>&1 ||
    { cat "$work/cmake-build.log"; echo "FAIL: consumer build"; exit 1; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/cmake-build/consumer"
"$work/cmake-build/consumer_static"
echo "PASS"
