#!/usr/bin/env bash
# docs/fdn.1 and the program agree: every command listed by `fdn --help` has a section
# (.SS "fdn CMD ...") in the man page and every section a command; for each command, the
# options (--name) printed by `fdn CMD --help` are exactly the ones its sections describe.
# The page also renders without groff warnings. A new option without documentation, or a
# documented option that no longer exists, fails here.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
SRC="${FDN_SOURCE_DIR:?FDN_SOURCE_DIR must point at the source directory}"
MAN="$SRC/docs/fdn.1"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
[[ -f "$MAN" ]] || { echo "missing $MAN" >&2; exit 1; }
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# lower-case words of a command line ("config check F" -> "config check")
words() { tr ' ' '\n' <<<"$1" | grep -E '^[a-z]+$' | paste -sd' ' -; }

# commands of `fdn --help`: the indented lines after "commands:"
help_cmds=$("$FDN" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-zA-Z ]*[A-Za-z]\)  .*/\1/p' |
    while read -r c; do words "$c"; done | sort -u)
# sections of the man page: .SS "fdn ..."
man_cmds=$(sed -n 's/^\.SS "fdn \(.*\)"$/\1/p' "$MAN" | while read -r c; do words "$c"; done | sort -u)
[[ -n "$help_cmds" ]] || fail "no commands parsed from fdn --help"
if [[ "$help_cmds" != "$man_cmds" ]]; then
    fail "commands differ (< fdn --help, > docs/fdn.1): $(diff <(echo "$help_cmds") <(echo "$man_cmds") | grep '^[<>]' | paste -sd' ' -)"
fi

# options of the sections of one top-level command (all "fdn CMD ..." sections)
man_opts() {
    awk -v cmd="$1" '
        /^\.S[SH] / { inside = ($0 ~ "^\\.SS \"fdn " cmd "( |\")") }
        inside { print }' "$MAN" |
        grep -oE '\\-\\-[a-z][a-z\\-]*[a-z]' | sed 's/\\-/-/g' | grep -vxE -- '--(help|version)' | sort -u || true
}
help_opts() {
    "$FDN" "$1" --help | grep -oE -- '--[a-z][a-z-]*[a-z]' | grep -vxE -- '--(help|version)' | sort -u || true
}

for cmd in $(cut -d' ' -f1 <<<"$help_cmds" | sort -u); do
    [[ "$cmd" == help ]] && continue
    h=$(help_opts "$cmd")
    m=$(man_opts "$cmd")
    if [[ "$h" != "$m" ]]; then
        fail "options of '$cmd' differ (< fdn $cmd --help, > docs/fdn.1): $(diff <(echo "$h") <(echo "$m") | grep '^[<>]' | paste -sd' ' -)"
    fi
    echo "$cmd: $(wc -w <<<"$h") options"
done

# the page renders cleanly
if command -v groff >/dev/null; then
    out=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$MAN" 2>&1) || fail "groff failed: $out"
    [[ -z "$out" ]] || fail "groff warnings: $out"
fi
[[ $FAILS -eq 0 ]] || exit 1
echo "man page matches the program's help"
