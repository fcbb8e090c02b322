#!/usr/bin/env bash
# The log of `fdn serve` (tools/fdn/serve_log.c): with --log-format json every stderr line is
# one JSON object with ts, level, event and msg; start, request (--access-log), config_change,
# breaker_transition, stopping and stop are logged with their fields; the "listening on" line
# stays on stdout. With the text format and --log-level warn, info lines are left out and the
# access log still appears. Bad --log-format/--log-level values are usage errors (exit 2).
# Lines written asynchronously (event delivery thread) are awaited with a deadline.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

PORT=""
start_server() { # data-dir, then fdn serve options
    serve_named "$@"
    PORT=$SERVE_PORT
}
stop_server() {
    serve_stop TERM
    [[ $SERVE_RC -eq 0 ]] || fail "server exited with $SERVE_RC"
}
call() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X "$1" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$PORT$2" ${3:+--data-binary "$3"}; }
# has_line FILE JQ-FILTER: some line of FILE satisfies the filter
has_line() { [[ $(jq -c "select($2)" "$1" 2>/dev/null | wc -l) -gt 0 ]]; }
# wait_line FILE JQ-FILTER: the same, within 30 s (lines of the event delivery thread)
wait_line() {
    local deadline=$((SECONDS + 30))
    while :; do
        has_line "$1" "$2" && return 0
        [[ $SECONDS -lt $deadline ]] || return 1
    done
}

# --- json
start_server json --log-format json --access-log
[[ $(call GET /health) == 200 ]] || fail "/health"
[[ $(call PUT /v1/config/interface.max_results 250) == 200 ]] || fail "config PUT"
[[ $(call PUT /v1/breakers/logsvc '{"failure_threshold":1,"recovery_time_ms":600000}') == 201 ]] ||
    fail "breaker PUT"
T=$(curl -s -X POST "http://127.0.0.1:$PORT/v1/breakers/logsvc/acquire" | jq -r .ticket)
[[ $(call POST /v1/breakers/logsvc/report "{\"ticket\":\"$T\",\"outcome\":\"failure\"}") == 200 ]] ||
    fail "breaker report"
wait_line "$TMP/json.err" '.event == "config_change" and .path == "interface.max_results" and .new_value == 250 and .level == "info"' ||
    fail "no config_change line: $(cat "$TMP/json.err")"
wait_line "$TMP/json.err" '.event == "breaker_transition" and .breaker == "logsvc" and .from == "closed" and .to == "open" and .level == "warn"' ||
    fail "no breaker_transition line: $(cat "$TMP/json.err")"
stop_server
E="$TMP/json.err"
# every line is a JSON object with the four common keys
bad=$(jq -Rc 'fromjson? // "unparsable" | select(type != "object" or (has("ts") and has("level") and has("event") and has("msg") | not))' "$E")
[[ -z "$bad" && -s "$E" ]] || fail "lines that are not log objects: $bad"
has_line "$E" '.event == "start" and .port == '"$PORT"' and (.pid | type) == "number" and .services > 0' ||
    fail "start line: $(cat "$E")"
has_line "$E" '.event == "request" and .target == "/health" and .method == "GET" and .status == 200 and .route == "/health" and (.duration_ms | type) == "number"' ||
    fail "access log line for /health: $(cat "$E")"
has_line "$E" '.event == "stopping" and .signal == "SIGTERM"' || fail "stopping line: $(cat "$E")"
[[ $(tail -n 1 "$E" | jq -r '.event + " " + (.exit_code|tostring)') == "stop 0" ]] || fail "last line is not stop: $(tail -n 1 "$E")"
grep -q "listening on" "$E" && fail "the listen line went to stderr" || true

# --- text, warn: no info lines, the access log still there
start_server text --log-level warn --access-log
[[ $(call GET /health) == 200 ]] || fail "/health"
stop_server
E="$TMP/text.err"
grep -q 'event=start' "$E" && fail "info line at --log-level warn: $(cat "$E")"
grep -qE '^ts=[0-9T:.-]+Z level=info event=request msg=request method=GET target=/health route=/health status=200 duration_ms=[0-9.]+$' "$E" ||
    fail "text access line: $(cat "$E")"

# --- slow-request warnings leave out the time a waiting query asked to wait (wait_ms): a wait
# of 2.5 s is not slow at a 2 s threshold. (The threshold is the room left for the rest of the
# request, its query and the answer after the deadline: 2 s, not 100 ms, which a loaded machine
# running a sanitizer build may pass; counted, the wait alone passes it.)
start_server slow --log-format json --slow-request-ms 2000
[[ $(call GET '/v1/events?after_id=0&wait_ms=2500') == 200 ]] || fail "waiting query"
stop_server
E="$TMP/slow.err"
has_line "$E" '.event == "slow_request"' && fail "a waiting query's wait logged as slow: $(cat "$E")"

# --- usage errors
rc=0
"$FDN" serve --log-format xml --data-dir "$TMP/u" >/dev/null 2>"$TMP/u.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "log-format" "$TMP/u.err" || fail "--log-format xml: exit $rc, $(cat "$TMP/u.err")"
rc=0
"$FDN" serve --log-level loud --data-dir "$TMP/u" >/dev/null 2>"$TMP/u.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "log-level" "$TMP/u.err" || fail "--log-level loud: exit $rc, $(cat "$TMP/u.err")"
[[ ! -e "$TMP/u" ]] || fail "a usage error created the data directory"

[[ $FAILS -eq 0 ]] || exit 1
echo "serve log: ok"
