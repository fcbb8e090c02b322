#!/usr/bin/env bash
# The layer check: fails when an object file of a lower layer references a symbol that a
# higher layer defines, so the layering of docs/architecture.md holds at link time and not
# only in the include lines.
#
#   scripts/check-layers.sh OBJECT...   the libraries' object files (ctest passes exactly the
#                                       current ones: $<TARGET_OBJECTS:fdn_obj> and, when
#                                       built, $<TARGET_OBJECTS:fdn_admin_obj>), each under a
#                                       .../src/<layer>/ directory
#   scripts/check-layers.sh OBJDIR...   every .o under OBJDIR/src/<layer>/ (e.g.
#                                       build/asan/CMakeFiles/fdn_obj.dir and
#                                       build/asan/CMakeFiles/fdn_admin_obj.dir; may hold stale
#                                       objects of files moved since that build)
#
# Layers, lowest first (a layer may use its own symbols and those of every layer below):
#   core < logic < validation < storage < services < infra < runtime
# admin is the separate fdn_admin library on top: besides its own symbols it may use only the
# public API (fdn_*, of any layer), never an fdn__ internal, because libfdn.so exports nothing
# else for libfdn_admin.so to link against.
# Each violation prints as `src/<layer>/<file>.o -> <symbol> (defined in src/<layer>/<file>.o)`.
# Exit status: 0 clean, 1 violations, 2 usage or missing objects.
set -euo pipefail

declare -A rank=([core]=0 [logic]=1 [validation]=2 [storage]=3 [services]=4 [infra]=5 [runtime]=6 [admin]=7)

(($#)) || { echo "usage: $0 OBJECT... | OBJDIR..." >&2; exit 2; }
objs=()
for a in "$@"; do
    if [[ -d "$a" ]]; then
        while IFS= read -r o; do objs+=("$o"); done < <(find "$a/src" -name '*.o' | sort)
    else
        objs+=("$a")
    fi
done
((${#objs[@]})) || { echo "check-layers: no object files" >&2; exit 2; }
for o in "${objs[@]}"; do
    [[ -f "$o" ]] || { echo "check-layers: $o: no such object" >&2; exit 2; }
    layer=${o##*/src/}
    layer=${layer%%/*}
    [[ "$o" == */src/*/* && -n "${rank[$layer]+x}" ]] ||
        { echo "check-layers: $o is in no layer; add its folder to the table in $0" >&2; exit 1; }
done

# "D <symbol> <object>" for every global definition, "U <symbol> <object>" for every reference.
# Two nm runs over all objects (-A names the object on each line: "OBJ:ADDR T sym" for a
# definition, "OBJ:  U sym" for a reference), not two per object: a few hundred processes
# took most of a minute on a loaded machine.
table=$({
    nm -A --defined-only -g "${objs[@]}" | awk 'NF == 3 { o = $1; sub(/:[^:]*$/, "", o); print "D", $3, o }'
    nm -A -u "${objs[@]}" | awk '{ o = $1; sub(/:$/, "", o); print "U", $NF, o }'
})

ranks=$(for l in "${!rank[@]}"; do echo "$l ${rank[$l]}"; done)

violations=$(awk -v ranks="$ranks" '
    BEGIN {
        n = split(ranks, r, "\n")
        for (i = 1; i <= n; i++) { split(r[i], kv, " "); rk[kv[1]] = kv[2] }
    }
    function layer(o,   p) { sub(/.*\/src\//, "", o); split(o, p, "/"); return p[1] }
    function short(o) { sub(/.*\/src\//, "src/", o); return o }
    $1 == "D" { def[$2] = $3; next }
    $1 == "U" { use[++nu] = $2; by[nu] = $3 }
    END {
        for (i = 1; i <= nu; i++) {
            s = use[i]
            if (!(s in def)) continue               # libc, jansson, liburcu...
            from = layer(by[i]); to = layer(def[s])
            if (from == to) continue
            bad = 0
            if (from == "admin")
                bad = (s ~ /^fdn__/)
            else
                bad = (rk[to] > rk[from])
            if (bad) printf "%s -> %s (defined in %s)\n", short(by[i]), s, short(def[s])
        }
    }' <<<"$table" | sort -u)

if [[ -n "$violations" ]]; then
    echo "check-layers: references from a lower layer to a higher one:"
    echo "$violations" | sed 's/^/  /'
    echo "check-layers: layers, lowest first: core < logic < validation < storage < services < infra < runtime; admin: public API only"
    exit 1
fi
echo "check-layers: OK (${#objs[@]} objects; core < logic < validation < storage < services < infra < runtime < admin)"
