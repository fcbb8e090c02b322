#!/usr/bin/env bash
# Integration test with a real Prometheus (Debian's `prometheus` package): it scrapes a real
# `fdn serve` every second while the test drives traffic (HTTP requests, limiter denials, a
# breaker that opens, config updates, event appends and queries), and a second target,
# fdn_alert_target (tests/integration/alert_target.c: a runtime with the same HTTP API, for
# what `fdn serve` cannot be driven into over HTTP: protected calls, a pool that runs out,
# registry lookups), and the test checks through Prometheus's query API (/api/v1/query) that
#   - the targets are up and scraped in OpenMetrics (Prometheus asks for it) without errors;
#   - histogram_quantile over each latency histogram returns a number;
#   - the breaker state series flips (state="closed" 1 -> state="open" 1);
#   - labelled families carry the expected label values (route templates, never raw paths;
#     limiter rules; event types; pools; breakers; protection keys);
#   - exemplars carry the correlation id (an X-Correlation-Id header, a posted event's
#     correlation_id, a protected call's error context) into Prometheus's exemplar storage
#     (/api/v1/query_exemplars), and /metrics writes them when asked for OpenMetrics.
# Both targets are started by tests/support/targets.sh (shared with test_metrics_catalogue.sh).
# Synchronisation: the server's listen line is read from its stdout; Prometheus's readiness
# and every expected series are polled through its HTTP API with a deadline (a scrape is
# asynchronous by nature, so polling its result is the only signal there is).
# Skips (exit 0 with a note) when prometheus is not installed.
set -euo pipefail

command -v prometheus >/dev/null || { echo "SKIP: prometheus not installed (scripts/deps.sh installs it)"; exit 0; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../support/targets.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/targets.sh"
PROM_PID=""
cleanup() {
    [[ -n "$PROM_PID" ]] && kill -TERM "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    targets_cleanup
}
trap cleanup EXIT

# --- fdn serve and the second target (commands through `at`)
targets_start
post() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' "$BASE$2" ${3:+--data-binary "$3"}; }
at "calls scrape-cid-1" # protected calls (breaker, limiter rule, pool checkout), registry
at hold                 # the pool runs out ...
at full                 # ... and a checkout that may not wait is refused

# --- traffic before the first scrape
[[ "$(post PUT /v1/breakers/scrape-b1 '{"failure_threshold":1,"recovery_time_ms":600000}')" == 20* ]] ||
    fail "cannot create the breaker"
for i in 1 2 3; do
    [[ "$(post POST /v1/events '{"type":"order.created","data":{"n":'$i'}}')" == 20* ]] || fail "event append"
done
# exemplars: a posted event's correlation id, and a request's X-Correlation-Id header
[[ "$(post POST /v1/events '{"type":"order.paid","data":{},"correlation_id":"scrape-ev-1"}')" == 20* ]] ||
    fail "event append with a correlation id"
[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H 'X-Correlation-Id: scrape-hdr-1' "$BASE/v1/events?type=order.created")" == 200 ]] ||
    fail "event query"
om="$(curl -s --max-time 60 -H 'Accept: application/openmetrics-text' "$BASE/metrics")"
grep -q '^fdn_http_request_duration_seconds_bucket{method="GET",route="/v1/events",le="[^"]*"} [0-9]* # {correlation_id="scrape-hdr-1"} [0-9.e+-]* [0-9.]*$' <<<"$om" ||
    fail "no exemplar with the X-Correlation-Id header in the OpenMetrics text: $(grep -m3 '# {' <<<"$om")"
grep -q '^fdn_http_request_duration_seconds_bucket{method="POST",route="/v1/events",le="[^"]*"} [0-9]* # {correlation_id="scrape-ev-1"} ' <<<"$om" ||
    fail "no exemplar with the posted event's correlation id"
if curl -s --max-time 60 "$BASE/metrics" | grep -q 'scrape-hdr-1'; then
    fail "the 0.0.4 text must not carry exemplars"
fi
echo "ok: exemplars in the OpenMetrics text"
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
  - job_name: fdn_target
    static_configs:
      - targets: ['127.0.0.1:$APORT']
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --enable-feature=exemplar-storage \
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

wait_for 60 'up{job=~"fdn|fdn_target"}' 'length == 2 and all(.[]; .value[1] == "1")'
echo "ok: targets up"
# the scrape produced no errors (samples were ingested, none rejected)
wait_for 30 'scrape_samples_scraped{job=~"fdn|fdn_target"}' 'length == 2 and all(.[]; .value[1] | tonumber > 50)'

# histogram_quantile over the latency histogram returns a number
wait_for 30 'histogram_quantile(0.9, sum by (le) (fdn_http_request_duration_seconds_bucket{route="/v1/events",method="POST"}))' \
    'length == 1 and (.[0].value[1] | test("^[0-9.e+-]+$"))'
echo "ok: histogram_quantile on fdn_http_request_duration_seconds = $(jq -r '.[0].value[1]' <<<"$RESULT")"
wait_for 30 'histogram_quantile(0.5, sum by (le, route) (fdn_http_request_duration_seconds_bucket))' \
    'length >= 3'
# ... and over every other latency histogram (the Redis backend's needs `fdn serve --redis`:
# test_prometheus_alerts.sh)
for h in fdn_event_store_append_duration_seconds fdn_event_store_commit_duration_seconds \
    fdn_event_store_query_duration_seconds fdn_config_update_duration_seconds \
    fdn_circuit_breaker_call_duration_seconds fdn_protected_call_duration_seconds \
    fdn_pool_checkout_wait_seconds fdn_registry_lookup_duration_seconds; do
    wait_for 30 "histogram_quantile(0.99, sum by (le) (${h}_bucket))" \
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
wait_for 30 'fdn_events_appended_total{job="fdn"}' '.[0].value[1] | tonumber >= 3'
wait_for 30 'fdn_rate_limiter_request_denied_total{job="fdn",rule="(unnamed)"}' '.[0].value[1] | tonumber >= 1'
wait_for 30 'fdn_rate_limiter_request_allowed_total{job="fdn_target",rule="api_calls"}' '.[0].value[1] | tonumber >= 2'
r="$(query 'count(fdn_rate_limiter_request_allowed_total{rule=~".*scrape.*"})')"
[[ "$r" == "[]" ]] || fail "a limiter key became a label value: $r"
wait_for 30 'fdn_events_appended_by_type_total{type="order.created"}' '.[0].value[1] == "3"'
wait_for 30 'fdn_events_appended_by_type_total{type="order.paid"}' '.[0].value[1] == "1"'
wait_for 30 'fdn_pool_in_use{pool="alert-pool"} == fdn_pool_size{pool="alert-pool"}' 'length == 1'
wait_for 30 'fdn_pool_checkout_full_total{pool="alert-pool"}' '.[0].value[1] | tonumber >= 1'
wait_for 30 'fdn_pool_checkout_wait_seconds_count{pool="alert-pool"}' '.[0].value[1] | tonumber >= 1'
wait_for 30 'fdn_protected_call_duration_seconds_count{key="alert-call",outcome="ok"}' '.[0].value[1] == "1"'
wait_for 30 'fdn_protected_call_duration_seconds_count{key="alert-call",outcome="FDN_EIO"}' '.[0].value[1] == "1"'
wait_for 30 'fdn_circuit_breaker_call_duration_seconds_count{breaker="alert-breaker",outcome="failure"}' '.[0].value[1] == "1"'
wait_for 30 'process_resident_memory_bytes{job="fdn"}' '.[0].value[1] | tonumber > 0'
wait_for 30 'fdn_build_info{job="fdn"}' '.[0].value[1] == "1" and all(.[0].metric.version, .[0].metric.revision, .[0].metric.build_type, .[0].metric.compiler, .[0].metric.cc_version; length > 0)'
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
wait_for 30 'fdn_circuit_breaker_call_duration_seconds_count{breaker="scrape-b1",outcome="failure"}' '.[0].value[1] == "1"'
# a rejected call while open
[[ "$(post POST /v1/breakers/scrape-b1/acquire)" == 503 ]] || fail "open breaker should reject"
wait_for 30 'fdn_circuit_breaker_calls_total{breaker="scrape-b1",outcome="rejected"}' '.[0].value[1] | tonumber >= 1'
echo "ok: breaker state flipped closed -> open"

# exemplars reached Prometheus's exemplar storage, with the correlation ids
# exemplars EXPR JQ_FILTER: poll /api/v1/query_exemplars over the last 10 minutes
exemplars() {
    local deadline=$((SECONDS + 30)) r=""
    while ((SECONDS < deadline)); do
        r="$(curl -s --max-time 30 --data-urlencode "query=$1" --data-urlencode "start=$(($(date +%s) - 600))" \
            --data-urlencode "end=$(($(date +%s) + 60))" "$PROM/api/v1/query_exemplars" | jq -c '.data' 2>/dev/null || true)"
        [[ -n "$r" ]] && jq -e "$2" <<<"$r" >/dev/null 2>&1 && return 0
        sleep 0.5 # polling an asynchronous scraper
    done
    fail "no exemplar for $1 | $2; last: $r"
}
has_cid() { echo "[.[].exemplars[].labels.correlation_id] | index(\"$1\") != null"; }
exemplars 'fdn_http_request_duration_seconds_bucket' "$(has_cid scrape-hdr-1)"
exemplars 'fdn_http_request_duration_seconds_bucket' "$(has_cid scrape-ev-1)"
exemplars 'fdn_protected_call_duration_seconds_bucket' "$(has_cid scrape-cid-1)"
echo "ok: exemplars with correlation ids in Prometheus"

# nothing of the old names reached Prometheus
r="$(query 'count({__name__=~"vm_.*|foundation_.*|.*_emissions_total"})')"
[[ "$r" == "[]" ]] || fail "old metric names scraped: $r"
echo "ok: real Prometheus scraping fdn serve"
