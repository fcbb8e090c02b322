#!/usr/bin/env bash
# Integration test of `fdn serve` and its HTTP API: starts the real program on a free
# loopback port with a temporary data directory and drives every endpoint with curl:
# valid calls, malformed JSON, oversized bodies, unknown paths, wrong methods, invalid values,
# a restart on the same data directory that keeps every stored event, `fdn events query`
# offline, and /metrics through `promtool check metrics`.
# Synchronisation is by blocking reads: the server's stdout is a pipe and the test reads its
# "listening on" line (bounded by `read -t`); shutdown is awaited with `wait`. Effects applied
# asynchronously by the runtime (config changes, the events it records) are polled with a
# deadline (`poll_until`), never waited for with a sleep.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"

# Services whose endpoints are checked. The lead adds config/telemetry when they are wired.
REQUIRED="${FDN_HTTP_TEST_SERVICES:-runtime registry config events breakers limiter pools metrics telemetry}"

trap 'exit 143' TERM INT HUP

FAILS=0
CHECKS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }
wants() { [[ " $REQUIRED " == *" $1 "* ]]; }

PORT=""
# start_server [extra args...]: starts fdn serve, reads its stdout until the listen line.
start_server() {
    if ! serve_start "$TMP/server.err" --data-dir "$TMP/data" --listen 127.0.0.1:0 \
        --max-body 65536 "$@"; then
        echo "server did not report its port; stderr:" >&2
        cat "$TMP/server.err" >&2
        exit 1
    fi
    PORT=$SERVE_PORT
    # the port is bound and served before the line is printed: /health must answer now
    req GET /health
    [[ "$STATUS" == 200 || "$STATUS" == 401 ]] || { echo "/health gave $STATUS: $BODY" >&2; exit 1; }
}

stop_server() { # [SIGNAL] (default TERM)
    serve_stop "${1:-TERM}"
    [[ $SERVE_RC -eq 0 ]] ||
        fail "server exited with $SERVE_RC on SIG${1:-TERM}: $(cat "$TMP/server.err")"
}

STATUS=""
BODY=""
# req METHOD PATH [BODY|@file|-] [extra curl args...]   ("-" = no body)
req() {
    local method="$1" path="$2"
    shift 2
    local args=(-s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X "$method"
        --max-time 60 --path-as-is -H 'Content-Type: application/json')
    if [[ $# -gt 0 ]]; then
        [[ "$1" == "-" ]] || args+=(--data-binary "$1")
        shift
    fi
    STATUS="$(curl "${args[@]}" "$@" "http://127.0.0.1:$PORT$path")" || STATUS="curl-failed"
    BODY="$(cat "$TMP/body" 2>/dev/null || true)"
}

# expect STATUS METHOD PATH [BODY] : request and check the status
expect() {
    local want="$1"
    shift
    req "$@"
    if [[ "$STATUS" == "$want" ]]; then pass; else fail "$1 $2 -> $STATUS, want $want: $BODY"; fi
}

# jcheck FILTER : the jq filter must be true on the last body
jcheck() {
    if jq -e "$1" <<<"$BODY" >/dev/null 2>&1; then pass; else fail "jq '$1' on: $BODY"; fi
}

# error_is REFCODE : the last body is an error object with this reference code
error_is() {
    jcheck ".error.code == $1 and (.error.type|type) == \"string\" and (.error.category|type) == \"string\" and (.error.severity|type) == \"string\" and (.error.message|type) == \"string\""
}

# poll_until SECONDS METHOD PATH FILTER : repeat the request until the jq filter holds on its
# body or the deadline passes; returns 1 on timeout (BODY holds the last answer)
poll_until() {
    local deadline=$((SECONDS + $1)) filter="$4"
    while :; do
        req "$2" "$3"
        jq -e "$filter" <<<"$BODY" >/dev/null 2>&1 && return 0
        [[ $SECONDS -lt $deadline ]] || return 1
    done
}

header() { grep -i "^$1:" "$TMP/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# ------------------------------------------------------------------------------------------
start_server

# --- one process per data directory: a second `fdn serve` on it stops at start, saying why
rc=0
timeout 60 "$FDN" serve --data-dir "$TMP/data" --listen 127.0.0.1:0 </dev/null \
    >"$TMP/second.out" 2>"$TMP/second.err" || rc=$?
if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "in use by another runtime (pid $SERVE_PID)" "$TMP/second.err"; then
    pass
else fail "second fdn serve on one data directory: exit $rc, stderr: $(cat "$TMP/second.err")"; fi

# --- generic behaviour
expect 200 GET /health
jcheck '.status == "ok" and (.services|type) == "object"'
if wants runtime; then jcheck '.runtime.status == "healthy" and .runtime.name == "production"'; fi
if wants runtime; then
    # /health is the runtime's health: every supervised built-in service, running and healthy
    for svc in config_server event_store telemetry_service connection_manager rate_limiter; do
        jcheck ".services.\"$svc\".status == \"ok\" and .services.\"$svc\".state == \"running\""
    done
    # supervised services carry a "state"; plain health checks (the limiter's backend) do not
    jcheck '.runtime.services == ([.services[] | select(has("state"))] | length) and .runtime.running == .runtime.services'
    jcheck '.services.rate_limiter_backend.status == "ok"'
fi
expect 404 GET /no/such/endpoint
error_is 3401
expect 405 POST /health
[[ "$(header Allow)" == "GET, HEAD" ]] && pass || fail "405 without Allow: GET, HEAD (HEAD is served too)"
# every endpoint refuses query parameters it does not take
for path in /health /metrics; do
    expect 422 GET "$path?verbose=1"
    error_is 3204
done
if wants pools; then expect 422 GET '/v1/pools?x=1'; fi
if wants registry; then expect 422 GET '/v1/registry?x=1'; fi
# two Content-Length headers that disagree: 400 (the body's end would be ambiguous)
if wants limiter; then
    raw=$(printf 'POST /v1/limiter/check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 38\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{"key":"a","limit":1,"window_ms":1000}' |
        timeout 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat >&3; cat <&3" || true)
    if [[ "$raw" == "HTTP/1.1 400"* && "$raw" == *"conflicting Content-Length"* ]]; then pass; else
        fail "conflicting Content-Length: $(head -1 <<<"$raw")"; fi
fi
# a literal endpoint is not a {param} of another route: 405 with its own methods
if wants config; then
    expect 405 GET /v1/config/reset
    [[ "$(header Allow)" == "POST" ]] && pass || fail "GET /v1/config/reset: Allow '$(header Allow)'"
fi
if wants events; then
    expect 405 GET /v1/events/batch
    [[ "$(header Allow)" == "POST" ]] && pass || fail "GET /v1/events/batch: Allow '$(header Allow)'"
fi
expect 400 GET '/v1/a//b'
expect 400 GET '/v1/events/../health'
# a maximal target (4096 bytes) made of 32 query keys without '=' once decoded past the
# parser's buffer and killed the server: it must answer (422: unknown parameter) and live on
LONGQ="/v1/events?"
for i in $(seq -w 1 31); do LONGQ+="k$i&"; done
while [[ ${#LONGQ} -lt 4096 ]]; do LONGQ+="z"; done
expect 422 GET "$LONGQ"
error_is 3204
expect 200 GET /health
# a target far past 4096 bytes but within the server's 16 KiB connection memory gets the
# JSON 414 of the router, not libmicrohttpd's own HTML page (docs/http-api.md lists those)
expect 414 GET "/$(head -c 12000 /dev/zero | tr '\0' a)"
error_is 2003
[[ "$(header Content-Type)" == application/json* ]] && pass || fail "414 not JSON: $(header Content-Type)"

# --- registry
if wants registry; then
    expect 200 GET /v1/registry
    jcheck '.namespace == "production" and (.services|type) == "array" and .count == (.services|length)'
fi

# --- events
declare -a STORED_IDS=()
if wants events; then
    expect 201 POST /v1/events '{"type":"user.login","data":{"user":"ada","n":1},"correlation_id":"req-1"}'
    jcheck '.id >= 1'
    ID1="$(jq -r .id <<<"$BODY")"; STORED_IDS+=("$ID1")
    expect 201 POST /v1/events "{\"type\":\"user.logout\",\"data\":[1,2,3],\"correlation_id\":\"req-1\",\"parent_id\":$ID1}"
    ID2="$(jq -r .id <<<"$BODY")"; STORED_IDS+=("$ID2")
    expect 201 POST /v1/events/batch '{"events":[{"type":"order.placed","data":{"o":1}},{"type":"order.placed","data":{"o":2}},{"type":"order.paid","data":null}]}'
    jcheck '.count == 3 and (.ids|length) == 3'
    while read -r i; do STORED_IDS+=("$i"); done < <(jq -r '.ids[]' <<<"$BODY")
    # (null correlation_id / parent_id mean none: what GET writes can be posted back)
    expect 201 POST /v1/events/batch '[{"type":"misc","data":"text","correlation_id":null,"parent_id":null}]'
    STORED_IDS+=("$(jq -r '.ids[0]' <<<"$BODY")")

    expect 200 GET "/v1/events/$ID1"
    jcheck ".id == $ID1 and .type == \"user.login\" and .data.user == \"ada\" and .correlation_id == \"req-1\""
    expect 200 GET "/v1/events/$ID2"
    jcheck ".parent_id == $ID1"
    expect 404 GET /v1/events/999999
    error_is 3401
    expect 422 GET /v1/events/abc
    expect 422 GET /v1/events/0

    expect 200 GET '/v1/events?type=order.placed'
    jcheck '(.events|length) == 2 and all(.events[]; .type == "order.placed")'
    expect 200 GET '/v1/events?correlation_id=req-1'
    jcheck '(.events|length) == 2'
    expect 200 GET '/v1/events?limit=2&order=desc'
    jcheck "(.events|length) == 2 and .events[0].id > .events[1].id"
    expect 200 GET "/v1/events?after_id=$ID2&order=asc"
    jcheck "(.events|length) == 4 and all(.events[]; .id > $ID2)"
    TS1="$(curl -s "http://127.0.0.1:$PORT/v1/events/$ID1" | jq -r .timestamp_ns)"
    expect 200 GET "/v1/events?since=$TS1&until=$TS1"
    jcheck "(.events|length) >= 1 and all(.events[]; .timestamp_ns == $TS1)"
    expect 422 GET '/v1/events?limit=abc'
    expect 422 GET '/v1/events?limit=0'
    expect 422 GET '/v1/events?order=sideways'
    expect 422 GET '/v1/events?since=1x'
    expect 422 GET '/v1/events?bogus=1'
    expect 422 GET '/v1/events?type=%FF' # decoded bytes that are not UTF-8: a bad value
    expect 422 GET '/v1/events?correlation_id=%C3'
    expect 400 GET '/v1/events?type=a&type=b'
    # a waiting query (wait_ms) is answered once a matching event is stored; whether curl
    # begins to wait before or after the POST, the answer is that event
    curl -s --max-time 60 "http://127.0.0.1:$PORT/v1/events?after_id=${STORED_IDS[-1]}&type=wait.me&wait_ms=60000" \
        >"$TMP/wait.out" &
    WAITPID=$!
    expect 201 POST /v1/events '{"type":"wait.me","data":{"w":1}}'
    WID="$(jq -r .id <<<"$BODY")"; STORED_IDS+=("$WID")
    if wait "$WAITPID" && jq -e "(.events|length) == 1 and .events[0].id == $WID" "$TMP/wait.out" >/dev/null; then
        pass
    else
        fail "waiting query: $(cat "$TMP/wait.out")"
    fi
    expect 200 GET "/v1/events?after_id=$WID&wait_ms=1"
    jcheck '(.events|length) == 0'
    expect 422 GET '/v1/events?wait_ms=100'
    expect 422 GET '/v1/events?after_id=0&wait_ms=60001'

    expect 400 POST /v1/events '{"type":'
    error_is 3202
    expect 400 POST /v1/events ''
    expect 422 POST /v1/events '{"data":{}}'
    expect 422 POST /v1/events '{"type":"x","data":{},"extra":1}'
    expect 422 POST /v1/events '{"type":"bad type!","data":{}}'
    expect 422 POST /v1/events '{"type":"x","parent_id":"7"}'
    expect 422 POST /v1/events '[1,2]'
    expect 422 POST /v1/events/batch '{"events":[{"type":"ok"},{"nope":1}]}'
    expect 422 POST /v1/events/batch '{"events":{}}'
    expect 422 POST /v1/events/batch '{"events":[]}'
    expect 422 POST /v1/events/batch '[]'

    # bodies over the cap (65536 with --max-body): by Content-Length, and streamed chunked
    head -c 70000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
    expect 413 POST /v1/events "@$TMP/big.json"
    error_is 2003
    expect 413 POST /v1/events "@$TMP/big.json" -H 'Transfer-Encoding: chunked'

    expect 200 GET /v1/events/stats
    jcheck ".count == ${#STORED_IDS[@]} and .types[\"order.placed\"].count == 2"

    # nothing of the failed calls was stored
    expect 200 GET '/v1/events?limit=1000'
    jcheck "(.events|length) == ${#STORED_IDS[@]}"

    # delete: a timestamp before everything removes nothing
    expect 200 DELETE "/v1/events?before=$((TS1 - 1))"
    jcheck '.removed == 0'
    expect 422 DELETE /v1/events
    expect 422 DELETE '/v1/events?before=soon'
    # a body is refused before anything is removed (none, or {}, is taken)
    expect 400 DELETE "/v1/events?before=$((TS1 + 1000000000000000))" 'garbage'
    expect 422 DELETE "/v1/events?before=$((TS1 + 1000000000000000))" '{"before":1}'
    expect 200 GET /v1/events/stats
    jcheck ".count == ${#STORED_IDS[@]}"
    expect 200 DELETE "/v1/events?before=$((TS1 - 1))" '{}'
    jcheck '.removed == 0'
fi

# --- limiter
if wants limiter; then
    # The default algorithm is a fixed window aligned to the clock, so three calls that
    # straddle a window boundary see the count start again. An attempt is judged only when
    # all three answers came back inside the first call's window (elapsed time below its
    # reset_ms); otherwise it is repeated on a fresh key. Three attempts cannot all straddle a
    # boundary of a 60 s window unless the calls take minutes. A first call that did not
    # succeed is judged at once (it has no reset_ms to go by).
    judged=""
    for attempt in 1 2 3; do
        key="client-$attempt"
        t0=$(date +%s%3N)
        req POST /v1/limiter/check "{\"key\":\"$key\",\"limit\":2,\"window_ms\":60000}"
        s1="$STATUS" b1="$BODY"
        req POST /v1/limiter/check "{\"key\":\"$key\",\"limit\":2,\"window_ms\":60000}"
        s2="$STATUS" b2="$BODY"
        req POST /v1/limiter/check "{\"key\":\"$key\",\"limit\":2,\"window_ms\":60000}"
        t1=$(date +%s%3N)
        reset1="$(jq -r '.reset_ms // 0' <<<"$b1" 2>/dev/null || echo 0)"
        [[ "$reset1" =~ ^[0-9]+$ ]] || reset1=0
        if [[ "$s1" != 200 ]] || ((t1 - t0 + 1 < reset1)); then judged=1 && break; fi
        echo "limiter: attempt $attempt straddled a window boundary, repeating" >&2
    done
    if [[ -n "$judged" ]]; then
        [[ "$s1" == 200 ]] && pass || fail "limiter call 1 -> $s1: $b1"
        jq -e '.allowed == true and .remaining == 1' <<<"$b1" >/dev/null && pass || fail "call 1: $b1"
        [[ "$s2" == 200 ]] && pass || fail "limiter call 2 -> $s2: $b2"
        jq -e '.allowed == true and .remaining == 0' <<<"$b2" >/dev/null && pass || fail "call 2: $b2"
        [[ "$STATUS" == 429 ]] && pass || fail "limiter call 3 -> $STATUS, want 429: $BODY"
        jcheck '.allowed == false and .retry_after_ms > 0 and .error.code == 6001'
        RA="$(header Retry-After)"
        [[ "$RA" =~ ^[0-9]+$ && "$RA" -ge 1 ]] && pass || fail "429 without a Retry-After: '$RA'"
    else
        fail "limiter: three attempts in a row straddled a window boundary (reset_ms $reset1)"
    fi
    for algo in token_bucket gcra sliding_window fixed_window; do
        expect 200 POST /v1/limiter/check "{\"key\":\"k-$algo\",\"limit\":5,\"window_ms\":1000,\"algorithm\":\"$algo\",\"cost\":2}"
        jcheck '.allowed == true and (.count|type) == "number" and (.reset_ms|type) == "number"'
    done
    expect 422 POST /v1/limiter/check '{"key":"k","limit":0,"window_ms":1000}'
    expect 422 POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":-1}'
    expect 422 POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":1000,"algorithm":"leaky"}'
    expect 422 POST /v1/limiter/check '{"limit":1,"window_ms":1000}'
    # burst only with the bucket algorithms; windows up to 24 h
    expect 422 POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":1000,"burst":3}'
    expect 422 POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":86400001}'
    # infrastructure.rate_limiting.enabled governs the check itself (applied asynchronously by
    # the runtime: polled with a deadline)
    SW='{"key":"switch-1","limit":1,"window_ms":3600000,"algorithm":"sliding_window"}'
    expect 200 POST /v1/limiter/check "$SW"
    expect 429 POST /v1/limiter/check "$SW"
    lim_poll() { # STATUS: repeat the check until it answers STATUS (60 s bound)
        local deadline=$((SECONDS + 60))
        while :; do
            req POST /v1/limiter/check "$SW"
            [[ "$STATUS" == "$1" ]] && return 0
            [[ $SECONDS -lt $deadline ]] || return 1
        done
    }
    expect 200 PUT /v1/config/infrastructure.rate_limiting.enabled 'false'
    if lim_poll 200; then pass; else fail "limiter still enforcing after enabled=false"; fi
    expect 200 PUT /v1/config/infrastructure.rate_limiting.enabled 'true'
    if lim_poll 429; then pass; else fail "limiter not enforcing after enabled=true"; fi
    expect 400 POST /v1/limiter/check '{"key":'
    # keys are capped at 256 bytes
    k257="$(head -c 257 /dev/zero | tr '\0' k)"
    expect 422 POST /v1/limiter/check "{\"key\":\"$k257\",\"limit\":1,\"window_ms\":1000}"
    jcheck '.error.message | test("1\\.\\.256")'
    expect 200 POST /v1/limiter/check "{\"key\":\"${k257:1}\",\"limit\":1,\"window_ms\":1000}"
    # a cost above the limit can never succeed: 422, no Retry-After
    expect 422 POST /v1/limiter/check '{"key":"big","limit":3,"window_ms":1000,"cost":4}'
    [[ -z "$(header Retry-After)" ]] && pass || fail "422 with a Retry-After"
    jcheck '.error.message | test("never succeed")'
    # Hammer's inc / set / get: no decision, always 200 (an hour-long bucket: no refill here)
    H='"key":"hammer","limit":3,"window_ms":3600000,"algorithm":"token_bucket"'
    expect 200 POST /v1/limiter/get "{$H}"
    jcheck '.count == 0 and .remaining == 3 and .allowed == true'
    expect 200 POST /v1/limiter/inc "{$H,\"cost\":2}"
    jcheck '.count == 2 and .remaining == 1 and .allowed == true'
    expect 200 POST /v1/limiter/inc "{$H,\"cost\":2}"
    jcheck '.remaining == 0 and .allowed == false'
    expect 429 POST /v1/limiter/check "{$H}"
    expect 200 POST /v1/limiter/set "{$H,\"count\":0}"
    jcheck '.remaining == 3 and .count == 0'
    expect 200 POST /v1/limiter/check "{$H}"
    expect 200 POST /v1/limiter/get "{$H}"
    jcheck '.count == 1'
    expect 422 POST /v1/limiter/set "{$H}"
    jcheck '.error.message | test("count")'
    expect 422 POST /v1/limiter/set "{$H,\"count\":-1}"
    expect 422 POST /v1/limiter/get "{$H,\"cost\":1}"
    expect 422 POST /v1/limiter/inc "{$H,\"count\":1}"
fi

# --- breakers and pools (none configured by default)
if wants breakers; then
    expect 200 GET /v1/breakers
    jcheck '(.breakers|type) == "array" and .count == (.breakers|length)'
    expect 404 GET /v1/breakers/nope
    error_is 5005
    expect 404 POST /v1/breakers/nope/reset
    expect 405 GET /v1/breakers/nope/reset

    # breakers as a service, driven with curl alone: created over HTTP, tickets acquired and
    # reported, a ticket never reported counted as a failure after probe_timeout_ms
    # (a long probe timeout while tickets are reported: a loaded machine may take seconds
    # between two requests; the expiry is checked below with a short one, by polling)
    SVC='{"failure_threshold":2,"recovery_time_ms":600000,"probe_timeout_ms":600000}'
    expect 201 PUT /v1/breakers/svc "$SVC"
    jcheck '.name == "svc" and .state == "closed" and .tickets_outstanding == 0'
    expect 200 PUT /v1/breakers/svc "$SVC"
    expect 422 PUT /v1/breakers/svc '{"failure_treshold":2}'
    jcheck '.error.message | test("failure_treshold")'
    expect 422 PUT /v1/breakers/svc '{"failure_threshold":0}'
    expect 400 PUT /v1/breakers/svc '{"failure_threshold":'
    expect 200 POST /v1/breakers/svc/acquire
    jcheck '(.ticket|type) == "string" and .state == "closed"'
    T1="$(jq -r .ticket <<<"$BODY")"
    expect 200 GET /v1/breakers/svc
    jcheck '.tickets_outstanding == 1'
    expect 200 POST /v1/breakers/svc/report "{\"ticket\":\"$T1\",\"outcome\":\"success\",\"duration_ms\":5}"
    jcheck '.state == "closed" and .tickets_outstanding == 0'
    expect 404 POST /v1/breakers/svc/report "{\"ticket\":\"$T1\",\"outcome\":\"success\"}"
    expect 422 POST /v1/breakers/svc/report '{"ticket":"1","outcome":"maybe"}'
    expect 422 POST /v1/breakers/svc/report '{"ticket":1,"outcome":"success"}'
    expect 422 POST /v1/breakers/svc/report '{"ticket":"1","outcome":"success","extra":1}'
    expect 200 POST /v1/breakers/svc/acquire
    expect 200 POST /v1/breakers/svc/report "{\"ticket\":\"$(jq -r .ticket <<<"$BODY")\",\"outcome\":\"failure\"}"
    jcheck '.state == "closed" and .failures == 1'
    expect 200 PUT /v1/breakers/svc '{"failure_threshold":1,"recovery_time_ms":600000,"probe_timeout_ms":200}'
    jcheck '.state == "closed" and .failures == 0' # re-installed: reset
    expect 200 POST /v1/breakers/svc/acquire # this client never reports
    if poll_until 30 GET /v1/breakers/svc '.state == "open"'; then pass; else
        fail "an unreported ticket did not open the breaker: $BODY"; fi
    expect 503 POST /v1/breakers/svc/acquire
    error_is "$(jq .error.code <<<"$BODY")"
    retry="$(header Retry-After)"
    [[ "$retry" =~ ^[0-9]+$ && "$retry" -ge 1 ]] && pass || fail "503 without Retry-After: '$retry'"
    expect 200 POST /v1/breakers/svc/reset
    expect 200 DELETE /v1/breakers/svc
    expect 404 GET /v1/breakers/svc
    expect 404 DELETE /v1/breakers/svc
fi
if wants pools; then
    expect 200 GET /v1/pools
    jcheck '(.pools|type) == "array" and .count == (.pools|length)'
fi

# --- config (when the config service is wired)
if wants config; then
    expect 200 GET /v1/config
    jcheck '(.|type) == "object"'
    expect 200 GET /v1/config/dev.debug_mode
    jcheck '.path == "dev.debug_mode" and (.value|type) == "boolean"'
    expect 200 PUT /v1/config/dev.debug_mode 'true'
    expect 200 GET /v1/config/dev.debug_mode
    jcheck '.value == true'
    if wants events; then
        # the runtime records every config change as a `config_updated` event (stored by the
        # config delivery thread, so poll with a deadline)
        if poll_until 60 GET '/v1/events?type=config_updated&order=desc&limit=100' \
            'any(.events[]; .data.path == "dev.debug_mode" and .data.new_value == true and .data.old_value == false)'; then
            pass
        else fail "no config_updated event for dev.debug_mode: $BODY"; fi
    fi
    expect 403 PUT /v1/config/ai.provider '"openai"'
    error_is 1401
    expect 422 PUT /v1/config/dev.debug_mode '"yes"'
    # the error names the path, the rule and the value's JSON type
    jcheck '.error.context.path == "dev.debug_mode" and .error.context.rule == "type bool" and .error.context.value_type == "string"'
    expect 422 PUT /v1/config/ai.planning.sampling_rate '5'
    jcheck '.error.code == 1203 and .error.context.rule == "must be between 0 and 1" and .error.context.value_type == "integer"'
    expect 400 PUT /v1/config/dev.debug_mode '{'
    # valid JSON with a number beyond 64-bit integers: out of range (422), not malformed
    expect 422 PUT /v1/config/interface.max_results '99999999999999999999999'
    jcheck '.error.message | startswith("number out of range")'
    expect 404 GET /v1/config/no.such.path
    error_is 1302
    # a client's '"' in the path is escaped in the error's context text: it reads back as
    # the path, and forges no other field of the context
    expect 403 PUT '/v1/config/a%22%20rule=forged' '1'
    jcheck '.error.context.path == "a\" rule=forged" and (.error.context | has("rule") | not)'
    expect 403 PUT '/v1/config/a%5C%22b' '1'
    jcheck '.error.context.path == "a\\\"b"'
    expect 403 GET '/v1/config/a.DROP%20TABLE'
    error_is 1000
    deep='1'; for _ in $(seq 25); do deep="[$deep]"; done
    expect 403 PUT /v1/config/dev.debug_mode "$deep"
    error_is 1005
    expect 422 PUT /v1/config/interface.max_results '-5'
    # past the event store's 32-bit cap: the schema's own refusal (1101, with the bound), not
    # the store's (which answered 400 naming the service)
    expect 422 PUT /v1/config/interface.max_results '4294967296'
    jcheck '.error.code == 1101 and .error.context.path == "interface.max_results" and .error.context.reason == "must be at most 4294967295" and .error.context.rule == "must be > 0 and at most 4294967295" and (.error.context | has("service") | not)'
    expect 400 PUT /v1/config/dev.debug_mode -
    expect 200 PUT /v1/config/interface.max_results '250'
    jcheck '.path == "interface.max_results" and .value == 250 and .revision > 1'
    expect 405 DELETE /v1/config/dev.debug_mode
    [[ "$(header Allow)" == "GET, HEAD, PUT" ]] && pass || fail "DELETE /v1/config/PATH: Allow '$(header Allow)'"
    if wants events; then
        # the config drives the services: interface.max_results caps event queries (applied
        # by the config delivery thread: poll the observable effect with a deadline)
        req GET '/v1/events?limit=100'
        n="$(jq '.events|length' <<<"$BODY")"
        [[ "$n" -gt 2 ]] && pass || fail "need more than 2 stored events to test the cap ($n)"
        expect 200 PUT /v1/config/interface.max_results '2'
        if poll_until 60 GET '/v1/events?limit=100' '(.events|length) == 2'; then pass; else
            fail "interface.max_results=2 not applied to queries: $BODY"
        fi
        expect 200 GET '/v1/events?type=config_updated&limit=100'
        jcheck '(.events|length) <= 2'
        expect 200 PUT /v1/config/interface.max_results '3'
        if poll_until 60 GET '/v1/events?limit=100' '(.events|length) == 3'; then pass; else
            fail "interface.max_results=3 not applied to queries: $BODY"
        fi
    fi
    expect 200 POST /v1/config/reset
    jcheck '.reset == true'
    expect 200 GET /v1/config/dev.debug_mode
    jcheck '.value == false'
    expect 200 GET /v1/config/interface.max_results
    jcheck '.value != 250'
    if wants events; then
        if poll_until 60 GET '/v1/events?type=config_reset&limit=10' '(.events|length) >= 1'; then
            pass
        else fail "no config_reset event after POST /v1/config/reset: $BODY"; fi
        # the reset restored the default cap: queries are no longer limited to 3
        if poll_until 60 GET '/v1/events?limit=100' '(.events|length) > 3'; then pass; else
            fail "reset did not restore interface.max_results: $BODY"
        fi
    fi
    expect 422 POST '/v1/config/reset?to=yesterday'
fi

# --- metrics
if wants metrics; then
    expect 200 GET /metrics
    [[ "$(header Content-Type)" == text/plain* ]] && pass || fail "metrics content type"
    grep -q '^fdn_http_requests_total{.*status_class="4xx"} [1-9]' "$TMP/body" && pass ||
        fail "4xx counter missing: $BODY"
    if command -v promtool >/dev/null; then
        if promtool check metrics <"$TMP/body" >"$TMP/promtool.out" 2>&1; then pass; else
            fail "promtool check metrics: $(cat "$TMP/promtool.out")"
        fi
    else
        echo "note: promtool not installed, exposition format not checked" >&2
    fi
fi

if wants telemetry; then
    expect 200 GET /metrics
    grep -q '^# TYPE fdn_telemetry_dropped_events_total counter' "$TMP/body" && pass ||
        fail "telemetry families missing from /metrics"
    # request latency by route template and method, as a histogram
    grep -q '^fdn_http_request_duration_seconds_count{method="GET",route="/health"} [1-9]' \
        "$TMP/body" && pass || fail "admin request telemetry missing from /metrics"
    grep -q '^fdn_http_request_duration_seconds_bucket{method="GET",route="/health",le="+Inf"} [1-9]' \
        "$TMP/body" && pass || fail "request duration histogram has no +Inf bucket"
    # the process collector and the build info
    for m in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
        process_max_fds process_start_time_seconds process_threads process_virtual_memory_bytes; do
        grep -q "^$m [0-9]" "$TMP/body" && pass || fail "$m missing from /metrics"
    done
    grep -Eq '^fdn_build_info\{version="[0-9.]+",revision="([0-9a-f]{12}|unknown)",build_type="[a-z]+",compiler="[a-z]+",cc_version="[0-9.]+"\} 1$' "$TMP/body" &&
        pass || fail "no fdn_build_info with version, revision, build_type, compiler, cc_version: $(grep '^fdn_build_info' "$TMP/body")"
    # nothing of the reference's Erlang poller, no summaries, one prefix
    ! grep -Eq '^vm_|quantile=|^foundation_' "$TMP/body" && pass ||
        fail "vm_*, quantile or foundation_* lines in /metrics"
    # OpenMetrics on request
    expect 200 GET /metrics - -H 'Accept: application/openmetrics-text; version=1.0.0'
    [[ "$(header Content-Type)" == application/openmetrics-text* ]] && pass ||
        fail "openmetrics content type: $(header Content-Type)"
    [[ "$(tail -n 1 "$TMP/body")" == "# EOF" ]] && pass || fail "openmetrics text without # EOF"
    grep -q '^# TYPE fdn_telemetry_dropped_events counter$' "$TMP/body" && pass ||
        fail "openmetrics counter family named with _total"
    expect 200 GET /v1/telemetry
    jcheck '(.families|type) == "object"'
fi

# --- run-time config updates survive a restart (<data_dir>/config_overrides.json)
if wants config; then
    expect 200 PUT /v1/config/interface.max_results '7'
fi
# --- restart on the same data directory keeps every stored event (stopped with SIGINT)
stop_server INT
if wants config; then
    # written by the config hook thread, which shutdown drains
    if jq -e '."interface.max_results" == 7 and length == 1' "$TMP/data/config_overrides.json" >/dev/null 2>&1; then
        pass
    else fail "overrides file after shutdown: $(cat "$TMP/data/config_overrides.json" 2>&1)"; fi
fi
if wants events; then
    "$FDN" events query --data-dir "$TMP/data" --json --limit 1000 >"$TMP/offline.jsonl"
    # the API's events plus the runtime's own (config_updated, config_reset, and the state
    # changes of the breaker driven over HTTP above)
    n="$(jq -s '[.[] | select((.type | startswith("config_")) or .type == "circuit_breaker_state_change" | not)] | length' "$TMP/offline.jsonl")"
    [[ "$n" -eq ${#STORED_IDS[@]} ]] && pass || fail "offline query saw $n API events, want ${#STORED_IDS[@]}"
    TOTAL="$(wc -l <"$TMP/offline.jsonl")"
    "$FDN" events query --data-dir "$TMP/data" --type order.placed >"$TMP/offline.txt"
    [[ "$(grep -c order.placed "$TMP/offline.txt")" -eq 2 ]] && pass || fail "offline table: $(cat "$TMP/offline.txt")"
    # a store whose table pages are damaged must fail, not print nothing and exit 0
    mkdir -p "$TMP/corrupt"
    cp "$TMP/data/events.db" "$TMP/corrupt/events.db"
    pages=$(($(stat -c %s "$TMP/corrupt/events.db") / 4096))
    for ((pg = 1; pg < pages; pg++)); do
        printf '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' |
            dd of="$TMP/corrupt/events.db" bs=1 seek=$((pg * 4096)) conv=notrunc status=none
    done
    crc=0
    "$FDN" events query --data-dir "$TMP/corrupt" --json >/dev/null 2>"$TMP/corrupt.err" || crc=$?
    [[ $crc -ne 0 ]] && grep -q "$TMP/corrupt/events.db" "$TMP/corrupt.err" && pass ||
        fail "query of a damaged store exited $crc: $(cat "$TMP/corrupt.err")"
fi
start_server
if wants events; then
    for id in "${STORED_IDS[@]}"; do
        expect 200 GET "/v1/events/$id"
        jcheck ".id == $id"
    done
    expect 200 GET /v1/events/stats
    jcheck ".count == $TOTAL"
    expect 201 POST /v1/events '{"type":"after.restart","data":{}}'
    last="${STORED_IDS[${#STORED_IDS[@]} - 1]}"
    jcheck ".id > $last"
fi
if wants config; then
    expect 200 GET /v1/config/interface.max_results
    jcheck '.value == 7'
    expect 200 POST /v1/config/reset # back to the defaults: nothing left to persist
fi
stop_server
if wants config; then
    [[ ! -e "$TMP/data/config_overrides.json" ]] && pass ||
        fail "overrides file left after a reset: $(cat "$TMP/data/config_overrides.json")"
fi

# --- CLI errors: busy port, bad config, non-loopback without token
start_server
if "$FDN" serve --data-dir "$TMP/data2" --listen "127.0.0.1:$PORT" >"$TMP/o2" 2>"$TMP/e2"; then
    fail "second server on a busy port started"
else
    grep -q "already in use" "$TMP/e2" && pass || fail "busy port message: $(cat "$TMP/e2")"
fi
# the port is bound before the runtime exists: a busy port writes nothing
[[ ! -e "$TMP/data2" ]] && pass || fail "busy port: $TMP/data2 was created: $(ls -la "$TMP/data2")"
stop_server
echo '{"dev": ' >"$TMP/bad.json"
if "$FDN" serve --config "$TMP/bad.json" --data-dir "$TMP/data3" --listen 127.0.0.1:0 \
    >/dev/null 2>"$TMP/e3"; then fail "bad config accepted"; else
    grep -q "bad.json" "$TMP/e3" && pass || fail "bad config message: $(cat "$TMP/e3")"
fi
touch "$TMP/not-a-dir"
if "$FDN" serve --data-dir "$TMP/not-a-dir" --listen 127.0.0.1:0 >/dev/null 2>"$TMP/e6"; then
    fail "a regular file accepted as data directory"
else
    grep -q "not-a-dir" "$TMP/e6" && pass || fail "bad data dir message: $(cat "$TMP/e6")"
fi
if "$FDN" serve --listen 0.0.0.0:0 --data-dir "$TMP/data3" >/dev/null 2>"$TMP/e4"; then
    fail "non-loopback without a token started"
else
    grep -q "token" "$TMP/e4" && pass || fail "token message: $(cat "$TMP/e4")"
fi

# --- server threads: --threads N runs N libmicrohttpd threads; the default follows the CPUs
# (at least 2, at most 16); out of range is refused before anything starts
workers() { # PID: how many of its threads libmicrohttpd named MHD-worker
    local n=0 c
    for c in /proc/"$1"/task/*/comm; do
        [[ "$(cat "$c" 2>/dev/null)" == MHD-worker ]] && n=$((n + 1))
    done
    echo "$n"
}
start_server --threads 3
[[ "$(workers "$SERVE_PID")" == 3 ]] && pass || fail "--threads 3: $(workers "$SERVE_PID") server threads"
req GET /health
[[ "$STATUS" == 200 ]] && pass || fail "--threads 3: /health gave $STATUS"
stop_server
start_server
want=$(nproc)
((want < 2)) && want=2
((want > 16)) && want=16
[[ "$(workers "$SERVE_PID")" == "$want" ]] && pass ||
    fail "default threads: $(workers "$SERVE_PID"), want $want (nproc $(nproc))"
stop_server
for bad in 0 65 two; do
    rc=0
    "$FDN" serve --threads "$bad" --data-dir "$TMP/data5" --listen 127.0.0.1:0 >/dev/null 2>"$TMP/e5" || rc=$?
    if ((rc == 2)) && grep -q -- "--threads: '$bad' is not an integer in \[1, 64\]" "$TMP/e5" &&
        [[ ! -e "$TMP/data5" ]]; then pass; else
        fail "--threads $bad: exit $rc, $(cat "$TMP/e5")"
    fi
done

# --- --shutdown-timeout MS: the server's wait at SIGTERM for the answers in flight (the
# cut itself is checked on the library, tests/unit/test_http.c
# shutdown_closes_clients_that_do_not_read); out of range is refused before anything starts
start_server --shutdown-timeout 250
req POST /v1/events '{"type":"shutdown.timeout","data":1}'
[[ "$STATUS" == 201 ]] && pass || fail "--shutdown-timeout 250: POST /v1/events gave $STATUS: $BODY"
stop_server
"$FDN" serve --help | grep -q -- "--shutdown-timeout MS" && pass || fail "--help lacks --shutdown-timeout"
for bad in 0 -1 86400001 soon ""; do
    rc=0
    "$FDN" serve --shutdown-timeout "$bad" --data-dir "$TMP/data6" --listen 127.0.0.1:0 >/dev/null 2>"$TMP/e6" || rc=$?
    if ((rc == 2)) && grep -q -- "--shutdown-timeout: '$bad' is not an integer in \[1, 86400000\]" "$TMP/e6" &&
        [[ ! -e "$TMP/data6" ]]; then pass; else
        fail "--shutdown-timeout '$bad': exit $rc, $(cat "$TMP/e6")"
    fi
done
rc=0
"$FDN" serve --data-dir "$TMP/data6" --shutdown-timeout >/dev/null 2>"$TMP/e6" || rc=$?
((rc == 2)) && grep -q -- "--shutdown-timeout needs a value" "$TMP/e6" && [[ ! -e "$TMP/data6" ]] &&
    pass || fail "--shutdown-timeout without a value: exit $rc, $(cat "$TMP/e6")"

# --- fdn config defaults / check
if wants config; then
    "$FDN" config defaults >"$TMP/defaults.json" && jq -e '.dev.debug_mode == false' "$TMP/defaults.json" >/dev/null &&
        pass || fail "fdn config defaults"
    echo '{"dev":{"debug_mode":"sometimes"}}' >"$TMP/invalid.json"
    if "$FDN" config check "$TMP/invalid.json" >"$TMP/check.out"; then fail "invalid config passed check"; else
        grep -q "dev.debug_mode" "$TMP/check.out" && pass || fail "check does not name the path: $(cat "$TMP/check.out")"
    fi
    "$FDN" config check "$TMP/defaults.json" >/dev/null && pass || fail "defaults do not pass check"
    # every problem is named with its path and rule, the file name once per line
    printf '{"ai":{"provider":"bogus"},"dev":{"debug_mode":"yes"},"interface":{"max_results":-1}}' \
        >"$TMP/multi.json"
    if "$FDN" config check "$TMP/multi.json" >"$TMP/check2.out"; then fail "invalid config passed check"; else
        for p in ai.provider dev.debug_mode interface.max_results; do
            grep -q "^$TMP/multi.json: $p: .*rule: " "$TMP/check2.out" && pass ||
                fail "check does not name $p with its rule: $(cat "$TMP/check2.out")"
        done
        grep -q "multi.json: .*multi.json" "$TMP/check2.out" && fail "file name repeated: $(cat "$TMP/check2.out")" || pass
    fi
    if "$FDN" serve --config "$TMP/invalid.json" --data-dir "$TMP/data3" --listen 127.0.0.1:0 \
        >/dev/null 2>"$TMP/e5"; then fail "serve accepted an invalid config"; else
        grep -q "dev.debug_mode" "$TMP/e5" && pass || fail "serve invalid config message: $(cat "$TMP/e5")"
    fi
    # serve lists every problem of the file, as config check does
    if "$FDN" serve --config "$TMP/multi.json" --data-dir "$TMP/data3" --listen 127.0.0.1:0 \
        >/dev/null 2>"$TMP/e6"; then fail "serve accepted an invalid config"; else
        for p in ai.provider dev.debug_mode interface.max_results; do
            grep -q "multi.json: $p: .*rule: " "$TMP/e6" && pass ||
                fail "serve does not list $p: $(cat "$TMP/e6")"
        done
    fi
fi

# --- bearer token
printf 'integration-test-token-0123456789\n' >"$TMP/token"
chmod 600 "$TMP/token"
start_server --token-file "$TMP/token"
expect 401 GET /v1/registry
[[ "$(header WWW-Authenticate)" == Bearer* ]] && pass || fail "401 without WWW-Authenticate"
expect 401 GET /v1/registry - -H 'Authorization: Bearer wrong'
req GET /health - -H 'Authorization: Bearer integration-test-token-0123456789'
[[ "$STATUS" == 200 ]] && pass || fail "token accepted: $STATUS"
# without the token a body is refused on its headers: 401 before any of it is read, so
# unauthenticated clients cannot make the server buffer max_body bytes per connection
head -c 60000 /dev/zero | tr '\0' ' ' >"$TMP/bigbody"
up="$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' -X POST -H 'Expect: 100-continue' \
    --data-binary @"$TMP/bigbody" --max-time 60 "http://127.0.0.1:$PORT/v1/events")" || true
[[ "$up" == "401 0" ]] && pass || fail "unauthenticated upload (status, bytes sent): $up"
# nobody reads the server's stdout any more (a pipe to `head`, a closed log reader): the
# shutdown messages must not kill it with SIGPIPE before it has stopped cleanly
exec {SERVE_FD}<&-
stop_server

echo "test_http_api: $CHECKS checks passed, $FAILS failed"
[[ $FAILS -eq 0 ]]
