# shellcheck shell=bash disable=SC2034 # (SERVE_* are read by the tests)
# `fdn serve` for the shell tests (tests/engine/test_serve_*.sh,
# tests/integration/test_http_api.sh, tests/integration/test_serve_log.sh), sourced. Sourcing
# sets FDN (the program, $FDN_BINARY_DIR/bin/fdn, which must exist), checks that curl and jq
# are there, makes TMP (a directory of the test's own) and installs serve_cleanup as the EXIT
# trap.
#   serve_start ERRFILE ARG...  `$FDN serve ARG...`, stderr into ERRFILE, stdout on a pipe read
#                               (SERVE_WAIT seconds, 30 unless set, at most) up to the
#                               "listening on" line. Sets SERVE_PID,
#                               SERVE_FD (the pipe) and SERVE_PORT; returns 1 when no such line
#                               came. Every server started stays in SERVE_PIDS until
#                               serve_stop (or serve_cleanup).
#   serve_named NAME ARG...     serve_start with data directory TMP/NAME, stderr in
#                               TMP/NAME.err and --listen 127.0.0.1:0; exits the test with
#                               that stderr when the server does not start; the port is
#                               appended to SERVE_PORTS.
#   serve_stop [SIGNAL]         sends SIGNAL (TERM) to SERVE_PID, waits for it (its exit
#                               status in SERVE_RC) and closes SERVE_FD.
#   serve_refused PATTERN ARG... `$FDN serve --data-dir TMP/refused --listen 127.0.0.1:0 ARG...`
#                               must stop at start with exit status 1 and a stderr matching
#                               PATTERN (grep -E); otherwise the test exits saying why.
#   serve_cleanup               for `trap serve_cleanup EXIT`: SIGTERM and wait for every
#                               server still running, then remove TMP.
# A server prints its listen line only once the port is bound and served.

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required (scripts/deps.sh installs it)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap serve_cleanup EXIT

SERVE_PIDS=()
SERVE_PORTS=()
SERVE_PID=""
SERVE_FD=""
SERVE_PORT=""
SERVE_RC=0

serve_start() {
    local err=$1 line
    shift
    exec {SERVE_FD}< <(exec "$FDN" serve "$@" 2>"$err")
    SERVE_PID=$!
    SERVE_PIDS+=("$SERVE_PID")
    SERVE_PORT=""
    while IFS= read -r -t "${SERVE_WAIT:-30}" line <&"$SERVE_FD"; do
        if [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
            SERVE_PORT="${BASH_REMATCH[1]}"
            return 0
        fi
    done
    return 1
}

serve_named() {
    local name=$1
    shift
    serve_start "$TMP/$name.err" --data-dir "$TMP/$name" --listen 127.0.0.1:0 "$@" ||
        { echo "server $name did not start: $(cat "$TMP/$name.err")" >&2; exit 1; }
    SERVE_PORTS+=("$SERVE_PORT")
}

serve_stop() {
    kill -"${1:-TERM}" "$SERVE_PID"
    SERVE_RC=0
    wait "$SERVE_PID" || SERVE_RC=$?
    local p left=()
    for p in "${SERVE_PIDS[@]}"; do
        [[ "$p" == "$SERVE_PID" ]] || left+=("$p")
    done
    SERVE_PIDS=("${left[@]}")
    SERVE_PID=""
    exec {SERVE_FD}<&-
}

serve_cleanup() {
    local p
    for p in "${SERVE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${SERVE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}

serve_refused() {
    local pattern=$1 rc=0
    shift
    "$FDN" serve --data-dir "$TMP/refused" --listen 127.0.0.1:0 "$@" >/dev/null \
        2>"$TMP/refused.err" || rc=$?
    [[ $rc -eq 1 ]] || { echo "fdn serve $*: exit $rc, want 1" >&2; exit 1; }
    grep -qE "$pattern" "$TMP/refused.err" ||
        { echo "fdn serve $*: $(cat "$TMP/refused.err")" >&2; exit 1; }
}
