#!/usr/bin/env bash
# Integration test with a real Prometheus (Debian's `prometheus` package): it scrapes a real
# `fdn serve` every second while the test drives traffic (HTTP requests, limiter denials, a
# breaker that opens, config updates, event appends), and the test checks through
# Prometheus's query API (/api/v1/query) that
#   - the target is up and scraped in OpenMetrics (Prometheus asks for it) without errors;
#   - histogram_quantile over the HTTP request latency histogram returns a number;
#   - the breaker state series flips (state="closed" 1 -> state="open" 1);
#   - labelled families carry the expected label values (route templates, never raw paths).
# Synchronisation: the server's listen line is read from its stdout; Prometheus's readiness
# and every expected series are polled through its HTTP API with a deadline (a scrape is
# asynchronous by nature, so polling its result is the only signal there is).
# Skips (exit 0 with a note) when prometheus is not installed.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?}/bin/fdn"
command -v prometheus >/dev/null || { echo "SKIP: prometheus not installed (scripts/deps.sh installs it)"; exit 0; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
TMP="$(mktemp -d)"
SRV_PID=""
PROM_PID=""
cleanup() {
    [[ -n "$PROM_PID" ]] && kill -TERM "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    [[ -n "$SRV_PID" ]] && kill -TERM "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- fdn serve on a free port
exec 3< <(exec "$FDN" serve --data-dir "$TMP/data" --listen 127.0.0.1:0 2>"$TMP/server.err")
SRV_PID=$!
PORT=""
while IFS= read -r -t 60 line <&3; do
    if [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
        PORT="${BASH_REMATCH[1]}"
        break
    fi
done
[[ -n "$PORT" ]] || fail "fdn serve did not start: $(cat "$TMP/server.err")"
BASE="http://127.0.0.1:$PORT"
post() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' "$BASE$2" ${3:+--data-binary "$3"}; }

# --- traffic before the first scrape
[[ "$(post PUT /v1/breakers/scrape-b1 '{"failure_threshold":1,"recovery_time_ms":600000}')" == 20* ]] ||
    fail "cannot create the breaker"
for i in 1 2 3; do
    [[ "$(post POST /v1/events '{"type":"order.created","data":{"n":'$i'}}')" == 20* ]] || fail "event append"
done
[[ "$(post PUT /v1/config/dev.debug_mode true)" == 200 ]] || fail "config update"
post POST /v1/limiter/check '{"key":"scrape","limit":1,"window_ms":600000}' >/dev/null
[[ "$(post POST /v1/limiter/check '{"key":"scrape","limit":1,"window_ms":600000}')" == 429 ]] ||
    fail "the second check should be denied"
post GET /v1/breakers/scrape-b1 >/dev/null
post GET /v1/events/1 >/dev/null
post GET /no/such/endpoint >/dev/null

# --- Prometheus on a free port
PPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fdn
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$TMP/prom.log" 2>&1 &
PROM_PID=$!
PROM="http://127.0.0.1:$PPORT"

# query EXPR -> the JSON result array
query() { curl -s --max-time 30 --data-urlencode "query=$1" "$PROM/api/v1/query" | jq -c '.data.result'; }
# wait_for SECONDS EXPR JQ_FILTER : poll until the filter holds on the result
wait_for() {
    local deadline=$((SECONDS + $1)) r=""
    while ((SECONDS < deadline)); do
        r="$(query "$2" 2>/dev/null || true)"
        if [[ -n "$r" ]] && jq -e "$3" <<<"$r" >/dev/null 2>&1; then
            RESULT="$r"
            return 0
        fi
        sleep 0.5 # polling an asynchronous scraper; not used to order our own actions
    done
    fail "timeout waiting for $2 | $3; last: $r; prometheus log: $(tail -5 "$TMP/prom.log")"
}

wait_for 60 'up{job="fdn"}' 'length == 1 and .[0].value[1] == "1"'
echo "ok: target up"
# the scrape produced no errors (samples were ingested, none rejected)
wait_for 30 'scrape_samples_scraped{job="fdn"}' '.[0].value[1] | tonumber > 50'

# histogram_quantile over the latency histogram returns a number
wait_for 30 'histogram_quantile(0.9, sum by (le) (fdn_http_request_duration_seconds_bucket{route="/v1/events",method="POST"}))' \
    'length == 1 and (.[0].value[1] | test("^[0-9.e+-]+$"))'
echo "ok: histogram_quantile on fdn_http_request_duration_seconds = $(jq -r '.[0].value[1]' <<<"$RESULT")"
wait_for 30 'histogram_quantile(0.5, sum by (le, route) (fdn_http_request_duration_seconds_bucket))' \
    'length >= 3'
# ... and over the event store's append and durable commit latencies
for h in fdn_event_store_append_duration_seconds fdn_event_store_commit_duration_seconds; do
    wait_for 30 "histogram_quantile(0.99, ${h}_bucket)" \
        'length == 1 and (.[0].value[1] | test("^[0-9.e+-]+$"))'
    echo "ok: histogram_quantile on $h = $(jq -r '.[0].value[1]' <<<"$RESULT")"
done

# labelled families with the expected label values (route templates, not raw paths)
wait_for 30 'fdn_http_requests_total{route="/v1/breakers/{name}",method="GET",status_class="2xx"}' 'length == 1'
wait_for 30 'fdn_http_requests_total{route="unmatched",status_class="4xx"}' 'length == 1'
r="$(query 'count(fdn_http_requests_total{route=~".*scrape-b1.*"})')"
[[ "$r" == "[]" ]] || fail "a raw path became a label value: $r"
wait_for 30 'fdn_config_updates_total{path="dev.debug_mode",outcome="applied"}' '.[0].value[1] == "1"'
wait_for 30 'fdn_events_held_by_type{type="order.created"}' '.[0].value[1] == "3"'
wait_for 30 'fdn_events_appended_total' '.[0].value[1] | tonumber >= 3'
wait_for 30 'fdn_rate_limiter_request_denied_total' '.[0].value[1] | tonumber >= 1'
wait_for 30 'process_resident_memory_bytes{job="fdn"}' '.[0].value[1] | tonumber > 0'
wait_for 30 'fdn_build_info{job="fdn"}' '.[0].value[1] == "1" and (.[0].metric.version | length > 0)'
echo "ok: labelled families"

# the breaker state series flips
wait_for 30 'fdn_circuit_breaker_state{breaker="scrape-b1",state="closed"}' '.[0].value[1] == "1"'
ticket="$(curl -s --max-time 60 -X POST "$BASE/v1/breakers/scrape-b1/acquire" | jq -r .ticket)"
[[ -n "$ticket" && "$ticket" != null ]] || fail "no ticket"
[[ "$(post POST /v1/breakers/scrape-b1/report '{"ticket":"'"$ticket"'","outcome":"failure"}')" == 20* ]] ||
    fail "report failed"
wait_for 30 'fdn_circuit_breaker_state{breaker="scrape-b1",state="open"}' '.[0].value[1] == "1"'
wait_for 30 'fdn_circuit_breaker_state{breaker="scrape-b1",state="closed"}' '.[0].value[1] == "0"'
wait_for 30 'fdn_circuit_breaker_state_change_total{breaker="scrape-b1",from="closed",to="open"}' '.[0].value[1] == "1"'
# a rejected call while open
[[ "$(post POST /v1/breakers/scrape-b1/acquire)" == 503 ]] || fail "open breaker should reject"
wait_for 30 'fdn_circuit_breaker_calls_total{breaker="scrape-b1",outcome="rejected"}' '.[0].value[1] | tonumber >= 1'
echo "ok: breaker state flipped closed -> open"

# nothing of the old names reached Prometheus
r="$(query 'count({__name__=~"vm_.*|foundation_.*|.*_emissions_total"})')"
[[ "$r" == "[]" ]] || fail "old metric names scraped: $r"
echo "ok: real Prometheus scraping fdn serve"
