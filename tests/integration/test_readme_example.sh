#!/usr/bin/env bash
# README.md's usage example is verified: every line of its C block appears in
# examples/embed_runtime.c (which the build compiles), and the example, when run, prints
# what the README says it prints (ids may differ).
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
readme="$FDN_SOURCE_DIR/README.md"
example="$FDN_SOURCE_DIR/examples/embed_runtime.c"

work=$(mktemp -d "${TMPDIR:-/tmp}/fdn-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Blocks of the usage section: the first ```c block and the first plain ``` block after it.
awk '/^## Using the library/ {u = 1} u && /^```c$/ && !c {inb = 1; c = 1; next}
     inb && /^```$/ {inb = 0; next} inb {print}' "$readme" >"$work/snippet"
awk '/^## Using the library/ {u = 1} u && /^```c$/ {seen = 1}
     seen && /^```$/ && !o && !inb {n++; if (n == 2) {inb = 1; next}}
     inb && /^```$/ {inb = 0; o = 1; next} inb {print}' "$readme" >"$work/expected"
[ -s "$work/snippet" ] || { echo "FAIL: no C block in README's usage section"; exit 1; }
[ -s "$work/expected" ] || { echo "FAIL: no output block in README's usage section"; exit 1; }

trim() { sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//' "$1"; }
trim "$example" >"$work/example"
fail=0
while IFS= read -r line; do
    [ -n "$line" ] || continue
    if ! grep -Fxq -- "$line" "$work/example"; then
        echo "FAIL: README line not in examples/embed_runtime.c: $line"
        fail=1
    fi
done < <(trim "$work/snippet")

bin="$FDN_BINARY_DIR/example_embed_runtime"
if [ -x "$bin" ]; then
    "$bin" >"$work/out"
    sed -E 's/correlation_id=[0-9a-f-]{36}/correlation_id=UUID/; s/operation_id=[0-9]+/operation_id=N/' "$work/out" >"$work/out.n"
    sed -E 's/correlation_id=[0-9a-f-]{36}/correlation_id=UUID/; s/operation_id=[0-9]+/operation_id=N/' "$work/expected" >"$work/exp.n"
    if ! diff -u "$work/exp.n" "$work/out.n"; then
        echo "FAIL: the example's output differs from README.md"
        fail=1
    fi
else
    echo "note: $bin not built (FDN_BUILD_EXAMPLES=OFF); output not checked"
fi
[ "$fail" = 0 ] || exit 1
echo "PASS: README example matches examples/embed_runtime.c"
