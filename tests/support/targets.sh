# shellcheck shell=bash disable=SC2034 # (PORT, BASE, APORT are read by the tests)
# The two scrape targets of the metrics tests (tests/integration/test_metrics_catalogue.sh,
# tests/integration/test_prometheus_scrape.sh), sourced. Sources serve.sh (FDN, TMP, curl and
# jq checked, serve_* helpers) and sets TARGET ($FDN_BINARY_DIR/bin/fdn_alert_target).
#   targets_start [ARG...]  a real `fdn serve ARG...` (serve_named srv: data directory TMP/srv,
#                           --listen 127.0.0.1:0) and fdn_alert_target
#                           (tests/integration/alert_target.c: the same runtime and HTTP API
#                           plus a pool, protected calls, registry operations and a service
#                           that fails; data directory TMP/at-data). Sets PORT, BASE
#                           (http://127.0.0.1:PORT) and APORT; exits the test with the
#                           program's stderr when one does not start.
#   at COMMAND              one command to fdn_alert_target (fd 4); its answer (fd 5, 60 s at
#                           most) must start with "ok", else the test exits saying why.
#   targets_cleanup         the EXIT trap installed here: EOF to fdn_alert_target (it returns
#                           its workers and exits) and wait for it, then serve_cleanup. A test
#                           with more to stop installs its own trap and calls this last.
# A program started after targets_start inherits fds 4 and 5: start it with `4>&- 5<&-`, or
# fdn_alert_target never sees the EOF that stops it.
# Synchronisation: both programs print their listen line once the port is served; the target
# answers each command with one line after the command's effect.

# shellcheck source=serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve.sh"
TARGET="$FDN_BINARY_DIR/bin/fdn_alert_target"
[[ -x "$TARGET" ]] || { echo "missing $TARGET" >&2; exit 1; }
AT_PID=""
PORT=""
BASE=""
APORT=""
trap targets_cleanup EXIT

targets_cleanup() {
    if [[ -n "$AT_PID" ]]; then
        exec 4>&- 2>/dev/null || true
        wait "$AT_PID" 2>/dev/null || true
        AT_PID=""
    fi
    serve_cleanup
}

targets_start() {
    SERVE_WAIT=60 serve_named srv "$@"
    PORT="$SERVE_PORT"
    BASE="http://127.0.0.1:$PORT"
    mkfifo "$TMP/at.in"
    exec 5< <(exec "$TARGET" "$TMP/at-data" <"$TMP/at.in" 2>"$TMP/at.err")
    AT_PID=$!
    exec 4>"$TMP/at.in"
    local line=""
    IFS= read -r -t 60 line <&5 || true
    [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]] && APORT="${BASH_REMATCH[1]}"
    [[ -n "$APORT" ]] || { echo "fdn_alert_target did not start: $(cat "$TMP/at.err")" >&2; exit 1; }
}

at() {
    echo "$1" >&4
    local answer=""
    IFS= read -r -t 60 answer <&5 || true
    [[ "$answer" == ok* ]] ||
        { echo "FAIL: alert target: $1 -> '$answer' $(cat "$TMP/at.err")" >&2; exit 1; }
}
