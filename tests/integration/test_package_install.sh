#!/usr/bin/env bash
# The Debian packages installed for real: CPack builds libfdn0, libfdn-admin0, libfdn-dev and
# fdn from this build (cmake/package.cmake), `dpkg -i` installs them into the system, then
#   - examples/embed_runtime.c is built with the system's pkg-config and compiler against the
#     installed files only (no -I or -L into the source or build tree) and run;
#   - /usr/bin/fdn answers `fdn version`; the man page is gzipped as Debian policy asks
#     (gzip -9n: no file name, no time stamp) and `man -l` renders it;
#   - lintian, where installed, reports no error and no warning but the two it cannot avoid;
#   - `dpkg -r` removes all four, and nothing they installed is left: no file dpkg listed, no
#     directory of their own (/usr/include/fdn, the CMake package), no package in dpkg's
#     database.
# Needs root and dpkg; skips (exit 0 with a note) otherwise, and when a package of these names
# is already installed (it would replace the machine's own copy). Packages this test installed
# are removed on any exit.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: not root (dpkg -i installs into the system)"
    exit 0
fi
for t in dpkg dpkg-deb dpkg-query cpack pkg-config; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1; }
version=$(cache_get CMAKE_PROJECT_VERSION)
major=${version%%.*}
# the library packages are named after their sonames (Debian policy 8.1)
PKGS=(fdn libfdn-dev)
[ "$(cache_get FDN_BUILD_ADMIN)" = OFF ] || PKGS+=("libfdn-admin$major")
PKGS+=("libfdn$major")
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }
for p in "${PKGS[@]}"; do
    if installed "$p"; then
        echo "SKIP: package $p is already installed on this machine; not replacing it"
        exit 0
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-pkg-install.XXXXXX")
ours=0
cleanup() {
    if [ $ours -eq 1 ]; then
        for p in "${PKGS[@]}"; do
            installed "$p" && dpkg -r "$p" >/dev/null 2>&1 || true
            dpkg -P "$p" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail=0
cc=$(cache_get CMAKE_C_COMPILER)
cc=${cc:-cc}

echo "== cpack -G DEB"
(cd "$FDN_BINARY_DIR" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
    { echo "FAIL: cpack"; cat "$work/cpack.log"; exit 1; }
debs=()
for p in "${PKGS[@]}"; do
    f=$(find "$work/pkg" -maxdepth 1 -name "${p}_${version}_*.deb" | head -n 1)
    [ -n "$f" ] || { echo "FAIL: no $p package"; exit 1; }
    debs+=("$f")
done

# lintian, where installed: no error and no warning, but maintainer-script-empty on the
# library packages' postinst/postrm: CPack writes postinst/postrm calling ldconfig for any
# package holding shared libraries unless the package brings its own, and lintian wants an
# ldconfig trigger instead (packaging/triggers), so the scripts supplied do nothing.
# A build configured for another prefix than /usr (the test builds; `make package` uses /usr)
# installs its .pc files in lib/pkgconfig, not the multiarch directory GNUInstallDirs picks
# for /usr: lintian's pkg-config-unavailable-for-cross-compilation is expected there only.
allowed='^W: libfdn[-a-z]*[0-9]+: maintainer-script-empty \[post(inst|rm)\]$'
[ "$(cache_get CMAKE_INSTALL_PREFIX)" = /usr ] ||
    allowed="$allowed|^W: libfdn-dev: pkg-config-unavailable-for-cross-compilation \[usr/lib/pkgconfig/[a-z-]+\.pc\]$"
if command -v lintian >/dev/null; then
    echo "== lintian"
    timeout 300 lintian "${debs[@]}" >"$work/lintian.log" 2>&1 || true
    if grep -E '^[EW]: ' "$work/lintian.log" | grep -vE "$allowed"; then
        echo "FAIL: lintian tags above"; fail=1
    fi
fi

echo "== dpkg -i ${debs[*]##*/}"
ours=1
dpkg -i "${debs[@]}" >"$work/dpkg-i.log" 2>&1 || { echo "FAIL: dpkg -i"; cat "$work/dpkg-i.log"; exit 1; }
for p in "${PKGS[@]}"; do
    installed "$p" || { echo "FAIL: $p not installed after dpkg -i"; fail=1; }
    dpkg -L "$p" >>"$work/files.list"
done
dpkg-query -W -f='${Version}\n' "libfdn$major" | grep -qx "$version" || { echo "FAIL: installed libfdn$major version"; fail=1; }

echo "== build examples/embed_runtime.c against the installed files"
# the system's pkg-config search path only
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --variable=prefix fdn)" = /usr ] || { echo "FAIL: pkg-config finds fdn.pc with prefix $(pkg-config --variable=prefix fdn)"; fail=1; }
grep -qx "$(pkg-config --path fdn 2>/dev/null || find /usr -name fdn.pc -path '*pkgconfig*' | head -n 1)" "$work/files.list" ||
    { echo "FAIL: the fdn.pc pkg-config uses is not the package's"; fail=1; }
cflags=$(pkg-config --cflags fdn)
libs=$(pkg-config --libs fdn)
case " $cflags $libs " in
*"$FDN_SOURCE_DIR"* | *"$FDN_BINARY_DIR"*) echo "FAIL: flags point into the source or build tree: $cflags $libs"; fail=1 ;;
esac
# shellcheck disable=SC2086
(cd "$work" && "$cc" -std=c11 -o embed "$FDN_SOURCE_DIR/examples/embed_runtime.c" $cflags $libs -lpthread) \
    >"$work/cc.log" 2>&1 || { echo "FAIL: embed_runtime.c against the installed packages:"; cat "$work/cc.log"; exit 1; }
lib=$(ldd "$work/embed" | awk '$1 ~ /^libfdn\.so/ {print $3}')
[ -n "$lib" ] && grep -qx "$(readlink -f "$lib")" <(xargs -r readlink -f <"$work/files.list") ||
    { echo "FAIL: the example loads '$lib', not the installed libfdn"; fail=1; }
out=$(cd "$work" && timeout 60 ./embed 2>&1) || { echo "FAIL: the example failed: $out"; fail=1; }
[ -n "$out" ] || { echo "FAIL: the example printed nothing"; fail=1; }
command -v fdn >/dev/null && [ "$(command -v fdn)" = /usr/bin/fdn ] || { echo "FAIL: fdn not on PATH at /usr/bin/fdn"; fail=1; }
/usr/bin/fdn version | grep -q "fdn $version" || { echo "FAIL: installed fdn version"; fail=1; }

echo "== man page"
page=/usr/share/man/man1/fdn.1.gz
if [ ! -f "$page" ]; then
    echo "FAIL: $page not installed"; fail=1
else
    # gzip header: byte 3 flags (FNAME = 0x08 must be clear), bytes 4..7 mtime (must be 0)
    hdr=$(od -An -tu1 -N8 "$page" | tr -s ' ')
    read -r m1 m2 _ flags t0 t1 t2 t3 <<<"$hdr"
    [ "$m1 $m2" = "31 139" ] || { echo "FAIL: $page is not gzip"; fail=1; }
    [ $((flags & 8)) -eq 0 ] && [ "$t0$t1$t2$t3" = 0000 ] ||
        { echo "FAIL: $page carries a file name or time stamp (not gzip -n)"; fail=1; }
    cmp -s <(gzip -dc "$page") "$FDN_SOURCE_DIR/docs/fdn.1" || { echo "FAIL: $page is not docs/fdn.1"; fail=1; }
    if command -v man >/dev/null; then
        rendered=$(MANWIDTH=100 man -l "$page" 2>"$work/man.err" | col -b 2>/dev/null || true)
        grep -q 'fdn serve' <<<"$rendered" && grep -qi '^NAME' <<<"$rendered" ||
            { echo "FAIL: man -l $page: $(head -c 300 <<<"$rendered") $(cat "$work/man.err")"; fail=1; }
    else
        echo "note: man not installed; not rendered"
    fi
fi

echo "== dpkg -r ${PKGS[*]}"
dpkg -r "${PKGS[@]}" >"$work/dpkg-r.log" 2>&1 || { echo "FAIL: dpkg -r"; cat "$work/dpkg-r.log"; exit 1; }
ours=0
# Removed: unknown to dpkg, or "rc" with no configuration file at all (a library package keeps
# that state because it has a postrm: dpkg keeps the record for `postrm purge`); then purged,
# which must leave no record.
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in
    "" | un*) ;;
    rc*)
        conf=$(dpkg-query -W -f='${Conffiles}' "$p" 2>/dev/null || true)
        [ -z "$conf" ] || { echo "FAIL: $p left configuration files: $conf"; fail=1; }
        dpkg -P "$p" >/dev/null 2>&1 || { echo "FAIL: dpkg -P $p"; fail=1; }
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in "" | un*) ;; *) echo "FAIL: $p still known to dpkg after purge: '$st'"; fail=1 ;; esac
        ;;
    *) echo "FAIL: $p not removed: '$st'"; fail=1 ;;
    esac
done
left=0
while IFS= read -r f; do
    [ -d "$f" ] && continue
    if [ -e "$f" ] || [ -L "$f" ]; then
        echo "FAIL: left behind: $f"; left=1
    fi
done <"$work/files.list"
for d in /usr/include/fdn "$(dirname "$(grep -m1 '/cmake/fdn/' "$work/files.list")")"; do
    [ -e "$d" ] && { echo "FAIL: directory left behind: $d"; left=1; }
done
[ $left -eq 0 ] || fail=1
command -v fdn >/dev/null && { echo "FAIL: fdn still on PATH"; fail=1; }

[ $fail -eq 0 ] || exit 1
echo "package install: ok (${debs[*]##*/} installed, example built and run, removed cleanly)"
