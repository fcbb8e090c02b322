#!/usr/bin/env bash
# telemetry.buckets and telemetry.summaries on a real `fdn serve` (docs/telemetry.md,
# "Configured layouts and summaries"), set through the environment as an operator would:
#   - by default /metrics has no summary at all;
#   - with FDN_TELEMETRY__SUMMARIES naming fdn_http_request_duration_seconds, that histogram
#     also has a summary (fdn_http_request_duration_quantiles_seconds, quantile 0.5 .. 0.999,
#     _sum and _count equal to the histogram's), and no other histogram has one;
#   - with FDN_TELEMETRY__BUCKETS, the named histogram has exactly the configured `le` bounds
#     and the others keep the default 10 us .. 10 s;
#   - the text 0.0.4 passes `promtool check metrics` (when installed; promtool reads no
#     OpenMetrics), the OpenMetrics answer has the summary too;
#   - a bad value stops `fdn serve` at start with the member and the reason.
# Synchronisation: the listen line is read from the server's stdout; every request is
# answered before /metrics is read.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
H=fdn_http_request_duration_seconds
S=fdn_http_request_duration_quantiles_seconds

metrics() { # [ACCEPT]: the /metrics text of the current server
    curl -sf --max-time 30 ${1:+-H "Accept: $1"} "http://127.0.0.1:$SERVE_PORT/metrics"
}
promcheck() { # TEXT
    command -v promtool >/dev/null || return 0
    promtool check metrics <<<"$1" >"$TMP/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$TMP/promtool.out")"
}

# --- defaults: no summary
serve_named plain
curl -sf --max-time 30 "http://127.0.0.1:$SERVE_PORT/health" >/dev/null || fail "/health"
text="$(metrics)"
grep -q "^${H}_count{method=\"GET\",route=\"/health\"} 1$" <<<"$text" || fail "no histogram of /health"
if grep -q ' summary$' <<<"$text"; then fail "a summary without configuration: $(grep ' summary$' <<<"$text")"; fi
if grep -q 'quantile=' <<<"$text"; then fail "quantiles without configuration"; fi
serve_stop TERM
echo "ok: no summary by default"

# --- configured
export FDN_TELEMETRY__SUMMARIES="[\"$H\"]"
export FDN_TELEMETRY__BUCKETS="{\"$H\":[0.001,0.1,2]}"
serve_named configured
for _ in 1 2 3; do
    curl -sf --max-time 30 "http://127.0.0.1:$SERVE_PORT/health" >/dev/null || fail "/health"
done
curl -sf -o /dev/null --max-time 30 "http://127.0.0.1:$SERVE_PORT/v1/events?type=x" || fail "query"
text="$(metrics)"
grep -q "^# TYPE $S summary$" <<<"$text" || fail "no summary $S"
for q in 0.5 0.9 0.99 0.999; do
    grep -Eq "^$S\{method=\"GET\",route=\"/health\",quantile=\"$q\"\} [0-9.e+-]+$" <<<"$text" ||
        fail "no quantile $q of /health: $(grep "^$S" <<<"$text")"
done
hc="$(sed -n "s/^${H}_count{method=\"GET\",route=\"\/health\"} //p" <<<"$text")"
sc="$(sed -n "s/^${S}_count{method=\"GET\",route=\"\/health\"} //p" <<<"$text")"
[[ "$hc" == 3 && "$sc" == 3 ]] || fail "counts: histogram '$hc', summary '$sc', want 3"
[[ "$(grep -c ' summary$' <<<"$text")" == 1 ]] || fail "summaries beyond the configured one: $(grep ' summary$' <<<"$text")"
les="$(sed -n "s/^${H}_bucket{method=\"GET\",route=\"\/health\",le=\"\([^\"]*\)\"}.*/\1/p" <<<"$text" | tr '\n' ' ')"
[[ "$les" == "0.001 0.1 2 +Inf " ]] || fail "le bounds of $H: '$les'"
grep -q '^fdn_event_store_query_duration_seconds_bucket{le="1e-05"} ' <<<"$text" ||
    fail "another histogram lost its default layout: $(grep -m3 '^fdn_event_store_query_duration_seconds_bucket' <<<"$text")"
promcheck "$text"
om="$(metrics 'application/openmetrics-text; version=1.0.0')"
grep -q "^# TYPE $S summary$" <<<"$om" || fail "no summary in OpenMetrics"
[[ "$(tail -1 <<<"$om")" == "# EOF" ]] || fail "OpenMetrics text without # EOF"
serve_stop TERM
echo "ok: summary and buckets where configured, nowhere else"

# --- refused at start
unset FDN_TELEMETRY__BUCKETS
export FDN_TELEMETRY__SUMMARIES='["a","a"]'
serve_refused 'telemetry.summaries.*Invalid summary: a: named twice'
export FDN_TELEMETRY__SUMMARIES='[]'
export FDN_TELEMETRY__BUCKETS="{\"$H\":[1,0.5]}"
serve_refused "Invalid histogram buckets: $H: the bounds are not strictly increasing"
echo "ok: bad values stop fdn serve at start"
