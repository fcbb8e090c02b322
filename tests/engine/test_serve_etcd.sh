#!/usr/bin/env bash
# Two `fdn serve --etcd URL` processes (the fixture's etcd) register themselves (service fdn,
# their admin endpoint, their pid) and each lists both in GET /v1/registry ("shared"); /health
# shows the shared registry's state; a server stopped with SIGTERM leaves the other's list at
# once (its lease is revoked); a bad --etcd URL stops `fdn serve` at start with a message;
# `fdn registry list --etcd URL` prints the same entries; their config follows etcd (a PUT on
# one server is applied by the other, and so is a POST /v1/config/reset).
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
URL="$(cat "${FDN_TEST_ETCD_DIR:?}/url")"

# Each etcd call of the servers (registration, keepalives, the config's txns) and of
# `fdn registry list` is bounded by half a minute, not the default 2 s
# (infrastructure.registry.request_timeout_ms, --request-timeout-ms): one that must succeed is
# not resent after a timeout, and a loaded machine running a sanitizer build can stall etcd or
# a server for seconds. The curls of the PUT and the reset, which wait for such a call, get a
# minute.
export FDN_INFRASTRUCTURE__REGISTRY__REQUEST_TIMEOUT_MS=30000
ETCD_TIMEOUT_MS=30000

# (both servers are runtimes named "production": one namespace in etcd, this test's alone)
start() { # name
    serve_named "$1" --etcd "$URL"
}

# Polls below end at a deadline, not after a number of tries: what they wait for comes through
# etcd and two servers, which a loaded machine running a sanitizer build can each delay for
# seconds (and each try's curl takes longer there too). A minute only catches a hang.
WAIT_S=60

# wait_count PORT N: until /v1/registry on PORT lists N fdn instances (WAIT_S at most)
wait_count() {
    local n="" deadline=$((SECONDS + WAIT_S))
    while :; do
        n=$(curl -s --max-time 10 "http://127.0.0.1:$1/v1/registry" |
            jq '[.shared.entries[] | select(.service == "fdn")] | length')
        [[ "$n" == "$2" ]] && return 0
        ((SECONDS < deadline)) || break
        sleep 0.05
    done
    echo "registry on port $1 lists $n fdn instances, want $2" >&2
    return 1
}

start a
start b
wait_count "${SERVE_PORTS[0]}" 2
wait_count "${SERVE_PORTS[1]}" 2
reg=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[0]}/v1/registry")
entry=$(jq -c ".shared.entries[] | select(.instance == \"127.0.0.1:${SERVE_PORTS[1]}\")" <<<"$reg")
[[ "$(jq -r .endpoint <<<"$entry")" == "http://127.0.0.1:${SERVE_PORTS[1]}" ]] || { echo "entry: $entry" >&2; exit 1; }
[[ "$(jq -r .meta.pid <<<"$entry")" == "${SERVE_PIDS[1]}" ]] || { echo "pid: $entry, want ${SERVE_PIDS[1]}" >&2; exit 1; }
[[ "$(jq -r .lease <<<"$entry")" != 0 && "$(jq -r .owner <<<"$entry")" == *":${SERVE_PIDS[1]}" ]] || { echo "lease/owner: $entry" >&2; exit 1; }
[[ "$(jq -r .shared.stale <<<"$reg")" == false ]] || { echo "stale: $reg" >&2; exit 1; }
health=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[0]}/health")
[[ "$(jq -r .registry.backend <<<"$health")" == etcd && "$(jq -r .registry.stale <<<"$health")" == false ]] || { echo "health: $health" >&2; exit 1; }

# the config follows etcd too: a PUT on a reaches b
put=$(curl -s --max-time 60 -X PUT "http://127.0.0.1:${SERVE_PORTS[0]}/v1/config/interface.max_results" -d '321')
[[ "$(jq -r .value <<<"$put")" == 321 ]] || { echo "PUT on a: $put" >&2; exit 1; }
got=""
deadline=$((SECONDS + WAIT_S))
while :; do
    got=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[1]}/v1/config/interface.max_results" | jq -r .value)
    if [[ "$got" == 321 ]] || ((SECONDS >= deadline)); then break; fi
    sleep 0.05
done
[[ "$got" == 321 ]] || { echo "b did not follow the update: $got" >&2; exit 1; }
# an invalid value (past the schema's bound, the event store's 32-bit cap) answers 422 with the
# schema's code 1101 and is never written to etcd: a keeps 321, and b's config_etcd.refused
# (which would count it when it came back from etcd), checked below once b has applied its own
# later reset, stays 0
code=$(curl -s -o "$TMP/big.json" -w '%{http_code}' --max-time 60 -X PUT "http://127.0.0.1:${SERVE_PORTS[0]}/v1/config/interface.max_results" -d '4294967296')
[[ "$code" == 422 && "$(jq -r .error.code "$TMP/big.json")" == 1101 ]] ||
    { echo "an invalid value answered $code: $(cat "$TMP/big.json")" >&2; exit 1; }
got=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[0]}/v1/config/interface.max_results" | jq -r .value)
[[ "$got" == 321 ]] || { echo "a after an invalid value: $got" >&2; exit 1; }
# a reset on b goes through etcd: a applies it too, at the same revision
reset=$(curl -s --max-time 60 -X POST "http://127.0.0.1:${SERVE_PORTS[1]}/v1/config/reset")
[[ "$(jq -r .reset <<<"$reset")" == true ]] || { echo "POST reset on b: $reset" >&2; exit 1; }
health=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[1]}/health")
[[ "$(jq -r .config_etcd.refused <<<"$health")" == 0 ]] || { echo "b saw a refused value: $health" >&2; exit 1; }
got=""
deadline=$((SECONDS + WAIT_S))
while :; do
    got=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[0]}/v1/config/interface.max_results")
    if [[ "$(jq -r .value <<<"$got")" == 1000 ]] || ((SECONDS >= deadline)); then break; fi
    sleep 0.05
done
[[ "$(jq -r .value <<<"$got")" == 1000 ]] || { echo "a did not follow b's reset: $got (reset: $reset)" >&2; exit 1; }
health=$(curl -s --max-time 10 "http://127.0.0.1:${SERVE_PORTS[0]}/health")
[[ "$(jq -r .config_etcd.revision <<<"$health")" == "$(jq -r .revision <<<"$reset")" ]] ||
    { echo "a's config revision after b's reset: $health (reset: $reset)" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT "http://127.0.0.1:${SERVE_PORTS[1]}/v1/config/ai.provider" -d '"openai"')
[[ "$code" == 403 ]] || { echo "a forbidden path answered $code" >&2; exit 1; }

# the same from the command line
out=$("$FDN" registry list --etcd "$URL" --request-timeout-ms "$ETCD_TIMEOUT_MS" --service fdn --json)
[[ "$(jq .count <<<"$out")" == 2 ]] || { echo "registry list: $out" >&2; exit 1; }
jq -e ".entries[] | select(.endpoint == \"http://127.0.0.1:${SERVE_PORTS[0]}\" and .meta.pid == \"${SERVE_PIDS[0]}\")" \
    <<<"$out" >/dev/null || { echo "registry list lacks server a: $out" >&2; exit 1; }
"$FDN" registry list --etcd "$URL" --request-timeout-ms "$ETCD_TIMEOUT_MS" | grep -q "^fdn/127.0.0.1:${SERVE_PORTS[1]}	http://127.0.0.1:${SERVE_PORTS[1]}	" ||
    { echo "registry list (text): $("$FDN" registry list --etcd "$URL" --request-timeout-ms "$ETCD_TIMEOUT_MS")" >&2; exit 1; }
set +e
"$FDN" registry list --etcd "http://127.0.0.1:1" >/dev/null 2>"$TMP/l.err"
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q 'refused' "$TMP/l.err" || { echo "registry list, no etcd: $rc $(cat "$TMP/l.err")" >&2; exit 1; }

# b stops: its lease is revoked, a's list shrinks at once
kill -TERM "${SERVE_PIDS[1]}"
wait "${SERVE_PIDS[1]}" || true
wait_count "${SERVE_PORTS[0]}" 1

# a URL that is not etcd's: a clear error at start, exit status 1
serve_refused 'http://' --etcd "etcd:2379"
echo "ok: two servers list each other through etcd; a stopped one leaves; a bad URL refused at start"
