#!/usr/bin/env bash
# CI fails on undocumented public symbols (CONVENTIONS.md, "Header layout and doc comments"):
# every FDN_API declaration in include/fdn/*.h must directly follow a Doxygen /** ... */
# comment (blank lines allowed between them, nothing else), and that comment must carry the
# @thread_safety and @since tags. Offenders are printed as file:line: name (what is missing).
# Usage: test_public_docs.sh [header...]   (default: $FDN_SOURCE_DIR/include/fdn/*.h)
set -euo pipefail
if [ "$#" -eq 0 ]; then
    : "${FDN_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
    set -- "$FDN_SOURCE_DIR"/include/fdn/*.h
fi

awk '
FNR == 1 { in_c = 0; is_doc = 0; doc = ""; doc_end = -1; prev = 0 }
{
    line = $0
    if (in_c) {
        if (is_doc) doc = doc " " line
        if (index(line, "*/")) { in_c = 0; if (is_doc) doc_end = FNR; prev = FNR }
        next
    }
    if (line ~ /^[ \t]*$/) next
    if (line ~ /^[ \t]*\/\*\*[^<]/ || line ~ /^[ \t]*\/\*\*$/) {
        is_doc = 1; doc = line
        if (index(substr(line, index(line, "/**") + 3), "*/")) { doc_end = FNR; prev = FNR }
        else in_c = 1
        next
    }
    if (line ~ /^[ \t]*\/\*/) {
        is_doc = 0
        if (index(substr(line, index(line, "/*") + 2), "*/")) prev = FNR
        else in_c = 1
        next
    }
    if (line ~ /FDN_API/ && line !~ /^[ \t]*#/) {
        decl = line
        sub(/\(.*/, "", decl); sub(/;.*/, "", decl); sub(/[^A-Za-z0-9_]+$/, "", decl)
        sub(/.*[^A-Za-z0-9_]/, "", decl)
        total++
        if (doc_end != prev || doc_end < 0) {
            printf "%s:%d: %s: no /** */ doc comment right before it\n", FILENAME, FNR, decl
            bad++
        } else {
            miss = ""
            if (doc !~ /@thread_safety/) miss = miss " @thread_safety"
            if (doc !~ /@since/) miss = miss " @since"
            if (miss != "") {
                printf "%s:%d: %s: doc comment lacks%s\n", FILENAME, FNR, decl, miss
                bad++
            }
        }
    }
    prev = FNR
}
END {
    if (bad) { printf "FAIL: %d of %d public declarations undocumented\n", bad, total; exit 1 }
    printf "PASS: %d public declarations documented\n", total
}' "$@"
