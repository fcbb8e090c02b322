#!/usr/bin/env bash
# The Debian packages (cmake/package.cmake, `make package`): CPack builds libfdnN,
# libfdn-adminN (N: the soname's version), libfdn-dev and fdn from this build's install rules
# into a temporary directory; each is unpacked with `dpkg-deb -x` into one temporary root
# (never installed into the system, so nothing needs undoing): libfdnN holds only libfdn.so.N,
# libfdn-adminN only libfdn_admin.so.N (and depends on libfdnN), libfdn-dev the headers, .pc
# files and CMake package and depends on both of the same version, fdn the program, fdn(1)
# and the systemd unit; each carries its copyright and changelog. examples/embed_runtime.c is
# then built against the unpacked files only (pkg-config with the root as sysroot) and run
# against the unpacked libfdn.so.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
for t in cpack dpkg-deb pkg-config; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
version=$(cache_get CMAKE_PROJECT_VERSION)
admin=$(cache_get FDN_BUILD_ADMIN)
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}
major=${version%%.*}
lib="libfdn$major"
adminlib="libfdn-admin$major"
PKGS=("$lib" libfdn-dev fdn)
[ "$admin" != ON ] || PKGS+=("$adminlib")

echo "== cpack -G DEB"
(cd "$FDN_BINARY_DIR" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
    { echo "FAIL: cpack"; cat "$work/cpack.log"; exit 1; }
fail=0
deb() { find "$work/pkg" -maxdepth 1 -name "$1_${version}_*.deb" | head -n 1; }
for p in "${PKGS[@]}"; do
    [ -n "$(deb $p)" ] || { echo "FAIL: no $p package: $(ls "$work/pkg")"; cat "$work/cpack.log"; exit 1; }
done

# contents of each package
contents() { dpkg-deb -c "$(deb "$1")" | sed -E 's/ -> .*//' | awk '{print $NF}' | sed 's|^\./|/|'; }
contents "$lib" >"$work/libfdn.list"
contents libfdn-dev >"$work/dev.list"
contents fdn >"$work/fdn.list"
grep -qE '^/usr/lib/.*libfdn\.so\.[0-9.]+$' "$work/libfdn.list" || { echo "FAIL: $lib has no libfdn.so.N"; fail=1; }
if grep -qE '\.h$|\.a$|\.pc$|/bin/|libfdn_admin' "$work/libfdn.list"; then echo "FAIL: $lib holds more than libfdn.so"; fail=1; fi
for p in "${PKGS[@]}"; do
    for f in copyright changelog.gz; do
        contents "$p" | grep -qx "/usr/share/doc/$p/$f" || { echo "FAIL: $p lacks /usr/share/doc/$p/$f"; fail=1; }
    done
done
for f in '/usr/include/fdn/runtime.h$' '/usr/include/fdn/version.h$' 'pkgconfig/fdn\.pc$' \
    'cmake/fdn/fdnConfig\.cmake$' 'libfdn\.a$' 'libfdn\.so$'; do
    grep -qE "$f" "$work/dev.list" || { echo "FAIL: libfdn-dev lacks $f"; fail=1; }
done
if [ "$admin" = ON ]; then
    contents "$adminlib" >"$work/admin.list"
    grep -qE '^/usr/lib/.*libfdn_admin\.so\.[0-9.]+$' "$work/admin.list" || { echo "FAIL: $adminlib has no libfdn_admin.so.N"; fail=1; }
    [[ "$(dpkg-deb -f "$(deb "$adminlib")" Depends)" == *"$lib (= $version)"* ]] || { echo "FAIL: $adminlib does not depend on $lib"; fail=1; }
    grep -q '/usr/include/fdn/admin.h$' "$work/dev.list" || { echo "FAIL: libfdn-dev lacks admin.h"; fail=1; }
    grep -q '^/usr/lib/systemd/system/fdn.service$' "$work/fdn.list" || { echo "FAIL: fdn lacks the unit"; fail=1; }
fi
for f in '^/usr/bin/fdn$' '^/usr/share/man/man1/fdn\.1\.gz$'; do
    grep -qE "$f" "$work/fdn.list" || { echo "FAIL: fdn lacks $f"; fail=1; }
done
depends=$(dpkg-deb -f "$(deb libfdn-dev)" Depends)
[[ "$depends" == *"$lib (= $version)"* ]] || { echo "FAIL: libfdn-dev Depends: $depends"; fail=1; }
[ "$admin" != ON ] || [[ "$depends" == *"$adminlib (= $version)"* ]] || { echo "FAIL: libfdn-dev Depends: $depends"; fail=1; }
[ -n "$(dpkg-deb -f "$(deb "$lib")" Depends)" ] || { echo "FAIL: $lib has no Depends (shlibdeps)"; fail=1; }

# build and run the example against the unpacked packages only
root="$work/root"
for p in "${PKGS[@]}"; do dpkg-deb -x "$(deb $p)" "$root"; done
pcdir=$(dirname "$(find "$root" -name fdn.pc | head -n 1)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir"
grep -q '^prefix=/usr$' "$pcdir/fdn.pc" || { echo "FAIL: fdn.pc prefix: $(grep ^prefix "$pcdir/fdn.pc")"; fail=1; }
cflags=$(pkg-config --cflags fdn)
libs=$(pkg-config --libs fdn)
[[ "$cflags" == *"-I$root/usr/include"* ]] || { echo "FAIL: cflags $cflags"; fail=1; }
# shellcheck disable=SC2086
"$cc" -std=c11 -o "$work/embed" "$FDN_SOURCE_DIR/examples/embed_runtime.c" $cflags $libs -lpthread \
    >"$work/cc.log" 2>&1 || { echo "FAIL: embed_runtime.c against the packages:"; cat "$work/cc.log"; exit 1; }
ldd_out=$(LD_LIBRARY_PATH="$libdir" ldd "$work/embed")
[[ "$ldd_out" == *"$libdir/libfdn.so"* ]] || { echo "FAIL: the example does not load the packaged libfdn: $ldd_out"; fail=1; }
out=$(LD_LIBRARY_PATH="$libdir" timeout 60 "$work/embed" 2>&1) || { echo "FAIL: the example failed: $out"; fail=1; }
[ -n "$out" ] || { echo "FAIL: the example printed nothing"; fail=1; }
"$root/usr/bin/fdn" version | grep -q "fdn $version" || { echo "FAIL: packaged fdn version"; fail=1; }

[ $fail -eq 0 ] || exit 1
echo "packages: ok ($(cd "$work/pkg" && ls ./*.deb | xargs -n1 basename | paste -sd' ' -))"
