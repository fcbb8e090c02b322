#!/usr/bin/env bash
# Integration test: every HTTP example of README.md and docs/http-api.md, run against a real
# `fdn serve` (issue 21: the documented answers did not match the server's).
#
# Each document gets a fresh server (empty data directory) and its examples run in document
# order, as a reader would paste them with A set. An example is a `curl ... $A...` line inside a
# ```sh block. Its documented answer is the comment that follows it on the line, or the
# comment lines right below it: a leading status ("# 201 {...}", "# 403, code 1401") must be
# the status; without one the answer must be 2xx. A documented JSON object ("# {...}" or after
# the status) must match the answer's top level: the same keys with values of the same JSON
# type, strings and booleans equal ("..." and "…" stand for any value); objects that are
# sketches ({...} inside, N) are not compared. A pipe into promtool or jq runs the curl part
# only; `TS=$(...)` is evaluated; a bare TS placeholder is replaced by event 1's timestamp.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
SRC="${FDN_SOURCE_DIR:?FDN_SOURCE_DIR must point at the source directory}"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required (scripts/deps.sh installs it)" >&2; exit 1; }

TMP="$(mktemp -d)"
SRV_PID=""
cleanup() {
    if [[ -n "$SRV_PID" ]] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

FAILS=0
CHECKS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }

PORT=""
start_server() { # DATA_DIR
    exec 3< <(exec "$FDN" serve --data-dir "$1" --listen 127.0.0.1:0 2>"$TMP/server.err")
    SRV_PID=$!
    local line
    PORT=""
    while IFS= read -r -t 30 line <&3; do
        if [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
            PORT="${BASH_REMATCH[1]}"
            break
        fi
    done
    [[ -n "$PORT" ]] || { echo "server did not start: $(cat "$TMP/server.err")" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$SRV_PID"
    wait "$SRV_PID" || fail "server exited with $?: $(cat "$TMP/server.err")"
    SRV_PID=""
    exec 3<&-
}

# The examples of a markdown file, one per record: "LINE<TAB>COMMAND<TAB>DOCUMENTED ANSWER"
# (the answer: the line's own comment, else the comment lines right below, joined).
examples() {
    awk '
        function flush() {
            if (cmd != "") printf "%d\t%s\t%s\n", at, cmd, doc
            cmd = ""; doc = ""
        }
        /^```sh/ { insh = 1; next }
        /^```/ { if (insh) flush(); insh = 0; next }
        !insh { next }
        /^[[:space:]]*#/ {
            if (cmd != "" && own == 0) { sub(/^[[:space:]]*#[[:space:]]?/, ""); doc = doc " " $0 }
            next
        }
        {
            flush()
            if ($0 !~ /curl / || $0 !~ /\$A/) next
            line = $0; own = 0
            # the line'"'"'s own comment: a " # " outside quotes
            q = ""; c = 0
            for (i = 1; i <= length(line); i++) {
                ch = substr(line, i, 1)
                if (q == "" && (ch == "\"" || ch == "'"'"'")) q = ch
                else if (q != "" && ch == q) q = ""
                else if (q == "" && ch == "#" && substr(line, i - 1, 1) == " ") { c = i; break }
            }
            if (c > 0) {
                doc = substr(line, c + 1); sub(/^[[:space:]]+/, "", doc)
                line = substr(line, 1, c - 1); own = 1
            }
            sub(/[[:space:]]+$/, "", line)
            cmd = line; at = NR
        }
        END { flush() }
    ' "$1"
}

# json_matches DOC_JSON ACTUAL_JSON: documented keys present with the same types; strings and
# booleans equal unless the documented one is a placeholder
json_matches() {
    jq -e -n --argjson d "$1" --argjson a "$2" '
        ($a | type) == "object" and
        ([$d | to_entries[] | . as $e |
            ($a | has($e.key)) and
            (($a[$e.key] | type) == ($e.value | type)) and
            (if ($e.value | type) == "string" then
                 ($e.value == "..." or $e.value == "…" or $e.value == $a[$e.key])
             elif ($e.value | type) == "boolean" then $e.value == $a[$e.key]
             else true end)
        ] | all)' >/dev/null 2>&1
}

run_doc() { # FILE
    local file="$1" name
    name="$(basename "$file")"
    start_server "$TMP/data-$name"
    local A="http://127.0.0.1:$PORT" TS="" TICKET="" n=0
    while IFS=$'\t' read -r at cmd doc; do
        n=$((n + 1))
        local where="$name:$at"
        # TS=$(...): a variable the next examples use
        if [[ "$cmd" =~ ^TS=\$\((.*)\)$ ]]; then
            TS="$(A="$A" bash -c "${BASH_REMATCH[1]}")" || true
            if [[ "$TS" =~ ^[0-9]+$ ]]; then pass; else fail "$where: TS=$TS from: $cmd"; fi
            continue
        fi
        cmd="${cmd%%|*}" # curl part of a pipe
        if [[ "$cmd" == *'"ticket":"…"'* && -n "$TICKET" ]]; then # the ticket acquired before
            cmd="${cmd//\"ticket\":\"…\"/\"ticket\":\"$TICKET\"}"
        fi
        if [[ "$cmd" == *"=TS"* ]]; then # placeholder
            [[ -n "$TS" ]] || TS="$(curl -s "$A/v1/events/1" | jq -r .timestamp_ns)"
            cmd="${cmd//=TS/=$TS}"
        fi
        local status
        status="$(A="$A" TS="$TS" bash -c "${cmd/curl /curl -o $TMP/body -w '%{http_code}' --max-time 30 }")" ||
            status="curl-failed"
        local body
        body="$(cat "$TMP/body" 2>/dev/null || true)"
        local t
        t="$(jq -r 'if type == "object" and (.ticket | type) == "string" then .ticket else empty end' \
            <<<"$body" 2>/dev/null || true)"
        [[ -z "$t" ]] || TICKET="$t"
        local want="" djson=""
        if [[ "$doc" =~ ^[[:space:]]*([1-5][0-9][0-9])([^0-9]|$) ]]; then want="${BASH_REMATCH[1]}"; fi
        if [[ "$doc" =~ ^[[:space:]]*([1-5][0-9][0-9][[:space:]]+)?(\{.*\})[[:space:]]*(\(.*)?$ ]]; then
            djson="${BASH_REMATCH[2]}"
        elif [[ "$doc" =~ ^[[:space:]]*([1-5][0-9][0-9][[:space:]]+)?(\{[^}]*\}) ]]; then
            djson="${BASH_REMATCH[2]}"
        fi
        if [[ -n "$want" ]]; then
            if [[ "$status" == "$want" ]]; then pass; else fail "$where: $cmd -> $status, documented $want: $body"; fi
        elif [[ "$status" =~ ^2[0-9][0-9]$ ]]; then
            pass
        else
            fail "$where: $cmd -> $status (documented as a success): $body"
        fi
        if [[ -n "$djson" ]] && jq -e . >/dev/null 2>&1 <<<"$djson"; then
            if json_matches "$djson" "$body"; then pass; else fail "$where: $cmd answered $body, documented $djson"; fi
        fi
    done < <(examples "$file")
    [[ $n -gt 5 ]] || fail "$name: only $n examples found"
    stop_server
}

run_doc "$SRC/README.md"
run_doc "$SRC/docs/http-api.md"

echo "docs examples: $CHECKS checks, $FAILS failures"
[[ $FAILS -eq 0 ]]
