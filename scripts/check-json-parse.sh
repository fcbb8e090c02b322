#!/usr/bin/env bash
# The jansson parse guard: fails when a file under src/ or tools/ other than src/core/json.c
# calls one of jansson's parsers (json_loads, json_loadb, json_loadf, json_loadfd,
# json_load_file, json_load_callback) directly. Under a custom allocator a jansson 2.14 parse
# that meets a refused allocation can return a value made from truncated text or read past its
# token buffer (src/core/json.h); the library parses through fdn__json_loadb /
# fdn__json_load_file, the fdn_admin library and the CLI (tools/) through the public
# fdn_json_loadb, which report FDN_ENOMEM instead.
# Comments are not calls: a name followed by '(' counts, one in prose without it does not.
#
#   scripts/check-json-parse.sh [SOURCE_DIR]   (default: the checkout this script is in)
# Exit status: 0 clean, 1 direct calls found (each printed as file:line: text).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
dirs=(src tools)
for d in "${dirs[@]}"; do
    [[ -d "$root/$d" ]] || { echo "check-json-parse: $root/$d: no such directory" >&2; exit 2; }
done
hits=$(cd "$root" && grep -rnE '(^|[^A-Za-z0-9_])json_load(s|b|f|fd|_file|_callback)[[:space:]]*\(' \
    "${dirs[@]}" --include='*.c' --include='*.h' | grep -v '^src/core/json\.c:' || true)
if [[ -n "$hits" ]]; then
    echo "check-json-parse: jansson's parser called directly (use fdn__json_loadb /"
    echo "fdn__json_load_file from src/core/json.h, or fdn_json_loadb in src/admin and tools):"
    echo "$hits" | sed 's/^/  /'
    exit 1
fi
# The encoders that grow a buffer or call back (json_dumps, json_dumpf, json_dumpfd,
# json_dump_file, json_dump_callback): jansson 2.14 ignores a failed append of an object key
# and returns the text without it. fdn_json_dumps (two passes of json_dumpb, whose writes
# cannot fail) is the one way to encode.
hits=$(cd "$root" && grep -rnE '(^|[^A-Za-z0-9_])json_dump(s|f|fd|_file|_callback)[[:space:]]*\(' \
    "${dirs[@]}" --include='*.c' --include='*.h' | grep -v '^src/core/json\.c:' || true)
if [[ -n "$hits" ]]; then
    echo "check-json-parse: jansson's encoder called directly (use fdn_json_dumps):"
    echo "$hits" | sed 's/^/  /'
    exit 1
fi
echo "check-json-parse: OK (no direct jansson parse or encode in src/ or tools/ outside src/core/json.c)"
