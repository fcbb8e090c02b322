#!/usr/bin/env bash
# `fdn serve --etcd URL` while etcd is down (an etcd of this test's own, killed): the server
# starts anyway, serves its local config, and /health marks the registry and the config stale;
# once etcd answers it registers itself, follows etcd's config and the stale flags go off.
# The lease TTL comes from infrastructure.registry.lease_ttl_ms and the bound on each etcd call
# from infrastructure.registry.request_timeout_ms (a value out of range of either stops
# `fdn serve` with a clear error); the bound is half a minute here, not the default 2 s: a
# call that must succeed once etcd is back is not resent after a timeout, and a loaded machine
# running a sanitizer build can stall etcd or the server for seconds (calls while etcd is
# down are refused at once). /metrics shows the etcd clients' latency, breaker and stale
# families.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
ETCD_SH="${FDN_SOURCE_DIR:?}/scripts/etcd-server.sh"
EDIR="$TMP/etcd"
URL=$(bash "$ETCD_SH" start "$EDIR")
cleanup() {
    bash "$ETCD_SH" stop "$EDIR" >/dev/null 2>&1 || true
}
trap 'cleanup; serve_cleanup' EXIT
bash "$ETCD_SH" kill "$EDIR"

# a lease TTL out of range: refused at start, naming the path
echo '{"infrastructure": {"registry": {"lease_ttl_ms": 500}}}' >"$TMP/bad.json"
serve_refused 'lease_ttl_ms' --etcd "$URL" --config "$TMP/bad.json"

# a bound on etcd calls out of range (1..600000): refused at start, naming the path
for bad in 0 600001 '"30s"'; do
    echo '{"infrastructure": {"registry": {"request_timeout_ms": '"$bad"'}}}' >"$TMP/bad.json"
    serve_refused 'infrastructure\.registry\.request_timeout_ms' --etcd "$URL" --config "$TMP/bad.json"
done

echo '{"infrastructure": {"registry": {"lease_ttl_ms": 3000, "request_timeout_ms": 30000}}}' >"$TMP/cfg.json"
serve_named a --etcd "$URL" --config "$TMP/cfg.json"
PORT=${SERVE_PORTS[0]}
line=""
IFS= read -r -t 30 line <&"$SERVE_FD" || true
[[ "$line" == *"etcd unreachable"*"fdn/127.0.0.1:$PORT"* ]] || { echo "no deferred registration line: $line" >&2; exit 1; }
health=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/health")
[[ "$(jq -r .registry.stale <<<"$health")" == true && "$(jq -r .registry.lease_ok <<<"$health")" == false &&
    "$(jq -r .config_etcd.stale <<<"$health")" == true ]] || { echo "health while etcd is down: $health" >&2; exit 1; }
[[ "$(jq -r .registry.lease_ttl_s <<<"$health")" == 3 ]] || { echo "lease TTL: $health" >&2; exit 1; }
got=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/v1/config/interface.max_results" | jq -r .value)
[[ "$got" == 1000 ]] || { echo "local config while etcd is down: $got" >&2; exit 1; }

# etcd answers: registered, following, fresh (a minute at most: a deadline, not a number of
# tries, since each try's two curls take longer on a loaded machine running a sanitizer build,
# which can also delay the server's reconnection for seconds)
bash "$ETCD_SH" restart "$EDIR" >/dev/null
ok=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    health=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/health")
    n=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/v1/registry" |
        jq "[.shared.entries[] | select(.instance == \"127.0.0.1:$PORT\")] | length")
    if [[ "$n" == 1 && "$(jq -r .registry.stale <<<"$health")" == false &&
        "$(jq -r .config_etcd.stale <<<"$health")" == false ]]; then
        ok=1
        break
    fi
    sleep 0.05
done
[[ -n "$ok" ]] || { echo "not registered/fresh after etcd came back: $health" >&2; exit 1; }
out=$("$FDN" registry list --etcd "$URL" --request-timeout-ms 30000 --service fdn --json)
[[ "$(jq .count <<<"$out")" == 1 ]] || { echo "registry list: $out" >&2; exit 1; }
put=$(curl -s --max-time 60 -X PUT "http://127.0.0.1:$PORT/v1/config/interface.max_results" -d '42')
[[ "$(jq -r .value <<<"$put")" == 42 ]] || { echo "PUT after etcd came back: $put" >&2; exit 1; }

metrics=$(curl -s --max-time 60 "http://127.0.0.1:$PORT/metrics")
grep -q '^fdn_etcd_request_duration_seconds_count{client="registry",op="lease_grant",outcome="ok"} [1-9]' <<<"$metrics" ||
    { echo "no lease grants in /metrics: $(grep fdn_etcd <<<"$metrics")" >&2; exit 1; }
grep -q '^fdn_etcd_request_duration_seconds_count{client="registry",op="range",outcome="unreachable"} [1-9]' <<<"$metrics" ||
    { echo "no failed ranges in /metrics" >&2; exit 1; }
grep -q '^fdn_etcd_request_duration_seconds_count{client="config",op="txn",outcome="ok"} [1-9]' <<<"$metrics" ||
    { echo "no config txn in /metrics" >&2; exit 1; }
grep -q '^fdn_etcd_breaker_state{client="registry",state="closed"} 1$' <<<"$metrics" ||
    { echo "registry breaker not closed in /metrics" >&2; exit 1; }
grep -q '^fdn_etcd_breaker_state{client="config",state="closed"} 1$' <<<"$metrics" ||
    { echo "config breaker not closed in /metrics" >&2; exit 1; }
grep -q '^fdn_etcd_stale{client="config"} 0$' <<<"$metrics" || { echo "config stale in /metrics" >&2; exit 1; }
echo "ok: fdn serve --etcd starts while etcd is down, stale, and catches up when it answers"
