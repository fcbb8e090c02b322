#!/usr/bin/env bash
# `fdn serve --postgres URL` stops on SIGTERM while its PostgreSQL hangs (SIGSTOP; a cluster of
# this test's own, scripts/pg-server.sh), with POSTs waiting for their commit in the event
# store's writer, whose call on PostgreSQL is bounded by 10 minutes
# (storage.warm.postgres.command_timeout_ms), past ctest's TIMEOUT:
#  - the server exits (status 0, "fdn: stopped"): the HTTP server answers the POSTs 503 with
#    their outcome unknown at --shutdown-timeout, and the event store's stop cuts its writer at
#    storage.warm.postgres.stop_timeout_ms (300 ms here) and puts what it had not committed in
#    the spool (storage.warm.postgres.spool_path). Before, the store's stop waited for the
#    writer: the test hung until ctest's TIMEOUT (the failing mode; no wall-clock assertion);
#    and logs it (event=event_store_stop_deadline, the events spooled, none failed);
#  - started again with PostgreSQL running, the server replays the spool: every event posted
#    is in PostgreSQL exactly once (the client that got "outcome unknown" finds it by its
#    correlation id, as docs/http-api.md tells it to).
# Waits are bounded polls on a condition, never fixed sleeps.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
# shellcheck source=../support/serve_pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve_pg.sh"
RUN="stop_$$_$RANDOM"
export FDN_STORAGE__WARM__POSTGRES__SCHEMA="$RUN"
export FDN_STORAGE__WARM__POSTGRES__COMMAND_TIMEOUT_MS=600000
export FDN_STORAGE__WARM__POSTGRES__STOP_TIMEOUT_MS=300
export FDN_STORAGE__WARM__POSTGRES__SPOOL_PATH="$TMP/spool.db"
serve_start "$TMP/serve.err" --data-dir "$TMP/data" --listen 127.0.0.1:0 --threads 2 \
    --shutdown-timeout 300 --postgres "$URL" ||
    fail "server did not start: $(cat "$TMP/serve.err")"
A="http://127.0.0.1:$SERVE_PORT"

post() { # i: POST event i (correlation id $RUN-i), its answer's code in $TMP/post.i
    curl -s --trace-ascii "$TMP/post.$1.trace" -o "$TMP/body.$1" -w '%{http_code}' \
        --max-time 300 -X POST -H 'Content-Type: application/json' "$A/v1/events" \
        -d "{\"type\":\"stop.tick\",\"data\":{\"i\":$1},\"correlation_id\":\"$RUN-$1\"}" \
        >"$TMP/post.$1" || true
}

post 0
[[ "$(cat "$TMP/post.0")" == 201 ]] || fail "POST with PostgreSQL up answered $(cat "$TMP/post.0")"

signal_cluster STOP
PAUSED=1
pids=()
for i in 1 2 3; do
    post "$i" &
    pids+=("$!")
done
deadline=$((SECONDS + 60))
for i in 1 2 3; do
    until grep -q '^=> Send data' "$TMP/post.$i.trace" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "POST $i was not sent: $(cat "$TMP/post.$i.trace")"
        sleep 0.05 # polling for curl's progress, not ordering our own steps
    done
done

serve_stop TERM # returns: the store's stop cut its writer (before: a hang)
[[ "$SERVE_RC" == 0 ]] || fail "fdn serve exited with $SERVE_RC: $(cat "$TMP/serve.err")"
for p in "${pids[@]}"; do wait "$p"; done
# each POST reached the store (its answer withdrawn at the HTTP deadline: 503, outcome
# unknown), unless the shutdown came before the server read it (then it was refused: the
# store stopping, or the connection closed): such an event must not be stored
want=()
for i in 1 2 3; do
    code="$(cat "$TMP/post.$i")"
    if [[ "$code" == 503 ]] && grep -q '"outcome":"unknown"' "$TMP/body.$i"; then
        want+=(1)
    elif [[ "$code" == 503 || "$code" == 000 || "$code" == "" ]]; then
        want+=(0)
    else
        fail "POST $i answered '$code' at the shutdown: $(cat "$TMP/body.$i")"
    fi
done
[[ " ${want[*]} " == *" 1 "* ]] || fail "no POST reached the store before the shutdown"
# the server says what its store's stop did with them: spooled, none failed
line="$(grep 'event=event_store_stop_deadline' "$TMP/serve.err" || true)"
[[ "$line" =~ \ spooled=([0-9]+)\ failed=0$ ]] ||
    fail "no (or a wrong) log line of the store's stop deadline: $(cat "$TMP/serve.err")"
reached=0
for w in "${want[@]}"; do reached=$((reached + w)); done
((BASH_REMATCH[1] >= reached)) ||
    fail "$reached POSTs reached the store, the log says ${BASH_REMATCH[1]} events spooled: $line"

signal_cluster CONT
PAUSED=0
serve_start "$TMP/serve2.err" --data-dir "$TMP/data" --listen 127.0.0.1:0 --threads 2 \
    --postgres "$URL" ||
    fail "server did not start again: $(cat "$TMP/serve2.err")"
A="http://127.0.0.1:$SERVE_PORT"
count() { # events of correlation id $RUN-i in PostgreSQL
    curl -sf --max-time 30 "$A/v1/events?correlation_id=$RUN-$1" | jq .count
}
spooled() {
    curl -sf --max-time 30 "$A/metrics" | awk '/^fdn_events_backend_spooled_events/ {print $2}'
}
deadline=$((SECONDS + 60))
until [[ "$(spooled)" == 0 ]]; do # the spool's replay
    ((SECONDS < deadline)) || fail "the spool still holds $(spooled) events after the restart"
    sleep 0.05 # polling for the replay, not ordering our own steps
done
[[ "$(count 0)" == 1 ]] || fail "event 0 stored $(count 0) times"
total=1
for i in 1 2 3; do
    n="$(count "$i")"
    [[ "$n" == "${want[$((i - 1))]}" ]] ||
        fail "event $i (answered $(cat "$TMP/post.$i")) stored $n times after the restart"
    total=$((total + n))
done
n=$(curl -sf --max-time 30 "$A/v1/events?type=stop.tick&limit=100" | jq .count)
[[ "$n" == "$total" ]] || fail "$total events acknowledged, $n stored"
serve_stop TERM
echo "ok: POSTs 1-3 reached the store: ${want[*]} (1: yes), each such event stored once after the restart"
