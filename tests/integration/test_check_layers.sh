#!/usr/bin/env bash
# The layer check itself: it must flag a lower layer calling up and an admin file calling an
# internal (a service's or core's), and accept a reference that points down or a public call
# from admin.
set -euo pipefail
src=${FDN_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/core" "$tmp/src/services" "$tmp/src/runtime" "$tmp/src/admin"
cc=${CC:-cc}
obj() { # obj <path without .c> <code>
    printf '%s\n' "$2" >"$tmp/$1.c"
    "$cc" -c "$tmp/$1.c" -o "$tmp/$1.c.o"
}
obj src/core/low 'int fdn_svc_thing(void); int fdn__low(void) { return fdn_svc_thing(); }'
obj src/services/svc 'int fdn__low(void); int fdn_svc_thing(void) { return 1; } int fdn__svc_internal(void) { return fdn__low(); }'
obj src/runtime/rt 'int fdn_svc_thing(void); int fdn_rt(void) { return fdn_svc_thing(); }'
obj src/admin/ok 'int fdn_svc_thing(void); int fdn__admin_ok(void) { return fdn_svc_thing(); }'
obj src/admin/bad 'int fdn__svc_internal(void); int fdn__admin_bad(void) { return fdn__svc_internal(); }'
obj src/admin/core_helper 'int fdn__low(void); int fdn__admin_helper(void) { return fdn__low(); }'

fail() { echo "test_check_layers: $*" >&2; exit 1; }

# Pointing down (runtime -> services, services -> core) and admin -> public API: clean.
out=$(bash "$src/scripts/check-layers.sh" "$tmp/src/services/svc.c.o" "$tmp/src/runtime/rt.c.o" \
    "$tmp/src/admin/ok.c.o") || fail "a clean set was refused: $out"

# core -> services, admin -> a service's fdn__ internal and admin -> a core helper: all
# flagged, exit 1.
set +e
out=$(bash "$src/scripts/check-layers.sh" "$tmp"/src/*/*.o)
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "expected exit 1 for violations, got $rc: $out"
grep -q 'src/core/low.c.o -> fdn_svc_thing (defined in src/services/svc.c.o)' <<<"$out" ||
    fail "core -> services not reported: $out"
grep -q 'src/admin/bad.c.o -> fdn__svc_internal (defined in src/services/svc.c.o)' <<<"$out" ||
    fail "admin -> service internals not reported: $out"
grep -q 'src/admin/core_helper.c.o -> fdn__low (defined in src/core/low.c.o)' <<<"$out" ||
    fail "admin -> core helper not reported: $out"
grep -q 'src/admin/ok.c.o' <<<"$out" && fail "admin's public call was reported: $out"

# A folder in no layer is refused.
mkdir -p "$tmp/src/extra" && cp "$tmp/src/runtime/rt.c.o" "$tmp/src/extra/x.c.o"
if bash "$src/scripts/check-layers.sh" "$tmp/src/extra/x.c.o" >/dev/null 2>&1; then
    fail "an object outside every layer was accepted"
fi
echo "test_check_layers: OK"
