#!/usr/bin/env bash
# The failing-allocator sweep's coverage of the public API (tests/alloc/README.md).
#
#   gen-alloc-sweep.sh --list [HEADER]   every public function (FDN_API) of include/fdn/*.h, as
#                                        "header function", or of one header
#   gen-alloc-sweep.sh --check           fails (exit 1) unless every public function of every
#                                        header is swept in tests/alloc/test_alloc_<header>.c
#                                        (a SWEEP(sw, function, ...) in it, or a wrapper
#                                        FOO_SWEEP(function, ...)) or listed with a
#                                        reason in tests/alloc/exempt.txt, every header has its
#                                        test file, and exempt.txt names only public functions
#                                        that no test sweeps. Run by ctest (alloc_sweep_coverage).
#   gen-alloc-sweep.sh --stub HEADER     prints the skeleton of tests/alloc/test_alloc_<header>.c
#                                        with a SWEEP stub for every function not yet covered
#                                        (the start of a new header's test)
# HEADER is a base name such as config (include/fdn/config.h).
set -euo pipefail
root=${FDN_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
inc=$root/include/fdn
tdir=$root/tests/alloc
exempt=$tdir/exempt.txt

# Public functions of one header: the identifier before the first '(' of each FDN_API line
# that declares a function (the same rule as tests/integration/test_exports.sh).
functions() {
    grep -h 'FDN_API' "$1" | grep -v '#define' | grep '(' |
        sed -E 's/\(.*//; s/[^A-Za-z0-9_]+$//; s/.*[^A-Za-z0-9_]//' | sort -u
}

headers() {
    find "$inc" -maxdepth 1 -name '*.h' | sort | while read -r h; do
        [ -n "$(functions "$h")" ] && basename "$h" .h
    done
    return 0
}

# Functions a test file sweeps: the second argument of each SWEEP(sw, fn, ...), and the first
# argument of a wrapper macro named <NAME>_SWEEP(fn, ...) (one whose body is a SWEEP of fn) or
# of NOALLOC_COUNT(fn, ...) (alloc_sweep.h: the no-allocation check on a library thread).
swept() {
    [ -f "$1" ] || return 0
    { grep -oE '(^|[^A-Z_])SWEEP\([A-Za-z_][A-Za-z0-9_]*, *fdn_[a-z0-9_]+|[A-Z]+_SWEEP\(fdn_[a-z0-9_]+|NOALLOC_COUNT\(fdn_[a-z0-9_]+' "$1" || true; } |
        grep -oE 'fdn_[a-z0-9_]+$' | sort -u
}

# Exempted functions (first word of each non-comment line that has a reason after it).
exempted() {
    { grep -vE '^\s*(#|$)' "$exempt" || true; } | awk 'NF >= 2 {print $1}' | sort -u
}

case "${1:-}" in
--list)
    if [ -n "${2:-}" ]; then
        functions "$inc/$2.h" | sed "s/^/$2 /"
    else
        for b in $(headers); do functions "$inc/$b.h" | sed "s/^/$b /"; done
    fi
    ;;
--check)
    fail=0
    bad=$(grep -vE '^\s*(#|$)' "$exempt" | awk 'NF < 2' || true)
    if [ -n "$bad" ]; then
        echo "FAIL: exempt.txt entries without a reason:"
        sed 's/^/  /' <<<"$bad"
        fail=1
    fi
    all=$(for b in $(headers); do functions "$inc/$b.h"; done | sort -u)
    ex=$(exempted)
    stale=$(comm -13 <(echo "$all") <(echo "$ex"))
    if [ -n "$stale" ]; then
        echo "FAIL: exempt.txt names functions no public header declares:"
        sed 's/^/  /' <<<"$stale"
        fail=1
    fi
    total=0 nswept=0 nex=0
    # a function counts as swept by any header's test (common.h's allocator functions are
    # also declared in admin.h and protect.h)
    allsw=$(for f in "$tdir"/test_alloc_*.c; do swept "$f"; done | sort -u)
    for b in $(headers); do
        t=$tdir/test_alloc_$b.c
        if [ ! -f "$t" ]; then
            echo "FAIL: include/fdn/$b.h has no sweep test tests/alloc/test_alloc_$b.c" \
                "(start one with: scripts/gen-alloc-sweep.sh --stub $b)"
            fail=1
        fi
        fns=$(functions "$inc/$b.h")
        sw=$(swept "$t")
        missing=$(comm -23 <(echo "$fns") <(sort -u <(echo "$allsw") <(echo "$ex")))
        if [ -n "$missing" ]; then
            echo "FAIL: include/fdn/$b.h: public functions neither swept nor exempted:"
            sed 's/^/  /' <<<"$missing"
            fail=1
        fi
        both=$(comm -12 <(echo "$sw") <(echo "$ex"))
        if [ -n "$both" ]; then
            echo "FAIL: swept in test_alloc_$b.c and exempted in exempt.txt (drop the exemption):"
            sed 's/^/  /' <<<"$both"
            fail=1
        fi
        n=$(wc -l <<<"$fns")
        s=$(comm -12 <(echo "$fns") <(echo "$allsw") | grep -c . || true)
        total=$((total + n))
        nswept=$((nswept + s))
        nex=$((nex + $(comm -12 <(echo "$fns") <(echo "$ex") | grep -c . || true)))
    done
    echo "alloc sweep coverage: $total public functions, $nswept swept, $nex exempted"
    exit $fail
    ;;
--stub)
    b=${2:?usage: gen-alloc-sweep.sh --stub HEADER}
    [ -f "$inc/$b.h" ] || { echo "no include/fdn/$b.h" >&2; exit 2; }
    ex=$(exempted)
    sw=$(swept "$tdir/test_alloc_$b.c")
    cat <<EOF
/* Failing-allocator sweep of include/fdn/$b.h (tests/alloc/README.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fdn/$b.h>

#include "alloc_sweep.h"

EOF
    for f in $(comm -23 <(functions "$inc/$b.h") <(sort -u <(echo "$sw") <(echo "$ex"))); do
        cat <<EOF
static void sweep_$f(void **state)
{
    (void)state;
    SWEEP(sw, $f, 0) {
        sweep_arm(&sw);
        int rc = /* $f(...) */ 0;
        if (sweep_failed(&sw, rc)) {
            /* the object is unchanged and usable */
        }
    }
}

EOF
    done
    echo "int main(void)"
    echo "{"
    echo "    sweep_install();"
    echo "    const struct CMUnitTest tests[] = {"
    for f in $(comm -23 <(functions "$inc/$b.h") <(sort -u <(echo "$sw") <(echo "$ex"))); do
        echo "        cmocka_unit_test(sweep_$f),"
    done
    echo "    };"
    echo "    return cmocka_run_group_tests(tests, NULL, NULL);"
    echo "}"
    ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
