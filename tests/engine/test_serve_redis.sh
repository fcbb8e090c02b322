#!/usr/bin/env bash
# Two `fdn serve --redis URL` processes (the fixture's Redis) share one rate limit: a
# sliding-window limit of 5 per minute on one key admits exactly 5 requests across both
# servers, the 6th is refused by either with 429; a bad --redis URL stops `fdn serve` at
# start with a message naming the problem.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?}/bin/fdn"
URL="$(cat "${FDN_TEST_REDIS_DIR:?}/url")"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

PORTS=()
start() { # name
    local fd port="" line
    exec {fd}< <(exec "$FDN" serve --data-dir "$TMP/$1" --listen 127.0.0.1:0 --redis "$URL" \
        2>"$TMP/$1.err")
    PIDS+=($!)
    while IFS= read -r -t 30 line <&"$fd"; do
        if [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
            port="${BASH_REMATCH[1]}"
            break
        fi
    done
    [[ -n "$port" ]] || { echo "server $1 did not start: $(cat "$TMP/$1.err")" >&2; exit 1; }
    PORTS+=("$port")
}

start a
start b
KEY="serve-$$-$RANDOM"
allowed=0
denied=0
for i in $(seq 1 8); do
    port=${PORTS[$((i % 2))]}
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

# a URL that does not parse: a clear error at start, exit status 1
set +e
"$FDN" serve --data-dir "$TMP/c" --listen 127.0.0.1:0 --redis "http://nope" >/dev/null 2>"$TMP/c.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || { echo "bad --redis: exit $rc" >&2; exit 1; }
grep -q 'redis url: must start with redis://' "$TMP/c.err" || { echo "bad --redis: $(cat "$TMP/c.err")" >&2; exit 1; }
echo "ok: 5 of 8 admitted across two servers; a bad URL refused at start"
