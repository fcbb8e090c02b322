#!/usr/bin/env bash
# Argument handling of the offline `fdn` commands and of `fdn serve` before it starts
# (tools/fdn/*.c, docs/fdn.1 EXIT STATUS): a missing, extra, unknown or malformed argument and
# a number out of its range are usage errors (exit 2) with a message naming the argument; a
# file argument that cannot be used (missing, a directory) is a failure (exit 1) with a
# message saying why, never a crash or a bare "I/O error"; --help exits 0 on stdout. No
# server is started: every `fdn serve` here stops at its arguments.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect RC PATTERN ARG...: `fdn ARG...` exits RC and its stderr and stdout match PATTERN
# (grep -E); it must not have been killed by a signal (a crash, a sanitizer abort)
expect() {
    local want=$1 pattern=$2 rc=0
    shift 2
    "$FDN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
    if [[ $rc -ne $want ]] || ! cat "$TMP/err" "$TMP/out" | grep -qE -- "$pattern"; then
        fail "fdn $*: exit $rc (want $want), output: $(cat "$TMP/err" "$TMP/out" | head -c 400)"
    fi
}

mkdir -p "$TMP/dir" "$TMP/data/events.db"

# usage errors: 2
expect 2 "usage: fdn <command>"
expect 2 "unknown command 'bogus'" bogus
expect 2 "expected exactly one FILE" config check
expect 2 "expected exactly one FILE" config check a b
expect 2 "unexpected argument 'x'" config defaults x
expect 2 "unknown subcommand 'nope'" config nope
expect 2 "unexpected argument 'x'" version x
expect 2 "fdn --version: unexpected argument 'x'" --version x
expect 2 "fdn help: unexpected argument 'x'" help x
expect 2 "fdn --help: unexpected argument 'x'" --help x
expect 2 "--data-dir DIR is required" events query
expect 2 "option --data-dir needs a value" events query --data-dir
expect 2 "--limit: '0' is not an integer in \[1," events query --data-dir "$TMP" --limit 0
expect 2 "--limit: '99999999999999999999' is not an integer" events query --data-dir "$TMP" \
    --limit 99999999999999999999
expect 2 "--since: '1x' is not an integer" events query --data-dir "$TMP" --since 1x
expect 2 "--order must be asc or desc" events query --data-dir "$TMP" --order up
expect 2 "unknown argument '--json=1'" events query --data-dir "$TMP" --json=1
expect 2 "--spool FILE is required" events quarantine
expect 2 "--etcd URL is required" registry list
expect 2 "--request-timeout-ms: '0' is not an integer in \[1, 600000\]" registry list \
    --etcd http://127.0.0.1:1 --request-timeout-ms 0
expect 2 "unknown argument '--port'" serve --port 1
expect 2 "--threads: '0' is not an integer in \[1, 64\]" serve --threads 0
expect 2 "--max-body: '' is not an integer" serve --max-body=
expect 2 "--shutdown-timeout: '-5' is not an integer" serve --shutdown-timeout -5
expect 2 "--log-format: 'xml' is not text or json" serve --log-format xml
expect 2 "--listen: bad listen address 'nonsense'" serve --listen nonsense --data-dir "$TMP/serve"
expect 2 "--listen: bad listen address '127.0.0.1:99999'" serve --listen 127.0.0.1:99999 \
    --data-dir "$TMP/serve"
expect 2 "--listen: bad listen address ':abc'" serve --listen :abc --data-dir "$TMP/serve"

# files that cannot be used: 1, saying why
expect 1 "$TMP/missing.json: cannot read: no such file" config check "$TMP/missing.json"
expect 1 "$TMP/dir: cannot read: is a directory" config check "$TMP/dir"
expect 1 "cannot read token file $TMP/dir \(is a directory\)" serve --token-file "$TMP/dir" \
    --data-dir "$TMP/serve"
expect 1 "no event store at $TMP/dir/events.db" events query --data-dir "$TMP/dir"
expect 1 "no event store at $TMP/data/events.db \(a directory\)" events query --data-dir "$TMP/data"
expect 1 "no spool at $TMP/dir \(a directory\)" events quarantine --spool "$TMP/dir"
[[ ! -e "$TMP/serve" ]] || fail "a refused fdn serve created its data directory"

# help: 0, on stdout
for cmd in "" config events registry version serve; do
    rc=0
    # shellcheck disable=SC2086 # an empty $cmd is no argument
    "$FDN" $cmd --help >"$TMP/out" 2>"$TMP/err" || rc=$?
    [[ $rc -eq 0 && -s "$TMP/out" && ! -s "$TMP/err" ]] || fail "fdn $cmd --help: exit $rc"
done

[[ $FAILS -eq 0 ]] || exit 1
echo "cli arguments: ok"
