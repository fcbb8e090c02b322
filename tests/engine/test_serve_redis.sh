#!/usr/bin/env bash
# Two `fdn serve --redis URL` processes (the fixture's Redis) share one rate limit: a
# sliding-window limit of 5 per minute on one key admits exactly 5 requests across both
# servers, the 6th is refused by either with 429; a bad --redis URL stops `fdn serve` at
# start with a message naming the problem.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
URL="$(cat "${FDN_TEST_REDIS_DIR:?}/url")"
# The shared limit's servers wait for Redis as long as a check takes on a loaded machine: past
# the default 250 ms a check is answered by the local fallback, which would admit a 6th.
cat >"$TMP/patient.json" <<'JSON'
{"infrastructure": {"rate_limiting": {"redis": {"command_timeout_ms": 60000, "connect_timeout_ms": 60000}}}}
JSON
start() { # name [args]
    local name=$1
    shift
    serve_named "$name" --redis "$URL" "$@"
}

start a --config "$TMP/patient.json"
start b --config "$TMP/patient.json"
KEY="serve-$$-$RANDOM"
allowed=0
denied=0
for i in $(seq 1 8); do
    port=${SERVE_PORTS[$((i % 2))]}
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST \
        -H 'Content-Type: application/json' "http://127.0.0.1:$port/v1/limiter/check" \
        -d "{\"key\":\"$KEY\",\"limit\":5,\"window_ms\":60000,\"algorithm\":\"sliding_window\"}")
    case "$code" in
    200) allowed=$((allowed + 1)) ;;
    429) denied=$((denied + 1)) ;;
    *) echo "unexpected status $code" >&2; exit 1 ;;
    esac
done
[[ $allowed -eq 5 && $denied -eq 3 ]] || { echo "allowed $allowed denied $denied, want 5 and 3" >&2; exit 1; }

# the backend's state in /health and /metrics
health=$(curl -s --max-time 60 "http://127.0.0.1:${SERVE_PORTS[0]}/health")
[[ "$(jq -r '.services.rate_limiter_backend.status' <<<"$health")" == ok ]] || { echo "health: $health" >&2; exit 1; }
metrics=$(curl -s --max-time 60 "http://127.0.0.1:${SERVE_PORTS[0]}/metrics")
grep -q '^fdn_rate_limiter_backend_up{backend="redis"} 1$' <<<"$metrics" || { echo "no backend_up 1 in /metrics" >&2; exit 1; }
grep -q '^fdn_rate_limiter_backend_operations_total{backend="redis",operation="command"} [1-9]' <<<"$metrics" || { echo "no commands in /metrics" >&2; exit 1; }
grep -q '^fdn_rate_limiter_backend_request_duration_seconds_count{backend="redis"} [1-9]' <<<"$metrics" || { echo "no round trips in /metrics" >&2; exit 1; }
if command -v promtool >/dev/null; then
    promtool check metrics <<<"$metrics" >/dev/null 2>"$TMP/promtool.err" || { echo "promtool: $(cat "$TMP/promtool.err")" >&2; exit 1; }
fi

# Redis away: a server pointed at a closed port answers checks by its policy (local) and says
# so in /health (503, degraded) and /metrics (backend_up 0, fallbacks counted)
# Port 1: a loopback port nothing listens on, and nothing can start to meanwhile (a random
# one in 20000..52767 could be taken by a test server started at the same time, 10000..32767,
# or be the ephemeral local port of the server's own connect, which then reaches itself)
closed=1
! (exec 3<>"/dev/tcp/127.0.0.1/$closed") 2>/dev/null || { echo "port 1 of the loopback is open here: no closed port for this check" >&2; exit 1; }
URL="redis://127.0.0.1:$closed"
start d
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST -H 'Content-Type: application/json' \
    "http://127.0.0.1:${SERVE_PORTS[2]}/v1/limiter/check" -d '{"key":"k","limit":5,"window_ms":60000}')
[[ "$code" == 200 ]] || { echo "local fallback answered $code" >&2; exit 1; }
code=$(curl -s -o "$TMP/h" -w '%{http_code}' --max-time 60 "http://127.0.0.1:${SERVE_PORTS[2]}/health")
[[ "$code" == 503 && "$(jq -r '.services.rate_limiter_backend.status' "$TMP/h")" == unhealthy ]] || { echo "health with Redis away: $code $(cat "$TMP/h")" >&2; exit 1; }
metrics=$(curl -s --max-time 60 "http://127.0.0.1:${SERVE_PORTS[2]}/metrics")
grep -q '^fdn_rate_limiter_backend_up{backend="redis"} 0$' <<<"$metrics" || { echo "backend_up not 0" >&2; exit 1; }
grep -q '^fdn_rate_limiter_backend_operations_total{backend="redis",operation="fallback"} 1$' <<<"$metrics" || { echo "fallback not counted" >&2; exit 1; }

# a URL that does not parse: a clear error at start, exit status 1
serve_refused 'redis url: must start with redis://' --redis "http://nope"
echo "ok: 5 of 8 admitted across two servers; backend state in /health and /metrics; a bad URL refused at start"
