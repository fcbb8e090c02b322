#!/usr/bin/env bash
# Check that the lines changed on this branch follow .clang-format (git clang-format --diff).
# Only changed lines are checked, so untouched older code never fails the check.
# Base: $FORMAT_BASE if set, else the merge base with origin/main, else with main, else HEAD
# (then only uncommitted changes are checked). Exits 1 and prints the fix as a diff when a
# changed line is misformatted; `git clang-format <base>` applies it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v git-clang-format >/dev/null || { echo "check-format: git-clang-format not found (apt-get install clang-format)"; exit 2; }

base=${FORMAT_BASE:-}
if [ -z "$base" ]; then
    for ref in origin/main main; do
        if git rev-parse --verify -q "$ref^{commit}" >/dev/null &&
            base=$(git merge-base HEAD "$ref" 2>/dev/null); then
            break
        fi
        base=
    done
fi
base=${base:-HEAD}
echo "check-format: lines changed since $(git rev-parse --short "$base")"

out=$(git clang-format --diff --extensions c,h "$base" -- include src tests tools bench fuzz examples)
case "$out" in
"" | *"no modified files to format"* | *"did not modify any files"*)
    echo "check-format: OK"
    ;;
*)
    printf '%s\n' "$out"
    echo "check-format: the lines above need formatting; run: git clang-format $base"
    exit 1
    ;;
esac
